"""customers_register_bulk: a batch gets exactly what the single services would give it, row
after row — the same rules, messages, scoping and audit — in a fixed number of queries."""

import dataclasses
import datetime as dt
import re

import pytest
from django.db import transaction

from aftersales.core.errors import DomainError, ErrorCollector, PermissionDenied, ValidationFailed
from aftersales.core.validators import mobile_error, normalize_mobile
from aftersales.customers import services as cs
from aftersales.customers.models import Address, Customer, Unit
from aftersales.customers.selectors import customer_queryset
from aftersales.customers.services import AddressIn, RegisterRow, UnitIn, customers_register_bulk
from aftersales.org.roles import Perm
from aftersales.records.audit import audit_verify, snapshot
from aftersales.records.models import AuditEntry

TODAY = dt.date.today()
PAST = TODAY - dt.timedelta(days=300)
SH = {"province": "上海市", "city": "上海市", "district": "浦东新区"}


def addr(street="张江路1号", **kw) -> AddressIn:
    return AddressIn(**{**SH, "street": street, **kw})


def unit(serial, model="KFR-35GW", on=PAST, channel=None, invoice="") -> UnitIn:
    return UnitIn(serial=serial, model_code=model, purchase_date=on, sales_channel=channel, invoice_no=invoice)


def row(phone, name="客户", address=None, u=None, **kw) -> RegisterRow:
    return RegisterRow(phone=phone, name=name, address=address, unit=u, **kw)


def table(world) -> list[tuple[str, RegisterRow]]:
    """Rows independent of one another (distinct phones and serials), good and bad."""
    return [
        ("new customer with a unit", row("13700000001", "甲", addr(" 张江路1号 "), unit("sn-t-0001", "kfr-35gw"),
                                         tags=["VIP", " 老客户 ", "VIP"], notes=" 备注 ")),
        ("new customer, no unit", row("+86 137-0000-0002", "乙", addr("张江路2号"), tags=["VIP"])),
        ("explicit outlet, no address", row("13700000003", "丙", node_id=world.pudong.pk, u=unit("SN-T-0003"))),
        ("outlet by code", row("13700000004", "丁", outlet_code="sh-pd", u=unit("SN-T-0004", channel="online"))),
        ("outlet by name", row("13700000005", "戊", outlet_code="上海浦东网点")),
        ("existing customer, same address", row("13812345678", "不看", addr("张杨路500号2栋1201室"),
                                                unit("SN-T-0006", invoice=" INV-6 "))),
        ("existing customer, new address", row("13812345678", "", addr("新地址7号"), unit("SN-T-0007"))),
        ("existing customer, no address", row("138 1234 5678", "", None, unit("SN-T-0008", "XQG100"))),
        ("existing customer, bad new address", row("13812345678", "", addr(""), unit("SN-T-0009"))),
        ("existing customer, no unit", row("13812345678", "张", addr())),
        ("customer out of reach", row("13987654321", "王", addr("东方路1号"), unit("SN-T-0011"))),
        ("bad phone", row("1234567", "己", addr(), unit("SN-T-0012"))),
        ("no phone", row("", "己", addr())),
        ("no name", row("13700000014", "  ", addr())),
        ("long name", row("13700000015", "名" * 51, addr())),
        ("uncovered district", row("13700000016", "庚", AddressIn("北京市", "北京市", "朝阳区", "建国路1号"))),
        ("district of another outlet", row("13700000017", "辛", AddressIn("浙江省", "杭州市", "西湖区", "文三路1号"))),
        ("foreign outlet", row("13700000018", "壬", node_id=world.tianhe.pk)),
        ("no such outlet", row("13700000019", "癸", node_id=999999)),
        ("inactive-or-not-outlet node", row("13700000020", "子", node_id=world.east.pk)),
        ("no outlet, no address", row("13700000021", "丑")),
        ("foreign outlet code", row("13700000022", "寅", outlet_code="GZ-TH")),
        ("address missing parts", row("13700000023", "卯", AddressIn("上海市", "", "浦东新区", " "))),
        ("bad latitude", row("13700000024", "辰", addr(lat=91.0))),
        ("bad serial", row("13700000025", "巳", addr(), unit("坏!"))),
        ("serial registered", row("13700000026", "午", addr(), unit("ac2025000001"))),
        ("no serial", row("13700000027", "未", addr(), unit(""))),
        ("unknown model", row("13700000028", "申", addr(), unit("SN-T-0028", "NOPE-1"))),
        ("no model", row("13700000029", "酉", addr(), unit("SN-T-0029", " "))),
        ("future date", row("13700000030", "戌", addr(), unit("SN-T-0030", on=TODAY + dt.timedelta(days=1)))),
        ("date before 2000", row("13700000031", "亥", addr(), unit("SN-T-0031", on=dt.date(1999, 12, 31)))),
        ("date as text", row("13700000032", "甲", addr(), unit("SN-T-0032", on="2024-02-30"))),
        ("date as good text", row("13700000033", "乙", addr(), unit("SN-T-0033", on=" 2024-02-28 "))),
        ("no date", row("13700000034", "丙", addr(), unit("SN-T-0034", on=None))),
        ("bad channel", row("13700000035", "丁", addr(), unit("SN-T-0035", channel="taobao"))),
        ("long invoice", row("13700000036", "戊", addr(), unit("SN-T-0036", invoice="9" * 41))),
        ("everything wrong", row("123", "", AddressIn("", "", "", ""), unit("!", "", None, "x", "9" * 41))),
        ("bad customer, bad unit", row("13700000038", "", addr(), unit("SN-T-0038", "NOPE"))),
        ("the caller's own error", row("13700000039", "己", addr(), unit("SN-T-0039"),
                                       errors={"serial": ["文件里重复了。"]})),
        ("units only, unknown phone", row("13700000040", "", None, unit("SN-T-0040"), create_customer=False)),
        ("units only, bad phone", row("12", "", None, unit("SN-T-0041"), create_customer=False)),
        ("units only, out of reach", row("13987654321", "", None, unit("SN-T-0042"), create_customer=False)),
        ("units only, existing", row("13812345678", "", None, unit("SN-T-0043"), create_customer=False)),
    ]


