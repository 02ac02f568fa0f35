"""Who may do what, where: the one place where a user becomes a node scope.

``principal(user)`` reads the user's role assignments once per request (cached on the user
object). ``scope_filter(user, perm)`` turns a permission into a queryset filter on the node
of the rows: nothing, when the permission is held at headquarters; ``node_id IN (…)`` for
the subtrees where it is held; an impossible filter when it is not held at all. Every
selector uses it, so pages, API and exports scope alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q

from .models import Node
from .roles import ROLE_PERMS, Role


@dataclass
class Principal:
    user_id: int | None
    is_superuser: bool = False
    roles: list[tuple[str, int, str]] = field(default_factory=list)  # (role, node_id, node_path)
    customer_id: int | None = None
    _scope_cache: dict = field(default_factory=dict)

    @property
    def role_names(self) -> list[str]:
        return sorted({r for r, _n, _p in self.roles})

    def has_role(self, role: str) -> bool:
        return any(r == role for r, _n, _p in self.roles)

    def perms(self) -> set[str]:
        if self.is_superuser:
            return set(ROLE_PERMS[Role.ADMIN])
        out: set[str] = set()
        for r, _n, _p in self.roles:
            out |= ROLE_PERMS.get(r, frozenset())
        return out

    def can(self, perm: str) -> bool:
        return perm in self.perms()

    def paths_for(self, perm: str) -> list[str]:
        if self.is_superuser:
            return ["/"]
        paths = sorted({p for r, _n, p in self.roles if perm in ROLE_PERMS.get(r, frozenset())})
        # drop paths inside another path of the list
        out: list[str] = []
        for p in paths:
            if not any(p.startswith(q) for q in out):
                out.append(p)
        return out

    def node_ids_for(self, perm: str) -> set[int] | None:
        """None means everywhere (held at the root); otherwise the node ids in scope."""
        paths = tuple(self.paths_for(perm))
        if paths in self._scope_cache:  # permissions held at the same nodes share one look-up
            return self._scope_cache[paths]
        if any(p.count("/") <= 2 for p in paths):  # "/<root id>/" or superuser's "/"
            result = None
        elif not paths:
            result = set()
        else:
            q = Q()
            for p in paths:
                q |= Q(path__startswith=p)
            result = set(Node.objects.filter(q).values_list("id", flat=True))
        self._scope_cache[paths] = result
        return result


ANONYMOUS = Principal(user_id=None)


def principal(user) -> Principal:
    if user is None or not user.is_authenticated:
        return ANONYMOUS
    cached = getattr(user, "_aftersales_principal", None)
    if cached is not None:
        return cached
    roles = list(user.role_assignments.values_list("role", "node_id", "node__path"))
    customer_id = None
    if any(r == Role.CUSTOMER for r, _n, _p in roles):
        from django.apps import apps

        customer_id = (
            apps.get_model("customers", "Customer").objects.filter(user=user).values_list("id", flat=True).first()
        )
    p = Principal(user_id=user.pk, is_superuser=user.is_superuser, roles=roles, customer_id=customer_id)
    user._aftersales_principal = p
    return p


def scope_filter(user, perm: str, *, node_field: str = "node") -> Q | None:
    """A filter limiting rows to the nodes where ``user`` holds ``perm``.

    Returns ``None`` when the user holds it everywhere (no filter needed), and a filter
    matching nothing when the user does not hold it at all.
    """
    ids = principal(user).node_ids_for(perm)
    if ids is None:
        return None
    if not ids:
        return Q(pk__in=[])
    return Q(**{f"{node_field}_id__in": sorted(ids)})


def scoped(qs, user, perm: str, *, node_field: str = "node"):
    f = scope_filter(user, perm, node_field=node_field)
    return qs if f is None else qs.filter(f)


def holds_at(user, perm: str, node_id: int) -> bool:
    ids = principal(user).node_ids_for(perm)
    return ids is None or node_id in ids
