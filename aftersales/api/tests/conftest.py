"""Helpers for the API tests: a JSON client signed in as one of the ``world`` users."""

import json

import pytest
from django.test import Client


class ApiClient:
    """``django.test.Client`` speaking JSON under ``/api``; ``.user`` is who is signed in."""

    def __init__(self, user=None, *, token: str | None = None, **client_kw):
        self.client = Client(**client_kw)
        self.user = user
        self.headers = {}
        if user is not None:
            self.client.force_login(user)
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def _url(self, path: str) -> str:
        return path if path.startswith("/api/") else "/api" + path

    def get(self, path, params=None, **headers):
        return self.client.get(self._url(path), params or {}, headers={**self.headers, **headers})

    def _send(self, method, path, data=None, **headers):
        body = data if isinstance(data, str | bytes) else json.dumps(data if data is not None else {})
        return getattr(self.client, method)(self._url(path), body, content_type="application/json",
                                            headers={**self.headers, **headers})

    def post(self, path, data=None, **headers):
        return self._send("post", path, data, **headers)

    def put(self, path, data=None, **headers):
        return self._send("put", path, data, **headers)

    def patch(self, path, data=None, **headers):
        return self._send("patch", path, data, **headers)

    def delete(self, path, **headers):
        return self.client.delete(self._url(path), headers={**self.headers, **headers})


@pytest.fixture
def as_user():
    """``as_user(world.pudong_agent)`` → a signed-in JSON client."""
    return ApiClient


def errors_of(resp) -> dict:
    body = resp.json()
    assert set(body) >= {"code", "message", "errors"}, body
    return body["errors"]
