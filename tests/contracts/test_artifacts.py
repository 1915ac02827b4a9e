"""The committed contract artifact is exactly what `contracts/` compiles to.

The app deploys and talks to the committed artifact and never compiles; if someone edits the Solidity and
forgets to regenerate (`python scripts/compile_contracts.py`), these tests fail.
"""

from __future__ import annotations

import os
import shutil

import pytest

from supply_chain.chain import compile as compile_module
from supply_chain.chain.compile import (
    EVM_VERSION,
    SOLC_VERSION,
    compile_contracts,
    load_artifact,
    source_hash,
)

FIELDS = ("abi", "bytecode", "deployedBytecode", "sourceHash", "compiler")


def _compiler_or_skip() -> str:
    """The compiler the project would use; skip when there is none (fail in CI, where one must exist)."""
    reason = None
    try:
        binary = compile_module.solc_binary()
    except RuntimeError as exc:
        reason = f"no Solidity compiler: {exc}"
    else:
        if binary == str(compile_module.SHIM) and shutil.which("node") is None:
            reason = "solcjs needs node on PATH: install Node.js and run npm ci"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return binary


def test_committed_artifact_source_hash_matches_contract_sources():
    """A drift check that needs no compiler: the artifact was built from the sources as they are now."""
    assert load_artifact("LotLedger")["sourceHash"] == source_hash()


def test_committed_artifact_pins_compiler_version_and_evm_version():
    compiler = load_artifact("LotLedger")["compiler"]
    assert compiler["version"] == SOLC_VERSION == "0.8.28"
    assert compiler["settings"]["evmVersion"] == EVM_VERSION == "paris"
    assert compiler["settings"]["optimizer"] == {"enabled": True, "runs": 200}


@pytest.mark.slow
def test_recompiling_contracts_gives_exactly_the_committed_artifact():
    _compiler_or_skip()
    fresh = compile_contracts()
    assert set(fresh) == {"LotLedger"}
    committed = load_artifact("LotLedger")
    for field in FIELDS:
        assert fresh["LotLedger"][field] == committed[field], (
            f"{field} of supply_chain/chain/artifacts/LotLedger.json differs from a fresh compile of "
            "contracts/: run `python scripts/compile_contracts.py` and commit the result"
        )
