"""The parts API: permissions, scoping, field errors, and lists at a fixed number of queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aftersales.api.permissions import REGISTRY
from aftersales.parts import selectors, services
from aftersales.parts.models import Movement, PartRequest, Stock, Transfer

from .conftest import Api, order_in

pytestmark = pytest.mark.django_db


def fill(wh, part, qty, serials=()):
    services.stock_receive(user=None, warehouse_id=wh.pk, part_id=part.pk, qty=qty, serials=serials)


def test_every_operation_declares_a_permission():
    from aftersales.parts import api

    ops = [name for name in dir(api) if callable(getattr(api, name)) and hasattr(getattr(api, name), "requirement")]
    assert len(ops) >= 20
    keys = [k for k in REGISTRY if k.startswith("aftersales_parts_api_")]
    assert len(keys) == len(ops)


def test_receive_over_the_api(pw):
    w = pw
    r = Api(w.pudong_manager).post("/stock/receive", {"warehouse_id": w.wh_pudong.pk, "part_id": w.cap.pk, "qty": 4,
                                                      "unit_cost": "13.20", "reason": "到货"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["kind"], body["on_hand_after"], body["unit_cost"], body["actor"]) == ("receive", 4, "13.20",
                                                                                    "pudong_manager")
    assert body["part"]["code"] == "P-CAP-35" and body["warehouse"]["code"] == "WH-PD"


@pytest.mark.parametrize("payload, field", [
    ({"qty": -1}, "qty"), ({"qty": 0}, "qty"), ({"qty": "many"}, "qty"), ({"part_id": 999999}, "part_id"),
    ({"part_id": 0}, "part_id"), ({"unit_cost": "-3"}, "unit_cost"), ({"extra": 1}, "extra"),
])
def test_bad_receive_is_400_naming_the_field(pw, payload, field):
    w = pw
    data = {"warehouse_id": w.wh_pudong.pk, "part_id": w.cap.pk, "qty": 1, **payload}
    r = Api(w.pudong_manager).post("/stock/receive", data)
    assert r.status_code == 400, r.content
    assert field in r.json()["errors"]
    assert not Movement.objects.exists()


def test_permissions_and_scope(pw):
    w = pw
    data = {"warehouse_id": w.wh_pudong.pk, "part_id": w.cap.pk, "qty": 1}
    assert Api(w.pudong_agent).post("/stock/receive", data).status_code == 403  # no parts.manage anywhere
    assert Api(w.trainer).get("/stock").status_code == 403
    assert Api(None).get("/stock").status_code in (401, 403)
    assert Api(w.tianhe_manager).post("/stock/receive", data).status_code == 404  # out of scope
    assert Api(w.tianhe_manager).get(f"/warehouses/{w.wh_pudong.pk}").status_code == 404
    assert Api(w.pudong_manager).get(f"/warehouses/{w.wh_pudong.pk}").status_code == 200
    r = Api(w.pudong_manager).get("/warehouses")
    assert [x["code"] for x in r.json()["items"]] == ["WH-PD"]
    r = Api(w.east_manager).get("/warehouses")
    assert [x["code"] for x in r.json()["items"]] == ["WH-EAST", "WH-HZ", "WH-PD"]


def test_a_technician_sees_the_outlet_and_their_own_van_only(pw):
    w = pw
    mine, other = services.van_for(w.tech_employee), services.van_for(w.tech2_employee)
    codes = [x["code"] for x in Api(w.pudong_tech).get("/warehouses").json()["items"]]
    assert codes == sorted(["WH-PD", mine.code])
    assert Api(w.pudong_tech).get(f"/warehouses/{other.pk}").status_code == 404
    codes = [x["code"] for x in Api(w.pudong_manager).get("/warehouses").json()["items"]]
    assert codes == sorted(["WH-PD", mine.code, other.code])


def test_adjust_without_reason_and_scrap_over_the_api(pw):
    w = pw
    fill(w.wh_pudong, w.cap, 5)
    c = Api(w.pudong_manager)
    r = c.post("/stock/adjust", {"warehouse_id": w.wh_pudong.pk, "part_id": w.cap.pk, "counted": 3, "reason": ""})
    assert r.status_code == 400 and "reason" in r.json()["errors"]
    r = c.post("/stock/adjust", {"warehouse_id": w.wh_pudong.pk, "part_id": w.cap.pk, "counted": 3})
    assert r.status_code == 400 and "reason" in r.json()["errors"]
    r = c.post("/stock/adjust", {"warehouse_id": w.wh_pudong.pk, "part_id": w.cap.pk, "counted": 3,
                                 "reason": "盘亏"})
    assert r.status_code == 200 and r.json()["changed"] and r.json()["movement"]["on_hand_delta"] == -2
    r = c.post("/stock/adjust", {"warehouse_id": w.wh_pudong.pk, "part_id": w.cap.pk, "counted": 3,
                                 "reason": "复盘"})
    assert r.status_code == 200 and r.json() == {"changed": False, "movement": None}
    r = c.post("/stock/scrap", {"warehouse_id": w.wh_pudong.pk, "part_id": w.cap.pk, "qty": 5, "reason": "受潮"})
    assert r.status_code == 409 and "可用数量为 3" in r.json()["message"]
    r = c.put("/stock/reorder", {"warehouse_id": w.wh_pudong.pk, "part_id": w.cap.pk, "reorder_point": 3,
                                 "reorder_qty": 10})
    assert r.status_code == 200 and r.json()["below_reorder"] is True


def test_transfers_over_the_api(pw):
    w = pw
    fill(w.wh_east, w.cap, 5)
    fill(w.wh_tianhe, w.cap, 5)
    c = Api(w.east_manager)
    r = c.post("/transfers", {"source_id": w.wh_tianhe.pk, "destination_id": w.wh_pudong.pk,
                              "lines": [{"part_id": w.cap.pk, "qty": 1}]})
    assert r.status_code == 404 and "source_id" in r.json()["errors"]
    r = c.post("/transfers", {"source_id": w.wh_east.pk, "destination_id": w.wh_pudong.pk,
                              "lines": [{"part_id": w.cap.pk, "qty": 0}]})
    assert r.status_code == 400 and "lines[0].qty" in r.json()["errors"]
    r = c.post("/transfers", {"source_id": w.wh_east.pk, "destination_id": w.wh_pudong.pk,
                              "lines": [{"part_id": 99999, "qty": 1}]})
    assert r.status_code == 400 and "lines[0].part_id" in r.json()["errors"]
    r = c.post("/transfers", {"source_id": w.wh_east.pk, "destination_id": w.wh_pudong.pk,
                              "lines": [{"part_id": w.cap.pk, "qty": 9}]})
    assert r.status_code == 409
    assert not Transfer.objects.exists()
    r = c.post("/transfers", {"source_id": w.wh_east.pk, "destination_id": w.wh_pudong.pk, "note": "补货",
                              "lines": [{"part_id": w.cap.pk, "qty": 2}]})
    assert r.status_code == 201, r.content
    t = r.json()
    assert t["status"] == "requested" and t["lines"][0]["qty"] == 2
    assert Api(w.pudong_manager).post(f"/transfers/{t['id']}/ship").status_code == 403
    assert Api(w.tianhe_manager).post(f"/transfers/{t['id']}/ship").status_code == 404
    assert c.post(f"/transfers/{t['id']}/ship").json()["status"] == "shipped"
    assert Api(w.pudong_manager).post(f"/transfers/{t['id']}/receive").json()["status"] == "received"
    assert c.post(f"/transfers/{t['id']}/cancel", {"reason": "x"}).status_code == 409
    items = Api(w.pudong_manager).get("/transfers", {"warehouse_id": w.wh_pudong.pk}).json()["items"]
    assert [x["number"] for x in items] == [t["number"]]
    assert Api(w.tianhe_manager).get("/transfers").json()["items"] == []
    assert selectors.ledger_problems() == []


def test_order_parts_over_the_api(pw):
    w = pw
    van = services.van_for(w.tech_employee)
    fill(van, w.comp, 1, ["V-1"])
    o = order_in(w, "diagnosing")
    tech = Api(w.pudong_tech)
    r = tech.post(f"/orders/{o.pk}/parts", {"part_id": w.comp.pk})
    assert r.status_code == 201, r.content
    req = r.json()
    assert req["status"] == "ready" and req["free"] is True and req["van"]["id"] == van.pk
    assert tech.post(f"/orders/{o.pk}/parts", {"part_id": w.belt.pk}).json()["errors"].keys() == {"part_id"}
    r = tech.post(f"/orders/{o.pk}/parts", {"part_id": w.cap.pk})
    assert r.status_code == 409 and "P-CAP-35" in r.json()["message"]
    assert Api(w.tianhe_agent).get(f"/orders/{o.pk}/parts").status_code == 404
    assert [x["id"] for x in tech.get(f"/orders/{o.pk}/parts").json()] == [req["id"]]
    r = tech.post(f"/part-requests/{req['id']}/consume", {"serial": "NOPE"})
    assert r.status_code == 400 and "serial" in r.json()["errors"]
    r = tech.post(f"/part-requests/{req['id']}/consume", {"serial": "V-1", "old_serial": "OLD-1"})
    assert r.status_code == 200 and r.json()["status"] == "consumed" and r.json()["serial"] == "V-1"
    r = tech.post(f"/warehouses/{van.pk}/return-old-parts")
    assert r.status_code == 200 and r.json()["defective"] is True and r.json()["destination"]["code"] == "WH-EAST"
    assert tech.post(f"/warehouses/{van.pk}/return-old-parts").status_code == 204
    assert Api(w.pudong_agent).post(f"/part-requests/{req['id']}/consume", {"serial": "V-1"}).status_code == 403


def test_release_over_the_api(pw):
    w = pw
    fill(w.wh_east, w.cap, 1)
    o = order_in(w, "diagnosing")
    req = Api(w.pudong_tech).post(f"/orders/{o.pk}/parts", {"part_id": w.cap.pk}).json()
    assert req["status"] == "in_transit" and req["transfer"]["number"].startswith("DB")
    r = Api(w.pudong_dispatcher).post(f"/part-requests/{req['id']}/release", {"reason": "客户改期"})
    assert r.status_code == 200 and r.json()["status"] == "released"
    assert Stock.objects.get(warehouse=w.wh_east, part=w.cap).reserved == 0
    assert PartRequest.objects.get(pk=req["id"]).transfer.status == "cancelled"


def test_availability_and_replenishment_over_the_api(pw):
    w = pw
    fill(w.wh_hangzhou, w.cap, 2)
    fill(w.wh_east, w.cap, 20)
    r = Api(w.east_manager).get(f"/availability/{w.cap.pk}", {"near_node_id": w.pudong.pk})
    assert [(x["warehouse"]["code"], x["available"]) for x in r.json()] == [("WH-EAST", 20), ("WH-HZ", 2)]
    services.reorder_set(user=None, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, reorder_point=2, reorder_qty=6)
    c = Api(w.pudong_manager)
    rows = c.get("/replenishment").json()
    assert [(x["part"]["code"], x["suggested_qty"], x["supplier"]["code"]) for x in rows] == [("P-CAP-35", 6, "WH-EAST")]
    r = c.post(f"/replenishment/{w.wh_pudong.pk}", {})
    assert r.status_code == 200 and [t["source"]["code"] for t in r.json()] == ["WH-EAST"]
    assert c.get("/replenishment").json() == []  # what is on its way counts
    assert Api(w.tianhe_manager).post(f"/replenishment/{w.wh_pudong.pk}", {}).status_code == 404


def test_bad_cursor_and_filters_are_400(pw):
    w = pw
    c = Api(w.pudong_manager)
    assert c.get("/movements", {"cursor": "garbage"}).status_code == 400
    assert c.get("/movements", {"kind": "stolen"}).status_code == 400
    assert c.get("/stock", {"cursor": "WyJcdTAwMDAiLCJ4IiwxXQ"}).status_code == 400
    assert c.get("/stock", {"warehouse_id": 0}).status_code == 400
    assert c.get("/stock", {"warehouse_id": w.wh_tianhe.pk}).status_code == 404


@pytest.fixture
def many(pw):
    """60 parts in stock at Pudong, each received and reserved: 60 stock rows, 120 movements."""
    from aftersales.parts.models import Part

    w = pw
    parts = Part.objects.bulk_create([Part(code=f"P-{i:03}", name=f"配件{i}", category=w.ac) for i in range(60)])
    for p in parts:
        fill(w.wh_pudong, p, 3)
        services.stock_reserve(user=None, warehouse_id=w.wh_pudong.pk, part_id=p.pk, qty=1)
    return w


def _count(c, path, params):
    with CaptureQueriesContext(connection) as ctx:
        r = c.get(path, params)
    assert r.status_code == 200, r.content
    return len(ctx), r.json()


@pytest.mark.parametrize("path", ["/stock", "/movements"])
def test_lists_cost_the_same_queries_for_5_and_50_rows(many, path):
    w = many
    c = Api(w.pudong_manager)
    _count(c, path, {"limit": 1})  # warm the session
    small, page5 = _count(c, path, {"limit": 5})
    big, page50 = _count(c, path, {"limit": 50})
    assert len(page5["items"]) == 5 and len(page50["items"]) == 50
    assert small == big, (small, big)
    nxt, page = _count(c, path, {"limit": 50, "cursor": page50["next_cursor"]})
    assert nxt == small and page["items"]
    assert not {x["id"] for x in page["items"]} & {x["id"] for x in page50["items"]}
    small_wh, _p = _count(c, path, {"limit": 5, "warehouse_id": w.wh_pudong.pk})
    big_wh, _p = _count(c, path, {"limit": 50, "warehouse_id": w.wh_pudong.pk})
    assert small_wh == big_wh


def test_transfer_list_costs_the_same_queries_for_5_and_50_rows(pw):
    w = pw
    fill(w.wh_east, w.cap, 100)
    for _i in range(55):
        services.transfer_create(user=None, source_id=w.wh_east.pk, destination_id=w.wh_pudong.pk,
                                 lines=[{"part_id": w.cap.pk, "qty": 1}])
    c = Api(w.east_manager)
    _count(c, "/transfers", {"limit": 1})
    small, _a = _count(c, "/transfers", {"limit": 5})
    big, page = _count(c, "/transfers", {"limit": 50})
    assert small == big and len(page["items"]) == 50


def test_the_admin_pages_open_and_the_ledger_is_read_only(pw):
    from django.test import Client

    w = pw
    fill(w.wh_pudong, w.cap, 2)
    c = Client()
    c.force_login(w.admin)
    for name in ("part", "warehouse", "stock", "movement", "transfer", "partrequest", "serialitem"):
        assert c.get(f"/admin/parts/{name}/").status_code == 200, name
    m = Movement.objects.get()
    assert c.get(f"/admin/parts/movement/{m.pk}/change/").status_code == 200
    assert c.post(f"/admin/parts/movement/{m.pk}/delete/", {"post": "yes"}).status_code == 403
    assert c.get("/admin/parts/stock/add/").status_code == 403
