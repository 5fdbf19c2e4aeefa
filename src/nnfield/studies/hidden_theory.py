"""Study-level theory of the hidden study: exact curves along the swept parameters and the
quadratic fit of the coupled rings' production against eps.

Curves are ensemble means of the exact stationary production of the *linear* dynamics with the
point's gain (for tanh points: the g -> 0 reference), per neuron, on a dense grid: closed forms
where PHYSICS.md section 4 has them (cycle, mixture, permutation, orthogonal, symmetric, rings),
otherwise (ginibre) the mean over CURVE_DRAWS weight draws with common random numbers along the
grid, so the curve is smooth.  NaN where the linear dynamics is unstable (g rho(W) >= 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from nnfield.hidden_weights import WeightEnsemble

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
    "curve_draws": ("weight draws averaged by the curve (0: closed form)", "1"),
    "ring_fit_ensemble": ("coupled-ring ensemble of the fit", "1"),
    "ring_fit_value": ("least-squares coefficient c_k of ep = c0 + c1 eps + c2 eps^2",
                       "nats"),
    "ring_fit_se": ("standard error of ring_fit_value", "nats"),
    "ring_fit_exact": ("the same fit of the exact production at the same eps", "nats"),
    "ring_fit_chi2": ("chi^2 of the fit", "1"),
    "ring_fit_dof": ("degrees of freedom of the fit", "1"),
    "ring_fit_symmetry_z": ("c1 / se(c1): the form is even in eps where |z| is small", "1"),
    "coefficient": ("power k of eps", "1"),
}  # fmt: skip


def _ensemble(p: Mapping, **change) -> WeightEnsemble:
    q = {**p, **change}
    return WeightEnsemble(
        q["weights"], int(q["neurons"]), int(q["subsystems"]), float(q["contraction"]),
        float(q["antisymmetric_fraction"]), float(q["coupling"]), q["coupling_matrix"],
    )  # fmt: skip


def exact_mean_production(ens: WeightEnsemble, gain: float, draws=None) -> float:
    """Ensemble-mean exact production per neuron of the linear dynamics (NaN if unstable);
    ``draws`` = (G1, G2) standard normal arrays for kinds without a closed form."""
    from nnfield.theory.thermo import hidden_step

    if not gain * ens.spectral_radius() < 1:
        return float("nan")
    closed = ens.closed_form_production(gain)
    if closed is not None:
        return closed / ens.neurons
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
                closed = _ensemble(first).closed_form_production() is not None
                rows.append((name, axis, grid, np.asarray(ep), 0 if closed else CURVE_DRAWS,
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
    """ep = c0 + c1 eps + c2 eps^2 by least squares for every coupled-ring ensemble
    (at each a, g, s) with >= 3 couplings; the same fit of the exact values alongside."""
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(params):
        if p["weights"] == "rings":
            key = (p["ensemble"], p["coupling_matrix"], float(p["contraction"]),
                   float(p["gain"]), float(p["noise"]))  # fmt: skip
            groups.setdefault(key, []).append(i)
    rows = []
    for key, idx in groups.items():
        eps = np.array([params[i]["coupling"] for i in idx], dtype=np.float64)
        if len(np.unique(eps)) < 3:
            continue
        y = study["ep"].values[idx]
        se = study["ep_se"].values[idx]
        design = np.stack([np.ones_like(eps), eps, eps**2], axis=1)
        # ordinary least squares with propagated errors: on a grid symmetric in eps, an even
        # function gives c1 = 0 exactly whatever its eps^4 part (weights from the Monte Carlo
        # errors would break that symmetry)
        solve = np.linalg.pinv(design)  # (3, points)
        beta = solve @ y
        se_beta = np.sqrt(np.einsum("kp,p,kp->k", solve, se**2, solve))
        chi2 = float(np.sum(((y - design @ beta) / se) ** 2))
        beta_exact = solve @ study["ep_closed_form"].values[idx]
        rows.append((key, beta, se_beta, beta_exact, chi2, len(idx) - 3))
    if not rows:
        return xr.Dataset()
    return xr.Dataset(
        {
            "ring_fit_ensemble": (("ring_fit",), [r[0][0] for r in rows]),
            "ring_fit_coupling_matrix": (("ring_fit",), [r[0][1] for r in rows]),
            "ring_fit_contraction": (("ring_fit",), [r[0][2] for r in rows]),
            "ring_fit_gain": (("ring_fit",), [r[0][3] for r in rows]),
            "ring_fit_noise": (("ring_fit",), [r[0][4] for r in rows]),
            "ring_fit_value": (("ring_fit", "coefficient"), np.stack([r[1] for r in rows])),
            "ring_fit_se": (("ring_fit", "coefficient"), np.stack([r[2] for r in rows])),
            "ring_fit_exact": (("ring_fit", "coefficient"), np.stack([r[3] for r in rows])),
            "ring_fit_chi2": (("ring_fit",), [r[4] for r in rows]),
            "ring_fit_dof": (("ring_fit",), np.array([r[5] for r in rows], dtype=np.int64)),
            "ring_fit_symmetry_z": (("ring_fit",), [r[1][1] / r[2][1] for r in rows]),
        },
        coords={"coefficient": np.arange(3)},
    )


META.update({
    "ring_fit_coupling_matrix": ("ring coupling matrix C of the fit", "1"),
    "ring_fit_contraction": ("contraction a of the fit", "1"),
    "ring_fit_gain": ("gain g of the fit", "1"),
    "ring_fit_noise": ("noise s of the fit", "1"),
    **{f"curve_{axis}": (f"{axis} held fixed along the curve (NaN: varied)", "1")
       for axis in AXES},
})  # fmt: skip
