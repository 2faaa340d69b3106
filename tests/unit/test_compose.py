"""docker-compose.yml parses and runs the broker with the same settings as scripts/kafka."""

from pathlib import Path

import yaml

from app.devtools.localkafka import Broker, server_properties

ROOT = Path(__file__).resolve().parents[2]
# settings that differ by nature between a container and a local process
PER_HOST = {"node.id", "controller.quorum.voters", "listeners", "advertised.listeners", "log.dirs"}


def test_compose_parses_with_a_kafka_and_a_worker_service():
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert set(doc["services"]) >= {"kafka", "worker"}
    assert doc["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert "LABELSTREAM_BROKER" in doc["services"]["worker"]["environment"]
    assert (ROOT / doc["services"]["worker"]["build"] / "Dockerfile").exists()


def test_compose_broker_uses_the_local_script_settings():
    env = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["kafka"]["environment"]
    props = dict(line.split("=", 1) for line in server_properties(Broker(Path("/x"), 9092, 9093)).splitlines() if line)
    for key, value in props.items():
        if key in PER_HOST:
            continue
        name = "KAFKA_" + key.upper().replace(".", "_")
        assert env.get(name) == value, f"{name} should be {value!r} as in scripts/kafka"
    assert env["KAFKA_NODE_ID"] == props["node.id"]
