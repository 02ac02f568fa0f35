"""The figures of the quality dashboards and scorecards (R-Q-1): KPI tiles, trends, breakdowns,
the SLA-breach heatmap, rankings, the drill-down list and a technician's scorecard.

Every number comes from ``selectors.cells`` / ``selectors.person_cells`` through
``selectors.values`` (the one place figures are computed); this module only arranges them for
the pages (``views_dashboard``) and the API (``api``), which show the same figures. Each figure
carries the query of its drill-down (``drill_query``): the orders behind it.

Chart specs are plain dicts rendered by ``static/quality/dashboard.js``:
``{"type": "line" | "bar" | "hbar" | "pie" | "heatmap", "labels", "values", "colours", "target",
"unit", "drill": <drill URL>, "q": [per-point query overrides]}``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from aftersales.catalog.models import Category, ProductModel
from aftersales.core.errors import ErrorCollector, ValidationFailed
from aftersales.org.models import Employee, Node, NodeKind
from aftersales.tickets.models import Channel, FaultCategory, OrderType

from . import indicators, selectors
from .indicators import DIM_LABELS, DIMS, GRAINS, GROUPS, HIGHER, INDICATORS, LOWER, UNIT_SUFFIX

# ---------------------------------------------------------------- periods

DEFAULT_PERIODS = {"day": 30, "week": 13, "month": 12, "quarter": 8, "year": 5}
MAX_PERIODS = {"day": 800, "week": 260, "month": 120, "quarter": 40, "year": 20}
MIN_DATE, MAX_DATE = dt.date(2000, 1, 1), dt.date(2099, 12, 31)
GRAIN_LABELS = {"day": _("日"), "week": _("周"), "month": _("月"), "quarter": _("季度"), "year": _("年")}
_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def shift(grain: str, p: dt.date, n: int) -> dt.date:
    """The start of the period ``n`` periods after the one starting at ``p``."""
    if grain == "day":
        return p + dt.timedelta(days=n)
    if grain == "week":
        return p + dt.timedelta(weeks=n)
    m = p.year * 12 + p.month - 1 + n * _MONTHS[grain]
    return dt.date(m // 12, m % 12 + 1, 1)


def period_end(grain: str, p: dt.date) -> dt.date:
    return shift(grain, p, 1) - dt.timedelta(days=1)


def period_label(grain: str, p: dt.date) -> str:
    if grain == "day":
        return p.isoformat()
    if grain == "week":
        y, w, _d = p.isocalendar()
        return f"{y}-W{w:02d}"
    if grain == "month":
        return f"{p.year}-{p.month:02d}"
    if grain == "quarter":
        return f"{p.year} Q{(p.month - 1) // 3 + 1}"
    return str(p.year)


@dataclass(frozen=True)
class Range:
    """Whole periods of one grain: ``start`` is a period start, ``end`` a period's last day."""

    grain: str
    start: dt.date
    end: dt.date

    @property
    def periods(self) -> list[dt.date]:
        return selectors.periods(self.grain, self.start, self.end)

    def previous(self) -> Range:
        """As many periods, right before this range (the base of the tiles' deltas)."""
        n = len(self.periods)
        return Range(self.grain, shift(self.grain, self.start, -n), self.start - dt.timedelta(days=1))

    def label(self) -> str:
        return f"{period_label(self.grain, self.start)} ~ {period_label(self.grain, selectors.period_start(self.grain, self.end))}"


