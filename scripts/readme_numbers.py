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


def _maxz(pt: xr.Dataset, names) -> tuple[float, int]:
    """max |estimate - exact| / se over the finite values of ``names`` and their count."""
    z = [((pt[v] - pt[f"{v}_exact"]) / pt[f"{v}_se"]).values for v in names if v in pt]
    z = np.concatenate([x[np.isfinite(x)] for x in z])
    return float(np.abs(z).max()), int(z.size)


def learning_lines(ds: xr.Dataset) -> None:
    """Second-law counts, exact comparisons per kind, the Gaussian bias, Pi_ss, information."""
    from nnfield.fluctuation import converged

    print(f"learning: {ds.sizes['point']} points")
    for flag in ("pi_violation", "kl_violation", "free_energy_violation", "information_violation"):
        if flag in ds:
            values = ds[flag].values
            kinds, counts = np.unique(values[np.isfinite(values)], return_counts=True)
            print(f"  {flag}: " + ", ".join(f"{int(k)}: {c} points" for k, c in
                                            zip(kinds, counts, strict=True)))  # fmt: skip
    names = ("loss", "medium", "entropy", "entropy_gaussian", "pi", "pi_gaussian", "free_energy",
             "free_energy_change", "shadow_work", "kl_to_stationary", "information",
             "information_bound", "learning_efficiency", "entropy_marginal")  # fmt: skip
    kinds, opts = ds["kind"].values, ds["optimizer"].values
    for kind, opt in (("quadratic", None), ("barrier", "sgld"), ("barrier", "momentum")):
        keep = (kinds == kind) & ((opts == opt) if opt else True)
        sel = ds.isel(point=np.flatnonzero(keep))
        if sel.sizes["point"]:
            z, n = _maxz(sel, names)
            mean_z = {v: float(np.nanmean(((sel[v] - sel[f"{v}_exact"]) / sel[f"{v}_se"]).values))
                      for v in ("entropy", "kl_to_stationary") if v in sel}  # fmt: skip
            print(f"  {kind} {opt or ''}: max |z| {z:.2f} over {n} values of "
                  f"{sel.sizes['point']} points; mean z of S, KL {mean_z}")  # fmt: skip
    sgd = np.flatnonzero((opts == "sgd") & np.isfinite(ds["medium_rate"].values)) if (
        "medium_rate" in ds) else []  # fmt: skip
    for i in sgd:
        pt = ds.isel(point=i)
        temp = float(pt["temperature"])
        rate, rate_se = float(pt["medium_rate"]), float(pt["medium_rate_se"])
        heat, heat_se = float(pt["heat_limit_rate"]), float(pt["heat_limit_rate_se"])
        print(f"  sgd T = {temp:g}: medium entropy {rate:.4f} +- {rate_se:.4f} nats/step, "
              f"T x it {temp * rate:.5f}, Q {heat:.5f} +- {heat_se:.5f} per step")  # fmt: skip
    for i in range(ds.sizes["point"]):
        pt = ds.isel(point=i)
        name = str(pt["point"].values)
        if str(pt["kind"].values) == "barrier":
            ok = np.isfinite(pt["entropy"].values)
            bias = (pt["entropy_gaussian_exact"] - pt["entropy_exact"]).values[ok][-1]
            z = ((pt["entropy_gaussian"] - pt["entropy_exact"]) / pt["entropy_gaussian_se"]).values
            last = np.flatnonzero(np.isfinite(pt["shadow_work"].values))[-5:]
            steps = 5 * float(np.diff(pt["step"].values[ok])[0])
            temp = float(pt["temperature"])
            late = float(pt["shadow_work"].values[last].sum()) / (temp * steps)
            late_x = float(pt["shadow_work_exact"].values[last].sum()) / (temp * steps)
            print(f"  {name}: Gaussian bias {bias:.3f} nats (max z {np.nanmax(z):.1f}); "
                  f"Pi_ss {float(pt['pi_stationary_exact']):.3e}; late W/(T steps) {late:.3e} "
                  f"(exact {late_x:.3e})")  # fmt: skip
        if "information" in pt and np.isfinite(pt["information"].values).any():
            ok = np.isfinite(pt["information"].values)
            i_, se = pt["information"].values[ok][-1], pt["information_se"].values[ok][-1]
            print(f"  {name}: I {i_:.3f} +- {se:.3f} (exact "
                  f"{pt['information_exact'].values[ok][-1]:.3f}), bound "
                  f"{pt['information_bound_exact'].values[ok][-1]:.2f}, efficiency "
                  f"{pt['learning_efficiency_exact'].values[ok][-1]:.4f}")  # fmt: skip
        samples = int(pt["ift_samples"])
        for ft, ess_name in (("ift", "ift_ess"), ("ift_from_start", "ift_from_start_ess")):
            if ft in pt and np.isfinite(pt[ft].values).any() and ess_name in pt:
                ess = pt[ess_name].values[1:] if ft == "ift_from_start" else pt[ess_name].values
                ess = ess[np.isfinite(pt[ft].values[1:] if ft == "ift_from_start" else
                              pt[ft].values)]  # fmt: skip  # this point's own records
                trusted = converged(ess, samples)
                top = np.nanmax(ess) / samples if np.isfinite(ess).any() else float("nan")
                print(f"    {name} {ft}: {int(trusted.sum())} of {ess.size} converged, "
                      f"max ESS fraction {top:.3f}")  # fmt: skip
        if "ift_one_step" in pt and np.isfinite(float(pt["ift_one_step"])):
            fraction = float(pt["ift_one_step_ess"]) / int(pt["ift_one_step_samples"])
            print(f"    {name} ift_one_step: ESS fraction {fraction:.4f}")
    for key, verdict in ds.attrs.items():  # Madelung, Hamilton-Jacobi, caustics (3.5)
        if key.startswith("claim_"):
            print(f"  {key}: {verdict}")


