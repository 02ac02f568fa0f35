"""The managers' chart counts units per category and warranty state in SQL; the states must
agree with the rule engine (``unit_warranty``) for units without repairs."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from aftersales.catalog.models import Category, ProductModel, WarrantyPolicy
from aftersales.catalog.warranty import decide
from aftersales.customers.models import Unit
from aftersales.customers.selectors import unit_list_qs
from aftersales.customers.warranty import unit_warranty
from aftersales.web import figures

pytestmark = pytest.mark.django_db

OFFSETS = [0, 1, 7, 8, 15, 16, 100, 363, 364, 365, 366, 367, 700, 1094, 1095, 1096, 1097, 2190, 2191, 2192, 4000]
TODAYS = [dt.date(2025, 2, 28), dt.date(2024, 2, 29), dt.date(2025, 3, 31), dt.date(2025, 12, 31),
          dt.date(2025, 8, 15)]


def expected_state(unit, today):
    d = unit_warranty(unit, on=today)
    if d.rule in ("return_window", "exchange_window"):
        return figures.WINDOW
    if today <= d.whole_unit_until:
        return figures.IN_WARRANTY
    return figures.EXPIRED


@pytest.mark.parametrize("today", TODAYS, ids=str)
def test_sql_states_agree_with_the_rule_engine(world, today):
    Unit.objects.all().delete()
    tv = Category.objects.create(code="TV", name="电视")  # no policy: the defaults apply
    WarrantyPolicy.objects.filter(category=world.wm).update(exchange_days=30, return_days=10, whole_unit_months=24,
                                                            main_part_months=48)
    six_years = ProductModel.objects.create(category=world.ac, code="KFR-72LW", name="柜式空调", whole_unit_months=72)
    models = [world.ac_model, world.wm_model, six_years, ProductModel.objects.create(category=tv, code="TV55",
                                                                                     name="电视 55 寸")]
    n = 0
    for m in models:
        for off in OFFSETS:
            purchase = today - dt.timedelta(days=off)
            Unit.objects.create(customer=world.c_pudong, model=m, serial=f"S{n:08d}", purchase_date=purchase,
                                invoice_no="I")
            n += 1
            if off > 400:  # an exchange restarts the whole-unit period
                Unit.objects.create(customer=world.c_pudong, model=m, serial=f"S{n:08d}", purchase_date=purchase,
                                    exchanged_on=today - dt.timedelta(days=off // 3), invoice_no="I")
                n += 1
    expected = Counter()
    for u in unit_list_qs():
        expected[(u.model.category.code, expected_state(u, today))] += 1
    rows = figures.units_by_category_and_state(world.admin, today)
    got = Counter({(r["code"], r["state"]): r["n"] for r in rows})
    assert got == expected


def test_chart_data_shape(world):
    rows = figures.units_by_category_and_state(world.hq_manager, dt.date.today())
    data = figures.chart_data(rows)
    assert data["categories"] == ["空调", "洗衣机"]
    by_key = {s["key"]: s["data"] for s in data["series"]}
    assert by_key[figures.IN_WARRANTY] == [1, 0] and by_key[figures.EXPIRED] == [0, 1]
    assert figures.chart_data(rows, english=True)["categories"] == ["Air conditioner", "Washing machine"]


def test_chart_is_scoped(world):
    rows = figures.units_by_category_and_state(world.pudong_manager, dt.date.today())
    assert [(r["code"], r["n"]) for r in rows] == [("AC", 1)]


@pytest.mark.parametrize("today", [dt.date(2025, 3, 31), dt.date(2024, 2, 29), dt.date(2025, 1, 1)], ids=str)
@pytest.mark.parametrize("months", [1, 12, 13, 36, 72])
def test_last_start_out_of_period(today, months):
    cut = figures.last_start_out_of_period(today, months)
    assert figures._whole_unit_until(cut, months, today) < today
    assert figures._whole_unit_until(cut + dt.timedelta(days=1), months, today) >= today


@pytest.mark.parametrize("exchange_days", [0, 7, 15, 30])
def test_first_purchase_in_window(exchange_days):
    today = dt.date(2025, 3, 1)
    first = figures.first_purchase_in_window(today, exchange_days)
    terms = figures._terms(exchange_days=exchange_days)
    assert decide(terms, purchase_date=first, on=today).rule in figures.WINDOW_RULES
    assert decide(terms, purchase_date=first - dt.timedelta(days=1), on=today).rule not in figures.WINDOW_RULES
