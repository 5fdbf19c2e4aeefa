"""Figure ``npoint_scaling``: normalised 4- and 6-point deviations from the GP against width.

One panel per architecture family, log-log.  Points are the signed Monte Carlo estimates with
jackknife error bars; points consistent with zero (below 2 standard errors) are drawn as upper
limits at estimate + 2 s.e.  Lines are the exact finite-width values, the dotted lines the
ensemble noise floor (one standard error), and the legend carries the fitted exponents.  A family
with a shared readout scale tends to a nonzero plateau (dashed, exact), and its exponents are
those of the finite-width part m - m_inf.
Estimates flagged heavy-tailed are hollow and annotated: their error bars are not trustworthy,
and they are left out of the slope fits.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from nnfield.activations import REGISTRY
from nnfield.figures import style
from nnfield.studies.npoint.action_figures import action_nonlocal
from nnfield.studies.npoint.coupling_figures import coupling_flow, coupling_scaling


def _panel(ax, fam: xr.Dataset) -> None:
    """One family's panel: MC points, upper limits, exact lines, noise floors, fitted slopes."""
    widths = fam["width"].values
    any_heavy = False
    for order in (4, 6):
        color = style.COLORS[str(order)]
        value = fam[f"dev{order}"].values
        err = fam[f"dev{order}_se"].values
        ok = np.isfinite(value) & np.isfinite(err)
        heavy = fam[f"heavy_tail{order}"].values.astype(bool) & ok
        any_heavy |= bool(heavy.any())
        signif = ok & (value > 2 * err)
        slope, slope_se = float(fam[f"slope{order}"]), float(fam[f"slope{order}_se"])
        plateau = float(fam[f"dev{order}_limit"]) if f"dev{order}_limit" in fam else 0.0
        label = f"$m_{order}$ (MC)"
        if math.isfinite(slope):
            of = rf" of $m_{order} - m_{order}^\infty$" if plateau > 0 else ""
            label += f", slope{of} {slope:.2f} ± {slope_se:.2f}"
        pending_label = label  # the first set of markers drawn carries the legend entry
        for mask, face in ((signif & ~heavy, color), (signif & heavy, "none")):
            if mask.any():
                lower = np.minimum(err[mask], value[mask] * 0.999)  # keep bars above 0 on log
                ax.errorbar(widths[mask], value[mask], yerr=[lower, err[mask]], fmt="o", ms=4,
                            color=color, mfc=face, label=pending_label)  # fmt: skip
                pending_label = None
        limits = ok & ~signif
        if limits.any():
            upper = value[limits].clip(min=0) + 2 * err[limits]
            ax.plot(widths[limits], upper, "v", ms=5, color=color, alpha=0.6, mfc="none",
                    label=f"{pending_label} (upper limits)" if pending_label else None)  # fmt: skip
        if f"dev{order}_exact" in fam:
            exact = fam[f"dev{order}_exact"].values
            good = np.isfinite(exact) & (exact > 0)
            if good.any():
                ax.plot(widths[good], exact[good], "-", color=color, alpha=0.8,
                        label=f"exact finite-N $m_{order}$")  # fmt: skip
        if plateau > 0:  # shared readout scale: non-Gaussian at every width
            ax.axhline(plateau, ls="--", color=color, alpha=0.8,
                       label=rf"$N\to\infty$ plateau $m_{order}^\infty$ (exact)")  # fmt: skip
        floor = np.where(ok, err, np.nan)
        ax.plot(widths, floor, ":", color=color, alpha=0.7,
                label=f"noise floor $m_{order}$ (1 s.e.)")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width $N$")
    ax.set_ylabel(r"$\langle G_n^{\rm conn} / G_n^{\rm GP}\rangle_{\rm tuples}$")
    title = f"{fam['family'].values!s} ({fam['arch'].values!s}, "
    if REGISTRY[str(fam["arch"].values)].uniform_phase:
        title += r"$b_0\sim U(-\pi,\pi)$, "
    else:
        title += rf"$\sigma_b$={float(fam['sigma_b0']):g}, "
    if "readout_scale_shape" in fam and np.isfinite(float(fam["readout_scale_shape"])):
        title += f"shared scale a={float(fam['readout_scale_shape']):g}, "
    title += f"d={int(fam['input_dim'])})"
    ax.set_title(title)
    if any_heavy:  # a legend entry, so it never collides with the legend box
        ax.plot([], [], "o", ms=4, mfc="none", color="0.35",
                label="hollow: heavy tails, error bar unreliable")  # fmt: skip
    ax.legend(loc="best")


def npoint_scaling(ds: xr.Dataset):
    """Draw the scaling figure from the npoint study dataset."""
    import matplotlib.pyplot as plt

    style.apply()
    families = list(ds["family"].values)
    ncols = min(2, len(families))
    nrows = math.ceil(len(families) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.0 * nrows), squeeze=False)
    for ax, family in zip(axes.flat, families, strict=False):
        fam = ds.sel(family=family)
        fam = fam.isel(width=np.flatnonzero(np.isfinite(fam["dev4"].values)))
        _panel(ax, fam)
    for ax in list(axes.flat)[len(families) :]:
        ax.set_visible(False)
    fig.suptitle(
        "Non-Gaussianity of single-layer network ensembles: deviation from the GP vs width"
    )
    style.layout(fig)
    return fig


FIGURES = {
    "npoint_scaling": npoint_scaling,
    "coupling_flow": coupling_flow,
    "coupling_scaling": coupling_scaling,
    "action_nonlocal": action_nonlocal,
}
"""Figure name -> function of the study dataset."""
