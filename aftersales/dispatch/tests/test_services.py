"""Dispatch services: booking without overlap, bad input, the technician's answer, reassignment,
auto-dispatch per node, notifications, reminders, settings."""

import datetime as dt

import pytest
from django.utils import timezone

from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from aftersales.dispatch import receivers, selectors, services
from aftersales.dispatch.models import Booking, DispatchSetting
from aftersales.notifications.models import Message
from aftersales.records.audit import audit_verify
from aftersales.records.models import AuditEntry
from aftersales.tickets import workflow
from aftersales.tickets.models import OrderEvent, Status, WorkOrder

from .conftest import at, new_order, slot


def dispatch(w, order, emp=None, s=None, user=None, note=""):
    a, b = s or slot(10)
    return services.dispatch_order(user=user or w.pudong_dispatcher, order_id=order.pk,
                                   employee_id=(emp or w.tech_employee).pk, starts_at=a, ends_at=b, note=note)


def active(order) -> list[Booking]:
    return list(Booking.objects.filter(order=order, active=True))


# ---------------------------------------------------------------- dispatch

def test_dispatch_books_and_moves_the_order(dw):
    o = new_order(dw)
    a, b = slot(10)
    o = dispatch(dw, o, note="客户要求上午")
    assert o.status == Status.DISPATCHED and o.assignee_id == dw.tech_employee.pk
    assert (o.appointment_from, o.appointment_to) == (a, b)
    [bk] = active(o)
    assert (bk.employee_id, bk.starts_at, bk.ends_at, bk.created_by_id) == (dw.tech_employee.pk, a, b,
                                                                             dw.pudong_dispatcher.pk)
    ev = OrderEvent.objects.get(order=o, action="dispatch")
    assert ev.note == "客户要求上午" and ev.data["assignee"] == dw.tech_employee.pk
    assert AuditEntry.objects.filter(object_type="dispatch.booking", object_id=str(bk.pk),
                                     action="booking.create").count() == 1
    assert audit_verify().ok


def test_overlap_is_refused_with_a_clear_409_and_nothing_written(dw):
    first = dispatch(dw, new_order(dw))
    o = new_order(dw)
    events = OrderEvent.objects.count()
    with pytest.raises(Conflict) as e:
        dispatch(dw, o, s=slot(11))
    msg = str(e.value.message)
    assert first.number in msg and "李师傅" in msg and "10:00–12:00" in msg and "不能重复预约" in msg
    assert e.value.status == 409 and e.value.code == "booking_conflict"
    assert WorkOrder.objects.get(pk=o.pk).status == Status.CLASSIFIED
    assert not active(o) and OrderEvent.objects.count() == events


@pytest.mark.parametrize("s,ok", [
    ((at(12), at(14)), True),  # starts when the other ends
    ((at(8), at(10)), True),  # ends when the other starts
    ((at(9), at(10, 1)), False),
    ((at(11, 59), at(13)), False),
    ((at(10, 30), at(11)), False),  # inside
    ((at(9), at(13)), False),  # around
])
def test_adjacent_slots_are_allowed_overlapping_not(dw, s, ok):
    dispatch(dw, new_order(dw), s=(at(10), at(12)))
    o = new_order(dw)
    if ok:
        assert dispatch(dw, o, s=s).status == Status.DISPATCHED
    else:
        with pytest.raises(Conflict):
            dispatch(dw, o, s=s)


def test_another_technician_at_the_same_time_is_fine(dw):
    dispatch(dw, new_order(dw))
    assert dispatch(dw, new_order(dw), emp=dw.tech2).status == Status.DISPATCHED


