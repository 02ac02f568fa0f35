"""Channels that carry a message. ``settings.NOTIFY_CHANNELS`` maps each kind of recipient
("sms" for customers' phones, "staff" for employees) to a channel class; the default,
``Outbox``, keeps the message in the outbox for the UI and sends nothing. Configure real
ones from the environment: ``NOTIFY_SMS_CHANNEL=aftersales.notifications.channels.SmsGateway``
with ``SMS_GATEWAY_URL``/``SMS_GATEWAY_TOKEN``; ``Email`` (Django's mail settings);
``Webhook`` with ``NOTIFY_WEBHOOK_URL``."""

from __future__ import annotations

import json
import urllib.request

from django.conf import settings
from django.core.mail import send_mail
from django.utils.module_loading import import_string

from .models import Message, MessageStatus


class Channel:
    def send(self, m: Message) -> str:
        """Carry ``m``; return the status it reached. Raise to report a failure."""
        raise NotImplementedError


class Outbox(Channel):
    def send(self, m: Message) -> str:
        return MessageStatus.KEPT


def _post_json(url: str, payload: dict, token: str = "") -> None:
    req = urllib.request.Request(url, data=json.dumps(payload, ensure_ascii=False).encode(), method="POST",
                                 headers={"Content-Type": "application/json; charset=utf-8"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - configured URL
        if resp.status >= 300:
            raise RuntimeError(f"HTTP {resp.status}")


class SmsGateway(Channel):
    """POSTs ``{"phone", "text", "ref"}`` to an SMS gateway."""

    def send(self, m: Message) -> str:
        _post_json(settings.SMS_GATEWAY_URL, {"phone": m.address, "text": m.body, "ref": m.ref},
                   settings.SMS_GATEWAY_TOKEN)
        return MessageStatus.SENT


class Email(Channel):
    def send(self, m: Message) -> str:
        send_mail(m.subject or m.body[:40], m.body, None, [m.address])
        return MessageStatus.SENT


class Webhook(Channel):
    """POSTs the whole message as JSON to ``NOTIFY_WEBHOOK_URL`` (a chat bot, a ticket bridge)."""

    def send(self, m: Message) -> str:
        _post_json(settings.NOTIFY_WEBHOOK_URL, {
            "event": m.event, "to": m.address, "subject": m.subject, "text": m.body, "ref": m.ref,
        })
        return MessageStatus.SENT


def channel_for(kind: str) -> Channel:
    path = settings.NOTIFY_CHANNELS.get(kind) or "aftersales.notifications.channels.Outbox"
    return import_string(path)()
