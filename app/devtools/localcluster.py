"""A real local Kafka cluster (KRaft, N combined broker+controller nodes) for fault tests.

Built on ``app/localkafka.py`` (same jars, same start/stop of one JVM): node ``i`` (1-based)
listens on client port ``port + i - 1`` and controller port ``controller_port + i - 1``, has its
own data and log dirs, and all nodes share one cluster id and a static quorum of every node.
With 3 nodes, internal topics and new topics get replication factor 3 and min.insync.replicas 2,
so the cluster keeps accepting ``acks=all`` writes with one node down.

    scripts/kafka start --brokers 3          # or LABELSTREAM_KAFKA_BROKERS=3
    scripts/kafka stop-node 2 [--kill]       # one node down (SIGTERM, or SIGKILL: a crash)
    scripts/kafka start-node 2
    scripts/kafka status | wait | stop | reset | env | logs [N]

Once started, the cluster's size is remembered in ``<home>/cluster-<port>.json``, so the plain
commands (``scripts/kafka stop``) act on the whole cluster until ``reset`` forgets it.
Stdlib only, like ``localkafka``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from app.devtools import localkafka
from app.devtools.localkafka import (
    _take_brokers,
    kafka_home,
    run_action,
    KAFKA_VERSION,
    Broker,
    KafkaError,
    check_ports_free,
    fetch,
    fetch_jars,
    format_storage,
    spawn,
    stop,
    wait,
)

# A killed node is fenced (and leaves every ISR) after this, not Kafka's 9 s: shorter stalls
# of acks=all writes in fault tests. Heartbeats every second keep live nodes well inside it.
FAILOVER = """broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
"""


# Three JVMs start at once on 2 shared cores: the C1 compiler alone and the serial collector
# (small heaps) cut the CPU each spends starting up.
JVM_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


@dataclass(frozen=True)
class Cluster:
    home: Path
    port: int  # node 1's client port; node i: port + i - 1
    controller_port: int  # node 1's controller port
    size: int
    version: str = KAFKA_VERSION
    heap: str = "384m"  # per node: three JVMs share a 2-core machine with the workers

    @classmethod
    def from_env(cls, brokers: int | None = None) -> "Cluster | None":
        """The cluster the environment names, or None for a single node.

        Size: ``brokers`` (``--brokers``), else ``LABELSTREAM_KAFKA_BROKERS``, else what the
        last ``start`` on this port used, else 1."""
        home = kafka_home()
        port = int(os.environ.get("LABELSTREAM_KAFKA_PORT", "9092"))
        saved = _read_state(home, port)
        size = brokers if brokers is not None else int(os.environ.get("LABELSTREAM_KAFKA_BROKERS") or saved.get("brokers", 1))
        if size <= 1:
            return None
        cport = int(os.environ.get("LABELSTREAM_KAFKA_CONTROLLER_PORT") or saved.get("controller_port") or port + size)
        return cls(home=home, port=port, controller_port=cport, size=size,
                   version=os.environ.get("LABELSTREAM_KAFKA_VERSION", KAFKA_VERSION),
                   heap=os.environ.get("LABELSTREAM_KAFKA_HEAP", "384m"))

    @property
    def replication(self) -> int:
        return min(3, self.size)

    @property
    def min_isr(self) -> int:
        """One node may fail: ``replication - 1`` (2 of 3), at least 1."""
        return max(1, self.replication - 1)

    def node(self, n: int) -> Broker:
        if not 1 <= n <= self.size:
            raise KafkaError(f"no node {n}: the cluster has nodes 1..{self.size}")
        voters = ",".join(f"{i + 1}@127.0.0.1:{self.controller_port + i}" for i in range(self.size))
        return Broker(home=self.home, port=self.port + n - 1, controller_port=self.controller_port + n - 1,
                      version=self.version, heap=self.heap, node_id=n, voters=voters,
                      replication=self.replication, min_isr=self.min_isr,
                      extra=f"default.replication.factor={self.replication}\nmin.insync.replicas={self.min_isr}\n{FAILOVER}",
                      jvm_opts=os.environ.get("LABELSTREAM_KAFKA_CLUSTER_JVM_OPTS", JVM_OPTS))

    @property
    def nodes(self) -> list[Broker]:
        return [self.node(n) for n in range(1, self.size + 1)]

    @property
    def url(self) -> str:
        """All nodes as bootstrap servers, in the form LABELSTREAM_BROKER, Faust and app.admin read."""
        return "kafka://" + ",".join(f"127.0.0.1:{b.port}" for b in self.nodes)

    @property
    def state_file(self) -> Path:
        return self.home / f"cluster-{self.port}.json"

    def env(self) -> dict[str, str]:
        """What a worker needs to use this cluster with replicated topics."""
        return {"LABELSTREAM_BROKER": self.url, "LABELSTREAM_REPLICATION_FACTOR": str(self.replication),
                "LABELSTREAM_MIN_INSYNC_REPLICAS": str(self.min_isr)}


def _read_state(home: Path, port: int) -> dict:
    try:
        return json.loads((home / f"cluster-{port}.json").read_text())
    except (OSError, ValueError):
        return {}


def _cluster_id(c: Cluster) -> str:
    """One id for every node: the saved one, else a new one (saved with the cluster's shape)."""
    state = _read_state(c.home, c.port)
    if state.get("cluster_id") and state.get("brokers") == c.size:
        return state["cluster_id"]
    cid = random_cluster_id()
    c.state_file.write_text(json.dumps({"brokers": c.size, "controller_port": c.controller_port, "cluster_id": cid}))
    return cid


def random_cluster_id() -> str:
    """What ``kafka-storage random-uuid`` prints (16 random bytes, base64url, no padding), without
    starting a JVM; like Kafka's ``Uuid.randomUuid`` it never starts with '-'.

    >>> cid = random_cluster_id()
    >>> len(cid), cid[0] != "-"
    (22, True)
    """
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _parallel(fn, items):
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(fn, items))


