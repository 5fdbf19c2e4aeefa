"""Non-finite guards inside the simulate kernels (JAX): which networks of a chunk hold a NaN or
inf; the host-side reports and the removal of such blocks are in nnfield.engine.blocks."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def nonfinite_rows(*arrays: jax.Array) -> jax.Array:
    """(M,) bool: networks (leading axis) with a NaN or inf anywhere in any of ``arrays``."""
    bad = jnp.zeros(arrays[0].shape[0], dtype=bool)
    for a in arrays:
        bad |= ~jnp.all(jnp.isfinite(a.reshape(a.shape[0], -1)), axis=1)
    return bad
