"""The 三包 rule engine (R-WAR-1): given the terms that apply to a product and the facts of
one fault, decide between return, exchange, free repair and chargeable repair.

``decide`` is pure: it reads no database and depends only on its arguments, so every
boundary can be tested as a table. ``terms_for`` turns the stored policy (per category,
overridable per model) into ``Terms``; ``aftersales.customers.warranty.unit_warranty``
applies the engine to a registered unit.

Counting conventions (all boundaries inclusive, see ``decide``):

They follow the Civil Code of the PRC on periods (民法典 第二百零一条、第二百零二条): the
day of the event is not counted, a period in days or months starts on the next day, and a
period in months or years ends on the corresponding day of the last month — or on that
month's last day when it has no corresponding day. (Art. 203's moving of a last day that
falls on a public holiday is not applied: a 三包 period is not a deadline for an act.)

- Day 0 is the purchase date; ``days_since_purchase = (on - purchase_date).days``, so the
  "7 days" return window runs to purchase + 7 days inclusive.
- A period of N months from day S covers up to add_months(S, N) inclusive, plus the days
  added for repairs; add_months clamps to the month end (2024-01-31 + 1 month = 2024-02-29,
  2024-02-29 + 12 months = 2025-02-28).
- The ``*_until`` dates are the last covered day.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import ValidationFailed

from .models import Exclusion, ProductModel, WarrantyPolicy


class DecisionKind(models.TextChoices):
    RETURN = "return", _("退货")
    EXCHANGE = "exchange", _("换货")
    FREE_REPAIR = "free_repair", _("免费维修")
    CHARGEABLE = "chargeable", _("收费维修")


@dataclass(frozen=True)
class Terms:
    """The 三包 terms that apply to one product model."""

    return_days: int
    exchange_days: int
    whole_unit_months: int
    main_part_months: int
    repeat_repair_limit: int
    extend_by_repair_time: bool
    exchange_restarts: bool
    exclusions: frozenset[str]

    @classmethod
    def default(cls) -> Terms:
        """The defaults of REFERENCE.md: 7 / 15 days, 12 / 36 months, exchange after 2 repairs."""
        return cls(
            return_days=7,
            exchange_days=15,
            whole_unit_months=12,
            main_part_months=36,
            repeat_repair_limit=2,
            extend_by_repair_time=True,
            exchange_restarts=True,
            exclusions=frozenset(Exclusion.values),
        )


def terms_for(model: ProductModel) -> Terms:
    """The terms of ``model``: its category's policy (the defaults when the category has
    none), with the model's own whole-unit / main-part months where set. Issues no query
    when the category and its policy were loaded with ``select_related``."""
    try:
        policy = model.category.policy
    except WarrantyPolicy.DoesNotExist:  # Category.policy.RelatedObjectDoesNotExist
        base = Terms.default()
    else:
        base = Terms(
            return_days=policy.return_days,
            exchange_days=policy.exchange_days,
            whole_unit_months=policy.whole_unit_months,
            main_part_months=policy.main_part_months,
            repeat_repair_limit=policy.repeat_repair_limit,
            extend_by_repair_time=policy.extend_by_repair_time,
            exchange_restarts=policy.exchange_restarts,
            exclusions=frozenset(policy.active_exclusions()),
        )
    whole = model.whole_unit_months if model.whole_unit_months is not None else base.whole_unit_months
    main = model.main_part_months if model.main_part_months is not None else base.main_part_months
    return Terms(
        return_days=base.return_days,
        exchange_days=base.exchange_days,
        whole_unit_months=whole,
        main_part_months=main,
        repeat_repair_limit=base.repeat_repair_limit,
        extend_by_repair_time=base.extend_by_repair_time,
        exchange_restarts=base.exchange_restarts,
        exclusions=base.exclusions,
    )


@dataclass(frozen=True)
class RepairFact:
    """One past repair of the unit. ``finished_on`` None: still in repair."""

    started_on: dt.date
    finished_on: dt.date | None
    fault_key: str
    in_warranty: bool


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    rule: str
    reason: str
    period_start: dt.date
    whole_unit_until: dt.date
    main_part_until: dt.date
    days_since_purchase: int
    extension_days: int
    repeat_count: int

    @property
    def free(self) -> bool:
        return self.kind != DecisionKind.CHARGEABLE

    @property
    def label(self) -> str:
        return DecisionKind(self.kind).label


def add_months(d: dt.date, months: int) -> dt.date:
    """``d`` plus ``months`` calendar months, clamped to the end of the target month."""
    total = d.year * 12 + (d.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    return dt.date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _repair_days(r: RepairFact, on: dt.date) -> int:
    """Whole days ``r`` spent in repair up to ``on`` (a same-day repair counts 0)."""
    end = r.finished_on if r.finished_on is not None else on
    return max(0, (min(end, on) - r.started_on).days)


def decide(
    terms: Terms,
    *,
    purchase_date: dt.date,
    on: dt.date,
    fault_key: str | None = None,
    is_main_part: bool = False,
    exchanged_on: dt.date | None = None,
    has_invoice: bool = True,
    repairs: Iterable[RepairFact] = (),
    exclusions: Iterable[str] = (),
) -> Decision:
    """Decide what a fault found on ``on`` entitles the customer to. Rules, first match wins:

    a. ``on`` before ``purchase_date``: ``ValidationFailed`` on field ``on``.
    b. An exclusion (``exclusions``, plus ``no_invoice`` when ``has_invoice`` is False) that
       the terms apply: CHARGEABLE, rule ``exclusion:<code>`` (the first in ``Exclusion``
       order when several apply). Codes the terms don't apply are ignored.
    c. ``days = (on - purchase_date).days``; ``days <= return_days``: RETURN (the customer
       may also choose exchange or repair); ``days <= exchange_days``: EXCHANGE (or repair).
       These windows always count from the ORIGINAL purchase date: an exchange restarts
       only the repair periods, never the return / exchange windows.
    d. The repair periods start on ``period_start``: the last exchange date when there is
       one (on or before ``on``) and ``terms.exchange_restarts``, else the purchase date.
       Each period covers ``period_start`` … ``add_months(period_start, months)`` (inclusive),
       extended (when ``terms.extend_by_repair_time``) by the whole days of the 三包 repairs
       (``in_warranty``) that started between ``period_start`` and ``on``:
       ``finished_on - started_on``, or ``on - started_on`` while unfinished.
    e. Repeat repair: when ``fault_key`` is given, the 三包 repairs of that fault started
       between ``period_start`` and ``on`` are counted; at ``repeat_repair_limit`` or more,
       and with ``on`` still in the applicable period (main part if ``is_main_part``, else
       whole unit): EXCHANGE, rule ``repeat_repair`` (the customer may choose return).
    f. ``is_main_part`` and ``on <= main_part_until``: FREE_REPAIR (``main_part_warranty``);
       ``on <= whole_unit_until``: FREE_REPAIR (``whole_unit_warranty``); else CHARGEABLE
       (``expired``).

    The reason is a full sentence translated into the active language.
    """
    # a. the dates
    if on < purchase_date:
        raise ValidationFailed({"on": [_("故障日期不能早于购买日期。")]})

    days = (on - purchase_date).days

    # d. the periods (computed first so every decision carries them)
    restarted = exchanged_on is not None and terms.exchange_restarts and exchanged_on <= on
    period_start = exchanged_on if restarted else purchase_date
    relevant = [r for r in repairs if period_start <= r.started_on <= on and r.in_warranty]
    extension = sum(_repair_days(r, on) for r in relevant) if terms.extend_by_repair_time else 0
    whole_until = add_months(period_start, terms.whole_unit_months) + dt.timedelta(days=extension)
    main_until = add_months(period_start, terms.main_part_months) + dt.timedelta(days=extension)

    # e. (counted now, applied after the windows)
    repeat_count = sum(1 for r in relevant if r.fault_key == fault_key) if fault_key else 0

    def result(kind: DecisionKind, rule: str, reason: str) -> Decision:
        return Decision(
            kind=kind,
            rule=rule,
            reason=reason,
            period_start=period_start,
            whole_unit_until=whole_until,
            main_part_until=main_until,
            days_since_purchase=days,
            extension_days=extension,
            repeat_count=repeat_count,
        )

    # b. exclusions
    present = set(exclusions)
    if not has_invoice:
        present.add(Exclusion.NO_INVOICE.value)
    present &= set(terms.exclusions)
    for code in Exclusion.values:
        if code in present:
            return result(
                DecisionKind.CHARGEABLE,
                f"exclusion:{code}",
                gettext("属于不实行三包的情形（%(label)s）：按收费维修处理。") % {"label": Exclusion(code).label},
            )

    # c. return / exchange windows, from the original purchase date
    if days <= terms.return_days:
        return result(
            DecisionKind.RETURN,
            "return_window",
            gettext("购买后第 %(days)s 天（%(limit)s 天内）出现性能故障：可选择退货、换货或修理。")
            % {"days": days, "limit": terms.return_days},
        )
    if days <= terms.exchange_days:
        return result(
            DecisionKind.EXCHANGE,
            "exchange_window",
            gettext("购买后第 %(days)s 天（%(limit)s 天内）出现性能故障：可选择换货或修理。")
            % {"days": days, "limit": terms.exchange_days},
        )

    # e. repeat repair
    applicable_until = main_until if is_main_part else whole_until
    if fault_key and repeat_count >= terms.repeat_repair_limit and on <= applicable_until:
        return result(
            DecisionKind.EXCHANGE,
            "repeat_repair",
            gettext("三包期内该故障已修理 %(count)s 次仍不能正常使用：可选择免费换货或退货。")
            % {"count": repeat_count},
        )

    # f. the repair periods
    if is_main_part and on <= main_until:
        return result(
            DecisionKind.FREE_REPAIR,
            "main_part_warranty",
            gettext("主要部件在三包有效期内（至 %(until)s）：免费维修。") % {"until": main_until.isoformat()},
        )
    if on <= whole_until:
        return result(
            DecisionKind.FREE_REPAIR,
            "whole_unit_warranty",
            gettext("整机在三包有效期内（至 %(until)s）：免费维修。") % {"until": whole_until.isoformat()},
        )
    if is_main_part:
        reason = gettext("主要部件三包有效期已于 %(until)s 结束：收费维修。") % {"until": main_until.isoformat()}
    else:
        reason = gettext("整机三包有效期已于 %(until)s 结束：收费维修。") % {"until": whole_until.isoformat()}
    return result(DecisionKind.CHARGEABLE, "expired", reason)
