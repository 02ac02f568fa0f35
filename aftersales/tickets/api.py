"""Work orders over the API (``/api/orders/``): intake, lists, one order with its history and
the moves the caller may make, the moves themselves, notes, photos, the customer's
confirmation, and the intake's helpers (type and fault suggested from the text, the fault
catalogue).

Reading orders is open to every order role and to customers for their own orders, so those
operations declare ``authenticated`` and check the roles inside (``_reader``); the selectors
scope the rows (out of scope is 404). Dispatching, reassigning, accepting and declining book
a technician's time and belong to ``/api/dispatch/``. Phones and streets go out through
``customers.selectors.shown_phone/shown_street``. No ``from __future__ import annotations``
here (see ``aftersales.api.permissions``).
"""

import datetime as dt
from typing import Annotated

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Field, File, Form, Query, Router, Schema, Status, UploadedFile

from aftersales.api.permissions import AUTHENTICATED, requires
from aftersales.api.schemas import (
    Cursor,
    Id,
    In,
    Limit,
    NodeRef,
    PathId,
    QueryId,
    Text,
    page_of,
    paginate,
    subtree_path,
)
from aftersales.catalog.warranty import DecisionKind
from aftersales.core.errors import Conflict, PermissionDenied, ValidationFailed
from aftersales.customers.selectors import shown_phone, shown_street
from aftersales.org.roles import Perm
from aftersales.org.scope import principal

from . import classify, selectors, services, sla, workflow
from .models import (
    Channel,
    FaultCategory,
    FaultCode,
    OrderType,
    Priority,
    SlaState,
)
from .models import (
    Status as OrderStatus,
)

router = Router(tags=["orders"])

_READ_PERMS = (Perm.ORDER_VIEW, Perm.ORDER_WORK, Perm.ORDER_HANDLE, Perm.ORDER_DISPATCH, Perm.ORDER_CREATE)


def _user(context):
    return context["request"].auth


def _reader(request):
    """The caller holds an order role somewhere, or is a customer (who sees their own orders)."""
    p = principal(request.auth)
    if p.customer_id is None and not any(p.can(perm) for perm in _READ_PERMS):
        raise PermissionDenied()
    return request.auth


def _choices(choices) -> str:
    return "、".join(choices.values)


# ---------------------------------------------------------------- output schemas

class CustomerRef(Schema):
    id: int
    name: str
    phone: str = Field(description="无 customer.pii 权限时部分隐藏")

    @staticmethod
    def resolve_phone(obj, context):
        return shown_phone(_user(context), obj)


class UnitRef(Schema):
    id: int
    serial: str
    model: str
    model_name: str
    category: str

    @staticmethod
    def resolve_model(obj):
        return obj.model.code

    @staticmethod
    def resolve_model_name(obj):
        return obj.model.name

    @staticmethod
    def resolve_category(obj):
        return obj.model.category.code


class UserRef(Schema):
    id: int
    username: str


class EmployeeRef(Schema):
    id: int
    name: str


class FaultCategoryRef(Schema):
    code: str
    name: str


class OrderListOut(Schema):
    id: int
    number: str
    type: str
    type_label: str
    channel: str
    priority: str
    status: str
    status_label: str
    customer: CustomerRef
    unit: UnitRef | None
    node: NodeRef
    owner: UserRef | None = Field(description="首问负责人")
    assignee: EmployeeRef | None
    fault_category: FaultCategoryRef | None
    sla_state: str
    response_due: dt.datetime | None
    resolve_due: dt.datetime | None
    appointment_from: dt.datetime | None
    appointment_to: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @staticmethod
    def resolve_type_label(obj):
        return str(obj.get_type_display())

    @staticmethod
    def resolve_status_label(obj):
        return str(obj.get_status_display())


class AddressOut(Schema):
    id: int
    province: str
    city: str
    district: str
    street: str = Field(description="无 customer.pii 权限时部分隐藏")


class OrderRef(Schema):
    id: int
    number: str


class FaultCodeRef(Schema):
    code: str
    name: str
    part_code: str


class WarrantyOut(Schema):
    kind: str
    label: str
    free: bool | None


class MoveRef(Schema):
    name: str
    label: str
    needs: list[str]
    takes: list[str]


class EventOut(Schema):
    seq: int
    at: dt.datetime
    action: str
    action_label: str
    from_status: str
    to_status: str
    actor: str
    note: str
    data: dict


