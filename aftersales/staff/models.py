"""The service team (R-PERF-1..3, R-TRN-1..2): performance appraisal and training.

Appraisal
- ``Scheme``: what a role is appraised on. Its content is versioned: a ``SchemeVersion`` holds
  the ``SchemeItem`` rows (indicator, group, weight, scoring rule); a change is a new version that
  applies from the next cycle (``valid_from``); a cycle pins the version in force when it opened.
- ``Cycle``: one appraisal period (monthly, quarterly, annual) over a node's subtree, with the
  deadlines of its review steps, the grading mode (bands or a forced distribution) and the bonus
  rule. Status: open → reviewing → calibrating → locked → published.
- ``Sheet``: one person's appraisal in a cycle: the automatic indicator values filled when the
  cycle closes, ``SheetScore`` per item, the step reached, the total, grade, rank, bonus and
  flags (warning, management review after repeated last places).
- ``Review``: one step of a sheet (self, supervisor, department, company, calibration) by its own
  role, with comments, the manual scores it gave and its deadline.
- ``Award`` (service star of the month per centre, best team) and ``ImprovementPlan`` (goals and
  follow-up for the lowest grade).

Training
- ``Course`` (subject of the seeds: culture, product, process, fault finding, communication,
  safety, the system), ``Session`` (date, trainer, place or online), ``Enrolment`` (attendance,
  hours, exam score, passed). ``CadenceRule``: how often each grade must be trained (junior every
  6 months, senior every 3). Certificates are ``org.Certification``; dispatch refuses a job
  needing one the technician lacks (``dispatch.selectors``).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

MONEY = {"max_digits": 12, "decimal_places": 2}
SCORE = {"max_digits": 6, "decimal_places": 2}


# ---------------------------------------------------------------- appraisal schemes

class Group(models.TextChoices):
    EFFICIENCY = "efficiency", _("工作效率")
    QUALITY = "quality", _("服务质量")
    CAPABILITY = "capability", _("业务能力")
    COST = "cost", _("成本控制")
    SAFETY = "safety", _("安全管理")


class ItemKind(models.TextChoices):
    AUTO = "auto", _("系统自动取数")
    MANUAL = "manual", _("评审打分")


class Rule(models.TextChoices):
    LINEAR = "linear", _("线性（下限到目标）")
    BANDS = "bands", _("分档")
    POINTS = "points", _("按次计分")


class Step(models.TextChoices):
    SELF = "self", _("自评")
    SUPERVISOR = "supervisor", _("上级评价")
    DEPARTMENT = "department", _("部门评价")
    COMPANY = "company", _("公司评价")
    CALIBRATION = "calibration", _("经理校准")


STEP_ORDER = (Step.SELF, Step.SUPERVISOR, Step.DEPARTMENT, Step.COMPANY, Step.CALIBRATION)


class Scheme(models.Model):
    """What a role is appraised on (one scheme per role)."""

    role = models.CharField(_("角色"), max_length=30, unique=True)  # org.roles.Role
    name = models.CharField(_("名称"), max_length=100)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("考核方案")
        verbose_name_plural = _("考核方案")

    def __str__(self):
        return self.name


class SchemeVersion(models.Model):
    """The items and weights of a scheme from ``valid_from`` on; cycles opened on or after that
    day use it (the latest version valid on the cycle's start)."""

    scheme = models.ForeignKey(Scheme, on_delete=models.CASCADE, related_name="versions", verbose_name=_("方案"))
    number = models.PositiveIntegerField(_("版本号"))
    valid_from = models.DateField(_("生效日期"))
    note = models.CharField(_("变更说明"), max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("创建人"))
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("考核方案版本")
        verbose_name_plural = _("考核方案版本")
        constraints = [models.UniqueConstraint(fields=["scheme", "number"], name="scheme_version_unique"),
                       models.UniqueConstraint(fields=["scheme", "valid_from"], name="scheme_version_from_unique")]

    def __str__(self):
        return f"{self.scheme} v{self.number}"


class SchemeItem(models.Model):
    """One indicator of a version: its group and weight (percent; a version's weights sum to 100),
    automatic (``source``: a quality indicator code, or ``training_hours``, ``exam_score``,
    ``safety_incidents``, ``complaints``) or manual (rated at ``step``), and its scoring rule
    with ``params``: linear {floor, target} (0 points at the floor, 100 at the target, either
    direction), bands [{from, to, score}], points {per_event, base, cap}."""

    version = models.ForeignKey(SchemeVersion, on_delete=models.CASCADE, related_name="items",
                                verbose_name=_("版本"))
    code = models.CharField(_("编码"), max_length=40)
    label = models.CharField(_("指标"), max_length=100)
    group = models.CharField(_("维度"), max_length=12, choices=Group.choices)
    kind = models.CharField(_("取数方式"), max_length=8, choices=ItemKind.choices)
    source = models.CharField(_("数据来源"), max_length=40, blank=True)
    step = models.CharField(_("评分环节"), max_length=12, choices=Step.choices, blank=True)
    weight = models.DecimalField(_("权重（%）"), **SCORE)
    rule = models.CharField(_("计分规则"), max_length=8, choices=Rule.choices)
    params = models.JSONField(_("规则参数"), default=dict)
    position = models.PositiveSmallIntegerField(_("顺序"), default=0)

    class Meta:
        verbose_name = _("考核指标")
        verbose_name_plural = _("考核指标")
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "code"], name="scheme_item_code_unique"),
            models.CheckConstraint(condition=Q(weight__gt=0, weight__lte=100), name="scheme_item_weight_range"),
        ]

    def __str__(self):
        return f"{self.label} {self.weight}%"


