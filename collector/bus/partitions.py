"""Which partition a device belongs to, and the subjects and topics around it (pure).

Agents publish over MQTT to NATS's MQTT listener; NATS turns the topic
`edgewatch/v1/<device>/<kind>` into the subject `edgewatch.v1.<device>.<kind>`, and the server's
subject mapping (`server_mapping`) rewrites that into `edgewatch.part.<p>.<device>.<kind>`, where
`p` is NATS's `partition(N, device)`: FNV-1a (32 bit) of the device id modulo N. The same function
here tells a collector which stored devices belong to the partitions it owns.
"""

from __future__ import annotations

PART_PREFIX = "edgewatch.part"
PROBE_KIND = "probe"  # used to check the server's mapping

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def partition_of(device_id: str, partitions: int) -> int:
    """The partition NATS's `partition(partitions, ...)` mapping puts `device_id` in."""
    h = _FNV_OFFSET
    for byte in device_id.encode():
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h % partitions


def nats_prefix(topic_prefix: str) -> str:
    """`edgewatch/v1` -> `edgewatch.v1` (NATS's MQTT listener maps `/` to `.`)."""
    return topic_prefix.strip("/").replace("/", ".")


def server_mapping(partitions: int, topic_prefix: str = "edgewatch/v1") -> dict[str, str]:
    """The `mappings` entry of the NATS server configuration that partitions the fleet's subjects."""
    wildcards = ".".join("*" for _ in range(2))
    return {f"{nats_prefix(topic_prefix)}.{wildcards}":
            f"{PART_PREFIX}.{{{{partition({partitions},1)}}}}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}"}


def stream_subjects() -> list[str]:
    # Everything mapped, the mapping probes too (NATS 2.9 lets a consumer filter only on a subset of
    # one stream subject): readers skip the probes.
    return [f"{PART_PREFIX}.*.*.*"]


def is_probe(subject: str) -> bool:
    return subject.endswith("." + PROBE_KIND)


def partition_subject(partition: int) -> str:
    """What one partition's consumer reads."""
    return f"{PART_PREFIX}.{partition}.*.*"


def topic_of(subject: str, topic_prefix: str) -> str | None:
    """`edgewatch.part.<p>.<device>.<kind>` -> `<topic_prefix>/<device>/<kind>`; None if not one."""
    parts = subject.split(".")
    if len(parts) != 5 or f"{parts[0]}.{parts[1]}" != PART_PREFIX:
        return None
    return f"{topic_prefix.strip('/')}/{parts[3]}/{parts[4]}"
