from django.urls import path

from . import views

app_name = "feedback"

urlpatterns = [
    path("s/<str:token>/", views.survey_page, name="survey"),
    path("callbacks/", views.callbacks, name="callbacks"),
    path("callbacks/<int:task_id>/record/", views.callback_record_view, name="callback_record"),
]
