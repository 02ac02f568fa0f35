"""The SLA sweep (R-SLA-2, R-SLA-3): marks orders at risk, records breaches, escalates.

Run every minute (Celery beat in production, in-process by ``manage.py serve``, by hand with
``manage.py sla_sweep``). It works in two steps:

1. each order whose response deadline (not yet responded) or resolution deadline (not yet
   completed or closed) has passed without being flagged is handled in its own short
   transaction with its row locked (``SKIP LOCKED`` where the database has it: a sweep never
   waits for an order another sweep or a user is moving; the next run takes it): the breach
   is flagged, the order turns ``breached``, an ``sla_breach`` event and an audit entry are
   written, and the order is escalated one level per missed deadline through
   ``workflow.move(..., "escalate")`` — a resolution breach after a response breach escalates
   again — and the next level of management is told (level 1: the outlet's managers; 2: the
   service centre's; 3 and up: headquarters' managers; a level where nobody holds the role
   passes the message upwards);
2. one set-based UPDATE turns the other open orders whose clock runs (not paused) from ``ok``
   to ``at_risk`` once their ``sla_risk_at`` has come.

Re-running finds nothing new: the flags are set once. Paused orders are left alone.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from aftersales.notifications.services import notify_users
from aftersales.org.models import Node, NodeKind
from aftersales.org.roles import Role
from aftersales.records.audit import audit_record

from . import workflow
from .models import SlaState, Status, WorkOrder

log = logging.getLogger("aftersales.sla")

TERMINAL = (Status.CLOSED, Status.CANCELLED)
KINDS = {"response": _("首次响应"), "resolve": _("解决")}
# The role told at each escalation level (3 and above: headquarters).
LEVEL_ROLES = {1: (Role.OUTLET_MANAGER, NodeKind.OUTLET), 2: (Role.CENTRE_MANAGER, NodeKind.CENTRE),
               3: (Role.HQ_MANAGER, NodeKind.HQ)}


@dataclass(frozen=True)
class SweepResult:
    at_risk: int  # orders turned at risk
    breached: int  # deadlines newly found missed (an order may miss two)
    escalated: int  # escalations made (one per missed deadline)


# ---------------------------------------------------------------- which orders

def _pending(now: dt.datetime) -> tuple[Q, Q]:
    """Orders whose response / resolution deadline has passed and is not yet flagged."""
    response = Q(responded_at__isnull=True, response_due__lt=now, response_breached=False)
    resolve = Q(completed_at__isnull=True, closed_at__isnull=True, resolve_due__lt=now, resolve_breached=False)
    return response, resolve


def _running() -> QuerySet[WorkOrder]:
    """Open orders whose clock runs."""
    return WorkOrder.objects.filter(sla_paused_at__isnull=True).exclude(status__in=TERMINAL)


def mark_at_risk(now: dt.datetime) -> int:
    """Step 2: one UPDATE for every open, running order whose warning time has come."""
    still_due = Q(responded_at__isnull=True) | Q(completed_at__isnull=True, closed_at__isnull=True)
    return (_running().filter(still_due, sla_state=SlaState.OK, sla_risk_at__lte=now)
            .update(sla_state=SlaState.AT_RISK))


def breach_candidates(now: dt.datetime, limit: int | None = None) -> list[int]:
    """Ids of the orders step 1 must look at, oldest deadline first (two index-friendly
    queries rather than one OR)."""
    response, resolve = _pending(now)
    ids: dict[int, dt.datetime] = {}
    for q, field in ((response, "response_due"), (resolve, "resolve_due")):
        qs = _running().filter(q).order_by(field).values_list("pk", field)
        for pk, due in (qs[:limit] if limit else qs):
            ids[pk] = min(due, ids.get(pk, due))
    out = sorted(ids, key=lambda pk: (ids[pk], pk))
    return out[:limit] if limit else out


# ---------------------------------------------------------------- one order

def _locked(order_id: int) -> WorkOrder | None:
    qs = WorkOrder.objects.filter(pk=order_id)
    if connection.features.has_select_for_update_skip_locked:
        return qs.select_for_update(skip_locked=True).first()  # busy: the next run takes it
    return qs.select_for_update().first()


def _zh(text) -> str:
    with translation.override("zh-hans"):
        return str(text)


def _breach_one(order_id: int, now: dt.datetime) -> tuple[int, int]:
    """Flag, record and escalate one order; returns (breaches, escalations)."""
    with transaction.atomic():
        o = _locked(order_id)
        if o is None or o.status in TERMINAL or o.sla_paused_at is not None:
            return 0, 0
        kinds = []
        if o.responded_at is None and o.response_due and o.response_due < now and not o.response_breached:
            kinds.append("response")
        resolved = o.completed_at is not None or o.closed_at is not None
        if not resolved and o.resolve_due and o.resolve_due < now and not o.resolve_breached:
            kinds.append("resolve")
        if not kinds:  # handled or flagged since the candidates were read
            return 0, 0
        before = {"response_breached": o.response_breached, "resolve_breached": o.resolve_breached,
                  "sla_state": o.sla_state}
        for kind in kinds:
            setattr(o, f"{kind}_breached", True)
        o.sla_state = SlaState.BREACHED
        dues = {kind: getattr(o, f"{kind}_due") for kind in kinds}
        note = "；".join(_zh(_("%(what)s超时（时限 %(due)s）")) % {
            "what": _zh(KINDS[k]), "due": timezone.localtime(d).strftime("%Y-%m-%d %H:%M")} for k, d in dues.items())
        workflow.event_append(o, actor=None, action="sla_breach", at=now, from_status=o.status, to_status=o.status,
                              note=note, data={"kinds": kinds, **{f"{k}_due": d.isoformat() for k, d in dues.items()}})
        o.save(update_fields=["response_breached", "resolve_breached", "sla_state", "event_count"])
        audit_record(actor=None, action="order.sla_breach", obj=o, before=before, after={
            "response_breached": o.response_breached, "resolve_breached": o.resolve_breached,
            "sla_state": o.sla_state, "kinds": kinds}, node_id=o.node_id)
        for kind in kinds:
            o = workflow.move(o.pk, "escalate", user=None, now=now,
                              reason=_zh(_("%(what)s超时，自动升级。")) % {"what": _zh(KINDS[kind])})
            _notify(o, kind)
        return len(kinds), len(kinds)


def managers_for(order: WorkOrder, level: int) -> list:
    """The managers told of an escalation to ``level``: the holders of that level's role at
    the order's node, its centre, or headquarters; nobody there → the next level up."""
    node = Node.objects.only("id", "path", "kind").get(pk=order.node_id)
    chain = [int(x) for x in node.path.strip("/").split("/") if x]  # root … node
    kinds = dict(Node.objects.filter(pk__in=chain).values_list("id", "kind"))
    users = get_user_model().objects.filter(is_active=True)
    for lv in range(min(max(level, 1), 3), 4):
        role, kind = LEVEL_ROLES[lv]
        at = [n for n in reversed(chain) if kinds.get(n) == kind][:1]  # the nearest such node
        if not at:
            continue
        found = list(users.filter(role_assignments__role=role, role_assignments__node_id=at[0])
                     .distinct().order_by("pk"))
        if found:
            return found
    return []


