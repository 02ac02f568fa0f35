"""The pre-aggregates equal a plain recomputation from the base tables — after a rebuild and
after changes brought in by the incremental refresh — and the refresh touches only what changed."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from aftersales.charges.models import ServiceCost
from aftersales.feedback.models import CallbackTask, Survey
from aftersales.org.models import Node
from aftersales.quality import facts, selectors
from aftersales.quality.indicators import DIMS
from aftersales.quality.models import Aggregate, OrderFact, RefreshState
from aftersales.tickets.models import OrderEvent, WorkOrder

from .test_indicators import M, at, build, make_order

START, END = dt.date(2025, 3, 1), dt.date(2025, 4, 30)


def assert_agg_equals_raw():
    nodes = list(Node.objects.all())
    for dim in ("", *DIMS):
        for by_period in (True, False):
            agg = selectors.cells(nodes=nodes, grain="month", start=START, end=END, dim=dim, by_period=by_period)
            raw = selectors.cells(nodes=nodes, grain="month", start=START, end=END, dim=dim, by_period=by_period,
                                  source="raw")
            assert agg == raw, (dim, by_period)
            assert agg  # not trivially equal
    for grain in ("day", "week", "quarter", "year"):
        for dim in ("", "assignee", "slot"):
            agg = selectors.cells(nodes=nodes, grain=grain, start=START, end=END, dim=dim)
            raw = selectors.cells(nodes=nodes, grain=grain, start=START, end=END, dim=dim, source="raw")
            assert agg == raw, (grain, dim)
    # the raw SQL reads less for a part of the tree: a centre, outlets
    outlets = [n for n in nodes if n.kind == "outlet"]
    for part in ([n for n in nodes if n.kind == "centre"][:1], outlets):
        for dim in ("", "fault"):
            agg = selectors.cells(nodes=part, grain="month", start=START, end=END, dim=dim)
            raw = selectors.cells(nodes=part, grain="month", start=START, end=END, dim=dim, source="raw")
            assert agg == raw, ([n.code for n in part], dim)


@pytest.fixture
def data(world):
    build(world)
    facts.rebuild()
    return world


def test_rebuild_equals_recomputation(data):
    assert OrderFact.objects.count() == 12
    assert_agg_equals_raw()
    # the hand-built total in the pre-aggregates
    hq = selectors.cells(nodes=[data.hq], grain="year", start=START, end=START)[(data.hq.pk, dt.date(2025, 1, 1), "")]
    assert hq["orders"] == 11 and hq["cancelled"] == 1


def change(w):
    """A new order, an order completed, a survey answered, a repeat repair arriving for an older
    order and an order transferred — each stamped now, as the services would."""
    now = timezone.now()
    o = w.orders
    # a new installation order received on 28 April
    new = make_order(w, "new", node=w.tianhe, type="installation", status="received", created=at(4, 28, 15),
                     resp=3 * M)
    # o6 is completed (a first-time fix within 24 h of its response, with a cost and a checklist)
    WorkOrder.objects.filter(pk=o["o6"].pk).update(status="completed", completed_at=at(3, 28, 17), visit_count=1,
                                                   updated_at=now)
    OrderEvent.objects.create(order=o["o6"], seq=2, at=at(3, 28, 17), actor_label="t", action="complete")
    ServiceCost.objects.create(order=o["o6"], node=w.pudong, month=START, total=Decimal("99.90"), computed_at=now)
    # o9's customer answers a survey (the order itself is not touched)
    task = CallbackTask.objects.create(order=o["o9"], node=w.tianhe, due_at=at(5, 2, 9))
    Survey.objects.create(order=o["o9"], task=task, node=w.tianhe, channel="phone", answered_at=now, timeliness=2,
                          attitude=2, professionalism=2, result=2, overall=1, resolved=False)
    # a repair of o7's unit and fault category, 13 days after o7 was resolved: o7 now repeats within 30 days
    repeat = make_order(w, "repeat", node=w.hangzhou, type="repair", status="received", created=at(3, 20, 9),
                        unit=w.u3, fault=w.f2, resp=30 * M)
    WorkOrder.objects.filter(pk__in=[new.pk, repeat.pk]).update(updated_at=now)
    # o3 is transferred from Pudong to Hangzhou
    WorkOrder.objects.filter(pk=o["o3"].pk).update(node=w.hangzhou, updated_at=now)
    # o7 and o8 come in as earlier repairs of the same unit and fault as the new repair and o9
    return {new.pk, o["o6"].pk, o["o9"].pk, repeat.pk, o["o7"].pk, o["o3"].pk, o["o8"].pk}


def test_incremental_refresh_equals_recomputation_and_touches_only_dirty_days(data):
    state = RefreshState.objects.get(name="facts")
    assert state.watermark is not None  # set by the rebuild
    before = {(a.grain, a.period, a.node_id, a.dim, a.key): a.pk for a in Aggregate.objects.all()}
    o7_before = OrderFact.objects.get(order=data.orders["o7"])
    assert (o7_before.repeat_30, o7_before.repeat_90) == (0, 0)

    dirty = change(data)
    res = facts.refresh()
    assert not res.rebuilt and not res.busy
    assert res.orders == len(dirty) == 7
    assert_agg_equals_raw()

    # What was touched: the (day, node) of each dirty order, before and after — 20 (repeat),
    # 5 (o7) March at Hangzhou; 28 (o6) and 15 (o3, before its transfer) March at Pudong, 15 March
    # at Hangzhou (after it); 12 (o8) March and 28 (new), 30 (o9) April at Tianhe.
    w = data
    dirty_days = {dt.date(2025, 3, d) for d in (5, 12, 15, 20, 28)} | {dt.date(2025, 4, d) for d in (28, 30)}
    dirty_nodes = {w.pudong.pk, w.hangzhou.pk, w.tianhe.pk}
    dirty_months = {START: dirty_nodes, dt.date(2025, 4, 1): {w.tianhe.pk}}
    after = {(a.grain, a.period, a.node_id, a.dim, a.key): a.pk for a in Aggregate.objects.all()}
    rewritten = {k for k, pk in after.items() if before.get(k) != pk}
    assert {k[1] for k in rewritten if k[0] == "day"} == dirty_days
    assert {(k[1], k[2]) for k in rewritten if k[0] == "month"} == {
        (m, n) for m, nodes in dirty_months.items() for n in nodes}
    # everything else kept its row: other days, and April at Pudong and Hangzhou
    kept = [k for k in before if k not in rewritten and k in after]
    assert all(after[k] == before[k] for k in kept)
    assert any(k[:3] == ("month", dt.date(2025, 4, 1), w.pudong.pk) for k in kept)
    assert any(k[0] == "day" and k[1] == dt.date(2025, 3, 3) for k in kept)
    day_rows = Aggregate.objects.filter(grain="day", period__in=dirty_days, node__in=dirty_nodes).count()
    month_rows = sum(Aggregate.objects.filter(grain="month", period=m, node__in=nodes).count()
                     for m, nodes in dirty_months.items())
    assert res.cells == day_rows + month_rows

    o7 = OrderFact.objects.get(order=data.orders["o7"])
    assert (o7.repeat_30, o7.repeat_90) == (1, 1)
    o6 = OrderFact.objects.get(order=data.orders["o6"])
    assert (o6.resolved, o6.ftf, o6.solved_24h, o6.cost) == (1, 1, 1, Decimal("99.90"))
    assert OrderFact.objects.get(order=data.orders["o9"]).sat_overall_min == 1
    assert OrderFact.objects.get(order=data.orders["o3"]).node_id == data.hangzhou.pk
    v = selectors.values(selectors.cells(nodes=[data.pudong], grain="month", start=START, end=START)
                         [(data.pudong.pk, START, "")])
    assert v["orders"] == 4  # o3 left for Hangzhou

    state.refresh_from_db()
    assert (state.last_orders, state.last_cells) == (res.orders, res.cells)


def test_refresh_of_nothing_new_touches_nothing(data):
    RefreshState.objects.filter(name="facts").update(watermark=timezone.now() + dt.timedelta(hours=1))
    res = facts.refresh()
    assert (res.orders, res.cells) == (0, 0)


def test_first_refresh_rebuilds(world):
    build(world)
    assert not RefreshState.objects.exists()
    res = facts.refresh()
    assert res.rebuilt and res.orders == 12
    assert RefreshState.objects.get(name="facts").watermark is not None
    assert_agg_equals_raw()


def test_refresh_orders(data):
    WorkOrder.objects.filter(pk=data.orders["o4"].pk).update(type="repair", unit=data.u2, fault_category=data.f1)
    res = facts.refresh_orders([data.orders["o4"].pk])
    assert res.orders == 1
    assert OrderFact.objects.get(order=data.orders["o4"]).repairs == 1
    assert_agg_equals_raw()


def test_command(data):
    out = StringIO()
    call_command("quality_refresh", "--rebuild", stdout=out, stderr=StringIO())
    assert "rebuild: 12 orders" in out.getvalue()
    out = StringIO()
    call_command("quality_refresh", stdout=out)
    assert "refresh: 0 orders" in out.getvalue()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_refresh_at_a_time(world):
    """While one refresh holds the state row, another returns at once, busy."""
    build(world)
    facts.rebuild()
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                RefreshState.objects.select_for_update().get(name="facts")
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert locked.wait(10)
        res = facts.refresh()
        assert res.busy and res.orders == 0
    finally:
        release.set()
        t.join(10)
    assert not facts.refresh().busy
