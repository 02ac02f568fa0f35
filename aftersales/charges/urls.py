from django.urls import path

from . import views

app_name = "charges"

urlpatterns = [
    path("prices/", views.prices, name="prices"),
    path("prices/set/", views.price_set_view, name="price_set"),
    path("q/<str:token>/", views.quote_public_page, name="quote_public"),
    path("orders/<int:order_id>/quote/", views.quote_create_view, name="quote_create"),
    path("quotes/<int:quote_id>/send/", views.quote_send_view, name="quote_send"),
    path("quotes/<int:quote_id>/sign/", views.quote_sign_view, name="quote_sign"),
    path("quotes/<int:quote_id>/signature.png", views.quote_signature, name="quote_signature"),
    path("orders/<int:order_id>/payments/", views.payment_view, name="payment"),
    path("payments/<int:payment_id>/refund/", views.refund_view, name="refund"),
    path("orders/<int:order_id>/receipt/<int:payment_id>.pdf", views.receipt_view, name="receipt"),
]
