"""Reads of the stock: warehouses, stock rows, the ledger, transfers, the parts of an order,
availability across the network, replenishment suggestions and the ledger check.

Scoping is applied once, here: a warehouse is seen where the user holds ``parts.view`` over
its node; a technician (whose ``parts.view`` comes from the technician role only) sees the
warehouses of their outlet and their own van, not the vans of their colleagues. Lists are
keyset-paginated with a fixed number of queries whatever the page size.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.db import connection
from django.db.models import Case, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.utils.translation import gettext_lazy as _

from aftersales.core import pagination
from aftersales.core.errors import NotFound, ValidationFailed
from aftersales.core.pagination import Page, keyset_page
from aftersales.org.models import NodeKind
from aftersales.org.roles import ROLE_PERMS, Perm, Role
from aftersales.org.scope import principal, scope_filter

from .models import (
    SUPPLIER_KIND,
    Movement,
    MovementKind,
    Part,
    PartRequest,
    Stock,
    Transfer,
    TransferLine,
    TransferStatus,
    Warehouse,
    WarehouseKind,
)

MAX_ID = 2**63 - 1
OPEN_TRANSFER = (TransferStatus.REQUESTED, TransferStatus.SHIPPED)


def _is_id(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_ID


# ---------------------------------------------------------------- scoping

def _van_paths(user) -> list[str] | None:
    """Where the user sees every van: the subtrees where a role other than technician gives
    ``parts.view``. None: everywhere."""
    p = principal(user)
    if p.is_superuser:
        return None
    paths = sorted({path for r, _n, path in p.roles
                    if r != Role.TECHNICIAN and Perm.PARTS_VIEW in ROLE_PERMS.get(r, frozenset())})
    if any(path.count("/") <= 2 for path in paths):
        return None
    return paths


def warehouse_scope(user, *, prefix: str = "") -> Q | None:
    """The filter limiting warehouses (``prefix``: the path to the warehouse, e.g.
    ``"warehouse__"``) to those ``user`` sees; None when no filter is needed."""
    if user is None:
        return None
    f = scope_filter(user, Perm.PARTS_VIEW, node_field=f"{prefix}node")
    vans = _van_paths(user)
    if vans is None:
        return f
    see_van = Q(**{f"{prefix}holder__user_id": user.pk})
    for path in vans:
        see_van |= Q(**{f"{prefix}node__path__startswith": path})
    van_q = ~Q(**{f"{prefix}kind": WarehouseKind.VAN}) | see_van
    return van_q if f is None else f & van_q


def _scoped(qs: QuerySet, user, *, prefix: str = "") -> QuerySet:
    f = warehouse_scope(user, prefix=prefix)
    return qs if f is None else qs.filter(f)


def can_view_warehouse(user, wh: Warehouse) -> bool:
    """Whether ``user`` sees ``wh`` (``wh.node`` loaded): the same rule as ``warehouse_scope``."""
    if user is None:
        return True
    ids = principal(user).node_ids_for(Perm.PARTS_VIEW)
    if ids is not None and wh.node_id not in ids:
        return False
    if wh.kind != WarehouseKind.VAN:
        return True
    vans = _van_paths(user)
    if vans is None or any(wh.node.path.startswith(p) for p in vans):
        return True
    return wh.holder_id is not None and wh.holder.user_id == user.pk


def warehouses_for(user, kind: str | None = None) -> QuerySet[Warehouse]:
    """The warehouses ``user`` sees (all for ``user=None``, the system), by code."""
    qs = _scoped(Warehouse.objects.select_related("node", "holder"), user)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("code")


def warehouse_get(user, warehouse_id: int) -> Warehouse:
    """One warehouse; 404 when absent or out of the user's scope."""
    if not _is_id(warehouse_id):
        raise NotFound()
    wh = Warehouse.objects.select_related("node", "holder").filter(pk=warehouse_id).first()
    if wh is None or not can_view_warehouse(user, wh):
        raise NotFound()
    return wh


