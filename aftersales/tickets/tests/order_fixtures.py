"""Shared helpers of the work-order core's tests: a second technician, the fault catalogue,
orders walked to any status through the services, and the actors of each role.

Import what a module needs: ``from .order_fixtures import *`` (fixtures included).
"""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.utils import timezone

from aftersales.conftest import make_user
from aftersales.org.models import Employee
from aftersales.org.roles import Role
from aftersales.tickets import services, workflow
from aftersales.tickets.fault_catalog import ensure_fault_catalog
from aftersales.tickets.signals import order_moved

__all__ = ["DEFAULTS", "PATHS", "actor_for", "catalog", "make_order", "quiet", "team", "walk", "window"]


@pytest.fixture
def quiet():
    """The workflow alone: the other apps' reactions to ``order_moved`` switched off."""
    with mock.patch.object(order_moved, "receivers", []):
        order_moved.sender_receivers_cache.clear()
        yield
    order_moved.sender_receivers_cache.clear()


@pytest.fixture
def catalog(world):
    ensure_fault_catalog()
    return world


@pytest.fixture
def team(catalog, quiet):
    """``world`` with the fault catalogue, a second technician at Pudong and one at Hangzhou."""
    w = catalog
    w.pudong_tech2 = make_user("pudong_tech2", Role.TECHNICIAN, w.pudong)
    w.tech2_employee = Employee.objects.create(user=w.pudong_tech2, node=w.pudong, employee_no="T0002",
                                              name="王师傅", hire_date=dt.date(2021, 5, 1))
    w.hangzhou_tech = make_user("hangzhou_tech", Role.TECHNICIAN, w.hangzhou)
    w.hangzhou_employee = Employee.objects.create(user=w.hangzhou_tech, node=w.hangzhou, employee_no="T0003",
                                                  name="赵师傅", hire_date=dt.date(2019, 1, 1))
    return w


def window(days: int = 1, hours: int = 2) -> tuple[dt.datetime, dt.datetime]:
    start = (timezone.now() + dt.timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    return start, start + dt.timedelta(hours=hours)


def make_order(w, *, user=None, **kw):
    args = dict(customer_id=w.c_pudong.pk, type="repair", channel="phone", problem="空调不制冷，开机半小时还是热风",
                unit_id=w.u_pudong.pk, fault_category="NO_COOLING")
    args.update(kw)
    return services.order_create(user=user or w.pudong_agent, **args)


def DEFAULTS(w, name: str, order=None) -> dict:  # noqa: N802 - a table, read like one
    """The fields a move is given when a test just wants it made."""
    start, end = window()
    other = w.tech2_employee if order is not None and order.assignee_id == w.tech_employee.pk else w.tech_employee
    return {
        "classify": {"type": order.type if order is not None else "repair", "priority": "normal"},
        "answer": {"result": "已电话告知使用方法"},
        "dispatch": {"assignee": w.tech_employee, "appointment_from": start, "appointment_to": end},
        "reassign": {"assignee": other, "appointment_from": start, "appointment_to": end, "reason": "原技师请假"},
        "decline": {"reason": "时间冲突"},
        "wait_parts": {"reason": "压缩机缺货"},
        "wait_customer": {"reason": "客户不在家"},
        "repair": {"diagnosis": "压缩机启动电容损坏"},
        "complete": {"diagnosis": "压缩机启动电容损坏", "result": "更换电容后制冷正常", "actions": "更换启动电容"},
        "reopen": {"reason": "客户反映仍不制冷"},
        "cancel": {"reason": "客户自行修好"},
        "transfer": {"node_id": (w.hangzhou if order is None or order.node_id == w.pudong.pk else w.pudong).pk,
                     "reason": "客户已搬家"},
        "escalate": {"reason": "客户多次来电催促"},
    }.get(name, {})


def actor_for(w, name: str, order=None):
    """Someone who may make move ``name`` on an order of Pudong."""
    who = workflow.MOVES[name].who
    if workflow.ASSIGNEE in who:
        if order is not None and order.assignee_id == w.tech2_employee.pk:
            return w.pudong_tech2
        return w.pudong_tech
    if workflow.H in who:
        return w.pudong_agent
    return w.pudong_dispatcher


# How to reach each status from a new repair order.
_TO_ON_SITE = ["classify", "dispatch", "accept", "depart", "arrive"]
PATHS: dict[str, list[str]] = {
    "received": [],
    "classified": ["classify"],
    "dispatched": ["classify", "dispatch"],
    "accepted": ["classify", "dispatch", "accept"],
    "en_route": ["classify", "dispatch", "accept", "depart"],
    "on_site": _TO_ON_SITE,
    "diagnosing": [*_TO_ON_SITE, "diagnose"],
    "waiting_parts": [*_TO_ON_SITE, "diagnose", "wait_parts"],
    "waiting_customer": [*_TO_ON_SITE, "wait_customer"],
    "repairing": [*_TO_ON_SITE, "diagnose", "repair"],
    "completed": [*_TO_ON_SITE, "diagnose", "repair", "complete"],
    "callback": [*_TO_ON_SITE, "diagnose", "repair", "complete", "callback"],
    "closed": [*_TO_ON_SITE, "diagnose", "repair", "complete", "callback", "close"],
    "cancelled": ["classify", "cancel"],
    "reopened": [*_TO_ON_SITE, "diagnose", "repair", "complete", "callback", "close", "reopen"],
}


def walk(w, order, names: list[str]):
    """Make the moves ``names`` one after the other, each by someone who may."""
    for name in names:
        order = workflow.move(order.pk, name, user=actor_for(w, name, order), **DEFAULTS(w, name, order))
    return order
