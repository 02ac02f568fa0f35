"""Admin of the parts: the catalog and the warehouses are reference data (audited edits); the
stock, its ledger, transfers, the parts of orders and serials are written by the services only
(they keep the ledger) and are looked at here, never edited."""

from django.contrib import admin

from aftersales.records.admin_mixins import AuditedAdmin, ReadOnlyAdmin

from .models import Movement, Part, PartRequest, SerialItem, Stock, Transfer, TransferLine, Warehouse


@admin.register(Part)
class PartAdmin(AuditedAdmin):
    list_display = ["code", "name", "category", "main_part_code", "uom", "serialised", "returnable", "unit_cost",
                    "active"]
    list_filter = ["category", "serialised", "returnable", "active"]
    search_fields = ["code", "name", "name_en"]
    filter_horizontal = ["fits"]


@admin.register(Warehouse)
class WarehouseAdmin(AuditedAdmin):
    list_display = ["code", "name", "kind", "node", "holder", "active"]
    list_filter = ["kind", "active"]
    search_fields = ["code", "name", "node__name", "holder__name", "holder__employee_no"]
    list_select_related = ["node", "holder"]
    raw_id_fields = ["node", "holder"]


@admin.register(Stock)
class StockAdmin(ReadOnlyAdmin):
    list_display = ["warehouse", "part", "on_hand", "reserved", "defective", "reorder_point", "reorder_qty",
                    "alert_state", "updated_at"]
    list_filter = ["warehouse__kind", "alert_state"]
    search_fields = ["warehouse__code", "part__code", "part__name"]
    list_select_related = ["warehouse", "part"]


@admin.register(Movement)
class MovementAdmin(ReadOnlyAdmin):
    list_display = ["at", "warehouse", "part", "kind", "on_hand_delta", "reserved_delta", "defective_delta",
                    "on_hand_after", "reserved_after", "defective_after", "order", "transfer", "actor", "reason"]
    list_filter = ["kind"]
    search_fields = ["warehouse__code", "part__code", "order__number", "transfer__number", "serial"]
    date_hierarchy = "at"
    list_select_related = ["warehouse", "part", "order", "transfer", "actor"]


class TransferLineInline(admin.TabularInline):
    model = TransferLine
    extra = 0
    can_delete = False
    readonly_fields = ["part", "qty", "serials"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = ["number", "source", "destination", "purpose", "defective", "status", "order", "created_at",
                    "shipped_at", "received_at"]
    list_filter = ["status", "purpose", "defective"]
    search_fields = ["number", "order__number", "source__code", "destination__code"]
    date_hierarchy = "created_at"
    list_select_related = ["source", "destination", "order"]
    inlines = [TransferLineInline]


@admin.register(PartRequest)
class PartRequestAdmin(ReadOnlyAdmin):
    list_display = ["order", "part", "qty", "status", "van", "source", "transfer", "free", "serial", "old_serial",
                    "old_returned", "requested_at", "consumed_at"]
    list_filter = ["status", "free", "old_returned"]
    search_fields = ["order__number", "part__code", "serial", "old_serial"]
    list_select_related = ["order", "part", "van", "source", "transfer"]


@admin.register(SerialItem)
class SerialItemAdmin(ReadOnlyAdmin):
    list_display = ["part", "serial", "state", "warehouse", "order", "updated_at"]
    list_filter = ["state"]
    search_fields = ["serial", "part__code", "order__number"]
    list_select_related = ["part", "warehouse", "order"]
