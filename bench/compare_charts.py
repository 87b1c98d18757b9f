"""The charts of `make compare`, as PNG bytes (matplotlib, Agg): written
next to compare.json (ratios.png, cpu.png, faults.png) so a README can show
one, and inlined in compare.html."""

from __future__ import annotations

import io
from math import nan

STATUS_COLOURS = {
    "2xx": "#4caf50",
    "3xx": "#90caf9",
    "4xx": "#ff9800",
    "5xx": "#e53935",
    "error": "#616161",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    return buffer.getvalue()


def ratio_chart(ratio_table: dict) -> bytes:
    """Bars of split ÷ monolith per endpoint (throughput, p99, CPU); 1 = parity."""
    plt = _pyplot()
    stacks = list(ratio_table)
    endpoints = list(next(iter(ratio_table.values()), {}))
    keys = (("requests_per_s", "req/s"), ("p99_ms", "p99"), ("cpu_ms_per_request_total", "CPU/req"))
    fig, axes = plt.subplots(
        1, len(stacks) or 1, figsize=(6.5 * max(1, len(stacks)), 4), squeeze=False
    )
    width = 0.8 / len(keys)
    for ax, stack in zip(axes[0], stacks, strict=False):
        for i, (key, label) in enumerate(keys):
            values = [ratio_table[stack][e][key] or float("nan") for e in endpoints]
            ax.bar([x + i * width for x in range(len(endpoints))], values, width, label=label)
        ax.axhline(1, color="black", linewidth=0.8)
        # Log scale: a 0.2x throughput and a 50x p99 are both read off the same axis.
        ax.set_yscale("log")
        ax.set_xticks([x + width for x in range(len(endpoints))], endpoints, rotation=20)
        ax.set_title(f"{stack} ÷ stage 0")
        ax.set_ylabel("ratio (1 = monolith, log scale)")
        ax.legend()
    return _png(fig)


def cpu_chart(summary: dict) -> bytes:
    """Stacked bars of CPU ms per request by component, per endpoint and stack."""
    plt = _pyplot()
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


def faults_chart(faults: dict) -> bytes:
    """One row per drill, one column per stack: the requests of each second
    stacked by status; the comments acknowledged but not yet counted (black
    steps, same axis); p99 latency on the right axis; shaded dark from the
    fault to the restart, light while the restart ran; dashed where a whole
    second of 2xx came back."""
    plt = _pyplot()
    drills = faults["drills"]
    stacks = list(next(iter(drills.values()))["stacks"]) if drills else []
    fig, axes = plt.subplots(
        max(1, len(drills)),
        max(1, len(stacks)),
        figsize=(5.2 * max(1, len(stacks)), 2.6 * max(1, len(drills))),
        squeeze=False,
    )
    for row, drill in enumerate(drills.values()):
        for col, stack in enumerate(stacks):
            _fault_panel(axes[row][col], drill["title"], stack, drill["stacks"][stack])
    axes[0][-1].legend(
        [plt.Rectangle((0, 0), 1, 1, color=c) for c in STATUS_COLOURS.values()]
        + [plt.Line2D([], [], color="black"), plt.Line2D([], [], color="#1565c0")],
        [*STATUS_COLOURS, "not yet counted", "p99 ms"],
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.12, 1),
    )
    fig.tight_layout()
    return _png(fig)


def _fault_panel(ax, title: str, stack: str, fig: dict) -> None:
    rows = fig["per_second"]
    seconds = [r["second"] for r in rows]
    bottoms = [0] * len(rows)
    for cls, colour in STATUS_COLOURS.items():
        values = [r[cls] for r in rows]
        if any(values):
            ax.bar(seconds, values, bottom=bottoms, color=colour, width=0.9, align="edge")
            bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    if fig.get("up_at_s") is not None:
        ax.axvspan(fig["fault_at_s"], fig["up_at_s"], color="#000000", alpha=0.12)
        ax.axvspan(fig["up_at_s"], fig["ready_at_s"], color="#000000", alpha=0.05)
    behind = {int(second): n for second, n in fig["counter_behind"].items()}
    if any(behind.values()):
        steps = [behind.get(s, 0) for s in seconds]
        ax.step([*seconds, len(seconds)], [*steps, steps[-1]], where="post", color="black")
    if fig.get("recovered_at_s") is not None:
        ax.axvline(fig["recovered_at_s"], color="black", linestyle="--", linewidth=0.8)
    latency = ax.twinx()
    latency.plot(
        [s + 0.5 for s in seconds],
        [nan if r["p99_ms"] is None else r["p99_ms"] for r in rows],
        color="#1565c0",
        linewidth=1,
    )
    latency.set_ylabel("p99 ms", fontsize=7, color="#1565c0")
    latency.tick_params(labelsize=7)
    lost = len(fig["writes"]["posts"]["missing"]) + len(fig["writes"]["comments"]["missing"])
    if fig["action"]:
        recovered = fig["recovery_s"]
        detail = f"recovery {'never' if recovered is None else f'{recovered:.0f} s'}, lost {lost}"
    else:
        detail = "no fault (" + (fig["note"] or "").split(":")[0] + ")"
    ax.set_title(f"{title} — {stack}\n{detail}", fontsize=8)
    ax.set_xlabel("s", fontsize=7)
    ax.set_ylabel("requests", fontsize=7)
    ax.tick_params(labelsize=7)


def charts(document: dict) -> dict[str, bytes]:
    """File stem -> PNG, for the parts of the document that have figures."""
    made = {}
    if document.get("ratios"):
        made["ratios"] = ratio_chart(document["ratios"])
    if document.get("summary"):
        made["cpu"] = cpu_chart(document["summary"])
    if document.get("faults", {}).get("drills"):
        made["faults"] = faults_chart(document["faults"])
    return made
