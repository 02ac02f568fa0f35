"""Quality reports: a monthly report built on a small hand-made data set (PDF with its CJK font
embedded, read back with poppler; the workbook read back with openpyxl), requests from the page
and the API (permissions, bad input, scope), the background hand-over and the hourly schedule.

Data (March 2026; February for the previous period), all received 09:00 local time:

    上海浦东 (east): 4 orders in March — 3 closed (one answered 90 min late against a 60-min
                     deadline: a response breach), 1 still dispatched; 2 in February, 1 closed.
    杭州西湖 (east): 2 orders in March, both closed.
    广州天河 (south): 1 order in March, closed.

So 华东服务中心 in March: 6 orders, 5 resolved → 问题解决率 83.3% (February: 1 of 2 → 50.0%),
5 of 6 responded on time → 响应及时率 83.3%, 1 SLA breach; one survey (overall 5, attitude 4).
HQ in March: 7 orders, 6 resolved → 85.7%.
"""

import datetime as dt
import os
import re
import shutil
import subprocess
from io import BytesIO

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from openpyxl import load_workbook

from aftersales.api.tests.conftest import ApiClient
from aftersales.feedback.models import CallbackTask, Survey
from aftersales.org.models import Employee
from aftersales.quality import facts, reports, tasks
from aftersales.quality.models import Action, Report
from aftersales.tickets.models import WorkOrder

POPPLER = all(shutil.which(t) for t in ("pdffonts", "pdftotext", "pdftoppm"))


def needs_poppler():
    """Skip without poppler-utils, except in CI (CI=true), where the tests must run."""
    if not POPPLER:
        from aftersales.conftest import unavailable

        unavailable("needs poppler-utils (pdffonts, pdftotext, pdftoppm)")


def run(*args, data: bytes) -> bytes:
    return subprocess.run(args, input=data, capture_output=True, check=True, timeout=60).stdout


TZ = timezone.get_fixed_timezone(480)
MARCH = dt.date(2026, 3, 1)


def at(day: dt.date, hour=9, minutes=0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minutes, tzinfo=TZ)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def data(world, media):
    w = world
    n = 0

    def order(node, day, *, resolved=True, late=False):
        nonlocal n
        n += 1
        t = at(day)
        return WorkOrder.objects.create(
            number=f"GD{n:04d}", type="repair", channel="phone", status="closed" if resolved else "dispatched",
            customer=w.c_pudong, unit=w.u_pudong, node=node, problem="空调不制冷", created_at=t, updated_at=t,
            responded_at=t + dt.timedelta(minutes=90 if late else 20), response_due=t + dt.timedelta(minutes=60),
            response_breached=late, completed_at=t + dt.timedelta(hours=5) if resolved else None,
            closed_at=t + dt.timedelta(hours=30) if resolved else None, visit_count=1 if resolved else 0)

    first = order(w.pudong, dt.date(2026, 3, 2))
    order(w.pudong, dt.date(2026, 3, 5), late=True)
    order(w.pudong, dt.date(2026, 3, 9))
    order(w.pudong, dt.date(2026, 3, 20), resolved=False)
    order(w.hangzhou, dt.date(2026, 3, 3))
    order(w.hangzhou, dt.date(2026, 3, 25))
    order(w.pudong, dt.date(2026, 2, 10))
    order(w.pudong, dt.date(2026, 2, 11), resolved=False)
    order(w.tianhe, dt.date(2026, 3, 4))
    task = CallbackTask.objects.create(order=first, node=w.pudong, due_at=at(dt.date(2026, 3, 3)))
    Survey.objects.create(order=first, task=task, node=w.pudong, channel="phone", answered_at=at(dt.date(2026, 3, 3)),
                          timeliness=5, attitude=4, professionalism=5, result=5, overall=5, resolved=True)
    Action.objects.create(number="GJ2026030001", title="浦东响应超时整改", source="figure",
                          indicator="response_on_time_rate", node=w.pudong, problem="响应超时", owner=w.east_manager,
                          due_on=dt.date(2026, 3, 20), created_by=w.quality, created_at=at(dt.date(2026, 3, 10)),
                          updated_at=at(dt.date(2026, 3, 10)))
    facts.rebuild()
    return w


def queue(world, node, kind="monthly", start=MARCH, **kw) -> Report:
    end = reports.period_of(kind, start)[1]
    return Report.objects.create(kind=kind, period_start=start, period_end=end, node=node, **kw)


@pytest.fixture
def built(data):
    r = reports.build(queue(data, data.east, requested_by=data.quality).pk)
    assert r.status == "done", r.error
    return r


