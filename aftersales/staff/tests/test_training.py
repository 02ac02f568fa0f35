"""Training (R-TRN): the defaults, courses, sessions, enrolment within capacity and scope,
attendance with hours and exam scores against the pass mark, the cadence overdue list (junior
every 6 months, senior every 3, exact boundary days), training records, safety events, the
reminders to managers, the pages and the API, and bad input."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aftersales.conftest import make_user
from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from aftersales.notifications.models import Message
from aftersales.org.models import Employee
from aftersales.org.roles import Role
from aftersales.records.models import AuditEntry
from aftersales.staff import selectors_training as reads
from aftersales.staff import services_training as services
from aftersales.staff.models import (
    Attendance,
    CadenceRule,
    Course,
    Enrolment,
    SafetyEvent,
    Session,
    SessionStatus,
    Subject,
)

TZ = timezone.get_current_timezone()


def local(y, m, d, hh=9, mm=0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=TZ)


def emp(username, name, node, no, *, grade="junior", hire=dt.date(2020, 1, 1), role=Role.TECHNICIAN):
    u = make_user(username, role, node)
    return Employee.objects.create(user=u, node=node, employee_no=no, name=name, grade=grade, hire_date=hire)


@pytest.fixture
def tw(world):
    """``world`` with staff to train: 李师傅 (pudong, junior, the world's technician), 王高级
    (pudong, senior), 陈初级 (hangzhou, junior), 周师傅 (tianhe, junior); a trainer over the east
    centre only; a course with a pass mark of 70 and one without an exam."""
    w = world
    w.li = w.tech_employee
    w.wang = emp("pd_senior", "王高级", w.pudong, "T0010", grade="senior")
    w.chen = emp("hz_junior", "陈初级", w.hangzhou, "T0020")
    w.zhou = emp("th_junior", "周师傅", w.tianhe, "T0030")
    w.east_trainer = make_user("east_trainer", Role.TRAINER, w.east)
    w.course = services.course_create(user=w.trainer, code="ac-201", title="变频空调维修", subject="fault",
                                      hours="6", pass_mark=70)
    w.talk = services.course_create(user=w.trainer, code="COM-201", title="投诉处理", subject="communication",
                                    hours=Decimal("2.5"))
    return w


def plan(w, *, course=None, node=None, start=None, hours=3, capacity=30, user=None, online=False, place="培训室"):
    start = start or local(2025, 3, 3)
    return services.session_create(user=user or w.trainer, course_id=(course or w.course).pk,
                                   node_id=(node or w.east).pk, starts_at=start,
                                   ends_at=start + dt.timedelta(hours=hours), place=place, online=online,
                                   capacity=capacity)


def trained(w, employees, *, end: dt.datetime, course=None, score=None, node=None):
    """One session ending at ``end`` that ``employees`` attended."""
    s = plan(w, course=course, node=node or w.hq, start=end - dt.timedelta(hours=2), hours=2)
    services.enrol(user=w.trainer, session_id=s.pk, employee_ids=[e.pk for e in employees])
    services.attendance_record(user=w.trainer, session_id=s.pk,
                               rows=[{"employee_id": e.pk, "status": "attended", "score": score} for e in employees])
    return s


def overdue_names(w, today, user=None):
    return [r.employee.name for r in reads.overdue_list(user or w.hq_manager, today=today)]


# ================================================================ defaults and courses

def test_defaults_cadence_and_one_starter_course_per_subject(db):
    assert dict(CadenceRule.objects.values_list("grade", "months")) == {"junior": 6, "senior": 3}
    starters = Course.objects.filter(code__endswith="-101")
    assert sorted(starters.values_list("subject", flat=True)) == sorted(Subject.values)
    assert all(c.active and c.hours > 0 for c in starters)
    assert starters.get(subject="safety").pass_mark == 90


def test_course_create_and_update_are_audited(tw):
    assert tw.course.code == "AC-201" and tw.course.hours == Decimal("6.0") and tw.course.pass_mark == 70
    c = services.course_update(user=tw.trainer, course_id=tw.course.pk, pass_mark=60, active=False)
    assert (c.pass_mark, c.active) == (60, False)
    actions = list(AuditEntry.objects.filter(object_type="staff.course", object_id=str(c.pk))
                   .values_list("action", flat=True).order_by("seq"))
    assert actions == ["training.course_create", "training.course_update"]


def test_course_bad_input_names_every_field(tw):
    with pytest.raises(ValidationFailed) as e:
        services.course_create(user=tw.trainer, code="ac-201", title="", subject="cooking", hours="0",
                               pass_mark=101)
    assert set(e.value.errors) == {"code", "title", "subject", "hours", "pass_mark"}
    assert "该课程编码已存在。" in [str(m) for m in e.value.errors["code"]]
    assert str(e.value.errors["pass_mark"][0]) == "及格分须在 0 到 100 分之间。"
    with pytest.raises(ValidationFailed) as e:
        services.course_create(user=tw.trainer, code="X 1", title="t", subject="fault", hours="1.25")
    assert set(e.value.errors) == {"code", "hours"}


def test_only_training_managers_maintain_courses(tw):
    for u in (tw.pudong_manager, tw.east_manager, tw.pudong_tech):
        with pytest.raises(PermissionDenied):
            services.course_create(user=u, code="Z-1", title="t", subject="fault", hours=1)
    assert services.course_create(user=tw.hq_manager, code="Z-1", title="t", subject="fault", hours=1).pk


# ================================================================ sessions and enrolment

def test_plan_session_and_bad_input(tw):
    s = plan(tw)
    assert s.status == SessionStatus.PLANNED and s.capacity == 30 and s.node == tw.east
    start = local(2025, 3, 3)
    with pytest.raises(ValidationFailed) as e:
        services.session_create(user=tw.trainer, course_id=tw.course.pk, node_id=tw.east.pk, starts_at=start,
                                ends_at=start - dt.timedelta(minutes=1), place="", online=False, capacity=0)
    errors = {k: [str(m) for m in v] for k, v in e.value.errors.items()}
    assert errors == {"ends_at": ["结束时间须晚于开始时间。"], "place": ["请填写培训地点，或选择线上培训。"],
                      "capacity": ["名额须在 1 到 1000 之间。"]}
    with pytest.raises(ValidationFailed) as e:
        services.session_create(user=tw.trainer, course_id=tw.course.pk, node_id=tw.east.pk, starts_at="明天",
                                ends_at=start, online=True)
    assert list(e.value.errors) == ["starts_at"]
    online = plan(tw, online=True, place="")
    assert online.online and online.place == ""


def test_session_scope_404_and_403(tw):
    # the east trainer does not see the south: 404; the outlet manager sees but may not plan: 403
    with pytest.raises(NotFound):
        plan(tw, node=tw.tianhe, user=tw.east_trainer)
    with pytest.raises(PermissionDenied):
        plan(tw, node=tw.pudong, user=tw.pudong_manager)
    assert plan(tw, node=tw.pudong, user=tw.east_trainer).node == tw.pudong


def test_enrol_within_capacity_and_full_session_is_409(tw):
    s = plan(tw, capacity=2)
    out = services.enrol(user=tw.trainer, session_id=s.pk, employee_ids=[tw.li.pk, tw.wang.pk])
    assert [en.employee_id for en in out] == [tw.li.pk, tw.wang.pk]
    with pytest.raises(Conflict) as e:
        services.enrol(user=tw.trainer, session_id=s.pk, employee_ids=[tw.chen.pk])
    assert e.value.status == 409 and e.value.code == "session_full"
    assert str(e.value.message) == "名额已满：本场次共 2 个名额，已报名 2 人，还能报名 0 人。"
    assert "employee_ids" in e.value.errors
    # enrolling again is a no-op; a cancelled place frees the seat
    assert len(services.enrol(user=tw.trainer, session_id=s.pk, employee_ids=[tw.li.pk])) == 1
    li = Enrolment.objects.get(session=s, employee=tw.li)
    services.enrolment_cancel(user=tw.trainer, enrolment_id=li.pk)
    services.enrol(user=tw.trainer, session_id=s.pk, employee_ids=[tw.chen.pk])
    assert Enrolment.objects.filter(session=s).exclude(status=Attendance.CANCELLED).count() == 2
    with pytest.raises(ValidationFailed) as e:
        services.session_update(user=tw.trainer, session_id=s.pk, capacity=1)
    assert "capacity" in e.value.errors


def test_enrol_out_of_scope_employee_is_404_and_outside_the_subtree_400(tw):
    s = plan(tw, user=tw.east_trainer)
    with pytest.raises(NotFound):
        services.enrol(user=tw.east_trainer, session_id=s.pk, employee_ids=[tw.li.pk, tw.zhou.pk])
    assert not Enrolment.objects.filter(session=s).exists()
    outlet = plan(tw, node=tw.pudong)
    with pytest.raises(ValidationFailed) as e:
        services.enrol(user=tw.trainer, session_id=outlet.pk, employee_ids=[tw.li.pk, tw.chen.pk])
    assert list(e.value.errors) == ["employee_ids[1]"]
    assert "不属于本场次的组织单位" in str(e.value.errors["employee_ids[1]"][0])
    # a session out of sight is 404 too
    south = plan(tw, node=tw.tianhe)
    with pytest.raises(NotFound):
        services.enrol(user=tw.east_trainer, session_id=south.pk, employee_ids=[tw.zhou.pk])


def test_cancel_session_cancels_its_enrolments_and_closes_it(tw):
    s = plan(tw)
    services.enrol(user=tw.trainer, session_id=s.pk, employee_ids=[tw.li.pk])
    services.session_cancel(user=tw.trainer, session_id=s.pk)
    assert Session.objects.get(pk=s.pk).status == SessionStatus.CANCELLED
    assert Enrolment.objects.get(session=s).status == Attendance.CANCELLED
    with pytest.raises(Conflict):
        services.enrol(user=tw.trainer, session_id=s.pk, employee_ids=[tw.wang.pk])
    with pytest.raises(Conflict):
        services.attendance_record(user=tw.trainer, session_id=s.pk,
                                   rows=[{"employee_id": tw.li.pk, "status": "attended"}])


# ================================================================ attendance, exam, pass mark

def test_attendance_hours_and_pass_mark(tw):
    s = plan(tw)
    services.enrol(user=tw.trainer, session_id=s.pk, employee_ids=[tw.li.pk, tw.wang.pk, tw.chen.pk])
    out = services.attendance_record(user=tw.trainer, session_id=s.pk, rows=[
        {"employee_id": tw.li.pk, "status": "attended", "score": 70},
        {"employee_id": tw.wang.pk, "status": "attended", "score": "69", "hours": "4.5"},
        {"employee_id": tw.chen.pk, "status": "absent"},
    ])
    got = {en.employee_id: (en.status, en.hours, en.score, en.passed) for en in out}
    assert got == {tw.li.pk: ("attended", Decimal("6.0"), 70, True),   # exactly the pass mark passes
                   tw.wang.pk: ("attended", Decimal("4.5"), 69, False),
                   tw.chen.pk: ("absent", Decimal("0"), None, None)}
    assert Session.objects.get(pk=s.pk).status == SessionStatus.DONE
    # no exam: no verdict, whatever the score
    s2 = plan(tw, course=tw.talk)
    services.enrol(user=tw.trainer, session_id=s2.pk, employee_ids=[tw.li.pk])
    [en] = services.attendance_record(user=tw.trainer, session_id=s2.pk,
                                      rows=[{"employee_id": tw.li.pk, "status": "attended", "score": 95}])
    assert (en.hours, en.score, en.passed) == (Decimal("2.5"), 95, None)
    # a correction recomputes the verdict
    [en] = services.attendance_record(user=tw.trainer, session_id=s.pk,
                                      rows=[{"employee_id": tw.wang.pk, "status": "attended", "score": 85}])
    assert en.passed is True and en.hours == Decimal("6.0")


def test_attendance_bad_input(tw):
    s = plan(tw)
    services.enrol(user=tw.trainer, session_id=s.pk, employee_ids=[tw.li.pk, tw.wang.pk])
    with pytest.raises(ValidationFailed) as e:
        services.attendance_record(user=tw.trainer, session_id=s.pk, rows=[
            {"employee_id": tw.li.pk, "status": "attended", "score": 101, "hours": "-1"},
            {"employee_id": tw.wang.pk, "status": "absent", "score": 50},
            {"employee_id": tw.chen.pk, "status": "attended"},
            {"employee_id": tw.li.pk, "status": "late"},
        ])
    errors = {k: [str(m) for m in v] for k, v in e.value.errors.items()}
    assert errors["rows[0].score"] == ["成绩须在 0 到 100 分之间。"]
    assert errors["rows[0].hours"] == ["学时不能为负数。"] or errors["rows[0].hours"] == ["学时须大于 0。"]
    assert errors["rows[1].score"] == ["缺席的员工不能有考试成绩。"]
    assert errors["rows[2].employee_id"] == ["该员工未报名本场次。"]
    assert errors["rows[3].status"] == ["出勤须为“已参加”或“缺席”。"]
    assert not Enrolment.objects.filter(session=s, recorded_at__isnull=False).exists()
    future = plan(tw, start=timezone.now() + dt.timedelta(days=2))
    services.enrol(user=tw.trainer, session_id=future.pk, employee_ids=[tw.li.pk])
    with pytest.raises(ValidationFailed) as e:
        services.attendance_record(user=tw.trainer, session_id=future.pk,
                                   rows=[{"employee_id": tw.li.pk, "status": "attended"}])
    assert str(e.value.errors["session"][0]) == "场次尚未开始，不能记录出勤和成绩。"


def test_who_records_attendance(tw):
    """The session's trainer may record without ``training.manage``; an enrolled technician may not."""
    senior_user = tw.wang.user
    s = services.session_create(user=tw.trainer, course_id=tw.course.pk, node_id=tw.pudong.pk,
                                starts_at=local(2025, 3, 3), ends_at=local(2025, 3, 3, 12), place="网点",
                                trainer_id=senior_user.pk)
    services.enrol(user=tw.trainer, session_id=s.pk, employee_ids=[tw.li.pk])
    row = [{"employee_id": tw.li.pk, "status": "attended", "score": 80}]
    with pytest.raises(PermissionDenied):
        services.attendance_record(user=tw.pudong_tech, session_id=s.pk, rows=row)
    with pytest.raises(PermissionDenied):
        services.attendance_record(user=tw.pudong_manager, session_id=s.pk, rows=row)
    assert services.attendance_record(user=senior_user, session_id=s.pk, rows=row)[0].passed is True
    with pytest.raises(NotFound):  # the trainer of another session does not see this one
        services.attendance_record(user=tw.zhou.user, session_id=s.pk, rows=row)


# ================================================================ cadence: overdue

def test_junior_every_6_months_exact_boundary(tw):
    Employee.objects.exclude(pk=tw.li.pk).update(active=False)
    trained(tw, [tw.li], end=local(2025, 1, 10, 16))
    assert overdue_names(tw, dt.date(2025, 7, 10)) == []          # due today: not yet overdue
    [row] = reads.overdue_list(tw.hq_manager, today=dt.date(2025, 7, 11))
    assert (row.employee, row.months, row.last_trained, row.due, row.days_overdue) == (
        tw.li, 6, dt.date(2025, 1, 10), dt.date(2025, 7, 10), 1)


def test_senior_every_3_months_exact_boundary_and_month_end(tw):
    Employee.objects.exclude(pk=tw.wang.pk).update(active=False)
    trained(tw, [tw.wang], end=local(2024, 11, 30, 16))
    assert overdue_names(tw, dt.date(2025, 2, 28)) == []          # 30 Nov + 3 months = 28 Feb
    assert overdue_names(tw, dt.date(2025, 3, 1)) == ["王高级"]
    # the same training keeps a junior in time for three more months
    tw.wang.grade = "junior"
    tw.wang.save()
    assert overdue_names(tw, dt.date(2025, 5, 30)) == []
    assert overdue_names(tw, dt.date(2025, 5, 31)) == ["王高级"]


def test_junior_and_senior_trained_the_same_day(tw):
    Employee.objects.exclude(pk__in=[tw.li.pk, tw.wang.pk]).update(active=False)
    trained(tw, [tw.li, tw.wang], end=local(2025, 1, 10, 16))
    assert overdue_names(tw, dt.date(2025, 4, 10)) == []
    assert overdue_names(tw, dt.date(2025, 4, 11)) == ["王高级"]
    assert overdue_names(tw, dt.date(2025, 7, 11)) == ["王高级", "李师傅"]   # senior due first
    # a new training starts the count again
    trained(tw, [tw.wang], end=local(2025, 7, 1, 16))
    assert overdue_names(tw, dt.date(2025, 7, 11)) == ["李师傅"]


def test_never_trained_counts_from_the_hire_date(tw):
    Employee.objects.exclude(pk__in=[tw.li.pk, tw.wang.pk]).update(active=False)
    Employee.objects.filter(pk=tw.li.pk).update(hire_date=dt.date(2025, 1, 31))
    Employee.objects.filter(pk=tw.wang.pk).update(hire_date=dt.date(2025, 6, 15))
    assert overdue_names(tw, dt.date(2025, 7, 31)) == []          # 31 Jan + 6 months = 31 Jul
    [row] = reads.overdue_list(tw.hq_manager, today=dt.date(2025, 8, 1))
    assert row.employee == tw.li and row.last_trained is None and row.due == dt.date(2025, 7, 31)
    assert overdue_names(tw, dt.date(2025, 9, 15)) == ["李师傅"]
    assert overdue_names(tw, dt.date(2025, 9, 16)) == ["李师傅", "王高级"]


def test_only_attendance_counts_and_the_local_day_of_the_end(tw):
    Employee.objects.exclude(pk=tw.li.pk).update(active=False)
    Employee.objects.filter(pk=tw.li.pk).update(hire_date=dt.date(2024, 1, 1))
    s = plan(tw, node=tw.hq, start=local(2025, 1, 10))
    services.enrol(user=tw.trainer, session_id=s.pk, employee_ids=[tw.li.pk])
    services.attendance_record(user=tw.trainer, session_id=s.pk, rows=[{"employee_id": tw.li.pk, "status": "absent"}])
    assert overdue_names(tw, dt.date(2025, 2, 1)) == ["李师傅"]      # absent: still overdue since July 2024
    # a session ending at 00:30 local time (16:30 UTC the day before) counts on the local day
    trained(tw, [tw.li], end=local(2025, 1, 11, 0, 30))
    assert reads.overdue_list(tw.hq_manager, today=dt.date(2025, 7, 12))[0].due == dt.date(2025, 7, 11)
    assert overdue_names(tw, dt.date(2025, 7, 11)) == []


def test_overdue_list_is_scoped(tw):
    Employee.objects.update(hire_date=dt.date(2020, 1, 1))
    today = dt.date(2025, 1, 1)
    assert set(overdue_names(tw, today)) == {"李师傅", "王高级", "陈初级", "周师傅"}
    assert set(overdue_names(tw, today, tw.pudong_manager)) == {"李师傅", "王高级"}
    assert set(overdue_names(tw, today, tw.east_manager)) == {"李师傅", "王高级", "陈初级"}
    assert overdue_names(tw, today, tw.pudong_tech) == []
    # inactive staff and grades without a rule are left out
    Employee.objects.filter(pk=tw.chen.pk).update(active=False)
    CadenceRule.objects.filter(grade="senior").delete()
    assert set(overdue_names(tw, today, tw.east_manager)) == {"李师傅"}


# ================================================================ records

def test_training_record_hours_per_subject_and_visibility(tw):
    trained(tw, [tw.li], end=local(2025, 1, 10, 16), score=90)
    trained(tw, [tw.li], end=local(2025, 2, 10, 16), course=tw.talk)
    trained(tw, [tw.li], end=local(2025, 3, 10, 16), score=60)
    rec = reads.training_record(tw.pudong_tech, tw.li.pk, today=dt.date(2025, 4, 1))
    hours = {s.subject: s.hours for s in rec.subjects}
    assert hours["fault"] == Decimal("12.0") and hours["communication"] == Decimal("2.5") and hours["safety"] == 0
    assert rec.total_hours == Decimal("14.5") and (rec.passed, rec.failed, rec.mean_score) == (1, 1, 75.0)
    assert rec.cadence.last_trained == dt.date(2025, 3, 10) and rec.cadence.due == dt.date(2025, 9, 10)
    assert not rec.cadence.overdue
    # others: with training.view over them only
    assert reads.training_record(tw.pudong_manager, tw.li.pk).employee == tw.li
    for u in (tw.wang.user, tw.hangzhou_agent):
        with pytest.raises(NotFound):
            reads.training_record(u, tw.li.pk)
    with pytest.raises(NotFound):
        reads.training_record(tw.pudong_manager, tw.zhou.pk)


# ================================================================ safety events

def test_safety_events_record_list_and_scope(tw):
    today = timezone.localdate()
    ev = services.safety_event_record(user=tw.pudong_manager, employee_id=tw.li.pk, occurred_on=today,
                                      severity="serious", description="登高作业未系安全带")
    assert ev.recorded_by == tw.pudong_manager and ev.employee == tw.li
    assert AuditEntry.objects.filter(object_type="staff.safetyevent", action="training.safety_event").count() == 1
    services.safety_event_record(user=tw.trainer, employee_id=tw.zhou.pk, occurred_on=today.isoformat(),
                                 severity="minor", description="未戴绝缘手套")
    with pytest.raises(NotFound):
        services.safety_event_record(user=tw.pudong_manager, employee_id=tw.zhou.pk, occurred_on=today,
                                     severity="minor", description="x")
    for u in (tw.pudong_tech, tw.quality):
        with pytest.raises(PermissionDenied):
            services.safety_event_record(user=u, employee_id=tw.li.pk, occurred_on=today, severity="minor",
                                         description="x")
    with pytest.raises(ValidationFailed) as e:
        services.safety_event_record(user=tw.pudong_manager, employee_id=tw.li.pk,
                                     occurred_on=today + dt.timedelta(days=1), severity="fatal", description="",
                                     order_id=999)
    assert set(e.value.errors) == {"occurred_on", "severity", "description", "order_id"}
    assert [x.employee.name for x in reads.safety_events(tw.pudong_manager)] == ["李师傅"]
    assert {x.employee.name for x in reads.safety_events(tw.hq_manager)} == {"李师傅", "周师傅"}
    assert SafetyEvent.objects.count() == 2


# ================================================================ reminders

def test_reminders_tell_managers_once(tw):
    Employee.objects.exclude(pk=tw.li.pk).update(active=False)
    Employee.objects.filter(pk=tw.li.pk).update(hire_date=dt.date(2025, 1, 1))
    now = local(2025, 7, 1, 8)  # junior hired 1 Jan: due 1 Jul, not yet overdue
    assert services.training_reminders(now) == 0
    now = local(2025, 7, 2, 8)
    assert services.training_reminders(now) == 1
    [m] = Message.objects.filter(event="training_overdue")
    assert m.user == tw.pudong_manager and m.ref_id == tw.li.pk
    assert "李师傅" in m.body and "2025-07-01" in m.body and "每 6 个月" in m.body
    assert services.training_reminders(now + dt.timedelta(days=1)) == 0    # once
    trained(tw, [tw.li], end=local(2025, 7, 5, 16))
    assert services.training_reminders(local(2026, 1, 5, 8)) == 0          # due 5 Jan: in time
    assert services.training_reminders(local(2026, 1, 6, 8)) == 1          # overdue again: told again
    assert Message.objects.filter(event="training_overdue").count() == 2


def test_no_manager_at_the_outlet_tells_the_centre(tw):
    Employee.objects.exclude(pk=tw.chen.pk).update(active=False)
    assert services.training_reminders(local(2025, 7, 2, 8)) == 1
    assert Message.objects.get(event="training_overdue").user == tw.east_manager


# ================================================================ pages

def client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_calendar_page_shows_the_month_with_bounded_queries(tw):
    day = timezone.localdate().replace(day=10)
    a = dt.datetime.combine(day, dt.time(9), TZ)
    s = plan(tw, start=a)
    r = client(tw.trainer).get("/team/training/")
    assert r.status_code == 200
    html = r.content.decode()
    assert f'data-session="{s.pk}"' in html and "变频空调维修" in html and f'data-date="{day:%Y-%m-%d}"' in html
    c = client(tw.east_manager)
    with CaptureQueriesContext(connection) as few:
        assert c.get("/team/training/").status_code == 200
    for i in range(8):
        plan(tw, start=a + dt.timedelta(days=i % 5, hours=i))
    with CaptureQueriesContext(connection) as many:
        r = c.get("/team/training/")
    assert r.content.decode().count('class="tr-ev') == 9
    assert len(many) == len(few)
    # other months, a bad month, a technician (sees only their own sessions)
    assert client(tw.trainer).get("/team/training/", {"month": "2025-02"}).status_code == 200
    assert client(tw.trainer).get("/team/training/", {"month": "x"}).status_code == 200
    r = client(tw.pudong_tech).get("/team/training/")
    assert r.status_code == 200 and 'class="tr-ev' not in r.content.decode()
    services.enrol(user=tw.trainer, session_id=s.pk, employee_ids=[tw.li.pk])
    assert f'data-session="{s.pk}"' in client(tw.pudong_tech).get("/team/training/").content.decode()


def test_session_pages_plan_enrol_record(tw):
    c = client(tw.trainer)
    r = c.post("/team/training/sessions/new/", {"course_id": tw.course.pk, "node_id": tw.pudong.pk,
                                                "date": "2025-03-03", "start_time": "09:00", "end_time": "08:00",
                                                "place": "", "capacity": "10"})
    assert r.status_code == 400 and "结束时间须晚于开始时间。" in r.content.decode()
    r = c.post("/team/training/sessions/new/", {"course_id": tw.course.pk, "node_id": tw.pudong.pk,
                                                "date": "2025-03-03", "start_time": "09:00", "end_time": "12:00",
                                                "place": "浦东网点会议室", "capacity": "1"})
    s = Session.objects.get(place="浦东网点会议室")
    assert r.status_code == 302 and r["Location"] == f"/team/training/sessions/{s.pk}/"
    assert (timezone.localtime(s.starts_at).hour, timezone.localtime(s.ends_at).hour) == (9, 12)
    r = c.post(f"/team/training/sessions/{s.pk}/enrol/", {"employee_ids": [tw.li.pk]})
    assert r.status_code == 302
    r = c.post(f"/team/training/sessions/{s.pk}/enrol/", {"employee_ids": [tw.wang.pk]})
    assert r.status_code == 409 and "名额已满" in r.content.decode()
    r = c.post(f"/team/training/sessions/{s.pk}/enrol/", {"employee_ids": [tw.zhou.pk]})
    assert r.status_code == 400 and "不属于本场次的组织单位" in r.content.decode()
    r = c.post(f"/team/training/sessions/{s.pk}/attendance/", {f"status_{tw.li.pk}": "attended",
                                                               f"score_{tw.li.pk}": "101"})
    assert r.status_code == 400 and "成绩须在 0 到 100 分之间。" in r.content.decode()
    r = c.post(f"/team/training/sessions/{s.pk}/attendance/", {f"status_{tw.li.pk}": "attended",
                                                               f"score_{tw.li.pk}": "88"})
    assert r.status_code == 302
    en = Enrolment.objects.get(session=s)
    assert (en.status, en.score, en.passed, en.hours) == ("attended", 88, True, Decimal("6.0"))
    r = c.get(f"/team/training/sessions/{s.pk}/")
    assert r.status_code == 200 and "通过" in r.content.decode()
    # the technician sees the session they attended, not the forms; another outlet's agent: 404
    r = client(tw.pudong_tech).get(f"/team/training/sessions/{s.pk}/")
    assert r.status_code == 200 and "attendance-form" not in r.content.decode()
    assert client(tw.tianhe_agent).get(f"/team/training/sessions/{s.pk}/").status_code == 404
    assert client(tw.pudong_manager).post(f"/team/training/sessions/{s.pk}/cancel/").status_code == 403


def test_enrol_page_out_of_scope_employee_is_404(tw):
    s = plan(tw, user=tw.east_trainer)
    c = client(tw.east_trainer)
    assert c.post(f"/team/training/sessions/{s.pk}/enrol/", {"employee_ids": [tw.zhou.pk]}).status_code == 404
    assert c.post(f"/team/training/sessions/{s.pk}/enrol/", {"employee_ids": [tw.li.pk]}).status_code == 302


def test_course_pages(tw):
    c = client(tw.trainer)
    r = c.get("/team/training/courses/")
    assert r.status_code == 200 and "AC-201" in r.content.decode() and "SAF-101" in r.content.decode()
    r = c.post("/team/training/courses/new/", {"code": "NEW-1", "title": "", "subject": "fault", "hours": "2"})
    assert r.status_code == 400 and "请填写此项。" in r.content.decode()
    r = c.post("/team/training/courses/new/", {"code": "NEW-1", "title": "新课", "subject": "fault", "hours": "2",
                                               "pass_mark": "60", "active": "1"})
    assert r.status_code == 302 and Course.objects.get(code="NEW-1").pass_mark == 60
    new = Course.objects.get(code="NEW-1")
    r = c.post(f"/team/training/courses/{new.pk}/edit/", {"code": "NEW-1", "title": "新课二", "subject": "safety",
                                                          "hours": "3", "pass_mark": ""})
    new.refresh_from_db()
    assert r.status_code == 302 and (new.title, new.subject, new.pass_mark, new.active) == ("新课二", "safety", None,
                                                                                             False)
    assert client(tw.pudong_manager).get("/team/training/courses/").status_code == 200
    assert client(tw.pudong_manager).get("/team/training/courses/new/").status_code == 403
    assert client(tw.pudong_tech).get("/team/training/courses/").status_code == 403


def test_record_overdue_people_and_safety_pages(tw):
    trained(tw, [tw.li], end=local(2025, 1, 10, 16), score=75)
    r = client(tw.pudong_tech).get("/team/training/me/")
    assert r.status_code == 200 and "李师傅" in r.content.decode() and "变频空调维修" in r.content.decode()
    assert client(tw.pudong_tech).get(f"/team/training/people/{tw.wang.pk}/").status_code == 404
    assert client(tw.pudong_manager).get(f"/team/training/people/{tw.li.pk}/").status_code == 200
    assert client(tw.pudong_manager).get(f"/team/training/people/{tw.zhou.pk}/").status_code == 404
    assert client(tw.hq_manager).get("/team/training/me/").status_code == 200   # not an employee: a note
    r = client(tw.pudong_manager).get("/team/training/overdue/")
    assert r.status_code == 200 and "李师傅" in r.content.decode() and "周师傅" not in r.content.decode()
    assert client(tw.pudong_tech).get("/team/training/overdue/").status_code == 403
    r = client(tw.east_manager).get("/team/training/people/", {"q": "陈"})
    assert r.status_code == 200 and "陈初级" in r.content.decode() and "李师傅" not in r.content.decode()
    assert client(tw.east_manager).get("/team/training/overdue/", {"node": tw.tianhe.pk}).status_code == 404
    c = client(tw.pudong_manager)
    r = c.post("/team/training/safety/", {"employee_id": tw.li.pk, "occurred_on": "2025-01-01", "severity": "minor",
                                          "description": ""})
    assert r.status_code == 400 and "请填写此项。" in r.content.decode()
    r = c.post("/team/training/safety/", {"employee_id": tw.li.pk, "occurred_on": "2025-01-01", "severity": "minor",
                                          "description": "未使用绝缘垫"})
    assert r.status_code == 302 and "未使用绝缘垫" in c.get("/team/training/safety/").content.decode()
    assert c.post("/team/training/safety/", {"employee_id": tw.zhou.pk, "occurred_on": "2025-01-01",
                                             "severity": "minor", "description": "x"}).status_code == 404
    assert client(tw.pudong_tech).get("/team/training/safety/").status_code == 403


# ================================================================ API

class Api:
    def __init__(self, user):
        self.c = client(user)

    def get(self, path, params=None):
        return self.c.get("/api/staff/training" + path, params or {})

    def post(self, path, data=None):
        return self.c.post("/api/staff/training" + path, json.dumps(data or {}, default=str),
                           content_type="application/json")

    def patch(self, path, data=None):
        return self.c.patch("/api/staff/training" + path, json.dumps(data or {}, default=str),
                            content_type="application/json")


def test_api_courses_sessions_enrol_attendance(tw):
    api = Api(tw.trainer)
    r = api.post("/courses", {"code": "api-1", "title": "接口课程", "subject": "system", "hours": "1.5",
                              "pass_mark": 60})
    assert r.status_code == 201 and r.json()["code"] == "API-1" and r.json()["subject_label"] == "售后服务管理系统使用"
    r = api.post("/courses", {"code": "api-2", "title": "x", "subject": "system", "hours": "1", "pass_mark": 120})
    assert r.status_code == 400 and r.json()["errors"]["pass_mark"] == ["及格分须在 0 到 100 分之间。"]
    assert Api(tw.pudong_tech).post("/courses", {"code": "Z", "title": "x", "subject": "system",
                                                 "hours": "1"}).status_code == 403
    body = {"course_id": tw.course.pk, "node_id": tw.pudong.pk, "starts_at": "2025-03-03T09:00:00",
            "ends_at": "2025-03-03T08:00:00", "place": "会议室", "capacity": 1}
    r = api.post("/sessions", body)
    assert r.status_code == 400 and r.json()["errors"] == {"ends_at": ["结束时间须晚于开始时间。"]}
    r = api.post("/sessions", {**body, "ends_at": "2025-03-03T12:00:00"})
    assert r.status_code == 201, r.content
    sid = r.json()["id"]
    assert r.json()["starts_at"] == "2025-03-03T01:00:00Z" and r.json()["enrolled"] == 0
    r = api.post(f"/sessions/{sid}/enrolments", {"employee_ids": [tw.li.pk]})
    assert r.status_code == 200 and [e["employee"]["name"] for e in r.json()["enrolments"]] == ["李师傅"]
    r = api.post(f"/sessions/{sid}/enrolments", {"employee_ids": [tw.wang.pk]})
    assert r.status_code == 409 and r.json()["code"] == "session_full"
    assert Api(tw.east_trainer).post(f"/sessions/{sid}/enrolments",
                                     {"employee_ids": [tw.zhou.pk]}).status_code == 404
    r = api.post(f"/sessions/{sid}/attendance", {"rows": [{"employee_id": tw.li.pk, "status": "attended",
                                                           "score": 101}]})
    assert r.status_code == 400 and r.json()["errors"] == {"rows[0].score": ["成绩须在 0 到 100 分之间。"]}
    r = api.post(f"/sessions/{sid}/attendance", {"rows": [{"employee_id": tw.li.pk, "status": "attended",
                                                           "score": 69}]})
    assert r.status_code == 200 and r.json()["status"] == "done"
    assert r.json()["enrolments"][0]["passed"] is False and r.json()["enrolments"][0]["hours"] == "6.0"
    assert Api(tw.pudong_tech).get(f"/sessions/{sid}").status_code == 200
    assert Api(tw.tianhe_agent).get(f"/sessions/{sid}").status_code == 404
    r = api.get("/sessions", {"start": "2025-03-01", "end": "2025-03-31"})
    assert r.status_code == 200 and [s["id"] for s in r.json()["items"]] == [sid]
    r = Api(tw.pudong_tech).get("/records/me")
    assert r.status_code == 200 and r.json()["total_hours"] == "6.0"
    assert {s["subject"]: s["hours"] for s in r.json()["subjects"]}["fault"] == "6.0"
    assert Api(tw.pudong_tech).get(f"/records/{tw.wang.pk}").status_code == 404
    assert Api(tw.hq_manager).get("/records/me").status_code == 404


def test_api_overdue_and_safety(tw):
    Employee.objects.update(hire_date=dt.date(2020, 1, 1))
    r = Api(tw.pudong_manager).get("/overdue")
    assert r.status_code == 200 and {x["employee"]["name"] for x in r.json()} == {"李师傅", "王高级"}
    assert Api(tw.pudong_tech).get("/overdue").status_code == 403
    r = Api(tw.pudong_manager).post("/safety-events", {"employee_id": tw.li.pk, "occurred_on": "2025-01-02",
                                                       "severity": "minor", "description": "未穿鞋套"})
    assert r.status_code == 201 and r.json()["employee"]["name"] == "李师傅"
    assert Api(tw.pudong_manager).post("/safety-events", {"employee_id": tw.zhou.pk, "occurred_on": "2025-01-02",
                                                          "severity": "minor", "description": "x"}).status_code == 404
    assert Api(tw.pudong_tech).get("/safety-events").status_code == 403
    r = Api(tw.pudong_manager).get("/safety-events")
    assert r.status_code == 200 and len(r.json()["items"]) == 1
