"""Pages of training and certificates under ``/team/``, thin over ``services_training`` and
``selectors_training``.

- ``training/``: the calendar (a month of sessions); ``training/sessions/…``: plan, change,
  enrol, record attendance and exam scores, cancel;
- ``training/courses/``: the courses (``training.manage`` creates and edits them);
- ``training/overdue/``: the staff overdue for training by the cadence rules;
- ``training/people/``: the staff in ``training.view`` scope; ``training/people/<id>/`` a
  person's training record (``training/me/``: one's own);
- ``training/safety/``: safety events (``appraisal.review`` or ``training.manage``);
- ``certificates/``: certificates expiring within 30 days (or a chosen range), add and renew.

Every form redirects with a message, or shows the page again with the field errors (4xx).
"""

from __future__ import annotations

import calendar
import datetime as dt

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aftersales.core.errors import DomainError, ValidationFailed
from aftersales.org.models import CertificationType, Employee, RoleAssignment
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import principal, scoped
from aftersales.web.permissions import SIGNED_IN, require_perm

from . import selectors_training as reads
from . import services_training as services
from .models import Attendance, SafetyEvent, SessionStatus, Subject

EXPIRY_CHOICES = (7, 30, 60, 90)
PEOPLE_MAX = 300
SAFETY_MAX = 200


# ================================================================ helpers

def _int(value) -> int | None:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if 0 < n < 2**63 else None


def _errors(e: DomainError) -> dict[str, list[str]]:
    return {k: [str(m) for m in msgs] for k, msgs in e.errors.items()} or {"form": [str(e.message)]}


def _fail(request, e: DomainError, back: str):
    return render(request, "web/form_error.html",
                  {"errors": [m for msgs in _errors(e).values() for m in msgs], "back": back}, status=e.status)


def _month(value, today: dt.date) -> dt.date:
    try:
        y, m = str(value or "").split("-")
        return dt.date(int(y), int(m), 1)
    except (TypeError, ValueError):
        return today.replace(day=1)


