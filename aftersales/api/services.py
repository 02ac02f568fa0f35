"""Writes of the API app: issuing and revoking personal API tokens."""

from __future__ import annotations

import hashlib
import secrets

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import NotFound, ValidationFailed
from aftersales.records.audit import audit_record, snapshot

from .models import ApiToken

_AUDIT_FIELDS = ["id", "user_id", "name", "prefix", "created_at", "revoked"]  # never the hash


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def token_issue(user, name: str = "") -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the row and the raw token (shown once, never stored)."""
    name = (name or "").strip() or "api"
    if len(name) > 100:
        raise ValidationFailed({"name": [_("名称不能超过 100 个字符。")]})
    raw = secrets.token_urlsafe(32)
    t = ApiToken.objects.create(user=user, name=name, key_hash=token_hash(raw), prefix=raw[:8])
    audit_record(actor=user, action="api_token.issue", obj=t, before=None, after=snapshot(t, _AUDIT_FIELDS))
    return t, raw


@transaction.atomic
def token_revoke(user, token_id: int) -> ApiToken:
    """Revoke one of ``user``'s own tokens; anybody else's is not found."""
    t = ApiToken.objects.select_for_update().filter(pk=token_id, user=user).first()
    if t is None:
        raise NotFound()
    if not t.revoked:
        before = snapshot(t, _AUDIT_FIELDS)
        t.revoked = True
        t.save(update_fields=["revoked"])
        audit_record(actor=user, action="api_token.revoke", obj=t, before=before, after=snapshot(t, _AUDIT_FIELDS))
    return t
