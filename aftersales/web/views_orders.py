"""The work-order pages: the agent's intake, the order page with its timeline and action
forms, the dispatch panel, the lists per role, the technician's phone pages and the outbox.

Thin like the other views: reads through ``tickets.selectors`` (scoped once), writes through
``tickets.services`` / ``tickets.workflow`` / ``dispatch.services``, whose errors come back as
field messages with their status (400 bad input, 403, 409 a move the order's status does
not allow) — never a 500. htmx requests get the fragment that changed; the same URLs work
as plain forms without JavaScript (post, then redirect).
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import Case, IntegerField, Q, Value, When
from django.http import FileResponse, Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aftersales.catalog.selectors import product_model_queryset
from aftersales.core.errors import Conflict, NotFound, ValidationFailed
from aftersales.core.errors import PermissionDenied as DomainPermissionDenied
from aftersales.core.pagination import keyset_page
from aftersales.customers import selectors as customer_selectors
from aftersales.customers.models import SalesChannel
from aftersales.customers.selectors import customer_get, customer_search, unit_list_qs
from aftersales.customers.services import customer_create, unit_register
from aftersales.customers.warranty import unit_warranty
from aftersales.dispatch import selectors as dispatch_selectors
from aftersales.dispatch import services as dispatch_services
from aftersales.notifications.models import Message
from aftersales.notifications.services import TEMPLATES as MESSAGE_TEMPLATES
from aftersales.notifications.services import shown_address
from aftersales.org.models import Node, NodeKind
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import holds_at, principal, scope_filter
from aftersales.tickets import classify, sla, workflow
from aftersales.tickets import selectors as order_selectors
from aftersales.tickets import services as order_services
from aftersales.tickets.models import (
    FaultCategory,
    FaultCode,
    OrderPhoto,
    OrderType,
    Priority,
    SlaState,
    Status,
    WorkOrder,
)

from .forms import CustomerCreateForm, add_service_errors
from .forms_orders import (
    ClassifyPreviewForm,
    ConfirmForm,
    DispatchForm,
    IntakeForm,
    MoveForm,
    NoteForm,
    OrderFilterForm,
    OutboxFilterForm,
    PhotoForm,
    SlotForm,
    local_value,
)
from .panels import order_panels, tech_day_panels
from .permissions import OWN_FILE, is_htmx, require_perm
from .views import _initial_area

SEARCH_LIMIT = 8
PAGE_SIZE = 50
DAY_FIRST_SLOT, DAY_LAST_SLOT = 9, 18  # the hours a proposed visit may start
MODEL_CHOICES_MAX = 500

# ---------------------------------------------------------------- labels


MESSAGE_EVENT_LABELS = {
    "order_received": gettext_lazy("受理通知"),
    "dispatched": gettext_lazy("派工通知"),
    "appointment": gettext_lazy("预约提醒"),
    "en_route": gettext_lazy("出发通知"),
    "completed": gettext_lazy("完工通知"),
    "confirm_code": gettext_lazy("服务确认码"),
    "survey": gettext_lazy("评价邀请"),
    "sla_breach": gettext_lazy("超时升级"),
    "complaint": gettext_lazy("投诉跟进"),
    "reopened": gettext_lazy("重开通知"),
    "stock_low": gettext_lazy("库存预警"),
    "stock_out": gettext_lazy("缺货提醒"),
    "tool_due_soon": gettext_lazy("工具仪器即将到期"),
    "tool_overdue": gettext_lazy("工具仪器已过期"),
    "tools_due_summary": gettext_lazy("工具仪器到期汇总"),
    "loans_overdue": gettext_lazy("备用机逾期"),
    "loan_candidates": gettext_lazy("可借备用机"),
    "dispatch_instrument": gettext_lazy("派工仪器提醒"),
    "quote": gettext_lazy("维修报价"),
    "quote_approved": gettext_lazy("报价已确认"),
    "quote_rejected": gettext_lazy("报价被拒绝"),
}

CONFIRMED_BY = {"code": gettext_lazy("短信确认码"), "signature": gettext_lazy("客户签名")}

# statuses in which a dispatcher places or moves the booking
DISPATCHABLE = frozenset({Status.CLASSIFIED, Status.REOPENED, Status.DISPATCHED, Status.ACCEPTED})
REBOOK = frozenset({Status.DISPATCHED, Status.ACCEPTED})
# moves the dispatch panel makes (not a generic move form)
PANEL_MOVES = frozenset({"dispatch", "reassign"})


def status_label(value: str) -> str:
    return str(Status(value).label) if value in Status.values else value


def action_label(action: str) -> str:
    m = workflow.MOVES.get(action)
    if m is not None:
        return str(m.label)
    return str(workflow.EVENT_LABELS.get(action, action))


def message_event_label(event: str) -> str:
    return str(MESSAGE_EVENT_LABELS.get(event, event))


# ---------------------------------------------------------------- small helpers

def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _errors_text(e: ValidationFailed, *, with_message: bool = False) -> str:
    """The field messages of a refusal in one line (with its own message when it has one)."""
    text = "；".join(dict.fromkeys(str(m) for msgs in e.errors.values() for m in msgs))
    if not text:
        return str(e.message)
    if with_message and str(e.message) != str(ValidationFailed({}).message):
        return f"{e.message}{text}"
    return text


def duration_text(seconds: float) -> str:
    minutes = int(abs(seconds)) // 60
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return _("%(d)s 天 %(h)s 小时") % {"d": days, "h": hours}
    if hours:
        return _("%(h)s 小时 %(m)s 分") % {"h": hours, "m": mins}
    return _("%(m)s 分钟") % {"m": mins}


def countdown_formats() -> dict:
    """The same texts as ``duration_text`` for the countdown script (orders.js)."""
    return {"d": _("%(d)s 天 %(h)s 小时"), "h": _("%(h)s 小时 %(m)s 分"), "m": _("%(m)s 分钟"),
            "left": _("剩余 %(t)s"), "over": _("已超时 %(t)s")}


def sla_view(order: WorkOrder, now: dt.datetime) -> dict:
    """The clock the header shows: which deadline runs next, and how far it is."""
    resolved = order.completed_at is not None or order.closed_at is not None
    target, which = None, ""
    if order.responded_at is None and order.response_due and not resolved:
        target, which = order.response_due, _("响应")
    elif not resolved and order.resolve_due:
        target, which = order.resolve_due, _("解决")
    out = {"target": target, "which": which, "paused": order.sla_paused_at is not None, "text": ""}
    if target is not None:
        at = order.sla_paused_at or now
        left = (target - at).total_seconds()
        out["overdue"] = left < 0
        out["text"] = (_("已超时 %(t)s") if left < 0 else _("剩余 %(t)s")) % {"t": duration_text(left)}
    return out


def map_link(address, *, full: bool) -> str:
    """An Amap link: a marker at the coordinates, else a search for the address. Without the
    right to the full address only the district is searched (no coordinates, no street)."""
    if address is None:
        return ""
    area = address.province + (address.city if address.city != address.province else "") + address.district
    if full and address.lat is not None and address.lng is not None:
        return "https://uri.amap.com/marker?" + urlencode(
            {"position": f"{address.lng},{address.lat}", "name": area + address.street}, safe=",")
    return "https://uri.amap.com/search?" + urlencode({"keyword": area + (address.street if full else "")})


def address_text(user, customer, address) -> str:
    if address is None:
        return ""
    area = address.province + (address.city if address.city != address.province else "") + address.district
    return area + customer_selectors.shown_street(user, customer, address)


def _decision(unit, *, on, fault_key=None, part_code=None):
    """A unit's 三包 decision, or the service's message when it cannot decide."""
    if unit is None:
        return None, None
    try:
        return unit_warranty(unit, on=on, fault_key=fault_key, part_code=part_code or None), None
    except ValidationFailed as e:
        return None, _errors_text(e)


def _respond(request, template: str, ctx: dict, *, status: int = 200, retarget: str | None = None) -> HttpResponse:
    resp = render(request, template, ctx, status=status)
    if retarget:
        resp["HX-Retarget"] = retarget
        resp["HX-Reswap"] = "outerHTML"
    patch_vary_headers(resp, ["HX-Request"])
    return resp


def _hx_redirect(url: str) -> HttpResponse:
    resp = HttpResponse(status=200)
    resp["HX-Redirect"] = url
    return resp


# ================================================================ intake


def _intake_customer_ctx(user, customer, *, unit_id=None, address_id=None) -> dict:
    """The picked customer: phone, addresses and units with their 三包 decision today."""
    if customer is None:
        return {"customer": None}
    today = timezone.localdate()
    units = []
    for u in customer.units.all():
        decision, error = _decision(u, on=today)
        units.append({"unit": u, "decision": decision, "error": error})
    if unit_id is None and len(units) == 1:
        unit_id = units[0]["unit"].pk
    addresses = sorted(customer.addresses.all(), key=lambda a: (not a.is_default, a.pk))
    for a in addresses:
        a.shown = address_text(user, customer, a)
    if address_id is None and addresses:
        address_id = addresses[0].pk
    can_register = holds_at(user, Perm.UNIT_EDIT, customer.node_id)
    return {
        "customer": customer,
        "shown_phone": customer_selectors.shown_phone(user, customer),
        "units": units,
        "unit_id": unit_id,
        "addresses": addresses,
        "address_id": address_id,
        "can_register_unit": can_register,
        "model_choices": model_choices() if can_register else [],
        "sales_channels": SalesChannel.choices,
    }


def _category_code(user, unit_id) -> tuple[str | None, object]:
    if unit_id is None:
        return None, None
    unit = unit_list_qs().select_related("model__category").filter(
        pk=unit_id, customer__in=customer_selectors.customer_queryset(user).values("pk")).first()
    return (unit.model.category.code if unit else None), unit


def _fault_categories(category_code: str | None):
    qs = FaultCategory.objects.order_by("code")
    if category_code:
        qs = qs.filter(Q(categories__code=category_code) | Q(categories__isnull=True)).distinct()
    return list(qs)


def _sla_preview(order_type: str | None, priority: str | None) -> dict:
    if not order_type or order_type not in OrderType.values:
        return {"ready": False}
    priority = priority if priority in Priority.values else Priority.NORMAL
    now = timezone.now()
    d = sla.deadlines(order_type, priority, now)
    return {"ready": True, "now": now, "d": d,
            "response_in": duration_text((d.response_due - now).total_seconds()) if d.response_due else "",
            "resolve_in": duration_text((d.resolve_due - now).total_seconds()) if d.resolve_due else ""}


def _classify_ctx(user, *, problem="", unit_id=None, order_type="", priority="", fault_category="",
                  type_manual=False, fault_manual=False, errors=None) -> dict:
    """The type / fault-category block of the intake: the suggestion from the text preselects
    both, unless the agent chose them by hand."""
    category_code, _unit = _category_code(user, unit_id)
    s = classify.suggest(problem, category_code) if (problem or "").strip() else None
    if s is not None:
        if not type_manual and s.type:
            order_type = s.type
        if not fault_manual and s.fault_category_code:
            fault_category = s.fault_category_code
    cats = _fault_categories(category_code)
    if fault_category and all(c.code != fault_category for c in cats):
        cats += list(FaultCategory.objects.filter(code=fault_category))
    suggested_name = ""
    if s is not None and s.fault_category_code:
        suggested_name = next((c.name for c in cats if c.code == s.fault_category_code), s.fault_category_code)
    return {
        "suggestion": s,
        "suggested_type_label": str(OrderType(s.type).label) if s is not None and s.type in OrderType.values else "",
        "suggested_fault_name": suggested_name,
        "type_value": order_type or "",
        "fault_value": fault_category or "",
        "type_choices": OrderType.choices,
        "fault_categories": cats,
        "type_manual": type_manual,
        "fault_manual": fault_manual,
        "sla": _sla_preview(order_type, priority),
        "classify_errors": errors or {},
    }


def _load_customer(user, customer_id):
    if customer_id is None:
        return None
    try:
        return customer_get(user, customer_id)
    except NotFound:
        return None


@require_http_methods(["GET", "POST"])
@require_perm(Perm.ORDER_CREATE)
def order_intake(request):
    user = request.user
    status = 200
    if request.method == "POST":
        form = IntakeForm(request.POST)
        if form.is_valid():
            kw = form.service_kwargs()
            try:
                o = order_services.order_create(user=user, **kw)
            except ValidationFailed as e:
                if kw["customer_id"] is None and "customer_id" in e.errors:  # none picked yet
                    e.errors["customer_id"] = [_("请先查找并选择客户。")]
                add_service_errors(form, e, IntakeForm.FIELD_MAP)
            else:
                messages.success(request, _("已受理工单 %(number)s。") % {"number": o.number})
                return redirect("web:order_detail", order_id=o.pk)
        status = 400
        data = form.data
        customer = _load_customer(user, _int(data.get("customer_id")))
        unit_id, address_id = _int(data.get("unit_id")), _int(data.get("address_id"))
        classify = _classify_ctx(user, problem="", unit_id=unit_id, order_type=data.get("type", ""),
                                 priority=data.get("priority", ""), fault_category=data.get("fault_category", ""),
                                 type_manual=True, fault_manual=True,
                                 errors={k: form.errors.get(k) for k in ("type", "fault_category")})
    else:
        form = IntakeForm(initial={"channel": "phone", "priority": Priority.NORMAL})
        customer = _load_customer(user, _int(request.GET.get("customer")))
        unit_id, address_id = None, None
        classify = _classify_ctx(user, order_type=OrderType.REPAIR, priority=Priority.NORMAL)
    cust = _intake_customer_ctx(user, customer, unit_id=unit_id, address_id=address_id)
    if request.method == "GET" and cust.get("unit_id"):
        classify = _classify_ctx(user, unit_id=cust["unit_id"], order_type=OrderType.REPAIR, priority=Priority.NORMAL)
    return _intake_page(request, form, cust, classify, status=status)


def _intake_page(request, form, cust: dict, classify: dict, *, status: int = 200):
    ctx = {"form": form, **cust, **classify, "q": request.GET.get("phone", "")[:20],
           "can_create_customer": principal(request.user).can(Perm.CUSTOMER_EDIT)}
    return render(request, "web/orders/intake.html", ctx, status=status)


@require_GET
@require_perm(Perm.ORDER_CREATE)
def intake_customers(request):
    """Live search of the intake (phone digits or a name prefix). A full phone number that
    matches one customer picks them at once."""
    user = request.user
    q = (request.GET.get("q") or "").strip()[:50]
    results = list(customer_search(user, q, limit=SEARCH_LIMIT)) if q else []
    for c in results:
        c.shown_phone = customer_selectors.shown_phone(user, c)
    ctx = {"q": q, "results": results, "limit": SEARCH_LIMIT,
           "can_create_customer": principal(user).can(Perm.CUSTOMER_EDIT)}
    digits = q.replace(" ", "").replace("-", "")
    if len(results) == 1 and digits.isdigit() and len(digits) == 11:
        ctx["picked"] = _intake_customer_ctx(user, customer_get(user, results[0].pk))
    return _respond(request, "web/orders/_intake_results.html", ctx)


@require_GET
@require_perm(Perm.ORDER_CREATE)
def intake_customer(request, customer_id: int):
    """The picked customer's block (units with their decision, addresses)."""
    customer = customer_get(request.user, customer_id)
    if not is_htmx(request):
        return redirect(f"{reverse('web:order_intake')}?customer={customer.pk}")
    ctx = _intake_customer_ctx(request.user, customer)
    ctx["clear_results"] = True
    return _respond(request, "web/orders/_intake_customer.html", ctx)


