#!/usr/bin/env python
"""Spare parts at scale on PostgreSQL: availability look-ups and concurrent reservations.

    .venv/bin/python bench/parts.py [--parts 10000] [--warehouses 200] [--movements 1000000]
                                    [--lookups 2000] [--workers 16] [--threads] [--reservations 10000]
                                    [--database NAME] [--quick]

DATABASE_URL names the PostgreSQL server (default postgres://postgres@127.0.0.1:5432/aftersales_bench);
the bench uses its own database, ``--database`` or ``<DATABASE_URL's name>_parts``, created
afresh, with the demo organisation (``manage.py demo``: headquarters, 3 centres, 24 outlets,
180 technicians; its own parts data is taken away again).

1. Load: ``--parts`` parts; ``--warehouses`` warehouses (headquarters, the centres, the outlets,
   and a van for as many technicians as make up the number); stock rows (every part at
   headquarters, most at the centres, a third at each outlet, a few hundred in each van); and
   ``--movements`` ledger movements over six months — opening receipts, then receipts,
   transfers in and out, reservations, releases, consumption, old parts returned and scrapped,
   count adjustments — each with its deltas and the balances after it, the stock rows the sums.
   Loaded with COPY (psycopg), then ANALYZE. Eight "hot" outlet rows are left with little
   available stock for the race below. No audit entries for the loaded rows (the audit trail
   is not what this bench measures; the reservations below write theirs).
2. Availability: ``parts.selectors.availability(part_id, near_node_id=…)`` for ``--lookups``
   random parts from random outlets: p50/p95/p99 in ms (target p95 < 10 ms), and EXPLAIN
   ANALYZE of its query, showing the index it uses.
3. Reservations: ``--workers`` workers — forked processes, or threads with ``--threads`` —
   each with its own connection, call ``parts.services.stock_reserve(user=hq_manager, …,
   qty=1)`` ``--reservations`` times in all on random stock rows, one call in five on the hot
   rows (where they run out: Conflict). Prints reservations/s, successes and Conflicts,
   p50/p95 per call, and checks that each hot row granted exactly what it had.
4. Check: ``parts.selectors.ledger_problems()`` is empty and no stock row or movement is
   negative (SQL).

``--quick`` is a small run (1,000 parts, 50 warehouses, 50,000 movements, 300 look-ups, 2,000
reservations).
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import os
import random
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from urllib.parse import urlsplit

from _common import DEFAULT_URL, copy_rows, percentile, setup_django, with_database_name

TARGET_LOOKUP_P95_MS = 10.0
HOT_ROWS = 8
HOT_AVAILABLE = 40
DAYS = 182

# (name, English, cost range) of the parts the catalog is made of, numbered per category
KINDS = [("压缩机", "Compressor", 600, 1600), ("主控板", "Main board", 200, 500), ("风扇电机", "Fan motor", 120, 320),
         ("温控器", "Thermostat", 20, 80), ("排水泵", "Drain pump", 60, 130), ("门封条", "Door seal", 60, 140),
         ("加热管", "Heating element", 60, 160), ("滚筒轴承", "Drum bearing", 45, 90), ("四通阀", "Four-way valve", 95, 180),
         ("遥控器", "Remote control", 30, 90), ("电源板", "Power board", 120, 260), ("进水阀", "Inlet valve", 25, 55)]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", type=int, default=10_000, help="parts in the catalog (default 10000)")
    p.add_argument("--warehouses", type=int, default=200, help="warehouses, vans included (default 200)")
    p.add_argument("--movements", type=int, default=1_000_000, help="ledger movements (default 1000000)")
    p.add_argument("--lookups", type=int, default=2000, help="availability look-ups (default 2000)")
    p.add_argument("--workers", type=int, default=16, help="concurrent reserving workers (default 16)")
    p.add_argument("--threads", action="store_true",
                   help="workers as threads of this process (default: forked processes)")
    p.add_argument("--reservations", type=int, default=10_000, help="reservation calls in all (default 10000)")
    p.add_argument("--database", default=None, help="database name (default: DATABASE_URL's name + _parts)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="a small run")
    args = p.parse_args()
    if args.quick:
        args.parts, args.warehouses, args.movements = 1000, 50, 50_000
        args.lookups, args.reservations = 300, 2000
    return args


# ---------------------------------------------------------------- COPY


# ---------------------------------------------------------------- the ledger of one stock row


def row_ledger(rng: random.Random, n: int, opening: int, start: dt.datetime, end: dt.datetime,
               hot: bool) -> tuple[list[tuple], tuple[int, int, int]]:
    """``n`` movements of one (warehouse, part), in time order: an opening receipt, then a
    random walk of the kinds the ledger knows, each valid where it happens. Returns
    (kind, Δon hand, Δreserved, Δdefective, on hand, reserved, defective, at) and the balances."""
    oh = opening
    rs = df = 0
    span = (end - start).total_seconds()
    times = sorted(rng.random() for _ in range(n - 1))
    out = [("receive", opening, 0, 0, oh, rs, df, start)]
    for x in times:
        at = start + dt.timedelta(seconds=x * span)
        r = rng.random()
        free = oh - rs
        if r < 0.30 and free > 0:
            q = rng.randint(1, min(3, free))
            d = ("reserve", 0, q, 0)
        elif r < 0.42 and rs > 0:
            q = rng.randint(1, rs)
            d = ("release", 0, -q, 0)
        elif r < 0.62 and rs > 0:
            q = rng.randint(1, min(2, rs))
            d = ("consume", -q, -q, 0)
        elif r < 0.70 and rs > 0:
            q = rng.randint(1, rs)
            d = ("transfer_out", -q, -q, 0)
        elif r < 0.78 and df > 0:
            d = ("scrap", 0, 0, -df) if rng.random() < 0.3 else ("transfer_out", 0, 0, -df)
        elif r < 0.86:
            d = ("defective_return", 0, 0, 1)
        elif r < 0.90 and free > 0:
            d = ("adjust", -1, 0, 0) if rng.random() < 0.6 else ("adjust", 1, 0, 0)
        elif r < 0.95:
            d = ("transfer_in", rng.randint(1, 10), 0, 0)
        else:
            d = ("receive", rng.randint(5, 30), 0, 0)
        oh, rs, df = oh + d[1], rs + d[2], df + d[3]
        out.append((*d, oh, rs, df, at))
    if hot:  # little left: the race below runs it out
        free = oh - rs
        if free != HOT_AVAILABLE:
            delta = HOT_AVAILABLE - free
            oh += delta
            out.append(("adjust", delta, 0, 0, oh, rs, df, end))
    return out, (oh, rs, df)


# ---------------------------------------------------------------- the reserving workers


def reserve_loop(i: int, n: int, seed: int, hot_rows: list, free_rows: list, start_gate) -> tuple:
    """One worker: ``n`` calls of ``stock_reserve`` as the HQ manager, on its own connection."""
    from django.contrib.auth import get_user_model
    from django.db import connections

    from aftersales.core.errors import Conflict
    from aftersales.parts import services

    wrng = random.Random(f"bench-parts-worker:{seed}:{i}")
    local, mine = Counter(), Counter()
    lat: list[float] = []
    errors: list[str] = []
    try:
        user = get_user_model().objects.get(username="hq_manager")
        start_gate.wait()
        for _ in range(n):
            w, p = wrng.choice(hot_rows) if wrng.random() < 0.2 else wrng.choice(free_rows)
            t0 = time.perf_counter()
            try:
                services.stock_reserve(user=user, warehouse_id=w, part_id=p, qty=1, reason="bench")
                local["ok"] += 1
                mine[(w, p)] += 1
            except Conflict:
                local["conflict"] += 1
            lat.append((time.perf_counter() - t0) * 1000)
    except Exception as e:  # noqa: BLE001 - reported by the caller
        errors.append(f"{type(e).__name__}: {e}")
    finally:
        connections.close_all()
    return local, mine, lat, errors


def _process_worker(i, n, seed, hot_rows, free_rows, gate, queue) -> None:
    queue.put(reserve_loop(i, n, seed, hot_rows, free_rows, gate))


def run_workers(args, per: list[int], hot_rows: list, free_rows: list):
    """The workers, in processes (forked; each its own connection) or, with ``--threads``,
    threads of this process (each its own connection; they share the interpreter lock)."""
    results, granted, latencies, errors = Counter(), Counter(), [], []

    def collect(out) -> None:
        local, mine, lat, errs = out
        results.update(local)
        granted.update(mine)
        latencies.extend(lat)
        errors.extend(errs)

    if args.threads:
        gate = threading.Barrier(args.workers + 1)
        outs: list = [None] * args.workers

        def run(i):
            outs[i] = reserve_loop(i, per[i], args.seed, hot_rows, free_rows, gate)

        workers = [threading.Thread(target=run, args=(i,)) for i in range(args.workers)]
        for th in workers:
            th.start()
        gate.wait()
        t0 = time.perf_counter()
        for th in workers:
            th.join()
        elapsed = time.perf_counter() - t0
        for out in outs:
            collect(out)
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        gate = ctx.Barrier(args.workers + 1)
        queue = ctx.Queue()
        procs = [ctx.Process(target=_process_worker, args=(i, per[i], args.seed, hot_rows, free_rows, gate, queue))
                 for i in range(args.workers)]
        for pr in procs:
            pr.start()
        gate.wait()
        t0 = time.perf_counter()
        outs = [queue.get() for _ in procs]
        elapsed = time.perf_counter() - t0
        for pr in procs:
            pr.join()
        for out in outs:
            collect(out)
    return results, granted, latencies, errors, elapsed


# ---------------------------------------------------------------- main


def main() -> None:
    args = parse_args()
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    base = os.environ.get("DATABASE_URL") or DEFAULT_URL
    name = args.database or urlsplit(base).path.lstrip("/") + "_parts"
    url = with_database_name(base, name)
    setup_django(url, fresh=True)

    from django.core.management import call_command
    from django.db import connection, connections
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from aftersales.catalog.models import Category
    from aftersales.core.progress import Progress
    from aftersales.org.models import Employee, Node, NodeKind
    from aftersales.org.roles import Role
    from aftersales.parts import selectors
    from aftersales.parts.models import Movement, Part, Stock, Warehouse, WarehouseKind
    from aftersales.web.demo_parts import parts_reset

    rng = random.Random(f"bench-parts:{args.seed}")
    figures: list[tuple[str, str, str, str]] = []  # (figure, value, target, ok)

    # ------------------------------------------------------------ organisation (demo), then our parts
    t = time.perf_counter()
    call_command("demo", seed=args.seed, customers=200, units=300, orders=0, verbosity=0)
    parts_reset()
    print(f"demo organisation loaded in {time.perf_counter() - t:.1f} s (its parts data taken away)")
    hq = Node.objects.get(kind=NodeKind.HQ)
    centres = list(Node.objects.filter(kind=NodeKind.CENTRE).order_by("code"))
    outlets = list(Node.objects.filter(kind=NodeKind.OUTLET).order_by("code"))
    techs = list(Employee.objects.filter(user__role_assignments__role=Role.TECHNICIAN).order_by("employee_no"))
    cats = list(Category.objects.order_by("code").values_list("id", flat=True))
    now = timezone.now()
    start = now - dt.timedelta(days=DAYS)

    load_started = time.perf_counter()
    whs = [Warehouse(code="WH-HQ", name="总部备件总库", kind=WarehouseKind.HQ, node=hq)]
    whs += [Warehouse(code=f"WH-{c.code}", name=f"{c.name}备件库", kind=WarehouseKind.CENTRE, node=c) for c in centres]
    whs += [Warehouse(code=f"WH-{o.code}", name=f"{o.name}备件库", kind=WarehouseKind.OUTLET, node=o) for o in outlets]
    whs = whs[: args.warehouses]
    for e in techs[: max(0, args.warehouses - len(whs))]:
        whs.append(Warehouse(code=f"VAN-{e.employee_no}", name=f"{e.name} 随车仓", kind=WarehouseKind.VAN,
                             node_id=e.node_id, holder=e))
    Warehouse.objects.bulk_create(whs)
    if len(whs) < args.warehouses:
        print(f"note: {len(whs)} warehouses (the demo organisation has {len(techs)} technicians for vans)")

    with connection.cursor() as cur:
        pg = cur.cursor
        parts = []
        for i in range(1, args.parts + 1):
            kname, ken, lo, hi = KINDS[i % len(KINDS)]
            parts.append((f"BP-{i:06d}", f"{kname} {i:06d}", f"{ken} {i:06d}", cats[i % len(cats)], "", "个", False,
                          True, Decimal(f"{rng.uniform(lo, hi):.2f}"), True))
        copy_rows(pg, Part, ["code", "name", "name_en", "category_id", "main_part_code", "uom", "serialised",
                             "returnable", "unit_cost", "active"], parts)
        part_ids = list(Part.objects.order_by("id").values_list("id", flat=True))
        cost = dict(Part.objects.values_list("id", "unit_cost"))

        # which parts each warehouse keeps
        share = {WarehouseKind.HQ: 1.0, WarehouseKind.CENTRE: 0.8, WarehouseKind.OUTLET: 0.3}
        van_parts = min(len(part_ids), 300)
        pairs: list[tuple[int, int, str]] = []
        for w in whs:
            if w.kind == WarehouseKind.VAN:
                chosen = sorted(rng.sample(part_ids, van_parts))
            else:
                chosen = [p for p in part_ids if rng.random() < share[w.kind]]
            pairs += [(w.pk, p, w.kind) for p in chosen]
        weight = {WarehouseKind.HQ: 8.0, WarehouseKind.CENTRE: 4.0, WarehouseKind.OUTLET: 1.5, WarehouseKind.VAN: 1.0}
        outlet_rows = [i for i, (_w, _p, k) in enumerate(pairs) if k == WarehouseKind.OUTLET]
        hot = set(rng.sample(outlet_rows, min(HOT_ROWS, len(outlet_rows))))
        # movements per row: one opening receipt each, the rest by the rows' weights
        if args.movements < len(pairs):
            raise SystemExit(f"--movements must be at least the {len(pairs)} stock rows (one opening receipt each)")
        count = [1] * len(pairs)
        rest = args.movements - len(pairs) - len(hot)  # (the hot rows end with an adjustment)
        cum, acc = [], 0.0
        for _w, _p, k in pairs:
            acc += weight[k]
            cum.append(acc)
        for _ in range(max(rest, 0)):
            count[bisect.bisect_right(cum, rng.random() * acc)] += 1

        print(f"loading {len(pairs):,} stock rows and {args.movements:,} movements with COPY…")
        stock_rows = []
        opening = {WarehouseKind.HQ: (200, 2000), WarehouseKind.CENTRE: (50, 500), WarehouseKind.OUTLET: (5, 60),
                   WarehouseKind.VAN: (1, 8)}

        def movements():
            for i, (w, p, k) in enumerate(pairs):
                out, (oh, rs, df) = row_ledger(rng, count[i], rng.randint(*opening[k]), start, now, i in hot)
                rp = None if k in (WarehouseKind.HQ, WarehouseKind.CENTRE) else rng.randint(1, 5)
                stock_rows.append((w, p, oh, rs, df, rp, None if rp is None else rp * 2, out[-1][7]))
                c = cost[p]
                for kind, a, b, d, o2, r2, d2, at in out:
                    yield (w, p, kind, a, b, d, o2, r2, d2, c, at, "", "")

        g = time.perf_counter()
        with Progress(args.movements, "COPY 库存流水", sys.stderr) as prog:
            n_mov = copy_rows(pg, Movement, ["warehouse_id", "part_id", "kind", "on_hand_delta", "reserved_delta",
                                             "defective_delta", "on_hand_after", "reserved_after", "defective_after",
                                             "unit_cost", "at", "serial", "reason"], movements(), progress=prog)
        mov_s = time.perf_counter() - g
        copy_rows(pg, Stock, ["warehouse_id", "part_id", "on_hand", "reserved", "defective", "reorder_point",
                              "reorder_qty", "updated_at"], stock_rows)
        for table in (Part._meta.db_table, Warehouse._meta.db_table, Stock._meta.db_table, Movement._meta.db_table):
            cur.execute(f"ANALYZE {table}")
    load_s = time.perf_counter() - load_started
    print(f"loaded {len(parts):,} parts, {len(whs)} warehouses, {len(stock_rows):,} stock rows, {n_mov:,} movements "
          f"in {load_s:.1f} s (movements: {n_mov / mov_s:,.0f} rows/s incl. generating them); ANALYZE done")
    full = len(parts) >= 10_000 and len(whs) >= 200 and n_mov >= 1_000_000
    figures.append(("data", f"{len(parts):,} parts, {len(whs)} warehouses, {n_mov:,} movements",
                    "10,000 / 200 / 1,000,000", "yes" if full else "(smaller run)"))
    connections.close_all()

    # ------------------------------------------------------------ availability look-ups
    from django.db.models import F

    stocked = list(Stock.objects.filter(on_hand__gt=F("reserved")).values_list("part_id", flat=True).distinct())
    outlet_ids = [o.pk for o in outlets]
    qrng = random.Random(f"bench-parts-lookups:{args.seed}")
    for _ in range(100):  # warm up: connection, caches
        selectors.availability(qrng.choice(stocked), near_node_id=qrng.choice(outlet_ids))
    times, found = [], 0
    for _ in range(args.lookups):
        p, n = qrng.choice(part_ids), qrng.choice(outlet_ids)
        t0 = time.perf_counter()
        rows = selectors.availability(p, near_node_id=n)
        times.append((time.perf_counter() - t0) * 1000)
        found += len(rows)
    times.sort()
    p50, p95, p99 = percentile(times, 0.5), percentile(times, 0.95), percentile(times, 0.99)
    print()
    print(f"availability(part, near_node_id=outlet), {args.lookups} random parts: p50 {p50:.2f} ms, p95 {p95:.2f} ms, "
          f"p99 {p99:.2f} ms, max {times[-1]:.2f} ms; {found / len(times):.1f} warehouses per answer")
    figures.append(("availability p50", f"{p50:.2f} ms", "", ""))
    figures.append(("availability p95", f"{p95:.2f} ms", f"< {TARGET_LOOKUP_P95_MS:.0f} ms",
                    "yes" if p95 < TARGET_LOOKUP_P95_MS else "NO"))
    figures.append(("availability p99", f"{p99:.2f} ms", "", ""))
    with CaptureQueriesContext(connection) as ctx:
        selectors.availability(stocked[0], near_node_id=outlet_ids[0])
    sql = ctx.captured_queries[-1]["sql"]
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        plan = "\n".join(r[0] for r in cur.fetchall())
    print("EXPLAIN ANALYZE of its query:")
    print("  " + plan.replace("\n", "\n  "))
    index_used = "stock_part_available_idx" in plan
    figures.append(("index used", "stock_part_available_idx" if index_used else "other (see the plan)",
                    "partial index", "yes" if index_used else "NO"))

    # ------------------------------------------------------------ concurrent reservations
    hot_rows = [(pairs[i][0], pairs[i][1]) for i in sorted(hot)]
    free_rows = list(Stock.objects.filter(on_hand__gt=F("reserved") + 5).values_list("warehouse_id", "part_id"))
    hot_before = {(w, p): (oh - rs, rs) for w, p, oh, rs in Stock.objects.filter(
        warehouse_id__in=[w for w, _p in hot_rows], part_id__in=[p for _w, p in hot_rows]).values_list(
        "warehouse_id", "part_id", "on_hand", "reserved") if (w, p) in set(hot_rows)}
    per = [args.reservations // args.workers + (1 if i < args.reservations % args.workers else 0)
           for i in range(args.workers)]
    connections.close_all()  # (each worker opens its own)
    results, granted, latencies, errors, elapsed = run_workers(args, per, hot_rows, free_rows)
    calls = results["ok"] + results["conflict"]
    latencies.sort()
    print()
    how = "threads" if args.threads else "processes"
    print(f"stock_reserve, {args.workers} {how} (each its own connection), {calls:,} calls in {elapsed:.1f} s: "
          f"{calls / elapsed:,.0f} calls/s, {results['ok'] / elapsed:,.0f} reservations/s; "
          f"{results['ok']:,} reserved, {results['conflict']:,} Conflicts (hot rows run out); "
          f"p50 {percentile(latencies, 0.5):.1f} ms, p95 {percentile(latencies, 0.95):.1f} ms per call")
    for e in errors[:5]:
        print("  error:", e)
    after = {(w, p): (oh - rs, rs) for w, p, oh, rs in Stock.objects.filter(
        warehouse_id__in=[w for w, _p in hot_rows], part_id__in=[p for _w, p in hot_rows]).values_list(
        "warehouse_id", "part_id", "on_hand", "reserved") if (w, p) in set(hot_rows)}
    hot_ok = all(granted[k] == hot_before[k][0] and after[k] == (0, hot_before[k][1] + hot_before[k][0])
                 for k in hot_rows)
    print(f"hot rows: each had {HOT_AVAILABLE} available; granted {[granted[k] for k in hot_rows]}; "
          f"{'exactly what each had, none left' if hot_ok else 'MISMATCH'}")
    figures.append((f"reservations/s ({args.workers} {how})", f"{results['ok'] / elapsed:,.0f}", "", ""))
    figures.append(("calls/s incl. Conflicts", f"{calls / elapsed:,.0f}", "", ""))
    figures.append(("reserved / Conflicts", f"{results['ok']:,} / {results['conflict']:,}", "", ""))
    figures.append(("hot rows: granted = available", "yes" if hot_ok else "no", "exactly", "yes" if hot_ok else "NO"))
    figures.append(("errors", str(len(errors)), "0", "yes" if not errors else "NO"))

    # ------------------------------------------------------------ the ledger afterwards
    t0 = time.perf_counter()
    problems = selectors.ledger_problems()
    ledger_s = time.perf_counter() - t0
    with connection.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {Stock._meta.db_table} WHERE on_hand < 0 OR reserved < 0 OR defective < 0 "
                    f"OR reserved > on_hand")
        bad_stock = cur.fetchone()[0]
        cur.execute(f"SELECT COUNT(*) FROM {Movement._meta.db_table} WHERE on_hand_after < 0 OR reserved_after < 0 "
                    f"OR defective_after < 0 OR reserved_after > on_hand_after")
        bad_mov = cur.fetchone()[0]
        cur.execute(f"SELECT COUNT(*) FROM {Movement._meta.db_table}")
        total_mov = cur.fetchone()[0]
    print()
    print(f"ledger_problems() over {total_mov:,} movements: {len(problems)} problem(s) in {ledger_s:.1f} s; "
          f"negative stock rows: {bad_stock}, negative movements: {bad_mov}")
    for p in problems[:10]:
        print("   ", p)
    figures.append(("ledger_problems()", str(len(problems)), "0", "yes" if not problems else "NO"))
    figures.append(("negative stock (SQL)", str(bad_stock + bad_mov), "0", "yes" if not bad_stock + bad_mov else "NO"))

    # ------------------------------------------------------------ summary
    print()
    w0 = max(len(f[0]) for f in figures)
    w1 = max(len(f[1]) for f in figures)
    w2 = max(len(f[2]) for f in figures)
    print(f"{'figure':<{w0}}  {'value':>{w1}}  {'target':<{w2}}  ok")
    print("-" * (w0 + w1 + w2 + 8))
    for f, v, tgt, ok in figures:
        print(f"{f:<{w0}}  {v:>{w1}}  {tgt:<{w2}}  {ok}")
    failed = [f for f in figures if f[3] == "NO"]
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
