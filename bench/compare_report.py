"""What `make compare` reports, from the rounds it recorded: the median of
each figure over the rounds, the ratios split ÷ monolith, the printed table,
the JSON document and a self-contained HTML page (PNG charts inlined).

Everything here is arithmetic on recorded figures: tests/tools/
test_compare_report.py runs it on recorded tool output, without load."""

from __future__ import annotations

import base64
import html
import io
import json
import statistics
from pathlib import Path

BASELINE = "stage0"

# The comments service runs on SecantusDB here: its endpoints carry this note.
SECANTUS_NOTE = "SecantusDB sorts in memory; real MongoDB uses the index"
SECANTUS_ENDPOINTS = frozenset({"post comments", "create comment"})

# Where the cost of each endpoint comes from in stage 4, for the report.
COST_SOURCES = {
    "post list": "one extra loopback hop through nginx; async: the posts service alone "
    "(comment counts kept from events); sync: plus a call for the counts",
    "post detail": "one extra hop through nginx; async: the posts service alone; "
    "sync: plus a call for the count",
    "post comments": "nginx hop; the comments service on the MongoDB-wire server "
    "(query, sort, page) instead of one SQL query",
    "create post": "nginx hop; the posts service's commit writes an outbox row "
    "(async) that its relay publishes afterwards",
    "create comment": "nginx hop; the comments service checks the post (its replica, or a "
    "call to the posts service in sync mode), writes the comment and its pending event "
    "to the MongoDB-wire server",
}


def median(values: list[float]) -> float | None:
    present = [v for v in values if v is not None and v == v]  # drops None and NaN
    return round(statistics.median(present), 3) if present else None


def ratio(split: float | None, mono: float | None) -> float | None:
    if split is None or mono is None or mono == 0:
        return None
    return round(split / mono, 2)


def cpu_total(cpu_ms: dict[str, float]) -> float:
    return round(sum(cpu_ms.values()), 3)


def summarize_endpoint(rounds: dict) -> dict:
    """The median over rounds of every figure of one endpoint on one stack.
    ``rounds`` has lists "saturation" (wrk: requests_per_s, latency_ms,
    errors, cpu_ms_per_request by component) and "fixed_rate" (httperf:
    rate_per_s, latency_ms p50/p90/p99, failed)."""
    sat, fixed = rounds.get("saturation", []), rounds.get("fixed_rate", [])
    components = sorted({c for r in sat for c in r["cpu_ms_per_request"]})
    cpu = {c: median([r["cpu_ms_per_request"].get(c, 0.0) for r in sat]) for c in components}
    return {
        "requests_per_s": median([r["requests_per_s"] for r in sat]),
        "saturation_p99_ms": median([r["latency_ms"].get("p99") for r in sat]),
        "saturation_errors": sum(r["errors"] for r in sat),
        "fixed_rate_per_s": median([r["rate_per_s"] for r in fixed]),
        **{
            f"{q}_ms": median([r["latency_ms"].get(q) for r in fixed])
            for q in ("p50", "p90", "p99")
        },
        "fixed_rate_failed": sum(r["failed"] for r in fixed),
        # The fixed rate at or above this stack's own saturation: its latency
        # is then queueing, not service time.
        "overloaded": bool(fixed and sat)
        and (median([r["rate_per_s"] for r in fixed]) or 0)
        >= 0.95 * (median([r["requests_per_s"] for r in sat]) or 0),
        "cpu_ms_per_request": cpu,
        "cpu_ms_per_request_total": cpu_total({c: v or 0.0 for c, v in cpu.items()}),
        "rounds": len(sat),
    }


