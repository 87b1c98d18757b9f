"""Stage 2's parallel run, for real: the monolith still serves the comments
(the primary), the comments service serves the migrated copy (the shadow),
and the dev router in shadow mode sends every comment read to both and
compares the answers. Over every post's comments, page by page, there must be
no mismatch: the evidence a migration needs before the routes switch.

The failure message shows the first mismatches as the parallel run records
them (both statuses and bodies): what an operator reads at /_gateway/shadow."""

import json
import os
import subprocess
import sys
import threading
from contextlib import ExitStack

import requests

from blogtest.mongo import mongo_wire_server
from blogtest.postgres import fresh_database
from blogtest.timing import wait_until
from gateway.devrouter import make_server
from tests.support import harness
from tests.support.live_server import REPO_ROOT, gunicorn_monolith, monolith_env


def manage(cwd, env, *args):
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_comments_service_answers_every_read_as_the_monolith_does(tmp_path):
    with ExitStack() as run:
        database = run.enter_context(fresh_database("parallel"))
        env = {**os.environ, **monolith_env(database)}
        manage(REPO_ROOT, env, "migrate", "--noinput", "-v0")
        manage(REPO_ROOT, env, "seed", "--posts", "6", "--comments", "60", "--reset", "--quiet")
        # The copy the comments service will serve (make migrate-stage 2).
        mongo_url = run.enter_context(mongo_wire_server(tmp_path / "mongo"))
        harness.import_monolith_comments(database, mongo_url)
        # The primary: the monolith as it was before the switch, serving comments itself.
        (tmp_path / "primary").mkdir()
        primary = run.enter_context(
            gunicorn_monolith(database=database, log_dir=tmp_path / "primary", migrate=False)
        )
        # The shadow: stage 2's comments service on the copy.
        (tmp_path / "stage2").mkdir()
        stage2 = run.enter_context(
            harness.stage_stack(
                2,
                log_dir=tmp_path / "stage2",
                databases={"monolith": database},
                mongo_url=mongo_url,
            )
        )
        router = make_server(
            2,
            "127.0.0.1:0",
            shadow=True,
            env={"MONOLITH_URL": primary.url, "COMMENTS_URL": stage2.urls["comments"]},
        )
        threading.Thread(target=router.serve_forever, daemon=True).start()
        run.callback(router.server_close)
        run.callback(router.shutdown)
        gateway = f"http://127.0.0.1:{router.server_address[1]}"

        posts = requests.get(f"{primary.url}/api/posts/?page_size=100", timeout=10).json()
        reads = 0
        for post in posts["results"]:
            for query in ("", "?page_size=7", "?page_size=7&page=2", "?page=9"):
                response = requests.get(
                    f"{gateway}/api/posts/{post['id']}/comments/{query}", timeout=10
                )
                assert response.headers.get("X-Served-By") == "monolith"  # the primary answers
                reads += 1
        assert reads >= 24

        def counts():
            return requests.get(f"{gateway}/_gateway/shadow", timeout=10).json()

        wait_until(
            lambda: sum(counts()[k] for k in ("matches", "mismatches", "errors")) >= reads,
            timeout_s=60,
            what="the parallel run to compare every read",
        )
        seen = counts()
        assert seen["errors"] == 0, seen
        assert seen["mismatches"] == 0, (
            f"{seen['mismatches']} of {reads} comment reads answered differently by the "
            "comments service (shadow) and the monolith (primary); the first ones, as "
            "/_gateway/shadow shows them:\n"
            + json.dumps(seen["recent_mismatches"][:2], indent=2)[:3000]
        )
        assert seen["matches"] == reads
