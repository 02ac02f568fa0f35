"""Forms of the work-order pages. Like ``web.forms`` they only shape the input (numbers,
times, lengths); the rules live in the services (``tickets.services``, ``tickets.workflow``,
``dispatch.services``), whose ``ValidationFailed`` errors are put back on the fields."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aftersales.notifications.models import MessageStatus
from aftersales.tickets.models import Channel, OrderType, Priority, SlaState, Status

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
DATETIME_INPUTS = [DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format=DATETIME_LOCAL)


def datetime_field(label, **kw) -> forms.DateTimeField:
    return forms.DateTimeField(label=label, required=False, input_formats=DATETIME_INPUTS,
                               widget=DateTimeLocalInput(), **kw)


def local_value(value: dt.datetime | None) -> str:
    """A time as a ``datetime-local`` input value (local time, minutes)."""
    return timezone.localtime(value).strftime(DATETIME_LOCAL) if value else ""


PLEASE_CHOOSE = _("— 请选择 —")


def _blank(choices, label=PLEASE_CHOOSE):
    return [("", label), *choices]


# ---------------------------------------------------------------- intake


class IntakeForm(forms.Form):
    """The agent's intake. Not ``required`` here: ``order_create`` names every bad field at once."""

    customer_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    unit_id = forms.IntegerField(label=_("产品"), required=False)
    address_id = forms.IntegerField(label=_("服务地址"), required=False)
    problem = forms.CharField(label=_("问题描述"), required=False, max_length=2000,
                              widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off",
                                                           "placeholder": _("客户原话，例如：空调不制冷，开机半小时还是热风")}))
    # choices are checked by the service (every bad field at once), not here
    type = forms.CharField(label=_("工单类型"), required=False, max_length=20,
                           widget=forms.Select(choices=_blank(OrderType.choices)))
    fault_category = forms.CharField(label=_("故障类别"), required=False, max_length=30)
    channel = forms.CharField(label=_("受理渠道"), required=False, max_length=20,
                              widget=forms.Select(choices=Channel.choices))
    priority = forms.CharField(label=_("优先级"), required=False, max_length=10,
                               widget=forms.Select(choices=Priority.choices))
    wish_from = datetime_field(_("期望上门开始"))
    wish_to = datetime_field(_("期望上门结束"))

    # service error key → form field
    FIELD_MAP = {
        "customer_id": "customer_id",
        "unit_id": "unit_id",
        "address_id": "address_id",
        "problem": "problem",
        "type": "type",
        "fault_category": "fault_category",
        "channel": "channel",
        "priority": "priority",
        "wish_from": "wish_from",
        "wish_to": "wish_to",
    }

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        return {
            "customer_id": d["customer_id"],
            "unit_id": d["unit_id"],
            "address_id": d["address_id"],
            "problem": d["problem"] or "",
            "type": d["type"],
            "fault_category": d["fault_category"] or None,
            "channel": d["channel"],
            "priority": d["priority"],
            "wish_from": d["wish_from"],
            "wish_to": d["wish_to"],
        }


class ClassifyPreviewForm(forms.Form):
    """What the suggestion and SLA fragments read from the intake form (all optional)."""

    problem = forms.CharField(required=False, max_length=2000)
    unit_id = forms.IntegerField(required=False)
    type = forms.ChoiceField(required=False, choices=_blank(OrderType.choices))
    priority = forms.ChoiceField(required=False, choices=_blank(Priority.choices))
    fault_category = forms.CharField(required=False, max_length=30)
    type_manual = forms.BooleanField(required=False)
    fault_manual = forms.BooleanField(required=False)


# ---------------------------------------------------------------- moves

REASON_WIDGET = forms.Textarea(attrs={"rows": 2})


def move_field(name: str, *, type_choices=None, fault_categories=(), fault_codes=(), nodes=()) -> forms.Field:
    """The form field of one thing a move needs (``Move.needs``) or may take."""
    if name == "reason":
        return forms.CharField(label=_("原因"), required=False, max_length=2000, widget=REASON_WIDGET)
    if name == "result":
        return forms.CharField(label=_("处理结果"), required=False, max_length=2000,
                               widget=forms.Textarea(attrs={"rows": 2}))
    if name == "diagnosis":
        return forms.CharField(label=_("检测结论"), required=False, max_length=2000,
                               widget=forms.Textarea(attrs={"rows": 2}))
    if name == "actions":
        return forms.CharField(label=_("处理措施"), required=False, max_length=2000,
                               widget=forms.Textarea(attrs={"rows": 2}))
    if name == "type":
        return forms.ChoiceField(label=_("工单类型"), required=False, choices=_blank(type_choices or OrderType.choices))
    if name == "priority":
        return forms.ChoiceField(label=_("优先级"), required=False, choices=Priority.choices)
    if name == "fault_category":
        return forms.ChoiceField(label=_("故障类别"), required=False,
                                 choices=_blank([(c.code, c.name) for c in fault_categories], _("— 未定 —")))
    if name == "fault_code":
        return forms.ChoiceField(label=_("故障代码"), required=False,
                                 choices=_blank([(c.code, f"{c.code} {c.name}") for c in fault_codes]))
    if name in ("node", "node_id"):
        return forms.TypedChoiceField(label=_("转至网点"), required=False, coerce=int, empty_value=None,
                                      choices=_blank([(n.pk, n.name) for n in nodes]))
    return forms.CharField(label=name, required=False, max_length=2000)


