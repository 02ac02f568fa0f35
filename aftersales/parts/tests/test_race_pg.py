"""The last units under concurrency, on PostgreSQL with real concurrent connections: exactly as
many reservations succeed as there were units, the rest get a 409, nothing goes negative and
the ledger stays whole."""

import pytest
from django.db import connection

from aftersales.conftest import race
from aftersales.core.errors import Conflict
from aftersales.parts import selectors, services
from aftersales.parts.models import Movement, PartRequest, RequestStatus, Stock
from aftersales.records.audit import audit_verify
from aftersales.tickets import workflow
from aftersales.tickets.models import Status, WorkOrder

from .conftest import DEFAULTS, order_in

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

UNITS, WORKERS = 5, 12


def test_many_connections_reserve_the_last_units_exactly_as_many_succeed(pw):
    assert connection.vendor == "postgresql"
    w = pw
    services.stock_receive(user=None, warehouse_id=w.wh_pudong.pk, part_id=w.cap.pk, qty=UNITS)
    results = race(WORKERS, lambda i: services.stock_reserve(user=w.pudong_manager, warehouse_id=w.wh_pudong.pk,
                                                             part_id=w.cap.pk, qty=1))
    oks = [v for kind, v in results if kind == "ok"]
    errs = [v for kind, v in results if kind == "err"]
    assert len(oks) == UNITS and len(errs) == WORKERS - UNITS, results
    assert all(isinstance(e, Conflict) and e.status == 409 for e in errs), errs
    s = Stock.objects.get(warehouse=w.wh_pudong, part=w.cap)
    assert (s.on_hand, s.reserved) == (UNITS, UNITS)
    assert sorted(m.reserved_after for m in oks) == list(range(1, UNITS + 1))  # one after the other
    assert Movement.objects.filter(kind="reserve").count() == UNITS
    assert selectors.ledger_problems() == []
    assert audit_verify().ok


def test_transfers_racing_for_the_same_stock_never_overdraw(pw):
    w = pw
    services.stock_receive(user=None, warehouse_id=w.wh_east.pk, part_id=w.cap.pk, qty=7)
    services.stock_receive(user=None, warehouse_id=w.wh_east.pk, part_id=w.belt.pk, qty=7)
    dests = [w.wh_pudong, w.wh_hangzhou]

    def one(i):  # lines in either order: the rows are still locked in one order
        lines = [{"part_id": w.cap.pk, "qty": 2}, {"part_id": w.belt.pk, "qty": 2}]
        return services.transfer_create(user=w.east_manager, source_id=w.wh_east.pk,
                                        destination_id=dests[i % 2].pk, lines=lines[:: 1 if i % 2 else -1])

    results = race(8, one)
    oks = [v for kind, v in results if kind == "ok"]
    assert len(oks) == 3 and all(isinstance(v, Conflict) for kind, v in results if kind == "err"), results
    for part in (w.cap, w.belt):
        assert Stock.objects.get(warehouse=w.wh_east, part=part).reserved == 6
    assert len({t.number for t in oks}) == 3
    assert selectors.ledger_problems() == []


def _order_of_tech2(w):
    o = order_in(w, "classified")
    data = {**DEFAULTS(w, "dispatch", o), "assignee": w.tech2_employee}
    o = workflow.move(o.pk, "dispatch", user=w.pudong_dispatcher, **data)
    for name in ("accept", "depart", "arrive", "diagnose"):
        o = workflow.move(o.pk, name, user=w.pudong_tech2)
    return o


def test_two_orders_ask_for_the_last_unit_at_once(pw):
    w = pw
    services.stock_receive(user=None, warehouse_id=w.wh_east.pk, part_id=w.cap.pk, qty=1)
    a, b = order_in(w, "diagnosing"), _order_of_tech2(w)
    calls = [(w.pudong_tech, a.pk), (w.pudong_tech2, b.pk)]
    results = race(2, lambda i: services.part_request(user=calls[i][0], order_id=calls[i][1], part_id=w.cap.pk))
    kinds = sorted(kind for kind, _v in results)
    assert kinds == ["err", "ok"], results
    err = next(v for kind, v in results if kind == "err")
    assert isinstance(err, Conflict) and "P-CAP-35" in str(err.message)
    r = PartRequest.objects.get()
    assert r.status == RequestStatus.IN_TRANSIT and r.source_id == w.wh_east.pk
    assert Stock.objects.get(warehouse=w.wh_east, part=w.cap).reserved == 1
    loser = b if r.order_id == a.pk else a
    assert WorkOrder.objects.get(pk=loser.pk).status == Status.DIAGNOSING  # untouched
    assert WorkOrder.objects.get(pk=r.order_id).status == Status.WAITING_PARTS
    assert selectors.ledger_problems() == []
    assert audit_verify().ok


def test_cancel_and_receive_of_one_order_at_once_leave_nothing_reserved(pw):
    w = pw
    services.stock_receive(user=None, warehouse_id=w.wh_east.pk, part_id=w.cap.pk, qty=2)
    o = order_in(w, "diagnosing")
    r = services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.cap.pk)
    services.transfer_ship(user=w.east_manager, transfer_id=r.transfer_id)
    fns = [lambda: workflow.move(o.pk, "cancel", user=w.pudong_agent, reason="客户取消"),
           lambda: services.transfer_receive(user=w.pudong_tech, transfer_id=r.transfer_id)]
    results = race(2, lambda i: fns[i]())
    assert all(kind == "ok" for kind, _v in results), results
    assert WorkOrder.objects.get(pk=o.pk).status == Status.CANCELLED
    assert PartRequest.objects.get(pk=r.pk).status == RequestStatus.RELEASED
    assert not Stock.objects.filter(reserved__gt=0).exists()
    assert selectors.ledger_problems() == []
