"""Admin of the staff app. The cadence rules and the courses are reference data (audited edits;
the courses' page is /team/training/courses/). Schemes and their versions, cycles, sheets,
reviews, awards, plans, sessions, enrolments and safety events are written by their services
(audited, versioned) and looked at here."""

from django.contrib import admin

from aftersales.records.admin_mixins import AuditedAdmin, ReadOnlyAdmin

from .models import (
    Award,
    CadenceRule,
    Course,
    Cycle,
    Enrolment,
    ImprovementPlan,
    PlanFollowUp,
    Review,
    SafetyEvent,
    Scheme,
    SchemeItem,
    SchemeVersion,
    Session,
    Sheet,
    SheetScore,
)

# ---------------------------------------------------------------- training (reference data)


@admin.register(CadenceRule)
class CadenceRuleAdmin(AuditedAdmin):
    list_display = ("grade", "months")


@admin.register(Course)
class CourseAdmin(AuditedAdmin):
    list_display = ("code", "title", "subject", "hours", "pass_mark", "active")
    list_filter = ("subject", "active")
    search_fields = ("code", "title")
    ordering = ("subject", "code")

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: sessions keep their course


# ---------------------------------------------------------------- training (written by services)


class EnrolmentInline(admin.TabularInline):
    model = Enrolment
    extra = 0
    can_delete = False
    fields = ("employee", "status", "hours", "score", "passed", "recorded_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Session)
class SessionAdmin(ReadOnlyAdmin):
    list_display = ("course", "node", "starts_at", "ends_at", "trainer", "place", "online", "capacity", "status")
    list_filter = ("status", "online", "course__subject")
    search_fields = ("course__title", "course__code", "node__name", "place")
    list_select_related = ("course", "node", "trainer")
    date_hierarchy = "starts_at"
    inlines = [EnrolmentInline]


@admin.register(Enrolment)
class EnrolmentAdmin(ReadOnlyAdmin):
    list_display = ("session", "employee", "status", "hours", "score", "passed", "recorded_at")
    list_filter = ("status", "passed")
    search_fields = ("employee__name", "employee__employee_no", "session__course__title")
    list_select_related = ("session__course", "employee")


@admin.register(SafetyEvent)
class SafetyEventAdmin(ReadOnlyAdmin):
    list_display = ("employee", "occurred_on", "severity", "description", "recorded_by", "recorded_at")
    list_filter = ("severity",)
    search_fields = ("employee__name", "employee__employee_no", "description")
    list_select_related = ("employee", "recorded_by")
    date_hierarchy = "occurred_on"


# ---------------------------------------------------------------- appraisal (written by services)


class SchemeItemInline(admin.TabularInline):
    model = SchemeItem
    extra = 0
    can_delete = False
    fields = ("position", "code", "label", "group", "kind", "source", "step", "weight", "rule", "params")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Scheme)
class SchemeAdmin(ReadOnlyAdmin):
    list_display = ("role", "name", "created_at")
    search_fields = ("role", "name")


@admin.register(SchemeVersion)
class SchemeVersionAdmin(ReadOnlyAdmin):
    list_display = ("scheme", "number", "valid_from", "note", "created_by", "created_at")
    list_filter = ("scheme",)
    list_select_related = ("scheme", "created_by")
    inlines = [SchemeItemInline]


@admin.register(Cycle)
class CycleAdmin(ReadOnlyAdmin):
    list_display = ("kind", "period_start", "period_end", "node", "status", "grading_mode", "bonus_mode",
                    "created_at")
    list_filter = ("kind", "status")
    list_select_related = ("node",)
    date_hierarchy = "period_start"


class SheetScoreInline(admin.TabularInline):
    model = SheetScore
    extra = 0
    can_delete = False
    fields = ("item", "value", "score", "step")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class ReviewInline(admin.TabularInline):
    model = Review
    extra = 0
    can_delete = False
    fields = ("step", "reviewer", "scores", "adjustment", "comment", "deadline", "submitted_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Sheet)
class SheetAdmin(ReadOnlyAdmin):
    list_display = ("cycle", "employee", "role", "node", "step", "total", "grade", "rank", "rank_of", "bonus",
                    "warning", "review_flag")
    list_filter = ("step", "grade", "warning", "review_flag", "role")
    search_fields = ("employee__name", "employee__employee_no")
    list_select_related = ("cycle", "employee", "node")
    raw_id_fields = ("cycle", "employee", "node", "version")
    inlines = [SheetScoreInline, ReviewInline]


@admin.register(Award)
class AwardAdmin(ReadOnlyAdmin):
    list_display = ("cycle", "kind", "node", "employee", "score")
    list_filter = ("kind",)
    list_select_related = ("cycle", "node", "employee")


class PlanFollowUpInline(admin.TabularInline):
    model = PlanFollowUp
    extra = 0
    can_delete = False
    fields = ("at", "author", "text")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ImprovementPlan)
class ImprovementPlanAdmin(ReadOnlyAdmin):
    list_display = ("sheet", "coach", "due_on", "status", "created_at")
    list_filter = ("status",)
    list_select_related = ("sheet", "coach")
    raw_id_fields = ("sheet", "coach")
    inlines = [PlanFollowUpInline]
