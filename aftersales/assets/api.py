"""The assets API (``/api/assets/``): the loaner pool, loans (lend, return, overdue, the orders
that qualify), the loan policy, and the tool register with its calibration history. No
``from __future__ import annotations`` here (see aftersales.api.permissions)."""

import datetime as dt
from decimal import Decimal
from typing import Literal

from django.utils import timezone
from ninja import Field, Query, Router, Schema

from aftersales.api.permissions import requires
from aftersales.api.schemas import Cursor, Id, In, Limit, NodeRef, PathId, QueryId, Text, page_of, paginate
from aftersales.org.models import Employee
from aftersales.org.roles import Perm

from . import selectors, services
from .models import (
    CalibrationResult,
    CheckKind,
    LoanerState,
    LoanReason,
    ReturnCondition,
    ToolKind,
    ToolState,
)

router = Router(tags=["assets"])

Money = Field(Decimal("0"), ge=0, le=Decimal("99999.99"), max_digits=7, decimal_places=2,
              description="元，最多两位小数")


# ---------------------------------------------------------------- output

class CategoryRef(Schema):
    id: int
    code: str
    name: str


class EmployeeRef(Schema):
    id: int
    employee_no: str
    name: str


class OrderRef(Schema):
    id: int
    number: str
    status: str
    status_label: str

    @staticmethod
    def resolve_status_label(obj):
        return str(obj.get_status_display())


class LoanerOut(Schema):
    id: int
    asset_no: str
    model_name: str
    serial: str
    category: CategoryRef
    node: NodeRef
    state: str
    state_label: str
    condition_note: str
    daily_cost: Decimal
    acquired_on: dt.date | None

    @staticmethod
    def resolve_state_label(obj):
        return str(obj.get_state_display())


LoanerPage = page_of(LoanerOut)


class PoolOut(Schema):
    node_id: int
    node_name: str
    counts: dict[str, int] = Field(description="各状态台数：available 可借、lent 已借出、maintenance 维护中、retired 已报废")
    total: int


class LoanOut(Schema):
    id: int
    loaner: LoanerOut
    order: OrderRef
    customer: str = Field(description="客户姓名")
    node: NodeRef
    reason: str
    reason_label: str
    note: str
    lent_at: dt.datetime
    lent_by: str | None
    due_on: dt.date
    overdue: bool
    days_overdue: int
    daily_cost: Decimal
    returned_at: dt.datetime | None
    returned_by: str | None
    return_condition: str
    return_note: str

    @staticmethod
    def resolve_customer(obj):
        return obj.order.customer.name

    @staticmethod
    def resolve_reason_label(obj):
        return str(obj.get_reason_display())

    @staticmethod
    def resolve_lent_by(obj):
        return obj.lent_by.get_username() if obj.lent_by_id else None

    @staticmethod
    def resolve_returned_by(obj):
        return obj.returned_by.get_username() if obj.returned_by_id else None

    @staticmethod
    def resolve_overdue(obj):
        return obj.returned_at is None and obj.due_on < timezone.localdate()

    @staticmethod
    def resolve_days_overdue(obj):
        return max(0, (timezone.localdate() - obj.due_on).days) if obj.returned_at is None else 0


LoanPage = page_of(LoanOut)


class CandidateOut(Schema):
    order: OrderRef
    node: NodeRef
    customer: str
    product: str | None
    category: CategoryRef | None
    technician: str | None
    created_at: dt.datetime
    days_open: int = Field(description="受理至今的天数")
    after_days: int = Field(description="本网点规定：维修超过此天数可借备用机")

    @staticmethod
    def resolve_order(obj):
        return obj

    @staticmethod
    def resolve_customer(obj):
        return obj.customer.name

    @staticmethod
    def resolve_product(obj):
        return obj.unit.model.name if obj.unit_id else None

    @staticmethod
    def resolve_category(obj):
        return obj.unit.model.category if obj.unit_id else None

    @staticmethod
    def resolve_technician(obj):
        return obj.assignee.name if obj.assignee_id else None

    @staticmethod
    def resolve_days_open(obj):
        return selectors.days_open(obj)


CandidatePage = page_of(CandidateOut)


class PolicyOut(Schema):
    node: NodeRef
    after_days: int
    inherited_from: NodeRef | None = Field(description="规则继承自的上级节点；为空表示本节点自有规则或系统默认")
    is_default: bool


