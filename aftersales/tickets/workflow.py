"""The work-order workflow: one table of moves, and the one function that applies them.

Nothing else sets ``WorkOrder.status``. Each ``Move`` says from which statuses it may be made,
where it leads, who may make it (a permission held over the order's node; ``ASSIGNEE`` for
the technician the order is assigned to; ``system`` for the SLA sweep and the survey) and
what it needs. ``move()`` locks the order row, checks all of that (409 for a move the
status does not allow, 403/404 for the wrong person, 400 naming each missing field), applies
the move's effects, keeps the SLA clock (``tickets.sla``), appends the ``OrderEvent`` and the
audit entry, and sends ``signals.order_moved`` — all in one transaction.
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
from .models import OrderEvent, OrderType, Status, WorkOrder
from .signals import order_moved

S = Status
ASSIGNEE = "assignee"  # the technician the order is assigned to (with order.work)

# Statuses in which a technician holds the order.
ASSIGNED = frozenset({S.DISPATCHED, S.ACCEPTED, S.EN_ROUTE, S.ON_SITE, S.DIAGNOSING, S.WAITING_PARTS,
                      S.WAITING_CUSTOMER, S.REPAIRING})
PAUSED = frozenset({S.WAITING_PARTS, S.WAITING_CUSTOMER})
TERMINAL = frozenset({S.CLOSED, S.CANCELLED})
OPEN = frozenset(Status.values) - TERMINAL


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

    def leads_to(self, current: str) -> str:
        return self.target or current


def _m(name, label, sources, target, who, needs=(), system=False, types=None) -> Move:
    return Move(name, label, frozenset(sources), target, tuple(who), tuple(needs), system,
                frozenset(types) if types else None)


H, D = Perm.ORDER_HANDLE, Perm.ORDER_DISPATCH

# The table. Read a row as: <name> moves an order from <sources> to <target>; <who> may do it;
# it needs <needs>.
MOVES: dict[str, Move] = {m.name: m for m in [
    _m("classify", _("分类"), {S.RECEIVED}, S.CLASSIFIED, (H,), ("type", "priority")),
    _m("answer", _("首问解答并关闭"), {S.RECEIVED, S.CLASSIFIED}, S.CLOSED, (H,), ("result",),
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
    _m("resume", _("恢复处理（再次上门）"), PAUSED, S.ACCEPTED, (ASSIGNEE, D), system=True),
    _m("repair", _("开始维修"), {S.ON_SITE, S.DIAGNOSING}, S.REPAIRING, (ASSIGNEE,), ("diagnosis",)),
    _m("complete", _("完工"), {S.ON_SITE, S.DIAGNOSING, S.REPAIRING}, S.COMPLETED, (ASSIGNEE,),
       ("diagnosis", "result")),
    _m("callback", _("开始回访"), {S.COMPLETED}, S.CALLBACK, (H,), system=True),
    _m("close", _("关闭"), {S.CALLBACK}, S.CLOSED, (H,), system=True),
    _m("reopen", _("重开（客户不满意）"), {S.COMPLETED, S.CALLBACK, S.CLOSED}, S.REOPENED, (H,), ("reason",),
       system=True),
    _m("cancel", _("取消"), {S.RECEIVED, S.CLASSIFIED, S.DISPATCHED, S.ACCEPTED, S.EN_ROUTE, S.WAITING_CUSTOMER,
                           S.REOPENED}, S.CANCELLED, (H,), ("reason",)),
    _m("transfer", _("转派网点"), {S.RECEIVED, S.CLASSIFIED, S.DISPATCHED, S.ACCEPTED, S.REOPENED}, S.CLASSIFIED,
       (H, D), ("node", "reason")),
    _m("escalate", _("升级"), OPEN, None, (H,), ("reason",), system=True),
]}

# Moves that are the first handling of an order (the response clock stops).
RESPONDING = frozenset({"answer", "dispatch", "transfer"})


def moves_from(status: str, order_type: str | None = None) -> list[Move]:
    return [m for m in MOVES.values() if status in m.sources and (m.types is None or order_type in m.types)]


# ---------------------------------------------------------------- who may

def may(user, m: Move, order: WorkOrder) -> bool:
    """Whether ``user`` may make ``m`` on ``order`` (not whether the status allows it)."""
    if user is None:
        return m.system
    for w in m.who:
        if w == ASSIGNEE:
            if order.assignee_id is not None and order.assignee.user_id == user.pk and principal(user).can(
                    Perm.ORDER_WORK):
                return True
        elif holds_at(user, w, order.node_id):
            return True
    return False


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


def _text(data: dict, key: str) -> str:
    v = data.get(key)
    return v.strip() if isinstance(v, str) else ("" if v is None else v)


_NEED_MESSAGES = {
    "reason": _("请填写原因。"),
    "result": _("请填写处理结果。"),
    "diagnosis": _("请填写检测结论。"),
    "type": _("请选择工单类型。"),
    "priority": _("请选择优先级。"),
    "assignee": _("请选择技师。"),
    "appointment_from": _("请填写预约开始时间。"),
    "appointment_to": _("请填写预约结束时间。"),
    "node": _("请选择转派的网点。"),
}


def _check_needs(c: Ctx) -> None:
    errs = ErrorCollector()
    for key in c.move.needs:
        v = c.data.get(key)
        if v is None or (isinstance(v, str) and not v.strip()):
            errs.add(key, _NEED_MESSAGES.get(key, _("请填写此项。")))
    if c.data.get("appointment_from") and c.data.get("appointment_to") and \
            c.data["appointment_to"] <= c.data["appointment_from"]:
        errs.add("appointment_to", _("预约结束时间须晚于开始时间。"))
    for key in ("reason", "result", "diagnosis", "actions"):
        v = c.data.get(key)
        if isinstance(v, str) and len(v) > 2000:
            errs.add(key, _("不能超过 2000 个字符。"))
    errs.raise_if_any()


def _fx_classify(c: Ctx):
    o = c.order
    errs = ErrorCollector()
    from .models import FaultCategory, Priority

    if c.data["type"] not in OrderType.values:
        errs.add("type", _("无效的工单类型。"))
    if c.data["priority"] not in Priority.values:
        errs.add("priority", _("无效的优先级。"))
    fc = c.data.get("fault_category")
    if fc not in (None, ""):
        fc_obj = FaultCategory.objects.filter(code=fc).first()
        if fc_obj is None:
            errs.add("fault_category", _("未知的故障类别。"))
        else:
            o.fault_category = fc_obj
    errs.raise_if_any()
    c.event_data.update(type=c.data["type"], priority=c.data["priority"])
    o.type, o.priority = c.data["type"], c.data["priority"]
    if o.owner_id is None and c.user is not None:  # first contact through the web or the app
        o.owner_id = c.user.pk


def _fx_answer(c: Ctx):
    c.order.result = c.data["result"]


def _fx_assign(c: Ctx):
    o = c.order
    emp = c.data["assignee"]
    if c.move.name == "reassign":
        if emp.pk == o.assignee_id:
            raise Conflict(_("改派须选择另一位技师。"), errors={"assignee": [_("改派须选择另一位技师。")]})
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
    from .models import FaultCode

    o = c.order
    for key in ("diagnosis", "actions", "result"):
        if c.data.get(key):
            setattr(o, key, _text(c.data, key))
    code = c.data.get("fault_code")
    if code not in (None, ""):
        fc = None
        if o.unit_id:
            fc = FaultCode.objects.filter(category_id=o.unit.model.category_id, code=code).first()
        if fc is None:
            raise ValidationFailed({"fault_code": [_("未知的故障代码。")]})
        o.fault_code = fc
        o.fault_category_id = fc.fault_category_id
        c.event_data["fault_code"] = fc.code


def _fx_repair(c: Ctx):
    _apply_work_fields(c)


def _fx_complete(c: Ctx):
    _apply_work_fields(c)
    o = c.order
    o.completed_at = c.now
    if o.unit_id and o.type in (OrderType.REPAIR, OrderType.RETURN_EXCHANGE) and o.fault_category_id:
        from aftersales.customers.services import unit_repair_record

        unit_repair_record(user=c.user, unit_id=o.unit_id, started_on=timezone.localdate(o.created_at),
                           finished_on=timezone.localdate(c.now), fault_key=o.fault_category.code,
                           in_warranty=bool(o.warranty_free), source=o.number)


def _fx_close(c: Ctx):
    c.order.closed_at = c.now


def _fx_reopen(c: Ctx):
    o = c.order
    o.reopen_count += 1
    o.completed_at = o.closed_at = None
    o.confirmed_by, o.confirmed_at = "", None


def _fx_cancel(c: Ctx):
    o = c.order
    o.cancel_reason = c.data["reason"][:200]
    o.closed_at = c.now  # the assignee stays on record; dispatch frees the booking (order_moved)


def _fx_transfer(c: Ctx):
    from aftersales.org.models import Node, NodeKind

    o = c.order
    node = c.data["node"]
    if not isinstance(node, Node):
        node = Node.objects.filter(pk=node, active=True).first()
    if node is None or node.kind != NodeKind.OUTLET:
        raise ValidationFailed({"node": [_("请选择一个启用的服务网点。")]})
    if node.pk == o.node_id:
        raise ValidationFailed({"node": [_("工单已在该网点。")]})
    c.event_data.update(from_node=o.node_id, to_node=node.pk)
    o.node = node
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
    if m.types is not None and order.type not in m.types:
        return _("「%(move)s」只适用于%(types)s工单。") % {
            "move": m.label, "types": "、".join(str(OrderType(t).label) for t in sorted(m.types))}
    return _("工单 %(number)s 当前状态为「%(status)s」，不能执行「%(move)s」。") % {
        "number": order.number, "status": order.get_status_display(), "move": m.label}


_AUDITED = ("status", "type", "priority", "node_id", "assignee_id", "appointment_from", "appointment_to",
            "diagnosis", "result", "fault_code_id", "fault_category_id", "escalation_level", "reopen_count",
            "responded_at", "completed_at", "closed_at", "response_due", "resolve_due", "sla_state")


def _state(o: WorkOrder) -> dict:
    return {k: getattr(o, k) for k in _AUDITED}


def lock_order(order_id: int) -> WorkOrder:
    o = (WorkOrder.objects.select_for_update(of=("self",))
         .select_related("assignee", "unit__model", "fault_category").filter(pk=order_id).first())
    if o is None:
        raise NotFound()
    return o


def event_append(order: WorkOrder, *, actor, action: str, at: dt.datetime, from_status: str = "",
                 to_status: str = "", note: str = "", data: dict | None = None) -> OrderEvent:
    """Append one event to a locked order's history (the caller saves ``order.event_count``)."""
    order.event_count += 1
    label = actor.get_username() if actor is not None else "system"
    return OrderEvent.objects.create(order=order, seq=order.event_count, at=at, actor=actor, actor_label=label,
                                     action=action, from_status=from_status, to_status=to_status, note=note,
                                     data=data or {})


