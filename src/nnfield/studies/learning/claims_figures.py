"""Figure ``seed_claims_learning``: the Madelung, Hamilton-Jacobi and caustics readings of
noisy learning in Vanchurin's "The world as a neural network" (2020), measured
(docs/physics.md section 3.5); the hidden study's claims are in
``seed_claims``.

(a) hbar^2 / (4 T^2) of the Madelung fit per point (filled, jackknife errors), the same fit of
    the exact chain moments (open), the continuum value -1 and the real-hbar sign +1;
(b) width quench: (s(t) - s_inf) / (s_0 - s_inf) along the quench mode against t / (pi /
    omega), measured with the exact relaxation (lines) and a real-hbar packet's undamped
    breathing (dotted);
(c) R(t) = E|T grad ln p|^2 / E|grad U|^2 against t (log scale), measured and exact;
(d) the curl of the velocity field and its production per step, measured against exact and
    continuum, each divided by its exact value; the production measured from the kernel
    log-ratio divided by the chain's exact stationary production;
(e) the mean position of heavy-ball ensembles against the step, with exact lines: records where
    the exact mean is resolved (beyond the critical z) filled, the others open.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from nnfield.figures import style
from nnfield.studies.learning.claims_verdicts import _points, _short

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


def _empty(ax, text: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8)


def _panel_hbar(ax, ds: xr.Dataset) -> None:
    points = _points(ds, "hbar2")
    if not points:
        return _empty(ax, "no quadratic sgld point\n(Madelung fit) configured")
    sel = ds.sel(point=points)
    scale = 4 * sel["temperature"].values ** 2
    x = np.arange(len(points))
    ax.errorbar(x, sel["hbar2"].values / scale, yerr=sel["hbar2_se"].values / scale, fmt="o",
                color=PALETTE[0], ms=4, label="measured")  # fmt: skip
    ax.plot(x, sel["hbar2_exact"].values / scale, "s", mfc="none", color="k", ms=6,
            label="fit of exact moments")  # fmt: skip
    ax.axhline(-1, color="0.4", ls="--", lw=0.8, label="continuum -4 T^2")
    ax.axhline(1, color=PALETTE[1], ls=":", lw=0.8, label="real hbar (sign)")
    ax.set_xticks(x, [_short(p) for p in points], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("hbar^2 / (4 T^2)")
    ax.set_title("(a) Madelung fit", fontsize=9)
    ax.legend(fontsize=7)


def _step_series(ax, ds: xr.Dataset, points: list[str], name: str, x_of) -> list[xr.Dataset]:
    """Measured ``name`` (points with errors) and its exact line for each point, against
    ``x_of(point dataset)``; returns the per-point datasets (records where ``name`` exists)."""
    out = []
    for i, p in enumerate(points):
        one = ds.sel(point=p).dropna("step", subset=[name])
        color = PALETTE[i % len(PALETTE)]
        x = x_of(one)
        ax.errorbar(x, one[name].values, yerr=one[f"{name}_se"].values, fmt="o", ms=2,
                    color=color, label=_short(p), lw=0.5)  # fmt: skip
        ax.plot(x, one[f"{name}_exact"].values, "-", color=color, lw=0.8)
        out.append(one)
    return out


def _time(one: xr.Dataset) -> np.ndarray:
    return one["step"].values * float(one["learning_rate"])


def _panel_quench(ax, ds: xr.Dataset) -> None:
    points = _points(ds, "quench_half_period_step")
    if not points:
        return _empty(ax, "no quench covering pi / omega configured")

    def x_of(one):
        return _time(one) * float(one["quench_omega"]) / np.pi

    for i, one in enumerate(_step_series(ax, ds, points, "quench_return", x_of)):
        ax.plot(x_of(one), one["quench_breathing"].values, ":", lw=0.8,
                color=PALETTE[i % len(PALETTE)])  # fmt: skip
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_ylim(-0.2, 1.1)
    ax.set_xlabel("t / (pi / omega)")
    ax.set_ylabel("(s - s_inf) / (s_0 - s_inf)")
    ax.set_title("(b) width quench (dotted: real-hbar breathing, clipped)", fontsize=9)
    ax.legend(fontsize=7)


def _panel_ratio(ax, ds: xr.Dataset) -> None:
    points = _points(ds, "entropic_ratio")
    if not points:
        return _empty(ax, "no quadratic sgld point configured")
    _step_series(ax, ds, points, "entropic_ratio", _time)
    ax.axhline(1, color="0.4", ls="--", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("t = step * eta")
    ax.set_ylabel("R = E|T grad ln p|^2 / E|grad U|^2")
    ax.set_title("(c) Hamilton-Jacobi: R << 1 means the loss alone drives", fontsize=9)
    ax.legend(fontsize=6)


def _panel_curl(ax, ds: xr.Dataset) -> None:
    points = [p for p in _points(ds, "curl") if ds["optimizer"].sel(point=p).item() != "sgld"]
    if not points:
        return _empty(ax, "no point with anisotropic noise configured")
    for i, p in enumerate(points):
        one = ds.sel(point=p)
        for j, name in enumerate(("curl", "curl_production")):
            x = 3 * i + j
            exact = float(one[f"{name}_exact"])
            if exact == 0:  # commuting noise at stationarity: no ratio to draw
                continue
            first = i == 0 and j == 0
            ax.errorbar(x, float(one[name]) / exact, yerr=float(one[f"{name}_se"]) / abs(exact),
                        fmt="o", color=PALETTE[0], ms=4,
                        label="measured" if first else None)  # fmt: skip
            ax.plot(x, float(one[f"{name}_continuum"]) / exact, "^", color="k", mfc="none",
                    label="continuum" if first else None)  # fmt: skip
        pi = one["pi"].dropna("interval")
        se = one["pi_se"].dropna("interval")
        exact = float(one["production_stationary_exact"])
        ax.errorbar(3 * i + 1.25, float(pi[-1]) / exact, yerr=float(se[-1]) / abs(exact),
                    fmt="D", color=PALETTE[2], ms=4,
                    label="kernel production / chain's" if i == 0 else None)  # fmt: skip
    ax.axhline(1, color="0.4", ls="--", lw=0.8)
    ticks = [3 * i + j for i in range(len(points)) for j in (0, 1)]
    ax.set_xticks(ticks, ["curl", "prod."] * len(points), fontsize=7)
    top = ax.secondary_xaxis("top")
    top.set_xticks([3 * i + 0.5 for i in range(len(points))], [_short(p) for p in points],
                   fontsize=6)  # fmt: skip
    ax.set_xlim(-0.7, 3 * len(points) - 0.8)
    ax.set_ylabel("value / exact value at the last record")
    ax.legend(fontsize=7)
    ax.set_title("(d) curl of the velocity field and its production", fontsize=9, pad=14)


def _panel_caustics(ax, ds: xr.Dataset) -> None:
    points = _points(ds, "mean_sign_changes")
    if not points:
        return _empty(ax, "no heavy-ball point configured")
    for i, p in enumerate(points):
        one = ds.sel(point=p).dropna("step", subset=["mean_position"])
        color = PALETTE[i % len(PALETTE)]
        step, value, se = (one[k].values for k in ("step", "mean_position", "mean_position_se"))
        exact = one["mean_position_exact"].values
        with np.errstate(divide="ignore", invalid="ignore"):
            resolved = np.abs(exact / se) > float(one["mean_position_zcrit"])
        label = (f"{_short(p)}, momentum {float(one['momentum']):g}: "
                 f"{int(one['mean_sign_changes'])} sign changes")  # fmt: skip
        ax.plot(step, exact, "-", color=color, lw=0.8, label=label)
        ax.plot(step[resolved], value[resolved], "o", ms=3, color=color)
        ax.plot(step[~resolved], value[~resolved], "o", ms=3, color=color, mfc="none")
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_xlabel("step")
    ax.set_ylabel("<q>")
    ax.set_title(
        "(e) heavy-ball mean position: sign changes, focal times for starts at rest "
        "(open: exact mean not resolved)",
        fontsize=9,
    )
    ax.legend(fontsize=7)


VERDICTS = ("claim_madelung_verdict", "claim_quench_verdict", "claim_curl_verdict",
            "claim_hamilton_jacobi_verdict", "claim_caustics_verdict")  # fmt: skip


def seed_claims_learning(ds: xr.Dataset):
    """The figure from the ``learning`` study dataset."""
    import matplotlib.pyplot as plt

    style.apply()
    fig = plt.figure(figsize=(16, 10))
    grid = fig.add_gridspec(2, 3)
    _panel_hbar(fig.add_subplot(grid[0, 0]), ds)
    _panel_quench(fig.add_subplot(grid[0, 1]), ds)
    _panel_ratio(fig.add_subplot(grid[0, 2]), ds)
    _panel_curl(fig.add_subplot(grid[1, 0]), ds)
    _panel_caustics(fig.add_subplot(grid[1, 1:]), ds)
    lines = [ds.attrs[k].split(":")[0] for k in VERDICTS if ds.attrs.get(k)]
    fig.suptitle("Madelung, Hamilton-Jacobi and caustics of noisy learning (Vanchurin 2020), "
                 "measured" + "".join(f"\n{line}" for line in lines), fontsize=10)  # fmt: skip
    style.layout(fig, rect=(0, 0, 1, 1 - 0.016 * (1 + len(lines))))
    return fig
