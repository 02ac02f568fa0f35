"""Reads of the improvement loop, scoped once: improvement actions (R-Q-2) with their effect on
the indicator they target, the survey analysis (R-FB-2), targets as they apply to a node, sales
grids and the service-norm checklist.

- An action is seen by whoever holds ``quality.view`` over its node, and by its owner.
- Indicator values come from ``selectors.cells`` (the pre-aggregates), never from Python loops
  over orders; survey figures are one ``GROUP BY`` query each.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Avg, Case, Count, IntegerField, Max, Min, Q, QuerySet, Value, When
from django.utils import timezone

from aftersales.core.errors import NotFound
from aftersales.feedback.models import Survey
from aftersales.org.models import Node, NodeKind, RoleAssignment
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import scope_filter

from . import indicators
from .models import Action, ActionStatus, ModelSales, NodeSales, NormCheck, NormItem, Target

MAX_ID = 2**63 - 1
ACTION_ORDERING = ["due_on", "id"]
COMMENT_ORDERING = ["-low_first", "-answered_at", "-id"]
OPEN_STATUSES = (ActionStatus.OPEN, ActionStatus.IN_PROGRESS)
BASELINE_MONTHS = 3
LOW_SCORE = 3          # a comment whose overall score is at most this is "low"
RANK_MIN_ANSWERS = 5   # outlets and technicians are ranked with at least this many answers
RANK_SIZE = 10


def _id_ok(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_ID


# ================================================================ months

def month_start(d: dt.date) -> dt.date:
    return d.replace(day=1)


def add_months(d: dt.date, n: int) -> dt.date:
    """The first of the month ``n`` months after (before, when negative) ``d``'s month."""
    i = d.year * 12 + d.month - 1 + n
    return dt.date(i // 12, i % 12 + 1, 1)


def month_end(d: dt.date) -> dt.date:
    return add_months(d, 1) - dt.timedelta(days=1)


def day_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start 00:00, the day after end 00:00) in local time."""
    tz = timezone.get_current_timezone()
    return (dt.datetime.combine(start, dt.time(0), tz),
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tz))


# ================================================================ indicator values

def indicator_value(code: str, node: Node, *, start: dt.date, end: dt.date, dim: str = "", key: str = ""):
    """The indicator over [start, end] (whole months) at ``node`` (its subtree), for one
    breakdown key when ``dim`` is given; None where it is undefined."""
    from . import selectors

    if end < start:
        return None
    cells = selectors.cells(nodes=[node], grain="month", start=start, end=end, dim=dim,
                            keys=[key] if dim else None, by_period=False)
    m = cells.get((node.pk, None, key if dim else ""))
    if m is None:
        return None
    return selectors.values(m, [code]).get(code)


def baseline_window(on: dt.date) -> tuple[dt.date, dt.date]:
    """The three whole months before the month of ``on``."""
    first = month_start(on)
    return add_months(first, -BASELINE_MONTHS), first - dt.timedelta(days=1)


def action_effect(action: Action, *, today: dt.date | None = None) -> dict:
    """The targeted indicator per month from three months before the action was raised to now;
    the baseline (stored when raised) against the indicator over the whole months after the
    month it was done (the measures of those months summed, then the formula: never a mean of
    monthly rates). ``after`` is None until a month after the done month has begun."""
    from . import selectors

    today = today or timezone.localdate()
    raised = timezone.localdate(action.created_at)
    done = timezone.localdate(action.done_at) if action.done_at else None
    out = {"code": action.indicator, "months": [], "baseline": _float(action.baseline), "after": None,
           "change": None, "improved": None, "raised_month": month_start(raised),
           "done_month": month_start(done) if done else None}
    ind = indicators.INDICATORS.get(action.indicator)
    if ind is None:
        return out
    out.update(label=str(ind.label), unit=ind.unit, better=ind.better)
    start = add_months(raised, -BASELINE_MONTHS)
    end = max(month_end(today), month_end(raised))
    key = action.key if action.dim else ""
    cells = selectors.cells(nodes=[action.node], grain="month", start=start, end=end, dim=action.dim,
                            keys=[key] if action.dim else None, by_period=True)
    m = start
    while m <= end:
        cell = cells.get((action.node_id, m, key))
        value = selectors.values(cell, [ind.code]).get(ind.code) if cell is not None else None
        out["months"].append({"month": m, "value": value})
        m = add_months(m, 1)
    if done is not None:
        after_start = add_months(done, 1)
        if after_start <= today:
            out["after"] = indicator_value(ind.code, action.node, start=after_start, end=month_end(today),
                                           dim=action.dim, key=key)
    if out["after"] is not None and out["baseline"] is not None:
        out["change"] = round(out["after"] - out["baseline"], ind.decimals)
        if ind.better is not None and out["change"] != 0:
            out["improved"] = (out["change"] > 0) == (ind.better == indicators.HIGHER)
    return out


def _float(v):
    return None if v is None else float(v)


# ================================================================ actions

def action_queryset(user) -> QuerySet[Action]:
    """The actions ``user`` may see: ``quality.view`` over the node, or their own."""
    if user is None or not user.is_authenticated:
        return Action.objects.none()
    f = scope_filter(user, Perm.QUALITY_VIEW)
    qs = Action.objects.all()
    return qs if f is None else qs.filter(f | Q(owner_id=user.pk))


def action_list(user, *, status: str = "", overdue: bool = False, mine: bool = False, node: Node | None = None,
                today: dt.date | None = None) -> QuerySet[Action]:
    qs = action_queryset(user).select_related("node", "owner__employee", "created_by")
    if status:
        qs = qs.filter(status=status)
    if overdue:
        qs = qs.filter(overdue_q(today))
    if mine:
        qs = qs.filter(owner_id=user.pk)
    if node is not None:
        qs = qs.filter(node__path__startswith=node.path)
    return qs


def overdue_q(today: dt.date | None = None) -> Q:
    return Q(status__in=OPEN_STATUSES, due_on__lt=today or timezone.localdate())


def action_get(user, action_id) -> Action:
    a = None
    if _id_ok(action_id):
        a = (action_queryset(user).select_related("node", "owner__employee", "created_by", "complaint")
             .filter(pk=action_id).first())
    if a is None:
        raise NotFound()
    return a


def is_overdue(action: Action, today: dt.date | None = None) -> bool:
    return action.status in OPEN_STATUSES and action.due_on < (today or timezone.localdate())


def person_label(user) -> str:
    """An employee's name (their user name when they are not an employee)."""
    if user is None:
        return ""
    emp = getattr(user, "employee", None)  # a reverse one-to-one: AttributeError when absent
    return emp.name if emp is not None else user.get_username()


