"""Pages of the improvement loop (``/quality/…``), thin over ``services`` and ``selectors_improve``.

- ``actions/``: improvement actions — the list (status, overdue, mine, node; keyset pages), the
  form to raise one (prefilled from the query string: ``source``, ``code``, ``node``, ``start``,
  ``end``, ``dim``, ``key``, ``complaint``, with the figure shown), and its page: the 5-why
  chain, the fault tree, notes, status buttons, the effect chart (before / after).
- ``surveys/``: the survey analysis of a node and a date range.
- ``norms/``: the service-norm checklist's items; the checklist form of an order (its panels).
- ``targets/``: every indicator's target at a node, own or inherited, to set or clear.
- ``sales/``: sales per outlet × month, units sold per model × month: grids and imports.

Every form redirects back with a message, or shows the page again with the field errors (4xx).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from urllib.parse import quote

from django.contrib import messages
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aftersales.catalog.models import Category
from aftersales.core.errors import DomainError, ValidationFailed
from aftersales.core.pagination import keyset_page
from aftersales.org.roles import Perm
from aftersales.org.scope import holds_at, principal
from aftersales.parts import excel
from aftersales.tickets.selectors import order_queryset
from aftersales.web.permissions import SIGNED_IN, require_perm

from . import indicators, selectors, services
from . import selectors_improve as reads
from .models import ActionSource, ActionStatus

PAGE_SIZE = 50
COMMENTS_PAGE = 20
ERRORS_SHOWN = 100
REPORT_DIR = "quality-import"
REPORT_TOKEN = re.compile(r"^[0-9a-f]{32}$")


# ================================================================ helpers

def _int(value) -> int | None:
    """A positive id from a query parameter; None when absent or malformed."""
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if 0 < n < 2**63 else None


def _date_param(value) -> dt.date | None:
    try:
        return dt.date.fromisoformat((value or "").strip())
    except ValueError:
        return None


def _node(request, key: str = "node"):
    """The node of the query (404 out of scope), else the user's top node in scope."""
    raw = request.GET.get(key) or request.POST.get(key)
    if raw not in (None, "") and _int(raw) is None:
        raise Http404
    return selectors.node_for(request.user, _int(raw))


def _errors(e: DomainError) -> dict[str, list[str]]:
    return {k: [str(m) for m in msgs] for k, msgs in e.errors.items()} or {"form": [str(e.message)]}


def _next(request, default: str) -> str:
    nxt = request.POST.get("next") or request.GET.get("next") or ""
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
        return nxt
    return default


def _query(request, drop=("cursor",)) -> str:
    params = request.GET.copy()
    for k in drop:
        params.pop(k, None)
    return params.urlencode()


def _page(qs, ordering, cursor, limit: int = PAGE_SIZE):
    try:
        return keyset_page(qs, ordering=ordering, cursor=cursor or None, limit=limit)
    except ValidationFailed:  # a stale or forged cursor: the first page
        return keyset_page(qs, ordering=ordering, cursor=None, limit=limit)


def _fail(request, e: DomainError, back: str, status: int | None = None) -> HttpResponse:
    return render(request, "web/form_error.html",
                  {"errors": [m for msgs in _errors(e).values() for m in msgs], "back": back},
                  status=status or e.status)


def _nodes(user):
    return list(selectors.visible_nodes(user).order_by("path").only("id", "name", "kind", "path"))


# ================================================================ actions

STATUS_CHOICES = ActionStatus.choices


