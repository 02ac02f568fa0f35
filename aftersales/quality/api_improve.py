"""The quality API, part improve (``/api/quality/improve/``): improvement actions and their
effect, the survey analysis, the service-norm checklist, targets and sales. No
``from __future__ import annotations`` here (see aftersales.api.permissions).

Thin over ``services`` (writes: 400 naming every bad field, 403, 404 out of scope, 409 a move
the status does not allow) and ``selectors_improve`` (reads, scoped once)."""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Field, File, Query, Router, Schema, Status, UploadedFile
from pydantic import conlist

from aftersales.api.permissions import AUTHENTICATED, requires
from aftersales.api.schemas import Cursor, Id, In, Limit, NodeRef, PathId, QueryId, Text, page_of, paginate
from aftersales.core.errors import NotFound, ValidationFailed
from aftersales.imports.tabular import MAX_BYTES
from aftersales.org.roles import Perm
from aftersales.tickets import workflow
from aftersales.tickets.models import WorkOrder

from . import selectors, services
from . import selectors_improve as reads
from .models import ActionSource, ActionStatus

router = Router(tags=["quality"])

MoveName = Annotated[str, Field(pattern="^(start|done|verify|reopen|cancel)$")]


def _node(user, node_id):
    return selectors.node_for(user, node_id)


def _range(start, end, *, months: int = 3) -> tuple[dt.date, dt.date]:
    today = timezone.localdate()
    end = end or today
    start = start or reads.add_months(today, -(months - 1))
    if end < start:
        raise ValidationFailed({"end": [_("截止日期不能早于开始日期。")]})
    if (end - start).days > 366 * 3:
        raise ValidationFailed({"start": [_("日期范围最长三年。")]})
    return start, end


# ================================================================ schemas

class UserRef(Schema):
    id: int
    username: str
    name: str


def _user(u) -> dict | None:
    return None if u is None else {"id": u.pk, "username": u.get_username(), "name": reads.person_label(u)}


class FaultEvent(Schema):
    id: str
    parent: str = ""
    text: str


class NoteOut(Schema):
    id: int
    at: dt.datetime
    author: UserRef
    status: str
    text: str

    @staticmethod
    def resolve_author(obj):
        return _user(obj.author)


class ActionOut(Schema):
    id: int
    number: str
    title: str
    source: str
    indicator: str
    node: NodeRef
    dim: str
    key: str
    period_from: dt.date | None
    period_to: dt.date | None
    complaint_id: int | None
    owner: UserRef
    due_on: dt.date
    status: str
    status_label: str
    overdue: bool
    baseline: Decimal | None = Field(description="发起前 3 个整月的指标值")
    created_at: dt.datetime
    done_at: dt.datetime | None
    verified_at: dt.datetime | None

    @staticmethod
    def resolve_owner(obj):
        return _user(obj.owner)

    @staticmethod
    def resolve_status_label(obj):
        return str(obj.get_status_display())

    @staticmethod
    def resolve_overdue(obj):
        return reads.is_overdue(obj)


ActionPage = page_of(ActionOut)


class ActionDetailOut(ActionOut):
    problem: str
    whys: list[str]
    fault_tree: list[FaultEvent]
    root_cause: str
    plan: str
    result_note: str
    created_by: UserRef
    notes: list[NoteOut]
    moves: list[str] = Field(description="调用者现在可以执行的状态操作")

    @staticmethod
    def resolve_created_by(obj):
        return _user(obj.created_by)

    @staticmethod
    def resolve_fault_tree(obj):
        return [{"id": str(n.get("id", "")), "parent": str(n.get("parent") or ""), "text": str(n.get("text", ""))}
                for n in obj.fault_tree if isinstance(n, dict)]

    @staticmethod
    def resolve_notes(obj):
        return reads.notes_of(obj)

    @staticmethod
    def resolve_moves(obj, context):
        return [m.name for m in services.action_moves(context["request"].auth, obj)]


class FaultEventIn(In):
    id: Text(20) | int
    parent: Text(20) | int | None = None
    text: Text(200)


