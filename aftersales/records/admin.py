from django.contrib import admin

from .models import AuditAnchor, AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_label", "object_type", "object_id", "action", "node_id"]
    list_filter = ["object_type", "action"]
    search_fields = ["object_id", "actor_label", "chain"]
    date_hierarchy = "at"

    # append-only: readable, never editable or deletable through the admin
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditAnchor)
class AuditAnchorAdmin(AuditEntryAdmin):
    list_display = ["id", "at", "window_end", "hash"]
    list_filter = []
    search_fields = []
    date_hierarchy = None
