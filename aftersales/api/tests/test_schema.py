"""The OpenAPI schema loads, and every operation in it declares a permission or is public."""

import pytest

from aftersales.api.api import api
from aftersales.api.permissions import AUTHENTICATED, PUBLIC, PUBLIC_PATHS, REGISTRY
from aftersales.org.roles import Perm

from .conftest import ApiClient

pytestmark = pytest.mark.django_db

METHODS = {"get", "post", "put", "patch", "delete"}
# The only operations anybody may call (besides the schema and its viewer, PUBLIC_PATHS).
EXPECTED_PUBLIC = {"aftersales_api_api_token_create", "aftersales_feedback_api_survey_get",
                   "aftersales_feedback_api_survey_answer", "aftersales_charges_api_quote_public_get",
                   "aftersales_charges_api_quote_public_answer"}


def operations(schema):
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def test_openapi_schema_and_docs_are_served_without_login(world):
    for path in PUBLIC_PATHS:
        assert ApiClient().get(path).status_code == 200, path
    schema = ApiClient().get("/api/openapi.json").json()
    assert schema["info"]["title"] == "AfterSales API"
    assert "/api/customers" in schema["paths"]


def test_every_operation_declares_a_permission(world):
    schema = ApiClient().get("/api/openapi.json").json()
    ops = list(operations(schema))
    assert len(ops) >= 30
    valid = set(Perm.values) | {AUTHENTICATED, PUBLIC}
    public = set()
    for path, method, op in ops:
        key = op["operationId"]
        assert key in REGISTRY, f"{method.upper()} {path} ({key}) declares no permission"
        assert op.get("x-permission") == REGISTRY[key].perm, f"{method.upper()} {path}"
        assert REGISTRY[key].perm in valid, f"{method.upper()} {path}: unknown permission {REGISTRY[key].perm}"
        if REGISTRY[key].perm == PUBLIC:
            public.add(key)
        else:
            assert op.get("security"), f"{method.upper()} {path} needs authentication"
    assert public == EXPECTED_PUBLIC


def test_catalog_edits_are_declared_at_headquarters():
    schema = api.get_openapi_schema(path_prefix="/api/")
    for path, method, op in operations(schema):
        if op["x-permission"] == Perm.CATALOG_EDIT:
            assert op.get("x-permission-at-hq") is True, f"{method.upper()} {path}"


def test_unknown_api_url_is_a_json_404(world):
    for r in (ApiClient().get("/api/no/such/thing"), ApiClient(world.admin).post("/api/customers/1/nope")):
        assert r.status_code == 404
        assert r.json()["code"] == "not_found"


def test_permission_is_checked_before_the_input(world):
    """No right, no 400 describing the input: 403 whatever is sent."""
    c = ApiClient(world.trainer)
    for body in ({}, {"name": 5}, "not json"):
        r = c.post("/customers", body)
        assert r.status_code == 403, (body, r.content)
        assert r.json()["code"] == "forbidden"
    assert c.get("/customers/search").status_code == 403  # the required q is missing too
    assert ApiClient().post("/customers", {}).status_code == 401