class ToolOut(Schema):
    id: int
    code: str
    name: str
    kind: str
    kind_label: str
    model_name: str
    serial: str
    node: NodeRef
    holder: EmployeeRef | None
    check_kind: str
    check_label: str
    interval_months: int | None
    due_on: dt.date | None = Field(description="校准/检验有效期至（含当日）")
    due: str = Field(description="overdue 已过期、soon 7 天内到期，或空")
    certificate_no: str
    has_certificate: bool
    state: str
    state_label: str
    note: str

    @staticmethod
    def resolve_kind_label(obj):
        return str(obj.get_kind_display())

    @staticmethod
    def resolve_check_label(obj):
        return str(obj.get_check_kind_display())

    @staticmethod
    def resolve_due(obj):
        return selectors.due_flag(obj)

    @staticmethod
    def resolve_has_certificate(obj):
        return bool(obj.certificate)

    @staticmethod
    def resolve_state_label(obj):
        return str(obj.get_state_display())


ToolPage = page_of(ToolOut)


class CalibrationOut(Schema):
    id: int
    tool_id: int
    done_on: dt.date
    result: str
    result_label: str
    certificate_no: str
    agency: str
    next_due: dt.date | None
    note: str
    recorded_by: str | None
    recorded_at: dt.datetime

    @staticmethod
    def resolve_result_label(obj):
        return str(obj.get_result_display())

    @staticmethod
    def resolve_recorded_by(obj):
        return obj.recorded_by.get_username() if obj.recorded_by_id else None


CalibrationPage = page_of(CalibrationOut)


# ---------------------------------------------------------------- input

class LoanerIn(In):
    node_id: Id = Field(description="所属服务网点")
    category_id: Id
    asset_no: Text(30)
    model_name: Text(100)
    serial: Text(50) = ""
    daily_cost: Decimal = Money
    acquired_on: dt.date | None = None
    condition_note: Text(200) = ""


class LoanerPatch(In):
    node_id: Id | None = Field(None, description="调往另一服务网点（未借出时）")
    category_id: Id | None = None
    asset_no: Text(30) | None = None
    model_name: Text(100) | None = None
    serial: Text(50) | None = None
    daily_cost: Decimal | None = Field(None, ge=0, le=Decimal("99999.99"), max_digits=7, decimal_places=2)
    acquired_on: dt.date | None = None
    condition_note: Text(200) | None = None
    state: LoanerState | None = Field(None, description="available、maintenance 或 retired（借出与归还另行办理）")


class LendIn(In):
    order_id: Id
    loaner_id: Id
    reason: LoanReason = Field(description="long_repair 维修超过规定天数；manager 经理决定")
    due_on: dt.date | None = Field(None, description="应还日期；不填则为今天起 14 天")
    note: Text(500) = ""


class ReturnIn(In):
    condition: ReturnCondition = Field(description="good 完好；damaged 损坏；incomplete 配件不全（后两者转入维护）")
    note: Text(500) = ""


class PolicyIn(In):
    after_days: int = Field(ge=1, le=60)


class ToolIn(In):
    node_id: Id
    code: Text(30)
    name: Text(100)
    kind: ToolKind = ToolKind.INSTRUMENT
    model_name: Text(100) = ""
    serial: Text(50) = ""
    check_kind: CheckKind = CheckKind.NONE
    interval_months: int | None = Field(None, ge=1, le=120)
    due_on: dt.date | None = None
    certificate_no: Text(50) = ""
    holder_id: Id | None = None
    note: Text(200) = ""


class ToolPatch(In):
    name: Text(100) | None = None
    kind: ToolKind | None = None
    model_name: Text(100) | None = None
    serial: Text(50) | None = None
    note: Text(200) | None = None
    check_kind: CheckKind | None = None
    interval_months: int | None = Field(None, ge=1, le=120)
    due_on: dt.date | None = None
    certificate_no: Text(50) | None = None
    state: ToolState | None = Field(None, description="in_store、under_repair 或 retired（交付使用请用 assign）")
    node_id: Id | None = None


class AssignIn(In):
    holder_id: Id | None = Field(description="持有人（员工 id）；为空表示收回入库")


class CalibrationIn(In):
    done_on: dt.date
    result: CalibrationResult
    certificate_no: Text(50) = ""
    agency: Text(100) = ""
    next_due: dt.date | None = Field(None, description="下次到期日；不填则按周期计算")
    note: Text(200) = ""


def _set(payload) -> dict:
    """The fields given, without nulls (a null leaves the field as it is)."""
    return {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}


