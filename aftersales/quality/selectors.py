"""Reads of the quality indicators, scoped once (``quality.view`` over the node tree).

``cells`` is the one read of figures: the summed measures of each requested node's whole
subtree (rows whose node path starts with the node's path) per period and breakdown key, in a
fixed number of queries whatever the number of nodes and periods. Its sources:

- ``source="agg"``: the pre-aggregates — day rows for day / week (``dim`` ""), month rows for
  month / quarter / year (every dim), and ``OrderFact`` for day / week with a breakdown;
- ``source="raw"``: the same fact SELECT (``facts.fact_select``) over the base tables, summed
  directly — the plain recomputation.

Month, quarter and year ranges cover whole periods: ``start`` is moved back to its period's
start and ``end`` on to its period's end. ``sales`` (NodeSales of the subtree and the months of
the period) is given for month, quarter and year (dim "" only), ``units_sold`` (ModelSales up to
the period's end) for dim "" (all models) and "model"; otherwise, or without rows, they are None.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import connection
from django.db.models import Q, QuerySet

from aftersales.core.errors import NotFound, ValidationFailed
from aftersales.org.models import Node
from aftersales.org.roles import Perm
from aftersales.org.scope import principal
from aftersales.tickets.models import WorkOrder
from aftersales.tickets.selectors import order_queryset

from . import facts
from .indicators import COUNTS, DIMS, GRAINS, INDICATORS, MAXES, MINS, empty
from .models import ModelSales, Target

CENT = Decimal("0.01")
WHOLE = ("month", "quarter", "year")


# ---------------------------------------------------------------- scope

def visible_nodes(user) -> QuerySet[Node]:
    """The nodes within the user's ``quality.view`` scope."""
    if user is None or not user.is_authenticated:
        return Node.objects.none()
    ids = principal(user).node_ids_for(Perm.QUALITY_VIEW)
    qs = Node.objects.all()
    return qs if ids is None else qs.filter(id__in=sorted(ids))


def node_for(user, node_id: int | None = None) -> Node:
    """The node asked for (404 outside the scope), or the user's top node in scope."""
    qs = visible_nodes(user)
    node = qs.filter(pk=node_id).first() if node_id is not None else qs.order_by("path").first()
    if node is None:
        raise NotFound()
    return node


# ---------------------------------------------------------------- periods

