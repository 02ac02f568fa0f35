"""The catalog endpoints: catalog.view for reading, catalog.edit held at headquarters for writing."""

import pytest

from aftersales.catalog.models import Category, ProductModel, WarrantyPolicy
from aftersales.org.models import RoleAssignment
from aftersales.org.roles import Role
from aftersales.records.models import AuditEntry

from .conftest import ApiClient, errors_of

pytestmark = pytest.mark.django_db

POLICY = {"return_days": 7, "exchange_days": 15, "whole_unit_months": 24, "main_part_months": 72,
          "repeat_repair_limit": 2, "extend_by_repair_time": True, "exchange_restarts": True, "exclusions": []}


def test_categories_with_policy(world):
    r = ApiClient(world.customer_user).get("/catalog/categories")  # customers may read the catalog
    assert r.status_code == 200
    items = r.json()["items"]
    assert [c["code"] for c in items] == ["AC", "WM"]
    assert items[0]["policy"]["whole_unit_months"] == 12
    assert items[0]["policy"]["active_exclusions"][0] == "misuse"
    assert ApiClient(world.nobody).get("/catalog/categories").status_code == 403


def test_policy_update(world):
    url = f"/catalog/categories/{world.ac.id}/policy"
    assert ApiClient(world.pudong_agent).put(url, POLICY).status_code == 403
    r = ApiClient(world.hq_manager).put(url, POLICY)
    assert r.status_code == 200, r.content
    assert WarrantyPolicy.objects.get(category=world.ac).main_part_months == 72
    assert AuditEntry.objects.filter(action="policy.update").count() == 1


def test_catalog_edit_must_be_held_at_headquarters(world):
    # an (irregular) HQ manager role held over a centre does not allow catalog edits
    RoleAssignment.objects.create(user=world.nobody, role=Role.HQ_MANAGER, node=world.east)
    c = ApiClient(world.nobody)
    assert c.put(f"/catalog/categories/{world.ac.id}/policy", POLICY).status_code == 403
    assert c.post("/catalog/categories", {"code": "TV", "name": "电视"}).status_code == 403
    assert c.get("/catalog/models").status_code == 200


def test_policy_update_bad_input(world):
    c = ApiClient(world.hq_manager)
    url = f"/catalog/categories/{world.ac.id}/policy"
    r = c.put(url, {**POLICY, "exchange_days": 3, "main_part_months": 6})
    assert r.status_code == 400
    assert set(errors_of(r)) == {"exchange_days", "main_part_months"}
    r = c.put(url, {**POLICY, "exclusions": ["misuse", "weather"], "return_days": "seven"})
    assert r.status_code == 400
    assert set(errors_of(r)) == {"exclusions[1]", "return_days"}
    assert errors_of(r)["return_days"] == ["请输入整数。"]
    r = c.put(url, {"return_days": 7})
    assert r.status_code == 400 and "exchange_days" in errors_of(r)
    assert c.put("/catalog/categories/99999/policy", POLICY).status_code == 404


def test_models_list_and_detail(world):
    c = ApiClient(world.trainer)
    r = c.get("/catalog/models")
    assert [m["code"] for m in r.json()["items"]] == ["KFR-35GW", "XQG100"]
    r = c.get("/catalog/models", {"category": "ac"})
    assert [m["code"] for m in r.json()["items"]] == ["KFR-35GW"]
    r = c.get("/catalog/models", {"q": "xq"})
    assert [m["code"] for m in r.json()["items"]] == ["XQG100"]
    r = c.get(f"/catalog/models/{world.ac_model.id}")
    assert r.status_code == 200
    body = r.json()
    assert [p["code"] for p in body["main_parts"]] == ["COMP", "FANM"]
    assert body["terms"]["main_part_months"] == 36 and body["category"]["code"] == "AC"
    assert c.get("/catalog/models/99999").status_code == 404


def test_create_category_and_model(world):
    c = ApiClient(world.hq_manager)
    r = c.post("/catalog/categories", {"code": "tv", "name": "电视", "name_en": "Television"})
    assert r.status_code == 201, r.content
    assert r.json()["code"] == "TV" and r.json()["policy"]["return_days"] == 7
    assert AuditEntry.objects.filter(action="category.create").exists()
    r = c.post("/catalog/models", {"category": "TV", "code": "55E3", "name": "55寸电视", "whole_unit_months": 36,
                                   "main_parts": [{"code": "PANEL", "name": "显示屏"}]})
    assert r.status_code == 201, r.content
    assert r.json()["terms"]["whole_unit_months"] == 36 and r.json()["main_parts"] == [{"code": "PANEL", "name": "显示屏"}]
    assert AuditEntry.objects.filter(action="model.create", object_id=str(r.json()["id"])).exists()
    assert ApiClient(world.pudong_agent).post("/catalog/categories", {"code": "X", "name": "x"}).status_code == 403
    assert ApiClient(world.pudong_agent).post("/catalog/models", {"category": "TV", "code": "Y", "name": "y"}
                                              ).status_code == 403


def test_create_bad_input(world):
    c = ApiClient(world.hq_manager)
    r = c.post("/catalog/categories", {"code": "AC", "name": ""})
    assert r.status_code == 400 and set(errors_of(r)) == {"code", "name"}
    r = c.post("/catalog/models", {"category": "ZZ", "code": "kfr-35gw", "name": "x", "whole_unit_months": 0,
                                   "main_parts": [{"code": "A", "name": "a"}, {"code": "A", "name": "b"}]})
    assert r.status_code == 400
    assert set(errors_of(r)) == {"category", "code", "whole_unit_months", "main_parts"}
    r = c.post("/catalog/models", {"name": "x" * 101})
    assert r.status_code == 400
    assert errors_of(r) == {"category": ["请填写此项。"], "code": ["请填写此项。"], "name": ["不能超过 100 个字符。"]}
    assert not ProductModel.objects.filter(name="x").exists() and Category.objects.count() == 2
