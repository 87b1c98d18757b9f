"""Reading pytest's verdict: which failures are the intended ones, and
what a participant is told."""

from workshop.catalogue import EXERCISES
from workshop.checking import Outcome, parse_junit, teaching

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
<testcase classname="tests.test_inbox" name="test_the_same_envelope_twice_applies_once">
  <failure message="NotImplementedError: Exercise 3.2: record the event"
    type="NotImplementedError">trace</failure>
</testcase>
<testcase classname="tests.test_inbox" name="test_dedup_is_per_source_and_id">
  <failure message="assert 2 == 3" type="AssertionError">trace</failure>
</testcase>
<testcase classname="tests.test_inbox" name="test_concurrent_deliveries_apply_once">
  <failure message="blogtest.timing.TimedOut: timed out" type="blogtest.timing.TimedOut">t</failure>
</testcase>
<testcase classname="tests.test_inbox" name="test_ok" />
<testcase classname="" name="">
  <error message="collection failure">ImportError: cannot import name 'x'</error>
</testcase>
</testsuite></testsuites>
"""


def test_failures_are_sorted_into_the_exercises_own_a_behaviour_and_broken():
    tests, failures = parse_junit(JUNIT, "3.2")
    assert tests == 5
    kinds = {f.test.rsplit("::", 1)[-1]: f.kind for f in failures}
    assert kinds == {
        "test_the_same_envelope_twice_applies_once": "exercise",
        "test_dedup_is_per_source_and_id": "behaviour",
        "test_concurrent_deliveries_apply_once": "behaviour",
        "": "broken",
    }


def test_another_exercises_error_is_not_this_ones():
    _, failures = parse_junit(JUNIT, "1.1")
    assert failures[0].kind == "behaviour"


def test_a_syntax_error_is_broken():
    junit = JUNIT.replace('type="AssertionError"', 'type="SyntaxError"')
    _, failures = parse_junit(junit, "3.2")
    assert [f.kind for f in failures][1] == "broken"


def test_the_participant_is_told_what_is_missing_and_which_hint_helps():
    exercise = EXERCISES["3.2"]
    _, failures = parse_junit(JUNIT, "3.2")
    lines = teaching(exercise, [Outcome(1, 5, failures, "")])
    assert lines[0].startswith("The code still raises exercise 3.2's error")
    assert "libs/blogbus/inbox/services.py" in lines[0]
    dedup = next(line for line in lines if "(source, id)" in line)
    assert "Hint 2" in dedup
    broken = next(line for line in lines if "does not run" in line)
    assert "ImportError" in broken or "collection failure" in broken
    # The gentlest hint first, each lesson once.
    hints = [int(line.split("Hint ")[1][0]) for line in lines if "Hint " in line]
    assert hints == sorted(hints)
    assert len(lines) == len(set(lines))