@require_GET
@require_perm(SIGNED_IN)
def action_list(request):
    user = request.user
    status = request.GET.get("status") or ""
    if status not in ActionStatus.values:
        status = ""
    overdue, mine = request.GET.get("overdue") == "1", request.GET.get("mine") == "1"
    node = None
    if request.GET.get("node"):
        node = _node(request)
    today = timezone.localdate()
    qs = reads.action_list(user, status=status, overdue=overdue, mine=mine, node=node, today=today)
    page = _page(qs, reads.ACTION_ORDERING, request.GET.get("cursor"))
    base = reads.action_queryset(user)
    return render(request, "quality/actions.html", {
        "rows": [{"a": a, "overdue": reads.is_overdue(a, today), "owner": reads.person_label(a.owner),
                  "indicator": indicators.INDICATORS[a.indicator].label if a.indicator in indicators.INDICATORS
                  else ""} for a in page.items],
        "next_cursor": page.next_cursor, "query": _query(request), "statuses": STATUS_CHOICES,
        "status": status, "overdue": overdue, "mine": mine, "node": node,
        "nodes": _nodes(user) if principal(user).can(Perm.QUALITY_VIEW) else [],
        "n_overdue": base.filter(reads.overdue_q(today)).count(),
        "n_mine": base.filter(owner_id=user.pk, status__in=reads.OPEN_STATUSES).count(),
        "may_raise": principal(user).can(Perm.QUALITY_VIEW),
    })


def _tree_from_text(text: str) -> list[dict]:
    """The fault tree typed as indented lines (two spaces, a tab or "-" per level): one event per
    line, the parent being the nearest line above with less indentation."""
    out, stack = [], []  # stack of (depth, id)
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        raw = line.replace("\t", "  ").replace("\u3000", "  ")
        body = raw.lstrip(" -·•*")
        depth = len(raw) - len(body)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        nid = str(len(out) + 1)
        out.append({"id": nid, "parent": stack[-1][1] if stack else "", "text": body.strip()})
        stack.append((depth, nid))
    return out


def _tree_to_text(tree: list[dict]) -> str:
    children: dict[str, list[dict]] = {}
    for n in tree:
        children.setdefault(n.get("parent") or "", []).append(n)
    lines: list[str] = []

    def walk(parent: str, depth: int, seen: set):
        for n in children.get(parent, []):
            if n["id"] in seen:
                continue
            seen.add(n["id"])
            lines.append("  " * depth + n["text"])
            walk(n["id"], depth + 1, seen)

    walk("", 0, set())
    return "\n".join(lines)


def tree_nested(tree: list[dict]) -> list[dict]:
    """The fault tree as nested ``{"text", "children"}`` from its root."""
    children: dict[str, list[dict]] = {}
    for n in tree:
        children.setdefault(n.get("parent") or "", []).append(n)

    def build(parent: str, seen: set) -> list[dict]:
        out = []
        for n in children.get(parent, []):
            if n["id"] not in seen:
                seen.add(n["id"])
                out.append({"id": n["id"], "text": n["text"], "children": build(n["id"], seen)})
        return out

    return build("", set())


def _whys_from(post) -> list[str]:
    whys = [(post.get(f"why_{i}") or "").strip() for i in range(1, services.WHYS_MAX + 1)]
    while whys and not whys[-1]:
        whys.pop()
    return whys


def _figure(user, *, code: str, node, start, end, dim: str, key: str) -> dict | None:
    """The figure an action is raised from: its value over [start, end], target and status."""
    ind = indicators.INDICATORS.get(code)
    if ind is None or node is None or start is None or end is None or end < start:
        return None
    if dim and dim not in indicators.DIMS:
        return None
    whole = start.day == 1 and end == reads.month_end(end)
    cells = selectors.cells(nodes=[node], grain="month" if whole else "day", start=start, end=end, dim=dim,
                            keys=[key] if dim else None, by_period=False)
    m = cells.get((node.pk, None, key if dim else ""))
    value = selectors.values(m, [code])[code] if m is not None else None
    target, amber = selectors.target_for(code, node)
    return {"indicator": ind, "value": value, "target": target, "status": ind.status(value, target, amber),
            "start": start, "end": end, "dim": dim, "key": key, "dim_label": indicators.DIM_LABELS.get(dim, dim)}


