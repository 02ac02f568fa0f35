"""Pages of the loaner pool and the tool register.

- ``loaners`` (``/assets/loaners/``): per outlet, the pool's loaners by state (an ECharts bar
  chart and its table), the overdue loans, the loans out, the repair orders that qualify for a
  loaner with a "lend" form each, and (managers) adding a loaner and the outlet's rule.
- ``tools`` (``/assets/tools/``): the register, overdue rows highlighted, filters (overdue,
  due within 7 days, state, kind, outlet, mine), registering a tool; ``tool`` (``/assets/tools/<id>/``):
  one tool with its calibration history and the forms to record a calibration, hand it to
  someone or take it back, change its state.

Writes are plain forms posted to this app's views; each comes back to the ``next`` page (the
order page for the panels' forms) with a message saying what was done or what was wrong.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from aftersales.catalog.models import Category
from aftersales.core.errors import Conflict, ValidationFailed
from aftersales.core.pagination import keyset_page
from aftersales.org.models import Employee, Node
from aftersales.org.roles import Perm
from aftersales.org.scope import holds_at, principal, scoped
from aftersales.web.permissions import require_perm

from . import selectors, services
from .models import (
    Calibration,
    CalibrationResult,
    CheckKind,
    Loaner,
    LoanerState,
    LoanReason,
    ReturnCondition,
    ToolKind,
    ToolState,
)

PAGE_SIZE = 50
STATE_COLOURS = {"available": "#16a34a", "lent": "#2563eb", "maintenance": "#d97706", "retired": "#9ca3af"}


# ---------------------------------------------------------------- helpers

def _int(v) -> int | None:
    v = (v or "").strip() if isinstance(v, str) else v
    if isinstance(v, str) and v.isdigit() and len(v) < 19:
        return int(v)
    return None


def _next_url(request, fallback: str) -> str:
    nxt = request.POST.get("next") or request.GET.get("next") or ""
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
        return nxt
    return fallback


def _errors_text(e: ValidationFailed) -> str:
    msgs = [str(m) for ms in e.errors.values() for m in ms]
    return f"{e.message}：{'；'.join(msgs)}" if msgs else str(e.message)


def _write(request, back: str, fn, done: str):
    """Run a service; a message saying what happened; back to ``back``. Bad input and
    conflicts are messages too (the page shows them); out of scope is 404 (``require_perm``)."""
    try:
        fn()
    except ValidationFailed as e:
        messages.error(request, _errors_text(e))
    except Conflict as e:
        messages.error(request, str(e.message))
    else:
        messages.success(request, done)
    return redirect(back)


def _page(qs, ordering, cursor):
    try:
        return keyset_page(qs, ordering=ordering, cursor=cursor or None, limit=PAGE_SIZE)
    except ValidationFailed:  # a stale or forged cursor: the first page
        return keyset_page(qs, ordering=ordering, cursor=None, limit=PAGE_SIZE)


def _manage_nodes(user) -> list[Node]:
    """The nodes where ``user`` manages assets (the forms' node pickers)."""
    ids = principal(user).node_ids_for(Perm.ASSET_MANAGE)
    qs = Node.objects.filter(active=True)
    if ids is not None:
        qs = qs.filter(pk__in=sorted(ids))
    return list(qs.order_by("path"))


# ================================================================ loaners

def _chart(rows) -> dict:
    return {"categories": [r.node_name for r in rows],
            "series": [{"name": str(label), "state": s, "colour": STATE_COLOURS[s],
                        "data": [r.counts.get(s, 0) for r in rows]} for s, label in LoanerState.choices]}


@require_GET
@require_perm(Perm.ASSET_VIEW)
def loaners(request):
    user = request.user
    today = timezone.localdate()
    outlets = list(selectors.outlets_in_scope(user))
    node_id = _int(request.GET.get("node"))
    if node_id not in {o.pk for o in outlets}:
        node_id = outlets[0].pk if len(outlets) == 1 else None  # an outlet's own staff: their outlet
    state = request.GET.get("state") or ""
    if state not in LoanerState.values:
        state = ""
    pool_rows = selectors.pool_counts(user, node_id=node_id)
    pool = _page(selectors.loaner_list(user, node_id=node_id, state=state or None), selectors.LOANER_ORDERING,
                 request.GET.get("cursor"))
    overdue = list(selectors.loans_overdue(user, node_id=node_id, today=today)
                   .order_by(*selectors.LOAN_ORDERING)[:PAGE_SIZE])
    out = list(selectors.loans_open(user, node_id=node_id).order_by(*selectors.LOAN_ORDERING)[:PAGE_SIZE])
    now = timezone.now()
    candidates = list(selectors.loan_candidates(user, node_id=node_id, now=now)
                      .order_by(*selectors.CANDIDATE_ORDERING)[:PAGE_SIZE])
    # the available loaners of the candidates' outlets, in one query
    available: dict[int, list] = {}
    for x in (Loaner.objects.filter(node_id__in=sorted({o.node_id for o in candidates}), state=LoanerState.AVAILABLE)
              .select_related("category").order_by("asset_no")):
        available.setdefault(x.node_id, []).append(x)
    cand_rows = []
    for o in candidates:
        cat = o.unit.model.category_id if o.unit_id else None
        choices = sorted(available.get(o.node_id, []), key=lambda x, c=cat: (x.category_id != c, x.asset_no))
        cand_rows.append({"order": o, "days": selectors.days_open(o, now), "loaners": choices,
                          "may_lend": holds_at(user, Perm.ASSET_MANAGE, o.node_id)})
    policy = selectors.policy_get(user, node_id)[1] if node_id else None
    ctx = {
        "today": today,
        "outlets": outlets,
        "node_id": node_id,
        "state": state,
        "states": LoanerState.choices,
        "pool_rows": pool_rows,
        "chart": _chart(pool_rows),
        "pool_total": sum(r.total for r in pool_rows),
        "loaners": [{"x": x, "may_manage": holds_at(user, Perm.ASSET_MANAGE, x.node_id)} for x in pool.items],
        "next_cursor": pool.next_cursor,
        "overdue": [{"loan": loan, "days": (today - loan.due_on).days,
                     "may_manage": holds_at(user, Perm.ASSET_MANAGE, loan.node_id)} for loan in overdue],
        "state_totals": [(s, label, sum(r.counts.get(s, 0) for r in pool_rows)) for s, label in LoanerState.choices],
        "out": [{"loan": loan, "overdue": loan.due_on < today,
                 "may_manage": holds_at(user, Perm.ASSET_MANAGE, loan.node_id)} for loan in out],
        "candidates": cand_rows,
        "reasons": LoanReason.choices,
        "conditions": ReturnCondition.choices,
        "default_due": today + dt.timedelta(days=services.default_loan_days()),
        "policy": policy,
        "may_manage_node": bool(node_id) and holds_at(user, Perm.ASSET_MANAGE, node_id),
        "may_manage_any": principal(user).can(Perm.ASSET_MANAGE),
        "manage_outlets": [o for o in outlets if holds_at(user, Perm.ASSET_MANAGE, o.pk)],
        "categories": list(Category.objects.order_by("code")),
        "back": request.get_full_path(),
    }
    return render(request, "assets/loaners.html", ctx)


@require_POST
@require_perm(Perm.ASSET_MANAGE)
def lend(request):
    p = request.POST
    back = _next_url(request, reverse("assets:loaners"))
    return _write(request, back, lambda: services.loan_lend(
        user=request.user, order_id=_int(p.get("order_id")), loaner_id=_int(p.get("loaner_id")),
        reason=p.get("reason", ""), due_on=p.get("due_on") or None, note=p.get("note", "")), _("备用机已借出。"))


@require_POST
@require_perm(Perm.ASSET_MANAGE)
def loan_return(request, loan_id: int):
    p = request.POST
    back = _next_url(request, reverse("assets:loaners"))
    return _write(request, back, lambda: services.loan_return(
        user=request.user, loan_id=loan_id, condition=p.get("condition", ""), note=p.get("note", "")),
        _("备用机已收回。"))


@require_POST
@require_perm(Perm.ASSET_MANAGE)
def loaner_create(request):
    p = request.POST
    back = _next_url(request, reverse("assets:loaners"))
    return _write(request, back, lambda: services.loaner_create(
        user=request.user, node_id=_int(p.get("node_id")), category_id=_int(p.get("category_id")),
        asset_no=p.get("asset_no", ""), model_name=p.get("model_name", ""), serial=p.get("serial", ""),
        daily_cost=p.get("daily_cost", ""), acquired_on=p.get("acquired_on") or None,
        condition_note=p.get("condition_note", "")), _("备用机已登记。"))


@require_POST
@require_perm(Perm.ASSET_MANAGE)
def loaner_state(request, loaner_id: int):
    p = request.POST
    back = _next_url(request, reverse("assets:loaners"))
    kw = {"state": p.get("state", "")}
    if "condition_note" in p:
        kw["condition_note"] = p.get("condition_note", "")
    return _write(request, back, lambda: services.loaner_update(user=request.user, loaner_id=loaner_id, **kw),
                  _("备用机状态已更新。"))


@require_POST
@require_perm(Perm.ASSET_MANAGE)
def policy(request):
    p = request.POST
    node_id = _int(p.get("node_id"))
    back = _next_url(request, reverse("assets:loaners"))
    return _write(request, back, lambda: services.policy_set(user=request.user, node_id=node_id,
                                                               after_days=p.get("after_days", "")),
                  _("借用规则已保存。"))


# ================================================================ tools

@require_GET
@require_perm(Perm.ASSET_VIEW)
def tools(request):
    user = request.user
    today = timezone.localdate()
    g = request.GET
    due = g.get("due") if g.get("due") in selectors.DUE_FILTERS else ""
    state = g.get("state") if g.get("state") in ToolState.values else ""
    kind = g.get("kind") if g.get("kind") in ToolKind.values else ""
    outlets = list(selectors.outlets_in_scope(user))
    node_id = _int(g.get("node"))
    if node_id not in {o.pk for o in outlets}:
        node_id = None
    q = (g.get("q") or "").replace("\x00", "").strip()[:50]
    mine = g.get("mine") == "1"
    holder_id = None
    if mine:
        holder_id = Employee.objects.filter(user=user).values_list("pk", flat=True).first() or 0
    qs = selectors.tool_list(user, node_id=node_id, holder_id=holder_id, state=state or None, kind=kind or None,
                             due=due or None, q=q or None, today=today)
    page = _page(qs, selectors.TOOL_ORDERING, g.get("cursor"))
    params = g.copy()
    params.pop("cursor", None)
    ctx = {
        "today": today,
        "rows": [{"t": t, "due": selectors.due_flag(t, today)} for t in page.items],
        "next_cursor": page.next_cursor,
        "query": params.urlencode(),
        "due": due, "state": state, "kind": kind, "node_id": node_id, "q": q, "mine": mine,
        "states": ToolState.choices, "kinds": ToolKind.choices, "checks": CheckKind.choices,
        "outlets": outlets,
        "n_overdue": selectors.tool_list(user, node_id=node_id, holder_id=holder_id, due="overdue", today=today).count(),
        "n_soon": selectors.tool_list(user, node_id=node_id, holder_id=holder_id, due="soon", today=today).count(),
        "may_manage_any": principal(user).can(Perm.ASSET_MANAGE),
        "manage_nodes": _manage_nodes(user) if principal(user).can(Perm.ASSET_MANAGE) else [],
        "back": request.get_full_path(),
    }
    return render(request, "assets/tools.html", ctx)


@require_GET
@require_perm(Perm.ASSET_VIEW)
def tool(request, tool_id: int):
    user = request.user
    t = selectors.tool_get(user, tool_id)
    today = timezone.localdate()
    may_manage = holds_at(user, Perm.ASSET_MANAGE, t.node_id)
    holders = []
    if may_manage:
        holders = list(scoped(Employee.objects.filter(active=True, node__path__startswith=t.node.path), user,
                              Perm.ASSET_MANAGE).select_related("node").order_by("node__code", "employee_no"))
    ctx = {
        "t": t,
        "today": today,
        "due": selectors.due_flag(t, today),
        "history": list(selectors.tool_history(user, tool_id).order_by(*selectors.HISTORY_ORDERING)[:100]),
        "may_manage": may_manage,
        "holders": holders,
        "results": CalibrationResult.choices,
        "states": [(s, label) for s, label in ToolState.choices if s != ToolState.IN_USE],
        "back": request.get_full_path(),
    }
    return render(request, "assets/tool.html", ctx)


@require_POST
@require_perm(Perm.ASSET_MANAGE)
def tool_create(request):
    p = request.POST
    back = _next_url(request, reverse("assets:tools"))
    return _write(request, back, lambda: services.tool_create(
        user=request.user, node_id=_int(p.get("node_id")), code=p.get("code", ""), name=p.get("name", ""),
        kind=p.get("kind", ""), model_name=p.get("model_name", ""), serial=p.get("serial", ""),
        check_kind=p.get("check_kind", ""), interval_months=p.get("interval_months") or None,
        due_on=p.get("due_on") or None, certificate_no=p.get("certificate_no", ""),
        certificate=request.FILES.get("certificate"), note=p.get("note", "")), _("工具仪器已登记。"))


@require_POST
@require_perm(Perm.ASSET_MANAGE)
def tool_calibrate(request, tool_id: int):
    p = request.POST
    back = _next_url(request, reverse("assets:tool", args=[tool_id]))
    return _write(request, back, lambda: services.calibration_record(
        user=request.user, tool_id=tool_id, done_on=p.get("done_on") or None, result=p.get("result", ""),
        certificate_no=p.get("certificate_no", ""), agency=p.get("agency", ""), next_due=p.get("next_due") or None,
        note=p.get("note", ""), certificate=request.FILES.get("certificate")), _("校准/检验记录已保存。"))


@require_POST
@require_perm(Perm.ASSET_MANAGE)
def tool_assign(request, tool_id: int):
    p = request.POST
    back = _next_url(request, reverse("assets:tool", args=[tool_id]))
    holder = p.get("holder_id") or ""
    holder_id = None if holder in ("", "0") else (_int(holder) or -1)
    return _write(request, back, lambda: services.tool_assign(user=request.user, tool_id=tool_id, holder_id=holder_id),
                  _("已交付持有人。") if holder_id else _("已收回入库。"))


@require_POST
@require_perm(Perm.ASSET_MANAGE)
def tool_state(request, tool_id: int):
    p = request.POST
    back = _next_url(request, reverse("assets:tool", args=[tool_id]))
    return _write(request, back, lambda: services.tool_update(user=request.user, tool_id=tool_id,
                                                                state=p.get("state", "")),
                  _("状态已更新。"))


def _file(field):
    if not field:
        raise Http404()
    try:
        f = field.open("rb")
    except (FileNotFoundError, OSError):
        raise Http404 from None
    resp = FileResponse(f, filename=field.name.rsplit("/", 1)[-1])
    resp["Cache-Control"] = "private, max-age=3600"
    resp["X-Content-Type-Options"] = "nosniff"
    return resp


@require_GET
@require_perm(Perm.ASSET_VIEW)
def tool_certificate(request, tool_id: int):
    return _file(selectors.tool_get(request.user, tool_id).certificate)


@require_GET
@require_perm(Perm.ASSET_VIEW)
def calibration_certificate(request, calibration_id: int):
    c = Calibration.objects.filter(pk=calibration_id).only("tool_id", "certificate").first()
    if c is None:
        raise Http404()
    selectors.tool_get(request.user, c.tool_id)  # 404 outside the scope
    return _file(c.certificate)