def period_range(grain: str | None, start: dt.date | None, end: dt.date | None, *, today: dt.date) -> Range:
    """The range asked for, widened to whole periods; defaults: the last months (weeks …) up to
    today. Bad input raises ``ValidationFailed`` naming the field."""
    grain = grain or "month"
    errors = ErrorCollector()
    if grain not in GRAINS:
        errors.add("grain", _("无效的选项，可选：%(expected)s。") % {"expected": "、".join(GRAINS)})
        errors.raise_if_any()
    for field, d in (("start", start), ("end", end)):
        if d is not None and not MIN_DATE <= d <= MAX_DATE:
            errors.add(field, _("日期须在 %(min)s 至 %(max)s 之间。") % {"min": MIN_DATE, "max": MAX_DATE})
    errors.raise_if_any()
    end = end or today
    if start is None:
        start = shift(grain, selectors.period_start(grain, end), 1 - DEFAULT_PERIODS[grain])
    if end < start:
        errors.add("end", _("结束日期不能早于开始日期。"))
        errors.raise_if_any()
    rng = Range(grain, selectors.period_start(grain, start), period_end(grain, selectors.period_start(grain, end)))
    if len(rng.periods) > MAX_PERIODS[grain]:
        errors.add("start", _("按%(grain)s最多可查看 %(n)s 个周期，请缩短期间或选择更粗的粒度。")
                   % {"grain": GRAIN_LABELS[grain], "n": MAX_PERIODS[grain]})
    errors.raise_if_any()
    return rng


def parse_date(errors: ErrorCollector, field: str, raw: str | None) -> dt.date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        errors.add(field, _("日期格式不正确，应为 YYYY-MM-DD。"))
        return None


def parse_int(errors: ErrorCollector, field: str, raw: str | None) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        errors.add(field, _("请输入有效的编号。"))
        return None
    return int(raw)


def check_code(code: str | None, field: str = "code", *, errors: ErrorCollector | None = None) -> str:
    own = errors is None
    if own:
        errors = ErrorCollector()
    if code not in INDICATORS:
        errors.add(field, _("未知的指标：%(code)s。") % {"code": (code or "")[:40]})
    if own:
        errors.raise_if_any()
    return code


# ---------------------------------------------------------------- values and their look

STATUS_COLOURS = {"green": "#16a34a", "amber": "#d97706", "red": "#dc2626", "": "#3b82f6"}
STATUS_LABELS = {"green": _("达标"), "amber": _("接近目标"), "red": _("未达标"), "": _("无目标")}
# Shown on the dashboard for every child node (the comparison table).
COMPARE_CODES = ("orders", "response_on_time_rate", "handled_24h_rate", "resolved_48h_rate", "ftf_rate",
                 "repeat_30_rate", "sat_overall", "complaint_rate", "cost_share", "sla_breaches")
TREND_DEFAULT = ("response_on_time_rate", "resolved_48h_rate", "ftf_rate", "sat_overall")
RANK_DEFAULT = "resolved_48h_rate"
BREAKDOWN_DEFAULT = "orders"
BREAKDOWN_DIMS = ("category", "model", "fault", "channel", "type")
BREAKDOWN_TOP = {"model": 15, "fault": 20}
PIE_MAX = 8  # volumes of at most this many keys are shown as a pie, more as bars
MAX_TRENDS = 8
# Indicators whose denominator is a node's sales: not a person's figure.
PERSON_CODES = tuple(c for c, i in INDICATORS.items() if i.den not in indicators.EXTERNAL)


def fmt(ind, value) -> str:
    if value is None:
        return "—"
    return f"{value:,.{ind.decimals}f}{UNIT_SUFFIX.get(ind.unit, '')}"


def _float(v):
    return None if v is None else float(v)


def _target(tg: dict, code: str, node_id: int) -> tuple[float | None, float | None]:
    ind = INDICATORS[code]
    t, a = tg.get((code, node_id), (ind.target, ind.amber))
    return _float(t), _float(a)


def direction(ind, delta) -> str:
    """"better" / "worse" / "" for a change of ``delta``."""
    if not delta or ind.better is None:
        return ""
    return "better" if (delta > 0) == (ind.better == HIGHER) else "worse"


def drill_query(code: str, node_id: int, start: dt.date, end: dt.date, dim: str = "", key: str = "") -> dict:
    q = {"code": code, "node": node_id, "start": start.isoformat(), "end": end.isoformat()}
    if dim:
        q.update(dim=dim, key=key)
    return q


def drill_url(**kw) -> str:
    return f"{reverse('quality:drill')}?{urlencode(drill_query(**kw))}"


def _drill(*args) -> dict:
    """A figure's drill-down: its query (for the API) and its page (for the pages)."""
    q = drill_query(*args)
    return {"drill": q, "url": f"{reverse('quality:drill')}?{urlencode(q)}"}


