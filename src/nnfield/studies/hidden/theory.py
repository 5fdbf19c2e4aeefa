"""Study-level theory of the hidden study: exact curves along the swept parameters and the
coupled rings' Onsager coefficient c2 (measured by an even quartic fit, against its exact value).

Curves are ensemble means of the exact stationary production of the *linear* dynamics with the
point's gain (for tanh points: the g -> 0 reference), per neuron, on a dense grid: closed forms
where docs/hidden.md has them (cycle, mixture, permutation, orthogonal, symmetric, rings),
otherwise (ginibre) the mean over CURVE_DRAWS weight draws with common random numbers along the
grid, so the curve is smooth.  NaN where the linear dynamics is unstable (g rho(W) >= 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from nnfield import stats
from nnfield.studies.hidden.weights import WeightEnsemble

AXES = ("contraction", "antisymmetric_fraction", "coupling", "gain")
"""Swept parameters that get an exact curve (the production does not depend on the noise)."""
CURVE_POINTS = 25
CURVE_DRAWS = 128
CURVE_SEED = 20261123

META = {
    "curve_ensemble": ("weight ensemble of the exact curve", "1"),
    "curve_axis": ("parameter varied along the exact curve", "1"),
    "curve_x": ("value of curve_axis along the exact curve", "1"),
    "curve_ep": ("exact ensemble-mean production per step and neuron of the linear dynamics "
                 "(closed form, or the mean over curve draws)", "nats"),
    "curve_draws": ("weight draws averaged by the curve (0: exact, a closed form or the one W "
                    "of the ensemble)", "1"),
    "ring_fit_ensemble": ("coupled-ring ensemble of the fit", "1"),
    "ring_fit_value": ("least-squares coefficient c_k of ep = c0 + c2 eps^2 + c4 eps^4 fitted "
                       "to the Monte Carlo ep (even in eps by an identity)", "nats"),
    "ring_fit_se": ("standard error of ring_fit_value (propagated jackknife errors)", "nats"),
    "ring_fit_chi2": ("chi^2 of the fit", "1"),
    "ring_fit_dof": ("degrees of freedom of the fit", "1"),
    "ring_c2_exact": ("exact Onsager coefficient 1/2 d^2 ep / d eps^2 at eps = 0 (exact "
                      "derivative of the normal-matrix production, not a fit)", "nats"),
    "ring_c1_exact": ("exact d ep / d eps at eps = 0: zero by the identity W(-eps) = S W(eps) S "
                      "(rounding only)", "nats"),
    "ring_c2_design_bias": ("the fit's map applied to the exact ep at the simulated eps, minus "
                            "ring_c2_exact: the design's truncation bias", "nats"),
    "ring_c2_z": ("(fitted c2 - ring_c2_exact) / its standard error", "1"),
    "ring_c2_zcrit": ("Student-t critical value for ring_c2_z at the default significance "
                      "(network blocks - 1 dof)", "1"),
    "ring_c2_quadratic": ("c2 of the quadratic-only fit c0 + c2 eps^2 (absorbs the eps^4 term)",
                          "nats"),
    "ring_c2_quadratic_se": ("standard error of ring_c2_quadratic", "nats"),
    "ring_c2_quadratic_z": ("(ring_c2_quadratic - ring_c2_exact) / its standard error", "1"),
    "coefficient": ("power k of eps", "1"),
}  # fmt: skip


def _ensemble(p: Mapping, **change) -> WeightEnsemble:
    q = {**p, **change}
    return WeightEnsemble(
        q["weights"], int(q["neurons"]), int(q["subsystems"]), float(q["contraction"]),
        float(q["antisymmetric_fraction"]), float(q["coupling"]), q["coupling_matrix"],
        float(q.get("laziness", 0.5)),
    )  # fmt: skip


def exact_mean_production(ens: WeightEnsemble, gain: float, draws=None) -> float:
    """Ensemble-mean exact production per neuron of the linear dynamics (NaN if unstable): the
    closed form, else the Lyapunov solution of the one W of a shared-weight kind, else the mean
    over ``draws`` = (G1, G2), standard normal arrays of a random kind."""
    from nnfield.theory.thermo import hidden_step

    if not gain * ens.spectral_radius() < 1:
        return float("nan")
    closed = ens.closed_form_production(gain)
    if closed is not None:
        return closed / ens.neurons
    if ens.shared_weights:  # one W for every network (rings with a non-normal C)
        (w,) = ens.sample(np.random.default_rng(0), 1)
        return hidden_step(w, 1.0, gain).stationary_entropy_production() / ens.neurons
    weights = ens.ginibre_from(*draws)
    values = [hidden_step(w, 1.0, gain).stationary_entropy_production() for w in weights]
    return float(np.mean(values)) / ens.neurons


def curves(params: Sequence[Mapping]) -> xr.Dataset:
    """Exact curves along every axis with >= 2 values in an ensemble, one per combination of
    the other axes."""
    rows = []
    by_ensemble: dict[str, list[Mapping]] = {}
    for p in params:
        by_ensemble.setdefault(p["ensemble"], []).append(p)
    for name, pts in by_ensemble.items():
        first = pts[0]
        if first["weights"] == "lazy_cycle":  # its laziness is no curve axis (seed_claims)
            continue
        n = int(first["neurons"])
        rng = np.random.default_rng([CURVE_SEED, n])
        draws = (rng.standard_normal((CURVE_DRAWS, n, n)), rng.standard_normal((CURVE_DRAWS, n, n)))
        for axis in AXES:
            values = sorted({float(p[axis]) for p in pts})
            if len(values) < 2:
                continue
            others = sorted({tuple(float(p[a]) for a in AXES if a != axis) for p in pts})
            grid = np.linspace(values[0], values[-1], CURVE_POINTS)
            for other in others:
                fixed = dict(zip([a for a in AXES if a != axis], other, strict=True))
                ep = []
                for x in grid:
                    q = {**fixed, axis: x}
                    ens = _ensemble(first, **{k: v for k, v in q.items() if k != "gain"})
                    ep.append(exact_mean_production(ens, q["gain"], draws))
                ens = _ensemble(first)
                exact = ens.shared_weights or ens.closed_form_production() is not None
                rows.append((name, axis, grid, np.asarray(ep), 0 if exact else CURVE_DRAWS,
                             fixed))  # fmt: skip
    if not rows:
        return xr.Dataset()
    ds = xr.Dataset(
        {
            "curve_ensemble": (("curve",), [r[0] for r in rows]),
            "curve_axis": (("curve",), [r[1] for r in rows]),
            "curve_x": (("curve", "curve_point"), np.stack([r[2] for r in rows])),
            "curve_ep": (("curve", "curve_point"), np.stack([r[3] for r in rows])),
            "curve_draws": (("curve",), np.array([r[4] for r in rows], dtype=np.int64)),
        }
    )
    for axis in AXES:  # the fixed values (NaN for the varied one)
        ds[f"curve_{axis}"] = (("curve",), [r[5].get(axis, np.nan) for r in rows])
    return ds


def ring_fits(study: xr.Dataset, params: Sequence[Mapping]) -> xr.Dataset:
    """The Onsager coefficient c2 of every coupled-ring ensemble with a named chain coupling (at
    each a, g, s) with >= 3 distinct |eps|, measured against its exact value.

    ep(eps) is even in eps exactly (W(-eps) = S W(eps) S with S = diag(+-1) per ring, an
    orthogonal similarity), so the Monte Carlo values are fitted by ordinary least squares to
    c0 + c2 eps^2 + c4 eps^4 (the eps^4 term keeps the quartic part out of c2), with errors
    propagated from the points' jackknife errors.  The reference is ring_c2_exact =
    1/2 d^2 ep / d eps^2 at eps = 0 from thermo.ring_production_taylor (exact differentiation,
    not a fit); ring_c2_design_bias is the same least-squares map applied to the exact ep at the
    simulated eps minus c2_exact (the O(eps^4 c6) bias of the design, exact).  The quadratic-only
    fit c0 + c2 eps^2 is kept alongside (ring_c2_quadratic) to show its eps^4 bias."""
    from nnfield.studies.hidden.weights import chain_coupling
    from nnfield.theory.thermo import ring_production_taylor

    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(params):
        # named chains only: an explicit C need be neither normal (the Taylor form) nor
        # bipartite (ep even in eps)
        if p["weights"] == "rings" and isinstance(p["coupling_matrix"], str):
            key = (p["ensemble"], p["coupling_matrix"], float(p["contraction"]),
                   float(p["gain"]), float(p["noise"]))  # fmt: skip
            groups.setdefault(key, []).append(i)
    rows = []
    for key, idx in groups.items():
        eps = np.array([params[i]["coupling"] for i in idx], dtype=np.float64)
        if len(np.unique(np.abs(eps))) < 3:
            continue
        p = params[idx[0]]
        n, d = int(p["neurons"]), int(p["subsystems"])
        y = study["ep"].values[idx]
        se = study["ep_se"].values[idx]
        exact_y = study["ep_closed_form"].values[idx]
        design = np.stack([np.ones_like(eps), eps**2, eps**4], axis=1)
        quartic = np.linalg.pinv(design)
        quadratic = np.linalg.pinv(design[:, :2])
        beta = quartic @ y
        se_beta = np.sqrt(np.einsum("kp,p,kp->k", quartic, se**2, quartic))
        chi2 = float(np.sum(((y - design @ beta) / se) ** 2))
        _, c1, c2 = ring_production_taylor(n // d, d, float(p["contraction"]),
                                           chain_coupling(d, p["coupling_matrix"]),
                                           float(p["gain"]))  # fmt: skip
        c2 /= n
        c2_quad = float(quadratic[1] @ y)
        se_quad = float(np.sqrt(np.sum(quadratic[1] ** 2 * se**2)))
        blocks = int(p["networks"]) // int(p["block_size"])
        crit = stats.bonferroni_t(stats.DEFAULT_SIGNIFICANCE, 1, stats.jackknife_dof(blocks))
        rows.append({
            "value": beta, "se": se_beta, "chi2": chi2, "dof": len(idx) - 3, "c2_exact": c2,
            "c1_exact": c1 / n, "design_bias": float(quartic[1] @ exact_y) - c2,
            "z": (beta[1] - c2) / se_beta[1], "quadratic": c2_quad, "quadratic_se": se_quad,
            "quadratic_z": (c2_quad - c2) / se_quad, "zcrit": crit, "key": key,
        })  # fmt: skip
    if not rows:
        return xr.Dataset()
    col = lambda k: [r[k] for r in rows]  # noqa: E731
    return xr.Dataset(
        {
            "ring_fit_ensemble": (("ring_fit",), [r["key"][0] for r in rows]),
            "ring_fit_coupling_matrix": (("ring_fit",), [r["key"][1] for r in rows]),
            "ring_fit_contraction": (("ring_fit",), [r["key"][2] for r in rows]),
            "ring_fit_gain": (("ring_fit",), [r["key"][3] for r in rows]),
            "ring_fit_noise": (("ring_fit",), [r["key"][4] for r in rows]),
            "ring_fit_value": (("ring_fit", "coefficient"), np.stack(col("value"))),
            "ring_fit_se": (("ring_fit", "coefficient"), np.stack(col("se"))),
            "ring_fit_chi2": (("ring_fit",), col("chi2")),
            "ring_fit_dof": (("ring_fit",), np.array(col("dof"), dtype=np.int64)),
            "ring_c2_exact": (("ring_fit",), col("c2_exact")),
            "ring_c1_exact": (("ring_fit",), col("c1_exact")),
            "ring_c2_design_bias": (("ring_fit",), col("design_bias")),
            "ring_c2_z": (("ring_fit",), col("z")),
            "ring_c2_zcrit": (("ring_fit",), col("zcrit")),
            "ring_c2_quadratic": (("ring_fit",), col("quadratic")),
            "ring_c2_quadratic_se": (("ring_fit",), col("quadratic_se")),
            "ring_c2_quadratic_z": (("ring_fit",), col("quadratic_z")),
        },
        coords={"coefficient": np.array([0, 2, 4])},
    )


META.update({
    "ring_fit_coupling_matrix": ("ring coupling matrix C of the fit", "1"),
    "ring_fit_contraction": ("contraction a of the fit", "1"),
    "ring_fit_gain": ("gain g of the fit", "1"),
    "ring_fit_noise": ("noise s of the fit", "1"),
    **{f"curve_{axis}": (f"{axis} held fixed along the curve (NaN: varied)", "1")
       for axis in AXES},
})  # fmt: skip