def owner_candidates(node: Node) -> list[dict]:
    """The people who may own an action at ``node``: active users holding a (staff) role at a
    node of its subtree or above it. One query."""
    ancestors = [int(x) for x in node.path.strip("/").split("/") if x]
    rows = (RoleAssignment.objects.filter(Q(node_id__in=ancestors) | Q(node__path__startswith=node.path))
            .exclude(role=Role.CUSTOMER).filter(user__is_active=True)
            .values_list("user_id", "user__username", "user__employee__name", "role", "node__name")
            .order_by("node__path", "user__username"))
    out: dict[int, dict] = {}
    for uid, username, name, role, node_name in rows:
        if uid not in out:
            label = f"{name or username}（{Role(role).label if role in Role.values else role}·{node_name}）"
            out[uid] = {"id": uid, "username": username, "label": label}
    return list(out.values())


def notes_of(action: Action) -> list:
    return list(action.notes.select_related("author__employee").order_by("at", "id"))


# ================================================================ survey analysis

@dataclass
class SurveyAnalysis:
    node: Node
    start: dt.date
    end: dt.date
    n: int
    dims: list[dict]        # per dimension: code, label, mean, max, min, dist [n1..n5], share_ge4
    outlets: list[dict]     # the lowest by mean overall (≥ RANK_MIN_ANSWERS answers)
    technicians: list[dict]