def figure(code: str, value, target, amber) -> dict:
    ind = INDICATORS[code]
    status = ind.status(value, target, amber)
    return {"value": value, "text": fmt(ind, value), "target": target, "amber": amber, "status": status,
            "status_label": str(STATUS_LABELS[status]),
            "target_text": fmt(ind, target) if target is not None else "—", "colour": STATUS_COLOURS[status]}


def indicator_info(code: str) -> dict:
    ind = INDICATORS[code]
    return {"code": code, "label": str(ind.label), "unit": ind.unit, "better": ind.better or "",
            "formula": str(ind.formula), "group": ind.group, "group_label": str(GROUPS.get(ind.group, "")),
            "target": ind.target, "amber": ind.amber, "decimals": ind.decimals}


def registry() -> list[dict]:
    return [indicator_info(c) for c in INDICATORS]


# ---------------------------------------------------------------- node and its neighbours

def node_info(node: Node) -> dict:
    return {"id": node.pk, "code": node.code, "name": node.name, "kind": node.kind,
            "kind_label": str(node.get_kind_display())}


def descendants(node: Node) -> list[Node]:
    """The nodes below ``node`` (one query), in tree order."""
    return list(Node.objects.filter(path__startswith=node.path).exclude(pk=node.pk).order_by("path"))


def compared_nodes(node: Node, below: list[Node]) -> list[Node]:
    """HQ compares its centres, a centre its outlets; an outlet has none."""
    return [n for n in below if n.parent_id == node.pk]


def ranked_nodes(node: Node, below: list[Node]) -> list[Node]:
    """The outlets ranked under ``node`` (every outlet of the subtree; an outlet is its own)."""
    return [node] if node.kind == NodeKind.OUTLET else [n for n in below if n.kind == NodeKind.OUTLET]


def ranks_technicians(node: Node) -> bool:
    return node.kind != NodeKind.HQ


# ---------------------------------------------------------------- tiles

def _one(cells: dict, node_id: int, period=None, key: str = "") -> dict:
    return cells.get((node_id, period, key)) or indicators.empty()


def tiles(node: Node, rng: Range, tg: dict | None = None) -> list[dict]:
    """Every indicator over the range, against its target, with the change from the range before."""
    codes = list(INDICATORS)
    prev_rng = rng.previous()
    cur = selectors.values(_one(selectors.cells(nodes=[node], grain=rng.grain, start=rng.start, end=rng.end,
                                                by_period=False), node.pk), codes)
    prev = selectors.values(_one(selectors.cells(nodes=[node], grain=prev_rng.grain, start=prev_rng.start,
                                                 end=prev_rng.end, by_period=False), node.pk), codes)
    tg = selectors.targets(codes, [node]) if tg is None else tg
    out = []
    for code in codes:
        ind = INDICATORS[code]
        v, p = cur.get(code), prev.get(code)
        delta = None if v is None or p is None else round(v - p, ind.decimals)
        out.append({**indicator_info(code), **figure(code, v, *_target(tg, code, node.pk)),
                    "previous": p, "previous_text": fmt(ind, p), "delta": delta,
                    "delta_text": "—" if delta is None else f"{delta:+,.{ind.decimals}f}",
                    "direction": direction(ind, delta),
                    **_drill(code, node.pk, rng.start, rng.end)})
    return out


def grouped(tiles_: list[dict]) -> list[dict]:
    by: dict[str, list] = {}
    for t in tiles_:
        by.setdefault(t["group"], []).append(t)
    return [{"group": g, "label": str(label), "tiles": by[g]} for g, label in GROUPS.items() if g in by]


# ---------------------------------------------------------------- trends

def series(node: Node, rng: Range, codes: list[str], tg: dict | None = None) -> dict:
    """Each indicator per period of the range, with its target."""
    cells = selectors.cells(nodes=[node], grain=rng.grain, start=rng.start, end=rng.end)
    tg = selectors.targets(codes, [node]) if tg is None else tg
    periods = rng.periods
    vals = [selectors.values(_one(cells, node.pk, p), codes) for p in periods]
    return {
        "periods": [{"start": p, "end": period_end(rng.grain, p), "label": period_label(rng.grain, p)}
                    for p in periods],
        "series": [{**indicator_info(c), "current_target": _target(tg, c, node.pk)[0],
                    "values": [v.get(c) for v in vals]} for c in codes],
    }


