"""Demo data of the assets app: loaner pools, loans, tools and instruments with their
calibration history — deterministic for a seed, written in bulk.

``build`` runs after the organisation, the staff and the work orders exist (it reads them with
a few set-based queries) and creates:

- a pool of substitute appliances at every outlet (air conditioners, refrigerators, washing
  machines, televisions, water heaters; a few in maintenance, one retired here and there);
- loans: returned ones on repairs that took long and are done (one came back damaged), and
  open ones on the repair orders still open after more than 3 days — some of them overdue;
- for every technician the instruments of an appliance service (multimeter, clamp meter,
  insulation tester; refrigerant gauges, leak detector and vacuum pump for those who repair
  air conditioners or refrigerators; a gas leak detector for water heaters and range hoods; a
  safety harness inspected twice a year for those who work at height), a spare multimeter in
  each outlet's store, with the calibration history behind each due date: most are valid,
  some fall due within 7 days, some are overdue (the demo technician's multimeter among them,
  so that dispatching them shows the warning), a few failed their last check.

``reset`` deletes all of it (called before the work orders are deleted). The audit trail gets
one ``demo.create`` entry per row, in one ``audit_record_created_bulk``.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from aftersales.catalog.models import ProductModel
from aftersales.catalog.warranty import add_months
from aftersales.core.progress import Progress
from aftersales.org.models import Employee, Node, NodeKind, RoleAssignment
from aftersales.org.roles import Role
from aftersales.records.audit import audit_record_created_bulk
from aftersales.tickets.models import OrderType, WorkOrder

from .models import (
    Calibration,
    CalibrationResult,
    CandidateNotice,
    CheckKind,
    Loan,
    Loaner,
    LoanerState,
    LoanPolicy,
    LoanReason,
    ReturnCondition,
    Tool,
    ToolKind,
    ToolState,
)
from .selectors import CANDIDATE_STATUSES

AUDIT_ACTION = "demo.create"
BATCH = 2000
AFTER_DAYS = 3

# The pool of each outlet: (category code, how many, daily cost in yuan).
POOL = [("AC", 3, "25.00"), ("RF", 2, "20.00"), ("WM", 2, "15.00"), ("TV", 1, "10.00"), ("WH", 1, "12.00")]

# Instruments: (key, name, kind, model, check, interval months, for which skills; None: everyone).
INSTRUMENTS = [
    ("MM", "数字万用表", ToolKind.INSTRUMENT, "Fluke 17B+", CheckKind.CALIBRATION, 12, None),
    ("CM", "钳形电流表", ToolKind.INSTRUMENT, "UNI-T UT204+", CheckKind.CALIBRATION, 12, None),
    ("IR", "绝缘电阻测试仪", ToolKind.INSTRUMENT, "Fluke 1503", CheckKind.CALIBRATION, 12, None),
    ("RG", "冷媒压力表组", ToolKind.INSTRUMENT, "Testo 550s", CheckKind.CALIBRATION, 12, {"AC", "RF"}),
    ("LD", "电子卤素检漏仪", ToolKind.INSTRUMENT, "Inficon D-TEK Stratus", CheckKind.CALIBRATION, 12, {"AC", "RF"}),
    ("VP", "真空泵", ToolKind.TOOL, "飞越 FY-1C-N", CheckKind.INSPECTION, 12, {"AC", "RF"}),
    ("GD", "可燃气体检漏仪", ToolKind.INSTRUMENT, "Testo 316-2", CheckKind.CALIBRATION, 6, {"WH", "RH"}),
    ("SH", "全身式安全带", ToolKind.TOOL, "代尔塔 501012", CheckKind.INSPECTION, 6, {"AC"}),
    ("KIT", "电动工具套装", ToolKind.TOOL, "博世 GSB 120-LI", CheckKind.NONE, None, None),
]
AGENCIES = ["上海市计量测试技术研究院", "广东省计量科学研究院", "北京市计量检测科学研究院", "中国测试技术研究院",
            "江苏省计量科学研究院", "山东省计量科学研究院"]


def _progress(stream, total: int, label: str) -> Progress | None:
    return Progress(total, label, stream, live=None) if stream is not None else None


def _bulk(model, objs: list, stream=None, label: str = "") -> list:
    p = _progress(stream, len(objs), label) if label else None
    for i in range(0, len(objs), BATCH):
        model.objects.bulk_create(objs[i: i + BATCH], batch_size=BATCH)
        if p:
            p.advance(len(objs[i: i + BATCH]))
    if p:
        p.finish()
    return objs


def reset() -> int:
    """Delete the demo's loaners, loans, tools and calibrations (children first); the audit
    trail is kept. Returns how many rows were deleted."""
    total = 0
    with transaction.atomic():
        for model in (CandidateNotice, Loan, Loaner, LoanPolicy, Calibration, Tool):
            total += model.objects.all().delete()[0]
    return total


def build(*, seed: int, today: dt.date, progress_stream=None) -> dict[str, int]:
    """Create the assets demo data (see the module docstring); counts by model label."""
    rng = random.Random(f"aftersales-demo:{seed}:assets")
    tz = timezone.get_current_timezone()
    now = timezone.now()
    if timezone.localdate(now) != today:  # a fixed ``today`` (tests): the end of that day at the latest
        now = min(now, dt.datetime.combine(today, dt.time(20, 0), tz))

    outlets = list(Node.objects.filter(kind=NodeKind.OUTLET, active=True).order_by("code"))
    outlet_ids = {o.pk for o in outlets}
    models_by_cat: dict[str, list[tuple[int, str]]] = {}
    for code, cat_id, name in ProductModel.objects.values_list("category__code", "category_id", "name") \
            .order_by("category__code", "code"):
        models_by_cat.setdefault(code, []).append((cat_id, name))

    # ------------------------------------------------ the loaner pools
    loaners: list[Loaner] = []
    created = dt.datetime.combine(today - dt.timedelta(days=400), dt.time(9, 0), tz)
    for o in outlets:
        n = 0
        for cat, count, cost in POOL:
            if cat not in models_by_cat:
                continue
            for _k in range(count):
                n += 1
                cat_id, model_name = rng.choice(models_by_cat[cat])
                loaners.append(Loaner(
                    node=o, category_id=cat_id, asset_no=f"BY-{o.code}-{n:02d}", model_name=model_name,
                    serial=f"BY{rng.randint(10**9, 10**10 - 1)}", state=LoanerState.AVAILABLE,
                    daily_cost=Decimal(cost), acquired_on=today - dt.timedelta(days=rng.randint(200, 1500)),
                    created_at=created, updated_at=created))
    _bulk(Loaner, loaners, progress_stream, "备用机")
    pool: dict[tuple[int, int], list[Loaner]] = {}
    for x in loaners:
        pool.setdefault((x.node_id, x.category_id), []).append(x)
    free_from: dict[int, dt.datetime] = {x.pk: created for x in loaners}

    manager_of = dict(RoleAssignment.objects.filter(role=Role.OUTLET_MANAGER, node_id__in=outlet_ids)
                      .order_by("node_id", "user_id").values_list("node_id", "user_id"))

    # ------------------------------------------------ loans: returned ones on long repairs that are done
    loans: list[Loan] = []
    done = list(WorkOrder.objects.filter(
        type=OrderType.REPAIR, node_id__in=outlet_ids, unit__isnull=False, completed_at__isnull=False,
        created_at__gte=now - dt.timedelta(days=90))
        .values_list("pk", "node_id", "unit__model__category_id", "created_at", "completed_at").order_by("created_at", "pk"))
    per_outlet: dict[int, int] = {}
    damaged_one = False
    for pk, node_id, cat_id, created_at, completed_at in done:
        if completed_at - created_at < dt.timedelta(days=AFTER_DAYS + 1) or per_outlet.get(node_id, 0) >= 3:
            continue
        lent_at = created_at + dt.timedelta(days=AFTER_DAYS, hours=rng.randint(1, 6))
        returned_at = completed_at + dt.timedelta(hours=rng.randint(2, 30))
        if returned_at > now:
            continue
        x = next((x for x in pool.get((node_id, cat_id), []) if free_from[x.pk] < lent_at), None)
        if x is None or rng.random() < 0.3:
            continue
        condition, note = ReturnCondition.GOOD, ""
        if not damaged_one:
            condition, note, damaged_one = ReturnCondition.DAMAGED, "外壳磕碰，面板有裂纹", True
        loans.append(Loan(loaner=x, order_id=pk, node_id=node_id, reason=LoanReason.LONG_REPAIR, lent_at=lent_at,
                          lent_by_id=manager_of.get(node_id), due_on=timezone.localdate(lent_at) + dt.timedelta(days=14),
                          daily_cost=x.daily_cost, returned_at=returned_at, returned_by_id=manager_of.get(node_id),
                          return_condition=condition, return_note=note))
        free_from[x.pk] = returned_at
        per_outlet[node_id] = per_outlet.get(node_id, 0) + 1
        if condition != ReturnCondition.GOOD:
            x.state, x.condition_note = LoanerState.MAINTENANCE, f"损坏：{note}"

    # ------------------------------------------------ open loans on the repairs still open after 3 days
    open_orders = list(WorkOrder.objects.filter(
        type=OrderType.REPAIR, node_id__in=outlet_ids, unit__isnull=False, status__in=sorted(CANDIDATE_STATUSES),
        created_at__lt=now - dt.timedelta(days=AFTER_DAYS))
        .values_list("pk", "node_id", "unit__model__category_id", "created_at").order_by("created_at", "pk"))
    open_loans: list[Loan] = []
    for pk, node_id, cat_id, created_at in open_orders:
        if rng.random() < 0.3:
            continue  # left for the manager to lend from the candidates' list
        lent_at = created_at + dt.timedelta(days=AFTER_DAYS, hours=rng.randint(1, 8))
        choices = [x for x in pool.get((node_id, cat_id), [])
                   if x.state == LoanerState.AVAILABLE and free_from[x.pk] < lent_at]
        if not choices or lent_at > now:
            continue
        x = choices[0]
        lent_day = timezone.localdate(lent_at)
        loan = Loan(loaner=x, order_id=pk, node_id=node_id,
                    reason=LoanReason.LONG_REPAIR if rng.random() < 0.8 else LoanReason.MANAGER,
                    lent_at=lent_at, lent_by_id=manager_of.get(node_id),
                    due_on=lent_day + dt.timedelta(days=rng.choice([7, 10, 14])), daily_cost=x.daily_cost)
        open_loans.append(loan)
        x.state = LoanerState.LENT
    short = 3 - sum(1 for x in open_loans if x.due_on < today)  # a few overdue, whatever the history
    for loan in [x for x in open_loans if x.due_on >= today
                 and timezone.localdate(x.lent_at) <= today - dt.timedelta(days=2)][:max(0, short)]:
        loan.due_on = timezone.localdate(loan.lent_at) + dt.timedelta(days=1)
    loans += open_loans

    # a few loaners out of the pool: in maintenance, one retired
    idle = [x for x in loaners if x.state == LoanerState.AVAILABLE]
    for x in rng.sample(idle, min(len(idle), max(1, len(loaners) // 25))):
        x.state, x.condition_note = LoanerState.MAINTENANCE, rng.choice(["遥控器失灵，待更换", "清洗保养中", "压缩机异响，待检修"])
    idle = [x for x in loaners if x.state == LoanerState.AVAILABLE]
    if len(idle) > 20:
        x = rng.choice(idle)
        x.state, x.condition_note = LoanerState.RETIRED, "使用年限已到，报废"
    Loaner.objects.bulk_update([x for x in loaners if x.state != LoanerState.AVAILABLE], ["state", "condition_note"],
                               batch_size=BATCH)
    _bulk(Loan, loans, progress_stream, "备用机借用")

    # ------------------------------------------------ tools and instruments
    techs = list(Employee.objects.filter(
        active=True, node__kind=NodeKind.OUTLET,
        user_id__in=RoleAssignment.objects.filter(role=Role.TECHNICIAN).values("user_id"))
        .select_related("user").order_by("node__code", "employee_no"))
    skills: dict[int, set[str]] = {}
    for emp_id, code in Employee.skills.through.objects.filter(employee_id__in=[e.pk for e in techs]) \
            .values_list("employee_id", "category__code"):
        skills.setdefault(emp_id, set()).add(code)
    demo_tech = next((e for e in techs if e.user.username == "technician"), techs[0] if techs else None)

    tools: list[Tool] = []
    calibrations: list[Calibration] = []
    serial = 0

    def due_date(months: int, forced: str | None) -> dt.date:
        r = rng.random()
        if forced == "overdue" or (forced is None and r < 0.05):
            return today - dt.timedelta(days=rng.randint(1, 45))
        if forced == "soon" or (forced is None and r < 0.11):
            return today + dt.timedelta(days=rng.randint(0, 7))
        return today + dt.timedelta(days=rng.randint(8, months * 30 - 5))

    def add_tool(node_id: int, holder: Employee | None, spec, forced: str | None = None) -> None:
        nonlocal serial
        key, name, kind, model, check, months, _need = spec
        serial += 1
        code = f"GJ-{key}-{serial:05d}"
        t = Tool(code=code, name=name, kind=kind, model_name=model, serial=f"SN{rng.randint(10**7, 10**8 - 1)}",
                 node_id=node_id, holder=holder, check_kind=check,
                 state=ToolState.IN_USE if holder is not None else ToolState.IN_STORE,
                 created_at=created, updated_at=created)
        if check != CheckKind.NONE:
            due = due_date(months, forced)
            failed = forced is None and rng.random() < 0.01
            t.interval_months, t.due_on = months, due
            last = add_months(due, -months)
            agency = rng.choice(AGENCIES)
            prev = add_months(last, -months)
            if prev >= today - dt.timedelta(days=900):
                calibrations.append(Calibration(tool=t, done_on=prev, result=CalibrationResult.PASS,
                                                certificate_no=f"JL{prev:%Y}{serial:06d}A", agency=agency,
                                                next_due=last, recorded_at=dt.datetime.combine(prev, dt.time(10), tz)))
            calibrations.append(Calibration(tool=t, done_on=last, result=CalibrationResult.PASS,
                                            certificate_no=f"JL{last:%Y}{serial:06d}", agency=agency, next_due=due,
                                            recorded_at=dt.datetime.combine(last, dt.time(10), tz)))
            t.certificate_no = f"JL{last:%Y}{serial:06d}" if check == CheckKind.CALIBRATION else ""
            if failed and due > today:
                fail_on = today - dt.timedelta(days=rng.randint(1, 20))
                calibrations.append(Calibration(tool=t, done_on=max(fail_on, last), result=CalibrationResult.FAIL,
                                                agency=agency, note="示值误差超出允许范围",
                                                recorded_at=dt.datetime.combine(max(fail_on, last), dt.time(15), tz)))
                t.state = ToolState.UNDER_REPAIR
        tools.append(t)

    for e in techs:
        mine = skills.get(e.pk, set())
        for spec in INSTRUMENTS:
            need = spec[6]
            if need is not None and not (need & mine):
                continue
            forced = None
            if e is demo_tech and spec[0] == "MM":
                forced = "overdue"
            elif e is demo_tech and spec[0] == "CM":
                forced = "soon"
            add_tool(e.node_id, e, spec, forced)
    for o in outlets:  # a spare multimeter in each outlet's store
        add_tool(o.pk, None, INSTRUMENTS[0])
    _bulk(Tool, tools, progress_stream, "工具仪器")
    for c in calibrations:
        c.tool_id = c.tool.pk
    _bulk(Calibration, calibrations, progress_stream, "校准/检验记录")

    tool_node = {t.pk: t.node_id for t in tools}
    node_of = {Loaner: lambda x: x.node_id, Loan: lambda x: x.node_id, Tool: lambda x: x.node_id,
               Calibration: lambda x: tool_node.get(x.tool_id)}
    audit_record_created_bulk(actor=None, action=AUDIT_ACTION, objs=[*loaners, *loans, *tools, *calibrations],
                              node_of=lambda obj: node_of[type(obj)](obj), at=now)
    return {Loaner._meta.label: len(loaners), Loan._meta.label: len(loans), Tool._meta.label: len(tools),
            Calibration._meta.label: len(calibrations)}
