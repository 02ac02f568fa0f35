"""The server-rendered pages: sign-in, home per role, permissions, scoping, masking,
the create form, language switch, and bounded queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from aftersales.conftest import PASSWORD
from aftersales.customers.models import Customer, Unit
from aftersales.org.models import Certification, CertificationType, Employee
from aftersales.web.permissions import require_perm
from aftersales.web.views import demo_logins

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)
    return client


# ---------------------------------------------------------------- sign in


def test_login_page_and_sign_in(client, world):
    resp = client.get(reverse("web:login"))
    assert resp.status_code == 200
    assert "登录" in resp.content.decode()
    resp = client.post(reverse("web:login"), {"username": "pudong_agent", "password": PASSWORD})
    assert resp.status_code == 302 and resp["Location"] == reverse("web:home")
    resp = client.get(reverse("web:home"))
    assert resp.status_code == 200
    assert 'data-section="agent"' in resp.content.decode()


def test_login_wrong_password_stays_on_form(client, world):
    resp = client.post(reverse("web:login"), {"username": "pudong_agent", "password": "nope"})
    assert resp.status_code == 200
    assert "_auth_user_id" not in client.session


def test_demo_hint_only_in_debug(client, world, settings):
    settings.DEBUG = False
    assert 'data-testid="demo-hint"' not in client.get(reverse("web:login")).content.decode()
    settings.DEBUG = True
    body = client.get(reverse("web:login")).content.decode()
    assert 'data-testid="demo-hint"' in body
    users, password = demo_logins()
    assert password in body and all(f"<code>{u}</code>" in body for u in users)


def test_logout_is_post_only(client, world):
    login(client, world.pudong_agent)
    assert client.get(reverse("web:logout")).status_code == 405
    resp = client.post(reverse("web:logout"))
    assert resp.status_code == 302 and resp["Location"] == reverse("web:login")
    assert "_auth_user_id" not in client.session


def test_anonymous_is_sent_to_login(client, world):
    for url in (reverse("web:home"), reverse("web:customer_search"), f"/customers/{world.c_pudong.pk}/"):
        resp = client.get(url)
        assert resp.status_code == 302
        assert resp["Location"].startswith(reverse("web:login") + "?next=")


def test_anonymous_htmx_gets_hx_redirect(client, world):
    resp = client.get(reverse("web:customer_search"), {"q": "138"}, HTTP_HX_REQUEST="true")
    assert resp.status_code == 401
    assert resp["HX-Redirect"].startswith(reverse("web:login"))


# ---------------------------------------------------------------- home per role


@pytest.mark.parametrize(
    "username, section",
    [
        ("admin", "admin"),
        ("hq_manager", "manager"),
        ("east_manager", "manager"),
        ("pudong_manager", "manager"),
        ("pudong_agent", "agent"),
        ("pudong_dispatcher", "agent"),
        ("pudong_tech", "technician"),
        ("quality", "quality"),
        ("trainer", "trainer"),
    ],
)
def test_home_per_role(client, world, username, section):
    login(client, getattr(world, username))
    resp = client.get(reverse("web:home"))
    assert resp.status_code == 200
    body = resp.content.decode()
    assert f'data-section="{section}"' in body
    assert "售后服务管理系统" in body


def test_home_shows_names_and_role_labels(client, world):
    login(client, world.pudong_agent)
    body = client.get(reverse("web:home")).content.decode()
    assert "pudong_agent" in body and "客服专员" in body
    # nav by permission: the agent creates customers, does not see staff pages
    assert reverse("web:customer_create") in body
    assert reverse("web:staff_certificates") not in body


def test_customer_home_redirects_to_own_file(client, world):
    login(client, world.customer_user)
    resp = client.get(reverse("web:home"))
    assert resp.status_code == 302
    assert resp["Location"] == reverse("web:customer_detail", args=[world.c_pudong.pk])
    resp = client.get(resp["Location"])
    assert resp.status_code == 200
    assert "13812345678" in resp.content.decode()  # their own number, unmasked


def test_customer_cannot_open_another_file(client, world):
    login(client, world.customer_user)
    assert client.get(reverse("web:customer_detail", args=[world.c_tianhe.pk])).status_code == 404
    assert client.get(reverse("web:customer_search")).status_code == 403


def test_manager_figures_are_scoped(client, world):
    t = CertificationType.objects.create(code="REFRIG", name="制冷工证")
    today = timezone.localdate()
    Certification.objects.create(employee=world.tech_employee, type=t, number="C-1",
                                 issued_on=today - dt.timedelta(days=1000), expires_on=today + dt.timedelta(days=10))
    from aftersales.org.models import RoleAssignment  # noqa: F401  (technician role exists via the fixture)

    login(client, world.pudong_manager)
    ctx = client.get(reverse("web:home")).context
    assert ctx["figures"] == {"customers": 1, "units": 1, "technicians": 1, "expiring": 1}
    login(client, world.hq_manager)
    ctx = client.get(reverse("web:home")).context
    assert ctx["figures"]["customers"] == 2 and ctx["figures"]["units"] == 2
    body = client.get(reverse("web:home")).content.decode()
    assert 'data-chart="stacked-bars"' in body and "echarts.min.js" in body


def test_technician_home_lists_own_certificates_and_skills(client, world):
    t = CertificationType.objects.create(code="ELEC", name="电工证")
    Certification.objects.create(employee=world.tech_employee, type=t, number="E-77",
                                 issued_on=dt.date(2022, 1, 1), expires_on=dt.date(2030, 1, 1))
    login(client, world.pudong_tech)
    body = client.get(reverse("web:home")).content.decode()
    assert "电工证" in body and "E-77" in body and "空调" in body


def test_quality_home_lists_expiring_certificates(client, world):
    t = CertificationType.objects.create(code="ELEC", name="电工证")
    today = timezone.localdate()
    Certification.objects.create(employee=world.tech_employee, type=t, number="E-9",
                                 issued_on=today - dt.timedelta(days=900), expires_on=today + dt.timedelta(days=5))
    login(client, world.quality)
    body = client.get(reverse("web:home")).content.decode()
    assert "E-9" in body and "李师傅" in body


def test_trainer_home_lists_staff(client, world):
    login(client, world.trainer)
    body = client.get(reverse("web:home")).content.decode()
    assert "李师傅" in body and "T0001" in body


def test_user_without_roles_gets_403(client, world):
    login(client, world.nobody)
    resp = client.get(reverse("web:home"))
    assert resp.status_code == 403
    assert "无权访问" in resp.content.decode()


# ---------------------------------------------------------------- permissions


def test_page_without_permission_is_403(client, world):
    login(client, world.trainer)  # no customer.view
    resp = client.get(reverse("web:customer_search"))
    assert resp.status_code == 403
    assert "403" in resp.content.decode()
    login(client, world.pudong_agent)  # no staff.view
    assert client.get(reverse("web:staff_certificates")).status_code == 403
    login(client, world.quality)  # no customer.edit
    assert client.get(reverse("web:customer_create")).status_code == 403


def _patterns(resolver, prefix=""):
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            if getattr(p, "namespace", None) == "web":
                yield from _patterns(p, prefix)
        elif isinstance(p, URLPattern):
            yield p


def test_every_page_declares_its_permission():
    resolver = get_resolver()
    web = [p for p in _patterns(resolver)]
    assert web
    for p in web:
        if p.name in ("login", "logout"):
            continue
        assert getattr(p.callback, "required_perms", None), f"{p.name} has no @require_perm"


def test_require_perm_needs_a_permission():
    with pytest.raises(ValueError):
        require_perm()


# ---------------------------------------------------------------- customers


def test_out_of_scope_customer_is_404(client, world):
    login(client, world.pudong_agent)
    resp = client.get(reverse("web:customer_detail", args=[world.c_tianhe.pk]))
    assert resp.status_code == 404
    assert "未找到" in resp.content.decode()
    assert client.get(reverse("web:unit_warranty", args=[world.u_tianhe.pk])).status_code == 404
    assert client.get(reverse("web:customer_detail", args=[999999])).status_code == 404


def test_masking_by_role(client, world):
    url = reverse("web:customer_detail", args=[world.c_pudong.pk])
    login(client, world.quality)
    body = client.get(url).content.decode()
    assert "138****5678" in body and "13812345678" not in body
    assert "张杨****" in body and "张杨路500号" not in body
    login(client, world.pudong_agent)
    body = client.get(url).content.decode()
    assert "13812345678" in body and "138****5678" not in body
    assert "张杨路500号2栋1201室" in body


def test_customer_page_shows_units_and_decision(client, world):
    login(client, world.pudong_agent)
    resp = client.get(reverse("web:customer_detail", args=[world.c_pudong.pk]))
    body = resp.content.decode()
    assert "AC2025000001" in body and "KFR-35GW" in body
    assert 'data-kind="free_repair"' in body and "免费维修" in body
    assert "badge-free" in body
    assert "压缩机" in body  # a main part to check against


def test_unit_warranty_partial(client, world):
    login(client, world.pudong_agent)
    url = reverse("web:unit_warranty", args=[world.u_pudong.pk])
    purchase = world.u_pudong.purchase_date
    # day 3: return window
    resp = client.get(url, {"on": (purchase + dt.timedelta(days=3)).isoformat()}, HTTP_HX_REQUEST="true")
    assert resp.status_code == 200
    body = resp.content.decode()
    assert 'data-kind="return"' in body and "<html" not in body
    # two years on, main part (compressor): free repair; whole unit: chargeable
    later = (purchase + dt.timedelta(days=730)).isoformat()
    assert 'data-kind="free_repair"' in client.get(url, {"on": later, "part": "COMP"},
                                                   HTTP_HX_REQUEST="true").content.decode()
    assert 'data-kind="chargeable"' in client.get(url, {"on": later}, HTTP_HX_REQUEST="true").content.decode()
    # before purchase: the service's error, not a 500
    resp = client.get(url, {"on": (purchase - dt.timedelta(days=1)).isoformat()}, HTTP_HX_REQUEST="true")
    assert resp.status_code == 200 and "故障日期不能早于购买日期" in resp.content.decode()
    # garbage date: a form error
    resp = client.get(url, {"on": "not-a-date"}, HTTP_HX_REQUEST="true")
    assert resp.status_code == 200 and "msg-error" in resp.content.decode()
    # without htmx: a whole page
    assert "<html" in client.get(url).content.decode()


def test_search_live_results(client, world):
    login(client, world.pudong_agent)
    resp = client.get(reverse("web:customer_search"), {"q": "1381"}, HTTP_HX_REQUEST="true")
    assert resp.status_code == 200
    body = resp.content.decode()
    assert "张伟" in body and "<html" not in body
    assert "HX-Request" in resp["Vary"]
    # by name, and the full page without htmx
    body = client.get(reverse("web:customer_search"), {"q": "张"}).content.decode()
    assert "张伟" in body and "<html" in body
    # scoped: the agent of Pudong does not find Tianhe's customer
    body = client.get(reverse("web:customer_search"), {"q": "王芳"}, HTTP_HX_REQUEST="true").content.decode()
    assert "王芳" in body  # echoed query …
    assert reverse("web:customer_detail", args=[world.c_tianhe.pk]) not in body  # … but no result


def test_search_masks_for_quality(client, world):
    login(client, world.quality)
    body = client.get(reverse("web:customer_search"), {"q": "138"}, HTTP_HX_REQUEST="true").content.decode()
    assert "138****5678" in body and "13812345678" not in body


def test_recent_customers_on_agent_home(client, world):
    login(client, world.pudong_agent)
    client.get(reverse("web:customer_detail", args=[world.c_pudong.pk]))
    resp = client.get(reverse("web:home"))
    assert resp.context["recent_kind"] == "viewed"
    assert [c.pk for c in resp.context["recent"]] == [world.c_pudong.pk]


# ---------------------------------------------------------------- create


def _form(**kw):
    d = {"name": "赵敏", "phone": "13700001111", "province": "上海市", "city": "上海市", "district": "浦东新区",
         "street": "世纪大道100号", "notes": ""}
    d.update(kw)
    return d


def test_create_customer(client, world):
    login(client, world.pudong_agent)
    assert client.get(reverse("web:customer_create")).status_code == 200
    resp = client.post(reverse("web:customer_create"), _form())
    c = Customer.objects.get(phone="13700001111")
    assert resp.status_code == 302 and resp["Location"] == reverse("web:customer_detail", args=[c.pk])
    assert c.node_id == world.pudong.pk and c.addresses.get().street == "世纪大道100号"


def test_create_with_bad_phone_shows_error_and_writes_nothing(client, world):
    login(client, world.pudong_agent)
    before = Customer.objects.count()
    resp = client.post(reverse("web:customer_create"), _form(phone="12345"))
    assert resp.status_code == 200
    body = resp.content.decode()
    assert "手机号格式不正确" in body
    assert 'id="id_phone-error"' in body
    assert Customer.objects.count() == before


def test_create_reports_every_bad_field_at_once(client, world):
    login(client, world.pudong_agent)
    resp = client.post(reverse("web:customer_create"), _form(name="", phone="", street=""))
    assert resp.status_code == 200
    errors = resp.context["form"].errors
    assert {"name", "phone", "street"} <= set(errors)


def test_create_with_duplicate_phone_names_the_existing_customer(client, world):
    login(client, world.pudong_agent)
    resp = client.post(reverse("web:customer_create"), _form(phone="13812345678"))
    assert resp.status_code == 200
    body = resp.content.decode()
    assert "张伟" in body and str(world.c_pudong.pk) in body
    # a customer of another outlet is named masked, with the outlet to contact
    resp = client.post(reverse("web:customer_create"), _form(phone="13987654321"))
    body = resp.content.decode()
    assert "王*" in body and "广州天河网点" in body and "王芳" not in body


def test_create_outside_scope_is_a_field_error(client, world):
    login(client, world.pudong_agent)
    resp = client.post(reverse("web:customer_create"),
                       _form(province="广东省", city="广州市", district="天河区"))
    assert resp.status_code == 200
    assert "您无权在该网点建立客户档案" in resp.content.decode()
    assert not Customer.objects.filter(phone="13700001111").exists()


# ---------------------------------------------------------------- staff


def test_staff_certificates_page(client, world):
    t = CertificationType.objects.create(code="ELEC", name="电工证")
    today = timezone.localdate()
    Certification.objects.create(employee=world.tech_employee, type=t, number="E-1",
                                 issued_on=today - dt.timedelta(days=900), expires_on=today + dt.timedelta(days=45))
    login(client, world.east_manager)
    assert "E-1" not in client.get(reverse("web:staff_certificates")).content.decode()
    assert "E-1" in client.get(reverse("web:staff_certificates"), {"days": 60}).content.decode()
    assert client.get(reverse("web:staff_certificates"), {"days": "x"}).status_code == 200
    # the south centre's staff is out of the east manager's scope
    other = Employee.objects.create(user=world.tianhe_agent, node=world.tianhe, employee_no="S1", name="陈工",
                                    hire_date=dt.date(2021, 1, 1))
    Certification.objects.create(employee=other, type=t, number="S-1",
                                 issued_on=today - dt.timedelta(days=900), expires_on=today + dt.timedelta(days=3))
    assert "S-1" not in client.get(reverse("web:staff_certificates")).content.decode()


# ---------------------------------------------------------------- language


def test_language_switch_to_english(client, world):
    login(client, world.pudong_agent)
    body = client.get(reverse("web:home")).content.decode()
    assert '<html lang="zh-hans">' in body
    resp = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert resp.status_code == 302
    body = client.get(reverse("web:home")).content.decode()
    assert '<html lang="en">' in body
    assert "AfterSales Service Management" in body  # the web catalogue is translated
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert '<html lang="zh-hans">' in client.get(reverse("web:home")).content.decode()


# ---------------------------------------------------------------- bounded queries


def test_customer_page_query_count_is_bounded(client, world, django_assert_max_num_queries):
    url = reverse("web:customer_detail", args=[world.c_pudong.pk])

    def count(user):
        login(client, user)
        client.get(url)  # the first visit writes the recent-customers list to the session
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    one_unit = {u: count(u) for u in (world.pudong_agent, world.quality)}
    for i in range(8):
        Unit.objects.create(customer=world.c_pudong, model=world.ac_model if i % 2 else world.wm_model,
                            serial=f"BULK{i:06d}", purchase_date=dt.date.today() - dt.timedelta(days=30 * i),
                            invoice_no="X")
    assert {u: count(u) for u in one_unit} == one_unit  # no query per unit
    for user in one_unit:
        login(client, user)
        with django_assert_max_num_queries(14):
            assert client.get(url).status_code == 200


def test_search_query_count_is_bounded(client, world, django_assert_max_num_queries):
    for i in range(15):
        Customer.objects.create(node=world.pudong, name=f"客户{i}", phone=f"1381111{i:04d}")
    login(client, world.quality)
    with django_assert_max_num_queries(8):
        resp = client.get(reverse("web:customer_search"), {"q": "1381"}, HTTP_HX_REQUEST="true")
    assert resp.content.decode().count("data-testid=\"result-link\"") == 16


def test_manager_home_query_count_is_bounded(client, world, django_assert_max_num_queries):
    for i in range(10):
        Unit.objects.create(customer=world.c_tianhe, model=world.wm_model, serial=f"MG{i:06d}",
                            purchase_date=dt.date.today() - dt.timedelta(days=60 * i))
    login(client, world.hq_manager)
    with django_assert_max_num_queries(14):
        assert client.get(reverse("web:home")).status_code == 200
