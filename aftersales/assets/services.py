"""Writes of loaners (R-WAR-3) and the tool register (R-PART-2), and the periodic sweep.

Every function takes keyword arguments (``user`` first), runs in one transaction, checks every
field at once (``ValidationFailed`` naming each bad one), appends its audit entries, and is
scoped by ``asset.manage`` over the node of the thing it touches: out of sight is 404, seen
(``asset.view``) but not managed is 403.

Lending (``loan_lend``). Only an open repair order (not yet completed, cancelled or closed)
gets a loaner, and only from the pool of its own outlet (``order.node``; a loaner is moved
between outlets with ``loaner_update``). The loaner's category need not be the unit's: the
lending form lists the unit's category first, and another one is accepted (a manager may lend
a portable air conditioner for a broken split unit), but noted on the order's history. The
reason is the rule (``long_repair``: the order was created more than the policy's days ago,
checked here) or a manager's decision (``manager``: any time). Locks, always in this order:
the order, the loaner, the loan — so that two managers lending the last loaner, or lending
twice for one order, are served one after the other and the second gets a 409; the partial
unique constraints of ``Loan`` hold it even without the locks.

Returning (``loan_return``): with the condition found; a damaged or incomplete loaner goes to
maintenance with the note, a good one is available again.

Tools: ``tool_assign`` hands a tool to an employee of its node's subtree (not one whose check
has lapsed: it must be calibrated first); ``calibration_record`` appends to the history and,
when passed, moves the due date (from the interval when not given); a failed check takes the
tool out of use (``under_repair``) until a later pass.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import uuid
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from aftersales.catalog.models import Category
from aftersales.catalog.warranty import add_months
from aftersales.core.errors import Conflict, ErrorCollector, NotFound, PermissionDenied, ValidationFailed
from aftersales.core.files import extension, sniff
from aftersales.notifications.services import notify_users
from aftersales.org.models import Employee, Node, NodeKind, RoleAssignment
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import holds_at
from aftersales.records.audit import audit_record, snapshot
from aftersales.tickets import workflow
from aftersales.tickets.models import OrderType, WorkOrder

from . import selectors
from .models import (
    Calibration,
    CalibrationResult,
    CandidateNotice,
    CheckKind,
    Loan,
    Loaner,
    LoanerState,
    LoanPolicy,
    LoanReason,
    ReturnCondition,
    Tool,
    ToolKind,
    ToolState,
)

logger = logging.getLogger(__name__)

MAX_ID = 2**63 - 1
MAX_LOAN_DAYS = 180  # a due date at most this far ahead
MAX_COST = Decimal("99999.99")
CERT_MAX_BYTES = 10 * 1024 * 1024
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
MANAGER_ROLES = (Role.OUTLET_MANAGER, Role.CENTRE_MANAGER, Role.HQ_MANAGER)
LIST_IN_MESSAGE = 10  # items named in one summary message

_UNSET = object()


def default_loan_days() -> int:
    """Days a loaner is lent for when no due date is given (``settings.LOANER_LOAN_DAYS``, 14)."""
    return int(getattr(settings, "LOANER_LOAN_DAYS", 14))


def _zh(message, **params) -> str:
    """A text kept in the record (order history, messages): in Chinese, like the data."""
    with translation.override("zh-hans"):
        return str(message) % params if params else str(message)


# ---------------------------------------------------------------- field checks

def _is_id(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_ID


def _text(errs: ErrorCollector, field: str, v, max_len: int, *, required: bool = False) -> str:
    if v is None:
        v = ""
    if not isinstance(v, str):
        errs.add(field, _("请输入文本。"))
        return ""
    v = v.strip()
    if required and not v:
        errs.add(field, _("请填写此项。"))
    elif len(v) > max_len:
        errs.add(field, _("不能超过 %(n)s 个字符。") % {"n": max_len})
    elif "\x00" in v:
        errs.add(field, _("不能包含空字符。"))
    return v


def _code(errs: ErrorCollector, field: str, v, max_len: int) -> str:
    v = _text(errs, field, v, max_len, required=True)
    if v and field not in errs.errors and not CODE_RE.match(v):
        errs.add(field, _("只能包含字母、数字和 . _ / -，且以字母或数字开头。"))
    return v


def _date(errs: ErrorCollector, field: str, v, *, required: bool = False) -> dt.date | None:
    if v is None or v == "":
        if required:
            errs.add(field, _("请填写日期。"))
        return None
    if isinstance(v, dt.datetime):
        return timezone.localdate(v) if timezone.is_aware(v) else v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v.strip())
        except ValueError:
            pass
    errs.add(field, _("日期格式不正确，应为 YYYY-MM-DD。"))
    return None


def _money(errs: ErrorCollector, field: str, v) -> Decimal:
    if v is None or v == "":
        return Decimal("0.00")
    try:
        d = Decimal(str(v).strip()) if not isinstance(v, bool) else None
    except (InvalidOperation, ValueError):
        d = None
    if d is None or not d.is_finite():
        errs.add(field, _("请输入金额（元）。"))
        return Decimal("0.00")
    if d < 0:
        errs.add(field, _("金额不能为负数。"))
    elif d > MAX_COST:
        errs.add(field, _("金额不能超过 %(max)s 元。") % {"max": MAX_COST})
    elif d != d.quantize(Decimal("0.01")):
        errs.add(field, _("金额最多两位小数。"))
    return d.quantize(Decimal("0.01")) if d.is_finite() and abs(d) <= MAX_COST else Decimal("0.00")


def _choice(errs: ErrorCollector, field: str, v, choices) -> str:
    if v not in choices.values:
        errs.add(field, _("无效的选项，可选：%(expected)s。") % {"expected": "、".join(choices.values)})
        return ""
    return v


def _small_int(errs: ErrorCollector, field: str, v, lo: int, hi: int, *, required: bool = False) -> int | None:
    if v is None or v == "":
        if required:
            errs.add(field, _("请填写此项。"))
        return None
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v.strip())
    if not isinstance(v, int) or isinstance(v, bool):
        errs.add(field, _("请输入整数。"))
        return None
    if not lo <= v <= hi:
        errs.add(field, _("须在 %(lo)s 到 %(hi)s 之间。") % {"lo": lo, "hi": hi})
        return None
    return v


CERTIFICATE_KINDS = ("application/pdf", "image/jpeg", "image/png")


def _file_type(upload) -> str | None:
    kind = sniff(upload, CERTIFICATE_KINDS)
    return extension(kind) if kind else None


def _check_certificate(errs: ErrorCollector, field: str, upload) -> None:
    if upload is None:
        return
    size = getattr(upload, "size", 0) or 0
    if size == 0:
        errs.add(field, _("证书文件是空文件。"))
    elif size > CERT_MAX_BYTES:
        errs.add(field, _("证书文件不能超过 10 MB。"))
    elif _file_type(upload) is None:
        errs.add(field, _("证书文件只接受 PDF、JPEG 或 PNG。"))


def _save_certificate(field_file, code: str, upload) -> None:
    field_file.save(f"{code.replace('/', '-')}-{secrets.token_hex(4)}.{_file_type(upload)}", upload, save=False)


# ---------------------------------------------------------------- scope

def _need_manage(user, node_id: int) -> None:
    """404 when the node is out of the user's sight, 403 when seen but not theirs to manage."""
    if user is None or holds_at(user, Perm.ASSET_MANAGE, node_id):
        return
    if holds_at(user, Perm.ASSET_VIEW, node_id):
        raise PermissionDenied(_("您无权管理此网点的备用机与工具仪器。"))
    raise NotFound()


