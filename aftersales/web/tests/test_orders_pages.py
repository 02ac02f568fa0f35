"""The work-order pages: the agent's intake (live search, units with their 三包 decision, the
suggested type and fault category, the SLA preview, field errors), the order page (timeline,
only the allowed moves, moves through the page with 400 / 403 / 409), the dispatch panel,
the lists with their filters and role defaults (bounded queries), and the outbox (masking)."""

from __future__ import annotations

import datetime as dt
import importlib
import re

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from aftersales.customers.models import Customer, Unit
from aftersales.dispatch import services as dispatch_services
from aftersales.notifications.models import Message
from aftersales.tickets import classify, sla, workflow
from aftersales.tickets import services as ts
from aftersales.tickets.fault_catalog import ensure_fault_catalog
from aftersales.tickets.models import OrderEvent, SlaState, Status, WorkOrder

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


# ---------------------------------------------------------------- helpers (also used by the tech tests)


def seed_orders_reference() -> None:
    """The seeds of the tickets migrations (SLA calendar and policies, fault catalogue) for
    the categories of ``world``; idempotent, so also after a transactional test's flush."""
    importlib.import_module("aftersales.tickets.migrations.0002_sla_defaults").seed(django_apps)
    ensure_fault_catalog()
    classify.clear_cache()
    sla.clear_cache()


def new_order(w, *, agent=None, customer=None, unit=True, type="repair", problem="空调不制冷", classify_it=True,
              priority="normal") -> WorkOrder:
    agent = agent or w.pudong_agent
    customer = customer or w.c_pudong
    unit_id = (w.u_pudong.pk if customer == w.c_pudong else w.u_tianhe.pk) if unit else None
    o = ts.order_create(user=agent, customer_id=customer.pk, type=type, channel="phone", problem=problem,
                        unit_id=unit_id)
    if classify_it:
        o = workflow.move(o.pk, "classify", user=agent, type=type, priority=priority)
    return o


def tomorrow(hour: int, hours: int = 2) -> tuple[dt.datetime, dt.datetime]:
    d = timezone.localdate() + dt.timedelta(days=1)
    a = dt.datetime.combine(d, dt.time(hour), timezone.get_current_timezone())
    return a, a + dt.timedelta(hours=hours)


def dispatch(w, order, *, hour=10, employee=None) -> WorkOrder:
    a, b = tomorrow(hour)
    return dispatch_services.dispatch_order(user=w.pudong_dispatcher, order_id=order.pk,
                                            employee_id=(employee or w.tech_employee).pk, starts_at=a, ends_at=b)


def local_input(t: dt.datetime) -> str:
    return timezone.localtime(t).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def ow(world):
    seed_orders_reference()
    return world


def login(client, user):
    client.force_login(user)
    return client


def body(resp) -> str:
    return resp.content.decode()


# ---------------------------------------------------------------- who may open which page


@pytest.mark.parametrize("username, url_name, status", [
    ("pudong_agent", "order_intake", 200),
    ("pudong_manager", "order_intake", 200),
    ("pudong_dispatcher", "order_intake", 403),
    ("pudong_tech", "order_intake", 403),
    ("quality", "order_intake", 403),
    ("pudong_agent", "order_list", 200),
    ("pudong_dispatcher", "order_list", 200),
    ("pudong_manager", "order_list", 200),
    ("quality", "order_list", 200),
    ("pudong_tech", "order_list", 200),
    ("trainer", "order_list", 403),
    ("nobody", "order_list", 403),
    ("pudong_agent", "outbox", 200),
    ("pudong_dispatcher", "outbox", 200),
    ("hq_manager", "outbox", 200),
    ("pudong_tech", "outbox", 403),
    ("quality", "outbox", 403),
    ("pudong_tech", "tech_jobs", 200),
    ("pudong_agent", "tech_jobs", 403),
    ("pudong_dispatcher", "tech_jobs", 403),
])
def test_pages_per_role(client, ow, username, url_name, status):
    login(client, getattr(ow, username))
    assert client.get(reverse(f"web:{url_name}")).status_code == status


def test_anonymous_goes_to_login(client, ow):
    o = new_order(ow)
    for url in (reverse("web:order_intake"), reverse("web:order_list"), reverse("web:order_detail", args=[o.pk]),
                reverse("web:tech_jobs"), reverse("web:outbox")):
        resp = client.get(url)
        assert resp.status_code == 302 and resp["Location"].startswith(reverse("web:login"))


@pytest.mark.parametrize("username, shown, hidden", [
    ("pudong_agent", ["受理工单", "工单列表", "发件箱"], ["我的任务"]),
    ("pudong_dispatcher", ["工单列表", "发件箱"], ["受理工单", "我的任务"]),
    ("pudong_tech", ["我的任务"], ["受理工单", "工单列表", "发件箱"]),
    ("quality", ["工单列表"], ["受理工单", "我的任务", "发件箱"]),
])
def test_nav_entries_per_permission(client, ow, username, shown, hidden):
    login(client, getattr(ow, username))
    nav = re.search(r'<nav class="nav".*?</nav>', body(client.get(reverse("web:home"))), re.S).group(0)
    for label in shown:
        assert label in nav
    for label in hidden:
        assert label not in nav


