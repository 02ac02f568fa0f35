#!/usr/bin/env python
"""Work orders through their whole lifecycle on PostgreSQL: in-process, over HTTP, and the floor.

    .venv/bin/python bench/workorders.py [--orders 1000] [--http-orders 1000] [--clients 16]

DATABASE_URL names the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/aftersales_bench);
the bench uses its own database ``<name>_workorders``, created afresh, with the demo organisation
(24 outlets, 180 technicians) and a few thousand customers and units.

One lifecycle is what happens to a repair request: the agent records it (create) and classifies
it; the dispatcher ranks the technicians (candidates) and books one (dispatch); the technician
accepts, departs, arrives, diagnoses, repairs and completes it (completion opens the call-back
and moves the order to call-back); the agent calls the customer back, who is satisfied, and the
order closes (callback_record). Each step is one service call, in its own transaction, exactly
as the API and the pages make it.

1. In-process: ``--orders`` lifecycles, one after another, through the services. Prints
   lifecycles/s and p50/p95 per step.
2. Floor: the SQL statements of one lifecycle are captured and replayed through bare psycopg
   (the same statements with their BEGIN/SAVEPOINT/COMMIT, so the same commits), up to 500
   times; prints the statement count, the floor's lifecycles/s and the ratio services / floor.
3. HTTP: a gunicorn server on a free local port (gthread workers) and ``--clients`` concurrent
   clients, each running lifecycles over the REST API with bearer tokens (agent, dispatcher,
   technician, each client its own technician so that bookings don't clash). Prints
   lifecycles/s and p50/p95 per step.
4. Check: every order has exactly the events its steps wrote — none lost, none duplicated —
   and ``tickets.invariants.order_problems`` finds nothing; the audit trail verifies.

Targets: ≥ 100 lifecycles/s in one process; HTTP p95 per step under 50 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import queue
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from urllib.parse import urlsplit

from _common import DEFAULT_URL, ROOT, percentile, setup_django, with_database_name

TARGET_LIFECYCLES = 100
TARGET_HTTP_P95_MS = 50.0
STEPS = ["create", "classify", "candidates", "dispatch", "accept", "depart", "arrive", "diagnose", "repair",
         "complete", "callback"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=1000, help="lifecycles in-process (default 1000)")
    p.add_argument("--http-orders", type=int, default=1000, help="lifecycles over HTTP (default 1000)")
    p.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients (default 16)")
    p.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (default 4)")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


# ---------------------------------------------------------------- the world of the bench

class World:
    """Who acts and on what: an agent at headquarters, a dispatcher per centre, the demo's
    technicians with the units they can repair, and a free two-hour slot cursor per technician."""

    def __init__(self, rng: random.Random):
        from django.contrib.auth import get_user_model
        from django.db import transaction

        from aftersales.customers.models import Unit
        from aftersales.org.models import Employee, Node, NodeKind, RoleAssignment
        from aftersales.org.roles import Role

        User = get_user_model()
        hq = Node.objects.get(kind=NodeKind.HQ)
        with transaction.atomic():
            self.agent, _ = User.objects.get_or_create(username="bench_agent")
            RoleAssignment.objects.get_or_create(user=self.agent, role=Role.AGENT, node=hq)
            self.dispatchers = {}
            for centre in Node.objects.filter(kind=NodeKind.CENTRE):
                u, _ = User.objects.get_or_create(username=f"bench_dispatcher_{centre.pk}")
                RoleAssignment.objects.get_or_create(user=u, role=Role.DISPATCHER, node=centre)
                self.dispatchers[centre.pk] = u
        techs = list(Employee.objects.filter(
            active=True, user__role_assignments__role=Role.TECHNICIAN,
        ).select_related("user", "node").prefetch_related("skills").distinct())
        self.techs = techs
        self.centre_of = dict(Node.objects.filter(kind=NodeKind.OUTLET).values_list("pk", "parent_id"))
        # units whose customer's outlet has a technician with the unit's skill
        skilled = defaultdict(list)  # (outlet, category) -> technicians
        for t in techs:
            for c in t.skills.all():
                skilled[(t.node_id, c.pk)].append(t)
        self.skilled = skilled
        units = list(Unit.objects.values_list("pk", "customer_id", "customer__node_id", "model__category_id"))
        rng.shuffle(units)
        from aftersales.tickets.models import FaultCode

        self.fault_code = {}  # product category -> a fault code the technician reports
        for cat, code in FaultCode.objects.order_by("category_id", "code").values_list("category_id", "code"):
            self.fault_code.setdefault(cat, code)
        self.units = [u for u in units if skilled.get((u[2], u[3])) and u[3] in self.fault_code]
        tomorrow = dt.datetime.combine(dt.date.today() + dt.timedelta(days=1), dt.time(8),
                                       dt.timezone(dt.timedelta(hours=8)))
        from django.db.models import Max

        from aftersales.dispatch.models import Booking

        booked = dict(Booking.objects.values("employee_id").annotate(m=Max("ends_at")).values_list("employee_id", "m"))
        self.cursor = {t.pk: max(tomorrow, booked.get(t.pk) or tomorrow) for t in techs}
        self.lock = threading.Lock()

    def slot(self, tech_id: int) -> tuple[dt.datetime, dt.datetime]:
        """The technician's next free two-hour slot between 08:00 and 20:00."""
        with self.lock:
            start = self.cursor[tech_id]
            if start.hour >= 18:
                start = dt.datetime.combine(start.date() + dt.timedelta(days=1), dt.time(8), start.tzinfo)
            self.cursor[tech_id] = start + dt.timedelta(hours=2)
            return start, start + dt.timedelta(hours=2)


