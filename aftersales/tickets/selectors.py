"""Reads of work orders, scoped once: ``order.view`` over the order's node, or the order is
the user's own (owner, technician, or the customer's)."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet
from django.utils import timezone

from aftersales.core.errors import NotFound
from aftersales.org.roles import Perm
from aftersales.org.scope import principal, scope_filter

from .models import OrderEvent, Status, WorkOrder
from .workflow import ASSIGNED


def order_queryset(user) -> QuerySet[WorkOrder]:
    if user is None or not user.is_authenticated:
        return WorkOrder.objects.none()
    f = scope_filter(user, Perm.ORDER_VIEW)
    qs = WorkOrder.objects.all()
    if f is None:
        return qs
    own = Q(owner_id=user.pk) | Q(assignee__user_id=user.pk)
    cid = principal(user).customer_id
    if cid is not None:
        own |= Q(customer_id=cid)
    return qs.filter(f | own)


def list_qs(qs: QuerySet[WorkOrder]) -> QuerySet[WorkOrder]:
    """What a list row shows, in a fixed number of queries."""
    return qs.select_related("customer", "unit__model__category", "node", "assignee", "owner", "fault_category")


def order_get(user, order_id: int) -> WorkOrder:
    o = list_qs(order_queryset(user)).select_related("address", "fault_code", "parent").filter(pk=order_id).first()
    if o is None:
        raise NotFound()
    return o


def order_by_number(user, number: str) -> WorkOrder:
    o = order_queryset(user).filter(number=number.strip().upper()).values_list("pk", flat=True).first()
    if o is None:
        raise NotFound()
    return order_get(user, o)


def order_filter(qs: QuerySet[WorkOrder], *, status: str | None = None, node_id: int | None = None,
                 node_path: str | None = None, sla_state: str | None = None, type: str | None = None,
                 date_from: dt.date | None = None, date_to: dt.date | None = None, open_only: bool = False,
                 owner_id: int | None = None, assignee_id: int | None = None, customer_id: int | None = None,
                 q: str | None = None) -> QuerySet[WorkOrder]:
    """The list filters (each served by an index of ``WorkOrder.Meta``)."""
    if status:
        qs = qs.filter(status=status)
    if open_only:
        qs = qs.exclude(status__in=[Status.CLOSED, Status.CANCELLED])
    if node_path:
        qs = qs.filter(node__path__startswith=node_path)
    elif node_id:
        qs = qs.filter(node_id=node_id)
    if sla_state:
        qs = qs.filter(sla_state=sla_state)
    if type:
        qs = qs.filter(type=type)
    tz = timezone.get_current_timezone()
    if date_from:
        qs = qs.filter(created_at__gte=dt.datetime.combine(date_from, dt.time(0), tz))
    if date_to:
        qs = qs.filter(created_at__lt=dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(0), tz))
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    if assignee_id:
        qs = qs.filter(assignee_id=assignee_id)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if q:
        q = q.strip()
        if q.upper().startswith("GD"):
            qs = qs.filter(number__startswith=q.upper())
        elif q.isdigit() and len(q) == 11:
            qs = qs.filter(customer__phone=q)
        else:
            qs = qs.filter(customer__name__startswith=q)
    return qs


ORDERING = ["-created_at", "-id"]


def technician_jobs(user, day: dt.date | None = None) -> QuerySet[WorkOrder]:
    """The technician's jobs for ``day`` (today): those booked that day and those still in hand,
    in the order of their appointments."""
    day = day or timezone.localdate()
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(day, dt.time(0), tz)
    end = start + dt.timedelta(days=1)
    qs = WorkOrder.objects.filter(assignee__user_id=user.pk).filter(
        Q(status__in=ASSIGNED) | Q(appointment_from__gte=start, appointment_from__lt=end)
    )
    return list_qs(qs).select_related("address").order_by("appointment_from", "id")


def timeline(order: WorkOrder) -> QuerySet[OrderEvent]:
    return OrderEvent.objects.filter(order=order).select_related("actor").order_by("seq")
