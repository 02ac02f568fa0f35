"""End to end in headless Chromium: a centre manager's stock page (the chart, the htmx filter),
and a technician on a phone asking for a part on the job page, using it and sending the old
part back from the day page.

Marked ``browser``: skips without Chromium, except in CI (see aftersales.conftest.unavailable)."""

from __future__ import annotations

import pytest
from django.db import connections

from aftersales.parts import services
from aftersales.parts.models import PartRequest, RequestStatus, Transfer
from aftersales.web.tests import test_browser as wb

from .conftest import order_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

chromium = wb.chromium
shots = wb.shots


@pytest.fixture
def scene(pw):
    w = pw
    for wh, part, qty in ((w.wh_east, w.cap, 3), (w.wh_hangzhou, w.cap, 9), (w.wh_pudong, w.cap, 2),
                          (w.wh_east, w.belt, 12)):
        services.stock_receive(user=w.hq_manager, warehouse_id=wh.pk, part_id=part.pk, qty=qty)
        services.reorder_set(user=w.hq_manager, warehouse_id=wh.pk, part_id=part.pk, reorder_point=4, reorder_qty=8)
    w.van = services.van_for(w.tech_employee)
    services.stock_receive(user=w.hq_manager, warehouse_id=w.van.pk, part_id=w.cap.pk, qty=1)
    w.order = order_in(w, "on_site")
    return w


def test_manager_sees_the_stock_chart_and_filters(chromium, scene, live_server, shots):
    try:
        with wb.signed_in(chromium, live_server, shots, "east_manager", height=1100) as (_context, page):
            page.goto(f"{live_server.url}/parts/stock/")
            page.wait_for_selector("#chart-reorder svg")
            assert page.locator('[data-testid="stock-row"]').count() == 5
            assert page.locator('[data-testid="stock-row"][data-below="1"]').count() == 2
            page.screenshot(path=str(shots / "parts-stock.png"), full_page=True)
            box = page.locator("#id_q")
            box.click()
            box.press_sequentially("皮带", delay=60)
            page.wait_for_function("document.querySelectorAll('[data-testid=stock-row]').length === 1")
            assert "WH-EAST" in page.inner_text("#stock-table")
    finally:
        connections.close_all()


def test_technician_asks_uses_and_returns_a_part_on_the_phone(chromium, scene, live_server, shots):
    w = scene
    context = chromium.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True,
                                   has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", "pudong_tech")
        page.fill("#id_password", wb.PASSWORD)
        page.click("#login-submit")
        page.wait_for_url(f"{live_server.url}/**")
        page.goto(f"{live_server.url}/tech/orders/{w.order.pk}/")
        panel = page.locator('[data-testid="parts-panel"]')
        panel.wait_for()
        if not page.locator('[data-testid="parts-results"]').is_visible():
            page.click('[data-testid="open-request"]')
        search = panel.locator("input[type=search]")
        search.click()
        search.press_sequentially("电容", delay=60)
        page.wait_for_function("!document.querySelector('[data-testid=parts-results]').textContent"
                               ".includes('P-COMP-35')")
        page.screenshot(path=str(shots / "parts-tech-request.png"), full_page=True)
        page.click('[data-testid="request-P-CAP-35"]')
        page.wait_for_selector('[data-testid="consume-form"]')
        r = PartRequest.objects.get()
        assert r.status == RequestStatus.READY
        page.screenshot(path=str(shots / "parts-tech-ready.png"), full_page=True)
        page.click('[data-testid="consume"]')
        page.wait_for_selector('.parts-request[data-status="consumed"]')
        page.goto(f"{live_server.url}/tech/")
        page.locator('[data-testid="van-panel"]').wait_for()
        page.screenshot(path=str(shots / "parts-tech-van.png"), full_page=True)
        page.click('[data-testid="van-return"]')
        page.wait_for_selector(".msg-success")
        assert Transfer.objects.filter(source=w.van, defective=True).count() == 1
    except Exception:
        page.screenshot(path=str(shots / "failure.png"), full_page=True)
        raise
    finally:
        context.close()
        connections.close_all()
