"""The appraisal API (``/api/staff/appraisal/``): cycles (list, open, close, lock, publish, board,
ranking, Excel export), sheets (get, review steps, calibration), improvement plans, my sheets,
schemes and their versions. No ``from __future__ import annotations`` here (see
aftersales.api.permissions).

Thin over ``services_appraisal`` / ``selectors_appraisal`` and the pages' helpers, so the API
shows what the pages show. A cycle, sheet or node out of sight is 404; a step that is not the
caller's is 403; a state that does not allow it is 409; bad input is a 400 naming the fields.
"""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.db.models import Count, Prefetch
from django.http import Http404
from ninja import Field, Query, Router, Schema, Status

from aftersales.api.permissions import AUTHENTICATED, requires
from aftersales.api.schemas import Cursor, Id, In, Limit, NodeRef, PathId, Text, page_of, paginate
from aftersales.org.roles import Perm

from . import excel
from . import selectors_appraisal as reads
from . import services_appraisal as services
from . import views_appraisal as pages
from .models import (
    BonusMode,
    CycleKind,
    CycleStatus,
    GradingMode,
    Group,
    ItemKind,
    PlanStatus,
    Rule,
    Scheme,
    SchemeItem,
    SchemeVersion,
    Step,
)

router = Router(tags=["staff"])

NODE = Query(None, ge=1, le=2**63 - 1, description="单位（默认：周期范围内本人可见的最上级单位）")
Flag = Literal["warning", "last_place", "review_flag"]


# ================================================================ output

class CycleOut(Schema):
    id: int
    kind: str
    kind_label: str
    period_start: dt.date
    period_end: dt.date
    node: NodeRef
    status: str = Field(description="open | reviewing | calibrating | locked | published")
    status_label: str
    grading_mode: str
    grading: list[dict] = Field(description="bands：[{grade, min}]；forced：[{grade, percent}]")
    bonus_mode: str
    bonus: dict
    deadlines: dict[str, str] = Field(description="{环节: 截止日期}")
    last_place_cycles: int
    sheets: int | None = Field(None, description="考核表份数（列表中给出）")
    closed_at: dt.datetime | None
    locked_at: dt.datetime | None
    published_at: dt.datetime | None

    @staticmethod
    def resolve_kind_label(obj):
        return str(obj.get_kind_display())

    @staticmethod
    def resolve_status_label(obj):
        return str(obj.get_status_display())

    @staticmethod
    def resolve_sheets(obj):
        return getattr(obj, "n_sheets", None)


CyclePage = page_of(CycleOut)


class EmployeeRef(Schema):
    id: int
    employee_no: str
    name: str


class SheetRow(Schema):
    id: int
    cycle_id: int
    employee: EmployeeRef
    node: NodeRef
    role: str
    step: str
    step_label: str
    auto_total: Decimal | None
    total: Decimal | None
    grade: str
    rank: int | None
    rank_of: int | None
    bonus: Decimal | None
    last_place: bool
    review_flag: bool
    warning: bool

    @staticmethod
    def resolve_step_label(obj):
        return str(obj.get_step_display())


SheetPage = page_of(SheetRow)


class ScoreOut(Schema):
    code: str
    label: str
    group: str
    kind: str
    source: str
    step: str
    weight: Decimal
    rule: str
    rule_text: str
    value: Decimal | None = Field(description="自动指标的取值，或评审打分")
    value_text: str
    score: Decimal | None = Field(description="得分 0–100；无数据为 null（其权重分摊到其他指标）")


class GroupOut(Schema):
    group: str
    label: str
    weight: Decimal
    score: Decimal | None


class ReviewOut(Schema):
    step: str
    step_label: str
    reviewer: str | None
    scores: dict[str, float]
    adjustment: Decimal | None
    comment: str
    deadline: dt.date | None
    submitted_at: dt.datetime | None


class AwardOut(Schema):
    kind: str
    kind_label: str
    node: NodeRef
    score: Decimal | None


class FollowUpOut(Schema):
    at: dt.datetime
    author: str
    text: str


class PlanOut(Schema):
    id: int
    goals: list[dict]
    status: str
    due_on: dt.date
    coach: str | None
    follow_ups: list[FollowUpOut]


class ResultsOut(Schema):
    total: Decimal | None
    grade: str
    rank: int | None
    rank_of: int | None
    bonus: Decimal | None
    last_place: bool
    review_flag: bool
    warning: bool
    awards: list[AwardOut]
    plan: PlanOut | None


