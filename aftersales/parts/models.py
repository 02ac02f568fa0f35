"""Spare parts (备品备件, R-PART-1): the parts catalog, warehouses from headquarters down to each
technician's van, and stock kept as a ledger.

The ledger contract (every writer keeps it; ``selectors.ledger_problems`` checks it):

- ``Stock`` holds, per (warehouse, part), three quantities: ``on_hand`` (good parts physically
  there), ``reserved`` (of those, promised to an order or a transfer) and ``defective``
  (old parts taken back from customers, 旧件, waiting to go back to the centre). None is ever
  negative and ``reserved <= on_hand`` (database constraints; services lock the row first).
- Nothing changes a ``Stock`` row except a ``Movement`` appended in the same transaction. A
  movement carries the signed change of each quantity (``on_hand_delta``, ``reserved_delta``,
  ``defective_delta``) and the three balances after it, so for every (warehouse, part) the sum
  of the deltas equals the row, and each movement's balances are the previous ones plus its
  deltas.
- Movement kinds and their usual deltas: receive (+on_hand), transfer_out (−on_hand and
  −reserved, or −defective for a return of old parts), transfer_in (+on_hand, or +defective),
  reserve (+reserved), release (−reserved), consume (−on_hand, −reserved), defective_return
  (+defective: the old part taken from the customer), scrap (−on_hand or −defective), adjust
  (± on_hand, a stock count, with its reason).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class Part(models.Model):
    code = models.CharField(_("配件编码"), max_length=40, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    name_en = models.CharField(_("英文名称"), max_length=100, blank=True)
    category = models.ForeignKey("catalog.Category", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="parts", verbose_name=_("产品类别"))
    fits = models.ManyToManyField("catalog.ProductModel", blank=True, related_name="parts",
                                  verbose_name=_("适用型号"))
    main_part_code = models.CharField(
        _("主要部件编码"), max_length=30, blank=True,
        help_text=_("此配件是适用型号的主要部件时填写（与型号的主要部件编码一致），三包按主要部件期限判定。"))
    uom = models.CharField(_("计量单位"), max_length=10, default="个")
    serialised = models.BooleanField(_("序列号管理"), default=False)
    returnable = models.BooleanField(_("旧件须返还"), default=True)
    unit_cost = models.DecimalField(_("成本单价（元）"), max_digits=12, decimal_places=2, default=0)
    active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("配件")
        verbose_name_plural = _("配件")
        ordering = ["code"]
        constraints = [models.CheckConstraint(condition=Q(unit_cost__gte=0), name="part_cost_not_negative")]

    def __str__(self):
        return f"{self.code} {self.display_name}"

    @property
    def display_name(self) -> str:
        if self.name_en and (get_language() or "").startswith("en"):
            return self.name_en
        return self.name


class WarehouseKind(models.TextChoices):
    HQ = "hq", _("总部仓")
    CENTRE = "centre", _("中心仓")
    OUTLET = "outlet", _("网点仓")
    VAN = "van", _("技师随车")


# The tier above each kind: where a warehouse replenishes from and where old parts go back to.
SUPPLIER_KIND = {WarehouseKind.VAN: WarehouseKind.OUTLET, WarehouseKind.OUTLET: WarehouseKind.CENTRE,
                 WarehouseKind.CENTRE: WarehouseKind.HQ, WarehouseKind.HQ: None}


class Warehouse(models.Model):
    """A place stock is kept. ``node`` is the organisation node it belongs to (a van: the
    technician's outlet), which is what scoping reads; a van has its ``holder``."""

    code = models.CharField(_("仓库编码"), max_length=30, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    kind = models.CharField(_("类型"), max_length=10, choices=WarehouseKind.choices)
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="warehouses",
                             verbose_name=_("所属节点"))
    holder = models.OneToOneField("org.Employee", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="van", verbose_name=_("随车技师"))
    active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("仓库")
        verbose_name_plural = _("仓库")
        ordering = ["code"]
        indexes = [models.Index(fields=["node", "kind"], name="warehouse_node_kind_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(kind="van", holder__isnull=False) | Q(~Q(kind="van"), holder__isnull=True),
                                   name="warehouse_van_has_holder"),
        ]

    def __str__(self):
        return self.name


class Stock(models.Model):
    """The balance of one part in one warehouse, kept from the ledger (see the module's doc)."""

    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="stock",
                                  verbose_name=_("仓库"))
    part = models.ForeignKey(Part, on_delete=models.PROTECT, related_name="stock", verbose_name=_("配件"),
                             db_index=False)  # (part, warehouse) below
    on_hand = models.IntegerField(_("在库数量"), default=0)
    reserved = models.IntegerField(_("已预留"), default=0)
    defective = models.IntegerField(_("待返旧件"), default=0)
    reorder_point = models.PositiveIntegerField(_("补货点"), null=True, blank=True)
    reorder_qty = models.PositiveIntegerField(_("补货量"), null=True, blank=True)
    updated_at = models.DateTimeField(_("更新时间"))
    # The stock alert last sent for this row ("low": at or below the reorder point, "out": none
    # available), so that it is sent once; cleared when restocked above the reorder point.
    alert_state = models.CharField(_("库存预警"), max_length=4, blank=True, default="",
                                   choices=[("", _("正常")), ("low", _("低于补货点")), ("out", _("缺货"))])

    class Meta:
        verbose_name = _("库存")
        verbose_name_plural = _("库存")
        constraints = [
            models.UniqueConstraint(fields=["warehouse", "part"], name="stock_warehouse_part_unique"),
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_reserved_not_negative"),
            models.CheckConstraint(condition=Q(reserved__lte=models.F("on_hand")), name="stock_reserved_le_on_hand"),
            models.CheckConstraint(condition=Q(defective__gte=0), name="stock_defective_not_negative"),
        ]
        indexes = [
            # availability of a part across warehouses: only the rows that have some free
            models.Index(fields=["part", "warehouse"], name="stock_part_available_idx",
                         condition=Q(on_hand__gt=models.F("reserved"))),
            models.Index(fields=["part", "warehouse"], name="stock_part_idx"),
            # the rows with reorder settings: replenishment suggestions and stock alerts
            models.Index(fields=["warehouse", "part"], name="stock_reorder_idx",
                         condition=Q(reorder_point__isnull=False)),
        ]

    def __str__(self):
        return f"{self.warehouse} · {self.part.code}"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class MovementKind(models.TextChoices):
    RECEIVE = "receive", _("入库")
    TRANSFER_OUT = "transfer_out", _("调拨出库")
    TRANSFER_IN = "transfer_in", _("调拨入库")
    RESERVE = "reserve", _("预留")
    RELEASE = "release", _("释放预留")
    CONSUME = "consume", _("维修领用")
    DEFECTIVE_RETURN = "defective_return", _("旧件返还")
    SCRAP = "scrap", _("报废")
    ADJUST = "adjust", _("盘点调整")


