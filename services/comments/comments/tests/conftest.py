"""Real servers for the tests, no mocks of MongoDB: a SecantusDB process (or
the MongoDB at TEST_MONGO_URL) for the session, and a tiny fake posts server
(stdlib http.server) standing for the owner of posts, answering
GET /internal/posts/<id>/ with 200 or 404. The service has a token of its own
for that call, and accepts the owner of posts on its own internal routes
(``caller``: the test client with that credential)."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

import kombu  # [stage 3]
import pymongo
import pytest

from blogbus.testing import temporary_vhost  # [stage 3]
from blogtest.http import JsonHandler, serving
from blogtest.mongo import mongo_wire_server
from blogtest.ports import free_port
from blogtest.timing import wait_until
from blogweb.internal import authorization, caller_entry, parse_callers
from blogweb.settings import test_database_name
from comments import repository

TEST_DB = test_database_name("comments")
# This service's token (for its calls), and the owner of posts' (its caller).
OWN_TOKEN = secrets.token_urlsafe(32)
CALLER = "posts"
CALLER_TOKEN = secrets.token_urlsafe(32)


def _ping(url: str) -> None:
    """Until a MongoDB answers at ``url`` (TEST_MONGO_URL: a server of someone else's)."""
    client = pymongo.MongoClient(url, serverSelectionTimeoutMS=250, connectTimeoutMS=250)

    def answers() -> bool:
        try:
            return bool(client.admin.command("ping"))
        except pymongo.errors.PyMongoError:
            return False

    try:
        wait_until(answers, timeout_s=30, what=f"a MongoDB at {url}")
    finally:
        client.close()


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory) -> Iterator[str]:
    """A MongoDB-wire server for the whole session: TEST_MONGO_URL when set
    (a real MongoDB in CI), else a SecantusDB process of our own."""
    external = os.environ.get("TEST_MONGO_URL")
    if external:
        _ping(external)
        yield external
        return
    try:
        with mongo_wire_server(tmp_path_factory.mktemp("secantus")) as url:
            yield url
    finally:
        repository.close_clients()


@pytest.fixture(scope="session")
def mongo_collection(mongo_url) -> Iterator[pymongo.collection.Collection]:
    """Direct access for assertions and clean-up (the app goes through the
    repository only)."""
    client = pymongo.MongoClient(mongo_url, tz_aware=True)
    yield client[TEST_DB][repository.COLLECTION]
    client.drop_database(TEST_DB)
    client.close()


_POST_PATH = re.compile(r"^/internal/posts/([^/]+)/$")


@dataclass
class FakePosts:
    """What the fake owner of posts knows, and what it was asked."""

    url: str = ""
    known: set[str] = field(default_factory=set)
    requests: list[dict] = field(default_factory=list)
    # When set, every request gets this status (a misbehaving owner of posts).
    forced_status: int | None = None

    def add(self, post_id) -> str:
        self.known.add(str(post_id))
        return str(post_id)

    def remove(self, post_id) -> None:
        self.known.discard(str(post_id))

    def reset(self) -> None:
        self.known.clear()
        self.requests.clear()
        self.forced_status = None


@pytest.fixture(scope="session")
def fake_posts_server() -> Iterator[FakePosts]:
    state = FakePosts()

    class Handler(JsonHandler):
        def do_GET(self):
            state.requests.append({"path": self.path, "headers": dict(self.headers)})
            match = _POST_PATH.match(self.path)
            if state.forced_status is not None:
                self.reply(state.forced_status, {"detail": "forced"})
            elif match and match.group(1) in state.known:
                self.reply(200, {"id": match.group(1)})
            else:
                self.reply(404, {"detail": "Not found."})

    with serving(Handler) as url:
        state.url = url
        yield state


@pytest.fixture
def fake_posts(fake_posts_server) -> FakePosts:
    fake_posts_server.reset()
    return fake_posts_server


@pytest.fixture(autouse=True)
def _service_settings(settings, mongo_url, mongo_collection, fake_posts):
    """Every test talks to the session's MongoDB and fake posts server, and
    starts with empty collections."""
    settings.MONGO_URL = mongo_url
    settings.MONGO_DB = TEST_DB
    settings.POSTS_URL = fake_posts.url
    settings.INTERNAL_TOKEN = OWN_TOKEN
    settings.INTERNAL_CALLERS = parse_callers(caller_entry(CALLER, CALLER_TOKEN))
    mongo_collection.delete_many({})
    yield
    mongo_collection.delete_many({})


@pytest.fixture
def caller(client):
    """The test client, calling as the owner of posts (a caller the service accepts)."""
    client.defaults["HTTP_AUTHORIZATION"] = authorization(CALLER, CALLER_TOKEN)
    return client


@pytest.fixture
def dead_url() -> str:
    """An address where nothing listens: connections are refused at once."""
    return f"127.0.0.1:{free_port()}"


# >>> stage 3: events: the replica of posts, the broker
@pytest.fixture(scope="session")
def replica_collection(mongo_collection) -> pymongo.collection.Collection:
    """The replica of posts (POST_LOOKUP=async), for assertions and clean-up."""
    return mongo_collection.database[repository.REPLICA_COLLECTION]


@pytest.fixture(autouse=True)
def _empty_replica(_service_settings, replica_collection):
    """Every test starts with an empty replica of posts too."""
    replica_collection.delete_many({})
    yield
    replica_collection.delete_many({})


# The event tests use the shared RabbitMQ, in a vhost of the session.
@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """The shared RabbitMQ (BROKER_URL, default 127.0.0.1:5672), in a vhost of
    this session only, deleted at the end: its blog.events, queues and
    messages are nobody else's."""
    base = os.environ.get("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    with temporary_vhost(base, "comments-test") as url:
        yield url


@pytest.fixture
def amqp(broker_url) -> Iterator[kombu.Connection]:
    conn = kombu.Connection(broker_url, connect_timeout=5)
    conn.ensure_connection(max_retries=2, interval_start=0.2)
    yield conn
    conn.release()

    # <<< stage 3
