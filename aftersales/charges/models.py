"""Charges (R-WAR-2): the price list with effective dates, quotes the customer approves before
chargeable work, payments, refunds and receipts, and each order's service cost.

The price list. A ``PriceItem`` prices one *thing* — a part, a labour code (optionally for one
product category), or the visit fee (optionally per category) — from ``valid_from`` to
``valid_to`` (both days included; ``valid_to`` empty: until further notice). ``key`` names the
thing (``part:<id>``, ``labour:<code>:<category id or *>``, ``visit:<category id or *>``); the
items of one key never overlap in time (``services.price_set`` checks it under a lock). A price
changes by closing the item in effect and adding a new one from a date: an item is never
re-priced once a quote used it, and a quote keeps the prices it copied on its date anyway.
A part without a price of its own is sold at its cost × ``PART_PRICE_MARKUP`` (see
``services.part_price``).

Quotes. A ``Quote`` of an order copies its lines (the parts the technician asked for, labour,
the visit fee, other charges) with the unit price in effect on the quote's date and the 三包
decision of each line (free or chargeable). The customer approves or rejects it through a
single-use link (only the SHA-256 of its token is kept) or signs on the technician's phone. A
new quote supersedes the open one. A chargeable order cannot enter the repair without an
approved quote that still covers its chargeable parts (``receivers``).

Money: yuan, ``Decimal`` with two places. Payments carry a receipt number (``SJ`` + date + a
six-digit daily sequence); refunds never exceed what was paid (``Payment.refunded``, kept under
the payment's row lock and checked by the database).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

MONEY = {"max_digits": 12, "decimal_places": 2}


class PriceKind(models.TextChoices):
    PART = "part", _("配件")
    LABOUR = "labour", _("工时")
    VISIT = "visit", _("上门费")


class PriceItem(models.Model):
    kind = models.CharField(_("类型"), max_length=10, choices=PriceKind.choices)
    key = models.CharField(_("计价对象"), max_length=80, editable=False,
                           help_text=_("part:<配件>、labour:<工时编码>:<类别>、visit:<类别>"))
    part = models.ForeignKey("parts.Part", null=True, blank=True, on_delete=models.PROTECT, related_name="prices",
                             verbose_name=_("配件"))
    code = models.CharField(_("工时编码"), max_length=30, blank=True)
    name = models.CharField(_("名称"), max_length=100, blank=True)
    category = models.ForeignKey("catalog.Category", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+", verbose_name=_("产品类别"), help_text=_("为空表示适用于所有类别"))
    price = models.DecimalField(_("价格（元）"), **MONEY)
    cost_rate = models.DecimalField(_("内部成本（元）"), null=True, blank=True, **MONEY,
                                    help_text=_("工时的内部成本单价，用于计算服务成本"))
    valid_from = models.DateField(_("生效日期"))
    valid_to = models.DateField(_("截止日期"), null=True, blank=True, help_text=_("含当日；为空表示长期有效"))
    note = models.CharField(_("说明"), max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("设置人"))
    created_at = models.DateTimeField(_("设置时间"), default=timezone.now)

    class Meta:
        verbose_name = _("价格")
        verbose_name_plural = _("价格表")
        indexes = [models.Index(fields=["key", "valid_from"], name="price_item_key_from_idx"),
                   models.Index(fields=["kind", "valid_from"], name="price_item_kind_from_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="price_item_price_not_negative"),
            models.CheckConstraint(condition=Q(cost_rate__isnull=True) | Q(cost_rate__gte=0),
                                   name="price_item_cost_not_negative"),
            models.CheckConstraint(condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                                   name="price_item_period_valid"),
            models.CheckConstraint(
                condition=(Q(kind="part", part__isnull=False, category__isnull=True)
                           | Q(kind="labour", part__isnull=True) & ~Q(code="")
                           | Q(kind="visit", part__isnull=True)),
                name="price_item_kind_fields"),
        ]

    def __str__(self):
        return f"{self.label} {self.price}"

    @property
    def label(self) -> str:
        if self.kind == PriceKind.PART and self.part_id:
            return self.part.display_name
        if self.kind == PriceKind.VISIT:
            return self.name or str(PriceKind.VISIT.label)
        return self.name or self.code

    def in_effect(self, on) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)


class QuoteStatus(models.TextChoices):
    DRAFT = "draft", _("草稿")
    SENT = "sent", _("待客户确认")
    APPROVED = "approved", _("客户已确认")
    REJECTED = "rejected", _("客户已拒绝")
    SUPERSEDED = "superseded", _("已作废（被新报价取代）")


OPEN_QUOTE = (QuoteStatus.DRAFT, QuoteStatus.SENT, QuoteStatus.APPROVED)


class ApprovedVia(models.TextChoices):
    LINK = "link", _("短信链接")
    SIGNATURE = "signature", _("现场签名")


class Quote(models.Model):
    order = models.ForeignKey("tickets.WorkOrder", on_delete=models.PROTECT, related_name="quotes",
                              verbose_name=_("工单"), db_index=False)  # (order, seq) below
    seq = models.PositiveSmallIntegerField(_("序号"))
    number = models.CharField(_("报价单号"), max_length=30, unique=True)
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="+", verbose_name=_("网点"),
                             db_index=False)
    status = models.CharField(_("状态"), max_length=12, choices=QuoteStatus.choices, default=QuoteStatus.DRAFT)
    priced_on = models.DateField(_("计价日期"))
    warranty_kind = models.CharField(_("三包判定"), max_length=20, blank=True)
    warranty_free = models.BooleanField(_("三包免费"), null=True)
    total = models.DecimalField(_("合计（元）"), **MONEY, default=0)
    chargeable = models.DecimalField(_("应收（元）"), **MONEY, default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("报价人"))
    created_at = models.DateTimeField(_("报价时间"))
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(_("链接有效期至"), null=True, blank=True)
    decided_at = models.DateTimeField(_("客户答复时间"), null=True, blank=True)
    approved_via = models.CharField(_("确认方式"), max_length=10, choices=ApprovedVia.choices, blank=True)
    signature = models.FileField(_("客户签名"), upload_to="quotes/", blank=True)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+", verbose_name=_("签名见证人"))
    reject_reason = models.CharField(_("拒绝原因"), max_length=200, blank=True)
    superseded_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                      verbose_name=_("取代它的报价"))

    class Meta:
        verbose_name = _("报价单")
        verbose_name_plural = _("报价单")
        constraints = [
            models.UniqueConstraint(fields=["order", "seq"], name="quote_order_seq_unique"),
            models.CheckConstraint(condition=Q(total__gte=0) & Q(chargeable__gte=0)
                                   & Q(chargeable__lte=models.F("total")), name="quote_totals_valid"),
            models.CheckConstraint(condition=~Q(status="approved") | Q(decided_at__isnull=False) & ~Q(approved_via=""),
                                   name="quote_approval_recorded"),
        ]
        indexes = [models.Index(fields=["node", "-created_at"], name="quote_node_created_idx"),
                   models.Index(fields=["status", "node"], name="quote_status_node_idx")]

    def __str__(self):
        return self.number

    def link_state(self, now=None) -> str:
        """What the customer's link finds: ``open`` or why it is closed."""
        now = now or timezone.now()
        if self.status in (QuoteStatus.APPROVED, QuoteStatus.REJECTED, QuoteStatus.SUPERSEDED):
            return self.status
        if self.status != QuoteStatus.SENT or self.expires_at is None:
            return "unsent"
        if self.expires_at <= now:
            return "expired"
        return "open"


