"""Substitute appliances (备用机, R-WAR-3) and the register of tools and instruments (工具仪器,
R-PART-2).

Loaners. Each outlet keeps a pool of ``Loaner`` appliances. A ``Loan`` lends one to the
customer of an open repair order: when the repair has run longer than the outlet's
``LoanPolicy`` (``after_days``, default 3, inherited down the node tree like the dispatch
settings) or when a manager decides. It is returned with a condition check; a damaged or
incomplete loaner goes to maintenance. The database keeps one open loan per loaner and one
per order (partial unique constraints), whatever the services do. ``Loan.daily_cost`` is the
loaner's daily cost when it was lent, for the order's service cost (a later change of the
loaner's cost does not rewrite it).

Tools and instruments. ``Tool`` is one item of the register: who owns it (``node``), who holds
it (``holder``), and, when it must be calibrated or inspected (``check_kind``), every how many
months and until when the last check is valid (``due_on``: valid through that day, overdue
from the next). ``Calibration`` is the history; a failed check takes the tool out of use. The
sweep (``services.assets_sweep``) tells the holder and the managers once per due date that a
check falls due within 7 days (``reminded_for``) and once that it is overdue
(``overdue_notified_for``).
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

# ==================================================================== loaners

class LoanerState(models.TextChoices):
    AVAILABLE = "available", _("可借")
    LENT = "lent", _("已借出")
    MAINTENANCE = "maintenance", _("维护中")
    RETIRED = "retired", _("已报废")


class Loaner(models.Model):
    """A substitute appliance of an outlet's pool."""

    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="loaners", verbose_name=_("所属网点"),
                             db_index=False)  # (node, state) below
    category = models.ForeignKey("catalog.Category", on_delete=models.PROTECT, related_name="loaners",
                                 verbose_name=_("产品类别"))
    asset_no = models.CharField(_("资产编号"), max_length=30, unique=True)
    model_name = models.CharField(_("型号"), max_length=100)
    serial = models.CharField(_("序列号"), max_length=50, blank=True)
    state = models.CharField(_("状态"), max_length=12, choices=LoanerState.choices, default=LoanerState.AVAILABLE)
    condition_note = models.CharField(_("状况说明"), max_length=200, blank=True)
    daily_cost = models.DecimalField(_("日成本（元）"), max_digits=12, decimal_places=2, default=0,
                                     help_text=_("计入工单服务成本：借用天数 × 日成本"))
    acquired_on = models.DateField(_("购置日期"), null=True, blank=True)
    created_at = models.DateTimeField(_("创建时间"))
    updated_at = models.DateTimeField(_("更新时间"))

    class Meta:
        verbose_name = _("备用机")
        verbose_name_plural = _("备用机")
        ordering = ["asset_no"]
        indexes = [
            models.Index(fields=["node", "state", "category"], name="loaner_node_state_idx"),
            models.Index(fields=["state"], name="loaner_state_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(daily_cost__gte=0), name="loaner_cost_not_negative"),
        ]

    def __str__(self):
        return f"{self.asset_no} {self.model_name}"


class LoanReason(models.TextChoices):
    LONG_REPAIR = "long_repair", _("维修超过规定天数")
    MANAGER = "manager", _("经理决定")


class ReturnCondition(models.TextChoices):
    GOOD = "good", _("完好")
    DAMAGED = "damaged", _("损坏")
    INCOMPLETE = "incomplete", _("配件不全")


class Loan(models.Model):
    """One lending of a loaner to the customer of a work order."""

    loaner = models.ForeignKey(Loaner, on_delete=models.PROTECT, related_name="loans", verbose_name=_("备用机"))
    order = models.ForeignKey("tickets.WorkOrder", on_delete=models.PROTECT, related_name="loans",
                              verbose_name=_("工单"))
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="+", verbose_name=_("网点"),
                             db_index=False)  # (node, due_on) below
    reason = models.CharField(_("借出原因"), max_length=12, choices=LoanReason.choices)
    note = models.CharField(_("借出说明"), max_length=500, blank=True)
    lent_at = models.DateTimeField(_("借出时间"))
    lent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+", verbose_name=_("借出人"))
    due_on = models.DateField(_("应还日期"))
    daily_cost = models.DecimalField(_("日成本（元）"), max_digits=12, decimal_places=2, default=0)
    returned_at = models.DateTimeField(_("归还时间"), null=True, blank=True)
    returned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", verbose_name=_("验收人"))
    return_condition = models.CharField(_("归还状况"), max_length=12, choices=ReturnCondition.choices, blank=True)
    return_note = models.CharField(_("验收说明"), max_length=500, blank=True)
    overdue_notified_for = models.DateField(_("已提醒逾期（应还日期）"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("备用机借用")
        verbose_name_plural = _("备用机借用")
        ordering = ["-lent_at", "-id"]
        indexes = [
            # overdue loans of a node: open loans by due date
            models.Index(fields=["node", "due_on"], name="loan_open_node_due_idx", condition=Q(returned_at__isnull=True)),
            models.Index(fields=["due_on"], name="loan_open_due_idx", condition=Q(returned_at__isnull=True)),
            models.Index(fields=["node", "-lent_at", "-id"], name="loan_node_lent_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["loaner"], condition=Q(returned_at__isnull=True),
                                    name="loan_one_open_per_loaner"),
            models.UniqueConstraint(fields=["order"], condition=Q(returned_at__isnull=True),
                                    name="loan_one_open_per_order"),
            models.CheckConstraint(condition=Q(returned_at__isnull=True, return_condition="")
                                   | Q(returned_at__isnull=False, return_condition__in=ReturnCondition.values),
                                   name="loan_return_has_condition"),
            models.CheckConstraint(condition=Q(returned_at__isnull=True) | Q(returned_at__gte=F("lent_at")),
                                   name="loan_returned_after_lent"),
            models.CheckConstraint(condition=Q(daily_cost__gte=0), name="loan_cost_not_negative"),
        ]

    def __str__(self):
        return f"{self.loaner_id} → {self.order_id}"

    @property
    def is_open(self) -> bool:
        return self.returned_at is None


class LoanPolicy(models.Model):
    """When a repair qualifies for a loaner at a node and below (a deeper node's row wins)."""

    node = models.OneToOneField("org.Node", on_delete=models.CASCADE, related_name="loan_policy",
                                verbose_name=_("节点"))
    after_days = models.PositiveSmallIntegerField(_("维修超过天数可借备用机"))
    updated_at = models.DateTimeField(_("更新时间"))
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("更新人"))

    class Meta:
        verbose_name = _("备用机借用规则")
        verbose_name_plural = _("备用机借用规则")
        constraints = [
            models.CheckConstraint(condition=Q(after_days__gte=1, after_days__lte=60), name="loan_policy_days_range"),
        ]

    def __str__(self):
        return f"{self.node_id}: {self.after_days}"


class CandidateNotice(models.Model):
    """The outlet's managers were told that this order qualifies for a loaner (once per order)."""

    order = models.OneToOneField("tickets.WorkOrder", on_delete=models.CASCADE, related_name="+",
                                 verbose_name=_("工单"))
    notified_at = models.DateTimeField(_("通知时间"))
    run = models.UUIDField(editable=False, db_index=True)  # which sweep inserted it

    class Meta:
        verbose_name = _("可借备用机提醒")
        verbose_name_plural = _("可借备用机提醒")

    def __str__(self):
        return f"{self.order_id} {self.notified_at:%Y-%m-%d}"


# ==================================================================== tools and instruments

class ToolKind(models.TextChoices):
    TOOL = "tool", _("工具")
    INSTRUMENT = "instrument", _("仪器")


class CheckKind(models.TextChoices):
    NONE = "none", _("无需")
    CALIBRATION = "calibration", _("校准")
    INSPECTION = "inspection", _("检验")


class ToolState(models.TextChoices):
    IN_USE = "in_use", _("在用")
    IN_STORE = "in_store", _("在库")
    UNDER_REPAIR = "under_repair", _("停用待修")
    RETIRED = "retired", _("已报废")


class Tool(models.Model):
    code = models.CharField(_("编号"), max_length=30, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    kind = models.CharField(_("类型"), max_length=12, choices=ToolKind.choices, default=ToolKind.INSTRUMENT)
    model_name = models.CharField(_("型号"), max_length=100, blank=True)
    serial = models.CharField(_("出厂编号"), max_length=50, blank=True)
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="tools", verbose_name=_("所属节点"),
                             db_index=False)  # (node, code) below
    holder = models.ForeignKey("org.Employee", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="tools", verbose_name=_("持有人"), db_index=False)  # (holder, due_on)
    check_kind = models.CharField(_("校准/检验"), max_length=12, choices=CheckKind.choices, default=CheckKind.NONE)
    interval_months = models.PositiveSmallIntegerField(_("周期（月）"), null=True, blank=True)
    due_on = models.DateField(_("有效期至"), null=True, blank=True,
                              help_text=_("校准/检验有效至此日（含），次日起为过期"))
    certificate_no = models.CharField(_("证书编号"), max_length=50, blank=True)
    certificate = models.FileField(_("证书文件"), upload_to="tool_certificates/", blank=True)
    state = models.CharField(_("状态"), max_length=12, choices=ToolState.choices, default=ToolState.IN_STORE)
    note = models.CharField(_("备注"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("创建时间"))
    updated_at = models.DateTimeField(_("更新时间"))
    reminded_for = models.DateField(_("已提醒到期（有效期）"), null=True, blank=True, editable=False)
    overdue_notified_for = models.DateField(_("已提醒过期（有效期）"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("工具仪器")
        verbose_name_plural = _("工具仪器")
        ordering = ["code"]
        indexes = [
            models.Index(fields=["node", "code"], name="tool_node_code_idx"),
            models.Index(fields=["holder", "due_on"], name="tool_holder_due_idx"),
            models.Index(fields=["due_on"], name="tool_tracked_due_idx", condition=~Q(check_kind="none")),
            models.Index(fields=["state", "code"], name="tool_state_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(check_kind="none") | Q(interval_months__gte=1, interval_months__lte=120,
                                                   due_on__isnull=False),
                name="tool_tracked_has_interval_and_due"),
            models.CheckConstraint(condition=Q(state="in_use", holder__isnull=False) | ~Q(state="in_use"),
                                   name="tool_in_use_has_holder"),
        ]

    def __str__(self):
        return f"{self.code} {self.name}"

    @property
    def tracked(self) -> bool:
        return self.check_kind != CheckKind.NONE

    def is_overdue(self, today) -> bool:
        return self.tracked and self.due_on is not None and self.due_on < today


class CalibrationResult(models.TextChoices):
    PASS = "pass", _("合格")
    FAIL = "fail", _("不合格")


class Calibration(models.Model):
    """One calibration or inspection of a tool (appended only)."""

    tool = models.ForeignKey(Tool, on_delete=models.PROTECT, related_name="calibrations", verbose_name=_("工具仪器"),
                             db_index=False)  # (tool, done_on) below
    done_on = models.DateField(_("校准/检验日期"))
    result = models.CharField(_("结论"), max_length=4, choices=CalibrationResult.choices)
    certificate_no = models.CharField(_("证书编号"), max_length=50, blank=True)
    certificate = models.FileField(_("证书文件"), upload_to="tool_certificates/", blank=True)
    agency = models.CharField(_("校准/检验机构"), max_length=100, blank=True)
    next_due = models.DateField(_("下次到期"), null=True, blank=True)
    note = models.CharField(_("备注"), max_length=200, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", verbose_name=_("记录人"))
    recorded_at = models.DateTimeField(_("记录时间"))

    class Meta:
        verbose_name = _("校准/检验记录")
        verbose_name_plural = _("校准/检验记录")
        ordering = ["tool", "-done_on", "-id"]
        indexes = [models.Index(fields=["tool", "-done_on", "-id"], name="calibration_tool_done_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(result="fail") | Q(next_due__isnull=False, next_due__gt=F("done_on")),
                                   name="calibration_pass_has_next_due"),
        ]

    def __str__(self):
        return f"{self.tool_id} {self.done_on} {self.result}"
