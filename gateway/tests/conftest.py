"""Fixtures: fake upstreams and gateways (real nginx and the dev router)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway import routes as rt

from .fakes import IMPLEMENTATIONS, FakeUpstream, nginx_available

KINDS = sorted(IMPLEMENTATIONS)
# The stages with a gateway (stage 0 has none).
GATEWAY_STAGES = [n for n, st in rt.STAGES.items() if st.has_gateway]
# The stages on which the tests of what every gateway does (headers, request
# ids, bodies, errors) run: the monolith is their default upstream.
FACADE_STAGES = [
    1,
    2,  # [stage 2]
]


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
    env[rt.UI_DIR_ENV[0]] = str(rt.REPO_ROOT / "web")  # [stage 4]
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


@pytest.fixture(scope="module")
def gateways(fake_env, tmp_path_factory) -> Iterator[Callable[[str, int], Any]]:
    """gateways(kind, stage) -> that stage's gateway in front of the fakes,
    started on first use and stopped at the end of the module."""
    started: dict[tuple[str, int], Any] = {}

    def get(kind: str, stage: int) -> Any:
        if (kind, stage) not in started:
            need(kind)
            folder = tmp_path_factory.mktemp(f"gw{stage}-{kind}")
            started[(kind, stage)] = IMPLEMENTATIONS[kind](folder, stage, fake_env)
        return started[(kind, stage)]

    yield get
    for gw in started.values():
        gw.stop()


@pytest.fixture(
    params=[(kind, stage) for stage in FACADE_STAGES for kind in KINDS],
    ids=lambda param: f"{param[0]}-stage{param[1]}",
)
def gw(request: pytest.FixtureRequest, gateways) -> Any:
    """A stage of FACADE_STAGES in front of the fakes, once per implementation."""
    kind, stage = request.param
    return gateways(kind, stage)


# >>> stage 2: the comment routes at the comments service
@pytest.fixture(params=KINDS)
def gw2(request: pytest.FixtureRequest, gateways) -> Any:
    """Stage 2 in front of the fakes, once per implementation."""
    return gateways(request.param, 2)
    # <<< stage 2


# >>> stage 4: the services and the UI files, no monolith
@pytest.fixture(params=KINDS)
def gw4(request: pytest.FixtureRequest, gateways) -> Any:
    """Stage 4 in front of the fakes, once per implementation."""
    return gateways(request.param, 4)
    # <<< stage 4
