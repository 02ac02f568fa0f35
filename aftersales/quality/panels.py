"""The quality panels of the order page and the technician's job page (``web.panels`` asks).

- ``tech_panel`` (the technician's job page): the service-norm checklist (服务规范) to answer
  on site or at completion — every active item met or not, and a note; answered again, the
  answers are replaced. Only for the order's own technician, while the order is on site …
  completed.
- ``order_panel`` (the order page): the checklist as answered (who, when, each item), with the
  form for a handler of the order's node while it may still be answered; and for complaint
  orders, to whoever holds ``quality.view`` over the order's node, the improvement actions
  raised from it and a link to raise one.

The form posts to ``quality:norm_check`` with ``next`` = this page and comes back here.
"""

from __future__ import annotations

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import urlencode

from aftersales.org.roles import Perm
from aftersales.org.scope import holds_at, principal
from aftersales.tickets import workflow
from aftersales.tickets.models import OrderType, WorkOrder

from . import selectors_improve as reads
from . import services
from .models import Action, ActionSource


def _checklist(request, order: WorkOrder, *, may_answer: bool) -> dict:
    check = reads.norm_check_of(order.pk)
    items = reads.norm_items() if may_answer else []
    answers = check.answers if check is not None else {}
    known = reads.norm_items(active_only=False) if check is not None else []
    shown = [i.code for i in known if i.code in answers] + [c for c in answers if c not in {i.code for i in known}]
    names = {i.code: i for i in known}
    return {
        "order": order,
        "check": check,
        "may_answer": may_answer,
        "items": [{"item": i, "answer": answers.get(i.code)} for i in items],
        "answered": [{"code": c, "text": names[c].text if c in names else c, "met": answers[c]} for c in shown],
        "next": request.get_full_path(),
    }


def tech_panel(request, order: WorkOrder) -> str:
    """The checklist form on the technician's job page (their own order, on site … completed)."""
    user = request.user
    if not (workflow.is_assignee(user, order) and principal(user).can(Perm.ORDER_WORK)):
        return ""
    may_answer = order.status in services.NORM_STATES
    ctx = _checklist(request, order, may_answer=may_answer)
    if not may_answer and ctx["check"] is None:
        return ""
    return render_to_string("quality/norm_panel.html", {**ctx, "page": "tech"}, request=request)


def order_panel(request, order: WorkOrder) -> str:
    """The checklist's result (and form, for a handler), and the improvement actions of a complaint."""
    user = request.user
    if principal(user).customer_id is not None and not holds_at(user, Perm.ORDER_VIEW, order.node_id):
        return ""
    parts = []
    sees = holds_at(user, Perm.ORDER_VIEW, order.node_id) or workflow.is_assignee(user, order)
    if sees:
        may_answer = order.status in services.NORM_STATES and services.may_answer_norms(user, order)
        ctx = _checklist(request, order, may_answer=may_answer)
        if ctx["check"] is not None or may_answer:
            parts.append(render_to_string("quality/norm_panel.html", {**ctx, "page": "order"}, request=request))
    if order.type == OrderType.COMPLAINT and holds_at(user, Perm.QUALITY_VIEW, order.node_id):
        actions = list(Action.objects.filter(complaint_id=order.pk).order_by("-created_at", "-id")[:20])
        new_url = reverse("quality:action_new") + "?" + urlencode(
            {"source": ActionSource.COMPLAINT, "complaint": order.pk, "node": order.node_id})
        parts.append(render_to_string("quality/actions_complaint_panel.html",
                                      {"order": order, "actions": actions, "new_url": new_url}, request=request))
    return "".join(parts)
