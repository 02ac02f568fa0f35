"""What the bench scripts share: the PostgreSQL database they run on, Django set-up, percentiles."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/aftersales_bench"


def ensure_database(url: str, fresh: bool) -> None:
    """Create the database of ``url`` if missing (dropping it first when ``fresh``)."""
    import psycopg

    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit(f"DATABASE_URL must point to PostgreSQL, not {parts.scheme!r}")
    dbname = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
            exists = None
            print(f"dropped database {dbname}")
        if not exists:
            conn.execute(f'CREATE DATABASE "{dbname}"')
            print(f"created database {dbname}")


def with_database_name(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def setup_django(url: str, *, fresh: bool) -> None:
    """Point Django at ``url`` (PostgreSQL, created if missing), without the query log, and migrate."""
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aftersales.settings")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("AFTERSALES_INSECURE_DEV_KEY", "1")
    ensure_database(url, fresh)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("this bench needs PostgreSQL (DATABASE_URL=postgres://…)")
    print(f"database: {connection.settings_dict['NAME']} on {connection.settings_dict['HOST']}")
    call_command("migrate", verbosity=0)


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_ms:
        return float("nan")
    k = min(len(sorted_ms) - 1, max(0, round(q * len(sorted_ms) + 0.5) - 1))
    return sorted_ms[k]


def copy_rows(cur, model, names: list[str], rows, *, progress=None) -> int:
    """COPY ``rows`` (tuples in ``names``' order) into ``model``'s table; every other column but
    the id gets its field's default ("" for text, NULL where allowed). ``progress``: a bar
    advanced as the rows go."""
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and f.attname not in names)]
    extra = [f for f in fields if f.attname not in names]
    for f in extra:
        if f.get_default() is None and not f.null:
            raise SystemExit(f"{model._meta.label}.{f.attname} needs a value")
    tail = "".join("\t" + copy_text(f.get_default()) for f in extra)
    by_att = {f.attname: f for f in model._meta.concrete_fields}
    columns = ", ".join([by_att[n].column for n in names] + [f.column for f in extra])
    n, buf = 0, []
    with cur.copy(f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as copy:
        for r in rows:
            buf.append("\t".join(map(copy_text, r)) + tail + "\n")
            n += 1
            if len(buf) >= 20_000:
                copy.write("".join(buf))
                if progress:
                    progress.advance(len(buf))
                buf.clear()
        if buf:
            copy.write("".join(buf))
            if progress:
                progress.advance(len(buf))
    return n


def copy_text(v) -> str:
    """One value in COPY's text format."""
    if v is None:
        return "\\N"
    if v is True:
        return "t"
    if v is False:
        return "f"
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, dict):
        return json.dumps(v)
    return str(v).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")
