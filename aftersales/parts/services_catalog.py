"""The parts catalog: its writes (one part at a time, and the import of a whole file) and the
reads of the catalog pages.

Who may write: ``catalog.edit`` (headquarters). The same rules apply to a form and to every
row of an import (``_check``): the code (letters, digits, - _ . /), the name, the category and
the models it fits (which must exist, and belong to the category when one is named), the main
part code (one of the main parts of a model it fits), the unit cost (yuan, not negative), and
``serialised``, which cannot change while the part has stock (its pieces would lose or lack
their serials). Every write appends the part's audit entry.

An import upserts by code, in one transaction: the rows that pass are written, those that do
not are reported (``excel.ImportResult``) and nothing of them is written. In a row, an empty
cell (or an absent column) leaves an existing part's value as it is (a new part: the default).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from aftersales.catalog.models import Category, ProductModel
from aftersales.core.errors import NotFound, PermissionDenied, ValidationFailed
from aftersales.org.roles import Perm
from aftersales.org.scope import principal
from aftersales.records.audit import audit_record, audit_record_created_bulk, snapshot

from . import excel
from .models import Part, Stock

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_./]{0,39}$")
FIELDS = ("code", "name", "name_en", "category", "fits", "main_part_code", "uom", "serialised", "returnable",
          "unit_cost", "active")
DEFAULTS: dict[str, Any] = {"name_en": "", "category": None, "fits": [], "main_part_code": "", "uom": "个",
                            "serialised": False, "returnable": True, "unit_cost": Decimal("0.00"), "active": True}
_AUDIT_FIELDS = ["id", "code", "name", "name_en", "category_id", "main_part_code", "uom", "serialised", "returnable",
                 "unit_cost", "active", "fit_codes"]


def _require_edit(user) -> None:
    if not principal(user).can(Perm.CATALOG_EDIT):
        raise PermissionDenied()


# ---------------------------------------------------------------- the rules, shared by forms and imports

@dataclass
class _Lookups:
    """The categories and models the values name, found once for a form or a whole file."""

    categories: dict[str, Category] = field(default_factory=dict)  # CODE → category
    models: dict[str, ProductModel] = field(default_factory=dict)  # CODE → model (main_parts prefetched)
    stocked: set[int] = field(default_factory=set)  # parts that have stock somewhere

    @classmethod
    def load(cls, *, category_codes: Iterable[str], model_codes: Iterable[str], part_ids: Iterable[int] = ()):
        cats = {c.code.upper(): c for c in Category.objects.filter(
            code__in=sorted({(c or "").strip().upper() for c in category_codes} - {""}))}
        models = excel.by_code(ProductModel.objects.select_related("category").prefetch_related("main_parts"),
                               model_codes)
        ids = sorted(set(part_ids))
        stocked = set(Stock.objects.filter(part_id__in=ids).filter(Q(on_hand__gt=0) | Q(defective__gt=0))
                      .values_list("part_id", flat=True).distinct()) if ids else set()
        return cls(cats, models, stocked)


def _fit_codes(part: Part) -> list[str]:
    return sorted(m.code for m in part.fits.all())


def _check(values: dict[str, Any], existing: Part | None, lk: _Lookups,
           current_fits: list[ProductModel] | None = None) -> tuple[dict[str, Any], dict[str, list]]:
    """The values as they will be stored (only those given, plus the defaults of a new part) and
    the errors by field. ``values``: code, name, name_en, category (a code or ""), fits (model
    codes), main_part_code, uom, serialised, returnable, unit_cost (Decimal), active."""
    errors: dict[str, list] = {}
    out: dict[str, Any] = {} if existing is not None else dict(DEFAULTS)

    def err(f, msg):
        errors.setdefault(f, []).append(msg)

    if existing is None or "code" in values:
        code = (values.get("code") or "").strip()
        if not code:
            err("code", _("请填写配件编码。"))
        elif not CODE.match(code):
            err("code", _("配件编码只能包含字母、数字和 - _ . /，以字母或数字开头，最长 40 位。"))
        elif existing is None or code != existing.code:
            out["code"] = code
    if existing is None or "name" in values:
        name = (values.get("name") or "").strip()
        if not name:
            err("name", _("请填写配件名称。"))
        elif len(name) > 100:
            err("name", _("名称最长 100 个字。"))
        else:
            out["name"] = name
    if "name_en" in values:
        name_en = (values.get("name_en") or "").strip()
        if len(name_en) > 100:
            err("name_en", _("英文名称最长 100 个字符。"))
        else:
            out["name_en"] = name_en
    category = existing.category if existing is not None else None
    if "category" in values:
        ccode = (values.get("category") or "").strip()
        category = lk.categories.get(ccode.upper()) if ccode else None
        if ccode and category is None:
            err("category", _("产品类别 %(code)s 不存在。") % {"code": ccode})
        else:
            out["category"] = category
    fits = current_fits if current_fits is not None else []
    if "fits" in values:
        codes = list(values.get("fits") or [])
        unknown = [c for c in codes if c.upper() not in lk.models]
        if unknown:
            err("fits", _("型号不存在：%(codes)s。") % {"codes": "、".join(unknown)})
        else:
            fits = list({lk.models[c.upper()].pk: lk.models[c.upper()] for c in codes}.values())
            out["fits"] = fits
    if category is not None and "fits" not in errors and "category" not in errors:
        other = [m.code for m in fits if m.category_id != category.pk]
        if other:
            err("fits", _("型号 %(codes)s 不属于产品类别 %(cat)s。") % {"codes": "、".join(other), "cat": category.code})
    main = existing.main_part_code if existing is not None else ""
    if "main_part_code" in values:
        main = (values.get("main_part_code") or "").strip().upper()
        if len(main) > 30:
            err("main_part_code", _("主要部件编码最长 30 位。"))
        else:
            out["main_part_code"] = main
    if main and "fits" not in errors and "main_part_code" not in errors:
        if not fits:
            err("main_part_code", _("填写主要部件编码时须同时填写适用型号。"))
        elif not any(mp.code.upper() == main for m in fits for mp in m.main_parts.all()):
            err("main_part_code", _("主要部件编码 %(code)s 不是所适用型号的主要部件。") % {"code": main})
    if "uom" in values:
        uom = (values.get("uom") or "").strip() or DEFAULTS["uom"]
        if len(uom) > 10:
            err("uom", _("计量单位最长 10 个字。"))
        else:
            out["uom"] = uom
    for f in ("serialised", "returnable", "active"):
        if f in values:
            if not isinstance(values[f], bool):
                err(f, excel.BOOL_ERROR)
            else:
                out[f] = values[f]
    if (existing is not None and "serialised" in out and out["serialised"] != existing.serialised
            and existing.pk in lk.stocked):
        err("serialised", _("该配件已有库存，不能更改序列号管理；请先清空库存。"))
    if "unit_cost" in values:
        cost = values["unit_cost"]
        if not isinstance(cost, Decimal) or not cost.is_finite() or cost < 0:
            err("unit_cost", _("成本单价须为不小于 0 的金额。"))
        elif cost > excel.MONEY_MAX or cost != cost.quantize(Decimal("0.01")):
            err("unit_cost", _("成本单价最多两位小数，且不超过 9,999,999,999.99。"))
        else:
            out["unit_cost"] = cost.quantize(Decimal("0.01"))
    return out, errors


def _apply(part: Part, values: dict[str, Any]) -> bool:
    """Set ``values`` on ``part`` (not its fits); True when something changed."""
    changed = False
    for f, v in values.items():
        if f == "fits":
            continue
        if getattr(part, f) != v:
            setattr(part, f, v)
            changed = True
    return changed


def _fits_changed(part: Part, values: dict[str, Any], current: list[ProductModel]) -> bool:
    return "fits" in values and {m.pk for m in values["fits"]} != {m.pk for m in current}


def _audit_after(part: Part, fits: list[ProductModel]) -> dict:
    part.fit_codes = sorted(m.code for m in fits)
    return snapshot(part, _AUDIT_FIELDS)


# ---------------------------------------------------------------- one part

def _form_values(kw: dict[str, Any]) -> dict[str, Any]:
    unknown = set(kw) - set(FIELDS)
    if unknown:
        raise ValidationFailed({f: [_("未知字段。")] for f in sorted(unknown)})
    if "fits" in kw:
        fits = kw["fits"]
        kw["fits"] = excel.split_list(fits) if isinstance(fits, str) else [str(c).strip() for c in fits or []]
    if "unit_cost" in kw and kw["unit_cost"] is not None and not isinstance(kw["unit_cost"], Decimal):
        try:
            kw["unit_cost"] = Decimal(str(kw["unit_cost"]))
        except ArithmeticError:
            kw["unit_cost"] = None
    return kw


def part_create(*, user, code: str, name: str, **kw) -> Part:
    """A new part; ``kw``: name_en, category (code), fits (model codes, a list or "A, B"),
    main_part_code, uom, serialised, returnable, unit_cost, active."""
    _require_edit(user)
    values = _form_values({"code": code, "name": name, **kw})
    with transaction.atomic():
        lk = _Lookups.load(category_codes=[values.get("category") or ""], model_codes=values.get("fits") or [])
        out, errors = _check(values, None, lk)
        if "code" in out and Part.objects.filter(code__iexact=out["code"]).exists():
            errors.setdefault("code", []).append(_("配件编码 %(code)s 已存在。") % {"code": out["code"]})
        if errors:
            raise ValidationFailed(errors)
        fits = out.pop("fits")
        part = Part.objects.create(**out)
        part.fits.set(fits)
        audit_record(actor=user, action="part.create", obj=part, before=None, after=_audit_after(part, fits))
    return part


def part_update(*, user, part_id: int, **changes) -> Part:
    """Change the fields given (same names as ``part_create``)."""
    _require_edit(user)
    values = _form_values(dict(changes))
    with transaction.atomic():
        part = Part.objects.select_for_update().filter(pk=part_id).first()
        if part is None:
            raise NotFound()
        current = list(part.fits.select_related("category").prefetch_related("main_parts"))
        before = _audit_after(part, current)
        lk = _Lookups.load(category_codes=[values.get("category") or ""], model_codes=values.get("fits") or [],
                           part_ids=[part.pk])
        out, errors = _check(values, part, lk, current)
        if "code" in out and Part.objects.filter(code__iexact=out["code"]).exclude(pk=part.pk).exists():
            errors.setdefault("code", []).append(_("配件编码 %(code)s 已存在。") % {"code": out["code"]})
        if errors:
            raise ValidationFailed(errors)
        changed = _apply(part, out)
        fits_changed = _fits_changed(part, out, current)
        if not changed and not fits_changed:
            return part
        part.save()
        fits = out["fits"] if fits_changed else current
        if fits_changed:
            part.fits.set(fits)
        audit_record(actor=user, action="part.update", obj=part, before=before, after=_audit_after(part, fits))
    return part


# ---------------------------------------------------------------- the import of a file

def _row_values(row) -> tuple[dict[str, Any], dict[str, list]]:
    """A row's cells as ``_check`` takes them; blank cells are left out (kept as they are)."""
    v = row.values
    values: dict[str, Any] = {}
    errors: dict[str, list] = {}
    for f in ("code", "name", "name_en", "category", "main_part_code", "uom"):
        if (v.get(f) or "").strip() or f == "code":
            values[f] = (v.get(f) or "").strip()
    if (v.get("fits") or "").strip():
        values["fits"] = excel.split_list(v["fits"])
    for f in ("serialised", "returnable", "active"):
        if (v.get(f) or "").strip():
            b = excel.parse_bool(v[f])
            if b is None:
                errors.setdefault(f, []).append(excel.BOOL_ERROR)
            else:
                values[f] = b
    if (v.get("unit_cost") or "").strip():
        cost, msg = excel.parse_money(v["unit_cost"])
        if msg:
            errors.setdefault("unit_cost", []).append(msg)
        else:
            values["unit_cost"] = cost
    return values, errors


