"""The dev router's parallel run: ``python -m gateway.devrouter --shadow``.

A shadowed read (a shadow entry of the stage's table, ``routes.parallel_run``)
goes to both its primary (the old owner, whose answer the client gets) and its
shadow (the new owner), in parallel. The client gets the primary's answer at
once; then the two answers are compared on status, media type and body (JSON
parsed, so key order and whitespace do not count; headers such as
X-Served-By, X-Request-ID and Date are ignored). Each mismatch is logged as
one JSON line; an unreachable shadow counts as an error, never as a failure
for the client. The counts and the last mismatches are at
``GET /_gateway/shadow``, which exists only in shadow mode: without
``--shadow`` it is a JSON 404 from the gateway, like any unknown path, at both
gateways (nginx, which keeps no counts, says there where they are).

The dev router holds one ``ParallelRun`` and hands it each shadowed read
(``ParallelRun.proxy``). nginx's side of the parallel run is the ``mirror`` of
gateway/render.py, whose logs gateway/shadowlog.py compares.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from . import routes as rt

if TYPE_CHECKING:
    from .devrouter import Handler

logger = logging.getLogger("gateway.devrouter")  # the dev router's log

SHADOW_BODY_LIMIT = 10 * 1024 * 1024
# The gateway's own page of the parallel run; answered by the gateway at every
# stage, never passed on to a default upstream.
SHADOW_PATH = "/_gateway/shadow"
SHADOW_METHODS = frozenset({"GET", "HEAD"})

# (status, reason, headers, body) of an upstream's answer, read whole.
Answer = tuple[int, str, list[tuple[str, str]], bytes]


class ShadowStats:
    """Counts of the parallel run, shared by the handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.matches = 0
        self.mismatches = 0
        self.errors = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=20)

    def record(self, outcome: str, entry: dict[str, Any] | None = None) -> None:
        with self._lock:
            if outcome == "match":
                self.matches += 1
            elif outcome == "mismatch":
                self.mismatches += 1
                if entry:
                    self.recent.append(entry)
            else:
                self.errors += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "matches": self.matches,
                "mismatches": self.mismatches,
                "errors": self.errors,
                "recent_mismatches": list(self.recent),
            }


def _media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def _comparable(status: int, content_type: str | None, body: bytes) -> tuple[Any, ...]:
    if _media_type(content_type) == "application/json" or body[:1] in (b"{", b"["):
        try:
            return (status, _media_type(content_type), json.loads(body or b"null"))
        except ValueError:
            pass
    return (status, _media_type(content_type), body)


def _fetch(
    handler: Handler, upstream: str, body: bytes | None, extra: list[tuple[str, str]] | None = None
) -> Answer:
    """The handler's request sent to ``upstream``, its answer read whole;
    raise ConnectionError or TimeoutError."""
    conn, resp = handler.open_upstream(upstream, body, extra)
    try:
        data = resp.read(SHADOW_BODY_LIMIT + 1)
        if len(data) > SHADOW_BODY_LIMIT:
            raise ConnectionError("response too large to compare")
        return resp.status, resp.reason, handler.response_headers(resp), data
    except OSError as exc:
        raise ConnectionError(str(exc)) from exc
    finally:
        conn.close()


class ParallelRun:
    """The parallel run of one dev router: its counts, and the proxying of the
    shadowed reads its handlers pass on."""

    def __init__(self) -> None:
        self.stats = ShadowStats()

    def counts(self, table: rt.Table) -> dict[str, Any]:
        """What ``GET /_gateway/shadow`` answers."""
        snap = self.stats.snapshot()
        snap.update(stage=table.stage.number, shadow_mode=table.shadow_mode)
        return snap

    def proxy(self, handler: Handler, primary: str, shadow: rt.Shadow, body: bytes | None) -> None:
        """Answer ``handler``'s request from ``primary``, send a copy to the
        shadow, and compare the two answers once both are in."""
        result: dict[str, Any] = {}
        base = {
            "event": "shadow_mismatch",
            "request_id": handler.request_id,
            "method": handler.command,
            "path": handler.path,
            "route": shadow.name,
            "primary": primary,
            "shadow": shadow.shadow,
        }

        def run_shadow() -> None:
            started = time.monotonic()
            try:
                result["answer"] = _fetch(handler, shadow.shadow, body, [("X-Gateway-Shadow", "1")])
            except (ConnectionError, TimeoutError) as exc:
                result["error"] = f"{type(exc).__name__}: {exc}"
            result["ms"] = round((time.monotonic() - started) * 1000, 1)

        worker = threading.Thread(target=run_shadow, daemon=True)
        worker.start()
        wait = handler.server.connect_timeout + handler.server.read_timeout + 1
        try:
            status, reason, headers, data = _fetch(handler, primary, body)
        except (ConnectionError, TimeoutError) as exc:
            handler.upstream_error(exc)
            self._compare_later(worker, wait, result, base, None)
            return
        handler.send_response_only(status, reason)
        for key, value in headers:
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)
        answer = (status, {k.lower(): v for k, v in headers}.get("content-type"), data)
        self._compare_later(worker, wait, result, base, answer)

    def _compare_later(self, *args: Any) -> None:
        threading.Thread(target=self._compare, args=args, daemon=True).start()

    def _compare(
        self,
        worker: threading.Thread,
        wait: float,
        result: dict[str, Any],
        base: dict[str, Any],
        answer: tuple[int, str | None, bytes] | None,
    ) -> None:
        worker.join(wait)
        if answer is None or "answer" not in result:
            self.stats.record("error")
            entry = {**base, "event": "shadow_error", "error": result.get("error", "primary")}
            logger.warning(json.dumps(entry))
            return
        s_status, _, s_headers, s_data = result["answer"]
        s_type = {k.lower(): v for k, v in s_headers}.get("content-type")
        mine = _comparable(*answer)
        theirs = _comparable(s_status, s_type, s_data)
        if mine == theirs:
            self.stats.record("match")
            return
        entry = {
            **base,
            "primary_status": answer[0],
            "shadow_status": s_status,
            "primary_body": answer[2][:500].decode("utf-8", "replace"),
            "shadow_body": s_data[:500].decode("utf-8", "replace"),
        }
        self.stats.record("mismatch", entry)
        logger.warning(json.dumps(entry))
