"""The parts API: warehouses, stock, the ledger, availability, stock operations (receive, count,
scrap, reorder settings), transfers, the parts of an order, replenishment. No ``from __future__
import annotations`` here (see aftersales.api.permissions).

Every operation declares its permission; where it applies (the warehouse's node, the order's
technician) is the services' and selectors' business: out of scope is 404, seen but not
allowed is 403.
"""

import datetime as dt
from decimal import Decimal

from ninja import Field, Query, Router, Schema, Status

from aftersales.api.permissions import requires
from aftersales.api.schemas import Cursor, Id, In, Limit, NodeRef, PathId, QueryId, Text, page_of, paginate
from aftersales.core.errors import NotFound
from aftersales.org.roles import Perm
from aftersales.tickets import workflow
from aftersales.tickets.models import WorkOrder

from . import selectors, services
from .models import MovementKind, TransferPurpose, TransferStatus, WarehouseKind

router = Router(tags=["parts"])


# ---------------------------------------------------------------- output

class PartRef(Schema):
    id: int
    code: str
    name: str
    uom: str
    serialised: bool


class WarehouseRef(Schema):
    id: int
    code: str
    name: str
    kind: str


class WarehouseOut(Schema):
    id: int
    code: str
    name: str
    kind: str
    kind_label: str
    node: NodeRef
    holder_id: int | None = Field(description="技师随车仓的技师（员工 id）")
    active: bool

    @staticmethod
    def resolve_kind_label(obj):
        return str(obj.get_kind_display())


class StockOut(Schema):
    id: int
    warehouse: WarehouseRef
    part: PartRef
    on_hand: int = Field(description="在库（良品）")
    reserved: int = Field(description="其中已预留")
    available: int = Field(description="可用 = 在库 − 已预留")
    defective: int = Field(description="待返旧件")
    reorder_point: int | None
    reorder_qty: int | None
    below_reorder: bool
    updated_at: dt.datetime

    @staticmethod
    def resolve_available(obj):
        return obj.on_hand - obj.reserved

    @staticmethod
    def resolve_below_reorder(obj):
        return obj.reorder_point is not None and obj.on_hand - obj.reserved <= obj.reorder_point


class OrderRef(Schema):
    id: int
    number: str


class TransferRef(Schema):
    id: int
    number: str


class MovementOut(Schema):
    id: int
    warehouse: WarehouseRef
    part: PartRef
    kind: str
    kind_label: str
    on_hand_delta: int
    reserved_delta: int
    defective_delta: int
    on_hand_after: int
    reserved_after: int
    defective_after: int
    unit_cost: Decimal
    at: dt.datetime
    actor: str = Field(description="操作人（系统为空）")
    order: OrderRef | None
    transfer: TransferRef | None
    request_id: int | None
    serial: str
    reason: str

    @staticmethod
    def resolve_kind_label(obj):
        return str(obj.get_kind_display())

    @staticmethod
    def resolve_actor(obj):
        return obj.actor.get_username() if obj.actor_id else ""


class AdjustOut(Schema):
    changed: bool = Field(description="盘点数与账面不同时为 true，并记一笔盘点调整")
    movement: MovementOut | None


class AvailabilityOut(Schema):
    warehouse: WarehouseRef
    node: NodeRef
    available: int
    distance_km: float | None = Field(description="到所给节点的直线距离；缺少坐标时为空")

    @staticmethod
    def resolve_warehouse(obj):
        return obj.warehouse

    @staticmethod
    def resolve_node(obj):
        return obj.warehouse.node


class LineOut(Schema):
    part: PartRef
    qty: int
    serials: list[str]


class TransferOut(Schema):
    id: int
    number: str
    source: WarehouseRef
    destination: WarehouseRef
    purpose: str
    defective: bool
    status: str
    status_label: str
    order: OrderRef | None
    note: str
    created_at: dt.datetime
    shipped_at: dt.datetime | None
    received_at: dt.datetime | None
    lines: list[LineOut]

    @staticmethod
    def resolve_status_label(obj):
        return str(obj.get_status_display())

    @staticmethod
    def resolve_lines(obj):
        return list(obj.lines.all())


