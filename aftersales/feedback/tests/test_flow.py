"""Completion → the call-back round → the customer's answer through the link, and its outcome."""

import datetime as dt

import pytest
from django.utils import timezone

from aftersales.core.errors import NotFound, ValidationFailed
from aftersales.feedback import services
from aftersales.feedback.models import CallbackTask, Survey, SurveyState, TaskStatus
from aftersales.notifications.models import Message
from aftersales.records.audit import audit_verify
from aftersales.records.models import AuditEntry
from aftersales.tickets import workflow
from aftersales.tickets.models import OrderEvent, WorkOrder

from .conftest import SCORES, complete_order

pytestmark = pytest.mark.django_db


def sms(customer, event):
    return list(Message.objects.filter(customer=customer, event=event).order_by("id"))


def test_completion_opens_the_round(world, completed):
    r = completed()
    assert r.order.status == "callback"
    task = r.task
    assert task.status == TaskStatus.OPEN and task.round == 1 and task.attempts == 0
    assert task.assigned_to == world.pudong_agent  # the first-contact owner (R-REQ-3)
    assert task.node == world.pudong
    assert task.due_at > task.created_at
    s = r.survey
    assert s.channel == "link" and s.state == SurveyState.PENDING
    assert s.token_hash == services.token_hash(r.token) and r.token not in s.token_hash
    assert dt.timedelta(days=6, hours=23) < s.expires_at - s.created_at <= dt.timedelta(days=7)
    # the customer is told of the completion, then gets the link
    [done] = sms(world.c_pudong, "completed")
    [link] = sms(world.c_pudong, "survey")
    assert done.id < link.id
    assert done.address == "13812345678" and "补充冷媒" in done.body and r.order.number in done.body
    assert f"http://127.0.0.1:8000/feedback/s/{r.token}/" in link.body
    assert link.status == "kept"
    # one event for the move, audited as the system
    ev = OrderEvent.objects.filter(order=r.order).order_by("-seq").first()
    assert ev.action == "callback" and ev.actor is None and ev.to_status == "callback"
    assert AuditEntry.objects.filter(action="callback.open", object_id=str(task.pk), actor_label="system").exists()
    assert not Survey.objects.filter(token_hash=r.token).exists()  # the raw token is nowhere stored


def test_nothing_opens_when_the_completion_rolls_back(world, django_capture_on_commit_callbacks):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                complete_order(world)
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    assert CallbackTask.objects.count() == 0 and not callbacks


def test_callback_open_is_idempotent_and_only_for_completed_orders(world, completed):
    r = completed()
    assert services.callback_open(r.order.pk) is None  # already in call-back, round open
    assert CallbackTask.objects.filter(order=r.order).count() == 1


def test_survey_happy_path_closes_the_order(world, completed):
    r = completed()
    out = services.survey_submit(r.token, **SCORES, resolved=True, comment=" 师傅很专业 ")
    assert out.closed and not out.reopened and out.complaint is None
    r.refresh()
    assert r.order.status == "closed" and r.order.closed_at is not None
    s = r.survey
    assert s.state == SurveyState.ANSWERED and s.answered_by is None
    assert (s.timeliness, s.attitude, s.professionalism, s.result) == (5, 5, 4, 5)
    assert s.overall == 5  # (5+5+4+5)/4 = 4.75 → 5
    assert s.comment == "师傅很专业" and s.resolved is True
    assert r.task.status == TaskStatus.DONE and r.task.done_by is None
    assert not WorkOrder.objects.filter(parent=r.order).exists()
    actions = list(OrderEvent.objects.filter(order=r.order).order_by("seq").values_list("action", flat=True))
    assert actions[-3:] == ["callback", "survey", "close"]
    assert audit_verify().ok


@pytest.mark.parametrize(("scores", "expected"), [
    ((3, 3, 2, 2), 3),  # 2.5 rounds up
    ((1, 1, 1, 2), 1),
    ((4, 4, 4, 3), 4),  # 3.75
])
def test_overall_is_the_rounded_mean_unless_given(world, completed, scores, expected):
    r = completed()
    services.survey_submit(r.token, **dict(zip(SCORES, scores, strict=True)), resolved=True)
    assert r.refresh().survey.overall == expected


def test_overall_given_is_kept(world, completed):
    r = completed()
    services.survey_submit(r.token, **SCORES, overall=3, resolved=True)
    assert r.refresh().survey.overall == 3


