"""`with_devices`: per-device overrides laid over the thresholds document, the one merge the collector
and the server share."""

from __future__ import annotations

from typing import Any

from rules import parse_thresholds, with_devices

DOCUMENT: dict[str, Any] = {
    "metrics": {"cpu_percent": 60},
    "devices": {"gw-1": {"device_class": "gateway", "cpu_percent": 50, "mem_percent": {"threshold": 40}}},
}


def test_an_override_replaces_its_metrics_and_keeps_the_documents_others() -> None:
    merged = with_devices(DOCUMENT, [("gw-1", {"mem_percent": 55, "device_class": "ignored"}, None)])
    assert merged["devices"]["gw-1"] == {"device_class": "gateway", "cpu_percent": 50, "mem_percent": 55}
    assert merged["metrics"] == {"cpu_percent": 60}
    assert DOCUMENT["devices"]["gw-1"]["mem_percent"] == {"threshold": 40}  # the document is not changed


def test_a_registry_class_replaces_the_documents_and_a_missing_one_keeps_it() -> None:
    merged = with_devices(DOCUMENT, [("gw-1", None, "router"), ("gw-2", None, "router"), ("gw-3", None, None)])
    assert merged["devices"] == {
        "gw-1": {"device_class": "router", "cpu_percent": 50, "mem_percent": {"threshold": 40}},
        "gw-2": {"device_class": "router"},
    }
    assert with_devices(DOCUMENT, [("gw-1", {}, None)]) == DOCUMENT


def test_without_overrides_or_devices_the_document_is_unchanged() -> None:
    assert with_devices({"metrics": {"cpu_percent": 70}}, []) == {"metrics": {"cpu_percent": 70}}
    assert with_devices({}, [("gw-9", {"latency_ms": 150}, None)]) == {"devices": {"gw-9": {"latency_ms": 150}}}


def test_a_broken_table_is_left_for_the_parser_to_name() -> None:
    broken = {"devices": {"gw-1": 5}}
    merged = with_devices(broken, [("gw-1", {"cpu_percent": 50}, None)])
    assert merged == broken
    assert with_devices({"devices": [1]}, [("gw-1", {"cpu_percent": 50}, None)]) == {"devices": [1]}


def test_the_merged_document_resolves_device_over_class_over_default() -> None:
    thresholds = parse_thresholds(with_devices(DOCUMENT, [("gw-1", {"mem_percent": 55}, "router")]))
    rule = thresholds.rule_for("gw-1", None, "mem_percent")
    assert rule is not None and rule.threshold == 55
    cpu = thresholds.rule_for("gw-1", None, "cpu_percent")
    assert cpu is not None and cpu.threshold == 50
    assert thresholds.class_of("gw-1") == "router"
