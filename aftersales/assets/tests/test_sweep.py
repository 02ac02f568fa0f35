"""The periodic sweep: holders and managers are told once per due date that an instrument falls
due, once that it is overdue; managers once about each overdue loan and each new candidate."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from aftersales.assets import services
from aftersales.assets.models import Loan
from aftersales.assets.tasks import assets_sweep_task
from aftersales.notifications.models import Message

from .conftest import repair, tool

pytestmark = pytest.mark.django_db


def sent(event, user=None):
    qs = Message.objects.filter(event=event)
    if user is not None:
        qs = qs.filter(user=user)
    return list(qs.order_by("id"))


def test_an_instrument_due_soon_then_overdue_is_told_once_each(aw):
    now = timezone.now()
    t = tool(aw.pudong, "GJ-MM-1", holder=aw.tech_employee, due_on=timezone.localdate(now) + dt.timedelta(days=5))
    tool(aw.pudong, "GJ-MM-2", holder=aw.tech_employee, due_on=timezone.localdate(now) + dt.timedelta(days=60))
    assert services.assets_sweep(now)["tools"] == 1
    [m] = sent("tool_due_soon", aw.pudong_tech)
    assert "GJ-MM-1" in m.body and "即将到期" in m.body
    assert len(sent("tools_due_summary", aw.pudong_manager)) == 1
    assert len(sent("tools_due_summary", aw.quality)) == 1  # quality keeps the calibration
    assert sent("tools_due_summary", aw.tianhe_manager) == []
    assert services.assets_sweep(now + dt.timedelta(hours=1))["tools"] == 0  # not repeated
    assert len(sent("tool_due_soon")) == 1

    later = now + dt.timedelta(days=6)  # the check has lapsed
    assert services.assets_sweep(later)["tools"] == 1
    [m] = sent("tool_overdue", aw.pudong_tech)
    assert "已过期" in m.body
    assert services.assets_sweep(later + dt.timedelta(days=1))["tools"] == 0
    assert len(sent("tool_overdue")) == 1

    # calibrated: the new due date is told about again when it comes
    services.calibration_record(user=aw.pudong_manager, tool_id=t.pk, done_on=timezone.localdate(now),
                                result="pass", certificate_no="JL-9", next_due=timezone.localdate(now) + dt.timedelta(days=30))
    assert services.assets_sweep(now + dt.timedelta(days=25))["tools"] == 1
    assert len(sent("tool_due_soon", aw.pudong_tech)) == 2


def test_tools_in_store_tell_the_managers_only(aw):
    tool(aw.pudong, "GJ-S", due_on=timezone.localdate() - dt.timedelta(days=3))
    services.assets_sweep()
    assert sent("tool_overdue") == [] and len(sent("tools_due_summary", aw.pudong_manager)) == 1


def test_overdue_loans_are_told_once(aw):
    o = repair(aw, days=5)
    loan = services.loan_lend(user=aw.pudong_manager, order_id=o.pk, loaner_id=aw.l_ac.pk, reason="long_repair",
                              due_on=timezone.localdate())
    now = timezone.now()
    assert services.assets_sweep(now)["loans_overdue"] == 0  # due today: not yet
    assert services.assets_sweep(now + dt.timedelta(days=2))["loans_overdue"] == 1
    [m] = sent("loans_overdue", aw.pudong_manager)
    assert "BY-PD-001" in m.body and o.number in m.body
    assert services.assets_sweep(now + dt.timedelta(days=3))["loans_overdue"] == 0
    Loan.objects.filter(pk=loan.pk).update(due_on=timezone.localdate() + dt.timedelta(days=3))  # extended
    assert services.assets_sweep(now + dt.timedelta(days=5))["loans_overdue"] == 1


def test_loan_candidates_are_told_once_each(aw):
    o1 = repair(aw, days=4)
    repair(aw, days=1)
    assert services.assets_sweep()["loan_candidates"] == 1
    [m] = sent("loan_candidates", aw.pudong_manager)
    assert o1.number in m.body and "3 天" in m.body
    assert services.assets_sweep()["loan_candidates"] == 0
    o3 = repair(aw, days=5)
    assert services.assets_sweep()["loan_candidates"] == 1
    assert o3.number in sent("loan_candidates", aw.pudong_manager)[-1].body


def test_the_task_runs_the_sweep(aw):
    tool(aw.pudong, "GJ-T", holder=aw.tech_employee, due_on=timezone.localdate() - dt.timedelta(days=1))
    assets_sweep_task()
    assert len(sent("tool_overdue", aw.pudong_tech)) == 1
