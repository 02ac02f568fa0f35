"""Writes of the customer file. One function per use case, one transaction each, each
writing its audit entry. Every bad field is reported at once (``ValidationFailed``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aftersales.catalog.models import ProductModel
from aftersales.core.errors import DomainError, ErrorCollector, NotFound, PermissionDenied, ValidationFailed
from aftersales.core.masking import mask_name
from aftersales.core.validators import (
    DATE_FORMAT_ERROR,
    mobile_error,
    normalize_mobile,
    normalize_serial,
    parse_date,
    serial_error,
)
from aftersales.org.models import Coverage, Node, NodeKind
from aftersales.org.roles import Perm
from aftersales.org.scope import holds_at, principal
from aftersales.records.audit import audit_record, audit_record_created_bulk, snapshot

from .models import Address, Customer, SalesChannel, Tag, Unit, UnitRepair
from .selectors import customer_queryset

EARLIEST_PURCHASE = dt.date(2000, 1, 1)
_CHANNELS = frozenset(SalesChannel.values)

logger = logging.getLogger(__name__)


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


def _check_phone_format(errs: ErrorCollector, raw: str) -> tuple[str, bool]:
    """The normalised phone, and whether it is a valid mobile number (the error added when not)."""
    phone = normalize_mobile(raw)
    err = mobile_error(phone)
    if err:
        errs.add("phone", err)
    return phone, err is None


def _check_phone(errs: ErrorCollector, raw: str, *, user, exclude_id: int | None = None) -> str:
    phone, valid = _check_phone_format(errs, raw)
    if not valid:
        return phone
    other = Customer.objects.filter(phone=phone).exclude(pk=exclude_id).select_related("node").first()
    if other is not None:
        errs.add("phone", _duplicate_phone_message(user, other))
    return phone


def _duplicate_phone_message(user, other: Customer):
    visible = customer_queryset(user).filter(pk=other.pk).exists()
    return _duplicate_phone_text(other, visible=visible)


def _duplicate_phone_text(other: Customer, *, visible: bool):
    """The phone belongs to ``other``: named in full when the user can see that customer, else
    masked, with the outlet to contact."""
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
    for f in ("province", "city", "district", "street", "label"):
        v = str(getattr(a, f) or "").strip()
        setattr(a, f, v)
        if not v and f != "label":
            errs.add(f"{prefix}.{f}", _("请填写此项。"))
        elif len(v) > ADDRESS_MAX[f]:
            errs.add(f"{prefix}.{f}", _("不能超过 %(n)s 个字符。") % {"n": ADDRESS_MAX[f]})
    for f, bound in (("lat", 90), ("lng", 180)):
        v = getattr(a, f)
        if v in (None, ""):
            setattr(a, f, None)
            continue
        try:
            ok = -bound <= float(v) <= bound
        except (TypeError, ValueError):
            ok = False
        if not ok:
            errs.add(f"{prefix}.{f}", _("须为 -%(b)s 到 %(b)s 之间的数。") % {"b": bound})
    return a


ADDRESS_MAX = {"province": 30, "city": 30, "district": 30, "street": 200, "label": 20}
TAG_MAX_LEN, TAGS_MAX = 30, 20


def _check_tags(errs: ErrorCollector, names: list[str] | None) -> list[str]:
    """Tag names, trimmed and de-duplicated; too long or too many is a field error."""
    clean = sorted({str(n).strip() for n in names or [] if n and str(n).strip()})
    if any(len(n) > TAG_MAX_LEN for n in clean):
        errs.add("tags", _("标签不能超过 %(n)s 个字符。") % {"n": TAG_MAX_LEN})
    if len(clean) > TAGS_MAX:
        errs.add("tags", _("标签不能超过 %(n)s 个。") % {"n": TAGS_MAX})
    return clean


def outlet_for_district(province: str, city: str, district: str) -> Node | None:
    cov = Coverage.objects.select_related("outlet").filter(province=province, city=city, district=district).first()
    return cov.outlet if cov else None


def _resolve_node(errs: ErrorCollector, *, user, node_id: int | None, address: AddressIn | None) -> Node | None:
    return _choose_node(
        errs, node_id=node_id, address=address,
        outlet=lambda pk: Node.objects.filter(pk=pk, kind=NodeKind.OUTLET, active=True).first(),
        district_outlet=lambda a: outlet_for_district(a.province, a.city, a.district),
        may_edit=lambda pk: holds_at(user, Perm.CUSTOMER_EDIT, pk))


def _choose_node(errs: ErrorCollector, *, node_id: int | None, address: AddressIn | None,
                 outlet: Callable[[int], Node | None], district_outlet: Callable[[AddressIn], Node | None],
                 may_edit: Callable[[int], bool], field: str = "node_id") -> Node | None:
    """The rule for a new customer's outlet: the one named (an active outlet), else the one
    covering the address's district; the user must hold ``customer.edit`` there. The look-ups
    are passed in (one row: a query each; a batch: dictionaries read at once)."""
    node = None
    if node_id is not None:
        node = outlet(node_id)
        if node is None:
            errs.add(field, _("服务网点不存在。"))
            return None
    elif address is not None and address.district:
        node = district_outlet(address)
        if node is None:
            errs.add("address.district", _("该区县尚无服务网点覆盖，请指定服务网点。"))
            return None
    else:
        errs.add(field, _("请指定服务网点，或填写地址以自动匹配网点。"))
        return None
    if not may_edit(node.pk):
        errs.add(field, _("您无权在该网点建立客户档案。"))
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
    tags = _check_tags(errs, tags)
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
    if tags is not None:
        tags = _check_tags(errs, tags)
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
    """Validate a unit's fields; returns (serial, model, purchase_date)."""
    return _check_unit(
        errs, serial=serial, model_code=model_code, purchase_date=purchase_date, sales_channel=sales_channel,
        invoice_no=invoice_no,
        serial_taken=lambda s: Unit.objects.filter(serial=s).exclude(pk=exclude_id).exists(),
        model_of=lambda code: ProductModel.objects.select_related("category").filter(code__iexact=code).first())


