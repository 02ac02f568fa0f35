"""The quality pages under ``/quality/``: dashboards and drill-down (``urls_dashboard``), the
improvement loop, survey analysis, targets, sales and the norm checklist (``urls_improve``), the
reports (``urls_reports``)."""

from . import urls_dashboard, urls_improve, urls_reports

app_name = "quality"

urlpatterns = urls_dashboard.urlpatterns + urls_improve.urlpatterns + urls_reports.urlpatterns
