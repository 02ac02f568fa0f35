"""The SLA sweep (R-SLA-2, R-SLA-3): at-risk marking, breaches flagged once, escalation level by
level to the right managers (outbox messages), paused orders left alone, the command, the
periodic task, and two sweeps racing on PostgreSQL."""

import datetime as dt
import io

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from aftersales.conftest import make_user, race
from aftersales.core.management.commands.serve import _load
from aftersales.customers.models import Address, Customer
from aftersales.notifications.models import Message
from aftersales.org.roles import Role
from aftersales.records.audit import audit_verify
from aftersales.records.models import AuditEntry
from aftersales.tickets import sla, sweep, workflow
from aftersales.tickets.models import OrderEvent, SlaState, Status, WorkOrder

from .test_sla import at, new_order, repair_on_site, seed_defaults

MIN = dt.timedelta(minutes=1)


@pytest.fixture(autouse=True)
def sla_defaults(db):
    seed_defaults()
    yield
    sla.clear_cache()


def actions(o) -> list[str]:
    return list(OrderEvent.objects.filter(order_id=o.pk).order_by("seq").values_list("action", flat=True))


def breach_messages(o):
    return Message.objects.filter(event="sla_breach", ref=o.number).order_by("id")


def reload(o) -> WorkOrder:
    return WorkOrder.objects.get(pk=o.pk)


# ---------------------------------------------------------------- at risk

def test_at_risk_is_marked_when_the_warning_time_comes(world):
    o = new_order(world, at(2026, 3, 10, 10))  # consultation: response 12:00, warning at 11:36
    assert o.sla_risk_at == at(2026, 3, 10, 11, 36)
    assert sweep.sla_sweep(at(2026, 3, 10, 11, 35)) == sweep.SweepResult(0, 0, 0)
    assert reload(o).sla_state == SlaState.OK
    assert sweep.sla_sweep(at(2026, 3, 10, 11, 36)) == sweep.SweepResult(1, 0, 0)
    assert reload(o).sla_state == SlaState.AT_RISK
    assert sweep.sla_sweep(at(2026, 3, 10, 11, 40)).at_risk == 0  # once
    # answered in time: back to ok, nothing escalated
    o = workflow.move(o.pk, "answer", user=world.pudong_agent, now=at(2026, 3, 10, 11, 50), result="已解答")
    assert o.sla_state == SlaState.OK
    assert sweep.sla_sweep(at(2026, 3, 10, 15)) == sweep.SweepResult(0, 0, 0)


def test_at_risk_marking_is_one_statement(world, django_assert_num_queries):
    for h in (9, 10):
        new_order(world, at(2026, 3, 10, h))
    with django_assert_num_queries(1):
        assert sweep.mark_at_risk(at(2026, 3, 10, 11, 50)) == 2


# ---------------------------------------------------------------- breaches and escalation

def test_breach_is_flagged_escalated_and_told_once(world):
    o = new_order(world, at(2026, 3, 10, 10))  # response due 12:00
    assert sweep.sla_sweep(at(2026, 3, 10, 12)) == sweep.SweepResult(1, 0, 0)  # at 12:00 not yet late
    r = sweep.sla_sweep(at(2026, 3, 10, 12, 1))
    assert r == sweep.SweepResult(at_risk=0, breached=1, escalated=1)
    o = reload(o)
    assert o.response_breached and not o.resolve_breached
    assert o.sla_state == SlaState.BREACHED and o.escalation_level == 1
    assert o.status == Status.RECEIVED  # escalation keeps the status (and the owner)
    assert o.owner_id == world.pudong_agent.pk
    assert actions(o) == ["create", "sla_breach", "escalate"]
    ev = OrderEvent.objects.get(order=o, action="sla_breach")
    assert ev.actor_id is None and ev.data["kinds"] == ["response"] and "首次响应超时" in ev.note
    esc = OrderEvent.objects.get(order=o, action="escalate")
    assert esc.data["level"] == 1 and esc.at == at(2026, 3, 10, 12, 1)
    assert AuditEntry.objects.filter(action="order.sla_breach", object_id=str(o.pk)).count() == 1
    assert AuditEntry.objects.filter(action="order.escalate", object_id=str(o.pk)).count() == 1
    msgs = list(breach_messages(o))
    assert [m.user_id for m in msgs] == [world.pudong_manager.pk]
    assert o.number in msgs[0].body and "首次响应" in msgs[0].body and "第 1 级" in msgs[0].body
    assert msgs[0].node_id == world.pudong.pk and msgs[0].channel == "staff"

    # a second run finds nothing new
    assert sweep.sla_sweep(at(2026, 3, 10, 12, 2)) == sweep.SweepResult(0, 0, 0)
    assert actions(reload(o)) == ["create", "sla_breach", "escalate"]
    assert breach_messages(o).count() == 1
    assert audit_verify().ok