def _raise_ctx(request, *, form: dict, errors: dict | None = None) -> dict:
    user = request.user
    node = None
    if form.get("node_id"):
        try:
            node = selectors.node_for(user, _int(form["node_id"]))
        except DomainError:
            node = None
    complaint = None
    if form.get("complaint_id") and _int(form["complaint_id"]):
        complaint = order_queryset(user).filter(pk=_int(form["complaint_id"])).select_related("node").first()
    start, end = _date_param(form.get("period_from")), _date_param(form.get("period_to"))
    figure = _figure(user, code=form.get("indicator", ""), node=node, start=start, end=end,
                     dim=form.get("dim", ""), key=form.get("key", "")) if node else None
    baseline = None
    if node is not None and form.get("indicator") in indicators.INDICATORS:
        baseline = services.baseline_of(form["indicator"], node, dim=form.get("dim", ""), key=form.get("key", ""),
                                        on=timezone.localdate())
    errors = errors or {}
    return {
        "form": form, "errors": errors, "node": node, "complaint": complaint, "figure": figure, "baseline": baseline,
        "baseline_window": reads.baseline_window(timezone.localdate()),
        "nodes": _nodes(user), "owners": reads.owner_candidates(node) if node is not None else [],
        "sources": ActionSource.choices, "indicator_choices": [(c, i.label) for c, i in indicators.INDICATORS.items()],
        "dims": [(d, indicators.DIM_LABELS[d]) for d in indicators.DIMS],
        "why_rows": [(i, form.get(f"why_{i}", "")) for i in range(1, services.WHYS_MAX + 1)],
        "why_errors": [m for k, msgs in errors.items() if k.startswith("whys") for m in msgs],
        "tree_errors": [m for k, msgs in errors.items() if k.startswith("fault_tree") for m in msgs],
        "today": timezone.localdate(),
    }


def _prefill(request) -> dict:
    g = request.GET
    user = request.user
    source = g.get("source") if g.get("source") in ActionSource.values else ActionSource.OTHER
    form = {"source": source, "indicator": g.get("code", ""), "node_id": g.get("node", ""), "dim": g.get("dim", ""),
            "key": g.get("key", ""), "period_from": g.get("start", ""), "period_to": g.get("end", ""),
            "complaint_id": g.get("complaint", ""), "title": "", "problem": "", "root_cause": "", "plan": "",
            "fault_tree": "", "owner_id": "", "due_on": (timezone.localdate() + dt.timedelta(days=30)).isoformat()}
    if not form["node_id"]:
        try:
            form["node_id"] = str(selectors.node_for(user).pk)
        except DomainError:
            pass
    ind = indicators.INDICATORS.get(form["indicator"])
    complaint = (order_queryset(user).filter(pk=_int(form["complaint_id"])).first()
                 if _int(form["complaint_id"]) else None)
    if complaint is not None:
        form["title"] = _("投诉 %(number)s 整改") % {"number": complaint.number}
        form["problem"] = complaint.problem
        form["node_id"] = form["node_id"] or str(complaint.node_id)
    elif ind is not None:
        form["title"] = _("%(label)s改进") % {"label": ind.label}
    return form


@require_http_methods(["GET", "POST"])
@require_perm(Perm.QUALITY_VIEW)
def action_new(request):
    if request.method == "GET":
        form = _prefill(request)
        ctx = _raise_ctx(request, form=form)
        if ctx["figure"] and not form["problem"]:
            f = ctx["figure"]
            form["problem"] = _("%(node)s %(start)s 至 %(end)s 的“%(label)s”为 %(value)s%(unit)s（目标 %(target)s）。") % {
                "node": ctx["node"].name, "start": f["start"], "end": f["end"], "label": f["indicator"].label,
                "value": "—" if f["value"] is None else f["value"], "unit": indicators.UNIT_SUFFIX.get(f["indicator"].unit, ""),
                "target": "—" if f["target"] is None else f["target"]}
        return render(request, "quality/actions_new.html", ctx)
    p = request.POST
    keys = ("source", "indicator", "node_id", "dim", "key", "period_from", "period_to", "complaint_id", "title",
            "problem", "root_cause", "plan", "fault_tree", "owner_id", "due_on")
    form = {k: p.get(k, "") for k in keys}
    form.update({f"why_{i}": p.get(f"why_{i}", "") for i in range(1, services.WHYS_MAX + 1)})
    try:
        a = services.action_raise(
            user=request.user, source=form["source"], indicator=form["indicator"], node_id=form["node_id"] or None,
            dim=form["dim"], key=form["key"], period_from=form["period_from"] or None,
            period_to=form["period_to"] or None, complaint_id=form["complaint_id"] or None, title=form["title"],
            problem=form["problem"], root_cause=form["root_cause"], plan=form["plan"], whys=_whys_from(p),
            fault_tree=_tree_from_text(form["fault_tree"]), owner_id=form["owner_id"] or None,
            due_on=form["due_on"] or None)
    except ValidationFailed as e:
        return render(request, "quality/actions_new.html", _raise_ctx(request, form=form, errors=_errors(e)),
                      status=400)
    messages.success(request, _("已发起改进措施 %(number)s。") % {"number": a.number})
    return redirect("quality:action_detail", a.pk)


