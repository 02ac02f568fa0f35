"""The assets API: permissions, scope, bad input as 4xx, and lists at a fixed query count."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aftersales.assets.models import Calibration, Loan, Loaner

from .conftest import Api, loaner, repair, tool

pytestmark = pytest.mark.django_db


def d(n=0) -> str:
    return (timezone.localdate() + dt.timedelta(days=n)).isoformat()


# ---------------------------------------------------------------- permissions

def test_who_may_read_and_write(aw, client):
    assert client.get("/api/assets/loaners").status_code == 401
    assert Api(aw.pudong_agent).get("/loaners").status_code == 403  # no asset.view
    assert Api(aw.trainer).get("/tools").status_code == 403
    tech = Api(aw.pudong_tech)
    assert tech.get("/loaners").status_code == 200
    assert tech.get("/tools", {"mine": "true"}).status_code == 200
    o = repair(aw, days=4)
    body = {"order_id": o.pk, "loaner_id": aw.l_ac.pk, "reason": "long_repair"}
    r = tech.post("/loans", body)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert Api(aw.pudong_dispatcher).post("/tools", {"node_id": aw.pudong.pk, "code": "X", "name": "x"}).status_code == 403


def test_out_of_scope_is_404(aw):
    o = repair(aw, days=4)
    th = Api(aw.tianhe_manager)
    assert th.post("/loans", {"order_id": o.pk, "loaner_id": aw.l_th.pk, "reason": "manager"}).status_code == 404
    assert th.get(f"/loaners/{aw.l_ac.pk}").status_code == 404
    t = tool(aw.pudong, "GJ-1")
    assert th.get(f"/tools/{t.pk}").status_code == 404
    assert th.get(f"/tools/{t.pk}/calibrations").status_code == 404
    assert th.post(f"/tools/{t.pk}/calibrations", {"done_on": d(), "result": "pass"}).status_code == 404
    assert Api(aw.pudong_manager).get("/tools/999999").status_code == 404
    assert Api(aw.pudong_manager).get("/loans/999999").status_code == 404


# ---------------------------------------------------------------- loaners and loans

def test_lend_and_return_through_the_api(aw):
    api = Api(aw.pudong_manager)
    r = api.post("/loaners", {"node_id": aw.pudong.pk, "category_id": aw.ac.pk, "asset_no": "BY-PD-009",
                              "model_name": "移动空调 1匹", "daily_cost": "18.50"})
    assert r.status_code == 201, r.content
    new = r.json()
    assert new["state"] == "available" and new["state_label"] == "可借" and Decimal(str(new["daily_cost"])) == Decimal("18.5")
    o = repair(aw, days=4)
    r = api.post("/loans", {"order_id": o.pk, "loaner_id": new["id"], "reason": "long_repair", "due_on": d(10)})
    assert r.status_code == 201, r.content
    loan = r.json()
    assert loan["order"]["number"] == o.number and loan["customer"] == aw.c_pudong.name and not loan["overdue"]
    assert api.post("/loans", {"order_id": o.pk, "loaner_id": aw.l_wm.pk, "reason": "manager"}).status_code == 409
    assert api.get("/loans").json()["items"][0]["id"] == loan["id"]
    r = api.post(f"/loans/{loan['id']}/return", {"condition": "damaged", "note": "外壳破损"})
    assert r.status_code == 200, r.content
    assert r.json()["return_condition"] == "damaged"
    assert api.get(f"/loaners/{new['id']}").json()["state"] == "maintenance"
    assert api.post(f"/loans/{loan['id']}/return", {"condition": "good"}).status_code == 409
    r = api.patch(f"/loaners/{new['id']}", {"state": "available"})
    assert r.status_code == 200 and r.json()["state"] == "available"


def test_bad_input_is_a_400_naming_the_fields(aw):
    api = Api(aw.pudong_manager)
    o = repair(aw, days=4)
    r = api.post("/loans", {"order_id": o.pk, "loaner_id": aw.l_ac.pk, "reason": "whim", "due_on": d(-1)})
    assert r.status_code == 400 and "reason" in r.json()["errors"]
    r = api.post("/loans", {"order_id": o.pk, "loaner_id": aw.l_ac.pk, "reason": "manager", "due_on": d(-1)})
    assert r.status_code == 400 and set(r.json()["errors"]) == {"due_on"}
    assert "今天" in r.json()["errors"]["due_on"][0]
    r = api.post("/loans", {"order_id": o.pk, "loaner_id": aw.l_ac.pk, "reason": "manager", "extra": 1})
    assert r.status_code == 400 and "extra" in r.json()["errors"]
    r = api.post("/loans", {"order_id": 0, "loaner_id": aw.l_ac.pk, "reason": "manager"})
    assert r.status_code == 400 and "order_id" in r.json()["errors"]
    r = api.post("/loaners", {"node_id": aw.pudong.pk, "category_id": aw.ac.pk, "asset_no": "BY-PD-001",
                              "model_name": "x", "daily_cost": "-1"})
    assert r.status_code == 400 and "daily_cost" in r.json()["errors"]
    r = api.post("/loaners", {"node_id": aw.pudong.pk, "category_id": aw.ac.pk, "asset_no": "BY-PD-001",
                              "model_name": "x"})
    assert r.status_code == 400 and set(r.json()["errors"]) == {"asset_no"}
    r = api.post(f"/loans/{1}/return", {"condition": "lost"})
    assert r.status_code == 400
    assert api.get("/loans/candidates", {"cursor": "garbage"}).status_code == 400
    assert api.put(f"/policies/{aw.pudong.pk}", {"after_days": 0}).status_code == 400
    assert not Loan.objects.exists() and Loaner.objects.count() == 4


def test_overdue_and_candidates(aw):
    api = Api(aw.pudong_manager)
    late, waiting = repair(aw, days=20), repair(aw, days=5)
    repair(aw, days=1)
    r = api.post("/loans", {"order_id": late.pk, "loaner_id": aw.l_ac.pk, "reason": "long_repair", "due_on": d(0)})
    Loan.objects.filter(pk=r.json()["id"]).update(due_on=timezone.localdate() - dt.timedelta(days=4))
    out = api.get("/loans/overdue").json()["items"]
    assert [x["order"]["number"] for x in out] == [late.number] and out[0]["days_overdue"] == 4 and out[0]["overdue"]
    cands = api.get("/loans/candidates").json()["items"]
    assert [c["order"]["number"] for c in cands] == [waiting.number]
    assert cands[0]["after_days"] == 3 and cands[0]["days_open"] == 5 and cands[0]["category"]["code"] == "AC"
    assert Api(aw.tianhe_manager).get("/loans/overdue").json()["items"] == []


def test_the_policy(aw):
    api = Api(aw.east_manager)
    r = api.get(f"/policies/{aw.pudong.pk}").json()
    assert r["after_days"] == 3 and r["is_default"]
    assert api.put(f"/policies/{aw.east.pk}", {"after_days": 2}).status_code == 200
    r = api.get(f"/policies/{aw.pudong.pk}").json()
    assert r["after_days"] == 2 and r["inherited_from"]["id"] == aw.east.pk and not r["is_default"]
    assert Api(aw.pudong_manager).put(f"/policies/{aw.east.pk}", {"after_days": 5}).status_code == 404  # above it
    assert Api(aw.pudong_tech).put(f"/policies/{aw.pudong.pk}", {"after_days": 5}).status_code == 403
    assert Api(aw.tianhe_manager).get(f"/policies/{aw.pudong.pk}").status_code == 404


def test_summary(aw):
    rows = Api(aw.east_manager).get("/loaners/summary").json()
    assert {r["node_name"]: r["counts"]["available"] for r in rows} == {aw.pudong.name: 2, aw.hangzhou.name: 1}


# ---------------------------------------------------------------- tools

def test_tools_through_the_api(aw):
    api = Api(aw.quality)
    r = api.post("/tools", {"node_id": aw.pudong.pk, "code": "GJ-RG-1", "name": "冷媒压力表组",
                            "check_kind": "calibration", "interval_months": 12, "due_on": d(3),
                            "holder_id": aw.tech_employee.pk})
    assert r.status_code == 201, r.content
    t = r.json()
    assert t["due"] == "soon" and t["holder"]["id"] == aw.tech_employee.pk and t["state"] == "in_use"
    assert [x["code"] for x in api.get("/tools", {"due": "soon"}).json()["items"]] == ["GJ-RG-1"]
    assert api.get("/tools", {"due": "overdue"}).json()["items"] == []
    assert api.get("/tools", {"due": "later"}).status_code == 400
    r = api.post(f"/tools/{t['id']}/calibrations", {"done_on": d(), "result": "pass", "certificate_no": "JL-1"})
    assert r.status_code == 201, r.content
    assert api.get(f"/tools/{t['id']}").json()["due"] == ""
    hist = api.get(f"/tools/{t['id']}/calibrations").json()["items"]
    assert [h["certificate_no"] for h in hist] == ["JL-1"]
    r = api.post(f"/tools/{t['id']}/calibrations", {"done_on": d(1), "result": "pass", "certificate_no": "JL-2"})
    assert r.status_code == 400 and "done_on" in r.json()["errors"]
    r = api.post(f"/tools/{t['id']}/calibrations", {"done_on": "yesterday", "result": "pass"})
    assert r.status_code == 400 and "done_on" in r.json()["errors"]
    r = api.post(f"/tools/{t['id']}/assign", {"holder_id": None})
    assert r.status_code == 200 and r.json()["state"] == "in_store"
    r = api.patch(f"/tools/{t['id']}", {"state": "retired", "note": "报废"})
    assert r.status_code == 200 and r.json()["state"] == "retired"
    assert api.post("/tools/999999/assign", {"holder_id": None}).status_code == 404
    assert Calibration.objects.count() == 1


def test_my_tools(aw):
    tool(aw.pudong, "GJ-1", holder=aw.tech_employee)
    tool(aw.pudong, "GJ-2")
    assert [x["code"] for x in Api(aw.pudong_tech).get("/tools", {"mine": "true"}).json()["items"]] == ["GJ-1"]
    assert Api(aw.pudong_manager).get("/tools", {"mine": "true"}).json()["items"] == []  # holds none


# ---------------------------------------------------------------- query counts

def _count(api, path, params=None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        r = api.get(path, params)
    assert r.status_code == 200, r.content
    return len(ctx.captured_queries)


def _more(w, n, k):
    today = timezone.localdate()
    for i in range(n):
        x = loaner(w.pudong, f"BY-Q-{k}-{i}", w.ac)
        o = repair(w, days=10 + i)
        Loan.objects.create(loaner=x, order=o, node=w.pudong, reason="manager", lent_at=timezone.now(),
                            due_on=today - dt.timedelta(days=1), lent_by=w.pudong_manager)
        repair(w, days=6)  # a candidate
        t = tool(w.pudong, f"GJ-Q-{k}-{i}", holder=w.tech_employee, due_on=today - dt.timedelta(days=1))
        Calibration.objects.create(tool=t, done_on=today - dt.timedelta(days=400 + i), result="pass",
                                   next_due=today - dt.timedelta(days=1), certificate_no=f"C{i}",
                                   recorded_at=timezone.now(), recorded_by=w.pudong_manager)


LISTS = ["/loaners", "/loans", "/loans/overdue", "/loans/candidates", "/tools", "/tools?due=overdue"]


@pytest.mark.parametrize("path", LISTS)
def test_lists_take_a_fixed_number_of_queries(aw, path):
    api = Api(aw.east_manager)
    _more(aw, 2, "a")
    path, _q, query = path.partition("?")
    params = dict([query.split("=")]) if query else {}
    few = _count(api, path, params)
    _more(aw, 5, "b")
    many = _count(api, path, params)
    assert few == many, (path, few, many)
    assert many <= 8, (path, many)


def test_history_takes_a_fixed_number_of_queries(aw):
    api = Api(aw.pudong_manager)
    t = tool(aw.pudong, "GJ-H")
    today = timezone.localdate()
    for i in range(2):
        Calibration.objects.create(tool=t, done_on=today - dt.timedelta(days=800 - i), result="fail",
                                   recorded_at=timezone.now(), recorded_by=aw.pudong_manager)
    few = _count(api, f"/tools/{t.pk}/calibrations")
    for i in range(6):
        Calibration.objects.create(tool=t, done_on=today - dt.timedelta(days=700 - i), result="fail",
                                   recorded_at=timezone.now(), recorded_by=aw.quality)
    assert _count(api, f"/tools/{t.pk}/calibrations") == few <= 6
