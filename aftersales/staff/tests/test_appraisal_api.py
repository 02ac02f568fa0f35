"""The appraisal API (``/api/staff/appraisal/``): every operation declares its permission; cycles
(list, open, close, lock, publish, board, ranking, export), sheets (get, review steps,
calibration), plans, my sheets, schemes; scope (404), roles (403), state (409), bad input (400 with
the fields), bounded query counts. Data: ``test_appraisal_pages.setup_appraisal``."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from openpyxl import load_workbook

from aftersales.api.api import api
from aftersales.api.permissions import REGISTRY, operation_key
from aftersales.org.roles import Perm
from aftersales.staff import api_appraisal
from aftersales.staff import services_appraisal as svc
from aftersales.staff.models import Cycle, CycleStatus, SchemeVersion, Sheet, Step

from .test_appraisal_pages import add_technicians, make_cycle, setup_appraisal, through_all_steps

pytestmark = pytest.mark.django_db

BASE = "/api/staff/appraisal"


@pytest.fixture
def appraisal(world):
    return setup_appraisal(world)


def call(client, user, method, path, body=None, **params):
    client.force_login(user)
    fn = getattr(client, method)
    if body is not None:
        return fn(BASE + path, data=json.dumps(body), content_type="application/json")
    return fn(BASE + path, params)


def test_every_operation_declares_its_permission():
    ops = [op for path in api_appraisal.router.path_operations.values() for op in path.operations]
    assert len(ops) >= 15
    for op in ops:
        assert operation_key(op.view_func) in REGISTRY, op.view_func.__name__
    schema = api.get_openapi_schema()
    perms = {op["operationId"]: op.get("x-permission") for path, item in schema["paths"].items()
             if path.startswith(BASE) for op in item.values()}
    assert all(perms.values()) and len(perms) == len(ops)
    assert perms["aftersales_staff_api_appraisal_cycle_lock"] == Perm.APPRAISAL_MANAGE
    assert perms["aftersales_staff_api_appraisal_review_submit"] == "authenticated"


# ================================================================ cycles

def test_cycle_list_and_get(client, appraisal):
    w = appraisal
    r = call(client, w.pudong_manager, "get", "/cycles")
    assert r.status_code == 200
    items = r.json()["items"]
    assert [c["id"] for c in items] == [w.cycle.pk]
    assert items[0]["sheets"] == 6 and items[0]["status"] == "reviewing" and items[0]["node"]["code"] == "HQ"
    assert call(client, w.pudong_tech, "get", "/cycles").status_code == 403
    assert call(client, w.pudong_manager, "get", f"/cycles/{w.cycle.pk}").json()["kind"] == "monthly"
    east = make_cycle(w, period_start=dt.date(2025, 4, 1), node_id=w.south.pk, deadlines={})
    assert call(client, w.pudong_manager, "get", f"/cycles/{east.pk}").status_code == 404
    assert call(client, w.pudong_manager, "get", "/cycles", status="lunch").status_code == 400


def test_cycle_open_with_field_errors(client, appraisal):
    w = appraisal
    bad = {"kind": "monthly", "period_start": "2025-05-02", "node_id": w.east.pk, "grading_mode": "forced",
           "grading": [{"grade": "A", "percent": 30}, {"grade": "B", "percent": 30}],
           "bonus_mode": "multiplier", "bonus": {"base": 1000, "multipliers": {"Z": 1}},
           "deadlines": {"lunch": "2025-06-01"}}
    r = call(client, w.east_manager, "post", "/cycles", bad)
    assert r.status_code == 400
    assert set(r.json()["errors"]) >= {"period_start", "grading", "bonus.multipliers.Z", "deadlines.lunch"}
    r = call(client, w.east_manager, "post", "/cycles", {"kind": "weekly", "period_start": "x", "node_id": 0,
                                                          "grading": "A"})
    assert r.status_code == 400
    assert set(r.json()["errors"]) >= {"kind", "period_start", "node_id", "grading"}
    good = {"kind": "quarterly", "period_start": "2025-04-01", "node_id": w.east.pk, "grading_mode": "bands",
            "grading": [{"grade": "优", "min": 85}, {"grade": "良", "min": 60}, {"grade": "差", "min": 0}],
            "bonus_mode": "pool", "bonus": {"pool": 20000}, "deadlines": {"self": "2025-07-05"}}
    r = call(client, w.east_manager, "post", "/cycles", good)
    assert r.status_code == 201, r.json()
    out = r.json()
    assert (out["period_end"], out["status"], out["deadlines"]) == ("2025-06-30", "open", {"self": "2025-07-05"})
    assert call(client, w.pudong_manager, "post", "/cycles", good).status_code == 403  # no appraisal.manage
    good["node_id"] = w.tianhe.pk
    assert call(client, w.east_manager, "post", "/cycles", good).status_code == 404  # another centre


def test_close_lock_publish(client, appraisal):
    w = appraisal
    april = make_cycle(w, period_start=dt.date(2025, 4, 1), deadlines={})
    assert call(client, w.pudong_manager, "post", f"/cycles/{april.pk}/close").status_code == 403
    r = call(client, w.hq_manager, "post", f"/cycles/{april.pk}/close")
    assert r.status_code == 200 and r.json()["status"] == "reviewing"
    assert call(client, w.hq_manager, "post", f"/cycles/{april.pk}/close").status_code == 409
    assert call(client, w.hq_manager, "post", f"/cycles/{w.cycle.pk}/publish").status_code == 409
    r = call(client, w.hq_manager, "post", f"/cycles/{w.cycle.pk}/lock")
    assert r.status_code == 200 and r.json()["status"] == "locked"
    r = call(client, w.hq_manager, "post", f"/cycles/{w.cycle.pk}/publish")
    assert r.json()["status"] == "published" and r.json()["published_at"]
    assert call(client, w.hq_manager, "post", "/cycles/999999/lock").status_code == 404


def test_board_sheets_scope_filters_and_pages(client, appraisal):
    w = appraisal
    r = call(client, w.pudong_manager, "get", f"/cycles/{w.cycle.pk}/sheets")
    assert r.status_code == 200
    ids = {s["id"] for s in r.json()["items"]}
    assert ids == set(Sheet.objects.filter(cycle=w.cycle, node=w.pudong).values_list("id", flat=True))
    row = next(s for s in r.json()["items"] if s["id"] == w.sheet.pk)
    assert (row["employee"]["employee_no"], row["step"], row["role"]) == ("T0001", "self", "technician")
    assert call(client, w.pudong_manager, "get", f"/cycles/{w.cycle.pk}/sheets",
                node_id=w.hangzhou.pk).status_code == 404
    r = call(client, w.hq_manager, "get", f"/cycles/{w.cycle.pk}/sheets", node_id=w.hangzhou.pk)
    assert [s["id"] for s in r.json()["items"]] == [w.hz_sheet.pk]
    r = call(client, w.hq_manager, "get", f"/cycles/{w.cycle.pk}/sheets", limit=4)
    page1 = r.json()
    assert len(page1["items"]) == 4 and page1["next_cursor"]
    r = call(client, w.hq_manager, "get", f"/cycles/{w.cycle.pk}/sheets", limit=4, cursor=page1["next_cursor"])
    assert len(r.json()["items"]) == 2 and not {s["id"] for s in r.json()["items"]} & {s["id"] for s in page1["items"]}
    r = call(client, w.hq_manager, "get", f"/cycles/{w.cycle.pk}/sheets", step="lunch", flag="x", limit=0)
    assert r.status_code == 400 and set(r.json()["errors"]) == {"step", "flag", "limit"}
    assert call(client, w.hq_manager, "get", f"/cycles/{w.cycle.pk}/sheets", cursor="!!").status_code == 400
    assert call(client, w.pudong_tech, "get", f"/cycles/{w.cycle.pk}/sheets").status_code == 403


def test_board_queries_bounded(client, world):
    w = world
    setup_appraisal(w, extra=4)

    def count(cycle):
        with CaptureQueriesContext(connection) as ctx:
            r = call(client, w.hq_manager, "get", f"/cycles/{cycle.pk}/sheets", node_id=w.pudong.pk, limit=100)
        assert r.status_code == 200
        return len(ctx), len(r.json()["items"])

    count(w.cycle)  # warm up (first-request caches)
    small = count(w.cycle)
    add_technicians(w, 45, start=300)
    big = make_cycle(w, period_start=dt.date(2025, 4, 1), deadlines={})
    svc.cycle_close(user=w.hq_manager, cycle_id=big.pk, now=timezone.make_aware(dt.datetime(2025, 5, 2)))
    large = count(big)
    assert (small[1], large[1]) == (5, 50)
    assert small[0] == large[0]


def test_ranking_chart(client, appraisal):
    w = appraisal
    r = call(client, w.hq_manager, "get", f"/cycles/{w.cycle.pk}/ranking")
    assert r.status_code == 200
    assert r.json()["kind"] == "nodes" and r.json()["categories"] == ["华东服务中心"]
    r = call(client, w.pudong_manager, "get", f"/cycles/{w.cycle.pk}/ranking")
    out = r.json()
    assert out["kind"] == "people" and out["role"] == "technician" and len(out["categories"]) == 5
    totals = out["series"][0]["data"]
    assert totals == sorted(totals, reverse=True)
    assert call(client, w.hz_manager, "get", f"/cycles/{w.cycle.pk}/ranking",
                node_id=w.pudong.pk).status_code == 404


def test_export(client, appraisal):
    w = appraisal
    r = call(client, w.pudong_manager, "get", f"/cycles/{w.cycle.pk}/export.xlsx")
    assert r.status_code == 200
    rows = list(load_workbook(io.BytesIO(r.content))["考核结果"].iter_rows(min_row=2, values_only=True))
    assert len(rows) == 5 and {row[0] for row in rows} == {"上海浦东网点"}
    assert call(client, w.pudong_tech, "get", f"/cycles/{w.cycle.pk}/export.xlsx").status_code == 403


# ================================================================ sheets and steps

def test_my_sheets_and_sheet_get(client, appraisal):
    w = appraisal
    r = call(client, w.pudong_tech, "get", "/me/sheets")
    assert r.status_code == 200
    [row] = r.json()
    assert (row["id"], row["step"], row["published"], row["total"]) == (w.sheet.pk, "self", False, None)
    mine = call(client, w.pudong_tech, "get", f"/sheets/{w.sheet.pk}").json()
    assert mine["may_do"] == "self" and mine["results"] is None
    scores = {s["code"]: s for s in mine["scores"]}
    assert (scores["ftf"]["value_text"], Decimal(str(scores["ftf"]["score"]))) == ("80.0%", Decimal("75"))
    assert scores["attitude"]["score"] is None and scores["attitude"]["step"] == "supervisor"
    assert {g["group"] for g in mine["groups"]} == {"quality", "safety", "capability", "efficiency", "cost"}
    assert call(client, w.pudong_tech, "get", f"/sheets/{w.hz_sheet.pk}").status_code == 404
    assert call(client, w.hz_manager, "get", f"/sheets/{w.sheet.pk}").status_code == 404
    r = call(client, w.pudong_manager, "get", f"/sheets/{w.sheet.pk}")
    assert r.status_code == 200 and r.json()["may_do"] is None  # the self step is the person's
    assert call(client, w.pudong_agent, "get", "/me/sheets").json() == []


def test_review_steps_by_their_roles(client, appraisal):
    w = appraisal
    path = f"/sheets/{w.sheet.pk}/reviews"
    r = call(client, w.pudong_tech, "post", path, {"step": "self", "scores": {"self_view": 101}})
    assert r.status_code == 400 and set(r.json()["errors"]) == {"scores.self_view"}
    r = call(client, w.pudong_tech, "post", path, {"step": "self", "scores": {"self_view": "abc"}})
    assert r.status_code == 400 and "scores.self_view" in r.json()["errors"]
    r = call(client, w.pudong_tech, "post", path, {"step": "self", "scores": {"self_view": 70, "attitude": 100}})
    assert r.status_code == 400 and set(r.json()["errors"]) == {"scores.attitude"}
    r = call(client, w.pudong_tech, "post", path, {"step": "self", "scores": {"self_view": 70}, "comment": "ok"})
    assert r.status_code == 201 and r.json()["step"] == "supervisor"
    # a technician cannot fill the supervisor's step; another outlet's manager does not see the sheet
    r = call(client, w.pudong_tech, "post", path, {"step": "supervisor", "scores": {"attitude": 100}})
    assert r.status_code == 403
    r = call(client, w.hz_manager, "post", path, {"step": "supervisor", "scores": {"attitude": 100}})
    assert r.status_code == 404
    r = call(client, w.hq_manager, "post", path, {"step": "company", "scores": {}})
    assert r.status_code == 409  # out of turn
    r = call(client, w.pudong_manager, "post", path, {"step": "lunch"})
    assert r.status_code == 400 and "step" in r.json()["errors"]
    r = call(client, w.pudong_manager, "post", path, {"step": "supervisor", "scores": {"attitude": 90},
                                                       "comment": "好"})
    assert r.status_code == 201 and r.json()["step"] == "department"
    assert [x["step"] for x in r.json()["reviews"]] == ["self", "supervisor"]
    assert Sheet.objects.get(pk=w.sheet.pk).step == Step.DEPARTMENT
    # the person does not read the reviewers' comments before publication
    mine = call(client, w.pudong_tech, "get", f"/sheets/{w.sheet.pk}").json()
    assert [x["step"] for x in mine["reviews"]] == ["self"] and mine["total"] is None


def test_calibration(client, appraisal):
    w = appraisal
    through_all_steps(w, w.sheet)
    path = f"/sheets/{w.sheet.pk}/calibration"
    before = Sheet.objects.get(pk=w.sheet.pk).total
    assert call(client, w.pudong_manager, "post", path, {"adjustment": 1, "comment": "x"}).status_code == 403
    r = call(client, w.hq_manager, "post", path, {"adjustment": 500, "comment": ""})
    assert r.status_code == 400 and set(r.json()["errors"]) == {"adjustment", "comment"}
    r = call(client, w.hq_manager, "post", path, {"adjustment": 3, "comment": "表现突出"})
    assert r.status_code == 200
    assert Decimal(str(r.json()["total"])) == before + 3
    assert Cycle.objects.get(pk=w.cycle.pk).status == CycleStatus.CALIBRATING
    other = Sheet.objects.get(cycle=w.cycle, employee=w.team[0])
    r = call(client, w.hq_manager, "post", f"/sheets/{other.pk}/calibration", {"adjustment": 3, "comment": "x"})
    assert r.status_code == 409  # its steps are not done


def test_results_and_plan(client, appraisal):
    w = appraisal
    for s in Sheet.objects.filter(cycle=w.cycle).exclude(employee=w.tech):
        through_all_steps(w, s, own=100, attitude=100)
    through_all_steps(w, w.sheet, own=0, attitude=0)
    svc.cycle_lock(user=w.hq_manager, cycle_id=w.cycle.pk)
    assert call(client, w.pudong_tech, "get", f"/sheets/{w.sheet.pk}").json()["results"] is None
    res = call(client, w.pudong_manager, "get", f"/sheets/{w.sheet.pk}").json()["results"]
    assert res["warning"] and res["last_place"] and res["plan"]["status"] == "open"
    svc.cycle_publish(user=w.hq_manager, cycle_id=w.cycle.pk)
    row = call(client, w.pudong_tech, "get", "/me/sheets").json()[0]
    sheet = Sheet.objects.get(pk=w.sheet.pk)
    assert (row["published"], row["grade"], row["warning"]) == (True, sheet.grade, True)
    mine = call(client, w.pudong_tech, "get", f"/sheets/{w.sheet.pk}").json()
    assert (mine["results"]["grade"], mine["results"]["rank"]) == (sheet.grade, sheet.rank)
    assert Decimal(str(mine["results"]["bonus"])) == sheet.bonus
    plan_id = mine["results"]["plan"]["id"]
    assert call(client, w.pudong_tech, "post", f"/plans/{plan_id}", {"status": "done"}).status_code == 403
    r = call(client, w.pudong_manager, "post", f"/plans/{plan_id}", {"status": "lunch"})
    assert r.status_code == 400 and "status" in r.json()["errors"]
    r = call(client, w.pudong_manager, "post", f"/plans/{plan_id}",
             {"goals": [{"text": "一次修复率提高到 85%", "measure": "一次修复率", "due": "2025-07-31"}],
              "follow_up": "每周复盘"})
    assert r.status_code == 200
    assert r.json()["goals"][0]["due"] == "2025-07-31" and r.json()["follow_ups"][0]["text"] == "每周复盘"
    assert call(client, w.hz_manager, "post", f"/plans/{plan_id}", {"status": "done"}).status_code == 404


def test_my_sheets_queries_bounded(client, world):
    w = world
    setup_appraisal(w, extra=1)
    call(client, w.pudong_tech, "get", "/me/sheets")

    def count():
        with CaptureQueriesContext(connection) as ctx:
            r = call(client, w.pudong_tech, "get", "/me/sheets")
        return len(ctx), len(r.json())

    one = count()
    for m in (4, 5):
        c = make_cycle(w, period_start=dt.date(2025, m, 1), deadlines={})
        svc.cycle_close(user=w.hq_manager, cycle_id=c.pk, now=timezone.make_aware(dt.datetime(2025, m + 1, 2)))
    three = count()
    assert (one[1], three[1]) == (1, 3)
    assert one[0] == three[0]


# ================================================================ schemes

ITEM = {"code": "ftf", "label": "一次修复率", "group": "quality", "kind": "auto", "source": "ftf_rate",
        "weight": 60, "rule": "linear", "params": {"floor": 50, "target": 90}}


def test_schemes(client, appraisal):
    w = appraisal
    r = call(client, w.pudong_manager, "get", "/schemes")
    assert r.status_code == 200
    [tech] = r.json()
    assert tech["role"] == "technician" and tech["versions"][0]["items"][0]["code"] == "ftf"
    assert call(client, w.pudong_tech, "get", "/schemes").status_code == 403
    body = {"role": "technician", "valid_from": "2025-06-01", "items": [ITEM]}
    r = call(client, w.hq_manager, "post", "/schemes/versions", body)
    assert r.status_code == 400 and set(r.json()["errors"]) == {"weights"}
    bands = {**ITEM, "code": "hours", "source": "training_hours", "weight": 40, "rule": "bands",
             "params": [{"from": 8, "to": 4, "score": 100}]}
    r = call(client, w.hq_manager, "post", "/schemes/versions", {**body, "items": [ITEM, bands]})
    assert r.status_code == 400 and set(r.json()["errors"]) == {"items[1].params"}
    r = call(client, w.hq_manager, "post", "/schemes/versions",
             {**body, "items": [{**ITEM, "weight": "x", "group": "fun"}]})
    assert r.status_code == 400 and {"items[0].weight", "items[0].group"} <= set(r.json()["errors"])
    bands["params"] = [{"from": None, "to": 4, "score": 0}, {"from": 4, "to": None, "score": 100}]
    r = call(client, w.hq_manager, "post", "/schemes/versions", {**body, "items": [ITEM, bands], "note": "v2"})
    assert r.status_code == 201, r.json()
    assert r.json()["number"] == 2 and [i["code"] for i in r.json()["items"]] == ["ftf", "hours"]
    assert SchemeVersion.objects.filter(scheme__role="technician").count() == 2
    assert call(client, w.east_manager, "post", "/schemes/versions",
                {**body, "valid_from": "2025-07-01", "items": [ITEM, bands]}).status_code == 403


def test_unauthenticated(client, appraisal):
    assert client.get(BASE + "/me/sheets").status_code == 401
    assert client.get(BASE + "/cycles").status_code == 401


