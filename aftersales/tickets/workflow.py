"""The work-order workflow: one table of moves, and the one function that applies them.

Nothing else sets ``WorkOrder.status``. Each ``Move`` says from which statuses it may be made,
where it leads, who may make it (a permission held over the order's node; ``ASSIGNEE`` for
the technician the order is assigned to; ``system`` for the SLA sweep and the survey), what it
needs and what else it takes. ``move()`` locks the order row and checks, in this order:

1. the caller may see the order at all — else 404, whatever the move (out of scope looks
   exactly like absent);
2. the caller may make this move — else 403;
3. the order's status (and type) allow the move — else 409 naming the status;
4. the move's fields are given and valid — else 400 naming every bad field;

then lets the apps above refuse it (``signals.order_moving``: a receiver raises), applies the
move's effects, keeps the SLA clock (``tickets.sla``), appends the
``OrderEvent`` and the audit entry, and sends ``signals.order_moved`` — all in one
transaction. A move costs one locking read (with the joins it needs), one event insert, one
update and the audit entry; nothing is fetched twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import Conflict, ErrorCollector, NotFound, PermissionDenied, ValidationFailed
from aftersales.org.roles import Perm
from aftersales.org.scope import holds_at, principal
from aftersales.records.audit import audit_record

from . import sla
from .models import OrderEvent, OrderType, Priority, Status, WorkOrder
from .signals import order_moved, order_moving

S = Status
ASSIGNEE = "assignee"  # the technician the order is assigned to (with order.work)

# Statuses in which a technician holds the order.
ASSIGNED = frozenset({S.DISPATCHED, S.ACCEPTED, S.EN_ROUTE, S.ON_SITE, S.DIAGNOSING, S.WAITING_PARTS,
                      S.WAITING_CUSTOMER, S.REPAIRING})
PAUSED = frozenset({S.WAITING_PARTS, S.WAITING_CUSTOMER})
TERMINAL = frozenset({S.CLOSED, S.CANCELLED})
OPEN = frozenset(Status.values) - TERMINAL
# Order types that concern a registered unit (the intake must name one).
UNIT_TYPES = frozenset({OrderType.REPAIR, OrderType.MAINTENANCE, OrderType.RETURN_EXCHANGE, OrderType.INSTALLATION})
# Events that are not moves: they keep the status (from_status == to_status).
# (Other apps' events are welcome too as long as they keep the status: the call-back's own.)
EVENT_ACTIONS = frozenset({"note", "photo", "code_sent", "confirm", "confirm_failed", "sla_breach", "survey",
                           "callback_attempt", "quote_sent", "quote_approved", "quote_rejected", "payment", "refund"})
EVENT_LABELS = {
    "create": _("受理"),
    "note": _("备注"),
    "photo": _("现场照片"),
    "code_sent": _("发送确认码"),
    "confirm": _("客户确认"),
    "confirm_failed": _("确认码错误"),
    "sla_breach": _("超时"),
    "survey": _("客户评价"),
    "callback_attempt": _("回访电话"),
    "quote_sent": _("发送报价"),
    "quote_approved": _("客户确认报价"),
    "quote_rejected": _("客户拒绝报价"),
    "payment": _("收款"),
    "refund": _("退款"),
}
TEXT_MAX = 2000


@dataclass(frozen=True)
class Move:
    name: str
    label: object
    sources: frozenset
    target: str | None  # None: the status stays (escalate)
    who: tuple[str, ...]  # permissions (any of them) over the order's node, or ASSIGNEE
    needs: tuple[str, ...] = ()  # fields of ``data`` that must be given
    system: bool = False  # the system (SLA sweep, survey) may make it without a user
    types: frozenset | None = None  # only for these order types
    takes: tuple[str, ...] = ()  # further fields it accepts (besides ``note``)

    def leads_to(self, current: str) -> str:
        return self.target or current

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field the move reads: what it needs, what it takes, and ``note``."""
        return (*self.needs, *self.takes, "note")


def _m(name, label, sources, target, who, needs=(), system=False, types=None, takes=()) -> Move:
    return Move(name, label, frozenset(sources), target, tuple(who), tuple(needs), system,
                frozenset(types) if types else None, tuple(takes))


H, D = Perm.ORDER_HANDLE, Perm.ORDER_DISPATCH
WORK = ("actions", "fault_code")

