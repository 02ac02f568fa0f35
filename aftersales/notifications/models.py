"""Notifications to customers and staff (R-REQ-4: the customer is told the progress; R-SLA-2:
managers are told of breaches). Every message is kept here — the outbox — whatever channel
carries it, so the UI shows what was sent, to whom, when, and whether it went out."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class MessageStatus(models.TextChoices):
    QUEUED = "queued", _("待发送")
    SENT = "sent", _("已发送")
    KEPT = "kept", _("已存入发件箱")
    FAILED = "failed", _("发送失败")


class Message(models.Model):
    channel = models.CharField(_("渠道"), max_length=20)  # a key of settings.NOTIFY_CHANNELS
    event = models.CharField(_("事件"), max_length=30)
    customer = models.ForeignKey("customers.Customer", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="messages", verbose_name=_("客户"))
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="messages", verbose_name=_("员工"))
    address = models.CharField(_("收件地址"), max_length=200)  # phone, e-mail or URL
    subject = models.CharField(_("标题"), max_length=200, blank=True)
    body = models.TextField(_("内容"))
    ref = models.CharField(_("关联单据"), max_length=40, blank=True)  # e.g. a work-order number
    ref_id = models.BigIntegerField(null=True, blank=True)
    node = models.ForeignKey("org.Node", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             verbose_name=_("节点"), db_index=False)
    status = models.CharField(_("状态"), max_length=10, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    error = models.CharField(_("错误"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("通知")
        verbose_name_plural = _("通知")
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="message_created_idx"),
            models.Index(fields=["node", "-created_at"], name="message_node_idx"),
            models.Index(fields=["ref"], name="message_ref_idx"),
            models.Index(fields=["user", "-created_at"], name="message_user_idx"),
            models.Index(fields=["status"], name="message_queued_idx", condition=models.Q(status="queued")),
        ]

    def __str__(self):
        return f"{self.event} → {self.address}"
