"""The key-encryption key (KEK): what every organisation's chain key is encrypted under at rest.

The KEK is kept apart from the session secret (``LOTLINE_SECRET_KEY``, which signs browser cookies), so that
whoever reads one of them cannot do what the other protects. It comes from ``LOTLINE_KEK`` or, when that is
not set, from the instance folder's ``kek`` file (0600, created on first start). Each organisation row names
the KEK its key is under (``key_encryption_id``, a fingerprint), so that:

- a start re-encrypts under the KEK any key still under the session secret (releases before the KEK), once
  (``Keyring.settle``);
- ``lotline keys rotate-kek`` re-encrypts every key under a new KEK in one database transaction, then installs
  the new KEK (``Keyring.rotate``). The new KEK is written to ``kek.new`` before the transaction and renamed
  over ``kek`` after it commits; a crash in between is settled at the next start (the rename is finished if
  the transaction committed, ``kek.new`` is removed if it did not). A running server finds the new KEK in the
  file when it meets a key under it, so it keeps signing without a restart.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path

from Crypto.Cipher import AES
from eth_account.signers.local import LocalAccount
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from supply_chain.chain.keys import decrypt_account, encrypt_account, key_encryption_id
from supply_chain.domain.errors import Forbidden, InvalidInput
from supply_chain.services.instance import (
    KEK_FILE,
    PENDING_KEK_FILE,
    fsync_folder,
    read_or_create_secret,
    write_private,
)
from supply_chain.store.db import session_scope
from supply_chain.store.models import Organisation, WebhookEndpoint

log = logging.getLogger(__name__)

KEK_ENV = "LOTLINE_KEK"
NEW_KEK_ENV = "LOTLINE_NEW_KEK"
MIN_KEK_LENGTH = 32
"""Characters a KEK must have at least (a generated one is 64 hex digits)."""


def new_kek() -> str:
    return secrets.token_hex(32)


def check_kek(value: str, field: str = KEK_ENV) -> str:
    """``value`` stripped, if long enough to be a KEK; InvalidInput naming ``field`` otherwise."""
    value = (value or "").strip()
    if len(value) < MIN_KEK_LENGTH:
        raise InvalidInput(
            f"{field} must be at least {MIN_KEK_LENGTH} characters (e.g. `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`)",
            field=field,
        )
    return value


def load_kek(home: Path, env: Mapping[str, str]) -> str:
    """The KEK: ``LOTLINE_KEK`` when set, else the instance folder's ``kek`` file (created on first use)."""
    if env.get(KEK_ENV):
        return check_kek(env[KEK_ENV])
    return check_kek(read_or_create_secret(home / KEK_FILE, new_kek()), f"{home / KEK_FILE}")


