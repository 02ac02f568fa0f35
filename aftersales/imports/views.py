"""The import page: upload a file, follow its progress, see the result, download the error report
and the template. The upload only checks the file and queues the job (``tasks.dispatch``); the
job's card polls ``job_status`` every second while the job runs."""

from __future__ import annotations

from urllib.parse import quote

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.views.decorators.http import require_GET, require_http_methods

from aftersales.core.errors import ValidationFailed
from aftersales.org.roles import Perm
from aftersales.web.permissions import require_perm

from . import selectors, services, tasks
from .forms import ImportUploadForm

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ERRORS_SHOWN = 50


def _xlsx(content: bytes, filename: str) -> HttpResponse:
    resp = HttpResponse(content, content_type=XLSX)
    resp["Content-Disposition"] = f"attachment; filename=\"import.xlsx\"; filename*=UTF-8''{quote(filename)}"
    return resp


def _job_context(job) -> dict:
    shown = job is not None and not job.in_progress
    return {
        "job": job,
        "job_errors": list(job.row_errors.order_by("row_number", "id")[:ERRORS_SHOWN]) if shown else [],
        "errors_shown": ERRORS_SHOWN,
    }


def _page(request, form: ImportUploadForm, job=None, status: int = 200):
    ctx = {
        "form": form,
        **_job_context(job),
        "jobs": selectors.recent_jobs(request.user),
        "sees_all": selectors.sees_all_jobs(request.user),
    }
    return render(request, "imports/upload.html", ctx, status=status)


@require_http_methods(["GET", "POST"])
@require_perm(Perm.IMPORT_RUN)
def upload(request):
    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            f = form.cleaned_data["file"]
            try:
                job = services.import_queue(user=request.user, filename=f.name, content=f.read(),
                                            kind=form.cleaned_data["kind"])
            except ValidationFailed as e:
                for key, msgs in e.errors.items():
                    for m in msgs:
                        form.add_error(key if key in form.fields else None, str(m))
            else:
                tasks.dispatch(job.pk, language=translation.get_language())
                return redirect("imports:job", job_id=job.pk)
        return _page(request, form, status=400)
    return _page(request, ImportUploadForm())


@require_GET
@require_perm(Perm.IMPORT_RUN)
def job(request, job_id: int):
    j = selectors.job_get(request.user, job_id)
    return _page(request, ImportUploadForm(initial={"kind": j.kind}), j)


@require_GET
@require_perm(Perm.IMPORT_RUN)
def job_status(request, job_id: int):
    """The job's card alone: what the page polls while the job runs."""
    return render(request, "imports/_job.html", _job_context(selectors.job_get(request.user, job_id)))


@require_GET
@require_perm(Perm.IMPORT_RUN)
def report(request, job_id: int):
    j = selectors.job_with_report(request.user, job_id)
    return _xlsx(services.error_report(j), j.report_file_name)


@require_GET
@require_perm(Perm.IMPORT_RUN)
def template(request):
    return _xlsx(services.template_xlsx(), "客户产品导入模板.xlsx")
