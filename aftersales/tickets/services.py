"""Writes of work orders. One function per use case, one transaction each, each writing its
event and audit entry. Status changes go through ``workflow.move`` and nowhere else."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import ErrorCollector, NotFound, PermissionDenied, ValidationFailed
from aftersales.customers.models import Address, Customer, Unit
from aftersales.customers.services import outlet_for_district
from aftersales.customers.warranty import unit_warranty
from aftersales.org.roles import Perm
from aftersales.org.scope import holds_at, principal
from aftersales.records.audit import audit_record, snapshot

from . import sla, workflow
from .models import Channel, DailySequence, FaultCategory, OrderPhoto, OrderType, Priority, Status, WorkOrder

PROBLEM_MAX = 2000
PHOTO_MAX_BYTES = 8 * 1024 * 1024
PHOTO_TYPES = {"image/jpeg", "image/png", "image/webp"}
CODE_TTL = dt.timedelta(minutes=15)


def next_number(day: dt.date) -> str:
    """``GD`` + YYYYMMDD + six digits, one sequence per day, without gaps under concurrency:
    one upsert that increments and returns the day's counter (row-locked by the database)."""
    table = DailySequence._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} (day, last) VALUES (%s, 1) "
            f"ON CONFLICT (day) DO UPDATE SET last = {table}.last + 1 RETURNING last",
            [day],
        )
        n = cur.fetchone()[0]
    return f"GD{day:%Y%m%d}{n:06d}"


def _create_node(errs: ErrorCollector, customer: Customer, address: Address | None):
    """The outlet that covers the service address's district, else the customer's outlet."""
    if address is not None:
        node = outlet_for_district(address.province, address.city, address.district)
        if node is not None:
            return node
    return customer.node


