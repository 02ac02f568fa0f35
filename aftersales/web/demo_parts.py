"""Spare parts for the demo (issue 4, item 8): the parts catalog, the warehouses and six months
of stock movements consistent with the demo's work orders, built in bulk.

What is made, from the organisation, the catalogue and the orders already in the database:

- the catalog (``KINDS``): per product category the usual spare parts — 压缩机, 风扇电机,
  主控板, 温控器, 排水泵, 门封条, 加热管, 滚筒轴承, 四通阀, 遥控器 … — one per model (compressors,
  boards, panels, tanks …; the main ones serialised), per brand or one for the whole category,
  fitting those models, with the main part code where it is one of a fitted model's main parts,
  at a unit cost;
- warehouses: headquarters, one per service centre, one per outlet and one van per technician
  (``VAN-`` + employee number, at the technician's outlet), with reorder points and quantities
  from the demand the orders make (vans carry what their technician uses of the small parts
  and boards of their categories; outlets and centres hold every part);
- the ledger, simulated in time order from a week before the first order to ``now``: the
  opening stock counted in every warehouse (期初入库); replenishment reviews (vans weekly from
  their outlet, outlets every four weeks from their centre, centres every four weeks from
  headquarters, purchases received at headquarters every two weeks) as transfers — reserved at
  the source when requested, out when shipped, in when received; for the completed repairs
  whose fault code names a part (a sample, ``SAMPLE_DIGITS``, and every order that waited for
  parts) the technician's request (``PartRequest``), reserved in their van and consumed at the
  completion, or fetched from the outlet (else the centre, else headquarters) with an order
  transfer — over the order's waiting-for-parts period when it had one —, and the old part taken
  back (``defective_return``) where the part is returnable; every four weeks the old parts go
  from the vans to their centre, where they are scrapped after inspection; a few count
  adjustments and scraps. Orders still waiting for parts have their transfer on the way;
  orders cancelled while waiting had their reservation released. Serialised parts have a
  ``SerialItem`` per piece (in stock, reserved, in transit, installed, old, scrapped), where the
  ledger says they are. Two common parts run short at the supplier for the last ten weeks, so
  the replenishment list and the stock-out alerts have something to show.

Every movement carries its deltas and the balances after it, in id order per (warehouse,
part); the ``Stock`` rows are the sums; no balance is ever negative (``ledger_problems``).
Transfer numbers are those of ``parts.services.next_transfer_number``, going on after each
day's ``TransferSequence``.

Rows are written with ``executemany`` of plain tuples and explicit ids (ids of deleted rows are
never given out again: their audit chains live on). The catalog and the warehouses get the
demo's ``demo.create`` audit entry; stock rows, transfers (with their lines), requests and
serial items one entry each with their final state (``parts.demo_history``), as the orders do.
The ledger itself (``Movement``, append-only, like the orders' events) has none.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import hashlib
import heapq
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal

from django.core.management.color import no_style
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

from aftersales.catalog.models import Category, MainPart, ProductModel
from aftersales.core.progress import Progress
from aftersales.org.models import Employee, Node, NodeKind, RoleAssignment
from aftersales.org.roles import Role
from aftersales.parts.models import (
    Movement,
    MovementKind,
    Part,
    PartRequest,
    RequestStatus,
    SerialItem,
    SerialState,
    Stock,
    Transfer,
    TransferLine,
    TransferPurpose,
    TransferSequence,
    TransferStatus,
    Warehouse,
    WarehouseKind,
)
from aftersales.records.audit import GENESIS, entry_hash
from aftersales.records.models import AuditEntry
from aftersales.tickets.models import FaultCode, OrderEvent, OrderType, Status, WorkOrder
from aftersales.web.demo_orders import (
    _CANONICAL,
    _JSON,
    _AuditRow,
    _dependants,
    _id_base,
    _Time,
    delete_steps,
    indexes_dropped,
)

CREATE_ACTION = "demo.create"  # the catalog and the warehouses, as the demo command's reference data
AUDIT_ACTION = "parts.demo_history"  # the final state of what the simulation made
SYSTEM = "system"
DEFAULT_DAYS = 182
BATCH = 20_000
SUPPLY_SHORT_DAYS = 70  # the two parts the supplier cannot deliver, for this long before now

# ==================================================================== the catalog


@dataclasses.dataclass(frozen=True)
class Kind:
    key: str
    name: str
    name_en: str
    main: str  # the main part code (catalog.MainPart.code) this part is, or ""
    scope: str  # "model", "brand" or "category": one part per model, per brand, or one for all
    serialised: bool
    returnable: bool
    van: bool  # carried in the technicians' vans (small, common); else fetched from the outlet for the order
    cost: tuple[int, int]  # yuan
    uom: str = "个"


def _k(key, name, en, main, scope, serialised, returnable, van, lo, hi, uom="个") -> Kind:
    return Kind(key, name, en, main, scope, serialised, returnable, van, (lo, hi), uom)


KINDS: dict[str, list[Kind]] = {
    "AC": [
        _k("COMP", "压缩机", "Compressor", "COMP", "model", True, True, False, 850, 1650, "台"),
        _k("PCB", "主控板（电脑板）", "Main control board", "PCB", "model", True, True, False, 260, 520, "块"),
        _k("FANM", "室内风扇电机", "Indoor fan motor", "FANM", "brand", False, True, True, 160, 320),
        _k("THERM", "温度传感器（温控器）", "Temperature sensor", "THERM", "category", False, True, True, 18, 45),
        _k("VALVE", "四通阀", "Four-way valve", "", "brand", False, True, False, 95, 180),
        _k("CAP", "压缩机启动电容", "Compressor start capacitor", "", "category", False, False, True, 12, 30),
        _k("DRAIN", "排水管", "Drain hose", "", "category", False, False, True, 10, 25, "根"),
        _k("R32", "R32 冷媒", "R32 refrigerant", "", "category", False, False, True, 55, 95, "瓶"),
        _k("REMOTE", "遥控器", "Remote control", "", "brand", False, False, True, 30, 75),
        _k("RECV", "遥控接收板", "IR receiver board", "", "brand", False, True, True, 40, 80, "块"),
    ],
    "RF": [
        _k("COMP", "压缩机", "Compressor", "COMP", "model", True, True, False, 600, 1200, "台"),
        _k("PCB", "电脑板", "Control board", "", "model", False, True, False, 200, 380, "块"),
        _k("EVAP", "蒸发器", "Evaporator", "EVAP", "model", False, True, False, 280, 520),
        _k("COND", "冷凝器", "Condenser", "COND", "model", False, True, False, 220, 420),
        _k("THERM", "温控器", "Thermostat", "THERM", "brand", False, True, True, 35, 80),
        _k("SEAL", "门封条", "Door seal", "", "model", False, False, False, 60, 140, "条"),
        _k("FAN", "冷冻风扇电机", "Freezer fan motor", "", "brand", False, True, True, 80, 150),
        _k("HEATER", "化霜加热管", "Defrost heater", "", "brand", False, True, True, 45, 90, "根"),
    ],
    "WM": [
        _k("MOTOR", "电动机", "Drive motor", "MOTOR", "model", True, True, False, 380, 720, "台"),
        _k("PCB", "程序控制器（电脑板）", "Programme controller", "PCB", "model", False, True, False, 220, 420, "块"),
        _k("CLUTCH", "离合器", "Clutch", "CLUTCH", "brand", False, True, False, 150, 260),
        _k("PUMP", "排水泵", "Drain pump", "PUMP", "brand", False, True, True, 60, 130),
        _k("VALVE", "进水阀", "Inlet valve", "", "category", False, False, True, 25, 55),
        _k("LOCK", "门锁", "Door lock", "", "brand", False, False, True, 35, 80),
        _k("HOSE", "进水管", "Inlet hose", "", "category", False, False, True, 15, 35, "根"),
        _k("BEARING", "滚筒轴承", "Drum bearing", "", "brand", False, False, False, 45, 90, "套"),
        _k("DAMPER", "减震器", "Shock absorber", "", "brand", False, False, True, 30, 60),
        _k("BELT", "皮带", "Drive belt", "", "category", False, False, True, 15, 30, "根"),
    ],
    "TV": [
        _k("PANEL", "显示屏组件", "Display panel", "PANEL", "model", True, True, False, 1200, 3200, "块"),
        _k("MAINBOARD", "主板", "Main board", "MAINBOARD", "model", True, True, False, 260, 520, "块"),
        _k("PSU", "电源板", "Power board", "PSU", "model", False, True, False, 120, 260, "块"),
        _k("BACKLIGHT", "背光灯条", "Backlight strip", "", "model", False, True, False, 90, 180, "套"),
        _k("TUNER", "高频头", "Tuner", "TUNER", "brand", False, True, True, 40, 90),
        _k("SPEAKER", "扬声器", "Speaker", "", "brand", False, False, True, 30, 70),
        _k("REMOTE", "遥控器", "Remote control", "", "brand", False, False, True, 35, 90),
    ],
    "WH": [
        _k("TANK", "内胆", "Inner tank", "TANK", "model", True, True, False, 500, 900),
        _k("HEX", "热交换器", "Heat exchanger", "HEX", "model", False, True, False, 300, 600),
        _k("PCB", "控制板", "Control board", "", "model", False, True, False, 180, 320, "块"),
        _k("HEATER", "加热管", "Heating element", "HEATER", "brand", False, True, True, 80, 160, "根"),
        _k("IGNITER", "点火器", "Igniter", "IGNITER", "brand", False, True, True, 45, 90),
        _k("SENSOR", "温度传感器", "Temperature sensor", "", "category", False, False, True, 20, 45),
        _k("ANODE", "镁棒", "Magnesium anode", "", "category", False, False, True, 25, 50, "根"),
    ],
    "RH": [
        _k("MOTOR", "电机", "Motor", "MOTOR", "model", True, True, False, 260, 480, "台"),
        _k("PCB", "控制板", "Control board", "PCB", "model", False, True, False, 150, 300, "块"),
        _k("IMPELLER", "风轮", "Impeller", "IMPELLER", "brand", False, True, True, 60, 130),
        _k("OILCUP", "集油盒", "Oil cup", "", "brand", False, False, True, 15, 35),
        _k("SWITCH", "按键开关", "Switch panel", "", "brand", False, False, True, 20, 50),
        _k("LAMP", "照明灯", "Lamp", "", "category", False, False, True, 10, 25),
    ],
}

# The part a fault code calls for: (kind, how often it is replaced) — a code naming a main part
# always (the order's result says "更换…"), the others some of the time.
FAULT_PARTS: dict[tuple[str, str], list[tuple[str, float]]] = {
    ("AC", "E1"): [("COMP", 1.0)], ("AC", "E5"): [("COMP", 1.0)], ("AC", "F1"): [("THERM", 1.0)],
    ("AC", "E6"): [("PCB", 1.0)], ("AC", "H6"): [("FANM", 1.0)], ("AC", "L1"): [("R32", 0.9)],
    ("AC", "D1"): [("DRAIN", 0.35)], ("AC", "R1"): [("REMOTE", 0.55), ("RECV", 0.25)],
    ("RF", "E1"): [("THERM", 1.0)], ("RF", "E5"): [("COMP", 1.0)], ("RF", "F2"): [("EVAP", 1.0)],
    ("RF", "C1"): [("COND", 1.0)], ("RF", "N1"): [("FAN", 0.45)], ("RF", "D1"): [("SEAL", 0.75)],
    ("WM", "E1"): [("VALVE", 0.6)], ("WM", "E2"): [("PUMP", 1.0)], ("WM", "E3"): [("DAMPER", 0.35), ("BEARING", 0.15)],
    ("WM", "E4"): [("LOCK", 0.7)], ("WM", "E6"): [("MOTOR", 1.0)], ("WM", "F1"): [("PCB", 1.0)],
    ("WM", "C1"): [("CLUTCH", 1.0)], ("WM", "L1"): [("HOSE", 0.65)],
    ("TV", "P1"): [("PANEL", 1.0)], ("TV", "M1"): [("MAINBOARD", 1.0)], ("TV", "S1"): [("PSU", 1.0)],
    ("TV", "T1"): [("TUNER", 1.0)], ("TV", "A1"): [("SPEAKER", 0.4)], ("TV", "R1"): [("REMOTE", 0.7)],
    ("WH", "E1"): [("IGNITER", 1.0)], ("WH", "E2"): [("HEATER", 1.0)], ("WH", "E3"): [("TANK", 1.0)],
    ("WH", "E4"): [("HEX", 1.0)], ("WH", "E5"): [("SENSOR", 0.8)],
    ("RH", "M1"): [("MOTOR", 1.0)], ("RH", "P1"): [("PCB", 1.0)], ("RH", "I1"): [("IMPELLER", 1.0)],
    ("RH", "O1"): [("OILCUP", 0.7)],
}
CONSUMABLE_QTY = {"R32": (1, 2)}  # parts sometimes used two at a time
# The completed repairs whose parts are in the ledger: a sample — those of the units whose serial
# ends in one of these digits (a stable choice, whatever the ids) — and every order that waited
# for parts. (The others were repaired with parts outside the demo's ledger: it keeps the load
# quick.)
SAMPLE_DIGITS = ("1", "4", "7")
# A van carries the small parts (and the boards) of its technician's categories that the
# technician uses, at least this many a week; the big ones are fetched for the order.
VAN_FROM_RATE = 0.03
VAN_BOARDS = frozenset({"PCB", "MAINBOARD", "PSU"})

ADJUST_REASONS_LOSS = ["盘点盘亏：账实不符", "盘点盘亏：包装内缺件", "月度盘点：实物少于账面"]
ADJUST_REASONS_GAIN = ["盘点盘盈：上次收货漏登记", "月度盘点：实物多于账面"]
SCRAP_REASONS = ["运输途中破损，报废", "仓库受潮损坏，报废", "开箱检验不合格，报废"]
SCRAP_OLD_REASON = "旧件鉴定后报废"
EMERGENCY_REASON = "紧急采购（供应商直发）"
PURCHASE_REASON = "采购入库"
OPENING_REASON = "期初入库"
WARRANTY_REASONS = {
    "free_repair": "三包期内，免费更换", "exchange": "三包期内（多次维修），免费更换", "return": "三包期内，免费更换",
    "chargeable": "已过三包期，收费更换",
}

# ==================================================================== small helpers


class _Table:
    """The columns of a model, in the order the builder gives its values (``names``, by
    attname), then any other column with its default (a field added later keeps working)."""

    def __init__(self, model, names: list[str]):
        self.model = model
        fields = {f.attname: f for f in model._meta.concrete_fields}
        missing = [n for n in names if n not in fields]
        if missing:
            raise RuntimeError(f"demo parts: {model._meta.label} has no field {missing}")
        extra = [f for f in model._meta.concrete_fields
                 if f.attname not in names and not (f.primary_key and isinstance(f, models.AutoField))]
        for f in extra:
            if not f.has_default() and not f.null:
                raise RuntimeError(f"demo parts: {model._meta.label}.{f.attname} needs a value")
        self.names = list(names)
        self.extra_names = [f.attname for f in extra]
        self.extra = tuple(f.get_default() if f.has_default() else None for f in extra)
        self.table = model._meta.db_table
        self.columns = [fields[n].column for n in names] + [f.column for f in extra]


def _jsonable(v):
    """``records.audit._jsonable`` of the values the builder has."""
    if isinstance(v, dt.datetime):
        return (v if v.tzinfo is dt.UTC else v.astimezone(dt.UTC)).isoformat(timespec="microseconds")
    if isinstance(v, Decimal):
        return str(v)
    return v


class _Audit:
    """Audit entries written as ``audit_record_created_bulk`` writes them (one per object, the
    first of its chain), the hash put together as ``records.audit.entry_hash`` makes it (the
    first of each type is checked against ``entry_hash`` itself)."""

    COLUMNS = ("chain", "seq", "prev_hash", "hash", "at", "actor_id", "actor_label", "node_id", "object_type",
               "object_id", "action", "before", "after")

    def __init__(self, fmt: _Time):
        self.at = timezone.now()
        self.iso = self.at.astimezone(dt.UTC).isoformat(timespec="microseconds")
        self.at_param = fmt.ts(self.at)
        self.checked: set[str] = set()
        self.rows: list[tuple] = []

    def add(self, object_type: str, oid: int, node_id: int | None, action: str, after: dict) -> None:
        chain, object_id = f"{object_type}:{oid}", str(oid)
        after_json = _CANONICAL(after)
        body = (f'{{"action":"{action}","actor":null,"actor_label":"{SYSTEM}","after":{after_json},'
                f'"at":"{self.iso}","before":null,"chain":"{chain}","id":"{object_id}",'
                f'"node":{"null" if node_id is None else int(node_id)},"prev":"{GENESIS}","seq":1,'
                f'"type":"{object_type}"}}')
        h = hashlib.sha256(body.encode()).hexdigest()
        if object_type not in self.checked:
            exact = entry_hash(_AuditRow(chain=chain, seq=1, prev_hash=GENESIS, at=self.at, actor_id=None,
                                         actor_label=SYSTEM, node_id=node_id, object_type=object_type,
                                         object_id=object_id, action=action, before=None, after=after))
            if exact != h:
                raise RuntimeError(f"demo parts: the audit hash of {object_type} differs from entry_hash's")
            self.checked.add(object_type)
        self.rows.append((chain, 1, GENESIS, h, self.at_param, None, SYSTEM, node_id, object_type, object_id, action,
                          None, after_json))


# ==================================================================== the simulation's records


class _Transfer:
    __slots__ = ("id", "number", "src", "dst", "purpose", "defective", "status", "order", "note", "created_by",
                 "created_at", "shipped_at", "received_at", "lines", "request", "receiver")

    def __init__(self, **kw):
        self.lines = []
        self.request = None
        self.shipped_at = self.received_at = None
        self.status = TransferStatus.REQUESTED
        for k, v in kw.items():
            setattr(self, k, v)


class _Request:
    __slots__ = ("id", "order", "part", "qty", "status", "van", "source", "transfer", "free", "reason", "serial",
                 "old_serial", "old_returned", "user", "requested_at", "consumed_at",
                 # the simulation's
                 "kind", "unit", "unit_serial", "node", "t_done", "t_end", "end", "wait", "number", "created", "held")

    def __init__(self, **kw):
        self.status = RequestStatus.READY
        self.source = self.transfer = None
        self.serial = self.old_serial = ""
        self.old_returned = False
        self.requested_at = self.consumed_at = None
        self.held: list[str] = []  # the pieces of a serialised part reserved for it
        for k, v in kw.items():
            setattr(self, k, v)


# ==================================================================== entry points


def build_parts(*, seed: int, today: dt.date, now: dt.datetime, progress_stream=None) -> dict[str, int]:
    """Make the parts catalog, the warehouses and the movements of the six months of orders in
    the database (see the module's doc). Returns the rows written per model."""
    b = _Builder(seed=seed, today=today, now=now, progress_stream=progress_stream)
    return b.run()


_MODELS = (Movement, SerialItem, PartRequest, TransferLine, Transfer, Stock, Warehouse, Part.fits.through, Part)


def parts_reset(progress_stream=None) -> int:
    """Delete the parts data (ledger, transfers, requests, serials, stock, warehouses, the
    catalog) and whatever points at it, with plain DELETEs, children first. The audit trail is
    kept (so ids are never given out twice)."""
    seen = set(_MODELS)
    steps: list[tuple] = []
    for m in _MODELS:
        steps += _dependants(m, seen)
        steps.append((m, None))
    return delete_steps(steps, "清除配件数据", progress_stream)


# ==================================================================== the builder


class _Builder:
    def __init__(self, *, seed: int, today: dt.date, now: dt.datetime, progress_stream=None):
        self.seed = seed
        self.today = today
        self.now = now.astimezone(dt.UTC)
        self.stream = progress_stream
        self.tz = timezone.get_current_timezone()
        self.fmt = _Time()
        self.rng = random.Random(f"aftersales-demo-parts:{seed}")
        self.counts: dict[str, int] = {}

    def at(self, d: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        return (dt.datetime(d.year, d.month, d.day, hour, tzinfo=self.tz).astimezone(dt.UTC)
                + dt.timedelta(minutes=minute))

    def local_day(self, t: dt.datetime) -> dt.date:
        return t.astimezone(self.tz).date()

    def minutes(self, a: float, b: float) -> dt.timedelta:
        return dt.timedelta(seconds=int(self.rng.uniform(a, b) * 60))

    # ---------------------------------------------------------------- run

    def run(self) -> dict[str, int]:
        if not self._read_world():
            return {}
        self._catalog()
        self._warehouses()
        self._requests()
        self._plan_stock()
        self._simulate()
        self._write()
        return dict(self.counts)

    # ---------------------------------------------------------------- the world

    def _read_world(self) -> bool:
        nodes = list(Node.objects.order_by("code").values_list("id", "kind", "code", "name", "parent_id"))
        hq = [n for n in nodes if n[1] == NodeKind.HQ]
        if not hq:
            return False
        self.hq_node = hq[0][0]
        self.centre_nodes = [n for n in nodes if n[1] == NodeKind.CENTRE]
        self.outlet_nodes = [n for n in nodes if n[1] == NodeKind.OUTLET]
        self.node_parent = {n[0]: n[4] for n in nodes}
        self.node_name = {n[0]: n[3] for n in nodes}
        self.node_code = {n[0]: n[2] for n in nodes}

        managers: dict[tuple[str, int], int] = {}
        for role, node, user in RoleAssignment.objects.filter(
                role__in=[Role.HQ_MANAGER, Role.CENTRE_MANAGER, Role.OUTLET_MANAGER]).order_by("id").values_list(
                "role", "node_id", "user_id"):
            managers.setdefault((role, node), user)
        self.manager: dict[int, int | None] = {}
        for n, kind, *_rest in nodes:
            role = {NodeKind.HQ: Role.HQ_MANAGER, NodeKind.CENTRE: Role.CENTRE_MANAGER,
                    NodeKind.OUTLET: Role.OUTLET_MANAGER}.get(kind)
            self.manager[n] = managers.get((role, n))
        for n, *_rest in nodes:  # a node without its manager: the one above acts
            m, up = self.manager[n], self.node_parent[n]
            while m is None and up is not None:
                m, up = self.manager.get(up), self.node_parent.get(up)
            self.manager[n] = m

        tech_users = set(RoleAssignment.objects.filter(role=Role.TECHNICIAN).values_list("user_id", flat=True))
        self.techs = [e for e in Employee.objects.filter(user_id__in=tech_users, active=True).order_by(
            "employee_no").values_list("id", "employee_no", "name", "node_id", "user_id")]
        outlet_ids = {n[0] for n in self.outlet_nodes}
        self.techs = [t for t in self.techs if t[3] in outlet_ids]
        self.skills: dict[int, set[int]] = defaultdict(set)
        for e, c in Employee.skills.through.objects.values_list("employee_id", "category_id"):
            self.skills[e].add(c)

        self.cat_code = dict(Category.objects.values_list("id", "code"))
        self.models = list(ProductModel.objects.order_by("category__code", "code").values_list(
            "id", "code", "brand", "category_id"))
        self.main_parts: dict[int, set[str]] = defaultdict(set)
        for m, code in MainPart.objects.values_list("model_id", "code"):
            self.main_parts[m].add(code)
        self.fault_codes = {i: (cat, code, part, fc) for i, cat, code, part, fc in FaultCode.objects.values_list(
            "id", "category_id", "code", "part_code", "fault_category_id")}
        return True

    # ---------------------------------------------------------------- the catalog

    def _catalog(self) -> None:
        rng = self.rng
        by_cat: dict[int, list[tuple]] = defaultdict(list)
        for m in self.models:
            by_cat[m[3]].append(m)
        self.part_base = _id_base(Part)
        self.fit_base = _id_base(Part.fits.through)
        parts: list[list] = []  # id, code, name, name_en, category_id, main_part_code, uom, serialised, returnable,
        #                         unit_cost, active
        fits: list[tuple[int, int]] = []
        self.part_for: dict[tuple[int, str], int] = {}  # (model, kind) -> part
        self.kind_of: dict[int, Kind] = {}
        self.cost: dict[int, Decimal] = {}
        self.part_code: dict[int, str] = {}
        self.part_cat: dict[int, int] = {}
        self.part_models: dict[int, list[int]] = {}
        for cat_id in sorted(by_cat, key=lambda c: self.cat_code[c]):
            cat = self.cat_code[cat_id]
            models = by_cat[cat_id]
            brands = sorted({m[2] for m in models})
            for kind in KINDS.get(cat, []):
                if kind.scope == "model":
                    groups = [(f"{_brand_code(m[2])}{i:02d}", f"（{m[2]} {m[1]}）", f" ({m[1]})", [m])
                              for i, m in enumerate(models, start=1)]
                elif kind.scope == "brand":
                    groups = [(_brand_code(b), f"（{b}）", f" ({_brand_code(b)})", [m for m in models if m[2] == b])
                              for b in brands]
                else:
                    groups = [("GEN", "（通用）", " (universal)", models)]
                for suffix, label, label_en, fitted in groups:
                    pid = self.part_base + len(parts) + 1
                    lo, hi = kind.cost
                    cost = Decimal(f"{round(rng.uniform(lo, hi) * 2) / 2:.2f}")
                    main = kind.main if kind.main and any(kind.main in self.main_parts[m[0]] for m in fitted) else ""
                    code = f"{cat}-{kind.key}-{suffix}"
                    parts.append([pid, code, f"{kind.name}{label}", f"{kind.name_en}{label_en}", cat_id, main,
                                  kind.uom, kind.serialised, kind.returnable, cost, True])
                    self.kind_of[pid] = kind
                    self.cost[pid] = cost
                    self.part_code[pid] = code
                    self.part_cat[pid] = cat_id
                    self.part_models[pid] = [m[0] for m in fitted]
                    for m in fitted:
                        fits.append((pid, m[0]))
                        self.part_for[(m[0], kind.key)] = pid
        self.parts = parts
        self.fits = [(self.fit_base + i + 1, p, m) for i, (p, m) in enumerate(fits)]

    # ---------------------------------------------------------------- warehouses

    def _warehouses(self) -> None:
        base = _id_base(Warehouse)
        rows = []  # id, code, name, kind, node_id, holder_id, active

        def add(code, name, kind, node, holder=None) -> int:
            wid = base + len(rows) + 1
            rows.append((wid, code, name, kind, node, holder, True))
            return wid

        self.wh_hq = add("WH-HQ", "总部备件总库", WarehouseKind.HQ, self.hq_node)
        self.wh_centre = {n: add(f"WH-{code}", f"{name}备件库", WarehouseKind.CENTRE, n)
                          for n, _k, code, name, _p in self.centre_nodes}
        self.wh_outlet = {n: add(f"WH-{code}", f"{name}备件库", WarehouseKind.OUTLET, n)
                          for n, _k, code, name, _p in self.outlet_nodes}
        self.van_of: dict[int, int] = {}  # employee -> van
        self.tech_user: dict[int, int] = {}
        self.van_outlet: dict[int, int] = {}  # van -> outlet warehouse
        for e, no, name, node, user in self.techs:
            v = add(f"VAN-{no}", f"{name}（{no}）随车备件", WarehouseKind.VAN, node, e)
            self.van_of[e] = v
            self.tech_user[e] = user
            self.van_outlet[v] = self.wh_outlet[node]
        self.warehouses = rows
        self.wh_node = {r[0]: r[4] for r in rows}
        self.wh_kind = {r[0]: r[3] for r in rows}
        self.wh_holder_user = {self.van_of[e]: self.tech_user[e] for e, *_r in self.techs}
        # where each warehouse replenishes from and sends its old parts to
        self.supplier: dict[int, int] = {}
        for w in self.wh_centre.values():
            self.supplier[w] = self.wh_hq
        for n, w in self.wh_outlet.items():
            parent = self.node_parent[n]
            self.supplier[w] = self.wh_centre.get(parent, self.wh_hq)
        for v, o in self.van_outlet.items():
            self.supplier[v] = o

    def actor(self, w: int) -> int | None:
        """Who works a warehouse: the technician for a van, else the node's manager."""
        return self.wh_holder_user.get(w) or self.manager.get(self.wh_node[w])

    # ---------------------------------------------------------------- the orders' part requests

    def _requests(self) -> None:
        rng = self.rng
        van_of = self.van_of
        waits: dict[int, list[dt.datetime]] = {}
        resumes: dict[int, list[dt.datetime]] = defaultdict(list)
        for oid, action, frm, at in OrderEvent.objects.filter(
                action__in=["wait_parts", "resume"], order__type=OrderType.REPAIR).order_by(
                "order_id", "seq").values_list("order_id", "action", "from_status", "at"):
            if action == "wait_parts":
                waits.setdefault(oid, []).append(at)
            elif frm == Status.WAITING_PARTS:
                resumes[oid].append(at)
        done_statuses = {Status.COMPLETED, Status.CALLBACK, Status.CLOSED}
        repairs = WorkOrder.objects.filter(type=OrderType.REPAIR, unit__isnull=False, assignee__isnull=False)
        first = repairs.order_by("created_at").values_list("created_at", flat=True).first()
        self.start = (first or self.now - dt.timedelta(days=DEFAULT_DAYS)) - dt.timedelta(days=1)
        waited = OrderEvent.objects.filter(action="wait_parts").values("order_id")
        sample = Q()
        for d in SAMPLE_DIGITS:
            sample |= Q(unit__serial__endswith=d)
        rows = list(repairs.filter(Q(sample, status__in=done_statuses, fault_code__isnull=False) | Q(pk__in=waited))
                    .values_list("id", "number", "status", "unit_id", "unit__model_id", "unit__serial",
                                 "assignee_id", "node_id", "fault_code_id", "fault_category_id", "completed_at",
                                 "closed_at", "created_at", "warranty_free", "warranty_kind"))
        rows.sort(key=lambda r: (r[12], r[1]))  # by arrival (ids depend on what was deleted before)
        codes_of: dict[int, list[int]] = defaultdict(list)  # product category -> fault codes with a part
        for fid, (cat, code, _part, _fc) in sorted(self.fault_codes.items(), key=lambda x: (x[1][0], x[1][1])):
            if (self.cat_code.get(cat), code) in FAULT_PARTS:
                codes_of[cat].append(fid)
        model_cat = {m[0]: m[3] for m in self.models}
        reqs: list[_Request] = []
        for (oid, number, status, unit, model, userial, emp, node, fcode, fcat, completed, closed, created,
             free, wkind) in rows:
            van = van_of.get(emp)
            if van is None:
                continue
            wait = None
            if oid in waits:
                t_w = waits[oid][0]
                t_r = next((t for t in resumes.get(oid, ()) if t > t_w), None)
                wait = (t_w, t_r)
            completed_ok = status in done_statuses and completed is not None and fcode is not None
            if completed_ok and wait is not None and (wait[1] is None or wait[1] > completed):
                wait = None  # (a wait after the completion that counts cannot be: the order was reopened)
            if completed_ok:
                if wait is None and userial[-1:] not in SAMPLE_DIGITS:
                    continue
                end, t_end = "consume", completed
            elif wait is None or status in done_statuses:
                continue
            elif status == Status.CANCELLED:
                if closed is None or closed <= wait[0]:
                    continue
                end, t_end = "release", closed
            else:
                end, t_end = "open", None  # still waiting, or resumed: the part is for the next visit
            kind = None
            if fcode in self.fault_codes:
                cat, code, part_code, _fc = self.fault_codes[fcode]
                options = FAULT_PARTS.get((self.cat_code.get(cat), code))
                if options is None and part_code:
                    options = [(part_code, 1.0)]
                if options:
                    r = rng.random()
                    acc = 0.0
                    for k, p in options:
                        acc += p
                        if r < acc:
                            kind = k
                            break
                    if kind is None and wait is not None:
                        kind = options[0][0]  # it waited for a part: the likely one
            elif wait is not None:
                cat = model_cat[model]
                cands = [f for f in codes_of.get(cat, ()) if self.fault_codes[f][3] == fcat] or codes_of.get(cat, [])
                if cands:
                    f = cands[rng.randrange(len(cands))]
                    kind = FAULT_PARTS[(self.cat_code[cat], self.fault_codes[f][1])][0][0]
            if kind is None:
                continue
            part = self.part_for.get((model, kind))
            if part is None:
                continue
            lo_hi = CONSUMABLE_QTY.get(kind)
            qty = rng.randint(*lo_hi) if lo_hi else 1
            reqs.append(_Request(order=oid, number=number, part=part, qty=qty, van=van, user=self.tech_user[emp],
                                 free=free, reason=WARRANTY_REASONS.get(wkind or "", ""), kind=self.kind_of[part],
                                 unit=unit, unit_serial=userial, node=node, t_done=completed if completed_ok else None,
                                 t_end=t_end, end=end, wait=wait, created=created))
        self.reqs = reqs

    # ---------------------------------------------------------------- stock levels from the demand

    def _plan_stock(self) -> None:
        weeks = max((self.now - self.start).days / 7, 1.0)
        van_rate: dict[tuple[int, int], float] = defaultdict(float)
        outlet_rate: dict[tuple[int, int], float] = defaultdict(float)
        centre_rate: dict[tuple[int, int], float] = defaultdict(float)
        total_rate: dict[int, float] = defaultdict(float)
        for r in self.reqs:
            q = r.qty / weeks
            o = self.van_outlet[r.van]
            van_rate[(r.van, r.part)] += q
            outlet_rate[(o, r.part)] += q
            centre_rate[(self.supplier[o], r.part)] += q
            total_rate[r.part] += q
        all_parts = [p[0] for p in self.parts]
        self.params: dict[tuple[int, int], tuple[int, int]] = {}  # (warehouse, part) -> (reorder point, qty)
        self.rows_of: dict[int, list[int]] = defaultdict(list)  # the parts each warehouse reorders
        for w in self.wh_centre.values():
            for p in all_parts:
                rate = centre_rate.get((w, p), 0.0)
                s = math.ceil(rate * 8) + 2
                rp = max(1, math.ceil(rate * 3))
                self.params[(w, p)] = (rp, max(1, s - rp))
                self.rows_of[w].append(p)
        for w in self.wh_outlet.values():
            for p in all_parts:
                rate = outlet_rate.get((w, p), 0.0)
                s = math.ceil(rate * 7) + 1
                rp = math.ceil(rate * 2.5)
                self.params[(w, p)] = (rp, max(1, s - rp))
                self.rows_of[w].append(p)
        for e, *_r in self.techs:
            v = self.van_of[e]
            skills = self.skills.get(e, set())
            for p in all_parts:
                kind = self.kind_of[p]
                rate = van_rate.get((v, p), 0.0)
                if self.part_cat[p] in skills and (kind.van or kind.key in VAN_BOARDS) and rate >= VAN_FROM_RATE:
                    s = max(1, math.ceil(rate * 2.5 + 0.4))
                    rp = int(rate * 0.8)
                    self.params[(v, p)] = (rp, max(1, s - rp))
                    self.rows_of[v].append(p)
        self.hq_target = {p: math.ceil(total_rate.get(p, 0.0) * 8) + 3 for p in all_parts}
        # two common van parts the supplier cannot deliver for the last weeks
        common = sorted((p for p in all_parts if self.kind_of[p].van and total_rate.get(p, 0) > 0),
                        key=lambda p: (-total_rate[p], self.part_code[p]))[:12]
        self.short = set(self.rng.sample(common, min(2, len(common)))) if common else set()
        self.short_from = self.now - dt.timedelta(days=SUPPLY_SHORT_DAYS)

    # ================================================================ the simulation

    def _simulate(self) -> None:
        self.st: dict[tuple[int, int], list[int]] = {}
        self.last_at: dict[tuple[int, int], dt.datetime] = {}
        self.inbound: dict[tuple[int, int], int] = defaultdict(int)
        self.good: dict[tuple[int, int], collections.deque] = defaultdict(collections.deque)  # serials in stock
        self.old: dict[tuple[int, int], collections.deque] = defaultdict(collections.deque)  # old parts' serials
        self.serials: dict[tuple[int, str], list] = {}  # (part, serial) -> [state, warehouse, order, updated, node]
        self.serial_no: dict[int, int] = defaultdict(int)
        self.on_unit: dict[tuple[int, int], str] = {}  # (unit, part) -> the serial installed by a request
        self.mov: list[tuple] = []
        self.mid = _id_base(Movement)
        self.transfers: list[_Transfer] = []
        self.t_base = _id_base(Transfer)
        self.line_base = _id_base(TransferLine)
        self.n_lines = 0
        self.r_base = _id_base(PartRequest)
        self.n_reqs = 0
        self.done_reqs: list[_Request] = []
        self.old_at: dict[int, set[int]] = defaultdict(set)  # warehouse -> parts with old parts there
        self.day_seq: dict[dt.date, int] = defaultdict(int)
        self.seq_base = dict(TransferSequence.objects.values_list("day", "last"))  # numbers go on after them
        self.heap: list = []
        self.seq = 0

        start_day = self.local_day(self.start) - dt.timedelta(days=7)
        self.t_open = self.at(start_day, 9)
        self.push(self.t_open, self._opening, None)
        # the regular cycles, from the week after the first fill
        d = start_day + dt.timedelta(days=6)
        last_day = max(self.today, self.local_day(self.now))
        week = 0
        vans = sorted(self.van_outlet)
        outlets = sorted(self.wh_outlet.values())
        centres = sorted(self.wh_centre.values())
        while d <= last_day:
            wd = d.weekday()
            if wd == 0:  # Monday: the vans are topped up at their outlet
                week += 1
                for i, v in enumerate(vans):
                    self.push(self.at(d, 8, (i % 12) * 5), self._review, (v,))
                if week % 4 == 3:  # the old parts that came back are inspected and scrapped
                    for i, c in enumerate(centres):
                        self.push(self.at(d, 14, i * 10), self._scrap_old, (c,))
            elif wd == 1 and week % 4 == 1:  # every four weeks, Tuesday: the outlets order from their centre
                for i, o in enumerate(outlets):
                    self.push(self.at(d, 10, (i % 6) * 10), self._review, (o,))
            elif wd == 2 and week % 4 == 3:  # every four weeks, Wednesday: the centres order from headquarters
                for i, c in enumerate(centres):
                    self.push(self.at(d, 9, i * 15), self._review, (c,))
            elif wd == 3 and week % 2 == 1:  # every other Thursday: purchases arrive at headquarters
                self.push(self.at(d, 15), self._purchase, None)
            elif wd == 4 and week % 4 == 0:  # every four weeks, Friday: old parts go from the vans to the centre
                for i, v in enumerate(vans):
                    self.push(self.at(d, 17, (i % 6) * 5), self._return_old, (v,))
            d += dt.timedelta(days=1)
        # the requests
        for r in self.reqs:
            if r.wait is not None:
                deadline = r.wait[1] - dt.timedelta(minutes=10) if r.wait[1] is not None else None
                self.push(r.wait[0], self._request_remote, (r, deadline))
            else:
                plan = max(r.t_done - self.minutes(150, 240), r.created + dt.timedelta(minutes=1))
                self.push(min(plan, r.t_done - dt.timedelta(minutes=10)), self._plan_request, (r,))
        # count adjustments and scraps at outlets and vans
        rng = self.rng
        span = (self.now - self.t_open).total_seconds()
        stocked = sorted(w for w in (*outlets, *vans) if self.rows_of.get(w))
        for _ in range(max(4, len(stocked) // 5)):
            w = stocked[rng.randrange(len(stocked))]
            t = self.t_open + dt.timedelta(days=10) + dt.timedelta(seconds=rng.uniform(0, span - 11 * 86400))
            self.push(self.in_hours(t), self._adjust, (w, rng.random()))
        for _ in range(max(2, len(outlets) // 2)):
            w = outlets[rng.randrange(len(outlets))]
            t = self.t_open + dt.timedelta(days=10) + dt.timedelta(seconds=rng.uniform(0, span - 11 * 86400))
            self.push(self.in_hours(t), self._scrap_good, (w, rng.random()))

        total_days = max((self.now - self.t_open).days, 1)
        p = Progress(total_days, "配件流水", self.stream) if self.stream is not None else None
        next_day = self.t_open + dt.timedelta(days=1)
        heap, now = self.heap, self.now
        while heap and heap[0][0] <= now:
            t, _s, fn, args = heapq.heappop(heap)
            if p and t >= next_day:
                p.update((t - self.t_open).days)
                next_day = self.t_open + dt.timedelta(days=(t - self.t_open).days + 1)
            self.t = t
            fn(t, args)
        if p:
            p.update(total_days)
            p.finish()

    def push(self, t: dt.datetime, fn: Callable, args) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, fn, args))

    def in_hours(self, t: dt.datetime) -> dt.datetime:
        lt = t.astimezone(self.tz)
        if 9 <= lt.hour < 18:
            return t
        return self.at(lt.date() + dt.timedelta(days=1 if lt.hour >= 18 else 0), 9, self.rng.randrange(60))

    # ---------------------------------------------------------------- the ledger

    def mv(self, w: int, p: int, kind: str, don: int, dres: int, ddef: int, at: dt.datetime, actor,
           order=None, transfer=None, request=None, serial: str = "", reason: str = "") -> None:
        key = (w, p)
        s = self.st.get(key)
        if s is None:
            s = self.st[key] = [0, 0, 0]
        s[0] += don
        s[1] += dres
        s[2] += ddef
        if s[0] < 0 or s[1] < 0 or s[2] < 0 or s[1] > s[0]:
            raise RuntimeError(f"demo parts: {kind} leaves {key} at {s}")
        self.mid += 1
        self.mov.append((self.mid, w, p, kind, don, dres, ddef, s[0], s[1], s[2], self.cost[p], at, actor,
                         order, transfer, request, serial, reason))
        self.last_at[key] = at
        if ddef > 0:
            self.old_at[w].add(p)

    def avail(self, w: int, p: int) -> int:
        s = self.st.get((w, p))
        return s[0] - s[1] if s else 0

    def new_serial(self, p: int, w: int, at: dt.datetime) -> str:
        self.serial_no[p] += 1
        sn = f"{self.part_code[p].replace('-', '')}{at.astimezone(self.tz):%y%m}{self.serial_no[p]:05d}"
        self.serials[(p, sn)] = [SerialState.IN_STOCK, w, None, at, self.wh_node[w]]
        return sn

    def receive(self, w: int, p: int, qty: int, at: dt.datetime, reason: str) -> None:
        self.mv(w, p, MovementKind.RECEIVE, qty, 0, 0, at, self.actor(w), reason=reason)
        if self.kind_of[p].serialised:
            self.good[(w, p)].extend(self.new_serial(p, w, at) for _ in range(qty))

    def number(self, at: dt.datetime) -> str:
        """``services.next_transfer_number``'s: ``DB`` + the day + five digits, going on after
        the day's last number (``_write`` moves the day's sequence on)."""
        day = self.local_day(at)
        self.day_seq[day] += 1
        return f"DB{day:%Y%m%d}{self.seq_base.get(day, 0) + self.day_seq[day]:05d}"

    def transfer(self, src: int, dst: int, purpose: str, at: dt.datetime, *, defective: bool = False, order=None,
                 note: str = "", created_by=None) -> _Transfer:
        tr = _Transfer(id=self.t_base + len(self.transfers) + 1, number=self.number(at), src=src, dst=dst,
                       purpose=purpose, defective=defective, order=order, note=note,
                       created_by=created_by if created_by is not None else self.actor(dst), created_at=at,
                       receiver=self.actor(dst))
        self.transfers.append(tr)
        return tr

    def line(self, tr: _Transfer, p: int, qty: int) -> None:
        """A line of a transfer. Good parts are reserved at the source when requested (a
        serialised part: its first pieces there); old parts leave when shipped."""
        self.n_lines += 1
        serials: list[str] = []
        tr.lines.append([self.line_base + self.n_lines, p, qty, serials])
        if tr.defective:
            return
        self.mv(tr.src, p, MovementKind.RESERVE, 0, qty, 0, tr.created_at, tr.created_by, order=tr.order,
                transfer=tr.id, request=tr.request.id if tr.request else None, reason=f"调拨单 {tr.number}")
        self.inbound[(tr.dst, p)] += qty
        if self.kind_of[p].serialised:
            serials += self.hold(tr.src, p, qty, tr.order, tr.created_at)

    def hold(self, w: int, p: int, qty: int, order, at: dt.datetime) -> list[str]:
        """The first ``qty`` free pieces of a serialised part at ``w``, reserved (for ``order``)."""
        pool = self.good[(w, p)]
        out = [pool.popleft() for _ in range(min(qty, len(pool)))]
        for sn in out:
            item = self.serials[(p, sn)]
            item[0], item[2], item[3] = SerialState.RESERVED, order, at
        return out

    def unhold(self, w: int, p: int, serials: list[str], at: dt.datetime) -> None:
        pool = self.good[(w, p)]
        for sn in serials:
            item = self.serials[(p, sn)]
            item[0], item[1], item[2], item[3], item[4] = SerialState.IN_STOCK, w, None, at, self.wh_node[w]
            pool.append(sn)

    def ship(self, t: dt.datetime, tr: _Transfer) -> None:
        if tr.status != TransferStatus.REQUESTED:
            return
        tr.status, tr.shipped_at = TransferStatus.SHIPPED, t
        actor = self.actor(tr.src)
        for ln in tr.lines:
            _lid, p, qty, serials = ln
            if tr.defective:
                self.mv(tr.src, p, MovementKind.TRANSFER_OUT, 0, 0, -qty, t, actor, transfer=tr.id, reason=tr.number)
                pool = self.old[(tr.src, p)]
                for _ in range(min(qty, len(pool))):
                    serials.append(pool.popleft())
            else:
                self.mv(tr.src, p, MovementKind.TRANSFER_OUT, -qty, -qty, 0, t, actor, order=tr.order,
                        transfer=tr.id, reason=tr.number)
            for sn in serials:
                item = self.serials[(p, sn)]
                if not tr.defective:
                    item[0] = SerialState.IN_TRANSIT
                item[1], item[3] = None, t

    def arrive(self, t: dt.datetime, tr: _Transfer) -> None:
        if tr.status != TransferStatus.SHIPPED:
            return
        tr.status, tr.received_at = TransferStatus.RECEIVED, t
        actor = tr.receiver
        req = tr.request
        for _lid, p, qty, serials in tr.lines:
            if tr.defective:
                self.mv(tr.dst, p, MovementKind.TRANSFER_IN, 0, 0, qty, t, actor, transfer=tr.id, reason=tr.number)
                pool = self.old[(tr.dst, p)]
                for sn in serials:
                    pool.append(sn)
                    item = self.serials[(p, sn)]
                    item[1], item[3], item[4] = tr.dst, t, self.wh_node[tr.dst]
            else:
                self.mv(tr.dst, p, MovementKind.TRANSFER_IN, qty, 0, 0, t, actor, order=tr.order, transfer=tr.id,
                        reason=tr.number)
                self.inbound[(tr.dst, p)] -= qty
                self.unhold(tr.dst, p, serials, t)
        if req is not None and req.status == RequestStatus.IN_TRANSIT:
            if req.end == "release" and req.t_end <= t:  # cancelled on the way: it joins the van's stock
                req.status = RequestStatus.RELEASED
                return
            self.mv(req.van, req.part, MovementKind.RESERVE, 0, req.qty, 0, t, req.user, order=req.order,
                    request=req.id, transfer=tr.id, reason="工单用件")
            req.status = RequestStatus.READY
            if req.kind.serialised:
                req.held = self.hold(req.van, req.part, req.qty, req.order, t)

    def schedule(self, tr: _Transfer, ship: dt.datetime, arrive: dt.datetime) -> None:
        self.push(ship, lambda t, a: self.ship(t, a), tr)
        self.push(arrive, lambda t, a: self.arrive(t, a), tr)

    # ---------------------------------------------------------------- opening and replenishment

    def _opening(self, t: dt.datetime, _args) -> None:
        """The stock counted when the ledger started (期初库存): every warehouse at its level."""
        for p, qty in sorted(self.hq_target.items()):
            self.receive(self.wh_hq, p, qty, t, OPENING_REASON)
        for i, w in enumerate(sorted(self.rows_of)):
            at = t + dt.timedelta(minutes=1 + i % 60)
            for p in self.rows_of[w]:
                rp, rq = self.params[(w, p)]
                self.receive(w, p, rp + rq, at, OPENING_REASON)

    def _review(self, t: dt.datetime, args) -> None:
        """A replenishment review of one warehouse: every part at or below its reorder point is
        ordered up to its level from the tier above, as far as that has it."""
        (w,) = args
        src = self.supplier[w]
        tr = None
        for p in self.rows_of.get(w, ()):
            rp, rq = self.params[(w, p)]
            position = self.avail(w, p) + self.inbound[(w, p)]
            if position > rp:
                continue
            want = rp + rq - position
            take = min(want, self.avail(src, p))
            if take <= 0:
                continue
            if tr is None:
                tr = self.transfer(src, w, TransferPurpose.REPLENISH, t, note="补货（低于补货点）")
            self.line(tr, p, take)
        if tr is None:
            return
        kind = self.wh_kind[w]
        if kind == WarehouseKind.VAN:
            ship = t + self.minutes(15, 40)
            arrive = ship + self.minutes(5, 30)
        elif kind == WarehouseKind.OUTLET:
            ship = self.at(self.local_day(t), 16, self.rng.randrange(50))
            arrive = self.at(self.local_day(t) + dt.timedelta(days=2), 10, self.rng.randrange(240))
        else:
            ship = self.at(self.local_day(t) + dt.timedelta(days=1), 11, self.rng.randrange(120))
            arrive = self.at(self.local_day(t) + dt.timedelta(days=5), 10, self.rng.randrange(180))
        self.schedule(tr, max(ship, t + dt.timedelta(minutes=5)), max(arrive, t + dt.timedelta(minutes=10)))

    def _purchase(self, t: dt.datetime, _args) -> None:
        """Purchases received at headquarters: every part below half its level, back to it (not
        the parts the supplier is short of)."""
        for p in sorted(self.hq_target):
            if p in self.short and t >= self.short_from:
                continue
            a = self.avail(self.wh_hq, p)
            target = self.hq_target[p]
            if a * 2 <= target:
                self.receive(self.wh_hq, p, target - a, t, PURCHASE_REASON)

    # ---------------------------------------------------------------- the orders' requests

    def _new_request(self, r: _Request, t: dt.datetime) -> None:
        self.n_reqs += 1
        r.id = self.r_base + self.n_reqs
        r.requested_at = t
        self.done_reqs.append(r)

    def _plan_request(self, t: dt.datetime, args) -> None:
        """A few hours before the repair: from the van when it has the part, else fetched."""
        (r,) = args
        if self.avail(r.van, r.part) >= r.qty:
            self.push(r.t_done - self.minutes(3, 9), self._van_request, (r,))
        else:
            self._request_remote(t, (r, r.t_done - dt.timedelta(minutes=20)))

    def _van_request(self, t: dt.datetime, args) -> None:
        (r,) = args
        if self.avail(r.van, r.part) < r.qty:  # taken meanwhile: fetched from the outlet at once
            self._request_remote(t, (r, r.t_done - dt.timedelta(seconds=30)))
            return
        self._new_request(r, t)
        r.source, r.status = r.van, RequestStatus.READY
        self.mv(r.van, r.part, MovementKind.RESERVE, 0, r.qty, 0, t, r.user, order=r.order, request=r.id,
                reason=f"工单 {r.number} 用件")
        if r.kind.serialised:
            r.held = self.hold(r.van, r.part, r.qty, r.order, t)
        self._finish_later(r)

    def _request_remote(self, t: dt.datetime, args) -> None:
        """The nearest stock that has the part (outlet, centre, headquarters; bought at once
        when none has), sent to the van with an order transfer that arrives by ``deadline``."""
        r, deadline = args
        self._new_request(r, t)
        outlet = self.van_outlet[r.van]
        chain = [outlet, self.supplier[outlet], self.wh_hq]
        src = next((w for w in chain if self.avail(w, r.part) >= r.qty), None)
        if src is None:
            src = self.wh_hq
            self.receive(src, r.part, r.qty - self.avail(src, r.part), t, EMERGENCY_REASON)
        r.source, r.status = src, RequestStatus.IN_TRANSIT
        tr = self.transfer(src, r.van, TransferPurpose.ORDER, t, order=r.order, note=f"工单 {r.number} 用件",
                           created_by=r.user)
        tr.request = r
        tr.receiver = r.user
        r.transfer = tr.id
        self.line(tr, r.part, r.qty)
        kind = self.wh_kind[src]
        if kind == WarehouseKind.OUTLET:
            ship = t + self.minutes(20, 90)
            arrive = ship + self.minutes(30, 120)
        elif kind == WarehouseKind.CENTRE:
            ship = t + self.minutes(120, 480)
            arrive = ship + self.minutes(18 * 60, 40 * 60)
        else:
            ship = t + self.minutes(240, 1200)
            arrive = ship + self.minutes(30 * 60, 60 * 60)
        if deadline is not None and arrive >= deadline:
            room = max((deadline - t).total_seconds(), 3.0)
            ship = t + dt.timedelta(seconds=room / 3)
            arrive = t + dt.timedelta(seconds=room * 2 / 3)
        elif r.end == "open" and r.wait is not None and r.wait[1] is None:
            # still waiting for it: on its way (its arrival would have resumed the order)
            arrive = max(arrive, self.now + dt.timedelta(hours=2))
        self.schedule(tr, ship, arrive)
        self._finish_later(r)

    def _finish_later(self, r: _Request) -> None:
        if r.end == "consume":
            self.push(r.t_done, self._consume, (r,))
        elif r.end == "release":
            self.push(r.t_end, self._release, (r,))

    def _consume(self, t: dt.datetime, args) -> None:
        """The repair: the part leaves the van into the unit; the old one comes back."""
        (r,) = args
        if r.status != RequestStatus.READY:  # (cannot happen: the transfer arrives first)
            raise RuntimeError(f"demo parts: request of order {r.number} not ready at its repair")
        p = r.part
        serial = ""
        if r.held:
            serial = r.held[0]
            for sn in r.held:
                item = self.serials[(p, sn)]
                item[0], item[1], item[2], item[3], item[4] = SerialState.INSTALLED, None, r.order, t, r.node
        self.mv(r.van, p, MovementKind.CONSUME, -r.qty, -r.qty, 0, t, r.user, order=r.order, request=r.id,
                serial=serial, reason=f"工单 {r.number} 维修用件")
        r.status, r.consumed_at, r.serial = RequestStatus.CONSUMED, t, serial
        if self.kind_of[p].returnable:
            old = ""
            if self.kind_of[p].serialised:
                old = self.on_unit.get((r.unit, p)) or f"{r.unit_serial}-{self.kind_of[p].key}"
                item = self.serials.get((p, old))
                if item is None:
                    item = self.serials[(p, old)] = [None, None, None, None, None]
                item[0], item[1], item[2], item[3], item[4] = SerialState.DEFECTIVE, r.van, r.order, t, r.node
                self.old[(r.van, p)].append(old)
            self.mv(r.van, p, MovementKind.DEFECTIVE_RETURN, 0, 0, r.qty, t, r.user, order=r.order, request=r.id,
                    serial=old, reason=f"工单 {r.number} 旧件返还")
            r.old_serial, r.old_returned = old, True
        if serial:
            self.on_unit[(r.unit, p)] = serial

    def _release(self, t: dt.datetime, args) -> None:
        """The order was cancelled while waiting: its reservation is let go where it is."""
        (r,) = args
        if r.status == RequestStatus.READY:
            self.mv(r.van, r.part, MovementKind.RELEASE, 0, -r.qty, 0, t, r.user, order=r.order, request=r.id,
                    reason=f"工单 {r.number} 已取消，释放配件")
            self.unhold(r.van, r.part, r.held, t)
            r.held = []
        elif r.status == RequestStatus.IN_TRANSIT:
            tr = self.transfers[r.transfer - self.t_base - 1]
            if tr.status != TransferStatus.REQUESTED:
                return  # on the way: released when it arrives (``arrive``)
            tr.status = TransferStatus.CANCELLED
            self.mv(tr.src, r.part, MovementKind.RELEASE, 0, -r.qty, 0, t, r.user, order=r.order, transfer=tr.id,
                    request=r.id, reason=f"取消调拨单 {tr.number}")
            for ln in tr.lines:
                self.unhold(tr.src, ln[1], ln[3], t)
            tr.note = f"{tr.note}；工单已取消"
            self.inbound[(r.van, r.part)] -= r.qty
        r.status = RequestStatus.RELEASED

    # ---------------------------------------------------------------- old parts, counts and scrap

    def _return_old(self, t: dt.datetime, args) -> None:
        (w,) = args
        parts = sorted(p for p in self.old_at.pop(w, ()) if self.st[(w, p)][2] > 0)
        if not parts:
            return
        dst = self.supplier[self.supplier[w]] if self.wh_kind[w] == WarehouseKind.VAN else self.supplier[w]
        tr = self.transfer(w, dst, TransferPurpose.RETURN, t, defective=True, note="旧件返回服务中心",
                           created_by=self.actor(w))
        for p in parts:
            self.line(tr, p, self.st[(w, p)][2])
        self.ship(t, tr)
        arrive = self.at(self.local_day(t) + dt.timedelta(days=4), 10, self.rng.randrange(180))
        self.push(arrive, lambda tt, a: self.arrive(tt, a), tr)

    def _scrap_old(self, t: dt.datetime, args) -> None:
        (w,) = args
        actor = self.actor(w)
        for p in sorted(self.old_at.pop(w, ())):
            s = self.st[(w, p)]
            if s[2] <= 0:
                continue
            if self.kind_of[p].serialised:
                pool = self.old[(w, p)]
                while pool:
                    item = self.serials[(p, pool.popleft())]
                    item[0], item[1], item[3] = SerialState.SCRAPPED, w, t
            self.mv(w, p, MovementKind.SCRAP, 0, 0, -s[2], t, actor, reason=SCRAP_OLD_REASON)

    def _adjust(self, t: dt.datetime, args) -> None:
        w, r = args
        parts = [p for p in self.rows_of.get(w, ()) if not self.kind_of[p].serialised]
        if not parts:
            return
        p = parts[int(r * len(parts))]
        if self.avail(w, p) > 0 and r < 0.7:
            self.mv(w, p, MovementKind.ADJUST, -1, 0, 0, t, self.actor(w),
                    reason=ADJUST_REASONS_LOSS[int(r * 10) % len(ADJUST_REASONS_LOSS)])
        else:
            self.mv(w, p, MovementKind.ADJUST, 1, 0, 0, t, self.actor(w),
                    reason=ADJUST_REASONS_GAIN[int(r * 10) % len(ADJUST_REASONS_GAIN)])

    def _scrap_good(self, t: dt.datetime, args) -> None:
        w, r = args
        parts = [p for p in self.rows_of.get(w, ()) if self.avail(w, p) > 0]
        if not parts:
            return
        p = parts[int(r * len(parts))]
        serial = ""
        if self.kind_of[p].serialised:
            pool = self.good[(w, p)]
            serial = pool.popleft()
            item = self.serials[(p, serial)]
            item[0], item[1], item[3] = SerialState.SCRAPPED, w, t
        self.mv(w, p, MovementKind.SCRAP, -1, 0, 0, t, self.actor(w), serial=serial,
                reason=SCRAP_REASONS[int(r * 10) % len(SCRAP_REASONS)])

    # ================================================================ writing

    def _write(self) -> None:
        fmt = self.fmt
        audit = _Audit(fmt)
        hq_node = self.hq_node
        wh_node = self.wh_node
        tables: list[tuple[_Table, list]] = []

        def add(model, names: list[str], rows: Iterable, *, node_of=None, action: str = AUDIT_ACTION,
                more: Callable | None = None) -> None:
            """Rows of plain values (aware datetimes, Decimals, lists, choices) in ``names``'
            order, to the database's form; with ``node_of``, an audit entry each with the row's
            state (and what ``more(row)`` adds to it)."""
            t = _Table(model, names)
            fields = _fields(model, t)
            attnames = t.names + t.extra_names
            choice = [i for i, f in enumerate(fields) if f.choices]
            special = [i for i, f in enumerate(fields) if isinstance(f, models.DateTimeField | models.DecimalField)]
            conv = [(i, c) for i, c in enumerate(_converter(f, fmt) for f in fields) if c is not None]
            object_type = model._meta.label_lower
            out = []
            n = len(names)
            for r in rows:
                vals = list(r[:n])
                vals += t.extra
                for i in choice:
                    vals[i] = _plain(vals[i])
                if node_of is not None:
                    snap = dict(zip(attnames, vals, strict=True))
                    for i in special:
                        snap[attnames[i]] = _jsonable(vals[i])
                    if more is not None:
                        snap.update(more(r))
                    audit.add(object_type, vals[0], node_of(r), action, snap)
                for i, c in conv:
                    vals[i] = c(vals[i])
                out.append(vals)
            tables.append((t, out))

        add(Part, ["id", "code", "name", "name_en", "category_id", "main_part_code", "uom", "serialised", "returnable",
                   "unit_cost", "active"], self.parts, node_of=lambda _r: hq_node, action=CREATE_ACTION)
        add(Part.fits.through, ["id", "part_id", "productmodel_id"], self.fits, node_of=lambda _r: hq_node,
            action=CREATE_ACTION)
        add(Warehouse, ["id", "code", "name", "kind", "node_id", "holder_id", "active"], self.warehouses,
            node_of=lambda r: r[4], action=CREATE_ACTION)

        stock_base = _id_base(Stock)
        stock = []
        for i, key in enumerate(sorted(set(self.st) | set(self.params)), start=1):
            on, res, dfc = self.st.get(key, (0, 0, 0))
            rp, rq = self.params.get(key, (None, None))
            stock.append((stock_base + i, key[0], key[1], on, res, dfc, rp, rq, self.last_at.get(key, self.t_open)))
        add(Stock, ["id", "warehouse_id", "part_id", "on_hand", "reserved", "defective", "reorder_point", "reorder_qty",
                    "updated_at"], stock, node_of=lambda r: wh_node[r[1]])

        # a transfer's entry holds its lines (they are written with it and never change alone)
        transfers = [(tr.id, tr.number, tr.src, tr.dst, tr.purpose, tr.defective, tr.status, tr.order, tr.note,
                      tr.created_by, tr.created_at, tr.shipped_at, tr.received_at, tr.lines) for tr in self.transfers]
        add(Transfer, ["id", "number", "source_id", "destination_id", "purpose", "defective", "status", "order_id",
                       "note", "created_by_id", "created_at", "shipped_at", "received_at"], transfers,
            node_of=lambda r: wh_node[r[2]],
            more=lambda r: {"lines": [{"part_id": p, "qty": q, "serials": sn} for _i, p, q, sn in r[13]]})
        add(TransferLine, ["id", "transfer_id", "part_id", "qty", "serials"],
            [(lid, tr.id, p, qty, serials) for tr in self.transfers for lid, p, qty, serials in tr.lines])

        cost = self.cost
        add(PartRequest, ["id", "order_id", "part_id", "qty", "status", "van_id", "source_id", "transfer_id", "free",
                          "warranty_reason", "serial", "old_serial", "old_returned", "unit_cost", "requested_by_id",
                          "requested_at", "consumed_at"],
            [(r.id, r.order, r.part, r.qty, r.status, r.van, r.source, r.transfer, r.free, r.reason[:200], r.serial,
              r.old_serial, r.old_returned, cost[r.part], r.user, r.requested_at, r.consumed_at, r.node)
             for r in self.done_reqs], node_of=lambda r: r[17])

        serial_base = _id_base(SerialItem)
        add(SerialItem, ["id", "part_id", "serial", "warehouse_id", "state", "order_id", "updated_at"],
            [(serial_base + i, p, sn, v[1], v[0], v[2], v[3], v[4] or hq_node)
             for i, ((p, sn), v) in enumerate(self.serials.items(), start=1)], node_of=lambda r: r[7])

        mov_table = _Table(Movement, ["id", "warehouse_id", "part_id", "kind", "on_hand_delta", "reserved_delta",
                                      "defective_delta", "on_hand_after", "reserved_after", "defective_after",
                                      "unit_cost", "at", "actor_id", "order_id", "transfer_id", "request_id", "serial",
                                      "reason"])
        extra = mov_table.extra
        ts, seen = _db_ts(self.fmt), {}
        movements = []
        for m in self.mov:
            at = m[11]
            text = seen.get(at)
            if text is None:
                text = seen[at] = ts(at)
            movements.append((*m[:11], text, *m[12:], *extra))
        audit_table = _Table(AuditEntry, list(_Audit.COLUMNS))
        entries = [r + audit_table.extra for r in audit.rows] if audit_table.extra else audit.rows
        all_tables = [*tables, (mov_table, movements), (audit_table, entries)]
        total = sum(len(rows) for _t, rows in all_tables)
        p = Progress(total, "配件数据", self.stream) if self.stream is not None else None
        with indexes_dropped([t.table for t, _r in all_tables if t.model is not AuditEntry]), \
                connection.cursor() as cur:
            for t, rows in all_tables:
                sql = f"INSERT INTO {t.table} ({', '.join(t.columns)}) VALUES ({', '.join(['%s'] * len(t.columns))})"
                for i in range(0, len(rows), BATCH):
                    chunk = rows[i:i + BATCH]
                    cur.executemany(sql, chunk)
                    if p:
                        p.advance(len(chunk))
                self.counts[t.model._meta.label] = len(rows)
            table = TransferSequence._meta.db_table
            cur.executemany(f"INSERT INTO {table} (day, last) VALUES (%s, %s) "
                            f"ON CONFLICT (day) DO UPDATE SET last = excluded.last",
                            [(fmt.day(d), self.seq_base.get(d, 0) + n) for d, n in sorted(self.day_seq.items())])
            if connection.vendor != "sqlite":  # SQLite's AUTOINCREMENT follows the explicit ids
                for sql in connection.ops.sequence_reset_sql(no_style(), list(_MODELS)):
                    cur.execute(sql)
        if p:
            p.finish()


def _plain(v):
    """Enumeration members as the plain strings they stand for."""
    return v.value if isinstance(v, enum.Enum) else v


def _fields(model, t: _Table) -> list:
    by_att = {f.attname: f for f in model._meta.concrete_fields}
    return [by_att[n] for n in t.names + t.extra_names]


def _db_ts(fmt: _Time) -> Callable:
    """``_Time.ts``, quicker for the builder's datetimes (all in UTC): on SQLite the text
    Django stores."""
    if not fmt.sqlite:
        return fmt.ts

    def ts(v: dt.datetime | None):
        if v is None:
            return None
        return v.isoformat(" ")[:-6] if v.tzinfo is dt.UTC else fmt.ts(v)

    return ts


def _converter(f, fmt: _Time):
    if isinstance(f, models.DateTimeField):
        return _db_ts(fmt)
    if isinstance(f, models.JSONField):
        return lambda v: None if v is None else _JSON(v) if v else "[]" if isinstance(v, list) else _JSON(v)
    return None


def _brand_code(brand: str) -> str:
    from aftersales.web.management.commands.demo import BRAND_CODES

    return BRAND_CODES.get(brand) or "".join(ch for ch in brand.upper() if ch.isalnum())[:2] or "XX"

