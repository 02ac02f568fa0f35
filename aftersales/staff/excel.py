"""A cycle's appraisal results as an Excel workbook (openpyxl), limited to what the caller sees
(``selectors_appraisal.sheets_for_board``) and optionally to one node's subtree.

Sheets: 概要 (the cycle: kind, period, scope, status, grading and bonus rules, the sheet count) ·
考核结果 (one row per person: node, role, employee number and name, the five groups' scores,
automatic score, total, grade, rank of n within node × role, bonus, step, flags) · 奖项 (service
stars and best team). Scores and money are numbers with number formats. Four queries whatever the
number of people.
"""

from __future__ import annotations

from io import BytesIO

from django.utils import timezone
from django.utils.translation import gettext as _t
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from aftersales.org.roles import Perm, Role
from aftersales.org.scope import scope_filter

from . import scoring
from . import selectors_appraisal as reads
from .models import Award, Group, SheetScore, Step

HEAD_FONT = Font(bold=True)
HEAD_FILL = PatternFill("solid", fgColor="E8ECF3")
WARN_FILL = PatternFill("solid", fgColor="FDE2E2")
SCORE_FORMAT = "0.00"
MONEY_FORMAT = "#,##0.00"


def filename(cycle, node=None) -> str:
    where = (node or cycle.node).name
    return f"{_t('绩效考核结果')}_{where}_{cycle.get_kind_display()}_{cycle.period_start:%Y-%m}.xlsx"


def _role(role: str) -> str:
    return str(Role(role).label) if role in Role.values else role


def _head(ws, labels: list[str]) -> None:
    for col, text in enumerate(labels, start=1):
        c = ws.cell(row=1, column=col, value=str(text))
        c.font, c.fill = HEAD_FONT, HEAD_FILL
        c.alignment = Alignment(wrap_text=True, vertical="center")
    ws.freeze_panes = ws.cell(row=2, column=5)


def _num(v):
    return None if v is None else float(v)


def rows(user, cycle, node=None) -> list[dict]:
    """One dict per sheet the caller sees (board order), with the groups' scores."""
    sheets = list(reads.sheets_for_board(user, cycle, node))
    by_sheet: dict[int, list] = {}
    ids = [s.pk for s in sheets]
    for i in range(0, len(ids), 5000):
        for sid, group, score, weight in (SheetScore.objects.filter(sheet_id__in=ids[i:i + 5000])
                                          .values_list("sheet_id", "item__group", "score", "item__weight")):
            by_sheet.setdefault(sid, []).append((group, score, weight))
    out = []
    for s in sheets:
        groups: dict[str, list] = {}
        for g, sc, w in by_sheet.get(s.pk, []):
            groups.setdefault(g, []).append((sc, w))
        out.append({"sheet": s, "groups": {g: scoring.total(p) for g, p in groups.items()}})
    return out


