"""The panels other apps add to the order page, the technician's job page and their day.

``web`` sits on top: it asks each app in ``PANEL_APPS`` for its HTML (``order_panel(request,
order)``, ``tech_panel(request, order)``, ``tech_van_panel(request, employee)``). A panel
decides itself what the user may see and do, and returns "" when nothing applies."""

from __future__ import annotations

from importlib import import_module

from django.utils.safestring import SafeString, mark_safe

# In the order the panels appear: the parts the repair needs, what it costs, the loaner.
PANEL_APPS = ("aftersales.parts.panels", "aftersales.charges.panels", "aftersales.assets.panels",
              "aftersales.quality.panels")


def _collect(hook: str, *args) -> list[SafeString]:
    out = []
    for name in PANEL_APPS:
        fn = getattr(import_module(name), hook, None)
        if fn is None:
            continue
        html = fn(*args)
        if html:
            out.append(mark_safe(html))  # noqa: S308 - rendered by the app's own templates (escaped there)
    return out


def order_panels(request, order, *, page: str = "order") -> list[SafeString]:
    return _collect("tech_panel" if page == "tech" else "order_panel", request, order)


def tech_day_panels(request, employee) -> list[SafeString]:
    return _collect("tech_van_panel", request, employee)
