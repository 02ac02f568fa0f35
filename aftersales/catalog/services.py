"""Writes of the product catalog and the 三包 policies.

The catalog is global reference data beneath the organisation, so it does not import it:
who may call these (``catalog.edit`` held at headquarters) is declared by the entry points
(API, pages, admin) that sit on top. ``user`` is taken for the audit trail."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import ErrorCollector, NotFound
from aftersales.records.audit import audit_record, snapshot

from .models import Category, Exclusion, MainPart, ProductModel, WarrantyPolicy

POLICY_FIELDS = ("return_days", "exchange_days", "whole_unit_months", "main_part_months", "repeat_repair_limit",
                 "extend_by_repair_time", "exchange_restarts", "exclusions")


@transaction.atomic
def category_create(*, user, code: str, name: str, name_en: str = "") -> Category:
    errs = ErrorCollector()
    code, name = (code or "").strip().upper(), (name or "").strip()
    if not code:
        errs.add("code", _("请填写编码。"))
    elif Category.objects.filter(code=code).exists():
        errs.add("code", _("编码 %(code)s 已被使用。") % {"code": code})
    if not name:
        errs.add("name", _("请填写名称。"))
    errs.raise_if_any()
    c = Category.objects.create(code=code, name=name, name_en=name_en)
    p = WarrantyPolicy.objects.create(category=c)
    audit_record(actor=user, action="category.create", obj=c, before=None, after=snapshot(c))
    audit_record(actor=user, action="policy.create", obj=p, before=None, after=snapshot(p))
    return c


@transaction.atomic
def product_model_create(*, user, category_code: str, code: str, name: str, brand: str = "",
                         main_parts: list[tuple[str, str]] | None = None, whole_unit_months: int | None = None,
                         main_part_months: int | None = None) -> ProductModel:
    errs = ErrorCollector()
    cat = Category.objects.filter(code=(category_code or "").strip().upper()).first()
    if cat is None:
        errs.add("category", _("产品类别不存在。"))
    code, name = (code or "").strip(), (name or "").strip()
    if not code:
        errs.add("code", _("请填写型号。"))
    elif ProductModel.objects.filter(code__iexact=code).exists():
        errs.add("code", _("型号 %(code)s 已存在。") % {"code": code})
    if not name:
        errs.add("name", _("请填写名称。"))
    for f, v in (("whole_unit_months", whole_unit_months), ("main_part_months", main_part_months)):
        if v is not None and not (1 <= v <= 240):
            errs.add(f, _("保修月数须在 1 到 240 之间。"))
    parts = [(c.strip(), n.strip()) for c, n in (main_parts or [])]
    if any(not c or not n for c, n in parts):
        errs.add("main_parts", _("主要部件须有编码和名称。"))
    if len({c for c, _n in parts}) != len(parts):
        errs.add("main_parts", _("主要部件编码重复。"))
    errs.raise_if_any()
    m = ProductModel.objects.create(category=cat, code=code, name=name, brand=brand,
                                    whole_unit_months=whole_unit_months, main_part_months=main_part_months)
    MainPart.objects.bulk_create([MainPart(model=m, code=c, name=n) for c, n in parts])
    after = snapshot(m)
    after["main_parts"] = parts
    audit_record(actor=user, action="model.create", obj=m, before=None, after=after)
    return m


@transaction.atomic
def policy_update(*, user, category_id: int, **changes) -> WarrantyPolicy:
    p = WarrantyPolicy.objects.select_for_update().filter(category_id=category_id).first()
    if p is None:
        raise NotFound()
    before = snapshot(p)
    errs = ErrorCollector()
    for f, v in changes.items():
        if f not in POLICY_FIELDS:
            errs.add(f, _("未知字段。"))
            continue
        if f == "exclusions":
            bad = [x for x in (v or []) if x not in Exclusion.values]
            if bad:
                errs.add(f, _("未知的除外情形：%(x)s。") % {"x": ", ".join(bad)})
                continue
        elif f in ("extend_by_repair_time", "exchange_restarts"):
            v = bool(v)
        else:
            if not isinstance(v, int) or v < 0 or v > 3650:
                errs.add(f, _("须为 0 到 3650 之间的整数。"))
                continue
        setattr(p, f, v)
    if not errs:
        if p.exchange_days < p.return_days:
            errs.add("exchange_days", _("换货期不能短于退货期。"))
        if p.main_part_months < p.whole_unit_months:
            errs.add("main_part_months", _("主要部件保修期不能短于整机保修期。"))
        if p.repeat_repair_limit < 1:
            errs.add("repeat_repair_limit", _("返修次数至少为 1。"))
    errs.raise_if_any()
    p.save()
    audit_record(actor=user, action="policy.update", obj=p, before=before, after=snapshot(p))
    return p
