"""Writes of the customer file. One function per use case, one transaction each, each
writing its audit entry. Every bad field is reported at once (``ValidationFailed``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aftersales.catalog.models import ProductModel
from aftersales.core.errors import ErrorCollector, NotFound, PermissionDenied, ValidationFailed
from aftersales.core.masking import mask_name
from aftersales.core.validators import mobile_error, normalize_mobile, normalize_serial, serial_error
from aftersales.org.models import Coverage, Node, NodeKind
from aftersales.org.roles import Perm
from aftersales.org.scope import holds_at, principal
from aftersales.records.audit import audit_record, snapshot

from .models import Address, Customer, SalesChannel, Tag, Unit, UnitRepair
from .selectors import customer_queryset

EARLIEST_PURCHASE = dt.date(2000, 1, 1)


@dataclass
class AddressIn:
    province: str
    city: str
    district: str
    street: str
    label: str = ""
    lat: float | None = None
    lng: float | None = None


def _today() -> dt.date:
    return timezone.localdate()


# ---------------------------------------------------------------- validation helpers

def _check_name(errs: ErrorCollector, name: str, field: str = "name") -> str:
    name = (name or "").strip()
    if not name:
        errs.add(field, _("请填写姓名。"))
    elif len(name) > 50:
        errs.add(field, _("姓名不能超过 50 个字符。"))
    return name


def _check_phone(errs: ErrorCollector, raw: str, *, user, exclude_id: int | None = None) -> str:
    phone = normalize_mobile(raw)
    err = mobile_error(phone)
    if err:
        errs.add("phone", err)
        return phone
    other = Customer.objects.filter(phone=phone).exclude(pk=exclude_id).select_related("node").first()
    if other is not None:
        errs.add("phone", _duplicate_phone_message(user, other))
    return phone


def _duplicate_phone_message(user, other: Customer):
    visible = customer_queryset(user).filter(pk=other.pk).exists()
    if visible:
        return _("该手机号已登记为客户“%(name)s”（客户编号 %(id)s），请打开该客户档案。") % {
            "name": other.name, "id": other.pk}
    return _("该手机号已登记为“%(node)s”的客户“%(name)s”（客户编号 %(id)s），请联系该网点。") % {
        "node": other.node.name, "name": mask_name(other.name), "id": other.pk}


def _check_address(errs: ErrorCollector, a: AddressIn | dict | None, prefix: str = "address") -> AddressIn | None:
    if a is None:
        return None
    if isinstance(a, dict):
        a = AddressIn(**{k: v for k, v in a.items() if k in AddressIn.__dataclass_fields__})
    for f in ("province", "city", "district", "street"):
        v = (getattr(a, f) or "").strip()
        setattr(a, f, v)
        if not v:
            errs.add(f"{prefix}.{f}", _("请填写此项。"))
    if a.lat is not None and not (-90 <= float(a.lat) <= 90):
        errs.add(f"{prefix}.lat", _("纬度须在 -90 到 90 之间。"))
    if a.lng is not None and not (-180 <= float(a.lng) <= 180):
        errs.add(f"{prefix}.lng", _("经度须在 -180 到 180 之间。"))
    return a


def outlet_for_district(province: str, city: str, district: str) -> Node | None:
    cov = Coverage.objects.select_related("outlet").filter(province=province, city=city, district=district).first()
    return cov.outlet if cov else None


def _resolve_node(errs: ErrorCollector, *, user, node_id: int | None, address: AddressIn | None) -> Node | None:
    node = None
    if node_id is not None:
        node = Node.objects.filter(pk=node_id, kind=NodeKind.OUTLET, active=True).first()
        if node is None:
            errs.add("node_id", _("服务网点不存在。"))
            return None
    elif address is not None and address.district:
        node = outlet_for_district(address.province, address.city, address.district)
        if node is None:
            errs.add("address.district", _("该区县尚无服务网点覆盖，请指定服务网点。"))
            return None
    else:
        errs.add("node_id", _("请指定服务网点，或填写地址以自动匹配网点。"))
        return None
    if not holds_at(user, Perm.CUSTOMER_EDIT, node.pk):
        errs.add("node_id", _("您无权在该网点建立客户档案。"))
    return node


def _require(user, perm: str):
    if not principal(user).can(perm):
        raise PermissionDenied()


def _tags(names: list[str] | None) -> list[Tag]:
    names = sorted({n.strip() for n in (names or []) if n and n.strip()})
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    missing = [Tag(name=n) for n in names if n not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    return [existing[n] for n in names]


def _customer_state(c: Customer) -> dict:
    d = snapshot(c, ["id", "node_id", "user_id", "name", "phone", "notes"])
    d["tags"] = sorted(t.name for t in c.tags.all())
    return d


# ---------------------------------------------------------------- customers

@transaction.atomic
def customer_create(*, user, name: str, phone: str, node_id: int | None = None, address: AddressIn | dict | None = None,
                    tags: list[str] | None = None, notes: str = "") -> Customer:
    _require(user, Perm.CUSTOMER_EDIT)
    errs = ErrorCollector()
    name = _check_name(errs, name)
    phone = _check_phone(errs, phone, user=user)
    addr = _check_address(errs, address)
    node = _resolve_node(errs, user=user, node_id=node_id, address=addr)
    errs.raise_if_any()
    try:
        with transaction.atomic():
            c = Customer.objects.create(node=node, name=name, phone=phone, notes=(notes or "").strip())
    except IntegrityError:  # a concurrent registration of the same phone won the race
        raise ValidationFailed({"phone": [_duplicate_phone_message(user, Customer.objects.get(phone=phone))]}) from None
    if tags:
        c.tags.set(_tags(tags))
    audit_record(actor=user, action="customer.create", obj=c, before=None, after=_customer_state(c), node_id=node.pk)
    if addr is not None:
        _address_add(user=user, customer=c, a=addr, make_default=True)
    return c


@transaction.atomic
def customer_update(*, user, customer_id: int, name: str | None = None, phone: str | None = None,
                    tags: list[str] | None = None, notes: str | None = None) -> Customer:
    c = customer_queryset(user, Perm.CUSTOMER_EDIT).select_for_update().filter(pk=customer_id).first()
    if c is None:
        raise NotFound()
    before = _customer_state(c)
    errs = ErrorCollector()
    if name is not None:
        c.name = _check_name(errs, name)
    if phone is not None:
        c.phone = _check_phone(errs, phone, user=user, exclude_id=c.pk)
    errs.raise_if_any()
    if notes is not None:
        c.notes = notes.strip()
    try:
        with transaction.atomic():
            c.save()
    except IntegrityError:
        raise ValidationFailed({"phone": [_duplicate_phone_message(user, Customer.objects.get(phone=c.phone))]}) from None
    if tags is not None:
        c.tags.set(_tags(tags))
    audit_record(actor=user, action="customer.update", obj=c, before=before, after=_customer_state(c),
                 node_id=c.node_id)
    return c


def _address_add(*, user, customer: Customer, a: AddressIn, make_default: bool) -> Address:
    if make_default:
        customer.addresses.filter(is_default=True).update(is_default=False)
    addr = Address.objects.create(customer=customer, label=a.label or "", province=a.province, city=a.city,
                                  district=a.district, street=a.street, lat=a.lat, lng=a.lng, is_default=make_default)
    audit_record(actor=user, action="address.create", obj=addr, before=None, after=snapshot(addr),
                 node_id=customer.node_id)
    return addr


@transaction.atomic
def address_add(*, user, customer_id: int, address: AddressIn | dict, make_default: bool = False) -> Address:
    c = customer_queryset(user, Perm.CUSTOMER_EDIT).select_for_update().filter(pk=customer_id).first()
    if c is None:
        raise NotFound()
    errs = ErrorCollector()
    a = _check_address(errs, address, prefix="address")
    errs.raise_if_any()
    first = not c.addresses.exists()
    return _address_add(user=user, customer=c, a=a, make_default=make_default or first)


# ---------------------------------------------------------------- units

def check_unit_fields(errs: ErrorCollector, *, serial: str, model_code: str | None, purchase_date,
                      sales_channel: str | None, invoice_no: str | None, exclude_id: int | None = None):
    """Validate a unit's fields; returns (serial, model, purchase_date). Shared with the import."""
    serial = normalize_serial(serial)
    err = serial_error(serial)
    if err:
        errs.add("serial", err)
    elif Unit.objects.filter(serial=serial).exclude(pk=exclude_id).exists():
        errs.add("serial", _("序列号 %(serial)s 已登记。") % {"serial": serial})
    model = None
    code = (model_code or "").strip()
    if not code:
        errs.add("model", _("请填写型号。"))
    else:
        model = ProductModel.objects.select_related("category").filter(code__iexact=code).first()
        if model is None:
            errs.add("model", _("型号 %(code)s 不存在。") % {"code": code})
    pd = purchase_date
    if isinstance(pd, str):
        try:
            pd = dt.date.fromisoformat(pd.strip())
        except ValueError:
            errs.add("purchase_date", _("日期格式不正确，应为 YYYY-MM-DD。"))
            pd = None
    elif isinstance(pd, dt.datetime):
        pd = pd.date()
    if pd is None and "purchase_date" not in errs.errors:
        errs.add("purchase_date", _("请填写购买日期。"))
    elif pd is not None:
        if pd > _today():
            errs.add("purchase_date", _("购买日期不能晚于今天。"))
        elif pd < EARLIEST_PURCHASE:
            errs.add("purchase_date", _("购买日期不能早于 2000-01-01。"))
    if sales_channel and sales_channel not in SalesChannel.values:
        errs.add("sales_channel", _("销售渠道无效，可选：%(choices)s。") % {"choices": ", ".join(SalesChannel.values)})
    if invoice_no and len(invoice_no.strip()) > 40:
        errs.add("invoice_no", _("发票号不能超过 40 个字符。"))
    return serial, model, pd


