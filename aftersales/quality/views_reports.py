"""The quality reports page (``/quality/reports/``, ``quality.view``): the reports within the
user's scope, newest period first, with their status — a row waiting or being built polls its
own status every two seconds (htmx) and shows its progress — and the form to ask for one. The
files are downloaded through a permission check (``/quality/reports/<id>.pdf`` / ``.xlsx``),
never from the media URL."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from django import forms
from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from aftersales.core.errors import ValidationFailed
from aftersales.core.pagination import keyset_page
from aftersales.org.roles import Perm
from aftersales.web.permissions import require_perm

from . import reports, selectors
from .models import ReportKind

PAGE = 50


class ReportForm(forms.Form):
    kind = forms.ChoiceField(label=_("报告类型"), choices=ReportKind.choices, initial=ReportKind.MONTHLY)
    period = forms.CharField(label=_("期间"), max_length=20,
                             help_text=_("月份如 2026-10；季报取该月所在季度（也可填 2026-Q3），年报取该年（也可填 2026）。"),
                             widget=forms.TextInput(attrs={"placeholder": "2026-10", "inputmode": "numeric"}))
    node = forms.IntegerField(label=_("单位"), required=False, min_value=1, max_value=2**63 - 1)
    rebuild = forms.BooleanField(label=_("已生成的报告重新生成"), required=False)

    def __init__(self, *args, nodes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["node"].widget = forms.Select(choices=[(n.pk, f"{'　' * (n.path.count('/') - 2)}{n.name}")
                                                           for n in nodes])


def _page(request, form, status=200):
    user = request.user
    error = None
    try:
        page = keyset_page(reports.reports_visible(user), ordering=reports.LIST_ORDERING,
                           cursor=request.GET.get("cursor") or None, limit=PAGE)
    except ValidationFailed as e:
        page, error = keyset_page(reports.reports_visible(user), ordering=reports.LIST_ORDERING, cursor=None,
                                  limit=PAGE), e.errors.get("cursor", [e.message])[0]
    return render(request, "quality/reports.html", {
        "form": form, "rows": [_row(r) for r in page.items], "next_cursor": page.next_cursor, "error": error,
    }, status=status)


def _row(r) -> dict:
    return {"r": r, "title": reports.report_title(r), "period": reports.period_label(r.kind, r.period_start),
            "busy": r.status in ("queued", "running")}


@require_http_methods(["GET", "POST"])
@require_perm(Perm.QUALITY_VIEW)
def report_list(request):
    nodes = list(selectors.visible_nodes(request.user).order_by("path"))
    if request.method == "POST":
        form = ReportForm(request.POST, nodes=nodes)
        if form.is_valid():
            c = form.cleaned_data
            try:
                out = reports.report_request(user=request.user, kind=c["kind"], period=c["period"],
                                             node_id=c["node"], rebuild=c["rebuild"])
            except ValidationFailed as e:
                for key, msgs in e.errors.items():
                    for m in msgs:
                        form.add_error(key if key in form.fields else None, str(m))
            else:
                title = reports.report_title(out.report)
                if out.queued:
                    messages.success(request, _("已提交，正在后台生成：%(title)s。") % {"title": title})
                else:
                    messages.info(request, _("该报告已存在：%(title)s（%(status)s）。如需按最新数据重新生成，请勾选“重新生成”。")
                                  % {"title": title, "status": out.report.get_status_display()})
                return redirect("quality:reports")
        return _page(request, form, status=400)
    last_month = timezone.localdate().replace(day=1) - dt.timedelta(days=1)
    return _page(request, ReportForm(nodes=nodes, initial={"period": f"{last_month:%Y-%m}",
                                                           "node": nodes[0].pk if nodes else None}))


@require_GET
@require_perm(Perm.QUALITY_VIEW)
def report_status(request, report_id: int):
    """One report's row: what a waiting or running row polls."""
    return render(request, "quality/reports_row.html", _row(reports.report_get(request.user, report_id)))


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download(user, report_id: int, fmt: str) -> FileResponse:
    """A built report file as an attachment (404: out of scope, not built yet, file gone).
    Shared with the API."""
    f, name = reports.report_file(user, report_id, fmt)
    try:
        handle = f.open("rb")
    except OSError:
        raise Http404 from None
    resp = FileResponse(handle, content_type="application/pdf" if fmt == "pdf" else XLSX)
    resp["Content-Disposition"] = f"attachment; filename=\"report.{fmt}\"; filename*=UTF-8''{quote(name)}"
    resp["Cache-Control"] = "private, no-store"
    resp["X-Content-Type-Options"] = "nosniff"
    return resp


@require_GET
@require_perm(Perm.QUALITY_VIEW)
def report_pdf(request, report_id: int):
    return download(request.user, report_id, "pdf")


@require_GET
@require_perm(Perm.QUALITY_VIEW)
def report_xlsx(request, report_id: int):
    return download(request.user, report_id, "xlsx")
