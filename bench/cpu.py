"""CPU time from /proc: what a group of processes used over a measured run
(gunicorn's workers, the PostgreSQL backends serving them), and how busy the
machine is while our server idles."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str] | None:
    try:
        # The command name may contain spaces and parentheses: split after it.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = _proc_stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


def child_pids(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields and int(fields[1]) == parent:
                children.append(int(entry.name))
    return children


def backend_pids(server_url: str, database: str) -> list[int]:
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = %s AND backend_type = 'client backend'",
            (database,),
        ).fetchall()
    return [pid for (pid,) in rows]


def _ticks() -> tuple[int, int] | None:
    """All cores' (total, idle) ticks so far, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values[:8]), idle


def machine_busy_share(interval_s: float = 1.0) -> float | None:
    """Share of all cores' time spent busy over ``interval_s``: with our server
    idle, that is what others are using."""
    first = _ticks()
    time.sleep(interval_s)
    second = _ticks()
    if not first or not second or second[0] == first[0]:
        return None
    return 1 - (second[1] - first[1]) / (second[0] - first[0])


class CpuMeter:
    """CPU seconds used by the children of ``workers_parent`` (gunicorn's
    master: its workers) and the database's backends between start() and
    stop(). PostgreSQL backends are only visible when the server runs on this
    machine (and readable to us)."""

    def __init__(self, workers_parent: int, server_url: str, database: str) -> None:
        self.workers_parent, self.server_url, self.database = workers_parent, server_url, database

    def _sample(self) -> dict[str, float]:
        backends = backend_pids(self.server_url, self.database)
        sample = {"gunicorn_workers": process_cpu_s(child_pids(self.workers_parent))}
        if backends and all(_proc_stat(pid) for pid in backends):
            sample["postgresql"] = process_cpu_s(backends)
        return sample

    def start(self) -> None:
        self._before = self._sample()

    def stop(self, requests: int) -> dict[str, float]:
        """CPU ms per request since start(), per group."""
        after = self._sample()
        return {
            key: round((after[key] - self._before[key]) * 1000 / max(requests, 1), 3)
            for key in after
            if key in self._before
        }
