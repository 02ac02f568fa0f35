from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class QualityConfig(AppConfig):
    name = "aftersales.quality"
    verbose_name = _("质量管理")
    default_auto_field = "django.db.models.BigAutoField"