class PartRequestOut(Schema):
    id: int
    order_id: int
    part: PartRef
    qty: int
    status: str
    status_label: str
    van: WarehouseRef
    source: WarehouseRef
    transfer: TransferRef | None
    free: bool | None = Field(description="三包判定：免费（true）或收费（false）；无法判定时为空")
    warranty_reason: str
    serial: str
    old_serial: str
    old_returned: bool
    unit_cost: Decimal
    requested_at: dt.datetime
    consumed_at: dt.datetime | None

    @staticmethod
    def resolve_status_label(obj):
        return str(obj.get_status_display())


class SuggestionOut(Schema):
    warehouse: WarehouseRef
    part: PartRef
    available: int
    inbound: int = Field(description="在途调入")
    reorder_point: int
    reorder_qty: int | None
    suggested_qty: int
    supplier: WarehouseRef | None = Field(description="上级仓库（补货来源）；未设置时为空")


# ---------------------------------------------------------------- input

Qty = Field(..., ge=1, le=services.MAX_QTY)
Serial = Text(services.SERIAL_MAX)


class ReceiveIn(In):
    warehouse_id: Id
    part_id: Id
    qty: int = Qty
    unit_cost: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=2)
    serials: list[Serial] = Field(default_factory=list, max_length=services.MAX_QTY)
    reason: Text(200) = ""


class AdjustIn(In):
    warehouse_id: Id
    part_id: Id
    counted: int = Field(..., ge=0, le=services.MAX_QTY)
    reason: Text(200)


class ScrapIn(In):
    warehouse_id: Id
    part_id: Id
    qty: int = Qty
    reason: Text(200)
    defective: bool = False
    serials: list[Serial] = Field(default_factory=list, max_length=services.MAX_QTY)


class ReorderIn(In):
    warehouse_id: Id
    part_id: Id
    reorder_point: int | None = Field(..., ge=0, le=services.MAX_QTY)
    reorder_qty: int | None = Field(..., ge=1, le=services.MAX_QTY)


class LineIn(In):
    part_id: Id
    qty: int = Qty
    serials: list[Serial] = Field(default_factory=list, max_length=services.MAX_QTY)


class TransferIn(In):
    source_id: Id
    destination_id: Id
    lines: list[LineIn] = Field(..., min_length=1, max_length=services.MAX_LINES)
    purpose: TransferPurpose = TransferPurpose.REPLENISH
    note: Text(200) = ""
    order_id: Id | None = None
    defective: bool = False


class ReasonIn(In):
    reason: Text(200)


class OptionalReasonIn(In):
    reason: Text(200) = ""


class PartRequestIn(In):
    part_id: Id
    qty: int = Field(1, ge=1, le=services.MAX_REQUEST_QTY)


class ConsumeIn(In):
    serial: Serial = ""
    old_serial: Serial = ""
    old_returned: bool = True


class ReplenishIn(In):
    part_ids: list[Id] | None = Field(None, max_length=1000, description="只补这些配件；为空则补全部建议")


# ---------------------------------------------------------------- warehouses and stock

@router.get("/warehouses", response=page_of(WarehouseOut))
@requires(Perm.PARTS_VIEW)
def warehouse_list(request, kind: WarehouseKind | None = None, cursor: Cursor = None, limit: Limit = 50):
    """The warehouses in the caller's scope, by code (a technician: their outlet's and their van)."""
    return paginate(selectors.warehouses_for(request.auth, kind=kind), ordering=["code", "id"], cursor=cursor,
                    limit=limit)


@router.get("/warehouses/{warehouse_id}", response=WarehouseOut)
@requires(Perm.PARTS_VIEW)
def warehouse_detail(request, warehouse_id: PathId):
    return selectors.warehouse_get(request.auth, warehouse_id)


@router.get("/stock", response=page_of(StockOut))
@requires(Perm.PARTS_VIEW)
def stock_list(request, warehouse_id: QueryId = None, q: str = Query("", max_length=100),
               below_reorder: bool = False, cursor: Cursor = None, limit: Limit = 50):
    """Stock per warehouse and part: on hand, reserved, available, old parts, reorder settings."""
    return selectors.stock_list(request.auth, warehouse_id=warehouse_id, q=q.replace("\x00", ""),
                                below_reorder=below_reorder, cursor=cursor, limit=limit)


