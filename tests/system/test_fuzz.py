"""Schemathesis against the OpenAPI document, the first stage and the last,
through the public entry point (the monolith at stage 0, the gateway after
it): no request it generates, however odd, gets a server error, an answer
the document does not describe, or a body that breaks its schema.

Bounded: FUZZ_EXAMPLES examples per operation (default 30) and a fixed seed
(FUZZ_SEED, default 1), so a failure is reproduced by the same run; the
output names the case and `st replay` replays it. Set another seed to look
further."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stages import table
from tests.support.harness import stage_stack

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
SEED = int(os.environ.get("FUZZ_SEED", "1"))
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# The first stage and the last, in each of the last one's modes.
FIRST, LAST = min(table.STAGES), max(table.STAGES)
RUNS = [(FIRST, table.STAGES[FIRST].default_mode)] + [
    (LAST, mode) for mode in table.STAGES[LAST].modes if LAST != FIRST
]
SCHEMATHESIS = Path(sys.executable).with_name("st")


@pytest.mark.parametrize(("stage", "mode"), RUNS, ids=[f"stage{s}-{m}" for s, m in RUNS])
def test_the_openapi_document_holds_under_fuzzing(stage, mode, tmp_path):
    # Behind nginx from stage 1 on (the harness's default gateway).
    with stage_stack(stage, log_dir=tmp_path, mode=mode) as stack:
        command = [
            str(SCHEMATHESIS), "run", f"{stack.url}/api/schema/",
            "--url", stack.url,
            "--checks", ",".join(CHECKS),
            "--max-examples", str(EXAMPLES),
            "--seed", str(SEED),
            "--request-timeout", "10",
            "--workers", "1",
            "--no-color",
        ]  # fmt: skip
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
    summary = done.stdout[-12000:]
    assert done.returncode == 0, f"schemathesis found problems (seed {SEED}):\n{summary}"
    # It ran: every operation of the document was tested.
    assert "Test cases:" in summary, summary
    assert "passed" in summary, summary
