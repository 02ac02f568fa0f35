"""What every work order's history must satisfy, checked in bulk: the proof that orders moved
through the services and orders built in bulk (the demo) obey the same rules.

``order_problems(order_ids=None)`` reads the orders and their events in chunks (two queries a
chunk, events streamed in (order, seq) order from the unique index) and replays each history
in Python against the workflow table. For every order:

- its events are numbered 1..n without gaps, and ``event_count`` is n;
- the first is ``create`` from '' to ``received``;
- every move starts from the status the previous move left, is a move of ``MOVES`` allowed
  from there (for the order's type at the time) and leads where the table says;
- every other event (note, photo, code sent, confirmation, SLA breach, the other apps' own
  events …) keeps the status;
- the last status is the order's; a status that needs a technician has one; closed and
  cancelled orders have ``closed_at`` and open ones none; completed, in call-back and
  closed orders have ``completed_at`` (a consultation answered at once excepted);
- the counters match the history: reopenings, escalations, reassignments, declines, visits;
- the owner is the first-contact user and no event changed it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .models import OrderEvent, OrderType, Status, WorkOrder
from .workflow import ASSIGNED, MOVES, TERMINAL

CHUNK = 5000
_IN_CHUNK = 900  # ids per IN (…) (SQLite's parameter limit)
NEEDS_COMPLETED_AT = frozenset({Status.COMPLETED, Status.CALLBACK, Status.CLOSED})
# counter field → the move it counts
COUNTERS = {"reopen_count": "reopen", "escalation_level": "escalate", "reassign_count": "reassign",
            "decline_count": "decline", "visit_count": "arrive"}

_ORDER_FIELDS = ("id", "number", "type", "status", "assignee_id", "owner_id", "closed_at", "completed_at",
                 "event_count", "customer__user_id", *COUNTERS)
_EVENT_FIELDS = ("order_id", "seq", "action", "from_status", "to_status", "actor_id")


def _chunks(order_ids: Iterable[int] | None) -> Iterator[tuple[list, dict]]:
    """(orders, {order_id: create/classify event data}) a chunk at a time, in id order."""
    if order_ids is None:
        base = WorkOrder.objects.order_by("id")
        last = 0
        while True:
            rows = list(base.filter(id__gt=last).values_list(*_ORDER_FIELDS)[:CHUNK])
            if not rows:
                return
            last = rows[-1][0]
            yield rows, {"id__gte": rows[0][0], "id__lte": last}
    else:
        ids = sorted(set(order_ids))
        for i in range(0, len(ids), _IN_CHUNK):
            part = ids[i:i + _IN_CHUNK]
            yield list(WorkOrder.objects.filter(id__in=part).order_by("id").values_list(*_ORDER_FIELDS)), \
                {"id__in": part}


def _events(where: dict):
    f = {f"order_{k}": v for k, v in where.items()}
    return OrderEvent.objects.filter(**f).order_by("order_id", "seq")


def order_problems(order_ids: Iterable[int] | None = None, *, limit: int | None = None) -> list[str]:
    """Every broken rule of the orders ``order_ids`` (all when None), one line each
    (``<number>: <what>``); an empty list when all histories are sound. Stops after
    ``limit`` lines when given."""
    out: list[str] = []
    for orders, where in _chunks(order_ids):
        if not orders:
            continue
        events = _events(where).values_list(*_EVENT_FIELDS).iterator(chunk_size=20000)
        data = dict(((oid, seq), d) for oid, seq, d in _events(where).filter(action__in=("create", "classify"))
                    .values_list("order_id", "seq", "data").iterator(chunk_size=20000))
        pending = next(events, None)
        for row in orders:
            oid = row[0]
            history = []
            while pending is not None and pending[0] < oid:  # events of orders not in the chunk: cannot be
                pending = next(events, None)
            while pending is not None and pending[0] == oid:
                history.append(pending)
                pending = next(events, None)
            for p in _check(row, history, data):
                out.append(f"{row[1]}: {p}")
                if limit is not None and len(out) >= limit:
                    return out
    return out


def _check(row: tuple, history: list, data: dict) -> list[str]:
    (oid, number, otype, status, assignee_id, owner_id, closed_at, completed_at, event_count,
     customer_user_id, *counters) = row
    problems: list[str] = []
    n = len(history)
    seqs = [e[1] for e in history]
    if seqs != list(range(1, n + 1)):
        missing = sorted(set(range(1, max(seqs or [0]) + 1)) - set(seqs))
        problems.append(f"event seq not 1..{n} without gaps (missing {missing[:5]})" if missing
                        else f"event seq not 1..{n}")
    if event_count != n:
        problems.append(f"event_count {event_count} but {n} events")
    if not history:
        problems.append("no events")
        return problems
    first = history[0]
    if (first[2], first[3], first[4]) != ("create", "", Status.RECEIVED):
        problems.append(f"first event is {first[2]} {first[3]!r}→{first[4]!r}, not create ''→received")
    create_data = data.get((oid, first[1])) or {}
    kind = create_data.get("type") or otype
    current = first[4]
    counts = dict.fromkeys(COUNTERS.values(), 0)
    classify_actor = None
    last_move = "create"
    for _oid, seq, action, frm, to, actor in history[1:]:
        m = MOVES.get(action)
        if m is None:  # a note, a photo, an SLA breach, a survey …: the status stays
            if frm != current or to != current:
                problems.append(f"#{seq} {action} changes the status {frm}→{to} (status was {current})")
            continue
        if frm != current:
            problems.append(f"#{seq} {action} from {frm} but the status was {current}")
        if frm not in m.sources:
            problems.append(f"#{seq} {action} is not allowed from {frm}")
        elif to != m.leads_to(frm):
            problems.append(f"#{seq} {action} from {frm} leads to {m.leads_to(frm)}, not {to}")
        if m.types is not None and kind not in m.types:
            problems.append(f"#{seq} {action} is not allowed for a {kind} order")
        if action == "classify":
            kind = (data.get((oid, seq)) or {}).get("type") or kind
            if classify_actor is None:
                classify_actor = actor
        if action in counts:
            counts[action] += 1
        last_move = action
        current = to
    if current != status:
        problems.append(f"status is {status} but the history ends in {current}")
    if status in ASSIGNED and assignee_id is None:
        problems.append(f"status {status} without a technician")
    if status in TERMINAL and closed_at is None:
        problems.append(f"status {status} without closed_at")
    if status not in TERMINAL and closed_at is not None:
        problems.append(f"status {status} with closed_at")
    answered = status == Status.CLOSED and last_move == "answer" and kind == OrderType.CONSULTATION
    if status in NEEDS_COMPLETED_AT and completed_at is None and not answered:
        problems.append(f"status {status} without completed_at")
    for (fname, action), value in zip(COUNTERS.items(), counters, strict=True):
        if value != counts[action]:
            problems.append(f"{fname} {value} but {counts[action]} {action} events")
    # The owner: the first-contact user, recorded at intake; an order the customer filed
    # themselves gets the first user to classify it.
    if "owner" in create_data:
        expected = create_data["owner"]
    else:
        expected = first[5] if first[5] is not None and first[5] != customer_user_id else None
    if expected is None:
        expected = classify_actor
    if owner_id != expected:
        problems.append(f"owner {owner_id} but the first contact was {expected}")
    return problems
