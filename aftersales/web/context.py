from django.urls import NoReverseMatch, reverse

from aftersales.org.roles import Perm, Role
from aftersales.org.scope import principal as _principal

from .permissions import OWN_FILE, SIGNED_IN, allowed


def principal(request):
    """Puts the signed-in user's roles and permissions in every template:

    ``principal`` (the ``Principal``), ``role_labels`` (their roles' names in the active
    language), ``can`` (``can.customer_view``, ``can.staff_view`` … for the nav) and
    ``import_url`` (the import page, for users who may import)."""
    user = getattr(request, "user", None)
    p = _principal(user)
    can = {perm.value.replace(".", "_"): allowed(p, perm) for perm in Perm}
    can["signed_in"] = allowed(p, SIGNED_IN)
    can["own_file"] = allowed(p, OWN_FILE)
    can["admin_site"] = bool(user is not None and user.is_authenticated and user.is_staff)
    labels = [str(Role(r).label) for r in p.role_names if r in Role.values]
    if p.is_superuser and Role.ADMIN not in p.role_names:
        labels.insert(0, str(Role.ADMIN.label))
    return {"principal": p, "role_labels": labels, "can": can,
            "import_url": _url("imports:upload") if can["import_run"] else None}


def _url(name: str) -> str | None:
    """The URL of a page of another app, or None while that app's URLs are not mounted."""
    try:
        return reverse(name)
    except NoReverseMatch:
        return None
