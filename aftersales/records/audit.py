"""Writing, sealing and verifying the audit trail. See ``models.py`` for the design.

Services call ``audit_record`` inside their own transaction; bulk loaders (demo data, imports)
call ``audit_record_created_bulk``. Nothing else writes ``AuditEntry``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import models, transaction
from django.db.models import Max
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from .models import AuditAnchor, AuditEntry

GENESIS = "0" * 64
SYSTEM = "system"
_SECRET_FIELDS = {"password"}


def _jsonable(v):
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).isoformat(timespec="microseconds")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, decimal.Decimal | uuid.UUID):
        return str(v)
    if isinstance(v, FieldFile):
        return v.name or ""
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


def snapshot(obj: models.Model, fields: Iterable[str] | None = None) -> dict:
    """The JSON-safe state of a row: concrete fields (FKs as ids), secrets left out."""
    names = fields or [f.attname for f in obj._meta.concrete_fields]
    return {n: _jsonable(getattr(obj, n)) for n in names if n not in _SECRET_FIELDS}


def chain_key(obj_or_label, pk=None) -> str:
    if pk is None:
        return f"{obj_or_label._meta.label_lower}:{obj_or_label.pk}"
    return f"{obj_or_label}:{pk}"


def _canonical(d: dict) -> str:
    return json.dumps(d, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def entry_hash(e: AuditEntry) -> str:
    body = {
        "chain": e.chain,
        "seq": e.seq,
        "prev": e.prev_hash,
        "at": e.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": e.actor_id,
        "actor_label": e.actor_label,
        "node": e.node_id,
        "type": e.object_type,
        "id": e.object_id,
        "action": e.action,
        "before": e.before,
        "after": e.after,
    }
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


def _actor_fields(actor) -> tuple[int | None, str]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None, SYSTEM
    return actor.pk, actor.get_username()


def audit_record(*, actor, action: str, obj: models.Model, before: dict | None, after: dict | None,
                 node_id: int | None = None) -> AuditEntry:
    """Append one entry to ``obj``'s chain. Must run inside the writing service's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must be called inside the service's transaction")
    chain = chain_key(obj)
    last = AuditEntry.objects.filter(chain=chain).order_by("-seq").values_list("seq", "hash").first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    actor_id, label = _actor_fields(actor)
    e = AuditEntry(
        chain=chain, seq=seq, prev_hash=prev, at=timezone.now(), actor_id=actor_id, actor_label=label,
        node_id=node_id, object_type=obj._meta.label_lower, object_id=str(obj.pk), action=action,
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
    )
    e.hash = entry_hash(e)
    e.save(force_insert=True)
    return e


def audit_record_created_bulk(*, actor, action: str, objs: list[models.Model], node_of=None,
                              fields: Iterable[str] | None = None, at: dt.datetime | None = None,
                              batch_size: int = 2000) -> int:
    """One ``create`` entry per newly created object (each the first of its own chain)."""
    actor_id, label = _actor_fields(actor)
    when = at or timezone.now()
    fields = list(fields) if fields else None
    rows = []
    for obj in objs:
        e = AuditEntry(
            chain=chain_key(obj), seq=1, prev_hash=GENESIS, at=when, actor_id=actor_id, actor_label=label,
            node_id=node_of(obj) if node_of else None, object_type=obj._meta.label_lower,
            object_id=str(obj.pk), action=action, before=None, after=snapshot(obj, fields),
        )
        e.hash = entry_hash(e)
        rows.append(e)
    AuditEntry.objects.bulk_create(rows, batch_size=batch_size)
    return len(rows)


# ---------------------------------------------------------------- anchoring

def _anchor_hash(prev_hash: str, start, end, heads: dict) -> str:
    body = {
        "prev": prev_hash,
        "start": start.astimezone(dt.UTC).isoformat(timespec="microseconds") if start else None,
        "end": end.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "heads": heads,
    }
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


