"""Strings and light cones: the space-time correlation of the hidden dynamics on a ring
(docs/hidden.md, "Light cones").

Vanchurin (2020) states that with a permutation weight matrix the neurons' states move as
strings in an emergent space-time.  For x' = f(a P x) + s xi on the n-cycle (P x)_i = x_{i-1},
site i at time t + 1 depends only on site i - 1 at time t, so every characteristic i - t = const
is a Markov chain of its own, independent of the others from x = 0 on.  Hence, for any
pointwise f, C(k, tau) = <x_i(t) x_{i+k}(t + tau)> vanishes off the light line k = tau (mod n),
and for linear f it is a^tau s^2 / (1 - a^2) on it.  Controls: the lazy shift
a ((1 - e) P + e I) gives a cone whose centre moves at speed 1 - e and whose width grows as
sqrt(e (1 - e) tau) (a binomial walk convolved with the equal-time profile: means and variances
add, up to the ring's wrap-around); Ginibre W has no light line.

Per point (``light_cone`` L > 0): C(k, tau) over (lag, site) with jackknife errors over network
blocks, the exact C for linear f, and summaries:
- ``cone_ref_z_max``: max |C - C_exact| / se over all entries (the measurement, linear f);
- ``offline_z_max``: max |C| / se over the entries off the light line (0 for a cycle);
- ``lightline_fraction``: sum over tau >= 1 of C(tau mod n, tau)^2 over the sum of all C^2 at
  tau >= 1 (1 for a cycle);
- ``cone_speed``, ``cone_spread`` (linear cycle and lazy shift, where C >= 0): the shift of the
  centre of C(., tau) per step and the growth of its width, sqrt(var(L) - var(0)), between
  tau = 0 and L, over the sites within WINDOW of the exact cone's centre (the far tails hold
  only noise); the same window on the exact C gives the reference, and the formulas 1 - e and
  sqrt(e (1 - e) L) of the lazy shift hold while the cone stays inside the window and well
  inside half the ring (their difference from the windowed exact values is the truncation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from nnfield import stats

META = {
    "spacetime": ("space-time correlation C(k, tau) = <x_i(t) x_(i+k)(t + tau)>, averaged over "
                  "sites (cyclic), time and networks", "1"),
    "spacetime_se": ("jackknife standard error of spacetime", "1"),
    "spacetime_exact": ("exact stationary C(k, tau) of linear f, mean over the networks", "1"),
    "cone_ref_z_max": ("max over (tau, k) of |spacetime - spacetime_exact| / se (linear f)", "1"),
    "cone_ref_zcrit": ("Student-t critical value for cone_ref_z_max, Bonferroni over the "
                       "entries (blocks - 1 dof)", "1"),
    "offline_z_max": ("max over entries off the light line k = tau mod n of |spacetime| / se",
                      "1"),
    "offline_zcrit": ("Student-t critical value for offline_z_max, Bonferroni over the entries",
                      "1"),
    "lightline_fraction": ("share of sum C^2 over tau >= 1 on the light line k = tau mod n",
                           "1"),
    "lightline_fraction_se": ("jackknife standard error of lightline_fraction", "1"),
    "lightline_fraction_exact": ("lightline_fraction of spacetime_exact", "1"),
    "cone_speed": ("(centre of C(., L) - centre of C(., 0)) / L, sites per step", "1"),
    "cone_speed_se": ("jackknife standard error of cone_speed", "1"),
    "cone_speed_exact": ("cone_speed of spacetime_exact", "1"),
    "cone_speed_formula": ("1 - e (lazy shift; 1 for a cycle)", "1"),
    "cone_spread": ("sqrt(var of C(., L) - var of C(., 0)), sites", "1"),
    "cone_spread_se": ("jackknife standard error of cone_spread", "1"),
    "cone_spread_exact": ("cone_spread of spacetime_exact", "1"),
    "cone_spread_formula": ("sqrt(e (1 - e) L) (lazy shift; 0 for a cycle)", "1"),
    "lag": ("lag tau (steps)", "1"),
    "site": ("site offset k (neurons, cyclic)", "1"),
}  # fmt: skip


def _light_line(lags: int, n: int) -> np.ndarray:
    on = np.zeros((lags + 1, n), dtype=bool)
    on[np.arange(lags + 1), np.arange(lags + 1) % n] = True
    return on


def _displacement(n: int) -> np.ndarray:
    """Site offsets k as signed displacements in (-n/2, n/2]."""
    k = np.arange(n)
    return np.where(k > n // 2, k - n, k).astype(np.float64)


WINDOW = 5
"""Sites on either side of the exact cone's centre that enter the cone's centre and width: the
tails far from the cone hold noise only, which the squared displacement would amplify."""


def summaries(c: np.ndarray, centre: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Light-line share, cone speed and spread of C (..., L + 1, n) (leading axes kept).  With
    ``centre`` (L + 1,), the exact cone's centre at each lag, the moments use only the sites
    within WINDOW of it."""
    lags, n = c.shape[-2] - 1, c.shape[-1]
    on = _light_line(lags, n)[1:]
    sq = c[..., 1:, :] ** 2
    d = np.broadcast_to(_displacement(n), (lags + 1, n))
    if centre is not None:  # displacements relative to the window's centre, on the ring
        d = (d - centre[:, None] + n / 2) % n - n / 2 + centre[:, None]
        c = np.where(np.abs(d - centre[:, None]) <= WINDOW, c, 0.0)
    weight = c.sum(-1)
    mean = (c * d).sum(-1) / weight
    var = (c * d**2).sum(-1) / weight - mean**2
    return {
        "lightline_fraction": (sq * on).sum((-2, -1)) / sq.sum((-2, -1)),
        "cone_speed": (mean[..., lags] - mean[..., 0]) / lags,
        "cone_spread": np.sqrt(np.maximum(var[..., lags] - var[..., 0], 0.0)),
    }


