"""Importing customers and their units from a spreadsheet (R-Q-4).

The file is read first (``tabular.read_table``): a file that is not a table is refused before
anything is written, and no job is recorded for it. Then an ``ImportJob`` is recorded and the
rows are registered in batches of ``BATCH_SIZE`` through ``customers_register_bulk``, which
applies the rules, scoping and audit of the single customer services to a whole batch at once:

- a row is registered completely (customer + address + unit) or not at all; a rejected row is
  reported with its row number, the column at fault and the reason;
- a batch is one transaction, and the job's counts are updated in it, so the job always
  tells how far it got (``processed_rows`` is the progress shown while it runs);
- a phone already registered to a customer the user may register units for → the row's
  unit is attached to that customer (within one file, a later row of a phone attaches to the
  customer the first one created); an existing customer is not otherwise changed, except
  that the row's address is added to it when it is new, to be the unit's address;
- a serial seen earlier in the same file is refused, whether or not the earlier row was
  imported (the file is ambiguous about that unit);
- an unexpected error (a bug, a lost connection) in a batch rolls the batch back, which is
  then retried row by row: the row that fails again stops the job (status ``failed``); the
  rows before it stay imported, it and the rows after it are in the error report, which can
  be corrected and uploaded again as it is.

``import_run`` does all of it at once (the command line, the API by default). The upload page
(and the API with ``?background=true``) calls ``import_queue``, which checks the file and
records the job with the file's bytes; ``tasks.import_process`` then runs ``import_execute``
in the background, and the page polls the job's progress.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import DomainError, PermissionDenied, ValidationFailed
from aftersales.core.validators import normalize_serial
from aftersales.customers.models import SalesChannel
from aftersales.customers.services import (
    AddressIn,
    RegisterRow,
    RowResult,
    UnitIn,
    customers_register_bulk,
    repeated_serial_message,
)
from aftersales.org.roles import Perm
from aftersales.org.scope import principal
from aftersales.records.audit import audit_record, snapshot

from .models import ImportJob, ImportKind, ImportRowError, ImportStatus
from .tabular import COLUMNS, Row, Table, label, read_table, xlsx_bytes

logger = logging.getLogger(__name__)

# Rows per batch (one transaction, one call of customers_register_bulk): large enough that the
# look-ups and writes of a batch cost little per row (a batch is about 20 statements on
# PostgreSQL, 50 on SQLite, whose INSERTs Django splits at 999 parameters), small enough that
# SQLite's single write lock is never held for long (well under a second).
BATCH_SIZE = 500

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
               "processed_rows", "ok_rows", "error_rows", "customers_created", "units_created", "message"]
_COUNTS = ["processed_rows", "ok_rows", "error_rows", "customers_created", "units_created", "heartbeat_at"]
STALE_AFTER = dt.timedelta(minutes=10)

# The error keys of the customer services → the column at fault.
_FIELD_COLUMN = {
    "name": "name", "phone": "phone", "tags": "tags", "notes": "notes",
    "address": "street", "address.province": "province", "address.city": "city",
    "address.district": "district", "address.street": "street", "address_id": "street",
    "address.lat": "street", "address.lng": "street",
    "node_id": "district", "outlet_code": "outlet_code",
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


# ---------------------------------------------------------------- rows → registrations

def _present(v) -> bool:
    return v not in (None, "")


def _address(v: dict) -> AddressIn | None:
    if not any(_present(v.get(k)) for k in ADDRESS_KEYS):
        return None
    return AddressIn(**{k: v.get(k, "") or "" for k in ADDRESS_KEYS})


def _tags(text: str) -> list[str]:
    return [t.strip() for t in (text or "").translate(_TAG_SEPARATORS).split(";") if t.strip()]


def registrations(kind: str, rows: list[Row]) -> list[RegisterRow]:
    """The file's rows as ``customers_register_bulk`` takes them. What only the file can tell is
    found here and passed as the row's own errors: a serial repeated anywhere earlier in the
    file, a sales channel named in a way no channel is."""
    first_row: dict[str, int] = {}  # serial → the row it first appeared in
    out = []
    for row in rows:
        v = row.values
        wants_unit = kind == ImportKind.UNITS or (
            kind == ImportKind.CUSTOMERS_UNITS and any(_present(v.get(k)) for k in UNIT_KEYS))
        errors: dict[str, list] = {}
        unit = None
        if wants_unit:
            serial = normalize_serial(v.get("serial"))
            channel_text = (v.get("sales_channel") or "").strip()
            channel = None
            if channel_text:
                channel = _CHANNELS.get(channel_text) or _CHANNELS.get(channel_text.lower())
                if channel is None:
                    errors["sales_channel"] = [gettext("销售渠道“%(value)s”无效，可选：门店、电商、经销商、工程渠道。") % {
                        "value": channel_text}]
            if serial in first_row:
                errors["serial"] = [repeated_serial_message(serial, first_row[serial])]
            elif serial:
                first_row[serial] = row.number
            unit = UnitIn(serial=serial, model_code=(v.get("model") or "").strip(),
                          purchase_date=v.get("purchase_date") or None, sales_channel=channel,
                          invoice_no=v.get("invoice_no", ""))
        out.append(RegisterRow(
            phone=v.get("phone", ""), name=v.get("name", ""), outlet_code=v.get("outlet_code", "") or "",
            address=_address(v), tags=_tags(v.get("tags", "")), notes=v.get("notes", ""), unit=unit,
            create_customer=kind != ImportKind.UNITS, label=row.number, errors=errors))
    return out


def _failure(row: Row, result: RowResult) -> RowFailure:
    return RowFailure(row, [(_FIELD_COLUMN.get(k, k), str(m)) for k, msgs in result.errors.items() for m in msgs])


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


def _read(user, filename: str, content: bytes, kind: str) -> Table:
    if kind not in ImportKind.values:
        raise ValidationFailed({"kind": [_("导入类型无效，可选：%(choices)s。") % {
            "choices": ", ".join(ImportKind.values)}]})
    _check_rights(user, kind)
    return read_table(filename, content, required=REQUIRED_COLUMNS[kind])


def _record_job(user, filename: str, content: bytes, kind: str, table: Table, *, status: str,
                source: bytes | None) -> ImportJob:
    with transaction.atomic():
        job = ImportJob.objects.create(
            kind=kind, file_name=(filename or "upload")[-255:], file_size=len(content), uploaded_by=user,
            node_id=_scope_node_id(user), total_rows=len(table.rows), columns=table.headers, status=status,
            source=source)
        audit_record(actor=user, action="import.start", obj=job, before=None, after=snapshot(job, _JOB_FIELDS),
                     node_id=job.node_id)
    return job


def import_run(*, user, filename: str, content: bytes, kind: str = ImportKind.CUSTOMERS_UNITS,
               progress: Callable[[int, int], None] | None = None, batch_size: int = BATCH_SIZE) -> ImportJob:
    """Import a customers / units file now; returns the finished job (see the module docstring)."""
    table = _read(user, filename, content, kind)
    job = _record_job(user, filename, content, kind, table, status=ImportStatus.RUNNING, source=None)
    started = snapshot(job, _JOB_FIELDS)
    return _import(job, user, table, started, progress=progress, batch_size=batch_size)


def import_queue(*, user, filename: str, content: bytes, kind: str = ImportKind.CUSTOMERS_UNITS) -> ImportJob:
    """Check the file as ``import_run`` does (a refused file records nothing) and record a
    queued job holding it, for ``import_execute`` to run in the background."""
    table = _read(user, filename, content, kind)
    return _record_job(user, filename, content, kind, table, status=ImportStatus.QUEUED, source=content)


def import_execute(job_id: int, *, progress: Callable[[int, int], None] | None = None,
                   batch_size: int = BATCH_SIZE) -> ImportJob | None:
    """Run a queued job (the background task). A job already taken (the task delivered twice)
    is left alone: returns None."""
    job = ImportJob.objects.select_related("uploaded_by").filter(pk=job_id, status=ImportStatus.QUEUED).first()
    if job is None or not ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
            status=ImportStatus.RUNNING, heartbeat_at=timezone.now()):
        logger.warning("import job %s is not queued (any more): not run again", job_id)
        return None
    started = snapshot(job, _JOB_FIELDS)
    job.status = ImportStatus.RUNNING
    user = job.uploaded_by
    try:
        if user is None or not user.is_active:
            raise PermissionDenied()
        table = _read(user, job.file_name, bytes(job.source or b""), job.kind)
    except DomainError as e:  # the user lost the right meanwhile; a file that changed meaning
        msgs = [str(m) for ms in e.errors.values() for m in ms] or [str(e.message)]
        return _finish(job, user, started, None, [], message=gettext("导入未执行：%(reason)s") % {
            "reason": "；".join(msgs)})
    except Exception:
        logger.exception("import job %s: its file could not be read again", job_id)
        return _finish(job, user, started, None, [], message=gettext("导入时发生系统错误，导入未执行。"))
    try:
        return _import(job, user, table, started, progress=progress, batch_size=batch_size)
    except Exception:
        logger.exception("import job %s stopped unexpectedly", job_id)
        ImportJob.objects.filter(pk=job_id, status=ImportStatus.RUNNING).update(
            status=ImportStatus.FAILED, finished_at=timezone.now(), source=None,
            message=gettext("导入时发生系统错误，导入已中断；已处理的行已导入。"))
        return ImportJob.objects.filter(pk=job_id).first()


_gc_lock = threading.Lock()
_gc_pauses = 0  # batches registering now, in any thread
_gc_was_enabled = True


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is registered. A batch allocates some hundred
    thousand short-lived objects (model instances, SQL parameters, audit entries), nearly all
    freed by reference counting, yet the collections they trigger walk the whole heap — the
    file's rows included — and took about a fifth of the import's time. Collection resumes
    after the batch (after the last one, when batches of several imports overlap)."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def _register_row_by_row(user, batch: list[RegisterRow]) -> tuple[list[RowResult], int | None]:
    """A batch that failed unexpectedly, again one row at a time (a savepoint each): the results
    up to the row that fails again, and that row's index (None when none does)."""
    results = []
    for i, r in enumerate(batch):
        try:
            with transaction.atomic():
                results.extend(customers_register_bulk(user=user, rows=[r]))
        except Exception:
            logger.exception("import: row %s failed unexpectedly", r.label)
            return results, i
    return results, None