class LineKind(models.TextChoices):
    PART = "part", _("配件")
    LABOUR = "labour", _("工时")
    VISIT = "visit", _("上门费")
    OTHER = "other", _("其他费用")


class QuoteLine(models.Model):
    quote = models.ForeignKey(Quote, on_delete=models.CASCADE, related_name="lines", verbose_name=_("报价单"))
    position = models.PositiveSmallIntegerField(_("行号"))
    kind = models.CharField(_("类型"), max_length=10, choices=LineKind.choices)
    price_item = models.ForeignKey(PriceItem, null=True, blank=True, on_delete=models.PROTECT, related_name="lines",
                                   verbose_name=_("价格"), help_text=_("为空：配件按成本加成计价，或其他费用"))
    part_request = models.ForeignKey("parts.PartRequest", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", verbose_name=_("工单用件"))
    code = models.CharField(_("编码"), max_length=40, blank=True)
    description = models.CharField(_("项目"), max_length=100)
    qty = models.DecimalField(_("数量"), max_digits=8, decimal_places=2)
    unit_price = models.DecimalField(_("单价（元）"), **MONEY)
    amount = models.DecimalField(_("金额（元）"), **MONEY)
    unit_cost = models.DecimalField(_("内部成本单价（元）"), **MONEY, default=0)
    free = models.BooleanField(_("三包免费"), default=False)
    reason = models.CharField(_("三包说明"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("报价明细")
        verbose_name_plural = _("报价明细")
        ordering = ["quote", "position"]
        constraints = [
            models.UniqueConstraint(fields=["quote", "position"], name="quote_line_position_unique"),
            models.CheckConstraint(condition=Q(qty__gt=0), name="quote_line_qty_positive"),
            models.CheckConstraint(condition=Q(unit_price__gte=0) & Q(amount__gte=0) & Q(unit_cost__gte=0),
                                   name="quote_line_money_not_negative"),
        ]

    def __str__(self):
        return f"{self.quote_id}#{self.position} {self.description}"


class PaymentMethod(models.TextChoices):
    CASH = "cash", _("现金")
    WECHAT = "wechat", _("微信支付")
    ALIPAY = "alipay", _("支付宝")
    CARD = "card", _("银行卡")
    TRANSFER = "transfer", _("银行转账")


class Payment(models.Model):
    order = models.ForeignKey("tickets.WorkOrder", on_delete=models.PROTECT, related_name="payments",
                              verbose_name=_("工单"))
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="+", verbose_name=_("网点"),
                             db_index=False)
    quote = models.ForeignKey(Quote, null=True, blank=True, on_delete=models.PROTECT, related_name="payments",
                              verbose_name=_("报价单"))
    receipt_no = models.CharField(_("收据号"), max_length=20, unique=True)
    amount = models.DecimalField(_("金额（元）"), **MONEY)
    refunded = models.DecimalField(_("已退款（元）"), **MONEY, default=0)
    method = models.CharField(_("支付方式"), max_length=10, choices=PaymentMethod.choices)
    reference = models.CharField(_("交易流水号"), max_length=64, blank=True)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("收款人"))
    received_at = models.DateTimeField(_("收款时间"))

    class Meta:
        verbose_name = _("收款")
        verbose_name_plural = _("收款")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(condition=Q(refunded__gte=0) & Q(refunded__lte=models.F("amount")),
                                   name="payment_refunds_within_amount"),
        ]
        indexes = [models.Index(fields=["node", "-received_at"], name="payment_node_received_idx")]

    def __str__(self):
        return self.receipt_no

    @property
    def net(self):
        return self.amount - self.refunded


