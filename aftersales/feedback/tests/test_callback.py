"""The agent's phone call-back: the script, the answers, unreachable attempts, scope."""

import pytest

from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from aftersales.feedback import selectors, services
from aftersales.feedback.models import Survey, SurveyState, TaskStatus
from aftersales.feedback.script import script_for
from aftersales.notifications.models import Message
from aftersales.records.audit import audit_verify
from aftersales.tickets.models import OrderEvent, OrderType, WorkOrder

from .conftest import SCORES

pytestmark = pytest.mark.django_db


def test_the_script_names_the_order_and_asks_the_four_questions(world, completed):
    r = completed()
    s = script_for(r.order)
    assert r.order.number in s.opening and "李师傅" in s.opening and "挂壁式空调" in s.opening
    assert "维修" in s.opening and "故障" in s.check
    assert [label for _f, label, _q in s.questions] == ["及时性", "服务态度", "专业水平", "处理结果"]
    text = s.as_text()
    assert "1 到 5 分" in text and "是否已经解决" in text


def test_every_order_type_has_its_own_check_question(world):
    from aftersales.feedback import script

    assert set(script._CHECK) == set(OrderType.values) == set(script._WORK)


def test_agent_records_a_satisfied_call_and_the_order_closes(world, completed, agent2):
    r = completed()
    out = services.callback_record(user=agent2, task_id=r.task.pk, reached=True, **SCORES, resolved=True,
                                   comment="满意")
    assert out.closed and out.complaint is None
    r.refresh()
    assert r.order.status == "closed"
    assert r.task.status == TaskStatus.DONE and r.task.done_by == agent2
    phone = Survey.objects.get(task=r.task, channel="phone")
    assert phone.answered_by == agent2 and phone.overall == 5 and phone.token_hash is None
    # the link is closed: one answer per round
    assert r.survey.state == SurveyState.CLOSED
    with pytest.raises(services.Gone) as e:
        services.survey_submit(r.token, **SCORES, resolved=True)
    assert "电话" in str(e.value.message)
    close = OrderEvent.objects.get(order=r.order, action="close")
    assert close.actor == agent2  # the agent's own move
    assert audit_verify().ok


def test_a_low_score_on_the_phone_gives_the_complaint_to_the_original_owner(world, completed, agent2):
    r = completed()
    out = services.callback_record(user=agent2, task_id=r.task.pk, reached=True,
                                   **{**SCORES, "professionalism": 1}, resolved=True)
    c = WorkOrder.objects.get(parent=r.order)
    assert out.complaint.pk == c.pk
    assert c.owner == world.pudong_agent and c.channel == "phone" and c.type == "complaint"
    assert Message.objects.filter(event="complaint", user=world.pudong_manager).count() == 1


def test_not_resolved_on_the_phone_reopens(world, completed):
    r = completed()
    out = services.callback_record(user=world.pudong_agent, task_id=r.task.pk, reached=True, **SCORES,
                                   resolved=False, comment="仍漏水")
    assert out.reopened
    r.refresh()
    assert r.order.status == "reopened" and r.order.reopen_count == 1
    ev = OrderEvent.objects.get(order=r.order, action="reopen")
    assert ev.actor == world.pudong_agent and "仍漏水" in ev.note
    assert Message.objects.filter(customer=world.c_pudong, event="reopened").count() == 1


def test_three_unreachable_attempts_close_the_task_and_the_order(world, completed):
    r = completed()
    for n in (1, 2):
        out = services.callback_record(user=world.pudong_agent, task_id=r.task.pk, reached=False, comment="无人接听")
        assert not out.unreachable and out.task.attempts == n
        r.refresh()
        assert r.task.status == TaskStatus.OPEN and r.order.status == "callback"
    out = services.callback_record(user=world.pudong_agent, task_id=r.task.pk, reached=False,
                                   timeliness=99)  # scores are ignored when not reached
    assert out.unreachable and out.closed
    r.refresh()
    assert r.task.status == TaskStatus.UNREACHABLE and r.task.attempts == 3 and r.task.last_attempt_at
    assert r.order.status == "closed"
    events = list(OrderEvent.objects.filter(order=r.order).order_by("seq").values_list("action", "note"))
    assert [a for a, _n in events][-4:] == ["callback_attempt"] * 3 + ["close"]
    assert "3 次回访均未接通" in events[-1][1]
    with pytest.raises(Conflict):
        services.callback_record(user=world.pudong_agent, task_id=r.task.pk, reached=False)
    # the customer may still answer the link; the answer still counts
    assert r.survey.state == SurveyState.PENDING
    out = services.survey_submit(r.token, **SCORES, resolved=True)
    assert not out.closed and out.order_status == "closed"
    assert r.refresh().task.status == TaskStatus.DONE


def test_answers_are_required_when_reached(world, completed):
    r = completed()
    with pytest.raises(ValidationFailed) as e:
        services.callback_record(user=world.pudong_agent, task_id=r.task.pk, reached=True, timeliness=6)
    assert set(e.value.errors) == {"timeliness", "attitude", "professionalism", "result", "resolved"}
    assert r.refresh().task.status == TaskStatus.OPEN


