"""The clients of `make compare` outside wrk and httperf: the steady load of
the fault drills, and the POST that waits for a new post to be known.

The drills need what httperf cannot give: every request's status and latency
second by second, and the ids the 201s returned (to look for them
afterwards). So a small pool of threads sends requests due at a fixed rate,
one connection each (`Connection: close`, as httperf), whatever the replies
do: a request is due at its time even when the earlier ones hang, and its
latency is counted from when it was due, so a full pool shows as latency,
not as fewer requests (no coordinated omission). The pool is bounded
(``workers``); requests still waiting for a thread when the drill ends are
not sent, and recorded as failures ("not sent") when they were due, with
the wait they had so far.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
from common import fail


@dataclass(frozen=True)
class Call:
    endpoint: str
    method: str
    path: str
    body: dict | None = None


def post_json(session, url: str, body: dict, deadline_s: float = 30) -> dict:
    """POSTs until 201 (a new post's comments wait for the comments service to know it)."""
    deadline = time.monotonic() + deadline_s
    while True:
        response = session.post(url, json=body, timeout=10)
        if response.status_code == 201:
            return response.json()
        if time.monotonic() > deadline:
            fail(f"POST {url} answered {response.status_code}: {response.text[:300]}")
        time.sleep(0.1)


class SteadyLoad:
    """``calls`` in turn, ``rate`` requests/s, against ``url``, from ``start(t0)`` to ``stop()``."""

    def __init__(
        self,
        url: str,
        calls: list[Call],
        rate: float,
        *,
        label: str,
        workers: int = 32,
        timeout_s: float = 5.0,
    ) -> None:
        self.url, self.calls, self.rate, self.label = url, calls, rate, label
        self.timeout_s = timeout_s
        self.records: list[dict] = []
        self.scheduled = 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=label)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def start(self, t0: float) -> None:
        self._t0 = t0
        self._thread = threading.Thread(target=self._schedule, args=(t0,), daemon=True)
        self._thread.start()

    def _schedule(self, t0: float) -> None:
        while not self._stop.is_set():
            due = t0 + self.scheduled / self.rate
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            call = self.calls[self.scheduled % len(self.calls)]
            try:
                self._pool.submit(self._send, call, t0, due, self.scheduled)
            except RuntimeError:  # the pool was shut down meanwhile
                return
            self.scheduled += 1

    def _send(self, call: Call, t0: float, due: float, n: int) -> None:
        record: dict = {"n": n, "at_s": round(due - t0, 4), "endpoint": call.endpoint}
        record["status"] = None
        try:
            response = requests.request(
                call.method,
                self.url + call.path,
                json=call.body,
                headers={"X-Request-ID": f"{self.label}-{n}", "Connection": "close"},
                timeout=self.timeout_s,
            )
            record["status"] = response.status_code
            if response.status_code == 201:
                record["id"] = response.json().get("id")
            elif response.status_code == 200 and call.endpoint == "post detail":
                record["comment_count"] = response.json().get("comment_count")
        except (requests.RequestException, ValueError) as exc:
            record["error"] = type(exc).__name__
        record["latency_ms"] = round((time.monotonic() - due) * 1000, 2)
        self.records.append(record)  # list.append is atomic: no lock needed

    def stop(self) -> int:
        """Stops sending; waits for the requests in flight (each bounded by
        ``timeout_s``), drops those still waiting for a thread and records
        them as not sent. Returns how many were dropped."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        stopped = time.monotonic()
        self._pool.shutdown(wait=True, cancel_futures=True)
        sent = {record["n"] for record in self.records}
        dropped = [n for n in range(self.scheduled) if n not in sent]
        for n in dropped:
            due = self._t0 + n / self.rate
            self.records.append(
                {
                    "n": n,
                    "at_s": round(due - self._t0, 4),
                    "endpoint": self.calls[n % len(self.calls)].endpoint,
                    "status": None,
                    "error": "not sent",
                    "latency_ms": round(max(0.0, stopped - due) * 1000, 2),
                }
            )
        return len(dropped)
