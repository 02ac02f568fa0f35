"""Importing customers and their units from a spreadsheet (R-Q-4).

``import_run`` reads the file (``tabular.read_table``: a file that is not a table is refused
before anything is written, and no job is recorded for it), records an ``ImportJob``, then
imports row by row through the customer services, which validate and audit every write:

- a row is one savepoint: its customer, address and unit are committed together or not at
  all; a rejected row leaves nothing behind and is reported with its row number, the column
  at fault and the reason;
- rows are committed in batches of ``BATCH_SIZE`` (one transaction, one savepoint per row),
  and the job's counts are updated in the same transaction, so the job always tells how far
  it got;
- a phone already registered to a customer the user may register units for → the row's
  unit is attached to that customer (within one file, the second row of a phone attaches
  to the customer the first one created); an existing customer is not otherwise changed,
  except that the row's address is added to it when it is new, to be the unit's address;
- a serial seen earlier in the same file is refused, whether or not the earlier row was
  imported (the file is ambiguous about that unit);
- an unexpected error (a bug, a lost connection) rolls back its row and stops the job
  (status ``failed``): the rows before it stay imported, it and the rows after it are in
  the error report, which can be corrected and uploaded again as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import DomainError, ErrorCollector, PermissionDenied, ValidationFailed
from aftersales.core.validators import mobile_error, normalize_mobile, normalize_serial
from aftersales.customers.models import Address, Customer, SalesChannel
from aftersales.customers.selectors import customer_queryset
from aftersales.customers.services import (
    AddressIn,
    address_add,
    check_unit_fields,
    customer_create,
    unit_register,
)
from aftersales.org.models import Node, NodeKind
from aftersales.org.roles import Perm
from aftersales.org.scope import principal
from aftersales.records.audit import audit_record, snapshot

from .models import ImportJob, ImportKind, ImportRowError, ImportStatus
from .tabular import COLUMNS, Row, Table, label, read_table, xlsx_bytes

logger = logging.getLogger(__name__)

# Rows per transaction: few enough that SQLite's single write lock is never held for long.
BATCH_SIZE = 50

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    ImportKind.CUSTOMERS_UNITS: ("name", "phone"),
    ImportKind.CUSTOMERS: ("name", "phone"),
    ImportKind.UNITS: ("phone", "serial", "model", "purchase_date"),
}
KIND_PERMS: dict[str, tuple[str, ...]] = {
    ImportKind.CUSTOMERS_UNITS: (Perm.CUSTOMER_EDIT, Perm.UNIT_EDIT),
    ImportKind.CUSTOMERS: (Perm.CUSTOMER_EDIT,),
    ImportKind.UNITS: (Perm.UNIT_EDIT,),
}
UNIT_KEYS = ("serial", "model", "purchase_date", "sales_channel", "invoice_no")
ADDRESS_KEYS = ("province", "city", "district", "street")
REPORT_COLUMNS = ("行号", "错误字段", "错误原因")
_JOB_FIELDS = ["id", "kind", "file_name", "file_size", "uploaded_by_id", "node_id", "status", "total_rows",
               "ok_rows", "error_rows", "customers_created", "units_created", "message"]

# The error keys of the customer services → the column at fault.
_FIELD_COLUMN = {
    "name": "name", "phone": "phone", "tags": "tags", "notes": "notes",
    "address": "street", "address.province": "province", "address.city": "city",
    "address.district": "district", "address.street": "street", "address_id": "street",
    "address.lat": "street", "address.lng": "street",
    "outlet_code": "outlet_code",
    "serial": "serial", "model": "model", "model_code": "model", "purchase_date": "purchase_date",
    "sales_channel": "sales_channel", "invoice_no": "invoice_no",
}

# Sales channels as people write them: the Chinese names, a few synonyms, and the codes.
_CHANNELS = {
    "门店": SalesChannel.STORE, "实体店": SalesChannel.STORE, "商场": SalesChannel.STORE,
    "电商": SalesChannel.ONLINE, "网购": SalesChannel.ONLINE, "线上": SalesChannel.ONLINE,
    "网店": SalesChannel.ONLINE,
    "经销商": SalesChannel.DEALER, "代理商": SalesChannel.DEALER,
    "工程渠道": SalesChannel.PROJECT, "工程": SalesChannel.PROJECT,
    **{v: v for v in SalesChannel.values},
}
_TAG_SEPARATORS = str.maketrans({c: ";" for c in "；,，、|/"})


@dataclass
class RowFailure:
    row: Row
    errors: list[tuple[str, str]]  # (column key, message)

    @property
    def fields(self) -> str:
        out: list[str] = []
        for key, _msg in self.errors:
            if label(key) not in out:
                out.append(label(key))
        return "、".join(out)

    @property
    def reason(self) -> str:
        return "；".join(f"{label(k)}：{m}" if k else m for k, m in self.errors)


@dataclass
class Outcome:
    customer_created: bool = False
    unit_created: bool = False


# ---------------------------------------------------------------- one row

class RowImporter:
    """Imports the rows of one file; keeps what must be known across rows and the lookups
    loaded once per file."""

    def __init__(self, *, user, kind: str, table: Table | None = None):
        self.user = user
        self.kind = kind
        self.serial_rows: dict[str, int] = {}  # serial → the row it first appeared in
        self._outlets: dict[str, int] | None = None
        # The file's phones that belong to a customer already (loaded at once; the rows add
        # the customers they create). A phone not in it needs no per-row lookup.
        self.known_phones: set[str] | None = None
        if table is not None and kind != ImportKind.CUSTOMERS:
            phones = {normalize_mobile(r.values.get("phone")) for r in table.rows}
            phones = sorted(p for p in phones if mobile_error(p) is None)
            self.known_phones = set()
            for i in range(0, len(phones), 500):
                self.known_phones.update(
                    Customer.objects.filter(phone__in=phones[i:i + 500]).values_list("phone", flat=True))

    def outlet_id(self, text: str) -> int | None:
        if self._outlets is None:
            self._outlets = {}
            for pk, code, name in Node.objects.filter(kind=NodeKind.OUTLET, active=True).values_list(
                    "pk", "code", "name"):
                self._outlets.setdefault(name, pk)
                self._outlets[code.upper()] = pk
        return self._outlets.get(text.upper()) or self._outlets.get(text)

    def _existing(self, phone: str) -> Customer | None:
        """The customer of ``phone`` the user may register units for, if any."""
        if mobile_error(phone) is not None:
            return None
        if self.known_phones is not None and phone not in self.known_phones:
            return None
        return customer_queryset(self.user, Perm.UNIT_EDIT).filter(phone=phone).first()

    # ---- the row

    def import_row(self, row: Row) -> Outcome:
        """Import one row; raises a ``DomainError`` naming everything wrong with it. The caller
        holds the row's savepoint: whatever was written before the error is rolled back."""
        v = row.values
        errs: list[tuple[str, str]] = []
        wants_unit = self.kind == ImportKind.UNITS or (
            self.kind == ImportKind.CUSTOMERS_UNITS and any(_present(v.get(k)) for k in UNIT_KEYS))
        phone = normalize_mobile(v.get("phone"))
        unit_args = self._unit_args(row, errs) if wants_unit else {}

        customer = self._existing(phone) if wants_unit else None
        created = False
        address_id = None
        if customer is not None:
            address_id = self._existing_customer_address(customer, v, errs)
        elif self.kind == ImportKind.UNITS:
            errs.append(("phone", str(mobile_error(phone) or _(
                "未找到手机号为 %(phone)s 的客户，或该客户不在您的管辖范围内；请先建立客户档案。") % {"phone": phone})))
        else:
            customer = self._create_customer(v, phone, errs)
            created = customer is not None
        if errs:
            if wants_unit:  # report the unit's faults too, all at once
                self._check_unit(unit_args, errs)
            raise RowRejected(errs)
        if not wants_unit:
            return Outcome(customer_created=created)
        if created:
            address_id = Address.objects.filter(customer=customer, is_default=True).values_list(
                "pk", flat=True).first()
        unit_register(user=self.user, customer_id=customer.pk, address_id=address_id, **unit_args)
        return Outcome(customer_created=created, unit_created=True)

    def _create_customer(self, v: dict, phone: str, errs: list[tuple[str, str]]) -> Customer | None:
        by_code = bool(v.get("outlet_code"))
        node_id = None
        if by_code:
            node_id = self.outlet_id(v["outlet_code"])
            if node_id is None:
                errs.append(("outlet_code", gettext("网点编码 %(code)s 不存在或已停用。") % {"code": v["outlet_code"]}))
        try:
            c = customer_create(user=self.user, name=v.get("name", ""), phone=phone, node_id=node_id,
                                address=_address(v), tags=_tags(v.get("tags", "")), notes=v.get("notes", ""))
        except ValidationFailed as e:
            for key, msgs in e.errors.items():
                if key == "node_id" and by_code and node_id is None:
                    continue  # already said: the code is unknown
                col = ("outlet_code" if by_code else "district") if key == "node_id" else key
                errs.extend((_FIELD_COLUMN.get(col, col), str(m)) for m in msgs)
            return None
        if self.known_phones is not None:
            self.known_phones.add(c.phone)
        return c

    def _unit_args(self, row: Row, errs: list[tuple[str, str]]) -> dict:
        """The unit's arguments for ``unit_register``; what only the file can tell (a serial
        repeated, a sales channel by its Chinese name) is checked here."""
        v = row.values
        serial = normalize_serial(v.get("serial"))
        channel_text = (v.get("sales_channel") or "").strip()
        channel = None
        if channel_text:
            channel = _CHANNELS.get(channel_text) or _CHANNELS.get(channel_text.lower())
            if channel is None:
                errs.append(("sales_channel", gettext("销售渠道“%(value)s”无效，可选：门店、电商、经销商、工程渠道。") % {
                    "value": channel_text}))
        first = self.serial_rows.get(serial) if serial else None
        if first is not None:
            errs.append(("serial", gettext("序列号 %(serial)s 与第 %(row)s 行重复。") % {"serial": serial, "row": first}))
        elif serial:
            self.serial_rows[serial] = row.number
        return {"serial": serial, "model_code": (v.get("model") or "").strip(),
                "purchase_date": v.get("purchase_date") or None, "sales_channel": channel,
                "invoice_no": v.get("invoice_no", "")}

    def _check_unit(self, args: dict, errs: list[tuple[str, str]]) -> None:
        """Add the unit's faults (the service's own rules) to a row already rejected."""
        collector = ErrorCollector()
        check_unit_fields(collector, serial=args["serial"], model_code=args["model_code"],
                          purchase_date=args["purchase_date"], sales_channel=args["sales_channel"],
                          invoice_no=args["invoice_no"])
        said = {k for k, _m in errs}
        for key, msgs in collector.errors.items():
            col = _FIELD_COLUMN.get(key, key)
            if col in said and col in ("serial", "sales_channel"):
                continue  # the file-level message (repeated serial, unknown channel name) says it better
            errs.extend((col, str(m)) for m in msgs)

    def _existing_customer_address(self, customer: Customer, v: dict, errs: list) -> int | None:
        """The address of the row's unit for an existing customer: the same address when the
        customer has it, else the row's address added to the customer; none when the row has none."""
        a = _address(v)
        if a is None:
            return None
        same = Address.objects.filter(customer=customer, province=a.province.strip(), city=a.city.strip(),
                                      district=a.district.strip(), street=a.street.strip())
        found = same.values_list("pk", flat=True).first()
        if found is not None:
            return found
        try:
            return address_add(user=self.user, customer_id=customer.pk, address=a).pk
        except ValidationFailed as e:
            for key, msgs in e.errors.items():
                errs.extend((_FIELD_COLUMN.get(key, key), str(m)) for m in msgs)
        return None


