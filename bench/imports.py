#!/usr/bin/env python
"""Import speed on PostgreSQL: customers and units from a CSV file through ``import_run``.

    .venv/bin/python bench/imports.py [--rows 10000] [--bad 0.04] [--seed 1]

Runs in its own database (``<DATABASE_URL's name>_imports``, recreated each run) with the demo
organisation and catalogue (``manage.py demo`` with 200 customers). Generates a deterministic
CSV — plausible rows, some phones repeated (a second unit for the same customer), some rows of
existing customers, and ``--bad`` of rows with one error each (bad phone, unknown model, future
date, duplicate serial, uncovered district) — imports it as the admin, and prints rows/s, the
counts and the statements per row, then checks the counts against what was generated and
that the audit trail verifies.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import os
import random
import sys
import time
from urllib.parse import urlsplit

from _common import DEFAULT_URL, setup_django, with_database_name

HEADER = ["姓名", "手机号", "省", "市", "区县", "详细地址", "序列号", "型号", "购买日期", "销售渠道", "发票号"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--bad", type=float, default=0.04, help="share of rows with an error (default 0.04)")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


def make_csv(rng: random.Random, n: int, bad_share: float, *, coverage, models, existing_phones):
    """The file and the number of rows that must be refused."""
    from aftersales.web.management.commands.demo import MobileNumbers, person_name

    phones = MobileNumbers(rng, taken=existing_phones)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(HEADER)
    seen_phones: list[str] = []
    bad = 0
    today = dt.date.today()
    for i in range(n):
        province, city, district = rng.choice(coverage)
        r = rng.random()
        new_customer = False
        if seen_phones and r < 0.05:
            phone = rng.choice(seen_phones)  # a second unit of a customer made earlier in the file
        elif existing_phones and r < 0.07:
            phone = rng.choice(existing_phones)  # a customer already on file
        else:
            phone, new_customer = phones.next(), True
        row = [person_name(rng), phone, province, city, district, f"建设路{rng.randint(1, 999)}号",
               f"BI{i:09d}", rng.choice(models), (today - dt.timedelta(days=rng.randint(0, 2000))).isoformat(),
               rng.choice(["门店", "电商", "经销商"]), f"FP{i:08d}"]
        if rng.random() < bad_share:
            bad += 1
            # an uncovered district only matters to a new customer (a unit of a known one is added to it)
            kind = rng.randrange(5 if new_customer else 4)
            if kind == 0:
                row[1] = "1234"
            elif kind == 1:
                row[7] = "NO-SUCH-MODEL"
            elif kind == 2:
                row[8] = (today + dt.timedelta(days=3)).isoformat()
            elif kind == 3:
                row[6] = f"BI{max(i - 1, 0):09d}" if i else "??"
            else:
                row[2:5] = ["西藏自治区", "那曲市", "双湖县"]
        elif new_customer:
            seen_phones.append(phone)  # repeated later only when its first row was imported
        w.writerow(row)
    return out.getvalue().encode("utf-8-sig"), bad


def main() -> None:
    args = parse_args()
    base = os.environ.get("DATABASE_URL") or DEFAULT_URL
    url = with_database_name(base, urlsplit(base).path.lstrip("/") + "_imports")
    setup_django(url, fresh=True)

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from aftersales.catalog.models import ProductModel
    from aftersales.customers.models import Customer
    from aftersales.imports.services import import_run
    from aftersales.org.models import Coverage
    from aftersales.records.audit import audit_verify

    call_command("demo", seed=args.seed, customers=200, units=200, orders=0, verbosity=0)
    coverage = list(Coverage.objects.values_list("province", "city", "district"))
    models = list(ProductModel.objects.values_list("code", flat=True))
    existing = list(Customer.objects.values_list("phone", flat=True))
    content, bad = make_csv(random.Random(f"imports:{args.seed}"), args.rows, args.bad, coverage=coverage,
                            models=models, existing_phones=existing)
    admin = get_user_model().objects.get(username="admin")
    before = Customer.objects.count()

    with CaptureQueriesContext(connection) as queries:
        t = time.perf_counter()
        job = import_run(user=admin, filename="bench.csv", content=content)
        elapsed = time.perf_counter() - t

    print(f"\nimport_run of {args.rows:,} rows ({len(content) / 1e6:.1f} MB CSV) on PostgreSQL")
    print(f"  time            {elapsed:8.2f} s")
    print(f"  rows/s          {args.rows / elapsed:8.0f}")
    print(f"  statements/row  {len(queries) / args.rows:8.2f}  ({len(queries):,} in all)")
    print(f"  imported        {job.ok_rows:8,}  (customers created {job.customers_created:,}, units {job.units_created:,})")
    print(f"  refused         {job.error_rows:8,}  (generated with an error: {bad:,})")
    ok = (job.error_rows == bad and job.ok_rows == args.rows - bad
          and Customer.objects.count() - before == job.customers_created)
    report = audit_verify()
    print(f"  counts consistent: {'yes' if ok else 'NO'}; audit trail: {'intact' if report.ok else 'NOT intact'}")
    if not (ok and report.ok):
        sys.exit(1)


if __name__ == "__main__":
    main()