def _check_unit(errs: ErrorCollector, *, serial: str, model_code: str | None, purchase_date,
                sales_channel: str | None, invoice_no: str | None, serial_taken: Callable[[str], bool],
                model_of: Callable[[str], ProductModel | None], today: dt.date | None = None):
    """The rules of a unit's fields, with the look-ups passed in (see ``_choose_node``)."""
    serial = normalize_serial(serial)
    err = serial_error(serial)
    if err:
        errs.add("serial", err)
    elif serial_taken(serial):
        errs.add("serial", _("序列号 %(serial)s 已登记。") % {"serial": serial})
    model = None
    code = (model_code or "").strip()
    if not code:
        errs.add("model", _("请填写型号。"))
    else:
        model = model_of(code)
        if model is None:
            errs.add("model", _("型号 %(code)s 不存在。") % {"code": code})
    try:
        pd = parse_date(purchase_date)
    except ValueError:
        errs.add("purchase_date", DATE_FORMAT_ERROR)
        pd = None
    if pd is None and "purchase_date" not in errs.errors:
        errs.add("purchase_date", _("请填写购买日期。"))
    elif pd is not None:
        if pd > (today or _today()):
            errs.add("purchase_date", _("购买日期不能晚于今天。"))
        elif pd < EARLIEST_PURCHASE:
            errs.add("purchase_date", _("购买日期不能早于 2000-01-01。"))
    if sales_channel and sales_channel not in _CHANNELS:
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


# ---------------------------------------------------------------- registering in bulk (the import)

BULK_MAX_ROWS = 1000
_IN_CHUNK = 900  # values per ``IN (…)``: SQLite before 3.32 allows 999 parameters per statement


@dataclass
class UnitIn:
    serial: str
    model_code: str
    purchase_date: dt.date | str | None
    sales_channel: str | None = None
    invoice_no: str = ""


@dataclass
class RegisterRow:
    """One row of ``customers_register_bulk``: a customer with an address and, optionally, a unit.

    With a unit, a phone already registered to a customer the user may register units for
    (``unit.edit`` over its outlet) gets the unit, the customer otherwise unchanged; the row's
    address, if any, is then the unit's address (added to that customer when it is new).
    Otherwise a new customer is created, as by ``customer_create`` — unless ``create_customer``
    is False: then the customer must exist already.

    A new customer's outlet is ``node_id``, or ``outlet_code`` (an active outlet's code in any
    case, or its name; the errors about the outlet then name ``outlet_code``), or the outlet
    covering the address's district. ``label`` names the row in messages (default: its
    position, from 1). ``errors`` are the caller's own findings ({field: [messages]}): they
    reject the row and replace the service's messages for the same fields."""

    phone: str
    name: str = ""
    node_id: int | None = None
    outlet_code: str = ""
    address: AddressIn | dict | None = None
    tags: list[str] = dataclasses.field(default_factory=list)
    notes: str = ""
    unit: UnitIn | None = None
    create_customer: bool = True
    label: int | str | None = None
    errors: dict[str, list] = dataclasses.field(default_factory=dict)


