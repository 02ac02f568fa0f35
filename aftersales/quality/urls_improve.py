"""Pages of the improvement loop: actions, survey analysis, norms, targets, sales."""

from django.urls import path

from . import views_improve as v

urlpatterns: list = [
    path("actions/", v.action_list, name="action_list"),
    path("actions/new/", v.action_new, name="action_new"),
    path("actions/owners/", v.action_owners, name="action_owners"),
    path("actions/<int:action_id>/", v.action_detail, name="action_detail"),
    path("actions/<int:action_id>/edit/", v.action_edit, name="action_edit"),
    path("actions/<int:action_id>/note/", v.action_note_view, name="action_note"),
    path("actions/<int:action_id>/move/<str:move>/", v.action_move_view, name="action_move"),
    path("surveys/", v.surveys, name="surveys"),
    path("norms/", v.norms, name="norms"),
    path("norms/orders/<int:order_id>/", v.norm_check, name="norm_check"),
    path("targets/", v.targets, name="targets"),
    path("sales/", v.sales, name="sales"),
    path("sales/models/", v.model_sales, name="model_sales"),
    path("sales/template/<str:kind>/", v.sales_template, name="sales_template"),
    path("sales/report/<str:token>/", v.sales_report, name="sales_report"),
]
