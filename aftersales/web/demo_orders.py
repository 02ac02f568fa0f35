"""Six months of work orders for the demo (issue 3, item 9), built in bulk.

Each order's path is a weighted random walk over the ONE transition table,
``tickets.workflow.MOVES``: at every step the candidates are the moves the table allows from
the current status for the order's type (``workflow.moves_from``), and ``_weight`` only says
how likely each of them is (most repairs go classify → dispatch → accept → depart → arrive →
diagnose → repair → complete → callback → close; some wait for parts or for the customer, are
declined, reassigned, transferred, cancelled, reopened after the call-back). The effects of
each move on the order mirror ``workflow``'s (counters, assignee, appointment, responded /
completed / closed times, fault code, warranty), the SLA clock is kept with ``tickets.sla``
(deadlines from the policies and the CN working calendar, paused while waiting, a fresh
resolution window on reopening), and the SLA sweep's breaches are inserted where a deadline
passed unhandled (an ``sla_breach`` event and one ``escalate`` per missed deadline, as
``tickets.sweep`` writes them). Completed orders go through the call-back round of
``feedback`` (task, survey link or phone call, the "survey" event, close or reopen, and a
complaint follow-up for low scores); technicians are booked as ``dispatch`` books them,
never twice for the same time; the outbox gets the last two weeks' messages.

The rows are written with ``executemany`` of plain tuples, ~10,000 orders at a time, with
one audit entry per order (its final snapshot, action ``order.demo_history``), so that
``audit_verify`` stays clean and ``tickets.invariants.order_problems`` finds nothing. The
history ends at ``now``: the last days' orders are still open, in every status. Numbers
continue each day's ``DailySequence``, so orders created later never collide.

The orders of each service centre are made by a partition of their own (they share no
technician, unit or customer with another centre's), in a forked worker process when there
are enough of them and more than one core, while this process writes; the data is the same
either way, deterministic for a given seed and ``now``. On SQLite the whole load is one
transaction (see ``_bulk_load``), elsewhere one per chunk.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import hashlib
import heapq
import json
import marshal
import operator
import os
import pickle
import random
from collections import defaultdict
from collections.abc import Callable, Iterable

from django.apps import apps
from django.conf import settings
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.utils import timezone, translation

from aftersales.catalog.models import Category, Exclusion, MainPart, ProductModel
from aftersales.catalog.warranty import DecisionKind, RepairFact, Terms, add_months, decide, terms_for
from aftersales.core.progress import Progress
from aftersales.customers.models import Address, Customer, Unit, UnitRepair
from aftersales.org.models import Coverage, Employee, Node, NodeKind, RoleAssignment
from aftersales.org.roles import ROLE_PERMS, Perm, Role
from aftersales.records.audit import GENESIS, entry_hash
from aftersales.records.models import AuditEntry
from aftersales.tickets import sla, workflow
from aftersales.tickets.models import (
    Channel,
    DailySequence,
    FaultCategory,
    FaultCode,
    OrderEvent,
    OrderType,
    Priority,
    SlaState,
    Status,
    WorkOrder,
)

S = Status
T = OrderType

ORDERS_DEFAULT = 150_000  # six months for the full demo (30,000 units)
UNITS_DEFAULT = 30_000
DAYS = 182
CHUNK = 10_000
PARALLEL_FROM = 20_000  # fewer orders are made in this process (a worker costs more than it saves)
AUDIT_ACTION = "order.demo_history"
SYSTEM = "system"

# Appointment slots (local hours, two hours each): a technician takes at most one job a slot.
SLOTS = (8, 10, 12, 14, 16, 18)
SLOT = dt.timedelta(hours=2)
SURVEY_TTL = dt.timedelta(days=7)
CODE_TTL = dt.timedelta(minutes=15)
SMS_SAMPLE_DAYS = 14  # the outbox gets the messages of the last two weeks only
MAX_STEPS = 80
CACHE_KIB = 256 * 1024  # SQLite page cache while loading

# ==================================================================== the mix

TYPE_MIX = [(T.REPAIR, 52), (T.CONSULTATION, 15), (T.INSTALLATION, 9), (T.DELIVERY, 6), (T.MAINTENANCE, 7),
            (T.RECYCLING, 4), (T.RETURN_EXCHANGE, 3), (T.COMPLAINT, 2.5)]
CHANNEL_MIX = [(Channel.PHONE, 55), (Channel.APP, 18), (Channel.WEB, 12), (Channel.WALK_IN, 10), (Channel.EMAIL, 5)]
PRIORITY_MIX = [(Priority.NORMAL, 82), (Priority.HIGH, 10), (Priority.LOW, 5), (Priority.URGENT, 3)]
# Requests by hour of the day (local): working days, weekends and holidays.
HOURS_WORKDAY = [0.15, 0.06, 0.03, 0.03, 0.03, 0.06, 0.25, 0.7, 1.4, 2.0, 2.1, 1.8, 1.2, 1.4, 1.6, 1.6, 1.5, 1.4,
                 1.6, 2.1, 2.3, 1.9, 1.1, 0.45]
HOURS_WEEKEND = [0.2, 0.08, 0.04, 0.03, 0.03, 0.05, 0.15, 0.5, 1.2, 2.0, 2.4, 2.3, 1.8, 1.7, 2.0, 2.1, 2.0, 1.8,
                 1.8, 2.2, 2.3, 1.9, 1.2, 0.5]
WEEKDAY_FACTOR = [1.0, 0.96, 0.96, 0.97, 1.04, 1.38, 1.3]
MONTH_FACTOR = {6: 1.15, 7: 1.3, 8: 1.25, 9: 1.05}  # air conditioners in summer

# Statuses from which a cancellation is plausible, and how likely it is there.
CANCEL_WEIGHT = {S.RECEIVED: 0.009, S.CLASSIFIED: 0.006, S.DISPATCHED: 0.003, S.ACCEPTED: 0.003, S.EN_ROUTE: 0.0015,
                 S.ON_SITE: 0.0015, S.DIAGNOSING: 0.003, S.WAITING_PARTS: 0.015, S.WAITING_CUSTOMER: 0.12,
                 S.REOPENED: 0.025}
TRANSFER_WEIGHT = {S.RECEIVED: 0.014, S.CLASSIFIED: 0.01, S.DISPATCHED: 0.0025, S.ACCEPTED: 0.0012,
                   S.REOPENED: 0.005}

# ==================================================================== texts

PROBLEMS = {
    "NO_COOLING": ["开机后不制冷，吹出来是热风", "制冷效果差，温度降不下来", "冷藏室不冷，东西放不住", "制热效果差，屋里不暖和"],
    "WATER_LEAK": ["室内机往下滴水", "底部漏水，地上一摊水", "使用时有渗水，水管接口处湿"],
    "NOISE": ["运行时噪音很大，有咔咔声", "工作时异响明显，晚上睡不着", "震动厉害，声音很大"],
    "NO_POWER": ["插上电没有反应，无法开机", "开不了机，指示灯不亮", "一开机就跳闸"],
    "ERROR_CODE": ["显示屏报故障代码，无法使用", "指示灯一直闪，按键没反应", "显示乱码，程序无法启动"],
    "NO_DRAIN": ["洗完不排水，桶里有水", "不脱水，衣服湿漉漉的", "滚筒不转，洗到一半停了"],
    "NO_HOT_WATER": ["打不着火，没有热水", "加热很慢，水温上不去", "洗澡时水忽冷忽热"],
    "REMOTE": ["遥控器按了没反应", "遥控失灵，换了电池也不行"],
    "ODOR": ["使用时有异味", "有烧焦味，不敢再用", "有霉味，开机就闻到"],
    "NO_PICTURE": ["开机黑屏，有声音没图像", "画面花屏闪烁", "没有声音，画面正常"],
    "WEAK_SUCTION": ["吸力很弱，油烟抽不走", "做饭时跑烟串烟"],
    "FROST": ["冷冻室结冰很厚", "结霜严重，门关不严"],
    "DAMAGE": ["外壳磕碰掉漆", "面板有裂缝"],
}
PROBLEM_BY_TYPE = {
    T.INSTALLATION: ["新购{cat}，预约上门安装", "{cat}已送到，请安排师傅安装", "搬家后{cat}需要移机安装"],
    T.DELIVERY: ["新购{cat}，预约送货上门", "{cat}下单一周了，请安排送货"],
    T.RECYCLING: ["以旧换新，旧{cat}上门回收", "旧{cat}需要拆机回收"],
    T.MAINTENANCE: ["{cat}清洗保养", "{cat}年度保养检查", "{cat}用了几年，想做一次深度清洗"],
    T.RETURN_EXCHANGE: ["新买的{cat}{fault}，要求换货", "新机到家就{fault}，要求退换"],
    T.COMPLAINT: ["投诉技师上门迟到两个小时", "投诉维修后同一故障再次出现", "对上门收费有异议", "投诉客服电话一直打不通",
                  "投诉技师服务态度差"],
}
CONSULTATIONS = [
    ("咨询{cat}的三包期限", "已告知三包期限及所需购买凭证"),
    ("咨询{cat}怎么清洗过滤网", "已电话指导客户清洗，客户表示明白"),
    ("咨询{cat}定时功能怎么设置", "已讲解定时设置方法，并发送电子说明书"),
    ("询问上次报修的维修进度", "已查询并告知维修进度"),
    ("咨询以旧换新活动", "已介绍以旧换新活动规则及补贴标准"),
    ("咨询延保服务价格", "已告知延保价格及办理方式"),
    ("咨询{cat}显示的代码是什么意思", "已解释代码含义，属正常提示，无需上门"),
]
ON_SITE_DIAGNOSIS = {
    T.INSTALLATION: "现场安装条件符合要求",
    T.DELIVERY: "现场开箱验机，外观完好",
    T.RECYCLING: "旧机已断电，可拆卸回收",
    T.MAINTENANCE: "整机运行检查，无明显故障",
    T.COMPLAINT: "已与客户当面沟通，核实投诉情况",
}
RESULT_BY_TYPE = {
    T.INSTALLATION: ["安装完成，试机正常，已讲解使用方法", "安装调试完毕，客户验收满意"],
    T.DELIVERY: ["已送货到家，开箱验机无破损", "送货完成，已签收"],
    T.RECYCLING: ["旧机已拆卸回收，已登记回收单", "旧机回收完成"],
    T.MAINTENANCE: ["清洗保养完成，运行正常", "保养完毕，已告知日常维护要点"],
    T.COMPLAINT: ["已上门致歉并处理，客户表示接受", "已重新处理问题，客户认可处理结果"],
}
DIAG_TAILS = ["现场测试复现故障。", "已向客户说明原因。", "", "排除线路问题。"]
RESULTS = ["维修完成，试机运行正常", "处理后试机正常，客户确认", "已修复，连续运行半小时无异常"]
ACTIONS = ["清洁并紧固接插件", "调试参数并试机", "检查线路，处理接触不良"]
DECLINE_REASONS = ["时间冲突，无法按时上门", "距离太远，建议就近派工", "缺少该品类维修工具", "身体不适，请改派"]
REASSIGN_REASONS = ["原技师临时请假", "客户要求更换技师", "优化路线，就近派工", "原技师当日工单已满"]
TRANSFER_REASONS = ["服务地址属于其他网点服务区域", "客户要求由其他网点处理", "本网点技师已满负荷"]
CANCEL_REASONS = ["客户已自行解决", "客户不需要上门了", "重复报修，已合并处理", "多次联系不上客户，取消"]
CANCEL_LATE_REASONS = ["客户不接受收费维修", "客户决定不修了，换新机", "配件停产，客户选择换新"]
PARTS_REASONS = ["需更换{part}，等待配件到货", "配件缺货，已向中心库申请{part}", "等待厂家发货：{part}"]
CUSTOMER_REASONS = ["客户不在家，另约时间", "需客户提供购买凭证", "客户需与家人商量是否维修"]
COMMENTS_GOOD = ["师傅很专业", "上门准时，服务态度好", "修得很快，谢谢", "", "", "", "讲解很耐心"]
COMMENTS_BAD = ["等了很久才上门", "修完还是有问题", "收费太贵", "师傅态度不好", "约好的时间没来"]

# ==================================================================== helpers


def _cum(pairs):
    vals, acc, cum = [], 0.0, []
    for v, w in pairs:
        acc += w
        vals.append(v)
        cum.append(acc)
    return vals, cum


class _Time:
    """Database parameters for datetimes and dates, formatted once per value."""

    def __init__(self):
        self.sqlite = connection.vendor == "sqlite"

    def ts(self, v: dt.datetime | None):
        if v is None:
            return None
        if v.tzinfo is not dt.UTC:
            v = v.astimezone(dt.UTC)
        if self.sqlite:  # what Django's SQLite backend stores: str() of the naive UTC time
            return v.replace(tzinfo=None).isoformat(" ")
        return v

    def day(self, v: dt.date | None):
        return None if v is None else (v.isoformat() if self.sqlite else v)


def _users_with(roles: dict, node_path: list[int], role: str) -> list[tuple[int, str]]:
    """Users holding ``role`` at the nearest node of ``node_path`` (node first, then up) that has any."""
    for nid in reversed(node_path):
        found = roles.get((role, nid))
        if found:
            return found
    return []


_STALE = object()
# Moves after which the deadlines the sweep watches may differ: they are answered, met, set
# again, or the clock stops or starts (besides these: every move into or out of a pause).
_CLOCK_MOVES = frozenset({"classify", "answer", "dispatch", "transfer", "complete", "close", "cancel", "reopen"})


class _Order:
    """One order while its history is made: the WorkOrder columns (by attname, defaults on
    the class) and what the walk needs. ``tickets.sla`` reads it like a WorkOrder."""

    id = number = type = channel = priority = status = None
    customer_id = unit_id = address_id = fault_category_id = fault_code_id = None
    node_id = owner_id = assignee_id = parent_id = None
    wish_from = wish_to = appointment_from = appointment_to = None
    problem = diagnosis = actions = result = warranty_kind = confirmed_by = confirm_code_hash = ""
    signature = cancel_reason = ""
    warranty_free = confirmed_at = confirm_code_expires = None
    created_at = updated_at = responded_at = completed_at = closed_at = None
    response_due = resolve_due = sla_risk_at = sla_paused_at = None
    sla_state = SlaState.OK
    response_breached = resolve_breached = False
    escalation_level = reassign_count = decline_count = reopen_count = visit_count = event_count = 0
    # the walk's own
    unit = home_node = visit_from = booking = tail = fc_code = part_code = day = answer_text = last_move_at = None
    parts_waits = 0
    transferred = follow_up = False
    next_due = _STALE

    def __init__(self):
        self.events: list[tuple] = []
        self.bookings: list[dict] = []
        self.declined: set[int] = set()


# ==================================================================== the world the orders live in


class _World:
    """The organisation, staff, customers and units, read once (a few queries)."""

    def __init__(self):
        self._holds: dict[tuple, bool] = {}
        nodes = list(Node.objects.values_list("id", "path", "kind", "active", "name"))
        self.node_name = {n: name for n, _p, _k, _a, name in nodes}
        self.path = {n: [int(x) for x in p.strip("/").split("/") if x] for n, p, _k, _a, _n in nodes}
        self.node_kind = {n: k for n, _p, k, _a, _n in nodes}
        outlets = sorted(n for n, _p, k, a, _n in nodes if k == NodeKind.OUTLET and a)

        self.roles: dict[tuple[str, int], list[tuple[int, str]]] = defaultdict(list)
        self.user_label: dict[int, str] = {}
        self.user_roles: dict[int, set[tuple[str, int]]] = defaultdict(set)
        for role, node_id, user_id, username in (RoleAssignment.objects.filter(user__is_active=True)
                                                 .order_by("user_id", "id")
                                                 .values_list("role", "node_id", "user_id", "user__username")):
            self.roles[(role, node_id)].append((user_id, username))
            self.user_label[user_id] = username
            self.user_roles[user_id].add((role, node_id))

        emps = {e: (u, node, name) for e, u, node, name in
                Employee.objects.filter(active=True, user__is_active=True)
                .values_list("id", "user_id", "node_id", "name")}
        skills: dict[int, set[int]] = defaultdict(set)
        for e, c in Employee.skills.through.objects.values_list("employee_id", "category_id"):
            skills[e].add(c)
        tech_users = {u for (role, _n), us in self.roles.items() if role == Role.TECHNICIAN for u, _l in us}
        self.emp_user = {e: u for e, (u, _n, _nm) in emps.items()}
        self.emp_name = {e: nm for e, (_u, _n, nm) in emps.items()}
        self.techs: dict[int, list[int]] = defaultdict(list)  # outlet -> employees
        self.skills = skills
        for e in sorted(emps):
            u, node, _nm = emps[e]
            if u in tech_users and (Role.TECHNICIAN, node) in self.user_roles[u]:
                self.techs[node].append(e)

        # who acts where: owners / handlers (agents), dispatchers, managers per level
        self.agents = {n: _users_with(self.roles, self.path[n], Role.AGENT) for n in outlets}
        self.centre_agents = {}
        for n in outlets:
            own = self.roles.get((Role.AGENT, n), [])
            above = [u for nid in self.path[n][:-1] for u in self.roles.get((Role.AGENT, nid), [])]
            self.centre_agents[n] = (own, above)
        self.dispatchers = {}
        for n in outlets:
            found = _users_with(self.roles, self.path[n], Role.DISPATCHER)
            if not found:
                found = self.roles.get((Role.OUTLET_MANAGER, n), []) or _users_with(
                    self.roles, self.path[n], Role.CENTRE_MANAGER)
            self.dispatchers[n] = found
        self.handlers = {}
        for n in outlets:
            self.handlers[n] = self.agents[n] or self.roles.get((Role.OUTLET_MANAGER, n), [])
        self.managers = {}
        for n in outlets:
            chain = self.path[n]
            levels = {}
            for level, role in ((1, Role.OUTLET_MANAGER), (2, Role.CENTRE_MANAGER), (3, Role.HQ_MANAGER)):
                levels[level] = next((self.roles[(role, nid)] for nid in reversed(chain)
                                      if self.roles.get((role, nid))), [])
            self.managers[n] = levels
        # outlets where orders can be handled: an agent to own them and technicians to do them
        self.outlets = [n for n in outlets if self.techs.get(n) and self.centre_agents[n] != ([], [])]
        self.outlet_set = set(self.outlets)

        self.coverage = {(p, c, d): o for o, p, c, d in
                         Coverage.objects.order_by("id").values_list("outlet_id", "province", "city", "district")}
        self.customer = {c: (node, phone) for c, node, phone in Customer.objects.values_list("id", "node_id", "phone")}
        self.address_place: dict[int, tuple[str, str, str]] = {}
        self.default_address: dict[int, int] = {}
        for a, cust, p, c, d, default in Address.objects.values_list("id", "customer_id", "province", "city",
                                                                      "district", "is_default"):
            self.address_place[a] = (p, c, d)
            if default:
                self.default_address[cust] = a

        self.categories = {c: code for c, code in Category.objects.values_list("id", "code")}
        self.category_name = {c: name for c, name in Category.objects.values_list("id", "name")}
        self.terms = {m.pk: terms_for(m) for m in ProductModel.objects.select_related("category__policy")}
        self.main_parts: dict[int, dict[str, str]] = defaultdict(dict)
        for m, code, name in MainPart.objects.values_list("model_id", "code", "name"):
            self.main_parts[m][code] = name
        self.part_names: dict[str, str] = {}
        for parts in self.main_parts.values():
            for code, name in parts.items():
                self.part_names.setdefault(code, name)

        # units: (id, customer, model, category, purchased, exchanged, invoice, address)
        self.units = list(Unit.objects.order_by("id").values_list(
            "id", "customer_id", "model_id", "model__category_id", "purchase_date", "exchanged_on", "invoice_no",
            "address_id"))
        self.units = [(u, c, m, cat, p, x, bool((inv or "").strip()), a) for u, c, m, cat, p, x, inv, a in self.units]
        self.by_purchase = sorted(range(len(self.units)), key=lambda i: (self.units[i][4], i))
        self.purchase_ord = [self.units[i][4].toordinal() for i in self.by_purchase]
        self.repairs: dict[int, list[RepairFact]] = defaultdict(list)
        for u, s, f, key, inw in UnitRepair.objects.order_by("id").values_list(
                "unit_id", "started_on", "finished_on", "fault_key", "in_warranty"):
            self.repairs[u].append(RepairFact(started_on=s, finished_on=f, fault_key=key, in_warranty=inw))

        # fault catalogue: categories by product category; codes by (product category, fault category)
        fcs = list(FaultCategory.objects.order_by("code").values_list("id", "code", "name", "suggests_type"))
        self.fc_code = {i: code for i, code, _n, _t in fcs}
        self.fc_name = {i: name for i, _c, name, _t in fcs}
        links: dict[int, set[int]] = defaultdict(set)
        for fc, cat in FaultCategory.categories.through.objects.values_list("faultcategory_id", "category_id"):
            links[fc].add(cat)
        faults = [i for i, _c, _n, t in fcs if not t]  # faults, not questions (安装咨询 …)
        self.faults_for: dict[int, list[int]] = {}
        for cat in self.categories:
            own = [i for i in faults if cat in links.get(i, ())]
            self.faults_for[cat] = own or [i for i in faults if not links.get(i)]
        # (id, code, name, part, fault category) by (product category, fault category) and by product category
        self.codes: dict[tuple[int, int], list[tuple[int, str, str, str, int]]] = defaultdict(list)
        self.codes_of: dict[int, list[tuple[int, str, str, str, int]]] = defaultdict(list)
        for i, cat, fc, code, name, part in FaultCode.objects.order_by("category_id", "code").values_list(
                "id", "category_id", "fault_category_id", "code", "name", "part_code"):
            self.codes[(cat, fc)].append((i, code, name, part, fc))
            self.codes_of[cat].append((i, code, name, part, fc))

        self.sequences = dict(DailySequence.objects.values_list("day", "last"))
        # the partitions: the outlets of one parent node (a service centre) share technicians
        # (a transfer goes to a sibling) and units (their orders go to the outlet of their address)
        self.partition = {n: self.path[n][-2] if len(self.path[n]) > 1 else n for n in self.outlets}

    def node_for(self, customer_id: int, address_id: int | None) -> int | None:
        """``tickets.services._create_node``: the outlet covering the service address, else the
        customer's (among those where orders can be handled)."""
        if address_id is not None:
            n = self.coverage.get(self.address_place.get(address_id))
            if n in self.outlet_set:
                return n
        n = self.customer[customer_id][0]
        return n if n in self.outlet_set else None

    def holds(self, user_id: int | None, perm: str, node_id: int) -> bool:
        """Whether the user holds ``perm`` over the node (by a role there or above), as
        ``org.scope.holds_at`` says."""
        if user_id is None:
            return False
        key = (user_id, perm, node_id)
        hit = self._holds.get(key)
        if hit is None:
            chain = set(self.path.get(node_id, ()))
            hit = self._holds[key] = any(nid in chain and perm in ROLE_PERMS.get(role, ())
                                         for role, nid in self.user_roles.get(user_id, ()))
        return hit

    def may_handle(self, user_id: int | None, node_id: int) -> bool:
        return self.holds(user_id, Perm.ORDER_HANDLE, node_id)

    def may_create(self, user_id: int | None, node_id: int) -> bool:
        return self.holds(user_id, Perm.ORDER_CREATE, node_id)


