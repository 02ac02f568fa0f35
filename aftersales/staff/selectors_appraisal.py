"""Reads of the performance appraisal, scoped once.

- A cycle is seen by whoever holds ``appraisal.review`` / ``appraisal.manage`` over part of its
  subtree (or above it), and by the people who have a sheet in it.
- A sheet is seen by its person and by ``appraisal.review`` over its node.
- The board of a cycle: the sheets in the user's review scope; a person without review rights
  sees, once the cycle is published, the sheets of their own node (the team), else their own.
Out of sight = 404 (``NotFound``).
"""

from __future__ import annotations

from django.db.models import F, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import NotFound
from aftersales.org.models import Node, NodeKind
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import principal, scope_filter

from .models import Cycle, CycleStatus, Review, Sheet, SheetScore, Step
from .services_appraisal import LIVE, cycle_visible, sheet_visible

CHART_MAX = 100  # people on the ranking chart (the best first)
RESULTS = (CycleStatus.PUBLISHED,)


def _paths(user) -> list[str]:
    p = principal(user)
    return p.paths_for(Perm.APPRAISAL_REVIEW) + p.paths_for(Perm.APPRAISAL_MANAGE)


def _ancestor_paths(path: str) -> list[str]:
    ids = [x for x in path.strip("/").split("/") if x]
    return ["/" + "/".join(ids[:i]) + "/" for i in range(1, len(ids) + 1)]


def cycles_visible(user) -> QuerySet[Cycle]:
    """The cycles the user sees, newest period first."""
    if user is None or not user.is_authenticated:
        return Cycle.objects.none()
    q = Q(pk__in=Sheet.objects.filter(employee__user=user).values("cycle_id"))
    for p in _paths(user):
        q |= Q(node__path__startswith=p) | Q(node__path__in=_ancestor_paths(p))
    return Cycle.objects.filter(q).select_related("node").order_by("-period_start", "-id")


def cycle_get(user, cycle_id) -> Cycle:
    cycle = Cycle.objects.select_related("node").filter(pk=cycle_id).first() \
        if isinstance(cycle_id, int) or str(cycle_id).isdigit() else None
    if cycle is None or not cycle_visible(user, cycle):
        raise NotFound(_("未找到该考核周期，或您无权查看。"))
    return cycle


def _sheets() -> QuerySet[Sheet]:
    return Sheet.objects.select_related("cycle", "employee", "node", "version__scheme")


def sheet_get(user, sheet_id) -> Sheet:
    sheet = _sheets().filter(pk=sheet_id).first() if isinstance(sheet_id, int) or str(sheet_id).isdigit() else None
    if sheet is None or not sheet_visible(user, sheet):
        raise NotFound(_("未找到该考核表，或您无权查看。"))
    return sheet


def results_visible(user, sheet: Sheet) -> bool:
    """Total, grade, rank and bonus: to the reviewers as soon as there are any, to the person
    once the cycle is published."""
    if sheet.cycle.status in RESULTS:
        return True
    return sheet.employee.user_id != getattr(user, "pk", None)


def sheet_scores(sheet: Sheet) -> list[SheetScore]:
    """The items of a sheet in the scheme's order, with their values and scores."""
    return list(SheetScore.objects.filter(sheet=sheet).select_related("item")
                .order_by("item__position", "item_id"))


def sheet_reviews(sheet: Sheet) -> list[Review]:
    order = {s: i for i, s in enumerate(Step.values)}
    return sorted(Review.objects.filter(sheet=sheet).select_related("reviewer"), key=lambda r: order[r.step])


def my_sheets(user) -> QuerySet[Sheet]:
    if user is None or not user.is_authenticated:
        return Sheet.objects.none()
    return _sheets().filter(employee__user=user).order_by("-cycle__period_start", "-id")


def sheets_for_board(user, cycle: Cycle, node: Node | None = None) -> QuerySet[Sheet]:
    """The sheets of a cycle the user may see on its board (of ``node``'s subtree), by node,
    role and rank."""
    if not cycle_visible(user, cycle):
        raise NotFound(_("未找到该考核周期，或您无权查看。"))
    qs = _sheets().filter(cycle=cycle)
    if principal(user).can(Perm.APPRAISAL_REVIEW):
        f = scope_filter(user, Perm.APPRAISAL_REVIEW)
        qs = qs if f is None else qs.filter(f)
    elif cycle.status in RESULTS:
        qs = qs.filter(node_id__in=Sheet.objects.filter(cycle=cycle, employee__user=user).values("node_id"))
    else:
        qs = qs.filter(employee__user=user)
    if node is not None:
        qs = qs.filter(node__path__startswith=node.path)
    return qs.order_by("node__path", "role", F("rank").asc(nulls_last=True), "employee__employee_no")


def sheets_to_review(user) -> QuerySet[Sheet]:
    """The sheets of cycles under review waiting for a step the user does."""
    if user is None or not user.is_authenticated:
        return Sheet.objects.none()
    p = principal(user)
    others = Q()
    for role, _n, path in p.roles:
        under = Q(node__path__startswith=path)
        if role == Role.OUTLET_MANAGER:
            others |= under & Q(step=Step.SUPERVISOR)
        elif role == Role.CENTRE_MANAGER:
            others |= under & (Q(step=Step.DEPARTMENT) | Q(step=Step.SUPERVISOR, node__kind=NodeKind.CENTRE))
        elif role == Role.HQ_MANAGER:
            others |= under & (Q(step=Step.COMPANY)
                               | Q(step__in=(Step.SUPERVISOR, Step.DEPARTMENT), node__kind=NodeKind.HQ))
    for path in p.paths_for(Perm.APPRAISAL_MANAGE):
        others |= Q(node__path__startswith=path, step=Step.CALIBRATION)
    q = Q(employee__user=user, step=Step.SELF)
    if others:
        q |= others & ~Q(employee__user=user)
    return _sheets().filter(q, cycle__status__in=LIVE).order_by("cycle__period_start", "node__path", "id")


def ranking_chart(user, cycle: Cycle, node: Node) -> dict:
    """The ranking of ``node``'s people in the cycle (the best ``CHART_MAX``) for ECharts:
    ``{"categories": [names], "series": [{name, type, data}]}`` — total and automatic score."""
    if principal(user).can(Perm.APPRAISAL_REVIEW) and not any(
            node.path.startswith(p) or p.startswith(node.path) for p in _paths(user)):
        raise NotFound(_("未找到该节点，或您无权查看。"))
    sheets = list(sheets_for_board(user, cycle, node).filter(total__isnull=False)
                  .order_by("-total", "employee__employee_no")[:CHART_MAX])
    return {
        "categories": [s.employee.name for s in sheets],
        "series": [
            {"name": str(_("总分")), "type": "bar", "data": [float(s.total) for s in sheets]},
            {"name": str(_("自动指标得分")), "type": "bar",
             "data": [None if s.auto_total is None else float(s.auto_total) for s in sheets]},
        ],
    }
