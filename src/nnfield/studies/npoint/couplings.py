"""Couplings of the npoint study: lambda and kappa fitted at every cutoff, lambda(y), the flow.

Per family the tree-level integrals are computed once (nnfield.studies.npoint.coupling_theory); per
width the
fits run on every delete-one-block jackknife replicate of the connected correlators, so the
errors include the correlations between tuples and the shared Gaussian subtraction.  Conventions
are those of nnfield.studies.npoint.coupling_theory (G4_conn = -integral lambda K K K K; the
quadratic
counterterm mu(y) = -lambda K(y, y) / 2 that keeps G2 = K is stored per cutoff on the radial grid
|y| = mu_fraction * Lambda).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr

from nnfield import stats
from nnfield.studies.npoint import coupling_theory as cp
from nnfield.studies.npoint.coupling_theory import (
    fit_method as fit_method,  # the coupling_fit attribute
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FamilyIntegrals:
    """Tree-level integrals of one family at every configured cutoff."""

    cutoffs: np.ndarray
    integrals: list[cp.TreeIntegrals]
    reference: int  # index of the reference cutoff
    basis: int
    radius: np.ndarray  # radii at which lambda(y) is stored
    profile_fit: bool  # False when the inputs cannot tell the basis functions apart
    prior: cp.Prior
    dim: int  # input dimension d
    mu_fraction: np.ndarray  # |y| / Lambda at which the counterterm mu is stored, in [0, 1]

    def mu_nodes(self, i: int) -> np.ndarray:
        """Points at |y| = mu_fraction * Lambda_i (the counterterm is radial), shape (R, d)."""
        return cp.radial_nodes(self.mu_fraction * self.cutoffs[i], self.dim)

    @property
    def mean_quartic(self) -> np.ndarray:
        """Tuple-averaged integral of K^4 at each cutoff (sets the predicted flow)."""
        return np.array([ti.quartic[:, :, 0].mean() for ti in self.integrals])

    @property
    def accuracy(self) -> float:
        return float(max(ti.accuracy for ti in self.integrals))


def family_integrals(
    attrs: Mapping, inputs: np.ndarray, options: Mapping, seed: int, label: str = ""
) -> FamilyIntegrals:
    """Integrals for the family described by point ``attrs`` (arch and prior scales)."""
    prior = cp.Prior(
        str(attrs["arch"]),
        float(attrs["sigma_w0"]),
        float(attrs["sigma_b0"]),
        float(attrs["sigma_w1"]),
        float(attrs["sigma_b1"]),
    )
    cutoffs = np.asarray(sorted(float(c) for c in options["cutoffs"]))
    basis = int(options["basis"])
    integrals = [
        cp.tree_integrals(
            prior,
            inputs,
            c,
            basis,
            mc_points=int(options["mc_points"]),
            mc_replicas=int(options["mc_replicas"]),
            seed=seed,
        )
        for c in cutoffs
    ]
    reference = int(np.argmin(np.abs(cutoffs - float(options["reference_cutoff"]))))
    radius = np.linspace(0.0, cutoffs[reference], int(options["profile_points"]))
    mu_fraction = np.linspace(0.0, 1.0, int(options["profile_points"]))
    design = integrals[reference].quartic.mean(0)
    sv = np.linalg.svd(design / np.abs(design).max(axis=0), compute_uv=False)
    profile_fit = bool(sv[-1] > 1e-9 * sv[0])
    if not profile_fit:
        log.warning(
            "%s: lambda(y) is not fitted: with these inputs the %d basis functions give "
            "proportional integrals (only a constant lambda is determined)",
            label, basis,
        )  # fmt: skip
    return FamilyIntegrals(
        cutoffs, integrals, reference, basis, radius, profile_fit,
        prior, np.atleast_2d(inputs).shape[1], mu_fraction,
    )  # fmt: skip


def _integration_spread(values: np.ndarray) -> float:
    """Standard error of a mean over Monte Carlo integration replicas (0 for one replica)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return 0.0
    return float(values.std(ddof=1) / np.sqrt(values.size))


