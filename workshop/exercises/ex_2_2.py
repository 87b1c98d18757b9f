"""Exercise 2.2: the parallel run finds what the copy got wrong."""

from workshop.blank import Replace
from workshop.catalogue import Exercise, Lesson, Suite

COMMENTS_TESTS = (
    "-c",
    "services/comments/pyproject.toml",
    "--rootdir",
    "services/comments",
)

EXERCISE = Exercise(
    id="2.2",
    stage=2,
    title="Parallel run: find the planted difference",
    goal=(
        "The comments service in this workspace answers a comment read differently from "
        "the monolith, in a way the participants of a real migration miss for weeks. Run "
        "the parallel run (the dev router with --shadow sends every comment read to both "
        "and compares the answers), read its mismatches, find the difference in the "
        "comments service and fix it there, so that the shadow counts only matches."
    ),
    why=(
        "Extracting a service copies behaviour, and copies drift in the details clients "
        "depend on: a format, an order, a default. Tests written for the new service test "
        "what its author thought the behaviour was; a parallel run compares it with what "
        "the old owner really answers, on real requests, before any client depends on the "
        "new one. Zero mismatches over real traffic is the evidence for switching."
    ),
    patterns=("parallel run (shadow reads)", "dark launching", "consumer-visible contract"),
    minutes=30,
    blanks=(
        Replace(
            "services/comments/comments/serializers.py",
            '            "created_at": format_rfc3339_ms(comment.created_at),\n',
            '            "created_at": comment.created_at.isoformat(timespec="milliseconds"),\n',
        ),
    ),
    files_hint=(
        "somewhere in the comments service (services/comments/comments/); the parallel "
        "run itself is gateway/shadow.py"
    ),
    check=(
        Suite(("tests/system/test_parallel_run.py",)),
        Suite(
            (
                *COMMENTS_TESTS,
                "services/comments/comments/tests/test_api.py",
                "-k",
                "create_returns_201 or oldest_first or ties_in_the_same",
            )
        ),
    ),
    lessons={
        "test_the_comments_service_answers_every_read_as_the_monolith_does": Lesson(
            "the parallel run recorded mismatches between the monolith (primary) and the "
            "comments service (shadow): read them with ../../exercise check -v",
            1,
        ),
        "test_create_returns_201_with_the_comment": Lesson(
            "the comment the service returns is not the one the monolith returns: compare "
            "the two bodies of a shadow mismatch field by field",
            2,
        ),
        "test_list_is_oldest_first": Lesson(
            "the order of a post's comments depends on the field that differs: fix the "
            "representation, not the sort",
            3,
        ),
    },
    hints=(
        "tests/system/test_parallel_run.py runs the parallel run for real: a seeded "
        "monolith still serving comments (the primary), the comments service on the "
        "migrated copy (the shadow), the dev router in --shadow mode in front. "
        "`../../exercise check -v` prints what /_gateway/shadow recorded: for each "
        "mismatch, the path and both answers.",
        "A mismatch holds both bodies. JSON key order and whitespace do not count, so "
        "what is left is a value: put the primary's and the shadow's side by side and "
        "look at every field of one comment, character by character.",
        "The contract says timestamps are RFC 3339 in UTC with milliseconds and a 'Z' "
        "(2026-01-31T12:00:00.123Z). Where does the comments service turn a comment into "
        "JSON? Both the monolith and the service have a helper for exactly that format.",
    ),
    after=(
        ".venv/bin/pytest tests/system/test_parallel_run.py -q   # 0 mismatches",
        "# by hand (migration_notes/02-comments-extracted.md): the dev router in shadow "
        "mode in front of a monolith that still serves comments and the comments service",
        ".venv/bin/python -m gateway.devrouter --stage 2 --shadow --listen 127.0.0.1:8090",
        "curl -s localhost:8090/_gateway/shadow   # {matches, mismatches, recent_mismatches}",
    ),
    fast=(Suite((*COMMENTS_TESTS, "services/comments/comments/tests/test_repository.py")),),
)
