from django.contrib import admin

from aftersales.records.admin_mixins import AuditedAdmin

from .models import Certification, CertificationType, Coverage, Department, Employee, Node, RoleAssignment


class CoverageInline(admin.TabularInline):
    model = Coverage
    extra = 0


@admin.register(Node)
class NodeAdmin(AuditedAdmin):
    """Nodes are created through the API (the tree's shape and paths are kept by
    ``org.services.node_create``); here their details and coverage are maintained."""

    list_display = ["code", "name", "kind", "parent", "province", "city", "district", "active"]
    list_filter = ["kind", "active", "province"]
    search_fields = ["code", "name", "city"]
    readonly_fields = ["kind", "parent", "path", "code"]
    inlines = [CoverageInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Department)
class DepartmentAdmin(AuditedAdmin):
    list_display = ["name", "kind", "node"]
    list_filter = ["kind"]


@admin.register(CertificationType)
class CertificationTypeAdmin(AuditedAdmin):
    list_display = ["code", "name", "validity_months"]


class CertificationInline(admin.TabularInline):
    model = Certification
    extra = 0


@admin.register(Employee)
class EmployeeAdmin(AuditedAdmin):
    list_display = ["employee_no", "name", "node", "grade", "hire_date", "active"]
    list_filter = ["grade", "active", "node__kind"]
    search_fields = ["employee_no", "name"]
    autocomplete_fields = ["skills"]
    raw_id_fields = ["user", "node", "department"]
    inlines = [CertificationInline]


@admin.register(RoleAssignment)
class RoleAssignmentAdmin(AuditedAdmin):
    list_display = ["user", "role", "node"]
    list_filter = ["role"]
    raw_id_fields = ["user", "node"]