def _strs(errors: dict) -> dict[str, list[str]]:
    return {k: [str(m) for m in msgs] for k, msgs in errors.items()}


def single(user, r: RegisterRow, *, keep: bool = False) -> dict[str, list[str]]:
    """What the single services say about one row: customer_create, or (a unit for a customer
    of the phone in reach) address_add; then unit_register — or, when the customer part failed,
    the unit's field rules, so that every bad field is named. Its writes are rolled back unless
    ``keep`` and the row is good."""
    errors: dict[str, list] = {}

    def add(e: DomainError, rename=None):
        if not e.errors:
            errors.setdefault("phone", []).append(e.message)
        for k, msgs in e.errors.items():
            errors.setdefault((rename or {}).get(k, k), []).extend(msgs)

    r = dataclasses.replace(r, address=dataclasses.replace(r.address) if r.address else None)
    phone = normalize_mobile(r.phone)
    with transaction.atomic():
        owner = None
        if r.unit and mobile_error(phone) is None:
            owner = customer_queryset(user, Perm.UNIT_EDIT).filter(phone=phone).first()
        customer_id = address_id = None
        if owner is not None:
            customer_id = owner.pk
            if r.address is not None:
                a = r.address
                same = owner.addresses.filter(province=a.province.strip(), city=a.city.strip(),
                                              district=a.district.strip(), street=a.street.strip()).first()
                if same is not None:
                    address_id = same.pk
                else:
                    try:
                        address_id = cs.address_add(user=user, customer_id=owner.pk, address=a).pk
                    except DomainError as e:
                        add(e)
        elif not r.create_customer:
            errors["phone"] = [mobile_error(phone) or f"未找到手机号为 {phone} 的客户，或该客户不在您的管辖范围内；请先建立客户档案。"]
        else:
            node_id = r.node_id
            if r.outlet_code:
                node_id = cs._outlet_for_text(cs._outlets_by_text({r.outlet_code}), r.outlet_code).pk
            try:
                c = cs.customer_create(user=user, name=r.name, phone=r.phone, node_id=node_id, address=r.address,
                                       tags=r.tags, notes=r.notes)
            except ValidationFailed as e:
                add(e, {"node_id": "outlet_code"} if r.outlet_code else None)
            else:
                customer_id = c.pk
                address_id = c.addresses.values_list("pk", flat=True).first()
        if r.unit is not None:
            u = r.unit
            if errors or r.errors:
                ec = ErrorCollector()
                cs.check_unit_fields(ec, serial=u.serial, model_code=u.model_code, purchase_date=u.purchase_date,
                                     sales_channel=u.sales_channel, invoice_no=u.invoice_no)
                for k, msgs in ec.errors.items():
                    errors.setdefault(k, []).extend(msgs)
            else:
                try:
                    cs.unit_register(user=user, customer_id=customer_id, serial=u.serial, model_code=u.model_code,
                                     purchase_date=u.purchase_date, sales_channel=u.sales_channel,
                                     invoice_no=u.invoice_no, address_id=address_id)
                except DomainError as e:
                    add(e)
        if errors or r.errors or not keep:
            transaction.set_rollback(True)
    for k, msgs in r.errors.items():  # the caller's own findings replace the service's
        errors[k] = msgs
    return _strs(errors)