# ---------------------------------------------------------------- intake


def test_intake_live_search_and_pick(client, ow):
    login(client, ow.pudong_agent)
    resp = client.get(reverse("web:intake_customers"), {"q": "13812"}, **HX)
    assert resp.status_code == 200
    html = body(resp)
    assert "张伟" in html and "<html" not in html
    assert reverse("web:intake_customer", args=[ow.c_pudong.pk]) in html
    assert 'hx-swap-oob' not in html  # a prefix does not pick by itself
    # the full number of one customer picks them at once (out of band)
    html = body(client.get(reverse("web:intake_customers"), {"q": "13812345678"}, **HX))
    assert 'id="intake-customer" hx-swap-oob' in html and f'name="customer_id" value="{ow.c_pudong.pk}"' in html
    # scoped: Tianhe's customer is not found from Pudong; a new customer is offered
    html = body(client.get(reverse("web:intake_customers"), {"q": "13987654321"}, **HX))
    assert "王芳" not in html and reverse("web:intake_customer_create") in html


def test_intake_page(client, ow):
    login(client, ow.pudong_agent)
    html = body(client.get(reverse("web:order_intake")))
    assert 'data-testid="intake-search"' in html and 'id="intake-form"' in html
    assert '<option value="normal" selected>' in html and '<option value="phone" selected>' in html
    assert '<option value="repair" selected>' in html  # until the words say otherwise
    assert 'name="htmx-config"' in html


def test_intake_customer_block_shows_units_with_decision(client, ow):
    login(client, ow.pudong_agent)
    resp = client.get(reverse("web:intake_customer", args=[ow.c_pudong.pk]), **HX)
    html = body(resp)
    assert resp.status_code == 200
    assert f'name="customer_id" value="{ow.c_pudong.pk}"' in html
    assert f'name="unit_id" value="{ow.u_pudong.pk}" checked' in html  # the only unit is preselected
    assert 'data-kind="free_repair"' in html and "免费维修" in html
    assert "13812345678" in html  # the agent holds customer.pii
    assert 'id="intake-results" hx-swap-oob' in html  # the results list is cleared
    # out of scope → 404; without htmx → the intake page with the customer picked
    assert client.get(reverse("web:intake_customer", args=[ow.c_tianhe.pk]), **HX).status_code == 404
    resp = client.get(reverse("web:intake_customer", args=[ow.c_pudong.pk]))
    assert resp.status_code == 302 and resp["Location"].endswith(f"?customer={ow.c_pudong.pk}")
    html = body(client.get(resp["Location"]))
    assert 'data-testid="intake-customer"' in html and "AC2025000001" in html


def test_suggestion_preselects_type_and_fault_category(client, ow):
    login(client, ow.pudong_agent)
    url = reverse("web:intake_suggest")
    resp = client.get(url, {"problem": "空调不制冷，开机吹热风", "unit_id": ow.u_pudong.pk, "type": "", "priority": "normal"},
                      **HX)
    html = body(resp)
    assert resp.status_code == 200
    assert '<option value="repair" selected>' in html
    assert '<option value="NO_COOLING" selected>' in html
    assert 'data-testid="intake-suggestion" data-type="repair" data-fault="NO_COOLING"' in html
    assert 'id="intake-sla" class="sla-preview" data-testid="intake-sla" hx-swap-oob="true"' in html
    assert 'data-testid="sla-resolve"' in html
    # a complaint in the words
    html = body(client.get(url, {"problem": "我要投诉，修了好几次还没修好", "unit_id": ow.u_pudong.pk}, **HX))
    assert '<option value="complaint" selected>' in html
    # what the agent chose by hand stays
    html = body(client.get(url, {"problem": "空调不制冷", "unit_id": ow.u_pudong.pk, "type": "maintenance",
                                  "type_manual": "1"}, **HX))
    assert '<option value="maintenance" selected>' in html and '<option value="NO_COOLING" selected>' in html
    # nothing typed: no suggestion, nothing breaks
    html = body(client.get(url, {"problem": ""}, **HX))
    assert 'data-testid="intake-suggestion"' not in html


def test_sla_preview(client, ow):
    login(client, ow.pudong_agent)
    resp = client.get(reverse("web:intake_sla"), {"type": "consultation", "priority": "normal"}, **HX)
    assert resp.status_code == 200
    html = body(resp)
    d = sla.deadlines("consultation", "normal", timezone.now())
    assert timezone.localtime(d.resolve_due).strftime("%m-%d %H:%M") in html
    assert "选择工单类型后显示时限" in body(client.get(reverse("web:intake_sla"), {"type": "x"}, **HX))


