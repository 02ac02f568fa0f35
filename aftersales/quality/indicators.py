"""The service-quality indicators (R-Q-1, R-FB-2, R-SLA-2): one registry, one formula each.

Everything the dashboards, reports, appraisal and improvement actions show is computed here
from **measures**: additive sums over the orders of a cell (node × period × breakdown), kept
per order in ``OrderFact`` and summed into ``Aggregate`` (see ``facts.py``). An indicator is a
formula over those sums, so a figure for a centre or a quarter is the same formula over the
summed measures of its outlets or months — never an average of averages. The formulas are
written out again, for people, in ``docs/indicators.md`` (a test keeps the two in step).

Period: an order belongs to the day (week, month …) it was *received* (``created_at``, local
time); all its later facts — response, resolution, survey, cost — count in that period.

Percentiles (p50/p90) are read off a histogram with the fixed edges below, interpolated
linearly inside the bucket (the resolution of a figure is its bucket's width); the histogram is
a sum like any other measure, so percentiles roll up the tree and over periods exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

# ---------------------------------------------------------------- measures

# Histogram edges, in minutes. Bucket i holds values in [edge[i-1], edge[i]); the last bucket
# is open (≥ the last edge).
RESPONSE_EDGES = (15, 30, 60, 120, 240, 480, 720, 1440, 2880, 4320, 7200, 10080)
CYCLE_EDGES = (60, 240, 480, 720, 1440, 2160, 2880, 4320, 7200, 10080, 20160, 43200)
RESP_BUCKETS = tuple(f"resp_h{i:02d}" for i in range(len(RESPONSE_EDGES) + 1))
CYC_BUCKETS = tuple(f"cyc_h{i:02d}" for i in range(len(CYCLE_EDGES) + 1))

SAT_DIMS = ("timeliness", "attitude", "professionalism", "result", "overall")

# Additive integer measures: one value per order in OrderFact, summed in Aggregate.
COUNTS: tuple[str, ...] = (
    "orders",              # received, not cancelled
    "cancelled",           # received and cancelled
    "responded",           # first response made (answer, dispatch or transfer)
    "response_min",        # minutes from receipt to first response (responded orders)
    "response_on_time",    # first response no later than its deadline
    "handled_24h",         # first handling (arrival on site, or the answer) within 24 h of receipt
    "resolved",            # completed, in call-back or closed (answered at first contact included)
    "resolve_min",         # minutes from receipt to resolution (resolved orders)
    "resolved_48h",        # resolved within 48 h of receipt
    "solved_24h",          # resolved within 24 h of the first response
    "visited",             # resolved with at least one visit on site
    "ftf",                 # visited, exactly one visit, not reopened within 30 days of completion
    "repeat_base",         # resolved repair orders with a unit and a fault category
    "repeat_30",           # … followed by a repair of the same unit and fault category within 30 days
    "repeat_90",           # … within 90 days
    "repairs",             # repair orders received (not cancelled)
    "complaints",          # complaint orders received (not cancelled)
    "complaint_in_time",   # complaints resolved within their resolution deadline
    "norm_checked",        # visited orders whose service-norm checklist was answered
    "norm_ok",             # visited orders whose checklist had every item met
    "response_breached",   # response deadline missed
    "resolve_breached",    # resolution deadline missed
    "breached",            # either deadline missed
    "sat_n",               # surveys answered
    *[f"sat_{d}_sum" for d in SAT_DIMS],
    *[f"sat_{d}_ge4" for d in SAT_DIMS],   # answers scoring 4 or 5
    *RESP_BUCKETS,
    *CYC_BUCKETS,
)
# Not additive: combined with MIN / MAX.
MINS: tuple[str, ...] = tuple(f"sat_{d}_min" for d in SAT_DIMS)
MAXES: tuple[str, ...] = tuple(f"sat_{d}_max" for d in SAT_DIMS)
# Money (yuan, two decimals), additive.
MONEY: tuple[str, ...] = ("cost",)
MEASURES: tuple[str, ...] = COUNTS + MINS + MAXES + MONEY
# From outside the orders, joined by node and month (sales) or model and month (units sold).
EXTERNAL = ("sales", "units_sold")


def empty() -> dict:
    d = dict.fromkeys(COUNTS, 0)
    d.update(dict.fromkeys(MINS + MAXES))
    d["cost"] = Decimal("0.00")
    d["sales"] = None
    d["units_sold"] = None
    return d


def combine(a: dict, b: dict) -> dict:
    """The measures of two cells together (used where rows are already in Python, e.g. tests)."""
    out = dict(a)
    for k in COUNTS:
        out[k] = (a.get(k) or 0) + (b.get(k) or 0)
    for k in MINS:
        vals = [v for v in (a.get(k), b.get(k)) if v is not None]
        out[k] = min(vals) if vals else None
    for k in MAXES:
        vals = [v for v in (a.get(k), b.get(k)) if v is not None]
        out[k] = max(vals) if vals else None
    out["cost"] = (a.get("cost") or Decimal(0)) + (b.get("cost") or Decimal(0))
    for k in EXTERNAL:
        if a.get(k) is None and b.get(k) is None:
            out[k] = None
        else:
            out[k] = (a.get(k) or 0) + (b.get(k) or 0)
    return out


def percentile(counts: list[int], edges: tuple[int, ...], q: float) -> float | None:
    """The q-quantile (0 < q < 1) of a histogram, interpolated linearly inside its bucket.
    Values in the open last bucket are reported as its lower edge."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    cum = 0
    for i, c in enumerate(counts):
        if c and cum + c >= rank:
            lo = edges[i - 1] if i > 0 else 0
            if i >= len(edges):
                return float(lo)
            hi = edges[i]
            return lo + (hi - lo) * (rank - cum) / c
        cum += c
    return float(edges[-1])


