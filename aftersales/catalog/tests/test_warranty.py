"""The 三包 rule engine, boundary by boundary. ``decide`` is pure: no database needed."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from django.utils import translation

from aftersales.catalog.models import Category, Exclusion, ProductModel, WarrantyPolicy
from aftersales.catalog.warranty import (
    Decision,
    DecisionKind,
    RepairFact,
    Terms,
    add_months,
    decide,
    terms_for,
)
from aftersales.core.errors import ValidationFailed

D = dt.date
T = Terms.default()
P = D(2024, 3, 10)  # an ordinary purchase date: whole unit to 2025-03-10, main parts to 2027-03-10 (inclusive)

RETURN, EXCHANGE = DecisionKind.RETURN, DecisionKind.EXCHANGE
FREE, CHARGE = DecisionKind.FREE_REPAIR, DecisionKind.CHARGEABLE


def terms(**changes) -> Terms:
    return dataclasses.replace(T, **changes)


def repair(started, finished, fault="noise", in_warranty=True) -> RepairFact:
    return RepairFact(started_on=started, finished_on=finished, fault_key=fault, in_warranty=in_warranty)


def day(n: int, start: dt.date = P) -> dt.date:
    return start + dt.timedelta(days=n)


@pytest.fixture(autouse=True)
def _chinese():
    with translation.override("zh-hans"):
        yield


# --------------------------------------------------------------------------- defaults

def test_default_terms():
    assert T == Terms(7, 15, 12, 36, 2, True, True, frozenset(Exclusion.values))


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        pytest.param(D(2024, 3, 10), 12, D(2025, 3, 10), id="plain-year"),
        pytest.param(D(2024, 1, 31), 1, D(2024, 2, 29), id="jan31+1-leap-clamps-to-feb29"),
        pytest.param(D(2023, 1, 31), 1, D(2023, 2, 28), id="jan31+1-clamps-to-feb28"),
        pytest.param(D(2024, 2, 29), 12, D(2025, 2, 28), id="feb29+12-clamps-to-feb28"),
        pytest.param(D(2024, 2, 29), 48, D(2028, 2, 29), id="feb29+48-keeps-feb29"),
        pytest.param(D(2024, 11, 30), 3, D(2025, 2, 28), id="across-year-end-clamps"),
        pytest.param(D(2024, 12, 15), 1, D(2025, 1, 15), id="december+1"),
        pytest.param(D(2024, 5, 31), 0, D(2024, 5, 31), id="zero-months"),
    ],
)
def test_add_months(start, months, expected):
    assert add_months(start, months) == expected


# --------------------------------------------------------------------------- the table

CASES = [
    # c. return / exchange windows (day 0 = purchase date)
    pytest.param({"on": day(0)}, RETURN, "return_window", id="day0-return"),
    pytest.param({"on": day(7)}, RETURN, "return_window", id="day7-last-return-day"),
    pytest.param({"on": day(8)}, EXCHANGE, "exchange_window", id="day8-first-exchange-day"),
    pytest.param({"on": day(15)}, EXCHANGE, "exchange_window", id="day15-last-exchange-day"),
    pytest.param({"on": day(16)}, FREE, "whole_unit_warranty", id="day16-free-repair"),
    pytest.param({"on": day(16), "is_main_part": True}, FREE, "main_part_warranty", id="day16-main-part"),
    pytest.param({"on": day(7), "is_main_part": True}, RETURN, "return_window", id="day7-main-part-still-return"),
    pytest.param({"on": day(3), "terms": terms(return_days=3, exchange_days=10)}, RETURN, "return_window",
                 id="custom-windows-day3-return"),
    pytest.param({"on": day(4), "terms": terms(return_days=3, exchange_days=10)}, EXCHANGE, "exchange_window",
                 id="custom-windows-day4-exchange"),
    pytest.param({"on": day(10), "terms": terms(return_days=3, exchange_days=10)}, EXCHANGE, "exchange_window",
                 id="custom-windows-day10-exchange"),
    pytest.param({"on": day(11), "terms": terms(return_days=3, exchange_days=10)}, FREE, "whole_unit_warranty",
                 id="custom-windows-day11-free"),
    pytest.param({"on": day(0), "terms": terms(return_days=0, exchange_days=0)}, RETURN, "return_window",
                 id="zero-windows-day0-return"),
    pytest.param({"on": day(1), "terms": terms(return_days=0, exchange_days=0)}, FREE, "whole_unit_warranty",
                 id="zero-windows-day1-free"),
    # f. whole unit period: last day (the corresponding day, inclusive) and the day after
    pytest.param({"on": D(2025, 3, 10)}, FREE, "whole_unit_warranty", id="whole-last-day"),
    pytest.param({"on": D(2025, 3, 11)}, CHARGE, "expired", id="whole-day-after"),
    pytest.param({"purchase_date": D(2025, 1, 15), "on": D(2026, 1, 15)}, FREE, "whole_unit_warranty",
                 id="jan15-purchase-whole-last-day-jan15"),
    pytest.param({"purchase_date": D(2025, 1, 15), "on": D(2026, 1, 16)}, CHARGE, "expired",
                 id="jan15-purchase-whole-day-after-jan16"),
    pytest.param({"purchase_date": D(2024, 1, 31), "on": D(2025, 1, 31)}, FREE, "whole_unit_warranty",
                 id="jan31-purchase-whole-last-day"),
    pytest.param({"purchase_date": D(2024, 1, 31), "on": D(2025, 2, 1)}, CHARGE, "expired",
                 id="jan31-purchase-whole-day-after"),
    pytest.param({"purchase_date": D(2024, 1, 31), "on": D(2024, 2, 29), "terms": terms(whole_unit_months=1)},
                 FREE, "whole_unit_warranty", id="jan31-one-month-clamps-last-day-feb29"),
    pytest.param({"purchase_date": D(2024, 1, 31), "on": D(2024, 3, 1), "terms": terms(whole_unit_months=1)},
                 CHARGE, "expired", id="jan31-one-month-day-after-mar1"),
    pytest.param({"purchase_date": D(2024, 8, 31), "on": D(2025, 2, 28), "terms": terms(whole_unit_months=6)},
                 FREE, "whole_unit_warranty", id="aug31-six-months-clamps-last-day-feb28"),
    pytest.param({"purchase_date": D(2024, 8, 31), "on": D(2025, 3, 1), "terms": terms(whole_unit_months=6)},
                 CHARGE, "expired", id="aug31-six-months-day-after-mar1"),
    pytest.param({"purchase_date": D(2024, 2, 29), "on": D(2025, 2, 28)}, FREE, "whole_unit_warranty",
                 id="feb29-purchase-clamps-whole-last-day-feb28"),
    pytest.param({"purchase_date": D(2024, 2, 29), "on": D(2025, 3, 1)}, CHARGE, "expired",
                 id="feb29-purchase-whole-day-after-mar1"),
    pytest.param({"purchase_date": D(2023, 2, 28), "on": D(2024, 2, 28)}, FREE, "whole_unit_warranty",
                 id="feb28-purchase-whole-last-day-feb28-not-month-end"),
    pytest.param({"purchase_date": D(2023, 2, 28), "on": D(2024, 2, 29)}, CHARGE, "expired",
                 id="feb28-purchase-leap-day-is-day-after"),
    pytest.param({"purchase_date": D(2023, 3, 1), "on": D(2024, 3, 1)}, FREE, "whole_unit_warranty",
                 id="mar1-purchase-across-leap-day-whole-last-day"),
    pytest.param({"purchase_date": D(2023, 3, 1), "on": D(2024, 3, 2)}, CHARGE, "expired",
                 id="mar1-purchase-across-leap-day-whole-day-after"),
    # f. main part period
    pytest.param({"on": D(2027, 3, 10), "is_main_part": True}, FREE, "main_part_warranty", id="main-last-day"),
    pytest.param({"on": D(2027, 3, 11), "is_main_part": True}, CHARGE, "expired", id="main-day-after"),
    pytest.param({"purchase_date": D(2024, 2, 29), "on": D(2027, 2, 28), "is_main_part": True}, FREE,
                 "main_part_warranty", id="feb29-purchase-clamps-main-last-day-feb28"),
    pytest.param({"purchase_date": D(2024, 2, 29), "on": D(2027, 3, 1), "is_main_part": True}, CHARGE,
                 "expired", id="feb29-purchase-main-day-after-mar1"),
    pytest.param({"on": D(2025, 3, 10), "is_main_part": False}, FREE, "whole_unit_warranty",
                 id="whole-last-day-other-part-free"),
    pytest.param({"on": D(2025, 3, 11), "is_main_part": True}, FREE, "main_part_warranty",
                 id="after-whole-main-part-free"),
    pytest.param({"on": D(2025, 3, 11), "is_main_part": False}, CHARGE, "expired",
                 id="after-whole-other-part-chargeable"),
    pytest.param({"on": D(2024, 6, 1), "is_main_part": True}, FREE, "main_part_warranty",
                 id="within-whole-main-part-rule"),
    # per-model override of months (as terms_for produces it)
    pytest.param({"on": D(2030, 3, 10), "terms": terms(whole_unit_months=72, main_part_months=72)}, FREE,
                 "whole_unit_warranty", id="override-72-months-last-day"),
    pytest.param({"on": D(2030, 3, 11), "terms": terms(whole_unit_months=72, main_part_months=72)}, CHARGE,
                 "expired", id="override-72-months-day-after"),
    # d. extension by repair time: a 10-day repair moves both ends by exactly 10 days
    pytest.param({"on": D(2025, 3, 20), "repairs": [repair(D(2024, 5, 1), D(2024, 5, 11))]}, FREE,
                 "whole_unit_warranty", id="extended-whole-last-day"),
    pytest.param({"on": D(2025, 3, 21), "repairs": [repair(D(2024, 5, 1), D(2024, 5, 11))]}, CHARGE,
                 "expired", id="extended-whole-day-after"),
    pytest.param({"on": D(2027, 3, 20), "is_main_part": True, "repairs": [repair(D(2024, 5, 1), D(2024, 5, 11))]},
                 FREE, "main_part_warranty", id="extended-main-last-day"),
    pytest.param({"on": D(2027, 3, 21), "is_main_part": True, "repairs": [repair(D(2024, 5, 1), D(2024, 5, 11))]},
                 CHARGE, "expired", id="extended-main-day-after"),
    pytest.param({"on": D(2025, 3, 11), "repairs": [repair(D(2024, 5, 1), D(2024, 5, 1))]}, CHARGE, "expired",
                 id="same-day-repair-adds-nothing"),
    pytest.param({"on": D(2025, 3, 20), "terms": terms(extend_by_repair_time=False),
                  "repairs": [repair(D(2024, 5, 1), D(2024, 5, 11))]}, CHARGE, "expired",
                 id="extension-off"),
    pytest.param({"on": D(2025, 3, 20), "repairs": [repair(D(2024, 5, 1), D(2024, 5, 11), in_warranty=False)]},
                 CHARGE, "expired", id="chargeable-repair-does-not-extend"),
    pytest.param({"on": D(2025, 3, 15), "repairs": [repair(D(2025, 3, 1), None)]}, FREE, "whole_unit_warranty",
                 id="unfinished-repair-extends-to-on"),
    # d. exchange restarts the repair periods (not the return / exchange windows)
    pytest.param({"on": D(2025, 9, 1), "exchanged_on": D(2024, 9, 1)}, FREE, "whole_unit_warranty",
                 id="exchange-restarts-last-day"),
    pytest.param({"on": D(2025, 9, 2), "exchanged_on": D(2024, 9, 1)}, CHARGE, "expired",
                 id="exchange-restarts-day-after"),
    pytest.param({"on": D(2025, 3, 11), "exchanged_on": D(2024, 9, 1), "terms": terms(exchange_restarts=False)},
                 CHARGE, "expired", id="exchange-restarts-off"),
    pytest.param({"on": D(2025, 3, 10), "exchanged_on": D(2024, 9, 1), "terms": terms(exchange_restarts=False)},
                 FREE, "whole_unit_warranty", id="exchange-restarts-off-last-day"),
    pytest.param({"on": day(10), "exchanged_on": day(5)}, EXCHANGE, "exchange_window",
                 id="windows-count-from-purchase-not-exchange-day10"),
    pytest.param({"on": day(16), "exchanged_on": day(5)}, FREE, "whole_unit_warranty",
                 id="windows-count-from-purchase-not-exchange-day16"),
    pytest.param({"on": D(2025, 9, 2), "exchanged_on": D(2024, 9, 1),
                  "repairs": [repair(D(2024, 5, 1), D(2024, 6, 30))]}, CHARGE, "expired",
                 id="repair-before-exchange-does-not-extend"),
    pytest.param({"on": D(2025, 9, 11), "exchanged_on": D(2024, 9, 1),
                  "repairs": [repair(D(2024, 10, 1), D(2024, 10, 11))]}, FREE, "whole_unit_warranty",
                 id="repair-after-exchange-extends-last-day"),
    pytest.param({"on": D(2025, 9, 12), "exchanged_on": D(2024, 9, 1),
                  "repairs": [repair(D(2024, 10, 1), D(2024, 10, 11))]}, CHARGE, "expired",
                 id="repair-after-exchange-extends-day-after"),
    # e. repeat repair of the same fault
    pytest.param({"on": D(2024, 12, 1), "fault_key": "noise", "repairs": [repair(D(2024, 6, 1), D(2024, 6, 3))]},
                 FREE, "whole_unit_warranty", id="repeat-limit-minus-1-free"),
    pytest.param({"on": D(2024, 12, 1), "fault_key": "noise",
                  "repairs": [repair(D(2024, 6, 1), D(2024, 6, 3)), repair(D(2024, 9, 1), D(2024, 9, 2))]},
                 EXCHANGE, "repeat_repair", id="repeat-at-limit-exchange"),
    pytest.param({"on": D(2024, 12, 1), "fault_key": "noise",
                  "repairs": [repair(D(2024, 6, 1), D(2024, 6, 3)), repair(D(2024, 9, 1), D(2024, 9, 2)),
                              repair(D(2024, 10, 1), D(2024, 10, 2))]},
                 EXCHANGE, "repeat_repair", id="repeat-above-limit-exchange"),
    pytest.param({"on": D(2024, 12, 1), "fault_key": "noise",
                  "repairs": [repair(D(2024, 6, 1), D(2024, 6, 3)), repair(D(2024, 9, 1), D(2024, 9, 2), "leak")]},
                 FREE, "whole_unit_warranty", id="repeat-other-fault-not-counted"),
    pytest.param({"on": D(2024, 12, 1), "fault_key": "noise",
                  "repairs": [repair(D(2024, 6, 1), D(2024, 6, 3)),
                              repair(D(2024, 9, 1), D(2024, 9, 2), in_warranty=False)]},
                 FREE, "whole_unit_warranty", id="repeat-out-of-warranty-not-counted"),
    pytest.param({"on": D(2024, 12, 1), "fault_key": "noise", "exchanged_on": D(2024, 8, 1),
                  "repairs": [repair(D(2024, 6, 1), D(2024, 6, 3)), repair(D(2024, 9, 1), D(2024, 9, 2))]},
                 FREE, "whole_unit_warranty", id="repeat-before-exchange-not-counted"),
    pytest.param({"on": D(2024, 12, 1), "fault_key": "noise", "exchanged_on": D(2024, 8, 1),
                  "terms": terms(exchange_restarts=False),
                  "repairs": [repair(D(2024, 6, 1), D(2024, 6, 3)), repair(D(2024, 9, 1), D(2024, 9, 2))]},
                 EXCHANGE, "repeat_repair", id="repeat-exchange-restarts-off-counts-all"),
    pytest.param({"on": D(2024, 12, 1), "fault_key": None,
                  "repairs": [repair(D(2024, 6, 1), D(2024, 6, 3)), repair(D(2024, 9, 1), D(2024, 9, 2))]},
                 FREE, "whole_unit_warranty", id="repeat-needs-fault-key"),
    pytest.param({"on": D(2024, 12, 1), "fault_key": "noise", "terms": terms(repeat_repair_limit=3),
                  "repairs": [repair(D(2024, 6, 1), D(2024, 6, 3)), repair(D(2024, 9, 1), D(2024, 9, 2))]},
                 FREE, "whole_unit_warranty", id="repeat-limit-3-at-2-free"),
    pytest.param({"on": D(2024, 12, 1), "fault_key": "noise", "terms": terms(repeat_repair_limit=3),
                  "repairs": [repair(D(2024, 6, 1), D(2024, 6, 3)), repair(D(2024, 9, 1), D(2024, 9, 2)),
                              repair(D(2024, 10, 1), D(2024, 10, 2))]},
                 EXCHANGE, "repeat_repair", id="repeat-limit-3-at-3-exchange"),
    pytest.param({"on": day(5), "fault_key": "noise",
                  "repairs": [repair(day(1), day(1)), repair(day(2), day(2))]},
                 RETURN, "return_window", id="repeat-inside-return-window-is-return"),
    pytest.param({"on": D(2025, 3, 11), "fault_key": "noise",
                  "repairs": [repair(D(2024, 6, 1), D(2024, 6, 1)), repair(D(2024, 9, 1), D(2024, 9, 1))]},
                 CHARGE, "expired", id="repeat-after-whole-period-chargeable"),
    pytest.param({"on": D(2025, 3, 10), "fault_key": "noise",
                  "repairs": [repair(D(2024, 6, 1), D(2024, 6, 1)), repair(D(2024, 9, 1), D(2024, 9, 1))]},
                 EXCHANGE, "repeat_repair", id="repeat-on-whole-last-day-exchange"),
    pytest.param({"on": D(2026, 1, 1), "fault_key": "compressor", "is_main_part": True,
                  "repairs": [repair(D(2025, 5, 1), D(2025, 5, 1), "compressor"),
                              repair(D(2025, 9, 1), D(2025, 9, 1), "compressor")]},
                 EXCHANGE, "repeat_repair", id="repeat-main-part-after-whole-exchange"),
    pytest.param({"on": D(2027, 3, 10), "fault_key": "compressor", "is_main_part": True,
                  "repairs": [repair(D(2025, 5, 1), D(2025, 5, 1), "compressor"),
                              repair(D(2025, 9, 1), D(2025, 9, 1), "compressor")]},
                 EXCHANGE, "repeat_repair", id="repeat-main-part-on-main-last-day-exchange"),
    pytest.param({"on": D(2027, 3, 11), "fault_key": "compressor", "is_main_part": True,
                  "repairs": [repair(D(2025, 5, 1), D(2025, 5, 1), "compressor"),
                              repair(D(2025, 9, 1), D(2025, 9, 1), "compressor")]},
                 CHARGE, "expired", id="repeat-main-part-after-main-chargeable"),
    # b. exclusions (they win even inside the return window)
    *[
        pytest.param({"on": day(3), "exclusions": [code]}, CHARGE, f"exclusion:{code}", id=f"exclusion-{code}")
        for code in Exclusion.values
    ],
    pytest.param({"on": day(3), "has_invoice": False}, CHARGE, "exclusion:no_invoice", id="no-invoice"),
    pytest.param({"on": D(2024, 6, 1), "has_invoice": False, "is_main_part": True}, CHARGE,
                 "exclusion:no_invoice", id="no-invoice-main-part"),
    pytest.param({"on": day(3), "has_invoice": False, "terms": terms(exclusions=frozenset({"misuse"}))},
                 RETURN, "return_window", id="no-invoice-not-excluded-by-policy"),
    pytest.param({"on": day(3), "exclusions": ["force_majeure"], "terms": terms(exclusions=frozenset({"misuse"}))},
                 RETURN, "return_window", id="exclusion-not-in-policy-ignored"),
    pytest.param({"on": day(3), "exclusions": ["misuse"], "terms": terms(exclusions=frozenset({"misuse"}))},
                 CHARGE, "exclusion:misuse", id="exclusion-in-restricted-policy"),
    pytest.param({"on": day(3), "exclusions": ["no_such_code"]}, RETURN, "return_window",
                 id="unknown-exclusion-ignored"),
    pytest.param({"on": day(3), "exclusions": ["force_majeure", "misuse"], "has_invoice": False}, CHARGE,
                 "exclusion:misuse", id="several-exclusions-first-in-order"),
]


@pytest.mark.parametrize(("args", "kind", "rule"), CASES)
def test_decide(args, kind, rule):
    args = dict(args)
    t = args.pop("terms", T)
    args.setdefault("purchase_date", P)
    d = decide(t, **args)
    assert (d.kind, d.rule) == (kind, rule)
    assert d.free is (kind != CHARGE)
    assert d.label == kind.label
    assert d.reason


# --------------------------------------------------------------------------- exact numbers

def test_decision_fields_plain():
    d = decide(T, purchase_date=P, on=D(2024, 6, 1))
    assert d == Decision(
        kind=FREE, rule="whole_unit_warranty", reason=d.reason, period_start=P,
        whole_unit_until=D(2025, 3, 10), main_part_until=D(2027, 3, 10),
        days_since_purchase=83, extension_days=0, repeat_count=0,
    )


@pytest.mark.parametrize(
    ("repairs", "on", "extension", "whole", "main"),
    [
        pytest.param([repair(D(2024, 5, 1), D(2024, 5, 11))], D(2024, 6, 1), 10, D(2025, 3, 20), D(2027, 3, 20),
                     id="one-repair-10-days"),
        pytest.param([repair(D(2024, 5, 1), D(2024, 5, 11)), repair(D(2024, 8, 1), D(2024, 8, 4), "leak")],
                     D(2024, 9, 1), 13, D(2025, 3, 23), D(2027, 3, 23), id="two-repairs-add-up"),
        pytest.param([repair(D(2024, 5, 1), D(2024, 5, 1))], D(2024, 6, 1), 0, D(2025, 3, 10), D(2027, 3, 10),
                     id="same-day-0"),
        pytest.param([repair(D(2025, 3, 1), None)], D(2025, 3, 15), 14, D(2025, 3, 24), D(2027, 3, 24),
                     id="unfinished-counts-to-on"),
        pytest.param([repair(D(2025, 3, 1), None)], D(2025, 3, 1), 0, D(2025, 3, 10), D(2027, 3, 10),
                     id="unfinished-started-today-0"),
        pytest.param([repair(D(2024, 5, 1), D(2024, 5, 11), in_warranty=False)], D(2024, 6, 1), 0,
                     D(2025, 3, 10), D(2027, 3, 10), id="chargeable-repair-0"),
        pytest.param([repair(D(2024, 7, 1), D(2024, 7, 5))], D(2024, 6, 1), 0, D(2025, 3, 10), D(2027, 3, 10),
                     id="repair-after-on-0"),
    ],
)
def test_extension_moves_each_end_by_repair_days(repairs, on, extension, whole, main):
    d = decide(T, purchase_date=P, on=on, repairs=repairs)
    assert (d.extension_days, d.whole_unit_until, d.main_part_until) == (extension, whole, main)


def test_extension_off_keeps_ends():
    d = decide(terms(extend_by_repair_time=False), purchase_date=P, on=D(2024, 6, 1),
               repairs=[repair(D(2024, 5, 1), D(2024, 5, 11))])
    assert (d.extension_days, d.whole_unit_until, d.main_part_until) == (0, D(2025, 3, 10), D(2027, 3, 10))


@pytest.mark.parametrize(
    ("restarts", "start", "whole", "main"),
    [
        pytest.param(True, D(2024, 9, 1), D(2025, 9, 1), D(2027, 9, 1), id="restarts"),
        pytest.param(False, P, D(2025, 3, 10), D(2027, 3, 10), id="does-not-restart"),
    ],
)
def test_exchange_period_start(restarts, start, whole, main):
    d = decide(terms(exchange_restarts=restarts), purchase_date=P, on=D(2024, 12, 1), exchanged_on=D(2024, 9, 1))
    assert (d.period_start, d.whole_unit_until, d.main_part_until) == (start, whole, main)
    assert d.days_since_purchase == (D(2024, 12, 1) - P).days


def test_repeat_count_reported():
    reps = [repair(D(2024, 6, 1), D(2024, 6, 3)), repair(D(2024, 9, 1), D(2024, 9, 2)),
            repair(D(2024, 10, 1), D(2024, 10, 2), "leak")]
    assert decide(T, purchase_date=P, on=D(2024, 12, 1), fault_key="noise", repairs=reps).repeat_count == 2
    assert decide(T, purchase_date=P, on=D(2024, 12, 1), fault_key="leak", repairs=reps).repeat_count == 1
    assert decide(T, purchase_date=P, on=D(2024, 12, 1), repairs=reps).repeat_count == 0


# --------------------------------------------------------------------------- reasons

@pytest.mark.parametrize(
    ("args", "text"),
    [
        pytest.param({"on": day(5)}, "购买后第 5 天（7 天内）出现性能故障：可选择退货、换货或修理。", id="return"),
        pytest.param({"on": day(12)}, "购买后第 12 天（15 天内）出现性能故障：可选择换货或修理。", id="exchange"),
        pytest.param({"on": D(2024, 6, 1)}, "整机在三包有效期内（至 2025-03-10）：免费维修。", id="whole"),
        pytest.param({"on": D(2025, 6, 1), "is_main_part": True}, "主要部件在三包有效期内（至 2027-03-10）：免费维修。",
                     id="main"),
        pytest.param({"on": D(2025, 3, 11)}, "整机三包有效期已于 2025-03-10 结束：收费维修。", id="expired-whole"),
        pytest.param({"on": D(2027, 3, 11), "is_main_part": True}, "主要部件三包有效期已于 2027-03-10 结束：收费维修。",
                     id="expired-main"),
        pytest.param({"on": D(2024, 12, 1), "fault_key": "noise",
                      "repairs": [repair(D(2024, 6, 1), D(2024, 6, 3)), repair(D(2024, 9, 1), D(2024, 9, 2))]},
                     "三包期内该故障已修理 2 次仍不能正常使用：可选择免费换货或退货。", id="repeat"),
        pytest.param({"on": day(3), "exclusions": ["misuse"]},
                     "属于不实行三包的情形（使用、维护、保管不当造成损坏）：按收费维修处理。", id="misuse"),
        pytest.param({"on": day(3), "has_invoice": False},
                     "属于不实行三包的情形（无三包凭证或有效发票）：按收费维修处理。", id="no-invoice"),
    ],
)
def test_reason_text(args, text):
    d = decide(T, purchase_date=P, **args)
    assert d.reason == text
    assert isinstance(d.reason, str)


def test_labels():
    assert decide(T, purchase_date=P, on=P).label == "退货"
    assert decide(T, purchase_date=P, on=day(8)).label == "换货"
    assert decide(T, purchase_date=P, on=day(20)).label == "免费维修"
    assert decide(T, purchase_date=P, on=D(2026, 1, 1)).label == "收费维修"


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("on", [pytest.param(day(-1), id="day-before"), pytest.param(day(-400), id="long-before")])
def test_on_before_purchase_is_rejected(on):
    with pytest.raises(ValidationFailed) as exc:
        decide(T, purchase_date=P, on=on)
    assert list(exc.value.errors) == ["on"]
    assert str(exc.value.errors["on"][0]) == "故障日期不能早于购买日期。"


def test_on_before_purchase_wins_over_exclusions():
    with pytest.raises(ValidationFailed):
        decide(T, purchase_date=P, on=day(-1), has_invoice=False, exclusions=["misuse"])


# --------------------------------------------------------------------------- terms_for (unsaved objects, no DB)

def _model(category, **overrides) -> ProductModel:
    return ProductModel(category=category, code="M1", name="M1", **overrides)


def test_terms_for_without_policy_is_default():
    assert terms_for(_model(Category(code="tv", name="彩电"))) == T


def test_terms_for_without_policy_with_override():
    t = terms_for(_model(Category(code="tv", name="彩电"), whole_unit_months=24))
    assert t == terms(whole_unit_months=24)


def test_terms_for_reads_policy():
    cat = Category(code="ac", name="空调")
    WarrantyPolicy(category=cat, return_days=5, exchange_days=10, whole_unit_months=24, main_part_months=48,
                   repeat_repair_limit=3, extend_by_repair_time=False, exchange_restarts=False,
                   exclusions=["misuse", "force_majeure"])
    assert terms_for(_model(cat)) == Terms(5, 10, 24, 48, 3, False, False, frozenset({"misuse", "force_majeure"}))


def test_terms_for_empty_policy_exclusions_means_all():
    cat = Category(code="ac", name="空调")
    WarrantyPolicy(category=cat, exclusions=[])
    assert terms_for(_model(cat)).exclusions == frozenset(Exclusion.values)


@pytest.mark.parametrize(
    ("overrides", "whole", "main"),
    [
        pytest.param({}, 24, 48, id="no-override"),
        pytest.param({"whole_unit_months": 72}, 72, 48, id="whole-override"),
        pytest.param({"main_part_months": 120}, 24, 120, id="main-override"),
        pytest.param({"whole_unit_months": 72, "main_part_months": 72}, 72, 72, id="both-override"),
    ],
)
def test_terms_for_model_override(overrides, whole, main):
    cat = Category(code="ac", name="空调")
    WarrantyPolicy(category=cat, whole_unit_months=24, main_part_months=48)
    t = terms_for(_model(cat, **overrides))
    assert (t.whole_unit_months, t.main_part_months) == (whole, main)
    assert t.return_days == 7


def test_model_override_changes_decision():
    cat = Category(code="ac", name="空调")
    WarrantyPolicy(category=cat)
    t = terms_for(_model(cat, whole_unit_months=72))
    assert decide(t, purchase_date=P, on=D(2030, 3, 10)).rule == "whole_unit_warranty"
    assert decide(t, purchase_date=P, on=D(2030, 3, 11)).rule == "expired"