def _intake(ow, **kw):
    d = {"customer_id": ow.c_pudong.pk, "unit_id": ow.u_pudong.pk, "problem": "空调不制冷", "type": "repair",
         "fault_category": "NO_COOLING", "channel": "phone", "priority": "normal", "wish_from": "", "wish_to": ""}
    d.update(kw)
    return d


def test_intake_creates_order_and_lands_on_it(client, ow):
    login(client, ow.pudong_agent)
    a, b = tomorrow(9, 3)
    resp = client.post(reverse("web:order_intake"), _intake(ow, wish_from=local_input(a), wish_to=local_input(b)))
    o = WorkOrder.objects.get()
    assert resp.status_code == 302 and resp["Location"] == reverse("web:order_detail", args=[o.pk])
    assert (o.owner, o.type, o.channel, o.status, o.fault_category.code) == (
        ow.pudong_agent, "repair", "phone", Status.RECEIVED, "NO_COOLING")
    assert o.wish_from == a and o.wish_to == b and o.node == ow.pudong and o.address == ow.a_pudong
    assert o.warranty_kind == "free_repair" and o.resolve_due is not None
    html = body(client.get(resp["Location"]))
    assert o.number in html and "已受理工单" in html


@pytest.mark.parametrize("change, field, message", [
    ({"problem": "  "}, "problem", "请填写问题描述"),
    ({"unit_id": "OTHER"}, "unit_id", "不属于此客户"),
    ({"wish_from": "PAST", "wish_to": "PAST_END"}, "wish_from", "期望上门时间不能早于现在"),
    ({"wish_from": "not a time"}, "wish_from", "有效的日期/时间"),
    ({"customer_id": ""}, "customer_id", "请先查找并选择客户"),
    ({"type": ""}, "type", "请选择工单类型"),
    ({"type": "party"}, "type", "无效的工单类型"),
])
def test_intake_bad_input_is_400_with_field_error_and_writes_nothing(client, ow, change, field, message):
    login(client, ow.pudong_agent)
    past = timezone.now() - dt.timedelta(days=1)
    repl = {"OTHER": ow.u_tianhe.pk, "PAST": local_input(past), "PAST_END": local_input(past + dt.timedelta(hours=2))}
    change = {k: repl.get(v, v) for k, v in change.items()}
    resp = client.post(reverse("web:order_intake"), _intake(ow, **change))
    assert resp.status_code == 400
    assert message in body(resp)
    assert field in resp.context["form"].errors
    assert f'id="id_{field}-error"' in body(resp)
    assert not WorkOrder.objects.exists()


def test_intake_reports_every_bad_field_at_once(client, ow):
    login(client, ow.pudong_agent)
    resp = client.post(reverse("web:order_intake"), _intake(ow, problem="", channel="fax", unit_id=ow.u_tianhe.pk))
    assert resp.status_code == 400
    assert {"problem", "channel", "unit_id"} <= set(resp.context["form"].errors)
    # the picked customer stays picked on the page with the errors
    assert 'data-testid="intake-customer"' in body(resp)


def test_intake_for_customer_out_of_scope_is_refused(client, ow):
    login(client, ow.pudong_agent)
    resp = client.post(reverse("web:order_intake"), _intake(ow, customer_id=ow.c_tianhe.pk, unit_id=ow.u_tianhe.pk))
    assert resp.status_code == 400 and "无权为其受理工单" in body(resp)
    assert not WorkOrder.objects.exists()


def test_new_customer_from_intake_comes_back_picked(client, ow):
    login(client, ow.pudong_agent)
    url = reverse("web:intake_customer_create")
    html = body(client.get(url, {"phone": "13700001111"}))
    assert 'value="13700001111"' in html and 'value="浦东新区"' in html
    resp = client.post(url, {"name": "赵敏", "phone": "13700001111", "province": "上海市", "city": "上海市",
                             "district": "浦东新区", "street": "世纪大道100号", "notes": ""})
    c = Customer.objects.get(phone="13700001111")
    assert resp.status_code == 302 and resp["Location"] == f"{reverse('web:order_intake')}?customer={c.pk}"
    # bad input: 400 with the field error, nothing written
    resp = client.post(url, {"name": "", "phone": "123", "province": "上海市", "city": "上海市", "district": "浦东新区",
                             "street": "x路1号"})
    assert resp.status_code == 400 and "手机号格式不正确" in body(resp)
    login(client, ow.pudong_manager)  # order.create and customer.edit
    assert client.get(url).status_code == 200
    login(client, ow.quality)
    assert client.get(url).status_code == 403


