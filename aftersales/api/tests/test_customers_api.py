"""The customer file: scope (404), permission (403), masking per role, validation (400), audit."""

import datetime as dt

import pytest
from django.utils import timezone

from aftersales.customers.models import Address, Customer, Tag, Unit, UnitRepair
from aftersales.records.models import AuditEntry

from .conftest import ApiClient, errors_of

pytestmark = pytest.mark.django_db

FULL_PHONE, MASKED_PHONE = "13812345678", "138****5678"
FULL_STREET, MASKED_STREET = "张杨路500号2栋1201室", "张杨****"


def audited(action, **kw) -> bool:
    return AuditEntry.objects.filter(action=action, **kw).exists()


def today():
    return timezone.localdate()


# ---------------------------------------------------------------- reading and masking

@pytest.mark.parametrize("who, phone, street", [
    ("pudong_agent", FULL_PHONE, FULL_STREET),
    ("pudong_dispatcher", FULL_PHONE, FULL_STREET),
    ("pudong_manager", FULL_PHONE, FULL_STREET),
    ("admin", FULL_PHONE, FULL_STREET),
    ("quality", MASKED_PHONE, MASKED_STREET),
    ("hq_manager", MASKED_PHONE, MASKED_STREET),
    ("east_manager", MASKED_PHONE, MASKED_STREET),
    ("customer_user", FULL_PHONE, FULL_STREET),  # their own file
])
def test_masking_per_role(world, who, phone, street):
    c = ApiClient(getattr(world, who))
    r = c.get(f"/customers/{world.c_pudong.id}")
    assert r.status_code == 200, r.content
    assert r.json()["phone"] == phone
    assert r.json()["addresses"][0]["street"] == street
    listed = [i for i in c.get("/customers").json()["items"] if i["id"] == world.c_pudong.id][0]
    assert listed["phone"] == phone and listed["default_address"]["street"] == street


def test_list_is_scoped(world):
    ids = lambda user: [i["id"] for i in ApiClient(user).get("/customers").json()["items"]]  # noqa: E731
    assert ids(world.pudong_agent) == [world.c_pudong.id]
    assert ids(world.tianhe_agent) == [world.c_tianhe.id]
    assert ids(world.hangzhou_agent) == []
    assert ids(world.hq_manager) == [world.c_pudong.id, world.c_tianhe.id]
    assert ids(world.customer_user) == [world.c_pudong.id]
    assert ids(world.customer_user_tianhe) == [world.c_tianhe.id]


def test_list_filters(world):
    vip = Tag.objects.create(name="VIP")
    world.c_tianhe.tags.add(vip)
    c = ApiClient(world.admin)
    ids = lambda **p: [i["id"] for i in c.get("/customers", p).json()["items"]]  # noqa: E731
    assert ids(tag="VIP") == [world.c_tianhe.id]
    assert ids(node_id=world.east.id) == [world.c_pudong.id]
    assert ids(node_id=world.south.id) == [world.c_tianhe.id]
    assert ids(q="1381") == [world.c_pudong.id]
    assert ids(q="+86 139 8765 4321") == [world.c_tianhe.id]
    assert ids(q="王") == [world.c_tianhe.id]
    assert ids(q="赵") == []
    r = c.get("/customers", {"node_id": 123456})
    assert r.status_code == 400 and "node_id" in errors_of(r)


def test_out_of_scope_customer_is_404(world):
    c = ApiClient(world.pudong_agent)
    assert c.get(f"/customers/{world.c_tianhe.id}").status_code == 404
    r = c.patch(f"/customers/{world.c_tianhe.id}", {"name": "改名"})
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    assert Customer.objects.get(pk=world.c_tianhe.id).name == "王芳"
    assert c.post(f"/customers/{world.c_tianhe.id}/addresses", {"address": {
        "province": "广东省", "city": "广州市", "district": "天河区", "street": "x"}}).status_code == 404
    assert c.post(f"/customers/{world.c_tianhe.id}/units", {
        "serial": "AC9", "model": "KFR-35GW", "purchase_date": "2024-01-01"}).status_code == 404
    assert c.get(f"/units/{world.u_tianhe.id}").status_code == 404
    assert c.get(f"/units/{world.u_tianhe.id}/warranty").status_code == 404
    assert c.get("/customers/999999").status_code == 404


