"""Targets per indicator and node (own, inherited from the nearest ancestor, the default) with
their checks; sales per outlet and month and units sold per model and month, entered in a grid
or imported from .xlsx / CSV with bad rows reported by row and field and nothing half written."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from aftersales.api.tests.conftest import ApiClient, errors_of
from aftersales.core.errors import NotFound, PermissionDenied, ValidationFailed
from aftersales.quality import selectors, services
from aftersales.quality import selectors_improve as reads
from aftersales.quality.models import ModelSales, NodeSales, Target
from aftersales.records.models import AuditEntry

pytestmark = pytest.mark.django_db

THIS_YEAR = timezone.localdate().year
LAST_YEAR = THIS_YEAR - 1


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def rows_of(node) -> dict:
    return {r["code"]: r for r in reads.target_rows(node)}


# ================================================================ targets

def test_inheritance_own_and_default(world):
    services.target_set(user=world.hq_manager, node_id=world.hq.pk, indicator="ftf_rate", target="80")
    services.target_set(user=world.east_manager, node_id=world.east.pk, indicator="ftf_rate", target="88",
                        amber="3")
    r = rows_of(world.pudong)["ftf_rate"]
    assert (r["target"], r["amber"], r["source"], r["from_node"]) == (88.0, 3.0, "inherited", "华东服务中心")
    assert selectors.target_for("ftf_rate", world.pudong) == (88.0, 3.0)  # the dashboards agree
    r = rows_of(world.tianhe)["ftf_rate"]
    assert (r["target"], r["amber"], r["source"], r["from_node"]) == (80.0, 5.0, "inherited", "总部")  # amber: default
    r = rows_of(world.pudong)["response_mean"]
    assert (r["target"], r["amber"], r["source"]) == (60, 30, "default")
    assert rows_of(world.pudong)["orders"]["source"] == "none"
    services.target_set(user=world.east_manager, node_id=world.pudong.pk, indicator="ftf_rate", target="92.5",
                        amber="0")
    r = rows_of(world.pudong)["ftf_rate"]
    assert (r["target"], r["amber"], r["source"]) == (92.5, 0.0, "own")
    assert services.target_clear(user=world.east_manager, node_id=world.pudong.pk, indicator="ftf_rate") is True
    assert rows_of(world.pudong)["ftf_rate"]["source"] == "inherited"
    assert services.target_clear(user=world.east_manager, node_id=world.pudong.pk, indicator="ftf_rate") is False
    actions = list(AuditEntry.objects.filter(object_type="quality.target").values_list("action", flat=True))
    assert actions.count("quality.target_set") == 3 and actions.count("quality.target_clear") == 1


@pytest.mark.parametrize("indicator, target, amber, fields", [
    ("ftf_rate", "101", None, {"target"}),
    ("ftf_rate", "-1", None, {"target"}),
    ("ftf_rate", "90", "-2", {"amber"}),
    ("ftf_rate", "90", "150", {"amber"}),
    ("ftf_rate", "abc", "x", {"target", "amber"}),
    ("ftf_rate", "", None, {"target"}),
    ("ftf_rate", "90.123", None, {"target"}),
    ("sat_overall", "6", None, {"target"}),
    ("response_mean", "-5", None, {"target"}),
    ("orders", "100", None, {"indicator"}),
    ("no_such", "1", None, {"indicator"}),
])
def test_target_validation(world, indicator, target, amber, fields):
    with pytest.raises(ValidationFailed) as e:
        services.target_set(user=world.east_manager, node_id=world.pudong.pk, indicator=indicator, target=target,
                            amber=amber)
    assert set(e.value.errors) == fields
    assert not Target.objects.exists()


def test_target_permissions(world):
    with pytest.raises(PermissionDenied):  # quality.view but not quality.manage
        services.target_set(user=world.pudong_manager, node_id=world.pudong.pk, indicator="ftf_rate", target=90)
    with pytest.raises(NotFound):
        services.target_set(user=world.east_manager, node_id=world.tianhe.pk, indicator="ftf_rate", target=90)
    with pytest.raises(NotFound):
        services.target_set(user=world.pudong_agent, node_id=world.pudong.pk, indicator="ftf_rate", target=90)
    assert services.target_set(user=world.quality, node_id=world.east.pk, indicator="ftf_rate", target=90).pk


def test_targets_page(world):
    services.target_set(user=world.hq_manager, node_id=world.east.pk, indicator="complaint_rate", target="1.5")
    c = _client(world.east_manager)
    html = c.get(f"/quality/targets/?node={world.pudong.pk}").content.decode()
    assert 'data-code="complaint_rate" data-source="inherited"' in html and "继承自 华东服务中心" in html
    assert 'data-code="ftf_rate" data-source="default"' in html and 'name="target"' in html
    resp = c.post(f"/quality/targets/?node={world.pudong.pk}", {"indicator": "complaint_rate", "target": "150",
                                                                "action": "set"})
    assert resp.status_code == 400 and 'data-field="target"' in resp.content.decode()
    resp = c.post(f"/quality/targets/?node={world.pudong.pk}", {"indicator": "complaint_rate", "target": "1.2",
                                                                "amber": "0.5", "action": "set"})
    assert resp.status_code == 302
    html = c.get(f"/quality/targets/?node={world.pudong.pk}").content.decode()
    assert 'data-code="complaint_rate" data-source="own"' in html
    resp = c.post(f"/quality/targets/?node={world.pudong.pk}", {"indicator": "complaint_rate", "action": "clear"})
    assert resp.status_code == 302 and rows_of(world.pudong)["complaint_rate"]["source"] == "inherited"
    viewer = _client(world.pudong_manager)
    html = viewer.get("/quality/targets/").content.decode()
    assert f'data-node="{world.pudong.pk}"' in html and 'name="target"' not in html
    assert viewer.post("/quality/targets/", {"indicator": "ftf_rate", "target": "90"}).status_code == 403
    assert viewer.get(f"/quality/targets/?node={world.east.pk}").status_code == 404


def test_targets_api(world):
    api = ApiClient(world.east_manager)
    resp = api.put("/quality/improve/targets", {"node_id": world.pudong.pk, "indicator": "ftf_rate", "target": 120})
    assert resp.status_code == 400 and "target" in errors_of(resp)
    resp = api.put("/quality/improve/targets", {"node_id": world.pudong.pk, "indicator": "ftf_rate", "target": "87.5"})
    assert resp.status_code == 200 and resp.json()["amber"] == "5.00"
    rows = {r["code"]: r for r in api.get("/quality/improve/targets", {"node_id": world.pudong.pk}).json()}
    assert rows["ftf_rate"]["source"] == "own" and rows["ftf_rate"]["target"] == 87.5
    assert api.delete(f"/quality/improve/targets/{world.pudong.pk}/ftf_rate").status_code == 204
    assert ApiClient(world.pudong_manager).put("/quality/improve/targets", {
        "node_id": world.pudong.pk, "indicator": "ftf_rate", "target": 90}).status_code == 403
    assert api.get("/quality/improve/targets", {"node_id": world.tianhe.pk}).status_code == 404


# ================================================================ sales: the grid

def test_sales_set_and_clear(world):
    r = services.sales_set(user=world.east_manager, node_id=world.pudong.pk, month="2025-01", amount="120000.50")
    assert (r.created, r.updated) == (1, 0)
    assert NodeSales.objects.get(node=world.pudong, month=dt.date(2025, 1, 1)).amount == Decimal("120000.50")
    r = services.sales_set(user=world.east_manager, node_id=world.pudong.pk, month="2025-01", amount="120000.50")
    assert r.unchanged == 1
    r = services.sales_set(user=world.east_manager, node_id=world.pudong.pk, month="2025-01", amount="")
    assert r.cleared == 1 and not NodeSales.objects.exists()
    with pytest.raises(ValidationFailed) as e:
        services.sales_set(user=world.east_manager, node_id=world.east.pk, month="2025-13", amount="-1")
    assert set(e.value.errors) == {"node_id", "month", "amount"}
    future = (timezone.localdate().replace(day=1) + dt.timedelta(days=40)).strftime("%Y-%m")
    with pytest.raises(ValidationFailed) as e:
        services.sales_set(user=world.east_manager, node_id=world.pudong.pk, month=future, amount="1")
    assert set(e.value.errors) == {"month"}
    with pytest.raises(ValidationFailed) as e:  # quality.view only
        services.sales_set(user=world.pudong_manager, node_id=world.pudong.pk, month="2025-01", amount="1")
    assert set(e.value.errors) == {"node_id"}


def test_sales_feed_the_cells(world):
    services.sales_set_many(user=world.east_manager, entries=[
        {"node_id": world.pudong.pk, "month": "2025-01", "amount": "1000"},
        {"node_id": world.hangzhou.pk, "month": "2025-01", "amount": "500"},
        {"node_id": world.hangzhou.pk, "month": "2025-02", "amount": "250"}])
    cells = selectors.cells(nodes=[world.east, world.pudong], grain="month", start=dt.date(2025, 1, 1),
                            end=dt.date(2025, 2, 28), by_period=False)
    assert cells[(world.east.pk, None, "")]["sales"] == Decimal("1750.00")
    assert cells[(world.pudong.pk, None, "")]["sales"] == Decimal("1000.00")


def test_sales_grid_page_all_or_nothing(world):
    c = _client(world.east_manager)
    url = f"/quality/sales/?node={world.east.pk}&year={LAST_YEAR}"
    html = c.get(url).content.decode()
    assert f'name="c_{world.pudong.pk}_1"' in html and f'name="c_{world.hangzhou.pk}_12"' in html
    assert f'data-node="{world.tianhe.pk}"' not in html
    bad = {"node": world.east.pk, "year": LAST_YEAR, f"c_{world.pudong.pk}_1": "1000",
           f"c_{world.hangzhou.pk}_2": "abc"}
    resp = c.post(url, bad)
    assert resp.status_code == 400 and f'data-cell="c_{world.hangzhou.pk}_2"' in resp.content.decode()
    assert not NodeSales.objects.exists()  # nothing written
    ok = {**bad, f"c_{world.hangzhou.pk}_2": "2,000.00"}
    assert c.post(url, ok).status_code == 302
    assert {(s.node_id, s.month.month, s.amount) for s in NodeSales.objects.all()} == {
        (world.pudong.pk, 1, Decimal("1000.00")), (world.hangzhou.pk, 2, Decimal("2000.00"))}
    html = c.get(url).content.decode()
    assert 'value="1000.00"' in html
    assert c.post(url, {**ok, f"c_{world.pudong.pk}_1": ""}).status_code == 302
    assert NodeSales.objects.count() == 1
    viewer = _client(world.pudong_manager)
    html = viewer.get(f"/quality/sales/?year={LAST_YEAR}").content.decode()
    assert f'data-node="{world.pudong.pk}"' in html and f'data-node="{world.hangzhou.pk}"' not in html
    assert 'data-testid="sales-save"' not in html and f'name="c_{world.pudong.pk}_1"' not in html
    assert viewer.get(f"/quality/sales/?node={world.east.pk}").status_code == 404


# ================================================================ sales: imports

def _csv(text: str) -> bytes:
    return text.encode("utf-8-sig")


def test_sales_import_reports_bad_rows(world):
    content = _csv(
        "节点编码,月份,销售额\n"
        "SH-PD,2025-01,1000\n"         # 2 ok
        "HZ-XH,2025-13,50\n"           # 3 bad month
        "GZ-TH,2025-01,10\n"           # 4 out of the east manager's scope
        "EAST,2025-01,5\n"             # 5 not an outlet
        "SH-PD,2025-02,-5\n"           # 6 negative
        "HZ-XH,2025/3,\"1,250.5\"\n"   # 7 ok
        "SH-PD,2025-01,999\n"          # 8 the same outlet and month again
        ",2025-01,1\n")                # 9 no code
    r = services.sales_import(user=world.east_manager, content=content)
    assert (r.total, r.created, r.errors) == (8, 2, 6)
    failures = {f.row.number: f for f in r.failures}
    assert set(failures) == {3, 4, 5, 6, 8, 9}
    assert failures[3].fields == "月份" and failures[6].fields == "销售额" and failures[4].fields == "节点编码"
    assert "不是网点" in failures[5].reason and "第 2 行重复" in failures[8].reason
    assert r.report is not None
    assert {(s.node.code, s.month, s.amount) for s in NodeSales.objects.select_related("node")} == {
        ("SH-PD", dt.date(2025, 1, 1), Decimal("1000.00")), ("HZ-XH", dt.date(2025, 3, 1), Decimal("1250.50"))}
    again = services.sales_import(user=world.east_manager, content=_csv("node_code,month,amount\nSH-PD,2025-01,1100\n"))
    assert (again.updated, again.errors) == (1, 0)
    with pytest.raises(ValidationFailed) as e:
        services.sales_import(user=world.east_manager, content=_csv("名称,数量\na,1\n"))
    assert set(e.value.errors) == {"file"}
    with pytest.raises(PermissionDenied):
        services.sales_import(user=world.pudong_manager, content=content)


def test_sales_import_xlsx_on_the_page(world):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["网点编码", "月份", "销售额（元）"])
    ws.append(["SH-PD", dt.datetime(2025, 4, 1), 3000])  # Excel turned 2025-04 into a date
    ws.append(["SH-PD", "2025-05", "abc"])
    buf = io.BytesIO()
    wb.save(buf)
    c = _client(world.east_manager)
    resp = c.post(f"/quality/sales/?node={world.east.pk}", {
        "action": "import", "file": SimpleUploadedFile("sales.xlsx", buf.getvalue())})
    assert resp.status_code == 200
    html = resp.content.decode()
    assert 'data-figure="created">1<' in html and 'data-row="3"' in html and 'data-testid="report-link"' in html
    assert NodeSales.objects.get().amount == Decimal("3000.00")
    token = html.split("/quality/sales/report/")[1].split("/")[0]
    report = c.get(f"/quality/sales/report/{token}/")
    assert report.status_code == 200 and report.content[:2] == b"PK"
    assert _client(world.quality).get(f"/quality/sales/report/{token}/").status_code == 404  # not theirs
    assert c.get("/quality/sales/template/sales/").status_code == 200
    assert c.get("/quality/sales/template/nope/").status_code == 404
    resp = c.post("/quality/sales/", {"action": "import"})
    assert resp.status_code == 400 and 'data-testid="import-error"' in resp.content.decode()


def test_model_sales_grid_and_import(world):
    r = services.model_sales_import(user=world.hq_manager, content=_csv(
        "型号编码,月份,台数\nKFR-35GW,2025-01,100\nxqg100,2025-02,40\nNOPE,2025-01,1\nKFR-35GW,2025-02,1.5\n"))
    assert (r.created, r.errors) == (2, 2)
    assert {f.row.number for f in r.failures} == {4, 5}
    assert ModelSales.objects.get(model=world.wm_model).units == 40
    with pytest.raises(PermissionDenied):
        services.model_sales_import(user=world.east_manager, content=b"x")
    c = _client(world.hq_manager)
    url = f"/quality/sales/models/?year={LAST_YEAR}"
    html = c.get(url).content.decode()
    assert f'name="c_{world.ac_model.pk}_3"' in html
    resp = c.post(url, {"year": LAST_YEAR, f"c_{world.ac_model.pk}_3": "-2"})
    assert resp.status_code == 400
    assert c.post(url, {"year": LAST_YEAR, f"c_{world.ac_model.pk}_3": "25"}).status_code == 302
    assert ModelSales.objects.get(model=world.ac_model, month=dt.date(LAST_YEAR, 3, 1)).units == 25
    assert 'name="c_' not in _client(world.east_manager).get(url).content.decode()  # centre: read only
    cells = selectors.cells(nodes=[world.hq], grain="month", start=dt.date(2025, 2, 1), end=dt.date(2025, 2, 28),
                            by_period=False)
    assert cells[(world.hq.pk, None, "")]["units_sold"] == 140  # cumulative up to the end of February


def test_sales_api(world):
    api = ApiClient(world.east_manager)
    resp = api.put("/quality/improve/sales", {"entries": [
        {"node_id": world.pudong.pk, "month": "2025-01", "amount": "100.5"},
        {"node_id": world.tianhe.pk, "month": "2025-01", "amount": "1"}]})
    assert resp.status_code == 400 and "entries[1].node_id" in errors_of(resp)
    resp = api.put("/quality/improve/sales", {"entries": [
        {"node_id": world.pudong.pk, "month": "2025-01", "amount": "100.5"}]})
    assert resp.status_code == 200 and resp.json()["created"] == 1
    grid = api.get("/quality/improve/sales", {"node_id": world.east.pk, "year": 2025}).json()
    pd = next(r for r in grid["rows"] if r["node"]["code"] == "SH-PD")
    assert pd["months"][0] == "100.50" and pd["months"][1] is None
    resp = api.client.post("/api/quality/improve/sales/import", {
        "file": SimpleUploadedFile("s.csv", _csv("节点编码,月份,销售额\nSH-PD,2025-02,7\nSH-PD,2025-99,1\n"))})
    assert resp.status_code == 200 and resp.json()["created"] == 1
    assert resp.json()["failures"] == [{"row": 3, "fields": "月份", "reason": "月份：月份格式不正确，应为 YYYY-MM。"}]
    hq = ApiClient(world.hq_manager)
    resp = hq.put("/quality/improve/model-sales", {"entries": [{"model_id": world.ac_model.pk, "month": "2025-01",
                                                               "units": 10}]})
    assert resp.status_code == 200
    assert api.put("/quality/improve/model-sales", {"entries": [{"model_id": world.ac_model.pk, "month": "2025-01",
                                                                "units": 10}]}).status_code == 403
    rows = hq.get("/quality/improve/model-sales", {"year": 2025}).json()["rows"]
    assert next(r for r in rows if r["model"]["id"] == world.ac_model.pk)["months"][0] == 10


def test_admin_pages(world):
    services.target_set(user=world.hq_manager, node_id=world.hq.pk, indicator="ftf_rate", target="80")
    services.sales_set(user=world.hq_manager, node_id=world.pudong.pk, month="2025-01", amount="1")
    c = _client(world.admin)
    for model in ("normitem", "target", "nodesales", "modelsales", "action", "report"):
        assert c.get(f"/admin/quality/{model}/").status_code == 200, model
    item = services.norm_item_save(user=world.hq_manager, code="ADMIN_X", text="x")
    assert c.get(f"/admin/quality/normitem/{item.pk}/change/").status_code == 200
    assert c.get("/admin/quality/action/add/").status_code == 403  # read only
