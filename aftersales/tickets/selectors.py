"""Reads of work orders, scoped once: ``order.view`` over the order's node, or the order is
the user's own (owner, technician, or the customer's)."""

from __future__ import annotations

import datetime as dt
import re

from django.db.models import Q, QuerySet
from django.utils import timezone

from aftersales.core.errors import NotFound
from aftersales.customers.models import Customer
from aftersales.customers.selectors import customer_match
from aftersales.org.models import Node
from aftersales.org.roles import Perm
from aftersales.org.scope import principal, scope_filter

from .models import OrderEvent, OrderPhoto, Status, WorkOrder
from .workflow import ASSIGNED, MOVES, is_customer_of

ORDERING = ["-created_at", "-id"]
NUMBER_LEN = 16  # GD + YYYYMMDD + six digits


def order_queryset(user) -> QuerySet[WorkOrder]:
    """The orders ``user`` may see."""
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
    """One order with everything its page shows (404 out of scope)."""
    o = (list_qs(order_queryset(user))
         .select_related("address", "fault_code", "parent")
         .filter(pk=order_id).first())
    if o is None:
        raise NotFound()
    return o


def order_by_number(user, number: str) -> WorkOrder:
    o = order_queryset(user).filter(number=(number or "").strip().upper()).values_list("pk", flat=True).first()
    if o is None:
        raise NotFound()
    return order_get(user, o)


def _day_start(d: dt.date) -> dt.datetime:
    return dt.datetime.combine(d, dt.time(0), timezone.get_current_timezone())


def order_filter(qs: QuerySet[WorkOrder], *, status: str | None = None, node_id: int | None = None,
                 node_path: str | None = None, sla_state: str | None = None, type: str | None = None,
                 date_from: dt.date | None = None, date_to: dt.date | None = None, open_only: bool = False,
                 owner_id: int | None = None, assignee_id: int | None = None, customer_id: int | None = None,
                 q: str | None = None) -> QuerySet[WorkOrder]:
    """The list filters (each served by an index of ``WorkOrder.Meta``). ``node_path`` is a
    subtree; ``q`` an order number (GD…, or its beginning), a phone (whole, or its first
    digits) or the beginning of the customer's name."""
    if status:
        qs = qs.filter(status=status)
    if open_only:
        qs = qs.exclude(status__in=[Status.CLOSED, Status.CANCELLED])
    if node_path:
        qs = qs.filter(node_id__in=Node.objects.filter(path__startswith=node_path).values("pk"))
    elif node_id:
        qs = qs.filter(node_id=node_id)
    if sla_state:
        qs = qs.filter(sla_state=sla_state)
    if type:
        qs = qs.filter(type=type)
    if date_from:
        qs = qs.filter(created_at__gte=_day_start(date_from))
    if date_to:
        qs = qs.filter(created_at__lt=_day_start(date_to + dt.timedelta(days=1)))
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    if assignee_id:
        qs = qs.filter(assignee_id=assignee_id)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    q = (q or "").strip()
    if q:
        number = q.upper()
        if re.fullmatch(r"GD\d{0,14}", number):
            # every number is GD + 14 digits: a prefix is a range of the unique index, in any collation
            qs = qs.filter(number__gte=number.ljust(NUMBER_LEN, "0"), number__lte=number.ljust(NUMBER_LEN, "9"))
        elif number.startswith("GD"):
            qs = qs.none()
        else:
            matches, _ordering = customer_match(Customer.objects.all(), q)
            qs = qs.filter(customer_id__in=matches.values("pk"))
    return qs


def technician_jobs(user, day: dt.date | None = None) -> QuerySet[WorkOrder]:
    """The technician's jobs for ``day`` (today): those booked that day and those still in hand,
    in the order of their appointments."""
    day = day or timezone.localdate()
    start = _day_start(day)
    end = start + dt.timedelta(days=1)
    qs = WorkOrder.objects.filter(assignee__user_id=user.pk).filter(
        Q(status__in=ASSIGNED) | Q(appointment_from__gte=start, appointment_from__lt=end)
    )
    return list_qs(qs).select_related("address").order_by("appointment_from", "id")


# What the customer sees of their order's history: the steps, not the staff's notes (nor
# escalations, breaches, or the events other apps add).
CUSTOMER_SHOWN = frozenset({"create", "confirm"} | (set(MOVES) - {"escalate"}))


def timeline(order: WorkOrder, user=None) -> QuerySet[OrderEvent]:
    """The order's history, oldest first. For the order's customer: its steps only, without
    internal notes, escalations or SLA breaches (the notes of the steps are blanked too)."""
    qs = OrderEvent.objects.filter(order=order).select_related("actor").order_by("seq")
    if user is not None and is_customer_of(user, order):
        qs = qs.filter(action__in=sorted(CUSTOMER_SHOWN))
    return qs


def shown_note(event: OrderEvent, *, for_customer: bool) -> str:
    """An event's note as a reader sees it: the customer sees their own words (the problem
    they reported, a cancellation's reason) and nothing the staff wrote for each other."""
    if not for_customer or event.action in ("create", "cancel"):
        return event.note
    return ""


def photos(order: WorkOrder) -> QuerySet[OrderPhoto]:
    return OrderPhoto.objects.filter(order=order).order_by("id")
