"""Languages (issue 13): the locale each request is answered in, the switcher, locale formatting, and the
catalogues themselves (complete, compiled, and no visible template text left outside them)."""

from __future__ import annotations

import importlib.util
import io
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient
from sqlalchemy import select

from app.i18n import from_accept_language, language_for_tag
from supply_chain.domain.kinds import EventKind
from supply_chain.services import credit, demo, verification_state, views
from supply_chain.services.trace import SITE_KIND_LABELS
from supply_chain.store.models import Lot, User

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "app" / "templates"
TRANSLATIONS = ROOT / "supply_chain" / "translations"
LANGUAGES = ("zh_Hans",)
"""Every catalogue besides English (the source language)."""

NOT_YET_TRANSLATED: tuple[str, ...] = ()
"""Templates whose visible text is not in the catalogue yet. Every template is translated now; a new template
may be listed here while it waits for its translation, and the list may only shrink: a template listed here that
has no untranslated text left fails test_pending_list_only_names_templates_with_untranslated_text."""


def _url(world: Any, key: str) -> str:
    gtin, code = world.labels[key]
    return f"/01/{gtin}/10/{quote(code, safe='')}"


# ------------------------------------------------------------------ choosing the language


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("zh-CN", "zh_Hans"),
        ("zh", "zh_Hans"),
        ("zh-Hans", "zh_Hans"),
        ("zh-SG", "zh_Hans"),
        ("zh-Hans-CN,zh;q=0.9,en;q=0.8", "zh_Hans"),
        ("es", "en"),
        ("es-ES,es;q=0.9", "en"),
        ("en-GB", "en"),
        ("fr, zh-CN;q=0.5", "zh_Hans"),  # the first language we have, in the browser's order
        ("zh-TW", "en"),  # Traditional Chinese: no catalogue
        ("zh-Hant-HK", "en"),
        ("", "en"),
    ],
)
def test_accept_language_picks_simplified_chinese_for_mainland_and_singapore_tags_else_english(
    app: Any, header: str, language: str
) -> None:
    with app.test_request_context("/", headers={"Accept-Language": header} if header else {}):
        from flask import request

        assert from_accept_language([value for value, _q in request.accept_languages]) == language


def test_tags_we_have_no_catalogue_for_are_not_matched() -> None:
    assert language_for_tag("es") is None
    assert language_for_tag("zh-Hant") is None
    assert language_for_tag("zh_CN") == "zh_Hans"


def test_zh_cn_shopper_gets_the_consumer_page_in_chinese(client: FlaskClient, world: Any) -> None:
    page = client.get(_url(world, "M1"), headers={"Accept-Language": "zh-CN,zh;q=0.9"}).get_data(as_text=True)
    assert '<html lang="zh-Hans">' in page
    assert "请勿食用：已召回" in page  # M1 is made from a recalled farm lot
    assert "流转过程" in page and "如何证明" in page
    assert "2026年11月1日" in page  # the harvest date, formatted for Chinese
    assert "Do not eat: recalled" not in page and "Journey" not in page and "How we know" not in page


def test_spanish_shopper_gets_english(client: FlaskClient, world: Any) -> None:
    page = client.get(_url(world, "M1"), headers={"Accept-Language": "es-ES,es;q=0.9"}).get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Do not eat: recalled" in page and "Journey" in page
    assert "Nov 1, 2026" in page
    assert "请勿食用" not in page


