"""`make compare`'s arithmetic on recorded tool output (bench/compare_*.py):
httperf's histogram to percentiles, CPU deltas per process, medians over
rounds, ratios split ÷ monolith, the table and the self-contained HTML; the
fault drills' status mix per second, recovery time, counters and lost writes;
hops counted from recorded log lines; event lag percentiles; the drills'
steady load against a local server. No stack: the speed figures live in the
benchmark."""

import importlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
RESULTS = BENCH_DIR / "results"

# httperf 0.9.0 -v -v, 60 connections at 50/s against a local server (recorded).
HTTPERF_OUTPUT = """\
httperf --verbose --timeout=5 --client=0/1 --server=127.0.0.1 --port=18777 --uri=/ --rate=50 \
--send-buffer=4096 --recv-buffer=16384 --num-conns=60 --num-calls=1
Maximum connect burst length: 1

Connection lifetime histogram (time in ms):
             :
             1.5 25
             2.5 2
             3.5 3
             4.5 2
             5.5 28

Total: connections 60 requests 60 replies 60 test-duration 1.182 s

Connection rate: 50.7 conn/s (19.7 ms/conn, <=1 concurrent connections)
Connection time [ms]: min 1.1 avg 3.4 max 5.9 median 3.5 stddev 1.9
Connection time [ms]: connect 0.0
Connection length [replies/conn]: 1.000

Request rate: 50.7 req/s (19.7 ms/req)
Request size [B]: 62.0

Reply rate [replies/s]: min 0.0 avg 0.0 max 0.0 stddev 0.0 (0 samples)
Reply time [ms]: response 3.4 transfer 0.0
Reply size [B]: header 156.0 content 3534.0 footer 0.0 (total 3690.0)
Reply status: 1xx=0 2xx=57 3xx=0 4xx=0 5xx=1

CPU time [s]: user 0.14 system 1.00 (user 11.8% system 84.2% total 96.0%)
Net I/O: 186.0 KB/s (1.5*10^6 bps)

Errors: total 2 client-timo 2 socket-timo 0 connrefused 0 connreset 0
Errors: fd-unavail 0 addrunavail 0 ftab-full 0 other 0
"""


@pytest.fixture(scope="module")
def bench():
    """bench/'s modules, imported as `python bench/compare.py` imports them
    (bench/ first on sys.path); forgotten again afterwards."""
    sys.path.insert(0, str(BENCH_DIR))
    try:
        names = (
            "common",
            "compare_tools",
            "compare_procs",
            "compare_report",
            "compare_figures",
            "compare_charts",
            "compare_faults",
        )
        yield SimpleNamespace(**{name: importlib.import_module(name) for name in names})
    finally:
        sys.path.remove(str(BENCH_DIR))
        for name, module in list(sys.modules.items()):
            if Path(getattr(module, "__file__", None) or "/").parent == BENCH_DIR:
                del sys.modules[name]


def test_httperf_histogram_gives_percentiles_as_bin_upper_edges(bench):
    result = bench.compare_tools.parse_httperf(HTTPERF_OUTPUT, rate=50)
    assert result.histogram == {1.0: 25, 2.0: 2, 3.0: 3, 4.0: 2, 5.0: 28}
    # 25 of 60 in the 1-2 ms bin; the 30th (p50) in 3-4 ms; p90 and p99 in 5-6 ms.
    assert result.latency_ms["p50"] == 4.0
    assert result.latency_ms["p90"] == 6.0
    assert result.latency_ms["p99"] == 6.0
    assert result.latency_ms["avg"] == 3.4
    assert result.request_rate_per_s == 50.7
    assert result.status["5xx"] == 1
    # Two timeouts and one 5xx: none of them a success.
    assert result.failed == 3


def test_httperf_percentile_of_an_exact_boundary(bench):
    bins = {0.0: 50, 9.0: 50}
    assert bench.compare_tools.histogram_percentile(bins, 50) == 1.0
    assert bench.compare_tools.histogram_percentile(bins, 51) == 10.0


def test_unparsable_httperf_output_stops_the_run(bench):
    with pytest.raises(bench.common.BenchError, match="httperf"):
        bench.compare_tools.parse_httperf("httperf: connection refused\n", rate=10)


