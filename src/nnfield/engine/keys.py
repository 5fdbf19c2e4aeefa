"""Counter-based keys: every network's random numbers follow from (seed, point, block, index).

Keys never depend on the shard or job that computes a block, so an ensemble split over 1 or 100
jobs contains the same networks.
"""

from __future__ import annotations

import hashlib


def stable_hash32(text: str) -> int:
    """A 31-bit integer hash of ``text`` that is identical on every machine and Python run."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def point_key(seed: int, study: str, point: str):
    """JAX key for one sweep point: fold_in(fold_in(key(seed), hash(study)), hash(point))."""
    import jax

    key = jax.random.key(seed)
    key = jax.random.fold_in(key, stable_hash32(study))
    return jax.random.fold_in(key, stable_hash32(point))
