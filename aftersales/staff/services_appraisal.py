"""Writes of the performance appraisal (R-PERF-1..3): scheme versions, cycles, the review steps
of a sheet, calibration, lock (totals, grades, ranks, bonus, awards, flags, plans), publication,
improvement plans and the reminders of due steps. Every write takes keyword arguments, validates
all its fields at once (``ValidationFailed``), runs in one transaction and is audited.

Who may do what (``org.roles``):

- scheme versions: ``appraisal.manage`` at headquarters (a scheme holds for its role everywhere);
- open, close, lock, publish a cycle: ``appraisal.manage`` over the cycle's node; calibrate a
  sheet: ``appraisal.manage`` over the person's node;
- the review steps, each by its own role over the person's node: ``self`` the person;
  ``supervisor`` an outlet manager (for people above the outlets: their centre's manager, or at
  headquarters the HQ manager); ``department`` a centre manager (headquarters' people: an HQ
  manager); ``company`` an HQ manager. Nobody but the person does a step of their own sheet;
- improvement plans: ``appraisal.review`` over the person's node.

A sheet is seen by its person and by ``appraisal.review`` over its node; a cycle by whoever
sees its node's subtree, or has a sheet in it. Out of sight = 404; in sight, not allowed = 403.

Cycle close and lock are set-based: a fixed number of queries whatever the number of people
(values in one query per source, sheets and scores in ``bulk_create`` chunks, the results of
the lock written back in chunked ``UPDATE … FROM (VALUES …)`` on PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from decimal import Decimal, InvalidOperation

from django.db import connection, transaction
from django.db.models import Avg, Count, Max, Sum
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import Conflict, ErrorCollector, NotFound, PermissionDenied, ValidationFailed
from aftersales.core.validators import date_field, text_field
from aftersales.notifications.models import Message
from aftersales.notifications.services import notify_users
from aftersales.org.models import Employee, Node, NodeKind, RoleAssignment
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import holds_at, principal
from aftersales.quality import selectors as quality
from aftersales.quality.indicators import INDICATORS
from aftersales.records.audit import audit_record, snapshot
from aftersales.tickets.models import OrderType, Status, WorkOrder

from . import scoring
from .models import (
    STEP_ORDER,
    Attendance,
    Award,
    AwardKind,
    BonusMode,
    Cycle,
    CycleKind,
    CycleStatus,
    Enrolment,
    GradingMode,
    Group,
    ImprovementPlan,
    ItemKind,
    PlanFollowUp,
    PlanStatus,
    Review,
    Rule,
    SafetyEvent,
    Scheme,
    SchemeItem,
    SchemeVersion,
    Sheet,
    SheetScore,
    Step,
)

MAX_ID = 2**63 - 1
CHUNK = 2000
NOTE_MAX = 300
COMMENT_MAX = 2000
LABEL_MAX = 100
GOALS_MAX = 10
GOAL_TEXT_MAX = 300
PLAN_DAYS = 90          # an improvement plan's term from the lock
GOAL_SCORE = 60         # what a plan's goals aim an item's score at
REMIND_DAYS = 2         # reviewers are reminded this many days before a step's deadline
CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# The role a person is appraised in: the first of these they hold.
ROLE_PRIORITY = (Role.TECHNICIAN, Role.DISPATCHER, Role.AGENT, Role.OUTLET_MANAGER, Role.CENTRE_MANAGER,
                 Role.QUALITY, Role.TRAINER, Role.HQ_MANAGER)
REVIEW_STEPS = (Step.SELF, Step.SUPERVISOR, Step.DEPARTMENT, Step.COMPANY)
GRAIN = {CycleKind.MONTHLY: "month", CycleKind.QUARTERLY: "quarter", CycleKind.ANNUAL: "year"}
LIVE = (CycleStatus.REVIEWING, CycleStatus.CALIBRATING)

# Automatic sources: the quality indicators that exist for one person (not those over sales
# or units sold), and the appraisal's own.
OWN_SOURCES = {
    "completion_rate": _("完成率（问题解决率）"),
    "cost": _("服务成本（元）"),
    "training_hours": _("培训学时"),
    "exam_score": _("培训考试平均分"),
    "safety_incidents": _("安全事件次数"),
    "complaints": _("被投诉次数"),
}
PERSON_INDICATORS = tuple(c for c, i in INDICATORS.items() if i.den not in ("sales", "units_sold"))
AUTO_SOURCES: dict[str, object] = {**{c: INDICATORS[c].label for c in PERSON_INDICATORS}, **OWN_SOURCES}
QUALITY_ALIAS = {"completion_rate": "resolution_rate"}

SHEET_FIELDS = ("total", "grade", "rank", "rank_of", "bonus", "last_place", "review_flag", "warning")
CYCLE_FIELDS = ("kind", "period_start", "period_end", "node_id", "status", "grading_mode", "grading",
                "bonus_mode", "bonus", "deadlines", "last_place_cycles", "closed_at", "locked_at", "published_at")


def _zh(message, **params) -> str:
    with translation.override("zh-hans"):
        return str(message) % params if params else str(message)


# ================================================================ field checks

def _as_id(v):
    if isinstance(v, str) and v.strip().isdigit():
        return int(v.strip())
    v = getattr(v, "pk", v)
    return v if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_ID else None




def _number(errs: ErrorCollector, field: str, v, *, lo=None, hi=None, required: bool = True,
            places: int = 2) -> Decimal | None:
    """A number with at most ``places`` decimals within [lo, hi]."""
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            errs.add(field, _("请填写数值。"))
        return None
    if isinstance(v, bool) or not isinstance(v, Decimal | int | float | str):
        errs.add(field, _("请输入数字。"))
        return None
    try:
        d = Decimal(str(v).strip())
    except InvalidOperation:
        errs.add(field, _("请输入数字。"))
        return None
    if not d.is_finite() or abs(d) >= Decimal("1e10"):
        errs.add(field, _("请输入数字。"))
        return None
    q = Decimal(1).scaleb(-places)
    if d != d.quantize(q):
        errs.add(field, _("最多保留 %(n)s 位小数。") % {"n": places})
        return None
    if (lo is not None and d < Decimal(str(lo))) or (hi is not None and d > Decimal(str(hi))):
        errs.add(field, _("须在 %(lo)s 到 %(hi)s 之间。") % {"lo": lo, "hi": hi})
        return None
    return d.quantize(q)


def _choice(errs: ErrorCollector, field: str, v, choices) -> str:
    if v not in set(choices.values if hasattr(choices, "values") else choices):
        errs.add(field, _("不是有效的选项。"))
        return ""
    return v


def period_of(kind: str, start: dt.date) -> tuple[dt.date, dt.date]:
    grain = GRAIN[kind]
    return quality.period_start(grain, start), quality.period_end(grain, start)


# ================================================================ scope

def _paths(user) -> list[str]:
    p = principal(user)
    return p.paths_for(Perm.APPRAISAL_REVIEW) + p.paths_for(Perm.APPRAISAL_MANAGE)


def _employee_id(user) -> int | None:
    if user is None or not user.is_authenticated:
        return None
    return Employee.objects.filter(user=user).values_list("id", flat=True).first()


def cycle_visible(user, cycle: Cycle) -> bool:
    """Whoever sees part of the cycle's subtree (or the node above it), or has a sheet in it."""
    path = cycle.node.path
    if any(p.startswith(path) or path.startswith(p) for p in _paths(user)):
        return True
    emp = _employee_id(user)
    return emp is not None and Sheet.objects.filter(cycle=cycle, employee_id=emp).exists()


