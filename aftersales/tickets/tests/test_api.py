"""``/api/orders/``: lists with filters and a fixed query count, one order as each reader sees
it, intake, moves with their 4xx answers, notes, photos, the confirmation, the intake's helpers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aftersales.api.tests.conftest import ApiClient, errors_of
from aftersales.tickets import services, workflow
from aftersales.tickets.models import OrderEvent, WorkOrder

from .order_fixtures import *  # noqa: F403
from .order_fixtures import PATHS, make_order, walk

pytestmark = pytest.mark.usefixtures("quiet")

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200


def numbers(resp) -> list[str]:
    assert resp.status_code == 200, resp.content
    return [row["number"] for row in resp.json()["items"]]


@pytest.fixture
def some(team):
    """Orders of Pudong in several statuses, one of Hangzhou's, one of Tianhe's."""
    w = team
    out = {s: walk(w, make_order(w), PATHS[s]) for s in ("received", "accepted", "closed", "cancelled")}
    out["consultation"] = make_order(w, type="consultation", unit_id=None, fault_category=None)
    out["tianhe"] = services.order_create(user=w.tianhe_agent, customer_id=w.c_tianhe.pk, type="repair",
                                          channel="phone", problem="洗衣机不脱水", unit_id=w.u_tianhe.pk)
    out["hangzhou"] = workflow.move(make_order(w).pk, "transfer", user=w.pudong_agent, node_id=w.hangzhou.pk,
                                    reason="客户搬家")
    out["manager"] = make_order(w, user=w.pudong_manager)
    return out


# ---------------------------------------------------------------- lists

def test_each_reader_sees_their_orders_newest_first(team, some):
    w = team
    pudong = {some[k].number for k in ("received", "accepted", "closed", "cancelled", "consultation", "manager")}
    assert set(numbers(ApiClient(w.pudong_dispatcher).get("/orders/"))) == pudong
    # the agent also sees the order they own that went to Hangzhou
    agent = numbers(ApiClient(w.pudong_agent).get("/orders/"))
    assert set(agent) == pudong | {some["hangzhou"].number}
    assert agent == sorted(agent, reverse=True)
    assert set(numbers(ApiClient(w.hangzhou_agent).get("/orders/"))) == {some["hangzhou"].number}
    assert len(numbers(ApiClient(w.admin).get("/orders/"))) == 8
    # the technician: the orders assigned to them; the customer: their own
    assert set(numbers(ApiClient(w.pudong_tech).get("/orders/"))) == {some[k].number for k in ("accepted", "closed")}
    assert len(numbers(ApiClient(w.customer_user).get("/orders/"))) == 7
    assert numbers(ApiClient(w.customer_user_tianhe).get("/orders/")) == [some["tianhe"].number]
    for user in (w.nobody, w.trainer):
        assert ApiClient(user).get("/orders/").status_code == 403
    assert ApiClient().get("/orders/").status_code == 401


def test_filters(team, some):
    w = team
    c = ApiClient(w.admin)
    assert numbers(c.get("/orders/", {"status": "accepted"})) == [some["accepted"].number]
    assert numbers(c.get("/orders/", {"type": "consultation"})) == [some["consultation"].number]
    assert set(numbers(c.get("/orders/", {"node": w.east.pk}))) == set(numbers(c.get("/orders/"))) - {
        some["tianhe"].number}
    assert numbers(c.get("/orders/", {"node": w.tianhe.pk})) == [some["tianhe"].number]
    assert len(numbers(c.get("/orders/", {"open": "true"}))) == 6
    assert set(numbers(ApiClient(w.pudong_manager).get("/orders/", {"mine": "true"}))) == {some["manager"].number}
    assert set(numbers(c.get("/orders/", {"assignee": w.tech_employee.pk}))) == {
        some[k].number for k in ("accepted", "closed")}
    assert numbers(c.get("/orders/", {"sla_state": "breached"})) == []
    today = timezone.localdate()
    assert len(numbers(c.get("/orders/", {"date_from": today, "date_to": today}))) == 8
    assert numbers(c.get("/orders/", {"date_from": today + dt.timedelta(days=1)})) == []
    assert numbers(c.get("/orders/", {"q": some["tianhe"].number})) == [some["tianhe"].number]
    assert numbers(c.get("/orders/", {"q": some["tianhe"].number.lower()})) == [some["tianhe"].number]
    assert len(numbers(c.get("/orders/", {"q": some["tianhe"].number[:10]}))) == 8
    assert numbers(c.get("/orders/", {"q": "13987654321"})) == [some["tianhe"].number]
    assert numbers(c.get("/orders/", {"q": "139876"})) == [some["tianhe"].number]
    assert numbers(c.get("/orders/", {"q": "王"})) == [some["tianhe"].number]
    assert numbers(c.get("/orders/", {"customer": w.c_tianhe.pk})) == [some["tianhe"].number]


def test_bad_filters_are_400(team):
    c = ApiClient(team.admin)
    for params, field in [({"status": "lost"}, "status"), ({"type": "x"}, "type"), ({"node": 0}, "node"),
                          ({"node": 10**9}, "node_id"), ({"date_from": "2026-13-01"}, "date_from"),
                          ({"date_from": "2026-05-02", "date_to": "2026-05-01"}, "date_to"),
                          ({"cursor": "garbage"}, "cursor"), ({"limit": 0}, "limit")]:
        r = c.get("/orders/", params)
        assert r.status_code == 400 and field in errors_of(r), (params, r.content)


def test_keyset_pages(team, some):
    c = ApiClient(team.admin)
    seen, cursor = [], None
    while True:
        r = c.get("/orders/", {"limit": 3, **({"cursor": cursor} if cursor else {})})
        seen += numbers(r)
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert seen == numbers(c.get("/orders/")) and len(seen) == 8


def _list_queries(user, n) -> int:
    c = ApiClient(user)
    with CaptureQueriesContext(connection) as ctx:
        r = c.get("/orders/", {"limit": n})
    assert r.status_code == 200 and len(r.json()["items"]) == n
    return len(ctx)


def test_the_list_costs_the_same_queries_for_5_and_50_rows(team, django_assert_max_num_queries):
    w = team
    start, end = (timezone.now() + dt.timedelta(days=1)), (timezone.now() + dt.timedelta(days=1, hours=2))
    for i in range(50):
        o = make_order(w, user=w.pudong_agent if i % 2 else w.pudong_manager)
        if i % 3 == 0:
            o = workflow.move(o.pk, "classify", user=w.pudong_agent, type="repair", priority="high")
            workflow.move(o.pk, "dispatch", user=w.pudong_dispatcher, assignee=w.tech_employee,
                          appointment_from=start, appointment_to=end)
    for user in (w.quality, w.pudong_agent, w.customer_user):
        few = _list_queries(user, 5)
        assert _list_queries(user, 50) == few
        c = ApiClient(user)
        with django_assert_max_num_queries(6):  # session, user, roles, scope, the page (+ the PII scope)
            assert c.get("/orders/", {"limit": 50}).status_code == 200


# ---------------------------------------------------------------- one order

def test_detail_as_each_reader_sees_it(team, some):
    w = team
    o = some["accepted"]
    services.order_note(user=w.pudong_agent, order_id=o.pk, note="客户要求下午再来")
    r = ApiClient(w.pudong_agent).get(f"/orders/{o.pk}")
    assert r.status_code == 200, r.content
    d = r.json()
    assert (d["number"], d["status"], d["status_label"], d["owner"]["username"]) == (o.number, "accepted", "已接单",
                                                                                     "pudong_agent")
    assert d["customer"]["phone"] == "13812345678" and d["address"]["street"] == "张杨路500号2栋1201室"
    assert d["unit"] == {"id": w.u_pudong.pk, "serial": "AC2025000001", "model": "KFR-35GW",
                         "model_name": "挂壁式空调 1.5匹", "category": "AC"}
    assert d["warranty"] == {"kind": "free_repair", "label": "免费维修", "free": True}
    assert d["fault_category"] == {"code": "NO_COOLING", "name": "不制冷/不制热"}
    assert d["assignee"]["name"] == "李师傅" and d["node"]["code"] == "SH-PD"
    assert {m["name"] for m in d["moves"]} == {"cancel", "transfer", "escalate"}
    assert [e["action"] for e in d["timeline"]] == ["create", "classify", "dispatch", "accept", "note"]
    assert d["timeline"][-1]["note"] == "客户要求下午再来" and d["timeline"][2]["data"]["assignee_name"] == "李师傅"
    # quality sees it masked; the technician gets their buttons
    q = ApiClient(w.quality).get(f"/orders/{o.pk}").json()
    assert q["customer"]["phone"] == "138****5678" and q["address"]["street"] != "张杨路500号2栋1201室"
    assert q["moves"] == []
    t = ApiClient(w.pudong_tech).get(f"/orders/{o.pk}").json()
    assert [m["name"] for m in t["moves"]] == ["depart"]
    # the customer: the steps, without the staff's notes and names
    c = ApiClient(w.customer_user).get(f"/orders/{o.pk}").json()
    assert [e["action"] for e in c["timeline"]] == ["create", "classify", "dispatch", "accept"]
    assert all(e["data"] == {} and e["actor"] == "" for e in c["timeline"])
    assert c["customer"]["phone"] == "13812345678" and c["moves"] == []
    # out of scope
    for user in (w.hangzhou_agent, w.pudong_tech2, w.customer_user_tianhe):
        assert ApiClient(user).get(f"/orders/{o.pk}").status_code == 404
    assert ApiClient(w.admin).get("/orders/999999999").status_code == 404


def test_by_number(team, some):
    w = team
    o = some["closed"]
    r = ApiClient(w.pudong_agent).get(f"/orders/by-number/{o.number.lower()}")
    assert r.status_code == 200 and r.json()["id"] == o.pk
    assert ApiClient(w.tianhe_agent).get(f"/orders/by-number/{o.number}").status_code == 404


# ---------------------------------------------------------------- intake

def test_create(team):
    w = team
    c = ApiClient(w.pudong_agent)
    start = timezone.localtime() + dt.timedelta(days=1)
    r = c.post("/orders/", {"customer_id": w.c_pudong.pk, "type": "repair", "channel": "phone",
                            "problem": "空调不制冷", "unit_id": w.u_pudong.pk, "fault_category": "NO_COOLING",
                            "wish_from": start.isoformat(), "wish_to": (start + dt.timedelta(hours=4)).isoformat()})
    assert r.status_code == 201, r.content
    d = r.json()
    assert d["status"] == "received" and d["owner"]["username"] == "pudong_agent" and d["number"].startswith("GD")
    assert d["warranty"]["kind"] == "free_repair" and d["wish_from"]
    assert {m["name"] for m in d["moves"]} >= {"classify", "cancel"}


def test_create_reports_every_bad_field_at_once(team):
    w = team
    r = ApiClient(w.pudong_agent).post("/orders/", {"customer_id": w.c_pudong.pk, "type": "fix", "channel": "",
                                                    "problem": " ", "unit_id": w.u_tianhe.pk,
                                                    "wish_from": "2020-01-01T10:00:00+08:00",
                                                    "wish_to": "2020-01-01T09:00:00+08:00"})
    assert r.status_code == 400
    assert set(errors_of(r)) == {"type", "channel", "problem", "unit_id", "wish_from", "wish_to"}
    assert WorkOrder.objects.count() == 0
    r = ApiClient(w.pudong_agent).post("/orders/", {"customer_id": w.c_pudong.pk, "colour": "red",
                                                    "wish_from": "yesterday"})
    assert r.status_code == 400 and set(errors_of(r)) == {"colour", "wish_from"}
    assert ApiClient(w.pudong_agent).post("/orders/", {"type": "repair"}).status_code == 400
    assert ApiClient(w.pudong_dispatcher).post("/orders/", {"type": "repair"}).status_code == 403


def test_a_customer_files_online(team):
    w = team
    c = ApiClient(w.customer_user)
    r = c.post("/orders/", {"type": "repair", "channel": "app", "problem": "空调漏水", "unit_id": w.u_pudong.pk})
    assert r.status_code == 201, r.content
    assert r.json()["owner"] is None and r.json()["customer"]["id"] == w.c_pudong.pk
    r = c.post("/orders/", {"type": "repair", "channel": "phone", "problem": "x", "unit_id": w.u_tianhe.pk})
    assert r.status_code == 400 and set(errors_of(r)) == {"channel", "unit_id"}


# ---------------------------------------------------------------- moves

def test_moves(team, some):
    w = team
    o = some["received"]
    agent = ApiClient(w.pudong_agent)
    r = agent.post(f"/orders/{o.pk}/moves/classify", {"type": "repair", "priority": "high", "note": "客户很急"})
    assert r.status_code == 200, r.content
    assert (r.json()["status"], r.json()["status_label"]) == ("classified", "待派工")
    e = OrderEvent.objects.get(order=o, action="classify")
    assert e.note == "客户很急" and e.data["priority"] == "high"
    # illegal: 409 with the reason
    r = agent.post(f"/orders/{o.pk}/moves/close")
    assert r.status_code == 409 and r.json()["code"] == "illegal_move" and "待派工" in r.json()["message"]
    # missing and unused fields: 400 naming them
    r = agent.post(f"/orders/{o.pk}/moves/cancel", {})
    assert r.status_code == 400 and set(errors_of(r)) == {"reason"}
    r = agent.post(f"/orders/{o.pk}/moves/escalate", {"reason": "催", "diagnosis": "无关"})
    assert r.status_code == 400 and set(errors_of(r)) == {"diagnosis"}
    r = agent.post(f"/orders/{o.pk}/moves/classify", {"type": "fix", "priority": "normal"})
    assert r.status_code == 400 and "type" in errors_of(r)
    # who: 403 / 404
    assert ApiClient(w.customer_user).post(f"/orders/{o.pk}/moves/cancel", {"reason": "不修了"}).status_code == 403
    assert ApiClient(w.quality).post(f"/orders/{o.pk}/moves/escalate", {"reason": "x"}).status_code == 403
    assert ApiClient(w.hangzhou_agent).post(f"/orders/{o.pk}/moves/cancel", {"reason": "x"}).status_code == 404
    assert ApiClient(w.nobody).post(f"/orders/{o.pk}/moves/cancel", {"reason": "x"}).status_code == 403
    # dispatching belongs to the dispatch API; unknown moves do not exist
    r = ApiClient(w.pudong_dispatcher).post(f"/orders/{o.pk}/moves/dispatch", {})
    assert r.status_code == 409 and r.json()["code"] == "use_dispatch_api"
    assert agent.post(f"/orders/{o.pk}/moves/teleport").status_code == 404
    # transfer names the outlet by id
    r = agent.post(f"/orders/{o.pk}/moves/transfer", {"node_id": w.east.pk, "reason": "转"})
    assert r.status_code == 400 and set(errors_of(r)) == {"node_id"}
    r = agent.post(f"/orders/{o.pk}/moves/transfer", {"node_id": w.hangzhou.pk, "reason": "客户搬家"})
    assert r.status_code == 200 and r.json()["node_id"] == w.hangzhou.pk


def test_the_technician_works_the_order_over_the_api(team, some, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    w = team
    o = some["accepted"]
    t = ApiClient(w.pudong_tech)
    for name in ("depart", "arrive", "diagnose"):
        assert t.post(f"/orders/{o.pk}/moves/{name}").status_code == 200
    r = t.client.post(f"/api/orders/{o.pk}/photos", {"image": SimpleUploadedFile("p.jpg", JPEG, "image/jpeg"),
                                                     "caption": "压缩机"})
    assert r.status_code == 201, r.content
    assert r.json()["caption"] == "压缩机" and r.json()["url"].endswith(".jpg")
    r = t.client.post(f"/api/orders/{o.pk}/photos", {"image": SimpleUploadedFile("p.jpg", b"nope", "image/jpeg")})
    assert r.status_code == 400 and set(errors_of(r)) == {"image"}
    r = t.post(f"/orders/{o.pk}/moves/complete", {"diagnosis": "电容坏", "result": "已更换", "fault_code": "E1"})
    assert r.status_code == 200 and r.json()["status"] == "completed"
    r = t.post(f"/orders/{o.pk}/confirmation-code")
    assert r.status_code == 202 and "code" not in r.json() and r.json()["expires_at"]
    r = t.post(f"/orders/{o.pk}/confirm", {"code": "12345x"})
    assert r.status_code == 400 and set(errors_of(r)) == {"code"}
    r = t.client.post(f"/api/orders/{o.pk}/signature",
                      {"signature": SimpleUploadedFile("s.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)})
    assert r.status_code == 200, r.content
    d = ApiClient(w.pudong_agent).get(f"/orders/{o.pk}").json()
    assert d["confirmed_by"] == "signature" and len(d["photos"]) == 1
    assert d["fault_code"] == {"code": "E1", "name": "压缩机高压保护", "part_code": "COMP"}


def test_notes_over_the_api(team, some):
    w = team
    o = some["received"]
    r = ApiClient(w.pudong_dispatcher).post(f"/orders/{o.pk}/notes", {"note": "已联系客户"})
    assert r.status_code == 201 and r.json()["event_count"] == 2
    assert ApiClient(w.customer_user).post(f"/orders/{o.pk}/notes", {"note": "x"}).status_code == 403
    assert ApiClient(w.tianhe_agent).post(f"/orders/{o.pk}/notes", {"note": "x"}).status_code == 404
    r = ApiClient(w.pudong_agent).post(f"/orders/{o.pk}/notes", {"note": "x" * 2001})
    assert r.status_code == 400 and set(errors_of(r)) == {"note"}


# ---------------------------------------------------------------- the intake's helpers

def test_suggest(team):
    w = team
    r = ApiClient(w.pudong_agent).get("/orders/suggest", {"text": "空调一直滴水", "category": "AC"})
    assert r.status_code == 200, r.content
    d = r.json()
    assert (d["type"], d["type_label"], d["fault_category"], d["fault_category_name"]) == (
        "repair", "维修", "WATER_LEAK", "漏水/渗漏")
    assert d["matched_keywords"] == ["滴水"] and 0 < d["confidence"] <= 1
    assert ApiClient(w.customer_user).get("/orders/suggest", {"text": "漏水"}).status_code == 200
    assert ApiClient(w.pudong_dispatcher).get("/orders/suggest", {"text": "漏水"}).status_code == 403
    assert ApiClient(w.pudong_agent).get("/orders/suggest").status_code == 400
    d = ApiClient(w.pudong_agent).get("/orders/suggest", {"text": "你好"}).json()
    assert d["type"] is None and d["response_due"] is None


def test_fault_catalogue(team):
    w = team
    c = ApiClient(w.pudong_tech)
    cats = c.get("/orders/fault-categories", {"category": "WM"}).json()
    assert "NO_DRAIN" in {x["code"] for x in cats} and "NO_COOLING" not in {x["code"] for x in cats}
    assert all("WM" in x["categories"] or not x["categories"] for x in cats) and all(x["keywords"] for x in cats)
    codes = c.get("/orders/fault-codes", {"category": "AC"}).json()
    assert {x["code"] for x in codes} >= {"E1", "F1", "H6"} and {x["category"] for x in codes} == {"AC"}
    assert next(x for x in codes if x["code"] == "H6")["part_code"] == "FANM"
    assert len(c.get("/orders/fault-codes").json()) > len(codes)
    assert ApiClient(w.nobody).get("/orders/fault-codes").status_code == 403