@dataclass
class RowResult:
    """What became of a row: ``ok`` and the ids written, or the ``errors`` ``ValidationFailed``
    would carry ({field: [messages]}), nothing of the row being written."""

    ok: bool
    errors: dict[str, list] = dataclasses.field(default_factory=dict)
    customer_id: int | None = None
    customer_created: bool = False
    address_id: int | None = None  # the unit's address, or the new customer's
    address_created: bool = False
    unit_id: int | None = None


def repeated_serial_message(serial: str, first_label):
    return _("序列号 %(serial)s 与第 %(row)s 行重复。") % {"serial": serial, "row": first_label}


def _unknown_outlet_message(code: str):
    return _("网点编码 %(code)s 不存在或已停用。") % {"code": code}


def _not_registered_message(phone: str):
    return mobile_error(phone) or _(
        "未找到手机号为 %(phone)s 的客户，或该客户不在您的管辖范围内；请先建立客户档案。") % {"phone": phone}


def customers_register_bulk(*, user, rows: list[RegisterRow]) -> list[RowResult]:
    """Register a batch of rows (at most ``BULK_MAX_ROWS``) by the rules, messages, scoping and
    audit of ``customer_create`` / ``address_add`` / ``unit_register``, with the outcome of
    running them row after row — a later row sees what the earlier ones created (a phone
    repeated attaches its unit to the customer its first good row created) — but in a fixed
    number of queries: the look-ups of the whole batch at once, then the good rows written with
    ``bulk_create`` in one transaction, each audited. A serial repeated within the batch is
    refused, naming the row where it first appeared, whether or not that row is registered.

    Should the write meet a concurrent registration (``IntegrityError``), the batch is rolled
    back and registered again row by row through the single services (a savepoint each)."""
    if len(rows) > BULK_MAX_ROWS:
        raise ValueError(f"at most {BULK_MAX_ROWS} rows per batch")
    if any(r.unit is None and not r.create_customer for r in rows):
        raise ValueError("a row that may not create a customer must have a unit")
    if any(r.create_customer for r in rows):
        _require(user, Perm.CUSTOMER_EDIT)
    if any(r.unit is not None for r in rows):
        _require(user, Perm.UNIT_EDIT)
    if not rows:
        return []
    try:
        with transaction.atomic():
            return _BulkRegistration(user, rows).run()
    except IntegrityError:
        logger.info("bulk registration met a concurrent write: registering its %s rows one by one", len(rows))
    return [_register_one(user, row, repeat) for row, repeat in zip(rows, _serial_repeats(rows), strict=True)]


def _serial_repeats(rows: list[RegisterRow]) -> list:
    """Per row, the message when its unit's serial was in an earlier row of the batch, else None."""
    first: dict[str, object] = {}
    out = []
    for i, row in enumerate(rows):
        msg = None
        serial = normalize_serial(row.unit.serial) if row.unit is not None else ""
        if serial in first:
            msg = repeated_serial_message(serial, first[serial])
        elif serial:
            first[serial] = row.label if row.label is not None else i + 1
        out.append(msg)
    return out


def _copy_address(a: AddressIn | dict | None) -> AddressIn | None:
    if a is None:
        return None
    if isinstance(a, dict):
        return AddressIn(**{k: v for k, v in a.items() if k in AddressIn.__dataclass_fields__})
    return dataclasses.replace(a)


def _address_key(a: AddressIn) -> tuple[str, str, str, str]:
    """What makes two addresses of a customer the same one (as ``address_add`` would store it)."""
    return (a.province or "").strip(), (a.city or "").strip(), (a.district or "").strip(), (a.street or "").strip()


def _row_errors(row: RegisterRow, service: dict[str, list], repeat) -> dict[str, list]:
    """The row's errors: the caller's first, then the service's for the other fields."""
    if repeat is not None:
        service = {**service, "serial": [repeat]}
    out = {k: list(v) for k, v in row.errors.items() if v}
    for k, msgs in service.items():
        if k not in out:
            out[k] = list(msgs)
    return out


