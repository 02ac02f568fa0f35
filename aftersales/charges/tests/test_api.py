"""The charges API: permissions, bad input as 4xx, the public link, receipts and query counts."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aftersales.charges import services
from aftersales.charges.models import Payment, PriceItem, Quote
from aftersales.parts.models import Part

from .conftest import ask_part, order_at, png_bytes

pytestmark = pytest.mark.django_db


def quote_via_api(api, w, o, user=None):
    r = api(user or w.pudong_tech).post(f"/orders/{o.pk}/quotes", {"labour_codes": [{"code": "GENERAL"}]})
    assert r.status_code == 201, r.content
    return r.json()


# ---------------------------------------------------------------- price list

def test_price_list_as_of_a_date_and_history(cw, api):
    c = api(cw.pudong_tech)
    today = timezone.localdate()
    body = c.get("/prices", {"kind": "labour", "limit": 200}).json()
    assert {i["code"] for i in body["items"]} >= {"GENERAL", "INSPECT", "COMP", "REFRIG"}
    assert c.get("/prices", {"on": "2019-12-31"}).json()["items"] == []
    r = api(cw.hq_manager).post("/prices", {"kind": "visit", "price": "60", "valid_from": str(today + dt.timedelta(days=7))})
    assert r.status_code == 201 and r.json()["price"] == "60.00" and r.json()["label"] == "上门费"
    visit_now = c.get("/prices", {"kind": "visit"}).json()["items"]
    visit_later = c.get("/prices", {"kind": "visit", "on": str(today + dt.timedelta(days=8))}).json()["items"]
    assert [i["price"] for i in visit_now] == ["50.00"] and [i["price"] for i in visit_later] == ["60.00"]
    assert visit_now[0]["valid_to"] == str(today + dt.timedelta(days=6))
    assert len(c.get("/prices", {"kind": "visit", "history": "true"}).json()["items"]) == 2
    assert c.get("/prices", {"q": "压缩机"}).json()["items"][0]["code"] == "COMP"


def test_price_set_rights_and_bad_input(cw, api):
    today = str(timezone.localdate())
    body = {"kind": "part", "part_id": cw.comp.pk, "price": "580", "valid_from": today}
    assert api(cw.east_manager).post("/prices", body).status_code == 403  # catalog.edit only at HQ
    assert api(cw.pudong_tech).post("/prices", body).status_code == 403
    assert api().post("/prices", body).status_code == 401
    assert api(cw.hq_manager).post("/prices", body).status_code == 201
    r = api(cw.hq_manager).post("/prices", {**body, "valid_to": str(timezone.localdate() + dt.timedelta(days=9)),
                                            "valid_from": str(timezone.localdate() + dt.timedelta(days=3))})
    assert r.status_code == 400 and "重叠" in r.json()["errors"]["valid_from"][0]  # overlaps the open item
    r = api(cw.hq_manager).post("/prices", {"kind": "labour", "price": "-1", "valid_from": "2020-01-01",
                                            "code": "X Y", "part_id": 5})
    assert r.status_code == 400 and set(r.json()["errors"]) == {"price", "valid_from", "code", "part_id"}
    r = api(cw.hq_manager).post("/prices", {"kind": "part", "part_id": 999999, "price": "1", "valid_from": today})
    assert r.status_code == 400 and set(r.json()["errors"]) == {"part_id"}
    r = api(cw.hq_manager).post("/prices", {"kind": "gold", "price": "x", "valid_from": "soon"})
    assert r.status_code == 400 and {"kind", "price", "valid_from"} <= set(r.json()["errors"])
    assert PriceItem.objects.filter(kind="part").count() == 1


def test_price_list_queries_do_not_grow(cw, api, django_assert_num_queries):
    Part.objects.bulk_create([Part(code=f"P{i:03}", name=f"配件{i}", unit_cost=10) for i in range(60)])
    for p in Part.objects.filter(code__startswith="P0"):
        PriceItem.objects.create(kind="part", key=services.price_key("part", part_id=p.pk), part=p, price=15,
                                 valid_from=dt.date(2024, 1, 1))
    c = api(cw.pudong_agent)
    with CaptureQueriesContext(connection) as ctx:
        small = c.get("/prices", {"limit": 5})
    assert small.status_code == 200 and small.json()["next_cursor"]
    with django_assert_num_queries(len(ctx)):
        big = c.get("/prices", {"limit": 50}).json()
    assert len(big["items"]) == 50
    with django_assert_num_queries(len(ctx)):
        assert c.get("/prices", {"limit": 50, "cursor": big["next_cursor"]}).json()["items"]


# ---------------------------------------------------------------- quotes

def test_quote_create_send_and_the_public_link(cw, api, monkeypatch):
    o = order_at(cw, "diagnosing")
    ask_part(cw, o, cw.cap)
    q = quote_via_api(api, cw, o)
    assert q["status"] == "draft" and q["total"] == "148.00" and q["chargeable"] == "148.00"
    assert [ln["kind"] for ln in q["lines"]] == ["part", "labour", "visit"] and q["lines"][0]["unit_price"] == "18.00"
    tokens = []
    real = services.secrets.token_urlsafe
    monkeypatch.setattr(services.secrets, "token_urlsafe", lambda n: tokens.append(real(n)) or tokens[-1])
    r = api(cw.pudong_tech).post(f"/quotes/{q['id']}/send")
    assert r.status_code == 200 and r.json()["quote"]["status"] == "sent" and tokens[0] not in r.content.decode()

    anon = api()
    r = anon.get(f"/q/{tokens[0]}")
    assert r.status_code == 200, r.content
    pub = r.json()
    assert pub["order_number"] == o.number and pub["chargeable"] == "148.00" and len(pub["lines"]) == 3
    assert "张伟" not in r.content.decode() and "138" not in r.content.decode()  # nothing personal
    assert anon.get("/q/unknown-token-xyz").status_code == 404
    r = anon.post(f"/q/{tokens[0]}", {"approve": "maybe"})
    assert r.status_code == 400 and "approve" in r.json()["errors"]
    r = anon.post(f"/q/{tokens[0]}", {"approve": True})
    assert r.status_code == 200 and r.json()["status"] == "approved"
    r = anon.post(f"/q/{tokens[0]}", {"approve": False})
    assert r.status_code == 410 and r.json()["code"] == "quote_closed"
    assert anon.get(f"/q/{tokens[0]}").status_code == 410

    s = api(cw.pudong_tech).get(f"/orders/{o.pk}/summary").json()
    assert s["chargeable"] is True and s["quote_required"] is None and s["quote"]["status"] == "approved"
    assert s["paid"] == "0.00"


def test_repair_is_refused_with_409_until_approved_through_the_api(cw, api):
    from aftersales.api.tests.conftest import ApiClient

    o = order_at(cw, "diagnosing")
    orders = ApiClient(cw.pudong_tech)
    r = orders.post(f"/orders/{o.pk}/moves/repair", {"diagnosis": "电容坏"})
    assert r.status_code == 409 and r.json()["code"] == "quote_required" and "报价" in r.json()["message"]
    s = api(cw.pudong_tech).get(f"/orders/{o.pk}/summary").json()
    assert s["quote_required"] and s["quote"] is None
    q = quote_via_api(api, cw, o)
    from django.core.files.uploadedfile import SimpleUploadedFile

    r = api(cw.pudong_tech).client.post(f"/api/charges/quotes/{q['id']}/signature",
                                        {"signature": SimpleUploadedFile("s.png", b"not a png", "image/png")})
    assert r.status_code == 400 and "signature" in r.json()["errors"]
    r = api(cw.pudong_tech).client.post(f"/api/charges/quotes/{q['id']}/signature",
                                        {"signature": SimpleUploadedFile("s.png", png_bytes(), "image/png")})
    assert r.status_code == 200 and r.json()["status"] == "approved" and r.json()["approved_via"] == "signature"
    r = orders.post(f"/orders/{o.pk}/moves/repair", {"diagnosis": "电容坏"})
    assert r.status_code == 200 and r.json()["status"] == "repairing"


def test_quote_rights_and_bad_input(cw, api):
    o = order_at(cw, "diagnosing")
    assert api(cw.trainer).get(f"/orders/{o.pk}/quotes").status_code == 403
    assert api(cw.tianhe_agent).get(f"/orders/{o.pk}/quotes").status_code == 404
    assert api(cw.pudong_tech2).get(f"/orders/{o.pk}/quotes").status_code == 404
    assert api(cw.customer_user).get(f"/orders/{o.pk}/quotes").status_code == 200  # their own order
    assert api(cw.customer_user).post(f"/orders/{o.pk}/quotes", {}).status_code == 403
    assert api(cw.pudong_dispatcher).post(f"/orders/{o.pk}/quotes", {}).status_code == 403
    assert api(cw.pudong_agent).post("/orders/987654321/quotes", {}).status_code == 404
    r = api(cw.pudong_tech).post(f"/orders/{o.pk}/quotes", {"labour_codes": [{"code": "NOPE", "qty": "-2"}],
                                                            "extra": [{"description": "", "unit_price": "-1"}]})
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"labour_codes[0].qty", "extra[0].description", "extra[0].unit_price"}
    r = api(cw.pudong_tech).post(f"/orders/{o.pk}/quotes", {"labour_codes": [{"code": "NOPE"}]})
    assert r.status_code == 400 and "NOPE" in r.json()["errors"]["labour_codes[0]"][0]
    r = api(cw.pudong_tech).post(f"/orders/{o.pk}/quotes", {"labour_codes": "GENERAL", "bogus": 1})
    assert r.status_code == 400 and {"labour_codes", "bogus"} <= set(r.json()["errors"])
    closed = order_at(cw, "closed", chargeable=False)
    r = api(cw.pudong_agent).post(f"/orders/{closed.pk}/quotes", {"labour_codes": [{"code": "GENERAL"}]})
    assert r.status_code == 409 and r.json()["code"] == "order_not_quotable"
    assert not Quote.objects.exists()


def test_quote_list_queries_do_not_grow(cw, api, django_assert_num_queries):
    o = order_at(cw, "diagnosing")
    ask_part(cw, o, cw.cap)
    for _i in range(12):
        services.quote_create(user=cw.pudong_tech, order_id=o.pk, labour_codes=["GENERAL", "INSPECT"])
    c = api(cw.pudong_agent)
    with CaptureQueriesContext(connection) as ctx:
        small = c.get(f"/orders/{o.pk}/quotes", {"limit": 2})
    assert small.status_code == 200 and len(small.json()["items"]) == 2
    with django_assert_num_queries(len(ctx)):
        big = c.get(f"/orders/{o.pk}/quotes", {"limit": 10}).json()
    assert len(big["items"]) == 10 and all(len(i["lines"]) == 4 for i in big["items"])
    assert [i["seq"] for i in big["items"]] == list(range(12, 2, -1))


# ---------------------------------------------------------------- payments, refunds, receipts

def test_payments_refunds_and_receipt(cw, api):
    o = order_at(cw, "diagnosing")
    r = api(cw.pudong_tech).post(f"/orders/{o.pk}/payments", {"amount": "130", "method": "wechat",
                                                              "reference": "WX123"})
    assert r.status_code == 201, r.content
    p = r.json()
    assert p["receipt_no"].startswith("SJ") and p["amount"] == "130.00" and p["method_label"] == "微信支付"
    r = api(cw.pudong_tech).post(f"/payments/{p['id']}/refunds", {"amount": "10", "reason": "x"})
    assert r.status_code == 403  # technicians do not refund
    r = api(cw.pudong_agent).post(f"/payments/{p['id']}/refunds", {"amount": "30", "reason": "上门费退还"})
    assert r.status_code == 201 and r.json()["amount"] == "30.00"
    r = api(cw.pudong_agent).post(f"/payments/{p['id']}/refunds", {"amount": "100.01", "reason": "超额"})
    assert r.status_code == 400 and "100.00" in r.json()["errors"]["amount"][0]
    assert api(cw.hangzhou_agent).post(f"/payments/{p['id']}/refunds", {"amount": "1", "reason": "x"}).status_code == 404
    body = api(cw.pudong_agent).get(f"/orders/{o.pk}/payments").json()
    assert body["items"][0]["refunded"] == "30.00" and body["items"][0]["net"] == "100.00"
    assert len(body["items"][0]["refunds"]) == 1

    r = api(cw.pudong_tech).get(f"/payments/{p['id']}/receipt.pdf")
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf" and r.content.startswith(b"%PDF")
    assert b"/FontFile2" in r.content
    assert api(cw.tianhe_agent).get(f"/payments/{p['id']}/receipt.pdf").status_code == 404
    assert api(cw.trainer).get(f"/payments/{p['id']}/receipt.pdf").status_code == 403


def test_bad_payments_are_4xx(cw, api):
    o = order_at(cw, "diagnosing")
    c = api(cw.pudong_agent)
    for amount in ("-1", 0, "1.001", "abc", 10**9):
        r = c.post(f"/orders/{o.pk}/payments", {"amount": amount, "method": "cash"})
        assert r.status_code == 400 and set(r.json()["errors"]) == {"amount"}, (amount, r.content)
    r = c.post(f"/orders/{o.pk}/payments", {"amount": "5", "method": "bitcoin"})
    assert r.status_code == 400 and "wechat" in r.json()["errors"]["method"][0]
    assert c.post("/orders/987654321/payments", {"amount": "5", "method": "cash"}).status_code == 404
    assert api(cw.pudong_dispatcher).post(f"/orders/{o.pk}/payments",
                                          {"amount": "5", "method": "cash"}).status_code == 403
    assert not Payment.objects.exists()


def test_payment_list_queries_do_not_grow(cw, api, django_assert_num_queries):
    o = order_at(cw, "diagnosing")
    for i in range(12):
        p = services.payment_record(user=cw.pudong_agent, order_id=o.pk, amount=str(10 + i), method="cash")
        services.refund_record(user=cw.pudong_agent, payment_id=p.pk, amount="1", reason="找零")
    c = api(cw.pudong_manager)
    with CaptureQueriesContext(connection) as ctx:
        assert len(c.get(f"/orders/{o.pk}/payments", {"limit": 2}).json()["items"]) == 2
    with django_assert_num_queries(len(ctx)):
        body = c.get(f"/orders/{o.pk}/payments", {"limit": 10}).json()
    assert len(body["items"]) == 10 and all(len(i["refunds"]) == 1 for i in body["items"])


# ---------------------------------------------------------------- service cost

def test_service_cost_endpoints(cw, api):
    o = order_at(cw, "completed", chargeable=False)
    r = api(cw.pudong_manager).get(f"/orders/{o.pk}/service-cost")
    assert r.status_code == 200 and r.json()["stored"] is True and r.json()["total"] == "70.00"
    open_order = order_at(cw, "on_site", chargeable=False)
    r = api(cw.pudong_manager).get(f"/orders/{open_order.pk}/service-cost")
    assert r.json()["stored"] is False and Decimal(r.json()["travel"]) == Decimal("30")
    assert api(cw.pudong_tech).get(f"/orders/{o.pk}/service-cost").status_code == 403  # no order.view
    assert api(cw.tianhe_agent).get(f"/orders/{o.pk}/service-cost").status_code == 404
    rows = api(cw.hq_manager).get("/service-costs").json()
    assert rows == [{"node_id": cw.pudong.pk, "node": "上海浦东网点", "month": str(timezone.localdate().replace(day=1)),
                     "orders": 1, "parts": "0.00", "labour": "40.00", "travel": "30.00", "loaner": "0.00",
                     "total": "70.00"}]
    assert api(cw.tianhe_agent).get("/service-costs").json() == []
