"""The numbers the README quotes from the default run, read from the stored NetCDF alone.

Every "max |z|" line says how many independent tests stand behind it: widths (and depths) are
independent ensembles; the cutoffs of one width fit the same correlators, so their z-scores are
strongly correlated, and for a homogeneous kernel (ReLU with sb = 0) they are the same number.

Usage: python scripts/readme_numbers.py [RESULTS]     (default: results)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import xarray as xr


def coupling_lines(ds: xr.Dataset) -> None:
    """lambda and kappa against their exact values, per family, over trusted widths."""
    print("npoint couplings (conditional estimator), trusted widths only (heavy_tail4 == 0):")
    for family in ds["family"].values:
        fam = ds.sel(family=family)
        trusted = fam["heavy_tail4"].values == 0
        widths = fam["width"].values[trusted]
        if widths.size == 0:
            print(f"  {family}: every width heavy-tailed; no z-test")
            continue
        row = fam.isel(width=np.flatnonzero(trusted))
        for name in ("lambda", "kappa"):
            z = ((row[name] - row[f"{name}_exact"]) / row[f"{name}_se"]).values  # (width, cutoff)
            finite = np.isfinite(z)
            if not finite.any():
                continue
            spread = np.nanmax(np.nanmax(z, axis=1) - np.nanmin(z, axis=1))
            same = "identical at every cutoff" if spread < 1e-6 else "correlated across cutoffs"
            print(
                f"  {family} {name}: max |z| = {np.nanmax(np.abs(z)):.2f} over {finite.sum()} "
                f"values = {widths.size} independent widths x {z.shape[1]} cutoffs ({same}; "
                f"spread over cutoffs up to {spread:.2g})"
            )
        for order in (4, 6):
            s, se = float(fam[f"slope{order}"]), float(fam[f"slope{order}_se"])
            print(f"  {family} slope of m{order}: {s:.4f} +- {se:.4f} ({trusted.sum()} widths)")
        s, se = float(fam["lambda_width_slope"]), float(fam["lambda_width_slope_se"])
        print(f"  {family} exponent of |lambda| in N: {s:.4f} +- {se:.4f}")


def npoint_tests(ds: xr.Dataset) -> None:
    """Per-point consistency verdicts against exact theory (Student-t Bonferroni)."""
    for name in ("G2", "G4_conn", "G6_conn"):
        z, crit = ds[f"{name}_maxz"].values, ds[f"{name}_zcrit"].values
        ok = np.isfinite(z)
        passed = int(np.sum(z[ok] <= crit[ok]))
        print(f"npoint {name}: {passed} of {ok.sum()} points within their critical value "
              f"(largest max|z| / critical = {np.nanmax(z / crit):.2f})")  # fmt: skip


def depth_lines(ds: xr.Dataset) -> None:
    print("depth: K test against K + K1/N per point (tested layers, max|z| / critical, "
          "leading order's max|z| on the same values), first heavy-tailed layer")  # fmt: skip
    for family in ds["family"].values:
        for width in ds["width"].values:
            for depth in ds["depth"].values:
                cell = ds.sel(family=family, width=width, depth=depth)
                if not np.isfinite(cell["K"].isel(layer=0, tuple2=0)):
                    continue
                tested = np.flatnonzero(cell["K_tested"].values == 1) + 1
                heavy = np.flatnonzero(cell["kurtosis_heavy_tail"].values == 1) + 1
                span = f"l = {tested.min()}..{tested.max()}" if tested.size else "none"
                first = f"from l = {heavy.min()} ({heavy.size} layers)" if heavy.size else "none"
                print(
                    f"  {family} N = {int(width)} L = {int(depth)}: {span} "
                    f"({int(cell['K_tests'])} values), K_maxz {float(cell['K_maxz']):.2f} / "
                    f"{float(cell['K_zcrit']):.2f}, LO {float(cell['K_lo_maxz']):.2f}; "
                    f"heavy-tailed {first}"
                )


def main() -> None:
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "results")
    npoint = xr.open_dataset(results / "npoint" / "npoint.nc")
    npoint_tests(npoint)
    coupling_lines(npoint)
    depth_lines(xr.open_dataset(results / "depth" / "depth.nc"))


if __name__ == "__main__":
    main()
