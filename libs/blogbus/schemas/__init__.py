"""JSON Schemas of the event payloads (the `data` of each envelope type)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from blogbus.envelope import EVENT_TYPES


@cache
def load_schema(event_type: str) -> dict[str, Any]:
    if event_type not in EVENT_TYPES:
        raise KeyError(f"no schema for event type {event_type!r}")
    text = resources.files(__name__).joinpath(f"{event_type}.json").read_text("utf-8")
    return json.loads(text)
