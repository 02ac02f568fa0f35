"""Time standards (R-SLA): deadlines on a working calendar, paused while waiting.

An order gets two deadlines when it is created (and again when it is classified, since type
and priority choose the policy): ``response_due`` (first handling: answered, dispatched or
transferred) and ``resolve_due`` (completed or answered). Minutes are working minutes of the
policy's calendar: its hours on working days, where a day is a working day unless it is a
public holiday, and a weekend day only when it is a make-up working day (调休上班). While an
order waits for the customer or for parts the clock stops: on resuming, each deadline still
ahead when the pause began moves on by the working time the pause took. Reopening an order
gives it a fresh resolution window from the moment it is reopened.

``sla_risk_at`` is when the order turns "at risk": the moment when only the policy's
``at_risk_percent`` of the window of the next pending deadline is left (the response window
while the order waits for its first handling, then the resolution window). The sweep
(``sweep.py``) compares it and the deadlines with the time, in SQL.

Calendars and policies are cached in memory for five minutes; saving or deleting one clears
the cache of this process (the other processes see the change within five minutes).
"""

from __future__ import annotations

import datetime as dt
import time as _time
from dataclasses import dataclass

from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from .models import CalendarDay, DayKind, SlaPolicy, SlaState, Status, WorkCalendar, WorkOrder

PAUSING = frozenset({Status.WAITING_PARTS, Status.WAITING_CUSTOMER})
_MAX_DAYS = 3 * 366  # no deadline lies further than this
_CACHE_SECONDS = 300


# ---------------------------------------------------------------- the calendar

@dataclass(frozen=True)
class Calendar:
    """A working calendar loaded into memory; ``None`` hours mean round the clock."""

    start: dt.time | None
    end: dt.time | None
    weekends_off: bool
    holidays: frozenset
    workdays: frozenset

    def is_working_day(self, d: dt.date) -> bool:
        if d in self.holidays:
            return False
        if d in self.workdays:
            return True
        return not (self.weekends_off and d.weekday() >= 5)

    def window(self, d: dt.date, tz) -> tuple[dt.datetime, dt.datetime] | None:
        """The working hours of day ``d`` (``None`` on a day off)."""
        if not self.is_working_day(d):
            return None
        if self.start is None:
            a = dt.datetime.combine(d, dt.time(0), tz)
            return a, a + dt.timedelta(days=1)
        return dt.datetime.combine(d, self.start, tz), dt.datetime.combine(d, self.end, tz)

    def add(self, start: dt.datetime, minutes: float) -> dt.datetime:
        """The moment ``minutes`` working minutes after ``start`` (from a moment outside the
        working hours, the count starts when they next begin)."""
        tz = timezone.get_current_timezone()
        t = start.astimezone(tz)
        left = dt.timedelta(minutes=minutes)
        d = t.date()
        for _ in range(_MAX_DAYS):
            w = self.window(d, tz)
            if w is not None:
                a, b = max(w[0], t), w[1]
                if a < b:
                    if a + left <= b:
                        return a + left
                    left -= b - a
            d += dt.timedelta(days=1)
        raise ValueError("deadline beyond the calendar's reach")

    def sub(self, end: dt.datetime, minutes: float) -> dt.datetime:
        """The moment ``minutes`` working minutes before ``end``."""
        tz = timezone.get_current_timezone()
        t = end.astimezone(tz)
        left = dt.timedelta(minutes=minutes)
        d = t.date()
        for _ in range(_MAX_DAYS):
            w = self.window(d, tz)
            if w is not None:
                a, b = w[0], min(w[1], t)
                if a < b:
                    if b - left >= a:
                        return b - left
                    left -= b - a
            d -= dt.timedelta(days=1)
        raise ValueError("deadline beyond the calendar's reach")

    def between(self, a: dt.datetime, b: dt.datetime) -> float:
        """Working minutes from ``a`` to ``b`` (0 when ``b`` is not after ``a``)."""
        if b <= a:
            return 0.0
        tz = timezone.get_current_timezone()
        a, b = a.astimezone(tz), b.astimezone(tz)
        total = dt.timedelta()
        d = a.date()
        while d <= b.date():
            w = self.window(d, tz)
            if w is not None:
                lo, hi = max(w[0], a), min(w[1], b)
                if hi > lo:
                    total += hi - lo
            d += dt.timedelta(days=1)
        return total.total_seconds() / 60


ROUND_THE_CLOCK = Calendar(None, None, False, frozenset(), frozenset())

_cache: dict[int, tuple[float, Calendar]] = {}


def calendar(cal: WorkCalendar | int | None) -> Calendar:
    """The calendar in memory (cached for five minutes; saving one clears the cache)."""
    if cal is None:
        return ROUND_THE_CLOCK
    cal_id = cal if isinstance(cal, int) else cal.pk
    hit = _cache.get(cal_id)
    if hit and hit[0] > _time.monotonic():
        return hit[1]
    row = cal if isinstance(cal, WorkCalendar) else WorkCalendar.objects.get(pk=cal_id)
    days = list(CalendarDay.objects.filter(calendar_id=cal_id).values_list("date", "kind"))
    c = Calendar(row.day_start, row.day_end, row.weekends_off,
                 frozenset(d for d, k in days if k == DayKind.HOLIDAY),
                 frozenset(d for d, k in days if k == DayKind.WORKDAY))
    _cache[cal_id] = (_time.monotonic() + _CACHE_SECONDS, c)
    return c


def clear_cache(**_kw) -> None:
    """Forget the calendars and policies held in memory (a signal receiver, too)."""
    _cache.clear()
    _policies.clear()