@require_GET
@require_perm(Perm.QUALITY_VIEW)
def action_owners(request):
    """The owner choices of a node (the form's htmx reload when the node changes)."""
    node = _node(request, "node_id")
    return render(request, "quality/actions_owner_options.html",
                  {"owners": reads.owner_candidates(node), "selected": request.GET.get("owner_id", "")})


def _effect_chart(effect: dict) -> dict:
    months = [m["month"].strftime("%Y-%m") for m in effect["months"]]
    return {"categories": months, "values": [m["value"] for m in effect["months"]],
            "label": effect.get("label", ""), "unit": effect.get("unit", ""),
            "raised": effect["raised_month"].strftime("%Y-%m") if effect["raised_month"] else None,
            "done": effect["done_month"].strftime("%Y-%m") if effect["done_month"] else None,
            "baseline": effect["baseline"], "after": effect["after"],
            "names": {"raised": _("发起"), "done": _("完成"), "baseline": _("改进前基线"), "after": _("完成后")}}


def _detail_ctx(request, a, *, edit_errors=None, edit_form=None) -> dict:
    user = request.user
    today = timezone.localdate()
    effect = reads.action_effect(a, today=today) if a.indicator else None
    form = edit_form or {"title": a.title, "problem": a.problem, "root_cause": a.root_cause, "plan": a.plan,
                         "result_note": a.result_note, "due_on": a.due_on.isoformat(), "owner_id": str(a.owner_id),
                         "fault_tree": _tree_to_text(a.fault_tree),
                         **{f"why_{i}": (a.whys[i - 1] if i <= len(a.whys) else "")
                            for i in range(1, services.WHYS_MAX + 1)}}
    may_edit = services.may_edit(user, a) and a.status in services.EDITABLE
    edit_errors = edit_errors or {}
    return {
        "a": a, "overdue": reads.is_overdue(a, today), "owner": reads.person_label(a.owner),
        "creator": reads.person_label(a.created_by), "indicator": indicators.INDICATORS.get(a.indicator),
        "dim_label": indicators.DIM_LABELS.get(a.dim, a.dim), "tree": tree_nested(a.fault_tree),
        "notes": [{"n": n, "author": reads.person_label(n.author)} for n in reads.notes_of(a)],
        "moves": services.action_moves(user, a), "may_edit": may_edit,
        "may_note": a.status in services.EDITABLE and (services.may_edit(user, a) or a.created_by_id == user.pk),
        "may_reassign": holds_at(user, Perm.QUALITY_MANAGE, a.node_id),
        "owners": reads.owner_candidates(a.node) if may_edit else [],
        "effect": effect, "chart": _effect_chart(effect) if effect else None,
        "complaint_visible": a.complaint_id is not None
        and order_queryset(user).filter(pk=a.complaint_id).exists(),
        "form": form, "edit_errors": edit_errors,
        "why_rows": [(i, form.get(f"why_{i}", "")) for i in range(1, services.WHYS_MAX + 1)],
        "why_errors": [m for k, msgs in edit_errors.items() if k.startswith("whys") for m in msgs],
        "tree_errors": [m for k, msgs in edit_errors.items() if k.startswith("fault_tree") for m in msgs],
    }


