"""The learning study. Thermodynamics of noisy learning: ensembles of networks trained by SGLD, SGD
or momentum, their entropy production and fluctuation relations against exact results.

Modules: sweep (config checks, points, cost), sample (simulate), analyze, figures;
see nnfield.studies.base."""

from nnfield.studies.base import PackageStudy

STUDY = PackageStudy(
    name="learning", package=__name__, figures=("learning_thermo", "seed_claims_learning")
)
