"""Operational failures end in one line that says what to do, never a traceback."""

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(cmd, **env):
    return subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def test_unreachable_broker():
    out = run([sys.executable, "-m", "app.cli", "worker"], LABELSTREAM_BROKER="kafka://127.0.0.1:1")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "labelstream: no Kafka broker reachable at kafka://127.0.0.1:1 (KafkaConnectionError): "
        "start one with 'scripts/kafka start' or set LABELSTREAM_BROKER"]


def test_port_already_in_use(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = run(["scripts/kafka", "start"], LABELSTREAM_KAFKA_HOME=str(tmp_path), LABELSTREAM_KAFKA_PORT=str(port))
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"kafka start: port {port} is already in use") and "LABELSTREAM_KAFKA_PORT" in line


def test_maven_cannot_fetch(tmp_path):
    out = run(["scripts/kafka", "start"], LABELSTREAM_KAFKA_HOME=str(tmp_path), LABELSTREAM_KAFKA_VERSION="0.0.404",
              LABELSTREAM_KAFKA_PORT="1", LABELSTREAM_KAFKA_CONTROLLER_PORT="2")
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("kafka start: Maven could not fetch the Kafka 0.0.404 jars") and "mvn.log" in line