@require_GET
@require_perm(SIGNED_IN)
def action_detail(request, action_id: int):
    a = reads.action_get(request.user, action_id)
    return render(request, "quality/actions_detail.html", _detail_ctx(request, a))


@require_POST
@require_perm(SIGNED_IN)
def action_edit(request, action_id: int):
    user = request.user
    a = reads.action_get(user, action_id)
    p = request.POST
    form = {k: p.get(k, "") for k in ("title", "problem", "root_cause", "plan", "result_note", "due_on", "owner_id",
                                      "fault_tree")}
    form.update({f"why_{i}": p.get(f"why_{i}", "") for i in range(1, services.WHYS_MAX + 1)})
    kwargs = dict(title=form["title"], problem=form["problem"], root_cause=form["root_cause"], plan=form["plan"],
                  result_note=form["result_note"], due_on=form["due_on"] or None, whys=_whys_from(p),
                  fault_tree=_tree_from_text(form["fault_tree"]))
    if form["owner_id"]:
        kwargs["owner_id"] = form["owner_id"]
    try:
        services.action_update(user=user, action_id=a.pk, **kwargs)
    except ValidationFailed as e:
        return render(request, "quality/actions_detail.html",
                      _detail_ctx(request, a, edit_errors=_errors(e), edit_form=form), status=400)
    except DomainError as e:
        return _fail(request, e, reverse("quality:action_detail", args=[a.pk]))
    messages.success(request, _("已保存。"))
    return redirect("quality:action_detail", a.pk)


@require_POST
@require_perm(SIGNED_IN)
def action_note_view(request, action_id: int):
    a = reads.action_get(request.user, action_id)
    try:
        services.action_note(user=request.user, action_id=a.pk, text=request.POST.get("text", ""))
    except DomainError as e:
        return _fail(request, e, reverse("quality:action_detail", args=[a.pk]))
    messages.success(request, _("已记录进展。"))
    return redirect("quality:action_detail", a.pk)


@require_POST
@require_perm(SIGNED_IN)
def action_move_view(request, action_id: int, move: str):
    a = reads.action_get(request.user, action_id)
    if move not in services.ACTION_MOVES:
        raise Http404
    try:
        a = services.action_move(user=request.user, action_id=a.pk, move=move, note=request.POST.get("note", ""))
    except DomainError as e:
        return _fail(request, e, reverse("quality:action_detail", args=[a.pk]))
    messages.success(request, _("改进措施 %(number)s 现为“%(status)s”。") % {
        "number": a.number, "status": a.get_status_display()})
    return redirect("quality:action_detail", a.pk)


# ================================================================ survey analysis

def _range(request, *, default_months: int = 3) -> tuple[dt.date, dt.date, str | None]:
    today = timezone.localdate()
    start, end = _date_param(request.GET.get("start")), _date_param(request.GET.get("end"))
    error = None
    if (request.GET.get("start") and start is None) or (request.GET.get("end") and end is None):
        error = _("日期格式不正确，应为 YYYY-MM-DD。")
    end = end or today
    start = start or reads.add_months(today, -(default_months - 1))
    if end < start:
        error, start = _("截止日期不能早于开始日期。"), reads.add_months(end, -(default_months - 1))
    if (end - start).days > 366 * 3:
        error, start = _("日期范围最长三年。"), end - dt.timedelta(days=366 * 3)
    return start, end, error


SCORE_COLOURS = ["#b91c1c", "#f97316", "#eab308", "#84cc16", "#15803d"]


