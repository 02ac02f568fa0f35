"""Reactions of the stock to the order flow (``tickets.signals``), inside the move's transaction.

When an order is completed or cancelled — or leaves its technician (declined, reassigned,
transferred to another outlet) — the parts still reserved for it are given back: requests
ready in the van are released there, requests in transit cancel their transfer when it has
not left (a shipped one arrives in the van as free stock). No reservation is left hanging.
"""

from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

from aftersales.tickets.signals import order_moved
from aftersales.tickets.workflow import MOVES

RELEASING = frozenset({"complete", "cancel", "decline", "reassign", "transfer"})


@receiver(order_moved, dispatch_uid="parts.release_on_leave")
def release_on_leave(sender, order, move, actor=None, at=None, **kwargs):
    if move not in RELEASING:
        return
    from .models import PartRequest, RequestStatus
    from .services import release_for_order

    if not PartRequest.objects.filter(order_id=order.pk,
                                      status__in=(RequestStatus.READY, RequestStatus.IN_TRANSIT)).exists():
        return
    reason = str(_("工单 %(n)s %(move)s，释放未使用的配件") % {"n": order.number, "move": MOVES[move].label})
    release_for_order(order, actor=actor, at=at, reason=reason)
