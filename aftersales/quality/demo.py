"""Demo data of service quality, built in bulk and deterministically (``--seed``) on top of the
demo orders, their surveys and service costs (so it runs after the charges' demo):

- the service-norm checklist answered at the completion of every completed order with a visit
  (``NormCheck``): about 93 % with every item met, the rest missing one or two items (the
  often-skipped ones — shoe covers, cleaning up, punctuality — more often); each technician has
  a failure rate of their own, a few clearly worse than the others;
- sales per outlet and month (``NodeSales``) for the months of the orders, set from the service
  cost of the outlet's orders so that cost ÷ sales lands between 6 % and 10 % at most outlets and
  between 10 % and 12 % at a few;
- units sold per model and month (``ModelSales``) from the purchase dates of the demo's units,
  scaled up, with a factor per model, so that repairs per 1,000 units differ by model;
- a handful of targets of nodes' own (a centre stricter on satisfaction, an outlet on response
  time, …);
- then the facts and pre-aggregates (``facts.rebuild``), and on them ~15 improvement actions in
  every state, raised from a figure, a complaint or a survey analysis, with their 5-why answers,
  a few fault trees, follow-up notes, and the baseline of the indicator they target. Two of them
  show an effect: the outlet whose norm compliance and the outlet whose cost share they address
  do better after the action was done.

Writes are ``executemany`` of plain tuples (the checklists) and bulk inserts; every step prints
its time. The small tables get ``demo.create`` audit entries; the checklists, like the service
costs, do not. After the rebuild the refresh state is set so that the periodic refresh finds
nothing to redo: the load is one transaction, so nothing else committed meanwhile.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.db.models import Avg, Count
from django.db.models.functions import TruncMonth
from django.utils import timezone

from aftersales.catalog.models import ProductModel
from aftersales.core.progress import Progress
from aftersales.customers.models import Unit
from aftersales.feedback.models import Survey
from aftersales.org.models import Node, NodeKind, RoleAssignment
from aftersales.org.roles import Role
from aftersales.records.audit import audit_record_created_bulk
from aftersales.tickets.models import OrderType, WorkOrder

from . import facts
from .models import (
    Action,
    ActionNote,
    ActionSequence,
    ActionSource,
    ActionStatus,
    Aggregate,
    ModelSales,
    NodeSales,
    NormCheck,
    NormItem,
    OrderFact,
    RefreshState,
    Report,
    Target,
)

AUDIT_ACTION = "demo.create"
BATCH = 2000

# ---------------------------------------------------------------- the checklist

FAIL_RATE = 0.07            # a technician's chance of missing an item, times their own factor
TWO_MISSED = 0.25           # of the failed checklists, this share misses two items
# How often each item is the one missed (items not listed: 1).
MISS_WEIGHT = {"SHOE_COVERS": 3.0, "CLEAN_UP": 2.5, "ON_TIME": 2.2, "EXPLAIN": 2.0, "ADVICE": 1.5,
               "OLD_PARTS": 1.0, "DRESS": 0.8, "TEST_RUN": 0.5}
MISS_NOTE = {"SHOE_COVERS": "鞋套用完，未铺防护垫", "CLEAN_UP": "客户表示自行清理现场", "ON_TIME": "前一单延误，迟到约半小时",
             "EXPLAIN": "客户赶时间，未详细说明收费", "OLD_PARTS": "旧件未交客户确认"}
# Used only where the checklist of the migration is missing (a database migrated without it).
DEFAULT_ITEMS = [("DRESS", "着装整洁，佩戴工牌"), ("SHOE_COVERS", "使用鞋套与防护垫"), ("ON_TIME", "按预约时间到达"),
                 ("EXPLAIN", "向客户说明故障原因与收费标准"), ("CLEAN_UP", "维修后清理现场"), ("TEST_RUN", "试机演示正常"),
                 ("ADVICE", "讲解使用与保养注意事项"), ("OLD_PARTS", "旧件交客户确认或按规定回收")]

# ---------------------------------------------------------------- sales

SHARE_USUAL = (6.0, 9.4)    # cost ÷ sales in %, at most outlets …
SHARE_HIGH = (10.4, 11.8)   # … and at a few
HIGH_OUTLETS = 3
SHARE_AFTER_FIX = 8.6       # the outlet whose cost action was done: from the month after
AVG_COST = Decimal("118")   # yuan per order, where an outlet's month has no cost yet
UNITS_PER_DEMO_UNIT = 150   # units sold for every unit in the customer file

# ---------------------------------------------------------------- the improvement actions

# (key, days ago raised, days to the due date, status, days ago done, days ago verified).
# "fix_norm" and "fix_cost" are the two whose effect the data shows.
TIMELINE = {
    "fix_cost": (128, 45, ActionStatus.VERIFIED, 95, 40),
    "fix_norm": (118, 30, ActionStatus.DONE, 88, None),
    "ftf": (124, 40, ActionStatus.VERIFIED, 92, 35),
    "repeat": (100, 60, ActionStatus.IN_PROGRESS, None, None),
    "response": (40, 30, ActionStatus.OPEN, None, None),
    "cycle": (55, 30, ActionStatus.IN_PROGRESS, None, None),
    "resolve48": (70, 80, ActionStatus.IN_PROGRESS, None, None),
    "model": (45, 60, ActionStatus.IN_PROGRESS, None, None),
    "complaint_rate": (110, 30, ActionStatus.CANCELLED, None, None),
    "complaint_late": (20, 14, ActionStatus.IN_PROGRESS, None, None),
    "complaint_repeat": (62, 21, ActionStatus.DONE, 41, None),
    "complaint_new": (5, 10, ActionStatus.OPEN, None, None),
    "survey_attitude": (75, 30, ActionStatus.DONE, 48, None),
    "survey_tech": (30, 21, ActionStatus.IN_PROGRESS, None, None),
    "survey_centre": (10, 45, ActionStatus.OPEN, None, None),
}

FIVE_WHYS = {
    "fix_cost": ["为什么服务成本占比超标？上门次数多、配件成本高", "为什么上门次数多？首次上门未带齐配件，二次上门比例高",
                 "为什么未带齐配件？派工时未根据故障描述预判所需配件", "为什么未预判？客服受理时故障信息记录不完整",
                 "为什么记录不完整？受理话术中没有必问项清单"],
    "fix_norm": ["为什么服务规范执行率低？鞋套、防护垫和现场清理项未达标较多",
                 "为什么未使用鞋套和防护垫？随车耗材经常用完", "为什么耗材用完？网点没有耗材领用和补货标准",
                 "为什么没有标准？耗材费用未纳入网点考核，无人负责"],
    "ftf": ["为什么一次修复率低？二次上门集中在洗衣机排水故障", "为什么需要二次上门？首次上门误判为排水泵故障",
            "为什么误判？技师未按检测流程先排查排水管路堵塞", "为什么未按流程？新入职技师对该机型检测流程不熟悉"],
    "repeat": ["为什么30天二次返修率升高？空调不制冷故障复修多", "为什么复修？补充冷媒后未查找泄漏点",
               "为什么未查漏？检漏仪数量不足，技师凭经验处理", "为什么数量不足？区域工具配置标准未随业务量更新"],
    "response": ["为什么响应及时率下降？周末工单积压", "为什么积压？周末只有一名调度员排班",
                 "为什么只有一人？排班按工作日工单量制定，未考虑周末高峰"],
    "cycle": ["为什么服务周期长？待配件工单占比高", "为什么待配件多？网点备件库存结构与故障结构不匹配",
              "为什么不匹配？补货参数一年未调整"],
    "resolve48": ["为什么48小时解决率未达标？跨网点转派工单处理慢", "为什么转派慢？转派后需重新预约上门时间",
                  "为什么要重新预约？转派时未同步客户期望时间"],
    "model": ["为什么该型号千台返修数偏高？主控板故障集中", "为什么主控板故障集中？同一批次电源电路元件耐压不足",
              "为什么未在出厂检验发现？抽检项目不含高温高湿老化测试"],
    "complaint_rate": ["为什么投诉率上升？上门迟到投诉增多", "为什么迟到？路线安排不合理，单日工单跨区"],
    "complaint_late": ["为什么投诉未在时限内处理完？投诉单流转到网点后无人跟进", "为什么无人跟进？投诉单没有指定责任人",
                       "为什么没有指定？投诉处理流程未规定网点内的责任岗位"],
    "complaint_repeat": ["为什么客户投诉同一故障再次出现？上次维修只做了清洁处理", "为什么只清洁？技师未更换老化的传感器",
                         "为什么未更换？当时网点无该配件，技师未申请调拨", "为什么未申请？调拨流程繁琐，审批时间长"],
    "complaint_new": ["为什么客户投诉收费？上门费未提前告知", "为什么未告知？预约短信中没有收费说明"],
    "survey_attitude": ["为什么服务态度得分低？客户反映技师沟通生硬", "为什么沟通生硬？技师工作量大，赶时间",
                        "为什么工作量大？网点两名技师离职后未及时补充", "为什么未及时补充？招聘需求审批周期长"],
    "survey_tech": ["为什么该技师及时性得分低？多次晚于预约时间到达", "为什么晚到？每天安排的工单超过其承接能力",
                    "为什么超负荷？自动派工未设置单日工单上限"],
    "survey_centre": ["为什么满意率下降？处理结果评分下降明显", "为什么处理结果差？部分故障需返厂维修，周期长"],
}

# Fault trees: one top event (``parent`` ""), the events under it.
FAULT_TREES = {
    "fix_cost": [
        {"id": "0", "parent": "", "text": "服务成本占比超标"},
        {"id": "1", "parent": "0", "text": "上门次数多"},
        {"id": "1.1", "parent": "1", "text": "首次上门未带齐配件"},
        {"id": "1.2", "parent": "1", "text": "客户不在家，改约"},
        {"id": "2", "parent": "0", "text": "配件成本高"},
        {"id": "2.1", "parent": "2", "text": "整件更换代替部件维修"},
        {"id": "2.2", "parent": "2", "text": "紧急调拨运费高"},
    ],
    "ftf": [
        {"id": "0", "parent": "", "text": "一次修复率低"},
        {"id": "1", "parent": "0", "text": "误判故障"},
        {"id": "1.1", "parent": "1", "text": "未按检测流程排查"},
        {"id": "1.2", "parent": "1", "text": "缺少排水管路检测工具"},
        {"id": "2", "parent": "0", "text": "维修质量"},
        {"id": "2.1", "parent": "2", "text": "更换配件后未充分试机"},
    ],
    "repeat": [
        {"id": "0", "parent": "", "text": "空调30天内复修"},
        {"id": "1", "parent": "0", "text": "冷媒泄漏未根治"},
        {"id": "1.1", "parent": "1", "text": "未查找泄漏点"},
        {"id": "1.1.1", "parent": "1.1", "text": "检漏仪不足"},
        {"id": "1.2", "parent": "1", "text": "焊接质量不良"},
        {"id": "2", "parent": "0", "text": "配件质量问题"},
    ],
    "model": [
        {"id": "0", "parent": "", "text": "型号主控板返修多"},
        {"id": "1", "parent": "0", "text": "主控板失效"},
        {"id": "1.1", "parent": "1", "text": "电源电路元件耐压不足"},
        {"id": "1.2", "parent": "1", "text": "潮湿环境下受潮"},
        {"id": "2", "parent": "0", "text": "出厂检验漏检"},
    ],
}


def _money(v) -> Decimal:
    return Decimal(v).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _month(d: dt.date) -> dt.date:
    return d.replace(day=1)


def _next_month(d: dt.date) -> dt.date:
    return (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


class _Step:
    """A step of the build: its row count and time on one line (``label rows/rows 100% 1.2s``)."""

    def __init__(self, stream, label: str):
        self.p = Progress(0, label, stream, live=False) if stream is not None else None

    def done(self, n: int) -> int:
        if self.p:
            self.p.total = n
            self.p.update(n)
            self.p.finish()
        return n


def build(*, seed: int, today: dt.date, progress_stream=None) -> dict[str, int]:
    """Build the quality demo data (see the module's doc); returns rows per model."""
    rng = random.Random(f"aftersales-demo:{seed}:quality")
    now = timezone.now()
    if timezone.localdate(now) != today:  # a fixed ``today`` (tests): the end of that day at the latest
        now = min(now, dt.datetime.combine(today, dt.time(20, 0), timezone.get_current_timezone()))
    tz = timezone.get_current_timezone()
    counts: dict[str, int] = {}
    with transaction.atomic():
        outlets = list(Node.objects.filter(kind=NodeKind.OUTLET).order_by("code"))
        high = set(rng.sample([o.pk for o in outlets], min(HIGH_OUTLETS, len(outlets))))
        cost_fix = min(high, default=None)
        norm_fix = rng.choice([o.pk for o in outlets if o.pk not in high] or [None])
        done_on = {k: (today - dt.timedelta(days=t[3])) if t[3] is not None else None for k, t in TIMELINE.items()}

        step = _Step(progress_stream, "服务规范检查")
        counts[NormCheck._meta.label] = step.done(_norm_checks(rng, norm_fix, done_on["fix_norm"], tz))
        step = _Step(progress_stream, "网点销售额")
        sales = _node_sales(rng, outlets, high, cost_fix, done_on["fix_cost"], now)
        counts[NodeSales._meta.label] = step.done(len(sales))
        step = _Step(progress_stream, "型号销量")
        model_sales, factor = _model_sales(rng, now)
        counts[ModelSales._meta.label] = step.done(len(model_sales))
        step = _Step(progress_stream, "指标目标")
        managers = _managers()
        targets = _targets(managers, now)
        counts[Target._meta.label] = step.done(len(targets))

        started = timezone.now()
        result = facts.rebuild(progress=progress_stream)
        counts[OrderFact._meta.label] = result.orders
        counts[Aggregate._meta.label] = result.cells
        # The load is one transaction: the facts are complete as of ``started``; the next refresh
        # looks from there on (not ``facts.OVERLAP`` earlier), so it finds nothing of the demo's to redo.
        RefreshState.objects.update_or_create(name=facts.STATE, defaults=dict(
            watermark=started + facts.OVERLAP, last_run=started, last_orders=result.orders,
            last_cells=result.cells, last_ms=result.ms))

        step = _Step(progress_stream, "改进措施")
        actions, notes = _actions(rng, today=today, now=now, managers=managers, cost_fix=cost_fix,
                                  norm_fix=norm_fix, factor=factor)
        counts[Action._meta.label] = step.done(len(actions))
        counts[ActionNote._meta.label] = len(notes)

        audited = [*sales, *model_sales, *targets, *actions, *notes]
        counts["records.AuditEntry"] = audit_record_created_bulk(actor=None, action=AUDIT_ACTION, objs=audited,
                                                                 node_of=_node_of, at=now, batch_size=BATCH)
    return counts


def _node_of(obj) -> int | None:
    if isinstance(obj, ActionNote):
        return obj.action.node_id
    return getattr(obj, "node_id", None)


# ---------------------------------------------------------------- the checklists

def _norm_items() -> list[str]:
    """The codes of the active checklist items (the migration's; created here only if missing)."""
    codes = list(NormItem.objects.filter(active=True).values_list("code", flat=True))
    if not codes:
        for i, (code, text) in enumerate(DEFAULT_ITEMS, start=1):
            NormItem.objects.get_or_create(code=code, defaults={"text": text, "position": i * 10})
        codes = list(NormItem.objects.filter(active=True).values_list("code", flat=True))
    return codes


def _norm_checks(rng: random.Random, norm_fix: int | None, fixed_on: dt.date | None, tz) -> int:
    """One checklist for every completed order with a visit that has none, in one ``executemany``."""
    codes = _norm_items()
    weights = [MISS_WEIGHT.get(c, 1.0) for c in codes]
    all_met = json.dumps(dict.fromkeys(codes, True), ensure_ascii=False)
    fixed_at = dt.datetime.combine(fixed_on, dt.time(), tz) if fixed_on else None
    with connection.cursor() as cur:
        cur.execute("""
            SELECT o.id, o.completed_at, o.node_id, e.user_id, e.employee_no
            FROM tickets_workorder o LEFT JOIN org_employee e ON e.id = o.assignee_id
            WHERE o.completed_at IS NOT NULL AND o.visit_count > 0
              AND NOT EXISTS (SELECT 1 FROM quality_normcheck n WHERE n.order_id = o.id)
            ORDER BY o.created_at, o.id""")
        orders = cur.fetchall()
    # each technician's own factor (by employee number, so that it does not depend on ids)
    factor: dict[str | None, float] = {}
    for no in sorted({r[4] for r in orders if r[4]}):
        factor[no] = rng.uniform(1.8, 2.8) if rng.random() < 0.1 else rng.uniform(0.45, 1.25)
    rows = []
    for oid, completed_at, node_id, user_id, no in orders:
        p = FAIL_RATE * factor.get(no, 1.0)
        if node_id == norm_fix and fixed_at is not None:  # worse before the action, better after it
            p *= 2.6 if _aware(completed_at) < fixed_at else 0.5
        met, answers, note = len(codes), all_met, ""
        if codes and rng.random() < p:
            k = min(len(codes), 2 if rng.random() < TWO_MISSED else 1)
            missed: set[str] = set()
            while len(missed) < k:
                missed.add(rng.choices(codes, weights)[0])
            answers = json.dumps({c: c not in missed for c in codes}, ensure_ascii=False)
            met -= k
            note = next((MISS_NOTE[c] for c in codes if c in missed and c in MISS_NOTE), "")
        rows.append((oid, answers, len(codes), met, note, user_id, completed_at))
    with connection.cursor() as cur:
        for i in range(0, len(rows), 10 * BATCH):
            cur.executemany(
                "INSERT INTO quality_normcheck (order_id, answers, items, met, note, answered_by_id, answered_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)", rows[i:i + 10 * BATCH])
    return len(rows)


def _aware(v) -> dt.datetime:
    if isinstance(v, str):  # SQLite: UTC text
        v = dt.datetime.fromisoformat(v)
    return v if timezone.is_aware(v) else v.replace(tzinfo=dt.UTC)


# ---------------------------------------------------------------- sales

def _node_sales(rng: random.Random, outlets: list[Node], high: set[int], cost_fix: int | None,
                fixed_on: dt.date | None, now: dt.datetime) -> list[NodeSales]:
    """Sales of every outlet in every month of the orders: its service cost ÷ its share."""
    month = facts.period_expr("month", facts.local_day("o.created_at"))
    with connection.cursor() as cur:
        cur.execute(f"""
            SELECT o.node_id, {month}, COUNT(*), SUM(COALESCE(sc.total, 0))
            FROM tickets_workorder o LEFT JOIN charges_servicecost sc ON sc.order_id = o.id
            WHERE o.status <> 'cancelled'
            GROUP BY 1, 2""")
        found = {(n, facts.as_date(m)): (c, Decimal(str(s or 0))) for n, m, c, s in cur.fetchall()}
    if not found:
        return []
    first, last = min(m for _n, m in found), max(m for _n, m in found)
    existing = set(NodeSales.objects.values_list("node_id", "month"))
    after_fix = _next_month(fixed_on) if fixed_on else None
    rows = []
    for o in outlets:
        share = rng.uniform(*(SHARE_HIGH if o.pk in high else SHARE_USUAL))
        m = first
        while m <= last:
            n, cost = found.get((o.pk, m), (0, Decimal(0)))
            basis = cost if cost > 0 else AVG_COST * n  # (orders not done yet: their cost to come)
            s = SHARE_AFTER_FIX if o.pk == cost_fix and after_fix and m >= after_fix else share
            s *= rng.uniform(0.94, 1.06)
            amount = (basis * 100 / Decimal(f"{s:.3f}")).quantize(Decimal(100), rounding=ROUND_HALF_UP)
            if basis > 0 and (o.pk, m) not in existing:
                rows.append(NodeSales(node=o, month=m, amount=_money(amount), updated_at=now))
            m = _next_month(m)
    return NodeSales.objects.bulk_create(rows, batch_size=BATCH)


def _model_sales(rng: random.Random, now: dt.datetime) -> tuple[list[ModelSales], dict[int, float]]:
    """Units sold per model and month: the demo's units bought that month, scaled by a factor of
    the model's (a model sold more has fewer repairs per 1,000 units)."""
    factor = {pk: rng.lognormvariate(0, 0.5) for pk in ProductModel.objects.order_by("code").values_list("pk", flat=True)}
    bought = (Unit.objects.annotate(m=TruncMonth("purchase_date")).values_list("model_id", "m")
              .annotate(n=Count("id")).order_by("model_id", "m"))
    existing = set(ModelSales.objects.values_list("model_id", "month"))
    rows = []
    for model_id, m, n in bought:
        m = facts.as_date(m)
        if (model_id, m) in existing:
            continue
        units = max(1, round(n * UNITS_PER_DEMO_UNIT * factor.get(model_id, 1.0) * rng.uniform(0.85, 1.15)))
        rows.append(ModelSales(model_id=model_id, month=m, units=units, updated_at=now))
    return ModelSales.objects.bulk_create(rows, batch_size=BATCH), factor


# ---------------------------------------------------------------- targets

def _managers() -> dict:
    """Who manages each node (the first manager found), and the quality officer / HQ manager."""
    out: dict = {}
    for role, node_id, user_id in (RoleAssignment.objects.filter(
            role__in=[Role.HQ_MANAGER, Role.CENTRE_MANAGER, Role.OUTLET_MANAGER, Role.QUALITY])
            .order_by("id").values_list("role", "node_id", "user_id")):
        key = "quality" if role == Role.QUALITY else node_id
        out.setdefault(key, user_id)
        if role == Role.HQ_MANAGER:
            out.setdefault("hq", user_id)
    return out


def _node(code: str, kind: str, index: int = 0) -> Node | None:
    """The node of a demo code, else the ``index``-th of that kind (smaller organisations)."""
    n = Node.objects.filter(code=code).first()
    if n is None:
        nodes = list(Node.objects.filter(kind=kind).order_by("code"))
        n = nodes[index % len(nodes)] if nodes else None
    return n


# (indicator, node code, kind, index, target, amber): nodes' own targets, stricter or looser
# than the registry's defaults.
TARGETS = [
    ("sat_overall", "C-EAST", NodeKind.CENTRE, 0, "4.70", "0.20"),
    ("satisfaction_share", "C-EAST", NodeKind.CENTRE, 0, "95.00", "3.00"),
    ("resolved_48h_rate", "C-SOUTH", NodeKind.CENTRE, 1, "88.00", "4.00"),
    ("response_mean", "SH-PD", NodeKind.OUTLET, 0, "45.00", "15.00"),
    ("norm_compliance_rate", "GZ-TH", NodeKind.OUTLET, 1, "97.00", "2.00"),
    ("ftf_rate", "BJ-CY", NodeKind.OUTLET, 2, "88.00", "4.00"),
    ("cost_share", "HQ", NodeKind.HQ, 0, "9.50", "1.50"),
]


def _targets(managers: dict, now: dt.datetime) -> list[Target]:
    rows, seen = [], set(Target.objects.values_list("indicator", "node_id"))
    for code, node_code, kind, index, target, amber in TARGETS:
        node = _node(node_code, kind, index)
        if node is None or (code, node.pk) in seen:
            continue
        seen.add((code, node.pk))
        rows.append(Target(indicator=code, node=node, target=Decimal(target), amber=Decimal(amber),
                           updated_by_id=managers.get(node.pk) or managers.get("hq"), updated_at=now))
    return Target.objects.bulk_create(rows)


# ---------------------------------------------------------------- improvement actions

def _lowest_survey_node(field: str) -> int | None:
    """The outlet with the lowest mean score of ``field`` (at least 20 answers)."""
    row = (Survey.objects.filter(answered_at__isnull=False, node__kind=NodeKind.OUTLET).values("node_id")
           .annotate(n=Count("id"), m=Avg(field)).filter(n__gte=20).order_by("m", "node__code").first())
    return row["node_id"] if row else None


def _lowest_survey_tech(field: str) -> tuple[int, int] | None:
    """(employee id, outlet) of the technician with the lowest mean score of ``field`` (≥ 10 answers)."""
    row = (Survey.objects.filter(answered_at__isnull=False, order__assignee__isnull=False)
           .values("order__assignee_id", "order__assignee__node_id")
           .annotate(n=Count("id"), m=Avg(field)).filter(n__gte=10)
           .order_by("m", "order__assignee__employee_no").first())
    return (row["order__assignee_id"], row["order__assignee__node_id"]) if row else None


def _complaint_before(at: dt.datetime, skip: set[int]) -> WorkOrder | None:
    return (WorkOrder.objects.filter(type=OrderType.COMPLAINT, created_at__lte=at).exclude(pk__in=skip)
            .order_by("-created_at", "-id").first())


def _actions(rng: random.Random, *, today: dt.date, now: dt.datetime, managers: dict, cost_fix, norm_fix,
             factor: dict[int, float]) -> tuple[list[Action], list[ActionNote]]:
    from .selectors_improve import baseline_window
    from .services import baseline_of

    if Action.objects.exists():
        return [], []
    tz = timezone.get_current_timezone()
    outlets = list(Node.objects.filter(kind=NodeKind.OUTLET).order_by("code"))
    if not outlets:
        return [], []
    hq = Node.objects.filter(kind=NodeKind.HQ).first()
    by_pk = {n.pk: n for n in Node.objects.all()}
    centre = lambda code, i: _node(code, NodeKind.CENTRE, i)  # noqa: E731
    other = [o for o in outlets if o.pk not in (cost_fix, norm_fix)] or outlets
    pick = rng.sample(other, min(4, len(other))) + other[:4]
    weakest_model = min(factor, key=lambda k: (factor[k], k)) if factor else None
    tech = _lowest_survey_tech("timeliness")
    creator = managers.get("quality") or managers.get("hq")

    def at(days_ago: int, hour: int) -> dt.datetime:
        t = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(hour, rng.randint(0, 59)), tz)
        return min(t, now)

    # key → (title, source, indicator, node, dim, key, problem, plan, result note)
    specs = {
        "fix_cost": ("降低网点服务成本占比", ActionSource.FIGURE, "cost_share", by_pk.get(cost_fix), "", "",
                     "该网点服务成本占销售额比连续三个月超过 10%，高于目标。",
                     "受理时按故障类型使用必问项清单；派工前由调度预判配件并随车携带；二次上门需网点经理审核。",
                     "实施后二次上门比例明显下降，成本占比回落到 9% 以下。"),
        "fix_norm": ("提升服务规范执行率", ActionSource.FIGURE, "norm_compliance_rate", by_pk.get(norm_fix), "", "",
                     "服务规范检查表中“使用鞋套与防护垫”“维修后清理现场”两项未达标比例偏高。",
                     "建立随车耗材领用台账，每周补货；将耗材使用纳入技师月度考核；网点经理每周抽查 5 单。",
                     "耗材补货到位后，规范执行率恢复到 95% 以上。"),
        "ftf": ("提高洗衣机排水故障一次修复率", ActionSource.FIGURE, "ftf_rate", pick[0], "", "",
                "洗衣机排水类故障二次上门多，一次修复率低于 85%。",
                "组织排水故障检测流程培训；为技师配备管路疏通工具；首次上门必须完成排水管路检查。",
                "培训后该类故障一次修复率提升约 5 个百分点。"),
        "repeat": ("降低空调二次返修率", ActionSource.FIGURE, "repeat_30_rate", centre("C-SOUTH", 1), "", "",
                   "华南区域空调不制冷故障 30 天内复修比例上升。",
                   "为每个网点增配电子检漏仪；补充冷媒前必须检漏并记录泄漏点；复修单由技术主管回访。", ""),
        "response": ("周末响应及时率改善", ActionSource.FIGURE, "response_on_time_rate", pick[1], "", "",
                     "周末受理的工单响应及时率低于 90%。", "周末增加一名调度员排班；启用自动派工。", ""),
        "cycle": ("缩短待配件工单服务周期", ActionSource.FIGURE, "cycle_p90", pick[2], "", "",
                  "服务周期 P90 超过 72 小时，主要是等待配件。",
                  "按近三个月故障结构调整网点备件补货参数；常用配件改为随车携带。", ""),
        "resolve48": ("提升全国 48 小时解决率", ActionSource.FIGURE, "resolved_48h_rate", hq, "", "",
                      "转派工单的 48 小时解决率明显低于其他工单。", "转派时同步客户期望上门时间，接收网点 2 小时内确认预约。", ""),
        "model": ("型号主控板故障集中，反馈质量部门", ActionSource.FIGURE, "repairs_per_1000", hq,
                  "model" if weakest_model else "", str(weakest_model or ""),
                  "该型号千台返修数明显高于同类产品，故障集中在主控板。",
                  "汇总故障件寄回工厂分析；与质量部门确认批次；对在保机主动回访。", ""),
        "complaint_rate": ("降低上门迟到投诉", ActionSource.FIGURE, "complaint_rate", pick[3], "", "",
                           "迟到类投诉增多，投诉率超过每百单 2 件。", "优化路线排程。", ""),
        "complaint_late": ("投诉单处理超时整改", ActionSource.COMPLAINT, "complaint_in_time_rate", None, "", "",
                           "客户投诉在解决时限内未处理完毕。",
                           "明确网点投诉责任岗位；投诉单 4 小时内联系客户；超时自动升级至中心。", ""),
        "complaint_repeat": ("同一故障重复维修投诉", ActionSource.COMPLAINT, "repeat_30_rate", None, "", "",
                             "客户投诉维修后同一故障再次出现。",
                             "简化网点间配件调拨审批；复修单必须更换相关老化部件。",
                             "已为客户免费更换传感器，客户认可；调拨审批由 2 天缩短为当天。"),
        "complaint_new": ("上门收费争议", ActionSource.COMPLAINT, "complaint_rate", None, "", "",
                          "客户投诉上门费未提前告知。", "预约短信中加入收费标准说明。", ""),
        "survey_attitude": ("改善网点服务态度评分", ActionSource.SURVEY, "sat_attitude",
                            by_pk.get(_lowest_survey_node("attitude")) or pick[0], "", "",
                            "满意度分析显示该网点“服务态度”平均分在各网点中最低。",
                            "开展服务礼仪与沟通培训；补充两名技师，降低人均工单量。",
                            "培训完成，新技师已到岗，服务态度评分回升。"),
        "survey_tech": ("技师上门及时性辅导", ActionSource.SURVEY, "sat_timeliness",
                        by_pk.get(tech[1]) if tech else pick[1], "assignee" if tech else "",
                        str(tech[0]) if tech else "",
                        "该技师“及时性”评分在本网点技师中最低，多次晚于预约时间到达。",
                        "为该技师设置单日工单上限 6 单；由师傅带教一个月。", ""),
        "survey_centre": ("提升华北区域满意率", ActionSource.SURVEY, "satisfaction_share", centre("C-NORTH", 2), "", "",
                          "满意度分析显示华北区域满意率下降，处理结果评分下降明显。",
                          "返厂维修的工单提供备用机；每周通报返厂进度。", ""),
    }

    used: set[int] = set()
    actions: list[Action] = []
    per_day: dict[dt.date, int] = defaultdict(int)
    note_specs: list[list[tuple[dt.datetime, int, str, str]]] = []
    for key, (raised_ago, due_days, status, done_ago, verified_ago) in TIMELINE.items():
        title, source, code, node, dim, dkey, problem, plan, result = specs[key]
        created = at(raised_ago, 9 + rng.randint(0, 7))
        complaint = None
        if source == ActionSource.COMPLAINT:
            complaint = _complaint_before(created, used)
            if complaint is not None:
                used.add(complaint.pk)
                node = by_pk[complaint.node_id]
        node = node or hq or outlets[0]
        owner = managers.get(node.pk) or managers.get("hq") or creator
        start, end = baseline_window(timezone.localdate(created))
        baseline = baseline_of(code, node, dim=dim, key=dkey, on=timezone.localdate(created))
        d = timezone.localdate(created)
        per_day[d] += 1
        done_at = at(done_ago, 17) if done_ago is not None else None
        verified_at = at(verified_ago, 10) if verified_ago is not None else None
        cancelled_at = at(raised_ago - 20, 11) if status == ActionStatus.CANCELLED else None
        last = verified_at or done_at or cancelled_at or (at(max(raised_ago - 7, 0), 15)
                                                            if status == ActionStatus.IN_PROGRESS else created)
        actions.append(Action(
            number=f"GJ{d:%Y%m%d}{per_day[d]:04d}", title=title, source=source, indicator=code, node=node, dim=dim,
            key=dkey, period_from=start, period_to=end, complaint=complaint,
            problem=problem + (f"（投诉单 {complaint.number}）" if complaint else ""), whys=FIVE_WHYS[key],
            fault_tree=FAULT_TREES.get(key, []), root_cause=FIVE_WHYS[key][-1].split("？", 1)[-1],
            plan=plan, owner_id=owner, due_on=d + dt.timedelta(days=due_days), status=status,
            baseline=baseline,
            result_note=result if status in (ActionStatus.DONE, ActionStatus.VERIFIED) else "",
            created_by_id=creator, created_at=created, updated_at=last, done_at=done_at, verified_at=verified_at))
        notes = [(created, creator, ActionStatus.OPEN, f"发起改进措施，责任人：{node.name}负责人。")]
        if status != ActionStatus.OPEN and status != ActionStatus.CANCELLED:
            notes.append((at(raised_ago - 2, 14), owner, ActionStatus.IN_PROGRESS, "已召开分析会，确认根本原因，开始整改。"))
        if status == ActionStatus.IN_PROGRESS and raised_ago > 14:
            notes.append((at(raised_ago - 7, 15), owner, "", "整改进行中，已完成第一阶段措施。"))
        if done_at:
            notes.append((done_at, owner, ActionStatus.DONE, result or "措施已全部落实。"))
        if verified_at:
            notes.append((verified_at, creator, ActionStatus.VERIFIED, "复核改进后三个月数据，效果达到预期，关闭。"))
        if cancelled_at:
            notes.append((cancelled_at, creator, ActionStatus.CANCELLED, "与“缩短服务周期”措施合并处理，本措施取消。"))
        note_specs.append(notes)
    Action.objects.bulk_create(actions)
    notes = [ActionNote(action=a, at=t, author_id=who, status=st, text=text)
             for a, specs_ in zip(actions, note_specs, strict=True) for t, who, st, text in specs_]
    ActionNote.objects.bulk_create(notes, batch_size=BATCH)
    for d, n in per_day.items():
        seq, _ = ActionSequence.objects.get_or_create(day=d)
        if seq.last < n:
            seq.last = n
            seq.save(update_fields=["last"])
    return actions, notes


# ---------------------------------------------------------------- reset

def reset() -> int:
    """Delete the quality rows (children first): actions and their notes, reports, checklists,
    facts and pre-aggregates, targets and sales. The checklist items and the audit trail stay."""
    total = 0
    with transaction.atomic():
        for r in Report.objects.exclude(pdf="", xlsx=""):
            for f in (r.pdf, r.xlsx):
                if f:
                    f.delete(save=False)
        for model in (ActionNote, Action, ActionSequence, Report, NormCheck, Aggregate, OrderFact, RefreshState,
                      Target, NodeSales, ModelSales):
            qs = model.objects.all()
            total += qs._raw_delete(qs.db)
    return total
