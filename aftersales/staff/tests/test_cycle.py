"""Cycles: opening (bad input), closing (sheets per main role, automatic values from every source,
a missing value spreading its weight), who may do it, and a fixed number of queries.

The helpers here (people, schemes, a March cycle) are shared by test_steps and test_results."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aftersales.conftest import make_user
from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from aftersales.org.models import Employee
from aftersales.org.roles import Role
from aftersales.quality.models import Aggregate
from aftersales.staff import services_appraisal as svc
from aftersales.staff.models import (
    Attendance,
    Course,
    CycleStatus,
    Enrolment,
    SafetyEvent,
    Session,
    Sheet,
    SheetScore,
    Step,
)
from aftersales.tickets.models import OrderType, Status, WorkOrder

MARCH = dt.date(2025, 3, 1)
APRIL_2 = timezone.make_aware(dt.datetime(2025, 4, 2, 9, 0))
TZ = timezone.get_default_timezone()

TECH_ITEMS = [
    {"code": "ftf", "label": "一次修复率", "group": "quality", "kind": "auto", "source": "ftf_rate",
     "rule": "linear", "params": {"floor": 50, "target": 90}, "weight": 20},
    {"code": "response", "label": "平均响应时长", "group": "efficiency", "kind": "auto", "source": "response_mean",
     "rule": "linear", "params": {"floor": 120, "target": 30}, "weight": 20},
    {"code": "safety", "label": "安全事件", "group": "safety", "kind": "auto", "source": "safety_incidents",
     "rule": "points", "params": {"base": 100, "per_event": -50}, "weight": 10},
    {"code": "training", "label": "培训学时", "group": "capability", "kind": "auto", "source": "training_hours",
     "rule": "bands", "params": [{"from": None, "to": 4, "score": 0}, {"from": 4, "to": 8, "score": 60},
                                 {"from": 8, "to": None, "score": 100}], "weight": 10},
    {"code": "complaints", "label": "被投诉", "group": "cost", "kind": "auto", "source": "complaints",
     "rule": "points", "params": {"base": 100, "per_event": -25}, "weight": 10},
    {"code": "attitude", "label": "工作态度", "group": "quality", "kind": "manual", "step": "supervisor",
     "rule": "linear", "params": {"floor": 0, "target": 100}, "weight": 20},
    {"code": "self_view", "label": "自我评价", "group": "capability", "kind": "manual", "step": "self",
     "rule": "linear", "params": {"floor": 0, "target": 100}, "weight": 10},
]
AGENT_ITEMS = [
    {"code": "satisfaction", "label": "满意度", "group": "quality", "kind": "auto", "source": "sat_overall",
     "rule": "linear", "params": {"floor": 3, "target": 5}, "weight": 100},
]
BANDS = [{"grade": "A", "min": 90}, {"grade": "B", "min": 75}, {"grade": "C", "min": 60}, {"grade": "D", "min": 0}]


def person(username, role, node, no, **kw) -> Employee:
    u = make_user(username, role, node)
    return Employee.objects.create(user=u, node=node, employee_no=no, name=username, hire_date=dt.date(2020, 1, 1),
                                   **kw)


def scheme(world, role=Role.TECHNICIAN, items=None, valid_from=dt.date(2025, 1, 1)):
    return svc.scheme_version_create(user=world.hq_manager, role=role, valid_from=valid_from,
                                     items=items or TECH_ITEMS)


def open_cycle(world, start=MARCH, node=None, **kw):
    args = {"kind": "monthly", "period_start": start, "node_id": (node or world.hq).pk, "grading_mode": "bands",
            "grading": BANDS, "bonus_mode": "none", "bonus": {}, "deadlines": {}}
    args.update(kw)
    return svc.cycle_open(user=world.hq_manager, **args)


def agg(emp, period=MARCH, **measures):
    return Aggregate.objects.create(grain="month", period=period, node_id=emp.node_id, dim="assignee",
                                    key=str(emp.pk), **measures)


def close(world, cycle, now=APRIL_2):
    return svc.cycle_close(user=world.hq_manager, cycle_id=cycle.pk, now=now)


def scores_of(sheet) -> dict:
    return {s.item.code: (s.value, s.score) for s in SheetScore.objects.filter(sheet=sheet).select_related("item")}


# ---------------------------------------------------------------- opening

def test_cycle_open_stores_the_period_and_rules(world):
    c = open_cycle(world, deadlines={"self": "2025-04-05", "supervisor": "2025-04-10"})
    assert (c.period_start, c.period_end, c.status) == (MARCH, dt.date(2025, 3, 31), CycleStatus.OPEN)
    assert c.deadlines == {"self": "2025-04-05", "supervisor": "2025-04-10"}
    q = open_cycle(world, kind="quarterly", start=dt.date(2025, 4, 1))
    assert q.period_end == dt.date(2025, 6, 30)


def test_cycle_open_rejects_bad_input_naming_every_field(world):
    with pytest.raises(ValidationFailed) as e:
        open_cycle(world, start=dt.date(2025, 3, 2), grading_mode="forced",
                   grading=[{"grade": "A", "percent": 20}, {"grade": "B", "percent": 70}],
                   bonus_mode="multiplier", bonus={"base": 1000, "multipliers": {"Z": 1}},
                   deadlines={"self": "2025-03-20", "lunch": "2025-04-01"})
    errs = e.value.errors
    assert set(errs) >= {"period_start", "grading", "bonus.multipliers.Z", "deadlines.lunch"}
    with pytest.raises(ValidationFailed) as e:
        open_cycle(world, deadlines={"self": "2025-03-20"})
    assert set(e.value.errors) == {"deadlines.self"}  # before the period's end
    with pytest.raises(ValidationFailed) as e:
        open_cycle(world, deadlines={"self": "2025-04-10", "supervisor": "2025-04-05"})
    assert set(e.value.errors) == {"deadlines.supervisor"}  # before the step before it
    open_cycle(world)
    with pytest.raises(ValidationFailed) as e:
        open_cycle(world)
    assert set(e.value.errors) == {"period_start"}  # the same cycle twice


def test_cycle_open_permissions(world):
    with pytest.raises(PermissionDenied):  # sees the node, may not manage cycles
        svc.cycle_open(user=world.pudong_manager, kind="monthly", period_start=MARCH, node_id=world.pudong.pk,
                       grading_mode="bands", grading=BANDS)
    with pytest.raises(NotFound):  # no appraisal rights at all
        svc.cycle_open(user=world.pudong_tech, kind="monthly", period_start=MARCH, node_id=world.pudong.pk,
                       grading_mode="bands", grading=BANDS)
    with pytest.raises(NotFound):  # another centre
        svc.cycle_open(user=world.east_manager, kind="monthly", period_start=MARCH, node_id=world.tianhe.pk,
                       grading_mode="bands", grading=BANDS)
    c = svc.cycle_open(user=world.east_manager, kind="monthly", period_start=MARCH, node_id=world.east.pk,
                       grading_mode="bands", grading=BANDS)
    assert c.node_id == world.east.pk


# ---------------------------------------------------------------- closing

@pytest.fixture
def team(world):
    """Pudong: the world's technician (T0001), a second technician who is also the outlet's
    manager by role, an agent; hangzhou: a technician; tianhe: an inactive technician, and a
    trainer (no scheme for trainers)."""
    w = world
    w.tech = w.tech_employee
    w.tech2 = person("pd_tech2", Role.TECHNICIAN, w.pudong, "T0002")
    from aftersales.org.models import RoleAssignment

    RoleAssignment.objects.create(user=w.tech2.user, role=Role.OUTLET_MANAGER, node=w.pudong)
    w.agent = Employee.objects.create(user=w.pudong_agent, node=w.pudong, employee_no="A0001", name="王客服",
                                      hire_date=dt.date(2021, 1, 1))
    w.hz_tech = person("hz_tech", Role.TECHNICIAN, w.hangzhou, "T0003")
    w.gone = person("th_gone", Role.TECHNICIAN, w.tianhe, "T0004", active=False)
    w.trainer_emp = Employee.objects.create(user=w.trainer, node=w.hq, employee_no="X0001", name="培训师",
                                            hire_date=dt.date(2021, 1, 1))
    scheme(w)
    scheme(w, Role.AGENT, AGENT_ITEMS)
    return w


def test_close_makes_one_sheet_per_employee_with_a_scheme_for_their_main_role(team):
    w = team
    c = open_cycle(w)
    c = close(w, c)
    assert (c.status, c.closed_at) == (CycleStatus.REVIEWING, APRIL_2)
    sheets = {s.employee_id: s for s in Sheet.objects.filter(cycle=c)}
    assert set(sheets) == {w.tech.pk, w.tech2.pk, w.agent.pk, w.hz_tech.pk}  # not the inactive one, not the trainer
    assert sheets[w.tech2.pk].role == Role.TECHNICIAN  # technician comes before outlet manager
    assert sheets[w.agent.pk].role == Role.AGENT
    assert {s.step for s in sheets.values()} == {Step.SELF}
    assert sheets[w.hz_tech.pk].node_id == w.hangzhou.pk


def test_close_fills_the_automatic_items_from_every_source(team):
    w = team
    # March: 10 visits, 6 fixed first time (60 %); 10 responses in 600 min (60 min mean)
    agg(w.tech, orders=10, visited=10, ftf=6, responded=10, response_min=600)
    agg(w.tech, period=dt.date(2025, 2, 1), orders=50, visited=50, ftf=50)  # February: not this cycle
    SafetyEvent.objects.create(employee=w.tech, occurred_on=dt.date(2025, 3, 31), severity="minor", description="x")
    SafetyEvent.objects.create(employee=w.tech, occurred_on=dt.date(2025, 4, 1), severity="minor", description="y")
    course = Course.objects.create(code="C1", title="空调维修", subject="fault", hours=Decimal("3"))
    s1 = Session.objects.create(course=course, node=w.pudong, starts_at=dt.datetime(2025, 3, 3, 9, tzinfo=TZ),
                                ends_at=dt.datetime(2025, 3, 3, 12, tzinfo=TZ), place="培训室")
    s2 = Session.objects.create(course=course, node=w.pudong, starts_at=dt.datetime(2025, 3, 31, 23, 30, tzinfo=TZ),
                                ends_at=dt.datetime(2025, 4, 1, 2, tzinfo=TZ), online=True)
    s3 = Session.objects.create(course=course, node=w.pudong, starts_at=dt.datetime(2025, 4, 1, 0, 30, tzinfo=TZ),
                                ends_at=dt.datetime(2025, 4, 1, 2, tzinfo=TZ), online=True)
    Enrolment.objects.create(session=s1, employee=w.tech, status=Attendance.ATTENDED, hours=3, score=80)
    Enrolment.objects.create(session=s2, employee=w.tech, status=Attendance.ATTENDED, hours=2)
    Enrolment.objects.create(session=s3, employee=w.tech, status=Attendance.ATTENDED, hours=5)  # April
    Enrolment.objects.create(session=s1, employee=w.tech2, status=Attendance.ABSENT, hours=0)
    # complaints: two about the technician's orders in March (one cancelled), one in April
    parent = WorkOrder.objects.create(number="GD1", type=OrderType.REPAIR, channel="phone", customer=w.c_pudong,
                                      problem="x", node=w.pudong, assignee=w.tech,
                                      created_at=dt.datetime(2025, 2, 20, tzinfo=TZ),
                                      updated_at=dt.datetime(2025, 2, 20, tzinfo=TZ))
    for n, (day, status) in enumerate([((3, 5), Status.RECEIVED), ((3, 6), Status.CANCELLED),
                                       ((4, 1), Status.RECEIVED)]):
        at = dt.datetime(2025, *day, 10, tzinfo=TZ)
        WorkOrder.objects.create(number=f"GDC{n}", type=OrderType.COMPLAINT, channel="phone", customer=w.c_pudong,
                                 problem="投诉", node=w.pudong, parent=parent, status=status, created_at=at,
                                 updated_at=at)
    c = close(w, open_cycle(w))
    sheet = Sheet.objects.get(cycle=c, employee=w.tech)
    got = scores_of(sheet)
    assert got["ftf"] == (Decimal("60.0000"), Decimal("25.00"))          # (60-50)/(90-50)
    assert got["response"] == (Decimal("60.0000"), Decimal("66.67"))     # (60-120)/(30-120)
    assert got["safety"] == (Decimal("1.0000"), Decimal("50.00"))        # 100 - 50 × 1
    assert got["training"] == (Decimal("5.0000"), Decimal("60.00"))      # 3 + 2 h: band 4–8
    assert got["complaints"] == (Decimal("1.0000"), Decimal("75.00"))    # 100 - 25 × 1
    assert got["attitude"] == (None, None) and got["self_view"] == (None, None)
    # (25×20 + 66.67×20 + 50×10 + 60×10 + 75×10) / 70
    assert sheet.auto_total == Decimal("52.62") == sheet.total
    assert SheetScore.objects.get(sheet=sheet, item__code="attitude").step == Step.SUPERVISOR


def test_a_missing_value_spreads_its_weight(team):
    w = team
    c = close(w, open_cycle(w))
    other = Sheet.objects.get(cycle=c, employee=w.tech2)  # no orders: ftf and response undefined
    got = scores_of(other)
    assert got["ftf"] == (None, None) and got["response"] == (None, None)
    assert got["safety"][1] == Decimal("100.00") and got["complaints"][1] == Decimal("100.00")
    assert got["training"] == (Decimal("0.0000"), Decimal("0.00"))  # absent: no hours
    assert other.auto_total == Decimal("66.67")  # (100×10 + 0×10 + 100×10) / 30
    agent = Sheet.objects.get(cycle=c, employee=w.agent)
    assert agent.auto_total is None  # no surveys: nothing scored


def test_exam_score_is_the_mean_of_the_exams_in_the_period(team):
    w = team
    svc.scheme_version_create(user=w.hq_manager, role=Role.AGENT, valid_from=dt.date(2025, 2, 1), items=[
        {"code": "exam", "label": "考试", "group": "capability", "kind": "auto", "source": "exam_score",
         "rule": "linear", "params": {"floor": 60, "target": 100}, "weight": 100}])
    course = Course.objects.create(code="C2", title="沟通技巧", subject="communication", hours=Decimal("2"),
                                   pass_mark=60)
    for day, score in ((3, 70), (10, 90), (20, None)):
        s = Session.objects.create(course=course, node=w.pudong, starts_at=dt.datetime(2025, 3, day, 9, tzinfo=TZ),
                                   ends_at=dt.datetime(2025, 3, day, 11, tzinfo=TZ), place="教室")
        Enrolment.objects.create(session=s, employee=w.agent, status=Attendance.ATTENDED, hours=2, score=score)
    c = close(w, open_cycle(w))
    assert scores_of(Sheet.objects.get(cycle=c, employee=w.agent))["exam"] == (Decimal("80.0000"), Decimal("50.00"))


def test_close_refuses_before_the_period_ends_and_twice(team):
    w = team
    c = open_cycle(w)
    with pytest.raises(Conflict):
        svc.cycle_close(user=w.hq_manager, cycle_id=c.pk, now=timezone.make_aware(dt.datetime(2025, 3, 31, 23)))
    close(w, c)
    with pytest.raises(Conflict):
        close(w, c)


def test_close_permissions(team):
    w = team
    c = open_cycle(w)
    with pytest.raises(PermissionDenied):  # sees the cycle (part of its subtree), may not manage it
        svc.cycle_close(user=w.east_manager, cycle_id=c.pk, now=APRIL_2)
    with pytest.raises(NotFound):
        svc.cycle_close(user=w.pudong_agent, cycle_id=c.pk, now=APRIL_2)
    with pytest.raises(NotFound):
        svc.cycle_close(user=w.hq_manager, cycle_id=10**9, now=APRIL_2)
    east = svc.cycle_open(user=w.east_manager, kind="monthly", period_start=MARCH, node_id=w.east.pk,
                          grading_mode="bands", grading=BANDS)
    svc.cycle_close(user=w.east_manager, cycle_id=east.pk, now=APRIL_2)
    assert set(Sheet.objects.filter(cycle=east).values_list("employee_id", flat=True)) == {
        w.tech.pk, w.tech2.pk, w.agent.pk, w.hz_tech.pk}


def _close_queries(world, n_extra: int, start: dt.date) -> int:
    for i in range(n_extra):
        e = person(f"q{start.month}_{i}", Role.TECHNICIAN, world.hangzhou, f"Q{start.month}{i:03d}")
        agg(e, period=start, orders=5, visited=5, ftf=4, responded=5, response_min=200)
    c = open_cycle(world, start=start)
    with CaptureQueriesContext(connection) as q:
        close(world, c, now=APRIL_2 + dt.timedelta(days=120))
    return len(q.captured_queries)


def test_close_takes_a_fixed_number_of_queries(team):
    # (rows are inserted in chunks: SQLite takes ~199 scores per statement, PostgreSQL 4,000)
    few = _close_queries(team, 2, dt.date(2025, 5, 1))
    many = _close_queries(team, 20, dt.date(2025, 6, 1))
    assert few == many
