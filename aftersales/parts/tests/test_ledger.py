"""The stock operations one by one: what each writes to the ledger, what each refuses and how."""

from __future__ import annotations

import pytest

from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from aftersales.parts import selectors, services
from aftersales.parts.models import (
    Movement,
    SerialItem,
    SerialState,
    Stock,
    Transfer,
    TransferStatus,
)
from aftersales.records.audit import audit_verify
from aftersales.records.models import AuditEntry

pytestmark = pytest.mark.django_db


def stock(wh, part) -> Stock | None:
    return Stock.objects.filter(warehouse=wh, part=part).first()


def bal(wh, part) -> tuple[int, int, int]:
    s = stock(wh, part)
    return (s.on_hand, s.reserved, s.defective) if s else (0, 0, 0)


def test_receive_writes_one_movement_with_balances_and_an_audit_entry(pw):
    w = pw
    m = services.stock_receive(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=5,
                               unit_cost="12.50", reason="供应商到货")
    assert (m.kind, m.on_hand_delta, m.on_hand_after, m.reserved_after, m.defective_after) == ("receive", 5, 5, 0, 0)
    assert str(m.unit_cost) == "12.50" and m.actor == w.pudong_manager
    services.stock_receive(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=3)
    assert bal(w.wh_pudong, w.cap) == (8, 0, 0)
    last = Movement.objects.order_by("-id").first()
    assert last.on_hand_after == 8 and str(last.unit_cost) == "15.00"  # the part's cost by default
    assert AuditEntry.objects.filter(action="parts.receive").count() == 2
    assert selectors.ledger_problems() == []
    assert audit_verify().ok


def test_receive_of_a_serialised_part_needs_one_new_serial_per_piece(pw):
    w = pw
    kw = dict(user=w.east_manager, warehouse_id=w.wh_east.pk, part_id=w.comp.pk)
    with pytest.raises(ValidationFailed) as e:
        services.stock_receive(**kw, qty=2, serials=["C1"])
    assert "serials" in e.value.errors
    with pytest.raises(ValidationFailed) as e:
        services.stock_receive(**kw, qty=2, serials=["C1", "C1"])
    assert "serials" in e.value.errors
    services.stock_receive(**kw, qty=2, serials=["C1", "C2"])
    assert set(SerialItem.objects.filter(warehouse=w.wh_east, state=SerialState.IN_STOCK)
               .values_list("serial", flat=True)) == {"C1", "C2"}
    with pytest.raises(ValidationFailed) as e:  # already in stock
        services.stock_receive(**kw, qty=1, serials=["C2"])
    assert "C2" in str(e.value.errors["serials"][0])
    with pytest.raises(ValidationFailed) as e:  # a plain part takes no serials
        services.stock_receive(user=w.east_manager, warehouse_id=w.wh_east.pk, part_id=w.cap.pk, qty=1,
                               serials=["X"])
    assert "serials" in e.value.errors
    assert bal(w.wh_east, w.comp) == (2, 0, 0)


@pytest.mark.parametrize("qty", [0, -1, 1.5, "3", True, None, 10**9])
def test_bad_quantities_are_field_errors_and_write_nothing(pw, qty):
    w = pw
    with pytest.raises(ValidationFailed) as e:
        services.stock_receive(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=qty)
    assert e.value.status == 400 and "qty" in e.value.errors
    assert not Movement.objects.exists() and not Stock.objects.exists()


def test_every_bad_field_is_named_at_once(pw):
    w = pw
    with pytest.raises(ValidationFailed) as e:
        services.stock_receive(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_id=999999, qty=-2,
                               unit_cost="-1")
    assert set(e.value.errors) == {"part_id", "qty", "unit_cost"}
    assert "配件不存在" in str(e.value.errors["part_id"][0])


def test_scope_out_of_sight_is_404_in_sight_but_not_managed_is_403(pw):
    w = pw
    with pytest.raises(NotFound):
        services.stock_receive(user=w.tianhe_manager, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=1)
    with pytest.raises(PermissionDenied):  # the agent sees the outlet's stock but does not manage it
        services.stock_receive(user=w.pudong_agent, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=1)
    with pytest.raises(NotFound):
        services.stock_receive(user=w.pudong_manager, warehouse_id=123456789, part_id=w.cap.pk, qty=1)
    # the centre manager manages the outlets of the centre
    services.stock_receive(user=w.east_manager, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=1)


def test_reserve_beyond_available_is_a_conflict_saying_how_many(pw):
    w = pw
    services.stock_receive(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=3)
    services.stock_reserve(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=2)
    with pytest.raises(Conflict) as e:
        services.stock_reserve(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=2)
    assert e.value.status == 409 and "可用数量为 1" in str(e.value.message)
    with pytest.raises(Conflict):
        services.stock_release(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=3)
    services.stock_release(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=2)
    assert bal(w.wh_pudong, w.cap) == (3, 0, 0)
    with pytest.raises(Conflict) as e:  # nothing of it there at all
        services.stock_reserve(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_id=w.belt.pk, qty=1)
    assert "可用数量为 0" in str(e.value.message)
    assert selectors.ledger_problems() == []


