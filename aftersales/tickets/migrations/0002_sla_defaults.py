"""The default working calendar and time standards (R-SLA-1).

Calendar "CN" 标准服务日历: 08:00–20:00, weekends off, with China's public holidays and make-up
working days of 2026–2027 (``tickets.holidays``; the 2027 rows are estimates until the State
Council's notice is out, named "（预估）").

Policies with a blank priority (any) for every order type, in working minutes of that
calendar: a consultation answered within 2 h and settled within 4 h; a complaint handled
within 1 h and resolved within 4 h; every other type first handled within 24 h and resolved
within 48 h (the seeds' standards); urgent repairs and installations within 4 h / 24 h.

``seed`` is idempotent (tests that empty the tables call it again).
"""

import datetime as dt

from django.db import migrations

from aftersales.tickets import holidays

CALENDAR = {"code": "CN", "name": "标准服务日历", "day_start": dt.time(8, 0), "day_end": dt.time(20, 0),
            "weekends_off": True}

TYPES = ["installation", "repair", "maintenance", "consultation", "complaint", "return_exchange", "delivery",
         "recycling"]

# (type, priority): (response minutes, resolve minutes)
POLICIES = {
    **{(t, ""): (1440, 2880) for t in TYPES},
    ("consultation", ""): (120, 240),
    ("complaint", ""): (60, 240),
    ("repair", "urgent"): (240, 1440),
    ("installation", "urgent"): (240, 1440),
}


def seed(apps, schema_editor=None):
    WorkCalendar = apps.get_model("tickets", "WorkCalendar")
    CalendarDay = apps.get_model("tickets", "CalendarDay")
    SlaPolicy = apps.get_model("tickets", "SlaPolicy")
    cal, _created = WorkCalendar.objects.get_or_create(code=CALENDAR["code"], defaults=CALENDAR)
    known = set(CalendarDay.objects.filter(calendar=cal).values_list("date", flat=True))
    CalendarDay.objects.bulk_create([CalendarDay(calendar=cal, date=d, kind=kind, name=name)
                                     for d, kind, name in holidays.days() if d not in known])
    for (order_type, priority), (response, resolve) in POLICIES.items():
        SlaPolicy.objects.get_or_create(type=order_type, priority=priority, defaults={
            "response_minutes": response, "resolve_minutes": resolve, "at_risk_percent": 20, "calendar": cal})


def unseed(apps, schema_editor=None):
    WorkCalendar = apps.get_model("tickets", "WorkCalendar")
    CalendarDay = apps.get_model("tickets", "CalendarDay")
    SlaPolicy = apps.get_model("tickets", "SlaPolicy")
    for order_type, priority in POLICIES:
        SlaPolicy.objects.filter(type=order_type, priority=priority, calendar__code=CALENDAR["code"]).delete()
    CalendarDay.objects.filter(calendar__code=CALENDAR["code"]).delete()
    WorkCalendar.objects.filter(code=CALENDAR["code"], policies__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