def test_register_unit_from_intake(client, ow):
    login(client, ow.pudong_agent)
    url = reverse("web:intake_unit_register", args=[ow.c_pudong.pk])
    resp = client.post(url, {"model_code": "xqg100", "serial": "WM2026000777",
                             "purchase_date": (timezone.localdate() - dt.timedelta(days=3)).isoformat(),
                             "sales_channel": "store", "invoice_no": "INV-9"}, **HX)
    assert resp.status_code == 200
    u = Unit.objects.get(serial="WM2026000777")
    html = body(resp)
    assert f'name="unit_id" value="{u.pk}" checked' in html and 'data-kind="return"' in html
    resp = client.post(url, {"model_code": "NOPE", "serial": "", "purchase_date": "2099-01-01"}, **HX)
    assert resp.status_code == 400
    assert resp.context["unit_errors"].keys() >= {"model_code", "serial"}
    assert Unit.objects.filter(customer=ow.c_pudong).count() == 2


# ---------------------------------------------------------------- the order page


def test_order_page_shows_header_timeline_and_map(client, ow):
    o = new_order(ow)
    ts.order_note(user=ow.pudong_agent, order_id=o.pk, note="已电话告知客户预计明天上门")
    login(client, ow.pudong_agent)
    resp = client.get(reverse("web:order_detail", args=[o.pk]))
    assert resp.status_code == 200
    html = body(resp)
    assert o.number in html and "待派工" in html
    assert 'data-testid="order-owner">pudong_agent' in html
    rows = resp.context["timeline"]
    assert [r["e"].action for r in rows] == ["create", "classify", "note"]
    assert rows[1]["from"] == "已受理" and rows[1]["to"] == "待派工" and rows[1]["label"] == "分类"
    assert "已电话告知客户预计明天上门" in html
    assert "13812345678" in html and "张杨路500号2栋1201室" in html
    assert "https://uri.amap.com/search?keyword=" in html  # no coordinates: a search
    assert 'data-countdown="' in html and resp.context["sla"]["which"] == "响应"
    # with coordinates: a marker
    ow.a_pudong.lat, ow.a_pudong.lng = 31.2214, 121.544
    ow.a_pudong.save()
    html = body(client.get(reverse("web:order_detail", args=[o.pk])))
    assert "https://uri.amap.com/marker?position=121.544000,31.221400&amp;name=" in html


def test_order_page_masks_for_roles_without_pii(client, ow):
    o = new_order(ow)
    ow.a_pudong.lat, ow.a_pudong.lng = 31.2214, 121.544
    ow.a_pudong.save()
    login(client, ow.quality)
    html = body(client.get(reverse("web:order_detail", args=[o.pk])))
    assert "138****5678" in html and "13812345678" not in html
    assert "张杨****" in html and "张杨路500号" not in html
    assert "uri.amap.com/marker" not in html and "121.544" not in html  # no exact position either


def test_order_page_offers_only_the_allowed_moves(client, ow):
    o = new_order(ow)
    login(client, ow.pudong_agent)
    resp = client.get(reverse("web:order_detail", args=[o.pk]))
    names = [mv["move"].name for mv in resp.context["moves"]]
    assert names == [m.name for m in workflow.allowed_moves(ow.pudong_agent, o)]
    assert set(names) == {"classify", "cancel", "transfer", "escalate"}
    html = body(resp)
    assert 'data-testid="move-cancel"' in html and 'data-testid="move-accept"' not in html
    assert 'data-testid="dispatch-panel"' not in html  # the agent does not dispatch
    # each form asks exactly what its move needs
    forms = {mv["move"].name: mv["form"] for mv in resp.context["moves"]}
    assert list(forms["cancel"].fields) == ["reason"]
    assert list(forms["transfer"].fields) == ["node_id", "reason"]
    # the quality supervisor sees the order but makes no move
    login(client, ow.quality)
    resp = client.get(reverse("web:order_detail", args=[o.pk]))
    assert resp.status_code == 200 and resp.context["moves"] == []


def test_classify_form_fields(client, ow):
    o = ts.order_create(user=ow.pudong_agent, customer_id=ow.c_pudong.pk, type="repair", channel="phone",
                        problem="空调不制冷", unit_id=ow.u_pudong.pk, fault_category="NO_COOLING")
    login(client, ow.pudong_agent)
    forms = {mv["move"].name: mv["form"] for mv in client.get(reverse("web:order_detail", args=[o.pk])).context["moves"]}
    assert list(forms["classify"].fields) == ["type", "priority", "fault_category"]
    assert forms["classify"]["fault_category"].value() == "NO_COOLING"  # from the intake
    assert "answer" not in forms  # only for consultations
    c = new_order(ow, type="consultation", unit=False, problem="请问保修期多久", classify_it=False)
    forms = {mv["move"].name: mv["form"] for mv in client.get(reverse("web:order_detail", args=[c.pk])).context["moves"]}
    assert list(forms["answer"].fields) == ["result"]