def catalog_import(*, user, content: bytes) -> excel.ImportResult:
    """Upsert the parts of a catalog file (see the module's doc); returns what it did."""
    _require_edit(user)
    table = excel.read(excel.CATALOG, content)
    result = excel.ImportResult(kind=excel.CATALOG.key, total=len(table.rows))
    parsed = [(row, *_row_values(row)) for row in table.rows]
    with transaction.atomic():
        existing = excel.by_code(Part.objects.select_for_update(of=("self",)).select_related("category"),
                                 [vals.get("code") for _r, vals, _e in parsed])
        current_fits: dict[int, list[ProductModel]] = {p.pk: [] for p in existing.values()}
        pairs = list(Part.fits.through.objects.filter(part_id__in=list(current_fits))
                     .values_list("part_id", "productmodel_id"))
        fitted = ProductModel.objects.select_related("category").prefetch_related("main_parts").in_bulk(
            {m for _p, m in pairs})
        for part_id, model_id in pairs:
            current_fits[part_id].append(fitted[model_id])
        lk = _Lookups.load(category_codes=[vals.get("category") or "" for _r, vals, _e in parsed],
                           model_codes=[c for _r, vals, _e in parsed for c in vals.get("fits", [])],
                           part_ids=list(current_fits))
        first_row: dict[str, int] = {}
        creates: list[tuple[Part, list[ProductModel]]] = []
        updates: list[tuple[Part, dict, list[ProductModel], dict]] = []  # part, values, fits, before
        for row, values, errors in parsed:
            code = values.get("code", "")
            part = existing.get(code.upper()) if code else None
            if part is not None:
                values.pop("code")  # the stored spelling of the code stays
            out, check_errors = _check(values, part, lk, current_fits.get(part.pk) if part is not None else None)
            for f, msgs in check_errors.items():
                errors.setdefault(f, []).extend(msgs)
            if code and code.upper() in first_row:  # the first good row of a code wins
                errors.setdefault("code", []).append(_("配件编码与第 %(row)s 行重复。") % {"row": first_row[code.upper()]})
            elif code and not errors:
                first_row[code.upper()] = row.number
            if errors:
                result.failures.append(excel.failure(excel.CATALOG, row, errors))
                continue
            if part is None:
                fits = out.pop("fits")
                creates.append((Part(**out), fits))
                continue
            current = current_fits[part.pk]
            before = _audit_after(part, current)
            changed = _apply(part, out)
            fits_changed = _fits_changed(part, out, current)
            if changed or fits_changed:
                updates.append((part, out, out["fits"] if fits_changed else None, before))
            else:
                result.unchanged += 1
        _write(user, creates, updates)
        result.created, result.updated = len(creates), len(updates)
    return excel.finish(result, table)