def test_httperf_post_goes_through_a_session_file(bench, tmp_path):
    tools = bench.compare_tools
    session = tools.httperf_session_file(tmp_path, "p", "/api/posts/", '{"title": "it\'s"}')
    assert session.read_text() == '/api/posts/ method=POST contents=\'{"title": "it\\\'s"}\'\n'
    command = tools.httperf_command(
        "http://127.0.0.1:8080/api/posts/", rate=20, duration_s=3, session_file=session
    )
    assert command[command.index("--wsesslog") + 1] == f"60,0,{session}"
    assert "--uri" not in command
    get = tools.httperf_command("http://127.0.0.1:8080/api/posts/1/", rate=20, duration_s=3)
    assert get[get.index("--uri") + 1] == "/api/posts/1/"
    assert get[get.index("--num-conns") + 1] == "60"


def test_wrk_post_script_escapes_the_body(bench, tmp_path):
    script = bench.compare_tools.wrk_post_script(tmp_path, "c", '{"body": "a \\"b\\""}')
    text = script.read_text()
    assert 'wrk.method = "POST"' in text
    assert 'wrk.body = "{\\"body\\": \\"a \\\\\\"b\\\\\\"\\"}"' in text


def test_a_missing_tool_names_its_package(bench):
    def which(tool):
        return None if tool in ("wrk", "httperf") else f"/usr/bin/{tool}"

    with pytest.raises(bench.common.BenchError, match="apt-get install -y wrk httperf"):
        bench.compare_tools.check_tools(which)


def sample(bench, cpu, ports=()):
    return bench.compare_procs.Sample(
        cpu, 1024 * len(cpu), 512 * len(cpu), len(cpu), frozenset(ports)
    )


def test_cpu_deltas_count_new_processes_whole_and_never_go_negative(bench):
    before = {"web": sample(bench, {10: 5.0, 11: 2.0}), "pg": sample(bench, {20: 9.0})}
    # 11 ended; 12 started and used 0.5 s; 20 replaced by 21 (a new backend).
    after = {"web": sample(bench, {10: 5.25, 12: 0.5}), "pg": sample(bench, {21: 0.125})}
    assert bench.compare_procs.cpu_deltas_s(before, after) == {"web": 0.75, "pg": 0.125}


def test_footprint_keeps_shared_servers_out_of_the_stacks_own_counts(bench):
    samples = {
        "posts": sample(bench, {1: 0, 2: 0, 3: 0}, ports=[8001]),
        "gateway": sample(bench, {4: 0, 5: 0}, ports=[8000]),
        "postgresql (posts)": sample(bench, {6: 0}),
        "rabbitmq (shared)": sample(bench, {7: 0}, ports=[5672]),
    }
    result = bench.compare_procs.footprint(samples)
    assert result["own_processes"] == 5
    assert result["own_listening_ports"] == [8000, 8001]
    assert result["total_rss_mib"] == 7.0
    assert result["total_pss_mib"] == 3.5


def rounds_for(rps, p99s, cpu):
    return {
        "saturation": [
            {
                "requests_per_s": r,
                "latency_ms": {"p99": 10.0},
                "errors": 0,
                "cpu_ms_per_request": cpu,
            }
            for r in rps
        ],
        "fixed_rate": [
            {"rate_per_s": 100.0, "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": p}, "failed": 0}
            for p in p99s
        ],
    }


def test_medians_over_rounds_and_ratios_split_over_monolith(bench):
    report = bench.compare_report
    recorded = {
        "stage0": {"post detail": rounds_for([1000, 800, 900], [2.0, 3.0, 4.0], {"monolith": 2.0})},
        "stage4-async": {
            "post detail": rounds_for(
                [450, 500, 400], [5.0, 6.0, 4.0], {"posts": 2.0, "gateway": 0.5}
            )
        },
    }
    summary = report.summarize(recorded)
    assert summary["stage0"]["post detail"]["requests_per_s"] == 900
    assert summary["stage4-async"]["post detail"]["p99_ms"] == 5.0
    assert summary["stage4-async"]["post detail"]["cpu_ms_per_request_total"] == 2.5
    assert summary["stage4-async"]["post detail"]["overloaded"] is False
    ratio = report.ratios(summary)["stage4-async"]["post detail"]
    assert ratio["requests_per_s"] == 0.5
    assert ratio["p99_ms"] == round(5.0 / 3.0, 2)
    assert ratio["cpu_ms_per_request_total"] == 1.25
    assert "stage0" not in report.ratios(summary)