@require_GET
@require_perm(Perm.ORDER_CREATE)
def intake_suggest(request):
    """Type, fault category and the SLA deadlines for what the agent has typed so far."""
    form = ClassifyPreviewForm(request.GET)
    d = form.cleaned_data if form.is_valid() else {}
    ctx = _classify_ctx(request.user, problem=d.get("problem") or "", unit_id=d.get("unit_id"),
                        order_type=d.get("type") or "", priority=d.get("priority") or "",
                        fault_category=d.get("fault_category") or "", type_manual=bool(d.get("type_manual")),
                        fault_manual=bool(d.get("fault_manual")))
    ctx["suggest_response"] = True  # the SLA preview follows the suggested type
    return _respond(request, "web/orders/_intake_classify.html", ctx)


@require_GET
@require_perm(Perm.ORDER_CREATE)
def intake_sla(request):
    form = ClassifyPreviewForm(request.GET)
    d = form.cleaned_data if form.is_valid() else {}
    return _respond(request, "web/orders/_intake_sla.html", {"sla": _sla_preview(d.get("type"), d.get("priority"))})


@require_http_methods(["GET", "POST"])
@require_perm(Perm.ORDER_CREATE)
def intake_customer_create(request):
    """A new customer from the intake, back to the intake with them picked."""
    user = request.user
    if not principal(user).can(Perm.CUSTOMER_EDIT):
        raise DomainPermissionDenied()
    status = 200
    if request.method == "POST":
        form = CustomerCreateForm(request.POST)
        if form.is_valid():
            d = form.cleaned_data
            try:
                c = customer_create(user=user, name=d["name"], phone=d["phone"], address=form.address(),
                                    notes=d["notes"])
            except ValidationFailed as e:
                add_service_errors(form, e, CustomerCreateForm.FIELD_MAP)
            else:
                messages.success(request, _("已建立客户档案：%(name)s。") % {"name": c.name})
                return redirect(f"{reverse('web:order_intake')}?customer={c.pk}")
        status = 400
    else:
        form = CustomerCreateForm(initial=_initial_area(user, request.GET.get("phone", "")))
    return render(request, "web/orders/customer_create.html", {"form": form}, status=status)