def test_customer_user_sees_only_own_file(world):
    c = ApiClient(world.customer_user)
    assert c.get(f"/customers/{world.c_pudong.id}").status_code == 200
    assert c.get(f"/customers/{world.c_tianhe.id}").status_code == 404
    assert c.get(f"/units/{world.u_pudong.id}").status_code == 200
    assert c.get(f"/units/{world.u_tianhe.id}").status_code == 404
    assert c.get(f"/units/{world.u_pudong.id}/warranty").status_code == 200
    # but may not search, edit or register
    assert c.get("/customers/search", {"q": "138"}).status_code == 403
    assert c.patch(f"/customers/{world.c_pudong.id}", {"name": "x"}).status_code == 403
    assert c.post("/customers", {"name": "x", "phone": "13700000009"}).status_code == 403


def test_detail_has_addresses_tags_and_units_with_todays_decision(world):
    world.c_pudong.tags.add(Tag.objects.create(name="VIP"))
    r = ApiClient(world.pudong_agent).get(f"/customers/{world.c_pudong.id}")
    body = r.json()
    assert body["tags"] == ["VIP"] and body["node"]["code"] == "SH-PD"
    unit = body["units"][0]
    assert unit["serial"] == "AC2025000001" and unit["model"]["category"] == "AC"
    assert unit["warranty"]["kind"] == "free_repair"
    assert unit["warranty"]["label"] == "免费维修" and unit["warranty"]["free"] is True


def test_search(world):
    r = ApiClient(world.pudong_agent).get("/customers/search", {"q": "138"})
    assert r.status_code == 200
    assert [(i["id"], i["phone"]) for i in r.json()["items"]] == [(world.c_pudong.id, FULL_PHONE)]
    r = ApiClient(world.hq_manager).get("/customers/search", {"q": "王"})
    assert [(i["id"], i["phone"]) for i in r.json()["items"]] == [(world.c_tianhe.id, "139****4321")]
    assert ApiClient(world.trainer).get("/customers/search", {"q": "138"}).status_code == 403
    r = ApiClient(world.pudong_agent).get("/customers/search")
    assert r.status_code == 400 and errors_of(r) == {"q": ["请填写此项。"]}


# ---------------------------------------------------------------- writing

def test_create_customer(world):
    data = {"name": "李雷", "phone": "137-0000-0001", "tags": ["新客户"], "notes": "电话预约",
            "address": {"province": "上海市", "city": "上海市", "district": "浦东新区", "street": "世纪大道1号"}}
    r = ApiClient(world.pudong_agent).post("/customers", data)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["phone"] == "13700000001" and body["node"]["id"] == world.pudong.id  # matched by district
    assert body["tags"] == ["新客户"] and body["addresses"][0]["street"] == "世纪大道1号"
    assert audited("customer.create", object_id=str(body["id"]))
    assert audited("address.create", object_id=str(body["addresses"][0]["id"]))


@pytest.mark.parametrize("who", ["trainer", "quality", "hq_manager", "customer_user", "nobody"])
def test_create_customer_needs_customer_edit(world, who):
    r = ApiClient(getattr(world, who)).post("/customers", {"name": "李雷", "phone": "13700000001",
                                                           "node_id": world.pudong.id})
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"
    assert not Customer.objects.filter(phone="13700000001").exists()


def test_create_customer_bad_input(world):
    c = ApiClient(world.pudong_agent)
    r = c.post("/customers", {"name": "李雷", "phone": "1234", "node_id": world.pudong.id})
    assert r.status_code == 400
    assert errors_of(r)["phone"][0].startswith("手机号格式不正确")
    r = c.post("/customers", {"name": "李雷", "phone": "13812345678", "node_id": world.pudong.id})
    assert r.status_code == 400
    msg = errors_of(r)["phone"][0]
    assert "张伟" in msg and str(world.c_pudong.id) in msg
    # the owner is out of the caller's scope: named masked, with the outlet to contact
    r = ApiClient(world.tianhe_agent).post("/customers", {"name": "李雷", "phone": "13812345678",
                                                          "node_id": world.tianhe.id})
    msg = errors_of(r)["phone"][0]
    assert "张*" in msg and "上海浦东网点" in msg and "张伟" not in msg
    r = c.post("/customers", {"address": {"province": "上海市", "lat": 200}})
    assert r.status_code == 400
    assert set(errors_of(r)) == {"name", "phone", "address.city", "address.district", "address.street",
                                 "address.lat"}
    assert errors_of(r)["name"] == ["请填写此项。"]
    r = c.post("/customers", {"name": "李雷", "phone": "13700000001", "node_id": world.tianhe.id})
    assert r.status_code == 400 and "node_id" in errors_of(r)
    r = c.post("/customers", {"name": "x" * 51, "phone": "13700000001", "tags": ["t" * 31], "node_id": "abc"})
    assert set(errors_of(r)) == {"name", "tags[0]", "node_id"}
    assert errors_of(r)["name"] == ["不能超过 50 个字符。"]
    assert not Customer.objects.filter(phone="13700000001").exists()


