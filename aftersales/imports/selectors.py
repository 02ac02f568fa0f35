"""Reads of import jobs: a user sees their own jobs; administrators see every job."""

from __future__ import annotations

from django.db.models import QuerySet

from aftersales.core.errors import NotFound
from aftersales.org.roles import Role
from aftersales.org.scope import principal

from .models import ImportJob


def sees_all_jobs(user) -> bool:
    p = principal(user)
    return p.is_superuser or p.has_role(Role.ADMIN)


def job_queryset(user, *, with_report: bool = False) -> QuerySet[ImportJob]:
    if user is None or not user.is_authenticated:
        return ImportJob.objects.none()
    qs = ImportJob.objects.select_related("uploaded_by").defer("source")
    if not with_report:
        qs = qs.defer("error_report")
    return qs if sees_all_jobs(user) else qs.filter(uploaded_by=user)


def job_get(user, job_id: int) -> ImportJob:
    job = job_queryset(user).filter(pk=job_id).first()
    if job is None:
        raise NotFound()
    return job


def job_with_report(user, job_id: int) -> ImportJob:
    job = job_queryset(user, with_report=True).filter(pk=job_id).first()
    if job is None or not job.has_report:
        raise NotFound()
    return job


def recent_jobs(user, limit: int = 20) -> list[ImportJob]:
    return list(job_queryset(user).order_by("-id")[:limit])
