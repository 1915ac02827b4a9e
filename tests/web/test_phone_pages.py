"""What the phone and accessibility work puts in every page's HTML (the browser tests measure the rendering):
the skip link and its target, the glossary and its links, the label sheet's print button, the site form's
"Use my location", and a Permissions-Policy that lets this site's own pages ask for the position."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

GLOSSARY_TERMS = (
    "lot", "gtin", "gln", "cte", "kde", "consortium", "visibility", "transaction", "block", "head-hash",
    "verification", "hold", "recall",
)  # fmt: skip


def test_glossary_explains_every_term_other_pages_link_to(client: FlaskClient) -> None:
    html = client.get("/glossary").get_data(as_text=True)
    for term in GLOSSARY_TERMS:
        match = re.search(rf'<dt id="{term}">(.+?)</dt>\s*<dd>(.+?)</dd>', html, flags=re.S)
        assert match, f"no glossary entry with id {term!r}"
        assert len(re.sub(r"<[^>]+>", "", match.group(2)).split()) >= 8, f"{term}: the explanation is too short"


def test_every_page_has_a_skip_link_to_main_and_a_glossary_link(client: FlaskClient, login: Any) -> None:
    pages = ["/", "/login", "/lookup", "/glossary", "/open/", "/no-such-page"]
    for path in pages:
        html = client.get(path).get_data(as_text=True)
        assert re.search(r'<body[^>]*>\s*<a class="skip-link" href="#main">', html), f"{path}: no skip link first"
        assert '<main id="main"' in html, path
        assert 'href="/glossary"' in html, path
    login(client, "producer")
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'aria-controls="main-nav"' in html and 'aria-expanded="false"' in html  # the phone's Menu button


def test_event_forms_explain_the_visibility_tags_in_visible_text(client: FlaskClient, login: Any) -> None:
    login(client, "producer")
    html = client.get("/lots/new").get_data(as_text=True)
    legend = re.search(r'<p class="vis-legend">(.+?)</p>', html, flags=re.S)
    assert legend, "no legend for the public/consortium/private tags"
    text = legend.group(1)
    for tag in ("public", "consortium", "private"):
        assert f'<span class="vis vis-{tag}">{tag}</span>' in text
    assert 'href="/glossary#visibility"' in text and 'href="/glossary#kde"' in text


def test_site_form_offers_use_my_location_and_the_browser_may_ask(client: FlaskClient, login: Any) -> None:
    login(client, "producer")
    response = client.get("/sites")
    html = response.get_data(as_text=True)
    button = re.search(r"<button[^>]*data-locate[^>]*>Use my location</button>", html, flags=re.S)
    assert button, "no 'Use my location' button"
    assert 'data-latitude="f-latitude"' in button.group(0) and 'data-longitude="f-longitude"' in button.group(0)
    assert re.search(r'id="location-status"[^>]*role="status"', html)
    assert "geolocation=(self)" in response.headers["Permissions-Policy"]
    assert "camera=()" in response.headers["Permissions-Policy"]


def test_field_attributes_are_rendered_as_attributes(client: FlaskClient, login: Any) -> None:
    login(client, "producer")
    html = client.get("/account/password").get_data(as_text=True)
    assert 'autocomplete="new-password"' in html and "&quot;" not in html


def test_label_sheet_has_a_print_button_the_script_reveals(world: Any, client: FlaskClient, login: Any) -> None:
    login(client, "distributor")
    html = client.get(f"/lots/{world.lot('M2')}/labels?count=2").get_data(as_text=True)
    button = re.search(r"<button[^>]*data-print[^>]*>Print labels</button>", html)
    assert button and " hidden" in button.group(0)  # shown by lotline.js, which calls window.print()
    assert re.search(r'<div class="no-print">.*data-print.*</div>\s*<div class="labels">', html, flags=re.S)
    assert 'src="/static/lotline.js"' in html
