"""The key-encryption key (issue 9, item 5): organisation keys are encrypted under a KEK kept apart from the
session secret; keys of earlier releases (under the session secret) move under the KEK at the first start;
``lotline keys rotate-kek`` re-encrypts every key under a new KEK, all or nothing, and everything keeps working.

These tests need no chain: organisations are stored with fresh keys directly, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from eth_account import Account
from sqlalchemy import select, text

from supply_chain.chain.keys import decrypt_account, encrypt_account, key_encryption_id
from supply_chain.cli import main
from supply_chain.domain.errors import InvalidInput
from supply_chain.services import keyring as keyring_module
from supply_chain.services import orgs
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.store.db import make_engine, migrate
from supply_chain.store.models import Organisation

SESSION_SECRET = "session-secret-of-an-older-release"


def _runtime(home: Path, db_url: str, **env: str) -> Runtime:
    return Runtime(Settings.from_env(env=env, home=home, database_url=db_url, secret_key=SESSION_SECRET))


def _add_orgs(runtime: Runtime, count: int) -> dict[str, str]:
    """``count`` organisations with fresh keys sealed by the runtime's keyring: name -> address."""
    made = {}
    with runtime.ctx() as ctx:
        for i in range(count):
            account = Account.create()
            encrypted, kek_id = runtime.keyring.seal(account)
            name = f"Keyed Farm {i}"
            ctx.session.add(
                Organisation(
                    name=name,
                    roles=["producer"],
                    chain_address=account.address,
                    encrypted_key=encrypted,
                    key_encryption_id=kek_id,
                )
            )
            made[name] = account.address
    return made


def _keys(runtime: Runtime) -> dict[str, tuple[str, str | None]]:
    with runtime.ctx() as ctx:
        return {o.name: (o.encrypted_key, o.key_encryption_id) for o in ctx.session.scalars(select(Organisation))}


def _opens_all(runtime: Runtime, made: dict[str, str]) -> None:
    with runtime.ctx() as ctx:
        for org in ctx.session.scalars(select(Organisation)):
            assert orgs.signer(ctx, org).address == made[org.name]


def test_organisation_keys_are_encrypted_under_the_kek_not_the_session_secret(db_url: str, tmp_path: Path) -> None:
    runtime = _runtime(tmp_path / "home", db_url)
    try:
        kek = (tmp_path / "home" / "kek").read_text().strip()
        assert len(kek) >= 32 and kek != runtime.settings.secret_key
        made = _add_orgs(runtime, 1)
        ((encrypted, kek_id),) = _keys(runtime).values()
        assert kek_id == key_encryption_id(kek)
        assert decrypt_account(encrypted, kek).address == next(iter(made.values()))
        with pytest.raises(InvalidInput):  # whoever holds the session secret cannot open the keys
            decrypt_account(encrypted, runtime.settings.secret_key)
    finally:
        runtime.close()


def test_the_kek_must_differ_from_the_session_secret_and_be_long(tmp_path: Path) -> None:
    same = "x" * 40
    with pytest.raises(InvalidInput) as equal:
        Settings.from_env(env={"LOTLINE_SECRET_KEY": same, "LOTLINE_KEK": same}, home=tmp_path)
    assert equal.value.field == "LOTLINE_KEK"
    with pytest.raises(InvalidInput) as short:
        Settings.from_env(env={"LOTLINE_KEK": "too-short"}, home=tmp_path)
    assert "at least 32 characters" in short.value.message


def test_keys_of_an_earlier_release_move_under_the_kek_at_the_first_start(db_url: str, tmp_path: Path) -> None:
    """A database at revision 0003 whose keys are under the session secret, as earlier releases wrote them."""
    account = Account.create()
    engine = make_engine(db_url)
    try:
        migrate(engine, "0003")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO organisations (name, roles, chain_address, encrypted_key, created_at, session_epoch)"
                    " VALUES ('Old Farm', :roles, :address, :key, :now, 3)"
                ),
                {
                    "roles": json.dumps(["producer"]),
                    "address": account.address,
                    "key": encrypt_account(account, SESSION_SECRET),
                    "now": "2026-11-01 00:00:00",
                },
            )
    finally:
        engine.dispose()

    runtime = _runtime(tmp_path / "home", db_url)
    try:
        ((encrypted, kek_id),) = _keys(runtime).values()
        kek = (tmp_path / "home" / "kek").read_text().strip()
        assert kek_id == key_encryption_id(kek) == runtime.keyring.kek_id
        assert decrypt_account(encrypted, kek).address == account.address
        with pytest.raises(InvalidInput):
            decrypt_account(encrypted, SESSION_SECRET)  # the session secret no longer opens it
        _opens_all(runtime, {"Old Farm": account.address})
    finally:
        runtime.close()
    again = _runtime(tmp_path / "home", db_url)  # a second start has nothing left to migrate
    try:
        assert again.keyring.settle(again.sessions, SESSION_SECRET) == 0
        assert _keys(again) == {"Old Farm": (encrypted, kek_id)}
    finally:
        again.close()


