"""Reads of training (R-TRN) and certificates, scoped once.

Who sees what:

- courses: anybody signed in (the catalogue of what is taught);
- sessions: those at a node in the caller's ``training.view`` scope or above it (a session held
  at the centre or at headquarters is open to the staff below), and those the caller is enrolled
  in or gives (their trainer);
- a person's training record: one's own always; another's with ``training.view`` over their node;
- the overdue list (cadence rules): the active staff in ``training.view`` scope;
- safety events: the staff in ``appraisal.review`` or ``training.manage`` scope;
- certificates: ``staff.view`` (the expiring list), ``staff.edit`` (add, renew).

Out of scope is 404 (``NotFound``), like absent.

Cadence: an employee of a grade with a ``CadenceRule`` of *m* months is due for training *m*
months after the end (local day) of the last session they attended, or, never trained, *m*
months after their hire date; overdue when that due day is before today (on the due day itself
they are not yet overdue). Months are calendar months (31 Aug + 6 months = 28/29 Feb).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from aftersales.core.errors import NotFound
from aftersales.org.models import Certification, Employee, Node
from aftersales.org.roles import Perm
from aftersales.org.scope import principal, scope_filter, scoped
from aftersales.org.selectors import certifications_expiring

from .models import Attendance, CadenceRule, Course, Enrolment, SafetyEvent, Session, SessionStatus, Subject

EXPIRING_DAYS = 30
CALENDAR_MAX_DAYS = 62
SESSION_ORDERING = ["starts_at", "id"]
SAFETY_ORDERING = ["-occurred_on", "-id"]
ACTIVE_ENROLMENT = ~Q(status=Attendance.CANCELLED)


def _ancestor_ids(path: str) -> list[int]:
    return [int(x) for x in path.strip("/").split("/") if x]


def local_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start 00:00, the day after ``end`` 00:00) in local time."""
    tz = timezone.get_current_timezone()
    return (dt.datetime.combine(start, dt.time(0), tz),
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tz))


def person_label(user) -> str:
    """An employee's name (their user name when they are not an employee)."""
    if user is None:
        return ""
    emp = Employee.objects.filter(user_id=user.pk).values_list("name", flat=True).first()
    return emp or user.get_username()


def my_employee(user) -> Employee | None:
    if user is None or not user.is_authenticated:
        return None
    return Employee.objects.select_related("node").filter(user=user).first()


# ================================================================ courses

def course_queryset(*, active_only: bool = False) -> QuerySet[Course]:
    qs = Course.objects.all()
    if active_only:
        qs = qs.filter(active=True)
    return qs.order_by("subject", "code")


def course_get(course_id) -> Course:
    c = Course.objects.filter(pk=course_id).first() if isinstance(course_id, int) else None
    if c is None:
        raise NotFound()
    return c


def course_list() -> list[Course]:
    """Every course with its number of sessions held or planned (one query)."""
    return list(course_queryset().annotate(
        n_sessions=Count("sessions", filter=~Q(sessions__status=SessionStatus.CANCELLED))))


# ================================================================ sessions

def may_manage(user, node_id: int) -> bool:
    ids = principal(user).node_ids_for(Perm.TRAINING_MANAGE)
    return ids is None or node_id in ids


def may_record(user, session: Session) -> bool:
    """Attendance and exam scores: ``training.manage`` over the session's node, or its trainer."""
    return may_manage(user, session.node_id) or (user is not None and session.trainer_id == user.pk)


def session_queryset(user) -> QuerySet[Session]:
    """The sessions ``user`` sees (see the module docstring)."""
    p = principal(user)
    qs = Session.objects.all()
    ids = p.node_ids_for(Perm.TRAINING_VIEW)
    if ids is None:
        return qs
    mine = Q(trainer_id=user.pk) | Q(Exists(Enrolment.objects.filter(session_id=OuterRef("pk"),
                                                                        employee__user_id=user.pk)))
    if ids:
        above = {a for path in p.paths_for(Perm.TRAINING_VIEW) for a in _ancestor_ids(path)}
        mine |= Q(node_id__in=sorted(set(ids) | above))
    return qs.filter(mine)


def with_counts(qs: QuerySet[Session]) -> QuerySet[Session]:
    return qs.select_related("course", "node", "trainer__employee").annotate(
        n_enrolled=Count("enrolments", filter=~Q(enrolments__status=Attendance.CANCELLED)))


def session_get(user, session_id) -> Session:
    s = with_counts(session_queryset(user)).filter(pk=session_id).first() if isinstance(session_id, int) else None
    if s is None:
        raise NotFound()
    return s


def sessions_between(user, start: dt.date, end: dt.date, *, include_cancelled: bool = True) -> list[Session]:
    """The visible sessions starting on the local days [start, end] (at most ``CALENDAR_MAX_DAYS``)."""
    end = min(end, start + dt.timedelta(days=CALENDAR_MAX_DAYS))
    a, b = local_bounds(start, end)
    qs = session_queryset(user).filter(starts_at__gte=a, starts_at__lt=b)
    if not include_cancelled:
        qs = qs.exclude(status=SessionStatus.CANCELLED)
    return list(with_counts(qs).order_by(*SESSION_ORDERING))


