"""Races on PostgreSQL with real concurrent connections."""


import pytest
from django.db import connection

from aftersales.conftest import race
from aftersales.core.errors import ValidationFailed
from aftersales.customers import services as cs
from aftersales.customers.models import Customer
from aftersales.records.audit import audit_verify
from aftersales.records.models import AuditEntry

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


_race = race


def test_two_agents_registering_the_same_phone_one_wins(world):
    assert connection.vendor == "postgresql"
    results = _race(6, lambda i: cs.customer_create(
        user=world.pudong_agent, name=f"客户{i}", phone="13600006666", node_id=world.pudong.pk))
    oks = [r for kind, r in results if kind == "ok"]
    errs = [r for kind, r in results if kind == "err"]
    assert len(oks) == 1 and len(errs) == 5
    assert all(isinstance(e, ValidationFailed) and "phone" in e.errors for e in errs), errs
    winner = Customer.objects.get(phone="13600006666")
    assert all(winner.name in str(e.errors["phone"][0]) for e in errs)
    assert AuditEntry.objects.filter(object_type="customers.customer", object_id=str(winner.pk)).count() == 1


def test_concurrent_updates_of_one_customer_keep_one_unbroken_chain(world):
    c = world.c_pudong
    results = _race(8, lambda i: cs.customer_update(user=world.pudong_agent, customer_id=c.pk, notes=f"第{i}次"))
    assert all(kind == "ok" for kind, _r in results), results
    seqs = list(AuditEntry.objects.filter(chain=f"customers.customer:{c.pk}").order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 9))
    assert audit_verify().ok
