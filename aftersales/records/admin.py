from django.contrib import admin

from .admin_mixins import ReadOnlyAdmin
from .models import AuditAnchor, AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor_label", "object_type", "object_id", "action", "node_id"]
    list_filter = ["object_type", "action"]
    search_fields = ["object_id", "actor_label", "chain"]
    date_hierarchy = "at"



@admin.register(AuditAnchor)
class AuditAnchorAdmin(AuditEntryAdmin):
    list_display = ["id", "at", "window_end", "hash"]
    list_filter = []
    search_fields = []
    date_hierarchy = None