# ---------------------------------------------------------------- in-process

def lifecycle(w: World, unit, record) -> int:
    """One order through every step, calling ``record(step, ms)`` after each; returns its id."""
    from aftersales.dispatch import selectors as dsel
    from aftersales.dispatch import services as dsvc
    from aftersales.feedback import services as fsvc
    from aftersales.feedback.models import CallbackTask
    from aftersales.tickets import services as tsvc
    from aftersales.tickets import workflow

    unit_id, customer_id, outlet_id, cat = unit

    def timed(step, fn):
        t = time.perf_counter()
        out = fn()
        record(step, (time.perf_counter() - t) * 1000)
        return out

    o = timed("create", lambda: tsvc.order_create(user=w.agent, customer_id=customer_id, unit_id=unit_id,
                                                  type="repair", channel="phone", problem="空调不制冷，开机后吹热风"))
    oid = o.pk
    timed("classify", lambda: workflow.move(oid, "classify", user=w.agent, type="repair", priority="normal"))
    dispatcher = w.dispatchers[w.centre_of[o.node_id]]
    cands = timed("candidates", lambda: dsel.candidates(dispatcher, oid, limit=5))
    tech = next((c.employee for c in cands if c.eligible), None)
    if tech is None:
        raise SystemExit(f"no eligible technician for order {o.number}: {[c.blockers for c in cands]}")
    start, end = w.slot(tech.pk)
    timed("dispatch", lambda: dsvc.dispatch_order(user=dispatcher, order_id=oid, employee_id=tech.pk,
                                                  starts_at=start, ends_at=end))
    tu = tech.user
    timed("accept", lambda: dsvc.accept_order(user=tu, order_id=oid))
    for step in ("depart", "arrive", "diagnose"):
        timed(step, lambda s=step: workflow.move(oid, s, user=tu))
    timed("repair", lambda: workflow.move(oid, "repair", user=tu, diagnosis="检测确认故障部件", fault_code=w.fault_code[cat]))
    timed("complete", lambda: workflow.move(oid, "complete", user=tu, actions="更换故障部件，通电试机",
                                            result="试机正常"))
    task_id = CallbackTask.objects.filter(order_id=oid).values_list("pk", flat=True).get()
    timed("callback", lambda: fsvc.callback_record(user=w.agent, task_id=task_id, reached=True, timeliness=5,
                                                   attitude=5, professionalism=5, result=5, resolved=True))
    return oid


