"""How many networks of a block are vectorised at once (no imports: the config's cost limits
use it without NumPy or JAX)."""

from __future__ import annotations

CHUNK_ELEMENTS = 1 << 20
"""Target number of per-network values held at once per chunk (sets the vectorisation width)."""


def divisor_chunk(block_size: int, per_network: int) -> int:
    """Networks per vectorised step: the largest divisor of ``block_size`` that keeps
    ``per_network`` values per network within CHUNK_ELEMENTS."""
    target = max(1, CHUNK_ELEMENTS // max(per_network, 1))
    for c in range(min(target, block_size), 0, -1):
        if block_size % c == 0:
            return c
    return 1