def test_a_rate_above_a_stacks_saturation_is_flagged(bench):
    summary = bench.compare_report.summarize(
        {"stage0": {"create post": rounds_for([90], [500.0], {"monolith": 1.0})}}
    )
    assert summary["stage0"]["create post"]["overloaded"] is True


def test_table_marks_secantus_endpoints_and_html_is_self_contained(bench):
    report = bench.compare_report
    recorded = {
        stack: {
            e: rounds_for([1000 if stack == "stage0" else 500], [2.0], {"x": 1.0})
            for e in ("post detail", "post comments")
        }
        for stack in ("stage0", "stage4-async")
    }
    summary = report.summarize(recorded)
    ratio_table = report.ratios(summary)
    text = report.table(summary, ratio_table)
    comments_row = next(
        line for line in text.splitlines() if line.startswith("post comments   stage4")
    )
    assert "0.50x" in comments_row
    assert comments_row.endswith("*")
    assert report.SECANTUS_NOTE in text
    charts = bench.compare_charts.charts({"summary": summary, "ratios": ratio_table})
    assert set(charts) == {"ratios", "cpu"}
    assert all(png.startswith(b"\x89PNG") for png in charts.values())
    page = report.html_page(
        {
            "summary": summary,
            "ratios": ratio_table,
            "table": text,
            "measured_at": "2026-11-30T00:00:00+00:00",
            "commit": "abc",
            "machine": {"cpu_model": "test", "cores": 4},
            "settings": {"note": "recorded"},
            "footprint": {
                s: {"own_processes": 3, "own_listening_ports": [1], "total_pss_mib": 1.0,
                    "total_rss_mib": 2.0}
                for s in summary
            },
        },
        charts,
    )  # fmt: skip
    assert page.count('src="data:image/png;base64,') == 2
    assert "http://" not in page
    assert "https://" not in page


def test_goals_say_met_or_what_stands_in_the_way_in_the_runs_numbers(bench):
    report = bench.compare_report
    recorded = {
        "stage0": {
            "post detail": rounds_for([1000], [10.0], {"monolith": 1.5, "postgresql": 0.5}),
            "create comment": rounds_for([500], [10.0], {"monolith": 2.0}),
            "post comments": rounds_for([800], [10.0], {"monolith": 2.5}),
        },
        "stage4-async": {
            # p99 1.1x (met); CPU 1.25x (missed)
            "post detail": rounds_for([800], [11.0], {"posts": 2.0, "gateway": 0.5}),
            # saturates at 90/s, below the fixed rate of 100/s
            "create comment": rounds_for([90], [40.0], {"mongodb": 6.0, "comments": 4.0}),
        },
    }
    summary = report.summarize(recorded)
    lag = {
        "stage4-async at 50/s": {"rate_per_s": 50.0, "p99_ms": 20.0, "achieved_per_s": 50.0},
        "stage4-async at 100/s": {
            "rate_per_s": 100.0,
            "p99_ms": 120.0,
            "achieved_per_s": 97.5,
            "cpu_ms_per_event": {"mongodb": 7.0, "comments": 4.0, "posts-consumer": 3.0},
        },
    }
    found = {g["goal"]: g for g in report.goals(summary, report.ratios(summary), lag, cores=2)}

    detail_p99 = found["post detail p99, split / monolith"]
    assert (detail_p99["measured"], detail_p99["met"], detail_p99["in_the_way"]) == (1.1, True, "")
    detail_cpu = found["post detail CPU per request, split / monolith"]
    assert (detail_cpu["measured"], detail_cpu["met"]) == (1.25, False)
    assert detail_cpu["in_the_way"].startswith("0.50 ms more per request, over 2 processes")
    # post list was not measured: no verdict either way
    assert found["post list p99, split / monolith"]["met"] is None
    create = found["create comment p99, split / monolith"]
    assert (create["measured"], create["met"]) == (4.0, False)
    # 100/s x 10 ms = 1 core; the rate is above its saturation (90/s)
    assert "at 100/s the split keeps 1.0 of 2 cores busy, the monolith 0.2" in create["in_the_way"]
    assert create["in_the_way"].endswith("more than the machine has, so requests queue")
    events = found["event lag p99 at 100/s (ms)"]
    assert (events["measured"], events["met"]) == (120.0, False)
    assert events["in_the_way"] == (
        "14.0 ms of CPU per event, the create included (mongodb 7.00, comments 4.00, "
        "posts-consumer 3.00): 100/s keeps 1.4 of 2 cores busy; achieved 97.5/s"
    )
    detail = found["monolith post detail requests/s"]
    assert (detail["measured"], detail["met"]) == (1000, False)
    # 2 ms of CPU per request on 2 cores: 1,000/s at most
    assert "2 cores top out at 1,000/s" in detail["in_the_way"]
    assert detail["in_the_way"].endswith("2000/s needs <= 1.00 ms")
    assert found["monolith post comments requests/s"]["met"] is False
    text = report.goals_table(list(found.values()))
    assert "post detail p99, split / monolith" in text
    assert " yes" in text
    assert text.count("in the way:") == sum(1 for g in found.values() if g["in_the_way"])


