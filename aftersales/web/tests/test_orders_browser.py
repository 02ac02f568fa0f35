"""End to end in headless Chromium: the agent's intake on the phone (type the caller's number,
pick the customer and the unit, type the problem, see the suggested type, create, land on the
order page, classify it there), and the technician's signature on a phone.

Marked ``browser`` like ``test_browser.py``: skipped without /usr/bin/chromium outside CI.
"""

from __future__ import annotations

import pytest

from aftersales.tickets import workflow
from aftersales.tickets.models import Status, WorkOrder

from . import test_browser as wb
from .test_orders_pages import dispatch, new_order, seed_orders_reference

chromium = wb.chromium  # the shared fixtures
shots = wb.shots
signed_in = wb.signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_agent_intake_end_to_end(world, live_server, chromium, shots):
    seed_orders_reference()
    with signed_in(chromium, live_server, shots, "pudong_agent", height=1000) as (context, page):
        page.goto(f"{live_server.url}/orders/new/")
        box = page.locator('[data-testid="intake-search"]')
        box.click()
        box.press_sequentially("13812", delay=50)  # typed: htmx's input trigger fires
        pick = page.locator('[data-testid="intake-pick"]', has_text="张伟")
        pick.wait_for(state="visible")
        pick.click()

        picked = page.locator('[data-testid="intake-customer"]')
        picked.wait_for(state="visible")
        assert "张伟" in picked.inner_text()
        unit = page.locator(f'input[name="unit_id"][value="{world.u_pudong.pk}"]')
        assert unit.is_checked()  # the only unit is picked
        assert page.locator('[data-testid="intake-decision"]').first.get_attribute("data-kind") == "free_repair"
        assert page.locator('[data-testid="intake-results"]').count() == 0  # the results list was cleared

        problem = page.locator('[data-testid="intake-problem"]')
        problem.click()
        problem.press_sequentially("空调不制冷", delay=60)
        page.locator('[data-testid="intake-suggestion"][data-type="repair"]').wait_for(state="visible")
        assert page.locator("#id_type").input_value() == "repair"
        assert page.locator("#id_fault_category").input_value() == "NO_COOLING"
        page.locator('[data-testid="sla-resolve"]').wait_for(state="visible")
        assert page.url == f"{live_server.url}/orders/new/"  # all of it without a page load
        page.screenshot(path=str(shots / "order-intake.png"), full_page=True)

        page.click('[data-testid="intake-submit"]')
        page.wait_for_url(f"{live_server.url}/orders/*/")
        o = WorkOrder.objects.get()
        assert page.url == f"{live_server.url}/orders/{o.pk}/"
        assert page.locator('[data-testid="order-number"]').inner_text() == o.number
        assert page.locator('[data-testid="order-status"]').inner_text().strip() == "已受理"
        assert page.locator('.timeline li[data-action="create"]').count() == 1
        assert (o.type, o.fault_category.code, o.owner.username) == ("repair", "NO_COOLING", "pudong_agent")

        # classify on the order page (htmx: the body is swapped, no page load)
        page.click('[data-testid="open-classify"]')
        page.locator('#move-classify [data-testid="move-classify"]').click()
        page.locator('[data-testid="order-status"]', has_text="待派工").wait_for(state="visible")
        assert page.locator('.timeline li[data-action="classify"]').count() == 1
        page.screenshot(path=str(shots / "order-page.png"), full_page=True)

        # a stale page: the order is cancelled in another tab, then escalated here → 409 in the form
        other = context.new_page()
        other.goto(page.url)
        other.click('[data-testid="open-cancel"]')
        other.fill("#id_cancel-reason", "客户已自行解决")
        other.locator('#move-cancel [data-testid="move-cancel"]').click()
        other.locator('[data-testid="order-status"]', has_text="已取消").wait_for(state="visible")
        other.close()
        page.click('[data-testid="open-escalate"]')
        page.fill("#id_escalate-reason", "客户要求尽快处理")
        page.locator('#move-escalate [data-testid="move-escalate"]').click()
        error = page.locator('#move-escalate [data-testid="move-error"]')
        error.wait_for(state="visible")
        assert "不能执行「升级」" in error.inner_text()
        o.refresh_from_db()
        assert o.status == Status.CANCELLED and o.escalation_level == 0


def test_technician_signature_on_a_phone(world, live_server, chromium, shots, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    seed_orders_reference()
    o = dispatch(world, new_order(world))
    for name in ("accept", "depart", "arrive"):
        workflow.move(o.pk, name, user=world.pudong_tech)
    with signed_in(chromium, live_server, shots, "pudong_tech", height=900) as (context, _page):
        phone = chromium.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True,
                                    has_touch=True, device_scale_factor=2)
        phone.add_cookies(context.cookies())
        page = phone.new_page()
        page.set_default_timeout(15_000)
        try:
            page.goto(f"{live_server.url}/tech/")
            page.locator(f'[data-testid="job"][data-order="{o.pk}"] .job-link').click()
            page.wait_for_url(f"{live_server.url}/tech/orders/{o.pk}/")
            page.screenshot(path=str(shots / "tech-job-phone.png"), full_page=True)
            page.locator("details.signature summary").click()
            pad = page.locator("[data-signature-pad]")
            pad.scroll_into_view_if_needed()
            b = pad.bounding_box()
            page.mouse.move(b["x"] + 20, b["y"] + 30)
            page.mouse.down()
            for i in range(1, 12):
                page.mouse.move(b["x"] + 20 + i * 25, b["y"] + 30 + (i % 3) * 20)
            page.mouse.up()
            page.click("[data-signature-submit]")
            page.locator('[data-testid="confirmed"]').wait_for(state="visible")
            page.screenshot(path=str(shots / "tech-signed-phone.png"), full_page=True)
        finally:
            phone.close()
    o.refresh_from_db()
    assert o.confirmed_by == "signature" and o.signature.name.endswith(".png")
