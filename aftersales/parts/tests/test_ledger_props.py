"""Property test of the ledger: random sequences of receive, reserve, release, adjust, scrap,
transfers (create, ship, receive, cancel) and the parts of an order (request, consume, release,
old-parts return), valid and invalid alike.

An oracle reads the stock before each stock operation and says what must come of it: a 400
for bad input, a 409 for too little stock or a transfer in the wrong state, else the exact
balances after. Whatever happened, after every step the ledger contract holds
(``ledger_problems() == []``), no quantity is negative, and the stock rows equal a
recomputation from the movements done here in Python."""

from __future__ import annotations

from collections import defaultdict

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from aftersales.core.errors import Conflict, DomainError, ValidationFailed
from aftersales.parts import selectors, services
from aftersales.parts.models import (
    Movement,
    PartRequest,
    RequestStatus,
    Stock,
    Transfer,
    TransferStatus,
)
from aftersales.tickets import workflow
from aftersales.tickets.models import Status

from .conftest import order_in

pytestmark = pytest.mark.django_db

# Mostly quantities that can work, sometimes ones that cannot (bad or too many).
QTY = st.one_of(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.sampled_from([0, -1, 7, 100]))


def bal(wh_id: int, part_id: int) -> tuple[int, int, int]:
    s = Stock.objects.filter(warehouse_id=wh_id, part_id=part_id).first()
    return (s.on_hand, s.reserved, s.defective) if s else (0, 0, 0)


def claimed(wh_id: int, part_id: int) -> int:
    return services._claimed_defective(wh_id, part_id)


def recompute_problems() -> list[str]:
    """The contract checked again, in Python, from the movements."""
    out = []
    run: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for m in Movement.objects.order_by("id"):
        r = run[(m.warehouse_id, m.part_id)]
        r[0] += m.on_hand_delta
        r[1] += m.reserved_delta
        r[2] += m.defective_delta
        if [m.on_hand_after, m.reserved_after, m.defective_after] != r:
            out.append(f"movement {m.pk}: after {m.on_hand_after, m.reserved_after, m.defective_after} != {r}")
        if min(r) < 0 or r[1] > r[0]:
            out.append(f"movement {m.pk}: negative {r}")
    rows = {(s.warehouse_id, s.part_id): [s.on_hand, s.reserved, s.defective] for s in Stock.objects.all()}
    for key, r in run.items():
        if rows.get(key) != r:
            out.append(f"stock {key}: row {rows.get(key)} != movements {r}")
    for key, r in rows.items():
        if key not in run and r != [0, 0, 0]:
            out.append(f"stock {key}: {r} without movements")
        if min(r) < 0 or r[1] > r[0]:
            out.append(f"stock {key}: negative {r}")
    return out


def outcome(fn) -> int:
    try:
        fn()
    except ValidationFailed:
        return 400
    except Conflict:
        return 409
    return 200


class World:
    def __init__(self, w, order):
        self.w = w
        self.order = order
        self.van = services.van_for(w.tech_employee)
        self.whs = [w.wh_pudong, w.wh_east, self.van]
        self.parts = [w.cap, w.belt]
        for wh in (w.wh_pudong, w.wh_east):
            for part in self.parts:
                services.stock_receive(user=None, warehouse_id=wh.pk, part_id=part.pk, qty=5)
        services.stock_receive(user=None, warehouse_id=self.van.pk, part_id=w.cap.pk, qty=2)


def step_stock(x: World, data) -> None:
    w = x.w
    op = data.draw(st.sampled_from(["receive", "reserve", "release", "adjust", "scrap", "transfer"]), label="op")
    wh = data.draw(st.sampled_from(x.whs), label="wh")
    part = data.draw(st.sampled_from(x.parts), label="part")
    oh, rs, df = bal(wh.pk, part.pk)
    kw = {"user": w.admin, "warehouse_id": wh.pk, "part_id": part.pk}
    if op == "receive":
        q = data.draw(QTY, label="qty")
        want, after = (400, None) if q < 1 else (200, (oh + q, rs, df))
        got = outcome(lambda: services.stock_receive(**kw, qty=q))
    elif op in ("reserve", "release"):
        q = data.draw(QTY, label="qty")
        if q < 1 or q > services.MAX_QTY:
            want, after = 400, None
        elif op == "reserve":
            want, after = (409, None) if q > oh - rs else (200, (oh, rs + q, df))
        else:
            held = services.held_reserved(wh.pk, part.pk)  # what requests and transfers hold stays
            want, after = (409, None) if q > rs - held else (200, (oh, rs - q, df))
        fn = services.stock_reserve if op == "reserve" else services.stock_release
        got = outcome(lambda: fn(**kw, qty=q))
    elif op == "adjust":
        counted = data.draw(st.integers(-1, 9), label="counted")
        reason = data.draw(st.sampled_from(["", "盘点"]), label="reason")
        if counted < 0 or not reason or counted < rs:
            want, after = 400, None
        else:
            want, after = 200, (counted, rs, df)
        got = outcome(lambda: services.stock_adjust(**kw, counted=counted, reason=reason))
    elif op == "scrap":
        q = data.draw(QTY, label="qty")
        defective = data.draw(st.booleans(), label="defective")
        if q < 1:
            want, after = 400, None
        elif defective:
            have = df - claimed(wh.pk, part.pk)
            want, after = (409, None) if q > have else (200, (oh, rs, df - q))
        else:
            want, after = (409, None) if q > oh - rs else (200, (oh - q, rs, df))
        got = outcome(lambda: services.stock_scrap(**kw, qty=q, reason="报废", defective=defective))
    else:
        dest = data.draw(st.sampled_from(x.whs), label="dest")
        q = data.draw(QTY, label="qty")
        if q < 1 or dest.pk == wh.pk:
            want, after = 400, None
        else:
            want, after = (409, None) if q > oh - rs else (200, (oh, rs + q, df))
        got = outcome(lambda: services.transfer_create(user=w.admin, source_id=wh.pk, destination_id=dest.pk,
                                                       lines=[{"part_id": part.pk, "qty": q}]))
    event(f"{op} {got}")
    assert got == want, (op, wh.code, part.code, (oh, rs, df), got, want)
    assert bal(wh.pk, part.pk) == (after or (oh, rs, df)), (op, wh.code, part.code)


