"""The dispatch API: shapes, status codes, field errors, scope, bounded queries."""

import datetime as dt
import json

from django.utils import timezone

from aftersales.dispatch.models import Booking, DispatchSetting
from aftersales.notifications.models import Message
from aftersales.tickets.models import Status, WorkOrder

from .conftest import at, new_order


def body(a, b, emp, **kw):
    return {"employee_id": emp.pk, "starts_at": a.isoformat(), "ends_at": b.isoformat(), **kw}


def test_candidates(dw, api):
    o = new_order(dw)
    r = api(dw.pudong_dispatcher).get(f"/orders/{o.pk}/candidates",
                                      {"starts_at": at(10).isoformat(), "ends_at": at(12).isoformat()})
    assert r.status_code == 200, r.content
    items = r.json()
    assert [c["employee"]["name"] for c in items][:2] == ["李师傅", "王师傅"]
    first = items[0]
    assert first["eligible"] and first["blockers"] == [] and first["distance_km"] == 1.0
    assert first["node"]["code"] == "SH-PD" and first["load_today"] == 0
    assert "具备「空调」维修技能" in first["reasons"]
    qian = next(c for c in items if c["employee"]["name"] == "钱师傅")
    assert not qian["eligible"] and "过期" in qian["blockers"][0]
    r = api(dw.pudong_dispatcher).get(f"/orders/{o.pk}/candidates",
                                      {"starts_at": at(12).isoformat(), "ends_at": at(10).isoformat()})
    assert r.status_code == 400 and "ends_at" in r.json()["errors"]
    assert api(dw.pudong_dispatcher).get(f"/orders/{o.pk}/candidates", {"limit": 0}).status_code == 400


def test_candidates_query_count_is_bounded(dw, api, django_assert_max_num_queries):
    o = new_order(dw)
    client = api(dw.east_dispatcher)
    with django_assert_max_num_queries(14):
        assert client.get(f"/orders/{o.pk}/candidates").status_code == 200


def test_dispatch_then_overlap_409_then_adjacent_200(dw, api):
    c = api(dw.pudong_dispatcher)
    o1, o2 = new_order(dw), new_order(dw)
    r = c.post(f"/orders/{o1.pk}/dispatch", body(at(10), at(12), dw.tech_employee, note="上午"))
    assert r.status_code == 200, r.content
    out = r.json()
    assert out["status"] == "dispatched" and out["status_label"] == "已派工"
    assert out["assignee"]["name"] == "李师傅" and out["number"] == o1.number
    r = c.post(f"/orders/{o2.pk}/dispatch", body(at(11), at(13), dw.tech_employee))
    assert r.status_code == 409
    err = r.json()
    assert err["code"] == "booking_conflict" and o1.number in err["message"] and "10:00–12:00" in err["message"]
    assert err["errors"]["starts_at"] == [err["message"]]
    r = c.post(f"/orders/{o2.pk}/dispatch", body(at(12), at(14), dw.tech_employee))
    assert r.status_code == 200


def test_bad_input_400_naming_fields_nothing_written(dw, api):
    c = api(dw.pudong_dispatcher)
    o = new_order(dw)
    past = timezone.now() - dt.timedelta(hours=3)
    cases = [
        (body(past, past + dt.timedelta(hours=1), dw.tech_employee), {"starts_at"}),
        (body(at(12), at(10), dw.tech_employee), {"ends_at"}),
        ({**body(at(10), at(12), dw.tech_employee), "employee_id": 987654}, {"employee_id"}),
        ({"employee_id": 0, "starts_at": "tomorrow", "ends_at": at(10).isoformat()}, {"employee_id", "starts_at"}),
        ({**body(at(10), at(12), dw.tech_employee), "extra": 1}, {"extra"}),
        ({"starts_at": at(10).isoformat(), "ends_at": at(12).isoformat()}, {"employee_id"}),
        (body(at(10), at(12), dw.tech_expired), {"employee_id"}),
    ]
    for data, fields in cases:
        r = c.post(f"/orders/{o.pk}/dispatch", data)
        assert r.status_code == 400, (data, r.content)
        assert set(r.json()["errors"]) == fields, (data, r.json())
    assert not Booking.objects.exists()
    assert WorkOrder.objects.get(pk=o.pk).status == Status.CLASSIFIED
    r = c.post(f"/orders/{o.pk}/dispatch", body(at(10), at(12), dw.tech_expired))
    assert "缺少有效的 制冷作业证" in r.json()["errors"]["employee_id"][0]