# -- commands -------------------------------------------------------------------------
def start(c: Cluster, timeout: float = 120.0) -> str:
    """Start every node that is not running; all together, since none is ready without a quorum."""
    down = [b for b in c.nodes if not b.pid()]
    for b in down:
        check_ports_free(b)
    c.home.mkdir(parents=True, exist_ok=True)
    fetch_jars(c.nodes[0])
    cid = _cluster_id(c)
    _parallel(lambda b: format_storage(b, cid), down)  # one JVM each: together is seconds faster
    started = [(b, *spawn(b)) for b in down]
    _parallel(lambda s: wait(s[0], timeout, proc=s[1], log_from=s[2]), started)
    wait_all(c, timeout)
    return f"kafka cluster of {c.size} running ({len(started)} started): LABELSTREAM_BROKER={c.url}"


def wait_all(c: Cluster, timeout: float = 120.0) -> str:
    _parallel(lambda b: wait(b, timeout), c.nodes)
    return f"kafka cluster ready: {c.url}"


def start_node(c: Cluster, n: int, timeout: float = 90.0) -> str:
    b = c.node(n)
    if b.pid():
        wait(b, timeout)
        return f"node {n} already running on 127.0.0.1:{b.port} (pid {b.pid()})"
    check_ports_free(b)
    format_storage(b, _cluster_id(c))
    proc, log_from = spawn(b)
    wait(b, timeout, proc=proc, log_from=log_from)
    return f"node {n} started on 127.0.0.1:{b.port} (pid {proc.pid})"


def stop_node(c: Cluster, n: int, kill: bool = False) -> str:
    return f"node {n}: {stop(c.node(n), kill=kill)}"


def stop_all(c: Cluster, kill: bool = False) -> str:
    # together: a node stopped last alone would wait for a controller quorum that is gone
    said = _parallel(lambda b: stop(b, kill=kill), c.nodes)
    return "\n".join(f"node {b.node_id}: {line}" for b, line in zip(c.nodes, said))