class Refund(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("收款"))
    amount = models.DecimalField(_("金额（元）"), **MONEY)
    reason = models.CharField(_("退款原因"), max_length=200)
    refunded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("经办人"))
    refunded_at = models.DateTimeField(_("退款时间"))

    class Meta:
        verbose_name = _("退款")
        verbose_name_plural = _("退款")
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]

    def __str__(self):
        return f"{self.payment_id} -{self.amount}"


class ReceiptSequence(models.Model):
    """The last receipt number given out per day: ``SJ`` + date + a six-digit sequence."""

    day = models.DateField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("收据号序列")
        verbose_name_plural = _("收据号序列")

    def __str__(self):
        return f"{self.day} {self.last}"


class ServiceCost(models.Model):
    """What serving an order cost (not what the customer paid): the parts used at cost, the
    labour (the quote's labour lines at their internal cost, else a default per visit), the
    travel (visits × a rate) and the loaner (days lent × its daily cost). Kept per order and
    recomputed on completion, closure, payments and loans; ``month`` (the first day of the month
    the order was completed in) and ``node`` feed the cost indicator."""

    order = models.OneToOneField("tickets.WorkOrder", on_delete=models.CASCADE, related_name="service_cost",
                                 verbose_name=_("工单"))
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="+", verbose_name=_("网点"),
                             db_index=False)
    month = models.DateField(_("月份"))
    parts = models.DecimalField(_("配件成本（元）"), **MONEY, default=0)
    labour = models.DecimalField(_("人工成本（元）"), **MONEY, default=0)
    travel = models.DecimalField(_("交通成本（元）"), **MONEY, default=0)
    loaner = models.DecimalField(_("备用机成本（元）"), **MONEY, default=0)
    total = models.DecimalField(_("合计（元）"), **MONEY, default=0)
    visits = models.PositiveSmallIntegerField(_("上门次数"), default=0)
    loan_days = models.PositiveIntegerField(_("备用机天数"), default=0)
    computed_at = models.DateTimeField(_("计算时间"))

    class Meta:
        verbose_name = _("服务成本")
        verbose_name_plural = _("服务成本")
        indexes = [models.Index(fields=["node", "month"], name="service_cost_node_month_idx"),
                   models.Index(fields=["month"], name="service_cost_month_idx"),
                   models.Index(fields=["computed_at"], name="service_cost_computed_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(parts__gte=0, labour__gte=0, travel__gte=0, loaner__gte=0),
                                   name="service_cost_not_negative"),
        ]

    def __str__(self):
        return f"{self.order_id} {self.total}"
