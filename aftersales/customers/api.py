"""The customer file over the API: customers, addresses, units and their 三包 decision.

Phones and streets always go out through ``selectors.shown_phone`` / ``shown_street``
(masked for roles without ``customer.pii``). A customer user reaches their own file only:
the selectors scope them to it. No ``from __future__ import annotations`` here (see
``aftersales.api.permissions``).
"""

import datetime as dt
from typing import Annotated

from django.db.models import Prefetch
from ninja import Field, Query, Router, Schema

from aftersales.api.permissions import requires
from aftersales.api.schemas import (
    Cursor,
    Id,
    In,
    Lat,
    Limit,
    Lng,
    NodeRef,
    PathId,
    QueryId,
    Text,
    page_of,
    paginate,
    subtree_path,
)
from aftersales.catalog.models import Exclusion
from aftersales.core.errors import ValidationFailed
from aftersales.customers import selectors, services
from aftersales.customers.models import Address, SalesChannel
from aftersales.customers.warranty import unit_warranty
from aftersales.org.roles import Perm

router = Router(tags=["customers"])



Exclusions = Annotated[list[Exclusion], Query([], description="适用的除外情形（可重复）")]


def _user(context):
    return context["request"].auth


# ---------------------------------------------------------------- output schemas

class DecisionOut(Schema):
    kind: str
    label: str
    free: bool
    rule: str
    reason: str
    period_start: dt.date
    whole_unit_until: dt.date
    main_part_until: dt.date
    days_since_purchase: int
    extension_days: int
    repeat_count: int

    @staticmethod
    def resolve_kind(obj):
        return str(obj.kind.value if hasattr(obj.kind, "value") else obj.kind)

    @staticmethod
    def resolve_label(obj):
        return str(obj.label)


class AddressOut(Schema):
    id: int
    label: str
    province: str
    city: str
    district: str
    street: str = Field(description="无 customer.pii 权限时部分隐藏")
    lat: float | None
    lng: float | None
    is_default: bool

    @staticmethod
    def resolve_street(obj, context):
        return selectors.shown_street(_user(context), obj.customer, obj)


class ModelRef(Schema):
    id: int
    code: str
    name: str
    category: str

    @staticmethod
    def resolve_category(obj):
        return obj.category.code


class RepairOut(Schema):
    id: int
    started_on: dt.date
    finished_on: dt.date | None
    fault_key: str
    in_warranty: bool
    source: str


class UnitOut(Schema):
    id: int
    customer_id: int
    serial: str
    model: ModelRef
    purchase_date: dt.date
    sales_channel: str
    invoice_no: str
    address_id: int | None
    exchanged_on: dt.date | None
    created_at: dt.datetime
    warranty: DecisionOut | None = Field(description="今天发现故障时的三包判定")

    @staticmethod
    def resolve_warranty(obj):
        try:
            return unit_warranty(obj)
        except ValidationFailed:  # a purchase date after today: nothing to decide yet
            return None


class CustomerBrief(Schema):
    id: int
    name: str
    phone: str = Field(description="无 customer.pii 权限时部分隐藏，如 138****5678")
    node: NodeRef

    @staticmethod
    def resolve_phone(obj, context):
        return selectors.shown_phone(_user(context), obj)


class CustomerListOut(CustomerBrief):
    tags: list[str]
    default_address: AddressOut | None
    created_at: dt.datetime

    @staticmethod
    def resolve_tags(obj):
        return sorted(t.name for t in obj.tags.all())

    @staticmethod
    def resolve_default_address(obj):
        found = getattr(obj, "default_addresses", None)
        if found is None:
            found = [a for a in obj.addresses.all() if a.is_default]
        return found[0] if found else None


class CustomerDetail(CustomerBrief):
    tags: list[str]
    notes: str
    addresses: list[AddressOut]
    units: list[UnitOut]
    created_at: dt.datetime
    updated_at: dt.datetime

    @staticmethod
    def resolve_tags(obj):
        return sorted(t.name for t in obj.tags.all())

    @staticmethod
    def resolve_addresses(obj):
        return sorted(obj.addresses.all(), key=lambda a: (not a.is_default, a.pk))

    @staticmethod
    def resolve_units(obj):
        return list(obj.units.all())


class UnitDetail(UnitOut):
    customer: CustomerBrief
    repairs: list[RepairOut]

    @staticmethod
    def resolve_repairs(obj):
        return list(obj.repairs.all())


CustomerPage = page_of(CustomerListOut)
CustomerBriefPage = page_of(CustomerBrief)


# ---------------------------------------------------------------- input schemas

class AddressIn(In):
    province: Text(30)
    city: Text(30)
    district: Text(30)
    street: Text(200)
    label: Text(20) = ""
    lat: Lat | None = None
    lng: Lng | None = None


class CustomerIn(In):
    name: Text(50)
    phone: Text(20)
    node_id: Id | None = Field(None, description="服务网点；不填则按地址的区县匹配")
    address: AddressIn | None = None
    tags: list[Text(30)] = Field(default_factory=list, max_length=50)
    notes: Text(2000) = ""


class CustomerPatch(In):
    name: Text(50) | None = None
    phone: Text(20) | None = None
    tags: list[Text(30)] | None = Field(None, max_length=50)
    notes: Text(2000) | None = None


class AddressCreateIn(In):
    address: AddressIn
    make_default: bool = False


