"""Writes of dispatch: booking a technician for an order (dispatch, reassign), the technician's
answer (accept, decline), auto-dispatch, the per-node settings and the appointment reminders.

No double booking. ``_book`` locks the order, then the technician's ``Employee`` row
(``SELECT … FOR UPDATE``), and only then looks for an overlapping active booking and books:
two dispatchers booking one technician at the same moment — from two connections, for two
orders — are served one after the other, and the second sees the first's booking and gets a
409 naming it. Locks are always taken in the order order → employee → bookings.

The order's status moves through ``tickets.workflow.move`` only; its ``order_moved`` signal
lets ``receivers`` keep the bookings in step with moves made anywhere (release on decline,
transfer, cancel; done on completion) and tell the customer.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import Conflict, ErrorCollector, NotFound, PermissionDenied, ValidationFailed
from aftersales.org.models import Employee, Node
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import holds_at, principal, scoped
from aftersales.records.audit import audit_record, snapshot
from aftersales.tickets import workflow
from aftersales.tickets.models import Status, WorkOrder

from . import selectors
from .models import Booking, DispatchSetting

logger = logging.getLogger(__name__)

MAX_SLOT = dt.timedelta(hours=8)
MAX_AHEAD = dt.timedelta(days=90)
PAST_TOLERANCE = dt.timedelta(minutes=1)  # a form submitted at the very minute it names
REMIND_AHEAD = dt.timedelta(hours=24)
TEXT_MAX = 2000
MAX_ID = 2**63 - 1
MANAGER_ROLES = frozenset({Role.ADMIN, Role.HQ_MANAGER, Role.CENTRE_MANAGER, Role.OUTLET_MANAGER})

_BOOKING_FIELDS = ("employee_id", "order_id", "starts_at", "ends_at", "active", "released_at", "release_reason",
                   "done_at", "reminded_at")


def _aware(v: dt.datetime | None) -> dt.datetime | None:
    if v is not None and timezone.is_naive(v):
        return timezone.make_aware(v)
    return v


def _text(v) -> str:
    return v.strip() if isinstance(v, str) else ""


def _check_times(errs: ErrorCollector, starts_at, ends_at, now: dt.datetime) -> None:
    if starts_at is None:
        errs.add("starts_at", _("请填写预约开始时间。"))
    elif starts_at < now - PAST_TOLERANCE:
        errs.add("starts_at", _("预约开始时间不能早于现在。"))
    elif starts_at > now + MAX_AHEAD:
        errs.add("starts_at", _("预约时间不能晚于 %(days)s 天后。") % {"days": MAX_AHEAD.days})
    if ends_at is None:
        errs.add("ends_at", _("请填写预约结束时间。"))
    elif starts_at is not None:
        if ends_at <= starts_at:
            errs.add("ends_at", _("预约结束时间须晚于开始时间。"))
        elif ends_at - starts_at > MAX_SLOT:
            errs.add("ends_at", _("预约时段不能超过 %(h)s 小时。") % {"h": int(MAX_SLOT.total_seconds() // 3600)})


def _need_dispatch(user, order: WorkOrder) -> None:
    """404 when the order is out of the user's sight, 403 when seen but not theirs to dispatch."""
    if user is None or holds_at(user, Perm.ORDER_DISPATCH, order.node_id):
        return
    if workflow.can_see(user, order):
        raise PermissionDenied(_("您无权为此工单派工。"))
    raise NotFound()


def _booking_audit(actor, action: str, b: Booking, before: dict | None, node_id: int) -> None:
    audit_record(actor=actor, action=action, obj=b, before=before, after=snapshot(b, _BOOKING_FIELDS),
                 node_id=node_id)


def _conflict_message(emp: Employee, clash: Booking):
    return _("技师 %(name)s 在 %(window)s 已有工单 %(number)s，不能重复预约，请另选时间或技师。") % {
        "name": emp.name, "window": selectors.fmt_window(clash.starts_at, clash.ends_at),
        "number": clash.order.number}


