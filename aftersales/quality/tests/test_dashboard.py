"""The quality pages: the dashboard per node kind, the drill-down to the orders behind a figure,
the technician's scorecard; permissions, bad input, query counts.

The data set (``qdata``): five orders in the two months before last, with figures worked out by
hand below, turned into facts by ``facts.rebuild()``."""

from __future__ import annotations

import datetime as dt
import json
import re
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from aftersales.conftest import make_node
from aftersales.org.models import Employee, NodeKind
from aftersales.quality import facts, selectors
from aftersales.quality.indicators import INDICATORS
from aftersales.quality.models import Target
from aftersales.tickets.models import OrderEvent, WorkOrder
from aftersales.web.tests import test_browser as wb

pytestmark = pytest.mark.django_db

H, M = dt.timedelta(hours=1), dt.timedelta(minutes=1)


def _order(number, *, node, customer, created, type="repair", channel="phone", status="closed", assignee=None,
           responded=None, response_due=None, completed=None, visits=0, response_breached=False,
           resolve_breached=False, arrive=None):
    o = WorkOrder.objects.create(
        number=number, type=type, channel=channel, status=status, customer=customer, node=node, assignee=assignee,
        problem="不制冷", created_at=created, updated_at=created,
        responded_at=created + responded if responded is not None else None,
        response_due=created + response_due if response_due is not None else None,
        completed_at=created + completed if completed is not None else None, visit_count=visits,
        response_breached=response_breached, resolve_breached=resolve_breached)
    if arrive is not None:
        OrderEvent.objects.create(order=o, seq=1, at=created + arrive, actor_label="tech", action="arrive")
    return o


@pytest.fixture
def qdata(world):
    """Month m0 (two months ago) and m1 (last month), local time:

    ====  ========  ============  =======  ===========  ==============  ====================
    no    outlet    type          tech     responded    resolved        notes
    ====  ========  ============  =======  ===========  ==============  ====================
    P1    pudong    repair        李师傅   +20 min ok   +5 h (closed)   1 visit, arrived +2 h
    P2    pudong    repair (web)  李师傅   +90 min late +50 h           2 visits, breached
    H1    hangzhou  installation  王师傅   +10 min ok   —               dispatched
    P3    pudong    repair        —        —            —               cancelled
    T1    tianhe    complaint     —        +30 min      +10 h (closed)  (m1)
    ====  ========  ============  =======  ===========  ==============  ====================

    HQ over m0..m1: orders 4, on time 3/4 = 75 %, resolved within 48 h 2/4 = 50 %, 1 breach.
    resolved within 48 h per month: m0 1/3 = 33.3 %, m1 1/1 = 100 %. Pudong 50 %, hangzhou 0 %,
    tianhe 100 %; 李师傅 50 %, 王师傅 0 %."""
    w = world
    tz = timezone.get_current_timezone()
    today = timezone.localdate()
    m1 = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    m0 = (m1 - dt.timedelta(days=1)).replace(day=1)
    hz_user = get_user_model().objects.create_user("hangzhou_tech", password="x")
    w.hz_employee = Employee.objects.create(user=hz_user, node=w.hangzhou, employee_no="T0002", name="王师傅",
                                            hire_date=dt.date(2021, 1, 1))

    def at(month, day, hour):
        return dt.datetime(month.year, month.month, day, hour, tzinfo=tz)

    d = SimpleNamespace(m0=m0, m1=m1, start=m0, end=selectors.period_end("month", m1))
    d.p1 = _order("GDQ1", node=w.pudong, customer=w.c_pudong, created=at(m0, 3, 9), assignee=w.tech_employee,
                  responded=20 * M, response_due=60 * M, completed=5 * H, visits=1, arrive=2 * H)
    d.p2 = _order("GDQ2", node=w.pudong, customer=w.c_pudong, created=at(m0, 4, 14), channel="web",
                  status="completed", assignee=w.tech_employee, responded=90 * M, response_due=60 * M,
                  completed=50 * H, visits=2, response_breached=True, resolve_breached=True, arrive=30 * H)
    d.h1 = _order("GDQ3", node=w.hangzhou, customer=w.c_pudong, created=at(m0, 5, 10), type="installation",
                  status="dispatched", assignee=w.hz_employee, responded=10 * M, response_due=60 * M)
    d.p3 = _order("GDQ4", node=w.pudong, customer=w.c_pudong, created=at(m0, 6, 11), status="cancelled")
    d.t1 = _order("GDQ5", node=w.tianhe, customer=w.c_tianhe, created=at(m1, 10, 11), type="complaint",
                  responded=30 * M, completed=10 * H)
    local = timezone.localtime(d.p2.created_at)
    d.p2_slot = local.isoweekday() * 100 + local.hour
    facts.rebuild()
    d.range = {"start": d.start.isoformat(), "end": d.end.isoformat()}
    return d