class ActionIn(In):
    source: ActionSource = ActionSource.OTHER
    indicator: Text(40) = Field("", description="指标编码（来源为指标或满意度分析时必填）")
    node_id: Id | None = Field(None, description="节点；来源为投诉时默认投诉工单的网点")
    dim: Text(10) = ""
    key: Text(30) = ""
    period_from: dt.date | None = None
    period_to: dt.date | None = None
    complaint_id: Id | None = None
    title: Text(200)
    problem: Text(5000)
    whys: conlist(Text(500), max_length=20) = Field([], description="五问法，最多 5 问")
    fault_tree: conlist(FaultEventIn, max_length=200) = Field([], description="故障树：一个顶事件，最多 50 个事件")
    root_cause: Text(5000) = ""
    plan: Text(5000) = ""
    owner_id: Id
    due_on: dt.date


class ActionPatch(In):
    title: Text(200) | None = None
    problem: Text(5000) | None = None
    whys: conlist(Text(500), max_length=20) | None = None
    fault_tree: conlist(FaultEventIn, max_length=200) | None = None
    root_cause: Text(5000) | None = None
    plan: Text(5000) | None = None
    result_note: Text(5000) | None = None
    owner_id: Id | None = None
    due_on: dt.date | None = None


class NoteIn(In):
    text: Text(2000)


class MoveIn(In):
    note: Text(2000) = Field("", description="说明；退回重做与取消时必填")


class EffectMonth(Schema):
    month: dt.date
    value: float | None


class EffectOut(Schema):
    code: str
    label: str = ""
    unit: str = ""
    better: str | None = None
    baseline: float | None
    after: float | None = Field(description="完成当月之后各整月合计计算的指标值")
    change: float | None
    improved: bool | None
    raised_month: dt.date | None
    done_month: dt.date | None
    months: list[EffectMonth]


# ---------------------------------------------------------------- survey analysis

class DimOut(Schema):
    code: str
    indicator: str
    label: str
    mean: float | None
    max: int | None
    min: int | None
    dist: list[int] = Field(description="1–5 分各自的份数")
    share_ge4: float | None

    @staticmethod
    def resolve_label(obj):
        return str(obj["label"])


class RankOut(Schema):
    id: int
    name: str
    n: int
    overall_mean: float | None
    timeliness_mean: float | None
    attitude_mean: float | None
    professionalism_mean: float | None
    result_mean: float | None


class SurveyOut(Schema):
    node: NodeRef
    start: dt.date
    end: dt.date
    n: int
    dims: list[DimOut]
    outlets: list[RankOut]
    technicians: list[RankOut]


class CommentOut(Schema):
    id: int
    answered_at: dt.datetime
    order_number: str
    node: str
    technician: str | None
    overall: int
    timeliness: int
    attitude: int
    professionalism: int
    result: int
    resolved: bool | None
    low: bool = Field(description="总体评价 ≤ 3 分")
    comment: str

    @staticmethod
    def resolve_order_number(obj):
        return obj.order.number

    @staticmethod
    def resolve_node(obj):
        return obj.node.name

    @staticmethod
    def resolve_technician(obj):
        return obj.order.assignee.name if obj.order.assignee_id else None

    @staticmethod
    def resolve_low(obj):
        return bool(obj.low_first)


CommentPage = page_of(CommentOut)


# ---------------------------------------------------------------- norms

class NormItemOut(Schema):
    id: int
    code: str
    text: str
    text_en: str
    position: int
    active: bool


class NormItemIn(In):
    code: Text(30) = Field("", description="新增时必填；之后不可修改")
    text: Text(200)
    text_en: Text(200) = ""
    position: int | None = Field(None, ge=0, le=32767)
    active: bool = True


class NormCheckOut(Schema):
    order_id: int
    answers: dict[str, bool]
    items: int
    met: int
    ok: bool
    note: str
    answered_by: UserRef | None
    answered_at: dt.datetime | None

    @staticmethod
    def resolve_answered_by(obj):
        return _user(obj.answered_by) if obj.answered_by_id else None


class NormCheckIn(In):
    answers: dict[Text(30), Any] = Field(description="检查项编码 → 是否达标（true/false）；每个启用的检查项都须回答")
    note: Text(300) = ""