@require_GET
@require_perm(Perm.QUALITY_VIEW)
def surveys(request):
    node = _node(request)
    start, end, error = _range(request)
    analysis = reads.survey_analysis(node, start, end)
    low_only = request.GET.get("low") == "1"
    comments = _page(reads.survey_comments(node, start, end, low_only=low_only), reads.COMMENT_ORDERING,
                     request.GET.get("cursor"), COMMENTS_PAGE)
    chart = {"categories": [str(d["label"]) for d in analysis.dims],
             "series": [{"name": _("%(n)s 分") % {"n": s}, "colour": SCORE_COLOURS[s - 1],
                         "data": [d["dist"][s - 1] for d in analysis.dims]} for s in range(1, 6)]}
    raise_base = {"source": ActionSource.SURVEY, "node": node.pk, "start": start.isoformat(), "end": end.isoformat()}
    for d in analysis.dims:
        d["raise_url"] = reverse("quality:action_new") + "?" + urlencode({**raise_base, "code": d["indicator"]})
    return render(request, "quality/surveys.html", {
        "node": node, "nodes": _nodes(request.user), "start": start, "end": end, "error": error, "a": analysis,
        "chart": chart, "comments": comments.items, "next_cursor": comments.next_cursor,
        "query": _query(request), "low_only": low_only, "min_answers": reads.RANK_MIN_ANSWERS,
        "low_score": reads.LOW_SCORE,
    })


# ================================================================ the service-norm checklist

def _may_manage_norms(user) -> bool:
    p = principal(user)
    return p.can(Perm.QUALITY_MANAGE) and p.node_ids_for(Perm.QUALITY_MANAGE) is None


@require_http_methods(["GET", "POST"])
@require_perm(Perm.QUALITY_VIEW)
def norms(request):
    user = request.user
    errors, form, status = {}, {}, 200
    if request.method == "POST":
        p = request.POST
        form = {k: p.get(k, "") for k in ("item_id", "code", "text", "text_en", "position")}
        try:
            item = services.norm_item_save(user=user, item_id=form["item_id"] or None, code=form["code"],
                                           text=form["text"], text_en=form["text_en"],
                                           position=form["position"] or None, active=p.get("active") == "1")
        except DomainError as e:
            errors, status = _errors(e), e.status
        else:
            messages.success(request, _("已保存检查项 %(code)s。") % {"code": item.code})
            return redirect("quality:norms")
    return render(request, "quality/norms.html", {
        "items": reads.norm_items(active_only=False), "may_manage": _may_manage_norms(user), "errors": errors,
        "form": form}, status=status)


@require_POST
@require_perm(Perm.ORDER_WORK, Perm.ORDER_HANDLE)
def norm_check(request, order_id: int):
    """The checklist form of the panels: ``item_<code>`` = "1" (met) or "0" (not met)."""
    p = request.POST
    answers = {}
    for key in p:
        if key.startswith("item_"):
            answers[key[5:]] = {"1": True, "0": False}.get(p.get(key))
    answers = {k: v for k, v in answers.items() if v is not None}
    default = _order_url(request, order_id)
    try:
        check = services.norm_check_answer(user=request.user, order_id=order_id, answers=answers,
                                           note=p.get("note", ""))
    except DomainError as e:
        if e.status == 404:
            raise Http404 from e
        return _fail(request, e, _next(request, default))
    messages.success(request, _("服务规范检查已保存：%(met)s/%(items)s 项达标。") % {"met": check.met,
                                                                                  "items": check.items})
    return redirect(_next(request, default))


def _order_url(request, order_id: int) -> str:
    tech = principal(request.user).can(Perm.ORDER_WORK) and not principal(request.user).can(Perm.ORDER_VIEW)
    return reverse("web:tech_job" if tech else "web:order_detail", args=[order_id])


# ================================================================ targets

@require_http_methods(["GET", "POST"])
@require_perm(Perm.QUALITY_VIEW)
def targets(request):
    user = request.user
    node = _node(request)
    errors, status, failed = {}, 200, ""
    if request.method == "POST":
        p = request.POST
        code = p.get("indicator", "")
        try:
            if p.get("action") == "clear":
                services.target_clear(user=user, node_id=node.pk, indicator=code)
                messages.success(request, _("已清除本节点的目标，改用上级或默认目标。"))
            else:
                services.target_set(user=user, node_id=node.pk, indicator=code, target=p.get("target", ""),
                                    amber=p.get("amber") or None)
                messages.success(request, _("已保存目标。"))
        except ValidationFailed as e:
            errors, status, failed = _errors(e), 400, code
        except DomainError as e:
            return _fail(request, e, f"{reverse('quality:targets')}?node={node.pk}")
        else:
            return redirect(f"{reverse('quality:targets')}?node={node.pk}#t-{code}")
    rows = reads.target_rows(node)
    groups: dict[str, list] = {}
    for r in rows:
        groups.setdefault(str(r["group"]), []).append(r)
    return render(request, "quality/targets.html", {
        "node": node, "nodes": _nodes(user), "groups": groups,
        "may_manage": holds_at(user, Perm.QUALITY_MANAGE, node.pk), "errors": errors, "failed": failed,
        "form": request.POST if failed else {}}, status=status)


