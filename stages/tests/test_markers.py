"""stages.markers: blocks, one-line markers and generated blocks, cut per stage."""

import pytest

from stages.markers import MarkerError, cut, scan

PYTHON = """\
import os
import sys  # [stage 3]


def always():
    return os.sep


# >>> stage 2: the remote branch
def remote():
    if sys:  # [stage 3]
        pass  # [stage 3]
    return 2
    # <<< stage 2


def after():
    values = [
        1,
        2,  # [stage 2]
    ]
    # >>> stage 3: events
    values.append(3)
    # <<< stage 3
    return values
"""


def test_stage_0_drops_every_later_block_and_line():
    assert cut(PYTHON, 0) == (
        "import os\n"
        "\n\n"
        "def always():\n"
        "    return os.sep\n"
        "\n\n"
        "def after():\n"
        "    values = [\n"
        "        1,\n"
        "    ]\n"
        "    return values\n"
    )


def test_a_block_is_kept_with_its_markers_from_its_stage_on():
    at_2 = cut(PYTHON, 2)
    assert "# >>> stage 2: the remote branch\ndef remote():\n    return 2\n" in at_2
    assert "2,  # [stage 2]" in at_2
    assert "sys" not in at_2
    assert "values.append(3)" not in at_2
    assert cut(PYTHON, 3) == PYTHON
    assert cut(PYTHON, 4) == PYTHON


def test_every_cut_of_the_sample_compiles():
    for stage in range(5):
        compile(cut(PYTHON, stage), "sample.py", "exec")


def test_blank_lines_around_a_dropped_block_merge_into_the_larger_side():
    text = "a = 1\n\n# >>> stage 2: x\nb = 2\n# <<< stage 2\n\n\nc = 3\n"
    assert cut(text, 1) == "a = 1\n\n\nc = 3\n"
    text = "a = 1\n\n\n# >>> stage 2: x\nb = 2\n# <<< stage 2\n\nc = 3\n"
    assert cut(text, 1) == "a = 1\n\n\nc = 3\n"


def test_blank_lines_between_two_dropped_blocks_go_with_them():
    text = "a = 1\n\n# >>> stage 2: x\nb = 2\n# <<< stage 2\n\n# >>> stage 3: y\n"
    text += "c = 3\n# <<< stage 3\n\n\nd = 4\n"
    assert cut(text, 1) == "a = 1\n\n\nd = 4\n"
    assert cut(text, 2) == "a = 1\n\n# >>> stage 2: x\nb = 2\n# <<< stage 2\n\n\nd = 4\n"


def test_a_block_at_the_top_or_the_end_leaves_no_blank_lines_behind():
    assert cut("# >>> stage 1: x\nx = 1\n# <<< stage 1\n\ny = 2\n", 0) == "y = 2\n"
    assert cut("y = 2\n\n# >>> stage 1: x\nx = 1\n# <<< stage 1\n", 0) == "y = 2\n"


def test_markers_in_other_comment_syntaxes():
    markdown = "Intro\n<!-- >>> stage 2: comments -->\nMore\n<!-- <<< stage 2 -->\n"
    assert cut(markdown, 1) == "Intro\n"
    assert cut(markdown, 2) == markdown
    js = "a();\n// >>> stage 3: events\nb();\n// <<< stage 3\nc(); // [stage 4]\n"
    assert cut(js, 2) == "a();\n"
    yaml = "items:\n  - one\n  - two  # [stage 1]\n"
    assert cut(yaml, 0) == "items:\n  - one\n"
    assert scan("/* >>> stage 2: css */\nx {}\n/* <<< stage 2 */\n").blocks[0].stage == 2


def test_generated_blocks_are_rendered_for_the_stage():
    text = "# T\n<!-- >>> generated: banner -->\nold\n<!-- <<< generated -->\nend\n"
    out = cut(text, 1, render=lambda name, stage: f"{name} at {stage}\n")
    assert out == "# T\n<!-- >>> generated: banner -->\nbanner at 1\n<!-- <<< generated -->\nend\n"


def test_a_generated_block_inside_a_dropped_block_goes_with_it():
    text = (
        "a\n<!-- >>> stage 4: last -->\n<!-- >>> generated: table -->\nx\n"
        "<!-- <<< generated -->\n<!-- <<< stage 4 -->\nb\n"
    )
    assert cut(text, 3, render=lambda *_: pytest.fail("not rendered")) == "a\nb\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# >>> stage 2: x\nx = 1\n", "file.py:1: the stage 2 block is never closed"),
        ("x = 1\n# <<< stage 2\n", "closes no open block"),
        ("# >>> stage 2: x\n# <<< stage 3\n", "closes the stage 2 block opened at line 1"),
        ("# >>> stage 3: x\n# >>> stage 2: y\n", "cannot belong to an earlier stage"),
        ("# >>> stage 3: x\ny = 1  # [stage 2]\n# <<< stage 3\n", "[stage 2] line inside"),
        ("#>>>stage 2\n", "looks like a stage marker but is not one"),
        ("# <<< stage2\n", "looks like a stage marker but is not one"),
        ("x = 1  # [stage 2 ]\n", "looks like a stage marker but is not one"),
        ("<!-- <<< generated -->\n", "closes no open generated block"),
        ("<!-- >>> generated: a -->\n", "is never closed"),
    ],
)
def test_malformed_markers_are_errors_naming_the_line(text, message):
    with pytest.raises(MarkerError) as error:
        scan(text, "some/file.py")
    assert "some/file.py:" in str(error.value)
    assert message in str(error.value)


def test_placeholders_in_docs_are_not_markers():
    doc = "```\n# >>> stage N: what\n...\n# <<< stage N\n<!-- >>> generated: NAME -->\n```\n"
    assert scan(doc).empty
    assert cut(doc, 0) == doc