def _need_manage_order(user, order: WorkOrder) -> None:
    if user is None or holds_at(user, Perm.ASSET_MANAGE, order.node_id):
        return
    if holds_at(user, Perm.ASSET_VIEW, order.node_id) or workflow.can_see(user, order):
        raise PermissionDenied(_("您无权为此工单借出或收回备用机。"))
    raise NotFound()


def _node_for_manage(user, node_id) -> Node:
    node = Node.objects.filter(pk=node_id).first() if _is_id(node_id) else None
    if node is None:
        raise NotFound(_("未找到该节点，或您无权查看。"))
    _need_manage(user, node.pk)
    return node


def _order_note(order: WorkOrder, *, actor, at: dt.datetime, note: str, data: dict) -> None:
    """A note on the (locked) order's history: the loan is part of the order's file (一事一档)."""
    workflow.event_append(order, actor=actor, action="note", at=at, from_status=order.status,
                          to_status=order.status, note=note, data=data)
    order.updated_at = at
    order.save(update_fields=["event_count", "updated_at"])


# ================================================================ loaners

_LOANER_FIELDS = ("node_id", "category_id", "asset_no", "model_name", "serial", "state", "condition_note",
                  "daily_cost", "acquired_on")


def _loaner_fields(errs: ErrorCollector, *, asset_no, model_name, serial, daily_cost, acquired_on, condition_note,
                   today: dt.date, given: set) -> dict:
    out = {}
    if "asset_no" in given:
        out["asset_no"] = _code(errs, "asset_no", asset_no, 30)
    if "model_name" in given:
        out["model_name"] = _text(errs, "model_name", model_name, 100, required=True)
    if "serial" in given:
        out["serial"] = _text(errs, "serial", serial, 50)
    if "daily_cost" in given:
        out["daily_cost"] = _money(errs, "daily_cost", daily_cost)
    if "acquired_on" in given:
        out["acquired_on"] = _date(errs, "acquired_on", acquired_on)
        if out["acquired_on"] is not None and out["acquired_on"] > today:
            errs.add("acquired_on", _("购置日期不能晚于今天。"))
    if "condition_note" in given:
        out["condition_note"] = _text(errs, "condition_note", condition_note, 200)
    return out


def _outlet_for_pool(errs: ErrorCollector, user, node_id) -> Node | None:
    node = _node_for_manage(user, node_id)
    if node.kind != NodeKind.OUTLET:
        errs.add("node_id", _("备用机须归属服务网点。"))
    return node


def _category(errs: ErrorCollector, category_id) -> Category | None:
    c = Category.objects.filter(pk=category_id).first() if _is_id(category_id) else None
    if c is None:
        errs.add("category_id", _("产品类别不存在。"))
    return c


