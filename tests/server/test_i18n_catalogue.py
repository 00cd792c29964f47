"""The dashboard's message catalogue: every key the code uses has an entry, every entry speaks every
language, and no key is defined twice. Keys built at run time (t(`status.${s}`)) are listed by the
code that builds them in a `// i18n-keys: a b c` comment, so they are checked too."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from server.routes import ui
from tests.server.harness import Harness

STATIC = ui.STATIC
LANGUAGES = ("en", "zh-CN")
USE = re.compile(r"""\bt\(\s*["']([A-Za-z0-9_.-]+)["']""")
DECLARED = re.compile(r"//\s*i18n-keys:\s*(.+)")
ATTRIBUTE = re.compile(r"""data-i18n(?:-placeholder|-title)?=["']([A-Za-z0-9_.-]+)["']""")


def catalogue() -> dict[str, dict[str, str]]:
    return ui.merge_catalogues(sorted((STATIC / "i18n").glob("*.json")))


def used_keys() -> dict[str, str]:
    """key → the file that uses it."""
    used: dict[str, str] = {}
    for path in [*STATIC.rglob("*.js"), *STATIC.glob("*.html")]:
        if "vendor" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        keys = USE.findall(text) + ATTRIBUTE.findall(text)
        for line in DECLARED.findall(text):
            keys += line.split()
        for key in keys:
            used.setdefault(key, str(path.relative_to(STATIC)))
    return used


def test_every_entry_speaks_every_language() -> None:
    gaps = [f"{key}: {language}" for key, entry in catalogue().items() for language in LANGUAGES
            if not str(entry.get(language, "")).strip()]
    assert gaps == []


def test_every_used_key_has_an_entry() -> None:
    known = catalogue()
    missing = sorted(f"{key} (in {where})" for key, where in used_keys().items() if key not in known)
    assert missing == []


def test_placeholders_agree_between_languages() -> None:
    names = re.compile(r"\{(\w+)\}")
    differ = [key for key, entry in catalogue().items()
              if len({frozenset(names.findall(entry.get(language, ""))) for language in LANGUAGES}) > 1]
    assert differ == []


def test_a_key_defined_twice_is_named(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"x.y": {"en": "A", "zh-CN": "甲"}}))
    (tmp_path / "b.json").write_text(json.dumps({"x.y": {"en": "B", "zh-CN": "乙"}}))
    with pytest.raises(ValueError, match=r"b.json: message 'x.y' is already defined in a.json"):
        ui.merge_catalogues(sorted(tmp_path.glob("*.json")))


def test_the_server_serves_the_merged_catalogue(sqlite_api: Harness) -> None:
    response = sqlite_api.client.get("/i18n/messages.json")
    assert response.status_code == 200
    assert response.json() == catalogue()
    assert response.json()["lang.switch"]["en"] == "中文"