# ---------------------------------------------------------------- stock and the ledger

def _has_nul_or_none(v) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return "\x00" in v
    if isinstance(v, dict):
        return any(_has_nul_or_none(x) for x in v.values())
    return False


def _page(qs: QuerySet, *, ordering: list[str], cursor: str | None, limit: int) -> Page:
    """``keyset_page``, with a forged cursor (NUL characters, nulls, values of the wrong type)
    reported on ``cursor`` instead of failing in the database."""
    bad = ValidationFailed({"cursor": [_("分页游标无效，请从第一页重新开始。")]})
    if cursor:
        values = pagination._decode(cursor, len(ordering))
        if any(_has_nul_or_none(v) for v in values):
            raise bad
    try:
        return keyset_page(qs, ordering=ordering, cursor=cursor, limit=limit)
    except (ValueError, TypeError):
        if not cursor:
            raise
        raise bad from None


def stock_queryset(user) -> QuerySet[Stock]:
    return _scoped(Stock.objects.select_related("warehouse__node", "part"), user, prefix="warehouse__")


def stock_list(user, *, warehouse_id: int | None = None, q: str = "", below_reorder: bool = False,
               cursor: str | None = None, limit: int = 50) -> Page:
    """Stock rows by warehouse and part code: of one warehouse (404 if not seen), matching
    ``q`` (part code or name), only those at or below their reorder point."""
    qs = stock_queryset(user)
    if warehouse_id is not None:
        wh = warehouse_get(user, warehouse_id)
        qs = qs.filter(warehouse_id=wh.pk)
    q = (q or "").strip()
    if q:
        qs = qs.filter(Q(part__code__icontains=q) | Q(part__name__icontains=q) | Q(part__name_en__icontains=q))
    if below_reorder:
        qs = qs.filter(reorder_point__isnull=False, on_hand__lte=F("reserved") + F("reorder_point"))
    return _page(qs, ordering=["warehouse__code", "part__code", "id"], cursor=cursor, limit=limit)


def stock_get(user, warehouse_id: int, part_id: int) -> Stock | None:
    wh = warehouse_get(user, warehouse_id)
    if not _is_id(part_id):
        return None
    return Stock.objects.select_related("warehouse__node", "part").filter(warehouse_id=wh.pk, part_id=part_id).first()


def movements(user, *, warehouse_id: int | None = None, part_id: int | None = None, kind: str | None = None,
              order_id: int | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None,
              cursor: str | None = None, limit: int = 50) -> Page:
    """The ledger, newest first, with the filters given."""
    if kind and kind not in MovementKind.values:
        raise ValidationFailed({"kind": [_("未知的流水类型。")]})
    qs = _scoped(Movement.objects.select_related("warehouse", "part", "actor", "order", "transfer"), user,
                 prefix="warehouse__")
    if warehouse_id is not None:
        wh = warehouse_get(user, warehouse_id)
        qs = qs.filter(warehouse_id=wh.pk)
    if part_id is not None:
        qs = qs.filter(part_id=part_id)
    if kind:
        qs = qs.filter(kind=kind)
    if order_id is not None:
        qs = qs.filter(order_id=order_id)
    if since is not None:
        qs = qs.filter(at__gte=since)
    if until is not None:
        qs = qs.filter(at__lt=until)
    return _page(qs, ordering=["-at", "-id"], cursor=cursor, limit=limit)


# ---------------------------------------------------------------- availability

def haversine_km(lat1, lng1, lat2, lng2) -> float | None:
    """Great-circle distance in km between two points in degrees (None if one is unknown)."""
    if None in (lat1, lng1, lat2, lng2):
        return None
    p1, p2 = math.radians(float(lat1)), math.radians(float(lat2))
    dp, dl = p2 - p1, math.radians(float(lng2) - float(lng1))
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class NodeInfo:
    """The fields of a node that availability reads (a plain row: no model to build)."""

    id: int
    code: str
    name: str
    kind: str
    path: str
    lat: object
    lng: object

    @property
    def pk(self) -> int:
        return self.id


