"""The garbage-collector tuning `edgewatch collector` applies after start (see docs/performance.md)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.settings import load_settings
from common.config import ConfigError
from common.process import tune_garbage_collector


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_threshold_raised_and_startup_objects_frozen(restore_gc: None) -> None:
    middle, oldest = gc.get_threshold()[1:]
    tune_garbage_collector(50_000)
    assert gc.get_threshold() == (50_000, middle, oldest)
    assert gc.get_freeze_count() > 0


def test_zero_keeps_pythons_threshold(restore_gc: None) -> None:
    before = gc.get_threshold()
    tune_garbage_collector(0)
    assert gc.get_threshold() == before


def test_setting_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "edgewatch.toml"
    config.write_text("[collector]\ngc_threshold = 20000\n")
    assert load_settings(config, {}).gc_threshold == 20_000
    assert load_settings(None, {}).gc_threshold == 50_000
    config.write_text("[collector]\ngc_threshold = -1\n")
    with pytest.raises(ConfigError, match="gc_threshold"):
        load_settings(config, {})
