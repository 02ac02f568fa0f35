"""The quality API (/api/quality/): the registry, dashboard tiles, series, breakdowns, rankings,
the drill-down and the scorecards; permissions, scope, bad input, query counts. Same data set
as the pages (``qdata`` of test_dashboard, figures worked out by hand there)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aftersales.api.permissions import REGISTRY
from aftersales.api.tests.conftest import ApiClient, errors_of
from aftersales.quality import facts
from aftersales.quality.indicators import INDICATORS

from . import test_dashboard

_order = test_dashboard._order
qdata = test_dashboard.qdata  # the data set of the page tests, as a fixture here too

pytestmark = pytest.mark.django_db


def test_every_operation_declares_its_permission():
    schema = ApiClient().get("/openapi.json").json()  # (mounts the routers)
    prefix = "aftersales_quality_api_"
    ours = {k: r.perm for k, r in REGISTRY.items()
            if k.startswith(prefix) and not k.startswith((f"{prefix}improve_", f"{prefix}reports_"))}
    assert ours == {
        "aftersales_quality_api_indicators": "quality.view",
        "aftersales_quality_api_dashboard": "quality.view",
        "aftersales_quality_api_series": "quality.view",
        "aftersales_quality_api_breakdown": "quality.view",
        "aftersales_quality_api_ranking": "quality.view",
        "aftersales_quality_api_drill": "quality.view",
        "aftersales_quality_api_scorecard_me": "order.work",
        "aftersales_quality_api_scorecard": "quality.view",
    }
    assert schema["paths"]["/api/quality/dashboard"]["get"]["x-permission"] == "quality.view"
    assert schema["paths"]["/api/quality/scorecard/me"]["get"]["x-permission"] == "order.work"


def test_indicators_registry(world):
    resp = ApiClient(world.quality).get("/quality/indicators")
    assert resp.status_code == 200
    rows = {r["code"]: r for r in resp.json()}
    assert set(rows) == set(INDICATORS)
    r = rows["solved_24h_rate"]
    assert r["unit"] == "%" and r["better"] == "higher" and r["target"] == 90 and r["group"] == "resolution"
    assert r["label"] == "首次响应后24小时解决率" and "≥ 90%" in r["formula"] and r["group_label"] == "解决"
    assert rows["orders"]["better"] == "" and rows["orders"]["target"] is None


def test_dashboard_tiles(world, qdata):
    resp = ApiClient(world.hq_manager).get("/quality/dashboard", qdata.range)
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["node"]["code"] == "HQ" and body["grain"] == "month"
    assert body["start"] == qdata.range["start"] and body["end"] == qdata.range["end"]
    prev_end = qdata.m0 - dt.timedelta(days=1)
    prev_start = (prev_end.replace(day=1) - dt.timedelta(days=1)).replace(day=1)  # two months back
    assert (body["previous_start"], body["previous_end"]) == (prev_start.isoformat(), prev_end.isoformat())
    tiles = {t["code"]: t for t in body["tiles"]}
    assert set(tiles) == set(INDICATORS)
    t = tiles["response_on_time_rate"]
    assert (t["value"], t["target"], t["status"], t["text"]) == (75.0, 95.0, "red", "75.0%")
    assert t["drill"] == {"code": "response_on_time_rate", "node": world.hq.pk, **qdata.range, "dim": "", "key": ""}
    assert tiles["orders"]["value"] == 4 and tiles["orders"]["previous"] == 0 and tiles["orders"]["delta"] == 4
    assert tiles["resolved_48h_rate"]["value"] == 50.0 and tiles["sla_breaches"]["value"] == 1
    # a node below, in scope
    resp = ApiClient(world.east_manager).get("/quality/dashboard", {**qdata.range, "node": world.pudong.pk})
    assert {t["code"]: t["value"] for t in resp.json()["tiles"]}["orders"] == 2


def test_series(world, qdata):
    resp = ApiClient(world.hq_manager).get(
        "/quality/series", {**qdata.range, "codes": ["resolved_48h_rate", "orders"]})
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert [p["label"] for p in body["periods"]] == [f"{qdata.m0:%Y-%m}", f"{qdata.m1:%Y-%m}"]
    s = {x["code"]: x for x in body["series"]}
    assert s["resolved_48h_rate"]["values"] == [33.3, 100.0] and s["resolved_48h_rate"]["target"] == 85
    assert s["orders"]["values"] == [3, 1]
    weeks = ApiClient(world.hq_manager).get("/quality/series", {**qdata.range, "grain": "week", "codes": "orders"})
    assert sum(weeks.json()["series"][0]["values"]) == 4


def test_breakdown_and_ranking(world, qdata):
    c = ApiClient(world.east_manager)
    resp = c.get("/quality/breakdown", {**qdata.range, "dim": "type", "code": "orders"})
    assert resp.status_code == 200, resp.content
    items = {i["key"]: (i["label"], i["value"], i["orders"]) for i in resp.json()["items"]}
    assert items == {"repair": ("维修", 2, 2), "installation": ("安装", 1, 1)}
    resp = c.get("/quality/breakdown", {**qdata.range, "dim": "assignee", "code": "response_on_time_rate"})
    assert [(i["label"], i["value"]) for i in resp.json()["items"]] == [("王师傅", 100.0), ("李师傅", 50.0)]

    resp = c.get("/quality/ranking", {**qdata.range, "level": "outlets", "code": "resolved_48h_rate"})
    assert resp.status_code == 200, resp.content
    assert [(i["name"], i["value"], i["status"]) for i in resp.json()["items"]] == [
        ("上海浦东网点", 50.0, "red"), ("杭州西湖网点", 0.0, "red")]
    resp = c.get("/quality/ranking", {**qdata.range, "level": "technicians", "code": "response_on_time_rate"})
    body = resp.json()
    assert [(i["name"], i["value"]) for i in body["items"]] == [("王师傅", 100.0), ("李师傅", 50.0)]
    assert body["items"][1]["drill"]["dim"] == "assignee" and body["label"] == "响应及时率"


def test_drill_lists_orders_and_pages_with_fixed_queries(world, qdata):
    c = ApiClient(world.hq_manager)
    resp = c.get("/quality/drill", {**qdata.range, "code": "resolved_48h_rate", "node": world.hq.pk})
    assert resp.status_code == 200, resp.content
    items = resp.json()["items"]
    assert [i["number"] for i in items] == ["GDQ3", "GDQ2"]
    p2 = items[1]
    assert p2["url"] == f"/orders/{qdata.p2.pk}/" and p2["assignee"]["name"] == "李师傅"
    assert p2["node"]["code"] == "SH-PD" and p2["type_label"] == "维修" and p2["status"] == "completed"
    assert {f["field"]: f["value"] for f in p2["facts"]} == {"resolved_48h": 0, "resolve_min": 3000}
    assert {f["field"]: f["text"] for f in items[0]["facts"]} == {"resolved_48h": "否", "resolve_min": "—"}
    everyone = c.get("/quality/drill", {**qdata.range, "code": "resolved_48h_rate", "against": "false"}).json()
    assert len(everyone["items"]) == 4

    params = {"code": "orders", "start": "2020-01-01", "end": qdata.range["end"], "limit": 50}

    def count():
        with CaptureQueriesContext(connection) as ctx:
            r = c.get("/quality/drill", params)
        assert r.status_code == 200, r.content
        return len(ctx.captured_queries), r.json()

    n4, page = count()
    assert len(page["items"]) == 4 and page["next_cursor"] is None
    created = dt.datetime(qdata.m1.year, qdata.m1.month, 20, 12, tzinfo=timezone.get_current_timezone())
    added = [_order(f"GDA{i:03d}", node=world.tianhe, customer=world.c_tianhe,
                    created=created - i * dt.timedelta(minutes=1), assignee=world.tech_employee).pk for i in range(60)]
    facts.refresh_orders(added)
    n50, page = count()
    assert len(page["items"]) == 50 and page["next_cursor"] and n50 == n4
    rest = c.get("/quality/drill", {**params, "cursor": page["next_cursor"]}).json()
    assert len(rest["items"]) == 14 and rest["next_cursor"] is None


def test_dashboard_queries_do_not_grow_with_periods(world, qdata):
    c = ApiClient(world.hq_manager)

    def count(path, params):
        with CaptureQueriesContext(connection) as ctx:
            assert c.get(path, params).status_code == 200
        return len(ctx.captured_queries)

    for path, extra in [("/quality/dashboard", {}), ("/quality/series", {"codes": ["orders", "ftf_rate"]}),
                        ("/quality/ranking", {"level": "outlets"})]:
        short = count(path, {**extra, "start": qdata.m1.isoformat(), "end": qdata.range["end"]})
        assert count(path, {**extra, "start": "2020-01-01", "end": qdata.range["end"]}) == short, path
        assert short <= 20, path


def test_scorecards(world, qdata):
    resp = ApiClient(world.pudong_tech).get("/quality/scorecard/me")
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["employee"]["employee_no"] == "T0001" and body["node"]["code"] == "SH-PD"
    assert len(body["periods"]) == 6
    rows = {r["code"]: r for r in body["rows"]}
    assert "cost_share" not in rows
    r = rows["response_on_time_rate"]
    assert (r["value"], r["outlet"], r["target"], r["status"], r["diff"]) == (50.0, 50.0, 95.0, "red", 0.0)
    i = [p["label"] for p in body["periods"]].index(f"{qdata.m0:%Y-%m}")
    assert rows["orders"]["monthly"][i] == 2 and rows["orders"]["outlet_monthly"][i] == 2

    url = f"/quality/scorecard/{world.hz_employee.pk}"
    assert ApiClient(world.east_manager).get(url).json()["rows"][0]["code"] == "orders"
    assert ApiClient(world.pudong_manager).get(url).status_code == 404
    assert ApiClient(world.pudong_tech).get(url).status_code == 403
    assert ApiClient(world.hq_manager).get("/quality/scorecard/me").status_code == 403


def test_permissions_and_scope(world, qdata):
    assert ApiClient().get("/quality/dashboard").status_code == 401
    for user in (world.pudong_tech, world.pudong_agent, world.trainer):
        for path in ("/quality/indicators", "/quality/dashboard", "/quality/drill?code=orders"):
            assert ApiClient(user).get(path).status_code == 403, (user, path)
    east = ApiClient(world.east_manager)
    for path in ("/quality/dashboard", "/quality/series", "/quality/ranking"):
        resp = east.get(path, {"node": world.tianhe.pk})
        assert resp.status_code == 404 and resp.json()["code"] == "not_found", path
    assert east.get("/quality/breakdown", {"node": world.south.pk, "dim": "type"}).status_code == 404
    assert east.get("/quality/drill", {"node": world.tianhe.pk, "code": "orders"}).status_code == 404


@pytest.mark.parametrize("path, params, field", [
    ("/quality/dashboard", {"grain": "hour"}, "grain"),
    ("/quality/dashboard", {"start": "2025-02-30"}, "start"),
    ("/quality/dashboard", {"start": "2025-06-01", "end": "2025-05-01"}, "end"),
    ("/quality/dashboard", {"grain": "day", "start": "2023-01-01", "end": "2025-12-31"}, "start"),
    ("/quality/dashboard", {"end": "9999-12-31"}, "end"),
    ("/quality/dashboard", {"node": "abc"}, "node"),
    ("/quality/dashboard", {"node": "0"}, "node"),
    ("/quality/series", {"codes": ["orders", "nope"]}, "codes"),
    ("/quality/breakdown", {"dim": "colour"}, "dim"),
    ("/quality/breakdown", {"code": "nope", "dim": "type"}, "code"),
    ("/quality/breakdown", {}, "dim"),
    ("/quality/ranking", {"level": "people"}, "level"),
    ("/quality/ranking", {"code": "x" * 41}, "code"),
    ("/quality/drill", {}, "code"),
    ("/quality/drill", {"code": "orders", "dim": "model", "key": "abc"}, "key"),
    ("/quality/drill", {"code": "orders", "key": "1"}, "dim"),
    ("/quality/drill", {"code": "orders", "cursor": "garbage"}, "cursor"),
    ("/quality/drill", {"code": "orders", "limit": "0"}, "limit"),
    ("/quality/drill", {"code": "orders", "start": "2025-06-01", "end": "2025-05-01"}, "end"),
])
def test_bad_input_is_a_400_naming_the_field(world, path, params, field):
    resp = ApiClient(world.hq_manager).get(path, params)
    assert resp.status_code == 400, resp.content
    errors = errors_of(resp)
    assert field in errors and all(errors[field]), errors


def test_errors_in_the_callers_language(world):
    c = ApiClient(world.hq_manager)
    zh = errors_of(c.get("/quality/dashboard", {"start": "2025-06-01", "end": "2025-05-01"}))["end"][0]
    assert zh == "结束日期不能早于开始日期。"
    assert errors_of(c.get("/quality/breakdown", {"dim": "type", "code": "nope"}))["code"][0] == "未知的指标：nope。"
