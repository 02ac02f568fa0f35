"""Writes of the stock ledger and of the parts on an order.

Every write is one transaction that keeps the ledger contract (see ``models``): the ``Stock``
rows it changes are locked first (``SELECT … FOR UPDATE``), always in the order
(warehouse_id, part_id), and each change of a quantity appends a ``Movement`` with its deltas
and the balances after it; then one audit entry. Locks are taken order → transfer → stock
rows, so that two writers never wait on each other in a circle.

Scope: stock operations need ``parts.manage`` over the warehouse's node (a warehouse out of
sight is 404, seen but not managed is 403). The parts of an order are asked for, released and
consumed by the order's technician (``order.work`` on their own order) — asking and releasing
also by whoever dispatches the order (``order.dispatch`` over its node).

``user=None`` is the system (receivers, the stock-alert sweep).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import Conflict, ErrorCollector, NotFound, PermissionDenied, ValidationFailed
from aftersales.core.sequences import next_in_day
from aftersales.org.models import Employee, Node, NodeKind, RoleAssignment
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import holds_at, principal
from aftersales.records.audit import audit_record, snapshot
from aftersales.tickets import workflow
from aftersales.tickets.models import Status, WorkOrder

from . import selectors
from .models import (
    Movement,
    MovementKind,
    Part,
    PartRequest,
    RequestStatus,
    SerialItem,
    SerialState,
    Stock,
    Transfer,
    TransferLine,
    TransferPurpose,
    TransferSequence,
    TransferStatus,
    Warehouse,
    WarehouseKind,
)

logger = logging.getLogger(__name__)

K = MovementKind
MAX_QTY = 100_000
MAX_REQUEST_QTY = 50
MAX_LINES = 200
TEXT_MAX = 200
SERIAL_MAX = 50
MAX_ID = 2**63 - 1
MANAGER_ROLES = (Role.OUTLET_MANAGER, Role.CENTRE_MANAGER, Role.HQ_MANAGER)
# Where a technician may ask for parts: the order is theirs and the job not finished.
REQUESTABLE = workflow.ASSIGNED
# Where a part is consumed: the technician is at the customer's.
CONSUMABLE = frozenset({Status.ON_SITE, Status.DIAGNOSING, Status.REPAIRING})
GOOD_SERIAL_STATES = (SerialState.IN_STOCK, SerialState.RESERVED, SerialState.IN_TRANSIT)


# ---------------------------------------------------------------- input checks

def _is_id(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_ID


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _text(v) -> str:
    return v.strip() if isinstance(v, str) else ""


def _check_qty(errs: ErrorCollector, v, field: str = "qty", *, most: int = MAX_QTY) -> bool:
    if not _is_int(v) or v < 1 or v > most:
        errs.add(field, _("数量须为 1 到 %(max)s 之间的整数。") % {"max": most})
        return False
    return True


def _check_text(errs: ErrorCollector, v, field: str, *, required_msg=None, most: int = TEXT_MAX) -> str:
    if v is not None and not isinstance(v, str):
        errs.add(field, _("请输入文本。"))
        return ""
    t = _text(v)
    if "\x00" in t:
        errs.add(field, _("包含无效字符。"))
    elif len(t) > most:
        errs.add(field, _("不能超过 %(n)s 个字符。") % {"n": most})
    elif not t and required_msg is not None:
        errs.add(field, required_msg)
    return t


def _get_part(errs: ErrorCollector, part_id, field: str = "part_id", *, active: bool = False) -> Part | None:
    part = Part.objects.filter(pk=part_id).first() if _is_id(part_id) else None
    if part is None:
        errs.add(field, _("配件不存在。"))
    elif active and not part.active:
        errs.add(field, _("配件 %(code)s 已停用。") % {"code": part.code})
        return None
    return part


def _money(errs: ErrorCollector, v, field: str) -> Decimal | None:
    if v is None or v == "":
        return None
    try:
        d = Decimal(str(v))
    except (InvalidOperation, ValueError):
        errs.add(field, _("请输入金额。"))
        return None
    if not d.is_finite() or d < 0 or d >= Decimal("1e10"):
        errs.add(field, _("金额须为不小于 0 的数。"))
        return None
    return d.quantize(Decimal("0.01"))


def _serial_list(errs: ErrorCollector, serials, field: str = "serials") -> list[str]:
    if serials is None:
        return []
    if isinstance(serials, str) or not isinstance(serials, Iterable):
        errs.add(field, _("序列号须为列表。"))
        return []
    out: list[str] = []
    for s in serials:
        t = _text(s) if isinstance(s, str) else None
        if not t or len(t) > SERIAL_MAX or "\x00" in t:
            errs.add(field, _("序列号须为 1 到 %(n)s 个字符。") % {"n": SERIAL_MAX})
            return []
        out.append(t)
    dup = sorted({s for s in out if out.count(s) > 1})
    if dup:
        errs.add(field, _("序列号重复：%(s)s。") % {"s": "、".join(dup)})
    return out


def _part_label(part: Part) -> str:
    return f"{part.code} {part.name}"


def _not_found(field: str | None = None, message=None) -> NotFound:
    e = NotFound(message)
    if field:
        e.errors = {field: [message or _("未找到该仓库，或不在您的管理范围内。")]}
    return e


# ---------------------------------------------------------------- who may

def _warehouse(warehouse_id, *, field: str | None = None, lock: bool = False) -> Warehouse | None:
    if not _is_id(warehouse_id):
        return None
    qs = Warehouse.objects.select_related("node", "holder")
    if lock:
        qs = qs.select_for_update(of=("self",))
    return qs.filter(pk=warehouse_id).first()


def _managed_warehouse(user, warehouse_id, *, field: str | None = None) -> Warehouse:
    """The warehouse, if ``user`` may manage its stock: 404 when absent or out of sight (with
    a field error when ``field`` names it), 403 when seen but not theirs to manage."""
    wh = _warehouse(warehouse_id)
    if wh is None or not selectors.can_view_warehouse(user, wh):
        raise _not_found(field, _("未找到该仓库，或不在您的管理范围内。") if field else None)
    if user is not None and not holds_at(user, Perm.PARTS_MANAGE, wh.node_id):
        raise PermissionDenied(_("您无权管理仓库 %(wh)s 的库存。") % {"wh": wh.name})
    return wh


def _holds_van(user, wh: Warehouse) -> bool:
    return (user is not None and wh.kind == WarehouseKind.VAN and wh.holder_id is not None
            and wh.holder.user_id == user.pk)


def _need_order_parts(user, order: WorkOrder, *, consume: bool = False) -> None:
    """The order's technician, or (to ask for and release parts) its dispatcher; 404 when the
    order is out of sight, 403 when seen."""
    if user is None:
        return
    if workflow.is_assignee(user, order) and principal(user).can(Perm.ORDER_WORK):
        return
    if not consume and holds_at(user, Perm.ORDER_DISPATCH, order.node_id):
        return
    if workflow.can_see(user, order):
        raise PermissionDenied(_("只有工单的技师可以使用配件。") if consume else _("您无权为此工单申请或释放配件。"))
    raise NotFound()


# ---------------------------------------------------------------- the ledger core

def _balances(s: Stock) -> dict:
    return {"on_hand": s.on_hand, "reserved": s.reserved, "defective": s.defective}


def _lock(pairs: Iterable[tuple[int, int]], *, create: bool = False, now: dt.datetime | None = None
          ) -> dict[tuple[int, int], Stock]:
    """Lock the stock rows of ``pairs`` (warehouse_id, part_id) in that order; with ``create``
    the missing rows are made first (all zero: the sum of no movements)."""
    keys = sorted(set(pairs))
    if not keys:
        return {}

    def fetch(ks):
        ws = {w for w, _p in ks}
        if len(ws) == 1:
            cond = Q(warehouse_id=next(iter(ws)), part_id__in=[p for _w, p in ks])
        else:
            cond = Q()
            for w, p in ks:
                cond |= Q(warehouse_id=w, part_id=p)
        rows = (Stock.objects.select_for_update(of=("self",)).select_related("part", "warehouse")
                .filter(cond).order_by("warehouse_id", "part_id"))
        return {(s.warehouse_id, s.part_id): s for s in rows}

    got = fetch(keys)
    missing = [k for k in keys if k not in got]
    if missing and create:
        at = now or timezone.now()
        Stock.objects.bulk_create([Stock(warehouse_id=w, part_id=p, updated_at=at) for w, p in missing],
                                  ignore_conflicts=True)
        got.update(fetch(missing))
    return got


def _move(s: Stock, kind: str, *, at: dt.datetime, actor, on_hand: int = 0, reserved: int = 0, defective: int = 0,
          unit_cost: Decimal | None = None, order_id: int | None = None, transfer_id: int | None = None,
          request_id: int | None = None, serial: str = "", reason: str = "") -> Movement:
    """Apply one change to a locked stock row and append its movement."""
    oh, rs, df = s.on_hand + on_hand, s.reserved + reserved, s.defective + defective
    if oh < 0 or rs < 0 or df < 0 or rs > oh:  # the callers check first, with the user's words
        raise Conflict(_("库存不足：配件 %(part)s 在 %(wh)s。") % {"part": s.part.code, "wh": s.warehouse.name},
                       code="insufficient_stock")
    s.on_hand, s.reserved, s.defective, s.updated_at = oh, rs, df, at
    s.save(update_fields=["on_hand", "reserved", "defective", "updated_at"])
    return Movement.objects.create(
        warehouse_id=s.warehouse_id, part_id=s.part_id, kind=kind, on_hand_delta=on_hand, reserved_delta=reserved,
        defective_delta=defective, on_hand_after=oh, reserved_after=rs, defective_after=df,
        unit_cost=s.part.unit_cost if unit_cost is None else unit_cost, at=at,
        actor=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
        order_id=order_id, transfer_id=transfer_id, request_id=request_id, serial=serial[:SERIAL_MAX],
        reason=reason[:TEXT_MAX])


def _audit_stock(actor, action: str, s: Stock, before: dict, m: Movement | None, node_id: int, **extra) -> None:
    after = {**_balances(s), **extra}
    if m is not None:
        after.update(movement=m.pk, kind=m.kind)
    audit_record(actor=actor, action=action, obj=s, before=before, after=after, node_id=node_id)


def _available(s: Stock | None) -> int:
    return 0 if s is None else s.on_hand - s.reserved


def _short(part: Part, wh: Warehouse, have: int, want: int) -> Conflict:
    msg = _("配件 %(part)s 在 %(wh)s 的可用数量为 %(n)s，不足 %(qty)s。") % {
        "part": _part_label(part), "wh": wh.name, "n": have, "qty": want}
    return Conflict(msg, errors={"qty": [msg]}, code="insufficient_stock")


def _claimed_defective(source_id: int, part_id: int) -> int:
    """Old parts of a warehouse already on a return transfer that has not left yet."""
    return TransferLine.objects.filter(
        transfer__source_id=source_id, transfer__defective=True, transfer__status=TransferStatus.REQUESTED,
        part_id=part_id).aggregate(n=Sum("qty"))["n"] or 0


def held_reserved(warehouse_id: int, part_id: int) -> int:
    """What of a stock row's reservation belongs to a part request ready in the van or to a
    transfer not yet shipped: released only through them, never by hand."""
    requests = PartRequest.objects.filter(van_id=warehouse_id, part_id=part_id, status=RequestStatus.READY
                                          ).aggregate(n=Sum("qty"))["n"] or 0
    lines = TransferLine.objects.filter(transfer__source_id=warehouse_id, transfer__defective=False,
                                        transfer__status=TransferStatus.REQUESTED, part_id=part_id
                                        ).aggregate(n=Sum("qty"))["n"] or 0
    return requests + lines


def _active(wh: Warehouse) -> None:
    if not wh.active:
        raise Conflict(_("仓库 %(wh)s 已停用。") % {"wh": wh.name}, code="warehouse_inactive")


# ---------------------------------------------------------------- stock operations

def stock_receive(*, user, warehouse_id, part_id, qty, unit_cost=None, serials=(), reason: str = "",
                  now: dt.datetime | None = None) -> Movement:
    """Goods in (入库): ``qty`` of the part into the warehouse at ``unit_cost`` (the part's cost
    when not given). A serialised part names one new serial per piece."""
    now = now or timezone.now()
    errs = ErrorCollector()
    _check_qty(errs, qty)
    part = _get_part(errs, part_id)
    cost = _money(errs, unit_cost, "unit_cost")
    reason = _check_text(errs, reason, "reason")
    serials = _serial_list(errs, serials)
    if part is not None and "serials" not in errs.errors and _is_int(qty):
        if part.serialised and len(serials) != qty:
            errs.add("serials", _("序列号管理的配件须逐件登记序列号（%(n)s 个）。") % {"n": qty})
        elif not part.serialised and serials:
            errs.add("serials", _("此配件不做序列号管理。"))
    with transaction.atomic():
        wh = _managed_warehouse(user, warehouse_id)
        errs.raise_if_any()
        _active(wh)
        items = {}
        if serials:
            items = {i.serial: i for i in SerialItem.objects.select_for_update().filter(part=part, serial__in=serials)}
            taken = sorted(s for s, i in items.items() if i.state in GOOD_SERIAL_STATES)
            if taken:
                raise ValidationFailed({"serials": [_("序列号已在库或在途：%(s)s。") % {"s": "、".join(taken)}]})
        s = _lock([(wh.pk, part.pk)], create=True, now=now)[(wh.pk, part.pk)]
        before = _balances(s)
        m = _move(s, K.RECEIVE, at=now, actor=user, on_hand=qty, unit_cost=cost if cost is not None else part.unit_cost,
                  serial=serials[0] if len(serials) == 1 else "", reason=reason)
        for serial in serials:
            _serial_put(part, serial, wh, SerialState.IN_STOCK, now, items.get(serial))
        _audit_stock(user, "parts.receive", s, before, m, wh.node_id, qty=qty, serials=serials)
        return m


def _serial_put(part: Part, serial: str, wh: Warehouse | None, state: str, now: dt.datetime,
                item: SerialItem | None = None, order_id: int | None = None) -> SerialItem:
    if item is None:
        item = SerialItem.objects.filter(part=part, serial=serial).first()
    if item is None:
        return SerialItem.objects.create(part=part, serial=serial, warehouse=wh, state=state, order_id=order_id,
                                         updated_at=now)
    item.warehouse, item.state, item.order_id, item.updated_at = wh, state, order_id, now
    item.save(update_fields=["warehouse", "state", "order", "updated_at"])
    return item


def stock_reserve(*, user, warehouse_id, part_id, qty, order_id=None, reason: str = "",
                  now: dt.datetime | None = None) -> Movement:
    """Promise ``qty`` of the available stock (low level: part requests and transfers reserve
    through it). 409 naming the available quantity when there is not enough."""
    return _reserve_or_release(user=user, warehouse_id=warehouse_id, part_id=part_id, qty=qty, order_id=order_id,
                               reason=reason, now=now, release=False)


def stock_release(*, user, warehouse_id, part_id, qty, order_id=None, reason: str = "",
                  now: dt.datetime | None = None) -> Movement:
    """Give back ``qty`` of what is reserved (low level)."""
    return _reserve_or_release(user=user, warehouse_id=warehouse_id, part_id=part_id, qty=qty, order_id=order_id,
                               reason=reason, now=now, release=True)


def _reserve_or_release(*, user, warehouse_id, part_id, qty, order_id, reason, now, release: bool) -> Movement:
    now = now or timezone.now()
    errs = ErrorCollector()
    _check_qty(errs, qty)
    part = _get_part(errs, part_id)
    reason = _check_text(errs, reason, "reason")
    if order_id is not None and not (_is_id(order_id) and WorkOrder.objects.filter(pk=order_id).exists()):
        errs.add("order_id", _("工单不存在。"))
    with transaction.atomic():
        wh = _managed_warehouse(user, warehouse_id)
        errs.raise_if_any()
        s = _lock([(wh.pk, part.pk)]).get((wh.pk, part.pk))
        if release:
            held = 0 if s is None else held_reserved(wh.pk, part.pk)
            have = 0 if s is None else s.reserved - held
            if qty > have:
                msg = _("配件 %(part)s 在 %(wh)s 可释放的预留为 %(n)s 件，不能释放 %(qty)s 件"
                        "（工单用件与调拨单的预留 %(held)s 件须在工单或调拨单上释放）。") % {
                    "part": _part_label(part), "wh": wh.name, "n": max(have, 0), "qty": qty, "held": held}
                raise Conflict(msg, errors={"qty": [msg]}, code="insufficient_reserved")
        else:
            _active(wh)
            if qty > _available(s):
                raise _short(part, wh, _available(s), qty)
        before = _balances(s)
        m = _move(s, K.RELEASE if release else K.RESERVE, at=now, actor=user, reserved=-qty if release else qty,
                  order_id=order_id, reason=reason)
        _audit_stock(user, "parts.release" if release else "parts.reserve", s, before, m, wh.node_id)
        return m


def stock_adjust(*, user, warehouse_id, part_id, counted, reason, now: dt.datetime | None = None) -> Movement | None:
    """A stock count (盘点): on hand becomes ``counted``. The reason is required; the count
    cannot go below what is reserved. None when the count matches (nothing to record)."""
    now = now or timezone.now()
    errs = ErrorCollector()
    if not _is_int(counted) or counted < 0 or counted > MAX_QTY:
        errs.add("counted", _("盘点数量须为 0 到 %(max)s 之间的整数。") % {"max": MAX_QTY})
    part = _get_part(errs, part_id)
    reason = _check_text(errs, reason, "reason", required_msg=_("请填写盘点调整的原因。"))
    with transaction.atomic():
        wh = _managed_warehouse(user, warehouse_id)
        errs.raise_if_any()
        s = _lock([(wh.pk, part.pk)], create=counted > 0, now=now).get((wh.pk, part.pk))
        if s is None or counted == s.on_hand:
            return None
        if counted < s.reserved:
            raise ValidationFailed({"counted": [_("盘点数量不能低于已预留的 %(n)s 件；请先释放预留。") % {"n": s.reserved}]})
        before = _balances(s)
        m = _move(s, K.ADJUST, at=now, actor=user, on_hand=counted - s.on_hand, reason=reason)
        _audit_stock(user, "parts.adjust", s, before, m, wh.node_id, counted=counted, reason=reason)
        return m


def stock_scrap(*, user, warehouse_id, part_id, qty, reason, defective: bool = False, serials=(),
                now: dt.datetime | None = None) -> Movement:
    """Scrap (报废) ``qty`` good parts (of the available ones) or, with ``defective``, old parts.
    A serialised good part names the serials scrapped."""
    now = now or timezone.now()
    errs = ErrorCollector()
    _check_qty(errs, qty)
    part = _get_part(errs, part_id)
    reason = _check_text(errs, reason, "reason", required_msg=_("请填写报废原因。"))
    serials = _serial_list(errs, serials)
    if not isinstance(defective, bool):
        errs.add("defective", _("请输入 true 或 false。"))
    if part is not None and _is_int(qty) and "serials" not in errs.errors:
        if part.serialised and not defective and len(serials) != qty:
            errs.add("serials", _("序列号管理的配件须逐件写明报废的序列号（%(n)s 个）。") % {"n": qty})
        elif serials and len(serials) != qty:
            errs.add("serials", _("序列号个数须与数量一致。"))
    with transaction.atomic():
        wh = _managed_warehouse(user, warehouse_id)
        errs.raise_if_any()
        s = _lock([(wh.pk, part.pk)]).get((wh.pk, part.pk))
        if defective:
            have = 0 if s is None else s.defective - _claimed_defective(wh.pk, part.pk)
            if qty > have:
                msg = _("%(wh)s 可报废的旧件 %(part)s 为 %(n)s 件，不足 %(qty)s。") % {
                    "wh": wh.name, "part": _part_label(part), "n": max(have, 0), "qty": qty}
                raise Conflict(msg, errors={"qty": [msg]}, code="insufficient_stock")
        elif qty > _available(s):
            raise _short(part, wh, _available(s), qty)
        items = []
        if serials:
            state = SerialState.DEFECTIVE if defective else SerialState.IN_STOCK
            items = list(SerialItem.objects.select_for_update().filter(part=part, serial__in=serials, warehouse=wh,
                                                                       state=state))
            missing = sorted(set(serials) - {i.serial for i in items})
            if missing:
                raise ValidationFailed({"serials": [_("序列号不在此仓库：%(s)s。") % {"s": "、".join(missing)}]})
        before = _balances(s)
        m = _move(s, K.SCRAP, at=now, actor=user, on_hand=0 if defective else -qty, defective=-qty if defective else 0,
                  serial=serials[0] if len(serials) == 1 else "", reason=reason)
        for i in items:
            _serial_put(part, i.serial, None, SerialState.SCRAPPED, now, i)
        _audit_stock(user, "parts.scrap", s, before, m, wh.node_id, qty=qty, defective=defective, reason=reason)
        return m


def reorder_set(*, user, warehouse_id, part_id, reorder_point, reorder_qty, now: dt.datetime | None = None) -> Stock:
    """Set (or, with both None, clear) the reorder point and quantity of a part in a warehouse."""
    now = now or timezone.now()
    errs = ErrorCollector()
    part = _get_part(errs, part_id)
    clear = reorder_point is None and reorder_qty is None
    if not clear:
        if not _is_int(reorder_point) or reorder_point < 0 or reorder_point > MAX_QTY:
            errs.add("reorder_point", _("补货点须为 0 到 %(max)s 之间的整数。") % {"max": MAX_QTY})
        if not _is_int(reorder_qty) or reorder_qty < 1 or reorder_qty > MAX_QTY:
            errs.add("reorder_qty", _("补货量须为 1 到 %(max)s 之间的整数。") % {"max": MAX_QTY})
    with transaction.atomic():
        wh = _managed_warehouse(user, warehouse_id)
        errs.raise_if_any()
        s = _lock([(wh.pk, part.pk)], create=True, now=now)[(wh.pk, part.pk)]
        before = snapshot(s, ["reorder_point", "reorder_qty"])
        s.reorder_point, s.reorder_qty = reorder_point, reorder_qty
        if clear:
            s.alert_state = ""
        s.save(update_fields=["reorder_point", "reorder_qty", "alert_state"])
        audit_record(actor=user, action="parts.reorder_set", obj=s, before=before,
                     after=snapshot(s, ["reorder_point", "reorder_qty"]), node_id=wh.node_id)
        return s


# ---------------------------------------------------------------- transfers

def next_transfer_number(day: dt.date) -> str:
    """``DB`` + YYYYMMDD + five digits, one sequence per day (``core.sequences``)."""
    return f"DB{day:%Y%m%d}{next_in_day(TransferSequence, day):05d}"


@dataclass
class _Line:
    part: Part
    qty: int
    serials: list[str]


_TRANSFER_FIELDS = ("number", "source_id", "destination_id", "purpose", "defective", "status", "order_id", "note",
                    "created_at", "shipped_at", "received_at")


def _transfer_audit(actor, action: str, t: Transfer, before: dict | None, **extra) -> None:
    after = {**snapshot(t, _TRANSFER_FIELDS), **extra}
    audit_record(actor=actor, action=action, obj=t, before=before, after=after, node_id=t.source.node_id)


def _transfer_create(*, actor, source: Warehouse, destination: Warehouse, lines: list[_Line], purpose: str,
                     note: str = "", order_id: int | None = None, defective: bool = False,
                     request: PartRequest | None = None, now: dt.datetime) -> Transfer:
    """Raise a transfer and reserve its goods at the source (old parts: claimed, they leave
    when shipped). No permission checks: the callers' business."""
    _active(source)
    _active(destination)
    stocks = _lock([(source.pk, ln.part.pk) for ln in lines])
    for ln in lines:
        s = stocks.get((source.pk, ln.part.pk))
        if defective:
            have = 0 if s is None else s.defective - _claimed_defective(source.pk, ln.part.pk)
            if ln.qty > have:
                msg = _("%(wh)s 的旧件 %(part)s 只有 %(n)s 件可返还，不足 %(qty)s。") % {
                    "wh": source.name, "part": _part_label(ln.part), "n": max(have, 0), "qty": ln.qty}
                raise Conflict(msg, errors={"lines": [msg]}, code="insufficient_stock")
        elif ln.qty > _available(s):
            raise _short(ln.part, source, _available(s), ln.qty)
    t = Transfer.objects.create(number=next_transfer_number(timezone.localdate(now)), source=source,
                                destination=destination, purpose=purpose, defective=defective, order_id=order_id,
                                note=note[:TEXT_MAX], created_by=actor if getattr(actor, "is_authenticated", False)
                                else None, created_at=now)
    for ln in lines:
        serials = list(ln.serials)
        state = SerialState.DEFECTIVE if defective else SerialState.IN_STOCK
        if serials:
            found = list(SerialItem.objects.select_for_update().filter(part=ln.part, serial__in=serials,
                                                                       warehouse=source, state=state))
            missing = sorted(set(serials) - {i.serial for i in found})
            if missing:
                raise ValidationFailed({"lines": [_("序列号不在调出仓：%(s)s。") % {"s": "、".join(missing)}]})
        elif ln.part.serialised:  # the pieces that go: the first ones in the source
            found = list(SerialItem.objects.select_for_update().filter(part=ln.part, warehouse=source, state=state)
                         .order_by("updated_at", "id")[: ln.qty])
            serials = [i.serial for i in found]
        else:
            found = []
        if not defective:
            for i in found:
                _serial_put(ln.part, i.serial, source, SerialState.RESERVED, now, i, order_id=order_id)
            s = stocks[(source.pk, ln.part.pk)]
            _move(s, K.RESERVE, at=now, actor=actor, reserved=ln.qty, order_id=order_id, transfer_id=t.pk,
                  request_id=request.pk if request is not None else None,
                  reason=str(_("调拨单 %(n)s") % {"n": t.number}))
        TransferLine.objects.create(transfer=t, part=ln.part, qty=ln.qty, serials=serials)
    return t


