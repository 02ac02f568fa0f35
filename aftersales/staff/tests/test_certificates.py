"""Certificates from the staff side: adding and renewing them (``staff.edit`` in scope), the
list of those expiring within 30 days (/team/certificates/ and the API), the reminders to
managers, and the gating in dispatch (``dispatch.selectors`` / ``services`` as they are): a job
of a category with a ``CertRequirement`` is refused for a technician who lacks the certificate or
whose certificate has expired by the appointment day, with the reason, and taken after the
certificate is added or renewed."""

import datetime as dt
import json

import pytest
from dateutil.relativedelta import relativedelta
from django.test import Client
from django.utils import timezone

from aftersales.core.errors import NotFound, ValidationFailed
from aftersales.dispatch import selectors as dispatch_selectors
from aftersales.dispatch import services as dispatch_services
from aftersales.dispatch.models import CertRequirement
from aftersales.notifications.models import Message
from aftersales.org.models import Certification, CertificationType, Employee
from aftersales.records.models import AuditEntry
from aftersales.staff import services_training as services
from aftersales.tickets import services as ts
from aftersales.tickets import workflow
from aftersales.tickets.models import Status

TZ = timezone.get_current_timezone()


def today() -> dt.date:
    return timezone.localdate()


def cert(e, ctype, expires_on, number=None):
    return Certification.objects.create(employee=e, type=ctype, number=number or f"C-{e.employee_no}-{expires_on:%Y%m%d}",
                                        issued_on=expires_on - dt.timedelta(days=1095), expires_on=expires_on)


@pytest.fixture
def cw(world):
    """``world`` with the 制冷作业证 required for air conditioners (every order type), and a
    technician of the south (周师傅) out of the east's scope."""
    w = world
    w.refrig = CertificationType.objects.create(code="REFRIG", name="制冷作业证", validity_months=36)
    w.elec = CertificationType.objects.create(code="ELEC", name="低压电工证", validity_months=24)
    CertRequirement.objects.create(category=w.ac, order_type="", cert_type=w.refrig)
    w.li = w.tech_employee
    w.zhou = Employee.objects.create(user=w.tianhe_agent, node=w.tianhe, employee_no="T0030", name="周师傅",
                                     hire_date=dt.date(2021, 1, 1))
    return w


def new_order(w):
    """An order of ``c_pudong`` for the AC unit, classified (waiting for dispatch)."""
    o = ts.order_create(user=w.pudong_agent, customer_id=w.c_pudong.pk, type="repair", channel="phone",
                        problem="空调不制冷", unit_id=w.u_pudong.pk)
    return workflow.move(o.pk, "classify", user=w.pudong_agent, type="repair", priority="normal")


def slot(days: int, hour: int = 10) -> tuple[dt.datetime, dt.datetime]:
    a = dt.datetime.combine(today() + dt.timedelta(days=days), dt.time(hour), TZ)
    return a, a + dt.timedelta(hours=2)


def li_candidate(w, order, days: int):
    a, b = slot(days)
    cands = dispatch_selectors.candidates(w.pudong_dispatcher, order.pk, starts_at=a, ends_at=b)
    return next(c for c in cands if c.employee.pk == w.li.pk)


def dispatch(w, order, days: int):
    a, b = slot(days)
    return dispatch_services.dispatch_order(user=w.pudong_dispatcher, order_id=order.pk, employee_id=w.li.pk,
                                            starts_at=a, ends_at=b)


def client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


# ================================================================ dispatch gating