def sheet_visible(user, sheet: Sheet) -> bool:
    if user is None or not user.is_authenticated:
        return False
    if sheet.employee.user_id == user.pk:
        return True
    return holds_at(user, Perm.APPRAISAL_REVIEW, sheet.node_id) or holds_at(user, Perm.APPRAISAL_MANAGE, sheet.node_id)


def _holds_role_over(user, role: str, path: str) -> bool:
    return any(r == role and path.startswith(p) for r, _n, p in principal(user).roles)


def may_review(user, sheet: Sheet, step: str) -> bool:
    """Whether ``user`` may do ``step`` of ``sheet`` (whatever step the sheet is at)."""
    if user is None or not user.is_authenticated:
        return False
    own = sheet.employee.user_id == user.pk
    if step == Step.SELF:
        return own
    if own:
        return False
    if step == Step.CALIBRATION:
        return holds_at(user, Perm.APPRAISAL_MANAGE, sheet.node_id)
    path, kind = sheet.node.path, sheet.node.kind
    if step == Step.SUPERVISOR:
        return (_holds_role_over(user, Role.OUTLET_MANAGER, path)
                or (kind == NodeKind.CENTRE and _holds_role_over(user, Role.CENTRE_MANAGER, path))
                or (kind == NodeKind.HQ and _holds_role_over(user, Role.HQ_MANAGER, path)))
    if step == Step.DEPARTMENT:
        return (_holds_role_over(user, Role.CENTRE_MANAGER, path)
                or (kind == NodeKind.HQ and _holds_role_over(user, Role.HQ_MANAGER, path)))
    if step == Step.COMPANY:
        return _holds_role_over(user, Role.HQ_MANAGER, path)
    return False


def _cycle_for(user, cycle_id, *, lock: bool = True) -> Cycle:
    """The cycle (row locked) if the user sees it (else 404) and manages its node (else 403)."""
    cid = _as_id(cycle_id)
    qs = Cycle.objects.select_related("node")
    if lock:
        qs = qs.select_for_update(of=("self",))
    cycle = qs.filter(pk=cid).first() if cid else None
    if cycle is None or not cycle_visible(user, cycle):
        raise NotFound(_("未找到该考核周期，或您无权查看。"))
    if not holds_at(user, Perm.APPRAISAL_MANAGE, cycle.node_id):
        raise PermissionDenied(_("您无权管理此考核周期。"))
    return cycle


def _sheet_for(user, sheet_id) -> Sheet:
    sid = _as_id(sheet_id)
    sheet = (Sheet.objects.select_for_update(of=("self",)).select_related("cycle", "node", "employee", "version")
             .filter(pk=sid).first()) if sid else None
    if sheet is None or not sheet_visible(user, sheet):
        raise NotFound(_("未找到该考核表，或您无权查看。"))
    return sheet


# ================================================================ schemes

ITEM_KEYS = {"code", "label", "group", "kind", "source", "step", "weight", "rule", "params"}
PARAM_MESSAGES = {
    "linear_shape": _("线性规则须填写下限 floor 和目标 target（数字）。"),
    "linear_equal": _("下限和目标不能相同。"),
    "bands_shape": _("分档规则须为 [{from, to, score}] 列表，from/to 为数字或留空。"),
    "bands_order": _("每一档的 from 须小于 to。"),
    "bands_score": _("每一档的得分须在 0 到 100 之间。"),
    "points_shape": _("按次计分须填写每次分值 per_event（可选 base、cap）。"),
    "points_cap": _("上限 cap 须在 0 到 100 之间。"),
    "rule": _("不是有效的计分规则。"),
}


def _items(errs: ErrorCollector, items) -> list[dict]:
    if not isinstance(items, list | tuple) or not items:
        errs.add("items", _("请至少填写一个考核指标。"))
        return []
    out, codes, weight_sum, weights_ok = [], set(), Decimal(0), True
    for i, it in enumerate(items):
        f = f"items[{i}]"
        if not isinstance(it, dict):
            errs.add(f, _("格式不正确，应为对象。"))
            weights_ok = False
            continue
        if set(it) - ITEM_KEYS:
            errs.add(f, _("不支持字段：%(f)s。") % {"f": ", ".join(sorted(set(it) - ITEM_KEYS))})
        code = it.get("code")
        if not isinstance(code, str) or not CODE.match(code):
            errs.add(f"{f}.code", _("编码须为小写字母开头的字母、数字或下划线（最多 40 个字符）。"))
        elif code in codes:
            errs.add(f"{f}.code", _("编码重复。"))
        else:
            codes.add(code)
        label = text_field(errs, f"{f}.label", it.get("label"), LABEL_MAX, required=True)
        group = _choice(errs, f"{f}.group", it.get("group"), Group)
        kind = _choice(errs, f"{f}.kind", it.get("kind"), ItemKind)
        source, step = it.get("source") or "", it.get("step") or ""
        if kind == ItemKind.AUTO:
            if source not in AUTO_SOURCES:
                errs.add(f"{f}.source", _("请选择有效的数据来源。"))
            if step:
                errs.add(f"{f}.step", _("自动取数的指标不设评分环节。"))
        elif kind == ItemKind.MANUAL:
            if source:
                errs.add(f"{f}.source", _("评审打分的指标不设数据来源。"))
            if step not in REVIEW_STEPS:
                errs.add(f"{f}.step", _("请选择评分环节（自评、上级、部门或公司评价）。"))
        weight = _number(errs, f"{f}.weight", it.get("weight"), lo=Decimal("0.01"), hi=100)
        if weight is None:
            weights_ok = False
        else:
            weight_sum += weight
        rule = _choice(errs, f"{f}.rule", it.get("rule"), Rule)
        params = it.get("params")
        if rule:
            for p in scoring.params_problems(rule, params):
                errs.add(f"{f}.params", PARAM_MESSAGES[p])
        out.append({"code": code, "label": label, "group": group, "kind": kind, "source": source, "step": step,
                    "weight": weight, "rule": rule, "params": params, "position": i})
    if weights_ok and weight_sum != 100:
        errs.add("weights", _("各指标权重之和须为 100%%，现为 %(sum)s%%。") % {"sum": f"{weight_sum:g}"})
    return out


