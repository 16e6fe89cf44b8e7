#!/bin/sh
# The Kafka broker on Debian's Java 17, as the kafka user; data in the volume at
# /var/lib/kafka, server.properties written at each start from the environment.
set -eu
useradd --system --user-group --home-dir /var/lib/kafka --no-create-home \
  --shell /usr/sbin/nologin kafka
install -d -m 0755 /opt/kafka/libs
find /inputs/jars -name '*.jar' -exec install -m 0644 -t /opt/kafka/libs {} +
test -f /opt/kafka/libs/kafka_2.13-3.9.1.jar
# The JMX exporter is a Java agent, not a library of the broker's: off its classpath.
install -d -m 0755 /opt/kafka/jmx-exporter
mv /opt/kafka/libs/jmx_prometheus_javaagent-*.jar /opt/kafka/jmx-exporter/jmx_prometheus_javaagent.jar
install -d -o kafka -g kafka -m 0750 /var/lib/kafka
install -d -o kafka -g kafka -m 0755 /etc/kafka
install -m 0644 /recipe/log4j.properties /etc/kafka/log4j.properties
install -m 0644 /recipe/jmx-exporter.yml /etc/kafka/jmx-exporter.yml
install -m 0755 /recipe/kafka-server-start /recipe/kafka-storage /usr/local/bin/
install -d -m 0755 /usr/local/lib/heliostat/kafka
install -m 0644 /recipe/kafka_config.py /usr/local/lib/heliostat/kafka/kafka_config.py
install -m 0644 /recipe/hook.sh /usr/local/lib/heliostat/entrypoint.d/50-kafka.sh
