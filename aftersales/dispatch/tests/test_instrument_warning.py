"""A technician holding an instrument whose calibration has lapsed is warned at dispatch
(R-PART-2): a sentence in the candidate's ``warnings`` (not a blocker), recorded on the order
and told to the technician when dispatched; the ranking stays at a fixed query count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aftersales.assets.models import Tool
from aftersales.dispatch import selectors, services
from aftersales.notifications.models import Message
from aftersales.tickets.models import OrderEvent

from .conftest import new_order, slot

pytestmark = pytest.mark.django_db


def instrument(e, code, days, **kw):
    now = timezone.now()
    return Tool.objects.create(node=e.node, code=code, name=kw.pop("name", "数字万用表"), kind="instrument", holder=e,
                               check_kind="calibration", interval_months=12, state=kw.pop("state", "in_use"),
                               due_on=timezone.localdate() + dt.timedelta(days=days), created_at=now, updated_at=now,
                               **kw)


def by_employee(cands):
    return {c.employee.pk: c for c in cands}


def test_the_candidate_is_warned_not_blocked(dw):
    t = instrument(dw.tech_employee, "GJ-MM-1", -3)
    instrument(dw.tech_employee, "GJ-CM-1", 30, name="钳形电流表")  # still valid
    instrument(dw.tech2, "GJ-MM-2", -1, state="under_repair")  # out of use: not carried
    o = new_order(dw)
    a, b = slot(10)
    cands = by_employee(selectors.candidates(dw.pudong_dispatcher, o.pk, starts_at=a, ends_at=b))
    c = cands[dw.tech_employee.pk]
    assert c.eligible and not c.blockers
    assert len(c.warnings) == 1
    assert "数字万用表" in c.warnings[0] and "GJ-MM-1" in c.warnings[0] and t.due_on.isoformat() in c.warnings[0]
    assert cands[dw.tech2.pk].warnings == []


def test_overdue_on_the_day_of_the_visit(dw):
    instrument(dw.tech_employee, "GJ-MM-1", 1)  # valid through tomorrow
    o = new_order(dw)
    a, b = slot(10, days=2)
    c = by_employee(selectors.candidates(dw.pudong_dispatcher, o.pk, starts_at=a, ends_at=b))[dw.tech_employee.pk]
    assert len(c.warnings) == 1
    c = by_employee(selectors.candidates(dw.pudong_dispatcher, o.pk))[dw.tech_employee.pk]  # today: still valid
    assert c.warnings == []


def test_dispatch_records_the_warning_and_tells_the_technician(dw):
    instrument(dw.tech_employee, "GJ-MM-1", -3)
    o = new_order(dw)
    a, b = slot(10)
    out = services.dispatch_order(user=dw.pudong_dispatcher, order_id=o.pk, employee_id=dw.tech_employee.pk,
                                  starts_at=a, ends_at=b)
    assert out.status == "dispatched" and len(out.dispatch_warnings) == 1
    ev = OrderEvent.objects.filter(order=o, action="note").get()
    assert "GJ-MM-1" in ev.note and ev.data["instrument_warning"][0]["tool"] == "GJ-MM-1"
    o.refresh_from_db()
    assert o.event_count == OrderEvent.objects.filter(order=o).count()
    [m] = Message.objects.filter(event="dispatch_instrument", user=dw.pudong_tech)
    assert o.number in m.body and "GJ-MM-1" in m.body


def test_no_warning_no_note(dw):
    o = new_order(dw)
    a, b = slot(10)
    out = services.dispatch_order(user=dw.pudong_dispatcher, order_id=o.pk, employee_id=dw.tech2.pk,
                                  starts_at=a, ends_at=b)
    assert out.dispatch_warnings == []
    assert not OrderEvent.objects.filter(order=o, action="note").exists()
    assert not Message.objects.filter(event="dispatch_instrument").exists()


def test_the_api_shows_the_warnings(dw, api):
    instrument(dw.tech_employee, "GJ-MM-1", -3)
    o = new_order(dw)
    a, b = slot(10)
    c = api(dw.pudong_dispatcher)
    rows = {r["employee"]["id"]: r for r in c.get(f"/orders/{o.pk}/candidates", {"starts_at": a.isoformat(),
                                                                                  "ends_at": b.isoformat()}).json()}
    assert rows[dw.tech_employee.pk]["eligible"] and len(rows[dw.tech_employee.pk]["warnings"]) == 1
    assert rows[dw.tech2.pk]["warnings"] == []
    r = c.post(f"/orders/{o.pk}/dispatch", {"employee_id": dw.tech_employee.pk, "starts_at": a, "ends_at": b})
    assert r.status_code == 200, r.content
    assert len(r.json()["warnings"]) == 1 and "GJ-MM-1" in r.json()["warnings"][0]


def _count(fn) -> int:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def test_the_ranking_costs_one_query_more_whatever_the_instruments(dw):
    o = new_order(dw)
    a, b = slot(10)

    def run():
        user = type(dw.east_dispatcher).objects.get(pk=dw.east_dispatcher.pk)  # a fresh principal
        return selectors.candidates(user, o.pk, starts_at=a, ends_at=b, limit=50)

    none = _count(run)
    for i, e in enumerate([dw.tech_employee, dw.tech2, dw.tech_wm, dw.hz_tech]):
        instrument(e, f"GJ-A-{i}", -2)
        instrument(e, f"GJ-B-{i}", -40)
    many = _count(run)
    assert none == many
    assert sum(len(c.warnings) for c in run()) == 8
