from aftersales.org.scope import principal as _principal


def principal(request):
    """Puts the signed-in user's roles and permissions in every template as ``principal``."""
    return {"principal": _principal(getattr(request, "user", None))}
