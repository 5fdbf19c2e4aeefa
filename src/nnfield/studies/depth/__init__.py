"""The depth study. Deep MLPs at initialisation: the per-layer metric and its fluctuations against
the infinite-width recursion and its 1/N corrections (the flow in depth).

Modules: sweep (config checks, points, cost), sample (simulate), analyze, figures;
see nnfield.studies.base."""

from nnfield.studies.base import PackageStudy

STUDY = PackageStudy(name="depth", package=__name__, figures=("depth_flow",))
