"""Demo data of the service team (R-PERF, R-TRN), built deterministically (``--seed``) on top of
the demo's staff, orders and quality facts (so it runs after the quality demo):

- a training history over the demo's months: every month each centre holds three sessions of
  the starter courses in its training room and headquarters one online session; the staff go to
  one in most months (seniors more often), attend about 90 % of those they enrol in and sit the
  exam where the course has one; a few stopped training some months ago and are overdue by the
  cadence rules; the sessions still to come are planned with their enrolments;
- a handful of safety events of technicians (one or two serious);
- appraisal schemes for technicians, agents and dispatchers (items in the five groups, weights
  summing to 100); the technicians' scheme changed three months ago (version 2);
- six monthly cycles, the last six whole months, each opened, closed (automatic items valued),
  taken through every review step (self, supervisor, department, company: ratings of the
  manual items and comments), calibrated for a few people, locked (grades, ranks, bonus, awards,
  warnings and improvement plans, the management-review flag) and published — the first three
  graded by score bands with a bonus pool, the last three by the forced distribution with grade
  multipliers; the improvement
  plans of the older cycles have follow-ups and an outcome; the current month's cycle is open.

Through the services, with the historical ``now`` (each audited like a user's action): the
scheme versions (``scheme_version_create``), the cycles' ``cycle_open``, ``cycle_close``,
``calibrate``, ``cycle_lock`` and ``cycle_publish`` (close and lock are set-based), and the
safety events (``safety_event_record``). Set-based, with ``demo.create`` audit entries: the
training sessions and enrolments, the review steps (about 5,000 ``review_submit`` calls at
~6 ms each on SQLite would add half a minute; the rows written are those ``review_submit``
writes: the ``Review``, the manual items' ratings and scores, the sheet's step and running
total) and the follow-ups of the improvement plans. The whole build takes about 5 s on SQLite
(some 1,200 sheets, 5,000 reviews, 1,200 enrolments).
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
import random
from collections import defaultdict
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from aftersales.core.progress import Progress
from aftersales.org.models import Employee, Grade, Node, NodeKind, RoleAssignment
from aftersales.org.roles import Role
from aftersales.records.audit import audit_record_created_bulk
from aftersales.tickets.models import WorkOrder

from . import scoring
from . import services_appraisal as appraisal
from . import services_training as training
from .models import (
    Attendance,
    Award,
    BonusMode,
    CadenceRule,
    Course,
    Cycle,
    CycleKind,
    Enrolment,
    GradingMode,
    ImprovementPlan,
    ItemKind,
    PlanFollowUp,
    PlanStatus,
    Review,
    SafetyEvent,
    Scheme,
    SchemeItem,
    SchemeVersion,
    Session,
    SessionStatus,
    Sheet,
    SheetScore,
    Step,
    Subject,
)

AUDIT_ACTION = "demo.create"
BATCH = 2000
CYCLES = 6                   # closed monthly cycles: the last six whole months
V2_CYCLE = 3                 # the technicians' scheme version 2 applies from the 4th of them

# ---------------------------------------------------------------- schemes

def _auto(code, label, group, source, weight, rule, params) -> dict:
    return {"code": code, "label": label, "group": group, "kind": ItemKind.AUTO, "source": source, "step": "",
            "weight": weight, "rule": rule, "params": params}


def _manual(code, label, group, step, weight) -> dict:
    """A rating 0–100 given at ``step`` (the identity rule: the rating is the score)."""
    return {"code": code, "label": label, "group": group, "kind": ItemKind.MANUAL, "source": "", "step": step,
            "weight": weight, "rule": "linear", "params": {"floor": 0, "target": 100}}


EXAM_BANDS = [{"from": 90, "to": None, "score": 100}, {"from": 80, "to": 90, "score": 85},
              {"from": 70, "to": 80, "score": 70}, {"from": 60, "to": 70, "score": 50},
              {"from": None, "to": 60, "score": 20}]
SAFETY_POINTS = {"base": 100, "per_event": -50}
TRAINING_HOURS = {"floor": 0, "target": 8}

# The parameters suit the demo's figures per technician and month: response on time ~97 %,
# satisfaction ~4.7, first-time fix ~87 %, repeat repairs ~12 %, cycle p50 ~40 h, service cost
# of the month's orders ~16,000 yuan, ~3 complaints.
TECHNICIAN_V1 = [
    _auto("response_on_time", "响应及时率", "efficiency", "response_on_time_rate", 10, "linear",
          {"floor": 85, "target": 99}),
    _auto("completion", "工单完成率", "efficiency", "completion_rate", 10, "linear", {"floor": 85, "target": 98}),
    _auto("cycle_time", "服务周期中位数（小时）", "efficiency", "cycle_p50", 10, "linear", {"floor": 72, "target": 24}),
    _auto("satisfaction", "客户满意度", "quality", "sat_overall", 15, "linear", {"floor": 4.2, "target": 4.9}),
    _auto("first_time_fix", "一次修复率", "quality", "ftf_rate", 10, "linear", {"floor": 70, "target": 95}),
    _auto("exam", "培训考试成绩", "capability", "exam_score", 10, "bands", EXAM_BANDS),
    _auto("training_hours", "培训学时", "capability", "training_hours", 5, "linear", TRAINING_HOURS),
    _manual("knowledge", "产品与故障知识", "capability", Step.SUPERVISOR, 5),
    _manual("skill", "维修技能", "capability", Step.DEPARTMENT, 5),
    _manual("teamwork", "团队协作与服务规范", "capability", Step.SUPERVISOR, 5),
    _auto("repeat_repairs", "30天二次返修率", "cost", "repeat_30_rate", 5, "linear", {"floor": 20, "target": 5}),
    _auto("service_cost", "服务成本（元）", "cost", "cost", 5, "linear", {"floor": 30000, "target": 8000}),
    _auto("safety", "安全事件", "safety", "safety_incidents", 5, "points", SAFETY_POINTS),
]
# Version 2: complaints counted (−10 points each), the cycle time weighs 5 % instead of 10 %.
TECHNICIAN_V2 = [
    {**it, "weight": 5} if it["code"] == "cycle_time" else it for it in TECHNICIAN_V1
]
TECHNICIAN_V2.insert(5, _auto("complaints", "被投诉次数", "quality", "complaints", 5, "points",
                              {"base": 100, "per_event": -10}))
TECHNICIAN_V2_NOTE = "新增“被投诉次数”指标（每次扣 10 分）；服务周期权重由 10% 调整为 5%。"

AGENT = [
    _manual("intake", "受理及时性与准确性", "efficiency", Step.SUPERVISOR, 20),
    _manual("attitude", "服务态度与沟通", "quality", Step.SUPERVISOR, 20),
    _manual("callback", "回访质量", "quality", Step.DEPARTMENT, 10),
    _auto("exam", "培训考试成绩", "capability", "exam_score", 10, "bands", EXAM_BANDS),
    _auto("training_hours", "培训学时", "capability", "training_hours", 10, "linear", TRAINING_HOURS),
    _manual("knowledge", "业务知识（产品与三包政策）", "capability", Step.DEPARTMENT, 10),
    _manual("cost_awareness", "成本意识（收费政策执行、避免无效派工）", "cost", Step.SUPERVISOR, 10),
    _manual("compliance", "信息安全与合规（客户隐私保护）", "safety", Step.DEPARTMENT, 10),
]
DISPATCHER = [
    _manual("timeliness", "派工及时性", "efficiency", Step.SUPERVISOR, 25),
    _manual("accuracy", "派工准确性（技能与证书匹配）", "quality", Step.SUPERVISOR, 20),
    _manual("coordination", "协调沟通", "quality", Step.DEPARTMENT, 10),
    _auto("exam", "培训考试成绩", "capability", "exam_score", 10, "bands", EXAM_BANDS),
    _auto("training_hours", "培训学时", "capability", "training_hours", 10, "linear", TRAINING_HOURS),
    _manual("system", "系统使用熟练度", "capability", Step.DEPARTMENT, 5),
    _manual("planning", "路线与配件计划", "cost", Step.SUPERVISOR, 10),
    _manual("safety", "安全规范督导", "safety", Step.DEPARTMENT, 10),
]
SCHEMES = [(Role.TECHNICIAN, TECHNICIAN_V1), (Role.AGENT, AGENT), (Role.DISPATCHER, DISPATCHER)]

# ---------------------------------------------------------------- cycles

# Grading and bonus of the six cycles, oldest first: score bands with a pool shared by score,
# then (with the scheme's version 2) the forced distribution 20/30/40/10 with grade multipliers.
BANDS = [{"grade": "A", "min": 85}, {"grade": "B", "min": 75}, {"grade": "C", "min": 62}, {"grade": "D", "min": 0}]
FORCED = [{"grade": "A", "percent": 20}, {"grade": "B", "percent": 30}, {"grade": "C", "percent": 40},
          {"grade": "D", "percent": 10}]
POOL = {"pool": "150000"}
MULTIPLIERS = {"base": "800", "multipliers": {"A": 1.5, "B": 1.2, "C": 1.0, "D": 0.6}}
# Days after the period's end (the 1st of the next month is day 0) of each step's deadline, and
# the span of days its reviews are submitted in.
DEADLINES = {Step.SELF: 2, Step.SUPERVISOR: 5, Step.DEPARTMENT: 8, Step.COMPANY: 11, Step.CALIBRATION: 13}
SUBMITTED = {Step.SELF: (0, 2), Step.SUPERVISOR: (2, 5), Step.DEPARTMENT: (5, 8), Step.COMPANY: (8, 10)}
CALIBRATE_DAY, LOCK_DAY, PUBLISH_DAY, SPAN = 12, 13, 14, 15
LATE = 0.03                  # a review submitted a day after its deadline
CALIBRATIONS = [(Decimal("3"), "节假日期间主动支援相邻网点，酌情加分。"),
                (Decimal("2"), "收到客户书面表扬信，酌情加分。"),
                (Decimal("-3"), "多次未按规定上传完工照片，校准扣分。"),
                (Decimal("4"), "参与疑难故障攻关，解决了同型号批量故障。"),
                (Decimal("-2"), "客户反映上门未穿鞋套，经核实属实。")]

SELF_OFFICE = ["本月按时完成受理和回访任务，下月继续提高一次解答率。", "本月工作量较大，整体完成情况良好。",
               "按要求完成本职工作，参加了部门组织的培训。", "本月有一次记录不完整被退回，已改正。"]
SUPERVISOR = {
    "high": ["工作主动，业务扎实，客户多次表扬。", "服务规范执行到位，能带教新同事。", "疑难问题处理能力强，是网点骨干。"],
    "mid": ["能按要求完成本月工作，{weak}还有提升空间。", "工作态度端正，{weak}需继续加强。", "整体表现稳定，{weak}有待提高。"],
    "low": ["{weak}明显落后，已面谈并制定改进措施。", "本月多次未按预约时间上门，需加强时间管理。",
            "对新机型故障判断不熟练，安排跟班学习。"],
}
DEPARTMENT = {"high": ["同意网点意见，表现突出，建议作为骨干培养。", "同意。"],
              "mid": ["同意网点意见。", "同意。", "同意，请关注{weak}。"],
              "low": ["同意网点意见，请跟进改进计划。", "请网点重点辅导{weak}。"]}
COMPANY = ["同意。", "同意部门意见。", "", ""]
FOLLOW_UPS = ["已与员工面谈，共同确认改进目标。", "安排师傅带教，跟班两周。", "本月复查：有所改善，继续跟进。"]

# ---------------------------------------------------------------- training

CENTRE_SESSIONS = 3          # per centre and month, in its training room
CAPACITY, ONLINE_CAPACITY = 40, 300
MONTHLY = {Grade.SENIOR: 0.75, Grade.JUNIOR: 0.6}   # chance of going to a session in a month
ATTEND = 0.9                 # of those enrolled in a session held, attended (else absent)
LAPSED = 0.04                # share of the staff who stopped training after the first two months
OFFICE_SUBJECTS = {Subject.CULTURE, Subject.PROCESS, Subject.COMMUNICATION, Subject.SYSTEM}
ONLINE_SUBJECTS = [Subject.SYSTEM, Subject.PROCESS, Subject.CULTURE, Subject.COMMUNICATION]

SAFETY_EVENTS = [
    ("minor", "登高安装空调外机时未系安全带，被网点经理现场纠正。"),
    ("minor", "维修洗衣机前未断开电源，未造成伤害。"),
    ("serious", "更换燃气热水器配件后未做气密性检测，客户家中发生轻微燃气泄漏，已及时处置。"),
    ("minor", "搬运冰箱压缩机时腰部扭伤，休息两天。"),
    ("minor", "带电检测主控板时未佩戴绝缘手套。"),
    ("minor", "驾驶服务车辆超速，被交警处罚。"),
    ("serious", "焊接冷媒管路时未清理周边易燃物，引燃纸箱，已扑灭，无人员受伤。"),
]


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


def _month(first: dt.date, back: int) -> dt.date:
    """The first day of the month ``back`` months before ``first``'s (negative: after)."""
    y, m = divmod(first.year * 12 + first.month - 1 - back, 12)
    return dt.date(y, m + 1, 1)


