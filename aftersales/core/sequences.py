"""Numbers given out one day at a time (work orders, transfers, receipts): a table of
``(day primary key, last)`` and one upsert that increments and returns the day's counter. The
database locks the day's row only for the statement's own transaction, so concurrent writers get
consecutive numbers without queueing behind each other's work."""

from __future__ import annotations

import datetime as dt

from django.db import connection


def next_in_day(model, day: dt.date) -> int:
    """The next number of ``day`` in ``model``'s table (1 for the day's first)."""
    table = model._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} (day, last) VALUES (%s, 1) "
            f"ON CONFLICT (day) DO UPDATE SET last = {table}.last + 1 RETURNING last",
            [day],
        )
        return cur.fetchone()[0]
