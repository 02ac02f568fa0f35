from django.urls import path

from . import views

app_name = "parts"

urlpatterns = [
    path("", views.stock, name="index"),
    path("stock/", views.stock, name="stock"),
    path("stock/export.xlsx", views.stock_export, name="stock_export"),
    path("stock/<str:action>/", views.stock_action, name="stock_action"),
    path("movements/", views.movements, name="movements"),
    path("transfers/", views.transfers, name="transfers"),
    path("transfers/new/", views.transfer_create, name="transfer_create"),
    path("transfers/<int:transfer_id>/<str:action>/", views.transfer_action, name="transfer_action"),
    path("replenishment/", views.replenishment, name="replenishment"),
    path("replenishment/create/", views.replenish, name="replenish"),
    path("replenishment/reorder/", views.reorder_set, name="reorder_set"),
    path("catalog/", views.catalog, name="catalog"),
    path("catalog/new/", views.part_create, name="part_create"),
    path("catalog/<int:part_id>/", views.part_edit, name="part_edit"),
    path("import/", views.import_page, name="import"),
    path("import/template/<str:kind>.xlsx", views.import_template, name="import_template"),
    path("import/report/<str:token>.xlsx", views.import_report, name="import_report"),
    # the forms of the order page's and the technician's panels (they return to ``next``)
    path("orders/<int:order_id>/parts/", views.order_parts_search, name="order_parts_search"),
    path("orders/<int:order_id>/request/", views.order_part_request, name="order_part_request"),
    path("requests/<int:request_id>/release/", views.part_request_release, name="request_release"),
    path("requests/<int:request_id>/consume/", views.part_request_consume, name="request_consume"),
    path("van/return/", views.van_return, name="van_return"),
]
