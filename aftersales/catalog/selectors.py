"""Reads of the catalog: reference data, the same for every node (entry points declare
``catalog.view``)."""

from __future__ import annotations

from django.db.models import QuerySet

from aftersales.core.errors import NotFound

from .models import Category, ProductModel


def category_list() -> QuerySet[Category]:
    return Category.objects.select_related("policy").order_by("code")


def product_model_queryset(*, category: str | None = None, q: str | None = None) -> QuerySet[ProductModel]:
    qs = ProductModel.objects.select_related("category__policy").prefetch_related("main_parts")
    if category:
        qs = qs.filter(category__code=category.upper())
    if q:
        qs = qs.filter(code__istartswith=q.strip())
    return qs


def product_model_get(model_id: int) -> ProductModel:
    m = product_model_queryset().filter(pk=model_id).first()
    if m is None:
        raise NotFound()
    return m
