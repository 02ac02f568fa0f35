"""Import of the parts catalog from .xlsx / CSV: good rows upserted, bad rows reported, files
that are not tables refused with nothing written."""

import csv
import io
import zipfile
from decimal import Decimal

import openpyxl
import pytest

from aftersales.core.errors import PermissionDenied, ValidationFailed
from aftersales.parts import excel
from aftersales.parts import services_catalog as sc
from aftersales.parts.models import Part
from aftersales.records.models import AuditEntry

pytestmark = pytest.mark.django_db

HEADER = ["配件编码", "名称", "英文名称", "类别编码", "适用型号", "主要部件编码", "计量单位", "序列号管理", "旧件须返还", "成本单价"]
ROWS = [
    # (the column the error names, or None for a good row), the row
    (None, ["P-COMP-35", "压缩机 1.5匹", "Compressor", "AC", "KFR-35GW", "COMP", "台", "是", "是", "680.00"]),
    (None, ["P-CAP-35", "启动电容", "", "AC", "KFR-35GW", "", "", "否", "否", "35.5"]),
    (None, ["P-SEAL", "门封", "Door seal", "WM", "XQG100", "", "条", "", "", ""]),
    ("适用型号", ["P-BAD-1", "电机", "", "AC", "KFR-35GW；NOPE-9", "", "", "", "", "10"]),
    ("成本单价", ["P-BAD-2", "电机", "", "", "", "", "", "", "", "-3"]),
    ("序列号管理", ["P-BAD-3", "电机", "", "", "", "", "", "也许", "", ""]),
    ("名称", ["P-BAD-4", "", "", "", "", "", "", "", "", ""]),
    ("配件编码", ["P-CAP-35", "启动电容（重复）", "", "", "", "", "", "", "", ""]),
    ("类别编码", ["P-BAD-5", "电机", "", "TV", "", "", "", "", "", ""]),
    ("主要部件编码", ["P-BAD-6", "门封", "", "WM", "XQG100", "COMP", "", "", "", ""]),
]


def xlsx(rows, header=HEADER) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append([float(v) if v.replace(".", "").isdigit() and "." in v else v for v in r])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_bytes(rows, header=HEADER, encoding="utf-8-sig") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode(encoding)


def report_rows(content: bytes) -> list[list]:
    ws = openpyxl.load_workbook(io.BytesIO(content)).worksheets[0]
    return [list(r) for r in ws.iter_rows(values_only=True)]


def test_good_rows_are_written_bad_rows_reported(world):
    result = sc.catalog_import(user=world.hq_manager, content=xlsx([r for _e, r in ROWS]))
    assert (result.total, result.created, result.updated, result.errors) == (10, 3, 0, 7)
    assert sorted(Part.objects.values_list("code", flat=True)) == ["P-CAP-35", "P-COMP-35", "P-SEAL"]
    comp = Part.objects.get(code="P-COMP-35")
    assert (comp.category, comp.main_part_code, comp.uom, comp.serialised, comp.unit_cost) == (
        world.ac, "COMP", "台", True, Decimal("680.00"))
    assert [m.code for m in comp.fits.all()] == ["KFR-35GW"]
    cap = Part.objects.get(code="P-CAP-35")
    assert (cap.returnable, cap.unit_cost, cap.uom, cap.name) == (False, Decimal("35.50"), "个", "启动电容")
    seal = Part.objects.get(code="P-SEAL")
    assert (seal.returnable, seal.serialised, seal.unit_cost) == (True, False, Decimal("0.00"))
    # each bad row: its number as the spreadsheet shows it, the column at fault, a reason
    expected = {i + 2: col for i, (col, _r) in enumerate(ROWS) if col}
    assert {f.row.number: f.fields for f in result.failures} == expected
    assert all(f.reason for f in result.failures)
    assert "NOPE-9" in next(f.reason for f in result.failures if f.row.number == 5)
    assert "第 3 行" in next(f.reason for f in result.failures if f.row.number == 9)
    # the report: the original columns, then 行号 / 错误字段 / 错误原因, one line per bad row
    rows = report_rows(result.report)
    assert rows[0] == [*HEADER, "行号", "错误字段", "错误原因"]
    assert [r[len(HEADER)] for r in rows[1:]] == sorted(expected)
    assert rows[1][:2] == ["P-BAD-1", "电机"] and rows[1][len(HEADER) + 1] == "适用型号"
    # every new part has its audit entry, with the models it fits
    e = AuditEntry.objects.get(chain=f"parts.part:{comp.pk}")
    assert e.action == "part.import_create" and e.after["fit_codes"] == ["KFR-35GW"]


def test_the_corrected_report_can_be_uploaded_again(world):
    first = sc.catalog_import(user=world.admin, content=xlsx([r for _e, r in ROWS]))
    wb = openpyxl.load_workbook(io.BytesIO(first.report))
    ws = wb.worksheets[0]
    for row in ws.iter_rows(min_row=2):
        row[3].value, row[4].value, row[5].value, row[7].value, row[9].value = "", "", "", "否", "12"
        if not row[1].value:
            row[1].value = "补上的名称"
        if row[0].value == "P-CAP-35":
            row[0].value = "P-CAP-45"
    buf = io.BytesIO()
    wb.save(buf)
    again = sc.catalog_import(user=world.admin, content=buf.getvalue())
    assert again.errors == 0, [f.reason for f in again.failures]
    assert again.created == 7


