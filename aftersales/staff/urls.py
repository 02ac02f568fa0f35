"""The team pages under ``/team/``: appraisal (``urls_appraisal``) and training (``urls_training``)."""

from . import urls_appraisal, urls_training

app_name = "staff"

urlpatterns = urls_appraisal.urlpatterns + urls_training.urlpatterns
