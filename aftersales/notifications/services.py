"""Writing notifications: render the text, keep the message, deliver it after commit.

Texts are written in Chinese, the customers' language (``TEMPLATES``); staff messages follow
the same table. Delivery runs after the writing transaction commits (a task: Celery with a
broker, in-process otherwise), so a rolled-back move sends nothing."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from aftersales.core.masking import mask_phone

from .channels import channel_for
from .models import Message, MessageStatus

logger = logging.getLogger(__name__)

TEMPLATES = {
    "order_received": _("【售后服务】您的服务请求已受理，工单号 %(number)s。我们将尽快与您联系。"),
    "dispatched": _("【售后服务】工单 %(number)s 已派工：技师 %(technician)s 将于 %(window)s 上门，如需改约请回复。"),
    "appointment": _("【售后服务】提醒：技师 %(technician)s 预计 %(window)s 到达，工单 %(number)s。"),
    "en_route": _("【售后服务】技师 %(technician)s 已出发，预计 %(window)s 到达，工单 %(number)s。"),
    "completed": _("【售后服务】工单 %(number)s 已完工：%(result)s。感谢您的耐心。"),
    "confirm_code": _("【售后服务】工单 %(number)s 的服务确认码为 %(code)s，%(minutes)s 分钟内有效。请仅在服务完成后告知技师。"),
    "survey": _("【售后服务】请为工单 %(number)s 的服务评分：%(link)s（%(days)s 天内有效）。"),
    "sla_breach": _("工单 %(number)s（%(node)s）%(what)s已超时，已升级至第 %(level)s 级，请处理。"),
    "complaint": _("工单 %(number)s 的客户回访评分偏低，已生成投诉跟进单 %(complaint)s。"),
    "reopened": _("【售后服务】工单 %(number)s 已重新处理，我们会尽快再次上门。"),
    # parts: stock alerts to the managers of the warehouse's node
    "stock_low": _("库存预警：%(warehouse)s 有 %(count)s 种配件降至补货点或以下：%(parts)s。请及时补货。"),
    "stock_out": _("缺货提醒：%(warehouse)s 有 %(count)s 种配件已无可用库存：%(parts)s。请尽快补货或调拨。"),
    # assets: tools and instruments due for calibration/inspection, loaners (to holders and managers)
    "tool_due_soon": _("您持有的工具仪器 %(code)s %(name)s 的%(check)s有效期至 %(due)s，即将到期，请及时送检。"),
    "tool_overdue": _("您持有的工具仪器 %(code)s %(name)s 的%(check)s有效期至 %(due)s，已过期，请停止使用并尽快送检。"),
    "tools_due_summary": _("%(node)s 有 %(n)s 件工具仪器的校准/检验即将到期或已过期：%(items)s。"),
    "loans_overdue": _("%(node)s 有 %(n)s 台备用机逾期未还：%(items)s。请联系客户归还。"),
    "loan_candidates": _("%(node)s 有 %(n)s 张维修工单已超过 %(days)s 天未修复：%(items)s。可为客户借出备用机。"),
    "dispatch_instrument": _("工单 %(number)s 已派给您。提醒：您%(tools)s，请尽快送检，过期仪器不得用于检测。"),
    # charges: the quote sent to the customer, the customer's answer told to the technician
    "quote": _("【售后服务】工单 %(number)s 维修报价：合计 %(total)s 元，其中需您支付 %(due)s 元。请查看明细并确认：%(link)s（%(hours)s 小时内有效）。"),
    "quote_approved": _("工单 %(number)s：客户已确认报价 %(quote)s，可以开始维修。"),
    "quote_rejected": _("工单 %(number)s：客户已拒绝报价 %(quote)s，请与客户沟通。"),
    # quality: an improvement action past its due date (to its owner and the node's managers)
    # staff: appraisal steps due (to each reviewer, once per cycle and step)
    "appraisal_review_due": _("绩效考核 %(cycle)s：您有 %(n)s 份考核表待完成“%(step)s”，截止日期 %(due)s，请及时处理。"),
    "action_overdue": _("改进措施 %(number)s“%(title)s”（%(node)s，负责人 %(owner)s）已超过完成期限 %(due)s，请尽快处理。"),
}


def render(event: str, context: dict) -> str:
    with translation.override("zh-hans"):
        return str(TEMPLATES[event]) % context


def _queue(m: Message) -> Message:
    m.save()
    transaction.on_commit(lambda: _schedule(m.pk))
    return m


def _schedule(message_id: int) -> None:
    from .tasks import deliver_task

    deliver_task.delay(message_id)


def notify_customer(customer, *, event: str, context: dict, ref: str = "", ref_id: int | None = None) -> Message:
    return _queue(Message(channel="sms", event=event, customer=customer, address=customer.phone,
                          body=render(event, context), ref=ref, ref_id=ref_id, node_id=customer.node_id))


def notify_users(users, *, event: str, context: dict, ref: str = "", ref_id: int | None = None,
                 node_id: int | None = None) -> list[Message]:
    out = []
    body = render(event, context)
    for u in users:
        out.append(_queue(Message(channel="staff", event=event, user=u, address=u.email or u.get_username(),
                                  subject=body[:60], body=body, ref=ref, ref_id=ref_id, node_id=node_id)))
    return out


def deliver(message_id: int) -> Message | None:
    """Carry one queued message over its channel; a failure is recorded, never raised."""
    with transaction.atomic():
        m = Message.objects.select_for_update().filter(pk=message_id, status=MessageStatus.QUEUED).first()
        if m is None:
            return None
        m.attempts += 1
        try:
            m.status = channel_for(m.channel).send(m)
            m.sent_at = timezone.now()
            m.error = ""
        except Exception as exc:  # noqa: BLE001 - any channel failure is the message's state
            logger.warning("notification %s failed: %s", m.pk, exc)
            m.status = MessageStatus.FAILED
            m.error = str(exc)[:300]
        m.save(update_fields=["status", "attempts", "sent_at", "error"])
        return m


def shown_address(m: Message, *, full: bool) -> str:
    return m.address if full or "@" in m.address or not m.address.isdigit() else mask_phone(m.address)