@pytest.mark.parametrize("kw,fields", [
    ({"starts_at": timezone.now() - dt.timedelta(hours=2), "ends_at": timezone.now() - dt.timedelta(hours=1)},
     {"starts_at"}),
    ({"starts_at": at(12), "ends_at": at(10)}, {"ends_at"}),
    ({"starts_at": at(12), "ends_at": at(12)}, {"ends_at"}),
    ({"starts_at": at(8), "ends_at": at(17)}, {"ends_at"}),  # more than 8 h
    ({"starts_at": at(8, days=120), "ends_at": at(9, days=120)}, {"starts_at"}),
    ({"employee_id": 999999}, {"employee_id"}),
    ({"employee_id": 999999, "starts_at": at(12), "ends_at": at(10)}, {"employee_id", "ends_at"}),
    ({"starts_at": None, "ends_at": None}, {"starts_at", "ends_at"}),
])
def test_bad_input_is_400_naming_every_field_and_writes_nothing(dw, kw, fields):
    o = new_order(dw)
    args = {"user": dw.pudong_dispatcher, "order_id": o.pk, "employee_id": dw.tech_employee.pk,
            "starts_at": at(10), "ends_at": at(12)}
    args.update(kw)
    counts = (Booking.objects.count(), OrderEvent.objects.count(), AuditEntry.objects.count())
    with pytest.raises(ValidationFailed) as e:
        services.dispatch_order(**args)
    assert set(e.value.errors) == fields
    assert (Booking.objects.count(), OrderEvent.objects.count(), AuditEntry.objects.count()) == counts
    assert WorkOrder.objects.get(pk=o.pk).status == Status.CLASSIFIED


def test_naive_times_are_read_in_local_time(dw):
    o = new_order(dw)
    a = at(10).replace(tzinfo=None)
    o = services.dispatch_order(user=dw.pudong_dispatcher, order_id=o.pk, employee_id=dw.tech_employee.pk,
                                starts_at=a, ends_at=a + dt.timedelta(hours=2))
    assert o.appointment_from == at(10)


def test_ineligible_technician_gets_the_blockers_as_field_errors(dw):
    o = new_order(dw)
    with pytest.raises(ValidationFailed) as e:
        dispatch(dw, o, emp=dw.tech_expired)
    expired = (timezone.localdate() - dt.timedelta(days=30)).isoformat()
    assert [str(m) for m in e.value.errors["employee_id"]] == [f"缺少有效的 制冷作业证（已于 {expired} 过期）"]
    with pytest.raises(ValidationFailed) as e:
        dispatch(dw, o, emp=dw.tech_wm)
    assert "不具备「空调」维修技能" in [str(m) for m in e.value.errors["employee_id"]]
    DispatchSetting.objects.create(node=dw.pudong, max_jobs_per_day=1)
    dispatch(dw, new_order(dw), s=slot(8))
    with pytest.raises(ValidationFailed) as e:
        dispatch(dw, o, s=slot(14))
    assert [str(m) for m in e.value.errors["employee_id"]] == [f"{at(14).date().isoformat()}已满 1 单"]
    assert not active(o)


def test_scope_other_outlet_or_centre_is_404_and_no_right_is_403(dw):
    o = new_order(dw)
    for user in (dw.hangzhou_dispatcher, dw.tianhe_dispatcher, dw.nobody):
        with pytest.raises(NotFound):
            dispatch(dw, o, user=user)
    with pytest.raises(PermissionDenied):  # sees the order (owner, order.view) but may not dispatch
        dispatch(dw, o, user=dw.pudong_agent)
    # a technician outside the dispatcher's scope is as unknown
    with pytest.raises(ValidationFailed) as e:
        dispatch(dw, o, emp=dw.hz_tech)
    assert set(e.value.errors) == {"employee_id"}
    # the centre's dispatcher may send Hangzhou's technician; another centre's never
    assert dispatch(dw, o, emp=dw.hz_tech, user=dw.east_dispatcher).assignee_id == dw.hz_tech.pk
    with pytest.raises(ValidationFailed) as e:
        dispatch(dw, new_order(dw), emp=dw.th_tech, user=dw.hq_manager)
    assert "不属于本工单所在的服务中心。" in [str(m) for m in e.value.errors["employee_id"]]
    assert not Booking.objects.filter(employee=dw.th_tech).exists()


def test_dispatching_a_finished_or_unclassified_order_is_409(dw):
    o = new_order(dw, classify=False)
    with pytest.raises(Conflict) as e:
        dispatch(dw, o)
    assert e.value.code == "illegal_move"
    assert not Booking.objects.exists()


