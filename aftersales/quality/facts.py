"""The indicator facts of every order, in SQL, and their pre-aggregates (R-Q-1).

One ``SELECT`` (``fact_select``) derives an order's measures (``indicators.COUNTS`` / ``MINS`` /
``MAXES`` / ``cost``) and breakdown keys from the base tables — the order, its events, surveys,
service cost and service-norm checklist. It is written once, as a function of which orders it
covers (a list of ids, or a window of ``created_at``), and used three ways:

1. ``OrderFact`` rows: ``INSERT … SELECT`` of it (``rebuild`` month by month, ``refresh`` for the
   orders that changed);
2. ``Aggregate`` rows: ``GROUP BY`` over ``OrderFact`` per day (``dim`` "") and per month (every
   breakdown of ``indicators.DIMS``);
3. ``selectors.cells(source="raw")``: the same SELECT over the base tables, summed directly —
   the plain recomputation the pre-aggregates are tested against.

Only dates are vendor-specific (PostgreSQL and SQLite): the local day of a timestamp (the fixed
offset of ``settings.TIME_ZONE``), whole minutes between two timestamps, "no later than N seconds
after" and the period starts (week, month, quarter, year) of a date.

Definitions (order ``o``; a cancelled order counts only ``cancelled`` = 1, every other measure 0):
responded = ``responded_at`` set; response_min = whole minutes receipt → first response;
on time = responded no later than ``response_due`` (or no deadline); first handling = the first
``arrive`` or ``answer`` event, within 24 h; resolved = completed / callback / closed, at
``r = COALESCE(completed_at, closed_at)``; resolve_min = minutes receipt → r; resolved within 48 h
(2880 min); solved within 24 h of the first response (1440 min); visited = resolved with a visit;
first-time fix = visited once and no ``reopen`` event within 30 days after the first ``complete``
event (or r); repeat 30/90 = a resolved repair of a unit with a fault category followed by another
(not cancelled) repair order of the same unit and fault category received within 30/90 days after
r; complaint in time = resolved complaint without resolution breach; norm checked / ok = visited
with a checklist / with every item met; satisfaction = the answered surveys of the order.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .indicators import (
    COUNTS,
    CYC_BUCKETS,
    CYCLE_EDGES,
    DIMS,
    MAXES,
    MINS,
    RESP_BUCKETS,
    RESPONSE_EDGES,
    SAT_DIMS,
)
from .models import RefreshState

RESOLVED = ("completed", "callback", "closed")
CHUNK = 500              # ids per statement
OVERLAP = dt.timedelta(minutes=5)
STATE = "facts"
WORK_MEM = "64MB"      # PostgreSQL, for the hash joins and aggregates of the fact SQL

FACT_COLUMNS = ("order_id", "node_id", "assignee_id", "category_id", "model_id", "fault_id", "channel", "type",
                "created_at", "day", "slot", *COUNTS, *MINS, *MAXES, "cost", "refreshed_at")
AGG_COLUMNS = ("grain", "period", "node_id", "dim", "key", *COUNTS, *MINS, *MAXES, "cost")
# The breakdown key of a fact row (alias ``f``): an id or a code as text, "" where it is NULL.
DIM_KEY = {
    "": "''",
    "assignee": "COALESCE(CAST(f.assignee_id AS VARCHAR(30)), '')",
    "category": "COALESCE(CAST(f.category_id AS VARCHAR(30)), '')",
    "model": "COALESCE(CAST(f.model_id AS VARCHAR(30)), '')",
    "fault": "COALESCE(CAST(f.fault_id AS VARCHAR(30)), '')",
    "channel": "f.channel",
    "type": "f.type",
    "slot": "CAST(f.slot AS VARCHAR(30))",
}
# The fact column behind each breakdown (for filters on OrderFact).
DIM_FIELD = {"assignee": "assignee_id", "category": "category_id", "model": "model_id", "fault": "fault_id",
             "channel": "channel", "type": "type", "slot": "slot"}


# ---------------------------------------------------------------- vendor-specific date SQL

def _pg() -> bool:
    return connection.vendor == "postgresql"


def _offset_minutes() -> int:
    """The fixed UTC offset of settings.TIME_ZONE (Asia/Shanghai: +480)."""
    off = dt.datetime(2000, 1, 1, tzinfo=ZoneInfo(settings.TIME_ZONE)).utcoffset()
    return int(off.total_seconds() // 60)


def _local(col: str) -> str:
    return f"({col} AT TIME ZONE '{settings.TIME_ZONE}')"


def local_day(col: str) -> str:
    if _pg():
        return f"CAST({_local(col)} AS date)"
    return f"date({col}, '{_offset_minutes():+d} minutes')"


def _slot(col: str) -> str:
    """ISO weekday (Mon=1 … Sun=7) × 100 + local hour."""
    if _pg():
        # date_part is float8 (EXTRACT is numeric: slower)
        return f"CAST(date_part('isodow', {_local(col)}) * 100 + date_part('hour', {_local(col)}) AS integer)"
    mod = f"'{_offset_minutes():+d} minutes'"
    return (f"(((CAST(strftime('%%w', {col}, {mod}) AS INTEGER) + 6) %% 7 + 1) * 100"
            f" + CAST(strftime('%%H', {col}, {mod}) AS INTEGER))")


def minutes(a: str, b: str) -> str:
    """Whole minutes from b to a (floor; a ≥ b)."""
    if _pg():
        return f"CAST(floor(date_part('epoch', {a} - {b}) / 60) AS integer)"  # float8: fast
    # julianday is kept in whole milliseconds: round the difference back to them, then divide.
    return f"(CAST(ROUND((julianday({a}) - julianday({b})) * 86400000) AS INTEGER) / 60000)"


def within(a: str, b: str, seconds: int) -> str:
    """a is no later than ``seconds`` after b."""
    if _pg():
        return f"{a} <= {b} + interval '{seconds} seconds'"
    return f"ROUND((julianday({a}) - julianday({b})) * 86400000) <= {seconds * 1000}"


def after(a: str, b: str) -> str:
    """a is strictly later than b."""
    if _pg():
        return f"{a} > {b}"
    return f"julianday({a}) > julianday({b})"


def period_expr(grain: str, d: str) -> str:
    """The start of the ``grain`` period holding date ``d``."""
    if grain == "day":
        return d
    if _pg():
        return f"CAST(date_trunc('{grain}', CAST({d} AS timestamp)) AS date)"
    if grain == "week":
        return f"date({d}, '-' || ((CAST(strftime('%%w', {d}) AS INTEGER) + 6) %% 7) || ' days')"
    if grain == "month":
        return f"date({d}, 'start of month')"
    if grain == "quarter":
        return f"date({d}, 'start of month', '-' || ((CAST(strftime('%%m', {d}) AS INTEGER) - 1) %% 3) || ' months')"
    if grain == "year":
        return f"date({d}, 'start of year')"
    raise ValueError(grain)


@contextmanager
def analytic():
    """A transaction for the big set-based reads and writes. On PostgreSQL: no JIT (compiling
    these wide one-off queries costs seconds, more than running them), room to hash, and workers
    for the parts that can use them (the planner's default prices passing rows to the leader
    too high for these plans)."""
    with transaction.atomic(savepoint=False):
        if _pg():
            with connection.cursor() as cur:
                cur.execute("SELECT set_config('jit', 'off', true), set_config('work_mem', %s, true),"
                            " set_config('parallel_setup_cost', '0', true),"
                            " set_config('parallel_tuple_cost', '0.001', true)", [WORK_MEM])
        yield


def dt_param(v: dt.datetime):
    return connection.ops.adapt_datetimefield_value(v)


def d_param(v: dt.date):
    return connection.ops.adapt_datefield_value(v)


def local_midnight(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(settings.TIME_ZONE))


def as_date(v) -> dt.date | None:
    if v is None or isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return v
    if isinstance(v, dt.datetime):
        return v.date()
    return dt.date.fromisoformat(str(v)[:10])


def subtree_filter(col: str, node_ids) -> str:
    """``col`` is a node in the subtree of one of ``node_ids`` (one parameter per id)."""
    marks = ", ".join(["%s"] * len(node_ids)) or "NULL"
    return (f"{col} IN (SELECT sn.id FROM org_node sn JOIN org_node tn ON sn.path LIKE tn.path || '%%'"
            f" WHERE tn.id IN ({marks}))")


# ---------------------------------------------------------------- the fact SELECT

def _bucket(value: str, edges: tuple[int, ...]) -> str:
    """The histogram bucket of ``value``: i such that edge[i-1] <= value < edge[i] (0 below the
    first edge, len(edges) from the last one)."""
    if _pg():
        return f"width_bucket({value}, ARRAY[{', '.join(map(str, edges))}])"
    whens = " ".join(f"WHEN {value} < {e} THEN {i}" for i, e in enumerate(edges))
    return f"(CASE {whens} ELSE {len(edges)} END)"


def _hist(bucket: str, names: tuple[str, ...]) -> list[str]:
    return [f"CASE WHEN {bucket} = {i} THEN 1 ELSE 0 END AS {name}" for i, name in enumerate(names)]


def fact_select(*, ids: list[int] | None = None, start: dt.datetime | None = None, end: dt.datetime | None = None,
                subtree_of: list[int] | None = None, now: dt.datetime | None = None,
                semi: bool = False) -> tuple[str, list]:
    """The fact rows (``FACT_COLUMNS``) of the orders with the given ids, or received in
    [start, end) (optionally only at the nodes of the subtrees of ``subtree_of``), as (sql,
    params) — positional parameters, in the order the SQL uses them. ``semi``: read only the
    events and surveys of those orders (a short window far from now, e.g. a month of the rebuild)
    rather than everything since ``start``."""
    if ids is not None:
        marks = ", ".join(["%s"] * len(ids)) or "NULL"
        o_params = list(ids)

        def scope(t: str) -> str:
            return f"{t}.id IN ({marks})"

        e_scope, e_params = f"e.order_id IN ({marks})", list(ids)
        s_scope, s_params = f"s.order_id IN ({marks})", list(ids)
        x_scope, x_params = "1 = 1", []
        sc_scope, sc_params = f"sc.order_id IN ({marks})", list(ids)
        nc_scope, nc_params = f"nc.order_id IN ({marks})", list(ids)
    else:
        o_params = [dt_param(start), dt_param(end)]
        if subtree_of is not None:
            o_params += list(subtree_of)

        def scope(t: str) -> str:
            sql = f"{t}.created_at >= %s AND {t}.created_at < %s"
            if subtree_of is not None:
                sql += f" AND {subtree_filter(f'{t}.node_id', subtree_of)}"
            return sql

        # events, answers and repeat repairs come after the order was received
        e_scope, e_params = "e.at >= %s", [dt_param(start)]
        s_scope, s_params = "s.answered_at >= %s", [dt_param(start)]
        x_scope, x_params = "x.created_at >= %s", [dt_param(start)]
        # the cost is computed at completion (or later), the checklist answered at completion
        sc_scope, sc_params = "sc.computed_at >= %s", [dt_param(start)]
        nc_scope, nc_params = "nc.answered_at >= %s", [dt_param(start)]
        if semi:
            e_scope += f" AND e.order_id IN (SELECT q.id FROM tickets_workorder q WHERE {scope('q')})"
            s_scope += f" AND s.order_id IN (SELECT q.id FROM tickets_workorder q WHERE {scope('q')})"
            sc_scope += f" AND sc.order_id IN (SELECT q.id FROM tickets_workorder q WHERE {scope('q')})"
            nc_scope += f" AND nc.order_id IN (SELECT q.id FROM tickets_workorder q WHERE {scope('q')})"
            e_params, s_params = e_params + o_params, s_params + o_params
            sc_params, nc_params = sc_params + o_params, nc_params + o_params
    o_scope = scope("o")

    res = f"o.status IN ({', '.join(repr(s) for s in RESOLVED)})"
    r = "COALESCE(o.completed_at, o.closed_at)"
    # the first completion, else the resolution time (looked up only where there is no complete event)
    fc = ("COALESCE(c.fc, (SELECT COALESCE(w.completed_at, w.closed_at) FROM tickets_workorder w"
          " WHERE w.id = reo.order_id))")
    d30, d90 = 30 * 86400, 90 * 86400
    rbase = (f"{res} AND o.type = 'repair' AND o.unit_id IS NOT NULL AND o.fault_category_id IS NOT NULL"
             f" AND {r} IS NOT NULL")
    rp = "COALESCE(p.completed_at, p.closed_at)"
    # The order's reopening, next repair and surveys in one row per order ("px"): a UNION ALL of
    # rows from each, summed per order — one join instead of three (measured faster on
    # PostgreSQL; the big narrow ones — first handling, cost, checklist — are joined directly).
    ts = "timestamptz" if _pg() else "TEXT"
    px_types = {"reopened": "integer", "nx": ts, "n": "integer", **dict.fromkeys(SAT_DIMS, "integer"),
                **{f"g_{d}": "integer" for d in SAT_DIMS}}

    def branch(key: str, values: dict, source: str) -> str:
        cols = ", ".join(values.get(c, f"CAST(NULL AS {t})") + f" AS {c}" for c, t in px_types.items())
        return f"SELECT {key} AS order_id, {cols} FROM {source}"

    branches = [
        branch("ro.order_id", {"reopened": "1"}, "ro"),
        branch("nx.order_id", {"nx": "nx.nx"}, "nx"),
        branch("s.order_id", {"n": "1", **{d: f"s.{d}" for d in SAT_DIMS},
                              **{f"g_{d}": f"CASE WHEN s.{d} >= 4 THEN 1 ELSE 0 END" for d in SAT_DIMS}},
               f"feedback_survey s WHERE s.answered_at IS NOT NULL AND {s_scope}"),
    ]
    px_aggs = ", ".join(["MAX(u.reopened) AS reopened", "MIN(u.nx) AS nx", "SUM(u.n) AS n",
                         *(f"SUM(u.{d}) AS {d}_sum, SUM(u.g_{d}) AS {d}_ge4, MIN(u.{d}) AS {d}_min, "
                           f"MAX(u.{d}) AS {d}_max" for d in SAT_DIMS)])
    union = "\n    UNION ALL ".join(branches)
    sat = [f"a.live * COALESCE(a.{d}_{x}, 0) AS sat_{d}_{x}" for x in ("sum", "ge4") for d in SAT_DIMS]
    sat_mm = [f"CASE WHEN a.live = 1 THEN a.{d}_{x} END AS sat_{d}_{x}" for x in ("min", "max") for d in SAT_DIMS]
    rmin, smin = minutes("o.responded_at", "o.created_at"), minutes(r, "o.created_at")

    # Two levels. The inner one (``a``; kept apart on PostgreSQL with OFFSET 0, so that each of
    # its values is computed once per order) joins and turns every test of a string, a timestamp
    # or a join into a 0/1 integer; the outer one combines those integers into the measures.
    sql = f"""