def state() -> dict:
    """The customer file as comparable values (no ids)."""
    customers = {c.phone: (c.name, c.node_id, c.notes, tuple(sorted(t.name for t in c.tags.all())))
                 for c in Customer.objects.prefetch_related("tags")}
    addresses = sorted((a.customer.phone, a.province, a.city, a.district, a.street, a.is_default)
                       for a in Address.objects.select_related("customer"))
    units = sorted((u.serial, u.customer.phone, u.model.code, u.purchase_date, u.sales_channel, u.invoice_no,
                    u.address.street if u.address else None)
                   for u in Unit.objects.select_related("customer", "model", "address"))
    return {"customers": customers, "addresses": addresses, "units": units}


def test_every_row_gets_what_the_single_services_would_give_it(world):
    cases = table(world)
    user = world.pudong_agent
    expected = [single(user, r) for _name, r in cases]
    with transaction.atomic():  # the single services, one row after the other, give the state to compare with
        for _name, r in cases:
            single(user, r, keep=True)
        want = state()
        transaction.set_rollback(True)

    results = customers_register_bulk(user=user, rows=[r for _n, r in cases])
    for (name, _r), want_errors, got in zip(cases, expected, results, strict=True):
        assert _strs(got.errors) == want_errors, name  # field by field, message by message
        assert got.ok == (not want_errors), name
        if got.ok:
            assert got.customer_id is not None, name
    assert state() == want

    by = dict(zip([n for n, _r in cases], results, strict=True))
    assert sum(r.ok for r in results) == 10
    first = Customer.objects.get(phone="13700000001")
    assert (first.name, first.notes, first.node_id) == ("甲", "备注", world.pudong.pk)
    assert by["new customer with a unit"].customer_created and by["new customer with a unit"].address_created
    u = Unit.objects.get(serial="SN-T-0001")
    assert (u.customer_id, u.address_id, u.model_id, u.sales_channel) == (
        first.pk, by["new customer with a unit"].address_id, world.ac_model.pk, "store")
    assert by["existing customer, same address"].address_id == world.a_pudong.pk
    assert not by["existing customer, same address"].address_created
    new = Address.objects.get(street="新地址7号")
    assert new.customer_id == world.c_pudong.pk and not new.is_default and by["existing customer, new address"].address_created
    assert Unit.objects.get(serial="SN-T-0008").address_id is None
    assert Customer.objects.get(pk=world.c_pudong.pk).name == "张伟"  # an existing customer is not changed
    # messages worth reading
    assert "王*" in str(by["customer out of reach"].errors["phone"][0])
    assert "广州天河网点" in str(by["customer out of reach"].errors["phone"][0])
    assert "张伟" in str(by["existing customer, no unit"].errors["phone"][0])
    assert "无权" in str(by["foreign outlet code"].errors["outlet_code"][0])
    assert set(by["everything wrong"].errors) >= {"name", "phone", "address.street", "serial", "model",
                                                  "purchase_date", "sales_channel", "invoice_no"}
    assert by["the caller's own error"].errors == {"serial": ["文件里重复了。"]}


