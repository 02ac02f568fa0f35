"""Pages of the call-back round.

- ``survey_page`` (``/feedback/s/<token>/``): PUBLIC. The customer opens the link from the SMS
  on a phone, without logging in: the order number, the service date and the technician's
  name (nothing personal), four rows of 1–5 stars, solved yes/no, a comment. Its own minimal
  layout, not the staff one. No CSRF check: the unguessable token in the URL is the only
  credential and the only thing a forged request could touch, and SMS in-app browsers often
  drop cookies. Used, expired or closed links answer 410, unknown ones 404.
- ``callbacks`` (``/feedback/callbacks/``): the agents' open call-back tasks with the script,
  each with a form recorded by htmx (``callback_record_view``), which swaps in the outcome.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aftersales.core.errors import Conflict, NotFound, ValidationFailed
from aftersales.core.pagination import keyset_page
from aftersales.customers.selectors import shown_phone
from aftersales.org.roles import Perm
from aftersales.web.permissions import is_htmx, require_perm

from . import selectors, services
from .models import SCORE_FIELDS, TaskStatus
from .script import QUESTIONS, script_for

PAGE_SIZE = 30
STARS = ("5", "4", "3", "2", "1")


# ---------------------------------------------------------------- the customer's page

def _public(response: HttpResponse) -> HttpResponse:
    """The token is in the URL: keep it out of Referer headers, caches and search engines."""
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store, private"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _closed(request, exc, status: int) -> HttpResponse:
    return _public(render(request, "feedback/survey_closed.html", {"message": exc.message, "status": status},
                          status=status))


def _form_values(post) -> dict:
    resolved = {"yes": True, "no": False}.get(post.get("resolved", ""))
    return {
        **{f: post.get(f, "") for f in SCORE_FIELDS},
        "overall": post.get("overall") or None,
        "resolved": resolved,
        "comment": post.get("comment", ""),
    }


def _rows(values: dict, errors: dict) -> list[dict]:
    rows = [{"field": f, "label": label, "question": q, "value": str(values.get(f) or ""),
             "errors": errors.get(f, [])} for f, label, q in QUESTIONS]
    return rows


@csrf_exempt
@require_http_methods(["GET", "POST"])
def survey_page(request, token: str):
    try:
        survey = selectors.survey_public(token)
    except services.Gone as e:
        return _closed(request, e, 410)
    except NotFound as e:
        return _closed(request, e, 404)
    order = survey.order
    values: dict = {}
    errors: dict = {}
    status = 200
    if request.method == "POST":
        values = _form_values(request.POST)
        try:
            out = services.survey_submit(token, **values)
        except services.Gone as e:
            return _closed(request, e, 410)
        except NotFound as e:
            return _closed(request, e, 404)
        except ValidationFailed as e:
            errors = {k: [str(m) for m in msgs] for k, msgs in e.errors.items()}
            status = 400
        else:
            follow_up = out.reopened or out.complaint is not None or out.survey.low
            return _public(render(request, "feedback/survey_thanks.html", {
                "order": order, "message": services.THANKS_FOLLOW_UP if follow_up else services.THANKS}))
    ctx = {
        "order": order,
        "product": order.unit.model.name if order.unit_id else "",
        "service_date": timezone.localdate(order.completed_at) if order.completed_at else None,
        "technician": order.assignee.name if order.assignee_id else "",
        "expires_at": survey.expires_at,
        "rows": _rows(values, errors),
        "stars": STARS,
        "values": values,
        "errors": errors,
    }
    return _public(render(request, "feedback/survey.html", ctx, status=status))


# ---------------------------------------------------------------- the agents' page

def outcome_messages(out: services.Outcome) -> list[str]:
    msgs = []
    if out.survey is None:
        if out.unreachable:
            msgs.append(_("已连续 %(n)s 次未接通，回访结束，工单已关闭。") % {"n": out.task.attempts}
                        if out.closed else _("已连续 %(n)s 次未接通，回访结束。") % {"n": out.task.attempts})
        else:
            msgs.append(_("已记录未接通（第 %(n)s 次），请稍后再拨。") % {"n": out.task.attempts})
        return msgs
    msgs.append(_("回访已记录（总体 %(n)s 分）。") % {"n": out.survey.overall})
    if out.complaint is not None:
        msgs.append(_("评分偏低，已生成投诉跟进单 %(number)s 并通知网点经理。") % {"number": out.complaint.number})
    if out.reopened:
        msgs.append(_("客户表示问题未解决，工单已重开，并已短信告知客户。"))
    elif out.closed:
        msgs.append(_("工单已关闭。"))
    return msgs


def _order_url(order_id: int) -> str | None:
    """The order's page (the web app's), when it is mounted."""
    try:
        return reverse("web:order_detail", args=[order_id])
    except NoReverseMatch:
        return None


def _card(request, task, *, values=None, errors=None, outcome=None, error=None) -> dict:
    return {
        "task": task,
        "order_url": _order_url(task.order_id),
        "script": script_for(task.order),
        "phone": shown_phone(request.user, task.order.customer),
        "rows": _rows(values or {}, errors or {}),
        "values": values or {},
        "errors": errors or {},
        "outcome": outcome_messages(outcome) if outcome is not None else None,
        "error": error,
        "now": timezone.now(),
    }


@require_GET
@require_perm(Perm.ORDER_HANDLE)
def callbacks(request):
    user = request.user
    status = request.GET.get("status") or TaskStatus.OPEN
    if status not in TaskStatus.values:
        status = TaskStatus.OPEN
    mine = request.GET.get("mine") == "1"
    qs = selectors.callback_list_qs(selectors.callback_filter(user, selectors.callback_queryset(user),
                                                              status=status, mine=mine))
    try:
        page = keyset_page(qs, ordering=selectors.ORDERING, cursor=request.GET.get("cursor") or None, limit=PAGE_SIZE)
    except ValidationFailed:  # a stale or forged cursor: the first page
        page = keyset_page(qs, ordering=selectors.ORDERING, cursor=None, limit=PAGE_SIZE)
    ctx = {
        "cards": [_card(request, t) for t in page.items],
        "next_cursor": page.next_cursor,
        "status": status,
        "statuses": TaskStatus.choices,
        "mine": mine,
    }
    return render(request, "feedback/callbacks.html", ctx)


@require_POST
@require_perm(Perm.ORDER_HANDLE)
def callback_record_view(request, task_id: int):
    user = request.user
    reached = request.POST.get("reached") == "1"
    values = _form_values(request.POST) if reached else {"comment": request.POST.get("comment", "")}
    outcome = error = None
    errors: dict = {}
    status = 200
    try:
        outcome = services.callback_record(user=user, task_id=task_id, reached=reached, **values)
    except ValidationFailed as e:
        errors = {k: [str(m) for m in msgs] for k, msgs in e.errors.items()}
        status = 400
    except Conflict as e:
        error = str(e.message)
        status = 409
    task = selectors.callback_get(user, task_id)  # NotFound (404) outside the scope
    ctx = _card(request, task, values=values if errors else None, errors=errors, outcome=outcome, error=error)
    if is_htmx(request):  # htmx swaps 2xx only: the errors are shown in the card
        return render(request, "feedback/_task.html", ctx)
    return render(request, "feedback/callback_record.html", ctx, status=status)
