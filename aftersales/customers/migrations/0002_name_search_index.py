"""The name-prefix search index, per database.

PostgreSQL: (name COLLATE "C", id) — byte order serves both ``LIKE 'prefix%'`` (which a
btree in a linguistic collation cannot) and ``ORDER BY name, id`` (which a
varchar_pattern_ops index cannot), so a search returns its first rows without sorting
every match. Elsewhere: a plain (name, id) index.
"""

from django.db import migrations

INDEX = "customer_name_search_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'CREATE INDEX {INDEX} ON customers_customer ((name COLLATE "C"), id)')
    else:
        schema_editor.execute(f"CREATE INDEX {INDEX} ON customers_customer (name, id)")


def drop(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