@require_POST
@require_perm(Perm.ORDER_CREATE)
def intake_unit_register(request, customer_id: int):
    """Register a unit of the picked customer without leaving the intake."""
    user = request.user
    customer = customer_get(user, customer_id)
    errors, unit_id = {}, None
    d = request.POST
    try:
        u = unit_register(user=user, customer_id=customer.pk, serial=d.get("serial", ""),
                          model_code=d.get("model_code", "").strip().upper(), purchase_date=d.get("purchase_date", ""),
                          sales_channel=d.get("sales_channel") or None, invoice_no=d.get("invoice_no", ""))
    except ValidationFailed as e:
        known = {"model": "model_code", "model_code": "model_code", "serial": "serial",
                 "purchase_date": "purchase_date", "sales_channel": "sales_channel", "invoice_no": "invoice_no"}
        errors = {}
        for k, v in e.errors.items():
            errors.setdefault(known.get(k, "general"), []).extend(str(m) for m in v)
        errors = errors or {"general": [str(e.message)]}
    else:
        unit_id = u.pk
    customer = customer_get(user, customer.pk)  # with the new unit
    ctx = _intake_customer_ctx(user, customer, unit_id=unit_id)
    ctx.update(unit_errors=errors, unit_input=d, open_unit_form=bool(errors))
    if not is_htmx(request):
        if not errors:
            return redirect(f"{reverse('web:order_intake')}?customer={customer.pk}")
        form = IntakeForm(initial={"channel": "phone", "priority": Priority.NORMAL})
        return _intake_page(request, form, ctx, _classify_ctx(user, order_type=OrderType.REPAIR,
                                                               priority=Priority.NORMAL), status=400)
    return _respond(request, "web/orders/_intake_customer.html", ctx, status=400 if errors else 200)


