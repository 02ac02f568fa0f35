"""Time standards and the working calendar over the API (R-SLA). No ``from __future__ import
annotations`` here (see ``aftersales.api.permissions``).

Reading needs ``order.view`` (every role that may change the standards, ``sla.manage``, holds
it too); changing them needs ``sla.manage`` at headquarters. ``/preview`` gives the deadlines
an order received now would get (the intake page shows them); ``/summary`` counts at-risk,
breached and escalated orders in the caller's scope.
"""

import datetime as dt
from typing import Annotated

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Path, Query, Router, Schema, Status

from aftersales.api.permissions import requires
from aftersales.api.schemas import In, PathId, Text
from aftersales.core.errors import NotFound
from aftersales.org.roles import Perm

from . import selectors, sla, sla_services
from .models import DayKind, OrderType, Priority, SlaPolicy, WorkCalendar
from .sweep import sla_summary

router = Router(tags=["sla"])

CalendarCode = Annotated[str, Path(..., max_length=20, pattern=r"^[^\x00]+$", description="日历编码，如 CN")]
Year = Annotated[int | None, Query(None, ge=2000, le=2100, description="年份，默认今年")]


# ---------------------------------------------------------------- schemas

class PolicyOut(Schema):
    id: int
    type: str
    type_label: str
    priority: str
    priority_label: str
    response_minutes: int
    resolve_minutes: int
    at_risk_percent: int
    calendar: str | None

    @staticmethod
    def resolve_type_label(obj):
        return str(obj.get_type_display())

    @staticmethod
    def resolve_priority_label(obj):
        return str(obj.get_priority_display()) if obj.priority else str(_("任意"))

    @staticmethod
    def resolve_calendar(obj):
        return obj.calendar.code if obj.calendar_id else None


class PolicyIn(In):
    response_minutes: int
    resolve_minutes: int
    at_risk_percent: int
    calendar: Text(20) | None  # required: a code, or null for round the clock


class DayOut(Schema):
    date: dt.date
    kind: str
    kind_label: str
    name: str

    @staticmethod
    def resolve_kind_label(obj):
        return str(obj.get_kind_display())


class CalendarDaysOut(Schema):
    code: str
    name: str
    day_start: dt.time
    day_end: dt.time
    weekends_off: bool
    year: int
    days: list[DayOut]


class DayIn(In):
    date: dt.date
    kind: DayKind
    name: Text(30) = ""


class PreviewOut(Schema):
    type: str
    priority: str
    received_at: dt.datetime
    response_due: dt.datetime | None
    resolve_due: dt.datetime | None
    risk_at: dt.datetime | None
    policy: PolicyOut | None


class SummaryOut(Schema):
    total: int
    open: int
    at_risk: int
    open_breached: int
    breached: int
    response_breached: int
    resolve_breached: int
    escalated: int
    by_level: dict[int, int]


# ---------------------------------------------------------------- policies

@router.get("/policies", response=list[PolicyOut])
@requires(Perm.ORDER_VIEW)
def policy_list(request):
    """Every time standard (order type × priority; a blank priority applies to any), at most one
    per type and priority, so the list is short and not paginated."""
    return list(SlaPolicy.objects.select_related("calendar").order_by("type", "priority"))


@router.put("/policies/{policy_id}", response=PolicyOut)
@requires(Perm.SLA_MANAGE, at_hq=True)
def policy_update(request, policy_id: PathId, payload: PolicyIn):
    """Change a time standard: minutes (> 0, response ≤ resolution), the warning share (1–99 % of
    the window left), the calendar (a code; null: round the clock). Orders already received keep
    their deadlines."""
    p = sla_services.policy_update(user=request.auth, policy_id=policy_id, **payload.model_dump())
    return SlaPolicy.objects.select_related("calendar").get(pk=p.pk)


# ---------------------------------------------------------------- calendars

def _calendar(code: str) -> WorkCalendar:
    cal = WorkCalendar.objects.filter(code=code.strip()).first()
    if cal is None:
        raise NotFound(_("没有这个工作日历。"))
    return cal


@router.get("/calendars/{code}/days", response=CalendarDaysOut)
@requires(Perm.ORDER_VIEW)
def calendar_days(request, code: CalendarCode, year: Year = None):
    """A calendar's hours and its public holidays and make-up working days of ``year``."""
    cal = _calendar(code)
    year = year or timezone.localdate().year
    days = list(cal.days.filter(date__year=year).order_by("date"))
    return {"code": cal.code, "name": cal.name, "day_start": cal.day_start, "day_end": cal.day_end,
            "weekends_off": cal.weekends_off, "year": year, "days": days}


@router.post("/calendars/{code}/days", response={201: DayOut})
@requires(Perm.SLA_MANAGE, at_hq=True)
def calendar_day_set(request, code: CalendarCode, payload: DayIn):
    """Mark a date a public holiday (``holiday``) or a make-up working day (``workday``),
    replacing what it was marked before."""
    day = sla_services.calendar_day_set(user=request.auth, code=code, date=payload.date, kind=payload.kind.value,
                                        name=payload.name)
    return Status(201, day)


@router.delete("/calendars/{code}/days/{date}", response={204: None})
@requires(Perm.SLA_MANAGE, at_hq=True)
def calendar_day_delete(request, code: CalendarCode, date: dt.date):
    """Make a date an ordinary day again."""
    sla_services.calendar_day_delete(user=request.auth, code=code, date=date)
    return Status(204, None)


# ---------------------------------------------------------------- what an order would get

@router.get("/preview", response=PreviewOut)
@requires(Perm.ORDER_VIEW)
def preview(request, type: OrderType, priority: Priority = Priority.NORMAL):
    """The deadlines an order of this type and priority received now would get (every role that
    takes orders, ``order.create``, also holds ``order.view``)."""
    now = timezone.now()
    d = sla.deadlines(type.value, priority.value, now)
    p = sla.policy_for(type.value, priority.value)
    return {"type": type.value, "priority": priority.value, "received_at": now, "response_due": d.response_due,
            "resolve_due": d.resolve_due, "risk_at": d.risk_at, "policy": p}


@router.get("/summary", response=SummaryOut)
@requires(Perm.ORDER_VIEW)
def summary(request, since: dt.date | None = None):
    """At-risk, breached and escalated orders in your scope (received on or after ``since``)."""
    qs = selectors.order_queryset(request.auth)
    if since is not None:
        start = dt.datetime.combine(since, dt.time(0), timezone.get_current_timezone())
        qs = qs.filter(created_at__gte=start)
    return sla_summary(qs)