def scheme_version_create(*, user, role, valid_from, items, note: str = "") -> SchemeVersion:
    """A new version of ``role``'s scheme (the scheme itself made on its first version), in
    force from ``valid_from`` on: cycles starting on or after that day use it. It must start
    after every cycle already opened (a version changes nothing that is under way: made in the
    middle of a cycle, it applies from the next one)."""
    p = principal(user)
    if not p.can(Perm.APPRAISAL_MANAGE):
        raise PermissionDenied()
    if p.node_ids_for(Perm.APPRAISAL_MANAGE) is not None:
        raise PermissionDenied(_("考核方案只能由总部维护。"))
    errs = ErrorCollector()
    if role not in ROLE_PRIORITY:
        errs.add("role", _("不是可考核的角色。"))
    start = date_field(errs, "valid_from", valid_from, required=True)
    note = text_field(errs, "note", note, NOTE_MAX)
    rows = _items(errs, items)
    if start is not None:
        latest = Cycle.objects.aggregate(m=Max("period_start"))["m"]
        if latest is not None and start <= latest:
            errs.add("valid_from", _("须晚于已开启周期的起始日 %(d)s：新版本从下一个周期起生效。") % {"d": latest})
    errs.raise_if_any()
    with transaction.atomic():
        scheme, _created = Scheme.objects.get_or_create(role=role, defaults={"name": _zh(Role(role).label)})
        scheme = Scheme.objects.select_for_update().get(pk=scheme.pk)
        if SchemeVersion.objects.filter(scheme=scheme, valid_from=start).exists():
            raise ValidationFailed({"valid_from": [_("该日期已有一个版本。")]})
        number = (SchemeVersion.objects.filter(scheme=scheme).aggregate(m=Max("number"))["m"] or 0) + 1
        version = SchemeVersion.objects.create(scheme=scheme, number=number, valid_from=start, note=note,
                                               created_by=user)
        SchemeItem.objects.bulk_create([SchemeItem(version=version, **r) for r in rows])
        audit_record(actor=user, action="staff.scheme_version_create", obj=version, before=None,
                     after={"role": role, "number": number, "valid_from": start, "note": note,
                            "items": [{k: r[k] for k in ("code", "weight", "kind", "source", "step", "rule", "params")}
                                      for r in rows]})
        return version


def version_in_force(role: str, on: dt.date) -> SchemeVersion | None:
    return (SchemeVersion.objects.filter(scheme__role=role, valid_from__lte=on)
            .order_by("-valid_from").first())


# ================================================================ cycles

def _grading(errs: ErrorCollector, mode: str, grading) -> list[dict]:
    if not mode:
        return []
    if not isinstance(grading, list | tuple) or not grading or not all(isinstance(g, dict) for g in grading):
        errs.add("grading", _("请填写等级列表。"))
        return []
    key = "min" if mode == GradingMode.BANDS else "percent"
    out, seen = [], set()
    for i, g in enumerate(grading):
        name = g.get("grade")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 10:
            errs.add(f"grading[{i}].grade", _("请填写等级（最多 10 个字符）。"))
        elif name.strip() in seen:
            errs.add(f"grading[{i}].grade", _("等级重复。"))
        else:
            seen.add(name.strip())
        lo = 0 if mode == GradingMode.BANDS else Decimal("0.01")
        v = _number(errs, f"grading[{i}].{key}", g.get(key), lo=lo, hi=100)
        out.append({"grade": name.strip() if isinstance(name, str) else name, key: float(v) if v is not None else None})
    if mode == GradingMode.FORCED and all(g["percent"] is not None for g in out):
        if sum(Decimal(str(g["percent"])) for g in out) != 100:
            errs.add("grading", _("强制分布各等级比例之和须为 100%。"))
    if mode == GradingMode.BANDS and all(g["min"] is not None for g in out):
        if len({g["min"] for g in out}) != len(out):
            errs.add("grading", _("各等级的最低分不能相同。"))
        out.sort(key=lambda g: g["min"], reverse=True)
    return out


def _bonus(errs: ErrorCollector, mode: str, bonus, grades: set[str]) -> dict:
    if mode in ("", BonusMode.NONE):
        return {}
    if not isinstance(bonus, dict):
        errs.add("bonus", _("请填写奖金参数。"))
        return {}
    if mode == BonusMode.POOL:
        pool = _number(errs, "bonus.pool", bonus.get("pool"), lo=0, hi=Decimal("9999999999.99"))
        return {"pool": str(pool) if pool is not None else None}
    base = _number(errs, "bonus.base", bonus.get("base"), lo=0, hi=Decimal("9999999999.99"))
    mult = bonus.get("multipliers")
    out = {}
    if not isinstance(mult, dict) or not mult:
        errs.add("bonus.multipliers", _("请为各等级填写系数。"))
    else:
        for g, f in mult.items():
            if g not in grades:
                errs.add(f"bonus.multipliers.{g}", _("不是本周期的等级。"))
            v = _number(errs, f"bonus.multipliers.{g}", f, lo=0, hi=10)
            if v is not None:
                out[g] = float(v)
    return {"base": str(base) if base is not None else None, "multipliers": out}


def _deadlines(errs: ErrorCollector, deadlines, period_end: dt.date | None) -> dict:
    if deadlines in (None, ""):
        return {}
    if not isinstance(deadlines, dict):
        errs.add("deadlines", _("格式不正确，应为 {环节: 日期}。"))
        return {}
    out, prev = {}, None
    for step in STEP_ORDER:
        if step.value not in deadlines:
            continue
        d = date_field(errs, f"deadlines.{step.value}", deadlines[step.value], required=False)
        if d is None:
            continue
        if period_end is not None and d <= period_end:
            errs.add(f"deadlines.{step.value}", _("截止日期须晚于考核期末 %(d)s。") % {"d": period_end})
        elif prev is not None and d < prev:
            errs.add(f"deadlines.{step.value}", _("截止日期不能早于前一环节。"))
        prev = d
        out[step.value] = d.isoformat()
    for k in set(deadlines) - {s.value for s in STEP_ORDER}:
        errs.add(f"deadlines.{k}", _("不是有效的环节。"))
    return out


