from django.contrib import admin

from aftersales.records.admin_mixins import ReadOnlyAdmin

from .models import CallbackTask, Survey


@admin.register(CallbackTask)
class CallbackTaskAdmin(ReadOnlyAdmin):
    list_display = ("id", "order", "round", "node", "assigned_to", "status", "due_at", "attempts", "done_at")
    list_filter = ("status",)
    search_fields = ("order__number",)
    list_select_related = ("order", "node", "assigned_to")
    raw_id_fields = ("order", "assigned_to", "done_by", "node")


@admin.register(Survey)
class SurveyAdmin(ReadOnlyAdmin):
    list_display = ("id", "order", "channel", "created_at", "answered_at", "timeliness", "attitude",
                    "professionalism", "result", "overall", "resolved", "complaint")
    list_filter = ("channel", "resolved")
    search_fields = ("order__number",)
    list_select_related = ("order", "complaint")
    exclude = ("token_hash",)
    raw_id_fields = ("order", "task", "node", "answered_by", "complaint")
