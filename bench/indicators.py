#!/usr/bin/env python
"""The quality indicators at scale on PostgreSQL: the fact rebuild, one incremental refresh, and
the full headquarters dashboard from the pre-aggregates and recomputed from the base tables.

    .venv/bin/python bench/indicators.py [--orders 1000000] [--runs 5] [--database NAME] [--reuse]

DATABASE_URL names the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/aftersales_bench);
the bench uses its own database, ``--database`` or ``<DATABASE_URL's name>_indicators``, created
afresh (``--reuse``: keep it and its data when it already holds the orders), with the demo
organisation (``manage.py demo``: headquarters, 3 centres, 24 outlets, 180 technicians — 7 or 8
per outlet —, the catalogue and the fault categories; its customers and quality data are not used).

1. Load, with COPY (psycopg) in id order: ``--orders`` work orders received over the 730 days
   that end yesterday (types, channels and priorities in the demo's mix, more in summer and at
   weekends, the hours of the day as the demo has them; outlets of different sizes); 300
   customers and 450 units per 1,000 orders (so that most units have one repair or none), and a
   share of repairs that come back for the same unit and fault within 90 days (~5 % of the
   resolved repairs); the last days' orders still open in every status, ~3 % cancelled; the
   events the facts read (``answer``, ``arrive``, ``complete``, ``reopen``); a call-back task and
   an answered survey for ~60 % of the resolved orders; the service cost of every resolved
   order with a visit; the service-norm checklist (~93 % fully met); sales per outlet and month
   (cost ÷ sales 6–12 %); units sold per model and month since 2019. Foreign-key triggers are off
   while loading (``session_replication_role = replica``; the ids are consistent by
   construction), then ANALYZE. No audit entries: the audit trail is not measured here.
2. ``facts.rebuild()``: every fact and pre-aggregate; orders/s.
3. Incremental: 1,000 resolved orders are touched (their response deadline marked missed, as
   the SLA sweep would), then ``facts.refresh()``; its time and what it recomputed.
4. The full HQ dashboard: every indicator × the last 12 whole months × every node (HQ, the 3
   centres, the 24 outlets): ``selectors.cells(nodes=all, grain="month", …)`` + ``values()`` of
   every cell, from the pre-aggregates (``source="agg"``) and recomputed from the base tables
   (``source="raw"``), and ``SELECT count(*) FROM tickets_workorder`` as the floor. Median of
   ``--runs`` warm runs each (one untimed run first); ratios to the floor. The two sources must
   give the same measures in every cell.

Targets: the dashboard from the pre-aggregates < 500 ms, recomputed from the base tables < 5 s.
``--orders 50000`` is a quick run.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
from collections import defaultdict, deque
from decimal import Decimal
from urllib.parse import urlsplit

from _common import DEFAULT_URL, copy_rows, setup_django, with_database_name

TARGET_AGG_MS = 500.0
TARGET_RAW_MS = 5000.0
DAYS = 730
CHUNK = 100_000
CUSTOMERS_PER_ORDER = 0.3
UNITS_PER_CUSTOMER = 1.5
REPEAT_SHARE = 0.045       # repairs deliberately coming back (the random ones add ~1 %)
CANCEL_SHARE = 0.03
SURVEY_SHARE = 0.6
NORM_FAIL = 0.07
OPEN_DAYS = 6              # orders received in the last days may still be open
TOUCHED = 1000

TYPES = [("repair", 52), ("consultation", 15), ("installation", 9), ("delivery", 6), ("maintenance", 7),
         ("recycling", 4), ("return_exchange", 3), ("complaint", 2.5)]
CHANNELS = [("phone", 55), ("app", 18), ("web", 12), ("walk_in", 10), ("email", 5)]
PRIORITIES = [("normal", 82), ("high", 10), ("low", 5), ("urgent", 3)]
RESPONSE_DUE_MIN = {"urgent": 30, "high": 60, "normal": 120, "low": 240}
RESOLVE_DUE_H = {"urgent": 24, "high": 36, "normal": 48, "low": 72}
UNIT_TYPES = {"repair", "maintenance", "installation", "return_exchange"}
OPEN_STATUSES = ["received", "classified", "dispatched", "accepted", "en_route", "on_site", "diagnosing",
                 "waiting_parts", "waiting_customer", "repairing"]
HOURS_WORKDAY = [0.15, 0.06, 0.03, 0.03, 0.03, 0.06, 0.25, 0.7, 1.4, 2.0, 2.1, 1.8, 1.2, 1.4, 1.6, 1.6, 1.5, 1.4,
                 1.6, 2.1, 2.3, 1.9, 1.1, 0.45]
HOURS_WEEKEND = [0.2, 0.08, 0.04, 0.03, 0.03, 0.05, 0.15, 0.5, 1.2, 2.0, 2.4, 2.3, 1.8, 1.7, 2.0, 2.1, 2.0, 1.8,
                 1.8, 2.2, 2.3, 1.9, 1.2, 0.5]
WEEKDAY_FACTOR = [1.0, 0.96, 0.96, 0.97, 1.04, 1.38, 1.3]
MONTH_FACTOR = {6: 1.15, 7: 1.3, 8: 1.25, 9: 1.05}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏飞鑫波斌宇浩凯晨欣怡佳琪子涵"
NORM_CODES = ["DRESS", "SHOE_COVERS", "ON_TIME", "EXPLAIN", "CLEAN_UP", "TEST_RUN", "ADVICE", "OLD_PARTS"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=1_000_000, help="work orders over the two years (default 1000000)")
    p.add_argument("--runs", type=int, default=5, help="timed warm runs of each dashboard figure (default 5)")
    p.add_argument("--database", default=None, help="database name (default: DATABASE_URL's name + _indicators)")
    p.add_argument("--reuse", action="store_true", help="keep the database and its data when it holds the orders")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


def _cum(pairs):
    vals, cum, acc = [], [], 0.0
    for v, w in pairs:
        acc += w
        vals.append(v)
        cum.append(acc)
    return vals, cum


def _pick(rng: random.Random, table):
    vals, cum = table
    return vals[bisect.bisect_right(cum, rng.random() * cum[-1])]


# ---------------------------------------------------------------- the load

class Loader:
    """Generates the two years in time order, ``CHUNK`` orders at a time, and COPYs each table's
    rows of the chunk; ids are given here (then the sequences are moved on)."""

    def __init__(self, args, cur):
        from django.contrib.auth import get_user_model
        from django.utils import timezone

        from aftersales.catalog.models import ProductModel
        from aftersales.org.models import Employee, Node, NodeKind, RoleAssignment
        from aftersales.org.roles import Role
        from aftersales.tickets.models import FaultCategory

        self.args, self.cur = args, cur
        self.rng = random.Random(f"bench-indicators:{args.seed}")
        tz = timezone.get_current_timezone()
        self.tz = tz
        self.today = timezone.localdate()
        self.end = dt.datetime.combine(self.today, dt.time(), tz)  # nothing happens after yesterday
        self.start_day = self.today - dt.timedelta(days=DAYS)
        self.outlets = list(Node.objects.filter(kind=NodeKind.OUTLET).order_by("code").values_list("pk", flat=True))
        self.techs = defaultdict(list)
        for eid, node_id in (Employee.objects.filter(user__role_assignments__role=Role.TECHNICIAN)
                             .order_by("employee_no").values_list("pk", "node_id")):
            self.techs[node_id].append(eid)
        self.agents = list(RoleAssignment.objects.filter(role=Role.AGENT).order_by("user_id")
                           .values_list("user_id", flat=True)) or [get_user_model().objects.first().pk]
        self.models = list(ProductModel.objects.order_by("code").values_list("pk", "category_id"))
        self.faults = defaultdict(list)
        for fid, cat in FaultCategory.categories.through.objects.order_by("faultcategory_id", "category_id") \
                .values_list("faultcategory_id", "category_id"):
            self.faults[cat].append(fid)
        sizes = [self.rng.uniform(0.5, 1.6) for _ in self.outlets]
        self.outlet_table = _cum(zip(self.outlets, sizes, strict=True))
        self.type_table, self.channel_table = _cum(TYPES), _cum(CHANNELS)
        self.priority_table = _cum(PRIORITIES)
        self.cost = defaultdict(Decimal)      # (outlet, month received) → service cost
        self.counts: dict[str, int] = defaultdict(int)

    # ------------------------------------------------------------ customers and units

    def customers_and_units(self) -> None:
        from aftersales.customers.models import Customer, Unit

        rng, now = self.rng, self.end
        n_c = max(200, int(self.args.orders * CUSTOMERS_PER_ORDER))
        n_u = int(n_c * UNITS_PER_CUSTOMER)
        c0 = self._next_id(Customer)
        node_of = [_pick(rng, self.outlet_table) for _ in range(n_c)]

        def customers():
            for i in range(n_c):
                name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
                yield (c0 + i, node_of[i], name, f"19{i:09d}", "", now, now)

        self.counts["customers"] = copy_rows(self.cur, Customer, ["id", "node_id", "name", "phone", "notes",
                                                                  "created_at", "updated_at"], customers())
        u0 = self._next_id(Unit)
        self.units = defaultdict(list)  # outlet → [(unit id, category)]
        rows = []
        for i in range(n_u):
            ci = i % n_c if i < n_c else rng.randrange(n_c)
            mid, cat = rng.choice(self.models)
            bought = self.today - dt.timedelta(days=rng.randint(30, 6 * 365))
            rows.append((u0 + i, c0 + ci, mid, f"BU{i:010d}", bought, "store", "", now))
            self.units[node_of[ci]].append((u0 + i, cat, mid))
        self.counts["units"] = copy_rows(self.cur, Unit, ["id", "customer_id", "model_id", "serial", "purchase_date",
                                                          "sales_channel", "invoice_no", "created_at"], rows)
        self.customer_of_unit = {r[0]: r[1] for r in rows}
        self.customers_by_outlet = defaultdict(list)
        for i, n in enumerate(node_of):
            self.customers_by_outlet[n].append(c0 + i)

    def _next_id(self, model) -> int:
        self.cur.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {model._meta.db_table}")
        return self.cur.fetchone()[0]

    # ------------------------------------------------------------ the orders

    def _arrivals(self) -> list[dt.datetime]:
        rng = self.rng
        days = [self.start_day + dt.timedelta(days=i) for i in range(DAYS)]
        weights = [WEEKDAY_FACTOR[d.weekday()] * MONTH_FACTOR.get(d.month, 1.0) for d in days]
        per_day = [0] * DAYS
        cum, acc = [], 0.0
        for w in weights:
            acc += w
            cum.append(acc)
        for _ in range(self.args.orders):
            per_day[bisect.bisect_right(cum, rng.random() * acc)] += 1
        out = []
        for d, n in zip(days, per_day, strict=True):
            hours = _cum(enumerate(HOURS_WEEKEND if d.weekday() >= 5 else HOURS_WORKDAY))
            base = dt.datetime.combine(d, dt.time(), self.tz)
            out += sorted(base + dt.timedelta(hours=_pick(rng, hours), seconds=rng.randrange(3600)) for _ in range(n))
        return out

    def orders(self) -> None:
        from aftersales.charges.models import ServiceCost
        from aftersales.feedback.models import CallbackTask, Survey
        from aftersales.quality.models import NormCheck
        from aftersales.tickets.models import OrderEvent, WorkOrder

        arrivals = self._arrivals()
        o0, t0 = self._next_id(WorkOrder), self._next_id(CallbackTask)
        self.recent = deque(maxlen=30_000)  # resolved repairs: (resolved at, unit, fault)
        self.seq_of_day: dict[dt.date, int] = defaultdict(int)
        self.task_id = t0
        started = time.perf_counter()
        for c in range(0, len(arrivals), CHUNK):
            rows = {k: [] for k in ("orders", "events", "tasks", "surveys", "costs", "norms")}
            for i, created in enumerate(arrivals[c:c + CHUNK], start=c):
                self._order(o0 + i, created, rows)
            copy_rows(self.cur, WorkOrder, ORDER_COLUMNS, rows["orders"])
            copy_rows(self.cur, OrderEvent, ["order_id", "seq", "at", "actor_label", "action", "from_status",
                                             "to_status", "note", "data"], rows["events"])
            copy_rows(self.cur, CallbackTask, ["id", "order_id", "round", "node_id", "status", "due_at", "attempts",
                                               "created_at", "done_at"], rows["tasks"])
            copy_rows(self.cur, Survey, SURVEY_COLUMNS, rows["surveys"])
            copy_rows(self.cur, ServiceCost, ["order_id", "node_id", "month", "parts", "labour", "travel", "loaner",
                                              "total", "visits", "loan_days", "computed_at"], rows["costs"])
            copy_rows(self.cur, NormCheck, ["order_id", "answers", "items", "met", "note", "answered_at"],
                      rows["norms"])
            for k, v in rows.items():
                self.counts[k] += len(v)
            done = min(c + CHUNK, len(arrivals))
            rate = done / (time.perf_counter() - started)
            print(f"\r  orders {done:,}/{len(arrivals):,} ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)

    def _order(self, oid: int, created: dt.datetime, rows: dict) -> None:
        rng = self.rng
        node = _pick(rng, self.outlet_table)
        otype = _pick(rng, self.type_table)
        channel, priority = _pick(rng, self.channel_table), _pick(rng, self.priority_table)
        unit = fault = None
        model = None
        if otype in UNIT_TYPES and self.units[node]:
            unit, cat, model = rng.choice(self.units[node])
            if otype == "repair":
                fault = rng.choice(self.faults[cat]) if self.faults[cat] else None
                if rng.random() < REPEAT_SHARE:
                    back = self._repeat_of(created)
                    if back:
                        unit, fault = back
        customer = self.customer_of_unit[unit] if unit else rng.choice(self.customers_by_outlet[node])
        day = created.astimezone(self.tz).date()
        self.seq_of_day[day] += 1
        number = f"GD{day:%Y%m%d}{self.seq_of_day[day]:06d}"
        response_due = created + dt.timedelta(minutes=RESPONSE_DUE_MIN[priority])
        resolve_due = created + dt.timedelta(hours=RESOLVE_DUE_H[priority])
        age_h = (self.end - created).total_seconds() / 3600
        events: list[tuple] = []
        techs = self.techs.get(node) or [None]
        assignee = rng.choice(techs) if otype != "consultation" else None
        responded = completed = closed = None
        visits = reopens = 0
        status = "closed"
        # the response: minutes, log-normal (median ~35 min, a long tail)
        resp = created + dt.timedelta(minutes=min(rng.lognormvariate(3.55, 1.1), 3 * 1440))
        if rng.random() < CANCEL_SHARE:
            status = "cancelled"
            responded = resp if rng.random() < 0.5 and resp < self.end else None
            closed = None
            assignee = None
        elif otype == "consultation":
            if resp < self.end:
                responded = closed = resp
                events.append((resp, "answer", "received", "closed"))
            else:
                status = "received"
        else:
            arrive = resp + dt.timedelta(hours=min(rng.lognormvariate(2.6, 0.8), 240))
            work = dt.timedelta(minutes=rng.randint(20, 150))
            long_wait = rng.random() < 0.12  # waiting for parts or the customer
            done = arrive + work + (dt.timedelta(hours=rng.uniform(24, 200)) if long_wait else dt.timedelta())
            visits = 1 + (long_wait and rng.random() < 0.8) + (rng.random() < 0.03)
            if done >= self.end or (age_h < OPEN_DAYS * 24 and rng.random() < 0.15):
                status = rng.choice(OPEN_STATUSES[2:]) if resp < self.end else rng.choice(OPEN_STATUSES[:2])
                responded = resp if resp < self.end else None
                if status not in ("dispatched", "accepted", "en_route") and arrive < self.end:
                    events.append((arrive, "arrive", "en_route", "on_site"))
                    visits = 1
                else:
                    visits = 0
            else:
                responded = resp
                events.append((arrive, "arrive", "en_route", "on_site"))
                for k in range(1, visits):
                    events.append((arrive + (done - arrive) * k / visits, "arrive", "en_route", "on_site"))
                events.append((done, "complete", "repairing", "completed"))
                completed = done
                if visits == 1 and rng.random() < 0.025:  # reopened after the call-back, fixed again
                    again = done + dt.timedelta(days=rng.uniform(1, 25))
                    fixed = again + dt.timedelta(hours=rng.uniform(4, 60))
                    if fixed < self.end:
                        events += [(again, "reopen", "closed", "reopened"),
                                   (again + dt.timedelta(hours=2), "arrive", "en_route", "on_site"),
                                   (fixed, "complete", "repairing", "completed")]
                        visits, reopens, completed = 2, 1, fixed
                closed = completed + dt.timedelta(days=rng.uniform(0.5, 3))
                if closed >= self.end:
                    status, closed = ("callback" if rng.random() < 0.7 else "completed"), None
        response_breached = (responded or self.end) > response_due
        resolved_at = completed or (closed if otype == "consultation" else None)
        resolve_breached = (resolved_at or self.end) > resolve_due and status != "cancelled"
        last = max([created, *(e[0] for e in events), *(t for t in (closed,) if t)])
        rows["orders"].append((
            oid, number, otype, channel, priority, status, customer, unit, "bench", fault, node, rng.choice(self.agents),
            assignee, created, last, responded, completed, closed, response_due, resolve_due,
            "breached" if response_breached or resolve_breached else "ok", response_breached, resolve_breached,
            reopens, visits, len(events)))
        for seq, (at, action, frm, to) in enumerate(sorted(events), start=1):
            rows["events"].append((oid, seq, at, "bench", action, frm, to, "", "{}"))
        if status not in ("closed", "callback", "completed"):
            return
        if otype == "repair" and unit and fault and resolved_at:
            self.recent.append((resolved_at, unit, fault))
        if visits:
            month = created.astimezone(self.tz).date().replace(day=1)
            parts = Decimal(rng.choice([0, 0, 0, 35, 80, 160, 420])) if otype == "repair" else Decimal(0)
            labour, travel = Decimal(40 * visits), Decimal(30 * visits)
            total = parts + labour + travel
            self.cost[(node, month)] += total
            done_month = resolved_at.astimezone(self.tz).date().replace(day=1)
            rows["costs"].append((oid, node, done_month, parts, labour, travel, 0, total, visits, 0, resolved_at))
            met = 8 if rng.random() >= NORM_FAIL else rng.choice([6, 7, 7, 7])
            missed = set(rng.sample(NORM_CODES, 8 - met))
            rows["norms"].append((oid, json.dumps({c: c not in missed for c in NORM_CODES}), 8, met, "", resolved_at))
        if resolved_at and rng.random() < SURVEY_SHARE:
            answered = resolved_at + dt.timedelta(hours=rng.uniform(2, 60))
            if answered >= self.end:
                return
            tid = self.task_id
            self.task_id += 1
            late = resolve_breached or response_breached
            scores = [min(5, max(1, round(rng.gauss(4.0 if late else 4.6, 0.7)))) for _ in range(5)]
            link = rng.random() < 0.6
            rows["tasks"].append((tid, oid, 1, node, "done", resolved_at + dt.timedelta(days=2), 0, resolved_at,
                                  answered))
            rows["surveys"].append((oid, tid, node, "link" if link else "phone", f"{oid:064x}" if link else None,
                                    resolved_at, resolved_at + dt.timedelta(days=7) if link else None, answered,
                                    *scores, scores[-1] >= 3, ""))

    def _repeat_of(self, created: dt.datetime):
        """A unit and fault resolved in the 90 days before ``created`` (a few tries)."""
        for _ in range(4):
            if not self.recent:
                return None
            at, unit, fault = self.recent[self.rng.randrange(len(self.recent))]
            if created - dt.timedelta(days=90) < at < created:
                return unit, fault
        return None

    # ------------------------------------------------------------ sales

    def sales(self) -> None:
        from aftersales.catalog.models import ProductModel
        from aftersales.quality.models import ModelSales, NodeSales

        rng = self.rng
        share = {n: rng.uniform(10.3, 11.8) if rng.random() < 0.15 else rng.uniform(6.0, 9.5) for n in self.outlets}
        rows = [(n, m, (c * 100 / Decimal(f"{share[n] * rng.uniform(0.95, 1.05):.3f}")).quantize(Decimal(100)), self.end)
                for (n, m), c in sorted(self.cost.items()) if c > 0]
        self.counts["node sales"] = copy_rows(self.cur, NodeSales, ["node_id", "month", "amount", "updated_at"], rows)
        rows = []
        for mid, launched in ProductModel.objects.order_by("code").values_list("pk", "launched_on"):
            m = (launched or dt.date(2019, 1, 1)).replace(day=1)
            popular = rng.lognormvariate(0, 0.5)
            while m <= self.today:
                rows.append((mid, m, max(1, round(popular * rng.uniform(1500, 2500) * self.args.orders / 1e6)), self.end))
                m = (m.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        self.counts["model sales"] = copy_rows(self.cur, ModelSales, ["model_id", "month", "units", "updated_at"], rows)


ORDER_COLUMNS = ["id", "number", "type", "channel", "priority", "status", "customer_id", "unit_id", "problem",
                 "fault_category_id", "node_id", "owner_id", "assignee_id", "created_at", "updated_at", "responded_at",
                 "completed_at", "closed_at", "response_due", "resolve_due", "sla_state", "response_breached",
                 "resolve_breached", "reopen_count", "visit_count", "event_count"]
SURVEY_COLUMNS = ["order_id", "task_id", "node_id", "channel", "token_hash", "created_at", "expires_at", "answered_at",
                  "timeliness", "attitude", "professionalism", "result", "overall", "resolved", "comment"]


def load(args) -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count

    from aftersales.quality import demo as quality_demo
    from aftersales.tickets.models import WorkOrder

    t = time.perf_counter()
    call_command("demo", seed=args.seed, customers=200, units=300, orders=0, verbosity=0)
    quality_demo.reset()
    print(f"demo organisation loaded in {time.perf_counter() - t:.1f} s (its quality data taken away)")
    t = time.perf_counter()
    with connection.cursor() as c:
        cur = c.cursor
        cur.execute("SET session_replication_role = replica")  # no FK triggers while loading
        loader = Loader(args, cur)
        loader.customers_and_units()
        loader.orders()
        loader.sales()
        cur.execute("SET session_replication_role = DEFAULT")
        from django.core.management.color import no_style

        from aftersales.charges.models import ServiceCost
        from aftersales.customers.models import Customer, Unit
        from aftersales.feedback.models import CallbackTask, Survey
        from aftersales.quality.models import ModelSales, NodeSales, NormCheck
        from aftersales.tickets.models import OrderEvent

        models = [Customer, Unit, WorkOrder, OrderEvent, CallbackTask, Survey, ServiceCost, NormCheck, NodeSales,
                  ModelSales]
        for sql in connection.ops.sequence_reset_sql(no_style(), models):
            cur.execute(sql)
        for m in models:
            cur.execute(f"ANALYZE {m._meta.db_table}")
    n = dict(loader.counts)
    print(f"loaded in {time.perf_counter() - t:.1f} s: " + ", ".join(f"{v:,} {k}" for k, v in n.items()))
    mix = dict(WorkOrder.objects.values_list("status").annotate(n=Count("id")).order_by("-n"))
    print("  statuses:", ", ".join(f"{k} {v:,}" for k, v in mix.items()))


# ---------------------------------------------------------------- the figures

def timed(fn, runs: int) -> tuple[float, object]:
    out = fn()  # warm
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def main():
    args = parse_args()
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    base = os.environ.get("DATABASE_URL") or DEFAULT_URL
    name = args.database or urlsplit(base).path.lstrip("/") + "_indicators"
    setup_django(with_database_name(base, name), fresh=not args.reuse)

    from django.db import connection

    from aftersales.org.models import Node
    from aftersales.quality import facts, selectors
    from aftersales.quality.indicators import INDICATORS
    from aftersales.tickets.models import WorkOrder

    figures: list[tuple[str, str, str, str]] = []
    have = WorkOrder.objects.count()
    if args.reuse and have:
        print(f"reusing {have:,} orders in {name}")
    else:
        load(args)
    n_orders = WorkOrder.objects.count()

    # ------------------------------------------------------------ rebuild
    t = time.perf_counter()
    res = facts.rebuild(progress=sys.stderr)
    s = time.perf_counter() - t
    print(f"facts.rebuild(): {res.orders:,} orders, {res.cells:,} pre-aggregate rows in {s:.1f} s "
          f"({res.orders / s:,.0f} orders/s)")
    figures.append(("orders", f"{n_orders:,}", "1,000,000", "yes" if n_orders >= 1_000_000 else "(smaller run)"))
    figures.append(("rebuild", f"{s:.1f} s", "", ""))
    figures.append(("rebuild orders/s", f"{res.orders / s:,.0f}", "", ""))
    with connection.cursor() as cur:
        for table in ("quality_orderfact", "quality_aggregate"):
            cur.execute(f"ANALYZE {table}")

    # ------------------------------------------------------------ incremental refresh
    rng = random.Random(f"bench-indicators-touch:{args.seed}")
    recent = WorkOrder.objects.order_by("-id").values_list("id", flat=True)[n_orders // 24]  # the last month's
    resolved = list(WorkOrder.objects.filter(status="closed", response_breached=False, id__gte=recent)
                    .values_list("id", flat=True))
    touched = sorted(rng.sample(resolved, min(TOUCHED, len(resolved))))
    with connection.cursor() as cur:
        cur.execute("UPDATE tickets_workorder SET response_breached = TRUE, sla_state = 'breached', updated_at = now()"
                    " WHERE id = ANY(%s)", [touched])
    t = time.perf_counter()
    inc = facts.refresh()
    s = time.perf_counter() - t
    print(f"facts.refresh() after touching {len(touched):,} orders of the last month: {s * 1000:,.0f} ms; "
          f"{inc.orders:,} orders and "
          f"{inc.cells:,} cells recomputed")
    figures.append((f"refresh after {len(touched):,} touched", f"{s * 1000:,.0f} ms", "", ""))

    # ------------------------------------------------------------ the dashboard
    nodes = list(Node.objects.order_by("path"))
    end = dt.date.today().replace(day=1) - dt.timedelta(days=1)  # the last whole month …
    start = dt.date(end.year - (end.month < 12), end.month % 12 + 1, 1)  # … and the eleven before it

    def dashboard(source: str):
        def run():
            cells = selectors.cells(nodes=nodes, grain="month", start=start, end=end, source=source)
            return cells, {k: selectors.values(m) for k, m in cells.items()}
        return run

    def floor():
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM tickets_workorder")
            return cur.fetchone()[0]

    floor_ms, _ = timed(floor, args.runs)
    agg_ms, (agg_cells, agg_values) = timed(dashboard("agg"), args.runs)
    raw_ms, (raw_cells, _raw_values) = timed(dashboard("raw"), max(1, args.runs))
    n_cells = len(agg_cells)
    n_values = sum(len(v) for v in agg_values.values())
    print(f"HQ dashboard: {len(nodes)} nodes × {len(selectors.periods('month', start, end))} months "
          f"({start:%Y-%m} … {end:%Y-%m}) = {n_cells} cells × {len(INDICATORS)} indicators = {n_values:,} values")
    print(f"  from the pre-aggregates {agg_ms:,.1f} ms, recomputed {raw_ms:,.1f} ms, floor count(*) {floor_ms:,.1f} ms "
          f"(medians of {args.runs} warm runs)")
    diff = [k for k in agg_cells if agg_cells[k] != raw_cells.get(k)]
    print(f"  pre-aggregates = recomputation in every cell: {'yes' if not diff else f'NO ({len(diff)} cells differ)'}")
    for k in diff[:3]:
        a, b = agg_cells[k], raw_cells.get(k) or {}
        print("   ", k, {f: (a[f], b.get(f)) for f in a if a[f] != b.get(f)})
    figures.append(("dashboard cells × indicators", f"{n_cells} × {len(INDICATORS)}", "", ""))
    figures.append(("floor: count(*) orders", f"{floor_ms:,.1f} ms", "", ""))
    figures.append(("dashboard, pre-aggregates", f"{agg_ms:,.1f} ms", f"< {TARGET_AGG_MS:.0f} ms",
                    "yes" if agg_ms < TARGET_AGG_MS else "NO"))
    figures.append(("dashboard, recomputed", f"{raw_ms:,.1f} ms", f"< {TARGET_RAW_MS:.0f} ms",
                    "yes" if raw_ms < TARGET_RAW_MS else "NO"))
    figures.append(("pre-aggregates / floor", f"{agg_ms / floor_ms:,.2f}", "", ""))
    figures.append(("recomputed / floor", f"{raw_ms / floor_ms:,.2f}", "", ""))
    figures.append(("pre-aggregates = recomputed", "yes" if not diff else "no", "every cell", "yes" if not diff else "NO"))

    # ------------------------------------------------------------ summary
    print()
    w0 = max(len(f[0]) for f in figures)
    w1 = max(len(f[1]) for f in figures)
    w2 = max(len(f[2]) for f in figures)
    print(f"{'figure':<{w0}}  {'value':>{w1}}  {'target':<{w2}}  ok")
    print("-" * (w0 + w1 + w2 + 8))
    for f, v, tgt, ok in figures:
        print(f"{f:<{w0}}  {v:>{w1}}  {tgt:<{w2}}  {ok}")
    if any(f[3] == "NO" for f in figures):
        sys.exit(1)


if __name__ == "__main__":
    main()
