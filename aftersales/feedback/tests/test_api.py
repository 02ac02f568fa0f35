"""The feedback API: call-back tasks, the public survey endpoints, an order's surveys."""

import datetime as dt

import pytest
from django.utils import timezone

from aftersales.api.tests.conftest import ApiClient, errors_of
from aftersales.feedback.models import CallbackTask, Survey
from aftersales.records.models import AuditEntry
from aftersales.tickets.models import OrderEvent, WorkOrder

from .conftest import SCORES

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------- the public survey

def test_survey_get_shows_the_order_and_nothing_personal(world, completed):
    r = completed()
    resp = ApiClient().get(f"/feedback/surveys/{r.token}")
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["order_number"] == r.order.number
    assert body["technician"] == "李师傅" and body["product"] == "挂壁式空调 1.5匹"
    assert body["service_date"] == timezone.localdate(r.order.completed_at).isoformat()
    assert [q["field"] for q in body["questions"]] == ["timeliness", "attitude", "professionalism", "result"]
    text = resp.content.decode()
    for secret in ("13812345678", "张杨路", "张伟", r.survey.token_hash):
        assert secret not in text


def test_survey_post_closes_the_order(world, completed):
    r = completed()
    resp = ApiClient().post(f"/feedback/surveys/{r.token}", {**SCORES, "resolved": True, "comment": "好"})
    assert resp.status_code == 200, resp.content
    assert resp.json()["follow_up"] is False and "感谢" in resp.json()["message"]
    assert WorkOrder.objects.get(pk=r.order.pk).status == "closed"


def test_survey_post_low_score_says_we_will_call(world, completed):
    r = completed()
    resp = ApiClient().post(f"/feedback/surveys/{r.token}", {**SCORES, "result": 1, "resolved": True})
    assert resp.status_code == 200 and resp.json()["follow_up"] is True
    assert WorkOrder.objects.filter(parent=r.order, type="complaint").count() == 1