def test_scope(dw, api):
    o = new_order(dw)
    data = body(at(10), at(12), dw.tech_employee)
    for user in (dw.hangzhou_dispatcher, dw.tianhe_dispatcher):
        assert api(user).post(f"/orders/{o.pk}/dispatch", data).status_code == 404
        assert api(user).get(f"/orders/{o.pk}/candidates").status_code == 404
        assert api(user).get(f"/technicians/{dw.tech_employee.pk}/schedule").status_code == 404
        assert api(user).get(f"/settings/{dw.pudong.pk}").status_code == 404
    for user in (dw.pudong_agent, dw.pudong_tech, dw.quality):  # no order.dispatch anywhere
        assert api(user).post(f"/orders/{o.pk}/dispatch", data).status_code == 403
        assert api(user).get(f"/orders/{o.pk}/candidates").status_code == 403
    assert api(dw.pudong_dispatcher).post(f"/orders/{o.pk}/accept").status_code == 403
    assert api(dw.pudong_dispatcher).post("/orders/999999/dispatch", data).status_code == 404
    assert not Booking.objects.exists()


def test_accept_decline_reassign(dw, api):
    o = new_order(dw)
    assert api(dw.pudong_dispatcher).post(f"/orders/{o.pk}/dispatch",
                                          body(at(10), at(12), dw.tech_employee)).status_code == 200
    tech = api(dw.pudong_tech)
    r = tech.post(f"/orders/{o.pk}/decline", {"reason": ""})
    assert r.status_code == 400 and set(r.json()["errors"]) == {"reason"}
    assert tech.post(f"/orders/{o.pk}/decline", {}).status_code == 400
    r = tech.post(f"/orders/{o.pk}/decline", {"reason": "车坏了"})
    assert r.status_code == 200 and r.json()["status"] == "classified" and r.json()["decline_count"] == 1
    assert not Booking.objects.filter(active=True).exists()
    assert api(dw.pudong_dispatcher).post(f"/orders/{o.pk}/dispatch",
                                          body(at(10), at(12), dw.tech_employee)).status_code == 200
    assert tech.post(f"/orders/{o.pk}/accept").json()["status"] == "accepted"
    assert tech.post(f"/orders/{o.pk}/accept").status_code == 409
    r = api(dw.pudong_dispatcher).post(f"/orders/{o.pk}/reassign", body(at(14), at(16), dw.tech2))
    assert r.status_code == 400 and set(r.json()["errors"]) == {"reason"}
    r = api(dw.pudong_dispatcher).post(f"/orders/{o.pk}/reassign", body(at(14), at(16), dw.tech2, reason="请假"))
    assert r.status_code == 200
    assert r.json()["reassign_count"] == 1 and r.json()["assignee"]["name"] == "王师傅"
    assert Message.objects.filter(event="dispatched", ref=o.number).count() == 3


def test_auto(dw, api):
    o = new_order(dw, wish=(at(9), at(12)))
    r = api(dw.pudong_dispatcher).post(f"/orders/{o.pk}/auto")
    assert r.status_code == 200, r.content
    out = r.json()
    assert out["dispatched"] and out["order"]["assignee"]["name"] == "李师傅" and "自动派工" in out["message"]
    assert api(dw.pudong_dispatcher).post(f"/orders/{o.pk}/auto").status_code == 409
    o = new_order(dw, wish=(at(21), at(22)))
    out = api(dw.pudong_dispatcher).post(f"/orders/{o.pk}/auto").json()
    assert not out["dispatched"] and out["order"]["status"] == "classified" and out["message"]
    assert api(dw.hangzhou_dispatcher).post(f"/orders/{o.pk}/auto").status_code == 404


def test_schedule(dw, api):
    o = new_order(dw)
    api(dw.pudong_dispatcher).post(f"/orders/{o.pk}/dispatch", body(at(10), at(12), dw.tech_employee))
    day = at(10).date().isoformat()
    r = api(dw.pudong_dispatcher).get(f"/technicians/{dw.tech_employee.pk}/schedule", {"day": day})
    assert r.status_code == 200, r.content
    out = r.json()
    assert out["employee"]["name"] == "李师傅" and out["day"] == day
    assert [b["order"]["number"] for b in out["bookings"]] == [o.number]
    assert out["bookings"][0]["order"]["district"] == "浦东新区"
    assert len(out["free_slots"]) == 5
    assert api(dw.pudong_dispatcher).get(f"/technicians/{dw.tech_employee.pk}/schedule",
                                         {"day": "x"}).status_code == 400
    assert api(dw.pudong_dispatcher).get(f"/technicians/{dw.hz_tech.pk}/schedule").status_code == 404