def test_rotate_kek_reencrypts_every_key_and_everything_keeps_working(db_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    runtime = _runtime(home, db_url)
    try:
        made = _add_orgs(runtime, 3)
        old_kek = (home / "kek").read_text().strip()
        before = _keys(runtime)
        assert runtime.keyring.rotate(runtime.sessions) == 3
        new_kek = (home / "kek").read_text().strip()
        assert new_kek != old_kek and (home / "kek").stat().st_mode & 0o777 == 0o600
        assert not (home / "kek.new").exists()
        after = _keys(runtime)
        for name, (encrypted, kek_id) in after.items():
            assert kek_id == key_encryption_id(new_kek) and encrypted != before[name][0]
            with pytest.raises(InvalidInput):
                decrypt_account(encrypted, old_kek)
        _opens_all(runtime, made)  # the same process keeps signing
    finally:
        runtime.close()
    restarted = _runtime(home, db_url)
    try:
        _opens_all(restarted, made)
    finally:
        restarted.close()


def test_a_server_started_before_a_rotation_finds_the_new_kek(db_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = _runtime(home, db_url)
    command = _runtime(home, db_url)
    try:
        made = _add_orgs(server, 2)
        command.keyring.rotate(command.sessions)
        _opens_all(server, made)
    finally:
        command.close()
        server.close()


def test_a_rotation_that_fails_midway_changes_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    runtime = _runtime(home, db_url)
    try:
        made = _add_orgs(runtime, 3)
        before, kek_file = _keys(runtime), (home / "kek").read_text()
        real, calls = keyring_module.encrypt_account, []

        def failing(account: Any, secret: str) -> str:
            calls.append(account.address)
            if len(calls) == 2:
                raise OSError("disk full")
            return real(account, secret)

        monkeypatch.setattr(keyring_module, "encrypt_account", failing)
        with pytest.raises(OSError, match="disk full"):
            runtime.keyring.rotate(runtime.sessions)
        monkeypatch.undo()
        assert _keys(runtime) == before, "no key was re-encrypted"
        assert (home / "kek").read_text() == kek_file and not (home / "kek.new").exists()
        _opens_all(runtime, made)
    finally:
        runtime.close()


def test_a_rotation_interrupted_after_its_commit_is_finished_at_the_next_start(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    runtime = _runtime(home, db_url)
    try:
        made = _add_orgs(runtime, 2)

        def crash(_self: Any, _pending: Path) -> None:
            raise SystemExit("killed between the commit and the rename")

        monkeypatch.setattr(keyring_module.Keyring, "_install", crash)
        with pytest.raises(SystemExit):
            runtime.keyring.rotate(runtime.sessions)
        monkeypatch.undo()
        pending = (home / "kek.new").read_text().strip()
        assert {kek_id for _, kek_id in _keys(runtime).values()} == {key_encryption_id(pending)}
    finally:
        runtime.close()
    restarted = _runtime(home, db_url)
    try:
        assert (home / "kek").read_text().strip() == pending and not (home / "kek.new").exists()
        _opens_all(restarted, made)
    finally:
        restarted.close()


def test_lotline_keys_rotate_kek_command(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    runtime = _runtime(home, db_url)
    try:
        made = _add_orgs(runtime, 2)
    finally:
        runtime.close()
    old_kek = (home / "kek").read_text()
    for name in ("LOTLINE_KEK", "LOTLINE_NEW_KEK", "LOTLINE_CHAIN_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOTLINE_HOME", str(home))
    monkeypatch.setenv("LOTLINE_DATABASE_URL", db_url)
    monkeypatch.setenv("LOTLINE_SECRET_KEY", SESSION_SECRET)
    runner = CliRunner()

    help_text = runner.invoke(main, ["keys", "rotate-kek", "--help"])
    assert (
        help_text.exit_code == 0 and "key-encryption key" in help_text.output and "LOTLINE_NEW_KEK" in help_text.output
    )

    done = runner.invoke(main, ["keys", "rotate-kek"])
    assert done.exit_code == 0, done.output
    assert "2 organisation keys re-encrypted" in done.output
    assert (home / "kek").read_text() != old_kek

    # with the KEK in the environment, the new one must be given there too
    current = (home / "kek").read_text().strip()
    monkeypatch.setenv("LOTLINE_KEK", current)
    refused = runner.invoke(main, ["keys", "rotate-kek"])
    assert refused.exit_code == 2 and "LOTLINE_NEW_KEK" in refused.output
    monkeypatch.setenv("LOTLINE_NEW_KEK", "n" * 40)
    moved = runner.invoke(main, ["keys", "rotate-kek"])
    assert moved.exit_code == 0 and "set LOTLINE_KEK" in moved.output
    monkeypatch.setenv("LOTLINE_KEK", "n" * 40)
    monkeypatch.delenv("LOTLINE_NEW_KEK")
    after = Runtime(Settings.from_env())
    try:
        _opens_all(after, made)
    finally:
        after.close()
