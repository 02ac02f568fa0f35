"""The one JSON API (``/api/``): authentication, error shape, routers.

Every error has one shape, ``{"code", "message", "errors": {"field.path": [messages]}}``,
in the caller's language: domain errors carry their own status; input that does not fit the
schema is a 400 naming each bad field (never a 422, never a 500); unknown URLs and objects
outside the caller's scope are 404; a missing or bad credential is 401; a missing permission
is 403. The schema is served at ``/api/openapi.json`` and browsed at ``/api/docs``.
"""

import datetime as dt
import re

from django.contrib.auth import authenticate
from django.http import Http404
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from ninja import Field, NinjaAPI, Router, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.renderers import JSONRenderer

from aftersales.core.errors import DomainError, NotFound, ValidationFailed

from . import services
from .auth import session_auth, token_auth
from .permissions import AUTHENTICATED, public, requires
from .schemas import In, PathId, Text


class Utf8JSONRenderer(JSONRenderer):
    """JSON with Chinese as characters, not ``\\u`` escapes (the body is UTF-8)."""

    json_dumps_params = {"ensure_ascii": False}


api = NinjaAPI(
    title="AfterSales API",
    version="1",
    description="AfterSales 售后服务管理系统接口。会话（网页登录，写操作需 CSRF）或 `Authorization: Bearer <令牌>`。",
    urls_namespace="api",
    auth=[session_auth, token_auth],
    renderer=Utf8JSONRenderer(),
)


# ---------------------------------------------------------------- errors

# Messages for the pydantic error types an API caller can cause; the rest get a generic one.
_MESSAGES = {
    "missing": _("请填写此项。"),
    "int_parsing": _("请输入整数。"),
    "int_type": _("请输入整数。"),
    "int_from_float": _("请输入整数。"),
    "int_parsing_size": _("数值过大。"),
    "float_parsing": _("请输入数字。"),
    "float_type": _("请输入数字。"),
    "decimal_parsing": _("请输入数字。"),
    "decimal_type": _("请输入数字。"),
    "finite_number": _("请输入有限的数字。"),
    "bool_parsing": _("请输入 true 或 false。"),
    "bool_type": _("请输入 true 或 false。"),
    "date_parsing": _("日期格式不正确，应为 YYYY-MM-DD。"),
    "date_from_datetime_parsing": _("日期格式不正确，应为 YYYY-MM-DD。"),
    "date_from_datetime_inexact": _("日期格式不正确，应为 YYYY-MM-DD。"),
    "date_type": _("日期格式不正确，应为 YYYY-MM-DD。"),
    "datetime_parsing": _("日期时间格式不正确。"),
    "datetime_from_date_parsing": _("日期时间格式不正确。"),
    "datetime_type": _("日期时间格式不正确。"),
    "string_type": _("请输入文本。"),
    "string_too_long": _("不能超过 %(max_length)s 个字符。"),
    "string_too_short": _("至少需要 %(min_length)s 个字符。"),
    "string_pattern_mismatch": _("格式不正确。"),
    "nul_char": _("不能包含空字符。"),
    "greater_than_equal": _("不能小于 %(ge)s。"),
    "greater_than": _("须大于 %(gt)s。"),
    "less_than_equal": _("不能大于 %(le)s。"),
    "less_than": _("须小于 %(lt)s。"),
    "list_type": _("须为列表。"),
    "too_long": _("最多 %(max_length)s 项。"),
    "too_short": _("至少 %(min_length)s 项。"),
    "enum": _("无效的选项，可选：%(expected)s。"),
    "literal_error": _("无效的选项，可选：%(expected)s。"),
    "model_type": _("格式不正确，应为对象。"),
    "model_attributes_type": _("格式不正确，应为对象。"),
    "dict_type": _("格式不正确，应为对象。"),
    "json_invalid": _("请求内容不是有效的 JSON。"),
    "extra_forbidden": _("不支持此字段。"),
}
_INVALID = _("输入值无效。")
_SOURCES = {"body", "query", "path", "header", "cookie", "form", "file"}


def field_path(loc) -> str:
    """``("body", "payload", "address", "street")`` → ``address.street``; list items as ``[i]``."""
    parts = list(loc)
    if parts and parts[0] in _SOURCES:
        source = parts.pop(0)
        if source == "body" and parts and parts[0] == "payload":  # the name of every handler's body
            parts.pop(0)
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out or "body"


