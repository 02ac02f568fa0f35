"""Work orders (工单, R-REQ), their event history (一事一档, R-REQ-5) and the time standards
they are held to (R-SLA): policies per type × priority on a working calendar.

A work order's ``status`` is set in one place only: ``aftersales.tickets.workflow``, whose
table says which moves exist, who may make them and what each needs. Every move appends an
``OrderEvent`` (the order's history) and an audit entry in the same transaction.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class OrderType(models.TextChoices):
    INSTALLATION = "installation", _("安装")
    REPAIR = "repair", _("维修")
    MAINTENANCE = "maintenance", _("保养")
    CONSULTATION = "consultation", _("咨询")
    COMPLAINT = "complaint", _("投诉")
    RETURN_EXCHANGE = "return_exchange", _("退换货")
    DELIVERY = "delivery", _("送货")
    RECYCLING = "recycling", _("旧机回收")


class Channel(models.TextChoices):
    PHONE = "phone", _("电话")
    EMAIL = "email", _("电子邮件")
    WEB = "web", _("网站")
    WALK_IN = "walk_in", _("到店")
    APP = "app", _("手机应用")


class Priority(models.TextChoices):
    LOW = "low", _("低")
    NORMAL = "normal", _("普通")
    HIGH = "high", _("高")
    URGENT = "urgent", _("紧急")


class Status(models.TextChoices):
    RECEIVED = "received", _("已受理")
    CLASSIFIED = "classified", _("待派工")
    DISPATCHED = "dispatched", _("已派工")
    ACCEPTED = "accepted", _("已接单")
    EN_ROUTE = "en_route", _("在途")
    ON_SITE = "on_site", _("已到达")
    DIAGNOSING = "diagnosing", _("检测中")
    WAITING_PARTS = "waiting_parts", _("待配件")
    WAITING_CUSTOMER = "waiting_customer", _("待客户")
    REPAIRING = "repairing", _("维修中")
    COMPLETED = "completed", _("已完工")
    CALLBACK = "callback", _("回访中")
    CLOSED = "closed", _("已关闭")
    CANCELLED = "cancelled", _("已取消")
    REOPENED = "reopened", _("已重开")


class SlaState(models.TextChoices):
    OK = "ok", _("正常")
    AT_RISK = "at_risk", _("临近超时")
    BREACHED = "breached", _("已超时")


class FaultCategory(models.Model):
    """A kind of fault (不制冷, 漏水 …), the unit of the repeat-repair rule. ``keywords`` let
    the intake page suggest it from the customer's words."""

    code = models.CharField(_("编码"), max_length=30, unique=True)
    name = models.CharField(_("名称"), max_length=50)
    name_en = models.CharField(_("英文名称"), max_length=50, blank=True)
    categories = models.ManyToManyField("catalog.Category", blank=True, related_name="fault_categories",
                                        verbose_name=_("适用产品类别"))
    keywords = models.CharField(_("关键词"), max_length=300, blank=True, help_text=_("以逗号分隔"))
    suggests_type = models.CharField(_("建议工单类型"), max_length=20, choices=OrderType.choices, blank=True)

    class Meta:
        verbose_name = _("故障类别")
        verbose_name_plural = _("故障类别")
        ordering = ["code"]

    def __str__(self):
        return self.name


class FaultCode(models.Model):
    """A fault code of a product category (E1 …), chosen by the technician at diagnosis."""

    category = models.ForeignKey("catalog.Category", on_delete=models.CASCADE, related_name="fault_codes",
                                 verbose_name=_("产品类别"))
    fault_category = models.ForeignKey(FaultCategory, on_delete=models.PROTECT, related_name="codes",
                                       verbose_name=_("故障类别"))
    code = models.CharField(_("故障代码"), max_length=20)
    name = models.CharField(_("说明"), max_length=100)
    part_code = models.CharField(_("涉及部件编码"), max_length=30, blank=True,
                                 help_text=_("主要部件编码时按主要部件三包期判定"))

    class Meta:
        verbose_name = _("故障代码")
        verbose_name_plural = _("故障代码")
        ordering = ["category", "code"]
        constraints = [models.UniqueConstraint(fields=["category", "code"], name="fault_code_unique_per_category")]

    def __str__(self):
        return f"{self.code} {self.name}"


class WorkCalendar(models.Model):
    """Working hours and days. A day is a working day unless it is a holiday; a weekend day is
    not, unless it is a make-up working day (调休上班). ``CalendarDay`` holds the exceptions."""

    code = models.CharField(_("编码"), max_length=20, unique=True)
    name = models.CharField(_("名称"), max_length=50)
    day_start = models.TimeField(_("上班时间"))
    day_end = models.TimeField(_("下班时间"))
    weekends_off = models.BooleanField(_("周末休息"), default=True)

    class Meta:
        verbose_name = _("工作日历")
        verbose_name_plural = _("工作日历")
        constraints = [models.CheckConstraint(condition=Q(day_end__gt=models.F("day_start")),
                                              name="calendar_day_end_after_start")]

    def __str__(self):
        return self.name