def model_choices():
    return list(product_model_queryset().order_by("code").values_list("code", "name")[:MODEL_CHOICES_MAX])


# ================================================================ the order page


def _fault_codes(order: WorkOrder):
    if order.unit_id is None:
        return []
    return list(FaultCode.objects.filter(category_id=order.unit.model.category_id)
                .select_related("fault_category").order_by("code"))


def _transfer_nodes(order: WorkOrder):
    return list(Node.objects.filter(kind=NodeKind.OUTLET, active=True).exclude(pk=order.node_id).order_by("path"))


def _move_form(m, order: WorkOrder, data=None, *, fault_codes=None) -> MoveForm:
    kw = {}
    if m.name == "classify":
        cat = order.unit.model.category.code if order.unit_id else None
        kw["fault_categories"] = _fault_categories(cat)
    if "fault_code" in MoveForm.names_for(m):
        kw["fault_codes"] = fault_codes if fault_codes is not None else _fault_codes(order)
    if {"node", "node_id"} & set(m.needs):
        kw["nodes"] = _transfer_nodes(order)
    initial = {}
    if m.name == "classify":
        initial = {"type": order.type, "priority": order.priority,
                   "fault_category": order.fault_category.code if order.fault_category_id else ""}
    elif m.name in ("repair", "complete"):
        initial = {"diagnosis": order.diagnosis, "actions": order.actions, "result": order.result,
                   "fault_code": order.fault_code.code if order.fault_code_id else ""}
    form = MoveForm(m, data, initial=initial, **kw)
    if "fault_code" in form.fields:  # the decision for the part of the code picked
        form.fields["fault_code"].widget.attrs.update({
            "hx-get": reverse("web:order_fault_warranty", args=[order.pk]), "hx-trigger": "change",
            "hx-target": f"#fc-warranty-{m.name}", "hx-swap": "innerHTML"})
    return form


def _timeline_rows(order: WorkOrder) -> list[dict]:
    rows = []
    for e in order_selectors.timeline(order):
        if e.actor is not None:
            actor = e.actor.get_full_name() or e.actor.get_username()
        else:
            actor = e.actor_label if e.actor_label and e.actor_label != "system" else _("系统")
        d = e.data or {}
        details = []
        if d.get("assignee_name"):
            details.append(_("技师：%(name)s") % {"name": d["assignee_name"]})
        if d.get("appointment_from") and d.get("appointment_to"):
            try:
                a = timezone.localtime(dt.datetime.fromisoformat(d["appointment_from"]))
                b = timezone.localtime(dt.datetime.fromisoformat(d["appointment_to"]))
                details.append(_("预约：%(a)s–%(b)s") % {"a": a.strftime("%m-%d %H:%M"), "b": b.strftime("%H:%M")})
            except (TypeError, ValueError):
                pass
        if e.action == "classify" and d.get("type") in OrderType.values:
            details.append(f"{OrderType(d['type']).label} · {Priority(d['priority']).label}"
                           if d.get("priority") in Priority.values else str(OrderType(d["type"]).label))
        if d.get("fault_code"):
            details.append(_("故障代码：%(code)s") % {"code": d["fault_code"]})
        if d.get("level"):
            details.append(_("升级至第 %(n)s 级") % {"n": d["level"]})
        if d.get("by") in CONFIRMED_BY:
            details.append(str(CONFIRMED_BY[d["by"]]))
        rows.append({
            "e": e, "actor": actor, "label": action_label(e.action),
            "from": status_label(e.from_status) if e.from_status and e.from_status != e.to_status else "",
            "to": status_label(e.to_status) if e.to_status and e.to_status != e.from_status else "",
            "details": details,
        })
    return rows


def _may_work(user, order: WorkOrder) -> bool:
    """The technician of the order or a handler at its node (photos, the confirmation)."""
    return workflow.is_assignee(user, order) or holds_at(user, Perm.ORDER_HANDLE, order.node_id)


def _order_unit(order: WorkOrder):
    """The order's unit loaded for the warranty engine (policy, main parts, repairs)."""
    if order.unit_id is None:
        return None
    return unit_list_qs().filter(pk=order.unit_id).first()


def order_context(request, order: WorkOrder, *, page: str = "order", move_forms=None, dispatch=None,
                  note_form=None, photo_form=None, confirm=None, flash=None, failed_move=None) -> dict:
    """Everything the order page (and the technician's job page) shows of one order."""
    user = request.user
    now = timezone.now()
    is_customer = workflow.is_customer_of(user, order)
    pii = customer_selectors.can_see_pii(user, order.customer)
    unit = _order_unit(order)
    fc = order.fault_code
    decision, decision_error = _decision(
        unit, on=timezone.localdate(order.created_at),
        fault_key=order.fault_category.code if order.fault_category_id else None,
        part_code=fc.part_code if fc else None)
    fault_codes = _fault_codes(order)
    move_forms = move_forms or {}
    prefix = "web:tech_" if page == "tech" else "web:order_"
    moves = []
    allowed = [m for m in workflow.allowed_moves(user, order) if m.name not in PANEL_MOVES]
    if failed_move is not None and failed_move not in allowed:  # a stale button: show why it failed
        allowed.insert(0, failed_move)
    for m in allowed:
        moves.append({"move": m, "form": move_forms.get(m.name) or _move_form(m, order, fault_codes=fault_codes),
                      "simple": not MoveForm.names_for(m), "url": reverse(f"{prefix}move", args=[order.pk, m.name])})
    may_dispatch = (order.status in DISPATCHABLE and holds_at(user, Perm.ORDER_DISPATCH, order.node_id))
    ctx = {
        "panels": [] if is_customer else order_panels(request, order, page=page),
        "order": order,
        "page": page,
        "body_id": "job-body" if page == "tech" else "order-body",
        "note_url": reverse(f"{prefix}note", args=[order.pk]),
        "photo_url": reverse(f"{prefix}photo_upload", args=[order.pk]),
        "now": now,
        "is_customer": is_customer,
        "pii": pii,
        "shown_phone": customer_selectors.shown_phone(user, order.customer),
        "address_text": address_text(user, order.customer, order.address),
        "map_url": map_link(order.address, full=pii),
        "unit": unit,
        "decision": decision,
        "decision_error": decision_error,
        "stored_warranty": _stored_warranty(order),
        "sla": sla_view(order, now),
        "countdown_formats": countdown_formats(),
        "timeline": _timeline_rows(order) if not is_customer else _customer_timeline(order),
        "photos": list(order.photos.all()),
        "moves": moves,
        "may_note": not workflow.is_customer_of(user, order),
        "note_form": note_form or NoteForm(),
        "may_photo": order.is_open and _may_work(user, order),
        "photo_form": photo_form or PhotoForm(),
        "may_dispatch": may_dispatch,
        "dispatch": dispatch if dispatch is not None else (_dispatch_ctx(user, order) if may_dispatch else None),
        "confirmed_by_label": CONFIRMED_BY.get(order.confirmed_by, ""),
        "flash": flash,
        "fault_codes": fault_codes,
    }
    ctx["confirm"] = confirm or _confirm_ctx(user, order)
    return ctx


