"""Studies: each module exposes expand, simulate, merge, analyze and FIGURES.

This registry is import-light (no JAX), so the Snakefile can use it while building the DAG.
"""

from __future__ import annotations

import importlib
from types import ModuleType

STUDIES = ("npoint", "depth", "learning", "hidden")

FIGURE_STUDY = {
    "npoint_scaling": "npoint",
    "coupling_flow": "npoint",
    "coupling_scaling": "npoint",
    "depth_flow": "depth",
    "learning_thermo": "learning",
    "hidden_entropy": "hidden",
}
"""Figure name -> the study whose dataset it draws."""


def figures(config) -> list[str]:
    """The figures a validated config makes: those of its studies, without the coupling figures
    where ``studies.npoint.analysis.couplings.enabled`` is false (nothing to draw)."""
    studies = config["studies"]
    couplings = studies.get("npoint", {}).get("analysis", {}).get("couplings", {})
    return [
        name
        for name, study in FIGURE_STUDY.items()
        if study in studies
        and not (name.startswith("coupling_") and not couplings.get("enabled", True))
    ]


def load(study: str) -> ModuleType:
    """Import the module of ``study``."""
    if study not in STUDIES:
        raise ValueError(f"unknown study {study!r}; known: {', '.join(STUDIES)}")
    return importlib.import_module(f"nnfield.studies.{study}")
