"""Every charges row is written by its services (audited): the admin looks them up. Prices are
set on the price list page (``/charges/prices/``), where a change closes the item in effect
instead of editing it, so an item a quote used is never rewritten."""

from django.contrib import admin

from aftersales.records.admin_mixins import ReadOnlyAdmin

from .models import Payment, PriceItem, Quote, QuoteLine, Refund, ServiceCost


@admin.register(PriceItem)
class PriceItemAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "key", "code", "name", "part", "category", "price", "cost_rate", "valid_from",
                    "valid_to")
    list_filter = ("kind", "category")
    search_fields = ("code", "name", "part__code", "part__name")
    list_select_related = ("part", "category")


class QuoteLineInline(admin.TabularInline):
    model = QuoteLine
    extra = 0
    can_delete = False
    fields = ("position", "kind", "description", "qty", "unit_price", "amount", "unit_cost", "free", "reason")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Quote)
class QuoteAdmin(ReadOnlyAdmin):
    list_display = ("number", "order", "status", "priced_on", "total", "chargeable", "approved_via", "decided_at")
    list_filter = ("status", "approved_via")
    search_fields = ("number", "order__number")
    list_select_related = ("order",)
    exclude = ("token_hash",)
    raw_id_fields = ("order", "node", "created_by", "signed_by", "superseded_by")
    inlines = [QuoteLineInline]


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0
    can_delete = False
    fields = ("amount", "reason", "refunded_by", "refunded_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("receipt_no", "order", "amount", "refunded", "method", "received_by", "received_at")
    list_filter = ("method",)
    search_fields = ("receipt_no", "order__number", "reference")
    list_select_related = ("order", "received_by")
    raw_id_fields = ("order", "node", "quote", "received_by")
    inlines = [RefundInline]


@admin.register(ServiceCost)
class ServiceCostAdmin(ReadOnlyAdmin):
    list_display = ("order", "node", "month", "parts", "labour", "travel", "loaner", "total", "computed_at")
    list_filter = ("month",)
    search_fields = ("order__number",)
    list_select_related = ("order", "node")
    raw_id_fields = ("order", "node")
