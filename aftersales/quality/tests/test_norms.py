"""The service-norm checklist (服务规范): the default items of the data migration, the answer of
the technician (or a handler) while on site or at completion, every active item required, a
wrong state refused (409), answered again in place; the panels on the job page and the order
page; the items' page; and the compliance reaching the facts (norm_checked / norm_ok)."""

from __future__ import annotations

import pytest
from django.test import Client

from aftersales.api.tests.conftest import ApiClient, errors_of
from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from aftersales.quality import facts, services
from aftersales.quality.models import NormCheck, NormItem, OrderFact
from aftersales.records.models import AuditEntry
from aftersales.tickets.models import OrderEvent
from aftersales.tickets.tests.order_fixtures import PATHS, catalog, make_order, quiet, team, walk  # noqa: F401

pytestmark = pytest.mark.django_db

CODES = ["DRESS", "SHOE_COVERS", "ON_TIME", "EXPLAIN", "CLEAN_UP", "TEST_RUN", "ADVICE", "OLD_PARTS"]


def order_at(w, status):
    return walk(w, make_order(w), PATHS[status])


def all_met(**overrides) -> dict:
    return {c: overrides.get(c, True) for c in CODES}


def test_default_items_from_the_migration(db):
    items = list(NormItem.objects.order_by("position"))
    assert [i.code for i in items] == CODES
    assert [i.text for i in items] == ["着装整洁，佩戴工牌", "使用鞋套与防护垫", "按预约时间到达", "向客户说明故障原因与收费标准",
                                       "维修后清理现场", "试机演示正常", "讲解使用与保养注意事项", "旧件交客户确认或按规定回收"]
    assert all(i.active and i.text_en for i in items)


def test_technician_answers_and_answers_again(team):  # noqa: F811
    w = team
    o = order_at(w, "on_site")
    check = services.norm_check_answer(user=w.pudong_tech, order_id=o.pk, answers=all_met(), note="")
    assert (check.items, check.met, check.ok) == (8, 8, True)
    check = services.norm_check_answer(user=w.pudong_tech, order_id=o.pk, answers=all_met(SHOE_COVERS=False),
                                       note="客户家中无鞋套")
    assert NormCheck.objects.filter(order=o).count() == 1
    check.refresh_from_db()
    assert (check.items, check.met, check.ok) == (8, 7, False) and check.answers["SHOE_COVERS"] is False
    assert set(check.answers) == set(CODES) and check.note == "客户家中无鞋套"
    notes = list(OrderEvent.objects.filter(order=o, action="note").values_list("note", flat=True))
    assert notes[-1].startswith("服务规范检查：7/8 项达标")
    assert AuditEntry.objects.filter(object_type="quality.normcheck", action="quality.norm_check").count() == 2
    # a handler of the node may answer too (e.g. from the call-back)
    assert services.norm_check_answer(user=w.pudong_agent, order_id=o.pk, answers=all_met()).met == 8


def test_every_active_item_must_be_answered(team):  # noqa: F811
    w = team
    o = order_at(w, "repairing")
    answers = all_met()
    del answers["TEST_RUN"]
    answers["NOPE"] = True
    answers["DRESS"] = "yes"
    with pytest.raises(ValidationFailed) as e:
        services.norm_check_answer(user=w.pudong_tech, order_id=o.pk, answers=answers)
    assert set(e.value.errors) == {"answers.TEST_RUN", "answers.NOPE", "answers.DRESS"}
    assert not NormCheck.objects.exists()
    # a deactivated item is no longer asked
    NormItem.objects.filter(code="TEST_RUN").update(active=False)
    answers = all_met()
    del answers["TEST_RUN"]
    assert services.norm_check_answer(user=w.pudong_tech, order_id=o.pk, answers=answers).items == 7


@pytest.mark.parametrize("status", ["dispatched", "waiting_parts", "closed", "cancelled"])
def test_wrong_state_is_409(team, status):  # noqa: F811
    w = team
    o = order_at(w, status)
    user = w.pudong_agent if status in ("closed", "cancelled") else w.pudong_tech
    with pytest.raises(Conflict):
        services.norm_check_answer(user=user, order_id=o.pk, answers=all_met())


def test_who_may_answer(team):  # noqa: F811
    w = team
    o = order_at(w, "diagnosing")
    with pytest.raises(PermissionDenied):  # sees the order (order.view) but neither technician nor handler
        services.norm_check_answer(user=w.pudong_dispatcher, order_id=o.pk, answers=all_met())
    with pytest.raises(NotFound):
        services.norm_check_answer(user=w.tianhe_agent, order_id=o.pk, answers=all_met())
    with pytest.raises(NotFound):
        services.norm_check_answer(user=w.pudong_tech, order_id=10**12, answers=all_met())


