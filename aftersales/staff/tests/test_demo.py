"""The service team's demo data on a scaled-down ``manage.py demo``: six published monthly
cycles with a sheet for every technician, reviewed at every step, graded, ranked, with awards per
centre, warnings with improvement plans and a management-review flag; the technicians' scheme
changed three months ago; the current month's cycle open; a training history with exams and an
overdue list; a few safety events; and the same seed gives the same data."""

from __future__ import annotations

import datetime as dt
import hashlib
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from aftersales.org.models import Employee, Node, NodeKind, RoleAssignment
from aftersales.org.roles import Role
from aftersales.records.audit import audit_verify
from aftersales.staff import demo, scoring
from aftersales.staff import selectors_training as training
from aftersales.staff.models import (
    Attendance,
    Award,
    AwardKind,
    Course,
    Cycle,
    CycleStatus,
    Enrolment,
    ImprovementPlan,
    ItemKind,
    PlanFollowUp,
    Review,
    SafetyEvent,
    SchemeItem,
    SchemeVersion,
    Session,
    SessionStatus,
    Sheet,
    SheetScore,
    Step,
)
from aftersales.web.management.commands.demo import demo_reset

pytestmark = pytest.mark.django_db

SIZES = dict(seed=5, customers=300, units=450, orders=1500)
REVIEW_STEPS = [Step.SELF, Step.SUPERVISOR, Step.DEPARTMENT, Step.COMPANY]


def run_demo(**kw) -> str:
    err = StringIO()
    call_command("demo", stdout=StringIO(), stderr=err, **{**SIZES, **kw})
    return err.getvalue()


def months_back(n: int) -> dt.date:
    first = timezone.localdate().replace(day=1)
    y, m = divmod(first.year * 12 + first.month - 1 - n, 12)
    return dt.date(y, m + 1, 1)


def digest() -> str:
    """The service team's data without ids (people by employee number, nodes by code)."""
    h = hashlib.sha256()
    sheet = ("sheet__cycle__period_start", "sheet__employee__employee_no")
    for qs in (
        SchemeItem.objects.order_by("version__scheme__role", "version__number", "position").values_list(
            "version__scheme__role", "version__number", "version__valid_from", "code", "weight", "rule", "params"),
        Cycle.objects.order_by("period_start").values_list("period_start", "status", "grading_mode", "grading",
                                                           "bonus", "deadlines", "closed_at", "locked_at",
                                                           "published_at"),
        Sheet.objects.order_by("cycle__period_start", "employee__employee_no").values_list(
            "cycle__period_start", "employee__employee_no", "role", "version__number", "step", "auto_total", "total",
            "grade", "rank", "rank_of", "bonus", "last_place", "review_flag", "warning"),
        SheetScore.objects.order_by(*sheet, "item__code").values_list(*sheet, "item__code", "value", "score"),
        Review.objects.order_by(*sheet, "step").values_list(*sheet, "step", "reviewer__username", "scores",
                                                            "adjustment", "comment", "deadline", "submitted_at"),
        Award.objects.order_by("cycle__period_start", "kind", "node__code").values_list(
            "cycle__period_start", "kind", "node__code", "employee__employee_no", "score"),
        ImprovementPlan.objects.order_by(*sheet).values_list(*sheet, "goals", "coach__username", "due_on", "status"),
        PlanFollowUp.objects.order_by("plan__" + sheet[0], "plan__" + sheet[1], "at").values_list(
            "plan__" + sheet[1], "at", "author__username", "text"),
        Session.objects.order_by("starts_at", "node__code").values_list(
            "course__code", "node__code", "starts_at", "ends_at", "status", "place", "online", "trainer__username"),
        Enrolment.objects.order_by("session__starts_at", "session__node__code", "employee__employee_no").values_list(
            "session__starts_at", "employee__employee_no", "status", "hours", "score", "passed"),
        SafetyEvent.objects.order_by("occurred_on", "employee__employee_no").values_list(
            "occurred_on", "employee__employee_no", "severity", "description", "order__number",
            "recorded_by__username"),
    ):
        for row in qs:
            h.update(repr(row).encode())
    return h.hexdigest()


