"""The current request's id, readable anywhere in the request's context
(logging, outgoing calls, events)."""

import re
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}")

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


def accept_or_generate(incoming: str | None) -> str:
    """Echo a client's id when it is sane (short, printable, no spaces), else
    make a new one: a client must not be able to inject into our logs."""
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return str(uuid.uuid4())
