"""The Idempotency-Key rules (blogweb.idempotency), with an in-memory store:
key parsing, the fingerprint, replay, 422, the race's loser, the purge. The
stores on real databases are tested by each app (the monolith's
monolith/idempotency/tests/, the services' own suites)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from blogweb import idempotency
from blogweb.idempotency import Claim, InvalidKey, KeyInFlight, KeyReused, KeyTaken, Recorded


class MemoryStore:
    """A store in a dict, with the unique constraint of the real ones."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[Recorded, datetime]] = {}
        self.lock = threading.Lock()
        self.purges = 0
        self.purge_error: Exception | None = None
        self.hide_next_find = False  # the race: the first find misses a record made meanwhile

    def find(self, scope, key, *, now):
        if self.hide_next_find:
            self.hide_next_find = False
            return None
        with self.lock:
            found = self.records.get(idempotency.scoped_key(scope, key))
            if found is None:
                return None
            if found[1] <= now:
                del self.records[idempotency.scoped_key(scope, key)]
                return None
            return found[0]

    def create(self, claim: Claim, create):
        response = create(claim)
        if 200 <= response.status_code < 300:
            with self.lock:
                if claim.scoped_key in self.records:
                    raise KeyTaken(claim.scoped_key)
                recorded = Recorded(claim.fingerprint, response.status_code, response.data)
                self.records[claim.scoped_key] = (recorded, claim.expires_at)
        return response

    def purge(self, *, now):
        self.purges += 1
        if self.purge_error:
            raise self.purge_error
        return 0


@pytest.fixture
def store():
    idempotency._last_purge.clear()
    return MemoryStore()


class Creator:
    """A create route's body: a new id per call, and the claims it was given."""

    def __init__(self, status: int = 201) -> None:
        self.calls: list[Claim | None] = []
        self.status = status

    def __call__(self, claim):
        self.calls.append(claim)
        return Response({"id": len(self.calls)}, status=self.status)


def request(body=None, key: str | None = None, raw: bytes | None = None) -> Request:
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    data = raw if raw is not None else json.dumps(body if body is not None else {"title": "t"})
    django_request = APIRequestFactory().post(
        "/api/posts/", data=data, content_type="application/json", **headers
    )
    return Request(django_request, parsers=[JSONParser()])


def respond(store, creator, **kwargs):
    return idempotency.respond(request(**kwargs), scope="posts", store=store, create=creator)


# --- the key ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ('"8e03978e-40d5-43e8-bc93-6894a57f9324"', "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ("a", "a"),
        ("k" * 255, "k" * 255),
        ("with spaces and ~!@#$%^&*()", "with spaces and ~!@#$%^&*()"),
    ],
)
def test_a_valid_key_is_read(raw, key):
    assert idempotency.parse_key(raw) == key


def test_no_header_is_no_key():
    assert idempotency.parse_key(None) is None


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        '""',
        "k" * 256,
        "tab\there",
        "new\nline",
        "caf\u00e9",
        "nul\x00",
        '"a"b"',
        '"a\\b"',
    ],
)
def test_a_malformed_key_is_refused(raw):
    with pytest.raises(InvalidKey):
        idempotency.parse_key(raw)


def test_the_fingerprint_ignores_key_order_and_whitespace():
    a = idempotency.fingerprint(json.loads('{"title": "t", "body": "b"}'))
    b = idempotency.fingerprint(json.loads('{ "body":"b","title":"t" }'))
    assert a == b
    assert a != idempotency.fingerprint({"title": "t", "body": "B"})
    assert a != idempotency.fingerprint({"title": "t", "body": "b", "x": None})


def test_scoped_keys_need_a_one_word_scope():
    assert idempotency.scoped_key("comments:1", "a b") == "comments:1 a b"
    with pytest.raises(ValueError, match="one word"):
        idempotency.scoped_key("two words", "k")


# --- respond ------------------------------------------------------------------


def test_without_a_key_the_route_runs_as_always(store):
    creator = Creator()
    first, second = respond(store, creator), respond(store, creator)
    assert (first.status_code, first.data, second.data) == (201, {"id": 1}, {"id": 2})
    assert creator.calls == [None, None]
    assert idempotency.REPLAYED_HEADER not in first
    assert store.records == {}


