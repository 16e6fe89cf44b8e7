#!/usr/bin/env bash
# Apache Kafka's runtime jars from Maven Central, cached as $CACHE/kafka-<version>/lib.
set -euo pipefail
source "$INFRA/steps/common.sh"

home="$CACHE/kafka-$KAFKA_VERSION"
# The marker holds the recipe's hash: a changed pom.xml fetches again.
recipe=$(sha256sum "$INFRA/kafka/pom.xml" | cut -c1-12)
if [ "$(cat "$home/lib/.complete" 2>/dev/null)" = "$recipe" ]; then
  note "cached ($(find "$home/lib" -name '*.jar' | wc -l) jars)"
  exit 0
fi
rm -rf "$home/lib.partial"
mkdir -p "$home"
mvn -B -q -f "$INFRA/kafka/pom.xml" \
  -Dmaven.repo.local="$CACHE/maven-repository" \
  -Dkafka.version="$KAFKA_VERSION" -Dslf4j.version="$SLF4J_VERSION" \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$home/lib.partial"
ls "$home"/lib.partial/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null
echo "$recipe" > "$home/lib.partial/.complete"
rm -rf "$home/lib"
mv "$home/lib.partial" "$home/lib"
note "fetched $(find "$home/lib" -name '*.jar' | wc -l) jars"
