"""The demo's spare parts (``web.demo_parts``), built in bulk over the demo's orders: the ledger
keeps its contract (``parts.selectors.ledger_problems``), no stock is negative, every part used
went into a completed repair of a unit it fits, serials are where the ledger says, the
replenishment list and the stock-outs have something to show, the audit trail is clean, and the
same seed gives the same data."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import F, Sum
from django.utils import timezone

from aftersales.customers.models import Customer
from aftersales.org.models import Employee, Node, NodeKind, RoleAssignment
from aftersales.org.roles import Role
from aftersales.parts import selectors
from aftersales.parts.models import (
    Movement,
    MovementKind,
    Part,
    PartRequest,
    RequestStatus,
    SerialItem,
    SerialState,
    Stock,
    Transfer,
    TransferLine,
    TransferPurpose,
    TransferSequence,
    TransferStatus,
    Warehouse,
    WarehouseKind,
)
from aftersales.records.audit import audit_verify
from aftersales.records.models import AuditEntry
from aftersales.tickets.models import OrderEvent, OrderType, Status, WorkOrder
from aftersales.web.demo_orders import build_order_history
from aftersales.web.demo_parts import AUDIT_ACTION, CREATE_ACTION, KINDS, build_parts, parts_reset
from aftersales.web.tests.test_demo_orders import WORLD, small_world

pytestmark = pytest.mark.django_db

N = 1500
DONE = (Status.COMPLETED, Status.CALLBACK, Status.CLOSED)


def build(seed: int, now: dt.datetime) -> dict[str, int]:
    """The parts of the orders in the database (the demo command made some without orders)."""
    parts_reset()
    return build_parts(seed=seed, today=timezone.localdate(now), now=now)


@pytest.fixture
def demo():
    small_world()
    now = timezone.now().replace(microsecond=0)
    build_order_history(orders=N, seed=WORLD["seed"], now=now, days=60)
    return SimpleNamespace(now=now, counts=build(WORLD["seed"], now))


def no_negative_stock() -> bool:
    with connection.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {Stock._meta.db_table} WHERE on_hand < 0 OR reserved < 0 OR defective < 0 "
                    f"OR reserved > on_hand")
        rows = cur.fetchone()[0]
        cur.execute(f"SELECT COUNT(*) FROM {Movement._meta.db_table} WHERE on_hand_after < 0 OR reserved_after < 0 "
                    f"OR defective_after < 0 OR reserved_after > on_hand_after")
        return rows == 0 and cur.fetchone()[0] == 0


# ---------------------------------------------------------------- the ledger


def test_ledger_catalog_serials_and_audit(demo):
    """(One demo for several checks: it takes a while to build.)"""
    check_ledger(demo)
    check_catalog_and_warehouses()
    check_serials()
    check_audit()


def test_parts_used_and_replenishment(demo):
    check_parts_used(demo)
    check_replenishment()


def check_ledger(demo):
    assert selectors.ledger_problems() == []
    assert no_negative_stock()
    assert demo.counts["parts.Movement"] == Movement.objects.count() > 1000
    # every kind of movement happens
    kinds = Counter(Movement.objects.values_list("kind", flat=True))
    for kind in (MovementKind.RECEIVE, MovementKind.TRANSFER_OUT, MovementKind.TRANSFER_IN, MovementKind.RESERVE,
                 MovementKind.CONSUME, MovementKind.DEFECTIVE_RETURN, MovementKind.SCRAP, MovementKind.ADJUST):
        assert kinds[kind] > 0, kind
    # stock rows are the sums of their movements (as ledger_problems says), and the last one dates them
    sums = {(w, p): (oh, rs, df) for w, p, oh, rs, df in Movement.objects.values("warehouse_id", "part_id").annotate(
        oh=Sum("on_hand_delta"), rs=Sum("reserved_delta"), df=Sum("defective_delta")).values_list(
        "warehouse_id", "part_id", "oh", "rs", "df")}
    for s in Stock.objects.all():
        assert sums.get((s.warehouse_id, s.part_id), (0, 0, 0)) == (s.on_hand, s.reserved, s.defective)
    last = Movement.objects.order_by("-id").first()
    assert Stock.objects.get(warehouse_id=last.warehouse_id, part_id=last.part_id).updated_at == last.at
    assert not Movement.objects.filter(at__gt=demo.now).exists()
    # count adjustments and scraps say why
    assert not Movement.objects.filter(kind__in=[MovementKind.ADJUST, MovementKind.SCRAP], reason="").exists()


def check_catalog_and_warehouses():
    parts = Part.objects.prefetch_related("fits__main_parts")
    assert 250 <= parts.count() <= 400
    for p in parts:
        fits = list(p.fits.all())
        assert fits and all(m.category_id == p.category_id for m in fits), p.code
        if p.main_part_code:  # the main part of at least one model it fits
            assert any(p.main_part_code in {mp.code for mp in m.main_parts.all()} for m in fits), p.code
    names = set(Part.objects.values_list("name", flat=True))
    for word in ("压缩机", "风扇电机", "主控板", "温控器", "排水泵", "门封条", "加热管", "滚筒轴承", "四通阀", "遥控器"):
        assert any(word in n for n in names), word
    assert Part.objects.filter(serialised=True, main_part_code="COMP").exists()
    assert set(KINDS) == {"AC", "RF", "WM", "TV", "WH", "RH"}

    techs = Employee.objects.filter(user__role_assignments__role=Role.TECHNICIAN)
    assert Warehouse.objects.filter(kind=WarehouseKind.HQ).count() == 1
    assert Warehouse.objects.filter(kind=WarehouseKind.CENTRE).count() == Node.objects.filter(
        kind=NodeKind.CENTRE).count()
    assert Warehouse.objects.filter(kind=WarehouseKind.OUTLET).count() == Node.objects.filter(
        kind=NodeKind.OUTLET).count()
    vans = Warehouse.objects.filter(kind=WarehouseKind.VAN).select_related("holder")
    assert vans.count() == techs.count() == 180
    for v in vans:
        assert v.code == f"VAN-{v.holder.employee_no}" and v.node_id == v.holder.node_id
    # outlets and vans have reorder points; vans carry what their technician uses
    assert Stock.objects.filter(warehouse__kind=WarehouseKind.OUTLET, reorder_point__isnull=False).exists()
    assert Stock.objects.filter(warehouse__kind=WarehouseKind.VAN, reorder_point__isnull=False, on_hand__gt=0).exists()


# ---------------------------------------------------------------- the orders' parts


def check_parts_used(demo):
    reqs = list(PartRequest.objects.select_related("order__unit", "part", "van__holder", "transfer"))
    assert reqs
    fits = set(Part.fits.through.objects.values_list("part_id", "productmodel_id"))
    by_status = Counter(r.status for r in reqs)
    assert by_status[RequestStatus.CONSUMED] > 50
    for r in reqs:
        o = r.order
        assert o.type == OrderType.REPAIR and o.unit_id is not None
        assert (r.part_id, o.unit.model_id) in fits, (o.number, r.part.code)
        assert r.van.holder_id == o.assignee_id
        assert o.created_at <= r.requested_at <= demo.now
        assert r.unit_cost == r.part.unit_cost
        if r.status == RequestStatus.CONSUMED:
            assert o.status in DONE and r.consumed_at == o.completed_at
            assert r.requested_at < r.consumed_at
            assert r.old_returned == r.part.returnable
            assert bool(r.serial) == r.part.serialised
        if r.transfer is not None:
            t = r.transfer
            assert t.order_id == o.pk and t.destination_id == r.van_id and t.source_id == r.source_id
            assert t.purpose == TransferPurpose.ORDER
            if r.status in (RequestStatus.READY, RequestStatus.CONSUMED):
                assert t.status == TransferStatus.RECEIVED and t.received_at <= (r.consumed_at or demo.now)
        else:
            assert r.source_id == r.van_id
        if r.status == RequestStatus.IN_TRANSIT:
            assert o.status == Status.WAITING_PARTS and r.transfer.status != TransferStatus.RECEIVED
        if r.status == RequestStatus.RELEASED:
            assert o.status == Status.CANCELLED
    # the orders that waited for parts got them by an order transfer, before they resumed
    waited = set(OrderEvent.objects.filter(action="wait_parts").values_list("order_id", flat=True))
    fetched = [r for r in reqs if r.order_id in waited and r.status == RequestStatus.CONSUMED]
    assert fetched and all(r.transfer is not None for r in fetched)
    resumed = dict(OrderEvent.objects.filter(action="resume", from_status=Status.WAITING_PARTS,
                                             order_id__in=[r.order_id for r in fetched]).values_list("order_id", "at"))
    assert all(r.transfer.received_at <= resumed[r.order_id] for r in fetched)
    # the reserved quantity of every van is what its ready requests hold
    ready = Counter()
    for r in reqs:
        if r.status == RequestStatus.READY:
            ready[(r.van_id, r.part_id)] += r.qty
    held = {(s.warehouse_id, s.part_id): s.reserved for s in Stock.objects.filter(warehouse__kind=WarehouseKind.VAN,
                                                                                  reserved__gt=0)}
    assert held == dict(ready)


def check_serials():
    serialised = set(Part.objects.filter(serialised=True).values_list("id", flat=True))
    items = Counter()
    for w, p, state in SerialItem.objects.exclude(warehouse=None).values_list("warehouse_id", "part_id", "state"):
        items[(w, p, state)] += 1
    checked = 0
    for s in Stock.objects.filter(part_id__in=serialised):
        good = items[(s.warehouse_id, s.part_id, SerialState.IN_STOCK)] + items[
            (s.warehouse_id, s.part_id, SerialState.RESERVED)]
        assert good == s.on_hand, s
        assert items[(s.warehouse_id, s.part_id, SerialState.RESERVED)] == s.reserved, s
        assert items[(s.warehouse_id, s.part_id, SerialState.DEFECTIVE)] == s.defective, s
        checked += 1
    assert checked
    for r in PartRequest.objects.filter(status=RequestStatus.CONSUMED, part_id__in=serialised):
        item = SerialItem.objects.get(part_id=r.part_id, serial=r.serial)
        if item.state == SerialState.INSTALLED:
            assert item.order_id == r.order_id and item.warehouse_id is None
        else:  # taken out again at a later repair of the same unit
            assert PartRequest.objects.filter(part_id=r.part_id, old_serial=r.serial, order__unit=r.order.unit_id,
                                              consumed_at__gt=r.consumed_at).exists()
        old = SerialItem.objects.get(part_id=r.part_id, serial=r.old_serial)
        assert old.state in (SerialState.DEFECTIVE, SerialState.SCRAPPED)
    # the lines of shipped transfers of serialised parts name their pieces
    for ln in TransferLine.objects.filter(part_id__in=serialised, transfer__status=TransferStatus.RECEIVED,
                                          transfer__defective=False):
        assert len(ln.serials) == ln.qty


def check_replenishment():
    hq_manager = RoleAssignment.objects.filter(role=Role.HQ_MANAGER).first().user
    suggestions = selectors.replenishment_suggestions(hq_manager)
    assert suggestions
    outs = Stock.objects.filter(reorder_point__isnull=False, on_hand=F("reserved"))
    assert outs.exists()
    assert outs.count() < Stock.objects.filter(reorder_point__isnull=False).count() * 0.2  # a few
    purposes = Counter(Transfer.objects.values_list("purpose", "defective"))
    assert purposes[(TransferPurpose.REPLENISH, False)] and purposes[(TransferPurpose.ORDER, False)]
    assert purposes[(TransferPurpose.RETURN, True)]
    # old parts go back to the centres, where they are scrapped after inspection
    returns = Transfer.objects.filter(purpose=TransferPurpose.RETURN).select_related("destination")
    assert {t.destination.kind for t in returns} == {WarehouseKind.CENTRE}
    assert Movement.objects.filter(kind=MovementKind.SCRAP, warehouse__kind=WarehouseKind.CENTRE,
                                   defective_delta__lt=0).exists()
    # numbers as the services give them out, the day's sequence going on after them
    last = dict(TransferSequence.objects.values_list("day", "last"))
    for number in Transfer.objects.values_list("number", flat=True):
        assert re.fullmatch(r"DB\d{13}", number)
        assert last[dt.datetime.strptime(number[2:10], "%Y%m%d").date()] >= int(number[10:])


def check_audit():
    report = audit_verify()
    assert report.ok, report.problems[:5]
    for model, action in ((Part, CREATE_ACTION), (Warehouse, CREATE_ACTION), (Stock, AUDIT_ACTION),
                          (Transfer, AUDIT_ACTION), (PartRequest, AUDIT_ACTION), (SerialItem, AUDIT_ACTION)):
        ids = [str(i) for i in model.objects.values_list("id", flat=True)]
        assert AuditEntry.objects.filter(object_type=model._meta.label_lower, action=action,
                                         object_id__in=ids).count() == len(ids), model
    t = Transfer.objects.exclude(status=TransferStatus.REQUESTED).first()
    e = AuditEntry.objects.get(chain=f"parts.transfer:{t.pk}")
    assert e.after["status"] == t.status and e.after["number"] == t.number
    assert [ln["part_id"] for ln in e.after["lines"]] == list(t.lines.order_by("id").values_list("part_id", flat=True))


# ---------------------------------------------------------------- determinism, reset and the command


def digest() -> str:
    """The parts data without ids: catalog, stock, the ledger per (warehouse, part), requests
    (by their order's arrival and customer) and transfers."""
    part = dict(Part.objects.values_list("id", "code"))
    wh = dict(Warehouse.objects.values_list("id", "code"))
    phone = dict(Customer.objects.values_list("id", "phone"))
    order = {o: (c, phone[cu]) for o, c, cu in WorkOrder.objects.values_list("id", "created_at", "customer_id")}
    h = hashlib.sha256()
    for row in Part.objects.order_by("code").values_list("code", "name", "unit_cost", "main_part_code", "serialised"):
        h.update(repr(row).encode())
    for r in sorted((wh[w], part[p], *rest) for w, p, *rest in Stock.objects.values_list(
            "warehouse_id", "part_id", "on_hand", "reserved", "defective", "reorder_point", "reorder_qty", "updated_at")):
        h.update(repr(r).encode())
    rows = sorted((wh[w], part[p], i, k, a, b, c, oa, at, order.get(o), s, re.sub(r"GD\d{14}|DB\d{13}", "…", reason))
                  for i, w, p, k, a, b, c, oa, at, o, s, reason in Movement.objects.values_list(
                      "id", "warehouse_id", "part_id", "kind", "on_hand_delta", "reserved_delta", "defective_delta",
                      "on_hand_after", "at", "order_id", "serial", "reason"))
    for r in rows:
        h.update(repr(r[:2] + r[3:]).encode())
    for r in sorted((order[o], part[p], q, st, wh[v], wh[s], ra, ca, sn, old) for o, p, q, st, v, s, ra, ca, sn, old in
                    PartRequest.objects.values_list("order_id", "part_id", "qty", "status", "van_id", "source_id",
                                                    "requested_at", "consumed_at", "serial", "old_serial")):
        h.update(repr(r).encode())
    for r in sorted((wh[s], wh[d], pu, st, ca, sa, rc) for s, d, pu, st, ca, sa, rc in Transfer.objects.values_list(
            "source_id", "destination_id", "purpose", "status", "created_at", "shipped_at", "received_at")):
        h.update(repr(r).encode())
    return h.hexdigest()


def test_same_seed_same_parts_and_reset():
    small_world(customers=200, units=300)
    # without orders: the catalog, the warehouses, their opening stock and replenishment only
    assert Part.objects.exists() and Warehouse.objects.exists() and not PartRequest.objects.exists()
    assert selectors.ledger_problems() == []
    now = timezone.now().replace(microsecond=0)
    build_order_history(orders=500, seed=5, now=now, days=40, workers=0)
    build(5, now)
    first = digest()
    top = {m: m.objects.order_by("-id").values_list("id", flat=True).first() for m in (Part, Movement, Transfer)}
    numbers = set(Transfer.objects.values_list("number", flat=True))
    build(5, now)  # the reset keeps the audit trail: ids and numbers are never given out again
    assert digest() == first
    assert all(m.objects.order_by("id").values_list("id", flat=True).first() > top[m] for m in top)
    assert not numbers & set(Transfer.objects.values_list("number", flat=True))
    assert selectors.ledger_problems() == [] and audit_verify().ok
    build(6, now)
    assert digest() != first


def test_demo_command_loads_the_parts_and_resets():
    out = StringIO()
    call_command("demo", stdout=out, stderr=StringIO(), seed=3, customers=200, units=300, orders=400)
    assert "parts.Movement" in out.getvalue() and "parts.PartRequest" in out.getvalue()
    assert Warehouse.objects.filter(kind=WarehouseKind.VAN).count() == 180
    assert PartRequest.objects.filter(status=RequestStatus.CONSUMED).exists()
    assert selectors.ledger_problems() == [] and no_negative_stock()
    assert audit_verify().ok
    call_command("demo", stdout=StringIO(), stderr=StringIO(), seed=3, customers=200, units=300, orders=400,
                 reset=True)
    assert selectors.ledger_problems() == [] and no_negative_stock()
    assert PartRequest.objects.filter(status=RequestStatus.CONSUMED).exists()
    assert audit_verify().ok

