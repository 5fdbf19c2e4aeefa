"""Shard the network (batch) axis of a block over every device JAX sees: one code path for one
CPU and for eight GPUs.

``batch_sharding(size)`` is a NamedSharding over a 1-d mesh named ``networks`` when more than one
device is visible and ``size`` divides evenly among them, else None (the arrays stay where they
are).  Inputs placed with it make jit partition the whole block computation along networks
(GSPMD); random draws are partitionable (jax_threefry_partitionable), so every network gets the
same numbers on any number of devices.  Test on CPU with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``.
"""

from __future__ import annotations

from functools import lru_cache

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "networks"


@lru_cache(maxsize=8)
def batch_sharding(size: int) -> NamedSharding | None:
    """Sharding of a leading axis of length ``size`` over all devices, or None for one device
    (or a size the devices do not divide)."""
    devices = jax.devices()
    if len(devices) < 2 or size % len(devices):
        return None
    return NamedSharding(Mesh(np.asarray(devices), (AXIS,)), PartitionSpec(AXIS))


def shard_batch(tree, size: int):
    """Place every array of ``tree`` whose leading axis has length ``size`` on the batch
    sharding (others are replicated by jit as usual); a no-op on one device."""
    sharding = batch_sharding(size)
    if sharding is None:
        return tree

    def place(x):
        if hasattr(x, "shape") and len(x.shape) >= 1 and x.shape[0] == size:
            return jax.device_put(x, sharding)
        return x

    return jax.tree_util.tree_map(place, tree)


def constrain_batch(x: jax.Array) -> jax.Array:
    """Inside jit: ask for ``x``'s leading (network) axis to be split over all devices, so that
    everything computed per network from it is partitioned; a no-op on one device."""
    sharding = batch_sharding(x.shape[0])
    return x if sharding is None else jax.lax.with_sharding_constraint(x, sharding)