# ---------------------------------------------------------------- targets and sales

class TargetRowOut(Schema):
    code: str
    label: str
    unit: str
    better: str | None
    target: float | None
    amber: float | None
    source: str = Field(description="own 本节点 / inherited 继承上级 / default 系统默认 / none 未设")
    from_node: str | None

    @staticmethod
    def resolve_label(obj):
        return str(obj["label"])


class TargetIn(In):
    node_id: Id
    indicator: Text(40)
    target: Decimal
    amber: Decimal | None = Field(None, description="黄灯容差；默认取系统默认值")


class TargetOut(Schema):
    indicator: str
    node_id: int
    target: Decimal
    amber: Decimal
    updated_at: dt.datetime


class SalesEntryIn(In):
    node_id: Id
    month: Text(10) = Field(description="YYYY-MM")
    amount: Decimal | None = Field(description="元；null 清除该月数据")


class ModelSalesEntryIn(In):
    model_id: Id
    month: Text(10) = Field(description="YYYY-MM")
    units: int | None = Field(description="台数；null 清除该月数据")


class SalesIn(In):
    entries: conlist(SalesEntryIn, min_length=1, max_length=2000)


class ModelSalesIn(In):
    entries: conlist(ModelSalesEntryIn, min_length=1, max_length=5000)


class SetResultOut(Schema):
    created: int
    updated: int
    cleared: int
    unchanged: int


class SalesRowOut(Schema):
    node: NodeRef
    months: list[Decimal | None]
    total: Decimal


class SalesGridOut(Schema):
    node: NodeRef
    year: int
    rows: list[SalesRowOut]


class ModelRef(Schema):
    id: int
    code: str
    name: str


class ModelSalesRowOut(Schema):
    model: ModelRef
    months: list[int | None]
    total: int


class ModelSalesGridOut(Schema):
    year: int
    rows: list[ModelSalesRowOut]


class ImportFailureOut(Schema):
    row: int
    fields: str
    reason: str


class ImportResultOut(Schema):
    total: int
    created: int
    updated: int
    unchanged: int
    errors: int
    failures: list[ImportFailureOut]


# ================================================================ actions

@router.get("/actions", response=ActionPage)
@requires(AUTHENTICATED)
def action_list(request, limit: Limit, cursor: Cursor, status: ActionStatus | None = None, overdue: bool = False,
                mine: bool = False, node_id: QueryId = None):
    """The actions the caller sees (``quality.view`` over the node, or their own), by due date."""
    node = _node(request.auth, node_id) if node_id else None
    qs = reads.action_list(request.auth, status=status or "", overdue=overdue, mine=mine, node=node)
    return paginate(qs, ordering=reads.ACTION_ORDERING, cursor=cursor, limit=limit)


@router.post("/actions", response={201: ActionDetailOut})
@requires(Perm.QUALITY_VIEW)
def action_raise(request, payload: ActionIn):
    """Raise an improvement action (from a figure, a complaint, a survey analysis or other); the
    baseline of its indicator is kept. 400 naming every bad field; 404 a node out of scope."""
    data = payload.model_dump()
    a = services.action_raise(user=request.auth, **data)
    return Status(201, reads.action_get(request.auth, a.pk))


@router.get("/actions/{action_id}", response=ActionDetailOut)
@requires(AUTHENTICATED)
def action_get(request, action_id: PathId):
    return reads.action_get(request.auth, action_id)


@router.patch("/actions/{action_id}", response=ActionDetailOut)
@requires(AUTHENTICATED)
def action_update(request, action_id: PathId, payload: ActionPatch):
    """Change an action (its owner or ``quality.manage``); only what is given changes."""
    a = reads.action_get(request.auth, action_id)
    services.action_update(user=request.auth, action_id=a.pk, **payload.model_dump(exclude_unset=True))
    return reads.action_get(request.auth, action_id)


@router.post("/actions/{action_id}/notes", response={201: NoteOut})
@requires(AUTHENTICATED)
def action_note(request, action_id: PathId, payload: NoteIn):
    a = reads.action_get(request.auth, action_id)
    return Status(201, services.action_note(user=request.auth, action_id=a.pk, text=payload.text))