def loaner_create(*, user, node_id: int, category_id: int, asset_no: str, model_name: str, serial: str = "",
                  daily_cost=0, acquired_on=None, condition_note: str = "", now: dt.datetime | None = None) -> Loaner:
    """Add a loaner to an outlet's pool (available)."""
    now = now or timezone.now()
    errs = ErrorCollector()
    fields = _loaner_fields(errs, asset_no=asset_no, model_name=model_name, serial=serial, daily_cost=daily_cost,
                            acquired_on=acquired_on, condition_note=condition_note, today=timezone.localdate(now),
                            given={"asset_no", "model_name", "serial", "daily_cost", "acquired_on", "condition_note"})
    category = _category(errs, category_id)
    with transaction.atomic():
        node = _outlet_for_pool(errs, user, node_id)
        if fields.get("asset_no") and Loaner.objects.filter(asset_no=fields["asset_no"]).exists():
            errs.add("asset_no", _("资产编号已存在。"))
        errs.raise_if_any()
        x = Loaner(node=node, category=category, state=LoanerState.AVAILABLE, created_at=now, updated_at=now, **fields)
        try:
            with transaction.atomic():
                x.save(force_insert=True)
        except IntegrityError:
            raise ValidationFailed({"asset_no": [_("资产编号已存在。")]}) from None
        audit_record(actor=user, action="loaner.create", obj=x, before=None, after=snapshot(x, _LOANER_FIELDS),
                     node_id=node.pk)
        return x


def loaner_update(*, user, loaner_id: int, node_id=_UNSET, category_id=_UNSET, asset_no=_UNSET, model_name=_UNSET,
                  serial=_UNSET, daily_cost=_UNSET, acquired_on=_UNSET, condition_note=_UNSET, state=_UNSET,
                  now: dt.datetime | None = None) -> Loaner:
    """Change a loaner: its details, its state (available, maintenance, retired: a lent one
    only comes back through ``loan_return``; retired is final) or its outlet (moved to
    another outlet in the manager's scope, not while lent). Fields left out keep their value."""
    now = now or timezone.now()
    given = {k for k, v in {"node_id": node_id, "category_id": category_id, "asset_no": asset_no,
                            "model_name": model_name, "serial": serial, "daily_cost": daily_cost,
                            "acquired_on": acquired_on, "condition_note": condition_note,
                            "state": state}.items() if v is not _UNSET and v is not None}
    errs = ErrorCollector()
    fields = _loaner_fields(errs, asset_no=asset_no, model_name=model_name, serial=serial, daily_cost=daily_cost,
                            acquired_on=acquired_on, condition_note=condition_note, today=timezone.localdate(now),
                            given=given)
    if "state" in given:
        state = _choice(errs, "state", state, LoanerState)
        if state == LoanerState.LENT:
            errs.add("state", _("借出请通过借用登记办理。"))
    category = _category(errs, category_id) if "category_id" in given else None
    if not _is_id(loaner_id):
        raise NotFound()
    with transaction.atomic():
        x = Loaner.objects.select_for_update().filter(pk=loaner_id).first()
        if x is None:
            raise NotFound()
        _need_manage(user, x.node_id)
        node = _outlet_for_pool(errs, user, node_id) if "node_id" in given else None
        if fields.get("asset_no") and Loaner.objects.filter(asset_no=fields["asset_no"]).exclude(pk=x.pk).exists():
            errs.add("asset_no", _("资产编号已存在。"))
        errs.raise_if_any()
        if x.state == LoanerState.RETIRED and ("state" in given and state != LoanerState.RETIRED):
            raise Conflict(_("备用机 %(no)s 已报废，不能再启用。") % {"no": x.asset_no}, code="loaner_retired")
        if x.state == LoanerState.LENT and (("state" in given and state != LoanerState.LENT)
                                           or (node is not None and node.pk != x.node_id)):
            raise Conflict(_("备用机 %(no)s 已借出，请先办理归还。") % {"no": x.asset_no}, code="loaner_lent")
        before = snapshot(x, _LOANER_FIELDS)
        for k, v in fields.items():
            setattr(x, k, v)
        if "state" in given:
            x.state = state
        if node is not None:
            x.node = node
        if category is not None:
            x.category = category
        x.updated_at = now
        try:
            with transaction.atomic():
                x.save()
        except IntegrityError:
            raise ValidationFailed({"asset_no": [_("资产编号已存在。")]}) from None
        audit_record(actor=user, action="loaner.update", obj=x, before=before, after=snapshot(x, _LOANER_FIELDS),
                     node_id=x.node_id)
        return x


# ---------------------------------------------------------------- lending and returning

_LOAN_FIELDS = ("loaner_id", "order_id", "node_id", "reason", "note", "lent_at", "lent_by_id", "due_on",
                "daily_cost", "returned_at", "returned_by_id", "return_condition", "return_note")