def _month_end(first: dt.date) -> dt.date:
    return _month(first, -1) - dt.timedelta(days=1)


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


class _World:
    """What the build works with: the organisation, the staff (in employee-number order) with
    their appraised role and a lasting ability of their own, the managers and the demo's users."""

    def __init__(self, seed: int, today: dt.date):
        self.seed, self.today = seed, today
        self.tz = timezone.get_current_timezone()
        self.nodes = {n.pk: n for n in Node.objects.order_by("path")}
        self.hq = next((n for n in self.nodes.values() if n.kind == NodeKind.HQ), None)
        self.centres = sorted((n for n in self.nodes.values() if n.kind == NodeKind.CENTRE), key=lambda n: n.code)
        self.staff = list(Employee.objects.filter(active=True).order_by("employee_no")
                          .values_list("id", "user_id", "node_id", "grade", "hire_date", "name", named=True))
        by_user = appraisal.main_roles([e.user_id for e in self.staff])
        self.role = {e.id: by_user[e.user_id] for e in self.staff if e.user_id in by_user}
        holders = defaultdict(list)  # (role, node) → user ids, first assigned first
        for uid, role, node_id in RoleAssignment.objects.order_by("id").values_list("user_id", "role", "node_id"):
            holders[(role, node_id)].append(uid)
        self.holders = holders
        wanted = {u for (role, _n), us in holders.items() if role != Role.CUSTOMER for u in us}
        self.users = get_user_model().objects.in_bulk(wanted | {e.user_id for e in self.staff})
        hq_ids = holders.get((Role.HQ_MANAGER, self.hq.pk), []) if self.hq else []
        self.hq_manager = self.users[hq_ids[0]] if hq_ids else None
        trainers = sorted(u for (role, _n), us in holders.items() if role == Role.TRAINER for u in us)
        self.trainer = self.users[trainers[0]] if trainers else None
        rng = self.rng("ability")
        self.ability = {e.id: rng.gauss(0, 1) for e in self.staff}
        for e in self.staff:  # a few clearly weaker people, the same every month
            if rng.random() < 0.03:
                self.ability[e.id] = rng.uniform(-2.8, -2.0)

    def rng(self, part: str) -> random.Random:
        return random.Random(f"aftersales-demo:{self.seed}:staff:{part}")

    def at(self, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour, minute), self.tz)

    def path_ids(self, node_id: int) -> list[int]:
        return [int(x) for x in self.nodes[node_id].path.strip("/").split("/") if x]

    def centre_of(self, node_id: int) -> int | None:
        ids = self.path_ids(node_id)
        return ids[1] if len(ids) >= 2 else None

    def nearest(self, node_id: int, roles) -> int | None:
        """The user holding one of ``roles`` at the node or its nearest ancestor that has one."""
        for nid in reversed(self.path_ids(node_id)):
            for role in roles:
                if self.holders.get((role, nid)):
                    return self.holders[(role, nid)][0]
        return None

    def reviewer(self, step: str, node_id: int, own_user: int) -> int | None:
        """Who does ``step`` of a sheet at ``node_id`` (as ``services_appraisal.may_review``)."""
        kind = self.nodes[node_id].kind
        if step == Step.SELF:
            return own_user
        if kind == NodeKind.HQ:
            roles = [Role.HQ_MANAGER]
        elif step == Step.SUPERVISOR:
            roles = [Role.OUTLET_MANAGER] if kind == NodeKind.OUTLET else [Role.CENTRE_MANAGER]
        else:
            roles = {Step.DEPARTMENT: [Role.CENTRE_MANAGER], Step.COMPANY: [Role.HQ_MANAGER]}[step]
        found = self.nearest(node_id, roles)
        return None if found == own_user else found