# ==================================================================== the SLA clock


class _Clock:
    """``tickets.sla`` applied to the orders being made, with the expensive parts memoised:
    deadlines per (policy, start) — a start outside working hours counts from the next
    working moment, so all of them share one entry — and the at-risk moment per deadline.

    ``load`` reads every policy and calendar and runs ``sla.deadlines`` for every working
    day of the history up front; a copy (``offline``) then never reads the database, so that
    it can work in a forked process."""

    def __init__(self, template: _Clock | None = None):
        self.tz = timezone.get_current_timezone()
        self._policy: dict[tuple[str, str], tuple] = dict(template._policy) if template else {}
        self._deadlines: dict[tuple, tuple] = dict(template._deadlines) if template else {}
        self._risk: dict[tuple, dt.datetime] = {}
        self._callback_due: dict[tuple, dt.datetime] = {}
        self._windows: dict[tuple, object] = dict(template._windows) if template else {}
        self.offline = template is not None

    def load(self, first: dt.date, last: dt.date) -> None:
        for order_type in OrderType.values:
            for priority in Priority.values:
                p, cal = self.policy(order_type, priority)
                if p is None:
                    continue
                d = first
                while d <= last:
                    w = self._window(cal, d)
                    if w is not None and (p.pk, w[0]) not in self._deadlines:
                        due = sla.deadlines(order_type, priority, w[0])
                        self._deadlines[(p.pk, w[0])] = (due.response_due, due.resolve_due)
                    d += dt.timedelta(days=1)

    def policy(self, order_type: str, priority: str):
        key = (order_type, priority)
        hit = self._policy.get(key)
        if hit is None:
            if self.offline:
                raise RuntimeError(f"demo orders: no SLA policy loaded for {key}")
            p = sla.policy_for(order_type, priority)
            cal = sla.calendar(p.calendar_id and p.calendar) if p is not None else sla.ROUND_THE_CLOCK
            hit = self._policy[key] = (p, cal)
        return hit

    def _window(self, cal: sla.Calendar, d: dt.date):
        key = (id(cal), d)
        w = self._windows.get(key, _STALE)
        if w is _STALE:
            w = self._windows[key] = cal.window(d, self.tz)
        return w

    def _canon(self, cal: sla.Calendar, t: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
        """(the first working moment at or after ``t`` — where the count of ``cal.add`` starts —,
        the start of its working hours)."""
        d = t.astimezone(self.tz).date()
        for _ in range(60):
            w = self._window(cal, d)
            if w is not None and t < w[1]:
                return max(t, w[0]), w[0]
            d += dt.timedelta(days=1)
        return None

    def add(self, cal: sla.Calendar, start: dt.datetime, delta: dt.timedelta) -> dt.datetime:
        """``cal.add(start, minutes)``, step for step, on working hours looked up once per day."""
        d = start.astimezone(self.tz).date()
        left = delta
        for _ in range(3 * 366):  # as far as sla.Calendar.add looks
            w = self._window(cal, d)
            if w is not None:
                a, b = max(w[0], start), w[1]
                if a < b:
                    if a + left <= b:
                        return a + left
                    left -= b - a
            d += dt.timedelta(days=1)
        return cal.add(start, delta.total_seconds() / 60)  # raises: beyond the calendar's reach

    def deadlines(self, o: _Order, start: dt.datetime) -> tuple[dt.datetime | None, dt.datetime | None]:
        """(response, resolution) deadlines of ``sla.deadlines`` for an order received at
        ``start``. Working time adds up, so ``sla.deadlines`` runs once per policy and working
        day (from the start of its hours) and each order's deadlines are those moved on by the
        working time between that start and its own receipt; a receipt outside working hours
        counts from the next working moment, as ``cal.add`` does."""
        p, cal = self.policy(o.type, o.priority)
        if p is None:
            return None, None
        canon = self._canon(cal, start)
        if canon is None:  # no working hours within two months: count as cal.add would
            return (cal.add(start, p.response_minutes), cal.add(start, p.resolve_minutes))
        at, day_start = canon
        key = (p.pk, day_start)
        base = self._deadlines.get(key)
        if base is None:  # a day ``load`` did not see: the same sum, by the calendar
            base = self._deadlines[key] = (self.add(cal, day_start, dt.timedelta(minutes=p.response_minutes)),
                                           self.add(cal, day_start, dt.timedelta(minutes=p.resolve_minutes)))
        delta = at - day_start
        if not delta:
            return base
        return self.add(cal, base[0], delta), self.add(cal, base[1], delta)

    def _risk_of(self, p, cal, due: dt.datetime, minutes: int) -> dt.datetime:
        key = (p.pk, due, minutes)
        r = self._risk.get(key)
        if r is None:
            r = self._risk[key] = cal.sub(due, minutes * p.at_risk_percent / 100)
        return r

    def risk_at(self, o: _Order, p, cal) -> dt.datetime | None:
        """``sla.risk_at``: the at-risk moment of the first deadline still pending."""
        if p is None:
            return None
        out = []
        if o.responded_at is None and o.response_due is not None:
            out.append(self._risk_of(p, cal, o.response_due, p.response_minutes))
        if o.completed_at is None and o.closed_at is None and o.resolve_due is not None:
            out.append(self._risk_of(p, cal, o.resolve_due, p.resolve_minutes))
        return min(out, default=None)

    def on_create(self, o: _Order) -> None:
        """``sla.on_create``, except that the at-risk moment is left to ``finish``."""
        o.response_due, o.resolve_due = self.deadlines(o, o.created_at)
        o.sla_state = sla.state_at(o, o.created_at)
        o.last_move_at = o.created_at

    def on_move(self, o: _Order, move: str, from_status: str, to_status: str, now: dt.datetime) -> None:
        """``sla.on_move``, except that the at-risk moment is left to ``finish``: it changes no
        decision on the way (only ``breached`` sticks, and that does not depend on it)."""
        if move in _CLOCK_MOVES or to_status in sla.PAUSING or o.sla_paused_at is not None:
            p, cal = self.policy(o.type, o.priority)
            if move == "classify":
                o.response_due, o.resolve_due = self.deadlines(o, o.created_at)
            elif move == "reopen":
                if p is not None:
                    o.resolve_due = self.add(cal, now, dt.timedelta(minutes=p.resolve_minutes))
                o.resolve_breached = False
            if to_status in sla.PAUSING and from_status not in sla.PAUSING:
                o.sla_paused_at = now
            elif to_status not in sla.PAUSING and o.sla_paused_at is not None:
                paused_from = o.sla_paused_at
                pause = cal.between(paused_from, now)
                for f in ("response_due", "resolve_due"):
                    due = getattr(o, f)
                    if due is not None and due > paused_from:
                        setattr(o, f, cal.add(paused_from, cal.between(paused_from, due) + pause))
                o.sla_paused_at = None
            o.next_due = _STALE  # the sweep looks again
        if o.sla_state != SlaState.BREACHED or move == "reopen":
            o.sla_state = sla.state_at(o, now)
        o.last_move_at = now

    def finish(self, o: _Order, now: dt.datetime) -> None:
        """The at-risk moment and the state as the last move left them; for an open order whose
        clock runs, the sweep's second step up to ``now``."""
        p, cal = self.policy(o.type, o.priority)
        o.sla_risk_at = self.risk_at(o, p, cal)
        if o.sla_state != SlaState.BREACHED:
            o.sla_state = sla.state_at(o, o.last_move_at)
        still_due = o.responded_at is None or (o.completed_at is None and o.closed_at is None)
        if (o.status not in workflow.TERMINAL and o.sla_state == SlaState.OK and o.sla_paused_at is None
                and still_due and o.sla_risk_at is not None and o.sla_risk_at <= now):
            o.sla_state = SlaState.AT_RISK

    def callback_due(self, o: _Order, now: dt.datetime) -> dt.datetime:
        """``feedback.services._due``: the end of the next working day."""
        _p, cal = self.policy(o.type, o.priority)
        day = now.astimezone(self.tz).date()
        key = (id(cal), day)
        due = self._callback_due.get(key)
        if due is None:
            d = day
            for _ in range(30):
                d += dt.timedelta(days=1)
                w = cal.window(d, self.tz)
                if w is not None:
                    due = w[1]
                    break
            else:
                due = now + dt.timedelta(hours=48)
            self._callback_due[key] = due
        return due


# ==================================================================== the builder


class HistoryBuilder:
    """Makes the history: reads the world, draws the arrivals, and has each partition — the
    outlets of one service centre, which share nothing with the others' (transfers stay among
    sibling outlets; a unit's orders go to the outlet of its address) — walk its orders. The
    partitions run in forked worker processes where the platform allows (``workers``) and hand
    their rows, ready to insert, to this process, which writes them; without workers they run
    here one after the other. Either way the data is the same."""

    def __init__(self, *, orders: int, seed: int, today: dt.date, now: dt.datetime, progress_stream=None,
                 days: int = DAYS, chunk: int = CHUNK, workers: int | None = None):
        self.n = orders
        self.seed = seed
        self.today = today
        self.now = now.astimezone(dt.UTC).replace(microsecond=0)
        self.stream = progress_stream
        self.days = days
        self.chunk = chunk
        self.workers = workers
        self.tz = timezone.get_current_timezone()
        self.fmt = _Time()
        self.counts: dict[str, int] = defaultdict(int)
        self.stats: dict[str, int] = defaultdict(int)

    # ---------------------------------------------------------------- local time (shared by the partitions)

    def local(self, t: dt.datetime) -> dt.datetime:
        return t.astimezone(self.tz)

    def at(self, d: dt.date, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
        return dt.datetime(d.year, d.month, d.day, hour, minute, second, tzinfo=self.tz).astimezone(dt.UTC)

    # ---------------------------------------------------------------- run

    def run(self) -> dict[str, int]:
        self.w = _World()
        if not self.w.outlets or not self.w.units:
            return {}
        self.Booking = _model("dispatch", "Booking")
        self.Task = _model("feedback", "CallbackTask")
        self.Survey = _model("feedback", "Survey")
        self.Message = _model("notifications", "Message")
        if self.Task is None or self.Survey is None:
            self.Task = self.Survey = None  # both or neither
        self.order_fields = list(WorkOrder._meta.concrete_fields)
        self.sms_from = self.now - dt.timedelta(days=SMS_SAMPLE_DAYS)
        self.audit_at = timezone.now()
        self.audit_iso = self.audit_at.astimezone(dt.UTC).isoformat(timespec="microseconds")
        self.id_base = {m: _id_base(m) for m in (WorkOrder, self.Task, self.Survey) if m is not None}
        self.clock = _Clock()  # the SLA policies and each working day's deadlines, read here once
        self.clock.load(self.today - dt.timedelta(days=self.days + 1), self.today + dt.timedelta(days=15))

        rng = random.Random(f"aftersales-demo-orders:{self.seed}")
        arrivals = self._arrivals(rng)
        by_part: dict[int, list] = defaultdict(list)
        for spec in self._draw(rng, arrivals):
            by_part[self.w.partition[spec[6]]].append(spec)
        keys = sorted(by_part)
        parts = [_Partition(self, i, len(keys), by_part[k]) for i, k in enumerate(keys)]

        total = sum(len(part.specs) for part in parts)
        p = Progress(total, "工单", self.stream, live=None) if self.stream is not None else None
        labels = {m._meta.db_table: m._meta.label for m in (WorkOrder, OrderEvent, AuditEntry, UnitRepair,
                                                              self.Booking, self.Task, self.Survey, self.Message)
                  if m is not None}
        summaries = []
        with _bulk_load():
            for kind, payload, n in self._produce(parts):
                if kind == "done":
                    summaries.append(payload)
                    continue
                with transaction.atomic(), connection.cursor() as cur:
                    sink = _Sink(cur)
                    for table, cols, rows in payload:
                        sink.many(table, cols, rows)
                        self.counts[labels[table]] += len(rows)
                if p:
                    p.advance(n)
            with transaction.atomic():
                self._finish(summaries)
        if p:
            p.finish()
        return dict(self.counts)

    def _workers(self, parts: list[_Partition]) -> int:
        """How many partitions run at once in worker processes (0: none, all here): all of them
        when there is more than one core, the platform forks, and there are enough orders."""
        import multiprocessing

        if len(parts) < 2 or "fork" not in multiprocessing.get_all_start_methods():
            return 0
        if self.workers is not None:
            return self.workers
        return len(parts) if (os.cpu_count() or 1) > 1 and self.n >= PARALLEL_FROM else 0

    def _produce(self, parts: list[_Partition]):
        """(kind, payload, base orders) from the partitions: in worker processes when there
        are workers, else here."""
        workers = self._workers(parts)
        if workers <= 1:
            for part in parts:
                yield from part.produce()
            return
        import multiprocessing
        from multiprocessing.connection import wait

        ctx = multiprocessing.get_context("fork")
        pending, procs, conns = list(parts), [], {}

        def start() -> None:
            part = pending.pop(0)
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_work, args=(part, send), name=f"demo-orders-{part.index}", daemon=True)
            proc.start()
            send.close()
            procs.append(proc)
            conns[recv] = part

        try:
            while pending and len(conns) < workers:
                start()
            while conns:
                for recv in wait(list(conns)):
                    try:
                        item = _unpack(recv.recv_bytes())
                    except EOFError:
                        raise RuntimeError(f"demo orders: partition {conns[recv].index} stopped") from None
                    if item[0] == "error":
                        raise RuntimeError(f"demo orders: partition {conns[recv].index} failed:\n{item[1]}")
                    yield item
                    if item[0] == "done":
                        recv.close()
                        del conns[recv]
                        if pending:
                            start()
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
                proc.join()

    def _finish(self, summaries: list[dict]) -> None:
        """What the partitions found out as they went: complaints opened by surveys, the last
        number of each day, the outcome figures."""
        links, last = [], dict(self.w.sequences)
        for s in summaries:
            links += s["complaint_links"]
            for day, n in s["last_number"].items():
                last[day] = max(last.get(day, 0), n)
            for k, v in s["stats"].items():
                self.stats[k] += v
        with connection.cursor() as cur:
            if self.Survey is not None and links:
                cur.executemany(f"UPDATE {self.Survey._meta.db_table} SET complaint_id = %s WHERE id = %s",
                                [(c, s) for s, c in links])
            changed = sorted((d, n) for d, n in last.items() if n != self.w.sequences.get(d))
            if changed:
                table = DailySequence._meta.db_table
                cur.executemany(f"INSERT INTO {table} (day, last) VALUES (%s, %s) "
                                f"ON CONFLICT (day) DO UPDATE SET last = excluded.last",
                                [(self.fmt.day(d), n) for d, n in changed])
            if connection.vendor != "sqlite":  # SQLite's AUTOINCREMENT follows the explicit ids
                for sql in connection.ops.sequence_reset_sql(no_style(), list(self.id_base)):
                    cur.execute(sql)

    # ---------------------------------------------------------------- arrivals

    def _arrivals(self, rng: random.Random) -> list[dt.datetime]:
        """When the requests come in: more on weekends, holidays, summer; by hour of the day."""
        first = self.today - dt.timedelta(days=self.days)
        days = [first + dt.timedelta(days=k) for k in range(self.days + 1)]
        p, cal = self.clock.policy(T.REPAIR, Priority.NORMAL)
        holidays = set(cal.holidays) if p is not None else set()
        weights = [WEEKDAY_FACTOR[d.weekday()] * MONTH_FACTOR.get(d.month, 1.0) * (1.25 if d in holidays else 1.0)
                   for d in days]
        hours_wd, hours_we = _cum(enumerate(HOURS_WORKDAY)), _cum(enumerate(HOURS_WEEKEND))
        out = []
        while len(out) < self.n:
            for d in rng.choices(days, weights=weights, k=self.n - len(out)):
                weekend = d.weekday() >= 5 or d in holidays
                h = _pick(rng, hours_we if weekend else hours_wd)
                t = self.at(d, h, rng.randrange(60), rng.randrange(60))
                if t < self.now:
                    out.append(t)
        out.sort()
        return out

    def _draw(self, rng: random.Random, arrivals: list[dt.datetime]):
        """What each request is about: (time, type, unit or None, customer, address, channel,
        node, priority). The rest of its story is its partition's."""
        w = self.w
        for t in arrivals:
            day = self.local(t).date()
            order_type = _pick(rng, _TYPES)
            unit = None
            for _ in range(4):
                unit = self._pick_unit(rng, order_type, day)
                if unit is not None:
                    break
                order_type = T.REPAIR
            if unit is None:
                continue
            with_unit = order_type not in (T.CONSULTATION, T.COMPLAINT) or rng.random() < 0.6
            cust, u_addr = unit[1], unit[7]
            address = (u_addr if with_unit else None) or w.default_address.get(cust)
            node = w.node_for(cust, address)
            channel = _pick(rng, _CHANNELS)
            priority = _pick(rng, _PRIORITIES)
            if node is None:
                continue
            if order_type == T.COMPLAINT and priority in (Priority.LOW, Priority.NORMAL):
                priority = Priority.HIGH
            yield (t, order_type, unit if with_unit else None, cust, address, channel, node, priority)

    def _pick_unit(self, rng: random.Random, order_type: str, day: dt.date):
        """A unit for an order of this type on ``day`` (bought by then); None to try another type."""
        w = self.w
        units = w.units
        if order_type in (T.INSTALLATION, T.DELIVERY, T.RETURN_EXCHANGE):
            lo_days = 15 if order_type == T.RETURN_EXCHANGE else 25
            lo = bisect.bisect_left(w.purchase_ord, (day - dt.timedelta(days=lo_days)).toordinal())
            hi = bisect.bisect_right(w.purchase_ord, day.toordinal())
            if hi <= lo:
                return None
            return units[w.by_purchase[rng.randrange(lo, hi)]]
        if order_type == T.RECYCLING:
            hi = bisect.bisect_right(w.purchase_ord, (day - dt.timedelta(days=1095)).toordinal())
            return units[w.by_purchase[rng.randrange(hi)]] if hi else None
        for _ in range(8):
            u = units[rng.randrange(len(units))]
            if u[4] <= day:
                return u
        return None


def _pack(item) -> bytes:
    """A worker's message: ``marshal`` (several times quicker than pickle both ways) for rows
    of plain values, as on SQLite; pickle for anything else (dates on other databases)."""
    try:
        return b"M" + marshal.dumps(item)
    except ValueError:
        return b"P" + pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)


