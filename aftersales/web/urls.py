from django.urls import path

from . import views, views_orders

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("customers/", views.customer_search_page, name="customer_search"),
    path("customers/new/", views.customer_create_page, name="customer_create"),
    path("customers/<int:customer_id>/", views.customer_detail, name="customer_detail"),
    path("units/<int:unit_id>/warranty/", views.unit_warranty_check, name="unit_warranty"),
    path("staff/certificates/", views.staff_certificates, name="staff_certificates"),
    # work orders: intake
    path("orders/new/", views_orders.order_intake, name="order_intake"),
    path("orders/new/customers/", views_orders.intake_customers, name="intake_customers"),
    path("orders/new/customers/<int:customer_id>/", views_orders.intake_customer, name="intake_customer"),
    path("orders/new/customers/<int:customer_id>/units/", views_orders.intake_unit_register,
         name="intake_unit_register"),
    path("orders/new/customer/", views_orders.intake_customer_create, name="intake_customer_create"),
    path("orders/new/suggest/", views_orders.intake_suggest, name="intake_suggest"),
    path("orders/new/sla/", views_orders.intake_sla, name="intake_sla"),
    # work orders: lists and the order page
    path("orders/", views_orders.order_list, name="order_list"),
    path("orders/<int:order_id>/", views_orders.order_detail, name="order_detail"),
    path("orders/<int:order_id>/moves/<slug:move>/", views_orders.order_move_page, name="order_move"),
    path("orders/<int:order_id>/notes/", views_orders.order_note_page, name="order_note"),
    path("orders/<int:order_id>/photos/", views_orders.order_photo_upload, name="order_photo_upload"),
    path("orders/<int:order_id>/photos/<int:photo_id>/", views_orders.order_photo, name="order_photo"),
    path("orders/<int:order_id>/signature/", views_orders.order_signature, name="order_signature"),
    path("orders/<int:order_id>/candidates/", views_orders.order_candidates, name="order_candidates"),
    path("orders/<int:order_id>/dispatch/", views_orders.order_dispatch, name="order_dispatch"),
    path("orders/<int:order_id>/warranty/", views_orders.order_fault_warranty, name="order_fault_warranty"),
    # the technician's phone pages
    path("tech/", views_orders.tech_jobs, name="tech_jobs"),
    path("tech/orders/<int:order_id>/", views_orders.tech_job, name="tech_job"),
    path("tech/orders/<int:order_id>/moves/<slug:move>/", views_orders.order_move_page, {"page": "tech"},
         name="tech_move"),
    path("tech/orders/<int:order_id>/notes/", views_orders.order_note_page, {"page": "tech"}, name="tech_note"),
    path("tech/orders/<int:order_id>/photos/", views_orders.order_photo_upload, {"page": "tech"},
         name="tech_photo_upload"),
    path("tech/orders/<int:order_id>/code/", views_orders.tech_code_send, name="tech_code_send"),
    path("tech/orders/<int:order_id>/confirm/", views_orders.tech_confirm, name="tech_confirm"),
    # the outbox
    path("notifications/", views_orders.outbox, name="outbox"),
]
