"""Writes of training (R-TRN) and certificates: courses, sessions, enrolment, attendance and exam
scores, safety events, adding and renewing certificates, and the reminders to managers.

Every write takes keyword arguments, validates every field at once (``ValidationFailed`` naming
each bad field), runs in one transaction and is audited.

Who may do what:

- courses: ``training.manage`` (anywhere);
- sessions: plan, change, cancel, enrol: ``training.manage`` over the session's node; record
  attendance and exam scores: the same, or the session's trainer;
- enrol: active staff of the session's subtree within the caller's ``training.manage`` scope
  (out of that scope: 404);
- safety events: ``appraisal.review`` or ``training.manage`` over the employee's node;
- certificates: ``staff.edit`` over the employee's node.

A session (or employee) out of sight is 404, in sight but not the caller's to change, 403.
``training_reminders`` tells managers, once, of their staff overdue for training (cadence) and of
certificates expiring within 30 days.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from dateutil.relativedelta import relativedelta
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import Conflict, ErrorCollector, NotFound, PermissionDenied, ValidationFailed
from aftersales.core.validators import date_field, text_field
from aftersales.notifications.models import Message
from aftersales.org import services as org_services
from aftersales.org.models import Certification, Employee, Node, RoleAssignment
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import holds_at, principal, scoped
from aftersales.quality.services import managers_of
from aftersales.records.audit import audit_record, snapshot
from aftersales.tickets.models import WorkOrder

from . import selectors_training as reads
from .models import Attendance, Course, Enrolment, SafetyEvent, Session, SessionStatus, Subject

MAX_ID = 2**63 - 1
CODE_MAX = 30
TITLE_MAX = 100
DESCRIPTION_MAX = 5000
PLACE_MAX = 200
SAFETY_TEXT_MAX = 500
NUMBER_MAX = 50
MAX_HOURS = Decimal("999.9")
MAX_CAPACITY = 1000
MAX_SESSION_DAYS = 14
MAX_ENROL = 500
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
COURSE_FIELDS = ("code", "title", "subject", "hours", "pass_mark", "description", "active")
SESSION_FIELDS = ("starts_at", "ends_at", "trainer_id", "place", "online", "capacity")
EVENT_OVERDUE = "training_overdue"
EVENT_CERT = "cert_expiring"


def _zh(message, **params) -> str:
    """A text kept in the record (messages): in Chinese, like the data."""
    with translation.override("zh-hans"):
        return str(message) % params if params else str(message)


# ================================================================ field checks

def _as_id(v):
    if isinstance(v, str) and v.strip().isdigit():
        return int(v.strip())
    return getattr(v, "pk", v)


def _is_id(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_ID




def _bool(errs: ErrorCollector, field: str, v) -> bool:
    if isinstance(v, bool):
        return v
    if v in (None, ""):
        return False
    if isinstance(v, str) and v.strip().lower() in ("1", "true", "on", "yes"):
        return True
    if isinstance(v, str) and v.strip().lower() in ("0", "false", "off", "no"):
        return False
    errs.add(field, _("请输入 true 或 false。"))
    return False


def _int(errs: ErrorCollector, field: str, v, *, lo: int, hi: int, required: bool = True,
         message=None) -> int | None:
    """An integer in [lo, hi] (an int or a string of digits)."""
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            errs.add(field, _("请填写此项。"))
        return None
    if isinstance(v, bool):
        errs.add(field, _("请输入整数。"))
        return None
    if isinstance(v, str):
        s = v.strip()
        if not re.fullmatch(r"-?\d{1,12}", s):
            errs.add(field, _("请输入整数。"))
            return None
        v = int(s)
    elif isinstance(v, float | Decimal):
        if v != int(v):
            errs.add(field, _("请输入整数。"))
            return None
        v = int(v)
    elif not isinstance(v, int):
        errs.add(field, _("请输入整数。"))
        return None
    if not lo <= v <= hi:
        errs.add(field, message or (_("须在 %(lo)s 到 %(hi)s 之间。") % {"lo": lo, "hi": hi}))
        return None
    return v


def _hours(errs: ErrorCollector, field: str, v, *, required: bool = True, allow_zero: bool = False) -> Decimal | None:
    """Hours with at most one decimal, above 0 (or 0 with ``allow_zero``), at most 999.9."""
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            errs.add(field, _("请填写学时。"))
        return None
    if isinstance(v, bool) or not isinstance(v, Decimal | int | float | str):
        errs.add(field, _("请输入数字。"))
        return None
    try:
        d = Decimal(str(v).strip())
    except InvalidOperation:
        errs.add(field, _("请输入数字。"))
        return None
    if not d.is_finite():
        errs.add(field, _("请输入数字。"))
        return None
    if d < 0 or (d == 0 and not allow_zero):
        errs.add(field, _("学时须大于 0。") if not allow_zero else _("学时不能为负数。"))
        return None
    if d > MAX_HOURS:
        errs.add(field, _("学时不能超过 %(max)s。") % {"max": MAX_HOURS})
        return None
    if d != d.quantize(Decimal("0.1")):
        errs.add(field, _("学时最多保留一位小数。"))
        return None
    return d.quantize(Decimal("0.1"))


def _score(errs: ErrorCollector, field: str, v) -> int | None:
    return _int(errs, field, v, lo=0, hi=100, required=False, message=_("成绩须在 0 到 100 分之间。"))


def _moment(errs: ErrorCollector, field: str, v, *, required: bool = True) -> dt.datetime | None:
    """A point in time: an aware datetime, a naive one (local time), or ISO text."""
    if v is None or v == "":
        if required:
            errs.add(field, _("请填写时间。"))
        return None
    if isinstance(v, str):
        try:
            v = dt.datetime.fromisoformat(v.strip())
        except ValueError:
            errs.add(field, _("日期时间格式不正确。"))
            return None
    if not isinstance(v, dt.datetime):
        errs.add(field, _("日期时间格式不正确。"))
        return None
    if timezone.is_naive(v):
        v = timezone.make_aware(v)
    if not dt.datetime(2000, 1, 1, tzinfo=dt.UTC) <= v <= dt.datetime(2100, 1, 1, tzinfo=dt.UTC):
        errs.add(field, _("时间须在 2000 年至 2100 年之间。"))
        return None
    return v


def _user_ref(errs: ErrorCollector, field: str, v):
    """An active user holding a staff role (a trainer), or None when blank."""
    v = _as_id(v)
    if v in (None, ""):
        return None
    user = get_user_model().objects.filter(pk=v, is_active=True).first() if _is_id(v) else None
    if user is None or not RoleAssignment.objects.filter(user=user).exclude(role=Role.CUSTOMER).exists():
        errs.add(field, _("未知的讲师。"))
        return None
    return user


# ================================================================ permissions

def _need_manage(user) -> None:
    if not principal(user).can(Perm.TRAINING_MANAGE):
        raise PermissionDenied(_("您无权维护培训课程与场次。"))


def _session_locked(user, session_id, *, record: bool = False) -> Session:
    """The session row locked, if ``user`` sees it (else 404) and may change it (else 403)."""
    session_id = _as_id(session_id)
    if not _is_id(session_id) or not reads.session_queryset(user).filter(pk=session_id).exists():
        raise NotFound(_("未找到该培训场次，或您无权查看。"))
    s = Session.objects.select_for_update().select_related("course", "node").get(pk=session_id)
    if not (reads.may_record(user, s) if record else reads.may_manage(user, s.node_id)):
        raise PermissionDenied(_("您无权维护此培训场次。"))
    return s


# ================================================================ courses

def _course_values(errs: ErrorCollector, data: dict, *, current: Course | None) -> dict:
    out = {}
    if "code" in data:
        code = text_field(errs, "code", data["code"], CODE_MAX, required=True)
        if code and not CODE_RE.match(code):
            errs.add("code", _("编码只能包含字母、数字、- 和 _。"))
        elif code and Course.objects.filter(code__iexact=code).exclude(pk=getattr(current, "pk", None)).exists():
            errs.add("code", _("该课程编码已存在。"))
        out["code"] = code.upper()
    if "title" in data:
        out["title"] = text_field(errs, "title", data["title"], TITLE_MAX, required=True)
    if "subject" in data:
        if data["subject"] not in Subject.values:
            errs.add("subject", _("请选择课程类别。"))
        out["subject"] = data["subject"]
    if "hours" in data:
        out["hours"] = _hours(errs, "hours", data["hours"])
    if "pass_mark" in data:
        out["pass_mark"] = _int(errs, "pass_mark", data["pass_mark"], lo=0, hi=100, required=False,
                                message=_("及格分须在 0 到 100 分之间。"))
    if "description" in data:
        out["description"] = text_field(errs, "description", data["description"], DESCRIPTION_MAX)
    if "active" in data:
        out["active"] = _bool(errs, "active", data["active"])
    return out


@transaction.atomic
def course_create(*, user, code, title, subject, hours, pass_mark=None, description: str = "",
                  active: bool = True) -> Course:
    _need_manage(user)
    errs = ErrorCollector()
    values = _course_values(errs, {"code": code, "title": title, "subject": subject, "hours": hours,
                                   "pass_mark": pass_mark, "description": description, "active": active},
                            current=None)
    errs.raise_if_any()
    c = Course.objects.create(**values)
    audit_record(actor=user, action="training.course_create", obj=c, before=None, after=snapshot(c))
    return c


@transaction.atomic
def course_update(*, user, course_id, **changes) -> Course:
    """Change a course; only the fields given change (``code``, ``title``, ``subject``, ``hours``,
    ``pass_mark``, ``description``, ``active``). A changed pass mark applies to scores recorded
    from then on."""
    _need_manage(user)
    unknown = set(changes) - set(COURSE_FIELDS)
    if unknown:
        raise ValidationFailed({k: [_("不支持此字段。")] for k in sorted(unknown)})
    course_id = _as_id(course_id)
    c = Course.objects.select_for_update().filter(pk=course_id).first() if _is_id(course_id) else None
    if c is None:
        raise NotFound(_("未找到该课程。"))
    errs = ErrorCollector()
    values = _course_values(errs, changes, current=c)
    errs.raise_if_any()
    before = snapshot(c)
    for k, v in values.items():
        setattr(c, k, v)
    c.save()
    audit_record(actor=user, action="training.course_update", obj=c, before=before, after=snapshot(c))
    return c


# ================================================================ sessions

def _session_values(errs: ErrorCollector, data: dict, *, current: Session | None) -> dict:
    out = {}
    starts = _moment(errs, "starts_at", data["starts_at"]) if "starts_at" in data else getattr(current, "starts_at", None)
    ends = _moment(errs, "ends_at", data["ends_at"]) if "ends_at" in data else getattr(current, "ends_at", None)
    if "starts_at" in data:
        out["starts_at"] = starts
    if "ends_at" in data:
        out["ends_at"] = ends
    if starts is not None and ends is not None and ("starts_at" in data or "ends_at" in data):
        if ends <= starts:
            errs.add("ends_at", _("结束时间须晚于开始时间。"))
        elif ends - starts > dt.timedelta(days=MAX_SESSION_DAYS):
            errs.add("ends_at", _("一个场次最长 %(n)s 天。") % {"n": MAX_SESSION_DAYS})
    if "trainer_id" in data:
        out["trainer"] = _user_ref(errs, "trainer_id", data["trainer_id"])
    if "place" in data:
        out["place"] = text_field(errs, "place", data["place"], PLACE_MAX)
    if "online" in data:
        out["online"] = _bool(errs, "online", data["online"])
    place = out.get("place", getattr(current, "place", ""))
    online = out.get("online", getattr(current, "online", False))
    if ("place" in data or "online" in data) and not online and not place and "place" not in errs.errors:
        errs.add("place", _("请填写培训地点，或选择线上培训。"))
    if "capacity" in data:
        out["capacity"] = _int(errs, "capacity", data["capacity"], lo=1, hi=MAX_CAPACITY,
                               message=_("名额须在 1 到 %(n)s 之间。") % {"n": MAX_CAPACITY})
    return out


def _enrolled_count(session: Session) -> int:
    return Enrolment.objects.filter(session=session).exclude(status=Attendance.CANCELLED).count()


@transaction.atomic
def session_create(*, user, course_id, node_id, starts_at, ends_at, trainer_id=None, place: str = "",
                   online: bool = False, capacity=30) -> Session:
    """Plan a session of a course at a node (in the caller's ``training.manage`` scope)."""
    _need_manage(user)
    errs = ErrorCollector()
    node_id = _as_id(node_id)
    node = Node.objects.filter(pk=node_id).first() if _is_id(node_id) else None
    if node_id in (None, ""):
        errs.add("node_id", _("请选择组织单位。"))
    elif node is None or not holds_at(user, Perm.TRAINING_VIEW, node.pk):
        raise NotFound(_("未找到该组织单位，或您无权查看。"))
    elif not holds_at(user, Perm.TRAINING_MANAGE, node.pk):
        raise PermissionDenied(_("您无权在此组织单位安排培训。"))
    course_id = _as_id(course_id)
    course = Course.objects.filter(pk=course_id).first() if _is_id(course_id) else None
    if course is None:
        errs.add("course_id", _("请选择课程。"))
    elif not course.active:
        errs.add("course_id", _("该课程已停用。"))
    values = _session_values(errs, {"starts_at": starts_at, "ends_at": ends_at, "trainer_id": trainer_id,
                                    "place": place, "online": online, "capacity": capacity}, current=None)
    errs.raise_if_any()
    s = Session.objects.create(course=course, node=node, **values)
    audit_record(actor=user, action="training.session_create", obj=s, before=None, after=snapshot(s),
                 node_id=node.pk)
    return s


@transaction.atomic
def session_update(*, user, session_id, **changes) -> Session:
    """Change a planned session (time, trainer, place or online, capacity: not below the number
    enrolled); only the fields given change."""
    unknown = set(changes) - set(SESSION_FIELDS)
    if unknown:
        raise ValidationFailed({k: [_("不支持此字段。")] for k in sorted(unknown)})
    s = _session_locked(user, session_id)
    if s.status != SessionStatus.PLANNED:
        raise Conflict(_("只能修改尚未结束的场次。"), code="session_closed")
    errs = ErrorCollector()
    values = _session_values(errs, changes, current=s)
    n = _enrolled_count(s)
    if values.get("capacity") is not None and values["capacity"] < n:
        errs.add("capacity", _("已有 %(n)s 人报名，名额不能少于报名人数。") % {"n": n})
    errs.raise_if_any()
    before = snapshot(s)
    for k, v in values.items():
        setattr(s, k, v)
    s.save()
    audit_record(actor=user, action="training.session_update", obj=s, before=before, after=snapshot(s),
                 node_id=s.node_id)
    return s


@transaction.atomic
def session_cancel(*, user, session_id) -> Session:
    """Cancel a planned session; its enrolments are cancelled with it."""
    s = _session_locked(user, session_id)
    if s.status != SessionStatus.PLANNED:
        raise Conflict(_("只能取消尚未结束的场次。"), code="session_closed")
    before = snapshot(s)
    s.status = SessionStatus.CANCELLED
    s.save(update_fields=["status"])
    n = Enrolment.objects.filter(session=s, status=Attendance.ENROLLED).update(status=Attendance.CANCELLED)
    audit_record(actor=user, action="training.session_cancel", obj=s, before=before,
                 after={**snapshot(s), "enrolments_cancelled": n}, node_id=s.node_id)
    return s


@transaction.atomic
def enrol(*, user, session_id, employee_ids) -> list[Enrolment]:
    """Enrol employees in a planned session. Each must be active staff of the session's subtree
    within the caller's ``training.manage`` scope (out of that scope: 404); one already enrolled
    is left as is, one whose enrolment was cancelled is enrolled again. The session's row lock
    keeps the enrolled number within its capacity (409 when it would not fit)."""
    s = _session_locked(user, session_id)
    if s.status != SessionStatus.PLANNED:
        raise Conflict(_("该场次已结束或已取消，不能报名。"), code="session_closed")
    errs = ErrorCollector()
    if isinstance(employee_ids, int | str):
        employee_ids = [employee_ids]
    if not isinstance(employee_ids, list | tuple) or not employee_ids:
        raise ValidationFailed({"employee_ids": [_("请选择要报名的员工。")]})
    if len(employee_ids) > MAX_ENROL:
        raise ValidationFailed({"employee_ids": [_("一次最多报名 %(n)s 人。") % {"n": MAX_ENROL}]})
    ids = []
    for i, v in enumerate(employee_ids):
        v = _as_id(v)
        if not _is_id(v):
            errs.add(f"employee_ids[{i}]", _("未知的员工。"))
        elif v not in ids:
            ids.append(v)
    errs.raise_if_any()
    emps = {e.pk: e for e in scoped(Employee.objects.filter(pk__in=ids), user, Perm.TRAINING_MANAGE)
            .select_related("node")}
    if len(emps) != len(ids):
        raise NotFound(_("未找到该员工，或其不在您的培训管理范围内。"))
    for i, eid in enumerate(ids):
        e = emps[eid]
        if not e.active:
            errs.add(f"employee_ids[{i}]", _("%(name)s 已离职。") % {"name": e.name})
        elif not e.node.path.startswith(s.node.path):
            errs.add(f"employee_ids[{i}]", _("%(name)s 不属于本场次的组织单位（%(node)s）。")
                     % {"name": e.name, "node": s.node.name})
    errs.raise_if_any()
    existing = {en.employee_id: en for en in Enrolment.objects.filter(session=s, employee_id__in=ids)}
    new = [eid for eid in ids if eid not in existing or existing[eid].status == Attendance.CANCELLED]
    n = _enrolled_count(s)
    if n + len(new) > s.capacity:
        msg = _("名额已满：本场次共 %(cap)s 个名额，已报名 %(n)s 人，还能报名 %(left)s 人。") % {
            "cap": s.capacity, "n": n, "left": max(s.capacity - n, 0)}
        raise Conflict(msg, errors={"employee_ids": [msg]}, code="session_full")
    out = []
    for eid in ids:
        en = existing.get(eid)
        if en is None:
            en = Enrolment.objects.create(session=s, employee=emps[eid])
            audit_record(actor=user, action="training.enrol", obj=en, before=None, after=snapshot(en),
                         node_id=s.node_id)
        elif en.status == Attendance.CANCELLED:
            before = snapshot(en)
            en.status = Attendance.ENROLLED
            en.save(update_fields=["status"])
            audit_record(actor=user, action="training.enrol", obj=en, before=before, after=snapshot(en),
                         node_id=s.node_id)
        out.append(en)
    return out


@transaction.atomic
def enrolment_cancel(*, user, enrolment_id) -> Enrolment:
    """Take an employee off a planned session."""
    enrolment_id = _as_id(enrolment_id)
    en = Enrolment.objects.filter(pk=enrolment_id).first() if _is_id(enrolment_id) else None
    if en is None:
        raise NotFound(_("未找到该报名记录。"))
    s = _session_locked(user, en.session_id)
    en = Enrolment.objects.select_for_update().get(pk=en.pk)
    if s.status != SessionStatus.PLANNED or en.status != Attendance.ENROLLED:
        raise Conflict(_("只能取消尚未开课场次的报名。"), code="enrolment_closed")
    before = snapshot(en)
    en.status = Attendance.CANCELLED
    en.save(update_fields=["status"])
    audit_record(actor=user, action="training.enrol_cancel", obj=en, before=before, after=snapshot(en),
                 node_id=s.node_id)
    return en


@transaction.atomic
def attendance_record(*, user, session_id, rows, now: dt.datetime | None = None) -> list[Enrolment]:
    """Record who attended a session that has begun, their hours (default: the course's) and exam
    score (0–100; ``passed`` = score ≥ the course's pass mark, none without a pass mark or a
    score). ``rows``: ``[{employee_id, status: attended|absent, hours?, score?}]`` for enrolled
    employees; the others are left as they are. The session is then done. May be corrected later."""
    now = now or timezone.now()
    s = _session_locked(user, session_id, record=True)
    if s.status == SessionStatus.CANCELLED:
        raise Conflict(_("该场次已取消。"), code="session_cancelled")
    if s.starts_at > now:
        raise ValidationFailed({"session": [_("场次尚未开始，不能记录出勤和成绩。")]})
    if not isinstance(rows, list | tuple) or not rows:
        raise ValidationFailed({"rows": [_("请填写出勤情况。")]})
    if len(rows) > MAX_CAPACITY:
        raise ValidationFailed({"rows": [_("最多 %(n)s 行。") % {"n": MAX_CAPACITY}]})
    enrolments = {en.employee_id: en for en in Enrolment.objects.select_for_update().filter(session=s)
                  .exclude(status=Attendance.CANCELLED).select_related("employee")}
    errs = ErrorCollector()
    seen: set[int] = set()
    changes: list[tuple[Enrolment, dict]] = []
    for i, row in enumerate(rows):
        f = f"rows[{i}]"
        if not isinstance(row, dict):
            errs.add(f, _("格式不正确，应为对象。"))
            continue
        unknown = set(row) - {"employee_id", "status", "hours", "score"}
        if unknown:
            errs.add(f, _("不支持此字段。"))
        eid = _as_id(row.get("employee_id"))
        en = enrolments.get(eid) if _is_id(eid) else None
        if en is None:
            errs.add(f"{f}.employee_id", _("该员工未报名本场次。"))
        elif eid in seen:
            errs.add(f"{f}.employee_id", _("同一员工重复填写。"))
        seen.add(eid)
        status = row.get("status")
        if status not in (Attendance.ATTENDED, Attendance.ABSENT):
            errs.add(f"{f}.status", _("出勤须为“已参加”或“缺席”。"))
            continue
        hours = _hours(errs, f"{f}.hours", row.get("hours"), required=False)
        score = _score(errs, f"{f}.score", row.get("score"))
        if status == Attendance.ABSENT:
            if score is not None:
                errs.add(f"{f}.score", _("缺席的员工不能有考试成绩。"))
            hours = Decimal(0)
        elif hours is None and f"{f}.hours" not in errs.errors:
            hours = s.course.hours
        if en is not None:
            passed = None
            if status == Attendance.ATTENDED and score is not None and s.course.pass_mark is not None:
                passed = score >= s.course.pass_mark
            changes.append((en, {"status": status, "hours": hours, "score": score, "passed": passed}))
    errs.raise_if_any()
    out = []
    for en, values in changes:
        before = snapshot(en)
        for k, v in values.items():
            setattr(en, k, v)
        en.recorded_at = now
        en.save(update_fields=["status", "hours", "score", "passed", "recorded_at"])
        audit_record(actor=user, action="training.attendance", obj=en, before=before, after=snapshot(en),
                     node_id=s.node_id)
        out.append(en)
    if s.status != SessionStatus.DONE:
        before = snapshot(s)
        s.status = SessionStatus.DONE
        s.save(update_fields=["status"])
        audit_record(actor=user, action="training.session_done", obj=s, before=before, after=snapshot(s),
                     node_id=s.node_id)
    return out


# ================================================================ safety events

@transaction.atomic
def safety_event_record(*, user, employee_id, occurred_on, severity, description, order_id=None,
                        now: dt.datetime | None = None) -> SafetyEvent:
    """Record a safety incident or violation of an employee (``appraisal.review`` or
    ``training.manage`` over their node). ``order_id``: an order the employee worked on."""
    now = now or timezone.now()
    if not reads.may_safety(user):
        raise PermissionDenied(_("您无权记录安全事件。"))
    employee_id = _as_id(employee_id)
    e = (reads.safety_employees(user).select_related("node").filter(pk=employee_id).first()
         if _is_id(employee_id) else None)
    if e is None:
        raise NotFound(_("未找到该员工，或其不在您的管理范围内。"))
    errs = ErrorCollector()
    day = date_field(errs, "occurred_on", occurred_on, required=True)
    if day is not None and day > timezone.localdate(now):
        errs.add("occurred_on", _("发生日期不能晚于今天。"))
    elif day is not None and day < e.hire_date:
        errs.add("occurred_on", _("发生日期不能早于入职日期（%(d)s）。") % {"d": e.hire_date.isoformat()})
    if severity not in SafetyEvent.Severity.values:
        errs.add("severity", _("请选择程度。"))
    description = text_field(errs, "description", description, SAFETY_TEXT_MAX, required=True)
    order = None
    order_id = _as_id(order_id)
    if order_id not in (None, ""):
        order = WorkOrder.objects.filter(pk=order_id).first() if _is_id(order_id) else None
        if order is None or order.assignee_id != e.pk:
            errs.add("order_id", _("该工单不存在，或不是此员工负责的工单。"))
            order = None
    errs.raise_if_any()
    ev = SafetyEvent.objects.create(employee=e, occurred_on=day, severity=severity, description=description,
                                    order=order, recorded_by=user, recorded_at=now)
    audit_record(actor=user, action="training.safety_event", obj=ev, before=None, after=snapshot(ev),
                 node_id=e.node_id)
    return ev


# ================================================================ certificates

def certificate_add(*, user, employee_id, type_code, number, issued_on, expires_on=None) -> Certification:
    """Add a certificate to an employee (``staff.edit`` over them; the expiry defaults to the
    type's validity): ``org.services.certification_add``."""
    employee_id = _as_id(employee_id)
    if not _is_id(employee_id):
        raise NotFound()
    return org_services.certification_add(user=user, employee_id=employee_id, type_code=type_code, number=number,
                                          issued_on=issued_on, expires_on=expires_on)


@transaction.atomic
def certificate_renew(*, user, certification_id, issued_on, expires_on=None, number: str = "") -> Certification:
    """Renew a certificate: its new issue date (after the old one), expiry (default: issue date +
    the type's validity; after the old expiry) and, when it changed, its number. The old dates
    stay in the audit trail."""
    c = reads.certificate_for_edit(user, _as_id(certification_id))
    c = Certification.objects.select_for_update().select_related("type", "employee").get(pk=c.pk)
    errs = ErrorCollector()
    issued = date_field(errs, "issued_on", issued_on, required=True)
    expires = date_field(errs, "expires_on", expires_on, required=False)
    number = text_field(errs, "number", number, NUMBER_MAX) or c.number
    if issued is not None and issued <= c.issued_on:
        errs.add("issued_on", _("续期的发证日期须晚于原发证日期（%(d)s）。") % {"d": c.issued_on.isoformat()})
    if issued is not None and issued > timezone.localdate():
        errs.add("issued_on", _("发证日期不能晚于今天。"))
    if issued is not None and expires is None and "expires_on" not in errs.errors:
        expires = issued + relativedelta(months=c.type.validity_months)
    if issued is not None and expires is not None:
        if expires <= issued:
            errs.add("expires_on", _("有效期须晚于发证日期。"))
        elif expires <= c.expires_on:
            errs.add("expires_on", _("续期后的有效期须晚于原有效期（%(d)s）。") % {"d": c.expires_on.isoformat()})
    if number != c.number and Certification.objects.filter(type=c.type, number=number).exists():
        errs.add("number", _("该证书编号已登记。"))
    errs.raise_if_any()
    before = snapshot(c)
    c.issued_on, c.expires_on, c.number = issued, expires, number
    c.save(update_fields=["issued_on", "expires_on", "number"])
    audit_record(actor=user, action="certification.renew", obj=c, before=before, after=snapshot(c),
                 node_id=c.employee.node_id)
    return c


# ================================================================ reminders

def _tell(users, *, event: str, body: str, ref: str, ref_id: int, node_id: int) -> int:
    """Staff messages kept in the outbox and delivered after commit (like
    ``notifications.services.notify_users``, with the text written here)."""
    from aftersales.notifications.tasks import deliver_task

    n = 0
    for u in users:
        m = Message(channel="staff", event=event, user=u, address=u.email or u.get_username(), subject=body[:60],
                    body=body, ref=ref, ref_id=ref_id, node_id=node_id)
        m.save()
        transaction.on_commit(lambda pk=m.pk: deliver_task.delay(pk))
        n += 1
    return n


def _told(event: str, refs) -> set[tuple[str, int]]:
    refs = sorted(set(refs))
    out: set[tuple[str, int]] = set()
    for i in range(0, len(refs), 500):
        out |= set(Message.objects.filter(event=event, ref__in=refs[i:i + 500]).values_list("ref", "user_id"))
    return out


def training_reminders(now: dt.datetime | None = None) -> int:
    """Tell the managers of each employee's node (or its nearest ancestor with a manager), once:
    of the employee being overdue for training (per due day: once more after the next training
    falls due again), and of a certificate expiring within 30 days or expired (per expiry day:
    a renewal starts over). Returns the number of messages."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    overdue = reads.overdue_rows(Employee.objects.all(), today)
    certs = list(reads.latest_certificates_due(today))
    managers = managers_of({r.employee.node_id for r in overdue} | {c.employee.node_id for c in certs})
    n = 0
    with transaction.atomic():
        told = _told(EVENT_OVERDUE, [f"TRN-{r.employee.pk}-{r.due:%Y%m%d}" for r in overdue])
        for r in overdue:
            e = r.employee
            ref = f"TRN-{e.pk}-{r.due:%Y%m%d}"
            users = [u for u in managers.get(e.node_id, []) if (ref, u.pk) not in told]
            if not users:
                continue
            last = r.last_trained.isoformat() if r.last_trained else _zh(_("从未参加培训（入职 %(d)s）"),
                                                                         d=e.hire_date.isoformat())
            body = _zh(_("%(name)s（%(no)s，%(node)s，%(grade)s）培训已逾期：按规定每 %(months)s 个月培训一次，"
                         "最近一次 %(last)s，应于 %(due)s 前参加培训。"),
                       name=e.name, no=e.employee_no, node=e.node.name, grade=e.get_grade_display(),
                       months=r.months, last=last, due=r.due.isoformat())
            n += _tell(users, event=EVENT_OVERDUE, body=body, ref=ref, ref_id=e.pk, node_id=e.node_id)
        told = _told(EVENT_CERT, [f"CERT-{c.pk}-{c.expires_on:%Y%m%d}" for c in certs])
        for c in certs:
            e = c.employee
            ref = f"CERT-{c.pk}-{c.expires_on:%Y%m%d}"
            users = [u for u in managers.get(e.node_id, []) if (ref, u.pk) not in told]
            if not users:
                continue
            if c.expires_on < today:
                body = _zh(_("%(name)s（%(no)s，%(node)s）的%(cert)s（%(number)s）已于 %(date)s 过期，"
                             "过期期间不能承接需要此证书的工单，请尽快续期。"),
                           name=e.name, no=e.employee_no, node=e.node.name, cert=c.type.name, number=c.number,
                           date=c.expires_on.isoformat())
            else:
                body = _zh(_("%(name)s（%(no)s，%(node)s）的%(cert)s（%(number)s）将于 %(date)s 到期"
                             "（还有 %(days)s 天），请及时续期。"),
                           name=e.name, no=e.employee_no, node=e.node.name, cert=c.type.name, number=c.number,
                           date=c.expires_on.isoformat(), days=(c.expires_on - today).days)
            n += _tell(users, event=EVENT_CERT, body=body, ref=ref, ref_id=c.pk, node_id=e.node_id)
    return n