def test_upsert_by_code_keeps_what_is_blank(world):
    sc.catalog_import(user=world.admin, content=xlsx([ROWS[0][1], ROWS[1][1]]))
    comp = Part.objects.get(code="P-COMP-35")
    n = AuditEntry.objects.filter(chain=f"parts.part:{comp.pk}").count()
    result = sc.catalog_import(user=world.admin, content=xlsx([
        ["p-comp-35", "压缩机 1.5匹（新款）", "", "", "", "", "", "", "", "700"],  # the code in another case
        ROWS[1][1],  # unchanged
    ]))
    assert (result.created, result.updated, result.unchanged, result.errors) == (0, 1, 1, 0)
    comp.refresh_from_db()
    assert (comp.code, comp.name, comp.unit_cost, comp.name_en, comp.main_part_code, comp.uom) == (
        "P-COMP-35", "压缩机 1.5匹（新款）", Decimal("700.00"), "Compressor", "COMP", "台")
    assert [m.code for m in comp.fits.all()] == ["KFR-35GW"]
    last = AuditEntry.objects.filter(chain=f"parts.part:{comp.pk}").order_by("-seq").first()
    assert last.seq == n + 1 and last.action == "part.import_update"
    assert last.before["unit_cost"] == "680.00" and last.after["unit_cost"] == "700.00"


def test_gbk_csv_and_english_headers(world):
    header = ["code", "name", "category_code", "fits", "returnable", "cost"]
    rows = [["P-FAN", "风扇电机", "AC", "KFR-35GW", "yes", "88"], ["P-KNOB", "旋钮", "", "", "no", "abc"]]
    result = sc.catalog_import(user=world.admin, content=csv_bytes(rows, header, encoding="gbk"))
    assert (result.created, result.errors) == (1, 1)
    assert Part.objects.get(code="P-FAN").name == "风扇电机"
    assert result.failures[0].row.number == 3 and result.failures[0].fields == "成本单价"


def docx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


@pytest.mark.parametrize("content", [
    b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,  # an image
    docx(),  # a zip that is not a workbook
    b"",  # empty
    "这不是表格\n只是几行文字\n".encode(),  # text without a known header
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100,  # an old .xls
    csv_bytes([], ["名称", "成本单价"]),  # no code column
    csv_bytes([]),  # a header and no rows
], ids=["png", "docx", "empty", "text", "xls", "no-code", "no-rows"])
def test_a_file_that_is_not_a_table_is_refused_and_nothing_written(world, content):
    with pytest.raises(ValidationFailed) as e:
        sc.catalog_import(user=world.admin, content=content)
    assert list(e.value.errors) == ["file"] and str(e.value.errors["file"][0])
    assert not Part.objects.exists() and not AuditEntry.objects.filter(object_type="parts.part").exists()


def test_only_catalog_editors_import(world):
    with pytest.raises(PermissionDenied):
        sc.catalog_import(user=world.east_manager, content=xlsx([ROWS[0][1]]))
    assert not Part.objects.exists()


def test_the_template_reads_back_as_its_own_kind(world):
    for kind in (excel.CATALOG, excel.OPENING_STOCK):
        table = excel.read(kind, excel.template_xlsx(kind))
        assert table.keys == [c.key for c in kind.columns]
        assert len(table.rows) == 1


def test_cell_parsers():
    assert excel.split_list("A, B；C、A\nD") == ["A", "B", "C", "D"]
    assert excel.split_list("S1 S2,S3", serials=True) == ["S1", "S2", "S3"]
    assert excel.parse_money("¥1,234.5") == (Decimal("1234.50"), None)
    assert excel.parse_money("1.234")[0] is None and excel.parse_money("-1")[0] is None
    assert excel.parse_money("NaN")[0] is None and excel.parse_money("1e400")[0] is None
    assert excel.parse_count("12") == (12, None) and excel.parse_count("12.0") == (12, None)
    assert excel.parse_count("-1")[0] is None and excel.parse_count("1.5")[0] is None
    assert excel.parse_count("0", minimum=1)[0] is None
    assert [excel.parse_bool(t) for t in ("是", "Y", "true", "否", "0", "也许")] == [True, True, True, False, False, None]


def test_the_command_line_import(world, tmp_path):
    from django.core.management import CommandError, call_command

    f = tmp_path / "parts.xlsx"
    f.write_bytes(xlsx([ROWS[0][1], ROWS[3][1]]))
    out = io.StringIO()
    call_command("parts_import", str(f), "--kind", "catalog", "--user", "hq_manager", stdout=out)
    assert "新增 1" in out.getvalue() and "未导入 1 行" in out.getvalue()
    assert (tmp_path / "parts-错误报告.xlsx").exists()
    assert Part.objects.filter(code="P-COMP-35").exists()
    with pytest.raises(CommandError):
        call_command("parts_import", str(f), "--kind", "catalog", "--user", "east_manager", stdout=io.StringIO())
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01")
    with pytest.raises(CommandError):
        call_command("parts_import", str(bad), "--kind", "catalog", "--user", "hq_manager", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("parts_import", str(f), "--kind", "stock", "--user", "nobody-at-all", stdout=io.StringIO())