# ---------------------------------------------------------------- bookings kept in step with the order

def bookings_release(order: WorkOrder, *, actor, at: dt.datetime, reason: str, keep: Booking | None = None) -> int:
    """Release the order's current bookings (active, visit not done), ``keep`` excepted."""
    n = 0
    for b in Booking.objects.select_for_update().filter(order_id=order.pk, active=True, done_at__isnull=True):
        if keep is not None and b.pk == keep.pk:
            continue
        before = snapshot(b, _BOOKING_FIELDS)
        b.active, b.released_at, b.release_reason = False, at, reason[:200]
        b.save(update_fields=["active", "released_at", "release_reason"])
        _booking_audit(actor, "booking.release", b, before, order.node_id)
        n += 1
    return n


def bookings_sync(order: WorkOrder, *, actor, at: dt.datetime, reason: str) -> Booking:
    """After a dispatch or reassignment: the order's one current booking is its assignee at its
    appointment; any other is released. A booking the move did not come with (a move made
    outside ``dispatch_order``) is recorded, so the technician's day shows it."""
    current = list(Booking.objects.select_for_update().filter(order_id=order.pk, active=True, done_at__isnull=True))
    keep = next((b for b in current if b.employee_id == order.assignee_id and b.starts_at == order.appointment_from
                 and b.ends_at == order.appointment_to), None)
    if len(current) > (1 if keep else 0):
        bookings_release(order, actor=actor, at=at, reason=reason, keep=keep)
    if keep is None:
        keep = Booking.objects.create(employee_id=order.assignee_id, order_id=order.pk,
                                      starts_at=order.appointment_from, ends_at=order.appointment_to,
                                      created_by=actor, created_at=at)
        _booking_audit(actor, "booking.create", keep, None, order.node_id)
    return keep


def bookings_done(order: WorkOrder, *, actor, at: dt.datetime) -> None:
    """The visit is done: the booking stays (it counts in the day's load) and, when the work
    ended early, the rest of the slot is given back."""
    for b in Booking.objects.select_for_update().filter(order_id=order.pk, active=True, done_at__isnull=True):
        before = snapshot(b, _BOOKING_FIELDS)
        b.done_at = at
        if b.starts_at < at < b.ends_at:
            b.ends_at = at
        b.save(update_fields=["done_at", "ends_at"])
        _booking_audit(actor, "booking.done", b, before, order.node_id)


# ---------------------------------------------------------------- dispatch and reassign

