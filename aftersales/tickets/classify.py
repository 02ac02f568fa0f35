"""Triage of the customer's words (R-REQ, "fault-text triage"): the order type and the fault
category suggested from the problem text, so the agent confirms instead of choosing.

``suggest(text, category_code)`` is pure Python over an in-memory keyword table: the fault
categories' ``keywords`` (loaded once, kept five minutes, dropped when a fault category is
saved) and the words that mark an order type (``TYPE_WORDS``). It reads no database on a warm
cache and takes microseconds.

The rule: every keyword found in the text scores its length (longer words are more
specific; a word inside a longer word found too does not count twice). The best fault
category of the product category wins; a fault (a category without a suggested type) makes
the order a repair, a question category (安装咨询, 使用咨询) its own type. Type words add
their weights; the highest total wins, ties going to the more serious type (a complaint
before a return before a repair …). Confidence is the winner's share of all the scores,
damped when the evidence is thin.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass, field

from django.db.models.signals import m2m_changed, post_delete, post_save

from .fault_catalog import CODE_PATTERN_CATEGORY
from .models import FaultCategory, OrderType

T = OrderType

# Words that mark an order type, with their weights.
TYPE_WORDS: dict[str, dict[str, int]] = {
    T.COMPLAINT: {"投诉": 6, "不满意": 5, "差评": 5, "态度差": 5, "态度不好": 5, "举报": 5, "索赔": 4, "太差": 3,
                  "一直没人": 3, "没人管": 3, "没人处理": 3, "修了好几次": 3, "多次维修": 3, "还没修好": 3},
    T.RETURN_EXCHANGE: {"退货": 6, "换货": 6, "退换": 6, "退款": 5, "换一台": 5, "换新机": 5, "要求换": 4},
    T.RECYCLING: {"回收": 6, "以旧换新": 7, "旧机": 4, "报废": 4, "旧家电": 5},
    T.INSTALLATION: {"安装": 3, "装机": 4, "移机": 4, "拆机": 3, "上门安装": 5, "预约安装": 5},
    T.DELIVERY: {"送货": 5, "配送": 5, "送到": 3, "到货": 3, "物流": 4, "快递": 3, "什么时候送": 5},
    T.MAINTENANCE: {"保养": 5, "清洗": 4, "清洁": 3, "深度清洗": 5, "除垢": 4, "维护": 3},
    T.CONSULTATION: {"咨询": 4, "请问": 2, "怎么": 1, "如何": 1, "怎样": 1, "能不能": 1, "可以吗": 1, "是否": 1,
                     "多少钱": 2, "价格": 2, "保修期": 3, "三包": 2},
}
# Ties go to the first of these.
TYPE_ORDER = [T.COMPLAINT, T.RETURN_EXCHANGE, T.RECYCLING, T.REPAIR, T.INSTALLATION, T.MAINTENANCE, T.DELIVERY,
              T.CONSULTATION]
FAULT_WEIGHT = 4  # what a found fault adds to "repair"
QUESTION_WEIGHT = 3  # what a found question category adds to its type
CODE_WEIGHT = 3  # an error code in the text (E1, F2, CH05 …)
SURE_AT = 6  # a winning score from which the evidence counts as strong
TEXT_MAX = 2000

_CODE = re.compile(r"(?<![a-z0-9])[a-z]{1,2}\d{1,3}(?![a-z0-9])")


def _norm(s: str) -> str:
    """Full-width to half-width, lower case: ＥＲ１ → er1."""
    return unicodedata.normalize("NFKC", s or "").lower()


@dataclass(frozen=True)
class Suggestion:
    type: str | None
    fault_category_code: str | None
    confidence: float
    matched_keywords: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    id: int
    code: str
    name: str
    suggests_type: str
    categories: frozenset
    keywords: tuple[str, ...]


# ---------------------------------------------------------------- the cached table

_CACHE_SECONDS = 300
_cache: dict = {}


def clear_cache(**_kw) -> None:
    _cache.clear()


def keywords_of(text: str) -> list[str]:
    """The keywords of a fault category, separated by commas (either width), 、 or ;."""
    return [k.strip() for k in re.split(r"[,，、;；\n]+", text or "") if k.strip()]


def _rows() -> list[_Row]:
    hit = _cache.get("rows")
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    rows = []
    for fc in FaultCategory.objects.prefetch_related("categories").order_by("code"):
        words = [_norm(k) for k in keywords_of(fc.keywords)]
        rows.append(_Row(fc.pk, fc.code, fc.name, fc.suggests_type, frozenset(c.code for c in fc.categories.all()),
                         tuple(dict.fromkeys(w for w in words if w))))
    _cache["rows"] = (time.monotonic() + _CACHE_SECONDS, rows)
    _cache["by_code"] = {r.code: r for r in rows}
    _cache["by_id"] = {r.id: r for r in rows}
    return rows


def _index(key: str) -> dict:
    _rows()
    return _cache[key]


def fault_category(code: str | None) -> _Row | None:
    """The fault category ``code`` from the table (None if there is none)."""
    pk = fault_category_id(code)
    return _index("by_id").get(pk) if pk is not None else None


def fault_category_id(code: str | None) -> int | None:
    """The id of the fault category ``code`` (None if there is none)."""
    if not code:
        return None
    row = _index("by_code").get(str(code).strip())
    if row is not None:
        return row.id
    pk = FaultCategory.objects.filter(code=str(code).strip()).values_list("pk", flat=True).first()
    if pk is not None:
        clear_cache()  # created since the table was loaded
    return pk


def fault_category_code(pk: int | None) -> str | None:
    if pk is None:
        return None
    row = _index("by_id").get(pk)
    if row is not None:
        return row.code
    code = FaultCategory.objects.filter(pk=pk).values_list("code", flat=True).first()
    if code is not None:
        clear_cache()
    return code


def fault_categories_for(category_code: str | None) -> list[_Row]:
    """The fault categories of a product category (all of them when it has none linked):
    those linked to it and those linked to no category."""
    rows = _rows()
    if not category_code:
        return rows
    if not any(category_code in r.categories for r in rows):
        return rows
    return [r for r in rows if category_code in r.categories or not r.categories]


# ---------------------------------------------------------------- the rule

def _found(text: str, words) -> list[str]:
    """The words found in ``text``, without those inside a longer word also found."""
    hits = [w for w in words if w in text]
    return [w for w in hits if not any(w != o and w in o for o in hits)]


def suggest(text: str, category_code: str | None = None) -> Suggestion:
    """The order type and fault category the words of ``text`` suggest, for a unit of the
    product category ``category_code`` (any, when not given)."""
    t = _norm(text)[:TEXT_MAX]
    if not t.strip():
        return Suggestion(None, None, 0.0, [])
    matched: list[str] = []

    best: dict[bool, tuple] = {}  # question or fault → (score, -position of the first word, row)
    codes = _CODE.findall(t)
    for row in fault_categories_for(category_code):
        hits = _found(t, row.keywords)
        score = sum(len(w) for w in hits)
        if row.code == CODE_PATTERN_CATEGORY and codes:
            hits += [c for c in codes if c not in hits]
            score += CODE_WEIGHT
        if not score:
            continue
        key = (score, -min(t.find(w) for w in hits))  # ties: what the customer names first
        question = bool(row.suggests_type)
        if question not in best or key > best[question][:2]:
            best[question] = (*key, row)
        matched += hits
    best_fault = best[False][2] if False in best else None
    best_fault_score = best[False][0] if False in best else 0
    best_question = best[True][2] if True in best else None

    scores: dict[str, int] = {}
    type_hits = _found(t, {w for words in TYPE_WORDS.values() for w in words})
    for kind, words in TYPE_WORDS.items():
        for w in type_hits:
            if w in words:
                scores[kind] = scores.get(kind, 0) + words[w]
    matched += type_hits

    fault = best_fault or best_question
    if best_fault is not None:
        scores[T.REPAIR] = scores.get(T.REPAIR, 0) + FAULT_WEIGHT + (1 if best_fault_score >= 4 else 0)
    elif best_question is not None:
        kind = best_question.suggests_type
        scores[kind] = scores.get(kind, 0) + QUESTION_WEIGHT

    words = sorted(dict.fromkeys(matched), key=lambda w: (t.find(w), -len(w)))
    if not scores:
        return Suggestion(None, fault.code if fault else None, 0.0, words)
    top = max(scores.values())
    kind = next(k for k in TYPE_ORDER if scores.get(k) == top)
    confidence = round(top / sum(scores.values()) * min(1.0, top / SURE_AT), 2)
    return Suggestion(str(kind), fault.code if fault else None, confidence, words)


post_save.connect(clear_cache, sender=FaultCategory, dispatch_uid="tickets.classify.saved")
post_delete.connect(clear_cache, sender=FaultCategory, dispatch_uid="tickets.classify.deleted")
m2m_changed.connect(clear_cache, sender=FaultCategory.categories.through, dispatch_uid="tickets.classify.linked")
