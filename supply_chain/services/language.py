"""The languages Lotline speaks, and translation of what the services write for people (notifications, e-mails).

The web pages are translated by Flask-Babel (app/i18n.py); the services cannot use Flask, so the notices they
compose (a recall reaching a holder, its updates and end) and the e-mail around them are translated here, with
Babel and the same catalogue (``supply_chain/translations``), in the language of the organisation they go to.
docs/i18n.md describes both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from babel.support import NullTranslations, Translations

from supply_chain.store.models import Organisation

DEFAULT = "en"
LANGUAGES = ("en", "zh_Hans")
"""The languages the pages and e-mails are translated into (Babel locale names); English is the source."""
CONTENT_LANGUAGE = {"en": "en", "zh_Hans": "zh-Hans"}
"""The BCP 47 tag of each language (``<html lang>``, an e-mail's Content-Language)."""
CATALOGUES = Path(__file__).resolve().parent.parent / "translations"

Gettext = Callable[..., str]
"""``_(text, **values)``: ``text`` in one language, with ``%(name)s`` filled from ``values``."""


@lru_cache(maxsize=len(LANGUAGES))
def _translations(language: str) -> NullTranslations:
    if language == DEFAULT:
        return NullTranslations()
    return Translations.load(str(CATALOGUES), [language])


def gettext_for(language: str | None) -> Gettext:
    """A gettext for ``language`` (English for None or a language Lotline does not have)."""
    catalogue = _translations(language if language in LANGUAGES else DEFAULT)

    def _(message: str, /, **values: object) -> str:
        translated = catalogue.gettext(message)
        return translated % values if values else translated

    return _


def org_language(org: Organisation) -> str:
    """The language to write to an organisation in: the one most of its active users chose (the earliest
    user's choice breaks a tie), English when none chose one."""
    chosen = [u.language for u in sorted(org.users, key=lambda u: u.id) if u.is_active and u.language in LANGUAGES]
    if not chosen:
        return DEFAULT
    counts = Counter(chosen)
    best = max(counts.values())
    return next(lang for lang in chosen if counts[lang] == best)
