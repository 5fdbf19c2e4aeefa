"""Strings and light cones: the space-time correlation of the hidden dynamics on a ring
(docs/hidden.md, "Light cones").

Vanchurin (2020) states that with a permutation weight matrix the neurons' states move as
strings in an emergent space-time; what the model can check exactly is the light cone of a
shift in (site, step), an identity of the dynamics (no Lorentz structure is tested).  For
x' = phi(g a P x) + s xi on the n-cycle (P x)_i = x_{i-1}, site i at time t + 1 depends only on
site i - 1 at time t, so every characteristic i - t = const is a Markov chain of its own,
independent of the others from x = 0 on.  Hence C(k, tau) = <x_i(t) x_{i+k}(t + tau)> (a raw
moment) is E[x] E[x'] off the light line k = tau (mod n): 0 for odd phi with zero bias (linear,
tanh); for linear f it is (g a)^tau s^2 / (1 - (g a)^2) on the line.  Controls: the lazy shift
a ((1 - e) P + e I) gives a cone whose centre moves at speed 1 - e and whose width grows as
sqrt(e (1 - e) tau) (a binomial walk convolved with the equal-time profile: means and variances
add); Ginibre W has no light line.  Coupled rings: each mode j of a symmetric C (eigenvalue
c_j) is a ring of its own, with kernel a P + eps c_j for W = I (x) a P + eps C (x) I (speed
1 / (1 + eps c_j / a): the modes travel at different speeds unless C is proportional to I) and
a (1 + eps c_j) P for W = a (I + eps C) (x) P (every mode on the light line).

Per point (``light_cone`` L > 0): C_j(k, tau) over (lag, mode, site) with jackknife errors over
network blocks, the exact C for linear f, and summaries:
- ``cone_ref_z_max``: max |C - C_exact| / se over all entries, se paired network by network
  (the measurement, linear f);
- ``offline_z_max``: max |C| / se over the entries off the light line (0 for a cycle);
- ``lightline_fraction``: sum over tau >= 1 of C(tau mod n, tau)^2 over the sum of all C^2 at
  tau >= 1 (1 for a cycle);
- ``cone_speed``, ``cone_spread`` per mode (the shift kinds: cycle, lazy shift, rings): the
  cone's speed and the growth of its width between tau = 0 and L, from one wavenumber q near
  pi / 4 (:func:`summaries`), against the same of the exact C and against the formulas
  (1 - e and sqrt(e (1 - e) L) for the lazy shift, 1 / (1 + eps c_j / a) and 1 for the rings),
  which they meet up to O(q^2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from nnfield import stats
from nnfield.studies.hidden.weights import RING_KINDS, chain_coupling

META = {
    "spacetime": ("space-time correlation C(k, tau) = <x_i(t) x_(i+k)(t + tau)>, averaged over "
                  "sites (cyclic), time and networks", "1"),
    "spacetime_se": ("jackknife standard error of spacetime", "1"),
    "spacetime_exact": ("exact stationary C(k, tau) of linear f, mean over the networks", "1"),
    "cone_ref_z_max": ("max over entries of |spacetime - spacetime_exact| / spacetime_paired_se "
                       "(linear f)", "1"),
    "spacetime_paired_se": ("jackknife standard error of spacetime - spacetime_exact, paired "
                            "network by network (linear f)", "1"),
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
    "lightline_fraction_formula": ("(no formula: NaN)", "1"),
    "cone_speed": ("-sum_tau arg(C^(q, tau + 1) / C^(q, tau)) / (q L), q near pi / 4 "
                   "(lightcone.wavenumber): the cone's speed, sites per step", "1"),
    "cone_speed_se": ("jackknife standard error of cone_speed", "1"),
    "cone_speed_exact": ("cone_speed of spacetime_exact", "1"),
    "cone_speed_formula": ("-arg(lambda_j(q)) / q from the kernel symbol lambda_j "
                           "(lightcone.closed_forms; q -> 0: 1 - e for the lazy shift, "
                           "1 / (1 + eps c_j / a) for rings, 1 for cycle and rings_product)", "1"),
    "cone_spread": ("sqrt(-2 ln(|C^(q, L) / C^(q, 0)| / (C^(0, L) / C^(0, 0)))) / q: the growth "
                    "of the cone's width from tau = 0 to L, sites", "1"),
    "cone_spread_se": ("jackknife standard error of cone_spread", "1"),
    "cone_spread_exact": ("cone_spread of spacetime_exact", "1"),
    "cone_spread_formula": ("sqrt(-2 L ln(|lambda_j(q)| / lambda_j(0))) / q (q -> 0: "
                            "sqrt(e (1 - e) L) for the lazy shift, 0 for a cycle)", "1"),
    "lag": ("lag tau (steps)", "1"),
    "mode": ("mode j of the rings' coupling C (lightcone.cone_modes): ascending eigenvalue of a "
             "symmetric C, else the ring itself; 0 for a single ring", "1"),
    "site": ("site offset k (neurons, cyclic)", "1"),
}  # fmt: skip


def cone_modes(p: Mapping) -> tuple[np.ndarray, np.ndarray | None]:
    """(V, c): the rows of V are the modes whose space-time correlation is measured, c their
    eigenvalues of C.  For the ring kinds with a symmetric C, the orthonormal eigenvectors of
    C (ascending c); with another C, the rings themselves (V = I, c = None); for every other
    kind the whole state is one ring (V = [[1]])."""
    if p["weights"] not in RING_KINDS:
        return np.ones((1, 1)), None
    c = chain_coupling(int(p["subsystems"]), p["coupling_matrix"])
    if not np.array_equal(c, c.T):
        return np.eye(len(c)), None
    values, vectors = np.linalg.eigh(c)
    return vectors.T, values


def ring_sites(p: Mapping) -> int:
    """Sites r of the ring(s) whose correlation is measured."""
    return int(p["neurons"]) // (int(p["subsystems"]) if p["weights"] in RING_KINDS else 1)


def mode_symbols(p: Mapping, q: float) -> np.ndarray | None:
    """Each mode's kernel symbol lambda_j(q) up to the factor a (for linear f, C^(q, tau + 1)
    = g a lambda_j(q) C^(q, tau)): e^(-iq) (cycle), (1 - e) e^(-iq) + e (lazy shift),
    e^(-iq) + eps c_j / a (rings), (1 + eps c_j) e^(-iq) (rings_product); None where no mode is
    a circulant kernel of its own."""
    kind = p["weights"]
    shift = np.exp(-1j * q)
    if kind == "cycle":
        return np.array([shift])
    if kind == "lazy_cycle":
        e = float(p["laziness"])
        return np.array([(1 - e) * shift + e])
    _, c = cone_modes(p)
    if kind not in RING_KINDS or c is None:
        return None
    eps = float(p["coupling"])
    if kind == "rings_product":
        return (1 + eps * c) * shift
    return shift + eps * c / float(p["contraction"])


def closed_forms(p: Mapping) -> dict[str, np.ndarray]:
    """cone_speed and cone_spread per mode from the kernel symbols at the measured wavenumber
    (what :func:`summaries` gives for the exact C of linear f), NaN where none: -arg(lambda(q))
    / q and sqrt(-2 L ln(|lambda(q)| / lambda(0))) / q.  As q -> 0 they tend to 1 - e and
    sqrt(e (1 - e) L) (lazy shift), 1 / (1 + eps c_j / a) and sqrt(-L (eps c_j / a) / (1 + eps
    c_j / a)^2) where real (rings), 1 and 0 (cycle, rings_product)."""
    rings = int(p["subsystems"]) if p["weights"] in RING_KINDS else 1
    _, q = wavenumber(ring_sites(p))
    lam, lam0 = mode_symbols(p, q), mode_symbols(p, 0.0)
    if lam is None:
        return {"cone_speed": np.full(rings, np.nan), "cone_spread": np.full(rings, np.nan)}
    lags = int(p.get("light_cone", 0))
    growth = -2 * lags * np.log(np.abs(lam) / np.abs(lam0))
    return {"cone_speed": -np.angle(lam) / q,
            "cone_spread": np.sqrt(np.where(growth >= 0, growth, np.nan)) / q}  # fmt: skip


def _light_line(lags: int, n: int) -> np.ndarray:
    on = np.zeros((lags + 1, n), dtype=bool)
    on[np.arange(lags + 1), np.arange(lags + 1) % n] = True
    return on


def wavenumber(r: int) -> tuple[int, float]:
    """(h, q = 2 pi h / r): the harmonic nearest q = pi / 4 on a ring of r sites, at which the
    cone's speed and spread are read (lower q: closer to the q -> 0 formulas but a signal,
    1 - |lambda(q)|, that falls as q^2 under the noise of C)."""
    h = max(1, round(r / 8))
    return h, 2 * np.pi * h / r


def summaries(c: np.ndarray) -> dict[str, np.ndarray]:
    """Light-line share, cone speed and spread of C (..., L + 1, r) (leading axes kept).

    The speed and spread come from one wavenumber q of the ring (:func:`wavenumber`): with
    C^(q, tau) the Fourier transform of C(., tau) over sites, speed = -sum_tau
    arg(C^(q, tau + 1) / C^(q, tau)) / (q L) (each step's phase, so none wraps) and
    spread^2 = -2 ln(|C^(q, L) / C^(q, 0)| / (C^(0, L) / C^(0, 0))) / q^2.  For linear f on a
    circulant mode of symbol lambda(q), C^(q, tau + 1) = lambda(q) C^(q, tau) exactly, so
    these are -arg(lambda(q)) / q and sqrt(-2 L ln(|lambda(q)| / lambda(0))) / q: the cone's
    speed and the growth of its width, up to O(q^2).  Unlike moments over sites they weight
    every site alike, so the far tails' noise is not amplified."""
    lags, r = c.shape[-2] - 1, c.shape[-1]
    on = _light_line(lags, r)[1:]
    sq = c[..., 1:, :] ** 2
    h, q = wavenumber(r)
    spectrum = np.fft.fft(c, axis=-1)
    phase = np.angle(spectrum[..., 1:, h] / spectrum[..., :-1, h]).sum(-1)
    ratio = np.abs(spectrum[..., lags, h] / spectrum[..., 0, h])
    ratio0 = np.real(spectrum[..., lags, 0] / spectrum[..., 0, 0])
    return {
        "lightline_fraction": (sq * on).sum((-2, -1)) / sq.sum((-2, -1)),
        "cone_speed": -phase / (q * lags),
        "cone_spread": np.sqrt(np.maximum(-2 * np.log(ratio / np.abs(ratio0)), 0.0)) / q,
    }


MODE_VARIABLES = ("lightline_fraction", "cone_speed", "cone_spread")
DIMS = {
    **{name: ("lag", "mode", "site") for name in ("spacetime", "spacetime_se", "spacetime_exact",
                                                   "spacetime_paired_se")},
    **{f"{name}{suffix}": ("mode",) for name in MODE_VARIABLES
       for suffix in ("", "_se", "_exact", "_formula")},
}  # fmt: skip
"""Dimensions (after ``point``) of the per-point light-cone variables that are not scalars."""


def _per_mode(c: np.ndarray) -> dict[str, np.ndarray]:
    """summaries of every mode of C (..., L + 1, R, r), stacked on a last axis (R)."""
    rings = c.shape[-2]
    parts = [summaries(c[..., j, :]) for j in range(rings)]
    return {name: np.stack([part[name] for part in parts], axis=-1) for name in MODE_VARIABLES}


def point_estimates(ds, p: Mapping, finite: np.ndarray, crit_of) -> dict[str, np.ndarray]:
    """Per-point light-cone estimates (empty without ``light_cone``); ``crit_of(n_tests)`` is
    the point's Student-t Bonferroni critical value."""
    lags = int(p.get("light_cone", 0))
    if not lags:
        return {}
    c = np.asarray(ds["spacetime"].values)  # (B, M, L + 1, R, r)
    mask = finite[..., None, None, None]
    sums = {"c": np.where(mask, c, 0.0).sum(1)}
    counts = finite.sum(1)
    est = stats.jackknife(sums, counts, lambda m: m["c"])
    out = {"spacetime": est.value, "spacetime_se": est.stderr}
    rings, r = c.shape[-2], c.shape[-1]
    off = np.broadcast_to(~_light_line(lags, r)[:, None, :], est.value.shape)
    se = est.stderr
    usable = se > 0
    z_off = np.abs(est.value[off & usable] / se[off & usable])
    out["offline_z_max"] = np.asarray(z_off.max())
    out["offline_zcrit"] = np.asarray(crit_of(int(z_off.size)))
    exact = None
    if "spacetime_exact" in ds:
        per_exact = np.asarray(ds["spacetime_exact"].values)
        exact = np.where(mask, per_exact, 0.0).sum((0, 1)) / counts.sum()
        out["spacetime_exact"] = exact
        # paired with each network's own exact C: for random W the spread of C between
        # networks is not noise of the comparison (as ep_paired_se for ep)
        sums["d"] = np.where(mask, c - per_exact, 0.0).sum(1)
        diff = stats.jackknife(sums, counts, lambda m: m["d"])
        out["spacetime_paired_se"] = diff.stderr
        ok = diff.stderr > 0
        z = np.abs(diff.value[ok]) / diff.stderr[ok]
        out["cone_ref_z_max"] = np.asarray(z.max())
        out["cone_ref_zcrit"] = np.asarray(crit_of(int(z.size)))
    # a speed and a spread where every mode is a circulant shift kernel
    cone = p["weights"] in ("cycle", "lazy_cycle", *RING_KINDS)
    forms = closed_forms(p)
    # a spread where the kernel widens the cone (|lambda(q)| < lambda(0)); for a pure shift it
    # is 0 exactly, where sqrt(max(., 0)) has no derivative for the jackknife
    spreads = np.isfinite(forms["cone_spread"]) & (forms["cone_spread"] > 0)
    nan = np.full(rings, np.nan)
    # the summaries of every jackknife replicate, computed once for all three
    replicates = _per_mode(stats.jackknife_replicates(sums, counts, lambda m: m["c"]))
    exact_summaries = _per_mode(exact) if exact is not None else None
    for name in MODE_VARIABLES:
        if name != "lightline_fraction" and not cone:
            for suffix in ("", "_se", "_exact"):
                out[f"{name}{suffix}"] = nan
            continue
        e = stats.from_replicates(replicates[name])
        out[name], out[f"{name}_se"] = e.value, e.stderr
        out[f"{name}_exact"] = exact_summaries[name] if exact_summaries is not None else nan
        if name == "cone_spread":
            for suffix in ("", "_se", "_exact"):
                out[f"{name}{suffix}"] = np.where(spreads, out[f"{name}{suffix}"], np.nan)
    out["lightline_fraction_formula"] = nan
    out["cone_speed_formula"] = forms["cone_speed"] if cone else nan
    out["cone_spread_formula"] = np.where(spreads, forms["cone_spread"], np.nan) if cone else nan
    return out


SHARE_ON_LINE = 0.9
"""A point keeps its light line when its light-line share of C^2 (tau >= 1) is at least this,
and leaves it when the share plus its critical value times its error is below it."""


def _dof(p: Mapping) -> int:
    return stats.jackknife_dof(int(p["networks"]) // int(p["block_size"]))


def verdict(study: xr.Dataset, params: Sequence[Mapping]) -> str:
    """One line on the light-cone claims, generated from the points with ``light_cone``
    (empty without them); every clause is a test that can fail (FAILS / WARNING)."""
    idx = [i for i, p in enumerate(params) if p.get("light_cone", 0)]
    if not idx:
        return ""
    val = lambda name, i: study[name].values[i]  # noqa: E731
    parts = []
    cycles = [i for i in idx if params[i]["weights"] == "cycle"]
    if cycles:
        z, crit = val("offline_z_max", cycles), val("offline_zcrit", cycles)
        kinds = sorted({params[i]["activation"] for i in cycles})
        parts.append(
            f"{'holds' if np.all(z <= crit) else 'FAILS'}: on the n-cycle C(k, tau) vanishes "
            f"off the light line k = tau mod n for f = {' and '.join(kinds)} (max |z| "
            f"{np.max(z):.1f}, critical {np.min(crit):.2f})"
        )
        linear = [i for i in cycles if params[i]["activation"] == "linear"]
        if linear:
            z, crit = val("cone_ref_z_max", linear), val("cone_ref_zcrit", linear)
            parts.append(f"{'holds' if np.all(z <= crit) else 'FAILS'}: on it C = (g a)^tau s^2 "
                         f"/ (1 - (g a)^2) (linear f: max |z| over all entries {np.max(z):.1f}, "
                         f"critical {np.min(crit):.2f})")  # fmt: skip
    for i in idx:
        p = params[i]
        crit2 = stats.bonferroni_t(stats.DEFAULT_SIGNIFICANCE, 2, _dof(p))
        speed, speed_se = val("cone_speed", i), val("cone_speed_se", i)
        exact = val("cone_speed_exact", i)
        share, share_se = val("lightline_fraction", i), val("lightline_fraction_se", i)
        modes = np.isfinite(share)  # the dataset pads modes to the most of any point
        leaves = bool(np.all(share[modes] + crit2 * share_se[modes] < SHARE_ON_LINE))
        speed, speed_se, exact = speed[modes], speed_se[modes], exact[modes]
        if p["weights"] == "lazy_cycle":
            e, lags = float(p["laziness"]), int(p["light_cone"])
            w, wse, we = val("cone_spread", i)[0], val("cone_spread_se", i)[0], val(
                "cone_spread_exact", i)[0]  # fmt: skip
            z = max(abs(speed[0] - exact[0]) / speed_se[0], abs(w - we) / wse)
            check = "" if z <= crit2 else f" WARNING: |z| {z:.1f} against the exact cone;"
            parts.append(
                f"lazy shift e = {e:g} {'leaves' if leaves else 'WARNING: keeps'} the light "
                f"line (share {share[0]:.3f} +- {share_se[0]:.3f}):{check} cone speed "
                f"{speed[0]:.3f} +- {speed_se[0]:.3f} (exact {exact[0]:.3f} at q = "
                f"{wavenumber(ring_sites(p))[1]:.3f}; 1 - e = {1 - e:.3f} as q -> 0), spread at "
                f"tau = {lags} {w:.2f} +- {wse:.2f} (exact {we:.2f}; sqrt(e (1 - e) tau) = "
                f"{np.sqrt(e * (1 - e) * lags):.2f} as q -> 0)"
            )
        elif p["weights"] in RING_KINDS and np.isfinite(speed).all():
            crit = stats.bonferroni_t(stats.DEFAULT_SIGNIFICANCE, len(speed) + 1, _dof(p))
            _, c = cone_modes(p)
            limit = (np.ones(len(c)) if p["weights"] == "rings_product"
                     else 1 / (1 + p["coupling"] * c / p["contraction"]))  # fmt: skip
            rows = zip(speed, speed_se, exact, limit, strict=True)
            shown = ", ".join(f"{v:.3f} +- {e:.3f} ({x:.3f}; {y:.3f})" for v, e, x, y in rows)
            bad = np.abs(speed - exact) / speed_se > crit
            gap = abs(speed[-1] - speed[0]) / np.hypot(speed_se[-1], speed_se[0])
            apart = "different speeds" if gap > crit else "speeds not told apart"
            z, zc = val("offline_z_max", i), val("offline_zcrit", i)
            line = ("every mode on the light line" if z <= zc else
                    "the modes leave the light line")  # fmt: skip
            form = ("a (I + eps C) (x) P" if p["weights"] == "rings_product"
                    else "I (x) a P + eps C (x) I")  # fmt: skip
            parts.append(f"{p['ensemble']}: W = {form}, eps = {p['coupling']:g}: {line} (off it "
                         f"max |z| {z:.1f}, critical {zc:.2f}), modes at {apart}: speeds "
                         f"{shown} (brackets: exact at the measured q; q -> 0)"
                         + (" WARNING: a speed disagrees with the exact one" if bad.any()
                            else ""))  # fmt: skip
        elif p["weights"] not in ("cycle", *RING_KINDS):
            parts.append(f"{p['ensemble']} ({p['weights']}) "
                         f"{'has no' if leaves else 'WARNING: keeps a'} light line (share "
                         f"{share[0]:.3f} +- {share_se[0]:.3f}; a cycle: 1)")  # fmt: skip
    return ("; ".join(parts) + " (identities of the shift dynamics in (site, step); no "
            "Lorentz structure is tested)")  # fmt: skip