def test_move_through_the_page(client, ow):
    o = new_order(ow, classify_it=False)
    login(client, ow.pudong_agent)
    url = reverse("web:order_move", args=[o.pk, "classify"])
    resp = client.post(url, {"type": "repair", "priority": "high", "fault_category": "NO_COOLING"}, **HX)
    assert resp.status_code == 200
    o.refresh_from_db()
    assert o.status == Status.CLASSIFIED and o.priority == "high"
    html = body(resp)
    assert 'id="order-body"' in html and "<html" not in html and "已执行「分类」" in html
    assert 'data-status="classified"' in html
    # the same without htmx: post, then redirect
    resp = client.post(reverse("web:order_move", args=[o.pk, "escalate"]), {"reason": "客户情绪激动"})
    assert resp.status_code == 302 and resp["Location"] == reverse("web:order_detail", args=[o.pk])
    o.refresh_from_db()
    assert o.escalation_level == 1
    assert OrderEvent.objects.filter(order=o, action="escalate", note="客户情绪激动").exists()


def test_illegal_move_is_409_with_the_reason(client, ow):
    o = new_order(ow, classify_it=False)
    login(client, ow.pudong_agent)
    resp = client.post(reverse("web:order_move", args=[o.pk, "reopen"]), {"reason": "客户不满意"}, **HX)
    assert resp.status_code == 409
    html = body(resp)
    assert f"工单 {o.number} 当前状态为「已受理」，不能执行「重开（客户不满意）」" in html
    assert resp["HX-Retarget"] == "#move-reopen" and 'id="move-reopen"' in html
    o.refresh_from_db()
    assert o.status == Status.RECEIVED and o.event_count == 1
    # without htmx: the whole page, still 409
    resp = client.post(reverse("web:order_move", args=[o.pk, "reopen"]), {"reason": "x"})
    assert resp.status_code == 409 and "不能执行" in body(resp) and "<html" in body(resp)


def test_move_missing_field_is_400(client, ow):
    o = new_order(ow)
    login(client, ow.pudong_agent)
    resp = client.post(reverse("web:order_move", args=[o.pk, "cancel"]), {"reason": ""}, **HX)
    assert resp.status_code == 400
    assert "请填写原因" in body(resp) and 'id="id_cancel-reason-error"' in body(resp)
    o.refresh_from_db()
    assert o.status == Status.CLASSIFIED
    resp = client.post(reverse("web:order_move", args=[o.pk, "cancel"]), {"reason": "客户已自行解决"}, **HX)
    assert resp.status_code == 200
    o.refresh_from_db()
    assert o.status == Status.CANCELLED and o.cancel_reason == "客户已自行解决"


def test_move_by_the_wrong_person_is_403_and_unknown_move_404(client, ow):
    o = dispatch(ow, new_order(ow))
    login(client, ow.pudong_agent)
    resp = client.post(reverse("web:order_move", args=[o.pk, "accept"]), {}, **HX)
    assert resp.status_code == 403 and "您无权对此工单执行「接单」" in body(resp)
    assert client.post(reverse("web:order_move", args=[o.pk, "fly"]), {}).status_code == 404
    assert client.post(reverse("web:order_move", args=[o.pk, "dispatch"]), {}).status_code == 404  # the panel's


def test_transfer_out_of_scope_redirects_to_the_list(client, ow):
    o = new_order(ow)
    login(client, ow.pudong_dispatcher)
    resp = client.post(reverse("web:order_move", args=[o.pk, "transfer"]),
                       {"node_id": ow.tianhe.pk, "reason": "客户已搬家"}, **HX)
    assert resp.status_code == 200 and resp["HX-Redirect"] == reverse("web:order_list")
    o.refresh_from_db()
    assert o.node == ow.tianhe and o.status == Status.CLASSIFIED


def test_order_page_scoping(client, ow):
    o = new_order(ow)
    login(client, ow.hangzhou_agent)
    assert client.get(reverse("web:order_detail", args=[o.pk])).status_code == 404
    assert client.post(reverse("web:order_move", args=[o.pk, "cancel"]), {"reason": "x"}).status_code == 404
    login(client, ow.customer_user_tianhe)
    assert client.get(reverse("web:order_detail", args=[o.pk])).status_code == 404
    # the customer sees their own order: the steps, no staff notes, no actions
    ts.order_note(user=ow.pudong_agent, order_id=o.pk, note="内部备注：客户难沟通")
    login(client, ow.customer_user)
    resp = client.get(reverse("web:order_detail", args=[o.pk]))
    assert resp.status_code == 200
    html = body(resp)
    assert o.number in html and "内部备注" not in html and resp.context["moves"] == []
    assert 'id="note-form"' not in html


def test_note_through_the_page(client, ow):
    o = new_order(ow)
    login(client, ow.pudong_agent)
    url = reverse("web:order_note", args=[o.pk])
    resp = client.post(url, {"note": ""}, **HX)
    assert resp.status_code == 400 and "请填写内容" in body(resp) and resp["HX-Retarget"] == "#note-form"
    resp = client.post(url, {"note": "客户改约到周末"}, **HX)
    assert resp.status_code == 200 and "客户改约到周末" in body(resp)
    assert OrderEvent.objects.filter(order=o, action="note").count() == 1


# ---------------------------------------------------------------- dispatch panel


