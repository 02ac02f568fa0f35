"""Server-rendered pages (Django templates + htmx). Each view declares its permission
(``aftersales.web.permissions.require_perm``); reads go through the apps' selectors, so the
pages are scoped exactly like the API."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from aftersales.core.errors import ValidationFailed
from aftersales.customers import selectors as customer_selectors
from aftersales.customers.selectors import customer_get, customer_queryset, customer_search, unit_get
from aftersales.customers.services import customer_create
from aftersales.customers.warranty import unit_warranty
from aftersales.org.models import Certification, Employee
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import principal
from aftersales.org.selectors import certifications_expiring, employee_list_qs

from . import figures
from .forms import CustomerCreateForm, WarrantyCheckForm, add_service_errors
from .permissions import OWN_FILE, SIGNED_IN, is_htmx, require_perm

RECENT_SESSION_KEY = "web.recent_customers"
RECENT_MAX = 8
SEARCH_LIMIT = 20
EXPIRY_CHOICES = (7, 30, 60, 90)

# ---------------------------------------------------------------- sign in / out

def demo_logins() -> tuple[list[str], str] | None:
    """The log-ins of the demo data set (``manage.py demo``), for the DEBUG-only hint."""
    try:
        from aftersales.web.management.commands.demo import DEMO_PASSWORD, LOGIN_USERNAMES
    except ImportError:  # pragma: no cover - the demo command ships with the project
        return None
    return list(LOGIN_USERNAMES), DEMO_PASSWORD


class LoginView(auth_views.LoginView):
    template_name = "web/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        demo = demo_logins() if settings.DEBUG else None
        ctx["show_demo_hint"] = demo is not None
        if demo is not None:
            ctx["demo_users"], ctx["demo_password"] = demo
        return ctx


class LogoutView(auth_views.LogoutView):
    http_method_names = ["post", "options"]


# ---------------------------------------------------------------- home

MANAGER_ROLES = (Role.HQ_MANAGER, Role.CENTRE_MANAGER, Role.OUTLET_MANAGER)

# role → home section, in the order the sections are shown to a person holding several roles
SECTION_ORDER = [
    (Role.ADMIN, "admin"),
    (Role.HQ_MANAGER, "manager"),
    (Role.CENTRE_MANAGER, "manager"),
    (Role.OUTLET_MANAGER, "manager"),
    (Role.AGENT, "agent"),
    (Role.DISPATCHER, "agent"),
    (Role.TECHNICIAN, "technician"),
    (Role.QUALITY, "quality"),
    (Role.TRAINER, "trainer"),
]


def home_sections(p) -> list[str]:
    roles = set(p.role_names)
    if p.is_superuser:
        roles.add(Role.ADMIN)
    out: list[str] = []
    for role, section in SECTION_ORDER:
        if role in roles and section not in out:
            out.append(section)
    return out


@require_GET
@require_perm(SIGNED_IN)
def home(request):
    user = request.user
    p = principal(user)
    sections = home_sections(p)
    if not sections and p.customer_id is not None:
        return redirect("web:customer_detail", customer_id=p.customer_id)
    today = timezone.localdate()
    ctx: dict = {"sections": sections, "today": today}
    if "admin" in sections:
        ctx["admin_counts"] = figures.admin_counts()
    if "manager" in sections:
        ctx["manager_node_names"] = _manager_node_names(user, p)
        ctx["figures"] = figures.manager_figures(user, today)
        rows = figures.units_by_category_and_state(user, today)
        ctx["chart"] = figures.chart_data(rows, english=translation.get_language() == "en")
        ctx["chart_total"] = sum(r["n"] for r in rows)
    if "agent" in sections:
        ctx["recent"], ctx["recent_kind"] = _recent_customers(request)
    if "technician" in sections:
        ctx["employee"] = (
            Employee.objects.filter(user=user)
            .select_related("node", "department")
            .prefetch_related("skills")
            .first()
        )
        ctx["my_certs"] = (
            Certification.objects.filter(employee=ctx["employee"]).select_related("type").order_by("expires_on")
            if ctx["employee"] else []
        )
    if "quality" in sections or "trainer" in sections:
        ctx["expiring"] = _with_days_left(certifications_expiring(user, within_days=30, on=today)[:50], today)
    if "trainer" in sections:
        ctx["staff"] = list(employee_list_qs(user).filter(active=True).order_by("node__path", "employee_no")[:100])
    return render(request, "web/home.html", ctx)


def _manager_node_names(user, p) -> list[str]:
    from aftersales.org.models import Node

    ids = {n for r, n, _p in p.roles if r in MANAGER_ROLES}
    return list(Node.objects.filter(pk__in=ids).order_by("path").values_list("name", flat=True))


def _recent_customers(request):
    """The customers this user opened last (kept in the session), else the last updated."""
    ids = [i for i in request.session.get(RECENT_SESSION_KEY, []) if isinstance(i, int)]
    qs = customer_queryset(request.user).select_related("node")
    if ids:
        found = {c.pk: c for c in qs.filter(pk__in=ids)}
        recent = [found[i] for i in ids if i in found]
        if recent:
            return _with_shown_phone(request.user, recent), "viewed"
    return _with_shown_phone(request.user, list(qs.order_by("-updated_at", "-id")[:RECENT_MAX])), "updated"


def _with_shown_phone(user, customers):
    for c in customers:
        c.shown_phone = customer_selectors.shown_phone(user, c)
    return customers


def _remember(request, customer_id: int) -> None:
    ids = request.session.get(RECENT_SESSION_KEY, [])
    if ids[:1] != [customer_id]:  # no session write when the same file is reopened
        request.session[RECENT_SESSION_KEY] = [customer_id, *(i for i in ids if i != customer_id)][:RECENT_MAX]


# ---------------------------------------------------------------- customers


@require_GET
@require_perm(Perm.CUSTOMER_VIEW)
def customer_search_page(request):
    q = (request.GET.get("q") or "").strip()[:50]
    results = _with_shown_phone(request.user, list(customer_search(request.user, q, limit=SEARCH_LIMIT))) if q else []
    ctx = {"q": q, "results": results, "limit": SEARCH_LIMIT}
    if is_htmx(request):
        resp = render(request, "web/customers/_results.html", ctx)
    else:
        resp = render(request, "web/customers/search.html", ctx)
    patch_vary_headers(resp, ["HX-Request"])
    return resp


@require_http_methods(["GET", "POST"])
@require_perm(Perm.CUSTOMER_EDIT)
def customer_create_page(request):
    if request.method == "POST":
        form = CustomerCreateForm(request.POST)
        if form.is_valid():
            d = form.cleaned_data
            try:
                c = customer_create(user=request.user, name=d["name"], phone=d["phone"], address=form.address(),
                                    notes=d["notes"])
            except ValidationFailed as e:
                add_service_errors(form, e, CustomerCreateForm.FIELD_MAP)
            else:
                messages.success(request, _("已建立客户档案：%(name)s。") % {"name": c.name})
                return redirect("web:customer_detail", customer_id=c.pk)
    else:
        form = CustomerCreateForm(initial=_initial_area(request.user, request.GET.get("phone", "")))
    return render(request, "web/customers/create.html", {"form": form})


def _initial_area(user, phone: str) -> dict:
    """Prefill province / city / district with the area of the user's own outlet."""
    from aftersales.org.models import Node, NodeKind

    p = principal(user)
    node_ids = [n for r, n, _p in p.roles if r == Role.AGENT]
    node = Node.objects.filter(pk__in=node_ids, kind=NodeKind.OUTLET).order_by("path").first()
    out = {"phone": phone[:20]}
    if node is not None:
        out.update(province=node.province, city=node.city, district=node.district)
    return out


