"""Reads of the customer file. Scoping is applied here, once, for pages, API and exports."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

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


def customer_search(user, q: str, *, limit: int = 20) -> QuerySet[Customer]:
    """Find by phone (full number or its first digits) or by name prefix, scoped."""
    q = (q or "").strip()
    qs = customer_queryset(user)
    digits = normalize_mobile(q)
    if digits.isdigit():
        qs = qs.filter(phone=digits) if len(digits) == 11 else qs.filter(phone__startswith=digits)
        return qs.select_related("node").order_by("phone", "id")[:limit]
    if not q:
        return qs.none()
    return qs.filter(name__startswith=q).select_related("node").order_by("name", "id")[:limit]


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
