"""The audit trail: every service write appends a chained entry; audit_verify finds any
edited or deleted entry, also a deleted tail once anchored."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from aftersales.customers import services as cs
from aftersales.records.audit import GENESIS, audit_anchor, audit_verify
from aftersales.records.models import AuditAnchor, AuditEntry


@pytest.fixture
def trail(world):
    c = cs.customer_create(user=world.pudong_agent, name="赵敏", phone="13700001111",
                           address={"province": "上海市", "city": "上海市", "district": "浦东新区", "street": "世纪大道1号"})
    cs.customer_update(user=world.pudong_agent, customer_id=c.pk, notes="VIP 客户")
    cs.customer_update(user=world.pudong_agent, customer_id=c.pk, name="赵敏敏")
    return c


def _raw_update(entry_id, **fields):
    """Tamper as an attacker with database access would: bypassing the ORM's model layer."""
    AuditEntry.objects.filter(pk=entry_id).update(**fields)


def test_every_write_is_chained_per_object(trail, world):
    chain = list(AuditEntry.objects.filter(chain=f"customers.customer:{trail.pk}").order_by("seq"))
    assert [e.action for e in chain] == ["customer.create", "customer.update", "customer.update"]
    assert [e.seq for e in chain] == [1, 2, 3]
    assert chain[0].prev_hash == GENESIS
    assert chain[1].prev_hash == chain[0].hash and chain[2].prev_hash == chain[1].hash
    assert chain[2].before["name"] == "赵敏" and chain[2].after["name"] == "赵敏敏"
    assert chain[0].actor_id == world.pudong_agent.pk and chain[0].node_id == world.pudong.pk
    assert audit_verify().ok


def test_verify_catches_an_edited_entry(trail):
    e = AuditEntry.objects.get(chain=f"customers.customer:{trail.pk}", seq=2)
    _raw_update(e.pk, after={**e.after, "notes": "普通客户"})
    r = audit_verify()
    assert not r.ok
    assert any("#2" in p and "altered" in p for p in r.problems)


def test_verify_catches_a_deleted_middle_entry(trail):
    AuditEntry.objects.filter(chain=f"customers.customer:{trail.pk}", seq=2).delete()
    r = audit_verify()
    assert any("missing" in p and f"customers.customer:{trail.pk}" in p for p in r.problems)


def test_verify_catches_a_rewritten_chain_through_the_anchor(trail):
    """An attacker who edits an entry and recomputes the hashes of the chain evades the chain
    check, but not the anchor that sealed the head."""
    from aftersales.records.audit import entry_hash

    audit_anchor(now=timezone.now() + dt.timedelta(minutes=10))
    entries = list(AuditEntry.objects.filter(chain=f"customers.customer:{trail.pk}").order_by("seq"))
    prev = GENESIS
    for e in entries:
        if e.seq == 2:
            e.after = {**e.after, "notes": "篡改"}
        e.prev_hash = prev
        e.hash = entry_hash(e)
        _raw_update(e.pk, after=e.after, prev_hash=e.prev_hash, hash=e.hash)
        prev = e.hash
    r = audit_verify()
    assert any("sealed by anchor" in p for p in r.problems)


def test_verify_catches_a_deleted_tail_once_anchored(trail):
    audit_anchor(now=timezone.now() + dt.timedelta(minutes=10))
    AuditEntry.objects.filter(chain=f"customers.customer:{trail.pk}", seq=3).delete()
    r = audit_verify()
    assert any("missing (deleted)" in p and "#3" in p for p in r.problems)


def test_anchor_waits_for_the_grace_period_and_chains(trail):
    assert audit_anchor(grace_seconds=3600) is not None  # first anchor, possibly empty
    a2 = audit_anchor(now=timezone.now() + dt.timedelta(hours=2), grace_seconds=60)
    assert a2 is not None and f"customers.customer:{trail.pk}" in a2.heads
    assert a2.prev_hash == AuditAnchor.objects.order_by("id").first().hash
    # nothing new since: no anchor
    assert audit_anchor(now=timezone.now() + dt.timedelta(hours=2), grace_seconds=60) is None
    assert audit_verify().ok


def test_tampered_anchor_is_reported(trail):
    a = audit_anchor(now=timezone.now() + dt.timedelta(minutes=10))
    AuditAnchor.objects.filter(pk=a.pk).update(heads={})
    assert any("anchor" in p and "altered" in p for p in audit_verify().problems)


def test_management_command_reports_and_fails(trail):
    call_command("audit_verify")  # intact: no error
    e = AuditEntry.objects.filter(chain=f"customers.customer:{trail.pk}").first()
    _raw_update(e.pk, actor_label="mallory")
    with pytest.raises(CommandError, match="NOT intact"):
        call_command("audit_verify")


def test_audit_record_refuses_to_run_outside_a_transaction(world):
    from aftersales.records.audit import audit_record

    # pytest-django wraps each test in a transaction: step out of it to prove the guard.
    saved, connection.in_atomic_block = connection.in_atomic_block, False
    try:
        with pytest.raises(RuntimeError):
            audit_record(actor=None, action="x", obj=world.hq, before=None, after=None)
    finally:
        connection.in_atomic_block = saved