WITH reo AS (
  SELECT e.order_id, e.at FROM tickets_orderevent e WHERE e.action = 'reopen' AND {e_scope}
),
ev AS (
  SELECT e.order_id, MIN(e.at) AS h FROM tickets_orderevent e
  WHERE e.action IN ('arrive', 'answer') AND {e_scope} GROUP BY e.order_id
),
ro AS (
  SELECT reo.order_id
  FROM reo
  LEFT JOIN (SELECT c.order_id, MIN(c.at) AS fc FROM tickets_orderevent c
             WHERE c.action = 'complete' AND c.order_id IN (SELECT order_id FROM reo)
             GROUP BY c.order_id) c ON c.order_id = reo.order_id
  WHERE {after('reo.at', fc)} AND {within('reo.at', fc, d30)}
  GROUP BY reo.order_id
),
nx AS (
  SELECT p.id AS order_id, MIN(x.created_at) AS nx
  FROM tickets_workorder p
  JOIN tickets_workorder x ON x.unit_id = p.unit_id AND x.fault_category_id = p.fault_category_id
  WHERE {scope("p")} AND {rbase.replace("o.", "p.")}
    AND x.type = 'repair' AND x.status <> 'cancelled' AND x.id <> p.id AND {x_scope}
    AND {after('x.created_at', rp)} AND {within('x.created_at', rp, d90)}
  GROUP BY p.id
),
px AS (
  SELECT u.order_id, {px_aggs}
  FROM (
    {union}
  ) u
  GROUP BY u.order_id
)
SELECT a.order_id, a.node_id, a.assignee_id, a.category_id, a.model_id, a.fault_id, a.channel, a.type,
       a.created_at, a.day, a.slot,
       a.live AS orders,
       1 - a.live AS cancelled,
       a.live * a.has_resp AS responded,
       a.live * a.rmin AS response_min,
       a.live * a.has_resp * a.in_due AS response_on_time,
       a.live * a.h24 AS handled_24h,
       a.res AS resolved,
       a.res * a.smin AS resolve_min,
       CASE WHEN a.res = 1 AND a.smin <= 2880 THEN 1 ELSE 0 END AS resolved_48h,
       a.res * a.s24 AS solved_24h,
       CASE WHEN a.res = 1 AND a.visits >= 1 THEN 1 ELSE 0 END AS visited,
       CASE WHEN a.res = 1 AND a.visits = 1 AND a.reopened = 0 THEN 1 ELSE 0 END AS ftf,
       a.rbase AS repeat_base,
       CASE WHEN a.nx IS NOT NULL AND {within('a.nx', 'a.r', d30)} THEN 1 ELSE 0 END AS repeat_30,
       CASE WHEN a.nx IS NOT NULL THEN 1 ELSE 0 END AS repeat_90,
       a.live * a.repair AS repairs,
       a.live * a.complaint AS complaints,
       CASE WHEN a.res = 1 AND a.complaint = 1 AND a.rb2 = 0 THEN 1 ELSE 0 END AS complaint_in_time,
       CASE WHEN a.res = 1 AND a.visits >= 1 THEN a.checked ELSE 0 END AS norm_checked,
       CASE WHEN a.res = 1 AND a.visits >= 1 THEN a.met_all ELSE 0 END AS norm_ok,
       a.live * a.rb1 AS response_breached,
       a.live * a.rb2 AS resolve_breached,
       CASE WHEN a.live = 1 AND (a.rb1 = 1 OR a.rb2 = 1) THEN 1 ELSE 0 END AS breached,
       a.live * a.n AS sat_n,
       {', '.join(sat)},
       {', '.join(_hist('a.rbk', RESP_BUCKETS))},
       {', '.join(_hist('a.cbk', CYC_BUCKETS))},
       {', '.join(sat_mm)},
       CASE WHEN a.live = 1 THEN a.total ELSE 0 END AS cost,
       %s AS refreshed_at
