"""Call-backs and satisfaction surveys (回访与满意度, R-FB-1) and the complaint follow-up a
low score opens (R-FB-3).

When an order is completed, ``services.callback_open`` creates one ``CallbackTask`` for the
agents (a phone call with a script) and one ``Survey`` link the customer may open without
logging in. Whichever answers first closes the round: the answer is a ``Survey`` row (channel
``link`` or ``phone``), and its outcome closes the order, reopens it (not resolved) and/or
opens a complaint work order (any score ≤ 2) whose ``parent`` is the order.

An order may be completed more than once (reopened, handled again): each completion is a
new *round* with its own task and link; ``round`` is the order's ``reopen_count`` + 1.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

SCORE_FIELDS = ("timeliness", "attitude", "professionalism", "result")


class TaskStatus(models.TextChoices):
    OPEN = "open", _("待回访")
    DONE = "done", _("已回访")
    UNREACHABLE = "unreachable", _("无法联系")
    CANCELLED = "cancelled", _("已取消")


class CallbackTask(models.Model):
    """One call-back round of an order: the agents' to-do item."""

    order = models.ForeignKey("tickets.WorkOrder", on_delete=models.CASCADE, related_name="callback_tasks",
                              verbose_name=_("工单"), db_index=False)  # the unique (order, round) serves it
    round = models.PositiveSmallIntegerField(_("回访轮次"), default=1)
    assigned_to = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="callback_tasks", verbose_name=_("回访人"),
                                    help_text=_("工单的首问负责人；为空时由网点客服回访"))
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="+", verbose_name=_("网点"),
                             db_index=False)
    status = models.CharField(_("状态"), max_length=12, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    due_at = models.DateTimeField(_("回访截止"))
    attempts = models.PositiveSmallIntegerField(_("未接通次数"), default=0)
    last_attempt_at = models.DateTimeField(_("最近拨打"), null=True, blank=True)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    done_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+", verbose_name=_("完成人"))

    class Meta:
        verbose_name = _("回访任务")
        verbose_name_plural = _("回访任务")
        constraints = [
            models.UniqueConstraint(fields=["order", "round"], name="callback_task_one_per_round"),
            models.CheckConstraint(condition=Q(round__gte=1), name="callback_task_round_positive"),
        ]
        indexes = [
            # the agents' lists: open tasks by deadline, per node and per person
            models.Index(fields=["node", "status", "due_at", "id"], name="callback_node_status_due_idx"),
            models.Index(fields=["assigned_to", "status", "due_at"], name="callback_assignee_status_idx"),
            models.Index(fields=["status", "due_at", "id"], name="callback_status_due_idx"),
        ]

    def __str__(self):
        return f"{self.order_id}#{self.round} {self.status}"

    @property
    def is_open(self) -> bool:
        return self.status == TaskStatus.OPEN


class SurveyChannel(models.TextChoices):
    LINK = "link", _("短信链接")
    PHONE = "phone", _("电话回访")


class SurveyState(models.TextChoices):
    PENDING = "pending", _("待评价")
    ANSWERED = "answered", _("已评价")
    EXPIRED = "expired", _("已过期")
    CLOSED = "closed", _("已失效")


def _score_ok(name: str) -> Q:
    return Q(**{f"{name}__isnull": True}) | Q(**{f"{name}__gte": 1, f"{name}__lte": 5})


class Survey(models.Model):
    """A satisfaction survey of one round: a single-use link sent to the customer (only the
    SHA-256 of its token is kept), or the answers an agent took on the phone."""

    order = models.ForeignKey("tickets.WorkOrder", on_delete=models.CASCADE, related_name="surveys",
                              verbose_name=_("工单"))
    task = models.ForeignKey(CallbackTask, on_delete=models.CASCADE, related_name="surveys",
                             verbose_name=_("回访任务"))
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="+", verbose_name=_("网点"),
                             db_index=False)  # (node, answered_at) below
    channel = models.CharField(_("方式"), max_length=10, choices=SurveyChannel.choices)
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    expires_at = models.DateTimeField(_("有效期至"), null=True, blank=True)
    closed_at = models.DateTimeField(_("失效时间"), null=True, blank=True,
                                     help_text=_("未评价即失效（已电话回访）"))
    answered_at = models.DateTimeField(_("评价时间"), null=True, blank=True)
    timeliness = models.PositiveSmallIntegerField(_("及时性"), null=True, blank=True)
    attitude = models.PositiveSmallIntegerField(_("服务态度"), null=True, blank=True)
    professionalism = models.PositiveSmallIntegerField(_("专业水平"), null=True, blank=True)
    result = models.PositiveSmallIntegerField(_("处理结果"), null=True, blank=True)
    overall = models.PositiveSmallIntegerField(_("总体评价"), null=True, blank=True)
    resolved = models.BooleanField(_("问题已解决"), null=True, blank=True)
    comment = models.CharField(_("意见"), max_length=500, blank=True)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", verbose_name=_("记录人"), help_text=_("电话回访的客服"))
    complaint = models.ForeignKey("tickets.WorkOrder", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", verbose_name=_("投诉跟进单"))

    class Meta:
        verbose_name = _("满意度评价")
        verbose_name_plural = _("满意度评价")
        constraints = [
            *[models.CheckConstraint(condition=_score_ok(f), name=f"survey_{f}_1_to_5")
              for f in (*SCORE_FIELDS, "overall")],
            models.CheckConstraint(
                condition=Q(answered_at__isnull=True) | Q(
                    timeliness__isnull=False, attitude__isnull=False, professionalism__isnull=False,
                    result__isnull=False, overall__isnull=False, resolved__isnull=False),
                name="survey_answer_complete"),
            models.CheckConstraint(condition=~Q(channel="link") | Q(token_hash__isnull=False, expires_at__isnull=False),
                                   name="survey_link_has_token"),
        ]
        indexes = [
            models.Index(fields=["answered_at"], name="survey_answered_idx",
                         condition=Q(answered_at__isnull=False)),
            models.Index(fields=["node", "answered_at"], name="survey_node_answered_idx",
                         condition=Q(answered_at__isnull=False)),
        ]

    def __str__(self):
        return f"{self.order_id} {self.channel} {self.state}"

    def state_at(self, now) -> str:
        if self.answered_at is not None:
            return SurveyState.ANSWERED
        if self.closed_at is not None:
            return SurveyState.CLOSED
        if self.expires_at is not None and self.expires_at <= now:
            return SurveyState.EXPIRED
        return SurveyState.PENDING

    @property
    def state(self) -> str:
        return self.state_at(timezone.now())

    def get_state_display(self) -> str:
        return str(SurveyState(self.state).label)

    @property
    def low(self) -> bool:
        """Any score of 2 or less: the answer opens a complaint follow-up."""
        return any(v is not None and v <= 2 for v in (*self.scores().values(), self.overall))

    def scores(self) -> dict:
        return {f: getattr(self, f) for f in SCORE_FIELDS}
