from django.urls import path

from . import views_reports as views

urlpatterns: list = [
    path("reports/", views.report_list, name="reports"),
    path("reports/<int:report_id>/status/", views.report_status, name="report_status"),
    path("reports/<int:report_id>.pdf", views.report_pdf, name="report_pdf"),
    path("reports/<int:report_id>.xlsx", views.report_xlsx, name="report_xlsx"),
]
