"""Page forms. They only shape the input: the rules live in the services, whose
``ValidationFailed`` errors are put back on the form fields (``add_service_errors``)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from aftersales.core.errors import ValidationFailed


class CustomerCreateForm(forms.Form):
    # Not ``required`` here: the service reports every missing or bad field at once.
    name = forms.CharField(label=_("姓名"), max_length=50, required=False,
                           widget=forms.TextInput(attrs={"autocomplete": "off", "required": True}))
    phone = forms.CharField(label=_("手机号"), max_length=20, required=False,
                            widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off",
                                                          "placeholder": "13812345678", "required": True}))
    province = forms.CharField(label=_("省"), max_length=30, required=False)
    city = forms.CharField(label=_("市"), max_length=30, required=False)
    district = forms.CharField(label=_("区县"), max_length=30, required=False)
    street = forms.CharField(label=_("详细地址"), max_length=200, required=False,
                             widget=forms.TextInput(attrs={"placeholder": _("街道、门牌号、楼栋单元")}))
    notes = forms.CharField(label=_("备注"), required=False, widget=forms.Textarea(attrs={"rows": 2}))

    # service error key → form field
    FIELD_MAP = {
        "name": "name",
        "phone": "phone",
        "address.province": "province",
        "address.city": "city",
        "address.district": "district",
        "address.street": "street",
        "notes": "notes",
    }

    def address(self) -> dict:
        d = self.cleaned_data
        return {"province": d["province"], "city": d["city"], "district": d["district"], "street": d["street"]}


def add_service_errors(form: forms.Form, exc: ValidationFailed, field_map: dict[str, str]) -> None:
    """Put a service's field errors on the form; errors of other keys become form errors."""
    for key, messages in exc.errors.items():
        field = field_map.get(key)
        for m in messages:
            form.add_error(field, str(m))
    if not exc.errors:
        form.add_error(None, str(exc.message))


class WarrantyCheckForm(forms.Form):
    on = forms.DateField(label=_("故障日期"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    part = forms.CharField(label=_("故障部件"), required=False, max_length=30)