def _stored_warranty(order: WorkOrder) -> str:
    from aftersales.catalog.warranty import DecisionKind

    if order.warranty_kind in DecisionKind.values:
        return str(DecisionKind(order.warranty_kind).label)
    return order.warranty_kind


def _customer_timeline(order: WorkOrder) -> list[dict]:
    """What the customer sees of the history: the steps, not the staff's notes."""
    rows = []
    for e in order_selectors.timeline(order):
        if e.from_status == e.to_status and e.action != "create":
            continue
        rows.append({"e": e, "actor": "", "label": action_label(e.action), "from": status_label(e.from_status),
                     "to": status_label(e.to_status), "details": []})
    return rows


def _confirm_ctx(user, order: WorkOrder, *, form=None, flash=None) -> dict:
    may = _may_work(user, order) and order.status in order_services.CONFIRMABLE
    return {"may": may and not order.confirmed_at, "form": form or ConfirmForm(), "flash": flash,
            "code_pending": bool(order.confirm_code_hash) and order.confirm_code_expires is not None
            and order.confirm_code_expires > timezone.now()}


@require_GET
@require_perm(Perm.ORDER_VIEW, Perm.ORDER_WORK, Perm.ORDER_CREATE, OWN_FILE)
def order_detail(request, order_id: int):
    order = order_selectors.order_get(request.user, order_id)
    return _respond(request, "web/orders/detail.html", order_context(request, order))


def _apply_move(user, order: WorkOrder, m, kw: dict) -> None:
    """The technician's answer goes through dispatch (it frees or keeps the booking and may
    try the next candidate); every other move straight through the workflow."""
    if m.name == "accept":
        dispatch_services.accept_order(user=user, order_id=order.pk)
    elif m.name == "decline":
        dispatch_services.decline_order(user=user, order_id=order.pk, reason=kw.get("reason", ""))
    else:
        order_services.order_move(user=user, order_id=order.pk, move=m.name, **kw)


PAGES = {  # page → (whole page, its body fragment, its URL name)
    "order": ("web/orders/detail.html", "web/orders/_body.html", "web:order_detail"),
    "tech": ("web/tech/job.html", "web/tech/_job_body.html", "web:tech_job"),
}


def _after_write(request, order_id: int, page: str, flash: str):
    """The page's body again after a write (htmx), or a redirect to it (plain form)."""
    _full, body, url_name = PAGES[page]
    url = reverse(url_name, args=[order_id])
    if not is_htmx(request):
        messages.success(request, flash)
        return redirect(url)
    try:
        order = order_selectors.order_get(request.user, order_id)
    except NotFound:  # e.g. transferred out of the user's scope
        messages.success(request, flash)
        return _hx_redirect(reverse("web:tech_jobs" if page == "tech" else "web:order_list"))
    return _respond(request, body, order_context(request, order, page=page, flash=flash))


FAILED_PARTS = {  # the fragment that shows a refused write, and the element it replaces
    "note": ("web/orders/_note_form.html", "#note-form"),
    "photo": ("web/orders/_photos.html", "#photos"),
    "confirm": ("web/tech/_confirm.html", "#confirm"),
    "dispatch": ("web/orders/_dispatch.html", "#dispatch-panel"),
}


def _write_failed(request, order: WorkOrder, page: str, *, status: int, part: str, **ctx_kw):
    """Show a refused write in its own form (htmx: only that form is swapped), with its status."""
    full = PAGES[page][0]
    ctx = order_context(request, order, page=page, **ctx_kw)
    if is_htmx(request):
        if part == "move":
            name = ctx_kw["failed_move"].name
            ctx["mv"] = next(mv for mv in ctx["moves"] if mv["move"].name == name)
            template, target = "web/orders/_move_form.html", f"#move-{name}"
        else:
            template, target = FAILED_PARTS[part]
        return _respond(request, template, ctx, status=status, retarget=target)
    return _respond(request, full, ctx, status=status)


@require_POST
@require_perm(Perm.ORDER_VIEW, Perm.ORDER_WORK, Perm.ORDER_CREATE)
def order_move_page(request, order_id: int, move: str, page: str = "order"):
    user = request.user
    order = order_selectors.order_get(user, order_id)
    m = workflow.MOVES.get(move)
    if m is None or m.name in PANEL_MOVES:
        raise Http404
    form = _move_form(m, order, request.POST)
    status = 400
    if form.is_valid():
        try:
            _apply_move(user, order, m, form.service_kwargs())
        except ValidationFailed as e:
            add_service_errors(form, e, {n: n for n in form.names})
        except Conflict as e:
            form.add_error(None, str(e.message))
            status = 409
        except DomainPermissionDenied as e:
            form.add_error(None, str(e.message))
            status = 403
        else:
            return _after_write(request, order.pk, page, _("已执行「%(move)s」。") % {"move": m.label})
    order = order_selectors.order_get(user, order_id)
    return _write_failed(request, order, page, status=status, part="move", move_forms={m.name: form},
                         failed_move=m)


@require_POST
@require_perm(Perm.ORDER_VIEW, Perm.ORDER_WORK, Perm.ORDER_CREATE)
def order_note_page(request, order_id: int, page: str = "order"):
    user = request.user
    order = order_selectors.order_get(user, order_id)
    form = NoteForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            order_services.order_note(user=user, order_id=order.pk, note=form.cleaned_data["note"])
        except ValidationFailed as e:
            add_service_errors(form, e, {"note": "note"})
        else:
            return _after_write(request, order.pk, page, _("已添加备注。"))
    return _write_failed(request, order, page, status=status, part="note", note_form=form)


