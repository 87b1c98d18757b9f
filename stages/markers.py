"""Stage markers: which stage a block of lines belongs to.

A block is opened and closed by two comment lines naming its stage, written
with whatever comment syntax the file uses (``#``, ``//``, ``--``, ``;``,
``<!-- -->``, ``/* */``)::

    # >>> stage N: a few words on what the block does at that stage
    ...the lines stage N brings...
    # <<< stage N

and a single line can carry its stage at its end: ``some line  # [stage N]``.
A block or line is kept in the trees of its stage and every later one, and
dropped, markers included, from the trees of earlier stages. Blocks nest; an
inner block cannot belong to an earlier stage than the block around it. The
marker lines stay in the trees that keep their block, so a reader of any
stage sees which lines came with which step.

When a block is dropped, the blank lines around it are merged into as many
as the larger side had, so that the trees stay formatted.

A *generated* block holds text rendered for each stage (the README's "you
are here" banner, say); its content is replaced in every generated tree::

    <!-- >>> generated: NAME -->
    ...
    <!-- <<< generated: NAME -->

(The closing line may repeat the name. In this file and the docs, examples
write the stage as ``N`` and the name as ``NAME``, which no marker matches.)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_LEAD = r"^(?P<indent>\s*)(?:#|//|--|;|<!--|/\*)\s*"
_TAIL = r"\s*(?:-->|\*/)?\s*$"
OPEN = re.compile(_LEAD + r">>> stage (?P<stage>\d+)\b(?P<text>.*?)" + _TAIL)
CLOSE = re.compile(_LEAD + r"<<< stage (?P<stage>\d+)" + _TAIL)
LINE = re.compile(r"^\s*\S.*?\s(?:#|//|--|;|<!--|/\*)\s*\[stage (?P<stage>\d+)\]" + _TAIL)
GENERATED_OPEN = re.compile(_LEAD + r">>> generated: (?P<name>[a-z0-9-]+)" + _TAIL)
GENERATED_CLOSE = re.compile(_LEAD + r"<<< generated(: (?P<name>[a-z0-9-]+))?" + _TAIL)
# Anything that looks like a marker but is not one is an error, not text: a
# typo must not leak a later stage's lines into an earlier tree. (Docs write
# examples with the placeholders ``N`` and ``NAME``, which no marker matches.)
SUSPECT = re.compile(
    _LEAD + r"(>>>|<<<)(?!.*\b(N|NAME)\b)"
    r"|\s(?:#|//|--|;|<!--|/\*)\s*\[\s*stage\s*\d+\s*\]" + _TAIL
)


class MarkerError(ValueError):
    """A malformed marker; the message names the file and the line."""


@dataclass(frozen=True)
class Block:
    stage: int
    start: int  # 1-based line number of the opening marker
    end: int  # 1-based line number of the closing marker
    text: str  # what the opening marker says after the stage number


@dataclass(frozen=True)
class Scan:
    """What a file's markers say."""

    blocks: tuple[Block, ...]
    lines: dict[int, int]  # 1-based line number -> stage, for single-line markers
    generated: tuple[tuple[str, int, int], ...]  # (name, open line, close line)

    @property
    def stages(self) -> set[int]:
        return {b.stage for b in self.blocks} | set(self.lines.values())

    @property
    def empty(self) -> bool:
        return not (self.blocks or self.lines or self.generated)


def has_markers(text: str) -> bool:
    """A cheap test before a full scan."""
    return ">>>" in text or "[stage " in text


