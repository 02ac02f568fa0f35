"""The workflow table, move by move: where each leads from each of its sources, who may make it
(role by role), what it needs, what happens when the status does not allow it, and the rules
that cut across (the owner stays, reopen, the consultation answered at once)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aftersales.core.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from aftersales.customers.models import UnitRepair
from aftersales.org.models import RoleAssignment
from aftersales.org.roles import Role
from aftersales.records.audit import audit_verify
from aftersales.records.models import AuditEntry
from aftersales.tickets import invariants, selectors, workflow
from aftersales.tickets.models import OrderEvent, Status, WorkOrder
from aftersales.tickets.workflow import MOVES

from .order_fixtures import *  # noqa: F403
from .order_fixtures import DEFAULTS, PATHS, actor_for, make_order, walk, window

pytestmark = pytest.mark.usefixtures("quiet")

PAIRS = [(m.name, s) for m in MOVES.values() for s in sorted(m.sources) if s in PATHS]


def _outcome(fn) -> int:
    try:
        fn()
    except DomainError as e:
        return e.status
    return 200


def at(w, status: str, **kw) -> WorkOrder:
    return walk(w, make_order(w, **kw), PATHS[status])


# ---------------------------------------------------------------- the table

def test_every_status_is_reachable_and_every_move_has_sources():
    assert set(PATHS) == set(Status.values)
    assert all(m.sources for m in MOVES.values())
    assert {s for m in MOVES.values() for s in m.sources} | {Status.RECEIVED} == set(Status.values) - {
        Status.CANCELLED}


@pytest.mark.parametrize(("name", "source"), PAIRS, ids=[f"{n}-from-{s}" for n, s in PAIRS])
def test_each_move_from_each_source_leads_to_its_target(team, name, source):
    w = team
    kind = "consultation" if MOVES[name].types else "repair"
    extra = {"unit_id": None, "fault_category": None, "problem": "请问空调怎么设置定时"} if kind == "consultation" else {}
    if kind == "consultation" and source not in ("received", "classified"):
        path = ["answer", "reopen"] if source == "reopened" else None
        if path is None:
            pytest.skip("a consultation does not reach this status")
        o = walk(w, make_order(w, type=kind, **extra), path)
    else:
        o = at(w, source, type=kind, **extra)
    before_events, before_audit = o.event_count, AuditEntry.objects.filter(action=f"order.{name}").count()
    user = actor_for(w, name, o)
    o = workflow.move(o.pk, name, user=user, note="测试", **DEFAULTS(w, name, o))
    assert o.status == MOVES[name].leads_to(source)
    o.refresh_from_db()
    assert o.status == MOVES[name].leads_to(source) and o.event_count == before_events + 1
    e = OrderEvent.objects.get(order=o, seq=o.event_count)
    assert (e.action, e.from_status, e.to_status, e.actor_id, e.note) == (name, source, o.status, user.pk, "测试")
    assert AuditEntry.objects.filter(action=f"order.{name}").count() == before_audit + 1
    assert invariants.order_problems([o.pk]) == []


@pytest.mark.parametrize("status", [s for s in Status.values])
def test_a_move_the_status_does_not_allow_is_409_with_the_reason(team, status):
    w = team
    o = at(w, status)
    for m in MOVES.values():
        if status in m.sources:
            continue
        user = w.admin if workflow.ASSIGNEE not in m.who else actor_for(w, m.name, o)
        if workflow.ASSIGNEE in m.who and o.assignee_id is None:
            continue  # nobody may: 403 (see the role tests)
        with pytest.raises(Conflict) as e:
            workflow.move(o.pk, m.name, user=user, **DEFAULTS(w, m.name, o))
        assert e.value.code == "illegal_move"
        assert o.get_status_display() in str(e.value.message) and str(m.label) in str(e.value.message)
    o.refresh_from_db()
    assert o.status == status
    assert invariants.order_problems([o.pk]) == []


# ---------------------------------------------------------------- who may

# What each actor is, for an order of Pudong assigned to pudong_tech:
#   sees: may see the order at all; perms: the permissions held over Pudong.
H, D, A = workflow.H, workflow.D, workflow.ASSIGNEE
ACTORS = {
    "admin": (True, {H, D}),
    "hq_manager": (True, {H, D}),
    "east_manager": (True, {H, D}),
    "pudong_manager": (True, {H, D}),
    "pudong_agent": (True, {H}),
    "pudong_dispatcher": (True, {D}),
    "pudong_tech": (True, {A}),  # the order's technician
    "quality": (True, set()),  # sees (order.view over the east), may make no move
    "customer_user": (True, set()),  # the order's customer
    "pudong_tech2": (False, set()),  # a technician the order is not assigned to
    "hangzhou_agent": (False, set()),  # another outlet
    "tianhe_agent": (False, set()),
    "customer_user_tianhe": (False, set()),
    "trainer": (False, set()),
    "nobody": (False, set()),
}
# A source from which each move is tried (one where the technician is assigned, if any).
SOURCE = {"classify": "received", "answer": "received", "dispatch": "classified", "reassign": "dispatched",
          "accept": "dispatched", "decline": "dispatched", "depart": "accepted", "arrive": "en_route",
          "diagnose": "on_site", "wait_parts": "diagnosing", "wait_customer": "diagnosing",
          "resume": "waiting_parts", "repair": "diagnosing", "complete": "repairing", "callback": "completed",
          "close": "callback", "reopen": "closed", "cancel": "accepted", "transfer": "dispatched",
          "escalate": "en_route"}


def expected(actor: str, m, order) -> int:
    sees, perms = ACTORS[actor]
    if actor == "pudong_tech" and order.assignee_id is None:
        sees = False
    if not sees:
        return 404
    return 200 if perms & set(m.who) else 403


@pytest.mark.parametrize("name", list(MOVES))
def test_who_may_make_each_move_role_by_role(team, name):
    w = team
    m = MOVES[name]
    kind = "consultation" if m.types else "repair"
    extra = {"unit_id": None, "fault_category": None} if kind == "consultation" else {}
    refused = at(w, SOURCE[name], type=kind, **extra)
    for actor in ACTORS:
        want = expected(actor, m, refused)
        user = getattr(w, actor)
        if want == 200:
            o = at(w, SOURCE[name], type=kind, **extra)
            got = _outcome(lambda o=o, user=user: workflow.move(o.pk, name, user=user, **DEFAULTS(w, name, o)))
        else:
            got = _outcome(lambda user=user: workflow.move(refused.pk, name, user=user, **DEFAULTS(w, name, refused)))
        assert got == want, f"{name} by {actor}: {got}, expected {want}"
    refused.refresh_from_db()
    assert refused.status == SOURCE[name]
    assert OrderEvent.objects.filter(order=refused).count() == refused.event_count


def test_out_of_scope_is_404_before_anything_else(team):
    """Whatever the move, the status or the fields: a user who may not see the order learns nothing."""
    w = team
    o = at(w, "closed")
    for name in MOVES:
        for user in (w.hangzhou_agent, w.tianhe_agent, w.pudong_tech2, w.customer_user_tianhe, w.nobody):
            with pytest.raises(NotFound):
                workflow.move(o.pk, name, user=user)
    with pytest.raises(NotFound):
        workflow.move(10**9, "classify", user=w.admin, type="repair", priority="normal")
    with pytest.raises(NotFound):
        workflow.move(o.pk, "no_such_move", user=w.admin)


def test_the_customer_sees_their_order_but_may_make_no_move(team):
    w = team
    o = at(w, "callback")
    assert workflow.can_see(w.customer_user, o) and workflow.allowed_moves(w.customer_user, o) == []
    for name in ("close", "reopen", "cancel", "escalate"):
        with pytest.raises(PermissionDenied):
            workflow.move(o.pk, name, user=w.customer_user, reason="我不满意")


def test_the_technician_may_make_only_the_technician_moves(team):
    w = team
    o = at(w, "on_site")
    assert {m.name for m in workflow.allowed_moves(w.pudong_tech, o)} == {
        "diagnose", "wait_customer", "repair", "complete"}
    for name in ("cancel", "escalate", "transfer"):
        with pytest.raises(PermissionDenied):
            workflow.move(o.pk, name, user=w.pudong_tech, **DEFAULTS(w, name, o))


def test_a_technician_who_sees_the_order_but_is_not_its_technician_is_refused(team):
    """A technician also on the outlet's desk (agent role) sees every order there: the
    technician's moves stay the assigned technician's (403), the desk's moves are theirs."""
    w = team
    RoleAssignment.objects.create(user=w.pudong_tech2, role=Role.AGENT, node=w.pudong)
    w.pudong_tech2 = type(w.pudong_tech2).objects.get(pk=w.pudong_tech2.pk)  # roles read afresh
    o = at(w, "accepted")
    assert workflow.can_see(w.pudong_tech2, o)
    with pytest.raises(PermissionDenied):
        workflow.move(o.pk, "depart", user=w.pudong_tech2)
    assert workflow.move(o.pk, "escalate", user=w.pudong_tech2, reason="客户催").status == Status.ACCEPTED