def loan_lend(*, user, order_id: int, loaner_id: int, reason: str, due_on=None, note: str = "",
              now: dt.datetime | None = None) -> Loan:
    """Lend ``loaner_id`` to the customer of repair order ``order_id`` until ``due_on`` (default:
    ``LOANER_LOAN_DAYS`` days from today). See the module docstring for the rules."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    errs = ErrorCollector()
    reason = _choice(errs, "reason", reason, LoanReason)
    due = _date(errs, "due_on", due_on)
    if due is None and "due_on" not in errs.errors:
        due = today + dt.timedelta(days=default_loan_days())
    elif due is not None:
        if due < today:
            errs.add("due_on", _("应还日期不能早于今天。"))
        elif due > today + dt.timedelta(days=MAX_LOAN_DAYS):
            errs.add("due_on", _("应还日期不能晚于 %(n)s 天后。") % {"n": MAX_LOAN_DAYS})
    note = _text(errs, "note", note, 500)
    if not _is_id(order_id):
        raise NotFound()
    if not _is_id(loaner_id):
        raise NotFound(_("未找到该备用机，或您无权查看。"))
    with transaction.atomic():
        order = workflow.lock_order(order_id)
        _need_manage_order(user, order)
        loaner = (Loaner.objects.select_for_update(of=("self",)).select_related("category")
                  .filter(pk=loaner_id).first())
        if loaner is None or not (user is None or holds_at(user, Perm.ASSET_MANAGE, loaner.node_id)):
            raise NotFound(_("未找到该备用机，或您无权查看。"))
        if order.type != OrderType.REPAIR:
            errs.add("order_id", _("只有维修工单可以借用备用机。"))
        elif order.status not in selectors.CANDIDATE_STATUSES:
            raise Conflict(_("工单 %(number)s 当前状态为「%(status)s」，不能再借出备用机。")
                           % {"number": order.number, "status": order.get_status_display()}, code="order_not_open")
        if loaner.node_id != order.node_id:
            errs.add("loaner_id", _("备用机 %(no)s 不属于工单所在网点，请从本网点的备用机中选择。")
                     % {"no": loaner.asset_no})
        errs.raise_if_any()
        current = Loan.objects.select_for_update().filter(order=order, returned_at__isnull=True) \
            .select_related("loaner").first()
        if current is not None:
            raise Conflict(_("工单 %(number)s 已借用备用机 %(no)s，尚未归还。")
                           % {"number": order.number, "no": current.loaner.asset_no}, code="order_has_loan")
        if loaner.state != LoanerState.AVAILABLE:
            raise Conflict(_("备用机 %(no)s 当前状态为「%(state)s」，不能借出。")
                           % {"no": loaner.asset_no, "state": loaner.get_state_display()}, code="loaner_unavailable")
        if reason == LoanReason.LONG_REPAIR:
            policy = selectors.effective_policy(order.node_id)
            days = selectors.days_open(order, now)
            if days < policy.after_days:
                raise ValidationFailed({"reason": [
                    _("工单受理仅 %(days)s 天，未超过 %(n)s 天的借用条件；如确需借出，请选择「经理决定」。")
                    % {"days": days, "n": policy.after_days}]})
        loan = Loan(loaner=loaner, order=order, node_id=loaner.node_id, reason=reason, note=note, lent_at=now,
                    lent_by=user, due_on=due, daily_cost=loaner.daily_cost)
        try:
            with transaction.atomic():
                loan.save(force_insert=True)
        except IntegrityError:  # the partial unique constraints: a loan made meanwhile
            raise Conflict(_("此备用机或此工单已有未归还的借用。"), code="loan_exists") from None
        before = snapshot(loaner, _LOANER_FIELDS)
        loaner.state, loaner.updated_at = LoanerState.LENT, now
        loaner.save(update_fields=["state", "updated_at"])
        audit_record(actor=user, action="loan.lend", obj=loan, before=None, after=snapshot(loan, _LOAN_FIELDS),
                     node_id=loan.node_id)
        audit_record(actor=user, action="loaner.lend", obj=loaner, before=before,
                     after=snapshot(loaner, _LOANER_FIELDS), node_id=loaner.node_id)
        unit_category = order.unit.model.category_id if order.unit_id else None
        text = _zh(_("借出备用机 %(no)s（%(model)s），应还日期 %(due)s；原因：%(reason)s"), no=loaner.asset_no,
                   model=loaner.model_name, due=due.isoformat(), reason=_zh(LoanReason(reason).label))
        if unit_category is not None and loaner.category_id != unit_category:
            text += _zh(_("（非同类备用机：%(category)s）"), category=loaner.category.name)
        if note:
            text += f"；{note}"
        _order_note(order, actor=user, at=now, note=text[: workflow.TEXT_MAX],
                    data={"loan": loan.pk, "loaner": loaner.asset_no, "due_on": due.isoformat()})
        return loan


def loan_return(*, user, loan_id: int, condition: str, note: str = "", now: dt.datetime | None = None) -> Loan:
    """The loaner comes back, checked: ``good`` → available; ``damaged`` or ``incomplete`` →
    maintenance (the note says what is wrong, and is required)."""
    now = now or timezone.now()
    errs = ErrorCollector()
    condition = _choice(errs, "condition", condition, ReturnCondition)
    note = _text(errs, "note", note, 500)
    if condition and condition != ReturnCondition.GOOD and not note and "note" not in errs.errors:
        errs.add("note", _("请说明损坏或缺少的部分。"))
    head = Loan.objects.filter(pk=loan_id).values("order_id", "loaner_id", "node_id").first() \
        if _is_id(loan_id) else None
    if head is None:
        raise NotFound()
    _need_manage(user, head["node_id"])
    with transaction.atomic():
        order = workflow.lock_order(head["order_id"])
        loaner = Loaner.objects.select_for_update().get(pk=head["loaner_id"])
        loan = Loan.objects.select_for_update().get(pk=loan_id)
        if loan.returned_at is not None:
            raise Conflict(_("备用机 %(no)s 已于 %(at)s 归还。")
                           % {"no": loaner.asset_no, "at": timezone.localtime(loan.returned_at).strftime("%Y-%m-%d %H:%M")},
                           code="loan_returned")
        errs.raise_if_any()
        before_loan, before_loaner = snapshot(loan, _LOAN_FIELDS), snapshot(loaner, _LOANER_FIELDS)
        loan.returned_at = max(now, loan.lent_at)
        loan.returned_by, loan.return_condition, loan.return_note = user, condition, note
        loan.save(update_fields=["returned_at", "returned_by", "return_condition", "return_note"])
        if condition == ReturnCondition.GOOD:
            loaner.state = LoanerState.AVAILABLE
        else:
            loaner.state = LoanerState.MAINTENANCE
            loaner.condition_note = _zh(_("%(condition)s：%(note)s"), condition=_zh(ReturnCondition(condition).label),
                                        note=note)[:200]
        loaner.updated_at = now
        loaner.save(update_fields=["state", "condition_note", "updated_at"])
        audit_record(actor=user, action="loan.return", obj=loan, before=before_loan,
                     after=snapshot(loan, _LOAN_FIELDS), node_id=loan.node_id)
        audit_record(actor=user, action="loaner.return", obj=loaner, before=before_loaner,
                     after=snapshot(loaner, _LOANER_FIELDS), node_id=loaner.node_id)
        text = _zh(_("收回备用机 %(no)s，状况：%(condition)s"), no=loaner.asset_no,
                   condition=_zh(ReturnCondition(condition).label))
        if note:
            text += f"；{note}"
        _order_note(order, actor=user, at=now, note=text[: workflow.TEXT_MAX],
                    data={"loan": loan.pk, "loaner": loaner.asset_no, "condition": condition})
        return loan


def policy_set(*, user, node_id: int, after_days, now: dt.datetime | None = None) -> LoanPolicy:
    """Set after how many days a repair qualifies for a loaner at the node and below."""
    now = now or timezone.now()
    errs = ErrorCollector()
    days = _small_int(errs, "after_days", after_days, 1, 60, required=True)
    with transaction.atomic():
        node = _node_for_manage(user, node_id)
        errs.raise_if_any()
        p = LoanPolicy.objects.select_for_update().filter(node=node).first()
        before = snapshot(p) if p is not None else None
        if p is None:
            p = LoanPolicy(node=node, after_days=days, updated_at=now, updated_by=user)
        p.after_days, p.updated_at, p.updated_by = days, now, user
        p.save()
        audit_record(actor=user, action="assets.loan_policy", obj=p, before=before, after=snapshot(p), node_id=node.pk)
        return p


# ================================================================ tools

_TOOL_FIELDS = ("code", "name", "kind", "model_name", "serial", "node_id", "holder_id", "check_kind",
                "interval_months", "due_on", "certificate_no", "certificate", "state", "note")


def _holder(errs: ErrorCollector, user, holder_id, node: Node) -> Employee | None:
    """An active employee of ``node``'s subtree whom ``user`` manages (else a field error)."""
    e = Employee.objects.select_related("node", "user").filter(pk=holder_id, active=True).first() \
        if _is_id(holder_id) else None
    if e is None or not (user is None or holds_at(user, Perm.ASSET_MANAGE, e.node_id)):
        errs.add("holder_id", _("未找到该员工，或其不在您的管理范围内。"))
        return None
    if not e.node.path.startswith(node.path):
        errs.add("holder_id", _("只能交给%(node)s及其下属网点的员工。") % {"node": node.name})
        return None
    return e


