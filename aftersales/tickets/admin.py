"""Admin for the reference data of work orders (calendars, time standards, fault catalogue),
every change audited; work orders themselves are only shown here — they change through the
workflow (``tickets.workflow``), never by editing a row."""

from django import forms
from django.contrib import admin

from aftersales.records.admin_mixins import AuditedAdmin, ReadOnlyAdmin

from .models import CalendarDay, FaultCategory, FaultCode, SlaPolicy, WorkCalendar, WorkOrder
from .sla_services import policy_errors


class CalendarDayInline(admin.TabularInline):
    model = CalendarDay
    extra = 1
    ordering = ["-date"]


@admin.register(WorkCalendar)
class WorkCalendarAdmin(AuditedAdmin):
    list_display = ["code", "name", "day_start", "day_end", "weekends_off"]
    search_fields = ["code", "name"]
    inlines = [CalendarDayInline]


class SlaPolicyForm(forms.ModelForm):
    class Meta:
        model = SlaPolicy
        fields = ["type", "priority", "response_minutes", "resolve_minutes", "at_risk_percent", "calendar"]

    def clean(self):
        data = super().clean()
        figures = {k: data.get(k) for k in ("response_minutes", "resolve_minutes", "at_risk_percent")}
        if all(v is not None for v in figures.values()):
            for field, msgs in policy_errors(**figures).items():
                for m in msgs:
                    self.add_error(field, m)
        return data


@admin.register(SlaPolicy)
class SlaPolicyAdmin(AuditedAdmin):
    form = SlaPolicyForm
    list_display = ["type", "priority", "response_minutes", "resolve_minutes", "at_risk_percent", "calendar"]
    list_filter = ["type", "priority", "calendar"]
    list_select_related = ["calendar"]


class FaultCodeInline(admin.TabularInline):
    model = FaultCode
    extra = 1


@admin.register(FaultCategory)
class FaultCategoryAdmin(AuditedAdmin):
    list_display = ["code", "name", "name_en", "suggests_type"]
    search_fields = ["code", "name", "keywords"]
    filter_horizontal = ["categories"]
    inlines = [FaultCodeInline]


@admin.register(FaultCode)
class FaultCodeAdmin(AuditedAdmin):
    list_display = ["code", "name", "category", "fault_category", "part_code"]
    list_filter = ["category", "fault_category"]
    search_fields = ["code", "name"]
    list_select_related = ["category", "fault_category"]


@admin.register(WorkOrder)
class WorkOrderAdmin(ReadOnlyAdmin):
    list_display = ["number", "type", "priority", "status", "node", "sla_state", "escalation_level", "created_at",
                    "resolve_due"]
    list_filter = ["status", "type", "priority", "sla_state", "escalation_level", "response_breached",
                   "resolve_breached", "channel"]
    search_fields = ["number"]
    date_hierarchy = "created_at"
    list_select_related = ["node"]
    show_full_result_count = False  # no COUNT(*) over every order on each page
    raw_id_fields = ["customer", "unit", "address", "node", "owner", "assignee", "parent", "fault_category",
                     "fault_code"]