def cycle_workbook(user, cycle, node=None) -> bytes:
    data = rows(user, cycle, node)
    wb = Workbook()
    _overview(wb.active, cycle, node, len(data))
    _results(wb.create_sheet(_t("考核结果")), data)
    _awards(wb.create_sheet(_t("奖项")), user, cycle, node)
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _overview(ws, cycle, node, n: int) -> None:
    ws.title = _t("概要")
    ws["A1"] = _t("绩效考核结果")
    ws["A1"].font = Font(bold=True, size=14)
    grading = "，".join(f"{g['grade']} ≥ {g['min']:g}" if "min" in g else f"{g['grade']} {g['percent']:g}%"
                        for g in cycle.grading)
    if cycle.bonus_mode == "pool":
        bonus = _t("奖金池 %(p)s 元按得分分配") % {"p": cycle.bonus.get("pool")}
    elif cycle.bonus_mode == "multiplier":
        mult = "，".join(f"{g} × {f:g}" for g, f in (cycle.bonus.get("multipliers") or {}).items())
        bonus = _t("基数 %(b)s 元 × 等级系数（%(m)s）") % {"b": cycle.bonus.get("base"), "m": mult}
    else:
        bonus = str(cycle.get_bonus_mode_display())
    facts = [(_t("考核周期"), str(cycle.get_kind_display())), (_t("期间起"), cycle.period_start),
             (_t("期间止"), cycle.period_end), (_t("考核范围"), cycle.node.name),
             (_t("导出范围"), (node or cycle.node).name), (_t("状态"), str(cycle.get_status_display())),
             (_t("定级方式"), f"{cycle.get_grading_mode_display()}：{grading}"), (_t("奖金规则"), bonus),
             (_t("人数"), n), (_t("导出时间"), timezone.localtime().replace(tzinfo=None, microsecond=0))]
    for i, (k, v) in enumerate(facts, start=3):
        ws.cell(row=i, column=1, value=k).font = HEAD_FONT
        c = ws.cell(row=i, column=2, value=v)
        if hasattr(v, "year"):
            c.number_format = "yyyy-mm-dd hh:mm" if hasattr(v, "hour") else "yyyy-mm-dd"
    ws.column_dimensions["A"].width = 14
    ws.column_dimensions["B"].width = 60


def _results(ws, data: list[dict]) -> None:
    groups = list(Group)
    _head(ws, [_t("单位"), _t("角色"), _t("工号"), _t("姓名"), *[g.label for g in groups], _t("自动指标得分"),
               _t("总分"), _t("等级"), _t("排名"), _t("参与排名人数"), _t("奖金（元）"), _t("当前环节"),
               _t("警告"), _t("末位"), _t("提交管理层审查")])
    yes = _t("是")
    for r, row in enumerate(data, start=2):
        s = row["sheet"]
        values = [s.node.name, _role(s.role), s.employee.employee_no, s.employee.name,
                  *[_num(row["groups"].get(g.value)) for g in groups], _num(s.auto_total), _num(s.total),
                  s.grade or None, s.rank, s.rank_of, _num(s.bonus), str(Step(s.step).label),
                  yes if s.warning else "", yes if s.last_place else "", yes if s.review_flag else ""]
        for col, v in enumerate(values, start=1):
            c = ws.cell(row=r, column=col, value=v)
            if 5 <= col <= 5 + len(groups) + 1:
                c.number_format = SCORE_FORMAT
            elif col == 5 + len(groups) + 5:
                c.number_format = MONEY_FORMAT
        if s.warning or s.review_flag:
            for col in range(1, len(values) + 1):
                ws.cell(row=r, column=col).fill = WARN_FILL
    ws.column_dimensions["A"].width = 18
    for col in range(2, ws.max_column + 1):
        ws.column_dimensions[get_column_letter(col)].width = 11
    if data:
        ws.auto_filter.ref = f"A1:{get_column_letter(ws.max_column)}{len(data) + 1}"


def _awards(ws, user, cycle, node) -> None:
    _head(ws, [_t("奖项"), _t("单位"), _t("获奖人"), _t("得分")])
    ws.freeze_panes = "A2"
    qs = Award.objects.filter(cycle=cycle).select_related("node", "employee").order_by("kind", "node__path")
    if node is not None:
        qs = qs.filter(node__path__startswith=node.path)
    f = scope_filter(user, Perm.APPRAISAL_REVIEW)
    if f is not None:
        qs = qs.filter(f)
    for r, a in enumerate(qs, start=2):
        ws.cell(row=r, column=1, value=str(a.get_kind_display()))
        ws.cell(row=r, column=2, value=a.node.name)
        ws.cell(row=r, column=3, value=a.employee.name if a.employee_id else None)
        ws.cell(row=r, column=4, value=_num(a.score)).number_format = SCORE_FORMAT
    for col, w in zip("ABCD", (16, 20, 14, 10), strict=True):
        ws.column_dimensions[col].width = w