# ---------------------------------------------------------------- reassign, accept, decline

def test_reassign_releases_the_old_booking_and_is_counted(dw):
    o = dispatch(dw, new_order(dw))
    with pytest.raises(ValidationFailed) as e:
        services.reassign_order(user=dw.pudong_dispatcher, order_id=o.pk, employee_id=dw.tech2.pk,
                                starts_at=at(14), ends_at=at(16), reason="  ")
    assert set(e.value.errors) == {"reason"}
    o = services.reassign_order(user=dw.pudong_dispatcher, order_id=o.pk, employee_id=dw.tech2.pk,
                                starts_at=at(14), ends_at=at(16), reason="李师傅请假")
    assert o.status == Status.DISPATCHED and o.assignee_id == dw.tech2.pk and o.reassign_count == 1
    [bk] = active(o)
    assert bk.employee_id == dw.tech2.pk and bk.starts_at == at(14)
    old = Booking.objects.get(order=o, employee=dw.tech_employee)
    assert not old.active and old.released_at and old.release_reason == "改派：李师傅请假"
    # the released time is free again
    assert dispatch(dw, new_order(dw)).assignee_id == dw.tech_employee.pk
    # dispatching a dispatched order is a reassignment; its note is the reason
    with pytest.raises(ValidationFailed) as e:
        dispatch(dw, o, emp=dw.tech_employee, s=slot(16))
    assert set(e.value.errors) == {"note"}
    o = dispatch(dw, o, emp=dw.tech_employee, s=slot(16), note="客户改约")
    assert o.reassign_count == 2 and len(active(o)) == 1


def test_reassign_to_the_same_technician_is_refused(dw):
    o = dispatch(dw, new_order(dw))
    with pytest.raises(ValidationFailed) as e:
        services.reassign_order(user=dw.pudong_dispatcher, order_id=o.pk, employee_id=dw.tech_employee.pk,
                                starts_at=at(14), ends_at=at(16), reason="改时间")
    assert "employee_id" in e.value.errors
    assert [b.starts_at for b in active(o)] == [at(10)]


def test_accept_and_decline(dw):
    o = dispatch(dw, new_order(dw))
    with pytest.raises(ValidationFailed) as e:
        services.decline_order(user=dw.pudong_tech, order_id=o.pk, reason=" ")
    assert set(e.value.errors) == {"reason"}
    with pytest.raises((PermissionDenied, NotFound)):  # not their order
        services.accept_order(user=dw.tech2.user, order_id=o.pk)
    o = services.decline_order(user=dw.pudong_tech, order_id=o.pk, reason="不在服务区域")
    assert o.status == Status.CLASSIFIED and o.assignee_id is None and o.decline_count == 1
    bk = Booking.objects.get(order=o)
    assert not bk.active and bk.release_reason == "拒单：不在服务区域"
    # dispatched again and accepted
    o = dispatch(dw, o, emp=dw.tech2)
    o = services.accept_order(user=dw.tech2.user, order_id=o.pk)
    assert o.status == Status.ACCEPTED
    # accepted orders can still be reassigned (and counted)
    o = services.reassign_order(user=dw.pudong_dispatcher, order_id=o.pk, employee_id=dw.tech_employee.pk,
                                starts_at=at(14), ends_at=at(16), reason="王师傅车坏了")
    assert o.status == Status.DISPATCHED and o.reassign_count == 1
    services.accept_order(user=dw.pudong_tech, order_id=o.pk)
    with pytest.raises(Conflict):  # accepted already
        services.accept_order(user=dw.pudong_tech, order_id=o.pk)
    with pytest.raises(Conflict):  # an accepted order is not declined
        services.decline_order(user=dw.pudong_tech, order_id=o.pk, reason="太忙")


