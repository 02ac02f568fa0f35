"""The parts pages: they render in a bounded number of queries, declare their permissions, keep
to the user's scope (404 for a warehouse out of it) and answer bad input with 4xx."""

from __future__ import annotations

import io

import openpyxl
import pytest
from django.test import Client

from aftersales.parts import services
from aftersales.parts.models import Movement, Stock, Transfer, TransferStatus, Warehouse, WarehouseKind

pytestmark = pytest.mark.django_db

PAGES = ["/parts/stock/", "/parts/movements/", "/parts/transfers/", "/parts/replenishment/", "/parts/catalog/"]


def login(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def stocked(pw):
    """Stock on every tier: caps everywhere, compressors (serialised) at headquarters, a belt in
    Tianhe, the Pudong outlet below its reorder point, 李师傅's van with two caps."""
    w = pw
    hq = w.hq_manager

    def receive(wh, part, qty, serials=()):
        services.stock_receive(user=hq, warehouse_id=wh.pk, part_id=part.pk, qty=qty, serials=serials)

    receive(w.wh_hq, w.cap, 100)
    receive(w.wh_hq, w.comp, 3, ["C-1", "C-2", "C-3"])
    receive(w.wh_east, w.cap, 20)
    receive(w.wh_pudong, w.cap, 4)
    receive(w.wh_tianhe, w.belt, 7)
    services.reorder_set(user=hq, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, reorder_point=5, reorder_qty=10)
    services.reorder_set(user=hq, warehouse_id=w.wh_east.pk, part_id=w.cap.pk, reorder_point=5, reorder_qty=10)
    w.van = services.van_for(w.tech_employee)
    receive(w.van, w.cap, 2)
    return w


# ---------------------------------------------------------------- permissions and scope

@pytest.mark.parametrize("path", PAGES + ["/parts/import/", "/parts/stock/export.xlsx"])
def test_pages_need_a_parts_role(stocked, path):
    w = stocked
    for user in (w.trainer, w.nobody, w.customer_user):
        assert login(user).get(path).status_code == 403, (user, path)
    resp = Client().get(path)
    assert resp.status_code == 302 and "/login" in resp["Location"]


def test_pages_declare_their_permissions():
    from django.urls import get_resolver

    for p in get_resolver().url_patterns:
        if getattr(p, "namespace", None) == "parts":
            for u in p.url_patterns:
                assert getattr(u.callback, "required_perms", None), u.name


@pytest.mark.parametrize("path", PAGES)
def test_every_role_with_parts_view_sees_the_pages(stocked, path):
    w = stocked
    for user in (w.admin, w.hq_manager, w.east_manager, w.pudong_manager, w.pudong_agent, w.pudong_dispatcher,
                 w.pudong_tech, w.quality):
        assert login(user).get(path).status_code == 200, (user, path)


@pytest.mark.parametrize("path", ["/parts/stock/", "/parts/movements/", "/parts/transfers/",
                                  "/parts/replenishment/", "/parts/stock/export.xlsx"])
def test_a_warehouse_out_of_scope_is_404(stocked, path):
    w = stocked
    c = login(w.pudong_manager)
    assert c.get(path, {"warehouse": w.wh_tianhe.pk}).status_code == 404
    assert c.get(path, {"warehouse": 999999}).status_code == 404
    assert c.get(path, {"warehouse": "x"}).status_code == 404
    assert c.get(path, {"warehouse": w.wh_pudong.pk}).status_code == 200
    # a technician sees their own van, not a colleague's
    van2 = services.van_for(w.tech2_employee)
    t = login(w.pudong_tech)
    assert t.get(path, {"warehouse": w.van.pk}).status_code == 200
    assert t.get(path, {"warehouse": van2.pk}).status_code == 404


def test_the_stock_page_shows_the_scope_and_marks_what_is_below_reorder(stocked, django_assert_max_num_queries):
    w = stocked
    c = login(w.pudong_manager)
    with django_assert_max_num_queries(14):
        resp = c.get("/parts/stock/")
    html = resp.content.decode()
    assert resp.status_code == 200
    assert "WH-PD" in html and w.van.code in html and "WH-TH" not in html and "WH-HQ" not in html
    assert html.count('data-testid="stock-row"') == 2
    assert html.count('data-below="1"') == 1  # Pudong's caps: 4 available, reorder point 5
    assert 'data-chart="stock-reorder"' in html and "echarts" in html
    assert 'data-testid="form-receive"' in html  # the manager's forms
    html = login(w.pudong_agent).get("/parts/stock/").content.decode()
    assert 'data-testid="form-receive"' not in html  # parts.view only: no forms


def test_stock_filters_and_keyset_more(stocked, django_assert_max_num_queries):
    w = stocked
    c = login(w.hq_manager)
    html = c.get("/parts/stock/", {"below": "on"}).content.decode()
    assert html.count('data-testid="stock-row"') == 1 and "WH-PD" in html
    html = c.get("/parts/stock/", {"q": "皮带"}).content.decode()
    assert html.count('data-testid="stock-row"') == 1 and "WH-TH" in html
    # page after page with htmx: each a fixed number of queries
    from aftersales.parts import views

    old = views.PAGE_SIZE
    views.PAGE_SIZE = 2
    try:
        seen, cursor = [], None
        while True:
            params = {"cursor": cursor} if cursor else {}
            with django_assert_max_num_queries(8):
                resp = c.get("/parts/stock/", params, HTTP_HX_REQUEST="true")
            html = resp.content.decode()
            seen += [line for line in html.split("\n") if 'data-testid="stock-row"' in line]
            if 'data-testid="more"' not in html:
                break
            cursor = html.split("cursor=")[-1].split('"')[0].replace("%3D", "=")
        assert len(seen) == Stock.objects.count()
    finally:
        views.PAGE_SIZE = old


# ---------------------------------------------------------------- stock operations from the page

def test_receive_adjust_scrap_from_the_page(stocked):
    w = stocked
    c = login(w.pudong_manager)
    resp = c.post("/parts/stock/receive/", {"warehouse": w.wh_pudong.pk, "part": "p-cap-35", "qty": 6,
                                            "reason": "到货"})
    assert resp.status_code == 302 and resp["Location"].endswith(f"?warehouse={w.wh_pudong.pk}")
    assert Stock.objects.get(warehouse=w.wh_pudong, part=w.cap).on_hand == 10
    resp = c.post("/parts/stock/adjust/", {"warehouse": w.wh_pudong.pk, "part": "P-CAP-35", "counted": 9,
                                           "reason": "月末盘点"})
    assert resp.status_code == 302
    m = Movement.objects.order_by("-id").first()
    assert (m.kind, m.on_hand_delta, m.reason) == ("adjust", -1, "月末盘点")
    resp = c.post("/parts/stock/scrap/", {"warehouse": w.wh_pudong.pk, "part": "P-CAP-35", "qty": 2,
                                          "reason": "受潮"})
    assert resp.status_code == 302
    assert Stock.objects.get(warehouse=w.wh_pudong, part=w.cap).on_hand == 7


@pytest.mark.parametrize("action,data,status,field", [
    ("receive", {"part": "P-CAP-35", "qty": -3}, 400, "qty"),
    ("receive", {"part": "P-NOPE", "qty": 3}, 400, "part"),
    ("receive", {"part": "P-COMP-35", "qty": 2, "serials": "X1"}, 400, "serials"),
    ("adjust", {"part": "P-CAP-35", "counted": 3, "reason": ""}, 400, "reason"),
    ("scrap", {"part": "P-CAP-35", "qty": 50, "reason": "损坏"}, 409, "qty"),
])
def test_bad_stock_input_comes_back_with_its_message(stocked, action, data, status, field):
    w = stocked
    before = Movement.objects.count()
    resp = login(w.pudong_manager).post(f"/parts/stock/{action}/", {"warehouse": w.wh_pudong.pk, **data})
    assert resp.status_code == status
    html = resp.content.decode()
    assert f'data-form="{action}"' in html and "has-error" in html
    assert Movement.objects.count() == before


def test_stock_forms_refuse_warehouses_out_of_scope_and_roles_without_manage(stocked):
    w = stocked
    resp = login(w.pudong_manager).post("/parts/stock/receive/", {"warehouse": w.wh_tianhe.pk, "part": "P-CAP-35",
                                                                  "qty": 1})
    assert resp.status_code == 400
    assert login(w.pudong_agent).post("/parts/stock/receive/", {"warehouse": w.wh_pudong.pk, "part": "P-CAP-35",
                                                                "qty": 1}).status_code == 403
    assert login(w.pudong_manager).post("/parts/stock/steal/", {}).status_code == 404
    assert not Stock.objects.filter(warehouse=w.wh_tianhe, part=w.cap).exists()


# ---------------------------------------------------------------- the export

def xlsx_rows(content: bytes) -> list[list]:
    ws = openpyxl.load_workbook(io.BytesIO(content)).worksheets[0]
    return [list(r) for r in ws.iter_rows(values_only=True)]


def test_export_has_the_rows_of_the_scope_only_with_chinese_headers(stocked):
    w = stocked
    resp = login(w.pudong_manager).get("/parts/stock/export.xlsx")
    assert resp.status_code == 200 and resp["Content-Type"].startswith("application/vnd.openxml")
    rows = xlsx_rows(resp.content)
    assert rows[0][:5] == ["仓库编码", "仓库名称", "仓库类型", "配件编码", "配件名称"]
    assert sorted(r[0] for r in rows[1:]) == sorted(["WH-PD", w.van.code])
    pd = next(r for r in rows[1:] if r[0] == "WH-PD")
    assert pd[3:4] + pd[6:13] == ["P-CAP-35", 4, 0, 4, 0, 5, 10, "是"]
    everything = xlsx_rows(login(w.hq_manager).get("/parts/stock/export.xlsx").content)
    assert len(everything) - 1 == Stock.objects.count()
    below = xlsx_rows(login(w.hq_manager).get("/parts/stock/export.xlsx", {"below": "on"}).content)
    assert [r[0] for r in below[1:]] == ["WH-PD"]
    one = xlsx_rows(login(w.hq_manager).get("/parts/stock/export.xlsx", {"warehouse": w.wh_hq.pk}).content)
    assert {r[0] for r in one[1:]} == {"WH-HQ"} and len(one) == 3


# ---------------------------------------------------------------- movements

def test_movements_show_deltas_balances_actor_order_and_filter(stocked, django_assert_max_num_queries):
    w = stocked
    c = login(w.hq_manager)
    with django_assert_max_num_queries(12):
        resp = c.get("/parts/movements/")
    html = resp.content.decode()
    assert resp.status_code == 200
    assert html.count('data-testid="movement-row"') == Movement.objects.count()
    assert "+100" in html and "(100)" in html and "hq_manager" in html
    html = c.get("/parts/movements/", {"warehouse": w.wh_pudong.pk, "kind": "receive"}).content.decode()
    assert html.count('data-testid="movement-row"') == 1
    html = c.get("/parts/movements/", {"part": "P-COMP-35"}).content.decode()
    assert html.count('data-testid="movement-row"') == 1 and "C-1" not in html
    resp = c.get("/parts/movements/", {"part": "P-NOPE"})
    assert resp.status_code == 400 and "P-NOPE" in resp.content.decode()
    resp = c.get("/parts/movements/", {"order": "GD000"})
    assert resp.status_code == 400
    resp = c.get("/parts/movements/", {"date_from": "2025-02-01", "date_to": "2025-01-01"})
    assert resp.status_code == 400
    resp = c.get("/parts/movements/", {"cursor": "garbage"})
    assert resp.status_code == 400
    assert login(w.pudong_manager).get("/parts/movements/").content.decode().count('data-testid="movement-row"') == 2


# ---------------------------------------------------------------- transfers and replenishment

def test_transfer_between_tiers_from_the_pages(stocked):
    w = stocked
    c = login(w.hq_manager)
    resp = c.post("/parts/transfers/new/", {"source": w.wh_hq.pk, "destination": w.wh_east.pk, "purpose": "replenish",
                                            "lines": "P-CAP-35 10\nP-COMP-35 1 C-2"})
    assert resp.status_code == 302
    t = Transfer.objects.get()
    assert (t.source, t.destination, t.status) == (w.wh_hq, w.wh_east, TransferStatus.REQUESTED)
    html = c.get("/parts/transfers/").content.decode()
    assert t.number in html and 'data-testid="ship"' in html
    assert c.post(f"/parts/transfers/{t.pk}/ship/").status_code == 302
    resp = login(w.east_manager).post(f"/parts/transfers/{t.pk}/receive/", {"next": "https://evil.example/"})
    assert resp.status_code == 302 and resp["Location"] == "/parts/transfers/"
    t.refresh_from_db()
    assert t.status == TransferStatus.RECEIVED
    assert Stock.objects.get(warehouse=w.wh_east, part=w.cap).on_hand == 30
    # a second time: a conflict, answered with its reason
    resp = login(w.east_manager).post(f"/parts/transfers/{t.pk}/receive/")
    assert resp.status_code == 409 and 'data-testid="refused"' in resp.content.decode()
    html = c.get("/parts/transfers/", {"q": t.number}).content.decode()
    assert html.count('data-testid="transfer-row"') == 1


def test_transfer_form_refuses_bad_input(stocked):
    w = stocked
    c = login(w.pudong_manager)
    # from a warehouse out of the user's scope
    resp = c.post("/parts/transfers/new/", {"source": w.wh_tianhe.pk, "destination": w.wh_pudong.pk,
                                            "purpose": "replenish", "lines": "P-CAP-35 1"})
    assert resp.status_code == 400
    for lines in ("P-CAP-35 -2", "P-CAP-35", "P-NOPE 1", "P-CAP-35 abc"):
        resp = c.post("/parts/transfers/new/", {"source": w.wh_pudong.pk, "destination": w.wh_east.pk,
                                                "purpose": "replenish", "lines": lines})
        assert resp.status_code == 400, lines
    resp = c.post("/parts/transfers/new/", {"source": w.wh_pudong.pk, "destination": w.wh_east.pk,
                                            "purpose": "replenish", "lines": "P-CAP-35 40"})
    assert resp.status_code == 409
    assert not Transfer.objects.exists()
    # the centre is offered as a destination to the outlet (old parts go back there)
    html = c.get("/parts/transfers/").content.decode()
    assert f'<option value="{w.wh_east.pk}"' in html


def test_cancel_needs_a_reason(stocked):
    w = stocked
    t = services.transfer_create(user=w.hq_manager, source_id=w.wh_hq.pk, destination_id=w.wh_east.pk,
                                 lines=[{"part_id": w.cap.pk, "qty": 5}])
    c = login(w.hq_manager)
    assert c.post(f"/parts/transfers/{t.pk}/cancel/", {"reason": ""}).status_code == 400
    assert c.post(f"/parts/transfers/{t.pk}/cancel/", {"reason": "重复申请"}).status_code == 302
    t.refresh_from_db()
    assert t.status == TransferStatus.CANCELLED
    assert login(w.pudong_manager).post(f"/parts/transfers/{t.pk}/ship/").status_code == 404


def test_replenishment_suggests_and_creates_transfers(stocked, django_assert_max_num_queries):
    w = stocked
    c = login(w.pudong_manager)
    with django_assert_max_num_queries(12):
        html = c.get("/parts/replenishment/").content.decode()
    assert 'data-testid="replenish-group"' in html and "P-CAP-35" in html and "华东中心仓" in html
    resp = c.post("/parts/replenishment/create/", {"warehouse": w.wh_pudong.pk, "part": [w.cap.pk]})
    assert resp.status_code == 302
    t = Transfer.objects.get()
    assert (t.source, t.destination, t.purpose) == (w.wh_east, w.wh_pudong, "replenish")
    assert login(w.pudong_manager).post("/parts/replenishment/create/",
                                        {"warehouse": w.wh_tianhe.pk}).status_code == 404
    assert login(w.pudong_agent).post("/parts/replenishment/create/",
                                      {"warehouse": w.wh_pudong.pk}).status_code == 403


def test_reorder_settings_from_the_page(stocked):
    w = stocked
    c = login(w.pudong_manager)
    resp = c.post("/parts/replenishment/reorder/", {"warehouse": w.wh_pudong.pk, "part": "P-CAP-35",
                                                    "reorder_point": 2, "reorder_qty": 6})
    assert resp.status_code == 302
    s = Stock.objects.get(warehouse=w.wh_pudong, part=w.cap)
    assert (s.reorder_point, s.reorder_qty) == (2, 6)
    resp = c.post("/parts/replenishment/reorder/", {"warehouse": w.wh_pudong.pk, "part": "P-CAP-35",
                                                    "reorder_point": -1, "reorder_qty": 0})
    assert resp.status_code == 400 and 'data-testid="reorder-form"' in resp.content.decode()


# ---------------------------------------------------------------- the catalog pages

def test_catalog_page_search_and_edit(stocked, django_assert_max_num_queries):
    w = stocked
    c = login(w.pudong_agent)
    with django_assert_max_num_queries(10):
        html = c.get("/parts/catalog/").content.decode()
    assert html.count('data-testid="part-row"') == 3
    assert 'data-testid="part-create"' not in html and "800.00" not in html  # no cost, no editing
    html = c.get("/parts/catalog/", {"f": "1", "model": "KFR-35GW", "active": "1"}).content.decode()
    assert html.count('data-testid="part-row"') == 1 and "P-COMP-35" in html
    assert c.get("/parts/catalog/new/").status_code == 403
    assert c.get(f"/parts/catalog/{w.cap.pk}/").status_code == 403
    m = login(w.hq_manager)
    html = m.get("/parts/catalog/").content.decode()
    assert 'data-testid="part-create"' in html and "800.00" in html
    resp = m.post("/parts/catalog/new/", {"code": "P-FAN-1", "name": "风扇电机", "category": "AC",
                                          "fits": "KFR-35GW", "main_part_code": "FANM", "uom": "个",
                                          "unit_cost": "120", "returnable": "on", "active": "on"})
    assert resp.status_code == 302
    resp = m.post("/parts/catalog/new/", {"code": "P-FAN-2", "name": "风扇电机", "category": "WM",
                                          "fits": "KFR-35GW", "uom": "个", "unit_cost": "-1"})
    assert resp.status_code == 400 and "has-error" in resp.content.decode()
    resp = m.get(f"/parts/catalog/{w.comp.pk}/")
    assert resp.status_code == 200 and "KFR-35GW" in resp.content.decode()
    resp = m.post(f"/parts/catalog/{w.comp.pk}/", {"code": "P-COMP-35", "name": "压缩机", "category": "AC",
                                                   "fits": "KFR-35GW", "main_part_code": "COMP", "uom": "台",
                                                   "unit_cost": "810", "returnable": "on", "active": "on"})
    assert resp.status_code == 400  # serialised cannot be switched off: it has stock
    assert "serialised" in resp.content.decode() or "序列号" in resp.content.decode()
    assert m.get("/parts/catalog/999999/").status_code == 404


# ---------------------------------------------------------------- the import page

def catalog_file(rows) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["配件编码", "名称", "类别编码", "适用型号", "成本单价"])
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def upload(client, kind, content, name="parts.xlsx"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post("/parts/import/", {"kind": kind, "file": SimpleUploadedFile(name, content)})


def test_import_page_runs_the_catalog_and_gives_the_report_to_its_uploader(stocked, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    w = stocked
    c = login(w.hq_manager)
    assert c.get("/parts/import/").status_code == 200
    resp = upload(c, "catalog", catalog_file([["P-NEW-1", "新配件", "AC", "KFR-35GW", 10],
                                              ["P-NEW-2", "", "AC", "NOPE", -5]]))
    assert resp.status_code == 200
    html = resp.content.decode()
    assert 'data-figure="created">1<' in html and 'data-figure="errors">1<' in html
    assert "NOPE" in html
    link = html.split('href="/parts/import/report/')[1].split('"')[0]
    report = c.get(f"/parts/import/report/{link}")
    assert report.status_code == 200
    rows = xlsx_rows(report.content)
    assert rows[0][-3:] == ["行号", "错误字段", "错误原因"] and rows[1][5] == 3
    assert login(w.admin).get(f"/parts/import/report/{link}").status_code == 404  # someone else's
    assert c.get("/parts/import/report/../../etc.xlsx").status_code == 404
    assert c.get("/parts/import/template/catalog.xlsx").status_code == 200
    assert c.get("/parts/import/template/nope.xlsx").status_code == 404


def test_import_page_refuses_what_is_not_a_table_and_kinds_not_allowed(stocked, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    w = stocked
    resp = upload(login(w.hq_manager), "catalog", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", name="photo.png")
    assert resp.status_code == 400 and "不是可识别的表格" in resp.content.decode()
    # an outlet manager may load opening stock, not the catalog
    m = login(w.pudong_manager)
    assert upload(m, "catalog", catalog_file([["P-X", "X", "", "", 1]])).status_code == 400
    assert m.get("/parts/import/template/catalog.xlsx").status_code == 404
    from aftersales.parts.models import Part

    assert not Part.objects.filter(code="P-X").exists()


def test_opening_stock_from_the_page_with_rows_out_of_scope(stocked, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    w = stocked
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["仓库编码", "配件编码", "数量", "补货点", "补货量"])
    ws.append(["WH-HZ", "P-CAP-35", 8, 3, 6])
    ws.append(["WH-TH", "P-CAP-35", 8, None, None])
    buf = io.BytesIO()
    wb.save(buf)
    resp = upload(login(w.east_manager), "stock", buf.getvalue())
    html = resp.content.decode()
    assert resp.status_code == 200 and 'data-figure="created">1<' in html and 'data-figure="errors">1<' in html
    assert "WH-TH" in html
    s = Stock.objects.get(warehouse=w.wh_hangzhou, part=w.cap)
    assert (s.on_hand, s.reorder_point, s.reorder_qty) == (8, 3, 6)
    assert not Stock.objects.filter(warehouse=w.wh_tianhe, part=w.cap).exists()


def test_van_warehouses_exist_for_the_scope_checks(stocked):
    assert Warehouse.objects.filter(kind=WarehouseKind.VAN).count() == 1


def _queries(client, path, params=None) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path, params or {}).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("path", PAGES)
def test_query_counts_do_not_grow_with_the_rows(stocked, path):
    w = stocked
    services.transfer_create(user=w.hq_manager, source_id=w.wh_hq.pk, destination_id=w.wh_east.pk,
                             lines=[{"part_id": w.cap.pk, "qty": 1}])  # one of each kind of row to begin with
    c = login(w.hq_manager)
    c.get(path)  # warm the session
    before = _queries(c, path)
    from aftersales.parts.models import Part

    for i in range(6):  # more parts, stock rows, movements, transfers, suggestions
        p = Part.objects.create(code=f"P-MORE-{i}", name=f"配件{i}", category=w.ac, unit_cost=1)
        p.fits.add(w.ac_model)
        services.stock_receive(user=w.hq_manager, warehouse_id=w.wh_hq.pk, part_id=p.pk, qty=5)
        services.stock_receive(user=w.hq_manager, warehouse_id=w.wh_east.pk, part_id=p.pk, qty=1)
        services.reorder_set(user=w.hq_manager, warehouse_id=w.wh_east.pk, part_id=p.pk, reorder_point=3,
                             reorder_qty=4)
        services.transfer_create(user=w.hq_manager, source_id=w.wh_hq.pk, destination_id=w.wh_pudong.pk,
                                 lines=[{"part_id": p.pk, "qty": 1}])
    assert _queries(c, path) == before
