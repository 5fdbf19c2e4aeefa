"""What a point may cost: a rough model of one simulate process's memory and of a point's
single-core time, checked against the config's ``limits`` before anything runs (a mistyped
width or network count must not take a shared machine's memory or a month of core time).

Samplers hold at most ``CHUNK_ELEMENTS`` per-network values at once (networks are processed in
chunks), or one network's values when a single network is larger; memory is modelled as
``MEMORY_FACTOR`` float64 arrays of that size.  Time comes from ``batching.estimated_seconds``.
Both are estimates within a small factor, for refusing the absurd, not for scheduling.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from nnfield.config import ConfigError, PointSpec
from nnfield.engine.chunks import CHUNK_ELEMENTS  # the samplers' chunk bound

MEMORY_FACTOR = 8
"""Arrays of a chunk's size alive at once (values, temporaries, JAX buffers), in float64."""


def values_per_network(spec: PointSpec) -> int:
    """Values one network of ``spec`` holds while it is simulated (its study's cost model)."""
    from nnfield.studies import load

    return load(spec.study).cost(spec).values_per_network


def process_bytes(spec: PointSpec) -> float:
    """Estimated peak memory of a simulate process running ``spec``."""
    return 8.0 * MEMORY_FACTOR * max(CHUNK_ELEMENTS, values_per_network(spec))


def point_core_hours(spec: PointSpec) -> float:
    """Estimated single-core hours of the whole point (all shards)."""
    from nnfield.batching import estimated_seconds

    return estimated_seconds(spec) * spec.params["shards"] / 3600.0


def check(points: Mapping[str, Iterable[PointSpec]], limits: Mapping[str, float]) -> None:
    """Refuse the first point whose estimated memory or time exceeds ``limits`` (the config's
    ``limits`` block), naming the study, the point, the estimate and the limit's key."""
    memory_gb, hours = float(limits["process_memory_gb"]), float(limits["point_core_hours"])
    for study, specs in points.items():
        for spec in specs:
            need = process_bytes(spec) / 2**30
            if need > memory_gb:
                raise ConfigError(
                    f"config key 'studies.{study}': point {spec.name} needs about {need:.3g} GB "
                    f"in one simulate process ({values_per_network(spec):.3g} values per "
                    f"network), more than limits.process_memory_gb = {memory_gb:g}: make the "
                    "network smaller, or raise the limit on a machine with the memory"
                )
            cost = point_core_hours(spec)
            if cost > hours:
                raise ConfigError(
                    f"config key 'studies.{study}': point {spec.name} needs about "
                    f"{cost:.3g} core-hours of single-core time ({spec.params['networks']:.3g} "
                    f"networks), more than limits.point_core_hours = {hours:g}: use fewer "
                    "networks or a smaller network, or raise the limit"
                )