# ==================================================================== build

def build(*, seed: int, today: dt.date, progress_stream=None) -> dict[str, int]:
    """Build the service team's demo data (see the module's doc); returns rows per model."""
    counts: dict[str, int] = {}
    with transaction.atomic():
        w = _World(seed, today)
        if w.hq is None or not w.staff:
            return counts
        _defaults()
        step = _Step(progress_stream, "培训场次与记录")
        sessions, enrolments = _training(w)
        counts[Session._meta.label] = len(sessions)
        counts[Enrolment._meta.label] = step.done(len(enrolments))
        audited: list = [*sessions, *enrolments]
        if w.hq_manager is not None:
            step = _Step(progress_stream, "安全事件")
            counts[SafetyEvent._meta.label] = step.done(len(_safety_events(w)))
            step = _Step(progress_stream, "考核方案")
            step.done(_scheme_versions(w))
            reviews, follow_ups = _cycles(w, progress_stream)
            audited += [*reviews, *follow_ups]
            for model in (SchemeVersion, Cycle, Sheet, SheetScore, Review, Award, ImprovementPlan, PlanFollowUp):
                counts[model._meta.label] = model.objects.count()
        step = _Step(progress_stream, "审计记录（培训与考核）")
        counts["records.AuditEntry"] = step.done(audit_record_created_bulk(
            actor=None, action=AUDIT_ACTION, objs=audited, node_of=_audit_nodes(), at=timezone.now(),
            batch_size=BATCH))
    return counts


