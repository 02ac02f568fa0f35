"""The assets panels of the order page and the technician's job page.

- ``order_panel(request, order)``: the order's substitute appliance — the open loan with its
  "take back" form (condition check), the earlier loans — and, for a manager of the order's
  outlet (``asset.manage``), while the repair order is open and has none, a "lend" form
  listing the outlet's available loaners (the unit's category first). The reason defaults to
  the rule when the repair has run longer than the outlet's days, else to the manager's
  decision. Seen by whoever holds ``asset.view`` over the order's node.
- ``tech_panel(request, order)``: read-only, for the technician: the loaner the customer has
  (to take back once the repair is done), and a warning when the technician holds an
  instrument whose calibration or inspection has lapsed.

Forms post to ``assets:lend`` / ``assets:loan_return`` and come back to the order page.
Each panel returns "" when nothing applies to the user.
"""

from __future__ import annotations

import datetime as dt

from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from aftersales.org.roles import Perm
from aftersales.org.scope import holds_at
from aftersales.tickets import workflow
from aftersales.tickets.models import OrderType

from . import selectors, services
from .models import Loan, LoanReason, ReturnCondition


def _url(name: str, *args) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def order_panel(request, order) -> str:
    user = request.user
    if not holds_at(user, Perm.ASSET_VIEW, order.node_id):
        return ""
    loans = selectors.order_loans(order.pk)
    current = next((x for x in loans if x.returned_at is None), None)
    may_manage = holds_at(user, Perm.ASSET_MANAGE, order.node_id)
    can_lend = (may_manage and current is None and order.type == OrderType.REPAIR
                and order.status in selectors.CANDIDATE_STATUSES)
    if not loans and not can_lend:
        return ""
    today = timezone.localdate()
    ctx = {
        "order": order,
        "current": current,
        "current_overdue": current is not None and current.due_on < today,
        "past": [x for x in loans if x is not current],
        "may_manage": may_manage,
        "can_lend": can_lend,
        "back": _url("web:order_detail", order.pk) or "/",
        "conditions": ReturnCondition.choices,
        "today": today,
    }
    if can_lend:
        policy = selectors.effective_policy(order.node_id)
        days = selectors.days_open(order)
        ctx.update({
            "loaners": selectors.available_loaners_for(order),
            "unit_category_id": order.unit.model.category_id if order.unit_id else None,
            "after_days": policy.after_days,
            "days": days,
            "qualifies": days >= policy.after_days,
            "reasons": LoanReason.choices,
            "default_due": today + dt.timedelta(days=services.default_loan_days()),
        })
    return render_to_string("assets/_order_panel.html", ctx, request=request)


def tech_panel(request, order) -> str:
    user = request.user
    technician = workflow.is_assignee(user, order)
    if not (technician or holds_at(user, Perm.ASSET_VIEW, order.node_id)):
        return ""
    loan = (Loan.objects.filter(order_id=order.pk, returned_at__isnull=True).select_related("loaner__category")
            .first())
    overdue = selectors.overdue_instruments_of([order.assignee_id]).get(order.assignee_id, []) \
        if technician else []
    if loan is None and not overdue:
        return ""
    ctx = {"order": order, "loan": loan, "overdue": overdue,
           "warnings": [selectors.instrument_warning(t) for t in overdue]}
    return render_to_string("assets/_tech_panel.html", ctx, request=request)
