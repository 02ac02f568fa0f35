"""The upload form: it only shapes the input, the file is judged by ``import_run``."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import ImportKind
from .tabular import MAX_BYTES


class ImportUploadForm(forms.Form):
    file = forms.FileField(label=_("文件"), help_text=_(".xlsx 或 .csv（UTF-8 或 GBK），首行为列名；最多 50,000 行、20 MB。"),
                           widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.csv,.txt"}))
    kind = forms.ChoiceField(label=_("导入内容"), choices=ImportKind.choices, initial=ImportKind.CUSTOMERS_UNITS)

    def clean_file(self):
        f = self.cleaned_data["file"]
        if f.size > MAX_BYTES:
            raise forms.ValidationError(_("文件过大，上限为 20 MB，请拆分后分批导入。"))
        return f
