"""The fault drill: what a client of stage 4 sees through the gateway when one
part is down while it writes, predicted before anything runs (workshop
exercise 4.2, ``./exercise start 4.2``).

The stack is stage 4 in async mode, as ``STAGE=4 make up`` runs it: the posts
service keeps each post's ``comment_count`` from comment events
(COMMENT_COUNTS=async), the comments service keeps a replica of posts from
post events (POST_LOOKUP=async), and each event leaves its service through an
outbox and that service's relay, to RabbitMQ, to the other service's
consumer.

Every scenario starts the same way: the client has a post P of its own with
one comment, counted (P's ``comment_count`` is 1). Then one part is stopped,
the client writes and reads through the gateway, and, where the scenario
says so, the part is started again. ``SCENARIOS`` says what is stopped and
what the client asks; ``predictions()`` holds what you expect it to see.
``tests/system/test_fault_drill.py`` runs the drill on real processes and
compares, question by question.
"""

from __future__ import annotations

from dataclasses import dataclass

# How many comments the client writes on P while a part is down, in the
# scenarios that say so.
WRITES = 3

# The kinds of answer.
STATUS = "status"  # the HTTP status code the client gets: an int (200, 503, ...)
WHO = "who"  # who answered (its X-Served-By header): "gateway", "posts" or "comments"
COUNT = "count"  # a number (an int), or None where the client gets no number
KINDS = {
    STATUS: "an HTTP status code (an int such as 200, 201, 204, 404, 503, 504)",
    WHO: "who answered, as its X-Served-By header says: 'gateway', 'posts' or 'comments'",
    COUNT: "a number (an int), or None when the client's answer holds none",
}
COMPONENTS = ("gateway", "posts", "comments")


@dataclass(frozen=True)
class Question:
    """One thing the client does, and what kind of answer it gets."""

    ask: str
    kind: str
    # Where the behaviour comes from: what to read when the prediction was wrong.
    look: str


@dataclass(frozen=True)
class Scenario:
    down: str  # what is stopped (and started again), and what runs on
    questions: dict[str, Question]


_COUNTS_FROM = "services/posts/posts/comment_counts.py (where comment_count comes from)"
_ROUTES = (
    "gateway/routes.py (which upstream answers a route) and CONNECT_TIMEOUT_S there "
    "(what the gateway answers when its upstream refuses the connection)"
)
_REPLICA = "services/comments/comments/post_lookup.py (how the comments service knows a post)"
_OUTBOX = (
    "services/comments/comments/services.py (the comment and its event, one write) and "
    "libs/blogbus/relay.py (the relay publishes what the outbox holds, and retries)"
)
_CONSUMER = (
    "services/posts/posts/events.py (the posts service's consumer counts comment events) "
    "and libs/blogbus/bus/worker.py (a durable queue, acked after the commit)"
)

