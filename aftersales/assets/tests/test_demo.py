"""The assets demo data on the tests' small organisation: pools, loans consistent with the
orders, tools with their calibration history, deterministic, audited, and reset cleanly."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.db.models import Q
from django.utils import timezone

from aftersales.assets import demo, selectors
from aftersales.assets.models import Calibration, Loan, Loaner, LoanerState, Tool
from aftersales.records.models import AuditEntry
from aftersales.tickets.models import WorkOrder

from .conftest import repair

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders(aw):
    Loan.objects.all().delete()
    Loaner.objects.all().delete()  # the demo makes its own pools
    w = aw
    w.open_orders = [repair(w, days=8 + i) for i in range(6)]
    w.young = repair(w, days=1)
    done = repair(w, days=12, status="completed")
    WorkOrder.objects.filter(pk=done.pk).update(completed_at=timezone.now() - dt.timedelta(days=3))
    w.done = done
    return w


def snapshot() -> dict:
    return {
        "loaners": sorted(Loaner.objects.values_list("asset_no", "node__code", "category__code", "model_name", "state")),
        "loans": sorted(Loan.objects.values_list("loaner__asset_no", "order__number", "due_on", "returned_at",
                                                 "return_condition")),
        "tools": sorted(Tool.objects.values_list("code", "name", "node__code", "holder__employee_no", "due_on", "state")),
        "calibrations": sorted(Calibration.objects.values_list("tool__code", "done_on", "result", "next_due")),
    }


def test_build_and_reset(orders):
    w = orders
    today = timezone.localdate()
    stream = io.StringIO()
    counts = demo.build(seed=7, today=today, progress_stream=stream)
    assert counts == {"assets.Loaner": Loaner.objects.count(), "assets.Loan": Loan.objects.count(),
                      "assets.Tool": Tool.objects.count(), "assets.Calibration": Calibration.objects.count()}
    assert "工具仪器" in stream.getvalue()

    # a pool at every outlet, of the categories that exist (air conditioners 3, washing machines 2)
    assert Loaner.objects.count() == 3 * 5
    assert set(Loaner.objects.values_list("node_id", flat=True)) == {w.pudong.pk, w.hangzhou.pk, w.tianhe.pk}

    # open loans only on open repair orders older than 3 days, from the order's outlet; some overdue
    open_loans = list(Loan.objects.filter(returned_at__isnull=True).select_related("loaner", "order"))
    assert open_loans
    for loan in open_loans:
        assert loan.order.pk in {o.pk for o in w.open_orders}
        assert loan.loaner.node_id == loan.order.node_id == loan.node_id and loan.loaner.state == LoanerState.LENT
        assert loan.lent_at >= loan.order.created_at + dt.timedelta(days=3) and loan.due_on > loan.lent_at.date() - dt.timedelta(days=1)
    assert selectors.loans_overdue(w.hq_manager).exists()
    # the returned one on the long repair that is done
    back = Loan.objects.filter(returned_at__isnull=False)
    assert all(x.order_id == w.done.pk and x.returned_at >= x.lent_at for x in back)

    # every technician carries the instruments of their trade; the spare multimeters are in store
    mine = {(t.holder.employee_no, t.name) for t in Tool.objects.filter(holder__isnull=False).select_related("holder")}
    assert {(w.tech_employee.employee_no, n) for n in ("数字万用表", "冷媒压力表组", "全身式安全带")} <= mine
    assert (w.tech2_employee.employee_no, "冷媒压力表组") not in mine  # no air-conditioner skill
    assert Tool.objects.filter(holder__isnull=True, state="in_store").count() == 3
    # every tracked tool has the calibration behind its due date; some overdue, some due soon
    for t in Tool.objects.exclude(check_kind="none"):
        last = Calibration.objects.filter(tool=t, result="pass").order_by("-done_on").first()
        assert last is not None and last.next_due == t.due_on and last.done_on <= today
    assert Tool.objects.filter(~Q(check_kind="none"), due_on__lt=today).exists()
    assert selectors.overdue_instruments_of(Tool.objects.values_list("holder_id", flat=True).distinct())
    assert AuditEntry.objects.filter(action="demo.create").count() == sum(counts.values())

    first = snapshot()
    assert demo.reset() == sum(counts.values())
    assert not (Loaner.objects.exists() or Loan.objects.exists() or Tool.objects.exists()
                or Calibration.objects.exists())
    demo.build(seed=7, today=today)
    assert snapshot() == first  # deterministic


def test_build_on_an_empty_organisation(db):
    assert demo.build(seed=1, today=timezone.localdate()) == {
        "assets.Loaner": 0, "assets.Loan": 0, "assets.Tool": 0, "assets.Calibration": 0}
