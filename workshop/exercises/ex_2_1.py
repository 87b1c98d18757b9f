"""Exercise 2.1: branch by abstraction, the comments client behind the seam."""

from workshop.blank import Function
from workshop.catalogue import Exercise, Lesson, Suite

EXERCISE = Exercise(
    id="2.1",
    stage=2,
    title="Branch by abstraction: the comments client",
    goal=(
        "Write the two halves of the monolith's client of the comments service: "
        "blogweb.http.call_service (one HTTP call, bounded by a timeout, retried once, "
        "a DependencyUnavailable when the other side cannot answer) and "
        "monolith.comments.remote.comment_counts (the comment counts of a whole page of "
        "posts in ONE call to POST /internal/comment-counts/)."
    ),
    why=(
        "Behind monolith/comments/api.py (the seam) the comments can live in the monolith's "
        "own tables or in the new service: the posts app cannot tell. What it can tell is a "
        "slow or dead service. Without a timeout one hung call holds a worker; without a "
        "retry one dropped connection is an error; without a fast 503 the client waits; "
        "and a call per post turns one page into 25 round trips."
    ),
    patterns=(
        "branch by abstraction",
        "timeouts and one retry",
        "fail fast (503)",
        "batch call (no N+1 over HTTP)",
    ),
    minutes=40,
    blanks=(
        Function(
            "libs/blogweb/http.py",
            "call_service",
            "one bounded call, retried once, DependencyUnavailable when the service cannot answer",
            doc="One HTTP call to service ``name``; see ./exercise brief 2.1.",
        ),
        Function(
            "monolith/comments/remote.py",
            "comment_counts",
            "the counts of a page of posts in one call",
            doc="One call for a whole page: POST /internal/comment-counts/.",
        ),
    ),
    check=(
        Suite(
            (
                "libs/blogweb/tests/test_http_client.py",
                "libs/blogweb/tests/test_internal.py",
                "-k",
                "not test_internal or call_service",
                "--ds=blogweb.tests.settings",
            )
        ),
        Suite(("monolith/comments/tests/test_remote.py",)),
    ),
    lessons={
        "test_2xx_and_4xx_are_returned": Lesson(
            "2xx and 4xx answers are the caller's to read (a 404 is an answer, not an "
            "outage), and the caller's request id goes along (X-Request-ID)",
            1,
        ),
        "test_a_5xx_is_retried_once_then_unavailable": Lesson(
            "a 5xx is tried once more, then DependencyUnavailable(name)", 2
        ),
        "test_a_timeout_is_bounded": Lesson(
            "every call needs a timeout: a service that hangs must cost at most "
            "(retries + 1) x timeout",
            2,
        ),
        "test_a_dead_port_is_unavailable_fast": Lesson(
            "a refused connection (requests.RequestException) is DependencyUnavailable, "
            "at once, not an exception that becomes a 500",
            2,
        ),
        "test_the_post_list_asks_the_service_once_per_page": Lesson(
            "the post list makes ONE counts call for its page, with the page's ids as "
            "strings, and the monolith's credential (blogweb.internal.outgoing_headers)",
            3,
        ),
        "test_comments_service_down_lists_fail_fast": Lesson(
            "with the service down, the post list is a fast 503 (never a hang, never a 500) "
            "while writes that need no comments go on",
            2,
        ),
        "test_call_service_sends_this_components_credential": Lesson(
            "a call to an /internal/ route carries this component's credential: the "
            "headers come from blogweb.internal.outgoing_headers(url)",
            1,
        ),
        "test_call_service_says_when_the_callee_refuses": Lesson(
            "a 401/403 from an /internal/ route is logged as a credential problem "
            "(the callee's INTERNAL_CALLERS), and returned like any 4xx",
            2,
        ),
        "refuses_the_credential_is_a_503": Lesson(
            "an answer that is not 200 with a 'counts' object is unusable: "
            "DependencyUnavailable (a 503 for our client), logged",
            4,
        ),
    },
    hints=(
        "call_service: build the headers with outgoing_headers(url) (it adds this "
        "component's credential for /internal/ routes) and the current request id "
        "(current_request_id.get(), header REQUEST_ID_HEADER). Then _session.request("
        "method, url, json=json, params=params, headers=headers, timeout=timeout).",
        "Loop `for attempt in range(retries + 1)`: catch requests.RequestException (refused, "
        "reset, timed out) and try again; a response below 500 is returned as it is; a 5xx "
        "is tried again. When the tries are spent: raise DependencyUnavailable(name) (the "
        "project's exception handler turns it into a JSON 503).",
        "comment_counts: no ids, no call (return {}). Otherwise one call_service(SERVICE, "
        '"POST", f"{settings.COMMENTS_URL}/internal/comment-counts/", json={"post_ids": '
        "[...str ids...]}, timeout=settings.COMMENTS_TIMEOUT_S), and the reply's "
        '{"counts": {id: n}} back as {uuid.UUID(id): int(n)}.',
        "A reply you cannot use (status other than 200, no 'counts', a key that is no uuid) "
        "is the service failing, not the client: log it (logger.exception) and raise "
        "DependencyUnavailable(SERVICE) from None.",
    ),
    after=(
        "STAGE=2 make up   # the monolith asks the comments service for counts",
        "curl -s localhost:8080/api/posts/ | head -c 300   # counts from the service",
        "kill -STOP $(pgrep -f 'runserver 127.0.0.1:8002')   # pause the comments service",
        "curl -si localhost:8000/api/posts/ | head -1   # a 503 within about a second",
        "kill -CONT $(pgrep -f 'runserver 127.0.0.1:8002')   # and back",
    ),
    fast=(
        Suite(
            (
                "libs/blogweb/tests/test_internal.py",
                "-k",
                "not call_service",
                "--ds=blogweb.tests.settings",
            )
        ),
        Suite(("monolith/comments/tests/test_services.py",)),
    ),
)