def test_bookings_follow_moves_made_elsewhere(dw):
    """Cancel and transfer release the booking; completion marks it done and gives back the rest."""
    o = dispatch(dw, new_order(dw))
    workflow.move(o.pk, "cancel", user=dw.pudong_agent, reason="客户自行修好")
    [bk] = Booking.objects.filter(order=o)
    assert not bk.active and bk.release_reason == "取消：客户自行修好"

    o = dispatch(dw, new_order(dw))
    workflow.move(o.pk, "transfer", user=dw.pudong_agent, node_id=dw.hangzhou.pk, reason="客户搬家")
    assert not active(o)

    o = dispatch(dw, new_order(dw), s=(timezone.now() + dt.timedelta(minutes=2), timezone.now() + dt.timedelta(hours=3)))
    t = dw.pudong_tech
    for m in ("accept", "depart", "arrive"):
        workflow.move(o.pk, m, user=t)
    done_at = timezone.now() + dt.timedelta(minutes=30)
    workflow.move(o.pk, "complete", user=t, diagnosis="缺氟", result="已加氟", now=done_at)
    [bk] = active(o)
    assert bk.done_at == done_at and bk.ends_at == done_at
    # a done visit stays when the order is reopened and dispatched again
    workflow.move(o.pk, "callback", user=dw.pudong_agent)
    workflow.move(o.pk, "reopen", user=dw.pudong_agent, reason="又不制冷了")
    o = dispatch(dw, WorkOrder.objects.get(pk=o.pk), s=slot(15))
    assert len(active(o)) == 2


def test_a_dispatch_move_made_without_the_service_still_books(dw):
    o = new_order(dw)
    workflow.move(o.pk, "dispatch", user=dw.pudong_dispatcher, assignee=dw.tech2, appointment_from=at(9),
                  appointment_to=at(11))
    [bk] = active(o)
    assert (bk.employee_id, bk.starts_at, bk.ends_at) == (dw.tech2.pk, at(9), at(11))


# ---------------------------------------------------------------- auto-dispatch