# The table. Read a row as: <name> moves an order from <sources> to <target>; <who> may do it;
# it needs <needs> (and takes <takes>).
MOVES: dict[str, Move] = {m.name: m for m in [
    _m("classify", _("分类"), {S.RECEIVED, S.CLASSIFIED}, S.CLASSIFIED, (H,), ("type", "priority"),
       takes=("fault_category",)),
    _m("answer", _("首问解答并关闭"), {S.RECEIVED, S.CLASSIFIED, S.REOPENED}, S.CLOSED, (H,), ("result",),
       types={OrderType.CONSULTATION}),
    _m("dispatch", _("派工"), {S.CLASSIFIED, S.REOPENED}, S.DISPATCHED, (D,),
       ("assignee", "appointment_from", "appointment_to"), system=True),
    _m("reassign", _("改派"), {S.DISPATCHED, S.ACCEPTED}, S.DISPATCHED, (D,),
       ("assignee", "appointment_from", "appointment_to", "reason")),
    _m("accept", _("接单"), {S.DISPATCHED}, S.ACCEPTED, (ASSIGNEE,)),
    _m("decline", _("拒单"), {S.DISPATCHED}, S.CLASSIFIED, (ASSIGNEE,), ("reason",)),
    _m("depart", _("出发"), {S.ACCEPTED}, S.EN_ROUTE, (ASSIGNEE,)),
    _m("arrive", _("到达"), {S.EN_ROUTE}, S.ON_SITE, (ASSIGNEE,)),
    _m("diagnose", _("开始检测"), {S.ON_SITE}, S.DIAGNOSING, (ASSIGNEE,)),
    _m("wait_parts", _("等待配件"), {S.DIAGNOSING, S.REPAIRING}, S.WAITING_PARTS, (ASSIGNEE,), ("reason",)),
    _m("wait_customer", _("等待客户"), {S.ON_SITE, S.DIAGNOSING, S.REPAIRING}, S.WAITING_CUSTOMER, (ASSIGNEE, H),
       ("reason",)),
    _m("resume", _("恢复处理（再次上门）"), PAUSED, S.ACCEPTED, (ASSIGNEE, D, H), system=True),
    _m("repair", _("开始维修"), {S.ON_SITE, S.DIAGNOSING}, S.REPAIRING, (ASSIGNEE,), ("diagnosis",), takes=WORK),
    _m("complete", _("完工"), {S.ON_SITE, S.DIAGNOSING, S.REPAIRING}, S.COMPLETED, (ASSIGNEE,),
       ("diagnosis", "result"), takes=WORK),
    _m("callback", _("开始回访"), {S.COMPLETED}, S.CALLBACK, (H,), system=True),
    _m("close", _("关闭"), {S.CALLBACK}, S.CLOSED, (H,), system=True),
    _m("reopen", _("重开（客户不满意）"), {S.COMPLETED, S.CALLBACK, S.CLOSED}, S.REOPENED, (H,), ("reason",),
       system=True),
    _m("cancel", _("取消"), {S.RECEIVED, S.CLASSIFIED, S.DISPATCHED, S.ACCEPTED, S.EN_ROUTE, S.ON_SITE, S.DIAGNOSING,
                           S.WAITING_PARTS, S.WAITING_CUSTOMER, S.REOPENED}, S.CANCELLED, (H,), ("reason",)),
    _m("transfer", _("转派网点"), {S.RECEIVED, S.CLASSIFIED, S.DISPATCHED, S.ACCEPTED, S.REOPENED}, S.CLASSIFIED,
       (H, D), ("node_id", "reason")),
    _m("escalate", _("升级"), OPEN, None, (H,), ("reason",), system=True),
]}

# Moves that are the first handling of an order (the response clock stops).
RESPONDING = frozenset({"answer", "dispatch", "transfer"})
# Moves made through the dispatch app (booking the technician's time), not the orders API.
DISPATCH_MOVES = frozenset({"dispatch", "reassign", "accept", "decline"})


def action_label(action: str):
    """What an event's action is called on a page: the move's label, or the event's."""
    m = MOVES.get(action)
    return m.label if m is not None else EVENT_LABELS.get(action, action)


def moves_from(status: str, order_type: str | None = None) -> list[Move]:
    return [m for m in MOVES.values() if status in m.sources and (m.types is None or order_type in m.types)]


# ---------------------------------------------------------------- who may

def is_assignee(user, order: WorkOrder) -> bool:
    """``user`` is the technician the order is assigned to (needs ``order.assignee`` loaded)."""
    return user is not None and order.assignee_id is not None and order.assignee.user_id == user.pk