RESULT_FIELDS = ("total", "grade", "rank", "rank_of", "bonus", "last_place", "review_flag", "warning")


class MySheetOut(Schema):
    id: int
    cycle: CycleOut
    step: str
    step_label: str
    auto_total: Decimal | None
    published: bool
    total: Decimal | None = Field(description="以下各项在周期发布后给出")
    grade: str | None
    rank: int | None
    rank_of: int | None
    bonus: Decimal | None
    last_place: bool | None
    review_flag: bool | None
    warning: bool | None


class SheetOut(Schema):
    id: int
    cycle: CycleOut
    employee: EmployeeRef
    node: NodeRef
    role: str
    scheme_version: int
    step: str
    step_label: str
    auto_total: Decimal | None
    total: Decimal | None = Field(description="当前总分（本人在发布后可见）")
    groups: list[GroupOut]
    scores: list[ScoreOut]
    reviews: list[ReviewOut]
    results: ResultsOut | None = Field(description="锁定后给评审人，发布后给本人")
    may_do: str | None = Field(description="本人此刻可以完成的环节（self / supervisor / … / calibration），没有为 null")


# ================================================================ input

class GradeIn(In):
    grade: Text(10)
    min: Decimal | None = Field(None, description="按分数段：最低分")
    percent: Decimal | None = Field(None, description="强制分布：比例（%），从高到低")


class BonusIn(In):
    pool: Decimal | None = Field(None, description="奖金池（元），bonus_mode=pool")
    base: Decimal | None = Field(None, description="基数（元），bonus_mode=multiplier")
    multipliers: dict[Text(10), Decimal] | None = Field(None, description="{等级: 系数}")


class CycleIn(In):
    kind: CycleKind
    period_start: dt.date = Field(description="该期第一天（月初、季初、年初）")
    node_id: Id
    grading_mode: GradingMode = GradingMode.BANDS
    grading: list[GradeIn] = Field(max_length=20)
    bonus_mode: BonusMode = BonusMode.NONE
    bonus: BonusIn | None = None
    deadlines: dict[Text(20), dt.date] = Field(default_factory=dict, description="{环节: 截止日期}")
    last_place_cycles: int = Field(2, ge=1, le=12)


class ReviewIn(In):
    step: Literal[tuple(s.value for s in services.REVIEW_STEPS)]
    scores: dict[Text(40), Decimal] = Field(default_factory=dict, description="{指标编码: 0–100}")
    comment: Text(2000) = ""


class CalibrationIn(In):
    adjustment: Decimal = Field(description="总分调整（−100 到 100）")
    comment: Text(2000)


class GoalIn(In):
    text: Text(300)
    measure: Text(100) = ""
    due: dt.date | None = None


class PlanIn(In):
    goals: list[GoalIn] | None = Field(None, max_length=10)
    status: PlanStatus | None = None
    follow_up: Text(2000) | None = None


class ItemIn(In):
    code: Text(40)
    label: Text(100)
    group: Group
    kind: ItemKind
    source: Text(40) = Field("", description="自动取数：数据来源（质量指标代码或 training_hours 等）")
    step: Literal["", *(s.value for s in services.REVIEW_STEPS)] = Field("", description="评审打分：评分环节")
    weight: Decimal = Field(description="权重（%），各项之和为 100")
    rule: Rule
    params: dict[str, Any] | list[dict[str, Any]] = Field(
        description="linear {floor, target}；bands [{from, to, score}]；points {base, per_event, cap}")


class VersionIn(In):
    role: Text(30)
    valid_from: dt.date
    note: Text(300) = ""
    items: list[ItemIn] = Field(min_length=1, max_length=60)


class ItemOut(Schema):
    code: str
    label: str
    group: str
    kind: str
    source: str
    step: str
    weight: Decimal
    rule: str
    params: Any
    rule_text: str

    @staticmethod
    def resolve_rule_text(obj):
        return pages.rule_text(obj)


class VersionOut(Schema):
    id: int
    role: str
    number: int
    valid_from: dt.date
    note: str
    created_at: dt.datetime
    items: list[ItemOut]

    @staticmethod
    def resolve_role(obj):
        return obj.scheme.role

    @staticmethod
    def resolve_items(obj):
        return list(obj.items.all())


