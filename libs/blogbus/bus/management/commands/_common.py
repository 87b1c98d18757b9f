"""Shared options of the bus_* commands."""

from __future__ import annotations

from django.conf import settings

from blogbus.bus.worker import DEFAULT_BROKER_URL


def broker_url(option: str | None) -> str:
    return option or getattr(settings, "BLOGBUS_BROKER_URL", DEFAULT_BROKER_URL)