def summarize(rounds: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """stack -> endpoint -> summary."""
    return {
        stack: {endpoint: summarize_endpoint(r) for endpoint, r in by_endpoint.items()}
        for stack, by_endpoint in rounds.items()
    }


RATIO_KEYS = ("requests_per_s", "p50_ms", "p90_ms", "p99_ms", "cpu_ms_per_request_total")


def ratios(summary: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """split stack -> endpoint -> figure -> split ÷ monolith."""
    base = summary.get(BASELINE, {})
    return {
        stack: {
            endpoint: {
                key: ratio(fig.get(key), base.get(endpoint, {}).get(key)) for key in RATIO_KEYS
            }
            for endpoint, fig in by_endpoint.items()
        }
        for stack, by_endpoint in summary.items()
        if stack != BASELINE
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(summary: dict, ratio_table: dict) -> str:
    """The printed table: each endpoint, each stack's figures, ratios for split stacks."""
    head = (
        f"{'endpoint':<15} {'stack':<12} {'req/s':>8} {'rate':>6} {'p50':>6} {'p90':>6} "
        f"{'p99':>6} {'cpu ms':>7}   ratios req/s p99 cpu"
    )
    lines = [head, "-" * len(head)]
    endpoints = list(summary.get(BASELINE, {}) or next(iter(summary.values()), {}))
    for endpoint in endpoints:
        for stack, by_endpoint in summary.items():
            fig = by_endpoint.get(endpoint)
            if fig is None:
                continue
            line = (
                f"{endpoint:<15} {stack:<12} {_fmt(fig['requests_per_s'], 0):>8} "
                f"{_fmt(fig['fixed_rate_per_s'], 0):>6} {_fmt(fig['p50_ms']):>6} "
                f"{_fmt(fig['p90_ms']):>6} {_fmt(fig['p99_ms']):>6} "
                f"{_fmt(fig['cpu_ms_per_request_total'], 2):>7}"
            )
            r = ratio_table.get(stack, {}).get(endpoint)
            if r:
                line += (
                    f"   {_fmt(r['requests_per_s'], 2):>5}x {_fmt(r['p99_ms'], 2):>4}x "
                    f"{_fmt(r['cpu_ms_per_request_total'], 2):>4}x"
                )
            if endpoint in SECANTUS_ENDPOINTS and stack != BASELINE:
                line += "  *"
            if fig["overloaded"]:
                line += "  (rate >= its saturation)"
            if fig["fixed_rate_failed"] or fig["saturation_errors"]:
                line += f"  errors {fig['saturation_errors']}+{fig['fixed_rate_failed']}"
            lines.append(line)
    lines.append("latency in ms at the fixed rate (httperf, 1 ms bins); cpu ms per request")
    lines.append(f"* {SECANTUS_NOTE}")
    return "\n".join(lines)


def write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


# ---------------------------------------------------------------- charts and HTML


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def ratio_chart(ratio_table: dict) -> str:
    """Bars of split ÷ monolith per endpoint (throughput, p99, CPU); 1 = parity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stacks = list(ratio_table)
    endpoints = list(next(iter(ratio_table.values()), {}))
    keys = (("requests_per_s", "req/s"), ("p99_ms", "p99"), ("cpu_ms_per_request_total", "CPU/req"))
    fig, axes = plt.subplots(
        1, len(stacks) or 1, figsize=(6.5 * max(1, len(stacks)), 4), squeeze=False
    )
    width = 0.8 / len(keys)
    for ax, stack in zip(axes[0], stacks, strict=False):
        for i, (key, label) in enumerate(keys):
            values = [ratio_table[stack][e][key] or 0 for e in endpoints]
            ax.bar([x + i * width for x in range(len(endpoints))], values, width, label=label)
        ax.axhline(1, color="black", linewidth=0.8)
        ax.set_xticks([x + width for x in range(len(endpoints))], endpoints, rotation=20)
        ax.set_title(f"{stack} ÷ stage 0")
        ax.set_ylabel("ratio (1 = monolith)")
        ax.legend()
    return _png(fig)


def cpu_chart(summary: dict) -> str:
    """Stacked bars of CPU ms per request by component, per endpoint and stack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [
        (f"{endpoint}\n{stack}", fig["cpu_ms_per_request"])
        for endpoint in next(iter(summary.values()), {})
        for stack, by_endpoint in summary.items()
        if (fig := by_endpoint.get(endpoint))
    ]
    components = sorted({c for _, cpu in bars for c in cpu})
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(bars)), 4.5))
    bottoms = [0.0] * len(bars)
    colours = plt.get_cmap("tab20").colors  # 11+ components: tab10 would repeat
    for i, component in enumerate(components):
        values = [cpu.get(component) or 0.0 for _, cpu in bars]
        colour = colours[i % len(colours)]
        ax.bar(range(len(bars)), values, bottom=bottoms, label=component, color=colour)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    ax.set_xticks(range(len(bars)), [label for label, _ in bars], fontsize=7, rotation=30)
    ax.set_ylabel("CPU ms per request (at saturation)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _png(fig)


def html_page(document: dict) -> str:
    """The report as one HTML file: charts inlined, the table, the notes."""
    summary, ratio_table = document["summary"], document["ratios"]
    charts = ""
    if ratio_table:
        charts += f'<img alt="ratios" src="data:image/png;base64,{ratio_chart(ratio_table)}">'
    charts += f'<img alt="cpu by component" src="data:image/png;base64,{cpu_chart(summary)}">'
    footprint_rows = "".join(
        f"<tr><td>{html.escape(stack)}</td><td>{f['own_processes']}</td>"
        f"<td>{len(f['own_listening_ports'])}</td><td>{f['total_pss_mib']}</td>"
        f"<td>{f['total_rss_mib']}</td></tr>"
        for stack, f in document["footprint"].items()
    )
    sources = "".join(
        f"<li><b>{html.escape(e)}</b>: {html.escape(s)}"
        + (f" <i>({SECANTUS_NOTE})</i>" if e in SECANTUS_ENDPOINTS else "")
        + "</li>"
        for e, s in COST_SOURCES.items()
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>make compare {html.escape(document["measured_at"])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}img{{max-width:100%}}
pre{{background:#f4f4f4;padding:8px;overflow:auto}}td,th{{padding:2px 8px}}</style></head><body>
<h1>What the split costs: stage 4 vs stage 0</h1>
<p>{html.escape(document["settings"]["note"])}</p>
<p>Commit {html.escape(str(document["commit"]))}, measured {html.escape(document["measured_at"])},
{html.escape(str(document["machine"]["cpu_model"]))}, {document["machine"]["cores"]} cores.</p>
{charts}
<h2>Table (medians over rounds)</h2><pre>{html.escape(document["table"])}</pre>
<h2>Footprint</h2><table border="1"><tr><th>stack</th><th>own processes</th>
<th>own listening ports</th><th>PSS MiB</th><th>RSS MiB</th></tr>{footprint_rows}</table>
<p>PSS/RSS include the PostgreSQL backends of the stack's databases and, for stage 4, the
whole RabbitMQ server (shared).</p>
<h2>Where the cost comes from</h2><ul>{sources}</ul>
<h2>Method</h2><pre>{html.escape(json.dumps(document["settings"], indent=2))}</pre>
</body></html>
"""
