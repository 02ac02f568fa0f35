"""The customer's survey page (public) and the agents' call-back page."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from aftersales.feedback.models import CallbackTask, Survey
from aftersales.tickets.models import WorkOrder

from .conftest import SCORES

pytestmark = pytest.mark.django_db

PERSONAL = ("13812345678", "138****5678", "张杨路", "500号", "张伟", "浦东新区")


def url(token):
    return f"/feedback/s/{token}/"


def answers(**over):
    data = {**{k: str(v) for k, v in SCORES.items()}, "resolved": "yes", "comment": "谢谢师傅"}
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


# ---------------------------------------------------------------- the public survey page

def test_survey_page_renders_logged_out_without_personal_data(world, completed):
    r = completed()
    resp = Client().get(url(r.token))
    assert resp.status_code == 200
    html = resp.content.decode()
    assert r.order.number in html and "李师傅" in html and "挂壁式空调" in html
    assert timezone.localdate(r.order.completed_at).strftime("%Y-%m-%d") in html
    for q in ("及时性", "服务态度", "专业水平", "处理结果"):
        assert q in html
    assert html.count('type="radio"') == 4 * 5 + 2
    for secret in PERSONAL:
        assert secret not in html, secret
    assert "topbar" not in html and "退出" not in html  # not the staff layout
    assert '<html lang="zh-hans">' in html
    assert resp["Referrer-Policy"] == "no-referrer" and "no-store" in resp["Cache-Control"]
    assert 'name="viewport"' in html


def test_survey_page_submits_and_thanks(world, completed):
    r = completed()
    c = Client(enforce_csrf_checks=True)  # a phone's browser: no CSRF cookie needed
    resp = c.post(url(r.token), answers())
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "评价已提交" in html and "感谢" in html
    assert WorkOrder.objects.get(pk=r.order.pk).status == "closed"
    s = Survey.objects.get(pk=r.survey.pk)
    assert (s.timeliness, s.professionalism, s.comment, s.resolved) == (5, 4, "谢谢师傅", True)


def test_survey_page_not_resolved_says_we_will_follow_up(world, completed):
    r = completed()
    resp = Client().post(url(r.token), answers(resolved="no"))
    assert resp.status_code == 200 and "尽快与您联系" in resp.content.decode()
    assert WorkOrder.objects.get(pk=r.order.pk).status == "reopened"


def test_survey_page_errors_are_shown_per_row_and_nothing_is_written(world, completed):
    r = completed()
    resp = Client().post(url(r.token), answers(timeliness="9", attitude=None, resolved=None, comment="长" * 501))
    assert resp.status_code == 400
    html = resp.content.decode()
    assert "评分须在 1 到 5 之间" in html and "请为此项评分" in html and "请选择问题是否已解决" in html
    assert "意见不能超过 500 个字符" in html
    assert 'value="4" required checked' in html  # the answers given are kept
    assert Survey.objects.get(pk=r.survey.pk).answered_at is None


def test_used_link_page_is_410(world, completed):
    r = completed()
    assert Client().post(url(r.token), answers()).status_code == 200
    for resp in (Client().get(url(r.token)), Client().post(url(r.token), answers())):
        assert resp.status_code == 410
        assert "此评价链接已使用" in resp.content.decode()
    assert Survey.objects.filter(answered_at__isnull=False).count() == 1


def test_expired_link_page_is_410_unknown_404(world, completed):
    r = completed()
    Survey.objects.filter(pk=r.survey.pk).update(expires_at=timezone.now() - dt.timedelta(days=1))
    resp = Client().get(url(r.token))
    assert resp.status_code == 410 and "此评价链接已过期" in resp.content.decode()
    resp = Client().get(url("nonsense-token"))
    assert resp.status_code == 404 and "评价链接无效" in resp.content.decode()
    assert Client().post(url("nonsense-token"), answers()).status_code == 404


def test_survey_page_in_english_when_the_browser_asks(world, completed):
    r = completed()
    resp = Client().get(url(r.token), HTTP_ACCEPT_LANGUAGE="en")
    assert resp.status_code == 200 and '<html lang="en">' in resp.content.decode()


# ---------------------------------------------------------------- the agents' page

def test_callbacks_page_lists_tasks_with_script_and_form(world, completed):
    r = completed()
    c = Client()
    c.force_login(world.pudong_agent)
    resp = c.get("/feedback/callbacks/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert r.order.number in html and "回访话术" in html and "李师傅" in html
    assert 'href="tel:13812345678"' in html
    assert f'hx-post="/feedback/callbacks/{r.task.pk}/record/"' in html


def test_callbacks_page_scoping_and_roles(world, completed):
    r = completed()
    other = Client()
    other.force_login(world.hangzhou_agent)
    html = other.get("/feedback/callbacks/").content.decode()
    assert r.order.number not in html and "没有待处理的回访任务" in html
    assert other.post(f"/feedback/callbacks/{r.task.pk}/record/", {"reached": "0"}).status_code == 404
    tech = Client()
    tech.force_login(world.pudong_tech)
    assert tech.get("/feedback/callbacks/").status_code == 403
    assert tech.post(f"/feedback/callbacks/{r.task.pk}/record/", {"reached": "0"}).status_code == 403
    anon = Client().get("/feedback/callbacks/")
    assert anon.status_code == 302 and "/login/" in anon["Location"]
    assert CallbackTask.objects.get(pk=r.task.pk).attempts == 0


def test_recording_by_htmx_swaps_in_the_outcome(world, completed):
    r = completed()
    c = Client()
    c.force_login(world.pudong_agent)
    data = {**{k: str(v) for k, v in SCORES.items()}, "attitude": "1", "resolved": "yes", "reached": "1",
            "comment": "态度不好"}
    resp = c.post(f"/feedback/callbacks/{r.task.pk}/record/", data, HTTP_HX_REQUEST="true")
    assert resp.status_code == 200
    html = resp.content.decode()
    complaint = WorkOrder.objects.get(parent=r.order)
    assert f'id="task-{r.task.pk}"' in html and "<html" not in html
    assert complaint.number in html and "工单已关闭" in html
    assert "<form" not in html  # done: no form any more


def test_recording_errors_by_htmx_stay_in_the_card(world, completed):
    r = completed()
    c = Client()
    c.force_login(world.pudong_agent)
    resp = c.post(f"/feedback/callbacks/{r.task.pk}/record/", {"reached": "1", "timeliness": "3"},
                  HTTP_HX_REQUEST="true")
    assert resp.status_code == 200  # htmx swaps 2xx only
    html = resp.content.decode()
    assert "请为此项评分" in html and "<form" in html and '<option value="3" selected>' in html
    resp = c.post(f"/feedback/callbacks/{r.task.pk}/record/", {"reached": "1", "timeliness": "3"})
    assert resp.status_code == 400 and "<html" in resp.content.decode()


def test_unreachable_button(world, completed):
    r = completed()
    c = Client()
    c.force_login(world.pudong_agent)
    for _attempt in (1, 2, 3):
        resp = c.post(f"/feedback/callbacks/{r.task.pk}/record/", {"reached": "0", "timeliness": "5"},
                      HTTP_HX_REQUEST="true")
        assert resp.status_code == 200
    html = resp.content.decode()
    assert "已连续 3 次未接通" in html and "工单已关闭" in html
    assert WorkOrder.objects.get(pk=r.order.pk).status == "closed"
    resp = c.post(f"/feedback/callbacks/{r.task.pk}/record/", {"reached": "0"})
    assert resp.status_code == 409 and "已结束" in resp.content.decode()


def test_callbacks_page_filters(world, completed):
    r = completed()
    c = Client()
    c.force_login(world.pudong_agent)
    Client().post(url(r.token), answers())
    assert r.order.number not in c.get("/feedback/callbacks/").content.decode()
    assert r.order.number in c.get("/feedback/callbacks/?status=done").content.decode()
    assert c.get("/feedback/callbacks/?status=bogus&cursor=%%%").status_code == 200


def test_callbacks_page_queries_do_not_grow_with_the_tasks(world, completed):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    c = Client()
    c.force_login(world.pudong_agent)
    counts = []
    for n in (1, 4):
        while CallbackTask.objects.filter(status="open").count() < n:
            completed()
        with CaptureQueriesContext(connection) as ctx:
            assert c.get("/feedback/callbacks/").status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1] <= 8, counts


def test_every_feedback_page_but_the_survey_declares_its_permission():
    from django.urls import get_resolver

    from aftersales.feedback import urls

    for p in urls.urlpatterns:
        if p.name == "survey":
            assert not getattr(p.callback, "required_perms", None)
            continue
        assert getattr(p.callback, "required_perms", None), p.name
    assert get_resolver().resolve("/feedback/callbacks/").app_name == "feedback"
