"""Back-office edits in the Django admin are audited like service calls."""

from aftersales.catalog.models import WarrantyPolicy
from aftersales.records.audit import audit_verify
from aftersales.records.models import AuditEntry


def test_admin_edit_of_a_policy_is_audited(world, client):
    client.force_login(world.admin)
    p = WarrantyPolicy.objects.get(category=world.ac)
    url = f"/admin/catalog/warrantypolicy/{p.pk}/change/"
    assert client.get(url).status_code == 200
    data = {"category": world.ac.pk, "return_days": 7, "exchange_days": 15, "whole_unit_months": 72,
            "main_part_months": 120, "repeat_repair_limit": 2, "extend_by_repair_time": "on",
            "exchange_restarts": "on", "exclusions": "[]"}
    r = client.post(url, data)
    assert r.status_code == 302, r.content[:2000]
    e = AuditEntry.objects.get(action="admin.update", object_type="catalog.warrantypolicy")
    assert e.before["whole_unit_months"] == 12 and e.after["whole_unit_months"] == 72
    assert e.actor_id == world.admin.pk
    assert audit_verify().ok


def test_admin_rejects_an_inconsistent_policy(world, client):
    client.force_login(world.admin)
    p = WarrantyPolicy.objects.get(category=world.ac)
    r = client.post(f"/admin/catalog/warrantypolicy/{p.pk}/change/", {
        "category": world.ac.pk, "return_days": 30, "exchange_days": 15, "whole_unit_months": 12,
        "main_part_months": 36, "repeat_repair_limit": 2, "exclusions": "[]"})
    assert r.status_code == 200  # the form comes back with the error, nothing saved
    assert WarrantyPolicy.objects.get(pk=p.pk).return_days == 7
    assert not AuditEntry.objects.filter(action="admin.update").exists()


def test_non_staff_cannot_open_the_admin(world, client):
    client.force_login(world.pudong_agent)
    assert client.get("/admin/catalog/warrantypolicy/").status_code == 302
