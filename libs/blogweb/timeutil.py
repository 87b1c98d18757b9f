"""Timestamps with millisecond precision.

MongoDB keeps milliseconds, and the contract renders exactly three fractional
digits, so every writer truncates at creation: a value read back from any
stage then compares equal.
"""

from datetime import UTC, datetime

from django.utils import timezone


def truncate_to_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def now_ms() -> datetime:
    return truncate_to_ms(timezone.now())


def format_rfc3339_ms(value: datetime) -> str:
    """2026-11-25T17:36:08.123Z, whatever the microseconds and the zone."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
