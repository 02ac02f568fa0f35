"""The staff API, training (``/api/staff/training/``): courses, sessions, enrolment, attendance
and exam scores, training records, the overdue list, safety events and certificates. No
``from __future__ import annotations`` here (see aftersales.api.permissions).

Thin over ``services_training`` (writes: 400 naming every bad field, 403, 404 out of scope, 409
a full, closed or cancelled session) and ``selectors_training`` (reads, scoped once)."""

import datetime as dt
from decimal import Decimal
from typing import Literal

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Field, Query, Router, Schema, Status
from pydantic import conlist

from aftersales.api.permissions import AUTHENTICATED, requires
from aftersales.api.schemas import Cursor, Id, In, Limit, NodeRef, PathId, QueryId, Text, page_of, paginate
from aftersales.core.errors import NotFound, PermissionDenied, ValidationFailed
from aftersales.org.roles import Perm
from aftersales.org.selectors import certifications_expiring

from . import selectors_training as reads
from . import services_training as services
from .models import SafetyEvent, SessionStatus, Subject

router = Router(tags=["staff"])


# ================================================================ schemas

class UserRef(Schema):
    id: int
    username: str
    name: str


def _user(u) -> dict | None:
    return None if u is None else {"id": u.pk, "username": u.get_username(), "name": reads.person_label(u)}


class EmployeeRef(Schema):
    id: int
    employee_no: str
    name: str
    node: NodeRef


class CourseOut(Schema):
    id: int
    code: str
    title: str
    subject: str
    subject_label: str
    hours: Decimal
    pass_mark: int | None
    description: str
    active: bool

    @staticmethod
    def resolve_subject_label(obj):
        return str(obj.get_subject_display())


class CourseIn(In):
    code: Text(30)
    title: Text(100)
    subject: Subject
    hours: Decimal
    pass_mark: int | None = Field(None, description="及格分 0–100；无考试则为 null")
    description: Text(5000) = ""
    active: bool = True


class CoursePatch(In):
    code: Text(30) | None = None
    title: Text(100) | None = None
    subject: Subject | None = None
    hours: Decimal | None = None
    pass_mark: int | None = None
    description: Text(5000) | None = None
    active: bool | None = None


class SessionOut(Schema):
    id: int
    course: CourseOut
    node: NodeRef
    starts_at: dt.datetime
    ends_at: dt.datetime
    trainer: UserRef | None
    place: str
    online: bool
    capacity: int
    enrolled: int
    status: str
    status_label: str

    @staticmethod
    def resolve_trainer(obj):
        return _user(obj.trainer)

    @staticmethod
    def resolve_enrolled(obj):
        return getattr(obj, "n_enrolled", 0)

    @staticmethod
    def resolve_status_label(obj):
        return str(obj.get_status_display())


SessionPage = page_of(SessionOut)


class EnrolmentOut(Schema):
    id: int
    employee: EmployeeRef
    status: str
    hours: Decimal
    score: int | None
    passed: bool | None
    recorded_at: dt.datetime | None


class SessionDetailOut(SessionOut):
    enrolments: list[EnrolmentOut]

    @staticmethod
    def resolve_enrolments(obj):
        return reads.session_enrolments(obj)


class SessionIn(In):
    course_id: Id
    node_id: Id
    starts_at: dt.datetime = Field(description="无时区时按本地时间（Asia/Shanghai）")
    ends_at: dt.datetime
    trainer_id: Id | None = None
    place: Text(200) = ""
    online: bool = False
    capacity: int = Field(30, description="名额 1–1000")


class SessionPatch(In):
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    trainer_id: Id | None = None
    place: Text(200) | None = None
    online: bool | None = None
    capacity: int | None = None


class EnrolIn(In):
    employee_ids: conlist(Id, min_length=1, max_length=500)


class AttendanceRowIn(In):
    employee_id: Id
    status: Literal["attended", "absent"]
    hours: Decimal | None = Field(None, description="留空按课程学时")
    score: int | None = Field(None, description="考试成绩 0–100")


class AttendanceIn(In):
    rows: conlist(AttendanceRowIn, min_length=1, max_length=1000)


class SubjectHoursOut(Schema):
    subject: str
    label: str
    hours: Decimal
    sessions: int


class CadenceOut(Schema):
    months: int | None
    last_trained: dt.date | None
    due: dt.date | None
    overdue: bool
    days_overdue: int


class RecordEnrolmentOut(Schema):
    id: int
    session_id: int
    course: str
    subject: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str
    hours: Decimal
    score: int | None
    passed: bool | None

    @staticmethod
    def resolve_course(obj):
        return obj.session.course.title

    @staticmethod
    def resolve_subject(obj):
        return obj.session.course.subject

    @staticmethod
    def resolve_starts_at(obj):
        return obj.session.starts_at

    @staticmethod
    def resolve_ends_at(obj):
        return obj.session.ends_at