class PhotoOut(Schema):
    id: int
    url: str
    caption: str
    uploaded_at: dt.datetime

    @staticmethod
    def resolve_url(obj):
        return obj.image.url


class OrderDetail(OrderListOut):
    problem: str
    address: AddressOut | None
    wish_from: dt.datetime | None
    wish_to: dt.datetime | None
    parent: OrderRef | None
    fault_code: FaultCodeRef | None
    diagnosis: str
    actions: str
    result: str
    cancel_reason: str
    warranty: WarrantyOut | None = Field(description="三包判定：受理时按故障类别，技师选定故障代码后重新判定")
    confirmed_by: str
    confirmed_at: dt.datetime | None
    responded_at: dt.datetime | None
    completed_at: dt.datetime | None
    closed_at: dt.datetime | None
    sla_risk_at: dt.datetime | None
    sla_paused_at: dt.datetime | None
    response_breached: bool
    resolve_breached: bool
    escalation_level: int
    reassign_count: int
    decline_count: int
    reopen_count: int
    visit_count: int
    event_count: int
    moves: list[MoveRef] = Field(description="调用者现在可以执行的操作")
    timeline: list[EventOut] = Field(description="全部历史；客户只看到处理步骤，不含内部备注")
    photos: list[PhotoOut]

    @staticmethod
    def resolve_address(obj, context):
        a = obj.address
        if a is None:
            return None
        return {"id": a.pk, "province": a.province, "city": a.city, "district": a.district,
                "street": shown_street(_user(context), obj.customer, a)}

    @staticmethod
    def resolve_warranty(obj):
        if not obj.warranty_kind:
            return None
        label = DecisionKind(obj.warranty_kind).label if obj.warranty_kind in DecisionKind.values else obj.warranty_kind
        return {"kind": obj.warranty_kind, "label": str(label), "free": obj.warranty_free}

    @staticmethod
    def resolve_moves(obj, context):
        return [{"name": m.name, "label": str(m.label), "needs": list(m.needs), "takes": list(m.takes)}
                for m in workflow.allowed_moves(_user(context), obj)]

    @staticmethod
    def resolve_timeline(obj, context):
        user = _user(context)
        for_customer = workflow.is_customer_of(user, obj)
        return [{
            "seq": e.seq, "at": e.at, "action": e.action, "action_label": str(workflow.action_label(e.action)),
            "from_status": e.from_status, "to_status": e.to_status,
            "actor": "" if for_customer and e.actor_id != user.pk else e.actor_label,
            "note": selectors.shown_note(e, for_customer=for_customer),
            "data": {} if for_customer else e.data,
        } for e in selectors.timeline(obj, user)]

    @staticmethod
    def resolve_photos(obj):
        return list(selectors.photos(obj))


class MovedOut(Schema):
    id: int
    number: str
    status: str
    status_label: str
    node_id: int
    assignee_id: int | None
    sla_state: str
    response_due: dt.datetime | None
    resolve_due: dt.datetime | None
    event_count: int
    updated_at: dt.datetime

    @staticmethod
    def resolve_status_label(obj):
        return str(obj.get_status_display())


class SuggestionOut(Schema):
    type: str | None
    type_label: str | None
    fault_category: str | None
    fault_category_name: str | None
    confidence: float
    matched_keywords: list[str]
    response_due: dt.datetime | None = Field(None, description="按建议类型和普通优先级，现在受理时的响应截止")
    resolve_due: dt.datetime | None = None


class FaultCategoryOut(Schema):
    code: str
    name: str
    name_en: str
    suggests_type: str
    categories: list[str]
    keywords: list[str]

    @staticmethod
    def resolve_categories(obj):
        return sorted(c.code for c in obj.categories.all())

    @staticmethod
    def resolve_keywords(obj):
        return classify.keywords_of(obj.keywords)


class FaultCodeOut(Schema):
    id: int
    category: str
    code: str
    name: str
    fault_category: str
    part_code: str

    @staticmethod
    def resolve_category(obj):
        return obj.category.code

    @staticmethod
    def resolve_fault_category(obj):
        return obj.fault_category.code


class CodeSentOut(Schema):
    sent: bool
    expires_at: dt.datetime


