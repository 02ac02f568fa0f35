"""The dispatch API: candidates, dispatch and reassignment, the technician's answer, auto-dispatch,
a technician's day, the per-node settings. No ``from __future__ import annotations`` here (see
aftersales.api.permissions)."""

import datetime as dt

from django.utils import timezone
from ninja import Field, Query, Router, Schema

from aftersales.api.permissions import requires
from aftersales.api.schemas import Id, In, NodeRef, PathId, Text
from aftersales.org.roles import Perm

from . import selectors, services

router = Router(tags=["dispatch"])


# ---------------------------------------------------------------- output

class EmployeeRef(Schema):
    id: int
    employee_no: str
    name: str


class CandidateOut(Schema):
    employee: EmployeeRef
    node: NodeRef
    score: float
    eligible: bool
    blockers: list[str] = Field(description="不能派给此人的原因")
    reasons: list[str] = Field(description="排序依据")
    warnings: list[str] = Field(description="提醒（不影响派工）：持有校准/检验已过期的仪器")
    load_today: int = Field(description="当日（所选时段之日，未选则今日）已有工单数")
    distance_km: float | None = Field(description="技师所属网点到服务地址的直线距离；缺少坐标时为空")


class OrderOut(Schema):
    id: int
    number: str
    status: str
    status_label: str
    node_id: int
    assignee: EmployeeRef | None
    appointment_from: dt.datetime | None
    appointment_to: dt.datetime | None
    reassign_count: int
    decline_count: int
    event_count: int
    warnings: list[str] = Field([], description="派工提醒：技师持有校准/检验已过期的仪器（已记入工单历史并通知技师）")

    @staticmethod
    def resolve_status_label(obj):
        return str(obj.get_status_display())

    @staticmethod
    def resolve_warnings(obj):
        return getattr(obj, "dispatch_warnings", [])


class AutoOut(Schema):
    dispatched: bool
    message: str
    order: OrderOut


class OrderBrief(Schema):
    id: int
    number: str
    status: str
    district: str

    @staticmethod
    def resolve_district(obj):
        return obj.address.district if obj.address_id else ""


class BookingOut(Schema):
    id: int
    order: OrderBrief
    starts_at: dt.datetime
    ends_at: dt.datetime
    done_at: dt.datetime | None


class SlotOut(Schema):
    starts_at: dt.datetime
    ends_at: dt.datetime


class ScheduleOut(Schema):
    employee: EmployeeRef
    node: NodeRef
    day: dt.date
    bookings: list[BookingOut]
    free_slots: list[SlotOut]


class SettingOut(Schema):
    node: NodeRef
    auto_dispatch: bool
    max_jobs_per_day: int
    slot_minutes: int
    inherited_from: NodeRef | None = Field(description="设置继承自的上级节点；为空表示本节点自有设置或系统默认")
    is_default: bool = Field(description="未设置，使用系统默认值")


# ---------------------------------------------------------------- input

class DispatchIn(In):
    employee_id: Id
    starts_at: dt.datetime
    ends_at: dt.datetime
    note: Text(2000) = ""


class ReassignIn(In):
    employee_id: Id
    starts_at: dt.datetime
    ends_at: dt.datetime
    reason: Text(2000)


class DeclineIn(In):
    reason: Text(2000)


class SettingIn(In):
    auto_dispatch: bool | None = None
    max_jobs_per_day: int | None = Field(None, ge=1, le=50)
    slot_minutes: int | None = Field(None, ge=30, le=480)


def _setting_out(node, eff):
    inherited = None
    if eff.source_node_id is not None and eff.source_node_id != node.pk:
        from aftersales.org.models import Node

        inherited = Node.objects.filter(pk=eff.source_node_id).first()
    return {"node": node, "auto_dispatch": eff.auto_dispatch, "max_jobs_per_day": eff.max_jobs_per_day,
            "slot_minutes": eff.slot_minutes, "inherited_from": inherited, "is_default": eff.source_node_id is None}


