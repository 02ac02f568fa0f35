"""The quality dashboard (HQ / centre / outlet views), the drill-down to the orders behind a
figure, and the technician's scorecard.

Thin: the figures come from ``dashboard`` (which reads them through ``selectors``); the charts'
data is embedded in the page (``json_script``) and drawn by ``static/quality/dashboard.js``,
whose clicks open the drill-down. A node out of scope is 404; bad input is a 400 page naming
the fields.
"""

from __future__ import annotations

from django.http import QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from aftersales.core.errors import ErrorCollector, NotFound, ValidationFailed
from aftersales.core.pagination import keyset_page
from aftersales.org.models import Employee
from aftersales.org.roles import Perm
from aftersales.org.scope import scoped
from aftersales.web.permissions import is_htmx, require_perm

from . import dashboard as dash
from . import selectors
from .indicators import DIM_LABELS, GRAINS, GROUPS, INDICATORS

PAGE_SIZE = 50


def _errors(e: ValidationFailed) -> dict[str, list[str]]:
    return {f: [str(m) for m in msgs] for f, msgs in e.errors.items()}


def _i18n() -> dict:
    return {"target": _("目标"), "no_data": _("暂无数据"), "orders": _("工单"), "click": _("点击查看工单明细")}


def _charts_json(specs: dict) -> dict:
    for spec in specs.values():
        spec["suffix"] = str(dash.UNIT_SUFFIX.get(spec.get("unit"), ""))
    return {"charts": specs, "i18n": _i18n()}


def _indicator_choices() -> list[dict]:
    by: dict[str, list] = {}
    for code, ind in INDICATORS.items():
        by.setdefault(ind.group, []).append({"code": code, "label": str(ind.label)})
    return [{"label": str(label), "items": by[g]} for g, label in GROUPS.items() if g in by]


def _node_choices(user) -> list[dict]:
    return [{"id": n.pk, "name": n.name, "kind": n.get_kind_display(), "indent": "　" * max(n.path.count("/") - 2, 0)}
            for n in selectors.visible_nodes(user).order_by("path")]


# ---------------------------------------------------------------- the dashboard

@require_GET
@require_perm(Perm.QUALITY_VIEW)
def dashboard_page(request):
    user, q = request.user, request.GET
    errors = ErrorCollector()
    node_id = dash.parse_int(errors, "node", q.get("node"))
    start = dash.parse_date(errors, "start", q.get("start"))
    end = dash.parse_date(errors, "end", q.get("end"))
    trend = list(dict.fromkeys(q.getlist("trend"))) or list(dash.TREND_DEFAULT)
    for c in trend:
        dash.check_code(c, "trend", errors=errors)
    if len(trend) > dash.MAX_TRENDS:
        errors.add("trend", _("最多选择 %(n)s 个趋势指标。") % {"n": dash.MAX_TRENDS})
    rank = q.get("rank") or dash.RANK_DEFAULT
    bcode = q.get("bcode") or dash.BREAKDOWN_DEFAULT
    dash.check_code(rank, "rank", errors=errors)
    dash.check_code(bcode, "bcode", errors=errors)
    node = selectors.node_for(user, node_id)
    grain = q.get("grain") or "month"
    ctx = {"node": node, "nodes": _node_choices(user), "grains": [(g, dash.GRAIN_LABELS[g]) for g in GRAINS],
           "grain": grain, "start": q.get("start", ""), "end": q.get("end", ""), "trend": trend, "rank": rank,
           "bcode": bcode, "indicator_groups": _indicator_choices(), "errors": {}}
    try:
        errors.raise_if_any()
        rng = dash.period_range(grain, start, end, today=timezone.localdate())
    except ValidationFailed as e:
        ctx["errors"] = _errors(e)
        return render(request, "quality/dashboard.html", ctx, status=400)
    data = dash.dashboard(node, rng, trend_codes=trend, rank_code=rank, breakdown_code=bcode)
    charts = data.pop("charts")
    specs = {f"trend-{c['code']}": c for c in charts["trends"]}
    specs.update({f"breakdown-{b['dim']}": c for b, c in zip(data["breakdowns"], charts["breakdowns"], strict=True)})
    specs["heatmap"] = charts["heatmap"]
    specs["rank-outlets"] = charts["rank_outlets"]
    if "rank_technicians" in charts:
        specs["rank-technicians"] = charts["rank_technicians"]
    ctx.update(data, range=rng, start=rng.start.isoformat(), end=rng.end.isoformat(), charts=_charts_json(specs),
               rank_indicator=INDICATORS[rank], bcode_indicator=INDICATORS[bcode],
               trend_charts=charts["trends"], heatmap=charts["heatmap"], node_kind=node.kind)
    return render(request, "quality/dashboard.html", ctx)


