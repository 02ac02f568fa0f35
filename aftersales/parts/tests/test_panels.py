"""The parts panels of the order page, the technician's job page and day, and the forms they
post: the technician asks for a part, uses it with its serials and sends the old part back."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from aftersales.parts import panels, services
from aftersales.parts.models import PartRequest, RequestStatus, SerialItem, SerialState, Stock, Transfer
from aftersales.tickets.models import Status

from . import test_pages
from .conftest import order_in

login = test_pages.login
stocked = test_pages.stocked  # the fixture

pytestmark = pytest.mark.django_db


def rendered(fn, user, *args, path="/"):
    request = RequestFactory().get(path)
    request.user = user
    return fn(request, *args)


def ask(client, order, part, qty=1, next_url=None):
    return client.post(f"/parts/orders/{order.pk}/request/",
                       {"part": part.pk, "qty": qty, "next": next_url or f"/tech/orders/{order.pk}/"})


def test_the_technician_sees_the_fitting_parts_with_the_van_first(stocked):
    w = stocked
    o = order_in(w, "on_site")
    html = rendered(panels.tech_panel, w.pudong_tech, o)
    assert 'data-testid="parts-panel"' in html
    assert "P-CAP-35" in html and "P-COMP-35" in html and "P-BELT-100" not in html  # fits the AC unit only
    assert 'data-testid="in-van"' in html and "随车 2" in html  # two caps in the van
    assert "总部仓 3" in html  # the compressors, at headquarters
    assert html.index("P-CAP-35") < html.index("btn-lg") or "btn-lg" in html
    # the staff page shows the same panel, in its own layout
    staff = rendered(panels.order_panel, w.pudong_dispatcher, o)
    assert 'data-testid="parts-panel"' in staff and "parts-panel-tech" not in staff


def test_request_from_the_van_then_consume_with_the_old_part_returned(stocked):
    w = stocked
    o = order_in(w, "on_site")
    c = login(w.pudong_tech)
    resp = ask(c, o, w.cap)
    assert resp.status_code == 302 and resp["Location"] == f"/tech/orders/{o.pk}/"
    r = PartRequest.objects.get()
    assert (r.status, r.source, r.van) == (RequestStatus.READY, w.van, w.van)
    html = rendered(panels.tech_panel, w.pudong_tech, o)
    assert 'data-testid="consume-form"' in html and 'data-testid="release"' in html
    resp = c.post(f"/parts/requests/{r.pk}/consume/", {"old_returned": "on", "next": f"/tech/orders/{o.pk}/"})
    assert resp.status_code == 302
    r.refresh_from_db()
    assert r.status == RequestStatus.CONSUMED and r.old_returned
    van = Stock.objects.get(warehouse=w.van, part=w.cap)
    assert (van.on_hand, van.reserved, van.defective) == (1, 0, 1)
    html = rendered(panels.tech_panel, w.pudong_tech, o)
    assert "已使用" in html and 'data-testid="consume-form"' not in html


def test_a_part_not_in_the_van_comes_by_transfer_and_the_order_waits(stocked):
    w = stocked
    o = order_in(w, "diagnosing")
    c = login(w.pudong_tech)
    assert ask(c, o, w.comp).status_code == 302
    r = PartRequest.objects.get()
    assert r.status == RequestStatus.IN_TRANSIT and r.source == w.wh_hq and r.transfer is not None
    o.refresh_from_db()
    assert o.status == Status.WAITING_PARTS
    html = rendered(panels.tech_panel, w.pudong_tech, o)
    assert "总部仓" in html and r.transfer.number in html and "等待配件" in html
    # the transfer arrives: ready in the van, then used with its serial
    services.transfer_ship(user=w.hq_manager, transfer_id=r.transfer_id)
    services.transfer_receive(user=w.pudong_manager, transfer_id=r.transfer_id)
    r.refresh_from_db()
    assert r.status == RequestStatus.READY
    serial = SerialItem.objects.get(warehouse=w.van, part=w.comp).serial
    o.refresh_from_db()
    for name in ("resume", "accept", "depart", "arrive"):
        from aftersales.tickets import workflow

        from .conftest import DEFAULTS, actor_for

        if workflow.is_legal(o, workflow.MOVES[name]):
            o = workflow.move(o.pk, name, user=actor_for(w, name, o) if name != "resume" else None,
                              **DEFAULTS(w, name, o))
    c = login(w.pudong_tech)
    resp = c.post(f"/parts/requests/{r.pk}/consume/", {"serial": "WRONG", "old_serial": "OLD-1",
                                                       "old_returned": "on"})
    assert resp.status_code == 400 and 'data-testid="refused"' in resp.content.decode()
    resp = c.post(f"/parts/requests/{r.pk}/consume/", {"serial": serial, "old_serial": "OLD-1", "old_returned": "on"})
    assert resp.status_code == 302, resp.content.decode()[:2000]
    assert SerialItem.objects.get(serial=serial).state == SerialState.INSTALLED
    assert SerialItem.objects.get(serial="OLD-1").state == SerialState.DEFECTIVE


def test_the_dispatcher_asks_and_releases_but_does_not_use(stocked):
    w = stocked
    o = order_in(w, "on_site")
    c = login(w.pudong_dispatcher)
    assert ask(c, o, w.cap, next_url=f"/orders/{o.pk}/").status_code == 302
    r = PartRequest.objects.get()
    html = rendered(panels.order_panel, w.pudong_dispatcher, o)
    assert 'data-testid="release"' in html and 'data-testid="consume-form"' not in html
    assert c.post(f"/parts/requests/{r.pk}/consume/", {}).status_code == 403
    resp = c.post(f"/parts/requests/{r.pk}/release/", {"next": f"/orders/{o.pk}/"})
    assert resp.status_code == 302 and resp["Location"] == f"/orders/{o.pk}/"
    r.refresh_from_db()
    assert r.status == RequestStatus.RELEASED
    assert Stock.objects.get(warehouse=w.van, part=w.cap).reserved == 0


def test_who_sees_the_panel_and_who_may_act(stocked):
    w = stocked
    o = order_in(w, "on_site")
    assert rendered(panels.order_panel, w.trainer, o) == ""
    assert rendered(panels.order_panel, w.tianhe_agent, o) == ""
    agent = rendered(panels.order_panel, w.pudong_agent, o)  # parts.view: may look, not ask
    assert agent == "" or 'data-testid="open-request"' not in agent
    services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.cap.pk)
    agent = rendered(panels.order_panel, w.pudong_agent, o)
    assert "P-CAP-35" in agent and 'data-testid="release"' not in agent and 'data-testid="open-request"' not in agent
    # another technician of the outlet does not see this order at all
    assert ask(login(w.pudong_tech2), o, w.cap).status_code == 404
    # an order the user does not see: 404
    assert ask(login(w.tianhe_manager), o, w.cap).status_code == 404
    assert login(w.tianhe_manager).get(f"/parts/orders/{o.pk}/parts/").status_code == 404


@pytest.mark.parametrize("data,status", [
    ({"qty": -1}, 400), ({"qty": 0}, 400), ({"qty": "x"}, 400), ({"part": 999999}, 400), ({"part": ""}, 400),
])
def test_bad_requests_are_4xx_and_change_nothing(stocked, data, status):
    w = stocked
    o = order_in(w, "on_site")
    resp = login(w.pudong_tech).post(f"/parts/orders/{o.pk}/request/", {"part": w.cap.pk, "qty": 1, **data})
    assert resp.status_code == status
    assert not PartRequest.objects.exists()


def test_a_part_that_does_not_fit_or_is_out_of_stock_is_refused(stocked):
    w = stocked
    o = order_in(w, "on_site")
    c = login(w.pudong_tech)
    resp = ask(c, o, w.belt)  # a washing machine part for an air conditioner
    assert resp.status_code == 400 and "P-BELT-100" in resp.content.decode()
    Stock.objects.filter(part=w.comp).update(on_hand=0)  # (the test's shortcut: nowhere to take it from)
    resp = ask(c, o, w.comp)
    assert resp.status_code == 409
    assert not PartRequest.objects.exists()


def test_next_must_stay_on_the_site(stocked):
    w = stocked
    o = order_in(w, "on_site")
    resp = ask(login(w.pudong_tech), o, w.cap, next_url="https://evil.example/steal")
    assert resp.status_code == 302 and resp["Location"] == f"/orders/{o.pk}/"


def test_the_search_box_filters_the_fitting_parts(stocked, django_assert_max_num_queries):
    w = stocked
    o = order_in(w, "on_site")
    c = login(w.pudong_tech)
    with django_assert_max_num_queries(11):
        resp = c.get(f"/parts/orders/{o.pk}/parts/", {"q": "电容", "page": "tech"}, HTTP_HX_REQUEST="true")
    html = resp.content.decode()
    assert resp.status_code == 200 and "P-CAP-35" in html and "P-COMP-35" not in html
    assert login(w.pudong_agent).get(f"/parts/orders/{o.pk}/parts/").status_code == 403
    # another technician's van is not a place to take from
    van2 = services.van_for(w.tech2_employee)
    services.stock_receive(user=w.pudong_manager, warehouse_id=van2.pk, part_id=w.cap.pk, qty=9)
    html = c.get(f"/parts/orders/{o.pk}/parts/", {"q": "P-CAP"}).content.decode()
    assert van2.name not in html and "随车 2" in html


def test_the_van_panel_and_the_return_of_old_parts(stocked):
    w = stocked
    o = order_in(w, "on_site")
    r = services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.cap.pk)
    services.part_consume(user=w.pudong_tech, request_id=r.pk, old_returned=True)
    assert rendered(panels.tech_van_panel, w.pudong_manager, w.tech_employee) == ""  # someone else's van
    html = rendered(panels.tech_van_panel, w.pudong_tech, w.tech_employee)
    assert 'data-testid="van-panel"' in html and "P-CAP-35" in html and 'data-testid="van-return"' in html
    resp = login(w.pudong_tech).post("/parts/van/return/", {"warehouse": w.van.pk, "next": "/tech/"})
    assert resp.status_code == 302 and resp["Location"] == "/tech/"
    t = Transfer.objects.get(defective=True)
    assert (t.source, t.destination) == (w.van, w.wh_east)
    assert login(w.pudong_tech2).post("/parts/van/return/", {"warehouse": w.van.pk}).status_code == 404
    assert login(w.pudong_tech).post("/parts/van/return/", {"warehouse": "x"}).status_code == 404


def test_the_panels_appear_on_the_order_and_technician_pages(stocked):
    w = stocked
    o = order_in(w, "on_site")
    resp = login(w.pudong_dispatcher).get(f"/orders/{o.pk}/")
    assert resp.status_code == 200 and 'data-testid="parts-panel"' in resp.content.decode()
    resp = login(w.pudong_tech).get(f"/tech/orders/{o.pk}/")
    assert resp.status_code == 200 and "parts-panel-tech" in resp.content.decode()
    resp = login(w.pudong_tech).get("/tech/")
    assert resp.status_code == 200 and 'data-testid="van-panel"' in resp.content.decode()


def test_the_movements_of_an_order_link_back_to_it(stocked):
    w = stocked
    o = order_in(w, "on_site")
    services.part_request(user=w.pudong_tech, order_id=o.pk, part_id=w.cap.pk)
    html = login(w.pudong_manager).get("/parts/movements/", {"order": o.number.lower()}).content.decode()
    assert html.count('data-testid="movement-row"') == 1
    assert f'href="/orders/{o.pk}/"' in html and 'data-kind="reserve"' in html
    # an order the user does not see is not found, whatever its number
    assert login(w.tianhe_manager).get("/parts/movements/", {"order": o.number}).status_code == 400
