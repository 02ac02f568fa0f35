"""The review steps of a sheet: each by its own role, in order, with comments and the deadline
kept; ratings checked (0–100, the step's items only); calibration; the reviewers' to-do list
and their reminders."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from aftersales.conftest import make_user
from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from aftersales.notifications.models import Message
from aftersales.org.roles import Role
from aftersales.staff import selectors_appraisal as reads
from aftersales.staff import services_appraisal as svc
from aftersales.staff.models import CycleStatus, Review, Sheet, SheetScore, Step

from .test_cycle import agg, close, open_cycle, team  # noqa: F401 - the fixture

DEADLINES = {"self": "2025-04-05", "supervisor": "2025-04-10", "department": "2025-04-15",
             "company": "2025-04-20", "calibration": "2025-04-25"}


@pytest.fixture
def sheets(team):  # noqa: F811 - the fixture imported above
    w = team
    w.hz_manager = make_user("hz_manager", Role.OUTLET_MANAGER, w.hangzhou)
    agg(w.tech, orders=10, visited=10, ftf=8, responded=10, response_min=300)  # ftf 80 → 75; 30 min → 100
    w.cycle = close(w, open_cycle(w, deadlines=DEADLINES))
    w.sheet = Sheet.objects.get(cycle=w.cycle, employee=w.tech)
    w.sheet2 = Sheet.objects.get(cycle=w.cycle, employee=w.tech2)
    return w


def submit(user, sheet, step, scores, comment=""):
    return svc.review_submit(user=user, sheet_id=sheet.pk, step=step, scores=scores, comment=comment)


def all_steps(w, sheet, attitude=80, own=70):
    submit(sheet.employee.user, sheet, "self", {"self_view": own}, "本月完成了全部派单")
    submit(w.pudong_manager, sheet, "supervisor", {"attitude": attitude}, "态度认真")
    submit(w.east_manager, sheet, "department", {}, "同意")
    return submit(w.hq_manager, sheet, "company", {}, "同意")


def test_the_steps_in_order_each_by_its_role(sheets):
    w = sheets
    s = submit(w.pudong_tech, w.sheet, "self", {"self_view": 70}, "本月完成了全部派单")
    assert s.step == Step.SUPERVISOR
    s = submit(w.pudong_manager, w.sheet, "supervisor", {"attitude": 80}, "态度认真")
    assert s.step == Step.DEPARTMENT
    s = submit(w.east_manager, w.sheet, "department", {}, "")
    s = submit(w.hq_manager, w.sheet, "company", {}, "同意")
    assert s.step == Step.CALIBRATION
    reviews = {r.step: r for r in Review.objects.filter(sheet=w.sheet)}
    assert [r.step for r in reads.sheet_reviews(w.sheet)] == ["self", "supervisor", "department", "company"]
    assert reviews["supervisor"].reviewer == w.pudong_manager and reviews["supervisor"].comment == "态度认真"
    assert reviews["supervisor"].scores == {"attitude": 80.0}
    # the deadlines of the cycle are kept with each step
    assert {k: r.deadline.isoformat() for k, r in reviews.items()} == {k: DEADLINES[k] for k in reviews}
    rated = SheetScore.objects.get(sheet=w.sheet, item__code="attitude")
    assert (rated.value, rated.score, rated.step) == (Decimal("80.00"), Decimal("80.00"), "supervisor")
    # ftf 75×20 + response 100×20 + safety 100×10 + training 0×10 + complaints 100×10 + 80×20 + 70×10
    assert Sheet.objects.get(pk=w.sheet.pk).total == Decimal("78.00")


def test_a_technician_cannot_do_the_supervisor_step(sheets):
    w = sheets
    submit(w.pudong_tech, w.sheet, "self", {"self_view": 70})
    with pytest.raises(PermissionDenied):
        submit(w.pudong_tech, w.sheet, "supervisor", {"attitude": 100})
    with pytest.raises(NotFound):  # a colleague's sheet is out of sight
        submit(w.pudong_tech, w.sheet2, "self", {"self_view": 100})


def test_the_manager_of_another_outlet_cannot_rate(sheets):
    w = sheets
    submit(w.pudong_tech, w.sheet, "self", {"self_view": 70})
    with pytest.raises(NotFound):
        submit(w.hz_manager, w.sheet, "supervisor", {"attitude": 100})
    with pytest.raises(NotFound):
        reads.sheet_get(w.hz_manager, w.sheet.pk)
    assert reads.sheet_get(w.pudong_manager, w.sheet.pk) == w.sheet


def test_each_step_only_by_its_own_role(sheets):
    w = sheets
    with pytest.raises(PermissionDenied):  # the manager cannot self-assess for the person
        submit(w.pudong_manager, w.sheet, "self", {"self_view": 100})
    submit(w.pudong_tech, w.sheet, "self", {"self_view": 70})
    with pytest.raises(PermissionDenied):  # the centre manager is the department step, not the supervisor
        submit(w.east_manager, w.sheet, "supervisor", {"attitude": 100})
    # a technician who also manages the outlet does not review themselves
    submit(w.tech2.user, w.sheet2, "self", {"self_view": 90})
    with pytest.raises(PermissionDenied):
        submit(w.tech2.user, w.sheet2, "supervisor", {"attitude": 100})
    # but rates their colleague
    assert submit(w.tech2.user, w.sheet, "supervisor", {"attitude": 60}).step == Step.DEPARTMENT


def test_steps_go_in_order(sheets):
    w = sheets
    with pytest.raises(Conflict):
        submit(w.pudong_manager, w.sheet, "supervisor", {"attitude": 80})
    submit(w.pudong_tech, w.sheet, "self", {"self_view": 70})
    with pytest.raises(Conflict):
        submit(w.pudong_tech, w.sheet, "self", {"self_view": 70})  # done already
    with pytest.raises(Conflict):
        submit(w.hq_manager, w.sheet, "company", {})
    with pytest.raises(ValidationFailed) as e:
        submit(w.pudong_manager, w.sheet, "lunch", {})
    assert set(e.value.errors) == {"step"}


def test_ratings_out_of_range_or_of_another_step_are_refused(sheets):
    w = sheets
    with pytest.raises(ValidationFailed) as e:
        submit(w.pudong_tech, w.sheet, "self", {"self_view": 101, "attitude": 100, "ftf": 100}, "x" * 2001)
    assert set(e.value.errors) == {"scores.self_view", "scores.attitude", "scores.ftf", "comment"}
    for bad in (-1, "abc", 99.999, True, None):
        with pytest.raises(ValidationFailed) as e:
            submit(w.pudong_tech, w.sheet, "self", {"self_view": bad})
        assert set(e.value.errors) == {"scores.self_view"}
    with pytest.raises(ValidationFailed) as e:  # every item of the step must be rated
        submit(w.pudong_tech, w.sheet, "self", {})
    assert set(e.value.errors) == {"scores.self_view"}
    with pytest.raises(ValidationFailed) as e:
        submit(w.pudong_tech, w.sheet, "self", [70])
    assert set(e.value.errors) == {"scores"}
    assert Sheet.objects.get(pk=w.sheet.pk).step == Step.SELF
    assert submit(w.pudong_tech, w.sheet, "self", {"self_view": "99.5"}).step == Step.SUPERVISOR


def test_calibration_after_the_steps_by_the_manager(sheets):
    w = sheets
    with pytest.raises(Conflict):  # steps not done
        svc.calibrate(user=w.hq_manager, sheet_id=w.sheet.pk, adjustment=2, comment="x")
    all_steps(w, w.sheet)
    with pytest.raises(PermissionDenied):
        svc.calibrate(user=w.pudong_manager, sheet_id=w.sheet.pk, adjustment=2, comment="x")
    with pytest.raises(ValidationFailed) as e:
        svc.calibrate(user=w.east_manager, sheet_id=w.sheet.pk, adjustment=101, comment="")
    assert set(e.value.errors) == {"adjustment", "comment"}
    s = svc.calibrate(user=w.east_manager, sheet_id=w.sheet.pk, adjustment=-3.5, comment="与同组对齐")
    assert s.total == Decimal("74.50")  # 78 − 3.5
    s = svc.calibrate(user=w.hq_manager, sheet_id=w.sheet.pk, adjustment=50, comment="重新校准")
    assert s.total == Decimal("100.00")  # kept within 0–100
    r = Review.objects.get(sheet=w.sheet, step="calibration")
    assert (r.reviewer, r.adjustment, r.deadline) == (w.hq_manager, Decimal("50.00"), dt.date(2025, 4, 25))
    w.cycle.refresh_from_db()
    assert w.cycle.status == CycleStatus.CALIBRATING


def test_no_reviews_once_locked(sheets):
    w = sheets
    svc.cycle_lock(user=w.hq_manager, cycle_id=w.cycle.pk)
    with pytest.raises(Conflict):
        submit(w.pudong_tech, w.sheet, "self", {"self_view": 70})


def test_the_reviewers_to_do_list(sheets):
    w = sheets
    assert set(reads.sheets_to_review(w.pudong_tech)) == {w.sheet}
    assert set(reads.sheets_to_review(w.pudong_manager)) == set()
    submit(w.pudong_tech, w.sheet, "self", {"self_view": 70})
    assert set(reads.sheets_to_review(w.pudong_manager)) == {w.sheet}
    assert set(reads.sheets_to_review(w.hz_manager)) == set()
    assert set(reads.sheets_to_review(w.tech2.user)) == {w.sheet, w.sheet2}  # colleague's supervisor step, own self


def test_review_reminders_once_per_reviewer_and_step(sheets):
    w = sheets
    submit(w.pudong_tech, w.sheet, "self", {"self_view": 70})
    early = timezone.make_aware(dt.datetime(2025, 4, 1, 9))
    assert svc.review_reminders(early) == 0  # nothing due within two days
    at = timezone.make_aware(dt.datetime(2025, 4, 3, 9))  # self due on the 5th
    n = svc.review_reminders(at)
    msgs = Message.objects.filter(event="appraisal_review_due")
    # self: everyone still at the self step (tech2, the agent, hz_tech); nobody at the supervisor step is due yet
    assert n == 3 == msgs.count()
    assert {m.user for m in msgs} == {w.tech2.user, w.pudong_agent, w.hz_tech.user}
    assert "自评" in msgs.first().body and "2025-04-05" in msgs.first().body
    assert svc.review_reminders(at) == 0  # once
    later = timezone.make_aware(dt.datetime(2025, 4, 9, 9))  # supervisor due on the 10th: pudong's two managers
    assert svc.review_reminders(later) == 2
    assert set(Message.objects.filter(event="appraisal_review_due", ref__endswith=":supervisor")
               .values_list("user__username", flat=True)) == {"pudong_manager", "pd_tech2"}
