"""Reactions to the order flow (tickets.signals.order_moved).

- An order completed → once the completion has committed, ``services.callback_open`` (the
  task, the survey link, the SMS, completed → callback). After the commit, so that a
  completion rolled back opens nothing, and robust: a failure there is logged and does not
  undo the technician's completion (``services.callback_open_missing`` catches up).
- An order leaving the call-back by another path (closed or reopened on the order page) →
  its open task is cancelled, in the move's transaction. The feedback services mark their
  task done *before* they move the order, so their own moves find no open task here.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from aftersales.tickets.models import Status
from aftersales.tickets.signals import order_moved


@receiver(order_moved, dispatch_uid="feedback.order_moved")
def on_order_moved(sender, order, move, from_status, to_status, actor, at, **kwargs):
    from . import services

    if to_status == Status.COMPLETED:
        order_id = order.pk
        transaction.on_commit(lambda: services.callback_open(order_id), robust=True)
    elif from_status in (Status.COMPLETED, Status.CALLBACK) and to_status in (Status.CLOSED, Status.REOPENED):
        services.callback_cancel(order, actor=actor, to_status=to_status, now=at)
