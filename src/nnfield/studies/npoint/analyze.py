"""Study ``npoint``: output correlators of single-hidden-layer networks at initialisation.

Raw data (simulate, merge): per-block float64 sums of f, and of 2-, 4- and 6-fold products of f
over colex-sorted input tuples.  Analysis: jackknife estimates of G2, G4, G6 and their connected
parts, the exact finite-width values (nnfield.theory.finite_width), the normalised deviations from
the Gaussian process

    dev4 = mean over 4-tuples of G4_conn / G4_gp,   dev6 = mean over 6-tuples of G6_conn / G6_gp,

(signed, so that noise does not bias them upward; G4_gp = sum_3 K K and G6_gp = sum_15 K K K use the
exact kernel), and per family the fitted power law dev = A N^slope with its error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from scipy.optimize import curve_fit

from nnfield import stats
from nnfield import tuples as tup
from nnfield.engine.blocks import check_family
from nnfield.engine.simulate import cf_attributes
from nnfield.engine.store import annotate, provenance
from nnfield.studies.npoint import couplings as npoint_couplings
from nnfield.studies.npoint.coupling_theory import LAMBDA_CONVENTION
from nnfield.studies.npoint.couplings import COUPLING_META, point_couplings
from nnfield.studies.npoint.sample import FAMILY_ATTRS, RAW_VARIABLES, VARIABLES, tuple_arrays

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------- analysis


def _theory(attrs: Mapping, inputs: np.ndarray):
    from nnfield.theory.finite_width import SingleLayerExact
    from nnfield.theory.unit_moments import TheoryUnavailable

    try:
        return SingleLayerExact(
            str(attrs["arch"]), inputs,
            float(attrs["sigma_w0"]), float(attrs["sigma_b0"]),
            float(attrs["sigma_w1"]), float(attrs["sigma_b1"]),
            _scale_shape(attrs),
        )  # fmt: skip
    except TheoryUnavailable as err:
        log.warning("no exact theory for %s: %s", attrs.get("point"), err)
        return None


def _scale_shape(attrs: Mapping) -> float | None:
    """The Gamma shape of a shared readout scale, or None (independent readout weights)."""
    shape = attrs.get("readout_scale_shape")
    return None if shape is None else float(shape)


def _limits(exact, shape: float | None) -> dict[int, float]:
    """Exact dev4 and dev6 as N -> infinity: 0 for independent parameters, Var(s^2)-driven
    plateaus for a shared readout scale (``shape``), NaN for a shared scale without exact
    theory (the plateau is unknown, so no slope is fitted)."""
    if shape is None:
        return {4: 0.0, 6: 0.0}
    if exact is None:
        return {4: np.nan, 6: np.nan}
    th = exact.at_width(np.inf)
    return {4: float((th.G4_conn / th.G4_gp).mean()), 6: float((th.G6_conn / th.G6_gp).mean())}


def _diagonal_rows(n_inputs: int, order: int) -> np.ndarray:
    """Rows of the colex tuple list that repeat one input (a, a, ..., a)."""
    rows = tup.sorted_tuples(n_inputs, order)
    return np.flatnonzero((rows == rows[:, :1]).all(axis=1))


def _exact_standard_errors(exact, width: int, n_total: float, estimator: str):
    """Exact standard errors of the diagonal mean f^4 and f^6 estimators, per input.

    brute: sqrt(Var(f^k) / M).  conditional: the summands are 3 S^2 and 15 S^3 with S the
    conditional variance, and E[S^k] = E[f^(2k)] / (2k - 1)!!.
    """
    from nnfield.theory.finite_width import diagonal_output_moments

    mom = diagonal_output_moments(exact, width, 12)
    with np.errstate(invalid="ignore", over="ignore"):
        if estimator == "conditional":
            s = {k: mom[k] / float(np.prod(np.arange(2 * k - 1, 0, -2))) for k in (2, 3, 4, 6)}
            var4 = 9.0 * (s[4] - s[2] ** 2)
            var6 = 225.0 * (s[6] - s[3] ** 2)
        else:
            var4 = mom[4] - mom[2] ** 2
            var6 = mom[6] - mom[3] ** 2
        return np.sqrt(var4 / n_total), np.sqrt(var6 / n_total)


def analyze_point(ds: xr.Dataset, exact, options: Mapping, couplings=None) -> xr.Dataset:
    """Estimates, errors, exact values and diagnostics for one merged point.

    ``couplings`` (a ``npoint_couplings.FamilyIntegrals``) adds the coupling fits.
    """
    n_in = ds.sizes["input"]
    width = int(ds["width"])
    counts = ds["count"].values
    sums = {k: ds[f"sum_{k}"].values for k in ("f2", "f4", "f6")}
    th = exact.at_width(width) if exact is not None else None
    if th is not None:
        g4_gp, g6_gp = th.G4_gp, th.G6_gp
    else:  # normalise by the measured Gaussian part instead
        g2 = sums["f2"].sum(0) / counts.sum()
        g4_gp, g6_gp = tup.wick4(g2, n_in), tup.wick6(g2, n_in)

    def conn4(m):
        return tup.connected4(m["f4"], m["f2"], n_in)

    def conn6(m):
        return tup.connected6(m["f6"], m["f4"], m["f2"], n_in)

    reps4 = stats.jackknife_replicates(sums, counts, conn4)
    reps6 = stats.jackknife_replicates(sums, counts, conn6)
    est = {
        "G2": stats.jackknife(sums, counts, lambda m: m["f2"]),
        "G4": stats.jackknife(sums, counts, lambda m: m["f4"]),
        "G6": stats.jackknife(sums, counts, lambda m: m["f6"]),
        "G4_conn": stats.from_replicates(reps4),
        "G6_conn": stats.from_replicates(reps6),
        "dev4": stats.from_replicates((reps4 / g4_gp).mean(-1)),
        "dev6": stats.from_replicates((reps6 / g6_gp).mean(-1)),
    }
    dims = {
        "G2": "tuple2",
        "G4": "tuple4",
        "G6": "tuple6",
        "G4_conn": "tuple4",
        "G6_conn": "tuple6",
    }
    out = xr.Dataset()
    for name, e in est.items():
        d = (dims[name],) if name in dims else ()
        out[name] = (d, e.value)
        out[f"{name}_se"] = (d, e.stderr)

    # heavy tails: (a) skewness of the sampling distribution from block-level estimates;
    # (b) influence of the single largest network on the diagonal 4th/6th moments;
    # (c) where exact theory exists, the jackknife error of the diagonal moments against the
    #     exact standard error sqrt(Var(f^k) / M): a much smaller measured error means the tail
    #     that carries the variance was never sampled (lognormal Gauss-net units)
    block_means = {k: v / counts.reshape(-1, 1) for k, v in sums.items()}
    skew4 = float(stats.sampling_skewness((conn4(block_means) / g4_gp).mean(-1)))
    skew6 = float(stats.sampling_skewness((conn6(block_means) / g6_gp).mean(-1)))
    diag4 = _diagonal_rows(n_in, 4)
    diag6 = _diagonal_rows(n_in, 6)
    # np.max, not xarray's NaN-skipping max: a NaN largest network must flag
    infl4 = stats.max_influence(float(np.max(ds["max_f4"].values)), sums["f4"][:, diag4].mean(1),
                                counts)  # fmt: skip
    infl6 = stats.max_influence(float(np.max(ds["max_f6"].values)), sums["f6"][:, diag6].mean(1),
                                counts)  # fmt: skip
    skew_limit = float(options.get("heavy_tail_skewness", 0.5))
    infl_limit = float(options.get("max_influence", 0.5))
    ratio_limit = float(options.get("min_error_ratio", 0.5))
    ratio4 = ratio6 = np.nan
    if exact is not None:  # (c) measured error bar vs the exact standard error of the estimator
        estimator = str(ds.attrs.get("estimator", "brute"))
        exact_se4, exact_se6 = _exact_standard_errors(exact, width, counts.sum(), estimator)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio4 = float(np.min(est["G4"].stderr[diag4] / exact_se4))
            ratio6 = float(np.min(est["G6"].stderr[diag6] / exact_se6))
    out["error_ratio4"] = ((), ratio4)
    out["error_ratio6"] = ((), ratio6)
    out["skew4"] = ((), skew4)
    out["skew6"] = ((), skew6)
    out["influence4"] = ((), infl4)
    out["influence6"] = ((), infl6)
    # fail closed: a diagnostic that cannot be computed (NaN, e.g. an exact error that
    # overflowed) flags the estimate; the error ratio only where exact theory exists
    has_exact = exact is not None
    out["heavy_tail4"] = ((), np.int8(not (abs(skew4) <= skew_limit and infl4 <= infl_limit)
                                      or (has_exact and not ratio4 >= ratio_limit)))  # fmt: skip
    out["heavy_tail6"] = ((), np.int8(not (abs(skew6) <= skew_limit and infl6 <= infl_limit)
                                      or (has_exact and not ratio6 >= ratio_limit)))  # fmt: skip
    out["networks"] = ((), np.int64(counts.sum()))
    out["nonfinite"] = ((), np.int64(ds["nonfinite"].values.sum()))
    if int(out["nonfinite"]) > 0:
        log.warning("%s: %d networks had non-finite outputs and were dropped",
                    ds.attrs.get("point"), int(out["nonfinite"]))  # fmt: skip

    alpha = float(options.get("significance", stats.DEFAULT_SIGNIFICANCE))
    dof = stats.jackknife_dof(len(counts))
    if th is not None:
        out["G2_exact"] = (("tuple2",), th.K)
        out["G4_exact"] = (("tuple4",), th.G4)
        out["G4_conn_exact"] = (("tuple4",), th.G4_conn)
        out["G6_conn_exact"] = (("tuple6",), th.G6_conn)
        out["dev4_exact"] = ((), float((th.G4_conn / th.G4_gp).mean()))
        out["dev6_exact"] = ((), float((th.G6_conn / th.G6_gp).mean()))
        for name, exact_values in (("G2", th.K), ("G4_conn", th.G4_conn), ("G6_conn", th.G6_conn)):
            e = est[name]
            if np.all(e.stderr > 0):
                z = stats.max_z_test(e.value, e.stderr, exact_values, alpha, dof)
                out[f"{name}_maxz"] = ((), z.max_abs_z)
                out[f"{name}_zcrit"] = ((), z.critical)
    if couplings is not None:
        coupled = point_couplings(
            reps4, reps6,
            th.G4_conn if th is not None else None,
            th.G6_conn if th is not None else None,
            couplings, label=str(ds.attrs.get("point", "")),
        )  # fmt: skip
        out = out.merge(coupled)
    return out


def fit_power_law(widths, values, errors, guess_slope: float):
    """Weighted least squares of values = A * N^slope; returns (slope, slope_se, chi2/dof).

    All points enter with their signed values (noise-dominated ones too, so the fit is not
    biased by selecting fluctuations), but a slope is only reported when at least 3 points exist
    and 2 of them lie above 2 standard errors; otherwise the exponent is not determined (NaN).
    """
    widths, values, errors = (np.asarray(a, dtype=np.float64) for a in (widths, values, errors))
    ok = np.isfinite(values) & np.isfinite(errors) & (errors > 0)
    if ok.sum() < 3 or np.sum(values[ok] > 2 * errors[ok]) < 2:
        return np.nan, np.nan, np.nan
    w, v, e = widths[ok], values[ok], errors[ok]
    a0 = float(np.average(v * w ** (-guess_slope), weights=1 / e**2))
    try:
        popt, pcov = curve_fit(
            lambda n, a, s: a * n**s,
            w,
            v,
            p0=(a0, guess_slope),
            sigma=e,
            absolute_sigma=True,
            maxfev=10000,
        )
    except (RuntimeError, ValueError) as err:
        log.warning("power-law fit failed: %s", err)
        return np.nan, np.nan, np.nan
    resid = (v - popt[0] * w ** popt[1]) / e
    dof = max(ok.sum() - 2, 1)
    return float(popt[1]), float(np.sqrt(pcov[1, 1])), float(resid @ resid / dof)


ANALYSIS_META = {
    "G2": ("2-point function E[f(x_a) f(x_b)]", "1"),
    "G4": ("4-point function", "1"),
    "G6": ("6-point function", "1"),
    "G4_conn": ("connected 4-point function G4 - sum_3 G2 G2", "1"),
    "G6_conn": ("connected 6-point function G6 - sum_15 G4 G2 + 2 sum_15 G2 G2 G2", "1"),
    "dev4": ("tuple-averaged G4_conn / G4_gp (signed deviation from GP)", "1"),
    "dev6": ("tuple-averaged G6_conn / G6_gp (signed deviation from GP)", "1"),
    "G2_exact": ("exact G2 (GP kernel, exact at every width)", "1"),
    "G4_exact": ("exact finite-width G4", "1"),
    "G4_conn_exact": ("exact finite-width connected G4 (order 1/N)", "1"),
    "G6_conn_exact": ("exact finite-width connected G6 (order 1/N^2)", "1"),
    "dev4_exact": ("exact tuple-averaged G4_conn / G4_gp", "1"),
    "dev6_exact": ("exact tuple-averaged G6_conn / G6_gp", "1"),
    "dev4_limit": ("exact tuple-averaged G4_conn / G4_gp as N -> infinity", "1"),
    "dev6_limit": ("exact tuple-averaged G6_conn / G6_gp as N -> infinity", "1"),
    "readout_scale_shape": (
        "Gamma shape a of the shared readout scale s^2 (Var s^2 = 1/a; inf: s = 1)",
        "1",
    ),
    "skew4": ("estimated skewness of the sampling distribution of dev4", "1"),
    "skew6": ("estimated skewness of the sampling distribution of dev6", "1"),
    "influence4": ("largest single network's shift of mean f^4, in standard errors", "1"),
    "influence6": ("largest single network's shift of mean f^6, in standard errors", "1"),
    "error_ratio4": ("min over inputs of jackknife / exact standard error of mean f^4", "1"),
    "error_ratio6": ("min over inputs of jackknife / exact standard error of mean f^6", "1"),
    "heavy_tail4": ("1 if dev4's error bar is unreliable (skew, influence or error ratio)", "1"),
    "heavy_tail6": ("1 if dev6's error bar is unreliable (skew, influence or error ratio)", "1"),
    "networks": ("networks in the ensemble", "1"),
    "nonfinite": ("networks dropped for non-finite outputs", "1"),
    "G2_maxz": ("max |z| of G2 against the exact kernel over tuples", "1"),
    "G2_zcrit": ("Bonferroni Student-t critical value for G2_maxz (blocks - 1 dof)", "1"),
    "G4_conn_maxz": ("max |z| of G4_conn against its exact value over tuples", "1"),
    "G4_conn_zcrit": ("Bonferroni Student-t critical value for G4_conn_maxz (blocks - 1 dof)", "1"),
    "G6_conn_maxz": ("max |z| of G6_conn against its exact value over tuples", "1"),
    "G6_conn_zcrit": ("Bonferroni Student-t critical value for G6_conn_maxz (blocks - 1 dof)", "1"),
    "slope4": (
        "fitted exponent s of dev4 - dev4_limit = A N^s (widths not flagged heavy-tailed)",
        "1",
    ),
    "slope4_se": ("standard error of slope4", "1"),
    "slope4_chi2dof": ("chi^2 per degree of freedom of the dev4 power-law fit", "1"),
    "slope6": (
        "fitted exponent s of dev6 - dev6_limit = A N^s (widths not flagged heavy-tailed)",
        "1",
    ),
    "slope6_se": ("standard error of slope6", "1"),
    "slope6_chi2dof": ("chi^2 per degree of freedom of the dev6 power-law fit", "1"),
    "x": ("network input", "1"),
    "n_inputs": ("number of inputs of the family", "1"),
    "theory_accuracy": ("bound on the absolute error of the one-unit moment quadrature", "1"),
    "arch": ("architecture", "1"),
    "input_dim": ("input dimension d", "1"),
    "estimator": ("brute (whole networks) or conditional (Gaussian average over the readout)", "1"),
    "sigma_w0": ("first-layer weight scale (variance sigma_w0^2/d)", "1"),
    "sigma_b0": ("first-layer bias scale", "1"),
    "sigma_w1": ("readout weight scale (variance sigma_w1^2/N)", "1"),
    "sigma_b1": ("readout bias scale", "1"),
    "width": ("hidden-layer width N", "1"),
    "family": ("architecture family (config name)", "1"),
    **{k: v for k, v in cf_attributes(VARIABLES).items() if k.startswith("tuple")},
    "tuple2": ("index of a sorted input 2-tuple (colex order)", "1"),
    "tuple4": ("index of a sorted input 4-tuple (colex order)", "1"),
    "tuple6": ("index of a sorted input 6-tuple (colex order)", "1"),
    "input": ("input index", "1"),
    "component": ("input vector component", "1"),
}
for _name in ("G2", "G4", "G6", "G4_conn", "G6_conn", "dev4", "dev6"):
    long_name, units = ANALYSIS_META[_name]
    ANALYSIS_META[f"{_name}_se"] = (f"jackknife standard error of {_name}", units)


def _family_integrals(
    attrs: Mapping, family: str, inputs: np.ndarray, options: Mapping, cache: dict
):
    """Tree-level integrals of one family, or None when coupling fits are switched off.

    They depend only on the GP kernel, the inputs and the settings, so families that share
    them (e.g. the same prior with two estimators) share one computation via ``cache``.  The
    Monte Carlo seed (d >= 3) derives from the same description, never from the family name.
    """
    import json

    from nnfield.engine.keys import stable_hash32

    settings = _coupling_settings(options)
    if not settings["enabled"]:
        return None
    what = json.dumps(
        [str(attrs["arch"])]
        + [float(attrs[k]) for k in ("sigma_w0", "sigma_b0", "sigma_w1", "sigma_b1")]
        + [np.asarray(inputs, dtype=np.float64).tolist(), settings, int(attrs.get("seed", 0))],
        sort_keys=True,
    )
    if what not in cache:
        seed = stable_hash32(f"couplings/{what}")
        cache[what] = npoint_couplings.family_integrals(attrs, inputs, settings, seed, family)
    return cache[what]


def _coupling_settings(options: Mapping) -> dict:
    """Coupling options with the schema's defaults (analyze may be called without validation)."""
    from nnfield.config import load_schema

    schema = load_schema()["$defs"]["couplings"]["properties"]
    settings = {k: v["default"] for k, v in schema.items()}
    settings.update(options.get("couplings", {}))
    return settings


