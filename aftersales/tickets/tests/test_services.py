"""The services of the work-order core: intake (every bad field at once, nothing written),
numbers, the 三包 decision and the outlet at intake; notes, photos and the customer's
confirmation."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from aftersales.conftest import race
from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from aftersales.customers.models import Address, Customer, Unit
from aftersales.notifications.models import Message
from aftersales.records.audit import audit_verify
from aftersales.records.models import AuditEntry
from aftersales.tickets import invariants, services, workflow
from aftersales.tickets.models import DailySequence, OrderEvent, OrderPhoto, WorkOrder

from .order_fixtures import *  # noqa: F403
from .order_fixtures import PATHS, make_order, walk

pytestmark = pytest.mark.usefixtures("quiet")

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


def _counts():
    return (WorkOrder.objects.count(), OrderEvent.objects.count(), AuditEntry.objects.count(),
            DailySequence.objects.count())


# ---------------------------------------------------------------- intake

def test_create_records_the_request_with_its_owner_number_event_and_audit(team):
    w = team
    o = make_order(w)
    today = timezone.localdate()
    assert re.fullmatch(rf"GD{today:%Y%m%d}\d{{6}}", o.number)
    assert (o.status, o.owner, o.node, o.address, o.event_count) == ("received", w.pudong_agent, w.pudong,
                                                                     w.a_pudong, 1)
    assert o.fault_category.code == "NO_COOLING"
    e = OrderEvent.objects.get(order=o)
    assert (e.seq, e.action, e.from_status, e.to_status, e.actor) == (1, "create", "", "received", w.pudong_agent)
    assert e.data == {"channel": "phone", "type": "repair", "priority": "normal", "owner": w.pudong_agent.pk}
    assert AuditEntry.objects.filter(action="order.create", object_id=str(o.pk)).count() == 1
    assert invariants.order_problems([o.pk]) == [] and audit_verify().ok


def test_numbers_follow_one_sequence_a_day(team):
    w = team
    first = make_order(w)
    second = make_order(w)
    assert int(second.number[-6:]) == int(first.number[-6:]) + 1
    tomorrow = timezone.now() + dt.timedelta(days=1)
    other_day = make_order(w, now=tomorrow)
    assert other_day.number == f"GD{timezone.localdate(tomorrow):%Y%m%d}000001"


def test_the_warranty_decision_is_stored(team):
    w = team
    o = make_order(w)  # bought 100 days ago: free repair
    assert (o.warranty_kind, o.warranty_free) == ("free_repair", True)
    c_tianhe_order = services.order_create(user=w.tianhe_agent, customer_id=w.c_tianhe.pk, type="repair",
                                           channel="phone", problem="洗衣机不脱水", unit_id=w.u_tianhe.pk,
                                           fault_category="NO_DRAIN")
    assert (c_tianhe_order.warranty_kind, c_tianhe_order.warranty_free) == ("chargeable", False)
    consultation = make_order(w, type="consultation", unit_id=None, fault_category=None)
    assert (consultation.warranty_kind, consultation.warranty_free) == ("", None)
    fresh = Unit.objects.create(customer=w.c_pudong, model=w.ac_model, serial="AC2025000777",
                                purchase_date=timezone.localdate() - dt.timedelta(days=3), invoice_no="INV-7")
    assert make_order(w, unit_id=fresh.pk).warranty_kind == "return"


def test_the_outlet_is_the_one_covering_the_service_address(team):
    w = team
    moved = Address.objects.create(customer=w.c_pudong, province="浙江省", city="杭州市", district="西湖区",
                                   street="文三路90号")
    o = make_order(w, address_id=moved.pk)
    assert o.node == w.hangzhou and o.owner == w.pudong_agent
    # an address no outlet covers: the customer's own outlet
    far = Address.objects.create(customer=w.c_pudong, province="西藏自治区", city="拉萨市", district="城关区",
                                 street="北京中路1号")
    assert make_order(w, address_id=far.pk).node == w.pudong
    # the unit's own address comes before the customer's default
    w.u_pudong.address = moved
    w.u_pudong.save()
    assert make_order(w).node == w.hangzhou


def test_every_bad_field_is_reported_at_once_and_nothing_is_written(team):
    w = team
    before = _counts()
    now = timezone.now()
    with pytest.raises(ValidationFailed) as e:
        services.order_create(user=w.pudong_agent, customer_id=w.c_pudong.pk, type="fix", channel="fax",
                              problem="   ", unit_id=10**9, priority="asap", fault_category="NOPE",
                              wish_from=now - dt.timedelta(days=1), wish_to=now - dt.timedelta(days=2),
                              parent_id=10**9)
    assert set(e.value.errors) == {"type", "channel", "problem", "unit_id", "priority", "fault_category",
                                   "wish_from", "wish_to", "parent_id"}
    assert _counts() == before


@pytest.mark.parametrize(("change", "field"), [
    ({"unit_id": 10**9}, "unit_id"),
    ({"unit_id": "tianhe"}, "unit_id"),  # the unit of another customer
    ({"unit_id": None}, "unit_id"),  # a repair needs the unit
    ({"problem": ""}, "problem"),
    ({"problem": "坏" * 2001}, "problem"),
    ({"type": "fix"}, "type"),
    ({"type": ""}, "type"),
    ({"channel": "fax"}, "channel"),
    ({"priority": "asap"}, "priority"),
    ({"fault_category": "NO_DRAIN"}, "fault_category"),  # a washing machine's fault on an air conditioner
    ({"address_id": "tianhe"}, "address_id"),
    ({"wish": (-2, -1)}, "wish_from"),  # in the past
    ({"wish": (3, 2)}, "wish_to"),  # ends before it starts
    ({"wish": (1, 30)}, "wish_to"),  # longer than 14 days
    ({"wish": (120, 121)}, "wish_from"),  # too far ahead
    ({"wish": (1, None)}, "wish_to"),
])
def test_each_bad_field(team, change, field):
    w = team
    change = dict(change)
    if change.get("unit_id") == "tianhe":
        change["unit_id"] = w.u_tianhe.pk
    if change.get("address_id") == "tianhe":
        change["address_id"] = w.c_tianhe.addresses.get().pk
    if "wish" in change:
        a, b = change.pop("wish")
        now = timezone.now()
        change["wish_from"] = now + dt.timedelta(days=a)
        change["wish_to"] = now + dt.timedelta(days=b) if b is not None else None
    before = _counts()
    with pytest.raises(ValidationFailed) as e:
        make_order(w, **change)
    assert set(e.value.errors) == {field}
    assert _counts() == before


def test_a_wish_window_without_a_zone_is_local_time(team):
    w = team
    start = (timezone.localtime() + dt.timedelta(days=2)).replace(tzinfo=None, microsecond=0)
    o = make_order(w, wish_from=start, wish_to=start + dt.timedelta(hours=3))
    assert timezone.localtime(o.wish_from).replace(tzinfo=None) == start


def test_who_may_take_a_request(team):
    w = team
    with pytest.raises(ValidationFailed) as e:  # a customer of another outlet
        make_order(w, user=w.hangzhou_agent)
    assert set(e.value.errors) == {"customer_id"}
    for user in (w.pudong_dispatcher, w.pudong_tech, w.quality, w.nobody):
        with pytest.raises(PermissionDenied):
            make_order(w, user=user)
    assert make_order(w, user=w.pudong_manager).owner == w.pudong_manager
    assert make_order(w, user=w.admin).owner == w.admin


def test_a_customer_files_for_their_own_units_online(team):
    w = team
    o = make_order(w, user=w.customer_user, channel="app")
    assert (o.owner, o.channel, o.node) == (None, "app", w.pudong)
    with pytest.raises(ValidationFailed) as e:
        make_order(w, user=w.customer_user, channel="phone", priority="urgent")
    assert set(e.value.errors) == {"channel", "priority"}
    with pytest.raises(ValidationFailed) as e:  # someone else's file
        services.order_create(user=w.customer_user, customer_id=w.c_tianhe.pk, type="repair", channel="web",
                              problem="洗衣机不脱水", unit_id=w.u_tianhe.pk)
    assert set(e.value.errors) == {"customer_id"}


def test_a_follow_up_opened_by_the_system_belongs_to_the_first_contact(team):
    w = team
    parent = walk(w, make_order(w), PATHS["callback"])
    o = services.order_create(user=None, customer_id=w.c_pudong.pk, type="complaint", channel="web",
                              problem="回访评分 1 分：技师迟到", parent_id=parent.pk)
    assert (o.owner, o.parent, o.type) == (w.pudong_agent, parent, "complaint")
    assert OrderEvent.objects.get(order=o).actor_label == "system"
    assert invariants.order_problems([o.pk]) == []
    with pytest.raises(ValidationFailed) as e:  # a parent of another customer
        services.order_create(user=None, customer_id=w.c_tianhe.pk, type="complaint", channel="web",
                              problem="x", parent_id=parent.pk)
    assert set(e.value.errors) == {"parent_id"}


# ---------------------------------------------------------------- notes

def test_notes(team):
    w = team
    o = walk(w, make_order(w), PATHS["accepted"])
    for user in (w.pudong_agent, w.pudong_dispatcher, w.pudong_tech, w.quality):
        services.order_note(user=user, order_id=o.pk, note=f"{user.username} 的备注")
    o.refresh_from_db()
    assert OrderEvent.objects.filter(order=o, action="note").count() == 4
    assert invariants.order_problems([o.pk]) == []
    with pytest.raises(ValidationFailed):
        services.order_note(user=w.pudong_agent, order_id=o.pk, note="  ")
    with pytest.raises(ValidationFailed):
        services.order_note(user=w.pudong_agent, order_id=o.pk, note="长" * 2001)
    with pytest.raises(PermissionDenied):
        services.order_note(user=w.customer_user, order_id=o.pk, note="客户")
    for user in (w.hangzhou_agent, w.pudong_tech2, w.customer_user_tianhe):
        with pytest.raises(NotFound):
            services.order_note(user=user, order_id=o.pk, note="越权")


# ---------------------------------------------------------------- photos

@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def test_photos_by_the_technician_checked_by_their_bytes(team, media):
    w = team
    o = walk(w, make_order(w), PATHS["on_site"])
    ph = services.order_photo_add(user=w.pudong_tech, order_id=o.pk, caption="外机铭牌",
                                  upload=SimpleUploadedFile("IMG_0001.JPG", JPEG, content_type="image/jpeg"))
    assert ph.image.name.startswith(f"orders/{o.pk}/{o.number}-") and ph.image.name.endswith(".jpg")
    assert (media / ph.image.name).read_bytes() == JPEG
    services.order_photo_add(user=w.pudong_agent, order_id=o.pk,
                             upload=SimpleUploadedFile("x.png", PNG, content_type="image/png"))
    e = OrderEvent.objects.filter(order=o, action="photo").first()
    assert e.data == {"photo": ph.pk} and e.note == "外机铭牌"
    for upload in (SimpleUploadedFile("fake.jpg", b"MZ\x90\x00" * 50, content_type="image/jpeg"),
                   SimpleUploadedFile("empty.jpg", b"", content_type="image/jpeg"), None):
        with pytest.raises(ValidationFailed) as err:
            services.order_photo_add(user=w.pudong_tech, order_id=o.pk, upload=upload)
        assert set(err.value.errors) == {"image"}
    with pytest.raises(ValidationFailed) as err:
        services.order_photo_add(user=w.pudong_tech, order_id=o.pk, caption="长" * 101,
                                 upload=SimpleUploadedFile("big.jpg", JPEG + b"\x00" * (8 * 1024 * 1024),
                                                           content_type="image/jpeg"))
    assert set(err.value.errors) == {"image", "caption"}
    with pytest.raises(PermissionDenied):
        services.order_photo_add(user=w.quality, order_id=o.pk, upload=SimpleUploadedFile("a.jpg", JPEG))
    with pytest.raises(NotFound):
        services.order_photo_add(user=w.pudong_tech2, order_id=o.pk, upload=SimpleUploadedFile("a.jpg", JPEG))
    assert OrderPhoto.objects.filter(order=o).count() == 2
    assert invariants.order_problems([o.pk]) == []


def test_no_photos_on_a_finished_order(team, media):
    w = team
    o = walk(w, make_order(w), PATHS["cancelled"])
    with pytest.raises(Conflict):
        services.order_photo_add(user=w.pudong_agent, order_id=o.pk, upload=SimpleUploadedFile("a.jpg", JPEG))


# ---------------------------------------------------------------- the customer's confirmation

def test_confirmation_by_code(team):
    w = team
    o = walk(w, make_order(w), PATHS["accepted"])
    with pytest.raises(Conflict):  # not there yet
        services.confirmation_code_send(user=w.pudong_tech, order_id=o.pk)
    o = walk(w, o, ["depart", "arrive"])
    code = services.confirmation_code_send(user=w.pudong_tech, order_id=o.pk)
    m = Message.objects.get(event="confirm_code", ref_id=o.pk)
    assert code in m.body and m.address == w.c_pudong.phone
    with pytest.raises(Conflict) as e:  # once a minute at most
        services.confirmation_code_send(user=w.pudong_tech, order_id=o.pk)
    assert e.value.code == "too_soon"
    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(ValidationFailed) as e:
        services.order_confirm(user=w.pudong_tech, order_id=o.pk, code=wrong)
    assert set(e.value.errors) == {"code"}
    assert OrderEvent.objects.filter(order=o, action="confirm_failed").count() == 1  # the attempt stays
    o = services.order_confirm(user=w.pudong_tech, order_id=o.pk, code=f" {code} ")
    assert (o.confirmed_by, o.confirmed_at is not None, o.confirm_code_hash) == ("code", True, "")
    with pytest.raises(Conflict):
        services.order_confirm(user=w.pudong_tech, order_id=o.pk, code=code)
    assert invariants.order_problems([o.pk]) == [] and audit_verify().ok


def test_five_wrong_codes_void_it_and_an_old_code_expires(team):
    w = team
    o = walk(w, make_order(w), PATHS["on_site"])
    code = services.confirmation_code_send(user=w.pudong_tech, order_id=o.pk)
    wrong = "000000" if code != "000000" else "111111"
    messages = []
    for _i in range(5):
        with pytest.raises(ValidationFailed) as e:
            services.order_confirm(user=w.pudong_tech, order_id=o.pk, code=wrong)
        messages.append(str(e.value.errors["code"][0]))
    assert messages[-1] != messages[0] and "重新发送" in messages[-1]
    with pytest.raises(ValidationFailed) as e:  # even the right code: send a new one
        services.order_confirm(user=w.pudong_tech, order_id=o.pk, code=code)
    assert "先发送" in str(e.value.errors["code"][0])
    WorkOrder.objects.filter(pk=o.pk).update(confirm_code_expires=timezone.now() - dt.timedelta(minutes=20))
    code = services.confirmation_code_send(user=w.pudong_tech, order_id=o.pk)
    WorkOrder.objects.filter(pk=o.pk).update(confirm_code_expires=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(ValidationFailed) as e:
        services.order_confirm(user=w.pudong_tech, order_id=o.pk, code=code)
    assert "过期" in str(e.value.errors["code"][0])


def test_confirmation_by_signature(team, media):
    w = team
    o = walk(w, make_order(w), PATHS["completed"])
    with pytest.raises(ValidationFailed):
        services.order_confirm(user=w.pudong_tech, order_id=o.pk)
    with pytest.raises(ValidationFailed) as e:
        services.order_confirm(user=w.pudong_tech, order_id=o.pk,
                               signature=SimpleUploadedFile("s.png", b"not an image"))
    assert set(e.value.errors) == {"signature"}
    o = services.order_confirm(user=w.pudong_tech, order_id=o.pk, signature=SimpleUploadedFile("s.png", PNG))
    assert o.confirmed_by == "signature" and o.signature.name.startswith("signatures/")
    # a reopened order needs a new confirmation
    o = workflow.move(o.pk, "reopen", user=w.pudong_agent, reason="仍漏水")
    assert (o.confirmed_by, o.confirmed_at) == ("", None)


def test_only_the_technician_or_a_handler_confirms(team):
    w = team
    o = walk(w, make_order(w), PATHS["on_site"])
    with pytest.raises(PermissionDenied):
        services.confirmation_code_send(user=w.pudong_dispatcher, order_id=o.pk)
    with pytest.raises(PermissionDenied):
        services.confirmation_code_send(user=w.customer_user, order_id=o.pk)
    with pytest.raises(NotFound):
        services.confirmation_code_send(user=w.hangzhou_agent, order_id=o.pk)
    assert Customer.objects.filter(pk=w.c_pudong.pk).exists()


# ---------------------------------------------------------------- races (PostgreSQL, real connections)

_race = race


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_intakes_get_consecutive_numbers(team):
    w = team
    results = _race(8, lambda i: make_order(w, problem=f"第{i}台空调不制冷").number)
    assert all(kind == "ok" for kind, _r in results), results
    seqs = sorted(int(n[-6:]) for _k, n in results)
    assert seqs == list(range(seqs[0], seqs[0] + 8))
    assert invariants.order_problems() == [] and audit_verify().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_move_made_at_once_happens_once(team):
    w = team
    o = walk(w, make_order(w), PATHS["dispatched"])
    results = _race(6, lambda i: workflow.move(o.pk, "accept", user=w.pudong_tech).status)
    oks = [r for kind, r in results if kind == "ok"]
    errs = [r for kind, r in results if kind == "err"]
    assert oks == ["accepted"] and all(isinstance(e, Conflict) for e in errs), results
    o.refresh_from_db()
    assert list(OrderEvent.objects.filter(order=o).values_list("seq", flat=True)) == list(range(1, o.event_count + 1))
    assert invariants.order_problems([o.pk]) == [] and audit_verify().ok