for _model in (WorkCalendar, CalendarDay, SlaPolicy):
    post_save.connect(clear_cache, sender=_model, dispatch_uid=f"sla-cache-save-{_model.__name__}")
    post_delete.connect(clear_cache, sender=_model, dispatch_uid=f"sla-cache-delete-{_model.__name__}")


# ---------------------------------------------------------------- policies

_policies: dict[tuple[str, str], tuple[float, SlaPolicy | None]] = {}


def policy_for(order_type: str, priority: str) -> SlaPolicy | None:
    """The policy of (type, priority), else the type's catch-all (blank priority)."""
    key = (order_type, priority)
    hit = _policies.get(key)
    if hit and hit[0] > _time.monotonic():
        return hit[1]
    rows = {p.priority: p for p in SlaPolicy.objects.filter(type=order_type).select_related("calendar")}
    p = rows.get(priority) or rows.get("")
    _policies[key] = (_time.monotonic() + _CACHE_SECONDS, p)
    return p


def policy_calendar(p: SlaPolicy | None) -> Calendar:
    """The calendar a policy counts on (round the clock without one)."""
    if p is None or p.calendar_id is None:
        return ROUND_THE_CLOCK
    return calendar(p.calendar)


@dataclass(frozen=True)
class Deadlines:
    response_due: dt.datetime | None
    resolve_due: dt.datetime | None
    risk_at: dt.datetime | None


def _risk(cal: Calendar, p: SlaPolicy, due: dt.datetime, minutes: int) -> dt.datetime:
    """When only ``at_risk_percent`` of a window of ``minutes`` ending at ``due`` is left."""
    return cal.sub(due, minutes * p.at_risk_percent / 100)


def deadlines(order_type: str, priority: str, start: dt.datetime) -> Deadlines:
    """The deadlines of an order of this type and priority received at ``start``."""
    p = policy_for(order_type, priority)
    if p is None:
        return Deadlines(None, None, None)
    cal = policy_calendar(p)
    response, resolve = cal.add(start, p.response_minutes), cal.add(start, p.resolve_minutes)
    risk = min(_risk(cal, p, response, p.response_minutes), _risk(cal, p, resolve, p.resolve_minutes))
    return Deadlines(response, resolve, risk)


# ---------------------------------------------------------------- the clock of one order

def _resolved(o: WorkOrder) -> bool:
    return o.completed_at is not None or o.closed_at is not None


def risk_at(o: WorkOrder, p: SlaPolicy | None, cal: Calendar) -> dt.datetime | None:
    """When the order turns at risk: for the first of its deadlines still pending."""
    if p is None:
        return None
    out = []
    if o.responded_at is None and o.response_due is not None:
        out.append(_risk(cal, p, o.response_due, p.response_minutes))
    if not _resolved(o) and o.resolve_due is not None:
        out.append(_risk(cal, p, o.resolve_due, p.resolve_minutes))
    return min(out, default=None)


def state_at(o: WorkOrder, now: dt.datetime) -> str:
    """ok / at_risk / breached for an order at ``now`` (a paused clock does not advance)."""
    at = o.sla_paused_at or now
    if o.response_breached or o.resolve_breached:
        return SlaState.BREACHED
    if o.responded_at is None and o.response_due and at > o.response_due:
        return SlaState.BREACHED
    resolved = _resolved(o)
    if not resolved and o.resolve_due and at > o.resolve_due:
        return SlaState.BREACHED
    if o.sla_risk_at and at >= o.sla_risk_at and (o.responded_at is None or not resolved):
        return SlaState.AT_RISK
    return SlaState.OK


def on_create(o: WorkOrder, now: dt.datetime) -> None:
    d = deadlines(o.type, o.priority, o.created_at or now)
    o.response_due, o.resolve_due, o.sla_risk_at = d.response_due, d.resolve_due, d.risk_at
    o.sla_state = state_at(o, now)


def on_move(o: WorkOrder, move: str, from_status: str, to_status: str, now: dt.datetime) -> None:
    """Keep the order's clock as it moves (called by ``workflow.move`` before saving, after the
    move's effects: ``responded_at``, ``completed_at``, ``closed_at`` are already set)."""
    p = policy_for(o.type, o.priority)
    cal = policy_calendar(p)
    if move == "classify":  # type and priority choose the policy: plan again from receipt
        d = deadlines(o.type, o.priority, o.created_at)
        o.response_due, o.resolve_due = d.response_due, d.resolve_due
    elif move == "reopen":  # handled again: a fresh resolution window from now, breachable again
        if p is not None:
            o.resolve_due = cal.add(now, p.resolve_minutes)
        o.resolve_breached = False
    if to_status in PAUSING and from_status not in PAUSING:
        o.sla_paused_at = now
    elif to_status not in PAUSING and o.sla_paused_at is not None:
        _resume(o, cal, now)
    o.sla_risk_at = risk_at(o, p, cal)
    if o.sla_state != SlaState.BREACHED or move == "reopen":
        o.sla_state = state_at(o, now)


def _resume(o: WorkOrder, cal: Calendar, now: dt.datetime) -> None:
    """The clock runs again: each deadline still ahead when the pause began moves on by the
    working time the pause took."""
    paused_from = o.sla_paused_at
    pause = cal.between(paused_from, now)
    for f in ("response_due", "resolve_due"):
        due = getattr(o, f)
        if due is not None and due > paused_from:
            setattr(o, f, cal.add(paused_from, cal.between(paused_from, due) + pause))
    o.sla_paused_at = None