def _defaults() -> None:
    """The migration's cadence rules and starter courses, where a database lacks them."""
    defaults = importlib.import_module("aftersales.staff.migrations.0002_defaults")
    for grade, months in defaults.CADENCE.items():
        CadenceRule.objects.get_or_create(grade=grade, defaults={"months": months})
    if not Course.objects.filter(active=True).exists():
        for code, subject, title, hours, pass_mark, description in defaults.COURSES:
            Course.objects.get_or_create(code=code, defaults={"subject": subject, "title": title, "hours": hours,
                                                              "pass_mark": pass_mark, "description": description})


def _audit_nodes():
    """The node of each audited row (sheets' and plans' nodes read once)."""
    sheet_node = dict(Sheet.objects.values_list("id", "node_id"))
    plan_node = dict(ImprovementPlan.objects.values_list("id", "sheet__node_id"))

    def node_of(obj) -> int | None:
        if isinstance(obj, Session):
            return obj.node_id
        if isinstance(obj, Enrolment):
            return obj.session.node_id
        if isinstance(obj, Review):
            return sheet_node.get(obj.sheet_id)
        if isinstance(obj, PlanFollowUp):
            return plan_node.get(obj.plan_id)
        return None

    return node_of


# ==================================================================== training

def _session_times(w: _World, day: dt.date, hours: Decimal, hour: int) -> tuple[dt.datetime, dt.datetime]:
    """A session of ``hours`` from ``hour`` on ``day`` (longer than a day's 8 hours: several days)."""
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    start = w.at(day, hour)
    h = float(hours)
    if h <= 8:
        return start, start + dt.timedelta(hours=h)
    return start, start + dt.timedelta(days=math.ceil(h / 8) - 1, hours=8)