def _read_lines(errs: ErrorCollector, lines) -> list[_Line]:
    if not isinstance(lines, list | tuple) or not lines:
        errs.add("lines", _("请至少填写一行调拨明细。"))
        return []
    if len(lines) > MAX_LINES:
        errs.add("lines", _("一张调拨单最多 %(n)s 行。") % {"n": MAX_LINES})
        return []
    ids = [ln.get("part_id") if isinstance(ln, dict) else None for ln in lines]
    parts = Part.objects.in_bulk([i for i in ids if _is_id(i)])
    out, seen = [], set()
    for i, ln in enumerate(lines):
        if not isinstance(ln, dict):
            errs.add(f"lines[{i}]", _("每行须包含 part_id 与 qty。"))
            continue
        part = parts.get(ln.get("part_id")) if _is_id(ln.get("part_id")) else None
        if part is None:
            errs.add(f"lines[{i}].part_id", _("配件不存在。"))
        elif part.pk in seen:
            errs.add(f"lines[{i}].part_id", _("配件 %(code)s 重复出现，请合并为一行。") % {"code": part.code})
        ok = _check_qty(errs, ln.get("qty"), f"lines[{i}].qty")
        serials = _serial_list(errs, ln.get("serials") or [], f"lines[{i}].serials")
        if serials and ok and len(serials) != ln["qty"]:
            errs.add(f"lines[{i}].serials", _("序列号个数须与数量一致。"))
        if part is not None and ok:
            seen.add(part.pk)
            out.append(_Line(part, ln["qty"], serials))
    return out


