"""One-line verdicts on the Madelung, Hamilton-Jacobi and caustics readings of noisy learning,
generated from the learning study dataset (nnfield.studies.learning.claims; docs/physics.md
section 3.5).

Every comparison is a z-test with the jackknife error over blocks against a two-sided
Bonferroni critical value from Student's t with blocks - 1 degrees of freedom (the smallest
over the points compared), at the study's significance; identities (the curl of SGLD) are
checked against a rounding bound instead."""

from __future__ import annotations

import numpy as np
import xarray as xr

from nnfield import stats

COMMUTING = 1e-12
"""|[A, D]|_F / (|A|_F |D|_F) below which the noise commutes with the Hessian (no stationary
curl)."""
ROUNDING = 1e-10
"""Bound on |curl| where it vanishes identically (SGLD: D Sigma^-1 symmetric sample by
sample); float64 rounding of a few matrix products of O(1) entries."""


def _points(ds: xr.Dataset, name: str) -> list[str]:
    """Points that measure ``name``, chosen by its exact value where it has one (so that a NaN
    measurement stays in the verdict and fails it) and otherwise by the value itself."""
    key = f"{name}_exact" if f"{name}_exact" in ds else name
    if key not in ds:
        return []
    values = ds[key]
    finite = np.isfinite(values) if values.ndim == 1 else np.isfinite(values).any("step")
    return [str(p) for p in ds["point"].values[finite.values]]


def _critical(ds: xr.Dataset, points: list[str], n_tests: int, alpha: float) -> float:
    dof = float(ds["jackknife_dof"].sel(point=points).min())
    return stats.bonferroni_t(alpha, max(n_tests, 1), dof)


def _short(point: str) -> str:
    """problem and initial of a point name (problem~P/.../initial~I)."""
    parts = dict(part.split("~", 1) for part in point.split("/"))
    return "/".join(parts[k] for k in ("problem", "initial") if k in parts)


def _word(ok: bool) -> str:
    return "consistent" if ok else "INCONSISTENT"


def madelung(ds: xr.Dataset, alpha: float) -> str | None:
    points = _points(ds, "hbar2")
    if not points:
        return None
    sel = ds.sel(point=points)
    value, se = sel["hbar2"].values, sel["hbar2_se"].values
    chain, cont = sel["hbar2_exact"].values, sel["hbar2_continuum"].values
    crit = _critical(ds, points, 2 * len(points), alpha)  # against the chain, and the sign
    z_chain = np.abs(value - chain) / se
    z_sign = value / se
    rows = zip(points, value, se, chain, cont, strict=True)
    parts = [f"{_short(p)} {v:.3f} +- {s:.3f} (fit of exact moments {c:.3f}, continuum {k:.3f})"
             for p, v, s, c, k in rows]  # fmt: skip
    negative = bool(np.all(z_sign < -crit))
    sign = "< 0" if negative else "not resolved below 0"
    offset = np.abs(chain / cont - 1)
    word = _word(bool(np.all(z_chain <= crit)))
    reading = ("the chain obeys the Madelung form of its Fokker-Planck equation only with "
               "imaginary hbar (hbar^2 = -4 T^2: a diffusion, not quantum mechanics)" if negative
               else "the sign of hbar^2 is not resolved")  # fmt: skip
    return (f"hbar^2 {sign} at every point, {word} with the fit of the exact chain moments: "
            f"z against 0 at most {np.max(z_sign):.1f}, against the fit of exact moments at "
            f"most {np.max(z_chain):.1f} (critical {crit:.2f}); {reading}; the fit of exact "
            f"moments differs from -4 T^2 by {offset.min():.1%} to {offset.max():.1%} (first "
            f"order in eta, second in the record spacing: coarse points do not measure "
            f"-4 T^2); only the slope is tested on the Monte Carlo, the intercept V on exact "
            f"moments; " + "; ".join(parts))  # fmt: skip


