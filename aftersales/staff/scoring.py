"""The appraisal's arithmetic, as pure functions (no database): item scores, totals, grades,
ranks and bonuses. ``services_appraisal`` feeds them the values of a cycle.

Scoring rules of an item (score 0–100, two decimals; ``None`` where the value is missing):

- ``linear`` {floor, target}: 0 at the floor, 100 at the target, straight in between, clamped;
  a floor above the target scores lower-is-better values (response minutes, repeat repairs);
- ``bands`` [{from, to, score}]: the score of the first band with from ≤ value < to (``None``
  = open end); a value in no band scores 0;
- ``points`` {base, per_event, cap}: base + per_event × value (a count of events), clamped to
  [0, cap or 100] — e.g. 100 − 20 per safety incident.

Total = Σ score × weight ÷ Σ weights of the items that have a score (a missing value spreads
its weight over the others). Grades: ``bands`` [{grade, min}] (the first whose min the total
reaches; below all: the last) or ``forced`` [{grade, percent}] from the top, by rank within the
group (ties keep the better grade).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

HUNDRED = Decimal(100)
CENT = Decimal("0.01")


def dec(v) -> Decimal | None:
    """A number as a Decimal with two decimals (``None`` stays ``None``)."""
    if v is None:
        return None
    return Decimal(str(v)).quantize(CENT, rounding=ROUND_HALF_UP)


def _clamp(x: Decimal, lo: Decimal = Decimal(0), hi: Decimal = HUNDRED) -> Decimal:
    return max(lo, min(hi, x))


def linear(value, floor, target) -> Decimal | None:
    if value is None:
        return None
    v, f, t = Decimal(str(value)), Decimal(str(floor)), Decimal(str(target))
    if f == t:
        raise ValueError("floor == target")
    return dec(_clamp((v - f) * HUNDRED / (t - f)))


def bands(value, table: list[dict]) -> Decimal | None:
    if value is None:
        return None
    v = Decimal(str(value))
    for b in table:
        lo, hi = b.get("from"), b.get("to")
        if (lo is None or v >= Decimal(str(lo))) and (hi is None or v < Decimal(str(hi))):
            return dec(_clamp(Decimal(str(b["score"]))))
    return Decimal("0.00")


def points(count, *, per_event, base=0, cap=None) -> Decimal | None:
    if count is None:
        return None
    x = Decimal(str(base or 0)) + Decimal(str(per_event)) * Decimal(str(count))
    return dec(_clamp(x, hi=HUNDRED if cap is None else Decimal(str(cap))))


def item_score(rule: str, params, value) -> Decimal | None:
    """The score of one item under its rule (``None`` where the value is missing)."""
    if rule == "linear":
        return linear(value, params["floor"], params["target"])
    if rule == "bands":
        return bands(value, params)
    if rule == "points":
        return points(value, per_event=params["per_event"], base=params.get("base", 0), cap=params.get("cap"))
    raise ValueError(rule)


def total(scored) -> Decimal | None:
    """Σ score × weight ÷ Σ weights over ``(score, weight)`` pairs whose score is not None."""
    num = den = Decimal(0)
    for score, weight in scored:
        if score is not None:
            num += Decimal(str(score)) * Decimal(str(weight))
            den += Decimal(str(weight))
    return dec(num / den) if den else None


def adjusted(base: Decimal | None, adjustment) -> Decimal | None:
    """A total with the calibration's adjustment, kept within 0–100."""
    if base is None:
        return None
    return dec(_clamp(base + Decimal(str(adjustment or 0))))


# ---------------------------------------------------------------- checking the rules' parameters

def _num(v) -> Decimal | None:
    if isinstance(v, bool) or not isinstance(v, int | float | Decimal | str):
        return None
    try:
        d = Decimal(str(v).strip())
    except ArithmeticError:
        return None
    return d if d.is_finite() else None