# ---------------------------------------------------------------- indicators

HIGHER, LOWER = "higher", "lower"


@dataclass(frozen=True)
class Indicator:
    code: str
    label: str
    unit: str                  # "%", "min", "h", "score", "count", "‰"
    better: str | None         # HIGHER, LOWER or None (a volume)
    formula: str               # for people; the same text is in docs/indicators.md
    num: str | None = None     # measure over …
    den: str | None = None     # … measure (× scale)
    scale: float = 1.0
    hist: str | None = None    # "resp" or "cyc": a percentile of that histogram
    q: float | None = None
    divisor: float = 1.0       # of a percentile's minutes (60 for hours)
    target: float | None = None   # the default target (a node may set its own)
    amber: float | None = None    # how far from the target still counts as amber
    group: str = ""
    # Drill-down: the orders behind the figure are OrderFact rows where ``population`` holds;
    # "the ones that count against it" further satisfy ``against`` (field → value).
    population: dict = field(default_factory=dict)
    against: dict = field(default_factory=dict)
    decimals: int = 1

    def value(self, m: dict) -> float | None:
        """The indicator from a cell's measures (None where it is undefined, e.g. 0 ÷ 0)."""
        if self.hist:
            buckets, edges = (RESP_BUCKETS, RESPONSE_EDGES) if self.hist == "resp" else (CYC_BUCKETS, CYCLE_EDGES)
            p = percentile([m.get(b) or 0 for b in buckets], edges, self.q)
            return None if p is None else round(p / self.divisor, self.decimals)
        if self.code == "sla_breaches":
            return float(m.get("breached") or 0)
        if self.code == "orders":
            return float(m.get("orders") or 0)
        num = m.get(self.num)
        den = m.get(self.den) if self.den else 1
        if num is None or not den:
            return None
        return round(float(num) * self.scale / float(den), self.decimals)

    def status(self, value: float | None, target: float | None = None, amber: float | None = None) -> str:
        """green / amber / red against the target ("" where there is none or no value)."""
        target = self.target if target is None else target
        amber = self.amber if amber is None else amber
        if value is None or target is None or self.better is None:
            return ""
        gap = (value - target) if self.better == HIGHER else (target - value)
        if gap >= 0:
            return "green"
        return "amber" if gap >= -(amber or 0) else "red"


def _sat(dim: str, label, target=4.5) -> Indicator:
    return Indicator(f"sat_{dim}", label, "score", HIGHER,
                     _("已评价问卷的“%(dim)s”得分之和 ÷ 已评价问卷数（1–5 分）") % {"dim": label},
                     num=f"sat_{dim}_sum", den="sat_n", target=target, amber=0.3, group="satisfaction",
                     population={"sat_n__gt": 0}, against={f"sat_{dim}_min__lt": 4}, decimals=2)


