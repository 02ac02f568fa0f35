"""``invariants.order_problems`` finds each kind of corruption of an order's history, and
nothing in histories written by the services."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aftersales.tickets import invariants, services, workflow
from aftersales.tickets.models import OrderEvent, Status, WorkOrder

from .order_fixtures import *  # noqa: F403
from .order_fixtures import PATHS, make_order, walk

pytestmark = pytest.mark.usefixtures("quiet")


@pytest.fixture
def orders(team):
    """One order in each status, made through the services, plus notes and a customer's own."""
    w = team
    out = {status: walk(w, make_order(w), path) for status, path in PATHS.items()}
    services.order_note(user=w.pudong_agent, order_id=out["en_route"].pk, note="已电话告知客户技师出发")
    out["own"] = walk(w, make_order(w, user=w.customer_user, channel="web"), ["classify"])
    c = make_order(w, type="consultation", unit_id=None, fault_category=None)
    out["answered"] = workflow.move(c.pk, "answer", user=w.pudong_agent, result="已答复")
    return out


def problems_of(o) -> list[str]:
    return invariants.order_problems([o.pk])


def test_histories_written_by_the_services_are_sound(orders):
    assert invariants.order_problems() == []
    assert invariants.order_problems([o.pk for o in orders.values()]) == []


def test_a_gap_in_the_sequence(orders):
    o = orders["accepted"]
    OrderEvent.objects.filter(order=o, seq=2).delete()
    found = problems_of(o)
    assert any("without gaps (missing [2])" in p for p in found), found
    assert any("event_count" in p for p in found), found
    assert all(p.startswith(o.number) for p in found)


def test_a_lost_last_event_and_a_wrong_count(orders):
    o = orders["dispatched"]
    WorkOrder.objects.filter(pk=o.pk).update(event_count=o.event_count + 1)
    assert any("event_count" in p for p in problems_of(o))


def test_a_first_event_that_is_not_the_creation(orders):
    o = orders["classified"]
    OrderEvent.objects.filter(order=o, seq=1).update(action="note", from_status="received")
    assert any("first event" in p for p in problems_of(o))


def test_a_move_from_the_wrong_status(orders):
    o = orders["on_site"]
    OrderEvent.objects.filter(order=o, action="depart").update(from_status="dispatched")
    found = problems_of(o)
    assert any("depart from dispatched but the status was accepted" in p for p in found), found
    assert any("not allowed from dispatched" in p for p in found), found


def test_an_illegal_transition(orders):
    o = orders["accepted"]
    OrderEvent.objects.filter(order=o, action="accept").update(action="close")
    assert any("close is not allowed from dispatched" in p for p in problems_of(o))


def test_a_move_that_leads_elsewhere_than_the_table_says(orders):
    o = orders["en_route"]
    OrderEvent.objects.filter(order=o, action="depart").update(to_status="on_site")
    WorkOrder.objects.filter(pk=o.pk).update(status="on_site")
    assert any("leads to en_route, not on_site" in p for p in problems_of(o))


def test_a_move_not_for_the_order_type(orders):
    o = orders["closed"]
    OrderEvent.objects.filter(order=o, action="close").update(action="answer", from_status="callback")
    found = problems_of(o)
    assert any("answer is not allowed from callback" in p for p in found), found
    o = orders["answered"]
    WorkOrder.objects.filter(pk=o.pk).update(type="repair")
    OrderEvent.objects.filter(order=o, seq=1).update(data={"type": "repair", "owner": o.owner_id})
    assert any("not allowed for a repair order" in p for p in problems_of(o))


def test_an_event_that_is_not_a_move_but_changes_the_status(orders):
    o = orders["en_route"]
    note = OrderEvent.objects.get(order=o, action="note")
    OrderEvent.objects.filter(pk=note.pk).update(to_status="on_site")
    assert any("note changes the status" in p for p in problems_of(o))
    # events of the other apps (a survey sent …) are welcome as long as they keep the status
    OrderEvent.objects.filter(pk=note.pk).update(action="survey", to_status="en_route")
    assert problems_of(o) == []
    OrderEvent.objects.filter(pk=note.pk).update(from_status="accepted")
    assert any("survey changes the status accepted→en_route" in p for p in problems_of(o))


def test_a_status_the_history_does_not_end_in(orders):
    o = orders["repairing"]
    WorkOrder.objects.filter(pk=o.pk).update(status=Status.COMPLETED, completed_at=timezone.now())
    assert any("history ends in repairing" in p for p in problems_of(o))


def test_a_missing_technician(orders):
    o = orders["accepted"]
    WorkOrder.objects.filter(pk=o.pk).update(assignee=None)
    assert any("without a technician" in p for p in problems_of(o))


def test_missing_or_stray_closing_times(orders):
    WorkOrder.objects.filter(pk=orders["closed"].pk).update(closed_at=None)
    WorkOrder.objects.filter(pk=orders["callback"].pk).update(completed_at=None)
    WorkOrder.objects.filter(pk=orders["received"].pk).update(closed_at=timezone.now())
    assert any("without closed_at" in p for p in problems_of(orders["closed"]))
    assert any("without completed_at" in p for p in problems_of(orders["callback"]))
    assert any("with closed_at" in p for p in problems_of(orders["received"]))
    assert problems_of(orders["answered"]) == []  # answered at once: closed, never completed


def test_counters_that_do_not_match_the_history(orders):
    o = orders["reopened"]
    WorkOrder.objects.filter(pk=o.pk).update(reopen_count=0, escalation_level=2, visit_count=3)
    found = problems_of(o)
    assert any("reopen_count 0 but 1 reopen events" in p for p in found), found
    assert any("escalation_level 2 but 0 escalate events" in p for p in found), found
    assert any("visit_count 3 but 1 arrive events" in p for p in found), found


def test_a_changed_owner(team, orders):
    o = orders["classified"]
    WorkOrder.objects.filter(pk=o.pk).update(owner=team.hangzhou_agent)
    assert any("owner" in p for p in problems_of(o))
    own = orders["own"]  # filed by the customer: the first agent to classify it owns it
    assert problems_of(own) == []
    WorkOrder.objects.filter(pk=own.pk).update(owner=None)
    assert any("owner None but the first contact" in p for p in problems_of(own))


def test_orders_without_owner_data_in_the_creation_fall_back_to_its_actor(orders):
    """Histories built in bulk need not repeat the owner in the creation event's data."""
    o = orders["closed"]
    e = OrderEvent.objects.get(order=o, seq=1)
    OrderEvent.objects.filter(pk=e.pk).update(data={k: v for k, v in e.data.items() if k != "owner"})
    assert problems_of(o) == []


def test_limit_and_fixed_query_count(team, orders):
    for o in list(orders.values())[:4]:
        WorkOrder.objects.filter(pk=o.pk).update(event_count=99)
    assert len(invariants.order_problems(limit=2)) == 2
    with CaptureQueriesContext(connection) as few:
        invariants.order_problems([o.pk for o in list(orders.values())[:2]])
    with CaptureQueriesContext(connection) as many:
        invariants.order_problems()
    assert len(few) == 3 and len(many) == 4  # a chunk: orders, events, their data; and the end