def test_update_customer(world):
    c = ApiClient(world.pudong_agent)
    r = c.patch(f"/customers/{world.c_pudong.id}", {"name": "张伟伟", "tags": ["VIP"]})
    assert r.status_code == 200, r.content
    assert r.json()["name"] == "张伟伟" and r.json()["tags"] == ["VIP"] and r.json()["phone"] == FULL_PHONE
    assert audited("customer.update", object_id=str(world.c_pudong.id))
    r = c.patch(f"/customers/{world.c_pudong.id}", {"phone": "13987654321"})
    assert r.status_code == 400 and "phone" in errors_of(r)
    assert ApiClient(world.quality).patch(f"/customers/{world.c_pudong.id}", {"name": "x"}).status_code == 403


def test_add_address(world):
    c = ApiClient(world.pudong_agent)
    url = f"/customers/{world.c_pudong.id}/addresses"
    r = c.post(url, {"address": {"label": "公司", "province": "上海市", "city": "上海市", "district": "浦东新区",
                                 "street": "陆家嘴环路1000号"}, "make_default": True})
    assert r.status_code == 201, r.content
    assert r.json()["is_default"] is True and r.json()["street"] == "陆家嘴环路1000号"
    assert Address.objects.get(pk=world.a_pudong.pk).is_default is False
    assert audited("address.create", object_id=str(r.json()["id"]))
    r = c.post(url, {"address": {"province": "上海市", "city": "上海市", "district": "浦东新区", "street": " "}})
    assert r.status_code == 400 and set(errors_of(r)) == {"address.street"}
    r = c.post(url, {})
    assert r.status_code == 400 and errors_of(r) == {"address": ["请填写此项。"]}


def test_register_unit(world):
    c = ApiClient(world.pudong_tech)
    r = c.post(f"/customers/{world.c_pudong.id}/units", {
        "serial": "xqg-2024-0001", "model": "xqg100", "purchase_date": str(today() - dt.timedelta(days=3)),
        "sales_channel": "online", "invoice_no": "INV-9", "address_id": world.a_pudong.id})
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["serial"] == "XQG-2024-0001" and body["model"]["code"] == "XQG100"
    assert body["warranty"]["kind"] == "return"
    assert audited("unit.register", object_id=str(body["id"]))


@pytest.mark.parametrize("who", ["trainer", "quality", "pudong_dispatcher", "customer_user"])
def test_register_unit_needs_unit_edit(world, who):
    r = ApiClient(getattr(world, who)).post(f"/customers/{world.c_pudong.id}/units", {
        "serial": "AC2025000099", "model": "KFR-35GW", "purchase_date": "2024-01-01"})
    assert r.status_code == 403


@pytest.mark.parametrize("change, field, message", [
    ({"serial": "!!"}, "serial", "序列号格式不正确"),
    ({"serial": "AC2025000001"}, "serial", "序列号 AC2025000001 已登记"),
    ({"model": "NOPE-1"}, "model", "型号 NOPE-1 不存在"),
    ({"purchase_date": "2999-01-01"}, "purchase_date", "购买日期不能晚于今天"),
    ({"purchase_date": "1999-12-31"}, "purchase_date", "购买日期不能早于 2000-01-01"),
    ({"purchase_date": "2024-02-30"}, "purchase_date", "日期格式不正确"),
    ({"purchase_date": "yesterday"}, "purchase_date", "日期格式不正确"),
    ({"sales_channel": "street"}, "sales_channel", "无效的选项"),
    ({"serial": "A" * 41}, "serial", "不能超过 40 个字符"),
    ({"address_id": -1}, "address_id", "不能小于 1"),
])
def test_register_unit_bad_input(world, change, field, message):
    data = {"serial": "AC2025000002", "model": "KFR-35GW", "purchase_date": "2024-01-01", **change}
    r = ApiClient(world.pudong_agent).post(f"/customers/{world.c_pudong.id}/units", data)
    assert r.status_code == 400, r.content
    errs = errors_of(r)
    assert list(errs) == [field]
    assert message in errs[field][0]
    assert Unit.objects.count() == 2


def test_register_unit_missing_fields(world):
    r = ApiClient(world.pudong_agent).post(f"/customers/{world.c_pudong.id}/units", {})
    assert r.status_code == 400
    assert errors_of(r) == {f: ["请填写此项。"] for f in ("serial", "model", "purchase_date")}