def _book(*, user, order_id: int, employee_id, starts_at, ends_at, move: str, note: str = "",
          reason: str = "", reason_field: str = "reason", now: dt.datetime | None = None) -> WorkOrder:
    now = now or timezone.now()
    starts_at, ends_at = _aware(starts_at), _aware(ends_at)
    note, reason = _text(note), _text(reason)
    errs = ErrorCollector()
    _check_times(errs, starts_at, ends_at, now)
    if move == "reassign" and not reason:
        errs.add(reason_field, _("请填写改派原因。"))
    for key, v in (("note", note), (reason_field, reason)):
        if len(v) > TEXT_MAX:
            errs.add(key, _("不能超过 %(n)s 个字符。") % {"n": TEXT_MAX})
    m = workflow.MOVES[move]
    with transaction.atomic():
        order = workflow.lock_order(order_id)
        _need_dispatch(user, order)
        if order.status not in m.sources:
            raise Conflict(workflow.illegal_message(order, m), code="illegal_move")
        # The technician's row lock serialises every booking of this technician: from here on,
        # no other transaction books them until this one ends.
        locked = None
        if isinstance(employee_id, int) and not isinstance(employee_id, bool) and 1 <= employee_id <= MAX_ID:
            emp_qs = Employee.objects.select_for_update().filter(pk=employee_id)
            if user is not None:
                emp_qs = scoped(emp_qs, user, Perm.ORDER_DISPATCH)
            locked = emp_qs.values_list("pk", flat=True).first()
        if locked is None:
            errs.add("employee_id", _("未找到该技师，或其不在您的派工范围内。"))
        errs.raise_if_any()

        # What the ranking reads of the order, in one query (the row is locked above).
        job = selectors.job_for(selectors.order_for_dispatch(None, order.pk))
        on = timezone.localdate(starts_at)
        emp = selectors.pool(job, employee_id=employee_id, load_day=on, booked_range=(starts_at, ends_at)).first()
        if emp is None:  # removed meanwhile
            raise ValidationFailed({"employee_id": [_("未找到该技师，或其不在您的派工范围内。")]})
        c = selectors.evaluate_pool(job, [emp], on=on)[0]
        if c.field_blockers:
            raise ValidationFailed({"employee_id": c.field_blockers},
                                   message=_("%(name)s 不能承接此工单。") % {"name": emp.name})
        if c.clashes:
            msg = _conflict_message(emp, c.clashes[0])
            raise Conflict(msg, errors={"starts_at": [msg]}, code="booking_conflict")

        if move == "reassign":
            bookings_release(order, actor=user, at=now, reason=str(_("改派：%(r)s") % {"r": reason}))
        b = Booking.objects.create(employee=emp, order=order, starts_at=starts_at, ends_at=ends_at, created_by=user,
                                   created_at=now)
        _booking_audit(user, "booking.create", b, None, order.node_id)
        data = {"assignee": emp, "appointment_from": starts_at, "appointment_to": ends_at}
        if move == "reassign":
            data["reason"] = reason
        o = workflow.move(order.pk, move, user=user, note=note or reason, now=now, **data)
        if c.overdue_tools:
            _warn_instruments(o, emp, c.overdue_tools, actor=user, at=now)
        o.dispatch_warnings = list(c.warnings)
        return o


def _warn_instruments(order: WorkOrder, emp: Employee, tools: list, *, actor, at: dt.datetime) -> None:
    """The technician holds instruments whose check has lapsed: the dispatch stands (R-PART-2:
    warned, not blocked); a note on the order's history keeps the warning and the technician
    is told."""
    from aftersales.assets.selectors import instrument_warning
    from aftersales.notifications.services import notify_users

    with translation.override("zh-hans"):
        items = "；".join(instrument_warning(t) for t in tools)
        text = str(_("派工提醒：%(name)s%(items)s。") % {"name": emp.name, "items": items})
    data = {"instrument_warning": [{"tool": t.code, "due_on": t.due_on.isoformat()} for t in tools]}
    workflow.event_append(order, actor=actor, action="note", at=at, from_status=order.status, to_status=order.status,
                          note=text[:TEXT_MAX], data=data)
    order.save(update_fields=["event_count"])
    audit_record(actor=actor, action="order.instrument_warning", obj=order, before=None, after=data,
                 node_id=order.node_id)
    recipient = get_user_model().objects.filter(employee=emp.pk, is_active=True).first()
    if recipient is not None:
        notify_users([recipient], event="dispatch_instrument", ref=order.number, ref_id=order.pk, node_id=order.node_id,
                     context={"number": order.number, "tools": items})


def dispatch_order(*, user, order_id: int, employee_id: int, starts_at: dt.datetime, ends_at: dt.datetime,
                   note: str = "") -> WorkOrder:
    """Book ``employee_id`` for the order from ``starts_at`` to ``ends_at`` and dispatch it. An
    order already dispatched (or accepted) is reassigned instead, with ``note`` as the reason."""
    status = WorkOrder.objects.filter(pk=order_id).values_list("status", flat=True).first()
    if status in selectors.HELD:
        return _book(user=user, order_id=order_id, employee_id=employee_id, starts_at=starts_at, ends_at=ends_at,
                     move="reassign", reason=note, reason_field="note")
    return _book(user=user, order_id=order_id, employee_id=employee_id, starts_at=starts_at, ends_at=ends_at,
                 move="dispatch", note=note)


