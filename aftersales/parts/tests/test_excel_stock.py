"""Import of the opening stock: each good row received through the stock services (with its
reorder settings and serials), each bad row reported, a warehouse out of scope a row error."""

import csv
import io

import openpyxl
import pytest

from aftersales.core.errors import PermissionDenied, ValidationFailed
from aftersales.parts import excel, selectors
from aftersales.parts.models import Movement, SerialItem, Stock

pytestmark = pytest.mark.django_db

HEADER = ["仓库编码", "配件编码", "数量", "成本单价", "补货点", "补货量", "序列号"]


def xlsx(rows, header=HEADER) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_good_rows_received_bad_rows_reported(pw):
    w = pw
    rows = [
        (None, ["WH-PD", "P-CAP-35", 12, "14.5", 5, 10, ""]),
        (None, ["wh-east", "p-comp-35", 2, "", "", "", "C-01，C-02"]),  # codes in any case; serials
        (None, ["WH-HZ", "P-CAP-35", "", "", 3, 6, ""]),  # reorder settings only
        ("数量", ["WH-PD", "P-BELT-100", -4, "", "", "", ""]),  # negative
        ("配件编码", ["WH-PD", "P-NOPE", 3, "", "", "", ""]),  # unknown part
        ("仓库编码", ["WH-TH", "P-CAP-35", 3, "", "", "", ""]),  # out of the east manager's scope
        ("仓库编码", ["WH-NOPE", "P-CAP-35", 3, "", "", "", ""]),
        ("序列号", ["WH-HZ", "P-COMP-35", 2, "", "", "", "C-03"]),  # one serial for two pieces
        ("序列号", ["WH-HZ", "P-BELT-100", 1, "", "", "", "B-1"]),  # a plain part takes no serials
        ("补货量", ["WH-HZ", "P-BELT-100", 1, "", 4, "", ""]),  # one of the pair
        ("配件编码", ["WH-PD", "P-CAP-35", 1, "", "", "", ""]),  # the same pair as row 2
        ("数量", ["WH-PD", "P-BELT-100", "", "", "", "", ""]),  # nothing to load
        ("成本单价", ["WH-HZ", "P-BELT-100", 1, "abc", "", "", ""]),
    ]
    result = excel.stock_import(user=w.east_manager, content=xlsx([r for _e, r in rows]))
    assert (result.total, result.created, result.errors) == (13, 3, 10)
    expected = {i + 2: col for i, (col, _r) in enumerate(rows) if col}
    assert {f.row.number: f.fields for f in result.failures} == expected
    pd = Stock.objects.get(warehouse=w.wh_pudong, part=w.cap)
    assert (pd.on_hand, pd.reserved, pd.reorder_point, pd.reorder_qty) == (12, 0, 5, 10)
    m = Movement.objects.get(warehouse=w.wh_pudong, part=w.cap)
    assert (m.kind, str(m.unit_cost), m.reason, m.actor) == ("receive", "14.50", "期初库存导入", w.east_manager)
    assert Stock.objects.get(warehouse=w.wh_east, part=w.comp).on_hand == 2
    assert set(SerialItem.objects.filter(warehouse=w.wh_east).values_list("serial", flat=True)) == {"C-01", "C-02"}
    hz = Stock.objects.get(warehouse=w.wh_hangzhou, part=w.cap)
    assert (hz.on_hand, hz.reorder_point, hz.reorder_qty) == (0, 3, 6)
    assert not Stock.objects.filter(warehouse=w.wh_tianhe).exists()
    assert selectors.ledger_problems() == []
    report = openpyxl.load_workbook(io.BytesIO(result.report)).worksheets[0]
    header = [c.value for c in next(report.iter_rows(max_row=1))]
    assert header == [*HEADER, "行号", "错误字段", "错误原因"]
    assert report.max_row == 11


def test_opening_stock_loads_once(pw):
    w = pw
    content = xlsx([["WH-PD", "P-CAP-35", 5, "", "", "", ""]])
    assert excel.stock_import(user=w.pudong_manager, content=content).created == 1
    again = excel.stock_import(user=w.pudong_manager, content=content)
    assert again.created == 0 and again.errors == 1 and "只能导入一次" in again.failures[0].reason
    assert Stock.objects.get(warehouse=w.wh_pudong, part=w.cap).on_hand == 5


def test_gbk_csv_with_english_headers(pw):
    w = pw
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["warehouse_code", "part_code", "qty", "reorder_point", "reorder_qty"])
    writer.writerow(["WH-PD", "P-CAP-35", "7", "2", "5"])
    writer.writerow(["WH-PD", "启动电容", "7", "", ""])
    result = excel.stock_import(user=w.pudong_manager, content=buf.getvalue().encode("gbk"))
    assert (result.created, result.errors) == (1, 1)
    assert "启动电容" in result.failures[0].reason
    assert Stock.objects.get(warehouse=w.wh_pudong, part=w.cap).on_hand == 7


@pytest.mark.parametrize("content", [b"\x00\x01\x02binary", "随便写点什么\n没有列名".encode("gbk"),
                                     xlsx([], header=["数量", "成本单价"])])
def test_not_a_table_nothing_written(pw, content):
    with pytest.raises(ValidationFailed) as e:
        excel.stock_import(user=pw.pudong_manager, content=content)
    assert list(e.value.errors) == ["file"]
    assert not Stock.objects.exists() and not Movement.objects.exists()


def test_only_managers_load_stock(pw):
    with pytest.raises(PermissionDenied):
        excel.stock_import(user=pw.pudong_agent, content=xlsx([["WH-PD", "P-CAP-35", 5, "", "", "", ""]]))
    assert not Stock.objects.exists()


def test_the_page_takes_a_limited_number_of_stock_rows(pw, settings):
    settings.PARTS_IMPORT_PAGE_STOCK_ROWS = 2
    content = xlsx([["WH-PD", "P-CAP-35", 1, "", "", "", ""], ["WH-PD", "P-BELT-100", 1, "", "", "", ""],
                    ["WH-HZ", "P-CAP-35", 1, "", "", "", ""]])
    with pytest.raises(ValidationFailed) as e:
        excel.stock_import(user=pw.east_manager, content=content, max_rows=excel.page_stock_rows())
    assert "最多导入 2 行" in str(e.value.errors["file"][0])
    assert not Stock.objects.exists()
    assert excel.stock_import(user=pw.east_manager, content=content).created == 3  # the command: no limit
