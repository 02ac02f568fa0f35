"""Scope, targets, drill-down and the query counts of the quality selectors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aftersales.core.errors import NotFound, ValidationFailed
from aftersales.quality import facts, selectors
from aftersales.quality.indicators import INDICATORS
from aftersales.quality.models import Target

from .test_indicators import MARCH, build

MARCH_END = dt.date(2025, 3, 31)


@pytest.fixture
def data(world):
    build(world)
    facts.rebuild()
    return world


def ids(qs):
    return [o.number for o in qs]


def numbers(w, *keys):
    return [w.orders[k].number for k in keys]


# ---------------------------------------------------------------- scope

def test_visible_nodes_and_node_for(world):
    w = world
    assert set(selectors.visible_nodes(w.pudong_manager)) == {w.pudong}
    assert set(selectors.visible_nodes(w.quality)) == {w.east, w.pudong, w.hangzhou}
    assert set(selectors.visible_nodes(w.hq_manager)) == {w.hq, w.east, w.south, w.pudong, w.hangzhou, w.tianhe}
    assert not selectors.visible_nodes(w.pudong_tech).exists()   # a technician sees only their scorecard
    assert not selectors.visible_nodes(w.pudong_agent).exists()
    assert selectors.node_for(w.quality, None) == w.east          # the top node in scope
    assert selectors.node_for(w.pudong_manager, None) == w.pudong
    assert selectors.node_for(w.quality, w.hangzhou.pk) == w.hangzhou
    for user, node in [(w.pudong_manager, w.tianhe), (w.pudong_manager, w.east), (w.quality, w.tianhe)]:
        with pytest.raises(NotFound):
            selectors.node_for(user, node.pk)
    with pytest.raises(NotFound):
        selectors.node_for(w.pudong_tech, None)
    with pytest.raises(NotFound):
        selectors.node_for(w.hq_manager, 999999)


# ---------------------------------------------------------------- periods

def test_periods():
    d = dt.date(2025, 8, 14)  # a Thursday
    assert [selectors.period_start(g, d) for g in ("day", "week", "month", "quarter", "year")] == [
        d, dt.date(2025, 8, 11), dt.date(2025, 8, 1), dt.date(2025, 7, 1), dt.date(2025, 1, 1)]
    assert selectors.period_end("quarter", d) == dt.date(2025, 9, 30)
    assert selectors.periods("month", dt.date(2024, 11, 20), dt.date(2025, 2, 1)) == [
        dt.date(2024, 11, 1), dt.date(2024, 12, 1), dt.date(2025, 1, 1), dt.date(2025, 2, 1)]
    assert selectors.periods("week", dt.date(2025, 3, 1), dt.date(2025, 3, 10)) == [
        dt.date(2025, 2, 24), dt.date(2025, 3, 3), dt.date(2025, 3, 10)]


def test_cells_checks_its_arguments(world):
    with pytest.raises(ValidationFailed) as e:
        selectors.cells(nodes=[world.hq], grain="fortnight", start=MARCH, end=MARCH, dim="colour", source="x")
    assert set(e.value.errors) == {"grain", "dim", "source"}


def test_month_ranges_cover_whole_months_and_every_node_period_is_there(data):
    c = selectors.cells(nodes=[data.pudong, data.tianhe], grain="month", start=dt.date(2025, 2, 10),
                        end=dt.date(2025, 3, 5))
    assert set(c) == {(n.pk, p, "") for n in (data.pudong, data.tianhe)
                      for p in (dt.date(2025, 2, 1), MARCH)}
    assert c[(data.pudong.pk, MARCH, "")]["orders"] == 5         # the whole of March
    assert c[(data.pudong.pk, dt.date(2025, 2, 1), "")]["orders"] == 0
    assert c[(data.pudong.pk, dt.date(2025, 2, 1), "")]["sales"] is None
    assert c[(data.tianhe.pk, MARCH, "")]["sales"] == Decimal("8000.00")


# ---------------------------------------------------------------- targets

def test_targets_inherit_down_the_tree(data):
    w = data
    Target.objects.create(indicator="ftf_rate", node=w.east, target=Decimal("80"), amber=Decimal("3"))
    Target.objects.create(indicator="ftf_rate", node=w.pudong, target=Decimal("90"), amber=Decimal("5"))
    Target.objects.create(indicator="sat_overall", node=w.hq, target=Decimal("4.2"), amber=Decimal("0.4"))
    nodes = [w.hq, w.east, w.pudong, w.hangzhou, w.tianhe]
    with CaptureQueriesContext(connection) as q:
        t = selectors.targets(["ftf_rate", "sat_overall", "cost_share"], nodes)
    assert len(q) == 1
    assert t[("ftf_rate", w.hangzhou.pk)] == (80.0, 3.0)      # from the centre
    assert t[("ftf_rate", w.pudong.pk)] == (90.0, 5.0)        # its own
    assert t[("ftf_rate", w.tianhe.pk)] == (85, 5)            # the registry default
    assert t[("ftf_rate", w.hq.pk)] == (85, 5)
    assert t[("sat_overall", w.tianhe.pk)] == (4.2, 0.4)      # from headquarters
    assert t[("cost_share", w.east.pk)] == (10, 2)
    assert selectors.target_for("ftf_rate", w.hangzhou) == (80.0, 3.0)

    ftf = INDICATORS["ftf_rate"]
    # Pudong in March: 33.3 % against 90 (amber down to 85): red; Hangzhou 100 % against 80: green
    pudong = selectors.values(selectors.cells(nodes=[w.pudong], grain="month", start=MARCH, end=MARCH)
                              [(w.pudong.pk, MARCH, "")])["ftf_rate"]
    assert ftf.status(pudong, *t[("ftf_rate", w.pudong.pk)]) == "red"
    assert ftf.status(100.0, *t[("ftf_rate", w.hangzhou.pk)]) == "green"
    assert ftf.status(78.0, *t[("ftf_rate", w.hangzhou.pk)]) == "amber"   # within 3 below 80
    assert ftf.status(76.9, *t[("ftf_rate", w.hangzhou.pk)]) == "red"
    # lower is better: cost share 11 % against 10 with 2 amber → amber; 12.5 → red
    cs = INDICATORS["cost_share"]
    assert (cs.status(9.0), cs.status(11.0), cs.status(12.5), cs.status(None)) == ("green", "amber", "red", "")


# ---------------------------------------------------------------- drill-down

def test_drill_returns_the_orders_behind_a_figure(data):
    w = data
    d = lambda user, code, node, **kw: ids(selectors.drill(user, code=code, node=node, start=MARCH,  # noqa: E731
                                                            end=MARCH_END, **kw))
    # first-time fix at HQ: the visited ones, newest first; against it: o2 (two visits), o1 (reopened)
    assert d(w.hq_manager, "ftf_rate", w.hq, against=False) == numbers(w, "o3", "o8", "o2", "o7", "o1")
    assert d(w.hq_manager, "ftf_rate", w.hq) == numbers(w, "o2", "o1")
    assert d(w.hq_manager, "repeat_30_rate", w.hq) == numbers(w, "o1")
    assert d(w.hq_manager, "repeat_90_rate", w.hq) == numbers(w, "o8", "o2", "o1")
    assert d(w.hq_manager, "sat_overall", w.hq) == numbers(w, "o2", "o7")             # scored below 4
    assert d(w.hq_manager, "handled_24h_rate", w.hq) == numbers(w, "o2", "o7")
    assert d(w.hq_manager, "sla_breaches", w.hq) == numbers(w, "o2")
    assert d(w.hq_manager, "orders", w.hq, against=False) == numbers(w, "o6", "o4", "o3", "o8", "o2", "o7", "o1")
    # by a breakdown
    tech = str(w.tech_employee.pk)
    assert d(w.hq_manager, "orders", w.hq, dim="assignee", key=tech) == numbers(w, "o6", "o3", "o2", "o1")
    assert d(w.hq_manager, "orders", w.hq, dim="assignee", key="") == numbers(w, "o4", "o8")
    assert d(w.hq_manager, "orders", w.hq, dim="channel", key="web") == numbers(w, "o2")
    assert d(w.hq_manager, "orders", w.hq, dim="slot", key="109") == numbers(w, "o1")
    assert d(w.hq_manager, "orders", w.hq, dim="category", key=str(w.ac.pk)) == numbers(w, "o2", "o7", "o1")
    # scoped: the centre's quality supervisor sees East only
    assert d(w.quality, "ftf_rate", w.east, against=False) == numbers(w, "o3", "o2", "o7", "o1")
    assert d(w.pudong_manager, "ftf_rate", w.pudong) == numbers(w, "o2", "o1")
    with pytest.raises(NotFound):
        d(w.pudong_manager, "ftf_rate", w.hq)
    with pytest.raises(NotFound):
        d(w.quality, "orders", w.tianhe)
    with pytest.raises(ValidationFailed):
        d(w.hq_manager, "nonsense", w.hq)
    with pytest.raises(ValidationFailed):
        d(w.hq_manager, "orders", w.hq, dim="assignee", key="abc")


# ---------------------------------------------------------------- query counts

def count_queries(fn) -> int:
    with CaptureQueriesContext(connection) as q:
        fn()
    return len(q)


@pytest.mark.parametrize("dim", ["", "model", "assignee"])
@pytest.mark.parametrize("grain", ["day", "month", "year"])
def test_cells_query_count_does_not_grow_with_nodes_or_periods(data, grain, dim):
    w = data
    small = count_queries(lambda: selectors.cells(nodes=[w.pudong], grain=grain, start=MARCH, end=MARCH, dim=dim))
    big = count_queries(lambda: selectors.cells(nodes=[w.hq, w.east, w.south, w.pudong, w.hangzhou, w.tianhe],
                                                grain=grain, start=dt.date(2024, 1, 1), end=dt.date(2025, 12, 31),
                                                dim=dim))
    assert small == big <= 4
    raw = count_queries(lambda: selectors.cells(nodes=[w.hq, w.east], grain=grain, start=MARCH,
                                                end=dt.date(2025, 4, 30), dim=dim, source="raw"))
    assert raw == big


def test_person_cells_query_count(data):
    w = data
    one = count_queries(lambda: selectors.person_cells([w.tech_employee.pk], grain="month", start=MARCH, end=MARCH))
    many = count_queries(lambda: selectors.person_cells([w.tech_employee.pk, w.tech2.pk, 999], grain="week",
                                                        start=dt.date(2024, 1, 1), end=dt.date(2025, 12, 31)))
    assert one == many <= 2