def _chunks(values) -> list[list]:
    values = sorted(values)
    return [values[i:i + _IN_CHUNK] for i in range(0, len(values), _IN_CHUNK)]


def _outlets_by_text(texts: set[str]) -> dict[str, Node]:
    """The active outlets named by ``texts``, by code (upper case) or name; a code wins."""
    if not texts:
        return {}
    found: dict[str, Node] = {}
    outlets = list(
        Node.objects.filter(kind=NodeKind.OUTLET, active=True).annotate(code_u=Upper("code"))
        .filter(Q(code_u__in=sorted({t.upper() for t in texts} | texts)) | Q(name__in=sorted(texts)))
        .order_by("path"))
    for n in outlets:
        found.setdefault(n.name, n)
    for n in outlets:
        found[n.code.upper()] = n
    return found


def _outlet_for_text(outlets: dict[str, Node], text: str) -> Node | None:
    return outlets.get(text.upper()) or outlets.get(text)


@dataclass
class _Owner:
    """The customer a phone belongs to in a batch: in the database, or new from an earlier row."""

    customer: Customer
    addresses: list = dataclasses.field(default_factory=list)  # [(address key, id or _NewAddress)], by id

    @property
    def node_id(self) -> int:
        return self.customer.node_id


@dataclass
class _NewAddress:
    owner: _Owner
    address: AddressIn
    is_default: bool
    obj: Address | None = None  # once written


class _Dup:
    """A duplicate-phone message to be worded once the customer's id and visibility are known."""

    def __init__(self, owner: _Owner):
        self.owner = owner


@dataclass
class _Plan:
    errors: dict | None = None
    owner: _Owner | None = None
    created: bool = False  # a new customer
    tags: list[str] = dataclasses.field(default_factory=list)
    address: int | _NewAddress | None = None  # the unit's (or the new customer's) address
    new_address: _NewAddress | None = None
    unit: tuple | None = None  # (UnitIn, (serial, model, purchase date)) to register
    unit_obj: Unit | None = None  # once written

    @property
    def address_id(self) -> int | None:
        return self.address.obj.pk if isinstance(self.address, _NewAddress) else self.address


