"""A durable, crash-safe `filesystem://` broker for the embedded profile.

kombu's own filesystem transport routes topic and fanout exchanges across
processes through the binding files in its control folder, which is what a
single-machine profile needs. It lacks what the event plumbing relies on, so
this subclass adds it, with RabbitMQ's meaning (docs/adr/0003-embedded-broker.md):

- **A publish is durable when it returns.** A message is written to a staging
  file, fsynced, and renamed into its queue's folder (then the folder is
  fsynced). A reader never sees half a file, and a returned publish survives
  a crash: that is this transport's publisher confirm.
- **Unacked messages survive their consumer.** Taking a message renames its
  file into a folder owned by the consuming channel (`claimed/<owner>/`),
  which holds an `flock` on its `.lock` file for as long as it lives. An ack
  deletes the file; a requeue or a clean close moves it back. When a
  consumer dies (SIGKILL included) the kernel drops its lock, and the next
  channel that looks (every `recover_interval` seconds while polling, and
  when it starts) moves the orphaned messages back to their queues: the
  redelivery RabbitMQ does when a connection drops.
- **Dead-lettering.** A queue declared with `x-dead-letter-exchange` (and
  optionally `x-dead-letter-routing-key`) keeps those arguments in the
  control folder; a message rejected without requeue is routed there, with
  `x-first-death-*` headers, before its file is deleted.
- **Mandatory publishes.** A `mandatory=True` message that no queue is bound
  to is not stored: the producer's `on_return` callbacks are called before
  `publish` returns, as py-amqp does for `basic.return`.
- **Shared topology.** Exchange types and queue arguments are kept in the
  control folder beside kombu's binding tables, so a process that never
  declared `blog.events` still routes it as a topic exchange.

Layout under the root folder (one absolute path, shared by every process):

    queues/<queue>/<ns-time>-<pid>-<seq>-<uuid>.msg   ready messages, FIFO by name
    claimed/<owner>/<queue>/<same name>              taken, not yet acked
    control/<exchange>.exchange                     kombu's binding table (JSON)
    control/<exchange>.type                         the exchange's type
    control/queues/<queue>.json                     the queue's arguments
    tmp/                                            staging for atomic writes

URLs: `filesystem:///absolute/folder` through `blogbus.broker`, which maps it
to this transport's alias `blogbus-filesystem`.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from queue import Empty
from typing import Any
from urllib.parse import quote

from amqp.protocol import queue_declare_ok_t
from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem, virtual

logger = logging.getLogger("blogbus.fsbroker")

ALIAS = "blogbus-filesystem"
TRANSPORT_ALIASES.setdefault(ALIAS, "blogbus.fsbroker:Transport")

_SEQUENCE = itertools.count()
_STATES: dict[Path, virtual.BrokerState] = {}
_STATES_LOCK = threading.Lock()


class UnroutableReturn(ChannelError):
    """What `on_return` callbacks receive for a mandatory message no queue is bound to."""


class _Returned:
    """The message object given to `on_return` callbacks (py-amqp gives one with `.properties`)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.properties = payload.get("properties", {})
        self.headers = payload.get("headers") or {}
        self.body = payload.get("body")


def root_of(virtual_host: str | None, hostname: str | None = None) -> Path:
    """The broker folder named by a `blogbus-filesystem:///abs/path` URL."""
    if hostname or not virtual_host or virtual_host == "/":
        raise ValueError(
            "a filesystem broker URL names an absolute folder: filesystem:///abs/path/to/bus"
        )
    return Path("/" + virtual_host.lstrip("/"))