@dataclass(frozen=True)
class WarehouseInfo:
    id: int
    code: str
    name: str
    kind: str
    holder_id: int | None
    node: NodeInfo

    @property
    def pk(self) -> int:
        return self.id

    @property
    def node_id(self) -> int:
        return self.node.id

    def get_kind_display(self) -> str:
        return str(WarehouseKind(self.kind).label)


@dataclass
class Availability:
    warehouse: WarehouseInfo
    available: int
    distance_km: float | None

    def __iter__(self):  # unpacks as (warehouse, available, distance)
        return iter((self.warehouse, self.available, self.distance_km))


def _in(column: str, values, params: list) -> str:
    values = sorted(values)
    params.extend(values)
    return f"{column} IN ({', '.join(['%s'] * len(values))})" if values else "1 = 0"


def available_rows(part_id: int, *, min_qty: int = 1, user=None, exclude_vans: bool = False,
                   near_node_id: int | None = None) -> list[Availability]:
    """Where ``part_id`` has at least ``min_qty`` available, in active warehouses (seen by
    ``user`` when given), with the distance to node ``near_node_id``: ONE SQL query, on the
    partial index ``stock_part_available_idx`` (``on_hand > reserved``), and no models built
    (plain rows), so that it stays fast with a part in every one of hundreds of warehouses."""
    from aftersales.org.models import Employee, Node

    s_t, w_t, n_t, e_t = (Stock._meta.db_table, Warehouse._meta.db_table, Node._meta.db_table,
                          Employee._meta.db_table)
    params: list = [near_node_id, part_id]
    where = ["s.part_id = %s", "s.on_hand > s.reserved", "w.active"]
    if min_qty > 1:
        where.append("s.on_hand - s.reserved >= %s")
        params.append(min_qty)
    if exclude_vans:
        where.append("w.kind <> %s")
        params.append(WarehouseKind.VAN.value)
    if user is not None:
        ids = principal(user).node_ids_for(Perm.PARTS_VIEW)
        if ids is not None:
            where.append(_in("w.node_id", ids, params))
        vans = _van_paths(user)
        if vans is not None:
            alts = ["w.kind <> %s", "e.user_id = %s"] + ["n.path LIKE %s"] * len(vans)
            params.extend([WarehouseKind.VAN.value, user.pk] + [p + "%" for p in vans])
            where.append("(" + " OR ".join(alts) + ")")
    sql = f"""
        SELECT w.id, w.code, w.name, w.kind, w.holder_id, n.id, n.code, n.name, n.kind, n.path, n.lat, n.lng,
               s.on_hand - s.reserved, nn.lat, nn.lng
        FROM {s_t} s
        JOIN {w_t} w ON w.id = s.warehouse_id
        JOIN {n_t} n ON n.id = w.node_id
        LEFT JOIN {e_t} e ON e.id = w.holder_id
        LEFT JOIN {n_t} nn ON nn.id = %s
        WHERE {" AND ".join(where)}"""
    out = []
    with connection.cursor() as cur:
        cur.execute(sql, params)
        for wid, wcode, wname, wkind, holder, nid, ncode, nname, nkind, npath, lat, lng, avail, nlat, nlng in cur:
            node = NodeInfo(nid, ncode, nname, nkind, npath, lat, lng)
            d = haversine_km(lat, lng, nlat, nlng) if near_node_id is not None else None
            out.append(Availability(WarehouseInfo(wid, wcode, wname, wkind, holder, node), avail,
                                    None if d is None else round(d, 1)))
    return out


