"""Random sequences of moves by random people, with and without the fields the moves need.

A small model of the table predicts each outcome — 404 for who may not see the order, 403 for
who may not make the move, 409 for a status (or type) that does not allow it, 400 for a
missing field, else the target status — and after every step the order's history must
satisfy every invariant (``invariants.order_problems``)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aftersales.core.errors import DomainError
from aftersales.tickets import invariants, workflow
from aftersales.tickets.models import OrderEvent, Status
from aftersales.tickets.workflow import ASSIGNEE, MOVES, H

from .order_fixtures import *  # noqa: F403
from .order_fixtures import DEFAULTS, make_order

pytestmark = pytest.mark.usefixtures("quiet")

D = workflow.D
# who: (order.view over pudong, over hangzhou, permissions held over pudong, over hangzhou)
ROLES = {
    "admin": (True, True, {H, D}, {H, D}),
    "east_manager": (True, True, {H, D}, {H, D}),
    "pudong_agent": (True, False, {H}, set()),
    "pudong_dispatcher": (True, False, {D}, set()),
    "hangzhou_agent": (False, True, set(), {H}),
    "quality": (True, True, set(), set()),
    "pudong_tech": (False, False, set(), set()),
    "pudong_tech2": (False, False, set(), set()),
    "customer_user": (False, False, set(), set()),
    "tianhe_agent": (False, False, set(), set()),
    "system": (True, True, set(), set()),
}
TECHS = {"pudong_tech": "tech_employee", "pudong_tech2": "tech2_employee"}


class Model:
    """What the table says the order should be."""

    def __init__(self, w, order):
        self.w = w
        self.status = Status.RECEIVED
        self.type = order.type
        self.node = "pudong"
        self.tech = None  # the actor name of the assigned technician
        self.owner = "pudong_agent"
        self.diagnosis = False

    def sees(self, actor: str) -> bool:
        view_p, view_h = ROLES[actor][:2]
        if actor == "system" or actor == self.owner or actor == self.tech:
            return True
        if actor == "customer_user":
            return True
        return view_p if self.node == "pudong" else view_h

    def may(self, actor: str, m) -> bool:
        if actor == "system":
            return m.system
        perms = ROLES[actor][2] if self.node == "pudong" else ROLES[actor][3]
        if ASSIGNEE in m.who and actor == self.tech:
            return True
        return bool(perms & set(m.who))

    def expect(self, actor: str, name: str, with_data: bool) -> int:
        m = MOVES[name]
        if not self.sees(actor):
            return 404
        if not self.may(actor, m):
            return 403
        if self.status not in m.sources or (m.types and self.type not in m.types):
            return 409
        if not with_data and any(k != "diagnosis" or not self.diagnosis for k in m.needs):
            return 400
        return 200

    def apply(self, name: str, data: dict) -> None:
        m = MOVES[name]
        self.status = m.leads_to(self.status)
        if name in ("dispatch", "reassign"):
            self.tech = "pudong_tech" if data["assignee"] == self.w.tech_employee else "pudong_tech2"
        elif name in ("decline", "transfer"):
            self.tech = None
        if name == "transfer":
            self.node = "hangzhou" if self.node == "pudong" else "pudong"
        if name in ("repair", "complete"):
            self.diagnosis = True


def _user(w, actor):
    return None if actor == "system" else getattr(w, actor)


# Moves that turn away from the straight path (drawn less often, so that histories go deep).
DETOURS = {"cancel", "transfer", "escalate", "decline", "reassign", "wait_parts", "wait_customer", "reopen"}


def _draw_step(data, model: Model) -> tuple[str, str, bool]:
    """Mostly a move the status allows, by someone who may, with its fields (so that histories
    go deep); otherwise anything by anyone."""
    if data.draw(st.integers(0, 9), label="kind") < 7:
        legal = [m.name for m in MOVES.values()
                 if model.status in m.sources and (not m.types or model.type in m.types)]
        ahead = [n for n in legal if n not in DETOURS]
        if ahead and data.draw(st.integers(0, 9), label="ahead") < 7:
            legal = ahead
        if legal:
            name = data.draw(st.sampled_from(sorted(legal)), label="move")
            able = [a for a in sorted(ROLES) if model.sees(a) and model.may(a, MOVES[name])]
            if able:
                return name, data.draw(st.sampled_from(able), label="actor"), True
    return (data.draw(st.sampled_from(sorted(MOVES)), label="move"),
            data.draw(st.sampled_from(sorted(ROLES)), label="actor"), data.draw(st.booleans(), label="fields"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(kind=st.sampled_from(["repair", "consultation"]), n=st.integers(1, 30), data=st.data())
def test_random_moves_by_random_people_keep_every_invariant(team, kind, n, data):
    w = team
    extra = {"unit_id": None, "fault_category": None} if kind == "consultation" else {}
    o = make_order(w, type=kind, **extra)
    model = Model(w, o)
    for _i in range(n):
        name, actor, with_data = _draw_step(data, model)
        want = model.expect(actor, name, with_data)
        fields = DEFAULTS(w, name, o) if with_data else {}
        try:
            o = workflow.move(o.pk, name, user=_user(w, actor), **fields)
            got = 200
        except DomainError as e:
            got = e.status
        assert got == want, f"{name} by {actor} (fields: {with_data}) in {model.status}: {got}, expected {want}"
        if got == 200:
            model.apply(name, fields)
        o.refresh_from_db()
        assert o.status == model.status
        assert invariants.order_problems([o.pk]) == []
    assert OrderEvent.objects.filter(order=o).count() == o.event_count
