"""Pages of the spare parts: the catalog, the imports and the export, the stock per warehouse,
the movements, the transfers and the replenishment, and the forms of the order panels.

Thin: reads through ``selectors`` (scoping applied there) and ``services_catalog``'s reads,
writes through ``services`` / ``services_catalog``. Every page declares its permission; a
warehouse (or order) out of scope is 404, an action the role may not take is 403. A form the
services refuse comes back with its messages (400, or 409 for a conflict); never a 500.
Lists are keyset-paginated ("更多" fetches the next rows with htmx).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from urllib.parse import quote

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import DecimalField, F, Sum
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aftersales.core.errors import DomainError, NotFound, ValidationFailed
from aftersales.core.pagination import keyset_page
from aftersales.org.roles import Perm
from aftersales.org.scope import holds_at, principal
from aftersales.tickets.selectors import order_get, order_queryset
from aftersales.web.permissions import is_htmx, require_perm

from . import excel, selectors, services, services_catalog
from .forms import (
    AdjustForm,
    CatalogFilterForm,
    ConsumeForm,
    ImportForm,
    MovementFilterForm,
    PartForm,
    PartRequestForm,
    ReceiveForm,
    ReorderForm,
    ScrapForm,
    StockFilterForm,
    TransferForm,
    add_service_errors,
    yes_no,
)
from .models import Part, RequestStatus, TransferPurpose, TransferStatus, Warehouse, WarehouseKind

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PAGE_SIZE = 50
ERRORS_SHOWN = 50


def _xlsx(content: bytes, filename: str) -> HttpResponse:
    resp = HttpResponse(content, content_type=XLSX)
    resp["Content-Disposition"] = f"attachment; filename=\"parts.xlsx\"; filename*=UTF-8''{quote(filename)}"
    return resp


def _errors_text(e: ValidationFailed) -> str:
    msgs = [str(m) for ms in e.errors.values() for m in ms]
    return "；".join(msgs) or str(e.message)


# ================================================================ the parts catalog

def _catalog_filters(request) -> tuple[CatalogFilterForm, dict]:
    data = request.GET if "f" in request.GET else {"active": "1"}
    form = CatalogFilterForm(data)
    if not form.is_valid():
        return form, {}
    d = form.cleaned_data
    return form, {"q": d["q"], "category": d["category"], "model": d["model"], "main_part": d["main_part"],
                  "serialised": yes_no(d["serialised"]), "returnable": yes_no(d["returnable"]),
                  "active": yes_no(d["active"])}


@require_GET
@require_perm(Perm.PARTS_VIEW, Perm.CATALOG_EDIT)
def catalog(request):
    """The parts catalog: search by code / name, category, model, main part, flags."""
    p = principal(request.user)
    form, filters = _catalog_filters(request)
    rows, next_cursor, error, status = [], None, None, 200
    if form.is_valid():
        try:
            page = keyset_page(services_catalog.part_queryset(**filters), ordering=services_catalog.CATALOG_ORDERING,
                               cursor=request.GET.get("cursor") or None, limit=PAGE_SIZE)
        except ValidationFailed as e:
            error, status = _errors_text(e), 400
        else:
            rows, next_cursor = page.items, page.next_cursor
    else:
        status = 400
    params = request.GET.copy()
    params.pop("cursor", None)
    params["f"] = "1"
    ctx = {"form": form, "rows": rows, "next_cursor": next_cursor, "error": error,
           "base_query": params.urlencode(), "may_edit": p.can(Perm.CATALOG_EDIT),
           "show_cost": p.can(Perm.CATALOG_EDIT) or p.can(Perm.PARTS_MANAGE)}
    if is_htmx(request):
        template = "parts/_catalog_rows.html" if request.GET.get("cursor") else "parts/_catalog_table.html"
    else:
        template = "parts/catalog.html"
    return render(request, template, ctx, status=status)


def _part_values(d: dict) -> dict:
    return {"name_en": d["name_en"], "category": d["category"], "fits": d["fits"],
            "main_part_code": d["main_part_code"], "uom": d["uom"], "unit_cost": d["unit_cost"],
            "serialised": d["serialised"], "returnable": d["returnable"], "active": d["active"]}


@require_http_methods(["GET", "POST"])
@require_perm(Perm.CATALOG_EDIT)
def part_create(request):
    form = PartForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            d = form.cleaned_data
            try:
                part = services_catalog.part_create(user=request.user, code=d["code"], name=d["name"],
                                                    **_part_values(d))
            except ValidationFailed as e:
                add_service_errors(form, e)
            else:
                return redirect(f"{reverse('parts:catalog')}?f=1&q={quote(part.code)}")
    return render(request, "parts/part_form.html", {"form": form, "part": None}, status=status)


@require_http_methods(["GET", "POST"])
@require_perm(Perm.CATALOG_EDIT)
def part_edit(request, part_id: int):
    part = services_catalog.part_get(part_id)
    status = 200
    if request.method == "POST":
        form = PartForm(request.POST)
        status = 400
        if form.is_valid():
            d = form.cleaned_data
            try:
                part = services_catalog.part_update(user=request.user, part_id=part.pk, code=d["code"],
                                                    name=d["name"], **_part_values(d))
            except ValidationFailed as e:
                add_service_errors(form, e)
            else:
                return redirect(f"{reverse('parts:catalog')}?f=1&q={quote(part.code)}")
    else:
        form = PartForm(initial=PartForm.initial_for(part))
    return render(request, "parts/part_form.html", {"form": form, "part": part}, status=status)


# ================================================================ imports

REPORT_DIR = "parts-import"
REPORT_TOKEN = re.compile(r"^[0-9a-f]{32}$")
REPORT_KEEP = dt.timedelta(days=2)


def _report_path(user_id: int, token: str) -> str:
    return f"{REPORT_DIR}/{user_id}/{token}.xlsx"


def _keep_report(user, content: bytes) -> str:
    """Store an error report for its uploader to download; returns its token. The user's older
    reports (beyond ``REPORT_KEEP``) are removed on the way."""
    folder = f"{REPORT_DIR}/{user.pk}"
    try:
        _dirs, files = default_storage.listdir(folder)
    except FileNotFoundError:
        files = []
    cutoff = timezone.now() - REPORT_KEEP
    for name in files:
        try:
            if default_storage.get_modified_time(f"{folder}/{name}") < cutoff:
                default_storage.delete(f"{folder}/{name}")
        except OSError:
            pass
    token = secrets.token_hex(16)
    default_storage.save(_report_path(user.pk, token), ContentFile(content))
    return token


def _import_kinds(user) -> list[tuple[str, str]]:
    p = principal(user)
    kinds = []
    if p.can(Perm.CATALOG_EDIT):
        kinds.append(("catalog", _("配件目录")))
    if p.can(Perm.PARTS_MANAGE):
        kinds.append(("stock", _("期初库存")))
    return kinds


@require_http_methods(["GET", "POST"])
@require_perm(Perm.CATALOG_EDIT, Perm.PARTS_MANAGE)
def import_page(request):
    """Upload a parts catalog or an opening stock file; the import runs at once (synchronously)
    and the page shows what it did, the first rejected rows and a link to the error report."""
    kinds = _import_kinds(request.user)
    initial_kind = request.GET.get("kind") if request.GET.get("kind") in dict(kinds) else kinds[0][0]
    form = ImportForm(request.POST or None, request.FILES or None, initial={"kind": initial_kind})
    form.fields["kind"].choices = kinds
    result, report_token, status = None, None, 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            f = form.cleaned_data["file"]
            kind = form.cleaned_data["kind"]
            try:
                if kind == "catalog":
                    result = services_catalog.catalog_import(user=request.user, content=f.read())
                else:
                    result = excel.stock_import(user=request.user, content=f.read(),
                                                max_rows=excel.page_stock_rows())
            except ValidationFailed as e:
                for key, msgs in e.errors.items():
                    for m in msgs:
                        form.add_error("file" if key == "file" else None, str(m))
            else:
                status = 200
                if result.report:
                    report_token = _keep_report(request.user, result.report)
    ctx = {"form": form, "result": result, "report_token": report_token, "kinds": kinds,
           "errors_shown": ERRORS_SHOWN, "stock_rows": excel.page_stock_rows(),
           "failures": result.failures[:ERRORS_SHOWN] if result is not None else []}
    return render(request, "parts/import.html", ctx, status=status)


@require_GET
@require_perm(Perm.CATALOG_EDIT, Perm.PARTS_MANAGE)
def import_template(request, kind: str):
    k = excel.KINDS.get(kind)
    if k is None or kind not in dict(_import_kinds(request.user)):
        raise Http404
    return _xlsx(excel.template_xlsx(k), f"{k.title}导入模板.xlsx")


@require_GET
@require_perm(Perm.CATALOG_EDIT, Perm.PARTS_MANAGE)
def import_report(request, token: str):
    """An error report, to the user who made the import only."""
    path = _report_path(request.user.pk, token)
    if not REPORT_TOKEN.match(token) or not default_storage.exists(path):
        raise Http404
    with default_storage.open(path, "rb") as fh:
        content = fh.read()
    return _xlsx(content, f"配件导入错误报告-{token[:8]}.xlsx")


# ================================================================ shared helpers

def _int(value) -> int | None:
    """A positive id from a query parameter; None when absent; 0 when malformed (a 404)."""
    if value in (None, ""):
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        return 0
    return n if 0 < n < 2**63 else 0


def _selected_warehouse(request, key: str = "warehouse"):
    """The warehouse named in the query (404 when it is not one the user sees)."""
    wid = _int(request.GET.get(key))
    if wid is None:
        return None
    return selectors.warehouse_get(request.user, wid)


def _manageable(user, warehouses) -> list:
    return [w for w in warehouses if holds_at(user, Perm.PARTS_MANAGE, w.node_id)]


def _next_url(request, fallback: str) -> str:
    nxt = request.POST.get("next") or request.GET.get("next") or ""
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
        return nxt
    return fallback


def _order_url(order_id: int | None) -> str | None:
    if not order_id:
        return None
    try:
        return reverse("web:order_detail", args=[order_id])
    except NoReverseMatch:
        return None


def _refused(request, exc: DomainError, back: str) -> HttpResponse:
    """A button's action the services refused: the reason, a way back, the error's status."""
    ctx = {"message": str(exc.message), "errors": [str(m) for ms in exc.errors.values() for m in ms],
           "back": back}
    return render(request, "parts/refused.html", ctx, status=exc.status)


def _status_of(exc: DomainError) -> int:
    return exc.status if 400 <= exc.status < 500 else 400


def _part_by_code(code: str):
    return excel.by_code(Part.objects.filter(active=True), [code]).get((code or "").strip().upper())


# ================================================================ stock

STOCK_FORMS = {"receive": ReceiveForm, "adjust": AdjustForm, "scrap": ScrapForm}
CHART_ITEMS = 12


def _stock_chart(user, warehouse) -> dict:
    """The items closest to (or below) their reorder point: available vs reorder point."""
    qs = selectors.stock_queryset(user).filter(reorder_point__isnull=False)
    if warehouse is not None:
        qs = qs.filter(warehouse_id=warehouse.pk)
    rows = list(qs.annotate(gap=F("on_hand") - F("reserved") - F("reorder_point"))
                .order_by("gap", "warehouse__code", "part__code")[:CHART_ITEMS])
    labels = [s.part.code if warehouse is not None else f"{s.part.code}@{s.warehouse.code}" for s in rows]
    return {"labels": labels, "available": [s.on_hand - s.reserved for s in rows],
            "reorder_point": [s.reorder_point for s in rows],
            "names": {"available": _("可用"), "reorder_point": _("补货点")}}


def _stock_value(user, warehouse) -> list[dict]:
    """Stock value (on hand at catalogue cost) by kind of warehouse."""
    qs = selectors.stock_queryset(user)
    if warehouse is not None:
        qs = qs.filter(warehouse_id=warehouse.pk)
    rows = (qs.order_by().values("warehouse__kind")
            .annotate(value=Sum(F("on_hand") * F("part__unit_cost"), output_field=DecimalField()),
                      defective=Sum("defective")))
    labels = dict(WarehouseKind.choices)
    return [{"kind": r["warehouse__kind"], "label": labels.get(r["warehouse__kind"], r["warehouse__kind"]),
             "value": r["value"] or 0, "defective": r["defective"] or 0} for r in rows]


def _stock_filters(request, warehouses) -> StockFilterForm:
    return StockFilterForm(request.GET, warehouses=warehouses)


def _stock_page(request, *, forms=None, open_form: str | None = None, status: int = 200, error: str | None = None):
    user = request.user
    warehouse = _selected_warehouse(request)
    warehouses = list(selectors.warehouses_for(user))
    form = _stock_filters(request, warehouses)
    rows, next_cursor = [], None
    if form.is_valid():
        d = form.cleaned_data
        try:
            page = selectors.stock_list(user, warehouse_id=warehouse.pk if warehouse else None, q=d["q"],
                                        below_reorder=d["below"], cursor=request.GET.get("cursor") or None,
                                        limit=PAGE_SIZE)
        except ValidationFailed as e:
            error, status = _errors_text(e), 400
        else:
            rows, next_cursor = page.items, page.next_cursor
    elif status == 200:
        status = 400
    params = request.GET.copy()
    params.pop("cursor", None)
    p = principal(user)
    show_cost = p.can(Perm.PARTS_MANAGE) or p.can(Perm.CATALOG_EDIT)
    ctx = {"form": form, "rows": rows, "next_cursor": next_cursor, "error": error, "warehouse": warehouse,
           "base_query": params.urlencode(), "show_cost": show_cost}
    if is_htmx(request) and request.GET.get("cursor"):
        return render(request, "parts/_stock_rows.html", ctx, status=status)
    if is_htmx(request):
        return render(request, "parts/_stock_table.html", ctx, status=status)
    manage = _manageable(user, warehouses)
    initial = {"warehouse": warehouse.pk} if warehouse is not None else {}
    forms = forms or {}
    ctx.update({
        "manage": bool(manage),
        "forms": [(name, forms.get(name) or cls(initial=initial, warehouses=manage)) for name, cls in STOCK_FORMS.items()]
        if manage else [],
        "open_form": open_form,
        "chart": _stock_chart(user, warehouse),
        "values": _stock_value(user, warehouse) if show_cost else [],
        "export_query": params.urlencode(),
    })
    return render(request, "parts/stock.html", ctx, status=status)


@require_GET
@require_perm(Perm.PARTS_VIEW)
def stock(request):
    """Stock per warehouse (those in the user's scope): on hand, reserved, available,
    defective, reorder settings; the rows at or below their reorder point stand out."""
    return _stock_page(request)


@require_POST
@require_perm(Perm.PARTS_MANAGE)
def stock_action(request, action: str):
    """Receive, count (adjust) or scrap from the stock page."""
    cls = STOCK_FORMS.get(action)
    if cls is None:
        raise Http404
    user = request.user
    manage = _manageable(user, selectors.warehouses_for(user))
    form = cls(request.POST, warehouses=manage)
    status = 400
    if form.is_valid():
        d = form.cleaned_data
        part = _part_by_code(d["part"])
        if part is None:
            form.add_error("part", _("配件 %(code)s 不在配件目录中（或已停用）。") % {"code": d["part"]})
        else:
            kw = {"user": user, "warehouse_id": d["warehouse"], "part_id": part.pk}
            try:
                if action == "receive":
                    services.stock_receive(**kw, qty=d["qty"], unit_cost=d["unit_cost"],
                                           serials=tuple(excel.split_list(d["serials"], serials=True)),
                                           reason=d["reason"])
                    msg = _("已入库：%(code)s × %(n)s。") % {"code": part.code, "n": d["qty"]}
                elif action == "adjust":
                    services.stock_adjust(**kw, counted=d["counted"], reason=d["reason"])
                    msg = _("已按盘点数量调整：%(code)s 在库 %(n)s。") % {"code": part.code, "n": d["counted"]}
                else:
                    services.stock_scrap(**kw, qty=d["qty"], reason=d["reason"], defective=d["defective"],
                                         serials=tuple(excel.split_list(d["serials"], serials=True)))
                    msg = _("已报废：%(code)s × %(n)s。") % {"code": part.code, "n": d["qty"]}
            except DomainError as e:
                add_service_errors(form, e, {"warehouse_id": "warehouse", "part_id": "part", "serial": "serials"})
                status = _status_of(e)
            else:
                messages.success(request, msg)
                return redirect(f"{reverse('parts:stock')}?warehouse={d['warehouse']}")
    request.GET = request.GET.copy()
    if not request.GET.get("warehouse") and str(request.POST.get("warehouse", "")).isdigit():
        if int(request.POST["warehouse"]) in {w.pk for w in manage}:
            request.GET["warehouse"] = request.POST["warehouse"]
    return _stock_page(request, forms={action: form}, open_form=action, status=status)


EXPORT_PAGE = 200


@require_GET
@require_perm(Perm.PARTS_VIEW)
def stock_export(request):
    """The stock rows of the user's scope with the page's filters, as .xlsx (Chinese headers)."""
    user = request.user
    warehouse = _selected_warehouse(request)
    form = _stock_filters(request, list(selectors.warehouses_for(user)))
    if not form.is_valid():
        return HttpResponse(_errors_text(ValidationFailed(form.errors)), status=400,
                            content_type="text/plain; charset=utf-8")
    d = form.cleaned_data

    def rows():
        cursor = None
        while True:
            page = selectors.stock_list(user, warehouse_id=warehouse.pk if warehouse else None, q=d["q"],
                                        below_reorder=d["below"], cursor=cursor, limit=EXPORT_PAGE)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    stem = f"库存-{warehouse.code}" if warehouse is not None else "库存"
    return _xlsx(excel.export_xlsx(rows()), f"{stem}-{timezone.localdate():%Y%m%d}.xlsx")


# ================================================================ movements

def _day_start(d: dt.date) -> dt.datetime:
    return dt.datetime.combine(d, dt.time(), timezone.get_current_timezone())


@require_GET
@require_perm(Perm.PARTS_VIEW)
def movements(request):
    """The ledger: each movement's changes and the balances after it, who, which order and
    transfer; filters by warehouse, part, kind, dates, order."""
    user = request.user
    warehouse = _selected_warehouse(request)
    form = MovementFilterForm(request.GET, warehouses=list(selectors.warehouses_for(user)))
    rows, next_cursor, error, status = [], None, None, 200
    if form.is_valid():
        d = form.cleaned_data
        part_id = order_id = None
        if d["part"]:
            part = excel.by_code(Part, [d["part"]]).get(d["part"].strip().upper())
            if part is None:
                form.add_error("part", _("配件 %(code)s 不在配件目录中。") % {"code": d["part"]})
            else:
                part_id = part.pk
        if d["order"]:
            order_id = (order_queryset(user).filter(number=d["order"].strip().upper())
                        .values_list("pk", flat=True).first())
            if order_id is None:
                form.add_error("order", _("工单 %(number)s 不存在。") % {"number": d["order"]})
        if not form.errors:
            try:
                page = selectors.movements(
                    user, warehouse_id=warehouse.pk if warehouse else None, part_id=part_id, kind=d["kind"] or None,
                    order_id=order_id, since=_day_start(d["date_from"]) if d["date_from"] else None,
                    until=_day_start(d["date_to"] + dt.timedelta(days=1)) if d["date_to"] else None,
                    cursor=request.GET.get("cursor") or None, limit=PAGE_SIZE)
            except ValidationFailed as e:
                error = _errors_text(e)
            else:
                rows, next_cursor = page.items, page.next_cursor
    if form.errors or error:
        status = 400
    params = request.GET.copy()
    params.pop("cursor", None)
    for m in rows:
        m.order_url = _order_url(m.order_id)
    ctx = {"form": form, "rows": rows, "next_cursor": next_cursor, "error": error, "base_query": params.urlencode()}
    if is_htmx(request):
        template = "parts/_movement_rows.html" if request.GET.get("cursor") else "parts/_movement_table.html"
    else:
        template = "parts/movements.html"
    return render(request, template, ctx, status=status)


# ================================================================ transfers

def _destinations(user, warehouses: list) -> list:
    """Where a transfer may go: the warehouses the user sees, and those of the tiers above them
    (an outlet sends old parts back to its centre, which it does not manage)."""
    ancestors: set[int] = set()
    for w in warehouses:
        ancestors |= {int(x) for x in w.node.path.strip("/").split("/") if x}
    above = Warehouse.objects.filter(active=True, node_id__in=ancestors).exclude(kind=WarehouseKind.VAN)
    seen = {w.pk: w for w in warehouses if w.active}
    for w in above.select_related("node"):
        seen.setdefault(w.pk, w)
    return sorted(seen.values(), key=lambda w: w.code)


def _transfer_form(user, data=None, warehouses=None) -> TransferForm:
    warehouses = warehouses if warehouses is not None else list(selectors.warehouses_for(user))
    sources = [w for w in _manageable(user, warehouses) if w.active]
    return TransferForm(data, sources=sources, destinations=_destinations(user, warehouses))


def _transfers_page(request, *, form=None, status: int = 200):
    user = request.user
    warehouse = _selected_warehouse(request)
    warehouses = list(selectors.warehouses_for(user))
    st = request.GET.get("status") or ""
    st = st if st in TransferStatus.values else ""
    purpose = request.GET.get("purpose") or ""
    purpose = purpose if purpose in TransferPurpose.values else ""
    q = (request.GET.get("q") or "").strip()[:30]
    rows, next_cursor, error = [], None, None
    if q:  # one transfer by its number (the link from a movement)
        rows = list(selectors.transfer_queryset(user).filter(number=q.upper()).prefetch_related("lines__part"))
    else:
        try:
            page = selectors.transfers(user, warehouse_id=warehouse.pk if warehouse else None, status=st or None,
                                       purpose=purpose or None, cursor=request.GET.get("cursor") or None,
                                       limit=PAGE_SIZE)
        except ValidationFailed as e:
            error, status = _errors_text(e), 400
        else:
            rows, next_cursor = page.items, page.next_cursor
    for t in rows:
        t.may_ship = t.status == TransferStatus.REQUESTED and holds_at(user, Perm.PARTS_MANAGE, t.source.node_id)
        t.may_receive = t.status == TransferStatus.SHIPPED and holds_at(user, Perm.PARTS_MANAGE,
                                                                       t.destination.node_id)
        t.may_cancel = t.status == TransferStatus.REQUESTED and (
            holds_at(user, Perm.PARTS_MANAGE, t.source.node_id)
            or holds_at(user, Perm.PARTS_MANAGE, t.destination.node_id))
        t.order_url = _order_url(t.order_id)
    params = request.GET.copy()
    params.pop("cursor", None)
    ctx = {"rows": rows, "next_cursor": next_cursor, "error": error, "warehouse": warehouse, "q": q,
           "warehouses": warehouses, "status": st, "purpose": purpose, "statuses": TransferStatus.choices,
           "purposes": TransferPurpose.choices, "base_query": params.urlencode(),
           "may_manage": principal(user).can(Perm.PARTS_MANAGE)}
    if is_htmx(request) and request.GET.get("cursor"):
        return render(request, "parts/_transfer_rows.html", ctx, status=status)
    if ctx["may_manage"]:
        ctx["form"] = form or _transfer_form(user, warehouses=warehouses)
    return render(request, "parts/transfers.html", ctx, status=status)


@require_GET
@require_perm(Perm.PARTS_VIEW)
def transfers(request):
    return _transfers_page(request)


@require_POST
@require_perm(Perm.PARTS_MANAGE)
def transfer_create(request):
    user = request.user
    form = _transfer_form(user, request.POST)
    status = 400
    if form.is_valid():
        d = form.cleaned_data
        parts = excel.by_code(Part.objects.filter(active=True), [code for code, _q, _s in d["lines"]])
        unknown = [code for code, _q, _s in d["lines"] if code.upper() not in parts]
        if unknown:
            form.add_error("lines", _("配件不在配件目录中（或已停用）：%(codes)s。") % {"codes": "、".join(unknown)})
        else:
            lines = [{"part_id": parts[code.upper()].pk, "qty": qty, "serials": serials}
                     for code, qty, serials in d["lines"]]
            try:
                t = services.transfer_create(user=user, source_id=d["source"], destination_id=d["destination"],
                                             lines=lines, purpose=d["purpose"], note=d["note"],
                                             defective=d["defective"])
            except DomainError as e:
                add_service_errors(form, e, {"source_id": "source", "destination_id": "destination"})
                status = _status_of(e)
            else:
                messages.success(request, _("已创建调拨单 %(number)s。") % {"number": t.number})
                return redirect("parts:transfers")
    return _transfers_page(request, form=form, status=status)


@require_POST
@require_perm(Perm.PARTS_MANAGE)
def transfer_action(request, transfer_id: int, action: str):
    """Ship, receive or cancel a transfer (cancel needs a reason)."""
    user = request.user
    back = _next_url(request, reverse("parts:transfers"))
    try:
        if action == "ship":
            t = services.transfer_ship(user=user, transfer_id=transfer_id)
            msg = _("调拨单 %(number)s 已发出。")
        elif action == "receive":
            t = services.transfer_receive(user=user, transfer_id=transfer_id)
            msg = _("调拨单 %(number)s 已收货。")
        elif action == "cancel":
            t = services.transfer_cancel(user=user, transfer_id=transfer_id, reason=request.POST.get("reason", ""))
            msg = _("调拨单 %(number)s 已取消。")
        else:
            raise Http404
    except DomainError as e:
        return _refused(request, e, back)
    messages.success(request, msg % {"number": t.number})
    return redirect(back)


# ================================================================ replenishment

@require_GET
@require_perm(Perm.PARTS_VIEW)
def replenishment(request):
    """What should be replenished (available + inbound at or below the reorder point), by
    warehouse, with the supplier of the tier above; managers create the transfers."""
    return _replenishment_page(request)


def _replenishment_page(request, *, reorder_form=None, status: int = 200):
    user = request.user
    warehouse = _selected_warehouse(request)
    warehouses = list(selectors.warehouses_for(user))
    rows = selectors.replenishment_suggestions(user, warehouse_id=warehouse.pk if warehouse else None)
    groups: dict[int, dict] = {}
    for r in rows:
        g = groups.setdefault(r.warehouse_id, {"warehouse": r.warehouse, "rows": [],
                                               "may_manage": holds_at(user, Perm.PARTS_MANAGE, r.warehouse.node_id)})
        g["rows"].append(r)
    manage = _manageable(user, warehouses)
    ctx = {"groups": list(groups.values()), "warehouse": warehouse, "warehouses": warehouses,
           "reorder_form": reorder_form or (ReorderForm(initial={"warehouse": warehouse.pk} if warehouse else None,
                                                        warehouses=manage) if manage else None)}
    return render(request, "parts/replenishment.html", ctx, status=status)


@require_POST
@require_perm(Perm.PARTS_MANAGE)
def replenish(request):
    """Create the transfers that replenish one warehouse (the parts ticked, or all suggested)."""
    user = request.user
    back = _next_url(request, reverse("parts:replenishment"))
    wid = _int(request.POST.get("warehouse"))
    part_ids = [n for n in (_int(v) for v in request.POST.getlist("part")) if n]
    try:
        if not wid:
            raise ValidationFailed({"warehouse_id": [_("请选择仓库。")]})
        created = services.replenish(user=user, warehouse_id=wid, part_ids=part_ids or None)
    except DomainError as e:
        return _refused(request, e, back)
    created = list(created or [])
    if created:
        messages.success(request, _("已创建补货调拨单：%(numbers)s。") % {
            "numbers": "、".join(t.number for t in created)})
    else:
        messages.info(request, _("没有需要补货的配件，或上级仓库暂无库存。"))
    return redirect(back)


@require_POST
@require_perm(Perm.PARTS_MANAGE)
def reorder_set(request):
    user = request.user
    form = ReorderForm(request.POST, warehouses=_manageable(user, selectors.warehouses_for(user)))
    status = 400
    if form.is_valid():
        d = form.cleaned_data
        part = _part_by_code(d["part"])
        if part is None:
            form.add_error("part", _("配件 %(code)s 不在配件目录中（或已停用）。") % {"code": d["part"]})
        else:
            try:
                services.reorder_set(user=user, warehouse_id=d["warehouse"], part_id=part.pk,
                                     reorder_point=d["reorder_point"], reorder_qty=d["reorder_qty"])
            except DomainError as e:
                add_service_errors(form, e, {"warehouse_id": "warehouse", "part_id": "part"})
                status = _status_of(e)
            else:
                messages.success(request, _("已设置 %(code)s 的补货点 %(p)s、补货量 %(q)s。") % {
                    "code": part.code, "p": d["reorder_point"], "q": d["reorder_qty"]})
                return redirect(_next_url(request, reverse("parts:replenishment")))
    return _replenishment_page(request, reorder_form=form, status=status)


# ================================================================ the forms of the order panels

@require_GET
@require_perm(Perm.ORDER_WORK, Perm.ORDER_DISPATCH)
def order_parts_search(request, order_id: int):
    """The parts fitting the order's unit (matching ``q``) with where they are available,
    nearest first: the search box of the order panel (htmx)."""
    from . import panels

    order = order_get(request.user, order_id)
    if not panels.may_request(request.user, order):
        raise PermissionDenied
    page = "tech" if request.GET.get("page") == "tech" else "order"
    ctx = panels.search_context(request, order, q=request.GET.get("q", ""), page=page)
    return render(request, "parts/_panel_search.html", ctx)


@require_POST
@require_perm(Perm.ORDER_WORK, Perm.ORDER_DISPATCH)
def order_part_request(request, order_id: int):
    user = request.user
    order = order_get(user, order_id)
    back = _next_url(request, _order_url(order.pk) or reverse("parts:stock"))
    form = PartRequestForm(request.POST)
    if not form.is_valid():
        return _refused(request, ValidationFailed({k: list(v) for k, v in form.errors.items()}), back)
    try:
        r = services.part_request(user=user, order_id=order.pk, part_id=form.cleaned_data["part"],
                                  qty=form.cleaned_data["qty"])
    except DomainError as e:
        return _refused(request, e, back)
    if r.status == RequestStatus.READY:
        messages.success(request, _("已从随车库存预留 %(code)s × %(n)s。") % {"code": r.part.code, "n": r.qty})
    else:
        messages.success(request, _("已申领 %(code)s × %(n)s，从 %(source)s 调拨中。") % {
            "code": r.part.code, "n": r.qty, "source": r.source.name})
    return redirect(back)


@require_POST
@require_perm(Perm.ORDER_WORK, Perm.ORDER_DISPATCH, Perm.PARTS_MANAGE)
def part_request_release(request, request_id: int):
    user = request.user
    r = selectors.part_request_get(request_id)
    order_get(user, r.order_id)  # 404 when the order is not the user's to see
    back = _next_url(request, _order_url(r.order_id) or reverse("parts:stock"))
    try:
        services.part_release(user=user, request_id=r.pk, reason=request.POST.get("reason", ""))
    except DomainError as e:
        return _refused(request, e, back)
    messages.success(request, _("已释放 %(code)s 的预留。") % {"code": r.part.code})
    return redirect(back)


@require_POST
@require_perm(Perm.ORDER_WORK, Perm.ORDER_DISPATCH)
def part_request_consume(request, request_id: int):
    user = request.user
    r = selectors.part_request_get(request_id)
    order_get(user, r.order_id)
    back = _next_url(request, _order_url(r.order_id) or reverse("parts:stock"))
    form = ConsumeForm(request.POST)
    if not form.is_valid():
        return _refused(request, ValidationFailed({k: list(v) for k, v in form.errors.items()}), back)
    d = form.cleaned_data
    try:
        services.part_consume(user=user, request_id=r.pk, serial=d["serial"], old_serial=d["old_serial"],
                              old_returned=d["old_returned"])
    except DomainError as e:
        return _refused(request, e, back)
    messages.success(request, _("已使用 %(code)s。") % {"code": r.part.code})
    return redirect(back)


@require_POST
@require_perm(Perm.ORDER_WORK, Perm.PARTS_MANAGE)
def van_return(request):
    """Send the old parts in a van back to the centre (a return transfer)."""
    user = request.user
    back = _next_url(request, reverse("parts:stock"))
    wid = _int(request.POST.get("warehouse"))
    try:
        if not wid:
            raise NotFound()
        selectors.warehouse_get(user, wid)
        result = services.old_parts_return(user=user, warehouse_id=wid)
    except DomainError as e:
        return _refused(request, e, back)
    transfers_made = [t for t in (result if isinstance(result, list | tuple) else [result]) if t is not None]
    if transfers_made:
        messages.success(request, _("旧件已交回：调拨单 %(numbers)s。") % {
            "numbers": "、".join(t.number for t in transfers_made)})
    else:
        messages.info(request, _("没有待返还的旧件。"))
    return redirect(back)