def cycle_open(*, user, kind, period_start, node_id, grading_mode, grading, bonus_mode=BonusMode.NONE,
               bonus=None, deadlines=None, last_place_cycles: int = 2) -> Cycle:
    """Open a cycle of ``kind`` (monthly, quarterly, annual) starting ``period_start`` (the first
    day of its period) over ``node_id``'s subtree."""
    nid = _as_id(node_id)
    node = Node.objects.filter(pk=nid).first() if nid else None
    if node is None or not any(p.startswith(node.path) or node.path.startswith(p) for p in _paths(user)):
        raise NotFound(_("未找到该节点，或您无权查看。"))
    if not holds_at(user, Perm.APPRAISAL_MANAGE, node.pk):
        raise PermissionDenied(_("您无权为此节点开启考核周期。"))
    errs = ErrorCollector()
    kind = _choice(errs, "kind", kind, CycleKind)
    start = date_field(errs, "period_start", period_start, required=True)
    end = None
    if kind and start is not None:
        first, end = period_of(kind, start)
        if first != start:
            errs.add("period_start", _("须为考核期的第一天（如 %(d)s）。") % {"d": first})
            end = None
        elif Cycle.objects.filter(kind=kind, period_start=start, node=node).exists():
            errs.add("period_start", _("此节点该期间的考核周期已存在。"))
    grading_mode = _choice(errs, "grading_mode", grading_mode, GradingMode)
    grades = _grading(errs, grading_mode, grading)
    bonus_mode = _choice(errs, "bonus_mode", bonus_mode or BonusMode.NONE, BonusMode)
    bonus = _bonus(errs, bonus_mode, bonus, {g["grade"] for g in grades})
    dl = _deadlines(errs, deadlines, end)
    if isinstance(last_place_cycles, bool) or not isinstance(last_place_cycles, int) \
            or not 1 <= last_place_cycles <= 12:
        errs.add("last_place_cycles", _("须在 1 到 12 之间。"))
    errs.raise_if_any()
    with transaction.atomic():
        cycle = Cycle.objects.create(kind=kind, period_start=start, period_end=end, node=node,
                                     grading_mode=grading_mode, grading=grades, bonus_mode=bonus_mode, bonus=bonus,
                                     deadlines=dl, last_place_cycles=last_place_cycles, created_by=user)
        audit_record(actor=user, action="staff.cycle_open", obj=cycle, before=None,
                     after=snapshot(cycle, CYCLE_FIELDS), node_id=node.pk)
        return cycle


def main_roles(user_ids) -> dict[int, str]:
    """Each user's appraised role: the first of ``ROLE_PRIORITY`` they hold (one query)."""
    held = defaultdict(set)
    for uid, role in RoleAssignment.objects.filter(user_id__in=user_ids, role__in=list(ROLE_PRIORITY)) \
            .values_list("user_id", "role"):
        held[uid].add(role)
    return {uid: next(r for r in ROLE_PRIORITY if r in roles) for uid, roles in held.items()}


def _window(cycle: Cycle) -> tuple[dt.datetime, dt.datetime]:
    """The cycle's period as local midnights [start, end + 1 day)."""
    from aftersales.quality.facts import local_midnight

    return local_midnight(cycle.period_start), local_midnight(cycle.period_end + dt.timedelta(days=1))


def person_values(cycle: Cycle, emp_ids: list[int], sources: set[str]) -> dict[str, dict[int, float | None]]:
    """{source: {employee id: value}} over the cycle's period, one query per kind of source:
    the quality indicators (``person_cells``), training hours and exam scores (attended
    enrolments of sessions starting in the period), safety events, complaints (complaint orders
    received in the period whose parent order was the person's). Counts and hours without rows
    are 0; indicators without data (0 ÷ 0) and exam scores without an exam are ``None``."""
    out: dict[str, dict[int, float | None]] = {}
    if not emp_ids or not sources:
        return out
    start, end = _window(cycle)
    q_codes = {s for s in sources if s in PERSON_INDICATORS or s in QUALITY_ALIAS or s == "cost"}
    if q_codes:
        cells = quality.person_cells(emp_ids, grain=GRAIN[cycle.kind], start=cycle.period_start,
                                     end=cycle.period_end)
        codes = [QUALITY_ALIAS.get(s, s) for s in q_codes if s != "cost"]
        for s in q_codes:
            out[s] = {}
        for e in emp_ids:
            m = cells.get((e, cycle.period_start))
            if m is None:
                continue
            vals = quality.values(m, codes)
            for s in q_codes:
                out[s][e] = float(m["cost"]) if s == "cost" else vals[QUALITY_ALIAS.get(s, s)]
    attended = Enrolment.objects.filter(employee_id__in=emp_ids, status=Attendance.ATTENDED,
                                        session__starts_at__gte=start, session__starts_at__lt=end)
    if "training_hours" in sources:
        got = dict(attended.values("employee_id").annotate(h=Sum("hours")).values_list("employee_id", "h"))
        out["training_hours"] = {e: float(got.get(e) or 0) for e in emp_ids}
    if "exam_score" in sources:
        got = dict(attended.filter(score__isnull=False).values("employee_id").annotate(s=Avg("score"))
                   .values_list("employee_id", "s"))
        out["exam_score"] = {e: (float(got[e]) if e in got else None) for e in emp_ids}
    if "safety_incidents" in sources:
        got = dict(SafetyEvent.objects.filter(employee_id__in=emp_ids, occurred_on__gte=cycle.period_start,
                                              occurred_on__lte=cycle.period_end)
                   .values("employee_id").annotate(n=Count("id")).values_list("employee_id", "n"))
        out["safety_incidents"] = {e: float(got.get(e, 0)) for e in emp_ids}
    if "complaints" in sources:
        got = dict(WorkOrder.objects.filter(type=OrderType.COMPLAINT, created_at__gte=start, created_at__lt=end,
                                            parent__assignee_id__in=emp_ids).exclude(status=Status.CANCELLED)
                   .values("parent__assignee_id").annotate(n=Count("id"))
                   .values_list("parent__assignee_id", "n"))
        out["complaints"] = {e: float(got.get(e, 0)) for e in emp_ids}
    return out


def _value(v) -> Decimal | None:
    return None if v is None else Decimal(str(v)).quantize(Decimal("0.0001"))


SHEET_INSERT = ("cycle_id", "employee_id", "version_id", "role", "node_id", "step", "auto_total", "total", "grade",
                "last_place", "review_flag", "warning", "filled_at")
