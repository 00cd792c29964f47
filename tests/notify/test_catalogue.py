"""The notification texts' catalogue (tickets/notify/locale): every text the code marks for translation,
and every metric label of the metric catalogue, has a Simplified Chinese translation; translations use
only the placeholders their text is given; and no translation is left over from a text that is gone.
`scripts/messages` refreshes the catalogue from the code; this test says what is still missing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from rules.metrics import METRICS
from tests.notify.support import RED_FACTS
from tickets.notify import render
from tickets.notify.locale import Locale, catalogue_path

ROOT = Path(__file__).resolve().parents[2]
# As scripts/messages extracts them: `_()` and `N_()` in the message texts, channels and the PDF
# report, the labels of `Metric(...)`.
SOURCES = {ROOT / "tickets" / "notify" / "message.py": {"_": None, "N_": None},
           ROOT / "tickets" / "notify" / "channels.py": {"_": None},
           ROOT / "server" / "report_pdf.py": {"_": None},
           ROOT / "rules" / "metrics.py": {"Metric": (2,)}}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def marked_texts() -> dict[str, str]:
    """text → where it is marked (file:line)."""
    found: dict[str, str] = {}
    for path, keywords in SOURCES.items():
        for line, message, _comments, _context in extract_from_file("python", str(path), keywords=keywords):
            text = message if isinstance(message, str) else next(m for m in message if m)
            found.setdefault(text, f"{path.relative_to(ROOT)}:{line}")
    return found


def translations(language: str) -> dict[str, Any]:
    with catalogue_path(language).open("rb") as source:
        return {m.id: m for m in read_po(source) if m.id}


def test_every_marked_text_has_a_chinese_translation() -> None:
    zh = translations("zh-CN")
    missing = sorted(f"{text!r} ({where})" for text, where in marked_texts().items()
                     if text not in zh or not str(zh[text].string).strip() or zh[text].fuzzy)
    assert missing == []


def test_every_metric_label_is_translated() -> None:
    zh = translations("zh-CN")
    assert sorted(m.label for m in METRICS.values() if not (m.label in zh and zh[m.label].string)) == []


def test_translations_use_only_the_placeholders_of_their_text() -> None:
    wrong = []
    for text, message in translations("zh-CN").items():
        given = set(PLACEHOLDER.findall(text))
        if "metric" in given:
            given.add("label")  # a metric's name always comes with its words (message._metric)
        extra = set(PLACEHOLDER.findall(str(message.string))) - given
        if extra:
            wrong.append(f"{text!r}: {sorted(extra)}")
    assert wrong == []


def test_no_translation_is_left_from_a_text_that_is_gone() -> None:
    assert sorted(set(translations("zh-CN")) - set(marked_texts())) == []


EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("ticket_opened", {}),
    ("ticket_opened", {"severity": "orange", "kind": "pre_maintenance", "level": "yellow"}),
    ("ticket_opened", {"kind": "offline", "last_seen": "2025-11-25T11:55:00Z"}),
    ("ticket_opened", {"kind": "predictive", "predicted_at": "2025-11-26T03:00:00Z"}),
    ("ticket_escalated", {}),
    ("alert_cleared", {"value": 41.5, "cleared_at": "2025-11-25T13:00:00Z"}),
    ("alert_recurred", {"cleared_at": "2025-11-25T13:00:00Z"}),
    ("sla_warning", {"clock": "resolution", "due_at": "2025-11-25T16:00:00Z", "assignee": "王芳"}),
    ("sla_breached", {"clock": "first_response", "due_at": "2025-11-25T12:05:00Z"}),
    ("ticket_dispatched", {"group": "senior", "assignee": "王芳", "on_call": True, "note": "带备用电源"}),
    ("satisfaction_request", {"links": {"rating": "http://desk.example/survey/abc"}}),
    ("rca_report", {"title": "CPU 过载", "rca": {"symptom": "CPU 95%", "actions": ["更换风扇"]}}),
    ("ticket_opened", {"value": None, "source": "alertmanager", "alert": "HostHighCpuLoad", "summary": "负载过高"}),
    ("alert_recurred", {"value": None, "source": "zabbix", "alert": "High CPU"}),
    ("ticket_dispatched", {"group": "senior", "knowledge": {"title": "更换风扇", "link": "http://desk/knowledge/3"}}),
]


@pytest.mark.parametrize(("event", "extra"), EVENTS)
def test_every_event_reads_in_chinese_and_in_the_readers_time_zone(event: str, extra: dict[str, Any]) -> None:
    facts = {**RED_FACTS, "site": "北区泵站", "clocks": [{"name": "on_site", "due_at": "2025-11-25T13:00:00Z"}],
             **extra}
    zh = render(event, facts, Locale("zh-CN", "Asia/Shanghai"))
    en = render(event, facts)
    assert zh.subject.startswith("[edgewatch] ")  # the DingTalk keyword
    assert zh.subject != en.subject and zh.text != en.text
    english_words = re.compile(r"\b(ticket|device|threshold|alert|the|is|of)\b", re.I)
    readable = re.sub(r"https?://\S+|[\w.-]+_[\w.]+", "", zh.subject + zh.text)  # links and metric names aside
    assert not english_words.search(readable), readable
    assert " UTC" not in zh.text and zh.data == en.data
