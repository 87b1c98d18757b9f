"""The arithmetic of `make compare`'s fault drills, network hops and event lag,
on what was recorded: one record per request of a drill, the components'
log lines, the lags of the events. Pure functions (no load, no stack), so
tests/tools/test_compare_report.py runs them on recorded data.

A drill's request record is a dict: ``at_s`` (its scheduled start, seconds
since the drill began: a request held up by a full client pool is still
binned when it was due, and its wait counts as latency), ``endpoint``,
``status`` (None: no reply at all, refused, reset or timed out) and
``latency_ms`` (from the scheduled start to the reply or the failure).
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable

STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error")


def status_class(status: int | None) -> str:
    """The status class ("2xx" to "5xx"), or "error" when there was no HTTP reply."""
    if status is None or not 100 <= status <= 599:
        return "error"
    return f"{status // 100}xx"


def nearest_rank(values: list[float], q: float) -> float | None:
    """The q-th percentile by nearest rank (the ceil(q/100 * n)-th smallest):
    a value that was measured, never an interpolation between two."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


# ---------------------------------------------------------------- drills


def per_second(records: Iterable[dict], seconds: int | None = None) -> list[dict]:
    """Second by second (by scheduled start): the status mix, p50/p99/max latency.
    ``seconds``: how many rows at least (a second without requests is a row of zeros)."""
    bins: dict[int, list[dict]] = {}
    for record in records:
        bins.setdefault(int(record["at_s"]), []).append(record)
    last = max([*bins, (seconds or 0) - 1], default=-1)
    rows = []
    for second in range(last + 1):
        group = bins.get(second, [])
        mix = Counter(status_class(r["status"]) for r in group)
        latencies = [r["latency_ms"] for r in group]
        rows.append(
            {
                "second": second,
                **{cls: mix.get(cls, 0) for cls in STATUS_CLASSES},
                "p50_ms": _round(nearest_rank(latencies, 50)),
                "p99_ms": _round(nearest_rank(latencies, 99)),
                "max_ms": _round(max(latencies, default=None)),
            }
        )
    return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def all_ok(row: dict) -> bool:
    """A second in which requests were sent and every one got a 2xx."""
    total = sum(row[cls] for cls in STATUS_CLASSES)
    return total > 0 and row["2xx"] == total


def recovery(rows: list[dict], fault_at_s: float, up_at_s: float | None) -> dict:
    """What the fault did to the clients, from the per-second rows.

    - ``failed``: requests due from the fault on that got no 2xx;
    - ``recovered_at_s``: the first second (its start), at or after the
      restart began (``up_at_s``: the process started again, continued,
      the broker started), in which every request got a 2xx;
    - ``recovery_s``: from the restart to that second, to 1 s: an upper bound;
      0 when no request failed at all (the fault did not reach the clients);
      None when no clean second came before the drill ended;
    - ``failed_after_recovery``: failures later still (a relapse).
    """
    after_fault = [r for r in rows if r["second"] + 1 > fault_at_s]
    failed = sum(sum(r[c] for c in STATUS_CLASSES) - r["2xx"] for r in after_fault)
    result = {
        "failed": failed,
        "recovered_at_s": None,
        "recovery_s": None,
        "failed_after_recovery": 0,
    }
    if failed == 0:
        return result | {"recovery_s": 0.0}
    if up_at_s is None:
        return result
    start = math.ceil(up_at_s)
    clean = next((r for r in rows if r["second"] >= start and all_ok(r)), None)
    if clean is None:
        return result
    later = [r for r in rows if r["second"] > clean["second"]]
    return result | {
        "recovered_at_s": clean["second"],
        "recovery_s": round(clean["second"] - up_at_s, 2),
        "failed_after_recovery": sum(sum(r[c] for c in STATUS_CLASSES) - r["2xx"] for r in later),
    }