def capture_lifecycle(w: World, unit) -> tuple[list[list[str]], int]:
    """The SQL of one lifecycle, step by step (each step its own transaction), and the order's id."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    marks: list[int] = []
    with CaptureQueriesContext(connection) as ctx:
        oid = lifecycle(w, unit, lambda step, ms: marks.append(len(ctx.captured_queries)))
    queries = [q["sql"] for q in ctx.captured_queries]
    return [queries[a:b] for a, b in zip([0, *marks], marks, strict=False)], oid


def floor(url: str, steps: list[list[str]], n: int, seqs: list[tuple[str, str, int | None]]) -> float:
    """Replay the captured statements ``n`` times over bare psycopg on the floor database; seconds
    per lifecycle. The capture holds Django's own BEGIN, SAVEPOINT and COMMIT statements, so the
    replay commits exactly where the services do. Between replays (untimed) the rows a replay
    inserted are deleted and the sequences put back, so every replay inserts the same rows with
    the same ids as the captured lifecycle."""
    import psycopg

    statements = [q for step in steps for q in step]
    total = 0.0
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(n):
            t = time.perf_counter()
            for sql in statements:
                conn.execute(sql)
            total += time.perf_counter() - t
            with conn.transaction():
                for table, seq, last in seqs:
                    conn.execute(f'DELETE FROM "{table}" WHERE id > %s', [last or 0])
                    if last is None:
                        conn.execute("SELECT setval(%s, 1, false)", [seq])
                    else:
                        conn.execute("SELECT setval(%s, %s, true)", [seq, last])
    return total / n


def sequences(cur) -> list[tuple[str, str, int | None]]:
    """(table, its id sequence, the sequence's last value) for every table with an id sequence."""
    cur.execute("""
        SELECT c.table_name, pg_get_serial_sequence(quote_ident(c.table_name), 'id') AS seq
        FROM information_schema.columns c
        WHERE c.table_schema = 'public' AND c.column_name = 'id'
    """)
    out = []
    for table, seq in cur.fetchall():
        if seq:
            cur.execute(f"SELECT last_value, is_called FROM {seq}")
            last, called = cur.fetchone()
            out.append((table, seq, last if called else None))
    return out


# ---------------------------------------------------------------- the check

def check(order_ids: list[int], expected_events: int) -> bool:
    from django.db.models import Count

    from aftersales.records.audit import audit_verify
    from aftersales.tickets.invariants import order_problems
    from aftersales.tickets.models import OrderEvent, WorkOrder

    counts = dict(OrderEvent.objects.filter(order_id__in=order_ids).values("order_id")
                  .annotate(n=Count("id")).values_list("order_id", "n"))
    stored = dict(WorkOrder.objects.filter(pk__in=order_ids).values_list("pk", "event_count"))
    lost = sum(max(0, expected_events - counts.get(i, 0)) for i in order_ids)
    dup = sum(max(0, counts.get(i, 0) - expected_events) for i in order_ids)
    mismatched = sum(1 for i in order_ids if stored.get(i) != counts.get(i, 0))
    problems = order_problems(order_ids)
    closed = WorkOrder.objects.filter(pk__in=order_ids, status="closed").count()
    report = audit_verify()
    print(f"  orders {len(order_ids):,}, closed {closed:,}; events expected {expected_events} per order: "
          f"lost {lost}, duplicated {dup}, event_count mismatches {mismatched}; "
          f"invariant problems {len(problems)}; audit trail {'intact' if report.ok else 'NOT intact'}")
    for p in problems[:10]:
        print("   ", p)
    return lost == dup == mismatched == 0 and not problems and closed == len(order_ids) and report.ok


def print_steps(title: str, timings: dict[str, list[float]]) -> float:
    print(f"\n{title}")
    print(f"  {'step':<12}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}")
    worst = 0.0
    for s in STEPS:
        v = sorted(timings.get(s, []))
        if not v:
            continue
        p95 = percentile(v, 0.95)
        worst = max(worst, p95)
        print(f"  {s:<12}{len(v):>7}{percentile(v, 0.5):>9.1f}{p95:>9.1f}")
    return worst


# ---------------------------------------------------------------- over HTTP

class Client:
    """One keep-alive HTTP connection speaking JSON with a bearer token per call."""

    def __init__(self, port: int):
        import http.client

        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, token: str, body: dict | None = None) -> dict:
        data = json.dumps(body or {}, default=str).encode() if method != "GET" else None
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path} → {resp.status}: {raw[:300]!r}")
        return json.loads(raw) if raw else {}