@router.get("/movements", response=page_of(MovementOut))
@requires(Perm.PARTS_VIEW)
def movement_list(request, warehouse_id: QueryId = None, part_id: QueryId = None, kind: MovementKind | None = None,
                  order_id: QueryId = None, since: dt.datetime | None = None, until: dt.datetime | None = None,
                  cursor: Cursor = None, limit: Limit = 50):
    """The stock ledger, newest first."""
    return selectors.movements(request.auth, warehouse_id=warehouse_id, part_id=part_id, kind=kind,
                               order_id=order_id, since=since, until=until, cursor=cursor, limit=limit)


@router.get("/availability/{part_id}", response=list[AvailabilityOut])
@requires(Perm.PARTS_VIEW)
def availability(request, part_id: PathId, near_node_id: QueryId = None):
    """Where the part is available (in the caller's scope), nearest to ``near_node_id`` first."""
    return selectors.availability(part_id, near_node_id=near_node_id, user=request.auth)


@router.post("/stock/receive", response=MovementOut)
@requires(Perm.PARTS_MANAGE)
def stock_receive(request, payload: ReceiveIn):
    """Goods in (入库). A serialised part names one new serial per piece."""
    return services.stock_receive(user=request.auth, **payload.model_dump())


@router.post("/stock/adjust", response=AdjustOut)
@requires(Perm.PARTS_MANAGE)
def stock_adjust(request, payload: AdjustIn):
    """A stock count (盘点): on hand becomes ``counted``; the reason is required."""
    m = services.stock_adjust(user=request.auth, **payload.model_dump())
    return {"changed": m is not None, "movement": m}


@router.post("/stock/scrap", response=MovementOut)
@requires(Perm.PARTS_MANAGE)
def stock_scrap(request, payload: ScrapIn):
    """Scrap (报废) good parts (of the available ones) or, with ``defective``, old parts."""
    return services.stock_scrap(user=request.auth, **payload.model_dump())


@router.put("/stock/reorder", response=StockOut)
@requires(Perm.PARTS_MANAGE)
def stock_reorder(request, payload: ReorderIn):
    """Set the reorder point and quantity of a part in a warehouse (both null: clear them)."""
    return services.reorder_set(user=request.auth, **payload.model_dump())


# ---------------------------------------------------------------- transfers

@router.get("/transfers", response=page_of(TransferOut))
@requires(Perm.PARTS_VIEW)
def transfer_list(request, warehouse_id: QueryId = None, status: TransferStatus | None = None,
                  purpose: TransferPurpose | None = None, order_id: QueryId = None, cursor: Cursor = None,
                  limit: Limit = 50):
    """Transfers from or to the warehouses in the caller's scope, newest first."""
    return selectors.transfers(request.auth, warehouse_id=warehouse_id, status=status, purpose=purpose,
                               order_id=order_id, cursor=cursor, limit=limit)


@router.get("/transfers/{transfer_id}", response=TransferOut)
@requires(Perm.PARTS_VIEW)
def transfer_detail(request, transfer_id: PathId):
    return selectors.transfer_get(request.auth, transfer_id)


def _transfer(user, transfer_id):
    return selectors.transfer_get(user, transfer_id)


@router.post("/transfers", response={201: TransferOut})
@requires(Perm.PARTS_MANAGE)
def transfer_create(request, payload: TransferIn):
    """Raise a transfer from a warehouse the caller manages; its goods are reserved at the source.
    A source out of the caller's scope: 404 naming ``source_id``."""
    t = services.transfer_create(user=request.auth, **payload.model_dump())
    return Status(201, _transfer(None, t.pk))


@router.post("/transfers/{transfer_id}/ship", response=TransferOut)
@requires(Perm.PARTS_MANAGE)
def transfer_ship(request, transfer_id: PathId):
    """The goods leave the source (its manager)."""
    services.transfer_ship(user=request.auth, transfer_id=transfer_id)
    return _transfer(None, transfer_id)