def login(client, user):
    client.force_login(user)
    return client


def charts_of(resp) -> dict:
    m = re.search(r'<script id="q-charts-data" type="application/json">(.*?)</script>', resp.content.decode(), re.S)
    assert m, "no chart data in the page"
    return json.loads(m.group(1))["charts"]


def tile(resp, code) -> dict:
    return next(t for t in resp.context["tiles"] if t["code"] == code)


# ---------------------------------------------------------------- the dashboard per node kind

def test_hq_dashboard_shows_every_indicator_compares_centres_and_ranks_outlets(client, world, qdata):
    resp = login(client, world.hq_manager).get(reverse("quality:dashboard"), qdata.range)
    assert resp.status_code == 200
    assert resp.context["node"] == world.hq
    assert {t["code"] for t in resp.context["tiles"]} == set(INDICATORS)
    assert tile(resp, "orders")["value"] == 4
    t = tile(resp, "response_on_time_rate")
    assert t["value"] == 75.0 and t["target"] == 95 and t["status"] == "red"
    assert tile(resp, "resolved_48h_rate")["value"] == 50.0
    assert tile(resp, "sla_breaches")["value"] == 1
    # no orders the two months before: no delta
    assert tile(resp, "orders")["previous"] == 0 and tile(resp, "orders")["delta"] == 4
    assert tile(resp, "response_on_time_rate")["delta"] is None
    body = resp.content.decode()
    assert 'data-code="response_on_time_rate" data-status="red"' in body and "75.0%" in body
    # centres compared, all outlets ranked (best first), no technicians at HQ
    assert [r["node"] for r in resp.context["compare"]] == [world.east, world.south]
    assert [(r["name"], r["value"]) for r in resp.context["outlets"]] == [
        ("广州天河网点", 100.0), ("上海浦东网点", 50.0), ("杭州西湖网点", 0.0)]
    assert 'data-testid="rank-technicians"' not in body
    charts = charts_of(resp)
    rank = charts["rank-outlets"]
    assert rank["values"] == [100.0, 50.0, 0.0] and rank["colours"] == ["#16a34a", "#dc2626", "#dc2626"]
    assert rank["q"] == [{"node": world.tianhe.pk}, {"node": world.pudong.pk}, {"node": world.hangzhou.pk}]
    trend = charts["trend-resolved_48h_rate"]
    assert trend["values"] == [33.3, 100.0] and trend["target"] == 85
    assert trend["labels"] == [f"{qdata.m0:%Y-%m}", f"{qdata.m1:%Y-%m}"]
    assert trend["q"][1] == {"start": qdata.m1.isoformat(), "end": qdata.end.isoformat()}
    heat = charts["heatmap"]
    assert heat["data"] == [[qdata.p2_slot % 100, qdata.p2_slot // 100 - 1, 1]]
    assert heat["q"] == [{"key": str(qdata.p2_slot)}] and "dim=slot" in heat["drill"]
    by_type = charts["breakdown-type"]
    assert by_type["type"] == "pie" and dict(zip(by_type["labels"], by_type["values"], strict=True)) == {
        "维修": 2, "安装": 1, "投诉": 1}
    by_channel = charts["breakdown-channel"]
    assert dict(zip(by_channel["labels"], by_channel["values"], strict=True)) == {"电话": 3, "网站": 1}


def test_centre_dashboard_compares_outlets_and_ranks_technicians(client, world, qdata):
    resp = login(client, world.east_manager).get(reverse("quality:dashboard"),
                                                 {**qdata.range, "rank": "response_on_time_rate"})
    assert resp.status_code == 200 and resp.context["node"] == world.east
    assert tile(resp, "orders")["value"] == 3
    assert tile(resp, "response_on_time_rate")["value"] == 66.7
    assert [r["node"] for r in resp.context["compare"]] == [world.pudong, world.hangzhou]
    assert [(r["name"], r["value"]) for r in resp.context["technicians"]] == [("王师傅", 100.0), ("李师傅", 50.0)]
    charts = charts_of(resp)
    assert charts["rank-technicians"]["q"] == [{"key": str(world.hz_employee.pk)}, {"key": str(world.tech_employee.pk)}]
    assert "dim=assignee" in charts["rank-technicians"]["drill"]
    body = resp.content.decode()
    assert reverse("quality:scorecard_person", args=[world.tech_employee.pk]) in body


def test_outlet_dashboard_ranks_its_technicians_only(client, world, qdata):
    resp = login(client, world.pudong_manager).get(reverse("quality:dashboard"), qdata.range)
    assert resp.status_code == 200 and resp.context["node"] == world.pudong
    assert tile(resp, "orders")["value"] == 2 and tile(resp, "response_on_time_rate")["value"] == 50.0
    assert resp.context["compare"] == [] and resp.context["outlets"] == []
    body = resp.content.decode()
    assert 'data-testid="rank-outlets"' not in body and 'data-testid="rank-technicians"' in body
    assert [r["name"] for r in resp.context["technicians"]] == ["李师傅"]
    # the node picker holds the outlet only
    assert [n["id"] for n in resp.context["nodes"]] == [world.pudong.pk]


def test_quality_supervisor_sees_their_centre_and_can_pick_a_node_below(client, world, qdata):
    c = login(client, world.quality)
    resp = c.get(reverse("quality:dashboard"), qdata.range)
    assert resp.status_code == 200 and resp.context["node"] == world.east
    resp = c.get(reverse("quality:dashboard"), {**qdata.range, "node": world.hangzhou.pk, "grain": "week"})
    assert resp.status_code == 200 and resp.context["node"] == world.hangzhou
    assert tile(resp, "orders")["value"] == 1
    assert c.get(reverse("quality:dashboard"), {"node": world.tianhe.pk}).status_code == 404


def test_node_targets_colour_the_figures(client, world, qdata):
    Target.objects.create(indicator="response_on_time_rate", node=world.east, target=60, amber=5)
    resp = login(client, world.hq_manager).get(reverse("quality:dashboard"), qdata.range)
    east = next(r for r in resp.context["compare"] if r["node"] == world.east)
    fig = next(f for f in east["figures"] if f["code"] == "response_on_time_rate")
    assert fig["value"] == 66.7 and fig["target"] == 60.0 and fig["status"] == "green"
    assert tile(resp, "response_on_time_rate")["target"] == 95  # HQ keeps the default


@pytest.mark.parametrize("grain", ["day", "week", "month", "quarter", "year"])
def test_every_grain_renders(client, world, qdata, grain):
    resp = login(client, world.hq_manager).get(reverse("quality:dashboard"), {**qdata.range, "grain": grain})
    assert resp.status_code == 200
    assert tile(resp, "orders")["value"] == 4
    trend = charts_of(resp)["trend-response_on_time_rate"]
    assert len(trend["labels"]) == len(resp.context["range"].periods)


def test_default_range_is_the_last_twelve_months(client, world, qdata):
    resp = login(client, world.hq_manager).get(reverse("quality:dashboard"))
    rng = resp.context["range"]
    assert rng.grain == "month" and len(rng.periods) == 12 and rng.end >= timezone.localdate()
    assert tile(resp, "orders")["value"] == 4


def test_permissions(client, world, qdata):
    assert client.get(reverse("quality:dashboard")).status_code == 302  # to the log-in page
    for user in (world.pudong_tech, world.pudong_agent, world.trainer):
        login(client, user)
        assert client.get(reverse("quality:dashboard")).status_code == 403, user
        assert client.get(reverse("quality:drill"), {"code": "orders"}).status_code == 403, user
    login(client, world.pudong_tech)
    assert client.get(reverse("quality:scorecard_me")).status_code == 200
    assert client.get(reverse("quality:scorecard_person", args=[world.tech_employee.pk])).status_code == 403
    login(client, world.hq_manager)
    assert client.get(reverse("quality:scorecard_me")).status_code == 403


def test_nav_and_home_link(client, world):
    body = login(client, world.east_manager).get(reverse("web:home")).content.decode()
    assert body.count(f'href="{reverse("quality:dashboard")}"') == 2  # the nav and the home section
    body = login(client, world.pudong_tech).get(reverse("web:home")).content.decode()
    assert reverse("quality:scorecard_me") in body and f'href="{reverse("quality:dashboard")}"' not in body


@pytest.mark.parametrize("params, field", [
    ({"grain": "hour"}, "grain"),
    ({"start": "2025-13-01"}, "start"),
    ({"start": "2025-06-01", "end": "2025-05-01"}, "end"),
    ({"grain": "day", "start": "2023-01-01", "end": "2025-12-31"}, "start"),
    ({"start": "1900-01-01"}, "start"),
    ({"trend": "nope"}, "trend"),
    ({"rank": "nope"}, "rank"),
    ({"bcode": "x" * 60}, "bcode"),
    ({"node": "abc"}, "node"),
])
def test_bad_input_is_a_400_naming_the_field(client, world, params, field):
    resp = login(client, world.hq_manager).get(reverse("quality:dashboard"), params)
    assert resp.status_code == 400
    assert field in resp.context["errors"]
    assert f'data-field="{field}"' in resp.content.decode()


def test_bad_input_in_english(client, world):
    login(client, world.hq_manager)
    resp = client.get(reverse("quality:dashboard"), {"start": "2025-06-01", "end": "2025-05-01"},
                      HTTP_ACCEPT_LANGUAGE="en")
    assert resp.status_code == 400 and resp.context["errors"]["end"]


def test_dashboard_queries_do_not_grow_with_nodes_or_periods(client, world, qdata, django_assert_max_num_queries):
    login(client, world.hq_manager)
    url = reverse("quality:dashboard")

    def count(params):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url, params).status_code == 200
        return len(ctx.captured_queries)

    small = count({"start": qdata.m1.isoformat(), "end": qdata.end.isoformat()})
    assert count({"start": "2024-01-01", "end": qdata.end.isoformat()}) == small
    days = count({"start": qdata.end.isoformat(), "end": qdata.end.isoformat(), "grain": "day"})
    assert count({**qdata.range, "grain": "day"}) == days
    added = []
    for i in range(6):
        outlet = make_node(NodeKind.OUTLET, f"X{i}", f"新网点{i}", world.east)
        added.append(_order(f"GDX{i}", node=outlet, customer=world.c_pudong,
                            created=timezone.now() - dt.timedelta(days=40), responded=5 * M).pk)
    facts.refresh_orders(added)
    assert count(qdata.range) == small
    # about 30 statements on SQLite; on PostgreSQL each figure query also sets its session knobs
    # (jit, work_mem) inside a savepoint: 4 statements a query
    with django_assert_max_num_queries(70):
        client.get(url, qdata.range)


# ---------------------------------------------------------------- drill-down

def _drill(client, **params):
    return client.get(reverse("quality:drill"), params)


def numbers(resp) -> list[str]:
    return [r["number"] for r in resp.context["rows"]]


def test_drill_lists_the_orders_behind_a_figure(client, world, qdata):
    c = login(client, world.hq_manager)
    resp = _drill(c, code="resolved_48h_rate", node=world.hq.pk, **qdata.range)
    assert resp.status_code == 200
    assert numbers(resp) == ["GDQ3", "GDQ2"]  # newest first; the cancelled one is not counted
    assert resp.context["count"] == 2 and resp.context["value_text"] == "50.0%"
    body = resp.content.decode()
    assert f'href="{reverse("web:order_detail", args=[qdata.p2.pk])}"' in body
    assert 'data-field="resolved_48h"' in body and "李师傅" in body and "王师傅" in body
    # the whole population
    resp = _drill(c, code="resolved_48h_rate", node=world.hq.pk, against="0", **qdata.range)
    assert numbers(resp) == ["GDQ5", "GDQ3", "GDQ2", "GDQ1"] and resp.context["count"] == 4
    assert 'data-testid="against-on"' in resp.content.decode()
    # raise an improvement action from the figure (the form is prefilled with it)
    raise_url = re.search(r'href="([^"]+)" data-testid="raise-action"', body).group(1).replace("&amp;", "&")
    assert raise_url.startswith(reverse("quality:action_new")) and "source=figure" in raise_url
    form = c.get(raise_url).context["form"]
    assert (form["indicator"], form["node_id"], form["period_from"]) == ("resolved_48h_rate", str(world.hq.pk),
                                                                         qdata.range["start"])
    assert 'data-testid="raise-action"' not in login(client, world.pudong_manager).get(
        reverse("quality:drill"), {"code": "orders"}).content.decode()  # quality.view only


def test_drill_by_breakdown_keys(client, world, qdata):
    c = login(client, world.east_manager)
    resp = _drill(c, code="response_on_time_rate", node=world.east.pk, dim="assignee",
                  key=str(world.tech_employee.pk), **qdata.range)
    assert numbers(resp) == ["GDQ2"] and resp.context["key_label"] == "李师傅"
    assert resp.context["value_text"] == "50.0%"
    resp = _drill(c, code="sla_breaches", node=world.east.pk, dim="slot", key=str(qdata.p2_slot), **qdata.range)
    assert numbers(resp) == ["GDQ2"] and 'data-testid="against-on"' not in resp.content.decode()
    resp = _drill(c, code="orders", node=world.east.pk, dim="type", key="installation", **qdata.range)
    assert numbers(resp) == ["GDQ3"] and resp.context["key_label"] == "安装"
    # a trend point: one month
    resp = _drill(c, code="orders", node=world.east.pk, start=qdata.m1.isoformat(), end=qdata.end.isoformat())
    assert numbers(resp) == []


def test_drill_scope_and_bad_input(client, world, qdata):
    c = login(client, world.east_manager)
    assert _drill(c, code="orders", node=world.tianhe.pk, **qdata.range).status_code == 404
    assert _drill(c, code="orders", node=world.south.pk, **qdata.range).status_code == 404
    for params, field in [({"code": "nope"}, "code"), ({"code": "orders", "dim": "colour"}, "dim"),
                          ({"code": "orders", "key": "1"}, "dim"),
                          ({"code": "orders", "start": "2025-06-01", "end": "2025-05-01"}, "end"),
                          ({"code": "orders", "cursor": "garbage"}, "cursor"),
                          ({"code": "orders", "dim": "model", "key": "abc"}, "key")]:
        resp = _drill(c, **params)
        assert resp.status_code == 400, params
        assert field in resp.context["errors"], params


def test_drill_pages_with_a_fixed_number_of_queries(client, world, qdata, django_assert_max_num_queries):
    from aftersales.quality import views_dashboard

    c = login(client, world.hq_manager)
    params = {"code": "orders", "node": world.hq.pk, "start": "2020-01-01", "end": qdata.end.isoformat()}

    def count():
        with CaptureQueriesContext(connection) as ctx:
            resp = _drill(c, **params)
        assert resp.status_code == 200
        return len(ctx.captured_queries), resp

    n5, resp = count()
    assert len(resp.context["rows"]) == 4
    created = dt.datetime(qdata.m1.year, qdata.m1.month, 20, 12, tzinfo=timezone.get_current_timezone())
    added = [_order(f"GDM{i:03d}", node=world.tianhe, customer=world.c_tianhe, created=created - i * M,
                    assignee=world.tech_employee).pk for i in range(60)]
    facts.refresh_orders(added)
    n50, resp = count()
    assert len(resp.context["rows"]) == views_dashboard.PAGE_SIZE and resp.context["next_cursor"]
    assert n50 == n5
    with django_assert_max_num_queries(12):
        more = c.get(reverse("quality:drill"), {**params, "cursor": resp.context["next_cursor"]},
                     HTTP_HX_REQUEST="true")
    assert more.status_code == 200 and len(more.context["rows"]) == 14
    assert "<tr" in more.content.decode() and "<html" not in more.content.decode()


# ---------------------------------------------------------------- scorecards

def test_technician_scorecard(client, world, qdata):
    resp = login(client, world.pudong_tech).get(reverse("quality:scorecard_me"))
    assert resp.status_code == 200 and resp.context["employee"] == world.tech_employee
    rows = {r["code"]: r for r in resp.context["rows"]}
    assert "cost_share" not in rows and "repairs_per_1000" not in rows  # node-level figures
    assert rows["orders"]["value"] == 2 and rows["orders"]["outlet"] == 2
    assert rows["response_on_time_rate"]["value"] == 50.0 and rows["response_on_time_rate"]["status"] == "red"
    assert rows["resolved_48h_rate"]["value"] == 50.0
    assert len(resp.context["periods"]) == 6
    chart = charts_of(resp)["orders"]
    assert chart["type"] == "compare" and len(chart["labels"]) == 6
    i = chart["labels"].index(f"{qdata.m0:%Y-%m}")
    assert chart["series"][0]["values"][i] == 2 and chart["series"][1]["name"] == "上海浦东网点"


def test_manager_opens_a_technicians_scorecard_in_scope(client, world, qdata):
    url = reverse("quality:scorecard_person", args=[world.hz_employee.pk])
    resp = login(client, world.east_manager).get(url)
    assert resp.status_code == 200 and resp.context["employee"] == world.hz_employee
    rows = {r["code"]: r for r in resp.context["rows"]}
    assert rows["orders"]["value"] == 1 and rows["response_on_time_rate"]["value"] == 100.0
    assert login(client, world.pudong_manager).get(url).status_code == 404
    assert client.get(reverse("quality:scorecard_person", args=[999999])).status_code == 404


def test_scorecard_without_an_employee_file(client, world):
    from aftersales.conftest import make_user
    from aftersales.org.roles import Role

    user = make_user("new_tech", Role.TECHNICIAN, world.pudong)
    resp = login(client, user).get(reverse("quality:scorecard_me"))
    assert resp.status_code == 200 and "尚未关联员工档案" in resp.content.decode()


# ---------------------------------------------------------------- in the browser

chromium, shots = wb.chromium, wb.shots  # fixtures: headless Chromium, the screenshot folder


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_charts_draw_and_a_click_drills_down(world, qdata, live_server, chromium, shots):
    try:
        with wb.signed_in(chromium, live_server, shots, "hq_manager", height=1000) as (_context, page):
            page.goto(f"{live_server.url}{reverse('quality:dashboard')}?start={qdata.range['start']}"
                      f"&end={qdata.range['end']}")
            page.locator('[data-qchart="trend-resolved_48h_rate"] svg').wait_for(state="attached")
            drawn, empty = page.locator("[data-qchart] svg").count(), page.locator(".q-chart-empty").count()
            assert drawn + empty == page.locator("[data-qchart]").count() and drawn >= 8
            assert page.locator('[data-qchart="trend-sat_overall"]').inner_text() == "暂无数据"  # no surveys
            page.screenshot(path=str(shots / "quality-dashboard.png"), full_page=True)
            # click the second month's point of the trend: the orders of that month behind the figure
            x, y = page.evaluate("""() => {
                const el = document.querySelector('[data-qchart="trend-resolved_48h_rate"]');
                el.scrollIntoView({block: "center"});  // clear of the sticky top bar
                const p = echarts.getInstanceByDom(el).convertToPixel({seriesIndex: 0}, [1, 100]);
                const r = el.getBoundingClientRect();
                return [r.left + p[0], r.top + p[1]];
            }""")
            page.mouse.click(x, y)
            page.wait_for_url("**/quality/drill/**")
            assert f"start={qdata.m1.isoformat()}" in page.url and "code=resolved_48h_rate" in page.url
            assert page.locator('[data-testid="count"]').inner_text().strip() == "0"  # T1 was resolved in time
            page.click('[data-testid="against-off"]')
            page.wait_for_load_state()
            assert page.locator('[data-testid="drill-row"]').all_inner_texts()[0].startswith("GDQ5")
    finally:
        connections.close_all()
