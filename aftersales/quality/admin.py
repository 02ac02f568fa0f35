"""Admin of the quality app. The checklist's items, targets and sales are reference data
(audited edits; their pages are /quality/norms/, /quality/targets/ and /quality/sales/).
Improvement actions and reports are written by their services (audited) and looked at here."""

from django.contrib import admin

from aftersales.records.admin_mixins import AuditedAdmin, ReadOnlyAdmin

from .models import Action, ActionNote, ModelSales, NodeSales, NormItem, Report, Target


@admin.register(NormItem)
class NormItemAdmin(AuditedAdmin):
    list_display = ("position", "code", "text", "text_en", "active")
    list_display_links = ("code",)
    list_filter = ("active",)
    search_fields = ("code", "text", "text_en")
    ordering = ("position", "id")

    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj is not None else ()  # answers refer to the code

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: answered checklists keep their items


@admin.register(Target)
class TargetAdmin(AuditedAdmin):
    list_display = ("indicator", "node", "target", "amber", "updated_by", "updated_at")
    list_filter = ("indicator",)
    search_fields = ("indicator", "node__name", "node__code")
    list_select_related = ("node", "updated_by")
    raw_id_fields = ("node", "updated_by")


@admin.register(NodeSales)
class NodeSalesAdmin(AuditedAdmin):
    list_display = ("node", "month", "amount", "updated_at")
    list_filter = ("month",)
    search_fields = ("node__name", "node__code")
    list_select_related = ("node",)
    raw_id_fields = ("node",)
    date_hierarchy = "month"


@admin.register(ModelSales)
class ModelSalesAdmin(AuditedAdmin):
    list_display = ("model", "month", "units", "updated_at")
    list_filter = ("month",)
    search_fields = ("model__code", "model__name")
    list_select_related = ("model",)
    raw_id_fields = ("model",)
    date_hierarchy = "month"


class ActionNoteInline(admin.TabularInline):
    model = ActionNote
    extra = 0
    can_delete = False
    fields = ("at", "author", "status", "text")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Action)
class ActionAdmin(ReadOnlyAdmin):
    list_display = ("number", "title", "source", "indicator", "node", "owner", "due_on", "status", "created_at")
    list_filter = ("status", "source")
    search_fields = ("number", "title", "node__name")
    list_select_related = ("node", "owner")
    raw_id_fields = ("node", "owner", "created_by", "complaint")
    date_hierarchy = "created_at"
    inlines = [ActionNoteInline]


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    list_display = ("kind", "period_start", "period_end", "node", "status", "scheduled", "requested_by", "created_at",
                    "built_at")
    list_filter = ("kind", "status", "scheduled")
    search_fields = ("node__name",)
    list_select_related = ("node", "requested_by")
    raw_id_fields = ("node", "requested_by")
