"""``manage.py demo``: counts, consistency, determinism, log-ins and the audit trail (small sizes)."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from aftersales.core.validators import mobile_error
from aftersales.customers.models import Address, Customer, Unit
from aftersales.org.models import Certification, Coverage, Employee, Node, NodeKind, RoleAssignment
from aftersales.org.roles import Role
from aftersales.records.audit import audit_record, audit_verify, snapshot
from aftersales.records.models import AuditEntry
from aftersales.web.management.commands.demo import DEMO_PASSWORD, LOGINS

pytestmark = pytest.mark.django_db

SIZES = dict(seed=7, customers=300, units=450)


def run_demo(**kw) -> str:
    out = StringIO()
    call_command("demo", stdout=out, stderr=StringIO(), **{**SIZES, **kw})
    return out.getvalue()


def customer_file() -> list[tuple[str, str]]:
    return list(Customer.objects.order_by("id").values_list("name", "phone"))


def test_demo_world():
    out = run_demo()

    assert Node.objects.filter(kind=NodeKind.HQ).count() == 1
    assert Node.objects.filter(kind=NodeKind.CENTRE).count() == 3
    assert Node.objects.filter(kind=NodeKind.OUTLET).count() == 24
    for n in Node.objects.select_related("parent"):
        assert n.path == (n.parent.path if n.parent else "/") + f"{n.pk}/"
    assert RoleAssignment.objects.filter(role=Role.TECHNICIAN).count() == 180
    assert Employee.objects.filter(department__kind="tech_support").count() == 180
    assert Customer.objects.count() == 300
    assert Unit.objects.count() == 450

    # every customer belongs to the outlet covering its default address's district
    covers = set(Coverage.objects.values_list("outlet_id", "province", "city", "district"))
    outlets = set(Node.objects.filter(kind=NodeKind.OUTLET).values_list("id", flat=True))
    defaults = {a.customer_id: a for a in Address.objects.filter(is_default=True)}
    for c in Customer.objects.all():
        a = defaults[c.pk]
        assert c.node_id in outlets
        assert (c.node_id, a.province, a.city, a.district) in covers

    phones = list(Customer.objects.values_list("phone", flat=True))
    assert len(set(phones)) == len(phones)
    assert all(mobile_error(p) is None for p in phones)

    today = timezone.localdate()
    assert Certification.objects.filter(expires_on__gte=today, expires_on__lte=today + dt.timedelta(days=30)).exists()
    assert Certification.objects.filter(expires_on__lt=today).exists()

    # one log-in per role, all with the demo password (hashed once, so one check suffices)
    users = {u.username: u for u in get_user_model().objects.filter(username__in=[u for _r, u, _w in LOGINS])}
    for role, username, _where in LOGINS:
        assert RoleAssignment.objects.filter(user=users[username], role=role).exists(), role
    assert set(Role.values) <= {r for r, _u, _w in LOGINS}
    assert len({u.password for u in users.values()}) == 1
    assert users["agent"].check_password(DEMO_PASSWORD)
    assert users["admin"].is_superuser and users["admin"].is_staff
    assert Employee.objects.filter(user=users["technician"], department__kind="tech_support").exists()
    login_customer = Customer.objects.get(user=users["customer"])
    assert RoleAssignment.objects.filter(user=users["customer"], role=Role.CUSTOMER, node=login_customer.node).exists()
    assert not get_user_model().objects.get(username=Employee.objects.exclude(user__in=users.values())
                                            .first().employee_no).has_usable_password()
    assert "demo1234" in out and "technician" in out

    # every created row has its create entry, and the trail verifies
    assert AuditEntry.objects.filter(object_type="customers.customer", action="demo.create").count() == 300
    assert AuditEntry.objects.filter(object_type="customers.unit", action="demo.create").count() == 450
    assert audit_verify().ok

    # a second load refuses a non-empty database; --if-empty does nothing
    with pytest.raises(CommandError):
        run_demo()
    run_demo(if_empty=True)
    assert Customer.objects.count() == 300


def test_demo_is_deterministic_and_resets():
    run_demo()
    first = customer_file()
    # a demo user who has since acted: the reset must not rewrite (and so break) that entry
    agent = get_user_model().objects.get(username="agent")
    c = Customer.objects.first()
    with transaction.atomic():
        audit_record(actor=agent, action="customer.update", obj=c, before=snapshot(c), after=snapshot(c),
                     node_id=c.node_id)
    units_first = list(Unit.objects.order_by("id").values_list("serial", "purchase_date", "invoice_no"))
    run_demo(reset=True)
    assert customer_file() == first
    assert list(Unit.objects.order_by("id").values_list("serial", "purchase_date", "invoice_no")) == units_first
    assert Customer.objects.count() == 300 and Node.objects.count() == 28
    report = audit_verify()
    assert report.ok, report.problems[:5]
    assert AuditEntry.objects.filter(action="customer.update", actor_id=agent.pk).exists()
