"""End to end in headless Chromium: the customer rates the service on a phone from the SMS link
(stars, no login), and an agent records a call-back on the call-back page (htmx).

Marked ``browser``: skips without Chromium, except in CI (see aftersales.conftest.unavailable)."""

from __future__ import annotations

import pytest
from django.db import connections

from aftersales.feedback.models import Survey
from aftersales.tickets.models import WorkOrder
from aftersales.web.tests import test_browser as wb

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

chromium = wb.chromium
shots = wb.shots


def _close_body_connections():
    """Queries made in the test body while Playwright runs use a connection of their own (another
    context than the fixtures'); close it in the body, or PostgreSQL cannot drop the test database."""
    connections.close_all()


def test_customer_rates_on_a_phone(chromium, world, completed, live_server, shots):
    r = completed()
    context = chromium.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True,
                                   has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/feedback/s/{r.token}/")
        assert r.order.number in page.inner_text("[data-testid=survey-order]")
        for field, n in (("timeliness", 5), ("attitude", 4), ("professionalism", 5), ("result", 2)):
            page.click(f"label[for={field}-{n}]")
        page.check("input[name=resolved][value=yes]")
        page.fill("#comment", "师傅来得有点晚")
        page.screenshot(path=str(shots / "feedback-survey-phone.png"), full_page=True)
        page.click("button[type=submit]")
        page.wait_for_selector("[data-testid=survey-thanks]")
        page.screenshot(path=str(shots / "feedback-survey-thanks.png"), full_page=True)
        s = Survey.objects.get(pk=r.survey.pk)
        assert (s.timeliness, s.attitude, s.professionalism, s.result, s.resolved) == (5, 4, 5, 2, True)
        assert WorkOrder.objects.filter(parent=r.order, type="complaint").count() == 1
        page.goto(f"{live_server.url}/feedback/s/{r.token}/")
        assert "此评价链接已使用" in page.inner_text("[data-testid=survey-closed]")
    except Exception:
        page.screenshot(path=str(shots / "failure.png"), full_page=True)
        raise
    finally:
        context.close()
        _close_body_connections()


def test_agent_records_a_call_back(chromium, world, completed, live_server, shots):
    try:
        r = completed()
        with wb.signed_in(chromium, live_server, shots, "pudong_agent", height=1000) as (_context, page):
            page.goto(f"{live_server.url}/feedback/callbacks/")
            card = page.locator(f"#task-{r.task.pk}")
            assert "回访话术" in card.inner_text()
            for field in ("timeliness", "attitude", "professionalism", "result"):
                card.locator(f"select[name={field}]").select_option("5")
            card.locator("input[name=resolved][value=no]").check()
            card.locator("textarea[name=comment]").fill("空调仍不制冷")
            page.screenshot(path=str(shots / "feedback-callbacks.png"), full_page=True)
            card.locator("button[name=reached][value='1']").click()
            page.wait_for_selector(f"#task-{r.task.pk} [data-testid=callback-outcome]")
            assert page.url == f"{live_server.url}/feedback/callbacks/"  # swapped in place
            assert "工单已重开" in page.inner_text(f"#task-{r.task.pk}")
            page.screenshot(path=str(shots / "feedback-callback-recorded.png"), full_page=True)
        assert WorkOrder.objects.get(pk=r.order.pk).status == "reopened"
    finally:
        _close_body_connections()
