"""A real single-node Kafka broker (KRaft) for development and tests, from Maven Central jars.

No Docker: Maven fetches ``org.apache.kafka:kafka_2.13`` and a log4j binding into
``<home>/jars``, the storage is formatted once, and the broker runs as a plain
``java`` process whose pid is kept in ``<home>/broker.pid``.

Stdlib only, so ``scripts/kafka`` works before the virtualenv exists.

    python -m app.devtools.localcluster start|stop|status|wait|logs|reset|env|fetch   (scripts/kafka)
    python -m app.devtools.localcluster start --brokers 3   # a 3-node cluster (app/devtools/localcluster.py)

Environment (all optional):

    LABELSTREAM_KAFKA_HOME             folder for jars, data, logs   (./var/kafka)
    LABELSTREAM_KAFKA_PORT             client listener port          (9092)
    LABELSTREAM_KAFKA_CONTROLLER_PORT  KRaft controller port         (port + 1)
    LABELSTREAM_KAFKA_VERSION          Apache Kafka version          (4.1.1)
    LABELSTREAM_KAFKA_HEAP             broker heap                   (512m; 384m per cluster node)
    LABELSTREAM_KAFKA_JVM_OPTS         the broker's JVM flags        (JVM_OPTS below)
    LABELSTREAM_KAFKA_BROKERS          nodes: 1, or 3 for a cluster  (1, or what the last start used)

Every failure ends in one line on stderr that says what went wrong, what to do
and where the log is, and a non-zero exit code.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
STOP_GRACE_SECONDS = 30.0
#: The project's broker shares 2 cores with workers, tests and benchmarks, and lives minutes. With
#: HotSpot's default tiered compilation its C2 compiler thread took more CPU than request handling for
#: the first minutes (56 % of the broker's CPU under a 250/s producer; a fresh broker used 50-65 % of a
#: core for it, a warm one 11-16 %). The C1 compiler alone halves that (bench/RESULTS.md, eleventh session).
JVM_OPTS = "-XX:+UseG1GC -XX:TieredStopAtLevel=1"


def kafka_home() -> Path:
    """``LABELSTREAM_KAFKA_HOME``, else ``var/kafka`` at the top of the repository."""
    root = Path(__file__).resolve().parents[2]
    return Path(os.environ.get("LABELSTREAM_KAFKA_HOME", root / "var" / "kafka")).resolve()


class KafkaError(RuntimeError):
    """A failure with a one-line, actionable message."""


@dataclass(frozen=True)
class Broker:
    home: Path
    port: int
    controller_port: int
    version: str = KAFKA_VERSION
    heap: str = "512m"
    # Cluster members (app/localcluster.py) differ only in these; the defaults are the single node.
    node_id: int = 1
    voters: str = ""  # controller.quorum.voters; "" = this node alone
    replication: int = 1  # internal topics and the default for new topics
    min_isr: int = 1
    extra: str = ""  # more server.properties lines
    jvm_opts: str = JVM_OPTS

    @classmethod
    def from_env(cls) -> "Broker":
        home = kafka_home()
        port = int(os.environ.get("LABELSTREAM_KAFKA_PORT", "9092"))
        cport = int(os.environ.get("LABELSTREAM_KAFKA_CONTROLLER_PORT", str(port + 1)))
        return cls(
            home=home,
            port=port,
            controller_port=cport,
            version=os.environ.get("LABELSTREAM_KAFKA_VERSION", KAFKA_VERSION),
            heap=os.environ.get("LABELSTREAM_KAFKA_HEAP", "512m"),
            jvm_opts=os.environ.get("LABELSTREAM_KAFKA_JVM_OPTS", JVM_OPTS),
        )

    # -- paths -----------------------------------------------------------------
    @property
    def jars(self) -> Path:
        return self.home / "jars" / self.version

    @property
    def data(self) -> Path:
        return self.home / f"data-{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.home / f"logs-{self.port}"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.home / f"broker-{self.port}.pid"

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    # -- state -------------------------------------------------------------------
    def pid(self) -> int | None:
        """The broker's pid if our broker process is alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if b"kafka.Kafka" in cmdline else None

    def reachable(self) -> bool:
        return port_open(self.port)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# -- jars ----------------------------------------------------------------------------
POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>labelstream</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{log4j}</version></dependency>
  </dependencies>
