"""Roles and their permissions, declared in code (R-ORG-3, least privilege).

A role is held over a node and its subtree (``RoleAssignment``). A permission is granted by
a role; *where* it applies is the union of the subtrees of the nodes at which the user holds
a role granting it. Pages and API endpoints declare the permission they need; selectors
turn (user, permission) into a node scope once (``aftersales.org.scope``).
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from .models import NodeKind


class Role(models.TextChoices):
    ADMIN = "admin", _("系统管理员")
    HQ_MANAGER = "hq_manager", _("总部经理")
    CENTRE_MANAGER = "centre_manager", _("服务中心经理")
    OUTLET_MANAGER = "outlet_manager", _("网点经理")
    AGENT = "agent", _("客服专员")
    DISPATCHER = "dispatcher", _("服务协调员")
    TECHNICIAN = "technician", _("技术支持工程师")
    QUALITY = "quality", _("质量监督员")
    TRAINER = "trainer", _("培训师")
    CUSTOMER = "customer", _("客户")


class Perm(models.TextChoices):
    ORG_VIEW = "org.view", _("查看组织")
    ORG_EDIT = "org.edit", _("维护组织")
    STAFF_VIEW = "staff.view", _("查看员工")
    STAFF_EDIT = "staff.edit", _("维护员工")
    CUSTOMER_VIEW = "customer.view", _("查看客户")
    CUSTOMER_EDIT = "customer.edit", _("维护客户")
    CUSTOMER_PII = "customer.pii", _("查看客户完整电话与地址")
    UNIT_EDIT = "unit.edit", _("登记产品")
    CATALOG_VIEW = "catalog.view", _("查看产品与三包政策")
    CATALOG_EDIT = "catalog.edit", _("维护产品与三包政策")
    IMPORT_RUN = "import.run", _("导入客户与产品")
    AUDIT_VIEW = "audit.view", _("查看审计日志")
    ORDER_VIEW = "order.view", _("查看工单")
    ORDER_CREATE = "order.create", _("受理工单")
    ORDER_HANDLE = "order.handle", _("处理工单（分类、转派、升级、取消、回访、关闭）")
    ORDER_DISPATCH = "order.dispatch", _("派工")
    ORDER_WORK = "order.work", _("上门服务（技师）")
    SLA_MANAGE = "sla.manage", _("维护时限标准与工作日历")
    NOTIFY_VIEW = "notify.view", _("查看通知发件箱")
    PARTS_VIEW = "parts.view", _("查看配件库存")
    PARTS_MANAGE = "parts.manage", _("管理配件库存（入库、调拨、盘点、报废、补货）")
    CHARGE_HANDLE = "charge.handle", _("报价、收款与退款")
    ASSET_VIEW = "asset.view", _("查看备用机与工具仪器")
    ASSET_MANAGE = "asset.manage", _("管理备用机与工具仪器（借出、归还、校准）")
    QUALITY_VIEW = "quality.view", _("查看质量指标、满意度分析、改进措施与质量报告")
    QUALITY_MANAGE = "quality.manage", _("维护指标目标、销售数据与服务规范，发起和验证改进措施")
    APPRAISAL_REVIEW = "appraisal.review", _("评审下属的绩效考核（上级、部门、公司评价）")
    APPRAISAL_MANAGE = "appraisal.manage", _("维护考核方案，开启、校准、锁定和发布考核周期")
    TRAINING_VIEW = "training.view", _("查看培训计划、培训记录与证书")
    TRAINING_MANAGE = "training.manage", _("维护课程与培训场次，记录出勤与考试成绩")


P = Perm
_ALL = set(Perm)
_READ_CUSTOMERS = {P.ORG_VIEW, P.CUSTOMER_VIEW, P.CATALOG_VIEW}
_MANAGE_ORDERS = {P.ORDER_VIEW, P.ORDER_HANDLE, P.ORDER_DISPATCH, P.NOTIFY_VIEW}
# Managers run the stock, the charges and the loaner pool and tool register of their subtree.
_MANAGE_THINGS = {P.PARTS_VIEW, P.PARTS_MANAGE, P.CHARGE_HANDLE, P.ASSET_VIEW, P.ASSET_MANAGE}
# Managers and quality supervisors run the service by its figures (R-Q).
_QUALITY = {P.QUALITY_VIEW, P.QUALITY_MANAGE}
# Managers appraise their people and see their training (R-PERF, R-TRN).
_PEOPLE = {P.APPRAISAL_REVIEW, P.TRAINING_VIEW}

ROLE_PERMS: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset(_ALL),
    # Managers run the service by figures: they see customers, but masked.
    Role.HQ_MANAGER: frozenset(_READ_CUSTOMERS | {P.STAFF_VIEW, P.STAFF_EDIT, P.ORG_EDIT, P.AUDIT_VIEW, P.CATALOG_EDIT,
                                                   P.SLA_MANAGE} | _MANAGE_ORDERS | _MANAGE_THINGS | _QUALITY
                                                  | _PEOPLE | {P.APPRAISAL_MANAGE, P.TRAINING_MANAGE}),
    Role.CENTRE_MANAGER: frozenset(_READ_CUSTOMERS | {P.STAFF_VIEW, P.STAFF_EDIT, P.AUDIT_VIEW} | _MANAGE_ORDERS
                                   | _MANAGE_THINGS | _QUALITY | _PEOPLE | {P.APPRAISAL_MANAGE}),
    # The outlet manager deals with its customers directly and may need to call them.
    Role.OUTLET_MANAGER: frozenset(_READ_CUSTOMERS | {P.STAFF_VIEW, P.STAFF_EDIT, P.CUSTOMER_EDIT, P.CUSTOMER_PII,
                                                      P.UNIT_EDIT, P.ORDER_CREATE, P.QUALITY_VIEW}
                                   | _MANAGE_ORDERS | _MANAGE_THINGS | _PEOPLE),
    # The agent takes the call: finds, creates and corrects customers and their units, records
    # the order and stays its owner (首问负责制), calls the customer back and closes it; tells
    # the customer whether a part is there, what the repair costs, and takes the payment.
    Role.AGENT: frozenset(_READ_CUSTOMERS | {P.CUSTOMER_EDIT, P.CUSTOMER_PII, P.UNIT_EDIT, P.IMPORT_RUN,
                                             P.ORDER_VIEW, P.ORDER_CREATE, P.ORDER_HANDLE, P.NOTIFY_VIEW,
                                             P.PARTS_VIEW, P.CHARGE_HANDLE}),
    # The dispatcher and the technician must reach the customer and the address.
    Role.DISPATCHER: frozenset(_READ_CUSTOMERS | {P.CUSTOMER_PII, P.STAFF_VIEW, P.ORDER_VIEW, P.ORDER_DISPATCH,
                                                  P.NOTIFY_VIEW, P.PARTS_VIEW, P.ASSET_VIEW}),
    # The technician works the orders assigned to them (selectors limit order.work to those): asks
    # for parts, quotes and takes payment on them; sees the outlet's stock, their van and tools.
    Role.TECHNICIAN: frozenset(_READ_CUSTOMERS | {P.CUSTOMER_PII, P.UNIT_EDIT, P.ORDER_WORK, P.PARTS_VIEW,
                                                  P.ASSET_VIEW}),
    # Quality and training look at work and people, not at personal data; quality keeps the
    # instruments' calibration.
    Role.QUALITY: frozenset(_READ_CUSTOMERS | {P.STAFF_VIEW, P.AUDIT_VIEW, P.ORDER_VIEW, P.PARTS_VIEW, P.ASSET_VIEW,
                                               P.ASSET_MANAGE} | _QUALITY | {P.TRAINING_VIEW}),
    Role.TRAINER: frozenset({P.ORG_VIEW, P.STAFF_VIEW, P.CATALOG_VIEW, P.TRAINING_VIEW, P.TRAINING_MANAGE}),
    # The customer's rights are over their own file only (see scope.customer_queryset).
    # They may also report a fault of their own unit (channel web/app).
    Role.CUSTOMER: frozenset({P.CATALOG_VIEW}),
}

# The node level each role is held at: a centre manager over a centre, and so on.
ROLE_NODE_KINDS: dict[str, set[str]] = {
    Role.ADMIN: {NodeKind.HQ},
    Role.HQ_MANAGER: {NodeKind.HQ},
    Role.CENTRE_MANAGER: {NodeKind.CENTRE},
    Role.OUTLET_MANAGER: {NodeKind.OUTLET},
    Role.AGENT: {NodeKind.HQ, NodeKind.CENTRE, NodeKind.OUTLET},
    Role.DISPATCHER: {NodeKind.CENTRE, NodeKind.OUTLET},
    Role.TECHNICIAN: {NodeKind.OUTLET},
    Role.QUALITY: {NodeKind.HQ, NodeKind.CENTRE},
    Role.TRAINER: {NodeKind.HQ, NodeKind.CENTRE},
    Role.CUSTOMER: {NodeKind.OUTLET},
}


def roles_with(perm: str) -> list[str]:
    return [r for r, perms in ROLE_PERMS.items() if perm in perms]