class SchemeOut(Schema):
    role: str
    name: str
    versions: list[VersionOut]

    @staticmethod
    def resolve_versions(obj):
        return list(obj.versions.all())


class ChartSeries(Schema):
    name: str
    data: list[float | None]


class ChartOut(Schema):
    kind: str = Field(description="nodes：下级单位 × 岗位的平均总分；people：某岗位人员的总分")
    role: str
    categories: list[str]
    links: list[str] = Field(description="每个类别的页面：下级单位的看板，或员工的考核表")
    series: list[ChartSeries]


# ================================================================ helpers

def _sheet_out(user, sheet) -> dict:
    ctx = pages.sheet_context(user, sheet)
    may_do = None
    if sheet.cycle.status in services.LIVE and services.may_review(user, sheet, sheet.step):
        may_do = sheet.step
    results = None
    if ctx["results"]:
        plan = ctx["plan"]
        results = {f: getattr(sheet, f) for f in RESULT_FIELDS}
        results["awards"] = [{"kind": a.kind, "kind_label": str(a.get_kind_display()), "node": a.node,
                              "score": a.score} for a in ctx["awards"]]
        results["plan"] = None if plan is None else {
            "id": plan.pk, "goals": plan.goals, "status": plan.status, "due_on": plan.due_on,
            "coach": plan.coach.get_username() if plan.coach_id else None,
            "follow_ups": [{"at": f.at, "author": f.author.get_username(), "text": f.text} for f in ctx["follow_ups"]]}
    return {
        "id": sheet.pk, "cycle": sheet.cycle, "employee": sheet.employee, "node": sheet.node, "role": sheet.role,
        "scheme_version": sheet.version.number, "step": sheet.step, "step_label": str(sheet.get_step_display()),
        "auto_total": sheet.auto_total, "total": sheet.total if ctx["show_total"] else None,
        "groups": [{"group": g["group"], "label": str(g["label"]), "weight": g["weight"], "score": g["score"]}
                   for g in ctx["groups"]],
        "scores": [{"code": s.item.code, "label": s.item.label, "group": s.item.group, "kind": s.item.kind,
                    "source": s.item.source, "step": s.item.step, "weight": s.item.weight, "rule": s.item.rule,
                    "rule_text": pages.rule_text(s.item), "value": s.value,
                    "value_text": pages.value_text(s.item, s.value), "score": s.score} for s in ctx["scores"]],
        "reviews": [{"step": r.step, "step_label": str(r.get_step_display()),
                     "reviewer": r.reviewer.get_username() if r.reviewer_id else None, "scores": r.scores,
                     "adjustment": r.adjustment, "comment": r.comment, "deadline": r.deadline,
                     "submitted_at": r.submitted_at} for r in ctx["reviews"]],
        "results": results, "may_do": may_do,
    }


def _node_in(user, cycle, node_id):
    """The board's node: ``node_id`` among the cycle's nodes in the caller's scope (404 if not
    there), else the top one."""
    nodes = pages.board_nodes(user, cycle)
    if node_id is None:
        return nodes[0] if nodes else None
    node = next((n for n in nodes if n.pk == node_id), None)
    if node is None:
        raise Http404
    return node


# ================================================================ cycles

@router.get("/cycles", response=CyclePage)
@requires(Perm.APPRAISAL_REVIEW)
def cycle_list(request, limit: Limit, cursor: Cursor,
               status: Annotated[CycleStatus | None, Query(None)] = None,
               kind: Annotated[CycleKind | None, Query(None)] = None):
    """The cycles in the caller's scope, newest period first, with their number of sheets."""
    qs = reads.cycles_visible(request.auth).annotate(n_sheets=Count("sheets"))
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    return paginate(qs, ordering=pages.CYCLE_ORDERING, cursor=cursor, limit=limit)


@router.post("/cycles", response={201: CycleOut})
@requires(Perm.APPRAISAL_MANAGE)
def cycle_open(request, payload: CycleIn):
    """Open a cycle over a node's subtree (``appraisal.manage`` there). 400 naming the fields
    (``period_start`` not the first day of its period, ``grading`` not adding up to 100 %, …)."""
    d = payload.model_dump()
    d["grading"] = [{k: v for k, v in g.items() if v is not None} for g in d["grading"]]
    d["bonus"] = {k: v for k, v in (d["bonus"] or {}).items() if v is not None}
    cycle = services.cycle_open(user=request.auth, **d)
    return Status(201, reads.cycle_get(request.auth, cycle.pk))