def _write(user, creates, updates) -> None:
    through = Part.fits.through
    if creates:
        parts = Part.objects.bulk_create([p for p, _f in creates], batch_size=500)
        through.objects.bulk_create([through(part_id=p.pk, productmodel_id=m.pk)
                                     for p, (_p, fits) in zip(parts, creates, strict=True) for m in fits],
                                    batch_size=1000)
        for p, (_p, fits) in zip(parts, creates, strict=True):
            p.fit_codes = sorted(m.code for m in fits)
        audit_record_created_bulk(actor=user, action="part.import_create", objs=parts, fields=_AUDIT_FIELDS)
    if updates:
        fields = [f for f in FIELDS if f not in ("fits", "category")] + ["category"]
        Part.objects.bulk_update([p for p, _v, _f, _b in updates], fields, batch_size=500)
        refit = [(p, fits) for p, _v, fits, _b in updates if fits is not None]
        if refit:
            through.objects.filter(part_id__in=[p.pk for p, _f in refit]).delete()
            through.objects.bulk_create([through(part_id=p.pk, productmodel_id=m.pk) for p, fits in refit
                                         for m in fits], batch_size=1000)
        for part, _v, fits, before in updates:
            after = dict(before)
            after.update(snapshot(part, [f for f in _AUDIT_FIELDS if f != "fit_codes"]))
            if fits is not None:
                after["fit_codes"] = sorted(m.code for m in fits)
            audit_record(actor=user, action="part.import_update", obj=part, before=before, after=after)


