"""Reads of the charges, scoped once.

An order's quotes, payments and service cost are seen by whoever may see the order
(``tickets.selectors.order_queryset``: ``order.view`` over its node, its owner, its technician,
its customer); the service cost per node and month by ``order.view`` over the nodes. The price
list is reference data (the entry points declare ``catalog.view``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.utils import timezone

from aftersales.core.errors import NotFound
from aftersales.org.roles import Perm
from aftersales.org.scope import scoped
from aftersales.tickets.models import WorkOrder
from aftersales.tickets.selectors import order_queryset

from .models import Payment, PriceItem, Quote, QuoteLine, QuoteStatus, Refund, ServiceCost
from .services import Gone, in_effect, quote_for_token, quote_link_check

PRICE_ORDERING = ["key", "valid_from", "id"]
QUOTE_ORDERING = ["-seq", "-id"]
PAYMENT_ORDERING = ["-received_at", "-id"]
MAX_ID = 2**63 - 1
CENT = Decimal("0.01")


def _id_ok(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_ID


# ---------------------------------------------------------------- the price list

def price_list_qs(*, on: dt.date | None = None, kind: str | None = None, q: str | None = None,
                  category_id: int | None = None, history: bool = False) -> QuerySet[PriceItem]:
    """The items in effect on ``on`` (today by default), or every item (``history``)."""
    qs = PriceItem.objects.select_related("part", "category", "created_by")
    if not history:
        qs = qs.filter(in_effect(on or timezone.localdate()))
    if kind:
        qs = qs.filter(kind=kind)
    if category_id:
        qs = qs.filter(category_id=category_id)
    if q:
        q = q.strip()
        qs = qs.filter(Q(name__icontains=q) | Q(code__icontains=q.upper()) | Q(part__code__icontains=q)
                       | Q(part__name__icontains=q))
    return qs


def labour_choices(category_id: int | None, on: dt.date | None = None) -> list[PriceItem]:
    """The labour items a quote of a unit of ``category_id`` may use on ``on``: per code, the
    category's own item, else the general one."""
    on = on or timezone.localdate()
    rows = list(PriceItem.objects.filter(in_effect(on), kind="labour")
                .filter(Q(category__isnull=True) | Q(category_id=category_id)).order_by("code", "id"))
    best: dict[str, PriceItem] = {}
    for r in rows:
        if r.code not in best or r.category_id is not None:
            best[r.code] = r
    return sorted(best.values(), key=lambda r: (r.price, r.code))


# ---------------------------------------------------------------- orders

def order_for(user, order_id: int) -> WorkOrder:
    """The order if ``user`` may see it (404 otherwise), with what the charges show."""
    o = None
    if _id_ok(order_id):
        o = (order_queryset(user).select_related("customer", "node", "assignee", "unit__model__category")
             .filter(pk=order_id).first())
    if o is None:
        raise NotFound()
    return o


def _lines():
    return Prefetch("lines", queryset=QuoteLine.objects.order_by("position"))


def quotes_of(user, order_id: int) -> QuerySet[Quote]:
    o = order_for(user, order_id)
    return Quote.objects.filter(order=o).select_related("order", "created_by").prefetch_related(_lines())


def quote_get(user, quote_id: int) -> Quote:
    q = None
    if _id_ok(quote_id):
        q = (Quote.objects.select_related("order", "created_by").prefetch_related(_lines())
             .filter(pk=quote_id, order__in=order_queryset(user)).first())
    if q is None:
        raise NotFound()
    return q


def quote_public(token: str) -> Quote:
    """The quote behind a customer's link: 404 unknown, 410 used, expired or replaced."""
    q = quote_for_token(token)
    q = (Quote.objects.select_related("order__node", "order__unit__model", "order__assignee")
         .prefetch_related(_lines()).get(pk=q.pk))
    quote_link_check(q, q.order.status)
    return q


def quote_public_state(token: str) -> tuple[Quote | None, Gone | None]:
    """For the page: the open quote, or the reason it is closed (unknown raises NotFound)."""
    try:
        return quote_public(token), None
    except Gone as e:
        return None, e


def payments_of(user, order_id: int) -> QuerySet[Payment]:
    o = order_for(user, order_id)
    return (Payment.objects.filter(order=o).select_related("received_by", "quote")
            .prefetch_related(Prefetch("refunds", queryset=Refund.objects.select_related("refunded_by")
                                       .order_by("id"))))


def payment_get(user, payment_id: int, order_id: int | None = None) -> Payment:
    p = None
    if _id_ok(payment_id):
        qs = Payment.objects.select_related("order", "received_by", "quote").filter(
            pk=payment_id, order__in=order_queryset(user))
        if order_id is not None:
            qs = qs.filter(order_id=order_id)
        p = qs.first()
    if p is None:
        raise NotFound()
    return p


def order_money(order_id: int) -> dict:
    """Paid, refunded and net of an order (one query)."""
    agg = Payment.objects.filter(order_id=order_id).aggregate(paid=Sum("amount"), refunded=Sum("refunded"),
                                                              n=Count("id"))
    paid, refunded = agg["paid"] or Decimal("0.00"), agg["refunded"] or Decimal("0.00")
    paid, refunded = Decimal(paid).quantize(CENT), Decimal(refunded).quantize(CENT)
    return {"paid": paid, "refunded": refunded, "net": paid - refunded, "count": agg["n"]}


# ---------------------------------------------------------------- service cost

def service_cost_of(user, order_id: int) -> tuple[WorkOrder, ServiceCost | None]:
    o = order_for(user, order_id)
    return o, ServiceCost.objects.filter(order=o).first()


def service_cost_by_node_month(user, *, since: dt.date | None = None, until: dt.date | None = None,
                               node_id: int | None = None) -> list[dict]:
    """The service cost per node and month, summed in SQL (one query) over the nodes where
    ``user`` holds ``order.view``: ``[{node_id, node, month, orders, parts, labour, travel,
    loaner, total}]`` by month then node. ``since``/``until`` bound the months (any day of
    them)."""
    qs = scoped(ServiceCost.objects.all(), user, Perm.ORDER_VIEW)
    if since:
        qs = qs.filter(month__gte=since.replace(day=1))
    if until:
        qs = qs.filter(month__lte=until.replace(day=1))
    if node_id:
        qs = qs.filter(node_id=node_id)
    rows = (qs.values("node_id", "node__name", "month")
            .annotate(orders=Count("id"), parts=Sum("parts"), labour=Sum("labour"), travel=Sum("travel"),
                      loaner=Sum("loaner"), total=Sum("total"))
            .order_by("month", "node_id"))
    money = ("parts", "labour", "travel", "loaner", "total")
    return [{**{k: (Decimal(v or 0).quantize(CENT) if k in money else v) for k, v in r.items() if k != "node__name"},
             "node": r["node__name"]} for r in rows]


def open_quote_count(user) -> int:
    """Quotes waiting for the customer in ``user``'s ``charge.handle`` scope (for a home tile)."""
    return scoped(Quote.objects.filter(status=QuoteStatus.SENT), user, Perm.CHARGE_HANDLE).count()
