"""Handlers run by the worker processes of the bus tests, steered through files.

`BUS_TEST_DIR` is the test's folder and `BUS_TEST_SERVICE` the worker's
service. Every call appends the event id to `calls-<service>`. While
`fail-<service>` exists the handler raises; while `block-<service>` exists it
writes its effect, touches `entered-<service>` and waits (at most 60 s) inside
the transaction, so a test can kill the worker there.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.contrib.contenttypes.models import ContentType

from blogbus.envelope import Envelope

EFFECT_APP_LABEL = "bus_tests"


def effect_model(service: str, event_id: str) -> str:
    return f"{service}|{event_id}"


def apply(envelope: Envelope) -> None:
    folder = Path(os.environ["BUS_TEST_DIR"])
    service = os.environ["BUS_TEST_SERVICE"]
    with open(folder / f"calls-{service}", "a", encoding="utf-8") as calls:
        calls.write(envelope.id + "\n")
    if (folder / f"fail-{service}").exists():
        raise RuntimeError("poison: this handler is failing on purpose")
    # Stands in for the service's own write (a replica row, a counter).
    ContentType.objects.create(app_label=EFFECT_APP_LABEL, model=effect_model(service, envelope.id))
    block = folder / f"block-{service}"
    if block.exists():
        (folder / f"entered-{service}").write_text(str(os.getpid()), encoding="utf-8")
        deadline = time.monotonic() + 60
        while block.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
