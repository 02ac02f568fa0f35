"""/api/sla/: reading the standards and the calendar, headquarters changing them (403 for
others, 400 naming each bad field, audited), the deadlines preview and the scoped summary."""

import datetime as dt

import pytest
from django.utils import timezone

from aftersales.api.tests.conftest import ApiClient, errors_of
from aftersales.records.models import AuditEntry
from aftersales.tickets import sla, sweep
from aftersales.tickets.models import CalendarDay, SlaPolicy, WorkCalendar

from .test_sla import at, new_order, seed_defaults

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sla_defaults(db):
    seed_defaults()
    yield
    sla.clear_cache()


def consultation() -> SlaPolicy:
    return SlaPolicy.objects.get(type="consultation", priority="")


GOOD = {"response_minutes": 90, "resolve_minutes": 180, "at_risk_percent": 25, "calendar": "CN"}


# ---------------------------------------------------------------- policies

def test_policies_are_listed_for_order_viewers(world, django_assert_max_num_queries):
    c = ApiClient(world.pudong_agent)
    with django_assert_max_num_queries(6):
        r = c.get("/sla/policies")
    assert r.status_code == 200, r.content
    rows = {(p["type"], p["priority"]): p for p in r.json()}
    assert len(rows) == 10
    p = rows[("consultation", "")]
    assert (p["response_minutes"], p["resolve_minutes"], p["at_risk_percent"], p["calendar"]) == (120, 240, 20, "CN")
    assert p["type_label"] == "咨询" and p["priority_label"] == "任意"
    assert rows[("repair", "urgent")]["priority_label"] == "紧急"


@pytest.mark.parametrize("who, status", [("nobody", 403), ("trainer", 403), ("pudong_tech", 403),
                                         ("hq_manager", 200), ("quality", 200), ("pudong_dispatcher", 200)])
def test_policy_list_permission(world, who, status):
    assert ApiClient(getattr(world, who)).get("/sla/policies").status_code == status


def test_anonymous_is_401(world):
    assert ApiClient().get("/sla/policies").status_code == 401


def test_headquarters_changes_a_policy(world):
    p = consultation()
    assert sla.deadlines("consultation", "normal", at(2026, 3, 10, 10)).response_due == at(2026, 3, 10, 12)
    r = ApiClient(world.hq_manager).put(f"/sla/policies/{p.pk}", GOOD)
    assert r.status_code == 200, r.content
    assert r.json()["response_minutes"] == 90 and r.json()["at_risk_percent"] == 25
    p.refresh_from_db()
    assert (p.response_minutes, p.resolve_minutes, p.at_risk_percent) == (90, 180, 25)
    e = AuditEntry.objects.get(action="sla.policy_update", object_id=str(p.pk))
    assert e.actor_id == world.hq_manager.pk
    assert e.before["response_minutes"] == 120 and e.after["response_minutes"] == 90
    # the cache was cleared: new orders get the new standard
    assert sla.deadlines("consultation", "normal", at(2026, 3, 10, 10)).response_due == at(2026, 3, 10, 11, 30)


def test_round_the_clock_policy(world):
    p = consultation()
    r = ApiClient(world.admin).put(f"/sla/policies/{p.pk}", {**GOOD, "calendar": None})
    assert r.status_code == 200, r.content
    assert r.json()["calendar"] is None
    assert sla.deadlines("consultation", "normal", at(2026, 10, 1, 23)).response_due == at(2026, 10, 2, 0, 30)


@pytest.mark.parametrize("who", ["east_manager", "pudong_manager", "pudong_agent", "quality", "nobody"])
def test_only_headquarters_changes_policies(world, who):
    p = consultation()
    r = ApiClient(getattr(world, who)).put(f"/sla/policies/{p.pk}", {"response_minutes": "junk"})
    assert r.status_code == 403  # before any validation of the input
    p.refresh_from_db()
    assert p.response_minutes == 120


@pytest.mark.parametrize("body, fields", [
    ({**GOOD, "response_minutes": 0, "resolve_minutes": -5, "at_risk_percent": 100},
     {"response_minutes", "resolve_minutes", "at_risk_percent"}),
    ({**GOOD, "response_minutes": 300, "resolve_minutes": 200}, {"resolve_minutes"}),
    ({**GOOD, "at_risk_percent": 0}, {"at_risk_percent"}),
    ({**GOOD, "calendar": "XX"}, {"calendar"}),
    ({**GOOD, "response_minutes": 10**9}, {"response_minutes"}),
    ({**GOOD, "response_minutes": "abc"}, {"response_minutes"}),
    ({"response_minutes": 60}, {"resolve_minutes", "at_risk_percent", "calendar"}),
    ({**GOOD, "priority": "urgent"}, {"priority"}),
    ({**GOOD, "calendar": "C" * 21}, {"calendar"}),
])
def test_bad_policy_input_is_400_naming_each_field(world, body, fields):
    p = consultation()
    r = ApiClient(world.hq_manager).put(f"/sla/policies/{p.pk}", body)
    assert r.status_code == 400, r.content
    assert set(errors_of(r)) == fields
    p.refresh_from_db()
    assert p.response_minutes == 120
    assert not AuditEntry.objects.filter(action="sla.policy_update").exists()


