"""What `make bench` reports: the printed table and verdict on the cost goal,
the JSON document (figures, machine, software, settings) and the PNG chart."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg
from common import ROOT
from wrk import WrkResult, wrk_version

# The contract's cost goal (docs/architecture.md): the post list, page of 20,
# on the demo data set, with 2 sync gunicorn workers on this machine.
TARGET_ENDPOINT = "post list"
TARGET_REQUESTS_PER_S = 1000.0


@dataclass
class EndpointResult:
    name: str
    path: str
    note: str
    wrk: WrkResult
    # CPU time per request of the gunicorn workers and of the PostgreSQL
    # backends serving them: steadier than req/s when the machine is shared.
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)
    # Every run's req/s when --repeat > 1; the figures above are the median run's.
    runs_requests_per_s: list[float] = field(default_factory=list)


def target_result(results: list[EndpointResult]) -> tuple[EndpointResult, bool]:
    """The target endpoint's result, and whether it meets the goal (no errors allowed)."""
    target = next(result for result in results if result.name == TARGET_ENDPOINT)
    met = target.wrk.requests_per_s >= TARGET_REQUESTS_PER_S and target.wrk.errors == 0
    return target, met


# ---------------------------------------------------------------- machine


def machine_info(pg_version: str) -> dict:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    cpu_model = re.search(r"^model name\s*:\s*(.+)$", read("/proc/cpuinfo"), re.MULTILINE)
    mem_total = re.search(r"^MemTotal:\s+(\d+) kB", read("/proc/meminfo"), re.MULTILINE)
    os_name = re.search(r'^PRETTY_NAME="?([^"\n]+)', read("/etc/os-release"), re.MULTILINE)

    import django
    import gunicorn
    import rest_framework

    return {
        "machine": {
            "cpu_model": cpu_model[1].strip() if cpu_model else platform.processor() or "unknown",
            "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else None,
            "ram_gib": round(int(mem_total[1]) / 1024**2, 1) if mem_total else None,
            "os": os_name[1] if os_name else platform.system(),
            "kernel": platform.release(),
        },
        "software": {
            "python": platform.python_version(),
            "django": django.get_version(),
            "djangorestframework": rest_framework.VERSION,
            "gunicorn": gunicorn.__version__,
            "psycopg": psycopg.__version__,
            "postgresql": pg_version,
            "wrk": wrk_version(),
        },
    }


def git_commit() -> str | None:
    completed = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() or None


# ---------------------------------------------------------------- printed


def print_table(results: list[EndpointResult]) -> None:
    header = (
        f"{'endpoint':<15} {'path':<56} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        f" {'CPU ms/req: app':>16} {'db':>5}"
    )
    print()
    print(header)
    print("-" * len(header))
    for result in results:
        wrk, cpu = result.wrk, result.cpu_ms_per_request
        app_cpu = f"{cpu['gunicorn_workers']:.2f}" if "gunicorn_workers" in cpu else "-"
        db_cpu = f"{cpu['postgresql']:.2f}" if "postgresql" in cpu else "-"
        print(
            f"{result.name:<15} {result.path:<56} {wrk.requests_per_s:>9,.1f} "
            f"{wrk.latency_ms['p50']:>8.2f} {wrk.latency_ms['p99']:>8.2f} {wrk.errors:>7}"
            f" {app_cpu:>16} {db_cpu:>5}"
        )
    print()


def print_verdict(results: list[EndpointResult], workers: int, machine: dict) -> None:
    target, met = target_result(results)
    verdict = "MET" if met else "NOT MET"
    print(
        f"Target ({TARGET_ENDPOINT}, page of 20, {workers} sync workers): "
        f">= {TARGET_REQUESTS_PER_S:,.0f} req/s -> {verdict} "
        f"({target.wrk.requests_per_s:,.0f} req/s"
        + (f", {target.wrk.errors} errors" if target.wrk.errors else "")
        + ")"
    )
    print(
        f"Machine: {machine['cpu_model']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM; "
        f"wrk and PostgreSQL share it with the server."
    )


# ---------------------------------------------------------------- JSON


def result_document(result: EndpointResult) -> dict:
    runs = result.runs_requests_per_s
    return {
        "endpoint": result.name,
        "path": result.path,
        "note": result.note,
        **asdict(result.wrk),
        "cpu_ms_per_request": result.cpu_ms_per_request,
        **({"runs_requests_per_s": runs} if runs else {}),
    }


def target_document(results: list[EndpointResult]) -> dict:
    target, met = target_result(results)
    return {
        "endpoint": TARGET_ENDPOINT,
        "min_requests_per_s": TARGET_REQUESTS_PER_S,
        "measured_requests_per_s": target.wrk.requests_per_s,
        "met": met,
    }


def document(
    *,
    label: str,
    measured_at: datetime,
    info: dict,
    background: float | None,
    setup: dict,
    results: list[EndpointResult],
) -> dict:
    """The JSON file's content: every figure of the table and how it was measured."""
    return {
        "label": label,
        "measured_at": measured_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "git_commit": git_commit(),
        **info,
        "background_cpu_share": None if background is None else round(background, 3),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "setup": setup,
        "target": target_document(results),
        "results": [result_document(result) for result in results],
    }


def write_json(path: Path, document: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------- chart


def write_chart(path: Path, results: list[EndpointResult], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [result.name for result in results]
    positions = range(len(results))
    fig, (rps_ax, latency_ax) = plt.subplots(1, 2, figsize=(11, 4.5))

    bars = rps_ax.bar(names, [result.wrk.requests_per_s for result in results], color="#4C72B0")
    rps_ax.bar_label(bars, fmt="%.0f", padding=2)
    rps_ax.axhline(TARGET_REQUESTS_PER_S, color="#C44E52", linestyle="--", linewidth=1)
    rps_ax.annotate(
        f"target for {TARGET_ENDPOINT}: {TARGET_REQUESTS_PER_S:,.0f}",
        xy=(0, TARGET_REQUESTS_PER_S), xytext=(0, 4), textcoords="offset points",
        color="#C44E52", fontsize=8, ha="center",
    )  # fmt: skip
    rps_ax.set_title("Throughput (higher is better)")
    rps_ax.set_ylabel("requests / s")
    rps_ax.set_ylim(0, max(TARGET_REQUESTS_PER_S, *(r.wrk.requests_per_s for r in results)) * 1.18)

    width = 0.38
    p50 = latency_ax.bar(
        [p - width / 2 for p in positions], [r.wrk.latency_ms["p50"] for r in results], width,
        label="p50", color="#55A868",
    )  # fmt: skip
    p99 = latency_ax.bar(
        [p + width / 2 for p in positions], [r.wrk.latency_ms["p99"] for r in results], width,
        label="p99", color="#DD8452",
    )  # fmt: skip
    latency_ax.bar_label(p50, fmt="%.1f", padding=2, fontsize=8)
    latency_ax.bar_label(p99, fmt="%.1f", padding=2, fontsize=8)
    latency_ax.set_xticks(list(positions), names)
    latency_ax.set_title("Latency (lower is better)")
    latency_ax.set_ylabel("ms")
    latency_ax.set_ylim(0, max(r.wrk.latency_ms["p99"] for r in results) * 1.18)
    latency_ax.legend()

    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_suffix(".png.tmp")
    fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    os.replace(tmp, path)