def _fit_cutoff(
    i, ti, reps4, reps6, exact4, exact6, cov4, n_blocks, label, out, modes
) -> np.ndarray:
    """Constant lambda and kappa at cutoff index ``i``: fills row ``i`` of ``out``, ``modes``;
    returns lambda's jackknife replicates (1 + B,)."""
    fit4 = cp.LinearFit.build(-ti.quartic[:, :, :1].mean(0), cov4, n_blocks, f"{label} lambda")
    lam_reps = fit4.coefficients(reps4)[:, 0]
    lam = stats.from_replicates(lam_reps)
    exchange = ti.exchange.mean(0)
    g6 = reps6 - lam_reps[:, None] ** 2 * exchange[None, :]
    cov6 = cp.jackknife_modes(g6[1:])
    fit6 = cp.LinearFit.build(-ti.sextic.mean(0)[:, None], cov6, n_blocks, f"{label} kappa")
    kap = stats.from_replicates(fit6.coefficients(g6)[:, 0])
    if ti.replicas > 1:  # Monte Carlo integrals: the spread over integration replicas
        lam_mc = [fit4.with_design(-q[:, :1], label).coefficients(reps4[0])[0] for q in ti.quartic]
        kap_mc = [
            fit6.with_design(-s[:, None], label).coefficients(reps6[0] - lm**2 * e)[0]
            for s, e, lm in zip(ti.sextic, ti.exchange, lam_mc, strict=True)
        ]
        out["lambda_integration_se"][i] = _integration_spread(lam_mc)
        out["kappa_integration_se"][i] = _integration_spread(kap_mc)
    else:
        out["lambda_integration_se"][i] = out["kappa_integration_se"][i] = 0.0
    out["lambda"][i] = lam.value
    out["lambda_se"][i] = np.hypot(lam.stderr, out["lambda_integration_se"][i])
    out["lambda_chi2dof"][i] = fit4.chi2dof(reps4[0])
    out["kappa"][i] = kap.value
    out["kappa_se"][i] = np.hypot(kap.stderr, out["kappa_integration_se"][i])
    out["kappa_chi2dof"][i] = fit6.chi2dof(g6[0])
    modes["lambda_modes"][i] = fit4.modes
    modes["kappa_modes"][i] = fit6.modes
    if exact4 is not None and exact6 is not None:
        lam_exact = fit4.coefficients(exact4)[0]
        out["lambda_exact"][i] = lam_exact
        out["kappa_exact"][i] = fit6.coefficients(exact6 - lam_exact**2 * exchange)[0]
    return lam_reps


def _counterterm_row(i: int, fam: FamilyIntegrals, lam_reps: np.ndarray, out, mu) -> None:
    """mu(|y|) = -lambda K(y, y) / 2 of the constant-lambda fit at cutoff index ``i``.

    mu is linear in lambda: its value is the counterterm of the bias-corrected lambda, its error
    the jackknife spread of the counterterms of lambda's replicates, with lambda's integration
    error (d >= 3) carried by the same factor and added in quadrature, like lambda_se.
    """
    nodes = fam.mu_nodes(i)
    mu["mu"][i] = cp.counterterm(fam.prior, nodes, out["lambda"][i])
    jack = stats.from_replicates(cp.counterterm(fam.prior, nodes, lam_reps[:, None])).stderr
    integration = cp.counterterm(fam.prior, nodes, out["lambda_integration_se"][i])
    mu["mu_se"][i] = np.hypot(jack, integration)
    mu["mu_exact"][i] = cp.counterterm(fam.prior, nodes, out["lambda_exact"][i])  # NaN: no theory


def point_couplings(
    reps4: np.ndarray,
    reps6: np.ndarray,
    exact4: np.ndarray | None,
    exact6: np.ndarray | None,
    fam: FamilyIntegrals,
    label: str = "",
) -> xr.Dataset:
    """Couplings of one (family, width) point from jackknife replicates of G4_conn, G6_conn.

    ``reps4`` (1 + B, T4) and ``reps6`` (1 + B, T6) hold the full-sample estimate in row 0 and the
    delete-one-block estimates after it; ``exact4``/``exact6`` are the exact connected parts
    (None without theory), fitted with the same weights to give the exact couplings.
    """
    n_cut = len(fam.cutoffs)
    n_blocks = reps4.shape[0] - 1
    out = {
        name: np.full(n_cut, np.nan)
        for name in (
            "lambda", "lambda_se", "lambda_integration_se", "lambda_chi2dof", "lambda_exact",
            "kappa", "kappa_se", "kappa_integration_se", "kappa_chi2dof", "kappa_exact",
        )
    }  # fmt: skip
    modes = {"lambda_modes": np.zeros(n_cut, np.int32), "kappa_modes": np.zeros(n_cut, np.int32)}
    mu = {k: np.full((n_cut, fam.mu_fraction.size), np.nan) for k in ("mu", "mu_se", "mu_exact")}
    cov4 = cp.jackknife_modes(reps4[1:])
    for i, ti in enumerate(fam.integrals):
        try:
            lam_reps = _fit_cutoff(
                i, ti, reps4, reps6, exact4, exact6, cov4, n_blocks, label, out, modes
            )
        except cp.CouplingFitError as err:  # e.g. no fluctuation at all (sigma_w1 = 0)
            log.warning("%s, cutoff %g: %s", label, ti.cutoff, err)
            continue
        _counterterm_row(i, fam, lam_reps, out, mu)
    ref = fam.reference
    mean_quartic = fam.mean_quartic
    predicted = out["lambda"][ref] * mean_quartic[ref] / mean_quartic

    n_rad = len(fam.radius)
    prof = {
        k: np.full(n_rad, np.nan)
        for k in ("lambda_profile", "lambda_profile_se", "lambda_profile_exact")
    }
    basis_value = np.full(fam.basis, np.nan)
    basis_se = np.full(fam.basis, np.nan)
    prof_chi2 = np.nan
    cutoff = fam.cutoffs[ref]
    fitp = None
    if fam.profile_fit:
        try:
            fitp = cp.LinearFit.build(
                -fam.integrals[ref].quartic.mean(0), cov4, n_blocks, f"{label} lambda(y)"
            )
        except cp.CouplingFitError as err:
            log.warning("%s", err)
    if fitp is not None:
        coef_reps = fitp.coefficients(reps4)
        coef = stats.from_replicates(coef_reps)
        basis_value, basis_se = coef.value, coef.stderr
        pr = stats.from_replicates(cp.profile(coef_reps, fam.radius, cutoff))
        prof["lambda_profile"], prof["lambda_profile_se"] = pr.value, pr.stderr
        prof_chi2 = fitp.chi2dof(reps4[0])
        if exact4 is not None:
            prof["lambda_profile_exact"] = cp.profile(fitp.coefficients(exact4), fam.radius, cutoff)
    ds = xr.Dataset(
        {
            **{k: (("cutoff",), v) for k, v in out.items()},
            "lambda_predicted": (("cutoff",), predicted),
            **{k: (("cutoff",), v) for k, v in modes.items()},
            **{k: (("cutoff", "mu_fraction"), v) for k, v in mu.items()},
            **{k: (("radius",), v) for k, v in prof.items()},
            "lambda_profile_chi2dof": ((), prof_chi2),
            "lambda_basis": (("basis",), basis_value),
            "lambda_basis_se": (("basis",), basis_se),
        },
        coords={
            "cutoff": fam.cutoffs,
            "radius": fam.radius,
            "basis": np.arange(fam.basis),
            "mu_fraction": fam.mu_fraction,
            "mu_radius": (("cutoff", "mu_fraction"), np.outer(fam.cutoffs, fam.mu_fraction)),
        },
    )
    return ds


