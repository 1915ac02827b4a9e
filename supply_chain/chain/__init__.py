"""Chain adapters: compiling, artifacts, connecting (embedded eth-tester or JSON-RPC), keys, the ledger."""
