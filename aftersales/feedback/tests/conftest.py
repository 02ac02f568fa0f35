"""Fixtures of the feedback tests: orders taken through the workflow to completion."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from aftersales.feedback.models import CallbackTask, Survey
from aftersales.tickets import workflow
from aftersales.tickets.services import order_create


def complete_order(world, *, owner=None, now=None):
    """A repair order of ``c_pudong``'s air conditioner, moved received → … → completed."""
    owner = owner or world.pudong_agent
    now = now or timezone.now()
    o = order_create(user=owner, customer_id=world.c_pudong.pk, type="repair", channel="phone",
                     problem="空调不制冷", unit_id=world.u_pudong.pk)
    workflow.move(o.pk, "classify", user=owner, type="repair", priority="normal")
    start = now + dt.timedelta(hours=2)
    workflow.move(o.pk, "dispatch", user=world.pudong_dispatcher, assignee=world.tech_employee,
                  appointment_from=start, appointment_to=start + dt.timedelta(hours=2))
    for name in ("accept", "depart", "arrive", "diagnose"):
        workflow.move(o.pk, name, user=world.pudong_tech)
    return workflow.move(o.pk, "complete", user=world.pudong_tech, diagnosis="冷媒不足", result="补充冷媒，制冷恢复")


class Round:
    """An order completed and its call-back opened: ``order``, ``task``, ``survey``, ``token``."""

    def __init__(self, order, token):
        self.order = order
        self.token = token
        self.task = CallbackTask.objects.get(order=order)
        self.survey = Survey.objects.get(task=self.task, channel="link")

    def refresh(self):
        for o in (self.order, self.task, self.survey):
            o.refresh_from_db()
        return self


@pytest.fixture
def completed(world, django_capture_on_commit_callbacks, monkeypatch):
    """``completed()`` → a ``Round``: the order completed, the call-back opened by the receiver
    (on commit), the raw token caught on its way into the SMS."""
    from aftersales.feedback import services

    tokens = []
    real = services.secrets.token_urlsafe

    def spy(n):
        tokens.append(real(n))
        return tokens[-1]

    monkeypatch.setattr(services.secrets, "token_urlsafe", spy)

    def make(**kw):
        with django_capture_on_commit_callbacks(execute=True):
            o = complete_order(world, **kw)
        o.refresh_from_db()
        return Round(o, tokens[-1])

    return make


SCORES = {"timeliness": 5, "attitude": 5, "professionalism": 4, "result": 5}


@pytest.fixture
def agent2(world):
    """A second agent of the Pudong outlet (not the orders' owner)."""
    from aftersales.conftest import make_user
    from aftersales.org.roles import Role

    return make_user("pudong_agent2", Role.AGENT, world.pudong)
