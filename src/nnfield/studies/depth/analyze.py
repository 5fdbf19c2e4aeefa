"""Study ``depth``: layer-to-layer flow of deep MLP ensembles (docs/physics.md section 2).

Raw data: per-block, per-layer sums from nnfield.studies.depth.sampler (the stochastic metric
G^(l), its
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
from nnfield.engine.blocks import (
    analyze_each,
    check_family,
    drop_nonfinite_blocks,
)
from nnfield.engine.simulate import cf_attributes
from nnfield.engine.store import annotate, provenance
from nnfield.studies.depth.sample import FAMILY_ATTRS, RAW_VARIABLES, VARIABLES
from nnfield.studies.depth.theory import TRUNCATION_FACTOR

log = logging.getLogger(__name__)


NLO_TRUNCATION_SHARE = 0.5
"""A layer enters the K test only where, for every input pair, the estimated truncation error
of the NLO mean metric (``DeepTheory.truncation_estimate``: the NLO correction times the
normalised vertex V/(N K^2) over 4) is at most this share of the standard error of E[G].
Where the estimate is right to a factor 2 (as it was where exact remainders were measured),
the omitted O(1/N^2) terms move a z-score by at most about 1.  One constant for every point;
deeper layers (l/N too large for NLO) are shown in the figure but not tested.  The more networks,
the fewer layers pass: a larger ensemble resolves the O(1/N^2) terms."""

HEAVY_TAIL_KEYS = ("heavy_tail_skewness", "max_influence", "min_error_ratio")


def analysis_settings(options: Mapping) -> dict:
    """The depth study's analysis options with the schema's defaults (analyze may be called
    without validation)."""
    from nnfield.config import load_schema

    schema = load_schema()["$defs"]["depth"]["properties"]
    settings = {k: v["default"] for k, v in schema["analysis"]["properties"].items()}
    settings.update(options)
    return settings


def k_test_range() -> str:
    """How the K test's layers are chosen (stored as a dataset attribute)."""
    return (
        "K is tested against the NLO mean metric K + K1/N at layers l > 1 that are not flagged "
        "heavy-tailed and where, for every input pair, the estimated NLO truncation error "
        f"sqrt(K_aa K_bb) r eps / {TRUNCATION_FACTOR:g} (r = max over layers <= l of |K1_ab| / "
        "(N sqrt(K_aa K_bb)), eps = max over layers <= l and inputs of V_aa / (N K_aa^2)) is at "
        f"most {NLO_TRUNCATION_SHARE:g} of the jackknife standard error; the critical value is "
        "Student-t Bonferroni over the tested values with blocks - 1 dof"
    )


