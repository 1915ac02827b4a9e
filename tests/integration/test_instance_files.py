"""The instance folder is readable by its owner only (issue 9, item 5): the SQLite database and its WAL, the
embedded chain, the certificate store, the session secret and the KEK are created 0600 in folders of 0700, and
a start takes group and other access away from files an earlier release left world-readable (0644)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from supply_chain.services import lots
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.services.startup import catch_up

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _modes(home: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(home.stat().st_mode)}
    for root, dirs, files in os.walk(home):
        for name in (*dirs, *files):
            path = Path(root) / name
            found[path.relative_to(home).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _open_everything(home: Path) -> None:
    """Start an instance with the embedded chain (deployed) and one certificate."""
    runtime = Runtime(Settings.from_env(env={}, home=home))
    try:
        catch_up(runtime)
        with runtime.ctx() as ctx:
            lots.store_document(ctx, "cert.pdf", "application/pdf", PDF)
        modes = _modes(home)
        for name in ("lotline.db", "lotline.db-wal", "secret_key", "chain", "documents"):
            assert name in modes, f"{name} was not created"
    finally:
        runtime.close()


def test_a_new_instance_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # the usual umask, which gave 0644 files before
    try:
        home = tmp_path / "instance"
        runtime = Runtime(Settings.from_env(env={}, home=home))
        try:
            catch_up(runtime)
            with runtime.ctx() as ctx:
                lots.store_document(ctx, "cert.pdf", "application/pdf", PDF)
            modes = _modes(home)  # while open: the WAL files exist
        finally:
            runtime.close()
    finally:
        os.umask(old_umask)
    loose = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode & 0o077 or mode & 0o700 != (0o700 if (home / name).is_dir() else 0o600)
    }
    assert loose == {}, "group or other can read these"
    for name in ("lotline.db", "lotline.db-wal", "lotline.db-shm", "secret_key", "kek", "chain", "documents"):
        assert name in modes, f"{name} was not created"
    assert any(name.startswith("chain/") and name.endswith(".sqlite3") for name in modes)
    assert any(name.startswith("documents/") and name.endswith(".pdf") for name in modes)


def test_a_start_takes_group_and_other_access_away_from_existing_files(tmp_path: Path) -> None:
    home = tmp_path / "instance"
    _open_everything(home)
    for root, dirs, files in os.walk(home):  # as an earlier release (and umask 022) left them
        for name in dirs:
            os.chmod(Path(root) / name, 0o755)
        for name in files:
            os.chmod(Path(root) / name, 0o644)
    home.chmod(0o755)
    (home / "operator-notes.txt").write_text("not ours")
    (home / "operator-notes.txt").chmod(0o644)

    Runtime(Settings.from_env(env={}, home=home)).close()

    modes = _modes(home)
    assert modes.pop("operator-notes.txt") == 0o644, "what an operator put there is left alone"
    assert {name: oct(mode) for name, mode in modes.items() if mode & 0o077} == {}
    assert modes["."] == 0o700 and modes["kek"] == 0o600 and modes["lotline.db"] == 0o600