def _shift(month: dt.date, n: int) -> dt.date:
    i = month.year * 12 + month.month - 1 + n
    return dt.date(i // 12, i % 12 + 1, 1)


def _moment(date_text: str, time_text: str) -> str:
    """The ISO text of a local date and time from the form (the service reports a bad one)."""
    date_text, time_text = (date_text or "").strip(), (time_text or "").strip()
    if not date_text and not time_text:
        return ""
    return f"{date_text}T{time_text or '00:00'}"


def _nav(request) -> dict:
    p = principal(request.user)
    return {"can_view": p.can(Perm.TRAINING_VIEW), "can_manage": p.can(Perm.TRAINING_MANAGE),
            "can_safety": reads.may_safety(request.user), "can_certs": p.can(Perm.STAFF_VIEW),
            "has_record": reads.my_employee(request.user) is not None}


# ================================================================ the calendar

@require_GET
@require_perm(SIGNED_IN)
def calendar_view(request):
    """A month of the sessions the caller sees, Monday first."""
    today = timezone.localdate()
    month = _month(request.GET.get("month"), today)
    last = _shift(month, 1) - dt.timedelta(days=1)
    first_shown = month - dt.timedelta(days=month.weekday())
    last_shown = last + dt.timedelta(days=6 - last.weekday())
    by_day: dict[dt.date, list] = {}
    for s in reads.sessions_between(request.user, first_shown, last_shown):
        by_day.setdefault(timezone.localdate(s.starts_at), []).append(s)
    weeks, day = [], first_shown
    while day <= last_shown:
        weeks.append([{"date": day, "in_month": day.month == month.month, "today": day == today,
                       "sessions": by_day.get(day, [])} for day in (day + dt.timedelta(days=i) for i in range(7))])
        day += dt.timedelta(days=7)
    weekdays = [_("周一"), _("周二"), _("周三"), _("周四"), _("周五"), _("周六"), _("周日")]
    return render(request, "staff/training_calendar.html", {
        **_nav(request), "month": month, "weeks": weeks, "weekdays": weekdays, "today": today,
        "prev": _shift(month, -1), "next": _shift(month, 1), "n": sum(len(v) for v in by_day.values()),
        "month_days": calendar.monthrange(month.year, month.month)[1],
    })


# ================================================================ courses

@require_GET
@require_perm(Perm.TRAINING_VIEW, Perm.TRAINING_MANAGE)
def course_list(request):
    return render(request, "staff/training_courses.html", {**_nav(request), "courses": reads.course_list()})


def _course_form(request, course=None) -> dict:
    if request.method == "POST":
        p = request.POST
        return {"code": p.get("code", ""), "title": p.get("title", ""), "subject": p.get("subject", ""),
                "hours": p.get("hours", ""), "pass_mark": p.get("pass_mark", ""),
                "description": p.get("description", ""), "active": p.get("active") == "1"}
    if course is None:
        return {"code": "", "title": "", "subject": "", "hours": "", "pass_mark": "", "description": "",
                "active": True}
    return {"code": course.code, "title": course.title, "subject": course.subject, "hours": course.hours,
            "pass_mark": "" if course.pass_mark is None else course.pass_mark, "description": course.description,
            "active": course.active}


@require_http_methods(["GET", "POST"])
@require_perm(Perm.TRAINING_MANAGE)
def course_form(request, course_id: int | None = None):
    course = reads.course_get(course_id) if course_id is not None else None
    form = _course_form(request, course)
    errors: dict = {}
    if request.method == "POST":
        values = {**form, "pass_mark": form["pass_mark"] or None}
        try:
            if course is None:
                course = services.course_create(user=request.user, **values)
            else:
                course = services.course_update(user=request.user, course_id=course.pk, **values)
        except ValidationFailed as e:
            errors = _errors(e)
        else:
            messages.success(request, _("课程“%(title)s”已保存。") % {"title": course.title})
            return redirect("staff:training_courses")
    return render(request, "staff/training_course_form.html",
                  {**_nav(request), "course": course, "form": form, "errors": errors, "subjects": Subject.choices},
                  status=400 if errors else 200)


# ================================================================ sessions

def _session_form_ctx(request, *, form: dict, errors: dict, session=None) -> dict:
    user = request.user
    ids = principal(user).node_ids_for(Perm.TRAINING_MANAGE)
    nodes = [n for n in reads.training_nodes(user) if ids is None or n.pk in ids]
    trainers: dict[int, str] = {}
    for uid, username, name in (RoleAssignment.objects.filter(role=Role.TRAINER, user__is_active=True)
                                .values_list("user_id", "user__username", "user__employee__name")
                                .order_by("user__username")[:200]):
        trainers[uid] = name or username
    if session is not None and session.trainer_id and session.trainer_id not in trainers:
        trainers[session.trainer_id] = reads.person_label(session.trainer)
    trainers.setdefault(user.pk, reads.person_label(user))
    return {**_nav(request), "form": form, "errors": errors, "session": session, "nodes": nodes,
            "courses": list(reads.course_queryset(active_only=True)), "trainers": sorted(trainers.items())}


def _session_values(p) -> dict:
    return {"starts_at": _moment(p.get("date"), p.get("start_time")),
            "ends_at": _moment(p.get("end_date") or p.get("date"), p.get("end_time")),
            "trainer_id": p.get("trainer_id") or None, "place": p.get("place", ""), "online": p.get("online") == "1",
            "capacity": p.get("capacity", "")}


@require_http_methods(["GET", "POST"])
@require_perm(Perm.TRAINING_MANAGE)
def session_new(request):
    if request.method == "POST":
        p = request.POST
        form = {k: p.get(k, "") for k in ("course_id", "node_id", "date", "start_time", "end_date", "end_time",
                                          "trainer_id", "place", "capacity")}
        form["online"] = p.get("online") == "1"
        try:
            s = services.session_create(user=request.user, course_id=form["course_id"] or None,
                                        node_id=form["node_id"] or None, **_session_values(p))
        except ValidationFailed as e:
            return render(request, "staff/training_session_form.html",
                          _session_form_ctx(request, form=form, errors=_errors(e)), status=400)
        except DomainError as e:
            return _fail(request, e, reverse("staff:training_session_new"))
        messages.success(request, _("已安排培训场次。"))
        return redirect("staff:training_session", s.pk)
    day = request.GET.get("date") or (timezone.localdate() + dt.timedelta(days=7)).isoformat()
    form = {"course_id": request.GET.get("course", ""), "node_id": "", "date": day, "start_time": "09:00",
            "end_date": "", "end_time": "12:00", "trainer_id": "", "place": "", "capacity": "30", "online": False}
    return render(request, "staff/training_session_form.html", _session_form_ctx(request, form=form, errors={}))


@require_http_methods(["GET", "POST"])
@require_perm(Perm.TRAINING_MANAGE)
def session_edit(request, session_id: int):
    s = reads.session_get(request.user, session_id)
    back = reverse("staff:training_session", args=[s.pk])
    if request.method == "POST":
        p = request.POST
        form = {k: p.get(k, "") for k in ("date", "start_time", "end_date", "end_time", "trainer_id", "place",
                                          "capacity")}
        form["online"] = p.get("online") == "1"
        try:
            services.session_update(user=request.user, session_id=s.pk, **_session_values(p))
        except ValidationFailed as e:
            return render(request, "staff/training_session_form.html",
                          _session_form_ctx(request, form=form, errors=_errors(e), session=s), status=400)
        except DomainError as e:
            return _fail(request, e, back)
        messages.success(request, _("场次已修改。"))
        return redirect(back)
    a, b = timezone.localtime(s.starts_at), timezone.localtime(s.ends_at)
    form = {"date": a.date().isoformat(), "start_time": a.strftime("%H:%M"),
            "end_date": "" if b.date() == a.date() else b.date().isoformat(), "end_time": b.strftime("%H:%M"),
            "trainer_id": s.trainer_id or "", "place": s.place, "capacity": s.capacity, "online": s.online}
    return render(request, "staff/training_session_form.html", _session_form_ctx(request, form=form, errors={},
                                                                                  session=s))


@require_GET
@require_perm(SIGNED_IN)
def session_detail(request, session_id: int):
    return _session_page(request, session_id)


def _session_page(request, session_id: int, *, errors: dict | None = None, status: int = 200):
    user = request.user
    s = reads.session_get(user, session_id)
    manage = reads.may_manage(user, s.node_id)
    record = reads.may_record(user, s)
    enrolments = reads.session_enrolments(s)
    return render(request, "staff/training_session.html", {
        **_nav(request), "s": s, "enrolments": enrolments, "may_manage": manage, "may_record": record,
        "planned": s.status == SessionStatus.PLANNED, "started": s.starts_at <= timezone.now(),
        "candidates": list(reads.enrolable_employees(user, s)[:500]) if manage and s.status == SessionStatus.PLANNED
        else [], "left": max(s.capacity - s.n_enrolled, 0), "errors": errors or {},
        "record_rows": [en for en in enrolments if en.status != Attendance.CANCELLED],
    }, status=status)


def _detail_after(request, s_id: int, e: DomainError):
    if isinstance(e, ValidationFailed) or e.status == 409:
        return _session_page(request, s_id, errors=_errors(e), status=e.status)
    return _fail(request, e, reverse("staff:training_session", args=[s_id]))


@require_POST
@require_perm(Perm.TRAINING_MANAGE)
def session_enrol(request, session_id: int):
    s = reads.session_get(request.user, session_id)
    ids = [v for v in request.POST.getlist("employee_ids") if v]
    try:
        out = services.enrol(user=request.user, session_id=s.pk, employee_ids=ids)
    except DomainError as e:
        if e.status == 404:
            raise Http404 from e
        return _detail_after(request, s.pk, e)
    messages.success(request, _("已报名 %(n)s 人。") % {"n": len(out)})
    return redirect("staff:training_session", s.pk)


@require_POST
@require_perm(SIGNED_IN)
def session_attendance(request, session_id: int):
    s = reads.session_get(request.user, session_id)
    p = request.POST
    rows = []
    for en in reads.session_enrolments(s):
        status = p.get(f"status_{en.employee_id}", "")
        if not status:
            continue
        rows.append({"employee_id": en.employee_id, "status": status, "hours": p.get(f"hours_{en.employee_id}", ""),
                     "score": p.get(f"score_{en.employee_id}", "")})
    try:
        out = services.attendance_record(user=request.user, session_id=s.pk, rows=rows)
    except DomainError as e:
        return _detail_after(request, s.pk, e)
    messages.success(request, _("已记录 %(n)s 人的出勤与成绩。") % {"n": len(out)})
    return redirect("staff:training_session", s.pk)


@require_POST
@require_perm(Perm.TRAINING_MANAGE)
def session_cancel(request, session_id: int):
    s = reads.session_get(request.user, session_id)
    try:
        services.session_cancel(user=request.user, session_id=s.pk)
    except DomainError as e:
        return _fail(request, e, reverse("staff:training_session", args=[s.pk]))
    messages.success(request, _("场次已取消。"))
    return redirect("staff:training_session", s.pk)


@require_POST
@require_perm(Perm.TRAINING_MANAGE)
def enrolment_cancel(request, enrolment_id: int):
    try:
        en = services.enrolment_cancel(user=request.user, enrolment_id=enrolment_id)
    except DomainError as e:
        if e.status == 404:
            raise Http404 from e
        return _fail(request, e, reverse("staff:training_calendar"))
    messages.success(request, _("已取消 %(name)s 的报名。") % {"name": en.employee.name})
    return redirect("staff:training_session", en.session_id)


# ================================================================ overdue, people, records

@require_GET
@require_perm(Perm.TRAINING_VIEW)
def overdue(request):
    user = request.user
    node = reads.training_node(user, _int(request.GET.get("node"))) if request.GET.get("node") else None
    today = timezone.localdate()
    rows = reads.overdue_list(user, today=today, node=node)
    return render(request, "staff/training_overdue.html", {
        **_nav(request), "rows": rows, "node": node, "nodes": reads.training_nodes(user), "today": today,
        "rules": sorted(reads.cadence_rules().items()),
    })


@require_GET
@require_perm(Perm.TRAINING_VIEW)
def people(request):
    """The staff in ``training.view`` scope with their training due day (search by name or number)."""
    user = request.user
    today = timezone.localdate()
    q = (request.GET.get("q") or "").strip()[:50]
    node = reads.training_node(user, _int(request.GET.get("node"))) if request.GET.get("node") else None
    qs = scoped(Employee.objects.filter(active=True), user, Perm.TRAINING_VIEW)
    if node is not None:
        qs = qs.filter(node__path__startswith=node.path)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(employee_no__icontains=q))
    rules = reads.cadence_rules()
    emps = list(reads.with_last_trained(qs).select_related("node").order_by("node__path", "employee_no")[:PEOPLE_MAX])
    rows = [reads.cadence_of(e, rules.get(e.grade), e.last_end, today) for e in emps]
    return render(request, "staff/training_people.html", {
        **_nav(request), "rows": rows, "q": q, "node": node, "nodes": reads.training_nodes(user),
        "truncated": len(emps) == PEOPLE_MAX, "today": today,
    })