class MoveForm(forms.Form):
    """One move of the workflow: exactly the fields it needs (``Move.needs``), then the optional
    ones it takes (``Move.takes``)."""

    PANEL_NEEDS = ("assignee", "appointment_from", "appointment_to")  # the dispatch panel's

    @classmethod
    def names_for(cls, move) -> list[str]:
        names = [n for n in move.needs if n not in cls.PANEL_NEEDS]
        return names + [n for n in getattr(move, "takes", ()) if n not in names and n not in cls.PANEL_NEEDS]

    def __init__(self, move, *args, fault_categories=(), fault_codes=(), nodes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.move = move
        names = self.names_for(move)
        for n in names:
            self.fields[n] = move_field(n, fault_categories=fault_categories, fault_codes=fault_codes, nodes=nodes)
            if n in move.needs:
                self.fields[n].widget.attrs["required"] = True
            self.fields[n].widget.attrs.setdefault("id", f"id_{move.name}-{n}")
        self.names = names

    def service_kwargs(self) -> dict:
        out = {}
        for n in self.names:
            v = self.cleaned_data.get(n)
            if v in (None, ""):
                continue
            out[n] = v
        return out


class NoteForm(forms.Form):
    note = forms.CharField(label=_("备注"), required=False, max_length=2000,
                           widget=forms.Textarea(attrs={"rows": 2, "placeholder": _("与客户的沟通、进展说明……")}))


# ---------------------------------------------------------------- dispatch


class SlotForm(forms.Form):
    starts_at = datetime_field(_("预约开始"))
    ends_at = datetime_field(_("预约结束"))

    def clean(self):
        d = super().clean()
        a, b = d.get("starts_at"), d.get("ends_at")
        if a and b and b <= a:
            self.add_error("ends_at", _("预约结束时间须晚于开始时间。"))
        return d


class DispatchForm(SlotForm):
    employee_id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    note = forms.CharField(label=_("备注"), required=False, max_length=2000)  # the reason of a reassignment


# ---------------------------------------------------------------- technician


class PhotoForm(forms.Form):
    image = forms.FileField(label=_("照片"), required=False,
                            widget=forms.ClearableFileInput(attrs={"accept": "image/*", "capture": "environment"}))
    caption = forms.CharField(label=_("说明"), required=False, max_length=100)


class ConfirmForm(forms.Form):
    code = forms.CharField(label=_("确认码"), required=False, max_length=12,
                           widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code",
                                                         "pattern": "[0-9]*", "maxlength": 6}))
    signature = forms.FileField(required=False)


# ---------------------------------------------------------------- lists


class OrderFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("状态"), required=False, choices=_blank(Status.choices, _("全部")))
    node = forms.TypedChoiceField(label=_("网点"), required=False, coerce=int, empty_value=None, choices=())
    sla_state = forms.ChoiceField(label=_("时限状态"), required=False, choices=_blank(SlaState.choices, _("全部")))
    type = forms.ChoiceField(label=_("类型"), required=False, choices=_blank(OrderType.choices, _("全部")))
    date_from = forms.DateField(label=_("受理日期自"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("至"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    mine = forms.BooleanField(label=_("我负责的"), required=False)
    open = forms.BooleanField(label=_("未结束"), required=False)
    sla_first = forms.BooleanField(label=_("超时优先"), required=False)
    q = forms.CharField(label=_("搜索"), required=False, max_length=50,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("工单号、手机号或姓名")}))

    def __init__(self, *args, nodes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["node"].choices = _blank([(n.pk, n.name) for n in nodes], _("全部"))

    def clean(self):
        d = super().clean()
        a, b = d.get("date_from"), d.get("date_to")
        if a and b and b < a:
            self.add_error("date_to", _("结束日期不能早于开始日期。"))
        return d


class OutboxFilterForm(forms.Form):
    event = forms.ChoiceField(label=_("事件"), required=False, choices=())
    status = forms.ChoiceField(label=_("状态"), required=False, choices=_blank(MessageStatus.choices, _("全部")))
    ref = forms.CharField(label=_("关联单据"), required=False, max_length=40,
                          widget=forms.TextInput(attrs={"type": "search", "placeholder": _("工单号")}))

    def __init__(self, *args, events=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event"].choices = _blank(list(events), _("全部"))
