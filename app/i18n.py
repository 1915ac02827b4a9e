"""Languages: which one a request is answered in, the switcher, and locale-aware formatting for templates.

The catalogues live in ``supply_chain/translations`` (shared with the e-mails the services write; English is
the source language, ``zh_Hans`` is Simplified Chinese). ``scripts/i18n.py`` extracts, updates and compiles
them; docs/i18n.md describes the whole flow.

The language of a page is, in order: the signed-in user's own choice (``users.language``), then the choice
remembered in the ``lotline_lang`` cookie (the switcher sets it, also for shoppers who never sign in), then the
browser's ``Accept-Language``, then English. The QR code, the Digital Link and every JSON answer do not depend
on it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.dates import format_date, format_skeleton, format_timedelta
from babel.numbers import format_decimal
from babel.support import NullTranslations
from flask import Flask, Response, current_app, flash, g, has_request_context, redirect, request, url_for
from flask_babel import Babel, force_locale, get_locale, get_translations, gettext, lazy_gettext
from flask_babel import format_date as babel_format_date
from markupsafe import Markup, escape

from supply_chain.domain.lineage import format_quantity
from supply_chain.services import language, orgs
from supply_chain.services.epcis import adopt

babel = Babel()

DEFAULT = "en"
LANGUAGES: dict[str, str] = {"en": "English", "zh_Hans": "中文"}
"""The languages offered (Babel locale name -> its name in that language, as the switcher shows it)."""
assert tuple(LANGUAGES) == language.LANGUAGES
HTML_LANG = {"en": "en", "zh_Hans": "zh-Hans"}
"""The BCP 47 tag for ``<html lang>`` of each language."""
COOKIE = "lotline_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600

_TRADITIONAL = {"hant", "tw", "hk", "mo"}
"""Regions and the script subtag of Traditional Chinese, which Lotline has no catalogue for."""


def language_for_tag(tag: str) -> str | None:
    """The offered language a BCP 47 tag asks for (``zh``, ``zh-CN``, ``zh-Hans``, ``zh-SG`` -> ``zh_Hans``;
    ``en-GB`` -> ``en``), or None when Lotline has no catalogue for it (``es``, ``zh-TW``, ``zh-Hant``)."""
    parts = tag.strip().lower().replace("_", "-").split("-")
    if parts[0] == "en":
        return "en"
    if parts[0] == "zh" and not _TRADITIONAL & set(parts[1:]):
        return "zh_Hans"
    return None


def from_accept_language(values: list[str]) -> str:
    """The first offered language in the browser's preference order; English when none is offered."""
    for tag in values:
        found = language_for_tag(tag)
        if found:
            return found
    return DEFAULT


def select_locale() -> str:
    """Flask-Babel's locale selector (see the module docstring for the order)."""
    if not has_request_context():
        return DEFAULT
    from app.web import current_user

    user = current_user()
    if user is not None and user.language in LANGUAGES:
        return user.language
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return from_accept_language([value for value, _quality in request.accept_languages])


def page_language() -> str:
    """The offered language of the current page (``en`` or ``zh_Hans``)."""
    locale = get_locale()
    return str(locale) if locale is not None and str(locale) in LANGUAGES else DEFAULT


def switch_language() -> Response:
    """The switcher's target: remember the choice in a cookie (and, for a signed-in user who posted the form,
    as their own setting), then go back to the page it came from."""
    from app.web import current_user, get_ctx, safe_next
    from supply_chain.domain.errors import InvalidInput

    lang = request.values.get("lang", "")
    user = current_user()
    signed_in_post = user is not None and request.method == "POST"
    if lang == "" and signed_in_post:
        # "Follow my browser" on the account page: forget the user's own choice and the cookie.
        orgs.set_language(get_ctx(), user, None)
        response = redirect(safe_next(request.values.get("next")) or url_for("auth.index"))
        response.delete_cookie(COOKIE)
        with force_locale(from_accept_language([value for value, _quality in request.accept_languages])):
            flash(gettext("Pages now follow your browser's language."), "ok")
        return response
    if lang not in LANGUAGES:
        raise InvalidInput(
            str(lazy_gettext("Choose one of the languages offered: %(names)s.", names=", ".join(LANGUAGES.values()))),
            field="language",
        )
    if signed_in_post:
        assert user is not None
        orgs.set_language(get_ctx(), user, lang)
        if request.values.get("from") == "account":
            with force_locale(lang):
                flash(gettext("Your language is saved: %(name)s.", name=LANGUAGES[lang]), "ok")
    response = redirect(safe_next(request.values.get("next")) or url_for("auth.index"))
    response.set_cookie(
        COOKIE,
        lang,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
    )
    return response


