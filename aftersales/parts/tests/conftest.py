"""Fixtures for the stock: warehouses on every tier, three parts, a second technician, managers of
other outlets, and orders walked to any status (``tickets.tests.order_fixtures``, with the other
apps' reactions to the order flow left on).

    HQ 总部仓 WH-HQ (Beijing)
    ├── 华东 WH-EAST (Shanghai)          ├── 华南 WH-SOUTH (Guangzhou)
    │   ├── 浦东 WH-PD   李师傅 van      │   └── 天河 WH-TH
    │   └── 杭州 WH-HZ

Parts: ``comp`` (压缩机, a main part COMP of the AC model, serialised, fits KFR-35GW),
``cap`` (启动电容, no model listed: fits the AC category), ``belt`` (洗衣机皮带, fits XQG100).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.test import Client

from aftersales.conftest import make_user
from aftersales.org.models import Employee
from aftersales.org.roles import Role
from aftersales.parts.models import Part, Warehouse, WarehouseKind
from aftersales.tickets import workflow
from aftersales.tickets.fault_catalog import ensure_fault_catalog
from aftersales.tickets.tests.order_fixtures import DEFAULTS, PATHS, actor_for, make_order  # noqa: F401

COORDS = {"hq": ("39.904200", "116.407400"), "east": ("31.230400", "121.473700"),
          "south": ("23.129100", "113.264400"), "pudong": ("31.230400", "121.544000"),
          "hangzhou": ("30.274100", "120.155100"), "tianhe": ("23.129100", "113.361200")}


def make_warehouse(code, name, kind, node, holder=None):
    return Warehouse.objects.create(code=code, name=name, kind=kind, node=node, holder=holder)


@pytest.fixture
def pw(world):
    """``world`` with warehouses, parts, a second Pudong technician and the fault catalogue."""
    w = world
    ensure_fault_catalog()
    for attr, (lat, lng) in COORDS.items():
        n = getattr(w, attr)
        n.lat, n.lng = Decimal(lat), Decimal(lng)
        n.save(update_fields=["lat", "lng"])
    w.pudong_tech2 = make_user("pudong_tech2", Role.TECHNICIAN, w.pudong)
    w.tech2_employee = Employee.objects.create(user=w.pudong_tech2, node=w.pudong, employee_no="T0002",
                                              name="王师傅", hire_date=dt.date(2021, 5, 1))
    w.tianhe_manager = make_user("tianhe_manager", Role.OUTLET_MANAGER, w.tianhe)
    w.hangzhou_manager = make_user("hangzhou_manager", Role.OUTLET_MANAGER, w.hangzhou)

    w.wh_hq = make_warehouse("WH-HQ", "总部仓", WarehouseKind.HQ, w.hq)
    w.wh_east = make_warehouse("WH-EAST", "华东中心仓", WarehouseKind.CENTRE, w.east)
    w.wh_south = make_warehouse("WH-SOUTH", "华南中心仓", WarehouseKind.CENTRE, w.south)
    w.wh_pudong = make_warehouse("WH-PD", "浦东网点仓", WarehouseKind.OUTLET, w.pudong)
    w.wh_hangzhou = make_warehouse("WH-HZ", "杭州网点仓", WarehouseKind.OUTLET, w.hangzhou)
    w.wh_tianhe = make_warehouse("WH-TH", "天河网点仓", WarehouseKind.OUTLET, w.tianhe)

    w.comp = Part.objects.create(code="P-COMP-35", name="压缩机", category=w.ac, main_part_code="COMP",
                                 serialised=True, unit_cost=Decimal("800.00"))
    w.comp.fits.add(w.ac_model)
    w.cap = Part.objects.create(code="P-CAP-35", name="启动电容", category=w.ac, unit_cost=Decimal("15.00"))
    w.belt = Part.objects.create(code="P-BELT-100", name="洗衣机皮带", category=w.wm, unit_cost=Decimal("30.00"))
    w.belt.fits.add(w.wm_model)
    return w


def order_in(w, status: str, **kw):
    """A repair order of ``c_pudong``'s AC unit walked to ``status`` (technician: 李师傅)."""
    o = make_order(w, **kw)
    for name in PATHS[status]:
        o = workflow.move(o.pk, name, user=actor_for(w, name, o), **DEFAULTS(w, name, o))
    return o


class Api:
    """A JSON client for ``/api/parts`` signed in as ``user``."""

    def __init__(self, user):
        self.client = Client()
        if user is not None:
            self.client.force_login(user)

    def get(self, path, params=None):
        return self.client.get("/api/parts" + path, params or {})

    def post(self, path, data=None):
        return self.client.post("/api/parts" + path, json.dumps(data or {}, default=str),
                                content_type="application/json")

    def put(self, path, data=None):
        return self.client.put("/api/parts" + path, json.dumps(data or {}, default=str),
                               content_type="application/json")
