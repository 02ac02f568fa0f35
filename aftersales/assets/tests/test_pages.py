"""The pages (loaner pool, tool register, one tool) and the panels of the order pages."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, RequestFactory
from django.utils import timezone

from aftersales.assets import panels
from aftersales.assets.models import Calibration, Loan, Loaner

from .conftest import repair, tool

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def msgs(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def d(n=0) -> str:
    return (timezone.localdate() + dt.timedelta(days=n)).isoformat()


# ---------------------------------------------------------------- the loaner pool

def test_the_pool_page(aw):
    o = repair(aw, days=5)
    late = repair(aw, days=20)
    c = signed_in(aw.pudong_manager)
    r = c.post("/assets/loans/lend/", {"order_id": late.pk, "loaner_id": aw.l_wm.pk, "reason": "manager",
                                       "due_on": d(1), "next": "/assets/loaners/"})
    assert r.status_code == 302 and r["Location"] == "/assets/loaners/"
    Loan.objects.filter(order=late).update(due_on=timezone.localdate() - dt.timedelta(days=3))
    r = c.get("/assets/loaners/")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'data-chart="stacked-bars"' in html and "loaner-pool-data" in html
    assert 'data-testid="overdue-loans"' in html and late.number in html
    assert 'data-testid="loan-candidates"' in html and o.number in html and 'data-testid="lend-form"' in html
    assert "BY-PD-001" in html and "BY-TH-001" not in html
    assert 'data-testid="loaner-create"' in html


def test_the_pool_page_for_a_technician_is_read_only(aw):
    repair(aw, days=5)
    r = signed_in(aw.pudong_tech).get("/assets/loaners/")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'data-testid="lend-form"' not in html and 'data-testid="loaner-create"' not in html


def test_pages_need_the_permission(aw, client):
    assert client.get("/assets/loaners/").status_code == 302  # to the log-in
    assert signed_in(aw.pudong_agent).get("/assets/loaners/").status_code == 403
    assert signed_in(aw.pudong_agent).get("/assets/tools/").status_code == 403
    assert signed_in(aw.pudong_tech).post("/assets/loans/lend/", {}).status_code == 403


def test_lend_from_the_page_with_bad_input_says_why_and_writes_nothing(aw):
    o = repair(aw, days=5)
    c = signed_in(aw.pudong_manager)
    r = c.post("/assets/loans/lend/", {"order_id": o.pk, "loaner_id": aw.l_ac.pk, "reason": "long_repair",
                                       "due_on": d(-2)})
    assert r.status_code == 302
    assert any("应还日期不能早于今天" in m for m in msgs(r))
    assert not Loan.objects.exists()
    # out of scope: 404
    assert signed_in(aw.tianhe_manager).post("/assets/loans/lend/", {
        "order_id": o.pk, "loaner_id": aw.l_th.pk, "reason": "manager"}).status_code == 404


def test_return_and_state_from_the_page(aw):
    o = repair(aw, days=5)
    c = signed_in(aw.pudong_manager)
    c.post("/assets/loans/lend/", {"order_id": o.pk, "loaner_id": aw.l_ac.pk, "reason": "long_repair"})
    loan = Loan.objects.get()
    r = c.post(f"/assets/loans/{loan.pk}/return/", {"condition": "damaged", "note": "漏水"})
    assert r.status_code == 302
    aw.l_ac.refresh_from_db()
    assert aw.l_ac.state == "maintenance"
    c.post(f"/assets/loaners/{aw.l_ac.pk}/state/", {"state": "available"})
    aw.l_ac.refresh_from_db()
    assert aw.l_ac.state == "available"
    r = c.post("/assets/loaners/new/", {"node_id": aw.pudong.pk, "category_id": aw.wm.pk, "asset_no": "BY-PD-777",
                                        "model_name": "波轮洗衣机", "daily_cost": "9"})
    assert Loaner.objects.filter(asset_no="BY-PD-777", daily_cost=9).exists()
    r = c.post("/assets/policy/", {"node_id": aw.pudong.pk, "after_days": "2"})
    assert any("借用规则已保存" in m for m in msgs(r))


# ---------------------------------------------------------------- tools

def test_the_register_highlights_overdue_rows(aw):
    tool(aw.pudong, "GJ-LATE", holder=aw.tech_employee, due_on=timezone.localdate() - dt.timedelta(days=1))
    tool(aw.pudong, "GJ-SOON", holder=aw.tech_employee, due_on=timezone.localdate() + dt.timedelta(days=2))
    tool(aw.pudong, "GJ-FINE")
    tool(aw.tianhe, "GJ-TH")
    c = signed_in(aw.pudong_manager)
    html = c.get("/assets/tools/").content.decode()
    assert 'class="row-overdue" data-tool' in html and 'class="row-soon" data-tool' in html
    assert "GJ-FINE" in html and "GJ-TH" not in html
    html = c.get("/assets/tools/", {"due": "overdue"}).content.decode()
    assert "GJ-LATE" in html and "GJ-SOON" not in html and "GJ-FINE" not in html
    html = signed_in(aw.pudong_tech).get("/assets/tools/", {"mine": "1"}).content.decode()
    assert "GJ-LATE" in html and "GJ-FINE" not in html and 'data-testid="tool-create"' not in html


def test_a_tool_page_with_calibration_and_certificate(aw, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    t = tool(aw.pudong, "GJ-1", holder=aw.tech_employee, due_on=timezone.localdate() - dt.timedelta(days=1))
    c = signed_in(aw.quality)
    html = c.get(f"/assets/tools/{t.pk}/").content.decode()
    assert 'data-testid="tool-overdue"' in html and 'data-testid="calibration-form"' in html
    pdf = SimpleUploadedFile("cert.pdf", b"%PDF-1.7 certificate", content_type="application/pdf")
    r = c.post(f"/assets/tools/{t.pk}/calibrate/", {"done_on": d(), "result": "pass", "certificate_no": "JL-77",
                                                    "agency": "上海市计量测试技术研究院", "certificate": pdf})
    assert r.status_code == 302 and r["Location"] == f"/assets/tools/{t.pk}/"
    t.refresh_from_db()
    assert t.due_on > timezone.localdate() and t.certificate
    cal = Calibration.objects.get()
    assert c.get(f"/assets/tools/{t.pk}/certificate/").status_code == 200
    assert c.get(f"/assets/calibrations/{cal.pk}/certificate/").status_code == 200
    assert signed_in(aw.tianhe_manager).get(f"/assets/tools/{t.pk}/certificate/").status_code == 404
    html = c.get(f"/assets/tools/{t.pk}/").content.decode()
    assert "JL-77" in html and 'data-testid="tool-overdue"' not in html
    r = c.post(f"/assets/tools/{t.pk}/calibrate/", {"done_on": d(3), "result": "pass"})
    assert any("日期不能晚于今天" in m for m in msgs(r))
    r = c.post(f"/assets/tools/{t.pk}/assign/", {"holder_id": ""})
    t.refresh_from_db()
    assert t.state == "in_store" and t.holder_id is None
    c.post(f"/assets/tools/{t.pk}/assign/", {"holder_id": str(aw.tech_employee.pk)})
    t.refresh_from_db()
    assert t.holder_id == aw.tech_employee.pk
    r = c.post("/assets/tools/new/", {"node_id": aw.pudong.pk, "code": "GJ-NEW", "name": "钳形电流表",
                                      "kind": "instrument", "check_kind": "calibration", "interval_months": "12",
                                      "due_on": d(200)})
    assert r.status_code == 302 and "GJ-NEW" in c.get("/assets/tools/").content.decode()
    assert signed_in(aw.pudong_manager).get("/assets/tools/999999/").status_code == 404


# ---------------------------------------------------------------- panels

def _request(user, path="/orders/1/"):
    r = RequestFactory().get(path)
    r.user = user
    return r


def test_order_panel_for_a_manager_lends_and_takes_back(aw):
    o = repair(aw, days=5)
    html = panels.order_panel(_request(aw.pudong_manager), o)
    assert 'data-testid="lend-form"' in html and "BY-PD-001" in html and "BY-PD-002" in html
    assert html.index("BY-PD-001") < html.index("BY-PD-002")  # the unit's category first
    assert 'value="long_repair" selected' in html
    assert panels.order_panel(_request(aw.pudong_agent), o) == ""  # no asset.view
    assert panels.order_panel(_request(aw.tianhe_manager), o) == ""
    view_only = panels.order_panel(_request(aw.pudong_tech), o)
    assert view_only == ""  # nothing lent, and not theirs to lend
    c = signed_in(aw.pudong_manager)
    c.post("/assets/loans/lend/", {"order_id": o.pk, "loaner_id": aw.l_ac.pk, "reason": "long_repair",
                                   "next": f"/orders/{o.pk}/"})
    html = panels.order_panel(_request(aw.pudong_manager), o)
    assert 'data-testid="current-loan"' in html and 'data-testid="return-form"' in html
    assert 'data-testid="lend-form"' not in html
    assert 'data-testid="return-form"' not in panels.order_panel(_request(aw.pudong_tech), o)


def test_order_panel_of_a_young_order_proposes_the_managers_decision(aw):
    o = repair(aw, days=1)
    html = panels.order_panel(_request(aw.pudong_manager), o)
    assert 'value="manager" selected' in html


def test_order_panel_is_empty_for_orders_that_do_not_need_one(aw):
    assert panels.order_panel(_request(aw.pudong_manager), repair(aw, days=5, status="completed")) == ""
    assert panels.order_panel(_request(aw.pudong_manager), repair(aw, days=5, type="maintenance")) == ""


def test_tech_panel_shows_the_loan_and_the_overdue_instrument(aw):
    o = repair(aw, days=5, status="accepted")
    assert panels.tech_panel(_request(aw.pudong_tech), o) == ""
    signed_in(aw.pudong_manager).post("/assets/loans/lend/", {"order_id": o.pk, "loaner_id": aw.l_ac.pk,
                                                              "reason": "long_repair"})
    html = panels.tech_panel(_request(aw.pudong_tech), o)
    assert 'data-testid="tech-loan"' in html and "BY-PD-001" in html and "<form" not in html
    tool(aw.pudong, "GJ-OLD", holder=aw.tech_employee, due_on=timezone.localdate() - dt.timedelta(days=1))
    html = panels.tech_panel(_request(aw.pudong_tech), o)
    assert 'data-testid="instrument-warning"' in html and "GJ-OLD" in html


# ---------------------------------------------------------------- query counts of the pages

def _page_queries(c, path) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert c.get(path).status_code == 200
    return len(ctx.captured_queries)


def _fill(w, n, k):
    today = timezone.localdate()
    for i in range(n):
        x = Loaner.objects.create(node=w.pudong, category=w.ac, asset_no=f"BY-P-{k}-{i}", model_name="空调",
                                  created_at=timezone.now(), updated_at=timezone.now())
        o = repair(w, days=9)
        Loan.objects.create(loaner=x, order=o, node=w.pudong, reason="manager", lent_at=timezone.now(),
                            due_on=today - dt.timedelta(days=1))
        repair(w, days=5)
        tool(w.pudong, f"GJ-P-{k}-{i}", holder=w.tech_employee, due_on=today - dt.timedelta(days=i))


@pytest.mark.parametrize("path", ["/assets/loaners/", "/assets/tools/"])
def test_pages_take_a_fixed_number_of_queries(aw, path):
    c = signed_in(aw.east_manager)
    _fill(aw, 2, "a")
    few = _page_queries(c, path)
    _fill(aw, 5, "b")
    assert _page_queries(c, path) == few