def scan(text: str, path: str = "<text>") -> Scan:
    """Parses the markers of ``text``; raises MarkerError on any malformed one."""
    blocks: list[Block] = []
    single: dict[int, int] = {}
    generated: list[tuple[str, int, int]] = []
    open_blocks: list[tuple[int, int, str]] = []  # (stage, line, text)
    open_generated: tuple[str, int] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if "stage" not in line and "generated" not in line:
            continue
        where = f"{path}:{number}"
        if m := OPEN.match(line):
            stage = int(m["stage"])
            if open_blocks and stage < open_blocks[-1][0]:
                raise MarkerError(
                    f"{where}: a stage {stage} block inside the stage {open_blocks[-1][0]} "
                    f"block opened at line {open_blocks[-1][1]}: an inner block cannot belong "
                    "to an earlier stage"
                )
            if open_generated:
                raise MarkerError(f"{where}: a stage block inside a generated block")
            open_blocks.append((stage, number, m["text"].strip(" :-—")))
        elif m := CLOSE.match(line):
            stage = int(m["stage"])
            if not open_blocks:
                raise MarkerError(f"{where}: '<<< stage {stage}' closes no open block")
            want, opened, what = open_blocks.pop()
            if stage != want:
                raise MarkerError(
                    f"{where}: '<<< stage {stage}' closes the stage {want} block opened at "
                    f"line {opened}"
                )
            blocks.append(Block(stage, opened, number, what))
        elif m := GENERATED_OPEN.match(line):
            if open_generated:
                raise MarkerError(f"{where}: generated blocks do not nest")
            open_generated = (m["name"], number)
        elif GENERATED_CLOSE.match(line):
            if not open_generated:
                raise MarkerError(f"{where}: '<<< generated' closes no open generated block")
            generated.append((open_generated[0], open_generated[1], number))
            open_generated = None
        elif m := LINE.match(line):
            stage = int(m["stage"])
            if open_blocks and stage < open_blocks[-1][0]:
                raise MarkerError(
                    f"{where}: a [stage {stage}] line inside the stage {open_blocks[-1][0]} "
                    f"block opened at line {open_blocks[-1][1]}"
                )
            single[number] = stage
        elif SUSPECT.search(line):
            raise MarkerError(
                f"{where}: looks like a stage marker but is not one: {line.strip()!r} "
                "(stages/markers.py gives the syntax)"
            )
    if open_blocks:
        stage, opened, _ = open_blocks[-1]
        raise MarkerError(f"{path}:{opened}: the stage {stage} block is never closed")
    if open_generated:
        raise MarkerError(f"{path}:{open_generated[1]}: the generated block is never closed")
    return Scan(tuple(sorted(blocks, key=lambda b: b.start)), single, tuple(generated))


Renderer = Callable[[str, int], str]


def cut(
    text: str,
    stage: int,
    *,
    path: str = "<text>",
    render: Renderer | None = None,
    found: Scan | None = None,
) -> str:
    """``text`` as it stands at ``stage``: blocks and lines of later stages
    dropped, generated blocks rendered by ``render(name, stage)``."""
    found = found or scan(text, path)
    if found.empty:
        return text
    lines = text.splitlines(keepends=True)
    dropped = [False] * (len(lines) + 2)  # 1-based
    for block in found.blocks:
        if block.stage > stage:
            for n in range(block.start, block.end + 1):
                dropped[n] = True
    for number, line_stage in found.lines.items():
        if line_stage > stage:
            dropped[number] = True
    content = [False] * (len(lines) + 2)  # a generated block's old content
    bodies: dict[int, str] = {}  # closing line -> the rendered content
    for name, opened, closed in found.generated:
        if dropped[opened]:
            continue
        if render is None:
            raise MarkerError(f"{path}:{opened}: generated block {name!r} but no renderer")
        body = render(name, stage)
        bodies[closed] = body if not body or body.endswith("\n") else body + "\n"
        for n in range(opened + 1, closed):
            content[n] = True
    out: list[str] = []
    blanks_before: int | None = None  # set while skipping a dropped run
    blanks_after = 0
    for number, line in enumerate(lines, 1):
        if content[number]:
            continue
        if dropped[number]:
            if blanks_before is None:
                blanks_before = _trailing_blanks(out)
            blanks_after = 0  # blank lines between two dropped runs go with them
            continue
        if blanks_before is not None:
            if not line.strip():
                blanks_after += 1
                continue
            if out:  # at the top of the file, no blank lines
                out.extend(["\n"] * max(0, blanks_after - blanks_before))
            blanks_before = None
        if number in bodies:
            out.append(bodies[number])
        out.append(line)
    if blanks_before is not None:
        # The file ended inside or right after a dropped run: no trailing blanks.
        while out and not out[-1].strip():
            out.pop()
    result = "".join(out)
    if text.endswith("\n") and result and not result.endswith("\n"):
        result += "\n"
    return result


def _trailing_blanks(out: list[str]) -> int:
    count = 0
    for line in reversed(out):
        if line.strip():
            break
        count += 1
    return count
