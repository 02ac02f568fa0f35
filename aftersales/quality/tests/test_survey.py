"""Survey analysis (R-FB-2): per dimension mean, max, min, distribution, the lowest outlets and
technicians (at least five answers), the comments (low scores first, no customer data), the
button to raise an action; local answer dates; scope; page and API with bounded queries.

The data set (answered in March 2025, local time):

    Pudong (李师傅)    overall 5 4 3 2 5, and 5 at 23:50 on 31 March; timeliness 4 each;
                       comments on the 3 and the 2
    Hangzhou (赵师傅)  overall 5 5 5 4 4   timeliness 5 each   a comment on the last 4
    Tianhe (no tech)   overall 1 2         timeliness 1 each   (two answers: never ranked)
    + one at Pudong at 00:10 on 1 April (outside a range ending 31 March), overall 1.

East (Pudong + Hangzhou), 1–31 March: n = 11; overall (24 + 23) / 11, max 5, min 2,
distribution 1:0 2:1 3:1 4:3 5:6, share ≥ 4 = 9 / 11; timeliness (6 × 4 + 5 × 5) / 11.
Lowest outlets: Pudong 24 / 6 = 4.0 (n 6), Hangzhou 23 / 5 = 4.6 (n 5); technicians the same.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aftersales.api.tests.conftest import ApiClient, errors_of
from aftersales.conftest import make_user
from aftersales.feedback.models import CallbackTask, Survey
from aftersales.org.models import Employee
from aftersales.org.roles import Role
from aftersales.quality import selectors_improve as reads
from aftersales.tickets.models import WorkOrder

pytestmark = pytest.mark.django_db

TZ = timezone.get_fixed_timezone(480)
MARCH = (dt.date(2025, 3, 1), dt.date(2025, 3, 31))


def survey(w, node, *, overall, timeliness, at, assignee=None, comment="", others=4):
    n = WorkOrder.objects.count() + 1
    o = WorkOrder.objects.create(number=f"GDS{n:05d}", type="repair", channel="phone", status="closed",
                                 customer=w.c_pudong, node=node, problem="x", assignee=assignee, created_at=at,
                                 updated_at=at)
    task = CallbackTask.objects.create(order=o, node=node, due_at=at, status="done")
    return Survey.objects.create(order=o, task=task, node=node, channel="phone", answered_at=at, overall=overall,
                                 timeliness=timeliness, attitude=others, professionalism=others, result=others,
                                 resolved=overall >= 3, comment=comment)


@pytest.fixture
def sdata(world):
    w = world
    w.hz_tech = make_user("hangzhou_tech", Role.TECHNICIAN, w.hangzhou)
    w.hz_employee = Employee.objects.create(user=w.hz_tech, node=w.hangzhou, employee_no="T0003", name="赵师傅",
                                           hire_date=dt.date(2019, 1, 1))
    comments = {2: "预约时间一改再改", 3: "师傅迟到了"}
    for i, ov in enumerate([5, 4, 3, 2, 5]):
        survey(w, w.pudong, overall=ov, timeliness=4, at=dt.datetime(2025, 3, 3 + i, 10, tzinfo=TZ),
               assignee=w.tech_employee, comment=comments.get(ov, ""))
    for i, ov in enumerate([5, 5, 5, 4, 4]):
        survey(w, w.hangzhou, overall=ov, timeliness=5, at=dt.datetime(2025, 3, 10 + i, 10, tzinfo=TZ),
               assignee=w.hz_employee, comment="很满意" if i == 4 else "")
    for i, ov in enumerate([1, 2]):
        survey(w, w.tianhe, overall=ov, timeliness=1, at=dt.datetime(2025, 3, 20 + i, 10, tzinfo=TZ),
               comment="太差")
    # the last minute of 31 March counts, the first minutes of 1 April do not (local days)
    survey(w, w.pudong, overall=5, timeliness=4, at=dt.datetime(2025, 3, 31, 23, 50, tzinfo=TZ),
           assignee=w.tech_employee)
    survey(w, w.pudong, overall=1, timeliness=1, at=dt.datetime(2025, 4, 1, 0, 10, tzinfo=TZ),
           assignee=w.tech_employee, comment="四月的差评")
    return w


def test_analysis_numbers_by_hand(sdata):
    w = sdata
    a = reads.survey_analysis(w.east, *MARCH)
    assert a.n == 11
    dims = {d["code"]: d for d in a.dims}
    ov = dims["overall"]
    # overall: Pudong 5 4 3 2 5 5 (24) + Hangzhou 5 5 5 4 4 (23) = 47 / 11
    assert ov["mean"] == round(47 / 11, 2) and ov["max"] == 5 and ov["min"] == 2
    assert ov["dist"] == [0, 1, 1, 3, 6] and ov["share_ge4"] == round(100 * 9 / 11, 1)
    assert dims["timeliness"]["mean"] == round((4 * 6 + 5 * 5) / 11, 2)
    assert dims["timeliness"]["dist"] == [0, 0, 0, 6, 5]
    assert dims["attitude"]["mean"] == 4.0 and dims["attitude"]["min"] == 4 and dims["attitude"]["max"] == 4
    assert [(o["name"], o["n"], o["overall_mean"]) for o in a.outlets] == [
        ("上海浦东网点", 6, 4.0), ("杭州西湖网点", 5, 4.6)]
    assert [(t["name"], t["n"], t["overall_mean"]) for t in a.technicians] == [("李师傅", 6, 4.0), ("赵师傅", 5, 4.6)]


def test_ranking_needs_five_answers_and_scope_follows_the_node(sdata):
    w = sdata
    a = reads.survey_analysis(w.hq, *MARCH)
    assert a.n == 13
    assert [o["name"] for o in a.outlets] == ["上海浦东网点", "杭州西湖网点"]  # Tianhe has two answers only
    assert {d["code"]: d["min"] for d in a.dims}["overall"] == 1
    p = reads.survey_analysis(w.pudong, dt.date(2025, 3, 1), dt.date(2025, 4, 1))
    assert p.n == 7 and {d["code"]: d for d in p.dims}["overall"]["min"] == 1


def test_comments_low_first_then_latest(sdata):
    w = sdata
    rows = list(reads.survey_comments(w.east, *MARCH).order_by(*reads.COMMENT_ORDERING))
    assert [(s.overall, s.comment) for s in rows] == [(2, "预约时间一改再改"), (3, "师傅迟到了"), (4, "很满意")]
    assert [s.low_first for s in rows] == [1, 1, 0]
    low = list(reads.survey_comments(w.hq, *MARCH, low_only=True).order_by(*reads.COMMENT_ORDERING))
    assert [s.comment for s in low] == ["太差", "太差", "预约时间一改再改", "师傅迟到了"]


def _get(user, url):
    c = Client()
    c.force_login(user)
    return c.get(url)


def test_page_shows_figures_chart_comments_and_raise_buttons(sdata):
    w = sdata
    url = f"/quality/surveys/?node={w.east.pk}&start=2025-03-01&end=2025-03-31"
    resp = _get(w.quality, url)
    assert resp.status_code == 200
    html = resp.content.decode()
    assert 'data-figure="n">11<' in html
    assert 'data-chart="stacked-bars"' in html and 'id="dist-data"' in html
    assert "预约时间一改再改" in html and "太差" not in html  # Tianhe is not in the east
    assert w.c_pudong.phone not in html and w.c_pudong.name not in html
    assert (f"/quality/actions/new/?source=survey&amp;node={w.east.pk}&amp;start=2025-03-01&amp;end=2025-03-31"
            "&amp;code=sat_overall") in html
    assert 'data-testid="low-outlets"' in html and 'data-testid="low-technicians"' in html
    # the raise form opens with the figure of the survey period
    resp = _get(w.quality, f"/quality/actions/new/?source=survey&node={w.east.pk}&start=2025-03-01"
                           "&end=2025-03-31&code=sat_overall")
    assert resp.status_code == 200 and 'data-code="sat_overall"' in resp.content.decode()


def test_page_scope_and_permissions(sdata):
    w = sdata
    assert _get(w.pudong_manager, f"/quality/surveys/?node={w.east.pk}").status_code == 404
    assert _get(w.pudong_manager, "/quality/surveys/?node=abc").status_code == 404
    assert _get(w.pudong_tech, "/quality/surveys/").status_code == 403
    resp = _get(w.pudong_manager, "/quality/surveys/?start=2025-03-01&end=2025-03-31")  # their own outlet
    assert resp.status_code == 200 and 'data-figure="n">6<' in resp.content.decode()
    resp = _get(w.quality, "/quality/surveys/?start=2025-04-01&end=2025-03-01")
    assert resp.status_code == 200 and 'data-testid="range-error"' in resp.content.decode()


def test_page_queries_do_not_grow_with_surveys(sdata):
    w = sdata
    c = Client()
    c.force_login(w.hq_manager)
    url = "/quality/surveys/?start=2025-03-01&end=2025-03-31"

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert c.get(url).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    for i in range(40):
        survey(w, w.hangzhou, overall=1 + i % 5, timeliness=3, at=dt.datetime(2025, 3, 15, 8, i, tzinfo=TZ),
               assignee=w.hz_employee, comment=f"意见{i}")
    assert count() == few


def test_api_summary_and_comments(sdata):
    w = sdata
    api = ApiClient(w.quality)
    resp = api.get("/quality/improve/surveys", {"node_id": w.east.pk, "start": "2025-03-01", "end": "2025-03-31"})
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["n"] == 11
    ov = next(d for d in body["dims"] if d["code"] == "overall")
    assert ov["dist"] == [0, 1, 1, 3, 6] and ov["min"] == 2 and ov["label"] == "总体评价"
    assert [o["n"] for o in body["outlets"]] == [6, 5]
    page = api.get("/quality/improve/surveys/comments", {"node_id": w.east.pk, "start": "2025-03-01",
                                                         "end": "2025-03-31", "limit": 2})
    first = page.json()
    assert [c["comment"] for c in first["items"]] == ["预约时间一改再改", "师傅迟到了"] and first["next_cursor"]
    assert "phone" not in first["items"][0] and "customer" not in first["items"][0]
    rest = api.get("/quality/improve/surveys/comments", {"node_id": w.east.pk, "start": "2025-03-01",
                                                         "end": "2025-03-31", "limit": 2,
                                                         "cursor": first["next_cursor"]}).json()
    assert [c["comment"] for c in rest["items"]] == ["很满意"] and rest["next_cursor"] is None
    bad = api.get("/quality/improve/surveys", {"node_id": w.east.pk, "start": "2025-04-01", "end": "2025-03-01"})
    assert bad.status_code == 400 and "end" in errors_of(bad)
    assert api.get("/quality/improve/surveys", {"start": "nope"}).status_code == 400
    assert api.get("/quality/improve/surveys", {"node_id": w.tianhe.pk}).status_code == 404
    assert ApiClient(w.pudong_tech).get("/quality/improve/surveys").status_code == 403
