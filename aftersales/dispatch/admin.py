from django.contrib import admin

from aftersales.records.admin_mixins import AuditedAdmin, ReadOnlyAdmin

from .models import Booking, CertRequirement, DispatchSetting


@admin.register(DispatchSetting)
class DispatchSettingAdmin(AuditedAdmin):
    list_display = ["node", "auto_dispatch", "max_jobs_per_day", "slot_minutes", "updated_at", "updated_by"]
    list_filter = ["auto_dispatch"]
    search_fields = ["node__code", "node__name"]
    autocomplete_fields = ["node"]
    readonly_fields = ["updated_at", "updated_by"]

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(CertRequirement)
class CertRequirementAdmin(AuditedAdmin):
    list_display = ["category", "order_type", "cert_type"]
    list_filter = ["category", "order_type"]


@admin.register(Booking)
class BookingAdmin(ReadOnlyAdmin):
    """Bookings are written by the dispatch services (which lock against double booking);
    here they are looked at, not edited."""

    list_display = ["employee", "order", "starts_at", "ends_at", "active", "done_at", "released_at", "reminded_at"]
    list_filter = ["active"]
    search_fields = ["order__number", "employee__name", "employee__employee_no"]
    date_hierarchy = "starts_at"
    list_select_related = ["employee", "order"]
    raw_id_fields = ["employee", "order", "created_by"]