def test_system_moves_need_no_user_and_the_others_refuse_it(team):
    w = team
    o = at(w, "en_route")
    assert workflow.move(o.pk, "escalate", user=None, reason="响应超时").escalation_level == 1
    with pytest.raises(PermissionDenied):
        workflow.move(o.pk, "cancel", user=None, reason="系统")
    o = workflow.move(at(w, "completed").pk, "callback", user=None)
    o = workflow.move(o.pk, "close", user=None)
    assert o.status == Status.CLOSED and OrderEvent.objects.get(order=o, seq=o.event_count).actor_label == "system"


def test_a_technician_who_declined_or_was_replaced_no_longer_sees_the_order(team):
    w = team
    o = at(w, "dispatched")
    workflow.move(o.pk, "reassign", user=w.pudong_dispatcher, **DEFAULTS(w, "reassign", o))
    with pytest.raises(NotFound):
        workflow.move(o.pk, "accept", user=w.pudong_tech)
    assert workflow.move(o.pk, "decline", user=w.pudong_tech2, reason="不熟悉该型号").status == Status.CLASSIFIED
    with pytest.raises(NotFound):
        workflow.move(o.pk, "accept", user=w.pudong_tech2)
    o.refresh_from_db()
    assert (o.assignee_id, o.reassign_count, o.decline_count) == (None, 1, 1)


