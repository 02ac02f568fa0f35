"""The appraisal pages under ``/team/appraisal/`` (R-PERF), thin over ``services_appraisal``
(writes) and ``selectors_appraisal`` (reads, scoped there).

- ``me/``: any employee — their sheets by cycle; the chosen (default: latest) sheet with the
  automatic values and the scores per group; the self-assessment form while the sheet is at the
  self step; once the cycle is published: total, grade, rank, bonus, awards, improvement plan.
- ``""``: the cycles in the caller's scope (``appraisal.review`` / ``appraisal.manage``).
- ``cycles/<id>/``: a cycle's board — the sheets of the chosen node (step, total, grade, rank,
  flags; filters; keyset pages), the rankings chart by node × role, the cycle's buttons (close,
  lock, publish: ``appraisal.manage``, with a confirmation), the Excel export.
- ``cycles/new/``: open a cycle (kind, period, node, grading, bonus, deadlines).
- ``sheets/<id>/``: a sheet, with the form of the step the caller may do now (each manual item
  0–100 and a comment), the calibration (``appraisal.manage``) and the improvement plan.
- ``schemes/``: the schemes' versions with their items; ``schemes/new/``: a new version.

A sheet or cycle out of sight is 404, a step or button not the caller's is 403, a state that does
not allow it is 409; bad input shows the form again with the field errors (400).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from urllib.parse import quote

from django.contrib import messages
from django.db.models import Avg, Count, IntegerField, Prefetch, Q, Value
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aftersales.core.errors import Conflict, DomainError, ValidationFailed
from aftersales.core.pagination import keyset_page
from aftersales.org.models import Node
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import holds_at, principal
from aftersales.quality import dashboard as qdash
from aftersales.quality.indicators import INDICATORS
from aftersales.web.permissions import SIGNED_IN, is_htmx, require_perm

from . import excel, scoring
from . import selectors_appraisal as reads
from . import services_appraisal as services
from .models import (
    STEP_ORDER,
    Award,
    BonusMode,
    CycleKind,
    CycleStatus,
    GradingMode,
    Group,
    ItemKind,
    PlanStatus,
    Rule,
    Scheme,
    SchemeItem,
    SchemeVersion,
    Step,
)

PAGE_SIZE = 50
BOARD_ORDERING = ["node__path", "role", "pos", "employee__employee_no", "id"]
CYCLE_ORDERING = ["-period_start", "-id"]
GRADE_ROWS = 5        # rows of the grading table in the cycle form
EXTRA_ITEM_ROWS = 2   # empty item rows offered below a scheme version's items
MAX_ITEM_ROWS = 60
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

DEFAULT_GRADING = [("A", 90, 10, "1.5"), ("B", 80, 20, "1.2"), ("C", 70, 50, "1.0"), ("D", 60, 15, "0.8"),
                   ("E", 0, 5, "0")]
UNITS = {"cost": "¥", "training_hours": "h"}


# ================================================================ helpers

def _int(value) -> int | None:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if 1 <= n <= 2**63 - 1 else None


def _errors(e: DomainError) -> dict[str, list[str]]:
    return {k: [str(m) for m in msgs] for k, msgs in e.errors.items()} or {"form": [str(e.message)]}


def _fail(request, e: DomainError, back: str) -> HttpResponse:
    return render(request, "web/form_error.html",
                  {"errors": [m for msgs in _errors(e).values() for m in msgs], "back": back}, status=e.status)


def value_text(item: SchemeItem, value) -> str:
    """An item's raw value as shown: the indicator's unit for quality sources, the rating for
    manual items."""
    if value is None:
        return "—"
    v = float(value)
    if item.kind == ItemKind.MANUAL:
        return f"{v:g}"
    code = services.QUALITY_ALIAS.get(item.source, item.source)
    if code in INDICATORS:
        return qdash.fmt(INDICATORS[code], v)
    if item.source == "cost":
        return f"¥{v:,.2f}"
    if item.source == "training_hours":
        return f"{v:g} h"
    if item.source == "exam_score":
        return f"{v:.1f}"
    return f"{v:g}"


def source_label(item: SchemeItem) -> str:
    if item.kind == ItemKind.MANUAL:
        return str(Step(item.step).label) if item.step in Step.values else ""
    return str(services.AUTO_SOURCES.get(item.source, item.source))


def rule_text(item: SchemeItem) -> str:
    """The scoring rule in words: "线性 60 → 95", "分档 …", "按次 100 − 20/次"."""
    p = item.params
    try:
        if item.rule == Rule.LINEAR:
            return _("线性：%(f)s 为 0 分，%(t)s 为 100 分") % {"f": _g(p["floor"]), "t": _g(p["target"])}
        if item.rule == Rule.BANDS:
            return _("分档：") + "；".join(f"{_g(b.get('from'), '')}~{_g(b.get('to'), '')} → {_g(b['score'])}"
                                         for b in p)
        if item.rule == Rule.POINTS:
            txt = _("按次：%(b)s 分，每次 %(e)s") % {"b": _g(p.get("base", 0)), "e": _g(p["per_event"])}
            return txt + (_("，上限 %(c)s") % {"c": _g(p["cap"])} if p.get("cap") is not None else "")
    except (KeyError, TypeError, AttributeError):
        pass
    return str(item.get_rule_display())


def _g(v, none="—") -> str:
    if v is None or v == "":
        return none
    try:
        return f"{Decimal(str(v)).normalize():f}"
    except ArithmeticError:
        return str(v)


def group_rows(scores) -> list[dict]:
    """The scores of a sheet by group: each group's weight, score (Σ score × weight ÷ Σ weights
    of the scored items) and items, in the groups' order."""
    by: dict[str, list] = {}
    for s in scores:
        by.setdefault(s.item.group, []).append(s)
    out = []
    for g in Group:
        rows = by.get(g.value)
        if not rows:
            continue
        out.append({"group": g.value, "label": g.label, "weight": sum(s.item.weight for s in rows),
                    "score": scoring.total((s.score, s.item.weight) for s in rows),
                    "items": [{"code": s.item.code, "label": s.item.label, "kind": s.item.kind,
                               "source": source_label(s.item), "weight": s.item.weight, "rule": rule_text(s.item),
                               "value": value_text(s.item, s.value), "score": s.score, "step": s.item.step}
                              for s in rows]})
    return out