# ---------------------------------------------------------------- loaners

@router.get("/loaners", response=LoanerPage)
@requires(Perm.ASSET_VIEW)
def loaner_list(request, limit: Limit, cursor: Cursor, node_id: QueryId = None, state: LoanerState | None = None,
                category_id: QueryId = None):
    """The loaners in your scope (of the subtree of ``node_id``), by asset number."""
    qs = selectors.loaner_list(request.auth, node_id=node_id, state=state, category_id=category_id)
    return paginate(qs, ordering=selectors.LOANER_ORDERING, cursor=cursor, limit=limit)


@router.get("/loaners/summary", response=list[PoolOut])
@requires(Perm.ASSET_VIEW)
def loaner_summary(request, node_id: QueryId = None):
    """Per outlet, how many loaners are in each state."""
    return selectors.pool_counts(request.auth, node_id=node_id)


@router.post("/loaners", response={201: LoanerOut})
@requires(Perm.ASSET_MANAGE)
def loaner_create(request, payload: LoanerIn):
    """Add a loaner to an outlet's pool."""
    x = services.loaner_create(user=request.auth, **payload.model_dump())
    return selectors.loaner_get(request.auth, x.pk)


@router.get("/loaners/{loaner_id}", response=LoanerOut)
@requires(Perm.ASSET_VIEW)
def loaner_detail(request, loaner_id: PathId):
    return selectors.loaner_get(request.auth, loaner_id)


@router.patch("/loaners/{loaner_id}", response=LoanerOut)
@requires(Perm.ASSET_MANAGE)
def loaner_update(request, loaner_id: PathId, payload: LoanerPatch):
    """Change a loaner's details, state (available / maintenance / retired) or outlet."""
    services.loaner_update(user=request.auth, loaner_id=loaner_id, **_set(payload))
    return selectors.loaner_get(request.auth, loaner_id)


# ---------------------------------------------------------------- loans

@router.get("/loans", response=LoanPage)
@requires(Perm.ASSET_VIEW)
def loan_list(request, limit: Limit, cursor: Cursor, node_id: QueryId = None):
    """Open loans in your scope, soonest due first."""
    qs = selectors.loans_open(request.auth, node_id=node_id)
    return paginate(qs, ordering=selectors.LOAN_ORDERING, cursor=cursor, limit=limit)


@router.get("/loans/overdue", response=LoanPage)
@requires(Perm.ASSET_VIEW)
def loan_overdue(request, limit: Limit, cursor: Cursor, node_id: QueryId = None):
    """Open loans past their due date, the longest overdue first."""
    qs = selectors.loans_overdue(request.auth, node_id=node_id)
    return paginate(qs, ordering=selectors.LOAN_ORDERING, cursor=cursor, limit=limit)


@router.get("/loans/candidates", response=CandidatePage)
@requires(Perm.ASSET_VIEW)
def loan_candidate_list(request, limit: Limit, cursor: Cursor, node_id: QueryId = None):
    """Open repair orders older than their outlet's rule (``after_days``, default 3) that have
    no loaner: the list a manager lends from, the oldest first."""
    qs = selectors.loan_candidates(request.auth, node_id=node_id)
    return paginate(qs, ordering=selectors.CANDIDATE_ORDERING, cursor=cursor, limit=limit)


@router.post("/loans", response={201: LoanOut})
@requires(Perm.ASSET_MANAGE)
def loan_lend(request, payload: LendIn):
    """Lend a loaner of the order's outlet to the customer of an open repair order. 409 when the
    loaner is not available, the order already has one or is no longer open."""
    loan = services.loan_lend(user=request.auth, **payload.model_dump())
    return selectors.loan_get(request.auth, loan.pk)


@router.get("/loans/{loan_id}", response=LoanOut)
@requires(Perm.ASSET_VIEW)
def loan_detail(request, loan_id: PathId):
    return selectors.loan_get(request.auth, loan_id)


@router.post("/loans/{loan_id}/return", response=LoanOut)
@requires(Perm.ASSET_MANAGE)
def loan_return(request, loan_id: PathId, payload: ReturnIn):
    """Take the loaner back with its condition; damaged or incomplete ones go to maintenance."""
    services.loan_return(user=request.auth, loan_id=loan_id, **payload.model_dump())
    return selectors.loan_get(request.auth, loan_id)


# ---------------------------------------------------------------- the policy