def transfer_create(*, user, source_id, destination_id, lines, purpose: str = TransferPurpose.REPLENISH,
                    note: str = "", order_id=None, defective: bool = False,
                    now: dt.datetime | None = None) -> Transfer:
    """A transfer order (调拨单) from a warehouse the user manages to another warehouse, its goods
    reserved at the source. ``lines``: ``[{"part_id", "qty", "serials"?}]``. A source out of
    the user's scope is a 404 with a field error on ``source_id``."""
    now = now or timezone.now()
    errs = ErrorCollector()
    parsed = _read_lines(errs, lines)
    note = _check_text(errs, note, "note")
    if purpose not in TransferPurpose.values:
        errs.add("purpose", _("无效的调拨用途。"))
    if not isinstance(defective, bool):
        errs.add("defective", _("请输入 true 或 false。"))
    if order_id is not None and not (_is_id(order_id) and WorkOrder.objects.filter(pk=order_id).exists()):
        errs.add("order_id", _("工单不存在。"))
    dest = _warehouse(destination_id)
    if dest is None or not dest.active:
        errs.add("destination_id", _("调入仓不存在或已停用。"))
    elif _is_id(source_id) and dest.pk == source_id:
        errs.add("destination_id", _("调入仓不能与调出仓相同。"))
    with transaction.atomic():
        src = _managed_warehouse(user, source_id, field="source_id")
        errs.raise_if_any()
        t = _transfer_create(actor=user, source=src, destination=dest, lines=parsed, purpose=purpose, note=note,
                             order_id=order_id, defective=defective, now=now)
        _transfer_audit(user, "parts.transfer_create", t, None,
                        lines=[[ln.part.pk, ln.qty] for ln in parsed])
        return t