def test_staff_demo():
    err = run_demo()
    for label in ("培训场次与记录", "安全事件", "考核方案", "月度考核周期"):
        assert label in err  # each step prints its rows and time
    today = timezone.localdate()
    months = [months_back(k) for k in range(6, 0, -1)]

    # six published monthly cycles, the last six whole months; the current month's open
    cycles = list(Cycle.objects.order_by("period_start"))
    assert [c.period_start for c in cycles] == [*months, today.replace(day=1)]
    assert [c.status for c in cycles] == [CycleStatus.PUBLISHED] * 6 + [CycleStatus.OPEN]
    for c in cycles[:6]:
        assert c.closed_at < c.locked_at < c.published_at
        assert timezone.localdate(c.closed_at) > c.period_end
    published = cycles[:6]

    # the technicians' scheme: version 2 from three months ago; agents' and dispatchers' too
    versions = {(v.scheme.role, v.number): v for v in SchemeVersion.objects.select_related("scheme")}
    assert set(versions) == {(Role.TECHNICIAN, 1), (Role.TECHNICIAN, 2), (Role.AGENT, 1), (Role.DISPATCHER, 1)}
    assert versions[(Role.TECHNICIAN, 2)].valid_from == months[3]
    for v in versions.values():
        items = list(v.items.all())
        assert sum(it.weight for it in items) == 100
        assert {it.group for it in items} == {"efficiency", "quality", "capability", "cost", "safety"}
        assert {it.kind for it in items} == {ItemKind.AUTO, ItemKind.MANUAL}

    # a sheet for every technician employed by the end of each cycle, with the version in force
    all_techs = Employee.objects.filter(active=True, user__role_assignments__role=Role.TECHNICIAN)
    assert all_techs.count() >= 100
    for i, c in enumerate(published):
        techs = set(all_techs.filter(hire_date__lte=c.period_end).values_list("id", flat=True))
        assert techs
        sheets = Sheet.objects.filter(cycle=c)
        assert set(sheets.filter(role=Role.TECHNICIAN).values_list("employee_id", flat=True)) == techs
        assert set(sheets.filter(role=Role.TECHNICIAN).values_list("version__number", flat=True)) == {1 if i < 3 else 2}
        assert sheets.filter(role=Role.AGENT).exists()
        # every step done by its own reviewer, then the results
        assert not sheets.exclude(step=Step.CALIBRATION).exists()
        assert not sheets.filter(total__isnull=True).exists() and not sheets.filter(rank__isnull=True).exists()
        grades = dict(sheets.values_list("grade").annotate(n=Count("id")).values_list("grade", "n"))
        assert len(grades) >= 3 and "" not in grades  # grades distributed
        warned = sheets.filter(warning=True)
        assert warned.exists() and not warned.filter(plan__isnull=True).exists()
        assert set(warned.values_list("grade", flat=True)) == {c.grading[-1]["grade"]}
        assert not sheets.filter(bonus__isnull=True).exists()
        # service star per centre, best team
        stars = set(Award.objects.filter(cycle=c, kind=AwardKind.STAR).values_list("node__code", flat=True))
        assert stars == set(Node.objects.filter(kind=NodeKind.CENTRE).values_list("code", flat=True))
        assert Award.objects.filter(cycle=c, kind=AwardKind.BEST_TEAM).count() == 1
        # a few calibrated
        assert 1 <= Review.objects.filter(sheet__cycle=c, step=Step.CALIBRATION, adjustment__isnull=False).count() <= 3
    assert {c.grading_mode for c in published} == {"bands", "forced"}

    reviews = Review.objects.filter(sheet__cycle__in=published).exclude(step=Step.CALIBRATION)
    assert reviews.count() == Sheet.objects.filter(cycle__in=published).count() * 4
    assert not reviews.filter(reviewer__isnull=True).exists()
    users = {e.pk: e.user_id for e in Employee.objects.all()}
    for r in reviews.select_related("sheet").filter(step=Step.SELF)[:50]:
        assert r.reviewer_id == users[r.sheet.employee_id] and r.comment
    sup = reviews.filter(step=Step.SUPERVISOR, sheet__role=Role.TECHNICIAN).select_related("sheet").first()
    assert set(sup.scores) == {"knowledge", "teamwork"}
    assert RoleAssignment.objects.filter(user_id=sup.reviewer_id, role=Role.OUTLET_MANAGER,
                                         node_id=sup.sheet.node_id).exists()
    # manual items rated, the totals those of the scores (and the calibration)
    assert not SheetScore.objects.filter(sheet__cycle__in=published, item__kind=ItemKind.MANUAL,
                                         score__isnull=True).exists()
    s = Sheet.objects.filter(cycle=published[-1]).exclude(reviews__step=Step.CALIBRATION).first()
    assert s.total == scoring.total(SheetScore.objects.filter(sheet=s).values_list("score", "item__weight"))

    # last place in a row flagged for management review; plans followed up
    flagged = Sheet.objects.filter(review_flag=True)
    assert flagged.exists() and not flagged.filter(last_place=False).exists()
    assert PlanFollowUp.objects.exists()
    assert set(ImprovementPlan.objects.values_list("status", flat=True)) >= {"open", "done"}

    # training: sessions held and planned, ~90 % attendance, exams, records, an overdue list
    assert Session.objects.filter(status=SessionStatus.DONE).exists()
    assert Session.objects.filter(status=SessionStatus.PLANNED, starts_at__gt=timezone.now()).exists()
    held = Enrolment.objects.filter(status__in=[Attendance.ATTENDED, Attendance.ABSENT])
    attended = held.filter(status=Attendance.ATTENDED)
    assert held.count() > 300 and 0.82 <= attended.count() / held.count() <= 0.97
    assert attended.filter(score__isnull=False, passed=True).exists()
    assert attended.filter(passed=False).exists()
    assert Enrolment.objects.filter(status=Attendance.ENROLLED, session__status=SessionStatus.PLANNED).exists()
    tech_user = get_user_model().objects.get(username="technician")
    record = training.training_record(tech_user, tech_user.employee.pk)
    assert record.enrolments and record.total_hours > 0
    hq_manager = get_user_model().objects.get(username="hq_manager")
    overdue = training.overdue_list(hq_manager)
    assert 1 <= len(overdue) <= 40
    assert Course.objects.filter(sessions__isnull=False).distinct().count() >= 5

    # a few safety events, counted by the technicians' appraisal
    events = list(SafetyEvent.objects.all())
    assert 3 <= len(events) <= 10 and {e.severity for e in events} == {"minor", "serious"}
    counted = SheetScore.objects.filter(item__source="safety_incidents", value__gt=0)
    assert counted.exists()
    assert audit_verify().ok


def committed() -> None:
    """What the commit between two demo loads does to the test's one transaction: deferred
    foreign-key checks run (PostgreSQL refuses to TRUNCATE a table with checks pending)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cur.execute("SET CONSTRAINTS ALL DEFERRED")


def test_same_seed_same_data_and_reset():
    run_demo()
    first = digest()
    committed()
    assert demo.reset() > 0
    assert not (Cycle.objects.exists() or Sheet.objects.exists() or SchemeVersion.objects.exists()
                or Session.objects.exists() or Enrolment.objects.exists() or SafetyEvent.objects.exists())
    assert Course.objects.exists()  # the courses and cadence rules stay
    demo.build(seed=SIZES["seed"], today=timezone.localdate())
    assert digest() == first
    committed()
    demo.reset()
    demo.build(seed=SIZES["seed"] + 1, today=timezone.localdate())
    assert digest() != first
    demo_reset()  # the command's reset: the staff rows go first, then what they point at
    assert not (Cycle.objects.exists() or Sheet.objects.exists() or Session.objects.exists()
                or Employee.objects.exists() or Node.objects.exists())
