"""Mergeable statistics and their errors.

Conventions: raw data are *sums over networks* kept per block (leading ``block`` axis) together
with the number of networks in each block.  Nothing is averaged before analysis.  Errors come from
the delete-one-block jackknife, which equals the batch-means standard error for linear estimators
and handles nonlinear ones (connected correlators, ratios) with first-order bias correction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

DEFAULT_SIGNIFICANCE = 1e-3
"""Family-wise significance of every exact-theory consistency verdict unless configured."""

CRITICAL_VALUE_METHOD = (
    "max |z| over the compared values against a two-sided Bonferroni critical value from "
    "Student's t with blocks - 1 degrees of freedom (jackknife errors over blocks)"
)
"""How every stored ``*_zcrit`` is computed (``bonferroni_t`` with ``jackknife_dof``)."""


REPLICATE_COUNT = "replicate_count"
"""Key under which jackknife estimators also receive each replicate's number of networks (1 + B,):
the total, then the total without each block.  Estimators with a count-dependent bias correction
(the Wishart-corrected Gaussian entropy) must use it: correcting every replicate for the full
count makes the jackknife's own bias correction act on the difference, a bias of about the
correction itself."""


@dataclass(frozen=True)
class Estimate:
    """A jackknife estimate: bias-corrected value, standard error and the replicate spread."""

    value: np.ndarray
    stderr: np.ndarray
    naive: np.ndarray  # plug-in estimate from all blocks (no bias correction)


def replicate_means(
    block_sums: Mapping[str, np.ndarray], counts: np.ndarray
) -> dict[str, np.ndarray]:
    """The full-sample means (row 0) and the means with each block left out (rows 1..B) of
    every ``block_sums[name]`` (n_blocks, ...), ``counts`` (n_blocks,) networks per block;
    ``REPLICATE_COUNT`` (1 + B,) holds each replicate's count.  Estimators applied to them give
    ``jackknife_replicates``; computing them once lets several estimators share the work."""
    counts = np.asarray(counts, dtype=np.float64)
    n_blocks = counts.shape[0]
    if n_blocks < 2:
        raise ValueError(f"the jackknife needs at least 2 blocks, got {n_blocks}")
    total_count = counts.sum()
    means = {}
    for name, sums in block_sums.items():
        sums = np.asarray(sums, dtype=np.float64)
        total = sums.sum(axis=0)
        shape = (-1,) + (1,) * (sums.ndim - 1)
        leave_out = (total[None] - sums) / (total_count - counts).reshape(shape)
        means[name] = np.concatenate([(total / total_count)[None], leave_out], axis=0)
    means[REPLICATE_COUNT] = np.concatenate([[total_count], total_count - counts])
    return means


def jackknife_replicates(
    block_sums: Mapping[str, np.ndarray],
    counts: np.ndarray,
    estimator: Callable[[Mapping[str, np.ndarray]], np.ndarray],
) -> np.ndarray:
    """``estimator`` applied to the full-sample means (row 0) and to the means with each block
    left out (rows 1..B).

    ``block_sums[name]`` has shape (n_blocks, ...); ``counts`` has shape (n_blocks,).  The estimator
    receives the means with one extra leading axis of replicates and must return an array with
    that leading axis; ``means[REPLICATE_COUNT]`` (1 + B,) holds each replicate's count.
    """
    return np.asarray(estimator(replicate_means(block_sums, counts)), dtype=np.float64)


def from_replicates(replicates: np.ndarray) -> Estimate:
    """Bias-corrected value and standard error from ``jackknife_replicates`` output."""
    replicates = np.asarray(replicates, dtype=np.float64)
    full, partial = replicates[0], replicates[1:]
    n_blocks = partial.shape[0]
    partial_mean = partial.mean(axis=0)
    value = n_blocks * full - (n_blocks - 1) * partial_mean
    stderr = np.sqrt((n_blocks - 1) / n_blocks * ((partial - partial_mean) ** 2).sum(axis=0))
    return Estimate(value=value, stderr=stderr, naive=full)


def jackknife(
    block_sums: Mapping[str, np.ndarray],
    counts: np.ndarray,
    estimator: Callable[[Mapping[str, np.ndarray]], np.ndarray],
) -> Estimate:
    """Delete-one-block jackknife of ``estimator`` applied to ensemble means (see
    ``jackknife_replicates`` for the calling convention)."""
    return from_replicates(jackknife_replicates(block_sums, counts, estimator))


def bonferroni_z(alpha: float, n_tests: int) -> float:
    """Two-sided normal critical |z| so that the chance of any of ``n_tests`` exceeding it is
    <= alpha, for estimates whose standard errors are known exactly (not estimated).

    Valid for correlated tests (Bonferroni's inequality needs no independence).  For errors
    estimated from B blocks use ``bonferroni_t`` with B - 1 degrees of freedom.
    """
    from scipy import stats as sps  # imported here: scipy.stats costs a second per process

    return float(sps.norm.isf(alpha / (2 * n_tests)))


def bonferroni_t(alpha: float, n_tests: int, dof: float) -> float:
    """Two-sided Student-t critical |t| with ``dof`` degrees of freedom so that the chance of
    any of ``n_tests`` exceeding it is <= alpha (Bonferroni; no independence needed).

    A jackknife or batch-means standard error over B blocks has B - 1 degrees of freedom, so
    (estimate - exact) / stderr is Student-t, not normal: normal quantiles would make the
    family-wise rate several times alpha at the usual 10-100 blocks.  ``dof = inf`` gives the
    normal value.
    """
    if not dof > 0:
        raise ValueError(f"degrees of freedom must be positive, got {dof}")
    from scipy import stats as sps

    return float(sps.t.isf(alpha / (2 * n_tests), dof))


def jackknife_dof(n_blocks: int) -> int:
    """Degrees of freedom of a delete-one-block jackknife error over ``n_blocks`` blocks."""
    if n_blocks < 2:
        raise ValueError(f"the jackknife needs at least 2 blocks, got {n_blocks}")
    return int(n_blocks) - 1


@dataclass(frozen=True)
class ZTest:
    """Outcome of a max-|z| consistency test of estimates against exact values."""

    max_abs_z: float
    critical: float
    n_tests: int
    dof: float = float("inf")

    @property
    def consistent(self) -> bool:
        return self.max_abs_z <= self.critical

    def __str__(self) -> str:
        verdict = "consistent" if self.consistent else "INCONSISTENT"
        return (
            f"{verdict}: max|z| = {self.max_abs_z:.2f} over {self.n_tests} values "
            f"(critical {self.critical:.2f}, {self.dof:g} dof)"
        )


def max_z_test(
    estimate: np.ndarray,
    stderr: np.ndarray,
    exact: np.ndarray,
    alpha: float = DEFAULT_SIGNIFICANCE,
    dof: float = float("inf"),
) -> ZTest:
    """Max-|z| test at family-wise significance ``alpha`` with a Bonferroni critical value:
    Student-t with ``dof`` degrees of freedom (B - 1 for errors from B blocks), normal for
    ``dof = inf`` (exactly known errors)."""
    estimate, stderr, exact = (
        np.asarray(a, dtype=np.float64).ravel() for a in (estimate, stderr, exact)
    )
    if np.any(~np.isfinite(stderr)) or np.any(stderr <= 0):
        raise ValueError("standard errors must be finite and positive for a z-test")
    z = (estimate - exact) / stderr
    return ZTest(float(np.max(np.abs(z))), bonferroni_t(alpha, z.size, dof), int(z.size), dof)


def sampling_skewness(block_values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Estimated skewness of the sampling distribution of the mean of ``block_values``.

    The skewness of a mean of B independent block means is skew(block mean) / sqrt(B).  A value
    above ~0.5 means the estimate's distribution is visibly asymmetric, so a symmetric
    Gaussian error bar misstates the uncertainty (typically: rare huge blocks, heavy tails).
    """
    x = np.asarray(block_values, dtype=np.float64)
    n_blocks = x.shape[axis]
    from scipy import stats as sps

    skew = sps.skew(x, axis=axis, bias=False)
    return np.asarray(skew / np.sqrt(n_blocks))


def max_block_share(block_values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Largest single block's share of the total absolute deviation from the median.

    For well-behaved (Gaussian) block means this is about sqrt(2 ln B)/(B sqrt(2/pi)); one block
    carrying a large share of the spread is the signature of a heavy tail.
    """
    x = np.asarray(block_values, dtype=np.float64)
    dev = np.abs(x - np.median(x, axis=axis, keepdims=True))
    total = dev.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, dev.max(axis=axis) / total, 0.0)


def max_influence(max_value: float, block_sums: np.ndarray, counts: np.ndarray) -> float:
    """Shift of a mean caused by its largest single term, in units of its standard error.

    ``max_value`` is the largest per-network value, ``block_sums`` the per-block sums of the same
    quantity.  Removing one network of value v moves the mean of M networks by about v / M; if
    that exceeds one standard error, the estimate is dominated by rare events (a heavy tail) and
    its Gaussian error bar cannot be trusted.  NaN when it cannot be computed.
    """
    counts = np.asarray(counts, dtype=np.float64)
    est = jackknife({"s": np.asarray(block_sums)}, counts, lambda m: m["s"])
    if np.isnan(est.stderr) or np.isnan(max_value):
        return float("nan")  # cannot be computed: callers must flag, not pass
    if est.stderr == 0:
        return float("inf") if max_value > 0 else 0.0
    return float(max_value / (counts.sum() * est.stderr))