class RowRejected(ValidationFailed):
    """A row's errors, already tied to its columns."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.row_errors = errors
        grouped: dict[str, list] = {}
        for k, m in errors:
            grouped.setdefault(k, []).append(m)
        super().__init__(grouped)


def _present(v) -> bool:
    return v not in (None, "")


def _address(v: dict) -> AddressIn | None:
    if not any(_present(v.get(k)) for k in ADDRESS_KEYS):
        return None
    return AddressIn(**{k: v.get(k, "") or "" for k in ADDRESS_KEYS})


def _tags(text: str) -> list[str]:
    return [t.strip() for t in (text or "").translate(_TAG_SEPARATORS).split(";") if t.strip()]


def _row_errors(e: DomainError) -> list[tuple[str, str]]:
    if isinstance(e, RowRejected):
        return e.row_errors
    if e.errors:
        return [(_FIELD_COLUMN.get(k, k), str(m)) for k, msgs in e.errors.items() for m in msgs]
    # NotFound / PermissionDenied of a service: the customer the row names is out of reach.
    return [("phone", str(e.message))]


# ---------------------------------------------------------------- the job

def _scope_node_id(user) -> int | None:
    paths = principal(user).paths_for(Perm.IMPORT_RUN)
    if not paths or paths[0] == "/":
        return None
    return int(paths[0].strip("/").split("/")[-1])


def _check_rights(user, kind: str) -> None:
    p = principal(user)
    if not p.can(Perm.IMPORT_RUN) or not all(p.can(perm) for perm in KIND_PERMS[kind]):
        raise PermissionDenied()


def import_run(*, user, filename: str, content: bytes, kind: str = ImportKind.CUSTOMERS_UNITS,
               progress: Callable[[int, int], None] | None = None, batch_size: int = BATCH_SIZE) -> ImportJob:
    """Import a customers / units file; returns the finished job (see the module docstring)."""
    if kind not in ImportKind.values:
        raise ValidationFailed({"kind": [_("导入类型无效，可选：%(choices)s。") % {
            "choices": ", ".join(ImportKind.values)}]})
    _check_rights(user, kind)
    table = read_table(filename, content, required=REQUIRED_COLUMNS[kind])

    with transaction.atomic():
        job = ImportJob.objects.create(
            kind=kind, file_name=(filename or "upload")[-255:], file_size=len(content), uploaded_by=user,
            node_id=_scope_node_id(user), total_rows=len(table.rows), columns=table.headers)
        audit_record(actor=user, action="import.start", obj=job, before=None, after=snapshot(job, _JOB_FIELDS),
                     node_id=job.node_id)
    started = snapshot(job, _JOB_FIELDS)

    importer = RowImporter(user=user, kind=kind, table=table)
    failures: list[RowFailure] = []
    rows = table.rows
    done = 0
    stop_message = ""
    while done < len(rows) and not stop_message:
        batch = rows[done:done + batch_size]
        batch_failures: list[RowFailure] = []
        ok = customers = units = 0
        processed = 0
        try:
            with transaction.atomic():
                for row in batch:
                    try:
                        with transaction.atomic():
                            outcome = importer.import_row(row)
                    except DomainError as e:
                        batch_failures.append(RowFailure(row, _row_errors(e)))
                    except Exception:
                        logger.exception("import job %s: row %s failed unexpectedly", job.pk, row.number)
                        stop_message = gettext("第 %(row)s 行导入时发生系统错误，导入已中断；此前的行已导入，"
                                               "此行及之后的行未导入。") % {"row": row.number}
                        batch_failures.append(RowFailure(row, [("", gettext("系统错误，本行未导入。"))]))
                        processed += 1
                        break
                    else:
                        ok += 1
                        customers += outcome.customer_created
                        units += outcome.unit_created
                    processed += 1
                ImportRowError.objects.bulk_create([_row_error(job, f) for f in batch_failures])
                job.ok_rows += ok
                job.error_rows += len(batch_failures)
                job.customers_created += customers
                job.units_created += units
                job.save(update_fields=["ok_rows", "error_rows", "customers_created", "units_created"])
        except Exception:  # the batch could not be committed: none of its rows is imported
            logger.exception("import job %s: batch from row %s could not be committed", job.pk, batch[0].number)
            job.refresh_from_db(fields=["ok_rows", "error_rows", "customers_created", "units_created"])
            stop_message = gettext("写入数据库失败，导入已中断；第 %(row)s 行起的行未导入。") % {"row": batch[0].number}
            processed = 0
        else:
            failures.extend(batch_failures)
        done += processed
        if progress is not None:
            progress(done, len(rows))

    # Stopped: the rows not imported go into the report too, so that it can be uploaded again.
    rest = [RowFailure(r, [("", gettext("导入中断，本行未处理。"))]) for r in rows[done:]]
    failures.extend(rest)
    job.error_rows += len(rest)
    job.status = ImportStatus.FAILED if stop_message else ImportStatus.DONE
    job.message = stop_message
    job.finished_at = timezone.now()
    job.error_report = build_error_report(table, failures) if failures else None
    with transaction.atomic():
        ImportRowError.objects.bulk_create([_row_error(job, f) for f in rest], batch_size=1000)
        job.save()
        audit_record(actor=user, action="import.finish", obj=job, before=started, after=snapshot(job, _JOB_FIELDS),
                     node_id=job.node_id)
    return job


def _row_error(job: ImportJob, f: RowFailure) -> ImportRowError:
    return ImportRowError(job=job, row_number=f.row.number, field=f.fields[:200], message=f.reason, raw=f.row.cells)


# ---------------------------------------------------------------- files for the user

def _report_keep(headers: list[str]) -> list[int]:
    """Columns of the original file to repeat in a report (not those of an earlier report)."""
    return [i for i, h in enumerate(headers) if h not in REPORT_COLUMNS]


def build_error_report(table: Table, failures: list[RowFailure]) -> bytes:
    """The rejected rows as .xlsx: their original columns, then 行号 / 错误字段 / 错误原因.
    It is itself an importable file: correct the rows and upload it again."""
    keep = _report_keep(table.headers)
    header = [table.headers[i] for i in keep] + list(REPORT_COLUMNS)
    rows = ([f.row.cells[i] for i in keep] + [f.row.number, f.fields, f.reason]
            for f in sorted(failures, key=lambda f: f.row.number))
    n = len(keep)
    widths = {i: 16 for i in range(n)} | {n: 8, n + 1: 16, n + 2: 60}
    return xlsx_bytes([(gettext("错误报告"), header, rows)], widths=widths, text_columns=range(n))


def error_report_from_rows(job: ImportJob) -> bytes:
    """Rebuild a job's report from its stored rows (when ``error_report`` is missing)."""
    keep = _report_keep(job.columns)
    header = [job.columns[i] for i in keep] + list(REPORT_COLUMNS)
    rows = ([(e.raw[i] if i < len(e.raw) else "") for i in keep] + [e.row_number, e.field, e.message]
            for e in job.row_errors.order_by("row_number", "id").iterator(chunk_size=2000))
    return xlsx_bytes([(gettext("错误报告"), header, rows)], text_columns=range(len(keep)))


