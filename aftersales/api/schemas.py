"""Shared pieces of the API schemas: ids, bounded text, pagination, the error shape.

Every string input is bounded (the model's ``max_length``) and free of NUL characters, and
every id is a positive 64-bit integer, so that no bad input can reach the database and fail
there (a 500) instead of being reported (a 400 naming the field).
"""

from typing import Annotated

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from ninja import Field, Path, Query, Schema
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, create_model
from pydantic_core import PydanticCustomError

from aftersales.core import pagination
from aftersales.core.errors import ValidationFailed
from aftersales.core.pagination import MAX_LIMIT, Page
from aftersales.org.models import Node

MAX_ID = 2**63 - 1
DEFAULT_LIMIT = 50


def _no_nul(v: str) -> str:
    if "\x00" in v:
        raise PydanticCustomError("nul_char", "NUL characters are not allowed")
    return v


def Text(max_length: int):  # noqa: N802 - a type factory
    """A string of at most ``max_length`` characters, without NUL."""
    return Annotated[str, StringConstraints(max_length=max_length), AfterValidator(_no_nul)]


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Lat = Annotated[float, Field(ge=-90, le=90)]
Lng = Annotated[float, Field(ge=-180, le=180)]
# Ids in the URL and in filters (a foreign-key lookup with a too large int fails in the database).
PathId = Annotated[int, Path(..., ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(None, ge=1, le=MAX_ID)]

# Query parameters of every list endpoint.
Limit = Annotated[int, Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="每页条数（1–200）")]
Cursor = Annotated[str | None, Query(None, max_length=500, description="上一页返回的 next_cursor")]


def page_of(item: type[Schema]) -> type[Schema]:
    """``{items: [item], next_cursor}``: one page of a keyset-paginated list."""
    return create_model(
        f"{item.__name__}Page", __base__=Schema, items=(list[item], ...), next_cursor=(str | None, None),
    )


class In(BaseModel):
    """Base of every request body: a JSON object with known fields only (a plain pydantic
    model: ninja's ``Schema`` would read attributes of any value, so a string or a list sent
    for an object would surface as "missing" fields instead of "not an object")."""

    model_config = ConfigDict(extra="forbid")


class ErrorOut(Schema):
    code: str
    message: str
    errors: dict[str, list[str]] = {}


class NodeRef(Schema):
    id: int
    code: str
    name: str


BAD_CURSOR = _("分页游标无效，请从第一页重新开始。")


def _contains_nul(v) -> bool:
    if isinstance(v, str):
        return "\x00" in v
    if isinstance(v, list | tuple):
        return any(_contains_nul(x) for x in v)
    if isinstance(v, dict):
        return any(_contains_nul(x) for x in v.values())
    return False


def paginate(qs, *, ordering: list[str], cursor: str | None, limit: int) -> Page:
    """``core.pagination.keyset_page``, with a forged cursor (values of the wrong type for the
    ordering fields, NUL characters) reported on ``cursor`` instead of failing in the database."""
    if cursor:
        values = pagination._decode(cursor, len(ordering))  # raises ValidationFailed on "cursor"
        if _contains_nul(values) or any(v is None for v in values):
            raise ValidationFailed({"cursor": [BAD_CURSOR]})
    try:
        return pagination.keyset_page(qs, ordering=ordering, cursor=cursor, limit=limit)
    except (ValueError, TypeError, DjangoValidationError):
        if not cursor:
            raise
        raise ValidationFailed({"cursor": [BAD_CURSOR]}) from None


def subtree_path(node_id: int) -> str:
    """The materialised path of node ``node_id``, for a subtree filter (400 on ``node_id`` if unknown)."""
    path = Node.objects.filter(pk=node_id).values_list("path", flat=True).first()
    if path is None:
        raise ValidationFailed({"node_id": [_("节点不存在。")]})
    return path