def test_chinese_consumer_page_translates_steps_statuses_and_the_compliance_line(
    client: FlaskClient, world: Any
) -> None:
    page = client.get(_url(world, "F1"), headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert ">采收<" in page  # the harvesting step's label (a service text, translated where it is shown)
    assert "的合规记录：" in page and "个批次；检验：合格" in page
    assert "Harvested" not in page and "inspections:" not in page


def test_product_and_problem_pages_follow_the_language(client: FlaskClient, world: Any) -> None:
    gtin, _code = world.labels["F1"]
    zh = {"Accept-Language": "zh-CN"}
    product = client.get(f"/01/{gtin}", headers=zh).get_data(as_text=True)
    assert "输入日期旁边印的批号" in product and '<html lang="zh-Hans">' in product
    unknown = client.get(f"/01/{demo.gtin('0799999', '00001')}/10/X", headers=zh)
    assert unknown.status_code == 404 and "没有这个批次的记录" in unknown.get_data(as_text=True)
    lookup = client.get("/lookup?gtin=123&lot=A", headers=zh).get_data(as_text=True)
    assert "请更正商品条码（GTIN）：" in lookup
    wrong_digit = client.get("/lookup?gtin=00700001000012&lot=A", headers=zh).get_data(as_text=True)
    assert "GTIN 00700001000012：校验码应为" in wrong_digit and "check digit" not in wrong_digit  # a domain message
    english = client.get("/lookup?gtin=00700001000012&lot=A", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "GTIN 00700001000012: check digit should be" in english


def test_glossary_is_in_chinese_and_keeps_the_anchors_other_pages_link_to(client: FlaskClient) -> None:
    page = client.get("/glossary", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert '<html lang="zh-Hans">' in page and "<h1>术语表</h1>" in page
    for anchor, term in (("cte", "CTE（关键追踪事件）"), ("kde", "KDE（关键数据要素）"), ("gln", "GLN（全球位置码）"),
                         ("block", "区块"), ("transaction", "交易"), ("head-hash", "头哈希")):  # fmt: skip
        assert f'<dt id="{anchor}">{term}</dt>' in page
    assert "Glossary" not in page and "critical tracking event" not in page and "A hold is not a recall" not in page


def test_error_pages_follow_the_language(client: FlaskClient) -> None:
    response = client.get("/no-such-page", headers={"Accept-Language": "zh-CN"})
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and '<html lang="zh-Hans">' in page
    assert "未找到" in page and "返回首页" in page and "Not found" not in page


def test_switcher_on_every_page_remembers_the_choice_in_a_cookie(client: FlaskClient, world: Any) -> None:
    page = client.get("/lookup", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'class="lang-switch" method="get"' in page and 'value="zh_Hans"' in page  # no session needed
    answer = client.get("/language?lang=zh_Hans&next=/lookup", headers={"Accept-Language": "en"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/lookup"
    assert "lotline_lang=zh_Hans" in answer.headers["Set-Cookie"]
    again = client.get(_url(world, "F1"), headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="zh-Hans">' in again  # the explicit choice beats Accept-Language
    back = client.get("/language?lang=en&next=/lookup", headers={"Accept-Language": "zh-CN"})
    assert "lotline_lang=en" in back.headers["Set-Cookie"]
    assert '<html lang="en">' in client.get("/lookup", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", ""])
def test_switcher_only_goes_back_to_a_local_page(client: FlaskClient, target: str) -> None:
    answer = client.get(f"/language?lang=en&next={quote(target, safe='')}")
    assert answer.status_code == 302 and answer.headers["Location"] == "/"


def test_switcher_refuses_a_language_we_do_not_have(client: FlaskClient) -> None:
    answer = client.get("/language?lang=es&next=/lookup")
    assert answer.status_code == 400
    assert "Set-Cookie" not in answer.headers or "lotline_lang" not in answer.headers["Set-Cookie"]


def test_signed_in_users_choice_is_their_own_setting_and_beats_cookie_and_browser(
    make_app: Any, world: Any, login: Any, csrf: Any
) -> None:
    user_client = make_app().test_client()
    login(user_client, "retailer")
    page = user_client.get("/dashboard", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'class="lang-switch" method="post"' in page
    answer = user_client.post(
        "/language", data={"lang": "zh_Hans", "next": "/dashboard", "csrf_token": csrf(user_client)}
    )
    assert answer.status_code == 302
    try:
        with world.runtime.ctx() as ctx:
            user = ctx.session.scalars(select(User).where(User.email == world.emails["retailer"])).one()
            assert user.language == "zh_Hans"
        # A fresh browser (no cookie) with an English Accept-Language still gets the user's choice once signed in.
        other = make_app().test_client()
        login(other, "retailer")
        page = other.get("/dashboard", headers={"Accept-Language": "en"}).get_data(as_text=True)
        assert '<html lang="zh-Hans">' in page and "我的批次" in page
    finally:
        with world.runtime.ctx() as ctx:
            user = ctx.session.scalars(select(User).where(User.email == world.emails["retailer"])).one()
            user.language = None
            ctx.session.commit()


def test_switcher_post_without_the_form_token_is_refused(make_app: Any, login: Any) -> None:
    user_client = make_app().test_client()
    login(user_client, "retailer")
    assert user_client.post("/language", data={"lang": "zh_Hans", "next": "/dashboard"}).status_code == 400


def test_json_answers_qr_and_digital_link_do_not_depend_on_the_language(client: FlaskClient, world: Any) -> None:
    url = _url(world, "F1")
    en = client.get(url, headers={"Accept": "application/json", "Accept-Language": "en"}).get_json()
    zh = client.get(url, headers={"Accept": "application/json", "Accept-Language": "zh-CN"}).get_json()
    for data in (en, zh):
        data.pop("verified_ago", None)
    assert en == zh
    qr_en = client.get(url + "/qr.svg", headers={"Accept-Language": "en"}).get_data()
    qr_zh = client.get(url + "/qr.svg", headers={"Accept-Language": "zh-CN"}).get_data()
    assert qr_en == qr_zh
    page = client.get(url, headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert f'<link rel="canonical" href="{en["lot"]["digital_link"]}">' in page


# ------------------------------------------------------------------ notices and e-mails


def test_recall_notice_is_composed_in_the_holders_language() -> None:
    from types import SimpleNamespace

    from supply_chain.services import language, recalls

    lot = SimpleNamespace(product=SimpleNamespace(name="Romaine"), lot_code="GV-1", gtin="00614141000012")
    recall = SimpleNamespace(
        lot=lot,
        recall_class="I",
        issuer=SimpleNamespace(name="Food Safety Authority"),
        reason="Listeria",
        instructions="Remove from sale.",
        contact=None,
    )
    subject, text = recalls.issue_notice(language.gettext_for("zh_Hans"), recall)  # type: ignore[arg-type]
    assert subject == "I 级召回：Romaine 批次 GV-1"
    assert "Food Safety Authority 召回 Romaine 批次 GV-1" in text and "原因：Listeria" in text
    assert "您应当：Remove from sale." in text and "请确认收到" in text
    subject, text = recalls.issue_notice(language.gettext_for("en"), recall)  # type: ignore[arg-type]
    assert subject == "Class I recall: Romaine lot GV-1"
    assert text.startswith("Food Safety Authority recalls Romaine lot GV-1 (GTIN 00614141000012) and every lot made")
    assert "\nWhat to do: Remove from sale.\nPlease acknowledge" in text


def test_an_organisation_is_written_to_in_the_language_most_of_its_users_chose() -> None:
    from types import SimpleNamespace

    from supply_chain.services.language import org_language

    def org(*choices: str | None, active: bool = True) -> Any:
        users = [SimpleNamespace(id=i, language=c, is_active=active) for i, c in enumerate(choices)]
        return SimpleNamespace(users=users)

    assert org_language(org()) == "en"
    assert org_language(org(None, None)) == "en"
    assert org_language(org("zh_Hans", None)) == "zh_Hans"
    assert org_language(org("en", "zh_Hans", "zh_Hans")) == "zh_Hans"
    assert org_language(org("en", "zh_Hans")) == "en"  # a tie: the earliest user's choice
    assert org_language(org("zh_Hans", active=False)) == "en"  # suspended users do not count


# ------------------------------------------------------------------ formatting by locale


def test_dates_numbers_and_quantities_are_formatted_for_the_language(app: Any) -> None:
    from app.i18n import date_text, moment_text, number_text, quantity_text

    for header, day, number, qty, moment in (
        ("en", "Nov 4, 2026", "1,234.5", "1,100 kg", "Nov 4, 2026 09:30 UTC"),
        ("zh-CN", "2026年11月4日", "1,234.5", "1,100 千克", "2026年11月4日 09:30 UTC"),
    ):
        with app.test_request_context("/", headers={"Accept-Language": header}):
            assert date_text("2026-11-04") == day
            assert number_text("1234.500000") == number
            assert quantity_text("1100.000000", "kg") == qty
            assert quantity_text("3", "bins") == "3 bins"  # a unit we know no word for stays as typed
            assert moment_text("2026-11-04T09:30:00+00:00") == moment


# ------------------------------------------------------------------ the catalogues


def _catalogue(lang: str) -> Any:
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def _i18n_script() -> Any:
    spec = importlib.util.spec_from_file_location("lotline_i18n_script", ROOT / "scripts" / "i18n.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("lang", LANGUAGES)
def test_committed_compiled_catalogue_matches_its_po(lang: str) -> None:
    """Flask-Babel reads the .mo: it must be the .po compiled (run `scripts/i18n.py compile`)."""
    compiled = io.BytesIO()
    write_mo(compiled, _catalogue(lang))
    committed = (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.mo").read_bytes()
    assert committed == compiled.getvalue(), "messages.mo is stale: run `python scripts/i18n.py compile`"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_text_has_a_translation(lang: str) -> None:
    missing = []
    for message in _catalogue(lang):
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.id and (message.fuzzy or not all(strings)):
            missing.append(message.id)
    assert not missing, f"untranslated or fuzzy in {lang}: {missing[:20]}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translations_keep_every_placeholder(lang: str) -> None:
    placeholder = re.compile(r"%\((\w+)\)s")
    for message in _catalogue(lang):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(placeholder.findall(ids[-1]))
        for text in strings:
            assert set(placeholder.findall(text)) == wanted, (message.id, text)


def test_catalogue_holds_every_text_in_the_code_and_templates(tmp_path: Path) -> None:
    """Extract afresh: a text added to a template or the code and not yet in the catalogue fails here
    (run `python scripts/i18n.py all`, then translate the new entries)."""
    fresh = tmp_path / "fresh.pot"
    _i18n_script().extract(fresh)
    with fresh.open("rb") as fh:
        extracted = {m.id for m in read_po(fh) if m.id}
    for lang in LANGUAGES:
        known = {m.id for m in _catalogue(lang) if m.id}
        missing = extracted - known
        assert not missing, f"not in the {lang} catalogue: {sorted(map(str, missing))[:20]}"


def test_every_label_the_services_write_has_a_translation() -> None:
    known = {m.id for m in _catalogue("zh_Hans") if m.id and m.string}
    service_texts = (
        set(views.KIND_LABELS.values())
        | set(verification_state.STATE_LABELS.values())
        | set(SITE_KIND_LABELS.values())
        | {"Packed", "Harvested", "Recorded"}  # views.label_date
    )
    assert service_texts <= known, sorted(service_texts - known)
    assert credit  # the compliance line is matched by a pattern: see the Chinese consumer-page test


# ------------------------------------------------------------------ no visible text outside the catalogue

_TRANS_BLOCK = re.compile(r"{%-?\s*trans\b.*?{%-?\s*endtrans\s*-?%}", re.S)
_COMMENT = re.compile(r"{#.*?#}", re.S)
_JINJA = re.compile(r"{{.*?}}|{%.*?%}", re.S)
_LITERAL = re.compile(r"""(?<![\w.])(_|gettext|ngettext|N_)?\(?\s*(["'])((?:(?!\2).)*)\2""")
_MEDIA_TYPE = re.compile(r"\b(?:application|text)/[a-z0-9.+-]+")
"""A media type (``text/csv``) is a technical name, the same in every language."""
_NGETTEXT = re.compile(r"""ngettext\(\s*(["'])(?:(?!\1).)*\1\s*,\s*(["'])(?:(?!\2).)*\2""")
_VISIBLE_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "label"}
ALWAYS_THE_SAME = {"Lotline", "·", "→", "←", "—", "…", "°C", "*", "⚠", "✔", "✖", "has-error"}
"""Text that is the same in every language: the product's name, symbols, and the CSS class ``is_bad`` writes."""
_ATTRIBUTE_TEXT = re.compile(r'[\w-]+="[^"]*"')
"""``aria-invalid="true"``: attributes a macro writes from inside a Jinja block, not text anyone reads."""
_CLASS_BLOCK = re.compile(r"{%-?\s*block\s+\w*class\s*-?%}.*?{%-?\s*endblock\s*-?%}", re.S)


def _has_words(text: str) -> bool:
    return any(unicodedata.category(ch).startswith("L") for ch in text)


class _TextNodes(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            visible = name in _VISIBLE_ATTRIBUTES or (name == "value" and ("type", "submit") in attrs)
            if value and visible and _has_words(value):
                self.found.append(f'{name}="{value.strip()}"')

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data: str) -> None:
        text = data.strip()
        for token in ALWAYS_THE_SAME:
            text = text.replace(token, "")
        text = _MEDIA_TYPE.sub("", text)
        text = _ATTRIBUTE_TEXT.sub("", text)
        if not self._skip and _has_words(text):
            self.found.append(data.strip())


def untranslated_text(source: str) -> list[str]:
    """The visible text of a template that is not wrapped in gettext or {% trans %}: HTML text nodes and
    visible attributes once every Jinja expression, tag and comment is taken out, and sentence-like string
    literals inside expressions and tags (a macro's label argument, a dict of headings) not passed to ``_``."""
    found: list[str] = []
    source = _COMMENT.sub(" ", source)
    source = _TRANS_BLOCK.sub(" ", source)
    source = _CLASS_BLOCK.sub(" ", source)  # {% block body_class %}consumer{% endblock %}: a CSS class
    for expression in _JINJA.findall(source):
        expression = _NGETTEXT.sub("ngettext(", expression)  # both of ngettext's texts are in the catalogue
        for marker, _quote, literal in _LITERAL.findall(expression):
            if not marker and re.match(r"[A-Z][a-z]|.*[A-Za-z]+ [A-Za-z]+", literal) and "%" not in literal:
                found.append(f"literal {literal!r}")
    parser = _TextNodes()
    parser.feed(_JINJA.sub(" ", source))
    parser.close()
    return found + parser.found


def _templates() -> list[str]:
    return sorted(str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html"))


def test_the_checker_finds_visible_text_outside_gettext() -> None:
    assert untranslated_text("<p>Hello {{ name }}</p>") == ["Hello"]
    assert untranslated_text('<input placeholder="Lot code">') == ['placeholder="Lot code"']
    assert untranslated_text('{{ field("unit", "Unit of measure") }}') == ["literal 'Unit of measure'"]
    assert untranslated_text("<p>{{ _('Hello') }} · {{ n }} °C</p>") == []
    assert untranslated_text("<p>{{ ngettext('One lot', 'Many lots', n) }}</p>") == []
    assert untranslated_text("<p>{% trans n=1 %}Hello <b>{{ n }}</b>{% endtrans %}</p>") == []
    assert untranslated_text('<a href="{{ url_for(\'auth.login\') }}" class="btn">{{ _("Sign in") }}</a>') == []
    assert untranslated_text('{% macro m() %}{% if x %} aria-invalid="true"{% endif %}{% endmacro %}') == []
    assert untranslated_text('{% macro m() %}<p>Quantity used</p>{% endmacro %}') == ["Quantity used"]


@pytest.mark.parametrize("template", [t for t in _templates() if t not in NOT_YET_TRANSLATED])
def test_template_has_no_visible_text_outside_the_catalogue(template: str) -> None:
    found = untranslated_text((TEMPLATES / template).read_text(encoding="utf-8"))
    assert not found, f"{template}: wrap these in _() or {{% trans %}}: {found[:10]}"


def test_pending_list_only_names_templates_with_untranslated_text() -> None:
    """The pending list must shrink: a template translated since is taken off it. (One test over the whole list,
    so an empty list is not a skipped test.)"""
    for template in NOT_YET_TRANSLATED:
        assert (TEMPLATES / template).exists(), f"{template} no longer exists: take it off NOT_YET_TRANSLATED"
        assert untranslated_text((TEMPLATES / template).read_text(encoding="utf-8")), (
            f"{template} is translated now: take it off NOT_YET_TRANSLATED"
        )


@pytest.mark.parametrize(
    ("role", "path", "chinese", "english"),
    [
        ("producer", "/imports", "检查文件", "Check the file"),
        ("producer", "/dashboard", "从电子表格导入记录", "Import records from a spreadsheet"),
        ("producer", "/products", "登记产品", "Register a product"),
        ("producer", "/account/password", "修改密码", "Change password"),
        ("distributor", "/custody", "待您接收", "Offered to you"),
    ],
)
def test_form_pages_come_in_chinese(
    make_app: Any, login: Any, role: str, path: str, chinese: str, english: str
) -> None:
    user_client = make_app().test_client()
    login(user_client, role)
    page = user_client.get(path, headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert '<html lang="zh-Hans">' in page and chinese in page and english not in page


# ------------------------------------------------------------------ the pages themselves, rendered in Chinese

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]")
_IDENTIFIER = re.compile(
    r"https?://\S+|[\w.+-]+@[\w.-]+|0x[0-9a-fA-F]+…?[0-9a-fA-F]*|\b(?:GTIN|GLN|GS1|SSCC|API|CSV|XLSX|JSON|EPCIS|"
    r"KDE|CTE|FDA|FSMA|QR|ID|UTC|HTTP|SMTP|SHA-256|URL|ISO|PDF|PNG|JPEG|CBV|NUL|TLC|AI|Lotline|Atom|Digital Link|"
    r"Excel|Webhook|POST|MiB|KiB|UTF-8|GB18030|Parris Island|II|III)\b|\b[A-Z]\b|\b\dxx\b|GLOBALG\.A\.P\.|kg、lb、case"
)
"""Identifiers and abbreviations that stay the same in every language."""
def _ui_words() -> frozenset[str]:
    with (TRANSLATIONS / "messages.pot").open("rb") as fh:
        ids = [m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id]
    words = {w.lower() for w in _WORD.findall(" ".join(ids))}
    words |= {"active", "held", "recalled", "closed", "pending", "confirmed", "failed", "public", "private"}
    return frozenset(words - {"lotline", "gtin", "gln", "kg"})


UI_WORDS = _ui_words()
"""Words Lotline's own texts use: one of them on a Chinese page is a text that missed the catalogue."""


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "code", "noscript"):
            self._skip += 1
        for name, value in attrs:
            visible = name in _VISIBLE_ATTRIBUTES | {"data-label"} or (name == "value" and ("type", "submit") in attrs)
            if value and visible:
                self.found.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "code", "noscript"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.found.append(data.strip())


def english_left(page: str, data: set[str]) -> list[str]:
    """The visible texts of a rendered page that still hold one of Lotline's English words, once the data
    (names, addresses, what people typed), identifiers and codes are taken out."""
    parser = _VisibleText()
    parser.feed(page)
    parser.close()
    found = []
    for text in parser.found:
        rest = text
        for value in sorted(data, key=len, reverse=True):
            rest = rest.replace(value, " ")
        rest = _IDENTIFIER.sub(" ", rest)
        if any(w.lower() in UI_WORDS and len(w) > 1 for w in _WORD.findall(rest)):
            found.append(text)
    return found


def _data_values(world: Any) -> set[str]:
    """Everything the fixture network typed in: it stays as typed in every language."""
    from supply_chain.store.models import Document, Event, Location, Organisation, Product, Recall, RecallStep

    values = set(CONSORTIUM_WORDS)
    with world.runtime.ctx() as ctx:
        for org in ctx.session.scalars(select(Organisation)):
            values.add(org.name)
        for product in ctx.session.scalars(select(Product)):
            values |= {product.name}
        for site in ctx.session.scalars(select(Location)):
            values |= {site.name, site.address or ""}
        for user in ctx.session.scalars(select(User)):
            values |= {user.display_name, user.email}
        # what other tests on the shared network typed: recall reasons and instructions, refusal reasons
        for recall in ctx.session.scalars(select(Recall)):
            values |= {recall.reason, recall.instructions or "", recall.contact or "", recall.termination_reason or ""}
        values |= {text or "" for text in ctx.session.scalars(select(RecallStep.text))}  # a regulator's updates
        for event in ctx.session.scalars(select(Event).where(Event.kind.in_(TYPED_REASON_KINDS))):
            values.add(str((event.payload or {}).get("reason") or ""))
        values |= set(ctx.session.scalars(select(Lot.lot_code)))  # lot codes other tests chose ("REFUSED-6")
        values |= set(ctx.session.scalars(select(Document.filename)))  # names of the files people uploaded
    return {v for v in values if v}


TYPED_REASON_KINDS = (EventKind.CUSTODY_REJECTED, EventKind.CUSTODY_CANCELLED)
"""Event kinds whose ``reason`` a person typed (services/lots.py: refusing or withdrawing a delivery)."""


CONSORTIUM_WORDS = (
    "Listeria monocytogenes", "Do not eat; return it to the store.", "suspected contamination", "lettuce",
    "North Block 7", "BOL-SECRET-1", "Trucker Joe", "findings-consortium-only", "farm-private-note",
    "Ivy Privateinspector", "ISO 6579-1", "bill of lading", "certificate.pdf", "LOGGER-SECRET",
    "recalls@test.example", "Zeta Foods",
)  # fmt: skip
"""What the fixture network's users typed (reasons, documents, notes): shown as typed."""


def _pages(world: Any) -> list[tuple[str, str]]:
    from supply_chain.store.models import Recall

    lot = world.lot
    with world.runtime.ctx() as ctx:
        recall_id = ctx.session.scalars(select(Recall.id)).first()
    return [
        ("producer", "/dashboard"),
        ("producer", f"/lots/{lot('F2')}"),
        ("producer", f"/lots/{lot('F2')}/close"),
        ("producer", f"/lots/{lot('F2')}/ship"),
        ("producer", f"/lots/{lot('F2')}/events/new?kind=cooling"),
        ("producer", f"/lots/{lot('T1')}/cancel-offer"),
        ("producer", "/lots/new"),
        ("producer", "/products"),
        ("producer", "/sites"),
        ("producer", "/imports"),
        ("producer", "/account/password"),
        ("producer", "/notifications"),
        ("producer", "/settings/notifications"),
        ("processor", "/transform"),
        ("distributor", "/custody"),
        ("retailer", "/custody"),
        ("retailer", f"/custody/{lot('T1')}/accept"),
        ("inspector", "/inspections"),
        ("inspector", f"/inspections/lots/{lot('F2')}/new"),
        ("inspector", f"/inspections/lots/{lot('F2')}/hold"),
        ("inspector", f"/inspections/lots/{lot('H1')}/release"),
        ("regulator", "/admin"),
        ("regulator", "/admin/map"),
        ("regulator", f"/admin/organisations/{world.org_ids['producer']}"),
        ("regulator", "/admin/organisations/new"),
        ("regulator", f"/admin/lots/{lot('F2')}/recall"),
        ("regulator", f"/admin/lots/{lot('M1')}/trace"),
        ("regulator", f"/admin/recalls/{recall_id}"),
        ("regulator", f"/admin/recalls/{recall_id}/effectiveness"),
        ("regulator", "/organisations"),
        ("regulator", f"/organisations/{world.org_ids['processor']}/credit"),
        ("regulator", f"/lots/{lot('F1')}"),
    ]


def test_the_page_checker_finds_english_left_on_a_chinese_page() -> None:
    data = {"Test Farm"}
    assert english_left("<p>批次 <code>F2</code> · Test Farm · GTIN 00700001000012</p>", data) == []
    assert english_left('<p>Close lot F2</p><input type="submit" value="Save draft">', data) == [
        "Close lot F2",
        "Save draft",
    ]
    assert english_left('<td data-label="Held by">Test Farm</td>', data) == ["Held by"]
    assert english_left("<p>recalls@test.example · https://trace.lotline.example/01/1 · 0x12ab…9f8e</p>", data) == []


ROLES_WITH_PAGES = ("producer", "processor", "distributor", "retailer", "inspector", "regulator")


@pytest.mark.parametrize("role", ROLES_WITH_PAGES)
def test_every_page_type_has_no_english_left_in_chinese(make_app: Any, login: Any, world: Any, role: str) -> None:
    """Each role's pages (dashboard, lot, step pages, recall draft and desk, transform, organisation admin, credit,
    notifications, map, imports, account, ...) on the fixture network, in Chinese: no text of Lotline's own is
    left in English. Names, what people typed, identifiers and codes stay as they are."""
    data = _data_values(world)
    pages = [path for who, path in _pages(world) if who == role]
    assert pages
    user_client = make_app().test_client()
    user_client.set_cookie("lotline_lang", "zh_Hans")
    login(user_client, role)
    left = {}
    for path in pages:
        response = user_client.get(path, headers={"Accept-Language": "zh-CN"})
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and '<html lang="zh-Hans">' in page, path
        found = english_left(page, data)
        if found:
            left[path] = found[:8]
    assert not left, f"English left on Chinese pages: {left}"


def test_recall_draft_review_page_is_in_chinese(make_app: Any, login: Any, csrf: Any, world: Any) -> None:
    """The recall desk's draft and review pages (a draft is made on the fly; drafts write nothing to the ledger)."""
    desk = make_app().test_client()
    desk.set_cookie("lotline_lang", "zh_Hans")
    login(desk, "regulator")
    notice = {
        "recall_class": "II",
        "depth": "retail",
        "reason": "suspected contamination",
        "instructions": "Do not eat; return it to the store.",
        "public_notice": "no",
        "csrf_token": csrf(desk),
    }
    made = desk.post(f"/admin/lots/{world.lot('F2')}/recall", data=notice)
    assert made.status_code == 302, made.get_data(as_text=True)[:300]
    draft_url = made.headers["Location"]
    draft = desk.get(draft_url).get_data(as_text=True)
    assert "草稿：召回" in draft and "发布前审核" in draft
    assert english_left(draft, _data_values(world)) == []
    review = desk.post(draft_url.rstrip("/") + "/review", data={"csrf_token": csrf(desk)})
    assert review.status_code == 302
    page = desk.get(draft_url).get_data(as_text=True)
    assert "审核：召回" in page and "有效性核查级别" in page and "每十个收货方核查一个" not in page
    assert "零售" in page and "核查比例高于 C 级" in page  # class II at retail depth: level B, its meaning translated
    assert english_left(page, _data_values(world)) == []
    discard = desk.post(draft_url.rstrip("/") + "/discard", data={"csrf_token": csrf(desk)})
    assert discard.status_code == 302


def test_shipping_more_than_the_lot_holds_is_refused_in_chinese_naming_the_field(
    make_app: Any, login: Any, csrf: Any, world: Any, counts: Any
) -> None:
    farm = make_app().test_client()
    farm.set_cookie("lotline_lang", "zh_Hans")
    login(farm, "producer")
    before = counts()
    form = {
        "to": str(world.org_ids["processor"]),
        "kde.from_gln": world.sites["producer"],
        "kde.to_gln": world.sites["processor"],
        "kde.ship_date": "2026-11-11",
        "kde.quantity": "5000",
        "kde.unit": "kg",
        "kde.reference_document_type": "bill of lading",
        "kde.reference_document_number": "B-50",
        "csrf_token": csrf(farm),
    }
    response = farm.post(f"/lots/{world.lot('F2')}/ship", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "数量：申请 5,000 千克，但批次 F2 现有仅 100 千克" in page  # the field in the user's words, then the rule
    assert "此表单有 1 处问题" in page
    assert "requested" not in page and "on hand" not in page and "There is a problem" not in page
    assert counts() == before
    as_json = farm.post(
        f"/lots/{world.lot('F2')}/ship", data=form, headers={"Accept": "application/json", "Accept-Language": "zh-CN"}
    )
    assert as_json.json["error"] == "quantity_exceeds_on_hand" and "on hand" in as_json.json["message"]  # JSON: English


def test_recalling_without_a_reason_is_refused_in_chinese_naming_the_field(
    make_app: Any, login: Any, csrf: Any, world: Any
) -> None:
    desk = make_app().test_client()
    desk.set_cookie("lotline_lang", "zh_Hans")
    login(desk, "regulator")
    notice = {"recall_class": "I", "depth": "consumer", "reason": "", "instructions": "", "csrf_token": csrf(desk)}
    response = desk.post(f"/admin/lots/{world.lot('F2')}/recall", data=notice)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "原因：为必填项" in page and "对持有方的指示：为必填项" in page and "此表单有 2 处问题" in page
    assert english_left(page, _data_values(world)) == []  # no "Reason: required"


@pytest.mark.parametrize(
    ("english", "chinese"),
    [
        ("cannot ship lot H1: it is held", "无法发运批次 H1：该批次已被扣留"),
        (
            "Test Farm cannot ship lot F1: it is held by another organisation",
            "Test Farm 无法发运批次 F1：该批次由其他组织持有",
        ),
        (
            "Test Shop cannot recall lots: it needs one of the roles regulator, inspector, producer",
            "Test Shop 无法召回批次：需要以下角色之一：监管部门, 检验机构, 生产者",
        ),
        ("payload.quantity: must be greater than 0", "数量：必须大于 0"),
        ("payload.harvest_date: is required", "采收日期：为必填项"),
        ("B because 2 or more holds placed on its lots.", "B，因为其批次被扣留 2 次或更多。"),
        ("is required for a new lot", "为必填项（新批次需要）"),  # a bulk import's row errors
        ("lot L9 is measured in kg, not 'lb'", "批次 L9 的计量单位是千克，而不是 'lb'"),
        (
            "Test Shop cannot create lots: needs one of the roles producer",
            "Test Shop 无法创建批次：需要以下角色之一：生产者",
        ),
        # the rarer key-data-element checks (domain/events.py), naming the other field in Chinese too
        ("payload.to_gln: must differ from from_gln", "收货方：必须与“发货地”不同"),
        (
            "payload.max_temperature_c: must not be below min_temperature_c (4)",
            "最高温度（°C）：不得低于“最低温度（°C）”（4）",
        ),
        (
            "payload.inputs[1]: lot 00614141000012/L1 is already listed as payload.inputs[0]",
            "原料批次 2：批次 00614141000012/L1 已在“原料批次 1”中列出",
        ),
        (
            "payload.outcome: must be pass, fail or conditional, got 'maybe'",
            "结果：必须是合格、不合格或有条件合格，实际为 'maybe'",
        ),
        ("payload.inputs: must be a non-empty list of input lots", "原料批次：必须至少列出一个原料批次"),
        ("something no pattern knows", "something no pattern knows"),
    ],
)
def test_domain_refusals_are_translated_by_their_shape_with_english_as_fallback(
    app: Any, english: str, chinese: str
) -> None:
    from app.messages import translate_message

    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert translate_message(english) == chinese
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert translate_message(english) == english


def test_kept_notifications_are_shown_in_the_readers_language_line_by_line(app: Any) -> None:
    """The inbox keeps a notice as it was written (in the receiving organisation's language at the time); a reader
    who chose Chinese sees each line in Chinese, with names, lot codes and what people typed as written."""
    from app.messages import message_lines, translate_message

    refusal = (
        "Test Carrier refused to receive lot UI-2 (Test lettuce) on 2026-12-01. Reason: warm on arrival\n"
        "The lot is yours again: ship it elsewhere, or close it."
    )
    recall = (
        "Test Regulator recalls Test lettuce lot UI-1 (GTIN 00700001000015) and every lot made from it. "
        "Reason: Salmonella\nWhat to do: Return to the store.\n"
        "Please acknowledge and report what you did with the product."
    )
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert translate_message("Test Carrier refused the delivery of Test lettuce lot UI-2") == (
            "Test Carrier 拒收了 Test lettuce 批次 UI-2"
        )
        assert translate_message("Class II recall: Test lettuce lot UI-1") == "II 级召回：Test lettuce 批次 UI-1"
        assert message_lines(refusal).split("\n") == [
            "Test Carrier 于 2026年12月1日 拒收批次 UI-2（Test lettuce）。原因：warm on arrival",
            "该批次已退回给您：请改发他处，或结束该批次。",
        ]
        lines = message_lines(recall).split("\n")
        assert lines[0].startswith("Test Regulator 召回 Test lettuce 批次 UI-1")
        assert lines[0].endswith("原因：Salmonella")
        assert lines[1] == "您应当：Return to the store."
        assert "Please" not in lines[2]
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert message_lines(refusal) == refusal and message_lines(recall) == recall


def test_every_text_the_forms_and_pages_take_from_python_has_a_translation() -> None:
    """KDE labels, hints and choices (app/forms.py from domain/events.KIND_SPECS), the supervision map's layers,
    the credit record's terms, the steps' headings and the rulebook's verbs: each one has a Chinese translation."""
    from app.forms import CHOICES, KNOWN_KEYS, label_of
    from supply_chain.domain import credit as credit_rule
    from supply_chain.domain import policy
    from supply_chain.domain.events import INPUT_ITEM_FIELDS, KIND_SPECS
    from supply_chain.services.supervision import LAYERS

    known = {m.id for m in _catalogue("zh_Hans") if m.id and m.string}
    texts = {label_of(f.name) for spec in KIND_SPECS.values() for f in spec.fields}
    texts |= {f.description[:1].upper() + f.description[1:] for spec in KIND_SPECS.values() for f in spec.fields}
    texts |= {label_of(f.name) for f in INPUT_ITEM_FIELDS} | {label_of(k) for k in KNOWN_KEYS}
    texts |= {text for options in CHOICES.values() for _value, text in options}
    texts |= {layer.title for layer in LAYERS} | {layer.description for layer in LAYERS if layer.description}
    texts |= set(credit.TERM_LABELS.values()) | {credit.NOT_TRACKED, credit_rule.NOT_COUNTED, credit_rule.NOT_GRADED}
    texts |= {rule.verb for rule in policy.RULES.values()} | {d.value for d in policy.RecallDepth}
    texts |= {level.meaning for level in policy.EFFECTIVENESS_LEVELS.values()}
    texts -= {"Readings outside 0 °C to 5 °C."}  # a pattern (its numbers come from the policy)
    assert texts <= known, sorted(texts - known)


def test_account_page_saves_the_users_language(make_app: Any, login: Any, csrf: Any, world: Any) -> None:
    user_client = make_app().test_client()
    login(user_client, "inspector")
    page = user_client.get("/account/password", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'id="f-lang"' in page and "The language of my browser" in page
    try:
        saved = user_client.post(
            "/language",
            data={"lang": "zh_Hans", "from": "account", "next": "/account/password", "csrf_token": csrf(user_client)},
            headers={"Accept-Language": "en"},
        )
        assert saved.status_code == 302 and saved.headers["Location"] == "/account/password"
        page = user_client.get("/account/password", headers={"Accept-Language": "en"}).get_data(as_text=True)
        assert '<html lang="zh-Hans">' in page and "已保存您的语言：中文" in page
        assert '<option value="zh_Hans" lang="zh-Hans" selected>' in page
        with world.runtime.ctx() as ctx:
            user = ctx.session.scalars(select(User).where(User.email == world.emails["inspector"])).one()
            assert user.language == "zh_Hans"
        follow = user_client.post(
            "/language",
            data={"lang": "", "from": "account", "next": "/account/password", "csrf_token": csrf(user_client)},
            headers={"Accept-Language": "en"},
        )
        assert follow.status_code == 302
        page = user_client.get("/account/password", headers={"Accept-Language": "en"}).get_data(as_text=True)
        assert '<html lang="en">' in page and "Pages now follow your browser" in page
        with world.runtime.ctx() as ctx:
            user = ctx.session.scalars(select(User).where(User.email == world.emails["inspector"])).one()
            assert user.language is None
    finally:
        with world.runtime.ctx() as ctx:
            user = ctx.session.scalars(select(User).where(User.email == world.emails["inspector"])).one()
            user.language = None
            ctx.session.commit()


def test_the_custody_inbox_shows_the_ship_date_and_unit_in_chinese(make_app: Any, login: Any, world: Any) -> None:
    """The retailer's inbox (T1 waits there): the ship date by the locale, the unit's name translated; the
    accept page's "shipped on" date too."""
    shop = make_app().test_client()
    shop.set_cookie("lotline_lang", "zh_Hans")
    login(shop, "retailer")
    page = shop.get("/custody").get_data(as_text=True)
    assert "2026年11月3日" in page and "2026-11-03" not in page
    assert re.search(r"· [\d,.]+ 千克", page) and not re.search(r"· [\d,.]+ kg", page)
    accept = shop.get(f"/custody/{world.lot('T1')}/accept").get_data(as_text=True)
    assert "2026年11月3日" in accept and "2026-11-03" not in accept


def test_the_lot_pages_verification_card_says_why_in_chinese(make_app: Any, login: Any, world: Any) -> None:
    """The Ledger card's verification detail: an altered payload is named in Chinese (event number and id kept);
    the long verdict of an incremental check too."""
    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import lots
    from supply_chain.services.verify import verify_lot
    from supply_chain.store.models import Organisation

    with world.runtime.ctx() as ctx:
        farm = ctx.session.get(Organisation, world.org_ids["producer"])
        lot = lots.create_lot(
            ctx,
            farm,
            world.gtins["lettuce"],
            "ZH-TAMPER-1",
            EventKind.HARVESTING,
            {"location_gln": world.sites["producer"], "harvest_date": "2026-11-01", "commodity": "lettuce"},
            "10",
            "kg",
        )
        event = lot.events[0]
        original = dict(event.payload)
        event.payload = original | {"commodity": "organic lettuce"}  # edited behind the chain's back
        ctx.session.flush()
        assert verify_lot(ctx, lot).state == "tampered"
        ctx.session.commit()
        lot_id = lot.id
    farm_client = make_app().test_client()
    farm_client.set_cookie("lotline_lang", "zh_Hans")
    login(farm_client, "producer")
    try:
        page = farm_client.get(f"/lots/{lot_id}").get_data(as_text=True)
        assert "事件 #1（采收，编号" in page and "其数据已被篡改" in page
        assert "payload was altered" not in page
    finally:
        with world.runtime.ctx() as ctx:
            event = ctx.session.get(Lot, lot_id).events[0]
            event.payload = original
            ctx.session.flush()
            assert verify_lot(ctx, ctx.session.get(Lot, lot_id)).state == "verified"
            ctx.session.commit()


@pytest.mark.parametrize(
    ("english", "chinese"),
    [
        (
            "3 events match the chain (head 0xab12; the 1 newest checked against the previously verified head)",
            "3 个事件与链上记录一致（头哈希 0xab12；最新的 1 个已对照上次核验的头哈希检查）",
        ),
        ("2 events verified; 1 not mined yet", "2 个事件已核验；1 个尚未上链"),
        ("stored status 'active' differs from the chain's 'held'", "存储的状态“在库”与链上的“暂扣”不同"),
        (
            "inspection #4: stored outcome 'pass' differs from the 'fail' anchored by event #3 (inspection); "
            "document #2 'lab.pdf' is cited by no event anchored on chain",
            "检验 #4：存储的结果“pass”与事件 #3（检验）锚定的“fail”不同；文件 #2 'lab.pdf' 未被任何链上锚定的事件引用",
        ),
    ],
)
def test_verification_verdicts_are_translated(app: Any, english: str, chinese: str) -> None:
    from app.messages import translate_message

    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert translate_message(english) == chinese


def test_onboarding_a_taken_name_or_prefix_is_refused_in_chinese(
    make_app: Any, login: Any, csrf: Any, world: Any, counts: Any
) -> None:
    """An organisation-admin conflict no field check catches (the name is taken) answered in Chinese."""
    desk = make_app().test_client()
    desk.set_cookie("lotline_lang", "zh_Hans")
    login(desk, "regulator")
    before = counts()
    form = {
        "name": "Test Farm",
        "roles": "producer",
        "email": "new-farm@test.example",
        "password": "a long enough password 1",
        "csrf_token": csrf(desk),
    }
    response = desk.post("/admin/organisations/new", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code in (400, 409), page[:300]
    assert "名为 &#39;Test Farm&#39; 的组织已存在" in page and "already exists" not in page
    assert counts() == before


@pytest.mark.parametrize(
    ("english", "chinese"),
    [
        ("Test Farm is not suspended", "Test Farm 未被暂停"),
        ("API token 7 is already revoked", "API 令牌 7 已被撤销"),
        ("url must start with https:// (or http://)", "URL 必须以 https://（或 http://）开头"),
        (
            "2 of 3 notified holders answered (66.7%, level B asks 10%); accounted for 60 kg of 1100 kg",
            "3 个已通知的持有方中有 2 个答复（66.7%，B 级要求 10%）；已核实数量：60 千克（波及数量：1,100 千克）",
        ),
        (
            "0 of 1 notified holders answered (0%, level A asks 100%); accounted for nothing of 5 cases",
            "1 个已通知的持有方中有 0 个答复（0%，A 级要求 100%）；已核实数量：无（波及数量：5 箱）",
        ),
    ],
)
def test_organisation_token_webhook_refusals_and_the_effectiveness_summary_are_translated(
    app: Any, english: str, chinese: str
) -> None:
    from app.messages import translate_message

    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert translate_message(english) == chinese


def test_a_recall_end_steps_effectiveness_summary_is_shown_in_chinese(app: Any) -> None:
    """The step details of a recall's end (the ``details`` macro) show the effectiveness summary translated."""
    from flask import render_template_string

    summary = "2 of 3 notified holders answered (66.7%, level B asks 10%); accounted for 60 kg of 1100 kg"
    source = '{% from "_macros.html" import details %}{{ details({"effectiveness": summary}, {}) }}'
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        html = render_template_string(source, summary=summary)
    assert "3 个已通知的持有方中有 2 个答复" in html and "notified holders" not in html


def test_a_name_known_only_from_the_chain_is_put_in_the_pages_language(app: Any) -> None:
    """The name of an organisation known only from the chain is stored in English; every page prints it in
    its own language, alone or inside a sentence, and leaves other text (and HTML escaping) alone."""
    from flask import render_template_string

    from supply_chain.services.epcis.adopt import chain_only_name

    address = "0x" + "ab12" * 10
    template = "<p>{{ name }}</p><p>{{ _('Held by %(org)s', org=name) }}</p><p>{{ other }}</p>"
    values = {"name": chain_only_name(address), "other": "<b>0x12 (known from the chain)</b>"}
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        chinese = render_template_string(template, **values)
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        english = render_template_string(template, **values)
    assert f"<p>{address}（仅从链上得知）</p>" in chinese
    assert chinese.count("仅从链上得知") == 2 and "known from the chain)</p><p>" not in chinese
    assert "&lt;b&gt;0x12 (known from the chain)&lt;/b&gt;" in chinese  # not a chain address: left as it is
    assert f"<p>{address} (known from the chain)</p>" in english


def test_the_catalogue_kept_for_a_request_follows_force_locale_and_comes_back(client: FlaskClient) -> None:
    """``page_translations`` keeps the request's catalogue; a notice forced into another language gets that
    language's, and the page's own is back once the forcing ends."""
    from flask_babel import force_locale

    from app.i18n import page_gettext
    from app.messages import tr

    with client.application.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        page = page_gettext("Journey")
        assert page != "Journey" and tr("Journey") == page
        with force_locale("en"):
            assert page_gettext("Journey") == "Journey" and tr("Journey") == "Journey"
        assert page_gettext("Journey") == page
    with client.application.test_request_context("/", headers={"Accept-Language": "en"}):
        assert page_gettext("Journey") == "Journey"
