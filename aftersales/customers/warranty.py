"""The 三包 decision for a registered unit: ``aftersales.catalog.warranty`` applied to the
unit's terms, dates and repair history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.utils import timezone

from aftersales.catalog.warranty import Decision, RepairFact, decide, terms_for

from .models import Unit


def unit_warranty(
    unit: Unit,
    *,
    on: dt.date | None = None,
    fault_key: str | None = None,
    part_code: str | None = None,
    exclusions: Iterable[str] = (),
) -> Decision:
    """Decide a fault of ``unit`` found on ``on`` (today by default).

    ``part_code`` names the failed part: it is a main part when it matches one of the
    model's main parts, and it is the fault counted by the repeat-repair rule unless
    ``fault_key`` is given. A unit without an invoice number is out of 三包 where the policy
    applies that exclusion. Issues no query for a unit loaded by ``unit_list_qs()``.
    """
    on = on if on is not None else timezone.localdate()
    code = (part_code or "").strip()
    is_main_part = bool(code) and any(p.code == code for p in unit.model.main_parts.all())
    repairs = [
        RepairFact(started_on=r.started_on, finished_on=r.finished_on, fault_key=r.fault_key,
                   in_warranty=r.in_warranty)
        for r in unit.repairs.all()
    ]
    return decide(
        terms_for(unit.model),
        purchase_date=unit.purchase_date,
        on=on,
        fault_key=fault_key or code or None,
        is_main_part=is_main_part,
        exchanged_on=unit.exchanged_on,
        has_invoice=bool((unit.invoice_no or "").strip()),
        repairs=repairs,
        exclusions=exclusions,
    )