def _lock_transfer(transfer_id) -> Transfer:
    """The transfer, locked; its order (if any) is locked before it."""
    if not _is_id(transfer_id):
        raise NotFound()
    order_id = Transfer.objects.filter(pk=transfer_id).values_list("order_id", flat=True).first()
    if order_id is None and not Transfer.objects.filter(pk=transfer_id).exists():
        raise NotFound()
    if order_id is not None:
        workflow.lock_order(order_id)
    t = (Transfer.objects.select_for_update(of=("self",)).select_related("source__node", "source__holder",
                                                                          "destination__node", "destination__holder")
         .filter(pk=transfer_id).first())
    if t is None:
        raise NotFound()
    return t


def _may_transfer(user, t: Transfer, *, at: str) -> None:
    """``at``: "source" (ship), "destination" (receive; the van's holder too) or "either"."""
    if user is None:
        return
    sees = selectors.can_view_warehouse(user, t.source) or selectors.can_view_warehouse(user, t.destination)
    if not sees:
        raise NotFound()
    ok = False
    if at in ("source", "either"):
        ok = holds_at(user, Perm.PARTS_MANAGE, t.source.node_id)
    if not ok and at in ("destination", "either"):
        ok = holds_at(user, Perm.PARTS_MANAGE, t.destination.node_id) or _holds_van(user, t.destination)
    if not ok:
        raise PermissionDenied(_("您无权处理调拨单 %(n)s。") % {"n": t.number})


