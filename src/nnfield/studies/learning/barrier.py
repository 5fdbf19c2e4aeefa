"""Barrier points of the ``learning`` study: SGLD on a non-quadratic loss with an exact density.

A ``barrier`` problem trains one- or two-dimensional "networks" q by SGLD, or one-dimensional
ones by momentum (BAOAB; the state is then the phase-space point (q, p) and the energy
U + p^2/2), on the harmonic trap with a Gaussian barrier (nnfield.studies.learning.potential): two
wells, so p_t
is non-Gaussian (bimodal) and the discrete chain breaks detailed balance.
nnfield.studies.learning.grid_chain propagates p_t exactly on a grid, which gives exact values of
everything the Monte Carlo estimates.  Per record (jackknife
errors over blocks for means and the Gaussian entropy; batch-means errors over blocks for the
k-NN entropy and what is built from it, see ``batch_estimate``):
  entropy = Kozachenko-Leonenko (k-NN) entropy of all networks (the primary estimate);
  entropy_gaussian = the bias-corrected Gaussian entropy, whose exact value is the Gaussian
  entropy of the exact covariance, 1/2 ln det(2 pi e Sigma_t) >= S: the Gaussian bias;
  medium, pi (k-NN), pi_gaussian, free_energy (k-NN), kl_to_stationary = -S - <ln pi_eta(q)>
  (k-NN entropy, the grid's stationary density at the samples), shadow_work, and per interval
  the fluctuation-theorem average ift with the exact grid densities (bootstrap error).
``pi_stationary_exact`` is the exact Pi of the stationary state, > 0 for discrete SGLD and
for momentum (whose splitting has no exact invariant energy when U is not quadratic).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from nnfield import stats
from nnfield.entropy import entropy_from_covariance, knn_entropy, sample_covariance

INITIAL = {"narrow": (1.0, 0.2**2), "broad": (0.0, 1.0)}
"""Initial ensembles of barrier problems: (mean, variance) of every coordinate."""
KNN_NEIGHBOURS = 4


def dynamics(p: Mapping):
    """NoisyPotential (sgld) or HeavyBallPotential (momentum, one dimension: the state is
    (q, p)) of a barrier point's parameters (A rotated as for quadratic problems)."""
    from nnfield.studies.learning.potential import (
        BarrierPotential,
        HeavyBallPotential,
        NoisyPotential,
    )

    eig = np.asarray(p["hessian_eigenvalues"], dtype=np.float64)
    rot = np.eye(eig.size)
    if eig.size == 2:
        c, s = np.cos(p["rotation"]), np.sin(p["rotation"])
        rot = np.array([[c, -s], [s, c]])
    pot = BarrierPotential(rot @ np.diag(eig) @ rot.T, float(p["barrier"]),
                           float(p["barrier_width"]))  # fmt: skip
    rate, temp = float(p["learning_rate"]), float(p["temperature"])
    if p["optimizer"] == "momentum":
        return HeavyBallPotential(pot, rate, temp, float(p["momentum"]))
    return NoisyPotential(pot, rate, temp)