class Keyring:
    """Seals new organisation keys under the KEK and opens them again; migrates and rotates (module docstring)."""

    def __init__(self, kek: str, home: Path, *, file_backed: bool) -> None:
        self._kek = kek
        self._home = Path(home)
        self._lock = threading.RLock()
        self.file_backed = file_backed
        """Whether the KEK is the instance folder's file (rotation then writes the new one there)."""

    @property
    def kek_id(self) -> str:
        return key_encryption_id(self._kek)

    def seal(self, account: LocalAccount) -> tuple[str, str]:
        """``(keystore JSON, key_encryption_id)`` of ``account`` under the current KEK."""
        with self._lock:
            return encrypt_account(account, self._kek), self.kek_id

    def account(self, org: Organisation) -> LocalAccount:
        """The organisation's own key (InvalidInput naming ``LOTLINE_KEK`` when it is under another KEK;
        Forbidden for an organisation known only from the chain, whose key this instance never held)."""
        if org.known_from_chain:
            raise Forbidden(
                f"{org.name} is known here only from the chain: this instance holds no key of it and acts in "
                "nothing in its name",
                code="known_from_chain",
            )
        return decrypt_account(org.encrypted_key, self._kek_named(org.key_encryption_id))

    def seal_secret(self, plain: str) -> tuple[str, str]:
        """``(sealed text, key_encryption_id)`` of a secret Lotline must read back (a webhook's signing
        secret): AES-256-GCM under a key derived from the current KEK."""
        with self._lock:
            return _seal(plain, self._kek), self.kek_id

    def open_secret(self, sealed: str, kek_id: str) -> str:
        """A secret sealed by ``seal_secret`` under the KEK named ``kek_id``."""
        return _open(sealed, self._kek_named(kek_id))

    def _kek_named(self, kek_id: str | None) -> str:
        with self._lock:
            if kek_id == self.kek_id:
                return self._kek
            # rotated by `lotline keys rotate-kek` in another process while this one ran
            for name in (KEK_FILE, PENDING_KEK_FILE):
                with contextlib.suppress(FileNotFoundError):
                    candidate = (self._home / name).read_text().strip()
                    if kek_id is not None and key_encryption_id(candidate) == kek_id:
                        self._kek = candidate
                        return candidate
        raise InvalidInput(
            "cannot decrypt an organisation key: it is under "
            + (f"KEK {kek_id}" if kek_id else "the session secret of an earlier release (not yet migrated)")
            + f", but this installation's KEK is {self.kek_id}; set LOTLINE_KEK to the KEK the keys were "
            "encrypted under (or restore the instance folder's kek file)",
            field=KEK_ENV,
        )

    # ------------------------------------------------------------ at start

    def settle(self, sessions: sessionmaker[Session], legacy_secret: str) -> int:
        """Finish or undo a file rotation a crash interrupted, then re-encrypt under the KEK every key still
        under ``legacy_secret`` (the session secret, which encrypted keys before the KEK existed). Returns how
        many keys were migrated; a key that does not open is logged and left for the operator."""
        with self._lock:
            self._settle_pending_file(sessions)
            migrated = 0
            with session_scope(sessions) as session:
                legacy = session.scalars(
                    select(Organisation)
                    .where(Organisation.key_encryption_id.is_(None), Organisation.known_from_chain.is_(False))
                    .order_by(Organisation.id)
                    .with_for_update()
                ).all()
                for org in legacy:
                    try:
                        account = decrypt_account(org.encrypted_key, legacy_secret, "LOTLINE_SECRET_KEY")
                    except InvalidInput as exc:
                        log.error("the key of %s stays unmigrated: %s", org.name, exc.message)
                        continue
                    org.encrypted_key, org.key_encryption_id = self.seal(account)
                    migrated += 1
            if migrated:
                log.warning(
                    "re-encrypted %d organisation keys under the key-encryption key %s (they were under the "
                    "session secret)",
                    migrated,
                    self.kek_id,
                )
            return migrated

    def _settle_pending_file(self, sessions: sessionmaker[Session]) -> None:
        pending = self._home / PENDING_KEK_FILE
        if not self.file_backed or not pending.exists():
            return
        candidate = pending.read_text().strip()
        with session_scope(sessions) as session:
            used = set(session.scalars(select(Organisation.key_encryption_id).distinct()))
        if candidate and key_encryption_id(candidate) in used:
            os.replace(pending, self._home / KEK_FILE)
            fsync_folder(self._home)
            self._kek = candidate
            log.warning("finished a key-encryption key rotation that was interrupted after its commit")
        else:
            pending.unlink()
            log.warning("discarded the new key-encryption key of a rotation that did not commit")

    # ------------------------------------------------------------ rotation

    def rotate(self, sessions: sessionmaker[Session], new: str | None = None) -> int:
        """Re-encrypt every organisation key under a new KEK (``new``, or a fresh random one) in one
        transaction; all or nothing. A file-backed KEK is replaced in the instance folder; one from
        ``LOTLINE_KEK`` must be replaced there by the operator (the command says so). Returns the count."""
        new = check_kek(new, NEW_KEK_ENV) if new is not None else new_kek()
        new_id = key_encryption_id(new)
        pending = self._home / PENDING_KEK_FILE
        with self._lock:
            if new_id == self.kek_id:
                raise InvalidInput("the new key-encryption key is the current one", field=NEW_KEK_ENV)
            if self.file_backed:
                write_private(pending, new.encode(), replace=True)
            try:
                with session_scope(sessions) as session:
                    if session.get_bind().dialect.name == "postgresql":
                        # no organisation is added or re-keyed under the old KEK while this runs
                        session.execute(text("LOCK TABLE organisations IN SHARE ROW EXCLUSIVE MODE"))
                    orgs = session.scalars(
                        select(Organisation).where(Organisation.known_from_chain.is_(False)).order_by(Organisation.id)
                    ).all()
                    for org in orgs:
                        account = self.account(org)
                        org.encrypted_key = encrypt_account(account, new)
                        org.key_encryption_id = new_id
                    for endpoint in session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)):
                        plain = self.open_secret(endpoint.sealed_secret, endpoint.key_encryption_id)
                        endpoint.sealed_secret, endpoint.key_encryption_id = _seal(plain, new), new_id
            except BaseException:
                if self.file_backed:
                    pending.unlink(missing_ok=True)
                raise
            if self.file_backed:
                self._install(pending)
            self._kek = new
            log.warning("re-encrypted %d organisation keys under the new key-encryption key %s", len(orgs), new_id)
            return len(orgs)

    def _install(self, pending: Path) -> None:
        os.replace(pending, self._home / KEK_FILE)
        fsync_folder(self._home)


# ------------------------------------------------------------------ sealed secrets

_SEAL_VERSION = "gcm1"


def _seal_key(kek: str) -> bytes:
    return hashlib.sha256(b"lotline-sealed-secret:" + kek.encode()).digest()


def _seal(plain: str, kek: str) -> str:
    cipher = AES.new(_seal_key(kek), AES.MODE_GCM)
    ciphertext, tag = cipher.encrypt_and_digest(plain.encode("utf-8"))
    return f"{_SEAL_VERSION}:" + base64.b64encode(cipher.nonce + tag + ciphertext).decode("ascii")


def _open(sealed: str, kek: str) -> str:
    version, _, data = sealed.partition(":")
    raw = base64.b64decode(data)
    if version != _SEAL_VERSION or len(raw) < 32:
        raise InvalidInput("a sealed secret is damaged (unknown format)", field=KEK_ENV)
    cipher = AES.new(_seal_key(kek), AES.MODE_GCM, nonce=raw[:16])
    try:
        return cipher.decrypt_and_verify(raw[32:], raw[16:32]).decode("utf-8")
    except ValueError as exc:
        raise InvalidInput("a sealed secret does not open under this key-encryption key", field=KEK_ENV) from exc