def session_list(user, *, start: dt.date | None = None, end: dt.date | None = None, course_id: int | None = None,
                 status: str = "") -> QuerySet[Session]:
    qs = session_queryset(user)
    if start is not None:
        qs = qs.filter(starts_at__gte=local_bounds(start, start)[0])
    if end is not None:
        qs = qs.filter(starts_at__lt=local_bounds(end, end)[1])
    if course_id:
        qs = qs.filter(course_id=course_id)
    if status:
        qs = qs.filter(status=status)
    return with_counts(qs)


def session_enrolments(session: Session) -> list[Enrolment]:
    return list(Enrolment.objects.filter(session=session).select_related("employee__node")
                .order_by("employee__employee_no", "id"))


def enrolable_employees(user, session: Session) -> QuerySet[Employee]:
    """Active staff of the session's subtree within the caller's ``training.manage`` scope who
    are not enrolled yet (the choices of the enrol form)."""
    taken = Enrolment.objects.filter(session=session).filter(ACTIVE_ENROLMENT).values("employee_id")
    return (scoped(Employee.objects.filter(active=True, node__path__startswith=session.node.path), user,
                   Perm.TRAINING_MANAGE)
            .exclude(pk__in=taken).select_related("node").order_by("node__path", "employee_no"))


# ================================================================ cadence

def cadence_rules() -> dict[str, int]:
    return dict(CadenceRule.objects.values_list("grade", "months"))


def due_date(base: dt.date, months: int) -> dt.date:
    return base + relativedelta(months=months)


@dataclass
class CadenceRow:
    employee: Employee
    months: int | None
    last_trained: dt.date | None   # local day the last attended session ended
    due: dt.date | None
    overdue: bool
    days_overdue: int = 0


def cadence_of(e: Employee, months: int | None, last_end: dt.datetime | None, today: dt.date) -> CadenceRow:
    last = timezone.localdate(last_end) if last_end is not None else None
    if months is None:
        return CadenceRow(employee=e, months=None, last_trained=last, due=None, overdue=False)
    due = due_date(last or e.hire_date, months)
    late = (today - due).days
    return CadenceRow(employee=e, months=months, last_trained=last, due=due, overdue=late > 0,
                      days_overdue=max(late, 0))


def with_last_trained(qs: QuerySet[Employee]) -> QuerySet[Employee]:
    return qs.annotate(last_end=Max("enrolments__session__ends_at",
                                    filter=Q(enrolments__status=Attendance.ATTENDED)))


def overdue_rows(qs: QuerySet[Employee], today: dt.date) -> list[CadenceRow]:
    """The overdue among the active employees of ``qs``, most overdue first (two queries)."""
    rules = cadence_rules()
    emps = with_last_trained(qs.filter(active=True, grade__in=sorted(rules))).select_related("node")
    rows = [cadence_of(e, rules[e.grade], e.last_end, today) for e in emps]
    return sorted((r for r in rows if r.overdue), key=lambda r: (r.due, r.employee.employee_no))


def overdue_list(user, *, today: dt.date | None = None, node: Node | None = None) -> list[CadenceRow]:
    qs = scoped(Employee.objects.all(), user, Perm.TRAINING_VIEW)
    if node is not None:
        qs = qs.filter(node__path__startswith=node.path)
    return overdue_rows(qs, today or timezone.localdate())


def training_nodes(user) -> list[Node]:
    ids = principal(user).node_ids_for(Perm.TRAINING_VIEW)
    qs = Node.objects.all() if ids is None else Node.objects.filter(pk__in=sorted(ids or [0]))
    return list(qs.order_by("path").only("id", "name", "kind", "path"))


def training_node(user, node_id) -> Node:
    node = Node.objects.filter(pk=node_id).first() if isinstance(node_id, int) else None
    if node is None:
        raise NotFound()
    ids = principal(user).node_ids_for(Perm.TRAINING_VIEW)
    if ids is not None and node.pk not in ids:
        raise NotFound()
    return node


# ================================================================ a person's training record

@dataclass
class SubjectHours:
    subject: str
    label: str
    hours: Decimal
    sessions: int


@dataclass
class TrainingRecord:
    employee: Employee
    enrolments: list[Enrolment]
    subjects: list[SubjectHours]
    total_hours: Decimal
    cadence: CadenceRow
    certifications: list[Certification] = field(default_factory=list)
    mean_score: float | None = None
    passed: int = 0
    failed: int = 0


def employee_for_record(user, employee_id) -> Employee:
    """The employee whose record ``user`` may read: their own, or one in ``training.view`` scope."""
    if not isinstance(employee_id, int):
        raise NotFound()
    qs = Employee.objects.select_related("node", "department")
    e = qs.filter(pk=employee_id).first()
    if e is None:
        raise NotFound()
    if e.user_id == getattr(user, "pk", None):
        return e
    f = scope_filter(user, Perm.TRAINING_VIEW)
    if f is not None and not Employee.objects.filter(f, pk=e.pk).exists():
        raise NotFound()
    return e