def _status_conflict(t: Transfer, action) -> Conflict:
    return Conflict(_("调拨单 %(n)s 当前状态为「%(s)s」，不能%(a)s。") % {
        "n": t.number, "s": t.get_status_display(), "a": action}, code="illegal_transfer")


def transfer_ship(*, user, transfer_id, now: dt.datetime | None = None) -> Transfer:
    """The goods leave the source (调拨出库)."""
    now = now or timezone.now()
    with transaction.atomic():
        t = _lock_transfer(transfer_id)
        _may_transfer(user, t, at="source")
        if t.status != TransferStatus.REQUESTED:
            raise _status_conflict(t, _("发货"))
        before = snapshot(t, _TRANSFER_FIELDS)
        lines = list(t.lines.select_related("part").order_by("part_id"))
        stocks = _lock([(t.source_id, ln.part_id) for ln in lines])
        for ln in lines:
            s = stocks.get((t.source_id, ln.part_id))
            if t.defective:
                if s is None or s.defective < ln.qty:
                    raise Conflict(_("%(wh)s 的旧件 %(part)s 不足 %(qty)s 件。") % {
                        "wh": t.source.name, "part": _part_label(ln.part), "qty": ln.qty}, code="insufficient_stock")
                _move(s, K.TRANSFER_OUT, at=now, actor=user, defective=-ln.qty, order_id=t.order_id, transfer_id=t.pk,
                      reason=t.number)
            else:
                _move(s, K.TRANSFER_OUT, at=now, actor=user, on_hand=-ln.qty, reserved=-ln.qty, order_id=t.order_id,
                      transfer_id=t.pk, reason=t.number)
            if ln.serials:
                SerialItem.objects.filter(part_id=ln.part_id, serial__in=ln.serials).update(
                    warehouse=None, updated_at=now,
                    state=SerialState.DEFECTIVE if t.defective else SerialState.IN_TRANSIT)
        t.status, t.shipped_at = TransferStatus.SHIPPED, now
        t.save(update_fields=["status", "shipped_at"])
        _transfer_audit(user, "parts.transfer_ship", t, before)
        return t


def transfer_receive(*, user, transfer_id, now: dt.datetime | None = None) -> Transfer:
    """The goods arrive (调拨入库). At a van, the order's requests waiting for them become
    ready (reserved in the van), and an order that waited for parts only for these resumes."""
    now = now or timezone.now()
    with transaction.atomic():
        t = _lock_transfer(transfer_id)
        _may_transfer(user, t, at="destination")
        if t.status != TransferStatus.SHIPPED:
            raise _status_conflict(t, _("收货"))
        before = snapshot(t, _TRANSFER_FIELDS)
        lines = list(t.lines.select_related("part").order_by("part_id"))
        waiting = list(PartRequest.objects.select_for_update().filter(transfer=t, status=RequestStatus.IN_TRANSIT)
                       .order_by("id"))
        stocks = _lock([(t.destination_id, ln.part_id) for ln in lines], create=True, now=now)
        for ln in lines:
            s = stocks[(t.destination_id, ln.part_id)]
            if t.defective:
                _move(s, K.TRANSFER_IN, at=now, actor=user, defective=ln.qty, order_id=t.order_id, transfer_id=t.pk,
                      reason=t.number)
            else:
                _move(s, K.TRANSFER_IN, at=now, actor=user, on_hand=ln.qty, order_id=t.order_id, transfer_id=t.pk,
                      reason=t.number)
            if ln.serials:
                SerialItem.objects.filter(part_id=ln.part_id, serial__in=ln.serials).update(
                    warehouse=t.destination, updated_at=now, order=None,
                    state=SerialState.DEFECTIVE if t.defective else SerialState.IN_STOCK)
        for r in waiting:
            s = stocks.get((t.destination_id, r.part_id))
            if s is None or _available(s) < r.qty or r.van_id != t.destination_id:
                continue  # not what this transfer brought: stays in transit (not expected)
            _move(s, K.RESERVE, at=now, actor=user, reserved=r.qty, order_id=r.order_id, request_id=r.pk,
                  transfer_id=t.pk, reason=str(_("工单用件")))
            line = next((ln for ln in lines if ln.part_id == r.part_id), None)
            if line is not None and line.serials:
                SerialItem.objects.filter(part_id=r.part_id, serial__in=line.serials[: r.qty]).update(
                    state=SerialState.RESERVED, order_id=r.order_id)
            r.status = RequestStatus.READY
            r.save(update_fields=["status"])
        t.status, t.received_at = TransferStatus.RECEIVED, now
        t.save(update_fields=["status", "received_at"])
        _transfer_audit(user, "parts.transfer_receive", t, before)
        if t.order_id is not None and waiting:
            _resume_if_all_here(t.order_id, now=now, number=t.number)
        return t


def _resume_if_all_here(order_id: int, *, now: dt.datetime, number: str) -> None:
    status = WorkOrder.objects.filter(pk=order_id).values_list("status", flat=True).first()
    if status != Status.WAITING_PARTS:
        return
    if PartRequest.objects.filter(order_id=order_id, status=RequestStatus.IN_TRANSIT).exists():
        return
    workflow.move(order_id, "resume", user=None, now=now,
                  note=str(_("配件已到技师随车仓（调拨单 %(n)s），可再次上门。") % {"n": number}))


def _cancel_transfer(t: Transfer, *, actor, now: dt.datetime, reason: str) -> None:
    """Undo a requested transfer: its reservations at the source are released, its requests
    released. (The caller locked it, and its order first.)"""
    lines = list(t.lines.select_related("part").order_by("part_id"))
    if not t.defective:
        stocks = _lock([(t.source_id, ln.part_id) for ln in lines])
        for ln in lines:
            _move(stocks[(t.source_id, ln.part_id)], K.RELEASE, at=now, actor=actor, reserved=-ln.qty,
                  order_id=t.order_id, transfer_id=t.pk, reason=str(_("取消调拨单 %(n)s") % {"n": t.number}))
            if ln.serials:
                SerialItem.objects.filter(part_id=ln.part_id, serial__in=ln.serials, state=SerialState.RESERVED).update(
                    state=SerialState.IN_STOCK, order=None, updated_at=now)
    PartRequest.objects.filter(transfer=t, status=RequestStatus.IN_TRANSIT).update(status=RequestStatus.RELEASED)
    t.status = TransferStatus.CANCELLED
    t.note = (f"{t.note}；{reason}" if t.note else reason)[:TEXT_MAX]
    t.save(update_fields=["status", "note"])


