"""The charges' panels on the order page and the technician's job page (``web.panels`` asks).

- ``order_panel`` (staff, ``/orders/<id>/``): whether the order is chargeable and may be
  repaired, the current quote with its lines and state, sending the link, the payments with
  their receipts, refunds (``charge.handle``), the service cost (``order.view``).
- ``tech_panel`` (the technician's phone, ``/tech/orders/<id>/``): build the quote from the
  parts asked for, labour and the visit fee; show it; send the link or let the customer sign
  on the phone (the signature pad of the confirmation, ``web/signature.js``); take payment.

Forms post to the charges' own URLs with ``next`` = this page, and come back here.
"""

from __future__ import annotations

from decimal import Decimal

from django.template.loader import render_to_string
from django.utils import timezone

from aftersales.org.roles import Perm
from aftersales.org.scope import holds_at, principal
from aftersales.tickets import workflow
from aftersales.tickets.models import WorkOrder

from . import selectors, services
from .models import LineKind, Payment, PaymentMethod, Quote, QuoteStatus, Refund, ServiceCost

ZERO = Decimal("0.00")


def _quote(order: WorkOrder) -> Quote | None:
    from django.db.models import Prefetch

    from .models import QuoteLine

    return (Quote.objects.filter(order_id=order.pk).exclude(status=QuoteStatus.SUPERSEDED)
            .select_related("signed_by").prefetch_related(Prefetch("lines", queryset=QuoteLine.objects
                                                                   .order_by("position")))
            .order_by("-seq").first())


def _payments(order: WorkOrder) -> list[Payment]:
    from django.db.models import Prefetch

    return list(Payment.objects.filter(order_id=order.pk).select_related("received_by")
                .prefetch_related(Prefetch("refunds", queryset=Refund.objects.order_by("id")))
                .order_by("received_at", "id"))


def _ctx(request, order: WorkOrder, *, page: str, flash=None, error=None) -> dict:
    user = request.user
    gate = services.repair_gate(order)
    quote = _quote(order)
    payments = _payments(order)
    paid = sum((p.amount for p in payments), ZERO)
    refunded = sum((p.refunded for p in payments), ZERO)
    net = paid - refunded
    may_quote = services.may_quote(user, order)
    quotable = order.status not in services.NOT_QUOTABLE
    today = timezone.localdate()
    cat_id = services.unit_category_id(order)
    due = None
    if quote is not None and quote.status == QuoteStatus.APPROVED and quote.chargeable > net:
        due = quote.chargeable - net
    requests = list(services.open_requests(order.pk).select_related("part").order_by("id")) if may_quote else []
    return {
        "order": order, "page": page, "flash": flash, "error": error, "gate": gate, "quote": quote,
        "lines": list(quote.lines.all()) if quote is not None else [],
        "free_total": (quote.total - quote.chargeable) if quote is not None else None,
        "link_open": quote is not None and quote.link_state() == "open",
        "link_expired": quote is not None and quote.link_state() == "expired",
        "superseded": Quote.objects.filter(order_id=order.pk, status=QuoteStatus.SUPERSEDED).count(),
        "payments": payments, "paid": paid, "refunded": refunded, "net": net, "due": due,
        "may_quote": may_quote and quotable, "may_pay": may_quote and order.status != "cancelled",
        "may_refund": services.may_refund(user, order),
        "labour": selectors.labour_choices(cat_id, today) if may_quote and quotable else [],
        "visit": services.price_on("visit", cat_id, today) if may_quote and quotable else None,
        "requests": requests, "methods": PaymentMethod.choices, "part_kind": LineKind.PART,
        "cost": (ServiceCost.objects.filter(order_id=order.pk).first()
                 if page == "order" and holds_at(user, Perm.ORDER_VIEW, order.node_id) else None),
        "next": request.get_full_path(),
    }


def order_panel(request, order: WorkOrder, *, flash=None, error=None) -> str:
    """The staff order page's charges panel; "" when nothing applies to this user."""
    user = request.user
    p = principal(user)
    if p.customer_id is not None and not p.can(Perm.ORDER_VIEW):
        return ""
    if not (holds_at(user, Perm.ORDER_VIEW, order.node_id) or holds_at(user, Perm.CHARGE_HANDLE, order.node_id)
            or workflow.is_assignee(user, order) or order.owner_id == user.pk):
        return ""
    ctx = _ctx(request, order, page="order", flash=flash, error=error)
    if not (ctx["quote"] or ctx["payments"] or ctx["gate"].chargeable or ctx["may_quote"] or ctx["cost"]):
        return ""
    return render_to_string("charges/_order_panel.html", ctx, request=request)


def tech_panel(request, order: WorkOrder, *, flash=None, error=None) -> str:
    """The technician's job page's charges panel (only the order's own technician)."""
    user = request.user
    if not (workflow.is_assignee(user, order) and principal(user).can(Perm.ORDER_WORK)):
        return ""
    ctx = _ctx(request, order, page="tech", flash=flash, error=error)
    if not (ctx["quote"] or ctx["payments"] or ctx["may_quote"]):
        return ""
    return render_to_string("charges/_tech_panel.html", ctx, request=request)
