from django.contrib import admin

from aftersales.records.admin_mixins import AuditedAdmin

from .models import Category, MainPart, ProductModel, WarrantyPolicy


class PolicyInline(admin.StackedInline):
    model = WarrantyPolicy
    can_delete = False


@admin.register(Category)
class CategoryAdmin(AuditedAdmin):
    list_display = ["code", "name", "name_en"]
    search_fields = ["code", "name"]
    inlines = [PolicyInline]


class MainPartInline(admin.TabularInline):
    model = MainPart
    extra = 1


@admin.register(ProductModel)
class ProductModelAdmin(AuditedAdmin):
    list_display = ["code", "name", "category", "brand", "whole_unit_months", "main_part_months"]
    list_filter = ["category", "brand"]
    search_fields = ["code", "name"]
    inlines = [MainPartInline]


@admin.register(WarrantyPolicy)
class WarrantyPolicyAdmin(AuditedAdmin):
    list_display = ["category", "return_days", "exchange_days", "whole_unit_months", "main_part_months",
                    "repeat_repair_limit", "extend_by_repair_time", "exchange_restarts"]
