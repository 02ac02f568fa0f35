"""Replenishment between tiers and the stock-out alerts."""

from __future__ import annotations

import pytest

from aftersales.core.errors import Conflict, NotFound, ValidationFailed
from aftersales.notifications.models import Message
from aftersales.parts import selectors, services
from aftersales.parts.models import Stock, Transfer, TransferPurpose

pytestmark = pytest.mark.django_db


def fill(wh, part, qty, serials=()):
    services.stock_receive(user=None, warehouse_id=wh.pk, part_id=part.pk, qty=qty, serials=serials)


def reorder(wh, part, point, qty):
    services.reorder_set(user=None, warehouse_id=wh.pk, part_id=part.pk, reorder_point=point, reorder_qty=qty)


def test_suggestions_per_tier_with_inbound_counted(pw, django_assert_max_num_queries):
    w = pw
    van = services.van_for(w.tech_employee)
    fill(w.wh_pudong, w.cap, 3)
    reorder(w.wh_pudong, w.cap, 2, 10)  # 3 > 2: fine
    reorder(w.wh_pudong, w.belt, 1, 4)  # 0 ≤ 1
    reorder(w.wh_east, w.cap, 5, 2)  # 0 ≤ 5: asks for more than its reorder qty (5 + 1 − 0 = 6)
    reorder(van, w.cap, 1, 2)
    reorder(w.wh_hq, w.cap, 1, 1)  # the top: no supplier
    with django_assert_max_num_queries(3):  # the rows, what is on its way in, the suppliers
        rows = selectors.replenishment_suggestions(None)
    got = {(r.warehouse.code, r.part.code): (r.suggested_qty, r.supplier.code if r.supplier else None) for r in rows}
    assert got == {("WH-PD", "P-BELT-100"): (4, "WH-EAST"), ("WH-EAST", "P-CAP-35"): (6, "WH-HQ"),
                   (van.code, "P-CAP-35"): (2, "WH-PD"), ("WH-HQ", "P-CAP-35"): (2, None)}
    services.stock_reserve(user=None, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=1)  # 2 ≤ 2 now
    codes = {(r.warehouse.code, r.part.code) for r in selectors.replenishment_suggestions(w.pudong_manager)}
    assert codes == {("WH-PD", "P-BELT-100"), ("WH-PD", "P-CAP-35"), (van.code, "P-CAP-35")}
    # scoped: Tianhe sees none of it
    assert selectors.replenishment_suggestions(w.tianhe_manager) == []
    with pytest.raises(NotFound):
        selectors.replenishment_suggestions(w.tianhe_manager, warehouse_id=w.wh_pudong.pk)


def test_replenish_one_transfer_per_supplier_capped_at_what_it_has(pw):
    w = pw
    fill(w.wh_east, w.cap, 3)
    fill(w.wh_east, w.belt, 50)
    reorder(w.wh_pudong, w.cap, 2, 10)
    reorder(w.wh_pudong, w.belt, 1, 4)
    reorder(w.wh_pudong, w.comp, 0, 1)
    ts = services.replenish(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk)
    assert len(ts) == 1
    t = ts[0]
    assert (t.source_id, t.destination_id, t.purpose) == (w.wh_east.pk, w.wh_pudong.pk, TransferPurpose.REPLENISH)
    assert {ln.part.code: ln.qty for ln in t.lines.all()} == {"P-CAP-35": 3, "P-BELT-100": 4}  # no compressor at all
    assert Stock.objects.get(warehouse=w.wh_east, part=w.cap).reserved == 3
    # what is on its way counts: only the compressor is still wanted, and nobody has one
    with pytest.raises(Conflict) as e:
        services.replenish(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk)
    assert "P-COMP-35" in str(e.value.message)
    assert services.replenish(user=w.hangzhou_manager, warehouse_id=w.wh_hangzhou.pk) == []  # nothing to do
    assert selectors.ledger_problems() == []


def test_replenish_chosen_parts_and_bad_input(pw):
    w = pw
    fill(w.wh_east, w.cap, 10)
    fill(w.wh_east, w.belt, 10)
    reorder(w.wh_pudong, w.cap, 2, 5)
    reorder(w.wh_pudong, w.belt, 2, 5)
    with pytest.raises(ValidationFailed):
        services.replenish(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_ids=["x"])
    with pytest.raises(NotFound):
        services.replenish(user=w.tianhe_manager, warehouse_id=w.wh_pudong.pk)
    ts = services.replenish(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_ids=[w.belt.pk])
    assert [ln.part_id for ln in ts[0].lines.all()] == [w.belt.pk]
    assert Transfer.objects.count() == 1


def test_stock_alerts_once_until_restocked(pw):
    w = pw
    fill(w.wh_pudong, w.cap, 3)
    reorder(w.wh_pudong, w.cap, 2, 10)
    reorder(w.wh_pudong, w.belt, 0, 5)  # nothing there: out
    assert services.stock_alerts_sweep() == 1
    msgs = list(Message.objects.filter(event__in=["stock_low", "stock_out"]))
    assert [(m.event, m.user.username) for m in msgs] == [("stock_out", "pudong_manager")]
    assert "P-BELT-100" in msgs[0].body and "浦东网点仓" in msgs[0].body
    assert services.stock_alerts_sweep() == 0  # not repeated
    services.stock_reserve(user=None, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=1)  # 2 ≤ 2: low
    assert services.stock_alerts_sweep() == 1
    assert Message.objects.filter(event="stock_low").count() == 1
    services.stock_reserve(user=None, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=2)  # none free: out
    assert services.stock_alerts_sweep() == 1
    assert Message.objects.filter(event="stock_out").count() == 2
    services.stock_release(user=None, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=3)  # restocked: 3 > 2
    fill(w.wh_pudong, w.belt, 5)
    assert services.stock_alerts_sweep() == 0
    assert set(Stock.objects.values_list("alert_state", flat=True)) == {""}
    services.stock_reserve(user=None, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=1)
    assert services.stock_alerts_sweep() == 1  # fell again: told again
    assert Message.objects.filter(event="stock_low").count() == 2


def test_alerts_go_to_the_nearest_managers(pw):
    w = pw
    reorder(w.wh_south, w.cap, 0, 1)  # nobody manages the south centre itself: headquarters
    assert services.stock_alerts_sweep() == 1
    assert [m.user.username for m in Message.objects.filter(event="stock_out")] == ["hq_manager"]


def test_the_task_runs_the_sweep(pw):
    from aftersales.parts.tasks import stock_alerts_task

    reorder(pw.wh_pudong, pw.cap, 0, 1)
    stock_alerts_task()
    assert Message.objects.filter(event="stock_out").count() == 1