SCENARIOS: dict[str, Scenario] = {
    "comments_down": Scenario(
        down=(
            "The comments service is killed (its web process; its relay and consumer, "
            "the posts service and the broker run on). Q is another post of the "
            "client's, without comments."
        ),
        questions={
            "list_posts": Question("GET /api/posts/", STATUS, _COUNTS_FROM),
            "get_post": Question("GET /api/posts/P/", STATUS, _COUNTS_FROM),
            "comment_count": Question(
                "P's comment_count in GET /api/posts/P/", COUNT, _COUNTS_FROM
            ),
            "list_comments": Question("GET /api/posts/P/comments/", STATUS, _ROUTES),
            "list_comments_by": Question("who answers GET /api/posts/P/comments/", WHO, _ROUTES),
            "write_comment": Question("POST /api/posts/P/comments/", STATUS, _ROUTES),
            "write_post": Question(
                "POST /api/posts/", STATUS, "services/posts/posts/services.py (post_create)"
            ),
            "delete_post": Question(
                "DELETE /api/posts/Q/",
                STATUS,
                "services/posts/posts/services.py (post_delete) and "
                "services/posts/posts/comments_client.py (comments_delete_of_post)",
            ),
        },
    ),
    "comments_down_counts_by_call": Scenario(
        down=(
            "As comments_down, but the posts service runs with COMMENT_COUNTS=sync: it "
            "asks the comments service for the counts of each page of posts, as in "
            "`STAGE=4 MODE=sync make up`."
        ),
        questions={
            "list_posts": Question("GET /api/posts/", STATUS, _COUNTS_FROM),
            "list_posts_by": Question(
                "who answers GET /api/posts/",
                WHO,
                "libs/blogweb/http.py (call_service) and services/posts/posts/comments_client.py",
            ),
            "get_post": Question("GET /api/posts/P/", STATUS, _COUNTS_FROM),
            "write_post": Question(
                "POST /api/posts/",
                STATUS,
                "services/posts/posts/services.py (post_create: does it need the counts?)",
            ),
        },
    ),
    "posts_down": Scenario(
        down=(
            f"The posts service is killed (its web process; its relay and consumer, the "
            f"comments service and the broker run on). The client writes {WRITES} comments "
            "on P, then the posts service is started again. X is a post id nobody has "
            "ever used."
        ),
        questions={
            "write_comment": Question(
                f"each of the {WRITES} POST /api/posts/P/comments/", STATUS, _REPLICA
            ),
            "write_comment_by": Question("who answers POST /api/posts/P/comments/", WHO, _REPLICA),
            "list_comments": Question("GET /api/posts/P/comments/", STATUS, _REPLICA),
            "write_comment_unknown_post": Question("POST /api/posts/X/comments/", STATUS, _REPLICA),
            "write_comment_unknown_post_by": Question(
                "who answers POST /api/posts/X/comments/",
                WHO,
                f"{_REPLICA} and services/comments/comments/posts_client.py",
            ),
            "list_posts": Question("GET /api/posts/", STATUS, _ROUTES),
            "list_posts_by": Question("who answers GET /api/posts/", WHO, _ROUTES),
            "comment_count_after": Question(
                "P's comment_count once the posts service is back", COUNT, _CONSUMER
            ),
        },
    ),
    "consumer_down": Scenario(
        down=(
            f"The posts service's consumer is killed (`bus_consume --service posts`; both "
            f"web services, both relays and the broker run on). The client writes {WRITES} "
            "comments on P, then the consumer is started again."
        ),
        questions={
            "write_comment": Question(
                f"each of the {WRITES} POST /api/posts/P/comments/", STATUS, _OUTBOX
            ),
            "comment_count_during": Question(
                "P's comment_count while the consumer is down", COUNT, _CONSUMER
            ),
            "listed_comments_during": Question(
                "the count in GET /api/posts/P/comments/ while the consumer is down",
                COUNT,
                "services/comments/comments/selectors.py (whose store the list reads)",
            ),
            "queued_during": Question(
                "messages waiting in the posts service's queue (posts.blog-events) while "
                "the consumer is down",
                COUNT,
                _CONSUMER,
            ),
            "comment_count_after": Question(
                "P's comment_count once the consumer is back", COUNT, _CONSUMER
            ),
        },
    ),
    "broker_down": Scenario(
        down=(
            f"The broker (RabbitMQ) is stopped; every service, relay and consumer runs on. "
            f"The client writes {WRITES} comments on P, creates a post R and comments on "
            "R, then the broker is started again."
        ),
        questions={
            "write_comment": Question(
                f"each of the {WRITES} POST /api/posts/P/comments/", STATUS, _OUTBOX
            ),
            "comment_count_during": Question(
                "P's comment_count while the broker is down", COUNT, _OUTBOX
            ),
            "listed_comments_during": Question(
                "the count in GET /api/posts/P/comments/ while the broker is down",
                COUNT,
                "services/comments/comments/selectors.py (whose store the list reads)",
            ),
            "write_post": Question(
                "POST /api/posts/ (R)", STATUS, "services/posts/posts/services.py (post_create)"
            ),
            "write_comment_new_post": Question(
                "POST /api/posts/R/comments/ (R was created while the broker is down)",
                STATUS,
                _REPLICA,
            ),
            "comment_count_after": Question(
                "P's comment_count once the broker is back", COUNT, f"{_OUTBOX}; {_CONSUMER}"
            ),
        },
    ),
}