def _published(sheet) -> bool:
    return sheet.cycle.status == CycleStatus.PUBLISHED


def sheet_context(user, sheet) -> dict:
    """What a sheet page shows: scores by group, the reviews done, results, awards, the plan.
    Five queries whatever the number of items."""
    scores = reads.sheet_scores(sheet)
    own = sheet.employee.user_id == user.pk
    reviews = {r.step: r for r in reads.sheet_reviews(sheet)}
    # the person reads the reviewers' comments once the results are published
    shown_reviews = [r for r in reviews.values() if not own or r.step == Step.SELF or _published(sheet)]
    deadlines = sheet.cycle.deadlines or {}
    steps = [{"step": s.value, "label": s.label, "done": s.value in reviews, "current": s.value == sheet.step
              and sheet.cycle.status in services.LIVE, "deadline": deadlines.get(s.value, "")} for s in STEP_ORDER]
    locked = sheet.cycle.status in (CycleStatus.LOCKED, CycleStatus.PUBLISHED)
    visible = reads.results_visible(user, sheet)
    ctx = {"sheet": sheet, "cycle": sheet.cycle, "groups": group_rows(scores), "reviews": shown_reviews,
           "steps": steps, "own": own, "scores": scores, "role_label": _role_label(sheet.role),
           "show_total": visible, "results": locked and visible, "awards": [], "plan": None, "follow_ups": []}
    if ctx["results"]:
        ctx["awards"] = list(Award.objects.filter(cycle=sheet.cycle, employee=sheet.employee).select_related("node"))
        plan = sheet.plan if _has_plan(sheet) else None
        if plan is not None:
            ctx["plan"] = plan
            ctx["follow_ups"] = list(plan.follow_ups.select_related("author"))
    return ctx


def _has_plan(sheet) -> bool:
    return hasattr(sheet, "plan")  # the reverse one-to-one raises (an AttributeError) when absent


def _manual_items(sheet, step: str, form=None, errors=None) -> list[dict]:
    """The manual items rated at ``step``: label, group, weight, the rating given (or posted) and
    its errors."""
    form, errors = form or {}, errors or {}
    out = []
    for s in sheet.scores.select_related("item").filter(item__kind=ItemKind.MANUAL, item__step=step) \
            .order_by("item__position", "item__id"):
        code = s.item.code
        posted = form.get(f"score-{code}") if form else None
        out.append({"code": code, "label": s.item.label, "weight": s.item.weight, "group": s.item.get_group_display(),
                    "value": posted if posted is not None else ("" if s.value is None else _g(s.value, "")),
                    "errors": errors.get(f"scores.{code}", [])})
    return out


def _review_form(request, sheet, step: str) -> dict:
    """The posted ratings of a step's form: {code: text} (validated by the service)."""
    return {code: request.POST.get(f"score-{code}", "").strip()
            for code in sheet.scores.filter(item__kind=ItemKind.MANUAL, item__step=step)
            .values_list("item__code", flat=True)}


def _submit_review(request, sheet) -> tuple[dict, str | None]:
    """Run the posted step; (errors, message) — no errors when it went through."""
    step = request.POST.get("step", "")
    scores = _review_form(request, sheet, step) if step in Step.values else {}
    try:
        services.review_submit(user=request.user, sheet_id=sheet.pk, step=step, scores=scores,
                               comment=request.POST.get("comment", ""))
    except ValidationFailed as e:
        return _errors(e), None
    return {}, _("已提交“%(step)s”。") % {"step": Step(step).label}


# ================================================================ my appraisal