class CertificationOut(Schema):
    id: int
    type: str
    type_name: str
    number: str
    issued_on: dt.date
    expires_on: dt.date

    @staticmethod
    def resolve_type(obj):
        return obj.type.code

    @staticmethod
    def resolve_type_name(obj):
        return obj.type.name


class RecordOut(Schema):
    employee: EmployeeRef
    grade: str
    hire_date: dt.date
    total_hours: Decimal
    mean_score: float | None
    passed: int
    failed: int
    cadence: CadenceOut
    subjects: list[SubjectHoursOut]
    enrolments: list[RecordEnrolmentOut]
    certifications: list[CertificationOut]

    @staticmethod
    def resolve_grade(obj):
        return obj.employee.grade

    @staticmethod
    def resolve_hire_date(obj):
        return obj.employee.hire_date


class OverdueOut(Schema):
    employee: EmployeeRef
    grade: str
    months: int
    last_trained: dt.date | None
    due: dt.date
    days_overdue: int

    @staticmethod
    def resolve_grade(obj):
        return obj.employee.grade


class SafetyEventOut(Schema):
    id: int
    employee: EmployeeRef
    occurred_on: dt.date
    severity: str
    description: str
    order_id: int | None
    recorded_by: UserRef | None
    recorded_at: dt.datetime

    @staticmethod
    def resolve_recorded_by(obj):
        return _user(obj.recorded_by)


SafetyPage = page_of(SafetyEventOut)


class SafetyEventIn(In):
    employee_id: Id
    occurred_on: dt.date
    severity: SafetyEvent.Severity
    description: Text(500)
    order_id: Id | None = None


class ExpiringOut(CertificationOut):
    employee: EmployeeRef
    expired: bool
    days_left: int

    @staticmethod
    def resolve_expired(obj):
        return obj.expires_on < timezone.localdate()

    @staticmethod
    def resolve_days_left(obj):
        return (obj.expires_on - timezone.localdate()).days


ExpiringPage = page_of(ExpiringOut)


class CertificateIn(In):
    employee_id: Id
    type: Text(30)
    number: Text(50)
    issued_on: dt.date
    expires_on: dt.date | None = Field(None, description="留空按证书类型的有效期计算")


class RenewIn(In):
    issued_on: dt.date
    expires_on: dt.date | None = Field(None, description="留空按证书类型的有效期计算")
    number: Text(50) = Field("", description="换发新证时的新编号；留空沿用原编号")


def _range(start, end):
    if start and end and end < start:
        raise ValidationFailed({"end": [_("截止日期不能早于开始日期。")]})


# ================================================================ courses

@router.get("/courses", response=list[CourseOut])
@requires(AUTHENTICATED)
def course_list(request, active: bool = Query(False, description="只列启用的课程")):
    return list(reads.course_queryset(active_only=active))


@router.post("/courses", response={201: CourseOut})
@requires(Perm.TRAINING_MANAGE)
def course_create(request, payload: CourseIn):
    return Status(201, services.course_create(user=request.auth, **payload.model_dump()))


@router.patch("/courses/{course_id}", response=CourseOut)
@requires(Perm.TRAINING_MANAGE)
def course_update(request, course_id: PathId, payload: CoursePatch):
    return services.course_update(user=request.auth, course_id=course_id, **payload.model_dump(exclude_unset=True))


# ================================================================ sessions

@router.get("/sessions", response=SessionPage)
@requires(AUTHENTICATED)
def session_list(request, limit: Limit, cursor: Cursor, start: dt.date | None = None, end: dt.date | None = None,
                 course_id: QueryId = None, status: SessionStatus | None = None):
    """The sessions the caller sees (``training.view`` scope and above it, or their own), by start;
    ``start``/``end``: local days the sessions start on."""
    _range(start, end)
    qs = reads.session_list(request.auth, start=start, end=end, course_id=course_id, status=status or "")
    return paginate(qs, ordering=reads.SESSION_ORDERING, cursor=cursor, limit=limit)


@router.post("/sessions", response={201: SessionDetailOut})
@requires(Perm.TRAINING_MANAGE)
def session_create(request, payload: SessionIn):
    """Plan a session at a node in the caller's ``training.manage`` scope."""
    s = services.session_create(user=request.auth, **payload.model_dump())
    return Status(201, reads.session_get(request.auth, s.pk))


@router.get("/sessions/{session_id}", response=SessionDetailOut)
@requires(AUTHENTICATED)
def session_get(request, session_id: PathId):
    return reads.session_get(request.auth, session_id)


@router.patch("/sessions/{session_id}", response=SessionDetailOut)
@requires(Perm.TRAINING_MANAGE)
def session_update(request, session_id: PathId, payload: SessionPatch):
    services.session_update(user=request.auth, session_id=session_id, **payload.model_dump(exclude_unset=True))
    return reads.session_get(request.auth, session_id)