def test_bad_policy_input_messages_are_chinese(world):
    r = ApiClient(world.hq_manager).put(f"/sla/policies/{consultation().pk}",
                                        {**GOOD, "response_minutes": 300, "resolve_minutes": 200})
    assert errors_of(r)["resolve_minutes"] == ["解决时限不能短于首次响应时限。"]


def test_unknown_policy_is_404(world):
    assert ApiClient(world.hq_manager).put("/sla/policies/999999", GOOD).status_code == 404


# ---------------------------------------------------------------- calendar days

def test_calendar_days_of_a_year(world):
    r = ApiClient(world.pudong_agent).get("/sla/calendars/CN/days", {"year": 2026})
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["code"], body["day_start"], body["day_end"], body["weekends_off"]) == ("CN", "08:00:00", "20:00:00",
                                                                                         True)
    assert len(body["days"]) == 33 + 6
    first = body["days"][0]
    assert first == {"date": "2026-01-01", "kind": "holiday", "kind_label": "法定节假日", "name": "元旦"}
    assert {"date": "2026-10-10", "kind": "workday", "kind_label": "调休上班", "name": "国庆节调休上班"} in body["days"]
    this_year = ApiClient(world.pudong_agent).get("/sla/calendars/CN/days").json()
    assert this_year["year"] == timezone.localdate().year


@pytest.mark.parametrize("path, params, status", [
    ("/sla/calendars/XX/days", {}, 404),
    ("/sla/calendars/CN/days", {"year": 1999}, 400),
    ("/sla/calendars/CN/days", {"year": "abc"}, 400),
    ("/sla/calendars/%00/days", {}, 400),
    ("/sla/calendars/" + "C" * 21 + "/days", {}, 400),
])
def test_calendar_days_bad_requests(world, path, params, status):
    assert ApiClient(world.pudong_agent).get(path, params).status_code == status


def test_headquarters_marks_and_unmarks_a_day(world):
    c = ApiClient(world.hq_manager)
    cal = WorkCalendar.objects.get(code="CN")
    day = dt.date(2026, 3, 10)
    assert sla.calendar(cal).is_working_day(day)
    r = c.post("/sla/calendars/CN/days", {"date": "2026-03-10", "kind": "holiday", "name": "台风停工"})
    assert r.status_code == 201, r.content
    assert r.json() == {"date": "2026-03-10", "kind": "holiday", "kind_label": "法定节假日", "name": "台风停工"}
    assert not sla.calendar(cal).is_working_day(day)  # the cache was cleared
    assert new_order(world, at(2026, 3, 9, 19)).response_due == at(2026, 3, 11, 9)  # Tuesday skipped
    # marking it again replaces the mark
    r = c.post("/sla/calendars/CN/days", {"date": "2026-03-10", "kind": "workday"})
    assert r.status_code == 201 and CalendarDay.objects.get(calendar=cal, date=day).kind == "workday"
    r = c.delete("/sla/calendars/CN/days/2026-03-10")
    assert r.status_code == 204
    assert not CalendarDay.objects.filter(calendar=cal, date=day).exists()
    assert sla.calendar(cal).is_working_day(day)
    assert c.delete("/sla/calendars/CN/days/2026-03-10").status_code == 404
    assert list(AuditEntry.objects.filter(action__startswith="sla.calendar_day").order_by("id")
                .values_list("action", flat=True)) == ["sla.calendar_day_set", "sla.calendar_day_set",
                                                       "sla.calendar_day_delete"]


@pytest.mark.parametrize("body, fields", [
    ({"date": "2026-13-01", "kind": "holiday"}, {"date"}),
    ({"date": "2026-03-10", "kind": "bogus"}, {"kind"}),
    ({"date": "2026-03-10", "kind": "holiday", "name": "长" * 31}, {"name"}),
    ({"kind": "holiday"}, {"date"}),
    ({"date": "1990-01-01", "kind": "holiday"}, {"date"}),
    ({"date": "2026-03-10", "kind": "holiday", "extra": 1}, {"extra"}),
])
def test_bad_day_input_is_400(world, body, fields):
    r = ApiClient(world.hq_manager).post("/sla/calendars/CN/days", body)
    assert r.status_code == 400, r.content
    assert set(errors_of(r)) == fields
    assert not CalendarDay.objects.filter(date=dt.date(2026, 3, 10)).exists()


def test_day_changes_need_headquarters(world):
    for who in (world.east_manager, world.pudong_agent, world.nobody):
        c = ApiClient(who)
        assert c.post("/sla/calendars/CN/days", {"date": "2026-03-10", "kind": "holiday"}).status_code == 403
        assert c.delete("/sla/calendars/CN/days/2026-10-01").status_code == 403
    assert ApiClient(world.hq_manager).post("/sla/calendars/XX/days",
                                            {"date": "2026-03-10", "kind": "holiday"}).status_code == 404
    assert CalendarDay.objects.filter(date=dt.date(2026, 10, 1)).exists()


