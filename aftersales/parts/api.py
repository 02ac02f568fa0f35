"""The parts API."""

from ninja import Router

router = Router(tags=["parts"])