DIM_LABELS = {
    "timeliness": Survey._meta.get_field("timeliness").verbose_name,
    "attitude": Survey._meta.get_field("attitude").verbose_name,
    "professionalism": Survey._meta.get_field("professionalism").verbose_name,
    "result": Survey._meta.get_field("result").verbose_name,
    "overall": Survey._meta.get_field("overall").verbose_name,
}


def surveys_answered(node: Node, start: dt.date, end: dt.date) -> QuerySet[Survey]:
    """The surveys answered on the local days [start, end] at ``node``'s subtree."""
    lo, hi = day_bounds(start, end)
    qs = Survey.objects.filter(answered_at__isnull=False, answered_at__gte=lo, answered_at__lt=hi)
    if node.parent_id is not None:
        qs = qs.filter(node_id__in=Node.objects.filter(path__startswith=node.path).values("pk"))
    return qs


def _mean(v):
    return None if v is None else round(float(v), 2)


def survey_analysis(node: Node, start: dt.date, end: dt.date) -> SurveyAnalysis:
    """Per dimension the mean, maximum, minimum, distribution of the scores 1–5 and the share
    of 4 and 5; the outlets and technicians with the lowest mean overall score. Three queries."""
    qs = surveys_answered(node, start, end)
    aggs = {"n": Count("id")}
    for d in indicators.SAT_DIMS:
        aggs[f"{d}_mean"] = Avg(d)
        aggs[f"{d}_max"] = Max(d)
        aggs[f"{d}_min"] = Min(d)
        for s in range(1, 6):
            aggs[f"{d}_{s}"] = Count("id", filter=Q(**{d: s}))
    row = qs.aggregate(**aggs)
    n = row["n"] or 0
    dims = []
    for d in indicators.SAT_DIMS:
        dist = [row[f"{d}_{s}"] or 0 for s in range(1, 6)]
        dims.append({"code": d, "indicator": f"sat_{d}", "label": DIM_LABELS[d], "mean": _mean(row[f"{d}_mean"]),
                     "max": row[f"{d}_max"], "min": row[f"{d}_min"], "dist": dist,
                     "share_ge4": round(100 * (dist[3] + dist[4]) / n, 1) if n else None})
    means = {f"{d}_mean": Avg(d) for d in indicators.SAT_DIMS}
    outlets = [
        {"id": r["node_id"], "code": r["node__code"], "name": r["node__name"], "n": r["n"],
         **{k: _mean(r[k]) for k in means}}
        for r in qs.values("node_id", "node__code", "node__name").annotate(n=Count("id"), **means)
        .filter(n__gte=RANK_MIN_ANSWERS).order_by("overall_mean", "node_id")[:RANK_SIZE]
    ]
    technicians = [
        {"id": r["order__assignee_id"], "employee_no": r["order__assignee__employee_no"],
         "name": r["order__assignee__name"], "node_id": r["order__assignee__node_id"], "n": r["n"],
         **{k: _mean(r[k]) for k in means}}
        for r in qs.filter(order__assignee__isnull=False)
        .values("order__assignee_id", "order__assignee__employee_no", "order__assignee__name",
                "order__assignee__node_id")
        .annotate(n=Count("id"), **means).filter(n__gte=RANK_MIN_ANSWERS)
        .order_by("overall_mean", "order__assignee_id")[:RANK_SIZE]
    ]
    return SurveyAnalysis(node=node, start=start, end=end, n=n, dims=dims, outlets=outlets, technicians=technicians)


def survey_comments(node: Node, start: dt.date, end: dt.date, *, low_only: bool = False) -> QuerySet[Survey]:
    """The answered surveys with a comment, low overall scores (≤ 3) first, then the latest;
    ordered by ``COMMENT_ORDERING`` (keyset-paginable). Customers are not shown."""
    qs = (surveys_answered(node, start, end).exclude(comment="")
          .annotate(low_first=Case(When(overall__lte=LOW_SCORE, then=Value(1)), default=Value(0),
                             output_field=IntegerField()))
          .select_related("order", "node", "order__assignee")
          .only("id", "answered_at", "comment", "channel", "overall", "timeliness", "attitude", "professionalism",
                "result", "resolved", "order__id", "order__number", "order__node_id", "order__assignee__id",
                "order__assignee__name", "node__id", "node__name"))
    if low_only:
        qs = qs.filter(overall__lte=LOW_SCORE)
    return qs


