from django.urls import path

from . import views

app_name = "imports"

urlpatterns = [
    path("", views.upload, name="upload"),
    path("template.xlsx", views.template, name="template"),
    path("<int:job_id>/", views.job, name="job"),
    path("<int:job_id>/status/", views.job_status, name="job_status"),
    path("<int:job_id>/report.xlsx", views.report, name="report"),
]