def may(user, m: Move, order: WorkOrder) -> bool:
    """Whether ``user`` may make ``m`` on ``order`` (not whether the status allows it)."""
    if user is None:
        return m.system
    for w in m.who:
        if w == ASSIGNEE:
            if is_assignee(user, order) and principal(user).can(Perm.ORDER_WORK):
                return True
        elif holds_at(user, w, order.node_id):
            return True
    return False


def can_see(user, order: WorkOrder) -> bool:
    """Whether ``user`` may see ``order``: its owner, its technician, the customer it belongs
    to, or ``order.view`` over its node."""
    if user is None:
        return True  # the system
    if order.owner_id is not None and order.owner_id == user.pk:
        return True
    if is_assignee(user, order):
        return True
    p = principal(user)
    if p.customer_id is not None and p.customer_id == order.customer_id:
        return True
    return holds_at(user, Perm.ORDER_VIEW, order.node_id)


def is_customer_of(user, order: WorkOrder) -> bool:
    """``user`` is the order's customer (and not staff who may see the order anyway)."""
    if user is None:
        return False
    p = principal(user)
    return p.customer_id is not None and p.customer_id == order.customer_id and not holds_at(
        user, Perm.ORDER_VIEW, order.node_id)


def allowed_moves(user, order: WorkOrder) -> list[Move]:
    """The moves ``user`` can make on ``order`` now: the buttons a page shows."""
    return [m for m in moves_from(order.status, order.type) if may(user, m, order)]


# ---------------------------------------------------------------- applying a move

@dataclass
class Ctx:
    order: WorkOrder
    move: Move
    user: object
    now: dt.datetime
    data: dict
    note: str
    event_data: dict = field(default_factory=dict)


_NEED_MESSAGES = {
    "reason": _("请填写原因。"),
    "result": _("请填写处理结果。"),
    "diagnosis": _("请填写检测结论。"),
    "type": _("请选择工单类型。"),
    "priority": _("请选择优先级。"),
    "assignee": _("请选择技师。"),
    "appointment_from": _("请填写预约开始时间。"),
    "appointment_to": _("请填写预约结束时间。"),
    "node_id": _("请选择转派的网点。"),
}
# Needs the order itself may already satisfy (a diagnosis given when the repair began).
_KEPT_ON_ORDER = frozenset({"diagnosis"})
_TEXTS = ("reason", "result", "diagnosis", "actions", "note")


def _given(v) -> bool:
    return v is not None and not (isinstance(v, str) and not v.strip())


def _is_id(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v < 2**63


def _normalise(data: dict) -> dict:
    """Strip texts; accept ``node`` (a ``Node`` or an id) for ``node_id``."""
    out = {k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()}
    if "node" in out and "node_id" not in out:
        node = out.pop("node")
        out["node_id"] = getattr(node, "pk", node)
    return out


def _check_needs(c: Ctx) -> None:
    errs = ErrorCollector()
    unknown = sorted(k for k, v in c.data.items() if k not in c.move.fields and _given(v))
    for key in unknown:
        errs.add(key, _("此操作不使用该字段。"))
    for key in c.move.needs:
        if not _given(c.data.get(key)) and not (key in _KEPT_ON_ORDER and getattr(c.order, key)):
            errs.add(key, _NEED_MESSAGES.get(key, _("请填写此项。")))
    a, b = c.data.get("appointment_from"), c.data.get("appointment_to")
    for key, v in (("appointment_from", a), ("appointment_to", b)):
        if v is not None and not isinstance(v, dt.datetime):
            errs.add(key, _("日期时间格式不正确。"))
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime) and b <= a:
        errs.add("appointment_to", _("预约结束时间须晚于开始时间。"))
    for key in _TEXTS:
        v = c.data.get(key)
        if v is not None and not isinstance(v, str):
            errs.add(key, _("请输入文本。"))
        elif isinstance(v, str) and len(v) > TEXT_MAX:
            errs.add(key, _("不能超过 %(n)s 个字符。") % {"n": TEXT_MAX})
    errs.raise_if_any()


def _redecide_warranty(o: WorkOrder, *, fault_key: str | None, part_code: str | None = None) -> None:
    """The 三包 decision for the fault as now known (at receipt: the problem's fault category;
    at the repair: the technician's fault code, a main part or not)."""
    if not o.unit_id:
        return
    from aftersales.customers.selectors import unit_list_qs
    from aftersales.customers.warranty import unit_warranty

    unit = unit_list_qs().filter(pk=o.unit_id).first()
    if unit is None:
        return
    try:
        d = unit_warranty(unit, on=timezone.localdate(o.created_at), fault_key=fault_key, part_code=part_code)
    except ValidationFailed:  # bought after the order was received: nothing to decide
        return
    o.warranty_kind, o.warranty_free = str(d.kind), d.free


