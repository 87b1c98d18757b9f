"""One data set walks through the stages in order, through the data
migrations between them: seeded in the monolith at stage 0, then each later
stage of this tree started on the same stores. Every post and every comment
is served identically at each stop."""

import os
import subprocess
import sys
from contextlib import ExitStack

import requests

from blogtest.mongo import mongo_wire_server  # [stage 2]
from blogtest.postgres import fresh_database
from tests.support import harness  # [stage 1]
from tests.support.live_server import REPO_ROOT, gunicorn_monolith, monolith_env


def run(cwd, env, *args):
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def all_pages(url):
    items, next_url = [], url
    while next_url:
        page = requests.get(next_url, timeout=10)
        assert page.status_code == 200, (next_url, page.text)
        body = page.json()
        items += body["results"]
        next_url = body["next"]
    return items


def snapshot(base_url):
    """Everything a client can read: every post, and every post's comments."""
    posts = all_pages(f"{base_url}/api/posts/?page_size=100")
    comments = {
        post["id"]: all_pages(f"{base_url}/api/posts/{post['id']}/comments/?page_size=100")
        for post in posts
    }
    return posts, comments


def test_one_data_set_walks_through_the_stages(tmp_path):
    with ExitStack() as walk:
        monolith_db = walk.enter_context(fresh_database("walk"))
        env = {**os.environ, **monolith_env(monolith_db)}
        run(REPO_ROOT, env, "migrate", "--noinput", "-v0")
        run(REPO_ROOT, env, "seed", "--posts", "40", "--comments", "300", "--reset", "--quiet")

        (tmp_path / "stage0").mkdir()
        with gunicorn_monolith(
            database=monolith_db, log_dir=tmp_path / "stage0", migrate=False
        ) as s0:
            before = snapshot(s0.url)
        posts, comments = before
        assert len(posts) == 40
        assert sum(len(c) for c in comments.values()) == 300

        # >>> stage 1: the same, behind the gateway
        (tmp_path / "stage1").mkdir()
        with harness.stage_stack(
            1, log_dir=tmp_path / "stage1", databases={"monolith": monolith_db}
        ) as s1:
            assert snapshot(s1.url) == before
        # <<< stage 1

        # >>> stage 2: the comments migrated into MongoDB, served by the comments service
        mongo_url = walk.enter_context(mongo_wire_server(tmp_path / "mongo"))
        harness.import_monolith_comments(monolith_db, mongo_url)
        (tmp_path / "stage2").mkdir()
        with harness.stage_stack(
            2,
            log_dir=tmp_path / "stage2",
            databases={"monolith": monolith_db},
            mongo_url=mongo_url,
        ) as s2:
            assert snapshot(s2.url) == before
        # <<< stage 2

        # >>> stage 3: events, the monolith's counters filled from what is there
        (tmp_path / "stage3").mkdir()
        with harness.stage_stack(
            3,
            log_dir=tmp_path / "stage3",
            databases={"monolith": monolith_db},
            mongo_url=mongo_url,
        ) as s3:
            run(
                REPO_ROOT,
                {
                    **env,
                    "COMMENTS_BACKEND": "service",
                    "COMMENTS_URL": s3.urls["comments"],
                    "INTERNAL_TOKEN": s3.tokens["monolith"],
                },
                "comment_counts_rebuild",
                "-v0",
            )
            assert snapshot(s3.url) == before
        # <<< stage 3

        # >>> stage 4: the posts migrated into the posts service's own database
        posts_db = walk.enter_context(fresh_database("walkposts"))
        posts_env = {"DATABASE_URL": posts_db, "MONOLITH_DATABASE_URL": monolith_db}
        harness.manage("posts", posts_env, "migrate", "--noinput", "-v0")
        harness.manage("posts", posts_env, "import_monolith_posts", "--quiet")
        (tmp_path / "stage4").mkdir()
        with harness.stage_stack(
            4, log_dir=tmp_path / "stage4", mode="sync",
            databases={"posts": posts_db}, mongo_url=mongo_url,
        ) as s4:  # fmt: skip
            assert snapshot(s4.url) == before
        # <<< stage 4
