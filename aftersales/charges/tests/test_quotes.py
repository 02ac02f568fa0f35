"""Quotes: lines copied from the order with their 三包 decision, superseding, approval by link
(single use, expiring) or by signature, and the rule: no repair of a chargeable order without
an approved quote (R-WAR-2)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from aftersales.charges import services
from aftersales.charges.models import Quote
from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from aftersales.notifications.models import Message
from aftersales.records.audit import audit_verify
from aftersales.records.models import AuditEntry
from aftersales.tickets import workflow
from aftersales.tickets.invariants import order_problems
from aftersales.tickets.models import OrderEvent, WorkOrder

from .conftest import ask_part, order_at, png_bytes

pytestmark = pytest.mark.django_db


def quote(w, o, user=None, **kw):
    kw.setdefault("labour_codes", ["GENERAL"])
    return services.quote_create(user=user or w.pudong_tech, order_id=o.pk, **kw)


def repair(w, o):
    return workflow.move(o.pk, "repair", user=w.pudong_tech, diagnosis="压缩机启动电容损坏")


def complete(w, o):
    return workflow.move(o.pk, "complete", user=w.pudong_tech, diagnosis="压缩机启动电容损坏",
                         result="更换电容后制冷正常")


# ---------------------------------------------------------------- building a quote

def test_lines_are_copied_with_their_warranty_decision(cw):
    o = order_at(cw, "diagnosing")
    assert o.warranty_free is False
    ask_part(cw, o, cw.cap, qty=2)
    ask_part(cw, o, cw.comp, free=True)  # a main part still under its longer 三包
    ask_part(cw, o, cw.comp, status="released")  # released: not on the quote
    q = quote(cw, o, labour_codes=[{"code": "general", "qty": "1.5"}, "COMP"],
              extra=[{"description": "铜管加长", "qty": 2, "unit_price": "25.50"}])
    lines = list(q.lines.order_by("position"))
    got = [(ln.kind, ln.description, ln.qty, ln.unit_price, ln.amount, ln.free) for ln in lines]
    assert got == [
        ("part", "启动电容", Decimal("2.00"), Decimal("18.00"), Decimal("36.00"), False),
        ("part", "压缩机", Decimal("1.00"), Decimal("600.00"), Decimal("600.00"), True),
        ("labour", "一般维修工时", Decimal("1.50"), Decimal("80.00"), Decimal("120.00"), False),
        ("labour", "更换压缩机工时", Decimal("1.00"), Decimal("300.00"), Decimal("300.00"), False),
        ("visit", "上门费", Decimal("1.00"), Decimal("50.00"), Decimal("50.00"), False),
        ("other", "铜管加长", Decimal("2.00"), Decimal("25.50"), Decimal("51.00"), False),
    ]
    assert lines[0].unit_cost == Decimal("12.00") and lines[2].unit_cost == Decimal("40.00")
    assert lines[2].reason.startswith("三包期外") and lines[1].reason == "三包期内"
    assert (q.total, q.chargeable) == (Decimal("1157.00"), Decimal("557.00"))
    assert (q.status, q.seq, q.number, q.priced_on) == ("draft", 1, f"{o.number}-Q1", timezone.localdate())
    assert AuditEntry.objects.filter(action="quote.create", object_id=str(q.pk)).exists()


def test_labour_and_visit_are_free_on_an_order_in_warranty(cw):
    o = order_at(cw, "diagnosing", chargeable=False)
    assert o.warranty_free is True
    q = quote(cw, o)
    assert all(ln.free for ln in q.lines.all()) and q.chargeable == 0 and q.total == Decimal("130.00")


def test_a_new_quote_supersedes_the_open_one(cw, sent):
    o = order_at(cw, "diagnosing")
    q1 = quote(cw, o)
    sent(cw.pudong_tech, q1)
    q2 = quote(cw, o, user=cw.pudong_agent, visit_fee=False)
    q1.refresh_from_db()
    assert (q1.status, q1.superseded_by_id) == ("superseded", q2.pk)
    assert (q2.seq, q2.status, q2.total) == (2, "draft", Decimal("80.00"))
    services.quote_sign(user=cw.pudong_tech, quote_id=q2.pk, signature_png_bytes=png_bytes())
    q3 = quote(cw, o)  # an approved quote is superseded too: the new one needs its own approval
    q2.refresh_from_db()
    assert q2.status == "superseded" and q3.status == "draft"
    assert services.current_quote(o.pk) == q3


def test_who_may_quote(cw):
    o = order_at(cw, "diagnosing")
    with pytest.raises(NotFound):
        quote(cw, o, user=cw.pudong_tech2)  # a technician of the outlet sees only their own orders
    with pytest.raises(PermissionDenied):
        quote(cw, o, user=cw.pudong_dispatcher)  # sees the order, no charge.handle
    for outsider in (cw.hangzhou_agent, cw.tianhe_agent, cw.trainer, cw.nobody):
        with pytest.raises(NotFound):
            quote(cw, o, user=outsider)
    with pytest.raises(NotFound):
        services.quote_create(user=cw.pudong_agent, order_id=987654321, labour_codes=["GENERAL"])
    assert quote(cw, o, user=cw.pudong_agent).created_by == cw.pudong_agent
    assert quote(cw, o, user=cw.east_manager).seq == 2


def test_no_quote_on_a_closed_or_completed_order(cw):
    done = order_at(cw, "closed", chargeable=False)
    with pytest.raises(Conflict) as e:
        quote(cw, done, user=cw.pudong_agent)
    assert e.value.status == 409 and "已关闭" in str(e.value.message)
    cancelled = order_at(cw, "cancelled")
    with pytest.raises(Conflict):
        quote(cw, cancelled, user=cw.pudong_agent)


def test_bad_lines_are_named(cw):
    o = order_at(cw, "diagnosing")
    with pytest.raises(ValidationFailed) as e:
        quote(cw, o, labour_codes=["NOPE", {"code": "GENERAL", "qty": -1}, ""],
              extra=[{"description": "", "unit_price": "-3"}, "x"])
    assert set(e.value.errors) == {"labour_codes[0]", "labour_codes[1].qty", "labour_codes[2]",
                                   "extra[0].description", "extra[0].unit_price", "extra[1]"}
    with pytest.raises(ValidationFailed) as e:  # a labour code of another category
        quote(cw, order_at(cw, "diagnosing"), labour_codes=["MOTOR"])
    assert "MOTOR" in str(e.value.errors["labour_codes[0]"][0])
    with pytest.raises(ValidationFailed) as e:  # nothing at all
        quote(cw, o, labour_codes=[], visit_fee=False)
    assert set(e.value.errors) == {"labour_codes"}
    assert not Quote.objects.filter(order=o).exists()


# ---------------------------------------------------------------- the rule

def test_repair_of_a_chargeable_order_needs_an_approved_quote(cw, sent, django_capture_on_commit_callbacks):
    o = order_at(cw, "diagnosing")
    with pytest.raises(Conflict) as e:
        repair(cw, o)
    assert e.value.status == 409 and e.value.code == "quote_required" and "还没有报价" in str(e.value.message)
    q = quote(cw, o)
    with pytest.raises(Conflict) as e:
        repair(cw, o)
    assert "「草稿」" in str(e.value.message) and q.number in str(e.value.message)
    with django_capture_on_commit_callbacks(execute=True):
        token = sent(cw.pudong_tech, q)
    with pytest.raises(Conflict) as e:
        repair(cw, o)
    assert "「待客户确认」" in str(e.value.message)
    sms = Message.objects.get(event="quote", ref_id=o.pk)
    assert sms.address == cw.c_pudong.phone and f"/charges/q/{token}/" in sms.body and "130.00" in sms.body
    assert WorkOrder.objects.get(pk=o.pk).status == "diagnosing"  # refused moves changed nothing

    services.quote_answer(token, approve=True)
    assert repair(cw, o).status == "repairing"
    assert complete(cw, o).status == "completed"


def test_a_rejected_quote_blocks_until_a_new_one_is_approved(cw, sent):
    o = order_at(cw, "diagnosing")
    q = quote(cw, o)
    services.quote_answer(sent(cw.pudong_tech, q), approve=False, reason="太贵了")
    q.refresh_from_db()
    assert (q.status, q.reject_reason) == ("rejected", "太贵了")
    with pytest.raises(Conflict) as e:
        repair(cw, o)
    assert "「客户已拒绝」" in str(e.value.message)
    assert Message.objects.filter(event="quote_rejected", user=cw.pudong_tech).exists()
    q2 = quote(cw, o, visit_fee=False)
    services.quote_sign(user=cw.pudong_tech, quote_id=q2.pk, signature_png_bytes=png_bytes())
    assert repair(cw, o).status == "repairing"


def test_complete_without_repair_is_gated_too(cw):
    o = order_at(cw, "diagnosing")
    with pytest.raises(Conflict) as e:
        complete(cw, o)
    assert e.value.code == "quote_required"
    on_site = order_at(cw, "on_site")
    with pytest.raises(Conflict):
        complete(cw, on_site)
    services.quote_sign(user=cw.pudong_tech, quote_id=quote(cw, o).pk, signature_png_bytes=png_bytes())
    assert complete(cw, o).status == "completed"


def test_free_orders_need_no_quote_unless_a_part_is_chargeable(cw):
    free = order_at(cw, "diagnosing", chargeable=False)
    assert repair(cw, free).status == "repairing"
    other = order_at(cw, "diagnosing", chargeable=False)
    ask_part(cw, other, cw.comp, free=True)
    ask_part(cw, other, cw.cap, free=None)  # not decided: not chargeable yet
    assert not services.repair_gate(other).chargeable
    ask_part(cw, other, cw.cap, free=False)  # a part out of its 三包 on an order in 三包
    gate = services.repair_gate(other)
    assert gate.chargeable and not gate.ok
    with pytest.raises(Conflict):
        repair(cw, other)
    q = quote(cw, other, labour_codes=[], visit_fee=True)
    # the parts not free (the undecided one counts as chargeable on a quote); labour, visit free
    assert q.chargeable == Decimal("36.00") and q.total == Decimal("686.00")
    services.quote_sign(user=cw.pudong_tech, quote_id=q.pk, signature_png_bytes=png_bytes())
    assert repair(cw, other).status == "repairing"


def test_a_chargeable_part_asked_for_after_approval_makes_the_quote_stale(cw):
    o = order_at(cw, "diagnosing")
    ask_part(cw, o, cw.cap)
    services.quote_sign(user=cw.pudong_tech, quote_id=quote(cw, o).pk, signature_png_bytes=png_bytes())
    assert services.repair_gate(o).ok
    ask_part(cw, o, cw.comp, free=True)  # a free part adds nothing to pay: still covered
    assert services.repair_gate(o).ok
    extra = ask_part(cw, o, cw.comp, free=False)
    with pytest.raises(Conflict) as e:
        repair(cw, o)
    assert "压缩机" in str(e.value.message) and "过期" in str(e.value.message)
    extra.status = "released"  # given back: covered again
    extra.save()
    assert services.repair_gate(o).ok
    ask_part(cw, o, cw.comp, free=False)
    q2 = quote(cw, o)
    services.quote_sign(user=cw.pudong_tech, quote_id=q2.pk, signature_png_bytes=png_bytes())
    assert repair(cw, o).status == "repairing"


def test_an_order_found_chargeable_after_a_free_quote_needs_a_new_one(cw):
    o = order_at(cw, "diagnosing", chargeable=False)
    q = quote(cw, o)
    services.quote_sign(user=cw.pudong_tech, quote_id=q.pk, signature_png_bytes=png_bytes())
    WorkOrder.objects.filter(pk=o.pk).update(warranty_free=False, warranty_kind="chargeable")
    o.refresh_from_db()
    gate = services.repair_gate(o)
    assert not gate.ok and "按三包免费计价" in gate.problem


# ---------------------------------------------------------------- the customer's link

def test_link_is_single_use_expires_and_unknown_is_404(cw, sent):
    o = order_at(cw, "diagnosing")
    q = quote(cw, o)
    token = sent(cw.pudong_tech, q)
    assert q.__class__.objects.get(pk=q.pk).token_hash not in (None, "", token)  # only the hash is kept
    services.quote_answer(token, approve=True)
    with pytest.raises(services.Gone) as e:
        services.quote_answer(token, approve=False)
    assert e.value.status == 410 and "已确认" in str(e.value.message)
    with pytest.raises(NotFound):
        services.quote_answer("no-such-token-at-all", approve=True)
    with pytest.raises(NotFound):
        services.quote_answer("x" * 500, approve=True)

    q2 = quote(cw, o)
    t2 = sent(cw.pudong_tech, q2)
    later = timezone.now() + dt.timedelta(hours=73)
    with pytest.raises(services.Gone) as e:
        services.quote_answer(t2, approve=True, now=later)
    assert "过期" in str(e.value.message)
    t3 = sent(cw.pudong_tech, q2)  # sent again: a new link, the old one is dead
    with pytest.raises(NotFound):
        services.quote_answer(t2, approve=True)
    q3 = quote(cw, o)  # superseded
    with pytest.raises(services.Gone) as e:
        services.quote_answer(t3, approve=True)
    assert "取代" in str(e.value.message)
    assert Quote.objects.get(pk=q3.pk).status == "draft"


def test_link_of_a_cancelled_order_is_gone(cw, sent):
    o = order_at(cw, "diagnosing")
    token = sent(cw.pudong_tech, quote(cw, o))
    workflow.move(o.pk, "cancel", user=cw.pudong_agent, reason="客户不修了")
    with pytest.raises(services.Gone) as e:
        services.quote_answer(token, approve=True)
    assert "已结束" in str(e.value.message)


def test_approval_appends_an_event_and_an_audit_entry(cw, sent):
    o = order_at(cw, "diagnosing")
    q = quote(cw, o)
    services.quote_answer(sent(cw.pudong_tech, q), approve=True)
    events = list(OrderEvent.objects.filter(order=o, action__startswith="quote").order_by("seq"))
    assert [e.action for e in events] == ["quote_sent", "quote_approved"]
    assert events[1].actor is None and events[1].data["via"] == "link" and events[1].from_status == "diagnosing"
    assert AuditEntry.objects.filter(action="quote.approve", object_id=str(q.pk)).exists()
    assert Message.objects.filter(event="quote_approved", user=cw.pudong_tech).exists()
    assert order_problems() == [] and audit_verify().ok


def test_reject_reason_is_bounded(cw, sent):
    token = sent(cw.pudong_tech, quote(cw, order_at(cw, "diagnosing")))
    with pytest.raises(ValidationFailed) as e:
        services.quote_answer(token, approve=False, reason="太" * 201)
    assert set(e.value.errors) == {"reason"}
    with pytest.raises(ValidationFailed):
        services.quote_answer(token, approve="yes")


# ---------------------------------------------------------------- the signature

def test_signature_approves_and_keeps_the_image(cw):
    o = order_at(cw, "diagnosing")
    q = quote(cw, o)
    q = services.quote_sign(user=cw.pudong_tech, quote_id=q.pk, signature_png_bytes=png_bytes())
    assert (q.status, q.approved_via, q.signed_by) == ("approved", "signature", cw.pudong_tech)
    assert q.signature.name.startswith("quotes/") and q.signature.read()[:8] == services.PNG_MAGIC
    ev = OrderEvent.objects.get(order=o, action="quote_approved")
    assert ev.actor == cw.pudong_tech and ev.data["via"] == "signature"
    with pytest.raises(Conflict):  # approved already
        services.quote_sign(user=cw.pudong_tech, quote_id=q.pk, signature_png_bytes=png_bytes())
    assert order_problems() == []


def test_bad_signatures_are_400_and_strangers_403_404(cw):
    o = order_at(cw, "diagnosing")
    q = quote(cw, o)
    for bad in (b"", b"GIF89a....", b"\x89PNG\r\n\x1a\n" + b"garbage", "text", b"x" * (3 * 1024 * 1024)):
        with pytest.raises(ValidationFailed) as e:
            services.quote_sign(user=cw.pudong_tech, quote_id=q.pk, signature_png_bytes=bad)
        assert set(e.value.errors) == {"signature"}
    with pytest.raises(PermissionDenied):
        services.quote_sign(user=cw.pudong_dispatcher, quote_id=q.pk, signature_png_bytes=png_bytes())
    with pytest.raises(NotFound):
        services.quote_sign(user=cw.pudong_tech2, quote_id=q.pk, signature_png_bytes=png_bytes())
    with pytest.raises(NotFound):
        services.quote_sign(user=cw.tianhe_agent, quote_id=q.pk, signature_png_bytes=png_bytes())
    with pytest.raises(NotFound):
        services.quote_sign(user=cw.pudong_tech, quote_id=10**12, signature_png_bytes=png_bytes())
    assert Quote.objects.get(pk=q.pk).status == "draft"