def availability(part_id: int, *, near_node_id: int | None = None, user=None) -> list[Availability]:
    """Where ``part_id`` is available, nearest to node ``near_node_id`` first (by the
    straight-line distance between the nodes; unknown distances last), as
    ``(warehouse, available, distance_km)``. One SQL query (for ``user=None``; a user adds the
    look-up of their scope once per request)."""
    if not _is_id(part_id) or (near_node_id is not None and not _is_id(near_node_id)):
        return []
    out = available_rows(part_id, user=user, near_node_id=near_node_id)
    out.sort(key=lambda a: (a.distance_km is None, a.distance_km or 0.0, a.warehouse.code))
    return out


def _centre_path(path: str) -> str:
    """The path of the service centre above an outlet's path (``/1/2/5/`` → ``/1/2/``)."""
    parts = [x for x in path.strip("/").split("/") if x]
    return "/" + "/".join(parts[:2]) + "/" if len(parts) >= 2 else path


def source_order(van: Warehouse, rows: list[Availability]) -> list[Availability]:
    """Other warehouses in the order a part request takes from them: the van's own outlet, then
    the other outlets and the warehouse of the same centre, then other centres, then
    headquarters; ties by distance between the nodes (unknown last), then code."""
    home = van.node
    centre = _centre_path(home.path)

    def tier(n) -> int:
        if n.id == home.pk:
            return 0
        if n.kind == NodeKind.HQ:
            return 3
        return 1 if n.path.startswith(centre) else 2

    def key(a: Availability):
        n = a.warehouse.node
        d = haversine_km(home.lat, home.lng, n.lat, n.lng)
        return (tier(n), d is None, d or 0.0, a.warehouse.code)

    return sorted((a for a in rows if a.warehouse.id != van.pk), key=key)


# ---------------------------------------------------------------- replenishment

def _supplier_subquery(kind: str, node_ref: str):
    return Subquery(Warehouse.objects.filter(kind=kind, active=True, node_id=OuterRef(node_ref))
                    .order_by("id").values("id")[:1])


def _inbound(warehouse_ids=None) -> dict[tuple[int, int], int]:
    """Good parts on their way in, per (destination warehouse, part): the lines of open transfers
    (few at any time; found by the transfers' status index)."""
    qs = TransferLine.objects.filter(transfer__status__in=OPEN_TRANSFER, transfer__defective=False)
    if warehouse_ids is not None:
        qs = qs.filter(transfer__destination_id__in=warehouse_ids)
    return {(d, p): n for d, p, n in qs.values("transfer__destination_id", "part_id")
            .annotate(n=Sum("qty")).values_list("transfer__destination_id", "part_id", "n")}


def replenishment_suggestions(user, *, warehouse_id: int | None = None) -> list[Stock]:
    """Stock rows (with reorder settings) whose available quantity plus what is already on its
    way in is at or below the reorder point, annotated with ``free_qty``, ``inbound``,
    ``position``, ``suggested_qty`` (the reorder quantity, or more when that would not lift it
    above the reorder point), ``supplier_id`` (the warehouse of the tier above, ``SUPPLIER_KIND``)
    and ``supplier`` (loaded). Set-based: one query for the candidate rows (available at or below
    the reorder point: what is on its way in only lifts the position), one for what is on its way
    in, one for the suppliers."""
    qs = _scoped(Stock.objects.filter(reorder_point__isnull=False), user, prefix="warehouse__")
    wh = None
    if warehouse_id is not None:
        wh = warehouse_get(user, warehouse_id)
        qs = qs.filter(warehouse_id=wh.pk)
    whens = []
    for kind, sup in SUPPLIER_KIND.items():
        if sup is None:
            continue
        node_ref = "warehouse__node_id" if kind == WarehouseKind.VAN else "warehouse__node__parent_id"
        whens.append(When(warehouse__kind=kind, then=_supplier_subquery(sup, node_ref)))
    candidates = list(qs.select_related("warehouse__node", "part")
                      .annotate(free_qty=F("on_hand") - F("reserved"))
                      .filter(free_qty__lte=F("reorder_point"))
                      .annotate(supplier_id=Case(*whens, default=Value(None), output_field=IntegerField()))
                      .order_by("warehouse__code", "part__code"))
    inbound = _inbound([wh.pk] if wh is not None else None)
    rows = []
    for r in candidates:
        r.inbound = inbound.get((r.warehouse_id, r.part_id), 0)
        r.position = r.free_qty + r.inbound
        if r.position <= r.reorder_point:
            r.suggested_qty = max(r.reorder_qty or 0, r.reorder_point + 1 - r.position)
            rows.append(r)
    suppliers = Warehouse.objects.in_bulk({r.supplier_id for r in rows if r.supplier_id})
    for r in rows:
        r.supplier = suppliers.get(r.supplier_id)
    return rows


