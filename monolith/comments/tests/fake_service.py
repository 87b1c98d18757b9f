"""A stand-in for the comments service's internal routes: a stdlib HTTP
server on a free port that records what it is asked (real HTTP, no mock)."""

from __future__ import annotations

from blogtest.http import JsonHandler, StubServer


class FakeCommentsService:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.requests: list[tuple[str, str, object]] = []
        self.authorizations: list[str | None] = []  # each request's Authorization header
        self.refuse: int | None = None  # when set, every request gets this status (401, 403)
        fake = self

        class Handler(JsonHandler):
            def do_POST(self):
                body = self.read_json()
                fake.requests.append(("POST", self.path, body))
                fake.authorizations.append(self.headers.get("Authorization"))
                if fake.refuse:
                    self.reply(fake.refuse, {"detail": "refused"})
                    return
                ids = body.get("post_ids", []) if isinstance(body, dict) else []
                self.reply(200, {"counts": {i: fake.counts[i] for i in ids if i in fake.counts}})

            def do_DELETE(self):
                fake.requests.append(("DELETE", self.path, None))
                fake.authorizations.append(self.headers.get("Authorization"))
                self.reply(204)

        self.stub = StubServer(Handler)
        self.url = self.stub.url

    def stop(self) -> None:
        self.stub.stop()