# ================================================================ sales

def _year(request) -> int:
    try:
        y = int(request.GET.get("year") or request.POST.get("year") or 0)
    except ValueError:
        y = 0
    today = timezone.localdate()
    return y if 2000 <= y <= today.year else today.year


def _keep_report(user, content: bytes) -> str:
    token = secrets.token_hex(16)
    default_storage.save(f"{REPORT_DIR}/{user.pk}/{token}.xlsx", ContentFile(content))
    return token


def _xlsx(content: bytes, filename: str) -> HttpResponse:
    resp = HttpResponse(content, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    resp["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    resp["Cache-Control"] = "private, no-store"
    return resp


def _import_result(request, kind: str):
    """Run an uploaded import; (result, report token, errors)."""
    upload = request.FILES.get("file")
    if upload is None:
        return None, None, [_("请选择要导入的文件。")]
    content = upload.read(excel.tabular.MAX_BYTES + 1)
    try:
        if kind == "sales":
            result = services.sales_import(user=request.user, content=content)
        else:
            result = services.model_sales_import(user=request.user, content=content)
    except DomainError as e:
        return None, None, [m for msgs in _errors(e).values() for m in msgs]
    return result, (_keep_report(request.user, result.report) if result.report else None), []


@require_http_methods(["GET", "POST"])
@require_perm(Perm.QUALITY_VIEW)
def sales(request):
    user = request.user
    node = _node(request)
    year = _year(request)
    cell_errors: dict[str, list[str]] = {}
    import_errors, result, token, status = [], None, None, 200
    posted: dict[str, str] = {}
    if request.method == "POST" and request.POST.get("action") == "import":
        result, token, import_errors = _import_result(request, "sales")
        status = 400 if import_errors else 200
    elif request.method == "POST":
        entries, where = [], []
        for k, v in request.POST.items():
            m = re.match(r"^c_(\d+)_(\d{1,2})$", k)
            if m and holds_at(user, Perm.QUALITY_MANAGE, int(m[1])):
                posted[k] = v
                entries.append({"node_id": int(m[1]), "month": f"{year}-{int(m[2]):02d}", "amount": v})
                where.append(k)
        try:
            r = services.sales_set_many(user=user, entries=entries)
        except ValidationFailed as e:
            status = 400
            for k, msgs in e.errors.items():
                m = re.match(r"^entries\[(\d+)\]", k)
                cell = where[int(m[1])] if m else "__all__"
                cell_errors.setdefault(cell, []).extend(str(x) for x in msgs)
        except DomainError as e:
            return _fail(request, e, f"{reverse('quality:sales')}?node={node.pk}&year={year}")
        else:
            messages.success(request, _("已保存：新增 %(c)s，修改 %(u)s，清除 %(x)s。") % {
                "c": r.created, "u": r.updated, "x": r.cleared})
            return redirect(f"{reverse('quality:sales')}?node={node.pk}&year={year}")
    grid = reads.sales_grid(node, year)
    for row in grid["rows"]:
        o = row["node"]
        row["editable"] = holds_at(user, Perm.QUALITY_MANAGE, o.pk)
        row["inputs"] = []
        for i, v in enumerate(row["cells"], start=1):
            name = f"c_{o.pk}_{i}"
            row["inputs"].append({"name": name, "value": posted.get(name, "" if v is None else v),
                                  "errors": cell_errors.get(name, [])})
    return render(request, "quality/sales.html", {
        "node": node, "nodes": _nodes(user), "year": year,
        "years": list(range(timezone.localdate().year, 1999, -1))[:10], "grid": grid,
        "may_edit": any(r["editable"] for r in grid["rows"]), "grid_errors": cell_errors.get("__all__", []),
        "may_import": principal(user).can(Perm.QUALITY_MANAGE), "result": result, "report_token": token,
        "failures": result.failures[:ERRORS_SHOWN] if result else [], "import_errors": import_errors,
        "errors_shown": ERRORS_SHOWN, "import_kind": "sales"}, status=status)


@require_http_methods(["GET", "POST"])
@require_perm(Perm.QUALITY_VIEW)
def model_sales(request):
    user = request.user
    year = _year(request)
    category_id = _int(request.GET.get("category") or request.POST.get("category"))
    may_edit = _may_manage_norms(user)
    cell_errors: dict[str, list[str]] = {}
    import_errors, result, token, status = [], None, None, 200
    posted: dict[str, str] = {}
    back = f"{reverse('quality:model_sales')}?year={year}" + (f"&category={category_id}" if category_id else "")
    if request.method == "POST" and request.POST.get("action") == "import":
        result, token, import_errors = _import_result(request, "model_sales")
        status = 400 if import_errors else 200
    elif request.method == "POST":
        entries, where = [], []
        for k, v in request.POST.items():
            m = re.match(r"^c_(\d+)_(\d{1,2})$", k)
            if m:
                posted[k] = v
                entries.append({"model_id": int(m[1]), "month": f"{year}-{int(m[2]):02d}", "units": v})
                where.append(k)
        try:
            r = services.model_sales_set_many(user=user, entries=entries)
        except ValidationFailed as e:
            status = 400
            for k, msgs in e.errors.items():
                m = re.match(r"^entries\[(\d+)\]", k)
                cell = where[int(m[1])] if m else "__all__"
                cell_errors.setdefault(cell, []).extend(str(x) for x in msgs)
        except DomainError as e:
            return _fail(request, e, back)
        else:
            messages.success(request, _("已保存：新增 %(c)s，修改 %(u)s，清除 %(x)s。") % {
                "c": r.created, "u": r.updated, "x": r.cleared})
            return redirect(back)
    grid = reads.model_sales_grid(year, category_id=category_id)
    for row in grid["rows"]:
        m = row["model"]
        row["inputs"] = []
        for i, v in enumerate(row["cells"], start=1):
            name = f"c_{m.pk}_{i}"
            row["inputs"].append({"name": name, "value": posted.get(name, "" if v is None else v),
                                  "errors": cell_errors.get(name, [])})
    return render(request, "quality/sales_models.html", {
        "year": year, "years": list(range(timezone.localdate().year, 1999, -1))[:10], "grid": grid,
        "categories": Category.objects.order_by("code").only("id", "code", "name"), "category_id": category_id,
        "may_edit": may_edit, "grid_errors": cell_errors.get("__all__", []), "may_import": may_edit,
        "result": result, "report_token": token, "failures": result.failures[:ERRORS_SHOWN] if result else [],
        "import_errors": import_errors, "errors_shown": ERRORS_SHOWN, "import_kind": "model_sales"}, status=status)


@require_GET
@require_perm(Perm.QUALITY_MANAGE)
def sales_template(request, kind: str):
    k = services.IMPORT_KINDS.get(kind)
    if k is None:
        raise Http404
    return _xlsx(excel.template_xlsx(k), f"{k.title}导入模板.xlsx")


@require_GET
@require_perm(Perm.QUALITY_MANAGE)
def sales_report(request, token: str):
    """An import's error report, to the user who made the import only."""
    path = f"{REPORT_DIR}/{request.user.pk}/{token}.xlsx"
    if not REPORT_TOKEN.match(token) or not default_storage.exists(path):
        raise Http404
    with default_storage.open(path, "rb") as fh:
        content = fh.read()
    return _xlsx(content, f"销售数据导入错误报告-{token[:8]}.xlsx")

