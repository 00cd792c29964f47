"""The language and time zone a message is written in: the gettext catalogues and how a time reads.

A `Locale` is a recipient's language (`en` or `zh-CN`) and IANA time zone. Texts are written in
English in the code, marked `_("...")`, and looked up in `locale/<ll_CC>/LC_MESSAGES/edgewatch.po`,
which Babel reads and compiles in memory the first time a language is asked for (so the package
ships only the `.po` text, and an edit shows up at the next start). English needs no catalogue: the
message id is the text. `tests/notify/test_catalogue.py` fails when a marked text has no translation.
Pure apart from reading the catalogue file once.
"""

from __future__ import annotations

import functools
import gettext
import io
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("en", "zh-CN")
DOMAIN = "edgewatch"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


class LocaleError(ValueError):
    """An unknown language or time zone; the message names which and what is expected."""


def N_(message: str) -> str:
    """Marks a text for the catalogue where it is defined (a table); it is translated where it is used."""
    return message


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of a language (English: the texts themselves). Fuzzy entries are left out."""
    if language not in LANGUAGES:
        raise LocaleError(f"language: must be one of {', '.join(LANGUAGES)}, got {language!r}")
    if language == "en":
        return gettext.NullTranslations()
    with catalogue_path(language).open("rb") as source:
        catalog = read_po(source, locale=language.replace("-", "_"), domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@functools.cache
def zone(name: str) -> tzinfo:
    """The time zone of an IANA name; LocaleError for an unknown one."""
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise LocaleError(f"timezone: unknown time zone {name!r}; expected an IANA name like Asia/Shanghai") from None


@dataclass(frozen=True)
class Locale:
    """A recipient's language and time zone (the install's defaults: English, UTC)."""

    language: str = "en"
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise LocaleError(f"language: must be one of {', '.join(LANGUAGES)}, got {self.language!r}")
        zone(self.timezone)

    def gettext(self, message: str) -> str:
        return translations(self.language).gettext(message)

    def time(self, moment: datetime) -> str:
        """A time as a person reads it, in this time zone with its offset: `2026-12-03 16:05:00 +08:00`.

        In UTC it ends in `UTC`, as messages always did: `2026-12-03 08:05:00 UTC`.
        """
        if self.timezone == "UTC":
            return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        local = moment.astimezone(zone(self.timezone))
        offset = local.strftime("%z")  # +0800
        return local.strftime("%Y-%m-%d %H:%M:%S ") + f"{offset[:3]}:{offset[3:]}"

    def choose(self, language: str | None, timezone: str | None) -> Locale:
        """This locale with whichever of the two a person (or their customer) set; an unset one (or
        one not understood, stored by hand) keeps ours."""
        return Locale(language if language in LANGUAGES else self.language,
                      timezone if timezone and known_zone(timezone) else self.timezone)


def known_zone(name: str) -> bool:
    try:
        zone(name)
    except LocaleError:
        return False
    return True


ENGLISH_UTC = Locale()
