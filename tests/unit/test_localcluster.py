"""The local cluster's configuration (no broker): ports, quorum, replication, CLI parsing."""

from pathlib import Path

import pytest

from app.devtools import localcluster
from app.devtools.localkafka import Broker, _take_brokers, server_properties
from app.settings import Settings


def props(b: Broker) -> dict[str, str]:
    return dict(line.split("=", 1) for line in server_properties(b).splitlines() if line)


def cluster(tmp_path: Path) -> localcluster.Cluster:
    return localcluster.Cluster(home=tmp_path, port=19600, controller_port=19603, size=3)


def test_three_nodes_share_one_quorum_with_their_own_ports_and_dirs(tmp_path):
    c = cluster(tmp_path)
    nodes = [props(b) for b in c.nodes]
    assert [p["node.id"] for p in nodes] == ["1", "2", "3"]
    assert {p["controller.quorum.voters"] for p in nodes} == {"1@127.0.0.1:19603,2@127.0.0.1:19604,3@127.0.0.1:19605"}
    assert [p["advertised.listeners"] for p in nodes] == [f"PLAINTEXT://127.0.0.1:{19600 + i}" for i in range(3)]
    assert len({p["log.dirs"] for p in nodes}) == 3
    assert c.url == "kafka://127.0.0.1:19600,127.0.0.1:19601,127.0.0.1:19602"


def test_cluster_replicates_internal_and_new_topics_3_with_2_in_sync(tmp_path):
    p = props(cluster(tmp_path).node(2))
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "share.coordinator.state.topic.replication.factor", "default.replication.factor"):
        assert p[key] == "3", key
    for key in ("transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr", "min.insync.replicas"):
        assert p[key] == "2", key
    env = cluster(tmp_path).env()
    s = Settings(broker=env["LABELSTREAM_BROKER"], replication_factor=env["LABELSTREAM_REPLICATION_FACTOR"],
                 min_insync_replicas=env["LABELSTREAM_MIN_INSYNC_REPLICAS"])
    assert (s.replication_factor, s.topic_config()) == (3, {"min.insync.replicas": "2"})


def test_single_node_is_the_default_and_unchanged(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELSTREAM_KAFKA_HOME", str(tmp_path))
    monkeypatch.delenv("LABELSTREAM_KAFKA_BROKERS", raising=False)
    assert localcluster.Cluster.from_env() is None
    p = props(Broker(tmp_path, 9092, 9093))
    assert p["node.id"] == "1" and p["offsets.topic.replication.factor"] == "1"
    assert "default.replication.factor" not in p and "min.insync.replicas" not in p


def test_brokers_flag_is_taken_out_of_the_arguments():
    argv = ["start", "--brokers", "3"]
    assert _take_brokers(argv) == 3 and argv == ["start"]
    argv = ["--brokers=3", "stop-node", "2"]
    assert _take_brokers(argv) == 3 and argv == ["stop-node", "2"]
    assert _take_brokers(["status"]) is None


def test_unknown_node_is_refused(tmp_path):
    with pytest.raises(Exception, match="nodes 1..3"):
        cluster(tmp_path).node(4)


def test_more_in_sync_replicas_than_replicas_is_refused():
    with pytest.raises(ValueError, match="min_insync_replicas"):
        Settings(replication_factor=1, min_insync_replicas=2)
