"""Dispatch (派工): who goes where, when.

``Booking`` holds a technician's time for an order. A technician is never booked twice for
overlapping times: ``services`` locks the employee row before it checks for an overlap and
books, so two dispatchers racing for the same technician are served one after the other.
A booking is *released* when the order leaves the technician (decline, reassignment,
transfer, cancellation) and marked *done* when the work is completed; a done booking still
counts in the day's load.

``DispatchSetting`` is kept per node and applies to the node's subtree unless a deeper node
has its own (an outlet's row overrides its centre's). ``CertRequirement`` says which jobs
need a valid certificate (R-TRN-2): work on a product category, optionally of one order type.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from aftersales.tickets.models import OrderType

DEFAULT_AUTO_DISPATCH = False
DEFAULT_MAX_JOBS_PER_DAY = 6
DEFAULT_SLOT_MINUTES = 120


class DispatchSetting(models.Model):
    node = models.OneToOneField("org.Node", on_delete=models.CASCADE, related_name="dispatch_setting",
                                verbose_name=_("节点"))
    auto_dispatch = models.BooleanField(_("自动派工"), default=DEFAULT_AUTO_DISPATCH)
    max_jobs_per_day = models.PositiveSmallIntegerField(_("每位技师每日最多工单数"), default=DEFAULT_MAX_JOBS_PER_DAY)
    slot_minutes = models.PositiveSmallIntegerField(_("预约时段长度（分钟）"), default=DEFAULT_SLOT_MINUTES)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("更新人"))

    class Meta:
        verbose_name = _("派工设置")
        verbose_name_plural = _("派工设置")
        constraints = [
            models.CheckConstraint(condition=Q(max_jobs_per_day__gte=1, max_jobs_per_day__lte=50),
                                   name="dispatch_setting_max_jobs_range"),
            models.CheckConstraint(condition=Q(slot_minutes__gte=30, slot_minutes__lte=480),
                                   name="dispatch_setting_slot_range"),
        ]

    def __str__(self):
        return f"{self.node}"


class Booking(models.Model):
    employee = models.ForeignKey("org.Employee", on_delete=models.PROTECT, related_name="bookings",
                                 verbose_name=_("技师"), db_index=False)  # (employee, starts_at) below
    order = models.ForeignKey("tickets.WorkOrder", on_delete=models.CASCADE, related_name="bookings",
                              verbose_name=_("工单"))
    starts_at = models.DateTimeField(_("开始"))
    ends_at = models.DateTimeField(_("结束"))
    active = models.BooleanField(_("有效"), default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("派工人"))
    created_at = models.DateTimeField(_("创建时间"))
    released_at = models.DateTimeField(_("释放时间"), null=True, blank=True)
    release_reason = models.CharField(_("释放原因"), max_length=200, blank=True)
    done_at = models.DateTimeField(_("完工时间"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("提醒时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("技师预约")
        verbose_name_plural = _("技师预约")
        ordering = ["employee", "starts_at"]
        indexes = [
            # the overlap check and the day's load: one technician's bookings by time
            models.Index(fields=["employee", "starts_at"], name="booking_employee_start_idx"),
            # the reminder sweep: active bookings not yet reminded, by start
            models.Index(fields=["starts_at"], name="booking_remind_idx",
                         condition=Q(active=True, reminded_at__isnull=True)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="booking_ends_after_start"),
            models.CheckConstraint(condition=Q(active=True) | Q(released_at__isnull=False),
                                   name="booking_released_has_time"),
        ]

    def __str__(self):
        return f"{self.employee_id} {self.starts_at:%Y-%m-%d %H:%M}"


class CertRequirement(models.Model):
    """Work on ``category`` (of ``order_type``, or of any type when blank) needs a valid
    certificate of ``cert_type`` on the day of the appointment."""

    category = models.ForeignKey("catalog.Category", on_delete=models.CASCADE, related_name="cert_requirements",
                                 verbose_name=_("产品类别"))
    order_type = models.CharField(_("工单类型"), max_length=20, choices=OrderType.choices, blank=True,
                                  help_text=_("留空表示所有类型"))
    cert_type = models.ForeignKey("org.CertificationType", on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("所需证书"))

    class Meta:
        verbose_name = _("持证要求")
        verbose_name_plural = _("持证要求")
        constraints = [
            models.UniqueConstraint(fields=["category", "order_type", "cert_type"], name="cert_requirement_unique"),
        ]

    def __str__(self):
        kind = self.get_order_type_display() if self.order_type else _("所有类型")
        return f"{self.category} · {kind} → {self.cert_type}"
