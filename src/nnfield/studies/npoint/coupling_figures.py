"""Figures ``coupling_flow`` and ``coupling_scaling`` from the npoint study dataset.

Sign convention (nnfield.studies.npoint.coupling_theory): S contains lambda/4! f^4, so the positive
connected
4-point functions of these ensembles give lambda < 0; the figures show -lambda.

coupling_flow, one column per family:
  top: -lambda against the cutoff Lambda (log-log) for several widths, with the flow predicted
       from the reference cutoff by keeping G4 fixed (dashed) and the exact values (thin line);
  bottom: the position-dependent coupling -N lambda(|y|) at the reference cutoff (bands are one
       jackknife standard error) with its exact counterpart; the legend compares the chi^2/dof
       of the constant and the position-dependent fits, which is what tells a constant coupling
       from a function.
coupling_scaling, one column per family:
  top: -N lambda against N at the reference cutoff (flat = 1/N suppression), exact line;
  bottom: N^2 kappa against N (flat = 1/N^2), exact line.
Hollow markers are widths whose error bars are flagged heavy-tailed.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from nnfield.figures import style

WIDTH_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")


def _families(ds: xr.Dataset) -> list[xr.Dataset]:
    """The families with fitted couplings, each restricted to its simulated widths."""
    out = []
    for f in ds["family"].values:
        fam = ds.sel(family=f)
        if np.isfinite(fam["lambda"]).any():
            out.append(fam.isel(width=np.flatnonzero(np.isfinite(fam["dev4"].values))))
    return out


def _title(fam: xr.Dataset) -> str:
    return (
        f"{fam['family'].values!s} ({fam['arch'].values!s}, "
        rf"$\sigma_b$={float(fam['sigma_b0']):g}, d={int(fam['input_dim'])})"
    )


def _chosen_widths(fam: xr.Dataset, ref: float, count: int = 3) -> list[int]:
    """Up to ``count`` widths, spread over the range, whose lambda is measured (> 3 s.e.)."""
    lam = fam["lambda"].sel(cutoff=ref)
    se = fam["lambda_se"].sel(cutoff=ref)
    good = (np.abs(lam) > 3 * se) & (fam["heavy_tail4"] == 0)
    widths = [int(w) for w in fam["width"].values[good.values]]
    if not widths:
        widths = [int(w) for w in fam["width"].values if np.isfinite(lam.sel(width=w))]
    if len(widths) <= count:
        return widths
    picks = np.unique(np.round(np.linspace(0, len(widths) - 1, count)).astype(int))
    return [widths[i] for i in picks]


def _flow_panel(ax, fam: xr.Dataset, ref: float) -> None:
    cutoff = fam["cutoff"].values
    for color, width in zip(WIDTH_COLORS, _chosen_widths(fam, ref), strict=False):
        row = fam.sel(width=width)
        value, err = -row["lambda"].values, row["lambda_se"].values
        heavy = bool(row["heavy_tail4"])
        signif = value > 2 * err
        ax.errorbar(cutoff[signif], value[signif], yerr=np.minimum(err, 0.999 * value)[signif],
                    fmt="o", ms=3.5, color=color, mfc="none" if heavy else color,
                    label=f"N = {width}")  # fmt: skip
        if (~signif).any():
            ax.plot(cutoff[~signif], value[~signif].clip(min=0) + 2 * err[~signif], "v",
                    ms=4, color=color, mfc="none", alpha=0.6)  # fmt: skip
        predicted = -row["lambda_predicted"].values
        if np.all(predicted > 0):
            ax.plot(cutoff, predicted, "--", color=color, alpha=0.8)
        exact = -row["lambda_exact"].values
        if np.all(np.isfinite(exact) & (exact > 0)):
            ax.plot(cutoff, exact, "-", color=color, lw=0.7, alpha=0.6)
    ax.plot([], [], "k--", label="predicted flow (fixed $G_4$)")
    ax.plot([], [], "k-", lw=0.7, label="exact")
    ax.axvline(ref, color="0.6", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"cutoff $\Lambda$")
    ax.set_ylabel(r"$-\lambda$")
    ax.set_title(_title(fam))
    ax.legend(loc="best")


def _chi2dof(value: float, fitted: bool) -> str:
    """chi^2/dof for a legend.  Of a fit that was made (``fitted``) it is NaN when the kept
    covariance modes leave no degree of freedom (LinearFit.chi2dof): nothing to test it with."""
    if math.isfinite(value):
        return f"{value:.2g}"
    return "n/a (0 dof)" if fitted else "no fit"


def _profile_panel(ax, fam: xr.Dataset, ref: float) -> None:
    radius = fam["radius"].values
    drawn = False
    for color, width in zip(WIDTH_COLORS, _chosen_widths(fam, ref), strict=False):
        row = fam.sel(width=width)
        value = -width * row["lambda_profile"].values
        err = width * row["lambda_profile_se"].values
        if not np.isfinite(value).all():
            continue
        drawn = True
        chi_const = float(row["lambda_chi2dof"].sel(cutoff=ref))
        chi_prof = float(row["lambda_profile_chi2dof"])  # its profile is finite: it was fitted
        const_fitted = bool(np.isfinite(row["lambda"].sel(cutoff=ref)))
        ax.fill_between(radius, value - err, value + err, color=color, alpha=0.25, lw=0)
        ax.plot(radius, value, color=color,
                label=rf"N = {width}: $\chi^2$/dof const {_chi2dof(chi_const, const_fitted)}, "
                rf"$\lambda(y)$ {_chi2dof(chi_prof, True)}")  # fmt: skip
        exact = -width * row["lambda_profile_exact"].values
        if np.isfinite(exact).all():
            ax.plot(radius, exact, ":", color=color)
        ax.axhline(-width * float(row["lambda"].sel(cutoff=ref)), color=color, lw=0.7, ls="--")
    if drawn:
        ax.plot([], [], "k:", label="exact")
        ax.plot([], [], "k--", lw=0.7, label="constant fit")
        ax.legend(loc="best")
    else:
        ax.text(0.5, 0.5, r"$\lambda(y)$ not identifiable with these inputs" "\n"
                "(all tuples see one number: only a constant)", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    ax.set_xlabel(rf"$|y|$ (reference cutoff $\Lambda$ = {ref:g})")
    ax.set_ylabel(r"$-N\,\lambda(|y|)$")


def coupling_flow(ds: xr.Dataset):
    """Cutoff flow of lambda and the position-dependent lambda(y)."""
    import matplotlib.pyplot as plt

    style.apply()
    families = _families(ds)
    ref = float(ds.attrs["reference_cutoff"])
    fig, axes = plt.subplots(2, len(families), figsize=(4.6 * len(families), 7.6), squeeze=False)
    for col, fam in enumerate(families):
        _flow_panel(axes[0, col], fam, ref)
        _profile_panel(axes[1, col], fam, ref)
    fig.suptitle(r"Wilsonian flow of the quartic coupling: $\lambda(\Lambda)$ and $\lambda(y)$")
    style.layout(fig)
    return fig


def _scaling_row(
    ax, fam: xr.Dataset, ref: float, name: str, power: int, sign: float, label: str
) -> None:
    row = fam.sel(cutoff=ref, method="nearest")
    widths = row["width"].values
    scale = sign * widths.astype(float) ** power
    value, err = scale * row[name].values, np.abs(scale) * row[f"{name}_se"].values
    heavy = row["heavy_tail4" if name == "lambda" else "heavy_tail6"].values.astype(bool)
    ok = np.isfinite(value) & np.isfinite(err)
    for mask, face in ((ok & ~heavy, None), (ok & heavy, "none")):
        if mask.any():
            ax.errorbar(widths[mask], value[mask], yerr=err[mask], fmt="o", ms=4,
                        color=style.COLORS["4" if name == "lambda" else "6"],
                        mfc=face, label=None if face else f"MC, {label}")  # fmt: skip
    exact = scale * row[f"{name}_exact"].values
    if np.isfinite(exact).any():
        ax.plot(widths, exact, "-", color=style.COLORS["exact"], lw=0.9, label="exact")
    ax.axhline(0, color="0.6", lw=0.6)
    _focus(ax, value[ok], err[ok], exact[np.isfinite(exact)])
    ax.set_xscale("log")
    ax.set_xlabel("width $N$")
    if heavy.any():
        ax.plot([], [], "o", ms=4, mfc="none", color="0.35", label="hollow: heavy tails")
    ax.legend(loc="best")


def _focus(ax, value: np.ndarray, err: np.ndarray, exact: np.ndarray) -> None:
    """y-limits that show the exact line and the informative points; error bars much larger
    than the signal (noise-dominated widths) run off the panel instead of flattening it."""
    scale = np.max(np.abs(exact)) if exact.size else np.median(np.abs(value) + err)
    informative = err <= 2 * scale
    lo = np.concatenate([[0.0], exact, (value - err)[informative]])
    hi = np.concatenate([[0.0], exact, (value + err)[informative]])
    if lo.size and np.isfinite(lo).all() and np.isfinite(hi).all() and hi.max() > lo.min():
        pad = 0.1 * (hi.max() - lo.min())
        ax.set_ylim(lo.min() - pad, hi.max() + pad)


def coupling_scaling(ds: xr.Dataset):
    """N lambda and N^2 kappa against N at the reference cutoff."""
    import matplotlib.pyplot as plt

    style.apply()
    families = _families(ds)
    ref = float(ds.attrs["reference_cutoff"])
    fig, axes = plt.subplots(2, len(families), figsize=(4.6 * len(families), 7.2), squeeze=False)
    for col, fam in enumerate(families):
        slope, slope_se = float(fam["lambda_width_slope"]), float(fam["lambda_width_slope_se"])
        label = f"$|\\lambda| \\propto N^{{{slope:.2f} \\pm {slope_se:.2f}}}$"
        if not math.isfinite(slope):
            label = "slope not determined"
        _scaling_row(axes[0, col], fam, ref, "lambda", 1, -1.0, label)
        axes[0, col].set_ylabel(rf"$-N\,\lambda$ at $\Lambda$ = {ref:g}")
        axes[0, col].set_title(_title(fam))
        _scaling_row(axes[1, col], fam, ref, "kappa", 2, 1.0, "exchange removed")
        axes[1, col].set_ylabel(rf"$N^2\,\kappa$ at $\Lambda$ = {ref:g}")
    fig.suptitle(r"Couplings against width: $\lambda \sim 1/N$, $\kappa \sim 1/N^2$")
    style.layout(fig)
    return fig
