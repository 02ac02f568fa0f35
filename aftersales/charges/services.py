"""Writes of charges (R-WAR-2): the price list, quotes and their approval, payments, refunds and
the service cost of an order. See ``models.py`` for the design.

Who may do what:

- the price list: ``catalog.edit`` held at headquarters (``price_set``);
- quotes and payments of an order: its technician (``workflow.is_assignee`` with
  ``order.work``) or ``charge.handle`` over the order's node; refunds: ``charge.handle`` only;
- the customer's answer through the link: anybody holding the token (single use).

Out of sight (``workflow.can_see``) is 404 whatever the action, seen but not allowed is 403.

Locks are always taken in the same order: the work order (``workflow.lock_order``), then its
quotes, then a payment. So the link, the signature, a new quote and the repair move (which
locks the order first too) never deadlock, and two refunds of one payment are served one
after the other: the second sees the first in ``Payment.refunded``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from io import BytesIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.db.models import DecimalField, ExpressionWrapper, F, Max, Q, Sum
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from aftersales.catalog.models import Category
from aftersales.catalog.warranty import DecisionKind
from aftersales.core.errors import (
    Conflict,
    DomainError,
    ErrorCollector,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from aftersales.core.sequences import next_in_day
from aftersales.core.validators import date_field
from aftersales.customers.models import Unit
from aftersales.feedback.services import TOKEN_MAX, token_hash
from aftersales.notifications.services import notify_customer, notify_users
from aftersales.org.roles import Perm
from aftersales.org.scope import holds_at, principal
from aftersales.parts.models import Part, PartRequest, RequestStatus
from aftersales.records.audit import audit_record, snapshot
from aftersales.tickets import workflow
from aftersales.tickets.models import Status, WorkOrder

from .models import (
    OPEN_QUOTE,
    ApprovedVia,
    LineKind,
    Payment,
    PaymentMethod,
    PriceItem,
    PriceKind,
    Quote,
    QuoteLine,
    QuoteStatus,
    ReceiptSequence,
    Refund,
    ServiceCost,
)

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
YUAN = Decimal("1")
MAX_AMOUNT = Decimal("1000000")  # one million yuan: more is a typing mistake
MAX_QTY = Decimal("100")
EXTRA_MAX = 10
SIGNATURE_MAX_BYTES = 2 * 1024 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REASON_MAX = 200
REFERENCE_MAX = 64
LABOUR_CODE_MAX = 30
# Orders that can no longer be quoted: the work is done or the order is over.
NOT_QUOTABLE = frozenset({Status.COMPLETED, Status.CALLBACK, Status.CLOSED, Status.CANCELLED})


def setting(name: str, default):
    """A tunable of the charges, read at call time (``getattr(settings, name, default)``):
    ``PART_PRICE_MARKUP`` (1.5), ``QUOTE_LINK_TTL_HOURS`` (72), ``TRAVEL_COST_PER_VISIT`` (30),
    ``LABOUR_COST_PER_VISIT`` (40), ``COMPANY_NAME``."""
    return getattr(settings, name, default)


def _zh(message, **params) -> str:
    """A text kept in the record (event notes): in Chinese, like the data."""
    with translation.override("zh-hans"):
        return str(message) % params if params else str(message)


def yuan(v: Decimal) -> str:
    return f"{v.quantize(CENT):,.2f}"


# ================================================================ input helpers

def _money(errs: ErrorCollector, field: str, v, *, allow_zero: bool = False, required: bool = True) -> Decimal | None:
    """A sum of money in yuan (a Decimal, an int or a numeric string) with at most two decimals."""
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            errs.add(field, _("请填写金额。"))
        return None
    if isinstance(v, bool) or not isinstance(v, Decimal | int | str | float):
        errs.add(field, _("请输入金额。"))
        return None
    try:
        d = Decimal(str(v).strip().replace(",", "")) if not isinstance(v, Decimal) else v
    except InvalidOperation:
        errs.add(field, _("请输入金额。"))
        return None
    if not d.is_finite():
        errs.add(field, _("请输入金额。"))
        return None
    if d < 0 or (d == 0 and not allow_zero):
        errs.add(field, _("金额须大于 0。") if not allow_zero else _("金额不能为负数。"))
        return None
    if d > MAX_AMOUNT:
        errs.add(field, _("金额不能超过 %(max)s 元。") % {"max": f"{MAX_AMOUNT:,.0f}"})
        return None
    if d != d.quantize(CENT):
        errs.add(field, _("金额最多保留两位小数。"))
        return None
    return d.quantize(CENT)


def _qty(errs: ErrorCollector, field: str, v) -> Decimal | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return Decimal(1)
    if isinstance(v, bool) or not isinstance(v, Decimal | int | str | float):
        errs.add(field, _("请输入数量。"))
        return None
    try:
        d = Decimal(str(v).strip())
    except InvalidOperation:
        errs.add(field, _("请输入数量。"))
        return None
    if not d.is_finite() or d <= 0:
        errs.add(field, _("数量须大于 0。"))
        return None
    if d > MAX_QTY:
        errs.add(field, _("数量不能超过 %(max)s。") % {"max": MAX_QTY})
        return None
    if d != d.quantize(CENT):
        errs.add(field, _("数量最多保留两位小数。"))
        return None
    return d.quantize(CENT)


def _text(errs: ErrorCollector, field: str, v, max_len: int, *, required: bool = False, missing=None) -> str:
    if v is not None and not isinstance(v, str):
        errs.add(field, _("请输入文本。"))
        return ""
    s = (v or "").strip()
    if "\x00" in s:
        errs.add(field, _("不能包含空字符。"))
        return ""
    if required and not s:
        errs.add(field, missing or _("请填写此项。"))
    elif len(s) > max_len:
        errs.add(field, _("不能超过 %(n)s 个字符。") % {"n": max_len})
    return s


def _date(errs: ErrorCollector, field: str, v, *, required: bool = True) -> dt.date | None:
    return date_field(errs, field, v, required=required)


def _is_id(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v < 2**63


def _as_id(v):
    if isinstance(v, str) and v.strip().isdigit():
        return int(v.strip())
    return getattr(v, "pk", v)


# ================================================================ the price list

def price_key(kind: str, *, part_id: int | None = None, code: str = "", category_id: int | None = None) -> str:
    if kind == PriceKind.PART:
        return f"part:{part_id}"
    if kind == PriceKind.LABOUR:
        return f"labour:{code}:{category_id or '*'}"
    return f"visit:{category_id or '*'}"


def in_effect(on: dt.date) -> Q:
    return Q(valid_from__lte=on) & (Q(valid_to__isnull=True) | Q(valid_to__gte=on))


def price_on(kind: str, thing, on_date: dt.date, *, category_id: int | None = None) -> PriceItem | None:
    """The item of the price list in effect on ``on_date`` for ``thing``: a part (or its id) for
    ``part``; a labour code for ``labour``; for ``visit`` the product category (or its id, or
    None). For labour and the visit fee the item of the category wins over the general one
    (``category_id`` names the category for labour). One query."""
    if kind == PriceKind.PART:
        keys = [price_key(kind, part_id=_as_id(thing))]
    elif kind == PriceKind.LABOUR:
        code = (thing or "").strip().upper() if isinstance(thing, str) else ""
        if not code:
            return None
        keys = [price_key(kind, code=code, category_id=category_id), price_key(kind, code=code)]
    elif kind == PriceKind.VISIT:
        cat = _as_id(thing)
        keys = [price_key(kind, category_id=cat), price_key(kind)]
    else:
        return None
    rows = {r.key: r for r in PriceItem.objects.filter(in_effect(on_date), key__in=set(keys))
            .select_related("part", "category")}
    for k in keys:
        if k in rows:
            return rows[k]
    return None


@dataclass(frozen=True)
class PartPrice:
    price: Decimal
    item: PriceItem | None  # None: the part's cost × markup


def markup_price(cost: Decimal) -> Decimal:
    """The sale price of a part without a price of its own: its cost × ``PART_PRICE_MARKUP``
    (default 1.5), rounded half up to whole yuan (at least one yuan when it costs anything)."""
    markup = Decimal(str(setting("PART_PRICE_MARKUP", "1.5")))
    p = (Decimal(cost) * markup).quantize(YUAN, rounding=ROUND_HALF_UP)
    if cost > 0 and p < 1:
        p = YUAN
    return p.quantize(CENT)


def part_price(part: Part, on_date: dt.date) -> PartPrice:
    item = price_on(PriceKind.PART, part, on_date)
    if item is not None:
        return PartPrice(item.price, item)
    return PartPrice(markup_price(part.unit_cost), None)


def _check_price_editor(user) -> None:
    p = principal(user)
    if user is None or not p.can(Perm.CATALOG_EDIT) or p.node_ids_for(Perm.CATALOG_EDIT) is not None:
        raise PermissionDenied(_("只有总部可以维护价格表。"))


def _key_lock(key: str) -> None:
    """Serialise writers of one price key: a transaction-scoped advisory lock on PostgreSQL
    (SQLite runs one writing transaction at a time anyway)."""
    if connection.vendor == "postgresql":
        n = int.from_bytes(hashlib.sha256(f"charges.price:{key}".encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [n])


_PRICE_FIELDS = ("kind", "key", "part_id", "code", "name", "category_id", "price", "cost_rate", "valid_from",
                 "valid_to", "note")


def price_set(*, user, kind: str, price, valid_from, part_id=None, code: str = "", name: str = "",
              category_id=None, cost_rate=None, valid_to=None, note: str = "",
              today: dt.date | None = None) -> PriceItem:
    """Set the price of a part, a labour code or the visit fee from ``valid_from`` (today or
    later) on. The item in effect then, if open-ended, is closed the day before; an item that
    starts the same day is corrected in place unless a quote used it (then 400); any other
    overlap with an item of the same thing is a 400 naming ``valid_from``."""
    _check_price_editor(user)
    today = today or timezone.localdate()
    errs = ErrorCollector()
    if kind not in PriceKind.values:
        errs.add("kind", _("请选择类型：配件、工时或上门费。"))
    amount = _money(errs, "price", price, allow_zero=True)
    rate = _money(errs, "cost_rate", cost_rate, allow_zero=True, required=False)
    if rate is not None and kind != PriceKind.LABOUR:
        errs.add("cost_rate", _("只有工时可以设置内部成本。"))
    start = _date(errs, "valid_from", valid_from)
    end = _date(errs, "valid_to", valid_to, required=False)
    if start is not None and start < today:
        errs.add("valid_from", _("生效日期不能早于今天（已生效的价格不能追溯修改）。"))
    if start is not None and end is not None and end < start:
        errs.add("valid_to", _("截止日期不能早于生效日期。"))
    name = _text(errs, "name", name, 100)
    note = _text(errs, "note", note, 200)
    code = _text(errs, "code", code, LABOUR_CODE_MAX).upper()
    part = category = None
    part_id, category_id = _as_id(part_id), _as_id(category_id)
    if kind == PriceKind.PART:
        part = Part.objects.filter(pk=part_id).first() if _is_id(part_id) else None
        if part is None:
            errs.add("part_id", _("未知的配件。"))
        if category_id not in (None, ""):
            errs.add("category_id", _("配件价格不分产品类别。"))
        if code:
            errs.add("code", _("配件价格不使用工时编码。"))
    else:
        if part_id not in (None, ""):
            errs.add("part_id", _("只有配件价格可以选择配件。"))
        if category_id not in (None, ""):
            category = Category.objects.filter(pk=category_id).first() if _is_id(category_id) else None
            if category is None:
                errs.add("category_id", _("未知的产品类别。"))
    if kind == PriceKind.LABOUR:
        if not code:
            errs.add("code", _("请填写工时编码。"))
        elif not all(c.isascii() and (c.isalnum() or c in "_-") for c in code):
            errs.add("code", _("工时编码只能包含字母、数字、下划线和连字符。"))
    elif kind == PriceKind.VISIT and code:
        errs.add("code", _("上门费不使用工时编码。"))
    errs.raise_if_any()

    key = price_key(kind, part_id=part.pk if part else None, code=code, category_id=category.pk if category else None)
    with transaction.atomic():
        _key_lock(key)
        overlapping = list(PriceItem.objects.select_for_update().filter(key=key).filter(
            Q(valid_to__isnull=True) | Q(valid_to__gte=start)).filter(
            Q() if end is None else Q(valid_from__lte=end)).order_by("valid_from", "id"))
        same = next((i for i in overlapping if i.valid_from == start), None)
        close = next((i for i in overlapping if i.valid_from < start and i.valid_to is None), None) if end is None \
            else None
        others = [i for i in overlapping if i is not same and i is not close]
        if same is not None and same.lines.exists():
            raise ValidationFailed({"valid_from": [_(
                "%(date)s 起的价格已被报价使用，不能修改；请从以后的日期设置新价格。") % {"date": start}]})
        if others:
            o = others[0]
            raise ValidationFailed({"valid_from": [_("与已有价格重叠（%(from)s 至 %(to)s，%(price)s 元）。") % {
                "from": o.valid_from, "to": o.valid_to or _("长期"), "price": o.price}]})
        if not name and kind == PriceKind.LABOUR:
            name = (PriceItem.objects.filter(key__startswith=f"labour:{code}:").exclude(name="")
                    .order_by("-valid_from").values_list("name", flat=True).first() or "")
            if not name:
                raise ValidationFailed({"name": [_("请填写工时名称。")]})
        if close is not None:
            before = snapshot(close, _PRICE_FIELDS)
            close.valid_to = start - dt.timedelta(days=1)
            close.save(update_fields=["valid_to"])
            audit_record(actor=user, action="price.close", obj=close, before=before,
                         after=snapshot(close, _PRICE_FIELDS))
        values = dict(kind=kind, key=key, part=part, code=code, name=name, category=category, price=amount,
                      cost_rate=rate, valid_from=start, valid_to=end, note=note)
        if same is not None:
            before = snapshot(same, _PRICE_FIELDS)
            for k, v in values.items():
                setattr(same, k, v)
            same.created_by, same.created_at = user, timezone.now()
            same.save()
            audit_record(actor=user, action="price.correct", obj=same, before=before,
                         after=snapshot(same, _PRICE_FIELDS))
            return same
        item = PriceItem.objects.create(**values, created_by=user, created_at=timezone.now())
        audit_record(actor=user, action="price.set", obj=item, before=None, after=snapshot(item, _PRICE_FIELDS))
        return item


# The price list a fresh installation starts with (``ensure_price_list``); the demo shows a
# price change on top of it. Labour: (code, name, category code or None, price, internal cost).
DEFAULT_VISIT_FEE = Decimal("50.00")
DEFAULT_LABOUR = [
    ("INSPECT", "检测工时", None, Decimal("30"), Decimal("15")),
    ("GENERAL", "一般维修工时", None, Decimal("80"), Decimal("40")),
    ("PARTS", "更换一般配件工时", None, Decimal("60"), Decimal("30")),
    ("COMP", "更换压缩机工时", "AC", Decimal("300"), Decimal("150")),
    ("REFRIG", "补充冷媒工时", "AC", Decimal("150"), Decimal("60")),
    ("COMP", "更换压缩机工时", "RF", Decimal("260"), Decimal("130")),
    ("MOTOR", "更换电机工时", "WM", Decimal("120"), Decimal("60")),
    ("PANEL", "更换显示屏工时", "TV", Decimal("200"), Decimal("90")),
]
PRICE_LIST_START = dt.date(2020, 1, 1)


def default_price_items(valid_from: dt.date = PRICE_LIST_START, *, scale: Decimal = Decimal(1),
                        valid_to: dt.date | None = None) -> list[PriceItem]:
    """The default price list as unsaved rows (category items only for categories that exist);
    ``scale`` multiplies the prices (the demo's older list)."""
    cats = dict(Category.objects.values_list("code", "id"))
    note = _zh(_("默认价格表"))

    def p(v: Decimal) -> Decimal:
        return (v * scale).quantize(YUAN, rounding=ROUND_HALF_UP).quantize(CENT)

    rows = [PriceItem(kind=PriceKind.VISIT, key=price_key(PriceKind.VISIT), name=_zh(_("上门费")),
                      price=p(DEFAULT_VISIT_FEE), valid_from=valid_from, valid_to=valid_to, note=note)]
    for code, name, cat_code, price, cost in DEFAULT_LABOUR:
        if cat_code is not None and cat_code not in cats:
            continue
        cat_id = cats.get(cat_code) if cat_code else None
        rows.append(PriceItem(kind=PriceKind.LABOUR, key=price_key(PriceKind.LABOUR, code=code, category_id=cat_id),
                              code=code, name=name, category_id=cat_id, price=p(price), cost_rate=cost,
                              valid_from=valid_from, valid_to=valid_to, note=note))
    return rows


def ensure_price_list(*, valid_from: dt.date = PRICE_LIST_START) -> int:
    """Seed the default price list: the visit fee (50 yuan) and the labour items, each only if
    nothing of its key is priced yet (idempotent). Parts need no item: a part without a price
    of its own sells at cost × ``PART_PRICE_MARKUP``. Returns how many items were added."""
    with transaction.atomic():
        have = set(PriceItem.objects.values_list("key", flat=True).distinct())
        rows = [r for r in default_price_items(valid_from) if r.key not in have]
        for r in rows:
            r.created_at = timezone.now()
        PriceItem.objects.bulk_create(rows)
        return len(rows)


# ================================================================ who may charge

def _lock_visible(user, order_id) -> WorkOrder:
    """The order, locked; 404 when it is absent or out of the user's sight."""
    if not _is_id(order_id):
        raise NotFound()
    o = workflow.lock_order(order_id)
    if not workflow.can_see(user, o):
        raise NotFound()
    return o


def may_quote(user, order: WorkOrder) -> bool:
    """The order's technician, or ``charge.handle`` over its node (needs ``order.assignee``)."""
    if user is None:
        return False
    if workflow.is_assignee(user, order) and principal(user).can(Perm.ORDER_WORK):
        return True
    return holds_at(user, Perm.CHARGE_HANDLE, order.node_id)


def may_refund(user, order: WorkOrder) -> bool:
    return user is not None and holds_at(user, Perm.CHARGE_HANDLE, order.node_id)


def _need(allowed: bool, message=None) -> None:
    if not allowed:
        raise PermissionDenied(message or _("您无权处理此工单的收费。"))


def _quotable(order: WorkOrder) -> None:
    if order.status in NOT_QUOTABLE:
        raise Conflict(_("工单 %(number)s 当前状态为「%(status)s」，不能再报价。") % {
            "number": order.number, "status": order.get_status_display()}, code="order_not_quotable")


def _event(order: WorkOrder, *, actor, action: str, now: dt.datetime, note: str = "", data: dict | None = None):
    """An event of the locked order's history that keeps its status, and the order saved."""
    workflow.event_append(order, actor=actor, action=action, at=now, from_status=order.status,
                          to_status=order.status, note=note[:2000], data=data or {})
    order.updated_at = now
    order.save(update_fields=["event_count", "updated_at"])


# ================================================================ the warranty of a line

def warranty_label(kind: str) -> str:
    try:
        return _zh(DecisionKind(kind).label)
    except ValueError:
        return ""


def _labour_free(order: WorkOrder) -> tuple[bool, str]:
    """Labour and the visit fee are free when the order's 三包 decision is free."""
    label = warranty_label(order.warranty_kind)
    if order.warranty_free is True:
        return True, _zh(_("三包期内：%(kind)s"), kind=label) if label else _zh(_("三包期内免费"))
    if order.warranty_free is False:
        return False, _zh(_("三包期外：%(kind)s"), kind=label) if label else _zh(_("三包期外收费"))
    return False, _zh(_("未作三包判定，按收费计"))


def open_requests(order_id: int):
    """The parts asked for on the order that were not released."""
    return PartRequest.objects.filter(order_id=order_id).exclude(status=RequestStatus.RELEASED)


def unit_category_id(order: WorkOrder) -> int | None:
    if not order.unit_id:
        return None
    return Unit.objects.filter(pk=order.unit_id).values_list("model__category_id", flat=True).first()


# ================================================================ quotes

@dataclass
class _Line:
    kind: str
    description: str
    qty: Decimal
    unit_price: Decimal
    free: bool
    reason: str = ""
    code: str = ""
    price_item: PriceItem | None = None
    part_request: PartRequest | None = None
    unit_cost: Decimal = Decimal("0.00")

    @property
    def amount(self) -> Decimal:
        return (self.unit_price * self.qty).quantize(CENT, rounding=ROUND_HALF_UP)


def _labour_entries(errs: ErrorCollector, labour_codes) -> list[tuple[str, Decimal, str]]:
    """``labour_codes``: codes, or ``{"code": …, "qty": …}`` / ``(code, qty)``; → (code, qty, field)."""
    out = []
    if labour_codes is None:
        return out
    if not isinstance(labour_codes, list | tuple):
        errs.add("labour_codes", _("须为列表。"))
        return out
    if len(labour_codes) > 20:
        errs.add("labour_codes", _("最多 %(n)s 项。") % {"n": 20})
        return out
    seen = set()
    for i, entry in enumerate(labour_codes):
        field = f"labour_codes[{i}]"
        if isinstance(entry, dict):
            code, qty = entry.get("code"), entry.get("qty")
        elif isinstance(entry, list | tuple) and len(entry) == 2:
            code, qty = entry
        else:
            code, qty = entry, None
        if not isinstance(code, str) or not code.strip():
            errs.add(field, _("请填写工时编码。"))
            continue
        code = code.strip().upper()
        if code in seen:
            errs.add(field, _("工时 %(code)s 重复。") % {"code": code})
            continue
        seen.add(code)
        q = _qty(errs, f"{field}.qty", qty)
        if q is not None:
            out.append((code, q, field))
    return out


def _extra_entries(errs: ErrorCollector, extra) -> list[tuple[str, Decimal, Decimal, bool]]:
    out = []
    if not extra:
        return out
    if not isinstance(extra, list | tuple):
        errs.add("extra", _("须为列表。"))
        return out
    if len(extra) > EXTRA_MAX:
        errs.add("extra", _("最多 %(n)s 项。") % {"n": EXTRA_MAX})
        return out
    for i, e in enumerate(extra):
        field = f"extra[{i}]"
        if not isinstance(e, dict):
            errs.add(field, _("格式不正确，应为对象。"))
            continue
        desc = _text(errs, f"{field}.description", e.get("description"), 100, required=True,
                     missing=_("请填写费用项目。"))
        q = _qty(errs, f"{field}.qty", e.get("qty"))
        price = _money(errs, f"{field}.unit_price", e.get("unit_price"), allow_zero=True)
        free = e.get("free", False)
        if not isinstance(free, bool):
            errs.add(f"{field}.free", _("请输入 true 或 false。"))
        if desc and q is not None and price is not None and isinstance(free, bool):
            out.append((desc, q, price, free))
    return out


_QUOTE_FIELDS = ("order_id", "seq", "number", "status", "priced_on", "warranty_kind", "warranty_free", "total",
                 "chargeable", "sent_at", "expires_at", "decided_at", "approved_via", "signature", "signed_by_id",
                 "reject_reason", "superseded_by_id")


def _quote_snapshot(q: Quote, lines: list | None = None) -> dict:
    out = snapshot(q, _QUOTE_FIELDS)
    if lines is not None:
        out["lines"] = [{"kind": ln.kind, "description": ln.description, "qty": str(ln.qty),
                         "unit_price": str(ln.unit_price), "free": ln.free} for ln in lines]
    return out


def quote_create(*, user, order_id: int, labour_codes=(), visit_fee: bool = True, extra=(),
                 now: dt.datetime | None = None) -> Quote:
    """A quote of the order as it stands: every part asked for and not released, the labour
    codes given (``[{"code": "GENERAL", "qty": 1}]`` or plain codes), the visit fee (unless
    ``visit_fee=False``) and ``extra`` charges (``[{"description", "qty", "unit_price"}]``),
    each at the price in effect today, copied into the line with its 三包 decision. The open
    quote (draft, sent or approved) is superseded. 404 out of sight, 403 neither the
    technician nor ``charge.handle``, 409 the order is done, 400 naming each bad line."""
    now = now or timezone.now()
    on = timezone.localdate(now)
    errs = ErrorCollector()
    labour = _labour_entries(errs, labour_codes)
    extras = _extra_entries(errs, extra)
    if not isinstance(visit_fee, bool):
        errs.add("visit_fee", _("请输入 true 或 false。"))
    with transaction.atomic():
        o = _lock_visible(user, order_id)
        _need(may_quote(user, o))
        _quotable(o)
        cat_id = unit_category_id(o)
        free, reason = _labour_free(o)
        lines: list[_Line] = []
        for pr in open_requests(o.pk).select_related("part").order_by("id"):
            pp = part_price(pr.part, on)
            if pr.free is True:
                pr_reason = pr.warranty_reason or _zh(_("三包期内免费更换"))
            else:
                pr_reason = pr.warranty_reason or (_zh(_("三包期外收费")) if pr.free is False
                                                   else _zh(_("未作三包判定，按收费计")))
            lines.append(_Line(LineKind.PART, pr.part.display_name[:100], Decimal(pr.qty), pp.price, pr.free is True,
                               pr_reason[:200], pr.part.code, pp.item, pr, pr.unit_cost))
        for code, q, field in labour:
            item = price_on(PriceKind.LABOUR, code, on, category_id=cat_id)
            if item is None:
                errs.add(field, _("价格表中没有工时 %(code)s（或它不适用于此产品类别）。") % {"code": code})
                continue
            lines.append(_Line(LineKind.LABOUR, item.label[:100], q, item.price, free, reason, code, item,
                               unit_cost=item.cost_rate or Decimal("0.00")))
        if visit_fee:
            item = price_on(PriceKind.VISIT, cat_id, on)
            if item is None:
                errs.add("visit_fee", _("价格表中没有上门费，请先设置价格或不收上门费。"))
            else:
                lines.append(_Line(LineKind.VISIT, item.label[:100], Decimal(1), item.price, free, reason, "VISIT",
                                   item))
        for desc, q, price, x_free in extras:
            lines.append(_Line(LineKind.OTHER, desc, q, price, x_free,
                               _zh(_("其他费用")) if not x_free else _zh(_("免收"))))
        if not lines:
            errs.add("labour_codes", _("报价没有任何项目：请选择工时、上门费或其他费用。"))
        errs.raise_if_any()

        olds = list(Quote.objects.select_for_update().filter(order=o, status__in=OPEN_QUOTE).order_by("seq"))
        seq = (Quote.objects.filter(order=o).aggregate(m=Max("seq"))["m"] or 0) + 1
        total = sum((ln.amount for ln in lines), Decimal("0.00"))
        chargeable = sum((ln.amount for ln in lines if not ln.free), Decimal("0.00"))
        q = Quote.objects.create(order=o, seq=seq, number=f"{o.number}-Q{seq}", node_id=o.node_id,
                                 status=QuoteStatus.DRAFT, priced_on=on, warranty_kind=o.warranty_kind,
                                 warranty_free=o.warranty_free, total=total, chargeable=chargeable,
                                 created_by=user, created_at=now)
        rows = [QuoteLine(quote=q, position=i, kind=ln.kind, price_item=ln.price_item, part_request=ln.part_request,
                          code=ln.code[:40], description=ln.description, qty=ln.qty, unit_price=ln.unit_price,
                          amount=ln.amount, unit_cost=ln.unit_cost, free=ln.free, reason=ln.reason[:200])
                for i, ln in enumerate(lines, start=1)]
        QuoteLine.objects.bulk_create(rows)
        for old in olds:
            before = snapshot(old, _QUOTE_FIELDS)
            old.status, old.superseded_by = QuoteStatus.SUPERSEDED, q
            old.save(update_fields=["status", "superseded_by"])
            audit_record(actor=user, action="quote.supersede", obj=old, before=before,
                         after=snapshot(old, _QUOTE_FIELDS), node_id=old.node_id)
        audit_record(actor=user, action="quote.create", obj=q, before=None, after=_quote_snapshot(q, rows),
                     node_id=q.node_id)
        return q


def _lock_quote(user, quote_id) -> tuple[WorkOrder, Quote]:
    """The quote's order (locked first) and the quote (locked); 404 out of sight."""
    if not _is_id(quote_id):
        raise NotFound()
    order_id = Quote.objects.filter(pk=quote_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise NotFound()
    o = _lock_visible(user, order_id)
    q = Quote.objects.select_for_update().get(pk=quote_id)
    return o, q


@dataclass
class SentQuote:
    quote: Quote
    token: str  # the raw token: only in the SMS (and returned to the caller's tests, never stored)


def quote_url(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/charges/q/{token}/"


def quote_send(*, user, quote_id: int, now: dt.datetime | None = None) -> SentQuote:
    """Send the customer the quote by SMS with a single-use approval link valid
    ``QUOTE_LINK_TTL_HOURS`` (72) hours. Sending again gives a new link (the old one is dead)."""
    now = now or timezone.now()
    with transaction.atomic():
        o, q = _lock_quote(user, quote_id)
        _need(may_quote(user, o))
        _quotable(o)
        if q.status not in (QuoteStatus.DRAFT, QuoteStatus.SENT):
            raise Conflict(_("报价 %(quote)s 状态为「%(status)s」，不能发送。") % {
                "quote": q.number, "status": q.get_status_display()}, code="quote_not_sendable")
        before = snapshot(q, _QUOTE_FIELDS)
        token = secrets.token_urlsafe(24)
        hours = int(setting("QUOTE_LINK_TTL_HOURS", 72))
        q.token_hash, q.expires_at = token_hash(token), now + dt.timedelta(hours=hours)
        q.status, q.sent_at = QuoteStatus.SENT, now
        q.save(update_fields=["token_hash", "expires_at", "status", "sent_at"])
        _event(o, actor=user, action="quote_sent", now=now,
               note=_zh(_("报价 %(quote)s 已发送客户确认：合计 %(total)s 元，应收 %(due)s 元。"), quote=q.number,
                        total=yuan(q.total), due=yuan(q.chargeable)),
               data={"quote": q.pk, "number": q.number, "chargeable": str(q.chargeable)})
        audit_record(actor=user, action="quote.send", obj=q, before=before, after=snapshot(q, _QUOTE_FIELDS),
                     node_id=q.node_id)
        notify_customer(o.customer, event="quote", ref=o.number, ref_id=o.pk,
                        context={"number": o.number, "total": yuan(q.total), "due": yuan(q.chargeable),
                                 "link": quote_url(token), "hours": hours})
        return SentQuote(q, token)


class Gone(DomainError):
    """The quote link was used, has expired, or the quote was replaced (410)."""

    status = 410
    code = "quote_closed"


GONE_MESSAGES = {
    QuoteStatus.APPROVED: _("您已确认此报价，感谢您的配合。"),
    QuoteStatus.REJECTED: _("您已拒绝此报价。如需维修，请联系我们重新报价。"),
    QuoteStatus.SUPERSEDED: _("此报价已被新的报价取代，请查看最新的短信。"),
    "expired": _("此报价确认链接已过期，请联系技师重新发送。"),
    "unsent": _("此报价尚未发送。"),
    "order_closed": _("此工单已结束，报价不再需要确认。"),
}


def quote_for_token(token: str) -> Quote:
    if not isinstance(token, str) or not token or len(token) > TOKEN_MAX:
        raise NotFound(_("报价确认链接无效。"))
    q = Quote.objects.filter(token_hash=token_hash(token)).first()
    if q is None:
        raise NotFound(_("报价确认链接无效。"))
    return q


def quote_link_check(q: Quote, order_status: str, now: dt.datetime | None = None) -> None:
    state = q.link_state(now)
    if state == "open" and order_status in (Status.CLOSED, Status.CANCELLED):
        state = "order_closed"
    if state != "open":
        raise Gone(GONE_MESSAGES[state])


def _tell_technician(o: WorkOrder, q: Quote, event: str) -> None:
    if o.assignee_id and o.assignee.user_id:
        user = o.assignee.user
        notify_users([user], event=event, node_id=o.node_id, ref=o.number, ref_id=o.pk,
                     context={"number": o.number, "quote": q.number})


def quote_answer(token: str, *, approve: bool, reason: str = "", now: dt.datetime | None = None) -> Quote:
    """The customer's answer through the link (anonymous): approve, or reject with a reason.
    404 unknown link, 410 used, expired, replaced or the order over; single use under
    concurrency (the order and the quote are locked and the state checked again)."""
    now = now or timezone.now()
    errs = ErrorCollector()
    if not isinstance(approve, bool):
        errs.add("approve", _("请选择确认或拒绝。"))
    reason = _text(errs, "reason", reason, REASON_MAX)
    found = quote_for_token(token)
    quote_link_check(found, WorkOrder.objects.filter(pk=found.order_id).values_list("status", flat=True).get(), now)
    errs.raise_if_any()
    with transaction.atomic():
        o, q = _lock_quote(None, found.pk)
        quote_link_check(q, o.status, now)  # again, under the locks: another answer may have come first
        before = snapshot(q, _QUOTE_FIELDS)
        q.decided_at = now
        if approve:
            q.status, q.approved_via = QuoteStatus.APPROVED, ApprovedVia.LINK
            note = _zh(_("客户已通过短信链接确认报价 %(quote)s（应收 %(due)s 元）。"), quote=q.number,
                       due=yuan(q.chargeable))
        else:
            q.status, q.reject_reason = QuoteStatus.REJECTED, reason
            note = _zh(_("客户已拒绝报价 %(quote)s。"), quote=q.number) + (f" {reason}" if reason else "")
        q.save(update_fields=["decided_at", "status", "approved_via", "reject_reason"])
        _event(o, actor=None, action="quote_approved" if approve else "quote_rejected", now=now, note=note,
               data={"quote": q.pk, "number": q.number, "via": ApprovedVia.LINK, "chargeable": str(q.chargeable)})
        audit_record(actor=None, action="quote.approve" if approve else "quote.reject", obj=q, before=before,
                     after=snapshot(q, _QUOTE_FIELDS), node_id=q.node_id)
        _tell_technician(o, q, "quote_approved" if approve else "quote_rejected")
        return q


def _check_png(errs: ErrorCollector, data) -> None:
    if not isinstance(data, bytes | bytearray) or not data:
        errs.add("signature", _("请先签名。"))
        return
    if len(data) > SIGNATURE_MAX_BYTES:
        errs.add("signature", _("签名图片不能超过 2 MB。"))
        return
    if not bytes(data[:8]) == PNG_MAGIC:
        errs.add("signature", _("签名图片无效（须为 PNG）。"))
        return
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(BytesIO(bytes(data))) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        errs.add("signature", _("签名图片无效（须为 PNG）。"))


def quote_sign(*, user, quote_id: int, signature_png_bytes: bytes, now: dt.datetime | None = None) -> Quote:
    """The customer approves the quote by signing on the technician's phone (a PNG), the
    technician (or a ``charge.handle`` holder at the counter) witnessing."""
    now = now or timezone.now()
    errs = ErrorCollector()
    _check_png(errs, signature_png_bytes)
    with transaction.atomic():
        o, q = _lock_quote(user, quote_id)
        _need(may_quote(user, o))
        _quotable(o)
        if q.status not in (QuoteStatus.DRAFT, QuoteStatus.SENT):
            raise Conflict(_("报价 %(quote)s 状态为「%(status)s」，不能再签名确认。") % {
                "quote": q.number, "status": q.get_status_display()}, code="quote_not_open")
        errs.raise_if_any()
        before = snapshot(q, _QUOTE_FIELDS)
        q.signature.save(f"{q.number}-{secrets.token_hex(4)}.png", ContentFile(bytes(signature_png_bytes)),
                         save=False)
        q.status, q.approved_via, q.decided_at, q.signed_by = QuoteStatus.APPROVED, ApprovedVia.SIGNATURE, now, user
        q.save(update_fields=["signature", "status", "approved_via", "decided_at", "signed_by"])
        _event(o, actor=user, action="quote_approved", now=now,
               note=_zh(_("客户已现场签名确认报价 %(quote)s（应收 %(due)s 元）。"), quote=q.number,
                        due=yuan(q.chargeable)),
               data={"quote": q.pk, "number": q.number, "via": ApprovedVia.SIGNATURE, "chargeable": str(q.chargeable)})
        audit_record(actor=user, action="quote.approve", obj=q, before=before, after=snapshot(q, _QUOTE_FIELDS),
                     node_id=q.node_id)
        return q


# ================================================================ the rule: quote before repair

def current_quote(order_id: int) -> Quote | None:
    """The order's latest quote that was not superseded (rejected ones included)."""
    return Quote.objects.filter(order_id=order_id).exclude(status=QuoteStatus.SUPERSEDED).order_by("-seq").first()


@dataclass(frozen=True)
class Gate:
    """Whether the order may be repaired now as far as charges go."""

    chargeable: bool
    quote: Quote | None
    problem: str | None  # why not (a Chinese sentence naming the quote's state), None: go ahead

    @property
    def ok(self) -> bool:
        return self.problem is None


def repair_gate(order: WorkOrder) -> Gate:
    """The rule (R-WAR-2): a chargeable order — out of 三包 (``warranty_free is False``) or with a
    chargeable part asked for and not released — needs an approved quote that is not superseded
    and still covers it: a chargeable part asked for after the approval (not on the quote as a
    chargeable line), or an order found chargeable after a quote priced as free, makes the quote
    stale and a new quote must be approved. A free order needs none. Two or three queries."""
    reqs = list(open_requests(order.pk).values_list("id", "free", "part__name"))
    chargeable = order.warranty_free is False or any(free is False for _i, free, _n in reqs)
    if not chargeable:
        return Gate(False, None, None)
    q = current_quote(order.pk)
    params = {"number": order.number}
    with translation.override("zh-hans"):
        if q is None:
            return Gate(True, None, _zh(_(
                "工单 %(number)s 为收费维修，须先向客户报价并经客户确认（现场签名或短信链接）后才能开始维修：当前还没有报价。"),
                **params))
        params.update(quote=q.number, status=q.get_status_display())
        if q.status != QuoteStatus.APPROVED:
            hint = {QuoteStatus.DRAFT: _("请发送客户确认或请客户现场签名"),
                    QuoteStatus.SENT: _("请等待客户通过短信链接确认，或请客户现场签名"),
                    QuoteStatus.REJECTED: _("客户已拒绝，如需维修请重新报价")}.get(q.status, "")
            return Gate(True, q, _zh(_(
                "工单 %(number)s 为收费维修，须经客户确认报价后才能开始维修：报价 %(quote)s 当前状态为「%(status)s」（%(hint)s）。"),
                hint=str(hint), **params))
        quoted = set(q.lines.filter(kind=LineKind.PART, free=False).values_list("part_request_id", flat=True))
        missing = [name for i, free, name in reqs if free is False and i not in quoted]
        if missing:
            return Gate(True, q, _zh(_(
                "报价 %(quote)s 已经客户确认，但此后又申请了收费配件（%(parts)s），报价已过期：须重新报价并经客户确认后才能维修。"),
                parts="、".join(missing), **params))
        if order.warranty_free is False and q.warranty_free is not False:
            return Gate(True, q, _zh(_(
                "报价 %(quote)s 按三包免费计价，但工单 %(number)s 现判定为收费维修，报价已过期：须重新报价并经客户确认。"),
                **params))
    return Gate(True, q, None)


# ================================================================ payments and refunds

def next_receipt_no(day: dt.date) -> str:
    """``SJ`` + YYYYMMDD + six digits, one sequence per day (``core.sequences``)."""
    return f"SJ{day:%Y%m%d}{next_in_day(ReceiptSequence, day):06d}"


_PAYMENT_FIELDS = ("order_id", "quote_id", "receipt_no", "amount", "refunded", "method", "reference",
                   "received_by_id", "received_at")


def approved_quote(order_id: int) -> Quote | None:
    return Quote.objects.filter(order_id=order_id, status=QuoteStatus.APPROVED).order_by("-seq").first()


def payment_record(*, user, order_id: int, amount, method: str, reference: str = "",
                   now: dt.datetime | None = None) -> Payment:
    """A payment of the order (cash, WeChat Pay, Alipay, bank card or transfer) with its receipt
    number, by the technician or a ``charge.handle`` holder; linked to the approved quote if
    any. 404 out of sight, 403 not allowed, 409 a cancelled order, 400 naming each bad field."""
    now = now or timezone.now()
    errs = ErrorCollector()
    value = _money(errs, "amount", amount)
    if method not in PaymentMethod.values:
        errs.add("method", _("请选择支付方式：%(choices)s。") % {
            "choices": "、".join(str(label) for label in PaymentMethod.labels)})
    reference = _text(errs, "reference", reference, REFERENCE_MAX)
    with transaction.atomic():
        o = _lock_visible(user, order_id)
        _need(may_quote(user, o))
        if o.status == Status.CANCELLED:
            raise Conflict(_("工单 %(number)s 已取消，不能收款。") % {"number": o.number}, code="order_cancelled")
        errs.raise_if_any()
        q = approved_quote(o.pk)
        p = Payment.objects.create(order=o, node_id=o.node_id, quote=q, receipt_no=next_receipt_no(
            timezone.localdate(now)), amount=value, method=method, reference=reference, received_by=user,
            received_at=now)
        _event(o, actor=user, action="payment", now=now,
               note=_zh(_("收款 %(amount)s 元（%(method)s），收据号 %(receipt)s。"), amount=yuan(value),
                        method=p.get_method_display(), receipt=p.receipt_no),
               data={"payment": p.pk, "receipt": p.receipt_no, "amount": str(value), "method": method})
        audit_record(actor=user, action="payment.record", obj=p, before=None, after=snapshot(p, _PAYMENT_FIELDS),
                     node_id=p.node_id)
        service_cost_refresh(o, now=now)
        return p


def refund_record(*, user, payment_id: int, amount, reason: str, now: dt.datetime | None = None) -> Refund:
    """A refund of (part of) a payment, by a ``charge.handle`` holder. The payment's row is
    locked, so refunds never add up to more than was paid, also when two are made at once:
    400 on ``amount`` naming what is left to refund."""
    now = now or timezone.now()
    errs = ErrorCollector()
    value = _money(errs, "amount", amount)
    reason = _text(errs, "reason", reason, REASON_MAX, required=True, missing=_("请填写退款原因。"))
    if not _is_id(payment_id):
        raise NotFound()
    order_id = Payment.objects.filter(pk=payment_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise NotFound()
    with transaction.atomic():
        o = _lock_visible(user, order_id)
        _need(may_refund(user, o), _("只有具备收费权限的人员可以退款。"))
        p = Payment.objects.select_for_update().get(pk=payment_id)
        left = p.amount - p.refunded
        if value is not None and value > left:
            errs.add("amount", _("退款金额不能超过可退金额 %(left)s 元（已收 %(paid)s 元，已退 %(refunded)s 元）。") % {
                "left": yuan(left), "paid": yuan(p.amount), "refunded": yuan(p.refunded)})
        errs.raise_if_any()
        before = snapshot(p, _PAYMENT_FIELDS)
        r = Refund.objects.create(payment=p, amount=value, reason=reason, refunded_by=user, refunded_at=now)
        p.refunded = p.refunded + value
        p.save(update_fields=["refunded"])
        _event(o, actor=user, action="refund", now=now,
               note=_zh(_("退款 %(amount)s 元（收据号 %(receipt)s）：%(reason)s"), amount=yuan(value),
                        receipt=p.receipt_no, reason=reason),
               data={"payment": p.pk, "refund": r.pk, "amount": str(value)})
        audit_record(actor=user, action="payment.refund", obj=p, before=before, after=snapshot(p, _PAYMENT_FIELDS),
                     node_id=p.node_id)
        audit_record(actor=user, action="refund.record", obj=r, before=None, after=snapshot(r), node_id=p.node_id)
        service_cost_refresh(o, now=now)
        return r


# ================================================================ the service cost

def loan_cost(order_id: int, now: dt.datetime) -> tuple[Decimal, int]:
    """The loaner part of the service cost and the days lent (``assets`` keeps the rule)."""
    from aftersales.assets.selectors import order_loan_usage

    return order_loan_usage(order_id, until=now)


@dataclass
class CostBreakdown:
    parts: Decimal
    labour: Decimal
    travel: Decimal
    loaner: Decimal
    visits: int
    loan_days: int

    @property
    def total(self) -> Decimal:
        return self.parts + self.labour + self.travel + self.loaner


_LINE_COST = ExpressionWrapper(F("qty") * F("unit_cost"), output_field=DecimalField(max_digits=14, decimal_places=2))


def service_cost_compute(order: WorkOrder, *, now: dt.datetime | None = None) -> CostBreakdown:
    """Parts at cost (the consumed part requests × their cost), labour (the approved quote's
    labour lines × their internal cost rate; without one, ``LABOUR_COST_PER_VISIT`` × visits),
    travel (visits × ``TRAVEL_COST_PER_VISIT``) and the loaner (days lent × daily cost)."""
    now = now or timezone.now()
    parts = PartRequest.objects.filter(order_id=order.pk, status=RequestStatus.CONSUMED).aggregate(
        s=Sum(_LINE_COST))["s"] or Decimal(0)
    visits = order.visit_count
    q = approved_quote(order.pk)
    if q is not None:
        labour = q.lines.filter(kind=LineKind.LABOUR).aggregate(s=Sum(_LINE_COST))["s"] or Decimal(0)
    else:
        labour = Decimal(str(setting("LABOUR_COST_PER_VISIT", 40))) * visits
    travel = Decimal(str(setting("TRAVEL_COST_PER_VISIT", 30))) * visits
    loaner, days = loan_cost(order.pk, now)
    return CostBreakdown(parts=Decimal(parts).quantize(CENT), labour=Decimal(labour).quantize(CENT),
                         travel=travel.quantize(CENT), loaner=loaner, visits=visits, loan_days=days)


def service_cost_refresh(order: WorkOrder | int, *, now: dt.datetime | None = None) -> ServiceCost | None:
    """Recompute and keep the order's service cost (the system, in the caller's transaction).
    Only orders that were completed or closed (not cancelled) have one; None for the others."""
    now = now or timezone.now()
    if not isinstance(order, WorkOrder):
        order = WorkOrder.objects.filter(pk=order).first()
        if order is None:
            return None
    done = order.completed_at or (order.closed_at if order.status == Status.CLOSED else None)
    if done is None:  # open, or cancelled without completion
        return None
    c = service_cost_compute(order, now=now)
    month = timezone.localdate(done).replace(day=1)
    sc, _created = ServiceCost.objects.update_or_create(order_id=order.pk, defaults=dict(
        node_id=order.node_id, month=month, parts=c.parts, labour=c.labour, travel=c.travel, loaner=c.loaner,
        total=c.total, visits=c.visits, loan_days=c.loan_days, computed_at=now))
    return sc
