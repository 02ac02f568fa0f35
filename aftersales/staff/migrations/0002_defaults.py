"""The training defaults (R-TRN-2): the cadence rules — junior staff are trained every 6 months,
senior staff every 3 — and one starter course for each of the seven subjects of the seeds.
Managed afterwards at /team/training/courses/ and in the admin (a row already there is left as
it is)."""

from decimal import Decimal

from django.db import migrations

CADENCE = {"junior": 6, "senior": 3}

# code, subject, title, hours, pass mark (None: no exam), description
COURSES = [
    ("CUL-101", "culture", "企业文化与服务理念", Decimal("2.0"), None,
     "公司的使命、价值观与售后服务承诺，首问负责制，一事一档。"),
    ("PRD-101", "product", "主销产品结构与原理", Decimal("6.0"), 70,
     "空调、洗衣机、冰箱等主销品类的结构、工作原理、型号规则与三包政策要点。"),
    ("PRC-101", "process", "售后服务流程与时限标准", Decimal("4.0"), 80,
     "受理、派工、上门、维修、完工确认、回访的全流程，24 小时响应与 48 小时修复的时限要求。"),
    ("FLT-101", "fault", "常见故障诊断与排除", Decimal("8.0"), 70,
     "按故障现象查找原因，常见故障代码，检测仪器的使用与配件更换规范。"),
    ("COM-101", "communication", "沟通技巧与服务礼仪", Decimal("3.0"), None,
     "上门服务礼仪、与客户沟通和处理投诉的方法。"),
    ("SAF-101", "safety", "安全操作规范", Decimal("4.0"), 90,
     "用电安全、登高作业、制冷剂操作与个人防护，事故的报告与处置。"),
    ("SYS-101", "system", "售后服务管理系统操作", Decimal("2.0"), 60,
     "在系统中处理工单、申领配件、报价收款与查看考核和培训记录。"),
]


def add_defaults(apps, schema_editor):
    CadenceRule = apps.get_model("staff", "CadenceRule")
    Course = apps.get_model("staff", "Course")
    for grade, months in CADENCE.items():
        CadenceRule.objects.get_or_create(grade=grade, defaults={"months": months})
    for code, subject, title, hours, pass_mark, description in COURSES:
        Course.objects.get_or_create(code=code, defaults={"subject": subject, "title": title, "hours": hours,
                                                          "pass_mark": pass_mark, "description": description,
                                                          "active": True})


def remove_defaults(apps, schema_editor):
    CadenceRule = apps.get_model("staff", "CadenceRule")
    Course = apps.get_model("staff", "Course")
    Course.objects.filter(code__in=[c[0] for c in COURSES], sessions__isnull=True).delete()
    CadenceRule.objects.filter(grade__in=list(CADENCE)).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("staff", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(add_defaults, remove_defaults),
    ]