def _unpack(data: bytes):
    return marshal.loads(data[1:]) if data[:1] == b"M" else pickle.loads(data[1:])  # noqa: S301 - our worker


def _no_database(execute, sql, params, many, context):
    raise RuntimeError("demo orders: a worker process must not use the database connection it inherited")


def _work(part: _Partition, send) -> None:
    """A worker process: walk the partition, send its rows (and at the end, its summary). It
    has everything it needs in memory; the connection it inherited stays the parent's."""
    try:
        with connection.execute_wrapper(_no_database):
            for item in part.produce():
                send.send_bytes(_pack(item))
    except BaseException:  # noqa: BLE001 - reported to the parent, which stops
        import traceback

        send.send_bytes(_pack(("error", traceback.format_exc(), 0)))
    finally:
        send.close()


class _Partition:
    """The orders of one service centre's outlets, walked in the order they come in. Ids and
    numbers interleave with the other partitions' (partition ``index`` of ``count`` takes
    every ``count``-th), so they never collide and the result does not depend on which
    partition runs first, or where."""

    def __init__(self, builder: HistoryBuilder, index: int, count: int, specs: list):
        b = builder
        self.b = b
        self.index, self.count = index, count
        self.specs = specs
        self.w, self.now, self.today, self.seed, self.tz, self.fmt = b.w, b.now, b.today, b.seed, b.tz, b.fmt
        self.local, self.at = b.local, b.at
        self.Booking, self.Task, self.Survey, self.Message = b.Booking, b.Task, b.Survey, b.Message
        self.sms_from, self.audit_at, self.audit_iso = b.sms_from, b.audit_at, b.audit_iso
        self.order_fields = b.order_fields
        self.rng = random.Random(f"aftersales-demo-orders:{b.seed}:{index}")
        self.clock = _Clock(b.clock)
        self.stats: dict[str, int] = defaultdict(int)
        self.warranty_calls = 0
        self.hash_checked: bool | None = None  # the audit hash put together = entry_hash's (None: not yet seen)
        self.busy: dict[tuple[int, int], int] = {}  # (technician, day) -> the slots taken (bits)
        self.day_slots: dict[int, list[dt.datetime]] = {}  # day -> the slots' starts
        self.rows: dict[str, list] = defaultdict(list)  # the current chunk's rows besides orders and events
        self.sibling_cache: dict[int, list[int]] = {}
        self.choice_cache: dict[tuple, tuple] = {}
        self.ids = {m: 0 for m in b.id_base}
        self.day_counts: dict[dt.date, int] = defaultdict(int)
        self.last_number: dict[dt.date, int] = {}
        self.follow_ups: list[tuple] = []  # heap of (created_at, tiebreak, spec)
        self.complaint_links: list[tuple[int, int]] = []  # (survey id, complaint order id)
        self.tie = 0

    def in_hours(self, t: dt.datetime, start: int = 8, end: int = 20, jitter: int = 40) -> dt.datetime:
        """``t`` if it falls in the working hours [start, end) of its day, else the next start
        (plus up to ``jitter`` minutes)."""
        lt = self.local(t)
        if start <= lt.hour < end:
            return t
        d = lt.date() if lt.hour < start else lt.date() + dt.timedelta(days=1)
        return self.at(d, start) + dt.timedelta(seconds=self.rng.randrange(60, jitter * 60 + 61))

    def pick(self, table: tuple[list, list]):
        return _pick(self.rng, table)

    def minutes(self, a: float, b: float) -> dt.timedelta:
        return dt.timedelta(seconds=int(self.rng.uniform(a, b) * 60))

    # ---------------------------------------------------------------- the partition's run

    def produce(self):
        """("rows", [(table, columns, rows) …], base orders) a chunk at a time, then ("done",
        summary, 0)."""
        specs = self.specs
        size = max(500, self.b.chunk // self.count)
        for i in range(0, len(specs), size):
            part = specs[i:i + size]
            horizon = specs[i + size][0] if i + size < len(specs) else self.now + dt.timedelta(seconds=1)
            yield "rows", self._chunk(part, horizon), len(part)
        yield "done", {"complaint_links": self.complaint_links, "last_number": self.last_number,
                       "stats": dict(self.stats)}, 0

    def _chunk(self, specs: list, horizon: dt.datetime) -> list:
        done: list[_Order] = []
        qi = 0
        while qi < len(specs) or (self.follow_ups and self.follow_ups[0][0] < horizon):
            if self.follow_ups and (qi >= len(specs) or self.follow_ups[0][0] <= specs[qi][0]):
                _t, _tie, spec = heapq.heappop(self.follow_ups)
                o = self._new_follow_up(spec)
            else:
                o = self._new_order(specs[qi])
                qi += 1
            if o is None:
                continue
            self._walk(o)
            done.append(o)
        rows, self.rows = self.rows, defaultdict(list)
        return self._format(done, rows)

    # ---------------------------------------------------------------- a new order

    def _next_id(self, model) -> int:
        if model is None:
            return 0
        k = self.ids[model]
        self.ids[model] = k + 1
        return self.b.id_base[model] + self.index + 1 + k * self.count

    def _number(self, t: dt.datetime) -> str:
        day = self.local(t).date()
        k = self.day_counts[day]
        self.day_counts[day] = k + 1
        n = self.w.sequences.get(day, 0) + self.index + 1 + k * self.count
        self.last_number[day] = n
        return f"GD{day:%Y%m%d}{n:06d}"

    def _node_for(self, customer_id: int, address_id: int | None) -> int | None:
        return self.w.node_for(customer_id, address_id)

    def _owner(self, node: int) -> tuple[int, str]:
        own, above = self.w.centre_agents[node]
        if above and (not own or self.rng.random() < 0.15):
            return self.rng.choice(above)
        return self.rng.choice(own)

    def _problem(self, o: _Order, cat_id: int | None) -> str:
        rng, w = self.rng, self.w
        cat = w.category_name.get(cat_id, "家电") if cat_id else "家电"
        if o.type == T.CONSULTATION:
            q, a = rng.choice(CONSULTATIONS)
            o.answer_text = a.format(cat=cat)
            return q.format(cat=cat)
        fault = w.fc_name.get(o.fault_category_id, "故障")
        if o.type in PROBLEM_BY_TYPE:
            return rng.choice(PROBLEM_BY_TYPE[o.type]).format(cat=cat, fault=fault)
        phrases = PROBLEMS.get(o.fc_code)
        text = rng.choice(phrases) if phrases else f"{fault}，请安排师傅上门检查"
        return f"{cat}{text}"

    def _new_order(self, spec: tuple) -> _Order:
        t, order_type, unit, customer, address, channel, node, priority = spec
        return self._make(t, order_type=order_type, channel=channel, priority=priority, unit=unit,
                          customer=customer, address=address, node=node, owner=self._owner(node))

    def _new_follow_up(self, spec: dict) -> _Order:
        o = self._make(spec["created_at"], order_type=T.COMPLAINT, channel=spec["channel"], priority=Priority.HIGH,
                       unit=spec["unit"], customer=spec["customer"], address=spec["address"], node=spec["node"],
                       owner=spec["owner"], problem=spec["problem"], parent=spec["parent"], order_id=spec["id"])
        # the node's managers are told (``feedback.services._outcome``)
        for uid, label in self.w.managers.get(spec["parent_node"], {}).get(1, []):
            self._staff(spec["parent_number"], spec["parent"], spec["parent_node"], o.created_at, uid, label,
                        "complaint", number=spec["parent_number"], complaint=o.number)
        return o

    def _make(self, t, *, order_type, channel, priority, unit, customer, address, node, owner, problem=None,
              parent=None, order_id=None) -> _Order:
        rng, w = self.rng, self.w
        o = _Order()
        o.id = order_id or self._next_id(WorkOrder)
        o.number = self._number(t)
        o.type, o.channel, o.priority, o.status = order_type, channel, priority, S.RECEIVED
        o.customer_id, o.address_id, o.node_id, o.home_node = customer, address, node, node
        o.owner_id = owner[0]
        o.unit = unit
        o.unit_id = unit[0] if unit else None
        o.parent_id = parent
        o.created_at = o.updated_at = t
        o.day = self.local(t).date()
        o.follow_up = parent is not None
        cat_id = unit[3] if unit else None
        if unit and order_type in (T.REPAIR, T.RETURN_EXCHANGE):
            faults = w.faults_for.get(cat_id) or []
            if faults:
                o.fault_category_id = rng.choice(faults)
                o.fc_code = w.fc_code[o.fault_category_id]
        o.problem = problem or self._problem(o, cat_id)
        # the customer's wished window for a visit (about four in ten say when)
        if order_type not in (T.CONSULTATION, T.COMPLAINT) and rng.random() < 0.4:
            d = o.day + dt.timedelta(days=self.pick(_WISH_DAYS))
            start, end = rng.choice(((8, 12), (13, 18), (18, 20), (8, 20)))
            o.wish_from, o.wish_to = self.at(d, start), self.at(d, end)
        if unit:
            self._warranty(o, o.fc_code, None)
        else:
            o.warranty_free = None
        self.clock.on_create(o)
        self._event(o, t, owner, "create", "", S.RECEIVED, note=o.problem,
                    data={"channel": channel, "type": order_type, "priority": priority, "owner": owner[0]})
        return o

    def _warranty(self, o: _Order, fault_key: str | None, part_code: str | None) -> None:
        """``customers.warranty.unit_warranty`` on the order's day, from the facts in memory:
        ``_warranty_kind`` (the kind of ``catalog.warranty.decide`` without its texts, ten
        times cheaper), checked against ``decide`` itself every 50th time."""
        uid, _c, model, _cat, purchased, exchanged, invoice, _a = o.unit
        if o.day < purchased:
            return
        args = dict(purchase_date=purchased, on=o.day, fault_key=fault_key or part_code or None,
                    is_main_part=bool(part_code) and part_code in self.w.main_parts.get(model, {}),
                    exchanged_on=exchanged, has_invoice=invoice, repairs=self.w.repairs.get(uid, ()))
        kind = _warranty_kind(self.w.terms[model], **args)
        self.warranty_calls += 1
        if self.warranty_calls % 50 == 1:
            exact = str(decide(self.w.terms[model], **args).kind)
            self.stats["warranty_checked"] += 1
            if exact != kind:
                self.stats["warranty_mismatch"] += 1
                kind = exact
        o.warranty_kind, o.warranty_free = kind, kind != DecisionKind.CHARGEABLE

    # ---------------------------------------------------------------- events

    def _event(self, o: _Order, t: dt.datetime, actor, action: str, frm: str, to: str, note: str = "",
               data: dict | None = None) -> None:
        """Append an event to the order's history, as the row it will be (the times are in order)."""
        events = o.events
        events.append((o.id, len(events) + 1, self.fmt.ts(t), actor[0] if actor else None,
                       actor[1] if actor else SYSTEM, action, _PLAIN.get(frm, frm), _PLAIN.get(to, to), note,
                       _JSON(data) if data else "{}"))
        o.updated_at = t

    # ---------------------------------------------------------------- the walk

    def _walk(self, o: _Order) -> None:
        t = o.created_at
        for _step in range(MAX_STEPS):
            if o.status in workflow.TERMINAL:
                break
            move = self._choose(o)
            if move is None:
                break
            plan = self._plan(o, move, t)
            if plan is None:
                break
            t_next, args = plan
            t_next = max(t_next, t + dt.timedelta(seconds=1))
            self._sweep(o, t, min(t_next, self.now))
            if t_next > self.now:
                break
            if not self._apply(o, move, t_next, args):
                break  # the rest lies after now
            t = o.updated_at
        if o.status not in workflow.TERMINAL:
            self._sweep(o, t, self.now)
        self.clock.finish(o, self.now)
        self._reminders(o)

    def _choose(self, o: _Order) -> str | None:
        """One of the moves ``workflow.moves_from`` allows now (escalations are the sweep's),
        drawn by ``_weight``. The weights depend on a few facts only, so they are kept per
        combination of those."""
        key = (o.status, o.type, o.node_id, o.follow_up, o.transferred, o.decline_count > 0, o.reassign_count > 0,
               o.parts_waits > 0, o.reopen_count > 0, o.warranty_free is False)
        hit = self.choice_cache.get(key)
        if hit is None:
            cands = [m.name for m in workflow.moves_from(o.status, o.type) if m.name != "escalate"]
            cum, acc = [], 0.0
            for m in cands:
                acc += self._weight(o, m)
                cum.append(acc)
            hit = self.choice_cache[key] = (cands, cum, acc)
        cands, cum, total = hit
        if total <= 0:
            return None
        return cands[min(bisect.bisect_right(cum, self.rng.random() * total), len(cands) - 1)]

    def _weight(self, o: _Order, m: str) -> float:
        """How likely move ``m`` is now (the table has said it is possible)."""
        st, ty = o.status, o.type
        if m == "cancel":
            if o.follow_up:
                return 0.0
            w = CANCEL_WEIGHT.get(st, 0.0)
            return w * 6 if st == S.DIAGNOSING and o.warranty_free is False else w
        if m == "transfer":
            if o.transferred or o.follow_up or not self._siblings(o.node_id):
                return 0.0
            return TRANSFER_WEIGHT.get(st, 0.0)
        if m == "classify":
            return 1.0 if st == S.RECEIVED else 0.0
        if m == "answer":
            return {S.RECEIVED: 5.0, S.CLASSIFIED: 2.5, S.REOPENED: 1.0}.get(st, 0.0)
        if m == "dispatch":
            return 0.4 if ty == T.CONSULTATION else 1.0
        if m == "decline":
            if len(self.w.techs[o.node_id]) < 2:
                return 0.0
            return 0.048 if o.decline_count == 0 else 0.008
        if m == "reassign":
            if len(self.w.techs[o.node_id]) < 2 or not self.w.dispatchers.get(o.node_id):
                return 0.0
            return 0.016 if o.reassign_count == 0 else 0.003
        if m == "diagnose":
            return _DIAGNOSE.get(ty, 1.0)
        if m == "repair":
            fixing = ty in _FIXING
            if st == S.ON_SITE:
                return 0.12 if fixing else 0.0
            return 1.0 if fixing else 0.15
        if m == "complete":
            if st == S.ON_SITE:
                return _COMPLETE_ON_SITE.get(ty, 0.03)
            if st == S.DIAGNOSING:
                return 0.1 if ty in _FIXING else 1.0
            return 1.0
        if m == "wait_parts":
            if ty not in (T.REPAIR, T.RETURN_EXCHANGE):
                return 0.0
            if st == S.DIAGNOSING:
                return 0.085 if o.parts_waits == 0 else 0.01
            return 0.02 if o.parts_waits == 0 else 0.0
        if m == "wait_customer":
            return {S.ON_SITE: 0.016, S.DIAGNOSING: 0.024, S.REPAIRING: 0.008}.get(st, 0.0)
        if m == "close":
            return 0.95  # the call-back round (``_round``) decides between these two
        if m == "reopen":
            if st != S.CALLBACK:
                return 0.0
            return 0.06 if o.reopen_count == 0 else 0.015
        if m in ("accept", "depart", "arrive", "resume", "callback"):
            return 1.0
        return 0.0

    def _siblings(self, node: int) -> list[int]:
        """Other outlets of the same service centre an order may be transferred to."""
        found = self.sibling_cache.get(node)
        if found is None:
            path = self.w.path[node]
            parent = path[-2] if len(path) > 1 else None
            found = self.sibling_cache[node] = [n for n in self.w.outlets if n != node and len(self.w.path[n]) > 1
                                                and self.w.path[n][-2] == parent]
        return found

    # ---------------------------------------------------------------- who, when, and with what

    def _handler(self, o: _Order) -> tuple[int, str] | None:
        """Who makes an order.handle move at the order's node: the owner if they may, else an agent there."""
        if self.w.may_handle(o.owner_id, o.node_id):
            return o.owner_id, self.w.user_label[o.owner_id]
        hs = self.w.handlers.get(o.node_id)
        return self.rng.choice(hs) if hs else None

    def _dispatcher(self, o: _Order):
        ds = self.w.dispatchers.get(o.node_id)
        return self.rng.choice(ds) if ds else None

    def _tech_user(self, o: _Order):
        u = self.w.emp_user[o.assignee_id]
        return u, self.w.user_label[u]

    def _plan(self, o: _Order, m: str, t: dt.datetime):
        """(when, arguments) of move ``m`` made after ``t``; None when it cannot be made."""
        rng = self.rng
        mins = self.minutes
        phone = o.channel in (Channel.PHONE, Channel.WALK_IN)
        if m == "classify":
            return self.in_hours(t + (mins(1, 6) if phone else mins(5, 90)), 8, 21), None
        if m == "answer":
            base = t + (mins(2, 20) if phone else mins(10, 150))
            if rng.random() < 0.1:
                base += mins(120, 900)  # a slow answer
            return self.in_hours(base, 8, 21), None
        if m in ("dispatch", "reassign"):
            if m == "reassign":
                delay = mins(15, 180)
            elif o.type == T.COMPLAINT or o.priority == Priority.URGENT:
                delay = mins(5, 50)
            else:
                r = rng.random()
                delay = (dt.timedelta(hours=rng.uniform(30, 100)) if r < 0.045  # forgotten in the queue
                         else mins(120, 900) if r < 0.12 else mins(4, 90))
            when = self.in_hours(t + delay, 8, 20)
            actor = self._dispatcher(o) if m == "reassign" or rng.random() < 0.97 else None  # else auto-dispatch
            if m == "reassign" and actor is None:
                return None
            slot = self._slot(o, when, exclude={o.assignee_id} if m == "reassign" else o.declined)
            if slot is None:
                return None
            return when, (actor, slot)
        if m == "accept":
            when = self.in_hours(t + mins(2, 45), 8, 20, 20)
            latest = o.visit_from - dt.timedelta(minutes=25)
            if when > latest:
                when = max(t + mins(1, 5), latest)
            return when, None
        if m == "decline":
            return self.in_hours(t + mins(5, 70), 8, 20, 20), rng.choice(DECLINE_REASONS)
        if m == "depart":
            return max(o.visit_from - mins(15, 50), t + mins(1, 10)), None
        if m == "arrive":
            return max(o.visit_from + dt.timedelta(minutes=rng.triangular(-20, 100, 5)), t + mins(8, 40)), None
        if m == "diagnose":
            return t + mins(3, 15), None
        if m == "repair":
            return t + (mins(10, 40) if o.status == S.DIAGNOSING else mins(5, 20)), None
        if m == "complete":
            if o.status == S.REPAIRING:
                return t + dt.timedelta(minutes=min(max(rng.lognormvariate(3.9, 0.55), 12), 300)), None
            if o.status == S.DIAGNOSING:
                return t + mins(10, 35), None
            return t + mins(*_ON_SITE_MINUTES.get(o.type, (25, 90))), None
        if m == "wait_parts":
            return t + mins(10, 35), None
        if m == "wait_customer":
            return t + mins(5, 25), None
        if m == "resume":
            days = rng.uniform(1, 5) if o.status == S.WAITING_PARTS else rng.uniform(0.6, 3)
            when = self.in_hours(t + dt.timedelta(days=days), 9, 18, 60)
            slot = self._slot(o, when + dt.timedelta(minutes=30), only=o.assignee_id)
            return (when, slot) if slot is not None else None
        if m == "callback":
            return t + dt.timedelta(seconds=rng.randint(2, 25)), None
        if m in ("close", "reopen"):
            return t, None  # the round decides when (``_round``)
        if m == "cancel":
            if o.status == S.WAITING_CUSTOMER:
                return self.in_hours(t + dt.timedelta(days=rng.uniform(1, 4)), 8, 21), None
            return self.in_hours(t + mins(10, 360), 8, 21), None
        if m == "transfer":
            return self.in_hours(t + mins(10, 120), 8, 21), rng.choice(self._siblings(o.node_id))
        return None

    # ---------------------------------------------------------------- technicians' time

    def _slot(self, o: _Order, when: dt.datetime, *, exclude=(), only: int | None = None):
        """(technician, start, end): a free two-hour slot starting at least 45 minutes after
        ``when`` — on the day the customer wished, or as the order's urgency suggests — for a
        technician of the order's outlet, those skilled in the unit's category first. The slot
        is taken for good (a released booking's time is not given out again)."""
        rng, w = self.rng, self.w
        earliest = when + dt.timedelta(minutes=45)
        first_day = self.local(earliest).date()
        prefer = None
        if only is not None:
            pools = [[only]]
        else:
            techs = [e for e in w.techs[o.node_id] if e not in exclude] or list(w.techs[o.node_id])
            cat = o.unit[3] if o.unit else None
            skilled = [e for e in techs if cat is None or cat in w.skills.get(e, ())]
            pools = [skilled, techs] if skilled and len(skilled) < len(techs) else [techs]
            if o.wish_from is not None and o.wish_from > earliest and not o.reopen_count and not o.decline_count:
                first_day = self.local(o.wish_from).date()
                prefer = self.local(o.wish_from).hour
            elif o.type != T.COMPLAINT and o.priority != Priority.URGENT:
                first_day += dt.timedelta(days=self.pick(_VISIT_DAYS))
        for k in range(45):
            d = first_day + dt.timedelta(days=k)
            order = list(range(len(SLOTS)))
            if prefer is not None and k == 0:
                order.sort(key=lambda s: (SLOTS[s] < prefer, abs(SLOTS[s] - prefer)))
            elif k == 0 and only is None and o.type != T.COMPLAINT:
                rng.shuffle(order)
            key_day = d.toordinal()
            starts = self.day_slots.get(key_day)
            if starts is None:
                starts = self.day_slots[key_day] = [self.at(d, h) for h in SLOTS]
            if starts[-1] < earliest:
                continue
            busy = self.busy
            for pool in pools:  # a skilled technician that day, else anyone free that day
                taken = [busy.get((e, key_day), 0) for e in pool]
                for s in order:
                    start = starts[s]
                    if start < earliest:
                        continue
                    bit = 1 << s
                    free = [e for e, b in zip(pool, taken, strict=True) if not b & bit]
                    if free:
                        e = free[0] if only is not None else rng.choice(free)
                        busy[(e, key_day)] = busy.get((e, key_day), 0) | bit
                        return e, start, start + SLOT
        return None

    # ---------------------------------------------------------------- applying a move

    def _apply(self, o: _Order, m: str, t: dt.datetime, args) -> bool:
        """Make move ``m`` at ``t`` with the effects ``workflow`` gives it; False when the move
        (a call-back answer) lies after now."""
        if m in ("close", "reopen"):
            return self._round(o, m, t)
        rng, w = self.rng, self.w
        frm = o.status
        data: dict = {}
        note = ""
        actor = None
        if m == "classify":
            actor = self._handler(o)
            data = {"type": o.type, "priority": o.priority}
        elif m == "answer":
            actor = self._handler(o)
            o.result = o.answer_text or "已电话答复客户"
            data = {"result": o.result}
            o.closed_at = t
        elif m in ("dispatch", "reassign"):
            actor, (emp, start, end) = args
            if m == "reassign":
                note = rng.choice(REASSIGN_REASONS)
                o.reassign_count += 1
                data["previous_assignee"] = o.assignee_id
                self._release(o, t, f"改派：{note}")
            o.assignee_id = emp
            o.appointment_from, o.appointment_to = start, end
            o.visit_from = start
            data.update(assignee=emp, assignee_name=w.emp_name[emp],
                        appointment_from=self.local(start).isoformat(), appointment_to=self.local(end).isoformat())
            self._book(o, emp, start, end, actor, t)
        elif m == "decline":
            actor = self._tech_user(o)
            note = args
            data["previous_assignee"] = o.assignee_id
            o.decline_count += 1
            o.declined.add(o.assignee_id)
            self._release(o, t, f"{workflow.MOVES['decline'].label}：{note}")
            o.assignee_id = None
            o.appointment_from = o.appointment_to = None
        elif m == "arrive":
            actor = self._tech_user(o)
            o.visit_count += 1
        elif m == "repair":
            actor = self._tech_user(o)
            data = self._work(o, with_code=True)
        elif m == "complete":
            actor = self._tech_user(o)
            if rng.random() < 0.08:
                self._confirm(o, t, actor)
            data = self._work(o, with_code=not o.fault_code_id, result=True)
            o.completed_at = t
            self._done(o, t)
            self._repair_fact(o, t)
        elif m == "wait_parts":
            actor = self._tech_user(o)
            part = w.part_names.get(o.part_code or "", "") or "相关配件"
            note = rng.choice(PARTS_REASONS).format(part=part)
            o.parts_waits += 1
        elif m == "wait_customer":
            actor = self._tech_user(o)
            note = rng.choice(CUSTOMER_REASONS)
        elif m == "resume":
            _emp, start, _end = args
            if frm == S.WAITING_PARTS:
                actor = self._dispatcher(o)
                note = "配件已到，预约再次上门"
            else:
                actor = self._tech_user(o)
                note = "已与客户约定再次上门时间"
            o.visit_from = start
        elif m == "callback":
            note = "已生成回访任务并发送评价链接。"
        elif m == "cancel":
            actor = self._handler(o)
            late = frm in (S.DIAGNOSING, S.WAITING_PARTS, S.WAITING_CUSTOMER)
            note = rng.choice(CANCEL_LATE_REASONS if late else CANCEL_REASONS)
            o.cancel_reason = note[:200]
            o.closed_at = t
            if frm in workflow.ASSIGNED:
                self._release(o, t, f"{workflow.MOVES['cancel'].label}：{note}")
        elif m == "transfer":
            actor = self._handler(o)
            note = rng.choice(TRANSFER_REASONS)
            data = {"from_node": o.node_id, "to_node": args}
            if o.assignee_id:
                data["previous_assignee"] = o.assignee_id
                self._release(o, t, f"{workflow.MOVES['transfer'].label}：{note}")
            o.node_id = args
            o.assignee_id = None
            o.appointment_from = o.appointment_to = None
            o.transferred = True
        elif m in ("accept", "depart", "diagnose"):
            actor = self._tech_user(o)
        self._move_event(o, m, t, actor, frm, note, data)
        if m == "callback":
            self._open_round(o, t)
        elif m == "depart" and t >= self.sms_from:
            a = max(t, o.appointment_from) if o.appointment_from else t
            b = o.appointment_to if o.appointment_to and o.appointment_to > a else a + dt.timedelta(hours=1)
            self._sms(o, t, "en_route", technician=w.emp_name[o.assignee_id], window=_window(self.local(a),
                                                                                            self.local(b)))
        return True

    def _move_event(self, o: _Order, m: str, t: dt.datetime, actor, frm: str, note: str, data: dict) -> None:
        """The status, the response time and the SLA clock as ``workflow.move`` keeps them, and the event."""
        to = workflow.MOVES[m].leads_to(frm)
        o.status = to
        if m in workflow.RESPONDING and o.responded_at is None:
            o.responded_at = t
        self.clock.on_move(o, m, frm, to, t)
        self._event(o, t, actor, m, frm, to, note=note, data=data)
        if m in ("dispatch", "reassign") and t >= self.sms_from:
            self._sms(o, t, "dispatched", technician=self.w.emp_name[o.assignee_id],
                      window=_window(self.local(o.appointment_from), self.local(o.appointment_to)))

    def _work(self, o: _Order, *, with_code: bool, result: bool = False) -> dict:
        """Diagnosis, fault code (which re-decides the warranty) and, at completion, actions
        and result: on the order and in the event's data."""
        rng, w = self.rng, self.w
        data: dict = {}
        if with_code and o.unit and o.type in _FIXING and (o.type != T.MAINTENANCE or rng.random() < 0.3):
            cat = o.unit[3]
            codes = w.codes.get((cat, o.fault_category_id)) or w.codes_of.get(cat)
            if codes:
                fid, code, name, part, fc = rng.choice(codes)
                o.fault_code_id, o.fault_category_id = fid, fc
                o.fc_code = w.fc_code.get(fc)
                o.part_code = part or None
                data["fault_code"] = code
                o.diagnosis = f"故障代码 {code}：{name}。{rng.choice(DIAG_TAILS)}".strip()
                self._warranty(o, o.part_code or o.fc_code, o.part_code)
        if not o.diagnosis:
            o.diagnosis = ON_SITE_DIAGNOSIS.get(o.type) or \
                f"检测确认：{w.fc_name.get(o.fault_category_id, '故障')}。{rng.choice(DIAG_TAILS)}".strip()
            data["diagnosis"] = o.diagnosis
        elif "fault_code" in data:
            data["diagnosis"] = o.diagnosis
        if result:
            if o.type in RESULT_BY_TYPE:
                o.result = rng.choice(RESULT_BY_TYPE[o.type])
            elif o.part_code:
                name = w.part_names.get(o.part_code, o.part_code)
                o.actions, o.result = f"更换{name}", f"更换{name}后试机正常"
            else:
                o.actions, o.result = rng.choice(ACTIONS), rng.choice(RESULTS)
            if o.actions:
                data["actions"] = o.actions
            data["result"] = o.result
        return data

    def _confirm(self, o: _Order, t: dt.datetime, actor) -> None:
        """The customer's confirmation by a code sent to their phone, just before completion."""
        sent = max(t - self.minutes(2, 9), o.updated_at + dt.timedelta(seconds=5))
        confirmed = sent + self.minutes(0.5, 2)
        if confirmed >= t:
            return
        self._event(o, sent, actor, "code_sent", o.status, o.status)
        self._sms(o, sent, "confirm_code", code=f"{self.rng.randrange(10**6):06d}",
                  minutes=int(CODE_TTL.total_seconds() // 60))
        self._event(o, confirmed, actor, "confirm", o.status, o.status, data={"by": "code"})
        o.confirmed_by, o.confirmed_at = "code", confirmed
        o.confirm_code_hash, o.confirm_code_expires = "", sent + CODE_TTL

    # ---------------------------------------------------------------- the SLA sweep

    def _sweep(self, o: _Order, t0: dt.datetime, t1: dt.datetime) -> None:
        """The breaches the sweep (every minute) found between ``t0`` and ``t1``: per run, one
        ``sla_breach`` event for the deadlines missed, then one ``escalate`` for each."""
        while o.sla_paused_at is None and o.status not in workflow.TERMINAL:
            due = o.next_due
            if due is _STALE:  # a move changed the clock: the next deadline the sweep would find missed
                o.next_due = due = min((d for d, pending in (
                    (o.response_due, o.responded_at is None and not o.response_breached),
                    (o.resolve_due, o.completed_at is None and o.closed_at is None and not o.resolve_breached))
                    if pending and d is not None), default=None)
            if due is None or due >= t1:
                return
            pending_response = o.responded_at is None and o.response_due is not None and not o.response_breached
            pending_resolve = (o.completed_at is None and o.closed_at is None and o.resolve_due is not None
                               and not o.resolve_breached)
            tb = max(due.astimezone(dt.UTC).replace(microsecond=0), t0) + dt.timedelta(seconds=self.rng.randint(1, 60))
            if tb > t1:
                return
            kinds = [k for k, d, pending in (("response", o.response_due, pending_response),
                                             ("resolve", o.resolve_due, pending_resolve)) if pending and d < tb]
            for k in kinds:
                setattr(o, f"{k}_breached", True)
            o.sla_state = SlaState.BREACHED
            o.next_due = _STALE
            dues_of = {k: getattr(o, f"{k}_due") for k in kinds}
            note = "；".join(f"{_KINDS[k]}超时（时限 {self.local(d):%Y-%m-%d %H:%M}）" for k, d in dues_of.items())
            self._event(o, tb, None, "sla_breach", o.status, o.status, note=note,
                        data={"kinds": kinds, **{f"{k}_due": d.astimezone(dt.UTC).isoformat()
                                                 for k, d in dues_of.items()}})
            for k in kinds:
                o.escalation_level += 1
                self._move_event(o, "escalate", tb, None, o.status, f"{_KINDS[k]}超时，自动升级。",
                                 {"level": o.escalation_level})
                for uid, label in self.w.managers.get(o.node_id, {}).get(min(o.escalation_level, 3), []):
                    self._staff(o.number, o.id, o.node_id, tb, uid, label, "sla_breach", number=o.number,
                                node=self.w.node_name.get(o.node_id, ""), what=_KINDS[k], level=o.escalation_level)
            t0 = tb

    # ---------------------------------------------------------------- the call-back round

    def _open_round(self, o: _Order, t: dt.datetime) -> None:
        """``feedback.services.callback_open``: the agents' task and the customer's survey link."""
        rnd = o.reopen_count + 1
        handles = any(Perm.ORDER_HANDLE in ROLE_PERMS.get(r, ()) for r, _n in self.w.user_roles.get(o.owner_id, ()))
        task = {"id": self._next_id(self.Task), "order_id": o.id, "round": rnd,
                "assigned_to_id": o.owner_id if handles else None, "node_id": o.node_id, "status": "open",
                "due_at": self.clock.callback_due(o, t), "attempts": 0, "last_attempt_at": None, "created_at": t,
                "done_at": None, "done_by_id": None}
        token = hashlib.sha256(f"{self.seed}:{o.id}:{rnd}:{self.rng.random()}".encode()).hexdigest()[:32]
        survey = {"id": self._next_id(self.Survey), "order_id": o.id, "task_id": task["id"], "node_id": o.node_id,
                  "channel": "link", "token_hash": hashlib.sha256(token.encode()).hexdigest(), "created_at": t,
                  "expires_at": t + SURVEY_TTL, "closed_at": None, "answered_at": None, "comment": "",
                  "answered_by_id": None, "complaint_id": None}
        o.tail = (task, survey)
        self.rows["task"].append(task)
        self.rows["survey"].append(survey)
        if t < self.sms_from:
            return
        result = (o.result or "").replace("\n", " ")
        self._sms(o, t, "completed", result=result[:60] + ("…" if len(result) > 60 else ""))
        self._sms(o, t, "survey", link=f"{settings.PUBLIC_BASE_URL.rstrip('/')}/feedback/s/{token}/",
                  days=SURVEY_TTL.days)

    def _round(self, o: _Order, m: str, t: dt.datetime) -> bool:
        """The answer of the round — the customer's link, the agent's call, or three calls
        nobody answered — and its outcome in the same moment: a complaint follow-up for any
        score ≤ 2, then reopen (not resolved) or close. False when it lies after now."""
        rng, w = self.rng, self.w
        task, survey = o.tail
        agent = (task["assigned_to_id"], w.user_label[task["assigned_to_id"]]) if task["assigned_to_id"] else \
            self._handler(o)
        call_at = self.in_hours(t + self.minutes(20, 1200), 9, 20, 30)
        call_at = min(call_at, max(task["due_at"], t + dt.timedelta(minutes=5)))
        link_at = t + dt.timedelta(minutes=min(max(rng.lognormvariate(4.6, 1.3), 4), 6 * 24 * 60))
        by_link = rng.random() < 0.38 and link_at < call_at
        reopen = m == "reopen"
        if not by_link and not reopen and rng.random() < 0.05:  # three calls, nobody answers
            times = [call_at, call_at + self.minutes(60, 200), self.in_hours(call_at + dt.timedelta(hours=20), 9, 20)]
            for k, at in enumerate(times, start=1):
                if at > self.now:
                    return False
                task["attempts"], task["last_attempt_at"] = k, at
                self._event(o, at, agent, "callback_attempt", o.status, o.status,
                            note=f"回访未接通（第 {k} 次）。", data={"task": task["id"], "attempt": k})
            task["status"], task["done_at"], task["done_by_id"] = "unreachable", at, agent[0] if agent else None
            self._outcome(o, "close", at, agent, f"{len(times)} 次回访均未接通，关闭工单。")
            return True
        at = link_at if by_link else call_at
        if at > self.now:
            return False
        low = not o.follow_up and rng.random() < (0.25 if reopen else 0.015)
        scores = self._scores(low, reopen)
        overall = (sum(scores) + 2) // 4
        comment = rng.choice(COMMENTS_BAD if (low or reopen) else COMMENTS_GOOD)
        answers = {**dict(zip(_SCORES, scores, strict=True)), "overall": overall, "resolved": not reopen,
                   "comment": comment, "answered_at": at}
        if by_link:
            survey.update(answers)
            answer, by = survey, None
        else:
            if survey["answered_at"] is None and survey["closed_at"] is None:
                survey["closed_at"] = at
            answer = {"id": self._next_id(self.Survey), "order_id": o.id, "task_id": task["id"],
                      "node_id": o.node_id, "channel": "phone", "token_hash": None, "created_at": at,
                      "expires_at": None, "closed_at": None, "answered_by_id": agent[0] if agent else None,
                      "complaint_id": None, **answers}
            self.rows["survey"].append(answer)
            by = agent
        task["status"], task["done_at"], task["done_by_id"] = "done", at, (by[0] if by else None)
        summary = "、".join(f"{n} {v}" for n, v in zip(_SCORE_NAMES, (*scores, overall), strict=True))
        summary += "；" + ("未解决" if reopen else "已解决") + (f"；客户意见：{comment}" if comment else "")
        self._event(o, at, by, "survey", o.status, o.status, note=summary,
                    data={"survey": answer["id"], "channel": answer["channel"],
                          **dict(zip(_SCORES, scores, strict=True)), "overall": overall, "resolved": not reopen})
        if low:
            self._complaint(o, answer, at, by, summary)
        if reopen:
            self._outcome(o, "reopen", at, by, "客户回访：问题未解决。" + (f" {comment}" if comment else ""))
        else:
            self._outcome(o, "close", at, by, "回访满意，关闭工单。")
        return True

    def _outcome(self, o: _Order, m: str, t: dt.datetime, by, text: str) -> None:
        """``feedback.services._move``: made by the agent where the table lets them, else by
        the system on their behalf (their name in the note)."""
        mover = by if by is not None and self.w.may_handle(by[0], o.node_id) else None
        data: dict = {}
        note = text
        if by is not None and mover is None:
            note = f"{text}（回访人：{by[1]}）"
            if m == "reopen":
                data["reason"] = text
        frm = o.status
        if m == "reopen":
            o.reopen_count += 1
            o.completed_at = o.closed_at = None
            o.confirmed_by, o.confirmed_at = "", None
            o.confirm_code_hash, o.confirm_code_expires = "", None
            self._move_event(o, m, t, mover, frm, note, data)
            self._sms(o, t, "reopened")
        else:
            o.closed_at = t
            self._move_event(o, m, t, mover, frm, note, data)

    def _scores(self, low: bool, unresolved: bool) -> list[int]:
        rng = self.rng
        if low:
            scores = [rng.choice((1, 2, 3, 3, 4)) for _ in _SCORES]
            scores[rng.randrange(len(scores))] = rng.choice((1, 2))
            return scores
        if unresolved:
            return [rng.choice((3, 3, 4, 4, 5)) for _ in _SCORES]
        return [self.pick(_GOOD_SCORES) for _ in _SCORES]

    def _complaint(self, o: _Order, answer: dict, t: dt.datetime, by, summary: str) -> None:
        """``feedback.services._complaint_open``: a complaint order filed by the owner (else the
        agent who took the answer) in the same moment, its parent the order."""
        w = self.w
        customer_node = w.customer[o.customer_id][0]
        actor = next(((u, w.user_label[u]) for u in (o.owner_id, by[0] if by else None)
                      if u is not None and w.may_create(u, customer_node)), None)
        if actor is None:  # an agent, else the manager, of the customer's outlet
            found = sorted(w.roles.get((Role.AGENT, customer_node), [])) or \
                sorted(w.roles.get((Role.OUTLET_MANAGER, customer_node), []))
            actor = found[0] if found else None
        if actor is None:
            return
        child = self._next_id(WorkOrder)
        self.complaint_links.append((answer["id"], child))
        self.tie += 1
        spec = {"id": child, "created_at": t, "channel": Channel.PHONE if answer["channel"] == "phone" else Channel.WEB,
                "unit": o.unit, "customer": o.customer_id, "address": o.address_id,
                "node": self._node_for(o.customer_id, o.address_id) or o.home_node, "owner": actor,
                "problem": f"客户回访评分偏低（原工单 {o.number}）：{summary}", "parent": o.id,
                "parent_number": o.number, "parent_node": o.node_id}
        heapq.heappush(self.follow_ups, (t, self.tie, spec))

    # ---------------------------------------------------------------- bookings, repairs, messages

    def _book(self, o: _Order, emp: int, start, end, actor, t) -> None:
        """``dispatch.services``: the technician's time held for the order."""
        b = {"employee_id": emp, "order_id": o.id, "starts_at": start, "ends_at": end, "active": True,
             "created_by_id": actor[0] if actor else None, "created_at": t, "released_at": None,
             "release_reason": "", "done_at": None, "reminded_at": None}
        o.booking = b
        o.bookings.append(b)
        self.rows["booking"].append(b)

    def _release(self, o: _Order, t, reason: str) -> None:
        b = o.booking
        if b is not None and b["active"] and b["done_at"] is None:
            b["active"], b["released_at"], b["release_reason"] = False, t, reason[:200]
        o.booking = None

    def _done(self, o: _Order, t) -> None:
        b = o.booking
        if b is not None and b["active"] and b["done_at"] is None:
            b["done_at"] = t
            if b["starts_at"] < t < b["ends_at"]:
                b["ends_at"] = t

    def _reminders(self, o: _Order) -> None:
        """``dispatch.services.appointment_reminders``: once, within 24 hours of the start,
        while the booking still held."""
        for b in o.bookings:
            at = max(b["created_at"], b["starts_at"] - dt.timedelta(hours=24)) + \
                dt.timedelta(seconds=self.rng.randint(5, 90))
            ends = [x for x in (b["released_at"], b["done_at"], b["starts_at"]) if x is not None]
            if at <= self.now and at < min(ends):
                b["reminded_at"] = at
                if at >= self.sms_from:
                        self._sms(o, at, "appointment", technician=self.w.emp_name[b["employee_id"]],
                              window=_window(self.local(b["starts_at"]), self.local(b["ends_at"])))

    def _repair_fact(self, o: _Order, t) -> None:
        """``workflow._record_repair``: the unit's repair, which the next 三包 decision reads."""
        if not o.unit or o.type not in (T.REPAIR, T.RETURN_EXCHANGE):
            return
        key = o.part_code or o.fc_code
        if not key:
            return
        started = min(max(o.day, o.unit[4]), self.today)
        finished = max(min(self.local(t).date(), self.today), started)
        free = bool(o.warranty_free)
        self.rows["repair"].append((o.unit_id, started, finished, key, free, o.number))
        self.w.repairs[o.unit_id].append(RepairFact(started_on=started, finished_on=finished, fault_key=key,
                                                    in_warranty=free))

    def _sms(self, o: _Order, t, event: str, **ctx) -> None:
        """A message to the customer, kept in the outbox (the last two weeks' only)."""
        if t < self.sms_from or self.Message is None:
            return
        node, phone = self.w.customer[o.customer_id]
        if not phone:
            return
        self.rows["message"].append({
            "channel": "sms", "event": event, "customer_id": o.customer_id, "user_id": None, "address": phone,
            "subject": "", "body": _render(event, {"number": o.number, **ctx}), "ref": o.number, "ref_id": o.id,
            "node_id": node, "status": "kept", "attempts": 1, "error": "", "created_at": t,
            "sent_at": t + dt.timedelta(seconds=1)})

    def _staff(self, ref: str, order_id: int, node_id: int, t, user_id: int, label: str, event: str,
               **ctx) -> None:
        if t < self.sms_from or self.Message is None:
            return
        body = _render(event, ctx)
        self.rows["message"].append({
            "channel": "staff", "event": event, "customer_id": None, "user_id": user_id, "address": label,
            "subject": body[:60], "body": body, "ref": ref, "ref_id": order_id, "node_id": node_id,
            "status": "kept", "attempts": 1, "error": "", "created_at": t, "sent_at": t + dt.timedelta(seconds=1)})

    # ================================================================ writing

    def _format(self, done: list[_Order], chunk_rows: dict) -> list[tuple[str, list[str], list]]:
        """The chunk's rows as the database takes them: (table, columns, rows) — the orders,
        their events and audit entries, then the chunk's other rows."""
        fmt = self.fmt
        fields = self.order_fields
        names = [f.attname for f in fields]
        get = operator.attrgetter(*names)
        dt_at = [(i, f.attname) for i, f in enumerate(fields) if isinstance(f, models.DateTimeField)]
        skip = {i for i, _n in dt_at}
        conv = [(i, c) for i, c in enumerate(_converter(f, fmt) for f in fields) if c is not None and i not in skip]
        sqlite = fmt.sqlite
        choice_at = [i for i, f in enumerate(fields) if f.choices]  # enum members as plain strings
        rows, events, audit = [], [], []
        audit_at = fmt.ts(self.audit_at)
        for o in done:
            o.event_count = len(o.events)
            values = get(o)
            row = list(values)
            after = dict(zip(names, values, strict=True))
            for i, n in dt_at:  # one isoformat for the snapshot and the column
                v = values[i]
                if v is not None:
                    u = (v if v.tzinfo is dt.UTC else v.astimezone(dt.UTC)).replace(tzinfo=None)
                    iso = u.isoformat(timespec="microseconds")
                    after[n] = iso + "+00:00"
                    row[i] = (f"{iso[:10]} {iso[11:26]}" if u.microsecond else f"{iso[:10]} {iso[11:19]}") \
                        if sqlite else u.replace(tzinfo=dt.UTC)
            for i, c in conv:
                row[i] = c(row[i])
            for i in choice_at:
                row[i] = _PLAIN.get(row[i], row[i])
            rows.append(row)
            events += o.events
            audit.append(self._audit_row(o.id, o.node_id, after, audit_at))
            self._stat(o)
        out = [(WorkOrder._meta.db_table, [f.column for f in fields], rows),
               (OrderEvent._meta.db_table, list(_EVENT_COLUMNS), events),
               (AuditEntry._meta.db_table, list(_AUDIT_COLUMNS), audit),
               (UnitRepair._meta.db_table, ["unit_id", "started_on", "finished_on", "fault_key", "in_warranty",
                                            "source"],
                [(u, fmt.day(s), fmt.day(f), k, w, src) for u, s, f, k, w, src in chunk_rows["repair"]])]
        for key, model in (("booking", self.Booking), ("task", self.Task), ("survey", self.Survey),
                           ("message", self.Message)):
            if model is not None and chunk_rows[key]:
                out.append(_dict_rows(model, chunk_rows[key], fmt))
        return out

    def _audit_row(self, oid: int, node_id: int, after: dict, at_param) -> tuple:
        """The order's one audit entry, the first of its chain (as ``audit_record_created_bulk``
        writes it). The hash is ``records.audit.entry_hash``'s, its canonical JSON put together
        around the snapshot's (the first entry is checked against ``entry_hash`` itself; a
        difference makes every entry go through it)."""
        chain, object_id = f"tickets.workorder:{oid}", str(oid)
        after_json = _CANONICAL(after)
        body = (f'{{"action":"{AUDIT_ACTION}","actor":null,"actor_label":"{SYSTEM}","after":{after_json},'
                f'"at":"{self.audit_iso}","before":null,"chain":"{chain}","id":"{object_id}",'
                f'"node":{"null" if node_id is None else int(node_id)},"prev":"{GENESIS}","seq":1,'
                f'"type":"tickets.workorder"}}')
        h = hashlib.sha256(body.encode()).hexdigest()
        if self.hash_checked is not True:
            exact = entry_hash(_AuditRow(chain=chain, seq=1, prev_hash=GENESIS, at=self.audit_at, actor_id=None,
                                         actor_label=SYSTEM, node_id=node_id, object_type="tickets.workorder",
                                         object_id=object_id, action=AUDIT_ACTION, before=None, after=after))
            self.hash_checked = True if exact == h and self.hash_checked is None else False
            h = exact
        return (chain, 1, GENESIS, h, at_param, None, SYSTEM, node_id, "tickets.workorder", object_id, AUDIT_ACTION,
                None, after_json)

    def _stat(self, o: _Order) -> None:
        st = self.stats
        st["orders"] += 1
        st[f"status:{o.status}"] += 1
        st[f"type:{o.type}"] += 1
        if o.response_breached or o.resolve_breached or o.sla_state == SlaState.BREACHED:
            st["breached"] += 1
        if o.reopen_count:
            st["reopened"] += 1
        if o.parts_waits:
            st["waited_parts"] += 1
        if o.decline_count:
            st["declined"] += 1
        if o.reassign_count:
            st["reassigned"] += 1
        if o.transferred:
            st["transferred"] += 1
        if o.follow_up:
            st["follow_ups"] += 1
        st["events"] += len(o.events)

# ==================================================================== module helpers

_TYPES = _cum(TYPE_MIX)
_WISH_DAYS = _cum(zip((1, 2, 3, 4, 5, 6), (50, 22, 10, 8, 6, 4), strict=True))
_VISIT_DAYS = _cum(zip((0, 1, 2, 3, 4), (30, 48, 12, 6, 4), strict=True))
_GOOD_SCORES = _cum(((5, 68), (4, 27), (3, 5)))
_CHANNELS = _cum(CHANNEL_MIX)
_PRIORITIES = _cum(PRIORITY_MIX)
_FIXING = frozenset({T.REPAIR, T.RETURN_EXCHANGE, T.MAINTENANCE})
_DIAGNOSE = {T.INSTALLATION: 0.03, T.DELIVERY: 0.02, T.RECYCLING: 0.02, T.MAINTENANCE: 0.5}
_COMPLETE_ON_SITE = {T.INSTALLATION: 1.0, T.DELIVERY: 1.0, T.RECYCLING: 1.0, T.MAINTENANCE: 0.5}
_ON_SITE_MINUTES = {T.INSTALLATION: (50, 180), T.DELIVERY: (15, 45), T.RECYCLING: (20, 60)}
_KINDS = {"response": "首次响应", "resolve": "解决"}
_SCORES = ("timeliness", "attitude", "professionalism", "result")
_SCORE_NAMES = ("及时性", "服务态度", "专业水平", "处理结果", "总体")


def _warranty_kind(terms: Terms, *, purchase_date: dt.date, on: dt.date, fault_key: str | None,
                   is_main_part: bool, exchanged_on: dt.date | None, has_invoice: bool,
                   repairs: Iterable[RepairFact]) -> str:
    """The kind ``catalog.warranty.decide`` gives (its rules b–f in its order), without the
    reason texts that make it costly; ``HistoryBuilder._warranty`` checks it against
    ``decide`` on a sample, and the tests on every order."""
    if not has_invoice and Exclusion.NO_INVOICE.value in terms.exclusions:
        return DecisionKind.CHARGEABLE.value
    days = (on - purchase_date).days
    if days <= terms.return_days:
        return DecisionKind.RETURN.value
    if days <= terms.exchange_days:
        return DecisionKind.EXCHANGE.value
    start = exchanged_on if exchanged_on is not None and terms.exchange_restarts and exchanged_on <= on \
        else purchase_date
    relevant = [r for r in repairs if start <= r.started_on <= on and r.in_warranty]
    extension = 0
    if terms.extend_by_repair_time:
        extension = sum(max(0, (min(r.finished_on if r.finished_on is not None else on, on) - r.started_on).days)
                        for r in relevant)
    whole = add_months(start, terms.whole_unit_months) + dt.timedelta(days=extension)
    main = add_months(start, terms.main_part_months) + dt.timedelta(days=extension)
    if fault_key and sum(1 for r in relevant if r.fault_key == fault_key) >= terms.repeat_repair_limit \
            and on <= (main if is_main_part else whole):
        return DecisionKind.EXCHANGE.value
    if (is_main_part and on <= main) or on <= whole:
        return DecisionKind.FREE_REPAIR.value
    return DecisionKind.CHARGEABLE.value


class _AuditRow:
    """What ``records.audit.entry_hash`` reads of an entry."""

    __slots__ = ("chain", "seq", "prev_hash", "at", "actor_id", "actor_label", "node_id", "object_type",
                 "object_id", "action", "before", "after")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


def _bulk_load():
    """On SQLite: one transaction for the whole load (SQLite has one writer anyway; a failure
    leaves nothing behind), the big tables' secondary indexes built once at the end. Elsewhere:
    nothing — one transaction per chunk."""
    return indexes_dropped(["tickets_orderevent", "tickets_workorder", "records_auditentry", "feedback_survey",
                            "feedback_callbacktask", "dispatch_booking", "notifications_message"])


@contextlib.contextmanager
def indexes_dropped(tables: list[str]):
    """On SQLite, one transaction in which the tables' secondary (not unique) indexes are dropped
    while the rows go in and built again after (a sorted build instead of row-by-row updates;
    the demo command loads with a rollback journal, so the rows are in the database file by
    then), with a page cache large enough for the indexes that stay. Elsewhere nothing."""
    if connection.vendor != "sqlite":
        yield
        return
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("PRAGMA cache_size")
        cache = cur.fetchone()[0]
        cur.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        names = ", ".join(f"'{t}'" for t in tables)
        cur.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND sql NOT LIKE "
                    f"'CREATE UNIQUE%%' AND tbl_name IN ({names})")
        indexes = cur.fetchall()
        for name, _sql in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        try:
            yield
            for _name, sql in indexes:  # (after a failure the rollback brings them back)
                cur.execute(sql)
        finally:
            cur.execute(f"PRAGMA cache_size = {int(cache)}")


def _model(app_label: str, name: str):
    try:
        return apps.get_model(app_label, name)
    except LookupError:
        return None


def _window(a: dt.datetime, b: dt.datetime) -> str:
    """``dispatch.selectors.fmt_window``."""
    if a.date() == b.date():
        return f"{a:%Y-%m-%d %H:%M}–{b:%H:%M}"
    return f"{a:%Y-%m-%d %H:%M} – {b:%Y-%m-%d %H:%M}"


_TEMPLATES: dict[str, str] = {}


def _render(event: str, context: dict) -> str:
    from aftersales.notifications.services import TEMPLATES

    tpl = _TEMPLATES.get(event)
    if tpl is None:
        with translation.override("zh-hans"):
            tpl = _TEMPLATES[event] = str(TEMPLATES[event])
    try:
        return tpl % context
    except (KeyError, TypeError, ValueError):
        return tpl


_JSON = json.JSONEncoder(ensure_ascii=False).encode
# ``records.audit._canonical``'s form
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode


def _converter(f: models.Field, fmt: _Time) -> Callable | None:
    if isinstance(f, models.DateTimeField):
        return fmt.ts
    if isinstance(f, models.DateField):
        return fmt.day
    if isinstance(f, models.JSONField):
        return lambda v: None if v is None else _JSON(v)
    if isinstance(f, models.FileField):
        return lambda v: v or ""
    return None


class _Sink:
    """``executemany`` in batches of plain tuples."""

    def __init__(self, cur, batch: int = 50_000):
        self.cur, self.batch = cur, batch

    def many(self, table: str, cols: list[str], rows: list) -> None:
        if not rows:
            return
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
        for i in range(0, len(rows), self.batch):
            self.cur.executemany(sql, rows[i:i + self.batch])


def _dict_rows(model, rows: list[dict], fmt: _Time) -> tuple[str, list[str], list]:
    """Rows given as {attname: value}, in the model's current columns (a column the rows do
    not name takes the field's default)."""
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and "id" not in rows[0])]
    names, defaults, conv = [], [], []
    for i, f in enumerate(fields):
        names.append(f.attname)
        if f.has_default():
            defaults.append(f.get_default())
        else:
            defaults.append(None if f.null or not f.empty_strings_allowed else "")
        c = _converter(f, fmt)
        if c is not None:
            conv.append((i, c))
    pairs = list(zip(names, defaults, strict=True))
    out = []
    for r in rows:
        vals = [r.get(n, d) for n, d in pairs]
        for i, c in conv:
            vals[i] = c(vals[i])
        out.append(vals)
    return model._meta.db_table, [f.column for f in fields], out