def reassign_order(*, user, order_id: int, employee_id: int, starts_at: dt.datetime, ends_at: dt.datetime,
                   reason: str) -> WorkOrder:
    """Give a dispatched (or accepted) order to another technician; the old booking is released
    and the order's reassignment count goes up."""
    return _book(user=user, order_id=order_id, employee_id=employee_id, starts_at=starts_at, ends_at=ends_at,
                 move="reassign", reason=reason)


# ---------------------------------------------------------------- the technician's answer

def accept_order(*, user, order_id: int) -> WorkOrder:
    with transaction.atomic():
        return workflow.move(order_id, "accept", user=user)


def decline_order(*, user, order_id: int, reason: str) -> WorkOrder:
    """The technician declines with a reason: the booking is released (receivers) and, where the
    node dispatches automatically, the next candidate is tried after commit."""
    reason = _text(reason)
    if not reason:
        raise ValidationFailed({"reason": [_("请填写拒单原因。")]})
    if len(reason) > TEXT_MAX:
        raise ValidationFailed({"reason": [_("不能超过 %(n)s 个字符。") % {"n": TEXT_MAX}]})
    with transaction.atomic():
        return workflow.move(order_id, "decline", user=user, reason=reason)


# ---------------------------------------------------------------- auto-dispatch

@dataclass
class AutoResult:
    order: WorkOrder
    dispatched: bool
    reason: str = ""


def _note_nobody(order_id: int, *, user, reason: str, now: dt.datetime) -> WorkOrder:
    with transaction.atomic():
        o = workflow.lock_order(order_id)
        text = str(_("自动派工未成功：%(reason)s") % {"reason": reason})
        workflow.event_append(o, actor=user, action="note", at=now, from_status=o.status, to_status=o.status,
                              note=text, data={"auto_dispatch": "none"})
        o.updated_at = now
        o.save(update_fields=["event_count", "updated_at"])
        audit_record(actor=user, action="order.auto_dispatch_none", obj=o, before=None, after={"reason": reason},
                     node_id=o.node_id)
        return o


def auto_dispatch_run(order_id: int, *, user=None, now: dt.datetime | None = None, attempts: int = 3) -> AutoResult:
    """Auto-dispatch with its outcome. ``user=None`` is the system; a user (the dispatcher's
    "auto" button) must be allowed to dispatch the order, and the order must be waiting."""
    for _attempt in range(attempts):
        at = now or timezone.now()
        order = selectors.order_for_dispatch(None, order_id)
        if user is not None:
            _need_dispatch(user, order)
        if order.status not in selectors.WAITING:
            if user is not None:
                raise Conflict(workflow.illegal_message(order, workflow.MOVES["dispatch"]), code="illegal_move")
            return AutoResult(order, False, str(_("工单不在待派工状态。")))
        plan = selectors.plan_auto(order, now=at)
        if plan.candidate is None:
            return AutoResult(_note_nobody(order_id, user=user, reason=plan.reason, now=at), False, plan.reason)
        c = plan.candidate
        note = str(_("自动派工：%(name)s，%(reasons)s") % {"name": c.employee.name, "reasons": "；".join(c.reasons)})
        try:
            o = _book(user=user, order_id=order_id, employee_id=c.employee.pk, starts_at=plan.starts_at,
                      ends_at=plan.ends_at, move="dispatch", note=note[:TEXT_MAX], now=at)
        except (Conflict, ValidationFailed) as exc:  # booked or changed meanwhile: plan again
            logger.info("auto-dispatch of order %s: %s; planning again", order_id, exc)
            continue
        return AutoResult(o, True, note)
    reason = str(_("多次尝试后仍未能预约到技师，请人工派工。"))
    return AutoResult(_note_nobody(order_id, user=user, reason=reason, now=now or timezone.now()), False, reason)


def auto_dispatch(order_id: int, *, user=None, now: dt.datetime | None = None) -> WorkOrder | None:
    """Dispatch the order to the best eligible technician at the first free slot (within the
    customer's wished window, else in the next days); the order when dispatched, else None
    (a note on the order says why)."""
    r = auto_dispatch_run(order_id, user=user, now=now)
    return r.order if r.dispatched else None