# ---------------------------------------------------------------- operations

@router.get("/orders/{order_id}/candidates", response=list[CandidateOut])
@requires(Perm.ORDER_DISPATCH)
def order_candidates(request, order_id: PathId, starts_at: dt.datetime | None = None,
                     ends_at: dt.datetime | None = None, limit: int = Query(10, ge=1, le=50)):
    """The technicians for the order, best first; with a slot (``starts_at``, ``ends_at``) those
    booked in it are blocked. ``blockers`` say why one cannot take it, ``reasons`` why one ranks."""
    return selectors.candidates(request.auth, order_id, starts_at=starts_at, ends_at=ends_at, limit=limit)


@router.post("/orders/{order_id}/dispatch", response=OrderOut)
@requires(Perm.ORDER_DISPATCH)
def order_dispatch(request, order_id: PathId, payload: DispatchIn):
    """Book the technician and dispatch the order (an order already dispatched is reassigned, with
    ``note`` as the reason). 409 when the technician is booked at an overlapping time."""
    return services.dispatch_order(user=request.auth, order_id=order_id, **payload.model_dump())


@router.post("/orders/{order_id}/reassign", response=OrderOut)
@requires(Perm.ORDER_DISPATCH)
def order_reassign(request, order_id: PathId, payload: ReassignIn):
    """Give the order to another technician; the previous booking is released."""
    return services.reassign_order(user=request.auth, order_id=order_id, **payload.model_dump())


@router.post("/orders/{order_id}/accept", response=OrderOut)
@requires(Perm.ORDER_WORK)
def order_accept(request, order_id: PathId):
    """The technician accepts the job."""
    return services.accept_order(user=request.auth, order_id=order_id)


@router.post("/orders/{order_id}/decline", response=OrderOut)
@requires(Perm.ORDER_WORK)
def order_decline(request, order_id: PathId, payload: DeclineIn):
    """The technician declines with a reason; the booking is released."""
    return services.decline_order(user=request.auth, order_id=order_id, reason=payload.reason)


@router.post("/orders/{order_id}/auto", response=AutoOut)
@requires(Perm.ORDER_DISPATCH)
def order_auto(request, order_id: PathId):
    """Let the system choose: the best eligible technician at the first free slot (in the
    customer's wished window, else in the next days). ``dispatched`` false: nobody fits
    (``message`` says why; a note is added to the order)."""
    r = services.auto_dispatch_run(order_id, user=request.auth)
    return {"dispatched": r.dispatched, "message": r.reason, "order": r.order}


@router.get("/technicians/{employee_id}/schedule", response=ScheduleOut)
@requires(Perm.ORDER_DISPATCH)
def technician_schedule(request, employee_id: PathId, day: dt.date | None = None):
    """A technician's bookings of ``day`` (today) and the free slots left."""
    day = day or timezone.localdate()
    e = selectors.technician_get(request.auth, employee_id)
    bookings = selectors.technician_schedule(request.auth, employee_id, day)
    slots = selectors.free_slots(e, day)
    return {"employee": e, "node": e.node, "day": day, "bookings": bookings,
            "free_slots": [{"starts_at": a, "ends_at": b} for a, b in slots]}


@router.get("/settings/{node_id}", response=SettingOut)
@requires(Perm.ORDER_DISPATCH)
def setting_get(request, node_id: PathId):
    """The dispatch setting that applies at the node (its own, inherited, or the defaults)."""
    node, eff = selectors.setting_get(request.auth, node_id)
    return _setting_out(node, eff)


@router.put("/settings/{node_id}", response=SettingOut)
@requires(Perm.ORDER_DISPATCH)
def setting_put(request, node_id: PathId, payload: SettingIn):
    """Set the node's dispatch setting (managers): fields left out keep what applied."""
    s = services.setting_set(user=request.auth, node_id=node_id, **payload.model_dump())
    return _setting_out(s.node, selectors.Effective(s.auto_dispatch, s.max_jobs_per_day, s.slot_minutes, s.node_id))