def _import(job: ImportJob, user, table: Table, started: dict, *, progress, batch_size: int) -> ImportJob:
    rows = table.rows
    regs = registrations(job.kind, rows)
    failures: list[RowFailure] = []
    done = 0
    stop_message = ""
    while done < len(rows) and not stop_message:
        batch = rows[done:done + batch_size]
        batch_regs = regs[done:done + batch_size]
        batch_failures: list[RowFailure] = []
        processed = len(batch)
        try:
            with _gc_paused(), transaction.atomic():
                try:
                    results = customers_register_bulk(user=user, rows=batch_regs)
                except Exception:
                    logger.exception("import job %s: batch from row %s failed; retrying it row by row",
                                     job.pk, batch[0].number)
                    results, crashed = _register_row_by_row(user, batch_regs)
                    if crashed is not None:
                        row = batch[crashed]
                        stop_message = gettext("第 %(row)s 行导入时发生系统错误，导入已中断；此前的行已导入，"
                                               "此行及之后的行未导入。") % {"row": row.number}
                        batch_failures.append(RowFailure(row, [("", gettext("系统错误，本行未导入。"))]))
                        processed = crashed + 1
                for row, result in zip(batch, results, strict=False):
                    if not result.ok:
                        batch_failures.append(_failure(row, result))
                batch_failures.sort(key=lambda f: f.row.number)
                ImportRowError.objects.bulk_create([_row_error(job, f) for f in batch_failures])
                job.processed_rows += processed
                job.ok_rows += sum(r.ok for r in results)
                job.error_rows += len(batch_failures)
                job.customers_created += sum(r.ok and r.customer_created for r in results)
                job.units_created += sum(r.ok and r.unit_id is not None for r in results)
                job.heartbeat_at = timezone.now()
                job.save(update_fields=_COUNTS)
        except Exception:  # the batch could not be committed: none of its rows is imported
            logger.exception("import job %s: batch from row %s could not be committed", job.pk, batch[0].number)
            job.refresh_from_db(fields=_COUNTS)
            stop_message = gettext("写入数据库失败，导入已中断；第 %(row)s 行起的行未导入。") % {"row": batch[0].number}
            processed = 0
        else:
            failures.extend(batch_failures)
        done += processed
        if progress is not None:
            progress(done, len(rows))
    return _finish(job, user, started, table, failures, rest=rows[done:], message=stop_message)


