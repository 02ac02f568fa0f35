"""Reading an uploaded table: .xlsx, or CSV in UTF-8 (with or without BOM), GB18030/GBK or UTF-16.

The kind of file is decided by its content, not by its name: a zip is tried as a workbook,
anything else as delimited text. The header is the first non-empty row (among the first
ten) naming at least one known column, in Chinese or English (``COLUMNS``); unknown columns
are kept for the error report but otherwise ignored, so a corrected error report can be
uploaded again as it is. Row numbers are the ones the spreadsheet shows (header = row 1
when it is the first row); empty rows are skipped but still counted.

Everything that is not a readable table becomes ``ValidationFailed({"file": [message]})``.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import ValidationFailed

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 50_000
MAX_UNZIPPED_BYTES = 400 * 1024 * 1024  # a workbook that inflates beyond this is refused (zip bomb)
MAX_COLUMNS = 200
HEADER_SEARCH_ROWS = 10

NOT_A_TABLE = _("文件不是可识别的表格（需要 .xlsx 或 .csv，首行为列名）。")


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # the Chinese column name, used in messages and in the template
    aliases: tuple[str, ...]  # in order of preference, normalised by ``normalize_header``
    example: str = ""
    help: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("name", "姓名", ("姓名", "客户姓名", "客户名称", "客户", "name", "customer_name", "customer"),
           "张三", "必填（新客户）"),
    Column("phone", "手机号", ("手机号", "手机", "手机号码", "移动电话", "phone", "mobile", "phone_number",
                            "mobile_phone", "联系电话", "电话"),
           "13800138000", "必填，11 位中国大陆手机号"),
    Column("province", "省", ("省", "省份", "省/直辖市", "province"), "上海市"),
    Column("city", "市", ("市", "城市", "city"), "上海市"),
    Column("district", "区县", ("区县", "区/县", "区", "县", "district"), "浦东新区",
           "用于按服务区域自动匹配网点"),
    Column("street", "详细地址", ("详细地址", "地址", "街道地址", "street", "address"), "张杨路 500 号 2 栋 1201 室"),
    Column("tags", "标签", ("标签", "客户标签", "tags", "tag"), "VIP；老客户", "多个标签用 ; 或 ，分隔"),
    Column("notes", "备注", ("备注", "notes", "note", "remark", "remarks"), ""),
    Column("outlet_code", "网点编码", ("网点编码", "服务网点编码", "网点", "服务网点", "outlet_code", "outlet"), "",
           "可选：不填则按区县自动匹配"),
    Column("serial", "序列号", ("序列号", "机身序列号", "产品序列号", "条码", "serial", "serial_no",
                             "serial_number", "sn"), "AC2025123456", "4–40 位字母、数字或 - _ /"),
    Column("model", "型号", ("型号", "产品型号", "model", "model_code"), "KFR-35GW"),
    Column("purchase_date", "购买日期", ("购买日期", "购机日期", "purchase_date", "date"), "2025-03-15",
           "YYYY-MM-DD 或 YYYY/MM/DD"),
    Column("sales_channel", "销售渠道", ("销售渠道", "渠道", "sales_channel", "channel"), "门店",
           "门店 / 电商 / 经销商 / 工程渠道"),
    Column("invoice_no", "发票号", ("发票号", "发票号码", "invoice_no", "invoice"), ""),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}


def label(key: str) -> str:
    c = COLUMN_BY_KEY.get(key)
    return c.label if c else key


_PAREN = re.compile(r"[（(【\[].*?[）)】\]]")


def normalize_header(h: Any) -> str:
    s = unicodedata.normalize("NFKC", str(h or "")).replace("\ufeff", "").strip().lower()
    s = _PAREN.sub("", s)  # 购买日期(YYYY-MM-DD) → 购买日期
    s = s.strip("*＊ :：")
    return re.sub(r"[\s\-.]+", "_", s).strip("_")


_ALIASES: dict[str, tuple[str, int]] = {}
for _c in COLUMNS:
    for _i, _a in enumerate(_c.aliases):
        _ALIASES.setdefault(normalize_header(_a), (_c.key, _i))


@dataclass
class Row:
    number: int  # as the spreadsheet shows it
    cells: list[str]  # the row's cells as text, one per header column (for the error report)
    values: dict[str, Any]  # column key → text, or a ``date`` for purchase_date when it could be read


@dataclass
class Table:
    format: str  # "xlsx" or "csv"
    headers: list[str]
    keys: list[str | None]  # the known column each header maps to, or None
    rows: list[Row] = field(default_factory=list)
    encoding: str = ""
    delimiter: str = ""

    def has(self, key: str) -> bool:
        return key in self.keys


def _fail(message) -> ValidationFailed:
    return ValidationFailed({"file": [message]}, message=message)


# ---------------------------------------------------------------- cell values

def cell_text(v: Any) -> str:
    if type(v) is str:  # every cell of a CSV: the common case first
        return v.replace("\ufeff", "").strip()
    if v is None:
        return ""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)
    if isinstance(v, dt.datetime):
        return v.date().isoformat() if v.time() == dt.time() else v.isoformat(sep=" ", timespec="seconds")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, dt.time):
        return v.isoformat()
    return str(v).replace("\ufeff", "").strip()


_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_EXCEL_EPOCH = dt.date(1899, 12, 30)


def _serial_to_date(n: float) -> dt.date | None:
    if 10_000_000 <= n <= 99_991_231 and float(n).is_integer():  # 20250315
        s = str(int(n))
        try:
            return dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))
        except ValueError:
            return None
    if 1 <= n < 2_958_466:  # an Excel day number that was not formatted as a date
        return _EXCEL_EPOCH + dt.timedelta(days=int(n))
    return None


def to_date(v: Any) -> dt.date | str:
    """A purchase date from a cell: a ``date`` when it can be read, else the text as given
    (the service then reports the format)."""
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        return _serial_to_date(v) or cell_text(v)
    s = cell_text(v)
    if not s:
        return ""
    m = _DATE.match(s)
    if m:
        try:
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return s
    if s.isdigit() and len(s) in (5, 8):
        return _serial_to_date(int(s)) or s
    return s


# ---------------------------------------------------------------- reading

def read_table(filename: str, content: bytes, *, required: Iterable[str] = ()) -> Table:
    """Read ``content`` into a ``Table``; ``required`` are column keys the file must have."""
    if not content:
        raise _fail(_("文件是空的。"))
    if len(content) > MAX_BYTES:
        raise _fail(_("文件过大（%(size).1f MB），上限为 20 MB，请拆分后分批导入。") % {
            "size": len(content) / 1024 / 1024})
    if content[:4] == b"PK\x03\x04":
        table = _read_xlsx(content)
    elif content[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise _fail(_("不支持旧版 Excel（.xls）文件，请在 Excel 中“另存为” .xlsx 或 CSV 后再导入。"))
    else:
        table = _read_csv(content)
    missing = [label(k) for k in required if k not in table.keys]
    if missing:
        raise _fail(_("缺少必需的列：%(cols)s。") % {"cols": "、".join(missing)})
    if not table.rows:
        raise _fail(_("文件中没有数据行（首行为列名，从下一行起为数据）。"))
    return table


def _build(fmt: str, rows: Iterator[tuple[int, list[Any]]], **extra) -> Table:
    """Find the header, map it, collect the data rows."""
    header: list[Any] | None = None
    keys: list[str | None] = []
    seen = 0
    for _number, cells in rows:
        if not any(cell_text(c) for c in cells):
            continue
        seen += 1
        keys = _map_header(cells)
        if any(keys):
            header = cells
            break
        if seen >= HEADER_SEARCH_ROWS:
            break
    if header is None:
        raise _fail(NOT_A_TABLE)
    width = len(header)
    while width and not cell_text(header[width - 1]):
        width -= 1
    headers = [cell_text(h) for h in header[:width]]
    keys = keys[:width]
    table = Table(format=fmt, headers=headers, keys=keys, **extra)
    index = [(k, i) for i, k in enumerate(keys) if k]
    for number, cells in rows:
        cells = list(cells[:width])
        if not any(cell_text(c) for c in cells):
            continue
        if len(table.rows) >= MAX_ROWS:
            raise _fail(_("文件超过 %(max)s 行数据，请拆分后分批导入。") % {"max": f"{MAX_ROWS:,}"})
        cells += [None] * (width - len(cells))
        values = {k: (to_date(cells[i]) if k == "purchase_date" else cell_text(cells[i])) for k, i in index}
        table.rows.append(Row(number=number, cells=[cell_text(c) for c in cells], values=values))
    return table


def _map_header(cells: list[Any]) -> list[str | None]:
    """Column key per header cell. When two columns name the same field (手机 and 电话), the
    one with the more specific name wins; the other is ignored."""
    found: dict[str, tuple[int, int]] = {}  # key → (alias rank, column index)
    for i, h in enumerate(cells[:MAX_COLUMNS]):
        hit = _ALIASES.get(normalize_header(h))
        if hit and (hit[0] not in found or hit[1] < found[hit[0]][0]):
            found[hit[0]] = (hit[1], i)
    keys: list[str | None] = [None] * len(cells)
    for k, (_rank, i) in found.items():
        keys[i] = k
    return keys


def _read_xlsx(content: bytes) -> Table:
    import openpyxl

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            names = set(z.namelist())
            inflated = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _fail(NOT_A_TABLE) from None
    if "xl/workbook.xml" not in names and not any(n.endswith("/workbook.xml") for n in names):
        raise _fail(NOT_A_TABLE)  # a .docx, .pptx, .ods or some other zip
    if inflated > MAX_UNZIPPED_BYTES:
        raise _fail(_("文件解压后过大，请拆分后分批导入。"))
    try:
        wb = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds on a damaged file
        raise _fail(_("无法读取该 Excel 文件，文件可能已损坏，请重新保存为 .xlsx 后再试。")) from None
    try:
        if not wb.worksheets:
            raise _fail(NOT_A_TABLE)
        ws = wb.worksheets[0]
        ws.reset_dimensions()  # some writers record a wrong sheet size; read what is there

        def rows():
            for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
                yield number, list(values[:MAX_COLUMNS])

        return _build("xlsx", rows())
    except ValidationFailed:
        raise
    except Exception:
        raise _fail(_("无法读取该 Excel 文件，文件可能已损坏，请重新保存为 .xlsx 后再试。")) from None
    finally:
        wb.close()


def _decode(content: bytes) -> tuple[str, str]:
    if content.startswith(codecs.BOM_UTF8):
        candidates = [("utf-8-sig", content)]
    elif content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Excel's "Unicode text"
        candidates = [("utf-16", content)]
    elif b"\x00" in content:
        raise _fail(NOT_A_TABLE)
    else:
        candidates = [("utf-8", content), ("gb18030", content)]
    for enc, data in candidates:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        sample = text[:65536]
        controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\r\n\f\x1a")
        if "\x00" in text or controls > max(8, len(sample) // 200):
            raise _fail(NOT_A_TABLE)
        return text, enc
    raise _fail(NOT_A_TABLE)


_DELIMITERS = [",", "\t", ";", "|"]


def _pick_delimiter(text: str) -> str:
    head = "\n".join(text.splitlines()[:HEADER_SEARCH_ROWS + 5])
    order = list(_DELIMITERS)
    try:
        sniffed = csv.Sniffer().sniff(head[:8192], delimiters="".join(_DELIMITERS)).delimiter
        order.remove(sniffed)
        order.insert(0, sniffed)
    except (csv.Error, ValueError):
        pass

    def recognised(d: str) -> int:
        try:
            best = 0
            for cells in list(csv.reader(io.StringIO(head), delimiter=d))[:HEADER_SEARCH_ROWS]:
                best = max(best, sum(1 for k in _map_header(cells) if k))
            return best
        except csv.Error:
            return 0

    return max(order, key=lambda d: (recognised(d), -order.index(d)))


def _read_csv(content: bytes) -> Table:
    text, enc = _decode(content)
    if not text.strip():
        raise _fail(_("文件是空的。"))
    delimiter = _pick_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def rows():
        try:
            for number, cells in enumerate(reader, start=1):
                yield number, cells[:MAX_COLUMNS]
        except csv.Error:
            raise _fail(NOT_A_TABLE) from None

    return _build("csv", rows(), encoding=enc, delimiter=delimiter)


# ---------------------------------------------------------------- writing

_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


def xlsx_bytes(sheets: list[tuple[str, list[str], Iterable[list[Any]]]], *, widths: dict[int, int] | None = None,
               text_columns: Iterable[int] = ()) -> bytes:
    """A workbook of ``(title, header, rows)`` sheets. Every text cell is written as text, so a
    value starting with "=" stays a value and never becomes a formula."""
    import openpyxl
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = openpyxl.Workbook(write_only=True)
    bold = Font(bold=True)
    text_columns = set(text_columns)
    for title, header, rows in sheets:
        ws = wb.create_sheet(title=title)
        for i, w in (widths or {}).items():
            ws.column_dimensions[openpyxl.utils.get_column_letter(i + 1)].width = w
        head = []
        for h in header:
            c = WriteOnlyCell(ws, value=_ILLEGAL.sub("", str(h)))
            c.data_type = "s"
            c.font = bold
            head.append(c)
        ws.append(head)
        for row in rows:
            out = []
            for i, v in enumerate(row):
                if isinstance(v, str):
                    c = WriteOnlyCell(ws, value=_ILLEGAL.sub("", v))
                    c.data_type = "s"
                else:
                    c = WriteOnlyCell(ws, value=v)
                    if isinstance(v, dt.date):
                        c.number_format = "yyyy-mm-dd"
                if i in text_columns:
                    c.number_format = "@"
                out.append(c)
            ws.append(out)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