OrderPage = page_of(OrderListOut)
Caption = Annotated[Text(100), Form("", description="照片说明")]
Mine = Annotated[bool, Query(False, description="只看我首问负责的工单")]
Search = Annotated[Text(50) | None, Query(None, description="工单号、手机号（或其开头）或客户姓名开头")]


# ---------------------------------------------------------------- input schemas

class OrderIn(In):
    customer_id: Id | None = Field(None, description="客户本人提交时可省略")
    type: Text(20) = Field("", description=f"工单类型：{_choices(OrderType)}")
    channel: Text(10) = Field("", description=f"受理渠道：{_choices(Channel)}（客户本人：web、app）")
    problem: Text(2000) = ""
    unit_id: Id | None = None
    address_id: Id | None = Field(None, description="服务地址；不填则用产品的地址或客户的默认地址")
    priority: Text(10) = Field(Priority.NORMAL.value, description=f"优先级：{_choices(Priority)}")
    fault_category: Text(30) | None = Field(None, description="故障类别编码（见 /fault-categories）")
    wish_from: dt.datetime | None = None
    wish_to: dt.datetime | None = None
    parent_id: Id | None = Field(None, description="关联（跟进）的工单")


class MoveIn(In):
    note: Text(2000) = ""
    reason: Text(2000) | None = None
    result: Text(2000) | None = None
    diagnosis: Text(2000) | None = None
    actions: Text(2000) | None = None
    fault_code: Text(20) | None = Field(None, description="故障代码（见 /fault-codes）")
    type: OrderType | None = None
    priority: Priority | None = None
    fault_category: Text(30) | None = None
    node_id: Id | None = Field(None, description="转派的目标网点")


class NoteIn(In):
    note: Text(2000)


class ConfirmIn(In):
    code: Text(6)


# ---------------------------------------------------------------- the intake's helpers

@router.get("/suggest", response=SuggestionOut)
@requires(Perm.ORDER_CREATE, own_customer=True)
def order_suggest(request, text: Text(2000), category: Text(20) | None = None):
    """The order type and fault category suggested by the customer's words (``category``: the
    unit's product category code), with the deadlines an order of that type would get now."""
    s = classify.suggest(text, category)
    fc = classify.fault_category(s.fault_category_code) if s.fault_category_code else None
    out = {"type": s.type, "type_label": str(OrderType(s.type).label) if s.type else None,
           "fault_category": s.fault_category_code, "fault_category_name": fc.name if fc else None,
           "confidence": s.confidence, "matched_keywords": s.matched_keywords}
    if s.type:
        d = sla.deadlines(s.type, Priority.NORMAL, timezone.now())
        out.update(response_due=d.response_due, resolve_due=d.resolve_due)
    return out


@router.get("/fault-categories", response=list[FaultCategoryOut])
@requires(Perm.CATALOG_VIEW)
def fault_category_list(request, category: Text(20) | None = None):
    """Kinds of fault (those of product category ``category``, and the general ones)."""
    qs = FaultCategory.objects.prefetch_related("categories").order_by("code")
    rows = list(qs)
    if category:
        rows = [r for r in rows if not r.categories.all() or any(c.code == category for c in r.categories.all())]
    return rows


@router.get("/fault-codes", response=list[FaultCodeOut])
@requires(Perm.CATALOG_VIEW)
def fault_code_list(request, category: Text(20) | None = None):
    """Fault codes, of product category ``category`` when given."""
    qs = FaultCode.objects.select_related("category", "fault_category").order_by("category__code", "code")
    if category:
        qs = qs.filter(category__code=category)
    return list(qs)


# ---------------------------------------------------------------- orders

@router.get("", response=OrderPage)
@requires(AUTHENTICATED)
def order_list(request, limit: Limit, cursor: Cursor,
               status: OrderStatus | None = None, node: QueryId = None, sla_state: SlaState | None = None,
               type: OrderType | None = None, date_from: dt.date | None = None, date_to: dt.date | None = None,
               open: bool = False, mine: Mine = False, assignee: QueryId = None, customer: QueryId = None,
               q: Search = None):
    """Orders in your scope, newest first (keyset-paginated). A technician sees the orders
    assigned to them, a customer their own."""
    user = _reader(request)
    if date_from and date_to and date_to < date_from:
        raise ValidationFailed({"date_to": [_("结束日期不能早于开始日期。")]})
    qs = selectors.order_filter(
        selectors.list_qs(selectors.order_queryset(user)), status=status, sla_state=sla_state, type=type,
        node_path=subtree_path(node) if node else None, date_from=date_from, date_to=date_to, open_only=open,
        owner_id=user.pk if mine else None, assignee_id=assignee, customer_id=customer, q=q)
    return paginate(qs, ordering=selectors.ORDERING, cursor=cursor, limit=limit)


