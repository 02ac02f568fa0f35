"""The organisation over the API: nodes and coverage, employees and certificates, roles.

Thin handlers: each calls one selector or service of ``aftersales.org`` and declares the
permission it needs (``aftersales.api.permissions``). No ``from __future__ import
annotations`` here (see that module).
"""

import datetime as dt

from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status

from aftersales.api.permissions import AUTHENTICATED, requires
from aftersales.api.schemas import (
    Cursor,
    Id,
    In,
    Lat,
    Limit,
    Lng,
    NodeRef,
    PathId,
    QueryId,
    Text,
    page_of,
    paginate,
    subtree_path,
)
from aftersales.org import selectors, services
from aftersales.org.models import Grade, Node, NodeKind
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import principal

router = Router(tags=["org"])



# ---------------------------------------------------------------- schemas

class CoverageOut(Schema):
    province: str
    city: str
    district: str


class NodeOut(Schema):
    id: int
    kind: str
    code: str
    name: str
    parent_id: int | None
    path: str
    province: str
    city: str
    district: str
    address: str
    phone: str
    lat: float | None
    lng: float | None
    active: bool


class NodeDetail(NodeOut):
    parent: NodeRef | None
    coverage: list[CoverageOut]


class NodeIn(In):
    kind: NodeKind
    code: Text(20)
    name: Text(100)
    parent_id: Id | None = None
    province: Text(30) = ""
    city: Text(30) = ""
    district: Text(30) = ""
    address: Text(200) = ""
    lat: Lat | None = None
    lng: Lng | None = None
    phone: Text(20) = ""


class DistrictIn(In):
    province: Text(30)
    city: Text(30)
    district: Text(30)


class CoverageIn(In):
    districts: list[DistrictIn] = Field(max_length=1000)


class DepartmentRef(Schema):
    id: int
    kind: str
    name: str


class CertificationOut(Schema):
    id: int
    type: str
    type_name: str
    number: str
    issued_on: dt.date
    expires_on: dt.date

    @staticmethod
    def resolve_type(obj):
        return obj.type.code

    @staticmethod
    def resolve_type_name(obj):
        return obj.type.name


class EmployeeOut(Schema):
    id: int
    employee_no: str
    username: str
    name: str
    phone: str
    grade: str
    node: NodeRef
    department: DepartmentRef | None
    skills: list[str]
    hire_date: dt.date
    probation_end: dt.date | None
    service_area: str
    active: bool

    @staticmethod
    def resolve_username(obj):
        return obj.user.username

    @staticmethod
    def resolve_skills(obj):
        return sorted(c.code for c in obj.skills.all())


class EmployeeDetail(EmployeeOut):
    certifications: list[CertificationOut]

    @staticmethod
    def resolve_certifications(obj):
        return list(obj.certifications.all())


class EmployeeRef(Schema):
    id: int
    employee_no: str
    name: str
    node: NodeRef


class ExpiringCertificationOut(CertificationOut):
    employee: EmployeeRef
    expired: bool

    @staticmethod
    def resolve_expired(obj):
        return obj.expires_on < timezone.localdate()


class EmployeeIn(In):
    node_id: Id
    username: Text(150)
    name: Text(50)
    employee_no: Text(20)
    hire_date: dt.date
    grade: Grade = Grade.JUNIOR
    phone: Text(20) = ""
    probation_end: dt.date | None = None
    department_id: Id | None = None
    skills: list[Text(20)] = Field(default_factory=list, max_length=100)
    service_area: Text(200) = ""
    password: Text(128) | None = None


class EmployeePatch(In):
    name: Text(50) | None = None
    grade: Grade | None = None
    phone: Text(20) | None = None
    probation_end: dt.date | None = None
    service_area: Text(200) | None = None
    active: bool | None = None
    skills: list[Text(20)] | None = Field(None, max_length=100)


class CertificationIn(In):
    type: Text(30)
    number: Text(50)
    issued_on: dt.date
    expires_on: dt.date | None = None


class RoleIn(In):
    user_id: Id
    role: Role
    node_id: Id


class RoleOut(Schema):
    id: int
    user_id: int
    role: str
    role_label: str
    node_id: int

    @staticmethod
    def resolve_role_label(obj):
        return str(Role(obj.role).label) if obj.role in Role.values else obj.role


class MeRole(Schema):
    role: str
    label: str
    node: NodeRef
    node_kind: str


class MePermission(Schema):
    code: str
    label: str
    everywhere: bool


class MeOut(Schema):
    user_id: int
    username: str
    is_superuser: bool
    customer_id: int | None
    roles: list[MeRole]
    permissions: list[MePermission]


NodePage = page_of(NodeOut)
EmployeePage = page_of(EmployeeOut)
ExpiringPage = page_of(ExpiringCertificationOut)


# ---------------------------------------------------------------- nodes

@router.get("/nodes", response=NodePage)
@requires(Perm.ORG_VIEW)
def node_list(request, limit: Limit, cursor: Cursor, kind: NodeKind | None = None,
              parent_id: QueryId = None):
    """The nodes in your scope, in tree order (filters: ``kind``, ``parent_id``)."""
    qs = selectors.node_queryset(request.auth)
    if kind:
        qs = qs.filter(kind=kind)
    if parent_id is not None:
        qs = qs.filter(parent_id=parent_id)
    return paginate(qs, ordering=["path", "id"], cursor=cursor, limit=limit)


