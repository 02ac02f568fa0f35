from django.urls import path

from . import views_appraisal as views

urlpatterns: list = [
    path("appraisal/", views.cycle_list, name="appraisal_cycles"),
    path("appraisal/me/", views.my_appraisal, name="appraisal_me"),
    path("appraisal/cycles/new/", views.cycle_new, name="appraisal_cycle_new"),
    path("appraisal/cycles/<int:cycle_id>/", views.cycle_board, name="appraisal_board"),
    path("appraisal/cycles/<int:cycle_id>/export.xlsx", views.cycle_export, name="appraisal_export"),
    path("appraisal/cycles/<int:cycle_id>/<slug:action>/", views.cycle_action, name="appraisal_cycle_action"),
    path("appraisal/sheets/<int:sheet_id>/", views.sheet_page, name="appraisal_sheet"),
    path("appraisal/schemes/", views.scheme_list, name="appraisal_schemes"),
    path("appraisal/schemes/new/", views.scheme_new, name="appraisal_scheme_new"),
]