def transfer_cancel(*, user, transfer_id, reason, now: dt.datetime | None = None) -> Transfer:
    """Cancel a transfer not yet shipped: its reservations are released (a shipped one is
    received and, if need be, sent back)."""
    now = now or timezone.now()
    errs = ErrorCollector()
    reason = _check_text(errs, reason, "reason", required_msg=_("请填写取消原因。"))
    with transaction.atomic():
        t = _lock_transfer(transfer_id)
        _may_transfer(user, t, at="either")
        errs.raise_if_any()
        if t.status != TransferStatus.REQUESTED:
            raise _status_conflict(t, _("取消"))
        before = snapshot(t, _TRANSFER_FIELDS)
        _cancel_transfer(t, actor=user, now=now, reason=reason)
        _transfer_audit(user, "parts.transfer_cancel", t, before, reason=reason)
        return t


# ---------------------------------------------------------------- the parts of an order

def van_for(employee: Employee, *, actor=None, now: dt.datetime | None = None) -> Warehouse:
    """The technician's van (``VAN-`` + employee number, at their node), made on first use."""
    van = Warehouse.objects.select_related("node", "holder").filter(holder=employee).first()
    if van is not None:
        return van
    now = now or timezone.now()
    try:
        with transaction.atomic():
            van = Warehouse.objects.create(code=f"VAN-{employee.employee_no}"[:30],
                                           name=str(_("%(name)s 随车仓") % {"name": employee.name})[:100],
                                           kind=WarehouseKind.VAN, node_id=employee.node_id, holder=employee)
            audit_record(actor=actor, action="parts.van_create", obj=van, before=None, after=snapshot(van),
                         node_id=van.node_id)
    except IntegrityError:
        van = Warehouse.objects.filter(holder=employee).first()
        if van is None:
            raise Conflict(_("仓库编码 VAN-%(no)s 已被占用，无法为技师建立随车仓。") % {"no": employee.employee_no},
                           code="van_code_taken") from None
    return Warehouse.objects.select_related("node", "holder").get(pk=van.pk)


def _fits(part: Part, order: WorkOrder) -> bool:
    from aftersales.customers.models import Unit

    if not order.unit_id:
        return True
    model_id, category_id = Unit.objects.filter(pk=order.unit_id).values_list("model_id", "model__category_id").get()
    fits = set(part.fits.values_list("id", flat=True))
    return model_id in fits if fits else (part.category_id is not None and part.category_id == category_id)


def _warranty_for(order: WorkOrder, part: Part) -> tuple[bool | None, str]:
    """The 三包 decision for this part on this order: a main part by the main-part period."""
    if not order.unit_id:
        return None, ""
    from aftersales.customers.selectors import unit_list_qs
    from aftersales.customers.warranty import unit_warranty
    from aftersales.tickets.classify import fault_category_code

    unit = unit_list_qs().filter(pk=order.unit_id).first()
    if unit is None:
        return None, ""
    code = part.main_part_code.strip() or None
    fault_key = code or fault_category_code(order.fault_category_id)
    try:
        d = unit_warranty(unit, on=timezone.localdate(order.created_at), part_code=code, fault_key=fault_key)
    except ValidationFailed:  # bought after the order was received: nothing to decide
        return None, ""
    return d.free, str(d.reason)[:200]


_REQUEST_FIELDS = ("order_id", "part_id", "qty", "status", "van_id", "source_id", "transfer_id", "free",
                   "warranty_reason", "serial", "old_serial", "old_returned", "unit_cost", "consumed_at")


def _request_audit(actor, action: str, r: PartRequest, before: dict | None, node_id: int) -> None:
    audit_record(actor=actor, action=action, obj=r, before=before, after=snapshot(r, _REQUEST_FIELDS), node_id=node_id)


def part_request(*, user, order_id, part_id, qty=1, now: dt.datetime | None = None) -> PartRequest:
    """The technician asks for a part for the order. Reserved in their van when it is there
    (``ready``); else at the nearest warehouse that has it, with a transfer to the van
    (``in_transit``) and the order waiting for parts. 409 naming the part when no warehouse
    has it."""
    now = now or timezone.now()
    errs = ErrorCollector()
    _check_qty(errs, qty, most=MAX_REQUEST_QTY)
    part = _get_part(errs, part_id, active=True)
    with transaction.atomic():
        order = workflow.lock_order(order_id)
        _need_order_parts(user, order)
        if order.status not in REQUESTABLE or order.assignee_id is None:
            raise Conflict(_("工单 %(n)s 当前状态为「%(s)s」，不能申请配件。") % {
                "n": order.number, "s": order.get_status_display()}, code="illegal_move")
        if part is not None:
            if part.serialised and _is_int(qty) and qty != 1:
                errs.add("qty", _("序列号管理的配件每次申请 1 件。"))
            if not _fits(part, order):
                errs.add("part_id", _("配件 %(code)s 不适用于此工单的产品型号。") % {"code": part.code})
        errs.raise_if_any()
        van = van_for(order.assignee, actor=user, now=now)
        free, why = _warranty_for(order, part)
        r = PartRequest.objects.create(order=order, part=part, qty=qty, status=RequestStatus.READY, van=van,
                                       source=van, free=free, warranty_reason=why, unit_cost=part.unit_cost,
                                       requested_by=user if getattr(user, "is_authenticated", False) else None,
                                       requested_at=now)
        candidates = selectors.source_order(van, selectors.available_rows(part.pk, min_qty=qty, exclude_vans=True))
        first = candidates[0].warehouse.id if candidates else None
        stocks = _lock([(van.pk, part.pk)] + ([(first, part.pk)] if first else []))
        s = stocks.get((van.pk, part.pk))
        if _available(s) >= qty:
            _move(s, K.RESERVE, at=now, actor=user, reserved=qty, order_id=order.pk, request_id=r.pk,
                  reason=str(_("工单 %(n)s 用件") % {"n": order.number}))
        else:
            source = None
            for c in candidates:
                key = (c.warehouse.id, part.pk)
                got = stocks[key] if key in stocks else _lock([key]).get(key)
                if _available(got) >= qty:
                    source = got.warehouse
                    break
            if source is None:
                raise Conflict(_("配件 %(part)s 在各仓库均无可用库存（需要 %(qty)s 件）。") % {
                    "part": _part_label(part), "qty": qty}, errors={"part_id": [_("无可用库存。")]},
                    code="out_of_stock")
            t = _transfer_create(actor=user, source=source, destination=van, lines=[_Line(part, qty, [])],
                                 purpose=TransferPurpose.ORDER, order_id=order.pk, request=r, now=now,
                                 note=str(_("工单 %(n)s 用件") % {"n": order.number}))
            _transfer_audit(user, "parts.transfer_create", t, None, lines=[[part.pk, qty]], request=r.pk)
            r.status, r.source, r.transfer = RequestStatus.IN_TRANSIT, source, t
            r.save(update_fields=["status", "source", "transfer"])
        _request_audit(user, "parts.request", r, None, order.node_id)
        if r.status == RequestStatus.IN_TRANSIT:
            m = workflow.MOVES["wait_parts"]
            if workflow.is_legal(order, m) and workflow.may(user, m, order):
                workflow.move(order.pk, "wait_parts", user=user, now=now,
                              reason=str(_("等待配件 %(part)s（调拨单 %(t)s，自 %(wh)s）") % {
                                  "part": _part_label(part), "t": r.transfer.number, "wh": r.source.name}))
        return r


