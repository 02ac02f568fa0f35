"""Writes of the time standards and the working calendar (R-SLA-2), by headquarters only.

Each write is one transaction with its audit entry; the in-memory caches of ``tickets.sla``
are cleared when it commits. Deadlines already stored on orders stay as they were planned:
a change applies to orders received (or classified, or reopened) from then on.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import ErrorCollector, NotFound, PermissionDenied
from aftersales.org.roles import Perm
from aftersales.org.scope import principal
from aftersales.records.audit import audit_record, snapshot

from . import sla
from .models import CalendarDay, DayKind, SlaPolicy, WorkCalendar

MAX_MINUTES = 180 * 24 * 60  # half a year of clock time: far beyond any sensible standard
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2100, 12, 31)
DAY_NAME_MAX = 30


def _require_hq(user) -> None:
    """Time standards are set for the whole organisation: ``sla.manage`` held at headquarters."""
    p = principal(user)
    if not p.can(Perm.SLA_MANAGE) or p.node_ids_for(Perm.SLA_MANAGE) is not None:
        raise PermissionDenied(_("只有总部可以维护时限标准与工作日历。"))


def _after_commit() -> None:
    sla.clear_cache()
    transaction.on_commit(sla.clear_cache)


def _check_minutes(errs: ErrorCollector, field: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        errs.add(field, _("请输入整数。"))
    elif value <= 0:
        errs.add(field, _("时限须大于 0 分钟。"))
    elif value > MAX_MINUTES:
        errs.add(field, _("时限不能超过 %(n)s 分钟。") % {"n": MAX_MINUTES})


def policy_errors(*, response_minutes, resolve_minutes, at_risk_percent) -> dict[str, list]:
    """The field errors of a policy's figures (the API and the admin check the same rules)."""
    errs = ErrorCollector()
    _check_minutes(errs, "response_minutes", response_minutes)
    _check_minutes(errs, "resolve_minutes", resolve_minutes)
    if not errs and response_minutes > resolve_minutes:
        errs.add("resolve_minutes", _("解决时限不能短于首次响应时限。"))
    if not isinstance(at_risk_percent, int) or isinstance(at_risk_percent, bool) or not 1 <= at_risk_percent <= 99:
        errs.add("at_risk_percent", _("预警比例须在 1 到 99 之间。"))
    return errs.errors


def policy_update(*, user, policy_id: int, response_minutes: int, resolve_minutes: int, at_risk_percent: int,
                  calendar: str | None) -> SlaPolicy:
    """Set a policy's minutes, its warning share and its calendar (a code; ``None``: round the clock)."""
    _require_hq(user)
    errs = ErrorCollector()
    for field, msgs in policy_errors(response_minutes=response_minutes, resolve_minutes=resolve_minutes,
                                     at_risk_percent=at_risk_percent).items():
        for m in msgs:
            errs.add(field, m)
    cal = None
    if calendar not in (None, ""):
        cal = WorkCalendar.objects.filter(code=calendar.strip()).first()
        if cal is None:
            errs.add("calendar", _("没有这个工作日历。"))
    errs.raise_if_any()
    with transaction.atomic():
        p = SlaPolicy.objects.select_for_update().filter(pk=policy_id).first()
        if p is None:
            raise NotFound()
        before = snapshot(p)
        p.response_minutes, p.resolve_minutes = response_minutes, resolve_minutes
        p.at_risk_percent, p.calendar = at_risk_percent, cal
        p.save(update_fields=["response_minutes", "resolve_minutes", "at_risk_percent", "calendar"])
        audit_record(actor=user, action="sla.policy_update", obj=p, before=before, after=snapshot(p))
        _after_commit()
        return p


def _calendar_locked(code: str) -> WorkCalendar:
    cal = WorkCalendar.objects.select_for_update().filter(code=(code or "").strip()).first()
    if cal is None:
        raise NotFound(_("没有这个工作日历。"))
    return cal


def calendar_day_set(*, user, code: str, date: dt.date, kind: str, name: str = "") -> CalendarDay:
    """Mark ``date`` of calendar ``code`` a public holiday or a make-up working day (replacing
    what the date was marked before)."""
    _require_hq(user)
    errs = ErrorCollector()
    if not isinstance(date, dt.date) or isinstance(date, dt.datetime):
        errs.add("date", _("日期格式不正确，应为 YYYY-MM-DD。"))
    elif not FIRST_DAY <= date <= LAST_DAY:
        errs.add("date", _("日期须在 2000 年至 2100 年之间。"))
    if kind not in DayKind.values:
        errs.add("kind", _("类型须为 holiday（法定节假日）或 workday（调休上班）。"))
    name = (name or "").strip()
    if len(name) > DAY_NAME_MAX:
        errs.add("name", _("名称不能超过 %(n)s 个字符。") % {"n": DAY_NAME_MAX})
    errs.raise_if_any()
    with transaction.atomic():
        cal = _calendar_locked(code)  # one writer per calendar at a time
        day = CalendarDay.objects.filter(calendar=cal, date=date).first()
        before = snapshot(day) if day else None
        if day is None:
            day = CalendarDay(calendar=cal, date=date)
        day.kind, day.name = kind, name
        day.save()
        audit_record(actor=user, action="sla.calendar_day_set", obj=day, before=before, after=snapshot(day))
        _after_commit()
        return day


def calendar_day_delete(*, user, code: str, date: dt.date) -> None:
    """Make ``date`` an ordinary day again (a working day unless it is a weekend)."""
    _require_hq(user)
    with transaction.atomic():
        cal = _calendar_locked(code)
        day = CalendarDay.objects.filter(calendar=cal, date=date).first()
        if day is None:
            raise NotFound(_("该日期不是节假日或调休上班日。"))
        audit_record(actor=user, action="sla.calendar_day_delete", obj=day, before=snapshot(day), after=None)
        day.delete()
        _after_commit()