class TransferStatus(models.TextChoices):
    REQUESTED = "requested", _("已申请")
    SHIPPED = "shipped", _("已发出")
    RECEIVED = "received", _("已收货")
    CANCELLED = "cancelled", _("已取消")


class TransferPurpose(models.TextChoices):
    ORDER = "order", _("工单用件")
    REPLENISH = "replenish", _("补货")
    RETURN = "return", _("旧件返回")
    OTHER = "other", _("其他")


class Transfer(models.Model):
    """A transfer order between two warehouses (调拨单). Good parts are reserved at the source
    when it is requested, leave it when shipped and arrive when received; a return of old
    parts (``defective``) moves the defective quantity."""

    number = models.CharField(_("调拨单号"), max_length=30, unique=True)
    source = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="transfers_out",
                               verbose_name=_("调出仓"))
    destination = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="transfers_in",
                                    verbose_name=_("调入仓"))
    purpose = models.CharField(_("用途"), max_length=10, choices=TransferPurpose.choices)
    defective = models.BooleanField(_("旧件"), default=False)
    status = models.CharField(_("状态"), max_length=10, choices=TransferStatus.choices,
                              default=TransferStatus.REQUESTED)
    order = models.ForeignKey("tickets.WorkOrder", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="part_transfers", verbose_name=_("工单"))
    note = models.CharField(_("说明"), max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("申请人"))
    created_at = models.DateTimeField(_("申请时间"))
    shipped_at = models.DateTimeField(_("发出时间"), null=True, blank=True)
    received_at = models.DateTimeField(_("收货时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("调拨单")
        verbose_name_plural = _("调拨单")
        indexes = [
            models.Index(fields=["status", "destination"], name="transfer_status_dest_idx"),
            models.Index(fields=["status", "source"], name="transfer_status_source_idx"),
            models.Index(fields=["-created_at", "-id"], name="transfer_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(source=models.F("destination")), name="transfer_not_to_itself"),
        ]

    def __str__(self):
        return self.number


class TransferSequence(models.Model):
    """The last transfer number given out per day: ``DB`` + date + a five-digit sequence."""

    day = models.DateField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("调拨单号序列")
        verbose_name_plural = _("调拨单号序列")

    def __str__(self):
        return f"{self.day} {self.last}"


class TransferLine(models.Model):
    transfer = models.ForeignKey(Transfer, on_delete=models.CASCADE, related_name="lines", verbose_name=_("调拨单"))
    part = models.ForeignKey(Part, on_delete=models.PROTECT, related_name="+", verbose_name=_("配件"))
    qty = models.PositiveIntegerField(_("数量"))
    serials = models.JSONField(_("序列号"), default=list, blank=True)

    class Meta:
        verbose_name = _("调拨明细")
        verbose_name_plural = _("调拨明细")
        constraints = [
            models.UniqueConstraint(fields=["transfer", "part"], name="transfer_line_part_unique"),
            models.CheckConstraint(condition=Q(qty__gte=1), name="transfer_line_qty_positive"),
        ]

    def __str__(self):
        return f"{self.transfer_id} {self.part_id} ×{self.qty}"


class RequestStatus(models.TextChoices):
    IN_TRANSIT = "in_transit", _("调拨中")
    READY = "ready", _("已备件")  # reserved in the technician's van
    CONSUMED = "consumed", _("已使用")
    RELEASED = "released", _("已释放")


class PartRequest(models.Model):
    """Parts a technician asks for on an order (工单用件). Reserved at once from the nearest
    warehouse that has them: in their own van the request is ``ready``; elsewhere a transfer
    to the van is raised and the order waits for parts until it is received. Consumed at the
    repair (serialised parts name their serial); the old part taken out is returned
    (``old_returned``) and goes back to the centre with a return transfer."""

    order = models.ForeignKey("tickets.WorkOrder", on_delete=models.PROTECT, related_name="part_requests",
                              verbose_name=_("工单"))
    part = models.ForeignKey(Part, on_delete=models.PROTECT, related_name="requests", verbose_name=_("配件"))
    qty = models.PositiveIntegerField(_("数量"))
    status = models.CharField(_("状态"), max_length=12, choices=RequestStatus.choices)
    van = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+", verbose_name=_("技师随车仓"))
    source = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+", verbose_name=_("出库仓"))
    transfer = models.ForeignKey(Transfer, null=True, blank=True, on_delete=models.PROTECT, related_name="requests",
                                 verbose_name=_("调拨单"))
    free = models.BooleanField(_("三包免费"), null=True)
    warranty_reason = models.CharField(_("三包判定说明"), max_length=200, blank=True)
    serial = models.CharField(_("新件序列号"), max_length=50, blank=True)
    old_serial = models.CharField(_("旧件序列号"), max_length=50, blank=True)
    old_returned = models.BooleanField(_("旧件已返还"), default=False)
    unit_cost = models.DecimalField(_("成本单价（元）"), max_digits=12, decimal_places=2, default=0)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", verbose_name=_("申请人"))
    requested_at = models.DateTimeField(_("申请时间"))
    consumed_at = models.DateTimeField(_("使用时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("工单用件")
        verbose_name_plural = _("工单用件")
        indexes = [models.Index(fields=["status", "van"], name="part_request_status_van_idx")]
        constraints = [models.CheckConstraint(condition=Q(qty__gte=1), name="part_request_qty_positive")]

    def __str__(self):
        return f"{self.order_id} {self.part_id} ×{self.qty}"


class SerialState(models.TextChoices):
    IN_STOCK = "in_stock", _("在库")
    RESERVED = "reserved", _("已预留")
    IN_TRANSIT = "in_transit", _("在途")
    INSTALLED = "installed", _("已装机")
    DEFECTIVE = "defective", _("旧件")
    SCRAPPED = "scrapped", _("已报废")


class SerialItem(models.Model):
    """One piece of a serialised part: where it is and what became of it."""

    part = models.ForeignKey(Part, on_delete=models.PROTECT, related_name="serial_items", verbose_name=_("配件"))
    serial = models.CharField(_("序列号"), max_length=50)
    warehouse = models.ForeignKey(Warehouse, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("所在仓库"))
    state = models.CharField(_("状态"), max_length=12, choices=SerialState.choices)
    order = models.ForeignKey("tickets.WorkOrder", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("工单"))
    updated_at = models.DateTimeField(_("更新时间"))

    class Meta:
        verbose_name = _("序列号")
        verbose_name_plural = _("序列号")
        constraints = [models.UniqueConstraint(fields=["part", "serial"], name="serial_item_unique")]
        indexes = [models.Index(fields=["warehouse", "part", "state"], name="serial_item_where_idx")]

    def __str__(self):
        return f"{self.part_id}:{self.serial}"


class Movement(models.Model):
    """One line of the stock ledger (append-only). See the module's doc for the contract."""

    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="movements",
                                  verbose_name=_("仓库"), db_index=False)  # (warehouse, part, id) below
    part = models.ForeignKey(Part, on_delete=models.PROTECT, related_name="movements", verbose_name=_("配件"),
                             db_index=False)
    kind = models.CharField(_("类型"), max_length=20, choices=MovementKind.choices)
    on_hand_delta = models.IntegerField(_("在库变动"), default=0)
    reserved_delta = models.IntegerField(_("预留变动"), default=0)
    defective_delta = models.IntegerField(_("旧件变动"), default=0)
    on_hand_after = models.IntegerField(_("变动后在库"))
    reserved_after = models.IntegerField(_("变动后预留"))
    defective_after = models.IntegerField(_("变动后旧件"))
    unit_cost = models.DecimalField(_("成本单价（元）"), max_digits=12, decimal_places=2, default=0)
    at = models.DateTimeField(_("时间"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("操作人"))
    order = models.ForeignKey("tickets.WorkOrder", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("工单"), db_index=False)  # partial index below
    transfer = models.ForeignKey(Transfer, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("调拨单"), db_index=False)
    request = models.ForeignKey(PartRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("工单用件"), db_index=False)
    serial = models.CharField(_("序列号"), max_length=50, blank=True)
    reason = models.CharField(_("原因"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("库存流水")
        verbose_name_plural = _("库存流水")
        indexes = [
            models.Index(fields=["warehouse", "part", "id"], name="movement_wh_part_idx"),
            models.Index(fields=["warehouse", "-at", "-id"], name="movement_wh_at_idx"),
            models.Index(fields=["-at", "-id"], name="movement_at_idx"),
            models.Index(fields=["order"], name="movement_order_idx", condition=Q(order__isnull=False)),
            models.Index(fields=["transfer"], name="movement_transfer_idx", condition=Q(transfer__isnull=False)),
            models.Index(fields=["kind", "at"], name="movement_kind_at_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(on_hand_after__gte=0, reserved_after__gte=0, defective_after__gte=0)
                                   & Q(reserved_after__lte=models.F("on_hand_after")),
                                   name="movement_balances_valid"),
            models.CheckConstraint(condition=~Q(on_hand_delta=0, reserved_delta=0, defective_delta=0),
                                   name="movement_changes_something"),
        ]

    def __str__(self):
        return f"{self.kind} {self.part_id}@{self.warehouse_id}"