@require_http_methods(["GET", "POST"])
@require_perm(SIGNED_IN)
def my_appraisal(request):
    user = request.user
    sheets = list(reads.my_sheets(user))
    chosen = _int(request.POST.get("sheet") or request.GET.get("sheet"))
    current = next((s for s in sheets if s.pk == chosen), None) if chosen else (sheets[0] if sheets else None)
    if chosen and current is None:
        raise Http404
    errors, status, form = {}, 200, {}
    if request.method == "POST":
        if current is None:
            raise Http404
        try:
            errors, msg = _submit_review(request, current)
        except DomainError as e:
            return _fail(request, e, f"{reverse('staff:appraisal_me')}?sheet={current.pk}")
        if not errors:
            messages.success(request, msg)
            return redirect(f"{reverse('staff:appraisal_me')}?sheet={current.pk}")
        status, form = 400, request.POST
    ctx = {"sheets": sheets, "current": current, "errors": errors, "form": form}
    if current is not None:
        ctx.update(sheet_context(user, current))
        if current.step == Step.SELF and current.cycle.status in services.LIVE:
            ctx["self_items"] = _manual_items(current, Step.SELF, form, errors)
            ctx["self_open"] = True
    return render(request, "staff/appraisal_me.html", ctx, status=status)


# ================================================================ cycles and the board

def _may_manage(user, node_id: int) -> bool:
    return holds_at(user, Perm.APPRAISAL_MANAGE, node_id)


@require_GET
@require_perm(Perm.APPRAISAL_REVIEW, Perm.APPRAISAL_MANAGE)
def cycle_list(request):
    user = request.user
    qs = reads.cycles_visible(user).select_related("node").annotate(n_sheets=Count("sheets"))
    try:
        page = keyset_page(qs, ordering=CYCLE_ORDERING, cursor=request.GET.get("cursor") or None, limit=PAGE_SIZE)
    except ValidationFailed as e:
        return _fail(request, e, reverse("staff:appraisal_cycles"))
    ctx = {"cycles": page.items, "next_cursor": page.next_cursor,
           "may_open": principal(user).can(Perm.APPRAISAL_MANAGE)}
    if is_htmx(request) and request.GET.get("cursor"):
        return render(request, "staff/appraisal_cycles_rows.html", ctx)
    return render(request, "staff/appraisal_cycles.html", ctx)


def board_nodes(user, cycle) -> list[Node]:
    """The nodes of the cycle's subtree within the caller's review scope (the node filter), the
    top one first."""
    qs = Node.objects.filter(path__startswith=cycle.node.path).order_by("path").only("id", "name", "kind", "path")
    ids = principal(user).node_ids_for(Perm.APPRAISAL_REVIEW)
    if ids is not None:
        qs = qs.filter(pk__in=sorted(ids))
    nodes = list(qs)
    top = min((n.path.count("/") for n in nodes), default=0)
    for n in nodes:
        n.indent = "\u3000" * (n.path.count("/") - top)
    return nodes


def _child_of(node: Node, path: str) -> int | None:
    rest = path[len(node.path):].strip("/")
    return int(rest.split("/")[0]) if rest else None


def ranking(cycle, f: dict, base) -> dict:
    """The rankings chart of the board (``{"categories", "series"}`` for ECharts), by node × role:

    - a node with sheets below it: the mean total of each child node (categories), one series
      per role;
    - otherwise the people of one role (the filter's, else the node's most frequent) by total,
      the best ``reads.CHART_MAX``, with their automatic score beside.
    ``links``: where a click on a category leads (the child node's board, the person's sheet).
    Two queries."""
    node = f["node"]
    cells = list(base.filter(total__isnull=False).values("node__path", "role")
                 .annotate(n=Count("id"), avg=Avg("total")).order_by())
    below = {_child_of(node, c["node__path"]) for c in cells} - {None}
    if below:
        sums: dict[tuple[int, str], list] = {}
        for c in cells:
            child = _child_of(node, c["node__path"])
            if child is None or (f["role"] and c["role"] != f["role"]):
                continue
            acc = sums.setdefault((child, c["role"]), [Decimal(0), 0])
            acc[0] += Decimal(str(c["avg"])) * c["n"]
            acc[1] += c["n"]
        names = dict(Node.objects.filter(pk__in=sorted(below)).order_by("path").values_list("id", "name"))
        roles = [r for r in services.ROLE_PRIORITY if any(k[1] == r for k in sums)]
        order = [i for i in names if any(k[0] == i for k in sums)]
        board = reverse("staff:appraisal_board", args=[cycle.pk])
        return {"kind": "nodes", "role": f["role"], "categories": [names[i] for i in order],
                "links": [f"{board}?node={i}" + (f"&role={f['role']}" if f["role"] else "") for i in order],
                "series": [{"name": _role_label(r), "data": [
                    float(scoring.dec(sums[(i, r)][0] / sums[(i, r)][1])) if (i, r) in sums else None for i in order]}
                    for r in roles]}
    counts: dict[str, int] = {}
    for c in cells:
        counts[c["role"]] = counts.get(c["role"], 0) + c["n"]
    role = f["role"] or max(counts, key=lambda r: (counts[r], r), default="")
    people = list(base.filter(role=role, total__isnull=False).select_related(None).select_related("employee")
                  .order_by("-total", "employee__employee_no")[:reads.CHART_MAX]) if role else []
    return {"kind": "people", "role": role, "categories": [s.employee.name for s in people],
            "links": [reverse("staff:appraisal_sheet", args=[s.pk]) for s in people],
            "series": [{"name": str(_("总分")), "data": [float(s.total) for s in people]},
                       {"name": str(_("自动指标得分")),
                        "data": [None if s.auto_total is None else float(s.auto_total) for s in people]}]}


