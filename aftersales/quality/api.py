"""The quality API (``/api/quality/``): the indicator registry, the dashboard's figures (tiles,
series, breakdowns, rankings), the orders behind a figure, and the technicians' scorecards.
No ``from __future__ import annotations`` here (see aftersales.api.permissions).

Same figures as the pages (both read ``dashboard``, which reads ``selectors``). A node out of
the caller's scope is 404; bad input (an unknown indicator, a bad grain, ``end`` before
``start``, too many periods) is a 400 naming the field.
"""

import datetime as dt
from typing import Literal

from django.utils import timezone
from ninja import Field, Query, Router, Schema

from aftersales.api.permissions import requires
from aftersales.api.schemas import Cursor, Limit, PathId, Text, page_of, paginate
from aftersales.core.errors import ErrorCollector, NotFound
from aftersales.org.models import Employee
from aftersales.org.roles import Perm
from aftersales.org.scope import scoped

from . import dashboard as dash
from . import selectors
from .indicators import DIMS, GRAINS, INDICATORS

router = Router(tags=["quality"])

Grain = Literal[GRAINS]
Dim = Literal[DIMS]
DrillDim = Literal[("", *DIMS)]

GRAIN = Query("month", description="粒度：day / week / month / quarter / year")
START = Query(None, description="起始日期（含），按粒度取整到周期开始；默认最近 12 个月（周、日…）")
END = Query(None, description="截止日期（含），按粒度取整到周期末；默认今天")
CODES = Query(None, description="指标代码，可多个")
NODE = Query(None, ge=1, le=2**63 - 1, description="节点；默认为本人质量查看范围的最高节点")


# ---------------------------------------------------------------- output

class IndicatorOut(Schema):
    code: str
    label: str
    unit: str = Field(description="%、min、h、score、count、‰")
    better: str = Field(description="higher / lower；空为数量类指标")
    formula: str
    group: str
    group_label: str
    target: float | None = Field(description="默认目标（节点可另设）")
    amber: float | None = Field(description="仍算黄灯的偏差")
    decimals: int


class NodeOut(Schema):
    id: int
    code: str
    name: str
    kind: str
    kind_label: str


class DrillRef(Schema):
    code: str
    node: int
    start: dt.date
    end: dt.date
    dim: str = ""
    key: str = ""


class TileOut(Schema):
    code: str
    label: str
    unit: str
    group: str
    value: float | None
    text: str
    target: float | None
    amber: float | None
    status: str = Field(description="green / amber / red；无目标或无值时为空")
    previous: float | None = Field(description="上一期（同样多个周期）的值")
    delta: float | None
    direction: str = Field(description="better / worse；无变化或数量类为空")
    drill: DrillRef


class DashboardOut(Schema):
    node: NodeOut
    grain: str
    start: dt.date
    end: dt.date
    previous_start: dt.date
    previous_end: dt.date
    tiles: list[TileOut]


class PeriodOut(Schema):
    start: dt.date
    end: dt.date
    label: str


class SeriesItem(Schema):
    code: str
    label: str
    unit: str
    target: float | None = Field(description="节点当前适用的目标")
    values: list[float | None]


class SeriesOut(Schema):
    node: NodeOut
    grain: str
    periods: list[PeriodOut]
    series: list[SeriesItem]


class BreakdownItem(Schema):
    key: str
    label: str
    orders: int
    value: float | None
    text: str
    status: str
    drill: DrillRef


class BreakdownOut(Schema):
    node: NodeOut
    dim: str
    dim_label: str
    code: str
    label: str
    unit: str
    target: float | None
    items: list[BreakdownItem]


class RankItem(Schema):
    id: int
    name: str
    value: float | None
    text: str
    target: float | None
    status: str
    drill: DrillRef


class RankingOut(Schema):
    node: NodeOut
    level: str
    code: str
    label: str
    unit: str
    items: list[RankItem]


class FactOut(Schema):
    field: str
    label: str
    value: float | None
    text: str


class AssigneeOut(Schema):
    id: int
    name: str


class DrillItem(Schema):
    id: int
    number: str
    created_at: dt.datetime
    type: str
    type_label: str
    status: str
    status_label: str
    node: NodeOut
    assignee: AssigneeOut | None
    facts: list[FactOut]
    url: str = Field(description="工单页面")


class EmployeeOut(Schema):
    id: int
    employee_no: str
    name: str


class ScoreRow(Schema):
    code: str
    label: str
    unit: str
    group: str
    value: float | None = Field(description="本人近 6 个月")
    outlet: float | None = Field(description="所属网点同期")
    target: float | None
    status: str
    diff: float | None = Field(description="本人 − 网点")
    monthly: list[float | None]
    outlet_monthly: list[float | None]


class ScorecardOut(Schema):
    employee: EmployeeOut
    node: NodeOut
    periods: list[PeriodOut]
    rows: list[ScoreRow]


# ---------------------------------------------------------------- helpers

def _range(grain, start, end) -> dash.Range:
    return dash.period_range(grain, start, end, today=timezone.localdate())


def _node(request, node):
    return selectors.node_for(request.auth, node)


# ---------------------------------------------------------------- operations

@router.get("/indicators", response=list[IndicatorOut])
@requires(Perm.QUALITY_VIEW)
def indicators(request):
    """The indicator registry: code, label, unit, direction, formula, group, default target."""
    return dash.registry()


