"""Writes of the call-back round (R-FB-1, R-FB-3).

- ``callback_open`` (the system, after an order's completion commits): the agents' task, the
  customer's single-use survey link, the "completed" and "survey" SMS, and the order moved
  completed → callback.
- ``survey_submit`` (anybody holding the link): the customer's answer.
- ``callback_record`` (an agent): the phone call — answered, or one more unreachable attempt;
  the third unreachable attempt closes the round and the order.

An answer, by link or phone, has one outcome (``_outcome``): any score ≤ 2 opens a complaint
work order whose parent is the order and tells the node's managers; "not resolved" reopens
the order and tells the customer; otherwise the order is closed.

Locks are always taken in the same order — task, survey, order — so the link and the
phone path cannot deadlock; whichever locks the task first answers the round, the other
finds it answered (410 for the link, 409 for the agent).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import (
    Conflict,
    DomainError,
    ErrorCollector,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from aftersales.notifications.services import notify_customer, notify_users
from aftersales.org.models import Node, RoleAssignment
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import holds_at, principal
from aftersales.records.audit import audit_record, snapshot
from aftersales.tickets import sla, workflow
from aftersales.tickets.models import Channel, OrderType, Priority, Status, WorkOrder
from aftersales.tickets.services import order_create

from .models import SCORE_FIELDS, CallbackTask, Survey, SurveyChannel, SurveyState, TaskStatus

logger = logging.getLogger(__name__)

SURVEY_TTL_DAYS = getattr(settings, "SURVEY_TTL_DAYS", 7)
CALLBACK_MAX_ATTEMPTS = 3
COMMENT_MAX = 500
TOKEN_MAX = 100  # longer "tokens" are not ours: 404 without a look-up
MANAGER_ROLES = (Role.OUTLET_MANAGER, Role.CENTRE_MANAGER, Role.HQ_MANAGER)

_AUDITED_SURVEY = ("channel", "expires_at", "closed_at", "answered_at", *SCORE_FIELDS, "overall", "resolved",
                   "comment", "answered_by_id", "complaint_id")


class Gone(DomainError):
    """The survey link was used, has expired or was closed (410)."""

    status = 410
    code = "survey_closed"


THANKS = _("感谢您的评价！祝您生活愉快。")
THANKS_FOLLOW_UP = _("感谢您的评价！很抱歉这次服务没有让您满意，我们会尽快与您联系处理。")

GONE_MESSAGES = {
    SurveyState.ANSWERED: _("此评价链接已使用，感谢您的评价。"),
    SurveyState.EXPIRED: _("此评价链接已过期。"),
    SurveyState.CLOSED: _("此评价链接已失效：我们已通过电话完成回访，感谢您的配合。"),
}


def _zh(message, **params) -> str:
    """A text kept in the record (event notes, complaint problems): in Chinese, like the data."""
    with translation.override("zh-hans"):
        return str(message) % params if params else str(message)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def survey_url(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/feedback/s/{token}/"


def _due(order: WorkOrder, now: dt.datetime) -> dt.datetime:
    """The end of the next working day of the order's SLA calendar (round the clock: the end of
    tomorrow)."""
    policy = sla.policy_for(order.type, order.priority)
    cal = sla.calendar(policy.calendar_id and policy.calendar) if policy else sla.ROUND_THE_CLOCK
    tz = timezone.get_current_timezone()
    d = timezone.localtime(now).date()
    for _i in range(30):
        d += dt.timedelta(days=1)
        w = cal.window(d, tz)
        if w is not None:
            return w[1]
    return now + dt.timedelta(hours=48)


def _handler(order: WorkOrder):
    """Who calls the customer back: the order's owner (首问负责人, R-REQ-3) while they can still
    handle orders; else nobody in particular (the node's agents)."""
    owner = order.owner
    if owner is not None and owner.is_active and principal(owner).can(Perm.ORDER_HANDLE):
        return owner
    return None


# ---------------------------------------------------------------- opening the round

@dataclass
class Opened:
    task: CallbackTask
    survey: Survey
    token: str  # the raw token: only in the SMS (and returned to the caller, never stored)


def callback_open(order_id: int, *, now: dt.datetime | None = None) -> Opened | None:
    """After completion (the system): task + survey link + SMS, and the order into call-back.
    Does nothing (returns None) when the order is no longer completed or the round is open."""
    now = now or timezone.now()
    with transaction.atomic():
        order = workflow.lock_order(order_id)
        rnd = order.reopen_count + 1
        if order.status != Status.COMPLETED or CallbackTask.objects.filter(order=order, round=rnd).exists():
            return None
        task = CallbackTask.objects.create(order=order, round=rnd, assigned_to=_handler(order), node_id=order.node_id,
                                           due_at=_due(order, now), created_at=now)
        token = secrets.token_urlsafe(24)
        survey = Survey.objects.create(order=order, task=task, node_id=order.node_id, channel=SurveyChannel.LINK,
                                       token_hash=token_hash(token), created_at=now,
                                       expires_at=now + dt.timedelta(days=SURVEY_TTL_DAYS))
        audit_record(actor=None, action="callback.open", obj=task, before=None, after=snapshot(task),
                     node_id=task.node_id)
        audit_record(actor=None, action="survey.create", obj=survey, before=None,
                     after=snapshot(survey, ["order_id", "task_id", "channel", "created_at", "expires_at"]),
                     node_id=survey.node_id)
        workflow.move(order.pk, "callback", user=None, now=now, note=_zh(_("已生成回访任务并发送评价链接。")))
        result = (order.result or "").strip().replace("\n", " ")
        notify_customer(order.customer, event="completed", ref=order.number, ref_id=order.pk,
                        context={"number": order.number, "result": result[:60] + ("…" if len(result) > 60 else "")})
        notify_customer(order.customer, event="survey", ref=order.number, ref_id=order.pk,
                        context={"number": order.number, "link": survey_url(token), "days": SURVEY_TTL_DAYS})
        return Opened(task=task, survey=survey, token=token)


def callback_open_missing(*, older_than: dt.timedelta = dt.timedelta(minutes=5), limit: int = 500) -> int:
    """Open the round of completed orders that have none (a lost ``on_commit``, a crash between
    the completion and its call-back): a safety net for a periodic job. Returns how many."""
    cutoff = timezone.now() - older_than
    ids = list(WorkOrder.objects.filter(status=Status.COMPLETED, completed_at__lte=cutoff)
               .values_list("pk", flat=True)[:limit])
    opened = 0
    for pk in ids:
        try:
            opened += callback_open(pk) is not None
        except Exception:  # noqa: BLE001 - one bad order must not stop the others
            logger.exception("call-back of order %s could not be opened", pk)
    return opened


# ---------------------------------------------------------------- validating answers

def _score(errs: ErrorCollector, field: str, value, *, required: bool = True) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errs.add(field, _("请为此项评分（1–5 分）。"))
        return None
    if isinstance(value, bool):
        errs.add(field, _("请输入 1 到 5 的整数。"))
        return None
    if isinstance(value, str):
        v = value.strip()
        if not v.isdigit() or len(v) > 3:
            errs.add(field, _("请输入 1 到 5 的整数。"))
            return None
        value = int(v)
    if not isinstance(value, int):
        errs.add(field, _("请输入 1 到 5 的整数。"))
        return None
    if not 1 <= value <= 5:
        errs.add(field, _("评分须在 1 到 5 之间。"))
        return None
    return value


def _answers(*, timeliness, attitude, professionalism, result, overall, resolved, comment) -> dict:
    """Every field checked at once; the answer as model fields (overall: the rounded mean when
    not given)."""
    errs = ErrorCollector()
    raw = {"timeliness": timeliness, "attitude": attitude, "professionalism": professionalism, "result": result}
    out = {f: _score(errs, f, raw[f]) for f in SCORE_FIELDS}
    out["overall"] = _score(errs, "overall", overall, required=False)
    if not isinstance(resolved, bool):
        errs.add("resolved", _("请选择问题是否已解决。"))
    out["resolved"] = resolved
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        errs.add("comment", _("请输入文本。"))
        comment = ""
    comment = comment.strip()
    if len(comment) > COMMENT_MAX:
        errs.add("comment", _("意见不能超过 %(n)s 个字符。") % {"n": COMMENT_MAX})
    elif "\x00" in comment:
        errs.add("comment", _("不能包含空字符。"))
    out["comment"] = comment
    errs.raise_if_any()
    if out["overall"] is None:
        out["overall"] = (sum(out[f] for f in SCORE_FIELDS) + 2) // 4  # the mean, halves rounded up
    return out


# ---------------------------------------------------------------- the outcome of an answer

@dataclass
class Outcome:
    task: CallbackTask
    survey: Survey | None
    closed: bool = False
    reopened: bool = False
    unreachable: bool = False
    complaint: WorkOrder | None = None
    order_status: str = ""


def _managers(node_id: int) -> list:
    """The managers of the node: those holding a manager role at it, else at its nearest
    ancestor that has any (outlet → centre → headquarters)."""
    path = Node.objects.filter(pk=node_id).values_list("path", flat=True).first() or ""
    ids = [int(x) for x in path.strip("/").split("/") if x]
    rows = list(RoleAssignment.objects.filter(node_id__in=ids, role__in=MANAGER_ROLES, user__is_active=True)
                .select_related("user").order_by("user_id"))
    for nid in reversed(ids):
        found = {r.user_id: r.user for r in rows if r.node_id == nid}
        if found:
            return list(found.values())
    return []


def _summary(s: Survey) -> str:
    with translation.override("zh-hans"):
        parts = [f"{_('及时性')} {s.timeliness}", f"{_('服务态度')} {s.attitude}",
                 f"{_('专业水平')} {s.professionalism}", f"{_('处理结果')} {s.result}", f"{_('总体')} {s.overall}"]
        text = "、".join(parts) + "；" + str(_("已解决") if s.resolved else _("未解决"))
        if s.comment:
            text += "；" + str(_("客户意见：")) + s.comment
        return text


def _complaint_open(order: WorkOrder, survey: Survey, agent, now: dt.datetime) -> WorkOrder:
    """The complaint follow-up (R-FB-3): a complaint order of the same customer and unit whose
    parent is the order, filed by the system so that the order's owner owns it (首问负责制)."""
    problem = _zh(_("客户回访评分偏低（原工单 %(number)s）：%(summary)s"), number=order.number,
                  summary=_summary(survey))
    if agent is not None:
        problem += _zh(_("（回访人：%(user)s）"), user=agent.get_username())
    channel = Channel.PHONE if survey.channel == SurveyChannel.PHONE else Channel.WEB
    return order_create(user=None, customer_id=order.customer_id, type=OrderType.COMPLAINT, channel=channel,
                        priority=Priority.HIGH, problem=problem, parent_id=order.pk, unit_id=order.unit_id,
                        address_id=order.address_id, now=now)


def _move(order_id: int, name: str, agent, now: dt.datetime, **data) -> WorkOrder:
    """A move of the outcome, made by the agent where the table lets them (their name on the
    event), else by the system on their behalf (the owner reaching an order of another outlet)."""
    o = workflow.lock_order(order_id)
    user = agent if agent is not None and workflow.may(agent, workflow.MOVES[name], o) else None
    if agent is not None and user is None:
        data["note"] = (data.get("note") or data.get("reason") or "") + _zh(_("（回访人：%(user)s）"),
                                                                             user=agent.get_username())
    return workflow.move(order_id, name, user=user, now=now, **data)


def _outcome(task: CallbackTask, survey: Survey, agent, now: dt.datetime) -> Outcome:
    """Apply an answer to the order (the task and survey are locked and saved by the caller)."""
    out = Outcome(task=task, survey=survey)
    order = workflow.lock_order(task.order_id)
    workflow.event_append(order, actor=agent, action="survey", at=now, from_status=order.status,
                          to_status=order.status, note=_summary(survey)[:2000],
                          data={"survey": survey.pk, "channel": survey.channel, **survey.scores(),
                                "overall": survey.overall, "resolved": survey.resolved})
    order.updated_at = now
    order.save(update_fields=["event_count", "updated_at"])
    if survey.low:
        out.complaint = _complaint_open(order, survey, agent, now)
        survey.complaint = out.complaint
        survey.save(update_fields=["complaint"])
        notify_users(_managers(order.node_id), event="complaint", node_id=order.node_id, ref=out.complaint.number,
                     ref_id=out.complaint.pk, context={"number": order.number, "complaint": out.complaint.number})
    if not survey.resolved:
        if order.status in workflow.MOVES["reopen"].sources:
            reason = _zh(_("客户回访：问题未解决。")) + (f" {survey.comment}" if survey.comment else "")
            order = _move(order.pk, "reopen", agent, now, reason=reason[:2000])
            out.reopened = True
            notify_customer(order.customer, event="reopened", ref=order.number, ref_id=order.pk,
                            context={"number": order.number})
    else:
        if order.status == Status.COMPLETED:
            order = _move(order.pk, "callback", agent, now)
        if order.status == Status.CALLBACK:
            order = _move(order.pk, "close", agent, now, note=_zh(_("回访满意，关闭工单。")))
            out.closed = True
    out.order_status = order.status
    return out


# ---------------------------------------------------------------- the customer's link

def survey_for_token(token: str) -> Survey:
    if not isinstance(token, str) or not token or len(token) > TOKEN_MAX:
        raise NotFound(_("评价链接无效。"))
    s = Survey.objects.filter(token_hash=token_hash(token), channel=SurveyChannel.LINK).first()
    if s is None:
        raise NotFound(_("评价链接无效。"))
    return s


def survey_check(s: Survey, now: dt.datetime | None = None) -> None:
    state = s.state_at(now or timezone.now())
    if state != SurveyState.PENDING:
        raise Gone(GONE_MESSAGES[state])


def survey_submit(token: str, *, timeliness, attitude, professionalism, result, overall=None, resolved,
                  comment: str = "", now: dt.datetime | None = None) -> Outcome:
    """The customer's answer through the link (anonymous): 404 for an unknown token, 410 for a
    used, expired or closed one, 400 naming each bad field; single use under concurrency."""
    now = now or timezone.now()
    found = survey_for_token(token)
    survey_check(found, now)
    answers = _answers(timeliness=timeliness, attitude=attitude, professionalism=professionalism, result=result,
                       overall=overall, resolved=resolved, comment=comment)
    with transaction.atomic():
        task = CallbackTask.objects.select_for_update().get(pk=found.task_id)
        s = Survey.objects.select_for_update().get(pk=found.pk)
        survey_check(s, now)  # again, under the lock: the other request may have answered
        before = snapshot(s, _AUDITED_SURVEY)
        for k, v in answers.items():
            setattr(s, k, v)
        s.answered_at = now
        s.save()
        if task.status in (TaskStatus.OPEN, TaskStatus.UNREACHABLE):
            task_before = snapshot(task)
            task.status, task.done_at, task.done_by = TaskStatus.DONE, now, None
            task.save(update_fields=["status", "done_at", "done_by"])
            audit_record(actor=None, action="callback.done", obj=task, before=task_before, after=snapshot(task),
                         node_id=task.node_id)
        out = _outcome(task, s, None, now)
        audit_record(actor=None, action="survey.answer", obj=s, before=before, after=snapshot(s, _AUDITED_SURVEY),
                     node_id=s.node_id)
        return out


# ---------------------------------------------------------------- the agent's call

def _task_for(user, task_id: int) -> CallbackTask:
    if not principal(user).can(Perm.ORDER_HANDLE):
        raise PermissionDenied()
    task = (CallbackTask.objects.select_for_update(of=("self",)).select_related("order__customer")
            .filter(pk=task_id).first())
    if task is None or not (task.assigned_to_id == user.pk or holds_at(user, Perm.ORDER_HANDLE, task.node_id)):
        raise NotFound()
    return task


def callback_record(*, user, task_id: int, reached: bool, timeliness=None, attitude=None, professionalism=None,
                    result=None, overall=None, resolved=None, comment: str = "",
                    now: dt.datetime | None = None) -> Outcome:
    """The agent's call-back. ``reached=False`` counts one unreachable attempt (the scores are
    ignored); the third closes the task as unreachable and the order. Reached: the answers
    (all four scores and ``resolved`` required) and their outcome; the link is closed."""
    now = now or timezone.now()
    if not isinstance(reached, bool):
        raise ValidationFailed({"reached": [_("请选择是否已联系到客户。")]})
    answers = None
    if reached:
        answers = _answers(timeliness=timeliness, attitude=attitude, professionalism=professionalism,
                           result=result, overall=overall, resolved=resolved, comment=comment)
    else:
        comment = (comment or "").strip() if isinstance(comment, str) else ""
        if len(comment) > COMMENT_MAX:
            raise ValidationFailed({"comment": [_("意见不能超过 %(n)s 个字符。") % {"n": COMMENT_MAX}]})
    with transaction.atomic():
        task = _task_for(user, task_id)
        if task.status != TaskStatus.OPEN:
            raise Conflict(_("此回访任务已结束（%(status)s），不能再记录。") % {"status": task.get_status_display()},
                           code="callback_closed")
        task_before = snapshot(task)
        if not reached:
            return _attempt(task, task_before, user, comment, now)
        for link in Survey.objects.select_for_update().filter(task=task, answered_at__isnull=True,
                                                               closed_at__isnull=True):
            link.closed_at = now
            link.save(update_fields=["closed_at"])
            audit_record(actor=user, action="survey.close", obj=link, before=None, after={"closed_at": now},
                         node_id=link.node_id)
        s = Survey(order_id=task.order_id, task=task, node_id=task.node_id, channel=SurveyChannel.PHONE,
                   created_at=now, answered_at=now, answered_by=user, **answers)
        s.save()
        task.status, task.done_at, task.done_by = TaskStatus.DONE, now, user
        task.save(update_fields=["status", "done_at", "done_by"])
        audit_record(actor=user, action="callback.done", obj=task, before=task_before, after=snapshot(task),
                     node_id=task.node_id)
        out = _outcome(task, s, user, now)
        audit_record(actor=user, action="survey.answer", obj=s, before=None, after=snapshot(s, _AUDITED_SURVEY),
                     node_id=s.node_id)
        return out


def _attempt(task: CallbackTask, task_before: dict, user, comment: str, now: dt.datetime) -> Outcome:
    task.attempts += 1
    task.last_attempt_at = now
    out = Outcome(task=task, survey=None)
    if task.attempts >= CALLBACK_MAX_ATTEMPTS:
        task.status, task.done_at, task.done_by = TaskStatus.UNREACHABLE, now, user
        out.unreachable = True
    task.save(update_fields=["attempts", "last_attempt_at", "status", "done_at", "done_by"])
    order = workflow.lock_order(task.order_id)
    note = _zh(_("回访未接通（第 %(n)s 次）。"), n=task.attempts) + (f" {comment}" if comment else "")
    workflow.event_append(order, actor=user, action="callback_attempt", at=now, from_status=order.status,
                          to_status=order.status, note=note, data={"task": task.pk, "attempt": task.attempts})
    order.updated_at = now
    order.save(update_fields=["event_count", "updated_at"])
    audit_record(actor=user, action="callback.attempt", obj=task, before=task_before, after=snapshot(task),
                 node_id=task.node_id)
    if out.unreachable:
        close_note = _zh(_("%(n)s 次回访均未接通，关闭工单。"), n=task.attempts)
        if order.status == Status.COMPLETED:
            order = _move(order.pk, "callback", user, now)
        if order.status == Status.CALLBACK:
            order = _move(order.pk, "close", user, now, note=close_note)
            out.closed = True
    out.order_status = order.status
    return out


# ---------------------------------------------------------------- the order moved elsewhere

def callback_cancel(order: WorkOrder, *, actor, to_status: str, now: dt.datetime) -> int:
    """The order left the call-back by another path (reopened or closed on the order page):
    the open task is cancelled. A reopened order's link is closed too (the next completion
    sends a new one); a closed order's link stays open, its answer still counts."""
    n = 0
    for task in CallbackTask.objects.select_for_update().filter(order=order, status=TaskStatus.OPEN):
        before = snapshot(task)
        task.status, task.done_at, task.done_by = TaskStatus.CANCELLED, now, actor
        task.save(update_fields=["status", "done_at", "done_by"])
        audit_record(actor=actor, action="callback.cancel", obj=task, before=before, after=snapshot(task),
                     node_id=task.node_id)
        n += 1
    if to_status == Status.REOPENED:
        for s in Survey.objects.select_for_update().filter(order=order, answered_at__isnull=True,
                                                            closed_at__isnull=True):
            s.closed_at = now
            s.save(update_fields=["closed_at"])
            audit_record(actor=actor, action="survey.close", obj=s, before=None, after={"closed_at": now},
                         node_id=s.node_id)
    return n
