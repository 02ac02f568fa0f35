"""Writes of the quality app's improvement loop: improvement actions (R-Q-2) and their overdue
sweep, the service-norm checklist and its items, indicator targets, sales per node and month
and units sold per model and month (entered or imported). Every write validates all its fields
at once (``ValidationFailed``), runs in one transaction and is audited.

Who may do what:

- raise an action: ``quality.view`` over its node; update it and move it on (start, done):
  its owner or ``quality.manage`` over the node; verify it (or send it back): ``quality.manage``
  over the node and not the owner; cancel it: ``quality.manage`` or whoever raised it;
- targets and sales: ``quality.manage`` over the node (units sold per model: at headquarters);
  the checklist's items: ``quality.manage`` at headquarters;
- answer the checklist of an order: its technician (``workflow.is_assignee``) or
  ``order.handle`` over its node, while the work is on site or just completed.

A node out of the caller's ``quality.view`` scope is 404; in sight but not theirs to change, 403.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from aftersales.catalog.models import ProductModel
from aftersales.core.errors import Conflict, ErrorCollector, NotFound, PermissionDenied, ValidationFailed
from aftersales.core.sequences import next_in_day
from aftersales.core.validators import date_field, text_field
from aftersales.imports.tabular import Column, Row
from aftersales.notifications.services import notify_users
from aftersales.org.models import Node, NodeKind, RoleAssignment
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import holds_at, principal
from aftersales.parts import excel
from aftersales.records.audit import audit_record, snapshot
from aftersales.tickets import workflow
from aftersales.tickets.models import OrderType, Status, WorkOrder

from . import indicators
from . import selectors_improve as reads
from .models import (
    Action,
    ActionNote,
    ActionSequence,
    ActionSource,
    ActionStatus,
    ModelSales,
    NodeSales,
    NormCheck,
    NormItem,
    Target,
)

MAX_ID = 2**63 - 1
TITLE_MAX = 200
TEXT_MAX = 5000
NOTE_MAX = 2000
WHYS_MAX = 5
WHY_MAX = 500
TREE_MAX = 50
TREE_TEXT_MAX = 200
TREE_ID_MAX = 20
KEY_MAX = 30
MANAGER_ROLES = (Role.OUTLET_MANAGER, Role.CENTRE_MANAGER, Role.HQ_MANAGER)
S = ActionStatus


def _zh(message, **params) -> str:
    """A text kept in the record (notes, messages): in Chinese, like the data."""
    with translation.override("zh-hans"):
        return str(message) % params if params else str(message)


# ================================================================ field checks

def _is_id(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_ID


def _as_id(v):
    if isinstance(v, str) and v.strip().isdigit():
        return int(v.strip())
    return getattr(v, "pk", v)




def _date(errs: ErrorCollector, field: str, v, *, required: bool = False) -> dt.date | None:
    return date_field(errs, field, v, required=required)


def _number(errs: ErrorCollector, field: str, v, *, required: bool = True) -> Decimal | None:
    """A number with at most two decimals (``Decimal``), below 10¹⁰ in size."""
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            errs.add(field, _("请填写数值。"))
        return None
    if isinstance(v, bool) or not isinstance(v, Decimal | int | float | str):
        errs.add(field, _("请输入数字。"))
        return None
    try:
        d = Decimal(str(v).strip().replace(",", ""))
    except InvalidOperation:
        errs.add(field, _("请输入数字。"))
        return None
    if not d.is_finite():
        errs.add(field, _("请输入数字。"))
        return None
    if abs(d) >= Decimal("1e10"):
        errs.add(field, _("数值过大。"))
        return None
    if d != d.quantize(Decimal("0.01")):
        errs.add(field, _("最多保留两位小数。"))
        return None
    return d.quantize(Decimal("0.01"))


_MONTH = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?(?:\s*[-/.]\s*(\d{1,2})\s*日?(?:\s+00:00(?::00)?)?)?$")
EARLIEST_MONTH = dt.date(2000, 1, 1)


def parse_month(v) -> dt.date | None:
    """``YYYY-MM`` (also 2025/3, 2025年3月, or the first day of a month as a date) → its first day."""
    if isinstance(v, dt.datetime):
        v = v.date()
    if isinstance(v, dt.date):
        return v if v.day == 1 else None
    m = _MONTH.match((v or "").strip()) if isinstance(v, str) else None
    if not m:
        return None
    if m[3] is not None and int(m[3]) != 1:
        return None
    try:
        return dt.date(int(m[1]), int(m[2]), 1)
    except ValueError:
        return None


def _month(errs: ErrorCollector, field: str, v, *, today: dt.date) -> dt.date | None:
    if v is None or v == "":
        errs.add(field, _("请填写月份。"))
        return None
    m = parse_month(v)
    if m is None:
        errs.add(field, _("月份格式不正确，应为 YYYY-MM。"))
    elif m < EARLIEST_MONTH or m > today.replace(day=1):
        errs.add(field, _("月份须在 2000-01 至本月之间。"))
        return None
    return m


# ================================================================ scope

def _node(user, node_id, *, manage: bool) -> Node:
    """The node if the user sees it (``quality.view``; else 404) and, with ``manage``, holds
    ``quality.manage`` over it (else 403)."""
    node_id = _as_id(node_id)
    node = Node.objects.filter(pk=node_id).first() if _is_id(node_id) else None
    if node is None or not holds_at(user, Perm.QUALITY_VIEW, node.pk):
        raise NotFound(_("未找到该节点，或您无权查看。"))
    if manage and not holds_at(user, Perm.QUALITY_MANAGE, node.pk):
        raise PermissionDenied(_("您无权维护此节点的质量数据。"))
    return node


def _need_hq_manage(user) -> None:
    p = principal(user)
    if not p.can(Perm.QUALITY_MANAGE) or p.node_ids_for(Perm.QUALITY_MANAGE) is not None:
        raise PermissionDenied(_("只有总部的质量管理人员可以维护此项。"))


def _ancestor_ids(node: Node) -> list[int]:
    return [int(x) for x in node.path.strip("/").split("/") if x]


def managers_of(node_ids) -> dict[int, list]:
    """For each node, the active users holding a manager role at it, else at its nearest
    ancestor that has any. Two queries."""
    nodes = dict(Node.objects.filter(pk__in=sorted(set(node_ids))).values_list("pk", "path"))
    paths = {pk: [int(x) for x in path.strip("/").split("/") if x] for pk, path in nodes.items()}
    ancestors = sorted({i for ids in paths.values() for i in ids})
    rows = list(RoleAssignment.objects.filter(node_id__in=ancestors, role__in=list(MANAGER_ROLES),
                                              user__is_active=True).select_related("user").order_by("user_id"))
    out: dict[int, list] = {}
    for pk, ids in paths.items():
        out[pk] = []
        for nid in reversed(ids):
            found = {r.user_id: r.user for r in rows if r.node_id == nid}
            if found:
                out[pk] = list(found.values())
                break
    return out


# ================================================================ improvement actions

ACTION_FIELDS = ("number", "title", "source", "indicator", "node_id", "dim", "key", "period_from", "period_to",
                 "complaint_id", "problem", "whys", "fault_tree", "root_cause", "plan", "owner_id", "due_on",
                 "status", "baseline", "result_note", "done_at", "verified_at")
EDITABLE = frozenset({S.OPEN, S.IN_PROGRESS, S.DONE})


@dataclass(frozen=True)
class ActionMove:
    name: str
    label: object
    sources: frozenset
    target: str
    who: str        # "owner": the owner or quality.manage; "verifier": quality.manage, not the owner;
                    # "canceller": quality.manage or whoever raised it
    needs_note: bool = False


ACTION_MOVES: dict[str, ActionMove] = {m.name: m for m in [
    ActionMove("start", _("开始处理"), frozenset({S.OPEN}), S.IN_PROGRESS, "owner"),
    ActionMove("done", _("标记完成"), frozenset({S.IN_PROGRESS}), S.DONE, "owner"),
    ActionMove("verify", _("验证关闭"), frozenset({S.DONE}), S.VERIFIED, "verifier"),
    ActionMove("reopen", _("退回重做"), frozenset({S.DONE}), S.IN_PROGRESS, "verifier", needs_note=True),
    ActionMove("cancel", _("取消"), frozenset({S.OPEN, S.IN_PROGRESS, S.DONE}), S.CANCELLED, "canceller",
               needs_note=True),
]}


def _next_number(day: dt.date) -> str:
    """``GJ`` + YYYYMMDD + four digits, one sequence per day (``core.sequences``)."""
    return f"GJ{day:%Y%m%d}{next_in_day(ActionSequence, day):04d}"


def may_edit(user, action: Action) -> bool:
    return user is not None and (action.owner_id == user.pk or holds_at(user, Perm.QUALITY_MANAGE, action.node_id))


def may_move(user, action: Action, m: ActionMove) -> bool:
    if user is None:
        return False
    manage = holds_at(user, Perm.QUALITY_MANAGE, action.node_id)
    if m.who == "owner":
        return action.owner_id == user.pk or manage
    if m.who == "verifier":
        return manage and action.owner_id != user.pk
    return manage or action.created_by_id == user.pk


def action_moves(user, action: Action) -> list[ActionMove]:
    """The status moves ``user`` can make on ``action`` now: the buttons of its page."""
    return [m for m in ACTION_MOVES.values() if action.status in m.sources and may_move(user, action, m)]


def _whys(errs: ErrorCollector, v) -> list[str]:
    if v in (None, ""):
        return []
    if not isinstance(v, list | tuple):
        errs.add("whys", _("须为列表。"))
        return []
    if len(v) > WHYS_MAX:
        errs.add("whys", _("五问法最多 %(n)s 问。") % {"n": WHYS_MAX})
        return []
    out = []
    for i, w in enumerate(v):
        field = f"whys[{i}]"
        text = text_field(errs, field, w, WHY_MAX)
        if field not in errs.errors and not text:
            errs.add(field, _("请填写这一问的回答，或删去它。"))
        out.append(text)
    return out


def _fault_tree(errs: ErrorCollector, v) -> list[dict]:
    """A list of ``{"id", "parent", "text"}``: one root (``parent`` empty), every parent one of
    the ids, no cycles, at most ``TREE_MAX`` events."""
    if v in (None, ""):
        return []
    if not isinstance(v, list | tuple):
        errs.add("fault_tree", _("须为列表。"))
        return []
    if len(v) > TREE_MAX:
        errs.add("fault_tree", _("故障树最多 %(n)s 个事件。") % {"n": TREE_MAX})
        return []
    nodes: list[dict] = []
    ok = True
    for i, item in enumerate(v):
        if not isinstance(item, dict):
            errs.add(f"fault_tree[{i}]", _("格式不正确，应为对象。"))
            ok = False
            continue
        unknown = set(item) - {"id", "parent", "text"}
        if unknown:
            errs.add(f"fault_tree[{i}]", _("不支持此字段。"))
            ok = False
        raw_id = item.get("id")
        nid = str(raw_id).strip() if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else ""
        if not nid or len(nid) > TREE_ID_MAX or "\x00" in nid:
            errs.add(f"fault_tree[{i}].id", _("请填写事件编号（最多 %(n)s 个字符）。") % {"n": TREE_ID_MAX})
            ok = False
        raw_parent = item.get("parent")
        if raw_parent is None or raw_parent == "":
            parent = ""
        elif isinstance(raw_parent, str | int) and not isinstance(raw_parent, bool):
            parent = str(raw_parent).strip()
        else:
            errs.add(f"fault_tree[{i}].parent", _("上级事件编号不正确。"))
            parent, ok = "", False
        text = text_field(errs, f"fault_tree[{i}].text", item.get("text"), TREE_TEXT_MAX, required=True)
        nodes.append({"id": nid, "parent": parent, "text": text})
    if not ok or not nodes:
        return nodes
    ids = [n["id"] for n in nodes]
    for i, n in enumerate(nodes):
        if ids.index(n["id"]) != i:
            errs.add(f"fault_tree[{i}].id", _("事件编号重复：%(id)s。") % {"id": n["id"]})
    known = set(ids)
    for i, n in enumerate(nodes):
        if n["parent"] and n["parent"] not in known:
            errs.add(f"fault_tree[{i}].parent", _("上级事件 %(id)s 不存在。") % {"id": n["parent"]})
        elif n["parent"] == n["id"]:
            errs.add(f"fault_tree[{i}].parent", _("事件不能是自己的上级。"))
    roots = [n for n in nodes if not n["parent"]]
    if len(roots) != 1:
        errs.add("fault_tree", _("故障树须有且只有一个顶事件（不填上级的事件），现有 %(n)s 个。") % {"n": len(roots)})
    if "fault_tree" in errs.errors or any(k.startswith("fault_tree[") for k in errs.errors):
        return nodes
    parent_of = {n["id"]: n["parent"] for n in nodes}
    for i, n in enumerate(nodes):
        seen, cur = set(), n["id"]
        while cur and cur not in seen:
            seen.add(cur)
            cur = parent_of.get(cur, "")
        if cur:  # came back to an event already passed: a cycle
            errs.add(f"fault_tree[{i}].parent", _("故障树中不能有循环（事件 %(id)s）。") % {"id": n["id"]})
            break
    return nodes


def _owner(errs: ErrorCollector, owner_id, node: Node | None):
    """An active user holding a staff role at a node of ``node``'s subtree or above it."""
    owner_id = _as_id(owner_id)
    if owner_id in (None, ""):
        errs.add("owner_id", _("请选择负责人。"))
        return None
    if not _is_id(owner_id):
        errs.add("owner_id", _("未知的用户。"))
        return None
    user = get_user_model().objects.filter(pk=owner_id, is_active=True).first()
    if user is None:
        errs.add("owner_id", _("未知的用户。"))
        return None
    if node is None:
        return user
    paths = RoleAssignment.objects.filter(user_id=owner_id).exclude(role=Role.CUSTOMER).values_list(
        "node__path", flat=True)
    if not any(node.path.startswith(p) or p.startswith(node.path) for p in paths):
        errs.add("owner_id", _("负责人须在该节点、其下级或上级任职。"))
        return None
    return user


