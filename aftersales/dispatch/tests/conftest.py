"""Fixtures for dispatch: more technicians (with skills, certificates and coordinates), a job
that needs a certificate, dispatchers of other outlets and centres, and order helpers.

    pudong  (31.2304, 121.5440)  李师傅 tech_employee  AC, 制冷证 valid
                                 王师傅 tech2          AC, 制冷证 valid
                                 赵师傅 tech_wm        WM only
                                 钱师傅 tech_expired   AC, 制冷证 expired
    hangzhou (30.2741, 120.1551) 孙师傅 hz_tech        AC, 制冷证 valid
    tianhe  (other centre)       周师傅 th_tech        AC, 制冷证 valid

Air conditioners (AC) need a valid 制冷作业证 for every order type (``CertRequirement``).
The customer's address ``a_pudong`` lies about 1 km from the Pudong outlet.
"""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from aftersales.conftest import make_user
from aftersales.dispatch.models import CertRequirement
from aftersales.org.models import Certification, CertificationType, Employee
from aftersales.org.roles import Role
from aftersales.tickets import services as ts
from aftersales.tickets import workflow


def make_tech(username, name, node, no, skills=(), cert=None, expires_on=None):
    u = make_user(username, Role.TECHNICIAN, node)
    e = Employee.objects.create(user=u, node=node, employee_no=no, name=name, hire_date=dt.date(2021, 1, 1))
    e.skills.set(skills)
    if cert is not None:
        give_cert(e, cert, expires_on)
    return e


def give_cert(e, cert_type, expires_on=None):
    expires_on = expires_on or timezone.localdate() + dt.timedelta(days=400)
    return Certification.objects.create(employee=e, type=cert_type, number=f"C-{e.employee_no}-{expires_on:%Y%m%d}",
                                        issued_on=expires_on - dt.timedelta(days=1095), expires_on=expires_on)


@pytest.fixture
def dw(world):
    """``world`` with the dispatch additions above."""
    w = world
    for node, lat, lng in ((w.pudong, "31.230400", "121.544000"), (w.hangzhou, "30.274100", "120.155100"),
                           (w.tianhe, "23.129100", "113.361200")):
        node.lat, node.lng = Decimal(lat), Decimal(lng)
        node.save(update_fields=["lat", "lng"])
    w.a_pudong.lat, w.a_pudong.lng = Decimal("31.221400"), Decimal("121.544000")
    w.a_pudong.save(update_fields=["lat", "lng"])

    w.refrig = CertificationType.objects.create(code="REFRIG", name="制冷作业证", validity_months=36)
    CertRequirement.objects.create(category=w.ac, order_type="", cert_type=w.refrig)
    give_cert(w.tech_employee, w.refrig)
    w.tech2 = make_tech("pudong_tech2", "王师傅", w.pudong, "T0002", [w.ac], w.refrig)
    w.tech_wm = make_tech("pudong_tech_wm", "赵师傅", w.pudong, "T0003", [w.wm])
    w.tech_expired = make_tech("pudong_tech_exp", "钱师傅", w.pudong, "T0004", [w.ac], w.refrig,
                               expires_on=timezone.localdate() - dt.timedelta(days=30))
    w.hz_tech = make_tech("hangzhou_tech", "孙师傅", w.hangzhou, "T0101", [w.ac], w.refrig)
    w.th_tech = make_tech("tianhe_tech", "周师傅", w.tianhe, "T0201", [w.ac], w.refrig)
    w.hangzhou_dispatcher = make_user("hangzhou_dispatcher", Role.DISPATCHER, w.hangzhou)
    w.tianhe_dispatcher = make_user("tianhe_dispatcher", Role.DISPATCHER, w.tianhe)
    w.east_dispatcher = make_user("east_dispatcher", Role.DISPATCHER, w.east)
    return w


def new_order(w, *, classify=True, unit=True, type="repair", wish=None, customer=None, agent=None):
    """An order of ``c_pudong`` for the AC unit, classified (waiting for dispatch)."""
    customer = customer or w.c_pudong
    agent = agent or w.pudong_agent
    kw = {}
    if wish:
        kw["wish_from"], kw["wish_to"] = wish
    o = ts.order_create(user=agent, customer_id=customer.pk, type=type, channel="phone", problem="空调不制冷",
                        unit_id=(w.u_pudong.pk if customer == w.c_pudong else w.u_tianhe.pk) if unit else None, **kw)
    if classify:
        o = workflow.move(o.pk, "classify", user=agent, type=type, priority="normal")
    return o


def at(hour: int, minute: int = 0, days: int = 1) -> dt.datetime:
    """Local time ``hour:minute`` ``days`` from today."""
    d = timezone.localdate() + dt.timedelta(days=days)
    return dt.datetime.combine(d, dt.time(hour, minute), timezone.get_current_timezone())


def slot(hour: int, hours: int = 2, days: int = 1, minute: int = 0) -> tuple[dt.datetime, dt.datetime]:
    a = at(hour, minute, days)
    return a, a + dt.timedelta(hours=hours)


class Api:
    """A JSON client for ``/api/dispatch`` signed in as ``user``."""

    def __init__(self, user):
        self.client = Client()
        self.client.force_login(user)

    def get(self, path, params=None):
        return self.client.get("/api/dispatch" + path, params or {})

    def post(self, path, data=None):
        return self.client.post("/api/dispatch" + path, json.dumps(data or {}, default=str),
                                content_type="application/json")

    def put(self, path, data=None):
        return self.client.put("/api/dispatch" + path, json.dumps(data or {}, default=str),
                               content_type="application/json")


@pytest.fixture
def api():
    return Api
