from django.contrib import admin

from aftersales.records.admin_mixins import ReadOnlyAdmin

from .models import ImportJob


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    """Read-only: jobs are written by ``import_run`` only; the rejected rows are in the report on
    the import page (a job may have tens of thousands)."""

    list_display = ("id", "file_name", "kind", "uploaded_by", "created_at", "status", "total_rows", "processed_rows",
                    "ok_rows", "error_rows")
    list_filter = ("status", "kind")
    search_fields = ("file_name", "uploaded_by__username")
    exclude = ("error_report", "columns", "source")


    def get_queryset(self, request):
        return super().get_queryset(request).defer("error_report", "source")