# ------------------------------------------------------------------ formatting by locale


def _as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def date_text(value: Any, style: str = "medium") -> str:
    """A date (or ISO date string) in the page's language: ``Nov 4, 2026`` / ``2026年11月4日``; ``short_day``
    gives day and month only (``4 Nov`` / ``11月4日``). Unreadable values are shown as they are."""
    day = _as_date(value)
    if day is None:
        return "" if value is None else str(value)
    if not has_request_context():
        return _date_text(day, style)
    # A page of 50 steps shows the same few dates over and over: each is formatted once per request and language.
    memo = g.setdefault("date_texts", {})
    key = (str(get_locale()), day, style)
    text = memo.get(key)
    if text is None:
        text = memo[key] = _date_text(day, style)
    return text


def _date_text(day: date, style: str) -> str:
    if style == "short_day":
        return format_skeleton("MMMd", day, locale=get_locale() or DEFAULT)
    return babel_format_date(day, style)


def _as_moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def moment_text(value: datetime | str | None) -> str:
    """A moment (or ISO string) in UTC, to the minute, in the page's language: ``Nov 4, 2026 09:30 UTC`` /
    ``2026年11月4日 09:30 UTC``."""
    if value is None or value == "":
        return ""
    moment = _as_moment(value)
    if moment is None:
        return str(value)
    moment = moment.astimezone(UTC)
    locale = get_locale() or DEFAULT
    return f"{format_date(moment.date(), 'medium', locale=locale)} {moment:%H:%M} UTC"


def ago_text(value: Any, now: datetime | None = None) -> str:
    """How long ago a moment (or ISO string) was, in the page's language: ``5 minutes ago`` / ``5分钟前``;
    under a minute is ``just now``."""
    if value is None or value == "":
        return ""
    moment = _as_moment(value)
    if moment is None:
        return str(value)
    delta = (now or datetime.now(UTC)) - moment
    if delta.total_seconds() < 60:
        return str(lazy_gettext("just now"))
    return format_timedelta(-delta, add_direction=True, locale=get_locale() or DEFAULT)


def number_text(value: Any) -> str:
    """A number with the locale's grouping and decimal signs; non-numbers are shown as they are."""
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return format_decimal(Decimal(format_quantity(number)), locale=get_locale() or DEFAULT)


UNIT_NAMES = {
    "kg": lazy_gettext("kg"),
    "g": lazy_gettext("g"),
    "t": lazy_gettext("t"),
    "lb": lazy_gettext("lb"),
    "l": lazy_gettext("L"),
    "ml": lazy_gettext("mL"),
    "case": lazy_gettext("case"),
    "cases": lazy_gettext("cases"),
    "box": lazy_gettext("box"),
    "boxes": lazy_gettext("boxes"),
    "each": lazy_gettext("each"),
    "pack": lazy_gettext("pack"),
    "packs": lazy_gettext("packs"),
    "crate": lazy_gettext("crate"),
    "crates": lazy_gettext("crates"),
    "pallet": lazy_gettext("pallet"),
    "pallets": lazy_gettext("pallets"),
}
"""Units of measure Lotline knows a translation for; any other unit is shown as the organisation typed it."""