def _unit_category(o: WorkOrder) -> str | None:
    from aftersales.customers.models import Unit

    if not o.unit_id:
        return None
    return Unit.objects.filter(pk=o.unit_id).values_list("model__category__code", flat=True).first()


def _fx_classify(c: Ctx):
    from .classify import fault_category

    o = c.order
    errs = ErrorCollector()
    new_type, new_priority = c.data["type"], c.data["priority"]
    if new_type not in OrderType.values:
        errs.add("type", _("无效的工单类型。"))
    elif new_type in UNIT_TYPES and not o.unit_id:
        errs.add("type", _("此类工单须有客户的产品，请先为工单选择产品。"))
    if new_priority not in Priority.values:
        errs.add("priority", _("无效的优先级。"))
    fc = c.data.get("fault_category")
    fc_id = o.fault_category_id
    if _given(fc):
        row = fault_category(fc)
        fc_id = row.id if row else None
        if row is None:
            errs.add("fault_category", _("未知的故障类别。"))
        elif row.id != o.fault_category_id and row.categories and _unit_category(o) not in row.categories | {None}:
            errs.add("fault_category", _("该故障类别不适用于此产品类别。"))
    errs.raise_if_any()
    c.event_data.update(type=new_type, priority=new_priority)
    if fc_id != o.fault_category_id:
        o.fault_category_id = fc_id
        c.event_data["fault_category"] = fc
        _redecide_warranty(o, fault_key=fc)
    o.type, o.priority = new_type, new_priority
    if o.owner_id is None and c.user is not None:  # first contact through the web or the app
        o.owner_id = c.user.pk
        c.event_data["owner"] = c.user.pk


def _fx_answer(c: Ctx):
    c.order.result = c.data["result"]
    c.event_data["result"] = c.data["result"]
    c.order.closed_at = c.now


def _fx_assign(c: Ctx):
    from aftersales.org.models import Employee

    o = c.order
    emp = c.data["assignee"]
    if not isinstance(emp, Employee):
        emp = Employee.objects.filter(pk=emp).first() if _is_id(emp) else None
    if emp is None or not emp.active:
        raise ValidationFailed({"assignee": [_("请选择一位在职的技师。")]})
    if c.move.name == "reassign":
        if emp.pk == o.assignee_id:
            raise ValidationFailed({"assignee": [_("改派须选择另一位技师。")]})
        o.reassign_count += 1
        c.event_data["previous_assignee"] = o.assignee_id
    o.assignee = emp
    o.appointment_from, o.appointment_to = c.data["appointment_from"], c.data["appointment_to"]
    c.event_data.update(assignee=emp.pk, assignee_name=emp.name,
                        appointment_from=o.appointment_from.isoformat(), appointment_to=o.appointment_to.isoformat())


def _fx_decline(c: Ctx):
    o = c.order
    c.event_data["previous_assignee"] = o.assignee_id
    o.decline_count += 1
    o.assignee = None
    o.appointment_from = o.appointment_to = None


def _fx_arrive(c: Ctx):
    c.order.visit_count += 1


def _apply_work_fields(c: Ctx):
    """Diagnosis, actions, result and the fault code, kept on the order and in the event."""
    from .models import FaultCode

    o = c.order
    for key in ("diagnosis", "actions", "result"):
        v = c.data.get(key)
        if _given(v):
            setattr(o, key, v)
            c.event_data[key] = v
    code = c.data.get("fault_code")
    if _given(code):
        fc = None
        if o.unit_id:
            fc = FaultCode.objects.filter(category__models__units=o.unit_id, code=str(code).strip()).first()
        if fc is None:
            raise ValidationFailed({"fault_code": [_("未知的故障代码，或它不属于此产品类别。")]})
        o.fault_code = fc
        o.fault_category_id = fc.fault_category_id
        c.event_data["fault_code"] = fc.code
        from .classify import fault_category_code

        _redecide_warranty(o, fault_key=fc.part_code or fault_category_code(fc.fault_category_id),
                           part_code=fc.part_code or None)


def _fx_repair(c: Ctx):
    _apply_work_fields(c)