FROM (
  SELECT o.id AS order_id, o.node_id, o.assignee_id, pm.category_id, u.model_id, o.fault_category_id AS fault_id,
         o.channel, o.type, o.created_at, {local_day('o.created_at')} AS day, {_slot('o.created_at')} AS slot,
         {r} AS r,
         CASE WHEN o.status <> 'cancelled' THEN 1 ELSE 0 END AS live,
         CASE WHEN {res} THEN 1 ELSE 0 END AS res,
         CASE WHEN o.responded_at IS NOT NULL THEN 1 ELSE 0 END AS has_resp,
         COALESCE({rmin}, 0) AS rmin,
         COALESCE({smin}, 0) AS smin,
         CASE WHEN o.status <> 'cancelled' AND o.responded_at IS NOT NULL THEN {_bucket(rmin, RESPONSE_EDGES)} END
           AS rbk,
         CASE WHEN {res} THEN {_bucket(f"COALESCE({smin}, 0)", CYCLE_EDGES)} END AS cbk,
         CASE WHEN o.response_due IS NULL OR {within('o.responded_at', 'o.response_due', 0)} THEN 1 ELSE 0 END
           AS in_due,
         CASE WHEN ev.h IS NOT NULL AND {within('ev.h', 'o.created_at', 86400)} THEN 1 ELSE 0 END AS h24,
         CASE WHEN o.responded_at IS NOT NULL AND {r} IS NOT NULL AND {minutes(r, 'o.responded_at')} <= 1440
              THEN 1 ELSE 0 END AS s24,
         o.visit_count AS visits,
         COALESCE(px.reopened, 0) AS reopened,
         CASE WHEN o.type = 'repair' THEN 1 ELSE 0 END AS repair,
         CASE WHEN o.type = 'complaint' THEN 1 ELSE 0 END AS complaint,
         CASE WHEN {rbase} THEN 1 ELSE 0 END AS rbase,
         px.nx,
         CASE WHEN o.response_breached THEN 1 ELSE 0 END AS rb1,
         CASE WHEN o.resolve_breached THEN 1 ELSE 0 END AS rb2,
         CASE WHEN nc.id IS NULL THEN 0 ELSE 1 END AS checked,
         CASE WHEN nc.items > 0 AND nc.met = nc.items THEN 1 ELSE 0 END AS met_all,
         COALESCE(px.n, 0) AS n,
         {', '.join(f"px.{d}_{x}" for d in SAT_DIMS for x in ("sum", "ge4", "min", "max"))},
         COALESCE(sc.total, 0) AS total
  FROM tickets_workorder o
  LEFT JOIN customers_unit u ON u.id = o.unit_id
  LEFT JOIN catalog_productmodel pm ON pm.id = u.model_id
  LEFT JOIN ev ON ev.order_id = o.id
  LEFT JOIN px ON px.order_id = o.id
  LEFT JOIN charges_servicecost sc ON sc.order_id = o.id AND {sc_scope}
  LEFT JOIN quality_normcheck nc ON nc.order_id = o.id AND {nc_scope}
  WHERE {o_scope}{" OFFSET 0" if _pg() else ""}
) a
"""
    params = (e_params + e_params + o_params + x_params + s_params
              + [dt_param(now or timezone.now())] + sc_params + nc_params + o_params)
    return sql, params


# ---------------------------------------------------------------- the measure sums

def sum_columns(alias: str) -> str:
    """The measures of the rows of ``alias`` summed (MIN / MAX for the survey extremes)."""
    return ", ".join([*(f"SUM({alias}.{c}) AS {c}" for c in COUNTS), *(f"MIN({alias}.{c}) AS {c}" for c in MINS),
                      *(f"MAX({alias}.{c}) AS {c}" for c in MAXES), f"SUM({alias}.cost) AS cost"])


def _node_filter(node_ids) -> tuple[str, list]:
    if node_ids is None:
        return "", []
    ids = sorted(node_ids)
    return f" AND node_id IN ({', '.join(['%s'] * len(ids)) or 'NULL'})", ids


def _aggregate_days(cur, days: list[dt.date], node_ids=None) -> int:
    """Recompute the day rows (dim "") of ``days`` (of ``node_ids``, or all nodes); returns the
    rows written."""
    n = 0
    nf, nparams = _node_filter(node_ids)
    for i in range(0, len(days), CHUNK):
        part = [d_param(d) for d in days[i:i + CHUNK]]
        marks = ", ".join(["%s"] * len(part))
        cur.execute(f"DELETE FROM quality_aggregate WHERE grain = 'day' AND period IN ({marks}){nf}", part + nparams)
        cur.execute(f"""INSERT INTO quality_aggregate ({', '.join(AGG_COLUMNS)})
            SELECT 'day', f.day, f.node_id, '', '', {sum_columns('f')}
            FROM quality_orderfact f WHERE f.day IN ({marks}){nf.replace('node_id', 'f.node_id')}
            GROUP BY f.day, f.node_id""", part + nparams)
        n += max(cur.rowcount, 0)
    return n


def _aggregate_month(cur, month: dt.date, node_ids=None) -> int:
    """Recompute the month rows (every dim) of ``month`` (of ``node_ids``, or all nodes);
    returns the rows written."""
    rng = [d_param(month), d_param(_next_month(month))]
    nf, nparams = _node_filter(node_ids)
    cur.execute(f"DELETE FROM quality_aggregate WHERE grain = 'month' AND period = %s{nf}",
                [d_param(month), *nparams])
    n = 0
    for dim in ("", *DIMS):
        cur.execute(f"""INSERT INTO quality_aggregate ({', '.join(AGG_COLUMNS)})
            SELECT 'month', %s, f.node_id, %s, {DIM_KEY[dim]}, {sum_columns('f')}
            FROM quality_orderfact f WHERE f.day >= %s AND f.day < %s{nf.replace('node_id', 'f.node_id')}
            GROUP BY 3, 5""", [d_param(month), dim, *rng, *nparams])
        n += max(cur.rowcount, 0)
    return n


def _month_start(d: dt.date) -> dt.date:
    return d.replace(day=1)


def _next_month(d: dt.date) -> dt.date:
    return (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


# ---------------------------------------------------------------- refresh

@dataclass
class RefreshResult:
    orders: int = 0     # orders whose facts were recomputed
    cells: int = 0      # Aggregate rows written
    ms: int = 0
    rebuilt: bool = False
    busy: bool = False  # another refresh held the lock; nothing done

    def as_dict(self) -> dict:
        return asdict(self)


def rebuild(*, progress=None) -> RefreshResult:
    """Every fact and pre-aggregate from scratch, month by month (``progress``: a stream for a
    ``core.progress`` bar). Waits for a running refresh; sets the watermark to its start."""
    t0 = time.perf_counter()
    started = timezone.now()
    with analytic():
        RefreshState.objects.get_or_create(name=STATE)
        state = RefreshState.objects.select_for_update().get(name=STATE)
        res = _rebuild(progress)
        res.ms = int((time.perf_counter() - t0) * 1000)
        _save_state(state, res, started, watermark=started)
    return res


def _rebuild(progress=None) -> RefreshResult:
    out = RefreshResult(rebuilt=True)
    with connection.cursor() as cur:
        if _pg():
            # TRUNCATE refuses while deferred foreign-key checks of rows written earlier in the
            # transaction are pending: run them first.
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute("TRUNCATE quality_aggregate, quality_orderfact")
            cur.execute("SET CONSTRAINTS ALL DEFERRED")
        else:
            cur.execute("DELETE FROM quality_aggregate", [])
            cur.execute("DELETE FROM quality_orderfact", [])
        cur.execute("SELECT MIN(created_at), MAX(created_at) FROM tickets_workorder", [])
        lo, hi = cur.fetchone()
        if lo is None:
            return out
        lo, hi = (timezone.localtime(_aware(v)).date() for v in (lo, hi))
        months = []
        m = _month_start(lo)
        while m <= hi:
            months.append(m)
            m = _next_month(m)
        bar = None
        if progress is not None:
            from aftersales.core.progress import Progress

            bar = Progress(len(months), "指标月份", progress)
        for m in months:
            sql, params = fact_select(start=local_midnight(m), end=local_midnight(_next_month(m)), semi=True)
            cur.execute(f"INSERT INTO quality_orderfact ({', '.join(FACT_COLUMNS)}) {sql}", params)
            out.orders += max(cur.rowcount, 0)
            days = [m + dt.timedelta(days=i) for i in range((_next_month(m) - m).days)]
            out.cells += _aggregate_days(cur, days) + _aggregate_month(cur, m)
            if bar:
                bar.advance()
        if bar:
            bar.finish()
    return out


def _aware(v) -> dt.datetime:
    if isinstance(v, str):
        v = dt.datetime.fromisoformat(v)
    return v if timezone.is_aware(v) else timezone.make_aware(v, dt.UTC)


def _recompute(cur, order_ids: set[int]) -> RefreshResult:
    """Recompute the facts of ``order_ids`` and the pre-aggregates they touch: the day and month
    rows of the nodes and days they were and are in."""
    out = RefreshResult()
    ids = sorted(order_ids)
    touched: set[tuple[dt.date, int]] = set()  # (day, node)
    for i in range(0, len(ids), CHUNK):
        part = ids[i:i + CHUNK]
        marks = ", ".join(["%s"] * len(part))
        where = f"FROM quality_orderfact WHERE order_id IN ({marks})"
        cur.execute(f"SELECT DISTINCT day, node_id {where}", part)
        touched.update((as_date(d), n) for d, n in cur.fetchall())
        cur.execute(f"DELETE {where}", part)
        sql, params = fact_select(ids=part)
        cur.execute(f"INSERT INTO quality_orderfact ({', '.join(FACT_COLUMNS)}) {sql}", params)
        out.orders += max(cur.rowcount, 0)
        cur.execute(f"SELECT DISTINCT day, node_id {where}", part)
        touched.update((as_date(d), n) for d, n in cur.fetchall())
    if touched:
        out.cells += _aggregate_days(cur, sorted({d for d, _n in touched}), {n for _d, n in touched})
    for m in sorted({_month_start(d) for d, _n in touched}):
        out.cells += _aggregate_month(cur, m, {n for d, n in touched if _month_start(d) == m})
    return out


def _dirty(cur, since: dt.datetime) -> set[int]:
    """The orders whose facts may have changed since ``since``."""
    s = dt_param(since)
    cur.execute("""
        SELECT id FROM tickets_workorder WHERE updated_at >= %s
        UNION SELECT order_id FROM feedback_survey WHERE answered_at >= %s
        UNION SELECT order_id FROM charges_servicecost WHERE computed_at >= %s
        UNION SELECT order_id FROM quality_normcheck WHERE answered_at >= %s""", [s, s, s, s])
    ids = {r[0] for r in cur.fetchall()}
    return ids | _earlier_repairs(cur, ids)


def _earlier_repairs(cur, ids: set[int]) -> set[int]:
    """Repairs of the same unit and fault category resolved within 90 days before one of ``ids``
    was received: their repeat flags may have changed."""
    out: set[int] = set()
    ordered = sorted(ids)
    r = "COALESCE(x.completed_at, x.closed_at)"
    for i in range(0, len(ordered), CHUNK):
        part = ordered[i:i + CHUNK]
        marks = ", ".join(["%s"] * len(part))
        cur.execute(f"""
            SELECT DISTINCT x.id FROM tickets_workorder d
            JOIN tickets_workorder x ON x.unit_id = d.unit_id AND x.fault_category_id = d.fault_category_id
            WHERE d.id IN ({marks}) AND x.id <> d.id AND x.type = 'repair' AND {r} IS NOT NULL
              AND {after('d.created_at', r)} AND {within('d.created_at', r, 90 * 86400)}""", part)
        out.update(row[0] for row in cur.fetchall())
    return out


def _locked_state():
    """The refresh state row, locked (None when another refresh holds it)."""
    RefreshState.objects.get_or_create(name=STATE)
    qs = RefreshState.objects.filter(name=STATE)
    if _pg():
        qs = qs.select_for_update(skip_locked=True)
    else:
        qs = qs.select_for_update()
    return qs.first()


def _save_state(state, res: RefreshResult, now: dt.datetime, watermark: dt.datetime | None = None) -> None:
    if watermark is not None:
        state.watermark = watermark
    state.last_run = now
    state.last_orders, state.last_cells, state.last_ms = res.orders, res.cells, res.ms
    state.save()


def refresh(now: dt.datetime | None = None) -> RefreshResult:
    """Bring facts and pre-aggregates up to date with what changed since the last run (with a
    5-minute overlap); a full rebuild when it never ran. One at a time: a concurrent call
    returns at once with ``busy``."""
    now = now or timezone.now()
    t0 = time.perf_counter()
    with analytic():
        state = _locked_state()
        if state is None:
            return RefreshResult(busy=True)
        if state.watermark is None:
            res = _rebuild()
        else:
            with connection.cursor() as cur:
                res = _recompute(cur, _dirty(cur, state.watermark - OVERLAP))
        res.ms = int((time.perf_counter() - t0) * 1000)
        _save_state(state, res, now, watermark=now)
    return res


def refresh_orders(order_ids) -> RefreshResult:
    """Recompute the facts of these orders (and of earlier repairs whose repeat flags they
    affect) and the pre-aggregate cells they touch."""
    t0 = time.perf_counter()
    with analytic():
        state = _locked_state()
        if state is None:
            return RefreshResult(busy=True)
        with connection.cursor() as cur:
            ids = {int(i) for i in order_ids}
            res = _recompute(cur, ids | _earlier_repairs(cur, ids))
        res.ms = int((time.perf_counter() - t0) * 1000)
        _save_state(state, res, timezone.now())
    return res