class UnitIn(In):
    serial: Text(40)
    model: Text(40) = Field(description="型号编码")
    purchase_date: dt.date
    sales_channel: SalesChannel | None = None
    invoice_no: Text(40) = ""
    address_id: Id | None = None


class ExchangeIn(In):
    on: dt.date
    new_serial: Text(40) | None = None


class RepairIn(In):
    started_on: dt.date
    finished_on: dt.date | None = None
    fault_key: Text(40)
    in_warranty: bool = True
    source: Text(40) = ""


# ---------------------------------------------------------------- customers

def _list_queryset(user, *, node_id, tag, q):
    qs = selectors.customer_queryset(user).select_related("node").prefetch_related(
        "tags", Prefetch("addresses", queryset=Address.objects.filter(is_default=True), to_attr="default_addresses"),
    )
    if node_id is not None:
        qs = qs.filter(node__path__startswith=subtree_path(node_id))
    if tag:
        qs = qs.filter(tags__name=tag.strip())
    if (q or "").strip():
        qs, _ordering = selectors.customer_match(qs, q)  # keyset order stays by id
    return qs


@router.get("/customers", response=CustomerPage, tags=["customers"])
@requires(Perm.CUSTOMER_VIEW, own_customer=True)
def customer_list(request, limit: Limit, cursor: Cursor, node_id: QueryId = None,
                  tag: Text(30) | None = None, q: Text(50) | None = None):
    """Customers in your scope, oldest first (filters: ``node_id`` subtree, ``tag``, ``q`` phone or
    name prefix). A customer sees only their own file."""
    qs = _list_queryset(request.auth, node_id=node_id, tag=tag, q=q)
    return paginate(qs, ordering=["id"], cursor=cursor, limit=limit)


@router.get("/customers/search", response=CustomerBriefPage)
@requires(Perm.CUSTOMER_VIEW)
def customer_search(request, q: Text(50), limit: int = Query(20, ge=1, le=50)):
    """Quick lookup by phone (whole or its first digits) or name prefix; one page, no cursor."""
    return {"items": list(selectors.customer_search(request.auth, q, limit=limit)), "next_cursor": None}


@router.get("/customers/{customer_id}", response=CustomerDetail)
@requires(Perm.CUSTOMER_VIEW, own_customer=True)
def customer_detail(request, customer_id: PathId):
    """The customer file: addresses, tags, units with today's 三包 decision."""
    return selectors.customer_get(request.auth, customer_id)


@router.post("/customers", response={201: CustomerDetail})
@requires(Perm.CUSTOMER_EDIT)
def customer_create(request, payload: CustomerIn):
    data = payload.model_dump()
    return services.customer_create(user=request.auth, **data)


@router.patch("/customers/{customer_id}", response=CustomerDetail)
@requires(Perm.CUSTOMER_EDIT)
def customer_update(request, customer_id: PathId, payload: CustomerPatch):
    return services.customer_update(user=request.auth, customer_id=customer_id,
                                    **payload.model_dump(exclude_unset=True))


@router.post("/customers/{customer_id}/addresses", response={201: AddressOut})
@requires(Perm.CUSTOMER_EDIT)
def address_add(request, customer_id: PathId, payload: AddressCreateIn):
    return services.address_add(user=request.auth, customer_id=customer_id, address=payload.address.model_dump(),
                                make_default=payload.make_default)


@router.post("/customers/{customer_id}/units", response={201: UnitOut})
@requires(Perm.UNIT_EDIT)
def unit_register(request, customer_id: PathId, payload: UnitIn):
    return services.unit_register(
        user=request.auth, customer_id=customer_id, serial=payload.serial, model_code=payload.model,
        purchase_date=payload.purchase_date, sales_channel=payload.sales_channel, invoice_no=payload.invoice_no,
        address_id=payload.address_id,
    )


# ---------------------------------------------------------------- units

@router.get("/units/{unit_id}", response=UnitDetail, tags=["units"])
@requires(Perm.CUSTOMER_VIEW, own_customer=True)
def unit_detail(request, unit_id: PathId):
    return selectors.unit_get(request.auth, unit_id)


@router.get("/units/{unit_id}/warranty", response=DecisionOut, tags=["units"])
@requires(Perm.CUSTOMER_VIEW, own_customer=True)
def unit_warranty_decision(request, unit_id: PathId, exclusions: Exclusions, on: dt.date | None = None,
                           part: Text(30) | None = None, fault: Text(40) | None = None):
    """The 三包 decision for a fault found on ``on`` (today by default): ``part`` the failed part's
    code, ``fault`` the fault key (defaults to the part), ``exclusions`` (repeatable) the
    circumstances that apply."""
    unit = selectors.unit_get(request.auth, unit_id)
    return unit_warranty(unit, on=on, fault_key=fault, part_code=part, exclusions=[e.value for e in exclusions])


@router.post("/units/{unit_id}/exchange", response=UnitOut, tags=["units"])
@requires(Perm.UNIT_EDIT)
def unit_exchange(request, unit_id: PathId, payload: ExchangeIn):
    """Record an exchange for a new unit of the same model: the 三包 periods restart."""
    return services.unit_record_exchange(user=request.auth, unit_id=unit_id, on=payload.on,
                                         new_serial=payload.new_serial)


@router.post("/units/{unit_id}/repairs", response={201: RepairOut}, tags=["units"])
@requires(Perm.UNIT_EDIT)
def unit_repair(request, unit_id: PathId, payload: RepairIn):
    return services.unit_repair_record(user=request.auth, unit_id=unit_id, **payload.model_dump())