def _width_scaling_of_lambda(fam: xr.Dataset, integrals) -> None:
    """Power-law fit |lambda| = A N^s at the reference cutoff over trusted widths (in place)."""
    ref = integrals.cutoffs[integrals.reference]
    lam = fam["lambda"].sel(cutoff=ref).values
    se = fam["lambda_se"].sel(cutoff=ref).values
    trusted = fam["heavy_tail4"].values == 0
    sign = np.sign(np.nansum(lam[trusted] / se[trusted] ** 2)) or 1.0
    s, s_se, chi2 = fit_power_law(
        fam["width"].values[trusted], sign * lam[trusted], se[trusted], -1.0
    )
    fam["lambda_width_slope"] = ((), s)
    fam["lambda_width_slope_se"] = ((), s_se)
    fam["lambda_width_slope_chi2dof"] = ((), chi2)
    fam["mean_quartic_integral"] = (("cutoff",), integrals.mean_quartic)
    fam["integration_accuracy"] = ((), integrals.accuracy)


def _action(ds: xr.Dataset, exact, settings: Mapping, integrals, options: Mapping) -> xr.Dataset:
    """The action reconstruction and its held-out tests for one point (npoint.action)."""
    from nnfield.studies.npoint import action

    width = int(ds["width"])
    th = exact.at_width(width) if exact is not None else None
    if th is not None:
        g4_gp = th.G4_gp
    else:
        g2 = ds["sum_f2"].values.sum(0) / ds["count"].values.sum()
        g4_gp = tup.wick4(g2, ds.sizes["input"])
    alpha = float(options.get("significance", stats.DEFAULT_SIGNIFICANCE))
    out = action.action_analysis(ds, th, g4_gp, integrals, settings, alpha)
    return out.assign_coords(
        action_model=list(action.MODELS),
        density_model=list(action.DENSITY_MODELS),
        **{dim: np.arange(out.sizes[dim]) for dim in
           ("heldout_tuple", "heldout_input", "density_bin", "vertex", "mode", "mode_b", "slot4")},
    )  # fmt: skip


