"""What each component of a stack uses, from /proc: CPU seconds, memory and
listening ports, summed over its processes.

A component is a process the stack started (gunicorn master with its
workers, nginx with its workers, the MongoDB-wire server, a relay, a
consumer) with all its descendants, or a group the stack shares with others
and is found by other means: the PostgreSQL backends connected to the
stack's databases (pg_stat_activity) and the RabbitMQ server (its whole
Erlang VM: shared, so its figure includes whatever else uses the broker).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cpu import CLOCK_TICKS, _proc_stat, backend_pids

PAGE_KB = 4


@dataclass(frozen=True)
class Sample:
    """One moment of one component: CPU seconds so far (of the processes
    alive now), memory (kB) and what it listens on."""

    cpu_s_by_pid: dict[int, float]
    rss_kb: int
    pss_kb: int
    processes: int
    ports: frozenset[int]


def all_parents() -> dict[int, int]:
    """pid -> parent pid, for every process."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields:
                parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(root: int, parents: dict[int, int]) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in parents or pid == root:
            found.append(pid)
            todo.extend(children.get(pid, ()))
    return [pid for pid in found if pid in parents]


def rabbitmq_pids() -> list[int]:
    """The RabbitMQ server's Erlang VM (beam.smp running rabbit), when it runs here."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"beam" in cmdline and b"rabbit" in cmdline:
            pids.append(int(entry.name))
    return pids


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in kB. PSS shares each shared page among its users, so the
    PostgreSQL backends' shared buffers are not counted once per backend."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        fields = _proc_stat(pid)
        rss = pss = int(fields[21]) * PAGE_KB if fields else 0
    return rss, pss


def listening_inodes() -> dict[str, int]:
    """socket inode -> TCP port, for every listening socket (IPv4 and IPv6)."""
    inodes = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A":  # LISTEN
                inodes[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    return inodes


def ports_of(pids: list[int], inodes: dict[str, int]) -> frozenset[int]:
    ports = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = fd.readlink().name
            except OSError:
                continue
            if target.startswith("socket:["):
                port = inodes.get(target[8:-1])
                if port is not None:
                    ports.add(port)
    return frozenset(ports)


def sample(pids: list[int], inodes: dict[str, int]) -> Sample:
    cpu: dict[int, float] = {}
    rss = pss = 0
    for pid in pids:
        fields = _proc_stat(pid)
        if not fields:
            continue
        cpu[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        one_rss, one_pss = _memory_kb(pid)
        rss, pss = rss + one_rss, pss + one_pss
    return Sample(cpu, rss, pss, len(cpu), ports_of(pids, inodes))


class StackMeter:
    """The components of one stack: ``roots`` (name -> pid of a process the
    stack started) and the PostgreSQL backends of ``databases``
    (name -> database URL); RabbitMQ when ``broker`` is set."""

    def __init__(
        self, roots: dict[str, int], databases: dict[str, str], server_url: str, broker: bool
    ) -> None:
        self.roots, self.databases, self.server_url, self.broker = (
            roots,
            databases,
            server_url,
            broker,
        )

    def groups(self) -> dict[str, list[int]]:
        """Component name -> its pids now (workers come and go; backends too)."""
        parents = all_parents()
        groups = {name: descendants(pid, parents) for name, pid in self.roots.items()}
        for app, url in self.databases.items():
            groups[f"postgresql ({app})"] = backend_pids(self.server_url, url.rsplit("/", 1)[1])
        if self.broker:
            groups["rabbitmq (shared)"] = rabbitmq_pids()
        return groups

    def sample(self) -> dict[str, Sample]:
        inodes = listening_inodes()
        return {name: sample(pids, inodes) for name, pids in self.groups().items()}


def used_s(before: Sample, after: Sample) -> float:
    """CPU seconds between two samples, process by process: one that started
    in between counts whole (a new backend, a restarted worker); one that
    ended in between loses what it used since ``before`` (not visible)."""
    return sum(
        max(0.0, cpu - before.cpu_s_by_pid.get(pid, 0.0)) for pid, cpu in after.cpu_s_by_pid.items()
    )


def cpu_deltas_s(before: dict[str, Sample], after: dict[str, Sample]) -> dict[str, float]:
    """CPU seconds each component used between two samples."""
    return {name: round(used_s(before[name], after[name]), 4) for name in after if name in before}


def footprint(samples: dict[str, Sample]) -> dict:
    """Memory, processes and ports of a stack, by component and in total.
    Shared servers (PostgreSQL's postmaster, RabbitMQ) are listed but their
    ports are not the stack's own."""
    by_component = {
        name: {
            "rss_mib": round(s.rss_kb / 1024, 1),
            "pss_mib": round(s.pss_kb / 1024, 1),
            "processes": s.processes,
            "ports": sorted(s.ports),
        }
        for name, s in samples.items()
    }
    own = {name: s for name, s in samples.items() if not name.startswith(("postgresql", "rabbit"))}
    return {
        "by_component": by_component,
        "total_rss_mib": round(sum(s.rss_kb for s in samples.values()) / 1024, 1),
        "total_pss_mib": round(sum(s.pss_kb for s in samples.values()) / 1024, 1),
        "own_processes": sum(s.processes for s in own.values()),
        "own_listening_ports": sorted({p for s in own.values() for p in s.ports}),
    }
