"""Figure ``hidden_entropy``: entropy production of noisy hidden-state dynamics.

Six panels, all in nats per step per neuron, Monte Carlo points with jackknife errors over exact
curves (lines: ensemble means; dashed where the curve is the linear g -> 0 reference of a tanh
ensemble) and crosses (the exact mean over the very networks simulated):
(a) against the contraction a for cycle / permutation / orthogonal / symmetric weights (marker
    shape: noise s, which the production does not depend on);
(b) against the antisymmetric fraction k of Ginibre weights (0 for symmetric W);
(c) the P/P^T mixture: conditioned on W (quenched) every member produces n a^2/(1 - a^2), while
    the annealed production is 0;
(d) coupled rings against eps, with the fitted quadratic form (dotted) and its symmetry z;
(e) tanh networks across the gain g = 1, with the linear reference for g < 1;
(f) coupled rings: equal-time correlation and probability current of the ring averages.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from nnfield.figures import style

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
MARKERS = ("o", "s", "^", "D", "v")
LINEAR_KINDS = ("cycle", "permutation", "orthogonal", "symmetric")


def _points(ds: xr.Dataset, **match) -> xr.Dataset:
    keep = np.ones(ds.sizes["point"], dtype=bool)
    for key, allowed in match.items():
        values = ds[key].values
        keep &= np.isin(values, allowed if isinstance(allowed, tuple | list) else [allowed])
    return ds.isel(point=np.flatnonzero(keep))


def _curve(ax, ds: xr.Dataset, ensemble: str, axis: str, color, dashed=False, label=None):
    if "curve" not in ds.dims:
        return
    for c in np.flatnonzero((ds["curve_ensemble"].values == ensemble)
                            & (ds["curve_axis"].values == axis)):  # fmt: skip
        x, y = ds["curve_x"].values[c], ds["curve_ep"].values[c]
        ax.plot(x, y, "--" if dashed else "-", color=color, lw=0.9, label=label)
        label = None


def _errorbar(ax, x, y, err, color, marker="o", label=None, filled=True):
    ok = np.isfinite(y)
    if ok.any():
        ax.errorbar(x[ok], y[ok], yerr=err[ok], fmt=marker, ms=4, color=color, label=label,
                    mfc=color if filled else "none", lw=0.8)  # fmt: skip


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8,
            color="0.4", wrap=True)  # fmt: skip


def _by_ensemble(ax, sel: xr.Dataset, full: xr.Dataset, axis: str, dashed=False) -> None:
    noises = sorted(set(sel["noise"].values.tolist()))
    for i, name in enumerate(dict.fromkeys(sel["ensemble"].values.tolist())):
        one = _points(sel, ensemble=name)
        color = PALETTE[i % len(PALETTE)]
        _curve(ax, full, name, axis, color, dashed=dashed)
        for s in noises:
            pts = _points(one, noise=s)
            label = f"{name}, s={s:g}" if len(noises) > 1 else name
            _errorbar(ax, pts[axis].values, pts["ep"].values, pts["ep_se"].values, color,
                      MARKERS[noises.index(s) % len(MARKERS)], label)  # fmt: skip
            if "ep_exact" in pts and np.isfinite(pts["ep_exact"].values).any():
                ax.plot(
                    pts[axis].values,
                    pts["ep_exact"].values,
                    "x",
                    color="black",
                    ms=4,
                    label="exact for the simulated W" if (i, s) == (0, noises[0]) else None,
                )


def _panel_contraction(ax, ds):
    sel = _points(ds, weights=LINEAR_KINDS, activation="linear")
    if not sel.sizes["point"]:
        return _empty(ax, "no cycle/permutation/orthogonal/\nsymmetric ensemble configured")
    _by_ensemble(ax, sel, ds, "contraction")
    ax.set(
        xlabel="contraction a",
        ylabel="entropy production / step / neuron",
        title="(a) permutations and friends",
        yscale="symlog",
    )
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.legend()


def _panel_fraction(ax, ds):
    sel = _points(ds, weights="ginibre", activation="linear")
    if not sel.sizes["point"]:
        return _empty(ax, "no linear ginibre ensemble configured")
    _by_ensemble(ax, sel, ds, "antisymmetric_fraction")
    ax.set(xlabel="antisymmetric fraction k", title="(b) Ginibre: symmetric to antisymmetric")
    ax.legend()


def _panel_mixture(ax, ds):
    sel = _points(ds, weights="mixture")
    if not sel.sizes["point"]:
        return _empty(ax, "no P/P^T mixture configured")
    for i, name in enumerate(dict.fromkeys(sel["ensemble"].values.tolist())):
        one = _points(sel, ensemble=name)
        a = one["contraction"].values
        _curve(ax, ds, name, "contraction", PALETTE[0], label="exact, each member")
        _errorbar(ax, a, one["ep"].values, one["ep_se"].values, PALETTE[0], MARKERS[i],
                  f"{name}: quenched (W known)")  # fmt: skip
        _errorbar(ax, a, one["annealed"].values, one["annealed_se"].values, PALETTE[1],
                  MARKERS[i], f"{name}: annealed")  # fmt: skip
        _errorbar(ax, a, one["annealed_medium"].values, one["annealed_medium_se"].values,
                  PALETTE[1], MARKERS[i], "its medium part", filled=False)  # fmt: skip
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set(
        xlabel="contraction a",
        ylabel="entropy production / step / neuron",
        title="(c) P/P^T mixture: quenched vs annealed",
    )
    ax.legend()


def _panel_rings(ax, ds):
    sel = _points(ds, weights="rings")
    if not sel.sizes["point"]:
        return _empty(ax, "no coupled rings configured")
    fits = ds["ring_fit_ensemble"].values.tolist() if "ring_fit" in ds.dims else []
    for i, name in enumerate(dict.fromkeys(sel["ensemble"].values.tolist())):
        one = _points(sel, ensemble=name)
        color = PALETTE[i % len(PALETTE)]
        _curve(ax, ds, name, "coupling", color)
        label = f"{name} ({one['coupling_matrix'].values[0]} C)"
        if name in fits:
            f = fits.index(name)
            c = ds["ring_fit_value"].values[f]
            z = float(ds["ring_fit_symmetry_z"].values[f])
            eps = np.linspace(float(one["coupling"].min()), float(one["coupling"].max()), 41)
            ax.plot(eps, c[0] + c[1] * eps + c[2] * eps**2, ":", color=color, lw=1.2)
            label += f"\nc2={c[2]:.3g}±{float(ds['ring_fit_se'].values[f][2]):.2g}, c1/se={z:.1f}"
        _errorbar(ax, one["coupling"].values, one["ep"].values, one["ep_se"].values, color,
                  MARKERS[i % len(MARKERS)], label)  # fmt: skip
    ax.set(
        xlabel="coupling eps",
        ylabel="entropy production / step / neuron",
        title="(d) coupled rings: a quadratic form in eps",
    )
    ax.legend()


def _panel_gain(ax, ds):
    sel = _points(ds, activation="tanh")
    if not sel.sizes["point"]:
        return _empty(ax, "no tanh ensemble configured")
    _by_ensemble(ax, sel, ds, "gain", dashed=True)
    ax.axvline(1.0, color="0.5", lw=0.8)
    ax.set(xlabel="gain g", title="(e) tanh across g = 1 (dashed: linear f)")
    ax.set_yscale("log")
    ax.legend()


def _panel_subsystems(ax, ds):
    sel = _points(ds, weights="rings")
    if not sel.sizes["point"] or ds.sizes.get("subsystem", 0) < 2:
        return _empty(ax, "no coupled rings with 2+ rings configured")
    for i, name in enumerate(dict.fromkeys(sel["ensemble"].values.tolist())):
        one = _points(sel, ensemble=name).sortby("coupling")
        eps = one["coupling"].values
        color = PALETTE[i % len(PALETTE)]
        for var, marker, filled in (("subsystem_corr", "o", True),
                                    ("subsystem_current", "s", False)):  # fmt: skip
            pair = one[var].isel(subsystem=0, subsystem2=1)
            err = one[f"{var}_se"].isel(subsystem=0, subsystem2=1)
            scale = 1.0 if var == "subsystem_corr" else 100.0
            short = "corr" if var == "subsystem_corr" else "100 x current"
            _errorbar(ax, eps, scale * pair.values, scale * err.values, color, marker,
                      f"{name}: {short}", filled)  # fmt: skip
            if f"{var}_exact" in one:
                exact = one[f"{var}_exact"].isel(subsystem=0, subsystem2=1).values
                ax.plot(eps, scale * exact, "-", color=color, lw=0.8)
    ax.set(
        xlabel="coupling eps",
        ylabel="ring averages 1 and 2",
        title="(f) subsystem averages: correlation, current",
    )
    ax.legend()


def hidden_entropy(ds: xr.Dataset):
    """The figure from the ``hidden`` study dataset."""
    import matplotlib.pyplot as plt

    style.apply()
    fig, axes = plt.subplots(2, 3, figsize=(14, 8.5))
    for ax, panel in zip(axes.ravel(), (_panel_contraction, _panel_fraction, _panel_mixture,
                                        _panel_rings, _panel_gain, _panel_subsystems),
                         strict=True):  # fmt: skip
        panel(ax, ds)
    fig.suptitle("Hidden variables: entropy production of x' = f(Wx + b) + s xi (nats)")
    fig.tight_layout()
    return fig