def test_dispatch_panel_ranks_and_books(client, ow):
    o = new_order(ow)
    login(client, ow.pudong_dispatcher)
    resp = client.get(reverse("web:order_detail", args=[o.pk]))
    html = body(resp)
    assert 'data-testid="dispatch-panel"' in html and "李师傅" in html
    cands = resp.context["dispatch"]["candidates"]
    assert cands[0].employee == ow.tech_employee and cands[0].eligible
    # a slot picked: the panel again, for that slot
    a, b = tomorrow(14)
    resp = client.get(reverse("web:order_candidates", args=[o.pk]),
                      {"starts_at": local_input(a), "ends_at": local_input(b)}, **HX)
    assert resp.status_code == 200 and f'value="{local_input(a)}"' in body(resp)
    resp = client.get(reverse("web:order_candidates", args=[o.pk]),
                      {"starts_at": local_input(b), "ends_at": local_input(a)}, **HX)
    assert resp.status_code == 400 and "预约结束时间须晚于开始时间" in body(resp)
    # book
    resp = client.post(reverse("web:order_dispatch", args=[o.pk]),
                       {"employee_id": ow.tech_employee.pk, "starts_at": local_input(a), "ends_at": local_input(b),
                        "note": "客户下午在家"}, **HX)
    assert resp.status_code == 200 and "已派工" in body(resp)
    o.refresh_from_db()
    assert o.status == Status.DISPATCHED and o.assignee == ow.tech_employee and o.appointment_from == a


def test_dispatch_panel_warns_of_an_overdue_instrument(client, ow):
    """The technician holding a lapsed instrument is shown with the warning and may still be
    booked; the confirmation repeats it (R-PART-2)."""
    from aftersales.assets.models import Tool

    now = timezone.now()
    Tool.objects.create(node=ow.pudong, code="GJ-MM-9", name="数字万用表", kind="instrument", holder=ow.tech_employee,
                        check_kind="calibration", interval_months=12, state="in_use",
                        due_on=timezone.localdate() - dt.timedelta(days=2), created_at=now, updated_at=now)
    o = new_order(ow)
    login(client, ow.pudong_dispatcher)
    html = body(client.get(reverse("web:order_detail", args=[o.pk])))
    assert 'data-testid="candidate-warning"' in html and "GJ-MM-9" in html
    a, b = tomorrow(14)
    resp = client.post(reverse("web:order_dispatch", args=[o.pk]),
                       {"employee_id": ow.tech_employee.pk, "starts_at": local_input(a), "ends_at": local_input(b),
                        "note": ""}, **HX)
    assert resp.status_code == 200 and "已派工" in body(resp) and "GJ-MM-9" in body(resp)
    o.refresh_from_db()
    assert o.status == Status.DISPATCHED


def test_dispatch_panel_errors(client, ow):
    o1, o2 = new_order(ow), new_order(ow)
    dispatch(ow, o1, hour=10)
    login(client, ow.pudong_dispatcher)
    a, b = tomorrow(11)  # overlaps the first booking
    resp = client.post(reverse("web:order_dispatch", args=[o2.pk]),
                       {"employee_id": ow.tech_employee.pk, "starts_at": local_input(a), "ends_at": local_input(b)},
                       **HX)
    assert resp.status_code == 409 and resp["HX-Retarget"] == "#dispatch-panel"
    assert o1.number in body(resp) and 'data-testid="dispatch-error"' in body(resp)
    past = timezone.now() - dt.timedelta(days=1)
    resp = client.post(reverse("web:order_dispatch", args=[o2.pk]),
                       {"employee_id": ow.tech_employee.pk, "starts_at": local_input(past),
                        "ends_at": local_input(past + dt.timedelta(hours=2))}, **HX)
    assert resp.status_code == 400 and "预约开始时间不能早于现在" in body(resp)
    o2.refresh_from_db()
    assert o2.status == Status.CLASSIFIED
    # reassigning a booked order needs a reason
    a, b = tomorrow(15)
    resp = client.post(reverse("web:order_dispatch", args=[o1.pk]),
                       {"employee_id": ow.tech_employee.pk, "starts_at": local_input(a), "ends_at": local_input(b)},
                       **HX)
    assert resp.status_code == 400 and "请填写改派原因" in body(resp)
    # the agent may not dispatch
    login(client, ow.pudong_agent)
    assert client.post(reverse("web:order_dispatch", args=[o2.pk]), {}).status_code == 403


# ---------------------------------------------------------------- lists


