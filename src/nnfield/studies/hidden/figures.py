"""Figure ``hidden_entropy``: entropy production of noisy hidden-state dynamics.

Nine panels, Monte Carlo points with jackknife errors over exact curves (lines: ensemble means;
dashed where the curve is the linear g -> 0 reference of a tanh ensemble) and crosses (the exact
mean over the very networks simulated); productions in nats per step per neuron:
(a) against the contraction a for cycle / permutation / orthogonal / symmetric weights (marker
    shape: noise s, which the production does not depend on);
(b) against the antisymmetric fraction k of Ginibre weights (0 at k = 0 is an identity);
(c) the P/P^T mixture: conditioned on W (quenched) every member produces n a^2/(1 - a^2), while
    the annealed one-step pair-law KL is 0 by an identity;
(d) coupled rings against eps: the even quartic fit (dotted) and its c2 against the exact
    Onsager coefficient;
(e) tanh networks across the gain g = 1 for every noise s, with the linear reference;
(f) the same as ep s^2, which tends to a constant as s -> 0 where the noiseless dynamics moves
    on an attractor (open grey markers: flagged not ergodic);
(g) coupled rings: equal-time correlation and probability current of the ring averages;
(h) what the ring averages see: the fraction of the production visible at the coarse level and
    the information flow between the rings, against exact lines;
(i) the one-step current of the ring averages: uncertainty product against the bound 1.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.ticker import MaxNLocator

from nnfield.figures import style
from nnfield.studies.hidden.claims_figures import seed_claims

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
MARKERS = ("o", "s", "^", "D", "v")
LINEAR_KINDS = ("cycle", "permutation", "orthogonal", "symmetric")
CHAINS = ("symmetric", "antisymmetric")
"""Named chain couplings: the rings panels show these (without light_cone); the rest go to
seed_claims."""


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
    sel = _points(ds, weights="rings", coupling_matrix=CHAINS, light_cone=0)
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
            se2 = float(ds["ring_fit_se"].values[f][1])
            exact = float(ds["ring_c2_exact"].values[f])
            eps = np.linspace(float(one["coupling"].min()), float(one["coupling"].max()), 41)
            ax.plot(eps, c[0] + c[1] * eps**2 + c[2] * eps**4, ":", color=color, lw=1.2)
            label += f"\nc2 = {c[1]:.3g} ± {se2:.2g} (exact {exact:.3g})"
        _errorbar(ax, one["coupling"].values, one["ep"].values, one["ep_se"].values, color,
                  MARKERS[i % len(MARKERS)], label)  # fmt: skip
    ax.set(
        xlabel="coupling eps",
        ylabel="entropy production / step / neuron",
        title="(d) coupled rings: Onsager coefficient c2",
    )
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.legend()


def _tanh_by_noise(ax, sel: xr.Dataset, full: xr.Dataset, scaled: bool) -> None:
    """tanh points against g, one marker per noise; flagged (not ergodic) points open grey."""
    noises = sorted(set(sel["noise"].values.tolist()))
    var = "ep_s2" if scaled else "ep"
    flagged_label = "flagged: not ergodic"
    for i, name in enumerate(dict.fromkeys(sel["ensemble"].values.tolist())):
        one = _points(sel, ensemble=name)
        if not scaled:
            _curve(ax, full, name, "gain", "0.3", dashed=True,
                   label="linear f" if i == 0 else None)  # fmt: skip
        for j, s in enumerate(noises):
            pts = _points(one, noise=s).sortby("gain")
            ok = pts["ergodic"].values.astype(bool) if "ergodic" in pts else np.ones(
                pts.sizes["point"], bool)  # fmt: skip
            color = PALETTE[j % len(PALETTE)]
            g, y, e = pts["gain"].values, pts[var].values, pts[f"{var}_se"].values
            _errorbar(ax, g[ok], y[ok], e[ok], color, MARKERS[i % len(MARKERS)],
                      f"{name}, s={s:g}")  # fmt: skip
            if (~ok).any():
                ax.plot(g[~ok], y[~ok], MARKERS[i % len(MARKERS)], mfc="none", color="0.5",
                        ms=6, label=flagged_label)  # fmt: skip
                flagged_label = None


def _tanh_panel(ax, ds, scaled: bool) -> None:
    """(e) ep against g at every noise (scaled False), or (f) ep s^2 (scaled True)."""
    sel = _points(ds, activation="tanh")
    if not sel.sizes["point"]:
        return _empty(ax, "no tanh ensemble configured")
    _tanh_by_noise(ax, sel, ds, scaled=scaled)
    ax.axvline(1.0, color="0.5", lw=0.8)
    if scaled:
        ax.set(ylabel="ep x s^2", title="(f) tanh: ep s^2 (-> constant as s -> 0 on an attractor)")
    else:
        ax.set(ylabel="entropy production / step / neuron",
               title="(e) tanh across g = 1, every noise s")  # fmt: skip
    ax.set(xlabel="gain g", yscale="log")
    ax.legend()


def _panel_gain(ax, ds):
    _tanh_panel(ax, ds, scaled=False)


def _panel_gain_scaled(ax, ds):
    _tanh_panel(ax, ds, scaled=True)


def _panel_subsystems(ax, ds):
    sel = _points(ds, weights="rings", coupling_matrix=CHAINS, light_cone=0)
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
        title="(g) ring averages: correlation, current",
    )
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.legend()


def _ring_thermo_points(ds: xr.Dataset):
    sel = _points(ds, weights="rings", coupling_matrix=CHAINS, light_cone=0)
    if not sel.sizes["point"] or "ep_coarse" not in ds:
        return None
    return sel


def _panel_coarse(ax, ds):
    sel = _ring_thermo_points(ds)
    if sel is None:
        return _empty(ax, "no linear coupled rings configured")
    for i, name in enumerate(dict.fromkeys(sel["ensemble"].values.tolist())):
        one = _points(sel, ensemble=name).sortby("coupling")
        eps = one["coupling"].values
        color = PALETTE[i % len(PALETTE)]
        _errorbar(ax, eps, 100 * one["coarse_fraction"].values,
                  100 * one["coarse_fraction_se"].values, color, "o",
                  f"{name}: 100 x ep_coarse / ep")  # fmt: skip
        ax.plot(eps, 100 * one["coarse_fraction_exact"].values, "-", color=color, lw=0.8)
        flow = one["information_flow"].isel(subsystem=0)
        _errorbar(ax, eps, 100 * flow.values,
                  100 * one["information_flow_se"].isel(subsystem=0).values, color, "s",
                  f"{name}: 100 x info flow into ring 1", filled=False)  # fmt: skip
        ax.plot(eps, 100 * one["information_flow_exact"].isel(subsystem=0).values, "--",
                color=color, lw=0.8)  # fmt: skip
    ax.set(xlabel="coupling eps", ylabel="percent / nats x 100 per step",
           title="(h) seen by the ring averages")  # fmt: skip
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.legend()


def _panel_tur(ax, ds):
    sel = _ring_thermo_points(ds)
    if sel is None or not np.isfinite(sel["tur_product"].values).any():
        return _empty(ax, "no ring current (antisymmetric coupling) configured")
    for i, name in enumerate(dict.fromkeys(sel["ensemble"].values.tolist())):
        one = _points(sel, ensemble=name).sortby("coupling")
        pair = {"subsystem": 0, "subsystem2": 1}
        y = one["tur_product"].isel(pair).values
        if not np.isfinite(y).any():
            continue
        color = PALETTE[i % len(PALETTE)]
        eps = one["coupling"].values
        _errorbar(ax, eps, y, one["tur_product_se"].isel(pair).values, color, "o", name)
        ax.plot(eps, one["tur_product_exact"].isel(pair).values, "x", color="black", ms=5)
    ax.axhline(1.0, color="black", lw=0.8, label="bound (discrete-time TUR)")
    ax.set(xlabel="coupling eps", ylabel="Var(j)/<j>^2 (e^sigma - 1) / 2",
           title="(i) ring current: uncertainty relation")  # fmt: skip
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.legend()


def hidden_entropy(ds: xr.Dataset):
    """The figure from the ``hidden`` study dataset."""
    import matplotlib.pyplot as plt

    style.apply()
    fig, axes = plt.subplots(3, 3, figsize=(15, 13))
    panels = (_panel_contraction, _panel_fraction, _panel_mixture, _panel_rings, _panel_gain,
              _panel_gain_scaled, _panel_subsystems, _panel_coarse, _panel_tur)  # fmt: skip
    for ax, panel in zip(axes.ravel(), panels, strict=True):
        panel(ax, ds)
    fig.suptitle("Hidden variables: entropy production of x' = f(Wx + b) + s xi (nats)")
    style.layout(fig)
    return fig


FIGURES = {"hidden_entropy": hidden_entropy, "seed_claims": seed_claims}
"""Figure name -> function of the study dataset."""
