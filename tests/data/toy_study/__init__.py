"""The toy study: the output variance of linear random features f(x) = w . x, w ~ N(0, s^2/d),
against its exact value s^2 |x|^2 / d.  A complete study in five small modules, used by
tests/test_extending.py to show that a new study is one folder plus one registration line."""

from nnfield.studies.base import PackageStudy

STUDY = PackageStudy(name="toy", package=__name__, figures=("toy_variance",))