def _lock_request(request_id) -> tuple[PartRequest, WorkOrder]:
    if not _is_id(request_id):
        raise NotFound()
    order_id = PartRequest.objects.filter(pk=request_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise NotFound()
    order = workflow.lock_order(order_id)
    r = (PartRequest.objects.select_for_update(of=("self",)).select_related("part", "van__holder", "transfer")
         .get(pk=request_id))
    return r, order


def _release_request(r: PartRequest, *, actor, now: dt.datetime, reason: str) -> None:
    """Give back what a ready or in-transit request holds (its order locked by the caller)."""
    if r.status == RequestStatus.READY:
        s = _lock([(r.van_id, r.part_id)])[(r.van_id, r.part_id)]
        _move(s, K.RELEASE, at=now, actor=actor, reserved=-r.qty, order_id=r.order_id, request_id=r.pk,
              reason=reason)
        SerialItem.objects.filter(part_id=r.part_id, warehouse_id=r.van_id, state=SerialState.RESERVED,
                                  order_id=r.order_id).update(state=SerialState.IN_STOCK, order=None, updated_at=now)
    elif r.status == RequestStatus.IN_TRANSIT and r.transfer_id is not None:
        t = Transfer.objects.select_for_update(of=("self",)).select_related("source").get(pk=r.transfer_id)
        if t.status == TransferStatus.REQUESTED:
            before = snapshot(t, _TRANSFER_FIELDS)
            _cancel_transfer(t, actor=actor, now=now, reason=reason)
            _transfer_audit(actor, "parts.transfer_cancel", t, before, reason=reason)
        # shipped: the part arrives in the van as its own stock, promised to nobody
    r.status = RequestStatus.RELEASED
    r.save(update_fields=["status"])


def part_release(*, user, request_id, reason: str = "", now: dt.datetime | None = None) -> PartRequest:
    """Give up a part asked for: its reservation is released (a transfer not yet shipped is
    cancelled)."""
    now = now or timezone.now()
    errs = ErrorCollector()
    reason = _check_text(errs, reason, "reason")
    with transaction.atomic():
        r, order = _lock_request(request_id)
        _need_order_parts(user, order)
        errs.raise_if_any()
        if r.status not in (RequestStatus.READY, RequestStatus.IN_TRANSIT):
            raise Conflict(_("此配件申请当前为「%(s)s」，不能释放。") % {"s": r.get_status_display()},
                           code="illegal_request")
        before = snapshot(r, _REQUEST_FIELDS)
        _release_request(r, actor=user, now=now, reason=reason or str(_("工单 %(n)s 释放配件") % {"n": order.number}))
        _request_audit(user, "parts.request_release", r, before, order.node_id)
        return r


def part_consume(*, user, request_id, serial: str = "", old_serial: str = "", old_returned: bool = True,
                 now: dt.datetime | None = None) -> PartRequest:
    """The part is fitted at the repair: taken from the van (on hand and reserved down); a
    serialised part names the serial, which must be in the van. The old part taken out
    (旧件) is returned into the van's defective stock when the part is returnable."""
    now = now or timezone.now()
    errs = ErrorCollector()
    serial = _check_text(errs, serial, "serial", most=SERIAL_MAX)
    old_serial = _check_text(errs, old_serial, "old_serial", most=SERIAL_MAX)
    if not isinstance(old_returned, bool):
        errs.add("old_returned", _("请输入 true 或 false。"))
    with transaction.atomic():
        r, order = _lock_request(request_id)
        _need_order_parts(user, order, consume=True)
        if r.status != RequestStatus.READY:
            raise Conflict(_("此配件申请当前为「%(s)s」，只有已备件的配件可以使用。") % {"s": r.get_status_display()},
                           code="illegal_request")
        if order.status not in CONSUMABLE:
            raise Conflict(_("工单 %(n)s 当前状态为「%(s)s」，到达现场后才能使用配件。") % {
                "n": order.number, "s": order.get_status_display()}, code="illegal_move")
        part = r.part
        item = None
        if part.serialised and "serial" not in errs.errors:
            if not serial:
                errs.add("serial", _("请填写新件的序列号。"))
            else:
                item = (SerialItem.objects.select_for_update()
                        .filter(part=part, serial=serial, warehouse_id=r.van_id,
                                state__in=(SerialState.IN_STOCK, SerialState.RESERVED)).first())
                if item is None or (item.state == SerialState.RESERVED and item.order_id not in (None, order.pk)):
                    errs.add("serial", _("序列号 %(s)s 不在您的随车仓中。") % {"s": serial})
        returned = bool(old_returned) and part.returnable
        old_item = None
        if returned and old_serial:
            old_item = SerialItem.objects.select_for_update().filter(part=part, serial=old_serial).first()
            if old_item is not None and old_item.state in GOOD_SERIAL_STATES:
                errs.add("old_serial", _("序列号 %(s)s 是库存中的新件，不能作为旧件登记。") % {"s": old_serial})
            if old_serial == serial:
                errs.add("old_serial", _("旧件序列号不能与新件相同。"))
        errs.raise_if_any()
        before = snapshot(r, _REQUEST_FIELDS)
        s = _lock([(r.van_id, r.part_id)])[(r.van_id, r.part_id)]
        _move(s, K.CONSUME, at=now, actor=user, on_hand=-r.qty, reserved=-r.qty, order_id=order.pk, request_id=r.pk,
              serial=serial, reason=str(_("工单 %(n)s 维修用件") % {"n": order.number}))
        if item is not None:
            if item.state != SerialState.RESERVED:  # another piece than the one set aside: that one is free again
                spare = (SerialItem.objects.filter(part=part, warehouse_id=r.van_id, state=SerialState.RESERVED,
                                                   order_id=order.pk).order_by("id").first())
                if spare is not None:
                    _serial_put(part, spare.serial, r.van, SerialState.IN_STOCK, now, spare)
            _serial_put(part, serial, None, SerialState.INSTALLED, now, item, order_id=order.pk)
        if returned:
            _move(s, K.DEFECTIVE_RETURN, at=now, actor=user, defective=r.qty, order_id=order.pk, request_id=r.pk,
                  serial=old_serial, reason=str(_("工单 %(n)s 旧件返还") % {"n": order.number}))
            if old_serial:
                _serial_put(part, old_serial, r.van, SerialState.DEFECTIVE, now, old_item, order_id=order.pk)
        r.status, r.serial, r.old_serial, r.old_returned, r.consumed_at = (
            RequestStatus.CONSUMED, serial, old_serial if returned else "", returned, now)
        r.save(update_fields=["status", "serial", "old_serial", "old_returned", "consumed_at"])
        _request_audit(user, "parts.consume", r, before, order.node_id)
        return r


def _centre_warehouse(wh: Warehouse) -> Warehouse | None:
    node = wh.node
    centre_id = node.parent_id if node.kind == NodeKind.OUTLET else None
    if centre_id is None:
        return None
    return (Warehouse.objects.select_related("node").filter(node_id=centre_id, kind=WarehouseKind.CENTRE, active=True)
            .order_by("id").first())


def old_parts_return(*, user, warehouse_id, now: dt.datetime | None = None) -> Transfer | None:
    """Send every old part (旧件) of a van or an outlet back to its service centre's warehouse:
    one return transfer of the defective stock. None when there is nothing to send."""
    now = now or timezone.now()
    with transaction.atomic():
        wh = _warehouse(warehouse_id)
        if wh is None or not selectors.can_view_warehouse(user, wh):
            raise _not_found("warehouse_id")
        if user is not None and not (holds_at(user, Perm.PARTS_MANAGE, wh.node_id) or _holds_van(user, wh)):
            raise PermissionDenied(_("您无权处理仓库 %(wh)s 的旧件。") % {"wh": wh.name})
        if wh.kind not in (WarehouseKind.VAN, WarehouseKind.OUTLET):
            raise Conflict(_("旧件从技师随车仓或网点仓返回中心仓；%(wh)s 的旧件请在本仓报废处理。") % {"wh": wh.name},
                           code="not_returnable")
        centre = _centre_warehouse(wh)
        if centre is None:
            raise Conflict(_("未找到 %(wh)s 所属服务中心的中心仓。") % {"wh": wh.name}, code="no_centre_warehouse")
        rows = list(Stock.objects.select_for_update(of=("self",)).select_related("part")
                    .filter(warehouse=wh, defective__gt=0).order_by("warehouse_id", "part_id"))
        lines = []
        for s in rows:
            n = s.defective - _claimed_defective(wh.pk, s.part_id)
            if n > 0:
                serials = list(SerialItem.objects.filter(part_id=s.part_id, warehouse=wh, state=SerialState.DEFECTIVE)
                               .order_by("updated_at", "id").values_list("serial", flat=True)[:n])
                lines.append(_Line(s.part, n, serials))
        if not lines:
            return None
        t = _transfer_create(actor=user, source=wh, destination=centre, lines=lines, purpose=TransferPurpose.RETURN,
                             defective=True, now=now, note=str(_("旧件返回中心仓")))
        _transfer_audit(user, "parts.old_parts_return", t, None, lines=[[ln.part.pk, ln.qty] for ln in lines])
        return t


def release_for_order(order: WorkOrder, *, actor, at: dt.datetime, reason: str) -> int:
    """Release every request of the order still ready or in transit (its order locked by the
    caller: the move). Returns how many."""
    n = 0
    for r in (PartRequest.objects.select_for_update(of=("self",)).select_related("part")
              .filter(order_id=order.pk, status__in=(RequestStatus.READY, RequestStatus.IN_TRANSIT)).order_by("id")):
        before = snapshot(r, _REQUEST_FIELDS)
        _release_request(r, actor=actor, now=at, reason=reason)
        _request_audit(actor, "parts.request_release", r, before, order.node_id)
        n += 1
    return n


# ---------------------------------------------------------------- replenishment

def replenish(*, user, warehouse_id, part_ids=None, now: dt.datetime | None = None) -> list[Transfer]:
    """Raise the transfers the suggestions call for: one per supplier warehouse (the tier above),
    each line capped at what the supplier has available. [] when nothing needs replenishing;
    409 when something does but no supplier has any."""
    now = now or timezone.now()
    errs = ErrorCollector()
    if part_ids is not None:
        if not isinstance(part_ids, list | tuple) or not all(_is_id(p) for p in part_ids) or len(part_ids) > 1000:
            errs.add("part_ids", _("请选择配件。"))
    with transaction.atomic():
        wh = _managed_warehouse(user, warehouse_id)
        errs.raise_if_any()
        rows = selectors.replenishment_suggestions(None, warehouse_id=wh.pk)
        if part_ids is not None:
            wanted = set(part_ids)
            rows = [r for r in rows if r.part_id in wanted]
        if not rows:
            return []
        by_supplier: dict[int, list] = {}
        for r in rows:
            if r.supplier_id is not None:
                by_supplier.setdefault(r.supplier_id, []).append(r)
        out, short = [], []
        for sup_id in sorted(by_supplier):
            group = by_supplier[sup_id]
            sup = _warehouse(sup_id)
            stocks = _lock([(sup_id, r.part_id) for r in group])
            lines = []
            for r in group:
                n = min(r.suggested_qty, _available(stocks.get((sup_id, r.part_id))))
                if n > 0:
                    lines.append(_Line(r.part, n, []))
                else:
                    short.append(r.part.code)
            if lines:
                t = _transfer_create(actor=user, source=sup, destination=wh, lines=lines,
                                     purpose=TransferPurpose.REPLENISH, now=now, note=str(_("补货")))
                _transfer_audit(user, "parts.replenish", t, None, lines=[[ln.part.pk, ln.qty] for ln in lines])
                out.append(t)
        short += [r.part.code for r in rows if r.supplier_id is None]
        if not out:
            raise Conflict(_("上级仓库暂无可调拨的库存：%(parts)s。") % {"parts": "、".join(sorted(set(short)))},
                           code="no_supply")
        return out


# ---------------------------------------------------------------- stock alerts

def managers_of(node: Node) -> list:
    """The managers told about a node's stock: those at the node, else at the nearest ancestor
    that has some."""
    from django.contrib.auth import get_user_model

    ids = [int(x) for x in node.path.strip("/").split("/") if x][::-1]
    rows = list(RoleAssignment.objects.filter(node_id__in=ids, role__in=MANAGER_ROLES, user__is_active=True)
                .values_list("node_id", "user_id"))
    for nid in ids:
        users = sorted({u for n, u in rows if n == nid})
        if users:
            return list(get_user_model().objects.filter(pk__in=users).order_by("pk"))
    return []


def _alert_level(s: Stock) -> str:
    return "out" if s.on_hand - s.reserved <= 0 else "low"


ALERT_RANK = {"": 0, "low": 1, "out": 2}


def stock_alerts_sweep(now: dt.datetime | None = None, *, batch: int = 1000) -> int:
    """Tell the managers of each warehouse's node, once, when a part falls to or below its
    reorder point ("low") or to nothing available ("out"); the flag is cleared when the part
    is restocked above its reorder point. Returns how many stock rows were alerted."""
    from django.db.models import F

    from aftersales.notifications.services import notify_users

    now = now or timezone.now()
    Stock.objects.exclude(alert_state="").filter(
        Q(reorder_point__isnull=True) | Q(on_hand__gt=F("reserved") + F("reorder_point"))).update(alert_state="")
    due = (Stock.objects.filter(reorder_point__isnull=False, on_hand__lte=F("reserved") + F("reorder_point"))
           .exclude(alert_state="out")
           .filter(Q(alert_state="") | Q(on_hand__lte=F("reserved"))))
    sent = 0
    while True:
        with transaction.atomic():
            rows = list(due.select_for_update(skip_locked=True, of=("self",))
                        .select_related("warehouse__node", "part").order_by("warehouse_id", "part_id")[:batch])
            groups: dict[tuple[int, str], list[Stock]] = {}
            for s in rows:
                level = _alert_level(s)
                if ALERT_RANK[level] <= ALERT_RANK[s.alert_state]:
                    continue
                groups.setdefault((s.warehouse_id, level), []).append(s)
            for (_w, level), group in groups.items():
                wh = group[0].warehouse
                names = "、".join(f"{s.part.code} {s.part.name}（可用 {s.on_hand - s.reserved}）" for s in group[:20])
                if len(group) > 20:
                    names += " …"
                users = managers_of(wh.node)
                if users:
                    notify_users(users, event="stock_out" if level == "out" else "stock_low", ref=wh.code,
                                 ref_id=wh.pk, node_id=wh.node_id,
                                 context={"warehouse": wh.name, "count": len(group), "parts": names})
                Stock.objects.filter(pk__in=[s.pk for s in group]).update(alert_state=level)
                sent += len(group)
        if len(rows) < batch:
            return sent