def test_compliance_feeds_the_facts(team):  # noqa: F811
    w = team
    o = order_at(w, "completed")
    facts.refresh_orders([o.pk])
    f = OrderFact.objects.get(order=o)
    assert (f.visited, f.norm_checked, f.norm_ok) == (1, 0, 0)
    services.norm_check_answer(user=w.pudong_tech, order_id=o.pk, answers=all_met())
    facts.refresh_orders([o.pk])
    f.refresh_from_db()
    assert (f.norm_checked, f.norm_ok) == (1, 1)
    services.norm_check_answer(user=w.pudong_tech, order_id=o.pk, answers=all_met(CLEAN_UP=False))
    facts.refresh_orders([o.pk])
    f.refresh_from_db()
    assert (f.norm_checked, f.norm_ok) == (1, 0)


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_panels_on_the_job_page_and_the_order_page(team):  # noqa: F811
    w = team
    o = order_at(w, "on_site")
    tech = _client(w.pudong_tech)
    html = tech.get(f"/tech/orders/{o.pk}/").content.decode()
    assert 'data-testid="norm-form"' in html and "使用鞋套与防护垫" in html
    post = {f"item_{c}": "1" for c in CODES} | {"item_ADVICE": "0", "note": "赶时间", "next": f"/tech/orders/{o.pk}/"}
    incomplete = {k: v for k, v in post.items() if k != "item_DRESS"}
    resp = tech.post(f"/quality/norms/orders/{o.pk}/", incomplete)
    assert resp.status_code == 400 and "着装整洁" in resp.content.decode()
    resp = tech.post(f"/quality/norms/orders/{o.pk}/", post)
    assert resp.status_code == 302 and resp["Location"] == f"/tech/orders/{o.pk}/"
    check = NormCheck.objects.get(order=o)
    assert check.met == 7 and check.answers["ADVICE"] is False
    html = tech.get(f"/tech/orders/{o.pk}/").content.decode()
    assert 'data-met="7"' in html and "7/8 项达标" in html
    html = _client(w.pudong_dispatcher).get(f"/orders/{o.pk}/").content.decode()  # order.view only
    assert 'data-testid="norm-panel"' in html and 'data-testid="norm-answers"' in html and "未达标" in html
    assert 'data-testid="norm-form"' not in html
    html = _client(w.pudong_agent).get(f"/orders/{o.pk}/").content.decode()
    assert 'data-testid="norm-form"' in html  # order.handle may answer from the order page
    # nothing shown before the technician is on site
    o2 = order_at(w, "accepted")
    assert 'data-testid="norm-panel"' not in tech.get(f"/tech/orders/{o2.pk}/").content.decode()
    resp = tech.post(f"/quality/norms/orders/{o2.pk}/", post)
    assert resp.status_code == 409
    assert _client(w.tianhe_agent).post(f"/quality/norms/orders/{o.pk}/", post).status_code == 404


def test_items_page_and_service(world):
    c = _client(world.hq_manager)
    resp = c.post("/quality/norms/", {"code": "mask", "text": "佩戴口罩", "text_en": "Mask worn", "active": "1"})
    assert resp.status_code == 302
    item = NormItem.objects.get(code="MASK")
    assert item.position == 90 and item.active
    resp = c.post("/quality/norms/", {"code": "MASK", "text": "重复"})
    assert resp.status_code == 400 and 'data-field="code"' in resp.content.decode()
    resp = c.post("/quality/norms/", {"code": "1BAD", "text": ""})
    assert resp.status_code == 400
    resp = c.post("/quality/norms/", {"item_id": item.pk, "text": "佩戴口罩（疫情期间）", "text_en": "", "position": "5"})
    assert resp.status_code == 302
    item.refresh_from_db()
    assert item.text == "佩戴口罩（疫情期间）" and item.position == 5 and not item.active and item.code == "MASK"
    html = c.get("/quality/norms/").content.decode()
    assert 'data-code="MASK"' in html and 'data-testid="norm-create"' in html
    east = _client(world.east_manager)
    assert 'data-testid="norm-create"' not in east.get("/quality/norms/").content.decode()
    assert east.post("/quality/norms/", {"code": "X", "text": "x"}).status_code == 403
    assert _client(world.pudong_tech).get("/quality/norms/").status_code == 403
    with pytest.raises(PermissionDenied):
        services.norm_item_save(user=world.quality, code="Y", text="y")


def test_api(team):  # noqa: F811
    w = team
    o = order_at(w, "completed")
    tech = ApiClient(w.pudong_tech)
    assert tech.get(f"/quality/improve/norms/orders/{o.pk}").status_code == 404
    resp = tech.put(f"/quality/improve/norms/orders/{o.pk}", {"answers": {"DRESS": True}})
    assert resp.status_code == 400 and "answers.SHOE_COVERS" in errors_of(resp)
    resp = tech.put(f"/quality/improve/norms/orders/{o.pk}", {"answers": all_met(), "note": "好"})
    assert resp.status_code == 200, resp.content
    assert resp.json()["ok"] is True and resp.json()["met"] == 8
    assert tech.get(f"/quality/improve/norms/orders/{o.pk}").json()["answered_by"]["username"] == "pudong_tech"
    items = tech.get("/quality/improve/norms/items").json()
    assert [i["code"] for i in items] == CODES
    hq = ApiClient(w.hq_manager)
    resp = hq.post("/quality/improve/norms/items", {"code": "GLOVES", "text": "戴手套"})
    assert resp.status_code == 201
    assert ApiClient(w.east_manager).post("/quality/improve/norms/items", {"code": "X2", "text": "x"}).status_code == 403
    resp = hq.put(f"/quality/improve/norms/items/{resp.json()['id']}", {"text": "戴绝缘手套", "active": False})
    assert resp.status_code == 200 and resp.json()["active"] is False
    assert ApiClient(w.tianhe_agent).put(f"/quality/improve/norms/orders/{o.pk}",
                                         {"answers": all_met()}).status_code == 404
