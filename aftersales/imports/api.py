"""Import API, mounted at ``/api/imports/``: upload a file, read a job, download its report.

An upload is imported before the answer by default (201 with the finished job); with
``?background=true`` the file is only checked, the job queued (202) and imported in the
background: poll ``GET /api/imports/{id}`` until ``status`` is ``done`` or ``failed``.

Every operation needs ``import.run``; a job is visible to the user who ran it and to
administrators (anyone else gets 404). No ``from __future__ import annotations`` here (see
``aftersales.api.permissions``).
"""

import datetime as dt
from urllib.parse import quote

from django.http import HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from ninja import Field, File, Form, Query, Router, Schema, Status, UploadedFile

from aftersales.api.permissions import requires
from aftersales.core.errors import ValidationFailed
from aftersales.org.roles import Perm

from . import selectors, services, tasks
from .models import ImportKind
from .tabular import MAX_BYTES

router = Router(tags=["imports"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ERRORS_SHOWN = 200


class RowErrorOut(Schema):
    row_number: int = Field(description="表格中的行号（列名行为第 1 行）")
    field: str = Field(description="出错的列（中文列名，多个以“、”分隔）")
    message: str


class ImportJobOut(Schema):
    id: int
    kind: ImportKind
    file_name: str
    status: str = Field(description="queued 排队中 / running 导入中 / done 已完成 / failed 中断")
    status_label: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    total_rows: int
    processed_rows: int = Field(description="已处理的行数（进度）")
    ok_rows: int
    error_rows: int
    customers_created: int
    units_created: int
    message: str
    uploaded_by: str | None
    report_url: str | None = Field(description="错误报告（.xlsx）的下载地址；没有失败行时为空")
    errors: list[RowErrorOut] = Field(description=f"失败行（最多 {ERRORS_SHOWN} 条，完整列表见错误报告）")


def _report_url(request, job) -> str | None:
    if not job.has_report:
        return None
    try:
        return reverse("api:import_report", kwargs={"job_id": job.pk})
    except NoReverseMatch:  # mounted under another namespace (tests)
        base = request.path.split("/imports")[0]
        return f"{base}/imports/{job.pk}/report"


def _out(request, job, *, with_errors: bool = True) -> dict:
    errors = list(job.row_errors.order_by("row_number", "id")[:ERRORS_SHOWN]) if with_errors else []
    return {
        "id": job.pk, "kind": job.kind, "file_name": job.file_name, "status": job.status,
        "status_label": str(job.get_status_display()), "created_at": job.created_at, "finished_at": job.finished_at,
        "total_rows": job.total_rows, "processed_rows": job.processed_rows, "ok_rows": job.ok_rows, "error_rows": job.error_rows,
        "customers_created": job.customers_created, "units_created": job.units_created, "message": job.message,
        "uploaded_by": job.uploaded_by.get_username() if job.uploaded_by else None,
        "report_url": _report_url(request, job), "errors": errors,
    }


def _xlsx_response(content: bytes, filename: str) -> HttpResponse:
    resp = HttpResponse(content, content_type=XLSX)
    resp["Content-Disposition"] = f"attachment; filename=\"import.xlsx\"; filename*=UTF-8''{quote(filename)}"
    return resp


@router.post("", response={201: ImportJobOut, 202: ImportJobOut})
@requires(Perm.IMPORT_RUN)
def import_create(request, file: File[UploadedFile], kind: Form[ImportKind] = ImportKind.CUSTOMERS_UNITS,
                  background: Query[bool] = False):
    """Import customers and units from an .xlsx or CSV file (UTF-8 or GBK; first row = column names).
    Good rows are imported, bad rows are listed in ``errors`` and in the report at ``report_url``.

    With ``background=true`` the answer comes as soon as the file is checked: 202 with the queued
    job, imported in the background; poll ``GET /api/imports/{id}`` (``processed_rows`` of
    ``total_rows``) until ``status`` is ``done`` or ``failed``. A file that is not a table is
    refused at once either way."""
    if file.size and file.size > MAX_BYTES:
        raise ValidationFailed({"file": [_("文件过大，上限为 20 MB，请拆分后分批导入。")]})
    if background:
        job = services.import_queue(user=request.auth, filename=file.name or "upload", content=file.read(),
                                    kind=kind)
        tasks.dispatch(job.pk, language=translation.get_language())
        return Status(202, _out(request, job, with_errors=False))
    job = services.import_run(user=request.auth, filename=file.name or "upload", content=file.read(), kind=kind)
    return Status(201, _out(request, job))


@router.get("", response=list[ImportJobOut])
@requires(Perm.IMPORT_RUN)
def import_list(request):
    """Your latest import jobs (administrators: everyone's), newest first, without their errors."""
    return [_out(request, j, with_errors=False) for j in selectors.recent_jobs(request.auth, 50)]


@router.get("/template", response={200: None})
@requires(Perm.IMPORT_RUN)
def import_template(request):
    """The template to fill in (.xlsx)."""
    return _xlsx_response(services.template_xlsx(), "客户产品导入模板.xlsx")


@router.get("/{job_id}", response=ImportJobOut)
@requires(Perm.IMPORT_RUN)
def import_detail(request, job_id: int):
    return _out(request, selectors.job_get(request.auth, job_id))


@router.get("/{job_id}/report", response={200: None}, url_name="import_report")
@requires(Perm.IMPORT_RUN)
def import_report(request, job_id: int):
    """The rejected rows as .xlsx (original columns + 行号 / 错误字段 / 错误原因); 404 without any."""
    job = selectors.job_with_report(request.auth, job_id)
    return _xlsx_response(services.error_report(job), job.report_file_name)
