"""The scoring rules, totals, ranks, grades and bonuses (pure functions; values by hand)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from aftersales.staff import scoring as s


def test_linear_higher_is_better():
    rule = {"floor": 60, "target": 90}
    assert s.item_score("linear", rule, 60) == D("0.00")
    assert s.item_score("linear", rule, 75) == D("50.00")
    assert s.item_score("linear", rule, 90) == D("100.00")
    assert s.item_score("linear", rule, 80) == D("66.67")
    assert s.item_score("linear", rule, 40) == D("0.00")      # clamped below the floor
    assert s.item_score("linear", rule, 99.5) == D("100.00")  # clamped above the target


def test_linear_lower_is_better():
    rule = {"floor": 120, "target": 30}  # response minutes: 120 scores 0, 30 scores 100
    assert s.item_score("linear", rule, 120) == D("0.00")
    assert s.item_score("linear", rule, 75) == D("50.00")
    assert s.item_score("linear", rule, 30) == D("100.00")
    assert s.item_score("linear", rule, 48) == D("80.00")
    assert s.item_score("linear", rule, 10) == D("100.00")
    assert s.item_score("linear", rule, 500) == D("0.00")


def test_bands_edges():
    table = [{"from": None, "to": 2, "score": 100}, {"from": 2, "to": 5, "score": 70},
             {"from": 5, "to": 8, "score": 40}, {"from": 10, "to": None, "score": 10}]
    assert s.item_score("bands", table, -3) == D("100.00")  # open start
    assert s.item_score("bands", table, 1.99) == D("100.00")
    assert s.item_score("bands", table, 2) == D("70.00")    # from is inclusive
    assert s.item_score("bands", table, 4.999) == D("70.00")
    assert s.item_score("bands", table, 5) == D("40.00")    # to is exclusive
    assert s.item_score("bands", table, 9) == D("0.00")     # in no band
    assert s.item_score("bands", table, 10) == D("10.00")
    assert s.item_score("bands", table, 10**6) == D("10.00")  # open end


def test_points_per_event_with_base_and_cap():
    assert s.item_score("points", {"base": 100, "per_event": -20}, 0) == D("100.00")
    assert s.item_score("points", {"base": 100, "per_event": -20}, 2) == D("60.00")
    assert s.item_score("points", {"base": 100, "per_event": -20}, 7) == D("0.00")    # not below 0
    assert s.item_score("points", {"per_event": 15}, 3) == D("45.00")                 # base 0
    assert s.item_score("points", {"per_event": 15}, 9) == D("100.00")                # at most 100
    assert s.item_score("points", {"per_event": 15, "cap": 50}, 3) == D("45.00")
    assert s.item_score("points", {"per_event": 15, "cap": 50}, 4) == D("50.00")      # the cap
    assert s.item_score("points", {"base": 80, "per_event": 10, "cap": 90}, 0) == D("80.00")


def test_missing_values_score_nothing():
    for rule, params in (("linear", {"floor": 0, "target": 1}), ("bands", [{"from": 0, "to": 1, "score": 5}]),
                         ("points", {"per_event": 1})):
        assert s.item_score(rule, params, None) is None


def test_total_spreads_the_weight_of_unscored_items():
    assert s.total([(D(80), D(50)), (D(60), D(30)), (D(100), D(20))]) == D("78.00")
    assert s.total([(D(80), D(50)), (None, D(30)), (D(100), D(20))]) == D("85.71")  # (4000 + 2000) / 70
    assert s.total([(None, D(100))]) is None
    assert s.adjusted(D("97.5"), D("5")) == D("100.00")
    assert s.adjusted(D("3"), D("-5")) == D("0.00")
    assert s.adjusted(D("70"), None) == D("70.00")
    assert s.adjusted(None, D("5")) is None


@pytest.mark.parametrize(("rule", "params", "problems"), [
    ("linear", {"floor": 0, "target": 100}, []),
    ("linear", {"floor": 5, "target": 5}, ["linear_equal"]),
    ("linear", {"floor": "x", "target": 5}, ["linear_shape"]),
    ("linear", [], ["linear_shape"]),
    ("bands", [{"from": None, "to": 3, "score": 100}, {"from": 3, "to": None, "score": 0}], []),
    ("bands", [{"from": 5, "to": 3, "score": 100}], ["bands_order"]),
    ("bands", [{"from": 0, "to": 3, "score": 101}], ["bands_score"]),
    ("bands", [], ["bands_shape"]),
    ("bands", [{"from": 0, "to": 3}], ["bands_shape"]),
    ("points", {"per_event": -20, "base": 100}, []),
    ("points", {"base": 100}, ["points_shape"]),
    ("points", {"per_event": 5, "cap": 0}, ["points_cap"]),
    ("points", {"per_event": 5, "cap": 120}, ["points_cap"]),
    ("curve", {}, ["rule"]),
])
def test_rule_parameters_checked(rule, params, problems):
    assert s.params_problems(rule, params) == problems


def test_ranks_competition_style():
    assert s.ranks([D(70), D(90), None, D(90), D(60)]) == [3, 1, None, 1, 4]


def test_grade_by_bands_edges():
    table = [{"grade": "A", "min": 90}, {"grade": "B", "min": 75}, {"grade": "C", "min": 60}]
    assert [s.grade_by_bands(D(t), table) for t in ("100", "90", "89.99", "75", "60", "59.99", "0")] == [
        "A", "A", "B", "B", "C", "C", "C"]  # below every min: the lowest grade
    assert s.grade_by_bands(None, table) == ""
    assert s.lowest_grade("bands", table) == "C"


def test_forced_distribution_quotas():
    table = [{"grade": "A", "percent": 20}, {"grade": "B", "percent": 70}, {"grade": "C", "percent": 10}]
    assert s.forced_quotas(10, table) == [("A", 2), ("B", 7), ("C", 1)]
    assert s.forced_quotas(3, table) == [("A", 1), ("B", 2), ("C", 0)]
    assert s.forced_quotas(15, table) == [("A", 3), ("B", 11), ("C", 1)]  # 3, 13.5 → 14, 15
    assert s.forced_quotas(0, table) == [("A", 0), ("B", 0), ("C", 0)]
    ranks = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert s.grade_forced(ranks, table) == ["A"] * 2 + ["B"] * 7 + ["C"]
    assert s.grade_forced([1, 2, 2, 4, 5, 6, 7, 8, 8, 8], table) == ["A", "A", "A"] + ["B"] * 7
    assert s.grade_forced([1, None, 2, 3], table) == ["A", "", "B", "B"]
    assert s.grade_forced([1, 2], table) == ["B", "B"]  # 2 people: 20 % rounds to nobody
    assert s.lowest_grade("forced", table) == "C"


def test_bonus_rules():
    assert s.pool_shares(1000, [D(50), D(30), None, D(20)]) == [D("500.00"), D("300.00"), None, D("200.00")]
    assert s.pool_shares(100, [D(1), D(1), D(1)]) == [D("33.33")] * 3
    assert s.pool_shares(100, [D(0), None]) == [D("0.00"), None]
    mult = {"A": 1.5, "B": 1, "C": 0.5}
    assert s.multiplier_bonus(2000, mult, "A") == D("3000.00")
    assert s.multiplier_bonus(2000, mult, "C") == D("1000.00")
    assert s.multiplier_bonus(2000, mult, "D") == D("0.00")
    assert s.multiplier_bonus(2000, mult, "") is None