def test_list_role_defaults(client, ow):
    mine = new_order(ow)
    other_owner = new_order(ow, agent=ow.pudong_manager)
    closed = new_order(ow, classify_it=False)
    ts.order_move(user=ow.pudong_agent, order_id=closed.pk, move="cancel", reason="重复报修")
    received = new_order(ow, classify_it=False)

    login(client, ow.pudong_agent)  # my open orders
    resp = client.get(reverse("web:order_list"))
    assert resp.context["defaults_applied"]
    assert {o.pk for o in resp.context["rows"]} == {mine.pk, received.pk}

    login(client, ow.pudong_dispatcher)  # what waits for dispatch at my node
    resp = client.get(reverse("web:order_list"))
    assert {o.pk for o in resp.context["rows"]} == {mine.pk, other_owner.pk}

    login(client, ow.pudong_manager)  # open orders, breached first
    WorkOrder.objects.filter(pk=other_owner.pk).update(sla_state=SlaState.BREACHED)
    WorkOrder.objects.filter(pk=received.pk).update(sla_state=SlaState.AT_RISK)
    rows = client.get(reverse("web:order_list")).context["rows"]
    assert [o.pk for o in rows] == [other_owner.pk, received.pk, mine.pk]

    login(client, ow.quality)  # everything in scope
    resp = client.get(reverse("web:order_list"))
    assert not resp.context["defaults_applied"] and len(resp.context["rows"]) == 4


def test_list_filters(client, ow):
    a = new_order(ow)
    b = new_order(ow, type="complaint", unit=False, problem="投诉上门太晚")
    t = new_order(ow, agent=ow.tianhe_agent, customer=ow.c_tianhe)
    login(client, ow.hq_manager)

    def pks(**params):
        resp = client.get(reverse("web:order_list"), {"f": "1", **params})
        assert resp.status_code == 200, resp.context["form"].errors
        return {o.pk for o in resp.context["rows"]}

    assert pks() == {a.pk, b.pk, t.pk}
    assert pks(type="complaint") == {b.pk}
    assert pks(node=ow.tianhe.pk) == {t.pk}
    assert pks(node=ow.east.pk) == {a.pk, b.pk}  # a centre: its outlets
    assert pks(status="classified", type="repair") == {a.pk, t.pk}
    assert pks(q=a.number) == {a.pk}
    assert pks(q="13987654321") == {t.pk}
    assert pks(q="张") == {a.pk, b.pk}
    today = timezone.localdate()
    assert pks(date_from=today.isoformat(), date_to=today.isoformat()) == {a.pk, b.pk, t.pk}
    assert pks(date_from=(today + dt.timedelta(days=1)).isoformat()) == set()
    WorkOrder.objects.filter(pk=b.pk).update(sla_state=SlaState.AT_RISK)
    assert pks(sla_state="at_risk") == {b.pk}
    assert pks(mine="on") == set()
    # htmx: only the table
    resp = client.get(reverse("web:order_list"), {"f": "1", "type": "complaint"}, **HX)
    assert "<html" not in body(resp) and b.number in body(resp) and a.number not in body(resp)
    # bad filters: 400 with the message, not a 500
    resp = client.get(reverse("web:order_list"), {"f": "1", "status": "nope", "date_from": "x"})
    assert resp.status_code == 400 and {"status", "date_from"} <= set(resp.context["form"].errors)
    resp = client.get(reverse("web:order_list"), {"f": "1", "cursor": "garbage"})
    assert resp.status_code == 400 and "分页游标无效" in body(resp)


def test_list_is_scoped_and_masked(client, ow):
    new_order(ow)
    t = new_order(ow, agent=ow.tianhe_agent, customer=ow.c_tianhe)
    login(client, ow.pudong_dispatcher)
    html = body(client.get(reverse("web:order_list"), {"f": "1"}))
    assert t.number not in html and "13812345678" in html
    login(client, ow.quality)  # east, no PII
    html = body(client.get(reverse("web:order_list"), {"f": "1"}))
    assert "138****5678" in html and "13812345678" not in html and t.number not in html
    # the customer lists their own orders
    login(client, ow.customer_user)
    resp = client.get(reverse("web:order_list"))
    assert resp.status_code == 200 and t.number not in body(resp) and len(resp.context["rows"]) == 1


def test_list_pages_with_a_keyset_cursor(client, ow, monkeypatch):
    from aftersales.web import views_orders

    monkeypatch.setattr(views_orders, "PAGE_SIZE", 2)
    orders = [new_order(ow) for _ in range(5)]
    login(client, ow.quality)
    seen, cursor = [], None
    for _ in range(3):
        resp = client.get(reverse("web:order_list"), {"f": "1", **({"cursor": cursor} if cursor else {})})
        seen += [o.pk for o in resp.context["rows"]]
        cursor = resp.context["next_cursor"]
    assert seen == [o.pk for o in reversed(orders)] and cursor is None


def _list_queries(client, user) -> int:
    login(client, user)
    client.get(reverse("web:order_list"), {"f": "1"})  # warm the session
    with CaptureQueriesContext(connection) as ctx:
        resp = client.get(reverse("web:order_list"), {"f": "1"})
    assert resp.status_code == 200
    return len(ctx.captured_queries), len(resp.context["rows"])


def test_list_query_count_does_not_grow_with_rows(client, ow):
    for _ in range(5):
        new_order(ow)
    few, n = _list_queries(client, ow.pudong_agent)
    assert n == 5
    for _ in range(45):
        new_order(ow)
    many, n = _list_queries(client, ow.pudong_agent)
    assert n == 50
    assert many == few and many <= 12