def _unit_rows(user, units, today):
    rows = []
    for u in units:
        try:
            decision, error = unit_warranty(u, on=today), None
        except ValidationFailed as e:
            decision, error = None, "；".join(str(m) for msgs in e.errors.values() for m in msgs)
        rows.append({"unit": u, "decision": decision, "error": error, "parts": list(u.model.main_parts.all())})
    return rows


@require_GET
@require_perm(Perm.CUSTOMER_VIEW, OWN_FILE)
def customer_detail(request, customer_id: int):
    user = request.user
    c = customer_get(user, customer_id)
    today = timezone.localdate()
    p = principal(user)
    addresses = sorted(c.addresses.all(), key=lambda a: (not a.is_default, a.pk))
    for a in addresses:
        a.shown_street = customer_selectors.shown_street(user, c, a)
    if p.can(Perm.CUSTOMER_VIEW):
        _remember(request, c.pk)
    ctx = {
        "customer": c,
        "shown_phone": customer_selectors.shown_phone(user, c),
        "pii": customer_selectors.can_see_pii(user, c),
        "staff_view": p.can(Perm.CUSTOMER_VIEW),
        "addresses": addresses,
        "tags": list(c.tags.all()),
        "units": _unit_rows(user, c.units.all(), today),
        "today": today,
    }
    return render(request, "web/customers/detail.html", ctx)


@require_GET
@require_perm(Perm.CUSTOMER_VIEW, OWN_FILE)
def unit_warranty_check(request, unit_id: int):
    unit = unit_get(request.user, unit_id)
    form = WarrantyCheckForm(request.GET)
    today = timezone.localdate()
    decision = error = None
    on, part = today, ""
    if form.is_valid():
        on = form.cleaned_data["on"] or today
        part = form.cleaned_data["part"].strip()
        try:
            decision = unit_warranty(unit, on=on, part_code=part or None)
        except ValidationFailed as e:
            error = "；".join(str(m) for msgs in e.errors.values() for m in msgs) or str(e.message)
    else:
        error = "；".join(str(m) for msgs in form.errors.values() for m in msgs)
    parts = {p.code: p.name for p in unit.model.main_parts.all()}
    ctx = {"unit": unit, "decision": decision, "error": error, "on": on, "part": part,
           "part_name": parts.get(part, part), "checked": True}
    template = "web/customers/_decision.html" if is_htmx(request) else "web/customers/unit_warranty.html"
    return render(request, template, ctx)


# ---------------------------------------------------------------- staff


def _with_days_left(certs, today):
    certs = list(certs)
    for cert in certs:
        cert.days_left = (cert.expires_on - today).days
    return certs


@require_GET
@require_perm(Perm.STAFF_VIEW)
def staff_certificates(request):
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        days = 30
    if days not in EXPIRY_CHOICES:
        days = 30
    today = timezone.localdate()
    certs = _with_days_left(certifications_expiring(request.user, within_days=days, on=today)[:500], today)
    return render(request, "web/staff/certificates.html",
                  {"certs": certs, "days": days, "choices": EXPIRY_CHOICES, "today": today})
