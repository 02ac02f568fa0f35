"""Input rules shared by every entry path (forms, API, import)."""

from __future__ import annotations

import datetime as dt
import re

from django.utils.translation import gettext_lazy as _

# Mainland mobile numbers: 11 digits, 1 then 3-9. A leading +86 / 86 and spaces or dashes
# are accepted on input and stripped.
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_/]{3,39}$")


def normalize_mobile(raw: str | None) -> str:
    s = re.sub(r"[\s\-()]", "", str(raw or ""))
    if s.startswith("+86"):
        s = s[3:]
    elif s.startswith("0086"):
        s = s[4:]
    elif s.startswith("86") and len(s) == 13:
        s = s[2:]
    return s


def mobile_error(phone: str):
    """The error message for a normalised phone, or None when it is valid."""
    if not phone:
        return _("请填写手机号。")
    if not _MOBILE.match(phone):
        return _("手机号格式不正确：应为 11 位中国大陆手机号，如 13812345678。")
    return None


def normalize_serial(raw: str | None) -> str:
    return str(raw or "").strip().upper()


def serial_error(serial: str):
    if not serial:
        return _("请填写序列号。")
    if not _SERIAL.match(serial):
        return _("序列号格式不正确：4–40 位字母、数字或 - _ /。")
    return None


DATE_FORMAT_ERROR = _("日期格式不正确，应为 YYYY-MM-DD。")


def parse_date(value) -> dt.date | None:
    """A date from a form, an API body or a cell: ``None`` when blank; ``ValueError`` when it
    is not a date written YYYY-MM-DD (report it with ``DATE_FORMAT_ERROR``)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    return dt.date.fromisoformat(text) if text else None


def date_field(errs, field: str, v, *, required: bool) -> dt.date | None:
    """A date field of a service's input (a ``date`` or "YYYY-MM-DD"; a datetime is refused),
    reporting a missing or malformed value on ``errs`` (an ``ErrorCollector``) under ``field``."""
    if v is None or v == "":
        if required:
            errs.add(field, _("请填写日期。"))
        return None
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v.strip())
        except ValueError:
            pass
    errs.add(field, DATE_FORMAT_ERROR)
    return None


def text_field(errs, field: str, v, max_len: int, *, required: bool = False) -> str:
    """A text field of a service's input, stripped; reports a non-string, a NUL character, a
    missing required value or more than ``max_len`` characters on ``errs`` under ``field``."""
    if v is None:
        v = ""
    if not isinstance(v, str):
        errs.add(field, _("请输入文本。"))
        return ""
    v = v.strip()
    if "\x00" in v:
        errs.add(field, _("不能包含空字符。"))
        return ""
    if required and not v:
        errs.add(field, _("请填写此项。"))
    elif len(v) > max_len:
        errs.add(field, _("不能超过 %(n)s 个字符。") % {"n": max_len})
    return v
