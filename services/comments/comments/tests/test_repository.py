import time
import uuid
from datetime import UTC, timedelta

import pytest
from pymongo import monitoring

from blogweb.exceptions import DependencyUnavailable
from blogweb.timeutil import now_ms
from comments import repository

from .factories import make_comment


def test_insert_stores_the_document_shape(mongo_collection):
    post_id = uuid.uuid4()
    created_at = now_ms()
    record = make_comment(post_id=post_id, body="hello", created_at=created_at)
    stored = mongo_collection.find_one({"_id": str(record.id)})
    assert stored == {
        "_id": str(record.id),
        "post_id": str(post_id),
        "body": "hello",
        "created_at": created_at,
    }
    assert stored["created_at"].utcoffset() == timedelta(0)
    assert record.post_id == post_id


def test_list_is_oldest_first_with_ties_broken_by_id():
    post_id = uuid.uuid4()
    now = now_ms()
    newest = make_comment(post_id=post_id, created_at=now)
    oldest = make_comment(post_id=post_id, created_at=now - timedelta(seconds=5))
    tied = sorted(
        (make_comment(post_id=post_id, created_at=now - timedelta(seconds=1)) for _ in range(3)),
        key=lambda c: str(c.id),
    )
    make_comment(post_id=uuid.uuid4())  # another post's
    comments = repository.comments_of_post(post_id=post_id)
    assert comments.count() == 5
    assert [c.id for c in comments[0:10]] == [oldest.id, *(c.id for c in tied), newest.id]
    assert [c.id for c in comments[1:3]] == [tied[0].id, tied[1].id]
    assert comments[5:10] == []
    assert comments[2:2] == []
    assert all(c.created_at.tzinfo is not None for c in comments[0:5])


def test_timestamps_round_trip_at_millisecond_precision():
    created_at = now_ms().replace(microsecond=123000)
    record = make_comment(post_id=uuid.uuid4(), created_at=created_at)
    (read,) = repository.comments_of_post(post_id=record.post_id)[0:1]
    assert read.created_at == created_at
    assert read.created_at.astimezone(UTC).microsecond == 123000


def test_sub_millisecond_or_naive_timestamps_are_refused():
    with pytest.raises(ValueError, match="millisecond"):
        make_comment(post_id=uuid.uuid4(), created_at=now_ms().replace(microsecond=1))
    with pytest.raises(ValueError, match="millisecond"):
        make_comment(post_id=uuid.uuid4(), created_at=now_ms().replace(tzinfo=None))


def test_counts_in_one_aggregation_for_the_asked_posts_only():
    posts = [uuid.uuid4() for _ in range(4)]
    for n, post_id in enumerate(posts):
        for _ in range(n):
            make_comment(post_id=post_id)
    counts = repository.comment_counts(post_ids=[posts[0], posts[2], posts[3], posts[3]])
    assert counts == {posts[2]: 2, posts[3]: 3}
    assert repository.comment_counts(post_ids=[]) == {}


def test_delete_of_a_post_removes_its_comments_only(mongo_collection):
    post_id, other = uuid.uuid4(), uuid.uuid4()
    for _ in range(3):
        make_comment(post_id=post_id)
    make_comment(post_id=other)
    assert repository.comments_delete_of_post(post_id=post_id) == 3
    assert repository.comments_delete_of_post(post_id=post_id) == 0
    assert mongo_collection.count_documents({}) == 1
    assert repository.comments_of_post(post_id=other).count() == 1


def test_the_indexes_for_the_queries_exist(mongo_collection):
    repository.comments_of_post(post_id=uuid.uuid4()).count()
    keys = {ix["name"]: list(ix["key"].items()) for ix in mongo_collection.list_indexes()}
    assert keys["post_created_id"] == [("post_id", 1), ("created_at", 1), ("_id", 1)]


OPERATORS_AND_MALFORMED_IDS = [
    {"$gt": ""},
    {"$ne": None},
    "nope",
    str(uuid.uuid4()),  # a string is not a uuid.UUID either: only parsed ids get in
    1,
    None,
    ["x"],
]


@pytest.mark.parametrize("bad_id", OPERATORS_AND_MALFORMED_IDS)
def test_operators_and_unparsed_ids_never_reach_a_query(mongo_collection, bad_id):
    make_comment(post_id=uuid.uuid4())
    with pytest.raises(TypeError):
        repository.comments_of_post(post_id=bad_id)
    with pytest.raises(TypeError):
        repository.comment_counts(post_ids=[bad_id])
    with pytest.raises(TypeError):
        repository.comments_delete_of_post(post_id=bad_id)
    with pytest.raises(TypeError):
        repository.comment_insert(
            comment_id=uuid.uuid4(), post_id=bad_id, body="x", created_at=now_ms()
        )
    assert mongo_collection.count_documents({}) == 1


@pytest.mark.parametrize("bad_body", [{"$gt": ""}, ["x"], 42, None])
def test_a_body_that_is_not_a_string_is_refused(mongo_collection, bad_body):
    with pytest.raises(TypeError):
        repository.comment_insert(
            comment_id=uuid.uuid4(), post_id=uuid.uuid4(), body=bad_body, created_at=now_ms()
        )
    assert mongo_collection.count_documents({}) == 0


def test_a_body_that_looks_like_an_operator_is_stored_as_text(mongo_collection):
    record = make_comment(post_id=uuid.uuid4(), body='{"$gt": ""}')
    assert mongo_collection.find_one({"_id": str(record.id)})["body"] == '{"$gt": ""}'


def test_a_dead_mongodb_is_dependency_unavailable_fast(settings, dead_url):
    settings.MONGO_URL = f"mongodb://{dead_url}"
    post_id = uuid.uuid4()
    calls = [
        repository.ping,
        lambda: repository.comments_of_post(post_id=post_id).count(),
        lambda: repository.comments_of_post(post_id=post_id)[0:20],
        lambda: repository.comment_counts(post_ids=[post_id]),
        lambda: repository.comments_delete_of_post(post_id=post_id),
        lambda: make_comment(post_id=post_id),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(DependencyUnavailable) as caught:
            call()
        assert caught.value.dependency == "mongodb"
        assert time.monotonic() - started < 1.5


class _CommandLog(monitoring.CommandListener):
    """Every command the app's client sends while ``active``."""

    def __init__(self):
        self.active = False
        self.commands: list[str] = []

    def started(self, event):
        if self.active and event.command_name not in {"ping", "hello", "isMaster"}:
            self.commands.append(event.command_name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


_command_log = _CommandLog()
monitoring.register(_command_log)


@pytest.fixture
def command_log():
    repository.close_clients()  # the next client is created with the listener
    repository.comments_of_post(post_id=uuid.uuid4()).count()  # indexes ensured
    _command_log.commands.clear()
    _command_log.active = True
    yield _command_log.commands
    _command_log.active = False


def test_what_each_read_costs(command_log):
    post_id = uuid.uuid4()
    for _ in range(30):
        make_comment(post_id=post_id)
    command_log.clear()
    comments = repository.comments_of_post(post_id=post_id)
    comments.count()
    comments[20:40]
    assert command_log == ["aggregate", "find"]  # count_documents is an aggregation
    command_log.clear()
    repository.comment_counts(post_ids=[uuid.uuid4() for _ in range(100)])
    assert command_log == ["aggregate"]
    command_log.clear()
    repository.comment_counts(post_ids=[])
    assert command_log == []
