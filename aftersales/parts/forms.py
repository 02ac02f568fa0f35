"""Forms of the parts pages. They check the shape of the input; the rules are the services'
(their ``ValidationFailed`` is put back on the form with ``add_service_errors``)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from aftersales.catalog.models import Category
from aftersales.core.errors import ValidationFailed
from aftersales.imports.tabular import MAX_BYTES

from .models import MovementKind, TransferPurpose

YES_NO_ANY = [("", _("全部")), ("1", _("是")), ("0", _("否"))]


def add_service_errors(form: forms.Form, exc: ValidationFailed, field_map: dict[str, str] | None = None) -> None:
    """A service's field errors on the form's fields (by ``field_map`` or the same name); the
    errors of other keys, and a message without field errors, as the form's own errors."""
    field_map = field_map or {}
    for key, messages in exc.errors.items():
        name = field_map.get(key, key)
        for m in messages:
            form.add_error(name if name in form.fields else None, str(m))
    if not exc.errors:
        form.add_error(None, str(exc.message))


def yes_no(value: str) -> bool | None:
    return {"1": True, "0": False}.get(value or "")


ALL = _("全部")


def _blank(choices, label=ALL):
    return [("", label), *choices]


# ---------------------------------------------------------------- the catalog

class CatalogFilterForm(forms.Form):
    q = forms.CharField(label=_("搜索"), required=False, max_length=50,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("配件编码或名称")}))
    category = forms.ChoiceField(label=_("产品类别"), required=False, choices=())
    model = forms.CharField(label=_("适用型号"), required=False, max_length=40,
                            widget=forms.TextInput(attrs={"placeholder": _("型号编码，如 KFR-35GW")}))
    main_part = forms.CharField(label=_("主要部件编码"), required=False, max_length=30,
                                widget=forms.TextInput(attrs={"placeholder": _("* 表示任一主要部件")}))
    serialised = forms.ChoiceField(label=_("序列号管理"), required=False, choices=YES_NO_ANY)
    returnable = forms.ChoiceField(label=_("旧件须返还"), required=False, choices=YES_NO_ANY)
    active = forms.ChoiceField(label=_("启用"), required=False, choices=YES_NO_ANY, initial="1")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = _blank([(c.code, f"{c.code} {c.display_name}")
                                                  for c in Category.objects.order_by("code")])


