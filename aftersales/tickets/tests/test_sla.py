"""SLA deadlines (R-SLA-1, R-SLA-2): working hours, nights, weekends, public holidays, make-up
working days, pauses, classification, reopening, the at-risk moment — on the default calendar
"CN" (08:00–20:00, weekends off, 2026–2027 holidays) seeded by migration 0002.

Times are explicit Asia/Shanghai datetimes passed as ``now=``; nothing freezes the clock.
"""

import datetime as dt
import importlib
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps as django_apps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aftersales.customers.models import Unit
from aftersales.tickets import holidays, sla, workflow
from aftersales.tickets.models import CalendarDay, SlaPolicy, SlaState, Status, WorkCalendar, WorkOrder
from aftersales.tickets.services import order_create

TZ = ZoneInfo("Asia/Shanghai")
MIN = dt.timedelta(minutes=1)


def at(y, m, d, h=0, mi=0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=TZ)


def seed_defaults() -> None:
    """The defaults of migration 0002 (again: a transactional test empties the tables)."""
    importlib.import_module("aftersales.tickets.migrations.0002_sla_defaults").seed(django_apps)
    sla.clear_cache()


@pytest.fixture(autouse=True)
def sla_defaults(db):
    seed_defaults()
    yield
    sla.clear_cache()  # nothing cached from this test's rows leaks into the next test


# ---------------------------------------------------------------- helpers shared with test_sweep

def new_order(world, when, type="consultation", priority="normal", user=None, customer=None, **kw):
    return order_create(user=user or world.pudong_agent, customer_id=(customer or world.c_pudong).pk, type=type,
                        channel="phone", problem="空调不制冷，请尽快上门", priority=priority, now=when, **kw)


def fixed_unit(world) -> Unit:
    """A unit bought on a fixed date (the fixture's is relative to today), so that orders dated
    in 2026 find it already bought whenever the tests run."""
    return Unit.objects.create(customer=world.c_pudong, model=world.ac_model, serial="AC2024009999",
                               purchase_date=dt.date(2025, 6, 1), invoice_no="INV-9", address=world.a_pudong)


def repair_on_site(world, created, *, step=dt.timedelta(minutes=10)):
    """A repair order taken at ``created`` and moved to diagnosing: classified, dispatched (its
    first handling), accepted, on the way, on site. Returns the order and the time of the last move."""
    o = new_order(world, created, type="repair", unit_id=fixed_unit(world).pk)
    t = created
    agent, disp, tech = world.pudong_agent, world.pudong_dispatcher, world.pudong_tech

    def mv(name, user, **data):
        nonlocal t, o
        t += step
        o = workflow.move(o.pk, name, user=user, now=t, **data)

    mv("classify", agent, type="repair", priority="normal")
    mv("dispatch", disp, assignee=world.tech_employee, appointment_from=t + dt.timedelta(hours=1),
       appointment_to=t + dt.timedelta(hours=3))
    for name in ("accept", "depart", "arrive", "diagnose"):
        mv(name, tech)
    return o, t


# ---------------------------------------------------------------- the seeded defaults

def test_defaults_are_seeded():
    cal = WorkCalendar.objects.get(code="CN")
    assert (cal.name, cal.day_start, cal.day_end, cal.weekends_off) == ("标准服务日历", dt.time(8), dt.time(20), True)
    rows = {(p.type, p.priority): (p.response_minutes, p.resolve_minutes, p.calendar_id)
            for p in SlaPolicy.objects.all()}
    assert rows[("consultation", "")] == (120, 240, cal.pk)
    assert rows[("complaint", "")] == (60, 240, cal.pk)
    for t in ("installation", "repair", "maintenance", "return_exchange", "delivery", "recycling"):
        assert rows[(t, "")] == (1440, 2880, cal.pk)
    assert rows[("repair", "urgent")] == rows[("installation", "urgent")] == (240, 1440, cal.pk)
    assert len(rows) == 10
    days = CalendarDay.objects.filter(calendar=cal, date__year=2026)
    assert days.filter(kind="holiday").count() == 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert sorted(days.filter(kind="workday").values_list("date", flat=True)) == [
        dt.date(2026, 1, 4), dt.date(2026, 2, 14), dt.date(2026, 2, 28), dt.date(2026, 5, 9),
        dt.date(2026, 9, 20), dt.date(2026, 10, 10)]
    seed_defaults()  # idempotent
    assert SlaPolicy.objects.count() == 10 and CalendarDay.objects.filter(calendar=cal).count() == len(holidays.days())


