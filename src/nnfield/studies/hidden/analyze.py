"""Study ``hidden``: entropy production of noisy hidden-state dynamics (docs/hidden.md).

Each point is a weight ensemble (nnfield.studies.hidden.weights) at one contraction a, antisymmetric
fraction k, ring coupling eps, gain g and noise s.  Every network has its own quenched W (with
``initial_states`` R > 1, R replicas share one W and start from different states); its
stationary trajectory is simulated in JAX (nnfield.studies.hidden.dynamics) and reduced per network.
Per point, with delete-one-block jackknife errors over the networks (which contain both the
disorder of W and the time noise):
  ep          stationary entropy production per step and neuron conditioned on W: the time
              average of the medium entropy (bulk-loss difference / s^2) plus the system term
              ln p(x_start) - ln p(x_end) of each time block (nats per step per neuron);
              ep_system is the latter alone, ep_s2 = ep s^2;
  ep_exact    the mean over the same networks of the exact 1/2 tr(G_r^-1 G) - n (linear f);
  ep_z        (ep - ep_exact) / paired error (the time noise only); NaN where ep = 0 is an
              identity (ep_identity: linear f, symmetric W), checked against ep_rounding_bound;
  drift_z, replica_z, ergodic   burn-in drift and replica disagreement: the point is flagged
              (ergodic = 0) when it is not stationary and ergodic on the simulated time scale;
  annealed    the annealed (W not conditioned on) one-step pair-law KL of the P/P^T mixture,
              whose one-step kernel mixes the two members: 0 by an identity, while each member
              produces n (g a)^2 / (1 - (g a)^2) (annealed_medium: its medium part, which
              fluctuates);
  subsystem_corr, subsystem_current   equal-time correlation of the subsystem averages x̄^mu
              across subsystems and the antisymmetric lag-1 covariance (probability current),
              with exact values for linear f;
  ep_coarse, coarse_fraction, information_flow, tur_product   what the subsystem averages see
              (ensembles with one W for every network, linear f, no bias, D >= 2; from
              nnfield.theory.subsystems), with exact values.
Study-level: exact curves along every swept parameter (curve_*), and for coupled rings the
Onsager coefficient c2 (studies.hidden.theory.ring_fits) against its exact value.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from nnfield import stats
from nnfield.config import PointSpec
from nnfield.engine.store import annotate, points_sha256, provenance
from nnfield.studies.hidden import kick, lightcone
from nnfield.studies.hidden.sample import RAW_VARIABLES, weight_ensemble
from nnfield.studies.hidden.weights import coupling_label

log = logging.getLogger(__name__)


def _per_network(ds: xr.Dataset, p: Mapping) -> dict[str, np.ndarray]:
    """Per-network quantities (block, member, ...) used by the point estimates."""
    steps, tb = int(p["steps"]), int(p["time_blocks"])
    n = int(p["neurons"])
    per_tb = (ds["medium"].values + ds["system"].values) / (steps / tb) / n  # (B, M, T_b)
    half = tb // 2
    out = {
        "ep": per_tb.mean(-1),
        "ep_medium": ds["medium"].values.sum(-1) / steps / n,
        "ep_system": ds["system"].values.sum(-1) / steps / n,
        "time_var": per_tb.var(-1, ddof=1) / tb,
        "per_time_block": per_tb,
        # burn-in drift: first half of the time blocks minus the last half (0 if stationary)
        "ep_drift": per_tb[..., :half].mean(-1) - per_tb[..., tb - half :].mean(-1),
    }
    if "annealed_total" in ds:
        out["annealed"] = ds["annealed_total"].values.sum(-1) / steps / n
        out["annealed_medium"] = ds["annealed_medium"].values.sum(-1) / steps / n
    if "ep_exact_network" in ds:
        out["ep_exact"] = ds["ep_exact_network"].values / n
        out["ep_diff"] = out["ep"] - out["ep_exact"]
    mean = ds["xbar1"].values / steps
    cov = ds["xbar2"].values / steps - _outer(mean)
    lag = ds["xbar_lag"].values / steps - _outer(mean)
    out["subsystem_mean"] = mean
    out["subsystem_corr"] = _correlation(cov)
    out["subsystem_current"] = (lag - np.swapaxes(lag, -1, -2)) / 2
    # raw moments, pooled over networks by the subsystem thermodynamics (shared W only)
    out["moment1"] = mean
    out["moment2"] = ds["xbar2"].values / steps
    out["moment_lag"] = ds["xbar_lag"].values / steps
    out["current_sq"] = ds["current_sq"].values / steps
    if "subsystem_cov_exact" in ds:
        out["subsystem_mean_exact"] = ds["subsystem_mean_exact"].values
        exact = ds["subsystem_cov_exact"].values
        lag_exact = ds["subsystem_lag_exact"].values
        out["subsystem_corr_exact"] = _correlation(exact)
        out["subsystem_current_exact"] = (lag_exact - np.swapaxes(lag_exact, -1, -2)) / 2
        out["cov_exact"], out["lag_exact"] = exact, lag_exact
    return out


def _correlation(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    return cov / (sd[..., :, None] * sd[..., None, :])


def rounding_bound(p: Mapping) -> float:
    """Bound on |ep| per step and neuron where ep = 0 is an identity (symmetric W, linear f):
    the two squared residuals of a step are O(n / (1 - rho^2)) in units of s^2 and the drift
    f(W x + b) is rounded in the run's dtype, so each step's medium entropy misses
    ln p(x') - ln p(x) by at most ~ 4 eps_dtype n / (1 - rho^2) (rho = g a); a factor 4 more
    covers |x|^2 above its mean.  Per neuron: 16 eps_dtype / (1 - rho^2)."""
    rho = float(p["gain"]) * float(p["contraction"])
    return 16 * float(np.finfo(np.dtype(p["dtype"])).eps) / (1 - rho**2)


def block_correlation(per_tb: np.ndarray, finite: np.ndarray) -> float:
    """Lag-1 autocorrelation of consecutive time-block means, pooled over the finite networks
    (per_tb (B, M, T_b)), with its first-order bias -1/T_b removed: batch means of correlated
    blocks understate the variance of a network's mean by about the factor 1 + 2 rho1."""
    y = per_tb[finite]
    y = y - y.mean(-1, keepdims=True)
    den = float((y**2).sum())
    if den <= 0:
        return 0.0
    return float((y[:, 1:] * y[:, :-1]).sum() / den) + 1.0 / per_tb.shape[-1]


def replica_statistic(ep: np.ndarray, time_var: np.ndarray, finite: np.ndarray, replicas: int,
                      time_blocks: int, rho1: float = 0.0) -> float:  # fmt: skip
    """One-sided normal-equivalent z of the between-replica spread of ep over replicas of one W,
    against their own time noise (large z = replicas disagree = not ergodic on the simulated
    time scale).

    Per weight draw g with R replicas: S_g = sum_r (e_r - mean e)^2 / mean_r v_r, v_r the
    batch-means variance of replica r's mean times max(1, 1 + 2 rho1) (rho1: block_correlation).
    If the replicas sample one stationary law, S_g ~ (R - 1) F(R - 1, R (T_b - 1)) (Gaussian,
    independent batch means).  The sum over G draws is referred to the gamma law with the null
    mean and variance (its skewness, which a normal reference ignores, is close to that of the
    sum), and its upper tail probability is returned as the z with the same normal tail."""
    from scipy import stats as sps

    if replicas < 2:
        return float("nan")
    d1, d2 = replicas - 1, replicas * (time_blocks - 1)
    if d2 <= 4:
        return float("nan")
    groups = ep.reshape(-1, replicas)
    var = time_var.reshape(-1, replicas) * max(1.0, 1.0 + 2.0 * rho1)
    ok = finite.reshape(-1, replicas).all(-1)
    groups, var = groups[ok], var[ok]
    if not len(groups):
        return float("nan")
    s = ((groups - groups.mean(-1, keepdims=True)) ** 2).sum(-1) / var.mean(-1)
    mean = len(groups) * d1 * d2 / (d2 - 2)
    variance = len(groups) * d1**2 * 2 * d2**2 * (d1 + d2 - 2) / (d1 * (d2 - 2) ** 2 * (d2 - 4))
    tail = sps.gamma.sf(s.sum(), a=mean**2 / variance, scale=variance / mean)
    return float(sps.norm.isf(tail))


def _outer(v: np.ndarray) -> np.ndarray:
    return v[..., :, None] * v[..., None, :]


def _subsystem_thermo(c0: np.ndarray, c1: np.ndarray, jsq, neurons: int, d: int) -> dict:
    """Coarse production per neuron, information flows and one-step current statistics from
    the pooled moments (leading replicate axis allowed); ``jsq`` None for exact moments."""
    from nnfield.theory import subsystems

    c0 = (c0 + np.swapaxes(c0, -1, -2)) / 2
    ep_coarse = subsystems.pair_law_production(c0, c1)
    out = {"ep_coarse": ep_coarse / neurons,
           "information_flow": subsystems.information_flow(c0, c1)}  # fmt: skip
    jmean = c1 - np.swapaxes(c1, -1, -2)
    if jsq is None:
        jvar = np.zeros_like(jmean)
        for mu in range(d):
            for nu in range(d):
                if mu != nu:
                    jvar[..., mu, nu] = subsystems.current_moments(c0, c1, mu, nu)[1]
    else:
        jvar = jsq - jmean**2
    off = ~np.eye(d, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        tur = subsystems.uncertainty_product(jvar, jmean, ep_coarse[..., None, None])
        out["current_precision"] = np.where(off, jvar / jmean**2, np.nan)
    out["tur_product"] = np.where(off, tur, np.nan)
    return out


def _subsystem_estimates(sums: dict, counts: np.ndarray, per: dict, finite, p: Mapping) -> dict:
    """Jackknifed subsystem thermodynamics (pooled over networks) and their exact values."""
    n, d = int(p["neurons"]), int(p["subsystems"])

    def measured(m):
        mean = m["moment1"]
        c0, c1 = m["moment2"] - _outer(mean), m["moment_lag"] - _outer(mean)
        out = _subsystem_thermo(c0, c1, m["current_sq"], n, d)
        out["coarse_fraction"] = out["ep_coarse"] / m["ep"]
        return out

    out: dict[str, np.ndarray] = {}
    keys = ("moment1", "moment2", "moment_lag", "current_sq", "ep")
    shapes: dict[str, tuple] = {}

    def flat(m):  # every estimate of one replicate set, raveled side by side: one pass
        values = measured(m)
        shapes.update({k: v.shape[1:] for k, v in values.items()})
        return np.concatenate([v.reshape(v.shape[0], -1) for v in values.values()], axis=1)

    with np.errstate(divide="ignore", invalid="ignore"):
        est = stats.from_replicates(
            stats.jackknife_replicates({k: sums[k] for k in keys}, counts, flat)
        )
    start = 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        out[name] = est.value[start : start + size].reshape(shape)
        out[f"{name}_se"] = est.stderr[start : start + size].reshape(shape)
        start += size
    if "cov_exact" in per:
        cov = per["cov_exact"][finite].mean(0)
        lag = per["lag_exact"][finite].mean(0)
        exact = _subsystem_thermo(cov, lag, None, n, d)
        exact["coarse_fraction"] = exact["ep_coarse"] / per["ep_exact"][finite].mean()
        for name, value in exact.items():
            out[f"{name}_exact"] = np.asarray(value)
        # no mean current (symmetric coupling, eps = 0): the precision is undefined, and the
        # measured ratio of two noise terms is not a measurement of it
        jmean = lag - lag.T
        scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
        no_current = np.abs(jmean) <= 64 * np.finfo(np.float64).eps * scale  # 0 to rounding
        for name in ("tur_product", "current_precision"):
            for suffix in ("", "_se", "_exact"):
                out[name + suffix] = np.where(no_current, np.nan, out[name + suffix])
    return out


DEFAULT_MAX_BLOCK_CORRELATION = 0.1
"""Default ``analysis.max_block_correlation`` (the schema's default)."""


def _ergodicity_settings(options: Mapping | None) -> tuple[float, float]:
    """(significance of each of the drift and replica checks, max_block_correlation): two
    checks at alpha / 2 each, so the flag's false-alarm rate is the default significance."""
    rho = dict(options or {}).get("max_block_correlation", DEFAULT_MAX_BLOCK_CORRELATION)
    return stats.DEFAULT_SIGNIFICANCE / 2, float(rho)


def analyze_point(
    ds: xr.Dataset, p: Mapping, options: Mapping | None = None
) -> dict[str, np.ndarray]:
    """Per-point estimates (see the module docstring) as plain arrays: scalars, (D,) over
    subsystems and (D, D) over subsystem pairs (assembled by ``analyze`` without per-variable
    xarray overhead, which dominated sweeps of many points).  ``options``: the study's
    ``analysis`` config (max_block_correlation)."""
    alpha, max_rho = _ergodicity_settings(options)
    finite = ds["finite"].values.astype(bool)
    counts = finite.sum(1)
    per = _per_network(ds, p)
    sums = {}
    per_tb = per.pop("per_time_block")
    for name, value in per.items():
        mask = finite.reshape(finite.shape + (1,) * (value.ndim - 2))
        sums[name] = np.where(mask, value, 0.0).sum(1)
    out: dict[str, np.ndarray] = {}
    scalar = ("ep", "ep_medium", "ep_system", "annealed", "annealed_medium")
    for name in scalar:
        if name in sums:
            e = stats.jackknife(sums, counts, lambda m, name=name: m[name])
            out[name] = np.asarray(e.value)
            out[f"{name}_se"] = np.asarray(e.stderr)
    noise2 = float(p["noise"]) ** 2
    out["ep_s2"], out["ep_s2_se"] = out["ep"] * noise2, out["ep_se"] * noise2
    e = stats.jackknife(sums, counts, lambda m: m["subsystem_mean"])
    out["subsystem_mean"], out["subsystem_mean_se"] = e.value, e.stderr
    if "subsystem_mean_exact" in sums:
        mean_exact = sums["subsystem_mean_exact"].sum(0) / counts.sum()
        out["subsystem_mean_exact"] = mean_exact
    for name in ("subsystem_corr", "subsystem_current"):
        e = stats.jackknife(sums, counts, lambda m, name=name: m[name])
        out[name], out[f"{name}_se"] = e.value, e.stderr
        if f"{name}_exact" in sums:
            out[f"{name}_exact"] = sums[f"{name}_exact"].sum(0) / counts.sum()
    total = counts.sum()
    out["ep_time_se"] = np.asarray(np.sqrt(sums["time_var"].sum() / total))
    ep = per["ep"][finite]
    out["ep_network_sd"] = np.asarray(ep.std(ddof=1))
    dof = stats.jackknife_dof(len(counts))
    crit = stats.bonferroni_t(stats.DEFAULT_SIGNIFICANCE, 1, dof)
    ens = weight_ensemble(p)
    identity = p["activation"] == "linear" and ens.symmetric_weights
    out["ep_identity"] = np.asarray(np.int8(identity))
    out["ep_rounding_bound"] = np.asarray(rounding_bound(p) if identity else np.nan)
    if "ep_exact" in sums:
        out["ep_exact"] = np.asarray(sums["ep_exact"].sum() / total)
        diff = stats.jackknife(sums, counts, lambda m: m["ep_diff"])
        out["ep_paired_se"] = np.asarray(diff.stderr)
        # an identity is checked against its rounding bound, not dressed as a z-test
        out["ep_z"] = np.asarray(np.nan if identity else diff.value / diff.stderr)
        out["ep_zcrit"] = np.asarray(np.nan if identity else crit)
    # stationarity and ergodicity on the simulated time scale
    drift = stats.jackknife(sums, counts, lambda m: m["ep_drift"])
    out["drift_z"] = np.asarray(np.nan if identity else drift.value / drift.stderr)
    replicas = 1 if identity else int(p.get("initial_states", 1))  # identity: rounding only
    rho1 = np.nan if identity else block_correlation(per_tb, finite)
    out["time_block_correlation"] = np.asarray(rho1)
    out["replica_z"] = np.asarray(replica_statistic(
        per["ep"], per["time_var"], finite, replicas, int(p["time_blocks"]),
        0.0 if identity else rho1))  # fmt: skip
    one_sided = stats.bonferroni_z(2 * alpha, 1)  # P(Z > z) = alpha
    drift_ok = identity or abs(float(out["drift_z"])) < stats.bonferroni_t(alpha, 1, dof)
    # fail closed: a statistic that cannot be computed fails, except where it does not apply
    replicas_ok = replicas == 1 or float(out["replica_z"]) <= one_sided
    blocks_ok = identity or rho1 <= max_rho
    out["ergodic"] = np.asarray(np.int8(drift_ok and replicas_ok and blocks_ok))

    def crit_of(tests: int) -> float:
        return stats.bonferroni_t(stats.DEFAULT_SIGNIFICANCE, tests, dof)

    out.update(lightcone.point_estimates(ds, p, finite, crit_of))
    shared = ens.sample(np.random.default_rng(0), 1) if ens.shared_weights else None
    out.update(kick.point_estimates(ds, p, finite, shared))
    if p["weights"] == "mixture":
        out["annealed_exact"] = np.asarray(0.0)  # P/P^T: the mixed pair law is symmetric
    closed = ens.closed_form_production(p["gain"])
    out["ep_closed_form"] = np.asarray(
        np.nan if closed is None or p["activation"] != "linear" else closed / p["neurons"]
    )
    if (ens.shared_weights and p["activation"] == "linear" and not p["bias"]
            and int(p["subsystems"]) >= 2):  # fmt: skip
        out.update(_subsystem_estimates(sums, counts, per, finite, p))
    out["nonfinite"] = np.asarray(np.int64(finite.size - finite.sum()))
    name = ds.attrs.get("point")
    if identity and abs(float(out["ep"])) > float(out["ep_rounding_bound"]):
        log.warning("%s: ep = %.3g breaks the identity ep = 0 (rounding bound %.3g)", name,
                    float(out["ep"]), float(out["ep_rounding_bound"]))  # fmt: skip
    if "ep_z" in out and abs(float(out["ep_z"])) > crit:
        log.warning("%s: ep deviates from the exact value by %.1f standard errors (critical "
                    "%.2f)", name, float(out["ep_z"]), crit)  # fmt: skip
    if not out["ergodic"]:
        log.warning("%s: flagged not ergodic on the simulated time scale (drift z %.1f, replica "
                    "z %.1f, time-block correlation %.2f)", name, float(out["drift_z"]),
                    float(out["replica_z"]), rho1)  # fmt: skip
    return out


POINT_COORDINATES = {
    "ensemble": ("weight ensemble (config name)", "1"),
    "weights": ("kind of weight ensemble", "1"),
    "activation": ("activation f", "1"),
    "coupling_matrix": ("ring coupling matrix C (rings): its name, or its rows as JSON", "1"),
    "neurons": ("neurons n", "1"),
    "subsystems": ("subsystems D", "1"),
    "contraction": ("contraction a (spectral radius of W; rings: of each ring)", "1"),
    "antisymmetric_fraction": ("antisymmetric fraction k (ginibre)", "1"),
    "coupling": ("coupling eps between rings (rings)", "1"),
    "gain": ("gain g of f", "1"),
    "noise": ("noise amplitude s", "1"),
    "light_cone": ("largest lag L of the measured space-time correlation (0: not measured)", "1"),
}
_STRING_COORDS = ("ensemble", "weights", "activation", "coupling_matrix")
ANALYSIS_META = {
    "ep": ("stationary entropy production per step and neuron, conditioned on W", "nats"),
    "ep_medium": ("medium part of ep (time-averaged bulk-loss difference / s^2)", "nats"),
    "ep_system": ("system part of ep, (ln p(x_start) - ln p(x_end)) / steps (p exact for linear "
                  "f, a Gaussian fit for tanh): how much the choice of p can matter", "nats"),
    "ep_s2": ("ep times s^2: tends to a constant as s -> 0 where the noiseless dynamics moves "
              "on an attractor (ep ~ 1 / s^2)", "nats"),
    "annealed": ("one-step pair-law KL of the annealed process (W not conditioned on, so not "
                 "Markov): a lower bound on the quenched mean production E_W ep_W and on the "
                 "path-law KL of any window of the annealed process, not on its rate per step; "
                 "0 for the P/P^T mixture by an identity (one member's forward term is the "
                 "other's backward term)", "nats"),
    "annealed_medium": ("medium part of annealed", "nats"),
    "subsystem_mean": ("time and network average of the subsystem average state xbar^mu", "1"),
    "subsystem_corr": ("equal-time correlation of the subsystem averages xbar^mu, xbar^nu",
                       "1"),
    "subsystem_current": ("antisymmetric lag-1 covariance (E[xbar^mu_t xbar^nu_t+1] - "
                          "E[xbar^nu_t xbar^mu_t+1]) / 2 of the subsystem averages", "1"),
    "ep_exact": ("exact production per neuron, mean over the same networks", "nats"),
    "ep_closed_form": ("ensemble-mean production per neuron from the closed forms (NaN where "
                       "none)", "nats"),
    "ep_paired_se": ("standard error of ep - ep_exact (time noise only)", "nats"),
    "ep_z": ("(ep - ep_exact) / ep_paired_se (NaN where ep = ep_exact is an identity)", "1"),
    "ep_zcrit": ("Student-t critical value for ep_z at the default significance (blocks - 1 "
                 "dof)", "1"),
    "ep_identity": ("1 where ep = 0 holds sample by sample (linear f, symmetric W, isotropic "
                    "noise): checked against ep_rounding_bound, not by a z-test", "1"),
    "ep_rounding_bound": ("bound on |ep| from rounding where ep = 0 is an identity", "nats"),
    "ep_time_se": ("batch-means error of one network's ep from blocking its trajectory in time",
                   "nats"),
    "ep_network_sd": ("standard deviation of ep over networks (disorder and time noise)", "nats"),
    "drift_z": ("ep over the first half of the time blocks minus the last half, over its "
                "jackknife error (burn-in drift; NaN for identities)", "1"),
    "replica_z": ("one-sided z of the spread of ep between replicas of one W started from "
                  "different states, against their time noise (NaN with one replica)", "1"),
    "time_block_correlation": ("lag-1 autocorrelation of consecutive time-block means, pooled "
                               "over networks, bias-corrected (NaN for identities)", "1"),
    "ergodic": ("1 unless |drift_z| exceeds its Student-t critical value or replica_z its "
                "one-sided normal critical value (each at half the default significance) or "
                "time_block_correlation exceeds analysis.max_block_correlation: 0 = flagged, "
                "not stationary and ergodic on the simulated time scale", "1"),
    "ep_coarse": ("Gaussian lag-1 pair-law KL of the subsystem averages xbar alone, per step "
                  "and neuron: the production visible at the coarse level (a lower bound on "
                  "ep; exact entropy production of xbar where xbar is Markov, as for rings)",
                  "nats"),
    "coarse_fraction": ("ep_coarse / ep", "1"),
    "information_flow": ("I(xbar^mu_t+1; xbar^rest_t) - I(xbar^mu_t; xbar^rest_t): information "
                         "subsystem mu's update gains about the others (Horowitz-Esposito "
                         "flow, discrete time), Gaussian, per step", "nats"),
    "current_precision": ("Var(j) / <j>^2 of the one-step current j = xbar^mu_t xbar^nu_t+1 - "
                          "xbar^nu_t xbar^mu_t+1 (NaN where <j> = 0)", "1"),
    "tur_product": ("current_precision x (exp(sigma) - 1) / 2, sigma the pair-law KL of all D "
                    "averages xbar (ep_coarse x neurons; at least that of the pair j depends "
                    "on): >= 1 by the discrete-time uncertainty relation", "1"),
    "annealed_exact": ("exact annealed pair-law KL per neuron (0 for the P/P^T mixture, an "
                       "identity)", "nats"),
    "nonfinite": ("networks excluded for non-finite results", "1"),
    "subsystem": ("subsystem mu", "1"),
    "subsystem2": ("subsystem nu", "1"),
}  # fmt: skip
for _name in ("ep", "ep_medium", "ep_system", "ep_s2", "annealed", "annealed_medium",
              "subsystem_mean", "subsystem_corr", "subsystem_current", "ep_coarse",
              "coarse_fraction", "information_flow", "current_precision",
              "tur_product"):  # fmt: skip
    _long, _units = ANALYSIS_META[_name]
    ANALYSIS_META[f"{_name}_se"] = (f"jackknife standard error of {_name}", _units)
for _name in ("subsystem_mean", "subsystem_corr", "subsystem_current", "ep_coarse",
              "coarse_fraction", "information_flow", "current_precision",
              "tur_product"):  # fmt: skip
    _long, _units = ANALYSIS_META[_name]
    ANALYSIS_META[f"{_name}_exact"] = (f"exact {_name} (linear f, from the Lyapunov solution)",
                                       _units)  # fmt: skip


def analyze(points: Sequence[xr.Dataset], options: Mapping | None = None) -> xr.Dataset:
    """Study dataset over ``point`` (subsystem matrices NaN-padded to the largest D), with the
    exact curves and the ring fits."""
    rows = [_analyze_one(ds, options) for ds in points]
    return _study(rows, options)


def ergodicity_method(options: Mapping | None = None) -> str:
    """The ``ergodicity`` attribute: how ``ergodic`` was decided, from the settings in use."""
    alpha, rho = _ergodicity_settings(options)
    return (
        f"ergodic = 0 if |drift_z| > Student-t critical value at {alpha:g} (network blocks - "
        f"1 dof), or replica_z > one-sided normal critical value at {alpha:g} (replica "
        "spread against batch-means variance inflated by max(1, 1 + 2 rho1), gamma "
        f"reference), or time_block_correlation > {rho:g}"
    )


def _analyze_one(ds, options: Mapping | None = None) -> tuple[str, dict, dict, str]:
    """(point name, params, per-point arrays, config_sha256) of one point file."""
    p = PointSpec.from_json(str(ds.attrs["params"])).params
    return (str(ds.attrs["point"]), p, analyze_point(ds, p, options),
            str(ds.attrs["config_sha256"]))  # fmt: skip


def _analyze_file(path: str, options: Mapping | None = None) -> tuple[str, dict, dict, str]:
    from nnfield.engine.store import read_raw

    return _analyze_one(read_raw(path, study="hidden", required=RAW_VARIABLES), options)


MIN_PARALLEL = 50
"""Point files from which analyze_files starts worker processes (fewer: serial)."""


def analyze_files(
    paths: Sequence[str], options: Mapping | None = None, workers: int | None = None, progress=None
) -> xr.Dataset:
    """``analyze`` straight from point files, read (netCDF4, no xarray) and reduced in
    ``workers`` processes (default: the CPUs this process may use): sweeps of 10^4 points."""
    from functools import partial

    from nnfield.engine.parallel import map_in_processes

    one = partial(_analyze_file, options=dict(options or {}))
    rows = map_in_processes(one, [str(p) for p in paths], workers, MIN_PARALLEL, progress,
                            "analysed {done}/{total} point files")  # fmt: skip
    return _study(rows, options)


def _study(rows: list[tuple[str, dict, dict, str]], options: Mapping | None = None) -> xr.Dataset:
    """The study dataset from (point name, params, per-point arrays, config_sha256) rows."""
    from nnfield.studies.hidden import metric
    from nnfield.studies.hidden import theory as hidden_theory

    names = [r[0] for r in rows]
    params = [r[1] for r in rows]
    study = _assemble(names, params, [r[2] for r in rows])
    study = study.merge(hidden_theory.curves(params))
    study = study.merge(hidden_theory.ring_fits(study, params))
    pairs = metric.metric_pairs(study, params)
    study = study.merge(pairs)
    study.attrs = provenance("hidden", config_sha256=points_sha256((r[0], r[3]) for r in rows))
    if pairs.data_vars:
        study.attrs["claim_metric"] = (
            "entropy production is a local function of the metric (Vanchurin 2020), read as: "
            "for g = I + eps C, a function of det g (the one derivative-free density of a "
            "metric), so couplings with equal det(I + eps C) produce the same entropy"
        )
        study.attrs["claim_metric_verdict"] = metric.verdict(pairs)
    cone_verdict = lightcone.verdict(study, params)
    if cone_verdict:
        study.attrs["claim_lightcone"] = (
            "with a permutation W the neurons' states move as strings (Vanchurin 2020), read as: "
            "for x' = f(g a P x) + s xi on a ring, C(k, tau) = <x_i(t) x_(i+k)(t + tau)> lives "
            "on the light line k = tau (mod n) for odd f with zero bias, and is "
            "(g a)^tau s^2 / (1 - (g a)^2) there for linear f"
        )
        study.attrs["claim_lightcone_verdict"] = cone_verdict
    kick_verdict = kick.verdict(study, params)
    if kick_verdict:
        study.attrs["claim_curvature"] = (
            "curvature comes only from interactions (Vanchurin 2020), read as: the response to "
            "a kick K steps later depends on the background state only for nonlinear f"
        )
        study.attrs["claim_curvature_verdict"] = kick_verdict
    study.attrs.update(
        entropy_units="nats per step per neuron",
        dynamics="x' = f(W x + b) + s xi, f(u) = g u or tanh(g u); see "
        "nnfield.studies.hidden.dynamics",
        critical_values=stats.CRITICAL_VALUE_METHOD,
        ergodicity=ergodicity_method(options),
    )
    meta = {**ANALYSIS_META, **POINT_COORDINATES, **hidden_theory.META, **metric.META,
            **lightcone.META, **kick.META,
            "point": ("sweep point name", "1")}  # fmt: skip
    # sweep parameters are coordinates of `point`: ds.sel(point=ds.coupling == 0.1) etc.
    return annotate(study.set_coords(list(POINT_COORDINATES)), meta)


_SUBSYSTEM_DIMS = {0: ("point",), 1: ("point", "subsystem"),
                   2: ("point", "subsystem", "subsystem2")}  # fmt: skip


def _assemble(names: list[str], params: list[Mapping], results: list[dict]) -> xr.Dataset:
    """One dataset over ``point`` from per-point arrays: subsystem axes NaN-padded to the
    largest D, variables a point lacks NaN."""
    d_max = max(int(p["subsystems"]) for p in params)
    ndims = {name: value.ndim for one in results for name, value in one.items()}
    data = {}
    sizes: dict[str, int] = {}  # light-cone dimensions, padded to their largest size
    for one in results:
        for name in one.keys() & lightcone.DIMS.keys():
            for dim, size in zip(lightcone.DIMS[name], one[name].shape, strict=True):
                sizes[dim] = max(sizes.get(dim, 0), size)
    for name, ndim in ndims.items():
        if name in lightcone.DIMS:
            dims = lightcone.DIMS[name]
            stacked = np.full((len(results), *(sizes[d] for d in dims)), np.nan)
            for i, one in enumerate(results):
                if name in one:
                    stacked[(i, *(slice(0, k) for k in one[name].shape))] = one[name]
            data[name] = (("point", *dims), stacked)
            continue
        stacked = np.full((len(results),) + (d_max,) * ndim, np.nan)
        for i, one in enumerate(results):
            if name in one:
                value = one[name]
                stacked[(i, *(slice(0, k) for k in value.shape))] = value
        data[name] = (_SUBSYSTEM_DIMS[ndim], stacked)
    data["nonfinite"] = (("point",), data["nonfinite"][1].astype(np.int64))
    for key in POINT_COORDINATES:
        values = [coupling_label(p[key]) if key == "coupling_matrix" else p[key]
                  if key in _STRING_COORDS else float(p.get(key, 0)) for p in params]  # fmt: skip
        data[key] = (("point",), np.asarray(values))
    coords = {"point": names, "subsystem": np.arange(d_max), "subsystem2": np.arange(d_max)}
    coords |= {dim: np.arange(size) for dim, size in sizes.items()}
    return xr.Dataset(data, coords=coords)