def audit_anchor(*, now: dt.datetime | None = None, grace_seconds: int | None = None) -> AuditAnchor | None:
    """Seal the heads of the chains that changed since the previous anchor.

    The window ends ``grace`` seconds ago, so that transactions still open have committed
    before their entries are sealed; it starts ``grace`` before the previous window's end,
    so a late commit is picked up by the next anchor. Returns None when nothing changed.
    """
    grace = dt.timedelta(seconds=settings.AUDIT_ANCHOR_GRACE_SECONDS if grace_seconds is None else grace_seconds)
    end = (now or timezone.now()) - grace
    with transaction.atomic():
        prev = AuditAnchor.objects.select_for_update().order_by("-id").first()
        if prev and prev.window_end >= end:
            return None
        start = prev.window_end if prev else None
        touched_qs = AuditEntry.objects.filter(at__lte=end)
        if start is not None:
            touched_qs = touched_qs.filter(at__gt=start - grace)
        touched = set(touched_qs.values_list("chain", flat=True).distinct())
        heads: dict[str, list] = {}
        touched_list = sorted(touched)
        for i in range(0, len(touched_list), 5000):
            chunk = touched_list[i : i + 5000]
            maxes = dict(
                AuditEntry.objects.filter(chain__in=chunk, at__lte=end)
                .values("chain").annotate(m=Max("seq")).values_list("chain", "m")
            )
            for chain, seq, h in AuditEntry.objects.filter(chain__in=chunk, at__lte=end).values_list(
                "chain", "seq", "hash"
            ):
                if maxes.get(chain) == seq:
                    heads[chain] = [seq, h]
        if not heads and prev is not None:
            return None
        prev_hash = prev.hash if prev else GENESIS
        anchor = AuditAnchor(window_start=start, window_end=end, heads=heads, prev_hash=prev_hash)
        anchor.hash = _anchor_hash(prev_hash, start, end, heads)
        anchor.save()
        return anchor


# ---------------------------------------------------------------- verification

@dataclass
class VerifyReport:
    entries: int = 0
    chains: int = 0
    anchors: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit_verify(*, chunk_size: int = 5000) -> VerifyReport:
    """Walk every chain and every anchor; report each altered, reordered or missing entry."""
    r = VerifyReport()
    cur_chain, expect_seq, expect_prev = None, 1, GENESIS
    heads_seen: dict[str, tuple[int, str]] = {}
    qs = AuditEntry.objects.order_by("chain", "seq")
    for e in qs.iterator(chunk_size=chunk_size):
        r.entries += 1
        if e.chain != cur_chain:
            cur_chain, expect_seq, expect_prev = e.chain, 1, GENESIS
            r.chains += 1
        if e.seq != expect_seq:
            r.problems.append(
                f"{e.chain}: entries {expect_seq}..{e.seq - 1} missing (deleted)"
                if e.seq > expect_seq else f"{e.chain}#{e.seq}: sequence out of order"
            )
        elif e.prev_hash != expect_prev:
            r.problems.append(f"{e.chain}#{e.seq}: link to previous entry broken")
        if entry_hash(e) != e.hash:
            r.problems.append(f"{e.chain}#{e.seq} (id {e.pk}): content altered, hash does not match")
        expect_seq, expect_prev = e.seq + 1, e.hash
        heads_seen[e.chain] = (e.seq, e.hash)
    prev_hash = GENESIS
    for a in AuditAnchor.objects.order_by("id").iterator(chunk_size=100):
        r.anchors += 1
        if a.prev_hash != prev_hash or _anchor_hash(a.prev_hash, a.window_start, a.window_end, a.heads) != a.hash:
            r.problems.append(f"anchor {a.pk}: altered or out of chain")
        prev_hash = a.hash
        missing = [c for c, (seq, _h) in a.heads.items() if heads_seen.get(c, (0, ""))[0] < seq]
        for c in missing:
            r.problems.append(f"{c}: entries up to #{a.heads[c][0]} sealed by anchor {a.pk} are missing (deleted)")
        pairs = [(c, seq, h) for c, (seq, h) in a.heads.items() if c not in missing]
        for i in range(0, len(pairs), 2000):
            chunk = pairs[i : i + 2000]
            wanted = {(c, seq) for c, seq, _h in chunk}
            stored = {
                (c, s): h
                for c, s, h in AuditEntry.objects.filter(chain__in={c for c, _s, _h in chunk}).values_list(
                    "chain", "seq", "hash"
                ) if (c, s) in wanted
            }
            for c, seq, h in chunk:
                if stored.get((c, seq)) != h:
                    r.problems.append(f"{c}#{seq}: differs from the hash sealed by anchor {a.pk}")
    return r
