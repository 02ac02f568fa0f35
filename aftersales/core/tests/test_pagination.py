"""Keyset pagination: complete, stable pages; forged cursors are a 4xx field error."""

import base64
import json

import pytest

from aftersales.core.errors import ValidationFailed
from aftersales.core.pagination import keyset_page
from aftersales.org.models import Node


def _cursor(values):
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def test_pages_cover_every_row_once(world):
    seen, cursor = [], None
    while True:
        page = keyset_page(Node.objects.all(), ordering=["name", "id"], cursor=cursor, limit=2)
        seen += [n.pk for n in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert sorted(seen) == sorted(Node.objects.values_list("id", flat=True)) and len(seen) == len(set(seen))
    desc = keyset_page(Node.objects.all(), ordering=["-id"], cursor=None, limit=3)
    assert [n.pk for n in desc.items] == sorted(Node.objects.values_list("id", flat=True), reverse=True)[:3]


@pytest.mark.parametrize("cursor", ["%%%", _cursor(["abc"]), _cursor([1, 2]), _cursor(["a\x00b"]), _cursor({"x": 1})])
def test_forged_cursor_is_a_field_error(world, cursor):
    with pytest.raises(ValidationFailed) as e:
        list(keyset_page(Node.objects.all(), ordering=["id"], cursor=cursor, limit=2).items)
    assert set(e.value.errors) == {"cursor"}


@pytest.mark.parametrize("limit", [0, 201])
def test_limit_out_of_range(world, limit):
    with pytest.raises(ValidationFailed) as e:
        keyset_page(Node.objects.all(), ordering=["id"], cursor=None, limit=limit)
    assert set(e.value.errors) == {"limit"}
