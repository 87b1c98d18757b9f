"""What every part of `make bench` shares: where the checkout is, the
progress lines and the error that stops a run (bench/run.py catches it,
cleans up and exits 1)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


class BenchError(Exception):
    """A step failed; the message says what to do about it."""


_started = time.monotonic()


def say(message: str) -> None:
    """A progress line, with the seconds since the run started."""
    print(f"[{time.monotonic() - _started:5.1f}s] {message}", flush=True)


def fail(message: str) -> NoReturn:
    raise BenchError(message)


def shown(path: Path) -> Path:
    """``path`` relative to the checkout when it is inside it."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
