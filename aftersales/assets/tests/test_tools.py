"""The tool register (R-PART-2): registering, handing out, the overdue flag, calibration moving
the due date, a failed check taking the tool out of use, the look-up dispatch uses."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from aftersales.assets import selectors, services
from aftersales.assets.models import Calibration, Tool
from aftersales.catalog.warranty import add_months
from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

from .conftest import tool

pytestmark = pytest.mark.django_db

def today():
    return timezone.localdate()


def days(n):
    return today() + dt.timedelta(days=n)


# ---------------------------------------------------------------- registering

def test_register_checks_every_field_at_once(aw):
    with pytest.raises(ValidationFailed) as e:
        services.tool_create(user=aw.pudong_manager, node_id=aw.pudong.pk, code=" bad code!", name="",
                             kind="gadget", check_kind="calibration")
    assert set(e.value.errors) == {"code", "name", "kind", "interval_months", "due_on"}
    with pytest.raises(ValidationFailed) as e:
        services.tool_create(user=aw.pudong_manager, node_id=aw.pudong.pk, code="GJ-1", name="万用表",
                             check_kind="calibration", interval_months=0, due_on="yesterday")
    assert set(e.value.errors) == {"interval_months", "due_on"}
    with pytest.raises(NotFound):
        services.tool_create(user=aw.pudong_manager, node_id=aw.tianhe.pk, code="GJ-1", name="万用表")
    with pytest.raises(NotFound):
        services.tool_create(user=aw.pudong_manager, node_id=10**9, code="GJ-1", name="万用表")
    with pytest.raises(PermissionDenied):
        services.tool_create(user=aw.pudong_tech, node_id=aw.pudong.pk, code="GJ-1", name="万用表")


def test_register_with_a_holder_and_a_certificate(aw, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    pdf = SimpleUploadedFile("cert.pdf", b"%PDF-1.4 test certificate", content_type="application/pdf")
    t = services.tool_create(user=aw.pudong_manager, node_id=aw.pudong.pk, code="GJ-MM-1", name="数字万用表",
                             check_kind="calibration", interval_months=12, due_on=days(100), certificate_no="JL001",
                             certificate=pdf, holder_id=aw.tech_employee.pk)
    assert t.state == "in_use" and t.holder == aw.tech_employee and t.certificate.name.endswith(".pdf")
    with pytest.raises(ValidationFailed) as e:  # the code is taken; a text file is no certificate
        services.tool_create(user=aw.pudong_manager, node_id=aw.pudong.pk, code="GJ-MM-1", name="x",
                             certificate=SimpleUploadedFile("c.txt", b"hello"))
    assert set(e.value.errors) == {"code", "certificate"}


# ---------------------------------------------------------------- the overdue flag

def test_overdue_and_due_soon_flags_and_filters(aw):
    late = tool(aw.pudong, "GJ-1", holder=aw.tech_employee, due_on=days(-1))
    soon = tool(aw.pudong, "GJ-2", holder=aw.tech_employee, due_on=days(7))
    today_ = tool(aw.pudong, "GJ-3", due_on=days(0))
    fine = tool(aw.pudong, "GJ-4", due_on=days(8))
    untracked = tool(aw.pudong, "GJ-5", check_kind="none")
    retired = tool(aw.pudong, "GJ-6", due_on=days(-30), state="retired")
    flags = {t.code: selectors.due_flag(t) for t in (late, soon, today_, fine, untracked, retired)}
    assert flags == {"GJ-1": "overdue", "GJ-2": "soon", "GJ-3": "soon", "GJ-4": "", "GJ-5": "", "GJ-6": ""}
    assert late.is_overdue(today()) and not today_.is_overdue(today())
    user = aw.pudong_manager
    assert [t.code for t in selectors.tool_list(user, due="overdue")] == ["GJ-1"]
    assert sorted(t.code for t in selectors.tool_list(user, due="soon")) == ["GJ-2", "GJ-3"]
    assert sorted(t.code for t in selectors.tool_list(user, holder_id=aw.tech_employee.pk)) == ["GJ-1", "GJ-2"]
    assert list(selectors.tool_list(aw.tianhe_manager)) == []
    assert [t.code for t in selectors.tool_list(user, q="gj-4")] == ["GJ-4"]


def test_overdue_instruments_of_in_one_query(aw, django_assert_num_queries):
    e = aw.tech_employee
    a = tool(aw.pudong, "GJ-A", holder=e, due_on=days(-10))
    b = tool(aw.pudong, "GJ-B", holder=e, due_on=days(-2))
    tool(aw.pudong, "GJ-C", holder=e, due_on=days(5))  # not yet
    tool(aw.pudong, "GJ-D", holder=e, check_kind="none")
    t = tool(aw.pudong, "GJ-E", holder=e, due_on=days(-3))
    Tool.objects.filter(pk=t.pk).update(state="under_repair")  # out of use: not what they carry
    with django_assert_num_queries(1):
        out = selectors.overdue_instruments_of([e.pk, 999])
    assert [x.code for x in out[e.pk]] == [a.code, b.code] and 999 not in out
    # on a later day (the appointment's), the one due in 5 days is overdue too
    assert len(selectors.overdue_instruments_of([e.pk], on=days(6))[e.pk]) == 3
    with django_assert_num_queries(0):
        assert selectors.overdue_instruments_of([]) == {}
    assert "GJ-A" in selectors.instrument_warning(a) and a.due_on.isoformat() in selectors.instrument_warning(a)


# ---------------------------------------------------------------- calibration

def test_a_calibration_moves_the_due_date(aw):
    t = tool(aw.pudong, "GJ-1", holder=aw.tech_employee, due_on=days(-5))
    done = days(-1)
    c = services.calibration_record(user=aw.quality, tool_id=t.pk, done_on=done, result="pass",
                                    certificate_no="JL2026-01", agency="上海市计量测试技术研究院")
    t.refresh_from_db()
    assert c.next_due == add_months(done, 12) == t.due_on
    assert t.certificate_no == "JL2026-01" and not t.is_overdue(today()) and t.state == "in_use"
    # a given next due date wins
    c2 = services.calibration_record(user=aw.pudong_manager, tool_id=t.pk, done_on=today(), result="pass",
                                     certificate_no="JL2026-02", next_due=days(90))
    t.refresh_from_db()
    assert t.due_on == days(90) == c2.next_due
    assert [x.pk for x in selectors.tool_history(aw.pudong_tech, t.pk)] == [c2.pk, c.pk]


def test_a_failed_check_takes_the_tool_out_of_use_until_it_passes(aw):
    t = tool(aw.pudong, "GJ-1", holder=aw.tech_employee, due_on=days(20))
    services.calibration_record(user=aw.pudong_manager, tool_id=t.pk, done_on=today(), result="fail",
                                next_due=days(300), note="示值超差")
    t.refresh_from_db()
    assert t.state == "under_repair" and t.due_on == days(20)  # the due date stays
    assert Calibration.objects.get(tool=t).next_due is None
    assert selectors.overdue_instruments_of([aw.tech_employee.pk], on=days(30)) == {}  # not carried
    with pytest.raises(Conflict):
        services.tool_assign(user=aw.pudong_manager, tool_id=t.pk, holder_id=aw.tech_employee.pk)
    services.calibration_record(user=aw.pudong_manager, tool_id=t.pk, done_on=today(), result="pass",
                                certificate_no="JL-2")
    t.refresh_from_db()
    assert t.state == "in_use" and t.due_on == add_months(today(), 12)


def test_calibration_bad_input(aw):
    t = tool(aw.pudong, "GJ-1", due_on=days(3))
    with pytest.raises(ValidationFailed) as e:
        services.calibration_record(user=aw.pudong_manager, tool_id=t.pk, done_on=days(1), result="maybe",
                                    certificate_no="x" * 51)
    assert set(e.value.errors) == {"done_on", "result", "certificate_no"}
    with pytest.raises(ValidationFailed) as e:  # a calibration passed without its certificate number
        services.calibration_record(user=aw.pudong_manager, tool_id=t.pk, done_on=today(), result="pass")
    assert set(e.value.errors) == {"certificate_no"}
    with pytest.raises(ValidationFailed) as e:  # a due date in the past
        services.calibration_record(user=aw.pudong_manager, tool_id=t.pk, done_on=days(-30), result="pass",
                                    certificate_no="JL", next_due=days(-1))
    assert set(e.value.errors) == {"next_due"}
    with pytest.raises(ValidationFailed) as e:  # the interval from an old date has already run out
        services.calibration_record(user=aw.pudong_manager, tool_id=t.pk, done_on=days(-400), result="pass",
                                    certificate_no="JL")
    assert set(e.value.errors) == {"done_on"}
    services.calibration_record(user=aw.pudong_manager, tool_id=t.pk, done_on=days(-2), result="pass",
                                certificate_no="JL")
    with pytest.raises(ValidationFailed) as e:  # before the last record
        services.calibration_record(user=aw.pudong_manager, tool_id=t.pk, done_on=days(-3), result="pass",
                                    certificate_no="JL")
    assert set(e.value.errors) == {"done_on"}
    with pytest.raises(NotFound):
        services.calibration_record(user=aw.pudong_manager, tool_id=10**9, done_on=today(), result="pass")
    with pytest.raises(NotFound):
        services.calibration_record(user=aw.tianhe_manager, tool_id=t.pk, done_on=today(), result="pass")
    untracked = tool(aw.pudong, "GJ-2", check_kind="none")
    with pytest.raises(Conflict):
        services.calibration_record(user=aw.pudong_manager, tool_id=untracked.pk, done_on=today(), result="pass")
    assert Calibration.objects.count() == 1


# ---------------------------------------------------------------- handing out

def test_assign_and_take_back(aw):
    t = tool(aw.pudong, "GJ-1", due_on=days(30))
    t = services.tool_assign(user=aw.pudong_manager, tool_id=t.pk, holder_id=aw.tech_employee.pk)
    assert t.state == "in_use" and t.holder_id == aw.tech_employee.pk
    t = services.tool_assign(user=aw.pudong_manager, tool_id=t.pk, holder_id=None)
    assert t.state == "in_store" and t.holder_id is None


def test_assign_rules(aw):
    t = tool(aw.pudong, "GJ-1", due_on=days(30))
    with pytest.raises(ValidationFailed) as e:  # Hangzhou's technician: not of Pudong's subtree
        services.tool_assign(user=aw.east_manager, tool_id=t.pk, holder_id=aw.hangzhou_employee.pk)
    assert "holder_id" in e.value.errors
    with pytest.raises(ValidationFailed):  # an employee out of the manager's scope
        services.tool_assign(user=aw.pudong_manager, tool_id=t.pk, holder_id=aw.hangzhou_employee.pk)
    with pytest.raises(ValidationFailed):
        services.tool_assign(user=aw.pudong_manager, tool_id=t.pk, holder_id=10**9)
    with pytest.raises(NotFound):
        services.tool_assign(user=aw.pudong_manager, tool_id=10**9, holder_id=aw.tech_employee.pk)
    late = tool(aw.pudong, "GJ-2", due_on=days(-1))
    with pytest.raises(Conflict) as e:  # an instrument whose check has lapsed is not handed out
        services.tool_assign(user=aw.pudong_manager, tool_id=late.pk, holder_id=aw.tech_employee.pk)
    assert e.value.code == "tool_overdue"
    services.tool_update(user=aw.pudong_manager, tool_id=t.pk, state="retired")
    with pytest.raises(Conflict):
        services.tool_assign(user=aw.pudong_manager, tool_id=t.pk, holder_id=aw.tech_employee.pk)
    with pytest.raises(Conflict):
        services.tool_update(user=aw.pudong_manager, tool_id=t.pk, state="in_store")


def test_update_state_and_check(aw):
    t = tool(aw.pudong, "GJ-1", holder=aw.tech_employee, due_on=days(30))
    t = services.tool_update(user=aw.pudong_manager, tool_id=t.pk, state="in_store")
    assert t.holder_id is None
    with pytest.raises(ValidationFailed):
        services.tool_update(user=aw.pudong_manager, tool_id=t.pk, state="in_use")
    with pytest.raises(ValidationFailed) as e:  # tracked needs an interval
        services.tool_update(user=aw.pudong_manager, tool_id=t.pk, interval_months=None)
    assert "interval_months" in e.value.errors
    t = services.tool_update(user=aw.pudong_manager, tool_id=t.pk, check_kind="none")
    assert t.interval_months is None and t.due_on is None