def error_message(err: dict) -> str:
    template = _MESSAGES.get(err.get("type", ""), _INVALID)
    ctx = dict(err.get("ctx") or {})
    if "expected" in ctx:  # pydantic's "'a', 'b' or 'c'" → "a、b、c"
        choices = re.findall(r"'([^']*)'", str(ctx["expected"]))
        ctx["expected"] = "、".join(choices) if choices else ctx["expected"]
    try:
        return str(template) % ctx if "%(" in str(template) else str(template)
    except (KeyError, TypeError, ValueError):
        return str(_INVALID)


def _respond(request, exc: DomainError):
    return api.create_response(request, exc.as_dict(), status=exc.status)


@api.exception_handler(DomainError)
def on_domain_error(request, exc: DomainError):
    return _respond(request, exc)


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    errors: dict[str, list[str]] = {}
    for err in exc.errors:
        msgs = errors.setdefault(field_path(err.get("loc", ())), [])
        msg = error_message(err)
        if msg not in msgs:
            msgs.append(msg)
    return _respond(request, ValidationFailed(errors))


@api.exception_handler(Http404)
def on_404(request, exc):
    return _respond(request, NotFound())


@api.exception_handler(AuthenticationError)
def on_unauthenticated(request, exc):
    err = DomainError(_("请先登录，或提供有效的接口令牌。"), code="unauthenticated")
    return api.create_response(request, err.as_dict(), status=401)


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    if exc.status_code == 400:  # the body is not JSON (ninja's only 400)
        return _respond(request, ValidationFailed({"body": [gettext("请求内容不是有效的 JSON。")]}))
    err = DomainError(str(exc), code="error")
    return api.create_response(request, err.as_dict(), status=exc.status_code)


# ---------------------------------------------------------------- tokens

auth_router = Router(tags=["auth"])


class TokenIn(In):
    username: Text(150)
    password: Text(128)
    name: Text(100) = ""


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    token: str = Field(description="只在此处显示一次，请妥善保存。")


@auth_router.post("/token", response={201: TokenOut}, auth=None)
@public
def token_create(request, payload: TokenIn):
    """Issue a personal API token with a username and password. The token is shown only here."""
    user = authenticate(request, username=payload.username, password=payload.password)
    if user is None:
        raise ValidationFailed({"password": [_("用户名或密码不正确。")]})
    t, raw = services.token_issue(user, payload.name)
    return {"id": t.pk, "name": t.name, "prefix": t.prefix, "created_at": t.created_at, "token": raw}


@auth_router.delete("/token/{token_id}", response={204: None})
@requires(AUTHENTICATED)
def token_delete(request, token_id: PathId):
    """Revoke one of your own tokens."""
    services.token_revoke(request.auth, token_id)
    return Status(204, None)


api.add_router("/auth/", auth_router)
api.add_router("/org/", "aftersales.org.api.router")
api.add_router("/catalog/", "aftersales.catalog.api.router")
api.add_router("/", "aftersales.customers.api.router")
api.add_router("/imports/", "aftersales.imports.api.router")
api.add_router("/orders/", "aftersales.tickets.api.router")
api.add_router("/sla/", "aftersales.tickets.api_sla.router")
api.add_router("/dispatch/", "aftersales.dispatch.api.router")
api.add_router("/feedback/", "aftersales.feedback.api.router")
api.add_router("/parts/", "aftersales.parts.api.router")
api.add_router("/assets/", "aftersales.assets.api.router")
api.add_router("/charges/", "aftersales.charges.api.router")
api.add_router("/quality/improve/", "aftersales.quality.api_improve.router")
api.add_router("/quality/reports/", "aftersales.quality.api_reports.router")
api.add_router("/quality/", "aftersales.quality.api.router")
api.add_router("/staff/appraisal/", "aftersales.staff.api_appraisal.router")
api.add_router("/staff/training/", "aftersales.staff.api_training.router")
api.add_router("/notifications/", "aftersales.notifications.api.router")


# Last: whatever no route above matched is a 404 in the API's shape, not Django's HTML page.
fallback_router = Router()


@fallback_router.api_operation(["GET", "POST", "PUT", "PATCH", "DELETE"], "/{path:rest}", auth=None,
                               include_in_schema=False)
@public
def not_found(request, rest: str):
    raise NotFound()


api.add_router("/", fallback_router)
