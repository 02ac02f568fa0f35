"""Reactions of the charges to the order flow (``tickets.signals``) and to loans.

- ``order_moving`` — the rule of R-WAR-2: a chargeable order cannot enter the repair (the
  ``repair`` move), nor be completed without passing through the repair (``complete`` from
  on site or diagnosing), until the customer has approved its quote (``services.repair_gate``):
  the move is refused with a 409 naming the quote's state. Free (in-warranty) orders pass.
- ``order_moved`` — an order completed or closed: its service cost is computed and kept, in
  the move's transaction.
- ``assets.Loan`` saved: the service cost of its order is recomputed.
"""

from __future__ import annotations

import logging

from django.db.models.signals import post_save
from django.dispatch import receiver

from aftersales.core.errors import Conflict
from aftersales.tickets.models import Status
from aftersales.tickets.signals import order_moved, order_moving

logger = logging.getLogger(__name__)

GATED = frozenset({"repair", "complete"})


@receiver(order_moving, dispatch_uid="charges.order_moving")
def on_order_moving(sender, order, move, from_status, to_status, actor, data, at, **kwargs):
    if move not in GATED or (move == "complete" and from_status == Status.REPAIRING):
        return
    from .services import repair_gate

    gate = repair_gate(order)
    if not gate.ok:
        raise Conflict(gate.problem, code="quote_required")


@receiver(order_moved, dispatch_uid="charges.order_moved")
def on_order_moved(sender, order, move, from_status, to_status, actor, at, **kwargs):
    if to_status in (Status.COMPLETED, Status.CLOSED):
        from .services import service_cost_refresh

        service_cost_refresh(order, now=at)


@receiver(post_save, sender="assets.Loan", dispatch_uid="charges.loan_saved")
def on_loan_saved(sender, instance, **kwargs):
    """A loan lent or returned: its order's service cost again (an order not completed yet gets
    it at completion)."""
    from .services import service_cost_refresh

    service_cost_refresh(instance.order_id)
