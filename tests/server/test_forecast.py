"""`GET /devices/{id}/forecast`: the collector's stored forecasts, with the line to the horizon."""

from __future__ import annotations

import pytest

from collector.persist import upsert_predictive_states
from collector.predictive import PredictiveStage
from rules import RuleEngine, Sample
from rules.predict import Change, PredictiveMonitor
from tests.server.harness import Harness

pytestmark = pytest.mark.postgres
HOUR = 3600.0


def leaking_stage(device_id: str, t0: float) -> tuple[PredictiveStage, list]:
    """Memory flat for 3 h, then +4 % an hour, fed until the predictive warning is raised."""
    engine = RuleEngine()
    stage = PredictiveStage(PredictiveMonitor(), engine.thresholds)
    raised = []
    for seq in range(1, 9 * 60):
        t = seq * 60.0
        value = 40.0 + 0.3 * ((seq * 7919) % 11 - 5) / 5 + max(0.0, t - 3 * HOUR) / HOUR * 4.0
        sample = Sample(device_id, seq, t0 + t, {"mem_percent": value, "cpu_percent": 20.0}, device_class="gateway")
        raised = [e for e in stage.feed(sample, engine.feed(sample).transitions) if e.change is Change.RAISED]
        if raised:
            break
    return stage, raised


def warned_by_a_leak(h: Harness, device_id: str, t0: float) -> int:
    """What the collector leaves for a leaking device: its stored forecasts and the predictive
    ticket its warning opened (the ticket's id)."""
    stage, raised = leaking_stage(device_id, t0)
    assert raised
    with h.sessions() as session:
        upsert_predictive_states(session, {device_id: stage.row(device_id)})
        ticket = h.service.on_predictive(session, raised[0])
        session.commit()
        assert ticket is not None
        return ticket.id


def test_forecast_shows_the_trend_the_line_and_the_open_warning(api: Harness) -> None:
    api.add_device("gw-f", "Acme Power")
    api.add_device("gw-other", "Beta Water")
    ticket_id = warned_by_a_leak(api, "gw-f", api.clock.now().timestamp() - 9 * HOUR)
    answer = api.client.get("/api/v1/devices/gw-f/forecast", headers=api.auth("customer"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    by_metric = {m["metric"]: m for m in body["metrics"]}
    assert set(by_metric) == {"cpu_percent", "mem_percent"} and body["updated_at"] is not None
    mem = by_metric["mem_percent"]
    assert mem["threshold"] == 60.0 and mem["unit"] == "%" and mem["horizon_s"] == 6 * HOUR and mem["reliable"]
    assert 1.0 < mem["slope_per_hour"] < 5.0 and 0 < mem["eta_s"] <= 6 * HOUR and mem["confidence"] >= 0.7
    points = mem["points"]
    assert len(points) == 25 and points[0]["value"] == pytest.approx(mem["now"])
    assert points[-1]["ts"] - points[0]["ts"] == pytest.approx(6 * HOUR) and points[-1]["value"] > 60.0
    assert mem["warning"]["kind"] == "trend" and mem["warning"]["ticket_id"] == ticket_id
    assert mem["warning"]["message"].startswith("mem_percent on gw-f forecast to pass 60 %")
    cpu = by_metric["cpu_percent"]
    assert (cpu["eta_s"] is None or cpu["eta_s"] > 1e6) and cpu["confidence"] < 0.1 and cpu["warning"] is None
    # one metric only; nothing stored yet; another customer's device
    only = api.client.get("/api/v1/devices/gw-f/forecast", params={"metric": "mem_percent"}, headers=api.auth("engineer"))
    assert [m["metric"] for m in only.json()["metrics"]] == ["mem_percent"]
    # a name no sample could carry (rules.metrics' one pattern) is refused, naming the parameter
    for bad in ("Mem percent", "x" * 65):
        refused = api.client.get("/api/v1/devices/gw-f/forecast", params={"metric": bad}, headers=api.auth("engineer"))
        assert refused.status_code == 422 and "metric" in refused.text
    empty = api.client.get("/api/v1/devices/gw-other/forecast", headers=api.auth("admin")).json()
    assert empty == {"device_id": "gw-other", "updated_at": None, "metrics": []}
    assert api.client.get("/api/v1/devices/gw-other/forecast", headers=api.auth("customer")).status_code == 404