# ---------------------------------------------------------------- settings

def _is_manager_at(user, node: Node) -> bool:
    p = principal(user)
    if p.is_superuser:
        return True
    return any(r in MANAGER_ROLES and node.path.startswith(path) for r, _n, path in p.roles)


def setting_set(*, user, node_id: int, auto_dispatch: bool | None = None, max_jobs_per_day: int | None = None,
                slot_minutes: int | None = None) -> DispatchSetting:
    """Set the dispatch setting of a node (applies to its subtree unless a node below has its
    own); a node without a row of its own starts from what applied there. Managers holding
    ``order.dispatch`` over the node."""
    errs = ErrorCollector()
    if max_jobs_per_day is not None and not (isinstance(max_jobs_per_day, int) and 1 <= max_jobs_per_day <= 50):
        errs.add("max_jobs_per_day", _("每日最多工单数须在 1 到 50 之间。"))
    if slot_minutes is not None and not (isinstance(slot_minutes, int) and 30 <= slot_minutes <= 480
                                         and slot_minutes % 15 == 0):
        errs.add("slot_minutes", _("预约时段须在 30 到 480 分钟之间，且为 15 的倍数。"))
    if auto_dispatch is not None and not isinstance(auto_dispatch, bool):
        errs.add("auto_dispatch", _("请输入 true 或 false。"))
    with transaction.atomic():
        node = Node.objects.select_for_update().filter(pk=node_id).first()
        if node is None or not holds_at(user, Perm.ORDER_DISPATCH, node.pk):
            raise NotFound()
        if not _is_manager_at(user, node):
            raise PermissionDenied(_("只有经理可以修改派工设置。"))
        errs.raise_if_any()
        s = DispatchSetting.objects.select_for_update().filter(node=node).first()
        before = None
        if s is None:
            eff = selectors.settings_for_nodes([node])[node.pk]  # start from what applied (inherited)
            s = DispatchSetting(node=node, auto_dispatch=eff.auto_dispatch, max_jobs_per_day=eff.max_jobs_per_day,
                                slot_minutes=eff.slot_minutes)
        else:
            before = snapshot(s)
        if auto_dispatch is not None:
            s.auto_dispatch = auto_dispatch
        if max_jobs_per_day is not None:
            s.max_jobs_per_day = max_jobs_per_day
        if slot_minutes is not None:
            s.slot_minutes = slot_minutes
        s.updated_by = user
        s.save()
        audit_record(actor=user, action="dispatch.setting", obj=s, before=before, after=snapshot(s), node_id=node.pk)
        return s


# ---------------------------------------------------------------- reminders

def appointment_reminders(now: dt.datetime | None = None, *, batch: int = 500) -> int:
    """Remind each customer whose appointment begins within 24 hours, once per booking; returns
    how many were reminded. Safe to run from several workers (locked rows are skipped)."""
    from aftersales.notifications.services import notify_customer

    now = now or timezone.now()
    sent = 0
    due = Booking.objects.filter(active=True, reminded_at__isnull=True, done_at__isnull=True, starts_at__gt=now,
                                 starts_at__lte=now + REMIND_AHEAD,
                                 order__status__in=[Status.DISPATCHED, Status.ACCEPTED])
    while True:
        with transaction.atomic():
            rows = list(due.select_for_update(skip_locked=True, of=("self",))
                        .select_related("order__customer", "employee").order_by("starts_at", "id")[:batch])
            for b in rows:
                before = snapshot(b, _BOOKING_FIELDS)
                o = b.order
                if o.customer.phone:
                    notify_customer(o.customer, event="appointment", ref=o.number, ref_id=o.pk,
                                    context={"number": o.number, "technician": b.employee.name,
                                             "window": selectors.fmt_window(b.starts_at, b.ends_at)})
                b.reminded_at = now
                b.save(update_fields=["reminded_at"])
                _booking_audit(None, "booking.remind", b, before, o.node_id)
            sent += len(rows)
        if len(rows) < batch:
            return sent