def trend_charts(node: Node, rng: Range, data: dict) -> list[dict]:
    q = [{"start": p["start"].isoformat(), "end": p["end"].isoformat()} for p in data["periods"]]
    return [{"type": "line", "code": s["code"], "title": s["label"], "unit": s["unit"], "decimals": s["decimals"],
             "labels": [p["label"] for p in data["periods"]], "values": s["values"], "target": s["current_target"],
             "drill": drill_url(code=s["code"], node_id=node.pk, start=rng.start, end=rng.end), "q": q}
            for s in data["series"]]


# ---------------------------------------------------------------- breakdowns

def _english() -> bool:
    return (translation.get_language() or "").startswith("en")


def key_labels(dim: str, keys) -> dict[str, str]:
    """Names of a breakdown's keys (one query for the dims keyed by ids)."""
    keys = [k for k in keys if k]
    en = _english()
    ids = [int(k) for k in keys if k.isdigit()]
    if dim == "category":
        rows = {str(c.pk): (c.name_en if en and c.name_en else c.name) for c in Category.objects.filter(pk__in=ids)}
    elif dim == "model":
        rows = {str(m.pk): f"{m.code} {m.name}" for m in ProductModel.objects.filter(pk__in=ids)}
    elif dim == "fault":
        rows = {str(f.pk): (f.name_en if en and f.name_en else f.name) for f in FaultCategory.objects.filter(pk__in=ids)}
    elif dim == "assignee":
        rows = {str(e.pk): e.name for e in Employee.objects.filter(pk__in=ids)}
    elif dim == "channel":
        rows = {k: str(Channel(k).label) for k in keys if k in Channel.values}
    elif dim == "type":
        rows = {k: str(OrderType(k).label) for k in keys if k in OrderType.values}
    elif dim == "slot":
        rows = {k: slot_label(int(k)) for k in keys if k.isdigit()}
    else:
        rows = {}
    out = {k: rows.get(k, k) for k in keys}
    out[""] = str(_("未登记"))
    return out


WEEKDAYS = (_("周一"), _("周二"), _("周三"), _("周四"), _("周五"), _("周六"), _("周日"))


def slot_label(slot: int) -> str:
    day, hour = divmod(slot, 100)
    return f"{WEEKDAYS[(day - 1) % 7]} {hour:02d}:00"


def _ordered(code: str, rows: list[dict]) -> list[dict]:
    """Best first (volumes: largest first); rows without a value last."""
    ind = INDICATORS[code]
    sign = 1 if ind.better == LOWER else -1
    return sorted(rows, key=lambda r: (r["value"] is None, sign * (r["value"] or 0)))


def breakdown(node: Node, rng: Range, dim: str, code: str, tg: dict | None = None) -> dict:
    """``code`` per key of ``dim`` over the range (the largest keys by orders where there are many;
    keys with cancelled orders only are left out: no indicator counts them)."""
    cells = selectors.cells(nodes=[node], grain=rng.grain, start=rng.start, end=rng.end, dim=dim, by_period=False)
    tg = selectors.targets([code], [node]) if tg is None else tg
    target, amber = _target(tg, code, node.pk)
    found = {key: m for (nid, _p, key), m in cells.items() if nid == node.pk and m.get("orders")}
    top = BREAKDOWN_TOP.get(dim)
    keys = sorted(found, key=lambda k: -(found[k].get("orders") or 0))[:top] if top else list(found)
    labels = key_labels(dim, keys)
    rows = []
    for k in keys:
        v = selectors.values(found[k], [code])[code]
        rows.append({"key": k, "label": labels[k], "orders": found[k].get("orders") or 0,
                     **figure(code, v, target, amber), **_drill(code, node.pk, rng.start, rng.end, dim, k)})
    return {"dim": dim, "dim_label": str(DIM_LABELS[dim]), **indicator_info(code), "target": target,
            "items": _ordered(code, rows), "total_keys": len(found)}


