"""One stage of the blog as real processes, for the black-box suites: the
contract suite (`CONTRACT_STAGE`, `CONTRACT_GATEWAY`) and `make parity`.

Stage 0 is the monolith alone; stage 1 puts the gateway (real nginx with the
rendered config, or the dev router) in front of it. Stages 2-4 join here as
their services land."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from .live_server import REPO_ROOT, free_port, fresh_database, gunicorn_monolith
from .processes import Process, http_ready, running

GATEWAYS = ("nginx", "dev")
RUNNABLE_STAGES = (0, 1)


@dataclass(frozen=True)
class Stack:
    url: str
    served_by: frozenset[str]


def nginx_binary() -> str:
    return os.environ.get("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"


def gateway_process(
    stage: int, kind: str, upstreams: dict[str, str], folder: Path
) -> tuple[Process, str]:
    """The gateway of ``stage`` in front of ``upstreams``, and its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**upstreams}
    if kind == "dev":
        command = [
            sys.executable, "-m", "gateway.devrouter", "--stage", str(stage),
            "--listen", f"127.0.0.1:{port}", "--quiet",
        ]  # fmt: skip
    elif kind == "nginx":
        conf = folder / "nginx.conf"
        subprocess.run(
            [sys.executable, "-m", "gateway.render", "--stage", str(stage),
             "--listen", f"127.0.0.1:{port}", "--out", str(conf)],
            cwd=REPO_ROOT, env={**os.environ, **env}, check=True, timeout=60,
        )  # fmt: skip
        command = [nginx_binary(), "-p", str(folder), "-c", str(conf)]
    else:
        raise ValueError(f"unknown gateway {kind!r}; one of {GATEWAYS}")
    process = Process(
        name=f"gateway-{kind}",
        command=command,
        cwd=REPO_ROOT,
        env=env,
        ready=http_ready(f"{url}/healthz"),
    )
    return process, url


@contextmanager
def stage_stack(stage: int, *, gateway: str, log_dir: Path) -> Iterator[Stack]:
    if stage not in RUNNABLE_STAGES:
        raise ValueError(f"stage {stage} is not runnable yet (runnable: {RUNNABLE_STAGES})")
    with ExitStack() as stack:
        database = stack.enter_context(fresh_database(f"stage{stage}"))
        monolith_dir = log_dir / "monolith"
        monolith_dir.mkdir(parents=True, exist_ok=True)
        monolith = stack.enter_context(gunicorn_monolith(database=database, log_dir=monolith_dir))
        if stage == 0:
            yield Stack(url=monolith.url, served_by=frozenset({"monolith"}))
            return
        gateway_dir = log_dir / "gateway"
        gateway_dir.mkdir(parents=True, exist_ok=True)
        spec, url = gateway_process(stage, gateway, {"MONOLITH_URL": monolith.url}, gateway_dir)
        stack.enter_context(running([spec], gateway_dir))
        yield Stack(url=url, served_by=frozenset({"monolith", "gateway"}))