@router.get("/dashboard", response=DashboardOut)
@requires(Perm.QUALITY_VIEW)
def dashboard(request, node: int | None = NODE, grain: Grain = GRAIN, start: dt.date | None = START,
              end: dt.date | None = END):
    """Every indicator of a node over the range (whole periods), its target and status, and the
    change from the range before."""
    n = _node(request, node)
    rng = _range(grain, start, end)
    prev = rng.previous()
    return {"node": dash.node_info(n), "grain": rng.grain, "start": rng.start, "end": rng.end,
            "previous_start": prev.start, "previous_end": prev.end, "tiles": dash.tiles(n, rng)}


@router.get("/series", response=SeriesOut)
@requires(Perm.QUALITY_VIEW)
def series(request, node: int | None = NODE, codes: list[Text(40)] = CODES,
           grain: Grain = GRAIN, start: dt.date | None = START, end: dt.date | None = END):
    """Indicators per period of the range, with the node's targets."""
    codes = list(dict.fromkeys(codes or dash.TREND_DEFAULT))
    errors = ErrorCollector()
    for c in codes:
        dash.check_code(c, "codes", errors=errors)
    errors.raise_if_any()
    n = _node(request, node)
    rng = _range(grain, start, end)
    data = dash.series(n, rng, codes)
    return {"node": dash.node_info(n), "grain": rng.grain, "periods": data["periods"],
            "series": [{**s, "target": s["current_target"]} for s in data["series"]]}


@router.get("/breakdown", response=BreakdownOut)
@requires(Perm.QUALITY_VIEW)
def breakdown(request, dim: Dim, code: Text(40) = "orders", node: int | None = NODE, grain: Grain = GRAIN,
              start: dt.date | None = START, end: dt.date | None = END):
    """An indicator per key of a breakdown (model and fault: the largest by orders)."""
    dash.check_code(code)
    n = _node(request, node)
    data = dash.breakdown(n, _range(grain, start, end), dim, code)
    return {**data, "node": dash.node_info(n)}


@router.get("/ranking", response=RankingOut)
@requires(Perm.QUALITY_VIEW)
def ranking(request, level: Literal["outlets", "technicians"] = "outlets", code: Text(40) = dash.RANK_DEFAULT,
            node: int | None = NODE, grain: Grain = GRAIN, start: dt.date | None = START,
            end: dt.date | None = END):
    """The outlets of a node's subtree, or the technicians of its orders, best first, each
    against its target."""
    dash.check_code(code)
    n = _node(request, node)
    rng = _range(grain, start, end)
    if level == "outlets":
        items = dash.rank_nodes(dash.ranked_nodes(n, dash.descendants(n)), rng, code)
    else:
        items = dash.rank_technicians(n, rng, code)
    ind = INDICATORS[code]
    return {"node": dash.node_info(n), "level": level, "code": code, "label": str(ind.label), "unit": ind.unit,
            "items": items}


@router.get("/drill", response=page_of(DrillItem))
@requires(Perm.QUALITY_VIEW)
def drill(request, code: Text(40), node: int | None = NODE, start: dt.date | None = None,
          end: dt.date | None = None, dim: DrillDim = "", key: Text(30) = "",
          against: bool = Query(True, description="只列计为不达标的工单；false 为全部样本"),
          cursor: Cursor = None, limit: Limit = 50):
    """The orders behind a figure (newest first, keyset-paginated): those that count against
    it, or its whole population."""
    p = dash.drill_params(code=code, node_id=node, start=start, end=end, dim=dim, key=key, against=against,
                     today=timezone.localdate())
    n = _node(request, node)
    page = paginate(dash.drill_queryset(request.auth, n, p), ordering=dash.DRILL_ORDERING, cursor=cursor,
                    limit=limit)
    fields = dash.drill_fields(p.code)
    return {"items": [dash.drill_row(o, fields) for o in page.items], "next_cursor": page.next_cursor}


def _scorecard(employee) -> dict:
    data = dash.scorecard(employee, timezone.localdate())
    monthly = data["monthly"]
    return {"employee": employee, "node": dash.node_info(employee.node), "periods": data["periods"],
            "rows": [{**r, "value": r["value"], "monthly": [m["mine"].get(r["code"]) for m in monthly],
                      "outlet_monthly": [m["outlet"].get(r["code"]) for m in monthly]} for r in data["rows"]]}


@router.get("/scorecard/me", response=ScorecardOut)
@requires(Perm.ORDER_WORK)
def scorecard_me(request):
    """The caller's own scorecard (a technician): the last 6 months beside the outlet and targets."""
    employee = Employee.objects.select_related("node").filter(user=request.auth).first()
    if employee is None:
        raise NotFound()
    return _scorecard(employee)


@router.get("/scorecard/{employee_id}", response=ScorecardOut)
@requires(Perm.QUALITY_VIEW)
def scorecard(request, employee_id: PathId):
    """A technician's scorecard, for a manager whose quality scope holds the technician's node."""
    employee = scoped(Employee.objects.select_related("node"), request.auth, Perm.QUALITY_VIEW) \
        .filter(pk=employee_id).first()
    if employee is None:
        raise NotFound()
    return _scorecard(employee)