@transaction.atomic
def unit_register(*, user, customer_id: int, serial: str, model_code: str, purchase_date,
                  sales_channel: str | None = None, invoice_no: str = "", address_id: int | None = None) -> Unit:
    c = customer_queryset(user, Perm.UNIT_EDIT).select_for_update().filter(pk=customer_id).first()
    if c is None:
        raise NotFound()
    errs = ErrorCollector()
    serial, model, pd = check_unit_fields(errs, serial=serial, model_code=model_code, purchase_date=purchase_date,
                                          sales_channel=sales_channel, invoice_no=invoice_no)
    if address_id is not None and not c.addresses.filter(pk=address_id).exists():
        errs.add("address_id", _("该地址不属于此客户。"))
    errs.raise_if_any()
    try:
        with transaction.atomic():
            u = Unit.objects.create(customer=c, model=model, serial=serial, purchase_date=pd,
                                    sales_channel=sales_channel or SalesChannel.STORE,
                                    invoice_no=(invoice_no or "").strip(), address_id=address_id)
    except IntegrityError:
        raise ValidationFailed({"serial": [_("序列号 %(serial)s 已登记。") % {"serial": serial}]}) from None
    audit_record(actor=user, action="unit.register", obj=u, before=None, after=snapshot(u), node_id=c.node_id)
    return u


