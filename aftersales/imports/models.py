"""Import jobs (R-Q-4): one row per uploaded file, and one per rejected row of it.

A job is written before its first row is imported and updated after every batch, so a job
that died half way still shows how far it got (``processed_rows`` drives the progress bar).
An uploaded file waits as ``queued`` with its bytes in ``source`` until the background task
takes it (``running``); the bytes are dropped when the job ends (``done`` or ``failed``).
A row is committed completely (customer + address + unit) or not at all.
The rejected rows are kept (``ImportRowError``, with their original cells) and returned as
an .xlsx report (``error_report``), which can be corrected and uploaded again as it is.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ImportKind(models.TextChoices):
    CUSTOMERS_UNITS = "customers_units", _("客户及产品")
    CUSTOMERS = "customers", _("仅客户")
    UNITS = "units", _("仅产品（客户须已建档）")


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("排队中")
    RUNNING = "running", _("导入中")
    DONE = "done", _("已完成")
    FAILED = "failed", _("中断")


class ImportJob(models.Model):
    kind = models.CharField(_("导入类型"), max_length=20, choices=ImportKind.choices,
                            default=ImportKind.CUSTOMERS_UNITS)
    file_name = models.CharField(_("文件名"), max_length=255)
    file_size = models.PositiveIntegerField(_("文件大小（字节）"), default=0)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                    related_name="import_jobs", verbose_name=_("导入人"))
    # The highest node where the user held the import right when the job ran (None: everywhere).
    node = models.ForeignKey("org.Node", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             verbose_name=_("导入范围"))
    created_at = models.DateTimeField(_("开始时间"), auto_now_add=True)
    finished_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    status = models.CharField(_("状态"), max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    total_rows = models.PositiveIntegerField(_("数据行数"), default=0)
    processed_rows = models.PositiveIntegerField(_("已处理行数"), default=0)
    # when the job last showed life (queued, started, a batch done): a stale one is swept as failed
    heartbeat_at = models.DateTimeField(_("最近进展"), default=timezone.now)
    ok_rows = models.PositiveIntegerField(_("成功行数"), default=0)
    error_rows = models.PositiveIntegerField(_("失败行数"), default=0)
    customers_created = models.PositiveIntegerField(_("新建客户"), default=0)
    units_created = models.PositiveIntegerField(_("登记产品"), default=0)
    message = models.TextField(_("说明"), blank=True)  # why a job stopped
    columns = models.JSONField(_("列名"), default=list)  # the file's header, as written
    error_report = models.BinaryField(_("错误报告"), null=True, blank=True, editable=False)
    # The uploaded file while the job waits or runs in the background; dropped when it ends.
    source = models.BinaryField(_("上传的文件"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("导入任务")
        verbose_name_plural = _("导入任务")
        ordering = ["-id"]
        indexes = [models.Index(fields=["uploaded_by", "id"], name="import_job_user_idx"),
                   models.Index(fields=["status", "heartbeat_at"], name="import_job_status_idx")]

    def __str__(self):
        return f"{self.file_name} ({self.get_status_display()})"

    @property
    def in_progress(self) -> bool:
        return self.status in (ImportStatus.QUEUED, ImportStatus.RUNNING)

    @property
    def percent(self) -> int:
        return min(100, self.processed_rows * 100 // self.total_rows) if self.total_rows else 0

    @property
    def has_report(self) -> bool:
        return self.error_rows > 0

    @property
    def report_file_name(self) -> str:
        stem = self.file_name.rsplit(".", 1)[0] or "import"
        return f"{stem}-错误报告-{self.pk}.xlsx"


class ImportRowError(models.Model):
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors", verbose_name=_("导入任务"))
    row_number = models.PositiveIntegerField(_("行号"))  # as the spreadsheet shows it; the header is row 1
    field = models.CharField(_("错误字段"), max_length=200, blank=True)  # Chinese column names, "、"-joined
    message = models.TextField(_("错误原因"))
    raw = models.JSONField(_("原始数据"), default=list)  # the row's cells, in the order of ``job.columns``

    class Meta:
        verbose_name = _("导入失败行")
        verbose_name_plural = _("导入失败行")
        ordering = ["job", "row_number", "id"]
        indexes = [models.Index(fields=["job", "row_number"], name="import_rowerror_job_idx")]

    def __str__(self):
        return f"#{self.row_number} {self.field}"
