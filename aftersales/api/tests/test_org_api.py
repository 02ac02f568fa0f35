"""The organisation endpoints: permission (403), scope (404), validation (400), audit."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from aftersales.conftest import make_user
from aftersales.org.models import Certification, CertificationType, Coverage, Employee, RoleAssignment
from aftersales.org.roles import Role
from aftersales.records.models import AuditEntry

from .conftest import ApiClient, errors_of

pytestmark = pytest.mark.django_db


def audited(action, **kw) -> bool:
    return AuditEntry.objects.filter(action=action, **kw).exists()


@pytest.fixture
def staff(world):
    """An employee in Tianhe and a certificate type."""
    u = make_user("tianhe_tech", Role.TECHNICIAN, world.tianhe)
    world.tianhe_employee = Employee.objects.create(user=u, node=world.tianhe, employee_no="T0100", name="陈师傅",
                                                    hire_date=dt.date(2021, 5, 1), grade="senior")
    world.tianhe_employee.skills.add(world.wm)
    world.cert_type = CertificationType.objects.create(code="ELEC", name="电工证", validity_months=36)
    return world


# ---------------------------------------------------------------- nodes

def test_node_list_is_scoped(world):
    r = ApiClient(world.trainer).get("/org/nodes")
    assert r.status_code == 200
    assert [n["code"] for n in r.json()["items"]][0] == "HQ"
    assert len(r.json()["items"]) == 6
    r = ApiClient(world.pudong_agent).get("/org/nodes")
    assert [n["code"] for n in r.json()["items"]] == ["SH-PD"]


def test_node_list_filters(world):
    c = ApiClient(world.hq_manager)
    assert {n["code"] for n in c.get("/org/nodes", {"kind": "outlet"}).json()["items"]} == {"SH-PD", "HZ-XH", "GZ-TH"}
    assert {n["code"] for n in c.get("/org/nodes", {"parent_id": world.east.id}).json()["items"]} == {"SH-PD", "HZ-XH"}
    r = c.get("/org/nodes", {"kind": "planet"})
    assert r.status_code == 400 and "kind" in errors_of(r)


def test_node_list_pages(world):
    c = ApiClient(world.hq_manager)
    first = c.get("/org/nodes", {"limit": 4}).json()
    assert len(first["items"]) == 4 and first["next_cursor"]
    rest = c.get("/org/nodes", {"limit": 4, "cursor": first["next_cursor"]}).json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    assert not {n["id"] for n in first["items"]} & {n["id"] for n in rest["items"]}


def test_node_detail_and_scope(world):
    r = ApiClient(world.pudong_agent).get(f"/org/nodes/{world.pudong.id}")
    assert r.status_code == 200
    assert r.json()["coverage"] == [{"province": "上海市", "city": "上海市", "district": "浦东新区"}]
    assert r.json()["parent"]["code"] == "EAST"
    assert ApiClient(world.pudong_agent).get(f"/org/nodes/{world.tianhe.id}").status_code == 404
    assert ApiClient(world.customer_user).get(f"/org/nodes/{world.pudong.id}").status_code == 403


def test_node_create(world):
    data = {"kind": "outlet", "code": "SH-MH", "name": "上海闵行网点", "parent_id": world.east.id,
            "province": "上海市", "city": "上海市", "district": "闵行区"}
    assert ApiClient(world.trainer).post("/org/nodes", data).status_code == 403
    r = ApiClient(world.hq_manager).post("/org/nodes", data)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["path"] == f"{world.east.path}{body['id']}/" and body["coverage"] == []
    assert audited("node.create", object_id=str(body["id"]))


def test_node_create_bad_input(world):
    c = ApiClient(world.hq_manager)
    r = c.post("/org/nodes", {"kind": "planet", "name": "x"})
    assert r.status_code == 400
    assert set(errors_of(r)) == {"kind", "code"}
    r = c.post("/org/nodes", {"kind": "outlet", "code": "SH-PD", "name": "重复", "parent_id": world.hq.id})
    assert r.status_code == 400
    assert {"code", "parent_id", "district"} <= set(errors_of(r))


def test_coverage_set(world):
    c = ApiClient(world.hq_manager)
    r = c.put(f"/org/nodes/{world.pudong.id}/coverage", {"districts": [
        {"province": "上海市", "city": "上海市", "district": "浦东新区"},
        {"province": "上海市", "city": "上海市", "district": "南汇区"}]})
    assert r.status_code == 200, r.content
    assert len(r.json()) == 2
    assert Coverage.objects.filter(outlet=world.pudong).count() == 2
    assert audited("node.coverage", object_id=str(world.pudong.id))
    r = c.put(f"/org/nodes/{world.pudong.id}/coverage", {"districts": [
        {"province": "广东省", "city": "广州市", "district": "天河区"}]})
    assert r.status_code == 400
    assert "广州天河网点" in errors_of(r)["districts[0]"][0]
    r = c.put(f"/org/nodes/{world.pudong.id}/coverage", {"districts": [{"province": "上海市"}]})
    assert r.status_code == 400
    assert set(errors_of(r)) == {"districts[0].city", "districts[0].district"}


def test_coverage_needs_org_edit(world):
    r = ApiClient(world.pudong_manager).put(f"/org/nodes/{world.pudong.id}/coverage", {"districts": []})
    assert r.status_code == 403


# ---------------------------------------------------------------- employees

def test_employee_list_filters(staff):
    c = ApiClient(staff.hq_manager)
    r = c.get("/org/employees")
    assert r.status_code == 200
    assert [e["employee_no"] for e in r.json()["items"]] == ["T0001", "T0100"]  # 李 before 陈 by code point
    item = r.json()["items"][0]
    assert item["skills"] == ["AC"] and item["node"]["code"] == "SH-PD" and item["username"] == "pudong_tech"
    assert [e["employee_no"] for e in c.get("/org/employees", {"node_id": staff.east.id}).json()["items"]] == ["T0001"]
    assert [e["employee_no"] for e in c.get("/org/employees", {"grade": "senior"}).json()["items"]] == ["T0100"]
    assert [e["employee_no"] for e in c.get("/org/employees", {"skill": "wm"}).json()["items"]] == ["T0100"]
    assert [e["employee_no"] for e in c.get("/org/employees", {"q": "陈"}).json()["items"]] == ["T0100"]
    assert c.get("/org/employees", {"active": "false"}).json()["items"] == []
    r = c.get("/org/employees", {"node_id": 999999})
    assert r.status_code == 400 and "node_id" in errors_of(r)


def test_employee_list_scope_and_permission(staff):
    r = ApiClient(staff.east_manager).get("/org/employees")
    assert [e["employee_no"] for e in r.json()["items"]] == ["T0001"]
    assert ApiClient(staff.pudong_agent).get("/org/employees").status_code == 403


def test_employee_detail(staff):
    Certification.objects.create(employee=staff.tech_employee, type=staff.cert_type, number="E-1",
                                 issued_on=dt.date(2023, 1, 1), expires_on=dt.date(2026, 1, 1))
    r = ApiClient(staff.east_manager).get(f"/org/employees/{staff.tech_employee.id}")
    assert r.status_code == 200
    assert r.json()["certifications"][0]["type"] == "ELEC"
    assert r.json()["skills"] == ["AC"]
    assert ApiClient(staff.east_manager).get(f"/org/employees/{staff.tianhe_employee.id}").status_code == 404


def test_employee_create(staff):
    data = {"node_id": staff.pudong.id, "username": "pd_tech2", "name": "王师傅", "employee_no": "T0002",
            "hire_date": "2024-03-01", "grade": "junior", "phone": "+86 139-0000-0001", "skills": ["AC", "WM"]}
    assert ApiClient(staff.trainer).post("/org/employees", data).status_code == 403
    r = ApiClient(staff.pudong_manager).post("/org/employees", data)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["skills"] == ["AC", "WM"] and body["phone"] == "13900000001" and body["certifications"] == []
    assert get_user_model().objects.filter(username="pd_tech2").exists()
    assert audited("employee.create", object_id=str(body["id"]))
    r = ApiClient(staff.pudong_manager).post("/org/employees", {**data, "node_id": staff.tianhe.id,
                                                                 "username": "x", "employee_no": "X1"})
    assert r.status_code == 403


def test_employee_create_bad_input(staff):
    c = ApiClient(staff.pudong_manager)
    r = c.post("/org/employees", {"node_id": staff.pudong.id, "username": "pudong_tech", "name": "重名",
                                  "employee_no": "T0001", "hire_date": "2024-02-30", "phone": "12345",
                                  "grade": "guru"})
    assert r.status_code == 400
    errs = errors_of(r)
    assert set(errs) == {"hire_date", "grade"}  # schema errors first
    assert errs["hire_date"] == ["日期格式不正确，应为 YYYY-MM-DD。"]
    r = c.post("/org/employees", {"node_id": staff.pudong.id, "username": "pudong_tech", "name": "重名",
                                  "employee_no": "T0001", "hire_date": "2024-02-01", "phone": "12345",
                                  "skills": ["XX"]})
    assert r.status_code == 400
    assert set(errors_of(r)) == {"username", "employee_no", "phone", "skills"}
    r = c.post("/org/employees", {})
    assert r.status_code == 400
    assert set(errors_of(r)) == {"node_id", "username", "name", "employee_no", "hire_date"}


def test_employee_update(staff):
    url = f"/org/employees/{staff.tech_employee.id}"
    r = ApiClient(staff.pudong_manager).patch(url, {"grade": "senior", "skills": ["AC", "WM"]})
    assert r.status_code == 200, r.content
    assert r.json()["grade"] == "senior" and r.json()["skills"] == ["AC", "WM"]
    assert r.json()["name"] == "李师傅"  # untouched
    assert audited("employee.update", object_id=str(staff.tech_employee.id))
    assert ApiClient(staff.quality).patch(url, {"grade": "junior"}).status_code == 403
    r = ApiClient(staff.east_manager).patch(f"/org/employees/{staff.tianhe_employee.id}", {"grade": "junior"})
    assert r.status_code == 404
    r = ApiClient(staff.pudong_manager).patch(url, {"probation_end": "2000-01-01", "active": "maybe"})
    assert r.status_code == 400 and set(errors_of(r)) == {"active"}
    r = ApiClient(staff.pudong_manager).patch(url, {"probation_end": "2000-01-01"})
    assert r.status_code == 400 and set(errors_of(r)) == {"probation_end"}


def test_certifications(staff):
    c = ApiClient(staff.pudong_manager)
    url = f"/org/employees/{staff.tech_employee.id}/certifications"
    today = timezone.localdate()
    r = c.post(url, {"type": "ELEC", "number": "E-9", "issued_on": str(today - dt.timedelta(days=700)),
                     "expires_on": str(today + dt.timedelta(days=10))})
    assert r.status_code == 201, r.content
    assert audited("certification.add", object_id=str(r.json()["id"]))
    r = c.post(url, {"type": "NOPE", "number": "E-9", "issued_on": "2024-01-01", "expires_on": "2023-01-01"})
    assert r.status_code == 400
    assert set(errors_of(r)) == {"type", "expires_on"}
    assert ApiClient(staff.east_manager).post(
        f"/org/employees/{staff.tianhe_employee.id}/certifications",
        {"type": "ELEC", "number": "E-10", "issued_on": "2024-01-01"}).status_code == 404
    r = ApiClient(staff.east_manager).get("/org/certifications/expiring", {"within_days": 30})
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["number"] for i in items] == ["E-9"] and items[0]["employee"]["employee_no"] == "T0001"
    assert items[0]["expired"] is False
    assert ApiClient(staff.east_manager).get("/org/certifications/expiring", {"within_days": 5}).json()["items"] == []
    r = ApiClient(staff.east_manager).get("/org/certifications/expiring", {"within_days": -1})
    assert r.status_code == 400 and "within_days" in errors_of(r)
    assert ApiClient(staff.pudong_agent).get("/org/certifications/expiring").status_code == 403


# ---------------------------------------------------------------- me and roles

def test_me(world):
    r = ApiClient(world.east_manager).get("/org/me")
    assert r.status_code == 200
    body = r.json()
    assert body["roles"] == [{"role": "centre_manager", "label": "服务中心经理", "node_kind": "centre",
                              "node": {"id": world.east.id, "code": "EAST", "name": "华东服务中心"}}]
    perms = {p["code"]: p["everywhere"] for p in body["permissions"]}
    assert perms["staff.edit"] is False and "customer.pii" not in perms
    perms = {p["code"]: p["everywhere"] for p in ApiClient(world.hq_manager).get("/org/me").json()["permissions"]}
    assert perms["catalog.edit"] is True


def test_role_assign_and_revoke(world):
    data = {"user_id": world.nobody.id, "role": "trainer", "node_id": world.east.id}
    assert ApiClient(world.trainer).post("/org/roles", data).status_code == 403
    r = ApiClient(world.hq_manager).post("/org/roles", data)
    assert r.status_code == 201, r.content
    rid = r.json()["id"]
    assert r.json()["role_label"] == "培训师"
    assert audited("role.assign", object_id=str(rid))
    assert ApiClient(world.trainer).delete(f"/org/roles/{rid}").status_code == 403
    assert ApiClient(world.pudong_manager).delete(f"/org/roles/{rid}").status_code == 404  # east is above pudong
    assert ApiClient(world.east_manager).delete(f"/org/roles/{rid}").status_code == 204
    assert not RoleAssignment.objects.filter(pk=rid).exists()
    assert audited("role.revoke", object_id=str(rid))


def test_role_assign_limits(world):
    c = ApiClient(world.pudong_manager)
    r = c.post("/org/roles", {"user_id": world.nobody.id, "role": "quality", "node_id": world.pudong.id})
    assert r.status_code == 400 and "node_id" in errors_of(r)
    r = c.post("/org/roles", {"user_id": world.nobody.id, "role": "agent", "node_id": world.pudong.id})
    assert r.status_code == 403  # an agent may import; the outlet manager may not
    r = c.post("/org/roles", {"user_id": world.nobody.id, "role": "emperor", "node_id": world.pudong.id})
    assert r.status_code == 400 and "role" in errors_of(r)
    tianhe_role = RoleAssignment.objects.get(user=world.tianhe_agent)
    assert c.delete(f"/org/roles/{tianhe_role.id}").status_code == 404