def _training(w: _World) -> tuple[list[Session], list[Enrolment]]:
    """Sessions of every month from that of the demo's first orders (six months back) to next
    month, and the staff's enrolments in them (see the module's doc)."""
    rng = w.rng("training")
    courses = list(Course.objects.filter(active=True).order_by("subject", "code"))
    if not courses:
        return [], []
    office = [c for c in courses if c.subject in OFFICE_SUBJECTS] or courses
    online = sorted(office, key=lambda c: (ONLINE_SUBJECTS.index(c.subject) if c.subject in ONLINE_SUBJECTS
                                           else len(ONLINE_SUBJECTS), c.code))
    first = (w.today - dt.timedelta(days=182)).replace(day=1)
    months = []
    m = first
    while m <= _month(w.today.replace(day=1), -1):
        months.append(m)
        m = _month(m, -1)
    trainer_id = w.trainer.pk if w.trainer else None

    sessions: list[Session] = []
    held: dict[dt.date, list[Session]] = defaultdict(list)
    for i, m in enumerate(months):
        for c_idx, centre in enumerate(w.centres):
            for j in range(CENTRE_SESSIONS):
                course = courses[(i * CENTRE_SESSIONS + j + c_idx * 2) % len(courses)]
                day = m + dt.timedelta(days=7 * j + 3 + rng.randint(0, 4))
                start, end = _session_times(w, day, course.hours, rng.choice([9, 9, 14]) if course.hours <= 4 else 9)
                sessions.append(Session(course=course, node=centre, starts_at=start, ends_at=end,
                                        trainer_id=trainer_id, place=f"{centre.name}培训室", capacity=CAPACITY))
        course = online[i % len(online)]
        start, end = _session_times(w, m + dt.timedelta(days=19 + rng.randint(0, 4)), course.hours, 19)
        sessions.append(Session(course=course, node=w.hq, starts_at=start, ends_at=end, trainer_id=trainer_id,
                                online=True, capacity=ONLINE_CAPACITY))
    for s in sessions:
        s.status = SessionStatus.DONE if timezone.localdate(s.starts_at) < w.today else SessionStatus.PLANNED
    # one session was called off (the trainer was away): the latest centre session before today
    past = [s for s in sessions if s.status == SessionStatus.DONE and s.node_id != w.hq.pk]
    if past:
        past[-1].status = SessionStatus.CANCELLED
    Session.objects.bulk_create(sessions, batch_size=BATCH)
    for s in sessions:
        held[timezone.localdate(s.starts_at).replace(day=1)].append(s)

    taken = defaultdict(int)
    eligible_staff = [e for e in w.staff if w.role.get(e.id) != Role.TRAINER]
    long_served = [e.id for e in eligible_staff if (w.today - e.hire_date).days > 240]
    lapsed = set(rng.sample(long_served, round(len(long_served) * LAPSED))) if long_served else set()
    enrolments: list[Enrolment] = []
    for e in eligible_staff:
        centre = w.centre_of(e.node_id)
        subjects = None if w.role.get(e.id) == Role.TECHNICIAN else OFFICE_SUBJECTS
        done_courses: set[int] = set()
        a = w.ability[e.id]
        for i, m in enumerate(months):
            if e.id in lapsed and i >= 2:
                break
            chance = _clamp(MONTHLY.get(e.grade, 0.6) + 0.05 * a, 0.3, 0.95)
            if rng.random() >= chance:
                continue
            options = [s for s in held[m]
                       if s.node_id in (centre, w.hq.pk) and s.status != SessionStatus.CANCELLED
                       and timezone.localdate(s.starts_at) >= e.hire_date
                       and (subjects is None or s.course.subject in subjects) and taken[s.pk] < s.capacity]
            if not options:
                continue
            fresh = [s for s in options if s.course_id not in done_courses]
            s = rng.choice(fresh or options)
            taken[s.pk] += 1
            en = Enrolment(session=s, employee_id=e.id)
            if s.status == SessionStatus.DONE:
                if rng.random() < ATTEND:
                    en.status, en.hours = Attendance.ATTENDED, s.course.hours
                    done_courses.add(s.course_id)
                    if s.course.pass_mark is not None:
                        en.score = round(_clamp(rng.gauss(80 + 5 * a, 8), 35, 100))
                        en.passed = en.score >= s.course.pass_mark
                else:
                    en.status = Attendance.ABSENT
                en.recorded_at = s.ends_at + dt.timedelta(hours=2)
            enrolments.append(en)
    # the enrolments of the session called off were cancelled with it
    for s in sessions:
        if s.status == SessionStatus.CANCELLED:
            for e in [x for x in eligible_staff if w.centre_of(x.node_id) == s.node_id][:12]:
                enrolments.append(Enrolment(session=s, employee_id=e.id, status=Attendance.CANCELLED))
    Enrolment.objects.bulk_create(enrolments, batch_size=BATCH)
    return sessions, enrolments