@require_POST
@require_perm(Perm.ORDER_VIEW, Perm.ORDER_WORK, Perm.ORDER_CREATE)
def order_photo_upload(request, order_id: int, page: str = "order"):
    user = request.user
    order = order_selectors.order_get(user, order_id)
    form = PhotoForm(request.POST, request.FILES)
    status = 400
    if form.is_valid():
        try:
            order_services.order_photo_add(user=user, order_id=order.pk, upload=form.cleaned_data["image"],
                                           caption=form.cleaned_data["caption"])
        except ValidationFailed as e:
            add_service_errors(form, e, {"image": "image", "caption": "caption"})
        except Conflict as e:
            form.add_error(None, str(e.message))
            status = 409
        except DomainPermissionDenied as e:
            form.add_error(None, str(e.message))
            status = 403
        else:
            return _after_write(request, order.pk, page, _("照片已上传。"))
    return _write_failed(request, order, page, status=status, part="photo", photo_form=form)


@require_GET
@require_perm(Perm.ORDER_VIEW, Perm.ORDER_WORK, Perm.ORDER_CREATE, OWN_FILE)
def order_photo(request, order_id: int, photo_id: int):
    """A photo of an order, to those who may see the order (the media folder is not public)."""
    order = order_selectors.order_get(request.user, order_id)
    ph = OrderPhoto.objects.filter(pk=photo_id, order=order).first()
    if ph is None or not ph.image:
        raise Http404
    return _file(ph.image)


@require_GET
@require_perm(Perm.ORDER_VIEW, Perm.ORDER_WORK, Perm.ORDER_CREATE, OWN_FILE)
def order_signature(request, order_id: int):
    order = order_selectors.order_get(request.user, order_id)
    if not order.signature:
        raise Http404
    return _file(order.signature)


def _file(field) -> FileResponse:
    try:
        f = field.open("rb")
    except (FileNotFoundError, OSError):
        raise Http404 from None
    resp = FileResponse(f, filename=field.name.rsplit("/", 1)[-1])
    resp["Cache-Control"] = "private, max-age=3600"
    resp["X-Content-Type-Options"] = "nosniff"
    return resp


# ---------------------------------------------------------------- dispatch panel


