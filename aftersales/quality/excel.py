"""The quality report as an Excel workbook (openpyxl): the same figures as the PDF, as numbers with
number formats (percentages as fractions shown "0.0%"), Chinese headers and native Excel charts.

Sheets: 概要 (title, period, the summary text) · 指标汇总 (every indicator: this period, target,
status, previous period, change) · 月度趋势 (every indicator per month, with a line chart of the
key rates and a bar chart of the volume) · 下级单位排名 / 技师排名 · 产品品类 · 满意度 · 改进措施.
"""

from __future__ import annotations

from io import BytesIO

from django.utils.translation import gettext as _t
from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from .indicators import GROUPS, HIGHER, INDICATORS, Indicator
from .reports import STATUS_BG, STATUS_TEXT, TREND_RATES, UNIT_CODES, Data, Unit

HEAD_FONT = Font(bold=True)
HEAD_FILL = PatternFill("solid", fgColor="E8ECF3")
FILLS = {s: PatternFill("solid", fgColor=c.lstrip("#").upper()) for s, c in STATUS_BG.items()}
FORMATS = {"%": "0.0%", "‰": '0.00"‰"', "count": "#,##0", "score": "0.00", "min": "0.0", "h": "0.0"}


def unit_name(ind: Indicator) -> str:
    return {"%": "%", "‰": "‰", "min": _t("分钟"), "h": _t("小时"), "score": _t("分"), "count": _t("单")}[ind.unit]


def header(ind: Indicator) -> str:
    return f"{ind.label}（{unit_name(ind)}）"


def put(ws, row: int, col: int, ind: Indicator, v: float | None):
    """An indicator's value as a number with its format (a percentage as a fraction)."""
    cell = ws.cell(row=row, column=col, value=None if v is None else (v / 100 if ind.unit == "%" else v))
    cell.number_format = FORMATS.get(ind.unit, "0.0")
    return cell


def _head(ws, row: int, labels: list[str]) -> None:
    for col, text in enumerate(labels, start=1):
        c = ws.cell(row=row, column=col, value=str(text))
        c.font, c.fill = HEAD_FONT, HEAD_FILL
        c.alignment = Alignment(wrap_text=True, vertical="center")
    ws.freeze_panes = ws.cell(row=row + 1, column=2)


def _chart(chart, title: str, *, height=8, width=18):
    """A chart with its title and both axes shown (openpyxl ≥ 3.1 hides them unless told)."""
    chart.title, chart.height, chart.width = title, height, width
    chart.x_axis.delete = chart.y_axis.delete = False
    return chart


def _widths(ws, first: float, rest: float) -> None:
    ws.column_dimensions["A"].width = first
    for col in range(2, ws.max_column + 1):
        ws.column_dimensions[get_column_letter(col)].width = rest


def workbook(data: Data) -> bytes:
    wb = Workbook()
    _overview(wb.active, data)
    _indicators(wb.create_sheet(_t("指标汇总")), data)
    _trend(wb.create_sheet(_t("月度趋势")), data)
    _units(wb.create_sheet(data.units_title), data.units, _t("名称"), chart=True)
    _units(wb.create_sheet(_t("产品品类")), data.categories, _t("产品品类"), chart=False)
    _satisfaction(wb.create_sheet(_t("满意度")), data)
    _actions(wb.create_sheet(_t("改进措施")), data)
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _overview(ws, data: Data) -> None:
    ws.title = _t("概要")
    r = data.report
    ws["A1"] = data.title
    ws["A1"].font = Font(bold=True, size=14)
    rows = [(_t("编制单位"), data.company), (_t("统计范围"), data.node.name), (_t("统计期间"), data.period),
            (_t("期间起"), r.period_start), (_t("期间止"), r.period_end),
            (_t("生成时间"), data.built_at.replace(tzinfo=None, microsecond=0))]
    for i, (k, v) in enumerate(rows, start=3):
        ws.cell(row=i, column=1, value=k).font = HEAD_FONT
        c = ws.cell(row=i, column=2, value=v)
        if hasattr(v, "year"):
            c.number_format = "yyyy-mm-dd hh:mm" if hasattr(v, "hour") else "yyyy-mm-dd"
    row = len(rows) + 4
    ws.cell(row=row, column=1, value=_t("综述")).font = HEAD_FONT
    for i, text in enumerate(data.summary, start=row + 1):
        ws.cell(row=i, column=1, value=text)
    ws.column_dimensions["A"].width = 14
    ws.column_dimensions["B"].width = 40


def _indicators(ws, data: Data) -> None:
    _head(ws, 1, [_t("指标"), _t("分组"), _t("单位"), _t("本期"), _t("目标方向"), _t("目标"), _t("状态"), _t("上期"),
                  _t("较上期"), _t("指标代码")])
    for row, ln in enumerate(data.lines, start=2):
        ind = ln.ind
        has_target = ln.target is not None and ind.better is not None
        ws.cell(row=row, column=1, value=str(ind.label))
        ws.cell(row=row, column=2, value=str(GROUPS.get(ind.group, "")))
        ws.cell(row=row, column=3, value=unit_name(ind))
        put(ws, row, 4, ind, ln.value)
        ws.cell(row=row, column=5, value=("≥" if ind.better == HIGHER else "≤") if has_target else None)
        put(ws, row, 6, ind, float(ln.target) if has_target else None)
        c = ws.cell(row=row, column=7, value=str(STATUS_TEXT[ln.status]))
        if ln.status:
            c.fill = FILLS[ln.status]
        put(ws, row, 8, ind, ln.prev)
        put(ws, row, 9, ind, ln.change)
        ws.cell(row=row, column=10, value=ind.code)
    _widths(ws, 26, 12)


