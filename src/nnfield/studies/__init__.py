"""The registry of studies: one line per study package (nnfield.studies.base says what a
package holds).  Import-light (no JAX): the Snakefile builds the DAG from it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from typing import Any

from nnfield.studies.base import Study

REGISTRY: dict[str, str] = {
    "npoint": "nnfield.studies.npoint",
    "depth": "nnfield.studies.depth",
    "learning": "nnfield.studies.learning",
    "hidden": "nnfield.studies.hidden",
}
"""Study name -> its package, which exports ``STUDY`` (a nnfield.studies.base.Study)."""

STUDIES = tuple(REGISTRY)


@cache  # checked once per study: batching and the cost limits ask for every point
def load(study: str) -> Study:
    """The registered study ``study``."""
    if study not in REGISTRY:
        raise ValueError(f"unknown study {study!r}; known: {', '.join(REGISTRY)}")
    found = importlib.import_module(REGISTRY[study]).STUDY
    if not isinstance(found, Study) or found.name != study:
        raise TypeError(f"{REGISTRY[study]}.STUDY is not a Study named {study!r}")
    return found


def figure_study() -> dict[str, str]:
    """Figure name -> the study whose dataset it draws, over every registered study."""
    out: dict[str, str] = {}
    for name in REGISTRY:
        for figure in load(name).figures:
            if figure in out:
                raise ValueError(f"figure {figure!r} is drawn by studies {out[figure]} and {name}")
            out[figure] = name
    return out


def figures(config: Mapping[str, Any]) -> list[str]:
    """The figures a validated config makes, study by study in registry order."""
    studies = config["studies"]
    return [
        fig for name in REGISTRY if name in studies for fig in load(name).figures_for(studies[name])
    ]
