"""Fixtures of the assets tests: ``world`` with loaner pools, a manager at Tianhe, repair
orders of any age and status, and tools.

    pudong   BY-PD-001 air conditioner (20 元/day), BY-PD-002 washing machine
    hangzhou BY-HZ-001 air conditioner
    tianhe   BY-TH-001 air conditioner          (tianhe_manager manages only this one)

Orders are made and walked through the workflow with the tickets tests' helpers (``team``:
the other apps' reactions to moves switched off); ``aged`` moves an order's creation back.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from aftersales.assets.models import Loaner, Tool
from aftersales.conftest import make_user
from aftersales.org.roles import Role
from aftersales.tickets.models import WorkOrder
from aftersales.tickets.tests.order_fixtures import *  # noqa: F403 - the fixtures catalog, quiet, team
from aftersales.tickets.tests.order_fixtures import PATHS, make_order, walk

__all__ = ["Api", "aged", "loaner", "repair", "tool"]


def loaner(node, asset_no, category, **kw) -> Loaner:
    now = timezone.now()
    kw.setdefault("model_name", f"{category.name}备用机")
    return Loaner.objects.create(node=node, category=category, asset_no=asset_no, created_at=now, updated_at=now, **kw)


def tool(node, code, *, holder=None, due_on=None, check_kind="calibration", interval_months=12, **kw) -> Tool:
    now = timezone.now()
    if check_kind != "none" and due_on is None:
        due_on = timezone.localdate() + dt.timedelta(days=200)
    kw.setdefault("name", "数字万用表")
    kw.setdefault("state", "in_use" if holder is not None else "in_store")
    return Tool.objects.create(node=node, code=code, holder=holder, check_kind=check_kind,
                               interval_months=interval_months if check_kind != "none" else None,
                               due_on=due_on if check_kind != "none" else None, created_at=now, updated_at=now, **kw)


def aged(order, days: float) -> WorkOrder:
    """The order as if created ``days`` days ago."""
    WorkOrder.objects.filter(pk=order.pk).update(created_at=timezone.now() - dt.timedelta(days=days))
    order.refresh_from_db()
    return order


def repair(w, *, days: float = 0, status: str = "classified", tianhe: bool = False, **kw) -> WorkOrder:
    """A repair order of Pudong's (or Tianhe's) customer, walked to ``status``, created ``days`` ago."""
    if tianhe:
        kw.update(customer_id=w.c_tianhe.pk, unit_id=w.u_tianhe.pk, user=w.tianhe_agent, fault_category=None)
    o = make_order(w, **kw)
    if status != "received":
        o = walk(w, o, PATHS[status]) if not tianhe else _tianhe_walk(w, o, status)
    return aged(o, days) if days else o


def _tianhe_walk(w, o, status):
    from aftersales.tickets import workflow

    assert status in ("classified", "cancelled"), status
    o = workflow.move(o.pk, "classify", user=w.tianhe_agent, type="repair", priority="normal")
    if status == "cancelled":
        o = workflow.move(o.pk, "cancel", user=w.tianhe_agent, reason="客户取消")
    return o


@pytest.fixture
def aw(team):
    w = team
    w.tianhe_manager = make_user("tianhe_manager", Role.OUTLET_MANAGER, w.tianhe)
    w.hangzhou_manager = make_user("hangzhou_manager", Role.OUTLET_MANAGER, w.hangzhou)
    w.l_ac = loaner(w.pudong, "BY-PD-001", w.ac, daily_cost=Decimal("20.00"))
    w.l_wm = loaner(w.pudong, "BY-PD-002", w.wm, daily_cost=Decimal("15.00"))
    w.l_hz = loaner(w.hangzhou, "BY-HZ-001", w.ac)
    w.l_th = loaner(w.tianhe, "BY-TH-001", w.ac)
    return w


class Api:
    """A JSON client for ``/api/assets`` signed in as ``user``."""

    def __init__(self, user):
        self.client = Client()
        self.client.force_login(user)

    def get(self, path, params=None):
        return self.client.get("/api/assets" + path, params or {})

    def _send(self, method, path, data):
        body = data if isinstance(data, str) else json.dumps(data or {}, default=str)
        return getattr(self.client, method)("/api/assets" + path, body, content_type="application/json")

    def post(self, path, data=None):
        return self._send("post", path, data)

    def patch(self, path, data=None):
        return self._send("patch", path, data)

    def put(self, path, data=None):
        return self._send("put", path, data)
