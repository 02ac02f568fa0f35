from django.urls import path

from . import views_dashboard as views

urlpatterns: list = [
    path("", views.dashboard_page, name="dashboard"),
    path("drill/", views.drill_page, name="drill"),
    path("me/", views.scorecard_me, name="scorecard_me"),
    path("people/<int:employee_id>/", views.scorecard_person, name="scorecard_person"),
]