def training_record(user, employee_id, *, today: dt.date | None = None) -> TrainingRecord:
    today = today or timezone.localdate()
    e = employee_for_record(user, employee_id)
    enrolments = list(Enrolment.objects.filter(employee=e).select_related("session__course", "session__node")
                      .order_by("-session__starts_at", "-id"))
    per = {s: [Decimal(0), 0] for s in Subject.values}
    scores = []
    passed = failed = 0
    last_end = None
    for en in enrolments:
        if en.status == Attendance.ATTENDED:
            per[en.session.course.subject][0] += en.hours
            per[en.session.course.subject][1] += 1
            if last_end is None or en.session.ends_at > last_end:
                last_end = en.session.ends_at
            if en.score is not None:
                scores.append(en.score)
            if en.passed is True:
                passed += 1
            elif en.passed is False:
                failed += 1
    labels = dict(Subject.choices)
    subjects = [SubjectHours(s, str(labels[s]), h, n) for s, (h, n) in per.items()]
    rules = cadence_rules()
    cadence = cadence_of(e, rules.get(e.grade), last_end, today)
    certs = list(Certification.objects.filter(employee=e).select_related("type").order_by("expires_on", "id"))
    return TrainingRecord(employee=e, enrolments=enrolments, subjects=subjects,
                          total_hours=sum((x.hours for x in subjects), Decimal(0)), cadence=cadence,
                          certifications=certs, mean_score=round(sum(scores) / len(scores), 1) if scores else None,
                          passed=passed, failed=failed)


def hours_by_subject(employee_ids, start: dt.date, end: dt.date) -> dict[int, dict[str, Decimal]]:
    """Attended hours per employee and subject of the sessions ending on the local days [start, end]."""
    a, b = local_bounds(start, end)
    out: dict[int, dict[str, Decimal]] = {}
    rows = (Enrolment.objects.filter(employee_id__in=list(employee_ids), status=Attendance.ATTENDED,
                                     session__ends_at__gte=a, session__ends_at__lt=b)
            .values("employee_id", "session__course__subject").annotate(h=Sum("hours")).order_by())
    for r in rows:
        out.setdefault(r["employee_id"], {})[r["session__course__subject"]] = r["h"]
    return out


# ================================================================ safety events

def safety_scope(user) -> Q | None:
    """The filter on employees for safety events: ``appraisal.review`` or ``training.manage``
    scope (None: everywhere; an impossible filter when neither is held)."""
    fs = [scope_filter(user, Perm.APPRAISAL_REVIEW), scope_filter(user, Perm.TRAINING_MANAGE)]
    if any(f is None for f in fs):
        return None
    return fs[0] | fs[1]


def may_safety(user) -> bool:
    p = principal(user)
    return p.can(Perm.APPRAISAL_REVIEW) or p.can(Perm.TRAINING_MANAGE)


def safety_employees(user) -> QuerySet[Employee]:
    f = safety_scope(user)
    qs = Employee.objects.all()
    return qs if f is None else qs.filter(f)


def safety_events(user, *, employee_id: int | None = None, start: dt.date | None = None,
                  end: dt.date | None = None) -> QuerySet[SafetyEvent]:
    qs = SafetyEvent.objects.filter(employee__in=safety_employees(user).values("pk"))
    if employee_id:
        qs = qs.filter(employee_id=employee_id)
    if start:
        qs = qs.filter(occurred_on__gte=start)
    if end:
        qs = qs.filter(occurred_on__lte=end)
    return qs.select_related("employee__node", "order", "recorded_by")


# ================================================================ certificates

def certificates_expiring(user, *, within_days: int = EXPIRING_DAYS, today: dt.date | None = None,
                          limit: int = 500) -> list:
    """``org.selectors.certifications_expiring`` (``staff.view`` scope; the expired ones of
    active staff too), soonest first, each with ``days_left``."""
    today = today or timezone.localdate()
    certs = list(certifications_expiring(user, within_days=within_days, on=today)[:limit])
    for c in certs:
        c.days_left = (c.expires_on - today).days
    return certs


def certificate_for_edit(user, cert_id) -> Certification:
    """A certificate of an employee in ``staff.edit`` scope, else 404."""
    if not isinstance(cert_id, int):
        raise NotFound()
    c = (Certification.objects.filter(pk=cert_id, employee__in=scoped(Employee.objects.all(), user,
                                                                       Perm.STAFF_EDIT).values("pk"))
         .select_related("type", "employee__node").first())
    if c is None:
        raise NotFound()
    return c


def latest_certificates_due(on: dt.date, *, within_days: int = EXPIRING_DAYS) -> QuerySet[Certification]:
    """Certificates of active staff expiring by ``on + within_days`` (or expired) that were not
    superseded by a later certificate of the same type (the reminders' list; no scoping)."""
    newer = Certification.objects.filter(employee_id=OuterRef("employee_id"), type_id=OuterRef("type_id"),
                                         expires_on__gt=OuterRef("expires_on"))
    return (Certification.objects.filter(employee__active=True, expires_on__lte=on + dt.timedelta(days=within_days))
            .exclude(Exists(newer)).select_related("employee__node", "type").order_by("expires_on", "id"))
