"""The SLA policy and ticket settings: defaults from the source documents, overrides, clear errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from common.config import ConfigError, Settings
from tickets.errors import IllegalTransition
from tickets.lifecycle import TRANSITIONS, is_open, next_status
from tickets.notify.locale import Locale
from tickets.policy import SlaPolicy, load_policy, parse_duration
from tickets.settings import load_ticket_settings

M = timedelta(minutes=1)


def _policy(text: str = "", environ: dict[str, str] | None = None, tmp_path: Path | None = None) -> SlaPolicy:
    if tmp_path is None:
        return load_policy(Settings({}, source="(defaults)", section="sla", environ=environ or {}))
    path = tmp_path / "edgewatch.toml"
    path.write_text(text)
    return load_policy(Settings.load(path, "sla", environ or {}))


def test_defaults_are_the_documents_numbers() -> None:
    p = _policy()
    assert dict(p.first_response) == {"red": 5 * M, "yellow": 15 * M, "blue": 30 * M}
    assert (p.pre_maintenance_start, p.on_site, p.dispatch, p.rca) == (120 * M, 60 * M, 120 * M, 48 * 60 * M)
    assert p.warn_fractions == (0.5, 0.75) and p.warn_before == 60 * M
    assert [p.group_of(level) for level in ("red", "yellow", "blue")] == ["senior", "mid", "junior"]
    assert [p.level_of(kind) for kind in ("pre_maintenance", "on_site", "offline", "predictive")] == [
        "yellow", "red", "yellow", "blue"]
    assert [name for name, _ in p.clocks_for("on_site", "red")] == ["first_response", "on_site", "rca", "resolution"]
    assert [name for name, _ in p.clocks_for("pre_maintenance", "yellow")] == [
        "first_response", "dispatch", "pre_maintenance_start", "resolution"]
    assert p == SlaPolicy()


def test_file_and_environment_override(tmp_path: Path) -> None:
    p = _policy('[sla]\nfirst_response_red = "3m"\nrca = "24h"\nwarn_at = ["80%"]\nescalation_every = 5\n'
                'escalation_chain_blue = ["junior", "supervisor"]\nsatisfaction_threshold = 3\n',
                {"EDGEWATCH_SLA_ON_SITE": "45m", "EDGEWATCH_SLA_WARN_BEFORE_ENABLED": "false"}, tmp_path)
    assert p.first_response["red"] == 3 * M and p.rca == 24 * 60 * M and p.on_site == 45 * M
    assert p.warn_fractions == (0.8,) and p.warn_before is None and p.escalation_every == 5 * M
    assert p.escalation_chain["blue"] == ("junior", "supervisor") and p.satisfaction_threshold == 3


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ('[sla]\nrca = "two days"\n', {}, r"edgewatch.toml: sla.rca: expected a duration like"),
        ("[sla]\non_site = 0\n", {}, r"on_site: must be longer than 0"),
        ("", {"EDGEWATCH_SLA_DISPATCH": "-5"}, r"EDGEWATCH_SLA_DISPATCH: dispatch: must be longer than 0"),
        ('[sla]\nwarn_at = ["150%"]\n', {}, r"warn_at: expected fractions between 0 and 1"),
        ('[sla]\nescalation_chain_red = ["boss"]\n', {}, r"escalation_chain_red: expected a non-empty list"),
        ('[sla]\nfollow_up_level = "purple"\n', {}, r"follow_up_level: expected levels among red, yellow, blue"),
        ("[sla]\nsatisfaction_threshold = 9\n", {}, r"satisfaction_threshold: ratings are 1-5"),
    ],
)
def test_wrong_settings_name_source_key_and_reason(tmp_path: Path, text: str, environ: dict[str, str],
                                                   message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _policy(text, environ, tmp_path)


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("2h") == 120 * M and parse_duration("1.5d") == timedelta(hours=36)
    assert parse_duration("15") == 15 * M and parse_duration(" 10 min ") == 10 * M
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration("soon")


def test_ticket_settings(tmp_path: Path) -> None:
    path = tmp_path / "edgewatch.toml"
    path.write_text('[tickets]\npublic_url = "https://desk.example.com/"\nreconcile_seconds = 2\n'
                    '[sla]\nfirst_response_blue = "20m"\n[notifications]\nmax_attempts = 4\n')
    s = load_ticket_settings(path, {}, data_dir=tmp_path)
    assert s.public_url == "https://desk.example.com" and s.reconcile_every == 2.0
    assert s.policy.first_response["blue"] == 20 * M and s.delivery().max_attempts == 4
    with pytest.raises(ConfigError, match="public_url: expected an http"):
        load_ticket_settings(None, {"EDGEWATCH_PUBLIC_URL": "desk"})


def test_lifecycle_table() -> None:
    assert next_status("dispatch", "received") == "dispatched"
    assert next_status("check_in", "dispatched") == "in_progress"
    assert all(not is_open(next_status(a, "in_progress")) for a in ("resolve", "cancel"))
    with pytest.raises(IllegalTransition, match="unknown action 'reopen'"):
        next_status("reopen", "closed")
    for moves in TRANSITIONS.values():
        assert "closed" not in moves and "cancelled" not in moves  # final states


def test_default_language_and_time_zone(tmp_path: Path) -> None:
    assert load_ticket_settings(None, {}).locale == Locale("en", "UTC")  # what installs had before
    path = tmp_path / "edgewatch.toml"
    path.write_text('[tickets]\ndefault_language = "zh-CN"\ndefault_timezone = "Asia/Shanghai"\n')
    assert load_ticket_settings(path, {}).locale == Locale("zh-CN", "Asia/Shanghai")
    assert load_ticket_settings(path, {"EDGEWATCH_DEFAULT_LANGUAGE": "en"}).locale == Locale("en", "Asia/Shanghai")
    with pytest.raises(ConfigError, match=r"EDGEWATCH_DEFAULT_TIMEZONE: default_timezone: unknown time zone 'CST'"):
        load_ticket_settings(None, {"EDGEWATCH_DEFAULT_TIMEZONE": "CST"})
    path.write_text('[tickets]\ndefault_language = "fr"\n')
    with pytest.raises(ConfigError, match=r"edgewatch.toml: tickets.default_language: must be one of en, zh-CN"):
        load_ticket_settings(path, {})
