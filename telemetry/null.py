"""The null telemetry store: keeps nothing (`store = "none"`, tickets only); charts show latest values."""

from __future__ import annotations

from collections.abc import Sequence

from telemetry.model import History, Latest, Point, empty_history, plan


class NullStore:
    kind = "none"
    available = False
    prunes = False

    def write(self, points: Sequence[Point]) -> int:
        return 0

    def history(self, device_id: str, metrics: Sequence[str], start: float, end: float, max_points: int,
                *, tier: str | None = None) -> History:
        return empty_history(metrics, plan(start, end, max_points, tier).tier.name)

    def latest(self, device_ids: Sequence[str]) -> dict[str, Latest]:
        return {}

    def prune(self, now: float | None = None) -> int:
        return 0

    def close(self) -> None:
        pass