def heavy_tail_diagnostics(
    ds: xr.Dataset, counts: np.ndarray, exact_moments: np.ndarray | None, settings: Mapping
) -> dict[str, np.ndarray]:
    """Heavy-tail diagnostics of the kurtosis estimator 3 E[G_aa^2] / E[G_aa]^2 - 3, per
    (layer, input), and the per-layer flag (any input):
      skew         skewness of the sampling distribution, from the per-block estimates;
      influence    the largest single network's G_aa^2 over M, in standard errors of mean G_aa^2;
      error_ratio  jackknife over exact standard error of mean G_aa^2 where the exact moments
                   of G are known (NaN elsewhere): far below 1 means the tail that carries the
                   variance was never sampled.
    Layer 1 (G = K^(1) exactly, no fluctuation) is never flagged; elsewhere a diagnostic that
    cannot be computed (NaN) flags."""
    n = ds.sizes["input"]
    diag2 = _diagonal_rows(n, 2)
    diag4 = _diagonal_rows(n, 4)
    g = ds["g2"].values[..., diag2]  # (B, L, n) sums of G_aa
    gg = ds["g4"].values[..., diag4] / 3.0  # sums of G_aa^2 (the Wick sum is 3 G_aa^2)
    per_block = counts.astype(np.float64)[:, None, None]
    skew = np.zeros(g.shape[1:])  # layer 1 has no fluctuation: no skewness to measure
    with np.errstate(invalid="ignore", divide="ignore"):
        block_kurtosis = 3 * (gg[:, 1:] / per_block) / (g[:, 1:] / per_block) ** 2 - 3
        skew[1:] = stats.sampling_skewness(block_kurtosis, axis=0)
    se = stats.jackknife({"gg": gg}, counts, lambda m: m["gg"]).stderr  # (L, n)
    total = float(counts.sum())
    biggest = ds["max_gg"].values.max(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        influence = np.where(se == 0, 0.0, biggest / (total * se))  # NaN se: NaN, flags
        ratio = np.full(se.shape, np.nan)
        if exact_moments is not None:
            exact_se = np.sqrt(np.maximum(exact_moments[4] - exact_moments[2] ** 2, 0) / total)
            ratio = np.where(exact_se > 0, se / exact_se, np.nan)
    # fail closed: a diagnostic that cannot be computed (NaN) flags the layer; the error ratio
    # only where the exact moments are known
    with np.errstate(invalid="ignore"):
        flagged = ~(
            (np.abs(skew) <= settings["heavy_tail_skewness"])
            & (influence <= settings["max_influence"])
        )
        if exact_moments is not None:
            flagged |= ~(ratio >= settings["min_error_ratio"])
    flagged[0] = False
    return {
        "kurtosis_skew": skew,
        "kurtosis_influence": influence,
        "kurtosis_error_ratio": ratio,
        "kurtosis_heavy_tail": flagged.any(axis=1).astype(np.int8),
    }


def _diagonal_rows(n_inputs: int, order: int) -> np.ndarray:
    """Rows of the colex tuple list that repeat one input (a, a, ..., a)."""
    rows = tup.sorted_tuples(n_inputs, order)
    return np.flatnonzero((rows == rows[:, :1]).all(axis=1))


def analyze_point(ds: xr.Dataset, options: Mapping) -> xr.Dataset:
    """Per-layer estimates with jackknife errors, the theory columns, the heavy-tail flags and
    the K test against the NLO mean metric for one point."""
    from nnfield.studies.depth.theory import deep_theory, metric_moments

    settings = analysis_settings(options)
    ds, nonfinite, dropped = drop_nonfinite_blocks(ds)
    x = ds["x"].values
    n = x.shape[0]
    width, depth = int(ds["width"]), int(ds["depth"])
    activation, cw, cb = str(ds.attrs["activation"]), float(ds.attrs["cw"]), float(ds.attrs["cb"])
    counts = ds["count"].values
    diag2 = _diagonal_rows(n, 2)
    diag4 = _diagonal_rows(n, 4)
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
    th = deep_theory(activation, x, depth, cw, cb)
    t2 = tup.sorted_tuples(n, 2)
    pairs = (slice(None), t2[:, 0], t2[:, 1])
    out["K_theory"] = (("layer", "tuple2"), th.K[pairs])
    out["K_nlo"] = (("layer", "tuple2"), th.mean_metric(width)[pairs])
    out["K_truncation"] = (("layer", "tuple2"), th.truncation_estimate(width)[pairs])
    out["kurtosis_theory"] = (("layer", "input"), th.excess_kurtosis(width))
    out["vertex_theory"] = (
        ("layer", "input"),
        th.V_diag / np.diagonal(th.K, axis1=1, axis2=2) ** 2,
    )
    moments = metric_moments(activation, x, depth, width, cw, cb)
    if moments is not None:  # ReLU, linear with C_b = 0: 3 E[G^2] / E[G]^2 - 3 exactly
        out["kurtosis_exact"] = (("layer", "input"), 3 * moments[2] / moments[1] ** 2 - 3)
    for name, value in heavy_tail_diagnostics(ds, counts, moments, settings).items():
        out[name] = (("layer",) if value.ndim == 1 else ("layer", "input"), value)
    _k_test(out, est["K"], settings, stats.jackknife_dof(len(counts)))
    out["networks"] = ((), np.int64(counts.sum()))
    out["nonfinite"] = ((), np.int64(nonfinite))
    out["dropped_blocks"] = ((), np.int64(dropped))
    return out


def _k_test(out: xr.Dataset, k_est: stats.Estimate, settings: Mapping, dof: int) -> None:
    """The K test against K_nlo over the layers chosen by ``k_test_range`` (in place), and the
    same max |z| against the leading-order recursion over the same values (K_lo_maxz)."""
    se = k_est.stderr
    layer = out["layer"].values
    with np.errstate(invalid="ignore"):
        resolved = np.all(out["K_truncation"].values <= NLO_TRUNCATION_SHARE * se, axis=1)
    tested = (layer > 1) & (out["kurtosis_heavy_tail"].values == 0) & resolved
    tested &= np.all(se > 0, axis=1)
    out["K_tested"] = (("layer",), tested.astype(np.int8))
    alpha = float(settings["significance"])
    nan = np.float64(np.nan)
    out["K_maxz"] = out["K_zcrit"] = out["K_lo_maxz"] = ((), nan)
    out["K_tests"] = ((), np.int64(tested.sum() * se.shape[1]))
    if tested.any():
        value, err = k_est.value[tested], se[tested]
        nlo = stats.max_z_test(value, err, out["K_nlo"].values[tested], alpha, dof)
        lo = stats.max_z_test(value, err, out["K_theory"].values[tested], alpha, dof)
        out["K_maxz"], out["K_zcrit"] = ((), nlo.max_abs_z), ((), nlo.critical)
        out["K_lo_maxz"] = ((), lo.max_abs_z)


ANALYSIS_META = {
    "K": ("mean stochastic metric E[G^(l)] (kernel), sorted input pairs", "1"),
    "K_theory": ("infinite-width kernel recursion K^(l) (leading order)", "1"),
    "K_nlo": ("next-to-leading-order mean metric K^(l) + K1^(l) / N", "1"),
    "K_truncation": ("estimate of the O(1/N^2) terms K_nlo leaves out (not a bound)", "1"),
    "K_tested": ("1 if the layer enters the K test (see the K_test_range attribute)", "1"),
    "K_tests": ("number of values (layers x input pairs) in the K test", "1"),
    "K_lo_maxz": ("max |z| of K against the leading-order K_theory over the tested values", "1"),
    "kurtosis": ("excess kurtosis of one neuron, conditional estimator 3 Var(G)/E[G]^2", "1"),
    "kurtosis_neurons": ("excess kurtosis of one neuron from the sampled preactivations", "1"),
    "kurtosis_theory": ("leading-order excess kurtosis 3 V^(l) / (N K^2)", "1"),
    "kurtosis_exact": (
        "exact excess kurtosis 3 E[G^2]/E[G]^2 - 3 (ReLU, linear with C_b = 0; "
        "ReLU: 3 ((1 + 5/N)^(l-1) - 1))",
        "1",
    ),
    "kurtosis_skew": ("estimated skewness of the sampling distribution of kurtosis", "1"),
    "kurtosis_influence": (
        "largest single-network G_aa^2 over the number of networks, in standard errors of mean "
        "G_aa^2 (about the shift of the mean if that network were removed)",
        "1",
    ),
    "kurtosis_error_ratio": (
        "jackknife / exact standard error of mean G_aa^2 (NaN: no exact moments)",
        "1",
    ),
    "kurtosis_heavy_tail": (
        "1 if the layer's kurtosis error bar is unreliable (skew, influence "
        "or error ratio at any input): hollow in figures, left out of tests",
        "1",
    ),
    "vertex_theory": ("normalised 4-point vertex V^(l) / K^2 from the recursion", "1"),
    "var_log_g": ("variance of log G^(l)_aa (non-Gaussianity at depth ~ width)", "1"),
    "dead": ("networks whose G^(l)_aa = 0 (all units of the previous layer off)", "1"),
    "K_maxz": ("max |z| of K against K_nlo over the tested layers and pairs", "1"),
    "K_zcrit": ("Bonferroni Student-t critical value for K_maxz (blocks - 1 dof)", "1"),
    "networks": ("networks in the ensemble", "1"),
    "nonfinite": ("networks with a NaN/inf statistic (their blocks are dropped)", "1"),
    "dropped_blocks": ("blocks dropped for holding a non-finite network", "1"),
    "activation": ("activation function", "1"),
    "cw": ("weight variance C_W", "1"),
    "cb": ("bias variance C_b", "1"),
    "x": ("network input", "1"),
    **{
        k: v
        for k, v in cf_attributes(VARIABLES).items()
        if k in ("layer", "width", "depth", "family")
    },
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
    families: dict[str, list[xr.Dataset]] = {}
    for ds in points:
        families.setdefault(str(ds["family"].values), []).append(ds)
    for group in families.values():
        check_family(group, FAMILY_ATTRS)

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
    study.attrs = provenance("depth")
    study.attrs.update(
        refused_points=refused,
        layer_convention="l = 1..L counts weight matrices (z^(1) = b + W x); W^(1) ~ N(0, C_W/d), "
        "W^(l>1) ~ N(0, C_W/N), b ~ N(0, C_b)",
        vertex_convention="E[z_a1 z_a2 z_a3 z_a4]_conn = (V_(12)(34) + V_(13)(24) + V_(14)(23))/N",
        mean_metric_convention="E[G^(l)] = K^(l) + K1^(l)/N + O(1/N^2); K1 from the O(1/N) "
        "Edgeworth recursion (nnfield.studies.depth.theory)",
        K_test_range=k_test_range(),
        critical_values=stats.CRITICAL_VALUE_METHOD,
        **{k: float(v) for k, v in analysis_settings(options).items()},
    )
    return annotate(study, ANALYSIS_META)


def analyze_files(paths, options: Mapping | None = None, progress=None) -> xr.Dataset:
    """:func:`analyze` of the point files ``paths``."""
    from nnfield.engine.analysis import analyze_read_points

    return analyze_read_points(paths, "depth", RAW_VARIABLES, analyze, options or {}, progress)