def _indicator_fields(errs: ErrorCollector, *, indicator, dim, key, required: bool) -> tuple[str, str, str]:
    code = text_field(errs, "indicator", indicator, 40)
    if not code:
        if required:
            errs.add("indicator", _("请选择要改进的指标。"))
    elif code not in indicators.INDICATORS:
        errs.add("indicator", _("未知的指标：%(code)s。") % {"code": code})
    dim = text_field(errs, "dim", dim, 10)
    key = text_field(errs, "key", key, KEY_MAX)
    if dim and dim not in indicators.DIMS:
        errs.add("dim", _("未知的维度：%(dim)s。") % {"dim": dim})
    elif dim and not key:
        errs.add("key", _("选择维度时须填写维度值。"))
    elif key and not dim:
        errs.add("dim", _("填写维度值时须选择维度。"))
    if (dim or key) and not code:
        errs.add("indicator", _("选择维度时须选择指标。"))
    return code, dim, key


def baseline_of(code: str, node: Node, *, dim: str, key: str, on: dt.date) -> Decimal | None:
    """The indicator over the three whole months before ``on``'s month at ``node``."""
    start, end = reads.baseline_window(on)
    v = reads.indicator_value(code, node, start=start, end=end, dim=dim, key=key)
    return None if v is None else Decimal(str(round(v, 2)))


