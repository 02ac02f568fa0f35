"""Reads of the organisation, scoped once."""

from __future__ import annotations

import datetime as dt

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from aftersales.core.errors import NotFound

from .models import Certification, Employee, Node
from .roles import Perm
from .scope import principal, scoped


def node_queryset(user, perm: str = Perm.ORG_VIEW) -> QuerySet[Node]:
    ids = principal(user).node_ids_for(perm)
    qs = Node.objects.all()
    if ids is None:
        return qs
    return qs.filter(pk__in=sorted(ids))


def node_get(user, node_id: int) -> Node:
    n = node_queryset(user).select_related("parent").prefetch_related("coverage").filter(pk=node_id).first()
    if n is None:
        raise NotFound()
    return n


def employee_queryset(user, perm: str = Perm.STAFF_VIEW) -> QuerySet[Employee]:
    return scoped(Employee.objects.all(), user, perm)


def employee_list_qs(user) -> QuerySet[Employee]:
    return employee_queryset(user).select_related("node", "department", "user").prefetch_related(
        "skills", Prefetch("certifications", queryset=Certification.objects.select_related("type").order_by("expires_on"))
    )


def employee_get(user, employee_id: int) -> Employee:
    e = employee_list_qs(user).filter(pk=employee_id).first()
    if e is None:
        raise NotFound()
    return e


def certifications_expiring(user, *, within_days: int = 30, on: dt.date | None = None) -> QuerySet[Certification]:
    """Certificates that expire within ``within_days`` (and those already expired of active staff)."""
    today = on or timezone.localdate()
    return (
        Certification.objects.filter(employee__in=employee_queryset(user).filter(active=True).values("pk"))
        .filter(Q(expires_on__lte=today + dt.timedelta(days=within_days)))
        .select_related("employee__node", "type")
        .order_by("expires_on", "id")
    )
