"""Running wrk (https://github.com/wg/wrk) and reading its text output:
throughput, the latency distribution (``--latency``) and errors."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from common import fail

WRK_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass
class WrkResult:
    requests_per_s: float
    requests: int
    duration_s: float
    latency_ms: dict[str, float]  # avg, max, p50, p75, p90, p99
    non_2xx_3xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.non_2xx_3xx + sum(self.socket_errors.values())


def _duration_ms(value: str, unit: str) -> float:
    return float(value) * WRK_UNITS_MS[unit]


def _latency_ms(output: str) -> dict[str, float]:
    """avg and max from the thread stats, pNN from the latency distribution."""
    latency: dict[str, float] = {}
    stats = re.search(
        r"^\s*Latency\s+([\d.]+)(us|ms|s|m|h)\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m|h)",
        output,
        re.MULTILINE,
    )
    if stats:
        latency["avg"] = _duration_ms(stats[1], stats[2])
        latency["max"] = _duration_ms(stats[3], stats[4])
    for percent, value, unit in re.findall(
        r"^\s*(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE
    ):
        latency[f"p{percent}"] = _duration_ms(value, unit)
    return latency


def _socket_errors(output: str) -> dict[str, int]:
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if not sockets:
        return {}
    kinds = ("connect", "read", "write", "timeout")
    return dict(zip(kinds, map(int, sockets.groups()), strict=True))


def parse_wrk(output: str) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output, re.MULTILINE)
    if not rps or not total:
        fail(f"could not parse wrk's output:\n{output}")
    latency = _latency_ms(output)
    if "p50" not in latency or "p99" not in latency:
        fail(f"wrk printed no latency distribution (is --latency supported?):\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return WrkResult(
        requests_per_s=float(rps[1]),
        requests=int(total[1]),
        duration_s=_duration_ms(total[2], total[3]) / 1000,
        latency_ms={key: round(value, 3) for key, value in latency.items()},
        non_2xx_3xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=_socket_errors(output),
    )


def run_wrk(
    url: str, *, threads: int, connections: int, duration_s: int, script: Path | None = None
) -> WrkResult:
    """One wrk run against ``url``; ``script``: a Lua script (the POSTs of make compare)."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 30, check=False
    )
    if completed.returncode != 0:
        output = completed.stderr + completed.stdout
        fail(f"{' '.join(command)} exited with {completed.returncode}:\n{output}")
    return parse_wrk(completed.stdout)


def wrk_version() -> str:
    completed = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    first_line = (completed.stdout or completed.stderr).splitlines()[:1]
    match = re.match(r"wrk (\S+)", first_line[0]) if first_line else None
    return match[1] if match else "unknown"