@router.post("/sessions/{session_id}/cancel", response=SessionDetailOut)
@requires(Perm.TRAINING_MANAGE)
def session_cancel(request, session_id: PathId):
    services.session_cancel(user=request.auth, session_id=session_id)
    return reads.session_get(request.auth, session_id)


@router.post("/sessions/{session_id}/enrolments", response=SessionDetailOut)
@requires(Perm.TRAINING_MANAGE)
def session_enrol(request, session_id: PathId, payload: EnrolIn):
    """Enrol staff of the session's subtree (404 for one outside the caller's ``training.manage``
    scope; 409 when the session is full)."""
    services.enrol(user=request.auth, session_id=session_id, employee_ids=payload.employee_ids)
    return reads.session_get(request.auth, session_id)


@router.post("/enrolments/{enrolment_id}/cancel", response=EnrolmentOut)
@requires(Perm.TRAINING_MANAGE)
def enrolment_cancel(request, enrolment_id: PathId):
    return services.enrolment_cancel(user=request.auth, enrolment_id=enrolment_id)


@router.post("/sessions/{session_id}/attendance", response=SessionDetailOut)
@requires(AUTHENTICATED)
def session_attendance(request, session_id: PathId, payload: AttendanceIn):
    """Record attendance, hours and exam scores (``training.manage`` over the session's node or
    its trainer); ``passed`` follows the course's pass mark."""
    services.attendance_record(user=request.auth, session_id=session_id,
                               rows=[r.model_dump() for r in payload.rows])
    return reads.session_get(request.auth, session_id)


# ================================================================ records and the overdue list

@router.get("/records/me", response=RecordOut)
@requires(AUTHENTICATED)
def record_me(request):
    me = reads.my_employee(request.auth)
    if me is None:
        raise NotFound(_("您没有员工档案。"))
    return reads.training_record(request.auth, me.pk)


@router.get("/records/{employee_id}", response=RecordOut)
@requires(AUTHENTICATED)
def record(request, employee_id: PathId):
    """A person's training record: one's own, or another's with ``training.view`` over them."""
    return reads.training_record(request.auth, employee_id)


@router.get("/overdue", response=list[OverdueOut])
@requires(Perm.TRAINING_VIEW)
def overdue(request, node_id: QueryId = None):
    """Active staff in scope overdue for training by the cadence rules, most overdue first."""
    node = reads.training_node(request.auth, node_id) if node_id else None
    return reads.overdue_list(request.auth, node=node)


# ================================================================ safety events

@router.get("/safety-events", response=SafetyPage)
@requires(AUTHENTICATED)
def safety_list(request, limit: Limit, cursor: Cursor, employee_id: QueryId = None, start: dt.date | None = None,
                end: dt.date | None = None):
    """Safety events of the staff in ``appraisal.review`` or ``training.manage`` scope, latest first."""
    if not reads.may_safety(request.auth):
        raise PermissionDenied()
    _range(start, end)
    qs = reads.safety_events(request.auth, employee_id=employee_id, start=start, end=end)
    return paginate(qs, ordering=reads.SAFETY_ORDERING, cursor=cursor, limit=limit)


@router.post("/safety-events", response={201: SafetyEventOut})
@requires(AUTHENTICATED)
def safety_record(request, payload: SafetyEventIn):
    """Record a safety event (``appraisal.review`` or ``training.manage`` over the employee)."""
    return Status(201, services.safety_event_record(user=request.auth, **payload.model_dump()))


# ================================================================ certificates

@router.get("/certificates/expiring", response=ExpiringPage)
@requires(Perm.STAFF_VIEW)
def certificates_expiring(request, limit: Limit, cursor: Cursor,
                          within_days: int = Query(30, ge=0, le=3650, description="天数，默认 30")):
    """Certificates of active staff in scope expiring within ``within_days`` days, or expired."""
    qs = certifications_expiring(request.auth, within_days=within_days)
    return paginate(qs, ordering=["expires_on", "id"], cursor=cursor, limit=limit)


@router.post("/certificates", response={201: CertificationOut})
@requires(Perm.STAFF_EDIT)
def certificate_add(request, payload: CertificateIn):
    return Status(201, services.certificate_add(user=request.auth, employee_id=payload.employee_id,
                                                type_code=payload.type, number=payload.number,
                                                issued_on=payload.issued_on, expires_on=payload.expires_on))


@router.post("/certificates/{certification_id}/renew", response=CertificationOut)
@requires(Perm.STAFF_EDIT)
def certificate_renew(request, certification_id: PathId, payload: RenewIn):
    """Renew a certificate: new issue date (after the old), expiry (after the old) and number."""
    return services.certificate_renew(user=request.auth, certification_id=certification_id,
                                      **payload.model_dump())