# ---------------------------------------------------------------- what each move needs

@pytest.mark.parametrize("name", [m.name for m in MOVES.values() if m.needs])
def test_a_missing_field_is_a_400_naming_it_and_nothing_changes(team, name):
    w = team
    m = MOVES[name]
    kind = "consultation" if m.types else "repair"
    extra = {"unit_id": None, "fault_category": None} if kind == "consultation" else {}
    o = at(w, "diagnosing" if name == "complete" else SOURCE[name], type=kind, **extra)
    before = (o.status, o.event_count)
    with pytest.raises(ValidationFailed) as e:
        workflow.move(o.pk, name, user=actor_for(w, name, o), reason="  ", result="")
    assert set(e.value.errors) == set(m.needs)
    o.refresh_from_db()
    assert (o.status, o.event_count) == before


def test_field_rules(team):
    w = team
    o = at(w, "received")
    with pytest.raises(ValidationFailed) as e:
        workflow.move(o.pk, "classify", user=w.pudong_agent, type="nonsense", priority="asap", fault_category="X")
    assert set(e.value.errors) == {"type", "priority", "fault_category"}
    with pytest.raises(ValidationFailed) as e:  # a washing machine's fault on an air conditioner
        workflow.move(o.pk, "classify", user=w.pudong_agent, type="repair", priority="high", fault_category="NO_DRAIN")
    assert set(e.value.errors) == {"fault_category"}
    with pytest.raises(ValidationFailed) as e:
        workflow.move(o.pk, "classify", user=w.pudong_agent, type="repair", priority="high", colour="red")
    assert set(e.value.errors) == {"colour"}
    with pytest.raises(ValidationFailed) as e:
        workflow.move(o.pk, "escalate", user=w.pudong_agent, reason="x" * 2001)
    assert set(e.value.errors) == {"reason"}
    c = make_order(w, type="consultation", unit_id=None, fault_category=None)
    with pytest.raises(ValidationFailed) as e:  # a repair needs the unit
        workflow.move(c.pk, "classify", user=w.pudong_agent, type="repair", priority="normal")
    assert set(e.value.errors) == {"type"}

    o = at(w, "classified")
    start, end = window()
    with pytest.raises(ValidationFailed) as e:
        workflow.move(o.pk, "dispatch", user=w.pudong_dispatcher, assignee=w.tech_employee, appointment_from=end,
                      appointment_to=start)
    assert set(e.value.errors) == {"appointment_to"}
    w.tech2_employee.active = False
    w.tech2_employee.save()
    with pytest.raises(ValidationFailed) as e:
        workflow.move(o.pk, "dispatch", user=w.pudong_dispatcher, assignee=w.tech2_employee, appointment_from=start,
                      appointment_to=end)
    assert set(e.value.errors) == {"assignee"}
    o = workflow.move(o.pk, "dispatch", user=w.pudong_dispatcher, assignee=w.tech_employee.pk,
                      appointment_from=start, appointment_to=end)
    with pytest.raises(ValidationFailed) as e:
        workflow.move(o.pk, "reassign", user=w.pudong_dispatcher, assignee=w.tech_employee, appointment_from=start,
                      appointment_to=end, reason="同一人")
    assert set(e.value.errors) == {"assignee"}
    for node_id in (w.pudong.pk, w.east.pk, 10**9, "abc"):
        with pytest.raises(ValidationFailed) as e:
            workflow.move(o.pk, "transfer", user=w.pudong_agent, node_id=node_id, reason="转")
        assert set(e.value.errors) == {"node_id"}


