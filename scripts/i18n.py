"""Keep the message catalogues in step with the code (docs/i18n.md).

    python scripts/i18n.py extract   # app/, templates and services -> supply_chain/translations/messages.pot
    python scripts/i18n.py update    # merge the .pot into every language's messages.po (new texts come in empty)
    python scripts/i18n.py compile   # messages.po -> messages.mo (what Flask-Babel reads; committed)
    python scripts/i18n.py all       # the three in a row: what to run after changing a text
    python scripts/i18n.py init LANG # start a catalogue for a new language (a Babel locale name, e.g. zh_Hant)

Translators edit supply_chain/translations/<LANG>/LC_MESSAGES/messages.po, then run `compile`. tests/web/test_i18n.py
fails when a text is missing from the catalogue, untranslated, or when the committed .mo differs from the .po.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from babel.messages.frontend import CommandLineInterface

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "supply_chain" / "translations"
POT = TRANSLATIONS / "messages.pot"
KEYWORDS = ("_", "gettext", "ngettext:1,2", "lazy_gettext", "lazy_ngettext:1,2", "N_")


def pybabel(*args: str) -> None:
    CommandLineInterface().run(["pybabel", "-q", *args])


def extract(output: Path = POT) -> None:
    """Write every translatable text of app/ (and the services' labels) to ``output`` (a .pot)."""
    keywords = [part for word in KEYWORDS for part in ("-k", word)]
    before = Path.cwd()
    os.chdir(ROOT)  # the catalogue's source references are relative to the repository
    try:
        pybabel(
            "extract",
            "-F",
            "babel.cfg",
            *keywords,
            "--no-default-keywords",
            "--sort-by-file",
            "--project=Lotline",
            "--copyright-holder=Lotline",
            "-o",
            str(output),
            ".",
        )
    finally:
        os.chdir(before)


def update() -> None:
    pybabel("update", "-i", str(POT), "-d", str(TRANSLATIONS), "--no-fuzzy-matching", "--ignore-obsolete")


def compile_() -> None:
    pybabel("compile", "-d", str(TRANSLATIONS))


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    if not argv or argv[0] not in ("extract", "update", "compile", "all", "init"):
        print(__doc__, file=sys.stderr)
        return 2
    command = argv[0]
    if command == "init":
        if len(argv) != 2:
            print("usage: scripts/i18n.py init LANG", file=sys.stderr)
            return 2
        pybabel("init", "-i", str(POT), "-d", str(TRANSLATIONS), "-l", argv[1])
        return 0
    if command in ("extract", "all"):
        extract()
    if command in ("update", "all"):
        update()
    if command in ("compile", "all"):
        compile_()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