def http_lifecycle(c: Client, tokens: dict, w: World, tech, unit, record) -> int:
    from aftersales.feedback.models import CallbackTask

    unit_id, customer_id, outlet_id, cat = unit
    agent, disp, tech_tok = tokens["agent"], tokens[("dispatcher", w.centre_of[outlet_id])], tokens[tech.pk]

    def timed(step, method, path, token, body=None):
        t = time.perf_counter()
        out = c.call(method, path, token, body)
        record(step, (time.perf_counter() - t) * 1000)
        return out

    o = timed("create", "POST", "/api/orders/", agent, {
        "customer_id": customer_id, "unit_id": unit_id, "type": "repair", "channel": "phone",
        "problem": "空调不制冷，开机后吹热风"})
    oid = o["id"]
    timed("classify", "POST", f"/api/orders/{oid}/moves/classify", agent, {"type": "repair", "priority": "normal"})
    timed("candidates", "GET", f"/api/dispatch/orders/{oid}/candidates", disp)
    start, end = w.slot(tech.pk)
    timed("dispatch", "POST", f"/api/dispatch/orders/{oid}/dispatch", disp,
          {"employee_id": tech.pk, "starts_at": start.isoformat(), "ends_at": end.isoformat()})
    timed("accept", "POST", f"/api/dispatch/orders/{oid}/accept", tech_tok)
    for step in ("depart", "arrive", "diagnose"):
        timed(step, "POST", f"/api/orders/{oid}/moves/{step}", tech_tok)
    timed("repair", "POST", f"/api/orders/{oid}/moves/repair", tech_tok,
          {"diagnosis": "检测确认故障部件", "fault_code": w.fault_code[cat]})
    timed("complete", "POST", f"/api/orders/{oid}/moves/complete", tech_tok,
          {"actions": "更换故障部件，通电试机", "result": "试机正常"})
    task_id = CallbackTask.objects.filter(order_id=oid).values_list("pk", flat=True).get()
    timed("callback", "POST", f"/api/feedback/callbacks/{task_id}", agent, {
        "reached": True, "timeliness": 5, "attitude": 5, "professionalism": 5, "result": 5, "resolved": True})
    return oid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, workers: int, threads: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, DATABASE_URL=url, DEBUG="0", AFTERSALES_INSECURE_DEV_KEY="1",
               DJANGO_SETTINGS_MODULE="aftersales.settings", LOG_LEVEL="WARNING")
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "aftersales.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
         "--keep-alive", "30", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/openapi.json", timeout=2):
                return proc, port
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("gunicorn did not start")


def run_http(args, url: str, w: World) -> tuple[list[int], dict[str, list[float]], float]:
    from django.db import connections

    from aftersales.api.services import token_issue

    # each client its own technician (distinct outlets first), and units that technician can repair
    rng = random.Random(f"http:{args.seed}")
    by_outlet: dict[int, list] = defaultdict(list)
    for t in w.techs:
        by_outlet[t.node_id].append(t)
    picked = []
    while len(picked) < args.clients:
        for outlet in sorted(by_outlet):
            if by_outlet[outlet] and len(picked) < args.clients:
                picked.append(by_outlet[outlet].pop())
    jobs = {t.pk: [u for u in w.units if (u[2], u[3]) in {(t.node_id, c.pk) for c in t.skills.all()}]
            for t in picked}
    tokens = {"agent": token_issue(w.agent, "bench")[1]}
    for centre, u in w.dispatchers.items():
        tokens[("dispatcher", centre)] = token_issue(u, "bench")[1]
    for t in picked:
        tokens[t.pk] = token_issue(t.user, "bench")[1]
    connections.close_all()
    proc, port = start_server(url, args.workers, args.threads)
    todo: queue.Queue = queue.Queue()
    for i in range(args.http_orders):
        todo.put(i)
    timings: dict[str, list[float]] = defaultdict(list)
    ids: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(tech):
        c = Client(port)
        mine = jobs[tech.pk]
        local: dict[str, list[float]] = defaultdict(list)
        try:
            while True:
                try:
                    todo.get_nowait()
                except queue.Empty:
                    break
                unit = mine[rng.randrange(len(mine))] if mine else None
                if unit is None:
                    errors.append(f"technician {tech.pk} has no units to repair")
                    break
                oid = http_lifecycle(c, tokens, w, tech, unit, lambda s, ms: local[s].append(ms))
                with lock:
                    ids.append(oid)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(str(exc))
        finally:
            with lock:
                for k, v in local.items():
                    timings[k].extend(v)
            connections.close_all()

    threads = [threading.Thread(target=client, args=(t,)) for t in picked]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    proc.terminate()
    proc.wait(timeout=30)
    for e in errors[:5]:
        print("  error:", e)
    if errors:
        raise SystemExit(f"{len(errors)} HTTP clients failed")
    return ids, timings, elapsed