@require_GET
@require_perm(SIGNED_IN)
def record(request, employee_id: int):
    rec = reads.training_record(request.user, employee_id)
    return render(request, "staff/training_record.html", {**_nav(request), "rec": rec,
                                                          "own": rec.employee.user_id == request.user.pk,
                                                          "today": timezone.localdate()})


@require_GET
@require_perm(SIGNED_IN)
def record_me(request):
    me = reads.my_employee(request.user)
    if me is None:
        return render(request, "staff/training_record.html", {**_nav(request), "rec": None, "own": True})
    return record(request, me.pk)


# ================================================================ safety events

@require_http_methods(["GET", "POST"])
@require_perm(Perm.APPRAISAL_REVIEW, Perm.TRAINING_MANAGE)
def safety(request):
    user = request.user
    form = {"employee_id": "", "occurred_on": timezone.localdate().isoformat(), "severity": "minor",
            "description": "", "order_id": ""}
    errors: dict = {}
    if request.method == "POST":
        form = {k: request.POST.get(k, "") for k in form}
        try:
            services.safety_event_record(user=user, employee_id=form["employee_id"] or None,
                                         occurred_on=form["occurred_on"], severity=form["severity"],
                                         description=form["description"], order_id=form["order_id"] or None)
        except ValidationFailed as e:
            errors = _errors(e)
        except DomainError as e:
            if e.status == 404:
                raise Http404 from e
            return _fail(request, e, reverse("staff:training_safety"))
        else:
            messages.success(request, _("安全事件已记录。"))
            return redirect("staff:training_safety")
    employee_id = _int(request.GET.get("employee"))
    events = list(reads.safety_events(user, employee_id=employee_id).order_by(*reads.SAFETY_ORDERING)[:SAFETY_MAX])
    employees = list(reads.safety_employees(user).filter(active=True).select_related("node")
                     .order_by("node__path", "employee_no")[:500])
    return render(request, "staff/training_safety.html", {
        **_nav(request), "events": events, "employees": employees, "form": form, "errors": errors,
        "severities": SafetyEvent.Severity.choices, "employee_id": employee_id,
    }, status=400 if errors else 200)


