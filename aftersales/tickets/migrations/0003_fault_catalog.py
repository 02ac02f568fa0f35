"""The seed fault catalogue (``aftersales.tickets.fault_catalog``): fault categories with their
keywords, linked to the product categories that exist now, and those categories' fault codes.
Product categories created later get theirs from ``fault_catalog.ensure_fault_catalog()``."""

from types import SimpleNamespace

from django.db import migrations


def forward(apps, schema_editor):
    from aftersales.tickets.fault_catalog import ensure_fault_catalog

    ensure_fault_catalog(SimpleNamespace(
        FaultCategory=apps.get_model("tickets", "FaultCategory"),
        FaultCode=apps.get_model("tickets", "FaultCode"),
        Category=apps.get_model("catalog", "Category"),
    ))


class Migration(migrations.Migration):
    dependencies = [("tickets", "0002_sla_defaults"), ("catalog", "0001_initial")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