def test_the_work_fields_are_kept_on_the_order_and_in_the_history(team):
    w = team
    o = at(w, "diagnosing")
    with pytest.raises(ValidationFailed) as e:
        workflow.move(o.pk, "repair", user=w.pudong_tech, diagnosis="电容坏", fault_code="ZZ9")
    assert set(e.value.errors) == {"fault_code"}
    o = workflow.move(o.pk, "repair", user=w.pudong_tech, diagnosis="压缩机卡缸", fault_code="E1")
    assert o.fault_code.code == "E1" and o.fault_category.code == "NO_COOLING"
    # the diagnosis given when the repair began satisfies the completion; the result does not
    with pytest.raises(ValidationFailed) as e:
        workflow.move(o.pk, "complete", user=w.pudong_tech)
    assert set(e.value.errors) == {"result"}
    o = workflow.move(o.pk, "complete", user=w.pudong_tech, result="更换压缩机", actions="更换压缩机，加注冷媒")
    o.refresh_from_db()
    assert (o.diagnosis, o.result, o.actions) == ("压缩机卡缸", "更换压缩机", "更换压缩机，加注冷媒")
    data = OrderEvent.objects.get(order=o, action="complete").data
    assert data["result"] == "更换压缩机" and "diagnosis" not in data
    assert OrderEvent.objects.get(order=o, action="repair").data == {"diagnosis": "压缩机卡缸", "fault_code": "E1"}


def test_completion_records_the_repair_under_the_main_part_and_redecides_the_warranty(team):
    w = team
    o = at(w, "repairing")
    assert o.warranty_kind == "free_repair" and o.warranty_free is True
    workflow.move(o.pk, "complete", user=w.pudong_tech, result="更换压缩机", fault_code="E1")
    r = UnitRepair.objects.get(unit=w.u_pudong)
    assert (r.fault_key, r.in_warranty, r.source, r.finished_on) == ("COMP", True, o.number, r.started_on)
    # a fault without a main part counts under its fault category
    o2 = at(w, "repairing")
    workflow.move(o2.pk, "complete", user=w.pudong_tech, result="疏通排水管", fault_code="D1")
    assert UnitRepair.objects.filter(unit=w.u_pudong, fault_key="WATER_LEAK", source=o2.number).exists()
    # not for a consultation, nor without a fault category
    o3 = at(w, "repairing", fault_category=None)
    workflow.move(o3.pk, "complete", user=w.pudong_tech, result="调试正常")
    assert not UnitRepair.objects.filter(source=o3.number).exists()


def test_a_transferred_order_completed_by_the_other_outlet_records_the_repair(team):
    w = team
    o = walk(w, make_order(w), ["classify"])
    o = workflow.move(o.pk, "transfer", user=w.pudong_agent, node_id=w.hangzhou.pk, reason="客户已搬家")
    start, end = window()
    o = workflow.move(o.pk, "dispatch", user=w.admin, assignee=w.hangzhou_employee, appointment_from=start,
                      appointment_to=end)
    for name in ("accept", "depart", "arrive", "diagnose"):
        o = workflow.move(o.pk, name, user=w.hangzhou_tech)
    workflow.move(o.pk, "complete", user=w.hangzhou_tech, diagnosis="缺冷媒", result="补漏加注", fault_code="L1")
    r = UnitRepair.objects.get(source=o.number)
    assert r.fault_key == "NO_COOLING"
    assert AuditEntry.objects.filter(action="unit.repair", actor_id=w.hangzhou_tech.pk).exists()
    assert audit_verify().ok


