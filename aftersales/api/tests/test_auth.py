"""Session and bearer-token authentication, token issue and revocation, CSRF."""

import datetime as dt
import hashlib

import pytest
from django.middleware.csrf import _get_new_csrf_string
from django.utils import timezone

from aftersales.api.models import ApiToken
from aftersales.conftest import PASSWORD
from aftersales.records.models import AuditEntry

from .conftest import ApiClient, errors_of

pytestmark = pytest.mark.django_db


def issue(username, password=PASSWORD, name="手机应用"):
    return ApiClient().post("/auth/token", {"username": username, "password": password, "name": name})


def test_token_issue_stores_only_the_hash_and_is_audited(world):
    r = issue("pudong_agent")
    assert r.status_code == 201, r.content
    body = r.json()
    raw = body["token"]
    t = ApiToken.objects.get(pk=body["id"])
    assert t.user == world.pudong_agent and t.name == "手机应用" and not t.revoked
    assert t.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert t.prefix == raw[:8] == body["prefix"]
    assert not ApiToken.objects.filter(key_hash=raw).exists()
    e = AuditEntry.objects.get(action="api_token.issue", object_id=str(t.pk))
    assert e.actor_id == world.pudong_agent.pk
    assert raw not in str(e.after) and t.key_hash not in str(e.after)


def test_bearer_token_authenticates_reads_and_writes_without_csrf(world):
    raw = issue("pudong_agent").json()["token"]
    c = ApiClient(token=raw, enforce_csrf_checks=True)
    r = c.get("/customers")
    assert r.status_code == 200
    assert [i["phone"] for i in r.json()["items"]] == ["13812345678"]
    r = c.post("/customers", {"name": "李雷", "phone": "13700000001", "node_id": world.pudong.id})
    assert r.status_code == 201, r.content
    assert AuditEntry.objects.filter(action="customer.create", actor_id=world.pudong_agent.pk).exists()


def test_bad_credentials_are_a_field_error(world):
    r = issue("pudong_agent", password="wrong")
    assert r.status_code == 400
    assert r.json()["code"] == "validation_failed"
    assert errors_of(r)["password"] == ["用户名或密码不正确。"]
    assert not ApiToken.objects.exists()


def test_missing_credentials_name_each_field(world):
    r = ApiClient().post("/auth/token", {})
    assert r.status_code == 400
    assert errors_of(r) == {"username": ["请填写此项。"], "password": ["请填写此项。"]}


def test_inactive_user_gets_no_token_and_loses_existing_ones(world):
    raw = issue("pudong_agent").json()["token"]
    world.pudong_agent.is_active = False
    world.pudong_agent.save()
    assert issue("pudong_agent").status_code == 400
    assert ApiClient(token=raw).get("/customers").status_code == 401


def test_revoke_own_token(world):
    body = issue("pudong_agent").json()
    c = ApiClient(token=body["token"])
    r = c.delete(f"/auth/token/{body['id']}")
    assert r.status_code == 204
    assert ApiToken.objects.get(pk=body["id"]).revoked
    assert AuditEntry.objects.filter(action="api_token.revoke", object_id=str(body["id"])).exists()
    r = c.get("/customers")
    assert r.status_code == 401
    assert r.json()["code"] == "unauthenticated"


def test_cannot_revoke_someone_elses_token(world):
    body = issue("pudong_agent").json()
    r = ApiClient(world.tianhe_agent).delete(f"/auth/token/{body['id']}")
    assert r.status_code == 404
    assert not ApiToken.objects.get(pk=body["id"]).revoked


def test_unknown_token_and_no_credentials_are_401(world):
    assert ApiClient(token="not-a-token").get("/customers").status_code == 401
    r = ApiClient().get("/customers")
    assert r.status_code == 401
    assert r.json() == {"code": "unauthenticated", "message": "请先登录，或提供有效的接口令牌。", "errors": {}}


def test_last_used_at_is_written_at_most_once_a_minute(world):
    body = issue("pudong_agent").json()
    c = ApiClient(token=body["token"])
    assert c.get("/org/me").status_code == 200
    first = ApiToken.objects.get(pk=body["id"]).last_used_at
    assert first is not None
    recent = timezone.now() - dt.timedelta(seconds=30)
    ApiToken.objects.filter(pk=body["id"]).update(last_used_at=recent)
    c.get("/org/me")
    assert ApiToken.objects.get(pk=body["id"]).last_used_at == recent
    old = timezone.now() - dt.timedelta(minutes=2)
    ApiToken.objects.filter(pk=body["id"]).update(last_used_at=old)
    c.get("/org/me")
    assert ApiToken.objects.get(pk=body["id"]).last_used_at > old


def test_session_writes_need_the_csrf_token(world):
    c = ApiClient(world.pudong_agent, enforce_csrf_checks=True)
    assert c.get("/customers").status_code == 200  # safe methods need none
    data = {"name": "韩梅梅", "phone": "13700000002", "node_id": world.pudong.id}
    r = c.post("/customers", data)
    assert r.status_code == 403
    assert r.json()["code"] == "csrf_failed"
    secret = _get_new_csrf_string()
    c.client.cookies["csrftoken"] = secret
    r = c.post("/customers", data, **{"X-CSRFToken": secret})
    assert r.status_code == 201, r.content


def test_me_via_session(world, as_user):
    r = as_user(world.customer_user).get("/org/me")
    assert r.status_code == 200
    body = r.json()
    assert body["username"] == "c_pudong" and body["customer_id"] == world.c_pudong.id
    assert [p["code"] for p in body["permissions"]] == ["catalog.view"]