BOARD_FLAGS = ("warning", "last_place", "review_flag")


def _board_filters(request, cycle, nodes) -> tuple[dict, dict]:
    q = request.GET
    f = {"node": None, "role": q.get("role", ""), "step": q.get("step", ""), "grade": q.get("grade", ""),
         "flag": q.get("flag", ""), "q": q.get("q", "").strip()[:50]}
    errors: dict[str, list[str]] = {}
    raw = q.get("node")
    if raw:
        nid = _int(raw)
        node = next((n for n in nodes if n.pk == nid), None)
        if node is None:
            raise Http404
        f["node"] = node
    elif nodes:
        f["node"] = nodes[0]
    if f["step"] and f["step"] not in Step.values:
        errors["step"] = [_("不是有效的环节。")]
    if f["flag"] and f["flag"] not in BOARD_FLAGS:
        errors["flag"] = [_("不是有效的选项。")]
    if len(f["grade"]) > 10:
        errors["grade"] = [_("不是有效的等级。")]
    return f, errors


def board_queryset(user, cycle, f: dict):
    qs = reads.sheets_for_board(user, cycle, f["node"])
    if f["role"]:
        qs = qs.filter(role=f["role"])
    if f["step"]:
        qs = qs.filter(step=f["step"])
    if f["grade"]:
        qs = qs.filter(grade=f["grade"])
    if f["flag"]:
        qs = qs.filter(**{f["flag"]: True})
    if f["q"]:
        qs = qs.filter(Q(employee__name__icontains=f["q"]) | Q(employee__employee_no__icontains=f["q"]))
    return qs.annotate(pos=Coalesce("rank", Value(2**31 - 1), output_field=IntegerField()))


@require_GET
@require_perm(Perm.APPRAISAL_REVIEW, Perm.APPRAISAL_MANAGE)
def cycle_board(request, cycle_id: int):
    user = request.user
    cycle = reads.cycle_get(user, cycle_id)
    nodes = board_nodes(user, cycle)
    f, errors = _board_filters(request, cycle, nodes)
    rows, next_cursor, status = [], None, 200
    if errors:
        status = 400
    else:
        try:
            page = keyset_page(board_queryset(user, cycle, f), ordering=BOARD_ORDERING,
                               cursor=request.GET.get("cursor") or None, limit=PAGE_SIZE)
        except ValidationFailed as e:
            errors, status = _errors(e), 400
        else:
            rows, next_cursor = page.items, page.next_cursor
    for s in rows:
        s.role_label = _role_label(s.role)
    params = request.GET.copy()
    params.pop("cursor", None)
    ctx = {"cycle": cycle, "rows": rows, "next_cursor": next_cursor, "base_query": params.urlencode(),
           "errors": errors, "f": f, "nodes": nodes}
    if is_htmx(request) and request.GET.get("cursor"):
        return render(request, "staff/appraisal_board_rows.html", ctx, status=status)
    chart, progress = None, []
    if f["node"] is not None:
        base = reads.sheets_for_board(user, cycle, f["node"])
        if not errors:
            chart = ranking(cycle, f, base)
        by_step = dict(base.values("step").annotate(n=Count("id")).order_by().values_list("step", "n"))
        progress = [{"step": s.value, "label": s.label, "n": by_step.get(s.value, 0)} for s in STEP_ORDER]
    may_manage = _may_manage(user, cycle.node_id)
    ctx.update(grading_text=grading_text(cycle),
               deadlines=[(s.label, cycle.deadlines[s.value]) for s in STEP_ORDER if s.value in (cycle.deadlines or {})],
               chart=chart, progress=progress, total_sheets=sum(p["n"] for p in progress), may_manage=may_manage,
               roles=_role_choices(), steps=Step.choices, grades=[g["grade"] for g in cycle.grading],
               flags=_flag_choices(), actions=_cycle_actions(cycle) if may_manage else [],
               export_url=f"{reverse('staff:appraisal_export', args=[cycle.pk])}"
                          + (f"?node={f['node'].pk}" if f["node"] is not None else ""))
    return render(request, "staff/appraisal_board.html", ctx, status=status)


def grading_text(cycle) -> str:
    return "，".join(f"{g['grade']} ≥ {_g(g['min'])}" if "min" in g else f"{g['grade']} {_g(g.get('percent'))}%"
                    for g in cycle.grading)