def step_transfer(x: World, data) -> None:
    ts = list(Transfer.objects.order_by("-id")[:5])
    if not ts:
        return
    t = data.draw(st.sampled_from(ts), label="transfer")
    fitting = {TransferStatus.REQUESTED: ["ship", "ship", "cancel"], TransferStatus.SHIPPED: ["receive"]}
    if t.status in fitting and data.draw(st.integers(0, 9), label="fit") < 7:
        op = data.draw(st.sampled_from(fitting[t.status]), label="op")
    else:
        op = data.draw(st.sampled_from(["ship", "receive", "cancel"]), label="op")
    lines = list(t.lines.all())
    src = {ln.part_id: bal(t.source_id, ln.part_id) for ln in lines}
    dst = {ln.part_id: bal(t.destination_id, ln.part_id) for ln in lines}
    need = {"ship": TransferStatus.REQUESTED, "receive": TransferStatus.SHIPPED, "cancel": TransferStatus.REQUESTED}
    want = 200 if t.status == need[op] else 409
    fn = {"ship": services.transfer_ship, "receive": services.transfer_receive}.get(op)
    if fn is not None:
        got = outcome(lambda: fn(user=x.w.admin, transfer_id=t.pk))
    else:
        got = outcome(lambda: services.transfer_cancel(user=x.w.admin, transfer_id=t.pk, reason="取消"))
    event(f"transfer {op} {got}")
    assert got == want, (op, t.status, got)
    if got != 200:
        return
    for ln in lines:
        oh, rs, df = src[ln.part_id]
        if op == "ship":
            exp = (oh, rs, df - ln.qty) if t.defective else (oh - ln.qty, rs - ln.qty, df)
            assert bal(t.source_id, ln.part_id) == exp
        elif op == "cancel":
            assert bal(t.source_id, ln.part_id) == (oh, rs - (0 if t.defective else ln.qty), df)
        else:
            oh, rs, df = dst[ln.part_id]
            got_oh, got_rs, got_df = bal(t.destination_id, ln.part_id)
            if t.defective:
                assert (got_oh, got_rs, got_df) == (oh, rs, df + ln.qty)
            else:  # a request for an order takes what arrived for it
                assert got_oh == oh + ln.qty and got_df == df and rs <= got_rs <= rs + ln.qty


def step_order(x: World, data) -> None:
    w = x.w
    op = data.draw(st.sampled_from(["request", "consume", "release", "return", "advance"]), label="op")
    o = type(x.order).objects.get(pk=x.order.pk)
    try:
        if op == "request":
            part = data.draw(st.sampled_from([w.cap, w.cap, w.cap, w.belt]), label="part")  # the belt does not fit
            services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=part.pk,
                                  qty=data.draw(st.sampled_from([1, 1, 2, 0]), label="qty"))
        elif op in ("consume", "release"):
            rs = list(PartRequest.objects.filter(order=o).order_by("id"))
            if not rs:
                return
            r = data.draw(st.sampled_from(rs), label="request")
            if op == "consume":
                services.part_consume(user=w.pudong_tech, request_id=r.pk,
                                      old_returned=data.draw(st.booleans(), label="old"))
            else:
                services.part_release(user=w.pudong_tech, request_id=r.pk)
        elif op == "return":
            services.old_parts_return(user=w.pudong_tech, warehouse_id=x.van.pk)
        elif o.status == Status.ACCEPTED:  # back to the customer after the parts came
            for name in ("depart", "arrive", "diagnose", "repair"):
                workflow.move(o.pk, name, user=w.pudong_tech, **({"diagnosis": "压缩机故障"} if name == "repair" else {}))
        event(f"order {op} ok")
    except DomainError as e:
        event(f"order {op} {e.status}")
        assert e.status in (400, 404, 409), e


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(n=st.integers(5, 30), data=st.data())
def test_random_operations_keep_the_ledger(pw, n, data):
    w = pw
    with transaction.atomic():  # each example starts from the same stock
        order = order_in(w, "repairing")
        x = World(w, order)
        for _i in range(n):
            kind = data.draw(st.sampled_from(["stock", "stock", "stock", "transfer", "transfer", "order", "order"]),
                             label="kind")
            {"stock": step_stock, "transfer": step_transfer, "order": step_order}[kind](x, data)
            assert selectors.ledger_problems() == []
            assert recompute_problems() == []
            assert not Stock.objects.filter(on_hand__lt=0).exists()
            assert not Stock.objects.filter(reserved__lt=0).exists()
            assert not Stock.objects.filter(defective__lt=0).exists()
        # every request is where its status says
        for r in PartRequest.objects.filter(order=order, status=RequestStatus.READY):
            assert bal(r.van_id, r.part_id)[1] >= r.qty
        transaction.set_rollback(True)