# ---------------------------------------------------------------- preview and summary

def test_preview_gives_the_deadlines_of_an_order_received_now(world):
    r = ApiClient(world.pudong_agent).get("/sla/preview", {"type": "consultation"})
    assert r.status_code == 200, r.content
    body = r.json()
    received = dt.datetime.fromisoformat(body["received_at"])
    d = sla.deadlines("consultation", "normal", received)
    assert dt.datetime.fromisoformat(body["response_due"]) == d.response_due
    assert dt.datetime.fromisoformat(body["resolve_due"]) == d.resolve_due
    assert dt.datetime.fromisoformat(body["risk_at"]) == d.risk_at
    assert body["policy"]["response_minutes"] == 120 and body["priority"] == "normal"
    urgent = ApiClient(world.pudong_agent).get("/sla/preview", {"type": "repair", "priority": "urgent"}).json()
    assert urgent["policy"]["priority"] == "urgent" and urgent["policy"]["resolve_minutes"] == 1440


def test_preview_without_a_policy(world):
    SlaPolicy.objects.filter(type="delivery").delete()
    body = ApiClient(world.pudong_agent).get("/sla/preview", {"type": "delivery"}).json()
    assert body["policy"] is None and body["response_due"] is None


@pytest.mark.parametrize("params, fields", [
    ({"type": "bogus"}, {"type"}),
    ({}, {"type"}),
    ({"type": "repair", "priority": "asap"}, {"priority"}),
])
def test_preview_bad_input(world, params, fields):
    r = ApiClient(world.pudong_agent).get("/sla/preview", params)
    assert r.status_code == 400
    assert set(errors_of(r)) == fields


def test_preview_permission(world):
    assert ApiClient(world.nobody).get("/sla/preview", {"type": "bogus"}).status_code == 403
    assert ApiClient(world.pudong_tech).get("/sla/preview", {"type": "repair"}).status_code == 403


def test_summary_is_scoped(world, django_assert_max_num_queries):
    new_order(world, at(2026, 3, 10, 10))
    new_order(world, at(2026, 3, 10, 10, 20))  # due 12:20, at risk from 11:56
    sweep.sla_sweep(at(2026, 3, 10, 12, 1))  # the first breached, the second at risk
    c = ApiClient(world.pudong_agent)
    with django_assert_max_num_queries(8):
        r = c.get("/sla/summary")
    assert r.status_code == 200, r.content
    s = r.json()
    assert (s["total"], s["at_risk"], s["breached"], s["escalated"]) == (2, 1, 1, 1)
    assert s["by_level"] == {"1": 1}
    assert ApiClient(world.hq_manager).get("/sla/summary").json()["total"] == 2
    assert ApiClient(world.tianhe_agent).get("/sla/summary").json()["total"] == 0  # out of scope
    assert c.get("/sla/summary", {"since": "2026-03-11"}).json()["total"] == 0
    assert c.get("/sla/summary", {"since": "not-a-date"}).status_code == 400
    assert ApiClient(world.nobody).get("/sla/summary").status_code == 403


# ---------------------------------------------------------------- the admin

def test_admin_pages(world, client):
    client.force_login(world.admin)
    cal = WorkCalendar.objects.get(code="CN")
    new_order(world, at(2026, 3, 10, 10))
    for url in ("/admin/tickets/workcalendar/", f"/admin/tickets/workcalendar/{cal.pk}/change/",
                "/admin/tickets/slapolicy/", "/admin/tickets/faultcategory/", "/admin/tickets/faultcode/",
                "/admin/tickets/workorder/", "/admin/tickets/workorder/?sla_state__exact=ok"):
        assert client.get(url).status_code == 200, url
    p = consultation()
    form = {"type": "consultation", "priority": "", "response_minutes": "300", "resolve_minutes": "200",
            "at_risk_percent": "100", "calendar": str(cal.pk)}
    r = client.post(f"/admin/tickets/slapolicy/{p.pk}/change/", form)
    assert r.status_code == 200  # the form again, with its errors
    errors = r.context["adminform"].form.errors
    assert set(errors) == {"resolve_minutes", "at_risk_percent"}
    r = client.post(f"/admin/tickets/slapolicy/{p.pk}/change/", {**form, "resolve_minutes": "400",
                                                                 "at_risk_percent": "30"})
    assert r.status_code == 302
    p.refresh_from_db()
    assert (p.response_minutes, p.resolve_minutes, p.at_risk_percent) == (300, 400, 30)
    assert AuditEntry.objects.filter(action="admin.update", object_id=str(p.pk)).exists()
    assert sla.deadlines("consultation", "normal", at(2026, 3, 10, 10)).response_due == at(2026, 3, 10, 15)
    o_url = f"/admin/tickets/workorder/{new_order(world, at(2026, 3, 10, 11)).pk}/change/"
    assert client.get(o_url).status_code == 200  # shown
    assert client.post(o_url, {}).status_code == 403  # never edited
