"""Study ``hidden``: entropy production of noisy hidden-state dynamics (PHYSICS.md section 4).

Each point is a weight ensemble (nnfield.hidden_weights) at one contraction a, antisymmetric
fraction k, ring coupling eps, gain g and noise s.  Every network has its own quenched W; its
stationary trajectory is simulated in JAX (nnfield.hidden_dynamics) and reduced per network.
Per point, with delete-one-block jackknife errors over the networks (which contain both the
disorder of W and the time noise):
  ep          stationary entropy production per step and neuron conditioned on W: the time
              average of the medium entropy (bulk-loss difference / s^2) plus the system term
              ln p(x_start) - ln p(x_end) of each time block (nats per step per neuron);
  ep_exact    the mean over the same networks of the exact 1/2 tr(G_r^-1 G) - n (linear f);
  ep_z        (ep - ep_exact) / paired error: the paired error is the time noise only;
  ep_time_se  the batch-means error of one network from blocking its trajectory in time;
  annealed    the annealed (W not conditioned on) production of the P/P^T mixture, whose
              one-step kernel mixes the two members; exactly 0, while each member produces
              n a^2 / (1 - a^2) (annealed_medium: its medium part, which fluctuates);
  subsystem_corr, subsystem_current   equal-time correlation of the subsystem averages x̄^mu
              across subsystems and the antisymmetric lag-1 covariance (probability current),
              with exact values for linear f.
Study-level: exact curves along every swept parameter (curve_*), and for coupled rings the
quadratic form ep(eps) = c0 + c1 eps + c2 eps^2 fitted by least squares (ring_fit_*),
whose symmetry eps -> -eps (c1 = 0: no production linear in the coupling) is reported as a z.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from nnfield import stats
from nnfield.config import PointSpec
from nnfield.hidden_weights import WeightEnsemble, subsystem_matrix
from nnfield.store import annotate, backend_name, points_sha256, provenance
from nnfield.studies.blocks import merge as merge  # re-exported: the study interface
from nnfield.studies.blocks import report_nonfinite, shard_blocks

log = logging.getLogger(__name__)

RAW_VARIABLES = ("count", "medium", "system", "xbar1", "xbar2", "xbar_lag", "finite")
RAW_META = {
    "count": ("networks in block with finite results", "1"),
    "finite": ("1 where every recorded number of the network is finite", "1"),
    "medium": ("medium entropy summed over the time block (bulk-loss difference / s^2)",
               "nats"),
    "system": ("system entropy change ln p(x_start) - ln p(x_end) over the time block (p the "
               "exact stationary density for linear f, else the Gaussian fitted to the "
               "network's trajectory)", "nats"),
    "annealed_total": ("annealed entropy production summed over the time block (one-step "
                       "kernel mixing the P/P^T members)", "nats"),
    "annealed_medium": ("medium part of annealed_total", "nats"),
    "xbar1": ("time sum of the subsystem averages", "1"),
    "xbar2": ("time sum of xbar_t xbar_t^T", "1"),
    "xbar_lag": ("time sum of xbar_t xbar_{t+1}^T", "1"),
    "ep_exact_network": ("exact stationary entropy production per step of the network (linear "
                         "f)", "nats"),
    "subsystem_cov_exact": ("exact stationary covariance of the subsystem averages", "1"),
    "subsystem_mean_exact": ("exact stationary mean of the subsystem averages", "1"),
    "subsystem_lag_exact": ("exact lag-1 covariance E[xbar_t xbar_{t+1}^T] - mean mean^T", "1"),
    "block": ("block index (keys derive from it)", "1"),
    "member": ("network within its block", "1"),
    "time_block": ("block of the measured trajectory", "1"),
    "subsystem": ("subsystem mu", "1"),
    "subsystem2": ("subsystem nu", "1"),
}  # fmt: skip


def weight_ensemble(p: Mapping) -> WeightEnsemble:
    return WeightEnsemble(
        p["weights"], int(p["neurons"]), int(p["subsystems"]), float(p["contraction"]),
        float(p["antisymmetric_fraction"]), float(p["coupling"]), p["coupling_matrix"],
    )  # fmt: skip


def _block_rng(spec: PointSpec, block: int) -> np.random.Generator:
    """NumPy generator of one block's weights and biases (counter-based: seed, point, block)."""
    from nnfield.rng import stable_hash32

    return np.random.default_rng(
        [spec.seed, stable_hash32(spec.study), stable_hash32(spec.name), block]
    )


