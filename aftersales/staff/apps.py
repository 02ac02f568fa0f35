from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StaffConfig(AppConfig):
    name = "aftersales.staff"
    verbose_name = _("绩效与培训")
    default_auto_field = "django.db.models.BigAutoField"
