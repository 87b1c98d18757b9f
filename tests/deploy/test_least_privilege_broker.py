"""RabbitMQ: one user per component, limited to its own queues and event
types; the topology user of compose's bus_declare one-shots; an
administrator no component gets.

The users are definitions that scripts/broker_users.py writes (compose runs
it as a one-shot before the broker; the dev overlay ships its output for
the dev passwords). Here the script runs as compose runs it, a RabbitMQ
node of the test's own loads the result as the broker does at boot, and
each component's BROKER_URL, as compose gives it, does its component's real
work through blogbus (declare and bind its queue, publish its events, queue
a retry, run its Celery worker) and is refused another component's. The
node is the Debian package's RabbitMQ (3.10), not the images' (3.13, 4.1):
the definitions format and the permission checks are the same.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

import kombu
from amqp.exceptions import AccessRefused

from blogbus.bus.consumer import OwnQueuePublisher
from blogbus.bus.topology import declare_topology, queue_name
from blogbus.publisher import EnvelopePublisher
from blogbus.testing import queue_counts
from blogtest.timing import wait_until
from scripts import broker_users
from stages import table
from tests.deploy.credentials import (
    TOPOLOGY,
    compose_component,
    compose_services,
    credentials_in,
    k8s_data,
    owner,
    swap_host,
)
from tests.deploy.dockerfiles import ROOT
from tests.support.broker import PrivateBroker

SCRIPT = ROOT / "scripts" / "broker_users.py"


def broker_apps() -> set[str]:
    """The apps that reach the broker at some stage (their processes' BROKER_URL)."""
    return {
        process.app
        for stage in table.STAGES.values()
        for topology in stage.topologies.values()
        for process in topology.processes
        if "BROKER_URL" in dict(process.env)
    }


def users_service() -> dict:
    """compose's one-shot that writes the broker's users."""
    found = [
        s for _f, _n, s in compose_services() if "/opt/blog/broker_users.py" in s.get("command", [])
    ]
    assert found, "no compose service runs scripts/broker_users.py"
    return found[-1]


def compose_users(service: dict) -> list[str]:
    """The users the one-shot's command writes."""
    return [a for a in service["command"] if a in broker_users.PASSWORD_ENV]


def compose_broker_urls() -> dict[str, str]:
    """Each component's (and the topology one-shots') BROKER_URL, by owner."""
    urls: dict[str, str] = {}
    for _stage_file, name, service in compose_services():
        component = compose_component(service)
        for credential in credentials_in(service.get("environment", {})) if component else ():
            if credential.scheme == "amqp":
                who = owner(component, credential.variable)
                assert urls.setdefault(who, credential.url or "") == credential.url, name
    return urls


def test_the_script_knows_who_publishes_and_consumes_what_the_stage_table_says():
    assert set(broker_users.COMPONENTS) == broker_apps()
    for app, component in broker_users.COMPONENTS.items():
        assert set(component.consumes) == set(table.consumer_of(app).keys), app
    for stage in table.STAGES.values():
        for topology in stage.topologies.values():
            relays = {p.app for p in topology.of_role("relay")}
            published = {k for app in relays for k in broker_users.COMPONENTS[app].publishes}
            for consumer in topology.consumers:
                missing = set(consumer.keys) - published
                assert not missing, f"stage {stage.number}: nobody publishes {missing}"


def test_compose_makes_a_user_for_each_component_the_topology_and_an_administrator():
    users = set(compose_users(users_service()))
    assert users == broker_apps() | {TOPOLOGY, broker_users.ADMIN}
    assert set(compose_broker_urls()) == broker_apps() | {TOPOLOGY}


def test_the_dev_overlays_definitions_are_the_scripts_for_the_dev_passwords():
    """One file per component with events, each the script's definitions for
    the password of that component's broker-url; no administrator."""
    files = k8s_data("Secret", "rabbitmq-definitions")
    assert set(files) == {f"{app}.json" for app in broker_apps()}
    for file_name, text in files.items():
        user = file_name.removesuffix(".json")
        found = json.loads(text)
        url = k8s_data("Secret", f"{user}-secrets")["broker-url"]
        password = credentials_in({"BROKER_URL": url})[0].secret
        [entry] = found["users"]
        assert broker_users.hash_matches(entry["password_hash"], password), file_name
        want = broker_users.definitions(user, password)
        want["users"][0]["password_hash"] = entry["password_hash"]
        assert found == want, (
            f"{file_name} differs from the script's: regenerate it (k8s/README.md)"
        )
        assert entry["tags"] == []


@contextmanager
def broker_with_compose_users():
    """A private node that loaded the users the compose one-shot writes."""
    service = users_service()
    command = service["command"]
    folder = Path(tempfile.mkdtemp(prefix="blog-rabbitmq-"))
    try:
        broker = PrivateBroker(folder)
        out = command.index("--out")
        users = compose_users(service)
        env = {k: str(v) for k, v in service["environment"].items()}
        result = subprocess.run(
            [sys.executable, str(SCRIPT), "--out", str(folder / "definitions"), *users],
            env={"PATH": os.environ.get("PATH", ""), **env},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert command[out + 1] == "/definitions"
        with (folder / "rabbitmq.conf").open("a") as conf:
            conf.write(f"load_definitions = {folder / 'definitions'}\n")
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(folder)], check=True, timeout=30)
        broker.start()
        try:
            yield broker, env
        finally:
            broker.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def publish(url: str, event_type: str) -> str | None:
    publisher = EnvelopePublisher(url)
    try:
        return publisher.publish_json(
            "{}", message_id=f"lp-{event_type}", event_type=event_type, routing_key=event_type
        )
    finally:
        publisher.close()