def initial_ensemble(p: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the initial Gaussian ensemble of a barrier point; with momentum
    the state is (q, p) and p starts from N(0, T), as for teacher-student momentum."""
    dim = len(p["hessian_eigenvalues"])
    mean, var = INITIAL[p["initial"]]
    if p["optimizer"] == "momentum":
        return np.array([mean, 0.0]), np.diag([var, float(p["temperature"])])
    return np.full(dim, mean), var * np.eye(dim)


def grid_chain(p: Mapping):
    """The exact grid chain of a barrier point (covering its initial ensemble): GridChain for
    SGLD, PhaseSpaceChain on (q, p) for momentum."""
    from nnfield.studies.learning.grid_chain import GridChain, PhaseSpaceChain

    mean, cov = initial_ensemble(p)
    chain = PhaseSpaceChain if p["optimizer"] == "momentum" else GridChain
    return chain.covering(dynamics(p), [mean], [np.diag(cov)])


def _knn_per_block(states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """k-NN entropy per record of states (B, R, S, D): from all networks (R,) and from each
    block's networks alone (B, R)."""
    b, r, s, d = states.shape
    full = np.array([knn_entropy(states[:, i].reshape(b * s, d), k=KNN_NEIGHBOURS).value
                     for i in range(r)])  # fmt: skip
    blocks = np.array([[knn_entropy(states[j, i], k=KNN_NEIGHBOURS).value for i in range(r)]
                       for j in range(b)])  # fmt: skip
    return full, blocks


def batch_estimate(full: np.ndarray, per_block: np.ndarray) -> stats.Estimate:
    """The all-networks value with a batch-means error: the spread of the same estimate on
    each of B equal blocks over sqrt(B) (B - 1 degrees of freedom).

    Used for the k-NN entropy and everything built from it.  The delete-one-block jackknife
    of a nearest-neighbour statistic is miscalibrated (deleting a block moves every other
    point's neighbours): on a bimodal test density (M = 6000, B = 20) its bias-corrected value
    scattered 1.49 times its stated error (150 trials), and on the stationary law of the
    barrier chain its error overstated the scatter of the whole-sample value 1.44-fold.  The
    k-NN variance scales as 1/M, so blocks of M/B points give the spread of the whole-sample
    value times sqrt(B): z scattered 1.10 (200 trials, t with 19 dof: 1.06).  The blocks'
    own finite-sample bias enters the spread, not the value."""
    n_blocks = per_block.shape[0]
    stderr = per_block.std(axis=0, ddof=1) / np.sqrt(n_blocks)
    return stats.Estimate(value=full, stderr=stderr, naive=full)


def gaussian_entropy_of(masses: np.ndarray, points: np.ndarray) -> float:
    """Gaussian entropy 1/2 ln det(2 pi e Sigma) of the covariance of the grid density."""
    mean = masses @ points
    cov = np.atleast_2d((points - mean).T @ ((points - mean) * masses[:, None]))
    return 0.5 * float(np.linalg.slogdet(2 * np.pi * np.e * cov)[1])


def estimates(ds: xr.Dataset, p: Mapping) -> tuple[dict, dict, dict]:
    """(jackknife estimates, exact values, extras) of one barrier point."""
    from nnfield.fluctuation import bootstrap_mean_exp
    from nnfield.studies.learning.grid_chain import exact_path

    chain = grid_chain(p)
    temp = float(p["temperature"])
    mean0, cov0 = initial_ensemble(p)
    steps = ds["step"].values
    gaps = np.diff(steps).astype(float)
    ex = exact_path(chain, chain.gaussian(mean0, np.diag(cov0)), steps)
    counts = ds["count"].values
    sums = {k: ds[k].values for k in ("q1", "qq", "loss", "medium")}
    states = ds["sample_state"].values  # (B, R, S, D): every network of each block
    if states.shape[2] != int(p["block_size"]):
        raise ValueError(f"{ds.attrs.get('point')}: barrier points keep every network's state")

    def gaussian(m):
        count = m[stats.REPLICATE_COUNT]
        return entropy_from_covariance(sample_covariance(m["q1"], m["qq"], count), count)

    counts = counts.astype(np.float64)
    if np.any(counts != counts[0]):
        raise ValueError(f"{ds.attrs.get('point')}: batch errors need blocks of equal size")
    # per block (B, R) and over all networks (R,): medium, loss, k-NN entropy, <ln pi_eta>
    medium_b, loss_b = sums["medium"] / counts[:, None], sums["loss"] / counts[:, None]
    medium, loss = medium_b.mean(axis=0), loss_b.mean(axis=0)
    knn, knn_b = _knn_per_block(states)
    log_pi = chain.log_density(chain.stationary)
    b, r, s, d = states.shape
    cross_b = log_pi(states.reshape(-1, d)).reshape(b, r, s).mean(axis=2)
    cross = cross_b.mean(axis=0)

    def both(fn):
        return batch_estimate(fn(knn, medium, loss, cross), fn(knn_b, medium_b, loss_b, cross_b))

    def free(h, med, u, c):
        return u - temp * h

    def kl(h, med, u, c):
        return -h - c

    est = {
        "loss": stats.jackknife(sums, counts, lambda m: m["loss"]),
        "medium": stats.jackknife(sums, counts, lambda m: m["medium"]),
        "entropy": batch_estimate(knn, knn_b),
        "entropy_gaussian": stats.jackknife(sums, counts, gaussian),
        "pi": both(lambda h, med, u, c: (np.diff(h) + np.diff(med)) / gaps),
        "pi_gaussian": stats.jackknife(
            sums, counts, lambda m: (np.diff(gaussian(m)) + np.diff(m["medium"])) / gaps
        ),
        "free_energy": both(free),
        "free_energy_change": both(lambda *a: np.diff(free(*a))),
        "shadow_work": stats.jackknife(
            sums, counts, lambda m: np.diff(m["loss"]) + temp * np.diff(m["medium"])
        ),
        "kl_to_stationary": both(kl),
    }
    # caustics: the mean trajectory of heavy ball on a bare trap from a start off 0 (3.5)
    if p["optimizer"] == "momentum" and p["barrier"] == 0 and p["initial"] == "narrow":
        est["mean_position"] = stats.jackknife(sums, counts, lambda m: m["q1"][..., 0])
    gauss_exact = np.array([gaussian_entropy_of(m, chain.points) for m in ex["masses"]])
    exact = {
        "loss": ex["loss"],
        "medium": ex["medium"],
        "entropy": ex["entropy"],
        "entropy_gaussian": gauss_exact,
        "pi": (np.diff(ex["entropy"]) + np.diff(ex["medium"])) / gaps,
        "pi_gaussian": (np.diff(gauss_exact) + np.diff(ex["medium"])) / gaps,
        "free_energy": ex["loss"] - temp * ex["entropy"],
        "free_energy_change": np.diff(ex["loss"] - temp * ex["entropy"]),
        "shadow_work": np.diff(ex["loss"]) + temp * np.diff(ex["medium"]),
        "kl_to_stationary": ex["kl_to_stationary"],
    }
    if "mean_position" in est:
        exact["mean_position"] = np.asarray(ex["masses"]) @ chain.points[:, 0]
    extras: dict = {
        "d_kl": both(lambda *a: np.diff(kl(*a))),
        "d_free": est["free_energy_change"],
        "pi_stationary_exact": chain.stationary_entropy_production(),
        "grid_points": np.asarray(chain.shape),
    }
    sampled = states.transpose(0, 2, 1, 3).reshape(b * s, r, d)
    medium = ds["sample_medium"].values.transpose(0, 2, 1).reshape(b * s, r)
    log_p = np.stack([chain.log_density(ex["masses"][i])(sampled[:, i]) for i in range(r)], axis=1)
    delta = log_p[:, :-1] - log_p[:, 1:] + np.diff(medium, axis=1)
    est["ift"], extras["ift_ess"] = bootstrap_mean_exp(delta)
    return est, exact, extras
