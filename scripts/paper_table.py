"""Markdown table comparing an npoint study dataset with the paper's statements (README).

Reads only the stored NetCDF (results/npoint/npoint.nc of `--configfile config/paper.yaml`) and
prints one row per family: the fitted deviation slopes, N m4 at the largest width against the exact
value, the cutoff exponent of lambda and the coupling lambda_m = -lambda/24 (the paper's
normalisation) at the paper's reference widths, with exact values.

Usage: python scripts/paper_table.py [results/npoint/npoint.nc]
"""

from __future__ import annotations

import math
import sys

import numpy as np
import xarray as xr

# the paper's claims in its terms, per paper family name; the numbers are the exact values
# of docs/physics.md section 1.4 (the paper's own digits could not be consulted offline)
PAPER = {
    "relu": {"N m4": "5.000 (exact)", "lambda slope": "-5 (= -(d+4))", "width": 20},
    "gauss": {"N m4": "13.40 (exact)", "lambda slope": "-1 at large Lambda", "width": 100},
    "erf": {"N m4": "0.056 (exact, tuple mean)", "lambda slope": "-1 at large Lambda", "width": 5},
}


def fmt(value: float, err: float | None = None, digits: int = 3) -> str:
    if not math.isfinite(value):
        return "n/a"
    if err is None or not math.isfinite(err):
        return f"{value:.{digits}g}"
    return f"{value:.{digits}g} ± {err:.2g}"


def cutoff_slope(fam: xr.Dataset, width: int) -> tuple[float, float]:
    """d log|lambda| / d log Lambda between the two largest cutoffs, with its error."""
    row = fam.sel(width=width)
    lam, se = np.abs(row["lambda"].values[-2:]), row["lambda_se"].values[-2:]
    cut = row["cutoff"].values[-2:]
    if np.any(lam <= 2 * se):
        return float("nan"), float("nan")
    slope = float(np.log(lam[1] / lam[0]) / np.log(cut[1] / cut[0]))
    # lambda at both cutoffs comes from the same G4: the ratio is a property of the integrals,
    # so the statistical error of the slope is that of the ratio (tiny); report the exact slope
    exact = np.abs(row["lambda_exact"].values[-2:])
    exact_slope = float(np.log(exact[1] / exact[0]) / np.log(cut[1] / cut[0]))
    return slope, exact_slope


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "results/npoint/npoint.nc"
    ds = xr.open_dataset(path)
    ref = float(ds.attrs["reference_cutoff"])
    print(
        "| family (estimator) | slope of m4 vs N | slope of m6 (connected) vs N | "
        f"N m4 at N = {int(ds['width'].max())}: nnfield / exact / paper | "
        "lambda-vs-Lambda exponent: nnfield / exact / paper | "
        f"lambda_m = -lambda/24 at Lambda = {ref:g}: nnfield / exact (N) |"
    )
    print("|---|---|---|---|---|---|")
    for family in ds["family"].values:
        fam = ds.sel(family=family)
        fam = fam.isel(width=np.flatnonzero(np.isfinite(fam["dev4"].values)))
        paper = PAPER.get(str(family).removesuffix("_conditional"), {})
        estimator = str(fam["estimator"].values) if "estimator" in fam else "brute"
        top = int(fam["width"].max())
        last = fam.sel(width=top)
        nm4 = fmt(top * float(last["dev4"]), top * float(last["dev4_se"]))
        nm4_exact = fmt(top * float(last["dev4_exact"]), digits=4)
        width = paper.get("width", top)
        if width not in fam["width"].values:
            width = top
        slope, exact_slope = cutoff_slope(fam, width)
        row = fam.sel(width=width, cutoff=ref)
        lam_m = fmt(-float(row["lambda"]) / 24, float(row["lambda_se"]) / 24)
        lam_m_exact = fmt(-float(row["lambda_exact"]) / 24)
        heavy = int(fam["heavy_tail4"].sum())
        note = f" ({heavy} widths flagged heavy-tailed)" if heavy else ""
        print(
            f"| {family} ({estimator}){note} "
            f"| {fmt(float(fam['slope4']), float(fam['slope4_se']))} "
            f"| {fmt(float(fam['slope6']), float(fam['slope6_se']))} "
            f"| {nm4} / {nm4_exact} / {paper.get('N m4', 'n/a')} "
            f"| {fmt(slope, digits=4)} / {fmt(exact_slope, digits=4)} / "
            f"{paper.get('lambda slope', 'n/a')} "
            f"| {lam_m} / {lam_m_exact} (N = {width}) |"
        )


if __name__ == "__main__":
    main()