def test_unknown_outlet_code(world):
    r1 = row("13700000101", "甲", outlet_code="NOPE")
    r2 = row("13700000102", "", AddressIn("北京市", "北京市", "朝阳区", "路1号"), outlet_code="nope")
    r3 = row("13700000103", "丙", addr(), outlet_code="NOPE")  # the district would do: still refused
    results = customers_register_bulk(user=world.pudong_agent, rows=[r1, r2, r3])
    assert _strs(results[0].errors) == {"outlet_code": ["网点编码 NOPE 不存在或已停用。"]}
    assert set(results[1].errors) == {"outlet_code", "name", "address.district"}
    assert set(results[2].errors) == {"outlet_code"}
    assert not Customer.objects.filter(phone__startswith="137000001").exists()


BATCH = [
    # a phone repeated: the first good row creates, the next ones attach (same address → same one)
    row("13700000201", "", addr(), unit("SN-B-0001")),  # 1: no name → refused
    row("13700000201", "甲", addr("路1号"), unit("SN-B-0002")),  # 2: creates
    row("13700000201", "甲", addr("路1号"), unit("SN-B-0003")),  # 3: attaches, same address
    row("13700000201", "甲", addr("路2号"), unit("SN-B-0004")),  # 4: attaches, new address (not default)
    row("13700000201", "甲", addr("路3号")),  # 5: no unit → the phone is taken (by row 2's customer)
    row("13700000202", "乙", addr("路4号"), unit("SN-B-0002")),  # 6: serial of row 2
    row("13700000203", "丙", addr("路5号"), unit("sn-b-0001")),  # 7: serial of row 1, which was refused
    row("13700000204", "丁", None, unit("SN-B-0005"), create_customer=False),  # 8: no such customer
    row("13700000201", "", None, unit("SN-B-0006"), create_customer=False),  # 9: row 2's customer
    row("13700000205", "戊", None, u=None),  # 10: no address, no outlet
    row("13700000205", "戊", addr("路6号"), unit("SN-B-0007")),  # 11: creates (row 10 was refused)
]


def _bulk_vs_fallback(world, monkeypatch, rows):
    """The batch through the bulk path, and again (rolled back first) through the row-by-row fallback."""
    with transaction.atomic():
        bulk = customers_register_bulk(user=world.pudong_agent, rows=rows)
        bulk_state = state()
        transaction.set_rollback(True)
    monkeypatch.setattr(cs._BulkRegistration, "_write", _integrity_error)
    fallback = customers_register_bulk(user=world.pudong_agent, rows=rows)
    assert state() == bulk_state
    return bulk, fallback


def _integrity_error(self, good):
    from django.db import IntegrityError

    raise IntegrityError("a concurrent registration")


def test_rows_of_a_batch_see_the_rows_before_them(world, monkeypatch):
    bulk, fallback = _bulk_vs_fallback(world, monkeypatch, BATCH)
    assert [r.ok for r in bulk] == [False, True, True, True, False, False, False, False, True, False, True]
    def same(errors):  # the ids differ where the database does not reuse them (PostgreSQL sequences)
        return {k: [re.sub(r"客户编号 \d+", "客户编号 #", m) for m in msgs] for k, msgs in _strs(errors).items()}

    for i, (b, f) in enumerate(zip(bulk, fallback, strict=True), start=1):
        assert (b.ok, same(b.errors)) == (f.ok, same(f.errors)), i
        assert (b.customer_created, b.address_created) == (f.customer_created, f.address_created), i
    for results in (bulk, fallback):  # the ids of the bulk run were rolled back; those of the fallback are here
        c = results[1].customer_id
        assert (results[2].customer_id, results[3].customer_id, results[8].customer_id) == (c, c, c)
        assert results[1].customer_created and not results[2].customer_created
        assert results[2].address_id == results[1].address_id and not results[2].address_created
        assert results[3].address_created and results[3].address_id != results[1].address_id
        assert results[8].address_id is None
        msg = str(results[4].errors["phone"][0])
        assert "甲" in msg and f"客户编号 {c}）" in msg  # names the customer row 2 created
    assert Customer.objects.get(phone="13700000201").pk == fallback[1].customer_id
    assert Address.objects.get(pk=fallback[1].address_id).is_default
    assert not Address.objects.get(pk=fallback[3].address_id).is_default
    assert str(bulk[5].errors["serial"][0]) == "序列号 SN-B-0002 与第 2 行重复。"
    assert str(bulk[6].errors["serial"][0]) == "序列号 SN-B-0001 与第 1 行重复。"
    assert "未找到手机号为 13700000204" in str(bulk[7].errors["phone"][0])
    assert bulk[10].customer_created