def test_auto_dispatch_off_by_default(dw, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        o = new_order(dw)
    assert callbacks == []
    assert WorkOrder.objects.get(pk=o.pk).status == Status.CLASSIFIED


def test_auto_dispatch_on_for_the_node_books_the_best_in_the_wished_window(dw, django_capture_on_commit_callbacks):
    services.setting_set(user=dw.pudong_manager, node_id=dw.pudong.pk, auto_dispatch=True)
    with django_capture_on_commit_callbacks(execute=True):
        o = new_order(dw, wish=(at(14), at(18)))
    o = WorkOrder.objects.get(pk=o.pk)
    assert o.status == Status.DISPATCHED and o.assignee_id == dw.tech_employee.pk
    assert (o.appointment_from, o.appointment_to) == (at(14), at(16))
    ev = OrderEvent.objects.get(order=o, action="dispatch")
    assert ev.actor_id is None and ev.note.startswith("自动派工：李师傅")
    # the next order in the same window goes to the other technician (李师傅 is booked)
    with django_capture_on_commit_callbacks(execute=True):
        o2 = new_order(dw, wish=(at(14), at(16)))
    assert WorkOrder.objects.get(pk=o2.pk).assignee_id == dw.tech2.pk


def test_auto_dispatch_takes_the_first_free_slot_within_the_window(dw):
    dispatch(dw, new_order(dw), s=(at(14), at(18)))
    dispatch(dw, new_order(dw), emp=dw.tech2, s=(at(14), at(15)))
    o = new_order(dw, wish=(at(14), at(18)))
    o = services.auto_dispatch(o.pk)
    # Hangzhou's technician is free at 14:00, but 王师傅 of the covering outlet at 15:00 ranks first
    assert o.assignee_id == dw.tech2.pk and (o.appointment_from, o.appointment_to) == (at(15), at(17))


def test_auto_dispatch_is_off_on_another_node(dw, django_capture_on_commit_callbacks):
    DispatchSetting.objects.create(node=dw.hangzhou, auto_dispatch=True)
    with django_capture_on_commit_callbacks(execute=True):
        o = new_order(dw)
    assert WorkOrder.objects.get(pk=o.pk).status == Status.CLASSIFIED


def test_auto_dispatch_after_a_decline_tries_the_next_candidate(dw, django_capture_on_commit_callbacks):
    DispatchSetting.objects.create(node=dw.east, auto_dispatch=True)  # inherited by Pudong
    with django_capture_on_commit_callbacks(execute=True):
        o = new_order(dw, wish=(at(9), at(12)))
    assert WorkOrder.objects.get(pk=o.pk).assignee_id == dw.tech_employee.pk
    with django_capture_on_commit_callbacks(execute=True):
        services.decline_order(user=dw.pudong_tech, order_id=o.pk, reason="已排满")
    o = WorkOrder.objects.get(pk=o.pk)
    assert o.status == Status.DISPATCHED and o.assignee_id == dw.tech2.pk and o.decline_count == 1
    with django_capture_on_commit_callbacks(execute=True):
        services.decline_order(user=dw.tech2.user, order_id=o.pk, reason="不会修")
    o = WorkOrder.objects.get(pk=o.pk)
    # nobody left in Pudong: Hangzhou's technician, in the same centre
    assert o.assignee_id == dw.hz_tech.pk
    with django_capture_on_commit_callbacks(execute=True):
        services.decline_order(user=dw.hz_tech.user, order_id=o.pk, reason="太远")
    o = WorkOrder.objects.get(pk=o.pk)
    assert o.status == Status.CLASSIFIED
    note = OrderEvent.objects.filter(order=o, action="note").latest("seq")
    assert note.note.startswith("自动派工未成功：") and note.actor_id is None


def test_auto_dispatch_records_why_nobody_fits(dw):
    o = new_order(dw, wish=(at(21), at(23)))
    assert services.auto_dispatch(o.pk) is None
    note = OrderEvent.objects.filter(order=o, action="note").latest("seq")
    assert "不在上门服务时间（08:00–20:00）内" in note.note
    dispatch(dw, new_order(dw), s=(at(14), at(16)))
    dispatch(dw, new_order(dw), emp=dw.tech2, s=(at(14), at(16)))
    dispatch(dw, new_order(dw), emp=dw.hz_tech, s=(at(15), at(16)), user=dw.east_dispatcher)
    o = new_order(dw, wish=(at(14), at(16)))
    r = services.auto_dispatch_run(o.pk)
    assert not r.dispatched and "内没有空闲的技师" in r.reason
    assert WorkOrder.objects.get(pk=o.pk).status == Status.CLASSIFIED
    for e in (dw.tech_employee, dw.tech2, dw.hz_tech):
        e.skills.clear()
    r = services.auto_dispatch_run(new_order(dw).pk)
    assert not r.dispatched and r.reason == "没有符合技能、证书要求且当日仍有余量的技师。"
    assert audit_verify().ok


def test_auto_dispatch_without_a_wish_takes_the_next_working_slot(dw):
    o = new_order(dw)
    now = timezone.localtime()
    o = services.auto_dispatch(o.pk, now=now)
    a = timezone.localtime(o.appointment_from)
    assert a >= now + dt.timedelta(minutes=30)
    assert dt.time(8) <= a.time() and timezone.localtime(o.appointment_to).time() <= dt.time(20)
    assert o.appointment_to - o.appointment_from == dt.timedelta(minutes=120)
    assert a - now < dt.timedelta(days=1, hours=1)


def test_auto_by_a_dispatcher_checks_scope_and_status(dw):
    o = new_order(dw)
    with pytest.raises(NotFound):
        services.auto_dispatch_run(o.pk, user=dw.hangzhou_dispatcher)
    r = services.auto_dispatch_run(o.pk, user=dw.pudong_dispatcher)
    assert r.dispatched and OrderEvent.objects.get(order=o, action="dispatch").actor_id == dw.pudong_dispatcher.pk
    with pytest.raises(Conflict):
        services.auto_dispatch_run(o.pk, user=dw.pudong_dispatcher)


# ---------------------------------------------------------------- settings

def test_setting_set_managers_only_and_audited(dw):
    with pytest.raises(PermissionDenied):
        services.setting_set(user=dw.pudong_dispatcher, node_id=dw.pudong.pk, auto_dispatch=True)
    with pytest.raises(NotFound):
        services.setting_set(user=dw.pudong_manager, node_id=dw.hangzhou.pk, auto_dispatch=True)
    with pytest.raises(ValidationFailed) as e:
        services.setting_set(user=dw.pudong_manager, node_id=dw.pudong.pk, max_jobs_per_day=0, slot_minutes=7)
    assert set(e.value.errors) == {"max_jobs_per_day", "slot_minutes"}
    assert not DispatchSetting.objects.exists()
    services.setting_set(user=dw.east_manager, node_id=dw.east.pk, max_jobs_per_day=5)
    s = services.setting_set(user=dw.pudong_manager, node_id=dw.pudong.pk, auto_dispatch=True)
    assert (s.node_id, s.auto_dispatch, s.max_jobs_per_day, s.slot_minutes) == (dw.pudong.pk, True, 5, 120)
    s = services.setting_set(user=dw.pudong_manager, node_id=dw.pudong.pk, slot_minutes=90)
    assert (s.auto_dispatch, s.max_jobs_per_day, s.slot_minutes, s.updated_by) == (True, 5, 90, dw.pudong_manager)
    assert selectors.effective_setting(dw.pudong.pk) == selectors.Effective(True, 5, 90, dw.pudong.pk)
    entries = AuditEntry.objects.filter(chain=f"dispatch.dispatchsetting:{s.pk}").order_by("seq")
    assert [e.action for e in entries] == ["dispatch.setting", "dispatch.setting"]
    assert entries[1].before["slot_minutes"] == 120 and entries[1].after["slot_minutes"] == 90


# ---------------------------------------------------------------- notifications

def test_customer_is_told_at_dispatch_reassign_and_departure(dw):
    o = dispatch(dw, new_order(dw))
    m = Message.objects.get(event="dispatched", ref=o.number)
    assert m.customer_id == dw.c_pudong.pk and m.address == "13812345678"
    assert "李师傅" in m.body and f"{at(10):%Y-%m-%d} 10:00–12:00" in m.body
    services.reassign_order(user=dw.pudong_dispatcher, order_id=o.pk, employee_id=dw.tech2.pk,
                            starts_at=at(14), ends_at=at(16), reason="调整")
    assert "王师傅" in Message.objects.filter(event="dispatched", ref=o.number).latest("id").body
    services.accept_order(user=dw.tech2.user, order_id=o.pk)
    workflow.move(o.pk, "depart", user=dw.tech2.user)
    m = Message.objects.get(event="en_route", ref=o.number)
    assert "王师傅" in m.body and "14:00–16:00" in m.body


def test_arrival_window_after_the_appointment_is_the_next_hour(dw):
    o = dispatch(dw, new_order(dw))
    late = at(13)
    a, b = receivers.arrival_window(WorkOrder.objects.get(pk=o.pk), late)
    assert (a, b) == (late, late + dt.timedelta(hours=1))
    a, b = receivers.arrival_window(WorkOrder.objects.get(pk=o.pk), at(10, 30))
    assert (a, b) == (at(10, 30), at(12))


def test_appointment_reminders_are_sent_once(dw):
    now = timezone.now()
    soon = dispatch(dw, new_order(dw), s=(now + dt.timedelta(hours=5), now + dt.timedelta(hours=7)))
    later = dispatch(dw, new_order(dw), s=(now + dt.timedelta(hours=30), now + dt.timedelta(hours=32)))
    declined = dispatch(dw, new_order(dw), emp=dw.tech2, s=(now + dt.timedelta(hours=5), now + dt.timedelta(hours=6)))
    services.decline_order(user=dw.tech2.user, order_id=declined.pk, reason="请假")
    assert services.appointment_reminders(now=now) == 1
    assert services.appointment_reminders(now=now) == 0
    [m] = Message.objects.filter(event="appointment")
    assert m.ref == soon.number and "李师傅" in m.body
    assert services.appointment_reminders(now=now + dt.timedelta(hours=10)) == 1
    assert Message.objects.filter(event="appointment", ref=later.number).count() == 1
    assert Booking.objects.filter(reminded_at__isnull=False).count() == 2
