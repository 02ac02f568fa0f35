"""End to end in headless Chromium: sign in as an agent, find a customer by typing the
first digits of the phone (htmx live search), open the file, see the 三包 decision.

Marked ``browser``: without /usr/bin/chromium (or Playwright) it skips — except in CI
(CI=true), where it fails (``aftersales.conftest.unavailable``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

from aftersales.conftest import PASSWORD, unavailable

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a dev dependency
        unavailable("the playwright package is not installed")
    # Playwright's sync API runs an event loop in this thread; the ORM calls pytest-django
    # makes around the test (flush at teardown) must still be allowed.
    old = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if old is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = old


@pytest.fixture
def shots():
    path = Path(settings.VAR_DIR) / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def signed_in(chromium, live_server, shots, username: str, *, height: int):
    """A page signed in as ``username``; on failure a screenshot is kept as failure.png."""
    context = chromium.new_context(locale="zh-CN", viewport={"width": 1280, "height": height})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_url(f"{live_server.url}/")
        yield context, page
    except Exception:
        page.screenshot(path=str(shots / "failure.png"), full_page=True)
        raise
    finally:
        context.close()


def test_agent_finds_customer_and_sees_warranty(world, live_server, chromium, shots):
    with signed_in(chromium, live_server, shots, "pudong_agent", height=900) as (context, page):
        assert page.locator("html").get_attribute("lang") == "zh-hans"
        assert page.locator('[data-section="agent"]').is_visible()

        box = page.locator('[data-testid="customer-search"]')
        box.click()
        box.press_sequentially("13812", delay=60)  # typed, so htmx's input trigger fires
        link = page.locator('#search-results [data-testid="result-link"]', has_text="张伟")
        link.wait_for(state="visible")
        assert page.url == f"{live_server.url}/"  # live results, no page load
        page.screenshot(path=str(shots / "agent-search.png"), full_page=True)

        link.click()
        page.wait_for_url(f"{live_server.url}/customers/{world.c_pudong.pk}/")
        badge = page.locator(f'#unit-{world.u_pudong.pk} [data-testid="decision-badge"]')
        badge.wait_for(state="visible")
        assert badge.get_attribute("data-kind") == "free_repair"
        assert badge.inner_text().strip() == "免费维修"
        assert "13812345678" in page.locator('[data-testid="customer-phone"]').inner_text()

        # the htmx check for another part: the compressor two years on is still free
        page.locator(f"#unit-{world.u_pudong.pk} details summary").click()
        form = page.locator(f"#unit-{world.u_pudong.pk} form.check-form")
        later = world.u_pudong.purchase_date.replace(year=world.u_pudong.purchase_date.year + 2)
        form.locator("input[name=on]").fill(later.isoformat())
        form.locator("select[name=part]").select_option("COMP")
        form.locator("button[type=submit]").click()
        checked = page.locator(f'#check-{world.u_pudong.pk} [data-testid="decision-badge"]')
        checked.wait_for(state="visible")
        assert checked.get_attribute("data-kind") == "free_repair"
        assert page.url == f"{live_server.url}/customers/{world.c_pudong.pk}/"
        page.screenshot(path=str(shots / "customer-detail.png"), full_page=True)

        # the same page on a phone
        phone = chromium.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True,
                                     device_scale_factor=2)
        phone.add_cookies(context.cookies())
        mp = phone.new_page()
        mp.goto(f"{live_server.url}/customers/{world.c_pudong.pk}/")
        mp.locator('[data-testid="decision-badge"]').first.wait_for(state="visible")
        mp.screenshot(path=str(shots / "customer-detail-phone.png"), full_page=True)
        phone.close()


def test_manager_sees_chart_and_switches_to_english(world, live_server, chromium, shots):
    with signed_in(chromium, live_server, shots, "hq_manager", height=1000) as (_context, page):
        assert page.locator('[data-figure="units"]').inner_text().strip() == "2"
        page.locator("#chart-units svg").first.wait_for(state="attached")  # ECharts drew the chart
        page.screenshot(path=str(shots / "manager-home.png"), full_page=True)

        page.click('.lang-form button[value="en"]')
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("lang") == "en"
        assert "AfterSales Service Management" in page.locator(".brand").inner_text()
        page.locator("#chart-units svg").first.wait_for(state="attached")
        page.screenshot(path=str(shots / "manager-home-en.png"), full_page=True)