def test_a_low_score_opens_a_complaint_owned_by_the_first_contact_agent(world, completed):
    r = completed()
    out = services.survey_submit(r.token, timeliness=2, attitude=4, professionalism=4, result=4, resolved=True,
                                 comment="迟到了两个小时")
    c = out.complaint
    assert c is not None
    c.refresh_from_db()
    assert c.type == "complaint" and c.parent_id == r.order.pk and c.customer_id == world.c_pudong.pk
    assert c.owner == world.pudong_agent and c.unit_id == world.u_pudong.pk and c.priority == "high"
    assert c.status == "received" and c.channel == "web"
    assert r.order.number in c.problem and "及时性 2" in c.problem and "迟到了两个小时" in c.problem
    r.refresh()
    assert r.survey.complaint_id == c.pk
    assert r.order.status == "closed"  # resolved: the order closes, the complaint goes on
    # the outlet's manager is told (not the customer, not other outlets' managers)
    [m] = Message.objects.filter(event="complaint")
    assert m.user == world.pudong_manager and c.number in m.body and r.order.number in m.body
    assert m.node_id == world.pudong.pk


def test_an_overall_score_of_2_alone_is_low(world, completed):
    r = completed()
    out = services.survey_submit(r.token, **SCORES, overall=2, resolved=True)
    assert out.complaint is not None


def test_managers_of_the_centre_when_the_outlet_has_none(world, completed):
    from aftersales.org.models import RoleAssignment

    RoleAssignment.objects.filter(user=world.pudong_manager).delete()
    r = completed()
    services.survey_submit(r.token, **{**SCORES, "attitude": 1}, resolved=True)
    assert [m.user for m in Message.objects.filter(event="complaint")] == [world.east_manager]


def test_not_resolved_reopens_and_tells_the_customer(world, completed):
    r = completed()
    out = services.survey_submit(r.token, **SCORES, resolved=False, comment="还是不制冷")
    assert out.reopened and not out.closed
    r.refresh()
    assert r.order.status == "reopened" and r.order.reopen_count == 1
    assert r.order.completed_at is None and r.order.closed_at is None
    [msg] = sms(world.c_pudong, "reopened")
    assert r.order.number in msg.body
    ev = OrderEvent.objects.filter(order=r.order, action="reopen").get()
    assert ev.actor is None and "还是不制冷" in ev.note
    assert not WorkOrder.objects.filter(parent=r.order).exists()  # scores were fine


def test_low_and_not_resolved_does_both(world, completed):
    r = completed()
    out = services.survey_submit(r.token, timeliness=1, attitude=1, professionalism=1, result=1, resolved=False)
    assert out.reopened and out.complaint is not None
    assert r.refresh().order.status == "reopened"


def test_a_reopened_order_completed_again_gets_a_new_round(world, completed, django_capture_on_commit_callbacks):
    r = completed()
    services.survey_submit(r.token, **SCORES, resolved=False)
    start = timezone.now() + dt.timedelta(hours=3)
    with django_capture_on_commit_callbacks(execute=True):
        workflow.move(r.order.pk, "dispatch", user=world.pudong_dispatcher, assignee=world.tech_employee,
                      appointment_from=start, appointment_to=start + dt.timedelta(hours=1))
        for name in ("accept", "depart", "arrive", "diagnose"):
            workflow.move(r.order.pk, name, user=world.pudong_tech)
        workflow.move(r.order.pk, "complete", user=world.pudong_tech, diagnosis="电容损坏", result="更换电容")
    tasks = list(CallbackTask.objects.filter(order=r.order).order_by("round"))
    assert [(t.round, t.status) for t in tasks] == [(1, "done"), (2, "open")]
    assert Survey.objects.filter(order=r.order, channel="link").count() == 2
    assert len(sms(world.c_pudong, "survey")) == 2
    # the old link stays used
    with pytest.raises(services.Gone):
        services.survey_submit(r.token, **SCORES, resolved=True)


def test_used_link_is_gone(world, completed):
    r = completed()
    services.survey_submit(r.token, **SCORES, resolved=True)
    with pytest.raises(services.Gone) as e:
        services.survey_submit(r.token, **SCORES, resolved=True)
    assert e.value.status == 410 and e.value.code == "survey_closed"
    assert "已使用" in str(e.value.message)
    assert Survey.objects.filter(answered_at__isnull=False).count() == 1