def breakdown_chart(node: Node, rng: Range, data: dict) -> dict:
    items = data["items"]
    pie = data["unit"] == "count" and len(items) <= PIE_MAX
    return {"type": "pie" if pie else ("bar" if len(items) <= PIE_MAX else "hbar"), "code": data["code"], "title": data["dim_label"], "unit": data["unit"],
            "decimals": data["decimals"], "labels": [i["label"] for i in items], "values": [i["value"] for i in items],
            "colours": None if pie else [i["colour"] for i in items], "target": None if pie else data["target"],
            "drill": drill_url(code=data["code"], node_id=node.pk, start=rng.start, end=rng.end, dim=data["dim"],
                               key=""),
            "q": [{"key": i["key"]} for i in items]}


def heatmap(node: Node, rng: Range) -> dict:
    """SLA breaches by weekday × hour received (dim "slot")."""
    cells = selectors.cells(nodes=[node], grain=rng.grain, start=rng.start, end=rng.end, dim="slot",
                            by_period=False)
    data, total = [], 0
    for (nid, _p, key), m in cells.items():
        if nid != node.pk or not key.isdigit():
            continue
        n = m.get("breached") or 0
        day, hour = divmod(int(key), 100)
        if n and 1 <= day <= 7 and 0 <= hour <= 23:
            data.append([hour, day - 1, n])
            total += n
    data.sort()
    return {"type": "heatmap", "code": "sla_breaches", "title": str(_("超时工单：受理时段分布")),
            "x": [f"{h:02d}" for h in range(24)], "y": [str(d) for d in WEEKDAYS], "data": data,
            "max": max((d[2] for d in data), default=0), "total": total,
            "drill": drill_url(code="sla_breaches", node_id=node.pk, start=rng.start, end=rng.end, dim="slot", key=""),
            "q": [{"key": str((d[1] + 1) * 100 + d[0])} for d in data]}


# ---------------------------------------------------------------- rankings and comparison

def node_figures(nodes: list[Node], rng: Range, codes: list[str], tg: dict | None = None) -> dict:
    """{node_id: {code: figure}} over the range, each against the node's own target."""
    if not nodes:
        return {}
    cells = selectors.cells(nodes=nodes, grain=rng.grain, start=rng.start, end=rng.end, by_period=False)
    tg = selectors.targets(codes, nodes) if tg is None else tg
    out = {}
    for n in nodes:
        vals = selectors.values(_one(cells, n.pk), codes)
        out[n.pk] = {c: figure(c, vals.get(c), *_target(tg, c, n.pk)) for c in codes}
    return out


def rank_nodes(nodes: list[Node], rng: Range, code: str, figs: dict | None = None) -> list[dict]:
    figs = node_figures(nodes, rng, [code]) if figs is None else figs
    rows = [{"id": n.pk, "code": n.code, "name": n.name, **figs[n.pk][code],
             **_drill(code, n.pk, rng.start, rng.end)} for n in nodes]
    return _ordered(code, rows)


def rank_technicians(node: Node, rng: Range, code: str, tg: dict | None = None) -> list[dict]:
    """The technicians whose orders the node's subtree holds, by ``code`` against the node's target."""
    cells = selectors.cells(nodes=[node], grain=rng.grain, start=rng.start, end=rng.end, dim="assignee",
                            by_period=False)
    tg = selectors.targets([code], [node]) if tg is None else tg
    target, amber = _target(tg, code, node.pk)
    found = {key: m for (nid, _p, key), m in cells.items() if nid == node.pk and key and m.get("orders")}
    names = key_labels("assignee", found)
    rows = [{"id": int(k), "name": names[k], "orders": m.get("orders") or 0,
             "person_url": reverse("quality:scorecard_person", args=[int(k)]),
             **figure(code, selectors.values(m, [code])[code], target, amber),
             **_drill(code, node.pk, rng.start, rng.end, "assignee", k)} for k, m in found.items()]
    return _ordered(code, rows)


def ranking_chart(rows: list[dict], code: str, target, drill_base: str, q: list[dict]) -> dict:
    ind = INDICATORS[code]
    return {"type": "hbar", "code": code, "title": str(ind.label), "unit": ind.unit, "decimals": ind.decimals,
            "labels": [r["name"] for r in rows], "values": [r["value"] for r in rows],
            "colours": [r["colour"] for r in rows], "target": target, "drill": drill_base, "q": q}


