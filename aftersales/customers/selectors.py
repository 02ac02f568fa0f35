"""Reads of the customer file. Scoping is applied here, once, for pages, API and exports."""

from __future__ import annotations

from django.db import connection
from django.db.models import Prefetch, QuerySet
from django.db.models.functions import Collate

from aftersales.core.errors import NotFound
from aftersales.core.masking import mask_phone, mask_street
from aftersales.core.validators import normalize_mobile
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import principal, scope_filter

from .models import Address, Customer, Unit


def customer_queryset(user, perm: str = Perm.CUSTOMER_VIEW) -> QuerySet[Customer]:
    """The customers ``user`` may see (or act on, with ``perm``): a customer sees only
    their own file; staff see the customers of the nodes where they hold ``perm``."""
    p = principal(user)
    qs = Customer.objects.all()
    if p.has_role(Role.CUSTOMER) and not p.can(perm):
        return qs.filter(pk=p.customer_id) if p.customer_id and perm == Perm.CUSTOMER_VIEW else qs.none()
    f = scope_filter(user, perm)
    return qs if f is None else qs.filter(f)


def customer_get(user, customer_id: int, perm: str = Perm.CUSTOMER_VIEW) -> Customer:
    c = (
        customer_queryset(user, perm)
        .select_related("node")
        .prefetch_related("tags", "addresses", Prefetch("units", queryset=unit_list_qs()))
        .filter(pk=customer_id)
        .first()
    )
    if c is None:
        raise NotFound()
    return c


def unit_list_qs() -> QuerySet[Unit]:
    return (
        Unit.objects.select_related("model__category__policy", "address")
        .prefetch_related("model__main_parts", "repairs")
        .order_by("id")
    )


def unit_get(user, unit_id: int, perm: str = Perm.CUSTOMER_VIEW) -> Unit:
    u = unit_list_qs().select_related("customer").filter(
        pk=unit_id, customer__in=customer_queryset(user, perm).values("pk")
    ).first()
    if u is None:
        raise NotFound()
    return u


def customer_match(qs: QuerySet[Customer], q: str) -> tuple[QuerySet[Customer], list[str]]:
    """The search rule, in one place: digits are a phone (the whole number, or its first
    digits), anything else a name prefix. Returns the filtered rows and the ordering the
    database can serve from an index."""
    q = (q or "").strip()
    digits = normalize_mobile(q)
    if digits.isdigit():
        if len(digits) >= 11:
            return qs.filter(phone=digits), ["phone"]
        # every phone has 11 digits: a prefix is a range of the unique index, in any collation
        return qs.filter(phone__gte=digits.ljust(11, "0"), phone__lte=digits.ljust(11, "9")), ["phone"]
    if not q:
        return qs.none(), ["id"]
    if connection.vendor == "postgresql":
        # byte order ("C") lets one index answer both LIKE 'prefix%' and the ordering
        return qs.alias(name_c=Collate("name", "C")).filter(name_c__startswith=q), ["name_c", "id"]
    return qs.filter(name__startswith=q), ["name", "id"]


def customer_search(user, q: str, *, limit: int = 20) -> QuerySet[Customer]:
    """Find by phone (full number or its first digits) or by name prefix, scoped."""
    qs, ordering = customer_match(customer_queryset(user), q)
    return qs.select_related("node").order_by(*ordering)[:limit]


def can_see_pii(user, customer: Customer) -> bool:
    p = principal(user)
    if p.customer_id is not None and p.customer_id == customer.pk:
        return True
    ids = p.node_ids_for(Perm.CUSTOMER_PII)
    return ids is None or customer.node_id in ids


def shown_phone(user, customer: Customer) -> str:
    return customer.phone if can_see_pii(user, customer) else mask_phone(customer.phone)


def shown_street(user, customer: Customer, address: Address) -> str:
    return address.street if can_see_pii(user, customer) else mask_street(address.street)