def _check_fields(errs: ErrorCollector, check_kind, interval_months, due_on) -> tuple[str, int | None, dt.date | None]:
    kind = _choice(errs, "check_kind", check_kind, CheckKind)
    if kind and kind != CheckKind.NONE:
        months = _small_int(errs, "interval_months", interval_months, 1, 120, required=True)
        due = _date(errs, "due_on", due_on, required=True)
        return kind, months, due
    return kind, None, None


def tool_create(*, user, node_id: int, code: str, name: str, kind: str = ToolKind.INSTRUMENT, model_name: str = "",
                serial: str = "", check_kind: str = CheckKind.NONE, interval_months=None, due_on=None,
                certificate_no: str = "", certificate=None, holder_id: int | None = None, note: str = "",
                now: dt.datetime | None = None) -> Tool:
    """Register a tool or instrument of ``node``: in store, or in use by ``holder_id``. A tool
    that is calibrated or inspected needs its interval and the date its last check is valid
    until (which may already have passed: it is then flagged overdue at once)."""
    now = now or timezone.now()
    errs = ErrorCollector()
    code = _code(errs, "code", code, 30)
    name = _text(errs, "name", name, 100, required=True)
    kind = _choice(errs, "kind", kind, ToolKind)
    model_name = _text(errs, "model_name", model_name, 100)
    serial = _text(errs, "serial", serial, 50)
    certificate_no = _text(errs, "certificate_no", certificate_no, 50)
    note = _text(errs, "note", note, 200)
    check_kind, months, due = _check_fields(errs, check_kind, interval_months, due_on)
    _check_certificate(errs, "certificate", certificate)
    with transaction.atomic():
        node = _node_for_manage(user, node_id)
        holder = _holder(errs, user, holder_id, node) if holder_id is not None else None
        if code and Tool.objects.filter(code=code).exists():
            errs.add("code", _("编号已存在。"))
        errs.raise_if_any()
        t = Tool(code=code, name=name, kind=kind, model_name=model_name, serial=serial, node=node, holder=holder,
                 check_kind=check_kind, interval_months=months, due_on=due, certificate_no=certificate_no,
                 state=ToolState.IN_USE if holder else ToolState.IN_STORE, note=note, created_at=now, updated_at=now)
        if certificate is not None:
            _save_certificate(t.certificate, code, certificate)
        try:
            with transaction.atomic():
                t.save(force_insert=True)
        except IntegrityError:
            raise ValidationFailed({"code": [_("编号已存在。")]}) from None
        audit_record(actor=user, action="tool.create", obj=t, before=None, after=snapshot(t, _TOOL_FIELDS),
                     node_id=node.pk)
        return t