def test_2027_rows_say_they_are_estimates():
    assert all("（预估）" in name for _d, _k, name in holidays.days(2027))
    assert not any("预估" in name for _d, _k, name in holidays.days(2026))
    assert all(not a.official for a in holidays.SCHEDULE[2027])
    assert max(len(name) for _d, _k, name in holidays.days()) <= 30  # CalendarDay.name


def test_migration_reverses_and_reapplies():
    mig = importlib.import_module("aftersales.tickets.migrations.0002_sla_defaults")
    mig.unseed(django_apps)
    assert not SlaPolicy.objects.exists() and not WorkCalendar.objects.filter(code="CN").exists()
    mig.seed(django_apps)
    assert SlaPolicy.objects.count() == 10


# ---------------------------------------------------------------- calendar arithmetic

def cn() -> sla.Calendar:
    return sla.calendar(WorkCalendar.objects.get(code="CN"))


@pytest.mark.parametrize("start, minutes, due", [
    (at(2026, 3, 10, 10), 120, at(2026, 3, 10, 12)),  # Tuesday, within the day
    (at(2026, 3, 10, 19, 30), 120, at(2026, 3, 11, 9, 30)),  # across the night
    (at(2026, 3, 10, 22), 60, at(2026, 3, 11, 9)),  # received at night: counts from 08:00
    (at(2026, 3, 10, 6), 60, at(2026, 3, 10, 9)),  # received early morning
    (at(2026, 3, 13, 19, 30), 120, at(2026, 3, 16, 9, 30)),  # Friday evening → Monday
    (at(2026, 3, 14, 11), 60, at(2026, 3, 16, 9)),  # received on Saturday
    (at(2026, 9, 30, 19), 120, at(2026, 10, 8, 9)),  # 国庆 Oct 1–7 skipped
    (at(2026, 9, 24, 19), 120, at(2026, 9, 28, 9)),  # 中秋 Sep 25–27 skipped
    (at(2026, 9, 19, 10), 120, at(2026, 9, 20, 10)),  # Sunday Sep 20 is a make-up working day
    (at(2026, 10, 9, 19), 120, at(2026, 10, 10, 9)),  # so is Saturday Oct 10
    (at(2026, 2, 13, 19), 1440, at(2026, 2, 24, 19)),  # Fri 60' + Sat Feb 14 (worked) 720' + 春节 → Tue
    (at(2026, 4, 30, 19), 120, at(2026, 5, 6, 9)),  # 劳动节 May 1–5
    (at(2026, 12, 31, 19), 120, at(2027, 1, 4, 9)),  # 元旦 2027 (estimated) and the weekend
    (at(2026, 3, 10, 8), 720, at(2026, 3, 10, 20)),  # exactly one working day
])
def test_add(start, minutes, due):
    c = cn()
    assert c.add(start, minutes) == due
    assert c.between(start, due) == minutes
    assert c.sub(due, minutes) == c.add(start, 0)  # back to the first working moment from the start


def test_working_days():
    c = cn()
    assert not c.is_working_day(dt.date(2026, 10, 1))  # 国庆
    assert not c.is_working_day(dt.date(2026, 3, 14))  # a Saturday
    assert c.is_working_day(dt.date(2026, 2, 14))  # a Saturday worked for 春节
    assert c.is_working_day(dt.date(2026, 1, 4))  # a Sunday worked for 元旦
    assert c.is_working_day(dt.date(2026, 3, 10))  # an ordinary Tuesday
    assert c.window(dt.date(2026, 10, 3), TZ) is None