@router.post("/actions/{action_id}/moves/{move}", response=ActionDetailOut)
@requires(AUTHENTICATED)
def action_move(request, action_id: PathId, move: MoveName, payload: MoveIn | None = None):
    """start (open → in progress), done, verify (``quality.manage``, not the owner), reopen (back
    to in progress, with a reason), cancel (with a reason). 409 when the status does not allow it."""
    a = reads.action_get(request.auth, action_id)
    services.action_move(user=request.auth, action_id=a.pk, move=move, note=payload.note if payload else "")
    return reads.action_get(request.auth, action_id)


@router.get("/actions/{action_id}/effect", response=EffectOut)
@requires(AUTHENTICATED)
def action_effect(request, action_id: PathId):
    """The targeted indicator per month from three months before the action was raised to now,
    the baseline and the indicator over the months after it was done."""
    a = reads.action_get(request.auth, action_id)
    return reads.action_effect(a)


# ================================================================ survey analysis

@router.get("/surveys", response=SurveyOut)
@requires(Perm.QUALITY_VIEW)
def survey_analysis(request, node_id: QueryId = None, start: dt.date | None = None, end: dt.date | None = None):
    """Per dimension the mean, maximum, minimum, distribution of 1–5 and share of 4–5 of the
    surveys answered on the local days [start, end] (default: this month and the two before) at
    the node's subtree; the outlets and technicians with the lowest mean overall score (≥ 5
    answers)."""
    node = _node(request.auth, node_id)
    start, end = _range(start, end)
    a = reads.survey_analysis(node, start, end)
    return {"node": node, "start": start, "end": end, "n": a.n, "dims": a.dims, "outlets": a.outlets,
            "technicians": a.technicians}


@router.get("/surveys/comments", response=CommentPage)
@requires(Perm.QUALITY_VIEW)
def survey_comments(request, limit: Limit, cursor: Cursor, node_id: QueryId = None, start: dt.date | None = None,
                    end: dt.date | None = None, low: bool = Query(False, description="只看总体评价 ≤ 3 分")):
    """The customers' comments, low overall scores first, then the latest (no customer data)."""
    node = _node(request.auth, node_id)
    start, end = _range(start, end)
    qs = reads.survey_comments(node, start, end, low_only=low)
    return paginate(qs, ordering=reads.COMMENT_ORDERING, cursor=cursor, limit=limit)


# ================================================================ the service-norm checklist

@router.get("/norms/items", response=list[NormItemOut])
@requires(AUTHENTICATED)
def norm_items(request, all: bool = Query(False, description="包括已停用的检查项")):  # noqa: A002
    return reads.norm_items(active_only=not all)


@router.post("/norms/items", response={201: NormItemOut})
@requires(Perm.QUALITY_MANAGE, at_hq=True)
def norm_item_create(request, payload: NormItemIn):
    return Status(201, services.norm_item_save(user=request.auth, **payload.model_dump()))


@router.put("/norms/items/{item_id}", response=NormItemOut)
@requires(Perm.QUALITY_MANAGE, at_hq=True)
def norm_item_update(request, item_id: PathId, payload: NormItemIn):
    data = payload.model_dump()
    data.pop("code")
    return services.norm_item_save(user=request.auth, item_id=item_id, **data)


def _order_seen(user, order_id: int) -> WorkOrder:
    o = WorkOrder.objects.select_related("assignee").filter(pk=order_id).first()
    if o is None or not workflow.can_see(user, o):
        raise NotFound()
    return o


@router.get("/norms/orders/{order_id}", response=NormCheckOut)
@requires(AUTHENTICATED)
def norm_check_get(request, order_id: PathId):
    """The order's checklist as answered (404 when it was not answered, or the order is not seen)."""
    _order_seen(request.auth, order_id)
    check = reads.norm_check_of(order_id)
    if check is None:
        raise NotFound()
    return check