def test_a_done_task_cannot_be_recorded_again(world, completed):
    r = completed()
    services.survey_submit(r.token, **SCORES, resolved=True)  # the customer was first
    with pytest.raises(Conflict) as e:
        services.callback_record(user=world.pudong_agent, task_id=r.task.pk, reached=True, **SCORES, resolved=True)
    assert e.value.status == 409 and "已结束" in str(e.value.message)


def test_scope_another_outlet_gets_404_a_technician_403(world, completed):
    r = completed()
    with pytest.raises(NotFound):
        services.callback_record(user=world.hangzhou_agent, task_id=r.task.pk, reached=False)
    with pytest.raises(NotFound):
        selectors.callback_get(world.hangzhou_agent, r.task.pk)
    assert not selectors.callback_queryset(world.hangzhou_agent).exists()
    with pytest.raises(PermissionDenied):
        services.callback_record(user=world.pudong_tech, task_id=r.task.pk, reached=False)
    with pytest.raises(NotFound):
        services.callback_record(user=world.pudong_agent, task_id=10**9, reached=False)
    assert r.refresh().task.attempts == 0


def test_scope_the_owner_sees_their_task_wherever_they_work(world, completed):
    """An HQ call-centre agent who took the call owns the order; the Pudong outlet handles it."""
    from aftersales.conftest import make_user
    from aftersales.org.roles import Role

    hq_agent = make_user("hq_agent", Role.AGENT, world.hq)
    r = completed(owner=hq_agent)
    assert r.task.assigned_to == hq_agent
    assert selectors.callback_get(hq_agent, r.task.pk) == r.task
    # the Hangzhou agent sees nothing; east manager (centre) sees it by scope
    assert selectors.callback_queryset(world.east_manager).filter(pk=r.task.pk).exists()
    assert not selectors.callback_queryset(world.hangzhou_agent).filter(pk=r.task.pk).exists()


def test_mine_filter(world, completed, agent2):
    r = completed()
    qs = selectors.callback_queryset(agent2)
    assert list(selectors.callback_filter(agent2, qs)) == [r.task]
    assert list(selectors.callback_filter(agent2, qs, mine=True)) == []
    assert list(selectors.callback_filter(world.pudong_agent, selectors.callback_queryset(world.pudong_agent),
                                          mine=True)) == [r.task]


def test_the_owner_of_an_order_transferred_to_another_outlet_records_the_call(
        world, django_capture_on_commit_callbacks):
    """The owner stays accountable (R-REQ-3) though they hold no rights over the new outlet: their
    task, their call; the order moves are made by the system on their behalf."""
    import datetime as dt

    from django.utils import timezone

    from aftersales.conftest import make_user
    from aftersales.org.models import Employee
    from aftersales.org.roles import Role
    from aftersales.tickets import workflow
    from aftersales.tickets.services import order_create

    hz_dispatcher = make_user("hz_dispatcher", Role.DISPATCHER, world.hangzhou)
    hz_tech_user = make_user("hz_tech", Role.TECHNICIAN, world.hangzhou)
    hz_tech = Employee.objects.create(user=hz_tech_user, node=world.hangzhou, employee_no="T0002", name="王师傅",
                                      hire_date=dt.date(2021, 1, 1))
    o = order_create(user=world.pudong_agent, customer_id=world.c_pudong.pk, type="repair", channel="phone",
                     problem="空调异响", unit_id=world.u_pudong.pk)
    workflow.move(o.pk, "classify", user=world.pudong_agent, type="repair", priority="normal")
    workflow.move(o.pk, "transfer", user=world.pudong_agent, node_id=world.hangzhou.pk, reason="客户暂住杭州")
    start = timezone.now() + dt.timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        workflow.move(o.pk, "dispatch", user=hz_dispatcher, assignee=hz_tech, appointment_from=start,
                      appointment_to=start + dt.timedelta(hours=1))
        for name in ("accept", "depart", "arrive", "diagnose"):
            workflow.move(o.pk, name, user=hz_tech_user)
        workflow.move(o.pk, "complete", user=hz_tech_user, diagnosis="风扇松动", result="紧固风扇")
    task = selectors.callback_get(world.pudong_agent, o.callback_tasks.get().pk)
    assert task.assigned_to == world.pudong_agent and task.node == world.hangzhou
    assert not selectors.callback_queryset(world.pudong_manager).filter(pk=task.pk).exists()
    out = services.callback_record(user=world.pudong_agent, task_id=task.pk, reached=True,
                                   **{**SCORES, "attitude": 2}, resolved=True)
    assert out.closed
    close = OrderEvent.objects.get(order=o, action="close")
    assert close.actor is None and "pudong_agent" in close.note
    survey_event = OrderEvent.objects.get(order=o, action="survey")
    assert survey_event.actor == world.pudong_agent
    # the complaint belongs to the owner; no manager is set up at Hangzhou or above it but East
    assert out.complaint.owner == world.pudong_agent
    assert [m.user for m in Message.objects.filter(event="complaint")] == [world.east_manager]