def quench(ds: xr.Dataset, alpha: float) -> str | None:
    points = _points(ds, "quench_half_period_step")
    if not points:
        return None
    crit = _critical(ds, points, 2 * len(points), alpha)
    parts, z_exact, z_wave = [], [], []
    for p in points:
        one = ds.sel(point=p).sel(step=float(ds["quench_half_period_step"].sel(point=p)))
        v, s = float(one["quench_return"]), float(one["quench_return_se"])
        ex, wave = float(one["quench_return_exact"]), float(one["quench_breathing"])
        z_exact.append(abs(v - ex) / s)
        z_wave.append(abs(v - wave) / s)
        parts.append(f"{_short(p)} {v:.4f} +- {s:.4f} (exact {ex:.4f}, real-hbar {wave:.3f})")
    rejected = bool(np.all(np.array(z_wave) > crit))
    verdict = "relaxes (no real-hbar breathing in the loss)" if rejected else "NOT resolved"
    word = _word(bool(np.all(np.array(z_exact) <= crit)))
    return (f"width quench {verdict}, {word} with the exact relaxation: (s - s_inf) / (s_0 - "
            f"s_inf) at the half-period pi / omega, where a real-hbar (hbar = 2 T) packet in "
            f"the trap U is back at 1, z against it at least {np.min(z_wave):.0f}, against the "
            f"exact relaxation at most {np.max(z_exact):.1f} (critical {crit:.2f}); the "
            f"real-hbar continuation of the chain's own Madelung equation (V an inverted "
            f"parabola) would spread exponentially instead; " + "; ".join(parts))  # fmt: skip


def curl(ds: xr.Dataset, alpha: float) -> str | None:
    points = _points(ds, "curl")
    if not points:
        return None
    sel = ds.sel(point=points)
    sgld = sel["optimizer"].values == "sgld"
    parts, ok, nonzero = [], True, []
    if sgld.any():
        worst = float(np.abs(sel["curl"].values[sgld]).max())
        ok &= worst <= ROUNDING
        state = "0" if worst <= ROUNDING else "NONZERO"
        parts.append(f"D = T I ({int(sgld.sum())} sgld points): curl {state} identically "
                     f"(max |curl| {worst:.1e}, bound {ROUNDING:g})")  # fmt: skip
    aniso = [p for p, s in zip(points, sgld, strict=True) if not s]
    if aniso:
        crit = _critical(ds, aniso, 3 * len(aniso), alpha)
        for p in aniso:
            one = ds.sel(point=p)
            c, cs, ce = (float(one[k]) for k in ("curl", "curl_se", "curl_exact"))
            names = ("curl_production", "curl_production_se", "curl_production_exact")
            w, ws, we = (float(one[k]) for k in names)
            z_curl, z_prod = abs(c - ce) / cs, abs(w - we) / ws
            ok &= bool(z_curl <= crit and z_prod <= crit)
            if float(one["noise_commutator"]) > COMMUTING:  # a stationary curl is expected
                nonzero.append(bool(abs(c) / cs > crit))
            parts.append(
                f"{_short(p)}: curl {c:.3f} +- {cs:.3f} (exact {ce:.3f}, z {z_curl:.1f}; "
                f"continuum {float(one['curl_continuum']):.3f}; z against 0 {abs(c) / cs:.0f}), "
                f"production {w:.5f} +- {ws:.5f} per step (exact {we:.5f}, z {z_prod:.1f}; "
                f"continuum {float(one['curl_production_continuum']):.5f}; the chain's exact "
                f"stationary production {float(one['production_stationary_exact']):.5f}); "
                f"critical {crit:.2f}"
            )
    if nonzero and all(nonzero):
        head = "no scalar phase (unit mass) where the noise does not commute with the Hessian"
    elif nonzero:
        head = "curl not resolved at every point with non-commuting noise"
    else:
        head = "no point with non-commuting noise"
    return f"{head}, {_word(ok)} with exact: " + "; ".join(parts)


