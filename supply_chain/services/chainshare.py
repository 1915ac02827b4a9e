"""One embedded chain for several server processes (``lotline serve --workers N`` without a chain URL).

The web layer never touches the chain directly, so it starts the sharing through these three calls: the parent
makes an address (``new_holder_address``) before forking; the first worker opens the chain and answers the
others there (``hold_chain``); every other worker reaches it through that process (``reach_chain_through``)
before it builds its runtime. See ``supply_chain.chain.holder``.
"""

from __future__ import annotations

import secrets
import socket

from supply_chain.chain.connect import ChainHolderAddress, use_chain_holder
from supply_chain.chain.holder import HOLDER_HOST, ChainHolder
from supply_chain.services.runtime import Runtime

__all__ = ["ChainHolder", "ChainHolderAddress", "hold_chain", "new_holder_address", "reach_chain_through"]


def new_holder_address() -> ChainHolderAddress:
    """A free loopback port and a new random secret for the process that will hold the embedded chain. The
    same address serves a holder started again after a crash, so the other processes find it there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOLDER_HOST, 0))
        port = probe.getsockname()[1]
    return ChainHolderAddress(f"http://{HOLDER_HOST}:{port}", secrets.token_urlsafe(32))


def hold_chain(runtime: Runtime, address: ChainHolderAddress) -> ChainHolder:
    """Open this runtime's embedded chain and answer the other processes at ``address`` until ``stop()``."""
    port = int(address.url.rsplit(":", 1)[1])
    return ChainHolder(runtime.chain.w3, port, address.secret).start()


def reach_chain_through(address: ChainHolderAddress) -> None:
    """Make this process reach the embedded chain through the holder at ``address`` (never opening it)."""
    use_chain_holder(address)