def test_missing_certificate_refuses_the_job_until_added(cw):
    o = new_order(cw)
    c = li_candidate(cw, o, 2)
    assert not c.eligible and c.blockers == ["缺少有效的 制冷作业证"]
    with pytest.raises(ValidationFailed) as e:
        dispatch(cw, o, 2)
    assert str(e.value.message) == "李师傅 不能承接此工单。"
    assert [str(m) for m in e.value.errors["employee_id"]] == ["缺少有效的 制冷作业证"]
    o.refresh_from_db()
    assert o.status == Status.CLASSIFIED and o.assignee_id is None
    # another certificate does not help; the required one does
    services.certificate_add(user=cw.pudong_manager, employee_id=cw.li.pk, type_code="ELEC", number="E-1",
                             issued_on=today() - dt.timedelta(days=10))
    assert not li_candidate(cw, o, 2).eligible
    services.certificate_add(user=cw.pudong_manager, employee_id=cw.li.pk, type_code="REFRIG", number="R-1",
                             issued_on=today() - dt.timedelta(days=10))
    c = li_candidate(cw, o, 2)
    assert c.eligible and any("持有有效的 制冷作业证" in r for r in c.reasons)
    o = dispatch(cw, o, 2)
    assert o.status == Status.DISPATCHED and o.assignee_id == cw.li.pk


def test_certificate_expired_before_the_appointment_day_refuses_until_renewed(cw):
    expires = today() + dt.timedelta(days=3)
    old = cert(cw.li, cw.refrig, expires)
    o = new_order(cw)
    assert li_candidate(cw, o, 3).eligible          # valid through its last day
    c = li_candidate(cw, o, 4)
    reason = f"缺少有效的 制冷作业证（已于 {expires.isoformat()} 过期）"
    assert not c.eligible and c.blockers == [reason]
    with pytest.raises(ValidationFailed) as e:
        dispatch(cw, o, 4)
    assert [str(m) for m in e.value.errors["employee_id"]] == [reason]
    renewed = services.certificate_renew(user=cw.pudong_manager, certification_id=old.pk, issued_on=today())
    assert renewed.pk == old.pk and renewed.expires_on == today() + relativedelta(months=36)
    assert li_candidate(cw, o, 4).eligible
    o = dispatch(cw, o, 4)
    assert o.status == Status.DISPATCHED and o.assignee_id == cw.li.pk


def test_expired_certificate_refused_over_the_api_with_the_reason_then_renewed_over_the_api(cw):
    expired = today() - dt.timedelta(days=1)
    old = cert(cw.li, cw.refrig, expired)
    o = new_order(cw)
    a, b = slot(1)
    dispatcher = client(cw.pudong_dispatcher)
    body = json.dumps({"employee_id": cw.li.pk, "starts_at": a.isoformat(), "ends_at": b.isoformat()})
    r = dispatcher.post(f"/api/dispatch/orders/{o.pk}/dispatch", body, content_type="application/json")
    assert r.status_code == 400
    assert r.json()["errors"]["employee_id"] == [f"缺少有效的 制冷作业证（已于 {expired.isoformat()} 过期）"]
    r = client(cw.pudong_manager).post(f"/api/staff/training/certificates/{old.pk}/renew",
                                       json.dumps({"issued_on": today().isoformat(), "number": "R-2026-1"}),
                                       content_type="application/json")
    assert r.status_code == 200, r.content
    assert r.json()["number"] == "R-2026-1" and r.json()["expires_on"] > today().isoformat()
    r = dispatcher.post(f"/api/dispatch/orders/{o.pk}/dispatch", body, content_type="application/json")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == Status.DISPATCHED


def test_the_job_without_a_requirement_is_not_gated(cw):
    CertRequirement.objects.all().delete()
    o = new_order(cw)
    assert li_candidate(cw, o, 2).eligible


# ================================================================ adding and renewing

def test_add_certificate_defaults_its_expiry_and_checks_input(cw):
    c = services.certificate_add(user=cw.pudong_manager, employee_id=cw.li.pk, type_code="ELEC", number="E-9",
                                 issued_on="2025-01-31")
    assert (c.issued_on, c.expires_on) == (dt.date(2025, 1, 31), dt.date(2027, 1, 31))
    assert AuditEntry.objects.filter(object_type="org.certification", object_id=str(c.pk),
                                     action="certification.add").count() == 1
    with pytest.raises(ValidationFailed) as e:
        services.certificate_add(user=cw.pudong_manager, employee_id=cw.li.pk, type_code="ELEC", number="E-9",
                                 issued_on="2025-02-01", expires_on="2025-01-01")
    assert set(e.value.errors) == {"number", "expires_on"}
    with pytest.raises(ValidationFailed) as e:
        services.certificate_add(user=cw.pudong_manager, employee_id=cw.li.pk, type_code="NOPE", number="",
                                 issued_on="2025/02/01")
    assert set(e.value.errors) == {"type", "number", "issued_on"}
    for u in (cw.pudong_manager, cw.pudong_tech, cw.trainer):   # out of staff.edit scope, or none at all
        with pytest.raises(NotFound):
            services.certificate_add(user=u, employee_id=cw.zhou.pk, type_code="ELEC", number="E-10",
                                     issued_on="2025-01-01")


