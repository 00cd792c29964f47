"""The pure parts of shared collectors: which partition a device is in (as NATS computes it),
subjects and topics, the lease plan, the `[bus]` settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.bus.leases import member_key, partition_key, plan
from collector.bus.partitions import (
    is_probe,
    partition_of,
    partition_subject,
    server_mapping,
    stream_subjects,
    topic_of,
)
from collector.bus.settings import load_bus_settings, parse_servers
from common.config import ConfigError


# Read off a real nats-server 2.9 with the mapping `partition(16,1)`: MQTT publishes to
# edgewatch/v1/<device>/telemetry landed on edgewatch.part.<p>.<device>.telemetry.
@pytest.mark.parametrize(("device", "partition"), [("gw-0001", 13), ("gw-0002", 4), ("a", 12), ("ab", 10),
                                                   ("x_y", 3)])
def test_partition_of_agrees_with_nats(device: str, partition: int) -> None:
    assert partition_of(device, 16) == partition


def test_partitions_spread_a_fleet_evenly() -> None:
    counts = [0] * 16
    for n in range(16_000):
        counts[partition_of(f"gw-{n:05d}", 16)] += 1
    assert min(counts) > 800 and max(counts) < 1200, counts


def test_subjects_and_topics() -> None:
    assert server_mapping(8) == {
        "edgewatch.v1.*.*": "edgewatch.part.{{partition(8,1)}}.{{wildcard(1)}}.{{wildcard(2)}}"}
    assert stream_subjects() == ["edgewatch.part.*.*.*"]
    assert partition_subject(3) == "edgewatch.part.3.*.*"
    assert topic_of("edgewatch.part.3.gw-1.telemetry", "edgewatch/v1") == "edgewatch/v1/gw-1/telemetry"
    assert topic_of("edgewatch.part.3.gw-1.status", "/fleet/a/") == "fleet/a/gw-1/status"
    assert topic_of("edgewatch.v1.gw-1.telemetry", "edgewatch/v1") is None
    assert is_probe("edgewatch.part.3.probe-1.probe") and not is_probe("edgewatch.part.3.gw-1.status")


def test_a_lone_collector_claims_everything() -> None:
    assert sorted(plan(4, "a", [], []).claim) == [0, 1, 2, 3]


def test_a_newcomer_takes_what_the_others_give_up() -> None:
    keys = [member_key("a"), member_key("b"), *(partition_key(p) for p in range(16))]
    # a holds everything; with b alive its share is 8, so it gives up the rest.
    assert plan(16, "a", keys, range(16)).release == tuple(range(8, 16))
    assert plan(16, "b", keys, []).claim == ()  # nothing free yet
    keys = [member_key("a"), member_key("b"), *(partition_key(p) for p in range(8))]
    assert sorted(plan(16, "b", keys, []).claim) == list(range(8, 16))


def test_the_share_is_rounded_up_so_every_partition_finds_an_owner() -> None:
    keys = [member_key(n) for n in "abc"] + [partition_key(p) for p in range(10)]
    assert len(plan(16, "c", keys, []).claim) == 6
    assert plan(16, "a", keys, range(6)).release == ()


def test_a_dead_members_partitions_are_claimed() -> None:
    keys = [member_key("a"), *(partition_key(p) for p in range(4))]  # b's keys expired
    assert sorted(plan(8, "a", keys, range(4)).claim) == [4, 5, 6, 7]


def test_member_keys_are_valid_kv_keys() -> None:
    assert member_key("host.example:1@2") == "member.host_example_1_2"


def test_bus_settings(tmp_path: Path) -> None:
    assert load_bus_settings(None, {}) is None
    settings = load_bus_settings(None, {"EDGEWATCH_BUS_URL": "nats://a:4222, nats://b:4222"})
    assert settings is not None and settings.servers == ("nats://a:4222", "nats://b:4222")
    assert settings.hold_s == settings.lease_ttl_s / 2
    config = tmp_path / "c.toml"
    config.write_text('[bus]\nurl = "nats://a:1"\npartitions = 64\nreplicas = 3\nname = "c1"\n')
    settings = load_bus_settings(config, {}, url="nats://z:4222")
    assert settings is not None and settings.servers == ("nats://z:4222",)
    assert (settings.partitions, settings.replicas, settings.name) == (64, 3, "c1")


@pytest.mark.parametrize("value", ["mqtt://a:1883", "nats://a", "a:4222", ","])
def test_bad_bus_urls_are_named(value: str) -> None:
    with pytest.raises(ConfigError, match=r"bus\.url"):
        parse_servers(value)
