"""What a study is to the workflow: the :class:`Study` protocol, and :class:`PackageStudy`, the
implementation every study package exports as ``STUDY``.

A study package ``nnfield.studies.<name>`` holds, each imported only by the stage that needs it:

- ``schema.yaml``: its config block, as ``$defs`` (the definition named ``<name>`` is the block);
- ``sweep.py`` (no JAX): ``check(cfg)``, ``expand(cfg) -> list[PointSpec]``, ``cost(spec) ->
  Cost``, ``figures_for(cfg, figures)`` (which of its figures a config makes) and
  ``COUNT_PARAMETERS`` (its spec parameters that must be positive integers, beyond networks,
  block_size and shards);
- ``sample.py``: ``simulate(spec, shard, progress) -> Dataset`` and ``RAW_VARIABLES``;
- ``analyze.py``: ``analyze(points, options) -> Dataset`` and ``analyze_files(paths, options,
  progress) -> Dataset`` (nnfield.engine.analysis reads the files for most studies);
- ``figures.py``: ``FIGURES``, figure name -> function of the study dataset;
- ``captions/<figure>.rst``: each figure's caption in the report (reStructuredText).

``cfg`` is the study's validated block of the config (``config["studies"][name]``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import yaml

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

    from nnfield.config import PointSpec


@dataclass(frozen=True)
class Cost:
    """A rough cost model of one point (within a small factor): for batching simulate jobs
    (nnfield.batching) and for the config's ``limits`` (nnfield.budget)."""

    units: float
    """Arithmetic of the whole point (all shards), in the study's units."""
    seconds_per_unit: float
    """Single-core seconds per unit."""
    setup_seconds: float
    """Per task: compilation (or a cache load) and set-up."""
    values_per_network: int
    """Values one network holds while it is simulated (the memory model)."""


@runtime_checkable
class Study(Protocol):
    """One study: a config block, its points, and the stages that turn them into figures."""

    name: str
    figures: tuple[str, ...]

    def schema(self) -> dict[str, Any]:
        """Its ``$defs`` fragment of the config schema (the definition ``name`` is its block)."""
        ...

    def check(self, cfg: Mapping[str, Any]) -> None:
        """Refuse a validated block that JSON schema cannot (ConfigError naming the key)."""
        ...

    def expand(self, cfg: Mapping[str, Any]) -> list[PointSpec]:
        """Its points."""
        ...

    def cost(self, spec: PointSpec) -> Cost:
        """The cost model of a point."""
        ...

    def figures_for(self, cfg: Mapping[str, Any]) -> list[str]:
        """The figures a block makes."""
        ...

    def analysis_options(self, cfg: Mapping[str, Any]) -> dict[str, Any]:
        """The options its analysis receives (and the plan records): the block's ``analysis``
        mapping, plus whatever analysis-only settings the study keeps elsewhere in the block."""
        ...

    def count_parameters(self) -> tuple[str, ...]:
        """Its spec parameters that must be positive integers (beyond networks, block_size and
        shards), checked on hand-written specs (``nnfield simulate --spec``)."""
        ...

    def raw_variables(self) -> tuple[str, ...]:
        """Variables every shard and point file holds."""
        ...

    def simulate(self, spec: PointSpec, shard: int = 0,
                 progress: Callable[[str], None] | None = None) -> xr.Dataset:  # fmt: skip
        """The raw (per-block) dataset of one shard of a point."""
        ...

    def merge(self, shards: Sequence[xr.Dataset]) -> xr.Dataset:
        """One point's shards joined."""
        ...

    def analyze(self, points: Sequence[xr.Dataset], options: Mapping[str, Any]) -> xr.Dataset:
        """The study dataset of its (merged) points in memory, with the analysis ``options``."""
        ...

    def analyze_files(self, paths: Sequence[str | Path], options: Mapping[str, Any],
                      progress: Callable[[str], None] | None = None) -> xr.Dataset:  # fmt: skip
        """The study dataset of its point files (what ``nnfield analyze`` writes)."""
        ...

    def draw(self, figure: str, ds: xr.Dataset) -> Figure:
        """One of its figures, from its study dataset."""
        ...

    def caption(self, figure: str) -> str:
        """The reStructuredText caption of one of its figures (``snakemake --report``)."""
        ...


@dataclass(frozen=True)
class PackageStudy:
    """A :class:`Study` made of the modules of a package (see the module docstring); cheap to
    create and to import, so the Snakefile can build the DAG from the sweep alone."""

    name: str
    package: str
    figures: tuple[str, ...]

    def _module(self, part: str) -> ModuleType:
        return importlib.import_module(f"{self.package}.{part}")

    def schema(self) -> dict[str, Any]:
        text = resources.files(self.package).joinpath("schema.yaml").read_text()
        return yaml.safe_load(text)["$defs"]

    def check(self, cfg: Mapping[str, Any]) -> None:
        self._module("sweep").check(cfg)

    def expand(self, cfg: Mapping[str, Any]) -> list[PointSpec]:
        return self._module("sweep").expand(cfg)

    def cost(self, spec: PointSpec) -> Cost:
        return self._module("sweep").cost(spec)

    def figures_for(self, cfg: Mapping[str, Any]) -> list[str]:
        return list(self._module("sweep").figures_for(cfg, self.figures))

    def analysis_options(self, cfg: Mapping[str, Any]) -> dict[str, Any]:
        own = getattr(self._module("sweep"), "analysis_options", None)
        return dict(own(cfg)) if own is not None else dict(cfg.get("analysis", {}))

    def count_parameters(self) -> tuple[str, ...]:
        return tuple(self._module("sweep").COUNT_PARAMETERS)

    def raw_variables(self) -> tuple[str, ...]:
        return tuple(self._module("sample").RAW_VARIABLES)

    def simulate(self, spec: PointSpec, shard: int = 0,
                 progress: Callable[[str], None] | None = None) -> xr.Dataset:  # fmt: skip
        return self._module("sample").simulate(spec, shard, progress)

    def merge(self, shards: Sequence[xr.Dataset]) -> xr.Dataset:
        from nnfield.engine.blocks import merge

        return merge(shards)

    def analyze(self, points: Sequence[xr.Dataset], options: Mapping[str, Any]) -> xr.Dataset:
        return self._module("analyze").analyze(points, options)

    def analyze_files(self, paths: Sequence[str | Path], options: Mapping[str, Any],
                      progress: Callable[[str], None] | None = None) -> xr.Dataset:  # fmt: skip
        return self._module("analyze").analyze_files(paths, options, progress=progress)

    def draw(self, figure: str, ds: xr.Dataset) -> Figure:
        if figure not in self.figures:
            raise ValueError(f"study {self.name} draws no figure {figure!r}; it draws "
                             f"{', '.join(self.figures)}")  # fmt: skip
        return self._module("figures").FIGURES[figure](ds)

    def caption(self, figure: str) -> str:
        path = resources.files(self.package).joinpath("captions", f"{figure}.rst")
        return path.read_text() if path.is_file() else f"Figure {figure}.\n"