def test_adjust_needs_a_reason_and_cannot_go_below_reserved(pw):
    w = pw
    kw = dict(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk)
    services.stock_receive(**kw, qty=5)
    services.stock_reserve(**kw, qty=2)
    with pytest.raises(ValidationFailed) as e:
        services.stock_adjust(**kw, counted=4, reason=" ")
    assert "reason" in e.value.errors
    with pytest.raises(ValidationFailed) as e:
        services.stock_adjust(**kw, counted=1, reason="盘点")
    assert "已预留的 2 件" in str(e.value.errors["counted"][0])
    assert services.stock_adjust(**kw, counted=5, reason="盘点无差异") is None
    m = services.stock_adjust(**kw, counted=3, reason="盘亏 2 件")
    assert (m.kind, m.on_hand_delta, m.on_hand_after, m.reason) == ("adjust", -2, 3, "盘亏 2 件")
    services.stock_adjust(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_id=w.belt.pk, counted=4,
                          reason="盘盈")
    assert bal(w.wh_pudong, w.belt) == (4, 0, 0)
    assert selectors.ledger_problems() == []


def test_scrap_good_and_defective(pw):
    w = pw
    kw = dict(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk)
    services.stock_receive(**kw, qty=3)
    services.stock_reserve(**kw, qty=2)
    with pytest.raises(ValidationFailed):
        services.stock_scrap(**kw, qty=1, reason="")
    with pytest.raises(Conflict):  # only the one not reserved may go
        services.stock_scrap(**kw, qty=2, reason="受潮")
    services.stock_scrap(**kw, qty=1, reason="受潮")
    with pytest.raises(Conflict):
        services.stock_scrap(**kw, qty=1, reason="旧件", defective=True)
    assert bal(w.wh_pudong, w.cap) == (2, 2, 0)
    assert selectors.ledger_problems() == []


def _fill(w, wh, part, qty, serials=()):
    services.stock_receive(user=None, warehouse_id=wh.pk, part_id=part.pk, qty=qty, serials=serials)


def test_transfer_reserves_ships_and_receives(pw):
    w = pw
    _fill(w, w.wh_east, w.cap, 10)
    _fill(w, w.wh_east, w.comp, 2, ["S1", "S2"])
    t = services.transfer_create(user=w.east_manager, source_id=w.wh_east.pk, destination_id=w.wh_pudong.pk,
                                 lines=[{"part_id": w.cap.pk, "qty": 4}, {"part_id": w.comp.pk, "qty": 1,
                                                                           "serials": ["S2"]}])
    assert t.number.startswith("DB") and len(t.number) == 15 and t.status == TransferStatus.REQUESTED
    assert bal(w.wh_east, w.cap) == (10, 4, 0) and bal(w.wh_east, w.comp) == (2, 1, 0)
    assert SerialItem.objects.get(serial="S2").state == SerialState.RESERVED
    with pytest.raises(PermissionDenied):  # the destination's manager does not ship from the centre
        services.transfer_ship(user=w.pudong_manager, transfer_id=t.pk)
    with pytest.raises(Conflict):
        services.transfer_receive(user=w.pudong_manager, transfer_id=t.pk)
    services.transfer_ship(user=w.east_manager, transfer_id=t.pk)
    assert bal(w.wh_east, w.cap) == (6, 0, 0) and bal(w.wh_east, w.comp) == (1, 0, 0)
    assert SerialItem.objects.get(serial="S2").state == SerialState.IN_TRANSIT
    with pytest.raises(Conflict):
        services.transfer_cancel(user=w.east_manager, transfer_id=t.pk, reason="不要了")
    t = services.transfer_receive(user=w.pudong_manager, transfer_id=t.pk)
    assert t.status == TransferStatus.RECEIVED and t.received_at is not None
    assert bal(w.wh_pudong, w.cap) == (4, 0, 0) and bal(w.wh_pudong, w.comp) == (1, 0, 0)
    s2 = SerialItem.objects.get(serial="S2")
    assert (s2.state, s2.warehouse_id) == (SerialState.IN_STOCK, w.wh_pudong.pk)
    kinds = list(Movement.objects.filter(transfer=t).order_by("id").values_list("kind", flat=True))
    assert kinds == ["reserve", "reserve", "transfer_out", "transfer_out", "transfer_in", "transfer_in"]
    assert selectors.ledger_problems() == []
    assert audit_verify().ok


def test_transfer_cancel_releases_the_reservation(pw):
    w = pw
    _fill(w, w.wh_east, w.cap, 5)
    t = services.transfer_create(user=w.east_manager, source_id=w.wh_east.pk, destination_id=w.wh_pudong.pk,
                                 lines=[{"part_id": w.cap.pk, "qty": 5}])
    with pytest.raises(ValidationFailed):
        services.transfer_cancel(user=w.east_manager, transfer_id=t.pk, reason="")
    t = services.transfer_cancel(user=w.pudong_manager, transfer_id=t.pk, reason="已从别处调到")
    assert t.status == TransferStatus.CANCELLED and bal(w.wh_east, w.cap) == (5, 0, 0)
    assert selectors.ledger_problems() == []


