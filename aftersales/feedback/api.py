"""The feedback API: the agents' call-back tasks, the customer's survey link (public: the token
is the credential) and an order's surveys. No ``from __future__ import annotations`` here
(see aftersales.api.permissions)."""

import datetime as dt
from typing import Annotated

from django.utils import timezone
from ninja import Field, Router, Schema
from pydantic import Strict

from aftersales.api.permissions import public, requires
from aftersales.api.schemas import Cursor, In, Limit, NodeRef, PathId, Text, page_of, paginate
from aftersales.org.roles import Perm
from aftersales.tickets.api import CustomerRef

from . import selectors, services
from .models import TaskStatus
from .script import QUESTIONS, script_for

router = Router(tags=["feedback"])

Score = Annotated[int, Strict(), Field(ge=1, le=5)]


def _user(context):
    return context["request"].auth


# ---------------------------------------------------------------- output schemas

class OrderRef(Schema):
    id: int
    number: str
    status: str


class QuestionOut(Schema):
    field: str
    label: str
    question: str


class ScriptOut(Schema):
    opening: str
    check: str
    scale: str
    questions: list[QuestionOut]
    resolved: str
    comment: str
    closing: str
    hint: str
    text: str = Field(description="整段话术（纯文本）")

    @staticmethod
    def resolve_questions(obj):
        return [{"field": f, "label": label, "question": q} for f, label, q in obj.questions]

    @staticmethod
    def resolve_text(obj):
        return obj.as_text()


class CallbackOrderOut(Schema):
    id: int
    number: str
    type: str
    type_label: str
    status: str
    completed_at: dt.datetime | None
    result: str
    product: str | None
    technician: str | None

    @staticmethod
    def resolve_type_label(obj):
        return str(obj.get_type_display())

    @staticmethod
    def resolve_product(obj):
        return obj.unit.model.name if obj.unit_id else None

    @staticmethod
    def resolve_technician(obj):
        return obj.assignee.name if obj.assignee_id else None



class CallbackOut(Schema):
    id: int
    round: int
    status: str
    status_label: str
    due_at: dt.datetime
    overdue: bool
    attempts: int
    last_attempt_at: dt.datetime | None
    created_at: dt.datetime
    done_at: dt.datetime | None
    assigned_to: str | None = Field(description="回访人（首问负责人）；为空时由网点客服回访")
    node: NodeRef
    order: CallbackOrderOut
    customer: CustomerRef
    script: ScriptOut

    @staticmethod
    def resolve_status_label(obj):
        return str(obj.get_status_display())

    @staticmethod
    def resolve_overdue(obj):
        return obj.status == TaskStatus.OPEN and obj.due_at < timezone.now()

    @staticmethod
    def resolve_assigned_to(obj):
        return obj.assigned_to.get_username() if obj.assigned_to_id else None

    @staticmethod
    def resolve_customer(obj):
        return obj.order.customer

    @staticmethod
    def resolve_script(obj):
        return script_for(obj.order)


CallbackPage = page_of(CallbackOut)


class OutcomeOut(Schema):
    task: CallbackOut
    survey_id: int | None
    order_status: str
    closed: bool
    reopened: bool
    unreachable: bool
    complaint: OrderRef | None = Field(description="评分偏低时生成的投诉跟进单")

    @staticmethod
    def resolve_survey_id(obj):
        return obj.survey.pk if obj.survey else None


class SurveyPublicOut(Schema):
    order_number: str
    order_type: str
    product: str | None
    service_date: dt.date | None
    technician: str | None
    expires_at: dt.datetime
    questions: list[QuestionOut]


class SurveyDoneOut(Schema):
    message: str
    follow_up: bool = Field(description="评分偏低或问题未解决：我们会再与您联系")


