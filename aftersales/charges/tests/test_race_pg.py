"""Concurrency on PostgreSQL with real connections: refunds never add up to more than was paid,
a quote link answers once, and concurrent price changes never overlap."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from aftersales.charges import services
from aftersales.charges.models import Payment, PriceItem, Quote, Refund
from aftersales.conftest import race
from aftersales.core.errors import ValidationFailed
from aftersales.records.audit import audit_verify
from aftersales.tickets.invariants import order_problems
from aftersales.tickets.models import OrderEvent

from .conftest import order_at

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_refunds_never_exceed_the_payment(cw):
    assert connection.vendor == "postgresql"
    o = order_at(cw, "diagnosing")
    p = services.payment_record(user=cw.pudong_agent, order_id=o.pk, amount="100", method="wechat")
    n = 8
    results = race(n, lambda i: services.refund_record(user=cw.pudong_agent, payment_id=p.pk, amount="30",
                                                       reason=f"退款{i}"))
    oks = [v for kind, v in results if kind == "ok"]
    errs = [v for kind, v in results if kind == "err"]
    assert len(oks) == 3 and len(errs) == n - 3, results
    assert all(isinstance(e, ValidationFailed) and "amount" in e.errors for e in errs), errs
    p = Payment.objects.get(pk=p.pk)
    assert p.refunded == Decimal("90.00") == sum(r.amount for r in Refund.objects.filter(payment=p))
    assert OrderEvent.objects.filter(order=o, action="refund").count() == 3
    assert order_problems() == [] and audit_verify().ok


def test_a_quote_link_answers_once(cw, monkeypatch):
    o = order_at(cw, "diagnosing")
    q = services.quote_create(user=cw.pudong_tech, order_id=o.pk, labour_codes=["GENERAL"])
    token = services.quote_send(user=cw.pudong_tech, quote_id=q.pk).token
    results = race(2, lambda i: services.quote_answer(token, approve=(i == 0), reason="" if i == 0 else "太贵"))
    kinds = sorted(kind for kind, _v in results)
    assert kinds == ["err", "ok"], results
    err = next(v for kind, v in results if kind == "err")
    assert isinstance(err, services.Gone) and err.status == 410
    q = Quote.objects.get(pk=q.pk)
    assert q.status in ("approved", "rejected")
    assert OrderEvent.objects.filter(order=o, action__in=("quote_approved", "quote_rejected")).count() == 1
    assert order_problems() == [] and audit_verify().ok


def test_concurrent_price_changes_never_overlap(cw):
    today = timezone.localdate()
    results = race(6, lambda i: services.price_set(user=cw.hq_manager, kind="labour", code="GENERAL",
                                                   price=str(90 + i), valid_from=today + dt.timedelta(days=1 + i)))
    assert any(kind == "ok" for kind, _v in results), results
    assert all(isinstance(v, ValidationFailed) for kind, v in results if kind == "err"), results
    items = list(PriceItem.objects.filter(key="labour:GENERAL:*").order_by("valid_from"))
    for a, b in zip(items, items[1:], strict=False):
        assert a.valid_to is not None and a.valid_to < b.valid_from, (a.valid_from, a.valid_to, b.valid_from)
    assert items[-1].valid_to is None
    assert audit_verify().ok
