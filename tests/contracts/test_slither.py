"""Slither (static analysis) finds no medium or high issue in the contract that is not justified.

Slither runs on the project's own compilation: the pinned compiler (solcjs through ``scripts/solc`` here, a
native solc where one is installed) is given the same ``--standard-json`` input as ``compile_contracts``, with
the AST and source maps added (crytic-compile's ``solc-json`` framework). Slither needs web3 < 8 and Lotline
web3 8, so it lives in its own virtual environment: ``make test`` creates ``.venv-slither`` (``SLITHER`` may
name another binary). The findings and the reasons for any accepted one are in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from supply_chain.chain import compile as compile_module
from supply_chain.chain.compile import PROJECT_ROOT, SOLC_VERSION, standard_json_input

pytestmark = pytest.mark.slow

OUTPUTS = {
    "*": {
        "*": ["abi", "devdoc", "userdoc", "evm.bytecode", "evm.deployedBytecode", "evm.methodIdentifiers"],
        "": ["ast"],
    }
}

JUSTIFIED: dict[tuple[str, str], str] = {}
"""Accepted medium/high findings: (detector, the first element it names) -> why (see docs/reliability.md,
"Contract analysis (Slither)"). Empty: Slither 0.11.6 reports none for LotLedger and the OpenZeppelin code
it uses."""


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


def _slither() -> str:
    for candidate in (os.environ.get("SLITHER"), str(PROJECT_ROOT / ".venv-slither" / "bin" / "slither")):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("slither")
    if found is None:
        _skip_or_fail("slither not installed: `make test` creates .venv-slither (pip install slither-analyzer)")
    return str(found)


def _compiler() -> str:
    try:
        binary = compile_module.solc_binary()
    except RuntimeError as exc:
        _skip_or_fail(f"no Solidity compiler: {exc}")
    if binary == str(compile_module.SHIM) and shutil.which("node") is None:
        _skip_or_fail("solcjs needs node on PATH: install Node.js and run npm ci")
    return binary


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    slither, solc = _slither(), _compiler()
    work = tmp_path_factory.mktemp("slither")
    source = work / "input.json"
    source.write_text(json.dumps(standard_json_input(OUTPUTS)), encoding="utf-8")
    out = work / "slither.json"
    # run from the project root: crytic-compile finds "LotLedger.sol" under contracts/ and "@openzeppelin/..."
    # under node_modules/ there, as the compiler shim does
    done = subprocess.run(
        [slither, str(source), "--solc", solc, "--compile-force-framework", "solc-json"]
        + ["--json", str(out), "--json-types", "detectors,compilations"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.exists(), done.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["success"], result.get("error") or done.stderr[-3000:]
    return result["results"]


def _name(finding: dict[str, Any]) -> str:
    elements = finding.get("elements") or [{}]
    return str(elements[0].get("name", ""))


def test_slither_analysed_the_contract_as_the_project_compiles_it(report: dict[str, Any]) -> None:
    (compilation,) = report["compilations"]
    units = compilation["compilation_units"].values()
    assert {unit["compiler"]["version"] for unit in units} == {SOLC_VERSION}
    assert any("contracts/LotLedger.sol" in unit["source_units"] for unit in units)


def test_no_unjustified_medium_or_high_finding(report: dict[str, Any]) -> None:
    serious = [f for f in report.get("detectors", []) if f["impact"] in ("High", "Medium")]
    unjustified = [
        f"{f['impact']} {f['check']}: {f['description'].strip()[:300]}"
        for f in serious
        if (f["check"], _name(f)) not in JUSTIFIED
    ]
    assert not unjustified, "\n".join(unjustified)
    stale = set(JUSTIFIED) - {(f["check"], _name(f)) for f in serious}
    assert not stale, f"justified findings Slither no longer reports (remove them here and in the docs): {stale}"