def test_renew_checks_dates_and_number_and_keeps_the_old_dates_in_the_audit(cw):
    old = cert(cw.li, cw.refrig, dt.date(2025, 6, 30), number="R-1")
    cert(cw.zhou, cw.refrig, dt.date(2026, 6, 30), number="R-2")
    with pytest.raises(ValidationFailed) as e:
        services.certificate_renew(user=cw.pudong_manager, certification_id=old.pk, issued_on=old.issued_on,
                                   expires_on="2025-06-01", number="R-2")
    errors = {k: [str(m) for m in v] for k, v in e.value.errors.items()}
    assert set(errors) == {"issued_on", "expires_on", "number"}
    assert errors["number"] == ["该证书编号已登记。"]
    with pytest.raises(ValidationFailed) as e:
        services.certificate_renew(user=cw.pudong_manager, certification_id=old.pk, issued_on="2025-06-01",
                                   expires_on="2025-06-15")
    assert [str(m) for m in e.value.errors["expires_on"]] == ["续期后的有效期须晚于原有效期（2025-06-30）。"]
    with pytest.raises(ValidationFailed) as e:
        services.certificate_renew(user=cw.pudong_manager, certification_id=old.pk, issued_on="x")
    assert list(e.value.errors) == ["issued_on"]
    c = services.certificate_renew(user=cw.pudong_manager, certification_id=old.pk, issued_on="2025-06-01")
    assert (c.number, c.issued_on, c.expires_on) == ("R-1", dt.date(2025, 6, 1), dt.date(2028, 6, 1))
    entry = AuditEntry.objects.get(object_type="org.certification", object_id=str(old.pk), action="certification.renew")
    assert entry.before["expires_on"] == "2025-06-30" and entry.after["expires_on"] == "2028-06-01"
    other = Certification.objects.get(number="R-2")
    with pytest.raises(NotFound):
        services.certificate_renew(user=cw.pudong_manager, certification_id=other.pk, issued_on="2026-01-01")
    with pytest.raises(NotFound):
        services.certificate_renew(user=cw.quality, certification_id=old.pk, issued_on="2026-01-01")


# ================================================================ the expiring list

def test_expiring_page_lists_within_30_days_and_renews(cw):
    soon = cert(cw.li, cw.refrig, today() + dt.timedelta(days=10))
    later = cert(cw.li, cw.elec, today() + dt.timedelta(days=40))
    gone = cert(cw.li, cw.elec, today() - dt.timedelta(days=5), number="E-OLD")
    south = cert(cw.zhou, cw.refrig, today() + dt.timedelta(days=5))
    r = client(cw.pudong_manager).get("/team/certificates/")
    html = r.content.decode()
    assert r.status_code == 200
    assert f'data-cert="{soon.pk}"' in html and f'data-cert="{gone.pk}"' in html
    assert f'data-cert="{later.pk}"' not in html and f'data-cert="{south.pk}"' not in html
    assert f"/team/certificates/{soon.pk}/renew/" in html and "10 天后到期" in html and "已过期" in html
    assert f'data-cert="{later.pk}"' in client(cw.pudong_manager).get("/team/certificates/", {"days": 60}).content.decode()
    # quality sees the list (staff.view) but may not renew or add
    r = client(cw.quality).get("/team/certificates/")
    assert r.status_code == 200 and "/renew/" not in r.content.decode() and "cert-add-form" not in r.content.decode()
    assert client(cw.quality).get(f"/team/certificates/{soon.pk}/renew/").status_code == 403
    assert client(cw.quality).post("/team/certificates/", {"employee_id": cw.li.pk}).status_code == 403
    assert client(cw.pudong_tech).get("/team/certificates/").status_code == 403
    # renew from the page
    c = client(cw.pudong_manager)
    r = c.post(f"/team/certificates/{soon.pk}/renew/", {"issued_on": "2000-01-01", "expires_on": "", "number": ""})
    assert r.status_code == 400 and "续期的发证日期须晚于原发证日期" in r.content.decode()
    r = c.post(f"/team/certificates/{soon.pk}/renew/", {"issued_on": today().isoformat(), "expires_on": "",
                                                        "number": soon.number})
    assert r.status_code == 302
    soon.refresh_from_db()
    assert soon.expires_on > today() + dt.timedelta(days=1000)
    assert f'data-cert="{soon.pk}"' not in c.get("/team/certificates/").content.decode()
    assert c.get(f"/team/certificates/{south.pk}/renew/").status_code == 404