COUPLING_META = {
    "lambda": ("quartic coupling lambda (S contains lambda/4! f^4; G4_conn = -lambda int K^4)",
               "1"),
    "lambda_se": ("standard error of lambda (jackknife and integration, in quadrature)", "1"),
    "lambda_integration_se": ("Monte Carlo integration error of lambda (0 for quadrature)", "1"),
    "lambda_chi2dof": ("chi^2 per degree of freedom of the constant-lambda fit", "1"),
    "lambda_exact": ("lambda fitted to the exact G4_conn with the same weights", "1"),
    "lambda_predicted": ("lambda(Lambda) predicted from the reference cutoff at fixed G4", "1"),
    "kappa": ("sextic coupling kappa (S contains kappa/6! f^6), exchange part removed", "1"),
    "kappa_se": ("standard error of kappa (jackknife and integration, in quadrature)", "1"),
    "kappa_integration_se": ("Monte Carlo integration error of kappa (0 for quadrature)", "1"),
    "kappa_chi2dof": ("chi^2 per degree of freedom of the kappa fit", "1"),
    "kappa_exact": ("kappa fitted to the exact G6_conn and exact lambda", "1"),
    "mu": ("quadratic counterterm mu(|y|) = -lambda K(y,y)/2 of the constant-lambda fit (S "
           "contains mu/2 f^2; keeps G2 = K to O(1/N^2)), at |y| = mu_fraction * cutoff", "1"),
    "mu_se": ("standard error of mu (jackknife of lambda's replicates and integration, in "
              "quadrature)", "1"),
    "mu_exact": ("counterterm mu of lambda_exact, -lambda_exact K(y,y)/2", "1"),
    "lambda_modes": ("covariance eigenmodes kept in the lambda fit (dof = modes - 1)", "1"),
    "kappa_modes": ("covariance eigenmodes kept in the kappa fit (dof = modes - 1)", "1"),
    "lambda_profile": ("position-dependent quartic coupling lambda(|y|) at the reference cutoff",
                       "1"),
    "lambda_profile_se": ("jackknife standard error of lambda_profile", "1"),
    "lambda_profile_exact": ("lambda(|y|) fitted to the exact G4_conn", "1"),
    "lambda_profile_chi2dof": ("chi^2 per degree of freedom of the lambda(y) fit", "1"),
    "lambda_basis": ("coefficients c_k of lambda(y) = sum_k c_k P_k(2|y|^2/Lambda^2 - 1)", "1"),
    "lambda_basis_se": ("jackknife standard error of lambda_basis", "1"),
    "lambda_width_slope": ("fitted exponent s of |lambda| = A N^s at the reference cutoff", "1"),
    "lambda_width_slope_se": ("standard error of lambda_width_slope", "1"),
    "lambda_width_slope_chi2dof": ("chi^2 per degree of freedom of the lambda(N) fit", "1"),
    "mean_quartic_integral": ("tuple average of integral K^4 over |y| < Lambda", "1"),
    "integration_accuracy": ("largest relative change of the integrals under a refined rule",
                             "1"),
    "cutoff": ("input-space cutoff Lambda (radius of the integration ball)", "1"),
    "radius": ("distance |y| from the origin in input space", "1"),
    "basis": ("index k of the radial Legendre basis function", "1"),
    "mu_fraction": ("|y| / Lambda at which mu is stored (Lambda = cutoff)", "1"),
    "mu_radius": ("distance |y| = mu_fraction * cutoff at which mu is stored", "1"),
}  # fmt: skip