def hamilton_jacobi(ds: xr.Dataset, alpha: float) -> str | None:
    points = _points(ds, "entropic_ratio")
    if not points:
        return None
    parts, z, first, n_tests = [], [], [], 0
    for p in points:
        one = ds.sel(point=p).dropna("step", subset=["entropic_ratio_exact"])
        v, s, ex = (one[k].values for k in ("entropic_ratio", "entropic_ratio_se",
                                            "entropic_ratio_exact"))  # fmt: skip
        z.append(np.abs(v - ex) / s)
        n_tests += v.size
        first.append((v[0], s[0]))
        parts.append(f"{_short(p)} R(0) {v[0]:.3g} +- {s[0]:.2g} -> R(end) {v[-1]:.3f} +- "
                     f"{s[-1]:.3f} (exact {ex[0]:.3g} -> {ex[-1]:.3f})")  # fmt: skip
    z = np.concatenate(z)
    crit = _critical(ds, points, n_tests, alpha)
    low = sum(bool(v + crit * s < 0.1) for v, s in first)
    high = sum(bool(v - crit * s > 10) for v, s in first)
    return (f"R {_word(bool(np.all(z <= crit)))} with exact, R(0) < 0.1 at {low} and > 10 at "
            f"{high} of {len(points)} points: max |z| {np.max(z):.1f} over {n_tests} records "
            f"(critical {crit:.2f}); R = E|T grad ln p|^2 / E|grad U|^2 is a drift-to-diffusion "
            f"ratio, not a distance from equilibrium; where R << 1 the loss alone drives "
            f"(gradient flow, the classical Hamilton-Jacobi limit); "
            + "; ".join(parts))  # fmt: skip


def caustics(ds: xr.Dataset) -> str | None:
    points = _points(ds, "mean_sign_changes")
    if not points:
        return None
    parts, ok = [], True
    for p in points:
        one = ds.sel(point=p)
        got, want = int(one["mean_sign_changes"]), int(one["mean_sign_changes_exact"])
        wrong, z = int(one["mean_sign_mismatches"]), float(one["mean_position_max_z"])
        crit = float(one["mean_position_zcrit"])
        under = bool(one["mean_underdamped"])
        ok &= bool(got == want >= 0 and wrong == 0 and z <= crit) and (under or want <= 1)
        regime = "underdamped" if under else "overdamped"
        parts.append(f"{_short(p)} (momentum {float(one['momentum']):g}, {regime}): {got} "
                     f"sign changes "
                     f"(exact {want}), {wrong} records of the wrong sign, max |z| {z:.1f} "
                     f"(critical {crit:.2f})")  # fmt: skip
    changes = ", ".join(f"{int(ds['mean_sign_changes'].sel(point=p))} at momentum "
                        f"{float(ds['momentum'].sel(point=p)):g}" for p in points)  # fmt: skip
    return (f"mean position {_word(ok)} with exact, sign changes {changes}: repeated "
            f"changes need an underdamped map (complex eigenvalues; real positive ones allow "
            f"at most one, checked); for trajectories started at rest on a quadratic loss the "
            f"zeros are the focal times (caustics) of the noiseless family, otherwise they are "
            f"only an oscillation of the mean; counted over the records where the exact mean is "
            f"resolved; " + "; ".join(parts))  # fmt: skip


def claim_verdicts(ds: xr.Dataset, alpha: float) -> dict[str, str]:
    """Dataset attrs ``claim_*_verdict`` of the claims the study's points measure."""
    out = {
        "claim_madelung_verdict": madelung(ds, alpha),
        "claim_quench_verdict": quench(ds, alpha),
        "claim_curl_verdict": curl(ds, alpha),
        "claim_hamilton_jacobi_verdict": hamilton_jacobi(ds, alpha),
        "claim_caustics_verdict": caustics(ds),
    }
    return {k: v for k, v in out.items() if v is not None}
