"""Figure ``seed_claims``: claims of Vanchurin's "The world as a neural network" (2020) measured
on the hidden study's dynamics (docs/hidden.md, "Production and the metric").

(a) production per step and neuron of coupled rings whose couplings C share det(I + eps C),
    against eps: Monte Carlo points with jackknife errors, lines exact (Lyapunov solution of
    the one W of each ensemble);
(b) every equal-det pair: the measured difference of production in standard errors, against
    the claim's prediction 0 (filled) and against the exact difference (open), with the
    Bonferroni critical value;
(c)-(f) strings and light cones (docs/hidden.md, "Light cones"): the space-time correlation
    C(k, tau) / C(0, 0) of up to four points with ``light_cone`` (cycles first), displacement k
    against lag tau, with the light line k = tau.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from nnfield.figures import style


def _panel_production(ax, ds: xr.Dataset) -> None:
    from nnfield.studies.hidden.figures import MARKERS, PALETTE, _curve, _empty, _errorbar, _points

    if "metric_pair" not in ds.dims:
        return _empty(ax, "no coupled rings with equal det(I + eps C)\nand different C configured")
    names = list(dict.fromkeys([*ds["metric_ensemble_a"].values, *ds["metric_ensemble_b"].values]))
    for i, name in enumerate(names):
        one = _points(ds, ensemble=name).sortby("coupling")
        color = PALETTE[i % len(PALETTE)]
        _curve(ax, ds, name, "coupling", color)
        label = f"{name}: C = {one['coupling_matrix'].values[0]}"
        _errorbar(ax, one["coupling"].values, one["ep"].values, one["ep_se"].values, color,
                  MARKERS[i % len(MARKERS)], label)  # fmt: skip
    eps, det = ds["metric_coupling"].values.tolist(), ds["metric_det"].values.tolist()
    by_eps = dict(sorted(zip(eps, det, strict=True)))  # equal to rounding within each eps
    dets = ", ".join(f"{d:.4g} at eps = {e:g}" for e, d in by_eps.items())
    ax.set(xlabel="coupling eps", ylabel="entropy production / step / neuron",
           title=f"(a) equal det(I + eps C): {dets}")  # fmt: skip
    ax.legend()


def _panel_pairs(ax, ds: xr.Dataset) -> None:
    from nnfield.studies.hidden.figures import _empty

    if "metric_pair" not in ds.dims:
        return _empty(ax, "no equal-det pairs")
    n = ds.sizes["metric_pair"]
    y = np.arange(n)
    claim, ref = ds["metric_claim_z"].values, ds["metric_z"].values
    crit = float(ds["metric_zcrit"].values[0])
    ax.plot(claim, y, "o", color="#d62728", label="(measured diff - 0) / s.e.: the claim")
    ax.plot(ref, y, "o", mfc="none", color="black", label="(measured - exact diff) / s.e.")
    for sign in (-1, 1):
        ax.axvline(sign * crit, color="0.5", ls=":", lw=0.9,
                   label=f"critical {crit:.2f}" if sign > 0 else None)  # fmt: skip
    labels = [f"{a} - {b}, eps = {e:g}" for a, b, e in zip(
        ds["metric_ensemble_a"].values, ds["metric_ensemble_b"].values,
        ds["metric_coupling"].values, strict=True)]  # fmt: skip
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xscale("symlog", linthresh=10)
    ax.margins(x=0.08)
    ax.set(xlabel="z (symlog beyond |z| = 10)", title="(b) production difference of each pair")
    ax.legend(fontsize=7)


def _panel_cone(ax, ds: xr.Dataset, i: int, letter: str) -> None:
    """C(k, tau) / C(0, 0) of point i as a space-time picture, displacement k in (-n/2, n/2]."""
    n = int(ds["neurons"].values[i])
    c = ds["spacetime"].values[i][:, :n]
    lags = int(np.isfinite(c[:, 0]).sum()) - 1
    c = c[: lags + 1] / c[0, 0]
    order = np.r_[np.arange(n // 2 + 1, n), np.arange(n // 2 + 1)]  # displacements -n/2+1 .. n/2
    d = np.where(order > n // 2, order - n, order)
    image = ax.imshow(c[:, order], origin="lower", cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto",
                      extent=(d[0] - 0.5, d[-1] + 0.5, -0.5, lags + 0.5))  # fmt: skip
    tau = np.arange(lags + 1)
    ax.plot(tau, tau, ":", color="black", lw=0.8, label="light line k = tau")
    name, kind = str(ds["ensemble"].values[i]), str(ds["weights"].values[i])
    act = str(ds["activation"].values[i])
    share = float(ds["lightline_fraction"].values[i])
    text = f"light-line share {share:.3f}"
    if np.isfinite(ds["cone_speed"].values[i]):
        text += (f"\nspeed {float(ds['cone_speed'].values[i]):.3f} ± "
                 f"{float(ds['cone_speed_se'].values[i]):.3f}")  # fmt: skip
    ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize=7,
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})  # fmt: skip
    ax.set(xlabel="displacement k (sites)", ylabel="lag tau (steps)",
           title=f"({letter}) {name}: {kind}, {act} f")  # fmt: skip
    ax.legend(loc="lower right", fontsize=7)
    return image


def _cone_points(ds: xr.Dataset) -> list[int]:
    """Points with a space-time correlation, cycles first, at most four."""
    if "spacetime" not in ds:
        return []
    have = np.flatnonzero(np.isfinite(ds["spacetime"].values[:, 0, 0]))
    rank = {"cycle": 0, "lazy_cycle": 1}
    return sorted(have.tolist(), key=lambda i: rank.get(str(ds["weights"].values[i]), 2))[:4]


def seed_claims(ds: xr.Dataset):
    """The figure from the ``hidden`` study dataset."""
    import matplotlib.pyplot as plt

    style.apply()
    fig = plt.figure(figsize=(17, 9.5))
    grid = fig.add_gridspec(2, 5, width_ratios=[1, 1, 1, 1, 0.05])
    _panel_production(fig.add_subplot(grid[0, :2]), ds)
    _panel_pairs(fig.add_subplot(grid[0, 2:4]), ds)
    cones = _cone_points(ds)
    image = None
    for j in range(4):
        ax = fig.add_subplot(grid[1, j])
        if j < len(cones):
            image = _panel_cone(ax, ds, cones[j], "cdef"[j])
        else:
            from nnfield.studies.hidden.figures import _empty

            ax.set_axis_off()
            if j == 0:
                _empty(ax, "no ensemble with light_cone configured")
    if image is not None:
        fig.colorbar(image, cax=fig.add_subplot(grid[1, 4]), label="C(k, tau) / C(0, 0)")
    lines = [ds.attrs[k].split(";")[0] for k in ("claim_metric_verdict", "claim_lightcone_verdict")
             if ds.attrs.get(k)]  # fmt: skip
    fig.suptitle("Claims of 'The world as a neural network' (Vanchurin 2020), measured"
                 + "".join(f"\n{line}" for line in lines), fontsize=10)  # fmt: skip
    style.layout(fig)
    return fig