def test_the_same_key_and_body_replays_the_first_response(store):
    creator = Creator()
    first = respond(store, creator, key="k1", body={"title": "t", "body": "b"})
    again = respond(store, creator, key="k1", raw=b'{"body": "b",  "title": "t"}')
    assert first.status_code == again.status_code == 201
    assert first.data == again.data == {"id": 1}
    assert again[idempotency.REPLAYED_HEADER] == "true"
    assert idempotency.REPLAYED_HEADER not in first
    assert len(creator.calls) == 1
    [claim] = creator.calls
    assert (claim.scope, claim.key) == ("posts", "k1")
    assert claim.expires_at - datetime.now(UTC) > timedelta(hours=23)


def test_the_same_key_with_another_body_is_a_422(store):
    creator = Creator()
    respond(store, creator, key="k1", body={"title": "t"})
    with pytest.raises(KeyReused) as raised:
        respond(store, creator, key="k1", body={"title": "other"})
    assert raised.value.status_code == 422
    assert len(creator.calls) == 1


def test_keys_are_scoped(store):
    creator = Creator()
    body = {"body": "b"}
    for scope in ("comments:1", "comments:2"):
        idempotency.respond(request(body, key="k"), scope=scope, store=store, create=creator)
    assert len(creator.calls) == 2


def test_a_failed_request_records_nothing_and_can_be_retried(store):
    refused = Creator(status=400)
    assert respond(store, refused, key="k1").status_code == 400
    creator = Creator()
    assert respond(store, creator, key="k1").status_code == 201
    assert len(creator.calls) == 1


def test_an_error_raised_by_the_route_records_nothing(store):
    def boom(claim):
        raise KeyError("no")

    with pytest.raises(KeyError):
        respond(store, boom, key="k1")
    assert store.records == {}


def test_a_malformed_key_is_refused_before_anything_runs(store):
    creator = Creator()
    with pytest.raises(InvalidKey) as raised:
        respond(store, creator, key="")
    assert raised.value.status_code == 400
    assert creator.calls == []


def test_an_expired_key_is_free_again(store, monkeypatch):
    monkeypatch.setattr(idempotency, "KEY_TTL", timedelta(seconds=-1))  # expired at once
    creator = Creator()
    respond(store, creator, key="k1", body={"title": "a"})
    again = respond(store, creator, key="k1", body={"title": "b"})
    assert again.data == {"id": 2}
    assert idempotency.REPLAYED_HEADER not in again


def test_the_loser_of_a_race_answers_with_the_winners_response(store):
    creator = Creator()
    respond(store, creator, key="k1")
    store.hide_next_find = True  # as if the winner committed after the loser's look-up
    again = respond(store, creator, key="k1")
    assert again.data == {"id": 1}
    assert again[idempotency.REPLAYED_HEADER] == "true"


def test_a_taken_key_whose_record_cannot_be_found_is_a_409(store):
    class Vanishing(MemoryStore):
        def create(self, claim, create):
            raise KeyTaken(claim.scoped_key)

    with pytest.raises(KeyInFlight) as raised:
        respond(Vanishing(), Creator(), key="k1")
    assert raised.value.status_code == 409


def test_two_threads_with_one_key_create_once(store):
    """The in-memory store's lock stands for the unique index: both threads
    get past the look-up, one records, the other answers its response."""
    barrier = threading.Barrier(2)
    find = store.find
    waited: set[str] = set()

    def slow_find(scope, key, *, now):
        found = find(scope, key, now=now)
        if threading.current_thread().name not in waited:  # each thread's first look-up
            waited.add(threading.current_thread().name)
            barrier.wait(timeout=5)
        return found

    store.find = slow_find
    creator = Creator()
    results = []

    def run():
        results.append(respond(store, creator, key="k1"))

    threads = [threading.Thread(target=run, name=f"race-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 2
    assert results[0].data == results[1].data
    assert len(store.records) == 1
    assert sorted(r.get(idempotency.REPLAYED_HEADER, "") for r in results) == ["", "true"]


def test_the_purge_runs_now_and_then_and_never_fails_a_request(store, caplog):
    creator = Creator()
    respond(store, creator, key="k1")
    respond(store, creator, key="k2")
    assert store.purges == 1  # at most once per PURGE_INTERVAL_S
    idempotency._last_purge.clear()
    store.purge_error = RuntimeError("store down")
    assert respond(store, creator, key="k3").status_code == 201
    assert "expired keys not purged" in caplog.text
