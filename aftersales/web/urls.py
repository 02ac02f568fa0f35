from django.urls import path

from . import views

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
]