@router.get("/cycles/{cycle_id}", response=CycleOut)
@requires(Perm.APPRAISAL_REVIEW)
def cycle_get(request, cycle_id: PathId):
    cycle = reads.cycle_get(request.auth, cycle_id)
    cycle.n_sheets = cycle.sheets.count()
    return cycle


def _run(request, fn, cycle_id):
    fn(user=request.auth, cycle_id=cycle_id)
    return reads.cycle_get(request.auth, cycle_id)


@router.post("/cycles/{cycle_id}/close", response=CycleOut)
@requires(Perm.APPRAISAL_MANAGE)
def cycle_close(request, cycle_id: PathId):
    """End the data collection of an open cycle whose period is over: a sheet per person with the
    automatic items filled; every sheet at the self-assessment (409 before the period's end)."""
    return _run(request, services.cycle_close, cycle_id)


@router.post("/cycles/{cycle_id}/lock", response=CycleOut)
@requires(Perm.APPRAISAL_MANAGE)
def cycle_lock(request, cycle_id: PathId):
    """Lock a cycle under review and compute the results (totals, grades, ranks, bonus, awards,
    flags, improvement plans)."""
    return _run(request, services.cycle_lock, cycle_id)


@router.post("/cycles/{cycle_id}/publish", response=CycleOut)
@requires(Perm.APPRAISAL_MANAGE)
def cycle_publish(request, cycle_id: PathId):
    """Publish a locked cycle to the people."""
    return _run(request, services.cycle_publish, cycle_id)


@router.get("/cycles/{cycle_id}/sheets", response=SheetPage)
@requires(Perm.APPRAISAL_REVIEW)
def cycle_sheets(request, cycle_id: PathId, limit: Limit, cursor: Cursor,
                 node_id: Annotated[int | None, NODE] = None,
                 role: Annotated[str, Query("", max_length=30)] = "",
                 step: Annotated[Step | None, Query(None)] = None,
                 grade: Annotated[str, Query("", max_length=10)] = "",
                 flag: Annotated[Flag | None, Query(None)] = None,
                 q: Annotated[str, Query("", max_length=50, description="姓名或工号")] = ""):
    """The board: the sheets of the chosen node's subtree in the caller's scope, by node, role and
    rank (keyset pages)."""
    user = request.auth
    cycle = reads.cycle_get(user, cycle_id)
    node = _node_in(user, cycle, node_id)
    f = {"node": node, "role": role, "step": step.value if step else "", "grade": grade,
         "flag": flag or "", "q": q.strip()}
    return paginate(pages.board_queryset(user, cycle, f), ordering=pages.BOARD_ORDERING, cursor=cursor, limit=limit)


@router.get("/cycles/{cycle_id}/ranking", response=ChartOut)
@requires(Perm.APPRAISAL_REVIEW)
def cycle_ranking(request, cycle_id: PathId, node_id: Annotated[int | None, NODE] = None,
                  role: Annotated[str, Query("", max_length=30)] = ""):
    """The rankings chart of the board, by node × role: below a node with sheets further down, the
    mean total of each child node per role; at the bottom, the people of one role by total."""
    user = request.auth
    cycle = reads.cycle_get(user, cycle_id)
    node = _node_in(user, cycle, node_id)
    if node is None:
        return {"kind": "people", "role": role, "categories": [], "links": [], "series": []}
    f = {"node": node, "role": role}
    return pages.ranking(cycle, f, reads.sheets_for_board(user, cycle, node))


@router.get("/cycles/{cycle_id}/export.xlsx")
@requires(Perm.APPRAISAL_REVIEW)
def cycle_export(request, cycle_id: PathId, node_id: Annotated[int | None, NODE] = None):
    """The results of the cycle as an Excel workbook (the caller's scope, optionally one node's
    subtree): node, role, employee, group scores, total, grade, rank, bonus, flags."""
    user = request.auth
    cycle = reads.cycle_get(user, cycle_id)
    node = _node_in(user, cycle, node_id) if node_id else None
    return pages.xlsx_response(excel.cycle_workbook(user, cycle, node), excel.filename(cycle, node))


# ================================================================ sheets

