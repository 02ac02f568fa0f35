"""The quality demo data on a scaled-down ``manage.py demo``: every indicator has a figure at
headquarters, the checklists and sales land where they are meant to, the improvement actions
come in every state, the facts are up to date (the periodic refresh finds nothing to do), and
the same seed gives the same data."""

from __future__ import annotations

import datetime as dt
import hashlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from aftersales.org.models import Node, NodeKind
from aftersales.quality import demo, facts, selectors
from aftersales.quality.indicators import INDICATORS
from aftersales.quality.models import (
    Action,
    ActionStatus,
    Aggregate,
    ModelSales,
    NodeSales,
    NormCheck,
    NormItem,
    OrderFact,
    Target,
)
from aftersales.records.audit import audit_verify
from aftersales.tickets.models import WorkOrder
from aftersales.web.management.commands.demo import demo_reset

pytestmark = pytest.mark.django_db

SIZES = dict(seed=5, customers=300, units=450, orders=1500)


def run_demo(**kw) -> str:
    err = StringIO()
    call_command("demo", stdout=StringIO(), stderr=err, **{**SIZES, **kw})
    return err.getvalue()


def digest() -> str:
    """The quality data of the orders there are, without ids (orders by number, nodes and models
    by code)."""
    h = hashlib.sha256()
    for qs in (
        NormCheck.objects.order_by("order__number").values_list("order__number", "answers", "items", "met", "note",
                                                                 "answered_at"),
        NodeSales.objects.order_by("node__code", "month").values_list("node__code", "month", "amount"),
        ModelSales.objects.order_by("model__code", "month").values_list("model__code", "month", "units"),
        Target.objects.order_by("indicator", "node__code").values_list("indicator", "node__code", "target", "amber"),
        Action.objects.order_by("number").values_list("number", "title", "source", "indicator", "node__code", "dim",
                                                      "status", "due_on", "baseline", "whys", "fault_tree",
                                                      "complaint__number", "owner__username"),
        Aggregate.objects.filter(grain="month", dim="").order_by("period", "node__code").values_list(
            "period", "node__code", "orders", "norm_ok", "cost", "sat_n", "repeat_30"),
    ):
        for row in qs:
            h.update(repr(row).encode())
    return h.hexdigest()


def test_quality_demo():
    err = run_demo()
    for label in ("服务规范检查", "网点销售额", "型号销量", "指标目标", "指标月份", "改进措施"):
        assert label in err  # each step prints its rows and time
    today = timezone.localdate()
    start = (today - dt.timedelta(days=182)).replace(day=1)
    hq = Node.objects.get(kind=NodeKind.HQ)
    outlets = list(Node.objects.filter(kind=NodeKind.OUTLET))

    # every indicator has a figure at headquarters over the demo's months
    whole = selectors.cells(nodes=[hq], grain="month", start=start, end=today, by_period=False)[(hq.pk, None, "")]
    values = selectors.values(whole)
    assert [c for c in INDICATORS if values[c] is None] == []
    monthly = selectors.cells(nodes=[hq], grain="month", start=start, end=today)
    assert all(selectors.values(m, ["orders"])["orders"] > 0 for m in monthly.values())

    # a checklist for every completed order with a visit, ~93 % with every item met
    visited = WorkOrder.objects.filter(completed_at__isnull=False, visit_count__gt=0)
    assert NormCheck.objects.count() == visited.count() > 1000
    items = NormItem.objects.filter(active=True).count()
    assert items >= 5 and not NormCheck.objects.exclude(items=items).exists()
    missed = {c.items - c.met for c in NormCheck.objects.exclude(met=items)}
    assert missed == {1, 2}
    assert 90 <= values["norm_compliance_rate"] <= 96

    # cost ÷ sales: 6–12 % overall, a few outlets above 10 %
    assert 6 <= values["cost_share"] <= 12
    per_outlet = selectors.cells(nodes=outlets, grain="month", start=start, end=today, by_period=False)
    shares = [selectors.values(per_outlet[(o.pk, None, "")], ["cost_share"])["cost_share"] for o in outlets]
    assert all(4 <= s <= 13 for s in shares) and 1 <= sum(s > 10 for s in shares) <= 6

    # repairs per 1,000 units differ by model
    by_model = selectors.cells(nodes=[hq], grain="month", start=start, end=today, dim="model", by_period=False)
    rates = [v for (_n, _p, k), m in by_model.items() if k
             and (v := selectors.values(m, ["repairs_per_1000"])["repairs_per_1000"]) is not None]
    assert len(rates) >= 10 and max(rates) > 2 * min(rates)

    # targets of nodes' own, the nearest ancestor's applying
    assert Target.objects.count() >= 5
    east = Node.objects.get(code="C-EAST")
    east_outlet = Node.objects.filter(parent=east).first()
    assert selectors.target_for("sat_overall", east_outlet) == (4.7, 0.2)

    # improvement actions in every state, from every source, some overdue, numbered GJ + date + seq
    actions = list(Action.objects.prefetch_related("notes"))
    assert 12 <= len(actions) <= 20
    assert {a.status for a in actions} == set(ActionStatus.values)
    assert {a.source for a in actions} >= {"figure", "complaint", "survey"}
    overdue = [a for a in actions if a.status in ("open", "in_progress") and a.due_on < today]
    assert len(overdue) >= 3
    for a in actions:
        assert a.number.startswith(f"GJ{timezone.localdate(a.created_at):%Y%m%d}") and len(a.number) == 14
        assert a.indicator in INDICATORS and 1 <= len(a.whys) <= 5 and a.notes.exists()
        if a.status in ("done", "verified"):
            assert a.done_at and a.result_note and a.notes.filter(status="done").exists()
        if a.source == "complaint":
            assert a.complaint.type == "complaint" and a.node_id == a.complaint.node_id
    trees = [a.fault_tree for a in actions if a.fault_tree]
    assert len(trees) >= 3
    for tree in trees:  # one top event, every other under a known event
        ids = {e["id"] for e in tree}
        assert [e["parent"] for e in tree].count("") == 1 and all(e["parent"] in ids | {""} for e in tree)
    assert sum(a.baseline is not None for a in actions) >= 10

    # the facts are those of the data, and up to date: the periodic refresh has nothing to redo
    assert OrderFact.objects.count() == WorkOrder.objects.count()
    again = facts.refresh()
    assert not again.rebuilt and again.orders == 0
    assert audit_verify().ok


def committed() -> None:
    """What the commit between two demo loads does to the test's one transaction: deferred
    foreign-key checks run (PostgreSQL refuses to TRUNCATE a table with checks pending)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute("SET CONSTRAINTS ALL DEFERRED")


def test_same_seed_same_data_and_reset():
    run_demo()
    first = digest()
    committed()
    assert demo.reset() > 0
    assert not (NormCheck.objects.exists() or NodeSales.objects.exists() or Action.objects.exists()
                or OrderFact.objects.exists())
    assert NormItem.objects.exists()  # the checklist itself stays
    demo.build(seed=SIZES["seed"], today=timezone.localdate())
    assert digest() == first
    committed()
    demo.reset()
    demo.build(seed=SIZES["seed"] + 1, today=timezone.localdate())
    assert digest() != first
    demo_reset()  # the command's reset: the quality rows go first, then what they point at
    assert not (Action.objects.exists() or NormCheck.objects.exists() or Target.objects.exists()
                or Node.objects.exists() or WorkOrder.objects.exists())
