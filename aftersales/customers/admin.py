from django.contrib import admin

from aftersales.records.admin_mixins import AuditedAdmin

from .models import Tag


@admin.register(Tag)
class TagAdmin(AuditedAdmin):
    """Customers and units are edited through the pages and the API (validated, scoped,
    masked); only the tag list is reference data."""

    search_fields = ["name"]
