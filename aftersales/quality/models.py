"""Service quality (R-Q-1..4, R-FB-2): the facts and pre-aggregates the indicators are computed
from, targets, sales, the service-norm checklist, improvement actions and periodic reports.

- ``OrderFact``: one row per work order with its indicator measures (``indicators.MEASURES``),
  derived in SQL from the orders, their events, surveys, service cost and checklist
  (``facts.py``) and refreshed incrementally for the orders that changed.
- ``Aggregate``: the sums of those measures per grain (day / month) × period × node × breakdown
  (``dim`` / ``key``); the dashboards read these.
- ``Target``: an indicator's target for a node (inherited down the tree).
- ``NodeSales`` / ``ModelSales``: sales per node and month (for cost ÷ sales) and units sold per
  model and month (for repairs per 1,000 units), entered or imported.
- ``NormItem`` / ``NormCheck``: the service-norm checklist answered when a job is completed.
- ``Action``: an improvement action (R-Q-2) with its root cause (5-why, fault tree), owner, due
  date, status and the indicator it targets (before / after).
- ``Report``: a monthly, quarterly or annual quality report (PDF + Excel), built by the worker.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .indicators import COUNTS, MAXES, MINS

MONEY = {"max_digits": 14, "decimal_places": 2}


class OrderFact(models.Model):
    """The indicator measures of one work order (all 0/1 flags or minutes; see indicators.COUNTS)."""

    order = models.OneToOneField("tickets.WorkOrder", on_delete=models.CASCADE, primary_key=True,
                                 related_name="fact", verbose_name=_("工单"))
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="+", db_index=False)
    assignee_id = models.BigIntegerField(null=True, blank=True)      # org.Employee
    category_id = models.BigIntegerField(null=True, blank=True)      # catalog.Category of the unit's model
    model_id = models.BigIntegerField(null=True, blank=True)         # catalog.ProductModel
    fault_id = models.BigIntegerField(null=True, blank=True)         # tickets.FaultCategory
    channel = models.CharField(max_length=10)
    type = models.CharField(max_length=20)
    created_at = models.DateTimeField()
    day = models.DateField()                                         # local day received
    slot = models.PositiveSmallIntegerField()                        # ISO weekday × 100 + local hour received
    for _name in COUNTS:
        locals()[_name] = models.IntegerField(default=0)
    for _name in MINS + MAXES:
        locals()[_name] = models.PositiveSmallIntegerField(null=True, blank=True)
    del _name
    cost = models.DecimalField(**MONEY, default=0)
    refreshed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("工单指标事实")
        verbose_name_plural = _("工单指标事实")
        indexes = [
            models.Index(fields=["node", "day"], name="fact_node_day_idx"),
            models.Index(fields=["day"], name="fact_day_idx"),
            models.Index(fields=["assignee_id", "day"], name="fact_assignee_day_idx"),
        ]

    def __str__(self):
        return f"fact {self.order_id}"


class Grain(models.TextChoices):
    DAY = "day", _("日")
    MONTH = "month", _("月")


class Aggregate(models.Model):
    """Measures summed over the orders of one cell: grain × period start × node × breakdown.
    ``dim`` "" is the whole node; otherwise ``key`` is the breakdown's value (an id or a code)."""

    grain = models.CharField(max_length=5, choices=Grain.choices)
    period = models.DateField()
    node = models.ForeignKey("org.Node", on_delete=models.CASCADE, related_name="+", db_index=False)
    dim = models.CharField(max_length=10, blank=True, default="")
    key = models.CharField(max_length=30, blank=True, default="")
    for _name in COUNTS:
        locals()[_name] = models.BigIntegerField(default=0)
    for _name in MINS + MAXES:
        locals()[_name] = models.PositiveSmallIntegerField(null=True, blank=True)
    del _name
    cost = models.DecimalField(**MONEY, default=0)

    class Meta:
        verbose_name = _("指标预汇总")
        verbose_name_plural = _("指标预汇总")
        constraints = [models.UniqueConstraint(fields=["grain", "dim", "period", "node", "key"],
                                               name="aggregate_cell_unique")]

    def __str__(self):
        return f"{self.grain} {self.period} {self.node_id} {self.dim}={self.key}"


class RefreshState(models.Model):
    """Where the incremental refresh of the facts got to."""

    name = models.CharField(max_length=30, primary_key=True)
    watermark = models.DateTimeField(null=True, blank=True)
    last_run = models.DateTimeField(null=True, blank=True)
    last_orders = models.PositiveIntegerField(default=0)
    last_cells = models.PositiveIntegerField(default=0)
    last_ms = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("指标刷新状态")
        verbose_name_plural = _("指标刷新状态")

    def __str__(self):
        return f"{self.name} {self.watermark}"


