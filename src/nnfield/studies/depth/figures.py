"""Figure ``depth_flow`` from the depth study dataset.

(a) The kernel K^(l) of the first input against layer l for every family (points: Monte Carlo
    E[G^(l)] of the widest, deepest ensemble with jackknife errors; lines: the recursion).
Then one row per family:
(b) the finite-width correction of the kernel, N (E[G^(l)] / K^(l) - 1) against l for every
    width, on the input pair where the correction is largest.  Scaled by N the widths collapse on
    the next-to-leading-order line K1/K (the leading order is the line at 0).  Filled: layers in
    the K test; crosses: beyond the NLO test range (estimated O(1/N^2) terms not negligible
    against the error); hollow: heavy-tailed layers (error bars unreliable, not tested).
(c) excess kurtosis of one neuron against l/N for every width and depth (points: conditional
    estimator; lines: the leading-order prediction 3 V^(l)/(N K^2) at each width; dotted: the
    exact value where the law of G is known, ReLU and linear units with C_b = 0).  Hollow points
    are flagged heavy-tailed: there the ensemble has not sampled the tail that carries the
    kurtosis, so the estimate understates it and is not a measurement.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from nnfield import tuples as tup
from nnfield.figures import style

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def _widest_deepest(fam: xr.Dataset) -> xr.Dataset:
    ok = np.isfinite(fam["K"].isel(layer=0, tuple2=0))
    widths = [int(w) for w in fam["width"].values if bool(ok.sel(width=w).any())]
    width = max(widths)
    row = fam.sel(width=width)
    depths = [int(d) for d in row["depth"].values if bool(np.isfinite(row["K"].sel(depth=d)).any())]
    return row.sel(depth=max(depths))


def _simulated(fam: xr.Dataset):
    """(width, depth) pairs of the family that hold data."""
    for width in fam["width"].values:
        for depth in fam["depth"].values:
            cell = fam.sel(width=width, depth=depth)
            if bool(np.isfinite(cell["K"].isel(layer=0, tuple2=0))):
                yield int(width), int(depth), cell


def _pair_of_largest_correction(fam: xr.Dataset) -> int:
    """The input pair (tuple2 index) whose NLO correction |K1/K| is largest anywhere."""
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(fam["K_nlo"] / fam["K_theory"] - 1)
    score = rel.max(dim=[d for d in rel.dims if d != "tuple2"], skipna=True).fillna(-1).values
    return int(np.argmax(score))


def _kernel_panel(ax, ds: xr.Dataset, families: list[str]) -> None:
    for color, family in zip(COLORS, families, strict=False):
        row = _widest_deepest(ds.sel(family=family))
        ok = np.isfinite(row["K"].isel(tuple2=0).values)
        layer = row["layer"].values[ok]
        ax.errorbar(layer, row["K"].isel(tuple2=0).values[ok],
                    yerr=row["K_se"].isel(tuple2=0).values[ok], fmt="o", ms=3, color=color,
                    label=f"{family} (N = {int(row['width'])}, C_W = {float(row['cw']):.3g}, "
                    f"C_b = {float(row['cb']):.3g})")  # fmt: skip
        ax.plot(layer, row["K_theory"].isel(tuple2=0).values[ok], "-", color=color, lw=0.9)
    ax.plot([], [], "k-", lw=0.9, label="kernel recursion (infinite width)")
    ax.set_xlabel("layer $l$")
    ax.set_ylabel(r"$K^{(l)}(x_1, x_1)$")
    ax.set_yscale("log")
    ax.set_title("(a) kernel flow")
    ax.legend(loc="best")


def _correction_panel(ax, fam: xr.Dataset, family: str) -> None:
    """N (E[G]/K - 1) against layer: widths collapse on K1/K where the NLO holds."""
    pair = _pair_of_largest_correction(fam)
    a, b = tup.sorted_tuples(fam.sizes["input"], 2)[pair] + 1
    limits = []
    for color, (width, _depth, cell) in zip(COLORS * 8, _simulated(fam), strict=False):
        cell = cell.isel(tuple2=pair)
        ok = np.isfinite(cell["K"].values) & (cell["layer"].values > 1)
        layer = cell["layer"].values[ok]
        theory = cell["K_theory"].values[ok]
        scaled = width * (cell["K"].values[ok] / theory - 1)
        err = width * cell["K_se"].values[ok] / np.abs(theory)
        tested = cell["K_tested"].values[ok] == 1
        heavy = cell["kurtosis_heavy_tail"].values[ok] == 1
        beyond = ~tested & ~heavy
        ax.errorbar(layer[tested], scaled[tested], yerr=err[tested], fmt="o", ms=3, color=color,
                    label=f"N = {width}")  # fmt: skip
        ax.errorbar(layer[beyond], scaled[beyond], yerr=err[beyond], fmt="x", ms=3.5,
                    color=color, alpha=0.7)  # fmt: skip
        ax.plot(layer[heavy], scaled[heavy], "o", ms=3, mfc="none", color=color, alpha=0.7)
        nlo = width * (cell["K_nlo"].values[ok] / theory - 1)  # = K1/K at every width
        ax.plot(layer, nlo, "-", color="k", lw=0.9)
        limits += list(nlo) + list((scaled + err)[tested]) + list((scaled - err)[tested])
    ax.axhline(0.0, color="0.4", ls=":", lw=0.9)
    ax.plot([], [], "k-", lw=0.9, label="NLO: $K^{\\{1\\}}/K$")
    ax.plot([], [], ":", color="0.4", lw=0.9, label="leading order (0)")
    ax.plot([], [], "kx", ms=3.5, label="beyond the NLO test range")
    ax.plot([], [], "ko", ms=3, mfc="none", label="heavy-tailed (not tested)")
    finite = np.asarray([v for v in limits if np.isfinite(v)])
    if finite.size:
        lo, hi = finite.min(), finite.max()
        pad = 0.15 * max(hi - lo, 1e-12)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("layer $l$")
    ax.set_ylabel(r"$N\,(E[G^{(l)}] / K^{(l)} - 1)$")
    ax.set_title(f"(b) {family}: 1/N correction of the kernel $K(x_{a}, x_{b})$")
    ax.legend(loc="best")


def _kurtosis_panel(ax, fam: xr.Dataset, family: str) -> None:
    widths = [w for w in fam["width"].values if bool(fam["K"].sel(width=w).notnull().any())]
    for color, width in zip(COLORS, widths, strict=False):
        row = fam.sel(width=width)
        for depth in row["depth"].values:
            cell = row.sel(depth=depth).isel(input=0)
            ok = np.isfinite(cell["kurtosis"].values) & (cell["layer"].values > 1)
            if not ok.any():
                continue
            ratio = cell["layer"].values[ok] / width
            value, err = cell["kurtosis"].values[ok], cell["kurtosis_se"].values[ok]
            heavy = row.sel(depth=depth)["kurtosis_heavy_tail"].values[ok] == 1
            ax.errorbar(ratio[~heavy], value[~heavy], yerr=err[~heavy], fmt="o", ms=2.5,
                        color=color, alpha=0.8)  # fmt: skip
            ax.plot(ratio[heavy], value[heavy], "o", ms=2.5, mfc="none", color=color, alpha=0.8)
            ax.plot(ratio, cell["kurtosis_theory"].values[ok], "-", color=color, lw=0.9)
            if "kurtosis_exact" in cell and np.isfinite(cell["kurtosis_exact"].values[ok]).all():
                ax.plot(ratio, cell["kurtosis_exact"].values[ok], ":", color=color, lw=0.9)
        ax.plot([], [], "o", color=color, label=f"N = {int(width)}")
    ax.plot([], [], "k-", lw=0.9, label=r"leading order $3V^{(l)}/(N K^2)$")
    if "kurtosis_exact" in fam and np.isfinite(fam["kurtosis_exact"].values).any():
        ax.plot([], [], "k:", lw=0.9, label=r"exact $3E[G^2]/E[G]^2-3$")
    if (fam["kurtosis_heavy_tail"] == 1).any():
        ax.plot([], [], "ko", ms=2.5, mfc="none",
                label="heavy-tailed: tail not sampled, not a measurement")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("$l / N$")
    ax.set_ylabel("excess kurtosis")
    act = str(fam["activation"].values)
    ax.set_title(f"(c) {family} ({act}): excess kurtosis of one neuron")
    ax.legend(loc="best")


def depth_flow(ds: xr.Dataset):
    import matplotlib.pyplot as plt

    style.apply()
    families = [str(f) for f in ds["family"].values]
    rows = 1 + len(families)
    fig = plt.figure(figsize=(11.0, 3.3 * rows))
    grid = fig.add_gridspec(rows, 2)
    _kernel_panel(fig.add_subplot(grid[0, :]), ds, families)
    for k, family in enumerate(families):
        fam = ds.sel(family=family)
        _correction_panel(fig.add_subplot(grid[1 + k, 0]), fam, family)
        _kurtosis_panel(fig.add_subplot(grid[1 + k, 1]), fam, family)
    style.layout(fig)
    return fig


FIGURES = {"depth_flow": depth_flow}
"""Figure name -> function of the study dataset."""