# ---------------------------------------------------------------- vans, orders, transfers

def van_of(employee) -> Warehouse | None:
    return Warehouse.objects.filter(holder=employee).first() if employee is not None else None


def van_stock(employee) -> list[Stock]:
    """What the technician carries: the rows of their van with anything in it, by part code."""
    if employee is None:
        return []
    return list(Stock.objects.select_related("part", "warehouse")
                .filter(warehouse__holder=employee).filter(Q(on_hand__gt=0) | Q(defective__gt=0))
                .order_by("part__code"))


def order_part_requests(order) -> list[PartRequest]:
    """The parts asked for on ``order`` (visibility of the order is the caller's business)."""
    oid = getattr(order, "pk", order)
    return list(PartRequest.objects.filter(order_id=oid)
                .select_related("part", "van", "source", "transfer", "requested_by").order_by("id"))


def part_request_get(request_id: int) -> PartRequest:
    if not _is_id(request_id):
        raise NotFound()
    r = PartRequest.objects.select_related("part", "van", "source", "transfer", "order").filter(pk=request_id).first()
    if r is None:
        raise NotFound()
    return r


def transfer_queryset(user) -> QuerySet[Transfer]:
    """Transfers whose source or destination the user sees."""
    qs = Transfer.objects.select_related("source__node", "destination__node", "order", "created_by")
    fs, fd = warehouse_scope(user, prefix="source__"), warehouse_scope(user, prefix="destination__")
    if fs is None or fd is None:
        return qs
    return qs.filter(fs | fd)


def transfers(user, *, warehouse_id: int | None = None, status: str | None = None, purpose: str | None = None,
              order_id: int | None = None, cursor: str | None = None, limit: int = 50) -> Page:
    """Transfers, newest first, with their lines (one more query)."""
    qs = transfer_queryset(user)
    if warehouse_id is not None:
        wh = warehouse_get(user, warehouse_id)
        qs = qs.filter(Q(source_id=wh.pk) | Q(destination_id=wh.pk))
    if status:
        qs = qs.filter(status=status)
    if purpose:
        qs = qs.filter(purpose=purpose)
    if order_id is not None:
        qs = qs.filter(order_id=order_id)
    qs = qs.prefetch_related("lines__part")
    return _page(qs, ordering=["-created_at", "-id"], cursor=cursor, limit=limit)


def transfer_get(user, transfer_id: int) -> Transfer:
    if not _is_id(transfer_id):
        raise NotFound()
    t = transfer_queryset(user).prefetch_related("lines__part").filter(pk=transfer_id).first()
    if t is None:
        raise NotFound()
    return t


def parts_fitting(unit) -> QuerySet[Part]:
    """Active parts that fit ``unit``: listed for its model, or for no model and of its category."""
    return (Part.objects.filter(active=True)
            .filter(Q(fits=unit.model_id) | Q(fits__isnull=True, category_id=unit.model.category_id))
            .distinct().order_by("code"))


# ---------------------------------------------------------------- the ledger check