# ---------------------------------------------------------------- the dashboard page

def dashboard(node: Node, rng: Range, *, trend_codes: list[str], rank_code: str, breakdown_code: str) -> dict:
    """Everything one dashboard page shows, with a bounded number of queries whatever the
    number of nodes and periods."""
    below = descendants(node)
    compared = compared_nodes(node, below)
    ranked = ranked_nodes(node, below) if node.kind != NodeKind.OUTLET else []
    codes = list(INDICATORS)
    tg = selectors.targets(codes, [node, *{n.pk: n for n in compared + ranked}.values()])
    tile_list = tiles(node, rng, tg)
    trend = series(node, rng, trend_codes, tg)
    compare_codes = list(dict.fromkeys([*COMPARE_CODES, rank_code]))
    compared_figs = node_figures(compared, rng, compare_codes, tg)
    ranked_figs = compared_figs if ranked == compared else node_figures(ranked, rng, [rank_code], tg)
    outlets = rank_nodes(ranked, rng, rank_code, ranked_figs)
    target = _target(tg, rank_code, node.pk)[0]
    base = drill_url(code=rank_code, node_id=node.pk, start=rng.start, end=rng.end)
    charts = {
        "trends": trend_charts(node, rng, trend),
        "breakdowns": [],
        "heatmap": heatmap(node, rng),
        "rank_outlets": ranking_chart(outlets, rank_code, target, base, [{"node": r["id"]} for r in outlets]),
    }
    breakdowns = []
    for dim in BREAKDOWN_DIMS:
        b = breakdown(node, rng, dim, breakdown_code, tg)
        breakdowns.append(b)
        charts["breakdowns"].append(breakdown_chart(node, rng, b))
    technicians = []
    if ranks_technicians(node):
        technicians = rank_technicians(node, rng, rank_code, tg)
        charts["rank_technicians"] = ranking_chart(
            technicians, rank_code, target,
            drill_url(code=rank_code, node_id=node.pk, start=rng.start, end=rng.end, dim="assignee", key=""),
            [{"key": str(r["id"])} for r in technicians])
    return {
        "groups": grouped(tile_list),
        "tiles": tile_list,
        "previous": rng.previous(),
        "compare": [{"node": n, "figures": [{"code": c, **compared_figs[n.pk][c],
                                            **_drill(c, n.pk, rng.start, rng.end)} for c in COMPARE_CODES]}
                    for n in compared],
        "compare_heads": [INDICATORS[c] for c in COMPARE_CODES],
        "outlets": outlets,
        "technicians": technicians,
        "breakdowns": breakdowns,
        "charts": charts,
    }


# ---------------------------------------------------------------- drill-down

# What each measure of an order means, for the drill-down columns.
FACT_LABELS = {
    "orders": _("受理"), "responded": _("已响应"), "response_min": _("响应（分钟）"),
    "response_on_time": _("响应及时"), "handled_24h": _("24小时内首次处理"), "resolved": _("已解决"),
    "resolve_min": _("解决（分钟）"), "resolved_48h": _("48小时内解决"), "solved_24h": _("响应后24小时内解决"),
    "visited": _("有上门"), "ftf": _("一次修复"), "repeat_base": _("计入返修基数"), "repeat_30": _("30天内返修"),
    "repeat_90": _("90天内返修"), "repairs": _("维修工单"), "complaints": _("投诉工单"),
    "complaint_in_time": _("投诉按时处理"), "norm_checked": _("已填服务规范"), "norm_ok": _("服务规范全部达标"),
    "response_breached": _("响应超时"), "resolve_breached": _("解决超时"), "breached": _("超时"),
    "sat_n": _("已评价"), "cost": _("服务成本（元）"), "sat_overall_ge4": _("总体评价≥4分"),
}
SCORES = {f"sat_{d}_min": d for d in indicators.SAT_DIMS}  # one survey per order: its score
FLAGS = set(FACT_LABELS) - {"response_min", "resolve_min", "cost", "sat_n"}


