"""Writes of the organisation: nodes, coverage, departments, employees, certificates, roles."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from aftersales.catalog.models import Category
from aftersales.core.errors import ErrorCollector, NotFound, PermissionDenied, ValidationFailed
from aftersales.core.validators import DATE_FORMAT_ERROR, mobile_error, normalize_mobile, parse_date
from aftersales.records.audit import audit_record, snapshot

from .models import (
    NODE_PARENT_KIND,
    Certification,
    CertificationType,
    Coverage,
    Department,
    Employee,
    Grade,
    Node,
    NodeKind,
    RoleAssignment,
)
from .roles import ROLE_NODE_KINDS, ROLE_PERMS, Perm, Role
from .scope import holds_at, principal


def _date(errs: ErrorCollector, field: str, value, *, required: bool = True) -> dt.date | None:
    try:
        d = parse_date(value)
    except ValueError:
        errs.add(field, DATE_FORMAT_ERROR)
        return None
    if d is None and required:
        errs.add(field, _("请填写日期。"))
    return d


def _need(user, perm: str, node_id: int):
    if not holds_at(user, perm, node_id):
        raise PermissionDenied()


# ---------------------------------------------------------------- nodes

@transaction.atomic
def node_create(*, user, kind: str, code: str, name: str, parent_id: int | None, province: str = "", city: str = "",
                district: str = "", address: str = "", lat=None, lng=None, phone: str = "") -> Node:
    errs = ErrorCollector()
    if kind not in NodeKind.values:
        errs.add("kind", _("层级无效。"))
    code, name = (code or "").strip(), (name or "").strip()
    if not code:
        errs.add("code", _("请填写编码。"))
    elif Node.objects.filter(code=code).exists():
        errs.add("code", _("编码 %(code)s 已被使用。") % {"code": code})
    if not name:
        errs.add("name", _("请填写名称。"))
    parent = None
    if parent_id is not None:
        parent = Node.objects.select_for_update().filter(pk=parent_id).first()
        if parent is None:
            errs.add("parent_id", _("上级节点不存在。"))
    expected_parent_kind = NODE_PARENT_KIND.get(kind) if kind in NodeKind.values else None
    if kind in NodeKind.values and parent is not None and parent.kind != expected_parent_kind:
        errs.add("parent_id", _("%(kind)s的上级必须是%(parent)s。") % {
            "kind": NodeKind(kind).label, "parent": NodeKind(expected_parent_kind).label if expected_parent_kind
            else _("（无）")})
    if kind == NodeKind.HQ and parent_id is not None:
        errs.add("parent_id", _("总部不能有上级。"))
    if kind == NodeKind.HQ and Node.objects.filter(kind=NodeKind.HQ).exists():
        errs.add("kind", _("总部已存在。"))
    if kind == NodeKind.OUTLET and not (province and city and district):
        errs.add("district", _("服务网点须填写省、市、区县。"))
    errs.raise_if_any()
    if parent is not None:
        _need(user, Perm.ORG_EDIT, parent.pk)
    elif not principal(user).is_superuser and not principal(user).has_role(Role.ADMIN):
        raise PermissionDenied()
    n = Node.objects.create(kind=kind, code=code, name=name, parent=parent, path="", province=province, city=city,
                            district=district, address=address, lat=lat, lng=lng, phone=phone)
    n.path = f"{parent.path if parent else '/'}{n.pk}/"
    n.save(update_fields=["path"])
    audit_record(actor=user, action="node.create", obj=n, before=None, after=snapshot(n), node_id=n.pk)
    return n


@transaction.atomic
def coverage_set(*, user, outlet_id: int, districts: list[tuple[str, str, str]]) -> list[Coverage]:
    """Replace the districts an outlet serves. A district already served by another outlet
    is refused, naming that outlet."""
    outlet = Node.objects.select_for_update().filter(pk=outlet_id, kind=NodeKind.OUTLET).first()
    if outlet is None or not holds_at(user, Perm.ORG_VIEW, outlet_id):
        raise NotFound()
    _need(user, Perm.ORG_EDIT, outlet_id)
    errs = ErrorCollector()
    wanted = []
    for i, (p, c, d) in enumerate(districts):
        p, c, d = p.strip(), c.strip(), d.strip()
        if not (p and c and d):
            errs.add(f"districts[{i}]", _("省、市、区县均须填写。"))
            continue
        other = Coverage.objects.filter(province=p, city=c, district=d).exclude(outlet=outlet).select_related(
            "outlet").first()
        if other:
            errs.add(f"districts[{i}]", _("%(d)s已由网点“%(o)s”覆盖。") % {"d": f"{p}{c}{d}", "o": other.outlet.name})
        wanted.append((p, c, d))
    errs.raise_if_any()
    before = sorted(outlet.coverage.values_list("province", "city", "district"))
    outlet.coverage.all().delete()
    rows = Coverage.objects.bulk_create([Coverage(outlet=outlet, province=p, city=c, district=d)
                                         for p, c, d in sorted(set(wanted))])
    audit_record(actor=user, action="node.coverage", obj=outlet, before={"coverage": before},
                 after={"coverage": sorted(set(wanted))}, node_id=outlet.pk)
    return rows


@transaction.atomic
def department_create(*, user, node_id: int, kind: str, name: str = "") -> Department:
    _need(user, Perm.ORG_EDIT, node_id)
    from .models import DepartmentKind

    if kind not in DepartmentKind.values:
        raise ValidationFailed({"kind": [_("部门类型无效。")]})
    try:
        with transaction.atomic():
            d = Department.objects.create(node_id=node_id, kind=kind, name=name or DepartmentKind(kind).label)
    except IntegrityError:
        raise ValidationFailed({"kind": [_("该节点已有此类部门。")]}) from None
    audit_record(actor=user, action="department.create", obj=d, before=None, after=snapshot(d), node_id=node_id)
    return d


# ---------------------------------------------------------------- employees

def _employee_state(e: Employee) -> dict:
    d = snapshot(e)
    d["skills"] = sorted(e.skills.values_list("code", flat=True))
    return d


def _check_skills(errs: ErrorCollector, codes: list[str] | None) -> list[Category]:
    codes = sorted({c.strip().upper() for c in (codes or []) if c.strip()})
    cats = list(Category.objects.filter(code__in=codes))
    unknown = set(codes) - {c.code for c in cats}
    if unknown:
        errs.add("skills", _("未知的产品类别：%(codes)s。") % {"codes": ", ".join(sorted(unknown))})
    return cats


@transaction.atomic
def employee_create(*, user, node_id: int, username: str, name: str, employee_no: str, hire_date,
                    grade: str = Grade.JUNIOR, phone: str = "", probation_end=None, department_id: int | None = None,
                    skills: list[str] | None = None, service_area: str = "", password: str | None = None) -> Employee:
    if not Node.objects.filter(pk=node_id).exists():
        raise ValidationFailed({"node_id": [_("节点不存在。")]})
    _need(user, Perm.STAFF_EDIT, node_id)
    errs = ErrorCollector()
    User = get_user_model()
    username, name, employee_no = (username or "").strip(), (name or "").strip(), (employee_no or "").strip()
    if not username:
        errs.add("username", _("请填写登录名。"))
    elif User.objects.filter(username=username).exists():
        errs.add("username", _("登录名 %(u)s 已被使用。") % {"u": username})
    if not name:
        errs.add("name", _("请填写姓名。"))
    if not employee_no:
        errs.add("employee_no", _("请填写工号。"))
    elif Employee.objects.filter(employee_no=employee_no).exists():
        errs.add("employee_no", _("工号 %(no)s 已被使用。") % {"no": employee_no})
    if grade not in Grade.values:
        errs.add("grade", _("级别无效。"))
    if phone:
        phone = normalize_mobile(phone)
        if err := mobile_error(phone):
            errs.add("phone", err)
    hd = _date(errs, "hire_date", hire_date)
    pe = _date(errs, "probation_end", probation_end, required=False)
    if hd and pe and pe < hd:
        errs.add("probation_end", _("试用期结束日期不能早于入职日期。"))
    if department_id is not None and not Department.objects.filter(pk=department_id, node_id=node_id).exists():
        errs.add("department_id", _("部门不属于该节点。"))
    cats = _check_skills(errs, skills)
    errs.raise_if_any()
    u = User.objects.create_user(username=username, password=password)
    if not password:
        u.set_unusable_password()
        u.save(update_fields=["password"])
    e = Employee.objects.create(user=u, node_id=node_id, department_id=department_id, employee_no=employee_no,
                                name=name, phone=phone, grade=grade, hire_date=hd, probation_end=pe,
                                service_area=service_area)
    e.skills.set(cats)
    audit_record(actor=user, action="employee.create", obj=e, before=None, after=_employee_state(e), node_id=node_id)
    return e


@transaction.atomic
def employee_update(*, user, employee_id: int, **changes) -> Employee:
    from .selectors import employee_queryset

    e = employee_queryset(user, Perm.STAFF_EDIT).select_for_update().filter(pk=employee_id).first()
    if e is None:
        raise NotFound()
    before = _employee_state(e)
    errs = ErrorCollector()
    if "name" in changes:
        e.name = (changes["name"] or "").strip() or e.name
    if "grade" in changes:
        if changes["grade"] not in Grade.values:
            errs.add("grade", _("级别无效。"))
        else:
            e.grade = changes["grade"]
    if "phone" in changes:
        phone = normalize_mobile(changes["phone"])
        if phone and (err := mobile_error(phone)):
            errs.add("phone", err)
        e.phone = phone
    if "probation_end" in changes:
        e.probation_end = _date(errs, "probation_end", changes["probation_end"], required=False)
        if e.probation_end and e.probation_end < e.hire_date:
            errs.add("probation_end", _("试用期结束日期不能早于入职日期。"))
    if "service_area" in changes:
        e.service_area = changes["service_area"] or ""
    if "active" in changes:
        e.active = bool(changes["active"])
    cats = _check_skills(errs, changes["skills"]) if "skills" in changes else None
    errs.raise_if_any()
    e.save()
    if cats is not None:
        e.skills.set(cats)
    audit_record(actor=user, action="employee.update", obj=e, before=before, after=_employee_state(e),
                 node_id=e.node_id)
    return e


@transaction.atomic
def certification_add(*, user, employee_id: int, type_code: str, number: str, issued_on, expires_on=None
                      ) -> Certification:
    from .selectors import employee_queryset

    e = employee_queryset(user, Perm.STAFF_EDIT).select_for_update().filter(pk=employee_id).first()
    if e is None:
        raise NotFound()
    errs = ErrorCollector()
    ctype = CertificationType.objects.filter(code=(type_code or "").strip()).first()
    if ctype is None:
        errs.add("type", _("证书类型不存在。"))
    number = (number or "").strip()
    if not number:
        errs.add("number", _("请填写证书编号。"))
    elif ctype and Certification.objects.filter(type=ctype, number=number).exists():
        errs.add("number", _("该证书编号已登记。"))
    issued = _date(errs, "issued_on", issued_on)
    expires = _date(errs, "expires_on", expires_on, required=False)
    if issued and expires is None and ctype:
        from dateutil.relativedelta import relativedelta

        expires = issued + relativedelta(months=ctype.validity_months)
    if issued and expires and expires <= issued:
        errs.add("expires_on", _("有效期须晚于发证日期。"))
    errs.raise_if_any()
    c = Certification.objects.create(employee=e, type=ctype, number=number, issued_on=issued, expires_on=expires)
    audit_record(actor=user, action="certification.add", obj=c, before=None, after=snapshot(c), node_id=e.node_id)
    return c


# ---------------------------------------------------------------- roles

@transaction.atomic
def role_assign(*, user, target_user_id: int, role: str, node_id: int) -> RoleAssignment:
    """Grant ``role`` over ``node``. Nobody grants a right they do not hold themselves there."""
    errs = ErrorCollector()
    if role not in Role.values:
        errs.add("role", _("角色无效。"))
    node = Node.objects.filter(pk=node_id).first()
    if node is None:
        errs.add("node_id", _("节点不存在。"))
    target = get_user_model().objects.filter(pk=target_user_id).first()
    if target is None:
        errs.add("user_id", _("用户不存在。"))
    if role in Role.values and node is not None and node.kind not in ROLE_NODE_KINDS[role]:
        errs.add("node_id", _("%(role)s只能在%(kinds)s层级任职。") % {
            "role": Role(role).label, "kinds": "、".join(str(NodeKind(k).label) for k in ROLE_NODE_KINDS[role])})
    errs.raise_if_any()
    _need(user, Perm.STAFF_EDIT, node_id)
    p = principal(user)
    if not p.is_superuser and not all(holds_at(user, perm, node_id) for perm in ROLE_PERMS[role]):
        raise PermissionDenied(_("不能授予超出自身权限的角色。"))
    ra, created = RoleAssignment.objects.get_or_create(user=target, role=role, node=node)
    if created:
        audit_record(actor=user, action="role.assign", obj=ra, before=None, after=snapshot(ra), node_id=node_id)
    return ra


@transaction.atomic
def role_revoke(*, user, assignment_id: int) -> None:
    ra = RoleAssignment.objects.select_for_update().filter(pk=assignment_id).first()
    if ra is None or not holds_at(user, Perm.STAFF_VIEW, ra.node_id):
        raise NotFound()
    _need(user, Perm.STAFF_EDIT, ra.node_id)
    before = snapshot(ra)
    audit_record(actor=user, action="role.revoke", obj=ra, before=before, after=None, node_id=ra.node_id)
    ra.delete()
