"""The price list: effective dates, changes by closing and adding, no overlaps, and a quote
keeps the prices it copied."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from aftersales.charges import services
from aftersales.charges.models import PriceItem
from aftersales.core.errors import PermissionDenied, ValidationFailed
from aftersales.records.models import AuditEntry

from .conftest import ask_part, order_at

pytestmark = pytest.mark.django_db

TODAY = dt.date(2025, 3, 10)


def labour(w, **kw):
    args = dict(user=w.hq_manager, kind="labour", code="GENERAL", price="90", valid_from=TODAY, today=TODAY)
    args.update(kw)
    return services.price_set(**args)


def test_default_price_list_is_seeded_once(cw):
    assert services.ensure_price_list() == 0  # the fixture seeded it
    visit = services.price_on("visit", None, TODAY)
    assert visit.price == Decimal("50.00") and visit.valid_to is None
    general = services.price_on("labour", "GENERAL", TODAY)
    assert general.name == "一般维修工时" and general.cost_rate == Decimal("40")
    # per category: the air conditioner's compressor labour; the washing machine has none
    assert services.price_on("labour", "COMP", TODAY, category_id=cw.ac.pk).price == Decimal("300.00")
    assert services.price_on("labour", "COMP", TODAY, category_id=cw.wm.pk) is None
    assert services.price_on("labour", "MOTOR", TODAY, category_id=cw.wm.pk).price == Decimal("120.00")


def test_price_change_closes_the_old_item_and_price_on_picks_by_date(cw):
    old = services.price_on("labour", "GENERAL", TODAY)
    new = labour(cw, valid_from=TODAY + dt.timedelta(days=5))
    old.refresh_from_db()
    assert old.valid_to == TODAY + dt.timedelta(days=4) and new.valid_to is None
    assert new.name == "一般维修工时"  # the name is taken over from the code's earlier item
    assert services.price_on("labour", "GENERAL", TODAY + dt.timedelta(days=4)).pk == old.pk
    assert services.price_on("labour", "GENERAL", TODAY + dt.timedelta(days=5)).pk == new.pk
    assert services.price_on("labour", "general", dt.date(2030, 1, 1)).price == Decimal("90.00")
    assert services.price_on("labour", "GENERAL", dt.date(2019, 12, 31)) is None  # before the list began
    assert AuditEntry.objects.filter(action="price.close", object_id=str(old.pk)).exists()
    assert AuditEntry.objects.filter(action="price.set", object_id=str(new.pk)).exists()


def test_a_category_item_wins_over_the_general_one(cw):
    services.price_set(user=cw.hq_manager, kind="visit", category_id=cw.wm.pk, price="60", valid_from=TODAY,
                       today=TODAY)
    assert services.price_on("visit", cw.wm.pk, TODAY).price == Decimal("60.00")
    assert services.price_on("visit", cw.wm, TODAY).price == Decimal("60.00")
    assert services.price_on("visit", cw.ac.pk, TODAY).price == Decimal("50.00")
    assert services.price_on("visit", None, TODAY).price == Decimal("50.00")


def test_parts_without_a_price_sell_at_cost_times_markup(cw, settings):
    assert services.part_price(cw.comp, TODAY).price == Decimal("600.00") and services.part_price(
        cw.comp, TODAY).item is None
    assert services.part_price(cw.cap, TODAY).price == Decimal("18.00")
    settings.PART_PRICE_MARKUP = "1.25"
    assert services.part_price(cw.cap, TODAY).price == Decimal("15.00")
    assert services.markup_price(Decimal("0.30")) == Decimal("1.00")  # at least one yuan
    item = services.price_set(user=cw.hq_manager, kind="part", part_id=cw.comp.pk, price="550", valid_from=TODAY,
                              today=TODAY)
    got = services.part_price(cw.comp, TODAY)
    assert got.price == Decimal("550.00") and got.item == item


def test_overlapping_items_are_refused(cw):
    future = labour(cw, valid_from=TODAY + dt.timedelta(days=30))
    # a price from an earlier date, open-ended, would overlap the one already set for later
    with pytest.raises(ValidationFailed) as e:
        labour(cw, valid_from=TODAY + dt.timedelta(days=10), price="85")
    assert "重叠" in str(e.value.errors["valid_from"][0])
    # a bounded period that ends before it fits (the open item is not closed by a bounded one,
    # so it overlaps that instead)
    with pytest.raises(ValidationFailed):
        labour(cw, valid_from=TODAY + dt.timedelta(days=10), valid_to=TODAY + dt.timedelta(days=12))
    assert PriceItem.objects.filter(key=future.key).count() == 2


def test_same_day_correction_in_place_unless_a_quote_used_it(cw):
    item = labour(cw, valid_from=TODAY + dt.timedelta(days=3))
    fixed = labour(cw, valid_from=TODAY + dt.timedelta(days=3), price="95")
    assert fixed.pk == item.pk and fixed.price == Decimal("95.00")
    assert AuditEntry.objects.filter(action="price.correct", object_id=str(item.pk)).exists()
    # the item of today's quotes cannot be corrected in place
    o = order_at(cw, "diagnosing")
    q = services.quote_create(user=cw.pudong_tech, order_id=o.pk, labour_codes=["GENERAL"])
    used = q.lines.get(kind="labour").price_item
    with pytest.raises(ValidationFailed) as e:
        services.price_set(user=cw.hq_manager, kind="labour", code="GENERAL", price="1", valid_from=used.valid_from,
                           today=used.valid_from)
    assert "已被报价使用" in str(e.value.errors["valid_from"][0])


def test_bad_input_names_every_field(cw):
    with pytest.raises(ValidationFailed) as e:
        services.price_set(user=cw.hq_manager, kind="labour", code="坏 码", price="-5", cost_rate="abc",
                           valid_from=TODAY - dt.timedelta(days=1), valid_to=TODAY - dt.timedelta(days=3),
                           today=TODAY)
    assert set(e.value.errors) == {"code", "price", "cost_rate", "valid_from", "valid_to"}
    with pytest.raises(ValidationFailed) as e:
        services.price_set(user=cw.hq_manager, kind="part", part_id=999999, price="5", valid_from=TODAY,
                           cost_rate="3", today=TODAY)
    assert set(e.value.errors) == {"part_id", "cost_rate"}
    with pytest.raises(ValidationFailed) as e:
        services.price_set(user=cw.hq_manager, kind="nonsense", price="5.001", valid_from="2025-13-01", today=TODAY)
    assert set(e.value.errors) == {"kind", "price", "valid_from"}
    with pytest.raises(ValidationFailed) as e:  # a new labour code needs its name
        labour(cw, code="NEWCODE")
    assert set(e.value.errors) == {"name"}


def test_only_headquarters_edits_the_price_list(cw):
    for user in (cw.east_manager, cw.pudong_agent, cw.pudong_tech, None):
        with pytest.raises(PermissionDenied):
            labour(cw, user=user)
    assert labour(cw, user=cw.admin).price == Decimal("90.00")


def test_a_quote_keeps_its_prices_after_a_change(cw):
    o = order_at(cw, "diagnosing")
    ask_part(cw, o, cw.cap)
    q = services.quote_create(user=cw.pudong_tech, order_id=o.pk, labour_codes=["GENERAL"])
    before = {ln.kind: ln.unit_price for ln in q.lines.all()}
    assert before == {"part": Decimal("18.00"), "labour": Decimal("80.00"), "visit": Decimal("50.00")}
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    services.price_set(user=cw.hq_manager, kind="labour", code="GENERAL", price="120", valid_from=tomorrow)
    services.price_set(user=cw.hq_manager, kind="visit", price="70", valid_from=tomorrow)
    services.price_set(user=cw.hq_manager, kind="part", part_id=cw.cap.pk, price="30", valid_from=tomorrow)
    q.refresh_from_db()
    assert {ln.kind: ln.unit_price for ln in q.lines.all()} == before
    assert q.total == Decimal("148.00")
    # a quote made after the change uses the new prices
    later = timezone.now() + dt.timedelta(days=1)
    q2 = services.quote_create(user=cw.pudong_tech, order_id=o.pk, labour_codes=["GENERAL"], now=later)
    assert {ln.kind: ln.unit_price for ln in q2.lines.all()} == {
        "part": Decimal("30.00"), "labour": Decimal("120.00"), "visit": Decimal("70.00")}
    assert q2.total == Decimal("220.00")
