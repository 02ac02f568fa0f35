from django.urls import path

from . import views

app_name = "assets"

urlpatterns = [
    path("loaners/", views.loaners, name="loaners"),
    path("loaners/new/", views.loaner_create, name="loaner_create"),
    path("loaners/<int:loaner_id>/state/", views.loaner_state, name="loaner_state"),
    path("loans/lend/", views.lend, name="lend"),
    path("loans/<int:loan_id>/return/", views.loan_return, name="loan_return"),
    path("policy/", views.policy, name="policy"),
    path("tools/", views.tools, name="tools"),
    path("tools/new/", views.tool_create, name="tool_create"),
    path("tools/<int:tool_id>/", views.tool, name="tool"),
    path("tools/<int:tool_id>/calibrate/", views.tool_calibrate, name="tool_calibrate"),
    path("tools/<int:tool_id>/assign/", views.tool_assign, name="tool_assign"),
    path("tools/<int:tool_id>/state/", views.tool_state, name="tool_state"),
    path("tools/<int:tool_id>/certificate/", views.tool_certificate, name="tool_certificate"),
    path("calibrations/<int:calibration_id>/certificate/", views.calibration_certificate,
         name="calibration_certificate"),
]
