"""The tickets API. No ``from __future__ import annotations`` here (see aftersales.api.permissions)."""

from ninja import Router

router = Router(tags=["tickets"])
