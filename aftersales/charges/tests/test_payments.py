"""Payments, refunds (never more than was paid), receipt numbers and the service cost."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from aftersales.charges import services
from aftersales.charges.models import Payment, Refund, ServiceCost
from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from aftersales.records.audit import audit_verify
from aftersales.tickets import workflow
from aftersales.tickets.invariants import order_problems
from aftersales.tickets.models import OrderEvent

from .conftest import ask_part, order_at, png_bytes

pytestmark = pytest.mark.django_db


def approved(w, o, **kw):
    kw.setdefault("labour_codes", ["GENERAL"])
    q = services.quote_create(user=w.pudong_tech, order_id=o.pk, **kw)
    return services.quote_sign(user=w.pudong_tech, quote_id=q.pk, signature_png_bytes=png_bytes())


def pay(w, o, amount="130", user=None, **kw):
    kw.setdefault("method", "wechat")
    return services.payment_record(user=user or w.pudong_tech, order_id=o.pk, amount=amount, **kw)


def test_payment_gets_a_receipt_number_event_and_audit(cw):
    o = order_at(cw, "diagnosing")
    q = approved(cw, o)
    p = pay(cw, o, reference="4200001234202501011234567890")
    today = timezone.localdate()
    assert p.receipt_no == f"SJ{today:%Y%m%d}000001" and p.quote == q and p.amount == Decimal("130.00")
    p2 = pay(cw, o, amount=Decimal("20.5"), method="cash", user=cw.pudong_agent)
    assert p2.receipt_no == f"SJ{today:%Y%m%d}000002" and p2.received_by == cw.pudong_agent
    ev = OrderEvent.objects.filter(order=o, action="payment").order_by("seq")
    assert [e.data["receipt"] for e in ev] == [p.receipt_no, p2.receipt_no]
    assert "微信支付" in ev[0].note and "130.00" in ev[0].note
    assert order_problems() == [] and audit_verify().ok


def test_bad_payments_are_400_and_nothing_is_written(cw):
    o = order_at(cw, "diagnosing")
    for amount in ("-5", "0", "abc", "1.234", "1e9", None, True, "NaN"):
        with pytest.raises(ValidationFailed) as e:
            pay(cw, o, amount=amount)
        assert set(e.value.errors) == {"amount"}, amount
    with pytest.raises(ValidationFailed) as e:
        pay(cw, o, amount="-1", method="bitcoin", reference="x" * 65)
    assert set(e.value.errors) == {"amount", "method", "reference"}
    assert not Payment.objects.exists()
    with pytest.raises(NotFound):
        services.payment_record(user=cw.pudong_agent, order_id=123456789, amount="5", method="cash")
    with pytest.raises(NotFound):
        pay(cw, o, user=cw.tianhe_agent)
    with pytest.raises(PermissionDenied):
        pay(cw, o, user=cw.pudong_dispatcher)
    cancelled = order_at(cw, "cancelled")
    with pytest.raises(Conflict):
        pay(cw, cancelled, user=cw.pudong_agent)


def test_refunds_never_exceed_what_was_paid(cw):
    o = order_at(cw, "diagnosing")
    p = pay(cw, o, amount="130")
    r = services.refund_record(user=cw.pudong_agent, payment_id=p.pk, amount="50", reason="上门费退还")
    p.refresh_from_db()
    assert p.refunded == Decimal("50.00") and r.amount == Decimal("50.00")
    with pytest.raises(ValidationFailed) as e:
        services.refund_record(user=cw.pudong_agent, payment_id=p.pk, amount="80.01", reason="多退")
    assert "80.00" in str(e.value.errors["amount"][0])
    services.refund_record(user=cw.pudong_manager, payment_id=p.pk, amount="80", reason="全额退款")
    p.refresh_from_db()
    assert p.refunded == p.amount and p.net == 0
    with pytest.raises(ValidationFailed):
        services.refund_record(user=cw.pudong_agent, payment_id=p.pk, amount="0.01", reason="再退")
    assert Refund.objects.filter(payment=p).count() == 2
    assert [e.action for e in OrderEvent.objects.filter(order=o, action="refund")] == ["refund", "refund"]
    assert order_problems() == [] and audit_verify().ok


def test_refund_bad_input_and_rights(cw):
    o = order_at(cw, "diagnosing")
    p = pay(cw, o)
    with pytest.raises(ValidationFailed) as e:
        services.refund_record(user=cw.pudong_agent, payment_id=p.pk, amount="-1", reason="")
    assert set(e.value.errors) == {"amount", "reason"}
    with pytest.raises(PermissionDenied):  # the technician takes money, does not give it back
        services.refund_record(user=cw.pudong_tech, payment_id=p.pk, amount="1", reason="x")
    with pytest.raises(NotFound):
        services.refund_record(user=cw.hangzhou_agent, payment_id=p.pk, amount="1", reason="x")
    with pytest.raises(NotFound):
        services.refund_record(user=cw.pudong_agent, payment_id=10**13, amount="1", reason="x")
    assert Payment.objects.get(pk=p.pk).refunded == 0


# ---------------------------------------------------------------- the service cost

def test_service_cost_sums_parts_labour_travel(cw, settings):
    settings.TRAVEL_COST_PER_VISIT = 30
    o = order_at(cw, "diagnosing")
    ask_part(cw, o, cw.cap, qty=2)
    ask_part(cw, o, cw.comp, free=True)
    approved(cw, o, labour_codes=[{"code": "GENERAL", "qty": 2}, "COMP"])
    o = workflow.move(o.pk, "repair", user=cw.pudong_tech, diagnosis="电容坏")
    from aftersales.parts.models import PartRequest

    PartRequest.objects.filter(order=o).update(status="consumed", consumed_at=timezone.now())  # used at the repair
    assert not ServiceCost.objects.filter(order=o).exists()  # not completed yet
    o = workflow.move(o.pk, "complete", user=cw.pudong_tech, diagnosis="电容坏", result="已修好")
    sc = ServiceCost.objects.get(order=o)
    # parts at cost: 2 × 12 + 400; labour at the internal rate: 2 × 40 + 150; one visit × 30
    assert (sc.parts, sc.labour, sc.travel, sc.loaner) == (Decimal("424.00"), Decimal("230.00"), Decimal("30.00"),
                                                            Decimal("0.00"))
    assert sc.total == Decimal("684.00") and sc.visits == 1
    assert sc.month == timezone.localdate(o.completed_at).replace(day=1) and sc.node_id == o.node_id


def test_service_cost_without_a_quote_uses_the_default_labour(cw, settings):
    settings.LABOUR_COST_PER_VISIT = 45
    o = order_at(cw, "completed", chargeable=False)
    sc = ServiceCost.objects.get(order=o)
    assert (sc.parts, sc.labour, sc.travel) == (0, Decimal("45.00"), Decimal("30.00")) and sc.total == Decimal("75.00")
    # a payment recomputes it (here with a changed rate)
    settings.TRAVEL_COST_PER_VISIT = 10
    pay(cw, o, user=cw.pudong_agent, amount="10")
    sc.refresh_from_db()
    assert sc.travel == Decimal("10.00") and sc.total == Decimal("55.00")


def test_service_cost_per_node_and_month(cw):
    from aftersales.charges.selectors import service_cost_by_node_month

    a = order_at(cw, "completed", chargeable=False)
    b = order_at(cw, "completed", chargeable=False)
    last_month = (timezone.localdate().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    ServiceCost.objects.filter(order=b).update(month=last_month)
    rows = service_cost_by_node_month(cw.hq_manager)
    assert [(r["month"], r["orders"], r["node"]) for r in rows] == [
        (last_month, 1, "上海浦东网点"), (timezone.localdate().replace(day=1), 1, "上海浦东网点")]
    assert rows[0]["total"] == ServiceCost.objects.get(order=b).total
    assert service_cost_by_node_month(cw.tianhe_agent) == []  # order.view only at Tianhe
    assert len(service_cost_by_node_month(cw.hq_manager, since=timezone.localdate())) == 1
    assert a.pk != b.pk


def test_loaner_cost_from_the_assets_app(cw):
    """The real ``assets.Loan``: the loaner's daily cost kept on the loan × the days lent, in the
    service cost at completion, and again when the loan comes back (the loan's save)."""
    from aftersales.assets.models import Loan, Loaner

    o = order_at(cw, "repairing", chargeable=False)
    loaner = Loaner.objects.create(node=cw.pudong, category=cw.ac, asset_no="BY-0001", model_name="备用挂机",
                                   daily_cost=Decimal("99"), state="lent", created_at=timezone.now(),
                                   updated_at=timezone.now())
    lent = timezone.now() - dt.timedelta(days=4)
    loan = Loan.objects.create(loaner=loaner, order=o, node=cw.pudong, reason="long_repair", lent_at=lent,
                               due_on=timezone.localdate() + dt.timedelta(days=3), daily_cost=Decimal("25"))
    o = workflow.move(o.pk, "complete", user=cw.pudong_tech, diagnosis="x", result="修好")
    sc = ServiceCost.objects.get(order=o)
    assert (sc.loaner, sc.loan_days) == (Decimal("100.00"), 4)  # 4 days × 25 (the loan's cost, not 99)
    loan.returned_at = lent + dt.timedelta(days=2)
    loan.return_condition = "good"
    loan.save()
    sc.refresh_from_db()
    assert (sc.loaner, sc.loan_days) == (Decimal("50.00"), 2)
    assert sc.total == sc.parts + sc.labour + sc.travel + sc.loaner