class PartForm(forms.Form):
    code = forms.CharField(label=_("配件编码"), max_length=40)
    name = forms.CharField(label=_("名称"), max_length=100)
    name_en = forms.CharField(label=_("英文名称"), max_length=100, required=False)
    category = forms.ChoiceField(label=_("产品类别"), required=False, choices=())
    fits = forms.CharField(label=_("适用型号"), required=False, max_length=2000,
                           help_text=_("型号编码，多个用 , 或 ；分隔"),
                           widget=forms.Textarea(attrs={"rows": 2, "placeholder": "KFR-35GW，KFR-26GW"}))
    main_part_code = forms.CharField(label=_("主要部件编码"), max_length=30, required=False,
                                     help_text=_("此配件是适用型号的主要部件时填写，如 COMP（压缩机）"))
    uom = forms.CharField(label=_("计量单位"), max_length=10, initial="个")
    unit_cost = forms.DecimalField(label=_("成本单价（元）"), min_value=0, max_digits=12, decimal_places=2,
                                   initial=0)
    serialised = forms.BooleanField(label=_("序列号管理"), required=False)
    returnable = forms.BooleanField(label=_("旧件须返还"), required=False, initial=True)
    active = forms.BooleanField(label=_("启用"), required=False, initial=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = _blank([(c.code, f"{c.code} {c.display_name}")
                                                  for c in Category.objects.order_by("code")], _("（不限）"))

    @classmethod
    def initial_for(cls, part) -> dict:
        return {"code": part.code, "name": part.name, "name_en": part.name_en,
                "category": part.category.code if part.category_id else "",
                "fits": "，".join(sorted(m.code for m in part.fits.all())), "main_part_code": part.main_part_code,
                "uom": part.uom, "unit_cost": part.unit_cost, "serialised": part.serialised,
                "returnable": part.returnable, "active": part.active}


# ---------------------------------------------------------------- imports

class ImportForm(forms.Form):
    kind = forms.ChoiceField(label=_("导入内容"), choices=[("catalog", _("配件目录")), ("stock", _("期初库存"))])
    file = forms.FileField(label=_("文件（.xlsx 或 .csv）"),
                           widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.csv,text/csv"}))

    def clean_file(self):
        f = self.cleaned_data["file"]
        if f.size > MAX_BYTES:
            raise forms.ValidationError(_("文件过大（%(size).1f MB），上限为 20 MB，请拆分后分批导入。") % {
                "size": f.size / 1024 / 1024})
        return f


# ---------------------------------------------------------------- stock

class StockFilterForm(forms.Form):
    warehouse = forms.TypedChoiceField(label=_("仓库"), required=False, coerce=int, empty_value=None, choices=())
    q = forms.CharField(label=_("配件"), required=False, max_length=50,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("配件编码或名称")}))
    below = forms.BooleanField(label=_("只看低于补货点"), required=False)

    def __init__(self, *args, warehouses=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["warehouse"].choices = _blank([(w.pk, f"{w.code} {w.name}") for w in warehouses],
                                                  _("全部仓库"))


class _WarehousePartForm(forms.Form):
    warehouse = forms.TypedChoiceField(label=_("仓库"), coerce=int, choices=())
    part = forms.CharField(label=_("配件编码"), max_length=40)

    def __init__(self, *args, warehouses=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["warehouse"].choices = [(w.pk, f"{w.code} {w.name}") for w in warehouses]


class ReceiveForm(_WarehousePartForm):
    qty = forms.IntegerField(label=_("数量"), min_value=1, max_value=1_000_000)
    unit_cost = forms.DecimalField(label=_("成本单价（元）"), required=False, min_value=0, max_digits=12,
                                   decimal_places=2)
    serials = forms.CharField(label=_("序列号"), required=False, max_length=5000,
                              help_text=_("序列号管理的配件：每件一个，用 , 或空格分隔"),
                              widget=forms.Textarea(attrs={"rows": 2}))
    reason = forms.CharField(label=_("说明"), required=False, max_length=200)


class AdjustForm(_WarehousePartForm):
    counted = forms.IntegerField(label=_("盘点数量"), min_value=0, max_value=1_000_000)
    reason = forms.CharField(label=_("盘点原因"), max_length=200)


class ScrapForm(_WarehousePartForm):
    qty = forms.IntegerField(label=_("数量"), min_value=1, max_value=1_000_000)
    reason = forms.CharField(label=_("报废原因"), max_length=200)
    serials = forms.CharField(label=_("序列号"), required=False, max_length=5000,
                              help_text=_("序列号管理的配件：写明报废的每一件"),
                              widget=forms.Textarea(attrs={"rows": 2}))
    defective = forms.BooleanField(label=_("报废旧件（待返旧件）"), required=False)


class ReorderForm(_WarehousePartForm):
    reorder_point = forms.IntegerField(label=_("补货点"), min_value=0, max_value=1_000_000)
    reorder_qty = forms.IntegerField(label=_("补货量"), min_value=1, max_value=1_000_000)


class MovementFilterForm(forms.Form):
    warehouse = forms.TypedChoiceField(label=_("仓库"), required=False, coerce=int, empty_value=None, choices=())
    part = forms.CharField(label=_("配件编码"), required=False, max_length=40)
    kind = forms.ChoiceField(label=_("类型"), required=False, choices=_blank(MovementKind.choices))
    date_from = forms.DateField(label=_("日期自"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("至"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    order = forms.CharField(label=_("工单号"), required=False, max_length=40)

    def __init__(self, *args, warehouses=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["warehouse"].choices = _blank([(w.pk, f"{w.code} {w.name}") for w in warehouses],
                                                  _("全部仓库"))

    def clean(self):
        d = super().clean()
        a, b = d.get("date_from"), d.get("date_to")
        if a and b and b < a:
            self.add_error("date_to", _("结束日期不能早于开始日期。"))
        return d


# ---------------------------------------------------------------- transfers

class TransferForm(forms.Form):
    source = forms.TypedChoiceField(label=_("调出仓"), coerce=int, choices=())
    destination = forms.TypedChoiceField(label=_("调入仓"), coerce=int, choices=())
    purpose = forms.ChoiceField(label=_("用途"), choices=[c for c in TransferPurpose.choices
                                                         if c[0] != TransferPurpose.ORDER])
    lines = forms.CharField(label=_("明细"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3}),
                            help_text=_("每行一个配件：配件编码 数量（序列号管理的配件再写序列号），如 P-CAP-35 5"))
    defective = forms.BooleanField(label=_("调拨旧件（返回上级）"), required=False)
    note = forms.CharField(label=_("说明"), required=False, max_length=200)

    def __init__(self, *args, sources=(), destinations=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [(w.pk, f"{w.code} {w.name}") for w in sources]
        self.fields["destination"].choices = [(w.pk, f"{w.code} {w.name}") for w in destinations]

    def clean_lines(self):
        """[(code, qty, serials)] from lines like "P-CAP-35 5" or "P-COMP-1 2 SN1,SN2"."""
        out = []
        for n, raw in enumerate(self.cleaned_data["lines"].splitlines(), start=1):
            bits = raw.replace("，", ",").replace("\t", " ").split()
            if not bits:
                continue
            if len(bits) < 2:
                raise forms.ValidationError(_("第 %(n)s 行：请写“配件编码 数量”。") % {"n": n})
            try:
                qty = int(bits[1])
            except ValueError:
                raise forms.ValidationError(_("第 %(n)s 行：数量须为整数。") % {"n": n}) from None
            if qty < 1:
                raise forms.ValidationError(_("第 %(n)s 行：数量须大于 0。") % {"n": n})
            serials = [s for b in bits[2:] for s in b.split(",") if s]
            out.append((bits[0], qty, serials))
        if not out:
            raise forms.ValidationError(_("请至少填写一行明细。"))
        return out


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("原因"), max_length=200)


# ---------------------------------------------------------------- on the order

class PartRequestForm(forms.Form):
    part = forms.IntegerField(label=_("配件"), min_value=1)
    qty = forms.IntegerField(label=_("数量"), min_value=1, max_value=100, initial=1)


class ConsumeForm(forms.Form):
    serial = forms.CharField(label=_("新件序列号"), required=False, max_length=50)
    old_serial = forms.CharField(label=_("旧件序列号"), required=False, max_length=50)
    old_returned = forms.BooleanField(label=_("旧件已收回"), required=False, initial=True)