# ---------------------------------------------------------------- the rules across moves

def test_the_owner_stays_through_transfer_escalation_and_reassignment(team):
    w = team
    o = at(w, "dispatched")
    assert o.owner_id == w.pudong_agent.pk
    o = workflow.move(o.pk, "reassign", user=w.pudong_dispatcher, **DEFAULTS(w, "reassign", o))
    o = workflow.move(o.pk, "escalate", user=w.pudong_manager, reason="客户投诉催促")
    o = workflow.move(o.pk, "transfer", user=w.east_manager, node_id=w.hangzhou.pk, reason="转杭州")
    o.refresh_from_db()
    assert (o.owner_id, o.node_id, o.assignee_id, o.status) == (w.pudong_agent.pk, w.hangzhou.pk, None,
                                                                 Status.CLASSIFIED)
    assert o.escalation_level == 1 and o.reassign_count == 1
    # the owner still sees it and may still handle it — as the owner, not as Pudong's agent
    assert workflow.can_see(w.pudong_agent, o)
    assert selectors.order_get(w.pudong_agent, o.pk) == o
    assert workflow.can_see(w.hangzhou_agent, o) and not workflow.can_see(w.pudong_dispatcher, o)
    assert invariants.order_problems([o.pk]) == []


def test_an_order_the_customer_filed_is_owned_by_the_first_agent_to_classify_it(team):
    w = team
    o = make_order(w, user=w.customer_user, channel="app")
    assert o.owner_id is None
    o = workflow.move(o.pk, "classify", user=w.pudong_agent, type="repair", priority="high")
    o = workflow.move(o.pk, "classify", user=w.pudong_manager, type="repair", priority="urgent")
    o.refresh_from_db()
    assert o.owner_id == w.pudong_agent.pk and o.priority == "urgent"
    assert invariants.order_problems([o.pk]) == []


def test_reopen_from_closed_goes_round_again(team):
    w = team
    o = at(w, "closed")
    assert o.closed_at and o.completed_at
    o = workflow.move(o.pk, "reopen", user=w.pudong_agent, reason="客户反映仍不制冷")
    assert (o.status, o.reopen_count, o.closed_at, o.completed_at) == (Status.REOPENED, 1, None, None)
    o = walk(w, o, ["dispatch", "accept", "depart", "arrive", "diagnose", "repair", "complete", "callback", "close"])
    o.refresh_from_db()
    assert o.status == Status.CLOSED and o.visit_count == 2 and o.reopen_count == 1
    assert UnitRepair.objects.filter(source=o.number).count() == 2
    with pytest.raises(Conflict):
        workflow.move(at(w, "cancelled").pk, "reopen", user=w.pudong_agent, reason="x")
    assert invariants.order_problems([o.pk]) == []


def test_a_consultation_is_answered_and_closed_at_once_and_only_a_consultation(team):
    w = team
    c = make_order(w, type="consultation", unit_id=None, fault_category=None, problem="请问保修期多久？")
    c = workflow.move(c.pk, "answer", user=w.pudong_agent, result="整机一年，压缩机三年")
    assert (c.status, c.result, c.responded_at is not None) == (Status.CLOSED, "整机一年，压缩机三年", True)
    assert c.closed_at == c.responded_at and c.completed_at is None
    assert invariants.order_problems([c.pk]) == []
    o = make_order(w)
    with pytest.raises(Conflict) as e:
        workflow.move(o.pk, "answer", user=w.pudong_agent, result="已答复")
    assert "咨询" in str(e.value.message)
    assert "answer" not in {m.name for m in workflow.allowed_moves(w.pudong_agent, o)}


def test_cancel_keeps_the_reason_and_closes(team):
    w = team
    o = workflow.move(at(w, "accepted").pk, "cancel", user=w.pudong_agent, reason="客户已自行修好")
    assert (o.status, o.cancel_reason, o.closed_at is not None) == (Status.CANCELLED, "客户已自行修好", True)
    assert o.assignee_id == w.tech_employee.pk  # on record; dispatch frees the booking
    assert workflow.allowed_moves(w.admin, o) == []