def refused(attempt) -> bool:
    try:
        attempt()
    except AccessRefused:
        return True
    return False


def test_each_broker_user_does_its_own_components_work_and_nothing_of_anothers():
    urls = compose_broker_urls()
    components = broker_users.COMPONENTS
    every_key = {key for c in components.values() for key in (*c.publishes, *c.consumes)}
    with broker_with_compose_users() as (broker, env):
        local = {who: swap_host(url, "127.0.0.1", broker.port) for who, url in urls.items()}
        admin_url = (
            f"amqp://{env['RABBITMQ_USER']}:{env['RABBITMQ_PASSWORD']}@127.0.0.1:{broker.port}//"
        )
        # The topology user: what the bus_declare one-shots declare, and no publishing.
        with kombu.Connection(local[TOPOLOGY]) as conn:
            for service, keys in declared_by_the_one_shots():
                declare_topology(conn, service, keys)
        assert (publish(local[TOPOLOGY], "post.created") or "").startswith("refused")
        for name, component in components.items():
            url, others = local[name], [c for c in components if c != name]
            with kombu.Connection(url) as conn:
                declare_topology(conn, name, component.consumes)
                for other in others:
                    assert refused(lambda o=other: declare_topology(conn, o, ["#"])), other
                for key in every_key - set(component.consumes):
                    assert refused(lambda k=key, n=name: declare_topology(conn, n, [k])), key
            for key in every_key:
                outcome = publish(url, key)
                if key in component.publishes:
                    assert outcome is None, f"{name} publishes {key}: {outcome}"
                else:
                    assert (outcome or "").startswith("refused"), f"{name} published {key}"
            retry = OwnQueuePublisher(url, name)
            retry.publish(b"{}", content_type="application/json")
            retry.close()
            with kombu.Connection(url) as conn:
                assert kombu.Queue(queue_name(name))(conn.channel()).get(no_ack=True)
                for other in others:
                    other_queue = kombu.Queue(queue_name(other), no_declare=True)
                    assert refused(lambda q=other_queue: q(conn.channel()).get(no_ack=True))
        run_the_workers(broker, local, admin_url)


def declared_by_the_one_shots() -> list[tuple[str, list[str]]]:
    found = []
    for _stage_file, _name, service in compose_services():
        command = service.get("command", [])
        if "bus_declare" in command:
            service_name = command[command.index("--service") + 1]
            keys = [command[i + 1] for i, a in enumerate(command) if a == "--key"]
            found.append((service_name, keys))
    assert found
    return found


WORKER = """
import sys
import django
from django.conf import settings
settings.configure(INSTALLED_APPS=[], DATABASES={})
django.setup()
from blogbus.bus.worker import WORKER_ARGV, make_consumer_app
service, url, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
app = make_consumer_app(service, {k: "builtins.print" for k in keys}, url, inbox=False)
app.worker_main([*WORKER_ARGV, f"--hostname={service}@%h", "--loglevel=INFO"])
"""


def run_the_workers(broker: PrivateBroker, urls: dict[str, str], admin_url: str) -> None:
    """Each component's Celery worker (its consumer, remote control on) as its own user."""
    logs = Path(broker.folder) / "workers"
    logs.mkdir()
    with ExitStack() as stack:
        workers = {}
        for name, component in broker_users.COMPONENTS.items():
            log = stack.enter_context((logs / f"{name}.log").open("wb"))
            workers[name] = subprocess.Popen(
                [sys.executable, "-c", WORKER, name, urls[name], *component.consumes],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            with kombu.Connection(admin_url) as admin:

                def consuming() -> bool:
                    for name, worker in workers.items():
                        assert worker.poll() is None, (logs / f"{name}.log").read_text()
                    return all(queue_counts(admin, queue_name(n))[1] for n in workers)

                wait_until(consuming, timeout_s=60, what="each worker consuming its queue")
        finally:
            for worker in workers.values():
                worker.terminate()
            for worker in workers.values():
                worker.wait(timeout=30)
    for name in workers:
        log = (logs / f"{name}.log").read_text()
        assert "ACCESS_REFUSED" not in log, log
        assert "ready." in log, log