def exact_network(weights: np.ndarray, p: Mapping, averaging: np.ndarray) -> dict:
    """Exact stationary production per step, density (mean without bias, precision, log det)
    and subsystem (lag) covariances of linear dynamics, one network."""
    from nnfield.theory.thermo import hidden_step

    step = hidden_step(weights, p["noise"], p["gain"])
    sigma = step.stationary_covariance
    return {
        "ep": step.stationary_entropy_production(),
        "precision": np.linalg.inv(sigma),
        "logdet": np.linalg.slogdet(sigma)[1],
        "transition": step.transition,
        "cov": averaging @ sigma @ averaging.T,
        "lag": averaging @ sigma @ step.transition.T @ averaging.T,
    }


def _exact_block(weights, bias, p, averaging, solved: dict) -> dict[str, np.ndarray]:
    """exact_network for every network of a block (identical matrices solved once), with the
    stationary mean (I - g W)^-1 g b of each network's bias."""
    rows = []
    for w in weights:
        tag = w.tobytes()
        if tag not in solved:
            solved[tag] = exact_network(w, p, averaging)
        rows.append(solved[tag])
    out = {k: np.stack([r[k] for r in rows]) for k in ("ep", "precision", "logdet", "cov", "lag")}
    n = weights.shape[-1]
    out["mean"] = np.stack([np.linalg.solve(np.eye(n) - r["transition"], p["gain"] * b)
                            for r, b in zip(rows, bias, strict=True)])  # fmt: skip
    return out