def _safety_events(w: _World) -> list[SafetyEvent]:
    """A handful of technicians' safety events, recorded by their outlet's manager the next day."""
    rng = w.rng("safety")
    techs = [e for e in w.staff if w.role.get(e.id) == Role.TECHNICIAN]
    first = (w.today - dt.timedelta(days=182)).replace(day=1) + dt.timedelta(days=20)
    span = (w.today - dt.timedelta(days=3) - first).days
    if not techs or span <= 0:
        return []
    out = []
    for (severity, text), e in zip(SAFETY_EVENTS, rng.sample(techs, min(len(techs), len(SAFETY_EVENTS))),
                                   strict=False):
        day = max(first + dt.timedelta(days=rng.randint(0, span)), e.hire_date)
        manager = w.nearest(e.node_id, [Role.OUTLET_MANAGER, Role.CENTRE_MANAGER, Role.HQ_MANAGER])
        user = w.users.get(manager) if manager else w.hq_manager
        order = (WorkOrder.objects.filter(assignee_id=e.id, created_at__gte=w.at(day - dt.timedelta(days=5), 0),
                                          created_at__lt=w.at(day + dt.timedelta(days=1), 0))
                 .order_by("-created_at", "-id").values_list("id", flat=True).first())
        out.append(training.safety_event_record(user=user, employee_id=e.id, occurred_on=day, severity=severity,
                                                description=text, order_id=order,
                                                now=w.at(min(day + dt.timedelta(days=1), w.today), 17, 30)))
    return out


# ==================================================================== appraisal

def _scheme_versions(w: _World) -> int:
    """Version 1 of each role's scheme, valid from the first cycle's month."""
    start = _month(w.today.replace(day=1), CYCLES)
    made = 0
    for role, items in SCHEMES:
        v = appraisal.scheme_version_create(user=w.hq_manager, role=role, valid_from=start, items=items,
                                            note="首版考核方案。")
        _backdate_version(w, v, start - dt.timedelta(days=10))
        made += 1
    return made


def _backdate_version(w: _World, v: SchemeVersion, day: dt.date) -> None:
    when = w.at(day, 10)
    SchemeVersion.objects.filter(pk=v.pk).update(created_at=when)
    Scheme.objects.filter(pk=v.scheme_id, created_at__gt=when).update(created_at=when)