def test_round_the_clock_without_a_calendar():
    c = sla.ROUND_THE_CLOCK
    assert c.add(at(2026, 10, 1, 23), 120) == at(2026, 10, 2, 1)
    assert c.between(at(2026, 10, 1, 23), at(2026, 10, 2, 1)) == 120


moments = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 1)).map(
    lambda d: d.replace(tzinfo=TZ, microsecond=0))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=moments, minutes=st.integers(min_value=0, max_value=6000))
def test_add_sub_between_agree(start, minutes):
    """``between`` measures what ``add`` and ``sub`` step over, on any day of the calendar."""
    c = cn()
    due = c.add(start, minutes)
    assert due >= start
    assert c.between(start, due) == pytest.approx(minutes)
    back = c.sub(due, minutes)
    assert c.between(back, due) == pytest.approx(minutes)
    assert c.between(start, back) == 0  # nothing working lies between the start and the way back


# ---------------------------------------------------------------- deadlines of orders

def test_order_at_1930_is_due_next_working_morning(world):
    o = new_order(world, at(2026, 3, 10, 19, 30))  # consultation: 120' / 240'
    assert o.response_due == at(2026, 3, 11, 9, 30)
    assert o.resolve_due == at(2026, 3, 11, 11, 30)
    # at risk when 20 % of the response window (24') is left
    assert o.sla_risk_at == at(2026, 3, 11, 9, 6)
    assert o.sla_state == SlaState.OK


def test_order_before_the_national_day_holiday_lands_after_it(world):
    o = new_order(world, at(2026, 9, 30, 19), type="complaint")  # 60' / 240'
    assert o.response_due == at(2026, 9, 30, 20)
    assert o.resolve_due == at(2026, 10, 8, 11)


def test_default_and_urgent_repair_standards(world):
    unit = fixed_unit(world)
    o = new_order(world, at(2026, 3, 10, 9), type="repair", unit_id=unit.pk)  # 1440' / 2880'
    assert o.response_due == at(2026, 3, 12, 9)  # two working days: Tue 11 h + Wed 12 h + Thu 1 h
    assert o.resolve_due == at(2026, 3, 16, 9)  # four: Tue–Fri, then Monday 09:00
    urgent = new_order(world, at(2026, 3, 10, 9), type="repair", priority="urgent", unit_id=unit.pk)
    assert urgent.response_due == at(2026, 3, 10, 13)  # 240'
    assert urgent.resolve_due == at(2026, 3, 12, 9)  # 1440'


def test_classify_plans_again_from_receipt(world):
    unit = fixed_unit(world)
    o = new_order(world, at(2026, 3, 10, 9), type="repair", unit_id=unit.pk)
    o = workflow.move(o.pk, "classify", user=world.pudong_agent, now=at(2026, 3, 10, 9, 5), type="repair",
                      priority="urgent")
    assert (o.response_due, o.resolve_due) == (at(2026, 3, 10, 13), at(2026, 3, 12, 9))
    assert o.sla_risk_at == at(2026, 3, 10, 12, 12)  # 48' (20 % of 240') before the response deadline


def test_first_handling_moves_the_warning_to_the_resolution_deadline(world):
    o, t = repair_on_site(world, at(2026, 3, 10, 9))
    assert o.responded_at is not None
    # 20 % of 2880' = 576' before Mon 03-16 09:00, counted back over the weekend: Fri 11:24
    assert o.sla_risk_at == cn().sub(at(2026, 3, 16, 9), 576) == at(2026, 3, 13, 11, 24)
    assert o.sla_state == SlaState.OK