def _role_choices() -> list[tuple[str, str]]:
    return [(r.value, r.label) for r in services.ROLE_PRIORITY]


def _flag_choices() -> list[tuple[str, str]]:
    return [("warning", _("警告")), ("last_place", _("末位")), ("review_flag", _("提交管理层审查"))]


CYCLE_ACTIONS = {"close": services.cycle_close, "lock": services.cycle_lock, "publish": services.cycle_publish}


def _cycle_actions(cycle) -> list[dict]:
    out = []
    if cycle.status == CycleStatus.OPEN:
        out.append({"action": "close", "label": _("结束取数，开始评审"),
                    "confirm": _("结束取数后将为每位员工生成考核表并自动取数，确定吗？")})
    if cycle.status in services.LIVE:
        out.append({"action": "lock", "label": _("锁定并计算结果"),
                    "confirm": _("锁定后不能再评审或校准，将计算总分、等级、排名、奖金和奖项。确定吗？")})
    if cycle.status == CycleStatus.LOCKED:
        out.append({"action": "publish", "label": _("发布结果"),
                    "confirm": _("发布后员工可以看到自己的考核结果。确定吗？")})
    return out


@require_POST
@require_perm(Perm.APPRAISAL_MANAGE)
def cycle_action(request, cycle_id: int, action: str):
    if action not in CYCLE_ACTIONS:
        raise Http404
    back = reverse("staff:appraisal_board", args=[cycle_id])
    try:
        cycle = CYCLE_ACTIONS[action](user=request.user, cycle_id=cycle_id)
    except (Conflict, ValidationFailed) as e:
        return _fail(request, e, back)
    messages.success(request, _("考核周期已更新：%(s)s。") % {"s": cycle.get_status_display()})
    return redirect(back)


# ================================================================ open a cycle

def _last_month(today: dt.date) -> dt.date:
    return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def _cycle_form_initial(user) -> dict:
    today = timezone.localdate()
    nodes = _manage_nodes(user)
    return {"kind": CycleKind.MONTHLY, "period_start": _last_month(today).isoformat(),
            "node_id": str(nodes[0].pk) if nodes else "", "grading_mode": GradingMode.BANDS,
            "bonus_mode": BonusMode.NONE, "last_place_cycles": "2",
            "grades": [{"grade": g, "min": m, "percent": p, "multiplier": x} for g, m, p, x in DEFAULT_GRADING]}


def _manage_nodes(user) -> list[Node]:
    ids = principal(user).node_ids_for(Perm.APPRAISAL_MANAGE)
    qs = Node.objects.filter(active=True).order_by("path")
    if ids is not None:
        qs = qs.filter(pk__in=sorted(ids))
    nodes = list(qs.only("id", "name", "kind", "path"))
    top = min((n.path.count("/") for n in nodes), default=0)
    for n in nodes:
        n.indent = "\u3000" * (n.path.count("/") - top)
    return nodes


def cycle_input(post) -> tuple[dict, dict]:
    """The service's arguments from the cycle form, and the form's values to show again."""
    mode, bonus_mode = post.get("grading_mode", ""), post.get("bonus_mode", "")
    grades, grading, multipliers = [], [], {}
    for i in range(GRADE_ROWS):
        row = {k: post.get(f"grade-{i}-{k}", "").strip() for k in ("grade", "min", "percent", "multiplier")}
        grades.append(row)
        if not row["grade"] and not row["min"] and not row["percent"]:
            continue
        key = "min" if mode == GradingMode.BANDS else "percent"
        grading.append({"grade": row["grade"], key: row[key]})
        if bonus_mode == BonusMode.MULTIPLIER and row["grade"]:
            multipliers[row["grade"]] = row["multiplier"]
    bonus: dict = {}
    if bonus_mode == BonusMode.POOL:
        bonus = {"pool": post.get("pool", "").strip()}
    elif bonus_mode == BonusMode.MULTIPLIER:
        bonus = {"base": post.get("base", "").strip(), "multipliers": multipliers}
    deadlines = {s.value: post.get(f"deadline-{s.value}", "").strip() for s in STEP_ORDER}
    lpc = post.get("last_place_cycles", "").strip()
    args = {"kind": post.get("kind", ""), "period_start": post.get("period_start", "").strip(),
            "node_id": post.get("node_id", ""), "grading_mode": mode, "grading": grading,
            "bonus_mode": bonus_mode, "bonus": bonus, "deadlines": {k: v for k, v in deadlines.items() if v},
            "last_place_cycles": int(lpc) if lpc.isdigit() and len(lpc) < 4 else lpc}
    form = {**{k: post.get(k, "") for k in ("kind", "period_start", "node_id", "grading_mode", "bonus_mode", "pool",
                                            "base", "last_place_cycles")},
            "grades": grades, "deadlines": deadlines}
    return args, form