class _BulkRegistration:
    def __init__(self, user, rows: list[RegisterRow]):
        self.user = user
        self.rows = rows
        self.repeats = _serial_repeats(rows)
        p = principal(user)
        self.edit_ids = p.node_ids_for(Perm.CUSTOMER_EDIT)
        self.unit_ids = p.node_ids_for(Perm.UNIT_EDIT)
        self.phones = [normalize_mobile(r.phone) for r in rows]
        self.codes = [(r.outlet_code or "").strip() if r.create_customer else "" for r in rows]
        self.addresses = [_copy_address(r.address) for r in rows]
        self.today = _today()

    @staticmethod
    def _in(ids: set[int] | None, node_id: int) -> bool:
        return ids is None or node_id in ids

    # -------------------------------------------------------------- the look-ups of the batch

    def _load(self) -> None:
        rows = self.rows
        self.owners: dict[str, _Owner] = {}
        for chunk in _chunks({p for p in self.phones if mobile_error(p) is None}):
            for c in Customer.objects.filter(phone__in=chunk).select_related("node").only(
                    "id", "node", "name", "phone", "node__name"):
                self.owners[c.phone] = _Owner(customer=c)

        self.outlets_by_id: dict[int, Node] = {}
        for chunk in _chunks({r.node_id for r, code in zip(rows, self.codes, strict=True)
                              if r.create_customer and r.node_id is not None and not code}):
            self.outlets_by_id.update(
                (n.pk, n) for n in Node.objects.filter(pk__in=chunk, kind=NodeKind.OUTLET, active=True))
        self.outlets_by_text = _outlets_by_text(set(self.codes) - {""})

        districts = set()
        for r, code, a in zip(rows, self.codes, self.addresses, strict=True):
            by_district = r.node_id is None and (not code or _outlet_for_text(self.outlets_by_text, code) is None)
            if r.create_customer and by_district and a is not None and _address_key(a)[2]:
                districts.add(_address_key(a)[2])
        self.coverage: dict[tuple[str, str, str], Node] = {}
        for chunk in _chunks(districts):
            for cov in Coverage.objects.select_related("outlet").filter(district__in=chunk).order_by("pk"):
                self.coverage.setdefault((cov.province, cov.city, cov.district), cov.outlet)

        units = [r.unit for r in rows if r.unit is not None]
        self.taken: set[str] = set()
        for chunk in _chunks({s for s in (normalize_serial(u.serial) for u in units) if serial_error(s) is None}):
            self.taken.update(Unit.objects.filter(serial__in=chunk).values_list("serial", flat=True))

        codes = {(u.model_code or "").strip() for u in units} - {""}
        self.models: dict[str, ProductModel] = {}
        for chunk in _chunks({c.upper() for c in codes} | codes):  # the codes as given too: SQL's UPPER is ASCII-only
            for m in ProductModel.objects.annotate(code_u=Upper("code")).filter(code_u__in=chunk).order_by("code"):
                self.models.setdefault(m.code.upper(), m)

        # the addresses of the existing customers that may get a unit with an address
        wanted = {self.owners[p].customer.pk for r, p, a in zip(rows, self.phones, self.addresses, strict=True)
                  if r.unit is not None and a is not None and p in self.owners
                  and self._in(self.unit_ids, self.owners[p].node_id)}
        by_customer: dict[int, list] = {}
        for chunk in _chunks(wanted):
            for pk, cid, *key in Address.objects.filter(customer_id__in=chunk).order_by("pk").values_list(
                    "pk", "customer_id", "province", "city", "district", "street"):
                by_customer.setdefault(cid, []).append((tuple(key), pk))
        for owner in self.owners.values():
            owner.addresses = by_customer.get(owner.customer.pk, [])

    # -------------------------------------------------------------- the rules, row after row

    def _check_unit(self, errs: ErrorCollector, unit: UnitIn):
        return _check_unit(
            errs, serial=unit.serial, model_code=unit.model_code, purchase_date=unit.purchase_date,
            sales_channel=unit.sales_channel, invoice_no=unit.invoice_no, serial_taken=self.taken.__contains__,
            model_of=lambda code: self.models.get(code.upper()), today=self.today)

    def _attach(self, i: int, row: RegisterRow, owner: _Owner) -> _Plan:
        """The row's unit for the customer its phone belongs to (``address_add``, ``unit_register``)."""
        errs = ErrorCollector()
        a = self.addresses[i]
        address = None
        if a is not None:
            key = _address_key(a)
            address = next((ref for k, ref in owner.addresses if k == key), None)
            if address is None:
                if not self._in(self.edit_ids, owner.node_id):  # address_add cannot reach the customer
                    errs.add("phone", NotFound().message)
                else:
                    _check_address(errs, a, prefix="address")
        checked = self._check_unit(errs, row.unit)
        errors = _row_errors(row, errs.errors, self.repeats[i])
        if errors:
            return _Plan(errors=errors)
        plan = _Plan(owner=owner, address=address, unit=(row.unit, checked))
        if a is not None and address is None:
            plan.new_address = plan.address = _NewAddress(owner, a, is_default=not owner.addresses)
            owner.addresses.append((_address_key(a), plan.new_address))
        return plan

    def _create(self, i: int, row: RegisterRow, phone: str) -> _Plan:
        """A new customer, its address and unit (``customer_create``, then ``unit_register``)."""
        errs = ErrorCollector()
        code = self.codes[i]
        outlet = _outlet_for_text(self.outlets_by_text, code) if code else None
        if code and outlet is None:
            errs.add("outlet_code", _unknown_outlet_message(code))
        name = _check_name(errs, row.name)
        _phone, valid = _check_phone_format(errs, row.phone)
        if valid and phone in self.owners:
            errs.add("phone", _Dup(self.owners[phone]))
        a = _check_address(errs, self.addresses[i])
        tags = _check_tags(errs, row.tags)
        may_edit = partial(self._in, self.edit_ids)
        if outlet is not None:
            node = _choose_node(errs, node_id=outlet.pk, address=a, outlet=lambda _pk: outlet,
                                district_outlet=lambda _a: None, may_edit=may_edit, field="outlet_code")
        else:
            by_district = ErrorCollector() if code else errs  # an unknown code: its own error says it
            node = _choose_node(
                by_district, node_id=None if code else row.node_id, address=a, outlet=self.outlets_by_id.get,
                district_outlet=lambda x: self.coverage.get((x.province, x.city, x.district)), may_edit=may_edit)
            for k, msgs in by_district.errors.items() if code else ():
                if k != "node_id":
                    errs.errors.setdefault(k, []).extend(msgs)
        customer_ok = not errs
        checked = None
        if row.unit is not None:
            if customer_ok and not self._in(self.unit_ids, node.pk):  # unit_register cannot reach the customer
                errs.add("phone", NotFound().message)
            else:
                checked = self._check_unit(errs, row.unit)
        errors = _row_errors(row, errs.errors, self.repeats[i])
        if errors:
            return _Plan(errors=errors)
        c = Customer(node=node, name=name, phone=phone, notes=(row.notes or "").strip())
        owner = self.owners[phone] = _Owner(customer=c)
        plan = _Plan(owner=owner, created=True, tags=tags)
        if a is not None:
            plan.new_address = plan.address = _NewAddress(owner, a, is_default=True)
            owner.addresses.append((_address_key(a), plan.new_address))
        if row.unit is not None:
            plan.unit = (row.unit, checked)
        return plan

    def _must_exist(self, i: int, row: RegisterRow, phone: str) -> _Plan:
        errs = ErrorCollector()
        errs.add("phone", _not_registered_message(phone))
        self._check_unit(errs, row.unit)
        return _Plan(errors=_row_errors(row, errs.errors, self.repeats[i]))

    def run(self) -> list[RowResult]:
        self._load()
        plans = []
        for i, row in enumerate(self.rows):
            phone = self.phones[i]
            owner = self.owners.get(phone) if mobile_error(phone) is None else None
            if row.unit is not None and owner is not None and self._in(self.unit_ids, owner.node_id):
                plans.append(self._attach(i, row, owner))
            elif row.create_customer:
                plans.append(self._create(i, row, phone))
            else:
                plans.append(self._must_exist(i, row, phone))
        self._write([p for p in plans if p.errors is None])
        self._word_duplicates([p.errors for p in plans if p.errors is not None])
        out = []
        for p in plans:
            if p.errors is not None:
                out.append(RowResult(ok=False, errors=p.errors))
            else:
                out.append(RowResult(
                    ok=True, customer_id=p.owner.customer.pk, customer_created=p.created, address_id=p.address_id,
                    address_created=p.new_address is not None,
                    unit_id=p.unit_obj.pk if p.unit_obj is not None else None))
        return out

    # -------------------------------------------------------------- the write

    def _write(self, good: list[_Plan]) -> None:
        created = [p for p in good if p.created]
        Customer.objects.bulk_create([p.owner.customer for p in created])
        addresses = []
        for p in good:
            if (na := p.new_address) is not None:
                a = na.address
                na.obj = Address(customer_id=na.owner.customer.pk, label=a.label or "", province=a.province,
                                 city=a.city, district=a.district, street=a.street, lat=a.lat, lng=a.lng,
                                 is_default=na.is_default)
                addresses.append(na.obj)
        Address.objects.bulk_create(addresses)
        units = []
        for p in good:
            if p.unit is not None:
                unit, (serial, model, pd) = p.unit
                p.unit_obj = Unit(customer_id=p.owner.customer.pk, model_id=model.pk, serial=serial, purchase_date=pd,
                                  sales_channel=unit.sales_channel or SalesChannel.STORE,
                                  invoice_no=(unit.invoice_no or "").strip(), address_id=p.address_id)
                units.append(p.unit_obj)
        Unit.objects.bulk_create(units)
        names = sorted({n for p in created for n in p.tags})
        if names:
            tag_ids = {t.name: t.pk for t in _tags(names)}
            through = Customer.tags.through
            through.objects.bulk_create([through(customer_id=p.owner.customer.pk, tag_id=tag_ids[n])
                                         for p in created for n in p.tags])

        node_of = {p.owner.customer.pk: p.owner.node_id for p in good}
        audit_record_created_bulk(
            actor=self.user, action="customer.create", objs=[_AuditView(p.owner.customer, tags=p.tags) for p in created],
            fields=["id", "node_id", "user_id", "name", "phone", "notes", "tags"], node_of=lambda v: v.node_id)
        audit_record_created_bulk(actor=self.user, action="address.create", objs=addresses,
                                  node_of=lambda a: node_of[a.customer_id])
        audit_record_created_bulk(actor=self.user, action="unit.register", objs=units,
                                  node_of=lambda u: node_of[u.customer_id])

    def _word_duplicates(self, all_errors: list[dict]) -> None:
        """Word the duplicate-phone messages: the customer in full when the user can see it."""
        dups = [(msgs, j) for errors in all_errors for msgs in errors.values()
                for j, m in enumerate(msgs) if isinstance(m, _Dup)]
        if not dups:
            return
        visible: set[int] = set()
        for chunk in _chunks({msgs[j].owner.customer.pk for msgs, j in dups}):
            visible.update(customer_queryset(self.user).filter(pk__in=chunk).values_list("pk", flat=True))
        for msgs, j in dups:
            c = msgs[j].owner.customer
            msgs[j] = _duplicate_phone_text(c, visible=c.pk in visible)


