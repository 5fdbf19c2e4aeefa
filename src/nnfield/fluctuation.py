"""Integral fluctuation theorem of the total entropy production, per sample
(docs/physics.md section 3).

For a trajectory piece from record r to r+1 the total entropy production of one sample is
    Delta s_tot = ln p_r(x_r) - ln p_{r+1}(x_{r+1}) + Delta s_medium,
with p_r the ensemble density at record r and Delta s_medium the exact transition-kernel
log-ratio accumulated in between (velocities already flipped in it), and <exp(-Delta s_tot)> = 1
exactly.  Densities are Gaussian N(mean_r, cov_r): exact for linear-Gaussian dynamics, otherwise
the Gaussian fit of the whole ensemble (the same approximation as the Gaussian entropy).  The
error of the average is a bootstrap over samples.  exp(-Delta s_tot) is heavy-tailed once the
interval produces more than about a nat: the sample mean is then dominated by rare trajectories
and biased low, with a bootstrap error that does not show it.  ``converged`` marks the averages
whose effective sample size is at least MIN_ESS_FRACTION of the samples (for log-normal weights:
a log-variance below ln 4).
"""

from __future__ import annotations

import numpy as np

from nnfield.stats import Estimate

MIN_ESS_FRACTION = 0.25


def converged(ess: np.ndarray, n_samples: int) -> np.ndarray:
    """Whether fluctuation-theorem averages with these effective sample sizes can be trusted."""
    return np.asarray(ess) >= MIN_ESS_FRACTION * n_samples


def gaussian_log_density(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """ln N(x; mean, cov) for x (N, D)."""
    d = mean.shape[-1]
    chol = np.linalg.cholesky(cov)
    u = np.linalg.solve(chol, (x - mean).T)
    log_det = 2 * np.sum(np.log(np.diag(chol)))
    return -0.5 * (np.sum(u * u, axis=0) + log_det + d * np.log(2 * np.pi))


def interval_entropy_production(
    states: np.ndarray, medium: np.ndarray, means: np.ndarray, covs: np.ndarray
) -> np.ndarray:
    """Delta s_tot (N, R-1) between consecutive records from states (N, R, D), accumulated
    medium entropy (N, R) and the Gaussian densities (R, D), (R, D, D) at the records."""
    log_p = np.stack(
        [gaussian_log_density(states[:, r], means[r], covs[r]) for r in range(means.shape[0])],
        axis=1,
    )
    return log_p[:, :-1] - log_p[:, 1:] + np.diff(medium, axis=1)


def bootstrap_mean_exp(
    delta: np.ndarray, n_boot: int = 500, seed: int = 0
) -> tuple[Estimate, np.ndarray]:
    """<exp(-delta)> over the first axis of ``delta`` (N, ...), with its bootstrap standard error
    (``n_boot`` resamples from a fixed seed: the same numbers every run), and the effective
    sample size (sum w)^2 / sum w^2 of the weights w = exp(-delta) (small: the average is
    dominated by rare samples and the error bar is not to be trusted).  The effective sample
    size is computed from the log-weights, so it stays in [1, N] where every weight under- or
    overflows (then the average itself is 0 or inf, and the ESS says why)."""
    from scipy.special import logsumexp

    log_w = -np.asarray(delta, dtype=np.float64)
    w = np.exp(log_w)
    n = w.shape[0]
    rng = np.random.default_rng(seed)
    boots = np.stack([w[rng.integers(0, n, n)].mean(axis=0) for _ in range(n_boot)])
    value = w.mean(axis=0)
    with np.errstate(invalid="ignore"):
        ess = np.exp(2 * logsumexp(log_w, axis=0) - logsumexp(2 * log_w, axis=0))
    return Estimate(value=value, stderr=boots.std(axis=0, ddof=1), naive=value), ess