def _grade_row_errors(errors: dict) -> list[list[str]]:
    """The grading table's errors per row (``grading[i].…`` of the posted rows, in order)."""
    out: list[list[str]] = [[] for _i in range(GRADE_ROWS)]
    for k, msgs in errors.items():
        m = re.match(r"^grading\[(\d+)\]", k)
        if m and int(m.group(1)) < GRADE_ROWS:
            out[int(m.group(1))] += msgs
    return out


@require_http_methods(["GET", "POST"])
@require_perm(Perm.APPRAISAL_MANAGE)
def cycle_new(request):
    user = request.user
    errors, status = {}, 200
    if request.method == "POST":
        args, form = cycle_input(request.POST)
        try:
            cycle = services.cycle_open(user=user, **args)
        except ValidationFailed as e:
            errors, status = _errors(e), 400
        else:
            messages.success(request, _("已开启考核周期。"))
            return redirect("staff:appraisal_board", cycle_id=cycle.pk)
    else:
        form = _cycle_form_initial(user)
        form["deadlines"] = {}
    # the posted rows, numbered as the service numbers them (blank rows skipped)
    posted = [i for i, r in enumerate(form["grades"]) if r["grade"] or r["min"] or r["percent"]]
    row_errors = [[] for _i in range(GRADE_ROWS)]
    for n, msgs in enumerate(_grade_row_errors(errors)):
        if n < len(posted):
            row_errors[posted[n]] = msgs
    bonus_errors = [m for k, msgs in errors.items() if k.startswith("bonus") for m in msgs]
    return render(request, "staff/appraisal_cycle_new.html", {
        "form": form, "errors": errors, "grade_rows": list(zip(form["grades"], row_errors, strict=True)),
        "bonus_errors": bonus_errors, "kinds": CycleKind.choices, "modes": GradingMode.choices,
        "bonus_modes": BonusMode.choices,
        "deadline_rows": [{"step": s.value, "label": s.label, "value": form["deadlines"].get(s.value, ""),
                           "errors": errors.get(f"deadlines.{s.value}", [])} for s in STEP_ORDER],
        "nodes": _manage_nodes(user)}, status=status)


# ================================================================ a sheet

@require_http_methods(["GET", "POST"])
@require_perm(SIGNED_IN)
def sheet_page(request, sheet_id: int):
    user = request.user
    sheet = reads.sheet_get(user, sheet_id)
    back = reverse("staff:appraisal_sheet", args=[sheet.pk])
    errors, cal_errors, plan_errors, status, form = {}, {}, {}, 200, {}
    if request.method == "POST":
        what = request.POST.get("what", "review")
        try:
            if what == "calibrate":
                try:
                    services.calibrate(user=user, sheet_id=sheet.pk, adjustment=request.POST.get("adjustment", ""),
                                       comment=request.POST.get("comment", ""))
                except ValidationFailed as e:
                    cal_errors = _errors(e)
                msg = _("已保存校准。")
            elif what == "plan":
                plan_errors, msg = _plan_update(request, sheet)
            else:
                errors, msg = _submit_review(request, sheet)
        except DomainError as e:
            return _fail(request, e, back)
        if not (errors or cal_errors or plan_errors):
            messages.success(request, msg)
            return redirect(back)
        status, form = 400, request.POST
        sheet = reads.sheet_get(user, sheet_id)
    ctx = sheet_context(user, sheet)
    live = sheet.cycle.status in services.LIVE
    step = sheet.step
    if live and step != Step.CALIBRATION and services.may_review(user, sheet, step):
        ctx["review_step"] = {"step": step, "label": Step(step).label,
                              "deadline": (sheet.cycle.deadlines or {}).get(step, "")}
        ctx["review_items"] = _manual_items(sheet, step, form, errors)
    if live and step == Step.CALIBRATION and services.may_review(user, sheet, Step.CALIBRATION):
        done = next((r for r in ctx["reviews"] if r.step == Step.CALIBRATION), None)
        ctx["calibration"] = {"adjustment": _g(done.adjustment, "0") if done else "0",
                              "comment": done.comment if done else ""}
        ctx["base_total"] = scoring.total((s.score, s.item.weight) for s in ctx["scores"])
    plan = ctx.get("plan")
    ctx["may_plan"] = plan is not None and not ctx["own"] and holds_at(user, Perm.APPRAISAL_REVIEW, sheet.node_id)
    if ctx["may_plan"]:  # the goals to edit, and a blank one to add
        ctx["plan_goals"] = [*plan.goals, {"text": "", "measure": "", "due": ""}]
    ctx.update(errors=errors, cal_errors=cal_errors, plan_errors=plan_errors, form=form,
               plan_statuses=PlanStatus.choices, may_board=principal(user).can(Perm.APPRAISAL_REVIEW))
    return render(request, "staff/appraisal_sheet.html", ctx, status=status)