def _id_base(model) -> int:
    """The highest id ever given out for ``model`` (ids of deleted rows are never reused:
    their audit chains live on)."""
    table = model._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f"SELECT MAX(id) FROM {table}")
        base = cur.fetchone()[0] or 0
        if connection.vendor == "sqlite":
            cur.execute("SELECT name FROM sqlite_master WHERE name = 'sqlite_sequence'")
            if cur.fetchone():
                cur.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
                row = cur.fetchone()
                base = max(base, row[0] if row else 0)
        elif connection.vendor == "postgresql":
            cur.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [table])
            base = max(base, cur.fetchone()[0])
    return base


def _pick(rng: random.Random, table: tuple[list, list]):
    """A value of ``table`` (values, cumulative weights) drawn by weight."""
    values, cum = table
    return values[bisect.bisect_right(cum, rng.random() * cum[-1])]


# The choices' members as the plain strings they stand for (rows travel by ``marshal``).
_PLAIN = {m: str(m.value) for e in (Status, OrderType, Channel, Priority, SlaState) for m in e}
_EVENT_COLUMNS = ("order_id", "seq", "at", "actor_id", "actor_label", "action", "from_status", "to_status", "note",
                  "data")
_AUDIT_COLUMNS = ("chain", "seq", "prev_hash", "hash", "at", "actor_id", "actor_label", "node_id", "object_type",
                  "object_id", "action", "before", "after")


