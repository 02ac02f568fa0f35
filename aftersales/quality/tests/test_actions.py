"""Improvement actions (R-Q-2): raising one from a figure, a complaint or otherwise, the field
checks (5-why, fault tree, due date, indicator, owner), who may do what, the status flow, the
overdue list and sweep (once per action), the effect before / after on a hand-built data set,
the pages and the API, with fixed query counts on the lists."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aftersales.api.tests.conftest import ApiClient, errors_of
from aftersales.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from aftersales.notifications.models import Message
from aftersales.quality import facts, services
from aftersales.quality import selectors_improve as reads
from aftersales.quality.models import Action, ActionNote
from aftersales.records.models import AuditEntry
from aftersales.tickets.models import WorkOrder

pytestmark = pytest.mark.django_db

TZ = timezone.get_fixed_timezone(480)
TODAY = timezone.localdate()


def raise_action(w, **kw) -> Action:
    args = dict(user=w.pudong_manager, source="figure", indicator="resolution_rate", node_id=w.pudong.pk,
                title="浦东解决率偏低", problem="3 月解决率 70%，低于目标 90%", owner_id=w.pudong_tech.pk,
                due_on=TODAY + dt.timedelta(days=14), whys=["客户不在家", "预约未确认"],
                fault_tree=[{"id": "1", "parent": "", "text": "解决率低"},
                            {"id": "2", "parent": "1", "text": "二次上门多"},
                            {"id": "3", "parent": "2", "text": "缺配件"}],
                root_cause="预约流程缺少确认", plan="上门前一天电话确认")
    args.update(kw)
    return services.action_raise(**args)


def fields_of(exc) -> set[str]:
    return set(exc.value.errors)


# ================================================================ raising

def test_raise_from_a_figure_numbers_notes_and_audits(world):
    a = raise_action(world)
    assert a.number.startswith(f"GJ{TODAY:%Y%m%d}") and len(a.number) == 14
    b = raise_action(world, title="第二项")
    assert int(b.number[-4:]) == int(a.number[-4:]) + 1
    assert a.status == "open" and a.node_id == world.pudong.pk and a.owner_id == world.pudong_tech.pk
    assert a.whys == ["客户不在家", "预约未确认"] and len(a.fault_tree) == 3
    assert a.baseline is None  # no orders in the three months before
    note = ActionNote.objects.get(action=a)
    assert note.status == "open" and "李师傅" in note.text
    assert AuditEntry.objects.filter(object_type="quality.action", object_id=str(a.pk),
                                     action="quality.action_raise").count() == 1


def test_raise_checks_every_field_at_once(world):
    with pytest.raises(ValidationFailed) as e:
        raise_action(world, indicator="no_such", whys=["1", "2", "3", "4", "5", "6"],
                     due_on=TODAY - dt.timedelta(days=1), title="",
                     fault_tree=[{"id": "1", "parent": "", "text": "顶"}, {"id": "2", "parent": "", "text": "又一个顶"}])
    assert {"indicator", "whys", "due_on", "title", "fault_tree"} <= fields_of(e)


@pytest.mark.parametrize("tree, field", [
    ([{"id": "1", "parent": "9", "text": "上级不存在"}], "fault_tree[0].parent"),
    ([{"id": "1", "parent": "", "text": "顶"}, {"id": "2", "parent": "3", "text": "a"},
      {"id": "3", "parent": "2", "text": "b"}], "fault_tree[1].parent"),  # a cycle beside the root
    ([{"id": "1", "parent": "", "text": "顶"}, {"id": "1", "parent": "1", "text": "重复"}], "fault_tree[1].id"),
    ([{"id": "1", "parent": "", "text": ""}], "fault_tree[0].text"),
    ([{"id": str(i), "parent": "" if i == 0 else "0", "text": "x"} for i in range(51)], "fault_tree"),
    ("not a list", "fault_tree"),
])
def test_bad_fault_trees(world, tree, field):
    with pytest.raises(ValidationFailed) as e:
        raise_action(world, fault_tree=tree)
    assert field in fields_of(e), e.value.errors


def test_whys_must_be_non_empty_and_at_most_five(world):
    with pytest.raises(ValidationFailed) as e:
        raise_action(world, whys=["为什么一", "", "为什么三"])
    assert fields_of(e) == {"whys[1]"}
    a = raise_action(world, whys=["1", "2", "3", "4", "5"])
    assert len(a.whys) == 5


def test_figure_and_survey_need_an_indicator_and_dims_are_checked(world):
    with pytest.raises(ValidationFailed) as e:
        raise_action(world, source="survey", indicator="")
    assert fields_of(e) == {"indicator"}
    with pytest.raises(ValidationFailed) as e:
        raise_action(world, dim="colour", key="red")
    assert fields_of(e) == {"dim"}
    with pytest.raises(ValidationFailed) as e:
        raise_action(world, dim="channel", key="")
    assert fields_of(e) == {"key"}
    a = raise_action(world, source="other", indicator="", title="其他问题")
    assert a.indicator == "" and a.baseline is None


def test_owner_must_work_within_the_subtree_or_above(world):
    with pytest.raises(ValidationFailed) as e:
        raise_action(world, owner_id=world.tianhe_agent.pk)  # another centre
    assert fields_of(e) == {"owner_id"}
    with pytest.raises(ValidationFailed) as e:
        raise_action(world, owner_id=world.customer_user.pk)  # a customer
    assert fields_of(e) == {"owner_id"}
    assert raise_action(world, owner_id=world.east_manager.pk).owner_id == world.east_manager.pk  # above


def test_outlet_manager_cannot_raise_for_another_outlet(world):
    with pytest.raises(NotFound):
        raise_action(world, node_id=world.hangzhou.pk, owner_id=world.hangzhou_agent.pk)
    with pytest.raises(NotFound):  # a centre above them is out of their scope too
        raise_action(world, node_id=world.east.pk)
    a = raise_action(world, user=world.east_manager, node_id=world.hangzhou.pk, owner_id=world.hangzhou_agent.pk)
    assert a.node_id == world.hangzhou.pk


def test_raise_from_a_complaint(world):
    from aftersales.tickets.services import order_create

    c = order_create(user=world.pudong_agent, customer_id=world.c_pudong.pk, type="complaint", channel="phone",
                     problem="技师迟到两小时")
    a = raise_action(world, source="complaint", complaint_id=c.pk, node_id=None, indicator="", title="迟到投诉整改")
    assert a.complaint_id == c.pk and a.node_id == c.node_id
    repair = order_create(user=world.pudong_agent, customer_id=world.c_pudong.pk, type="repair", channel="phone",
                          problem="不制冷", unit_id=world.u_pudong.pk)
    with pytest.raises(ValidationFailed) as e:
        raise_action(world, source="complaint", complaint_id=repair.pk, indicator="")
    assert fields_of(e) == {"complaint_id"}
    # the complaint order's page offers to raise an action, to quality.view over its node
    page = Client()
    page.force_login(world.pudong_manager)
    html = page.get(f"/orders/{c.pk}/").content.decode()
    assert 'data-testid="quality-complaint-panel"' in html and a.number in html
    assert f"source=complaint&amp;complaint={c.pk}" in html
    page.force_login(world.pudong_agent)  # order.view but no quality.view
    assert 'data-testid="quality-complaint-panel"' not in page.get(f"/orders/{c.pk}/").content.decode()


# ================================================================ status flow and permissions

def test_status_flow_and_who_may_move(world):
    a = raise_action(world)
    with pytest.raises(Conflict):
        services.action_move(user=world.east_manager, action_id=a.pk, move="verify")
    with pytest.raises(PermissionDenied):  # quality.view only: neither owner nor manager
        services.action_move(user=world.pudong_manager, action_id=a.pk, move="start")
    with pytest.raises(NotFound):  # out of sight
        services.action_move(user=world.tianhe_agent, action_id=a.pk, move="start")
    a = services.action_move(user=world.pudong_tech, action_id=a.pk, move="start")  # the owner
    assert a.status == "in_progress"
    a = services.action_move(user=world.pudong_tech, action_id=a.pk, move="done", note="已执行电话确认")
    assert a.status == "done" and a.done_at is not None and a.result_note == "已执行电话确认"
    with pytest.raises(PermissionDenied):  # the owner does not verify their own action
        services.action_move(user=world.pudong_tech, action_id=a.pk, move="verify")
    with pytest.raises(ValidationFailed) as e:  # sending it back needs a reason
        services.action_move(user=world.quality, action_id=a.pk, move="reopen")
    assert fields_of(e) == {"note"}
    a = services.action_move(user=world.quality, action_id=a.pk, move="reopen", note="效果未验证")
    assert a.status == "in_progress" and a.done_at is None
    services.action_move(user=world.pudong_tech, action_id=a.pk, move="done")
    a = services.action_move(user=world.east_manager, action_id=a.pk, move="verify")
    assert a.status == "verified" and a.verified_at is not None
    with pytest.raises(Conflict):
        services.action_update(user=world.east_manager, action_id=a.pk, title="改标题")
    notes = list(ActionNote.objects.filter(action=a).values_list("status", flat=True))
    assert notes == ["open", "in_progress", "done", "in_progress", "done", "verified"]
    actions = set(AuditEntry.objects.filter(object_type="quality.action", object_id=str(a.pk))
                  .values_list("action", flat=True))
    assert {"quality.action_start", "quality.action_done", "quality.action_verify", "quality.action_reopen"} <= actions


def test_verify_by_a_manager_who_is_the_owner_is_refused(world):
    a = raise_action(world, user=world.east_manager, owner_id=world.east_manager.pk)
    services.action_move(user=world.east_manager, action_id=a.pk, move="start")
    services.action_move(user=world.east_manager, action_id=a.pk, move="done")
    with pytest.raises(PermissionDenied):
        services.action_move(user=world.east_manager, action_id=a.pk, move="verify")
    assert services.action_move(user=world.hq_manager, action_id=a.pk, move="verify").status == "verified"


def test_cancel_needs_a_reason_and_the_raiser_or_a_manager(world):
    a = raise_action(world)
    with pytest.raises(PermissionDenied):  # the owner alone does not cancel
        services.action_move(user=world.pudong_tech, action_id=a.pk, move="cancel", note="不需要")
    with pytest.raises(ValidationFailed):
        services.action_move(user=world.pudong_manager, action_id=a.pk, move="cancel")
    a = services.action_move(user=world.pudong_manager, action_id=a.pk, move="cancel", note="重复发起")
    assert a.status == "cancelled"


def test_update_notes_and_owner_change(world):
    a = raise_action(world)
    a = services.action_update(user=world.pudong_tech, action_id=a.pk, plan="每日晨会复盘", whys=["一", "二", "三"])
    assert a.plan == "每日晨会复盘" and a.whys == ["一", "二", "三"]
    with pytest.raises(ValidationFailed) as e:  # the owner does not hand it on
        services.action_update(user=world.pudong_tech, action_id=a.pk, owner_id=world.pudong_agent.pk)
    assert fields_of(e) == {"owner_id"}
    with pytest.raises(PermissionDenied):  # quality.view without being the owner
        services.action_update(user=world.pudong_manager, action_id=a.pk, plan="x")
    a = services.action_update(user=world.east_manager, action_id=a.pk, owner_id=world.pudong_agent.pk)
    assert a.owner_id == world.pudong_agent.pk
    with pytest.raises(ValidationFailed) as e:
        services.action_update(user=world.east_manager, action_id=a.pk, due_on=TODAY - dt.timedelta(days=3))
    assert fields_of(e) == {"due_on"}
    n = services.action_note(user=world.pudong_manager, action_id=a.pk, text="已安排培训")  # whoever raised it
    assert n.text == "已安排培训"
    with pytest.raises(NotFound):  # no longer the owner, and without quality.view
        services.action_note(user=world.pudong_tech, action_id=a.pk, text="不再是负责人")
    texts = list(ActionNote.objects.filter(action=a).values_list("text", flat=True))
    assert any("改进措施" in t for t in texts) and any("负责人" in t for t in texts)


# ================================================================ overdue

def test_overdue_list_and_sweep_tell_once(world):
    late = raise_action(world, due_on=TODAY)
    on_time = raise_action(world, title="未到期", due_on=TODAY + dt.timedelta(days=30))
    done = raise_action(world, title="已完成", due_on=TODAY)
    services.action_move(user=world.pudong_tech, action_id=done.pk, move="start")
    services.action_move(user=world.pudong_tech, action_id=done.pk, move="done")
    later = timezone.now() + dt.timedelta(days=2)
    assert services.actions_overdue_sweep(now=timezone.now()) == 0  # due today is not overdue yet
    assert services.actions_overdue_sweep(now=later) == 1
    msgs = Message.objects.filter(event="action_overdue", ref=late.number)
    assert {m.user_id for m in msgs} == {world.pudong_tech.pk, world.pudong_manager.pk}
    assert late.number in msgs.first().body and "已超过完成期限" in msgs.first().body
    late.refresh_from_db()
    assert late.overdue_notified_at is not None
    assert services.actions_overdue_sweep(now=later + dt.timedelta(hours=1)) == 0  # once
    assert Message.objects.filter(event="action_overdue").count() == 2
    # a new due date may be told about again when it passes
    services.action_update(user=world.east_manager, action_id=late.pk, due_on=TODAY + dt.timedelta(days=5))
    assert services.actions_overdue_sweep(now=later + dt.timedelta(days=10)) == 1  # late again, on_time not yet
    on_time.refresh_from_db()
    assert on_time.overdue_notified_at is None

    today = TODAY + dt.timedelta(days=2)
    ids = set(reads.action_list(world.quality, overdue=True, today=today).values_list("pk", flat=True))
    assert ids == set()  # late's new due date is in 5 days, "done" is done
    ids = set(reads.action_list(world.quality, overdue=True, today=TODAY + dt.timedelta(days=7))
              .values_list("pk", flat=True))
    assert ids == {late.pk}


def test_tasks_call_the_sweep(world):
    from aftersales.quality.tasks import actions_overdue_task

    raise_action(world, due_on=TODAY)
    actions_overdue_task()  # nothing overdue yet: no error, nothing sent
    assert not Message.objects.filter(event="action_overdue").exists()


# ================================================================ the effect

def _orders(w, month: int, resolved: int, unresolved: int, year: int = 2025):
    for i in range(resolved + unresolved):
        created = dt.datetime(year, month, 5 + i, 10, 0, tzinfo=TZ)
        done = i < resolved
        WorkOrder.objects.create(
            number=f"GDE{year}{month:02d}{i:02d}", type="repair", channel="phone",
            status="completed" if done else "received", customer=w.c_pudong, node=w.pudong, problem="x",
            created_at=created, updated_at=created + dt.timedelta(hours=5),
            responded_at=created + dt.timedelta(minutes=30),
            completed_at=created + dt.timedelta(hours=5) if done else None, visit_count=1 if done else 0)


def test_effect_before_and_after(world):
    """Resolution rate at Pudong: Feb 1/2, Mar 1/2, Apr 0/1 → baseline 2/5 = 40 %; raised 10 May,
    done 20 May; Jun 2/2, Jul 1/2 → after (June–July summed) 3/4 = 75 %; change +35."""
    _orders(world, 2, 1, 1)
    _orders(world, 3, 1, 1)
    _orders(world, 4, 0, 1)
    _orders(world, 6, 2, 0)
    _orders(world, 7, 1, 1)
    _orders(world, 1, 0, 3)  # before the baseline window: not counted
    facts.rebuild()
    raised = dt.datetime(2025, 5, 10, 9, 0, tzinfo=TZ)
    a = raise_action(world, now=raised, due_on=dt.date(2025, 6, 30))
    assert a.baseline == Decimal("40.00")
    services.action_move(user=world.pudong_tech, action_id=a.pk, move="start", now=raised)
    a = services.action_move(user=world.pudong_tech, action_id=a.pk, move="done",
                             now=dt.datetime(2025, 5, 20, 9, 0, tzinfo=TZ))
    e = reads.action_effect(a, today=dt.date(2025, 7, 15))
    assert [(m["month"], m["value"]) for m in e["months"]] == [
        (dt.date(2025, 2, 1), 50.0), (dt.date(2025, 3, 1), 50.0), (dt.date(2025, 4, 1), 0.0),
        (dt.date(2025, 5, 1), None), (dt.date(2025, 6, 1), 100.0), (dt.date(2025, 7, 1), 50.0)]
    assert e["baseline"] == 40.0 and e["after"] == 75.0 and e["change"] == 35.0 and e["improved"] is True
    assert e["raised_month"] == dt.date(2025, 5, 1) and e["done_month"] == dt.date(2025, 5, 1)
    # in the month it was done nothing is measured after it yet
    assert reads.action_effect(a, today=dt.date(2025, 5, 25))["after"] is None


def test_baseline_for_a_breakdown_key(world):
    _orders(world, 2, 1, 1)
    WorkOrder.objects.filter(number="GDE20250200").update(channel="web")
    facts.rebuild()
    a = raise_action(world, now=dt.datetime(2025, 3, 3, 9, 0, tzinfo=TZ), due_on=dt.date(2025, 4, 1),
                     dim="channel", key="phone")
    assert a.baseline == Decimal("0.00")  # the phone order was the unresolved one
    b = raise_action(world, now=dt.datetime(2025, 3, 3, 9, 0, tzinfo=TZ), due_on=dt.date(2025, 4, 1),
                     dim="channel", key="web")
    assert b.baseline == Decimal("100.00")


# ================================================================ pages

def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_pages_raise_show_and_move(world):
    c = _client(world.pudong_manager)
    start, end = "2025-03-01", "2025-03-31"
    resp = c.get(f"/quality/actions/new/?source=figure&code=resolution_rate&node={world.pudong.pk}"
                 f"&start={start}&end={end}")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert 'data-testid="figure"' in html and "问题解决率" in html and "李师傅" in html
    form = {"source": "figure", "indicator": "resolution_rate", "node_id": world.pudong.pk, "period_from": start,
            "period_to": end, "title": "解决率改进", "problem": "解决率低", "why_1": "配件不足", "why_2": "补货周期长",
            "fault_tree": "解决率低\n  配件不足\n    补货周期长\n  预约失败", "owner_id": world.pudong_tech.pk,
            "due_on": (TODAY + dt.timedelta(days=7)).isoformat(), "root_cause": "补货", "plan": "设安全库存"}
    bad = c.post("/quality/actions/new/", {**form, "due_on": "2020-01-01", "fault_tree": "顶一\n顶二"})
    assert bad.status_code == 400
    assert 'data-field="due_on"' in bad.content.decode() and 'data-field="fault_tree"' in bad.content.decode()
    resp = c.post("/quality/actions/new/", form)
    assert resp.status_code == 302
    a = Action.objects.get(title="解决率改进")
    assert a.fault_tree == [{"id": "1", "parent": "", "text": "解决率低"}, {"id": "2", "parent": "1", "text": "配件不足"},
                            {"id": "3", "parent": "2", "text": "补货周期长"}, {"id": "4", "parent": "1", "text": "预约失败"}]
    assert a.whys == ["配件不足", "补货周期长"] and str(a.period_from) == start
    html = c.get(f"/quality/actions/{a.pk}/").content.decode()
    assert 'data-testid="whys"' in html and 'data-testid="fault-tree"' in html and 'data-testid="effect"' in html
    assert 'id="effect-data"' in html and "quality/improve.js" in html
    assert 'data-move="start"' not in html  # the outlet manager neither owns nor manages it
    tech = _client(world.pudong_tech)  # the owner, without quality.view
    html = tech.get(f"/quality/actions/{a.pk}/").content.decode()
    assert 'data-move="start"' in html and 'data-move="cancel"' not in html
    assert tech.post(f"/quality/actions/{a.pk}/move/start/").status_code == 302
    assert tech.post(f"/quality/actions/{a.pk}/move/verify/").status_code == 403
    assert tech.post(f"/quality/actions/{a.pk}/move/start/").status_code == 409
    assert tech.post(f"/quality/actions/{a.pk}/note/", {"text": "已联系供应商"}).status_code == 302
    a.refresh_from_db()
    assert a.status == "in_progress"
    assert _client(world.tianhe_agent).get(f"/quality/actions/{a.pk}/").status_code == 404
    # the owner options follow the node chosen
    opts = c.get(f"/quality/actions/owners/?node_id={world.pudong.pk}").content.decode()
    assert "李师傅" in opts and world.tianhe_agent.username not in opts
    assert c.get(f"/quality/actions/owners/?node_id={world.tianhe.pk}").status_code == 404


def test_edit_page_keeps_the_tree_and_reports_errors(world):
    a = raise_action(world)
    c = _client(world.pudong_tech)
    html = c.get(f"/quality/actions/{a.pk}/").content.decode()
    assert "解决率低\n  二次上门多\n    缺配件" in html
    resp = c.post(f"/quality/actions/{a.pk}/edit/", {"title": "", "problem": "p", "due_on": a.due_on.isoformat(),
                                                     "fault_tree": "a\nb"})
    assert resp.status_code == 400 and 'data-field="title"' in resp.content.decode()
    resp = c.post(f"/quality/actions/{a.pk}/edit/", {"title": "新标题", "problem": "p", "due_on": a.due_on.isoformat(),
                                                     "fault_tree": "a\n  b", "why_1": "w"})
    assert resp.status_code == 302
    a.refresh_from_db()
    assert a.title == "新标题" and a.whys == ["w"] and len(a.fault_tree) == 2


def _count(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_list_filters_and_fixed_queries(world):
    c = _client(world.quality)
    for i in range(5):
        raise_action(world, title=f"措施{i}")
    few = _count(c, "/quality/actions/")
    for i in range(45):
        raise_action(world, title=f"更多{i}", owner_id=world.pudong_agent.pk if i % 2 else world.pudong_tech.pk)
    many = _count(c, "/quality/actions/")
    assert few == many
    html = c.get("/quality/actions/").content.decode()
    assert html.count('data-action="') == 50 and 'data-testid="next-page"' not in html
    raise_action(world, title="第51个")
    html = c.get("/quality/actions/").content.decode()
    assert 'data-testid="next-page"' in html
    mine = _client(world.pudong_tech).get("/quality/actions/?mine=1").content.decode()
    assert mine.count('data-action="') == 51 - 22
    assert _client(world.tianhe_agent).get("/quality/actions/").content.decode().count('data-action="') == 0
    filtered = c.get(f"/quality/actions/?node={world.hangzhou.pk}").content.decode()
    assert filtered.count('data-action="') == 0
    assert c.get(f"/quality/actions/?node={world.tianhe.pk}").status_code == 404  # out of scope


# ================================================================ the API

def test_api_raise_validation_and_flow(world):
    api = ApiClient(world.pudong_manager)
    body = {"source": "figure", "indicator": "resolution_rate", "node_id": world.pudong.pk, "title": "API 措施",
            "problem": "问题", "owner_id": world.pudong_tech.pk, "due_on": (TODAY + dt.timedelta(days=3)).isoformat(),
            "whys": ["a"], "fault_tree": [{"id": 1, "text": "顶"}, {"id": 2, "parent": 1, "text": "原因"}]}
    bad = api.post("/quality/improve/actions", {**body, "whys": list("abcdef"), "due_on": "2020-01-01",
                                                "indicator": "nope", "fault_tree": [{"id": 1, "parent": 1, "text": "x"}]})
    assert bad.status_code == 400
    assert {"whys", "due_on", "indicator"} <= set(errors_of(bad)) and any(k.startswith("fault_tree") for k in
                                                                             errors_of(bad))
    assert api.post("/quality/improve/actions", {**body, "node_id": world.tianhe.pk}).status_code == 404
    assert api.post("/quality/improve/actions", {**body, "due_on": "tomorrow"}).status_code == 400
    assert ApiClient(world.pudong_agent).post("/quality/improve/actions", body).status_code == 403
    resp = api.post("/quality/improve/actions", body)
    assert resp.status_code == 201, resp.content
    a = resp.json()
    assert a["number"].startswith("GJ") and a["fault_tree"][1] == {"id": "2", "parent": "1", "text": "原因"}
    assert a["moves"] == ["cancel"] and a["owner"]["username"] == "pudong_tech" and not a["overdue"]
    tech = ApiClient(world.pudong_tech)
    assert tech.get(f"/quality/improve/actions/{a['id']}").json()["moves"] == ["start"]
    assert tech.post(f"/quality/improve/actions/{a['id']}/moves/start", {}).json()["status"] == "in_progress"
    assert tech.post(f"/quality/improve/actions/{a['id']}/moves/verify", {}).status_code == 403
    assert tech.post(f"/quality/improve/actions/{a['id']}/moves/start", {}).status_code == 409
    assert tech.post(f"/quality/improve/actions/{a['id']}/moves/fly", {}).status_code == 400
    assert tech.post(f"/quality/improve/actions/{a['id']}/notes", {"text": "进展"}).status_code == 201
    resp = tech.patch(f"/quality/improve/actions/{a['id']}", {"plan": "新措施"})
    assert resp.status_code == 200 and resp.json()["plan"] == "新措施"
    assert len(resp.json()["notes"]) == 4
    eff = tech.get(f"/quality/improve/actions/{a['id']}/effect")
    assert eff.status_code == 200 and len(eff.json()["months"]) == 4 and eff.json()["after"] is None
    assert ApiClient(world.tianhe_agent).get(f"/quality/improve/actions/{a['id']}").status_code == 404
    listed = ApiClient(world.quality).get("/quality/improve/actions", {"status": "in_progress"}).json()
    assert [x["id"] for x in listed["items"]] == [a["id"]]


def test_api_list_fixed_queries(world):
    api = ApiClient(world.hq_manager)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert api.get("/quality/improve/actions", {"limit": 100}).status_code == 200
        return len(ctx.captured_queries)

    for i in range(5):
        raise_action(world, title=f"a{i}")
    few = count()
    for i in range(45):
        raise_action(world, title=f"b{i}")
    assert count() == few


def test_every_improve_operation_declares_its_permission():
    from aftersales.api.permissions import REGISTRY

    ApiClient().get("/openapi.json")  # mounts the routers
    ours = {k.removeprefix("aftersales_quality_api_improve_"): r.perm for k, r in REGISTRY.items()
            if k.startswith("aftersales_quality_api_improve_")}
    assert ours == {
        "action_list": "authenticated", "action_raise": "quality.view", "action_get": "authenticated",
        "action_update": "authenticated", "action_note": "authenticated", "action_move": "authenticated",
        "action_effect": "authenticated", "survey_analysis": "quality.view", "survey_comments": "quality.view",
        "norm_items": "authenticated", "norm_item_create": "quality.manage", "norm_item_update": "quality.manage",
        "norm_check_get": "authenticated", "norm_check_answer": "authenticated", "target_list": "quality.view",
        "target_set": "quality.manage", "target_clear": "quality.manage", "sales_grid": "quality.view",
        "sales_set": "quality.manage", "sales_import": "quality.manage", "model_sales_grid": "quality.view",
        "model_sales_set": "quality.manage", "model_sales_import": "quality.manage",
    }