def move(order_id: int, name: str, *, user, note: str = "", now: dt.datetime | None = None, **data) -> WorkOrder:
    """Make move ``name`` on the order: check, apply, record. ``user=None`` is the system."""
    m = MOVES.get(name)
    if m is None:
        raise NotFound(_("没有这个操作。"))
    with transaction.atomic():
        o = lock_order(order_id)
        if user is not None and not can_see(user, o):
            raise NotFound()
        if o.status not in m.sources or (m.types is not None and o.type not in m.types):
            raise Conflict(illegal_message(o, m), code="illegal_move")
        if not may(user, m, o):
            raise PermissionDenied(_("您无权对此工单执行「%(move)s」。") % {"move": m.label})
        now = now or timezone.now()
        c = Ctx(order=o, move=m, user=user, now=now, data=data, note=(note or data.get("reason") or "").strip())
        _check_needs(c)
        before = _state(o)
        from_status = o.status
        fx = EFFECTS.get(name)
        if fx:
            fx(c)
        if name == "answer":
            _fx_close(c)
        o.status = m.leads_to(from_status)
        if name in RESPONDING and o.responded_at is None:
            o.responded_at = now
        sla.on_move(o, m.name, from_status, o.status, now)
        o.updated_at = now
        event_append(o, actor=user, action=name, at=now, from_status=from_status, to_status=o.status,
                     note=c.note[:2000], data=c.event_data)
        o.save()
        audit_record(actor=user, action=f"order.{name}", obj=o, before=before, after=_state(o), node_id=o.node_id)
        order_moved.send(sender=WorkOrder, order=o, move=name, from_status=from_status, to_status=o.status,
                         actor=user, at=now)
        return o


def can_see(user, order: WorkOrder) -> bool:
    """Whether ``user`` may see ``order``: order.view over its node, its technician, its owner,
    or the customer it belongs to."""
    p = principal(user)
    if holds_at(user, Perm.ORDER_VIEW, order.node_id):
        return True
    if order.owner_id == user.pk:
        return True
    if order.assignee_id is not None and order.assignee.user_id == user.pk:
        return True
    return p.customer_id is not None and p.customer_id == order.customer_id
