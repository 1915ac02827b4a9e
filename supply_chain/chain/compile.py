"""Compile the Solidity contracts with py-solc-x and keep the artifacts the app loads at run time.

The running app never compiles: it reads `artifacts/<Name>.json`. `scripts/compile_contracts.py` regenerates them
and a test recompiles and fails when they drift from `contracts/`.

Compiler choice, in order: `SOLC_BINARY` if set; a native solc of the pinned version that py-solc-x has
installed; else solcjs from `node_modules` through `scripts/solc` (a shim that speaks `--standard-json`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

SOLC_VERSION = "0.8.28"
EVM_VERSION = "paris"
CONTRACTS = ("LotLedger",)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = PROJECT_ROOT / "contracts"
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
SHIM = PROJECT_ROOT / "scripts" / "solc"

SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": EVM_VERSION,
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


def solc_binary() -> str:
    """The compiler to run, following the order in the module docstring."""
    explicit = os.environ.get("SOLC_BINARY")
    if explicit:
        return explicit
    import solcx

    for version in solcx.get_installed_solc_versions():
        if str(version) == SOLC_VERSION:
            return str(solcx.get_executable(version))
    if not (PROJECT_ROOT / "node_modules" / "solc").is_dir():
        raise RuntimeError("no Solidity compiler: run `npm ci` (solcjs) or set SOLC_BINARY")
    return str(SHIM)


def _sources() -> dict[str, dict[str, str]]:
    return {
        f"{name}.sol": {"content": (CONTRACTS_DIR / f"{name}.sol").read_text(encoding="utf-8")} for name in CONTRACTS
    }


def source_hash() -> str:
    """sha256 over the contract sources, in name order, so a changed source is spotted without compiling."""
    digest = hashlib.sha256()
    for name, source in sorted(_sources().items()):
        digest.update(name.encode() + b"\0" + source["content"].encode() + b"\0")
    return digest.hexdigest()


def standard_json_input(output_selection: dict[str, Any] | None = None) -> dict[str, Any]:
    """The compiler's ``--standard-json`` input for the contracts: the pinned settings, optionally asking for
    other outputs (static analysers such as Slither need the AST and source maps)."""
    settings = dict(SETTINGS, outputSelection=output_selection) if output_selection else SETTINGS
    return {"language": "Solidity", "sources": _sources(), "settings": settings}


def compile_contracts() -> dict[str, dict[str, Any]]:
    """Compile every contract; return the artifacts keyed by contract name."""
    import solcx

    binary = solc_binary()
    version = solcx.wrapper.get_solc_version(binary)
    if str(version).split("+")[0] != SOLC_VERSION:
        raise RuntimeError(f"compiler {binary} is {version}, the project pins {SOLC_VERSION}")
    output = solcx.compile_standard(
        standard_json_input(),
        solc_binary=binary,
        allow_paths=[str(PROJECT_ROOT)],
        base_path=str(CONTRACTS_DIR),
    )
    artifacts = {}
    for name in CONTRACTS:
        unit = output["contracts"][f"{name}.sol"][name]
        artifacts[name] = {
            "contractName": name,
            "abi": unit["abi"],
            "bytecode": "0x" + unit["evm"]["bytecode"]["object"],
            "deployedBytecode": "0x" + unit["evm"]["deployedBytecode"]["object"],
            "compiler": {"version": SOLC_VERSION, "settings": SETTINGS},
            "sourceHash": source_hash(),
        }
    return artifacts


def write_artifacts(artifacts: dict[str, dict[str, Any]]) -> list[Path]:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in artifacts.items():
        path = ARTIFACTS_DIR / f"{name}.json"
        path.write_text(json.dumps(artifact, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def load_artifact(name: str = "LotLedger") -> dict[str, Any]:
    """The committed artifact of one contract (what the app deploys and talks to)."""
    return json.loads((ARTIFACTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
