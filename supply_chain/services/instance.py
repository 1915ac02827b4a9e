"""The instance folder (``LOTLINE_HOME``): the SQLite database, the embedded chain, certificate files, the
session secret and the key-encryption key. All of it is readable by the owner only: folders 0700, files 0600.

New files are created with those modes where they are made (``store.db`` for the database, ``chain.embedded``
for the chain, here for secrets and certificates); ``secure_instance`` runs at every start and takes group and
other access away from anything an earlier release (or a copy, or a restore) left readable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

SECRET_KEY_FILE = "secret_key"
"""Signs browser sessions when ``LOTLINE_SECRET_KEY`` is not set."""
KEK_FILE = "kek"
"""Encrypts organisation chain keys when ``LOTLINE_KEK`` is not set (``services.keyring``)."""
PENDING_KEK_FILE = "kek.new"
"""The new KEK while ``lotline keys rotate-kek`` runs (see ``services.keyring``)."""

INSTANCE_ENTRIES = (
    "lotline.db",
    "lotline.db-wal",
    "lotline.db-shm",
    "lotline.db-journal",
    SECRET_KEY_FILE,
    KEK_FILE,
    PENDING_KEK_FILE,
    "chain",
    "documents",
)
"""What Lotline keeps in the instance folder (folders are tightened with everything inside them). Other
entries an operator put there are left alone."""


def secure_instance(home: Path) -> list[Path]:
    """Create ``home`` (0700) if missing and take group and other access away from it and from everything
    Lotline keeps in it. Returns the paths whose mode changed (logged as a warning)."""
    home.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    changed: list[Path] = []
    _tighten(home, changed)
    for name in INSTANCE_ENTRIES:
        path = home / name
        if path.is_symlink() or not path.exists():
            continue
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                for entry in (root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)):
                    _tighten(Path(entry), changed)
        else:
            _tighten(path, changed)
    if changed:
        log.warning("took group and other access away from %d instance files and folders under %s", len(changed), home)
    return changed


def _tighten(path: Path, changed: list[Path]) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        return
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        os.chmod(path, mode & 0o700)
        changed.append(path)


def private_folder(path: Path) -> Path:
    """``path`` as a folder readable by the owner only (created if missing)."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    changed: list[Path] = []
    _tighten(path, changed)
    return path


def write_private(path: Path, content: bytes, *, replace: bool = False) -> bool:
    """Write ``content`` to ``path`` (0600) completely or not at all: a temporary file, fsynced, then linked in
    place. An existing ``path`` is kept unless ``replace``; returns whether this call wrote it (two processes
    creating the same secret at once agree on the first one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
            fsync_folder(path.parent)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        fsync_folder(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def read_or_create_secret(path: Path, make: str) -> str:
    """The secret kept in ``path``, which is created (0600) holding ``make`` when missing."""
    if not path.exists():
        write_private(path, make.encode())
    return path.read_text().strip()


def fsync_folder(path: Path) -> None:
    """Make a rename or link in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