def test_a_recorded_runs_report_is_written_again_with_its_goals(bench, tmp_path):
    """`compare.py --report FOLDER`: the committed run's JSON, nothing measured."""
    recorded = max(RESULTS.glob("compare-*/compare.json"))
    folder = tmp_path / recorded.parent.name
    folder.mkdir()
    (folder / "compare.json").write_bytes(recorded.read_bytes())
    sys.path.insert(0, str(BENCH_DIR))
    try:
        compare = importlib.import_module("compare")
        assert compare.main(["--report", str(folder)]) == 0
        assert compare.main(["--report", str(tmp_path / "nothing-here")]) == 1
    finally:
        sys.path.remove(str(BENCH_DIR))
    doc = json.loads((folder / "compare.json").read_text())
    assert len(doc["goals"]) == 8  # reads 4, writes 1, events 1, monolith 2
    assert {g["met"] for g in doc["goals"]} <= {True, False, None}
    assert all(g["in_the_way"] for g in doc["goals"] if g["met"] is False)
    page = (folder / "compare.html").read_text()
    assert "<h2>Goals</h2>" in page
    assert {p.name for p in folder.glob("*.png")} >= {"ratios.png", "cpu.png"}


# ---------------------------------------------------------------- drills, hops, lag


def drill_records(spec):
    """Records from lines "at_s endpoint status latency_ms" (status - : no reply)."""
    records = []
    for line in spec.strip().splitlines():
        at, endpoint, status, latency = line.split()
        records.append(
            {
                "at_s": float(at),
                "endpoint": endpoint.replace("_", " "),
                "status": None if status == "-" else int(status),
                "latency_ms": float(latency),
            }
        )
    return records


# A posts-kill drill as stage 4 recorded it, thinned to 2 requests a second:
# killed at 2.0, restart begun at 4.6; nginx answers 503 meanwhile, the
# comments endpoints keep serving; the first request after the restart waits
# for the new workers.
POSTS_KILLED = drill_records("""
0.0 post_detail 200 9.1
0.5 post_comments 200 7.4
1.0 post_list 200 12.0
1.5 create_comment 201 11.3
2.0 post_detail 503 4.5
2.5 post_comments 200 6.1
3.0 post_list 503 4.7
3.5 create_comment 201 10.2
4.0 create_post 503 4.4
4.5 post_detail 503 5.0
4.7 post_list - 5000.0
5.0 post_comments 200 8.0
5.5 post_detail 200 963.0
6.0 post_list 200 12.0
6.5 create_post 201 15.5
""")


def test_per_second_status_mix_and_latency(bench):
    rows = bench.compare_figures.per_second(POSTS_KILLED, seconds=8)
    assert [r["second"] for r in rows] == list(range(8))
    assert (rows[2]["2xx"], rows[2]["5xx"]) == (1, 1)
    assert (rows[4]["2xx"], rows[4]["5xx"], rows[4]["error"]) == (0, 2, 1)
    # Nearest rank over the second's requests: p50 of 3 is the 2nd, p99 the largest.
    assert (rows[4]["p50_ms"], rows[4]["p99_ms"], rows[4]["max_ms"]) == (5.0, 5000.0, 5000.0)
    assert rows[5]["p99_ms"] == 963.0
    # Seconds without requests are rows of zeros, so the chart has no gaps.
    assert rows[7]["2xx"] == 0
    assert rows[7]["p50_ms"] is None


