"""The charges API (``/api/charges/``): the price list, quotes and the customer's approval (public:
the token of the link is the credential), payments, refunds, receipts (PDF) and service costs.
No ``from __future__ import annotations`` here (see aftersales.api.permissions).

Sums of money are strings of yuan with two decimals (``"130.00"``); in requests a number or a
string is accepted and checked by the services (at most two decimals, 400 naming the field).
"""

import datetime as dt
from decimal import Decimal
from typing import Annotated

from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Field, File, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import conlist

from aftersales.api.permissions import AUTHENTICATED, public, requires
from aftersales.api.schemas import Cursor, Id, In, Limit, PathId, QueryId, Text, page_of, paginate
from aftersales.core.errors import PermissionDenied, ValidationFailed
from aftersales.org.roles import Perm
from aftersales.org.scope import principal

from . import receipt, selectors, services
from .models import PaymentMethod, PriceKind

router = Router(tags=["charges"])

OnDate = Annotated[dt.date | None, Query(None, description="价格生效日期，默认今天")]
History = Annotated[bool, Query(False, description="列出全部历史价格（忽略 on）")]
READ_PERMS = (Perm.ORDER_VIEW, Perm.ORDER_WORK, Perm.CHARGE_HANDLE, Perm.ORDER_CREATE)


def _reader(request):
    """The caller holds an order role somewhere, or is a customer (who sees their own orders)."""
    p = principal(request.auth)
    if p.customer_id is None and not any(p.can(perm) for perm in READ_PERMS):
        raise PermissionDenied()
    return request.auth


def _pdf(data: bytes, filename: str) -> HttpResponse:
    resp = HttpResponse(data, content_type="application/pdf")
    resp["Content-Disposition"] = f'inline; filename="{filename}"'
    resp["Cache-Control"] = "private, no-store"
    resp["X-Content-Type-Options"] = "nosniff"
    return resp


# ---------------------------------------------------------------- output schemas

class Ref(Schema):
    id: int
    code: str
    name: str


class PriceItemOut(Schema):
    id: int
    kind: str
    kind_label: str
    key: str
    label: str = Field(description="显示名称：配件名、工时名或上门费")
    part: Ref | None
    code: str
    name: str
    category: Ref | None = Field(description="适用产品类别；为空表示所有类别")
    price: Decimal
    cost_rate: Decimal | None = Field(description="工时的内部成本单价（计算服务成本用）")
    valid_from: dt.date
    valid_to: dt.date | None = Field(description="含当日；为空表示长期有效")
    note: str
    created_at: dt.datetime

    @staticmethod
    def resolve_kind_label(obj):
        return str(obj.get_kind_display())


PricePage = page_of(PriceItemOut)


class OrderRef(Schema):
    id: int
    number: str
    status: str


class LineOut(Schema):
    position: int
    kind: str
    kind_label: str
    code: str
    description: str
    qty: Decimal
    unit_price: Decimal
    amount: Decimal
    free: bool = Field(description="三包免费")
    reason: str = Field(description="三包说明")
    part_request_id: int | None

    @staticmethod
    def resolve_kind_label(obj):
        return str(obj.get_kind_display())


class QuoteOut(Schema):
    id: int
    number: str
    seq: int
    status: str
    status_label: str
    order: OrderRef
    priced_on: dt.date = Field(description="计价日期：各行单价按此日有效的价格复制")
    warranty_kind: str
    warranty_free: bool | None
    total: Decimal
    chargeable: Decimal = Field(description="应收（收费项目合计）")
    created_at: dt.datetime
    created_by: str | None
    sent_at: dt.datetime | None
    expires_at: dt.datetime | None
    decided_at: dt.datetime | None
    approved_via: str
    reject_reason: str
    superseded_by_id: int | None
    lines: list[LineOut]

    @staticmethod
    def resolve_status_label(obj):
        return str(obj.get_status_display())

    @staticmethod
    def resolve_created_by(obj):
        return obj.created_by.get_username() if obj.created_by_id else None

    @staticmethod
    def resolve_lines(obj):
        return list(obj.lines.all())


QuotePage = page_of(QuoteOut)


class SentOut(Schema):
    quote: QuoteOut
    expires_at: dt.datetime