def test_add_from_the_page(cw):
    c = client(cw.pudong_manager)
    r = c.post("/team/certificates/", {"employee_id": cw.li.pk, "type_code": "REFRIG", "number": "",
                                       "issued_on": "2025-01-01", "expires_on": ""})
    assert r.status_code == 400 and "请填写证书编号。" in r.content.decode()
    r = c.post("/team/certificates/", {"employee_id": cw.li.pk, "type_code": "REFRIG", "number": "R-77",
                                       "issued_on": "2025-01-01", "expires_on": ""})
    assert r.status_code == 302
    assert Certification.objects.get(number="R-77").expires_on == dt.date(2028, 1, 1)
    assert c.post("/team/certificates/", {"employee_id": cw.zhou.pk, "type_code": "REFRIG", "number": "R-78",
                                          "issued_on": "2025-01-01"}).status_code == 404


def test_expiring_api(cw):
    soon = cert(cw.li, cw.refrig, today() + dt.timedelta(days=10))
    cert(cw.li, cw.elec, today() + dt.timedelta(days=40))
    r = client(cw.pudong_manager).get("/api/staff/training/certificates/expiring")
    assert r.status_code == 200
    [item] = r.json()["items"]
    assert item["id"] == soon.pk and item["days_left"] == 10 and not item["expired"]
    assert item["employee"]["name"] == "李师傅" and item["type_name"] == "制冷作业证"
    assert client(cw.pudong_tech).get("/api/staff/training/certificates/expiring").status_code == 403
    r = client(cw.pudong_manager).post("/api/staff/training/certificates",
                                       json.dumps({"employee_id": cw.li.pk, "type": "ELEC", "number": "E-5",
                                                   "issued_on": "2025-01-01", "expires_on": "2024-01-01"}),
                                       content_type="application/json")
    assert r.status_code == 400 and r.json()["errors"] == {"expires_on": ["有效期须晚于发证日期。"]}
    r = client(cw.pudong_tech).post("/api/staff/training/certificates",
                                    json.dumps({"employee_id": cw.li.pk, "type": "ELEC", "number": "E-5",
                                                "issued_on": "2025-01-01"}), content_type="application/json")
    assert r.status_code == 403


# ================================================================ reminders

def test_certificate_reminders_once_per_expiry(cw):
    Employee.objects.update(hire_date=today())   # nobody overdue for training
    soon = cert(cw.li, cw.refrig, today() + dt.timedelta(days=30))
    cert(cw.li, cw.elec, today() + dt.timedelta(days=31))
    superseded = cert(cw.zhou, cw.refrig, today() - dt.timedelta(days=100), number="R-OLD")
    cert(cw.zhou, cw.refrig, today() + dt.timedelta(days=600), number="R-NEW")
    assert services.training_reminders() == 1
    [m] = Message.objects.filter(event="cert_expiring")
    assert m.user == cw.pudong_manager and m.ref_id == soon.pk
    assert "制冷作业证" in m.body and soon.expires_on.isoformat() in m.body and "还有 30 天" in m.body
    assert services.training_reminders() == 0
    services.certificate_renew(user=cw.pudong_manager, certification_id=soon.pk, issued_on=today())
    assert services.training_reminders() == 0
    assert not Message.objects.filter(ref_id=superseded.pk).exists()
