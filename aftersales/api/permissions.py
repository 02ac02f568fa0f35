"""Every API operation declares what it needs: ``@requires(perm)`` or ``@public``.

Usage (below the router decorator, so the check runs after ninja has parsed the input)::

    @router.get("/customers/{customer_id}", response=CustomerDetail)
    @requires(Perm.CUSTOMER_VIEW, own_customer=True)
    def customer_detail(request, customer_id: int): ...

``requires`` answers 403 (``PermissionDenied``) when the caller holds the permission nowhere
(or, with ``at_hq=True``, not at headquarters). The check runs right after authentication and
before ninja validates the input, so a caller without the right gets 403 whatever they send,
never a 400 describing the input; the handler wrapper checks again, as a safety net. Where it holds it is the selectors' business:
an object outside the caller's scope is 404 (``NotFound``), like one that does not exist.

The declarations are kept in ``REGISTRY`` (keyed by the operation id ninja derives from the
view: ``<module>_<function>`` with dots as underscores) and shown in the OpenAPI schema as
``x-permission``, so a test can check that no operation was left undeclared.

Handler modules must not use ``from __future__ import annotations``: ninja resolves string
annotations in the wrapper's module, not the handler's (``requires`` refuses them).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ninja.decorators import decorate_view
from ninja.operation import Operation
from ninja.utils import contribute_operation_callback

from aftersales.core.errors import DomainError, PermissionDenied
from aftersales.org.scope import principal

# Pseudo-permissions: any signed-in user / anybody at all.
AUTHENTICATED = "authenticated"
PUBLIC = "public"

# Served by ninja itself, outside the operations: the schema and its viewer are public.
PUBLIC_PATHS = ("/api/openapi.json", "/api/docs")


@dataclass(frozen=True)
class Requirement:
    perm: str
    at_hq: bool = False
    own_customer: bool = False  # a customer user may call it for their own file

    def check(self, user) -> None:
        if self.perm == PUBLIC:
            return
        if user is None or not getattr(user, "is_authenticated", False):
            raise PermissionDenied()
        if self.perm == AUTHENTICATED:
            return
        p = principal(user)
        if self.own_customer and p.customer_id is not None:
            return
        if not p.can(self.perm):
            raise PermissionDenied()
        if self.at_hq and p.node_ids_for(self.perm) is not None:
            raise PermissionDenied()


REGISTRY: dict[str, Requirement] = {}


def operation_key(func) -> str:
    """The id ninja gives the operation of ``func`` (``NinjaAPI.get_openapi_operation_id``)."""
    return f"{func.__module__}_{func.__name__}".replace(".", "_")


def _annotate(req: Requirement, operation) -> None:
    extra = dict(operation.openapi_extra or {})
    extra["x-permission"] = req.perm
    if req.at_hq:
        extra["x-permission-at-hq"] = True
    if req.own_customer:
        extra["x-own-customer"] = True
    operation.openapi_extra = extra
    where = "（须在总部持有）" if req.at_hq else ""
    note = f"权限：`{req.perm}`{where}"
    operation.description = f"{operation.description}\n\n{note}" if operation.description else note


def _gate(req: Requirement):
    """A run decorator (``decorate_view``; re-applied by ninja to each bound copy of the
    operation) that puts the permission check after the operation's authentication."""

    def deco(run):
        op = getattr(run, "__self__", None)
        if isinstance(op, Operation) and not op.is_async:
            authenticate = op._run_checks  # auth (+ throttles): sets request.auth

            def checks(request):
                error = authenticate(request)
                if error is not None:
                    return error
                try:
                    req.check(getattr(request, "auth", None))
                except DomainError as exc:
                    return op.api.on_exception(request, exc)
                return None

            op._run_checks = checks
        return run

    return deco


def _declare(func, req: Requirement):
    strings = [k for k, a in getattr(func, "__annotations__", {}).items() if isinstance(a, str)]
    if strings:
        raise TypeError(f"{func.__module__}.{func.__name__}: string annotations {strings}; "
                        "API modules must not use `from __future__ import annotations`.")

    @functools.wraps(func)
    def wrapper(request, *args, **kwargs):
        req.check(getattr(request, "auth", None))
        return func(request, *args, **kwargs)

    wrapper.requirement = req
    key = operation_key(wrapper)
    if key in REGISTRY and REGISTRY[key] != req:
        raise ValueError(f"{key} declared twice with different permissions")
    REGISTRY[key] = req
    contribute_operation_callback(wrapper, functools.partial(_annotate, req))
    if req.perm != PUBLIC:
        wrapper = decorate_view(_gate(req))(wrapper)
    return wrapper


def requires(perm: str, *, at_hq: bool = False, own_customer: bool = False):
    """Declare the permission an operation needs; see the module docstring."""
    if perm == PUBLIC:
        raise ValueError("use @public for public operations")

    def deco(func):
        return _declare(func, Requirement(str(perm), at_hq=at_hq, own_customer=own_customer))

    return deco


def public(func):
    """Declare an operation open to anybody (it must also be mounted with ``auth=None``)."""
    return _declare(func, Requirement(PUBLIC))
