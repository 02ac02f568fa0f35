"""Reads of call-back tasks and surveys, scoped once.

A task is visible to an agent it is assigned to (the order's owner, wherever they work) and
to those holding ``order.handle`` over its node. A survey link is read by its token alone
(the public page); an order's surveys by those who may see the order."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from aftersales.core.errors import NotFound
from aftersales.org.roles import Perm
from aftersales.org.scope import scope_filter
from aftersales.tickets.selectors import order_get

from .models import CallbackTask, Survey, TaskStatus
from .services import survey_check, survey_for_token

ORDERING = ["due_at", "id"]


def callback_queryset(user) -> QuerySet[CallbackTask]:
    if user is None or not user.is_authenticated:
        return CallbackTask.objects.none()
    f = scope_filter(user, Perm.ORDER_HANDLE)
    qs = CallbackTask.objects.all()
    return qs if f is None else qs.filter(f | Q(assigned_to_id=user.pk))


def callback_list_qs(qs: QuerySet[CallbackTask]) -> QuerySet[CallbackTask]:
    """What a task row shows (the order, its customer, product, technician), in one query."""
    return qs.select_related("order__customer", "order__unit__model", "order__assignee", "order__address",
                             "assigned_to", "node", "done_by")


def callback_filter(user, qs: QuerySet[CallbackTask], *, status: str | None = TaskStatus.OPEN,
                    mine: bool = False) -> QuerySet[CallbackTask]:
    if status:
        qs = qs.filter(status=status)
    if mine:
        qs = qs.filter(assigned_to_id=user.pk)
    return qs


def callback_get(user, task_id: int) -> CallbackTask:
    t = callback_list_qs(callback_queryset(user)).filter(pk=task_id).first()
    if t is None:
        raise NotFound()
    return t


def survey_public(token: str) -> Survey:
    """The survey behind a link, still answerable (404 unknown, 410 used/expired/closed), with
    what the public page may show: the order number, the service date, the technician."""
    s = survey_for_token(token)
    survey_check(s, timezone.now())
    return Survey.objects.select_related("order__assignee", "order__unit__model").get(pk=s.pk)


def order_surveys(user, order_id: int) -> QuerySet[Survey]:
    """The surveys of an order the user may see (404 otherwise)."""
    order = order_get(user, order_id)
    return Survey.objects.filter(order=order).select_related("answered_by", "complaint")