class PublicLineOut(Schema):
    kind_label: str
    description: str
    qty: Decimal
    unit_price: Decimal
    amount: Decimal
    free: bool
    reason: str

    @staticmethod
    def resolve_kind_label(obj):
        return str(obj.get_kind_display())


class QuotePublicOut(Schema):
    number: str
    order_number: str
    product: str | None
    technician: str | None
    priced_on: dt.date
    expires_at: dt.datetime | None
    total: Decimal
    chargeable: Decimal
    lines: list[PublicLineOut]


class AnswerOut(Schema):
    status: str
    message: str


class RefundOut(Schema):
    id: int
    amount: Decimal
    reason: str
    refunded_at: dt.datetime
    refunded_by: str | None

    @staticmethod
    def resolve_refunded_by(obj):
        return obj.refunded_by.get_username() if obj.refunded_by_id else None


class PaymentOut(Schema):
    id: int
    receipt_no: str
    order_id: int
    quote_id: int | None
    amount: Decimal
    refunded: Decimal
    net: Decimal
    method: str
    method_label: str
    reference: str
    received_at: dt.datetime
    received_by: str | None
    receipt_url: str = Field(description="收据 PDF")
    refunds: list[RefundOut]

    @staticmethod
    def resolve_method_label(obj):
        return str(obj.get_method_display())

    @staticmethod
    def resolve_received_by(obj):
        return obj.received_by.get_username() if obj.received_by_id else None

    @staticmethod
    def resolve_receipt_url(obj):
        return f"/api/charges/payments/{obj.pk}/receipt.pdf"

    @staticmethod
    def resolve_refunds(obj):
        return list(obj.refunds.all())


PaymentPage = page_of(PaymentOut)


class SummaryOut(Schema):
    order: OrderRef
    chargeable: bool = Field(description="收费维修（保外，或有收费配件）")
    quote_required: str | None = Field(description="不能开始维修的原因（须先经客户确认报价）；为空表示可以维修")
    quote: QuoteOut | None = Field(description="当前报价（未被取代的最新一份）")
    paid: Decimal
    refunded: Decimal
    net: Decimal


class ServiceCostOut(Schema):
    order_id: int
    stored: bool = Field(description="已保存（完工或关闭时计算）；否则为按当前数据的估算")
    month: dt.date | None
    parts: Decimal
    labour: Decimal
    travel: Decimal
    loaner: Decimal
    total: Decimal
    visits: int
    loan_days: int
    computed_at: dt.datetime | None


class CostRowOut(Schema):
    node_id: int
    node: str
    month: dt.date
    orders: int
    parts: Decimal
    labour: Decimal
    travel: Decimal
    loaner: Decimal
    total: Decimal


# ---------------------------------------------------------------- input schemas

class PriceSetIn(In):
    kind: PriceKind
    price: Decimal = Field(description="售价（元）")
    valid_from: dt.date = Field(description="生效日期（不早于今天）；此前有效的价格截止到前一天")
    valid_to: dt.date | None = Field(None, description="截止日期（含当日）；为空表示长期有效")
    part_id: Id | None = Field(None, description="配件（类型为配件时）")
    code: Text(30) = Field("", description="工时编码（类型为工时时）")
    name: Text(100) = Field("", description="工时名称（新编码时必填）")
    category_id: Id | None = Field(None, description="产品类别（工时、上门费可按类别定价）")
    cost_rate: Decimal | None = Field(None, description="工时的内部成本单价")
    note: Text(200) = ""


class LabourIn(In):
    code: Text(30)
    qty: Decimal = Decimal(1)


class ExtraIn(In):
    description: Text(100)
    qty: Decimal = Decimal(1)
    unit_price: Decimal
    free: bool = False


class QuoteIn(In):
    labour_codes: conlist(LabourIn, max_length=20) = Field([], description="工时：编码与数量")
    visit_fee: bool = Field(True, description="收取上门费")
    extra: conlist(ExtraIn, max_length=10) = Field([], description="其他费用")


class AnswerIn(In):
    approve: bool = Field(description="true 确认报价，false 拒绝")
    reason: Text(200) = Field("", description="拒绝原因（选填）")


class PaymentIn(In):
    amount: Decimal = Field(description="金额（元，最多两位小数）")
    method: PaymentMethod
    reference: Text(64) = Field("", description="交易流水号（选填）")


class RefundIn(In):
    amount: Decimal
    reason: Text(200)


# ---------------------------------------------------------------- the price list

