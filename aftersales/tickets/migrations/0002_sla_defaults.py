from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]
    operations = []
