"""Organisation keys: one account per organisation, generated on onboarding, encrypted at rest.

The keystore is the standard eth-account (Web3 Secret Storage v3) JSON, encrypted under a password derived
from `LOTLINE_SECRET_KEY`. Keys are never logged; decrypted accounts are cached in memory for the process.
"""

from __future__ import annotations

import hashlib
import json
import threading

from eth_account import Account
from eth_account.signers.local import LocalAccount

from supply_chain.domain.errors import InvalidInput

# scrypt with n=2**14 keeps a decrypt near 50 ms: the keystore is protected by the secret key, not by a
# human password, so the work factor guards against nothing a long random secret doesn't already.
_SCRYPT_N = 2**14

_cache: dict[tuple[str, str], LocalAccount] = {}
_cache_lock = threading.Lock()


def _password(secret: str) -> str:
    if not secret:
        raise InvalidInput("LOTLINE_SECRET_KEY is empty; keys cannot be encrypted", field="LOTLINE_SECRET_KEY")
    return hashlib.sha256(b"lotline-keystore:" + secret.encode()).hexdigest()


def new_account() -> LocalAccount:
    """A fresh random account."""
    return Account.create()


def encrypt_account(account: LocalAccount, secret: str) -> str:
    """The keystore JSON (text) of `account`, encrypted under `secret`."""
    keystore = Account.encrypt(account.key, _password(secret), kdf="scrypt", iterations=_SCRYPT_N)
    return json.dumps(keystore)


def decrypt_account(keystore_json: str, secret: str) -> LocalAccount:
    """The account inside a keystore; cached so each key is decrypted once per process."""
    cache_key = (keystore_json, secret)
    with _cache_lock:
        cached = _cache.get(cache_key)
    if cached is not None:
        return cached
    try:
        private_key = Account.decrypt(json.loads(keystore_json), _password(secret))
    except ValueError as exc:
        raise InvalidInput(
            "cannot decrypt an organisation key: LOTLINE_SECRET_KEY differs from the one it was made with",
            field="LOTLINE_SECRET_KEY",
        ) from exc
    account = Account.from_key(private_key)
    with _cache_lock:
        _cache[cache_key] = account
    return account