def _note(action: Action, *, user, text: str, status: str = "", at: dt.datetime) -> ActionNote:
    return ActionNote.objects.create(action=action, at=at, author=user, status=status, text=text)


def action_raise(*, user, title, problem, owner_id, due_on, source: str = ActionSource.OTHER, indicator: str = "",
                 node_id=None, dim: str = "", key: str = "", period_from=None, period_to=None, complaint_id=None,
                 whys=None, fault_tree=None, root_cause: str = "", plan: str = "",
                 now: dt.datetime | None = None) -> Action:
    """Raise an improvement action at a node: from a figure (indicator + node + period, maybe a
    breakdown key), a complaint order, a survey analysis, or otherwise. The baseline (the
    indicator over the three whole months before today at the node) is kept with it."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    errs = ErrorCollector()
    if source not in ActionSource.values:
        errs.add("source", _("无效的来源。"))
    complaint = None
    if source == ActionSource.COMPLAINT:
        cid = _as_id(complaint_id)
        if cid in (None, ""):
            errs.add("complaint_id", _("请指定投诉工单。"))
        else:
            complaint = (WorkOrder.objects.select_related("assignee").filter(pk=cid).first()
                         if _is_id(cid) else None)
            if complaint is None or not workflow.can_see(user, complaint):
                errs.add("complaint_id", _("未找到该工单，或您无权查看。"))
                complaint = None
            elif complaint.type != OrderType.COMPLAINT:
                errs.add("complaint_id", _("工单 %(number)s 不是投诉工单。") % {"number": complaint.number})
                complaint = None
    elif complaint_id not in (None, ""):
        errs.add("complaint_id", _("只有来源为投诉时才可指定投诉工单。"))
    if node_id in (None, "") and complaint is not None:
        node_id = complaint.node_id
    node = None
    if node_id in (None, ""):
        if source != ActionSource.COMPLAINT or "complaint_id" not in errs.errors:
            errs.add("node_id", _("请选择节点。"))
    else:
        node = _node(user, node_id, manage=False)  # 404 out of sight
    code, dim, key = _indicator_fields(errs, indicator=indicator, dim=dim, key=key,
                                       required=source in (ActionSource.FIGURE, ActionSource.SURVEY))
    start = _date(errs, "period_from", period_from)
    end = _date(errs, "period_to", period_to)
    if start and end and end < start:
        errs.add("period_to", _("截止日期不能早于开始日期。"))
    title = text_field(errs, "title", title, TITLE_MAX, required=True)
    problem = text_field(errs, "problem", problem, TEXT_MAX, required=True)
    root_cause = text_field(errs, "root_cause", root_cause, TEXT_MAX)
    plan = text_field(errs, "plan", plan, TEXT_MAX)
    whys = _whys(errs, whys)
    tree = _fault_tree(errs, fault_tree)
    owner = _owner(errs, owner_id, node)
    due = _date(errs, "due_on", due_on, required=True)
    if due is not None and due < today:
        errs.add("due_on", _("完成期限不能早于今天。"))
    errs.raise_if_any()
    baseline = baseline_of(code, node, dim=dim, key=key, on=today) if code else None
    with transaction.atomic():
        a = Action.objects.create(
            number=_next_number(today), title=title, source=source, indicator=code, node=node, dim=dim, key=key,
            period_from=start, period_to=end, complaint=complaint, problem=problem, whys=whys, fault_tree=tree,
            root_cause=root_cause, plan=plan, owner=owner, due_on=due, status=S.OPEN, baseline=baseline,
            created_by=user, created_at=now, updated_at=now)
        _note(a, user=user, status=S.OPEN, at=now, text=_zh(_("发起改进措施，负责人 %(owner)s，期限 %(due)s。"),
                                                             owner=reads.person_label(owner), due=due.isoformat()))
        audit_record(actor=user, action="quality.action_raise", obj=a, before=None,
                     after=snapshot(a, ACTION_FIELDS), node_id=node.pk)
        return a


def _lock_action(user, action_id) -> Action:
    action_id = _as_id(action_id)
    a = None
    if _is_id(action_id):
        a = Action.objects.select_for_update(of=("self",)).select_related("node").filter(pk=action_id).first()
    if a is None or not (holds_at(user, Perm.QUALITY_VIEW, a.node_id) or a.owner_id == user.pk):
        raise NotFound()
    return a


_UNSET = object()


def action_update(*, user, action_id, title=_UNSET, problem=_UNSET, whys=_UNSET, fault_tree=_UNSET,
                  root_cause=_UNSET, plan=_UNSET, owner_id=_UNSET, due_on=_UNSET, result_note=_UNSET,
                  now: dt.datetime | None = None) -> Action:
    """Change what is given (the owner, or ``quality.manage`` over the node; only
    ``quality.manage`` hands the action to another owner). A later due date may be told about
    again when it passes."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    with transaction.atomic():
        a = _lock_action(user, action_id)
        if not may_edit(user, a):
            raise PermissionDenied(_("只有负责人或质量管理人员可以修改改进措施。"))
        if a.status not in EDITABLE:
            raise Conflict(_("改进措施已%(status)s，不能再修改。") % {"status": a.get_status_display()})
        errs = ErrorCollector()
        changes: dict = {}
        if title is not _UNSET:
            changes["title"] = text_field(errs, "title", title, TITLE_MAX, required=True)
        if problem is not _UNSET:
            changes["problem"] = text_field(errs, "problem", problem, TEXT_MAX, required=True)
        if root_cause is not _UNSET:
            changes["root_cause"] = text_field(errs, "root_cause", root_cause, TEXT_MAX)
        if plan is not _UNSET:
            changes["plan"] = text_field(errs, "plan", plan, TEXT_MAX)
        if result_note is not _UNSET:
            changes["result_note"] = text_field(errs, "result_note", result_note, TEXT_MAX)
        if whys is not _UNSET:
            changes["whys"] = _whys(errs, whys)
        if fault_tree is not _UNSET:
            changes["fault_tree"] = _fault_tree(errs, fault_tree)
        if owner_id is not _UNSET and _as_id(owner_id) != a.owner_id:
            if not holds_at(user, Perm.QUALITY_MANAGE, a.node_id):
                errs.add("owner_id", _("只有质量管理人员可以更换负责人。"))
            else:
                owner = _owner(errs, owner_id, a.node)
                if owner is not None:
                    changes["owner"] = owner
        if due_on is not _UNSET:
            due = _date(errs, "due_on", due_on, required=True)
            if due is not None and due != a.due_on:
                if due < today:
                    errs.add("due_on", _("完成期限不能早于今天。"))
                changes["due_on"] = due
        errs.raise_if_any()
        before = snapshot(a, ACTION_FIELDS)
        changed = []
        for k, v in changes.items():
            current = a.owner if k == "owner" else getattr(a, k)
            if current != v:
                setattr(a, k, v)
                changed.append(k)
        if not changed:
            return a
        if "due_on" in changed:
            a.overdue_notified_at = None
            changed.append("overdue_notified_at")
        a.updated_at = now
        a.save(update_fields=[*changed, "updated_at"])
        labels = [_zh(Action._meta.get_field(k).verbose_name) for k in changed if k != "overdue_notified_at"]
        _note(a, user=user, at=now, text=_zh(_("修改了：%(fields)s。"), fields="、".join(labels)))
        audit_record(actor=user, action="quality.action_update", obj=a, before=before,
                     after=snapshot(a, ACTION_FIELDS), node_id=a.node_id)
        return a


