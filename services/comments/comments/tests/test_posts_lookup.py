"""The sync lookup: the owner of posts asked over HTTP, bounded in time."""

import json
import socket
import threading
import time
import uuid

import pytest

from blogweb.exceptions import DependencyUnavailable
from comments import post_lookup

from .conftest import OWN_TOKEN


# >>> stage 3: the sync lookup is one of two modes; the service's default is async
@pytest.fixture(autouse=True)
def sync_mode(settings):
    settings.POST_LOOKUP = "sync"
    # <<< stage 3


def test_a_known_post_exists_and_an_unknown_one_does_not(fake_posts):
    known = uuid.uuid4()
    fake_posts.add(known)
    assert post_lookup.post_exists(known) is True
    assert post_lookup.post_exists(uuid.uuid4()) is False
    assert fake_posts.requests[0]["path"] == f"/internal/posts/{known}/"


def test_the_call_carries_this_services_credential(fake_posts):
    post_lookup.post_exists(uuid.uuid4())
    [request] = fake_posts.requests
    assert request["headers"]["Authorization"] == f"Bearer comments.{OWN_TOKEN}"


@pytest.mark.parametrize("status", [401, 403])
def test_an_owner_of_posts_that_refuses_the_credential_is_a_503(client, fake_posts, status):
    post_id = fake_posts.add(uuid.uuid4())
    fake_posts.forced_status = status
    response = client.get(f"/api/posts/{post_id}/comments/")
    assert response.status_code == 503
    assert response.json() == {"detail": "Service unavailable: posts is not reachable."}


def test_a_post_deleted_in_posts_is_gone_at_once(client, fake_posts):
    post_id = fake_posts.add(uuid.uuid4())
    path = f"/api/posts/{post_id}/comments/"
    assert client.get(path).status_code == 200
    fake_posts.remove(post_id)
    assert client.get(path).status_code == 404


def test_an_unparsed_id_is_refused_before_any_call(fake_posts):
    with pytest.raises(TypeError):
        post_lookup.post_exists(str(uuid.uuid4()))
    assert fake_posts.requests == []


def test_posts_down_is_a_fast_503(client, settings, dead_url, mongo_collection):
    settings.POSTS_URL = f"http://{dead_url}"
    post_id = uuid.uuid4()
    started = time.monotonic()
    response = client.post(
        f"/api/posts/{post_id}/comments/",
        data=json.dumps({"body": "hello"}),
        content_type="application/json",
    )
    assert time.monotonic() - started < 1.5
    assert response.status_code == 503
    assert response.json() == {"detail": "Service unavailable: posts is not reachable."}
    assert response["X-Served-By"] == "comments"
    assert client.get(f"/api/posts/{post_id}/comments/").status_code == 503
    assert mongo_collection.count_documents({}) == 0


@pytest.fixture
def silent_url():
    """A server that accepts connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    for sock in accepted:
        sock.close()
    listener.close()


def test_an_owner_of_posts_that_hangs_is_a_503_within_1_5_s(client, settings, silent_url):
    settings.POSTS_URL = silent_url
    started = time.monotonic()
    response = client.post(
        f"/api/posts/{uuid.uuid4()}/comments/",
        data=json.dumps({"body": "hello"}),
        content_type="application/json",
    )
    assert time.monotonic() - started < 1.5
    assert response.status_code == 503
    assert "posts" in response.json()["detail"]


@pytest.mark.parametrize("status", [418, 400, 500, 503])
def test_an_answer_outside_the_internal_contract_is_a_503(client, fake_posts, status):
    post_id = fake_posts.add(uuid.uuid4())
    fake_posts.forced_status = status
    with pytest.raises(DependencyUnavailable):
        post_lookup.post_exists(uuid.UUID(post_id))
    response = client.get(f"/api/posts/{post_id}/comments/")
    assert response.status_code == 503
    assert response.json() == {"detail": "Service unavailable: posts is not reachable."}