def _lock_tool(user, tool_id) -> Tool:
    if not _is_id(tool_id):
        raise NotFound()
    t = Tool.objects.select_for_update(of=("self",)).select_related("node", "holder").filter(pk=tool_id).first()
    if t is None:
        raise NotFound()
    _need_manage(user, t.node_id)
    return t


def tool_update(*, user, tool_id: int, name=_UNSET, kind=_UNSET, model_name=_UNSET, serial=_UNSET, note=_UNSET,
                check_kind=_UNSET, interval_months=_UNSET, due_on=_UNSET, certificate_no=_UNSET, certificate=None,
                state=_UNSET, node_id=_UNSET, now: dt.datetime | None = None) -> Tool:
    """Change a tool's details, its check (kind, interval, due date: a correction; the usual
    way is ``calibration_record``), its owning node (its holder must stay in the subtree) or its
    state: ``in_store`` (the holder gives it back), ``under_repair``, ``retired`` (final). It
    is put in use by ``tool_assign``. Fields left out keep their value."""
    now = now or timezone.now()
    errs = ErrorCollector()
    out: dict = {}
    if name is not _UNSET:
        out["name"] = _text(errs, "name", name, 100, required=True)
    if kind is not _UNSET:
        out["kind"] = _choice(errs, "kind", kind, ToolKind)
    if model_name is not _UNSET:
        out["model_name"] = _text(errs, "model_name", model_name, 100)
    if serial is not _UNSET:
        out["serial"] = _text(errs, "serial", serial, 50)
    if note is not _UNSET:
        out["note"] = _text(errs, "note", note, 200)
    if certificate_no is not _UNSET:
        out["certificate_no"] = _text(errs, "certificate_no", certificate_no, 50)
    if state is not _UNSET:
        state = _choice(errs, "state", state, ToolState)
        if state == ToolState.IN_USE:
            errs.add("state", _("交付使用请通过「分配持有人」办理。"))
    _check_certificate(errs, "certificate", certificate)
    with transaction.atomic():
        t = _lock_tool(user, tool_id)
        node = _node_for_manage(user, node_id) if node_id is not _UNSET and node_id is not None else None
        if node is not None and t.holder_id is not None and not t.holder.node.path.startswith(node.path):
            errs.add("node_id", _("持有人 %(name)s 不在%(node)s及其下属网点，请先收回。")
                     % {"name": t.holder.name, "node": node.name})
        if any(v is not _UNSET for v in (check_kind, interval_months, due_on)):
            ck, months, due = _check_fields(
                errs, t.check_kind if check_kind is _UNSET else check_kind,
                t.interval_months if interval_months is _UNSET else interval_months,
                t.due_on if due_on is _UNSET else due_on)
            out.update(check_kind=ck, interval_months=months, due_on=due)
        errs.raise_if_any()
        if t.state == ToolState.RETIRED and state is not _UNSET and state != ToolState.RETIRED:
            raise Conflict(_("%(code)s 已报废，不能再启用。") % {"code": t.code}, code="tool_retired")
        before = snapshot(t, _TOOL_FIELDS)
        for k, v in out.items():
            setattr(t, k, v)
        if node is not None:
            t.node = node
        if state is not _UNSET and state != t.state:
            t.state = state
            if state in (ToolState.IN_STORE, ToolState.RETIRED):
                t.holder = None
        if certificate is not None:
            _save_certificate(t.certificate, t.code, certificate)
        t.updated_at = now
        t.save()
        audit_record(actor=user, action="tool.update", obj=t, before=before, after=snapshot(t, _TOOL_FIELDS),
                     node_id=t.node_id)
        return t


def tool_assign(*, user, tool_id: int, holder_id: int | None, now: dt.datetime | None = None) -> Tool:
    """Hand the tool to ``holder_id`` (in use), or take it back into store (``holder_id`` None).
    A retired tool, one under repair, or one whose check has lapsed is not handed out."""
    now = now or timezone.now()
    errs = ErrorCollector()
    with transaction.atomic():
        t = _lock_tool(user, tool_id)
        holder = _holder(errs, user, holder_id, t.node) if holder_id is not None else None
        errs.raise_if_any()
        before = snapshot(t, _TOOL_FIELDS)
        if holder is None:
            if t.state == ToolState.IN_USE:
                t.state = ToolState.IN_STORE
            t.holder = None
        else:
            if t.state in (ToolState.RETIRED, ToolState.UNDER_REPAIR):
                raise Conflict(_("%(code)s 当前状态为「%(state)s」，不能交付使用。")
                               % {"code": t.code, "state": t.get_state_display()}, code="tool_unavailable")
            if t.is_overdue(timezone.localdate(now)):
                raise Conflict(_("%(code)s 的%(check)s有效期至 %(date)s，已过期，请先%(check)s再交付使用。")
                               % {"code": t.code, "check": t.get_check_kind_display(), "date": t.due_on.isoformat()},
                               code="tool_overdue")
            t.holder, t.state = holder, ToolState.IN_USE
        t.updated_at = now
        t.save(update_fields=["holder", "state", "updated_at"])
        audit_record(actor=user, action="tool.assign", obj=t, before=before, after=snapshot(t, _TOOL_FIELDS),
                     node_id=t.node_id)
        return t


_CALIBRATION_FIELDS = ("tool_id", "done_on", "result", "certificate_no", "certificate", "agency", "next_due", "note",
                       "recorded_by_id")