def _repair_fault_key(o: WorkOrder) -> str | None:
    """The key under which the repair counts for the repeat-repair rule: the main part the
    fault code names, else the fault category."""
    from .classify import fault_category_code

    if o.fault_code_id and o.fault_code.part_code:
        return o.fault_code.part_code
    return fault_category_code(o.fault_category_id) if o.fault_category_id else None


def _record_repair(c: Ctx, fault_key: str) -> None:
    """The unit's repair fact (R-REC-4), which the next 三包 decision reads."""
    from aftersales.customers.models import Customer, Unit, UnitRepair
    from aftersales.customers.services import unit_repair_record
    from aftersales.records.audit import snapshot

    o = c.order
    today = timezone.localdate()
    purchase = Unit.objects.filter(pk=o.unit_id).values_list("purchase_date", flat=True).get()
    started = min(max(timezone.localdate(o.created_at), purchase), today)
    finished = max(min(timezone.localdate(c.now), today), started)
    free = bool(o.warranty_free)
    node_id = Customer.objects.filter(pk=o.customer_id).values_list("node_id", flat=True).first()
    if c.user is not None and holds_at(c.user, Perm.UNIT_EDIT, node_id):
        unit_repair_record(user=c.user, unit_id=o.unit_id, started_on=started, finished_on=finished,
                           fault_key=fault_key, in_warranty=free, source=o.number)
        return
    # The order's technician may work for another outlet than the customer's (a transfer):
    # completing the order is their right to record its repair.
    r = UnitRepair.objects.create(unit_id=o.unit_id, started_on=started, finished_on=finished, fault_key=fault_key,
                                  in_warranty=free, source=o.number)
    audit_record(actor=c.user, action="unit.repair", obj=r, before=None, after=snapshot(r), node_id=node_id)


def _fx_complete(c: Ctx):
    _apply_work_fields(c)
    o = c.order
    o.completed_at = c.now
    if o.unit_id and o.type in (OrderType.REPAIR, OrderType.RETURN_EXCHANGE) and o.fault_category_id:
        key = _repair_fault_key(o)
        if key:
            _record_repair(c, key)


def _fx_close(c: Ctx):
    c.order.closed_at = c.now


def _fx_reopen(c: Ctx):
    o = c.order
    o.reopen_count += 1
    o.completed_at = o.closed_at = None
    o.confirmed_by, o.confirmed_at = "", None
    o.confirm_code_hash, o.confirm_code_expires = "", None


def _fx_cancel(c: Ctx):
    o = c.order
    if len(c.data["reason"]) > 200:
        raise ValidationFailed({"reason": [_("不能超过 %(n)s 个字符。") % {"n": 200}]})
    o.cancel_reason = c.data["reason"]
    o.closed_at = c.now  # the assignee stays on record; dispatch frees the booking (order_moved)


def _fx_transfer(c: Ctx):
    from aftersales.org.models import Node, NodeKind

    o = c.order
    node_id = c.data["node_id"]
    if isinstance(node_id, str) and node_id.isdigit():
        node_id = int(node_id)
    node = None
    if _is_id(node_id):
        node = Node.objects.filter(pk=node_id, active=True, kind=NodeKind.OUTLET).only("pk", "name").first()
    if node is None:
        raise ValidationFailed({"node_id": [_("请选择一个启用的服务网点。")]})
    if node.pk == o.node_id:
        raise ValidationFailed({"node_id": [_("工单已在该网点。")]})
    c.event_data.update(from_node=o.node_id, to_node=node.pk)
    if o.assignee_id:
        c.event_data["previous_assignee"] = o.assignee_id
    o.node_id = node.pk
    o.assignee = None
    o.appointment_from = o.appointment_to = None


def _fx_escalate(c: Ctx):
    c.order.escalation_level += 1
    c.event_data["level"] = c.order.escalation_level


EFFECTS: dict[str, Callable[[Ctx], None]] = {
    "classify": _fx_classify,
    "answer": _fx_answer,
    "dispatch": _fx_assign,
    "reassign": _fx_assign,
    "decline": _fx_decline,
    "arrive": _fx_arrive,
    "repair": _fx_repair,
    "complete": _fx_complete,
    "close": _fx_close,
    "reopen": _fx_reopen,
    "cancel": _fx_cancel,
    "transfer": _fx_transfer,
    "escalate": _fx_escalate,
}