# ---------------------------------------------------------------- cycles and sheets

class CycleKind(models.TextChoices):
    MONTHLY = "monthly", _("月度")
    QUARTERLY = "quarterly", _("季度")
    ANNUAL = "annual", _("年度")


class CycleStatus(models.TextChoices):
    OPEN = "open", _("进行中")
    REVIEWING = "reviewing", _("评审中")
    CALIBRATING = "calibrating", _("校准中")
    LOCKED = "locked", _("已锁定")
    PUBLISHED = "published", _("已发布")


class GradingMode(models.TextChoices):
    BANDS = "bands", _("按分数段")
    FORCED = "forced", _("强制分布")


class BonusMode(models.TextChoices):
    NONE = "none", _("不计奖金")
    POOL = "pool", _("奖金池按得分分配")
    MULTIPLIER = "multiplier", _("基数 × 等级系数")


class Cycle(models.Model):
    """An appraisal period over ``node``'s subtree. ``grading``: bands [{grade, min}] (mode bands)
    or shares [{grade, percent}] from the top (mode forced, per node × role). ``bonus``:
    {"pool": amount} shared by score, or {"base": amount, "multipliers": {grade: factor}}.
    ``deadlines``: {step: date}."""

    kind = models.CharField(_("周期"), max_length=10, choices=CycleKind.choices)
    period_start = models.DateField(_("期间起"))
    period_end = models.DateField(_("期间止"))
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="+", verbose_name=_("范围"))
    status = models.CharField(_("状态"), max_length=12, choices=CycleStatus.choices, default=CycleStatus.OPEN)
    grading_mode = models.CharField(_("定级方式"), max_length=8, choices=GradingMode.choices,
                                    default=GradingMode.BANDS)
    grading = models.JSONField(_("定级参数"), default=list)
    bonus_mode = models.CharField(_("奖金规则"), max_length=12, choices=BonusMode.choices, default=BonusMode.NONE)
    bonus = models.JSONField(_("奖金参数"), default=dict, blank=True)
    deadlines = models.JSONField(_("各环节截止日期"), default=dict)
    last_place_cycles = models.PositiveSmallIntegerField(_("连续末位几次提交管理层"), default=2)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("创建人"))
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)
    closed_at = models.DateTimeField(_("结束取数时间"), null=True, blank=True)
    locked_at = models.DateTimeField(_("锁定时间"), null=True, blank=True)
    published_at = models.DateTimeField(_("发布时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("考核周期")
        verbose_name_plural = _("考核周期")
        constraints = [
            models.UniqueConstraint(fields=["kind", "period_start", "node"], name="cycle_unique_per_node"),
            models.CheckConstraint(condition=Q(period_end__gte=models.F("period_start")), name="cycle_period_order"),
        ]
        indexes = [models.Index(fields=["node", "-period_start"], name="cycle_node_period_idx")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.period_start}"


class Sheet(models.Model):
    """One person's appraisal in a cycle."""

    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="sheets", verbose_name=_("周期"))
    employee = models.ForeignKey("org.Employee", on_delete=models.PROTECT, related_name="appraisal_sheets",
                                 verbose_name=_("员工"))
    version = models.ForeignKey(SchemeVersion, on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("方案版本"))
    role = models.CharField(_("角色"), max_length=30)
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="+", verbose_name=_("所属节点"),
                             db_index=False)
    step = models.CharField(_("当前环节"), max_length=12, choices=Step.choices, default=Step.SELF)
    auto_total = models.DecimalField(_("自动指标得分"), **SCORE, null=True, blank=True)
    total = models.DecimalField(_("总分"), **SCORE, null=True, blank=True)
    grade = models.CharField(_("等级"), max_length=10, blank=True)
    rank = models.PositiveIntegerField(_("排名"), null=True, blank=True)   # within node × role
    rank_of = models.PositiveIntegerField(_("参与排名人数"), null=True, blank=True)
    bonus = models.DecimalField(_("奖金（元）"), **MONEY, null=True, blank=True)
    last_place = models.BooleanField(_("末位"), default=False)
    review_flag = models.BooleanField(_("提交管理层审查"), default=False,
                                      help_text=_("连续多个周期排名末位"))
    warning = models.BooleanField(_("警告"), default=False)
    filled_at = models.DateTimeField(_("取数时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("考核表")
        verbose_name_plural = _("考核表")
        constraints = [models.UniqueConstraint(fields=["cycle", "employee"], name="sheet_one_per_cycle")]
        indexes = [models.Index(fields=["cycle", "node", "role", "total"], name="sheet_cycle_node_role_idx"),
                   models.Index(fields=["employee", "cycle"], name="sheet_employee_idx")]

    def __str__(self):
        return f"{self.cycle_id}/{self.employee_id}"


class SheetScore(models.Model):
    """One item of a sheet: the raw value (automatic) or the rating (manual), and its score 0–100."""

    sheet = models.ForeignKey(Sheet, on_delete=models.CASCADE, related_name="scores", verbose_name=_("考核表"))
    item = models.ForeignKey(SchemeItem, on_delete=models.PROTECT, related_name="+", verbose_name=_("指标"))
    value = models.DecimalField(_("指标值"), max_digits=14, decimal_places=4, null=True, blank=True)
    score = models.DecimalField(_("得分"), **SCORE, null=True, blank=True)
    step = models.CharField(_("评分环节"), max_length=12, blank=True)

    class Meta:
        verbose_name = _("指标得分")
        verbose_name_plural = _("指标得分")
        constraints = [
            models.UniqueConstraint(fields=["sheet", "item"], name="sheet_score_unique"),
            models.CheckConstraint(condition=Q(score__isnull=True) | Q(score__gte=0, score__lte=100),
                                   name="sheet_score_range"),
        ]

    def __str__(self):
        return f"{self.sheet_id}:{self.item_id}={self.score}"


class Review(models.Model):
    """One step of a sheet, done by its own role."""

    sheet = models.ForeignKey(Sheet, on_delete=models.CASCADE, related_name="reviews", verbose_name=_("考核表"))
    step = models.CharField(_("环节"), max_length=12, choices=Step.choices)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+", verbose_name=_("评价人"))
    scores = models.JSONField(_("评分"), default=dict, blank=True)  # item code → 0–100
    adjustment = models.DecimalField(_("校准调整"), **SCORE, null=True, blank=True)
    comment = models.TextField(_("评语"), blank=True)
    deadline = models.DateField(_("截止日期"), null=True, blank=True)
    submitted_at = models.DateTimeField(_("提交时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("评审")
        verbose_name_plural = _("评审")
        constraints = [models.UniqueConstraint(fields=["sheet", "step"], name="review_one_per_step")]

    def __str__(self):
        return f"{self.sheet_id} {self.step}"


class AwardKind(models.TextChoices):
    STAR = "star", _("月度服务明星")
    BEST_TEAM = "best_team", _("最佳团队")


class Award(models.Model):
    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="awards", verbose_name=_("周期"))
    kind = models.CharField(_("奖项"), max_length=10, choices=AwardKind.choices)
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="+", verbose_name=_("单位"))
    employee = models.ForeignKey("org.Employee", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("获奖人"))
    score = models.DecimalField(_("得分"), **SCORE, null=True, blank=True)

    class Meta:
        verbose_name = _("奖项")
        verbose_name_plural = _("奖项")
        constraints = [models.UniqueConstraint(fields=["cycle", "kind", "node"], name="award_unique")]

    def __str__(self):
        return f"{self.kind} {self.node_id}"


class PlanStatus(models.TextChoices):
    OPEN = "open", _("执行中")
    DONE = "done", _("已达成")
    FAILED = "failed", _("未达成")


class ImprovementPlan(models.Model):
    """The improvement plan of a lowest-grade sheet: goals [{text, measure, due}] and follow-ups."""

    sheet = models.OneToOneField(Sheet, on_delete=models.CASCADE, related_name="plan", verbose_name=_("考核表"))
    goals = models.JSONField(_("改进目标"), default=list)
    coach = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("辅导人"))
    due_on = models.DateField(_("完成期限"))
    status = models.CharField(_("状态"), max_length=8, choices=PlanStatus.choices, default=PlanStatus.OPEN)
    created_at = models.DateTimeField(_("创建时间"), default=timezone.now)

    class Meta:
        verbose_name = _("绩效改进计划")
        verbose_name_plural = _("绩效改进计划")

    def __str__(self):
        return f"plan {self.sheet_id}"


class PlanFollowUp(models.Model):
    plan = models.ForeignKey(ImprovementPlan, on_delete=models.CASCADE, related_name="follow_ups",
                             verbose_name=_("改进计划"))
    at = models.DateTimeField(_("时间"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                               verbose_name=_("记录人"))
    text = models.TextField(_("跟进情况"))

    class Meta:
        verbose_name = _("改进跟进")
        verbose_name_plural = _("改进跟进")
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.plan_id} {self.at}"


# ---------------------------------------------------------------- training

class Subject(models.TextChoices):
    CULTURE = "culture", _("企业文化与价值观")
    PRODUCT = "product", _("产品知识")
    PROCESS = "process", _("售后服务流程")
    FAULT = "fault", _("故障排除")
    COMMUNICATION = "communication", _("沟通与服务技巧")
    SAFETY = "safety", _("安全规范")
    SYSTEM = "system", _("售后服务管理系统使用")


class Course(models.Model):
    code = models.CharField(_("编码"), max_length=30, unique=True)
    title = models.CharField(_("课程名称"), max_length=100)
    subject = models.CharField(_("类别"), max_length=15, choices=Subject.choices)
    hours = models.DecimalField(_("学时"), max_digits=5, decimal_places=1)
    pass_mark = models.PositiveSmallIntegerField(_("及格分"), null=True, blank=True,
                                                 help_text=_("无考试则留空"))
    description = models.TextField(_("简介"), blank=True)
    active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("课程")
        verbose_name_plural = _("课程")
        constraints = [models.CheckConstraint(condition=Q(hours__gt=0), name="course_hours_positive"),
                       models.CheckConstraint(condition=Q(pass_mark__isnull=True) | Q(pass_mark__lte=100),
                                              name="course_pass_mark_range")]

    def __str__(self):
        return self.title


class SessionStatus(models.TextChoices):
    PLANNED = "planned", _("已安排")
    DONE = "done", _("已结束")
    CANCELLED = "cancelled", _("已取消")


class Session(models.Model):
    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="sessions", verbose_name=_("课程"))
    node = models.ForeignKey("org.Node", on_delete=models.PROTECT, related_name="+", verbose_name=_("组织单位"))
    starts_at = models.DateTimeField(_("开始时间"))
    ends_at = models.DateTimeField(_("结束时间"))
    trainer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+", verbose_name=_("讲师"))
    place = models.CharField(_("地点"), max_length=200, blank=True)
    online = models.BooleanField(_("线上"), default=False)
    capacity = models.PositiveIntegerField(_("名额"), default=30)
    status = models.CharField(_("状态"), max_length=10, choices=SessionStatus.choices, default=SessionStatus.PLANNED)

    class Meta:
        verbose_name = _("培训场次")
        verbose_name_plural = _("培训场次")
        indexes = [models.Index(fields=["node", "starts_at"], name="session_node_start_idx"),
                   models.Index(fields=["starts_at"], name="session_start_idx")]
        constraints = [models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")),
                                              name="session_ends_after_start"),
                       models.CheckConstraint(condition=Q(online=True) | ~Q(place=""), name="session_place_or_online")]

    def __str__(self):
        return f"{self.course} {self.starts_at:%Y-%m-%d}"


