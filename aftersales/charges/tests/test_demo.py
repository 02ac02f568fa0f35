"""The charges' demo data: built in bulk on the demo orders, deterministic, and consistent."""

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.utils import timezone

from aftersales.charges import demo, services
from aftersales.charges.models import Payment, PriceItem, Quote, Refund, ServiceCost
from aftersales.parts.models import PartRequest
from aftersales.records.audit import audit_verify
from aftersales.tickets.models import WorkOrder

from .conftest import ask_part, order_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(cw):
    """Orders as the demo leaves them: completed in the weeks the demo quotes, most out of 三包."""
    PriceItem.objects.all().delete()  # the demo brings its own price list, with a change
    now = timezone.now()
    orders = []
    for i in range(14):
        o = order_at(cw, "diagnosing", chargeable=i < 11)
        if i % 3 == 0:
            ask_part(cw, o, cw.cap, status="consumed")
        done = now - dt.timedelta(days=demo.QUOTE_DAYS - 2 - i * 3, hours=2)
        WorkOrder.objects.filter(pk=o.pk).update(status="closed", created_at=done - dt.timedelta(hours=5),
                                                 completed_at=done, closed_at=done + dt.timedelta(days=1))
        orders.append(o)
    cancelled = order_at(cw, "cancelled")
    return cw, orders, cancelled


def snapshot():
    return (sorted(Quote.objects.values_list("number", "status", "total", "chargeable", "approved_via")),
            sorted(Payment.objects.values_list("receipt_no", "amount", "refunded", "method")),
            sorted(ServiceCost.objects.values_list("order__number", "total")))


def test_build_on_the_world(history):
    w, orders, cancelled = history
    out = StringIO()
    counts = demo.build(seed=3, today=timezone.localdate(), progress_stream=out)
    chargeable = orders[:11]
    approved = Quote.objects.filter(status="approved")
    assert approved.count() == 11 and set(approved.values_list("order_id", flat=True)) == {o.pk for o in chargeable}
    assert counts["charges.Quote"] == Quote.objects.count() >= 11
    assert counts["charges.Payment"] == 11 and counts["charges.ServiceCost"] == 14
    assert not Quote.objects.filter(order=cancelled).exists()
    assert "报价与收费" in out.getvalue()

    # the price list changed during those weeks: older quotes keep the older prices
    today = timezone.localdate()
    change = today - dt.timedelta(days=demo.CHANGE_DAYS)
    assert services.price_on("visit", None, change - dt.timedelta(days=1)).price == Decimal("45.00")
    assert services.price_on("visit", None, change).price == Decimal("50.00")
    for q in approved:
        visit = q.lines.get(kind="visit")
        assert visit.unit_price == (Decimal("50.00") if q.priced_on >= change else Decimal("45.00"))
        assert visit.price_item.in_effect(q.priced_on)
        assert q.total == sum(ln.amount for ln in q.lines.all())
        assert q.decided_at < q.order.completed_at and q.chargeable > 0
        assert services.repair_gate(q.order).ok  # the approval covers the order
    assert {q.lines.get(kind="visit").unit_price for q in approved} == {Decimal("45.00"), Decimal("50.00")}
    with_part = Quote.objects.filter(status="approved", lines__kind="part").distinct()
    assert with_part.count() == len([o for i, o in enumerate(chargeable) if i % 3 == 0])

    # payments: the approved quote's amount due, receipts unique, refunds within the payment
    for p in Payment.objects.select_related("quote"):
        assert p.amount == p.quote.chargeable and p.refunded <= p.amount and p.receipt_no.startswith("SJ")
        assert p.refunded == sum(r.amount for r in Refund.objects.filter(payment=p))
    p = services.payment_record(user=w.pudong_agent, order_id=orders[0].pk, amount="1", method="cash")
    assert not Payment.objects.filter(receipt_no=p.receipt_no).exclude(pk=p.pk).exists()  # sequences continue

    # service cost: parts at cost, labour from the quote, travel per visit
    consumed = PartRequest.objects.get(order=orders[0], status="consumed")
    sc = ServiceCost.objects.get(order=orders[0])
    q = Quote.objects.get(order=orders[0], status="approved")
    labour = sum(ln.unit_cost * ln.qty for ln in q.lines.filter(kind="labour"))
    assert sc.parts == consumed.unit_cost * consumed.qty and sc.labour == labour
    assert sc.travel == Decimal(30) * sc.visits and sc.total == sc.parts + sc.labour + sc.travel + sc.loaner
    # the set-based demo figures are those the service computes, in the local month of completion
    for sc in ServiceCost.objects.select_related("order"):
        c = services.service_cost_compute(sc.order, now=timezone.now())
        assert (sc.parts, sc.labour, sc.travel, sc.loaner, sc.total) == (c.parts, c.labour, c.travel, c.loaner,
                                                                          c.total)
        assert sc.month == timezone.localdate(sc.order.completed_at).replace(day=1)
    assert audit_verify().ok


def test_build_is_deterministic_and_reset_removes_it(history):
    today = timezone.localdate()
    demo.build(seed=7, today=today)
    first = snapshot()
    assert demo.reset() > 0
    assert not (Quote.objects.exists() or Payment.objects.exists() or PriceItem.objects.exists()
                or ServiceCost.objects.exists())
    demo.build(seed=7, today=today)
    assert snapshot() == first
    again = demo.build(seed=7, today=today)  # nothing left to do: idempotent
    assert again["charges.Quote"] == 0 and again["charges.Payment"] == 0 and again["charges.PriceItem"] == 0