def cone_centre(c: np.ndarray) -> np.ndarray:
    """(L + 1,) centre of each lag's profile of an exact C (signed displacements)."""
    d = _displacement(c.shape[-1])
    return (c * d).sum(-1) / c.sum(-1)


def point_estimates(ds, p: Mapping, finite: np.ndarray, crit_of) -> dict[str, np.ndarray]:
    """Per-point light-cone estimates (empty without ``light_cone``); ``crit_of(n_tests)`` is
    the point's Student-t Bonferroni critical value."""
    lags = int(p.get("light_cone", 0))
    if not lags:
        return {}
    c = np.asarray(ds["spacetime"].values)
    mask = finite[..., None, None]
    sums = {"c": np.where(mask, c, 0.0).sum(1)}
    counts = finite.sum(1)
    est = stats.jackknife(sums, counts, lambda m: m["c"])
    out = {"spacetime": est.value, "spacetime_se": est.stderr}
    n = c.shape[-1]
    off = ~_light_line(lags, n)
    se = est.stderr
    usable = se > 0
    z_off = np.abs(est.value[off & usable] / se[off & usable])
    out["offline_z_max"] = np.asarray(z_off.max())
    out["offline_zcrit"] = np.asarray(crit_of(int(z_off.size)))
    exact = None
    if "spacetime_exact" in ds:
        exact = (np.where(mask, np.asarray(ds["spacetime_exact"].values), 0.0).sum((0, 1))
                 / counts.sum())  # fmt: skip
        out["spacetime_exact"] = exact
        z = np.abs(est.value[usable] - exact[usable]) / se[usable]
        out["cone_ref_z_max"] = np.asarray(z.max())
        out["cone_ref_zcrit"] = np.asarray(crit_of(int(z.size)))
    e_lazy = float(p.get("laziness", 0.0)) if p["weights"] == "lazy_cycle" else 0.0
    # a centre and a width where C >= 0 and an exact cone places the window: linear cycles
    cone = p["weights"] in ("cycle", "lazy_cycle") and exact is not None
    centre = cone_centre(exact) if cone else None
    for name in ("lightline_fraction", "cone_speed", "cone_spread"):
        if name != "lightline_fraction" and not cone:
            for suffix in ("", "_se", "_exact", "_formula"):
                out[f"{name}{suffix}"] = np.asarray(np.nan)
            continue
        e = stats.jackknife(sums, counts, lambda m, name=name: summaries(m["c"], centre)[name])
        out[name], out[f"{name}_se"] = np.asarray(e.value), np.asarray(e.stderr)
        if exact is not None:
            out[f"{name}_exact"] = np.asarray(summaries(exact, centre)[name])
    if cone:
        out["cone_speed_formula"] = np.asarray(1.0 - e_lazy)
        out["cone_spread_formula"] = np.asarray(np.sqrt(e_lazy * (1 - e_lazy) * lags))
    return out


def verdict(study: xr.Dataset, params: Sequence[Mapping]) -> str:
    """One line on the light-cone claim, generated from the points with ``light_cone``
    (empty without them)."""
    idx = [i for i, p in enumerate(params) if p.get("light_cone", 0)]
    if not idx:
        return ""
    parts = []
    cycles = [i for i in idx if params[i]["weights"] == "cycle"]
    if cycles:
        z = study["offline_z_max"].values[cycles]
        crit = study["offline_zcrit"].values[cycles]
        held = bool(np.all(z <= crit))
        kinds = sorted({params[i]["activation"] for i in cycles})
        parts.append(
            f"{'holds' if held else 'FAILS'}: on the n-cycle C(k, tau) vanishes off the light "
            f"line k = tau mod n for f = {' and '.join(kinds)} (max |z| "
            f"{np.max(z):.1f}, critical {np.min(crit):.2f})"
        )
        linear = [i for i in cycles if params[i]["activation"] == "linear"]
        if linear:
            z = study["cone_ref_z_max"].values[linear]
            crit = study["cone_ref_zcrit"].values[linear]
            parts.append(f"on it C = a^tau s^2 / (1 - a^2) (linear f: max |z| over all entries "
                         f"{np.max(z):.1f}, critical {np.min(crit):.2f})")  # fmt: skip
    for i in idx:
        p = params[i]
        if p["weights"] == "lazy_cycle":
            v, se = study["cone_speed"].values[i], study["cone_speed_se"].values[i]
            w, wse = study["cone_spread"].values[i], study["cone_spread_se"].values[i]
            ve, we = study["cone_speed_exact"].values[i], study["cone_spread_exact"].values[i]
            parts.append(
                f"lazy shift e = {p['laziness']:g}: cone speed {v:.3f} +- {se:.3f} (exact "
                f"{ve:.3f}; 1 - e = {1 - p['laziness']:.3f}), spread at tau = "
                f"{p['light_cone']} {w:.2f} +- {wse:.2f} (exact {we:.2f} within "
                f"{WINDOW} sites of the cone; sqrt(e (1 - e) tau) = "
                f"{study['cone_spread_formula'].values[i]:.2f})"
            )
        elif p["weights"] not in ("cycle",):
            f, se = study["lightline_fraction"].values[i], study["lightline_fraction_se"].values[i]
            parts.append(f"{p['ensemble']} ({p['weights']}) has no light line: light-line share "
                         f"{f:.3f} +- {se:.3f} (a cycle: 1)")  # fmt: skip
    return "; ".join(parts)