def fact_label(field: str) -> str:
    if field in SCORES:
        return str(_("%(dim)s得分")) % {"dim": INDICATORS[f"sat_{SCORES[field]}"].label}
    return str(FACT_LABELS[field])


def _field(lookup: str) -> str:
    return lookup.split("__")[0]


# Shown beside a flag: what it was decided on.
RELATED = {"responded": ("response_min",), "response_on_time": ("response_min",), "resolved": ("resolve_min",),
           "resolved_48h": ("resolve_min",), "solved_24h": ("resolve_min",), "handled_24h": ("response_min",),
           "breached": ("response_breached", "resolve_breached"), "complaint_in_time": ("resolve_min",)}
# Minutes that mean nothing unless the flag holds (they are 0 then).
GUARD = {"response_min": "responded", "resolve_min": "resolved"}


def drill_fields(code: str) -> list[str]:
    """The measures of an order that make up ``code``: population, what counts against, the
    numerator and denominator, and what they were decided on (a score is shown by its value;
    "received" goes without saying)."""
    ind = INDICATORS[code]
    names = [_field(k) for k in (*ind.population, *ind.against)]
    if ind.hist:
        names.append("response_min" if ind.hist == "resp" else "resolve_min")
    for m in (ind.num, ind.den):
        if m and m not in indicators.EXTERNAL:
            names.append(m)
    names += [r for n in list(names) for r in RELATED.get(n, ())]
    out = []
    for n in names:
        if n == "orders":
            continue
        if n.endswith("_sum"):  # a survey dimension's score: its value (one survey per order)
            n = n[: -len("_sum")] + "_min"
        if (n in FACT_LABELS or n in SCORES) and n not in out:
            out.append(n)
    return out


def fact_values(fact, fields: list[str]) -> list[dict]:
    out = []
    for f in fields:
        v = getattr(fact, f, None) if fact is not None else None
        if f in GUARD and fact is not None and not getattr(fact, GUARD[f]):
            v = None
        if isinstance(v, Decimal):
            v = float(v)
        if f in FLAGS:
            text = "—" if v is None else (str(_("是")) if v else str(_("否")))
        else:
            text = "—" if v is None else (f"{v:,.2f}" if f == "cost" else f"{v:,}")
        out.append({"field": f, "label": fact_label(f), "value": v, "text": text,
                    "bad": v is not None and (_counts_against(f, v) if f in FLAGS else f in SCORES and v < 4)})
    return out


def _counts_against(field: str, v) -> bool:
    """A flag showing the order went wrong (a breach, a repeat, a miss)."""
    if field in ("response_breached", "resolve_breached", "breached", "repeat_30", "repeat_90"):
        return bool(v)
    return field in ("response_on_time", "handled_24h", "resolved_48h", "solved_24h", "ftf", "complaint_in_time",
                     "norm_ok", "resolved", "sat_overall_ge4") and not v


ID_DIMS = ("assignee", "category", "model", "fault", "slot")


@dataclass(frozen=True)
class DrillParams:
    code: str
    node_id: int | None
    start: dt.date
    end: dt.date
    dim: str
    key: str
    against: bool


def drill_params(*, code, node_id, start, end, dim, key, against, today) -> DrillParams:
    """Validate a drill-down's figure (every bad field named at once)."""
    errors = ErrorCollector()
    check_code(code, errors=errors)
    dim = dim or ""
    key = key or ""
    if dim not in ("", *DIMS):
        errors.add("dim", _("无效的选项，可选：%(expected)s。") % {"expected": "、".join(DIMS)})
    if len(key) > 30 or "\x00" in key or (key and dim in ID_DIMS and not key.isdigit()):
        errors.add("key", _("维度值无效。"))
    if key and not dim:
        errors.add("dim", _("指定维度值时须同时指定维度。"))
    for field, d in (("start", start), ("end", end)):
        if d is not None and not MIN_DATE <= d <= MAX_DATE:
            errors.add(field, _("日期须在 %(min)s 至 %(max)s 之间。") % {"min": MIN_DATE, "max": MAX_DATE})
    errors.raise_if_any()
    end = end or today
    start = start or selectors.period_start("month", end)
    if end < start:
        raise ValidationFailed({"end": [_("结束日期不能早于开始日期。")]})
    return DrillParams(code, node_id, start, end, dim, key, against and bool(INDICATORS[code].against))


