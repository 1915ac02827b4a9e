"""Recompile contracts/ and rewrite supply_chain/chain/artifacts/ (commit the result)."""

from supply_chain.chain.compile import compile_contracts, write_artifacts

if __name__ == "__main__":
    for path in write_artifacts(compile_contracts()):
        print(f"wrote {path}")