def error_report(job: ImportJob) -> bytes:
    if job.error_report:
        return bytes(job.error_report)
    return error_report_from_rows(job)


def template_xlsx() -> bytes:
    """The file to fill in: every column, one example row, and a sheet explaining them."""
    text_cols = [i for i, c in enumerate(COLUMNS) if c.key in ("phone", "serial", "invoice_no", "outlet_code")]
    required = {"name", "phone"}
    help_rows = [[c.label, "是" if c.key in required else "否", ", ".join(c.aliases[:1] + c.aliases[-2:]), c.help]
                 for c in COLUMNS]
    help_rows += [
        ["", "", "", ""],
        [gettext("说明"), "", "", gettext("第一行为列名，从第二行起每行一位客户（及其一台产品）；导入前请删除示例行。")],
        ["", "", "", gettext("手机号已登记的客户：产品登记到该客户名下。")],
        ["", "", "", gettext("也可另存为 CSV（UTF-8 或 GBK）导入；单个文件最多 50,000 行、20 MB。")],
    ]
    return xlsx_bytes(
        [(gettext("导入模板"), [c.label for c in COLUMNS], [[c.example for c in COLUMNS]]),
         (gettext("填写说明"), [gettext("列名"), gettext("必填"), gettext("也可写作"), gettext("说明")], help_rows)],
        widths={i: 14 for i in range(len(COLUMNS))}, text_columns=text_cols)


__all__ = ["import_run", "build_error_report", "error_report", "template_xlsx", "RowImporter"]