# ---------------------------------------------------------------- the documents

@pytest.mark.django_db
def test_monthly_report_pdf_embeds_its_font_and_reads_in_chinese(built, tmp_path):
    needs_poppler()
    assert built.progress == 100 and built.built_at is not None and built.error == ""
    pdf = built.pdf.read()
    (tmp_path / "report.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF-") and b"/FontFile2" in pdf and b"STSong" not in pdf

    fonts = run("pdffonts", "-", data=pdf).decode()
    rows = [ln for ln in fonts.splitlines()[2:] if ln.strip()]
    assert rows and all(re.search(r"WenQuanYi|Noto|Droid|AR|UMing|UKai|CJK|Hei|Song|Kai", ln) for ln in rows), fonts
    assert all(re.search(r"TrueType\s+\S+\s+yes\s+yes\b", ln) for ln in rows), fonts  # only the CJK font, embedded

    text = run("pdftotext", "-layout", "-enc", "UTF-8", "-", "-", data=pdf).decode()
    for needle in ("华东服务中心 2026年3月 售后服务质量月报", "售后服务中心", "问题解决率", "83.3%", "50.0%",
                   "+33.3 个百分点", "上海浦东网点", "杭州西湖网点", "浦东响应超时整改", "逾期未完成", "超时工单 1 单",
                   "服务态度", "4.00", "主要指标月度趋势", "指标口径"):
        assert needle in text, needle
    assert "广州天河网点" not in text  # another centre's outlet

    png = run("pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", "-", data=pdf)
    (tmp_path / "cover.png").write_bytes(png)
    from PIL import Image

    im = Image.open(BytesIO(png)).convert("L")
    w, h = im.size
    title = im.crop((0, int(h * 0.18), w, int(h * 0.32)))  # the title band of the cover
    dark = sum(title.histogram()[:140])
    assert dark > 600, dark  # glyphs drawn, not a blank band


@pytest.mark.django_db
def test_monthly_report_workbook(built):
    wb = load_workbook(BytesIO(built.xlsx.read()))
    assert wb.sheetnames == ["概要", "指标汇总", "月度趋势", "下级单位排名", "产品品类", "满意度", "改进措施"]
    assert wb["概要"]["A1"].value == "华东服务中心 2026年3月 售后服务质量月报"

    ws = wb["指标汇总"]
    assert [c.value for c in ws[1]][:9] == ["指标", "分组", "单位", "本期", "目标方向", "目标", "状态", "上期", "较上期"]
    row = {r[0].value: r for r in ws.iter_rows(min_row=2)}
    res = row["问题解决率"]
    assert res[3].value == pytest.approx(0.833) and res[3].number_format == "0.0%"
    assert res[5].value == pytest.approx(0.9) and res[4].value == "≥" and res[6].value == "未达标"
    assert res[7].value == pytest.approx(0.5)
    assert row["受理工单量"][3].value == 6 and row["超时工单数"][3].value == 1

    ws = wb["月度趋势"]
    assert ws["A1"].value == "月份" and ws["B1"].value == "受理工单量（单）"
    months = {r[0].value: r for r in ws.iter_rows(min_row=2)}
    assert list(months)[0] == "2025-04" and list(months)[-1] == "2026-03"
    assert months["2026-03"][1].value == 6 and months["2026-02"][1].value == 2 and months["2025-12"][1].value == 0
    assert len(ws._charts) == 2

    ws = wb["下级单位排名"]
    names = [r[1].value for r in ws.iter_rows(min_row=2)]
    assert names == ["杭州西湖网点", "上海浦东网点"]  # all on target first
    assert ws.cell(row=3, column=6).value == pytest.approx(0.75) and len(ws._charts) == 1
    assert [r[1].value for r in wb["产品品类"].iter_rows(min_row=2)] == ["空调"]
    sat = {r[0].value: r for r in wb["满意度"].iter_rows(min_row=2, max_row=6)}
    assert sat["服务态度"][1].value == 4 and sat["总体满意度"][4].value == 1
    acts = list(wb["改进措施"].iter_rows(min_row=2, values_only=True))
    assert ("本期发起", "GJ2026030001") in [a[:2] for a in acts] and ("逾期未完成", "GJ2026030001") in [a[:2] for a in acts]


