"""A single-node Kafka (KRaft, combined broker and controller) as its own JVM process, with a
data directory formatted fresh for the session, on free loopback ports."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from tests.infra.processes import LoopbackServer, ManagedProcess, free_port
from tests.infra.run_dir import RunDir
from tests.infra.settings import NotProvisioned, kafka_lib, require

HEAP = "-Xmx512m"

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs={data_dir}
num.partitions=1
# One node: every internal topic has one replica, and few partitions so they appear quickly.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
group.initial.rebalance.delay.ms=0
"""

LOG4J_PROPERTIES = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
"""


def cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64, like `StorageTool random-uuid`."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):  # Kafka avoids ids that look like a command-line flag
            return text


class KafkaBroker(LoopbackServer):
    # A controlled shutdown (and a start that recovers logs) can take a while.
    start_timeout = stop_timeout = 90

    def __init__(self, run: RunDir) -> None:
        lib = require(kafka_lib() / ".complete", "the Kafka jars").parent
        self.port = free_port()
        self.controller_port = free_port()
        home = run.subdir("kafka")
        self.data_dir = home / "data"
        self.config = home / "server.properties"
        self.config.write_text(
            SERVER_PROPERTIES.format(
                port=self.port, controller_port=self.controller_port, data_dir=self.data_dir
            )
        )
        log4j = home / "log4j.properties"
        log4j.write_text(LOG4J_PROPERTIES)
        self._java = [
            "java",
            f"-Dlog4j.configuration=file:{log4j}",
            f"-Dkafka.logs.dir={home}",
            "-Djava.awt.headless=true",
            "-cp",
            f"{lib}/*",
        ]
        self._format(home)
        self._process = ManagedProcess(
            "kafka", [*self._java, HEAP, "kafka.Kafka", str(self.config)], run, cwd=home
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def java(self, main_class: str, *args: str) -> list[str]:
        """A command line running one of the Kafka jars' tools on the broker's classpath."""
        return [*self._java, HEAP, main_class, *args]

    def _format(self, home: Path) -> None:
        result = subprocess.run(
            [*self._java, "kafka.tools.StorageTool", "format",
             "-t", cluster_id(), "-c", str(self.config)],
            cwd=home, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if result.returncode != 0:
            raise NotProvisioned(f"Kafka storage format failed:\n{result.stdout}\n{result.stderr}")

    @property
    def _readiness(self) -> str:
        return f"a broker on {self.bootstrap}"

    def admin(self, **config: object) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap, **config})

    def create_topic(self, name: str, partitions: int = 1) -> str:
        """Creates the topic (an existing one is fine) and returns its name."""
        admin = self.admin()  # must outlive the futures: destroying it cancels them
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1)],
            operation_timeout=30,
        )
        try:
            futures[name].result(timeout=60)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        return name

    def _answers(self) -> bool:
        try:
            # Quiet: while the broker is still starting every refused connect gets logged.
            metadata = self.admin(log_level=0).list_topics(timeout=2)
        except KafkaException:
            return False
        return bool(metadata.brokers)
