"""Exercise 4.2: the fault drill: predict what the client sees, then check it."""

from workshop.blank import Function
from workshop.catalogue import Exercise, Lesson, Suite

DRILL = "tests/system/fault_drill.py"
VERBOSE = "(../../exercise check -v names each wrong prediction and what the client saw)"

EXERCISE = Exercise(
    id="4.2",
    stage=4,
    title="Fault drill: kill a part while writing, predict what the client sees",
    goal=(
        "tests/system/fault_drill.py describes five faults of stage 4 in async mode (the "
        "comments service killed; the same with the posts service asking it for counts; "
        "the posts service killed; the posts service's consumer killed; the broker "
        "stopped) and, for each, what a client does through the gateway while the part "
        "is down. Write predictions(): for every question, the status code, who answers "
        "(X-Served-By) or the number the client gets, reasoned from the code, before you "
        "run anything. The check then runs the drill on real processes (nginx, both "
        "services, their relays and consumers, a RabbitMQ node of its own; about a "
        "minute) and compares, question by question."
    ),
    why=(
        "A design for failure is only as good as the team's picture of it. During an "
        "incident nobody has time to read the code: the on-call engineer has to know that "
        "a dead comments service costs the comment routes and not the post list, that a "
        "stopped broker delays counts but loses no comment, and that a 503 from the "
        "gateway means something else than a 503 from a service. A drill, predicted first "
        "and then observed, finds the wrong pictures before an outage does."
    ),
    patterns=(
        "fail fast (a JSON 503 at once)",
        "bulkhead (async seams)",
        "timeouts and one retry",
        "store and forward (outbox)",
        "at-least-once delivery, exactly-once effect",
    ),
    minutes=45,
    blanks=(
        Function(
            DRILL,
            "predictions",
            "predict what the client sees in each scenario of SCENARIOS",
            doc="Your answers: {scenario: {question: answer}} for every question of SCENARIOS.",
        ),
    ),
    files_hint=(
        f"{DRILL}: SCENARIOS (what is stopped, what the client asks, where to read) and "
        "predictions() (your answers); the drill itself is tests/system/test_fault_drill.py"
    ),
    check=(Suite(("tests/system/test_fault_drill.py",)),),
    lessons={
        "test_comments_service_down": Lesson(
            "with the comments service down in async mode: which routes still answer "
            "(where does a post's comment_count come from?), who answers the comment "
            f"routes and how fast, and whether a post can be written or deleted {VERBOSE}",
            2,
        ),
        "test_counts_by_call_comments_down": Lesson(
            "with COMMENT_COUNTS=sync a page of posts needs a call to the comments "
            "service: what the posts service answers when that call fails, and whether "
            f"the gateway or the service says so {VERBOSE}",
            2,
        ),
        "test_posts_service_down": Lesson(
            "with the posts service down: a post the comments service's replica knows "
            "takes comments, one it has never seen cannot be checked; and the posts "
            f"service's consumer is a process of its own {VERBOSE}",
            3,
        ),
        "test_consumer_down": Lesson(
            "with the posts consumer down: the writes, where their events wait meanwhile, "
            f"what the counter shows, and whether it catches up {VERBOSE}",
            4,
        ),
        "test_broker_down": Lesson(
            "with the broker down: whether a write needs it, what the counter and the "
            "comment list show meanwhile, whether a post written meanwhile takes comments, "
            f"and whether the counter catches up without loss or double count {VERBOSE}",
            4,
        ),
    },
    hints=(
        "One question at a time, from the code: who answers this path (gateway/routes.py: "
        "the posts service, the comments service, or the gateway itself), and what does "
        "that answer need (its database, the other service, the broker)? If something it "
        "needs is down, is there a copy of its own (a table, a replica), a queue, or only "
        "a call? Each question's `look` names the file to read.",
        "Fail fast, and who says it: a killed web process refuses connections, so the "
        "gateway answers its own JSON 503 at once (X-Served-By: gateway). A service that "
        "is up but whose dependency is down answers 503 itself (blogweb.http.call_service: "
        "one retry, then DependencyUnavailable, a JSON 503 with X-Served-By: that "
        "service); the gateway passes an upstream's answer through untouched. In async "
        "mode the posts service reads comment_count from its own table "
        "(posts/comment_counts.py) and never calls the comments service; with "
        "COMMENT_COUNTS=sync every page of posts calls it. Writing a post asks nobody; "
        "deleting one calls the comments service on a best-effort basis.",
        "The comments service's bulkhead is its replica of posts (post_lookup.py): a post "
        "it knows (P got a comment before the fault) needs no call, so P takes comments "
        "with the posts service down; an id it has never seen is read through to the "
        "posts service, and with that down the comments service cannot tell: 503, not "
        "404. Killing the posts service's web process leaves its consumer running: it "
        "goes on counting comment events.",
        "Store and forward: a comment and its event are written together (the outbox), so "
        "writes answer 201 while the broker or a consumer is down, and the comment list "
        "(the comments service's own store) shows them at once. The counter lags: with the "
        "broker down the events wait in the outbox (a post written then is still found by "
        "the replica's read-through); with the consumer down they wait in its durable "
        "queue, one message per comment. Back, the relay publishes (with back-off) and "
        "the consumer applies each event once (the inbox): the count ends at exactly 1 + "
        "WRITES.",
    ),
    after=(
        "STAGE=4 make up   # async: the dev router on :8080, posts on :8001, comments on "
        ":8002 (a process that dies stops them all, so pause one instead: kill -STOP)",
        "P=$(curl -s -XPOST localhost:8080/api/posts/ -H 'Content-Type: application/json' "
        '-d \'{"title":"t","body":"b"}\' | python3 -c \'import json,sys; '
        'print(json.load(sys.stdin)["id"])\')',
        "kill -STOP $(pgrep -f 'bus_consume --service posts')   # the posts consumer pauses",
        "curl -s -XPOST localhost:8080/api/posts/$P/comments/ -H 'Content-Type: "
        'application/json\' -d \'{"body":"hi"}\'; curl -s localhost:8080/api/posts/$P/   '
        "# 201, and comment_count still 0",
        "kill -CONT $(pgrep -f 'bus_consume --service posts'); sleep 2; "
        "curl -s localhost:8080/api/posts/$P/   # it caught up: 1",
        "# Predict first: the comments service hung, not dead (kill -STOP $(pgrep -f "
        "'runserver 127.0.0.1:8002')), then curl -si localhost:8080/api/posts/$P/comments/ "
        "| head -1 and time it; kill -CONT it afterwards",
        ".venv/bin/pytest tests/system/test_fault_drill.py -q   # the whole drill again",
    ),
    fast=(
        Suite(
            (
                "gateway/tests/test_http.py",
                "-k",
                "fast_json_503 or stage_4_routes or passes_through_untouched",
            )
        ),
        Suite(("gateway/tests/test_routes.py",)),
    ),
)