def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def ledger_problems(*, warehouse_id: int | None = None, limit: int = 100) -> list[str]:
    """Every breach of the ledger contract (``models``' doc), checked set-based in SQL: for
    every (warehouse, part) the sum of the deltas equals the stock row; every movement's
    balances are the previous movement's plus its deltas (a window over the ledger); no
    quantity is negative and nothing more is reserved than is on hand. [] when all is well."""
    s_t, m_t = Stock._meta.db_table, Movement._meta.db_table
    where_m = "WHERE warehouse_id = %s" if warehouse_id is not None else ""
    where_s = "WHERE s.warehouse_id = %s" if warehouse_id is not None else ""
    p = [warehouse_id] if warehouse_id is not None else []
    out: list[str] = []
    sums = f"""(SELECT warehouse_id, part_id, SUM(on_hand_delta) AS oh, SUM(reserved_delta) AS rs,
                       SUM(defective_delta) AS df FROM {m_t} {where_m} GROUP BY warehouse_id, part_id)"""
    for w, pt, oh, rs, df, moh, mrs, mdf in _rows(f"""
        SELECT s.warehouse_id, s.part_id, s.on_hand, s.reserved, s.defective,
               COALESCE(m.oh, 0), COALESCE(m.rs, 0), COALESCE(m.df, 0)
        FROM {s_t} s LEFT JOIN {sums} m ON m.warehouse_id = s.warehouse_id AND m.part_id = s.part_id
        {where_s} {"AND" if where_s else "WHERE"}
              (s.on_hand <> COALESCE(m.oh, 0) OR s.reserved <> COALESCE(m.rs, 0)
               OR s.defective <> COALESCE(m.df, 0))
        LIMIT {int(limit)}""", p + p):
        out.append(f"stock {w}/{pt}: row ({oh}, {rs}, {df}) != sum of movements ({moh}, {mrs}, {mdf})")
    for w, pt in _rows(f"""
        SELECT m.warehouse_id, m.part_id FROM {sums} m
        LEFT JOIN {s_t} s ON s.warehouse_id = m.warehouse_id AND s.part_id = m.part_id
        WHERE s.id IS NULL LIMIT {int(limit)}""", p):
        out.append(f"stock {w}/{pt}: movements without a stock row")
    for mid, w, pt in _rows(f"""
        SELECT id, warehouse_id, part_id FROM (
            SELECT id, warehouse_id, part_id, on_hand_delta, reserved_delta, defective_delta,
                   on_hand_after, reserved_after, defective_after,
                   LAG(on_hand_after, 1, 0) OVER w AS p_oh, LAG(reserved_after, 1, 0) OVER w AS p_rs,
                   LAG(defective_after, 1, 0) OVER w AS p_df
            FROM {m_t} {where_m}
            WINDOW w AS (PARTITION BY warehouse_id, part_id ORDER BY id)
        ) x
        WHERE on_hand_after <> p_oh + on_hand_delta OR reserved_after <> p_rs + reserved_delta
              OR defective_after <> p_df + defective_delta
        ORDER BY id LIMIT {int(limit)}""", p):
        out.append(f"movement {mid} ({w}/{pt}): balances are not the previous ones plus its deltas")
    for w, pt in _rows(f"""
        SELECT s.warehouse_id, s.part_id FROM {s_t} s {where_s} {"AND" if where_s else "WHERE"}
              (s.on_hand < 0 OR s.reserved < 0 OR s.defective < 0 OR s.reserved > s.on_hand)
        LIMIT {int(limit)}""", p):
        out.append(f"stock {w}/{pt}: negative quantity or more reserved than on hand")
    for (mid,) in _rows(f"""
        SELECT id FROM {m_t} {where_m} {"AND" if where_m else "WHERE"}
              (on_hand_after < 0 OR reserved_after < 0 OR defective_after < 0 OR reserved_after > on_hand_after)
        LIMIT {int(limit)}""", p):
        out.append(f"movement {mid}: negative balance or more reserved than on hand")
    return out
