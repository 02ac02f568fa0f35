"""The product catalog and the 三包 policies over the API.

The catalog services check no permission themselves: every handler here declares
``catalog.view``, or ``catalog.edit`` held at headquarters. No ``from __future__ import
annotations`` here (see ``aftersales.api.permissions``).
"""

import datetime as dt

from django.core.exceptions import ObjectDoesNotExist
from ninja import Field, Router, Schema

from aftersales.api.permissions import requires
from aftersales.api.schemas import Cursor, In, Limit, PathId, Text, page_of, paginate
from aftersales.catalog import selectors, services
from aftersales.catalog.models import Exclusion
from aftersales.catalog.warranty import terms_for
from aftersales.org.roles import Perm

router = Router(tags=["catalog"])


# ---------------------------------------------------------------- schemas

class PolicyOut(Schema):
    return_days: int
    exchange_days: int
    whole_unit_months: int
    main_part_months: int
    repeat_repair_limit: int
    extend_by_repair_time: bool
    exchange_restarts: bool
    exclusions: list[str] = Field(description="适用的除外情形；为空表示全部适用")
    active_exclusions: list[str]

    @staticmethod
    def resolve_exclusions(obj):
        return list(obj.exclusions or [])

    @staticmethod
    def resolve_active_exclusions(obj):
        return [code for code in Exclusion.values if code in obj.active_exclusions()]


class CategoryRef(Schema):
    id: int
    code: str
    name: str


class CategoryOut(CategoryRef):
    name_en: str
    policy: PolicyOut | None

    @staticmethod
    def resolve_policy(obj):
        try:
            return obj.policy
        except ObjectDoesNotExist:
            return None


class MainPartOut(Schema):
    code: str
    name: str


class TermsOut(Schema):
    return_days: int
    exchange_days: int
    whole_unit_months: int
    main_part_months: int
    repeat_repair_limit: int


class ProductModelOut(Schema):
    id: int
    code: str
    name: str
    brand: str
    category: CategoryRef
    launched_on: dt.date | None
    discontinued_on: dt.date | None
    whole_unit_months: int | None = Field(description="型号覆盖的整机保修月数（为空则按类别政策）")
    main_part_months: int | None = Field(description="型号覆盖的主要部件保修月数（为空则按类别政策）")
    main_parts: list[MainPartOut]
    terms: TermsOut = Field(description="实际适用的三包条款")

    @staticmethod
    def resolve_main_parts(obj):
        return sorted(obj.main_parts.all(), key=lambda p: p.code)

    @staticmethod
    def resolve_terms(obj):
        return terms_for(obj)


class PolicyIn(In):
    return_days: int
    exchange_days: int
    whole_unit_months: int
    main_part_months: int
    repeat_repair_limit: int
    extend_by_repair_time: bool
    exchange_restarts: bool
    exclusions: list[Exclusion] = Field(default_factory=list, max_length=20,
                                        description="适用的除外情形；为空表示全部适用")


class CategoryIn(In):
    code: Text(20)
    name: Text(50)
    name_en: Text(50) = ""


class MainPartIn(In):
    code: Text(30)
    name: Text(50)


class ProductModelIn(In):
    category: Text(20) = Field(description="类别编码")
    code: Text(40)
    name: Text(100)
    brand: Text(50) = ""
    main_parts: list[MainPartIn] = Field(default_factory=list, max_length=100)
    whole_unit_months: int | None = None
    main_part_months: int | None = None


CategoryPage = page_of(CategoryOut)
ProductModelPage = page_of(ProductModelOut)


# ---------------------------------------------------------------- handlers

@router.get("/categories", response=CategoryPage)
@requires(Perm.CATALOG_VIEW)
def category_list(request, limit: Limit, cursor: Cursor):
    """Product categories with their 三包 policy."""
    return paginate(selectors.category_list(), ordering=["code", "id"], cursor=cursor, limit=limit)


@router.post("/categories", response={201: CategoryOut})
@requires(Perm.CATALOG_EDIT, at_hq=True)
def category_create(request, payload: CategoryIn):
    """A new category, with the default policy."""
    return services.category_create(user=request.auth, **payload.model_dump())


@router.put("/categories/{category_id}/policy", response=PolicyOut)
@requires(Perm.CATALOG_EDIT, at_hq=True)
def policy_update(request, category_id: PathId, payload: PolicyIn):
    """Replace a category's 三包 policy."""
    changes = payload.model_dump()
    changes["exclusions"] = [str(x.value) for x in payload.exclusions]
    return services.policy_update(user=request.auth, category_id=category_id, **changes)


@router.get("/models", response=ProductModelPage)
@requires(Perm.CATALOG_VIEW)
def product_model_list(request, limit: Limit, cursor: Cursor, category: Text(20) | None = None,
                       q: Text(40) | None = None):
    """Product models by code (filters: ``category`` code, ``q`` code prefix)."""
    qs = selectors.product_model_queryset(category=category, q=q)
    return paginate(qs, ordering=["code", "id"], cursor=cursor, limit=limit)


@router.get("/models/{model_id}", response=ProductModelOut)
@requires(Perm.CATALOG_VIEW)
def product_model_detail(request, model_id: PathId):
    return selectors.product_model_get(model_id)


@router.post("/models", response={201: ProductModelOut})
@requires(Perm.CATALOG_EDIT, at_hq=True)
def product_model_create(request, payload: ProductModelIn):
    return services.product_model_create(
        user=request.auth, category_code=payload.category, code=payload.code, name=payload.name,
        brand=payload.brand, main_parts=[(p.code, p.name) for p in payload.main_parts],
        whole_unit_months=payload.whole_unit_months, main_part_months=payload.main_part_months,
    )
