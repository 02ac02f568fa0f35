"""China's public holidays and make-up working days (调休上班), as data.

Each year's arrangement is published by the General Office of the State Council (国务院办公厅
关于 YYYY 年部分节假日安排的通知), usually in November of the year before. The default working
calendar ("CN", migration ``0002_sla_defaults``) is filled from ``days()``; headquarters keeps
it up to date afterwards through the admin or ``/api/sla/calendars/CN/days``.

This module is plain data (no models), so that migrations may import it.

2026 — from the official notice: 国务院办公厅关于2026年部分节假日安排的通知, 2025-11-04
(gov.cn/zhengce/content/202511/content_7047090.htm), checked against its text as printed by
Xinhua (新华社北京11月4日电).

2027 — NOT from an official notice: none had been found when this was written. The dates
are an estimate, marked ``official=False`` one by one:

* the festival dates themselves are certain (除夕 2027-02-05, 春节 02-06, 清明 04-05,
  端午 06-09, 中秋 09-15, from the Hong Kong Observatory's lunar tables);
* the lengths follow the 2024 revision of 《全国年节及纪念日放假办法》 (Spring Festival from
  New Year's Eve, 8 days; Labour Day 5 days; National Day 7 days; the one-day festivals joined
  with the weekend where it adjoins); 2027 has the same weekdays as 2021, whose notice
  (国庆 Oct 1–7 with Sep 26 and Oct 9 worked) is followed where the rules did not change;
* 端午 and 中秋 fall on a Wednesday in 2027: only the festival day itself is entered; the
  notice may bridge it with make-up days;
* make-up working days are a guess of the usual pattern (one Sunday before and one Saturday
  after a long holiday).

Replace the 2027 rows with the notice's dates once it is published (admin or API).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

HOLIDAY = "holiday"  # = tickets.models.DayKind.HOLIDAY
WORKDAY = "workday"  # = tickets.models.DayKind.WORKDAY

D = dt.date


@dataclass(frozen=True)
class Arrangement:
    """One holiday of a year: the days off (first to last, inclusive) and the weekend days
    worked instead (调休上班)."""

    name: str
    first: dt.date
    last: dt.date
    workdays: tuple[dt.date, ...] = ()
    official: bool = True

    def days_off(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range((self.last - self.first).days + 1)]


SOURCES = {
    2026: "国务院办公厅关于2026年部分节假日安排的通知（2025年11月4日）",
    2027: "估算：截至编写时未见国务院办公厅关于2027年部分节假日安排的通知，按放假办法与往年惯例推定",
}

SCHEDULE: dict[int, tuple[Arrangement, ...]] = {
    2026: (
        Arrangement("元旦", D(2026, 1, 1), D(2026, 1, 3), (D(2026, 1, 4),)),
        Arrangement("春节", D(2026, 2, 15), D(2026, 2, 23), (D(2026, 2, 14), D(2026, 2, 28))),
        Arrangement("清明节", D(2026, 4, 4), D(2026, 4, 6)),
        Arrangement("劳动节", D(2026, 5, 1), D(2026, 5, 5), (D(2026, 5, 9),)),
        Arrangement("端午节", D(2026, 6, 19), D(2026, 6, 21)),
        Arrangement("中秋节", D(2026, 9, 25), D(2026, 9, 27)),
        Arrangement("国庆节", D(2026, 10, 1), D(2026, 10, 7), (D(2026, 9, 20), D(2026, 10, 10))),
    ),
    # Estimated — see the module docstring. Not from an official notice.
    2027: (
        Arrangement("元旦", D(2027, 1, 1), D(2027, 1, 3), official=False),
        Arrangement("春节", D(2027, 2, 5), D(2027, 2, 12), (D(2027, 1, 31), D(2027, 2, 20)), official=False),
        Arrangement("清明节", D(2027, 4, 3), D(2027, 4, 5), official=False),
        Arrangement("劳动节", D(2027, 5, 1), D(2027, 5, 5), (D(2027, 5, 8),), official=False),
        Arrangement("端午节", D(2027, 6, 9), D(2027, 6, 9), official=False),
        Arrangement("中秋节", D(2027, 9, 15), D(2027, 9, 15), official=False),
        Arrangement("国庆节", D(2027, 10, 1), D(2027, 10, 7), (D(2027, 9, 26), D(2027, 10, 9)), official=False),
    ),
}


def days(year: int | None = None) -> list[tuple[dt.date, str, str]]:
    """``(date, kind, name)`` of every holiday and make-up working day (of ``year``, or all),
    in date order. ``kind`` is ``"holiday"`` or ``"workday"``; estimated rows say so in the name."""
    out = []
    for y, arrangements in SCHEDULE.items():
        if year is not None and y != year:
            continue
        for a in arrangements:
            mark = "" if a.official else "（预估）"
            out += [(d, HOLIDAY, f"{a.name}{mark}") for d in a.days_off()]
            out += [(d, WORKDAY, f"{a.name}调休上班{mark}") for d in a.workdays]
    return sorted(out)
