"""Writes of work orders. One function per use case, one transaction each, each writing its
event and audit entry. Status changes go through ``workflow.move`` and nowhere else."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import Conflict, ErrorCollector, NotFound, PermissionDenied, ValidationFailed
from aftersales.core.files import IMAGES, extension, sniff
from aftersales.core.sequences import next_in_day
from aftersales.customers.models import Address, Customer
from aftersales.customers.selectors import unit_list_qs
from aftersales.customers.services import outlet_for_district
from aftersales.customers.warranty import unit_warranty
from aftersales.org.roles import Perm
from aftersales.org.scope import holds_at, principal
from aftersales.records.audit import audit_record, snapshot

from . import classify, sla, workflow
from .models import Channel, DailySequence, OrderEvent, OrderPhoto, OrderType, Priority, Status, WorkOrder

PROBLEM_MAX = 2000
NOTE_MAX = 2000
PHOTO_MAX_BYTES = 8 * 1024 * 1024
PHOTOS_PER_ORDER = 30
PHOTO_TYPES = {"image/jpeg", "image/png", "image/webp"}
CODE_TTL = dt.timedelta(minutes=15)
CODE_RESEND_AFTER = dt.timedelta(seconds=60)
CODE_ATTEMPTS = 5
WISH_PAST_GRACE = dt.timedelta(minutes=5)
WISH_MAX_AHEAD = dt.timedelta(days=90)
WISH_MAX_SPAN = dt.timedelta(days=14)
CUSTOMER_CHANNELS = frozenset({Channel.WEB, Channel.APP})
# Where the customer's confirmation can be taken: the technician is there, or has just finished.
CONFIRMABLE = frozenset({Status.ON_SITE, Status.DIAGNOSING, Status.REPAIRING, Status.COMPLETED})


def next_number(day: dt.date) -> str:
    """``GD`` + YYYYMMDD + six digits, one sequence per day (``core.sequences``)."""
    return f"GD{day:%Y%m%d}{next_in_day(DailySequence, day):06d}"


def _create_node(customer: Customer, address: Address | None):
    """The outlet that covers the service address's district, else the customer's outlet."""
    if address is not None:
        node = outlet_for_district(address.province, address.city, address.district)
        if node is not None and node.active:
            return node
    return customer.node


def _check_choice(errs: ErrorCollector, field: str, value, choices, missing, invalid) -> None:
    if not value:
        errs.add(field, missing)
    elif value not in choices:
        errs.add(field, invalid)


def _is_id(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v < 2**63


def _aware(v: dt.datetime | None) -> dt.datetime | None:
    """A time without a zone is local time (the user's wall clock)."""
    if isinstance(v, dt.datetime) and timezone.is_naive(v):
        return timezone.make_aware(v)
    return v


def _check_wish(errs: ErrorCollector, wish_from, wish_to, now: dt.datetime) -> None:
    if wish_from is None and wish_to is None:
        return
    bad = [k for k, v in (("wish_from", wish_from), ("wish_to", wish_to))
           if v is not None and not isinstance(v, dt.datetime)]
    for k in bad:
        errs.add(k, _("日期时间格式不正确。"))
    if bad:
        return
    if wish_from is None or wish_to is None:
        errs.add("wish_to" if wish_to is None else "wish_from", _("期望上门时间须填写开始和结束。"))
        return
    if wish_from < now - WISH_PAST_GRACE:
        errs.add("wish_from", _("期望上门时间不能早于现在。"))
    elif wish_from > now + WISH_MAX_AHEAD:
        errs.add("wish_from", _("期望上门时间不能晚于 90 天以后。"))
    if wish_to <= wish_from:
        errs.add("wish_to", _("期望上门结束时间须晚于开始时间。"))
    elif wish_to - wish_from > WISH_MAX_SPAN:
        errs.add("wish_to", _("期望上门时间段不能超过 14 天。"))


def order_create(*, user, customer_id: int, type: str, channel: str, problem: str, unit_id: int | None = None,
                 address_id: int | None = None, priority: str = Priority.NORMAL, fault_category: str | None = None,
                 wish_from: dt.datetime | None = None, wish_to: dt.datetime | None = None,
                 parent_id: int | None = None, now: dt.datetime | None = None) -> WorkOrder:
    """Record a request (R-REQ-1). The user becomes its owner (首问负责制, R-REQ-3) unless the
    customer files it themselves (then the first agent to classify it does). ``user=None`` is
    the system (a follow-up opened by a survey): the parent order's owner owns it.

    Every bad field is reported at once; nothing is written unless all are good."""
    now = now or timezone.now()
    wish_from, wish_to = _aware(wish_from), _aware(wish_to)
    errs = ErrorCollector()
    p = principal(user)
    is_customer = user is not None and p.customer_id is not None and not p.can(Perm.ORDER_CREATE)
    if user is not None and not is_customer and not p.can(Perm.ORDER_CREATE):
        raise PermissionDenied()

    customer = Customer.objects.select_related("node").filter(pk=customer_id).first() if _is_id(customer_id) else None
    if customer is not None and user is not None and not (
            (is_customer and p.customer_id == customer.pk) or holds_at(user, Perm.ORDER_CREATE, customer.node_id)):
        customer = None
    if customer is None:
        errs.add("customer_id", _("未找到该客户，或您无权为其受理工单。"))

    _check_choice(errs, "type", type, OrderType.values, _("请选择工单类型。"), _("无效的工单类型。"))
    _check_choice(errs, "channel", channel, Channel.values, _("请选择受理渠道。"), _("无效的受理渠道。"))
    _check_choice(errs, "priority", priority, Priority.values, _("请选择优先级。"), _("无效的优先级。"))
    if is_customer and channel in Channel.values and channel not in CUSTOMER_CHANNELS:
        errs.add("channel", _("客户自助报修的渠道只能是网站或手机应用。"))
    if is_customer and priority in Priority.values and priority != Priority.NORMAL:
        errs.add("priority", _("优先级由客服确定。"))
    problem = (problem or "").strip()
    if not problem:
        errs.add("problem", _("请填写问题描述。"))
    elif len(problem) > PROBLEM_MAX:
        errs.add("problem", _("问题描述不能超过 %(n)s 个字符。") % {"n": PROBLEM_MAX})

    unit = None
    if unit_id is not None:
        unit = unit_list_qs().filter(pk=unit_id).first() if _is_id(unit_id) else None
        if unit is None or (customer is not None and unit.customer_id != customer.pk):
            errs.add("unit_id", _("未找到该产品，或它不属于此客户。"))
            unit = None
    elif type in workflow.UNIT_TYPES:
        errs.add("unit_id", _("此类工单须选择客户的产品。"))

    address = None
    if customer is not None:
        if address_id is not None:
            address = Address.objects.filter(pk=address_id, customer_id=customer.pk).first() if _is_id(
                address_id) else None
            if address is None:
                errs.add("address_id", _("未找到该地址，或它不属于此客户。"))
        elif unit is not None and unit.address_id:
            address = unit.address
        else:
            address = Address.objects.filter(customer_id=customer.pk, is_default=True).first()

    fc = classify.fault_category(fault_category) if fault_category else None
    if fault_category and fc is None:
        errs.add("fault_category", _("未知的故障类别。"))
    elif fc is not None and unit is not None and fc.categories and unit.model.category.code not in fc.categories:
        errs.add("fault_category", _("该故障类别不适用于此产品类别。"))
    _check_wish(errs, wish_from, wish_to, now)

    parent = None
    if parent_id is not None:
        parent = WorkOrder.objects.filter(pk=parent_id).first() if _is_id(parent_id) else None
        if parent is None or (customer is not None and parent.customer_id != customer.pk):
            errs.add("parent_id", _("未找到关联工单，或它不属于此客户。"))
            parent = None
    errs.raise_if_any()

    owner = None if is_customer else (user if user is not None else (parent.owner if parent else None))
    o = WorkOrder(
        type=type, channel=channel, priority=priority, status=Status.RECEIVED, customer=customer, unit=unit,
        address=address, problem=problem, fault_category_id=fc.id if fc else None, wish_from=wish_from,
        wish_to=wish_to, node=_create_node(customer, address), owner=owner, parent=parent, created_at=now,
        updated_at=now, event_count=1,
    )
    if unit is not None:
        try:
            d = unit_warranty(unit, on=timezone.localdate(now), fault_key=fc.code if fc else None)
            o.warranty_kind, o.warranty_free = str(d.kind), d.free
        except ValidationFailed:  # purchased after today: nothing to decide yet
            pass
    sla.on_create(o, now)
    o.number = next_number(timezone.localdate(now))
    with transaction.atomic():
        o.save(force_insert=True)
        OrderEvent.objects.create(
            order=o, seq=1, at=now, actor=user, actor_label=user.get_username() if user is not None else "system",
            action="create", from_status="", to_status=Status.RECEIVED, note=problem,
            data={"channel": channel, "type": type, "priority": priority, "owner": owner.pk if owner else None})
        audit_record(actor=user, action="order.create", obj=o, before=None, after=snapshot(o), node_id=o.node_id)
        return o


def order_move(*, user, order_id: int, move: str, note: str = "", **data) -> WorkOrder:
    """Any move of the workflow table by a user (the API's and the pages' one entry point)."""
    return workflow.move(order_id, move, user=user, note=note, **data)


def _order_for_work(user, order_id: int) -> WorkOrder:
    """The order locked, for its technician or a handler at its node (404 out of scope)."""
    o = workflow.lock_order(order_id)
    if not workflow.can_see(user, o):
        raise NotFound()
    if not (workflow.is_assignee(user, o) or holds_at(user, Perm.ORDER_HANDLE, o.node_id)):
        raise PermissionDenied(_("只有此工单的技师或处理人可以操作。"))
    return o


def order_note(*, user, order_id: int, note: str) -> WorkOrder:
    """Add an internal note to the history (progress told to the customer, a call, an
    observation). Staff who see the order may; the customer does not see notes."""
    note = (note or "").strip()
    if not note:
        raise ValidationFailed({"note": [_("请填写内容。")]})
    if len(note) > NOTE_MAX:
        raise ValidationFailed({"note": [_("不能超过 %(n)s 个字符。") % {"n": NOTE_MAX}]})
    with transaction.atomic():
        o = workflow.lock_order(order_id)
        if not workflow.can_see(user, o):
            raise NotFound()
        if workflow.is_customer_of(user, o):
            raise PermissionDenied(_("客户不能添加内部备注。"))
        now = timezone.now()
        workflow.event_append(o, actor=user, action="note", at=now, from_status=o.status, to_status=o.status,
                              note=note)
        o.updated_at = now
        o.save(update_fields=["event_count", "updated_at"])
        audit_record(actor=user, action="order.note", obj=o, before=None, after={"note": note}, node_id=o.node_id)
        return o


def _image_type(upload) -> str | None:
    return sniff(upload, IMAGES)


def _check_image(errs: ErrorCollector, field: str, upload) -> None:
    if upload is None:
        errs.add(field, _("请选择图片。"))
        return
    size = getattr(upload, "size", 0) or 0
    if size == 0:
        errs.add(field, _("图片是空文件。"))
    elif size > PHOTO_MAX_BYTES:
        errs.add(field, _("图片不能超过 8 MB。"))
    elif _image_type(upload) is None:
        errs.add(field, _("只接受 JPEG、PNG 或 WebP 图片。"))


def order_photo_add(*, user, order_id: int, upload, caption: str = "") -> OrderPhoto:
    """A photo of the site or the unit, by the technician or a handler, while the order is open."""
    errs = ErrorCollector()
    _check_image(errs, "image", upload)
    caption = (caption or "").strip()
    if len(caption) > 100:
        errs.add("caption", _("不能超过 100 个字符。"))
    errs.raise_if_any()
    with transaction.atomic():
        o = _order_for_work(user, order_id)
        if not o.is_open:
            raise Conflict(_("工单已结束，不能再添加照片。"), code="order_closed")
        if OrderPhoto.objects.filter(order=o).count() >= PHOTOS_PER_ORDER:
            raise ValidationFailed({"image": [_("每张工单最多 %(n)s 张照片。") % {"n": PHOTOS_PER_ORDER}]})
        now = timezone.now()
        ph = OrderPhoto(order=o, caption=caption, uploaded_by=user, uploaded_at=now)
        ext = extension(_image_type(upload))
        ph.image.save(f"{o.number}-{secrets.token_hex(4)}.{ext}", upload, save=False)
        ph.save()
        workflow.event_append(o, actor=user, action="photo", at=now, from_status=o.status, to_status=o.status,
                              note=ph.caption, data={"photo": ph.pk})
        o.updated_at = now
        o.save(update_fields=["event_count", "updated_at"])
        audit_record(actor=user, action="order.photo", obj=o, before=None,
                     after={"photo": ph.pk, "file": ph.image.name}, node_id=o.node_id)
        return ph


def _code_hash(order: WorkOrder, code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{order.pk}:{code}".encode(), hashlib.sha256).hexdigest()


def confirmation_code_send(*, user, order_id: int) -> str:
    """Send the customer a six-digit code; they read it to the technician, who enters it to
    confirm the work (R-REQ-5). Returns the code for the caller's tests only: the API never
    shows it. Once a minute at most."""
    from aftersales.notifications.services import notify_customer

    with transaction.atomic():
        o = _order_for_work(user, order_id)
        if o.status not in CONFIRMABLE:
            raise Conflict(_("到达现场后才能发送确认码。"), code="not_on_site")
        now = timezone.now()
        if o.confirm_code_expires is not None and o.confirm_code_expires - CODE_TTL + CODE_RESEND_AFTER > now:
            raise Conflict(_("确认码刚刚发送过，请稍后再试。"), code="too_soon")
        code = f"{secrets.randbelow(10**6):06d}"
        o.confirm_code_hash, o.confirm_code_expires = _code_hash(o, code), now + CODE_TTL
        workflow.event_append(o, actor=user, action="code_sent", at=now, from_status=o.status, to_status=o.status)
        o.updated_at = now
        o.save(update_fields=["confirm_code_hash", "confirm_code_expires", "event_count", "updated_at"])
        audit_record(actor=user, action="order.code_sent", obj=o, before=None,
                     after={"expires": o.confirm_code_expires}, node_id=o.node_id)
        notify_customer(o.customer, event="confirm_code", ref=o.number, ref_id=o.pk,
                        context={"number": o.number, "code": code, "minutes": int(CODE_TTL.total_seconds() // 60)})
        return code


def _failed_attempts(o: WorkOrder) -> int:
    """Wrong codes entered since the last code was sent."""
    actions = list(OrderEvent.objects.filter(order=o, action__in=("code_sent", "confirm_failed"))
                   .order_by("-seq").values_list("action", flat=True)[:CODE_ATTEMPTS + 1])
    n = 0
    for a in actions:
        if a == "code_sent":
            break
        n += 1
    return n


def order_confirm(*, user, order_id: int, code: str | None = None, signature=None) -> WorkOrder:
    """The customer confirms the work: by the code sent to their phone, or by a signature.
    A wrong code is recorded; after five the code is void and must be sent again."""
    wrong = None
    with transaction.atomic():
        o = _order_for_work(user, order_id)
        if o.status not in CONFIRMABLE:
            raise Conflict(_("到达现场后才能确认。"), code="not_on_site")
        if o.confirmed_at is not None:
            raise Conflict(_("客户已确认过此工单。"), code="already_confirmed")
        now = timezone.now()
        code = (code or "").strip()
        if code:
            if not o.confirm_code_hash:
                raise ValidationFailed({"code": [_("请先发送确认码。")]})
            if o.confirm_code_expires is None or o.confirm_code_expires < now:
                raise ValidationFailed({"code": [_("确认码已过期，请重新发送。")]})
            if not hmac.compare_digest(o.confirm_code_hash, _code_hash(o, code)):
                failed = _failed_attempts(o) + 1
                workflow.event_append(o, actor=user, action="confirm_failed", at=now, from_status=o.status,
                                      to_status=o.status, data={"attempt": failed})
                fields = ["event_count"]
                if failed >= CODE_ATTEMPTS:
                    o.confirm_code_hash, o.confirm_code_expires = "", None
                    fields += ["confirm_code_hash", "confirm_code_expires"]
                    wrong = _("确认码错误次数过多，请重新发送。")
                else:
                    wrong = _("确认码不正确。")
                o.save(update_fields=fields)
                audit_record(actor=user, action="order.confirm_failed", obj=o, before=None,
                             after={"attempt": failed}, node_id=o.node_id)
            else:
                o.confirmed_by = "code"
                o.confirm_code_hash, o.confirm_code_expires = "", None
        elif signature is not None:
            errs = ErrorCollector()
            _check_image(errs, "signature", signature)
            errs.raise_if_any()
            o.signature.save(f"{o.number}-{secrets.token_hex(4)}.png", signature, save=False)
            o.confirmed_by = "signature"
        else:
            raise ValidationFailed({"code": [_("请输入确认码或由客户签名。")]})
        if wrong is None:
            o.confirmed_at = now
            o.updated_at = now
            workflow.event_append(o, actor=user, action="confirm", at=now, from_status=o.status, to_status=o.status,
                                  data={"by": o.confirmed_by})
            o.save(update_fields=["confirmed_by", "confirmed_at", "confirm_code_hash", "confirm_code_expires",
                                  "signature", "event_count", "updated_at"])
            audit_record(actor=user, action="order.confirm", obj=o, before=None,
                         after={"by": o.confirmed_by, "at": now}, node_id=o.node_id)
    if wrong is not None:  # the failed attempt stays recorded
        raise ValidationFailed({"code": [wrong]})
    return o
