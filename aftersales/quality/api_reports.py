"""The quality reports API (``/api/quality/reports/``): list, request, status, downloads. Every
operation needs ``quality.view``; a report or node outside the caller's scope is 404. No
``from __future__ import annotations`` here (see aftersales.api.permissions)."""

import datetime as dt
from typing import Annotated

from ninja import Field, Query, Router, Schema, Status

from aftersales.api.permissions import requires
from aftersales.api.schemas import Cursor, Id, In, Limit, NodeRef, PathId, Text, page_of, paginate
from aftersales.org.roles import Perm

from . import reports
from .models import ReportKind, ReportStatus
from .views_reports import download

router = Router(tags=["quality"])


class ReportOut(Schema):
    id: int
    kind: str
    kind_label: str
    title: str = Field(description="如“华东服务中心 2026年10月 售后服务质量月报”")
    period_start: dt.date
    period_end: dt.date = Field(description="含当日")
    node: NodeRef
    status: str = Field(description="queued | running | done | failed")
    status_label: str
    progress: int = Field(description="生成进度（0–100）")
    error: str
    scheduled: bool
    requested_by: str | None
    created_at: dt.datetime
    built_at: dt.datetime | None
    pdf_url: str | None = Field(description="下载 PDF（生成完成后）")
    xlsx_url: str | None = Field(description="下载 Excel（生成完成后）")

    @staticmethod
    def resolve_kind_label(obj):
        return str(obj.get_kind_display())

    @staticmethod
    def resolve_title(obj):
        return reports.report_title(obj)

    @staticmethod
    def resolve_status_label(obj):
        return str(obj.get_status_display())

    @staticmethod
    def resolve_requested_by(obj):
        return obj.requested_by.get_username() if obj.requested_by_id else None

    @staticmethod
    def resolve_pdf_url(obj):
        return f"/api/quality/reports/{obj.pk}/report.pdf" if obj.status == "done" else None

    @staticmethod
    def resolve_xlsx_url(obj):
        return f"/api/quality/reports/{obj.pk}/report.xlsx" if obj.status == "done" else None


ReportPage = page_of(ReportOut)


class ReportIn(In):
    kind: Text(10) = Field(description="monthly（月报）| quarterly（季报）| annual（年报）")
    period: Text(20) = Field(description="月报 2026-10；季报 2026-Q3 或季内任一月份 2026-07；年报 2026")
    node_id: Id | None = Field(None, description="单位，默认为本人质量查看范围的最上级单位")
    rebuild: bool = Field(False, description="已生成的报告按最新数据重新生成")


@router.get("/", response=ReportPage)
@requires(Perm.QUALITY_VIEW)
def report_list(request, limit: Limit, cursor: Cursor,
                kind: Annotated[ReportKind | None, Query(None)] = None,
                status: Annotated[ReportStatus | None, Query(None)] = None,
                node_id: Annotated[int | None, Query(None, ge=1, le=2**63 - 1, description="只看该单位的报告")] = None):
    """The reports of the nodes within the caller's scope, newest period first."""
    qs = reports.reports_visible(request.auth)
    if kind:
        qs = qs.filter(kind=kind)
    if status:
        qs = qs.filter(status=status)
    if node_id:
        qs = qs.filter(node_id=node_id)
    return paginate(qs, ordering=reports.LIST_ORDERING, cursor=cursor, limit=limit)


@router.post("/", response={200: ReportOut, 202: ReportOut})
@requires(Perm.QUALITY_VIEW)
def report_request(request, payload: ReportIn):
    """Ask for a report of a past or the current period: 202 when it is queued for building (in
    the background; follow ``progress`` with GET), 200 with the report there is when the same
    report is already built, queued or running (``rebuild`` builds a built one anew). 400 naming
    ``kind`` / ``period``; 404 for a node outside the caller's scope."""
    out = reports.report_request(user=request.auth, **payload.model_dump())
    return Status(202 if out.queued else 200, reports.report_get(request.auth, out.report.pk))


@router.get("/{report_id}", response=ReportOut)
@requires(Perm.QUALITY_VIEW)
def report_get(request, report_id: PathId):
    """A report with its status and progress."""
    return reports.report_get(request.auth, report_id)


@router.get("/{report_id}/report.pdf")
@requires(Perm.QUALITY_VIEW)
def report_pdf(request, report_id: PathId):
    """The report as a PDF (404 until it is built)."""
    return download(request.auth, report_id, "pdf")


@router.get("/{report_id}/report.xlsx")
@requires(Perm.QUALITY_VIEW)
def report_xlsx(request, report_id: PathId):
    """The report as an Excel workbook (404 until it is built)."""
    return download(request.auth, report_id, "xlsx")