class Target(models.Model):
    """An indicator's target for a node and its subtree (the nearest ancestor's applies), with
    the margin that still counts as amber."""

    indicator = models.CharField(_("指标"), max_length=40)
    node = models.ForeignKey("org.Node", on_delete=models.CASCADE, related_name="+", verbose_name=_("节点"))
    target = models.DecimalField(_("目标值"), max_digits=12, decimal_places=2)
    amber = models.DecimalField(_("黄灯容差"), max_digits=12, decimal_places=2, default=0)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("设置人"))
    updated_at = models.DateTimeField(_("设置时间"), default=timezone.now)

    class Meta:
        verbose_name = _("指标目标")
        verbose_name_plural = _("指标目标")
        constraints = [
            models.UniqueConstraint(fields=["indicator", "node"], name="target_unique_per_node"),
            models.CheckConstraint(condition=Q(amber__gte=0), name="target_amber_not_negative"),
        ]

    def __str__(self):
        return f"{self.indicator}@{self.node_id}={self.target}"


class NodeSales(models.Model):
    """Sales of a node in a month (yuan): the denominator of service cost ÷ sales."""

    node = models.ForeignKey("org.Node", on_delete=models.CASCADE, related_name="+", verbose_name=_("节点"))
    month = models.DateField(_("月份"))  # the first day of the month
    amount = models.DecimalField(_("销售额（元）"), **MONEY)
    updated_at = models.DateTimeField(_("更新时间"), default=timezone.now)

    class Meta:
        verbose_name = _("销售额")
        verbose_name_plural = _("销售额")
        constraints = [
            models.UniqueConstraint(fields=["node", "month"], name="node_sales_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="node_sales_not_negative"),
        ]
        indexes = [models.Index(fields=["month"], name="node_sales_month_idx")]

    def __str__(self):
        return f"{self.node_id} {self.month} {self.amount}"


class ModelSales(models.Model):
    """Units of a product model sold in a month: the base of repairs per 1,000 units."""

    model = models.ForeignKey("catalog.ProductModel", on_delete=models.CASCADE, related_name="+",
                              verbose_name=_("型号"))
    month = models.DateField(_("月份"))
    units = models.PositiveIntegerField(_("销售台数"))
    updated_at = models.DateTimeField(_("更新时间"), default=timezone.now)

    class Meta:
        verbose_name = _("型号销量")
        verbose_name_plural = _("型号销量")
        constraints = [models.UniqueConstraint(fields=["model", "month"], name="model_sales_unique")]
        indexes = [models.Index(fields=["month"], name="model_sales_month_idx")]

    def __str__(self):
        return f"{self.model_id} {self.month} {self.units}"


class NormItem(models.Model):
    """One item of the service-norm checklist (服务规范) the technician answers at completion."""

    code = models.CharField(_("编码"), max_length=30, unique=True)
    text = models.CharField(_("检查项"), max_length=200)
    text_en = models.CharField(_("英文"), max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(_("顺序"), default=0)
    active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("服务规范检查项")
        verbose_name_plural = _("服务规范检查项")
        ordering = ["position", "id"]

    def __str__(self):
        return self.text


class NormCheck(models.Model):
    """The checklist as answered for one order: ``answers`` maps item code → met (bool)."""

    order = models.OneToOneField("tickets.WorkOrder", on_delete=models.CASCADE, related_name="norm_check",
                                 verbose_name=_("工单"))
    answers = models.JSONField(_("逐项结果"), default=dict)
    items = models.PositiveSmallIntegerField(_("检查项数"))
    met = models.PositiveSmallIntegerField(_("达标项数"))
    note = models.CharField(_("说明"), max_length=300, blank=True)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("填写人"))
    answered_at = models.DateTimeField(_("填写时间"))

    class Meta:
        verbose_name = _("服务规范检查")
        verbose_name_plural = _("服务规范检查")
        constraints = [models.CheckConstraint(condition=Q(met__lte=models.F("items")), name="norm_check_met_le_items")]
        indexes = [models.Index(fields=["answered_at"], name="norm_check_answered_idx")]

    def __str__(self):
        return f"{self.order_id} {self.met}/{self.items}"

    @property
    def ok(self) -> bool:
        return self.items > 0 and self.met == self.items


class ActionSource(models.TextChoices):
    FIGURE = "figure", _("指标")
    COMPLAINT = "complaint", _("投诉")
    SURVEY = "survey", _("满意度分析")
    OTHER = "other", _("其他")


class ActionStatus(models.TextChoices):
    OPEN = "open", _("待处理")
    IN_PROGRESS = "in_progress", _("进行中")
    DONE = "done", _("已完成")
    VERIFIED = "verified", _("已验证关闭")
    CANCELLED = "cancelled", _("已取消")


class Action(models.Model):
    """An improvement action (改进措施, R-Q-2): raised from a figure, a complaint or a survey
    analysis; its root cause (``whys``: up to five "why?" answers; ``fault_tree``: a list of
    ``{"id", "parent", "text"}`` events under the top event), the measure, owner and due date; its
    effect is the targeted indicator over the months before it was raised and after it was done."""

    number = models.CharField(_("编号"), max_length=20, unique=True)
    title = models.CharField(_("标题"), max_length=200)
    source = models.CharField(_("来源"), max_length=10, choices=ActionSource.choices)
    indicator = models.CharField(_("目标指标"), max_length=40, blank=True)
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="+", verbose_name=_("节点"))
    dim = models.CharField(_("维度"), max_length=10, blank=True)
    key = models.CharField(_("维度值"), max_length=30, blank=True)
    period_from = models.DateField(_("问题期间起"), null=True, blank=True)
    period_to = models.DateField(_("问题期间止"), null=True, blank=True)
    complaint = models.ForeignKey("tickets.WorkOrder", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", verbose_name=_("投诉工单"))
    problem = models.TextField(_("问题描述"))
    whys = models.JSONField(_("五问法"), default=list, blank=True)
    fault_tree = models.JSONField(_("故障树"), default=list, blank=True)
    root_cause = models.TextField(_("根本原因"), blank=True)
    plan = models.TextField(_("改进措施"), blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="quality_actions",
                              verbose_name=_("负责人"))
    due_on = models.DateField(_("完成期限"))
    status = models.CharField(_("状态"), max_length=12, choices=ActionStatus.choices, default=ActionStatus.OPEN)
    baseline = models.DecimalField(_("改进前指标值"), max_digits=12, decimal_places=2, null=True, blank=True)
    result_note = models.TextField(_("效果说明"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("发起人"))
    created_at = models.DateTimeField(_("发起时间"))
    updated_at = models.DateTimeField(_("更新时间"))
    done_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    verified_at = models.DateTimeField(_("验证时间"), null=True, blank=True)
    overdue_notified_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("改进措施")
        verbose_name_plural = _("改进措施")
        indexes = [
            models.Index(fields=["node", "status", "due_on"], name="action_node_status_due_idx"),
            models.Index(fields=["owner", "status", "due_on"], name="action_owner_status_due_idx"),
            models.Index(fields=["status", "due_on"], name="action_status_due_idx"),
        ]

    def __str__(self):
        return f"{self.number} {self.title}"


class ActionSequence(models.Model):
    """The last action number given out per day: ``GJ`` + date + a four-digit sequence."""

    day = models.DateField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("改进措施编号序列")
        verbose_name_plural = _("改进措施编号序列")

    def __str__(self):
        return f"{self.day} {self.last}"


class ActionNote(models.Model):
    """Follow-up of an action: progress notes and status changes, in order."""

    action = models.ForeignKey(Action, on_delete=models.CASCADE, related_name="notes", verbose_name=_("改进措施"))
    at = models.DateTimeField(_("时间"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                               verbose_name=_("记录人"))
    status = models.CharField(_("状态"), max_length=12, choices=ActionStatus.choices, blank=True)
    text = models.TextField(_("内容"))

    class Meta:
        verbose_name = _("跟进记录")
        verbose_name_plural = _("跟进记录")
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.action_id} {self.at}"


class ReportKind(models.TextChoices):
    MONTHLY = "monthly", _("月报")
    QUARTERLY = "quarterly", _("季报")
    ANNUAL = "annual", _("年报")


class ReportStatus(models.TextChoices):
    QUEUED = "queued", _("排队中")
    RUNNING = "running", _("生成中")
    DONE = "done", _("已完成")
    FAILED = "failed", _("失败")


class Report(models.Model):
    """A service-quality report of one period for one node (and its subtree): PDF and Excel."""

    kind = models.CharField(_("类型"), max_length=10, choices=ReportKind.choices)
    period_start = models.DateField(_("期间起"))
    period_end = models.DateField(_("期间止"))  # inclusive
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="+", verbose_name=_("节点"))
    status = models.CharField(_("状态"), max_length=10, choices=ReportStatus.choices, default=ReportStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(_("进度（%）"), default=0)
    pdf = models.FileField(_("PDF"), upload_to="reports/", blank=True)
    xlsx = models.FileField(_("Excel"), upload_to="reports/", blank=True)
    scheduled = models.BooleanField(_("定时生成"), default=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", verbose_name=_("申请人"))
    created_at = models.DateTimeField(_("申请时间"), default=timezone.now)
    built_at = models.DateTimeField(_("生成时间"), null=True, blank=True)
    error = models.CharField(_("错误"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("质量报告")
        verbose_name_plural = _("质量报告")
        indexes = [models.Index(fields=["node", "-period_start"], name="report_node_period_idx"),
                   models.Index(fields=["status", "created_at"], name="report_status_idx")]
        constraints = [models.CheckConstraint(condition=Q(period_end__gte=models.F("period_start")),
                                              name="report_period_order")]

    def __str__(self):
        return f"{self.kind} {self.period_start} {self.node_id}"