def analyze(points: Sequence[xr.Dataset], options: Mapping | None = None) -> xr.Dataset:
    """Study dataset with dimensions (family, width, tuple*) from merged point datasets."""
    options = dict(options or {})
    if not points:
        raise ValueError("analyze needs at least one point")
    by_family: dict[str, list[xr.Dataset]] = {}
    integral_cache: dict = {}
    theory_cache: dict = {}
    for ds in points:
        by_family.setdefault(str(ds["family"].values), []).append(ds)
    families = []
    max_inputs = 0
    for family, group in by_family.items():
        group.sort(key=lambda d: int(d["width"]))
        check_family(group, (*FAMILY_ATTRS, "estimator", "dtype"))
        inputs = group[0]["x"].values
        max_inputs = max(max_inputs, inputs.shape[0])
        start = time.perf_counter()
        sigmas = (
            float(group[0].attrs[k]) for k in ("sigma_w0", "sigma_b0", "sigma_w1", "sigma_b1")
        )
        prior_key = (str(group[0].attrs["arch"]), inputs.tobytes(), inputs.shape, *sigmas,
                     _scale_shape(group[0].attrs))  # fmt: skip
        if prior_key not in theory_cache:  # families differing only in estimator share it
            theory_cache[prior_key] = _theory(group[0].attrs, inputs)
        exact = theory_cache[prior_key]
        integrals = _family_integrals(group[0].attrs, family, inputs, options, integral_cache)
        log.info(
            "family %s: exact theory and coupling integrals in %.1f s; analysing %d widths",
            family, time.perf_counter() - start, len(group),
        )  # fmt: skip
        per_width = []
        action_settings = {a["family"]: a for a in options.get("action", [])}.get(family)
        for i, ds in enumerate(group):
            point = analyze_point(ds, exact, options, integrals)
            if action_settings is not None:
                point = point.merge(_action(ds, exact, action_settings, integrals, options))
            per_width.append(point)
            log.info("analysed %s (%d/%d)", ds.attrs.get("point", ""), i + 1, len(group))
        fam = xr.concat(per_width, dim="width", coords="minimal", compat="override")
        fam = fam.assign_coords(width=[int(d["width"]) for d in group])
        limits = _limits(exact, _scale_shape(group[0].attrs))
        for order, guess in ((4, -1.0), (6, -2.0)):
            trusted = fam[f"heavy_tail{order}"].values == 0  # flagged error bars are not used
            if not np.isfinite(limits[order]):  # unknown plateau: no finite-width part to fit
                trusted = np.zeros_like(trusted)
            s, se, chi2 = fit_power_law(  # the finite-width part: minus the exact N -> inf limit
                fam["width"].values[trusted],
                fam[f"dev{order}"].values[trusted] - limits[order],
                fam[f"dev{order}_se"].values[trusted],
                guess,
            )
            fam[f"slope{order}"] = ((), s)
            fam[f"slope{order}_se"] = ((), se)
            fam[f"slope{order}_chi2dof"] = ((), chi2)
        if integrals is not None:
            _width_scaling_of_lambda(fam, integrals)
        fam["x"] = (("input", "component"), inputs)
        fam = fam.assign_coords(  # integer indices: colex order makes outer joins line up
            {dim: np.arange(fam.sizes[dim]) for dim in ("tuple2", "tuple4", "tuple6", "input",
                                                         "component")}
        )  # fmt: skip
        fam["n_inputs"] = ((), np.int32(inputs.shape[0]))
        fam["theory_accuracy"] = ((), exact.units.accuracy if exact is not None else np.nan)
        attrs = group[0].attrs
        fam["arch"] = ((), str(attrs["arch"]))
        for key in ("sigma_w0", "sigma_b0", "sigma_w1", "sigma_b1"):
            fam[key] = ((), float(attrs[key]))
        fam["input_dim"] = ((), int(attrs["input_dim"]))
        shape = _scale_shape(attrs)
        fam["readout_scale_shape"] = ((), np.inf if shape is None else shape)
        fam["dev4_limit"] = ((), limits[4])
        fam["dev6_limit"] = ((), limits[6])
        fam["estimator"] = ((), str(attrs.get("estimator", "brute")))
        families.append(fam.expand_dims(family=[family]))
    study = xr.concat(families, dim="family", join="outer", coords="minimal", compat="override")
    study = study.assign(
        **{k: xr.DataArray(v, dims=VARIABLES[k].dims) for k, v in tuple_arrays(max_inputs).items()}
    )
    study.attrs = provenance("npoint")
    study.attrs.update(
        correlator_convention="G_n over colex-sorted input tuples; connected parts of a zero-mean "
        "field; dev_n = tuple average of G_n_conn / G_n_gp with the exact GP kernel",
        error_convention="delete-one-block jackknife (bias-corrected values)",
        significance=float(options.get("significance", stats.DEFAULT_SIGNIFICANCE)),
        critical_values=stats.CRITICAL_VALUE_METHOD,
        heavy_tail_skewness=float(options.get("heavy_tail_skewness", 0.5)),
        max_influence=float(options.get("max_influence", 0.5)),
        min_error_ratio=float(options.get("min_error_ratio", 0.5)),
        coupling_convention=LAMBDA_CONVENTION,
        coupling_fit=npoint_couplings.fit_method(),
        lambda_profile_basis="lambda(y) = sum_k lambda_basis[k] P_k(2 |y|^2 / Lambda_ref^2 - 1)",
        reference_cutoff=float(_coupling_settings(options)["reference_cutoff"]),
        estimators=" ".join(sorted({str(p.attrs.get("estimator", "brute")) for p in points})),
    )
    if options.get("action"):
        from nnfield.studies.npoint.action import method

        study.attrs["action_method"] = method()
    from nnfield.studies.npoint.action import ACTION_META

    return annotate(study, {**ANALYSIS_META, **COUPLING_META, **ACTION_META})


def analyze_files(paths, options: Mapping | None = None, progress=None) -> xr.Dataset:
    """:func:`analyze` of the point files ``paths``."""
    from nnfield.engine.analysis import analyze_read_points

    return analyze_read_points(paths, "npoint", RAW_VARIABLES, analyze, options or {}, progress)
