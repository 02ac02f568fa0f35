"""Lending and returning loaners (R-WAR-3): the rules, the scope, the condition check, the
overdue list, the candidates after N days with the policy inherited down the tree, the cost."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.utils import timezone

from aftersales.assets import selectors, services
from aftersales.assets.models import Loan, LoanerState, LoanPolicy
from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from aftersales.records.models import AuditEntry
from aftersales.tickets.models import OrderEvent

from .conftest import aged, repair

pytestmark = pytest.mark.django_db


def lend(w, order, loaner=None, *, user=None, reason="long_repair", **kw):
    return services.loan_lend(user=user or w.pudong_manager, order_id=order.pk, loaner_id=(loaner or w.l_ac).pk,
                              reason=reason, **kw)


# ---------------------------------------------------------------- lending

def test_lend_a_loaner_for_a_long_repair_and_take_it_back_in_good_condition(aw):
    o = repair(aw, days=4)
    loan = lend(aw, o, note="客户家中有老人")
    aw.l_ac.refresh_from_db()
    assert aw.l_ac.state == LoanerState.LENT
    assert loan.is_open and loan.node_id == aw.pudong.pk and loan.daily_cost == Decimal("20.00")
    assert loan.due_on == timezone.localdate() + dt.timedelta(days=services.default_loan_days())
    o.refresh_from_db()
    ev = OrderEvent.objects.get(order=o, seq=o.event_count)
    assert ev.action == "note" and "BY-PD-001" in ev.note and ev.data["loan"] == loan.pk
    assert ev.from_status == ev.to_status == o.status  # a note keeps the status
    assert AuditEntry.objects.filter(action="loan.lend", object_id=str(loan.pk)).exists()

    back = services.loan_return(user=aw.pudong_manager, loan_id=loan.pk, condition="good")
    aw.l_ac.refresh_from_db()
    assert back.returned_at is not None and back.return_condition == "good" and back.returned_by == aw.pudong_manager
    assert aw.l_ac.state == LoanerState.AVAILABLE
    o.refresh_from_db()
    assert "收回备用机 BY-PD-001" in OrderEvent.objects.get(order=o, seq=o.event_count).note


def test_not_twice_for_one_order_nor_one_loaner_twice(aw):
    o1, o2 = repair(aw, days=4), repair(aw, days=5)
    lend(aw, o1)
    with pytest.raises(Conflict) as e:
        lend(aw, o1, aw.l_wm, reason="manager")
    assert e.value.code == "order_has_loan"
    with pytest.raises(Conflict) as e:
        lend(aw, o2)  # the same loaner, already lent
    assert e.value.code == "loaner_unavailable"
    assert Loan.objects.count() == 1


def test_the_database_keeps_one_open_loan_per_loaner_and_per_order(aw):
    o1, o2 = repair(aw), repair(aw)
    now = timezone.now()
    Loan.objects.create(loaner=aw.l_ac, order=o1, node=aw.pudong, reason="manager", lent_at=now, due_on=now.date())
    with pytest.raises(IntegrityError), transaction.atomic():
        Loan.objects.create(loaner=aw.l_ac, order=o2, node=aw.pudong, reason="manager", lent_at=now, due_on=now.date())
    with pytest.raises(IntegrityError), transaction.atomic():
        Loan.objects.create(loaner=aw.l_wm, order=o1, node=aw.pudong, reason="manager", lent_at=now, due_on=now.date())
    # a returned loan frees both
    Loan.objects.filter(order=o1).update(returned_at=now, return_condition="good")
    Loan.objects.create(loaner=aw.l_ac, order=o2, node=aw.pudong, reason="manager", lent_at=now, due_on=now.date())


@pytest.mark.parametrize("status", ["cancelled", "completed", "closed"])
def test_not_to_an_order_that_is_over(aw, status):
    o = repair(aw, days=6, status=status)
    with pytest.raises(Conflict) as e:
        lend(aw, o, reason="manager")
    assert e.value.code == "order_not_open"
    aw.l_ac.refresh_from_db()
    assert aw.l_ac.state == LoanerState.AVAILABLE and not Loan.objects.exists()


def test_only_repair_orders(aw):
    o = repair(aw, days=6, type="maintenance")
    with pytest.raises(ValidationFailed) as e:
        lend(aw, o, reason="manager")
    assert "order_id" in e.value.errors


def test_out_of_scope_is_404_and_view_only_is_403(aw):
    o = repair(aw, days=4)
    with pytest.raises(NotFound):  # another outlet's manager: the Pudong order is out of sight
        lend(aw, o, user=aw.tianhe_manager)
    with pytest.raises(NotFound):  # a loaner of another centre's outlet
        lend(aw, o, aw.l_th)
    with pytest.raises(NotFound):
        services.loan_lend(user=aw.pudong_manager, order_id=10**9, loaner_id=aw.l_ac.pk, reason="manager")
    with pytest.raises(PermissionDenied):  # the technician sees the pool but does not lend
        lend(aw, o, user=aw.pudong_tech)
    with pytest.raises(PermissionDenied):  # the agent sees the order, not the assets
        lend(aw, o, user=aw.pudong_agent)
    assert not Loan.objects.exists()


def test_the_loaner_must_be_of_the_orders_outlet(aw):
    o = repair(aw, days=4)
    with pytest.raises(ValidationFailed) as e:  # the centre manager sees Hangzhou's pool too
        lend(aw, o, aw.l_hz, user=aw.east_manager)
    assert "loaner_id" in e.value.errors


def test_another_category_is_lent_but_noted(aw):
    o = repair(aw, days=4)  # an air conditioner
    lend(aw, o, aw.l_wm)
    o.refresh_from_db()
    assert "非同类备用机" in OrderEvent.objects.get(order=o, seq=o.event_count).note


def test_the_rule_needs_the_days_a_manager_does_not(aw):
    o = repair(aw, days=1)
    with pytest.raises(ValidationFailed) as e:
        lend(aw, o)
    assert "reason" in e.value.errors and "3" in str(e.value.errors["reason"][0])
    loan = lend(aw, o, reason="manager")
    assert loan.reason == "manager"


def test_bad_input_is_reported_field_by_field(aw):
    o = repair(aw, days=4)
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    with pytest.raises(ValidationFailed) as e:
        lend(aw, o, reason="because", due_on=yesterday, note="x" * 501)
    assert set(e.value.errors) == {"reason", "due_on", "note"}
    with pytest.raises(ValidationFailed) as e:
        lend(aw, o, due_on="2026-13-40")
    assert "due_on" in e.value.errors
    with pytest.raises(ValidationFailed) as e:
        lend(aw, o, due_on=timezone.localdate() + dt.timedelta(days=400))
    assert "due_on" in e.value.errors
    assert not Loan.objects.exists()


# ---------------------------------------------------------------- returning

def test_a_damaged_loaner_goes_to_maintenance_and_needs_a_note(aw):
    loan = lend(aw, repair(aw, days=4))
    with pytest.raises(ValidationFailed) as e:
        services.loan_return(user=aw.pudong_manager, loan_id=loan.pk, condition="damaged")
    assert "note" in e.value.errors
    with pytest.raises(ValidationFailed) as e:
        services.loan_return(user=aw.pudong_manager, loan_id=loan.pk, condition="lost", note="x")
    assert "condition" in e.value.errors
    services.loan_return(user=aw.pudong_manager, loan_id=loan.pk, condition="damaged", note="面板开裂")
    aw.l_ac.refresh_from_db()
    assert aw.l_ac.state == LoanerState.MAINTENANCE and "面板开裂" in aw.l_ac.condition_note
    loan.refresh_from_db()
    assert loan.return_condition == "damaged" and loan.return_note == "面板开裂"
    with pytest.raises(Conflict):
        services.loan_return(user=aw.pudong_manager, loan_id=loan.pk, condition="good")
    # out of maintenance, it can be lent again
    services.loaner_update(user=aw.pudong_manager, loaner_id=aw.l_ac.pk, state="available")
    lend(aw, repair(aw, days=5))


def test_incomplete_goes_to_maintenance_too(aw):
    loan = lend(aw, repair(aw, days=4))
    services.loan_return(user=aw.pudong_manager, loan_id=loan.pk, condition="incomplete", note="遥控器未归还")
    aw.l_ac.refresh_from_db()
    assert aw.l_ac.state == LoanerState.MAINTENANCE


def test_return_scope(aw):
    loan = lend(aw, repair(aw, days=4))
    with pytest.raises(NotFound):
        services.loan_return(user=aw.tianhe_manager, loan_id=loan.pk, condition="good")
    with pytest.raises(PermissionDenied):
        services.loan_return(user=aw.pudong_tech, loan_id=loan.pk, condition="good")
    with pytest.raises(NotFound):
        services.loan_return(user=aw.pudong_manager, loan_id=10**9, condition="good")


def test_a_lent_loaner_cannot_be_moved_or_put_in_maintenance(aw):
    lend(aw, repair(aw, days=4))
    with pytest.raises(Conflict):
        services.loaner_update(user=aw.pudong_manager, loaner_id=aw.l_ac.pk, state="maintenance")
    with pytest.raises(Conflict):
        services.loaner_update(user=aw.east_manager, loaner_id=aw.l_ac.pk, node_id=aw.hangzhou.pk)
    with pytest.raises(ValidationFailed):
        services.loaner_update(user=aw.pudong_manager, loaner_id=aw.l_wm.pk, state="lent")


# ---------------------------------------------------------------- overdue

def test_overdue_loans_are_listed_in_scope(aw):
    today = timezone.localdate()
    late = lend(aw, repair(aw, days=10), due_on=today)
    on_time = lend(aw, repair(aw, days=10), aw.l_wm, due_on=today + dt.timedelta(days=3))
    Loan.objects.filter(pk=late.pk).update(due_on=today - dt.timedelta(days=2))
    assert [x.pk for x in selectors.loans_overdue(aw.pudong_manager)] == [late.pk]
    assert list(selectors.loans_overdue(aw.tianhe_manager)) == []
    assert [x.pk for x in selectors.loans_overdue(aw.pudong_tech)] == [late.pk]  # asset.view
    assert on_time.pk not in [x.pk for x in selectors.loans_overdue(aw.hq_manager)]
    # due today is not overdue yet; returned is not overdue
    assert [x.pk for x in selectors.loans_overdue(aw.hq_manager, today=today - dt.timedelta(days=2))] == []
    services.loan_return(user=aw.pudong_manager, loan_id=late.pk, condition="good")
    assert list(selectors.loans_overdue(aw.pudong_manager)) == []


# ---------------------------------------------------------------- candidates and the policy

def _candidates(user, **kw):
    return {o.pk for o in selectors.loan_candidates(user, **kw)}


def test_candidates_after_n_days_with_the_policy_inherited(aw):
    young, old = repair(aw, days=2), repair(aw, days=4)
    hz = repair(aw, days=2, customer_id=aw.c_pudong.pk)  # re-homed to Hangzhou below
    hz.node = aw.hangzhou
    hz.save(update_fields=["node"])
    th = repair(aw, days=2.5, tianhe=True)
    assert _candidates(aw.hq_manager) == {old.pk}  # the default: more than 3 days

    services.policy_set(user=aw.east_manager, node_id=aw.east.pk, after_days=1)  # the centre: 1 day
    assert _candidates(aw.hq_manager) == {young.pk, old.pk, hz.pk}  # Pudong and Hangzhou inherit; Tianhe keeps 3
    services.policy_set(user=aw.pudong_manager, node_id=aw.pudong.pk, after_days=5)  # Pudong's own rule wins
    assert _candidates(aw.hq_manager) == {hz.pk}
    assert _candidates(aw.pudong_manager) == set()
    assert selectors.effective_policy(aw.hangzhou.pk) == selectors.Policy(1, aw.east.pk)
    assert selectors.effective_policy(aw.pudong.pk) == selectors.Policy(5, aw.pudong.pk)
    assert selectors.effective_policy(aw.tianhe.pk) == selectors.Policy(3, None)
    rows = {o.pk: o.after_days for o in selectors.loan_candidates(aw.hq_manager, node_id=aw.east.pk)}
    assert rows == {hz.pk: 1}
    assert th.pk not in _candidates(aw.hq_manager)


def test_candidates_leave_out_lent_done_and_other_types(aw):
    lent = repair(aw, days=4)
    lend(aw, lent)
    done = repair(aw, days=6, status="completed")
    cancelled = repair(aw, days=6, status="cancelled")
    other = repair(aw, days=6, type="maintenance")
    waiting = repair(aw, days=6, status="waiting_parts")
    assert _candidates(aw.pudong_manager) == {waiting.pk}
    assert {lent.pk, done.pk, cancelled.pk, other.pk}.isdisjoint(_candidates(aw.hq_manager))


@override_settings(LOANER_AFTER_DAYS=1)
def test_the_default_days_come_from_the_settings(aw):
    o = repair(aw, days=1.5)
    assert _candidates(aw.pudong_manager) == {o.pk}
    lend(aw, aged(o, 1.5))  # the rule is met


def test_policy_bad_input_and_scope(aw):
    with pytest.raises(ValidationFailed):
        services.policy_set(user=aw.pudong_manager, node_id=aw.pudong.pk, after_days=0)
    with pytest.raises(ValidationFailed):
        services.policy_set(user=aw.pudong_manager, node_id=aw.pudong.pk, after_days="many")
    with pytest.raises(NotFound):
        services.policy_set(user=aw.pudong_manager, node_id=aw.tianhe.pk, after_days=2)
    with pytest.raises(PermissionDenied):
        services.policy_set(user=aw.pudong_tech, node_id=aw.pudong.pk, after_days=2)
    assert not LoanPolicy.objects.exists()


# ---------------------------------------------------------------- the service cost

def test_the_orders_loan_cost(aw):
    o = repair(aw, days=8)
    loan = lend(aw, o)
    three_days_ago = timezone.now() - dt.timedelta(days=3)
    Loan.objects.filter(pk=loan.pk).update(lent_at=three_days_ago)
    assert selectors.order_loan_cost(o.pk) == Decimal("60.00")
    services.loaner_update(user=aw.pudong_manager, loaner_id=aw.l_ac.pk, daily_cost="99")  # not retroactive
    assert selectors.order_loan_cost(o.pk) == Decimal("60.00")
    assert selectors.order_loan_cost(repair(aw).pk) == Decimal("0.00")


# ---------------------------------------------------------------- the pool

def test_loaner_create_checks_everything(aw):
    with pytest.raises(ValidationFailed) as e:
        services.loaner_create(user=aw.pudong_manager, node_id=aw.pudong.pk, category_id=10**9, asset_no="BY-PD-001",
                               model_name="", daily_cost="-1", acquired_on="2999-01-01")
    assert set(e.value.errors) == {"category_id", "asset_no", "model_name", "daily_cost", "acquired_on"}
    with pytest.raises(ValidationFailed) as e:
        services.loaner_create(user=aw.east_manager, node_id=aw.east.pk, category_id=aw.ac.pk, asset_no="BY-E-1",
                               model_name="x")
    assert "node_id" in e.value.errors  # a pool belongs to an outlet
    with pytest.raises(NotFound):
        services.loaner_create(user=aw.pudong_manager, node_id=aw.tianhe.pk, category_id=aw.ac.pk,
                               asset_no="BY-X-1", model_name="x")
    x = services.loaner_create(user=aw.pudong_manager, node_id=aw.pudong.pk, category_id=aw.ac.pk,
                               asset_no="BY-PD-003", model_name="移动空调", daily_cost="12.50")
    assert x.state == "available" and x.daily_cost == Decimal("12.50")
    counts = {r.node_id: r.counts for r in selectors.pool_counts(aw.east_manager)}
    assert counts[aw.pudong.pk]["available"] == 3 and aw.tianhe.pk not in counts
