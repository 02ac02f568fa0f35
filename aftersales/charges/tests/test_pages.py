"""The pages: the price list, the customer's quote page (public), the panels on the order and
job pages and their forms, the receipt download."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from aftersales.charges import services
from aftersales.charges.models import Payment, PriceItem, Quote, Refund

from .conftest import ask_part, order_at, png_bytes

pytestmark = pytest.mark.django_db


def client(user=None):
    c = Client()
    if user is not None:
        c.force_login(user)
    return c


# ---------------------------------------------------------------- the price list

def test_price_list_page_as_of_a_date(cw):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    services.price_set(user=cw.hq_manager, kind="visit", price="65", valid_from=tomorrow)
    c = client(cw.pudong_tech)
    html = c.get(reverse("charges:prices")).content.decode()
    assert "一般维修工时" in html and "50.00" in html and "65.00" not in html
    assert 'data-testid="price-form"' not in html  # technicians only read it
    html = c.get(reverse("charges:prices"), {"on": str(tomorrow), "kind": "visit"}).content.decode()
    assert "65.00" in html and "一般维修工时" not in html
    assert c.get(reverse("charges:prices"), {"on": "not-a-date"}).status_code == 200
    assert client(cw.nobody).get(reverse("charges:prices")).status_code == 403
    assert client().get(reverse("charges:prices")).status_code == 302


def test_price_form_sets_a_price_or_shows_the_errors(cw):
    c = client(cw.hq_manager)
    assert 'data-testid="price-form"' in c.get(reverse("charges:prices")).content.decode()
    start = timezone.localdate() + dt.timedelta(days=3)
    r = c.post(reverse("charges:price_set"), {"kind": "labour", "code": "GENERAL", "price": "88",
                                              "cost_rate": "42", "valid_from": str(start)})
    assert r.status_code == 302 and f"on={start}" in r["Location"]
    assert services.price_on("labour", "GENERAL", start).price == Decimal("88.00")
    r = c.post(reverse("charges:price_set"), {"kind": "labour", "code": "GENERAL", "price": "-1",
                                              "valid_from": "2001-01-01"})
    assert r.status_code == 400
    html = r.content.decode()
    assert "生效日期不能早于今天" in html and 'data-testid="price-errors"' in html
    assert client(cw.east_manager).post(reverse("charges:price_set"), {"kind": "visit"}).status_code == 403
    assert PriceItem.objects.filter(price=Decimal("-1")).count() == 0


# ---------------------------------------------------------------- the customer's page

def test_public_quote_page_approve_once(cw, sent):
    o = order_at(cw, "diagnosing")
    ask_part(cw, o, cw.cap)
    q = services.quote_create(user=cw.pudong_tech, order_id=o.pk, labour_codes=["GENERAL"])
    token = sent(cw.pudong_tech, q)
    url = reverse("charges:quote_public", args=[token])
    anon = Client(enforce_csrf_checks=True)
    r = anon.get(url)
    html = r.content.decode()
    assert r.status_code == 200 and o.number in html and "启动电容" in html and "148.00" in html
    assert "张伟" not in html and "138" not in html and r["Referrer-Policy"] == "no-referrer"
    assert anon.post(url, {"action": "dance"}).status_code == 400
    r = anon.post(url, {"action": "approve"})
    assert r.status_code == 200 and 'data-status="approved"' in r.content.decode()
    assert Quote.objects.get(pk=q.pk).status == "approved"
    r = anon.get(url)
    assert r.status_code == 410 and "已确认" in r.content.decode()
    assert anon.post(url, {"action": "reject"}).status_code == 410
    assert anon.get(reverse("charges:quote_public", args=["nope-nope-nope"])).status_code == 404


def test_public_quote_page_reject_and_expiry(cw, sent):
    o = order_at(cw, "diagnosing")
    q = services.quote_create(user=cw.pudong_tech, order_id=o.pk, labour_codes=["GENERAL"])
    token = sent(cw.pudong_tech, q)
    url = reverse("charges:quote_public", args=[token])
    r = Client().post(url, {"action": "reject", "reason": "太" * 201})
    assert r.status_code == 400
    r = Client().post(url, {"action": "reject", "reason": "价格太高"})
    assert r.status_code == 200 and Quote.objects.get(pk=q.pk).reject_reason == "价格太高"
    q2 = services.quote_create(user=cw.pudong_tech, order_id=o.pk, labour_codes=["GENERAL"])
    t2 = sent(cw.pudong_tech, q2)
    Quote.objects.filter(pk=q2.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    r = Client().get(reverse("charges:quote_public", args=[t2]))
    assert r.status_code == 410 and "过期" in r.content.decode()


# ---------------------------------------------------------------- the panels

def test_order_page_panel_shows_the_rule_and_the_quote(cw):
    o = order_at(cw, "diagnosing")
    c = client(cw.pudong_agent)
    html = c.get(reverse("web:order_detail", args=[o.pk])).content.decode()
    assert 'data-testid="charges-panel"' in html and 'data-testid="quote-required"' in html
    assert 'data-testid="quote-form"' in html  # charge.handle may quote
    services.quote_create(user=cw.pudong_agent, order_id=o.pk, labour_codes=["GENERAL"])
    html = c.get(reverse("web:order_detail", args=[o.pk])).content.decode()
    assert "一般维修工时" in html and "「草稿」" in html and 'data-testid="quote-send"' in html
    # a free order with nothing to charge shows no panel to someone who cannot quote
    free = order_at(cw, "diagnosing", chargeable=False)
    html = client(cw.quality).get(reverse("web:order_detail", args=[free.pk])).content.decode()
    assert 'data-testid="charges-panel"' not in html


def test_tech_page_builds_signs_and_takes_payment(cw):
    o = order_at(cw, "diagnosing")
    ask_part(cw, o, cw.cap)
    c = client(cw.pudong_tech)
    job = reverse("web:tech_job", args=[o.pk])
    html = c.get(job).content.decode()
    assert 'data-testid="charges-panel"' in html and 'value="GENERAL"' in html and "启动电容" in html
    r = c.post(reverse("charges:quote_create", args=[o.pk]), {"labour": ["GENERAL"], "qty_GENERAL": "2",
                                                              "visit_fee": "1", "next": job})
    assert r.status_code == 302 and r["Location"] == job
    q = Quote.objects.get(order=o)
    assert q.total == Decimal("228.00")  # 18 + 2 × 80 + 50
    html = c.get(job).content.decode()
    assert "data-signature-pad" in html and reverse("charges:quote_sign", args=[q.pk]) in html

    # the signature pad posts the PNG and gets the panel back
    r = c.post(reverse("charges:quote_sign", args=[q.pk]),
               {"signature": SimpleUploadedFile("signature.png", png_bytes(), "image/png")}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and 'id="charges-panel"' in r.content.decode() and "已签名确认" in r.content.decode()
    assert Quote.objects.get(pk=q.pk).status == "approved"
    r = c.post(reverse("charges:quote_sign", args=[q.pk]),
               {"signature": SimpleUploadedFile("signature.png", png_bytes(), "image/png")}, HTTP_HX_REQUEST="true")
    assert r.status_code == 409 and 'data-testid="charges-error"' in r.content.decode()
    assert c.get(reverse("charges:quote_signature", args=[q.pk])).status_code == 200

    html = c.get(job).content.decode()
    assert 'value="228.00"' in html  # the amount due is offered
    r = c.post(reverse("charges:payment", args=[o.pk]), {"amount": "228", "method": "alipay", "next": job})
    assert r.status_code == 302
    p = Payment.objects.get(order=o)
    r = c.get(reverse("charges:receipt", args=[o.pk, p.pk]))
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf" and b"/FontFile2" in r.content
    assert client(cw.tianhe_agent).get(reverse("charges:receipt", args=[o.pk, p.pk])).status_code == 404
    assert c.get(reverse("charges:receipt", args=[o.pk + 1000, p.pk])).status_code == 404


def test_panel_forms_show_errors_with_4xx(cw):
    o = order_at(cw, "diagnosing")
    c = client(cw.pudong_tech)
    r = c.post(reverse("charges:quote_create", args=[o.pk]), {"labour": ["NOPE"]})
    assert r.status_code == 400 and "NOPE" in r.content.decode()
    r = c.post(reverse("charges:payment", args=[o.pk]), {"amount": "-5", "method": "cash"})
    assert r.status_code == 400 and "金额须大于 0" in r.content.decode()
    r = c.post(reverse("charges:payment", args=[o.pk]), {"amount": "5", "method": "cash",
                                                          "next": "https://evil.example.com/"})
    assert r.status_code == 302 and r["Location"] == reverse("web:tech_job", args=[o.pk])  # not off-site
    p = Payment.objects.get(order=o)
    assert c.post(reverse("charges:refund", args=[p.pk]), {"amount": "1", "reason": "x"}).status_code == 403
    a = client(cw.pudong_agent)
    r = a.post(reverse("charges:refund", args=[p.pk]), {"amount": "6", "reason": "多退"})
    assert r.status_code == 400 and "5.00" in r.content.decode()
    r = a.post(reverse("charges:refund", args=[p.pk]), {"amount": "5", "reason": "取消收费"})
    assert r.status_code == 302 and r["Location"] == reverse("web:order_detail", args=[o.pk])
    assert Refund.objects.get(payment=p).amount == Decimal("5.00")
    assert client(cw.hangzhou_agent).post(reverse("charges:payment", args=[o.pk]),
                                          {"amount": "5", "method": "cash"}).status_code == 404
    closed = order_at(cw, "closed", chargeable=False)
    r = a.post(reverse("charges:quote_create", args=[closed.pk]), {"labour": ["GENERAL"]})
    assert r.status_code == 409