class Attendance(models.TextChoices):
    ENROLLED = "enrolled", _("已报名")
    ATTENDED = "attended", _("已参加")
    ABSENT = "absent", _("缺席")
    CANCELLED = "cancelled", _("已取消")


class Enrolment(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="enrolments", verbose_name=_("场次"))
    employee = models.ForeignKey("org.Employee", on_delete=models.PROTECT, related_name="enrolments",
                                 verbose_name=_("员工"))
    status = models.CharField(_("出勤"), max_length=10, choices=Attendance.choices, default=Attendance.ENROLLED)
    hours = models.DecimalField(_("学时"), max_digits=5, decimal_places=1, default=0)
    score = models.PositiveSmallIntegerField(_("考试成绩"), null=True, blank=True)
    passed = models.BooleanField(_("通过"), null=True, blank=True)
    recorded_at = models.DateTimeField(_("记录时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("培训记录")
        verbose_name_plural = _("培训记录")
        constraints = [
            models.UniqueConstraint(fields=["session", "employee"], name="enrolment_unique"),
            models.CheckConstraint(condition=Q(score__isnull=True) | Q(score__lte=100), name="enrolment_score_range"),
        ]
        indexes = [models.Index(fields=["employee", "status"], name="enrolment_employee_idx")]

    def __str__(self):
        return f"{self.session_id}/{self.employee_id}"


class CadenceRule(models.Model):
    """How often staff of a grade must attend training (months between trainings)."""

    grade = models.CharField(_("级别"), max_length=10, unique=True)  # org.models.Grade
    months = models.PositiveSmallIntegerField(_("间隔（月）"))

    class Meta:
        verbose_name = _("培训频次")
        verbose_name_plural = _("培训频次")
        constraints = [models.CheckConstraint(condition=Q(months__gte=1), name="cadence_months_positive")]

    def __str__(self):
        return f"{self.grade}: {self.months}"


class SafetyEvent(models.Model):
    """A safety incident or violation of a person (an electric shock, a fall, work without the
    required protection …): the automatic safety indicator of the appraisal counts them."""

    class Severity(models.TextChoices):
        MINOR = "minor", _("轻微")
        SERIOUS = "serious", _("严重")

    employee = models.ForeignKey("org.Employee", on_delete=models.PROTECT, related_name="safety_events",
                                 verbose_name=_("员工"))
    occurred_on = models.DateField(_("发生日期"))
    severity = models.CharField(_("程度"), max_length=10, choices=Severity.choices)
    description = models.CharField(_("经过"), max_length=500)
    order = models.ForeignKey("tickets.WorkOrder", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", verbose_name=_("相关工单"))
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("记录人"))
    recorded_at = models.DateTimeField(_("记录时间"), default=timezone.now)

    class Meta:
        verbose_name = _("安全事件")
        verbose_name_plural = _("安全事件")
        indexes = [models.Index(fields=["employee", "occurred_on"], name="safety_employee_day_idx")]

    def __str__(self):
        return f"{self.employee_id} {self.occurred_on}"