def test_transfer_from_a_warehouse_out_of_scope_is_404_naming_source(pw):
    w = pw
    _fill(w, w.wh_tianhe, w.cap, 5)
    with pytest.raises(NotFound) as e:
        services.transfer_create(user=w.pudong_manager, source_id=w.wh_tianhe.pk, destination_id=w.wh_pudong.pk,
                                 lines=[{"part_id": w.cap.pk, "qty": 1}])
    assert e.value.status == 404 and "source_id" in e.value.errors
    assert bal(w.wh_tianhe, w.cap) == (5, 0, 0) and not Transfer.objects.exists()


def test_transfer_bad_lines_are_named(pw):
    w = pw
    _fill(w, w.wh_east, w.cap, 5)
    with pytest.raises(ValidationFailed) as e:
        services.transfer_create(user=w.east_manager, source_id=w.wh_east.pk, destination_id=w.wh_east.pk,
                                 lines=[{"part_id": 99999, "qty": 1}, {"part_id": w.cap.pk, "qty": 0},
                                        {"part_id": w.cap.pk, "qty": 1}, "x"], purpose="gift")
    assert {"destination_id", "lines[0].part_id", "lines[1].qty", "lines[3]", "purpose"} <= set(e.value.errors)
    with pytest.raises(ValidationFailed) as e:
        services.transfer_create(user=w.east_manager, source_id=w.wh_east.pk, destination_id=w.wh_pudong.pk,
                                 lines=[])
    assert "lines" in e.value.errors
    with pytest.raises(Conflict) as e:
        services.transfer_create(user=w.east_manager, source_id=w.wh_east.pk, destination_id=w.wh_pudong.pk,
                                 lines=[{"part_id": w.cap.pk, "qty": 6}])
    assert "可用数量为 5" in str(e.value.message)
    assert not Transfer.objects.exists() and bal(w.wh_east, w.cap) == (5, 0, 0)


def test_transfer_numbers_are_unique_per_day(pw):
    w = pw
    _fill(w, w.wh_east, w.cap, 5)
    numbers = {services.transfer_create(user=w.east_manager, source_id=w.wh_east.pk, destination_id=w.wh_pudong.pk,
                                        lines=[{"part_id": w.cap.pk, "qty": 1}]).number for _i in range(3)}
    assert len(numbers) == 3


def test_ledger_problems_finds_a_tampered_row_and_a_broken_chain(pw):
    w = pw
    _fill(w, w.wh_pudong, w.cap, 5)
    services.stock_reserve(user=None, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=2)
    assert selectors.ledger_problems() == []
    Stock.objects.filter(warehouse=w.wh_pudong, part=w.cap).update(on_hand=6)
    problems = selectors.ledger_problems()
    assert len(problems) == 1 and "sum of movements" in problems[0]
    assert selectors.ledger_problems(warehouse_id=w.wh_east.pk) == []
    Stock.objects.filter(warehouse=w.wh_pudong, part=w.cap).update(on_hand=5)
    Movement.objects.filter(kind="reserve").update(on_hand_after=4)
    problems = selectors.ledger_problems()
    assert any("previous ones" in p for p in problems)


def test_reorder_set_validates_and_clears(pw):
    w = pw
    kw = dict(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk)
    with pytest.raises(ValidationFailed) as e:
        services.reorder_set(**kw, reorder_point=-1, reorder_qty=0)
    assert set(e.value.errors) == {"reorder_point", "reorder_qty"}
    s = services.reorder_set(**kw, reorder_point=2, reorder_qty=10)
    assert (s.reorder_point, s.reorder_qty, s.on_hand) == (2, 10, 0)
    s = services.reorder_set(**kw, reorder_point=None, reorder_qty=None)
    assert s.reorder_point is None
    assert selectors.ledger_problems() == []


def test_a_reservation_held_by_a_transfer_is_not_released_by_hand(pw):
    w = pw
    _fill(w, w.wh_east, w.cap, 5)
    services.stock_reserve(user=None, warehouse_id=w.wh_east.pk, part_id=w.cap.pk, qty=1)
    services.transfer_create(user=w.east_manager, source_id=w.wh_east.pk, destination_id=w.wh_pudong.pk,
                             lines=[{"part_id": w.cap.pk, "qty": 3}])
    assert services.held_reserved(w.wh_east.pk, w.cap.pk) == 3
    with pytest.raises(Conflict) as e:
        services.stock_release(user=w.east_manager, warehouse_id=w.wh_east.pk, part_id=w.cap.pk, qty=2)
    assert "可释放的预留为 1 件" in str(e.value.message)
    services.stock_release(user=w.east_manager, warehouse_id=w.wh_east.pk, part_id=w.cap.pk, qty=1)
    assert bal(w.wh_east, w.cap) == (5, 3, 0)
