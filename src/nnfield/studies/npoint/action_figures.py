"""Figure ``action_nonlocal``: the reconstructed O(1/N) action against the local ones.

One row per family with an action analysis (docs/physics.md section 9).  (a) the held-out test
against width: max |z| of predicted minus measured G4_conn at held-out tuples for the non-local
(Mercer-mode) reconstruction, the constant-lambda and the radial-lambda actions, with the
Bonferroni critical value; (b) G4_conn at the held-out tuples at the display width, measured
(test half) and predicted (fit half); (c) the one-input density at the first held-out input,
histogram minus GP Gaussian, with the O(1/N) Edgeworth predictions of the non-local and local
actions; (d) the density test's max |z| against width, hollow where the exact O(1/N^2) terms
exceed half a standard error (there the O(1/N) density is not a clean test).  The display
width is the smallest whose O(1/N^2) terms are below half a standard error.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from nnfield.figures import style

NEXT_ORDER_LIMIT = 0.5
"""Largest exact O(1/N^2) Edgeworth term, in standard errors, of a clean O(1/N) density test."""
MODEL_COLORS = {"nonlocal": "C0", "local": "C3", "radial": "C1", "gaussian": "0.4"}


def display_width(fam: xr.Dataset) -> int:
    """The smallest width whose exact O(1/N^2) density terms are below NEXT_ORDER_LIMIT s.e.
    (the largest width when none is, or when there is no exact theory)."""
    widths = fam["width"].values
    if "density_next_order" in fam:
        clean = widths[fam["density_next_order"].values <= NEXT_ORDER_LIMIT]
        if clean.size:
            return int(clean.min())
    return int(widths.max())


def _row(axes, fam: xr.Dataset, name: str) -> None:
    widths = fam["width"].values
    crit = float(fam["action_zcrit"].max())
    ax = axes[0]
    for model in fam["action_model"].values:
        z = fam["action_maxz"].sel(action_model=model).values
        if np.all(np.isnan(z)):
            continue
        ax.plot(widths, z, "o-", color=MODEL_COLORS[str(model)], label=str(model))
    ax.axhline(crit, color="k", ls="--", lw=1, label="critical value")
    ax.set(xscale="log", yscale="log", xlabel="width N", ylabel="held-out max |z|",
           title=f"{name}: held-out G4_conn")  # fmt: skip
    ax.legend(loc="best")

    width = display_width(fam)
    at = fam.sel(width=width)
    ax = axes[1]
    index = np.arange(at.sizes["heldout_tuple"])
    ax.errorbar(index, at["action_heldout"], at["action_heldout_se"], fmt=".", color="k",
                label="measured (test half)", zorder=3)  # fmt: skip
    for model in at["action_model"].values:
        pred = at["action_prediction"].sel(action_model=model).values
        if np.all(np.isnan(pred)):
            continue
        ax.plot(index, pred, "-", lw=1, color=MODEL_COLORS[str(model)], label=str(model))
    ax.set(xlabel="held-out 4-tuple", ylabel="G4_conn", title=f"N = {width}")
    ax.legend(loc="best")

    ax = axes[2]
    edges = at["density_edges"].values
    half = 0.5 * (edges[1] - edges[0])
    middle = 0.5 * (edges[1:] + edges[:-1])
    centres = np.concatenate([[edges[0] - half], middle, [edges[-1] + half]])
    first = at.isel(heldout_input=0)
    gauss = first["density_prediction"].sel(density_model="gaussian").values
    ax.errorbar(centres, first["density"] - gauss, first["density_se"], fmt=".", color="k",
                label="histogram - Gaussian")  # fmt: skip
    for model in ("nonlocal", "local"):
        pred = first["density_prediction"].sel(density_model=model).values
        if not np.all(np.isnan(pred)):
            ax.plot(centres, pred - gauss, "-", color=MODEL_COLORS[model],
                    label=f"Edgeworth O(1/N), {model}")  # fmt: skip
    ax.axhline(0.0, color=MODEL_COLORS["gaussian"], lw=1)
    x_input = int(first["density_input"])
    ax.set(xlabel="z = f / sqrt(K(x, x))", ylabel="bin probability - Gaussian",
           title=f"density at input {x_input}, N = {width}")  # fmt: skip
    ax.legend(loc="best")

    ax = axes[3]
    clean = fam["density_next_order"].values <= NEXT_ORDER_LIMIT if "density_next_order" in fam \
        else np.ones(widths.size, bool)  # fmt: skip
    for model in fam["density_model"].values:
        z = fam["density_maxz"].sel(density_model=model).values
        color = MODEL_COLORS[str(model)]
        ax.plot(widths, z, "-", color=color, label=str(model))
        ax.plot(widths[clean], z[clean], "o", color=color)
        ax.plot(widths[~clean], z[~clean], "o", mfc="none", color=color)
    ax.axhline(float(fam["density_zcrit"].max()), color="k", ls="--", lw=1)
    ax.set(xscale="log", yscale="log", xlabel="width N", ylabel="density max |z|",
           title="one-input density (hollow: O(1/N^2) visible)")  # fmt: skip
    ax.legend(loc="best")


def action_nonlocal(ds: xr.Dataset):
    """Draw the action figure from the npoint study dataset."""
    import matplotlib.pyplot as plt

    style.apply()
    families = [
        str(f)
        for f in ds["family"].values
        if "action_maxz" in ds and np.any(np.isfinite(ds["action_maxz"].sel(family=f).values))
    ]
    if not families:
        raise ValueError("action_nonlocal: no family has an action analysis "
                         "(an npoint family's action key)")  # fmt: skip
    fig, axes = plt.subplots(len(families), 4, figsize=(20, 4.2 * len(families)), squeeze=False)
    for row, family in zip(axes, families, strict=True):
        fam = ds.sel(family=family)
        analysed = fam["action_maxz"].notnull().any("action_model").values
        fam = fam.isel(width=np.flatnonzero(analysed))
        _row(row, fam, family)
    fig.suptitle("The O(1/N) action from the correlators: non-local reconstruction vs local ones")
    style.layout(fig)
    return fig
