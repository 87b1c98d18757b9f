"""`make compare`'s arithmetic on recorded tool output (bench/compare_*.py):
httperf's histogram to percentiles, CPU deltas per process, medians over
rounds, ratios split ÷ monolith, the table and the self-contained HTML.
No load, no stack: the speed figures live in the benchmark."""

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"

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
        names = ("common", "compare_tools", "compare_procs", "compare_report")
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
        }
    )  # fmt: skip
    assert page.count('src="data:image/png;base64,') == 2
    assert "http://" not in page
    assert "https://" not in page