def test_recovery_is_the_first_whole_second_of_2xx_after_the_restart(bench):
    figures = bench.compare_figures
    rows = figures.per_second(POSTS_KILLED)
    result = figures.recovery(rows, fault_at_s=2.0, up_at_s=4.6)
    # 2.0, 3.0, 4.0, 4.5 (503) and 4.7 (no reply) failed; second 5 is the first clean one.
    assert result["failed"] == 5
    assert result["recovered_at_s"] == 5
    assert result["recovery_s"] == 0.4
    assert result["failed_after_recovery"] == 0
    # A relapse after the first clean second is counted, not hidden.
    relapse = [*rows, dict(rows[0], second=8, **{"2xx": 0, "5xx": 2})]
    assert figures.recovery(relapse, 2.0, 4.6)["failed_after_recovery"] == 2
    # Never clean again: no recovery time at all.
    assert figures.recovery(rows[:5], 2.0, 4.6)["recovery_s"] is None
    # A fault the clients never saw (a paused consumer): 0, not "never".
    healthy = figures.per_second([r for r in POSTS_KILLED if r["status"] in (200, 201)])
    assert figures.recovery(healthy, 2.0, 4.6) == {
        "failed": 0, "recovered_at_s": None, "recovery_s": 0.0, "failed_after_recovery": 0,
    }  # fmt: skip


def test_by_phase_shows_which_endpoints_a_fault_takes_down(bench):
    phases = bench.compare_figures.by_phase(POSTS_KILLED, 2.0, 4.6)
    assert phases["down"]["post comments"] == {"2xx": 1}
    assert phases["down"]["post detail"] == {"5xx": 2}
    assert phases["after"]["post list"] == {"error": 1, "2xx": 1}
    assert phases["before"]["create comment"] == {"2xx": 1}


def test_counter_behind_counts_acknowledged_comments_not_yet_counted(bench):
    records = drill_records("""
0.0 post_detail 200 5.0
0.2 create_comment 201 10.0
0.4 create_comment 201 10.0
1.0 post_detail 200 5.0
1.5 create_comment 201 10.0
2.0 post_detail 200 5.0
2.5 post_detail 200 5.0
""")
    counts = iter([1, 1, 2, 4])  # the consumer paused after the first comment, then caught up
    for record in records:
        if record["endpoint"] == "post detail":
            record["comment_count"] = next(counts)
    behind = bench.compare_figures.counter_behind(records, counted_before=1)
    # 1 s: 1 + 2 acknowledged, 1 counted; 2 s: 1 + 3 vs 2, then 4 vs 4.
    assert behind == {0: 0, 1: 2, 2: 2}


def test_writes_check_finds_lost_and_unacknowledged_writes(bench):
    result = bench.compare_figures.writes_check(["a", "b", "c"], ["a", "c", "x"])
    assert result == {"acknowledged": 3, "found": 2, "missing": ["b"], "unacknowledged": 1}


# Recorded with stage 4 in sync mode behind nginx (tests/support/harness.py):
# the gateway's access log, the posts service's and the comments service's.
# The post list asks the comments service for its counts; the comment create
# asks the posts service whether the post exists.
GATEWAY_LOG = """\
127.0.0.1 [30/Nov/2026:20:30:04 +0000] "GET /api/posts/ HTTP/1.1" 200 up=127.0.0.1:38289 \
up_status=200 rt=0.105 rid=rec-list-1
127.0.0.1 [30/Nov/2026:20:30:04 +0000] "POST /api/posts/d9cffb64-cd23-4e7c-8e85-8d29281b8eab/\
comments/ HTTP/1.1" 201 up=127.0.0.1:56461 up_status=201 rt=0.014 rid=rec-comment-1
127.0.0.1 [30/Nov/2026:20:30:05 +0000] "GET /api/posts/ HTTP/1.1" 200 up=127.0.0.1:38289 \
up_status=200 rt=0.011 rid=rec-list-10
"""
POSTS_LOG = """\
{"ts": "2026-11-30T20:30:04.080+00:00", "level": "INFO", "logger": "blog.access", "msg": \
"request", "request_id": "rec-list-1", "method": "GET", "path": "/api/posts/", "status": 200, \
"duration_ms": 103.07, "bytes": 178, "remote_addr": "127.0.0.1"}
{"ts": "2026-11-30T20:30:04.091+00:00", "level": "INFO", "logger": "blog.access", "msg": \
"request", "request_id": "rec-comment-1", "method": "GET", "path": \
"/internal/posts/d9cffb64-cd23-4e7c-8e85-8d29281b8eab/", "status": 200, "duration_ms": 3.71, \
"bytes": 85, "remote_addr": "127.0.0.1"}
[2026-11-30 20:30:01 +0000] [123] [INFO] Booting worker with pid: 123
"""
COMMENTS_LOG = """\
{"ts": "2026-11-30T20:30:04.078+00:00", "level": "INFO", "logger": "blog.access", "msg": \
"request", "request_id": "rec-list-1", "method": "POST", "path": "/internal/comment-counts/", \
"status": 200, "duration_ms": 19.94, "bytes": 53, "remote_addr": "127.0.0.1"}
{"ts": "2026-11-30T20:30:04.097+00:00", "level": "INFO", "logger": "blog.access", "msg": \
"request", "request_id": "rec-comment-1", "method": "POST", "path": \
"/api/posts/d9cffb64-cd23-4e7c-8e85-8d29281b8eab/comments/", "status": 201, "duration_ms": \
13.27, "bytes": 145, "remote_addr": "127.0.0.1"}
"""


