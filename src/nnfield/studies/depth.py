"""Study ``depth``: layer-to-layer flow of deep MLP ensembles (PHYSICS.md section 2).

Raw data: per-block, per-layer sums from nnfield.deep_ensemble (the stochastic metric G^(l), its
Wick sums, the per-neuron 2- and 4-point functions, log G).  Analysis per point and layer:
  K       = E[G^(l)] over sorted input pairs, against the kernel recursion K^(l);
  kurtosis = E[z^4] / E[z^2]^2 - 3 of one neuron at each input, from the conditional estimator
            (3 Var(G) / E[G]^2) and from the sampled preactivations, against the leading-order
            prediction 3 V^(l) / (N K^2) (and the exact product formula for ReLU with C_b = 0);
  var_log_g = Var(log G^(l)_aa), the well-behaved measure of non-Gaussianity at depth ~ width.
The study dataset has dimensions (family, width, depth, layer, ...); layers beyond a point's depth
are NaN.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from nnfield import stats
from nnfield import tuples as tup
from nnfield.config import PointSpec
from nnfield.store import annotate, backend_name, provenance
from nnfield.studies.blocks import (
    analyze_each,
    drop_nonfinite_blocks,
    report_nonfinite,
    shard_blocks,
)
from nnfield.studies.blocks import merge as merge  # re-exported: the study interface

log = logging.getLogger(__name__)

RAW_VARIABLES = ("count", "nonfinite", "g2", "g4", "z2", "z4", "logg", "logg2", "dead", "x")
RAW_META = {
    "count": ("networks in block", "1"),
    "nonfinite": ("networks in block with a NaN/inf statistic at some layer", "1"),
    "g2": ("sum over networks of the stochastic metric G^(l) over sorted input pairs", "1"),
    "g4": ("sum over networks of the Wick sums of G^(l) (conditional 4-point function)", "1"),
    "z2": ("sum over networks of the neuron-averaged z_a z_b", "1"),
    "z4": ("sum over networks of the neuron-averaged 4-fold products of z", "1"),
    "logg": ("sum over networks of log G^(l)_aa", "1"),
    "logg2": ("sum over networks of (log G^(l)_aa)^2", "1"),
    "dead": ("networks with G^(l)_aa = 0 (all previous units off)", "1"),
    "x": ("network input", "1"),
    "block": ("block index (keys derive from it)", "1"),
    "layer": ("layer l (number of weight matrices applied; z^(1) = b + W x)", "1"),
    "width": ("hidden-layer width N", "1"),
    "depth": ("network depth L (weight matrices)", "1"),
    "family": ("activation family (config name)", "1"),
}
FAMILY_ATTRS = ("activation", "cw", "cb", "input_dim")


def simulate(spec: PointSpec, shard: int = 0, progress=None) -> xr.Dataset:
    """Raw per-layer block sums for the blocks of ``shard``."""
    from nnfield.deep_ensemble import DeepMLP, run_blocks
    from nnfield.rng import point_key

    p = spec.params
    mlp = DeepMLP(p["activation"], p["width"], p["depth"], p["cw"], p["cb"], p["dtype"])
    inputs = np.asarray(p["inputs"], dtype=np.float64)
    blocks = shard_blocks(p["networks"] // p["block_size"], shard, p["shards"])
    key = point_key(spec.seed, spec.study, spec.name)
    sums = run_blocks(mlp, inputs, key, blocks, p["block_size"], progress, label=spec.name)
    report_nonfinite(spec.name, sums.nonfinite, blocks, "layer statistics")
    dims2, dims4, dimsn = ("block", "layer", "tuple2"), ("block", "layer", "tuple4"), (
        "block", "layer", "input")  # fmt: skip
    ds = xr.Dataset(
        {
            "count": (("block",), sums.count),
            "nonfinite": (("block",), sums.nonfinite),
            "g2": (dims2, sums.g2),
            "g4": (dims4, sums.g4),
            "z2": (dims2, sums.z2),
            "z4": (dims4, sums.z4),
            "logg": (dimsn, sums.logg),
            "logg2": (dimsn, sums.logg2),
            "dead": (dimsn, sums.dead.astype(np.int64)),
            "x": (("input", "component"), inputs),
        },
        coords={
            "block": np.asarray(list(blocks), dtype=np.int64),
            "layer": np.arange(1, p["depth"] + 1),
            "family": p["family"],
            "width": np.int64(p["width"]),
            "depth": np.int64(p["depth"]),
        },
    )
    ds.attrs = provenance("depth", spec.name, spec.sha256, backend_name())
    ds.attrs.update({k: p[k] for k in FAMILY_ATTRS})
    ds.attrs.update(
        networks=np.int64(p["networks"]),
        block_size=np.int64(p["block_size"]),
        n_blocks=np.int64(p["networks"] // p["block_size"]),
        seed=np.int64(spec.seed),
        dtype=p["dtype"],
        layer_convention="l = 1..L counts weight matrices; W^(1) ~ N(0, C_W/d), "
        "W^(l>1) ~ N(0, C_W/N), b ~ N(0, C_b)",
    )
    return annotate(ds, RAW_META)


def analyze_point(ds: xr.Dataset, options: Mapping) -> xr.Dataset:
    """Per-layer estimates with jackknife errors and the theory columns for one point."""
    from nnfield.theory.deep import deep_theory

    ds, nonfinite, dropped = drop_nonfinite_blocks(ds)
    x = ds["x"].values
    n = x.shape[0]
    width, depth = int(ds["width"]), int(ds["depth"])
    counts = ds["count"].values
    diag2 = np.flatnonzero(tup.sorted_tuples(n, 2)[:, 0] == tup.sorted_tuples(n, 2)[:, 1])
    t4 = tup.sorted_tuples(n, 4)
    diag4 = np.flatnonzero((t4 == t4[:, :1]).all(axis=1))
    sums = {k: ds[k].values for k in ("g2", "g4", "z2", "z4", "logg", "logg2")}

    def kurt(second, fourth):
        return lambda m: m[fourth][..., diag4] / m[second][..., diag2] ** 2 - 3

    est = {
        "K": stats.jackknife(sums, counts, lambda m: m["g2"]),
        "kurtosis": stats.jackknife(sums, counts, kurt("g2", "g4")),
        "kurtosis_neurons": stats.jackknife(sums, counts, kurt("z2", "z4")),
        "var_log_g": stats.jackknife(sums, counts, lambda m: m["logg2"] - m["logg"] ** 2),
    }
    dead = ds["dead"].values.sum(axis=0)  # (layer, input)
    dims = {"K": ("layer", "tuple2")}
    out = xr.Dataset(coords={"layer": ds["layer"].values})
    for name, e in est.items():
        d = dims.get(name, ("layer", "input"))
        out[name] = (d, e.value)
        out[f"{name}_se"] = (d, e.stderr)
    out["var_log_g"] = out["var_log_g"].where(dead == 0)  # log G undefined for dead networks
    out["var_log_g_se"] = out["var_log_g_se"].where(dead == 0)
    out["dead"] = (("layer", "input"), dead)
    th = deep_theory(str(ds.attrs["activation"]), x, depth, float(ds.attrs["cw"]),
                     float(ds.attrs["cb"]))  # fmt: skip
    t2 = tup.sorted_tuples(n, 2)
    out["K_theory"] = (("layer", "tuple2"), th.K[:, t2[:, 0], t2[:, 1]])
    out["kurtosis_theory"] = (("layer", "input"), th.excess_kurtosis(width))
    out["vertex_theory"] = (
        ("layer", "input"),
        th.V_diag / np.diagonal(th.K, axis1=1, axis2=2) ** 2,
    )
    if ds.attrs["activation"] == "relu" and float(ds.attrs["cb"]) == 0.0:
        layers = ds["layer"].values[:, None]
        exact = 3 * ((1 + 5 / width) ** (layers - 1) - 1) * np.ones((1, n))
        out["kurtosis_exact"] = (("layer", "input"), exact)
    alpha = float(options.get("significance", 1e-3))
    ok = est["K"].stderr[1:] > 0
    if ok.all():
        z = stats.max_z_test(est["K"].value[1:], est["K"].stderr[1:], out["K_theory"].values[1:],
                             alpha)  # fmt: skip
        out["K_maxz"], out["K_zcrit"] = ((), z.max_abs_z), ((), z.critical)
    out["networks"] = ((), np.int64(counts.sum()))
    out["nonfinite"] = ((), np.int64(nonfinite))
    out["dropped_blocks"] = ((), np.int64(dropped))
    return out


ANALYSIS_META = {
    "K": ("mean stochastic metric E[G^(l)] (kernel), sorted input pairs", "1"),
    "K_theory": ("infinite-width kernel recursion K^(l)", "1"),
    "kurtosis": ("excess kurtosis of one neuron, conditional estimator 3 Var(G)/E[G]^2", "1"),
    "kurtosis_neurons": ("excess kurtosis of one neuron from the sampled preactivations", "1"),
    "kurtosis_theory": ("leading-order excess kurtosis 3 V^(l) / (N K^2)", "1"),
    "kurtosis_exact": ("exact excess kurtosis 3 ((1 + 5/N)^(l-1) - 1) (ReLU, C_b = 0)", "1"),
    "vertex_theory": ("normalised 4-point vertex V^(l) / K^2 from the recursion", "1"),
    "var_log_g": ("variance of log G^(l)_aa (non-Gaussianity at depth ~ width)", "1"),
    "dead": ("networks whose G^(l)_aa = 0 (all units of the previous layer off)", "1"),
    "K_maxz": ("max |z| of K against the recursion over layers > 1 and pairs", "1"),
    "K_zcrit": ("Bonferroni critical |z| for K_maxz", "1"),
    "networks": ("networks in the ensemble", "1"),
    "nonfinite": ("networks with a NaN/inf statistic (their blocks are dropped)", "1"),
    "dropped_blocks": ("blocks dropped for holding a non-finite network", "1"),
    "activation": ("activation function", "1"),
    "cw": ("weight variance C_W", "1"),
    "cb": ("bias variance C_b", "1"),
    "x": ("network input", "1"),
    **{k: v for k, v in RAW_META.items() if k in ("layer", "width", "depth", "family")},
    "tuple2": ("index of a sorted input pair (colex order)", "1"),
    "input": ("input index", "1"),
}
for _name in ("K", "kurtosis", "kurtosis_neurons", "var_log_g"):
    ANALYSIS_META[f"{_name}_se"] = (f"jackknife standard error of {_name}", "1")


def analyze(points: Sequence[xr.Dataset], options: Mapping | None = None) -> xr.Dataset:
    """Study dataset with dimensions (family, width, depth, layer, ...)."""
    options = dict(options or {})
    if not points:
        raise ValueError("analyze needs at least one point")

    def one_point(ds: xr.Dataset) -> xr.Dataset:
        one = analyze_point(ds, options)
        one = one.assign_coords(tuple2=np.arange(one.sizes["tuple2"]),
                                input=np.arange(one.sizes["input"]))  # fmt: skip
        one = one.expand_dims(
            family=[str(ds["family"].values)], width=[int(ds["width"])], depth=[int(ds["depth"])]
        )
        one["activation"] = (("family",), [str(ds.attrs["activation"])])
        one["cw"] = (("family",), [float(ds.attrs["cw"])])
        one["cb"] = (("family",), [float(ds.attrs["cb"])])
        return one

    per_point, refused = analyze_each(points, one_point)
    study = xr.merge(per_point, join="outer", compat="no_conflicts", combine_attrs="drop")
    study.attrs = provenance("depth", "", "")
    study.attrs.update(
        refused_points=refused,
        layer_convention="l = 1..L counts weight matrices (z^(1) = b + W x); W^(1) ~ N(0, C_W/d), "
        "W^(l>1) ~ N(0, C_W/N), b ~ N(0, C_b)",
        vertex_convention="E[z_a1 z_a2 z_a3 z_a4]_conn = (V_(12)(34) + V_(13)(24) + V_(14)(23))/N",
        significance=float(options.get("significance", 1e-3)),
    )
    return annotate(study, ANALYSIS_META)


def _figures():
    from nnfield.figures.depth import depth_flow

    return {"depth_flow": depth_flow}


def __getattr__(name):  # FIGURES is built lazily so importing the study stays light
    if name == "FIGURES":
        return _figures()
    raise AttributeError(name)