def illegal_message(order: WorkOrder, m: Move):
    if order.status in m.sources and m.types is not None and order.type not in m.types:
        return _("「%(move)s」只适用于%(types)s工单。") % {
            "move": m.label, "types": "、".join(str(OrderType(t).label) for t in sorted(m.types))}
    return _("工单 %(number)s 当前状态为「%(status)s」，不能执行「%(move)s」。") % {
        "number": order.number, "status": order.get_status_display(), "move": m.label}


def is_legal(order: WorkOrder, m: Move) -> bool:
    return order.status in m.sources and (m.types is None or order.type in m.types)


_AUDITED = ("status", "type", "priority", "node_id", "assignee_id", "appointment_from", "appointment_to",
            "diagnosis", "result", "fault_code_id", "fault_category_id", "escalation_level", "reopen_count",
            "responded_at", "completed_at", "closed_at", "response_due", "resolve_due", "sla_state",
            "warranty_kind", "warranty_free")


def _state(o: WorkOrder) -> dict:
    return {k: getattr(o, k) for k in _AUDITED}


def lock_order(order_id: int) -> WorkOrder:
    """The order row, locked for the rest of the transaction, with its technician (whom the
    checks read) in the same query. 404 if there is none."""
    if not _is_id(order_id):
        raise NotFound()
    rows = list(WorkOrder.objects.select_for_update(of=("self",)).select_related("assignee").filter(pk=order_id))
    if not rows:
        raise NotFound()
    return rows[0]


_FIELDS = [f.attname for f in WorkOrder._meta.concrete_fields if not f.primary_key]


def _values(o: WorkOrder) -> list:
    return [getattr(o, f) for f in _FIELDS]


def _save_changes(o: WorkOrder, before: list) -> None:
    """Update the columns the move changed, and only those."""
    changed = [f for f, old in zip(_FIELDS, before, strict=True) if getattr(o, f) != old]
    if changed:
        o.save(update_fields=changed)


def event_append(order: WorkOrder, *, actor, action: str, at: dt.datetime, from_status: str = "",
                 to_status: str = "", note: str = "", data: dict | None = None) -> OrderEvent:
    """Append one event to a locked order's history (the caller saves ``order.event_count``)."""
    order.event_count += 1
    label = actor.get_username() if actor is not None else "system"
    return OrderEvent.objects.create(order=order, seq=order.event_count, at=at, actor=actor, actor_label=label,
                                     action=action, from_status=from_status, to_status=to_status, note=note,
                                     data=data or {})


def move(order_id: int, name: str, *, user, note: str = "", now: dt.datetime | None = None, **data) -> WorkOrder:
    """Make move ``name`` on the order: check, apply, record. ``user=None`` is the system.

    ``data`` holds the move's fields (``MOVES[name].fields``); anything else is a 400."""
    m = MOVES.get(name)
    if m is None:
        raise NotFound(_("没有这个操作。"))
    with transaction.atomic():
        o = lock_order(order_id)
        if not can_see(user, o):
            raise NotFound()
        if not may(user, m, o):
            raise PermissionDenied(_("您无权对此工单执行「%(move)s」。") % {"move": m.label})
        if not is_legal(o, m):
            raise Conflict(illegal_message(o, m), code="illegal_move")
        now = now or timezone.now()
        data = _normalise(data)
        if note:
            data["note"] = note
        c = Ctx(order=o, move=m, user=user, now=now, data=data, note="")
        _check_needs(c)
        reason = data.get("reason") or ""
        c.note = (data.get("note") or reason)[:TEXT_MAX]
        if reason and reason != c.note:
            c.event_data["reason"] = reason
        before, values = _state(o), _values(o)
        from_status = o.status
        order_moving.send(sender=WorkOrder, order=o, move=name, from_status=from_status,
                          to_status=m.leads_to(from_status), actor=user, data=data, at=now)
        fx = EFFECTS.get(name)
        if fx:
            fx(c)
        o.status = m.leads_to(from_status)
        if name in RESPONDING and o.responded_at is None:
            o.responded_at = now
        sla.on_move(o, m.name, from_status, o.status, now)
        o.updated_at = now
        event_append(o, actor=user, action=name, at=now, from_status=from_status, to_status=o.status,
                     note=c.note, data=c.event_data)
        _save_changes(o, values)
        audit_record(actor=user, action=f"order.{name}", obj=o, before=before, after=_state(o), node_id=o.node_id)
        order_moved.send(sender=WorkOrder, order=o, move=name, from_status=from_status, to_status=o.status,
                         actor=user, at=now)
        return o
