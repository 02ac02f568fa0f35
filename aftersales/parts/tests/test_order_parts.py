"""The parts of an order: asked for from the van or the nearest stock, the order waiting for parts
while a transfer runs, consumed at the repair with its serial, the old part returned and sent
back to the centre, and nothing left reserved when the order ends."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from aftersales.parts import selectors, services
from aftersales.parts.models import (
    Movement,
    PartRequest,
    RequestStatus,
    SerialItem,
    SerialState,
    Stock,
    TransferPurpose,
    TransferStatus,
    Warehouse,
    WarehouseKind,
)
from aftersales.records.audit import audit_verify
from aftersales.tickets import workflow
from aftersales.tickets.models import Status, WorkOrder

from .conftest import order_in

pytestmark = pytest.mark.django_db


def bal(wh, part) -> tuple[int, int, int]:
    s = Stock.objects.filter(warehouse=wh, part=part).first()
    return (s.on_hand, s.reserved, s.defective) if s else (0, 0, 0)


def fill(wh, part, qty, serials=()):
    services.stock_receive(user=None, warehouse_id=wh.pk, part_id=part.pk, qty=qty, serials=serials)


def move(w, o, name, **data):
    return workflow.move(o.pk, name, user=w.pudong_tech, **data)


def test_the_van_is_made_on_first_use(pw):
    w = pw
    van = services.van_for(w.tech_employee)
    assert (van.code, van.kind, van.node_id, van.holder_id) == ("VAN-T0001", WarehouseKind.VAN, w.pudong.pk,
                                                               w.tech_employee.pk)
    assert services.van_for(w.tech_employee).pk == van.pk
    assert Warehouse.objects.filter(kind=WarehouseKind.VAN).count() == 1


def test_a_part_in_the_van_is_reserved_there_and_ready(pw):
    w = pw
    van = services.van_for(w.tech_employee)
    fill(van, w.cap, 2)
    o = order_in(w, "diagnosing")
    r = services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.cap.pk, qty=1)
    assert (r.status, r.source_id, r.van_id, r.transfer_id) == (RequestStatus.READY, van.pk, van.pk, None)
    assert r.free is True and r.unit_cost == w.cap.unit_cost and r.warranty_reason
    assert bal(van, w.cap) == (2, 1, 0)
    assert WorkOrder.objects.get(pk=o.pk).status == Status.DIAGNOSING  # no wait: the part is at hand
    m = Movement.objects.get(request=r)
    assert (m.kind, m.order_id, m.reserved_delta) == ("reserve", o.pk, 1)
    assert selectors.order_part_requests(o) == [r]
    assert selectors.ledger_problems() == []


def test_from_the_nearest_stock_with_a_transfer_the_order_waits_and_resumes(pw):
    w = pw
    # Hangzhou (same centre, 165 km), the east centre (Shanghai, 7 km), Tianhe (other centre) have it.
    fill(w.wh_hangzhou, w.comp, 1, ["HZ-1"])
    fill(w.wh_east, w.comp, 2, ["E-1", "E-2"])
    fill(w.wh_tianhe, w.comp, 5, ["T-1", "T-2", "T-3", "T-4", "T-5"])
    fill(w.wh_hq, w.comp, 5, ["H-1", "H-2", "H-3", "H-4", "H-5"])
    o = order_in(w, "diagnosing")
    r = services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.comp.pk)
    van = Warehouse.objects.get(holder=w.tech_employee)
    assert r.status == RequestStatus.IN_TRANSIT and r.source_id == w.wh_east.pk
    t = r.transfer
    assert (t.source_id, t.destination_id, t.purpose, t.order_id) == (w.wh_east.pk, van.pk, TransferPurpose.ORDER,
                                                                     o.pk)
    assert bal(w.wh_east, w.comp) == (2, 1, 0)
    assert t.lines.get().serials == ["E-1"]
    o.refresh_from_db()
    assert o.status == Status.WAITING_PARTS and o.sla_paused_at is not None  # the SLA clock is paused
    assert r.free is True  # a main part within the main-part period

    services.transfer_ship(user=w.east_manager, transfer_id=t.pk)
    assert bal(w.wh_east, w.comp) == (1, 0, 0)
    with pytest.raises(NotFound):  # another technician does not even see this van
        services.transfer_receive(user=w.pudong_tech2, transfer_id=t.pk)
    services.transfer_receive(user=w.pudong_tech, transfer_id=t.pk)  # the van's holder receives
    r.refresh_from_db()
    o.refresh_from_db()
    assert r.status == RequestStatus.READY and bal(van, w.comp) == (1, 1, 0)
    assert o.status == Status.ACCEPTED and o.sla_paused_at is None  # resumed by the system
    assert o.events.order_by("-seq").first().actor_id is None
    e1 = SerialItem.objects.get(serial="E-1")
    assert (e1.warehouse_id, e1.state, e1.order_id) == (van.pk, SerialState.RESERVED, o.pk)

    # back at the customer's: consume with the serial, take the old part back
    for name in ("depart", "arrive", "diagnose"):
        o = move(w, o, name)
    with pytest.raises(ValidationFailed) as e:
        services.part_consume(user=w.pudong_tech, request_id=r.pk, serial="T-1", old_serial="OLD-9")
    assert "serial" in e.value.errors and "T-1" in str(e.value.errors["serial"][0])
    with pytest.raises(ValidationFailed) as e:
        services.part_consume(user=w.pudong_tech, request_id=r.pk, serial="")
    assert "serial" in e.value.errors
    with pytest.raises(PermissionDenied):
        services.part_consume(user=w.pudong_dispatcher, request_id=r.pk, serial="E-1")
    r = services.part_consume(user=w.pudong_tech, request_id=r.pk, serial="E-1", old_serial="OLD-9")
    assert (r.status, r.serial, r.old_serial, r.old_returned) == (RequestStatus.CONSUMED, "E-1", "OLD-9", True)
    assert bal(van, w.comp) == (0, 0, 1)
    e1.refresh_from_db()
    assert (e1.state, e1.warehouse_id, e1.order_id) == (SerialState.INSTALLED, None, o.pk)
    old = SerialItem.objects.get(serial="OLD-9")
    assert (old.state, old.warehouse_id) == (SerialState.DEFECTIVE, van.pk)
    with pytest.raises(Conflict):
        services.part_consume(user=w.pudong_tech, request_id=r.pk, serial="E-1")

    # the old part goes back to the centre
    ret = services.old_parts_return(user=w.pudong_tech, warehouse_id=van.pk)
    assert (ret.source_id, ret.destination_id, ret.defective, ret.purpose) == (van.pk, w.wh_east.pk, True,
                                                                             TransferPurpose.RETURN)
    assert ret.lines.get().serials == ["OLD-9"]
    assert services.old_parts_return(user=w.pudong_tech, warehouse_id=van.pk) is None  # all on its way
    services.transfer_ship(user=w.pudong_manager, transfer_id=ret.pk)
    assert bal(van, w.comp) == (0, 0, 0)
    services.transfer_receive(user=w.east_manager, transfer_id=ret.pk)
    assert bal(w.wh_east, w.comp) == (1, 0, 1)
    old.refresh_from_db()
    assert (old.state, old.warehouse_id) == (SerialState.DEFECTIVE, w.wh_east.pk)
    services.stock_scrap(user=w.east_manager, warehouse_id=w.wh_east.pk, part_id=w.comp.pk, qty=1, reason="旧件报废",
                         defective=True, serials=["OLD-9"])
    assert bal(w.wh_east, w.comp) == (1, 0, 0)
    assert selectors.ledger_problems() == []
    assert audit_verify().ok


def test_nearest_order_own_outlet_then_centre_then_other_centres_then_hq(pw):
    w = pw
    fill(w.wh_hq, w.cap, 5)
    fill(w.wh_tianhe, w.cap, 5)
    o1 = order_in(w, "diagnosing")
    r = services.part_request(user=w.pudong_tech, order_id=o1.pk, part_id=w.cap.pk)
    assert r.source_id == w.wh_tianhe.pk  # another centre before headquarters
    fill(w.wh_hangzhou, w.cap, 5)
    o2 = order_in(w, "diagnosing")
    r = services.part_request(user=w.pudong_tech, order_id=o2.pk, part_id=w.cap.pk)
    assert r.source_id == w.wh_hangzhou.pk  # the same centre first
    fill(w.wh_pudong, w.cap, 5)
    o3 = order_in(w, "diagnosing")
    r = services.part_request(user=w.pudong_tech, order_id=o3.pk, part_id=w.cap.pk, qty=2)
    assert r.source_id == w.wh_pudong.pk  # the own outlet first


def test_availability_nearest_first_in_one_query(pw, django_assert_num_queries):
    w = pw
    for wh in (w.wh_hq, w.wh_tianhe, w.wh_hangzhou, w.wh_east):
        fill(wh, w.cap, 3)
    services.stock_reserve(user=None, warehouse_id=w.wh_east.pk, part_id=w.cap.pk, qty=3)  # none free there
    with django_assert_num_queries(1):
        rows = selectors.availability(w.cap.pk, near_node_id=w.pudong.pk)
    assert [(wh.code, n) for wh, n, _d in rows] == [("WH-HZ", 3), ("WH-HQ", 3), ("WH-TH", 3)]
    assert rows[0].distance_km == pytest.approx(165, abs=15)
    assert [a.warehouse.code for a in selectors.availability(w.cap.pk, user=w.pudong_manager)] == []
    assert [a.warehouse.code for a in selectors.availability(w.cap.pk, user=w.east_manager)] == ["WH-HZ"]


def test_nothing_anywhere_is_a_conflict_naming_the_part(pw):
    w = pw
    o = order_in(w, "diagnosing")
    with pytest.raises(Conflict) as e:
        services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.cap.pk)
    assert e.value.status == 409 and "P-CAP-35" in str(e.value.message)
    assert not PartRequest.objects.exists() and WorkOrder.objects.get(pk=o.pk).status == Status.DIAGNOSING


def test_bad_requests(pw):
    w = pw
    fill(w.wh_pudong, w.belt, 5)
    fill(w.wh_pudong, w.comp, 2, ["X1", "X2"])
    o = order_in(w, "diagnosing")
    with pytest.raises(ValidationFailed) as e:  # a washing-machine belt for an air conditioner
        services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.belt.pk)
    assert "part_id" in e.value.errors and "不适用" in str(e.value.errors["part_id"][0])
    with pytest.raises(ValidationFailed) as e:
        services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=987654, qty=0)
    assert set(e.value.errors) == {"part_id", "qty"}
    with pytest.raises(ValidationFailed) as e:
        services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.comp.pk, qty=2)
    assert "qty" in e.value.errors
    with pytest.raises(NotFound):
        services.part_request(user=w.tianhe_agent, order_id=o.pk, part_id=w.cap.pk)
    with pytest.raises(PermissionDenied):  # sees the order, is not its technician
        services.part_request(user=w.pudong_agent, order_id=o.pk, part_id=w.cap.pk)
    with pytest.raises(NotFound):  # another technician does not see the order
        services.part_request(user=w.pudong_tech2, order_id=o.pk, part_id=w.cap.pk)
    fresh = order_in(w, "classified")
    with pytest.raises(Conflict):
        services.part_request(user=w.pudong_dispatcher, order_id=fresh.pk, part_id=w.cap.pk)
    assert not PartRequest.objects.exists()


def test_the_dispatcher_may_ask_for_the_technician_but_the_order_is_not_moved_for_them(pw):
    w = pw
    fill(w.wh_east, w.cap, 1)
    o = order_in(w, "diagnosing")
    r = services.part_request(user=w.pudong_dispatcher, order_id=o.pk, part_id=w.cap.pk)
    assert r.status == RequestStatus.IN_TRANSIT and r.requested_by == w.pudong_dispatcher
    assert WorkOrder.objects.get(pk=o.pk).status == Status.DIAGNOSING  # wait_parts is the technician's move


def test_warranty_per_part_main_part_period(pw):
    w = pw
    w.u_pudong.purchase_date = timezone.localdate() - dt.timedelta(days=500)  # past 12 months, within 36
    w.u_pudong.save(update_fields=["purchase_date"])
    fill(w.wh_pudong, w.cap, 1)
    fill(w.wh_pudong, w.comp, 1, ["M1"])
    o = order_in(w, "diagnosing")
    cap = services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.cap.pk)
    comp = services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.comp.pk)
    assert cap.free is False and comp.free is True


def test_release_and_cancel_leave_no_reservation(pw):
    w = pw
    van = services.van_for(w.tech_employee)
    fill(van, w.cap, 1)
    fill(w.wh_east, w.comp, 1, ["E-1"])
    o = order_in(w, "diagnosing")
    ready = services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.cap.pk)
    moving = services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.comp.pk)
    assert WorkOrder.objects.get(pk=o.pk).status == Status.WAITING_PARTS
    assert bal(van, w.cap) == (1, 1, 0) and bal(w.wh_east, w.comp) == (1, 1, 0)
    workflow.move(o.pk, "cancel", user=w.pudong_agent, reason="客户不修了")
    ready.refresh_from_db()
    moving.refresh_from_db()
    assert ready.status == moving.status == RequestStatus.RELEASED
    assert moving.transfer.status == TransferStatus.CANCELLED
    assert bal(van, w.cap) == (1, 0, 0) and bal(w.wh_east, w.comp) == (1, 0, 0)
    assert SerialItem.objects.get(serial="E-1").state == SerialState.IN_STOCK
    assert not Stock.objects.filter(reserved__gt=0).exists()
    assert selectors.ledger_problems() == [] and audit_verify().ok


def test_a_shipped_part_of_a_cancelled_order_lands_in_the_van_unreserved(pw):
    w = pw
    fill(w.wh_east, w.cap, 1)
    o = order_in(w, "diagnosing")
    r = services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.cap.pk)
    services.transfer_ship(user=w.east_manager, transfer_id=r.transfer_id)
    workflow.move(o.pk, "cancel", user=w.pudong_agent, reason="客户不修了")
    services.transfer_receive(user=w.pudong_tech, transfer_id=r.transfer_id)
    van = Warehouse.objects.get(holder=w.tech_employee)
    assert bal(van, w.cap) == (1, 0, 0)
    assert PartRequest.objects.get(pk=r.pk).status == RequestStatus.RELEASED
    assert WorkOrder.objects.get(pk=o.pk).status == Status.CANCELLED
    assert selectors.ledger_problems() == []


def test_part_release_by_the_technician_and_complete_releases_the_rest(pw):
    w = pw
    van = services.van_for(w.tech_employee)
    fill(van, w.cap, 3)
    o = order_in(w, "diagnosing")
    a = services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.cap.pk)
    b = services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.cap.pk)
    c = services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.cap.pk)
    assert bal(van, w.cap) == (3, 3, 0)
    services.part_release(user=w.pudong_tech, request_id=a.pk, reason="不需要")
    with pytest.raises(Conflict):
        services.part_release(user=w.pudong_tech, request_id=a.pk)
    services.part_consume(user=w.pudong_tech, request_id=b.pk, old_returned=False)
    assert bal(van, w.cap) == (2, 1, 0)
    o = move(w, o, "complete", diagnosis="电容坏", result="已更换电容")
    c.refresh_from_db()
    assert c.status == RequestStatus.RELEASED and bal(van, w.cap) == (2, 0, 0)
    assert PartRequest.objects.get(pk=b.pk).status == RequestStatus.CONSUMED
    assert selectors.ledger_problems() == []


def test_consume_only_at_the_customer(pw):
    w = pw
    van = services.van_for(w.tech_employee)
    fill(van, w.cap, 1)
    o = order_in(w, "accepted")
    r = services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.cap.pk)
    with pytest.raises(Conflict):
        services.part_consume(user=w.pudong_tech, request_id=r.pk)
    with pytest.raises(NotFound):
        services.part_consume(user=w.pudong_tech, request_id=10**12)


def test_old_parts_return_from_an_outlet_and_refusals(pw):
    w = pw
    with pytest.raises(Conflict):  # a centre scraps its old parts
        services.old_parts_return(user=w.east_manager, warehouse_id=w.wh_east.pk)
    with pytest.raises(NotFound):
        services.old_parts_return(user=w.tianhe_manager, warehouse_id=w.wh_pudong.pk)
    assert services.old_parts_return(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk) is None


def test_availability_in_the_technicians_scope_shows_their_van_not_a_colleagues(pw):
    w = pw
    mine, other = services.van_for(w.tech_employee), services.van_for(w.tech2_employee)
    for wh in (w.wh_pudong, mine, other, w.wh_east):
        fill(wh, w.cap, 1)
    seen = {a.warehouse.code for a in selectors.availability(w.cap.pk, user=w.pudong_tech)}
    assert seen == {"WH-PD", mine.code}
    seen = {a.warehouse.code for a in selectors.availability(w.cap.pk, user=w.pudong_manager)}
    assert seen == {"WH-PD", mine.code, other.code}
    assert len(selectors.availability(w.cap.pk, user=w.admin)) == 4
    assert selectors.availability(w.cap.pk, user=w.trainer) == []


def test_fitting_another_piece_than_the_one_set_aside_frees_that_one(pw):
    w = pw
    fill(w.wh_east, w.comp, 1, ["E-1"])
    van = services.van_for(w.tech_employee)
    o = order_in(w, "diagnosing")
    r = services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.comp.pk)
    services.transfer_ship(user=w.east_manager, transfer_id=r.transfer_id)
    services.transfer_receive(user=w.pudong_tech, transfer_id=r.transfer_id)
    fill(van, w.comp, 1, ["V-9"])
    for name in ("depart", "arrive", "diagnose"):
        o = move(w, o, name)
    services.part_consume(user=w.pudong_tech, request_id=r.pk, serial="V-9", old_returned=False)
    assert SerialItem.objects.get(serial="V-9").state == SerialState.INSTALLED
    e1 = SerialItem.objects.get(serial="E-1")
    assert (e1.state, e1.warehouse_id, e1.order_id) == (SerialState.IN_STOCK, van.pk, None)
    assert bal(van, w.comp) == (1, 0, 0)