def period_start(grain: str, d: dt.date) -> dt.date:
    if grain == "day":
        return d
    if grain == "week":
        return d - dt.timedelta(days=d.weekday())
    if grain == "month":
        return d.replace(day=1)
    if grain == "quarter":
        return d.replace(month=(d.month - 1) // 3 * 3 + 1, day=1)
    if grain == "year":
        return d.replace(month=1, day=1)
    raise ValueError(grain)


def next_period(grain: str, d: dt.date) -> dt.date:
    """The start of the period after the one starting on ``d``."""
    if grain == "day":
        return d + dt.timedelta(days=1)
    if grain == "week":
        return d + dt.timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[grain]
    m = d.month - 1 + months
    return d.replace(year=d.year + m // 12, month=m % 12 + 1, day=1)


def period_end(grain: str, d: dt.date) -> dt.date:
    """The last day of the period holding ``d``."""
    return next_period(grain, period_start(grain, d)) - dt.timedelta(days=1)


def periods(grain: str, start: dt.date, end: dt.date) -> list[dt.date]:
    """The period starts covering [start, end]."""
    out, p = [], period_start(grain, start)
    while p <= end:
        out.append(p)
        p = next_period(grain, p)
    return out


# ---------------------------------------------------------------- cells

def _check(grain: str, dim: str, source: str = "agg") -> None:
    errors = {}
    if grain not in GRAINS:
        errors["grain"] = ["day|week|month|quarter|year"]
    if dim not in ("", *DIMS):
        errors["dim"] = ["|".join(DIMS)]
    if source not in ("agg", "raw"):
        errors["source"] = ["agg|raw"]
    if errors:
        raise ValidationFailed(errors)


def _marks(values) -> str:
    return ", ".join(["%s"] * len(values)) or "NULL"


_KEYS = COUNTS + MINS + MAXES


def _measures(row) -> dict:
    """A cell's measures from a row of (counts as integers, mins, maxes, cost)."""
    m = dict(zip(_KEYS, row[:-1], strict=True))
    cost = row[-1]
    m["cost"] = (cost if isinstance(cost, Decimal) else Decimal(str(cost or 0))).quantize(CENT)
    m["sales"] = m["units_sold"] = None
    return m


def _rollup(inner: str, node_ids: list[int], n_values: int) -> str:
    """Sum the rows of ``inner`` (node_id, p_, k_, values…) into each requested node's subtree."""
    cols = ", ".join(f"CAST(SUM(i.v{j}) AS BIGINT)" if j < len(COUNTS) else
                     f"SUM(i.v{j})" if j == n_values - 1 else
                     f"MIN(i.v{j})" if j < len(COUNTS) + len(MINS) else f"MAX(i.v{j})" for j in range(n_values))
    return f"""SELECT rn.id, i.p_, i.k_, {cols}
        FROM ({inner}) i
        JOIN org_node fn ON fn.id = i.node_id
        JOIN org_node rn ON fn.path LIKE rn.path || '%%'
        WHERE rn.id IN ({_marks(node_ids)})
        GROUP BY rn.id, i.p_, i.k_"""


def _value_columns(alias: str) -> str:
    out = [f"CAST(SUM({alias}.{c}) AS BIGINT) AS v{j}" for j, c in enumerate(COUNTS)]
    j = len(COUNTS)
    for c in MINS:
        out.append(f"MIN({alias}.{c}) AS v{j}")
        j += 1
    for c in MAXES:
        out.append(f"MAX({alias}.{c}) AS v{j}")
        j += 1
    out.append(f"SUM({alias}.cost) AS v{j}")
    return ", ".join(out)


N_VALUES = len(COUNTS) + len(MINS) + len(MAXES) + 1


def cells(*, nodes: list[Node], grain: str, start: dt.date, end: dt.date, dim: str = "",
          keys: list[str] | None = None, by_period: bool = True, source: str = "agg") -> dict:
    """``{(node_id, period_start | None, key): measures}`` for each node's whole subtree.

    Every (node, period) — and every (node, period, key) of ``keys`` — is present, with zero
    measures where nothing happened; other keys appear where they have orders."""
    _check(grain, dim, source)
    if grain in WHOLE:
        start, end = period_start(grain, start), period_end(grain, end)
    node_ids = sorted({n.pk for n in nodes})
    if not node_ids:
        return {}
    p_expr = lambda col: facts.period_expr(grain, col) if by_period else "NULL"  # noqa: E731
    key_params = list(keys) if keys is not None else []

    def key_filter(col: str) -> str:
        return f" AND {col} IN ({_marks(keys)})" if keys is not None else ""

    if source == "raw":
        # the whole tree when the root is asked for; otherwise the orders of the subtrees (and,
        # for outlets, only their events, surveys …: a small share, read by index)
        part = None if any(n.parent_id is None for n in nodes) else node_ids
        src, params = facts.fact_select(start=facts.local_midnight(start),
                                        end=facts.local_midnight(end + dt.timedelta(days=1)),
                                        subtree_of=part, semi=all(n.kind == "outlet" for n in nodes))
        inner = (f"SELECT f.node_id, {p_expr('f.day')} AS p_, {facts.DIM_KEY[dim]} AS k_, {_value_columns('f')}"
                 f" FROM ({src}) f WHERE 1 = 1{key_filter(facts.DIM_KEY[dim])} GROUP BY 1, 2, 3")
        params = params + key_params
    elif grain in ("day", "week") and dim:
        inner = (f"SELECT f.node_id, {p_expr('f.day')} AS p_, {facts.DIM_KEY[dim]} AS k_, {_value_columns('f')}"
                 f" FROM quality_orderfact f WHERE f.day >= %s AND f.day <= %s"
                 f" AND {facts.subtree_filter('f.node_id', node_ids)}{key_filter(facts.DIM_KEY[dim])} GROUP BY 1, 2, 3")
        params = [facts.d_param(start), facts.d_param(end), *node_ids, *key_params]
    else:
        table_grain = "day" if grain in ("day", "week") else "month"
        inner = (f"SELECT f.node_id, {p_expr('f.period')} AS p_, f.key AS k_, {_value_columns('f')}"
                 f" FROM quality_aggregate f WHERE f.grain = %s AND f.dim = %s AND f.period >= %s AND f.period <= %s"
                 f" AND {facts.subtree_filter('f.node_id', node_ids)}{key_filter('f.key')} GROUP BY 1, 2, 3")
        params = [table_grain, dim, facts.d_param(start), facts.d_param(end), *node_ids, *key_params]

    out: dict = {}
    if dim == "" or keys is not None:
        for nid in node_ids:
            for p in (periods(grain, start, end) if by_period else [None]):
                for key in (keys if keys is not None else [""]):
                    out[(nid, p, key)] = empty()
    with facts.analytic(), connection.cursor() as cur:
        cur.execute(_rollup(inner, node_ids, N_VALUES), params + node_ids)
        for row in cur.fetchall():
            out[(row[0], facts.as_date(row[1]), row[2])] = _measures(row[3:])
    if dim == "" and grain in WHOLE:
        _add_sales(out, node_ids, grain, start, end, by_period)
    if dim in ("", "model"):
        _add_units(out, grain, end, dim)
    return out


def _add_sales(out: dict, node_ids: list[int], grain: str, start: dt.date, end: dt.date, by_period: bool) -> None:
    p = facts.period_expr(grain, "s.month") if by_period else "NULL"
    sql = f"""SELECT rn.id, i.p_, SUM(i.amount)
        FROM (SELECT s.node_id, {p} AS p_, SUM(s.amount) AS amount FROM quality_nodesales s
              WHERE s.month >= %s AND s.month <= %s GROUP BY 1, 2) i
        JOIN org_node fn ON fn.id = i.node_id
        JOIN org_node rn ON fn.path LIKE rn.path || '%%'
        WHERE rn.id IN ({_marks(node_ids)})
        GROUP BY rn.id, i.p_"""
    with connection.cursor() as cur:
        cur.execute(sql, [facts.d_param(start), facts.d_param(end), *node_ids])
        for nid, p, amount in cur.fetchall():
            m = out.get((nid, facts.as_date(p), ""))
            if m is not None:
                m["sales"] = Decimal(str(amount)).quantize(CENT)


def _add_units(out: dict, grain: str, end: dt.date, dim: str) -> None:
    """Units sold up to each cell's period end (per model for dim "model", all models for "")."""
    rows = list(ModelSales.objects.filter(month__lte=end).values_list("model_id", "month", "units"))
    if not rows:
        return
    upto: dict = {}  # period end → {model key: units sold by then, "": all models}
    for p in {p for _n, p, _k in out}:
        last = period_end(grain, p) if p is not None else end
        sold: dict[str, int] = {}
        for mid, month, units in rows:
            if month <= last:
                sold[str(mid)] = sold.get(str(mid), 0) + units
                sold[""] = sold.get("", 0) + units
        upto[p] = sold
    for (_nid, p, key), m in out.items():
        if dim == "" or key:  # orders without a model have no units sold
            m["units_sold"] = upto[p].get(key)


def values(m: dict, codes=None) -> dict[str, float | None]:
    """The indicator values of one cell's measures."""
    return {c: INDICATORS[c].value(m) for c in (codes or INDICATORS)}


# ---------------------------------------------------------------- targets

def _ancestors(node: Node) -> list[int]:
    return [int(x) for x in node.path.strip("/").split("/") if x]


def targets(codes, nodes) -> dict[tuple[str, int], tuple[float | None, float | None]]:
    """(target, amber) of each indicator at each node: the nearest ancestor's Target row, else
    the registry default — in one query."""
    codes, nodes = list(codes), list(nodes)
    chains = {n.pk: _ancestors(n) for n in nodes}
    all_ids = sorted({i for chain in chains.values() for i in chain})
    rows = {(t.indicator, t.node_id): (float(t.target), float(t.amber))
            for t in Target.objects.filter(indicator__in=codes, node_id__in=all_ids)} if codes and all_ids else {}
    out = {}
    for code in codes:
        ind = INDICATORS[code]
        for n in nodes:
            hit = next((rows[(code, a)] for a in reversed(chains[n.pk]) if (code, a) in rows), None)
            out[(code, n.pk)] = hit or (ind.target, ind.amber)
    return out


def target_for(code: str, node: Node) -> tuple[float | None, float | None]:
    return targets([code], [node])[(code, node.pk)]


# ---------------------------------------------------------------- drill-down

def _dim_filter(dim: str, key: str) -> Q:
    if not dim:
        return Q()
    field = f"fact__{facts.DIM_FIELD[dim]}"
    if key == "":
        return Q(**{f"{field}__isnull": True})
    if dim in ("channel", "type"):
        return Q(**{field: key})
    try:
        return Q(**{field: int(key)})
    except ValueError:
        raise ValidationFailed({"key": ["?"]}) from None


def drill(user, *, code: str, node: Node, start: dt.date, end: dt.date, dim: str = "", key: str = "",
          against: bool = True) -> QuerySet[WorkOrder]:
    """The orders behind a figure: those the indicator counts (``population``), or only those
    counting against it (``against``), received in [start, end] in the node's subtree — newest
    first (keyset: -created_at, -id)."""
    ind = INDICATORS.get(code)
    errors = {}
    if ind is None:
        errors["code"] = ["?"]
    if dim not in ("", *DIMS):
        errors["dim"] = ["|".join(DIMS)]
    if errors:
        raise ValidationFailed(errors)
    if not visible_nodes(user).filter(pk=node.pk).exists():
        raise NotFound()
    cond = {f"fact__{k}": v for k, v in ind.population.items()}
    if against:
        cond.update({f"fact__{k}": v for k, v in ind.against.items()})
    return (order_queryset(user)
            .filter(fact__day__gte=start, fact__day__lte=end, fact__node__path__startswith=node.path, **cond)
            .filter(_dim_filter(dim, key))
            .order_by("-created_at", "-id"))


# ---------------------------------------------------------------- people

def person_cells(employee_ids, *, grain: str, start: dt.date, end: dt.date) -> dict:
    """``{(employee_id, period_start): measures}`` of the orders assigned to each employee (all nodes)."""
    _check(grain, "")
    ids = sorted({int(i) for i in employee_ids})
    if not ids:
        return {}
    if grain in WHOLE:
        start, end = period_start(grain, start), period_end(grain, end)
        sql = (f"SELECT f.key, {facts.period_expr(grain, 'f.period')}, {_value_columns('f')}"
               f" FROM quality_aggregate f WHERE f.grain = 'month' AND f.dim = 'assignee'"
               f" AND f.period >= %s AND f.period <= %s AND f.key IN ({_marks(ids)}) GROUP BY 1, 2")
        params = [facts.d_param(start), facts.d_param(end), *[str(i) for i in ids]]
    else:
        sql = (f"SELECT f.assignee_id, {facts.period_expr(grain, 'f.day')}, {_value_columns('f')}"
               f" FROM quality_orderfact f WHERE f.day >= %s AND f.day <= %s AND f.assignee_id IN ({_marks(ids)})"
               f" GROUP BY 1, 2")
        params = [facts.d_param(start), facts.d_param(end), *ids]
    out = {(i, p): empty() for i in ids for p in periods(grain, start, end)}
    with facts.analytic(), connection.cursor() as cur:
        cur.execute(sql, params)
        for row in cur.fetchall():
            out[(int(row[0]), facts.as_date(row[1]))] = _measures(row[2:])
    return out