def action_note(*, user, action_id, text, now: dt.datetime | None = None) -> ActionNote:
    """A progress note (the owner, whoever raised it, or ``quality.manage`` over the node)."""
    now = now or timezone.now()
    errs = ErrorCollector()
    text = text_field(errs, "text", text, NOTE_MAX, required=True)
    errs.raise_if_any()
    with transaction.atomic():
        a = _lock_action(user, action_id)
        if not (may_edit(user, a) or a.created_by_id == user.pk):
            raise PermissionDenied(_("只有负责人、发起人或质量管理人员可以记录进展。"))
        if a.status not in EDITABLE:
            raise Conflict(_("改进措施已%(status)s，不能再记录进展。") % {"status": a.get_status_display()})
        n = _note(a, user=user, at=now, text=text)
        a.updated_at = now
        a.save(update_fields=["updated_at"])
        audit_record(actor=user, action="quality.action_note", obj=a, before=None,
                     after={"note_id": n.pk, "text": text}, node_id=a.node_id)
        return n


def action_move(*, user, action_id, move: str, note: str = "", now: dt.datetime | None = None) -> Action:
    """Move the action on: start (open → in progress), done (→ done), verify (done → verified,
    by ``quality.manage`` other than the owner), reopen (done → in progress, with a reason),
    cancel (with a reason)."""
    now = now or timezone.now()
    m = ACTION_MOVES.get(move)
    if m is None:
        raise ValidationFailed({"move": [_("无效的操作。")]})
    errs = ErrorCollector()
    note = text_field(errs, "note", note, NOTE_MAX, required=m.needs_note)
    errs.raise_if_any()
    with transaction.atomic():
        a = _lock_action(user, action_id)
        if not may_move(user, a, m):
            if m.who == "verifier" and a.owner_id == user.pk:
                raise PermissionDenied(_("负责人不能验证自己的改进措施。"))
            raise PermissionDenied(_("您无权对此改进措施执行「%(move)s」。") % {"move": m.label})
        if a.status not in m.sources:
            raise Conflict(_("改进措施当前为“%(status)s”，不能执行「%(move)s」。") % {
                "status": a.get_status_display(), "move": m.label}, code="illegal_move")
        before = snapshot(a, ACTION_FIELDS)
        a.status = m.target
        fields = ["status", "updated_at"]
        if m.name == "done":
            a.done_at = now
            fields.append("done_at")
            if note:
                a.result_note = note
                fields.append("result_note")
        elif m.name == "verify":
            a.verified_at = now
            fields.append("verified_at")
        elif m.name == "reopen":
            a.done_at = None
            fields.append("done_at")
        a.updated_at = now
        a.save(update_fields=fields)
        _note(a, user=user, status=a.status, at=now, text=note or _zh(m.label))
        audit_record(actor=user, action=f"quality.action_{m.name}", obj=a, before=before,
                     after=snapshot(a, ACTION_FIELDS), node_id=a.node_id)
        return a


