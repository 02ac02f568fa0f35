"""Masking of personal data for roles that do not need it (R-REC-2)."""


def mask_phone(phone: str | None) -> str:
    """13812345678 → 138****5678."""
    if not phone:
        return ""
    if len(phone) < 7:
        return "*" * len(phone)
    return f"{phone[:3]}****{phone[-4:]}"


def mask_street(street: str | None) -> str:
    """Keep the first two characters of the street line, hide the rest (e.g. 人民路88号 → 人民****)."""
    if not street:
        return ""
    return street[:2] + "****"


def mask_name(name: str | None) -> str:
    """张三丰 → 张**; used where even the name is more than a role needs."""
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)
