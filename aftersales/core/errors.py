"""The one application error type and its shape.

Services raise ``DomainError`` (or a subclass); the API and the pages turn it into one
response format: ``{"code": ..., "message": ..., "errors": {field: [messages]}}`` with the
HTTP status the error carries. Messages are lazy translations, so they reach the user in
the user's language.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message=None, *, errors: Mapping[str, list] | None = None, code: str | None = None):
        self.message = message or _("请求无效。")
        self.errors = {k: list(v) for k, v in (errors or {}).items()}
        if code:
            self.code = code
        super().__init__(str(self.message))

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "message": str(self.message),
            "errors": {field: [str(m) for m in msgs] for field, msgs in self.errors.items()},
        }


class ValidationFailed(DomainError):
    """Input broke one or more field rules; ``errors`` names every failing field at once."""

    status = 400
    code = "validation_failed"

    def __init__(self, errors: Mapping[str, list], message=None):
        super().__init__(message or _("输入有误，请检查标出的字段。"), errors=errors)


class NotFound(DomainError):
    """Absent, or outside the caller's scope: the two are indistinguishable on purpose."""

    status = 404
    code = "not_found"

    def __init__(self, message=None):
        super().__init__(message or _("未找到，或您无权查看。"))


class PermissionDenied(DomainError):
    status = 403
    code = "forbidden"

    def __init__(self, message=None):
        super().__init__(message or _("您的角色无权执行此操作。"))


class Conflict(DomainError):
    status = 409
    code = "conflict"


class ErrorCollector:
    """Collects field errors so a service can report every bad field at once."""

    def __init__(self):
        self.errors: dict[str, list] = {}

    def add(self, field: str, message) -> None:
        self.errors.setdefault(field, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)
