"""End to end in headless Chromium: the customer approves a quote on a phone from the SMS link,
and the customer signs a quote on the technician's phone (the signature pad of the job page).

Marked ``browser``: skips without Chromium, except in CI (see aftersales.conftest.unavailable)."""

from __future__ import annotations

import pytest
from django.db import connections

from aftersales.charges import services
from aftersales.charges.models import Quote
from aftersales.web.tests import test_browser as wb

from .conftest import ask_part, order_at

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

chromium = wb.chromium
shots = wb.shots


def test_customer_approves_a_quote_on_a_phone(chromium, cw, sent, live_server, shots):
    o = order_at(cw, "diagnosing")
    ask_part(cw, o, cw.cap)
    q = services.quote_create(user=cw.pudong_tech, order_id=o.pk, labour_codes=["GENERAL"])
    token = sent(cw.pudong_tech, q)
    context = chromium.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True,
                                   has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/charges/q/{token}/")
        assert o.number in page.inner_text("[data-testid=quote-order]")
        assert page.inner_text("[data-testid=quote-due]") == "148.00"
        page.screenshot(path=str(shots / "charges-quote-phone.png"), full_page=True)
        page.click("[data-testid=quote-approve]")
        page.locator("[data-testid=quote-done]").wait_for(state="visible")
        page.screenshot(path=str(shots / "charges-quote-approved-phone.png"), full_page=True)
    finally:
        context.close()
    assert Quote.objects.get(pk=q.pk).status == "approved"
    connections.close_all()


def test_customer_signs_the_quote_on_the_technicians_phone(chromium, cw, live_server, shots, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    o = order_at(cw, "diagnosing")
    ask_part(cw, o, cw.cap)
    q = services.quote_create(user=cw.pudong_tech, order_id=o.pk, labour_codes=["GENERAL"])
    with wb.signed_in(chromium, live_server, shots, "pudong_tech", height=900) as (context, _page):
        phone = chromium.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True,
                                     has_touch=True, device_scale_factor=2)
        phone.add_cookies(context.cookies())
        page = phone.new_page()
        page.set_default_timeout(15_000)
        try:
            page.goto(f"{live_server.url}/tech/orders/{o.pk}/")
            assert "须经客户确认报价" in page.inner_text("[data-testid=quote-required]")
            pad = page.locator("#charges-panel [data-signature-pad]")
            pad.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "charges-tech-quote-phone.png"), full_page=True)
            b = pad.bounding_box()
            page.mouse.move(b["x"] + 20, b["y"] + 30)
            page.mouse.down()
            for i in range(1, 12):
                page.mouse.move(b["x"] + 20 + i * 25, b["y"] + 30 + (i % 3) * 20)
            page.mouse.up()
            page.click("[data-testid=quote-sign]")
            page.locator("[data-testid=charges-flash]").wait_for(state="visible")
            assert "已签名确认" in page.inner_text("[data-testid=charges-flash]")
            assert page.locator("[data-testid=quote-required]").count() == 0
            page.screenshot(path=str(shots / "charges-tech-signed-phone.png"), full_page=True)
        finally:
            phone.close()
    q.refresh_from_db()
    assert q.status == "approved" and q.approved_via == "signature" and q.signature.name.endswith(".png")
    connections.close_all()