def _finish(job: ImportJob, user, started: dict, table: Table | None, failures: list[RowFailure], *,
            rest: list[Row] = (), message: str = "") -> ImportJob:
    """Close the job: the rows not processed go into the report too, so that it can be
    uploaded again; the file's bytes are dropped."""
    rest_failures = [RowFailure(r, [("", gettext("导入中断，本行未处理。"))]) for r in rest]
    failures = failures + rest_failures
    job.error_rows += len(rest_failures)
    job.status = ImportStatus.FAILED if message else ImportStatus.DONE
    job.message = message
    job.finished_at = timezone.now()
    job.source = None
    job.error_report = build_error_report(table, failures) if failures and table is not None else None
    with transaction.atomic():
        ImportRowError.objects.bulk_create([_row_error(job, f) for f in rest_failures], batch_size=1000)
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


__all__ = ["import_run", "import_queue", "import_execute", "registrations", "build_error_report",
           "error_report", "template_xlsx"]


def import_sweep_stale(*, now: dt.datetime | None = None) -> int:
    """Mark as failed the jobs that stopped showing progress (their process died: a restarted
    server, a lost worker), so that nobody waits on them for ever. Periodic."""
    cutoff = (now or timezone.now()) - STALE_AFTER
    stale = list(ImportJob.objects.filter(status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING],
                                          heartbeat_at__lt=cutoff))
    for job in stale:
        with transaction.atomic():
            if not ImportJob.objects.filter(pk=job.pk, status=job.status, heartbeat_at__lt=cutoff).update(
                    status=ImportStatus.FAILED, finished_at=timezone.now(), source=None,
                    message=gettext("导入任务已中断（处理进程停止），已处理的行已导入；请上传剩余的行。")):
                continue
            audit_record(actor=None, action="import.stale", obj=job, before={"status": job.status},
                         after={"status": ImportStatus.FAILED}, node_id=job.node_id)
    return len(stale)
