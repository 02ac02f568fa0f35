"""Customer file services: validation at entry (R-Q-4), scoping, atomicity, audit."""

import datetime as dt

import pytest

from aftersales.core.errors import NotFound, PermissionDenied, ValidationFailed
from aftersales.customers import services as cs
from aftersales.customers.models import Address, Customer, Unit
from aftersales.records.models import AuditEntry

ADDR = {"province": "上海市", "city": "上海市", "district": "浦东新区", "street": "张江路88号"}


def _fields(exc) -> set[str]:
    return set(exc.value.errors)


def test_create_finds_the_outlet_from_the_district_and_audits(world):
    c = cs.customer_create(user=world.pudong_agent, name=" 陈静 ", phone="+86 139-1234-0000", address=ADDR,
                           tags=["VIP", "老客户"])
    assert c.node == world.pudong and c.name == "陈静" and c.phone == "13912340000"
    assert sorted(t.name for t in c.tags.all()) == ["VIP", "老客户"]
    assert c.addresses.get().is_default
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"customer.create", "address.create"} <= actions


@pytest.mark.parametrize("phone", ["12812345678", "1381234567", "138123456789", "abc", ""])
def test_invalid_phone_is_a_field_error(world, phone):
    with pytest.raises(ValidationFailed) as e:
        cs.customer_create(user=world.pudong_agent, name="甲", phone=phone, address=ADDR)
    assert _fields(e) == {"phone"}
    assert Customer.objects.count() == 2


def test_duplicate_phone_names_the_existing_customer(world):
    with pytest.raises(ValidationFailed) as e:
        cs.customer_create(user=world.pudong_agent, name="另一人", phone="13812345678", address=ADDR)
    msg = str(e.value.errors["phone"][0])
    assert "张伟" in msg and str(world.c_pudong.pk) in msg


def test_duplicate_phone_of_a_customer_out_of_scope_is_named_masked(world):
    with pytest.raises(ValidationFailed) as e:
        cs.customer_create(user=world.pudong_agent, name="另一人", phone="13987654321", address=ADDR)
    msg = str(e.value.errors["phone"][0])
    assert "王*" in msg and "王芳" not in msg and "广州天河网点" in msg


def test_every_bad_field_is_reported_at_once_and_nothing_is_written(world):
    before = (Customer.objects.count(), Address.objects.count(), AuditEntry.objects.count())
    with pytest.raises(ValidationFailed) as e:
        cs.customer_create(user=world.pudong_agent, name="", phone="123",
                           address={"province": "上海市", "city": "", "district": "浦东新区", "street": ""})
    assert _fields(e) >= {"name", "phone", "address.city", "address.street"}
    assert (Customer.objects.count(), Address.objects.count(), AuditEntry.objects.count()) == before


def test_uncovered_district_or_foreign_outlet_is_refused(world):
    with pytest.raises(ValidationFailed) as e:
        cs.customer_create(user=world.pudong_agent, name="甲", phone="13500000001",
                           address={**ADDR, "province": "北京市", "city": "北京市", "district": "朝阳区"})
    assert _fields(e) == {"address.district"}
    with pytest.raises(ValidationFailed) as e:
        cs.customer_create(user=world.pudong_agent, name="甲", phone="13500000001", node_id=world.tianhe.pk)
    assert _fields(e) == {"node_id"}


def test_roles_without_edit_rights_cannot_create(world):
    for u in (world.trainer, world.quality, world.customer_user, world.nobody):
        with pytest.raises(PermissionDenied):
            cs.customer_create(user=u, name="甲", phone="13500000002", address=ADDR)


def test_update_is_scoped_and_audited_with_before_and_after(world):
    with pytest.raises(NotFound):
        cs.customer_update(user=world.pudong_agent, customer_id=world.c_tianhe.pk, notes="x")
    cs.customer_update(user=world.pudong_agent, customer_id=world.c_pudong.pk, phone="13812340000")
    e = AuditEntry.objects.get(action="customer.update")
    assert e.before["phone"] == "13812345678" and e.after["phone"] == "13812340000"


def test_unit_register_validates_every_field(world):
    future = dt.date.today() + dt.timedelta(days=1)
    with pytest.raises(ValidationFailed) as e:
        cs.unit_register(user=world.pudong_agent, customer_id=world.c_pudong.pk, serial="x!", model_code="NOPE",
                         purchase_date=future, sales_channel="tv-shop")
    assert _fields(e) == {"serial", "model", "purchase_date", "sales_channel"}
    with pytest.raises(ValidationFailed) as e:
        cs.unit_register(user=world.pudong_agent, customer_id=world.c_pudong.pk, serial="AC2025000001",
                         model_code="KFR-35GW", purchase_date="2025-13-40")
    assert _fields(e) == {"serial", "purchase_date"}
    assert "已登记" in str(e.value.errors["serial"][0])
    assert Unit.objects.count() == 2


def test_unit_register_and_repair_and_exchange(world):
    u = cs.unit_register(user=world.pudong_tech, customer_id=world.c_pudong.pk, serial="ac-2026-77",
                         model_code="kfr-35gw", purchase_date="2025-06-01", invoice_no=" F123 ")
    assert u.serial == "AC-2026-77" and u.model == world.ac_model and u.invoice_no == "F123"
    r = cs.unit_repair_record(user=world.pudong_tech, unit_id=u.pk, started_on=dt.date(2025, 8, 1),
                              finished_on=dt.date(2025, 8, 4), fault_key="COMP", in_warranty=True)
    assert r.unit == u
    with pytest.raises(ValidationFailed) as e:
        cs.unit_repair_record(user=world.pudong_tech, unit_id=u.pk, started_on=dt.date(2025, 8, 5),
                              finished_on=dt.date(2025, 8, 1), fault_key="", in_warranty=True)
    assert _fields(e) == {"finished_on", "fault_key"}
    cs.unit_record_exchange(user=world.pudong_agent, unit_id=u.pk, on=dt.date(2025, 9, 1), new_serial="AC-2026-78")
    u.refresh_from_db()
    assert u.exchanged_on == dt.date(2025, 9, 1) and u.serial == "AC-2026-78"
    with pytest.raises(NotFound):
        cs.unit_record_exchange(user=world.tianhe_agent, unit_id=u.pk, on=dt.date(2025, 9, 1))


def test_lengths_and_coordinates_are_field_errors_not_database_errors(world):
    with pytest.raises(ValidationFailed) as e:
        cs.customer_create(user=world.pudong_agent, name="甲", phone="13500000003", tags=["超" * 31],
                           address={**ADDR, "street": "路" * 201, "district": "区" * 31, "lat": "north", "lng": 200})
    assert _fields(e) >= {"tags", "address.street", "address.district", "address.lat", "address.lng"}
    with pytest.raises(ValidationFailed) as e:
        cs.customer_update(user=world.pudong_agent, customer_id=world.c_pudong.pk, tags=[f"t{i}" for i in range(21)])
    assert _fields(e) == {"tags"}
    assert Customer.objects.count() == 2