def by_phase(records: Iterable[dict], fault_at_s: float, up_at_s: float | None) -> dict:
    """phase ("before", "down", "after") -> endpoint -> status class -> requests:
    which endpoints a fault takes down, which keep serving."""
    phases: dict[str, dict[str, Counter]] = {}
    for record in records:
        at = record["at_s"]
        if at < fault_at_s:
            phase = "before"
        elif up_at_s is None or at < up_at_s:
            phase = "down"
        else:
            phase = "after"
        counts = phases.setdefault(phase, {}).setdefault(record["endpoint"], Counter())
        counts[status_class(record["status"])] += 1
    return {
        phase: {endpoint: dict(sorted(c.items())) for endpoint, c in endpoints.items()}
        for phase, endpoints in phases.items()
    }


def counter_behind(records: Iterable[dict], counted_before: int = 0) -> dict[int, int]:
    """Second -> how far the post's comment_count was behind at most: the
    comments acknowledged (201 received) before a post detail read was due,
    plus ``counted_before`` (written before the load), minus the count that
    read returned. What a paused consumer or a stopped broker shows clients
    while every status stays 2xx."""
    records = list(records)
    acknowledged = sorted(
        r["at_s"] + r["latency_ms"] / 1000
        for r in records
        if r["endpoint"] == "create comment" and r["status"] == 201
    )
    behind: dict[int, int] = {}
    for read in records:
        if read.get("comment_count") is None:
            continue
        before = counted_before + sum(1 for done in acknowledged if done < read["at_s"])
        second = int(read["at_s"])
        behind[second] = max(behind.get(second, 0), before - read["comment_count"])
    return dict(sorted(behind.items()))


def writes_check(created: Iterable[str], found: Iterable[str]) -> dict:
    """Every id a 201 returned, looked for afterwards: ``missing`` ones were
    acknowledged and lost; ``unacknowledged`` ones were written although the
    client got no 201 (a timeout, a 5xx after the commit)."""
    created, found = set(created), set(found)
    return {
        "acknowledged": len(created),
        "found": len(created & found),
        "missing": sorted(created - found),
        "unacknowledged": len(found - created),
    }


# ---------------------------------------------------------------- hops

# nginx's gw_main format ends with rid=<id>; the apps log JSON with "request_id".
_NGINX_RID = re.compile(r"\brid=(\S+)")


def request_ids_in(line: str) -> list[str]:
    """The request ids a log line carries: nginx's ``rid=``, the apps' JSON ``request_id``."""
    line = line.strip()
    if line.startswith("{"):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if isinstance(entry, dict):
            rid = entry.get("request_id")
            return [rid] if isinstance(rid, str) else []
    return _NGINX_RID.findall(line)


def hop_counts(lines_by_component: dict[str, Iterable[str]], ids: list[str]) -> dict:
    """For requests sent with ``ids``: the log lines each component wrote
    carrying them (per request), and the hops: how many components a request
    reached, on average (each reached over the network, one hop each:
    client -> gateway -> service -> service), the gateway first.
    ``unlogged``: requests no component logged (a check on the count)."""
    wanted = set(ids)
    reached: dict[str, set[str]] = {rid: set() for rid in ids}
    lines: Counter = Counter()
    for component, component_lines in lines_by_component.items():
        for line in component_lines:
            for rid in request_ids_in(line):
                if rid in wanted:
                    lines[component] += 1
                    reached[rid].add(component)
    n = max(1, len(ids))
    components = sorted(lines, key=lambda c: (c != "gateway", -lines[c], c))
    return {
        "requests": len(ids),
        "hops": round(sum(len(c) for c in reached.values()) / n, 2),
        "lines_per_request": {c: round(lines[c] / n, 2) for c in components},
        "components": components,
        "unlogged": sum(1 for c in reached.values() if not c),
    }


# ---------------------------------------------------------------- event lag


def lag_summary(lags_ms: list[float], sent: int) -> dict:
    """Commit-to-effect lags (ms) of the events counted, of ``sent``."""
    return {
        "events": sent,
        "counted": len(lags_ms),
        "p50_ms": _round(nearest_rank(lags_ms, 50)),
        "p90_ms": _round(nearest_rank(lags_ms, 90)),
        "p99_ms": _round(nearest_rank(lags_ms, 99)),
        "max_ms": _round(max(lags_ms, default=None)),
        "mean_ms": _round(statistics.fmean(lags_ms)) if lags_ms else None,
    }
