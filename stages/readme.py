"""The README's generated blocks: where a stage's reader stands (the banner)
and the table of steps, both rendered from the stage table."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

STEP_TABLE = re.compile(r"(<!-- >>> generated: step-table -->\n)(.*?)(<!-- <<< generated)", re.S)


def renderers(table) -> dict[str, Callable[[int], str]]:
    """The generated blocks a stage tree's files may hold, by name."""
    return {"stage-banner": lambda number: banner(table, number)}


def banner(table, number: int) -> str:
    """ "You are on stage N": what runs, the patterns, and what the next step changes."""
    stage = table.STAGES[number]
    newest = max(table.STAGES)
    lines = [
        f"> **You are on stage {number} of {newest}: {stage.title}** (tag `{stage.tag}`): "
        f"{stage.summary}.",
        f"> Patterns: {', '.join(stage.patterns)}. The step's note: [`{stage.note}`]"
        f"({stage.note}).",
    ]
    if number < newest:
        after = table.STAGES[number + 1]
        lines.append(
            f"> **Next:** {stage.next_step} See it with `git diff {stage.tag} {after.tag}`."
        )
    else:
        lines.append(
            "> This is the last step, and the full repository: every stage still runs from "
            "here (`STAGE=N make up`, `make parity`), and `make stage-tags` builds the history "
            "to step through, one tag per stage."
        )
    return "\n".join(lines) + "\n"


def _pm(added: int, removed: int) -> str:
    if not added and not removed:
        return "·"
    return f"+{added:,} / -{removed:,}"


def step_table(table, stats) -> str:
    """The README's table of steps (``python -m stages.history --stats``)."""
    rows = [
        "| step | patterns | files | monolith | new code | tests | deploy |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for s in stats:
        stage = table.STAGES[s.number]
        rows.append(
            f"| {s.number - 1} → {s.number} {stage.slug} | {', '.join(stage.patterns)} | "
            f"{s.files} | {_pm(*s.lines['monolith'])} | {_pm(*s.lines['new code'])} | "
            f"{_pm(*s.lines['tests'])} | {_pm(*s.lines['deploy'])} |"
        )
    return "\n".join(rows) + "\n"


def step_table_of(text: str) -> str | None:
    """The table of steps a README holds, or None."""
    found = STEP_TABLE.search(text)
    return found.group(2) if found else None


def write_step_table(readme: Path, table_text: str) -> None:
    text = readme.read_text()
    if step_table_of(text) is None:
        raise ValueError(f"{readme} has no step-table block")
    readme.write_text(STEP_TABLE.sub(lambda m: m.group(1) + table_text + m.group(3), text))