def test_labels_name_the_rows_in_messages(world):
    rows = [row("13700000301", "甲", addr(), unit("SN-L-0001"), label=17),
            row("13700000302", "乙", addr(), unit("SN-L-0001"), label=42)]
    results = customers_register_bulk(user=world.pudong_agent, rows=rows)
    assert str(results[1].errors["serial"][0]) == "序列号 SN-L-0001 与第 17 行重复。"


def test_audit_entries_like_the_single_services(world):
    rows = [row("13700000401", "甲", addr("路1号"), unit("SN-A-0001"), tags=["b", "a"], notes="n"),
            row("13700000401", "甲", addr("路2号"), unit("SN-A-0002")),
            row("13812345678", "", addr("路3号"), unit("SN-A-0003")),
            row("13700000402", "乙", outlet_code="SH-PD")]
    before = AuditEntry.objects.count()
    results = customers_register_bulk(user=world.pudong_agent, rows=rows)
    assert all(r.ok for r in results)
    assert AuditEntry.objects.count() == before + 2 + 3 + 3  # customers, addresses, units
    for c in Customer.objects.filter(phone__in=["13700000401", "13700000402"]):
        e = AuditEntry.objects.get(chain=f"customers.customer:{c.pk}")
        assert (e.seq, e.action, e.actor_id, e.node_id, e.before) == (1, "customer.create", world.pudong_agent.pk,
                                                                       c.node_id, None)
        assert e.after == cs._customer_state(c)
    assert AuditEntry.objects.get(chain=f"customers.customer:{results[0].customer_id}").after["tags"] == ["a", "b"]
    for a in Address.objects.filter(street__in=["路1号", "路2号", "路3号"]).select_related("customer"):
        e = AuditEntry.objects.get(chain=f"customers.address:{a.pk}")
        assert (e.action, e.node_id) == ("address.create", a.customer.node_id)
        assert e.after == {**snapshot(a), "lat": None, "lng": None}
    for u in Unit.objects.filter(serial__startswith="SN-A-").select_related("customer"):
        e = AuditEntry.objects.get(chain=f"customers.unit:{u.pk}")
        assert (e.action, e.node_id, e.actor_label) == ("unit.register", u.customer.node_id, "pudong_agent")
        assert e.after == snapshot(u)
    assert audit_verify().ok


def test_scope(world):
    rows = [row("13700000501", "甲", addr(), unit("SN-S-0001")),  # pudong's district
            row("13700000502", "乙", AddressIn("浙江省", "杭州市", "西湖区", "路1号"), unit("SN-S-0002")),
            row("13812345678", "丙", addr(), unit("SN-S-0003"))]  # a customer of pudong
    results = customers_register_bulk(user=world.hangzhou_agent, rows=rows)
    assert [r.ok for r in results] == [False, True, False]
    assert "无权" in str(results[0].errors["node_id"][0])
    assert "张*" in str(results[2].errors["phone"][0]) and "张伟" not in str(results[2].errors["phone"][0])
    assert Customer.objects.get(phone="13700000502").node_id == world.hangzhou.pk

    # a technician registers units, but may not add an address to the customer
    tech = [row("13812345678", "", None, unit("SN-S-0004"), create_customer=False),
            row("13812345678", "", addr("新路9号"), unit("SN-S-0005"), create_customer=False),
            row("13812345678", "", addr("张杨路500号2栋1201室"), unit("SN-S-0006"), create_customer=False)]
    results = customers_register_bulk(user=world.pudong_tech, rows=tech)
    assert [r.ok for r in results] == [True, False, True]
    assert _strs(results[1].errors) == {"phone": ["未找到，或您无权查看。"]}
    assert results[2].address_id == world.a_pudong.pk
    assert _strs(results[1].errors) == single(world.pudong_tech, tech[1])

    # the right is checked before anything is read
    for user, rows in ((world.pudong_tech, [row("13700000503", "丁", addr())]),
                       (world.pudong_dispatcher, [row("13812345678", "", None, unit("SN-S-0007"),
                                                      create_customer=False)]),
                       (world.trainer, [row("13700000504", "戊", addr())]),
                       (world.customer_user, [row("13700000505", "己", addr())])):
        with pytest.raises(PermissionDenied):
            customers_register_bulk(user=user, rows=rows)