def test_escalation_climbs_outlet_centre_headquarters(world):
    o = new_order(world, at(2026, 3, 10, 10))  # consultation: response 12:00, resolution 14:00
    sweep.sla_sweep(at(2026, 3, 10, 12, 1))  # response missed → level 1
    assert reload(o).escalation_level == 1
    r = sweep.sla_sweep(at(2026, 3, 10, 14, 1))  # resolution missed as well → level 2
    assert r == sweep.SweepResult(0, 1, 1)
    o = reload(o)
    assert (o.response_breached, o.resolve_breached, o.escalation_level) == (True, True, 2)
    # answered late, then reopened: a fresh resolution window, missed again → level 3
    o = workflow.move(o.pk, "answer", user=world.pudong_agent, now=at(2026, 3, 10, 15), result="已解答")
    assert sweep.sla_sweep(at(2026, 3, 11, 15)) == sweep.SweepResult(0, 0, 0)  # closed: nothing to do
    o = workflow.move(o.pk, "reopen", user=world.pudong_agent, now=at(2026, 3, 12, 10), reason="客户不满意")
    assert o.resolve_due == at(2026, 3, 12, 14) and not o.resolve_breached
    assert o.sla_state == SlaState.BREACHED  # its response was late: that stays on record
    assert sweep.sla_sweep(at(2026, 3, 12, 14)) == sweep.SweepResult(0, 0, 0)
    assert sweep.sla_sweep(at(2026, 3, 12, 14, 1)) == sweep.SweepResult(0, 1, 1)
    assert reload(o).escalation_level == 3
    told = [(m.user_id, m.body) for m in breach_messages(o)]
    assert [u for u, _b in told] == [world.pudong_manager.pk, world.east_manager.pk, world.hq_manager.pk]
    assert "第 2 级" in told[1][1] and "解决" in told[1][1] and "第 3 级" in told[2][1]
    assert actions(reload(o)).count("escalate") == 3


def test_both_deadlines_missed_at_once_escalate_twice(world):
    o = new_order(world, at(2026, 3, 10, 10))
    r = sweep.sla_sweep(at(2026, 3, 10, 14, 1))  # the sweep had not run: both deadlines passed
    assert r == sweep.SweepResult(at_risk=0, breached=2, escalated=2)
    o = reload(o)
    assert o.escalation_level == 2 and o.response_breached and o.resolve_breached
    assert actions(o) == ["create", "sla_breach", "escalate", "escalate"]
    assert [m.user_id for m in breach_messages(o)] == [world.pudong_manager.pk, world.east_manager.pk]


def test_a_level_without_managers_passes_the_message_up(world):
    """杭州 has no outlet manager: level 1 goes to the 华东 centre's manager."""
    c = Customer.objects.create(node=world.hangzhou, name="李娜", phone="13711112222")
    Address.objects.create(customer=c, province="浙江省", city="杭州市", district="西湖区", street="文三路1号",
                           is_default=True)
    o = new_order(world, at(2026, 3, 10, 10), user=world.hangzhou_agent, customer=c)
    assert o.node_id == world.hangzhou.pk
    sweep.sla_sweep(at(2026, 3, 10, 12, 1))
    assert [m.user_id for m in breach_messages(o)] == [world.east_manager.pk]


def test_level_three_and_above_go_to_headquarters(world):
    second = make_user("hq_manager_2", Role.HQ_MANAGER, world.hq)
    o = new_order(world, at(2026, 3, 10, 10))
    WorkOrder.objects.filter(pk=o.pk).update(escalation_level=4)  # escalated by hand before
    sweep.sla_sweep(at(2026, 3, 10, 12, 1))
    assert reload(o).escalation_level == 5
    assert {m.user_id for m in breach_messages(o)} == {world.hq_manager.pk, second.pk}
    assert set(sweep.managers_for(o, 1)) == {world.pudong_manager}
    assert set(sweep.managers_for(o, 2)) == {world.east_manager}


def test_inactive_managers_are_not_told(world):
    world.pudong_manager.is_active = False
    world.pudong_manager.save()
    o = new_order(world, at(2026, 3, 10, 10))
    sweep.sla_sweep(at(2026, 3, 10, 12, 1))
    assert [m.user_id for m in breach_messages(o)] == [world.east_manager.pk]


# ---------------------------------------------------------------- paused and finished orders

def test_paused_orders_are_not_swept(world):
    o, t = repair_on_site(world, at(2026, 3, 10, 9))  # resolution due Monday 03-16 09:00
    o = workflow.move(o.pk, "wait_parts", user=world.pudong_tech, now=at(2026, 3, 13, 10), reason="等配件")
    events = actions(o)
    assert sweep.sla_sweep(at(2026, 3, 16, 12)) == sweep.SweepResult(0, 0, 0)
    o = reload(o)
    assert (o.resolve_breached, o.escalation_level, o.sla_state) == (False, 0, SlaState.OK)
    assert actions(o) == events and not breach_messages(o).exists()
    # resumed: the deadline moved by the paused working time and is swept again from then on
    o = workflow.move(o.pk, "resume", user=world.pudong_tech, now=at(2026, 3, 16, 12))
    assert o.resolve_due == at(2026, 3, 17, 11)  # 14 working hours were paused
    assert sweep.sla_sweep(at(2026, 3, 17, 11, 1)).breached == 1