def test_register_unit_foreign_address(world):
    other = Address.objects.get(customer=world.c_tianhe)
    r = ApiClient(world.admin).post(f"/customers/{world.c_pudong.id}/units", {
        "serial": "AC2025000002", "model": "KFR-35GW", "purchase_date": "2024-01-01", "address_id": other.id})
    assert r.status_code == 400 and list(errors_of(r)) == ["address_id"]


# ---------------------------------------------------------------- units

def test_unit_detail(world):
    UnitRepair.objects.create(unit=world.u_pudong, started_on=today() - dt.timedelta(days=20),
                              finished_on=today() - dt.timedelta(days=15), fault_key="COMP")
    r = ApiClient(world.quality).get(f"/units/{world.u_pudong.id}")
    assert r.status_code == 200
    body = r.json()
    assert body["customer"]["phone"] == MASKED_PHONE and body["repairs"][0]["fault_key"] == "COMP"
    assert body["warranty"]["extension_days"] == 5


def test_warranty_decision(world):
    c = ApiClient(world.pudong_agent)
    url = f"/units/{world.u_pudong.id}/warranty"
    r = c.get(url)
    assert r.status_code == 200
    d = r.json()
    assert d["kind"] == "free_repair" and d["rule"] == "whole_unit_warranty" and d["label"] == "免费维修"
    assert d["days_since_purchase"] == 100 and d["period_start"] == str(world.u_pudong.purchase_date)
    assert d["reason"]
    on = world.u_pudong.purchase_date + dt.timedelta(days=500)
    d = c.get(url, {"on": str(on), "part": "COMP"}).json()
    assert d["rule"] == "main_part_warranty"
    assert c.get(url, {"on": str(on)}).json()["rule"] == "expired"
    d = c.get(url, {"exclusions": ["misuse", "force_majeure"]}).json()
    assert d["kind"] == "chargeable" and d["rule"] == "exclusion:misuse" and d["free"] is False
    r = c.get(url, {"on": str(world.u_pudong.purchase_date - dt.timedelta(days=1))})
    assert r.status_code == 400 and list(errors_of(r)) == ["on"]
    r = c.get(url, {"on": "2024-13-01", "exclusions": "weather"})
    assert r.status_code == 400 and set(errors_of(r)) == {"on", "exclusions[0]"}


def test_record_exchange(world):
    c = ApiClient(world.pudong_agent)
    url = f"/units/{world.u_pudong.id}/exchange"
    r = c.post(url, {"on": str(today() - dt.timedelta(days=2)), "new_serial": "ac2025000777"})
    assert r.status_code == 200, r.content
    assert r.json()["exchanged_on"] == str(today() - dt.timedelta(days=2)) and r.json()["serial"] == "AC2025000777"
    assert r.json()["warranty"]["period_start"] == str(today() - dt.timedelta(days=2))
    assert audited("unit.exchange", object_id=str(world.u_pudong.id))
    r = c.post(url, {"on": str(today() + dt.timedelta(days=2))})
    assert r.status_code == 400 and list(errors_of(r)) == ["on"]
    r = c.post(url, {"on": str(today()), "new_serial": "WM2024000009"})
    assert r.status_code == 400 and list(errors_of(r)) == ["serial"]
    assert ApiClient(world.quality).post(url, {"on": str(today())}).status_code == 403
    assert ApiClient(world.tianhe_agent).post(url, {"on": str(today())}).status_code == 404


def test_record_repair(world):
    c = ApiClient(world.pudong_tech)
    url = f"/units/{world.u_pudong.id}/repairs"
    r = c.post(url, {"started_on": str(today() - dt.timedelta(days=5)), "finished_on": str(today()),
                     "fault_key": "COMP", "source": "WO-1"})
    assert r.status_code == 201, r.content
    assert r.json()["in_warranty"] is True
    assert audited("unit.repair", object_id=str(r.json()["id"]))
    r = c.post(url, {"started_on": str(today()), "finished_on": str(today() - dt.timedelta(days=1)),
                     "fault_key": " "})
    assert r.status_code == 400 and set(errors_of(r)) == {"finished_on", "fault_key"}
    r = c.post(url, {"fault_key": "COMP"})
    assert r.status_code == 400 and errors_of(r) == {"started_on": ["请填写此项。"]}
    assert ApiClient(world.hq_manager).post(url, {"started_on": str(today()), "fault_key": "X"}).status_code == 403