@router.put("/norms/orders/{order_id}", response=NormCheckOut)
@requires(AUTHENTICATED)
def norm_check_answer(request, order_id: PathId, payload: NormCheckIn):
    """Answer the checklist of an order (its technician, or ``order.handle``): every active item
    met or not. 409 unless the order is on site … completed."""
    return services.norm_check_answer(user=request.auth, order_id=order_id, answers=payload.answers,
                                      note=payload.note)


# ================================================================ targets

@router.get("/targets", response=list[TargetRowOut])
@requires(Perm.QUALITY_VIEW)
def target_list(request, node_id: QueryId = None):
    """Every indicator's target at the node: its own, inherited from the nearest ancestor, or the default."""
    return reads.target_rows(_node(request.auth, node_id))


@router.put("/targets", response=TargetOut)
@requires(Perm.QUALITY_MANAGE)
def target_set(request, payload: TargetIn):
    return services.target_set(user=request.auth, **payload.model_dump())


@router.delete("/targets/{node_id}/{indicator}", response={204: None})
@requires(Perm.QUALITY_MANAGE)
def target_clear(request, node_id: PathId, indicator: Text(40)):
    services.target_clear(user=request.auth, node_id=node_id, indicator=indicator)
    return Status(204, None)


# ================================================================ sales

def _year(year: int | None) -> int:
    today = timezone.localdate()
    return year or today.year


@router.get("/sales", response=SalesGridOut)
@requires(Perm.QUALITY_VIEW)
def sales_grid(request, node_id: QueryId = None, year: int | None = Query(None, ge=2000, le=2100)):
    """Sales (yuan) of the outlets under the node, per month of the year."""
    node = _node(request.auth, node_id)
    y = _year(year)
    grid = reads.sales_grid(node, y)
    return {"node": node, "year": y,
            "rows": [{"node": r["node"], "months": r["cells"], "total": r["total"]} for r in grid["rows"]]}


@router.put("/sales", response=SetResultOut)
@requires(Perm.QUALITY_MANAGE)
def sales_set(request, payload: SalesIn):
    """Sales of outlets per month (all entries checked first, then written together)."""
    return services.sales_set_many(user=request.auth, entries=payload.model_dump()["entries"])


def _read(file: UploadedFile) -> bytes:
    if file.size is not None and file.size > MAX_BYTES:
        raise ValidationFailed({"file": [_("文件过大，上限为 20 MB，请拆分后分批导入。")]})
    return file.read(MAX_BYTES + 1)


def _result(r) -> dict:
    return {"total": r.total, "created": r.created, "updated": r.updated, "unchanged": r.unchanged, "errors": r.errors,
            "failures": [{"row": f.row.number, "fields": f.fields, "reason": f.reason} for f in r.failures]}


@router.post("/sales/import", response=ImportResultOut)
@requires(Perm.QUALITY_MANAGE)
def sales_import(request, file: File[UploadedFile]):
    """节点编码 / 月份 (YYYY-MM) / 销售额 from .xlsx or CSV: bad rows are reported by row and
    field and not written, the others are."""
    return _result(services.sales_import(user=request.auth, content=_read(file)))


@router.get("/model-sales", response=ModelSalesGridOut)
@requires(Perm.QUALITY_VIEW)
def model_sales_grid(request, year: int | None = Query(None, ge=2000, le=2100), category_id: QueryId = None):
    y = _year(year)
    grid = reads.model_sales_grid(y, category_id=category_id)
    return {"year": y, "rows": [{"model": r["model"], "months": r["cells"], "total": r["total"]} for r in grid["rows"]]}


@router.put("/model-sales", response=SetResultOut)
@requires(Perm.QUALITY_MANAGE, at_hq=True)
def model_sales_set(request, payload: ModelSalesIn):
    return services.model_sales_set_many(user=request.auth, entries=payload.model_dump()["entries"])


@router.post("/model-sales/import", response=ImportResultOut)
@requires(Perm.QUALITY_MANAGE, at_hq=True)
def model_sales_import(request, file: File[UploadedFile]):
    """型号编码 / 月份 (YYYY-MM) / 台数 from .xlsx or CSV."""
    return _result(services.model_sales_import(user=request.auth, content=_read(file)))

