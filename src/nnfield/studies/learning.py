"""Study ``learning``: thermodynamics of ensembles trained by noisy gradient descent (PHYSICS.md 3).

So far the exact case: a quadratic loss U = q^T A q / 2 trained by SGLD (temperature T) or SGD-like
anisotropic noise (nnfield.learning_dynamics), every observable against the exact linear-Gaussian
theory (nnfield.theory.thermo).  Per recorded step, with delete-one-block jackknife errors:
  loss = <U>;  S = Gaussian entropy of the trainable variables (bias-corrected, nats);
  medium = accumulated medium entropy (heat / T), from the exact transition-kernel log-ratio;
  pi = total entropy production per step between records, (Delta S + Delta medium) / steps;
  free_energy = <U> - T S (SGLD);  tconf_ratio = <|grad U|^2> / (<lap U> T) (SGLD).
The second law is asserted in analyze and reported, never clipped: ``pi_violation`` and
``free_energy_violation`` count the intervals where Pi < 0 (dF > 0) by more than the critical z.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from nnfield import stats
from nnfield.config import PointSpec
from nnfield.entropy import entropy_from_covariance
from nnfield.store import annotate, backend_name, provenance
from nnfield.studies.blocks import merge as merge  # re-exported: the study interface
from nnfield.studies.blocks import shard_blocks

log = logging.getLogger(__name__)

RAW_VARIABLES = ("count", "q1", "qq", "loss", "loss2", "grad2", "medium", "medium2")
RAW_META = {
    "count": ("networks in block", "1"),
    "q1": ("sum over networks of the trainable variables q", "1"),
    "qq": ("sum over networks of q q^T", "1"),
    "loss": ("sum over networks of the loss U", "1"),
    "loss2": ("sum over networks of U^2", "1"),
    "grad2": ("sum over networks of |grad U|^2", "1"),
    "medium": ("sum over networks of the accumulated medium entropy (nats)", "1"),
    "medium2": ("sum over networks of the squared accumulated medium entropy", "1"),
    "step": ("training step of the record", "1"),
    "block": ("block index (keys derive from it)", "1"),
}
INITIAL = {"narrow": (1.0, 0.01**2), "broad": (0.0, 9.0)}
"""Initial ensembles: (mean of every coordinate, variance of every coordinate)."""


def problem(p: Mapping):
    """(NoisyQuadratic dynamics, Hessian A, temperature or NaN) of a point's parameters."""
    from nnfield.learning_dynamics import NoisyQuadratic

    eig = np.asarray(p["hessian_eigenvalues"], dtype=np.float64)
    dim = eig.size
    rot = np.eye(dim)
    if dim >= 2:
        c, s = np.cos(p["rotation"]), np.sin(p["rotation"])
        rot[:2, :2] = [[c, -s], [s, c]]
    hessian = rot @ np.diag(eig) @ rot.T
    if p["optimizer"] == "sgld":
        dyn = NoisyQuadratic.sgld(hessian, p["learning_rate"], p["temperature"])
        return dyn, hessian, float(p["temperature"])
    dyn = NoisyQuadratic.sgd(hessian, p["learning_rate"], np.diag(p["noise_eigenvalues"]))
    return dyn, hessian, float("nan")


def initial_ensemble(p: Mapping) -> tuple[np.ndarray, np.ndarray]:
    dim = len(p["hessian_eigenvalues"])
    mean, var = INITIAL[p["initial"]]
    return np.full(dim, mean), var * np.eye(dim)