@router.get("/prices", response=PricePage)
@requires(Perm.CATALOG_VIEW)
def price_list(request, limit: Limit, cursor: Cursor, on: OnDate = None, kind: PriceKind | None = None,
               q: Text(50) | None = None, category_id: QueryId = None, history: History = False):
    """The price list as of a date (today by default): parts priced explicitly, labour codes and
    the visit fee, each with its effective dates. Parts without an item sell at cost × markup."""
    qs = selectors.price_list_qs(on=on, kind=kind, q=q, category_id=category_id, history=history)
    return paginate(qs, ordering=selectors.PRICE_ORDERING, cursor=cursor, limit=limit)


@router.post("/prices", response={201: PriceItemOut})
@requires(Perm.CATALOG_EDIT, at_hq=True)
def price_set(request, payload: PriceSetIn):
    """Set a price from a date: the price in effect then is closed the day before (a price a
    quote used is never changed); a price overlapping another of the same thing is a 400."""
    item = services.price_set(user=request.auth, **payload.model_dump())
    return Status(201, selectors.price_list_qs(history=True).get(pk=item.pk))


# ---------------------------------------------------------------- quotes

@router.get("/orders/{order_id}/summary", response=SummaryOut)
@requires(AUTHENTICATED)
def order_summary(request, order_id: PathId):
    """What an order's charges stand at: chargeable or free, whether the repair may begin (and
    why not), the current quote, what was paid and refunded."""
    user = _reader(request)
    o = selectors.order_for(user, order_id)
    gate = services.repair_gate(o)
    q = services.current_quote(o.pk)
    money = selectors.order_money(o.pk)
    return {"order": o, "chargeable": gate.chargeable, "quote_required": gate.problem,
            "quote": selectors.quote_get(user, q.pk) if q else None, "paid": money["paid"],
            "refunded": money["refunded"], "net": money["net"]}


@router.get("/orders/{order_id}/quotes", response=QuotePage)
@requires(AUTHENTICATED)
def quote_list(request, order_id: PathId, limit: Limit, cursor: Cursor):
    """The quotes of an order, newest first, with their lines."""
    qs = selectors.quotes_of(_reader(request), order_id)
    return paginate(qs, ordering=selectors.QUOTE_ORDERING, cursor=cursor, limit=limit)


@router.post("/orders/{order_id}/quotes", response={201: QuoteOut})
@requires(AUTHENTICATED)
def quote_create(request, order_id: PathId, payload: QuoteIn):
    """A new quote (the open one is superseded) by the order's technician or ``charge.handle``:
    the parts asked for, the labour codes, the visit fee and other charges, at today's prices,
    each free or chargeable by the 三包 decision. 409 when the order is done."""
    user = _reader(request)
    q = services.quote_create(user=user, order_id=order_id, **payload.model_dump())
    return Status(201, selectors.quote_get(user, q.pk))


@router.get("/quotes/{quote_id}", response=QuoteOut)
@requires(AUTHENTICATED)
def quote_get(request, quote_id: PathId):
    return selectors.quote_get(_reader(request), quote_id)


@router.post("/quotes/{quote_id}/send", response=SentOut)
@requires(AUTHENTICATED)
def quote_send(request, quote_id: PathId):
    """Send the quote to the customer by SMS with a single-use approval link (the link is never
    shown here). Sending again replaces the link."""
    user = _reader(request)
    out = services.quote_send(user=user, quote_id=quote_id)
    return {"quote": selectors.quote_get(user, quote_id), "expires_at": out.quote.expires_at}


@router.post("/quotes/{quote_id}/signature", response=QuoteOut)
@requires(AUTHENTICATED)
def quote_sign(request, quote_id: PathId, signature: File[UploadedFile]):
    """The customer approves by signing on the technician's phone (a PNG image, up to 2 MB)."""
    user = _reader(request)
    if signature.size is not None and signature.size > services.SIGNATURE_MAX_BYTES:
        raise ValidationFailed({"signature": [_("签名图片不能超过 2 MB。")]})
    data = signature.read(services.SIGNATURE_MAX_BYTES + 1)
    services.quote_sign(user=user, quote_id=quote_id, signature_png_bytes=data)
    return selectors.quote_get(user, quote_id)


# ---------------------------------------------------------------- the customer's link