# ---------------------------------------------------------------- drill-down

@require_GET
@require_perm(Perm.QUALITY_VIEW)
def drill_page(request):
    """The orders behind a figure: those counting against it, or its whole population."""
    user, q = request.user, request.GET
    errors = ErrorCollector()
    node_id = dash.parse_int(errors, "node", q.get("node"))
    start = dash.parse_date(errors, "start", q.get("start"))
    end = dash.parse_date(errors, "end", q.get("end"))
    code = q.get("code") or ""
    ctx: dict = {"errors": {}, "rows": [], "next_cursor": None}
    try:
        errors.raise_if_any()
        node = selectors.node_for(user, node_id)
        p = dash.drill_params(code=code, node_id=node.pk, start=start, end=end, dim=q.get("dim"), key=q.get("key"),
                              against=q.get("against", "1") != "0", today=timezone.localdate())
        qs = dash.drill_queryset(user, node, p)
        page = keyset_page(qs, ordering=dash.DRILL_ORDERING, cursor=q.get("cursor") or None, limit=PAGE_SIZE)
    except ValidationFailed as e:
        ctx["errors"] = _errors(e)
        return render(request, "quality/drill.html", ctx, status=400)
    fields = dash.drill_fields(p.code)
    params = QueryDict(mutable=True)
    params.update({k: v for k, v in dash.drill_query(p.code, node.pk, p.start, p.end, p.dim, p.key).items()})
    params["against"] = "1" if p.against else "0"
    ctx.update(rows=[dash.drill_row(o, fields) for o in page.items], next_cursor=page.next_cursor,
               base_query=params.urlencode(), fields=[dash.fact_label(f) for f in fields])
    if is_htmx(request) and q.get("cursor"):
        return render(request, "quality/drill_rows.html", ctx)
    ind = INDICATORS[p.code]
    whole_months = p.start.day == 1 and p.end == dash.period_end("month", p.end)  # (month cells have sales)
    m = selectors.cells(nodes=[node], grain="month" if whole_months else "day", start=p.start, end=p.end, dim=p.dim,
                        keys=[p.key] if p.dim else None, by_period=False).get((node.pk, None, p.key))
    value = selectors.values(m, [p.code])[p.code] if m else None
    only, every = params.copy(), params.copy()
    only["against"], every["against"] = "1", "0"
    ctx.update(indicator=ind, code=p.code, node=node, p=p, count=qs.count(), value_text=dash.fmt(ind, value),
               dim_label=DIM_LABELS.get(p.dim, ""), key_label=dash.key_labels(p.dim, [p.key]).get(p.key, p.key)
               if p.dim else "", has_against=bool(ind.against), against_query=only.urlencode(),
               all_query=every.urlencode())
    return render(request, "quality/drill.html", ctx)


# ---------------------------------------------------------------- scorecards

def _scorecard(request, employee, *, own: bool):
    ctx = {"employee": employee, "own": own}
    if employee is not None:
        data = dash.scorecard(employee, timezone.localdate())
        charts = data.pop("charts")
        ctx.update(data, charts=_charts_json(charts), first_code=dash.TREND_DEFAULT[0],
                   indicator_groups=[{"label": g["label"], "items": [{"code": r["code"], "label": r["label"]}
                                                                     for r in g["rows"]]} for g in data["groups"]])
    return render(request, "quality/scorecard.html", ctx)


@require_GET
@require_perm(Perm.ORDER_WORK)
def scorecard_me(request):
    """The signed-in technician's own scorecard."""
    employee = Employee.objects.select_related("node").filter(user=request.user).first()
    return _scorecard(request, employee, own=True)


@require_GET
@require_perm(Perm.QUALITY_VIEW)
def scorecard_person(request, employee_id: int):
    """A technician's scorecard for a manager whose quality scope holds the technician's node."""
    employee = scoped(Employee.objects.select_related("node"), request.user, Perm.QUALITY_VIEW) \
        .filter(pk=employee_id).first()
    if employee is None:
        raise NotFound()
    return _scorecard(request, employee, own=False)
