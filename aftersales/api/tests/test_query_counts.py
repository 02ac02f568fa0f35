"""Every list costs a fixed number of queries, whatever the page size (and the page)."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aftersales.catalog.models import Category, MainPart, ProductModel, WarrantyPolicy
from aftersales.conftest import make_node
from aftersales.customers.models import Address, Customer, Tag, Unit, UnitRepair
from aftersales.org.models import Certification, CertificationType, Employee, NodeKind

from .conftest import ApiClient

pytestmark = pytest.mark.django_db

N = 60
MEASURED: dict[str, int] = {}


@pytest.fixture
def many(world):
    tags = [Tag.objects.create(name=f"T{i}") for i in range(3)]
    customers = Customer.objects.bulk_create(
        [Customer(node=world.pudong if i % 2 else world.tianhe, name=f"客户{i:03}", phone=f"1360000{i:04}")
         for i in range(2 * N)])
    Address.objects.bulk_create([Address(customer=c, province="上海市", city="上海市", district="浦东新区",
                                         street=f"测试路{c.pk}号", is_default=True) for c in customers])
    Customer.tags.through.objects.bulk_create(
        [Customer.tags.through(customer=c, tag=t) for c in customers for t in tags[: 1 + c.pk % 3]])

    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"emp{i}") for i in range(N)])
    ctype = CertificationType.objects.create(code="ELEC", name="电工证")
    emps = Employee.objects.bulk_create([
        Employee(user=u, node=world.pudong, employee_no=f"E{i:04}", name=f"员工{i:03}", hire_date=dt.date(2020, 1, 1))
        for i, u in enumerate(users)])
    Employee.skills.through.objects.bulk_create(
        [Employee.skills.through(employee=e, category=c) for e in emps for c in (world.ac, world.wm)])
    soon = timezone.localdate() + dt.timedelta(days=5)
    Certification.objects.bulk_create([
        Certification(employee=e, type=ctype, number=f"C{e.pk}", issued_on=dt.date(2022, 1, 1), expires_on=soon)
        for e in emps])

    cats = Category.objects.bulk_create([Category(code=f"C{i:03}", name=f"类别{i}") for i in range(N)])
    WarrantyPolicy.objects.bulk_create([WarrantyPolicy(category=c) for c in cats])
    models = ProductModel.objects.bulk_create(
        [ProductModel(category=world.ac, code=f"M-{i:04}", name=f"型号{i}") for i in range(N)])
    MainPart.objects.bulk_create([MainPart(model=m, code=f"P{j}", name=f"部件{j}") for m in models for j in range(3)])

    for i in range(N):
        make_node(NodeKind.OUTLET, f"O-{i:03}", f"网点{i}", world.east)

    for i in range(10):
        u = Unit.objects.create(customer=world.c_pudong, model=world.ac_model, serial=f"ACX{i:09}",
                                purchase_date=dt.date(2024, 1, 1), invoice_no="INV")
        UnitRepair.objects.create(unit=u, started_on=dt.date(2024, 3, 1), finished_on=dt.date(2024, 3, 4),
                                  fault_key="COMP")
    return world


def queries(c, path, params):
    with CaptureQueriesContext(connection) as ctx:
        r = c.get(path, params)
    assert r.status_code == 200, r.content
    return len(ctx), r.json()


def assert_fixed(c, path, django_assert_num_queries, **params):
    small, page = queries(c, path, {**params, "limit": 5})
    assert len(page["items"]) == 5 and page["next_cursor"]
    with django_assert_num_queries(small):
        big = c.get(path, {**params, "limit": 50}).json()
    assert len(big["items"]) == 50 and big["next_cursor"]
    with django_assert_num_queries(small):
        nxt = c.get(path, {**params, "limit": 50, "cursor": big["next_cursor"]}).json()
    assert nxt["items"] and not {i["id"] for i in nxt["items"]} & {i["id"] for i in big["items"]}
    MEASURED[f"{path} {params} as {c.user.username}"] = small
    return small


@pytest.mark.parametrize("who", ["pudong_agent", "hq_manager", "quality", "admin"])
def test_customers(many, who, django_assert_num_queries):
    assert_fixed(ApiClient(getattr(many, who)), "/customers", django_assert_num_queries)


def test_customers_filtered(many, django_assert_num_queries):
    assert_fixed(ApiClient(many.hq_manager), "/customers", django_assert_num_queries, node_id=many.east.id,
                 tag="T0", q="客户")


def test_employees(many, django_assert_num_queries):
    assert_fixed(ApiClient(many.hq_manager), "/org/employees", django_assert_num_queries)
    assert_fixed(ApiClient(many.east_manager), "/org/employees", django_assert_num_queries, node_id=many.pudong.id,
                 skill="AC", active="true")


def test_product_models(many, django_assert_num_queries):
    assert_fixed(ApiClient(many.trainer), "/catalog/models", django_assert_num_queries)
    assert_fixed(ApiClient(many.customer_user), "/catalog/models", django_assert_num_queries, category="AC")


def test_categories(many, django_assert_num_queries):
    assert_fixed(ApiClient(many.trainer), "/catalog/categories", django_assert_num_queries)


def test_nodes(many, django_assert_num_queries):
    assert_fixed(ApiClient(many.hq_manager), "/org/nodes", django_assert_num_queries)
    assert_fixed(ApiClient(many.east_manager), "/org/nodes", django_assert_num_queries, kind="outlet")


def test_expiring_certifications(many, django_assert_num_queries):
    assert_fixed(ApiClient(many.east_manager), "/org/certifications/expiring", django_assert_num_queries)


def test_customer_detail_is_fixed_in_units(many, django_assert_num_queries):
    c = ApiClient(many.hq_manager)
    n, body = queries(c, f"/customers/{many.c_tianhe.id}", {})
    assert len(body["units"]) == 1
    with django_assert_num_queries(n):
        body = c.get(f"/customers/{many.c_pudong.id}").json()
    assert len(body["units"]) == 11 and body["units"][-1]["warranty"]["extension_days"] == 3
    MEASURED["/customers/{id}"] = n


def test_zz_report_measured():
    """Not a check: prints what the tests above measured (run with -s)."""
    for k, v in sorted(MEASURED.items()):
        print(f"queries {v:3}  {k}")