class SurveyOut(Schema):
    id: int
    channel: str
    state: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    closed_at: dt.datetime | None
    answered_at: dt.datetime | None
    timeliness: int | None
    attitude: int | None
    professionalism: int | None
    result: int | None
    overall: int | None
    resolved: bool | None
    comment: str
    answered_by: str | None
    complaint: OrderRef | None

    @staticmethod
    def resolve_answered_by(obj):
        return obj.answered_by.get_username() if obj.answered_by_id else None


SurveyPage = page_of(SurveyOut)


# ---------------------------------------------------------------- input schemas

class CallbackIn(In):
    reached: bool = Field(description="是否联系到客户；false 记一次未接通（评分忽略）")
    timeliness: Score | None = None
    attitude: Score | None = None
    professionalism: Score | None = None
    result: Score | None = None
    overall: Score | None = Field(None, description="不填则取四项平均（四舍五入）")
    resolved: bool | None = None
    comment: Text(500) = ""


class SurveyIn(In):
    timeliness: Score
    attitude: Score
    professionalism: Score
    result: Score
    overall: Score | None = Field(None, description="不填则取四项平均（四舍五入）")
    resolved: bool
    comment: Text(500) = ""


# ---------------------------------------------------------------- call-back tasks

@router.get("/callbacks", response=CallbackPage)
@requires(Perm.ORDER_HANDLE)
def callback_list(request, limit: Limit, cursor: Cursor, status: TaskStatus = TaskStatus.OPEN,
                  mine: bool = False):
    """Call-back tasks in your scope (assigned to you, or over your nodes), by deadline; ``mine``
    only yours; ``status`` open (default), done, unreachable or cancelled."""
    qs = selectors.callback_filter(request.auth, selectors.callback_queryset(request.auth), status=status, mine=mine)
    return paginate(selectors.callback_list_qs(qs), ordering=selectors.ORDERING, cursor=cursor, limit=limit)


@router.post("/callbacks/{task_id}", response=OutcomeOut)
@requires(Perm.ORDER_HANDLE)
def callback_record(request, task_id: PathId, payload: CallbackIn):
    """Record the call: reached with the answers (any score ≤ 2 opens a complaint follow-up; not
    resolved reopens the order; else it is closed), or not reached (the third time closes it)."""
    out = services.callback_record(user=request.auth, task_id=task_id, **payload.model_dump())
    out.task = selectors.callback_get(request.auth, task_id)
    return out


# ---------------------------------------------------------------- the customer's link

@router.get("/surveys/{token}", response=SurveyPublicOut, auth=None)
@public
def survey_get(request, token: str):
    """What the survey page shows (no personal data). 404 unknown link; 410 used, expired or closed."""
    s = selectors.survey_public(token)
    o = s.order
    return {
        "order_number": o.number, "order_type": str(o.get_type_display()),
        "product": o.unit.model.name if o.unit_id else None,
        "service_date": timezone.localdate(o.completed_at) if o.completed_at else None,
        "technician": o.assignee.name if o.assignee_id else None, "expires_at": s.expires_at,
        "questions": [{"field": f, "label": str(label), "question": str(q)} for f, label, q in QUESTIONS],
    }


@router.post("/surveys/{token}", response=SurveyDoneOut, auth=None)
@public
def survey_answer(request, token: str, payload: SurveyIn):
    """Submit the survey (single use). 404 unknown link; 410 used, expired or closed; 400 naming
    each bad score."""
    out = services.survey_submit(token, **payload.model_dump())
    follow_up = out.reopened or out.complaint is not None or (out.survey is not None and out.survey.low)
    return {"message": str(services.THANKS_FOLLOW_UP if follow_up else services.THANKS), "follow_up": follow_up}


# ---------------------------------------------------------------- an order's surveys

@router.get("/orders/{order_id}/surveys", response=SurveyPage)
@requires(Perm.ORDER_VIEW)
def order_survey_list(request, order_id: PathId, limit: Limit, cursor: Cursor):
    """The surveys of an order (links sent and answers, by link or phone), oldest first."""
    qs = selectors.order_surveys(request.auth, order_id)
    return paginate(qs, ordering=["id"], cursor=cursor, limit=limit)
