from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AssetsConfig(AppConfig):
    name = "aftersales.assets"
    verbose_name = _("备用机与工具仪器")
    default_auto_field = "django.db.models.BigAutoField"
