"""Organisation (R-ORG): one tree of nodes, departments, employees, certifications, roles."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class NodeKind(models.TextChoices):
    HQ = "hq", _("总部")
    CENTRE = "centre", _("区域服务中心")
    OUTLET = "outlet", _("服务网点")


NODE_PARENT_KIND = {NodeKind.HQ: None, NodeKind.CENTRE: NodeKind.HQ, NodeKind.OUTLET: NodeKind.CENTRE}


class Node(models.Model):
    """A node of the one organisation tree. ``path`` is the materialised path of ids
    (``/1/4/17/``), so a subtree is one indexed prefix match."""

    kind = models.CharField(_("层级"), max_length=10, choices=NodeKind.choices)
    code = models.CharField(_("编码"), max_length=20, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children",
                               verbose_name=_("上级"))
    path = models.CharField(max_length=255, db_index=True, editable=False)
    province = models.CharField(_("省"), max_length=30, blank=True)
    city = models.CharField(_("市"), max_length=30, blank=True)
    district = models.CharField(_("区县"), max_length=30, blank=True)
    address = models.CharField(_("地址"), max_length=200, blank=True)
    lat = models.DecimalField(_("纬度"), max_digits=9, decimal_places=6, null=True, blank=True)
    lng = models.DecimalField(_("经度"), max_digits=9, decimal_places=6, null=True, blank=True)
    phone = models.CharField(_("电话"), max_length=20, blank=True)
    active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("组织节点")
        verbose_name_plural = _("组织节点")
        ordering = ["path"]
        indexes = [models.Index(fields=["path"], name="node_path_like_idx", opclasses=["varchar_pattern_ops"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="hq", parent__isnull=True) | Q(~Q(kind="hq"), parent__isnull=False),
                name="node_only_hq_is_root",
            ),
        ]

    def __str__(self):
        return self.name


class Coverage(models.Model):
    """A district an outlet serves; a district is served by one outlet."""

    outlet = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="coverage", verbose_name=_("网点"))
    province = models.CharField(_("省"), max_length=30)
    city = models.CharField(_("市"), max_length=30)
    district = models.CharField(_("区县"), max_length=30)

    class Meta:
        verbose_name = _("服务区域")
        verbose_name_plural = _("服务区域")
        constraints = [
            models.UniqueConstraint(fields=["province", "city", "district"], name="coverage_district_unique"),
        ]

    def __str__(self):
        return f"{self.province}{self.city}{self.district}"


class DepartmentKind(models.TextChoices):
    MANAGEMENT = "management", _("管理部")
    TECH_SUPPORT = "tech_support", _("技术支持部")
    CUSTOMER_SERVICE = "customer_service", _("客户服务部")
    SALES_LIAISON = "sales_liaison", _("市场销售联络部")
    TRAINING = "training", _("培训部")
    QUALITY = "quality", _("质量监督部")


class Department(models.Model):
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="departments", verbose_name=_("节点"))
    kind = models.CharField(_("类型"), max_length=20, choices=DepartmentKind.choices)
    name = models.CharField(_("名称"), max_length=100)

    class Meta:
        verbose_name = _("部门")
        verbose_name_plural = _("部门")
        constraints = [models.UniqueConstraint(fields=["node", "kind"], name="department_kind_per_node")]

    def __str__(self):
        return f"{self.node.name}·{self.name}"


class Grade(models.TextChoices):
    JUNIOR = "junior", _("初级")
    SENIOR = "senior", _("高级")


class Employee(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="employee",
                                verbose_name=_("用户"))
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="employees", verbose_name=_("所属节点"))
    department = models.ForeignKey(Department, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="employees", verbose_name=_("部门"))
    employee_no = models.CharField(_("工号"), max_length=20, unique=True)
    name = models.CharField(_("姓名"), max_length=50)
    phone = models.CharField(_("手机号"), max_length=20, blank=True)
    grade = models.CharField(_("级别"), max_length=10, choices=Grade.choices, default=Grade.JUNIOR)
    hire_date = models.DateField(_("入职日期"))
    probation_end = models.DateField(_("试用期结束"), null=True, blank=True)
    service_area = models.CharField(_("服务区域"), max_length=200, blank=True)
    skills = models.ManyToManyField("catalog.Category", blank=True, related_name="skilled_employees",
                                    verbose_name=_("技能（产品类别）"))
    active = models.BooleanField(_("在职"), default=True)

    class Meta:
        verbose_name = _("员工")
        verbose_name_plural = _("员工")
        indexes = [models.Index(fields=["node", "active"], name="employee_node_active_idx")]

    def __str__(self):
        return f"{self.name}（{self.employee_no}）"


class CertificationType(models.Model):
    code = models.CharField(_("编码"), max_length=30, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    validity_months = models.PositiveIntegerField(_("有效期（月）"), default=36)

    class Meta:
        verbose_name = _("证书类型")
        verbose_name_plural = _("证书类型")

    def __str__(self):
        return self.name


class Certification(models.Model):
    employee = models.ForeignKey(Employee, on_delete=models.CASCADE, related_name="certifications",
                                 verbose_name=_("员工"))
    type = models.ForeignKey(CertificationType, on_delete=models.PROTECT, related_name="+", verbose_name=_("类型"))
    number = models.CharField(_("证书编号"), max_length=50)
    issued_on = models.DateField(_("发证日期"))
    expires_on = models.DateField(_("有效期至"))

    class Meta:
        verbose_name = _("资格证书")
        verbose_name_plural = _("资格证书")
        indexes = [models.Index(fields=["expires_on"], name="cert_expires_idx")]
        constraints = [
            models.UniqueConstraint(fields=["type", "number"], name="cert_type_number_unique"),
            models.CheckConstraint(condition=Q(expires_on__gt=models.F("issued_on")), name="cert_expires_after_issue"),
        ]

    def __str__(self):
        return f"{self.type} {self.number}"


class RoleAssignment(models.Model):
    """A user holds ``role`` over ``node`` and its subtree. A person may hold several."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_assignments",
                             verbose_name=_("用户"))
    role = models.CharField(_("角色"), max_length=30)  # one of aftersales.org.roles.Role
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="role_assignments", verbose_name=_("节点"))

    class Meta:
        verbose_name = _("角色分配")
        verbose_name_plural = _("角色分配")
        constraints = [models.UniqueConstraint(fields=["user", "role", "node"], name="role_assignment_unique")]

    def __str__(self):
        return f"{self.user} {self.role} @ {self.node}"
