"""Time standards and the working calendar over the API. No ``from __future__ import annotations``."""

from ninja import Router

router = Router(tags=["sla"])
