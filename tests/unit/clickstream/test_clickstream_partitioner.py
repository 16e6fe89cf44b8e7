import pytest

from clickstream.partitioner import murmur2, partition_for

# Computed with org.apache.kafka.common.utils.Utils.murmur2 / toPositive from
# kafka-clients 3.9.1; partitions are for a 6-partition topic.
JAVA_VECTORS = [
    ("21", -973932308, 0),
    ("foobar", -790332482, 0),
    ("a-little-bit-long-string", -985981536, 2),
    ("a-little-bit-longer-string", -1486304829, 5),
    ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971, 5),
    ("abc", 479470107, 3),
    ("user-1", 1404122828, 2),
    ("anon-8d7f", -383102797, 1),
    ("ünïcødé", 2147241326, 2),
    ("", 275646681, 3),
]


@pytest.mark.parametrize(("key", "java_hash", "java_partition"), JAVA_VECTORS)
def test_matches_java_client(key: str, java_hash: int, java_partition: int) -> None:
    assert murmur2(key.encode()) == java_hash
    assert partition_for(key.encode(), 6) == java_partition
