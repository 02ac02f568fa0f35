"""Reactions to the order flow (``tickets.signals.order_moved``), inside the move's transaction.

- dispatch / reassign: the order's current booking is its assignee at its appointment (others
  released); the customer is told who comes when ("dispatched").
- decline, transfer, cancel (the order leaves its technician): the current booking is released.
- complete: the booking is marked done (the unused rest of the slot is given back).
- depart: the customer is told the arrival window ("en_route").
- an order reaching "classified" or "reopened" where the node dispatches automatically is
  auto-dispatched after the commit (a task: Celery with a broker, in-process otherwise).
"""

import datetime as dt
import functools
import logging

from django.db import transaction
from django.dispatch import receiver

from aftersales.tickets.models import OrderEvent, Status
from aftersales.tickets.signals import order_moved
from aftersales.tickets.workflow import ASSIGNED, MOVES

logger = logging.getLogger(__name__)

LEAVING = frozenset({"decline", "transfer", "cancel"})
ARRIVAL_WINDOW = dt.timedelta(hours=1)  # when the technician sets out after the appointment's end


def _reason(order, move: str) -> str:
    """The move's label and the note it was made with (the event just appended)."""
    note = OrderEvent.objects.filter(order_id=order.pk, seq=order.event_count).values_list("note", flat=True).first()
    label = str(MOVES[move].label)
    return f"{label}：{note}" if note else label


def _notify(order, event: str, a: dt.datetime | None, b: dt.datetime | None) -> None:
    from aftersales.notifications.services import notify_customer

    from .selectors import fmt_window

    customer = order.customer
    if not customer.phone or order.assignee_id is None:
        return
    notify_customer(customer, event=event, ref=order.number, ref_id=order.pk,
                    context={"number": order.number, "technician": order.assignee.name, "window": fmt_window(a, b)})


def arrival_window(order, at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """When the technician who sets out at ``at`` arrives: the rest of the appointment, or the
    next hour once the appointment is over."""
    a = max(at, order.appointment_from) if order.appointment_from else at
    b = order.appointment_to if order.appointment_to and order.appointment_to > a else a + ARRIVAL_WINDOW
    return a, b


def _auto(order_id: int) -> None:
    try:
        from .tasks import auto_dispatch_task

        auto_dispatch_task.delay(order_id)
    except Exception:  # noqa: BLE001 - after the commit: the move stands, the failure is logged
        logger.exception("auto-dispatch of order %s failed", order_id)


@receiver(order_moved, dispatch_uid="aftersales.dispatch.receivers.on_order_moved")
def on_order_moved(sender, order, move, from_status, to_status, actor, at, **kwargs):
    from . import selectors, services

    if move in ("dispatch", "reassign"):
        services.bookings_sync(order, actor=actor, at=at, reason=str(MOVES["reassign"].label))
        _notify(order, "dispatched", order.appointment_from, order.appointment_to)
    elif move == "complete":
        services.bookings_done(order, actor=actor, at=at)
    elif from_status in ASSIGNED and (move in LEAVING or order.assignee_id is None):
        services.bookings_release(order, actor=actor, at=at, reason=_reason(order, move))
    if move == "depart":
        _notify(order, "en_route", *arrival_window(order, at))
    if to_status in (Status.CLASSIFIED, Status.REOPENED) and from_status != to_status \
            and selectors.effective_setting(order.node_id).auto_dispatch:
        transaction.on_commit(functools.partial(_auto, order.pk))