def test_used_token_is_410_unknown_404_expired_410(world, completed):
    r = completed()
    c = ApiClient()
    assert c.post(f"/feedback/surveys/{r.token}", {**SCORES, "resolved": True}).status_code == 200
    for resp in (c.get(f"/feedback/surveys/{r.token}"),
                 c.post(f"/feedback/surveys/{r.token}", {**SCORES, "resolved": True})):
        assert resp.status_code == 410
        assert resp.json()["code"] == "survey_closed" and "已使用" in resp.json()["message"]
    for resp in (c.get("/feedback/surveys/not-a-token"), c.post("/feedback/surveys/x", {**SCORES, "resolved": True})):
        assert resp.status_code == 404 and resp.json()["code"] == "not_found"
    r2 = completed()
    Survey.objects.filter(pk=r2.survey.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    resp = c.post(f"/feedback/surveys/{r2.token}", {**SCORES, "resolved": True})
    assert resp.status_code == 410 and "已过期" in resp.json()["message"]
    assert c.get(f"/feedback/surveys/{r2.token}").status_code == 410


@pytest.mark.parametrize(("field", "value"), [
    ("timeliness", 0), ("attitude", 6), ("professionalism", 3.5), ("result", "x"), ("result", "3"),
    ("timeliness", True), ("overall", 0), ("resolved", "maybe"), ("comment", "长" * 501), ("extra", 1),
])
def test_bad_survey_input_is_a_400_naming_the_field_and_nothing_is_written(world, completed, field, value):
    r = completed()
    before = (AuditEntry.objects.count(), OrderEvent.objects.count())
    resp = ApiClient().post(f"/feedback/surveys/{r.token}", {**SCORES, "resolved": True, field: value})
    assert resp.status_code == 400, resp.content
    assert field in errors_of(resp)
    assert (AuditEntry.objects.count(), OrderEvent.objects.count()) == before
    assert Survey.objects.get(pk=r.survey.pk).answered_at is None


def test_missing_scores_are_named(world, completed):
    r = completed()
    resp = ApiClient().post(f"/feedback/surveys/{r.token}", {"comment": "?"})
    assert resp.status_code == 400
    assert set(errors_of(resp)) == {"timeliness", "attitude", "professionalism", "result", "resolved"}


def test_survey_errors_in_english_when_asked(world, completed):
    r = completed()
    resp = ApiClient().post(f"/feedback/surveys/{r.token}", {**SCORES, "resolved": True, "timeliness": 9},
                            HTTP_ACCEPT_LANGUAGE="en")
    assert resp.status_code == 400 and "timeliness" in errors_of(resp)


# ---------------------------------------------------------------- call-back tasks

def test_callback_list_scoped_and_paginated(world, completed, django_assert_max_num_queries):
    rounds = [completed() for _ in range(3)]
    agent = ApiClient(world.pudong_agent)
    with django_assert_max_num_queries(5):
        resp = agent.get("/feedback/callbacks", {"limit": 2})
    assert resp.status_code == 200, resp.content
    page = resp.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    item = page["items"][0]
    assert item["customer"]["phone"] == "13812345678"  # the agent may call
    assert item["order"]["technician"] == "李师傅" and item["assigned_to"] == "pudong_agent"
    assert item["node"]["code"] == "SH-PD" and item["status"] == "open" and item["overdue"] is False
    assert "及时性" in item["script"]["text"] and len(item["script"]["questions"]) == 4
    rest = agent.get("/feedback/callbacks", {"limit": 2, "cursor": page["next_cursor"]}).json()
    ids = [i["id"] for i in page["items"] + rest["items"]]
    assert sorted(ids) == sorted(r.task.pk for r in rounds) and rest["next_cursor"] is None
    # more rows, same number of queries
    for _ in range(3):
        completed()
    with django_assert_max_num_queries(5):
        assert len(agent.get("/feedback/callbacks").json()["items"]) == 6
    # another outlet sees nothing; the manager sees them masked
    assert ApiClient(world.hangzhou_agent).get("/feedback/callbacks").json()["items"] == []
    east = ApiClient(world.east_manager).get("/feedback/callbacks").json()["items"]
    assert len(east) == 6 and east[0]["customer"]["phone"] == "138****5678"


def test_callback_list_filters(world, completed):
    r = completed()
    c = ApiClient(world.pudong_agent)
    assert [i["id"] for i in c.get("/feedback/callbacks", {"mine": "true"}).json()["items"]] == [r.task.pk]
    assert c.get("/feedback/callbacks", {"status": "done"}).json()["items"] == []
    resp = c.get("/feedback/callbacks", {"status": "nope"})
    assert resp.status_code == 400 and "status" in errors_of(resp)


def test_callback_record_over_the_api(world, completed):
    r = completed()
    c = ApiClient(world.pudong_agent)
    resp = c.post(f"/feedback/callbacks/{r.task.pk}", {"reached": True, **SCORES, "attitude": 2, "resolved": False,
                                                       "comment": "态度差"})
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["reopened"] and not body["closed"] and body["order_status"] == "reopened"
    assert body["complaint"]["number"].startswith("GD") and body["task"]["status"] == "done"
    assert body["survey_id"] == Survey.objects.get(task=r.task, channel="phone").pk
    # a second record: 409
    resp = c.post(f"/feedback/callbacks/{r.task.pk}", {"reached": False})
    assert resp.status_code == 409 and resp.json()["code"] == "callback_closed"


def test_unreachable_three_times_over_the_api(world, completed):
    r = completed()
    c = ApiClient(world.pudong_agent)
    for n in (1, 2, 3):
        resp = c.post(f"/feedback/callbacks/{r.task.pk}", {"reached": False})
        assert resp.status_code == 200
        assert resp.json()["task"]["attempts"] == n
    assert resp.json()["unreachable"] and resp.json()["closed"] and resp.json()["task"]["status"] == "unreachable"


def test_callback_record_bad_input(world, completed):
    r = completed()
    c = ApiClient(world.pudong_agent)
    resp = c.post(f"/feedback/callbacks/{r.task.pk}", {"reached": True, "timeliness": 7})
    assert resp.status_code == 400
    assert set(errors_of(resp)) == {"timeliness"}  # the schema speaks first
    resp = c.post(f"/feedback/callbacks/{r.task.pk}", {"reached": True, "timeliness": 3})
    assert resp.status_code == 400
    assert set(errors_of(resp)) == {"attitude", "professionalism", "result", "resolved"}
    assert c.post(f"/feedback/callbacks/{r.task.pk}", {}).status_code == 400
    assert CallbackTask.objects.get(pk=r.task.pk).status == "open"


def test_callback_permissions(world, completed):
    r = completed()
    url = f"/feedback/callbacks/{r.task.pk}"
    body = {"reached": True, **SCORES, "resolved": True}
    assert ApiClient(world.hangzhou_agent).post(url, body).status_code == 404
    assert ApiClient(world.pudong_tech).post(url, body).status_code == 403
    assert ApiClient(world.pudong_tech).get("/feedback/callbacks").status_code == 403
    assert ApiClient(world.pudong_dispatcher).post(url, body).status_code == 403
    assert ApiClient(world.customer_user).post(url, body).status_code == 403
    assert ApiClient().get("/feedback/callbacks").status_code == 401
    assert ApiClient(world.pudong_agent).post("/feedback/callbacks/999999", body).status_code == 404
    assert CallbackTask.objects.get(pk=r.task.pk).status == "open"


# ---------------------------------------------------------------- an order's surveys

def test_order_surveys(world, completed, django_assert_max_num_queries):
    r = completed()
    ApiClient(world.pudong_agent).post(f"/feedback/callbacks/{r.task.pk}",
                                       {"reached": True, **SCORES, "result": 2, "resolved": True})
    quality = ApiClient(world.quality)
    with django_assert_max_num_queries(7):
        resp = quality.get(f"/feedback/orders/{r.order.pk}/surveys")
    assert resp.status_code == 200, resp.content
    items = resp.json()["items"]
    assert [(i["channel"], i["state"]) for i in items] == [("link", "closed"), ("phone", "answered")]
    phone = items[1]
    assert phone["answered_by"] == "pudong_agent" and phone["result"] == 2 and phone["complaint"]["number"]
    assert "token_hash" not in phone
    assert ApiClient(world.hangzhou_agent).get(f"/feedback/orders/{r.order.pk}/surveys").status_code == 404
    assert ApiClient(world.trainer).get(f"/feedback/orders/{r.order.pk}/surveys").status_code == 403
