from django.contrib import admin

from aftersales.records.admin_mixins import AuditedAdmin, ReadOnlyAdmin

from .models import Calibration, CandidateNotice, Loan, Loaner, LoanPolicy, Tool


@admin.register(Loaner)
class LoanerAdmin(AuditedAdmin):
    """Details may be corrected here; the state changes through lending and returning."""

    list_display = ("asset_no", "model_name", "category", "node", "state", "daily_cost")
    list_filter = ("state", "category")
    search_fields = ("asset_no", "model_name", "serial")
    list_select_related = ("category", "node")
    raw_id_fields = ("node",)
    readonly_fields = ("state", "created_at", "updated_at")


@admin.register(LoanPolicy)
class LoanPolicyAdmin(AuditedAdmin):
    list_display = ("node", "after_days", "updated_at", "updated_by")
    list_select_related = ("node", "updated_by")
    raw_id_fields = ("node",)
    readonly_fields = ("updated_at", "updated_by")


@admin.register(Tool)
class ToolAdmin(AuditedAdmin):
    """Details may be corrected here; the holder and the state change through the register."""

    list_display = ("code", "name", "kind", "node", "holder", "check_kind", "due_on", "state")
    list_filter = ("kind", "check_kind", "state")
    search_fields = ("code", "name", "serial", "certificate_no")
    list_select_related = ("node", "holder")
    raw_id_fields = ("node",)
    readonly_fields = ("holder", "state", "created_at", "updated_at")


@admin.register(Loan)
class LoanAdmin(ReadOnlyAdmin):
    list_display = ("id", "loaner", "order", "node", "reason", "lent_at", "due_on", "returned_at", "return_condition")
    list_filter = ("reason", "return_condition")
    search_fields = ("loaner__asset_no", "order__number")
    list_select_related = ("loaner", "order", "node")


@admin.register(Calibration)
class CalibrationAdmin(ReadOnlyAdmin):
    list_display = ("tool", "done_on", "result", "next_due", "certificate_no", "agency", "recorded_by")
    list_filter = ("result",)
    search_fields = ("tool__code", "certificate_no")
    list_select_related = ("tool", "recorded_by")


@admin.register(CandidateNotice)
class CandidateNoticeAdmin(ReadOnlyAdmin):
    list_display = ("order", "notified_at")
    list_select_related = ("order",)