INDICATORS: dict[str, Indicator] = {i.code: i for i in [
    Indicator("orders", _("受理工单量"), "count", None, _("期间受理的工单数（不含已取消）"), group="volume",
              population={"orders": 1}, decimals=0),
    Indicator("response_mean", _("平均响应时长"), "min", LOWER,
              _("已响应工单从受理到首次响应（解答、派工或转派）的分钟数之和 ÷ 已响应工单数"),
              num="response_min", den="responded", target=60, amber=30, group="response",
              population={"responded": 1}, against={"response_on_time": 0}),
    Indicator("response_p50", _("响应时长中位数"), "min", LOWER,
              _("已响应工单响应时长的第 50 百分位（按直方图分桶线性插值）"), hist="resp", q=0.5, group="response",
              population={"responded": 1}, against={"response_on_time": 0}),
    Indicator("response_p90", _("响应时长 P90"), "min", LOWER,
              _("已响应工单响应时长的第 90 百分位（按直方图分桶线性插值）"), hist="resp", q=0.9, group="response",
              population={"responded": 1}, against={"response_on_time": 0}),
    Indicator("response_on_time_rate", _("响应及时率"), "%", HIGHER,
              _("在响应时限内首次响应的工单数 ÷ 已响应工单数 × 100%"),
              num="response_on_time", den="responded", scale=100, target=95, amber=5, group="response",
              population={"responded": 1}, against={"response_on_time": 0}),
    Indicator("handled_24h_rate", _("24小时首次处理率"), "%", HIGHER,
              _("受理后 24 小时内首次处理（技师到达现场，或首问解答）的工单数 ÷ 受理工单数 × 100%"),
              num="handled_24h", den="orders", scale=100, target=90, amber=5, group="response",
              population={"orders": 1}, against={"handled_24h": 0}),
    Indicator("resolved_48h_rate", _("48小时解决率"), "%", HIGHER,
              _("受理后 48 小时内解决的工单数 ÷ 受理工单数 × 100%"),
              num="resolved_48h", den="orders", scale=100, target=85, amber=5, group="resolution",
              population={"orders": 1}, against={"resolved_48h": 0}),
    Indicator("solved_24h_rate", _("首次响应后24小时解决率"), "%", HIGHER,
              _("首次响应后 24 小时内解决的工单数 ÷ 已响应工单数 × 100%；规则：≥ 90%"),
              num="solved_24h", den="responded", scale=100, target=90, amber=5, group="resolution",
              population={"responded": 1}, against={"solved_24h": 0}),
    Indicator("resolution_rate", _("问题解决率"), "%", HIGHER,
              _("已解决（完工、回访中或已关闭）的工单数 ÷ 受理工单数 × 100%"),
              num="resolved", den="orders", scale=100, target=90, amber=5, group="resolution",
              population={"orders": 1}, against={"resolved": 0}),
    Indicator("ftf_rate", _("一次修复率"), "%", HIGHER,
              _("只上门一次、且完工后 30 天内未重开的工单数 ÷ 已解决且有上门的工单数 × 100%"),
              num="ftf", den="visited", scale=100, target=85, amber=5, group="resolution",
              population={"visited": 1}, against={"ftf": 0}),
    Indicator("repeat_30_rate", _("30天二次返修率"), "%", LOWER,
              _("完工后 30 天内同一机器同一故障类别再次报修的维修工单数 ÷ 有机器和故障类别的已解决维修工单数 × 100%"),
              num="repeat_30", den="repeat_base", scale=100, target=3, amber=2, group="resolution",
              population={"repeat_base": 1}, against={"repeat_30": 1}),
    Indicator("repeat_90_rate", _("90天二次返修率"), "%", LOWER,
              _("完工后 90 天内同一机器同一故障类别再次报修的维修工单数 ÷ 有机器和故障类别的已解决维修工单数 × 100%"),
              num="repeat_90", den="repeat_base", scale=100, target=6, amber=3, group="resolution",
              population={"repeat_base": 1}, against={"repeat_90": 1}),
    Indicator("repairs_per_1000", _("千台返修数"), "‰", LOWER,
              _("期间受理的维修工单数 ÷ 截至期末累计销售台数 × 1000（按型号）"),
              num="repairs", den="units_sold", scale=1000, target=None, group="product",
              population={"repairs": 1}, decimals=2),
    _sat("overall", _("总体满意度")),
    _sat("timeliness", _("及时性")),
    _sat("attitude", _("服务态度")),
    _sat("professionalism", _("专业水平")),
    _sat("result", _("处理结果")),
    Indicator("satisfaction_share", _("满意率"), "%", HIGHER,
              _("总体评价 ≥ 4 分的问卷数 ÷ 已评价问卷数 × 100%"),
              num="sat_overall_ge4", den="sat_n", scale=100, target=90, amber=5, group="satisfaction",
              population={"sat_n__gt": 0}, against={"sat_overall_min__lt": 4}),
    Indicator("complaint_rate", _("投诉率（每百单）"), "%", LOWER,
              _("期间受理的投诉工单数 ÷ 受理工单数 × 100"),
              num="complaints", den="orders", scale=100, target=2, amber=1, group="complaints",
              population={"complaints": 1}),
    Indicator("complaint_in_time_rate", _("投诉及时处理率"), "%", HIGHER,
              _("在解决时限内解决的投诉工单数 ÷ 投诉工单数 × 100%"),
              num="complaint_in_time", den="complaints", scale=100, target=95, amber=5, group="complaints",
              population={"complaints": 1}, against={"complaint_in_time": 0}),
    Indicator("norm_compliance_rate", _("服务规范执行率"), "%", HIGHER,
              _("完工时服务规范检查表逐项达标的工单数 ÷ 已解决且有上门的工单数 × 100%（未填写视为未达标）"),
              num="norm_ok", den="visited", scale=100, target=95, amber=5, group="norms",
              population={"visited": 1}, against={"norm_ok": 0}),
    Indicator("cost_share", _("服务成本占销售额比"), "%", LOWER,
              _("期间受理工单的服务成本（配件、人工、交通、备用机）之和 ÷ 同期同范围销售额 × 100%；目标 ≤ 10%"),
              num="cost", den="sales", scale=100, target=10, amber=2, group="cost",
              population={"orders": 1}, decimals=2),
    Indicator("cycle_p50", _("服务周期中位数"), "h", LOWER,
              _("已解决工单从受理到解决的小时数的第 50 百分位（直方图插值）"),
              hist="cyc", q=0.5, divisor=60, target=24, amber=12, group="resolution",
              population={"resolved": 1}, against={"resolved_48h": 0}),
    Indicator("cycle_p90", _("服务周期 P90"), "h", LOWER,
              _("已解决工单从受理到解决的小时数的第 90 百分位（直方图插值）"),
              hist="cyc", q=0.9, divisor=60, target=72, amber=24, group="resolution",
              population={"resolved": 1}, against={"resolved_48h": 0}),
    Indicator("sla_breaches", _("超时工单数"), "count", LOWER,
              _("响应或解决时限至少一项超时的工单数"), group="sla",
              population={"breached": 1}, decimals=0),
]}

GROUPS = {
    "volume": _("工单量"), "response": _("响应"), "resolution": _("解决"), "satisfaction": _("满意度"),
    "complaints": _("投诉"), "norms": _("服务规范"), "cost": _("成本"), "product": _("产品质量"), "sla": _("时限"),
}

# The breakdowns the pre-aggregates keep, besides the whole node ("").
DIMS = ("assignee", "category", "model", "fault", "channel", "type", "slot")
DIM_LABELS = {
    "": _("合计"), "assignee": _("技师"), "category": _("产品品类"), "model": _("型号"), "fault": _("故障类别"),
    "channel": _("渠道"), "type": _("工单类型"), "slot": _("受理时段（星期×小时）"),
}
GRAINS = ("day", "week", "month", "quarter", "year")
# What follows a value of each unit when it is shown ("96.5%", "38 分钟").
UNIT_SUFFIX = {"%": "%", "‰": "‰", "min": pgettext_lazy("unit", " 分钟"), "h": pgettext_lazy("unit", " 小时"),
               "score": pgettext_lazy("unit", " 分"), "count": ""}


def get(code: str) -> Indicator:
    return INDICATORS[code]
