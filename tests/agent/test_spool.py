"""The SQLite spool, on real files: durable seq, instance, FIFO order, bounded with drop reports."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from agent.spool import Spool, SpoolError, open_spool


def builder(seen: list[tuple[int, int]]):  # type: ignore[no-untyped-def]
    def build(seq: int, dropped: int) -> tuple[str, bytes]:
        seen.append((seq, dropped))
        return "t/x", json.dumps({"seq": seq, "spool_dropped": dropped}).encode()

    return build


def test_seq_and_instance_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path, 100)
    instance = spool.instance
    seqs = [spool.append(builder([])) for _ in range(3)]
    spool.remove(seqs)  # even an empty spool keeps counting
    spool.close()
    again = Spool(path, 100)
    assert again.instance == instance
    assert again.append(builder([])) == 4
    assert len(again) == 1


def test_a_new_spool_is_a_new_instance(tmp_path: Path) -> None:
    assert Spool(tmp_path / "a", 10).instance != Spool(tmp_path / "b", 10).instance


def test_peek_is_oldest_first_and_remove_forgets(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", 100)
    for _ in range(5):
        spool.append(builder([]))
    assert [r.seq for r in spool.peek(0, 3)] == [1, 2, 3]
    assert [r.seq for r in spool.peek(3, 10)] == [4, 5]
    spool.remove([2, 4, 99])
    assert [r.seq for r in spool.peek(0, 10)] == [1, 3, 5]
    assert len(spool) == 3
    row = spool.peek(4, 1)[0]
    assert (row.topic, json.loads(row.payload)["seq"]) == ("t/x", 5)


def test_full_spool_drops_oldest_and_the_next_sample_reports_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", 3)
    seen: list[tuple[int, int]] = []
    for _ in range(5):
        spool.append(builder(seen))
    assert [r.seq for r in spool.peek(0, 10)] == [3, 4, 5]
    # Storing seq 4 dropped seq 1, which seq 5 reports; storing seq 5 dropped seq 2: still pending.
    assert seen == [(1, 0), (2, 0), (3, 0), (4, 0), (5, 1)]
    assert spool.pending_dropped == 1
    spool.append(builder(seen))
    assert seen[-1] == (6, 1)


def test_drop_reports_are_not_lost_with_the_samples_that_carry_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", 2)
    seen: list[tuple[int, int]] = []
    for _ in range(6):
        spool.append(builder(seen))
    # Dropped: seqs 1 to 4, some of them carrying reports of earlier drops.
    stored = {r.seq: json.loads(r.payload)["spool_dropped"] for r in spool.peek(0, 10)}
    assert list(stored) == [5, 6]
    # Everything dropped is reported by what is stored plus what is still pending.
    assert sum(stored.values()) + spool.pending_dropped == 4


def test_reported_drops_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "s"
    spool = Spool(path, 1)
    spool.append(builder([]))
    spool.append(builder([]))
    spool.close()
    seen: list[tuple[int, int]] = []
    Spool(path, 1).append(builder(seen))
    assert seen == [(3, 1)]


def test_extra_dropped_are_reported(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    Spool(tmp_path / "s", 10).append(builder(seen), extra_dropped=2)
    assert seen == [(1, 2)]


def test_failed_build_changes_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", 10)

    def broken(seq: int, dropped: int) -> tuple[str, bytes]:
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(SpoolError, match="cannot store a sample"):
        spool.append(broken)
    assert (len(spool), spool.next_seq) == (0, 1)


def test_unwritable_spool_is_an_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(SpoolError, match=str(tmp_path / "dir")):
        Spool(tmp_path / "dir", 10)


def test_damaged_spool_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "s"
    path.write_bytes(b"not a database" * 100)
    spool, aside = open_spool(path, 10)
    assert aside is not None and aside.read_bytes().startswith(b"not a database")
    assert spool.append(builder([])) == 1


def test_a_message_that_cannot_carry_drops_passes_them_on(tmp_path: Path) -> None:
    # A proxied device's status takes a seq but has no `spool_dropped`: the next sample reports them.
    spool = Spool(tmp_path / "s", 100)
    seen: list[tuple[int, int]] = []
    spool.append(builder(seen))
    spool.append(builder(seen), extra_dropped=2, reports_drops=False)
    assert spool.pending_dropped == 2
    spool.append(builder(seen))
    assert seen == [(1, 0), (2, 0), (3, 2)]
    full = Spool(tmp_path / "full", 2)
    seen = []
    full.append(builder(seen))
    full.append(builder(seen))
    full.append(builder(seen), reports_drops=False)  # drops seq 1
    full.append(builder(seen))  # drops seq 2, reports seq 1
    assert seen == [(1, 0), (2, 0), (3, 0), (4, 1)]
    assert full.pending_dropped == 1
