"""Figure ``depth_flow`` from the depth study dataset.

(a) The kernel K^(l) of the first input against layer l for every family (points: Monte Carlo
    E[G^(l)] of the widest, deepest ensemble with jackknife errors; lines: the recursion).
(b) Excess kurtosis of one neuron against l/N for every width and depth of each family (points:
    conditional estimator; lines: the leading-order prediction 3 V^(l)/(N K^2) at each width;
    dotted: the exact ReLU product formula where it applies).  At small l/N the widths collapse on
    the prediction; the departure at l/N ~ 1 is left visible.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from nnfield.figures import style

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def _widest_deepest(fam: xr.Dataset) -> xr.Dataset:
    ok = np.isfinite(fam["K"].isel(layer=0, tuple2=0))
    widths = [int(w) for w in fam["width"].values if bool(ok.sel(width=w).any())]
    width = max(widths)
    row = fam.sel(width=width)
    depths = [int(d) for d in row["depth"].values if bool(np.isfinite(row["K"].sel(depth=d)).any())]
    return row.sel(depth=max(depths))


def depth_flow(ds: xr.Dataset):
    import matplotlib.pyplot as plt

    style.apply()
    families = [str(f) for f in ds["family"].values]
    fig, axes = plt.subplots(1 + len(families), 1, figsize=(6.4, 3.2 * (1 + len(families))),
                             squeeze=False)  # fmt: skip
    ax = axes[0, 0]
    for color, family in zip(COLORS, families, strict=False):
        row = _widest_deepest(ds.sel(family=family))
        ok = np.isfinite(row["K"].isel(tuple2=0).values)
        layer = row["layer"].values[ok]
        ax.errorbar(layer, row["K"].isel(tuple2=0).values[ok],
                    yerr=row["K_se"].isel(tuple2=0).values[ok], fmt="o", ms=3, color=color,
                    label=f"{family} (N = {int(row['width'])}, C_W = {float(row['cw']):.3g}, "
                    f"C_b = {float(row['cb']):.3g})")  # fmt: skip
        ax.plot(layer, row["K_theory"].isel(tuple2=0).values[ok], "-", color=color, lw=0.9)
    ax.plot([], [], "k-", lw=0.9, label="kernel recursion")
    ax.set_xlabel("layer $l$")
    ax.set_ylabel(r"$K^{(l)}(x_1, x_1)$")
    ax.set_yscale("log")
    ax.set_title("(a) kernel flow")
    ax.legend(loc="best")
    for k, family in enumerate(families):
        ax = axes[1 + k, 0]
        fam = ds.sel(family=family)
        widths = [w for w in fam["width"].values if bool(fam["K"].sel(width=w).notnull().any())]
        for color, width in zip(COLORS, widths, strict=False):
            row = fam.sel(width=width)
            for depth in row["depth"].values:
                cell = row.sel(depth=depth).isel(input=0)
                ok = np.isfinite(cell["kurtosis"].values) & (cell["layer"].values > 1)
                if not ok.any():
                    continue
                ratio = cell["layer"].values[ok] / width
                ax.errorbar(ratio, cell["kurtosis"].values[ok], yerr=cell["kurtosis_se"].values[ok],
                            fmt="o", ms=2.5, color=color, alpha=0.8)  # fmt: skip
                ax.plot(ratio, cell["kurtosis_theory"].values[ok], "-", color=color, lw=0.9)
                if (
                    "kurtosis_exact" in cell
                    and np.isfinite(cell["kurtosis_exact"].values[ok]).all()
                ):
                    ax.plot(ratio, cell["kurtosis_exact"].values[ok], ":", color=color, lw=0.9)
            ax.plot([], [], "o", color=color, label=f"N = {int(width)}")
        ax.plot([], [], "k-", lw=0.9, label=r"leading order $3V^{(l)}/(N K^2)$")
        if "kurtosis_exact" in fam and np.isfinite(fam["kurtosis_exact"].values).any():
            ax.plot([], [], "k:", lw=0.9, label=r"exact $3[(1+5/N)^{l-1}-1]$")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("$l / N$")
        ax.set_ylabel("excess kurtosis")
        act = str(fam["activation"].values)
        ax.set_title(f"(b) {family} ({act}): non-Gaussianity grows with depth/width")
        ax.legend(loc="best")
    fig.tight_layout()
    return fig
