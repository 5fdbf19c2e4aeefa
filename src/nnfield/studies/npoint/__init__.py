"""The npoint study. Output correlators of single-hidden-layer networks at initialisation: their
1/N scaling against exact finite-width theory, and the tree-level couplings of the effective
action with their flow in the input-space cutoff.

Modules: sweep (config checks, points, cost), sample (simulate), analyze, figures;
see nnfield.studies.base."""

from nnfield.studies.base import PackageStudy

STUDY = PackageStudy(
    name="npoint",
    package=__name__,
    figures=("npoint_scaling", "coupling_flow", "coupling_scaling", "action_nonlocal"),
)