# ---------------------------------------------------------------- reads of the catalog pages

CATALOG_ORDERING = ["code", "id"]


def part_queryset(*, q: str = "", category: str = "", model: str = "", main_part: str = "",
                  serialised: bool | None = None, returnable: bool | None = None,
                  active: bool | None = True) -> QuerySet[Part]:
    """Parts by code or name (English too), category code, a model they fit (its code), main
    part (code, or "*": any main part), serialised / returnable / active. The catalog is the
    same for every node: the pages declare who may read it."""
    qs = Part.objects.select_related("category").prefetch_related("fits")
    q = (q or "").strip()
    if q:
        qs = qs.filter(Q(code__istartswith=q) | Q(name__icontains=q) | Q(name_en__icontains=q))
    if category:
        qs = qs.filter(category__code=category.strip().upper())
    if model:
        fits = Part.fits.through.objects.filter(part_id=OuterRef("pk"), productmodel__code__iexact=model.strip())
        qs = qs.filter(Exists(fits))
    if main_part == "*":
        qs = qs.exclude(main_part_code="")
    elif main_part:
        qs = qs.filter(main_part_code=main_part.strip().upper())
    for f, v in (("serialised", serialised), ("returnable", returnable), ("active", active)):
        if v is not None:
            qs = qs.filter(**{f: v})
    return qs


def part_get(part_id: int) -> Part:
    p = Part.objects.select_related("category").prefetch_related("fits").filter(pk=part_id).first()
    if p is None:
        raise NotFound()
    return p
