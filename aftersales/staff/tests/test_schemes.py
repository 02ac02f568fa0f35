"""Scheme versions: items and weights checked (every bad field named at once), who may change
them, and versioning — a version made in the middle of a cycle applies from the next one."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from aftersales.core.errors import PermissionDenied, ValidationFailed
from aftersales.org.roles import Role
from aftersales.records.models import AuditEntry
from aftersales.staff import services_appraisal as svc
from aftersales.staff.models import Scheme, SchemeItem, Sheet, SheetScore

from .test_cycle import MARCH, TECH_ITEMS, agg, open_cycle


def create(world, items=None, valid_from="2025-01-01", role=Role.TECHNICIAN, user=None, note=""):
    return svc.scheme_version_create(user=user or world.hq_manager, role=role, valid_from=valid_from,
                                     items=TECH_ITEMS if items is None else items, note=note)


def test_a_version_with_its_items(world):
    v = create(world, note="首版")
    assert (v.number, v.valid_from, v.note, v.created_by) == (1, dt.date(2025, 1, 1), "首版", world.hq_manager)
    assert Scheme.objects.get(role=Role.TECHNICIAN).name == "技术支持工程师"
    items = list(SchemeItem.objects.filter(version=v))
    assert [i.code for i in items] == [i["code"] for i in TECH_ITEMS]
    assert sum(i.weight for i in items) == Decimal(100)
    att = next(i for i in items if i.code == "attitude")
    assert (att.kind, att.step, att.source, att.rule) == ("manual", "supervisor", "", "linear")
    v2 = create(world, valid_from=dt.date(2025, 2, 1))
    assert v2.number == 2 and v2.scheme_id == v.scheme_id
    assert AuditEntry.objects.filter(action="staff.scheme_version_create").count() == 2


def test_weights_must_sum_to_100(world):
    items = copy.deepcopy(TECH_ITEMS)
    items[0]["weight"] = 25  # 105 in all
    with pytest.raises(ValidationFailed) as e:
        create(world, items)
    assert set(e.value.errors) == {"weights"}
    assert "100%" in str(e.value.errors["weights"][0]) and "105" in str(e.value.errors["weights"][0])
    items[0]["weight"] = 10  # 95
    with pytest.raises(ValidationFailed) as e:
        create(world, items)
    assert set(e.value.errors) == {"weights"}
    items[0]["weight"] = "20.00"
    assert create(world, items).number == 1


def test_bad_items_are_named_field_by_field(world):
    items = copy.deepcopy(TECH_ITEMS)
    items[0].update(code="FTF", source="nonsense", weight=0)
    items[1].update(group="speed", rule="curve")
    items[2].update(kind="manual")  # a manual item with a source and no step
    items[3].update(params=[{"from": 8, "to": 4, "score": 100}])
    items[4].update(params={"base": 100, "per_event": -25, "cap": 150})
    items[5].update(step="calibration", label="")
    items[6].update(code="attitude", weight=10.123)
    with pytest.raises(ValidationFailed) as e:
        create(world, items + ["x"], valid_from="2025-13-01", role="customer")
    assert set(e.value.errors) == {
        "role", "valid_from",
        "items[0].code", "items[0].source", "items[0].weight",
        "items[1].group", "items[1].rule",
        "items[2].source", "items[2].step",
        "items[3].params", "items[4].params",
        "items[5].step", "items[5].label",
        "items[6].code", "items[6].weight",
        "items[7]",
    }
    with pytest.raises(ValidationFailed) as e:
        create(world, [])
    assert set(e.value.errors) == {"items"}
    linear = copy.deepcopy(TECH_ITEMS)
    linear[0]["params"] = {"floor": 90, "target": 90}
    linear[1]["step"] = "self"  # an automatic item is not rated at a step
    with pytest.raises(ValidationFailed) as e:
        create(world, linear)
    assert set(e.value.errors) == {"items[0].params", "items[1].step"}


def test_sources_are_person_indicators_and_the_appraisals_own(world):
    assert {"ftf_rate", "response_mean", "sat_overall", "completion_rate", "cost", "training_hours", "exam_score",
            "safety_incidents", "complaints"} <= set(svc.AUTO_SOURCES)
    assert "cost_share" not in svc.AUTO_SOURCES  # needs sales: never known for one person


def test_only_headquarters_changes_schemes(world):
    with pytest.raises(PermissionDenied):
        create(world, user=world.east_manager)
    with pytest.raises(PermissionDenied):
        create(world, user=world.pudong_tech)
    assert create(world, user=world.admin).number == 1


def test_a_version_made_mid_cycle_applies_from_the_next_cycle(world):
    w = world
    v1 = create(w)
    agg(w.tech_employee, orders=10, visited=10, ftf=7)  # ftf 70 %
    agg(w.tech_employee, period=dt.date(2025, 4, 1), orders=10, visited=10, ftf=7)
    march = open_cycle(w)
    # March under way: a new version with another rule for first-time fix
    items = copy.deepcopy(TECH_ITEMS)
    items[0]["params"] = {"floor": 60, "target": 70}
    with pytest.raises(ValidationFailed) as e:  # may not reach back into the open cycle
        create(w, items, valid_from=MARCH)
    assert set(e.value.errors) == {"valid_from"}
    v2 = create(w, items, valid_from=dt.date(2025, 3, 15))
    svc.cycle_close(user=w.hq_manager, cycle_id=march.pk, now=timezone.make_aware(dt.datetime(2025, 4, 2)))
    sheet = Sheet.objects.get(cycle=march, employee=w.tech_employee)
    assert sheet.version == v1
    assert SheetScore.objects.get(sheet=sheet, item__code="ftf").score == Decimal("50.00")  # (70-50)/(90-50)
    april = open_cycle(w, start=dt.date(2025, 4, 1))
    svc.cycle_close(user=w.hq_manager, cycle_id=april.pk, now=timezone.make_aware(dt.datetime(2025, 5, 2)))
    sheet = Sheet.objects.get(cycle=april, employee=w.tech_employee)
    assert sheet.version == v2
    assert SheetScore.objects.get(sheet=sheet, item__code="ftf").score == Decimal("100.00")  # (70-60)/(70-60)
    with pytest.raises(ValidationFailed) as e:
        create(w, items, valid_from=dt.date(2025, 3, 15))  # same day twice (and before April's start)
    assert set(e.value.errors) == {"valid_from"}
