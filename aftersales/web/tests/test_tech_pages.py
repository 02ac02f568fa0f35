"""The technician's phone pages: today's jobs (only theirs, in appointment order), the job page
with its status buttons (accept / decline through dispatch), the diagnosis with fault codes of
the unit's category and the warranty decision of the code's part, photos, and the customer's
confirmation by code or signature."""

from __future__ import annotations

import re
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from aftersales.notifications.models import Message
from aftersales.tickets import workflow
from aftersales.tickets.models import OrderEvent, OrderPhoto, Status

from .test_orders_pages import HX, body, dispatch, login, new_order, seed_orders_reference

pytestmark = pytest.mark.django_db


def png_bytes() -> bytes:
    """A 1×1 white PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff")) + chunk(b"IEND", b""))


@pytest.fixture
def tw(world, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    seed_orders_reference()
    return world


def on_site(w, order):
    for name in ("accept", "depart", "arrive"):
        order = workflow.move(order.pk, name, user=w.pudong_tech)
    return order


# ---------------------------------------------------------------- today's jobs


def test_jobs_are_the_technicians_own_in_appointment_order(client, tw):
    from aftersales.conftest import make_user
    from aftersales.org.models import Employee
    from aftersales.org.roles import Role

    late = dispatch(tw, new_order(tw), hour=15)
    early = dispatch(tw, new_order(tw), hour=9)
    other_tech = Employee.objects.create(user=make_user("pudong_tech2", Role.TECHNICIAN, tw.pudong), node=tw.pudong, employee_no="T0099", name="吴师傅",
                                         hire_date=tw.tech_employee.hire_date)
    other_tech.skills.add(tw.ac)
    not_mine = dispatch(tw, new_order(tw), hour=11, employee=other_tech)
    undispatched = new_order(tw)
    login(client, tw.pudong_tech)
    resp = client.get(reverse("web:tech_jobs"))
    assert resp.status_code == 200
    assert [c["o"].pk for c in resp.context["cards"]] == [early.pk, late.pk]
    html = body(resp)
    assert not_mine.number not in html and undispatched.number not in html
    assert 'href="tel:13812345678"' in html  # the technician reaches the customer
    assert "张杨路500号2栋1201室" in html and "https://uri.amap.com/search?keyword=" in html
    assert 'data-kind="free_repair"' in html and "空调不制冷" in html
    assert "09:00–11:00" in html and 'class="tech"' in html
    assert 'name="viewport"' in html
    # another day, and a bad day parameter falls back to today
    assert client.get(reverse("web:tech_jobs"), {"day": "garbage"}).status_code == 200
    assert client.get(reverse("web:tech_jobs"), {"day": "2001-01-01"}).context["day"] == resp.context["day"]


def test_jobs_query_count_is_bounded(client, tw, django_assert_max_num_queries):
    for h in (8, 10, 12):
        dispatch(tw, new_order(tw), hour=h)
    login(client, tw.pudong_tech)
    client.get(reverse("web:tech_jobs"))
    with django_assert_max_num_queries(14):
        resp = client.get(reverse("web:tech_jobs"))
    assert len(resp.context["cards"]) == 3


# ---------------------------------------------------------------- the job page


def test_job_page_buttons_accept_and_decline(client, tw):
    o = dispatch(tw, new_order(tw))
    login(client, tw.pudong_tech)
    resp = client.get(reverse("web:tech_job", args=[o.pk]))
    assert resp.status_code == 200
    assert [mv["move"].name for mv in resp.context["moves"]] == ["accept", "decline"]
    html = body(resp)
    assert 'data-testid="move-accept"' in html and 'data-testid="open-decline"' in html
    assert reverse("web:tech_move", args=[o.pk, "accept"]) in html
    # decline needs a reason
    resp = client.post(reverse("web:tech_move", args=[o.pk, "decline"]), {"reason": ""}, **HX)
    assert resp.status_code == 400 and "请填写拒单原因" in body(resp)
    resp = client.post(reverse("web:tech_move", args=[o.pk, "accept"]), {}, **HX)
    assert resp.status_code == 200 and 'id="job-body"' in body(resp)
    o.refresh_from_db()
    assert o.status == Status.ACCEPTED
    # accepting twice: 409 with the reason
    resp = client.post(reverse("web:tech_move", args=[o.pk, "accept"]), {}, **HX)
    assert resp.status_code == 409 and "不能执行「接单」" in body(resp)


def test_decline_through_the_page(client, tw):
    o = dispatch(tw, new_order(tw))
    login(client, tw.pudong_tech)
    resp = client.post(reverse("web:tech_move", args=[o.pk, "decline"]), {"reason": "明天休假"}, **HX)
    # the order left the technician: back to the day's list
    assert resp.status_code == 200
    o.refresh_from_db()
    assert o.status == Status.CLASSIFIED and o.assignee is None and o.decline_count == 1
    assert resp.get("HX-Redirect") in (None, reverse("web:tech_jobs"))


def test_other_technicians_and_roles(client, tw):
    o = dispatch(tw, new_order(tw))
    login(client, tw.pudong_agent)
    assert client.get(reverse("web:tech_job", args=[o.pk])).status_code == 403
    undispatched = new_order(tw)
    login(client, tw.pudong_tech)
    assert client.get(reverse("web:tech_job", args=[undispatched.pk])).status_code == 404
    assert client.post(reverse("web:tech_move", args=[undispatched.pk, "accept"])).status_code == 404


def test_diagnosis_and_completion_with_fault_code(client, tw):
    o = on_site(tw, dispatch(tw, new_order(tw)))
    login(client, tw.pudong_tech)
    resp = client.get(reverse("web:tech_job", args=[o.pk]))
    forms = {mv["move"].name: mv["form"] for mv in resp.context["moves"]}
    assert {"diagnose", "repair", "complete", "wait_customer", "cancel"} - {"cancel"} <= set(forms)
    codes = [c for c, _label in forms["complete"].fields["fault_code"].choices if c]
    assert "E1" in codes and all(not c.startswith("WM") for c in codes)
    assert list(forms["complete"].fields) == ["diagnosis", "result", "actions", "fault_code"]
    # the warranty decision for the part of the fault code picked
    resp = client.get(reverse("web:order_fault_warranty", args=[o.pk]), {"fault_code": "E1"}, **HX)
    assert resp.status_code == 200 and 'data-kind="free_repair"' in body(resp) and "压缩机" in body(resp)
    resp = client.get(reverse("web:order_fault_warranty", args=[o.pk]), {"fault_code": ""}, **HX)
    assert resp.status_code == 200 and 'data-testid="decision-badge"' in body(resp)
    # complete: missing result → 400 naming it; then done
    url = reverse("web:tech_move", args=[o.pk, "complete"])
    resp = client.post(url, {"diagnosis": "压缩机高压保护", "fault_code": "E1", "result": ""}, **HX)
    assert resp.status_code == 400 and "请填写处理结果" in body(resp)
    resp = client.post(url, {"diagnosis": "压缩机高压保护", "fault_code": "E1", "actions": "清洗冷凝器",
                             "result": "已恢复制冷"}, **HX)
    assert resp.status_code == 200
    o.refresh_from_db()
    assert o.status == Status.COMPLETED and o.fault_code.code == "E1" and o.actions == "清洗冷凝器"


def test_photo_upload(client, tw):
    o = on_site(tw, dispatch(tw, new_order(tw)))
    login(client, tw.pudong_tech)
    html = body(client.get(reverse("web:tech_job", args=[o.pk])))
    assert 'accept="image/*"' in html and 'capture="environment"' in html
    url = reverse("web:tech_photo_upload", args=[o.pk])
    resp = client.post(url, {"image": SimpleUploadedFile("a.png", png_bytes(), "image/png"), "caption": "铭牌"}, **HX)
    assert resp.status_code == 200
    ph = OrderPhoto.objects.get(order=o)
    assert ph.caption == "铭牌" and reverse("web:order_photo", args=[o.pk, ph.pk]) in body(resp)
    resp = client.get(reverse("web:order_photo", args=[o.pk, ph.pk]))
    assert resp.status_code == 200 and b"".join(resp.streaming_content).startswith(b"\x89PNG")
    # not an image: 400 on the field, nothing stored
    resp = client.post(url, {"image": SimpleUploadedFile("a.png", b"hello", "image/png")}, **HX)
    assert resp.status_code == 400 and "只接受 JPEG、PNG 或 WebP 图片" in body(resp)
    assert resp["HX-Retarget"] == "#photos"
    assert OrderPhoto.objects.filter(order=o).count() == 1
    # a photo of an order is not served to whom may not see the order
    login(client, tw.hangzhou_agent)
    assert client.get(reverse("web:order_photo", args=[o.pk, ph.pk])).status_code == 404


def test_confirmation_by_code(client, tw):
    o = on_site(tw, dispatch(tw, new_order(tw)))
    login(client, tw.pudong_tech)
    html = body(client.get(reverse("web:tech_job", args=[o.pk])))
    assert 'data-testid="code-send"' in html and "data-signature-pad" in html
    resp = client.post(reverse("web:tech_code_send", args=[o.pk]), {}, **HX)
    assert resp.status_code == 200 and "确认码已发送至客户手机 13812345678" in body(resp)
    msg = Message.objects.get(event="confirm_code", ref_id=o.pk)
    code = re.search(r"确认码为 (\d{6})", msg.body).group(1)
    assert code not in body(resp)
    # sending again at once: 409 with the reason
    resp = client.post(reverse("web:tech_code_send", args=[o.pk]), {}, **HX)
    assert resp.status_code == 409 and "确认码刚刚发送过" in body(resp) and resp["HX-Retarget"] == "#confirm"
    wrong = "000000" if code != "000000" else "111111"
    resp = client.post(reverse("web:tech_confirm", args=[o.pk]), {"code": wrong}, **HX)
    assert resp.status_code == 400 and "确认码不正确" in body(resp)
    resp = client.post(reverse("web:tech_confirm", args=[o.pk]), {"code": code}, **HX)
    assert resp.status_code == 200 and 'data-testid="confirmed"' in body(resp)
    o.refresh_from_db()
    assert o.confirmed_by == "code" and o.confirmed_at is not None
    assert OrderEvent.objects.filter(order=o, action="confirm").exists()


def test_confirmation_needs_the_visit(client, tw):
    o = dispatch(tw, new_order(tw))
    login(client, tw.pudong_tech)
    assert 'data-testid="code-send"' not in body(client.get(reverse("web:tech_job", args=[o.pk])))
    resp = client.post(reverse("web:tech_code_send", args=[o.pk]), {}, **HX)
    assert resp.status_code == 409 and "到达现场后才能发送确认码" in body(resp)


def test_confirmation_by_signature(client, tw):
    o = on_site(tw, dispatch(tw, new_order(tw)))
    login(client, tw.pudong_tech)
    url = reverse("web:tech_confirm", args=[o.pk])
    resp = client.post(url, {"signature": SimpleUploadedFile("signature.png", b"GIF89a....", "image/png")}, **HX)
    assert resp.status_code == 400 and "签名图片无效" in body(resp)
    resp = client.post(url, {"signature": SimpleUploadedFile("signature.png", png_bytes(), "image/png")}, **HX)
    assert resp.status_code == 200
    o.refresh_from_db()
    assert o.confirmed_by == "signature" and o.signature
    resp = client.get(reverse("web:order_signature", args=[o.pk]))
    assert resp.status_code == 200 and b"".join(resp.streaming_content).startswith(b"\x89PNG")
    # once confirmed, not again
    resp = client.post(url, {"signature": SimpleUploadedFile("signature.png", png_bytes(), "image/png")}, **HX)
    assert resp.status_code == 409


def test_home_links_to_the_jobs(client, tw):
    login(client, tw.pudong_tech)
    assert 'data-testid="home-jobs"' in body(client.get(reverse("web:home")))