class DayKind(models.TextChoices):
    HOLIDAY = "holiday", _("法定节假日")
    WORKDAY = "workday", _("调休上班")


class CalendarDay(models.Model):
    calendar = models.ForeignKey(WorkCalendar, on_delete=models.CASCADE, related_name="days",
                                 verbose_name=_("日历"))
    date = models.DateField(_("日期"))
    kind = models.CharField(_("类型"), max_length=10, choices=DayKind.choices)
    name = models.CharField(_("名称"), max_length=30, blank=True)

    class Meta:
        verbose_name = _("节假日与调休")
        verbose_name_plural = _("节假日与调休")
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="calendar_day_unique")]

    def __str__(self):
        return f"{self.date} {self.name}"


class SlaPolicy(models.Model):
    """The time standard of an order type at a priority (blank priority: any). Minutes are
    working minutes of ``calendar``; without a calendar they are clock minutes."""

    type = models.CharField(_("工单类型"), max_length=20, choices=OrderType.choices)
    priority = models.CharField(_("优先级"), max_length=10, choices=Priority.choices, blank=True)
    response_minutes = models.PositiveIntegerField(_("首次响应时限（分钟）"))
    resolve_minutes = models.PositiveIntegerField(_("解决时限（分钟）"))
    at_risk_percent = models.PositiveSmallIntegerField(_("预警（剩余时限百分比）"), default=20)
    calendar = models.ForeignKey(WorkCalendar, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="policies", verbose_name=_("工作日历"))

    class Meta:
        verbose_name = _("时限标准")
        verbose_name_plural = _("时限标准")
        constraints = [
            models.UniqueConstraint(fields=["type", "priority"], name="sla_policy_unique"),
            models.CheckConstraint(condition=Q(at_risk_percent__lte=100), name="sla_at_risk_percent_le_100"),
        ]

    def __str__(self):
        return f"{self.get_type_display()} {self.get_priority_display() or '*'}"


OPEN_STATUSES = frozenset(Status.values) - {Status.CLOSED, Status.CANCELLED}