class _AuditView:
    """A new row as its audit entry records it: its fields, plus ``extra`` (what the single
    service reads back with a query, such as a new customer's tags)."""

    def __init__(self, obj, **extra):
        self._obj = obj
        self._extra = extra
        self._meta = obj._meta
        self.pk = obj.pk

    def __getattr__(self, name):
        if name in self._extra:
            return self._extra[name]
        return getattr(self._obj, name)


# ---------------------------------------------------------------- the same, row by row

class _RowRejected(Exception):
    pass


def _register_one(user, row: RegisterRow, repeat) -> RowResult:
    """One row through the single services, in its own savepoint (the bulk path's fallback)."""
    service: dict[str, list] = {}

    def take(e: DomainError, *, rename: dict | None = None, drop: tuple = ()) -> None:
        if not e.errors:  # NotFound: the customer is out of reach
            service.setdefault("phone", []).append(e.message)
        for k, msgs in e.errors.items():
            if k not in drop:
                service.setdefault((rename or {}).get(k, k), []).extend(msgs)

    unit = row.unit
    phone = normalize_mobile(row.phone)
    result = RowResult(ok=True)
    try:
        with transaction.atomic():
            owner = None
            if unit is not None and mobile_error(phone) is None:
                owner = customer_queryset(user, Perm.UNIT_EDIT).filter(phone=phone).first()
            if owner is not None:
                result.customer_id = owner.pk
                a = _copy_address(row.address)
                if a is not None:
                    k = _address_key(a)
                    result.address_id = Address.objects.filter(
                        customer=owner, province=k[0], city=k[1], district=k[2], street=k[3]
                    ).order_by("pk").values_list("pk", flat=True).first()
                    if result.address_id is None:
                        try:
                            result.address_id = address_add(user=user, customer_id=owner.pk, address=a).pk
                            result.address_created = True
                        except DomainError as e:
                            take(e)
            elif row.create_customer:
                code = (row.outlet_code or "").strip()
                node_id = row.node_id
                if code:
                    outlet = _outlet_for_text(_outlets_by_text({code}), code)
                    node_id = outlet.pk if outlet is not None else None
                    if outlet is None:
                        service["outlet_code"] = [_unknown_outlet_message(code)]
                try:
                    c = customer_create(user=user, name=row.name, phone=row.phone, node_id=node_id,
                                        address=_copy_address(row.address), tags=row.tags, notes=row.notes)
                except ValidationFailed as e:
                    if code and node_id is None:
                        take(e, drop=("node_id",))
                    else:
                        take(e, rename={"node_id": "outlet_code"} if code else None)
                else:
                    result.customer_id, result.customer_created = c.pk, True
                    result.address_id = c.addresses.filter(is_default=True).values_list("pk", flat=True).first()
                    result.address_created = result.address_id is not None
            else:
                service["phone"] = [_not_registered_message(phone)]
            if unit is not None:
                if service or row.errors or repeat:  # rejected already: report the unit's faults too
                    ec = ErrorCollector()
                    check_unit_fields(ec, serial=unit.serial, model_code=unit.model_code,
                                      purchase_date=unit.purchase_date, sales_channel=unit.sales_channel,
                                      invoice_no=unit.invoice_no)
                    for k, msgs in ec.errors.items():
                        service.setdefault(k, []).extend(msgs)
                else:
                    try:
                        result.unit_id = unit_register(
                            user=user, customer_id=result.customer_id, serial=unit.serial,
                            model_code=unit.model_code, purchase_date=unit.purchase_date,
                            sales_channel=unit.sales_channel, invoice_no=unit.invoice_no,
                            address_id=result.address_id).pk
                    except DomainError as e:
                        take(e)
            errors = _row_errors(row, service, repeat)
            if errors:
                result = RowResult(ok=False, errors=errors)
                raise _RowRejected
    except _RowRejected:
        pass
    return result
