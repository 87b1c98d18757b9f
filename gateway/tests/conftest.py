"""Fixtures: fake upstreams and gateways (real nginx and the dev router)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway import routes as rt

from .fakes import IMPLEMENTATIONS, FakeUpstream, nginx_available

KINDS = sorted(IMPLEMENTATIONS)


def need(kind: str) -> None:
    """nginx is part of the test environment (.ci/run installs it): a missing
    one fails the test rather than skipping it into a pass."""
    if kind == "nginx" and not nginx_available():
        pytest.fail("nginx not found: apt-get install nginx, or set NGINX_BIN")


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeUpstream]]:
    started = {name: FakeUpstream(name) for name in rt.HTTP_UPSTREAMS}
    yield started
    for fake in started.values():
        fake.stop()


@pytest.fixture(scope="module")
def fake_env(fakes: dict[str, FakeUpstream]) -> dict[str, str]:
    env = {rt.UPSTREAM_ENV[name][0]: fake.url for name, fake in fakes.items()}
    env[rt.UI_DIR_ENV[0]] = str(rt.REPO_ROOT / "web")
    return env


@pytest.fixture
def start_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """start_gateway(kind, stage, env, **options) -> a running gateway; all
    are stopped at the end of the test."""
    started: list[Any] = []

    def start(kind: str, stage: int, env: dict[str, str], **options: Any) -> Any:
        need(kind)
        folder = tmp_path_factory.mktemp(f"gw-{kind}-{stage}")
        gw = IMPLEMENTATIONS[kind](folder, stage, env, **options)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture(scope="module", params=KINDS)
def gw2(request: pytest.FixtureRequest, fake_env, tmp_path_factory) -> Iterator[Any]:
    """Stage 2 in front of the fakes, once per implementation."""
    need(request.param)
    folder = tmp_path_factory.mktemp(f"gw2-{request.param}")
    gw = IMPLEMENTATIONS[request.param](folder, 2, fake_env)
    yield gw
    gw.stop()


@pytest.fixture(scope="module", params=KINDS)
def gw4(request: pytest.FixtureRequest, fake_env, tmp_path_factory) -> Iterator[Any]:
    """Stage 4 in front of the fakes, once per implementation."""
    need(request.param)
    folder = tmp_path_factory.mktemp(f"gw4-{request.param}")
    gw = IMPLEMENTATIONS[request.param](folder, 4, fake_env)
    yield gw
    gw.stop()