def test_hops_are_counted_from_the_request_ids_in_each_components_log(bench):
    figures = bench.compare_figures
    logs = {
        "comments": COMMENTS_LOG.splitlines(),
        "posts": POSTS_LOG.splitlines(),
        "gateway": GATEWAY_LOG.splitlines(),
        "posts-relay": ['{"event":"relay.batch","sent":1}'],
    }
    listed = figures.hop_counts(logs, ["rec-list-1"])
    # rec-list-10 is another request: an id is matched whole, not as a prefix.
    assert listed["lines_per_request"] == {"gateway": 1.0, "comments": 1.0, "posts": 1.0}
    assert listed["hops"] == 3.0
    assert listed["components"][0] == "gateway"
    created = figures.hop_counts(logs, ["rec-comment-1", "rec-missing"])
    # One request reached three components, the other none: 1.5 on average, one unlogged.
    assert created["hops"] == 1.5
    assert created["unlogged"] == 1
    assert figures.request_ids_in("not json {") == []


def test_lag_percentiles_are_nearest_rank(bench):
    lags = [float(ms) for ms in range(1, 101)]  # 1..100 ms
    summary = bench.compare_figures.lag_summary(lags, sent=102)
    assert (summary["p50_ms"], summary["p90_ms"], summary["p99_ms"]) == (50.0, 90.0, 99.0)
    assert (summary["counted"], summary["events"], summary["max_ms"]) == (100, 102, 100.0)
    assert summary["mean_ms"] == 50.5
    assert bench.compare_figures.lag_summary([], sent=5)["p99_ms"] is None


def drill_figures(bench, records, fault_at, up_at, missing=()):
    figures = bench.compare_figures
    rows = figures.per_second(records)
    return {
        "action": "SIGKILL to posts's process group, then started again" if up_at else None,
        "note": None if up_at else "no equivalent: the monolith serves comments in its own process",
        "fault_at_s": fault_at,
        "up_at_s": up_at,
        "ready_at_s": up_at and up_at + 1.2,
        "requests": len(records),
        "not_sent": 0,
        **figures.recovery(rows, fault_at, up_at),
        "per_second": rows,
        "counter_behind": {"3": 2},
        "by_phase": figures.by_phase(records, fault_at, up_at),
        "writes": {
            "posts": figures.writes_check(["p1", *missing], ["p1"]),
            "comments": figures.writes_check(["c1"], ["c1", "c2"]),
            "comment_count": 2,
            "comments_listed": 2,
            "counter_converged_after_s": 0.4,
        },
    }  # fmt: skip