def order_create(*, user, customer_id: int, type: str, channel: str, problem: str, unit_id: int | None = None,
                 address_id: int | None = None, priority: str = Priority.NORMAL, fault_category: str | None = None,
                 wish_from: dt.datetime | None = None, wish_to: dt.datetime | None = None,
                 parent_id: int | None = None, now: dt.datetime | None = None) -> WorkOrder:
    """Record a request (R-REQ-1). The user becomes its owner (首问负责制, R-REQ-3) unless the
    customer files it themselves; then the first agent to classify it does."""
    now = now or timezone.now()
    errs = ErrorCollector()
    p = principal(user)
    is_customer = p.customer_id is not None and not p.can(Perm.ORDER_CREATE)
    customer = Customer.objects.select_related("node").filter(pk=customer_id).first()
    if customer is None or not (
        (is_customer and p.customer_id == customer.pk) or holds_at(user, Perm.ORDER_CREATE, customer.node_id)
    ):
        if not is_customer and not p.can(Perm.ORDER_CREATE):
            raise PermissionDenied()
        errs.add("customer_id", _("未找到该客户，或您无权为其受理工单。"))
        errs.raise_if_any()
    if type not in OrderType.values:
        errs.add("type", _("无效的工单类型。"))
    if channel not in Channel.values:
        errs.add("channel", _("无效的受理渠道。"))
    if priority not in Priority.values:
        errs.add("priority", _("无效的优先级。"))
    if is_customer and channel not in (Channel.WEB, Channel.APP):
        errs.add("channel", _("客户自助报修的渠道只能是网站或手机应用。"))
    problem = (problem or "").strip()
    if not problem:
        errs.add("problem", _("请填写问题描述。"))
    elif len(problem) > PROBLEM_MAX:
        errs.add("problem", _("问题描述不能超过 %(n)s 个字符。") % {"n": PROBLEM_MAX})
    unit = None
    if unit_id is not None:
        unit = Unit.objects.select_related("model__category").prefetch_related("model__main_parts", "repairs") \
            .filter(pk=unit_id).first()
        if unit is None or unit.customer_id != customer.pk:
            errs.add("unit_id", _("未找到该产品，或它不属于此客户。"))
            unit = None
    elif type in (OrderType.REPAIR, OrderType.MAINTENANCE, OrderType.RETURN_EXCHANGE, OrderType.INSTALLATION):
        errs.add("unit_id", _("此类工单须选择客户的产品。"))
    address = None
    if address_id is not None:
        address = Address.objects.filter(pk=address_id, customer_id=customer.pk).first()
        if address is None:
            errs.add("address_id", _("未找到该地址，或它不属于此客户。"))
    else:
        address = (unit.address if unit and unit.address_id else
                   Address.objects.filter(customer_id=customer.pk, is_default=True).first())
    fc = None
    if fault_category:
        fc = FaultCategory.objects.filter(code=fault_category).first()
        if fc is None:
            errs.add("fault_category", _("未知的故障类别。"))
    if wish_from is not None or wish_to is not None:
        if wish_from is None or wish_to is None:
            errs.add("wish_to" if wish_to is None else "wish_from", _("期望上门时间须填写开始和结束。"))
        else:
            if wish_from < now - dt.timedelta(minutes=5):
                errs.add("wish_from", _("期望上门时间不能早于现在。"))
            if wish_to <= wish_from:
                errs.add("wish_to", _("期望上门结束时间须晚于开始时间。"))
            elif wish_to - wish_from > dt.timedelta(days=14):
                errs.add("wish_to", _("期望上门时间段不能超过 14 天。"))
    parent = None
    if parent_id is not None:
        parent = WorkOrder.objects.filter(pk=parent_id, customer_id=customer.pk).first()
        if parent is None:
            errs.add("parent_id", _("未找到关联工单。"))
    errs.raise_if_any()

    with transaction.atomic():
        o = WorkOrder(
            number=next_number(timezone.localdate(now)), type=type, channel=channel, priority=priority,
            status=Status.RECEIVED, customer=customer, unit=unit, address=address, problem=problem,
            fault_category=fc, wish_from=wish_from, wish_to=wish_to, node=_create_node(errs, customer, address),
            owner=None if is_customer else user, parent=parent, created_at=now, updated_at=now,
        )
        if unit is not None:
            d = unit_warranty(unit, on=timezone.localdate(now), fault_key=fc.code if fc else None)
            o.warranty_kind, o.warranty_free = str(d.kind), d.free
        sla.on_create(o, now)
        o.save(force_insert=True)
        workflow.event_append(o, actor=user, action="create", at=now, to_status=Status.RECEIVED,
                              note=problem[:200], data={"channel": channel, "type": type, "priority": priority})
        WorkOrder.objects.filter(pk=o.pk).update(event_count=o.event_count)
        audit_record(actor=user, action="order.create", obj=o, before=None, after=snapshot(o), node_id=o.node_id)
        return o


def order_move(*, user, order_id: int, move: str, note: str = "", **data) -> WorkOrder:
    """Any move of the workflow table by a user (the API's and the pages' one entry point)."""
    return workflow.move(order_id, move, user=user, note=note, **data)


def _order_for_work(user, order_id: int) -> WorkOrder:
    o = workflow.lock_order(order_id)
    if not workflow.can_see(user, o):
        raise NotFound()
    is_assignee = o.assignee_id is not None and o.assignee.user_id == user.pk
    if not (is_assignee or holds_at(user, Perm.ORDER_HANDLE, o.node_id)):
        raise PermissionDenied(_("只有此工单的技师或处理人可以操作。"))
    return o


def order_note(*, user, order_id: int, note: str) -> WorkOrder:
    """Add a note to the history (progress told to the customer, a call, an observation)."""
    note = (note or "").strip()
    if not note:
        raise ValidationFailed({"note": [_("请填写内容。")]})
    if len(note) > 2000:
        raise ValidationFailed({"note": [_("不能超过 2000 个字符。")]})
    with transaction.atomic():
        o = workflow.lock_order(order_id)
        if not workflow.can_see(user, o) or principal(user).customer_id == o.customer_id:
            raise NotFound()
        now = timezone.now()
        workflow.event_append(o, actor=user, action="note", at=now, from_status=o.status, to_status=o.status,
                              note=note)
        o.updated_at = now
        o.save(update_fields=["event_count", "updated_at"])
        audit_record(actor=user, action="order.note", obj=o, before=None, after={"note": note}, node_id=o.node_id)
        return o