def test_settings(dw, api):
    r = api(dw.pudong_dispatcher).get(f"/settings/{dw.pudong.pk}")
    assert r.status_code == 200
    assert r.json() == {"node": {"id": dw.pudong.pk, "code": "SH-PD", "name": "上海浦东网点"}, "auto_dispatch": False,
                        "max_jobs_per_day": 6, "slot_minutes": 120, "inherited_from": None, "is_default": True}
    assert api(dw.pudong_dispatcher).put(f"/settings/{dw.pudong.pk}", {"auto_dispatch": True}).status_code == 403
    r = api(dw.east_manager).put(f"/settings/{dw.east.pk}", {"auto_dispatch": True, "max_jobs_per_day": 4})
    assert r.status_code == 200 and r.json()["max_jobs_per_day"] == 4
    r = api(dw.pudong_dispatcher).get(f"/settings/{dw.pudong.pk}")
    assert r.json()["inherited_from"]["code"] == "EAST" and r.json()["auto_dispatch"] is True
    r = api(dw.pudong_manager).put(f"/settings/{dw.pudong.pk}", {"max_jobs_per_day": 0, "slot_minutes": 5})
    assert r.status_code == 400 and set(r.json()["errors"]) == {"max_jobs_per_day", "slot_minutes"}
    r = api(dw.pudong_manager).put(f"/settings/{dw.pudong.pk}", {"slot_minutes": 50})
    assert r.status_code == 400 and set(r.json()["errors"]) == {"slot_minutes"}
    r = api(dw.pudong_manager).put(f"/settings/{dw.pudong.pk}", {"slot_minutes": 90})
    assert r.status_code == 200 and r.json()["inherited_from"] is None and r.json()["slot_minutes"] == 90
    assert DispatchSetting.objects.get(node=dw.pudong).max_jobs_per_day == 4
    assert api(dw.pudong_manager).put(f"/settings/{dw.hangzhou.pk}", {"slot_minutes": 90}).status_code == 404


GARBAGE = [{}, [], "x", 1, None, {"a": None}, {"employee_id": "\x00"}, {"employee_id": 2**70},
           {"starts_at": "0000-00-00", "ends_at": 5}, {"starts_at": None, "reason": ["x"]}, {"reason": "\x00"},
           {"reason": "x" * 3000}, {"auto_dispatch": "perhaps", "max_jobs_per_day": 1e99, "slot_minutes": -1},
           {"employee_id": -1, "starts_at": "2026-13-45T99:00", "ends_at": "now", "note": {"a": 1}}]
GARBAGE_QUERIES = [{"starts_at": "x"}, {"starts_at": "2026-01-01T10:00"}, {"ends_at": "2026-01-01T10:00"},
                   {"limit": "-1"}, {"limit": "1e99"}, {"day": "0000-00-00"}, {"day": "\x00"}]


def test_no_dispatch_endpoint_answers_garbage_with_a_500(dw, api):
    from aftersales.api.api import api as ninja_api

    o = new_order(dw)
    c = api(dw.admin)

    def fill(path, order_id, employee_id, node_id):
        return (path.removeprefix("/api/dispatch").replace("{order_id}", str(order_id))
                .replace("{employee_id}", str(employee_id)).replace("{node_id}", str(node_id)))

    seen = 0
    for path, item in ninja_api.get_openapi_schema(path_prefix="/api/")["paths"].items():
        if not path.startswith("/api/dispatch/"):
            continue
        url = fill(path, o.pk, dw.tech_employee.pk, dw.pudong.pk)
        assert "{" not in url
        for method in ("post", "put"):
            if method not in item:
                continue
            for data in GARBAGE:
                r = c.client.generic(method.upper(), "/api/dispatch" + url, json.dumps(data),
                                     content_type="application/json")
                assert r.status_code < 500, (method, path, data, r.content[:300])
                if r.status_code >= 400:
                    assert r.status_code in (400, 403, 404, 409), (method, path, data, r.status_code)
                    assert set(r.json()) == {"code", "message", "errors"}
                seen += 1
            for bad in ("999999999", str(2**70), "-1", "x"):
                r = c.client.generic(method.upper(), "/api/dispatch" + fill(path, bad, bad, bad), "{}",
                                     content_type="application/json")
                assert r.status_code in (400, 404), (path, bad, r.status_code)
        if "get" in item:
            for params in GARBAGE_QUERIES:
                r = c.get(url, params)
                assert r.status_code < 500, (path, params, r.content[:300])
                seen += 1
            for bad in ("999999999", str(2**70), "-1", "x"):
                assert c.get(fill(path, bad, bad, bad)).status_code in (400, 404), (path, bad)
    assert seen > 100