def _default_slot(order: WorkOrder, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    if order.wish_from and order.wish_to and order.wish_from > now:
        return order.wish_from, min(order.wish_to, order.wish_from + dt.timedelta(hours=4))
    if order.appointment_from and order.appointment_to and order.appointment_from > now:
        return order.appointment_from, order.appointment_to
    start = timezone.localtime(now).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    if start.hour < DAY_FIRST_SLOT:  # not in the night: the morning's first slot
        start = start.replace(hour=DAY_FIRST_SLOT)
    elif start.hour > DAY_LAST_SLOT:
        start = (start + dt.timedelta(days=1)).replace(hour=DAY_FIRST_SLOT)
    return start, start + dt.timedelta(hours=2)


def _dispatch_ctx(user, order: WorkOrder, *, slot=None, form=None, error=None) -> dict:
    """The dispatch panel: the technicians ranked for the slot (the wished window by default)."""
    starts, ends = slot if slot else _default_slot(order, timezone.now())
    out = {"rebook": order.status in REBOOK, "candidates": [], "error": error, "form": form,
           "starts_value": local_value(starts), "ends_value": local_value(ends)}
    try:
        out["candidates"] = dispatch_selectors.candidates(user, order.pk, starts_at=starts, ends_at=ends, limit=10)
    except ValidationFailed as e:
        out["error"] = out["error"] or _errors_text(e)
    except Conflict as e:
        out["error"] = out["error"] or str(e.message)
    return out


def _may_dispatch_or_403(user, order: WorkOrder) -> None:
    if not holds_at(user, Perm.ORDER_DISPATCH, order.node_id):
        raise DomainPermissionDenied()


@require_GET
@require_perm(Perm.ORDER_DISPATCH)
def order_candidates(request, order_id: int):
    """The dispatch panel for the slot picked."""
    user = request.user
    order = order_selectors.order_get(user, order_id)
    _may_dispatch_or_403(user, order)
    slot_form = SlotForm(request.GET)
    slot, error = None, None
    if slot_form.is_valid() and slot_form.cleaned_data.get("starts_at") and slot_form.cleaned_data.get("ends_at"):
        slot = (slot_form.cleaned_data["starts_at"], slot_form.cleaned_data["ends_at"])
    elif slot_form.errors:
        error = "；".join(str(m) for msgs in slot_form.errors.values() for m in msgs)
    ctx = {"dispatch": _dispatch_ctx(user, order, slot=slot, error=error), "order": order, "may_dispatch": True}
    if not is_htmx(request):
        return redirect("web:order_detail", order_id=order.pk)
    return _respond(request, "web/orders/_dispatch.html", ctx, status=400 if error else 200)


@require_POST
@require_perm(Perm.ORDER_DISPATCH)
def order_dispatch(request, order_id: int):
    """Book the technician picked in the panel (dispatch, or reassign a booked order)."""
    user = request.user
    order = order_selectors.order_get(user, order_id)
    _may_dispatch_or_403(user, order)
    form = DispatchForm(request.POST)
    status, error = 400, None
    rebook = order.status in REBOOK
    if form.is_valid():
        d = form.cleaned_data
        try:
            if rebook:
                done = dispatch_services.reassign_order(
                    user=user, order_id=order.pk, employee_id=d["employee_id"], starts_at=d["starts_at"],
                    ends_at=d["ends_at"], reason=d["note"])
            else:
                done = dispatch_services.dispatch_order(
                    user=user, order_id=order.pk, employee_id=d["employee_id"], starts_at=d["starts_at"],
                    ends_at=d["ends_at"], note=d["note"])
        except ValidationFailed as e:
            error = _errors_text(e, with_message=True)
        except Conflict as e:
            error, status = str(e.message), 409
        except DomainPermissionDenied as e:
            error, status = str(e.message), 403
        else:
            flash = _("已派工。") if not rebook else _("已改派。")
            warnings = getattr(done, "dispatch_warnings", None) or []
            if warnings:  # e.g. the technician holds an instrument whose calibration has lapsed
                flash = f"{flash} {'；'.join(str(w) for w in warnings)}"
            return _after_write(request, order.pk, "order", flash)
    else:
        error = "；".join(str(m) for msgs in form.errors.values() for m in msgs)
    slot = None
    if form.is_valid() and form.cleaned_data.get("starts_at") and form.cleaned_data.get("ends_at"):
        slot = (form.cleaned_data["starts_at"], form.cleaned_data["ends_at"])
    order = order_selectors.order_get(user, order_id)
    dispatch = _dispatch_ctx(user, order, slot=slot, form=form, error=error)
    return _write_failed(request, order, "order", status=status, part="dispatch", dispatch=dispatch)


# ================================================================ lists


MANAGER_ROLES = (Role.HQ_MANAGER, Role.CENTRE_MANAGER, Role.OUTLET_MANAGER, Role.ADMIN)


def _role_defaults(user) -> dict:
    """The list a role starts from: the agent their open orders, the dispatcher what waits
    for dispatch at their node, a manager the open orders with breaches and risks first."""
    p = principal(user)
    roles = set(p.role_names)
    if Role.AGENT in roles:
        return {"mine": "on", "open": "on"}
    if Role.DISPATCHER in roles:
        node = next((n for r, n, _p in p.roles if r == Role.DISPATCHER), None)
        return {"status": Status.CLASSIFIED, "node": str(node) if node else ""}
    if p.is_superuser or roles & set(MANAGER_ROLES):
        return {"sla_first": "on", "open": "on"}
    return {}


def _scope_nodes(user) -> list[Node]:
    ids = principal(user).node_ids_for(Perm.ORDER_VIEW)
    qs = Node.objects.filter(active=True).order_by("path")
    if ids is None:
        return list(qs)
    return list(qs.filter(pk__in=ids)) if ids else []


def _with_list_fields(user, rows):
    for o in rows:
        o.shown_phone = customer_selectors.shown_phone(user, o.customer)
    return rows


@require_GET
@require_perm(Perm.ORDER_VIEW, Perm.ORDER_WORK, Perm.ORDER_CREATE, OWN_FILE)
def order_list(request):
    user = request.user
    nodes = _scope_nodes(user)
    data = request.GET
    defaults_applied = False
    if "f" not in data:
        defaults = _role_defaults(user)
        if defaults:
            defaults_applied = True
            data = QueryDict(mutable=True)
            data.update(defaults)
            if "cursor" in request.GET:
                data["cursor"] = request.GET["cursor"]
    form = OrderFilterForm(data, nodes=nodes)
    status, rows, next_cursor, error = 200, [], None, None
    if form.is_valid():
        d = form.cleaned_data
        node = next((n for n in nodes if n.pk == d["node"]), None) if d["node"] else None
        qs = order_selectors.order_filter(
            order_selectors.order_queryset(user), status=d["status"] or None,
            node_id=node.pk if node is not None and node.kind == NodeKind.OUTLET else None,
            node_path=node.path if node is not None and node.kind != NodeKind.OUTLET else None,
            sla_state=d["sla_state"] or None, type=d["type"] or None, date_from=d["date_from"],
            date_to=d["date_to"], open_only=d["open"], owner_id=user.pk if d["mine"] else None, q=d["q"] or None)
        ordering = list(order_selectors.ORDERING)
        if d["sla_first"]:
            qs = qs.annotate(sla_rank=Case(When(sla_state=SlaState.BREACHED, then=Value(2)),
                                           When(sla_state=SlaState.AT_RISK, then=Value(1)),
                                           default=Value(0), output_field=IntegerField()))
            ordering = ["-sla_rank", *ordering]
        try:
            page = keyset_page(order_selectors.list_qs(qs), ordering=ordering, cursor=data.get("cursor") or None,
                               limit=PAGE_SIZE)
        except ValidationFailed as e:
            error, status = _errors_text(e), 400
        else:
            rows, next_cursor = _with_list_fields(user, page.items), page.next_cursor
    else:
        status = 400
    params = data.copy()
    params.pop("cursor", None)
    params["f"] = "1"
    ctx = {"form": form, "rows": rows, "next_cursor": next_cursor, "error": error, "nodes": nodes,
           "base_query": params.urlencode(), "first_page": "cursor" in data, "now": timezone.now(),
           "defaults_applied": defaults_applied, "show_nodes": bool(nodes),
           "can_create": principal(user).can(Perm.ORDER_CREATE)}
    template = "web/orders/_list_table.html" if is_htmx(request) else "web/orders/list.html"
    return _respond(request, template, ctx, status=status)


# ================================================================ technician


def _job_day(request) -> dt.date:
    raw = request.GET.get("day")
    today = timezone.localdate()
    if raw:
        try:
            d = dt.date.fromisoformat(raw)
        except ValueError:
            return today
        if abs((d - today).days) <= 60:
            return d
    return today


@require_GET
@require_perm(Perm.ORDER_WORK)
def tech_jobs(request):
    """The technician's day on the phone: the jobs in the order of their appointments."""
    user = request.user
    day = _job_day(request)
    jobs = list(order_selectors.technician_jobs(user, day)
                .select_related("unit__model__category__policy", "fault_code")
                .prefetch_related("unit__model__main_parts", "unit__repairs"))
    cards = []
    today = timezone.localdate()
    for o in jobs:
        pii = customer_selectors.can_see_pii(user, o.customer)
        decision, error = _decision(o.unit, on=today,
                                    fault_key=o.fault_category.code if o.fault_category_id else None,
                                    part_code=o.fault_code.part_code if o.fault_code_id else None)
        cards.append({"o": o, "pii": pii, "phone": customer_selectors.shown_phone(user, o.customer),
                      "address": address_text(user, o.customer, o.address), "map_url": map_link(o.address, full=pii),
                      "decision": decision, "decision_error": error})
    employee = getattr(user, "employee", None)
    ctx = {"cards": cards, "day": day, "today": today, "prev_day": day - dt.timedelta(days=1),
           "next_day": day + dt.timedelta(days=1),
           "panels": tech_day_panels(request, employee) if employee is not None else []}
    return render(request, "web/tech/jobs.html", ctx)


@require_GET
@require_perm(Perm.ORDER_WORK)
def tech_job(request, order_id: int):
    order = order_selectors.order_get(request.user, order_id)
    return _respond(request, "web/tech/job.html", order_context(request, order, page="tech"))


@require_GET
@require_perm(Perm.ORDER_WORK, Perm.ORDER_VIEW)
def order_fault_warranty(request, order_id: int):
    """The 三包 decision for the part of the fault code picked at diagnosis."""
    order = order_selectors.order_get(request.user, order_id)
    unit = _order_unit(order)
    if unit is None:
        return _respond(request, "web/customers/_decision.html", {"error": _("此工单没有登记产品。"), "checked": True})
    code = (request.GET.get("fault_code") or "").strip()
    fc = None
    if code:
        fc = FaultCode.objects.select_related("fault_category").filter(
            category_id=unit.model.category_id, code=code).first()
    today = timezone.localdate()
    decision, error = _decision(unit, on=today, fault_key=fc.fault_category.code if fc else None,
                                part_code=fc.part_code if fc else None)
    part_names = {p.code: p.name for p in unit.model.main_parts.all()}
    part = fc.part_code if fc else ""
    ctx = {"decision": decision, "error": error, "on": today, "part": part, "part_name": part_names.get(part, part),
           "checked": True}
    return _respond(request, "web/customers/_decision.html", ctx)


@require_POST
@require_perm(Perm.ORDER_WORK, Perm.ORDER_HANDLE)
def tech_code_send(request, order_id: int):
    user = request.user
    order = order_selectors.order_get(user, order_id)
    try:
        order_services.confirmation_code_send(user=user, order_id=order.pk)
    except ValidationFailed as e:
        form = _bound(ConfirmForm)
        add_service_errors(form, e, {"code": "code", "signature": "signature"})
        return _confirm_failed(request, order, form, 400)
    except Conflict as e:
        form = _bound(ConfirmForm)
        form.add_error(None, str(e.message))
        return _confirm_failed(request, order, form, 409)
    except DomainPermissionDenied as e:
        form = _bound(ConfirmForm)
        form.add_error(None, str(e.message))
        return _confirm_failed(request, order, form, 403)
    order = order_selectors.order_get(user, order.pk)
    flash = _("确认码已发送至客户手机 %(phone)s，%(minutes)s 分钟内有效。") % {
        "phone": customer_selectors.shown_phone(user, order.customer),
        "minutes": int(order_services.CODE_TTL.total_seconds() // 60)}
    if not is_htmx(request):
        messages.success(request, flash)
        return redirect("web:tech_job", order_id=order.pk)
    return _respond(request, "web/tech/_confirm.html",
                    {"order": order, "confirm": _confirm_ctx(user, order, flash=flash)})


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@require_POST
@require_perm(Perm.ORDER_WORK, Perm.ORDER_HANDLE)
def tech_confirm(request, order_id: int):
    """The customer's confirmation: the code they received, or their signature (a PNG)."""
    user = request.user
    order = order_selectors.order_get(user, order_id)
    form = ConfirmForm(request.POST, request.FILES)
    if not form.is_valid():
        return _confirm_failed(request, order, form, 400)
    code = (form.cleaned_data["code"] or "").strip()
    signature = form.cleaned_data["signature"]
    if signature is not None and not code:
        head = signature.read(8)
        signature.seek(0)
        if head != PNG_MAGIC:
            form.add_error("signature", _("签名图片无效。"))
            return _confirm_failed(request, order, form, 400)
    try:
        order_services.order_confirm(user=user, order_id=order.pk, code=code or None,
                                     signature=None if code else signature)
    except ValidationFailed as e:
        add_service_errors(form, e, {"code": "code", "signature": "signature"})
        return _confirm_failed(request, order, form, 400)
    except Conflict as e:
        form.add_error(None, str(e.message))
        return _confirm_failed(request, order, form, 409)
    except DomainPermissionDenied as e:
        form.add_error(None, str(e.message))
        return _confirm_failed(request, order, form, 403)
    return _after_write(request, order.pk, "tech", _("客户已确认服务。"))


def _bound(form_class):
    """An empty bound form, to carry a service's messages."""
    form = form_class({})
    form.is_valid()
    return form


def _confirm_failed(request, order: WorkOrder, form, status: int):
    order = order_selectors.order_get(request.user, order.pk)
    return _write_failed(request, order, "tech", status=status, part="confirm",
                         confirm=_confirm_ctx(request.user, order, form=form))


# ================================================================ outbox


_CODE = re.compile(r"(?<![0-9A-Za-z])\d{6}(?![0-9])")
_TOKEN = re.compile(r"(/[A-Za-z0-9_\-]{16,})(/?)(?=\s|$|[（(，,。])")


def shown_body(m: Message) -> str:
    """A message's text as the outbox shows it: a confirmation code or a survey link's
    token is for the customer only."""
    body = m.body
    if m.event == "confirm_code":
        body = _CODE.sub("******", body)
    return _TOKEN.sub(lambda mt: "/…" + mt.group(2), body)


def _outbox_events() -> list[tuple[str, str]]:
    keys = list(MESSAGE_EVENT_LABELS) + [k for k in MESSAGE_TEMPLATES if k not in MESSAGE_EVENT_LABELS]
    return [(k, message_event_label(k)) for k in keys]


@require_GET
@require_perm(Perm.NOTIFY_VIEW)
def outbox(request):
    user = request.user
    p = principal(user)
    form = OutboxFilterForm(request.GET, events=_outbox_events())
    qs = Message.objects.select_related("customer", "user")
    f = scope_filter(user, Perm.NOTIFY_VIEW)
    if f is not None:
        qs = qs.filter(f | Q(user_id=user.pk))
    status, rows, next_cursor, error = 200, [], None, None
    if form.is_valid():
        d = form.cleaned_data
        if d["event"]:
            qs = qs.filter(event=d["event"])
        if d["status"]:
            qs = qs.filter(status=d["status"])
        if d["ref"]:
            qs = qs.filter(ref=d["ref"].strip().upper())
        try:
            page = keyset_page(qs, ordering=["-created_at", "-id"], cursor=request.GET.get("cursor") or None,
                               limit=PAGE_SIZE)
        except ValidationFailed as e:
            error, status = _errors_text(e), 400
        else:
            next_cursor = page.next_cursor
            pii_ids = p.node_ids_for(Perm.CUSTOMER_PII)
            for m in page.items:
                if m.customer_id is not None:
                    full = pii_ids is None or (m.node_id is not None and m.node_id in pii_ids)
                    who = m.customer.name
                else:
                    full = True
                    who = (m.user.get_full_name() or m.user.get_username()) if m.user_id else ""
                rows.append({
                    "m": m, "who": who, "address": shown_address(m, full=full), "body": shown_body(m),
                    "event": message_event_label(m.event),
                    "order_url": reverse("web:order_detail", args=[m.ref_id])
                    if m.ref_id and m.ref.upper().startswith("GD") else "",
                })
    else:
        status = 400
    params = request.GET.copy()
    params.pop("cursor", None)
    ctx = {"form": form, "rows": rows, "next_cursor": next_cursor, "error": error,
           "base_query": params.urlencode(), "first_page": "cursor" in request.GET}
    template = "web/orders/_outbox_table.html" if is_htmx(request) else "web/orders/outbox.html"
    return _respond(request, template, ctx, status=status)


