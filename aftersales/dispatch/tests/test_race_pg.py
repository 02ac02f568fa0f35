"""Two dispatchers racing for one technician on PostgreSQL, with real concurrent connections:
exactly one booking wins, the other gets a 409 naming the winner's order and time."""


import pytest
from django.db import connection

from aftersales.conftest import race
from aftersales.core.errors import Conflict
from aftersales.dispatch import services
from aftersales.dispatch.models import Booking
from aftersales.records.audit import audit_verify
from aftersales.tickets.models import OrderEvent, Status, WorkOrder

from .conftest import at, new_order

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _race(fns):
    return race(len(fns), lambda i: fns[i]())


# (slot of the first dispatcher, slot of the second): the same slot, and overlapping ones
SLOTS = [
    ((at(10), at(12)), (at(10), at(12))),
    ((at(13), at(15)), (at(14), at(16))),
    ((at(8), at(9)), (at(8, 30), at(8, 45))),
    ((at(16), at(18)), (at(15), at(19))),
    ((at(10, days=2), at(12, days=2)), (at(11, 59, days=2), at(13, days=2))),
]


@pytest.mark.parametrize("round_", range(len(SLOTS)))
def test_two_dispatchers_one_technician_one_wins(dw, round_):
    assert connection.vendor == "postgresql"
    s1, s2 = SLOTS[round_]
    o1, o2 = new_order(dw), new_order(dw)
    users = (dw.pudong_dispatcher, dw.east_dispatcher)  # two dispatchers, two sessions

    def book(user, order, s):
        return lambda: services.dispatch_order(user=user, order_id=order.pk, employee_id=dw.tech_employee.pk,
                                               starts_at=s[0], ends_at=s[1])

    results = _race([book(users[0], o1, s1), book(users[1], o2, s2)])
    oks = [r for kind, r in results if kind == "ok"]
    errs = [r for kind, r in results if kind == "err"]
    assert len(oks) == 1 and len(errs) == 1, results
    [winner], [err] = oks, errs
    assert isinstance(err, Conflict) and err.status == 409, err
    assert winner.number in str(err.message) and "李师傅" in str(err.message) and "不能重复预约" in str(err.message)
    loser = o2 if winner.pk == o1.pk else o1
    assert list(Booking.objects.filter(active=True).values_list("order_id", flat=True)) == [winner.pk]
    assert WorkOrder.objects.get(pk=winner.pk).status == Status.DISPATCHED
    assert WorkOrder.objects.get(pk=loser.pk).status == Status.CLASSIFIED
    assert not OrderEvent.objects.filter(order_id=loser.pk, action="dispatch").exists()
    assert audit_verify().ok


def test_many_dispatchers_many_orders_no_overlap_ever(dw):
    """Eight dispatches of one technician at once into four slots, two per slot: one per slot
    wins, and no two active bookings of the technician overlap."""
    orders = [new_order(dw) for _ in range(8)]
    slots = [(at(8 + 2 * k), at(10 + 2 * k)) for k in range(4)]
    users = (dw.pudong_dispatcher, dw.east_dispatcher)

    def book(i):
        s = slots[i % 4]
        return lambda: services.dispatch_order(user=users[i % 2], order_id=orders[i].pk,
                                               employee_id=dw.tech_employee.pk, starts_at=s[0], ends_at=s[1])

    results = _race([book(i) for i in range(8)])
    assert sum(1 for kind, _r in results if kind == "ok") == 4, results
    assert all(isinstance(r, Conflict) for kind, r in results if kind == "err"), results
    booked = sorted(Booking.objects.filter(employee=dw.tech_employee, active=True).values_list("starts_at", "ends_at"))
    assert booked == slots
    assert WorkOrder.objects.filter(status=Status.DISPATCHED).count() == 4
    assert audit_verify().ok
