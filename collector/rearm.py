"""Applying re-arm requests: alerts forgotten after their ticket was resolved by force.

A person who resolves (or cancels, or closes) a ticket while its threshold alert is still active,
and insists, leaves a `rule_rearms` row (see `tickets.alerts`). The collector polls for them with
its thresholds; for each it clears the (device, metric) state in its rule engine, so the next
breaching sample raises a new alert (orange after the usual streak, red at once) and opens a new
ticket. The re-armed state and the deletion of the request commit together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from collector.persist import upsert_rule_states
from rules import RuleEngine
from tickets.alerts import stored_alerts
from tickets.models import RuleRearm

logger = logging.getLogger(__name__)


def apply_rearms(
    session: Session, engine: RuleEngine, forget: Callable[[str, str], None],
    remember: Callable[[str, dict[str, Any]], None],
) -> int:
    """Apply every pending request in `session`'s transaction (the caller commits); returns how many.

    A request for a device this engine holds no state for is left for the collector that does,
    unless the stored state shows no such alert either (then there is nothing to re-arm)."""
    rows = session.execute(sa.select(RuleRearm.id, RuleRearm.device_id, RuleRearm.metric)
                           .order_by(RuleRearm.id)).all()
    if not rows:
        return 0
    done: list[int] = []
    states: dict[str, dict[str, Any]] = {}
    for request_id, device_id, metric in rows:
        if engine.snapshot_device(device_id) is None:
            if (device_id, metric) in stored_alerts(session, [device_id]):
                continue
            done.append(request_id)
            continue
        severity = engine.rearm(device_id, metric)
        forget(device_id, metric)
        snapshot = engine.snapshot_device(device_id)
        assert snapshot is not None
        states[device_id] = snapshot
        done.append(request_id)
        logger.info("re-armed the %s alert on %s of %s (request %d): the next breach opens a new ticket",
                    severity.value if severity else "inactive", metric, device_id, request_id)
    upsert_rule_states(session, states)
    session.execute(sa.delete(RuleRearm).where(RuleRearm.id.in_(done)))
    for device_id, snapshot in states.items():
        remember(device_id, snapshot)
    return len(done)

