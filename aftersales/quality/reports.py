"""Service-quality reports (服务质量月报 / 季报 / 年报) of a node's subtree: a PDF in Chinese with
charts, and an Excel workbook with the same figures and native charts.

- ``report_request``: the on-demand request (``quality.view`` over the node). One report per
  kind × period × node: asking again returns the one there is (``rebuild`` builds it anew).
  The build runs in the background once the request commits (``start_build``): a Celery worker when a
  broker is configured, else a daemon thread of the web process, like the imports.
- ``build``: collects the figures (all from ``selectors.cells`` / ``values``: the indicator
  registry's formulas over the pre-aggregates), writes the PDF and the workbook, and records its
  progress and outcome on the ``Report`` row (queued → running → done / failed with the error).
- ``build_scheduled``: the hourly job: HQ's and every centre's report of the month that has just
  ended (of the quarter in the month after a quarter ends, of the year in January), built where
  missing; idempotent.

The PDF embeds the CJK TrueType font the receipts use (``charges.receipt.cjk_font_path``: a
subset in a ``FontFile2`` stream); every text, the charts' labels included, is set in it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from dataclasses import dataclass, field
from io import BytesIO
from xml.sax.saxutils import escape

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import DomainError, NotFound, ValidationFailed
from aftersales.org.models import Node, NodeKind
from aftersales.org.roles import Perm
from aftersales.org.scope import scoped
from aftersales.records.audit import audit_record

from . import indicators, selectors
from .indicators import HIGHER, INDICATORS, SAT_DIMS, UNIT_SUFFIX, Indicator
from .models import Action, ActionStatus, Report, ReportKind, ReportStatus

logger = logging.getLogger(__name__)

GRAIN = {ReportKind.MONTHLY: "month", ReportKind.QUARTERLY: "quarter", ReportKind.ANNUAL: "year"}
TITLES = {ReportKind.MONTHLY: _("售后服务质量月报"), ReportKind.QUARTERLY: _("售后服务质量季报"),
          ReportKind.ANNUAL: _("售后服务质量年报")}
TREND_MONTHS = {ReportKind.MONTHLY: 12, ReportKind.QUARTERLY: 12, ReportKind.ANNUAL: 24}
# The key indicators of the trend charts and of the rankings.
TREND_RATES = ("resolution_rate", "response_on_time_rate", "resolved_48h_rate", "ftf_rate", "satisfaction_share")
UNIT_CODES = ("orders", "response_on_time_rate", "resolved_48h_rate", "resolution_rate", "ftf_rate",
              "repeat_30_rate", "sat_overall", "complaint_rate", "sla_breaches")
SAT_LABELS = {d: INDICATORS[f"sat_{d}"].label for d in SAT_DIMS}
ACTIONS_LISTED = 30
STALE_AFTER = dt.timedelta(hours=2)
LIST_ORDERING = ["-period_start", "-id"]


# ---------------------------------------------------------------- periods

def period_of(kind: str, d: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of the report period of ``kind`` containing ``d``."""
    return selectors.period_start(GRAIN[kind], d), selectors.period_end(GRAIN[kind], d)