def reset(c: Cluster, kill: bool = False) -> str:
    """Stop every node, delete all data and forget the cluster (the next start is a fresh one).

    ``kill``: SIGKILL instead of a clean shutdown, as the data is deleted anyway (test teardown)."""
    said = stop_all(c, kill)
    for b in c.nodes:
        shutil.rmtree(b.data, ignore_errors=True)
    c.state_file.unlink(missing_ok=True)
    return f"{said}\ndata removed; cluster on port {c.port} forgotten"


def status(c: Cluster) -> str:
    lines, up = [], 0
    for b in c.nodes:
        pid = b.pid()
        state = "running" if pid and b.reachable() else "starting" if pid else "stopped"
        up += state == "running"
        lines.append(f"node {b.node_id}: {state}, 127.0.0.1:{b.port} (controller {b.controller_port})"
                     + (f", pid {pid}" if pid else ""))
    report = "\n".join(lines)
    if up < c.size:
        raise KafkaError(f"{up} of {c.size} nodes running (start them with 'scripts/kafka start --brokers {c.size}'):\n{report}")
    return f"kafka cluster of {c.size} running: LABELSTREAM_BROKER={c.url}\n{report}"


def logs(c: Cluster, n: int | None = None, lines: int = 60) -> str:
    nodes = [c.node(n)] if n else c.nodes
    out = []
    for b in nodes:
        try:
            tail = b.log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            tail = ["(no log yet)"]
        out += [f"== node {b.node_id}: {b.log_file}", *tail]
    return "\n".join(out)


USAGE = "usage: kafka [--brokers N] {start|stop|status|wait|logs [N]|reset|env|fetch|start-node N|stop-node N [--kill]}"


def main(c: Cluster, cmd: str, args: list[str]) -> int:
    try:
        if cmd in ("start-node", "stop-node", "logs") and args and not args[0].isdigit():
            raise ValueError
        n = int(args[0]) if args and args[0].isdigit() else None
        actions = {
            "start": lambda: start(c), "stop": lambda: stop_all(c), "status": lambda: status(c),
            "wait": lambda: wait_all(c), "reset": lambda: reset(c), "logs": lambda: logs(c, n),
            "env": lambda: "\n".join(f"{k}={v}" for k, v in c.env().items()),
            "fetch": lambda: fetch(c.nodes[0]),
        }
        if n is not None:  # the -node commands need a node number: without one, usage
            actions |= {"start-node": lambda: start_node(c, n),
                        "stop-node": lambda: stop_node(c, n, kill="--kill" in args)}
        if cmd not in actions:
            raise ValueError
    except ValueError:
        print(USAGE, file=sys.stderr)
        return 2
    return run_action(cmd, actions[cmd])


def timed_start(c: Cluster, timeout: float = 120.0) -> float:
    """Start the cluster; returns the seconds it took (for tests and benchmarks)."""
    t0 = time.monotonic()
    start(c, timeout)
    return time.monotonic() - t0


def for_tests(port: int, home: Path | None = None) -> Cluster:
    """A 3-node cluster on ``port``.. (controllers from ``port + 3``), sharing the dev jars folder."""
    base = Cluster.from_env(3)
    assert base is not None  # 3 nodes: a cluster, never the single-node None
    return replace(base, home=home or base.home, port=port, controller_port=port + 3)


def cli(argv: list[str] | None = None) -> int:
    """``scripts/kafka``: the cluster's commands when one is asked for or running, else the single node's."""
    argv = list(sys.argv[1:] if argv is None else argv)
    brokers = _take_brokers(argv)
    cluster = Cluster.from_env(brokers)
    if cluster is not None:
        return main(cluster, argv[0] if argv else "status", argv[1:])
    return localkafka.main(argv)


if __name__ == "__main__":
    sys.exit(cli())