def simulate(spec: PointSpec, shard: int = 0, progress=None) -> xr.Dataset:
    import jax.numpy as jnp

    from nnfield.ensemble import run_with_progress
    from nnfield.hidden_dynamics import component_densities, make_block_function, no_components
    from nnfield.rng import point_key
    from nnfield.sharding import shard_batch

    p = spec.params
    ens = weight_ensemble(p)
    n, d, size = ens.neurons, ens.subsystems, int(p["block_size"])
    blocks = list(shard_blocks(p["networks"] // size, shard, p["shards"]))
    mixture = ens.kind == "mixture"
    comps = (component_densities(ens.mixture_components(), p["gain"], p["noise"]) if mixture
             else no_components(n))  # fmt: skip
    fn = make_block_function(
        n, d, size, p["time_blocks"], p["steps"] // p["time_blocks"], p["burn_in"],
        p["activation"], 2 if mixture else 0, jnp.dtype(p["dtype"]),
    )  # fmt: skip
    key = point_key(spec.seed, spec.study, spec.name)
    averaging = subsystem_matrix(n, d)
    linear = p["activation"] == "linear"
    solved: dict[bytes, tuple] = {}

    def one_block(b: int):
        rng = _block_rng(spec, b)
        weights = ens.sample(rng, size, first_index=b * size)
        bias = rng.normal(0.0, p["bias"], (size, n)) if p["bias"] else np.zeros((size, n))
        exact = _exact_block(weights, bias, p, averaging, solved) if linear else None
        density = (exact["mean"], exact["precision"], exact["logdet"]) if linear else None
        # networks split over every visible device (a no-op on one)
        w, bb, dens = shard_batch((weights, bias, density), size)
        out = fn(key, b, w, bb, p["gain"], p["noise"], averaging, dens, comps)
        return (*out, exact)

    results = run_with_progress(one_block, blocks, size, progress, spec.name)
    col = lambda k: np.stack([np.asarray(r[k]) for r in results])  # noqa: E731
    names = ("medium", "system", "annealed_total", "annealed_medium", "xbar1", "xbar2",
             "xbar_lag", "finite")  # fmt: skip
    arrays = {name: col(k) for k, name in enumerate(names)}
    finite = arrays.pop("finite")
    mb, mbt = ("block", "member"), ("block", "member", "time_block")
    sub, sub2 = ("block", "member", "subsystem"), ("block", "member", "subsystem", "subsystem2")
    data = {
        "count": (("block",), finite.sum(1).astype(np.int64)),
        "finite": (mb, finite.astype(np.int8)),
        "medium": (mbt, arrays["medium"]),
        "system": (mbt, arrays["system"]),
        "xbar1": (sub, arrays["xbar1"]),
        "xbar2": (sub2, arrays["xbar2"]),
        "xbar_lag": (sub2, arrays["xbar_lag"]),
    }
    if mixture:
        data["annealed_total"] = (mbt, arrays["annealed_total"])
        data["annealed_medium"] = (mbt, arrays["annealed_medium"])
    if linear:
        data["ep_exact_network"] = (mb, np.stack([r[-1]["ep"] for r in results]))
        data["subsystem_cov_exact"] = (sub2, np.stack([r[-1]["cov"] for r in results]))
        data["subsystem_lag_exact"] = (sub2, np.stack([r[-1]["lag"] for r in results]))
        data["subsystem_mean_exact"] = (sub, np.stack([r[-1]["mean"] for r in results])
                                        @ averaging.T)  # fmt: skip
    report_nonfinite(spec.name, (~finite).sum(1), blocks, "results (excluded)")
    ds = xr.Dataset(data, coords={"block": np.asarray(blocks, dtype=np.int64)})
    ds.attrs = provenance("hidden", spec.name, spec.sha256, backend_name())
    ds.attrs.update(n_blocks=np.int64(p["networks"] // size), params=spec.to_json())
    return annotate(ds, RAW_META)


def _per_network(ds: xr.Dataset, p: Mapping) -> dict[str, np.ndarray]:
    """Per-network quantities (block, member, ...) used by the point estimates."""
    steps, tb = int(p["steps"]), int(p["time_blocks"])
    n = int(p["neurons"])
    per_tb = (ds["medium"].values + ds["system"].values) / (steps / tb)  # (B, M, T_b)
    out = {
        "ep": per_tb.mean(-1) / n,
        "ep_medium": ds["medium"].values.sum(-1) / steps / n,
        "time_var": per_tb.var(-1, ddof=1) / tb / n**2,
    }
    if "annealed_total" in ds:
        out["annealed"] = ds["annealed_total"].values.sum(-1) / steps / n
        out["annealed_medium"] = ds["annealed_medium"].values.sum(-1) / steps / n
    if "ep_exact_network" in ds:
        out["ep_exact"] = ds["ep_exact_network"].values / n
        out["ep_diff"] = out["ep"] - out["ep_exact"]
    mean = ds["xbar1"].values / steps
    cov = ds["xbar2"].values / steps - mean[..., :, None] * mean[..., None, :]
    lag = ds["xbar_lag"].values / steps - mean[..., :, None] * mean[..., None, :]
    out["subsystem_mean"] = mean
    out["subsystem_corr"] = _correlation(cov)
    out["subsystem_current"] = (lag - np.swapaxes(lag, -1, -2)) / 2
    if "subsystem_cov_exact" in ds:
        out["subsystem_mean_exact"] = ds["subsystem_mean_exact"].values
        exact = ds["subsystem_cov_exact"].values
        lag_exact = ds["subsystem_lag_exact"].values
        out["subsystem_corr_exact"] = _correlation(exact)
        out["subsystem_current_exact"] = (lag_exact - np.swapaxes(lag_exact, -1, -2)) / 2
    return out


def _correlation(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    return cov / (sd[..., :, None] * sd[..., None, :])


def analyze_point(ds: xr.Dataset, p: Mapping) -> dict[str, np.ndarray]:
    """Per-point estimates (see the module docstring) as plain arrays: scalars, (D,) over
    subsystems and (D, D) over subsystem pairs (assembled by ``analyze`` without per-variable
    xarray overhead, which dominated sweeps of many points)."""
    finite = ds["finite"].values.astype(bool)
    counts = finite.sum(1)
    per = _per_network(ds, p)
    sums = {}
    for name, value in per.items():
        mask = finite.reshape(finite.shape + (1,) * (value.ndim - 2))
        sums[name] = np.where(mask, value, 0.0).sum(1)
    out: dict[str, np.ndarray] = {}
    scalar = ("ep", "ep_medium", "annealed", "annealed_medium")
    for name in scalar:
        if name in sums:
            e = stats.jackknife(sums, counts, lambda m, name=name: m[name])
            out[name] = np.asarray(e.value)
            out[f"{name}_se"] = np.asarray(e.stderr)
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
    if "ep_exact" in sums:
        out["ep_exact"] = np.asarray(sums["ep_exact"].sum() / total)
        diff = stats.jackknife(sums, counts, lambda m: m["ep_diff"])
        out["ep_paired_se"] = np.asarray(diff.stderr)
        out["ep_z"] = np.asarray(diff.value / diff.stderr)
        dof = stats.jackknife_dof(len(counts))
        out["ep_zcrit"] = np.asarray(stats.bonferroni_t(stats.DEFAULT_SIGNIFICANCE, 1, dof))
    if p["weights"] == "mixture":
        out["annealed_exact"] = np.asarray(0.0)  # P/P^T: the mixed pair law is symmetric
    closed = weight_ensemble(p).closed_form_production(p["gain"])
    out["ep_closed_form"] = np.asarray(
        np.nan if closed is None or p["activation"] != "linear" else closed / p["neurons"]
    )
    out["nonfinite"] = np.asarray(np.int64(finite.size - finite.sum()))
    if "ep_z" in out and abs(float(out["ep_z"])) > float(out["ep_zcrit"]):
        log.warning("%s: ep deviates from the exact value by %.1f standard errors (critical "
                    "%.2f)", ds.attrs.get("point"), float(out["ep_z"]),
                    float(out["ep_zcrit"]))  # fmt: skip
    return out


POINT_COORDINATES = {
    "ensemble": ("weight ensemble (config name)", "1"),
    "weights": ("kind of weight ensemble", "1"),
    "activation": ("activation f", "1"),
    "coupling_matrix": ("ring coupling matrix C (rings)", "1"),
    "neurons": ("neurons n", "1"),
    "subsystems": ("subsystems D", "1"),
    "contraction": ("contraction a (spectral radius of W; rings: of each ring)", "1"),
    "antisymmetric_fraction": ("antisymmetric fraction k (ginibre)", "1"),
    "coupling": ("coupling eps between rings (rings)", "1"),
    "gain": ("gain g of f", "1"),
    "noise": ("noise amplitude s", "1"),
}
_STRING_COORDS = ("ensemble", "weights", "activation", "coupling_matrix")
ANALYSIS_META = {
    "ep": ("stationary entropy production per step and neuron, conditioned on W", "nats"),
    "ep_medium": ("medium part of ep (time-averaged bulk-loss difference / s^2)", "nats"),
    "annealed": ("annealed entropy production per step and neuron (W not conditioned on)",
                 "nats"),
    "annealed_medium": ("medium part of annealed", "nats"),
    "subsystem_mean": ("time and network average of the subsystem average state xbar^mu", "1"),
    "subsystem_corr": ("equal-time correlation of the subsystem averages xbar^mu, xbar^nu",
                       "1"),
    "subsystem_current": ("antisymmetric lag-1 covariance (E[xbar^mu_t xbar^nu_t+1] - "
                          "E[xbar^nu_t xbar^mu_t+1]) / 2 of the subsystem averages", "1"),
    "ep_exact": ("exact production per neuron, mean over the same networks", "nats"),
    "ep_closed_form": ("ensemble-mean production per neuron from the closed forms of PHYSICS.md "
                       "section 4 (NaN where none)", "nats"),
    "ep_paired_se": ("standard error of ep - ep_exact (time noise only)", "nats"),
    "ep_z": ("(ep - ep_exact) / ep_paired_se", "1"),
    "ep_zcrit": ("Student-t critical value for ep_z at the default significance (blocks - 1 "
                 "dof)", "1"),
    "ep_time_se": ("batch-means error of one network's ep from blocking its trajectory in time",
                   "nats"),
    "ep_network_sd": ("standard deviation of ep over networks (disorder and time noise)", "nats"),
    "annealed_exact": ("exact annealed production per neuron (0 for the P/P^T mixture)", "nats"),
    "nonfinite": ("networks excluded for non-finite results", "1"),
    "subsystem": ("subsystem mu", "1"),
    "subsystem2": ("subsystem nu", "1"),
}  # fmt: skip
for _name in ("ep", "ep_medium", "annealed", "annealed_medium", "subsystem_mean",
              "subsystem_corr", "subsystem_current"):  # fmt: skip
    _long, _units = ANALYSIS_META[_name]
    ANALYSIS_META[f"{_name}_se"] = (f"jackknife standard error of {_name}", _units)
ANALYSIS_META["subsystem_mean_exact"] = ("exact subsystem_mean (mean over networks)", "1")
ANALYSIS_META["subsystem_corr_exact"] = ("exact subsystem_corr (mean over networks)", "1")
ANALYSIS_META["subsystem_current_exact"] = ("exact subsystem_current (mean over networks)", "1")


def analyze(points: Sequence[xr.Dataset], options: Mapping | None = None) -> xr.Dataset:
    """Study dataset over ``point`` (subsystem matrices NaN-padded to the largest D), with the
    exact curves and the ring fits."""
    rows = [_analyze_one(ds) for ds in points]
    return _study(rows)


def _analyze_one(ds) -> tuple[str, dict, dict, str]:
    """(point name, params, per-point arrays, config_sha256) of one point file."""
    p = PointSpec.from_json(str(ds.attrs["params"])).params
    return str(ds.attrs["point"]), p, analyze_point(ds, p), str(ds.attrs["config_sha256"])


def _analyze_file(path: str) -> tuple[str, dict, dict, str]:
    from nnfield.store import read_raw

    return _analyze_one(read_raw(path, study="hidden", required=RAW_VARIABLES))


MIN_PARALLEL = 50
"""Point files from which analyze_files starts worker processes (fewer: serial)."""


def analyze_files(
    paths: Sequence[str], options: Mapping | None = None, workers: int | None = None, progress=None
) -> xr.Dataset:
    """``analyze`` straight from point files, read (netCDF4, no xarray) and reduced in
    ``workers`` processes (default: the CPUs this process may use): sweeps of 10^4 points."""
    from nnfield.parallel import map_in_processes

    rows = map_in_processes(_analyze_file, [str(p) for p in paths], workers, MIN_PARALLEL,
                            progress, "analysed {done}/{total} point files")  # fmt: skip
    return _study(rows)


def _study(rows: list[tuple[str, dict, dict, str]]) -> xr.Dataset:
    """The study dataset from (point name, params, per-point arrays, config_sha256) rows."""
    from nnfield.studies import hidden_theory

    names = [r[0] for r in rows]
    params = [r[1] for r in rows]
    study = _assemble(names, params, [r[2] for r in rows])
    study = study.merge(hidden_theory.curves(params))
    study = study.merge(hidden_theory.ring_fits(study, params))
    study.attrs = provenance("hidden", "", points_sha256((r[0], r[3]) for r in rows))
    study.attrs.update(
        entropy_units="nats per step per neuron",
        dynamics="x' = f(W x + b) + s xi, f(u) = g u or tanh(g u); see nnfield.hidden_dynamics",
        critical_values=stats.CRITICAL_VALUE_METHOD,
    )
    meta = {**ANALYSIS_META, **POINT_COORDINATES, **hidden_theory.META,
            "point": ("sweep point name", "1")}  # fmt: skip
    return annotate(study, meta)


_SUBSYSTEM_DIMS = {0: ("point",), 1: ("point", "subsystem"),
                   2: ("point", "subsystem", "subsystem2")}  # fmt: skip


def _assemble(names: list[str], params: list[Mapping], results: list[dict]) -> xr.Dataset:
    """One dataset over ``point`` from per-point arrays: subsystem axes NaN-padded to the
    largest D, variables a point lacks NaN."""
    d_max = max(int(p["subsystems"]) for p in params)
    ndims = {name: value.ndim for one in results for name, value in one.items()}
    data = {}
    for name, ndim in ndims.items():
        stacked = np.full((len(results),) + (d_max,) * ndim, np.nan)
        for i, one in enumerate(results):
            if name in one:
                value = one[name]
                stacked[(i, *(slice(0, k) for k in value.shape))] = value
        data[name] = (_SUBSYSTEM_DIMS[ndim], stacked)
    data["nonfinite"] = (("point",), data["nonfinite"][1].astype(np.int64))
    for key in POINT_COORDINATES:
        values = [p[key] if key in _STRING_COORDS else float(p[key]) for p in params]
        data[key] = (("point",), np.asarray(values))
    coords = {"point": names, "subsystem": np.arange(d_max), "subsystem2": np.arange(d_max)}
    return xr.Dataset(data, coords=coords)


def _figures():
    from nnfield.figures.hidden import hidden_entropy

    return {"hidden_entropy": hidden_entropy}


def __getattr__(name):
    if name == "FIGURES":
        return _figures()
    raise AttributeError(name)