def order_photo_add(*, user, order_id: int, upload, caption: str = "") -> OrderPhoto:
    errs = ErrorCollector()
    if upload is None:
        errs.add("image", _("请选择照片。"))
    else:
        if getattr(upload, "content_type", "") not in PHOTO_TYPES:
            errs.add("image", _("只接受 JPEG、PNG 或 WebP 图片。"))
        if upload.size > PHOTO_MAX_BYTES:
            errs.add("image", _("照片不能超过 8 MB。"))
    if len(caption or "") > 100:
        errs.add("caption", _("不能超过 100 个字符。"))
    errs.raise_if_any()
    with transaction.atomic():
        o = _order_for_work(user, order_id)
        if not o.is_open:
            raise ValidationFailed({"image": [_("工单已结束，不能再添加照片。")]})
        now = timezone.now()
        ph = OrderPhoto(order=o, caption=(caption or "").strip(), uploaded_by=user, uploaded_at=now)
        ph.image.save(upload.name.rsplit("/", 1)[-1][:80], upload, save=False)
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
    confirm the work (R-REQ-5). Returns the code only to the notification, never to the page."""
    from aftersales.notifications.services import notify_customer

    with transaction.atomic():
        o = _order_for_work(user, order_id)
        if o.status not in (Status.ON_SITE, Status.DIAGNOSING, Status.REPAIRING, Status.COMPLETED):
            raise ValidationFailed({"code": [_("到达现场后才能发送确认码。")]})
        code = f"{secrets.randbelow(10**6):06d}"
        now = timezone.now()
        o.confirm_code_hash, o.confirm_code_expires = _code_hash(o, code), now + CODE_TTL
        workflow.event_append(o, actor=user, action="code_sent", at=now, from_status=o.status, to_status=o.status)
        o.save(update_fields=["confirm_code_hash", "confirm_code_expires", "event_count"])
        audit_record(actor=user, action="order.code_sent", obj=o, before=None, after={"expires": o.confirm_code_expires},
                     node_id=o.node_id)
        notify_customer(o.customer, event="confirm_code", ref=o.number, ref_id=o.pk,
                        context={"number": o.number, "code": code, "minutes": int(CODE_TTL.total_seconds() // 60)})
        return code


def order_confirm(*, user, order_id: int, code: str | None = None, signature=None) -> WorkOrder:
    """The customer confirms the work: by the code sent to their phone, or by a signature."""
    with transaction.atomic():
        o = _order_for_work(user, order_id)
        if o.status not in (Status.ON_SITE, Status.DIAGNOSING, Status.REPAIRING, Status.COMPLETED):
            raise ValidationFailed({"code": [_("到达现场后才能确认。")]})
        now = timezone.now()
        if code:
            if not o.confirm_code_hash:
                raise ValidationFailed({"code": [_("请先发送确认码。")]})
            if o.confirm_code_expires is None or o.confirm_code_expires < now:
                raise ValidationFailed({"code": [_("确认码已过期，请重新发送。")]})
            if not hmac.compare_digest(o.confirm_code_hash, _code_hash(o, code.strip())):
                raise ValidationFailed({"code": [_("确认码不正确。")]})
            o.confirmed_by = "code"
            o.confirm_code_hash = ""
        elif signature is not None:
            if getattr(signature, "size", 0) > PHOTO_MAX_BYTES or getattr(signature, "size", 0) == 0:
                raise ValidationFailed({"signature": [_("签名图片无效。")]})
            o.signature.save(f"{o.number}.png", signature, save=False)
            o.confirmed_by = "signature"
        else:
            raise ValidationFailed({"code": [_("请输入确认码或由客户签名。")]})
        o.confirmed_at = now
        workflow.event_append(o, actor=user, action="confirm", at=now, from_status=o.status, to_status=o.status,
                              data={"by": o.confirmed_by})
        o.save(update_fields=["confirmed_by", "confirmed_at", "confirm_code_hash", "signature", "event_count"])
        audit_record(actor=user, action="order.confirm", obj=o, before=None,
                     after={"by": o.confirmed_by, "at": now}, node_id=o.node_id)
        return o
