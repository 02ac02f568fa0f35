"""Spreadsheets of the parts app: reading the parts catalog and the opening stock (.xlsx, or CSV
in UTF-8 / GBK), their templates, the error reports, and the export of the stock.

The reading is ``imports.tabular``'s (the size and zip-bomb limits, the text decoding and the
cell conversion, the ``Table`` / ``Row`` it returns); only the columns differ: a file's header
is mapped to the columns of its kind (``CATALOG`` or ``OPENING_STOCK``) in Chinese or English.
A file that is not a table becomes ``ValidationFailed({"file": [...]})`` before anything is
written. Rejected rows come back as ``imports.services.build_error_report`` builds them: the
row's own cells, then 行号 / 错误字段 / 错误原因; corrected, the report can be uploaded again.

The opening stock is written row by row through the stock services (``services.stock_receive``
and ``services.reorder_set``): a row is written completely or not at all; see ``stock_import``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import DomainError, PermissionDenied, ValidationFailed
from aftersales.imports import tabular
from aftersales.imports.services import RowFailure, build_error_report
from aftersales.imports.tabular import Column, Row, Table, cell_text, normalize_header, xlsx_bytes
from aftersales.org.roles import Perm
from aftersales.org.scope import principal

from .models import Part, Stock, Warehouse

# ---------------------------------------------------------------- the kinds of file


@dataclass(frozen=True)
class Kind:
    """A kind of file: its columns (``Column.label`` is the Chinese header), the required ones."""

    key: str
    title: str
    columns: tuple[Column, ...]
    required: tuple[str, ...]
    text_columns: tuple[str, ...] = ()  # written as text in the template (codes that look like numbers)
    aliases: dict[str, tuple[str, int]] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        for c in self.columns:
            for i, a in enumerate(c.aliases):
                self.aliases.setdefault(normalize_header(a), (c.key, i))

    def label(self, key: str) -> str:
        return next((c.label for c in self.columns if c.key == key), key)


CATALOG = Kind(
    key="catalog", title=_("配件目录"),
    columns=(
        Column("code", "配件编码", ("配件编码", "编码", "物料编码", "配件号", "code", "part_code", "part_no"),
               "P-CAP-35", "必填；已有的编码则更新该配件"),
        Column("name", "名称", ("名称", "配件名称", "中文名称", "name", "part_name"), "压缩机启动电容 35μF", "必填"),
        Column("name_en", "英文名称", ("英文名称", "英文名", "name_en", "english_name"), "Start capacitor 35uF"),
        Column("category", "类别编码", ("类别编码", "产品类别编码", "类别", "产品类别", "品类", "category",
                                     "category_code"), "AC", "产品类别的编码，如 AC"),
        Column("fits", "适用型号", ("适用型号", "型号", "适用机型", "fits", "models", "model_codes"),
               "KFR-35GW，KFR-26GW", "型号编码，多个用 , 或 ；分隔"),
        Column("main_part_code", "主要部件编码", ("主要部件编码", "主要部件", "main_part_code", "main_part"), "",
               "此配件是适用型号的主要部件时填写，如 COMP（压缩机）"),
        Column("uom", "计量单位", ("计量单位", "单位", "uom", "unit"), "个"),
        Column("serialised", "序列号管理", ("序列号管理", "序列号", "是否序列号管理", "serialised", "serialized"),
               "否", "是 / 否"),
        Column("returnable", "旧件须返还", ("旧件须返还", "旧件返还", "需返还旧件", "returnable"), "是", "是 / 否"),
        Column("unit_cost", "成本单价", ("成本单价", "成本价", "单价", "成本", "unit_cost", "cost"), "35.00",
               "元，最多两位小数"),
        Column("active", "启用", ("启用", "是否启用", "状态", "active"), "是", "是 / 否；停用的配件不能再申领"),
    ),
    required=("code",),
    text_columns=("code", "fits", "main_part_code"),
)

OPENING_STOCK = Kind(
    key="stock", title=_("期初库存"),
    columns=(
        Column("warehouse", "仓库编码", ("仓库编码", "仓库", "库房编码", "warehouse", "warehouse_code"), "WH-SH-PD",
               "必填；须在您管理的范围内"),
        Column("part", "配件编码", ("配件编码", "编码", "物料编码", "配件号", "part", "part_code", "code"), "P-CAP-35",
               "必填；配件须已在配件目录中"),
        Column("qty", "数量", ("数量", "期初数量", "在库数量", "库存数量", "qty", "quantity", "on_hand"), "10",
               "整数，不小于 0"),
        Column("unit_cost", "成本单价", ("成本单价", "成本价", "单价", "成本", "unit_cost", "cost"), "35.00",
               "元；不填则取配件目录的成本单价"),
        Column("reorder_point", "补货点", ("补货点", "最低库存", "安全库存", "reorder_point"), "5",
               "可选，与补货量同时填写"),
        Column("reorder_qty", "补货量", ("补货量", "补货数量", "reorder_qty", "reorder_quantity"), "10",
               "可选，与补货点同时填写"),
        Column("serials", "序列号", ("序列号", "序列号列表", "serials", "serial", "serial_numbers"), "",
               "序列号管理的配件必填，个数与数量相同，用 , 或 ；分隔"),
    ),
    required=("warehouse", "part"),
    text_columns=("warehouse", "part", "serials"),
)

KINDS = {k.key: k for k in (CATALOG, OPENING_STOCK)}


# ---------------------------------------------------------------- reading (imports.tabular's limits)

def _fail(message) -> ValidationFailed:
    return ValidationFailed({"file": [message]}, message=message)


def _map_header(kind: Kind, cells: list[Any]) -> list[str | None]:
    """The column key of each header cell; of two cells naming one column the more specific wins."""
    found: dict[str, tuple[int, int]] = {}
    for i, h in enumerate(cells[:tabular.MAX_COLUMNS]):
        hit = kind.aliases.get(normalize_header(h))
        if hit and (hit[0] not in found or hit[1] < found[hit[0]][0]):
            found[hit[0]] = (hit[1], i)
    keys: list[str | None] = [None] * len(cells)
    for k, (_rank, i) in found.items():
        keys[i] = k
    return keys


@contextmanager
def _xlsx_rows(content: bytes) -> Iterator[Iterator[tuple[int, list[Any]]]]:
    import openpyxl

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            names = set(z.namelist())
            inflated = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _fail(tabular.NOT_A_TABLE) from None
    if not any(n == "xl/workbook.xml" or n.endswith("/workbook.xml") for n in names):
        raise _fail(tabular.NOT_A_TABLE)  # a .docx, .pptx, .ods or another zip
    if inflated > tabular.MAX_UNZIPPED_BYTES:
        raise _fail(_("文件解压后过大，请拆分后分批导入。"))
    try:
        wb = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds on a damaged file
        raise _fail(_("无法读取该 Excel 文件，文件可能已损坏，请重新保存为 .xlsx 后再试。")) from None
    try:
        if not wb.worksheets:
            raise _fail(tabular.NOT_A_TABLE)
        ws = wb.worksheets[0]
        ws.reset_dimensions()

        def rows():
            for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
                yield number, list(values[:tabular.MAX_COLUMNS])

        yield rows()
    except ValidationFailed:
        raise
    except Exception:
        raise _fail(_("无法读取该 Excel 文件，文件可能已损坏，请重新保存为 .xlsx 后再试。")) from None
    finally:
        wb.close()


def _csv_rows(kind: Kind, content: bytes) -> tuple[Iterator[tuple[int, list[Any]]], str, str]:
    text, encoding = tabular._decode(content)  # UTF-8 (BOM or not), GB18030/GBK, UTF-16
    if not text.strip():
        raise _fail(_("文件是空的。"))
    head = "\n".join(text.splitlines()[:tabular.HEADER_SEARCH_ROWS + 5])

    def recognised(d: str) -> int:
        try:
            return max((sum(1 for k in _map_header(kind, cells) if k)
                        for cells in list(csv.reader(io.StringIO(head), delimiter=d))[:tabular.HEADER_SEARCH_ROWS]),
                       default=0)
        except csv.Error:
            return 0

    delimiters = [",", "\t", ";", "|"]
    delimiter = max(delimiters, key=lambda d: (recognised(d), -delimiters.index(d)))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def rows():
        try:
            for number, cells in enumerate(reader, start=1):
                yield number, cells[:tabular.MAX_COLUMNS]
        except csv.Error:
            raise _fail(tabular.NOT_A_TABLE) from None

    return rows(), encoding, delimiter


def _build(kind: Kind, fmt: str, rows: Iterator[tuple[int, list[Any]]], **extra) -> Table:
    header: list[Any] | None = None
    keys: list[str | None] = []
    seen = 0
    for _number, cells in rows:
        if not any(cell_text(c) for c in cells):
            continue
        seen += 1
        keys = _map_header(kind, cells)
        if any(keys):
            header = cells
            break
        if seen >= tabular.HEADER_SEARCH_ROWS:
            break
    if header is None:
        raise _fail(tabular.NOT_A_TABLE)
    width = len(header)
    while width and not cell_text(header[width - 1]):
        width -= 1
    table = Table(format=fmt, headers=[cell_text(h) for h in header[:width]], keys=keys[:width], **extra)
    index = [(k, i) for i, k in enumerate(table.keys) if k]
    for number, cells in rows:
        cells = list(cells[:width])
        if not any(cell_text(c) for c in cells):
            continue
        if len(table.rows) >= tabular.MAX_ROWS:
            raise _fail(_("文件超过 %(max)s 行数据，请拆分后分批导入。") % {"max": f"{tabular.MAX_ROWS:,}"})
        cells += [None] * (width - len(cells))
        texts = [cell_text(c) for c in cells]
        table.rows.append(Row(number=number, cells=texts, values={k: texts[i] for k, i in index}))
    return table


def read(kind: Kind, content: bytes) -> Table:
    """The file's rows, their cells as text under the column keys of ``kind``."""
    if not content:
        raise _fail(_("文件是空的。"))
    if len(content) > tabular.MAX_BYTES:
        raise _fail(_("文件过大（%(size).1f MB），上限为 20 MB，请拆分后分批导入。") % {
            "size": len(content) / 1024 / 1024})
    if content[:4] == b"PK\x03\x04":
        with _xlsx_rows(content) as rows:
            table = _build(kind, "xlsx", rows)
    elif content[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise _fail(_("不支持旧版 Excel（.xls）文件，请在 Excel 中“另存为” .xlsx 或 CSV 后再导入。"))
    else:
        rows, encoding, delimiter = _csv_rows(kind, content)
        table = _build(kind, "csv", rows, encoding=encoding, delimiter=delimiter)
    missing = [kind.label(k) for k in kind.required if k not in table.keys]
    if missing:
        raise _fail(_("缺少必需的列：%(cols)s。") % {"cols": "、".join(missing)})
    if not table.rows:
        raise _fail(_("文件中没有数据行（首行为列名，从下一行起为数据）。"))
    return table


# ---------------------------------------------------------------- cell values

_LIST_SEPARATORS = str.maketrans({c: "," for c in ";；，、\n\r\t|"})
_SERIAL_SEPARATORS = str.maketrans({c: "," for c in ";；，、\n\r\t| "})
_TRUE = {"是", "y", "yes", "true", "1", "√", "✓", "对", "需要", "要", "启用"}
_FALSE = {"否", "n", "no", "false", "0", "×", "✗", "x", "不", "不需要", "不要", "停用"}


def split_list(text: str, *, serials: bool = False) -> list[str]:
    """Codes separated by , ， ; ； 、 or line breaks (serials also by spaces); no repeats."""
    out: list[str] = []
    for s in (text or "").translate(_SERIAL_SEPARATORS if serials else _LIST_SEPARATORS).split(","):
        s = s.strip()
        if s and s not in out:
            out.append(s)
    return out


def parse_bool(text: str) -> bool | None:
    """是 / 否 and their usual spellings; None when the text is none of them."""
    t = (text or "").strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    return None


BOOL_ERROR = _("请填写“是”或“否”。")
MONEY_MAX = Decimal("9999999999.99")


def parse_money(text: str) -> tuple[Decimal | None, Any]:
    """(amount, None) or (None, message): yuan, not negative, at most two decimals."""
    t = (text or "").strip().replace(",", "").replace("，", "").lstrip("¥￥").removesuffix("元").strip()
    try:
        d = Decimal(t)
    except InvalidOperation:
        return None, _("金额格式不正确，应为数字，如 35.00。")
    if not d.is_finite():
        return None, _("金额格式不正确，应为数字，如 35.00。")
    if d < 0:
        return None, _("金额不能为负数。")
    if d > MONEY_MAX:
        return None, _("金额过大。")
    if d != d.quantize(Decimal("0.01")):
        return None, _("金额最多两位小数。")
    return d.quantize(Decimal("0.01")), None


def parse_count(text: str, *, minimum: int = 0) -> tuple[int | None, Any]:
    """(whole number, None) or (None, message)."""
    t = (text or "").strip().replace(",", "")
    try:
        d = Decimal(t)
    except InvalidOperation:
        return None, _("须为整数。")
    if not d.is_finite() or d != d.to_integral_value():
        return None, _("须为整数。")
    n = int(d)
    if n < minimum:
        return None, (_("不能为负数。") if minimum == 0 else _("须不小于 %(n)s。") % {"n": minimum})
    if n > 1_000_000_000:
        return None, _("数量过大。")
    return n, None


# ---------------------------------------------------------------- reports and templates

@dataclass
class ImportResult:
    """What an import did: counts, the rejected rows and the .xlsx report of them."""

    kind: str
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failures: list[RowFailure] = field(default_factory=list)
    report: bytes | None = None

    @property
    def ok(self) -> int:
        return self.created + self.updated + self.unchanged

    @property
    def errors(self) -> int:
        return len(self.failures)


def failure(kind: Kind, row: Row, errors: dict[str, list]) -> RowFailure:
    """A rejected row: its errors named by the Chinese column (the error report's 错误字段)."""
    return RowFailure(row, [(kind.label(k) if k else "", str(m)) for k, msgs in errors.items() for m in msgs])


def finish(result: ImportResult, table: Table) -> ImportResult:
    result.failures.sort(key=lambda f: f.row.number)
    result.report = build_error_report(table, result.failures) if result.failures else None
    return result


def template_xlsx(kind: Kind) -> bytes:
    """The file to fill in: every column, one example row, and a sheet explaining them."""
    cols = kind.columns
    text_cols = [i for i, c in enumerate(cols) if c.key in kind.text_columns]
    help_rows = [[c.label, gettext("是") if c.key in kind.required else gettext("否"),
                  ", ".join(dict.fromkeys(c.aliases[1:2] + c.aliases[-1:])), c.help] for c in cols]
    help_rows += [
        ["", "", "", ""],
        [gettext("说明"), "", "", gettext("第一行为列名，从第二行起每行一条；导入前请删除示例行。")],
        ["", "", "", gettext("也可另存为 CSV（UTF-8 或 GBK）导入；单个文件最多 50,000 行、20 MB。")],
        ["", "", "", gettext("有错误的行不导入，其余行照常导入；错误行可下载为错误报告，改正后重新上传。")],
    ]
    return xlsx_bytes(
        [(str(kind.title), [c.label for c in cols], [[c.example for c in cols]]),
         (gettext("填写说明"), [gettext("列名"), gettext("必填"), gettext("也可写作"), gettext("说明")], help_rows)],
        widths={i: 16 for i in range(len(cols))}, text_columns=text_cols)


# ---------------------------------------------------------------- opening stock

STOCK_BATCH = 200  # rows per transaction (each row in its own savepoint)
OPENING_REASON = _("期初库存导入")

# The error keys of the stock services → the column at fault.
_STOCK_FIELDS = {"warehouse_id": "warehouse", "warehouse": "warehouse", "part_id": "part", "part": "part",
                 "qty": "qty", "unit_cost": "unit_cost", "serials": "serials", "serial": "serials",
                 "reorder_point": "reorder_point", "reorder_qty": "reorder_qty"}


@dataclass
class _StockRow:
    row: Row
    warehouse: Warehouse | None = None
    part: Part | None = None
    qty: int = 0
    unit_cost: Decimal | None = None
    reorder_point: int | None = None
    reorder_qty: int | None = None
    serials: list[str] = field(default_factory=list)
    errors: dict[str, list] = field(default_factory=dict)

    def add(self, key: str, message) -> None:
        self.errors.setdefault(key, []).append(message)


def _manageable_node_ids(user) -> set[int] | None:
    return principal(user).node_ids_for(Perm.PARTS_MANAGE)


def _check_stock_rows(user, table: Table) -> list[_StockRow]:
    """Every row's own checks, with the look-ups of the whole file done at once."""
    rows = [_StockRow(r) for r in table.rows]
    warehouses = by_code(Warehouse, [r.row.values.get("warehouse") for r in rows])
    parts = by_code(Part, [r.row.values.get("part") for r in rows])
    scope = _manageable_node_ids(user)
    seen: dict[tuple[int, int], int] = {}
    for r in rows:
        v = r.row.values
        wcode = (v.get("warehouse") or "").strip()
        pcode = (v.get("part") or "").strip()
        if not wcode:
            r.add("warehouse", _("请填写仓库编码。"))
        else:
            w = warehouses.get(wcode.upper())
            if w is None or (scope is not None and w.node_id not in scope):
                r.add("warehouse", _("仓库 %(code)s 不存在，或不在您管理的范围内。") % {"code": wcode})
            elif not w.active:
                r.add("warehouse", _("仓库 %(code)s 已停用。") % {"code": wcode})
            else:
                r.warehouse = w
        if not pcode:
            r.add("part", _("请填写配件编码。"))
        else:
            p = parts.get(pcode.upper())
            if p is None:
                r.add("part", _("配件 %(code)s 不在配件目录中。") % {"code": pcode})
            elif not p.active:
                r.add("part", _("配件 %(code)s 已停用。") % {"code": pcode})
            else:
                r.part = p
        qty_text = (v.get("qty") or "").strip()
        if qty_text:
            r.qty, msg = parse_count(qty_text)
            if msg:
                r.add("qty", msg)
                r.qty = 0
        if (v.get("unit_cost") or "").strip():
            r.unit_cost, msg = parse_money(v["unit_cost"])
            if msg:
                r.add("unit_cost", msg)
        for key in ("reorder_point", "reorder_qty"):
            if (v.get(key) or "").strip():
                n, msg = parse_count(v[key], minimum=1 if key == "reorder_qty" else 0)
                if msg:
                    r.add(key, msg)
                setattr(r, key, n)
        has_point, has_qty = bool((v.get("reorder_point") or "").strip()), bool((v.get("reorder_qty") or "").strip())
        if has_point != has_qty:
            r.add("reorder_qty" if has_point else "reorder_point", _("补货点与补货量须同时填写。"))
        r.serials = split_list(v.get("serials") or "", serials=True)
        if not qty_text and not has_point:
            r.add("qty", _("请填写数量（或补货点与补货量）。"))
        if r.part is not None and not r.errors.get("qty"):
            if r.part.serialised and len(r.serials) != r.qty:
                r.add("serials", _("配件 %(code)s 按序列号管理：须填写 %(n)s 个序列号，实际 %(m)s 个。") % {
                    "code": r.part.code, "n": r.qty, "m": len(r.serials)})
            elif not r.part.serialised and r.serials:
                r.add("serials", _("配件 %(code)s 不按序列号管理，请不要填写序列号。") % {"code": r.part.code})
    for r in rows:  # of the rows otherwise good, one per (warehouse, part)
        if r.errors:
            continue
        key = (r.warehouse.pk, r.part.pk)
        if key in seen:
            r.add("part", _("与第 %(row)s 行的仓库和配件相同；同一仓库的同一配件只能有一行。") % {"row": seen[key]})
        else:
            seen[key] = r.row.number
    _refuse_repeated_opening(rows)
    return rows


def by_code(qs, codes: Iterable[str | None]) -> dict:
    """``{CODE: row}`` of the rows of ``qs`` (a model or a queryset) named by ``codes``, whatever
    the case they are written in: one query by the codes as written and in capitals, then
    (case-insensitive) only for codes still not found."""
    qs = qs._default_manager.all() if isinstance(qs, type) else qs
    wanted = {(c or "").strip() for c in codes} - {""}
    if not wanted:
        return {}
    found: dict = {}
    everything = sorted(wanted | {c.upper() for c in wanted})
    for start in range(0, len(everything), 500):
        found |= {o.code.upper(): o for o in qs.filter(code__in=everything[start:start + 500])}
    missing = sorted({c.upper() for c in wanted} - set(found))
    for start in range(0, len(missing), 500):
        found |= {o.code.upper(): o for o in qs.annotate(code_upper=Upper("code"))
                  .filter(code_upper__in=missing[start:start + 500])}
    return found


def _refuse_repeated_opening(rows: list[_StockRow]) -> None:
    """Opening stock is loaded once: a (warehouse, part) that already has stock on record is
    refused (the same file uploaded twice would count it twice); receive or count it instead."""
    pairs = {(r.warehouse.pk, r.part.pk): r for r in rows if r.warehouse and r.part and r.qty and not r.errors}
    if not pairs:
        return
    wh_ids = {w for w, _p in pairs}
    part_ids = {p for _w, p in pairs}
    existing = set(Stock.objects.filter(warehouse_id__in=wh_ids, part_id__in=part_ids)
                   .exclude(on_hand=0, defective=0).values_list("warehouse_id", "part_id"))
    for key in existing & set(pairs):
        r = pairs[key]
        r.add("qty", _("仓库 %(wh)s 已有配件 %(part)s 的库存，期初库存只能导入一次；请改用入库或盘点调整。") % {
            "wh": r.warehouse.code, "part": r.part.code})


def _write_stock_row(user, r: _StockRow, now: dt.datetime) -> bool:
    """One row through the stock services; True when it changed something."""
    from . import services

    wrote = False
    if r.qty:
        services.stock_receive(user=user, warehouse_id=r.warehouse.pk, part_id=r.part.pk, qty=r.qty,
                               unit_cost=r.unit_cost, serials=tuple(r.serials), reason=str(OPENING_REASON), now=now)
        wrote = True
    if r.reorder_point is not None and r.reorder_qty is not None:
        services.reorder_set(user=user, warehouse_id=r.warehouse.pk, part_id=r.part.pk,
                             reorder_point=r.reorder_point, reorder_qty=r.reorder_qty)
        wrote = True
    return wrote


def page_stock_rows() -> int:
    """The most opening-stock rows the import page takes in one file: each row goes through the
    stock services (a ledger movement, its audit entry) while the page waits; the command
    ``parts_import`` takes files of any size."""
    return int(getattr(settings, "PARTS_IMPORT_PAGE_STOCK_ROWS", 2000))


def stock_import(*, user, content: bytes, now: dt.datetime | None = None, max_rows: int | None = None
                 ) -> ImportResult:
    """Load opening stock: each good row received (+ its reorder settings), each bad row reported.

    Needs ``parts.manage``; a warehouse outside the user's scope is a row error. Rows are
    written in batches of ``STOCK_BATCH`` per transaction, each row in a savepoint, so a row
    the stock services refuse leaves no trace and the others are kept. ``max_rows``: a file
    with more data rows is refused before anything is written."""
    if not principal(user).can(Perm.PARTS_MANAGE):
        raise PermissionDenied()
    table = read(OPENING_STOCK, content)
    if max_rows is not None and len(table.rows) > max_rows:
        raise _fail(_("期初库存每次最多导入 %(max)s 行（文件有 %(n)s 行），请拆分后分批导入，"
                      "或由管理员使用命令 manage.py parts_import 导入。") % {
            "max": f"{max_rows:,}", "n": f"{len(table.rows):,}"})
    rows = _check_stock_rows(user, table)
    result = ImportResult(kind=OPENING_STOCK.key, total=len(rows))
    now = now or timezone.now()
    good = [r for r in rows if not r.errors]
    result.failures.extend(failure(OPENING_STOCK, r.row, r.errors) for r in rows if r.errors)
    for start in range(0, len(good), STOCK_BATCH):
        with transaction.atomic():
            for r in good[start:start + STOCK_BATCH]:
                try:
                    with transaction.atomic():
                        wrote = _write_stock_row(user, r, now)
                except DomainError as e:
                    errors = {_STOCK_FIELDS.get(k, ""): msgs for k, msgs in e.errors.items()} or {"": [e.message]}
                    result.failures.append(failure(OPENING_STOCK, r.row, errors))
                else:
                    if wrote:
                        result.created += 1
                    else:
                        result.unchanged += 1
    return finish(result, table)


# ---------------------------------------------------------------- export of the stock

EXPORT_HEADER = (_("仓库编码"), _("仓库名称"), _("仓库类型"), _("配件编码"), _("配件名称"), _("单位"), _("在库"),
                 _("已预留"), _("可用"), _("待返旧件"), _("补货点"), _("补货量"), _("低于补货点"), _("成本单价（元）"),
                 _("在库金额（元）"))


def export_rows(stocks: Iterable[Stock]) -> Iterator[list[Any]]:
    yes, no = gettext("是"), ""
    for s in stocks:
        w, p = s.warehouse, s.part
        available = s.on_hand - s.reserved
        below = s.reorder_point is not None and available <= s.reorder_point
        cost = p.unit_cost
        yield [w.code, w.name, str(w.get_kind_display()), p.code, p.display_name, p.uom, s.on_hand, s.reserved,
               available, s.defective, s.reorder_point, s.reorder_qty, yes if below else no, cost,
               cost * s.on_hand]


def export_xlsx(stocks: Iterable[Stock]) -> bytes:
    """The stock rows as .xlsx (write-only: the rows stream through, whatever their number)."""
    widths = {0: 14, 1: 20, 2: 10, 3: 16, 4: 28, 5: 6, 12: 10, 13: 14, 14: 14}
    return xlsx_bytes([(gettext("库存"), [str(h) for h in EXPORT_HEADER], export_rows(stocks))],
                      widths=widths, text_columns=(0, 3))


__all__ = ["CATALOG", "OPENING_STOCK", "KINDS", "ImportResult", "read", "stock_import", "template_xlsx",
           "export_xlsx", "split_list", "parse_bool", "parse_money", "parse_count"]