def calibration_record(*, user, tool_id: int, done_on, result: str, certificate_no: str = "", agency: str = "",
                       next_due=None, note: str = "", certificate=None, now: dt.datetime | None = None) -> Calibration:
    """Record a calibration or inspection. Passed: the tool is valid until ``next_due`` (from
    ``done_on`` plus the tool's interval when not given; it must lie ahead) and back in use
    (with its holder) or in store; a calibration needs its certificate number. Failed: the tool
    is taken out of use (``under_repair``) and its due date stays."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    errs = ErrorCollector()
    done = _date(errs, "done_on", done_on, required=True)
    if done is not None and done > today:
        errs.add("done_on", _("日期不能晚于今天。"))
    result = _choice(errs, "result", result, CalibrationResult)
    certificate_no = _text(errs, "certificate_no", certificate_no, 50)
    agency = _text(errs, "agency", agency, 100)
    note = _text(errs, "note", note, 200)
    nxt = _date(errs, "next_due", next_due)
    _check_certificate(errs, "certificate", certificate)
    with transaction.atomic():
        t = _lock_tool(user, tool_id)
        if not t.tracked:
            raise Conflict(_("%(code)s 未设定校准或检验周期。") % {"code": t.code}, code="tool_not_tracked")
        if t.state == ToolState.RETIRED:
            raise Conflict(_("%(code)s 已报废。") % {"code": t.code}, code="tool_retired")
        last = Calibration.objects.filter(tool=t).order_by("-done_on", "-id").values_list("done_on", flat=True).first()
        if done is not None and last is not None and done < last:
            errs.add("done_on", _("不能早于上次记录的日期 %(date)s。") % {"date": last.isoformat()})
        if result == CalibrationResult.PASS:
            if t.check_kind == CheckKind.CALIBRATION and not certificate_no:
                errs.add("certificate_no", _("校准合格须填写证书编号。"))
            if nxt is None and done is not None and "next_due" not in errs.errors:
                nxt = add_months(done, t.interval_months)
                if nxt < today:
                    errs.add("done_on", _("按 %(n)s 个月周期计算的下次到期日 %(date)s 已过，请核对日期。")
                             % {"n": t.interval_months, "date": nxt.isoformat()})
            elif nxt is not None:
                if done is not None and nxt <= done:
                    errs.add("next_due", _("下次到期日须晚于校准/检验日期。"))
                elif nxt < today:
                    errs.add("next_due", _("下次到期日不能早于今天。"))
        else:
            nxt = None
        errs.raise_if_any()
        c = Calibration(tool=t, done_on=done, result=result, certificate_no=certificate_no, agency=agency,
                        next_due=nxt, note=note, recorded_by=user, recorded_at=now)
        if certificate is not None:
            _save_certificate(c.certificate, t.code, certificate)
        c.save(force_insert=True)
        before = snapshot(t, _TOOL_FIELDS)
        if result == CalibrationResult.PASS:
            t.due_on = nxt
            if certificate_no:
                t.certificate_no = certificate_no
            if c.certificate:
                t.certificate = c.certificate.name
            if t.state == ToolState.UNDER_REPAIR:
                t.state = ToolState.IN_USE if t.holder_id else ToolState.IN_STORE
        else:
            t.state = ToolState.UNDER_REPAIR
        t.updated_at = now
        t.save()
        audit_record(actor=user, action="calibration.record", obj=c, before=None,
                     after=snapshot(c, _CALIBRATION_FIELDS), node_id=t.node_id)
        audit_record(actor=user, action="tool.calibration", obj=t, before=before, after=snapshot(t, _TOOL_FIELDS),
                     node_id=t.node_id)
        return c


# ================================================================ the sweep

def _people_by_node(node_ids, roles) -> dict[int, list]:
    """For each node, the active users holding one of ``roles`` at it, else at its nearest
    ancestor that has any (outlet → centre → headquarters). Two queries."""
    nodes = list(Node.objects.filter(pk__in=sorted(set(node_ids))).values_list("pk", "path"))
    paths = {pk: [int(x) for x in path.strip("/").split("/") if x] for pk, path in nodes}
    ancestors = sorted({i for ids in paths.values() for i in ids})
    rows = list(RoleAssignment.objects.filter(node_id__in=ancestors, role__in=list(roles), user__is_active=True)
                .select_related("user").order_by("user_id")) if ancestors else []
    out: dict[int, list] = {}
    for pk, ids in paths.items():
        out[pk] = []
        for nid in reversed(ids):
            found = {r.user_id: r.user for r in rows if r.node_id == nid}
            if found:
                out[pk] = list(found.values())
                break
    return out


def _listing(items: list[str]) -> str:
    text = "、".join(items[:LIST_IN_MESSAGE])
    if len(items) > LIST_IN_MESSAGE:
        text += _zh(_(" 等 %(n)s 项"), n=len(items))
    return text


def _sweep_tools(now: dt.datetime, today: dt.date) -> int:
    soon = today + dt.timedelta(days=selectors.DUE_SOON_DAYS)
    overdue_new = Q(due_on__lt=today) & (Q(overdue_notified_for__isnull=True) | ~Q(overdue_notified_for=F("due_on")))
    soon_new = Q(due_on__gte=today, due_on__lte=soon) & (Q(reminded_for__isnull=True) | ~Q(reminded_for=F("due_on")))
    with transaction.atomic():
        rows = list(Tool.objects.select_for_update(skip_locked=True, of=("self",))
                    .exclude(check_kind=CheckKind.NONE).filter(state__in=[ToolState.IN_USE, ToolState.IN_STORE])
                    .filter(overdue_new | soon_new).select_related("holder__user", "node").order_by("node_id", "code"))
        if not rows:
            return 0
        by_node: dict[int, list[str]] = {}
        for t in rows:
            overdue = t.due_on < today
            ctx = {"code": t.code, "name": t.name, "check": _zh(CheckKind(t.check_kind).label),
                   "due": t.due_on.isoformat(), "holder": t.holder.name if t.holder_id else _zh(_("在库"))}
            event = "tool_overdue" if overdue else "tool_due_soon"
            if t.holder_id and t.holder.user.is_active:
                notify_users([t.holder.user], event=event, context=ctx, ref=t.code[:40], ref_id=t.pk,
                             node_id=t.node_id)
            label = _zh(_("已过期") if overdue else _("将到期"))
            by_node.setdefault(t.node_id, []).append(f"{t.code} {t.name}（{ctx['holder']}，{t.due_on:%m-%d}{label}）")
            before = {"reminded_for": t.reminded_for, "overdue_notified_for": t.overdue_notified_for}
            if overdue:
                t.overdue_notified_for = t.due_on
            else:
                t.reminded_for = t.due_on
            audit_record(actor=None, action="tool.notify", obj=t, before=before,
                         after={"reminded_for": t.reminded_for, "overdue_notified_for": t.overdue_notified_for},
                         node_id=t.node_id)
        Tool.objects.bulk_update(rows, ["reminded_for", "overdue_notified_for"])
        managers = _people_by_node(by_node, MANAGER_ROLES)
        quality = _people_by_node(by_node, (Role.QUALITY,))
        names = dict(Node.objects.filter(pk__in=list(by_node)).values_list("pk", "name"))
        for nid, items in by_node.items():
            users = list({u.pk: u for u in managers.get(nid, []) + quality.get(nid, [])}.values())
            if users:
                notify_users(users, event="tools_due_summary", node_id=nid,
                             context={"node": names.get(nid, ""), "n": len(items), "items": _listing(items)})
        return len(rows)


def _sweep_overdue_loans(now: dt.datetime, today: dt.date) -> int:
    with transaction.atomic():
        rows = list(Loan.objects.select_for_update(skip_locked=True, of=("self",))
                    .filter(returned_at__isnull=True, due_on__lt=today)
                    .filter(Q(overdue_notified_for__isnull=True) | ~Q(overdue_notified_for=F("due_on")))
                    .select_related("loaner", "order__customer", "node").order_by("node_id", "due_on", "id"))
        if not rows:
            return 0
        by_node: dict[int, list[str]] = {}
        for loan in rows:
            by_node.setdefault(loan.node_id, []).append(
                f"{loan.loaner.asset_no}（{loan.order.number}，{loan.order.customer.name}，{loan.due_on:%m-%d}）")
            before = {"overdue_notified_for": loan.overdue_notified_for}
            loan.overdue_notified_for = loan.due_on
            audit_record(actor=None, action="loan.notify_overdue", obj=loan, before=before,
                         after={"overdue_notified_for": loan.due_on}, node_id=loan.node_id)
        Loan.objects.bulk_update(rows, ["overdue_notified_for"])
        managers = _people_by_node(by_node, MANAGER_ROLES)
        names = {loan.node_id: loan.node.name for loan in rows}
        for nid, items in by_node.items():
            if managers.get(nid):
                notify_users(managers[nid], event="loans_overdue", node_id=nid,
                             context={"node": names[nid], "n": len(items), "items": _listing(items)})
        return len(rows)


def _sweep_candidates(now: dt.datetime) -> int:
    notice = CandidateNotice.objects.filter(order_id=OuterRef("pk"))
    found = list(selectors.loan_candidates(None, now=now).exclude(Exists(notice))
                 .values_list("pk", "node_id", "number", "after_days").order_by("node_id", "created_at", "id"))
    if not found:
        return 0
    run = uuid.uuid4()
    with transaction.atomic():
        # Several sweeps at once: each order's notice is inserted by one of them only, and each
        # tells about the rows it inserted.
        CandidateNotice.objects.bulk_create([CandidateNotice(order_id=pk, notified_at=now, run=run)
                                             for pk, _n, _num, _d in found], ignore_conflicts=True)
        mine = set(CandidateNotice.objects.filter(run=run).values_list("order_id", flat=True))
        by_node: dict[int, list[tuple[str, int]]] = {}
        for pk, nid, number, days in found:
            if pk in mine:
                by_node.setdefault(nid, []).append((number, days))
        managers = _people_by_node(by_node, MANAGER_ROLES)
        names = dict(Node.objects.filter(pk__in=list(by_node)).values_list("pk", "name"))
        for nid, items in by_node.items():
            if managers.get(nid):
                notify_users(managers[nid], event="loan_candidates", node_id=nid,
                             context={"node": names.get(nid, ""), "n": len(items), "days": min(d for _x, d in items),
                                      "items": _listing([number for number, _d in items])})
        return len(mine)


def assets_sweep(now: dt.datetime | None = None) -> dict[str, int]:
    """The periodic job: tell each holder (and the node's managers and quality staff) once per
    due date that an instrument's check falls due within 7 days, and once that it is overdue;
    tell the outlet's managers once about each overdue loan and each order that has come to
    qualify for a loaner. Returns how many of each it told about."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    return {"tools": _sweep_tools(now, today), "loans_overdue": _sweep_overdue_loans(now, today),
            "loan_candidates": _sweep_candidates(now)}