def _trend(ws, data: Data) -> None:
    codes = list(INDICATORS)
    _head(ws, 1, [_t("月份")] + [header(INDICATORS[c]) for c in codes])
    for row, m in enumerate(data.months, start=2):
        ws.cell(row=row, column=1, value=f"{m:%Y-%m}")
        for col, code in enumerate(codes, start=2):
            put(ws, row, col, INDICATORS[code], data.trend[m].get(code))
    last = len(data.months) + 1
    _widths(ws, 10, 14)
    cats = Reference(ws, min_col=1, min_row=2, max_row=last)

    line = _chart(LineChart(), _t("主要指标月度趋势"))
    line.y_axis.number_format = "0%"
    for code in TREND_RATES:
        col = codes.index(code) + 2
        line.add_data(Reference(ws, min_col=col, min_row=1, max_row=last), titles_from_data=True)
    line.set_categories(cats)
    ws.add_chart(line, f"B{last + 3}")

    bar = _chart(BarChart(), _t("受理工单量与超时工单数"))
    for code in ("orders", "sla_breaches"):
        col = codes.index(code) + 2
        bar.add_data(Reference(ws, min_col=col, min_row=1, max_row=last), titles_from_data=True)
    bar.set_categories(cats)
    ws.add_chart(bar, f"B{last + 21}")


def _units(ws, units: list[Unit], label: str, *, chart: bool) -> None:
    _head(ws, 1, [_t("排名"), label] + [header(INDICATORS[c]) for c in UNIT_CODES] + [_t("达标项数")])
    for row, u in enumerate(units, start=2):
        ws.cell(row=row, column=1, value=row - 1)
        ws.cell(row=row, column=2, value=u.name)
        for col, code in enumerate(UNIT_CODES, start=3):
            c = put(ws, row, col, INDICATORS[code], u.values.get(code))
            if u.status.get(code):
                c.fill = FILLS[u.status[code]]
        ws.cell(row=row, column=len(UNIT_CODES) + 3, value=u.greens)
    _widths(ws, 6, 13)
    ws.column_dimensions["B"].width = 18
    if chart and units:
        last = len(units) + 1
        bar = _chart(BarChart(), _t("问题解决率与响应及时率"))
        bar.y_axis.number_format = "0%"
        for code in ("resolution_rate", "response_on_time_rate"):
            col = UNIT_CODES.index(code) + 3
            bar.add_data(Reference(ws, min_col=col, min_row=1, max_row=last), titles_from_data=True)
        bar.set_categories(Reference(ws, min_col=2, min_row=2, max_row=last))
        ws.add_chart(bar, f"B{last + 3}")


def _satisfaction(ws, data: Data) -> None:
    _head(ws, 1, [_t("维度"), _t("平均分"), _t("最低分"), _t("最高分"), _t("4 分及以上占比")])
    for row, s in enumerate(data.satisfaction, start=2):
        ws.cell(row=row, column=1, value=str(s.label))
        ws.cell(row=row, column=2, value=s.mean).number_format = "0.00"
        ws.cell(row=row, column=3, value=s.low)
        ws.cell(row=row, column=4, value=s.high)
        ws.cell(row=row, column=5, value=None if s.share is None else s.share / 100).number_format = "0.0%"
    ws.cell(row=len(data.satisfaction) + 3, column=1, value=_t("已评价问卷数"))
    ws.cell(row=len(data.satisfaction) + 3, column=2, value=data.current.get("sat_n") or 0)
    _widths(ws, 14, 14)
    bar = _chart(BarChart(), _t("各维度平均分"), height=7, width=14)
    bar.y_axis.scaling.min, bar.y_axis.scaling.max = 0, 5
    last = len(data.satisfaction) + 1
    bar.add_data(Reference(ws, min_col=2, min_row=1, max_row=last), titles_from_data=True)
    bar.set_categories(Reference(ws, min_col=1, min_row=2, max_row=last))
    ws.add_chart(bar, "G2")


def _actions(ws, data: Data) -> None:
    _head(ws, 1, [_t("类别"), _t("编号"), _t("标题"), _t("目标指标"), _t("单位"), _t("负责人"), _t("完成期限"),
                  _t("状态")])
    row = 2
    for kind, acts in ((_t("本期发起"), data.raised), (_t("本期完成"), data.done), (_t("逾期未完成"), data.overdue)):
        for a in acts:
            ind = INDICATORS.get(a.indicator)
            values = [kind, a.number, a.title, str(ind.label) if ind else "", a.node.name,
                      a.owner.get_full_name() or a.owner.get_username(), a.due_on, str(a.get_status_display())]
            for col, v in enumerate(values, start=1):
                c = ws.cell(row=row, column=col, value=v)
                if col == 7:
                    c.number_format = "yyyy-mm-dd"
            row += 1
    _widths(ws, 12, 14)
    ws.column_dimensions["C"].width = 36