def test_faults_table_explanations_and_charts(bench):
    report = bench.compare_report
    healthy = [r for r in POSTS_KILLED if r["status"] in (200, 201)]
    faults = {
        "settings": {"rate": 2},
        "drills": {
            "posts-kill": {
                "title": "posts service killed",
                "stacks": {
                    "stage0": drill_figures(bench, healthy, 2.0, None),
                    "stage4-async": drill_figures(bench, POSTS_KILLED, 2.0, 4.6, missing=["p2"]),
                },
            }
        },
    }
    text = report.faults_table(faults)
    row = next(line for line in text.splitlines() if line.startswith("posts-kill       stage4"))
    assert row.split()[2:8] == ["5/15", "0.4", "s", "2", "1", "1"]
    assert "[no equivalent" in next(line for line in text.splitlines() if " stage0 " in line)
    hops = {
        "stage0": {"post list": {"hops": 1.0, "components": ["monolith"]}},
        "stage4-sync": {"post list": {"hops": 3.0, "components": ["gateway", "posts", "comments"]}},
    }
    explained = report.explanations(hops)["post list"]
    assert explained.startswith(
        "Hops measured: stage0 1 hop (monolith); stage4-sync 3 hops (gateway + posts + comments)."
    )
    assert "3 hops (gateway + posts + comments)" in report.hops_table(hops)
    charts = bench.compare_charts.charts({"faults": faults})
    assert list(charts) == ["faults"]
    assert charts["faults"].startswith(b"\x89PNG")
    page = report.html_page(
        {
            "measured_at": "2026-11-30T00:00:00+00:00", "commit": "abc", "table": "",
            "machine": {"cpu_model": "test", "cores": 2}, "settings": {"note": "recorded"},
            "footprint": {}, "hops": hops, "faults": faults,
            "event_lag": {"stage4-async at 20/s": {"events": 10, "counted": 10, "rate_per_s": 20,
                                           "achieved_per_s": 19.9, "p50_ms": 80.0, "p90_ms": 110.0,
                                           "p99_ms": 140.0, "max_ms": 140.0,
                                           "cpu_ms_per_event": {"comments": 4.5, "mongodb": 7.9,
                                                                "gateway": 0.3, "posts": 0.02,
                                                                "rabbitmq": 1.0}}},
        },
        charts,
    )  # fmt: skip
    assert page.count('src="data:image/png;base64,') == 1
    assert "stage4-async at 20/s: 10/10 counted (achieved 19.9/s)" in page
    # The four heaviest components, of a total over all of them.
    assert (
        "CPU per event (the create included) 13.7 ms: mongodb 7.9, comments 4.5, rabbitmq 1, "
        "gateway 0.3</pre>" in page
    )
    assert "Hops measured: stage0 1 hop (monolith)" in page