def test_bad_calls(world):
    with pytest.raises(ValueError):
        customers_register_bulk(user=world.pudong_agent, rows=[row(f"137{i:08d}", "甲", addr()) for i in range(1001)])
    with pytest.raises(ValueError):
        customers_register_bulk(user=world.pudong_agent, rows=[row("13700000601", create_customer=False)])
    assert customers_register_bulk(user=world.pudong_agent, rows=[]) == []


def test_a_concurrent_registration_makes_the_batch_go_row_by_row(world, monkeypatch):
    """The look-ups missed a serial registered meanwhile: the batch's write fails, is rolled back,
    and the batch is registered again through the single services: only that row is refused."""
    Unit.objects.create(customer=world.c_pudong, model=world.ac_model, serial="SN-C-0002", purchase_date=PAST)
    real_load = cs._BulkRegistration._load

    def load(self):
        real_load(self)
        self.taken.discard("SN-C-0002")

    monkeypatch.setattr(cs._BulkRegistration, "_load", load)
    audit0 = AuditEntry.objects.count()
    rows = [row(f"1370000070{i}", f"客户{i}", addr(f"路{i}号"), unit(f"SN-C-000{i}")) for i in range(1, 4)]
    results = customers_register_bulk(user=world.pudong_agent, rows=rows)
    assert [r.ok for r in results] == [True, False, True]
    assert _strs(results[1].errors) == {"serial": ["序列号 SN-C-0002 已登记。"]}
    assert not Customer.objects.filter(phone="13700000702").exists()
    assert not Address.objects.filter(street="路2号").exists()
    assert AuditEntry.objects.count() == audit0 + 2 * 3
    assert audit_verify().ok


def _rows(n: int, offset: int = 0) -> list[RegisterRow]:
    rows = []
    for i in range(offset, offset + n):
        if i % 10 == 0:  # an existing customer gets a unit
            rows.append(row("13812345678", "", addr(f"老路{i}号"), unit(f"SN-Q-{i:05d}")))
        elif i % 10 == 1:  # a bad row
            rows.append(row(f"1x{i}", "", addr(), unit("bad!")))
        else:
            rows.append(row(f"137{i:08d}", f"客户{i}", addr(f"路{i}号"), unit(f"SN-Q-{i:05d}"), tags=["导入", f"t{i % 3}"]))
    return rows


def test_queries_do_not_grow_with_the_batch(world, django_assert_max_num_queries):
    """A fixed number of look-ups and writes per batch, whatever its size: 15 statements for 50
    rows or 200 on PostgreSQL. SQLite differs only in that Django splits an INSERT into
    statements of at most 999 parameters (for 200 rows: 2 per table, 3 per audit action)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    user = world.pudong_agent
    customers_register_bulk(user=user, rows=_rows(5, offset=10_000))  # the principal is read; the tags exist
    counts = {}
    for n in (50, 200):
        with django_assert_max_num_queries(25), CaptureQueriesContext(connection) as ctx:
            results = customers_register_bulk(user=user, rows=_rows(n, offset=n * 10))
        assert sum(r.ok for r in results) == n - n // 10
        sql = [q["sql"] for q in ctx.captured_queries]
        counts[n] = (len(sql), len([q for q in sql if not q.startswith("INSERT")]))
    assert counts[50][1] == counts[200][1]  # the look-ups: the same for any batch
    if connection.vendor == "postgresql":
        assert counts[50][0] == counts[200][0]
