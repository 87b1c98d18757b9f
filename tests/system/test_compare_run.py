"""`make compare` end to end, at its smallest: stage 0 and stage 4 started
side by side, one short round, the report written, nothing left behind.

Stage 4's comments run on the MongoDB named by MONGO_URL, as for someone who
has a real one: here a MongoDB-wire server of the test's own stands in for
it. The run keeps its comments in a database of its own there and drops it
at the end; its PostgreSQL databases go too. Needs wrk and httperf, as
make compare does (.ci/run installs them)."""

import json
import os
import re
import signal
import subprocess
import sys
from contextlib import ExitStack

import psycopg
import pymongo
import pytest
import requests

from blogtest.mongo import mongo_wire_server
from tests.support.live_server import REPO_ROOT

ENDPOINTS = {"post list", "post detail", "post comments", "create post", "create comment"}
SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def databases() -> set[str]:
    with psycopg.connect(SERVER, autocommit=True) as admin:
        return {name for (name,) in admin.execute("SELECT datname FROM pg_database")}


def test_a_short_run_writes_the_report_and_leaves_nothing_behind(tmp_path):
    out = tmp_path / "report"
    with ExitStack() as run:
        mongo_url = run.enter_context(mongo_wire_server(tmp_path / "mongo"))
        result = subprocess.run(
            [
                sys.executable, "bench/compare.py", "--rounds", "1", "--duration", "1",
                "--posts", "2", "--comments", "5", "--rate", "20", "--hops-requests", "1",
                "--lag-seconds", "0", "--no-faults", "--out", str(out),
            ],
            cwd=REPO_ROOT, env={**os.environ, "MONGO_URL": mongo_url},
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]

        doc = json.loads((out / "compare.json").read_text())
        assert set(doc["summary"]) == {"stage0", "stage4-async"}
        for stack, by_endpoint in doc["summary"].items():
            assert set(by_endpoint) == ENDPOINTS, stack
            for endpoint, figures in by_endpoint.items():
                assert figures["requests_per_s"] > 0, (stack, endpoint)
                assert figures["p99_ms"] is not None, (stack, endpoint)
        # The comments were served from the MongoDB given, not from a server of the run's own.
        comments_cpu = doc["summary"]["stage4-async"]["post comments"]["cpu_ms_per_request"]
        assert comments_cpu["comments"] > 0
        assert "mongodb" not in comments_cpu
        assert doc["settings"]["mongo"] == mongo_url
        assert "its comments in database compare_stage4_async_" in output
        assert "SecantusDB" not in doc["table"]
        assert len(doc["goals"]) == 8
        assert doc["hops"]["stage4-async"]["post comments"]["components"] == [
            "gateway",
            "comments",
        ]
        page = (out / "compare.html").read_text()
        assert "<h2>Goals</h2>" in page
        assert {p.name for p in out.glob("*.png")} == {"ratios.png", "cpu.png"}
        assert "endpoint        stack" in result.stdout  # the table, printed

        # Nothing left behind: the run's MongoDB database, its PostgreSQL databases.
        with pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000) as client:
            assert not [n for n in client.list_database_names() if n.startswith("compare_")]
        made = re.findall(r"its PostgreSQL databases \(dropped at the end\): (.+)", output)
        names = {name.strip() for line in made for name in line.split(",")}
        assert len(made) == 2  # one line per stack
        assert names
        assert not names & databases()


def test_ctrl_c_stops_every_process_and_drops_every_database(tmp_path):
    with ExitStack() as run:
        mongo_url = run.enter_context(mongo_wire_server(tmp_path / "mongo"))
        compare = subprocess.Popen(
            [
                sys.executable, "-u", "bench/compare.py", "--rounds", "5", "--duration", "5",
                "--posts", "2", "--comments", "5", "--rate", "20", "--hops-requests", "0",
                "--no-faults", "--out", str(tmp_path / "report"),
            ],
            cwd=REPO_ROOT, env={**os.environ, "MONGO_URL": mongo_url},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        run.callback(compare.kill)
        lines: list[str] = []
        for line in compare.stdout:
            lines.append(line)
            if "Round 1/5" in line:  # both stacks up and seeded, the load started
                break
        assert any("Round 1/5" in line for line in lines), "".join(lines)
        compare.send_signal(signal.SIGINT)
        rest, _ = compare.communicate(timeout=120)
        output = "".join(lines) + rest
        assert compare.returncode == 130, output[-4000:]
        assert "interrupted; every process stopped, databases dropped" in output

        urls = re.findall(r"comments through (http://127\.0\.0\.1:\d+)", output)
        assert len(urls) == 2
        for url in urls:  # the monolith, and stage 4's gateway: nothing answers there
            with pytest.raises(requests.ConnectionError):
                requests.get(f"{url}/api/posts/", timeout=5)
        made = re.findall(r"its PostgreSQL databases \(dropped at the end\): (.+)", output)
        names = {name.strip() for line in made for name in line.split(",")}
        assert names
        assert not names & databases()
        with pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000) as client:
            assert not [n for n in client.list_database_names() if n.startswith("compare_")]
        assert not (tmp_path / "report").exists()  # no report of a run cut short
