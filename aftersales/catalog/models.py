"""Products and warranty rules (R-WAR-1): categories, models with their main parts, and
the 三包 policy per category (overridable per model). Defaults follow REFERENCE.md; every
number is a setting an administrator can change in the admin."""

from django.db import models
from django.db.models import Q
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _


class Category(models.Model):
    code = models.CharField(_("编码"), max_length=20, unique=True)
    name = models.CharField(_("名称"), max_length=50)
    name_en = models.CharField(_("英文名称"), max_length=50, blank=True)

    class Meta:
        verbose_name = _("产品类别")
        verbose_name_plural = _("产品类别")
        ordering = ["code"]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        """The name in the active language (the English name where one is given)."""
        if self.name_en and (get_language() or "").startswith("en"):
            return self.name_en
        return self.name


class ProductModel(models.Model):
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="models", verbose_name=_("类别"))
    code = models.CharField(_("型号"), max_length=40, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    brand = models.CharField(_("品牌"), max_length=50, blank=True)
    launched_on = models.DateField(_("上市日期"), null=True, blank=True)
    discontinued_on = models.DateField(_("停产日期"), null=True, blank=True)
    # Per-model overrides of the category policy (makers often give more, e.g. 6 years on ACs).
    whole_unit_months = models.PositiveSmallIntegerField(_("整机保修（月）覆盖"), null=True, blank=True)
    main_part_months = models.PositiveSmallIntegerField(_("主要部件保修（月）覆盖"), null=True, blank=True)

    class Meta:
        verbose_name = _("产品型号")
        verbose_name_plural = _("产品型号")
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {self.name}"


class MainPart(models.Model):
    """A main part (主要部件) of a model: its repair warranty is the longer main-part period."""

    model = models.ForeignKey(ProductModel, on_delete=models.CASCADE, related_name="main_parts",
                              verbose_name=_("型号"))
    code = models.CharField(_("部件编码"), max_length=30)
    name = models.CharField(_("部件名称"), max_length=50)

    class Meta:
        verbose_name = _("主要部件")
        verbose_name_plural = _("主要部件")
        constraints = [models.UniqueConstraint(fields=["model", "code"], name="main_part_per_model_unique")]

    def __str__(self):
        return self.name


class Exclusion(models.TextChoices):
    """Circumstances that take a fault out of 三包 (repair is charged)."""

    MISUSE = "misuse", _("使用、维护、保管不当造成损坏")
    UNAUTHORISED_REPAIR = "unauthorised_repair", _("非承担三包的修理者拆动造成损坏")
    NO_INVOICE = "no_invoice", _("无三包凭证或有效发票")
    MODEL_MISMATCH = "model_mismatch", _("三包凭证型号与修理产品不符或涂改")
    FORCE_MAJEURE = "force_majeure", _("因不可抗力造成损坏")


class WarrantyPolicy(models.Model):
    category = models.OneToOneField(Category, on_delete=models.CASCADE, related_name="policy",
                                    verbose_name=_("类别"))
    return_days = models.PositiveSmallIntegerField(_("退货期（天）"), default=7)
    exchange_days = models.PositiveSmallIntegerField(_("换货期（天）"), default=15)
    whole_unit_months = models.PositiveSmallIntegerField(_("整机保修（月）"), default=12)
    main_part_months = models.PositiveSmallIntegerField(_("主要部件保修（月）"), default=36)
    repeat_repair_limit = models.PositiveSmallIntegerField(
        _("返修换货次数"), default=2,
        help_text=_("保修期内同一故障修理达到此次数后仍不能正常使用，可换货或退货。"),
    )
    extend_by_repair_time = models.BooleanField(_("修理占用时间顺延保修期"), default=True)
    exchange_restarts = models.BooleanField(_("换货后保修期重新计算"), default=True)
    exclusions = models.JSONField(
        _("不实行三包的情形"), default=list, blank=True,
        help_text=_("适用的除外情形编码列表；为空表示全部除外情形均适用。"),
    )

    class Meta:
        verbose_name = _("三包政策")
        verbose_name_plural = _("三包政策")
        constraints = [
            models.CheckConstraint(condition=Q(exchange_days__gte=models.F("return_days")),
                                   name="policy_exchange_after_return"),
            models.CheckConstraint(condition=Q(main_part_months__gte=models.F("whole_unit_months")),
                                   name="policy_main_part_ge_whole"),
            models.CheckConstraint(condition=Q(repeat_repair_limit__gte=1), name="policy_repeat_limit_positive"),
        ]

    def __str__(self):
        return gettext("%(category)s三包政策") % {"category": self.category}

    def active_exclusions(self) -> set[str]:
        return set(self.exclusions or Exclusion.values)
