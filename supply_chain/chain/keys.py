"""Organisation keys: one account per organisation, generated on onboarding, encrypted at rest.

The keystore is the standard eth-account (Web3 Secret Storage v3) JSON, encrypted under a password derived
from the installation's key-encryption key (KEK: `LOTLINE_KEK` or the instance folder's `kek` file), which
is kept apart from the secret that signs browser sessions (`services.keyring` holds, migrates and rotates it).
Keys are never logged; decrypted accounts are cached in memory for the process.
"""

from __future__ import annotations

import hashlib
import json
import threading

from eth_account import Account
from eth_account.signers.local import LocalAccount

from supply_chain.domain.errors import InvalidInput

# scrypt with n=2**14 keeps a decrypt near 50 ms: the keystore is protected by the KEK, not by a human
# password, so the work factor guards against nothing a long random secret doesn't already.
_SCRYPT_N = 2**14

_cache: dict[tuple[str, str], LocalAccount] = {}
_cache_lock = threading.Lock()


def _password(secret: str) -> str:
    if not secret:
        raise InvalidInput("the key-encryption key is empty; keys cannot be encrypted", field="LOTLINE_KEK")
    return hashlib.sha256(b"lotline-keystore:" + secret.encode()).hexdigest()


def key_encryption_id(secret: str) -> str:
    """A short name of a key-encryption key, stored next to each keystore so that a start (or an operator)
    can tell which KEK a key is under. Names the KEK without revealing it (a KEK is at least 32 characters)."""
    return hashlib.sha256(b"lotline-kek-id:" + secret.encode()).hexdigest()[:32]


def new_account() -> LocalAccount:
    """A fresh random account."""
    return Account.create()


def encrypt_account(account: LocalAccount, secret: str) -> str:
    """The keystore JSON (text) of `account`, encrypted under `secret`."""
    keystore = Account.encrypt(account.key, _password(secret), kdf="scrypt", iterations=_SCRYPT_N)
    return json.dumps(keystore)


def decrypt_account(keystore_json: str, secret: str, setting: str = "LOTLINE_KEK") -> LocalAccount:
    """The account inside a keystore; cached so each key is decrypted once per process. `setting` names
    where `secret` came from, for the message when it is the wrong one."""
    cache_key = (keystore_json, secret)
    with _cache_lock:
        cached = _cache.get(cache_key)
    if cached is not None:
        return cached
    try:
        private_key = Account.decrypt(json.loads(keystore_json), _password(secret))
    except ValueError as exc:
        raise InvalidInput(
            f"cannot decrypt an organisation key: {setting} differs from the one it was encrypted under",
            field=setting,
        ) from exc
    account = Account.from_key(private_key)
    with _cache_lock:
        _cache[cache_key] = account
    return account