@router.get("/nodes/{node_id}", response=NodeDetail)
@requires(Perm.ORG_VIEW)
def node_detail(request, node_id: PathId):
    return selectors.node_get(request.auth, node_id)


@router.post("/nodes", response={201: NodeDetail})
@requires(Perm.ORG_EDIT)
def node_create(request, payload: NodeIn):
    return services.node_create(user=request.auth, **payload.model_dump())


@router.put("/nodes/{node_id}/coverage", response=list[CoverageOut])
@requires(Perm.ORG_EDIT)
def node_coverage_set(request, node_id: PathId, payload: CoverageIn):
    """Replace the districts an outlet serves."""
    return services.coverage_set(user=request.auth, outlet_id=node_id,
                                 districts=[(d.province, d.city, d.district) for d in payload.districts])


# ---------------------------------------------------------------- employees

@router.get("/employees", response=EmployeePage)
@requires(Perm.STAFF_VIEW)
def employee_list(request, limit: Limit, cursor: Cursor, node_id: QueryId = None,
                  grade: Grade | None = None, skill: Text(20) | None = None, active: bool | None = None,
                  q: Text(50) | None = None):
    """Employees in your scope by name (filters: ``node_id`` subtree, ``grade``, ``skill``
    category code, ``active``, ``q`` name prefix)."""
    qs = selectors.employee_list_qs(request.auth)
    if node_id is not None:
        qs = qs.filter(node__path__startswith=subtree_path(node_id))
    if grade:
        qs = qs.filter(grade=grade)
    if skill:
        qs = qs.filter(skills__code=skill.strip().upper())
    if active is not None:
        qs = qs.filter(active=active)
    if q and q.strip():
        qs = qs.filter(name__startswith=q.strip())
    return paginate(qs, ordering=["name", "id"], cursor=cursor, limit=limit)


@router.get("/employees/{employee_id}", response=EmployeeDetail)
@requires(Perm.STAFF_VIEW)
def employee_detail(request, employee_id: PathId):
    return selectors.employee_get(request.auth, employee_id)


@router.post("/employees", response={201: EmployeeDetail})
@requires(Perm.STAFF_EDIT)
def employee_create(request, payload: EmployeeIn):
    return services.employee_create(user=request.auth, **payload.model_dump())


@router.patch("/employees/{employee_id}", response=EmployeeDetail)
@requires(Perm.STAFF_EDIT)
def employee_update(request, employee_id: PathId, payload: EmployeePatch):
    return services.employee_update(user=request.auth, employee_id=employee_id,
                                    **payload.model_dump(exclude_unset=True))


@router.post("/employees/{employee_id}/certifications", response={201: CertificationOut})
@requires(Perm.STAFF_EDIT)
def certification_add(request, employee_id: PathId, payload: CertificationIn):
    return services.certification_add(user=request.auth, employee_id=employee_id, type_code=payload.type,
                                      number=payload.number, issued_on=payload.issued_on,
                                      expires_on=payload.expires_on)


@router.get("/certifications/expiring", response=ExpiringPage)
@requires(Perm.STAFF_VIEW)
def certifications_expiring(request, limit: Limit, cursor: Cursor,
                            within_days: int = Query(30, ge=0, le=3650)):
    """Certificates of active staff that expire within ``within_days`` (or already have)."""
    qs = selectors.certifications_expiring(request.auth, within_days=within_days)
    return paginate(qs, ordering=["expires_on", "id"], cursor=cursor, limit=limit)


# ---------------------------------------------------------------- me and roles

@router.get("/me", response=MeOut)
@requires(AUTHENTICATED)
def me(request):
    """Who you are: your roles (and where), and each permission you hold (``everywhere``: at headquarters)."""
    user = request.auth
    p = principal(user)
    nodes = Node.objects.in_bulk({n for _r, n, _p in p.roles})
    roles = [
        {"role": r, "label": str(Role(r).label) if r in Role.values else r, "node": nodes[n],
         "node_kind": nodes[n].kind}
        for r, n, _path in sorted(p.roles) if n in nodes
    ]
    perms = [
        {"code": code, "label": str(Perm(code).label),
         "everywhere": any(path.count("/") <= 2 for path in p.paths_for(code))}
        for code in sorted(p.perms())
    ]
    return {"user_id": user.pk, "username": user.get_username(), "is_superuser": p.is_superuser,
            "customer_id": p.customer_id, "roles": roles, "permissions": perms}


@router.post("/roles", response={201: RoleOut})
@requires(Perm.STAFF_EDIT)
def role_assign(request, payload: RoleIn):
    """Grant a role over a node (never more than you hold there yourself)."""
    return services.role_assign(user=request.auth, target_user_id=payload.user_id, role=payload.role.value,
                                node_id=payload.node_id)


@router.delete("/roles/{assignment_id}", response={204: None})
@requires(Perm.STAFF_EDIT)
def role_revoke(request, assignment_id: PathId):
    services.role_revoke(user=request.auth, assignment_id=assignment_id)
    return Status(204, None)
