from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecordsConfig(AppConfig):
    name = "aftersales.records"
    label = "records"
    verbose_name = _("记录与审计")
