"""The call-back script (回访话术) the agent reads to the customer: an opening per order type,
the four questions scored 1–5 (timeliness, attitude, professionalism, result), whether the
problem is solved, and the closing. The same questions are the rows of the public survey."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aftersales.tickets.models import OrderType

T = OrderType

# What was done, in the words of the opening ("您的空调 __ 已由 … 完成").
_WORK = {
    T.INSTALLATION: _("安装"),
    T.REPAIR: _("维修"),
    T.MAINTENANCE: _("保养"),
    T.CONSULTATION: _("咨询"),
    T.COMPLAINT: _("投诉处理"),
    T.RETURN_EXCHANGE: _("退换货"),
    T.DELIVERY: _("送货"),
    T.RECYCLING: _("旧机回收"),
}

# A question of the type's own, asked before the four scores (what matters for that work).
_CHECK = {
    T.INSTALLATION: _("请问机器现在使用正常吗？师傅是否讲解了使用方法、清理了现场？"),
    T.REPAIR: _("请问故障现在排除了吗？机器使用正常吗？"),
    T.MAINTENANCE: _("请问保养后机器运行正常吗？师傅是否说明了保养内容？"),
    T.CONSULTATION: _("请问您咨询的问题得到解答了吗？"),
    T.COMPLAINT: _("请问您反映的问题现在处理好了吗？对处理结果满意吗？"),
    T.RETURN_EXCHANGE: _("请问退换货已经办妥了吗？新机使用正常吗？"),
    T.DELIVERY: _("请问商品按时送到了吗？包装和外观完好吗？"),
    T.RECYCLING: _("请问旧机已经顺利回收了吗？"),
}

QUESTIONS = (
    ("timeliness", _("及时性"), _("师傅是否按约定时间上门、处理是否及时？")),
    ("attitude", _("服务态度"), _("师傅的服务态度您满意吗？")),
    ("professionalism", _("专业水平"), _("师傅的专业水平和操作规范您满意吗？")),
    ("result", _("处理结果"), _("您对这次的处理结果满意吗？")),
)

OPENING = _("您好，我是售后服务中心的客服。您的工单 %(number)s（%(product)s%(work)s）已于 %(date)s 由 %(technician)s "
            "师傅完成，想占用您一分钟做个回访，可以吗？")
SCALE = _("以下每项请按 1 到 5 分评价，5 分最满意。")
RESOLVED = _("请问您的问题是否已经解决？")
COMMENT = _("您还有其他意见或建议吗？")
CLOSING = _("感谢您的支持！如有问题请随时致电我们，再见。")
LOW_SCORE_HINT = _("任一项 2 分及以下将自动生成投诉跟进单并通知网点经理；未解决的工单将重开处理。")


@dataclass(frozen=True)
class Script:
    opening: str
    check: str
    scale: str
    questions: tuple  # (field, label, question)
    resolved: str
    comment: str
    closing: str
    hint: str

    def as_text(self) -> str:
        lines = [self.opening, self.check, self.scale]
        lines += [f"{i}. {label}：{q}" for i, (_f, label, q) in enumerate(self.questions, 1)]
        lines += [self.resolved, self.comment, self.closing]
        return "\n".join(lines)


def script_for(order) -> Script:
    """The script for ``order`` (needs its ``assignee`` and ``unit.model``; in the active language)."""
    done = order.completed_at or order.updated_at or timezone.now()
    product = order.unit.model.name + " " if order.unit_id and order.unit else ""
    technician = order.assignee.name if order.assignee_id and order.assignee else "—"
    opening = str(OPENING) % {
        "number": order.number, "product": product, "work": _WORK.get(order.type, ""),
        "date": timezone.localtime(done).strftime("%Y-%m-%d"), "technician": technician,
    }
    return Script(
        opening=opening, check=str(_CHECK.get(order.type, "")), scale=str(SCALE),
        questions=tuple((f, str(label), str(q)) for f, label, q in QUESTIONS),
        resolved=str(RESOLVED), comment=str(COMMENT), closing=str(CLOSING), hint=str(LOW_SCORE_HINT),
    )