@router.get("/q/{token}", response=QuotePublicOut, auth=None)
@public
def quote_public_get(request, token: Text(200)):
    """What the customer's quote page shows (nothing personal). 404 unknown link; 410 used,
    expired or replaced."""
    q = selectors.quote_public(token)
    o = q.order
    return {"number": q.number, "order_number": o.number,
            "product": o.unit.model.name if o.unit_id else None,
            "technician": o.assignee.name if o.assignee_id else None, "priced_on": q.priced_on,
            "expires_at": q.expires_at, "total": q.total, "chargeable": q.chargeable, "lines": list(q.lines.all())}


@router.post("/q/{token}", response=AnswerOut, auth=None)
@public
def quote_public_answer(request, token: Text(200), payload: AnswerIn):
    """The customer approves or rejects the quote (single use). 404 unknown link; 410 used,
    expired or replaced; 400 naming a bad field."""
    q = services.quote_answer(token, approve=payload.approve, reason=payload.reason)
    return {"status": q.status, "message": str(services.GONE_MESSAGES[q.status])}


# ---------------------------------------------------------------- payments and refunds

@router.get("/orders/{order_id}/payments", response=PaymentPage)
@requires(AUTHENTICATED)
def payment_list(request, order_id: PathId, limit: Limit, cursor: Cursor):
    """The payments of an order with their refunds, newest first."""
    qs = selectors.payments_of(_reader(request), order_id)
    return paginate(qs, ordering=selectors.PAYMENT_ORDERING, cursor=cursor, limit=limit)


@router.post("/orders/{order_id}/payments", response={201: PaymentOut})
@requires(AUTHENTICATED)
def payment_record(request, order_id: PathId, payload: PaymentIn):
    """Record a payment (by the order's technician or ``charge.handle``): a receipt number is
    given; the receipt PDF is at ``receipt_url``."""
    user = _reader(request)
    p = services.payment_record(user=user, order_id=order_id, **payload.model_dump())
    return Status(201, selectors.payments_of(user, order_id).get(pk=p.pk))


@router.post("/payments/{payment_id}/refunds", response={201: RefundOut})
@requires(Perm.CHARGE_HANDLE)
def refund_record(request, payment_id: PathId, payload: RefundIn):
    """Refund (part of) a payment; refunds never exceed what was paid (400 on ``amount``)."""
    return Status(201, services.refund_record(user=request.auth, payment_id=payment_id, **payload.model_dump()))


@router.get("/payments/{payment_id}/receipt.pdf")
@requires(AUTHENTICATED)
def receipt_pdf(request, payment_id: PathId):
    """The receipt of a payment, a PDF in Chinese (A4)."""
    user = _reader(request)
    p = selectors.payment_get(user, payment_id)
    return _pdf(receipt.receipt_pdf(p, user=user), f"{p.receipt_no}.pdf")


# ---------------------------------------------------------------- service cost

@router.get("/orders/{order_id}/service-cost", response=ServiceCostOut)
@requires(Perm.ORDER_VIEW)
def service_cost(request, order_id: PathId):
    """The order's service cost: parts at cost, labour, travel, loaner (kept at completion and
    closure; before that an estimate from the data as it stands)."""
    o, sc = selectors.service_cost_of(request.auth, order_id)
    if sc is not None:
        return {"order_id": o.pk, "stored": True, "month": sc.month, "parts": sc.parts, "labour": sc.labour,
                "travel": sc.travel, "loaner": sc.loaner, "total": sc.total, "visits": sc.visits,
                "loan_days": sc.loan_days, "computed_at": sc.computed_at}
    c = services.service_cost_compute(o)
    return {"order_id": o.pk, "stored": False, "month": None, "parts": c.parts, "labour": c.labour,
            "travel": c.travel, "loaner": c.loaner, "total": c.total, "visits": c.visits, "loan_days": c.loan_days,
            "computed_at": None}


@router.get("/service-costs", response=list[CostRowOut])
@requires(Perm.ORDER_VIEW)
def service_cost_by_month(request, since: dt.date | None = None, until: dt.date | None = None,
                          node_id: QueryId = None):
    """The service cost per node and month in your scope (default: the last twelve months)."""
    if since is None and until is None:
        since = (timezone.localdate().replace(day=1) - dt.timedelta(days=335)).replace(day=1)
    return selectors.service_cost_by_node_month(request.auth, since=since, until=until, node_id=node_id)
