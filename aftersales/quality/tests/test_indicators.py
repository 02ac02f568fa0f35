"""Every indicator on a small hand-built data set, against values worked out by hand.

The data set (``build``; times are local, Asia/Shanghai). March 2025:

  id  node      type          status     received      resp. (due)   1st handling  resolved       visits
  o1  pudong    repair u1 F1  closed     Mon 03-03 09  +10 (60)      arrive +2h    +5h (300)      1, reopen day 10
  o2  pudong    repair u1 F1  completed  Mon 03-10 14  +40 (30) late arrive +26h   +50h (3000)    2, breached both
  o3  pudong    installation  closed     Sat 03-15 20:30 +100 (-)    arrive +20h   +22h (1320)    1, reopen day 40
  o4  pudong    complaint     closed     Thu 03-20 10  +5 (30)       answer +5m    +3h (180)      0
  o5  pudong    consultation  cancelled  03-25 10
  o6  pudong    repair u2 F1  repairing  Fri 03-28 09  +20 (30)      arrive +3h    —
  o7  hangzhou  repair u3 F2  closed     Wed 03-05 08  +200 (240)    arrive +30h   +40h (2400)    1
  o8  tianhe    repair ut F1  completed  Wed 03-12 11  +15 (15)      arrive +1h    +25h (1500)    1

April 2025: o9 tianhe repair ut F1 received 04-30 (48 days after o8 was resolved: o8 repeats
within 90 days, not 30), o10 pudong repair u1 F1 received 04-25 (44 days after o2 was
resolved), o11 pudong maintenance, o12 hangzhou complaint resolved late. o1 repeats within 30
days (o2, 7 days later).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone

from aftersales.charges.models import ServiceCost
from aftersales.customers.models import Unit
from aftersales.feedback.models import CallbackTask, Survey
from aftersales.org.models import Employee
from aftersales.quality import facts, selectors
from aftersales.quality.indicators import INDICATORS
from aftersales.quality.models import ModelSales, NodeSales, NormCheck, OrderFact
from aftersales.tickets.models import FaultCategory, OrderEvent, WorkOrder

from ...conftest import make_user

TZ = timezone.get_fixed_timezone(480)
H, M = dt.timedelta(hours=1), dt.timedelta(minutes=1)
MARCH, APRIL = dt.date(2025, 3, 1), dt.date(2025, 4, 1)


def at(month, day, hour, minute=0) -> dt.datetime:
    return dt.datetime(2025, month, day, hour, minute, tzinfo=TZ)


def make_order(w, key, *, node, type, status, created, channel="phone", unit=None, fault=None, resp=None,
               due=None, done=None, visits=0, assignee=None, response_breached=False, resolve_breached=False,
               events=(), survey=None, cost=None, norm=None):
    """One order as the hand-built table says: ``resp`` / ``due`` / ``done`` are offsets from
    ``created``; ``events`` (action, offset); ``survey`` (timeliness, attitude, professionalism,
    result, overall); ``norm`` (items, met)."""
    n = len(w.orders) + 1
    o = WorkOrder.objects.create(
        number=f"GDQ{n:04d}", type=type, channel=channel, status=status, customer=w.c_pudong, unit=unit,
        fault_category=fault, node=node, assignee=assignee, created_at=created, updated_at=created + (done or H),
        responded_at=created + resp if resp is not None else None,
        response_due=created + due if due is not None else None,
        completed_at=created + done if done is not None and status == "completed" else None,
        closed_at=created + done if done is not None and status == "closed" else None,
        visit_count=visits, response_breached=response_breached, resolve_breached=resolve_breached)
    for seq, (action, offset) in enumerate(events, 1):
        OrderEvent.objects.create(order=o, seq=seq, at=created + offset, actor_label="test", action=action)
    if survey:
        task = CallbackTask.objects.create(order=o, node=node, due_at=created + done + 24 * H)
        t, a, p, r, ov = survey
        Survey.objects.create(order=o, task=task, node=node, channel="phone", answered_at=created + done + 2 * H,
                              timeliness=t, attitude=a, professionalism=p, result=r, overall=ov, resolved=True)
    if cost is not None:
        ServiceCost.objects.create(order=o, node=node, month=created.date().replace(day=1), total=Decimal(cost),
                                   computed_at=created + done)
    if norm:
        NormCheck.objects.create(order=o, items=norm[0], met=norm[1], answered_at=created + done)
    w.orders[key] = o
    return o


def build(w) -> SimpleNamespace:
    w.orders = {}
    w.f1 = FaultCategory.objects.create(code="Q-F1", name="不制冷")
    w.f2 = FaultCategory.objects.create(code="Q-F2", name="漏水")
    u1 = w.u_pudong  # AC model, category AC
    u2 = Unit.objects.create(customer=w.c_pudong, model=w.wm_model, serial="WMQ0000002", purchase_date=dt.date(2024, 1, 1))
    u3 = Unit.objects.create(customer=w.c_pudong, model=w.ac_model, serial="ACQ0000003", purchase_date=dt.date(2024, 1, 1))
    ut = w.u_tianhe  # WM model
    w.u2, w.u3 = u2, u3
    tech = w.tech_employee
    w.tech2 = Employee.objects.create(user=make_user("hz_tech"), node=w.hangzhou, employee_no="T0002", name="王师傅",
                                      hire_date=dt.date(2021, 1, 1))
    mk = make_order
    # ---- March
    mk(w, "o1", node=w.pudong, type="repair", status="closed", created=at(3, 3, 9), unit=u1, fault=w.f1,
       resp=10 * M, due=60 * M, done=5 * H, visits=1, assignee=tech,
       events=[("arrive", 2 * H), ("complete", 5 * H), ("reopen", dt.timedelta(days=10))],
       survey=(5, 4, 5, 4, 5), cost="200.00", norm=(5, 5))
    mk(w, "o2", node=w.pudong, type="repair", status="completed", created=at(3, 10, 14), channel="web", unit=u1,
       fault=w.f1, resp=40 * M, due=30 * M, done=50 * H, visits=2, assignee=tech, response_breached=True,
       resolve_breached=True, events=[("arrive", 26 * H)], survey=(1, 3, 2, 2, 2), cost="350.50", norm=(5, 4))
    mk(w, "o3", node=w.pudong, type="installation", status="closed", created=at(3, 15, 20, 30), resp=100 * M,
       done=22 * H, visits=1, assignee=tech,
       events=[("arrive", 20 * H), ("complete", 22 * H), ("reopen", dt.timedelta(days=40))])
    mk(w, "o4", node=w.pudong, type="complaint", status="closed", created=at(3, 20, 10), resp=5 * M, due=30 * M,
       done=3 * H, events=[("answer", 5 * M)], survey=(4, 5, 4, 3, 4))
    mk(w, "o5", node=w.pudong, type="consultation", status="cancelled", created=at(3, 25, 10), resp=5 * M)
    mk(w, "o6", node=w.pudong, type="repair", status="repairing", created=at(3, 28, 9), channel="app", unit=u2,
       fault=w.f1, resp=20 * M, due=30 * M, assignee=tech, events=[("arrive", 3 * H)])
    mk(w, "o7", node=w.hangzhou, type="repair", status="closed", created=at(3, 5, 8), unit=u3, fault=w.f2,
       resp=200 * M, due=240 * M, done=40 * H, visits=1, assignee=w.tech2,
       events=[("arrive", 30 * H), ("complete", 40 * H)], survey=(3, 4, 3, 3, 3), cost="120.00", norm=(4, 4))
    mk(w, "o8", node=w.tianhe, type="repair", status="completed", created=at(3, 12, 11), unit=ut, fault=w.f1,
       resp=15 * M, due=15 * M, done=25 * H, visits=1,
       events=[("arrive", 1 * H), ("complete", 25 * H)], survey=(5, 5, 5, 5, 5), cost="500.00", norm=(3, 3))
    # ---- April
    mk(w, "o9", node=w.tianhe, type="repair", status="closed", created=at(4, 30, 10), unit=ut, fault=w.f1,
       resp=30 * M, due=20 * M, done=6 * H, visits=1, response_breached=True,
       events=[("arrive", 2 * H), ("complete", 6 * H)], cost="80.00")
    mk(w, "o10", node=w.pudong, type="repair", status="dispatched", created=at(4, 25, 10), unit=u1, fault=w.f1,
       resp=25 * M)
    o11 = mk(w, "o11", node=w.pudong, type="maintenance", status="closed", created=at(4, 7, 9, 30), channel="web",
             resp=12 * M, done=47 * H + 59 * M, visits=1, assignee=tech,
             events=[("arrive", 23 * H + 59 * M), ("complete", 47 * H + 59 * M)], survey=(4, 4, 4, 4, 4),
             cost="60.00", norm=(0, 0))
    # a second, unanswered survey of o11 does not count
    Survey.objects.create(order=o11, task=CallbackTask.objects.create(order=o11, round=2, node=w.pudong, due_at=at(4, 12, 9)),
                          node=w.pudong, channel="phone")
    mk(w, "o12", node=w.hangzhou, type="complaint", status="closed", created=at(4, 10, 10), resp=50 * M,
       done=30 * H, resolve_breached=True)

    for node, month, amount in [(w.pudong, MARCH, "11010"), (w.hangzhou, MARCH, "5000"), (w.tianhe, MARCH, "8000"),
                                (w.pudong, APRIL, "12000"), (w.tianhe, APRIL, "6000")]:
        NodeSales.objects.create(node=node, month=month, amount=Decimal(amount))
    for model, month, units in [(w.ac_model, dt.date(2025, 1, 1), 1000), (w.ac_model, MARCH, 500),
                                (w.wm_model, dt.date(2025, 2, 1), 400), (w.wm_model, APRIL, 100)]:
        ModelSales.objects.create(model=model, month=month, units=units)
    return w


@pytest.fixture
def data(world):
    build(world)
    facts.rebuild()
    return world


def cell(node, grain, start, end=None, **kw):
    c = selectors.cells(nodes=[node], grain=grain, start=start, end=end or start, by_period=False, **kw)
    return c


def one(node, grain, start, end=None, key="", **kw):
    return cell(node, grain, start, end, **kw)[(node.pk, None, key)]


# Every indicator at headquarters, March 2025 (7 orders: o1–o4, o6–o8; o5 cancelled).
HQ_MARCH = {
    "orders": 7.0,
    # response minutes 10, 40, 100, 5, 20, 200, 15: 390 / 7
    "response_mean": 55.7,
    # buckets [0,15): 10, 5 · [15,30): 20, 15 · [30,60): 40 · [60,120): 100 · [120,240): 200.
    # p50: rank 3.5 falls in [15,30) after 2: 15 + 15 × 1.5/2 = 26.25 → 26.2 (half to even)
    "response_p50": 26.2,
    # p90: rank 6.3 in [120,240) after 6: 120 + 120 × 0.3 = 156
    "response_p90": 156.0,
    # on time: all but o2 (40 > 30); o3 has no deadline; o8 exactly at it: 6 / 7
    "response_on_time_rate": 85.7,
    # first handling ≤ 24 h: o1, o3, o4 (answer), o6, o8 — not o2 (26 h), o7 (30 h): 5 / 7
    "handled_24h_rate": 71.4,
    # resolved within 2880 min: o1, o3, o4, o7 (2400), o8 — not o2 (3000); o6 open: 5 / 7
    "resolved_48h_rate": 71.4,
    # resolved ≤ 1440 min after response: o1 (290), o3 (1220), o4 (175); not o2, o7 (2200), o8 (1485): 3 / 7
    "solved_24h_rate": 42.9,
    # resolved: o1, o2, o3, o4, o7, o8 of 7
    "resolution_rate": 85.7,
    # visited: o1, o2, o3, o7, o8; first-time fix: o3 (reopen at day 40 is late), o7, o8 —
    # not o1 (reopened at day 10), o2 (two visits): 3 / 5
    "ftf_rate": 60.0,
    # base: resolved repairs with unit + fault: o1, o2, o7, o8. Within 30 days: o1 (o2 after 7 days);
    # within 90: o1, o2 (o10 after 44 days), o8 (o9 after 48 days)
    "repeat_30_rate": 25.0,
    "repeat_90_rate": 75.0,
    # repairs o1, o2, o6, o7, o8 = 5; units sold by 31 March: 1000 + 500 (AC) + 400 (WM) = 1900 → 5000 / 1900
    "repairs_per_1000": 2.63,
    # surveys of o1, o2, o4, o7, o8 (overall 5, 2, 4, 3, 5 = 19 / 5)
    "sat_overall": 3.8,
    "sat_timeliness": 3.6,       # 5 + 1 + 4 + 3 + 5 = 18
    "sat_attitude": 4.2,         # 4 + 3 + 5 + 4 + 5 = 21
    "sat_professionalism": 3.8,  # 5 + 2 + 4 + 3 + 5 = 19
    "sat_result": 3.4,           # 4 + 2 + 3 + 3 + 5 = 17
    "satisfaction_share": 60.0,  # overall ≥ 4: o1, o4, o8 of 5
    "complaint_rate": 14.3,      # 1 complaint (o4) per 7 orders × 100
    "complaint_in_time_rate": 100.0,  # o4 resolved, not breached
    # checklists of the 5 visited: o1 5/5, o2 4/5, o7 4/4, o8 3/3, o3 none: 3 / 5
    "norm_compliance_rate": 60.0,
    # cost 200 + 350.50 + 120 + 500 = 1170.50; sales 11010 + 5000 + 8000 = 24010 → 4.875…
    "cost_share": 4.88,
    # resolution minutes 180 | 300 | 1320 | 1500 | 2400 | 3000 in buckets [60,240) [240,480)
    # [720,1440) [1440,2160) [2160,2880) [2880,4320). p50: rank 3 ends [720,1440): 1440 min = 24 h
    "cycle_p50": 24.0,
    # p90: rank 5.4 in [2880,4320) after 5: 2880 + 1440 × 0.4 = 3456 min = 57.6 h
    "cycle_p90": 57.6,
    "sla_breaches": 1.0,         # o2
}


def test_every_indicator_at_hq_in_march(data):
    assert set(HQ_MARCH) == set(INDICATORS)
    m = one(data.hq, "month", MARCH)
    assert selectors.values(m) == HQ_MARCH


def test_measures_at_hq_in_march(data):
    m = one(data.hq, "month", MARCH)
    assert m["cancelled"] == 1                                   # o5
    assert m["sat_n"] == 5 and m["sat_overall_min"] == 2 and m["sat_overall_max"] == 5
    assert m["sat_timeliness_min"] == 1 and m["sat_attitude_min"] == 3 and m["sat_result_max"] == 5
    assert m["cost"] == Decimal("1170.50") and m["sales"] == Decimal("24010.00")
    assert m["units_sold"] == 1900
    assert m["response_breached"] == 1 and m["resolve_breached"] == 1 and m["breached"] == 1
    assert (m["repeat_base"], m["repeat_30"], m["repeat_90"]) == (4, 1, 3)
    assert m["resp_h00"] == 2 and m["resp_h01"] == 2 and m["resp_h04"] == 1
    assert m["cyc_h07"] == 1 and m["cyc_h03"] == 0
    assert m["norm_checked"] == 4 and m["norm_ok"] == 3


def test_each_order_fact(data):
    f = {o: OrderFact.objects.get(order=data.orders[o]) for o in ("o1", "o3", "o5", "o11")}
    assert (f["o1"].day, f["o1"].slot) == (dt.date(2025, 3, 3), 109)   # Monday 09:xx
    assert (f["o3"].day, f["o3"].slot) == (dt.date(2025, 3, 15), 620)  # Saturday 20:30
    assert f["o1"].category_id == data.ac.pk and f["o1"].model_id == data.ac_model.pk
    assert f["o1"].fault_id == data.f1.pk and f["o1"].assignee_id == data.tech_employee.pk
    assert f["o3"].category_id is None and f["o3"].ftf == 1
    # cancelled: only the flag
    assert f["o5"].cancelled == 1 and f["o5"].orders == 0 and f["o5"].responded == 0 and f["o5"].resp_h00 == 0
    # 23:59 to first handling is within 24 h; 47:59 (2879 min) within 48 h; 0 items is not compliant
    assert f["o11"].handled_24h == 1 and f["o11"].resolve_min == 2879 and f["o11"].resolved_48h == 1
    assert f["o11"].norm_checked == 1 and f["o11"].norm_ok == 0
    assert f["o11"].sat_n == 1  # the unanswered second survey does not count


def test_outlet_in_march(data):
    v = selectors.values(one(data.pudong, "month", MARCH))
    assert v["orders"] == 5                     # o1, o2, o3, o4, o6
    assert v["response_on_time_rate"] == 80.0   # 4 of 5 (o2 late)
    assert v["resolution_rate"] == 80.0         # o1–o4 of 5
    assert v["ftf_rate"] == 33.3                # o3 of o1, o2, o3
    assert v["cost_share"] == 5.0               # 550.50 ÷ 11010
    assert v["repeat_30_rate"] == 50.0          # o1 of o1, o2
    assert v["sat_overall"] == 3.67             # 5 + 2 + 4 = 11 / 3
    # Hangzhou has no sales in April: no cost share
    assert selectors.values(one(data.hangzhou, "month", APRIL))["cost_share"] is None


def test_east_centre_in_the_first_quarter(data):
    m = one(data.east, "quarter", dt.date(2025, 2, 15))   # snapped to Q1
    v = selectors.values(m)
    assert v["orders"] == 6                     # o1–o4, o6 (pudong), o7 (hangzhou)
    assert v["resolution_rate"] == 83.3         # o1, o2, o3, o4, o7 of 6
    assert v["ftf_rate"] == 50.0                # o3, o7 of o1, o2, o3, o7
    assert v["repeat_30_rate"] == 33.3          # o1 of o1, o2, o7
    assert v["repeat_90_rate"] == 66.7          # o1, o2 of 3
    # response minutes 10, 40, 100, 5, 20, 200: buckets 2, 1, 1, 1, 1; rank 3 ends [15,30) → 30
    assert v["response_p50"] == 30.0
    assert m["sales"] == Decimal("16010.00")    # 11010 + 5000
    assert v["cost_share"] == 4.19              # 670.50 ÷ 16010


def test_hq_in_april_and_by_model(data):
    v = selectors.values(one(data.hq, "month", APRIL))
    assert v["orders"] == 4                      # o9–o12
    assert v["complaint_in_time_rate"] == 0.0    # o12 resolved late
    assert v["sla_breaches"] == 2                # o9 response, o12 resolution
    assert v["repairs_per_1000"] == 1.0          # o9, o10 per 2000 units sold by 30 April
    assert v["handled_24h_rate"] == 50.0         # o9 (+2 h), o11 (23:59) of 4
    by_model = cell(data.hq, "month", APRIL, dim="model")
    wm = by_model[(data.hq.pk, None, str(data.wm_model.pk))]
    ac = by_model[(data.hq.pk, None, str(data.ac_model.pk))]
    assert selectors.values(wm)["repairs_per_1000"] == 2.0    # o9 per 400 + 100 washing machines
    assert selectors.values(ac)["repairs_per_1000"] == 0.67   # o10 per 1500 air conditioners
    assert by_model[(data.hq.pk, None, "")]["orders"] == 2     # o11, o12 have no unit
    assert by_model[(data.hq.pk, None, "")]["units_sold"] is None


def test_by_technician(data):
    tech = data.tech_employee.pk
    c = selectors.person_cells([tech, data.tech2.pk], grain="month", start=MARCH, end=dt.date(2025, 4, 30))
    march = selectors.values(c[(tech, MARCH)])
    assert march["orders"] == 4                  # o1, o2, o3, o6
    assert march["ftf_rate"] == 33.3             # o3 of o1, o2, o3
    assert march["response_mean"] == 42.5        # 10 + 40 + 100 + 20 = 170 / 4
    assert selectors.values(c[(tech, APRIL)])["orders"] == 1          # o11
    assert selectors.values(c[(data.tech2.pk, MARCH)])["ftf_rate"] == 100.0  # o7
    # the same by the breakdown of a node, and per day from the facts
    by_assignee = cell(data.hq, "month", MARCH, dim="assignee")
    assert by_assignee[(data.hq.pk, None, str(tech))]["orders"] == 4
    assert by_assignee[(data.hq.pk, None, "")]["orders"] == 2          # o4, o8
    daily = selectors.person_cells([tech], grain="week", start=dt.date(2025, 3, 3), end=dt.date(2025, 3, 9))
    assert daily[(tech, dt.date(2025, 3, 3))]["orders"] == 1            # o1


def test_breakdowns_by_channel_type_and_slot(data):
    by_channel = cell(data.hq, "month", MARCH, dim="channel")
    assert {k[2]: m["orders"] for k, m in by_channel.items()} == {"phone": 5, "web": 1, "app": 1}
    by_type = cell(data.hq, "quarter", MARCH, dim="type", keys=["repair", "complaint", "recycling"])
    assert {k[2]: m["orders"] for k, m in by_type.items()} == {"repair": 5, "complaint": 1, "recycling": 0}
    by_slot = cell(data.hq, "month", MARCH, dim="slot")
    # o1 Monday 09:00, o2 Monday 14:00, o7 Wednesday 08:00, o3 Saturday 20:30
    assert {k: by_slot[(data.hq.pk, None, k)]["orders"] for k in ("109", "114", "308", "620")} == dict.fromkeys(
        ("109", "114", "308", "620"), 1)
    assert by_slot[(data.hq.pk, None, "210")]["cancelled"] == 1       # o5, Tuesday 10:00