def drill_queryset(user, node: Node, p: DrillParams):
    return selectors.drill(user, code=p.code, node=node, start=p.start, end=p.end, dim=p.dim, key=p.key,
                           against=p.against).select_related("fact", "assignee", "node")


DRILL_ORDERING = ["-created_at", "-id"]


def drill_row(order, fields: list[str]) -> dict:
    return {"order": order, "id": order.pk, "number": order.number, "created_at": order.created_at,
            "type": order.type, "type_label": str(order.get_type_display()), "status": order.status,
            "status_label": str(order.get_status_display()),
            "assignee": {"id": order.assignee_id, "name": order.assignee.name} if order.assignee_id else None,
            "node": node_info(order.node), "facts": fact_values(getattr(order, "fact", None), fields),
            "url": reverse("web:order_detail", args=[order.pk])}


# ---------------------------------------------------------------- a technician's scorecard

SCORECARD_MONTHS = 6


def scorecard(employee: Employee, today: dt.date, months: int = SCORECARD_MONTHS) -> dict:
    """A technician's indicators over the last ``months`` months beside their outlet's and the
    targets, and per month (for the trend)."""
    end_p = selectors.period_start("month", today)
    rng = Range("month", shift("month", end_p, 1 - months), period_end("month", end_p))
    periods = rng.periods
    codes = list(PERSON_CODES)
    node = employee.node
    mine_cells = selectors.person_cells([employee.pk], grain="month", start=rng.start, end=rng.end)
    node_cells = selectors.cells(nodes=[node], grain="month", start=rng.start, end=rng.end)
    tg = selectors.targets(codes, [node])
    mine_p = [mine_cells.get((employee.pk, p)) or indicators.empty() for p in periods]
    node_p = [_one(node_cells, node.pk, p) for p in periods]
    mine_total, node_total = indicators.empty(), indicators.empty()
    for a, b in zip(mine_p, node_p, strict=True):
        mine_total, node_total = indicators.combine(mine_total, a), indicators.combine(node_total, b)
    mine_v = selectors.values(mine_total, codes)
    node_v = selectors.values(node_total, codes)
    mine_s = [selectors.values(m, codes) for m in mine_p]
    node_s = [selectors.values(m, codes) for m in node_p]
    rows = []
    for c in codes:
        ind = INDICATORS[c]
        target, amber = _target(tg, c, node.pk)
        mine = figure(c, mine_v.get(c), target, amber)
        comparable = ind.better is not None and mine["value"] is not None and node_v.get(c) is not None
        diff = round(mine["value"] - node_v[c], ind.decimals) if comparable else None  # (not volumes)
        rows.append({**indicator_info(c), **mine, "outlet": node_v.get(c), "outlet_text": fmt(ind, node_v.get(c)),
                     "diff": diff, "diff_text": "—" if diff is None else f"{diff:+,.{ind.decimals}f}",
                     "direction": direction(ind, diff)})
    labels = [period_label("month", p) for p in periods]
    chart = {c: {"type": "compare", "code": c, "title": str(INDICATORS[c].label), "unit": INDICATORS[c].unit,
                 "decimals": INDICATORS[c].decimals, "labels": labels,
                 "series": [{"name": employee.name, "values": [s.get(c) for s in mine_s]},
                            {"name": node.name, "values": [s.get(c) for s in node_s]}],
                 "target": _target(tg, c, node.pk)[0]} for c in codes}
    by_group: dict[str, list] = {}
    for r in rows:
        by_group.setdefault(r["group"], []).append(r)
    return {
        "employee": employee, "node": node, "range": rng,
        "rows": rows,
        "groups": [{"group": g, "label": str(label), "rows": by_group[g]} for g, label in GROUPS.items()
                   if g in by_group],
        "periods": [{"start": p, "end": period_end("month", p), "label": period_label("month", p)} for p in periods],
        "monthly": [{"period": p, "mine": m, "outlet": n} for p, m, n in zip(periods, mine_s, node_s, strict=True)],
        "charts": chart,
    }
