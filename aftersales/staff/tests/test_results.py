"""The lock of a cycle: totals, grades (bands and forced distribution), ranks within node × role,
last place and the management-review flag, bonus (pool, multiplier), awards, the warning and
improvement plan of the lowest grade; publication, plans, the board and its chart.

Totals are set by hand through one automatic item: the number of orders in the month, scored
linearly 0 → 100, so a person with 85 orders totals 85."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from aftersales.conftest import make_user
from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from aftersales.org.roles import Role
from aftersales.staff import selectors_appraisal as reads
from aftersales.staff import services_appraisal as svc
from aftersales.staff.models import Award, CycleStatus, ImprovementPlan, PlanFollowUp, Sheet

from .test_cycle import BANDS, agg, open_cycle, person

VOLUME = [{"code": "volume", "label": "工单量", "group": "efficiency", "kind": "auto", "source": "orders",
           "rule": "linear", "params": {"floor": 0, "target": 100}, "weight": 100}]
FORCED = [{"grade": "A", "percent": 20}, {"grade": "B", "percent": 70}, {"grade": "C", "percent": 10}]


@pytest.fixture
def board(world):
    """Ten technicians at pudong (95, 90 … 50 orders), three at hangzhou (80, 70, 60), one at
    tianhe (88)."""
    w = world
    svc.scheme_version_create(user=w.hq_manager, role=Role.TECHNICIAN, valid_from=dt.date(2024, 1, 1), items=VOLUME)
    w.pd = [w.tech_employee] + [person(f"pd{i}", Role.TECHNICIAN, w.pudong, f"P{i:03d}") for i in range(1, 10)]
    w.hz = [person(f"hz{i}", Role.TECHNICIAN, w.hangzhou, f"H{i:03d}") for i in range(3)]
    w.th = person("th0", Role.TECHNICIAN, w.tianhe, "G000")
    w.hz_manager = make_user("hz_manager", Role.OUTLET_MANAGER, w.hangzhou)
    w.totals = {**{e: 95 - 5 * i for i, e in enumerate(w.pd)}, **dict(zip(w.hz, (80, 70, 60), strict=True)),
                w.th: 88}
    return w


def run(w, start=dt.date(2025, 3, 1), totals=None, lock=True, **kw):
    """Orders per person in the month, then open, close (and lock) the cycle at HQ."""
    for e, n in (totals or w.totals).items():
        agg(e, period=start, orders=n)
    c = open_cycle(w, start=start, **kw)
    svc.cycle_close(user=w.hq_manager, cycle_id=c.pk, now=timezone.make_aware(dt.datetime(2025, 12, 31)))
    if lock:
        svc.cycle_lock(user=w.hq_manager, cycle_id=c.pk)
    c.refresh_from_db()
    return c


def results(c, people):
    s = {x.employee_id: x for x in Sheet.objects.filter(cycle=c)}
    return [s[e.pk] for e in people]


def test_forced_distribution_per_node_and_role(board):
    w = board
    c = run(w, grading_mode="forced", grading=FORCED)
    assert c.status == CycleStatus.LOCKED and c.locked_at is not None
    pd = results(c, w.pd)
    assert [s.total for s in pd] == [Decimal(95 - 5 * i) for i in range(10)]
    assert [s.grade for s in pd] == ["A", "A", "B", "B", "B", "B", "B", "B", "B", "C"]  # 10 people: 2 / 7 / 1
    assert [s.rank for s in pd] == list(range(1, 11)) and {s.rank_of for s in pd} == {10}
    assert [s.grade for s in results(c, w.hz)] == ["A", "B", "B"]  # 3 people: 20 % → 1, 90 % → 3
    assert results(c, [w.th])[0].grade == "B"  # alone: 90 % of 1 rounds to 1
    assert [s.rank for s in results(c, w.hz)] == [1, 2, 3]


def test_forced_distribution_ties_keep_the_better_grade(board):
    w = board
    totals = dict(w.totals)
    totals[w.pd[2]] = 90  # ties with the second
    totals[w.pd[9]] = 55  # ties with the ninth, at the bottom
    c = run(w, totals=totals, grading_mode="forced", grading=FORCED)
    pd = results(c, w.pd)
    assert [s.rank for s in pd] == [1, 2, 2, 4, 5, 6, 7, 8, 9, 9]
    assert [s.grade for s in pd] == ["A", "A", "A", "B", "B", "B", "B", "B", "B", "B"]
    assert not any(s.last_place for s in pd)  # nobody holds rank 10
    assert not any(s.warning for s in pd)


def test_bands_grading_with_its_edges(board):
    w = board
    c = run(w, grading_mode="bands", grading=BANDS)
    assert [s.grade for s in results(c, w.pd)] == ["A", "A", "B", "B", "B", "C", "C", "C", "D", "D"]
    assert [s.warning for s in results(c, w.pd)] == [False] * 8 + [True] * 2


def test_rank_within_node_and_role(board):
    w = board
    agent = w.pudong_agent
    from aftersales.org.models import Employee

    a1 = Employee.objects.create(user=agent, node=w.pudong, employee_no="A1", name="客服一", hire_date=dt.date(2021, 1, 1))
    a2 = person("pd_agent2", Role.AGENT, w.pudong, "A2")
    svc.scheme_version_create(user=w.hq_manager, role=Role.AGENT, valid_from=dt.date(2024, 6, 1), items=VOLUME)
    c = run(w, totals={**w.totals, a1: 40, a2: 99})
    s1, s2 = results(c, [a1, a2])
    assert (s2.rank, s1.rank, s1.rank_of) == (1, 2, 2)  # agents among agents
    assert results(c, w.pd)[0].rank == 1 and results(c, w.pd)[0].rank_of == 10
    assert not s1.last_place  # fewer than three in the group


def test_last_place_and_the_lowest_grade_get_a_warning_and_a_plan(board):
    w = board
    c = run(w, grading_mode="forced", grading=FORCED)
    last = results(c, w.pd)[9]
    assert (last.last_place, last.warning, last.review_flag) == (True, True, False)
    assert results(c, w.hz)[2].last_place and not results(c, w.hz)[2].warning  # last, but graded B
    plans = list(ImprovementPlan.objects.filter(sheet__cycle=c))
    assert [p.sheet_id for p in plans] == [last.pk]
    plan = plans[0]
    assert plan.coach == w.pudong_manager and plan.status == "open"
    assert plan.due_on == timezone.localdate() + dt.timedelta(days=svc.PLAN_DAYS)
    assert plan.goals == [{"text": "将“工单量”的得分从 50 提高到 60 分以上", "measure": "工单量",
                           "due": plan.due_on.isoformat()}]


def _last_in(w, start, last_person):
    others = [e for e in w.hz if e != last_person]
    totals = {others[0]: 80, others[1]: 70, last_person: 50}
    return run(w, start=start, totals=totals)


def test_review_flag_after_two_cycles_in_a_row_not_after_one(board):
    w = board
    x, y = w.hz[0], w.hz[1]
    jan = _last_in(w, dt.date(2025, 1, 1), x)
    assert [s.last_place for s in results(jan, [x])] == [True]
    assert not results(jan, [x])[0].review_flag  # once: no flag
    feb = _last_in(w, dt.date(2025, 2, 1), x)
    assert results(feb, [x])[0].review_flag  # twice in a row
    mar = _last_in(w, dt.date(2025, 3, 1), y)
    assert not results(mar, [y])[0].review_flag and not results(mar, [x])[0].review_flag
    apr = _last_in(w, dt.date(2025, 5, 1), y)  # May: April had no cycle, so not in a row
    assert results(apr, [y])[0].last_place and not results(apr, [y])[0].review_flag


def test_review_flag_after_three_when_the_cycle_says_three(board):
    w = board
    x = w.hz[2]
    for m in (1, 2):
        _last_in(w, dt.date(2025, m, 1), x)
    totals = {w.hz[0]: 80, w.hz[1]: 70, x: 50}
    for e, n in totals.items():
        agg(e, period=dt.date(2025, 3, 1), orders=n)
    c = open_cycle(w, start=dt.date(2025, 3, 1), last_place_cycles=3)
    svc.cycle_close(user=w.hq_manager, cycle_id=c.pk, now=timezone.make_aware(dt.datetime(2025, 12, 31)))
    svc.cycle_lock(user=w.hq_manager, cycle_id=c.pk)
    assert results(c, [x])[0].review_flag
    with pytest.raises(ValidationFailed) as e:
        open_cycle(w, start=dt.date(2025, 4, 1), last_place_cycles=0)
    assert set(e.value.errors) == {"last_place_cycles"}


def test_bonus_shares_a_pool_by_score(board):
    w = board
    c = run(w, bonus_mode="pool", bonus={"pool": 1000})
    top = results(c, w.pd)[0]
    # Σ totals = 725 (pudong) + 210 (hangzhou) + 88 (tianhe) = 1023; 1000 × 95 / 1023
    assert top.bonus == Decimal("92.86")
    assert results(c, [w.th])[0].bonus == Decimal("86.02")  # 1000 × 88 / 1023


def test_bonus_by_grade_multiplier(board):
    w = board
    c = run(w, grading_mode="forced", grading=FORCED, bonus_mode="multiplier",
            bonus={"base": 1000, "multipliers": {"A": 1.5, "B": 1, "C": 0.5}})
    assert [s.bonus for s in results(c, w.pd)] == [Decimal("1500.00")] * 2 + [Decimal("1000.00")] * 7 + [
        Decimal("500.00")]


def test_awards_star_per_centre_and_best_team(board):
    w = board
    c = run(w)
    awards = {(a.kind, a.node_id): (a.employee_id, a.score) for a in Award.objects.filter(cycle=c)}
    assert awards == {
        ("star", w.east.pk): (w.pd[0].pk, Decimal("95.00")),
        ("star", w.south.pk): (w.th.pk, Decimal("88.00")),
        ("best_team", w.pudong.pk): (None, Decimal("72.50")),  # pudong 72.5 > hangzhou 70; tianhe has one
    }


def test_lock_and_publish_permissions_and_states(board):
    w = board
    c = run(w, lock=False)
    with pytest.raises(PermissionDenied):
        svc.cycle_lock(user=w.pudong_manager, cycle_id=c.pk)
    with pytest.raises(PermissionDenied):  # sees it (has a sheet in it)
        svc.cycle_lock(user=w.pudong_tech, cycle_id=c.pk)
    with pytest.raises(NotFound):
        svc.cycle_lock(user=w.pudong_agent, cycle_id=c.pk)
    with pytest.raises(Conflict):
        svc.cycle_publish(user=w.hq_manager, cycle_id=c.pk)  # not locked yet
    svc.cycle_lock(user=w.hq_manager, cycle_id=c.pk)
    with pytest.raises(Conflict):
        svc.cycle_lock(user=w.hq_manager, cycle_id=c.pk)
    c = svc.cycle_publish(user=w.hq_manager, cycle_id=c.pk)
    assert c.status == CycleStatus.PUBLISHED and c.published_at is not None
    with pytest.raises(Conflict):
        svc.cycle_publish(user=w.hq_manager, cycle_id=c.pk)


def test_the_board_before_and_after_publication(board):
    w = board
    c = run(w)
    own = Sheet.objects.get(cycle=c, employee=w.tech_employee)
    assert list(reads.sheets_for_board(w.pudong_tech, c)) == [own]
    assert not reads.results_visible(w.pudong_tech, own)
    assert reads.results_visible(w.pudong_manager, own)
    assert reads.sheets_for_board(w.pudong_manager, c).count() == 10
    assert reads.sheets_for_board(w.hq_manager, c).count() == 14
    assert reads.sheets_for_board(w.hq_manager, c, w.hangzhou).count() == 3
    assert [s.rank for s in reads.sheets_for_board(w.pudong_manager, c)] == list(range(1, 11))
    svc.cycle_publish(user=w.hq_manager, cycle_id=c.pk)
    c.refresh_from_db()
    assert reads.sheets_for_board(w.pudong_tech, c).count() == 10  # the team
    assert reads.results_visible(w.pudong_tech, Sheet.objects.get(pk=own.pk))
    with pytest.raises(NotFound):
        reads.sheets_for_board(w.pudong_agent, c)  # no sheet, no review rights
    assert list(reads.cycles_visible(w.pudong_tech)) == [c]
    assert list(reads.cycles_visible(w.hz_manager)) == [c]
    assert list(reads.cycles_visible(w.pudong_agent)) == []
    assert [s.cycle_id for s in reads.my_sheets(w.pudong_tech)] == [c.pk]


def test_ranking_chart(board):
    w = board
    c = run(w)
    chart = reads.ranking_chart(w.east_manager, c, w.east)
    assert chart["categories"][:4] == [w.pd[0].name, w.pd[1].name, w.pd[2].name, w.hz[0].name]
    assert chart["series"][0]["data"][:4] == [95.0, 90.0, 85.0, 80.0]
    assert len(chart["categories"]) == 13
    with pytest.raises(NotFound):
        reads.ranking_chart(w.east_manager, c, w.tianhe)


def test_plan_update(board):
    w = board
    c = run(w, grading_mode="forced", grading=FORCED)
    plan = ImprovementPlan.objects.get(sheet__cycle=c)
    worker = plan.sheet.employee.user
    with pytest.raises(PermissionDenied):
        svc.plan_update(user=worker, plan_id=plan.pk, status="done")
    with pytest.raises(NotFound):
        svc.plan_update(user=w.hz_manager, plan_id=plan.pk, status="done")
    with pytest.raises(ValidationFailed) as e:
        svc.plan_update(user=w.pudong_manager, plan_id=plan.pk, goals=[{"text": ""}, "x"], status="later",
                        follow_up="")
    assert set(e.value.errors) == {"goals[0].text", "goals[1]", "status", "follow_up"}
    p = svc.plan_update(user=w.pudong_manager, plan_id=plan.pk,
                        goals=[{"text": "每月工单量不少于 70", "measure": "工单量", "due": "2025-06-30"}],
                        follow_up="第一次面谈，已确定目标")
    assert p.goals == [{"text": "每月工单量不少于 70", "measure": "工单量", "due": "2025-06-30"}]
    p = svc.plan_update(user=w.pudong_manager, plan_id=plan.pk, status="done", follow_up="四月达到 72 单")
    assert p.status == "done"
    assert list(PlanFollowUp.objects.filter(plan=plan).values_list("text", flat=True)) == [
        "第一次面谈，已确定目标", "四月达到 72 单"]


def _lock_queries(w, start, extra: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    totals = dict(w.totals)
    for i in range(extra):
        totals[person(f"lk{start.month}_{i}", Role.TECHNICIAN, w.hangzhou, f"L{start.month}{i:03d}")] = 40 + i
    c = run(w, start=start, totals=totals, lock=False, grading_mode="forced", grading=FORCED,
            bonus_mode="pool", bonus={"pool": 1000})
    with CaptureQueriesContext(connection) as q:
        svc.cycle_lock(user=w.hq_manager, cycle_id=c.pk)
    return len(q.captured_queries)


def test_lock_takes_a_fixed_number_of_queries(board):
    assert _lock_queries(board, dt.date(2025, 3, 1), 1) == _lock_queries(board, dt.date(2025, 5, 1), 20)