def _plan_update(request, sheet) -> tuple[dict, str]:
    plan = sheet.plan if _has_plan(sheet) else None
    if plan is None:
        raise Http404
    p = request.POST
    goals = None
    texts = p.getlist("goal-text")
    if texts:
        goals = [{"text": t, "measure": m, "due": d or None}
                 for t, m, d in zip(texts, p.getlist("goal-measure"), p.getlist("goal-due"), strict=False)
                 if t.strip() or m.strip()]
    try:
        services.plan_update(user=request.user, plan_id=plan.pk, goals=goals, status=p.get("status") or None,
                             follow_up=p.get("follow_up") if p.get("follow_up", "").strip() else None)
    except ValidationFailed as e:
        return _errors(e), ""
    return {}, _("已更新改进计划。")


# ================================================================ export

@require_GET
@require_perm(Perm.APPRAISAL_REVIEW, Perm.APPRAISAL_MANAGE)
def cycle_export(request, cycle_id: int):
    user = request.user
    cycle = reads.cycle_get(user, cycle_id)
    nodes = board_nodes(user, cycle)
    node = None
    if request.GET.get("node"):
        nid = _int(request.GET["node"])
        node = next((n for n in nodes if n.pk == nid), None)
        if node is None:
            raise Http404
    content = excel.cycle_workbook(user, cycle, node)
    return xlsx_response(content, excel.filename(cycle, node))


def xlsx_response(content: bytes, filename: str) -> HttpResponse:
    resp = HttpResponse(content, content_type=XLSX)
    resp["Content-Disposition"] = f"attachment; filename=\"appraisal.xlsx\"; filename*=UTF-8''{quote(filename)}"
    resp["Cache-Control"] = "private, no-store"
    return resp


# ================================================================ schemes

@require_GET
@require_perm(Perm.APPRAISAL_REVIEW, Perm.APPRAISAL_MANAGE)
def scheme_list(request):
    today = timezone.localdate()
    schemes = list(Scheme.objects.order_by("role").prefetch_related(
        Prefetch("versions", queryset=SchemeVersion.objects.select_related("created_by").order_by("-valid_from")
                 .prefetch_related(Prefetch("items", queryset=SchemeItem.objects.order_by("position", "id"))))))
    rows = []
    for s in schemes:
        versions = list(s.versions.all())
        in_force = next((v for v in versions if v.valid_from <= today), None)
        rows.append({"scheme": s, "role_label": _role_label(s.role), "versions": [
            {"v": v, "in_force": v is in_force, "future": v.valid_from > today,
             "items": [{"i": i, "source": source_label(i), "rule": rule_text(i)} for i in v.items.all()],
             "weights": sum(i.weight for i in v.items.all())} for v in versions]})
    return render(request, "staff/appraisal_schemes.html", {
        "schemes": rows, "may_edit": _may_edit_schemes(request.user),
        "missing": [(r.value, r.label) for r in services.ROLE_PRIORITY if r.value not in {s.role for s in schemes}]})


def _role_label(role: str) -> str:
    return str(Role(role).label) if role in Role.values else role


def _may_edit_schemes(user) -> bool:
    p = principal(user)
    return p.can(Perm.APPRAISAL_MANAGE) and p.node_ids_for(Perm.APPRAISAL_MANAGE) is None


ITEM_FIELDS = ("code", "label", "group", "kind", "source", "step", "weight", "rule", "floor", "target", "bands",
               "base", "per_event", "cap")
BAND_LINE = re.compile(r"^\s*([^~～:：\s]*)\s*[~～]\s*([^~～:：\s]*)\s*[:：]\s*(\S+)\s*$")


def _number(raw: str):
    """A form's number as int / float (the service checks it); text that is no number stays text."""
    raw = raw.strip()
    if raw == "":
        return None
    try:
        d = Decimal(raw)
    except ArithmeticError:
        return raw
    if not d.is_finite():
        return raw
    return int(d) if d == d.to_integral_value() and abs(d) < 10**15 else float(d)


def bands_parse(text: str) -> list[dict] | None:
    """``from~to:score`` per line (an open end left empty) → [{from, to, score}]; None if malformed."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = BAND_LINE.match(line)
        if not m:
            return None
        out.append({"from": _number(m.group(1)), "to": _number(m.group(2)), "score": _number(m.group(3))})
    return out


def bands_text(params) -> str:
    if not isinstance(params, list):
        return ""
    return "\n".join(f"{_g(b.get('from'), '')}~{_g(b.get('to'), '')}:{_g(b.get('score'), '')}" for b in params
                     if isinstance(b, dict))


def item_params(row: dict):
    """A form row's rule parameters in the shape of the rule (the service checks them)."""
    rule = row["rule"]
    if rule == Rule.LINEAR:
        return {"floor": _number(row["floor"]), "target": _number(row["target"])}
    if rule == Rule.BANDS:
        parsed = bands_parse(row["bands"])
        return parsed if parsed is not None else row["bands"]
    if rule == Rule.POINTS:
        out = {"base": _number(row["base"]) or 0, "per_event": _number(row["per_event"])}
        cap = _number(row["cap"])
        if cap is not None:
            out["cap"] = cap
        return out
    return {}