def predictions() -> dict[str, dict[str, object]]:
    """What the client sees: ``{scenario: {question: answer}}``, an answer for
    every question of every scenario in ``SCENARIOS`` (its kind says what an
    answer is: a status code, a component's name, a number).

    Written from the code, not from a run: that is the drill."""
    return {
        "comments_down": {
            # COMMENT_COUNTS=async: the counts are a table of the posts service's own,
            # kept from comment events; the post routes never call the comments service.
            "list_posts": 200,
            "get_post": 200,
            "comment_count": 1,
            # The comment routes go to the comments service alone: the gateway cannot
            # connect (refused at once) and answers its own JSON 503, reads and writes.
            "list_comments": 503,
            "list_comments_by": "gateway",
            "write_comment": 503,
            # A post's write needs no comment: post_create asks nobody.
            "write_post": 201,
            # The post is deleted in one transaction with its post.deleted event; the
            # call to delete its comments is best effort (and the event does it later).
            "delete_post": 204,
        },
        "comments_down_counts_by_call": {
            # A page of posts needs one call for its counts; the call fails fast
            # (refused, one retry) and the posts service answers a JSON 503 itself.
            "list_posts": 503,
            "list_posts_by": "posts",
            "get_post": 503,
            "write_post": 201,
        },
        "posts_down": {
            # P is in the comments service's replica: it needs no call to know it exists.
            "write_comment": 201,
            "write_comment_by": "comments",
            "list_comments": 200,
            # An id the replica has never seen is read through to the posts service,
            # which cannot answer: the comments service says 503, it does not guess 404.
            "write_comment_unknown_post": 503,
            "write_comment_unknown_post_by": "comments",
            # The post routes have one upstream: the gateway's own 503.
            "list_posts": 503,
            "list_posts_by": "gateway",
            # Its consumer ran on and counted the events meanwhile: 1 + WRITES.
            "comment_count_after": 1 + WRITES,
        },
        "consumer_down": {
            # A comment is written with its event in the outbox; nobody waits for the
            # consumer.
            "write_comment": 201,
            # The counter lags: the events wait in the durable queue, unconsumed.
            "comment_count_during": 1,
            "listed_comments_during": 1 + WRITES,
            "queued_during": WRITES,
            # Back, the consumer takes them, each once: it catches up.
            "comment_count_after": 1 + WRITES,
        },
        "broker_down": {
            # Store and forward: the writes need only their own database; the events
            # wait in the outboxes.
            "write_comment": 201,
            "comment_count_during": 1,
            "listed_comments_during": 1 + WRITES,
            "write_post": 201,
            # post.created cannot reach the replica, but a replica miss reads through to
            # the posts service, which is up.
            "write_comment_new_post": 201,
            # The relays publish what waited once the broker is back: none lost, none
            # counted twice.
            "comment_count_after": 1 + WRITES,
        },
    }


def check_shape(answers: object, only: str | None = None) -> list[str]:
    """What is wrong with the form of ``predictions()``'s answer (a scenario
    or a question missing or unknown, an answer of the wrong kind), for every
    scenario or ``only`` one, so that a slip is named as such rather than as
    a wrong prediction."""
    if not isinstance(answers, dict):
        return [f"predictions() must return a dict of scenarios, not {type(answers).__name__}"]
    problems = []
    if only is None:
        problems += [f"unknown scenario {name!r}" for name in answers if name not in SCENARIOS]
    for name, scenario in SCENARIOS.items():
        if only not in (None, name):
            continue
        given = answers.get(name)
        if not isinstance(given, dict):
            problems.append(f"scenario {name!r}: no dict of answers")
            continue
        problems += [
            f"{name}: unknown question {q!r}" for q in given if q not in scenario.questions
        ]
        for key, question in scenario.questions.items():
            if key not in given:
                problems.append(f"{name}.{key} ({question.ask}): no answer")
            elif not fits(question.kind, given[key]):
                problems.append(
                    f"{name}.{key} ({question.ask}): {given[key]!r} is not {KINDS[question.kind]}"
                )
    return problems


def fits(kind: str, value: object) -> bool:
    """Whether ``value`` is an answer of ``kind``."""
    if kind == WHO:
        return value in COMPONENTS
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == STATUS:
        return is_int and 100 <= value <= 599
    return value is None or (is_int and value >= 0)