class WorkOrder(models.Model):
    number = models.CharField(_("工单号"), max_length=20, unique=True)
    type = models.CharField(_("类型"), max_length=20, choices=OrderType.choices)
    channel = models.CharField(_("渠道"), max_length=10, choices=Channel.choices)
    priority = models.CharField(_("优先级"), max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(_("状态"), max_length=20, choices=Status.choices, default=Status.RECEIVED)

    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="orders",
                                 verbose_name=_("客户"), db_index=False)  # (customer, created_at) below
    unit = models.ForeignKey("customers.Unit", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="orders", verbose_name=_("产品"))
    address = models.ForeignKey("customers.Address", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", verbose_name=_("服务地址"))
    problem = models.TextField(_("问题描述"))
    fault_category = models.ForeignKey(FaultCategory, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="orders", verbose_name=_("故障类别"))
    wish_from = models.DateTimeField(_("期望上门开始"), null=True, blank=True)
    wish_to = models.DateTimeField(_("期望上门结束"), null=True, blank=True)
    appointment_from = models.DateTimeField(_("预约开始"), null=True, blank=True)
    appointment_to = models.DateTimeField(_("预约结束"), null=True, blank=True)

    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="orders",
                             verbose_name=_("处理网点"), db_index=False)  # (node, created_at) below
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                              related_name="owned_orders", verbose_name=_("首问负责人"))
    assignee = models.ForeignKey("org.Employee", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="assigned_orders", verbose_name=_("技师"), db_index=False)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="follow_ups", verbose_name=_("关联工单"))

    # the work done (filled by the technician; required to complete)
    fault_code = models.ForeignKey(FaultCode, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("故障代码"))
    diagnosis = models.TextField(_("检测结论"), blank=True)
    actions = models.TextField(_("处理措施"), blank=True)
    result = models.TextField(_("处理结果"), blank=True)
    warranty_kind = models.CharField(_("三包判定"), max_length=20, blank=True)
    warranty_free = models.BooleanField(_("免费"), null=True)
    confirmed_by = models.CharField(_("客户确认方式"), max_length=10, blank=True)  # code | signature
    confirmed_at = models.DateTimeField(_("客户确认时间"), null=True, blank=True)
    confirm_code_hash = models.CharField(max_length=64, blank=True, editable=False)
    confirm_code_expires = models.DateTimeField(null=True, blank=True, editable=False)
    signature = models.FileField(_("客户签名"), upload_to="signatures/", blank=True)
    cancel_reason = models.CharField(_("取消原因"), max_length=200, blank=True)

    created_at = models.DateTimeField(_("受理时间"))
    updated_at = models.DateTimeField(_("更新时间"))
    responded_at = models.DateTimeField(_("首次响应时间"), null=True, blank=True)
    completed_at = models.DateTimeField(_("完工时间"), null=True, blank=True)
    closed_at = models.DateTimeField(_("关闭时间"), null=True, blank=True)

    # SLA: deadlines stored on the order, kept by tickets.sla
    response_due = models.DateTimeField(_("响应截止"), null=True, blank=True)
    resolve_due = models.DateTimeField(_("解决截止"), null=True, blank=True)
    sla_risk_at = models.DateTimeField(_("预警时间"), null=True, blank=True)
    sla_state = models.CharField(_("时限状态"), max_length=10, choices=SlaState.choices, default=SlaState.OK)
    sla_paused_at = models.DateTimeField(_("计时暂停于"), null=True, blank=True)
    response_breached = models.BooleanField(_("响应超时"), default=False)
    resolve_breached = models.BooleanField(_("解决超时"), default=False)
    escalation_level = models.PositiveSmallIntegerField(_("升级级别"), default=0)

    # counters
    reassign_count = models.PositiveSmallIntegerField(_("改派次数"), default=0)
    decline_count = models.PositiveSmallIntegerField(_("拒单次数"), default=0)
    reopen_count = models.PositiveSmallIntegerField(_("重开次数"), default=0)
    visit_count = models.PositiveSmallIntegerField(_("上门次数"), default=0)
    event_count = models.PositiveIntegerField(_("事件数"), default=0)

    class Meta:
        verbose_name = _("工单")
        verbose_name_plural = _("工单")
        indexes = [
            models.Index(fields=["node", "-created_at", "-id"], name="order_node_created_idx"),
            models.Index(fields=["-created_at", "-id"], name="order_created_idx"),
            models.Index(fields=["status", "node"], name="order_status_node_idx"),
            models.Index(fields=["customer", "-created_at"], name="order_customer_idx"),
            models.Index(fields=["assignee", "appointment_from"], name="order_assignee_appt_idx"),
            models.Index(fields=["owner", "status"], name="order_owner_status_idx"),
            models.Index(fields=["sla_state", "node"], name="order_sla_state_idx"),
            models.Index(fields=["type", "node"], name="order_type_node_idx"),
            # the quality indicators: repeat repairs of a unit and fault, the incremental refresh
            models.Index(fields=["unit", "fault_category", "created_at"], name="order_unit_fault_idx"),
            models.Index(fields=["updated_at"], name="order_updated_idx"),
            # the sweep: open orders whose clock runs, by next deadline
            models.Index(fields=["response_due"], name="order_unresponded_due_idx",
                         condition=Q(responded_at__isnull=True)),
            models.Index(fields=["sla_risk_at"], name="order_ok_risk_idx",
                         condition=Q(sla_state="ok", sla_paused_at__isnull=True)),
            models.Index(fields=["resolve_due"], name="order_open_resolve_due_idx",
                         condition=Q(closed_at__isnull=True, completed_at__isnull=True)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(wish_to__isnull=True) | Q(wish_to__gt=models.F("wish_from")),
                                   name="order_wish_window_valid"),
            models.CheckConstraint(
                condition=Q(appointment_to__isnull=True) | Q(appointment_to__gt=models.F("appointment_from")),
                name="order_appointment_valid"),
        ]

    def __str__(self):
        return self.number

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class OrderEvent(models.Model):
    """One step of an order's history: a move of the workflow, an SLA breach, a note, a photo.
    ``seq`` numbers an order's events 1, 2, 3 … without gaps (unique), so a lost or a
    duplicated event is visible."""

    order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="events", verbose_name=_("工单"),
                              db_index=False)  # the unique (order, seq) serves it
    seq = models.PositiveIntegerField(_("序号"))
    at = models.DateTimeField(_("时间"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("操作人"))
    actor_label = models.CharField(_("操作人"), max_length=150)
    action = models.CharField(_("动作"), max_length=30)
    from_status = models.CharField(_("原状态"), max_length=20, blank=True)
    to_status = models.CharField(_("新状态"), max_length=20, blank=True)
    note = models.TextField(_("说明"), blank=True)
    data = models.JSONField(_("数据"), default=dict, blank=True)

    class Meta:
        verbose_name = _("工单事件")
        verbose_name_plural = _("工单事件")
        ordering = ["order", "seq"]
        constraints = [models.UniqueConstraint(fields=["order", "seq"], name="order_event_seq_unique")]
        indexes = [models.Index(fields=["action", "at"], name="order_event_action_at_idx")]

    def __str__(self):
        return f"{self.order_id}#{self.seq} {self.action}"


def photo_path(instance, filename):
    return f"orders/{instance.order_id}/{filename}"


class OrderPhoto(models.Model):
    order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="photos", verbose_name=_("工单"))
    image = models.FileField(_("照片"), upload_to=photo_path)
    caption = models.CharField(_("说明"), max_length=100, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("上传人"))
    uploaded_at = models.DateTimeField(_("上传时间"))

    class Meta:
        verbose_name = _("现场照片")
        verbose_name_plural = _("现场照片")
        ordering = ["order", "id"]

    def __str__(self):
        return self.image.name


class DailySequence(models.Model):
    """The last number given out per day: ``GD`` + date + a six-digit sequence."""

    day = models.DateField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("工单号序列")
        verbose_name_plural = _("工单号序列")

    def __str__(self):
        return f"{self.day} {self.last}"