def scheme_input(post) -> tuple[list[dict], list[dict]]:
    """The items of the scheme form (blank rows skipped), and every row to show again (with its
    index among the items, or None for a blank row)."""
    try:
        n = min(int(post.get("rows", "0")), MAX_ITEM_ROWS)
    except ValueError:
        n = 0
    items, rows = [], []
    for i in range(n):
        row = {k: post.get(f"items-{i}-{k}", "").strip() for k in ITEM_FIELDS}
        blank = not any(row[k] for k in ("code", "label", "weight", "source", "floor", "target", "bands",
                                         "per_event"))
        row["index"] = None if blank else len(items)
        rows.append(row)
        if blank:
            continue
        auto = row["kind"] == ItemKind.AUTO
        items.append({"code": row["code"], "label": row["label"], "group": row["group"], "kind": row["kind"],
                      "source": row["source"] if auto else "", "step": "" if auto else row["step"],
                      "weight": row["weight"], "rule": row["rule"], "params": item_params(row)})
    return items, rows


def _rows_of(version) -> list[dict]:
    rows = []
    for i in version.items.order_by("position", "id") if version else []:
        p = i.params if isinstance(i.params, dict) else {}
        rows.append({"code": i.code, "label": i.label, "group": i.group, "kind": i.kind, "source": i.source,
                     "step": i.step, "weight": _g(i.weight, ""), "rule": i.rule,
                     "floor": _g(p.get("floor"), ""), "target": _g(p.get("target"), ""),
                     "bands": bands_text(i.params), "base": _g(p.get("base"), ""),
                     "per_event": _g(p.get("per_event"), ""), "cap": _g(p.get("cap"), "")})
    return rows


def _blank_row() -> dict:
    return {k: "" for k in ITEM_FIELDS} | {"kind": ItemKind.AUTO, "rule": Rule.LINEAR, "group": Group.EFFICIENCY}


@require_http_methods(["GET", "POST"])
@require_perm(Perm.APPRAISAL_MANAGE)
def scheme_new(request):
    user = request.user
    role = request.POST.get("role") or request.GET.get("role") or services.ROLE_PRIORITY[0].value
    if role not in Role.values:
        role = services.ROLE_PRIORITY[0].value
    errors, status = {}, 200
    if request.method == "POST":
        items, rows = scheme_input(request.POST)
        form = {"role": role, "valid_from": request.POST.get("valid_from", "").strip(),
                "note": request.POST.get("note", "")}
        try:
            version = services.scheme_version_create(user=user, role=role, valid_from=form["valid_from"],
                                                     items=items, note=form["note"])
        except ValidationFailed as e:
            errors, status = _errors(e), 400
        else:
            messages.success(request, _("已保存方案新版本 v%(n)s，自 %(d)s 起生效。")
                             % {"n": version.number, "d": version.valid_from})
            return redirect(f"{reverse('staff:appraisal_schemes')}#scheme-{role}")
    else:
        latest = (SchemeVersion.objects.filter(scheme__role=role).order_by("-valid_from").first())
        rows = _rows_of(latest)
        for n, r in enumerate(rows):
            r["index"] = n
        form = {"role": role, "valid_from": _next_valid_from().isoformat(), "note": ""}
    rows = rows + [dict(_blank_row(), index=None) for _i in range(EXTRA_ITEM_ROWS if not errors else 0)]
    for r in rows:
        prefix = f"items[{r['index']}]" if r["index"] is not None else None
        r["errors"] = {} if prefix is None else {
            k[len(prefix) + 1:] if k.startswith(prefix + ".") else "row": v for k, v in errors.items()
            if k == prefix or k.startswith(prefix + ".")}
    general = {k: v for k, v in errors.items() if not k.startswith("items[")}
    return render(request, "staff/appraisal_scheme_new.html", {
        "form": form, "rows": rows, "errors": general, "has_errors": bool(errors),
        "roles": _role_choices(), "groups": Group.choices, "kinds": ItemKind.choices, "rules": Rule.choices,
        "sources": [(k, str(v)) for k, v in services.AUTO_SOURCES.items()],
        "review_steps": [(s.value, s.label) for s in services.REVIEW_STEPS],
        "may_edit": _may_edit_schemes(user), "weight_sum": _weight_sum(rows),
        "blank_row": dict(_blank_row(), index=None, errors={})}, status=status)


def _weight_sum(rows) -> str:
    total = Decimal(0)
    for r in rows:
        try:
            total += Decimal(r["weight"]) if r["weight"] else 0
        except ArithmeticError:
            pass
    return _g(total, "0")


def _next_valid_from() -> dt.date:
    """The first day after the latest cycle's start (a version applies from the next cycle)."""
    from .models import Cycle

    today = timezone.localdate()
    latest = Cycle.objects.order_by("-period_start").values_list("period_start", flat=True).first()
    first = (today.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    if latest is not None and latest >= first:
        first = (latest.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first
