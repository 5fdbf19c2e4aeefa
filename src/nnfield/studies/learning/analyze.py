"""Study ``learning``: thermodynamics of ensembles trained by noisy gradient descent
(docs/physics.md section 3).

Three kinds of problem:
- ``barrier``: one- or two-dimensional q trained by SGLD, or one-dimensional q by heavy-ball
  momentum (BAOAB; the state is then (q, p) and U means the energy U + p^2/2), on a harmonic
  trap with a Gaussian barrier (two wells, non-Gaussian p_t), against the exact density
  propagated on a grid (studies.learning.barrier, studies.learning.grid_chain); entropies by
  k-NN, with the Gaussian estimate and its bias alongside;
- ``quadratic``: U = q^T A q / 2 trained by SGLD (temperature T) or SGD-like anisotropic noise
  (nnfield.studies.learning.dynamics), every observable against the exact linear-Gaussian theory
  (nnfield.theory.thermo);
- ``teacher_student``: networks of width N and depth L regressing a seeded teacher, trained by
  SGLD, minibatch SGD or SGD with momentum (studies.learning.teacher_student,
  studies.learning.teacher).
Per recorded step, with delete-one-block jackknife errors:
  loss = <U>;  S = entropy of the state (nats): Gaussian, bias-corrected (quadratic: exact
  family; teacher-student: an upper bound) or k-NN (barrier), named per point by the coordinate
  ``entropy_estimator``;
  medium = accumulated medium entropy (heat / T), from the exact transition-kernel log-ratio;
  pi = total entropy production per step between records, (Delta S + Delta medium) / steps;
  free_energy = <U> - T S;  tconf_ratio = <|grad U|^2> / (<lap U> T);
  ift = <exp(-Delta s_tot)> per interval from the sampled networks (bootstrap error; exact
  densities for quadratic problems, Gaussian fits otherwise, see nnfield.fluctuation).
  shadow_work = <Delta U> + T <Delta s_medium> per interval (the integrator's shadow work,
  Sivak, Chodera and Crooks 2013; with momentum U includes |p|^2/2), so that exactly
  Delta F = -T Pi (steps) + shadow_work;
  kl_to_stationary = KL(p_t || pi_eta) to the chain's own stationary law (quadratic problems:
  the Gaussian of the discrete Lyapunov equation, N(0, T A^-1 (I - eta A/2)^-1) for SGLD).
The second laws that hold for every Markov chain are asserted in analyze and reported, never
clipped: ``pi_violation`` counts intervals with Pi < 0 and ``kl_violation`` intervals where the
KL to the stationary law rises, beyond the critical value.  dF <= 0 is NOT a theorem at finite
step size (dF = -T Pi + <W_shadow>, and W_shadow has either sign): ``free_energy_violation``
counts the intervals where F rises, as a measurement; ``free_energy_asserted`` is 0.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from nnfield import stats
from nnfield.config import PointSpec
from nnfield.engine.blocks import (
    analyze_each,
    drop_nonfinite_blocks,
)
from nnfield.engine.store import annotate, provenance
from nnfield.entropy import entropy_from_covariance, sample_covariance
from nnfield.studies.learning import claims
from nnfield.studies.learning.claims import CLAIMS_META
from nnfield.studies.learning.problems import (
    center_covariance,
    initial_ensemble,
    problem,
    stationary_covariance,
)
from nnfield.studies.learning.sample import RAW_VARIABLES

log = logging.getLogger(__name__)


def _kl_to(mean_q: np.ndarray, second_q: np.ndarray, entropy_q, sigma: np.ndarray):
    """KL(p || N(0, sigma)) = -S(p) - <ln N(q; 0, sigma)> from p's entropy and its second moment
    E[q q^T] (..., n, n) (the mean enters only through it)."""
    inv = np.linalg.inv(sigma)
    _, logdet = np.linalg.slogdet(2 * np.pi * sigma)
    return -entropy_q + 0.5 * np.einsum("ij,...ji->...", inv, second_q) + 0.5 * logdet


def _entropy(m):
    """Bias-corrected Gaussian entropy (nnfield.entropy) from the means of q and q q^T of the
    jackknife replicates, each corrected for its own count (stats.REPLICATE_COUNT)."""
    count = m[stats.REPLICATE_COUNT]
    return entropy_from_covariance(sample_covariance(m["q1"], m["qq"], count), count)


def _exact(dyn, mean0, cov0, steps: np.ndarray, hessian: np.ndarray) -> dict[str, np.ndarray]:
    """Exact loss, entropy, accumulated medium entropy, T_conf numerator, means and
    covariances at ``steps``."""
    from nnfield.theory.thermo import LinearGaussianStep, gaussian_entropy

    step = LinearGaussianStep(dyn.transition, dyn.noise)
    mean, cov, produced = mean0, cov0, 0.0
    out = {k: [] for k in ("loss", "entropy", "medium", "grad2", "means", "covs")}
    s0 = gaussian_entropy(cov0)
    recorded = set(steps.tolist())
    for n in range(int(steps[-1]) + 1):
        if n in recorded:
            out["loss"].append(0.5 * (np.trace(hessian @ cov) + mean @ hessian @ mean))
            out["entropy"].append(gaussian_entropy(cov))
            out["medium"].append(produced - (gaussian_entropy(cov) - s0))
            g = hessian @ hessian
            out["grad2"].append(np.trace(g @ cov) + mean @ g @ mean)
            out["means"].append(mean)
            out["covs"].append(cov)
        produced += step.entropy_production(mean, cov)
        mean, cov = step.propagate(mean, cov)
    return {k: np.asarray(v) for k, v in out.items()}


def _joint_moments(m) -> tuple[np.ndarray, np.ndarray]:
    """Means of z = (q, q*) and of z z^T from the means of q, q q^T, q*, q* q*^T, q q*^T."""
    first = np.concatenate([m["q1"], m["c1"]], axis=-1)
    qc = m["qc"]
    second = np.concatenate(
        [np.concatenate([m["qq"], qc], axis=-1),
         np.concatenate([np.swapaxes(qc, -1, -2), m["cc"]], axis=-1)], axis=-2)  # fmt: skip
    return first, second


def _gauss(first, second, count):
    return entropy_from_covariance(sample_covariance(first, second, count), count)


def _disorder_exact(dyn, mean0, cov0, center, steps, hessian) -> dict[str, np.ndarray]:
    """Exact values with quenched minima q* ~ N(0, center): the joint (q, q*) is
    linear-Gaussian, z' = [[M, I - M], [0, I]] z + (xi, 0); r = q - q* is the plain chain (the
    medium entropy and the loss depend on r alone)."""
    from nnfield.theory.thermo import LinearGaussianStep, gaussian_entropy

    n = hessian.shape[0]
    m = dyn.transition
    plain = LinearGaussianStep(m, dyn.noise)
    zeros = np.zeros((n, n))
    joint = np.block([[m, np.eye(n) - m], [zeros, np.eye(n)]])
    joint_noise = np.block([[dyn.noise, zeros], [zeros, zeros]])
    mean_z, cov_z = np.concatenate([mean0, np.zeros(n)]), np.block([[cov0, zeros], [zeros, center]])
    mean_r, cov_r = mean0, cov0 + center
    h_center = gaussian_entropy(center)
    names = ("loss", "entropy", "entropy_marginal", "medium", "grad2", "second", "means", "covs")
    out: dict[str, list] = {k: [] for k in names}
    medium = 0.0
    recorded = set(steps.tolist())
    for k in range(int(steps[-1]) + 1):
        if k in recorded:
            out["loss"].append(0.5 * (np.trace(hessian @ cov_r) + mean_r @ hessian @ mean_r))
            g = hessian @ hessian
            out["grad2"].append(np.trace(g @ cov_r) + mean_r @ g @ mean_r)
            out["entropy"].append(gaussian_entropy(cov_z) - h_center)
            out["entropy_marginal"].append(gaussian_entropy(cov_z[:n, :n]))
            out["medium"].append(medium)
            out["second"].append(cov_z + np.outer(mean_z, mean_z))
            out["means"].append(mean_z)
            out["covs"].append(cov_z)
        new_mean, new_cov = plain.propagate(mean_r, cov_r)
        medium += plain.entropy_production(mean_r, cov_r) - (
            gaussian_entropy(new_cov) - gaussian_entropy(cov_r)
        )
        mean_r, cov_r = new_mean, new_cov
        mean_z = joint @ mean_z
        cov_z = joint @ cov_z @ joint.T + joint_noise
    return {k: np.asarray(v) for k, v in out.items()}


def _quadratic_estimates(ds: xr.Dataset, p: Mapping) -> tuple[dict, dict, dict]:
    """(jackknife estimates, exact values, extras) of one quadratic point."""
    if "cc" in ds:
        return _disorder_estimates(ds, p)
    from nnfield.fluctuation import bootstrap_mean_exp, interval_entropy_production

    dyn, hessian, temp = problem(p)
    mean0, cov0 = initial_ensemble(p)
    counts = ds["count"].values
    steps = ds["step"].values
    gaps = np.diff(steps).astype(float)
    sums = {k: ds[k].values for k in ("q1", "qq", "loss", "grad2", "medium")}
    lap = float(np.trace(hessian))

    def pi(m):
        s = _entropy(m)
        return (np.diff(s, axis=-1) + np.diff(m["medium"], axis=-1)) / gaps

    sigma = stationary_covariance(p)

    def kl(m):
        return _kl_to(m["q1"], m["qq"], _entropy(m), sigma)

    est = {
        "loss": stats.jackknife(sums, counts, lambda m: m["loss"]),
        "entropy": stats.jackknife(sums, counts, lambda m: _entropy(m)),
        "medium": stats.jackknife(sums, counts, lambda m: m["medium"]),
        "pi": stats.jackknife(sums, counts, pi),
        "kl_to_stationary": stats.jackknife(sums, counts, kl),
    }
    ex = _exact(dyn, mean0, cov0, steps, hessian)
    second = ex["covs"] + ex["means"][:, :, None] * ex["means"][:, None, :]
    exact = {
        "loss": ex["loss"],
        "entropy": ex["entropy"],
        "medium": ex["medium"],
        "pi": (np.diff(ex["entropy"]) + np.diff(ex["medium"])) / gaps,
        "kl_to_stationary": _kl_to(ex["means"], second, ex["entropy"], sigma),
    }
    extras: dict = {
        "d_kl": stats.jackknife(sums, counts, lambda m: np.diff(kl(m), axis=-1)),
    }
    claim_est, claim_exact, extras["claims"] = claims.quadratic_claims(
        sums, counts, p, dyn, hessian, temp, ex, steps
    )
    est.update(claim_est)
    exact.update(claim_exact)
    if np.isfinite(temp):
        est["free_energy"] = stats.jackknife(sums, counts, lambda m: m["loss"] - temp * _entropy(m))
        est["tconf_ratio"] = stats.jackknife(sums, counts, lambda m: m["grad2"] / (lap * temp))
        exact["free_energy"] = ex["loss"] - temp * ex["entropy"]
        exact["tconf_ratio"] = ex["grad2"] / (lap * temp)
        est["free_energy_change"] = extras["d_free"] = stats.jackknife(
            sums, counts, lambda m: np.diff(m["loss"] - temp * _entropy(m), axis=-1)
        )
        est["shadow_work"] = stats.jackknife(
            sums, counts, lambda m: np.diff(m["loss"], axis=-1) + temp * np.diff(m["medium"])
        )
        exact["free_energy_change"] = np.diff(exact["free_energy"])
        exact["shadow_work"] = np.diff(ex["loss"]) + temp * np.diff(ex["medium"])
    if "sample_state" in ds and ds.sizes.get("sample", 0) > 0:
        states = ds["sample_state"].values  # (B, R, S, D)
        b, r, s, d = states.shape
        states = states.transpose(0, 2, 1, 3).reshape(b * s, r, d)
        medium = ds["sample_medium"].values.transpose(0, 2, 1).reshape(b * s, r)
        delta = interval_entropy_production(states, medium, ex["means"], ex["covs"])
        est["ift"], extras["ift_ess"] = bootstrap_mean_exp(delta)
    return est, exact, extras


def _disorder_estimates(ds: xr.Dataset, p: Mapping) -> tuple[dict, dict, dict]:
    """A quadratic point with quenched data disorder (each network its own minimum q*):
    S = H(q | q*) = H(q, q*) - H(q*), the entropy of each network's parameters given its data,
    so that Pi, F, the shadow work and the KL (of the Markov state (q, q*)) are those of the
    networks' own chains; entropy_marginal = H(q); information = I(q_t; q*) = H(q) - H(q | q*);
    information_bound = H(q_t) - H(q_0) + Delta s_medium >= I (Goldt and Seifert 2017;
    equivalently the accumulated conditional Pi >= 0); learning_efficiency = I / bound."""
    from nnfield.theory.thermo import gaussian_entropy

    dyn, hessian, temp = problem(p)
    mean0, cov0 = initial_ensemble(p)
    center = center_covariance(p)
    counts = ds["count"].values
    steps = ds["step"].values
    gaps = np.diff(steps).astype(float)
    sums = {k: ds[k].values for k in ("q1", "qq", "c1", "cc", "qc", "loss", "medium")}
    n = hessian.shape[0]
    sigma = stationary_covariance(p)
    stationary = np.block([[sigma + center, center], [center, center]])

    def marginal(m):
        return _gauss(m["q1"], m["qq"], m[stats.REPLICATE_COUNT])

    def conditional(m):
        count = m[stats.REPLICATE_COUNT]
        return _gauss(*_joint_moments(m), count) - _gauss(m["c1"], m["cc"], count)

    def kl(m):
        first, second = _joint_moments(m)
        joint = conditional(m) + _gauss(m["c1"], m["cc"], m[stats.REPLICATE_COUNT])
        return _kl_to(first, second, joint, stationary)

    def bound(m):
        s = marginal(m)
        return s - s[..., :1] + m["medium"]

    def free(m):
        return m["loss"] - temp * conditional(m)

    est = {
        "loss": stats.jackknife(sums, counts, lambda m: m["loss"]),
        "entropy": stats.jackknife(sums, counts, conditional),
        "entropy_marginal": stats.jackknife(sums, counts, marginal),
        "medium": stats.jackknife(sums, counts, lambda m: m["medium"]),
        "pi": stats.jackknife(
            sums, counts, lambda m: (np.diff(conditional(m)) + np.diff(m["medium"])) / gaps
        ),
        "kl_to_stationary": stats.jackknife(sums, counts, kl),
        "free_energy": stats.jackknife(sums, counts, free),
        "free_energy_change": stats.jackknife(sums, counts, lambda m: np.diff(free(m))),
        "shadow_work": stats.jackknife(
            sums, counts, lambda m: np.diff(m["loss"]) + temp * np.diff(m["medium"])
        ),
        "information": stats.jackknife(sums, counts, lambda m: marginal(m) - conditional(m)),
        "information_bound": stats.jackknife(sums, counts, bound),
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        est["learning_efficiency"] = stats.jackknife(
            sums, counts, lambda m: (marginal(m) - conditional(m)) / bound(m)
        )
    ex = _disorder_exact(dyn, mean0, cov0, center, steps, hessian)
    h_joint = ex["entropy"] + gaussian_entropy(center)
    exact = {
        "loss": ex["loss"],
        "entropy": ex["entropy"],
        "entropy_marginal": ex["entropy_marginal"],
        "medium": ex["medium"],
        "pi": (np.diff(ex["entropy"]) + np.diff(ex["medium"])) / gaps,
        "kl_to_stationary": _kl_to(None, ex["second"], h_joint, stationary),
        "free_energy": ex["loss"] - temp * ex["entropy"],
        "free_energy_change": np.diff(ex["loss"] - temp * ex["entropy"]),
        "shadow_work": np.diff(ex["loss"]) + temp * np.diff(ex["medium"]),
        "information": ex["entropy_marginal"] - ex["entropy"],
        "information_bound": ex["entropy_marginal"] - ex["entropy_marginal"][0] + ex["medium"],
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        exact["learning_efficiency"] = exact["information"] / exact["information_bound"]
    est["learning_efficiency"] = _nan_at_start(est["learning_efficiency"])
    exact["learning_efficiency"][0] = np.nan
    if ds.sizes.get("sample", 0) > 0:
        est["ift"], ift_ess = _disorder_ift(ds, ex["means"], ex["covs"], n)
    extras = {
        "d_kl": stats.jackknife(sums, counts, lambda m: np.diff(kl(m), axis=-1)),
        "d_free": est["free_energy_change"],
        "information_excess": stats.jackknife(
            sums, counts, lambda m: marginal(m) - conditional(m) - bound(m)
        ),
    }
    if "ift" in est:
        extras["ift_ess"] = ift_ess
    return est, exact, extras


def _disorder_ift(ds: xr.Dataset, means, covs, n: int):
    """<exp(-Delta s_tot)> per interval with the exact conditional densities p_t(q | q*) of
    each sampled network (its own chain; q alone is not Markov), bootstrap error."""
    from nnfield.fluctuation import bootstrap_mean_exp, gaussian_log_density

    states = ds["sample_state"].values  # (B, R, S, n)
    centers = ds["sample_center"].values
    b, r, s, _ = states.shape
    states = states.transpose(0, 2, 1, 3).reshape(b * s, r, n)
    centers = centers.transpose(0, 2, 1, 3).reshape(b * s, r, n)
    medium = ds["sample_medium"].values.transpose(0, 2, 1).reshape(b * s, r)
    log_p = np.empty((b * s, r))
    for i in range(r):
        mean, cov = means[i], covs[i]
        gain = cov[:n, n:] @ np.linalg.inv(cov[n:, n:])
        cond_cov = cov[:n, :n] - gain @ cov[n:, :n]
        cond_mean = mean[:n] + (centers[:, i] - mean[n:]) @ gain.T
        log_p[:, i] = gaussian_log_density(states[:, i] - cond_mean, np.zeros(n), cond_cov)
    return bootstrap_mean_exp(log_p[:, :-1] - log_p[:, 1:] + np.diff(medium, axis=1))


def _nan_at_start(e: stats.Estimate) -> stats.Estimate:
    """The estimate with step 0 (0 / 0) set to NaN."""
    value, stderr, naive = (np.array(a, dtype=float) for a in (e.value, e.stderr, e.naive))
    value[0] = stderr[0] = naive[0] = np.nan
    return stats.Estimate(value, stderr, naive)


INTERVAL_VARIABLES = ("pi", "pi_gaussian", "ift", "shadow_work", "free_energy_change")
ASSERTED = ("pi_violation", "kl_violation")
"""Second laws that hold for every Markov chain at any step size (warned about when broken)."""


def _violations(value: np.ndarray, bound: np.ndarray, sign: int) -> int:
    """Entries beyond ``bound`` (sign 1: above it, -1: below it), counting every entry that
    cannot be checked (NaN value or error) as a violation: a check fails closed."""
    with np.errstate(invalid="ignore"):
        within = sign * np.asarray(value) <= sign * np.asarray(bound)
    return int(np.sum(~within))


def analyze_point(ds: xr.Dataset, options: Mapping) -> xr.Dataset:
    """Per-point thermodynamics over (step, interval), with the second-law verdicts."""
    import json

    from nnfield.studies.learning import barrier as learning_barrier
    from nnfield.studies.learning import teacher as learning_teacher

    p = PointSpec.from_json(str(ds.attrs["params"])).params
    ds, nonfinite, dropped = drop_nonfinite_blocks(ds)
    if p["kind"] == "teacher_student":
        est, exact, extras = learning_teacher.estimates(ds, p)
    elif p["kind"] == "barrier":
        est, exact, extras = learning_barrier.estimates(ds, p)
    else:
        est, exact, extras = _quadratic_estimates(ds, p)
    steps = ds["step"].values
    out = xr.Dataset(coords={"step": steps, "interval": (steps[1:] + steps[:-1]) / 2})
    for name, e in est.items():
        dims = ("interval",) if name in INTERVAL_VARIABLES else ("step",)
        dims = dims if np.ndim(e.value) else ()
        out[name] = (dims, e.value)
        out[f"{name}_se"] = (dims, e.stderr)
    for name, value in exact.items():
        dims = ("interval",) if name in INTERVAL_VARIABLES else ("step",)
        out[f"{name}_exact"] = (dims if np.ndim(value) else (), value)
    for name, value in extras.get("claims", {}).items():
        out[name] = (("step",) if np.ndim(value) else (), value)
    alpha = float(options.get("significance", stats.DEFAULT_SIGNIFICANCE))
    dof = stats.jackknife_dof(ds.sizes["block"])
    if "mean_position" in est:
        crit_mean = stats.bonferroni_t(alpha, len(steps), dof)
        found = claims.caustic_variables(est["mean_position"], exact["mean_position"], p, crit_mean)
        out.update({name: ((), value) for name, value in found.items()})
    if "pi_stationary_exact" in extras:
        out["pi_stationary_exact"] = ((), float(extras["pi_stationary_exact"]))
    if "ift_ess" in extras:
        out["ift_ess"] = (("interval",), extras["ift_ess"])
    if "ift_one_step_ess" in extras:
        out["ift_one_step_ess"] = ((), extras["ift_one_step_ess"])
        out["ift_one_step_samples"] = ((), np.int64(extras["ift_one_step_samples"]))
    if "ift_from_start_ess" in extras:
        out["ift_from_start_ess"] = (("step",), extras["ift_from_start_ess"])
    out["ift_samples"] = ((), np.int64(ds.sizes["block"] * ds.sizes.get("sample", 0)))
    crit = stats.bonferroni_t(alpha, max(len(steps) - 1, 1), dof)
    violations = {"pi_violation": -1, "kl_violation": -1, "free_energy_violation": -1}
    if "pi" in est:
        violations["pi_violation"] = _violations(est["pi"].value, -crit * est["pi"].stderr, -1)
    if "d_kl" in extras:
        d_kl = extras["d_kl"]
        violations["kl_violation"] = _violations(d_kl.value, crit * d_kl.stderr, 1)
    if "information_excess" in extras:
        excess = extras["information_excess"]  # I - bound <= 0 (Goldt-Seifert)
        count = _violations(excess.value, crit * excess.stderr, 1)
        out["information_violation"] = ((), np.int32(count))
        if count:
            log.warning("%s: I > Delta S + Delta S_medium at %d records (information bound "
                        "failed)", ds.attrs.get("point"), count)  # fmt: skip
    if "d_free" in extras:
        d_free = extras["d_free"]
        violations["free_energy_violation"] = _violations(d_free.value, crit * d_free.stderr, 1)
    for flag, count in violations.items():
        out[flag] = ((), np.int32(count))
        if count > 0 and flag in ASSERTED:
            log.warning("%s: %s in %d intervals (second law check failed)",
                        ds.attrs.get("point"), flag, count)  # fmt: skip
        elif count > 0:
            log.info("%s: F rises in %d intervals (allowed at finite step size: dF = -T Pi + "
                     "<W_shadow>)", ds.attrs.get("point"), count)  # fmt: skip
    out["free_energy_asserted"] = ((), np.int8(0))
    out["jackknife_dof"] = ((), np.int64(dof))
    out["nonfinite"] = ((), np.int64(nonfinite))
    out["dropped_blocks"] = ((), np.int64(dropped))
    out.attrs["params"] = json.dumps(p, sort_keys=True)
    return out


ANALYSIS_META = {
    "loss": ("ensemble mean loss <U>", "1"),
    "test_loss": ("ensemble mean test loss against the noiseless teacher", "1"),
    "entropy": ("entropy of the state (trainable variables, and momenta), by the estimator "
                "named in entropy_estimator", "nats"),
    "entropy_function": ("Gaussian entropy of the outputs on the probe inputs", "nats"),
    "entropy_function_knn": ("k-nearest-neighbour entropy of the outputs on the probe inputs",
                             "nats"),
    "medium": ("accumulated medium entropy (heat / T) from the transition-kernel log-ratio",
               "nats"),
    "pi": ("total entropy production per step between records", "nats"),
    "free_energy": ("non-equilibrium free energy <U + |p|^2/2> - T S", "1"),
    "tconf_ratio": ("configurational temperature over T, <|grad U|^2> / (<lap U> T)", "1"),
    "ift": ("fluctuation theorem average <exp(-Delta s_tot)> over the interval (exactly 1; "
            "with the exact densities p_t of quadratic and barrier problems)", "1"),
    "ift_ess": ("effective sample size of exp(-Delta s_tot) (below a quarter of ift_samples: "
                "ift is dominated by rare samples, see nnfield.fluctuation)", "1"),
    "ift_samples": ("networks whose trajectories enter ift", "1"),
    "ift_from_start": ("fluctuation theorem from step 0, <exp(-[ln p0(x_0) - ln p0(eps x_t) + "
                       "Delta s_medium])> (exactly 1 for any dynamics: the exact initial density "
                       "at both ends; teacher-student)", "1"),
    "ift_from_start_se": ("bootstrap standard error of ift_from_start", "1"),
    "ift_one_step": ("one-step fluctuation theorem <exp(-[ln p0(x_0) - ln p0(eps x_1) + Delta "
                     "s_medium])> over every network (exactly 1 for any dynamics; "
                     "teacher-student)", "1"),
    "ift_one_step_se": ("jackknife standard error of ift_one_step", "1"),
    "ift_one_step_ess": ("effective sample size of the one-step weights", "1"),
    "ift_one_step_samples": ("networks entering ift_one_step", "1"),
    "ift_from_start_ess": ("effective sample size of the ift_from_start weights", "1"),
    "pi_violation": ("intervals with Pi < 0 beyond the critical z (0: passed, -1: not "
                     "measurable)", "1"),
    "free_energy_violation": ("intervals with dF > 0 beyond the critical z, measured, not a "
                              "violation of any theorem at finite step size (-1: no "
                              "temperature)", "1"),
    "free_energy_asserted": ("0: dF <= 0 is asserted nowhere (a theorem only in the "
                             "continuous-time limit; dF = -T Pi + <W_shadow>)", "1"),
    "kl_violation": ("intervals where KL(p_t || pi_eta) rises beyond the critical z (a theorem "
                     "for every Markov chain; -1: stationary law unknown)", "1"),
    "shadow_work": ("shadow work <Delta U> + T <Delta s_medium> of the interval (U with "
                    "|p|^2/2 for momentum): Delta F = -T Pi steps + shadow_work", "1"),
    "shadow_work_se": ("jackknife standard error of shadow_work", "1"),
    "shadow_work_exact": ("exact shadow work of the interval", "1"),
    "free_energy_change": ("change of F over the interval", "1"),
    "free_energy_change_se": ("block standard error of free_energy_change (delete-one-block "
                              "jackknife; batch means for k-NN estimates)", "1"),
    "free_energy_change_exact": ("exact change of F over the interval", "1"),
    "kl_to_stationary": ("KL(p_t || pi_eta) to the chain's own stationary law, with the entropy "
                         "estimator named in entropy_estimator", "nats"),
    "kl_to_stationary_se": ("block standard error of kl_to_stationary (delete-one-block "
                            "jackknife; batch means for k-NN estimates)", "nats"),
    "kl_to_stationary_exact": ("exact KL(p_t || pi_eta)", "nats"),
    "entropy_gaussian": ("bias-corrected Gaussian entropy of the state (barrier problems; "
                         "its exact value is the Gaussian entropy of the exact covariance, an "
                         "upper bound on S)", "nats"),
    "entropy_gaussian_se": ("jackknife standard error of entropy_gaussian", "nats"),
    "entropy_gaussian_exact": ("Gaussian entropy 1/2 ln det(2 pi e Sigma_t) of the exact "
                               "covariance", "nats"),
    "pi_gaussian": ("total entropy production per step from the Gaussian entropy (barrier "
                    "problems)", "nats"),
    "pi_gaussian_se": ("jackknife standard error of pi_gaussian", "nats"),
    "pi_gaussian_exact": ("what pi_gaussian estimates: the exact medium entropy plus the change "
                          "of the Gaussian entropy of the exact covariance", "nats"),
    "pi_stationary_exact": ("exact total entropy production per step of the chain's stationary "
                            "state (barrier problems; > 0: discrete SGLD and BAOAB momentum "
                            "break detailed balance on a non-quadratic loss)", "nats"),
    "entropy_marginal": ("marginal entropy H(q) of the parameters over networks and data "
                         "(quadratic problems with data_disorder)", "nats"),
    "entropy_marginal_se": ("jackknife standard error of entropy_marginal", "nats"),
    "entropy_marginal_exact": ("exact H(q)", "nats"),
    "information": ("mutual information I(q_t; q*) between the parameters and the data "
                    "(each network's own minimum), H(q) - H(q | q*)", "nats"),
    "information_se": ("jackknife standard error of information", "nats"),
    "information_exact": ("exact I(q_t; q*)", "nats"),
    "information_bound": ("Goldt-Seifert bound H(q_t) - H(q_0) + Delta s_medium >= I", "nats"),
    "information_bound_se": ("jackknife standard error of information_bound", "nats"),
    "information_bound_exact": ("exact information_bound", "nats"),
    "learning_efficiency": ("I / (Delta S + Delta S_medium), in [0, 1]", "1"),
    "learning_efficiency_se": ("jackknife standard error of learning_efficiency", "1"),
    "learning_efficiency_exact": ("exact learning efficiency", "1"),
    "information_violation": ("records where I exceeds its bound beyond the critical z (a "
                              "theorem; data-disorder points only)", "1"),
    "medium_rate": ("medium entropy per step over the second half of the run (minibatch sgd: "
                    "heat_limit_rate / T + O(ln batches), the 1/T set by the added Langevin "
                    "noise)", "nats"),
    "medium_rate_se": ("jackknife standard error of medium_rate", "nats"),
    "heat_limit_rate": ("zero-temperature heat Q per step over the second half of the run "
                        "(minibatch sgd: the irreversibility of its minibatch moves; it still "
                        "depends on T through the trajectories)", "1"),
    "heat_limit_rate_se": ("jackknife standard error of heat_limit_rate", "1"),
    "entropy_estimator": ("estimator behind entropy, pi, free_energy, free_energy_change and "
                          "kl_to_stationary", "1"),
    "step": ("training step", "1"),
    "interval": ("midpoint of the interval between records", "1"),
}  # fmt: skip
for _name in list(ANALYSIS_META)[:10]:
    long_name, units = ANALYSIS_META[_name]
    error = ("bootstrap" if _name == "ift" else
             "block (delete-one-block jackknife; batch means for k-NN estimates)")  # fmt: skip
    ANALYSIS_META[f"{_name}_se"] = (f"{error} standard error of {_name}", units)
    ANALYSIS_META[f"{_name}_exact"] = (f"exact {long_name}", units)
ANALYSIS_META.update(CLAIMS_META)
ANALYSIS_META["jackknife_dof"] = ("degrees of freedom of the point's jackknife errors (blocks - "
                                  "1)", "1")  # fmt: skip
ANALYSIS_META["nonfinite"] = ("networks whose state became NaN/inf (their blocks are dropped)",
                              "1")  # fmt: skip
ANALYSIS_META["dropped_blocks"] = ("blocks dropped for holding a non-finite network", "1")
POINT_COORDINATES = {
    "problem": ("problem (config name)", "1"),
    "kind": ("problem kind", "1"),
    "optimizer": ("optimizer", "1"),
    "initial": ("initial ensemble", "1"),
    "learning_rate": ("learning rate eta", "1"),
    "temperature": ("temperature T", "1"),
    "width": ("student width N (NaN for quadratic problems)", "1"),
    "depth": ("student hidden layers L (NaN for quadratic problems)", "1"),
    "batch_size": ("minibatch size (NaN for quadratic problems)", "1"),
    "momentum": ("heavy-ball momentum beta (NaN without the momentum optimizer)", "1"),
}


ENTROPY_ESTIMATORS = {
    "quadratic": "gaussian (bias-corrected; exact family: the ensemble stays Gaussian)",
    "barrier": "knn (Kozachenko-Leonenko, k = 4, all networks; Gaussian in entropy_gaussian)",
    "teacher_student": "gaussian (bias-corrected fit of the state: an upper bound on S for a "
    "non-Gaussian ensemble)",
}
"""The estimator behind the entropy-derived variables of each kind of problem."""


def analyze(points: Sequence[xr.Dataset], options: Mapping | None = None) -> xr.Dataset:
    """Study dataset over (point, step | interval); variables a point's kind does not have
    are NaN there."""
    options = dict(options or {})

    def one_point(ds: xr.Dataset) -> xr.Dataset:
        p = PointSpec.from_json(str(ds.attrs["params"])).params
        one = analyze_point(ds, options).expand_dims(point=[str(ds.attrs["point"])])
        for key in ("problem", "kind", "optimizer", "initial"):
            one[key] = (("point",), [str(p[key])])
        one["entropy_estimator"] = (("point",), [ENTROPY_ESTIMATORS[p["kind"]]])
        for key in ("learning_rate", "temperature", "width", "depth", "batch_size"):
            one[key] = (("point",), [float(p.get(key, np.nan))])
        momentum = float(p.get("momentum", np.nan)) if p["optimizer"] == "momentum" else np.nan
        one["momentum"] = (("point",), [momentum])
        one.attrs = {}
        return one

    per_point, refused = analyze_each(points, one_point)
    dims = {n: v.dims for one in per_point for n, v in one.data_vars.items()}
    for one in per_point:
        for name in dims.keys() - one.data_vars.keys():
            one[name] = (dims[name], np.full([one.sizes[d] for d in dims[name]], np.nan))
    study = xr.concat(per_point, dim="point", join="outer")
    study.attrs = provenance("learning")
    study.attrs.update(
        refused_points=refused,
        critical_values=stats.CRITICAL_VALUE_METHOD,
        entropy_units="nats",
        dynamics="quadratic: q' = q - eta A q + xi, xi ~ N(0, 2 eta T I) (sgld) or "
        "N(0, eta^2 C) (sgd); barrier: q' = q - eta grad U + xi, U = q^T A q / 2 + h "
        "exp(-q_0^2 / (2 w^2)), or BAOAB momentum on (q, p), exact density on a grid "
        "(nnfield.studies.learning.grid_chain); "
        "teacher_student: see nnfield.studies.learning.teacher_student",
    )
    from nnfield.studies.learning.claims_verdicts import claim_verdicts

    alpha = float(options.get("significance", stats.DEFAULT_SIGNIFICANCE))
    study.attrs.update(claim_verdicts(study, alpha))
    meta = {**ANALYSIS_META, **POINT_COORDINATES, "point": ("sweep point name", "1")}
    # sweep parameters are coordinates of `point`: ds.sel(point=ds.temperature == 0.5) etc.
    return annotate(study.set_coords(list(POINT_COORDINATES)), meta)


def analyze_files(paths, options: Mapping | None = None, progress=None) -> xr.Dataset:
    """:func:`analyze` of the point files ``paths``."""
    from nnfield.engine.analysis import analyze_read_points

    return analyze_read_points(paths, "learning", RAW_VARIABLES, analyze, options or {}, progress)
