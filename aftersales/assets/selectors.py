"""Reads of loaners and tools, scoped once (``asset.view`` unless said otherwise).

Loaners and loans are scoped by their outlet (``node``), tools by their owning node. Lists are
querysets for keyset pagination (``LOANER_ORDERING`` …) with what a row shows joined in, so a
page costs a fixed number of queries whatever its size.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Length
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import NotFound, ValidationFailed
from aftersales.org.models import Node
from aftersales.org.roles import Perm
from aftersales.org.scope import holds_at, principal, scoped
from aftersales.tickets import workflow
from aftersales.tickets.models import OrderType, Status, WorkOrder

from .models import (
    Calibration,
    CheckKind,
    Loan,
    Loaner,
    LoanerState,
    LoanPolicy,
    Tool,
    ToolState,
)

LOANER_ORDERING = ["asset_no", "id"]
LOAN_ORDERING = ["due_on", "id"]
CANDIDATE_ORDERING = ["created_at", "id"]
TOOL_ORDERING = ["code", "id"]
HISTORY_ORDERING = ["-done_on", "-id"]
DUE_SOON_DAYS = 7
# An open repair order that may still need a loaner: not yet completed (completed and in
# call-back the customer has the appliance back).
CANDIDATE_STATUSES = frozenset(workflow.OPEN) - {Status.COMPLETED, Status.CALLBACK}


def default_after_days() -> int:
    """``settings.LOANER_AFTER_DAYS`` (3): read at call time, so that a test may override it."""
    return int(getattr(settings, "LOANER_AFTER_DAYS", 3))


def _ancestor_ids(path: str) -> list[int]:
    return [int(x) for x in path.strip("/").split("/") if x]


def _subtree(node_id: int) -> str:
    path = Node.objects.filter(pk=node_id).values_list("path", flat=True).first()
    if path is None:
        raise ValidationFailed({"node_id": [_("节点不存在。")]})
    return path


# ---------------------------------------------------------------- the loan policy

@dataclass(frozen=True)
class Policy:
    """The loan policy that applies at a node: its own row, else its nearest ancestor's, else
    the default. ``source_node_id`` is the node whose row applies (None: the default)."""

    after_days: int
    source_node_id: int | None = None


def _policy(rows: dict[int, LoanPolicy], path: str) -> Policy:
    for nid in reversed(_ancestor_ids(path)):
        p = rows.get(nid)
        if p is not None:
            return Policy(p.after_days, nid)
    return Policy(default_after_days())


def policies_for_nodes(nodes) -> dict[int, Policy]:
    """The effective policy of each node (one query)."""
    nodes = list({n.pk: n for n in nodes}.values())
    ids = {i for n in nodes for i in _ancestor_ids(n.path)}
    rows = {p.node_id: p for p in LoanPolicy.objects.filter(node_id__in=sorted(ids))} if ids else {}
    return {n.pk: _policy(rows, n.path) for n in nodes}


def effective_policy(node_id: int) -> Policy:
    """The policy that applies at ``node_id``, in one query."""
    target = Node.objects.filter(pk=node_id).values("path")[:1]
    p = (LoanPolicy.objects.annotate(target=Subquery(target)).filter(target__startswith=F("node__path"))
         .order_by(Length("node__path").desc()).first())
    return Policy(p.after_days, p.node_id) if p is not None else Policy(default_after_days())


def policy_get(user, node_id: int) -> tuple[Node, Policy]:
    node = Node.objects.filter(pk=node_id).first()
    if node is None or not holds_at(user, Perm.ASSET_VIEW, node.pk):
        raise NotFound()
    return node, policies_for_nodes([node])[node.pk]


# ---------------------------------------------------------------- loaners

def loaner_queryset(user, perm: str = Perm.ASSET_VIEW) -> QuerySet[Loaner]:
    return scoped(Loaner.objects.all(), user, perm)


def loaner_list(user, *, node_id: int | None = None, state: str | None = None,
                category_id: int | None = None) -> QuerySet[Loaner]:
    """The loaners in scope (of the subtree of ``node_id``), with their outlet and category."""
    qs = loaner_queryset(user).select_related("node", "category")
    if node_id is not None:
        qs = qs.filter(node__path__startswith=_subtree(node_id))
    if state:
        qs = qs.filter(state=state)
    if category_id is not None:
        qs = qs.filter(category_id=category_id)
    return qs


def loaner_get(user, loaner_id: int, perm: str = Perm.ASSET_VIEW) -> Loaner:
    x = loaner_queryset(user, perm).select_related("node", "category").filter(pk=loaner_id).first()
    if x is None:
        raise NotFound()
    return x


@dataclass
class PoolRow:
    node_id: int
    node_name: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def pool_counts(user, *, node_id: int | None = None) -> list[PoolRow]:
    """Per outlet in scope, how many loaners are in each state (one query), by outlet name."""
    qs = loaner_queryset(user)
    if node_id is not None:
        qs = qs.filter(node__path__startswith=_subtree(node_id))
    rows: dict[int, PoolRow] = {}
    for r in (qs.order_by().values("node_id", "node__name", "node__code", "state").annotate(n=Count("id"))
              .order_by("node__code", "state")):
        row = rows.setdefault(r["node_id"], PoolRow(r["node_id"], r["node__name"], {s: 0 for s in LoanerState.values}))
        row.counts[r["state"]] = r["n"]
    return list(rows.values())


def outlets_in_scope(user, perm: str = Perm.ASSET_VIEW) -> QuerySet[Node]:
    """The outlets a user may keep a pool at (the page's outlet picker)."""
    ids = principal(user).node_ids_for(perm)
    qs = Node.objects.filter(kind="outlet", active=True)
    if ids is not None:
        qs = qs.filter(pk__in=sorted(ids))
    return qs.order_by("code")


# ---------------------------------------------------------------- loans

def loan_queryset(user, perm: str = Perm.ASSET_VIEW) -> QuerySet[Loan]:
    return scoped(Loan.objects.all(), user, perm)


def loan_list_qs(qs: QuerySet[Loan]) -> QuerySet[Loan]:
    """What a loan row shows, in the same query: the loaner, the order and its customer."""
    return qs.select_related("loaner__category", "loaner__node", "node", "order__customer", "order__unit__model", "lent_by",
                             "returned_by")


def loans_overdue(user, *, today: dt.date | None = None, node_id: int | None = None) -> QuerySet[Loan]:
    """Open loans past their due date (``due_on`` before ``today``), oldest due first."""
    today = today or timezone.localdate()
    qs = loan_queryset(user).filter(returned_at__isnull=True, due_on__lt=today)
    if node_id is not None:
        qs = qs.filter(node__path__startswith=_subtree(node_id))
    return loan_list_qs(qs)


def loans_open(user, *, node_id: int | None = None) -> QuerySet[Loan]:
    qs = loan_queryset(user).filter(returned_at__isnull=True)
    if node_id is not None:
        qs = qs.filter(node__path__startswith=_subtree(node_id))
    return loan_list_qs(qs)


def loan_get(user, loan_id: int, perm: str = Perm.ASSET_VIEW) -> Loan:
    x = loan_list_qs(loan_queryset(user, perm)).filter(pk=loan_id).first()
    if x is None:
        raise NotFound()
    return x


def order_loans(order_id: int) -> list[Loan]:
    """Every loan of an order, the open one first (the caller has checked the order's sight)."""
    return list(Loan.objects.filter(order_id=order_id).select_related("loaner__category", "lent_by", "returned_by")
                .order_by(F("returned_at").desc(nulls_first=True), "-id"))


def loan_candidates(user, *, now: dt.datetime | None = None, node_id: int | None = None,
                    perm: str = Perm.ASSET_VIEW) -> QuerySet[WorkOrder]:
    """The repair orders that qualify for a loaner and have none: the list a manager lends from.

    A repair qualifies when it is still open (not yet completed, cancelled or closed) and was
    created more than the policy's ``after_days`` ago at its node. Days are counted from
    ``created_at`` (when the customer reported the fault) in whole days of 24 hours, not in
    working days and without pausing while the order waits for parts or the customer: the
    customer is without the appliance on every one of those days, and the long waits are
    precisely the repairs a loaner is for. Each row is annotated with ``after_days``.

    Three queries whatever the number of outlets: the nodes in scope, their policies (one
    query, ``policies_for_nodes``), and the orders, grouped by threshold in one ``OR``.
    """
    now = now or timezone.now()
    ids = None if user is None else principal(user).node_ids_for(perm)  # None: the system, everywhere
    nodes_qs = Node.objects.only("id", "path")
    if ids is not None:
        nodes_qs = nodes_qs.filter(pk__in=sorted(ids))
    if node_id is not None:
        nodes_qs = nodes_qs.filter(path__startswith=_subtree(node_id))
    nodes = list(nodes_qs)
    if not nodes:
        return WorkOrder.objects.none()
    policies = policies_for_nodes(nodes)
    by_days: dict[int, list[int]] = {}
    for n in nodes:
        by_days.setdefault(policies[n.pk].after_days, []).append(n.pk)
    qs = WorkOrder.objects.filter(type=OrderType.REPAIR, status__in=sorted(CANDIDATE_STATUSES))
    if ids is None and node_id is None and len(by_days) == 1:  # everywhere, one rule: no node list
        days = next(iter(by_days))
        qs = qs.filter(created_at__lt=now - dt.timedelta(days=days)).annotate(
            after_days=Value(days, output_field=IntegerField()))
    else:
        cond = Q()
        for days, nids in sorted(by_days.items()):
            cond |= Q(node_id__in=sorted(nids), created_at__lt=now - dt.timedelta(days=days))
        qs = qs.filter(cond).annotate(after_days=Case(
            *[When(node_id__in=sorted(nids), then=Value(days)) for days, nids in sorted(by_days.items())],
            default=Value(default_after_days()), output_field=IntegerField()))
    open_loan = Loan.objects.filter(order_id=OuterRef("pk"), returned_at__isnull=True)
    return (qs.exclude(Exists(open_loan))
            .select_related("node", "customer", "unit__model__category", "assignee"))


def days_open(order: WorkOrder, now: dt.datetime | None = None) -> int:
    """Whole days since the order was created."""
    return max(0, ((now or timezone.now()) - order.created_at).days)


def available_loaners_for(order: WorkOrder) -> list[Loaner]:
    """The available loaners of the order's outlet, those of the unit's category first."""
    category_id = order.unit.model.category_id if order.unit_id else None
    rows = list(Loaner.objects.filter(node_id=order.node_id, state=LoanerState.AVAILABLE)
                .select_related("category").order_by("asset_no"))
    rows.sort(key=lambda x: (x.category_id != category_id, x.asset_no))
    return rows


def loan_days(loan: Loan, until: dt.datetime | None = None) -> int:
    """Days the loaner was (or has been) with the customer: calendar days from the day lent to
    the day returned (or ``until``, now), at least one."""
    end = loan.returned_at or until or timezone.now()
    return max(1, (timezone.localdate(end) - timezone.localdate(loan.lent_at)).days)


def order_loan_usage(order_id: int, *, until: dt.datetime | None = None) -> tuple[Decimal, int]:
    """What the order's loans cost (for the service-cost indicator) and for how many days: for
    each loan, its days (``loan_days``) × the loaner's daily cost when it was lent. One query."""
    total, days = Decimal("0.00"), 0
    for loan in Loan.objects.filter(order_id=order_id).only("lent_at", "returned_at", "daily_cost"):
        n = loan_days(loan, until)
        days += n
        total += loan.daily_cost * n
    return total.quantize(Decimal("0.01")), days


def order_loan_cost(order_id: int, *, until: dt.datetime | None = None) -> Decimal:
    return order_loan_usage(order_id, until=until)[0]


# ---------------------------------------------------------------- tools

DUE_FILTERS = ("overdue", "soon")


def tool_queryset(user, perm: str = Perm.ASSET_VIEW) -> QuerySet[Tool]:
    return scoped(Tool.objects.all(), user, perm)


def _tracked(qs: QuerySet[Tool]) -> QuerySet[Tool]:
    return qs.exclude(check_kind=CheckKind.NONE).exclude(state=ToolState.RETIRED)


def tool_list(user, *, node_id: int | None = None, holder_id: int | None = None, state: str | None = None,
              kind: str | None = None, due: str | None = None, q: str | None = None,
              today: dt.date | None = None) -> QuerySet[Tool]:
    """The register in scope. ``due``: ``overdue`` (the check's validity has passed) or ``soon``
    (it ends within 7 days); both leave out retired tools and those not checked."""
    today = today or timezone.localdate()
    qs = tool_queryset(user).select_related("node", "holder")
    if node_id is not None:
        qs = qs.filter(node__path__startswith=_subtree(node_id))
    if holder_id is not None:
        qs = qs.filter(holder_id=holder_id)
    if state:
        qs = qs.filter(state=state)
    if kind:
        qs = qs.filter(kind=kind)
    if due == "overdue":
        qs = _tracked(qs).filter(due_on__lt=today)
    elif due == "soon":
        qs = _tracked(qs).filter(due_on__gte=today, due_on__lte=today + dt.timedelta(days=DUE_SOON_DAYS))
    if q:
        q = q.strip()
        qs = qs.filter(Q(code__icontains=q) | Q(name__icontains=q) | Q(serial__icontains=q))
    return qs


def due_flag(tool: Tool, today: dt.date | None = None) -> str:
    """``overdue``, ``soon`` or "" for a tool (retired tools and unchecked ones: "")."""
    today = today or timezone.localdate()
    if not tool.tracked or tool.state == ToolState.RETIRED or tool.due_on is None:
        return ""
    if tool.due_on < today:
        return "overdue"
    if tool.due_on <= today + dt.timedelta(days=DUE_SOON_DAYS):
        return "soon"
    return ""


def tool_get(user, tool_id: int, perm: str = Perm.ASSET_VIEW) -> Tool:
    t = tool_queryset(user, perm).select_related("node", "holder").filter(pk=tool_id).first()
    if t is None:
        raise NotFound()
    return t


def tool_history(user, tool_id: int) -> QuerySet[Calibration]:
    """The tool's calibrations and inspections, latest first (404 outside the scope)."""
    tool = tool_get(user, tool_id)
    return Calibration.objects.filter(tool=tool).select_related("recorded_by")


def overdue_instruments_of(employee_ids, *, on: dt.date | None = None) -> dict[int, list[Tool]]:
    """The tools in use whose calibration or inspection is no longer valid on ``on`` (today),
    per holder among ``employee_ids``, soonest overdue first. ONE query (dispatch's warning)."""
    ids = sorted({int(i) for i in employee_ids if i is not None})
    if not ids:
        return {}
    on = on or timezone.localdate()
    out: dict[int, list[Tool]] = {}
    for t in (Tool.objects.filter(holder_id__in=ids, state=ToolState.IN_USE, due_on__lt=on)
              .exclude(check_kind=CheckKind.NONE).order_by("holder_id", "due_on", "code")):
        out.setdefault(t.holder_id, []).append(t)
    return out


def instrument_warning(tool: Tool) -> str:
    """The sentence a dispatcher reads about an overdue instrument."""
    return str(_("持有的%(kind)s「%(name)s」（%(code)s）%(check)s有效期至 %(date)s，已过期")
               % {"kind": tool.get_kind_display(), "name": tool.name, "code": tool.code,
                  "check": tool.get_check_kind_display(), "date": tool.due_on.isoformat()})