def test_expired_link_is_gone(world, completed):
    r = completed()
    Survey.objects.filter(pk=r.survey.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(services.Gone) as e:
        services.survey_submit(r.token, **SCORES, resolved=True)
    assert "已过期" in str(e.value.message)
    assert r.refresh().order.status == "callback"


def test_unknown_link_is_not_found(world, completed):
    completed()
    for token in ("nope", "x" * 500, ""):
        with pytest.raises(NotFound):
            services.survey_submit(token, **SCORES, resolved=True)


@pytest.mark.parametrize(("field", "value"), [
    ("timeliness", 0), ("attitude", 6), ("professionalism", 2.5), ("result", "五"), ("result", None),
    ("timeliness", True), ("overall", 9), ("overall", -1),
])
def test_bad_scores_are_field_errors_and_nothing_is_written(world, completed, field, value):
    r = completed()
    before = (AuditEntry.objects.count(), OrderEvent.objects.count(), Message.objects.count())
    with pytest.raises(ValidationFailed) as e:
        services.survey_submit(r.token, **{**SCORES, field: value}, resolved=True)
    assert list(e.value.errors) == [field]
    assert (AuditEntry.objects.count(), OrderEvent.objects.count(), Message.objects.count()) == before
    assert r.refresh().survey.answered_at is None and r.order.status == "callback"


def test_every_bad_field_at_once(world, completed):
    r = completed()
    with pytest.raises(ValidationFailed) as e:
        services.survey_submit(r.token, timeliness=0, attitude=None, professionalism=7, result="x", resolved="maybe",
                               comment="长" * 501)
    assert set(e.value.errors) == {"timeliness", "attitude", "professionalism", "result", "resolved", "comment"}


def test_scores_as_digit_strings_are_accepted(world, completed):
    r = completed()
    services.survey_submit(r.token, timeliness="4", attitude="5", professionalism="5", result="4", overall="",
                           resolved=True)
    assert r.refresh().survey.overall == 5  # 18/4 = 4.5 → 5


def test_an_order_reopened_on_the_order_page_cancels_the_task_and_closes_the_link(world, completed):
    r = completed()
    workflow.move(r.order.pk, "reopen", user=world.pudong_agent, reason="客户来电仍有异响")
    r.refresh()
    assert r.task.status == TaskStatus.CANCELLED and r.task.done_by == world.pudong_agent
    assert r.survey.state == SurveyState.CLOSED
    with pytest.raises(services.Gone):
        services.survey_submit(r.token, **SCORES, resolved=True)


def test_an_order_closed_on_the_order_page_keeps_the_link_and_the_answer_still_counts(world, completed):
    r = completed()
    workflow.move(r.order.pk, "close", user=world.pudong_agent)
    r.refresh()
    assert r.task.status == TaskStatus.CANCELLED and r.survey.state == SurveyState.PENDING
    out = services.survey_submit(r.token, **{**SCORES, "result": 1}, resolved=False)
    assert out.complaint is not None and out.reopened  # reopened from closed (R-REQ-6)
    r.refresh()
    assert r.order.status == "reopened" and r.task.status == TaskStatus.CANCELLED


def test_audit_chain_stays_valid_across_the_round(world, completed):
    r = completed()
    services.survey_submit(r.token, **{**SCORES, "attitude": 2}, resolved=False)
    assert audit_verify().ok
    survey_actions = set(AuditEntry.objects.filter(object_type="feedback.survey").values_list("action", flat=True))
    assert survey_actions == {"survey.create", "survey.answer"}


def test_callback_open_missing_catches_up(world, completed):
    from aftersales.tickets.models import Status

    o = complete_order(world)  # no on_commit run: the round was never opened
    assert o.status == Status.COMPLETED
    WorkOrder.objects.filter(pk=o.pk).update(completed_at=timezone.now() - dt.timedelta(hours=1))
    assert services.callback_open_missing() == 1
    o.refresh_from_db()
    assert o.status == "callback" and CallbackTask.objects.filter(order=o).count() == 1
    assert services.callback_open_missing() == 0


def test_the_periodic_task_runs_the_catch_up(world):
    from aftersales.feedback.tasks import callback_open_missing_task

    o = complete_order(world)
    WorkOrder.objects.filter(pk=o.pk).update(completed_at=timezone.now() - dt.timedelta(hours=1))
    callback_open_missing_task.delay()
    assert WorkOrder.objects.get(pk=o.pk).status == "callback"


FEEDBACK_EVENTS = {"survey", "callback_attempt"}


@pytest.mark.skipif(not FEEDBACK_EVENTS <= workflow.EVENT_ACTIONS,
                    reason="tickets.workflow.EVENT_ACTIONS must list the feedback events (survey, callback_attempt)")
def test_histories_written_by_the_call_back_obey_the_order_invariants(world, completed):
    from aftersales.tickets.invariants import order_problems

    a, b, c = completed(), completed(), completed()
    services.survey_submit(a.token, **{**SCORES, "result": 1}, resolved=False)
    services.survey_submit(b.token, **SCORES, resolved=True)
    for _attempt in range(3):
        services.callback_record(user=world.pudong_agent, task_id=c.task.pk, reached=False)
    assert order_problems() == []
