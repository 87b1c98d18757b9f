"""bench/wrk.py reads wrk's text output; these pin the parts bench/run.py relies on."""

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench():
    """bench/'s modules, imported as `python bench/run.py` imports them: with
    bench/ first on sys.path. Forgotten again afterwards."""
    sys.path.insert(0, str(BENCH_DIR))
    try:
        yield SimpleNamespace(
            **{name: importlib.import_module(name) for name in ("common", "server", "wrk")}
        )
    finally:
        sys.path.remove(str(BENCH_DIR))
        for name, module in list(sys.modules.items()):
            if Path(getattr(module, "__file__", None) or "/").parent == BENCH_DIR:
                del sys.modules[name]


WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:8000/api/posts/
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   650.10us    1.20ms   1.02s    80.00%
    Req/Sec     1.58k   100.00     1.70k    70.00%
  Latency Distribution
     50%  612.00us
     75%    5.50ms
     90%    6.20ms
     99%    1.20s
  15800 requests in 10.00s, 25.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 3
Requests/sec:   1580.00
Transfer/sec:      2.50MB
"""


def test_parses_throughput_latency_units_and_errors(bench):
    result = bench.wrk.parse_wrk(WRK_OUTPUT)

    assert result.requests_per_s == 1580.0
    assert result.requests == 15800
    assert result.duration_s == 10.0
    assert result.latency_ms == {
        "avg": 0.65,
        "max": 1020.0,
        "p50": 0.612,
        "p75": 5.5,
        "p90": 6.2,
        "p99": 1200.0,
    }
    assert result.non_2xx_3xx == 3
    assert result.socket_errors == {"connect": 0, "read": 2, "write": 0, "timeout": 1}
    assert result.errors == 6


def test_a_clean_run_has_no_errors(bench):
    clean = "\n".join(
        line for line in WRK_OUTPUT.splitlines() if "errors" not in line and "Non-2xx" not in line
    )

    assert bench.wrk.parse_wrk(clean).errors == 0


def test_output_without_latency_distribution_is_refused(bench):
    without = WRK_OUTPUT.split("  Latency Distribution")[0] + "Requests/sec:   1.00\n"

    with pytest.raises(bench.common.BenchError):
        bench.wrk.parse_wrk(without)


def test_database_url_swaps_only_the_database_name(bench):
    server = "postgresql://postgres@127.0.0.1:5432/postgres"

    assert (
        bench.server.database_url(server, "blog_bench")
        == "postgresql://postgres@127.0.0.1:5432/blog_bench"
    )
