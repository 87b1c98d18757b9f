"""Exercise 1.1: the facade owns the front door."""

from workshop.blank import Replace
from workshop.catalogue import Exercise, Lesson, Suite

ROUTES = "gateway/routes.py"

EXERCISE = Exercise(
    id="1.1",
    stage=1,
    title="Facade: a route family of the gateway's own",
    goal=(
        "Add the route family for /internal to the gateway's route table "
        "(gateway/routes.py): the gateway answers every spelling of /internal itself with "
        "a JSON 404, and sends look-alikes (/internals/, /api/internal/) on as before. "
        "Write its pattern (INTERNAL) and its Route, then see the route in the nginx "
        "config that gateway.render writes and in the dev router."
    ),
    why=(
        "At stage 1 everything the gateway does not own goes to the monolith, and from "
        "stage 2 on the services talk to each other on /internal/ routes. The front door "
        "must never forward those from outside, however the path is spelt: one table "
        "drives both gateways (nginx in production, the Python dev router on a laptop), "
        "so one route fixes both."
    ),
    patterns=("strangler fig: own the front door", "API gateway", "one table, two renderings"),
    minutes=25,
    blanks=(
        Replace(
            ROUTES,
            'INTERNAL = r"^/+internal(/.*)?$"\n',
            "# Exercise 1.1: a pattern for every spelling of /internal. This one matches\n"
            "# nothing yet (./exercise hint 1.1).\n"
            'INTERNAL = r"(?!)"\n',
            "INTERNAL, the pattern",
        ),
        Replace(
            ROUTES,
            '    Route(ANY, "regex", INTERNAL, "gateway", "internal"),\n',
            "    # Exercise 1.1: the gateway's own route for /internal goes here.\n",
            "_GATEWAY_OWN, the route",
        ),
        Replace(
            ROUTES,
            "# Matched on the normalised path (percent-decoding and dot segments resolved,\n"
            "# as nginx matches locations); leading slashes may repeat, nginx keeping\n"
            "# `//` as sent (merge_slashes off): `//internal/...` is refused too.\n",
            "",
        ),
    ),
    check=(
        Suite(("gateway/tests/test_routes.py", "-k", "internal")),
        Suite(("gateway/tests/test_http.py", "-k", "internal")),
    ),
    lessons={
        "test_internal_paths_are_answered_by_the_gateway[/internal-": Lesson(
            "/internal itself (no slash after it) is the gateway's too", 3
        ),
        "test_internal_paths_are_answered_by_the_gateway[//": Lesson(
            "nginx does not merge repeated slashes here (merge_slashes off, so that the "
            "apps see the path as sent): //internal/... must be refused as well",
            3,
        ),
        "test_internal_paths_are_answered_by_the_gateway": Lesson(
            "a Route in _GATEWAY_OWN that sends /internal and everything under it to the "
            "upstream 'gateway', for any method",
            1,
        ),
        "test_paths_that_only_look_internal": Lesson(
            "the pattern is too wide: only /internal and what is under /internal/ are the "
            "gateway's; anchor it at both ends",
            2,
        ),
        "test_internal_routes_are_never_forwarded": Lesson(
            "a real gateway (nginx or the dev router) forwarded an /internal request to the "
            "monolith: the route table is what both are built from",
            2,
        ),
    },
    hints=(
        'Look at the two routes above the gap: `Route(ANY, "exact", "/healthz", '
        '"gateway", "healthz")`. Yours is a regex route (match "regex") with the '
        'pattern INTERNAL, any method (ANY), answered by the upstream "gateway".',
        "Regex routes are matched like nginx's `location ~`: against the path only, "
        "after percent-decoding and dot segments (/./, /../) are resolved. Anchor the "
        "pattern at both ends (^...$) so /internals/ and /api/internal/ stay the monolith's.",
        "Cover /internal, /internal/ and anything below it, with one or more leading "
        'slashes: r"^/+internal(/.*)?$". Then look: `.venv/bin/python -m gateway.render '
        "--stage 1 --out /tmp/nginx.conf` and find your `location ~`.",
    ),
    after=(
        ".venv/bin/python -m gateway.routes --stage 1   # the table, as the gateways read it",
        "STAGE=1 make up   # the gateway on :8080 in front of the monolith on :8000",
        "curl -si localhost:8080//internal/comment-counts/ | head -5   # a JSON 404 "
        "from the gateway (X-Served-By: gateway)",
    ),
    fast=(Suite(("gateway/tests/test_render.py", "-k", "not internal")),),
)