def simulate(spec: PointSpec, shard: int = 0, progress=None) -> xr.Dataset:
    from nnfield.learning_dynamics import run_blocks
    from nnfield.rng import point_key

    p = spec.params
    dyn, _, _ = problem(p)
    mean0, cov0 = initial_ensemble(p)
    blocks = shard_blocks(p["networks"] // p["block_size"], shard, p["shards"])
    n_records = p["steps"] // p["record_every"] + 1
    key = point_key(spec.seed, spec.study, spec.name)
    rec = run_blocks(
        dyn, mean0, cov0, key, blocks, p["block_size"], n_records, p["record_every"],
        progress, spec.name,
    )  # fmt: skip
    b, r = ("block",), ("block", "step")
    ds = xr.Dataset(
        {
            "count": (b, rec.count),
            "q1": (("block", "step", "dim"), rec.q1),
            "qq": (("block", "step", "dim", "dim2"), rec.qq),
            **{k: (r, getattr(rec, k)) for k in ("loss", "loss2", "grad2", "medium", "medium2")},
        },
        coords={"block": np.asarray(list(blocks), dtype=np.int64), "step": rec.steps},
    )
    ds.attrs = provenance("learning", spec.name, spec.sha256, backend_name())
    ds.attrs.update(
        {k: p[k] for k in ("problem", "optimizer", "initial", "learning_rate", "temperature")},
        n_blocks=np.int64(p["networks"] // p["block_size"]),
        params=spec.to_json(),
    )
    return annotate(ds, RAW_META)


def _entropy(m, total: float):
    """Bias-corrected Gaussian entropy (nnfield.entropy) from the means of q and q q^T."""
    mean = m["q1"]
    cov = (m["qq"] - mean[..., :, None] * mean[..., None, :]) * total / (total - 1)
    return entropy_from_covariance(cov, total)


def _exact(dyn, mean0, cov0, steps: np.ndarray, hessian: np.ndarray) -> dict[str, np.ndarray]:
    """Exact loss, entropy, accumulated medium entropy and T_conf numerator at ``steps``."""
    from nnfield.theory.thermo import LinearGaussianStep, gaussian_entropy

    step = LinearGaussianStep(dyn.transition, dyn.noise)
    mean, cov, produced = mean0, cov0, 0.0
    out = {k: [] for k in ("loss", "entropy", "medium", "grad2")}
    s0 = gaussian_entropy(cov0)
    recorded = set(steps.tolist())
    for n in range(int(steps[-1]) + 1):
        if n in recorded:
            out["loss"].append(0.5 * (np.trace(hessian @ cov) + mean @ hessian @ mean))
            out["entropy"].append(gaussian_entropy(cov))
            out["medium"].append(produced - (gaussian_entropy(cov) - s0))
            g = hessian @ hessian
            out["grad2"].append(np.trace(g @ cov) + mean @ g @ mean)
        produced += step.entropy_production(mean, cov)
        mean, cov = step.propagate(mean, cov)
    return {k: np.asarray(v) for k, v in out.items()}


def analyze_point(ds: xr.Dataset, options: Mapping) -> xr.Dataset:
    import json

    p = PointSpec.from_json(str(ds.attrs["params"])).params
    dyn, hessian, temp = problem(p)
    mean0, cov0 = initial_ensemble(p)
    counts = ds["count"].values
    total = float(counts.sum())
    steps = ds["step"].values
    gaps = np.diff(steps).astype(float)
    sums = {k: ds[k].values for k in ("q1", "qq", "loss", "grad2", "medium")}
    lap = float(np.trace(hessian))

    def pi(m):
        s = _entropy(m, total)
        return (np.diff(s, axis=-1) + np.diff(m["medium"], axis=-1)) / gaps

    est = {
        "loss": stats.jackknife(sums, counts, lambda m: m["loss"]),
        "entropy": stats.jackknife(sums, counts, lambda m: _entropy(m, total)),
        "medium": stats.jackknife(sums, counts, lambda m: m["medium"]),
        "pi": stats.jackknife(sums, counts, pi),
    }
    if np.isfinite(temp):
        est["free_energy"] = stats.jackknife(
            sums, counts, lambda m: m["loss"] - temp * _entropy(m, total)
        )
        est["tconf_ratio"] = stats.jackknife(sums, counts, lambda m: m["grad2"] / (lap * temp))
    out = xr.Dataset(coords={"step": steps, "interval": (steps[1:] + steps[:-1]) / 2})
    for name, e in est.items():
        dim = "interval" if name == "pi" else "step"
        out[name] = ((dim,), e.value)
        out[f"{name}_se"] = ((dim,), e.stderr)
    ex = _exact(dyn, mean0, cov0, steps, hessian)
    out["loss_exact"] = (("step",), ex["loss"])
    out["entropy_exact"] = (("step",), ex["entropy"])
    out["medium_exact"] = (("step",), ex["medium"])
    out["pi_exact"] = (("interval",), (np.diff(ex["entropy"]) + np.diff(ex["medium"])) / gaps)
    if np.isfinite(temp):
        out["free_energy_exact"] = (("step",), ex["loss"] - temp * ex["entropy"])
        out["tconf_ratio_exact"] = (("step",), ex["grad2"] / (lap * temp))
    crit = stats.bonferroni_z(float(options.get("significance", 1e-3)), max(len(gaps), 1))
    out["pi_violation"] = ((), np.int32(np.sum(est["pi"].value < -crit * est["pi"].stderr)))
    if np.isfinite(temp):
        d_free = stats.jackknife(
            sums, counts, lambda m: np.diff(m["loss"] - temp * _entropy(m, total), axis=-1)
        )
        out["free_energy_violation"] = ((), np.int32(np.sum(d_free.value > crit * d_free.stderr)))
    for flag in ("pi_violation", "free_energy_violation"):
        if flag in out and int(out[flag]) > 0:
            log.warning("%s: %s in %d intervals (second law check failed)",
                        ds.attrs.get("point"), flag, int(out[flag]))  # fmt: skip
    out.attrs["params"] = json.dumps(p, sort_keys=True)
    return out


ANALYSIS_META = {
    "loss": ("ensemble mean loss <U>", "1"),
    "entropy": ("Gaussian entropy of the trainable variables (bias-corrected)", "nats"),
    "medium": ("accumulated medium entropy (heat / T) from the transition-kernel log-ratio",
               "nats"),
    "pi": ("total entropy production per step between records", "nats"),
    "free_energy": ("non-equilibrium free energy <U> - T S", "1"),
    "tconf_ratio": ("configurational temperature over T, <|grad U|^2> / (<lap U> T)", "1"),
    "pi_violation": ("intervals with Pi < 0 beyond the critical z (should be 0)", "1"),
    "free_energy_violation": ("intervals with dF > 0 beyond the critical z (should be 0)", "1"),
    "step": ("training step", "1"),
    "interval": ("midpoint of the interval between records", "1"),
}  # fmt: skip
for _name in list(ANALYSIS_META)[:6]:
    long_name, units = ANALYSIS_META[_name]
    ANALYSIS_META[f"{_name}_se"] = (f"jackknife standard error of {_name}", units)
    ANALYSIS_META[f"{_name}_exact"] = (f"exact {long_name}", units)


def analyze(points: Sequence[xr.Dataset], options: Mapping | None = None) -> xr.Dataset:
    """Study dataset over (point, step): one entry per (problem, lr, T, initial)."""
    options = dict(options or {})
    per_point = []
    for ds in points:
        one = analyze_point(ds, options)
        one = one.expand_dims(point=[str(ds.attrs["point"])])
        for key in ("problem", "optimizer", "initial"):
            one[key] = (("point",), [str(ds.attrs[key])])
        for key in ("learning_rate", "temperature"):
            one[key] = (("point",), [float(ds.attrs[key])])
        one.attrs = {}
        per_point.append(one)
    study = xr.concat(per_point, dim="point", join="outer")
    study.attrs = provenance("learning", "", "")
    study.attrs.update(
        entropy_units="nats",
        dynamics="q' = q - eta A q + xi, xi ~ N(0, 2 eta T I) (sgld) or N(0, eta^2 C) (sgd)",
    )
    meta = {**ANALYSIS_META, "point": ("sweep point name", "1"),
            "problem": ("problem (config name)", "1"), "optimizer": ("optimizer", "1"),
            "initial": ("initial ensemble", "1"), "learning_rate": ("learning rate eta", "1"),
            "temperature": ("temperature T", "1")}  # fmt: skip
    return annotate(study, meta)


def _figures():
    from nnfield.figures.learning import learning_thermo

    return {"learning_thermo": learning_thermo}


def __getattr__(name):
    if name == "FIGURES":
        return _figures()
    raise AttributeError(name)
