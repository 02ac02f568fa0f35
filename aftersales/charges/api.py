"""The charges API."""

from ninja import Router

router = Router(tags=["charges"])
