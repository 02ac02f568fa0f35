"""Figures for the managers' home page, computed in SQL (counts and one grouped query).

``units_by_category_and_state`` puts every unit in scope into one of three warranty states
on ``today`` and counts them per category with one ``GROUP BY``. The state follows the
periods of ``aftersales.catalog.warranty.decide`` — return / exchange window from the
purchase date; whole-unit period from the purchase date, or from the last exchange where
the policy restarts it — without the days added for repairs. The date boundaries are asked
of ``decide`` itself (once per distinct number of days / months in the policies), so the
chart keeps to the engine's counting conventions (an overview, not a decision:
the customer page shows the exact decision per unit).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from aftersales.catalog.models import ProductModel, WarrantyPolicy
from aftersales.catalog.warranty import Terms, add_months, decide
from aftersales.customers.models import Unit
from aftersales.customers.selectors import customer_queryset
from aftersales.org.models import RoleAssignment
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import scope_filter
from aftersales.org.selectors import certifications_expiring, employee_queryset

WINDOW, IN_WARRANTY, EXPIRED = "window", "warranty", "expired"
WINDOW_RULES = ("return_window", "exchange_window")
STATE_LABELS = {
    WINDOW: _("退换货期内"),
    IN_WARRANTY: _("保修期内"),
    EXPIRED: _("已过保"),
}
STATE_COLOURS = {WINDOW: "#7c3aed", IN_WARRANTY: "#16a34a", EXPIRED: "#9ca3af"}


def scoped_units(user):
    f = scope_filter(user, Perm.CUSTOMER_VIEW, node_field="customer__node")
    qs = Unit.objects.all()
    return qs if f is None else qs.filter(f)


def _terms(*, months: int | None = None, exchange_days: int | None = None) -> Terms:
    """Default terms with one number changed, without repair extensions or exclusions."""
    t = Terms.default()
    months = t.whole_unit_months if months is None else months
    exchange_days = t.exchange_days if exchange_days is None else exchange_days
    return replace(t, whole_unit_months=months, main_part_months=max(months, t.main_part_months),
                   exchange_days=exchange_days, return_days=min(t.return_days, exchange_days),
                   extend_by_repair_time=False, exclusions=frozenset())


def _whole_unit_until(start: dt.date, months: int, today: dt.date) -> dt.date:
    return decide(_terms(months=months), purchase_date=start, on=max(start, today)).whole_unit_until


def last_start_out_of_period(today: dt.date, months: int) -> dt.date:
    """The last period start whose ``months``-month whole-unit period has ended before
    ``today``: a unit is in that period iff its period starts later than this date. Asks
    the rule engine itself, so the chart follows its counting conventions."""
    s = add_months(today, -months) + dt.timedelta(days=3)
    while _whole_unit_until(s, months, today) >= today:  # the period end grows with the start
        s -= dt.timedelta(days=1)
    while _whole_unit_until(s + dt.timedelta(days=1), months, today) < today:
        s += dt.timedelta(days=1)
    return s


def first_purchase_in_window(today: dt.date, exchange_days: int) -> dt.date:
    """The earliest purchase date still in the return / exchange window on ``today``."""
    p = today - dt.timedelta(days=exchange_days + 3)
    while p < today and decide(_terms(exchange_days=exchange_days), purchase_date=p, on=today).rule not in WINDOW_RULES:
        p += dt.timedelta(days=1)
    return p


def units_by_category_and_state(user, today: dt.date) -> list[dict]:
    """``[{"category": name, "category_en": …, "state": WINDOW|IN_WARRANTY|EXPIRED, "n": count}]``."""
    default = Terms.default()
    policy_terms = set(WarrantyPolicy.objects.values_list("exchange_days", "whole_unit_months").distinct())
    exchange_days = {e for e, _m in policy_terms} | {default.exchange_days}
    months = (
        {m for _e, m in policy_terms}
        | set(ProductModel.objects.filter(whole_unit_months__isnull=False).order_by()
              .values_list("whole_unit_months", flat=True).distinct())
        | {default.whole_unit_months}
    )
    policy = "model__category__policy__"
    qs = scoped_units(user).annotate(
        ex_days=Coalesce(F(policy + "exchange_days"), Value(default.exchange_days), output_field=IntegerField()),
        months=Coalesce(F("model__whole_unit_months"), F(policy + "whole_unit_months"),
                        Value(default.whole_unit_months), output_field=IntegerField()),
        restarts=Coalesce(F(policy + "exchange_restarts"), Value(default.exchange_restarts),
                          output_field=BooleanField()),
    ).annotate(
        start=Case(
            When(exchanged_on__isnull=False, exchanged_on__lte=today, restarts=True, then=F("exchanged_on")),
            default=F("purchase_date"),
            output_field=DateField(),
        )
    ).annotate(
        state=Case(
            *[When(ex_days=d, purchase_date__gte=first_purchase_in_window(today, d), then=Value(WINDOW))
              for d in sorted(exchange_days)],
            *[When(months=m, start__gt=last_start_out_of_period(today, m), then=Value(IN_WARRANTY))
              for m in sorted(months)],
            default=Value(EXPIRED),
        )
    )
    rows = (
        qs.values("model__category__code", "model__category__name", "model__category__name_en", "state")
        .annotate(n=Count("id"))
        .order_by("model__category__code", "state")
    )
    return [
        {"code": r["model__category__code"], "category": r["model__category__name"],
         "category_en": r["model__category__name_en"], "state": r["state"], "n": r["n"]}
        for r in rows
    ]


def chart_data(rows: list[dict], *, english: bool = False) -> dict:
    """The ECharts dataset for a stacked bar chart: categories × states."""
    cats: dict[str, str] = {}
    for r in rows:
        cats.setdefault(r["code"], (r["category_en"] if english and r["category_en"] else r["category"]))
    codes = list(cats)
    counts = {(r["code"], r["state"]): r["n"] for r in rows}
    states = (WINDOW, IN_WARRANTY, EXPIRED)
    return {
        "categories": [cats[c] for c in codes],
        "table": [{"category": cats[c], "counts": [counts.get((c, s), 0) for s in states]} for c in codes],
        "series": [
            {"key": s, "name": str(STATE_LABELS[s]), "colour": STATE_COLOURS[s],
             "data": [counts.get((c, s), 0) for c in codes]}
            for s in states
        ],
    }


def manager_figures(user, today: dt.date) -> dict:
    technician_role = RoleAssignment.objects.filter(user_id=OuterRef("user_id"), role=Role.TECHNICIAN)
    return {
        "customers": customer_queryset(user).count(),
        "units": scoped_units(user).count(),
        "technicians": employee_queryset(user).filter(active=True).filter(Exists(technician_role)).count(),
        "expiring": certifications_expiring(user, within_days=30, on=today).count(),
    }


def admin_counts() -> list[tuple[str, int]]:
    from django.contrib.auth import get_user_model

    from aftersales.customers.models import Customer
    from aftersales.org.models import Employee, Node

    return [
        (pgettext_lazy("figure", "组织节点"), Node.objects.count()),
        (pgettext_lazy("figure", "员工"), Employee.objects.count()),
        (pgettext_lazy("figure", "用户账号"), get_user_model().objects.count()),
        (pgettext_lazy("figure", "客户"), Customer.objects.count()),
        (pgettext_lazy("figure", "登记产品"), Unit.objects.count()),
        (pgettext_lazy("figure", "产品型号"), ProductModel.objects.count()),
    ]

