"""The Kafka image's server.properties (bundles/core/images/kafka/kafka_config.py)."""

import base64
import sys

import pytest

from tests.unit.images.recipe_scripts import load_script, recipe_dir

RECIPE = recipe_dir("core", "kafka")


kafka = load_script("core", "kafka", "kafka_config.py")
THREE = {
    "KAFKA_CONTROLLER_QUORUM_VOTERS": "0@kafka-0:9093,1@kafka-1:9093,2@kafka-2:9093",
    "KAFKA_ADVERTISED_HOST_PATTERN": "kafka-{index}",
    "KAFKA_DEFAULT_REPLICATION_FACTOR": "3",
    "KAFKA_MIN_INSYNC_REPLICAS": "2",
}


def test_each_replica_is_the_broker_and_controller_of_its_index():
    properties, _ = kafka.settings({**THREE, "REPLICA_INDEX": "2"})
    assert properties["process.roles"] == "broker,controller"
    assert properties["node.id"] == "2"
    assert properties["advertised.listeners"] == "PLAINTEXT://kafka-2:9092"
    assert properties["listeners"] == "PLAINTEXT://:9092,CONTROLLER://:9093"
    assert properties["controller.quorum.voters"] == THREE["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert properties["log.dirs"] == "/var/lib/kafka/data"
    assert [properties[k] for k in ("default.replication.factor",
                                    "offsets.topic.replication.factor",
                                    "transaction.state.log.replication.factor",
                                    "min.insync.replicas", "transaction.state.log.min.isr")] == \
        ["3", "3", "3", "2", "2"]


def test_all_replicas_agree_on_the_cluster_id_and_scaling_keeps_it():
    ids = {kafka.settings({**THREE, "REPLICA_INDEX": str(i)})[1] for i in range(3)}
    one = kafka.settings({"KAFKA_ADVERTISED_HOST_PATTERN": "kafka-{index}",
                          "KAFKA_CONTROLLER_QUORUM_VOTERS": "0@kafka-0:9093"})[1]
    assert ids == {one}
    assert len(base64.urlsafe_b64decode(one + "==")) == 16
    assert kafka.settings({"KAFKA_ADVERTISED_HOST_PATTERN": "kafka-{index}-other.mesos",
                           "KAFKA_CONTROLLER_QUORUM_VOTERS": "0@x:9093"})[1] != one


def test_a_given_cluster_id_wins():
    _, cluster_id = kafka.settings({**THREE, "KAFKA_CLUSTER_ID": "MkU3OEVBNTcwNTJENDM2Qg"})
    assert cluster_id == "MkU3OEVBNTcwNTJENDM2Qg"


def test_alone_it_is_a_single_node_quorum_on_its_host_name(monkeypatch):
    monkeypatch.setattr(kafka.socket, "gethostname", lambda: "kafka-host")
    properties, _ = kafka.settings({})
    assert properties["controller.quorum.voters"] == "0@kafka-host:9093"
    assert properties["default.replication.factor"] == "1"


@pytest.mark.parametrize(("env", "error"), [
    ({"REPLICA_INDEX": "3"}, "not among the controller voters"),
    ({"REPLICA_INDEX": "-1"}, "REPLICA_INDEX must be an integer"),
    ({"KAFKA_CONTROLLER_QUORUM_VOTERS": "kafka-0:9093"}, "is not id@host:port"),
    ({"KAFKA_MIN_INSYNC_REPLICAS": "4"}, "more than"),
    ({"KAFKA_CLUSTER_ID": "short"}, "22 characters"),
])
def test_a_bad_environment_is_refused_clearly(env, error):
    with pytest.raises(kafka.ConfigError, match=error):
        kafka.settings({**THREE, "REPLICA_INDEX": "0", **env})


def test_main_writes_the_properties_and_prints_the_cluster_id(tmp_path, monkeypatch, capsys):
    for name, value in {**THREE, "REPLICA_INDEX": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["kafka_config.py", str(tmp_path / "server.properties")])
    assert kafka.main() == 0
    assert capsys.readouterr().out.strip() == kafka.settings({**THREE, "REPLICA_INDEX": "1"})[1]
    assert "node.id=1\n" in (tmp_path / "server.properties").read_text()
