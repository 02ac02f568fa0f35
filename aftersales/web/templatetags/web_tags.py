from django import template

register = template.Library()

BADGE = {
    "return": "badge-return",
    "exchange": "badge-exchange",
    "free_repair": "badge-free",
    "chargeable": "badge-charge",
}


@register.filter
def decision_badge(kind) -> str:
    """The CSS class of a warranty decision's badge."""
    return BADGE.get(str(getattr(kind, "value", kind)), "badge-muted")


@register.filter
def expiry_class(days_left: int) -> str:
    if days_left < 0:
        return "badge-charge"
    if days_left <= 7:
        return "badge-exchange"
    return "badge-muted"