@router.post("", response={201: OrderDetail})
@requires(Perm.ORDER_CREATE, own_customer=True)
def order_create(request, payload: OrderIn):
    """Record a request. The caller becomes its owner (首问负责制). A customer files for their own
    units, through the web or the app; every bad field is reported at once."""
    user = request.auth
    data = payload.model_dump()
    if data["customer_id"] is None:
        cid = principal(user).customer_id
        if cid is None:
            raise ValidationFailed({"customer_id": [_("请选择客户。")]})
        data["customer_id"] = cid
    o = services.order_create(user=user, **data)
    return Status(201, selectors.order_get(user, o.pk))


@router.get("/by-number/{number}", response=OrderDetail)
@requires(AUTHENTICATED)
def order_by_number(request, number: Text(20)):
    user = _reader(request)
    return selectors.order_by_number(user, number)


@router.get("/{order_id}", response=OrderDetail)
@requires(AUTHENTICATED)
def order_detail(request, order_id: PathId):
    """One order: its fields, the 三包 decision, the moves you may make now, its whole history
    (the customer sees the steps without internal notes) and its photos."""
    user = _reader(request)
    return selectors.order_get(user, order_id)


@router.post("/{order_id}/moves/{name}", response=MovedOut)
@requires(AUTHENTICATED)
def order_move(request, order_id: PathId, name: Text(30), payload: MoveIn = None):
    """Make move ``name`` of the workflow (``moves`` of the order lists yours): 404 out of
    scope, 403 not yours to make, 409 not allowed in the order's status (the reason says
    why), 400 naming each missing or bad field."""
    user = _reader(request)
    if name in workflow.DISPATCH_MOVES:
        raise Conflict(_("派工、改派、接单和拒单请使用 /api/dispatch/ 接口。"), code="use_dispatch_api")
    data = payload.model_dump(mode="json", exclude_none=True) if payload is not None else {}
    note = data.pop("note", "")
    return services.order_move(user=user, order_id=order_id, move=name, note=note, **data)


@router.post("/{order_id}/notes", response={201: MovedOut})
@requires(AUTHENTICATED)
def order_note(request, order_id: PathId, payload: NoteIn):
    """An internal note in the order's history (not shown to the customer)."""
    user = _reader(request)
    return Status(201, services.order_note(user=user, order_id=order_id, note=payload.note))


@router.post("/{order_id}/photos", response={201: PhotoOut})
@requires(AUTHENTICATED)
def order_photo(request, order_id: PathId, image: File[UploadedFile], caption: Caption = ""):
    """A photo of the site or the unit (JPEG, PNG or WebP, up to 8 MB), by the technician or a handler."""
    user = _reader(request)
    return Status(201, services.order_photo_add(user=user, order_id=order_id, upload=image, caption=caption))


@router.post("/{order_id}/confirmation-code", response={202: CodeSentOut})
@requires(AUTHENTICATED)
def confirmation_code_send(request, order_id: PathId):
    """Send the customer a six-digit code by SMS (valid 15 minutes); the technician enters it
    with ``/confirm``. The code is never shown here."""
    user = _reader(request)
    services.confirmation_code_send(user=user, order_id=order_id)
    o = selectors.order_get(user, order_id)
    return Status(202, {"sent": True, "expires_at": o.confirm_code_expires})


@router.post("/{order_id}/confirm", response=MovedOut)
@requires(AUTHENTICATED)
def order_confirm(request, order_id: PathId, payload: ConfirmIn):
    """The customer's confirmation by the code they received (five wrong codes void it)."""
    user = _reader(request)
    return services.order_confirm(user=user, order_id=order_id, code=payload.code)


@router.post("/{order_id}/signature", response=MovedOut)
@requires(AUTHENTICATED)
def order_signature(request, order_id: PathId, signature: File[UploadedFile]):
    """The customer's confirmation by their signature (an image)."""
    user = _reader(request)
    return services.order_confirm(user=user, order_id=order_id, signature=signature)