def period_label(kind: str, start: dt.date) -> str:
    if kind == ReportKind.MONTHLY:
        return _t("%(year)d年%(month)d月") % {"year": start.year, "month": start.month}
    if kind == ReportKind.QUARTERLY:
        return _t("%(year)d年第%(quarter)d季度") % {"year": start.year, "quarter": (start.month - 1) // 3 + 1}
    return _t("%(year)d年度") % {"year": start.year}


def report_title(report: Report) -> str:
    """E.g. "华东服务中心 2026年10月 售后服务质量月报"."""
    return f"{report.node.name} {period_label(report.kind, report.period_start)} {TITLES[report.kind]}"


PERIOD_RE = re.compile(r"^(?P<y>\d{4})(?:-(?P<m>\d{1,2})(?:-(?P<d>\d{1,2}))?|-?[Qq](?P<q>[1-4]))?$")


def parse_period(kind: str, text) -> dt.date | None:
    """A day inside the period meant by ``text``: "2026-10" (a month, or the quarter / year it is
    in), "2026-Q4", "2026" (a year: annual reports only), "2026-10-15"; None when unreadable."""
    if isinstance(text, dt.date):
        return text
    m = PERIOD_RE.match(str(text or "").strip())
    if m is None:
        return None
    year = int(m["y"])
    if m["q"]:
        if kind == ReportKind.MONTHLY:
            return None
        month = (int(m["q"]) - 1) * 3 + 1
    elif m["m"]:
        month = int(m["m"])
    elif kind == ReportKind.ANNUAL:
        month = 1
    else:
        return None
    try:
        return dt.date(year, month, int(m["d"] or 1))
    except ValueError:
        return None


# ---------------------------------------------------------------- reads

def reports_visible(user):
    """The reports of the nodes within the user's ``quality.view`` scope, newest period first."""
    qs = Report.objects.select_related("node", "requested_by").order_by(*LIST_ORDERING)
    return scoped(qs, user, Perm.QUALITY_VIEW)


def report_get(user, report_id: int) -> Report:
    r = reports_visible(user).filter(pk=report_id).first()
    if r is None:
        raise NotFound()
    return r


def report_file(user, report_id: int, fmt: str):
    """The built file (``pdf`` / ``xlsx``) of a report within scope, and the name to download it as."""
    r = report_get(user, report_id)
    f = r.pdf if fmt == "pdf" else r.xlsx
    if r.status != ReportStatus.DONE or not f:
        raise NotFound(_("报告尚未生成。"))
    return f, f"{report_title(r).replace(' ', '_')}.{fmt}"


# ---------------------------------------------------------------- requests

@dataclass
class Requested:
    report: Report
    queued: bool  # a build was started (False: the report there is was returned as it stands)


def report_request(*, user, kind: str, period, node_id: int | None = None, rebuild: bool = False) -> Requested:
    """Ask for the report of ``kind`` for the period ``period`` (see ``parse_period``; a past
    or the current period) of ``node_id`` (default: the user's top node). 404 for a node out of
    the user's scope; 400 naming the bad fields."""
    node = selectors.node_for(user, node_id)
    errors: dict[str, list] = {}
    start = None
    if kind not in ReportKind.values:
        errors["kind"] = [_("报告类型无效，可选：月报（monthly）、季报（quarterly）、年报（annual）。")]
    else:
        day = parse_period(kind, period)
        if day is None or day.year < 2000:
            errors["period"] = [_("期间格式无效：月报如 2026-10，季报如 2026-Q3 或 2026-07，年报如 2026。")]
        else:
            start, _end = period_of(kind, day)
            if start > selectors.period_start(GRAIN[kind], timezone.localdate()):
                errors["period"] = [_("该期间尚未开始，只能生成已结束或当前期间的报告。")]
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        report, queued = _queue(kind=kind, start=start, node=node, user=user, rebuild=rebuild)
        if queued:
            audit_record(actor=user, action="quality.report_request", obj=report, before=None,
                         after={"kind": kind, "period_start": start, "node": node.pk, "rebuild": bool(rebuild)},
                         node_id=node.pk)
            pk = report.pk
            transaction.on_commit(lambda: start_build(pk))
    return Requested(report, queued)


def _queue(*, kind: str, start: dt.date, node: Node, user=None, rebuild: bool = False,
           scheduled: bool = False) -> tuple[Report, bool]:
    """The report of kind × period × node, queued for a build unless it is done (and no
    rebuild is asked for) or already queued or running. Serialised per node."""
    Node.objects.select_for_update().filter(pk=node.pk).first()
    report = Report.objects.filter(kind=kind, period_start=start, node=node).order_by("-id").first()
    if report is None:
        _s, end = period_of(kind, start)
        report = Report.objects.create(kind=kind, period_start=start, period_end=end, node=node,
                                       requested_by=user, scheduled=scheduled)
        return report, True
    busy = report.status in (ReportStatus.QUEUED, ReportStatus.RUNNING)
    if busy or (report.status == ReportStatus.DONE and not rebuild):
        return report, False
    report.status, report.progress, report.error = ReportStatus.QUEUED, 0, ""
    report.created_at = timezone.now()
    if user is not None:
        report.requested_by = user
    report.save(update_fields=["status", "progress", "error", "created_at", "requested_by"])
    return report, True


def start_build(report_id: int) -> None:
    """Hand the build to a worker: Celery when a broker is configured, else a daemon thread of
    this process (the embedded server). Tests replace this to build where they want."""
    from .tasks import report_build_task

    if settings.CELERY_BROKER_URL:
        report_build_task.delay(report_id)
    else:
        threading.Thread(target=_build_in_thread, args=(report_id,), name=f"quality-report-{report_id}",
                         daemon=True).start()


def _build_in_thread(report_id: int) -> None:
    try:
        build(report_id)
    finally:
        connections.close_all()  # this thread's connections


# ---------------------------------------------------------------- building

def _progress(report_id: int, percent: int) -> None:
    Report.objects.filter(pk=report_id).update(progress=percent)


def build(report_id: int) -> Report | None:
    """Build a queued report: its PDF and workbook, with progress on the row. A report that is
    not queued (taken by another worker, done) is left alone. Failures are recorded on the row."""
    if not Report.objects.filter(pk=report_id, status=ReportStatus.QUEUED).update(
            status=ReportStatus.RUNNING, progress=1, error=""):
        return Report.objects.filter(pk=report_id).first()
    report = Report.objects.select_related("node").get(pk=report_id)
    try:
        from . import excel

        with translation.override("zh-hans"):
            data = collect(report, progress=lambda p: _progress(report_id, p))
            pdf = render_pdf(data)
            _progress(report_id, 80)
            xlsx = excel.workbook(data)
        _progress(report_id, 95)
        for f in (report.pdf, report.xlsx):
            if f:
                f.delete(save=False)
        stem = get_valid_filename(f"quality-{report.node.code}-{report.kind}-{report.period_start:%Y%m}")
        report.pdf.save(f"{stem}.pdf", ContentFile(pdf), save=False)
        report.xlsx.save(f"{stem}.xlsx", ContentFile(xlsx), save=False)
        Report.objects.filter(pk=report_id).update(status=ReportStatus.DONE, progress=100, pdf=report.pdf.name,
                                                   xlsx=report.xlsx.name, built_at=timezone.now(), error="")
    except Exception as e:  # recorded on the row for the page; the worker has nobody else to tell
        logger.exception("quality report %s failed", report_id)
        message = str(e.message) if isinstance(e, DomainError) else f"{type(e).__name__}: {e}"
        Report.objects.filter(pk=report_id).update(status=ReportStatus.FAILED, error=message[:500])
    return Report.objects.get(pk=report_id)


def build_scheduled(today: dt.date | None = None) -> list[int]:
    """Ensure HQ's and each centre's report of the month that has just ended (in the month after
    a quarter: of that quarter; in January: of the year) exists, building the missing or failed
    ones here, one after the other. Reports stuck queued or running for ``STALE_AFTER`` (their
    process died) are marked failed first. Returns the ids built."""
    today = today or timezone.localdate()
    cutoff = timezone.now() - STALE_AFTER
    Report.objects.filter(status__in=[ReportStatus.QUEUED, ReportStatus.RUNNING], created_at__lt=cutoff).update(
        status=ReportStatus.FAILED, error=_t("报告生成已中断（处理进程停止），请重新生成。"))
    kinds = [ReportKind.MONTHLY]
    if today.month in (1, 4, 7, 10):
        kinds.append(ReportKind.QUARTERLY)
    if today.month == 1:
        kinds.append(ReportKind.ANNUAL)
    nodes = list(Node.objects.filter(kind__in=[NodeKind.HQ, NodeKind.CENTRE], active=True).order_by("path"))
    queued = []
    for kind in kinds:
        start, _end = period_of(kind, period_of(kind, today)[0] - dt.timedelta(days=1))
        for node in nodes:
            with transaction.atomic():
                report, new = _queue(kind=kind, start=start, node=node, scheduled=True)
            if new:
                queued.append(report.pk)
    for pk in queued:
        build(pk)
    return queued


# ---------------------------------------------------------------- the figures

@dataclass
class Line:
    """One indicator of the summary: this period, the previous one, the target and the status."""

    ind: Indicator
    value: float | None
    prev: float | None
    target: float | None
    amber: float | None
    status: str

    @property
    def change(self) -> float | None:
        if self.value is None or self.prev is None:
            return None
        return round(self.value - self.prev, self.ind.decimals)

    @property
    def gain(self) -> float | None:
        """The change in the better direction, relative to the previous value."""
        c = self.change
        if c is None or self.ind.better is None or not self.prev:
            return None
        return (c if self.ind.better == HIGHER else -c) / abs(self.prev)


@dataclass
class Unit:
    """One row of a breakdown (a child node, a technician, a product category)."""

    name: str
    values: dict
    status: dict

    @property
    def greens(self) -> int:
        return sum(1 for s in self.status.values() if s == "green")

    @property
    def reds(self) -> int:
        return sum(1 for s in self.status.values() if s == "red")


@dataclass
class Sat:
    label: str
    mean: float | None
    low: int | None
    high: int | None
    share: float | None


@dataclass
class Data:
    report: Report
    title: str
    company: str
    period: str
    built_at: dt.datetime
    ongoing: bool                      # the period has not ended yet
    lines: list[Line]
    current: dict                      # this period's measures
    months: list[dt.date]
    trend: dict                        # month → {code: value}
    units_title: str
    units: list[Unit]
    categories: list[Unit]
    satisfaction: list[Sat]
    raised: list
    done: list
    overdue: list
    counts: dict = field(default_factory=dict)  # raised / done / overdue
    summary: list[str] = field(default_factory=list)

    @property
    def node(self) -> Node:
        return self.report.node


def _share(dim: str) -> Indicator:
    """The share of answers scoring 4 or 5 on one survey dimension, as a registry formula."""
    return Indicator(f"sat_{dim}_share", SAT_LABELS[dim], "%", HIGHER, "", num=f"sat_{dim}_ge4", den="sat_n",
                     scale=100)


def _units(cells: dict, keys: list[tuple[int, str]], names: dict, tgt_node: dict) -> list[Unit]:
    """Rows of a breakdown, ranked: most indicators on target first, then fewest red, then volume."""
    out = []
    for node_id, key in keys:
        vals = selectors.values(cells.get((node_id, None, key)) or indicators.empty(), UNIT_CODES)
        status = {}
        for code in UNIT_CODES:
            target, amber = tgt_node.get((code, node_id), (None, None))
            status[code] = INDICATORS[code].status(vals.get(code), target, amber)
        out.append(Unit(names.get((node_id, key), key or "—"), vals, status))
    out.sort(key=lambda u: (-u.greens, u.reds, -(u.values.get("orders") or 0), u.name))
    return out


def collect(report: Report, *, progress=lambda p: None) -> Data:
    """Every figure of the report, read through the selectors (pre-aggregates and the registry)."""
    from aftersales.catalog.models import Category
    from aftersales.org.models import Employee

    node, kind = report.node, report.kind
    grain = GRAIN[kind]
    start, end = report.period_start, report.period_end
    prev_start = period_of(kind, start - dt.timedelta(days=1))[0]
    codes = list(INDICATORS)

    cells = selectors.cells(nodes=[node], grain=grain, start=prev_start, end=end)
    cur = cells.get((node.pk, start, "")) or indicators.empty()
    prev = cells.get((node.pk, prev_start, "")) or indicators.empty()
    children = list(Node.objects.filter(parent=node, active=True).order_by("path"))
    tgt = selectors.targets(codes, [node, *children])
    now_vals, prev_vals = selectors.values(cur, codes), selectors.values(prev, codes)
    lines = []
    for code, ind in INDICATORS.items():
        target, amber = tgt.get((code, node.pk), (ind.target, ind.amber))
        lines.append(Line(ind, now_vals.get(code), prev_vals.get(code), target, amber,
                          ind.status(now_vals.get(code), target, amber)))
    progress(15)

    trend_start = (end.replace(day=1) - relativedelta(months=TREND_MONTHS[kind] - 1))
    months = selectors.periods("month", trend_start, end)
    tcells = selectors.cells(nodes=[node], grain="month", start=trend_start, end=end)
    trend = {m: selectors.values(tcells.get((node.pk, m, "")) or indicators.empty(), codes) for m in months}
    progress(30)

    if children:
        units_title = _t("下级单位排名")
        ucells = selectors.cells(nodes=children, grain=grain, start=start, end=end, by_period=False)
        keys = [(c.pk, "") for c in children]
        names = {(c.pk, ""): c.name for c in children}
        units = _units(ucells, keys, names, tgt)
    else:
        units_title = _t("技师排名")
        ucells = selectors.cells(nodes=[node], grain=grain, start=start, end=end, dim="assignee", by_period=False)
        ids = [int(k) for (_n, _p, k) in ucells if k]
        names = {(node.pk, str(e.pk)): e.name for e in Employee.objects.filter(pk__in=ids)}
        units = _units(ucells, [(node.pk, k) for (_n, _p, k) in ucells if k], names, tgt)
    ccells = selectors.cells(nodes=[node], grain=grain, start=start, end=end, dim="category", by_period=False)
    ids = [int(k) for (_n, _p, k) in ccells if k]
    names = {(node.pk, str(c.pk)): c.name for c in Category.objects.filter(pk__in=ids)}
    names[(node.pk, "")] = _t("未登记产品")
    categories = _units(ccells, [(node.pk, k) for (_n, _p, k) in ccells], names, tgt)
    progress(45)

    satisfaction = [Sat(SAT_LABELS[d], now_vals.get(f"sat_{d}"), cur.get(f"sat_{d}_min"), cur.get(f"sat_{d}_max"),
                        _share(d).value(cur)) for d in SAT_DIMS]

    today = timezone.localdate()
    ref = min(end + dt.timedelta(days=1), today + dt.timedelta(days=1))  # the day after the period (so far)
    t0, t_ref = _local(start), _local(ref)
    acts = (Action.objects.filter(node__path__startswith=node.path).exclude(status=ActionStatus.CANCELLED)
            .select_related("owner", "node"))
    raised = acts.filter(created_at__gte=t0, created_at__lt=t_ref).order_by("created_at", "id")
    done = acts.filter(done_at__gte=t0, done_at__lt=t_ref).order_by("done_at", "id")
    overdue = (acts.filter(due_on__lt=ref, created_at__lt=t_ref)
               .filter(Q(done_at__isnull=True) | Q(done_at__gte=t_ref)).order_by("due_on", "id"))
    counts = {"raised": raised.count(), "done": done.count(), "overdue": overdue.count()}
    progress(55)

    from aftersales.charges.services import setting

    data = Data(report=report, title=report_title(report), company=setting("COMPANY_NAME", "") or _t("售后服务中心"),
                period=period_label(kind, start), built_at=timezone.localtime(), ongoing=end >= today,
                lines=lines, current=cur, months=months, trend=trend, units_title=units_title, units=units,
                categories=categories, satisfaction=satisfaction, raised=list(raised[:ACTIONS_LISTED]),
                done=list(done[:ACTIONS_LISTED]), overdue=list(overdue[:ACTIONS_LISTED]), counts=counts)
    data.summary = summary(data)
    return data


def _local(d: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(d, dt.time.min))


# ---------------------------------------------------------------- formatting and the summary text



def fmt(ind: Indicator, v: float | None, *, unit: bool = True) -> str:
    if v is None:
        return "—"
    text = f"{v:,.{ind.decimals}f}"
    return text + (str(UNIT_SUFFIX.get(ind.unit, "")) if unit else "")


def fmt_change(line: Line) -> str:
    c = line.change
    if c is None:
        return "—"
    text = f"{c:+,.{line.ind.decimals}f}"
    return text + (_t(" 个百分点") if line.ind.unit == "%" else str(UNIT_SUFFIX.get(line.ind.unit, "")))


def fmt_target(line: Line) -> str:
    if line.target is None or line.ind.better is None:
        return "—"
    return ("≥ " if line.ind.better == HIGHER else "≤ ") + fmt(line.ind, float(line.target))


STATUS_TEXT = {"green": _("达标"), "amber": _("预警"), "red": _("未达标"), "": "—"}


def summary(data: Data) -> list[str]:
    """A few sentences: volume, targets met and missed, the biggest improvements and declines,
    time limits and the improvement actions."""
    by = {ln.ind.code: ln for ln in data.lines}
    out = []
    orders = by["orders"]
    text = _t("%(period)s，%(node)s共受理工单 %(n)s 单") % {"period": data.period, "node": data.node.name,
                                                         "n": fmt(orders.ind, orders.value)}
    if orders.value is not None and orders.prev:
        pct = (orders.value - orders.prev) / orders.prev * 100
        text += (_t("，较上期增加 %(p).1f%%") if pct >= 0 else _t("，较上期减少 %(p).1f%%")) % {"p": abs(pct)}
    out.append(text + _t("。"))
    rated = [ln for ln in data.lines if ln.status]
    if rated:
        n = {s: sum(1 for ln in rated if ln.status == s) for s in ("green", "amber", "red")}
        out.append(_t("设有目标的 %(k)d 项指标中，达标 %(g)d 项、预警 %(a)d 项、未达标 %(r)d 项。") % {
            "k": len(rated), "g": n["green"], "a": n["amber"], "r": n["red"]})
        missed = sorted((ln for ln in rated if ln.status in ("red", "amber")), key=lambda ln: ln.status != "red")
        if missed:
            out.append(_t("未达目标：") + _t("；").join(
                _t("%(name)s %(value)s（目标 %(target)s）") % {"name": ln.ind.label, "value": fmt(ln.ind, ln.value),
                                                          "target": fmt_target(ln)} for ln in missed) + _t("。"))
        else:
            out.append(_t("所有设有目标的指标均已达标。"))
    gains = sorted((ln for ln in data.lines if ln.gain), key=lambda ln: -ln.gain)
    better = [ln for ln in gains if ln.gain > 0][:3]
    worse = [ln for ln in reversed(gains) if ln.gain < 0][:3]
    if better:
        out.append(_t("较上期改善最大：") + _t("、").join(
            f"{ln.ind.label}（{fmt_change(ln)}）" for ln in better) + _t("。"))
    if worse:
        out.append(_t("较上期下降明显：") + _t("、").join(
            f"{ln.ind.label}（{fmt_change(ln)}）" for ln in worse) + _t("。"))
    m = data.current
    out.append(_t("时限：超时工单 %(n)d 单（响应超时 %(r)d 单，解决超时 %(s)d 单）。") % {
        "n": m.get("breached") or 0, "r": m.get("response_breached") or 0, "s": m.get("resolve_breached") or 0})
    out.append(_t("改进措施：本期发起 %(raised)d 项，完成 %(done)d 项，逾期未完成 %(overdue)d 项。") % data.counts)
    if data.ongoing:
        out.append(_t("注：本期尚未结束，数据截至 %(at)s。") % {"at": data.built_at.strftime("%Y-%m-%d %H:%M")})
    return out


# ---------------------------------------------------------------- the PDF

INK = "#1f2937"
BLUE = "#1f4e79"
SERIES = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
STATUS_BG = {"green": "#d7f0dd", "amber": "#fff0c2", "red": "#f9d3d3"}


def _month_labels(months: list[dt.date]) -> list[str]:
    return [_t("%(year)d年%(month)d月") % {"year": m.year, "month": m.month} if i == 0 or m.month == 1
            else _t("%(month)d月") % {"month": m.month} for i, m in enumerate(months)]


def render_pdf(data: Data) -> bytes:
    """The report as an A4 PDF: cover, summary, indicator table, trend charts, rankings,
    satisfaction, time limits, improvement actions and the indicators' definitions."""
    from aftersales.charges.receipt import FONT_NAME, cjk_font_path

    cjk_font_path()  # registers FONT_NAME (or a clear error: no embeddable CJK font on this server)
    return _Pdf(data, FONT_NAME).build()


class _Pdf:
    def __init__(self, data: Data, font: str):
        from reportlab.lib import colors
        from reportlab.lib.enums import TA_CENTER
        from reportlab.lib.styles import ParagraphStyle

        self.d, self.font, self.colors = data, font, colors
        base = ParagraphStyle("base", fontName=font, fontSize=9.5, leading=14, wordWrap="CJK",
                              textColor=colors.HexColor(INK))
        self.st = {
            "base": base,
            "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=10),
            "cell": ParagraphStyle("cell", parent=base, fontSize=8, leading=10),
            "h1": ParagraphStyle("h1", parent=base, fontSize=13, leading=18, spaceBefore=8, spaceAfter=5,
                                 textColor=colors.HexColor(BLUE), keepWithNext=1),
            "title": ParagraphStyle("title", parent=base, fontSize=20, leading=28, alignment=TA_CENTER,
                                    textColor=colors.HexColor(BLUE)),
            "centre": ParagraphStyle("centre", parent=base, fontSize=11, leading=16, alignment=TA_CENTER),
        }

    def p(self, text, style="base"):
        from reportlab.platypus import Paragraph

        return Paragraph(escape(str(text)), self.st[style])

    def table(self, rows, widths, *, header=True, extra=()):
        from reportlab.lib.units import mm
        from reportlab.platypus import Table, TableStyle

        c = self.colors
        cells = [[x if not isinstance(x, str) else self.p(x, "cell") for x in row] for row in rows]
        t = Table(cells, colWidths=[w * mm for w in widths], repeatRows=1 if header else 0)
        style = [("FONT", (0, 0), (-1, -1), self.font, 8), ("GRID", (0, 0), (-1, -1), 0.4, c.HexColor("#b0b7c3")),
                 ("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("TOPPADDING", (0, 0), (-1, -1), 2),
                 ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
        if header:
            style.append(("BACKGROUND", (0, 0), (-1, 0), c.HexColor("#e8ecf3")))
        t.setStyle(TableStyle(style + list(extra)))
        return t

    # -- charts (reportlab.graphics; every label in the CJK font)

    def _drawing(self, title: str, height: float = 185):
        from reportlab.graphics.shapes import Drawing, String

        d = Drawing(480, height)
        d.initialFontName = self.font  # the renderer's starting font (else Times-Roman is referenced)
        d.add(String(0, height - 12, title, fontName=self.font, fontSize=9.5, fillColor=self.colors.HexColor(BLUE)))
        return d

    def _legend(self, d, pairs, y):
        from reportlab.graphics.charts.legends import Legend

        lg = Legend()
        lg.fontName, lg.fontSize = self.font, 7.5
        lg.x, lg.y, lg.alignment = 40, y, "right"
        lg.columnMaximum, lg.dx, lg.dy, lg.deltax, lg.deltay = 1, 7, 7, 6, 10
        lg.boxAnchor = "nw"
        lg.colorNamePairs = pairs
        lg.autoXPadding = 12
        d.add(lg)

    def line_chart(self, title, labels, series, *, bounds=None, percent=False, reference=None):
        """Months on x; ``series`` = [(name, [value | None])]; series without a value are left out.
        ``percent``: a 0–100 axis cut below the lowest value; ``reference``: (name, value) drawn
        as a flat line (a target)."""
        from reportlab.graphics.charts.linecharts import HorizontalLineChart
        from reportlab.graphics.widgets.markers import makeMarker

        series = [(n, v) for n, v in series if any(x is not None for x in v)]
        if not series:
            return self.p(title + _t("：本期间没有数据。"), "small")
        if reference is not None and reference[1] is not None:
            series.append((reference[0], [float(reference[1])] * len(labels)))
        d = self._drawing(title)
        lc = HorizontalLineChart()
        lc.x, lc.y, lc.width, lc.height = 40, 42, 430, 105
        lc.data = [v for _n, v in series]
        lc.joinedLines = 1
        for i in range(len(series)):
            lc.lines[i].strokeColor = self.colors.HexColor(SERIES[i % len(SERIES)])
            lc.lines[i].strokeWidth = 1.4
            lc.lines[i].symbol = makeMarker("FilledCircle", size=3)
        self._axes(lc, labels)
        if percent:
            low = min(x for _n, v in series for x in v if x is not None)
            bounds = (max(0, int(low // 10) * 10 - 10), 100)
        if bounds:
            lc.valueAxis.valueMin, lc.valueAxis.valueMax = bounds
        d.add(lc)
        self._legend(d, [(self.colors.HexColor(SERIES[i % len(SERIES)]), n) for i, (n, _v) in enumerate(series)],
                     d.height - 18)
        return d

    def bar_chart(self, title, labels, series, *, fmt_label="%.0f"):
        from reportlab.graphics.charts.barcharts import VerticalBarChart

        series = [(n, [x if x is not None else 0 for x in v]) for n, v in series if any(x for x in v)]
        if not series or not labels:
            return self.p(title + _t("：本期间没有数据。"), "small")
        d = self._drawing(title)
        bc = VerticalBarChart()
        bc.x, bc.y, bc.width, bc.height = 40, 42, 430, 105
        bc.data = [v for _n, v in series]
        bc.groupSpacing, bc.barSpacing = 6, 1
        for i in range(len(series)):
            bc.bars[i].fillColor = self.colors.HexColor(SERIES[i % len(SERIES)])
            bc.bars[i].strokeColor = None
        bc.barLabelFormat = lambda v: fmt_label % v if v else ""
        bc.barLabels.fontName, bc.barLabels.fontSize, bc.barLabels.nudge = self.font, 6, 5
        self._axes(bc, labels)
        bc.valueAxis.valueMin = 0
        d.add(bc)
        self._legend(d, [(self.colors.HexColor(SERIES[i % len(SERIES)]), n) for i, (n, _v) in enumerate(series)],
                     d.height - 18)
        return d

    def _axes(self, chart, labels):
        chart.categoryAxis.categoryNames = labels
        for ax in (chart.categoryAxis, chart.valueAxis):
            ax.labels.fontName, ax.labels.fontSize = self.font, 7
        chart.valueAxis.visibleGrid = 1
        chart.valueAxis.gridStrokeColor = self.colors.HexColor("#e5e7eb")
        if len(labels) > 12 or max((len(x) for x in labels), default=0) > 6:
            chart.categoryAxis.labels.angle = 30
            chart.categoryAxis.labels.boxAnchor = "ne"
            chart.categoryAxis.labels.dy = -2

    # -- the pages

    def on_page(self, canvas, doc):
        from reportlab.lib.pagesizes import A4
        from reportlab.lib.units import mm

        if doc.page == 1:
            return
        canvas.saveState()
        canvas.setFont(self.font, 7.5)
        canvas.setFillColor(self.colors.HexColor("#6b7280"))
        canvas.drawString(18 * mm, A4[1] - 11 * mm, self.d.title)
        canvas.drawRightString(A4[0] - 18 * mm, A4[1] - 11 * mm, self.d.company)
        canvas.drawCentredString(A4[0] / 2, 9 * mm, _t("第 %(n)d 页") % {"n": doc.page})
        canvas.restoreState()

    def build(self) -> bytes:
        from reportlab.lib.pagesizes import A4
        from reportlab.lib.units import mm
        from reportlab.platypus import PageBreak, SimpleDocTemplate

        story = self.cover() + [PageBreak()] + self.body()
        buf = BytesIO()
        doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                                bottomMargin=16 * mm, title=self.d.title, author=self.d.company,
                                subject=self.d.period, creator="AfterSales", initialFontName=self.font)
        doc.build(story, onFirstPage=self.on_page, onLaterPages=self.on_page)
        return buf.getvalue()

    def cover(self) -> list:
        from reportlab.lib.units import mm
        from reportlab.platypus import HRFlowable, Spacer

        d, c = self.d, self.colors
        r = d.report
        by = {ln.ind.code: ln for ln in d.lines}
        tiles = [by[code] for code in ("orders", "resolution_rate", "response_on_time_rate", "sat_overall",
                                       "sla_breaches")]
        kpi = self.table([[self.p(fmt(ln.ind, ln.value), "centre") for ln in tiles],
                          [ln.ind.label for ln in tiles]], [34.8] * 5, header=False,
                         extra=[("BACKGROUND", (0, 0), (-1, -1), c.HexColor("#f3f6fa")),
                                ("GRID", (0, 0), (-1, -1), 0.8, c.white), ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                                ("TOPPADDING", (0, 0), (-1, 0), 8), ("BOTTOMPADDING", (0, 1), (-1, 1), 6)]
                         + [("BACKGROUND", (i, 0), (i, 0), c.HexColor(STATUS_BG[ln.status]))
                            for i, ln in enumerate(tiles) if ln.status])
        facts = [
            [_t("统计范围"), _t("%(node)s（含下属单位）") % {"node": d.node.name}],
            [_t("统计期间"), _t("%(period)s（%(start)s 至 %(end)s）") % {
                "period": d.period, "start": r.period_start.isoformat(), "end": r.period_end.isoformat()}
             + (_t("，期间未结束") if d.ongoing else "")],
            [_t("报告类型"), f"{r.get_kind_display()}（{_t('定时生成') if r.scheduled else _t('按需生成')}）"],
            [_t("生成时间"), d.built_at.strftime("%Y-%m-%d %H:%M")],
            [_t("编制单位"), d.company],
        ]
        def rule():
            return HRFlowable(width="100%", thickness=1.2, color=c.HexColor(BLUE), spaceBefore=4, spaceAfter=4)

        return [Spacer(1, 38 * mm), self.p(d.company, "centre"), Spacer(1, 4 * mm), rule(), self.p(d.title, "title"),
                rule(), Spacer(1, 2 * mm), self.p(d.period, "centre"), Spacer(1, 22 * mm), kpi, Spacer(1, 16 * mm),
                self.table(facts, [30, 144], header=False,
                           extra=[("BACKGROUND", (0, 0), (0, -1), c.HexColor("#f1f3f6"))]),
                Spacer(1, 10 * mm),
                self.p(_t("说明：工单按受理日期（北京时间）计入期间；各指标口径见报告末尾“指标口径”。"
                          "状态：达标 / 预警（未达目标但在容差内）/ 未达标。"), "small")]

    def body(self) -> list:
        from reportlab.platypus import KeepTogether, Spacer

        d = self.d
        out = [self.p(_t("一、综述"), "h1")] + [self.p(s) for s in d.summary]

        out.append(self.p(_t("二、指标汇总"), "h1"))
        rows = [[_t("分组"), _t("指标"), _t("本期"), _t("目标"), _t("状态"), _t("上期"), _t("较上期")]]
        extra = []
        for i, ln in enumerate(d.lines, start=1):
            rows.append([str(indicators.GROUPS.get(ln.ind.group, "")), str(ln.ind.label), fmt(ln.ind, ln.value),
                         fmt_target(ln), str(STATUS_TEXT[ln.status]), fmt(ln.ind, ln.prev), fmt_change(ln)])
            if ln.status:
                extra.append(("BACKGROUND", (4, i), (4, i), self.colors.HexColor(STATUS_BG[ln.status])))
        out.append(self.table(rows, [16, 46, 24, 22, 16, 24, 26], extra=extra))

        out.append(self.p(_t("三、月度趋势"), "h1"))
        labels = _month_labels(d.months)
        tr = d.trend
        out.append(self.bar_chart(_t("受理工单量与超时工单数（单）"), labels, [
            (str(INDICATORS["orders"].label), [tr[m].get("orders") for m in d.months]),
            (str(INDICATORS["sla_breaches"].label), [tr[m].get("sla_breaches") for m in d.months])]))
        out.append(self.line_chart(_t("主要指标月度趋势（%）"), labels, [
            (str(INDICATORS[c].label), [tr[m].get(c) for m in d.months]) for c in TREND_RATES], percent=True))
        sat = next(ln for ln in d.lines if ln.ind.code == "sat_overall")
        out.append(KeepTogether([self.line_chart(
            _t("总体满意度月度趋势（1–5 分）"), labels, [(str(sat.ind.label), [tr[m].get("sat_overall") for m in d.months])],
            bounds=(1, 5), reference=(_t("目标"), sat.target))]))

        out.append(self.p(_t("四、%(title)s") % {"title": d.units_title}, "h1"))
        out += self.ranking(d.units, chart=True)
        out.append(self.p(_t("五、产品品类"), "h1"))
        out += self.ranking(d.categories, chart=False)

        out.append(self.p(_t("六、客户满意度"), "h1"))
        n = d.current.get("sat_n") or 0
        out.append(self.p(_t("本期已评价问卷 %(n)d 份。") % {"n": n}))
        rows = [[_t("维度"), _t("平均分"), _t("最低分"), _t("最高分"), _t("4 分及以上占比")]]
        for s in d.satisfaction:
            rows.append([str(s.label), "—" if s.mean is None else f"{s.mean:.2f}", "—" if s.low is None else str(s.low),
                         "—" if s.high is None else str(s.high), "—" if s.share is None else f"{s.share:.1f}%"])
        out.append(self.table(rows, [40, 30, 30, 30, 44]))
        out.append(Spacer(1, 6))
        out.append(self.bar_chart(_t("各维度平均分"), [str(s.label) for s in d.satisfaction],
                                  [(_t("平均分"), [s.mean for s in d.satisfaction])], fmt_label="%.2f"))

        out.append(self.p(_t("七、时限（SLA）"), "h1"))
        m = d.current
        rows = [[_t("受理工单"), _t("响应超时"), _t("解决超时"), _t("超时工单（任一超时）"), _t("响应及时率"),
                 _t("投诉及时处理率")],
                [str(m.get("orders") or 0), str(m.get("response_breached") or 0), str(m.get("resolve_breached") or 0),
                 str(m.get("breached") or 0),
                 fmt(INDICATORS["response_on_time_rate"], next(ln.value for ln in d.lines
                                                                if ln.ind.code == "response_on_time_rate")),
                 fmt(INDICATORS["complaint_in_time_rate"], next(ln.value for ln in d.lines
                                                                 if ln.ind.code == "complaint_in_time_rate"))]]
        out.append(self.table(rows, [26, 26, 26, 36, 30, 30]))
        worst = sorted((u for u in d.units if u.values.get("sla_breaches")), key=lambda u: -u.values["sla_breaches"])
        if worst:
            out.append(Spacer(1, 4))
            out.append(self.p(_t("超时较多：") + _t("、").join(
                _t("%(name)s %(n)d 单") % {"name": u.name, "n": u.values["sla_breaches"]} for u in worst[:5])
                + _t("。")))

        out.append(self.p(_t("八、改进措施"), "h1"))
        out.append(self.p(_t("本期发起 %(raised)d 项，完成 %(done)d 项，逾期未完成 %(overdue)d 项。") % d.counts))
        for title, acts in ((_t("本期发起"), d.raised), (_t("本期完成"), d.done), (_t("逾期未完成"), d.overdue)):
            if not acts:
                continue
            rows = [[_t("编号"), title, _t("目标指标"), _t("单位"), _t("负责人"), _t("期限"), _t("状态")]]
            for a in acts:
                ind = INDICATORS.get(a.indicator)
                rows.append([a.number, a.title, str(ind.label) if ind else "—", a.node.name,
                             a.owner.get_full_name() or a.owner.get_username(), a.due_on.isoformat(),
                             str(a.get_status_display())])
            out += [Spacer(1, 4), self.table(rows, [26, 46, 24, 24, 18, 20, 16])]

        out.append(self.p(_t("附：指标口径"), "h1"))
        rows = [[_t("指标"), _t("计算方法")]] + [[str(i.label), str(i.formula)] for i in INDICATORS.values()]
        out.append(self.table(rows, [40, 134]))
        return out

    def ranking(self, units: list[Unit], *, chart: bool) -> list:
        if not units:
            return [self.p(_t("本期间没有数据。"), "small")]
        heads = [str(INDICATORS[c].label) for c in UNIT_CODES]
        rows = [[_t("排名"), _t("名称"), *heads, _t("达标项数")]]
        extra = []
        for i, u in enumerate(units, start=1):
            rows.append([str(i), u.name, *[fmt(INDICATORS[c], u.values.get(c), unit=False) for c in UNIT_CODES],
                         str(u.greens)])
            for j, c in enumerate(UNIT_CODES, start=2):
                if u.status.get(c):
                    extra.append(("BACKGROUND", (j, i), (j, i), self.colors.HexColor(STATUS_BG[u.status[c]])))
        out = [self.table(rows, [9, 25] + [14.2] * len(UNIT_CODES) + [12], extra=extra)]
        if chart:
            shown = units[:12]
            out.append(self.bar_chart(_t("问题解决率与响应及时率（%）"), [u.name for u in shown], [
                (str(INDICATORS[c].label), [u.values.get(c) for u in shown])
                for c in ("resolution_rate", "response_on_time_rate")], fmt_label="%.1f"))
        return out
