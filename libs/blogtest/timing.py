"""Every deadline of the suites, from one place.

Deadlines are written for this project's machine and multiplied by
``TEST_TIME_SCALE`` (default 1): a slow or busy machine sets one number,
e.g. ``TEST_TIME_SCALE=3 make test``, instead of editing tests. Eventual
consistency is awaited by polling with a deadline, never by sleeping a fixed
time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def time_scale() -> float:
    value = float(os.environ.get("TEST_TIME_SCALE", "1") or "1")
    if value <= 0:
        raise ValueError(f"TEST_TIME_SCALE must be a positive number, not {value!r}")
    return value


def scaled(seconds: float) -> float:
    """``seconds`` on this machine: times ``TEST_TIME_SCALE``."""
    return seconds * time_scale()


class TimedOut(AssertionError):
    """What was awaited did not happen before its deadline."""


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout_s: float = 20.0,
    what: str = "the condition",
    interval_s: float = 0.05,
) -> T:
    """Calls ``predicate`` until it returns something true, and returns that;
    raises TimedOut (a test failure) naming ``what`` after ``timeout_s``
    (scaled)."""
    limit = scaled(timeout_s)
    deadline = time.monotonic() + limit
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimedOut(f"timed out after {limit:g} s waiting for {what}")
        time.sleep(interval_s)


def poll(predicate: Callable[[], T], *, timeout_s: float, interval_s: float = 0.25) -> T:
    """Like wait_until, but returns the last value instead of failing: for a
    test that asserts on the value itself."""
    deadline = time.monotonic() + scaled(timeout_s)
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    return predicate()
