"""The customer file (R-REC-4): customers, addresses, tags, the units they own, and the
repair facts the warranty decision needs."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Tag(models.Model):
    name = models.CharField(_("名称"), max_length=30, unique=True)

    class Meta:
        verbose_name = _("客户标签")
        verbose_name_plural = _("客户标签")

    def __str__(self):
        return self.name


class Customer(models.Model):
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="customers",
                             verbose_name=_("服务网点"), db_index=False)  # (node, id) below serves it
    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="customer", verbose_name=_("登录账号"))
    name = models.CharField(_("姓名"), max_length=50)
    phone = models.CharField(_("手机号"), max_length=11, unique=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="customers", verbose_name=_("标签"))
    notes = models.TextField(_("备注"), blank=True)
    created_at = models.DateTimeField(_("建档时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("客户")
        verbose_name_plural = _("客户")
        indexes = [models.Index(fields=["node", "id"], name="customer_node_id_idx")]
        # The name-prefix search index is created by migration 0002 per database: on PostgreSQL
        # (name COLLATE "C", id), which serves both LIKE 'prefix%' and ORDER BY name, id.

    def __str__(self):
        return self.name


class Address(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="addresses",
                                 verbose_name=_("客户"))
    label = models.CharField(_("标签"), max_length=20, blank=True)  # 家 / 公司 …
    province = models.CharField(_("省"), max_length=30)
    city = models.CharField(_("市"), max_length=30)
    district = models.CharField(_("区县"), max_length=30)
    street = models.CharField(_("详细地址"), max_length=200)
    lat = models.DecimalField(_("纬度"), max_digits=9, decimal_places=6, null=True, blank=True)
    lng = models.DecimalField(_("经度"), max_digits=9, decimal_places=6, null=True, blank=True)
    is_default = models.BooleanField(_("默认地址"), default=False)

    class Meta:
        verbose_name = _("地址")
        verbose_name_plural = _("地址")
        constraints = [
            models.UniqueConstraint(fields=["customer"], condition=Q(is_default=True),
                                    name="one_default_address_per_customer"),
        ]

    def __str__(self):
        return f"{self.province}{self.city}{self.district}{self.street}"


class SalesChannel(models.TextChoices):
    STORE = "store", _("门店")
    ONLINE = "online", _("电商")
    DEALER = "dealer", _("经销商")
    PROJECT = "project", _("工程渠道")


class Unit(models.Model):
    """A registered appliance (机器) owned by a customer."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="units", verbose_name=_("客户"))
    model = models.ForeignKey("catalog.ProductModel", on_delete=models.PROTECT, related_name="units",
                              verbose_name=_("型号"))
    serial = models.CharField(_("序列号"), max_length=40, unique=True)
    purchase_date = models.DateField(_("购买日期"))
    sales_channel = models.CharField(_("销售渠道"), max_length=10, choices=SalesChannel.choices,
                                     default=SalesChannel.STORE)
    invoice_no = models.CharField(_("发票号"), max_length=40, blank=True)
    address = models.ForeignKey(Address, null=True, blank=True, on_delete=models.SET_NULL, related_name="units",
                                verbose_name=_("安装地址"))
    # The date of the last exchange: the 三包 period starts again from it.
    exchanged_on = models.DateField(_("最近换货日期"), null=True, blank=True)
    created_at = models.DateTimeField(_("登记时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("产品（机器）")
        verbose_name_plural = _("产品（机器）")
        indexes = [models.Index(fields=["customer", "id"], name="unit_customer_idx")]

    def __str__(self):
        return self.serial


class UnitRepair(models.Model):
    """A repair of a unit, as far as the warranty needs it: when it ran (the time is added to
    the 三包 period), which fault it addressed (repeat repairs of one fault lead to exchange)
    and whether it was a 三包 repair. Written by the work-order flow when a repair finishes."""

    unit = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="repairs", verbose_name=_("产品"))
    started_on = models.DateField(_("送修日期"))
    finished_on = models.DateField(_("修复日期"), null=True, blank=True)
    fault_key = models.CharField(_("故障"), max_length=40, help_text=_("故障类别或部件编码"))
    in_warranty = models.BooleanField(_("三包内维修"), default=True)
    source = models.CharField(_("来源"), max_length=40, blank=True)  # e.g. a work-order number

    class Meta:
        verbose_name = _("维修记录")
        verbose_name_plural = _("维修记录")
        ordering = ["started_on", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(finished_on__isnull=True) | Q(finished_on__gte=models.F("started_on")),
                                   name="repair_finish_after_start"),
        ]

    def __str__(self):
        return f"{self.unit_id} {self.fault_key} {self.started_on}"