@router.post("/transfers/{transfer_id}/receive", response=TransferOut)
@requires(Perm.PARTS_VIEW)
def transfer_receive(request, transfer_id: PathId):
    """The goods arrive (the destination's manager, or the technician whose van it is). Parts for
    an order become ready; the order waiting only for them resumes."""
    services.transfer_receive(user=request.auth, transfer_id=transfer_id)
    return _transfer(None, transfer_id)


@router.post("/transfers/{transfer_id}/cancel", response=TransferOut)
@requires(Perm.PARTS_MANAGE)
def transfer_cancel(request, transfer_id: PathId, payload: ReasonIn):
    """Cancel a transfer not yet shipped: its reservations are released."""
    services.transfer_cancel(user=request.auth, transfer_id=transfer_id, reason=payload.reason)
    return _transfer(None, transfer_id)


@router.post("/warehouses/{warehouse_id}/return-old-parts", response={200: TransferOut, 204: None})
@requires(Perm.PARTS_VIEW)
def old_parts_return(request, warehouse_id: PathId):
    """Send every old part (旧件) of a van or an outlet back to the centre (its manager, or the
    technician whose van it is). 204 when there is nothing to send."""
    t = services.old_parts_return(user=request.auth, warehouse_id=warehouse_id)
    if t is None:
        return Status(204, None)
    return Status(200, _transfer(None, t.pk))


# ---------------------------------------------------------------- the parts of an order

def _order_seen(user, order_id: int) -> WorkOrder:
    o = WorkOrder.objects.select_related("assignee").filter(pk=order_id).first()
    if o is None or not workflow.can_see(user, o):
        raise NotFound()
    return o


@router.get("/orders/{order_id}/parts", response=list[PartRequestOut])
@requires(Perm.PARTS_VIEW)
def order_parts(request, order_id: PathId):
    """The parts asked for on an order (who may see the order)."""
    return selectors.order_part_requests(_order_seen(request.auth, order_id))


@router.post("/orders/{order_id}/parts", response={201: PartRequestOut})
@requires(Perm.PARTS_VIEW)
def order_part_request(request, order_id: PathId, payload: PartRequestIn):
    """Ask for a part (the order's technician, or its dispatcher): reserved in the van when it is
    there, else at the nearest stock with a transfer to the van (the order waits for parts).
    409 when no warehouse has it."""
    r = services.part_request(user=request.auth, order_id=order_id, **payload.model_dump())
    return Status(201, selectors.part_request_get(r.pk))


@router.post("/part-requests/{request_id}/release", response=PartRequestOut)
@requires(Perm.PARTS_VIEW)
def part_release(request, request_id: PathId, payload: OptionalReasonIn):
    """Give up a part asked for: the reservation is released."""
    services.part_release(user=request.auth, request_id=request_id, reason=payload.reason)
    return selectors.part_request_get(request_id)


@router.post("/part-requests/{request_id}/consume", response=PartRequestOut)
@requires(Perm.ORDER_WORK)
def part_consume(request, request_id: PathId, payload: ConsumeIn):
    """The part is fitted (the technician, at the customer's): serialised parts name the serial
    (in the van); the old part is returned into the van's old-parts stock."""
    services.part_consume(user=request.auth, request_id=request_id, **payload.model_dump())
    return selectors.part_request_get(request_id)


# ---------------------------------------------------------------- replenishment

@router.get("/replenishment", response=list[SuggestionOut])
@requires(Perm.PARTS_VIEW)
def replenishment(request, warehouse_id: QueryId = None):
    """Parts whose available plus inbound quantity is at or below the reorder point, with the
    suggested quantity and the warehouse of the tier above."""
    return selectors.replenishment_suggestions(request.auth, warehouse_id=warehouse_id)


@router.post("/replenishment/{warehouse_id}", response=list[TransferOut])
@requires(Perm.PARTS_MANAGE)
def replenish(request, warehouse_id: PathId, payload: ReplenishIn):
    """Raise the transfers the suggestions call for: one per supplier warehouse."""
    ts = services.replenish(user=request.auth, warehouse_id=warehouse_id, part_ids=payload.part_ids)
    return [_transfer(None, t.pk) for t in ts]