def params_problems(rule: str, params) -> list[str]:
    """What is wrong with a rule's parameters (message keys, empty when fine):
    ``linear_shape``, ``linear_equal``, ``bands_shape``, ``bands_order``, ``bands_score``,
    ``points_shape``, ``points_cap``."""
    if rule == "linear":
        if not isinstance(params, dict) or _num(params.get("floor")) is None or _num(params.get("target")) is None:
            return ["linear_shape"]
        return ["linear_equal"] if _num(params["floor"]) == _num(params["target"]) else []
    if rule == "bands":
        if not isinstance(params, list) or not params or not all(isinstance(b, dict) for b in params):
            return ["bands_shape"]
        out = []
        for b in params:
            lo, hi, sc = b.get("from"), b.get("to"), _num(b.get("score"))
            if (lo is not None and _num(lo) is None) or (hi is not None and _num(hi) is None) or sc is None:
                return ["bands_shape"]
            if lo is not None and hi is not None and _num(lo) >= _num(hi):
                out.append("bands_order")
            if not 0 <= sc <= 100:
                out.append("bands_score")
        return sorted(set(out))
    if rule == "points":
        if not isinstance(params, dict) or _num(params.get("per_event")) is None \
                or _num(params.get("base", 0)) is None:
            return ["points_shape"]
        cap = params.get("cap")
        if cap is not None and (_num(cap) is None or not 0 < _num(cap) <= 100):
            return ["points_cap"]
        return []
    return ["rule"]


# ---------------------------------------------------------------- ranks and grades

def ranks(totals: list) -> list[int | None]:
    """Competition ranks (1, 2, 2, 4) of the totals, highest first; ``None`` for no total."""
    order = sorted((t for t in totals if t is not None), reverse=True)
    first = {}
    for i, t in enumerate(order):
        first.setdefault(t, i + 1)
    return [None if t is None else first[t] for t in totals]


def grade_by_bands(total, table: list[dict]) -> str:
    """The first grade (by min, highest first) whose min the total reaches; below all: the lowest."""
    if total is None or not table:
        return ""
    table = sorted(table, key=lambda g: Decimal(str(g["min"])), reverse=True)
    for g in table:
        if Decimal(str(total)) >= Decimal(str(g["min"])):
            return g["grade"]
    return table[-1]["grade"]


def forced_quotas(n: int, table: list[dict]) -> list[tuple[str, int]]:
    """How many of ``n`` people each grade gets: cumulative shares rounded half up, so the
    counts add up to ``n`` (10 people at 20 / 70 / 10 % → 2, 7, 1)."""
    out, cum, given = [], 0.0, 0
    for g in table:
        cum += float(g["percent"])
        upto = min(n, math.floor(cum * n / 100 + 0.5))
        out.append((g["grade"], upto - given))
        given = upto
    if out and given < n:  # shares under 100 %: the rest in the lowest grade
        out[-1] = (out[-1][0], out[-1][1] + n - given)
    return out


def grade_forced(rank_list: list[int | None], table: list[dict]) -> list[str]:
    """Grades of a group by rank: the positions of ``forced_quotas`` in rank order; a tie takes
    the grade of its first position (the better one)."""
    n = sum(1 for r in rank_list if r is not None)
    by_position: list[str] = []
    for grade, count in forced_quotas(n, table):
        by_position += [grade] * count
    return ["" if r is None else by_position[r - 1] for r in rank_list]


def lowest_grade(mode: str, table: list[dict]) -> str:
    if not table:
        return ""
    if mode == "bands":
        return min(table, key=lambda g: Decimal(str(g["min"])))["grade"]
    return table[-1]["grade"]


# ---------------------------------------------------------------- bonus

def pool_shares(pool, totals: list) -> list[Decimal | None]:
    """pool × total ÷ Σ totals (cents, rounded half up); ``None`` for no total."""
    s = sum((Decimal(str(t)) for t in totals if t is not None), Decimal(0))
    if not s:
        return [None if t is None else Decimal("0.00") for t in totals]
    p = Decimal(str(pool))
    return [None if t is None else dec(p * Decimal(str(t)) / s) for t in totals]


def multiplier_bonus(base, multipliers: dict, grade: str) -> Decimal | None:
    """base × the grade's multiplier (0 for a grade without one); ``None`` without a grade."""
    if not grade:
        return None
    return dec(Decimal(str(base)) * Decimal(str(multipliers.get(grade, 0))))
