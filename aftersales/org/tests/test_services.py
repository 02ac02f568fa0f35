"""Organisation services: the tree's shape, coverage, staff records, role grants."""

import datetime as dt

import pytest

from aftersales.core.errors import NotFound, PermissionDenied, ValidationFailed
from aftersales.org import services as os_
from aftersales.org.models import CertificationType, NodeKind
from aftersales.org.roles import Role
from aftersales.org.selectors import certifications_expiring, employee_queryset, node_queryset


def test_node_tree_shape_is_enforced(world):
    n = os_.node_create(user=world.admin, kind=NodeKind.OUTLET, code="SH-MH", name="上海闵行网点",
                        parent_id=world.east.pk, province="上海市", city="上海市", district="闵行区")
    assert n.path == f"{world.east.path}{n.pk}/"
    with pytest.raises(ValidationFailed) as e:
        os_.node_create(user=world.admin, kind=NodeKind.OUTLET, code="X1", name="错层网点", parent_id=world.hq.pk,
                        province="上海市", city="上海市", district="徐汇区")
    assert set(e.value.errors) == {"parent_id"}
    with pytest.raises(ValidationFailed) as e:
        os_.node_create(user=world.admin, kind=NodeKind.HQ, code="HQ", name="", parent_id=None)
    assert set(e.value.errors) == {"code", "name", "kind"}
    with pytest.raises(PermissionDenied):
        os_.node_create(user=world.pudong_manager, kind=NodeKind.OUTLET, code="X2", name="越权网点",
                        parent_id=world.east.pk, province="上海市", city="上海市", district="徐汇区")


def test_a_district_is_served_by_one_outlet(world):
    os_.coverage_set(user=world.admin, outlet_id=world.pudong.pk,
                     districts=[("上海市", "上海市", "浦东新区"), ("上海市", "上海市", "黄浦区")])
    with pytest.raises(ValidationFailed) as e:
        os_.coverage_set(user=world.admin, outlet_id=world.hangzhou.pk, districts=[("上海市", "上海市", "黄浦区")])
    assert "上海浦东网点" in str(e.value.errors["districts[0]"][0])
    with pytest.raises(NotFound):
        os_.coverage_set(user=world.tianhe_agent, outlet_id=world.pudong.pk, districts=[])


def test_employee_records_and_expiring_certificates(world):
    e = os_.employee_create(user=world.pudong_manager, node_id=world.pudong.pk, username="t2", name="王师傅",
                            employee_no="T0002", hire_date="2024-03-01", probation_end="2024-06-01",
                            grade="senior", skills=["AC", "WM"], phone="13600001234")
    assert sorted(e.skills.values_list("code", flat=True)) == ["AC", "WM"]
    with pytest.raises(ValidationFailed) as err:
        os_.employee_create(user=world.pudong_manager, node_id=world.pudong.pk, username="t2", name="",
                            employee_no="T0002", hire_date="2024-13-01", grade="master", skills=["TV"], phone="1")
    assert set(err.value.errors) == {"username", "name", "employee_no", "hire_date", "grade", "skills", "phone"}
    with pytest.raises(PermissionDenied):
        os_.employee_create(user=world.pudong_manager, node_id=world.tianhe.pk, username="t3", name="越权",
                            employee_no="T0003", hire_date="2024-03-01")
    CertificationType.objects.create(code="ELEC", name="低压电工作业证", validity_months=72)
    today = dt.date.today()
    soon = os_.certification_add(user=world.pudong_manager, employee_id=e.pk, type_code="ELEC", number="E-1",
                                 issued_on=today - dt.timedelta(days=700), expires_on=today + dt.timedelta(days=20))
    os_.certification_add(user=world.pudong_manager, employee_id=world.tech_employee.pk, type_code="ELEC",
                          number="E-2", issued_on=today)  # expiry from the type's validity: 6 years
    assert list(certifications_expiring(world.east_manager)) == [soon]
    assert list(certifications_expiring(world.tianhe_agent)) == []
    with pytest.raises(ValidationFailed) as err:
        os_.certification_add(user=world.pudong_manager, employee_id=e.pk, type_code="ELEC", number="E-1",
                              issued_on=today, expires_on=today - dt.timedelta(days=1))
    assert set(err.value.errors) == {"number", "expires_on"}


def test_role_grants_cannot_escalate(world):
    ra = os_.role_assign(user=world.admin, target_user_id=world.nobody.pk, role=Role.DISPATCHER,
                         node_id=world.pudong.pk)
    assert ra.node == world.pudong
    with pytest.raises(ValidationFailed) as e:
        os_.role_assign(user=world.admin, target_user_id=world.nobody.pk, role=Role.TECHNICIAN, node_id=world.east.pk)
    assert set(e.value.errors) == {"node_id"}
    # an outlet manager may not hand out rights it does not hold (dispatcher sees staff only, fine; agent imports)
    with pytest.raises(PermissionDenied):
        os_.role_assign(user=world.pudong_manager, target_user_id=world.nobody.pk, role=Role.AGENT,
                        node_id=world.pudong.pk)
    os_.role_revoke(user=world.admin, assignment_id=ra.pk)
    assert not world.nobody.role_assignments.exists()


def test_scoped_reads(world):
    assert set(node_queryset(world.pudong_agent).values_list("code", flat=True)) == {"SH-PD"}
    assert set(node_queryset(world.east_manager).values_list("code", flat=True)) == {"EAST", "SH-PD", "HZ-XH"}
    assert node_queryset(world.hq_manager).count() == 6
    assert list(employee_queryset(world.tianhe_agent)) == []
    assert list(employee_queryset(world.east_manager)) == [world.tech_employee]
