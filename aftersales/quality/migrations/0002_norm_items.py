"""The action number sequence, and the default service-norm checklist (服务规范): eight items a
technician answers at completion. Managed afterwards at /quality/norms/ (an item already there
is left as it is)."""

from django.db import migrations, models

NORM_ITEMS = [
    ("DRESS", "着装整洁，佩戴工牌", "Neat uniform, badge worn"),
    ("SHOE_COVERS", "使用鞋套与防护垫", "Shoe covers and protective mats used"),
    ("ON_TIME", "按预约时间到达", "Arrived at the appointed time"),
    ("EXPLAIN", "向客户说明故障原因与收费标准", "Explained the cause of the fault and the charges to the customer"),
    ("CLEAN_UP", "维修后清理现场", "Cleaned up the site after the repair"),
    ("TEST_RUN", "试机演示正常", "Test run shown to work"),
    ("ADVICE", "讲解使用与保养注意事项", "Explained use and care"),
    ("OLD_PARTS", "旧件交客户确认或按规定回收", "Old parts shown to the customer or taken back as required"),
]


def add_items(apps, schema_editor):
    NormItem = apps.get_model("quality", "NormItem")
    for i, (code, text, text_en) in enumerate(NORM_ITEMS, start=1):
        NormItem.objects.get_or_create(code=code, defaults={"text": text, "text_en": text_en, "position": i * 10,
                                                            "active": True})


def remove_items(apps, schema_editor):
    NormItem = apps.get_model("quality", "NormItem")
    NormItem.objects.filter(code__in=[c for c, _t, _e in NORM_ITEMS]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("quality", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ActionSequence",
            fields=[
                ("day", models.DateField(primary_key=True, serialize=False)),
                ("last", models.PositiveIntegerField(default=0)),
            ],
            options={
                "verbose_name": "改进措施编号序列",
                "verbose_name_plural": "改进措施编号序列",
            },
        ),
        migrations.RunPython(add_items, remove_items),
    ]