@router.get("/me/sheets", response=list[MySheetOut])
@requires(AUTHENTICATED)
def my_sheets(request, limit: Annotated[int, Query(24, ge=1, le=120, description="最近几个周期")] = 24):
    """The caller's own sheets, newest cycle first: the cycle, the step, and once the cycle is
    published the results (the items and reviews: ``GET /sheets/{id}``)."""
    out = []
    for s in reads.my_sheets(request.auth).select_related("cycle__node")[:limit]:
        published = s.cycle.status == CycleStatus.PUBLISHED
        out.append({"id": s.pk, "cycle": s.cycle, "step": s.step, "step_label": str(s.get_step_display()),
                    "auto_total": s.auto_total, "published": published,
                    **{f: getattr(s, f) if published else None for f in RESULT_FIELDS}})
    return out


@router.get("/sheets/{sheet_id}", response=SheetOut)
@requires(AUTHENTICATED)
def sheet_get(request, sheet_id: PathId):
    """A sheet: the person's own, or one in the caller's review scope."""
    return _sheet_out(request.auth, reads.sheet_get(request.auth, sheet_id))


@router.post("/sheets/{sheet_id}/reviews", response={201: SheetOut})
@requires(AUTHENTICATED)
def review_submit(request, sheet_id: PathId, payload: ReviewIn):
    """Do the sheet's current step: a rating 0–100 for each manual item of that step, and a
    comment. ``self`` by the person; ``supervisor`` / ``department`` / ``company`` by their roles
    over the person's node (403 otherwise; 409 out of turn)."""
    services.review_submit(user=request.auth, sheet_id=sheet_id, step=payload.step, scores=payload.scores,
                           comment=payload.comment)
    return Status(201, _sheet_out(request.auth, reads.sheet_get(request.auth, sheet_id)))


@router.post("/sheets/{sheet_id}/calibration", response=SheetOut)
@requires(Perm.APPRAISAL_MANAGE)
def sheet_calibrate(request, sheet_id: PathId, payload: CalibrationIn):
    """The manager's calibration once the review steps are done: an adjustment of the total with
    its reason (may be redone until the cycle is locked)."""
    services.calibrate(user=request.auth, sheet_id=sheet_id, adjustment=payload.adjustment,
                       comment=payload.comment)
    return _sheet_out(request.auth, reads.sheet_get(request.auth, sheet_id))


@router.post("/plans/{plan_id}", response=PlanOut)
@requires(Perm.APPRAISAL_REVIEW)
def plan_update(request, plan_id: PathId, payload: PlanIn):
    """Change an improvement plan's goals or status, or add a follow-up (the person's managers)."""
    d = payload.model_dump()
    if d["goals"] is not None:
        d["goals"] = [{**g, "due": g["due"].isoformat() if g["due"] else None} for g in d["goals"]]
    plan = services.plan_update(user=request.auth, plan_id=plan_id, **d)
    return {"id": plan.pk, "goals": plan.goals, "status": plan.status, "due_on": plan.due_on,
            "coach": plan.coach.get_username() if plan.coach_id else None,
            "follow_ups": [{"at": f.at, "author": f.author.get_username(), "text": f.text}
                           for f in plan.follow_ups.select_related("author")]}


# ================================================================ schemes

def _versions():
    return SchemeVersion.objects.select_related("scheme").order_by("-valid_from").prefetch_related(
        Prefetch("items", queryset=SchemeItem.objects.order_by("position", "id")))


@router.get("/schemes", response=list[SchemeOut])
@requires(Perm.APPRAISAL_REVIEW)
def scheme_list(request):
    """Every role's scheme with its versions (newest first) and their items."""
    return list(Scheme.objects.order_by("role").prefetch_related(Prefetch("versions", queryset=_versions())))


@router.post("/schemes/versions", response={201: VersionOut})
@requires(Perm.APPRAISAL_MANAGE)
def scheme_version_create(request, payload: VersionIn):
    """A new version of a role's scheme (headquarters), in force from ``valid_from`` — after every
    cycle already opened. The weights must add up to 100 (``weights``); each item's rule
    parameters are checked (``items[i].params``)."""
    d = payload.model_dump()
    version = services.scheme_version_create(user=request.auth, role=d["role"], valid_from=d["valid_from"],
                                             items=d["items"], note=d["note"])
    return Status(201, _versions().get(pk=version.pk))