SCORE_INSERT = ("sheet_id", "item_id", "value", "score", "step")


def insert_rows(model, columns: tuple[str, ...], rows: list[tuple], *, returning: tuple[str, ...] = ()) -> list:
    """Insert many rows (tuples in ``columns``' order) in chunks, returning the ``returning``
    columns of each: on PostgreSQL ``INSERT … SELECT * FROM unnest(%s::type[], …)`` — one array
    per column, no model instances —, elsewhere ``bulk_create``."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objs = model.objects.bulk_create([model(**dict(zip(columns, r, strict=True))) for r in rows],
                                         batch_size=CHUNK)
        if returning and objs[0].pk is None:
            raise RuntimeError("the database returned no ids")
        return [tuple(getattr(o, c) for c in returning) for o in objs]
    fields = {f.attname: f for f in model._meta.concrete_fields}
    arrays = ", ".join(f"CAST(%s AS {fields[c].db_type(connection)}[])" for c in columns)
    sql = (f"INSERT INTO {model._meta.db_table} ({', '.join(fields[c].column for c in columns)})"
           f" SELECT * FROM unnest({arrays})" + (f" RETURNING {', '.join(returning)}" if returning else ""))
    out = []
    with connection.cursor() as cur:
        for i in range(0, len(rows), CHUNK * 10):
            cur.execute(sql, [list(col) for col in zip(*rows[i:i + CHUNK * 10], strict=True)])
            if returning:
                out += cur.fetchall()
    return out


def cycle_close(*, user, cycle_id, now: dt.datetime | None = None) -> Cycle:
    """End the data collection of an open cycle whose period is over: one sheet per active
    employee of the subtree whose main role has a scheme version in force on the period's
    start, automatic items valued and scored, manual items waiting for their step; every sheet
    at the self-assessment. Status → reviewing."""
    now = now or timezone.now()
    with transaction.atomic():
        cycle = _cycle_for(user, cycle_id)
        if cycle.status != CycleStatus.OPEN:
            raise Conflict(_("只能结束进行中的考核周期。"))
        if timezone.localdate(now) <= cycle.period_end:
            raise Conflict(_("考核期 %(d)s 结束后才能取数。") % {"d": cycle.period_end})
        emps = list(Employee.objects.filter(active=True, hire_date__lte=cycle.period_end,
                                             node__path__startswith=cycle.node.path)
                    .values_list("id", "user_id", "node_id"))
        roles = main_roles([u for _e, u, _n in emps])
        versions: dict[str, SchemeVersion] = {}
        for v in (SchemeVersion.objects.filter(valid_from__lte=cycle.period_start, scheme__role__in=set(roles.values()))
                  .select_related("scheme").order_by("scheme_id", "-valid_from")):
            versions.setdefault(v.scheme.role, v)
        items: dict[int, list[SchemeItem]] = defaultdict(list)
        for it in SchemeItem.objects.filter(version__in=list(versions.values())).order_by("position", "id"):
            items[it.version_id].append(it)
        people = [(e, n, roles[u], versions[roles[u]]) for e, u, n in emps
                  if u in roles and roles[u] in versions]
        sources = {it.source for its in items.values() for it in its if it.kind == ItemKind.AUTO}
        vals = person_values(cycle, [e for e, *_ in people], sources)

        sheet_rows, scored = [], {}
        for e, n, r, v in people:
            pairs = [(it, scoring.item_score(it.rule, it.params, vals[it.source].get(e)))
                     for it in items[v.pk] if it.kind == ItemKind.AUTO]
            auto = scoring.total((sc, it.weight) for it, sc in pairs)
            sheet_rows.append((cycle.pk, e, v.pk, r, n, Step.SELF, auto, auto, "", False, False, False, now))
            scored[e] = pairs
        sheet_ids = dict(insert_rows(Sheet, SHEET_INSERT, sheet_rows, returning=("employee_id", "id")))
        rows = []
        for e, _n, _r, v in people:
            sid = sheet_ids[e]
            rows += [(sid, it.pk, None, None, it.step) for it in items[v.pk] if it.kind != ItemKind.AUTO]
            rows += [(sid, it.pk, _value(vals[it.source].get(e)), sc, "") for it, sc in scored[e]]
        insert_rows(SheetScore, SCORE_INSERT, rows)
        before = snapshot(cycle, ("status", "closed_at"))
        cycle.status, cycle.closed_at = CycleStatus.REVIEWING, now
        cycle.save(update_fields=["status", "closed_at"])
        audit_record(actor=user, action="staff.cycle_close", obj=cycle, before=before,
                     after={"status": cycle.status, "closed_at": now, "sheets": len(sheet_rows), "scores": len(rows)},
                     node_id=cycle.node_id)
        return cycle


# ================================================================ the review steps

def _base_total(sheet: Sheet) -> Decimal | None:
    return scoring.total(SheetScore.objects.filter(sheet=sheet).values_list("score", "item__weight"))


def _adjustment(sheet: Sheet) -> Decimal | None:
    return Review.objects.filter(sheet=sheet, step=Step.CALIBRATION).values_list("adjustment", flat=True).first()


def next_step(step: str) -> str:
    i = STEP_ORDER.index(step)
    return STEP_ORDER[min(i + 1, len(STEP_ORDER) - 1)]


def review_submit(*, user, sheet_id, step, scores, comment: str = "", now: dt.datetime | None = None) -> Sheet:
    """Do ``step`` of a sheet: the ratings (0–100) of the manual items rated at that step (scored
    by the item's rule — linear 0 → 100 keeps the rating), and a comment. Steps go in order
    (self → supervisor → department → company), each by its own
    role; the deadline of the step is kept with it. The sheet moves on to the next step."""
    now = now or timezone.now()
    with transaction.atomic():
        sheet = _sheet_for(user, sheet_id)
        if step not in REVIEW_STEPS:
            raise ValidationFailed({"step": [_("不是有效的评审环节。")]})
        if not may_review(user, sheet, step):
            raise PermissionDenied(_("此环节须由%(who)s完成。") % {"who": Step(step).label})
        if sheet.cycle.status not in LIVE:
            raise Conflict(_("考核周期不在评审阶段。"))
        if sheet.step != step:
            raise Conflict(_("当前环节为“%(step)s”，须按顺序评审。") % {"step": Step(sheet.step).label})
        errs = ErrorCollector()
        comment = text_field(errs, "comment", comment, COMMENT_MAX)
        mine = {s.item.code: s for s in SheetScore.objects.filter(sheet=sheet, item__kind=ItemKind.MANUAL,
                                                                  item__step=step).select_related("item")}
        given = {}
        if not isinstance(scores, dict):
            errs.add("scores", _("格式不正确，应为 {指标编码: 分数}。"))
        else:
            for code, v in scores.items():
                if code not in mine:
                    errs.add(f"scores.{code}", _("不是本环节评分的指标。"))
                    continue
                d = _number(errs, f"scores.{code}", v, lo=0, hi=100)
                if d is not None:
                    given[code] = d
            for code in mine:
                if code not in scores:
                    errs.add(f"scores.{code}", _("请为此指标打分（0–100）。"))
        errs.raise_if_any()
        before = snapshot(sheet, ("step", "total"))
        for code, d in given.items():
            s = mine[code]
            s.value, s.score, s.step = d, scoring.item_score(s.item.rule, s.item.params, d), step
        SheetScore.objects.bulk_update(list(mine.values()), ["value", "score", "step"])
        dl = sheet.cycle.deadlines.get(step)
        Review.objects.create(sheet=sheet, step=step, reviewer=user, comment=comment, submitted_at=now,
                              scores={k: float(v) for k, v in given.items()},
                              deadline=dt.date.fromisoformat(dl) if dl else None)
        sheet.step = next_step(step)
        sheet.total = scoring.adjusted(_base_total(sheet), _adjustment(sheet))
        sheet.save(update_fields=["step", "total"])
        audit_record(actor=user, action=f"staff.review_{step}", obj=sheet, before=before,
                     after={"step": sheet.step, "total": sheet.total, "scores": given, "comment": comment},
                     node_id=sheet.node_id)
        return sheet


def calibrate(*, user, sheet_id, adjustment, comment, now: dt.datetime | None = None) -> Sheet:
    """The manager's calibration of a sheet whose review steps are done: an adjustment of the
    total (−100 … 100, the result kept within 0–100) with the reason. May be redone until the
    cycle is locked; the cycle moves to calibrating."""
    now = now or timezone.now()
    with transaction.atomic():
        sheet = _sheet_for(user, sheet_id)
        if not may_review(user, sheet, Step.CALIBRATION):
            raise PermissionDenied(_("校准须由有考核管理权限的经理完成。"))
        if sheet.cycle.status not in LIVE:
            raise Conflict(_("考核周期不在评审阶段。"))
        if sheet.step != Step.CALIBRATION:
            raise Conflict(_("各评审环节完成后才能校准（当前环节：%(step)s）。") % {"step": Step(sheet.step).label})
        errs = ErrorCollector()
        adj = _number(errs, "adjustment", adjustment, lo=-100, hi=100)
        comment = text_field(errs, "comment", comment, COMMENT_MAX, required=True)
        errs.raise_if_any()
        before = snapshot(sheet, ("total",))
        dl = sheet.cycle.deadlines.get(Step.CALIBRATION)
        Review.objects.update_or_create(sheet=sheet, step=Step.CALIBRATION, defaults={
            "reviewer": user, "adjustment": adj, "comment": comment, "submitted_at": now,
            "deadline": dt.date.fromisoformat(dl) if dl else None})
        sheet.total = scoring.adjusted(_base_total(sheet), adj)
        sheet.save(update_fields=["total"])
        if sheet.cycle.status == CycleStatus.REVIEWING:
            Cycle.objects.filter(pk=sheet.cycle_id).update(status=CycleStatus.CALIBRATING)
        audit_record(actor=user, action="staff.calibrate", obj=sheet, before=before,
                     after={"total": sheet.total, "adjustment": adj, "comment": comment}, node_id=sheet.node_id)
        return sheet


# ================================================================ lock: the results

def _update_sheets(rows: list[tuple]) -> None:
    """Write (id, *SHEET_FIELDS) back: chunked ``UPDATE … FROM (VALUES …)`` on PostgreSQL,
    ``bulk_update`` elsewhere."""
    if connection.vendor != "postgresql":
        objs = [Sheet(pk=r[0], **dict(zip(SHEET_FIELDS, r[1:], strict=True))) for r in rows]
        Sheet.objects.bulk_update(objs, list(SHEET_FIELDS), batch_size=500)
        return
    types = {"total": "numeric", "grade": "varchar", "rank": "integer", "rank_of": "integer", "bonus": "numeric",
             "last_place": "boolean", "review_flag": "boolean", "warning": "boolean"}
    sets = ", ".join(f"{f} = CAST(v.{f} AS {types[f]})" for f in SHEET_FIELDS)
    width = len(SHEET_FIELDS) + 1
    with connection.cursor() as cur:
        for i in range(0, len(rows), CHUNK):
            part = rows[i:i + CHUNK]
            marks = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(part))
            cur.execute(f"UPDATE {Sheet._meta.db_table} s SET {sets} FROM (VALUES {marks})"
                        f" AS v(id, {', '.join(SHEET_FIELDS)}) WHERE s.id = CAST(v.id AS bigint)",
                        [x for r in part for x in r])


def _centre_of(path: str) -> int | None:
    ids = [int(x) for x in path.strip("/").split("/") if x]
    return ids[1] if len(ids) >= 2 else None


def _review_flags(cycle: Cycle, last_emps: set[int]) -> set[int]:
    """The people last here who were last in each of the ``last_place_cycles − 1`` cycles of the
    same kind just before (consecutive periods, locked or published)."""
    need = cycle.last_place_cycles - 1
    if need <= 0 or not last_emps:
        return set(last_emps) if need <= 0 else set()
    history = defaultdict(dict)  # employee → {period_start: (period_end, last)}
    for e, ps, pe, last in (Sheet.objects.filter(employee_id__in=sorted(last_emps), cycle__kind=cycle.kind,
                                                 cycle__period_start__lt=cycle.period_start,
                                                 cycle__status__in=(CycleStatus.LOCKED, CycleStatus.PUBLISHED))
                            .values_list("employee_id", "cycle__period_start", "cycle__period_end", "last_place")):
        pe_, was = history[e].get(ps, (pe, False))
        history[e][ps] = (pe, was or last)
    out = set()
    for e in last_emps:
        expect_end, ok = cycle.period_start - dt.timedelta(days=1), True
        for _i in range(need):
            hit = next(((ps, last) for ps, (pe, last) in history[e].items() if pe == expect_end), None)
            if hit is None or not hit[1]:
                ok = False
                break
            expect_end = hit[0] - dt.timedelta(days=1)
        if ok:
            out.add(e)
    return out


def cycle_lock(*, user, cycle_id, now: dt.datetime | None = None) -> Cycle:
    """Lock a cycle in review or calibration and compute its results in bulk: each sheet's total
    (scored items, weights of unscored ones spread; calibration added), grade (bands, or the
    forced distribution within node × role), rank within node × role, last place (rank = of ≥ 3)
    and the management-review flag (last in the previous cycles too), bonus (pool share or base ×
    grade multiplier), the awards (service star per centre among technicians, best team), and for
    the lowest grade a warning and an improvement plan. Steps not done by then stay undone."""
    from aftersales.quality.services import managers_of

    now = now or timezone.now()
    with transaction.atomic():
        cycle = _cycle_for(user, cycle_id)
        if cycle.status not in LIVE:
            raise Conflict(_("只能锁定评审中或校准中的考核周期。"))
        sheets = list(Sheet.objects.filter(cycle=cycle).values_list("id", "employee_id", "node_id", "role",
                                                                      "node__path", "employee__user_id"))
        pairs = defaultdict(list)
        item_scores = defaultdict(list)
        for sid, item_id, score, weight in (SheetScore.objects.filter(sheet__cycle=cycle)
                                            .values_list("sheet_id", "item_id", "score", "item__weight")):
            pairs[sid].append((score, weight))
            item_scores[sid].append((item_id, score))
        adj = dict(Review.objects.filter(sheet__cycle=cycle, step=Step.CALIBRATION)
                   .values_list("sheet_id", "adjustment"))
        res = {sid: dict(total=scoring.adjusted(scoring.total(pairs[sid]), adj.get(sid)), grade="", rank=None,
                         rank_of=None, bonus=None, last_place=False, review_flag=False, warning=False)
               for sid, *_x in sheets}
        groups = defaultdict(list)
        for sid, _e, node_id, role, *_x in sheets:
            groups[(node_id, role)].append(sid)
        for members in groups.values():
            totals = [res[s]["total"] for s in members]
            rk = scoring.ranks(totals)
            n = sum(1 for r in rk if r is not None)
            grades = (scoring.grade_forced(rk, cycle.grading) if cycle.grading_mode == GradingMode.FORCED
                      else [scoring.grade_by_bands(t, cycle.grading) for t in totals])
            for s, r, g in zip(members, rk, grades, strict=True):
                res[s].update(rank=r, rank_of=n if r is not None else None, grade=g,
                              last_place=r is not None and r == n and n >= 3)
        lowest = scoring.lowest_grade(cycle.grading_mode, cycle.grading)
        ordered = [sid for sid, *_x in sheets]
        if cycle.bonus_mode == BonusMode.POOL:
            for sid, b in zip(ordered, scoring.pool_shares(cycle.bonus["pool"], [res[s]["total"] for s in ordered]),
                              strict=True):
                res[sid]["bonus"] = b
        elif cycle.bonus_mode == BonusMode.MULTIPLIER:
            for sid in ordered:
                res[sid]["bonus"] = scoring.multiplier_bonus(cycle.bonus["base"], cycle.bonus["multipliers"],
                                                             res[sid]["grade"])
        emp_of = {sid: e for sid, e, *_x in sheets}
        flagged = _review_flags(cycle, {emp_of[s] for s in ordered if res[s]["last_place"]})
        for sid in ordered:
            r = res[sid]
            r["review_flag"] = r["last_place"] and emp_of[sid] in flagged
            r["warning"] = bool(lowest) and r["grade"] == lowest
        _update_sheets([(sid, *(res[sid][f] for f in SHEET_FIELDS)) for sid in ordered])

        # awards
        Award.objects.filter(cycle=cycle).delete()
        awards, best_star = [], {}
        for sid, e, _n, role, path, _u in sheets:
            t, centre = res[sid]["total"], _centre_of(path)
            if role == Role.TECHNICIAN and t is not None and centre is not None:
                cur = best_star.get(centre)
                if cur is None or (t, -e) > (cur[0], -cur[1]):
                    best_star[centre] = (t, e)
        awards += [Award(cycle=cycle, kind=AwardKind.STAR, node_id=c, employee_id=e, score=t)
                   for c, (t, e) in sorted(best_star.items())]
        outlets = set(Node.objects.filter(pk__in={n for (n, _r) in groups}, kind=NodeKind.OUTLET)
                      .values_list("id", flat=True))
        team = defaultdict(list)
        for sid, _e, node_id, *_x in sheets:
            if node_id in outlets and res[sid]["total"] is not None:
                team[node_id].append(res[sid]["total"])
        means = [(scoring.dec(sum(v) / len(v)), -n) for n, v in team.items() if len(v) >= 3]
        if means:
            mean, neg = max(means)
            awards.append(Award(cycle=cycle, kind=AwardKind.BEST_TEAM, node_id=-neg, score=mean))
        Award.objects.bulk_create(awards)

        # improvement plans of the lowest grade
        warned = [s for s in sheets if res[s[0]]["warning"]]
        ImprovementPlan.objects.filter(sheet__cycle=cycle).delete()
        if warned:
            coaches = managers_of({s[2] for s in warned})
            labels = dict(SchemeItem.objects.filter(pk__in={i for s in warned for i, _sc in item_scores[s[0]]})
                          .values_list("id", "label"))
            due = timezone.localdate(now) + dt.timedelta(days=PLAN_DAYS)
            plans = []
            for sid, _e, node_id, _r, _p, uid in warned:
                weakest = sorted((sc, i) for i, sc in item_scores[sid] if sc is not None)[:3]
                goals = [{"text": _zh(_("将“%(label)s”的得分从 %(score)s 提高到 %(goal)s 分以上"),
                                      label=labels[i], score=f"{sc.normalize():f}", goal=GOAL_SCORE),
                          "measure": labels[i], "due": due.isoformat()} for sc, i in weakest]
                coach = next((u for u in coaches.get(node_id, []) if u.pk != uid), None)
                plans.append(ImprovementPlan(sheet_id=sid, goals=goals, coach=coach, due_on=due, created_at=now))
            ImprovementPlan.objects.bulk_create(plans, batch_size=CHUNK)

        before = snapshot(cycle, ("status", "locked_at"))
        cycle.status, cycle.locked_at = CycleStatus.LOCKED, now
        cycle.save(update_fields=["status", "locked_at"])
        audit_record(actor=user, action="staff.cycle_lock", obj=cycle, before=before,
                     after={"status": cycle.status, "locked_at": now, "sheets": len(sheets),
                            "warnings": len(warned), "review_flags": len(flagged), "awards": len(awards)},
                     node_id=cycle.node_id)
        return cycle


def cycle_publish(*, user, cycle_id, now: dt.datetime | None = None) -> Cycle:
    """Publish a locked cycle: the people see their results and the team's board."""
    now = now or timezone.now()
    with transaction.atomic():
        cycle = _cycle_for(user, cycle_id)
        if cycle.status != CycleStatus.LOCKED:
            raise Conflict(_("只能发布已锁定的考核周期。"))
        before = snapshot(cycle, ("status", "published_at"))
        cycle.status, cycle.published_at = CycleStatus.PUBLISHED, now
        cycle.save(update_fields=["status", "published_at"])
        audit_record(actor=user, action="staff.cycle_publish", obj=cycle, before=before,
                     after=snapshot(cycle, ("status", "published_at")), node_id=cycle.node_id)
        return cycle


# ================================================================ improvement plans

def _goals(errs: ErrorCollector, goals) -> list[dict]:
    if not isinstance(goals, list | tuple) or not goals:
        errs.add("goals", _("请至少填写一个改进目标。"))
        return []
    if len(goals) > GOALS_MAX:
        errs.add("goals", _("最多 %(n)s 个目标。") % {"n": GOALS_MAX})
        return []
    out = []
    for i, g in enumerate(goals):
        if not isinstance(g, dict):
            errs.add(f"goals[{i}]", _("格式不正确，应为对象。"))
            continue
        text = text_field(errs, f"goals[{i}].text", g.get("text"), GOAL_TEXT_MAX, required=True)
        measure = text_field(errs, f"goals[{i}].measure", g.get("measure"), LABEL_MAX)
        due = date_field(errs, f"goals[{i}].due", g.get("due"), required=False)
        out.append({"text": text, "measure": measure, "due": due.isoformat() if due else None})
    return out


def plan_update(*, user, plan_id, goals=None, status=None, follow_up=None, now: dt.datetime | None = None) \
        -> ImprovementPlan:
    """Change a plan's goals or status, or add a follow-up note (the person's managers)."""
    now = now or timezone.now()
    pid = _as_id(plan_id)
    with transaction.atomic():
        plan = (ImprovementPlan.objects.select_for_update(of=("self",))
                .select_related("sheet__employee", "sheet__node").filter(pk=pid).first()) if pid else None
        if plan is None or not sheet_visible(user, plan.sheet):
            raise NotFound(_("未找到该改进计划，或您无权查看。"))
        if plan.sheet.employee.user_id == user.pk or not holds_at(user, Perm.APPRAISAL_REVIEW, plan.sheet.node_id):
            raise PermissionDenied(_("改进计划由上级维护。"))
        errs = ErrorCollector()
        new_goals = _goals(errs, goals) if goals is not None else None
        new_status = _choice(errs, "status", status, PlanStatus) if status is not None else None
        note = text_field(errs, "follow_up", follow_up, COMMENT_MAX, required=True) if follow_up is not None else None
        if goals is None and status is None and follow_up is None:
            errs.add("goals", _("没有要修改的内容。"))
        errs.raise_if_any()
        before = snapshot(plan, ("goals", "status"))
        if new_goals is not None:
            plan.goals = new_goals
        if new_status:
            plan.status = new_status
        plan.save(update_fields=["goals", "status"])
        if note:
            PlanFollowUp.objects.create(plan=plan, at=now, author=user, text=note)
        audit_record(actor=user, action="staff.plan_update", obj=plan, before=before,
                     after={"goals": plan.goals, "status": plan.status, "follow_up": note},
                     node_id=plan.sheet.node_id)
        return plan


# ================================================================ reminders

def _reviewers(step: str, node: Node, employee_user_id: int, holders: list[tuple]) -> set[int]:
    if step == Step.SELF:
        return {employee_user_id}
    roles = {Step.SUPERVISOR: [Role.OUTLET_MANAGER], Step.DEPARTMENT: [Role.CENTRE_MANAGER],
             Step.COMPANY: [Role.HQ_MANAGER], Step.CALIBRATION: [Role.CENTRE_MANAGER, Role.HQ_MANAGER]}[step]
    if step == Step.SUPERVISOR and node.kind == NodeKind.CENTRE:
        roles = [Role.CENTRE_MANAGER]
    if node.kind == NodeKind.HQ:
        roles = [Role.HQ_MANAGER]
    # the nearest node up the path where somebody holds the role
    ids = [int(x) for x in node.path.strip("/").split("/") if x]
    for nid in reversed(ids):
        found = {u for u, r, n in holders if n == nid and r in roles and u != employee_user_id}
        if found:
            return found
    return set()


def review_reminders(now: dt.datetime | None = None) -> int:
    """Remind each reviewer, once per cycle and step, of the sheets waiting for them at a step
    whose deadline is within ``REMIND_DAYS`` days or past. Returns the messages sent."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    sent = 0
    with transaction.atomic():
        cycles = list(Cycle.objects.filter(status__in=LIVE).exclude(deadlines={}))
        for cycle in cycles:
            due_steps = [s for s, d in cycle.deadlines.items()
                         if dt.date.fromisoformat(d) <= today + dt.timedelta(days=REMIND_DAYS)]
            if not due_steps:
                continue
            waiting = list(Sheet.objects.filter(cycle=cycle, step__in=due_steps)
                           .values_list("step", "node_id", "employee__user_id"))
            if not waiting:
                continue
            nodes = {n.pk: n for n in Node.objects.filter(pk__in={n for _s, n, _u in waiting})}
            anc = {int(x) for n in nodes.values() for x in n.path.strip("/").split("/") if x}
            holders = list(RoleAssignment.objects.filter(node_id__in=anc, user__is_active=True,
                                                         role__in=[Role.OUTLET_MANAGER, Role.CENTRE_MANAGER,
                                                                   Role.HQ_MANAGER])
                           .values_list("user_id", "role", "node_id"))
            counts = defaultdict(int)  # (user, step) → sheets
            for step, node_id, uid in waiting:
                for r in _reviewers(step, nodes[node_id], uid, holders):
                    counts[(r, step)] += 1
            done = set(Message.objects.filter(event="appraisal_review_due", ref_id=cycle.pk)
                       .values_list("user_id", "ref"))
            from django.contrib.auth import get_user_model

            users = get_user_model().objects.in_bulk({u for u, _s in counts})
            for (uid, step), n in sorted(counts.items()):
                ref = f"{cycle.pk}:{step}"
                if (uid, ref) in done or uid not in users:
                    continue
                notify_users([users[uid]], event="appraisal_review_due", ref=ref, ref_id=cycle.pk,
                             node_id=cycle.node_id,
                             context={"cycle": _zh(cycle), "n": n, "step": _zh(Step(step).label),
                                      "due": cycle.deadlines[step]})
                sent += 1
    return sent
