from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TicketsConfig(AppConfig):
    name = "aftersales.tickets"
    verbose_name = _("工单")
    default_auto_field = "django.db.models.BigAutoField"