# ---------------------------------------------------------------- main

def main() -> None:
    args = parse_args()
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # not a log line per in-process task
    base = os.environ.get("DATABASE_URL") or DEFAULT_URL
    name = urlsplit(base).path.lstrip("/") + "_workorders"
    url = with_database_name(base, name)
    floor_url = with_database_name(base, name + "_floor")
    setup_django(url, fresh=True)

    import psycopg
    from django.core.management import call_command
    from django.db import connection, connections

    from aftersales.tickets.models import WorkOrder

    t = time.perf_counter()
    call_command("demo", seed=args.seed, customers=4000, units=4000, orders=0, verbosity=0)
    from aftersales.tickets.fault_catalog import ensure_fault_catalog

    ensure_fault_catalog()
    print(f"demo organisation loaded in {time.perf_counter() - t:.1f} s")
    rng = random.Random(args.seed)
    w = World(rng)
    units = iter(w.units * (1 + (args.orders + 1) // max(1, len(w.units))))

    # warm up (imports, caches), then the floor's copy of the database and the captured lifecycle
    lifecycle(w, next(units), lambda s, ms: None)
    with connection.cursor() as cur:
        seqs = sequences(cur)
    connections.close_all()
    with psycopg.connect(with_database_name(base, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}_floor" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}_floor" TEMPLATE "{name}"')
    steps, captured_id = capture_lifecycle(w, next(units))
    expected_events = WorkOrder.objects.get(pk=captured_id).event_count
    n_statements = sum(len(s) for s in steps)

    # 1. in-process
    timings: dict[str, list[float]] = defaultdict(list)
    ids = [captured_id]
    t = time.perf_counter()
    for _ in range(args.orders):
        ids.append(lifecycle(w, next(units), lambda s, ms: timings[s].append(ms)))
    elapsed = time.perf_counter() - t
    rate = args.orders / elapsed
    print_steps(f"In-process: {args.orders:,} lifecycles in {elapsed:.1f} s = {rate:.0f} lifecycles/s "
                f"(target ≥ {TARGET_LIFECYCLES})", timings)

    # 2. the floor
    per = floor(floor_url, steps, min(args.orders, 500), seqs)
    print(f"\nFloor: the same {n_statements} statements per lifecycle ({len(steps)} steps, with their BEGIN/COMMIT) "
          f"over bare psycopg: {per * 1000:.2f} ms per lifecycle = {1 / per:.0f} lifecycles/s")
    print(f"  services / floor = {(elapsed / args.orders) / per:.1f}×")
    with psycopg.connect(with_database_name(base, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}_floor" WITH (FORCE)')

    # 3. over HTTP
    http_ids, http_timings, http_elapsed = run_http(args, url, w)
    worst = print_steps(
        f"HTTP: {len(http_ids):,} lifecycles, {args.clients} concurrent clients, gunicorn {args.workers} workers × "
        f"{args.threads} threads: {http_elapsed:.1f} s = {len(http_ids) / http_elapsed:.0f} lifecycles/s, "
        f"{sum(len(v) for v in http_timings.values()) / http_elapsed:.0f} requests/s", http_timings)
    print(f"  worst step p95 {worst:.1f} ms (target < {TARGET_HTTP_P95_MS:.0f} ms)")

    # 4. nothing lost, nothing duplicated
    print("\nCheck")
    ok = check(ids + http_ids, expected_events)
    print(f"  {'OK' if ok else 'FAILED'}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
