"""``unit_warranty``: the 三包 engine applied to a registered unit, end to end."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone, translation

from aftersales.catalog.models import Category, MainPart, ProductModel, WarrantyPolicy
from aftersales.catalog.warranty import DecisionKind, Terms, terms_for
from aftersales.core.errors import ValidationFailed
from aftersales.customers.models import Customer, Unit, UnitRepair
from aftersales.customers.selectors import unit_list_qs
from aftersales.customers.warranty import unit_warranty
from aftersales.org.models import Node, NodeKind

D = dt.date
P = D(2024, 3, 10)  # whole unit to 2025-03-10, main parts to 2027-03-10 inclusive (default terms)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _chinese():
    with translation.override("zh-hans"):
        yield


def _node(kind, code, parent=None) -> Node:
    n = Node.objects.create(kind=kind, code=code, name=code, parent=parent, path="")
    n.path = f"{parent.path if parent else '/'}{n.pk}/"
    Node.objects.filter(pk=n.pk).update(path=n.path)
    return n


@pytest.fixture
def outlet() -> Node:
    hq = _node(NodeKind.HQ, "HQ")
    centre = _node(NodeKind.CENTRE, "C1", hq)
    return _node(NodeKind.OUTLET, "O1", centre)


@pytest.fixture
def customer(outlet) -> Customer:
    return Customer.objects.create(node=outlet, name="张三", phone="13800138000")


@pytest.fixture
def ac_model() -> ProductModel:
    cat = Category.objects.create(code="ac", name="空调")
    WarrantyPolicy.objects.create(category=cat)
    m = ProductModel.objects.create(category=cat, code="KFR-35", name="挂机")
    MainPart.objects.create(model=m, code="compressor", name="压缩机")
    MainPart.objects.create(model=m, code="fan_motor", name="风扇电机")
    return m


def _unit(customer, model, serial="SN001", **kw) -> Unit:
    kw.setdefault("purchase_date", P)
    kw.setdefault("invoice_no", "INV-1")
    return Unit.objects.create(customer=customer, model=model, serial=serial, **kw)


def _load(unit: Unit) -> Unit:
    return unit_list_qs().get(pk=unit.pk)


def test_in_whole_unit_period(customer, ac_model):
    d = unit_warranty(_load(_unit(customer, ac_model)), on=D(2024, 6, 1))
    assert (d.kind, d.rule) == (DecisionKind.FREE_REPAIR, "whole_unit_warranty")
    assert (d.whole_unit_until, d.main_part_until) == (D(2025, 3, 10), D(2027, 3, 10))


@pytest.mark.parametrize(
    ("part_code", "kind", "rule"),
    [
        pytest.param("compressor", DecisionKind.FREE_REPAIR, "main_part_warranty", id="main-part"),
        pytest.param(" fan_motor ", DecisionKind.FREE_REPAIR, "main_part_warranty", id="main-part-padded"),
        pytest.param("remote", DecisionKind.CHARGEABLE, "expired", id="other-part"),
        pytest.param(None, DecisionKind.CHARGEABLE, "expired", id="no-part"),
    ],
)
def test_part_code_after_whole_unit_period(customer, ac_model, part_code, kind, rule):
    d = unit_warranty(_load(_unit(customer, ac_model)), on=D(2025, 3, 11), part_code=part_code)
    assert (d.kind, d.rule) == (kind, rule)


def test_main_part_of_another_model_is_not_main(customer, ac_model):
    other = ProductModel.objects.create(category=ac_model.category, code="KFR-50", name="柜机")
    MainPart.objects.create(model=other, code="inverter", name="变频模块")
    d = unit_warranty(_load(_unit(customer, ac_model)), on=D(2025, 3, 11), part_code="inverter")
    assert d.rule == "expired"


def test_repairs_extend_and_repeat_by_part_code(customer, ac_model):
    unit = _unit(customer, ac_model)
    UnitRepair.objects.create(unit=unit, started_on=D(2024, 5, 1), finished_on=D(2024, 5, 11), fault_key="compressor")
    d = unit_warranty(_load(unit), on=D(2025, 3, 20), part_code="remote")
    assert (d.rule, d.extension_days, d.whole_unit_until) == ("whole_unit_warranty", 10, D(2025, 3, 20))
    assert unit_warranty(_load(unit), on=D(2025, 3, 21), part_code="remote").rule == "expired"

    # one 三包 repair of the compressor: still a free repair; the second one makes it an exchange
    d = unit_warranty(_load(unit), on=D(2025, 6, 1), part_code="compressor")
    assert (d.rule, d.repeat_count) == ("main_part_warranty", 1)
    UnitRepair.objects.create(unit=unit, started_on=D(2025, 4, 1), finished_on=D(2025, 4, 3), fault_key="compressor")
    d = unit_warranty(_load(unit), on=D(2025, 6, 1), part_code="compressor")
    assert (d.kind, d.rule, d.repeat_count) == (DecisionKind.EXCHANGE, "repeat_repair", 2)


def test_explicit_fault_key_wins_over_part_code(customer, ac_model):
    unit = _unit(customer, ac_model)
    for start in (D(2024, 5, 1), D(2024, 7, 1)):
        UnitRepair.objects.create(unit=unit, started_on=start, finished_on=start, fault_key="compressor")
    d = unit_warranty(_load(unit), on=D(2024, 9, 1), part_code="compressor", fault_key="noise")
    assert (d.rule, d.repeat_count) == ("main_part_warranty", 0)
    d = unit_warranty(_load(unit), on=D(2024, 9, 1), fault_key="compressor")
    assert (d.rule, d.repeat_count) == ("repeat_repair", 2)


def test_unfinished_and_out_of_warranty_repairs(customer, ac_model):
    unit = _unit(customer, ac_model)
    UnitRepair.objects.create(unit=unit, started_on=D(2025, 3, 1), finished_on=None, fault_key="noise")
    UnitRepair.objects.create(unit=unit, started_on=D(2024, 6, 1), finished_on=D(2024, 6, 30), fault_key="noise",
                              in_warranty=False)
    d = unit_warranty(_load(unit), on=D(2025, 3, 15))
    assert (d.rule, d.extension_days, d.whole_unit_until) == ("whole_unit_warranty", 14, D(2025, 3, 24))


@pytest.mark.parametrize(
    ("invoice_no", "rule"),
    [
        pytest.param("INV-1", "whole_unit_warranty", id="with-invoice"),
        pytest.param("", "exclusion:no_invoice", id="no-invoice"),
        pytest.param("   ", "exclusion:no_invoice", id="blank-invoice"),
    ],
)
def test_invoice(customer, ac_model, invoice_no, rule):
    d = unit_warranty(_load(_unit(customer, ac_model, invoice_no=invoice_no)), on=D(2024, 6, 1))
    assert d.rule == rule


def test_no_invoice_not_excluded_by_policy(customer, ac_model):
    WarrantyPolicy.objects.filter(category=ac_model.category).update(exclusions=["misuse"])
    unit = _load(_unit(customer, ac_model, invoice_no=""))
    assert unit_warranty(unit, on=D(2024, 6, 1)).rule == "whole_unit_warranty"
    assert unit_warranty(unit, on=D(2024, 6, 1), exclusions=["misuse"]).rule == "exclusion:misuse"


def test_exchange_restarts_period(customer, ac_model):
    unit = _unit(customer, ac_model, exchanged_on=D(2024, 9, 1))
    UnitRepair.objects.create(unit=unit, started_on=D(2024, 5, 1), finished_on=D(2024, 5, 1), fault_key="noise")
    UnitRepair.objects.create(unit=unit, started_on=D(2024, 6, 1), finished_on=D(2024, 6, 1), fault_key="noise")
    d = unit_warranty(_load(unit), on=D(2025, 9, 1), fault_key="noise")
    assert (d.rule, d.period_start, d.repeat_count) == ("whole_unit_warranty", D(2024, 9, 1), 0)
    assert d.whole_unit_until == D(2025, 9, 1)
    assert unit_warranty(_load(unit), on=D(2025, 9, 2)).rule == "expired"


def test_policy_and_model_override(customer, ac_model):
    WarrantyPolicy.objects.filter(category=ac_model.category).update(whole_unit_months=24, main_part_months=48)
    ProductModel.objects.filter(pk=ac_model.pk).update(whole_unit_months=72)
    unit = _load(_unit(customer, ac_model))
    assert terms_for(unit.model).whole_unit_months == 72
    assert terms_for(unit.model).main_part_months == 48
    assert unit_warranty(unit, on=D(2030, 3, 10)).rule == "whole_unit_warranty"
    assert unit_warranty(unit, on=D(2030, 3, 11)).rule == "expired"


def test_category_without_policy_uses_defaults(customer):
    cat = Category.objects.create(code="tv", name="彩电")
    model = ProductModel.objects.create(category=cat, code="TV-55", name="电视")
    unit = _load(_unit(customer, model))
    assert terms_for(unit.model) == Terms.default()
    assert unit_warranty(unit, on=D(2025, 3, 10)).rule == "whole_unit_warranty"
    assert unit_warranty(unit, on=D(2025, 3, 11)).rule == "expired"


def test_on_defaults_to_today(customer, ac_model):
    today = timezone.localdate()
    d = unit_warranty(_load(_unit(customer, ac_model, purchase_date=today)))
    assert (d.kind, d.days_since_purchase) == (DecisionKind.RETURN, 0)
    assert d.reason == "购买后第 0 天（7 天内）出现性能故障：可选择退货、换货或修理。"


def test_on_before_purchase(customer, ac_model):
    with pytest.raises(ValidationFailed) as exc:
        unit_warranty(_load(_unit(customer, ac_model)), on=D(2024, 3, 9))
    assert "on" in exc.value.errors


def test_no_queries_for_prefetched_unit(customer, ac_model, django_assert_num_queries):
    unit = _unit(customer, ac_model)
    UnitRepair.objects.create(unit=unit, started_on=D(2024, 5, 1), finished_on=D(2024, 5, 3), fault_key="compressor")
    UnitRepair.objects.create(unit=unit, started_on=D(2024, 8, 1), finished_on=None, fault_key="compressor")
    loaded = _load(unit)
    with django_assert_num_queries(0):
        d = unit_warranty(loaded, on=D(2024, 9, 1), part_code="compressor", exclusions=["force_majeure"])
        unit_warranty(loaded, on=D(2024, 9, 1), part_code="compressor")
        unit_warranty(loaded, on=D(2024, 9, 1), fault_key="noise")
    assert d.rule == "exclusion:force_majeure"


def test_no_queries_without_policy(customer, django_assert_num_queries):
    cat = Category.objects.create(code="tv", name="彩电")
    model = ProductModel.objects.create(category=cat, code="TV-55", name="电视")
    loaded = _load(_unit(customer, model))
    with django_assert_num_queries(0):
        d = unit_warranty(loaded, on=D(2024, 6, 1), part_code="panel")
    assert d.rule == "whole_unit_warranty"


def test_no_queries_in_a_list(customer, ac_model, django_assert_num_queries):
    for i in range(3):
        u = _unit(customer, ac_model, serial=f"SN10{i}")
        UnitRepair.objects.create(unit=u, started_on=D(2024, 5, 1), finished_on=D(2024, 5, 2), fault_key="noise")
    units = list(unit_list_qs())
    with django_assert_num_queries(0):
        rules = [unit_warranty(u, on=D(2024, 6, 1), part_code="compressor").rule for u in units]
    assert rules == ["main_part_warranty"] * 3