# ---------------------------------------------------------------- outbox


def test_outbox_shows_scope_masking_and_links(client, ow):
    o = new_order(ow)
    Message.objects.create(channel="sms", event="order_received", customer=ow.c_pudong, address="13812345678",
                           body=f"【售后服务】您的服务请求已受理，工单号 {o.number}。", ref=o.number, ref_id=o.pk,
                           node=ow.pudong, status="kept")
    Message.objects.create(channel="sms", event="confirm_code", customer=ow.c_pudong, address="13812345678",
                           body=f"【售后服务】工单 {o.number} 的服务确认码为 493021，15 分钟内有效。", ref=o.number,
                           ref_id=o.pk, node=ow.pudong, status="kept")
    token = "Zq3v9K_x-2LmPq8RtY6uW0aBcDeFgHiJ"
    Message.objects.create(channel="sms", event="survey", customer=ow.c_pudong, address="13812345678",
                           body=f"【售后服务】请为工单 {o.number} 的服务评分：http://testserver/feedback/s/{token}/（7 天内有效）。",
                           ref=o.number, ref_id=o.pk, node=ow.pudong, status="kept")
    Message.objects.create(channel="sms", event="order_received", customer=ow.c_tianhe, address="13987654321",
                           body="天河的通知", ref="GD1", node=ow.tianhe)

    login(client, ow.pudong_agent)  # customer.pii at Pudong
    resp = client.get(reverse("web:outbox"))
    html = body(resp)
    assert len(resp.context["rows"]) == 3 and "天河的通知" not in html
    assert "13812345678" in html and "受理通知" in html and "服务确认码" in html
    assert "493021" not in html and "******" in html  # the code is for the customer only
    assert token not in html and "/feedback/s/…/（7 天内有效）" in html  # so is the survey link
    assert o.number in html and reverse("web:order_detail", args=[o.pk]) in html
    assert [r["m"].event for r in resp.context["rows"]] == ["survey", "confirm_code", "order_received"]

    login(client, ow.hq_manager)  # everywhere, without customer.pii
    html = body(client.get(reverse("web:outbox")))
    assert "天河的通知" in html and "138****5678" in html and "13812345678" not in html

    login(client, ow.pudong_agent)
    resp = client.get(reverse("web:outbox"), {"event": "confirm_code"})
    assert [r["m"].event for r in resp.context["rows"]] == ["confirm_code"]
    resp = client.get(reverse("web:outbox"), {"status": "queued"})
    assert resp.context["rows"] == []
    resp = client.get(reverse("web:outbox"), {"ref": o.number.lower()}, **HX)
    assert len(resp.context["rows"]) == 3 and "<html" not in body(resp)
    resp = client.get(reverse("web:outbox"), {"event": "nope"})
    assert resp.status_code == 400


def test_outbox_query_count_is_bounded(client, ow):
    def count():
        login(client, ow.pudong_agent)
        client.get(reverse("web:outbox"))
        with CaptureQueriesContext(connection) as ctx:
            resp = client.get(reverse("web:outbox"))
        return len(ctx.captured_queries), len(resp.context["rows"])

    def add(n):
        Message.objects.bulk_create([Message(channel="sms", event="dispatched", customer=ow.c_pudong,
                                             address="13812345678", body="x", node=ow.pudong) for _ in range(n)])

    add(5)
    few, n = count()
    assert n == 5
    add(45)
    many, n = count()
    assert n == 50 and many == few


def test_home_links_to_the_intake_and_lists(client, ow):
    login(client, ow.pudong_agent)
    html = body(client.get(reverse("web:home")))
    assert 'data-testid="home-intake"' in html and reverse("web:order_list") in html
    login(client, ow.pudong_manager)
    assert reverse("web:order_list") in body(client.get(reverse("web:home")))


@pytest.mark.parametrize("now, start", [
    ((2026, 3, 3, 2, 41), (2026, 3, 3, 9)),  # at night: the morning
    ((2026, 3, 3, 10, 15), (2026, 3, 3, 11)),  # the next full hour
    ((2026, 3, 3, 19, 30), (2026, 3, 4, 9)),  # in the evening: tomorrow morning
])
def test_default_dispatch_slot(now, start):
    from aftersales.web.views_orders import _default_slot

    tz = timezone.get_current_timezone()
    o = WorkOrder()
    a, b = _default_slot(o, dt.datetime(*now, tzinfo=tz))
    assert a == dt.datetime(*start, tzinfo=tz) and b - a == dt.timedelta(hours=2)
    # a wished window ahead is proposed first
    o.wish_from, o.wish_to = dt.datetime(2026, 3, 5, 14, tzinfo=tz), dt.datetime(2026, 3, 5, 18, tzinfo=tz)
    assert _default_slot(o, dt.datetime(*now, tzinfo=tz)) == (o.wish_from, o.wish_to)