# ================================================================ certificates

def _certs_ctx(request, *, form: dict, errors: dict) -> dict:
    user = request.user
    days = _int(request.GET.get("days")) or reads.EXPIRING_DAYS
    if days not in EXPIRY_CHOICES:
        days = reads.EXPIRING_DAYS
    today = timezone.localdate()
    can_edit = principal(user).can(Perm.STAFF_EDIT)
    return {**_nav(request), "certs": reads.certificates_expiring(user, within_days=days, today=today),
            "days": days, "choices": EXPIRY_CHOICES, "today": today, "can_edit": can_edit, "form": form,
            "errors": errors, "types": list(CertificationType.objects.order_by("code")),
            "employees": list(scoped(Employee.objects.filter(active=True), user, Perm.STAFF_EDIT)
                              .select_related("node").order_by("node__path", "employee_no")[:500]) if can_edit else []}


@require_http_methods(["GET", "POST"])
@require_perm(Perm.STAFF_VIEW)
def certificates(request):
    """Certificates expiring within 30 days (7, 60, 90 to choose) or expired; add one (``staff.edit``)."""
    form = {"employee_id": "", "type_code": "", "number": "", "issued_on": "", "expires_on": ""}
    errors: dict = {}
    if request.method == "POST":
        if not principal(request.user).can(Perm.STAFF_EDIT):
            raise PermissionDenied
        form = {k: request.POST.get(k, "") for k in form}
        try:
            c = services.certificate_add(user=request.user, employee_id=form["employee_id"],
                                         type_code=form["type_code"], number=form["number"],
                                         issued_on=form["issued_on"], expires_on=form["expires_on"] or None)
        except ValidationFailed as e:
            errors = _errors(e)
        except DomainError as e:
            if e.status == 404:
                raise Http404 from e
            return _fail(request, e, reverse("staff:certificates"))
        else:
            messages.success(request, _("已登记 %(name)s 的%(cert)s（有效期至 %(date)s）。") % {
                "name": c.employee.name, "cert": c.type.name, "date": c.expires_on.isoformat()})
            return redirect("staff:certificates")
    return render(request, "staff/certificates.html", _certs_ctx(request, form=form, errors=errors),
                  status=400 if errors else 200)


@require_http_methods(["GET", "POST"])
@require_perm(Perm.STAFF_EDIT)
def certificate_renew(request, cert_id: int):
    c = reads.certificate_for_edit(request.user, cert_id)
    form = {"issued_on": timezone.localdate().isoformat(), "expires_on": "", "number": c.number}
    errors: dict = {}
    if request.method == "POST":
        form = {k: request.POST.get(k, "") for k in form}
        try:
            c = services.certificate_renew(user=request.user, certification_id=c.pk, issued_on=form["issued_on"],
                                           expires_on=form["expires_on"] or None, number=form["number"])
        except ValidationFailed as e:
            errors = _errors(e)
        else:
            messages.success(request, _("已续期 %(name)s 的%(cert)s，有效期至 %(date)s。") % {
                "name": c.employee.name, "cert": c.type.name, "date": c.expires_on.isoformat()})
            return redirect("staff:certificates")
    return render(request, "staff/certificates_renew.html", {**_nav(request), "c": c, "form": form,
                                                             "errors": errors}, status=400 if errors else 200)