@pytest.mark.django_db
def test_outlet_report_ranks_technicians_and_failures_are_recorded(data, monkeypatch):
    emp = Employee.objects.get(user=data.pudong_tech)
    WorkOrder.objects.filter(node=data.pudong).update(assignee=emp)
    facts.refresh_orders(list(WorkOrder.objects.filter(node=data.pudong).values_list("pk", flat=True)))
    r = reports.build(queue(data, data.pudong).pk)
    assert r.status == "done", r.error
    wb = load_workbook(BytesIO(r.xlsx.read()))
    assert "技师排名" in wb.sheetnames and wb["技师排名"]["B2"].value == "李师傅"

    assert reports.build(r.pk).status == "done"  # not queued: left alone
    monkeypatch.setattr(reports, "render_pdf", lambda d: 1 / 0)
    r2 = reports.build(queue(data, data.hangzhou).pk)
    assert r2.status == "failed" and "ZeroDivisionError" in r2.error and not r2.pdf


# ---------------------------------------------------------------- requests

@pytest.fixture
def started(monkeypatch):
    """The builds handed to a worker after the request committed (run by the test, synchronously)."""
    ids = []
    monkeypatch.setattr(reports, "start_build", ids.append)
    return ids


def client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.mark.django_db
def test_request_from_the_page_builds_in_the_background_and_downloads(data, started,
                                                                      django_capture_on_commit_callbacks):
    c = client(data.quality)  # quality supervisor of 华东
    page = c.get("/quality/reports/")
    assert page.status_code == 200 and 'name="period"' in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        resp = c.post("/quality/reports/", {"kind": "monthly", "period": "2026-03", "node": data.east.pk})
    assert resp.status_code == 302
    r = Report.objects.get()
    assert started == [r.pk] and r.status == "queued" and r.requested_by == data.quality
    assert (r.kind, r.period_start, r.period_end, r.node) == ("monthly", MARCH, dt.date(2026, 3, 31), data.east)

    row = c.get(f"/quality/reports/{r.pk}/status/").content.decode()
    assert 'hx-trigger="every 2s"' in row  # polls while queued
    Report.objects.filter(pk=r.pk).update(status="running", progress=40)
    row = c.get(f"/quality/reports/{r.pk}/status/").content.decode()
    assert 'value="40"' in row and "生成中" in row
    Report.objects.filter(pk=r.pk).update(status="queued", progress=0)
    assert c.get(f"/quality/reports/{r.pk}.pdf").status_code == 404  # not built yet

    reports.build(started.pop())
    row = c.get(f"/quality/reports/{r.pk}/status/").content.decode()
    assert "hx-trigger" not in row and "已完成" in row and f"/quality/reports/{r.pk}.pdf" in row
    page = c.get("/quality/reports/").content.decode()
    assert "华东服务中心 2026年3月 售后服务质量月报" in page
    pdf = c.get(f"/quality/reports/{r.pk}.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert b"".join(pdf.streaming_content).startswith(b"%PDF-")
    assert "attachment" in pdf["Content-Disposition"] and "filename*=UTF-8''" in pdf["Content-Disposition"]
    xlsx = c.get(f"/quality/reports/{r.pk}.xlsx")
    assert xlsx.status_code == 200 and b"".join(xlsx.streaming_content).startswith(b"PK")

    # the same request again: the report there is, no new build; "rebuild" builds it anew
    with django_capture_on_commit_callbacks(execute=True):
        c.post("/quality/reports/", {"kind": "monthly", "period": "2026-03", "node": data.east.pk})
    assert Report.objects.count() == 1 and started == [] and Report.objects.get().status == "done"
    with django_capture_on_commit_callbacks(execute=True):
        c.post("/quality/reports/", {"kind": "monthly", "period": "2026-03", "node": data.east.pk, "rebuild": "on"})
    assert Report.objects.count() == 1 and started == [r.pk] and Report.objects.get().status == "queued"
    reports.build(started.pop())
    assert Report.objects.get().status == "done"
    assert len(os.listdir(os.path.dirname(Report.objects.get().pdf.path))) == 2  # the old files were replaced


@pytest.mark.django_db
def test_page_input_errors_scope_and_permissions(data, started):
    c = client(data.quality)
    for form, field in (({"kind": "weekly", "period": "2026-03"}, "kind"),
                        ({"kind": "monthly", "period": "2026-13"}, "period"),
                        ({"kind": "monthly", "period": "2026"}, "period"),
                        ({"kind": "monthly", "period": "2999-01"}, "period"),
                        ({"kind": "monthly", "period": ""}, "period")):
        resp = c.post("/quality/reports/", form)
        assert resp.status_code == 400, form
        assert field in resp.context["form"].errors, (form, resp.context["form"].errors)
    assert "尚未开始" in c.post("/quality/reports/", {"kind": "annual", "period": "2999"}).content.decode()
    assert c.post("/quality/reports/", {"kind": "monthly", "period": "2026-03", "node": data.south.pk}).status_code == 404
    assert not Report.objects.exists() and started == []

    south = queue(data, data.south)
    for url in (f"/quality/reports/{south.pk}/status/", f"/quality/reports/{south.pk}.pdf",
                f"/quality/reports/{south.pk}.xlsx"):
        assert c.get(url).status_code == 404, url
    assert "华南服务中心" not in c.get("/quality/reports/").content.decode()
    assert client(data.hq_manager).get(f"/quality/reports/{south.pk}/status/").status_code == 200
    for user in (data.pudong_tech, data.pudong_agent, data.nobody):
        assert client(user).get("/quality/reports/").status_code == 403
    assert Client().get("/quality/reports/").status_code == 302  # to the log-in page


@pytest.mark.django_db
def test_current_period_may_be_asked_for_and_the_outlet_manager_sees_own_outlet(data, started):
    c = client(data.pudong_manager)  # quality.view over 浦东 only
    this_month = timezone.localdate().strftime("%Y-%m")
    out = reports.report_request(user=data.pudong_manager, kind="monthly", period=this_month)
    assert out.queued and out.report.node == data.pudong  # default: the user's top node in scope
    q = reports.report_request(user=data.pudong_manager, kind="quarterly", period="2026-Q1")
    assert q.report.period_start == dt.date(2026, 1, 1) and q.report.period_end == dt.date(2026, 3, 31)
    assert c.post("/quality/reports/", {"kind": "monthly", "period": "2026-03", "node": data.east.pk}).status_code == 404


@pytest.mark.django_db
def test_background_hand_over(data, settings, monkeypatch):
    calls = []
    monkeypatch.setattr(tasks.report_build_task, "delay", lambda pk: calls.append(("celery", pk)))

    class FakeThread:
        def __init__(self, target, args, name, daemon):
            calls.append(("thread", args[0], target.__name__, daemon))

        def start(self):
            pass

    monkeypatch.setattr(reports.threading, "Thread", FakeThread)
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    reports.start_build(7)
    settings.CELERY_BROKER_URL = ""
    reports.start_build(8)
    assert calls == [("celery", 7), ("thread", 8, "_build_in_thread", True)]


# ---------------------------------------------------------------- the API

@pytest.mark.django_db
def test_api_request_status_and_download(data, started, django_capture_on_commit_callbacks):
    api = ApiClient(data.east_manager)
    with django_capture_on_commit_callbacks(execute=True):
        resp = api.post("/quality/reports/", {"kind": "monthly", "period": "2026-03"})  # default node: 华东
    assert resp.status_code == 202, resp.content
    body = resp.json()
    assert body["status"] == "queued" and body["node"]["id"] == data.east.pk and body["pdf_url"] is None
    assert body["title"] == "华东服务中心 2026年3月 售后服务质量月报" and started == [body["id"]]
    assert api.get(f"/quality/reports/{body['id']}/report.pdf").status_code == 404

    reports.build(started.pop())
    got = api.get(f"/quality/reports/{body['id']}").json()
    assert got["status"] == "done" and got["progress"] == 100 and got["built_at"]
    pdf = api.get(got["pdf_url"])
    assert pdf.status_code == 200 and b"".join(pdf.streaming_content).startswith(b"%PDF-")
    assert api.get(got["xlsx_url"]).status_code == 200

    again = api.post("/quality/reports/", {"kind": "monthly", "period": "2026-03", "node_id": data.east.pk})
    assert again.status_code == 200 and again.json()["id"] == body["id"] and started == []
    with django_capture_on_commit_callbacks(execute=True):
        rebuilt = api.post("/quality/reports/", {"kind": "monthly", "period": "2026-3", "rebuild": True})
    assert rebuilt.status_code == 202 and rebuilt.json()["id"] == body["id"] and started == [body["id"]]

    listed = api.get("/quality/reports/", {"kind": "monthly"}).json()
    assert [x["id"] for x in listed["items"]] == [body["id"]]
    assert api.get("/quality/reports/", {"kind": "annual"}).json()["items"] == []


@pytest.mark.django_db
def test_api_errors_scope_and_permissions(data, started):
    api = ApiClient(data.quality)
    for payload, fields in (({"kind": "weekly", "period": "2026-03"}, {"kind"}),
                            ({"kind": "monthly", "period": "03/2026"}, {"period"}),
                            ({"kind": "quarterly", "period": "2026-Q5"}, {"period"}),
                            ({"kind": "monthly", "period": "2999-01"}, {"period"})):
        resp = api.post("/quality/reports/", payload)
        assert resp.status_code == 400, payload
        assert set(resp.json()["errors"]) == fields, resp.json()
    for payload, field in (({"kind": "monthly"}, "period"), ({"kind": "monthly", "period": "2026-03", "x": 1}, "x"),
                           ({"kind": "monthly", "period": "2026-03", "node_id": 0}, "node_id"),
                           ({"kind": "m" * 11, "period": "2026-03"}, "kind")):
        resp = api.post("/quality/reports/", payload)
        assert resp.status_code == 400 and field in resp.json()["errors"], (payload, resp.content)
    assert api.post("/quality/reports/", {"kind": "monthly", "period": "2026-03",
                                          "node_id": data.south.pk}).status_code == 404
    south = queue(data, data.south)
    assert api.get(f"/quality/reports/{south.pk}").status_code == 404
    assert api.get(f"/quality/reports/{south.pk}/report.xlsx").status_code == 404
    assert ApiClient(data.hq_manager).get(f"/quality/reports/{south.pk}").status_code == 200
    for user in (data.pudong_tech, data.tianhe_agent):
        assert ApiClient(user).get("/quality/reports/").status_code == 403
        assert ApiClient(user).post("/quality/reports/", {"kind": "monthly", "period": "2026-03"}).status_code == 403
    assert ApiClient().get("/quality/reports/").status_code == 401
    assert not Report.objects.filter(node=data.east).exists() and started == []


@pytest.mark.django_db
def test_lists_cost_a_fixed_number_of_queries(world, media):
    def make(n):
        Report.objects.all().delete()
        for i in range(n):
            start = dt.date(2020 + i // 12, i % 12 + 1, 1)
            queue(world, world.east if i % 2 else world.pudong, start=start, requested_by=world.quality,
                  status="done", progress=100)

    counts = {}
    for n in (5, 50):
        make(n)
        c, api = client(world.quality), ApiClient(world.quality)
        with CaptureQueriesContext(connection) as page:
            assert c.get("/quality/reports/").status_code == 200
        with CaptureQueriesContext(connection) as listed:
            assert len(api.get("/quality/reports/", {"limit": 50}).json()["items"]) == n
        counts[n] = (len(page), len(listed))
    assert counts[5] == counts[50], counts


# ---------------------------------------------------------------- the schedule

@pytest.mark.django_db
def test_build_scheduled_makes_the_reports_of_the_period_just_ended_once(data):
    built = reports.build_scheduled(today=dt.date(2026, 4, 2))  # March ended, and with it Q1
    rows = Report.objects.filter(pk__in=built)
    assert sorted((r.kind, r.period_start, r.node.code) for r in rows) == sorted(
        [(k, s, n) for k, s in (("monthly", MARCH), ("quarterly", dt.date(2026, 1, 1)))
         for n in ("HQ", "EAST", "SOUTH")])
    assert all(r.status == "done" and r.scheduled and r.pdf and r.xlsx for r in rows)
    assert reports.build_scheduled(today=dt.date(2026, 4, 2)) == []  # idempotent
    assert reports.build_scheduled(today=dt.date(2026, 4, 20)) == []

    # a build that died (its process stopped) is marked failed and built again on the next run
    hq_march = Report.objects.get(kind="monthly", period_start=MARCH, node=data.hq)
    Report.objects.filter(pk=hq_march.pk).update(status="running", created_at=timezone.now() - dt.timedelta(hours=3))
    assert reports.build_scheduled(today=dt.date(2026, 4, 3)) == [hq_march.pk]
    assert Report.objects.get(pk=hq_march.pk).status == "done"

    may = reports.build_scheduled(today=dt.date(2026, 5, 1))
    assert sorted(Report.objects.filter(pk__in=may).values_list("kind", flat=True)) == ["monthly"] * 3
    jan = reports.build_scheduled(today=dt.date(2027, 1, 5))
    kinds = sorted(Report.objects.filter(pk__in=jan).values_list("kind", "period_start"))
    assert kinds == sorted([("annual", dt.date(2026, 1, 1))] * 3 + [("monthly", dt.date(2026, 12, 1))] * 3
                           + [("quarterly", dt.date(2026, 10, 1))] * 3)
    text = run("pdftotext", "-enc", "UTF-8", "-", "-", data=Report.objects.get(
        kind="annual", node=data.hq).pdf.read()).decode() if POPPLER else ""
    assert not POPPLER or "总部 2026年度 售后服务质量年报" in text
