"""Shared test fixtures: a small organisation with one user per role, and customers in it.

    HQ (/hq/)
    ├── 华东中心 east            ├── 华南中心 south
    │   ├── 浦东网点 pudong      │   └── 天河网点 tianhe
    │   └── 杭州网点 hangzhou

Users (password "pw-12345"): admin, hq_manager, east_manager (centre), pudong_manager,
pudong_agent, pudong_dispatcher, pudong_tech, hangzhou_agent, tianhe_agent, quality (east),
trainer (hq), and the customer users of ``c_pudong`` and ``c_tianhe``.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model

from aftersales.catalog.models import Category, MainPart, ProductModel, WarrantyPolicy
from aftersales.customers.models import Address, Customer, Unit
from aftersales.org.models import Coverage, Employee, Node, NodeKind, RoleAssignment
from aftersales.org.roles import Role

PASSWORD = "pw-12345"


def make_node(kind, code, name, parent=None, **kw) -> Node:
    n = Node.objects.create(kind=kind, code=code, name=name, parent=parent, path="", **kw)
    n.path = f"{parent.path if parent else '/'}{n.pk}/"
    n.save(update_fields=["path"])
    return n


def make_user(username, role=None, node=None, **kw):
    u = get_user_model().objects.create_user(username=username, password=PASSWORD, **kw)
    if role:
        RoleAssignment.objects.create(user=u, role=role, node=node)
    return u


@pytest.fixture
def world(db):
    w = SimpleNamespace()
    w.hq = make_node(NodeKind.HQ, "HQ", "总部")
    w.east = make_node(NodeKind.CENTRE, "EAST", "华东服务中心", w.hq)
    w.south = make_node(NodeKind.CENTRE, "SOUTH", "华南服务中心", w.hq)
    w.pudong = make_node(NodeKind.OUTLET, "SH-PD", "上海浦东网点", w.east, province="上海市", city="上海市",
                         district="浦东新区")
    w.hangzhou = make_node(NodeKind.OUTLET, "HZ-XH", "杭州西湖网点", w.east, province="浙江省", city="杭州市",
                           district="西湖区")
    w.tianhe = make_node(NodeKind.OUTLET, "GZ-TH", "广州天河网点", w.south, province="广东省", city="广州市",
                         district="天河区")
    for outlet in (w.pudong, w.hangzhou, w.tianhe):
        Coverage.objects.create(outlet=outlet, province=outlet.province, city=outlet.city, district=outlet.district)

    w.ac = Category.objects.create(code="AC", name="空调", name_en="Air conditioner")
    w.wm = Category.objects.create(code="WM", name="洗衣机", name_en="Washing machine")
    WarrantyPolicy.objects.create(category=w.ac)
    WarrantyPolicy.objects.create(category=w.wm)
    w.ac_model = ProductModel.objects.create(category=w.ac, code="KFR-35GW", name="挂壁式空调 1.5匹", brand="海尔")
    MainPart.objects.create(model=w.ac_model, code="COMP", name="压缩机")
    MainPart.objects.create(model=w.ac_model, code="FANM", name="风扇电机")
    w.wm_model = ProductModel.objects.create(category=w.wm, code="XQG100", name="滚筒洗衣机 10kg", brand="小天鹅")

    w.admin = make_user("admin", Role.ADMIN, w.hq, is_staff=True, is_superuser=True)
    w.hq_manager = make_user("hq_manager", Role.HQ_MANAGER, w.hq)
    w.east_manager = make_user("east_manager", Role.CENTRE_MANAGER, w.east)
    w.pudong_manager = make_user("pudong_manager", Role.OUTLET_MANAGER, w.pudong)
    w.pudong_agent = make_user("pudong_agent", Role.AGENT, w.pudong)
    w.pudong_dispatcher = make_user("pudong_dispatcher", Role.DISPATCHER, w.pudong)
    w.pudong_tech = make_user("pudong_tech", Role.TECHNICIAN, w.pudong)
    w.hangzhou_agent = make_user("hangzhou_agent", Role.AGENT, w.hangzhou)
    w.tianhe_agent = make_user("tianhe_agent", Role.AGENT, w.tianhe)
    w.quality = make_user("quality", Role.QUALITY, w.east)
    w.trainer = make_user("trainer", Role.TRAINER, w.hq)
    w.nobody = make_user("nobody")
    w.tech_employee = Employee.objects.create(user=w.pudong_tech, node=w.pudong, employee_no="T0001", name="李师傅",
                                              hire_date=dt.date(2020, 3, 1))
    w.tech_employee.skills.add(w.ac)

    w.c_pudong = Customer.objects.create(node=w.pudong, name="张伟", phone="13812345678")
    w.a_pudong = Address.objects.create(customer=w.c_pudong, province="上海市", city="上海市", district="浦东新区",
                                        street="张杨路500号2栋1201室", is_default=True)
    w.c_tianhe = Customer.objects.create(node=w.tianhe, name="王芳", phone="13987654321")
    Address.objects.create(customer=w.c_tianhe, province="广东省", city="广州市", district="天河区",
                           street="天河路385号", is_default=True)
    w.u_pudong = Unit.objects.create(customer=w.c_pudong, model=w.ac_model, serial="AC2025000001",
                                     purchase_date=dt.date.today() - dt.timedelta(days=100), invoice_no="INV-1")
    w.u_tianhe = Unit.objects.create(customer=w.c_tianhe, model=w.wm_model, serial="WM2024000009",
                                     purchase_date=dt.date.today() - dt.timedelta(days=500), invoice_no="INV-2")
    w.customer_user = make_user("c_pudong", Role.CUSTOMER, w.pudong)
    w.c_pudong.user = w.customer_user
    w.c_pudong.save(update_fields=["user"])
    w.customer_user_tianhe = make_user("c_tianhe", Role.CUSTOMER, w.tianhe)
    w.c_tianhe.user = w.customer_user_tianhe
    w.c_tianhe.save(update_fields=["user"])
    return w


# ---------------------------------------------------------------- races on PostgreSQL

def race(n: int, fn, *, timeout: float = 60):
    """Run ``fn(0) … fn(n-1)`` in ``n`` threads released at the same moment, each with its own
    database connection (closed at the end); returns ``[("ok", result) | ("err", exception)]``."""
    import threading

    from django.db import connections

    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        try:
            barrier.wait()
            results[i] = ("ok", fn(i))
        except Exception as e:  # noqa: BLE001 - collected and asserted by the test
            results[i] = ("err", e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    return results


# ---------------------------------------------------------------- markers that must not skip in CI

def unavailable(reason: str):
    """A test whose PostgreSQL or Chromium is missing: skipped outside CI, failed in CI
    (CI=true), so that a broken CI machine cannot pass by skipping."""
    import os

    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: this test must run in CI)", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item):
    """``postgres`` tests need PostgreSQL, ``browser`` tests need Chromium."""
    import os

    from django.conf import settings

    if item.get_closest_marker("postgres") and "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        unavailable("needs PostgreSQL: set DATABASE_URL=postgres://… (make test-pg)")
    if item.get_closest_marker("browser") and not os.access("/usr/bin/chromium", os.X_OK):
        unavailable("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
