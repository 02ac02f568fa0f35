"""Every page declares the permission it needs: ``@require_perm(Perm.X)``.

- not signed in → redirect to the login page (htmx requests get ``HX-Redirect`` instead,
  so a live-search box does not swap a login form into the results);
- signed in without the permission → 403 (the ``403.html`` page);
- a selector's ``NotFound`` (absent *or* out of scope) → 404, a service's
  ``PermissionDenied`` → 403.

Besides the ``Perm`` values two page-level pseudo-permissions exist: ``SIGNED_IN`` (any
user holding at least one role) and ``OWN_FILE`` (a customer reading their own file;
the selectors limit what they see).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import resolve_url

from aftersales.core.errors import NotFound
from aftersales.core.errors import PermissionDenied as DomainPermissionDenied
from aftersales.org.scope import Principal, principal

SIGNED_IN = "web.signed_in"
OWN_FILE = "web.own_file"


def allowed(p: Principal, perm: str) -> bool:
    if perm == SIGNED_IN:
        return p.is_superuser or bool(p.roles)
    if perm == OWN_FILE:
        return p.customer_id is not None
    return p.can(perm)


def is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def require_perm(*perms: str) -> Callable:
    """Allow the view to users holding any one of ``perms``."""
    if not perms:
        raise ValueError("require_perm needs at least one permission")

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                if is_htmx(request):
                    resp = HttpResponse(status=401)
                    resp["HX-Redirect"] = f"{resolve_url(settings.LOGIN_URL)}?next={request.path}"
                    return resp
                return redirect_to_login(request.get_full_path())
            p = principal(user)
            if not any(allowed(p, perm) for perm in perms):
                raise PermissionDenied
            try:
                return view(request, *args, **kwargs)
            except NotFound as e:
                raise Http404(str(e.message)) from e
            except DomainPermissionDenied as e:
                raise PermissionDenied(str(e.message)) from e

        wrapped.required_perms = perms
        return wrapped

    return decorator