def test_completed_and_cancelled_orders_are_not_swept(world):
    done = new_order(world, at(2026, 3, 10, 10))
    workflow.move(done.pk, "answer", user=world.pudong_agent, now=at(2026, 3, 10, 10, 30), result="已解答")
    gone = new_order(world, at(2026, 3, 10, 10))
    workflow.move(gone.pk, "cancel", user=world.pudong_agent, now=at(2026, 3, 10, 10, 30), reason="重复受理")
    assert sweep.sla_sweep(at(2026, 3, 20)) == sweep.SweepResult(0, 0, 0)


def test_orders_handled_in_time_are_not_breached(world):
    o, t = repair_on_site(world, at(2026, 3, 10, 9))  # dispatched 09:20: the response is done
    r = sweep.sla_sweep(at(2026, 3, 12, 12))  # after the response deadline (Thu 09:00)
    assert r.breached == 0 and not reload(o).response_breached


# ---------------------------------------------------------------- counting

def test_summary_counts(world, django_assert_max_num_queries):
    a = new_order(world, at(2026, 3, 10, 10))
    new_order(world, at(2026, 3, 10, 11, 30))
    sweep.sla_sweep(at(2026, 3, 10, 14, 1))  # a: both missed (level 2); b: response missed (level 1)
    c = new_order(world, at(2026, 3, 10, 13, 30))  # at risk at 15:06
    sweep.sla_sweep(at(2026, 3, 10, 15, 20))  # (b's resolution is due at 15:30)
    assert reload(c).sla_state == SlaState.AT_RISK
    workflow.move(a.pk, "answer", user=world.pudong_agent, now=at(2026, 3, 10, 16), result="已解答")
    with django_assert_max_num_queries(2):
        s = sweep.sla_summary(WorkOrder.objects.all())
    assert s == {"total": 3, "open": 2, "at_risk": 1, "open_breached": 1, "breached": 2, "response_breached": 2,
                 "resolve_breached": 1, "escalated": 2, "by_level": {1: 1, 2: 1}}
    assert sweep.sla_summary(WorkOrder.objects.none())["total"] == 0


# ---------------------------------------------------------------- the command and the periodic task

def test_command_prints_the_counts(world):
    new_order(world, at(2026, 3, 10, 10))
    out = io.StringIO()
    call_command("sla_sweep", "--at", "2026-03-10T12:01:00", stdout=out)
    assert out.getvalue().strip() == "SLA sweep: 0 at risk, 1 breached, 1 escalated"
    out = io.StringIO()
    call_command("sla_sweep", "--at", "2026-03-10T12:02:00+08:00", stdout=out)
    assert out.getvalue().strip() == "SLA sweep: 0 at risk, 0 breached, 0 escalated"
    with pytest.raises(CommandError):
        call_command("sla_sweep", "--at", "yesterday")
    with pytest.raises(CommandError):
        call_command("sla_sweep", "--limit", "0")


def test_limit_leaves_the_rest_for_the_next_run(world):
    orders = [new_order(world, at(2026, 3, 10, 10, i)) for i in range(3)]
    assert sweep.sla_sweep(at(2026, 3, 10, 12, 30), limit=2).escalated == 2
    assert sweep.sla_sweep(at(2026, 3, 10, 12, 31), limit=2).escalated == 1
    assert all(reload(o).escalation_level == 1 for o in orders)


def test_the_served_periodic_job_runs_the_sweep(world):
    """``manage.py serve`` runs CELERY_BEAT_SCHEDULE in-process: the sla-sweep entry loads and runs."""
    spec = settings.CELERY_BEAT_SCHEDULE["sla-sweep"]
    assert float(spec["schedule"]) == 60.0
    task = _load(spec["task"])
    o = new_order(world, at(2026, 3, 10, 10))  # long overdue by the real clock
    task.run()
    assert reload(o).response_breached and reload(o).escalation_level == 2


# ---------------------------------------------------------------- PostgreSQL: racing sweeps

@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_sweeps_flag_and_escalate_each_order_once(world):
    assert connection.vendor == "postgresql"
    orders = [new_order(world, at(2026, 3, 10, 10, i)) for i in range(12)]
    now = at(2026, 3, 10, 12, 30)
    results = [r for _kind, r in race(4, lambda _i: sweep.sla_sweep(now))]
    assert all(isinstance(r, sweep.SweepResult) for r in results), results
    assert sum(r.breached for r in results) == sum(r.escalated for r in results) == len(orders)
    for o in orders:
        o = reload(o)
        assert o.escalation_level == 1 and o.response_breached
        assert actions(o) == ["create", "sla_breach", "escalate"]
        seqs = list(OrderEvent.objects.filter(order=o).order_by("seq").values_list("seq", flat=True))
        assert seqs == [1, 2, 3] == list(range(1, o.event_count + 1))
        assert breach_messages(o).count() == 1
    assert sweep.sla_sweep(now) == sweep.SweepResult(0, 0, 0)
    assert audit_verify().ok
