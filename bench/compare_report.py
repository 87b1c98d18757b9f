"""What `make compare` reports, from the rounds it recorded: the median of
each figure over the rounds, the ratios split ÷ monolith, the printed
tables (ratios, hops, event lag, fault drills), where each endpoint's cost
comes from (with the hops measured), the JSON document and a self-contained
HTML page (the PNG charts of compare_charts inlined).

Everything here is arithmetic on recorded figures: tests/tools/
test_compare_report.py runs it on recorded tool output, without load."""

from __future__ import annotations

import base64
import html
import json
import statistics
from pathlib import Path

BASELINE = "stage0"

# The comments service runs on SecantusDB here: its endpoints carry this note.
SECANTUS_NOTE = "SecantusDB sorts in memory; real MongoDB uses the index"
SECANTUS_ENDPOINTS = frozenset({"post comments", "create comment"})

# Where the cost of each endpoint comes from in stage 4, beside the hops the
# run measured (`explanations`): what one more process does besides forwarding.
COST_SOURCES = {
    "post list": "async: the posts service answers alone, the comment counts kept "
    "from events; sync: it asks the comments service for the page's counts (one call, "
    "one hop more); every byte of the page is copied once more, through nginx",
    "post detail": "async: the posts service alone, its count kept from events; sync: "
    "plus a call for the count",
    "post comments": "the comments service queries, sorts and pages on the MongoDB-wire "
    "server (documents decoded from BSON, then written as JSON) instead of one SQL query",
    "create post": "the posts service's commit also writes an outbox row (async mode), "
    "which its relay publishes after the reply, off the request path",
    "create comment": "the comments service checks the post (its replica in async mode, "
    "a call to the posts service in sync mode), writes the comment and its pending event "
    "to the MongoDB-wire server; the event reaches the posts consumer after the reply",
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


def on_secantus(document: dict) -> bool:
    """Whether the run's comments service ran on SecantusDB (not --mongo-url)."""
    return document.get("settings", {}).get("mongo", "SecantusDB").startswith("SecantusDB")


def table(summary: dict, ratio_table: dict, *, secantus: bool = True) -> str:
    """The printed table: each endpoint, each stack's figures, ratios for split
    stacks; with ``secantus``, the comments endpoints of the split marked."""
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
            if secantus and endpoint in SECANTUS_ENDPOINTS and stack != BASELINE:
                line += "  *"
            if fig["overloaded"]:
                line += "  (rate >= its saturation)"
            if fig["fixed_rate_failed"] or fig["saturation_errors"]:
                line += f"  errors {fig['saturation_errors']}+{fig['fixed_rate_failed']}"
            lines.append(line)
    lines.append("latency in ms at the fixed rate (httperf, 1 ms bins); cpu ms per request")
    if secantus:
        lines.append(f"* {SECANTUS_NOTE}")
    return "\n".join(lines)


# ---------------------------------------------------------------- hops, lag, drills


def _hops_text(hops: dict) -> str:
    n = hops["hops"]
    return f"{n:g} hop{'' if n == 1 else 's'} ({' + '.join(hops['components']) or 'none'})"


def explanations(hops: dict[str, dict[str, dict]]) -> dict[str, str]:
    """Endpoint -> where its cost comes from: the hops measured on each stack
    (from the request ids in the logs), then what the extra processes do."""
    texts = {}
    for endpoint, source in COST_SOURCES.items():
        measured = [
            f"{stack} {_hops_text(by_endpoint[endpoint])}"
            for stack, by_endpoint in hops.items()
            if endpoint in by_endpoint
        ]
        prefix = f"Hops measured: {'; '.join(measured)}. Besides: " if measured else ""
        texts[endpoint] = prefix + source
    return texts


def hops_table(hops: dict[str, dict[str, dict]]) -> str:
    """Endpoint by stack: components each request reached, from their logs."""
    stacks = list(hops)
    endpoints = list(next(iter(hops.values()), {}))
    lines = [f"{'hops per request':<16} " + " ".join(f"{s:<34}" for s in stacks)]
    for endpoint in endpoints:
        cells = [_hops_text(hops[s][endpoint]) if endpoint in hops[s] else "-" for s in stacks]
        lines.append(f"{endpoint:<16} " + " ".join(f"{c:<34}" for c in cells))
    lines.append(
        "counted from X-Request-ID in each component's log (gateway access log, apps); not "
        "counted: each app's calls to its store, and the events a write leaves for later"
    )
    return "\n".join(line.rstrip() for line in lines)


def lag_lines(lag: dict[str, dict]) -> str:
    """Keyed "<stack> at <rate>/s"."""
    lines = []
    for stack, f in lag.items():
        lines.append(
            f"event lag {stack}: {f['counted']}/{f['events']} counted (achieved "
            f"{f['achieved_per_s']}/s): commit -> counted p50 {f['p50_ms']} ms, "
            f"p90 {f['p90_ms']} ms, p99 {f['p99_ms']} ms, max {f['max_ms']} ms"
        )
        cpu = f.get("cpu_ms_per_event") or {}
        if cpu:
            top = sorted(cpu.items(), key=lambda kv: -kv[1])[:4]
            lines.append(
                f"  CPU per event (the create included) {sum(cpu.values()):.1f} ms: "
                + ", ".join(f"{name} {ms:g}" for name, ms in top)
            )
    return "\n".join(lines)


def faults_table(faults: dict) -> str:
    """Per drill and stack: what the clients got, the recovery, the writes."""
    head = (
        f"{'drill':<16} {'stack':<12} {'failed':>9} {'recovery':>9} {'behind':>6} "
        f"{'lost':>4} {'unack':>5}  counter"
    )
    lines = [head, "-" * len(head)]
    for key, drill in faults.get("drills", {}).items():
        for stack, f in drill["stacks"].items():
            writes = f["writes"]
            lost = len(writes["posts"]["missing"]) + len(writes["comments"]["missing"])
            unack = writes["posts"]["unacknowledged"] + writes["comments"]["unacknowledged"]
            converged = writes["counter_converged_after_s"]
            recovered = "-" if f["recovery_s"] is None else f"{f['recovery_s']:.1f} s"
            line = (
                f"{key:<16} {stack:<12} {f['failed']:>4}/{f['requests']:<4} "
                f"{'never' if f['action'] and f['recovery_s'] is None else recovered:>9} "
                f"{max(f['counter_behind'].values(), default=0):>6} {lost:>4} {unack:>5}  "
                + (f"ok after {converged:.1f} s" if converged is not None else "NOT converged")
            )
            if f.get("not_sent"):
                line += f"  ({f['not_sent']} not sent: the client's pool was full)"
            if f.get("note"):
                line += f"  [{f['note']}]"
            lines.append(line)
    if faults.get("error"):
        lines.append(f"drills stopped by an error: {faults['error']}")
    lines.append(
        "failed: requests due from the fault on without a 2xx; recovery: restart -> first whole "
        "second of 2xx (1 s resolution); behind: most comments acknowledged but not yet in "
        "comment_count; lost: 201s not found afterwards; unack: written without a 201"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------- the goals

SPLIT = "stage4-async"  # the goals are about the split in async mode
READ_RATIO_MAX = 1.15
WRITE_P99_RATIO_MAX = 1.5
EVENT_RATE_PER_S = 100
EVENT_P99_MAX_MS = 50
MONOLITH_MIN_RPS = {"post detail": 2000, "post comments": 1300}


def _top(cpu_ms: dict[str, float], n: int = 3) -> str:
    top = sorted(((k, v) for k, v in cpu_ms.items() if v), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{name} {ms:.2f}" for name, ms in top)


def _goal(goal: str, target: str, measured, met: bool | None, in_the_way: str = "") -> dict:
    return {
        "goal": goal,
        "target": target,
        "measured": measured,
        "met": met,
        "in_the_way": "" if met else in_the_way,
    }


def _busy_cores(rate: float | None, cpu_ms: float) -> float:
    return round((rate or 0) * cpu_ms / 1000, 2)


def goals(summary: dict, ratio_table: dict, event_lag: dict, cores: int) -> list[dict]:
    """Each goal of the comparison against this run's figures: met or not and,
    when not, what stands in the way, in this run's numbers (CPU by component,
    the cores a rate keeps busy, the ceiling a CPU cost puts on throughput)."""
    mono, split = summary.get(BASELINE, {}), summary.get(SPLIT, {})
    split_ratios = ratio_table.get(SPLIT, {})
    unmeasured = "not measured in this run"
    found = []

    def waiting(endpoint: str) -> str:
        s, m = split[endpoint], mono[endpoint]
        rate, s_cpu, m_cpu = (
            s["fixed_rate_per_s"],
            s["cpu_ms_per_request_total"],
            m["cpu_ms_per_request_total"],
        )
        busy = _busy_cores(rate, s_cpu)
        text = (
            f"CPU per request {s_cpu:.2f} ms ({_top(s['cpu_ms_per_request'])}) against "
            f"{m_cpu:.2f} ({_top(m['cpu_ms_per_request'])}); at {rate:g}/s the split keeps "
            f"{busy} of {cores} cores busy, the monolith {_busy_cores(rate, m_cpu)}"
        )
        if busy >= cores or s["overloaded"]:
            return f"{text}: more than the machine has, so requests queue"
        return f"{text}: the busier the cores, the longer a request waits for one"

    def ratio_goal(endpoint: str, figure: str, label: str, limit: float, way) -> dict:
        goal, target = f"{endpoint} {label}, split / monolith", f"<= {limit}"
        measured = split_ratios.get(endpoint, {}).get(figure)
        if measured is None or endpoint not in mono:
            return _goal(goal, target, None, None, unmeasured)
        return _goal(goal, target, measured, measured <= limit, way(endpoint))

    def extra_cpu(endpoint: str) -> str:
        s, m = split[endpoint], mono[endpoint]
        more = s["cpu_ms_per_request_total"] - m["cpu_ms_per_request_total"]
        busy = {k: v for k, v in s["cpu_ms_per_request"].items() if v}
        return f"{more:.2f} ms more per request, over {len(busy)} processes ({_top(busy, 4)})"

    for endpoint in ("post detail", "post list"):
        found.append(ratio_goal(endpoint, "p99_ms", "p99", READ_RATIO_MAX, waiting))
        found.append(
            ratio_goal(
                endpoint, "cpu_ms_per_request_total", "CPU per request", READ_RATIO_MAX, extra_cpu
            )
        )
    found.append(ratio_goal("create comment", "p99_ms", "p99", WRITE_P99_RATIO_MAX, waiting))

    goal, target = f"event lag p99 at {EVENT_RATE_PER_S}/s (ms)", f"<= {EVENT_P99_MAX_MS}"
    lag = next((f for f in event_lag.values() if f.get("rate_per_s") == EVENT_RATE_PER_S), None)
    if lag is None:
        found.append(_goal(goal, target, None, None, f"{unmeasured} (--lag-rates)"))
    else:
        cpu = lag.get("cpu_ms_per_event") or {}
        total = sum(cpu.values())
        way = f"achieved {lag['achieved_per_s']}/s"
        if cpu:
            way = (
                f"{total:.1f} ms of CPU per event, the create included ({_top(cpu, 4)}): "
                f"{EVENT_RATE_PER_S}/s keeps {_busy_cores(EVENT_RATE_PER_S, total)} of "
                f"{cores} cores busy; {way}"
            )
        found.append(_goal(goal, target, lag["p99_ms"], lag["p99_ms"] <= EVENT_P99_MAX_MS, way))

    for endpoint, minimum in MONOLITH_MIN_RPS.items():
        goal, target, m = f"monolith {endpoint} requests/s", f">= {minimum}", mono.get(endpoint)
        if not m or not m["cpu_ms_per_request_total"]:
            found.append(_goal(goal, target, None, None, unmeasured))
            continue
        cpu = m["cpu_ms_per_request_total"]
        way = (
            f"{cpu:.2f} ms of CPU per request ({_top(m['cpu_ms_per_request'])}): {cores} cores "
            f"top out at {cores * 1000 / cpu:,.0f}/s before nginx and the load generator take "
            f"theirs; {minimum}/s needs <= {cores * 1000 / minimum:.2f} ms"
        )
        rps = m["requests_per_s"]
        found.append(_goal(goal, target, rps, rps is not None and rps >= minimum, way))
    return found


def goals_table(found: list[dict]) -> str:
    """The goals, one line each, with what stands in the way of a missed one."""
    lines = [f"{'goal':<44} {'target':>8} {'measured':>9}  met"]
    for g in found:
        measured = "-" if g["measured"] is None else f"{g['measured']:g}"
        met = {True: "yes", False: "NO", None: "-"}[g["met"]]
        lines.append(f"{g['goal']:<44} {g['target']:>8} {measured:>9}  {met}")
        if g["in_the_way"]:
            lines.append(f"    in the way: {g['in_the_way']}")
    lines.append(
        "the relay's own throughput goal (>= 2000 events/s with confirms) is measured by "
        "make bench-relay, without the stacks"
    )
    return "\n".join(lines)


def write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


def html_page(document: dict, charts: dict[str, bytes]) -> str:
    """The report as one HTML file: ``charts`` (stem -> PNG) inlined, the
    tables, the explanations, the method."""

    def image(stem: str, alt: str) -> str:
        if stem not in charts:
            return ""
        data = base64.b64encode(charts[stem]).decode("ascii")
        return f'<img alt="{alt}" src="data:image/png;base64,{data}">'

    footprint_rows = "".join(
        f"<tr><td>{html.escape(stack)}</td><td>{f['own_processes']}</td>"
        f"<td>{len(f['own_listening_ports'])}</td><td>{f['total_pss_mib']}</td>"
        f"<td>{f['total_rss_mib']}</td></tr>"
        for stack, f in document["footprint"].items()
    )
    sources = "".join(
        f"<li><b>{html.escape(e)}</b>: {html.escape(s)}"
        + (
            f" <i>({SECANTUS_NOTE})</i>"
            if e in SECANTUS_ENDPOINTS and on_secantus(document)
            else ""
        )
        + "</li>"
        for e, s in explanations(document.get("hops", {})).items()
    )
    extra = ""
    if document.get("goals"):
        extra += f"<h2>Goals</h2><pre>{html.escape(goals_table(document['goals']))}</pre>"
    if document.get("hops"):
        extra += f"<h2>Network hops</h2><pre>{html.escape(hops_table(document['hops']))}</pre>"
    if document.get("event_lag"):
        extra += f"<h2>Event lag</h2><pre>{html.escape(lag_lines(document['event_lag']))}</pre>"
    if document.get("faults", {}).get("drills") or document.get("faults", {}).get("error"):
        extra += (
            "<h2>Fault drills</h2><p>Each stack under the same steady load; per second, the "
            "requests by status (bars) and the p99 latency (line); shaded: from the fault to "
            "the restart; dashed: the first whole second of 2xx.</p>"
            + image("faults", "fault drills")
            + f"<pre>{html.escape(faults_table(document['faults']))}</pre>"
        )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>make compare {html.escape(document["measured_at"])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}img{{max-width:100%}}
pre{{background:#f4f4f4;padding:8px;overflow:auto}}td,th{{padding:2px 8px}}</style></head><body>
<h1>What the split costs: stage 4 vs stage 0</h1>
<p>{html.escape(document["settings"]["note"])}</p>
<p>Commit {html.escape(str(document["commit"]))}, measured {html.escape(document["measured_at"])},
{html.escape(str(document["machine"]["cpu_model"]))}, {document["machine"]["cores"]} cores.</p>
{image("ratios", "ratios")}{image("cpu", "cpu by component")}
<h2>Table (medians over rounds)</h2><pre>{html.escape(document["table"])}</pre>
<h2>Footprint</h2><table border="1"><tr><th>stack</th><th>own processes</th>
<th>own listening ports</th><th>PSS MiB</th><th>RSS MiB</th></tr>{footprint_rows}</table>
<p>PSS/RSS include the PostgreSQL backends of the stack's databases and, for stage 4, the
RabbitMQ server (its own node when the run has one, else the shared one).</p>
<h2>Where the cost comes from</h2><ul>{sources}</ul>
{extra}
<h2>Method</h2><pre>{html.escape(json.dumps(document["settings"], indent=2))}</pre>
</body></html>
"""