class _Days:
    """Times of a cycle's review after its period (day 0 = the 1st of the next month): as planned
    when the period ended ``SPAN`` days ago or more, else squeezed in proportion into the time
    there has been since (on the 1st: into that day's first hours)."""

    def __init__(self, w: _World, period_end: dt.date):
        self.w, self.base = w, period_end + dt.timedelta(days=1)
        self.start = w.at(self.base, 0)
        room = (w.today - self.base).days
        self.factor = 1.0 if room >= SPAN else max(room, 0.5) / SPAN

    def at(self, offset: int, hour: int, minute: int = 0) -> dt.datetime:
        planned = self.w.at(self.base + dt.timedelta(days=offset), hour, minute) - self.start
        return self.start + dt.timedelta(minutes=int(planned.total_seconds() * self.factor // 60))


def _cycles(w: _World, stream) -> tuple[list[Review], list[PlanFollowUp]]:
    """The six monthly cycles, oldest first, through every stage; then the current month's, open."""
    this_month = w.today.replace(day=1)
    months = [_month(this_month, k) for k in range(CYCLES, 0, -1)]
    p = Progress(len(months) + 1, "月度考核周期", stream) if stream is not None else None
    rng = w.rng("appraisal")
    reviews: list[Review] = []
    for i, month in enumerate(months):
        if i == V2_CYCLE:
            v = appraisal.scheme_version_create(user=w.hq_manager, role=Role.TECHNICIAN, valid_from=month,
                                                items=TECHNICIAN_V2, note=TECHNICIAN_V2_NOTE)
            _backdate_version(w, v, month - dt.timedelta(days=12))
        reviews += _cycle(w, rng, month, forced=i >= V2_CYCLE)
        if p:
            p.advance()
    _open(w, this_month, forced=True)
    follow_ups = _plan_follow_ups(w, rng)
    if p:
        p.advance()
        p.finish()
    return reviews, follow_ups


def _open(w: _World, month: dt.date, *, forced: bool) -> Cycle:
    end = _month_end(month)
    cycle = appraisal.cycle_open(
        user=w.hq_manager, kind=CycleKind.MONTHLY, period_start=month, node_id=w.hq.pk,
        grading_mode=GradingMode.FORCED if forced else GradingMode.BANDS, grading=FORCED if forced else BANDS,
        bonus_mode=BonusMode.MULTIPLIER if forced else BonusMode.POOL, bonus=MULTIPLIERS if forced else POOL,
        deadlines={s.value: end + dt.timedelta(days=1 + d) for s, d in DEADLINES.items()})
    Cycle.objects.filter(pk=cycle.pk).update(created_at=w.at(month, 9))
    return cycle


def _cycle(w: _World, rng: random.Random, month: dt.date, *, forced: bool) -> list[Review]:
    cycle = _open(w, month, forced=forced)
    days = _Days(w, cycle.period_end)
    hq = w.hq_manager
    appraisal.cycle_close(user=hq, cycle_id=cycle.pk, now=days.at(0, 8, 30))
    cycle.refresh_from_db()
    reviews = _reviews(w, rng, cycle, days)
    techs = list(Sheet.objects.filter(cycle=cycle, role=Role.TECHNICIAN).order_by("employee__employee_no")
                 .values_list("id", "node_id"))
    for (sid, node_id), (adjustment, reason) in zip(rng.sample(techs, min(3, len(techs))),
                                                    rng.sample(CALIBRATIONS, 3), strict=False):
        manager = w.nearest(node_id, [Role.CENTRE_MANAGER, Role.HQ_MANAGER])
        appraisal.calibrate(user=w.users[manager] if manager else hq, sheet_id=sid, adjustment=adjustment,
                            comment=reason, now=days.at(CALIBRATE_DAY, 10 + rng.randint(0, 6), rng.randint(0, 59)))
    appraisal.cycle_lock(user=hq, cycle_id=cycle.pk, now=days.at(LOCK_DAY, 17))
    appraisal.cycle_publish(user=hq, cycle_id=cycle.pk, now=days.at(PUBLISH_DAY, 9, 30))
    return reviews


def _rating(rng: random.Random, ability: float) -> Decimal:
    return Decimal(round(_clamp(77 + 8 * ability + rng.gauss(0, 6), 30, 99)))


def _level(score) -> str:
    return "high" if score is not None and score >= 88 else ("low" if score is None or score < 72 else "mid")


def _reviews(w: _World, rng: random.Random, cycle: Cycle, days: _Days) -> list[Review]:
    """Every review step of every sheet of the cycle, as ``review_submit`` would write them:
    the ``Review`` rows, the ratings of the manual items, each sheet at calibration with its total."""
    sheets = list(Sheet.objects.filter(cycle=cycle).order_by("employee__employee_no")
                  .values_list("id", "employee_id", "node_id", "role", "version_id"))
    items = {it.pk: it for it in SchemeItem.objects.filter(version_id__in={s[4] for s in sheets})}
    scores = defaultdict(list)  # sheet → [(SheetScore id, item, score, value)]
    for sc_id, sheet_id, item_id, score, value in (SheetScore.objects.filter(sheet__cycle=cycle)
                                                   .order_by("sheet_id", "id")
                                                   .values_list("id", "sheet_id", "item_id", "score", "value")):
        scores[sheet_id].append((sc_id, items[item_id], score, value))
    user_of = {e.id: e.user_id for e in w.staff}
    deadline = {s: dt.date.fromisoformat(d) for s, d in cycle.deadlines.items()}
    reviews, score_rows, sheet_rows = [], [], []
    for sid, emp, node_id, role, _v in sheets:
        a = w.ability.get(emp, 0.0)
        given: dict[str, dict[str, Decimal]] = defaultdict(dict)
        final = []
        for sc_id, it, score, value in scores[sid]:
            if it.kind == ItemKind.MANUAL:
                value = _rating(rng, a)
                score = scoring.item_score(it.rule, it.params, value)
                given[it.step][it.code] = value
                score_rows.append((value, score, it.step, sc_id))
            final.append((it, score, value))
        scored = [(s, it) for it, s, _v in final if s is not None]
        total = scoring.total((s, it.weight) for s, it in scored)
        work = [x for x in scored if x[1].source not in ("training_hours", "exam_score")] or scored
        weakest = sorted(work, key=lambda x: (x[0], x[1].position))[:2]
        weak = rng.choice(weakest)[1].label if weakest else ""
        sup = sum(given[Step.SUPERVISOR].values()) / len(given[Step.SUPERVISOR]) if given[Step.SUPERVISOR] else total
        level = _level(sup)
        comments = {
            Step.SELF: _self_comment(rng, role, final, weak),
            Step.SUPERVISOR: rng.choice(SUPERVISOR[level]).format(weak=weak or "工作效率"),
            Step.DEPARTMENT: rng.choice(DEPARTMENT[level]).format(weak=weak or "工作效率"),
            Step.COMPANY: rng.choice(COMPANY),
        }
        previous = None
        for step in appraisal.REVIEW_STEPS:
            lo, hi = SUBMITTED[step]
            offset = rng.randint(lo, hi) + (1 if step != Step.COMPANY and rng.random() < LATE else 0)
            at = days.at(offset, 9 + rng.randint(0, 11), rng.randint(0, 59))
            if previous is not None and at <= previous:  # the steps one after the other
                at = previous + dt.timedelta(minutes=30)
            previous = at
            reviews.append(Review(sheet_id=sid, step=step, reviewer_id=w.reviewer(step, node_id, user_of[emp]),
                                  comment=comments[step], scores={k: float(v) for k, v in given[step].items()},
                                  deadline=deadline.get(step), submitted_at=at))
        sheet_rows.append((Step.CALIBRATION, total, sid))
    Review.objects.bulk_create(reviews, batch_size=BATCH)
    with connection.cursor() as cur:
        cur.executemany(f"UPDATE {SheetScore._meta.db_table} SET value = %s, score = %s, step = %s WHERE id = %s",
                        score_rows)
        cur.executemany(f"UPDATE {Sheet._meta.db_table} SET step = %s, total = %s WHERE id = %s", sheet_rows)
    return reviews


def _self_comment(rng: random.Random, role: str, final, weak: str) -> str:
    if role != Role.TECHNICIAN:
        return rng.choice(SELF_OFFICE)
    value = {it.source: v for it, _s, v in final if it.kind == ItemKind.AUTO}
    parts = []
    if value.get("response_on_time_rate") is not None:
        parts.append(f"按时响应率 {value['response_on_time_rate']:.1f}%")
    if value.get("sat_overall") is not None:
        parts.append(f"客户满意度 {value['sat_overall']:.2f} 分")
    if value.get("ftf_rate") is not None:
        parts.append(f"一次修复率 {value['ftf_rate']:.1f}%")
    if not parts:
        return "本月工单较少，主要参加培训和网点内部工作。"
    return "本月" + "，".join(parts) + "。" + (f"下月重点提升{weak}。" if weak else "")


def _plan_follow_ups(w: _World, rng: random.Random) -> list[PlanFollowUp]:
    """Follow-ups of the improvement plans: a talk a week after the lock, a check a month later,
    and after two months the outcome (most reached their goals)."""
    rows, changed = [], []
    plans = (ImprovementPlan.objects.select_related("sheet__employee", "sheet__cycle")
             .order_by("sheet__cycle__period_start", "sheet__employee__employee_no"))
    for plan in plans:
        start = timezone.localdate(plan.created_at)
        author = plan.coach_id or w.hq_manager.pk
        for k, (after, text) in enumerate([(7, FOLLOW_UPS[0]), (30, FOLLOW_UPS[1]), (45, FOLLOW_UPS[2])]):
            if start + dt.timedelta(days=after) >= w.today:
                break
            if k == 1 and rng.random() < 0.5:
                continue
            rows.append(PlanFollowUp(plan=plan, at=w.at(start + dt.timedelta(days=after), 16, rng.randint(0, 59)),
                                     author_id=author, text=text))
        if start + dt.timedelta(days=60) < w.today:
            r = rng.random()
            status = PlanStatus.DONE if r < 0.65 else (PlanStatus.FAILED if r < 0.8 else PlanStatus.OPEN)
            if status != PlanStatus.OPEN:
                text = "复查：改进目标已达成，计划关闭。" if status == PlanStatus.DONE else "复查：改进目标未达成，已报部门。"
                rows.append(PlanFollowUp(plan=plan, at=w.at(start + dt.timedelta(days=60), 10), author_id=author,
                                         text=text))
                plan.status = status
                changed.append(plan)
    PlanFollowUp.objects.bulk_create(rows, batch_size=BATCH)
    ImprovementPlan.objects.bulk_update(changed, ["status"], batch_size=BATCH)
    return rows


# ==================================================================== reset

def reset() -> int:
    """Delete the service team's rows (children first): appraisal cycles, sheets, reviews, awards,
    plans, the schemes; training sessions and enrolments, safety events. The courses and the
    cadence rules (the migration's) and the audit trail stay."""
    total = 0
    with transaction.atomic():
        for model in (PlanFollowUp, ImprovementPlan, Award, Review, SheetScore, Sheet, Cycle, SchemeItem,
                      SchemeVersion, Scheme, Enrolment, Session, SafetyEvent):
            qs = model.objects.all()
            total += qs._raw_delete(qs.db)
    return total