# ================================================================ targets

def target_rows(node: Node) -> list[dict]:
    """Every indicator with the target that applies at ``node``: its own row, the nearest
    ancestor's (inherited, with the node it comes from) or the registry default. Two queries."""
    ancestors = [int(x) for x in node.path.strip("/").split("/") if x]
    depth = {nid: i for i, nid in enumerate(ancestors)}
    names = dict(Node.objects.filter(pk__in=ancestors).values_list("pk", "name"))
    best: dict[str, Target] = {}
    for t in Target.objects.filter(node_id__in=ancestors).select_related("updated_by"):
        cur = best.get(t.indicator)
        if cur is None or depth[t.node_id] > depth[cur.node_id]:
            best[t.indicator] = t
    rows = []
    for code, ind in indicators.INDICATORS.items():
        t = best.get(code)
        if t is not None:
            source = "own" if t.node_id == node.pk else "inherited"
            target, amber = float(t.target), float(t.amber)
        else:
            source = "default" if ind.target is not None else "none"
            target, amber = ind.target, ind.amber
        rows.append({"code": code, "indicator": ind, "label": ind.label, "unit": ind.unit, "better": ind.better,
                     "group": indicators.GROUPS.get(ind.group, ind.group), "target": target, "amber": amber,
                     "source": source, "from_node": names.get(t.node_id) if t is not None else None,
                     "own": t if source == "own" else None, "settable": ind.better is not None})
    return rows


# ================================================================ sales

def outlets_under(node: Node) -> list[Node]:
    """The outlets of ``node``'s subtree (``node`` itself when it is one)."""
    return list(Node.objects.filter(path__startswith=node.path, kind=NodeKind.OUTLET).order_by("path"))


def sales_grid(node: Node, year: int) -> dict:
    """Sales of the outlets under ``node`` × the twelve months of ``year``: {"months": [...],
    "rows": [{"node", "cells": [amount or None] * 12, "total"}], "totals": [...]}. Two queries."""
    outlets = outlets_under(node)
    months = [dt.date(year, m, 1) for m in range(1, 13)]
    got = {(r.node_id, r.month): r.amount for r in NodeSales.objects.filter(
        node_id__in=[o.pk for o in outlets], month__gte=months[0], month__lte=months[-1])}
    rows, totals = [], [None] * 12
    for o in outlets:
        cells = [got.get((o.pk, m)) for m in months]
        for i, v in enumerate(cells):
            if v is not None:
                totals[i] = (totals[i] or 0) + v
        rows.append({"node": o, "cells": cells, "total": sum((v for v in cells if v is not None), start=0)})
    return {"months": months, "rows": rows, "totals": totals}


def model_sales_grid(year: int, *, category_id: int | None = None) -> dict:
    """Units sold per product model × the twelve months of ``year``. Two queries."""
    from aftersales.catalog.models import ProductModel

    models = ProductModel.objects.select_related("category").order_by("category__code", "code")
    if category_id:
        models = models.filter(category_id=category_id)
    models = list(models)
    months = [dt.date(year, m, 1) for m in range(1, 13)]
    got = {(r.model_id, r.month): r.units for r in ModelSales.objects.filter(
        model_id__in=[m.pk for m in models], month__gte=months[0], month__lte=months[-1])}
    rows = []
    for m in models:
        cells = [got.get((m.pk, mo)) for mo in months]
        rows.append({"model": m, "cells": cells, "total": sum(v for v in cells if v is not None)})
    return {"months": months, "rows": rows}


# ================================================================ the service-norm checklist

def norm_items(*, active_only: bool = True) -> list[NormItem]:
    qs = NormItem.objects.all()
    if active_only:
        qs = qs.filter(active=True)
    return list(qs.order_by("position", "id"))


def norm_check_of(order_id: int) -> NormCheck | None:
    return NormCheck.objects.filter(order_id=order_id).select_related("answered_by").first()


def users_by_id(ids) -> dict:
    return {u.pk: u for u in get_user_model().objects.filter(pk__in=list(ids)).select_related("employee")}
