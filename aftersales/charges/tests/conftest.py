"""Fixtures of the charges tests: the default price list, spare parts and a technician's van,
a unit out of 三包 (its orders are chargeable) and orders walked to any status.

    cw: ``world`` + the fault catalogue, a second Pudong technician (王师傅), the default price
        list, parts 压缩机 (cost 400) and 启动电容 (cost 12), 李师傅's van, and ``u_old``:
        张伟's second air conditioner, bought 900 days ago (out of 三包 for a non-main-part fault).

Orders reuse the work-order core's helpers (``tickets.tests.order_fixtures``: ``make_order``,
``walk``, ``PATHS``), so every step is a real ``workflow.move`` with the apps' receivers on.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone

from aftersales.conftest import make_user
from aftersales.customers.models import Unit
from aftersales.org.models import Employee
from aftersales.org.roles import Role
from aftersales.parts.models import Part, PartRequest, Stock, Warehouse
from aftersales.tickets.tests.order_fixtures import PATHS, catalog, make_order, walk  # noqa: F401

from .. import services


@pytest.fixture
def cw(catalog):  # noqa: F811 - the fixture imported above
    w = catalog
    w.pudong_tech2 = make_user("pudong_tech2", Role.TECHNICIAN, w.pudong)
    w.tech2_employee = Employee.objects.create(user=w.pudong_tech2, node=w.pudong, employee_no="T0002",
                                              name="王师傅", hire_date=dt.date(2021, 5, 1))
    services.ensure_price_list()
    w.u_old = Unit.objects.create(customer=w.c_pudong, model=w.ac_model, serial="AC2022000077",
                                  purchase_date=timezone.localdate() - dt.timedelta(days=900), invoice_no="INV-9")
    w.comp = Part.objects.create(code="P-COMP-35", name="压缩机", category=w.ac, unit_cost=400, main_part_code="COMP")
    w.cap = Part.objects.create(code="P-CAP-35", name="启动电容", category=w.ac, unit_cost=12)
    w.outlet_wh = Warehouse.objects.create(code="WH-PD", name="浦东网点仓", kind="outlet", node=w.pudong)
    w.van = Warehouse.objects.create(code="VAN-T0001", name="李师傅随车", kind="van", node=w.pudong,
                                     holder=w.tech_employee)
    return w


def order_at(w, status: str, *, chargeable: bool = True):
    """A repair order of 张伟's air conditioner (``u_old``: chargeable; ``u_pudong``: in 三包)
    walked to ``status``."""
    o = make_order(w, unit_id=(w.u_old if chargeable else w.u_pudong).pk)
    return walk(w, o, PATHS[status])


def ask_part(w, order, part, *, qty: int = 1, free: bool | None = False, status: str = "ready") -> PartRequest:
    """A part asked for on the order, reserved in the technician's van (rows written as the
    parts services would: the stock row holds the reservation)."""
    stock, _ = Stock.objects.get_or_create(warehouse=w.van, part=part, defaults={"updated_at": timezone.now()})
    if status in ("ready", "in_transit"):
        stock.on_hand += qty
        stock.reserved += qty
        stock.save()
    return PartRequest.objects.create(order=order, part=part, qty=qty, status=status, van=w.van, source=w.van,
                                      free=free, warranty_reason="三包期外" if free is False else "三包期内",
                                      unit_cost=part.unit_cost, requested_by=w.pudong_tech,
                                      requested_at=timezone.now())


class Api:
    """A JSON client for ``/api/charges`` signed in as ``user`` (anonymous when None)."""

    def __init__(self, user=None):
        self.client = Client()
        if user is not None:
            self.client.force_login(user)

    def get(self, path, params=None):
        return self.client.get("/api/charges" + path, params or {})

    def post(self, path, data=None):
        return self.client.post("/api/charges" + path, json.dumps(data if data is not None else {}, default=str),
                                content_type="application/json")


@pytest.fixture
def api():
    return Api


@pytest.fixture
def sent(monkeypatch):
    """``sent(user, quote)`` → the raw token of the link sent (caught on its way into the SMS)."""
    tokens = []
    real = services.secrets.token_urlsafe

    def spy(n):
        tokens.append(real(n))
        return tokens[-1]

    monkeypatch.setattr(services.secrets, "token_urlsafe", spy)

    def send(user, quote):
        out = services.quote_send(user=user, quote_id=quote.pk)
        assert out.token == tokens[-1]
        return out.token

    return send


def png_bytes(size=(60, 30), blank: bool = False) -> bytes:
    """A small PNG like the signature pad sends."""
    from io import BytesIO

    from PIL import Image, ImageDraw

    im = Image.new("RGB", size, "white")
    if not blank:
        ImageDraw.Draw(im).line([(5, 20), (30, 5), (55, 25)], fill="black", width=3)
    buf = BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()