def _unit_for_update(user, unit_id: int) -> Unit:
    u = (
        Unit.objects.select_for_update()
        .filter(pk=unit_id, customer__in=customer_queryset(user, Perm.UNIT_EDIT).values("pk"))
        .select_related("customer")
        .first()
    )
    if u is None:
        raise NotFound()
    return u


@transaction.atomic
def unit_record_exchange(*, user, unit_id: int, on: dt.date, new_serial: str | None = None) -> Unit:
    """The unit was exchanged for a new one of the same model: the 三包 period restarts."""
    u = _unit_for_update(user, unit_id)
    before = snapshot(u)
    errs = ErrorCollector()
    if on < u.purchase_date or on > _today():
        errs.add("on", _("换货日期须在购买日期与今天之间。"))
    if new_serial:
        serial, _m, _d = check_unit_fields(errs, serial=new_serial, model_code=u.model.code,
                                           purchase_date=u.purchase_date, sales_channel=None, invoice_no=None,
                                           exclude_id=u.pk)
        u.serial = serial
    errs.raise_if_any()
    u.exchanged_on = on
    u.save(update_fields=["exchanged_on", "serial"])
    audit_record(actor=user, action="unit.exchange", obj=u, before=before, after=snapshot(u),
                 node_id=u.customer.node_id)
    return u


@transaction.atomic
def unit_repair_record(*, user, unit_id: int, started_on: dt.date, finished_on: dt.date | None, fault_key: str,
                       in_warranty: bool, source: str = "") -> UnitRepair:
    """Record a finished or running repair (the work-order flow calls this on completion)."""
    u = _unit_for_update(user, unit_id)
    errs = ErrorCollector()
    if started_on < u.purchase_date:
        errs.add("started_on", _("送修日期不能早于购买日期。"))
    if started_on > _today():
        errs.add("started_on", _("送修日期不能晚于今天。"))
    if finished_on is not None and finished_on < started_on:
        errs.add("finished_on", _("修复日期不能早于送修日期。"))
    if not (fault_key or "").strip():
        errs.add("fault_key", _("请填写故障类别或部件编码。"))
    errs.raise_if_any()
    r = UnitRepair.objects.create(unit=u, started_on=started_on, finished_on=finished_on,
                                  fault_key=fault_key.strip(), in_warranty=in_warranty, source=source)
    audit_record(actor=user, action="unit.repair", obj=r, before=None, after=snapshot(r), node_id=u.customer.node_id)
    return r
