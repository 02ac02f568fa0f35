"""How an API caller is identified: the Django session (the web app's own pages) or a
personal bearer token (apps, scripts). ``request.auth`` is the user either way.

Session auth keeps ninja's CSRF protection for unsafe methods, but only when the session
actually authenticates the request: a request carrying a bearer token (which a browser
never adds by itself) or no signed-in session is left to the token auth.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from aftersales.core.errors import PermissionDenied

from .models import ApiToken
from .services import token_hash

LAST_USED_GRANULARITY = dt.timedelta(minutes=1)


def _has_bearer(request: HttpRequest) -> bool:
    return request.headers.get("Authorization", "").lower().startswith("bearer ")


class SessionAuth(APIKeyCookie):
    """ninja's ``SessionAuth``, with the CSRF check applied only to session-authenticated calls."""

    param_name: str = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=True)

    def __call__(self, request: HttpRequest):
        if _has_bearer(request):
            return None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            err = PermissionDenied(_("CSRF 校验失败，请刷新页面后重试。"))
            err.code = "csrf_failed"
            raise err
        return user

    def _get_key(self, request: HttpRequest):  # pragma: no cover - __call__ does not use it
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key):  # pragma: no cover - see __call__
        return request.user if request.user.is_authenticated else None


class TokenAuth(HttpBearer):
    """``Authorization: Bearer <token>``: the hash is looked up; revoked tokens and inactive users fail."""

    def authenticate(self, request: HttpRequest, token: str):
        token = (token or "").strip()
        if not token or len(token) > 200:
            return None
        t = ApiToken.objects.select_related("user").filter(key_hash=token_hash(token), revoked=False).first()
        if t is None or not t.user.is_active:
            return None
        now = timezone.now()
        if t.last_used_at is None or now - t.last_used_at >= LAST_USED_GRANULARITY:
            ApiToken.objects.filter(pk=t.pk).update(last_used_at=now)
        return t.user


session_auth = SessionAuth()
token_auth = TokenAuth()