def _pm(ds: xr.Dataset, name: str, i: int, index=()) -> str:
    value = ds[name].values[(i, *index)]
    err = ds[f"{name}_se"].values[(i, *index)] if f"{name}_se" in ds else np.nan
    exact = ds[f"{name}_exact"].values[(i, *index)] if f"{name}_exact" in ds else np.nan
    return f"{value:.5g} +- {err:.2g} (exact {exact:.5g})"


def hidden_lines(ds: xr.Dataset) -> None:
    """Every point's production with its checks; ring Onsager coefficients; what the subsystem
    averages see.  Each value is one point: its error is a jackknife over network blocks."""
    print(f"hidden: {ds.sizes['point']} points")
    for i, name in enumerate(ds["point"].values):
        kind = "identity" if ds["ep_identity"].values[i] else f"z {ds['ep_z'].values[i]:.2f}"
        print(f"  {name}: ep {ds['ep'].values[i]:.5g} +- {ds['ep_se'].values[i]:.2g}, "
              f"exact {ds['ep_exact'].values[i]:.5g} ({kind}; rounding bound "
              f"{ds['ep_rounding_bound'].values[i]:.2g}), ep s^2 {ds['ep_s2'].values[i]:.4g}, "
              f"system {ds['ep_system'].values[i]:.2g}, drift z {ds['drift_z'].values[i]:.2f}, "
              f"replica z {ds['replica_z'].values[i]:.2f}, rho1 "
              f"{ds['time_block_correlation'].values[i]:.3f}, ergodic "
              f"{int(ds['ergodic'].values[i])}")  # fmt: skip
        if "annealed" in ds and np.isfinite(ds["annealed"].values[i]):
            print(f"    annealed {ds['annealed'].values[i]:.2g}, medium part "
                  f"{ds['annealed_medium'].values[i]:.2g} +- "
                  f"{ds['annealed_medium_se'].values[i]:.2g}")  # fmt: skip
        if "ep_coarse" in ds and np.isfinite(ds["ep_coarse"].values[i]):
            coarse = _pm(ds, "ep_coarse", i)
            fraction = _pm(ds, "coarse_fraction", i)
            flow = _pm(ds, "information_flow", i, (0,))
            tur = _pm(ds, "tur_product", i, (0, 1))
            print(f"    coarse {coarse}, fraction {fraction}, flow into 0 {flow}, TUR {tur}")
    zs = [ds["ep_z"].values[np.isfinite(ds["ep_z"].values)]]
    for name in ("ep_coarse", "coarse_fraction", "information_flow", "tur_product"):
        if name in ds:
            exact, value, se = (ds[k].values for k in (f"{name}_exact", name, f"{name}_se"))
            ok = np.isfinite(exact) & (exact != 0) & np.isfinite(value)
            if name == "tur_product":  # the (mu, nu) and (nu, mu) entries are the same number
                ok &= np.triu(np.ones(exact.shape[-2:], bool), 1)
            zs.append(((value - exact) / se)[ok])
    z = np.concatenate(zs)
    print(f"  measured against exact (ep, coarse production and fraction, flows, TUR): max |z| "
          f"{np.abs(z).max():.2f} over {z.size} values; the flows of one point share its "
          f"trajectories")  # fmt: skip
    if "ring_fit" in ds.dims:
        for f in range(ds.sizes["ring_fit"]):
            c2, se = ds["ring_fit_value"].values[f, 1], ds["ring_fit_se"].values[f, 1]
            print(f"  rings {ds['ring_fit_ensemble'].values[f]}: c2 {c2:.4g} +- {se:.2g}, exact "
                  f"{ds['ring_c2_exact'].values[f]:.4g}, z {ds['ring_c2_z'].values[f]:.2f} "
                  f"(critical {ds['ring_c2_zcrit'].values[f]:.2f}), design bias "
                  f"{ds['ring_c2_design_bias'].values[f]:.2g}; quadratic-only "
                  f"{ds['ring_c2_quadratic'].values[f]:.4g} +- "
                  f"{ds['ring_c2_quadratic_se'].values[f]:.2g}, z "
                  f"{ds['ring_c2_quadratic_z'].values[f]:.2f}")  # fmt: skip


def main() -> None:
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "results")
    npoint = xr.open_dataset(results / "npoint" / "npoint.nc")
    npoint_tests(npoint)
    coupling_lines(npoint)
    depth_lines(xr.open_dataset(results / "depth" / "depth.nc"))
    learning_lines(xr.open_dataset(results / "learning" / "learning.nc"))
    hidden_lines(xr.open_dataset(results / "hidden" / "hidden.nc"))


if __name__ == "__main__":
    main()
