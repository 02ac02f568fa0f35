"""Django admin for back-office reference data, with every save and delete audited.

The admin runs each change form inside a transaction; the audit entry is appended in it,
so an admin edit is as traceable as a service call."""

from django.contrib import admin
from django.db import transaction

from .audit import audit_record, snapshot


class AuditedAdmin(admin.ModelAdmin):
    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            before = snapshot(type(obj).objects.get(pk=obj.pk)) if change and obj.pk else None
            super().save_model(request, obj, form, change)
            audit_record(actor=request.user, action="admin.update" if change else "admin.create", obj=obj,
                         before=before, after=snapshot(obj))

    def save_formset(self, request, form, formset, change):
        with transaction.atomic():
            befores = {o.pk: snapshot(o) for o in formset.get_queryset()} if formset.is_bound else {}
            instances = formset.save()
            for o in instances:
                audit_record(actor=request.user, action="admin.update" if o.pk in befores else "admin.create",
                             obj=o, before=befores.get(o.pk), after=snapshot(o))
            for o in formset.deleted_objects:
                audit_record(actor=request.user, action="admin.delete", obj=o, before=befores.get(o.pk), after=None)

    def delete_model(self, request, obj):
        with transaction.atomic():
            audit_record(actor=request.user, action="admin.delete", obj=obj, before=snapshot(obj), after=None)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                audit_record(actor=request.user, action="admin.delete", obj=obj, before=snapshot(obj), after=None)
            super().delete_queryset(request, queryset)


class ReadOnlyAdmin(admin.ModelAdmin):
    """For rows written only by services (audited) or appended only: looked up in the admin,
    never added, changed or deleted there."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