# ==================================================================== entry points


def orders_for_units(units: int) -> int:
    """The default number of orders: six months at the full demo's rate, scaled to the units."""
    return round(ORDERS_DEFAULT * units / UNITS_DEFAULT)


def build_order_history(*, orders: int, seed: int, today: dt.date | None = None, now: dt.datetime | None = None,
                        days: int = DAYS, workers: int | None = None, progress_stream=None) -> HistoryBuilder:
    """Build ``orders`` work orders (and the complaint follow-ups their surveys open) over the
    ``days`` (six months) before ``now``. The builder returned holds ``counts`` (rows written
    per model) and ``stats`` (the outcome mix)."""
    now = now or timezone.now()
    b = HistoryBuilder(orders=max(orders, 0), seed=seed, today=today or timezone.localdate(now), now=now,
                       days=days, workers=workers, progress_stream=progress_stream)
    if orders > 0:
        with translation.override("zh-hans"):
            b.run()
    return b


def _dependants(model, seen: set) -> list[tuple]:
    """What must go before ``model``'s rows can: (model, None) to delete a table that points
    at it (deleting first what points at that), (model, column) to clear a nullable pointer."""
    out = []
    for rel in model._meta.get_fields(include_hidden=True):
        if not (rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one)):
            continue  # only the foreign keys of other tables that point here
        m = rel.related_model
        if m is model:
            continue
        if rel.on_delete in (models.CASCADE, models.PROTECT, models.RESTRICT):
            if m not in seen:
                seen.add(m)
                out += _dependants(m, seen)
                out.append((m, None))
        else:
            out.append((m, rel.field.column))
    return out


def delete_steps(steps: list[tuple], label: str, progress_stream=None) -> int:
    """Run ``(model, None)`` as a plain DELETE of the model's table and ``(model, column)`` as
    nulling that column, in order, in one transaction; returns the rows deleted."""
    total = 0
    p = Progress(len(steps), label, progress_stream) if progress_stream is not None else None
    with transaction.atomic(), connection.cursor() as cur:
        for m, column in steps:
            table = m._meta.db_table
            if column is None:
                cur.execute(f"DELETE FROM {table}")
                total += max(cur.rowcount, 0)
            else:
                cur.execute(f"UPDATE {table} SET {column} = NULL WHERE {column} IS NOT NULL")
            if p:
                p.advance()
    if p:
        p.finish()
    return total


def orders_reset(progress_stream=None) -> int:
    """Delete every work order and what hangs on them (events, photos, bookings, call-back
    tasks, surveys …) with plain DELETEs, children first. The audit trail and the day
    sequences are kept, so neither ids nor numbers are ever given out twice."""
    return delete_steps([*_dependants(WorkOrder, {WorkOrder}), (WorkOrder, None)], "清除旧工单", progress_stream)