def unit_text(unit: str | None) -> str:
    if not unit:
        return ""
    known = UNIT_NAMES.get(unit.strip().lower())
    return str(known) if known is not None else unit


def quantity_text(value: Any, unit: str | None = None) -> str:
    """``1100.000000`` kg as ``1,100 kg`` / ``1,100 千克``: the number by locale, then the unit's name."""
    number = number_text(value)
    shown = unit_text(unit)
    return f"{number} {shown}" if number and shown else number


def quantities_text(by_unit: Any) -> str:
    """Quantities by unit (``{"kg": 60, "case": 2}``) as ``2 cases, 60 kg`` / ``2 箱, 60 千克``; none is ``0``."""
    return ", ".join(quantity_text(q or 0, u) for u, q in sorted((by_unit or {}).items())) or "0"


def chain_only_names(value: Any) -> Any:
    """Every value a page prints passes here (the Jinja environment's ``finalize``): the name of an
    organisation known only from the chain (stored as ``{address} (known from the chain)``,
    ``adopt.chain_only_name``) is put in the page's language wherever it appears, alone or inside a sentence."""
    if not isinstance(value, str) or "0x" not in value:
        return value
    if not adopt.CHAIN_ONLY_NAME.search(value):
        return value

    def label(match: re.Match[str]) -> str:
        return gettext("%(address)s (known from the chain)", address=match.group(1))

    if isinstance(value, Markup):  # already escaped; the label adds only text safe in HTML (address, words)
        return Markup(adopt.CHAIN_ONLY_NAME.sub(lambda m: str(escape(label(m))), str(value)))
    return adopt.CHAIN_ONLY_NAME.sub(label, value)


def page_translations() -> NullTranslations:
    """The catalogue of the request's language, looked up once per request and language.

    Flask-Babel finds it anew for every string (three context look-ups and the locale's name each time);
    a page with a few hundred strings spent about a tenth of its time there. The catalogue is kept beside
    Flask-Babel's own per-request state, with the locale object it was found for, so ``force_locale`` (a
    notice written in its reader's language) gets its own and the page's comes back after it."""
    state = _babel_state()
    kept = getattr(state, "lotline_translations", None)
    if kept is not None and kept[0] is getattr(state, "babel_locale", None):
        return kept[1]  # type: ignore[no-any-return]
    found = get_translations()  # outside an application context: the source language, nothing to keep
    state = _babel_state()  # Flask-Babel made it, with the locale, while finding the catalogue
    if state is not None:
        state.lotline_translations = (getattr(state, "babel_locale", None), found)
    return found  # type: ignore[no-any-return]


def _babel_state() -> Any:
    """Flask-Babel's per-request state (``g._flask_babel``), None before it made one or outside a context."""
    return getattr(g, "_flask_babel", None) if g else None


def page_gettext(text: str) -> str:
    """``gettext`` without keyword arguments, through `page_translations`."""
    return page_translations().ugettext(text)  # type: ignore[no-any-return]


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "UTC")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(language.CATALOGUES))
    babel.init_app(app, locale_selector=select_locale)
    app.add_url_rule("/language", "language", switch_language, methods=["GET", "POST"])
    app.jinja_env.filters["date"] = date_text
    app.jinja_env.filters["when"] = moment_text
    app.jinja_env.filters["ago"] = ago_text
    app.jinja_env.filters["number"] = number_text
    app.jinja_env.filters["qty"] = quantity_text
    app.jinja_env.filters["unit"] = unit_text
    app.jinja_env.filters["quantities"] = quantities_text
    app.jinja_env.finalize = chain_only_names
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=page_gettext,
        ngettext=lambda s, p, n: page_translations().ungettext(s, p, n),
        pgettext=lambda c, s: page_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: page_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )

    @app.context_processor
    def _language() -> dict[str, Any]:
        lang = page_language()
        return {
            "LANGUAGES": LANGUAGES,
            "HTML_LANG": HTML_LANG,
            "page_language": lang,
            "html_lang": HTML_LANG[lang],
        }