</project>
"""


def fetch(b: Broker) -> str:
    """``kafka fetch``: fetch the jars, then say where they are."""
    fetch_jars(b)
    return f"jars in {b.jars}"


def fetch_jars(b: Broker) -> None:
    """Resolve the broker's runtime classpath with Maven (cached in ~/.m2 afterwards)."""
    marker = b.jars / ".complete"
    if marker.exists():
        return
    if not _which("mvn") or not _which("java"):
        raise KafkaError("java and mvn are needed to fetch the Kafka broker: install a JDK 17 and Maven")
    work = b.home / "maven"
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(POM.format(kafka=b.version, log4j=LOG4J_VERSION))
    log = work / "mvn.log"
    with log.open("wb") as out:
        rc = subprocess.call(
            ["mvn", "-q", "-B", "-f", str(work / "pom.xml"), "dependency:copy-dependencies",
             "-DincludeScope=runtime", f"-DoutputDirectory={b.jars}"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    if rc != 0 or not any(b.jars.glob("kafka_2.13-*.jar")):
        raise KafkaError(f"Maven could not fetch the Kafka {b.version} jars (network or Maven Central unreachable?): see {log}")
    marker.write_text(b.version)


def _which(cmd: str) -> bool:
    return any((Path(p) / cmd).exists() for p in os.environ.get("PATH", "").split(os.pathsep))


# -- config ---------------------------------------------------------------------------
def server_properties(b: Broker) -> str:
    """Combined broker+controller; by default a single node (replication factor 1 everywhere),
    no rebalance delay."""
    rf, isr = b.replication, b.min_isr
    return f"""process.roles=broker,controller
node.id={b.node_id}
controller.quorum.voters={b.voters or f"1@127.0.0.1:{b.controller_port}"}
listeners=PLAINTEXT://127.0.0.1:{b.port},CONTROLLER://127.0.0.1:{b.controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{b.port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={b.data}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=4
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={isr}
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={isr}
group.initial.rebalance.delay.ms=0
message.max.bytes=16777216
log.retention.hours=24
log.segment.bytes=67108864
log.cleaner.dedupe.buffer.size=16777216
{b.extra}"""


LOG4J2 = """status=warn
appender.f.type=RollingFile
appender.f.name=F
appender.f.fileName=${sys:kafka.logs.dir}/server.log
appender.f.filePattern=${sys:kafka.logs.dir}/server.log.%i
appender.f.layout.type=PatternLayout
appender.f.layout.pattern=[%d] %p %m (%c)%n
appender.f.policies.type=Policies
appender.f.policies.size.type=SizeBasedTriggeringPolicy
appender.f.policies.size.size=20MB
appender.f.strategy.type=DefaultRolloverStrategy
appender.f.strategy.max=2
rootLogger.level=INFO
rootLogger.appenderRef.f.ref=F
logger.kafka.name=kafka
logger.kafka.level=INFO
logger.state.name=state.change.logger
logger.state.level=WARN
"""


def _java(b: Broker, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["java", "-cp", str(b.jars / "*"), *args], capture_output=True, text=True, **kw)


def new_cluster_id(b: Broker) -> str:
    return _java(b, "kafka.tools.StorageTool", "random-uuid").stdout.strip()


def format_storage(b: Broker, cluster_id: str | None = None) -> None:
    """Format the data dir once; the members of a cluster must share one ``cluster_id``."""
    if (b.data / "meta.properties").exists():
        return
    b.data.mkdir(parents=True, exist_ok=True)
    props = b.home / f"server-{b.port}.properties"
    props.write_text(server_properties(b))
    uuid = cluster_id or new_cluster_id(b)
    r = _java(b, "kafka.tools.StorageTool", "format", "-t", uuid, "-c", str(props))
    if r.returncode != 0:
        raise KafkaError(f"formatting Kafka storage in {b.data} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")


# -- commands -------------------------------------------------------------------------
def start(b: Broker, timeout: float = 90.0) -> str:
    if b.pid():
        wait(b, timeout)
        return f"kafka already running on 127.0.0.1:{b.port} (pid {b.pid()})"
    check_ports_free(b)
    b.home.mkdir(parents=True, exist_ok=True)
    fetch_jars(b)
    format_storage(b)
    proc, log_from = spawn(b)
    wait(b, timeout, proc=proc, log_from=log_from)
    return f"kafka started on 127.0.0.1:{b.port} (pid {proc.pid}, log {b.log_file})"


def check_ports_free(b: Broker) -> None:
    for port in (b.port, b.controller_port):
        if port_open(port):
            raise KafkaError(
                f"port {port} is already in use by another process: stop it, or pick free ports with "
                f"LABELSTREAM_KAFKA_PORT=<port> (or use that broker with LABELSTREAM_BROKER=kafka://127.0.0.1:{b.port})"
            )


def spawn(b: Broker) -> tuple[subprocess.Popen, int]:
    """Start the broker's JVM (formatted storage and jars assumed) without waiting for it.

    Returns the process and the log's size before it, so readiness is read from this run's
    lines only (the log is appended across restarts)."""
    props = b.home / f"server-{b.port}.properties"
    props.write_text(server_properties(b))
    log4j = b.home / "log4j2.properties"
    log4j.write_text(LOG4J2)
    b.log_dir.mkdir(parents=True, exist_ok=True)
    log_from = b.log_file.stat().st_size if b.log_file.exists() else 0
    stdout = (b.log_dir / "stdout.log").open("ab")
    proc = subprocess.Popen(
        ["java", f"-Xmx{b.heap}", f"-Xms{b.heap}", *b.jvm_opts.split(), "-Djava.awt.headless=true",
         f"-Dlog4j2.configurationFile={log4j}", f"-Dkafka.logs.dir={b.log_dir}",
         "-cp", str(b.jars / "*"), "kafka.Kafka", str(props)],
        stdout=stdout, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    b.pid_file.write_text(str(proc.pid))
    stdout.close()  # the child has its own copy
    return proc, log_from


def _started_in_log(b: Broker, log_from: int = 0) -> bool:
    try:
        with b.log_file.open("rb") as f:
            if f.seek(0, os.SEEK_END) >= log_from:  # smaller: rolled over since, read it all
                f.seek(log_from)
            else:
                f.seek(0)
            return b"Kafka Server started" in f.read()
    except OSError:
        return False


def wait(b: Broker, timeout: float = 90.0, proc: subprocess.Popen | None = None, log_from: int = 0) -> str:
    """Block until clients can connect (listener open once the broker is unfenced)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise KafkaError(f"the Kafka broker exited with code {proc.returncode} while starting: see {b.log_file} and {b.log_dir / 'stdout.log'}")
        if b.reachable() and (proc is None or _started_in_log(b, log_from)):
            return f"kafka ready on 127.0.0.1:{b.port}"
        time.sleep(0.2)
    raise KafkaError(f"no Kafka broker answered on 127.0.0.1:{b.port} within {timeout:.0f}s: start it with 'scripts/kafka start' (log: {b.log_file})")


def stop(b: Broker, kill: bool = False) -> str:
    """SIGTERM (clean shutdown), SIGKILL after 30 s; ``kill``: SIGKILL at once (a crash, for fault tests)."""
    pid = b.pid()
    if not pid:
        b.pid_file.unlink(missing_ok=True)
        return f"kafka not running on port {b.port}"
    if kill:
        os.kill(pid, signal.SIGKILL)
        while b.pid():
            time.sleep(0.05)
        b.pid_file.unlink(missing_ok=True)
        return f"kafka killed with SIGKILL (pid {pid})"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline and b.pid():
        time.sleep(0.2)
    how = "stopped"
    if b.pid():
        os.kill(pid, signal.SIGKILL)
        how = "killed (no clean shutdown within 30s)"
        while b.pid():
            time.sleep(0.1)
    b.pid_file.unlink(missing_ok=True)
    return f"kafka {how} (pid {pid})"


def reset(b: Broker) -> str:
    """Stop the broker and delete its data (a fresh, empty cluster on the next start)."""
    import shutil

    said = stop(b)
    shutil.rmtree(b.data, ignore_errors=True)
    return f"{said}; data removed ({b.data})"


def status(b: Broker) -> str:
    pid = b.pid()
    if pid and b.reachable():
        return f"running: pid {pid}, 127.0.0.1:{b.port}, data {b.data}"
    if pid:
        return f"starting: pid {pid}, port {b.port} not open yet"
    if b.reachable():
        return f"not ours: something else listens on 127.0.0.1:{b.port}"
    raise KafkaError(f"stopped: no broker on 127.0.0.1:{b.port} (start it with 'scripts/kafka start')")


def logs(b: Broker, lines: int = 60) -> str:
    try:
        return "\n".join(b.log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        raise KafkaError(f"no broker log yet at {b.log_file}")


@contextmanager
def configured_or_local(configured: str | None) -> Iterator[str]:
    """The broker URL to use: ``configured`` if given, else the local broker, started here
    (and stopped on exit) when it is not already running. For the demo and the benchmarks."""
    if configured:
        yield configured
        return
    b = Broker.from_env()
    started = not b.pid()
    if started:
        print(start(b), flush=True)
    try:
        yield b.url
    finally:
        if started:
            print(stop(b), flush=True)


def _take_brokers(argv: list[str]) -> int | None:
    """Remove ``--brokers N`` (or ``--brokers=N``) from argv and return N."""
    for i, arg in enumerate(argv):
        if arg == "--brokers" and i + 1 < len(argv):
            n = argv[i + 1]
            del argv[i:i + 2]
            return int(n)
        if arg.startswith("--brokers="):
            del argv[i]
            return int(arg.split("=", 1)[1])
    return None


def main(argv: list[str] | None = None) -> int:
    """The single-node commands (``app.devtools.localcluster.cli`` picks this or the cluster's)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv[0] if argv else "status"
    b = Broker.from_env()
    actions = {"start": start, "stop": stop, "status": status, "wait": wait, "logs": logs,
               "reset": reset, "env": lambda b: f"LABELSTREAM_BROKER={b.url}", "fetch": fetch}
    if cmd not in actions:
        print(f"usage: kafka {{{'|'.join(actions)}}}", file=sys.stderr)
        return 2
    return run_action(cmd, lambda: actions[cmd](b))


def run_action(cmd: str, action: Callable[[], str]) -> int:
    """Print what ``action`` says; a ``KafkaError`` is one line on stderr and exit code 1."""
    try:
        print(action())
    except KafkaError as e:
        print(f"kafka {cmd}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
