"""Keyset (cursor) pagination: constant cost at any depth, a fixed number of queries.

A page is fetched with ``WHERE (k1, k2, …) > (v1, v2, …) ORDER BY k1, k2, … LIMIT n+1``;
the cursor is the opaque encoding of the last row's key. The ordering must end in a unique
field (``id``) so that keys are total.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from .errors import ValidationFailed

MAX_LIMIT = 200


@dataclass
class Page:
    items: list
    next_cursor: str | None


def _encode(values: list[Any]) -> str:
    def conv(v):
        if isinstance(v, dt.datetime | dt.date):
            return {"__dt": v.isoformat()}
        return v

    raw = json.dumps([conv(v) for v in values], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, n: int) -> list[Any]:
    try:
        pad = "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(cursor + pad).decode())
        if not isinstance(values, list) or len(values) != n:
            raise ValueError
        out = []
        for v in values:
            if isinstance(v, str) and "\x00" in v:
                raise ValueError
            if isinstance(v, dict) and "__dt" in v:
                s = v["__dt"]
                out.append(dt.datetime.fromisoformat(s) if "T" in s else dt.date.fromisoformat(s))
            else:
                out.append(v)
        return out
    except (ValueError, TypeError, UnicodeDecodeError):
        raise ValidationFailed({"cursor": [_("分页游标无效，请从第一页重新开始。")]}) from None


def keyset_page(qs: QuerySet, *, ordering: list[str], cursor: str | None, limit: int) -> Page:
    """``ordering`` like ``["name", "id"]`` or ``["-created_at", "-id"]`` (same direction for all)."""
    if limit < 1 or limit > MAX_LIMIT:
        raise ValidationFailed({"limit": [_("每页条数须在 1 到 %(max)s 之间。") % {"max": MAX_LIMIT}]})
    desc = ordering[0].startswith("-")
    fields = [f.lstrip("-") for f in ordering]
    qs = qs.order_by(*ordering)
    if cursor:
        values = _decode(cursor, len(fields))
        op = "lt" if desc else "gt"
        # (a, b, c) > (x, y, z)  ==  a > x OR (a = x AND b > y) OR (a = x AND b = y AND c > z)
        cond = Q()
        for i, f in enumerate(fields):
            term = Q(**{f"{f}__{op}": values[i]})
            for j in range(i):
                term &= Q(**{fields[j]: values[j]})
            cond |= term
        try:  # a forged cursor with values of the wrong type is bad input, not a server error
            qs = qs.filter(cond)
        except (ValueError, TypeError, DjangoValidationError):
            raise ValidationFailed({"cursor": [_("分页游标无效，请从第一页重新开始。")]}) from None
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = _encode([_attr(last, f) for f in fields])
    return Page(items=rows, next_cursor=next_cursor)


def _attr(obj, path: str):
    for part in path.split("__"):
        obj = getattr(obj, part)
    return obj
