"""Import customers and units from a file on the server, as a given user.

    manage.py import_customers customers.xlsx --user pudong_agent [--kind units] [--report errors.xlsx]

Runs what the upload page runs, in the foreground (``import_run``): the same checks, the same
rights, the same audit trail and job record. Exit status 1 when the file is refused or the job
stopped. The rate printed is data rows per second of the whole run, reading the file included.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from aftersales.core.errors import DomainError
from aftersales.imports import services
from aftersales.imports.models import ImportKind, ImportStatus

try:
    from aftersales.core.progress import Progress
except ImportError:  # pragma: no cover - the progress bar is optional
    Progress = None


class Command(BaseCommand):
    help = "Import customers and units from an .xlsx or CSV file (UTF-8 or GBK)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the .xlsx or .csv file")
        parser.add_argument("--user", required=True, help="the username the import runs as (needs import.run)")
        parser.add_argument("--kind", choices=ImportKind.values, default=ImportKind.CUSTOMERS_UNITS)
        parser.add_argument("--report", help="where to write the error report (.xlsx), if any row is rejected")

    def handle(self, *args, file, user, kind, report=None, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"文件不存在：{path}")
        try:
            u = get_user_model().objects.get(username=user)
        except get_user_model().DoesNotExist:
            raise CommandError(f"用户不存在：{user}") from None

        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if Progress is not None:
                if bar is None:
                    bar = Progress(total, "导入", self.stderr)
                bar.update(done)
            else:
                self.stderr.write(f"导入 {done}/{total}")

        t0 = time.perf_counter()
        try:
            job = services.import_run(user=u, filename=path.name, content=path.read_bytes(), kind=kind,
                                      progress=progress)
        except DomainError as e:
            msgs = [str(m) for ms in e.errors.values() for m in ms] or [str(e.message)]
            raise CommandError("；".join(msgs)) from None
        if bar is not None:
            bar.finish()
        seconds = time.perf_counter() - t0

        rate = job.total_rows / seconds if seconds else 0
        self.stdout.write(
            f"导入任务 #{job.pk}：{job.get_status_display()}；共 {job.total_rows} 行，成功 {job.ok_rows} 行"
            f"（新建客户 {job.customers_created}，登记产品 {job.units_created}），未导入 {job.error_rows} 行；"
            f"{seconds:.1f} 秒，{rate:.0f} 行/秒。"
        )
        if job.error_rows:
            out = Path(report) if report else path.with_name(f"{path.stem}-错误报告-{job.pk}.xlsx")
            out.write_bytes(services.error_report(job))
            self.stdout.write(f"错误报告：{out}")
            for e in job.row_errors.order_by("row_number")[:20]:
                self.stdout.write(f"  第 {e.row_number} 行  {e.message}")
            if job.error_rows > 20:
                self.stdout.write(f"  ……其余 {job.error_rows - 20} 行见错误报告")
        if job.status == ImportStatus.FAILED:
            raise CommandError(job.message)
