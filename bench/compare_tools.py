"""The load tools of `make compare`, kept tools only: wrk for saturation
(bench/wrk.py runs and reads it; here only the Lua script that makes it POST)
and httperf for a fixed, open-loop rate.

httperf prints no percentiles. With ``-v -v`` it prints a histogram of
connection lifetimes in 1 ms bins; each request has its own connection
(``--num-calls 1``), so a lifetime is connect + request + reply, and the
percentiles are read from that histogram as the upper edge of their bin:
exact to 1 ms, never lower than the truth. Both stacks pay the same connect.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from common import fail

# Debian's package for each tool, named when the tool is missing.
TOOL_PACKAGES = {"wrk": "wrk", "httperf": "httperf", "nginx": "nginx"}


def check_tools(which=shutil.which) -> None:
    """Stops the run before anything starts when a tool is missing, naming its package."""
    missing = [tool for tool in TOOL_PACKAGES if which(tool) is None]
    if missing:
        packages = " ".join(TOOL_PACKAGES[tool] for tool in missing)
        fail(
            f"{', '.join(missing)} not installed. Install with "
            f"`apt-get install -y {packages}` and run again."
        )


# ---------------------------------------------------------------- wrk


def wrk_post_script(folder: Path, name: str, body: str) -> Path:
    """A wrk Lua script that sends every request as a JSON POST of ``body``."""
    lua_body = body.replace("\\", "\\\\").replace('"', '\\"')
    path = folder / f"{name}.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = "{lua_body}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return path


# ---------------------------------------------------------------- httperf


@dataclass
class HttperfResult:
    rate_per_s: float  # asked for
    request_rate_per_s: float  # achieved
    requests: int
    replies: int
    status: dict[str, int]
    errors: int
    latency_ms: dict[str, float]  # p50, p90, p99 (histogram upper edges), avg, max
    histogram: dict[float, int] = field(default_factory=dict)  # bin start (ms) -> count

    @property
    def failed(self) -> int:
        """Requests without a 2xx reply: errors, timeouts and non-2xx statuses."""
        not_2xx = sum(count for code, count in self.status.items() if code != "2xx")
        return self.errors + not_2xx + max(0, self.requests - self.replies - self.errors)


def parse_histogram(output: str) -> dict[float, int]:
    """Bin start in ms -> connections, from httperf's lifetime histogram
    (lines ``<bin midpoint> <count>`` after its heading)."""
    block = re.search(r"Connection lifetime histogram \(time in ms\):\n(.*?)\n\s*\n", output, re.S)
    if not block:
        return {}
    bins: dict[float, int] = {}
    for mid, count in re.findall(r"^\s*([\d.]+)\s+(\d+)\s*$", block[1], re.MULTILINE):
        bins[round(float(mid) - 0.5, 3)] = int(count)
    return bins


def histogram_percentile(bins: dict[float, int], q: float) -> float:
    """The upper edge (ms) of the bin holding the q-th percentile connection."""
    total = sum(bins.values())
    if total == 0:
        return float("nan")
    rank = q / 100 * total
    seen = 0
    for start in sorted(bins):
        seen += bins[start]
        if seen >= rank:
            return start + 1.0
    return max(bins) + 1.0


def parse_httperf(output: str, rate: float) -> HttperfResult:
    total = re.search(r"Total: connections (\d+) requests (\d+) replies (\d+)", output)
    request_rate = re.search(r"^Request rate: ([\d.]+) req/s", output, re.MULTILINE)
    status = re.search(r"Reply status: 1xx=(\d+) 2xx=(\d+) 3xx=(\d+) 4xx=(\d+) 5xx=(\d+)", output)
    errors = re.search(r"^Errors: total (\d+)", output, re.MULTILINE)
    times = re.search(r"Connection time \[ms\]: min ([\d.]+) avg ([\d.]+) max ([\d.]+)", output)
    if not (total and request_rate and status and errors):
        fail(f"could not parse httperf's output:\n{output}")
    bins = parse_histogram(output)
    latency = {f"p{q}": histogram_percentile(bins, q) for q in (50, 90, 99)}
    if times:
        latency |= {"avg": float(times[2]), "max": float(times[3])}
    codes = ("1xx", "2xx", "3xx", "4xx", "5xx")
    return HttperfResult(
        rate_per_s=rate,
        request_rate_per_s=float(request_rate[1]),
        requests=int(total[2]),
        replies=int(total[3]),
        status=dict(zip(codes, map(int, status.groups()), strict=True)),
        errors=int(errors[1]),
        latency_ms=latency,
        histogram=bins,
    )


def httperf_command(
    url: str, *, rate: float, duration_s: float, session_file: Path | None = None
) -> list[str]:
    """httperf at ``rate`` new connections/s, one request each, for ``duration_s``.
    A POST needs a session file (httperf sends a body only from one)."""
    parts = urlsplit(url)
    conns = max(1, round(rate * duration_s))
    command = [
        "httperf", "-v", "-v", "--hog", "--timeout", "5",
        "--server", parts.hostname or "127.0.0.1", "--port", str(parts.port or 80),
        "--rate", f"{rate:g}",
    ]  # fmt: skip
    if session_file is None:
        return [*command, "--uri", parts.path or "/", "--num-conns", str(conns), "--num-calls", "1"]
    return [
        *command, "--wsesslog", f"{conns},0,{session_file}",
        "--add-header", "Content-Type: application/json\\n",
    ]  # fmt: skip


def httperf_session_file(folder: Path, name: str, path: str, body: str) -> Path:
    """A one-request session (a JSON POST of ``body`` to ``path``) for --wsesslog."""
    quoted = body.replace("\\", "\\\\").replace("'", "\\'")
    session = folder / f"{name}.httperf"
    session.write_text(f"{path} method=POST contents='{quoted}'\n")
    return session


def run_httperf(
    url: str, *, rate: float, duration_s: float, session_file: Path | None = None
) -> HttperfResult:
    command = httperf_command(url, rate=rate, duration_s=duration_s, session_file=session_file)
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    if completed.returncode != 0:
        fail(f"{' '.join(command)} exited with {completed.returncode}:\n{completed.stderr}")
    return parse_httperf(completed.stdout, rate)


def httperf_version() -> str:
    completed = subprocess.run(["httperf", "--version"], capture_output=True, text=True)
    match = re.search(r"httperf-?\s*([\d.]+\S*)", completed.stdout + completed.stderr)
    return match[1] if match else "unknown"
