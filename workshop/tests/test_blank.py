"""Removing a solution: what a blank leaves, and that it refuses a tree
that no longer holds what it removes."""

import ast

import pytest

from workshop.blank import BlankError, Function, Replace

SOURCE = '''
import os


def keep():
    return 1


class Box:
    def open(self, key: str) -> bool:
        """Open the box with ``key``: all the details of how."""
        if key == os.sep:
            return True
        return False
'''


def test_a_function_blank_keeps_the_signature_and_raises_naming_the_exercise(tmp_path):
    (tmp_path / "box.py").write_text(SOURCE)
    Function("box.py", "Box.open", "open the box").apply(tmp_path, "9.1")
    text = (tmp_path / "box.py").read_text()
    ast.parse(text)  # still Python
    assert "def open(self, key: str) -> bool:" in text
    assert '"""Open the box with ``key``: all the details of how."""' in text
    assert "key == os.sep" not in text
    assert "def keep():\n    return 1" in text  # nothing else touched
    namespace: dict = {}
    exec(compile(text, "box.py", "exec"), namespace)  # noqa: S102 - our own sample
    with pytest.raises(NotImplementedError, match=r"Exercise 9\.1: open the box"):
        namespace["Box"]().open("k")


def test_a_shorter_docstring_replaces_one_that_gives_the_answer_away(tmp_path):
    (tmp_path / "box.py").write_text(SOURCE)
    Function("box.py", "Box.open", "open the box", doc="Open the box.").apply(tmp_path, "9.1")
    text = (tmp_path / "box.py").read_text()
    assert '"""Open the box."""' in text
    assert "all the details" not in text
    ast.parse(text)


def test_a_long_message_is_split_over_lines_that_fit(tmp_path):
    (tmp_path / "box.py").write_text(SOURCE)
    Function("box.py", "keep", "x " * 80).apply(tmp_path, "9.1")
    assert max(len(line) for line in (tmp_path / "box.py").read_text().splitlines()) <= 100


@pytest.mark.parametrize(
    ("blank", "error"),
    [
        (Function("box.py", "Box.close", "x"), "no function 'close'"),
        (Function("box.py", "Crate.open", "x"), "no class 'Crate'"),
        (Function("gone.py", "keep", "x"), "no such file"),
        (Replace("box.py", "return 2", "return 3"), "occurs 0 times"),
        (Replace("box.py", "return", "yield"), "occurs 3 times"),
    ],
)
def test_a_blank_that_does_not_find_its_place_is_an_error(tmp_path, blank, error):
    (tmp_path / "box.py").write_text(SOURCE)
    with pytest.raises(BlankError, match=error):
        blank.apply(tmp_path, "9.1")


def test_a_replace_fills_in_the_exercise_id(tmp_path):
    (tmp_path / "box.py").write_text(SOURCE)
    Replace("box.py", "    return 1\n", "    return 0  # exercise {exercise}\n").apply(
        tmp_path, "9.2"
    )
    assert "return 0  # exercise 9.2" in (tmp_path / "box.py").read_text()