def test_waiting_for_parts_over_a_night_and_a_weekend_stops_the_clock(world):
    o, t = repair_on_site(world, at(2026, 3, 10, 9))
    due_before = o.resolve_due
    assert due_before == at(2026, 3, 16, 9)
    paused = at(2026, 3, 13, 18)  # Friday evening
    o = workflow.move(o.pk, "wait_parts", user=world.pudong_tech, now=paused, reason="压缩机缺货")
    assert o.sla_paused_at == paused and o.status == Status.WAITING_PARTS
    # while paused the clock stands still: at Monday 09:30 the old deadline has passed, the order
    # is still only at risk (since Friday 11:24), not breached
    assert sla.state_at(o, at(2026, 3, 16, 9, 30)) == SlaState.AT_RISK
    resumed = at(2026, 3, 16, 10)  # Monday 10:00: 2 h on Friday + 2 h on Monday were paused
    o = workflow.move(o.pk, "resume", user=world.pudong_tech, now=resumed)
    assert o.sla_paused_at is None
    assert cn().between(paused, resumed) == 240
    assert o.resolve_due == due_before + dt.timedelta(minutes=240) == at(2026, 3, 16, 13)
    assert cn().between(due_before, o.resolve_due) == 240


def test_pause_then_cancel_releases_the_clock(world):
    o, t = repair_on_site(world, at(2026, 3, 10, 9))
    o = workflow.move(o.pk, "wait_customer", user=world.pudong_tech, now=at(2026, 3, 11, 10), reason="客户不在家")
    o = workflow.move(o.pk, "cancel", user=world.pudong_agent, now=at(2026, 3, 11, 12), reason="客户取消")
    assert o.sla_paused_at is None and o.status == Status.CANCELLED


def test_reopen_rearms_the_resolution_deadline(world):
    o = new_order(world, at(2026, 3, 10, 10))
    o = workflow.move(o.pk, "answer", user=world.pudong_agent, now=at(2026, 3, 10, 10, 30), result="已电话解答")
    assert o.status == Status.CLOSED and o.sla_risk_at is None
    o.__class__.objects.filter(pk=o.pk).update(resolve_breached=True)  # as if it had been late
    o = workflow.move(o.pk, "reopen", user=world.pudong_agent, now=at(2026, 3, 12, 19), reason="客户仍有疑问")
    assert o.status == Status.REOPENED
    assert o.resolve_due == at(2026, 3, 13, 11)  # 60' Thursday + 180' Friday
    assert o.resolve_breached is False and o.sla_state == SlaState.OK
    assert o.sla_risk_at == at(2026, 3, 13, 10, 12)  # 48' before


def test_state_at():
    o = WorkOrder(response_due=at(2026, 3, 10, 12), resolve_due=at(2026, 3, 10, 14),
                      sla_risk_at=at(2026, 3, 10, 11, 36))
    assert sla.state_at(o, at(2026, 3, 10, 11)) == SlaState.OK
    assert sla.state_at(o, at(2026, 3, 10, 11, 36)) == SlaState.AT_RISK
    assert sla.state_at(o, at(2026, 3, 10, 12) + MIN) == SlaState.BREACHED
    o.responded_at = at(2026, 3, 10, 11)
    assert sla.state_at(o, at(2026, 3, 10, 12) + MIN) == SlaState.AT_RISK
    o.sla_paused_at = at(2026, 3, 10, 11)
    assert sla.state_at(o, at(2026, 3, 11, 12)) == SlaState.OK  # the paused clock stood at 11:00


def test_a_policy_change_is_seen_after_saving(world):
    p = SlaPolicy.objects.get(type="consultation", priority="")
    assert sla.deadlines("consultation", "normal", at(2026, 3, 10, 10)).response_due == at(2026, 3, 10, 12)
    p.response_minutes = 30
    p.save()  # the cache is cleared by the save
    assert sla.deadlines("consultation", "normal", at(2026, 3, 10, 10)).response_due == at(2026, 3, 10, 10, 30)


def test_no_policy_no_deadlines(world):
    SlaPolicy.objects.filter(type="delivery").delete()
    d = sla.deadlines("delivery", "normal", at(2026, 3, 10, 10))
    assert d == sla.Deadlines(None, None, None)