def _encode(queue: str) -> str:
    """A queue name as one safe path component (no '/', never '.' or '..')."""
    if not queue:
        raise ChannelError("a queue needs a name")
    encoded = quote(queue, safe="@-_.")
    if encoded in (".", ".."):
        raise ChannelError(f"invalid queue name {queue!r}")
    return encoded


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Channel(filesystem.Channel):
    """See the module docstring."""

    supports_fanout = True

    def __init__(self, connection, **kwargs):
        super().__init__(connection, **kwargs)
        self.events: dict[str, set] = defaultdict(set)  # what py-amqp channels have: basic_return
        self._claimed: dict[str, tuple[Path, str]] = {}  # delivery tag -> (claimed file, queue)
        self._owner_dir: Path | None = None
        self._owner_lock: int | None = None
        self._next_recovery = 0.0
        self.recover_orphans()

    # -- folders ------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self.connection.root

    @property
    def fsync(self) -> bool:
        return bool(self.transport_options.get("fsync", True))

    @property
    def recover_interval(self) -> float:
        return float(self.transport_options.get("recover_interval", 2.0))

    @property
    def control_folder(self) -> Path:
        return self.root / "control"

    def _queue_dir(self, queue: str) -> Path:
        return self.root / "queues" / _encode(queue)

    def _queue_meta(self, queue: str) -> Path:
        return self.control_folder / "queues" / f"{_encode(queue)}.json"

    def _type_file(self, exchange: str) -> Path:
        return self._exchange_file(exchange).with_suffix(".type")

    def _write_atomic(self, target: Path, data: bytes) -> None:
        """Write `data` to `target` so that no reader ever sees a partial file."""
        staging = self.root / "tmp"
        staging.mkdir(parents=True, exist_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = staging / f"{uuid.uuid4().hex}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.rename(tmp, target)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if self.fsync:
            _fsync_dir(target.parent)

    # -- exchanges: the type is shared through the control folder -------------

    def _persisted_type(self, exchange: str) -> str | None:
        if not exchange:
            return None
        try:
            return self._type_file(exchange).read_text().strip() or None
        except (FileNotFoundError, ChannelError):
            return None

    def _load_exchange(self, exchange: str) -> bool:
        """Put a persisted exchange into this process's state; False if none is."""
        if exchange in self.state.exchanges:
            return True
        kind = self._persisted_type(exchange)
        if kind is None:
            return False
        self.state.exchanges[exchange] = {
            "type": kind,
            "durable": True,
            "auto_delete": False,
            "arguments": {},
            "table": [],
        }
        return True

    def exchange_declare(self, exchange=None, type="direct", durable=False, auto_delete=False,
                         arguments=None, nowait=False, passive=False):  # fmt: skip
        exchange = exchange or f"amq.{type or 'direct'}"
        if passive:
            self._load_exchange(exchange)
        else:
            previous = self._persisted_type(exchange)
            if previous is not None and previous != (type or "direct"):
                raise ChannelError(
                    f"PRECONDITION_FAILED - exchange {exchange!r} is of type {previous!r}, "
                    f"not {type!r}"
                )
            if previous is None:
                self.control_folder.mkdir(parents=True, exist_ok=True)
                self._write_atomic(self._type_file(exchange), (type or "direct").encode())
            self._load_exchange(exchange)
        return super().exchange_declare(
            exchange, type, durable, auto_delete, arguments, nowait, passive
        )

    def exchange_delete(self, exchange, if_unused=False, nowait=False):
        super().exchange_delete(exchange, if_unused, nowait)
        for path in (self._type_file(exchange), self._exchange_file(exchange)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def typeof(self, exchange, default="direct"):
        self._load_exchange(exchange)
        return super().typeof(exchange, default)

    def queue_bind(self, queue, exchange=None, routing_key="", arguments=None, **kwargs):
        exchange = exchange or "amq.direct"
        if not self._load_exchange(exchange):
            raise ChannelError(f"NOT_FOUND - no exchange {exchange!r}")
        # Always write the binding file: another process (or `make clean`) may have
        # changed the folder since this process last bound the same key.
        meta = self.typeof(exchange).prepare_bind(queue, exchange, routing_key, arguments)
        self._queue_bind(exchange, *meta)
        if not self.state.has_binding(queue, exchange, routing_key):
            self.state.binding_declare(queue, exchange, routing_key, arguments)
            self.state.exchanges[exchange].setdefault("table", []).append(meta)

    # -- queues ---------------------------------------------------------------

    def _new_queue(self, queue, **kwargs):
        arguments = kwargs.get("arguments") or {}
        meta_file = self._queue_meta(queue)
        wanted = {"arguments": arguments}
        try:
            current = json.loads(meta_file.read_text())
        except (FileNotFoundError, ValueError):
            current = None
        if current is not None and current != wanted:
            # As RabbitMQ: a queue is not redeclared with other arguments.
            raise ChannelError(
                f"PRECONDITION_FAILED - queue {queue!r} exists with arguments "
                f"{current.get('arguments')!r}, not {arguments!r}"
            )
        if current is None:
            self._write_atomic(meta_file, json.dumps(wanted, sort_keys=True).encode())
        self._queue_dir(queue).mkdir(parents=True, exist_ok=True)

    def queue_declare(self, queue=None, passive=False, **kwargs):
        if passive:
            if not self._has_queue(queue):
                raise ChannelError(
                    f"NOT_FOUND - no queue {queue!r}", (50, 10), "Queue.declare", "404"
                )
            return queue_declare_ok_t(queue, self._size(queue), self._consumers_of(queue))
        ok = super().queue_declare(queue, passive, **kwargs)
        return queue_declare_ok_t(ok.queue, ok.message_count, self._consumers_of(ok.queue))

    def _consumers_of(self, queue: str) -> int:
        """Consumers of `queue` in any process: the markers their channels keep."""
        return len(list((self.root / "claimed").glob(f"*/{_encode(queue)}/.consumer-*")))

    def basic_consume(self, queue, no_ack, callback, consumer_tag, **kwargs):
        super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)
        marker = self._owner_queue_dir(queue) / f".consumer-{quote(str(consumer_tag), safe='')}"
        marker.touch()

    def basic_cancel(self, consumer_tag):
        queue = self._tag_to_queue.get(consumer_tag)
        super().basic_cancel(consumer_tag)
        if queue is not None and self._owner_dir is not None:
            marker = (
                self._owner_dir / _encode(queue) / f".consumer-{quote(str(consumer_tag), safe='')}"
            )
            with contextlib.suppress(FileNotFoundError):
                marker.unlink()

    def _has_queue(self, queue, **kwargs):
        return self._queue_meta(queue).exists()

    def _queue_arguments(self, queue: str) -> dict[str, Any]:
        try:
            return json.loads(self._queue_meta(queue).read_text()).get("arguments") or {}
        except (FileNotFoundError, ValueError):
            return {}

    def _messages(self, queue: str) -> list[str]:
        try:
            return sorted(
                name for name in os.listdir(self._queue_dir(queue)) if name.endswith(".msg")
            )
        except FileNotFoundError:
            return []

    def _size(self, queue):
        return len(self._messages(queue))

    def _purge(self, queue):
        removed = 0
        folder = self._queue_dir(queue)
        for name in self._messages(queue):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / name)
                removed += 1
        return removed

    def queue_delete(self, queue, if_unused=False, if_empty=False, **kwargs):
        if if_empty and self._size(queue):
            return
        for exchange_file in self.control_folder.glob("*.exchange"):
            exchange = exchange_file.name[: -len(".exchange")]
            for routing_key, pattern, bound in self.get_table(exchange):
                if bound == queue:
                    self._delete(queue, exchange, routing_key, pattern)
        self.state.queue_bindings_delete(queue)
        self._purge(queue)
        with contextlib.suppress(FileNotFoundError):
            self._queue_meta(queue).unlink()
        with contextlib.suppress(OSError):
            self._queue_dir(queue).rmdir()

    # -- publishing -----------------------------------------------------------

    def _put(self, queue, payload, **kwargs):
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(_SEQUENCE):09d}-{uuid.uuid4().hex}.msg"
        try:
            self._write_atomic(self._queue_dir(queue) / name, json.dumps(payload).encode())
        except OSError as exc:
            raise ChannelError(f"cannot store a message in queue {queue!r}: {exc}") from exc

    def _routes(self, exchange: str, routing_key: str) -> list[str]:
        if not exchange:
            return [routing_key] if self._has_queue(routing_key) else []
        if not self._load_exchange(exchange):
            return []
        return list(
            dict.fromkeys(
                self.typeof(exchange).lookup(self.get_table(exchange), exchange, routing_key, None)
            )
        )

    def basic_publish(self, message, exchange, routing_key, **kwargs):
        """Store `message` in every queue its route reaches; returns once it is durable."""
        mandatory = kwargs.get("mandatory", False)
        self._inplace_augment_message(message, exchange, routing_key)
        queues = self._routes(exchange, routing_key)
        if not queues:
            if mandatory:
                returned = UnroutableReturn(
                    f"NO_ROUTE - no queue bound to {routing_key!r} on {exchange!r}"
                )
                for callback in list(self.events.get("basic_return", ())):
                    callback(returned, exchange, routing_key, _Returned(message))
            return None
        for queue in queues:
            self._put(queue, message)
        return None

    # -- consuming: claim, ack, requeue, dead-letter --------------------------

    def _owner_queue_dir(self, queue: str) -> Path:
        if self._owner_dir is None:
            claimed = self.root / "claimed"
            claimed.mkdir(parents=True, exist_ok=True)
            (self.root / "tmp").mkdir(parents=True, exist_ok=True)
            # Built and locked under tmp/, then renamed: a recoverer never sees an
            # owner folder whose lock is not held yet.
            staging = Path(tempfile.mkdtemp(prefix="owner-", dir=self.root / "tmp"))
            fd = os.open(staging / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, str(os.getpid()).encode())
            owner = claimed / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
            os.rename(staging, owner)
            self._owner_dir, self._owner_lock = owner, fd
        folder = self._owner_dir / _encode(queue)
        folder.mkdir(exist_ok=True)
        return folder

    def _get(self, queue, timeout=None):
        if time.monotonic() >= self._next_recovery:
            self.recover_orphans()
        source = self._queue_dir(queue)
        for name in self._messages(queue):
            target = self._owner_queue_dir(queue) / name
            try:
                os.rename(source / name, target)
            except FileNotFoundError:
                continue  # another consumer took it first
            try:
                payload = json.loads(target.read_bytes())
            except ValueError:
                logger.error("fsbroker: unreadable message %s moved to corrupt/", target)
                corrupt = self.root / "corrupt"
                corrupt.mkdir(exist_ok=True)
                os.rename(target, corrupt / name)
                continue
            tag = uuid.uuid4().hex
            payload["properties"]["delivery_tag"] = tag
            self._claimed[tag] = (target, queue)
            return payload
        raise Empty()

    def basic_get(self, queue, no_ack=False, **kwargs):
        message = super().basic_get(queue, no_ack=no_ack, **kwargs)
        if message is not None and no_ack:
            self._settle(message.delivery_tag)
        return message

    def _settle(self, delivery_tag: str) -> tuple[Path, str] | None:
        claimed = self._claimed.pop(delivery_tag, None)
        if claimed is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(claimed[0])
        return claimed

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple)
        self._settle(delivery_tag)

    def basic_reject(self, delivery_tag, requeue=False):
        if not requeue:
            self._dead_letter(delivery_tag)
        super().basic_reject(delivery_tag, requeue=requeue)

    def _dead_letter(self, delivery_tag: str) -> None:
        claimed = self._claimed.get(delivery_tag)
        if claimed is None:
            return
        path, queue = claimed
        arguments = self._queue_arguments(queue)
        exchange = arguments.get("x-dead-letter-exchange")
        if exchange is not None:
            payload = json.loads(path.read_bytes())
            properties = payload["properties"]
            info = properties.get("delivery_info") or {}
            routing_key = arguments.get("x-dead-letter-routing-key") or info.get("routing_key", "")
            headers = payload.get("headers") or {}
            death = {
                "count": 1,
                "reason": "rejected",
                "queue": queue,
                "time": int(time.time()),
                "exchange": info.get("exchange", ""),
                "routing-keys": [info.get("routing_key", "")],
            }
            # As RabbitMQ writes them: the newest death first, one entry per (queue, reason).
            deaths = [
                entry
                for entry in headers.get("x-death") or []
                if (entry.get("queue"), entry.get("reason")) != (queue, "rejected")
            ]
            previous = [
                entry
                for entry in headers.get("x-death") or []
                if (entry.get("queue"), entry.get("reason")) == (queue, "rejected")
            ]
            if previous:
                death["count"] = int(previous[0].get("count", 0)) + 1
            headers["x-death"] = [death, *deaths]
            headers.setdefault("x-first-death-queue", queue)
            headers.setdefault("x-first-death-reason", "rejected")
            headers.setdefault("x-first-death-exchange", death["exchange"])
            payload["headers"] = headers
            properties["delivery_info"] = {"exchange": exchange, "routing_key": routing_key}
            properties["delivery_tag"] = uuid.uuid4().hex
            for target in self._routes(exchange, routing_key):
                self._put(target, payload)
        self._settle(delivery_tag)

    def _restore(self, message):
        """Put an unacked message back at its place in the queue it was taken from."""
        claimed = self._claimed.pop(message.delivery_tag, None)
        if claimed is None:
            return super()._restore(message)
        path, queue = claimed
        with contextlib.suppress(FileNotFoundError):
            self._queue_dir(queue).mkdir(parents=True, exist_ok=True)
            os.rename(path, self._queue_dir(queue) / path.name)
        return None

    def recover_orphans(self) -> int:
        """Move the messages of dead consumers back to their queues; returns how many."""
        self._next_recovery = time.monotonic() + self.recover_interval
        claimed = self.root / "claimed"
        moved = 0
        try:
            owners = list(claimed.iterdir())
        except FileNotFoundError:
            return 0
        for owner in owners:
            if owner == self._owner_dir:
                continue
            try:
                fd = os.open(owner / ".lock", os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its consumer is alive
                moved += self._requeue_owner(owner)
            finally:
                os.close(fd)
        if moved:
            logger.warning("fsbroker: %d unacked message(s) of dead consumers requeued", moved)
        return moved

    def _requeue_owner(self, owner: Path) -> int:
        moved = 0
        for folder in owner.iterdir():
            if not folder.is_dir():
                continue
            ready = self.root / "queues" / folder.name
            ready.mkdir(parents=True, exist_ok=True)
            for message in folder.glob("*.msg"):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(message, ready / message.name)
                    moved += 1
            with contextlib.suppress(OSError):
                folder.rmdir()
        shutil.rmtree(owner, ignore_errors=True)
        return moved

    def close(self):
        super().close()  # requeues what this channel holds unacked (through _restore)
        if self._owner_dir is not None:
            if self._claimed:
                for _tag, (path, queue) in list(self._claimed.items()):
                    with contextlib.suppress(OSError):
                        os.rename(path, self._queue_dir(queue) / path.name)
                self._claimed.clear()
            shutil.rmtree(self._owner_dir, ignore_errors=True)
            self._owner_dir = None
        if self._owner_lock is not None:
            os.close(self._owner_lock)
            self._owner_lock = None


class Transport(filesystem.Transport):
    """kombu's filesystem transport, durable and crash-safe; see the module docstring."""

    Channel = Channel
    driver_name = ALIAS
    polling_interval = 0.05

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        self.root = root_of(client.virtual_host, client.hostname)
        for folder in ("queues", "claimed", "control", "tmp"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        with _STATES_LOCK:
            # kombu keeps one in-memory state per transport class; one per folder here,
            # so two brokers in one process (tests) never share bindings.
            self.state = _STATES.setdefault(self.root, virtual.BrokerState())


__all__ = ["ALIAS", "Channel", "Transport", "UnroutableReturn", "root_of"]