def actions_overdue_sweep(now: dt.datetime | None = None) -> int:
    """Tell the owner and the node's managers, once per action, that an open action is past
    its due date (``overdue_notified_at``; a new due date may be told about again). Several
    sweeps at once skip each other's rows. Returns how many actions it told about."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    with transaction.atomic():
        rows = list(Action.objects.select_for_update(skip_locked=True, of=("self",))
                    .filter(reads.overdue_q(today), overdue_notified_at__isnull=True)
                    .select_related("node", "owner__employee").order_by("due_on", "id"))
        if not rows:
            return 0
        managers = managers_of({a.node_id for a in rows})
        for a in rows:
            users = {u.pk: u for u in managers.get(a.node_id, [])}
            if a.owner.is_active:
                users[a.owner_id] = a.owner
            notify_users(list(users.values()), event="action_overdue", ref=a.number, ref_id=a.pk, node_id=a.node_id,
                         context={"number": a.number, "title": a.title, "node": a.node.name,
                                  "owner": reads.person_label(a.owner), "due": a.due_on.isoformat()})
            a.overdue_notified_at = now
            audit_record(actor=None, action="quality.action_overdue_notified", obj=a,
                         before={"overdue_notified_at": None}, after={"overdue_notified_at": now}, node_id=a.node_id)
        Action.objects.bulk_update(rows, ["overdue_notified_at"])
        return len(rows)


# ================================================================ the service-norm checklist

NORM_STATES = frozenset({Status.ON_SITE, Status.DIAGNOSING, Status.REPAIRING, Status.COMPLETED})
NORM_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,29}$")
_NORM_FIELDS = ("code", "text", "text_en", "position", "active")
_CHECK_FIELDS = ("order_id", "answers", "items", "met", "note", "answered_by_id", "answered_at")


def may_answer_norms(user, order: WorkOrder) -> bool:
    return user is not None and (
        (workflow.is_assignee(user, order) and principal(user).can(Perm.ORDER_WORK))
        or holds_at(user, Perm.ORDER_HANDLE, order.node_id))


def norm_check_answer(*, user, order_id, answers, note: str = "", now: dt.datetime | None = None) -> NormCheck:
    """The service-norm checklist of an order: every active item answered met or not
    (``answers``: item code → bool). Answering again replaces the answers. Allowed while the
    technician is on site and once the work is completed, not after the call-back."""
    now = now or timezone.now()
    errs = ErrorCollector()
    note = text_field(errs, "note", note, 300)
    items = reads.norm_items()
    codes = [i.code for i in items]
    clean: dict[str, bool] = {}
    if not isinstance(answers, dict):
        errs.add("answers", _("格式不正确，应为对象。"))
    else:
        for k, v in answers.items():
            if k not in codes:
                errs.add(f"answers.{k}", _("未知或已停用的检查项。"))
            elif not isinstance(v, bool):
                errs.add(f"answers.{k}", _("请填写 true 或 false。"))
            else:
                clean[k] = v
        missing = [i for i in items if i.code not in answers]
        for i in missing:
            errs.add(f"answers.{i.code}", _("请回答此项：%(text)s") % {"text": i.text})
    if not items:
        errs.add("answers", _("没有启用的服务规范检查项。"))
    with transaction.atomic():
        order = workflow.lock_order(_as_id(order_id))
        if not workflow.can_see(user, order):
            raise NotFound()
        if not may_answer_norms(user, order):
            raise PermissionDenied(_("只有本单技师或工单处理人员可以填写服务规范检查。"))
        if order.status not in NORM_STATES:
            raise Conflict(_("工单当前为“%(status)s”，不能填写服务规范检查（须在上门服务中或完工后、回访前）。") % {
                "status": order.get_status_display()}, code="illegal_state")
        errs.raise_if_any()
        met = sum(1 for c in codes if clean[c])
        ordered = {c: clean[c] for c in codes}
        check = NormCheck.objects.select_for_update().filter(order_id=order.pk).first()
        before = snapshot(check, _CHECK_FIELDS) if check is not None else None
        if check is None:
            check = NormCheck(order=order)
        check.answers, check.items, check.met, check.note = ordered, len(codes), met, note
        check.answered_by, check.answered_at = user, now
        check.save()
        workflow.event_append(order, actor=user, action="note", at=now, from_status=order.status,
                              to_status=order.status,
                              note=_zh(_("服务规范检查：%(met)s/%(items)s 项达标。"), met=met, items=len(codes))
                              + (f" {note}" if note else ""),
                              data={"norm_check": {"items": len(codes), "met": met}})
        order.updated_at = now
        order.save(update_fields=["event_count", "updated_at"])
        audit_record(actor=user, action="quality.norm_check", obj=check, before=before,
                     after=snapshot(check, _CHECK_FIELDS), node_id=order.node_id)
        return check


def norm_item_save(*, user, item_id=None, code: str = "", text, text_en: str = "", position=None,
                   active: bool = True) -> NormItem:
    """Add an item to the checklist, or change one (its code stays: answers refer to it)."""
    _need_hq_manage(user)
    errs = ErrorCollector()
    item = None
    if item_id not in (None, ""):
        item_id = _as_id(item_id)
        item = NormItem.objects.filter(pk=item_id).first() if _is_id(item_id) else None
        if item is None:
            raise NotFound()
    else:
        code = text_field(errs, "code", code, 30, required=True).upper()
        if code and "code" not in errs.errors:
            if not NORM_CODE.match(code):
                errs.add("code", _("编码须以字母开头，只含大写字母、数字和下划线。"))
            elif NormItem.objects.filter(code=code).exists():
                errs.add("code", _("编码 %(code)s 已存在。") % {"code": code})
    text = text_field(errs, "text", text, 200, required=True)
    text_en = text_field(errs, "text_en", text_en, 200)
    pos = None
    if position not in (None, ""):
        try:
            pos = int(str(position).strip())
        except ValueError:
            pos = -1
        if isinstance(position, bool) or not 0 <= pos <= 32767:
            errs.add("position", _("顺序须为 0–32767 的整数。"))
    if not isinstance(active, bool):
        errs.add("active", _("请填写 true 或 false。"))
    errs.raise_if_any()
    with transaction.atomic():
        if item is None:
            if pos is None:
                last = NormItem.objects.order_by("-position").values_list("position", flat=True).first() or 0
                pos = min(last + 10, 32767)
            item = NormItem.objects.create(code=code, text=text, text_en=text_en, position=pos, active=active)
            audit_record(actor=user, action="quality.norm_item_create", obj=item, before=None,
                         after=snapshot(item, _NORM_FIELDS))
            return item
        before = snapshot(item, _NORM_FIELDS)
        item.text, item.text_en, item.active = text, text_en, active
        if pos is not None:
            item.position = pos
        item.save()
        audit_record(actor=user, action="quality.norm_item_update", obj=item, before=before,
                     after=snapshot(item, _NORM_FIELDS))
        return item


# ================================================================ targets

_TARGET_FIELDS = ("indicator", "node_id", "target", "amber")
SCORE_RANGE = (Decimal(1), Decimal(5))


def target_set(*, user, node_id, indicator: str, target, amber=None, now: dt.datetime | None = None) -> Target:
    """The node's own target of an indicator (and its subtree's, where they have none) with the
    amber margin (default: the registry's). Percentages lie in 0–100, scores in 1–5."""
    now = now or timezone.now()
    node = _node(user, node_id, manage=True)
    errs = ErrorCollector()
    ind = indicators.INDICATORS.get(indicator) if isinstance(indicator, str) else None
    if ind is None:
        errs.add("indicator", _("未知的指标。"))
    elif ind.better is None:
        errs.add("indicator", _("“%(label)s”是数量，不设目标。") % {"label": ind.label})
    value = _number(errs, "target", target)
    margin = _number(errs, "amber", amber, required=False)
    if margin is None and "amber" not in errs.errors:
        margin = (Decimal(str(ind.amber)) if ind is not None and ind.amber is not None else Decimal(0)).quantize(
            Decimal("0.01"))
    if margin is not None and margin < 0:
        errs.add("amber", _("黄灯容差不能为负数。"))
    if ind is not None and value is not None:
        if ind.unit == "%" and not 0 <= value <= 100:
            errs.add("target", _("百分比指标的目标须在 0 到 100 之间。"))
        elif ind.unit == "score" and not SCORE_RANGE[0] <= value <= SCORE_RANGE[1]:
            errs.add("target", _("满意度得分的目标须在 1 到 5 之间。"))
        elif ind.unit not in ("%", "score") and value < 0:
            errs.add("target", _("目标不能为负数。"))
    if ind is not None and margin is not None and ind.unit == "%" and margin > 100:
        errs.add("amber", _("百分比指标的黄灯容差不能超过 100。"))
    errs.raise_if_any()
    with transaction.atomic():
        t = Target.objects.select_for_update().filter(indicator=ind.code, node=node).first()
        before = snapshot(t, _TARGET_FIELDS) if t is not None else None
        if t is None:
            t = Target(indicator=ind.code, node=node)
        t.target, t.amber, t.updated_by, t.updated_at = value, margin, user, now
        t.save()
        audit_record(actor=user, action="quality.target_set", obj=t, before=before,
                     after=snapshot(t, _TARGET_FIELDS), node_id=node.pk)
        return t


def target_clear(*, user, node_id, indicator: str) -> bool:
    """Remove the node's own target (the inherited one, or the default, applies again)."""
    node = _node(user, node_id, manage=True)
    if not isinstance(indicator, str) or indicator not in indicators.INDICATORS:
        raise ValidationFailed({"indicator": [_("未知的指标。")]})
    with transaction.atomic():
        t = Target.objects.select_for_update().filter(indicator=indicator, node=node).first()
        if t is None:
            return False
        audit_record(actor=user, action="quality.target_clear", obj=t, before=snapshot(t, _TARGET_FIELDS),
                     after=None, node_id=node.pk)
        t.delete()
        return True


# ================================================================ sales

_SALES_FIELDS = ("node_id", "month", "amount")
_UNITS_FIELDS = ("model_id", "month", "units")


@dataclass
class SetResult:
    created: int = 0
    updated: int = 0
    cleared: int = 0
    unchanged: int = 0


def _sales_outlet(errs: ErrorCollector, field: str, user, node_id) -> Node | None:
    node_id = _as_id(node_id)
    node = Node.objects.filter(pk=node_id).first() if _is_id(node_id) else None
    if node is None or not holds_at(user, Perm.QUALITY_VIEW, node.pk):
        errs.add(field, _("未找到该网点，或您无权查看。"))
        return None
    if node.kind != NodeKind.OUTLET:
        errs.add(field, _("销售额按网点填写（%(name)s 不是网点）。") % {"name": node.name})
        return None
    if not holds_at(user, Perm.QUALITY_MANAGE, node.pk):
        errs.add(field, _("您无权维护 %(name)s 的销售额。") % {"name": node.name})
        return None
    return node


def _amount(errs: ErrorCollector, field: str, v) -> Decimal | None:
    """Yuan, not negative, two decimals; None (blank) clears the month."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    d = _number(errs, field, v.replace("，", "").lstrip("¥￥").removesuffix("元") if isinstance(v, str) else v)
    if d is not None and d < 0:
        errs.add(field, _("销售额不能为负数。"))
        return None
    return d


def _units(errs: ErrorCollector, field: str, v) -> int | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, bool):
        errs.add(field, _("须为整数。"))
        return None
    n, msg = excel.parse_count(str(v))
    if msg is not None:
        errs.add(field, msg)
    return n


def _apply(model, key: dict, field: str, value, *, user, now, fields: tuple, node_id, result: SetResult,
           action: str) -> None:
    """Write one month's figure (``value`` None: remove it), audited; one row, all or nothing."""
    row = model.objects.select_for_update().filter(**key).first()
    before = snapshot(row, fields) if row is not None else None
    if value is None:
        if row is None:
            result.unchanged += 1
            return
        audit_record(actor=user, action=f"{action}_clear", obj=row, before=before, after=None, node_id=node_id)
        row.delete()
        result.cleared += 1
        return
    if row is not None and getattr(row, field) == value:
        result.unchanged += 1
        return
    if row is None:
        row = model(**key)
        result.created += 1
    else:
        result.updated += 1
    setattr(row, field, value)
    row.updated_at = now
    row.save()
    audit_record(actor=user, action=action, obj=row, before=before, after=snapshot(row, fields), node_id=node_id)


def sales_set_many(*, user, entries, now: dt.datetime | None = None) -> SetResult:
    """Sales of outlets per month: ``entries`` = [{"node_id", "month", "amount"}] (amount blank:
    the month's figure is removed). Every entry is checked first (errors named
    ``entries[i].field``); then all are written in one transaction."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    errs = ErrorCollector()
    if not isinstance(entries, list | tuple):
        raise ValidationFailed({"entries": [_("须为列表。")]})
    clean, seen = [], set()
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            errs.add(f"entries[{i}]", _("格式不正确，应为对象。"))
            continue
        node = _sales_outlet(errs, f"entries[{i}].node_id", user, e.get("node_id"))
        month = _month(errs, f"entries[{i}].month", e.get("month"), today=today)
        amount = _amount(errs, f"entries[{i}].amount", e.get("amount"))
        if node is not None and month is not None:
            if (node.pk, month) in seen:
                errs.add(f"entries[{i}]", _("同一网点同一月份重复。"))
            seen.add((node.pk, month))
            clean.append((node, month, amount))
    errs.raise_if_any()
    result = SetResult()
    with transaction.atomic():
        for node, month, amount in clean:
            _apply(NodeSales, {"node": node, "month": month}, "amount", amount, user=user, now=now,
                   fields=_SALES_FIELDS, node_id=node.pk, result=result, action="quality.sales_set")
    return result


def sales_set(*, user, node_id, month, amount, now: dt.datetime | None = None) -> SetResult:
    """One outlet's sales of one month (``amount`` blank: removed)."""
    try:
        return sales_set_many(user=user, entries=[{"node_id": node_id, "month": month, "amount": amount}], now=now)
    except ValidationFailed as e:
        raise ValidationFailed({k.removeprefix("entries[0].").removeprefix("entries[0]") or "entries": v
                                for k, v in e.errors.items()}) from None


def model_sales_set_many(*, user, entries, now: dt.datetime | None = None) -> SetResult:
    """Units sold per product model and month (headquarters): [{"model_id", "month", "units"}]."""
    _need_hq_manage(user)
    now = now or timezone.now()
    today = timezone.localdate(now)
    errs = ErrorCollector()
    if not isinstance(entries, list | tuple):
        raise ValidationFailed({"entries": [_("须为列表。")]})
    ids = {_as_id(e.get("model_id")) for e in entries if isinstance(e, dict)}
    models = {m.pk: m for m in ProductModel.objects.filter(pk__in=[i for i in ids if _is_id(i)])}
    clean, seen = [], set()
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            errs.add(f"entries[{i}]", _("格式不正确，应为对象。"))
            continue
        model = models.get(_as_id(e.get("model_id")))
        if model is None:
            errs.add(f"entries[{i}].model_id", _("未知的型号。"))
        month = _month(errs, f"entries[{i}].month", e.get("month"), today=today)
        units = _units(errs, f"entries[{i}].units", e.get("units"))
        if model is not None and month is not None:
            if (model.pk, month) in seen:
                errs.add(f"entries[{i}]", _("同一型号同一月份重复。"))
            seen.add((model.pk, month))
            clean.append((model, month, units))
    errs.raise_if_any()
    result = SetResult()
    with transaction.atomic():
        for model, month, units in clean:
            _apply(ModelSales, {"model": model, "month": month}, "units", units, user=user, now=now,
                   fields=_UNITS_FIELDS, node_id=None, result=result, action="quality.model_sales_set")
    return result


def model_sales_set(*, user, model_id, month, units, now: dt.datetime | None = None) -> SetResult:
    try:
        return model_sales_set_many(user=user, entries=[{"model_id": model_id, "month": month, "units": units}],
                                    now=now)
    except ValidationFailed as e:
        raise ValidationFailed({k.removeprefix("entries[0].").removeprefix("entries[0]") or "entries": v
                                for k, v in e.errors.items()}) from None


# ---------------------------------------------------------------- imports

SALES_KIND = excel.Kind(
    key="sales", title=_("网点销售额"),
    columns=(
        Column("node", "节点编码", ("节点编码", "网点编码", "网点", "node_code", "outlet_code", "node", "outlet"), "SH-PD",
               "必填；网点的编码"),
        Column("month", "月份", ("月份", "年月", "month"), "2025-03", "必填，YYYY-MM"),
        Column("amount", "销售额", ("销售额", "销售金额", "销售额（元）", "amount", "sales"), "1250000.00",
               "必填，元，最多两位小数"),
    ),
    required=("node", "month", "amount"),
    text_columns=("node", "month"),
)
MODEL_SALES_KIND = excel.Kind(
    key="model_sales", title=_("型号销量"),
    columns=(
        Column("model", "型号编码", ("型号编码", "型号", "model_code", "model"), "KFR-35GW", "必填；产品型号的编码"),
        Column("month", "月份", ("月份", "年月", "month"), "2025-03", "必填，YYYY-MM"),
        Column("units", "台数", ("台数", "销量", "销售台数", "units", "qty"), "320", "必填，整数"),
    ),
    required=("model", "month", "units"),
    text_columns=("model", "month"),
)
IMPORT_KINDS = {k.key: k for k in (SALES_KIND, MODEL_SALES_KIND)}


def _import(kind: excel.Kind, content: bytes, *, resolve, write, today: dt.date) -> excel.ImportResult:
    """Read the file, check every row (``resolve(row, errs)`` → the thing the row is about),
    then write each good row in its own savepoint: a row is written completely or not at all."""
    table = excel.read(kind, content)
    result = excel.ImportResult(kind=kind.key, total=len(table.rows))
    value_key = kind.columns[2].key
    good: list[tuple[Row, object, dt.date, object]] = []
    seen: dict[tuple, int] = {}
    things = resolve([r.values.get(kind.columns[0].key, "") for r in table.rows])
    for row in table.rows:
        errs = ErrorCollector()
        code = row.values.get(kind.columns[0].key, "")
        thing = None
        if not code:
            errs.add(kind.columns[0].key, _("请填写此项。"))
        else:
            thing, msg = things.get(code, (None, _("未知的编码：%(code)s。") % {"code": code}))
            if thing is None:
                errs.add(kind.columns[0].key, msg)
        month = _month(errs, "month", row.values.get("month", ""), today=today)
        raw = row.values.get(value_key, "")
        if not raw:
            errs.add(value_key, _("请填写此项。"))
            value = None
        elif value_key == "amount":
            value, msg = excel.parse_money(raw)
            if msg is not None:
                errs.add(value_key, msg)
        else:
            value, msg = excel.parse_count(raw)
            if msg is not None:
                errs.add(value_key, msg)
        if thing is not None and month is not None:
            first = seen.setdefault((thing.pk, month), row.number)
            if first != row.number:
                errs.add("", _("与第 %(row)s 行重复（同一编码同一月份）。") % {"row": first})
        if errs:
            result.failures.append(excel.failure(kind, row, errs.errors))
        else:
            good.append((row, thing, month, value))
    with transaction.atomic():
        for row, thing, month, value in good:
            sr = SetResult()
            try:
                with transaction.atomic():
                    write(thing, month, value, sr)
            except ValidationFailed as e:
                result.failures.append(excel.failure(kind, row, e.errors))
                continue
            result.created += sr.created
            result.updated += sr.updated
            result.unchanged += sr.unchanged
    return excel.finish(result, table)


def sales_import(*, user, content: bytes, now: dt.datetime | None = None) -> excel.ImportResult:
    """Sales per outlet and month from .xlsx/CSV (节点编码 / 月份 / 销售额). Bad rows are reported
    by row and field and not written; the others are."""
    now = now or timezone.now()
    p = principal(user)
    if not p.can(Perm.QUALITY_MANAGE):
        raise PermissionDenied()

    def resolve(codes):
        nodes = {n.code: n for n in Node.objects.filter(code__in=sorted({c for c in codes if c}))}
        out = {}
        for code in codes:
            n = nodes.get(code)
            if n is None or not holds_at(user, Perm.QUALITY_VIEW, n.pk):
                continue
            if n.kind != NodeKind.OUTLET:
                out[code] = (None, _("销售额按网点填写（%(name)s 不是网点）。") % {"name": n.name})
            elif not holds_at(user, Perm.QUALITY_MANAGE, n.pk):
                out[code] = (None, _("您无权维护 %(name)s 的销售额。") % {"name": n.name})
            else:
                out[code] = (n, None)
        return out

    def write(node, month, amount, sr):
        _apply(NodeSales, {"node": node, "month": month}, "amount", amount, user=user, now=now,
               fields=_SALES_FIELDS, node_id=node.pk, result=sr, action="quality.sales_set")

    return _import(SALES_KIND, content, resolve=resolve, write=write, today=timezone.localdate(now))


def model_sales_import(*, user, content: bytes, now: dt.datetime | None = None) -> excel.ImportResult:
    """Units sold per model and month from .xlsx/CSV (型号编码 / 月份 / 台数), at headquarters."""
    _need_hq_manage(user)
    now = now or timezone.now()

    def resolve(codes):
        wanted = sorted({c.upper() for c in codes if c})
        models = {m.code.upper(): m for m in ProductModel.objects.filter(
            Q(code__in=wanted) | Q(code__in=sorted({c for c in codes if c})))}
        return {c: (models[c.upper()], None) for c in codes if c and c.upper() in models}

    def write(model, month, units, sr):
        _apply(ModelSales, {"model": model, "month": month}, "units", units, user=user, now=now,
               fields=_UNITS_FIELDS, node_id=None, result=sr, action="quality.model_sales_set")

    return _import(MODEL_SALES_KIND, content, resolve=resolve, write=write, today=timezone.localdate(now))