def _notify(o: WorkOrder, kind: str) -> None:
    recipients = managers_for(o, o.escalation_level)
    if not recipients:
        log.warning("order %s escalated to level %s: no manager to tell", o.number, o.escalation_level)
        return
    node_name = Node.objects.filter(pk=o.node_id).values_list("name", flat=True).first() or ""
    notify_users(recipients, event="sla_breach", ref=o.number, ref_id=o.pk, node_id=o.node_id,
                 context={"number": o.number, "node": node_name, "what": _zh(KINDS[kind]),
                          "level": o.escalation_level})


# ---------------------------------------------------------------- the sweep

def sla_sweep(now: dt.datetime | None = None, *, limit: int | None = None) -> SweepResult:
    """One run of the sweep at ``now`` (the current time by default); ``limit`` bounds the
    number of orders escalated in this run (the rest wait for the next)."""
    now = now or timezone.now()
    breached = escalated = 0
    for pk in breach_candidates(now, limit):
        try:
            b, e = _breach_one(pk, now)
        except Exception:  # one order must not stop the sweep; it is retried next run
            log.exception("SLA sweep: order %s failed", pk)
            continue
        breached += b
        escalated += e
    at_risk = mark_at_risk(now)  # after the breaches: an order late already is not "at risk"
    if at_risk or breached:
        log.info("SLA sweep at %s: %s at risk, %s breached, %s escalated", now, at_risk, breached, escalated)
    return SweepResult(at_risk=at_risk, breached=breached, escalated=escalated)


def sla_summary(qs: QuerySet[WorkOrder]) -> dict:
    """Counts over ``qs`` (already scoped by the caller): open orders at risk and breached,
    orders that ever missed a deadline (response / resolution), escalated, and by level."""
    open_ = ~Q(status__in=TERMINAL)
    flagged = Q(response_breached=True) | Q(resolve_breached=True)
    agg = qs.aggregate(
        total=Count("pk"),
        open=Count("pk", filter=open_),
        at_risk=Count("pk", filter=open_ & Q(sla_state=SlaState.AT_RISK)),
        open_breached=Count("pk", filter=open_ & Q(sla_state=SlaState.BREACHED)),
        breached=Count("pk", filter=flagged | Q(sla_state=SlaState.BREACHED)),
        response_breached=Count("pk", filter=Q(response_breached=True)),
        resolve_breached=Count("pk", filter=Q(resolve_breached=True)),
        escalated=Count("pk", filter=Q(escalation_level__gt=0)),
    )
    levels = (qs.filter(escalation_level__gt=0).order_by().values_list("escalation_level")
              .annotate(n=Count("pk")))
    agg["by_level"] = {int(level): n for level, n in sorted(levels)}
    return agg
