"""Figure ``seed_claims``: claims of Vanchurin's "The world as a neural network" (2020) measured
on the hidden study's dynamics (docs/hidden.md, "Production and the metric").

(a) production per step and neuron of coupled rings whose couplings C share det(I + eps C),
    against eps: Monte Carlo points with jackknife errors, lines exact (Lyapunov solution of
    the one W of each ensemble);
(b) every equal-det pair: the measured difference of production in standard errors, against
    the claim's prediction 0 (filled) and against the exact difference (open), with the
    Bonferroni critical value;
(c)-(h) strings and light cones (docs/hidden.md, "Light cones"): the space-time correlation
    C_j(k, tau) / C_j(0, 0) of up to six points with ``light_cone`` (one of each kind first),
    every mode j of coupled rings side by side, displacement k against lag tau, with the light
    line k = tau.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from nnfield.figures import style


def _panel_production(ax, ds: xr.Dataset) -> None:
    from nnfield.studies.hidden.figures import MARKERS, PALETTE, _curve, _empty, _errorbar, _points

    if "metric_pair" not in ds.dims:
        ax.set_axis_off()  # no ticks to collide with the title
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
        ax.set_axis_off()
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


def _panel_cone(ax, ds: xr.Dataset, i: int, letter: str):
    """C_j(k, tau) / C_j(0, 0) of point i as a space-time picture, every mode j side by side,
    displacement k in (-r/2, r/2] within a ring of r sites."""
    c_all = ds["spacetime"].values[i]  # (lag, mode, site), NaN-padded
    lags = int(np.isfinite(c_all[:, 0, 0]).sum()) - 1
    modes = int(np.isfinite(c_all[0, :, 0]).sum())
    r = int(np.isfinite(c_all[0, 0, :]).sum())
    order = np.r_[np.arange(r // 2 + 1, r), np.arange(r // 2 + 1)]
    d = np.where(order > r // 2, order - r, order)
    blocks = []
    for j in range(modes):
        c = c_all[: lags + 1, j, :r]
        blocks.append(c[:, order] / c[0, 0])
        if j + 1 < modes:
            blocks.append(np.full((lags + 1, 1), np.nan))
    width = len(d) * modes + (modes - 1)
    image = ax.imshow(np.hstack(blocks), origin="lower", cmap="RdBu_r", vmin=-1, vmax=1,
                      aspect="auto", extent=(-0.5, width - 0.5, -0.5, lags + 0.5))  # fmt: skip
    tau = np.arange(lags + 1)
    zero = int(np.flatnonzero(d == 0)[0])
    for j in range(modes):
        start = j * (len(d) + 1) + zero
        ax.plot(start + tau, tau, ":", color="black", lw=0.8,
                label="light line k = tau" if j == 0 else None)  # fmt: skip
    ticks = [j * (len(d) + 1) + zero for j in range(modes)]
    ax.set_xticks(ticks, ["k = 0"] if modes == 1 else [f"mode {j}" for j in range(modes)])
    name, kind = str(ds["ensemble"].values[i]), str(ds["weights"].values[i])
    act = str(ds["activation"].values[i])
    share = ds["lightline_fraction"].values[i][:modes]
    text = "light-line share " + ", ".join(f"{f:.3f}" for f in share)
    speed, se = ds["cone_speed"].values[i][:modes], ds["cone_speed_se"].values[i][:modes]
    if np.isfinite(speed).any():
        text += "\nspeed " + ", ".join(f"{v:.3f} ± {e:.3f}" for v, e in zip(speed, se,
                                                                          strict=True))  # fmt: skip
    ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize=7,
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0})  # fmt: skip
    ax.set(xlabel=f"displacement k within a ring of {r} sites", ylabel="lag tau (steps)",
           title=f"({letter}) {name}: {kind}, {act} f")  # fmt: skip
    ax.legend(loc="lower right", fontsize=7)
    return image


def _cone_points(ds: xr.Dataset) -> list[int]:
    """Points with a space-time correlation, one of each kind first (cycle, lazy shift,
    rings, rings product, others), then the rest; at most six."""
    if "spacetime" not in ds:
        return []
    have = np.flatnonzero(np.isfinite(ds["spacetime"].values[:, 0, 0, 0]))
    rank = {"cycle": 0, "lazy_cycle": 1, "rings": 2, "rings_product": 3}
    chosen = sorted(have.tolist(), key=lambda i: rank.get(str(ds["weights"].values[i]), 4))
    seen, out = set(), []
    for i in chosen:  # one per kind first
        kind = str(ds["weights"].values[i])
        if kind not in seen:
            seen.add(kind)
            out.append(i)
    return (out + [i for i in chosen if i not in out])[:6]


def seed_claims(ds: xr.Dataset):
    """The figure from the ``hidden`` study dataset."""
    import matplotlib.pyplot as plt

    style.apply()
    fig = plt.figure(figsize=(16, 15))
    grid = fig.add_gridspec(3, 4, width_ratios=[1, 1, 1, 0.05], height_ratios=[1, 1.1, 1.1])
    top = grid[0, :3].subgridspec(1, 2, wspace=0.55)
    _panel_production(fig.add_subplot(top[0, 0]), ds)
    _panel_pairs(fig.add_subplot(top[0, 1]), ds)
    cones = _cone_points(ds)
    image = None
    for j in range(6):
        ax = fig.add_subplot(grid[1 + j // 3, j % 3])
        if j < len(cones):
            image = _panel_cone(ax, ds, cones[j], "cdefgh"[j])
        else:
            from nnfield.studies.hidden.figures import _empty

            ax.set_axis_off()
            if j == 0:
                _empty(ax, "no ensemble with light_cone configured")
    if image is not None:
        fig.colorbar(image, cax=fig.add_subplot(grid[1:, 3]), label="C(k, tau) / C(0, 0)")
    keys = ("claim_metric_verdict", "claim_lightcone_verdict", "claim_curvature_verdict")
    lines = [ds.attrs[k].split(";")[0] for k in keys if ds.attrs.get(k)]
    fig.suptitle("Claims of 'The world as a neural network' (Vanchurin 2020), measured"
                 + "".join(f"\n{line}" for line in lines), fontsize=10)  # fmt: skip
    style.layout(fig, rect=(0, 0, 1, 1 - 0.017 * (1 + len(lines))))  # room for the title lines
    return fig