@pytest.fixture
def local_server():
    """A local HTTP server: 201 with the request id as id and the time as
    created_at (ms, truncated, as the comments service stamps it) for a
    POST, 503 for /down, an answer after 0.4 s for /slow..., else 200 with
    a comment_count."""
    import http.server
    import json
    import threading
    import time
    from datetime import UTC, datetime

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/slow":
                time.sleep(0.4)
            self._answer(503 if self.path == "/down" else 200, {"comment_count": 7})

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            now = datetime.now(UTC)
            created_at = now.replace(microsecond=now.microsecond // 1000 * 1000)
            if self.path.startswith("/slow"):
                time.sleep(0.4)  # stamped, then answered late
            self._answer(
                201,
                {
                    "id": self.headers["X-Request-ID"],
                    "created_at": created_at.isoformat().replace("+00:00", "Z"),
                },
            )

        def _answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_steady_load_records_every_request_when_it_was_due(bench, local_server):
    import time

    load_module = importlib.import_module("compare_load")
    calls = [
        load_module.Call("post detail", "GET", "/"),
        load_module.Call("post list", "GET", "/down"),
        load_module.Call("create comment", "POST", "/", {"body": "x"}),
    ]
    load = load_module.SteadyLoad(local_server, calls, 40, label="t", workers=8)
    load.start(time.monotonic())
    time.sleep(0.5)
    assert load.stop() == 0
    records = sorted(load.records, key=lambda r: r["at_s"])
    assert len(records) == load.scheduled >= 6
    assert [r["at_s"] for r in records] == [n / 40 for n in range(len(records))]
    by_endpoint = {r["endpoint"]: r for r in records}
    assert by_endpoint["post detail"]["status"] == 200
    assert by_endpoint["post detail"]["comment_count"] == 7
    assert by_endpoint["post list"]["status"] == 503
    assert by_endpoint["create comment"]["id"].startswith("t-")
    assert all(r["latency_ms"] > 0 for r in records)


def test_requests_a_full_pool_never_sent_are_failures_when_they_were_due(bench, local_server):
    import time

    load_module = importlib.import_module("compare_load")
    load = load_module.SteadyLoad(
        local_server, [load_module.Call("post list", "GET", "/slow")], 20, label="t", workers=1
    )
    load.start(time.monotonic())
    time.sleep(0.5)
    # One thread, 0.4 s a request, 20 due a second: most wait, and are dropped.
    dropped = load.stop()
    records = sorted(load.records, key=lambda r: r["at_s"])
    assert len(records) == load.scheduled
    not_sent = [r for r in records if r.get("error") == "not sent"]
    assert len(not_sent) == dropped >= 3
    assert all(r["status"] is None for r in not_sent)
    # Each at the second it was due, its wait counted: a second of failures, not a gap.
    assert [r["at_s"] for r in records] == [n / 20 for n in range(len(records))]
    assert all(r["latency_ms"] > 0 for r in not_sent)
    rows = bench.compare_figures.per_second(records)
    assert rows[0]["error"] == dropped


def test_a_stack_that_does_not_come_back_is_reported_not_counted_as_lost(bench):
    """A drill whose stack never answers again: its writes are neither found
    nor lost, the table says why, and the next drills still run."""
    records = [
        {"endpoint": "create post", "id": "p1"},
        {"endpoint": "create comment", "id": "c1"},
        {"endpoint": "create comment", "id": None},
        {"endpoint": "post list"},
    ]
    writes = bench.compare_faults.unverified_writes(records, "GET /api/posts/x/: still 504")
    assert writes["posts"] == {"acknowledged": 1, "found": None, "missing": [], "unacknowledged": 0}
    assert writes["comments"]["acknowledged"] == 1
    assert writes["counter_converged_after_s"] is None
    healthy = [r for r in POSTS_KILLED if r["status"] in (200, 201)]
    figures = drill_figures(bench, healthy, 2.0, 4.6)
    figures.update(writes=writes, note="writes not verified: still 504")
    text = bench.compare_report.faults_table(
        {"drills": {"posts-kill": {"title": "t", "stacks": {"stage4-sync": figures}}}}
    )
    row = next(line for line in text.splitlines() if line.startswith("posts-kill"))
    assert "NOT converged" in row
    assert "writes not verified: still 504" in row
    assert row.split()[6:8] == ["0", "0"]  # lost, unacknowledged: not counted


def test_the_kth_comment_written_is_paired_with_the_count_reaching_k(bench):
    """Events counted out of order (several writes in flight): the lag of the
    k-th comment written is the first read that counted k, past what was
    there first."""
    events = importlib.import_module("events")
    committed = [10.0, 10.1, 10.3]  # sorted times the comments were written
    first_seen = {1: 9.0, 2: 10.05, 3: 10.25, 4: 10.3}  # count 1: the comment before
    lags = events.lags_ms(committed, first_seen, offset=1)
    assert [round(lag, 6) for lag in lags] == [50.0, 150.0, 0.0]
    # A count never reached: that write is not counted (the summary says how many were).
    assert len(events.lags_ms(committed, {1: 9.0, 2: 10.05}, offset=1)) == 1


def test_a_created_at_is_put_on_the_monotonic_clock(bench):
    import time

    events = importlib.import_module("events")
    earlier = events.written_at("2026-12-01T08:55:20.470Z")
    assert events.written_at("2026-12-01T08:55:20.720+00:00") - earlier == pytest.approx(0.25)
    # Now, in the wall clock's terms, is now on the monotonic clock.
    from datetime import UTC, datetime

    assert events.written_at(datetime.now(UTC).isoformat()) == pytest.approx(
        time.monotonic(), abs=0.05
    )


def test_a_write_is_timed_by_its_created_at_not_by_its_201(bench, local_server):
    import time

    import requests

    events = importlib.import_module("events")
    sent = time.monotonic()
    written = events.write(requests.Session(), f"{local_server}/slow/comments/", 1)
    answered = time.monotonic()
    assert answered - sent >= 0.4
    assert sent - 0.002 <= written <= sent + 0.2  # stamped on arrival, not 0.4 s later


def test_open_loop_writes_send_each_when_due_and_return_when_written_in_order(bench, local_server):
    import time

    events = importlib.import_module("events")
    seen: list[int] = []
    started = time.monotonic()
    committed, took = events.open_loop_writes(
        f"{local_server}/comments/", 50.0, 20, writers=4, progress=seen.append
    )
    assert len(committed) == 20
    assert committed == sorted(committed)
    # Times on the monotonic clock, within the run (created_at truncates to the ms).
    assert started - 0.002 <= committed[0]
    assert committed[-1] <= time.monotonic()
    assert took >= 19 / 50  # the last was not sent before it was due
    assert seen == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