def test_waiting_pauses_the_clock_and_resume_sends_the_technician_again(team):
    w = team
    o = at(w, "diagnosing")
    o = workflow.move(o.pk, "wait_parts", user=w.pudong_tech, reason="等压缩机")
    assert o.sla_paused_at is not None
    o = workflow.move(o.pk, "resume", user=w.pudong_dispatcher)
    assert (o.status, o.sla_paused_at) == (Status.ACCEPTED, None)
    o = walk(w, o, ["depart", "arrive"])
    assert o.visit_count == 2


def test_the_move_order_is_signalled_with_the_move(team):
    w = team
    seen = []
    from aftersales.tickets.signals import order_moved

    def receiver(sender, **kw):
        seen.append((kw["move"], kw["from_status"], kw["to_status"], kw["actor"]))

    order_moved.connect(receiver)
    try:
        o = at(w, "received")
        workflow.move(o.pk, "classify", user=w.pudong_agent, type="repair", priority="normal")
    finally:
        order_moved.disconnect(receiver)
    assert seen == [("classify", "received", "classified", w.pudong_agent)]


def test_a_receiver_that_fails_undoes_the_move(team):
    w = team
    from aftersales.tickets.signals import order_moved

    def boom(sender, **kw):
        raise Conflict("技师时间冲突")

    o = at(w, "received")
    order_moved.connect(boom)
    try:
        with pytest.raises(Conflict):
            workflow.move(o.pk, "classify", user=w.pudong_agent, type="repair", priority="normal")
    finally:
        order_moved.disconnect(boom)
    o.refresh_from_db()
    assert (o.status, o.event_count, OrderEvent.objects.filter(order=o).count()) == (Status.RECEIVED, 1, 1)


def test_a_move_costs_a_fixed_handful_of_queries(team):
    """One locking read with its joins, the event, the update, the audit entry (read the head,
    append) — and nothing else, whichever move (the user's roles are read once per request)."""
    w = team
    o = at(w, "received")
    for user in (w.pudong_agent, w.pudong_dispatcher, w.pudong_tech):
        workflow.allowed_moves(user, o)  # the roles and scope of each user, once
    counts = {}
    for name in ["classify", "dispatch", "accept", "depart", "arrive", "diagnose", "wait_customer", "resume",
                 "depart", "arrive", "escalate"]:
        with CaptureQueriesContext(connection) as ctx:
            o = workflow.move(o.pk, name, user=actor_for(w, name, o), **DEFAULTS(w, name, o))
        counts[name] = len([q for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]])
    assert max(counts.values()) <= 5, counts
    assert counts["classify"] <= 5 and counts["depart"] == 5, counts


def test_event_seq_has_no_gaps_under_a_long_history(team):
    w = team
    o = at(w, "on_site")
    for i in range(5):
        o = workflow.move(o.pk, "escalate", user=w.pudong_manager, reason=f"第{i}次")
    seqs = list(OrderEvent.objects.filter(order=o).values_list("seq", flat=True))
    assert seqs == list(range(1, o.event_count + 1))


def test_timeline_hides_internal_notes_from_the_customer(team):
    from aftersales.tickets import services

    w = team
    o = at(w, "en_route")
    services.order_note(user=w.pudong_agent, order_id=o.pk, note="客户脾气急，注意沟通")
    workflow.move(o.pk, "escalate", user=w.pudong_manager, reason="催单")
    staff = [e.action for e in selectors.timeline(o, w.pudong_agent)]
    mine = list(selectors.timeline(o, w.customer_user))
    assert "note" in staff and "escalate" in staff
    assert [e.action for e in mine] == ["create", "classify", "dispatch", "accept", "depart"]
    assert all(selectors.shown_note(e, for_customer=True) in ("", e.note) for e in mine)
    with pytest.raises(PermissionDenied):
        services.order_note(user=w.customer_user, order_id=o.pk, note="我加一句")


def test_moves_with_a_time_given_use_it(team):
    w = team
    o = at(w, "received")
    then = o.created_at + dt.timedelta(minutes=30)
    o = workflow.move(o.pk, "classify", user=w.pudong_agent, now=then, type="repair", priority="normal")
    assert o.updated_at == then and OrderEvent.objects.get(order=o, seq=2).at == then