def _policy_out(node, policy):
    inherited = None
    if policy.source_node_id is not None and policy.source_node_id != node.pk:
        from aftersales.org.models import Node

        inherited = Node.objects.filter(pk=policy.source_node_id).first()
    return {"node": node, "after_days": policy.after_days, "inherited_from": inherited,
            "is_default": policy.source_node_id is None}


@router.get("/policies/{node_id}", response=PolicyOut)
@requires(Perm.ASSET_VIEW)
def policy_get(request, node_id: PathId):
    """After how many days a repair qualifies for a loaner at the node (its own rule, inherited, or the default)."""
    node, policy = selectors.policy_get(request.auth, node_id)
    return _policy_out(node, policy)


@router.put("/policies/{node_id}", response=PolicyOut)
@requires(Perm.ASSET_MANAGE)
def policy_put(request, node_id: PathId, payload: PolicyIn):
    """Set the node's rule (it applies to the node's subtree unless a deeper node has its own)."""
    p = services.policy_set(user=request.auth, node_id=node_id, after_days=payload.after_days)
    return _policy_out(p.node, selectors.Policy(p.after_days, p.node_id))


# ---------------------------------------------------------------- tools

@router.get("/tools", response=ToolPage)
@requires(Perm.ASSET_VIEW)
def tool_list(request, limit: Limit, cursor: Cursor, node_id: QueryId = None, holder_id: QueryId = None,
              state: ToolState | None = None, kind: ToolKind | None = None,
              due: Literal["overdue", "soon"] | None = Query(None, description="overdue 已过期；soon 7 天内到期"),
              q: str | None = Query(None, max_length=50, description="编号、名称或出厂编号"), mine: bool = False):
    """The tool register in your scope, by code; ``mine`` only what you hold."""
    if mine:
        holder_id = Employee.objects.filter(user=request.auth).values_list("pk", flat=True).first() or 0
    qs = selectors.tool_list(request.auth, node_id=node_id, holder_id=holder_id, state=state, kind=kind, due=due,
                             q=q.replace("\x00", "") if q else None)
    return paginate(qs, ordering=selectors.TOOL_ORDERING, cursor=cursor, limit=limit)


@router.post("/tools", response={201: ToolOut})
@requires(Perm.ASSET_MANAGE)
def tool_create(request, payload: ToolIn):
    """Register a tool or instrument (with its holder: in use; without: in store)."""
    t = services.tool_create(user=request.auth, **payload.model_dump())
    return selectors.tool_get(request.auth, t.pk)


@router.get("/tools/{tool_id}", response=ToolOut)
@requires(Perm.ASSET_VIEW)
def tool_detail(request, tool_id: PathId):
    return selectors.tool_get(request.auth, tool_id)


@router.patch("/tools/{tool_id}", response=ToolOut)
@requires(Perm.ASSET_MANAGE)
def tool_update(request, tool_id: PathId, payload: ToolPatch):
    """Change a tool's details, check, owning node or state (in store, under repair, retired)."""
    services.tool_update(user=request.auth, tool_id=tool_id, **_set(payload))
    return selectors.tool_get(request.auth, tool_id)


@router.post("/tools/{tool_id}/assign", response=ToolOut)
@requires(Perm.ASSET_MANAGE)
def tool_assign(request, tool_id: PathId, payload: AssignIn):
    """Hand the tool to an employee (in use), or take it back into store (``holder_id`` null).
    409 for a retired tool, one under repair, or one whose check has lapsed."""
    services.tool_assign(user=request.auth, tool_id=tool_id, holder_id=payload.holder_id)
    return selectors.tool_get(request.auth, tool_id)


@router.get("/tools/{tool_id}/calibrations", response=CalibrationPage)
@requires(Perm.ASSET_VIEW)
def calibration_list(request, tool_id: PathId, limit: Limit, cursor: Cursor):
    """The tool's calibrations and inspections, latest first."""
    qs = selectors.tool_history(request.auth, tool_id)
    return paginate(qs, ordering=selectors.HISTORY_ORDERING, cursor=cursor, limit=limit)


@router.post("/tools/{tool_id}/calibrations", response={201: CalibrationOut})
@requires(Perm.ASSET_MANAGE)
def calibration_create(request, tool_id: PathId, payload: CalibrationIn):
    """Record a calibration or inspection. Passed: the due date moves (``next_due``, or the
    interval from ``done_on``); failed: the tool is taken out of use."""
    return services.calibration_record(user=request.auth, tool_id=tool_id, **payload.model_dump())
