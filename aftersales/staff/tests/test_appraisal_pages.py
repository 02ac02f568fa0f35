"""The appraisal pages (``/team/appraisal/…``): my appraisal with the self-assessment, the team's
board with its rankings chart and filters, the review form of each step and the calibration, the
cycle's buttons, the scheme editor, the Excel export; permissions, bad input, query counts.

The data (``appraisal``): a technicians' scheme (three automatic items, a self-rated and a
supervisor-rated item), a March 2025 cycle over headquarters closed on 2 April: a sheet for each
technician (李师傅 and four more at Pudong, one at Hangzhou)."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from aftersales.conftest import make_user
from aftersales.org.models import Employee
from aftersales.org.roles import Role
from aftersales.quality.models import Aggregate
from aftersales.staff import services_appraisal as svc
from aftersales.staff.models import Cycle, CycleStatus, Review, SchemeVersion, Sheet, SheetScore, Step
from aftersales.web.tests import test_browser as wb

pytestmark = pytest.mark.django_db

chromium = wb.chromium  # the browser test's fixtures
shots = wb.shots

MARCH = dt.date(2025, 3, 1)
APRIL_2 = timezone.make_aware(dt.datetime(2025, 4, 2, 9, 0))

ITEMS = [
    {"code": "ftf", "label": "一次修复率", "group": "quality", "kind": "auto", "source": "ftf_rate",
     "rule": "linear", "params": {"floor": 50, "target": 90}, "weight": 30},
    {"code": "safety", "label": "安全事件", "group": "safety", "kind": "auto", "source": "safety_incidents",
     "rule": "points", "params": {"base": 100, "per_event": -50}, "weight": 10},
    {"code": "training", "label": "培训学时", "group": "capability", "kind": "auto", "source": "training_hours",
     "rule": "bands", "params": [{"from": None, "to": 4, "score": 0}, {"from": 4, "to": None, "score": 100}],
     "weight": 20},
    {"code": "attitude", "label": "工作态度", "group": "efficiency", "kind": "manual", "step": "supervisor",
     "rule": "linear", "params": {"floor": 0, "target": 100}, "weight": 20},
    {"code": "self_view", "label": "自我评价", "group": "cost", "kind": "manual", "step": "self",
     "rule": "linear", "params": {"floor": 0, "target": 100}, "weight": 20},
]
BANDS = [{"grade": "A", "min": 90}, {"grade": "B", "min": 75}, {"grade": "C", "min": 60}, {"grade": "D", "min": 0}]


def technician(username, node, no) -> Employee:
    u = make_user(username, Role.TECHNICIAN, node)
    return Employee.objects.create(user=u, node=node, employee_no=no, name=f"技师{no}", hire_date=dt.date(2020, 1, 1))


def add_technicians(w, n: int, node=None, start: int = 100) -> list[Employee]:
    return [technician(f"tech{start + i}", node or w.pudong, f"T{start + i}") for i in range(n)]


def ftf(emp, visited, fixed):
    Aggregate.objects.create(grain="month", period=MARCH, node_id=emp.node_id, dim="assignee", key=str(emp.pk),
                             orders=visited, visited=visited, ftf=fixed)


def make_cycle(w, **kw) -> Cycle:
    args = {"kind": "monthly", "period_start": MARCH, "node_id": w.hq.pk, "grading_mode": "bands", "grading": BANDS,
            "bonus_mode": "multiplier", "bonus": {"base": 1000, "multipliers": {"A": 1.5, "B": 1.2, "C": 1, "D": 0}},
            "deadlines": {"self": "2025-04-05", "supervisor": "2025-04-10"}}
    args.update(kw)
    return svc.cycle_open(user=w.hq_manager, **args)


def setup_appraisal(w, extra: int = 4):
    w.hz_manager = make_user("hz_manager", Role.OUTLET_MANAGER, w.hangzhou)
    svc.scheme_version_create(user=w.hq_manager, role=Role.TECHNICIAN, valid_from=dt.date(2025, 1, 1), items=ITEMS)
    w.tech = w.tech_employee
    w.team = add_technicians(w, extra)
    w.hz_tech = technician("hz_tech", w.hangzhou, "T900")
    ftf(w.tech, 10, 8)  # 80 % → (80 − 50) / 40 = 75
    for i, e in enumerate(w.team):
        ftf(e, 10, 9 - i % 4)
    w.cycle = make_cycle(w)
    svc.cycle_close(user=w.hq_manager, cycle_id=w.cycle.pk, now=APRIL_2)
    w.cycle.refresh_from_db()
    w.sheet = Sheet.objects.get(cycle=w.cycle, employee=w.tech)
    w.hz_sheet = Sheet.objects.get(cycle=w.cycle, employee=w.hz_tech)
    return w


@pytest.fixture
def appraisal(world):
    return setup_appraisal(world)


def login(client, user):
    client.force_login(user)
    return client


def submit(user, sheet, step, scores, comment=""):
    return svc.review_submit(user=user, sheet_id=sheet.pk, step=step, scores=scores, comment=comment)


def through_all_steps(w, sheet, own=80, attitude=90):
    submit(sheet.employee.user, sheet, "self", {"self_view": own})
    submit(w.hz_manager if sheet.node_id == w.hangzhou.pk else w.pudong_manager, sheet, "supervisor",
           {"attitude": attitude}, "认真负责")
    submit(w.east_manager, sheet, "department", {}, "同意")
    submit(w.hq_manager, sheet, "company", {}, "同意")


def lock_and_publish(w):
    svc.cycle_lock(user=w.hq_manager, cycle_id=w.cycle.pk)
    svc.cycle_publish(user=w.hq_manager, cycle_id=w.cycle.pk)


def html(resp) -> str:
    return resp.content.decode()


# ================================================================ my appraisal

def test_my_appraisal_shows_the_sheet_and_the_self_form(client, appraisal):
    w = appraisal
    r = login(client, w.pudong_tech).get(reverse("staff:appraisal_me"))
    assert r.status_code == 200
    body = html(r)
    assert 'data-testid="review-form" data-step="self"' in body
    assert "自我评价" in body and 'name="score-self_view"' in body
    assert 'name="score-attitude"' not in body  # the supervisor's item is not for the person
    # automatic values and scores: first-time fix 80 % → 75 points; no safety event → 100
    row = re.search(r'<tr data-code="ftf">.*?</tr>', body, re.S).group(0)
    assert "80.0%" in row and "75.00" in row
    assert re.search(r'<tr data-code="safety">.*?100\.00', body, re.S)
    assert 'data-group-score="quality">75.00' in body
    assert 'data-testid="results"' not in body  # nothing published yet


def test_self_assessment_from_my_page(client, appraisal):
    w = appraisal
    c = login(client, w.pudong_tech)
    url = reverse("staff:appraisal_me")
    r = c.post(url, {"sheet": w.sheet.pk, "step": "self", "score-self_view": "120", "comment": "x"})
    assert r.status_code == 400
    assert 'data-field="scores.self_view"' in html(r)
    assert Sheet.objects.get(pk=w.sheet.pk).step == Step.SELF
    r = c.post(url, {"sheet": w.sheet.pk, "step": "self", "score-self_view": "85", "comment": "按时完成全部工单"})
    assert r.status_code == 302
    assert Sheet.objects.get(pk=w.sheet.pk).step == Step.SUPERVISOR
    assert Review.objects.get(sheet=w.sheet, step="self").comment == "按时完成全部工单"
    body = html(c.get(r["Location"]))
    assert 'data-testid="review-form"' not in body
    assert '<li data-step="supervisor" data-done="0" data-current="1">' in body


def test_my_appraisal_other_sheet_and_nobody(client, appraisal):
    w = appraisal
    c = login(client, w.pudong_tech)
    assert c.get(reverse("staff:appraisal_me"), {"sheet": w.hz_sheet.pk}).status_code == 404
    # a technician cannot post the supervisor's step through their page
    r = c.post(reverse("staff:appraisal_me"), {"sheet": w.sheet.pk, "step": "supervisor", "score-attitude": "100"})
    assert r.status_code in (403, 409)
    assert Sheet.objects.get(pk=w.sheet.pk).step == Step.SELF
    r = login(client, w.pudong_agent).get(reverse("staff:appraisal_me"))
    assert r.status_code == 200 and 'data-testid="no-sheets"' in html(r)


def test_published_results_on_my_page(client, appraisal):
    w = appraisal
    through_all_steps(w, w.sheet, own=80, attitude=90)
    svc.cycle_lock(user=w.hq_manager, cycle_id=w.cycle.pk)
    c = login(client, w.pudong_tech)
    body = html(c.get(reverse("staff:appraisal_me")))
    assert 'data-testid="results-pending"' in body and 'data-testid="results"' not in body
    svc.cycle_publish(user=w.hq_manager, cycle_id=w.cycle.pk)
    sheet = Sheet.objects.get(pk=w.sheet.pk)
    body = html(c.get(reverse("staff:appraisal_me")))
    assert 'data-testid="results"' in body
    assert f'data-result="grade">{sheet.grade}<' in body
    assert f'data-result="rank">{sheet.rank} / {sheet.rank_of}<' in body
    assert "认真负责" in body  # the reviewers' comments, once published


def test_warning_and_improvement_plan_shown(client, appraisal):
    w = appraisal
    for s in Sheet.objects.filter(cycle=w.cycle).exclude(employee=w.tech):
        through_all_steps(w, s, own=100, attitude=100)
    through_all_steps(w, w.sheet, own=0, attitude=0)
    lock_and_publish(w)
    sheet = Sheet.objects.get(pk=w.sheet.pk)
    assert sheet.warning and sheet.last_place
    body = html(login(client, w.pudong_tech).get(reverse("staff:appraisal_me")))
    assert 'data-flag="warning"' in body and 'data-flag="last_place"' in body
    assert 'data-testid="plan"' in body and sheet.plan.goals[0]["text"] in body
    assert 'data-testid="plan-form"' not in body  # the plan is kept by the managers
    # the outlet manager follows it up on the sheet page
    c = login(client, w.pudong_manager)
    url = reverse("staff:appraisal_sheet", args=[sheet.pk])
    assert 'data-testid="plan-form"' in html(c.get(url))
    r = c.post(url, {"what": "plan", "status": "lunch"})
    assert r.status_code == 400 and 'data-field="status"' in html(r)
    r = c.post(url, {"what": "plan", "status": "open", "follow_up": "已安排师傅带教"})
    assert r.status_code == 302
    assert sheet.plan.follow_ups.get().text == "已安排师傅带教"
    body = html(c.get(url))
    assert body.count('name="goal-text"') == len(sheet.plan.goals) + 1  # the goals, and one to add
    goals = {"goal-text": ["一次修复率达到 80%", ""], "goal-measure": ["一次修复率", ""], "goal-due": ["2025-13-01", ""]}
    r = c.post(url, {"what": "plan", "status": "open", **goals})
    assert r.status_code == 400 and 'data-field="goals[0].due"' in html(r)
    goals["goal-due"] = ["2025-07-31", ""]
    assert c.post(url, {"what": "plan", "status": "done", **goals}).status_code == 302
    sheet.plan.refresh_from_db()
    assert sheet.plan.status == "done"
    assert sheet.plan.goals == [{"text": "一次修复率达到 80%", "measure": "一次修复率", "due": "2025-07-31"}]


# ================================================================ the board

def test_board_needs_review_rights(client, appraisal):
    w = appraisal
    assert login(client, w.pudong_tech).get(reverse("staff:appraisal_cycles")).status_code == 403
    assert client.get(reverse("staff:appraisal_board", args=[w.cycle.pk])).status_code == 403
    r = login(client, w.pudong_manager).get(reverse("staff:appraisal_cycles"))
    assert r.status_code == 200 and f'data-cycle="{w.cycle.pk}"' in html(r)
    assert client.get(reverse("staff:appraisal_cycles"), {"cursor": "!!"}).status_code == 400


def test_board_of_an_outlet_manager_is_their_outlet(client, appraisal):
    w = appraisal
    c = login(client, w.pudong_manager)
    r = c.get(reverse("staff:appraisal_board", args=[w.cycle.pk]))
    assert r.status_code == 200
    body = html(r)
    shown = set(map(int, re.findall(r'data-sheet="(\d+)"', body)))
    assert shown == set(Sheet.objects.filter(cycle=w.cycle, node=w.pudong).values_list("id", flat=True))
    assert w.hz_sheet.pk not in shown
    assert f'<option value="{w.hangzhou.pk}"' not in body
    assert c.get(reverse("staff:appraisal_board", args=[w.cycle.pk]), {"node": w.hangzhou.pk}).status_code == 404
    assert 'data-action="lock"' not in body  # no appraisal.manage


def test_board_filters_chart_and_bad_input(client, appraisal):
    w = appraisal
    submit(w.pudong_tech, w.sheet, "self", {"self_view": 70})
    c = login(client, w.hq_manager)
    url = reverse("staff:appraisal_board", args=[w.cycle.pk])
    body = html(c.get(url))
    # at headquarters: the mean total of each centre, one series per role
    chart = json.loads(re.search(r'<script id="a-ranking-data" type="application/json">(.*?)</script>', body,
                                 re.S).group(1))
    assert chart["kind"] == "nodes" and chart["categories"] == ["华东服务中心"]
    assert [s["name"] for s in chart["series"]] == [str(Role.TECHNICIAN.label)]
    assert 'data-action="lock"' in body and 'data-confirm="' in body
    # at an outlet: its technicians by total
    body = html(c.get(url, {"node": w.pudong.pk}))
    chart = json.loads(re.search(r'id="a-ranking-data" type="application/json">(.*?)</script>', body, re.S).group(1))
    assert chart["kind"] == "people" and len(chart["categories"]) == 5
    assert chart["series"][0]["data"] == sorted(chart["series"][0]["data"], reverse=True)
    body = html(c.get(url, {"step": "supervisor"}))
    assert re.findall(r'data-sheet="(\d+)"', body) == [str(w.sheet.pk)]
    body = html(c.get(url, {"q": "T900"}))
    assert re.findall(r'data-sheet="(\d+)"', body) == [str(w.hz_sheet.pk)]
    r = c.get(url, {"step": "lunch", "flag": "x"})
    assert r.status_code == 400 and 'data-field="step"' in html(r) and 'data-field="flag"' in html(r)
    assert c.get(url, {"node": "abc"}).status_code == 404
    assert c.get(url, {"cursor": "!!"}).status_code == 400


def test_board_and_export_queries_do_not_grow_with_sheets(client, world):
    w = world
    setup_appraisal(w, extra=4)
    c = login(client, w.hq_manager)

    def count(cycle):
        with CaptureQueriesContext(connection) as ctx:
            r = c.get(reverse("staff:appraisal_board", args=[cycle.pk]), {"node": w.pudong.pk})
        assert r.status_code == 200
        with CaptureQueriesContext(connection) as xctx:
            x = c.get(reverse("staff:appraisal_export", args=[cycle.pk]), {"node": w.pudong.pk})
        rows = list(load_workbook(io.BytesIO(x.content))["考核结果"].iter_rows(min_row=2))
        return len(ctx), len(re.findall(r'data-sheet="', r.content.decode())), len(xctx), len(rows)

    small = count(w.cycle)
    add_technicians(w, 45, start=300)
    big = make_cycle(w, period_start=dt.date(2025, 4, 1), deadlines={})
    svc.cycle_close(user=w.hq_manager, cycle_id=big.pk, now=timezone.make_aware(dt.datetime(2025, 5, 2)))
    large = count(big)
    assert (small[1], large[1], small[3], large[3]) == (5, 50, 5, 50)
    assert (small[0], small[2]) == (large[0], large[2])


def test_board_pages_with_htmx(client, world):
    w = world
    setup_appraisal(w, extra=55)
    c = login(client, w.hq_manager)
    url = reverse("staff:appraisal_board", args=[w.cycle.pk])
    body = html(c.get(url, {"node": w.pudong.pk}))
    first = re.findall(r'data-sheet="(\d+)"', body)
    assert len(first) == 50
    nxt = re.search(r'cursor=([^"&]+)"', body).group(1)
    from urllib.parse import unquote
    r = c.get(url, {"node": w.pudong.pk, "cursor": unquote(nxt)}, HTTP_HX_REQUEST="true")
    rest = re.findall(r'data-sheet="(\d+)"', html(r))
    assert len(rest) == 6 and not set(rest) & set(first)
    assert "<html" not in html(r)


# ================================================================ the review steps on the sheet page

def test_sheet_page_review_step_by_its_role(client, appraisal):
    w = appraisal
    url = reverse("staff:appraisal_sheet", args=[w.sheet.pk])
    # at the self step, the manager sees no form
    c = login(client, w.pudong_manager)
    assert 'data-testid="review-form"' not in html(c.get(url))
    submit(w.pudong_tech, w.sheet, "self", {"self_view": 70})
    body = html(c.get(url))
    assert 'data-step="supervisor"' in body and 'name="score-attitude"' in body
    r = c.post(url, {"step": "supervisor", "score-attitude": "abc", "comment": ""})
    assert r.status_code == 400 and 'data-field="scores.attitude"' in html(r)
    r = c.post(url, {"step": "supervisor", "score-attitude": "", "comment": ""})
    assert r.status_code == 400
    r = c.post(url, {"step": "supervisor", "score-attitude": "88", "comment": "很好"})
    assert r.status_code == 302
    s = Sheet.objects.get(pk=w.sheet.pk)
    assert s.step == Step.DEPARTMENT
    assert SheetScore.objects.get(sheet=s, item__code="attitude").score == Decimal("88.00")


def test_technician_cannot_fill_the_supervisor_step(client, appraisal):
    w = appraisal
    submit(w.pudong_tech, w.sheet, "self", {"self_view": 70})
    c = login(client, w.pudong_tech)
    url = reverse("staff:appraisal_sheet", args=[w.sheet.pk])
    body = html(c.get(url))
    assert 'data-testid="review-form"' not in body
    r = c.post(url, {"step": "supervisor", "score-attitude": "100"})
    assert r.status_code == 403
    assert Sheet.objects.get(pk=w.sheet.pk).step == Step.SUPERVISOR
    # a colleague's sheet is out of sight
    other = Sheet.objects.get(cycle=w.cycle, employee=w.team[0])
    assert c.get(reverse("staff:appraisal_sheet", args=[other.pk])).status_code == 404


def test_manager_of_another_outlet_cannot_rate(client, appraisal):
    w = appraisal
    submit(w.pudong_tech, w.sheet, "self", {"self_view": 70})
    c = login(client, w.hz_manager)
    url = reverse("staff:appraisal_sheet", args=[w.sheet.pk])
    assert c.get(url).status_code == 404
    assert c.post(url, {"step": "supervisor", "score-attitude": "100"}).status_code == 404
    assert Sheet.objects.get(pk=w.sheet.pk).step == Step.SUPERVISOR
    # their own outlet's technician they rate
    submit(w.hz_tech.user, w.hz_sheet, "self", {"self_view": 60})
    hz_url = reverse("staff:appraisal_sheet", args=[w.hz_sheet.pk])
    assert 'data-step="supervisor"' in html(c.get(hz_url))
    assert c.post(hz_url, {"step": "supervisor", "score-attitude": "75"}).status_code == 302


def test_out_of_turn_is_a_conflict(client, appraisal):
    w = appraisal
    r = login(client, w.pudong_manager).post(reverse("staff:appraisal_sheet", args=[w.sheet.pk]),
                                            {"step": "supervisor", "score-attitude": "80"})
    assert r.status_code == 409 and 'data-testid="form-error"' in html(r)


def test_calibration_by_the_manager(client, appraisal):
    w = appraisal
    through_all_steps(w, w.sheet)
    before = Sheet.objects.get(pk=w.sheet.pk).total
    url = reverse("staff:appraisal_sheet", args=[w.sheet.pk])
    assert 'data-testid="calibration-form"' not in html(login(client, w.pudong_manager).get(url))
    c = login(client, w.hq_manager)
    assert 'data-testid="calibration-form"' in html(c.get(url))
    r = c.post(url, {"what": "calibrate", "adjustment": "150", "comment": ""})
    assert r.status_code == 400
    body = html(r)
    assert 'data-field="adjustment"' in body and 'data-field="comment"' in body
    r = c.post(url, {"what": "calibrate", "adjustment": "-2.5", "comment": "与同组拉齐"})
    assert r.status_code == 302
    assert Sheet.objects.get(pk=w.sheet.pk).total == before - Decimal("2.5")
    assert Cycle.objects.get(pk=w.cycle.pk).status == CycleStatus.CALIBRATING
    # the centre manager of another centre does not see the sheet; the technician may not calibrate
    assert login(client, w.pudong_tech).post(url, {"what": "calibrate", "adjustment": "5",
                                                   "comment": "x"}).status_code == 403


# ================================================================ cycle admin

def test_open_a_cycle_with_field_errors(client, appraisal):
    w = appraisal
    c = login(client, w.hq_manager)
    url = reverse("staff:appraisal_cycle_new")
    assert c.get(url).status_code == 200
    bad = {"kind": "monthly", "period_start": "2025-05-02", "node_id": w.hq.pk, "grading_mode": "forced",
           "grade-0-grade": "A", "grade-0-percent": "30", "grade-1-grade": "B", "grade-1-percent": "30",
           "bonus_mode": "pool", "pool": "abc", "deadline-self": "2025-05-10", "last_place_cycles": "2"}
    r = c.post(url, bad)
    assert r.status_code == 400
    body = html(r)
    assert 'data-field="period_start"' in body and 'data-field="grading"' in body
    assert 'data-field="bonus"' in body
    assert 'value="abc"' in body and 'name="grade-1-percent" value="30"' in body  # the input is kept
    r = c.post(url, {**bad, "period_start": "2025-05-01", "grade-1-percent": "70", "pool": "1000"})
    assert r.status_code == 400 and 'data-field="deadlines.self"' in html(r)  # before the period's end
    good = {"kind": "monthly", "period_start": "2025-05-01", "node_id": w.east.pk, "grading_mode": "bands",
            "grade-0-grade": "A", "grade-0-min": "90", "grade-1-grade": "B", "grade-1-min": "70",
            "grade-2-grade": "C", "grade-2-min": "0", "bonus_mode": "pool", "pool": "50000",
            "deadline-self": "2025-06-05", "last_place_cycles": "3"}
    r = c.post(url, good)
    assert r.status_code == 302
    cycle = Cycle.objects.get(period_start=dt.date(2025, 5, 1), node=w.east)
    assert cycle.grading == [{"grade": "A", "min": 90.0}, {"grade": "B", "min": 70.0}, {"grade": "C", "min": 0.0}]
    assert (cycle.bonus, cycle.deadlines, cycle.last_place_cycles) == ({"pool": "50000.00"}, {"self": "2025-06-05"}, 3)
    assert r["Location"] == reverse("staff:appraisal_board", args=[cycle.pk])
    assert login(client, w.pudong_manager).get(url).status_code == 403


def test_cycle_buttons(client, appraisal):
    w = appraisal
    url = reverse("staff:appraisal_cycle_action", args=[w.cycle.pk, "lock"])
    assert login(client, w.pudong_manager).post(url).status_code == 403
    assert login(client, w.pudong_tech).post(url).status_code == 403
    c = login(client, w.hq_manager)
    r = c.post(reverse("staff:appraisal_cycle_action", args=[w.cycle.pk, "publish"]))
    assert r.status_code == 409  # not locked yet
    assert c.post(reverse("staff:appraisal_cycle_action", args=[w.cycle.pk, "explode"])).status_code == 404
    assert c.get(url).status_code == 405
    assert c.post(url).status_code == 302
    assert Cycle.objects.get(pk=w.cycle.pk).status == CycleStatus.LOCKED
    body = html(c.get(reverse("staff:appraisal_board", args=[w.cycle.pk])))
    assert 'data-action="publish"' in body and 'data-action="lock"' not in body
    c.post(reverse("staff:appraisal_cycle_action", args=[w.cycle.pk, "publish"]))
    assert Cycle.objects.get(pk=w.cycle.pk).status == CycleStatus.PUBLISHED
    # close: a new April cycle (its period is over by now)
    april = make_cycle(w, period_start=dt.date(2025, 4, 1), deadlines={})
    r = c.post(reverse("staff:appraisal_cycle_action", args=[april.pk, "close"]))
    assert r.status_code == 302
    assert Cycle.objects.get(pk=april.pk).status == CycleStatus.REVIEWING
    assert Sheet.objects.filter(cycle=april).count() == 6


# ================================================================ schemes

def test_scheme_pages(client, appraisal):
    w = appraisal
    c = login(client, w.hq_manager)
    r = c.get(reverse("staff:appraisal_schemes"))
    assert r.status_code == 200 and 'data-scheme="technician"' in html(r)
    r = c.get(reverse("staff:appraisal_scheme_new"), {"role": "technician"})
    body = html(r)
    assert r.status_code == 200 and 'value="ftf"' in body and 'data-weight-sum data-ok="1">100<' in body
    assert login(client, w.pudong_manager).get(reverse("staff:appraisal_scheme_new")).status_code == 403


def _scheme_post(rows, **kw):
    data = {"role": "technician", "valid_from": "2025-06-01", "note": "调整权重", "rows": str(len(rows))}
    for i, row in enumerate(rows):
        for k, v in row.items():
            data[f"items-{i}-{k}"] = v
    data.update(kw)
    return data


def test_new_scheme_version_with_errors_per_field(client, appraisal):
    w = appraisal
    c = login(client, w.hq_manager)
    url = reverse("staff:appraisal_scheme_new")
    rows = [
        {"code": "ftf", "label": "一次修复率", "group": "quality", "kind": "auto", "source": "ftf_rate",
         "weight": "50", "rule": "linear", "floor": "90", "target": "90"},
        {"code": "safety", "label": "安全", "group": "safety", "kind": "auto", "source": "safety_incidents",
         "weight": "30", "rule": "points", "base": "100", "per_event": "-50", "cap": "150"},
        {"code": "hours", "label": "培训学时", "group": "capability", "kind": "auto", "source": "training_hours",
         "weight": "10", "rule": "bands", "bands": "~4:0\n4~:100"},
        {"code": "", "label": "", "weight": ""},  # a blank row is skipped
    ]
    r = c.post(url, _scheme_post(rows))
    assert r.status_code == 400
    body = html(r)
    assert 'data-field="weights"' in body and "90" in body  # 50 + 30 + 10 ≠ 100
    assert 'data-field="items[0].params"' in body  # floor = target
    assert 'data-field="items[1].params"' in body  # cap above 100
    assert 'data-field="items[2].params"' not in body
    rows[0].update(floor="50")
    rows[1].update(cap="", weight="40")
    rows[2].update(bands="0~4")  # malformed
    r = c.post(url, _scheme_post(rows))
    assert r.status_code == 400 and 'data-field="items[2].params"' in html(r)
    rows[2].update(bands="~4:0\n4~8:60\n8~:100")
    r = c.post(url, _scheme_post(rows))
    assert r.status_code == 302
    v = SchemeVersion.objects.get(scheme__role="technician", valid_from=dt.date(2025, 6, 1))
    items = {i.code: i for i in v.items.all()}
    assert set(items) == {"ftf", "safety", "hours"}
    assert items["ftf"].params == {"floor": 50, "target": 90}
    assert items["safety"].params == {"base": 100, "per_event": -50}
    assert items["hours"].params == [{"from": None, "to": 4, "score": 0}, {"from": 4, "to": 8, "score": 60},
                                     {"from": 8, "to": None, "score": 100}]
    # the version before a cycle already opened is refused (it would change a cycle under way)
    r = c.post(url, _scheme_post(rows, valid_from="2025-02-01"))
    assert r.status_code == 400 and 'data-field="valid_from"' in html(r)
    # a centre manager may not change the schemes
    assert login(client, w.east_manager).post(url, _scheme_post(rows, valid_from="2025-07-01")).status_code == 403


def test_manual_item_needs_a_step(client, appraisal):
    w = appraisal
    rows = [{"code": "attitude", "label": "态度", "group": "quality", "kind": "manual", "step": "",
             "source": "ftf_rate", "weight": "100", "rule": "linear", "floor": "0", "target": "100"}]
    r = login(client, w.hq_manager).post(reverse("staff:appraisal_scheme_new"), _scheme_post(rows))
    assert r.status_code == 400
    assert 'data-field="items[0].step"' in html(r)  # the source of a manual row is ignored


# ================================================================ export

def test_export_is_limited_to_the_scope(client, appraisal):
    w = appraisal
    through_all_steps(w, w.sheet)
    svc.cycle_lock(user=w.hq_manager, cycle_id=w.cycle.pk)
    url = reverse("staff:appraisal_export", args=[w.cycle.pk])
    r = login(client, w.pudong_manager).get(url)
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["概要", "考核结果", "奖项"]
    ws = wb["考核结果"]
    head = [c.value for c in ws[1]]
    assert head[:4] == ["单位", "角色", "工号", "姓名"]
    assert {"工作效率", "服务质量", "业务能力", "成本控制", "安全管理", "总分", "等级", "排名", "奖金（元）"} <= set(head)
    data = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    assert {d[2] for d in data} == set(Sheet.objects.filter(cycle=w.cycle, node=w.pudong)
                                       .values_list("employee__employee_no", flat=True))
    mine = next(d for d in data if d[2] == "T0001")
    sheet = Sheet.objects.get(pk=w.sheet.pk)
    assert mine[head.index("总分")] == float(sheet.total) and mine[head.index("等级")] == sheet.grade
    assert mine[head.index("服务质量")] == 75.0
    r = login(client, w.hq_manager).get(url, {"node": w.hangzhou.pk})
    data = list(load_workbook(io.BytesIO(r.content))["考核结果"].iter_rows(min_row=2, values_only=True))
    assert [d[2] for d in data] == ["T900"]
    assert login(client, w.hz_manager).get(url, {"node": w.pudong.pk}).status_code == 404
    assert login(client, w.pudong_tech).get(url).status_code == 403


# ================================================================ the nav

def test_every_appraisal_page_declares_its_permission():
    from aftersales.staff import urls_appraisal

    assert len(urls_appraisal.urlpatterns) == 9
    for p in urls_appraisal.urlpatterns:
        assert getattr(p.callback, "required_perms", None), p.name


def test_nav_link(client, appraisal):
    w = appraisal
    body = html(login(client, w.pudong_tech).get(reverse("web:home")))
    assert f'href="{reverse("staff:appraisal_me")}"' in body
    body = html(login(client, w.hq_manager).get(reverse("web:home")))
    assert f'href="{reverse("staff:appraisal_cycles")}"' in body
    assert "绩效考核" not in html(login(client, w.customer_user).get(reverse("web:home")))




# ================================================================ in the browser

@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_chart_confirmation_and_scheme_editor_in_the_browser(world, live_server, chromium, shots):
    w = setup_appraisal(world)
    with wb.signed_in(chromium, live_server, shots, "hq_manager", height=1000) as (_context, page):
        page.goto(f"{live_server.url}{reverse('staff:appraisal_board', args=[w.cycle.pk])}?node={w.pudong.pk}")
        page.wait_for_selector("[data-achart] svg")
        assert page.locator("[data-achart] svg text", has_text="李师傅").count() == 1
        # the lock asks first: dismissed, nothing happens; accepted, the cycle is locked
        page.once("dialog", lambda d: d.dismiss())
        page.click("form[data-action=lock] button")
        page.wait_for_timeout(300)
        assert Cycle.objects.get(pk=w.cycle.pk).status == CycleStatus.REVIEWING
        page.once("dialog", lambda d: d.accept())
        page.click("form[data-action=lock] button")
        page.wait_for_selector("form[data-action=publish]")
        assert Cycle.objects.get(pk=w.cycle.pk).status == CycleStatus.LOCKED
        page.screenshot(path=str(shots / "appraisal_board.png"), full_page=True)

        # the scheme editor: the weights' sum follows the inputs; a rule shows its own parameters
        page.goto(f"{live_server.url}{reverse('staff:appraisal_scheme_new')}?role=technician")
        total = page.locator("[data-weight-sum]")
        assert total.inner_text() == "100" and total.get_attribute("data-ok") == "1"
        page.click("[data-add-row]")
        row = page.locator("[data-item-row]").last
        row.locator("input[name$=-weight]").fill("10")
        assert total.inner_text() == "110" and total.get_attribute("data-ok") == "0"
        assert row.locator("input[name$=-floor]").is_visible()
        assert not row.locator("input[name$=-per_event]").is_visible()
        row.locator("select[data-rule]").select_option("points")
        assert row.locator("input[name$=-per_event]").is_visible()
        assert not row.locator("input[name$=-floor]").is_visible()
        row.locator("select[data-kind]").select_option("manual")
        assert row.locator("select[name$=-step]").is_visible() and not row.locator("select[name$=-source]").is_visible()
        row.locator("[data-remove-row]").click()
        assert total.inner_text() == "100"
    connections.close_all()  # the live server's thread leaves its connection (PostgreSQL's teardown)
