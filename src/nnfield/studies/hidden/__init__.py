"""The hidden study. Entropy production of noisy recurrent hidden-state dynamics, by subsystem,
against exact results for the linear dynamics.

Modules: sweep (config checks, points, cost), sample (simulate), analyze, figures;
see nnfield.studies.base."""

from nnfield.studies.base import PackageStudy

STUDY = PackageStudy(name="hidden", package=__name__, figures=("hidden_entropy", "seed_claims"))
