"""The parts catalog's writes (services_catalog): one part through a form, and the rules they keep."""

from decimal import Decimal

import pytest
from django.utils import timezone

from aftersales.catalog.models import MainPart, ProductModel
from aftersales.core.errors import NotFound, PermissionDenied, ValidationFailed
from aftersales.parts import services_catalog as sc
from aftersales.parts.models import Part, Stock, Warehouse, WarehouseKind
from aftersales.records.models import AuditEntry

pytestmark = pytest.mark.django_db


def audit(part):
    return list(AuditEntry.objects.filter(chain=f"parts.part:{part.pk}").order_by("seq"))


def test_create_a_part_with_its_models_and_audit(world):
    p = sc.part_create(user=world.hq_manager, code="P-COMP-35", name="压缩机 1.5匹", name_en="Compressor",
                       category="ac", fits="KFR-35GW", main_part_code="comp", unit_cost="680.5", serialised=True)
    p.refresh_from_db()
    assert (p.category, p.main_part_code, p.unit_cost, p.serialised, p.returnable, p.uom) == (
        world.ac, "COMP", Decimal("680.50"), True, True, "个")
    assert [m.code for m in p.fits.all()] == ["KFR-35GW"]
    [entry] = audit(p)
    assert entry.action == "part.create" and entry.after["fit_codes"] == ["KFR-35GW"]
    assert entry.actor_id == world.hq_manager.pk


def test_create_reports_every_bad_field_at_once(world):
    with pytest.raises(ValidationFailed) as e:
        sc.part_create(user=world.admin, code="坏 编码", name="", category="XX", fits=["NOPE-1", "KFR-35GW"],
                       unit_cost=Decimal("-1"), uom="一个很长很长很长的单位名称")
    assert set(e.value.errors) == {"code", "name", "category", "fits", "unit_cost", "uom"}
    assert "NOPE-1" in str(e.value.errors["fits"][0])
    assert not Part.objects.exists()


def test_fits_must_belong_to_the_category_and_main_part_to_the_fits(world):
    with pytest.raises(ValidationFailed) as e:
        sc.part_create(user=world.admin, code="P-1", name="电机", category="AC", fits="KFR-35GW，XQG100")
    assert "XQG100" in str(e.value.errors["fits"][0])
    with pytest.raises(ValidationFailed) as e:
        sc.part_create(user=world.admin, code="P-2", name="门封", category="WM", fits="XQG100", main_part_code="COMP")
    assert list(e.value.errors) == ["main_part_code"]
    with pytest.raises(ValidationFailed) as e:
        sc.part_create(user=world.admin, code="P-3", name="压缩机", main_part_code="COMP")
    assert list(e.value.errors) == ["main_part_code"]
    sc.part_create(user=world.admin, code="P-4", name="风扇电机", category="AC", fits="KFR-35GW", main_part_code="FANM")


def test_codes_are_unique_whatever_their_case(world):
    sc.part_create(user=world.admin, code="P-CAP", name="电容")
    with pytest.raises(ValidationFailed) as e:
        sc.part_create(user=world.admin, code="p-cap", name="电容")
    assert list(e.value.errors) == ["code"]


def test_only_catalog_editors_write_the_catalog(world):
    for user in (world.pudong_manager, world.east_manager, world.pudong_tech, world.nobody):
        with pytest.raises(PermissionDenied):
            sc.part_create(user=user, code="P-X", name="X")
    p = sc.part_create(user=world.admin, code="P-X", name="X")
    with pytest.raises(PermissionDenied):
        sc.part_update(user=world.east_manager, part_id=p.pk, name="Y")


def test_update_changes_only_what_is_given_and_audits_before_and_after(world):
    m2 = ProductModel.objects.create(category=world.ac, code="KFR-26GW", name="挂壁式空调 1匹")
    MainPart.objects.create(model=m2, code="COMP", name="压缩机")
    p = sc.part_create(user=world.admin, code="P-COMP", name="压缩机", category="AC", fits=["KFR-35GW"],
                       main_part_code="COMP", unit_cost=600)
    sc.part_update(user=world.hq_manager, part_id=p.pk, fits="KFR-35GW, KFR-26GW", unit_cost=Decimal("650"))
    p.refresh_from_db()
    assert sorted(m.code for m in p.fits.all()) == ["KFR-26GW", "KFR-35GW"]
    assert (p.name, p.unit_cost, p.main_part_code) == ("压缩机", Decimal("650.00"), "COMP")
    last = audit(p)[-1]
    assert last.action == "part.update"
    assert last.before["fit_codes"] == ["KFR-35GW"] and last.after["fit_codes"] == ["KFR-26GW", "KFR-35GW"]
    assert last.before["unit_cost"] == "600.00" and last.after["unit_cost"] == "650.00"
    n = len(audit(p))
    sc.part_update(user=world.hq_manager, part_id=p.pk, unit_cost=Decimal("650.00"))  # nothing changes
    assert len(audit(p)) == n
    with pytest.raises(NotFound):
        sc.part_update(user=world.admin, part_id=p.pk + 999, name="x")
    with pytest.raises(ValidationFailed) as e:
        sc.part_update(user=world.admin, part_id=p.pk, colour="red")
    assert list(e.value.errors) == ["colour"]


def test_serialised_cannot_change_while_the_part_has_stock(world):
    p = sc.part_create(user=world.admin, code="P-PCB", name="主板")
    wh = Warehouse.objects.create(code="WH-HQ", name="总部仓", kind=WarehouseKind.HQ, node=world.hq)
    Stock.objects.create(warehouse=wh, part=p, on_hand=2, updated_at=timezone.now())
    with pytest.raises(ValidationFailed) as e:
        sc.part_update(user=world.admin, part_id=p.pk, serialised=True)
    assert list(e.value.errors) == ["serialised"]
    sc.part_update(user=world.admin, part_id=p.pk, name="主控板")  # other fields may change


def test_catalog_reads_filter_by_model_main_part_and_flags(world):
    sc.part_create(user=world.admin, code="P-COMP", name="压缩机", category="AC", fits="KFR-35GW",
                   main_part_code="COMP", serialised=True)
    sc.part_create(user=world.admin, code="P-SEAL", name="门封", category="WM", fits="XQG100", returnable=False)
    sc.part_create(user=world.admin, code="P-OLD", name="旧款遥控器", active=False)

    def codes(**kw):
        return [p.code for p in sc.part_queryset(**kw)]

    assert codes() == ["P-COMP", "P-SEAL"]
    assert codes(active=None) == ["P-COMP", "P-OLD", "P-SEAL"]
    assert codes(model="kfr-35gw") == ["P-COMP"]
    assert codes(main_part="*") == ["P-COMP"]
    assert codes(category="wm") == ["P-SEAL"]
    assert codes(serialised=True) == ["P-COMP"]
    assert codes(returnable=False) == ["P-SEAL"]
    assert codes(q="门") == ["P-SEAL"] and codes(q="p-co") == ["P-COMP"]
