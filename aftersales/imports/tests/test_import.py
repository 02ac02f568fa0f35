"""Import of customers and units (R-Q-4): good rows in, bad rows reported, nothing half-written."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import zipfile

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from aftersales.core.errors import NotFound, PermissionDenied, ValidationFailed
from aftersales.customers.models import Address, Customer, Unit
from aftersales.imports import services, tabular
from aftersales.imports.models import ImportJob, ImportRowError, ImportStatus
from aftersales.imports.services import import_run
from aftersales.imports.tabular import read_table
from aftersales.records.models import AuditEntry

TODAY = dt.date.today()
PAST = TODAY - dt.timedelta(days=200)
FUTURE = TODAY + dt.timedelta(days=30)

HEADER = ["姓名", "手机号", "省", "市", "区县", "详细地址", "标签", "备注", "序列号", "型号", "购买日期", "销售渠道", "发票号"]
SH = ["上海市", "上海市", "浦东新区"]

# (expected outcome, row). Expected: None = imported; else the Chinese column the error names.
MIXED = [
    (None, ["李雷", "13900000001", *SH, "世纪大道1号", "VIP；老客户", "", "SN-GOOD-0001", "KFR-35GW", PAST, "门店", "INV-100"]),
    (None, ["韩梅梅", "13900000002", *SH, "陆家嘴环路2号", "", "", "", "", "", "", ""]),
    # an existing customer of the user's outlet: the unit is attached, at the address it already has
    (None, ["张伟", "13812345678", *SH, "张杨路500号2栋1201室", "", "", "SN-GOOD-0003", "XQG100", PAST, "电商", ""]),
    # the same phone as the first row: attached to the customer that row created
    (None, ["李雷", "13900000001", *SH, "世纪大道1号", "", "", "SN-GOOD-0004", "KFR-35GW", PAST, "经销商", ""]),
    ("手机号", ["王五", "1234567", *SH, "东方路1号", "", "", "SN-BAD-0005", "KFR-35GW", PAST, "", ""]),
    # a customer of 广州天河网点, which pudong_agent cannot see
    ("手机号", ["王芳", "13987654321", *SH, "东方路2号", "", "", "SN-BAD-0006", "KFR-35GW", PAST, "", ""]),
    ("序列号", ["赵六", "13900000007", *SH, "东方路3号", "", "", "坏!", "KFR-35GW", PAST, "", ""]),
    ("购买日期", ["钱七", "13900000008", *SH, "东方路4号", "", "", "SN-BAD-0008", "KFR-35GW", FUTURE, "", ""]),
    ("型号", ["孙八", "13900000009", *SH, "东方路5号", "", "", "SN-BAD-0009", "NOPE-1", PAST, "", ""]),
    ("姓名", ["", "13900000010", *SH, "东方路6号", "", "", "SN-BAD-0010", "KFR-35GW", PAST, "", ""]),
    ("区县", ["周九", "13900000011", "北京市", "北京市", "朝阳区", "建国路1号", "", "", "SN-BAD-0011", "KFR-35GW", PAST, "", ""]),
    ("序列号", ["吴十", "13900000012", *SH, "东方路7号", "", "", "sn-good-0001", "KFR-35GW", PAST, "", ""]),
]
GOOD_CUSTOMERS = 2  # rows 2 and 3 create customers; rows 4 and 5 attach to existing ones
GOOD_ADDRESSES = 2
GOOD_UNITS = 3


def _text(v):
    return v.isoformat() if isinstance(v, dt.date) else v


def csv_bytes(rows, encoding="utf-8-sig", header=HEADER, delimiter=",", date_fmt="%Y-%m-%d") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter)
    w.writerow(header)
    for r in rows:
        w.writerow([v.strftime(date_fmt) if isinstance(v, dt.date) else v for v in r])
    return buf.getvalue().encode(encoding)


def xlsx_bytes(rows, header=HEADER, blank_rows_after=()) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "客户"
    ws.append(header)
    for i, r in enumerate(rows):
        out = []
        for v in r:
            if isinstance(v, dt.date):
                out.append(dt.datetime.combine(v, dt.time()))  # a date cell, as Excel stores it
            elif isinstance(v, str) and v.isdigit() and len(v) == 11:
                out.append(int(v))  # a phone typed into Excel becomes a number
            else:
                out.append(v)
        ws.append(out)
        if i in blank_rows_after:
            ws.append([])
    wb.create_sheet("其他").append(["与导入无关"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def counts():
    return (Customer.objects.count(), Address.objects.count(), Unit.objects.count(), AuditEntry.objects.count(),
            ImportJob.objects.count())


def report_rows(job) -> tuple[list, list[list]]:
    wb = openpyxl.load_workbook(io.BytesIO(services.error_report(job)), read_only=True)
    rows = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    wb.close()
    return rows[0], rows[1:]


def row_numbers(first_row=2, skipped=()) -> list[int]:
    """The sheet row number of each row of MIXED (a blank row follows the indexes in ``skipped``)."""
    out, n = [], first_row
    for i in range(len(MIXED)):
        out.append(n)
        n += 1 + (1 if i in skipped else 0)
    return out


def expected_errors(first_row=2, skipped=()) -> dict[int, str]:
    """{row number: column at fault} of the bad rows of MIXED."""
    return {n: col for n, (col, _r) in zip(row_numbers(first_row, skipped), MIXED, strict=True) if col}


def assert_mixed_result(world, job, before, *, skipped=()):
    c0, a0, u0, _e0, _j0 = before
    assert job.status == ImportStatus.DONE
    assert (job.total_rows, job.ok_rows, job.error_rows) == (len(MIXED), 4, 8)
    assert (job.customers_created, job.units_created) == (GOOD_CUSTOMERS, GOOD_UNITS)
    assert Customer.objects.count() == c0 + GOOD_CUSTOMERS
    assert Address.objects.count() == a0 + GOOD_ADDRESSES
    assert Unit.objects.count() == u0 + GOOD_UNITS

    li = Customer.objects.get(phone="13900000001")
    assert li.node_id == world.pudong.pk
    assert sorted(t.name for t in li.tags.all()) == ["VIP", "老客户"]
    assert sorted(li.units.values_list("serial", flat=True)) == ["SN-GOOD-0001", "SN-GOOD-0004"]
    default = li.addresses.get()
    assert set(li.units.values_list("address_id", flat=True)) == {default.pk}
    u1 = Unit.objects.get(serial="SN-GOOD-0001")
    assert (u1.purchase_date, u1.sales_channel, u1.invoice_no) == (PAST, "store", "INV-100")
    assert Unit.objects.get(serial="SN-GOOD-0004").sales_channel == "dealer"
    u3 = Unit.objects.get(serial="SN-GOOD-0003")
    assert (u3.customer_id, u3.address_id, u3.sales_channel) == (world.c_pudong.pk, world.a_pudong.pk, "online")
    assert not Customer.objects.filter(phone__in=[f"139000000{n:02d}" for n in range(5, 13)]).exists()
    assert not Unit.objects.filter(serial__startswith="SN-BAD").exists()

    numbers = row_numbers(2, skipped)
    expected = expected_errors(2, skipped)
    stored = {e.row_number: e for e in ImportRowError.objects.filter(job=job)}
    assert set(stored) == set(expected)
    for n, col in expected.items():
        assert col in stored[n].field.split("、"), (n, stored[n].field, stored[n].message)
        assert f"{col}：" in stored[n].message  # the reason names the column
    assert "与第 2 行重复" in stored[numbers[11]].message
    assert "广州天河网点" in stored[numbers[5]].message and "王芳" not in stored[numbers[5]].message

    header, rows = report_rows(job)
    assert header == HEADER + ["行号", "错误字段", "错误原因"]
    assert [r[len(HEADER)] for r in rows] == sorted(expected)
    names = {n: row[0] or None for n, (_c, row) in zip(numbers, MIXED, strict=True)}
    for r in rows:
        n, fields, reason = r[len(HEADER):]
        assert expected[n] in fields.split("、") and f"{expected[n]}：" in reason
        assert r[0] == names[n]  # the original cells come back
    return stored


# ---------------------------------------------------------------- the three formats

def test_csv_utf8_bom(world):
    before = counts()
    job = import_run(user=world.pudong_agent, filename="客户.csv", content=csv_bytes([r for _c, r in MIXED]))
    assert_mixed_result(world, job, before)


def test_csv_gbk_with_slash_dates(world):
    before = counts()
    content = csv_bytes([r for _c, r in MIXED], encoding="gbk", date_fmt="%Y/%m/%d")
    with pytest.raises(UnicodeDecodeError):
        content.decode("utf-8")
    job = import_run(user=world.pudong_agent, filename="客户.csv", content=content)
    assert_mixed_result(world, job, before)


def test_xlsx_with_date_cells_numeric_phones_and_blank_rows(world):
    before = counts()
    job = import_run(user=world.pudong_agent, filename="客户.xlsx",
                     content=xlsx_bytes([r for _c, r in MIXED], blank_rows_after={1, 6}))
    # blank rows are skipped but still counted: the report's row numbers are the sheet's
    assert_mixed_result(world, job, before, skipped={1, 6})


def test_audit_entries_for_every_write_and_the_job(world):
    job = import_run(user=world.pudong_agent, filename="a.csv", content=csv_bytes([r for _c, r in MIXED]))
    li = Customer.objects.get(phone="13900000001")
    hm = Customer.objects.get(phone="13900000002")
    for c in (li, hm):
        assert AuditEntry.objects.filter(chain=f"customers.customer:{c.pk}", action="customer.create",
                                         actor=world.pudong_agent).exists()
        assert AuditEntry.objects.filter(chain=f"customers.address:{c.addresses.get().pk}",
                                         action="address.create").exists()
    for u in Unit.objects.filter(serial__startswith="SN-GOOD"):
        assert AuditEntry.objects.filter(chain=f"customers.unit:{u.pk}", action="unit.register").exists()
    assert AuditEntry.objects.filter(action="customer.create").count() == 2
    assert AuditEntry.objects.filter(action="unit.register").count() == 3
    actions = list(AuditEntry.objects.filter(chain=f"imports.importjob:{job.pk}").order_by("seq")
                   .values_list("action", flat=True))
    assert actions == ["import.start", "import.finish"]
    finish = AuditEntry.objects.get(chain=f"imports.importjob:{job.pk}", seq=2)
    assert finish.after["ok_rows"] == 4 and finish.after["error_rows"] == 8 and finish.node_id == world.pudong.pk
    from aftersales.records.audit import audit_verify

    assert audit_verify().ok


# ---------------------------------------------------------------- not a table

def _docx_like() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.mark.parametrize("name,content,needle", [
    ("photo.png", PNG, "不是可识别的表格"),
    ("customers.csv", PNG, "不是可识别的表格"),
    ("data.bin", random.Random(7).randbytes(5000), "不是可识别的表格"),
    ("data.csv", bytes(random.Random(8).randrange(0x80, 0x100) for _ in range(3000)), "不是可识别的表格"),
    ("empty.csv", b"", "空"),
    ("blank.csv", b"\xef\xbb\xbf \r\n\r\n", "空"),
    ("report.docx", _docx_like(), "不是可识别的表格"),
    ("customers.xlsx", _docx_like(), "不是可识别的表格"),
    ("broken.xlsx", xlsx_bytes([r for _c, r in MIXED])[:1500], "不是可识别的表格"),
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, ".xls"),
    ("notes.txt", "今天天气很好\n明天也不错\n".encode(), "不是可识别的表格"),
    ("page.html", b"<html><body><table><tr><td>x</td></tr></table></body></html>", "不是可识别的表格"),
    ("only-header.csv", csv_bytes([]), "没有数据行"),
    ("no-phone.csv", "姓名,地址\n张三,某路1号\n".encode(), "缺少必需的列：手机号"),
    ("no-columns.xlsx", xlsx_bytes([["张三", "x"]], header=["A", "B"]), "不是可识别的表格"),
])
def test_files_that_are_not_tables_are_refused_and_nothing_is_written(world, name, content, needle):
    before = counts()
    with pytest.raises(ValidationFailed) as e:
        import_run(user=world.pudong_agent, filename=name, content=content)
    assert list(e.value.errors) == ["file"]
    assert needle in str(e.value.errors["file"][0])
    assert str(e.value.message) == str(e.value.errors["file"][0])
    # decided: a refused file is not a job — no job row, no audit entry, no data
    assert counts() == before


def test_missing_required_columns_are_all_named(world):
    with pytest.raises(ValidationFailed) as e:
        import_run(user=world.pudong_agent, filename="x.csv", content="地址,备注\n某路,无\n".encode())
    assert "缺少必需的列：姓名、手机号" in str(e.value.errors["file"][0])
    with pytest.raises(ValidationFailed) as e:
        import_run(user=world.pudong_agent, filename="x.csv", content="详细地址,备注\n某路,无\n".encode())
    assert "缺少必需的列：姓名、手机号" in str(e.value.errors["file"][0])


def test_size_and_row_limits(world, monkeypatch):
    big = b"a" * (tabular.MAX_BYTES + 1)
    with pytest.raises(ValidationFailed) as e:
        import_run(user=world.pudong_agent, filename="big.csv", content=big)
    assert "20 MB" in str(e.value.errors["file"][0])
    monkeypatch.setattr(tabular, "MAX_ROWS", 3)
    rows = [["客户", f"1390000{i:04d}", *SH, "路", "", "", "", "", "", "", ""] for i in range(4)]
    for content in (csv_bytes(rows), xlsx_bytes(rows)):
        with pytest.raises(ValidationFailed) as e:
            import_run(user=world.pudong_agent, filename="x", content=content)
        assert "超过 3 行" in str(e.value.errors["file"][0])
    assert ImportJob.objects.count() == 0


# ---------------------------------------------------------------- rights

def test_permission(world):
    content = csv_bytes([r for _c, r in MIXED])
    for user in (world.trainer, world.pudong_dispatcher, world.quality, world.customer_user, world.nobody):
        with pytest.raises(PermissionDenied):
            import_run(user=user, filename="a.csv", content=content)
    # the right is checked before the file is read
    with pytest.raises(PermissionDenied):
        import_run(user=world.trainer, filename="a.png", content=PNG)
    assert ImportJob.objects.count() == 0


def test_rows_outside_the_users_outlets_are_rejected(world):
    rows = [["杭州客户", "13900000101", "浙江省", "杭州市", "西湖区", "文三路1号", "", "", "", "", "", "", ""],
            ["网点客户", "13900000102", "", "", "", "", "", "", "", "", "", "", ""]]
    header = HEADER[:8] + ["网点编码"] + HEADER[9:]
    rows[1][8] = "GZ-TH"
    rows.append(["本网点", "13900000103", "", "", "", "", "", "", "sh-pd", "", "", "", ""])
    rows.append(["无此网点", "13900000104", "", "", "", "", "", "", "NOPE", "", "", "", ""])
    job = import_run(user=world.pudong_agent, filename="a.csv", content=csv_bytes(rows, header=header))
    errs = {e.row_number: e for e in job.row_errors.all()}
    assert set(errs) == {2, 3, 5}
    assert "区县" in errs[2].field and "无权" in errs[2].message
    assert errs[3].field == "网点编码" and "无权" in errs[3].message
    assert errs[5].field == "网点编码" and "NOPE" in errs[5].message
    assert Customer.objects.get(phone="13900000103").node_id == world.pudong.pk


# ---------------------------------------------------------------- atomicity

def test_a_unit_registered_concurrently_leaves_no_customer(world, monkeypatch):
    """A serial registered by someone else between the batch's look-ups and its write: the
    batch is rolled back and registered row by row through the single services; the row whose
    unit then fails leaves neither its customer, nor its address, nor their audit entries."""
    from aftersales.customers import services as customer_services

    Unit.objects.create(customer=world.c_pudong, model=world.ac_model, serial="SN-FAIL-0002", purchase_date=PAST)
    real_load = customer_services._BulkRegistration._load

    def load(self):  # the look-up ran before the concurrent registration committed
        real_load(self)
        self.taken.discard("SN-FAIL-0002")

    monkeypatch.setattr(customer_services._BulkRegistration, "_load", load)
    rows = [["甲", "13900000201", *SH, "路1号", "", "", "SN-OK-0001", "KFR-35GW", PAST, "", ""],
            ["乙", "13900000202", *SH, "路2号", "", "", "SN-FAIL-0002", "KFR-35GW", PAST, "", ""],
            ["丙", "13900000203", *SH, "路3号", "", "", "SN-OK-0003", "KFR-35GW", PAST, "", ""]]
    audit0 = AuditEntry.objects.count()
    job = import_run(user=world.pudong_agent, filename="a.csv", content=csv_bytes(rows))
    assert (job.ok_rows, job.error_rows, job.status) == (2, 1, ImportStatus.DONE)
    assert not Customer.objects.filter(phone="13900000202").exists()
    assert not Address.objects.filter(street="路2号").exists()
    e = job.row_errors.get()
    assert (e.row_number, e.field) == (3, "序列号") and "已登记" in e.message
    # 2 rows × (customer, address, unit) + job start and finish; nothing of the failed row
    assert AuditEntry.objects.count() == audit0 + 2 * 3 + 2


def test_an_invalid_unit_of_an_otherwise_valid_customer_is_not_half_written(world):
    rows = [["丁", "13900000301", *SH, "路1号", "", "", "SN-OK-0301", "KFR-35GW", FUTURE, "", ""],
            ["戊", "13900000302", *SH, "路2号", "", "", "SN-OK-0302", "", "", "", ""]]
    job = import_run(user=world.pudong_agent, filename="a.csv", content=csv_bytes(rows))
    assert job.ok_rows == 0 and job.error_rows == 2
    assert not Customer.objects.filter(phone__in=["13900000301", "13900000302"]).exists()
    errs = {e.row_number: e for e in job.row_errors.all()}
    assert errs[2].field == "购买日期"
    assert set(errs[3].field.split("、")) == {"型号", "购买日期"}  # every bad field of the row at once


def test_an_unexpected_crash_rolls_back_its_row_stops_the_job_and_records_it(world, monkeypatch):
    """The batch fails, is rolled back and retried row by row: the row that fails again stops the job."""
    real = services.customers_register_bulk

    def register(*, user, rows):
        if any(r.unit is not None and r.unit.serial == "SN-CRASH-02" for r in rows):
            raise RuntimeError("boom")
        return real(user=user, rows=rows)

    monkeypatch.setattr(services, "customers_register_bulk", register)
    rows = [[n, f"139000004{i:02d}", *SH, f"路{i}号", "", "", f"SN-CRASH-{i:02d}", "KFR-35GW", PAST, "", ""]
            for i, n in enumerate(["甲", "乙", "丙", "丁"], start=1)]
    job = import_run(user=world.pudong_agent, filename="a.csv", content=csv_bytes(rows))
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and "第 3 行" in job.message
    assert (job.total_rows, job.ok_rows, job.error_rows, job.units_created) == (4, 1, 3, 1)
    assert list(Customer.objects.filter(phone__startswith="139000004").values_list("phone", flat=True)) == [
        "13900000401"]
    assert not Address.objects.filter(street="路2号").exists()
    errs = {e.row_number: e.message for e in job.row_errors.all()}
    assert set(errs) == {3, 4, 5} and "系统错误" in errs[3] and "未处理" in errs[4]
    _header, report = report_rows(job)
    assert [r[len(HEADER)] for r in report] == [3, 4, 5]
    assert AuditEntry.objects.filter(chain=f"imports.importjob:{job.pk}", action="import.finish").exists()


def test_a_batch_that_cannot_be_committed_imports_none_of_its_rows(world, monkeypatch):
    real_save = ImportJob.save
    calls = []

    def save(self, *a, **kw):
        if kw.get("update_fields") and "ok_rows" in kw["update_fields"]:
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("database went away")
        return real_save(self, *a, **kw)

    monkeypatch.setattr(ImportJob, "save", save)
    rows = [[f"客户{i}", f"139000008{i:02d}", *SH, f"路{i}号", "", "", f"SN-C-{i:04d}", "KFR-35GW", PAST, "", ""]
            for i in range(5)]
    job = import_run(user=world.pudong_agent, filename="a.csv", content=csv_bytes(rows), batch_size=2)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and "第 4 行" in job.message
    assert (job.ok_rows, job.error_rows, job.customers_created) == (2, 3, 2)
    assert sorted(Customer.objects.filter(phone__startswith="139000008").values_list("phone", flat=True)) == [
        "13900000800", "13900000801"]
    assert sorted(job.row_errors.values_list("row_number", flat=True)) == [4, 5, 6]


def test_batches_commit_independently(world):
    rows = [[f"客户{i}", f"139000005{i:02d}", *SH, f"路{i}号", "", "", f"SN-B-{i:04d}", "KFR-35GW", PAST, "", ""]
            for i in range(7)]
    rows[4][1] = "bad"
    job = import_run(user=world.pudong_agent, filename="a.csv", content=csv_bytes(rows), batch_size=3)
    assert (job.ok_rows, job.error_rows, job.customers_created, job.units_created) == (6, 1, 6, 6)
    assert job.row_errors.get().row_number == 6


# ---------------------------------------------------------------- kinds

def test_units_only_attach_to_existing_customers(world):
    header = ["手机号", "序列号", "型号", "购买日期", "渠道"]
    rows = [["138-1234-5678", "SN-U-0001", "kfr-35gw", PAST, "online"],
            ["13987654321", "SN-U-0002", "KFR-35GW", PAST, ""],  # tianhe: out of reach
            ["13900000999", "SN-U-0003", "KFR-35GW", PAST, ""],  # nobody
            ["13812345678", "SN-U-0004", "KFR-35GW", PAST, "淘宝"]]
    job = import_run(user=world.pudong_agent, filename="u.csv", content=csv_bytes(rows, header=header), kind="units")
    assert (job.ok_rows, job.error_rows, job.customers_created, job.units_created) == (1, 3, 0, 1)
    assert Unit.objects.get(serial="SN-U-0001").customer_id == world.c_pudong.pk
    errs = {e.row_number: e for e in job.row_errors.all()}
    assert errs[3].field == "手机号" and errs[4].field == "手机号" and errs[5].field == "销售渠道"
    with pytest.raises(ValidationFailed) as e:
        import_run(user=world.pudong_agent, filename="u.csv", content=csv_bytes([["张三", "13812345678"]],
                   header=["姓名", "手机号"]), kind="units")
    assert "序列号" in str(e.value.errors["file"][0])


def test_customers_only(world):
    rows = [["新客户", "13900000601", *SH, "路1号", "a,b", "老朋友", "SN-IGNORED-1", "KFR-35GW", PAST, "", ""],
            ["张伟", "13812345678", *SH, "路2号", "", "", "", "", "", "", ""]]
    job = import_run(user=world.pudong_agent, filename="c.csv", content=csv_bytes(rows), kind="customers")
    assert (job.ok_rows, job.error_rows, job.units_created) == (1, 1, 0)
    c = Customer.objects.get(phone="13900000601")
    assert c.notes == "老朋友" and sorted(t.name for t in c.tags.all()) == ["a", "b"]
    assert not Unit.objects.filter(serial="SN-IGNORED-1").exists()
    assert "已登记" in job.row_errors.get().message


def test_the_error_report_can_be_corrected_and_uploaded_again(world):
    job = import_run(user=world.pudong_agent, filename="a.csv", content=csv_bytes([r for _c, r in MIXED]))
    wb = openpyxl.load_workbook(io.BytesIO(services.error_report(job)))
    ws = wb.worksheets[0]
    for row in ws.iter_rows(min_row=2):
        if row[1].value == "1234567":
            row[1].value = "13900000005"  # correct the phone of one row
    buf = io.BytesIO()
    wb.save(buf)
    again = import_run(user=world.pudong_agent, filename="report.xlsx", content=buf.getvalue())
    assert (again.total_rows, again.ok_rows, again.error_rows) == (8, 1, 7)
    assert Customer.objects.filter(phone="13900000005").exists()
    header, _rows = report_rows(again)
    assert header == HEADER + ["行号", "错误字段", "错误原因"]  # no second set of report columns


def test_report_cells_never_become_formulas(world):
    rows = [["=HYPERLINK(\"http://evil\",\"x\")", "bad", *SH, "@SUM(1)", "", "+cmd", "", "", "", "", ""]]
    job = import_run(user=world.pudong_agent, filename="a.csv", content=csv_bytes(rows))
    wb = openpyxl.load_workbook(io.BytesIO(services.error_report(job)))
    cell = wb.worksheets[0]["A2"]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")


# ---------------------------------------------------------------- reading

def test_reader_encodings_delimiters_aliases_and_dates():
    body = "Name;Mobile;Serial No;Model;Purchase Date;Channel\n李四;+86 139 0000 0701;sn1;m;2024年3月5日;门店\n"
    for enc in ("utf-8", "utf-8-sig", "gb18030", "utf-16"):
        t = read_table("x.csv", body.encode(enc), required=("name", "phone"))
        assert t.delimiter == ";"
        v = t.rows[0].values
        assert (v["name"], v["phone"], v["purchase_date"]) == ("李四", "+86 139 0000 0701", dt.date(2024, 3, 5))
    tab = "客户导入表\n\n姓名\t手机\t购买日期(YYYY-MM-DD)\n王\t13900000702\t45000\n李\t13900000703\t2024/2/30\n"
    t = read_table("x.txt", tab.encode("gbk"))
    assert t.headers == ["姓名", "手机", "购买日期(YYYY-MM-DD)"] and t.keys == ["name", "phone", "purchase_date"]
    assert [r.number for r in t.rows] == [4, 5]
    assert t.rows[0].values["purchase_date"] == dt.date(2023, 3, 15)  # an Excel day number
    assert t.rows[1].values["purchase_date"] == "2024/2/30"  # left for the service to reject
    both = read_table("x.csv", "电话,手机号,姓名\n010-1,13900000704,王\n".encode())
    assert both.keys == [None, "phone", "name"] and both.rows[0].values["phone"] == "13900000704"


def test_template_is_importable_after_filling_in(world):
    wb = openpyxl.load_workbook(io.BytesIO(services.template_xlsx()))
    ws = wb.worksheets[0]
    header = [c.value for c in ws[1]]
    assert header[:2] == ["姓名", "手机号"] and "序列号" in header and ws.max_row == 2
    t = read_table("template.xlsx", services.template_xlsx())
    assert all(t.keys) and len(t.rows) == 1
    job = import_run(user=world.pudong_agent, filename="template.xlsx", content=services.template_xlsx())
    assert job.ok_rows == 1 and Unit.objects.filter(serial="AC2025123456").exists()


# ---------------------------------------------------------------- command

def test_management_command(world, tmp_path):
    f = tmp_path / "客户.csv"
    f.write_bytes(csv_bytes([r for _c, r in MIXED], encoding="gbk"))
    out, err = io.StringIO(), io.StringIO()
    call_command("import_customers", str(f), "--user", "pudong_agent", stdout=out, stderr=err)
    assert "成功 4 行" in out.getvalue() and "未导入 8 行" in out.getvalue()
    assert "12/12" in err.getvalue()
    reports = list(tmp_path.glob("*错误报告*.xlsx"))
    assert len(reports) == 1
    with pytest.raises(CommandError, match="无权"):
        call_command("import_customers", str(f), "--user", "trainer", stdout=out, stderr=err)
    png = tmp_path / "a.png"
    png.write_bytes(PNG)
    with pytest.raises(CommandError, match="不是可识别的表格"):
        call_command("import_customers", str(png), "--user", "pudong_agent", stdout=out, stderr=err)


# ---------------------------------------------------------------- API

def _upload(client, user, content, name="a.csv", **data):
    f = SimpleUploadedFile(name, content)
    return client.post("/imports/", data=data, FILES={"file": f}, auth=user, user=user)


def test_api_upload_detail_and_report(world, api_client):
    r = _upload(api_client, world.pudong_agent, csv_bytes([r for _c, r in MIXED]))
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["total_rows"], body["ok_rows"], body["error_rows"]) == (12, 4, 8)
    assert body["report_url"].endswith(f"/imports/{body['id']}/report")
    assert {e["row_number"] for e in body["errors"]} == set(expected_errors())
    r = api_client.get(f"/imports/{body['id']}", auth=world.pudong_agent, user=world.pudong_agent)
    assert r.status_code == 200 and r.json()["ok_rows"] == 4
    r = api_client.get(f"/imports/{body['id']}/report", auth=world.pudong_agent, user=world.pudong_agent)
    assert r.status_code == 200 and r["Content-Type"].startswith("application/vnd.openxmlformats")
    assert openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0].max_row == 9
    # other users get 404, administrators see it
    for other in (world.hangzhou_agent, world.tianhe_agent):
        assert api_client.get(f"/imports/{body['id']}", auth=other, user=other).status_code == 404
        assert api_client.get(f"/imports/{body['id']}/report", auth=other, user=other).status_code == 404
    assert api_client.get(f"/imports/{body['id']}/report", auth=world.admin, user=world.admin).status_code == 200
    listed = api_client.get("/imports/", auth=world.hangzhou_agent, user=world.hangzhou_agent)
    assert listed.status_code == 200 and listed.json() == []


def test_api_errors(world, api_client):
    r = _upload(api_client, world.pudong_agent, PNG, name="x.png")
    assert r.status_code == 400 and "file" in r.json()["errors"]
    r = _upload(api_client, world.trainer, csv_bytes([]))
    assert r.status_code == 403
    r = _upload(api_client, world.pudong_agent, csv_bytes([r for _c, r in MIXED[:2]]))
    assert r.status_code == 201 and r.json()["report_url"] is None
    job_id = r.json()["id"]
    assert api_client.get(f"/imports/{job_id}/report", auth=world.pudong_agent,
                          user=world.pudong_agent).status_code == 404
    assert ImportJob.objects.count() == 1


# ---------------------------------------------------------------- page

def test_page_upload_result_report_and_template(world, client, page_urls, imports_inline,
                                                django_capture_on_commit_callbacks):
    client.force_login(world.pudong_agent)
    r = client.get(reverse("imports:upload"))
    assert r.status_code == 200 and "导入客户与产品" in r.text
    r = client.get(reverse("imports:template"))
    assert r.status_code == 200 and openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0].max_row == 2
    f = SimpleUploadedFile("客户.csv", csv_bytes([r for _c, r in MIXED], encoding="gbk"))
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(reverse("imports:upload"), {"file": f, "kind": "customers_units"})
    job = ImportJob.objects.get()
    assert r.status_code == 302 and r["Location"] == reverse("imports:job", args=[job.pk])
    r = client.get(r["Location"])
    assert r.status_code == 200
    assert 'data-count="ok">4<' in r.text and 'data-count="error">8<' in r.text
    assert reverse("imports:report", args=[job.pk]) in r.text
    r = client.get(reverse("imports:report", args=[job.pk]))
    assert r.status_code == 200 and len(report_rows(job)[1]) == 8

    client.force_login(world.hangzhou_agent)
    assert client.get(reverse("imports:job", args=[job.pk])).status_code == 404
    assert client.get(reverse("imports:report", args=[job.pk])).status_code == 404
    client.force_login(world.trainer)
    assert client.get(reverse("imports:upload")).status_code == 403


def test_page_refuses_a_non_table(world, client, page_urls):
    client.force_login(world.pudong_agent)
    r = client.post(reverse("imports:upload"), {"file": SimpleUploadedFile("a.png", PNG), "kind": "customers_units"})
    assert r.status_code == 400 and "不是可识别的表格" in r.text
    assert ImportJob.objects.count() == 0


def test_not_found_is_the_domain_error(world):
    from aftersales.imports.selectors import job_get

    with pytest.raises(NotFound):
        job_get(world.pudong_agent, 999)


def test_garbage_collection_is_paused_per_batch_and_restored():
    import gc

    assert gc.isenabled()
    with services._gc_paused():
        assert not gc.isenabled()
        with services._gc_paused():  # another import's batch, overlapping
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with services._gc_paused():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()
