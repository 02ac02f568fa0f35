"""The demo's six months of work orders (``web.demo_orders``), built in bulk: the history obeys
the rules that orders moved through the services obey — every transition from the one
table, events gap-free, counters and statuses consistent, the SLA clock as ``tickets.sla``
keeps it, technicians never booked twice, the audit trail clean — and the orders can be
moved on through the services afterwards."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter, defaultdict
from io import StringIO
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from aftersales.charges.services import quote_create, quote_sign, repair_gate
from aftersales.charges.tests.conftest import png_bytes
from aftersales.customers.models import Customer, UnitRepair
from aftersales.dispatch.models import Booking
from aftersales.feedback.models import CallbackTask, Survey
from aftersales.org.models import Employee, RoleAssignment
from aftersales.org.roles import Role
from aftersales.records.audit import audit_verify
from aftersales.records.models import AuditEntry
from aftersales.tickets import sla, workflow
from aftersales.tickets.invariants import order_problems
from aftersales.tickets.models import DailySequence, OrderEvent, OrderType, SlaState, Status, WorkOrder
from aftersales.tickets.services import order_create
from aftersales.web.demo_orders import AUDIT_ACTION, _warranty_kind, build_order_history, orders_for_units

pytestmark = pytest.mark.django_db

WORLD = dict(seed=11, customers=400, units=600)
N = 1500


def small_world(**kw) -> None:
    call_command("demo", stdout=StringIO(), stderr=StringIO(), orders=0, **{**WORLD, **kw})


@pytest.fixture
def history():
    small_world()
    now = timezone.now()
    b = build_order_history(orders=N, seed=WORLD["seed"], now=now, days=60)
    return b


def share(n: int, total: int) -> float:
    return n / total if total else 0.0


# ---------------------------------------------------------------- the rules


def test_history_obeys_the_invariants_and_the_audit_trail(history):
    assert order_problems() == []
    report = audit_verify()
    assert report.ok, report.problems[:5]

    orders = WorkOrder.objects.count()
    assert orders == history.counts["tickets.WorkOrder"] >= N * 0.98
    assert OrderEvent.objects.count() == history.counts["tickets.OrderEvent"] == sum(
        WorkOrder.objects.values_list("event_count", flat=True))
    # one audit entry per order, the order's final state
    assert AuditEntry.objects.filter(action=AUDIT_ACTION, object_type="tickets.workorder").count() == orders
    o = WorkOrder.objects.order_by("?").first()
    e = AuditEntry.objects.get(chain=f"tickets.workorder:{o.pk}")
    assert e.after["status"] == o.status and e.after["event_count"] == o.event_count
    assert e.after["number"] == o.number and e.after["owner_id"] == o.owner_id


def test_outcome_mix(history):
    qs = WorkOrder.objects.all()
    total = qs.count()
    by_status = Counter(qs.values_list("status", flat=True))
    by_type = Counter(qs.values_list("type", flat=True))
    assert 0.80 <= share(by_status[Status.CLOSED], total) <= 0.97
    assert 0.01 <= share(by_status[Status.CANCELLED], total) <= 0.08
    breached = qs.filter(response_breached=True).count() + qs.filter(response_breached=False,
                                                                      resolve_breached=True).count()
    assert 0.03 <= share(breached, total) <= 0.16
    assert 0.01 <= share(qs.filter(reopen_count__gt=0).count(), total) <= 0.09
    assert 0.02 <= share(by_type[OrderType.COMPLAINT], total) <= 0.09
    assert 0.4 <= share(by_type[OrderType.REPAIR], total) <= 0.6
    # complaints opened by low call-back scores are linked to their order
    assert qs.filter(type=OrderType.COMPLAINT, parent__isnull=False).exists()
    # consultations mostly answered at first contact
    consultations = qs.filter(type=OrderType.CONSULTATION)
    answered = OrderEvent.objects.filter(order__in=consultations, action="answer").count()
    assert share(answered, consultations.count()) >= 0.6
    actions = Counter(OrderEvent.objects.values_list("action", flat=True))
    for action in ("wait_parts", "wait_customer", "decline", "reassign", "transfer", "cancel", "reopen",
                   "sla_breach", "escalate", "survey", "callback_attempt", "code_sent", "confirm"):
        assert actions[action] > 0, action
    assert actions["escalate"] == sum(qs.values_list("escalation_level", flat=True))
    # the open tail: the last days' orders are still in progress, in many statuses
    open_statuses = set(qs.exclude(status__in=workflow.TERMINAL).values_list("status", flat=True))
    assert len(open_statuses) >= 4, open_statuses
    recent = qs.filter(created_at__gte=timezone.now() - dt.timedelta(days=2))
    assert recent.exclude(status__in=workflow.TERMINAL).exists()
    assert not qs.filter(created_at__lt=timezone.now() - dt.timedelta(days=40)).exclude(
        status__in=workflow.TERMINAL).exclude(type=OrderType.CONSULTATION).count() > total * 0.01


def test_fields_agree_with_the_events(history):
    owners_are_agents = set(RoleAssignment.objects.filter(role=Role.AGENT).values_list("user_id", flat=True))
    events = defaultdict(list)
    for row in OrderEvent.objects.order_by("order_id", "seq").values_list(
            "order_id", "action", "at", "actor_id", "data", "to_status"):
        events[row[0]].append(row[1:])
    for o in WorkOrder.objects.all():
        ev = events[o.pk]
        assert o.owner_id in owners_are_agents
        assert ev[0][2] == o.owner_id  # the owner filed it
        assert o.updated_at == ev[-1][1]
        assert o.number.startswith(f"GD{timezone.localtime(o.created_at):%Y%m%d}")
        times = [e[1] for e in ev]
        assert times == sorted(times)
        moves = [e[0] for e in ev]
        if "complete" in moves and o.status in (Status.COMPLETED, Status.CALLBACK, Status.CLOSED):
            assert o.diagnosis and o.result
        if o.status in (Status.CLOSED, Status.CANCELLED):
            assert o.closed_at == ev[-1][1] or moves[-1] != o.status
        if "dispatch" in moves or "answer" in moves or "transfer" in moves:
            first = min(ev[i][1] for i, m in enumerate(moves) if m in workflow.RESPONDING)
            assert o.responded_at == first
        if o.status == Status.CANCELLED:
            assert o.cancel_reason
    # numbers: unique per day, and the day's sequence goes on after them
    last = dict(DailySequence.objects.values_list("day", "last"))
    seen = defaultdict(int)
    for number in WorkOrder.objects.values_list("number", flat=True):
        day = dt.datetime.strptime(number[2:10], "%Y%m%d").date()
        seen[day] = max(seen[day], int(number[10:]))
    assert all(last[day] >= n for day, n in seen.items())


def test_sla_clock_is_the_services_clock(history):
    """Replaying each history through ``tickets.sla`` gives the deadlines and states stored."""
    now = history.now
    events = defaultdict(list)
    for row in OrderEvent.objects.order_by("order_id", "seq").values_list(
            "order_id", "action", "from_status", "to_status", "at", "data"):
        events[row[0]].append(row[1:])
    checked = 0
    for o in WorkOrder.objects.all():
        ev = events[o.pk]
        r = SimpleNamespace(type=ev[0][4]["type"], priority=ev[0][4]["priority"], created_at=o.created_at,
                            responded_at=None, completed_at=None, closed_at=None, response_due=None,
                            resolve_due=None, sla_risk_at=None, sla_state=SlaState.OK, sla_paused_at=None,
                            response_breached=False, resolve_breached=False)
        sla.on_create(r, r.created_at)
        d = sla.deadlines(r.type, r.priority, r.created_at)
        assert (r.response_due, r.resolve_due) == (d.response_due, d.resolve_due)
        for action, frm, to, at, data in ev[1:]:
            if action == "sla_breach":
                for kind in data["kinds"]:
                    setattr(r, f"{kind}_breached", True)
                r.sla_state = SlaState.BREACHED
                continue
            if action not in workflow.MOVES:
                continue
            if action in workflow.RESPONDING and r.responded_at is None:
                r.responded_at = at
            if action == "complete":
                r.completed_at = at
            elif action in ("close", "cancel", "answer"):
                r.closed_at = at
            elif action == "reopen":
                r.completed_at = r.closed_at = None
            sla.on_move(r, action, frm, to, at)
        if (o.status not in workflow.TERMINAL and r.sla_state == SlaState.OK and r.sla_paused_at is None
                and (r.responded_at is None or (r.completed_at is None and r.closed_at is None))
                and r.sla_risk_at is not None and r.sla_risk_at <= now):
            r.sla_state = SlaState.AT_RISK  # the sweep's second step
        got = (o.response_due, o.resolve_due, o.sla_paused_at, o.sla_risk_at, o.sla_state, o.response_breached,
               o.resolve_breached, o.responded_at, o.completed_at, o.closed_at)
        want = (r.response_due, r.resolve_due, r.sla_paused_at, r.sla_risk_at, r.sla_state, r.response_breached,
                r.resolve_breached, r.responded_at, r.completed_at, r.closed_at)
        assert got == want, (o.number, [e[0] for e in ev])
        checked += 1
    assert checked == WorkOrder.objects.count()
    # a breach was recorded where a deadline passed unhandled, never before it
    for o in WorkOrder.objects.filter(response_breached=True)[:200]:
        breach = next(e for e in events[o.pk] if e[0] == "sla_breach" and "response" in e[4]["kinds"])
        assert breach[3] > o.response_due


def test_technicians_never_booked_twice_and_bookings_follow_the_orders(history):
    active = Booking.objects.filter(active=True).order_by("employee_id", "starts_at")
    assert active.exists()
    last: dict[int, dt.datetime] = {}
    for b in active:
        if b.employee_id in last:
            assert b.starts_at >= last[b.employee_id], b
        last[b.employee_id] = b.ends_at
    assert Booking.objects.filter(active=False, released_at__isnull=False).exists()
    # an order held by a technician has its current booking: its assignee at its appointment
    for o in WorkOrder.objects.filter(status__in=(Status.DISPATCHED, Status.ACCEPTED, Status.EN_ROUTE)):
        assert Booking.objects.filter(order=o, active=True, done_at__isnull=True, employee_id=o.assignee_id,
                                      starts_at=o.appointment_from).exists()
    # the technician is of the order's outlet (skilled in the unit's category where any is)
    techs = dict(Employee.objects.values_list("id", "node_id"))
    for order_id, emp, node in WorkOrder.objects.filter(assignee__isnull=False).values_list(
            "id", "assignee_id", "node_id")[:500]:
        assert techs[emp] == node, order_id


def test_callbacks_surveys_and_repairs(history):
    completed = WorkOrder.objects.filter(event_count__gt=0, completed_at__isnull=False)
    assert CallbackTask.objects.count() >= completed.count()
    answered = Survey.objects.filter(answered_at__isnull=False)
    assert answered.filter(channel="link").exists() and answered.filter(channel="phone").exists()
    low = [s for s in answered if s.low]
    assert low and all(s.complaint_id is not None for s in low)
    for s in low:
        assert s.complaint.parent_id == s.order_id and s.complaint.type == OrderType.COMPLAINT
    reopen_events = OrderEvent.objects.filter(action="reopen").count()
    assert answered.filter(resolved=False).count() == reopen_events
    assert CallbackTask.objects.filter(status="unreachable", attempts=3).exists()
    # completed repairs are repair facts of their unit (the warranty reads them)
    repairs = set(UnitRepair.objects.exclude(source="").values_list("source", flat=True))
    done = WorkOrder.objects.filter(type=OrderType.REPAIR, fault_category__isnull=False,
                                    completed_at__isnull=False)
    assert done.exists() and set(done.values_list("number", flat=True)) <= repairs
    assert history.stats["warranty_mismatch"] == 0 and history.stats["warranty_checked"] > 0


def test_warranty_kind_is_the_rule_engines():
    from aftersales.catalog.warranty import RepairFact, Terms, decide

    terms = Terms.default()
    no_invoice_terms = Terms(**{**terms.__dict__, "exclusions": frozenset()})
    purchase = dt.date(2024, 3, 31)
    repairs = [RepairFact(dt.date(2024, 6, 1), dt.date(2024, 6, 20), "NO_COOLING", True),
               RepairFact(dt.date(2024, 9, 1), None, "NO_COOLING", True),
               RepairFact(dt.date(2025, 1, 5), dt.date(2025, 1, 6), "COMP", False)]
    for t in (terms, no_invoice_terms):
        for days in range(0, 1300, 3):
            on = purchase + dt.timedelta(days=days)
            for kw in (dict(fault_key=None, is_main_part=False), dict(fault_key="NO_COOLING", is_main_part=False),
                       dict(fault_key="COMP", is_main_part=True)):
                for invoice in (True, False):
                    for exchanged in (None, dt.date(2024, 12, 1)):
                        args = dict(purchase_date=purchase, on=on, exchanged_on=exchanged, has_invoice=invoice,
                                    repairs=repairs, **kw)
                        assert _warranty_kind(t, **args) == str(decide(t, **args).kind), args


# ---------------------------------------------------------------- after the history


def test_orders_can_be_moved_on_through_the_services(history, django_capture_on_commit_callbacks):
    o = WorkOrder.objects.filter(status=Status.CLASSIFIED, unit__isnull=False).order_by("-created_at").first()
    if o is None:  # take one received and classify it as an agent would
        o = WorkOrder.objects.filter(status=Status.RECEIVED, unit__isnull=False).order_by("-created_at").first()
        owner = get_user_model().objects.get(pk=o.owner_id)
        workflow.move(o.pk, "classify", user=owner, type=o.type, priority=o.priority)
    users = get_user_model().objects
    node_users = RoleAssignment.objects.filter(node_id=o.node_id)
    dispatcher = users.get(pk=(node_users.filter(role=Role.DISPATCHER).first()
                               or node_users.filter(role=Role.OUTLET_MANAGER).first()).user_id)
    emp = Employee.objects.filter(node_id=o.node_id, user__role_assignments__role=Role.TECHNICIAN).first()
    day = timezone.localdate() + dt.timedelta(days=40)  # beyond every appointment of the history
    start = timezone.make_aware(dt.datetime.combine(day, dt.time(10)))
    with django_capture_on_commit_callbacks(execute=True):
        workflow.move(o.pk, "dispatch", user=dispatcher, assignee=emp, appointment_from=start,
                      appointment_to=start + dt.timedelta(hours=2))
    tech = users.get(pk=emp.user_id)
    for name in ("accept", "depart", "arrive", "diagnose"):
        with django_capture_on_commit_callbacks(execute=True):
            workflow.move(o.pk, name, user=tech)
    if not repair_gate(WorkOrder.objects.get(pk=o.pk)).ok:  # out of 三包: the customer approves the quote first
        q = quote_create(user=tech, order_id=o.pk)
        quote_sign(user=tech, quote_id=q.pk, signature_png_bytes=png_bytes())
    for name, data in (("repair", {"diagnosis": "压缩机启动电容损坏"}), ("complete", {"result": "更换电容后试机正常"})):
        with django_capture_on_commit_callbacks(execute=True):
            workflow.move(o.pk, name, user=tech, **data)
    o.refresh_from_db()
    assert o.status in (Status.COMPLETED, Status.CALLBACK)
    assert order_problems([o.pk]) == []
    assert audit_verify().ok
    # and a new order gets the day's next number, no collision with the history's
    agent_ra = RoleAssignment.objects.filter(role=Role.AGENT, node_id=o.node_id).first()
    customer = Customer.objects.filter(node_id=o.node_id).first()
    new = order_create(user=agent_ra.user, customer_id=customer.pk, type=OrderType.CONSULTATION, channel="phone",
                       problem="咨询三包政策")
    before = DailySequence.objects.get(day=timezone.localdate()).last
    assert new.number == f"GD{timezone.localdate():%Y%m%d}{before:06d}"
    assert order_problems([new.pk]) == []


# ---------------------------------------------------------------- the command and determinism


def digest() -> str:
    """The history in a form that does not depend on ids or on the numbers given out before
    (a reset keeps the day sequences): who, what, when."""
    emp = dict(Employee.objects.values_list("id", "employee_no"))
    phone = dict(Customer.objects.values_list("id", "phone"))
    h = hashlib.sha256()

    def text(s: str) -> str:
        return re.sub(r"GD\d{14}", "GD…", s)

    for row in WorkOrder.objects.order_by("created_at", "number").values_list(
            "type", "status", "channel", "priority", "customer_id", "assignee_id", "created_at", "closed_at",
            "resolve_due", "escalation_level", "reopen_count", "warranty_kind", "event_count", "problem"):
        h.update(repr((*row[:4], phone[row[4]], emp.get(row[5]), *row[6:13], text(row[13]))).encode())
    for seq, action, at, to, note in OrderEvent.objects.order_by("order__created_at", "order__number", "seq") \
            .values_list("seq", "action", "at", "to_status", "note"):
        h.update(repr((seq, action, at, to, text(note))).encode())
    return h.hexdigest()


def test_same_seed_same_history_in_worker_processes_or_not():
    now = timezone.now().replace(microsecond=0)
    small_world(customers=200, units=300)
    b = build_order_history(orders=400, seed=5, now=now, days=30, workers=0)
    assert len({b.w.partition[n] for n in b.w.outlets}) == 3  # one partition per service centre
    first = digest()
    small_world(customers=200, units=300, reset=True)
    assert not WorkOrder.objects.exists()
    build_order_history(orders=400, seed=5, now=now, days=30, workers=3)  # forked, one per centre
    assert digest() == first
    assert order_problems() == [] and audit_verify().ok
    small_world(customers=200, units=300, reset=True)
    build_order_history(orders=400, seed=6, now=now, days=30, workers=0)
    assert digest() != first


def test_demo_command_builds_the_orders():
    out = StringIO()
    call_command("demo", stdout=out, stderr=StringIO(), seed=3, customers=200, units=300, orders=300)
    n = WorkOrder.objects.count()
    assert 300 <= n <= 330  # and the complaints the surveys opened
    assert "tickets.WorkOrder" in out.getvalue() and "tickets.OrderEvent" in out.getvalue()
    assert order_problems() == []
    assert audit_verify().ok
    assert orders_for_units(30000) == 150_000 and orders_for_units(600) == 3000
    # --reset takes the orders away with the rest; ids and numbers are never given out again
    numbers = set(WorkOrder.objects.values_list("number", flat=True))
    top = WorkOrder.objects.order_by("-id").values_list("id", flat=True).first()
    call_command("demo", stdout=StringIO(), stderr=StringIO(), seed=3, customers=200, units=300, orders=300,
                 reset=True)
    assert not numbers & set(WorkOrder.objects.values_list("number", flat=True))
    assert WorkOrder.objects.order_by("id").values_list("id", flat=True).first() > top
    assert audit_verify().ok
