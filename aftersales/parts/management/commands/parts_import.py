"""Import the parts catalog or opening stock from a file on the server, as a given user.

    manage.py parts_import parts.xlsx --kind catalog --user hq_manager [--report errors.xlsx]
    manage.py parts_import stock.csv --kind stock --user east_manager

Runs what the import page runs (``services_catalog.catalog_import`` / ``excel.stock_import``):
the same checks, rights and audit trail. Exit status 1 when the file is refused; the rejected
rows go to the error report (default: next to the file).
"""

from __future__ import annotations

import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from aftersales.core.errors import DomainError
from aftersales.parts import excel, services_catalog


class Command(BaseCommand):
    help = "Import the parts catalog or opening stock from an .xlsx or CSV file (UTF-8 or GBK)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the .xlsx or .csv file")
        parser.add_argument("--kind", choices=sorted(excel.KINDS), required=True,
                            help="catalog: the parts catalog (catalog.edit); stock: opening stock (parts.manage)")
        parser.add_argument("--user", required=True, help="the username the import runs as")
        parser.add_argument("--report", help="where to write the error report (.xlsx), if any row is rejected")

    def handle(self, *args, file, kind, user, report=None, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"文件不存在：{path}")
        try:
            u = get_user_model().objects.get(username=user)
        except get_user_model().DoesNotExist:
            raise CommandError(f"用户不存在：{user}") from None
        t0 = time.perf_counter()
        try:
            if kind == excel.CATALOG.key:
                result = services_catalog.catalog_import(user=u, content=path.read_bytes())
            else:
                result = excel.stock_import(user=u, content=path.read_bytes())
        except DomainError as e:
            msgs = [str(m) for ms in e.errors.values() for m in ms] or [str(e.message)]
            raise CommandError("；".join(msgs)) from None
        seconds = time.perf_counter() - t0
        self.stdout.write(
            f"{excel.KINDS[kind].title}：共 {result.total} 行，新增 {result.created}，更新 {result.updated}，"
            f"无变化 {result.unchanged}，未导入 {result.errors} 行；{seconds:.1f} 秒。")
        if result.report:
            out = Path(report) if report else path.with_name(f"{path.stem}-错误报告.xlsx")
            out.write_bytes(result.report)
            self.stdout.write(f"错误报告：{out}")
            for f in result.failures[:20]:
                self.stdout.write(f"  第 {f.row.number} 行  {f.reason}")
            if result.errors > 20:
                self.stdout.write(f"  …… 其余 {result.errors - 20} 行见错误报告")
