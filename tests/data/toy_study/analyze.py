"""Analyse the toy study: the output variance with its jackknife error, the exact value
s^2 |x|^2 / d, and a max-|z| verdict with Student-t critical value (blocks - 1 dof)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from nnfield.studies.toy.sample import RAW_VARIABLES

from nnfield import stats
from nnfield.config import PointSpec
from nnfield.engine.store import annotate, provenance


def analyze(points, options=None) -> xr.Dataset:
    alpha = float((options or {}).get("significance", stats.DEFAULT_SIGNIFICANCE))
    rows = []
    for ds in points:
        p = PointSpec.from_json(str(ds.attrs["params"])).params
        est = stats.jackknife({"f": ds["sum_f"].values, "f2": ds["sum_f2"].values},
                              ds["count"].values, lambda m: m["f2"] - m["f"] ** 2)  # fmt: skip
        x = np.asarray(p["input"])
        rows.append((p["scale"], float(est.value), float(est.stderr),
                     p["scale"] ** 2 * float(x @ x) / x.size, ds.sizes["block"]))  # fmt: skip
    scale, value, stderr, exact, blocks = (np.array(c) for c in zip(*sorted(rows), strict=True))
    test = stats.max_z_test(value, stderr, exact, alpha, stats.jackknife_dof(int(blocks.min())))
    out = xr.Dataset(
        {"variance": ("point", value), "variance_se": ("point", stderr),
         "variance_exact": ("point", exact)},
        coords={"scale": ("point", scale)},
    )  # fmt: skip
    out.attrs = provenance("toy")
    out.attrs.update(variance_consistent=np.int8(test.consistent), variance_test=str(test))
    return annotate(out, {"variance": ("jackknife estimate of Var f(x)", "1"),
                          "variance_se": ("its standard error", "1"),
                          "variance_exact": ("exact s^2 |x|^2 / d", "1"),
                          "scale": ("weight scale s", "1")})  # fmt: skip


def analyze_files(paths, options=None, progress=None) -> xr.Dataset:
    from nnfield.engine.analysis import analyze_read_points

    return analyze_read_points(paths, "toy", RAW_VARIABLES, analyze, options or {}, progress)
