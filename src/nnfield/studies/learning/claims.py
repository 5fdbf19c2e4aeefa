"""Madelung, Hamilton-Jacobi and caustics readings of noisy learning, measured (docs/physics.md
section 3.5).

Conventions: time t = step * eta (continuous-time limit of q' = q - eta grad U + xi); D is the
diffusion matrix Xi / (2 eta) (T I for SGLD); p_t = N(mu_t, Sigma_t) is the Gaussian fitted to
the ensemble's first two moments at each record (exact family on quadratic losses).  With
phi = U + T ln p the Fokker-Planck equation is the continuity equation with velocity -grad phi;
writing S = -phi, the Madelung form

    dS/dt + |grad S|^2 / 2 + V(q) = (hbar^2 / 2) lap(sqrt p) / sqrt(p)

holds with hbar^2 = -4 T^2 and V = T lap U - |grad U|^2 / 2 (unit mass).  On Gaussians both sides
are quadratic polynomials in q; ``madelung_fit`` regresses the coefficients of
dS/dt + |grad S|^2 / 2 (central differences between records) on those of the quantum potential
term lap(sqrt p)/sqrt(p) over the interior records, with one constant V for all of them: the
slope is hbar^2 / 2.  Everything here is a function of the block means of q and q q^T, so the
jackknife (stats) gives its error.
"""

from __future__ import annotations

import numpy as np

from nnfield import stats
from nnfield.entropy import sample_covariance


def gaussian_fit(m) -> tuple[np.ndarray, np.ndarray]:
    """(mean (..., R, p), covariance (..., R, p, p)) of the Gaussian fitted to the replicate
    means ``m`` of q and q q^T (stats.jackknife convention)."""
    count = m[stats.REPLICATE_COUNT]
    return m["q1"], sample_covariance(m["q1"], m["qq"], count)


def _polynomial(quad: np.ndarray, lin: np.ndarray, const: np.ndarray) -> np.ndarray:
    """Coefficient vector of q^T quad q + lin . q + const (quad symmetric (..., p, p)): the
    upper triangle (off-diagonal entries doubled, the coefficient of q_i q_j), lin, const."""
    p = quad.shape[-1]
    iu = np.triu_indices(p)
    weight = (2.0 - np.eye(p))[iu]
    return np.concatenate([quad[..., iu[0], iu[1]] * weight, lin, const[..., None]], axis=-1)


def madelung_terms(mean, cov, times, hessian, temperature) -> tuple[np.ndarray, np.ndarray]:
    """Coefficient vectors (..., R - 2, c) of E = dS/dt + |grad S|^2 / 2 and of
    K = lap(sqrt p) / sqrt(p) at the interior records, for p = N(mean, cov) over records
    (axis -2 of mean, -3 of cov) at ``times``; dS/dt by central differences."""
    a = np.asarray(hessian, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    dt = (t[2:] - t[:-2])[:, None]
    d_mean = (mean[..., 2:, :] - mean[..., :-2, :]) / dt
    d_cov = (cov[..., 2:, :, :] - cov[..., :-2, :, :]) / dt[..., None]
    mu, sigma = mean[..., 1:-1, :], cov[..., 1:-1, :, :]
    prec = np.linalg.inv(sigma)
    d_prec = -prec @ d_cov @ prec
    temp = float(temperature)
    mv = lambda m_, v: np.einsum("...ij,...j->...i", m_, v)  # noqa: E731
    dot = lambda u, v: np.einsum("...i,...i->...", u, v)  # noqa: E731
    # dS/dt at fixed q, S = -(U + T ln p): (T/2)[y^T P' y - 2 mu'^T P y + tr(P Sigma')]
    dq = 0.5 * temp * d_prec
    dl = 0.5 * temp * (-2 * mv(d_prec, mu) - 2 * mv(prec, d_mean))
    dc = 0.5 * temp * (dot(mu, mv(d_prec, mu)) + 2 * dot(d_mean, mv(prec, mu))
                       + np.einsum("...ij,...ji->...", prec, d_cov))  # fmt: skip
    # grad S = G q - h with G = T P - A, h = T P mu
    g = temp * prec - a
    h = temp * mv(prec, mu)
    gq = 0.5 * np.swapaxes(g, -1, -2) @ g
    gl = -mv(np.swapaxes(g, -1, -2), h)
    gc = 0.5 * dot(h, h)
    # lap(sqrt p) / sqrt p = -tr P / 2 + y^T P^2 y / 4
    p2 = prec @ prec
    kq = 0.25 * p2
    kl = -0.5 * mv(p2, mu)
    kc = 0.25 * dot(mu, mv(p2, mu)) - 0.5 * np.trace(prec, axis1=-2, axis2=-1)
    return _polynomial(dq + gq, dl + gl, dc + gc), _polynomial(kq, kl, kc)


def _weighted_fit(mean, cov, times, hessian, temperature):
    """(hbar^2 (...,), V coefficients (..., c)) of the weighted least-squares fit
    E_r + V = (hbar^2 / 2) K_r over interior records r, weights 1 / |K_r|^2 (each record's
    residual relative to its quantum-potential term, so that no record dominates: from a
    narrow start |K| falls by orders of magnitude)."""
    e, k = madelung_terms(mean, cov, times, hessian, temperature)
    w = 1.0 / np.sum(k * k, axis=-1, keepdims=True)
    w = w / w.sum(axis=-2, keepdims=True)
    k_bar = np.sum(w * k, axis=-2, keepdims=True)
    e_bar = np.sum(w * e, axis=-2, keepdims=True)
    slope = np.sum(w * (k - k_bar) * (e - e_bar), axis=(-2, -1)) / np.sum(
        w * (k - k_bar) ** 2, axis=(-2, -1)
    )
    potential = np.sum(w * (slope[..., None, None] * k - e), axis=-2)
    return 2 * slope, potential


def madelung_fit(mean, cov, times, hessian, temperature) -> np.ndarray:
    """hbar^2 (...,): twice the slope of E on K over the interior records (c coefficients
    each), with one V (the intercept: a time-independent quadratic) for all records."""
    return _weighted_fit(mean, cov, times, hessian, temperature)[0]


def madelung_potential(mean, cov, times, hessian, temperature) -> np.ndarray:
    """The fitted V as a coefficient vector (``_polynomial`` layout)."""
    return _weighted_fit(mean, cov, times, hessian, temperature)[1]


def potential_continuum(hessian, temperature) -> np.ndarray:
    """V = T lap U - |grad U|^2 / 2 = T tr A - q^T A^2 q / 2 as a coefficient vector."""
    a = np.asarray(hessian, dtype=np.float64)
    return _polynomial(-0.5 * a @ a, np.zeros(a.shape[0]), np.array(temperature * np.trace(a)))


def hbar2_continuum(temperature: float) -> float:
    """hbar^2 of the Madelung form of overdamped Langevin dynamics at temperature T: -4 T^2."""
    return -4.0 * float(temperature) ** 2


def quench_mode(hessian, times) -> tuple[int, float, int] | None:
    """(eigen-direction index, angular frequency omega = sqrt(a), record index nearest pi /
    omega) of the slowest mode of the Hessian whose half-period pi / omega lies within the run,
    or None.  A real-hbar Madelung packet in the trap U breathes with period pi / omega."""
    eig = np.linalg.eigvalsh(np.asarray(hessian, dtype=np.float64))
    t = np.asarray(times, dtype=np.float64)
    for i in np.argsort(eig):
        omega = float(np.sqrt(eig[i]))
        if np.pi / omega <= t[-1]:
            return int(i), omega, int(np.argmin(np.abs(t - np.pi / omega)))
    return None


def mode_variance(cov, hessian, mode: int) -> np.ndarray:
    """e^T Sigma e along eigenvector ``mode`` of the Hessian (eigvalsh order)."""
    _, vecs = np.linalg.eigh(np.asarray(hessian, dtype=np.float64))
    e = vecs[:, mode]
    return np.einsum("i,...ij,j->...", e, cov, e)


def quench_return(variance, stationary: float) -> np.ndarray:
    """(s(t) - s_inf) / (s(0) - s_inf) over records (last axis): 1 at t = 0, e^(-2 a t) for the
    relaxation, and back to 1 at t = pi / omega for an undamped real-hbar breathing."""
    return (variance - stationary) / (variance[..., :1] - stationary)


def breathing_return(times, initial: float, stationary: float, omega: float,
                     hbar: float) -> np.ndarray:  # fmt: skip
    """quench_return of a free Gaussian packet of a real-hbar Schroedinger equation in the trap
    of frequency omega (unit mass, no initial chirp): s(t) = s0 cos^2(omega t)
    + hbar^2 sin^2(omega t) / (4 s0 omega^2), periodic with period pi / omega."""
    wt = omega * np.asarray(times, dtype=np.float64)
    s = initial * np.cos(wt) ** 2 + hbar**2 * np.sin(wt) ** 2 / (4 * initial * omega**2)
    return (s - stationary) / (initial - stationary)


def entropic_ratio(cov, grad2, temperature, count) -> np.ndarray:
    """R = E|T grad ln p|^2 / E|grad U|^2 = T^2 tr Sigma^-1 / <|grad U|^2> for Gaussian p, with
    tr Sigma^-1 of the sample covariance of ``count`` points corrected by (n - p - 2) / (n - 1)
    (the Wishart mean of the inverse)."""
    p = cov.shape[-1]
    n = np.asarray(count, dtype=np.float64).reshape(np.shape(count) + (1,) * (cov.ndim - 3))
    tr_inv = np.trace(np.linalg.inv(cov), axis1=-2, axis2=-1) * (n - p - 2) / (n - 1)
    return float(temperature) ** 2 * tr_inv / grad2


def drift_matrix(cov, hessian, diffusion) -> np.ndarray:
    """Omega = -A + D Sigma^-1: the continuum velocity -grad U - D grad ln p = Omega (q - mu)
    - A mu of a Gaussian ensemble."""
    return -np.asarray(hessian) + np.asarray(diffusion) @ np.linalg.inv(cov)


def curl(cov, hessian, diffusion) -> np.ndarray:
    """The curl of the continuum velocity field v = Omega q: in two dimensions the signed
    scalar d_0 v_1 - d_1 v_0 = Omega_10 - Omega_01; otherwise |Omega - Omega^T|_F / sqrt 2 (a
    norm: folded, biased upwards near 0).  It vanishes identically when D is proportional to
    I, since then Omega = -A + T Sigma^-1 is symmetric for any Sigma."""
    omega = drift_matrix(cov, hessian, diffusion)
    if omega.shape[-1] == 2:
        return omega[..., 1, 0] - omega[..., 0, 1]
    anti = omega - np.swapaxes(omega, -1, -2)
    return np.sqrt(0.5 * np.sum(anti * anti, axis=(-2, -1)))


def curl_production(cov, hessian, diffusion, learning_rate: float) -> np.ndarray:
    """eta tr(Omega^T D^-1 Omega Sigma) = eta E[v^T D^-1 v] at mean 0: the continuum entropy
    production per step (nats) of the velocity field v = Omega q.  It depends on all of Omega;
    only in the continuous-time stationary state (Sigma^-1 Omega antisymmetric) is it > 0 iff
    the curl is nonzero."""
    omega = drift_matrix(cov, hessian, diffusion)
    d_inv = np.linalg.inv(np.asarray(diffusion))
    prod = np.swapaxes(omega, -1, -2) @ d_inv @ omega @ cov
    return float(learning_rate) * np.trace(prod, axis1=-2, axis2=-1)


def sign_changes(values, resolved) -> int:
    """Sign changes of ``values`` between consecutive ``resolved`` entries (the others are
    skipped): the zero crossings of a mean trajectory that its errors resolve."""
    kept = np.sign(np.asarray(values, dtype=np.float64)[np.asarray(resolved, dtype=bool)])
    return int(np.sum(kept[1:] != kept[:-1]))


def continuum_stationary_covariance(hessian, diffusion) -> np.ndarray:
    """Sigma of the continuous-time stationary law: A Sigma + Sigma A = 2 D."""
    from scipy.linalg import solve_continuous_lyapunov

    return solve_continuous_lyapunov(np.asarray(hessian), 2 * np.asarray(diffusion))


def quadratic_claims(sums, counts, p, dyn, hessian, temperature, exact_path, steps):
    """(estimates, exact values, scalars) of the claims on one quadratic point without data
    disorder; ``exact_path`` has the exact ``means`` and ``covs`` at ``steps``.

    Every point: the curl of the velocity field and its production per step at the last record
    (the exact values from the chain's exact covariance there; ``*_continuum`` from the
    continuous-time stationary law).  SGLD points also: R(t) (``entropic_ratio``), the
    Madelung fit ``hbar2`` and the width quench of the slowest mode whose half-period the run
    covers."""
    eta = float(p["learning_rate"])
    times = np.asarray(steps, dtype=np.float64) * eta
    diffusion = dyn.noise / (2 * eta)
    ex_means, ex_covs = exact_path["means"], exact_path["covs"]
    # one Gaussian fit per jackknife replicate, shared by every estimator below
    means = stats.replicate_means({k: sums[k] for k in ("q1", "qq", "grad2")}, counts)
    fit_mean, fit_cov = gaussian_fit(means)
    last_cov = fit_cov[..., -1, :, :]
    est = {
        "curl": stats.from_replicates(curl(last_cov, hessian, diffusion)),
        "curl_production": stats.from_replicates(
            curl_production(last_cov, hessian, diffusion, eta)
        ),
    }
    sigma_c = continuum_stationary_covariance(hessian, diffusion)
    exact = {
        "curl": curl(ex_covs[-1], hessian, diffusion),
        "curl_production": curl_production(ex_covs[-1], hessian, diffusion, eta),
    }
    commutator = hessian @ diffusion - diffusion @ hessian
    scalars = {
        "noise_commutator": float(
            np.linalg.norm(commutator) / (np.linalg.norm(hessian) * np.linalg.norm(diffusion))
        ),
        "curl_continuum": curl(sigma_c, hessian, diffusion),
        "curl_production_continuum": curl_production(sigma_c, hessian, diffusion, eta),
    }
    if p["optimizer"] != "sgld":
        from nnfield.theory.thermo import LinearGaussianStep

        step = LinearGaussianStep(dyn.transition, dyn.noise)
        scalars["production_stationary_exact"] = step.stationary_entropy_production()
        return est, exact, scalars
    temp = float(temperature)
    est["entropic_ratio"] = stats.from_replicates(
        entropic_ratio(fit_cov, means["grad2"], temp, means[stats.REPLICATE_COUNT])
    )
    exact["entropic_ratio"] = (
        temp**2 * np.trace(np.linalg.inv(ex_covs), axis1=-2, axis2=-1) / (exact_path["grad2"])
    )
    if len(steps) >= 5:
        est["hbar2"] = stats.from_replicates(madelung_fit(fit_mean, fit_cov, times, hessian, temp))
        exact["hbar2"] = madelung_fit(ex_means, ex_covs, times, hessian, temp)
        scalars["hbar2_continuum"] = hbar2_continuum(temp)
    mode = quench_mode(hessian, times)
    if mode is not None:
        index, omega, half = mode
        from nnfield.studies.learning.problems import stationary_covariance

        s_inf = float(mode_variance(stationary_covariance(p), hessian, index))
        est["quench_return"] = stats.from_replicates(
            quench_return(mode_variance(fit_cov, hessian, index), s_inf)
        )
        exact["quench_return"] = quench_return(mode_variance(ex_covs, hessian, index), s_inf)
        s0 = float(mode_variance(ex_covs[0], hessian, index))
        breathing = breathing_return(times, s0, s_inf, omega, np.sqrt(-hbar2_continuum(temp)))
        scalars.update(
            quench_breathing=breathing,
            quench_omega=omega,
            quench_half_period_step=int(steps[half]),
        )
    return est, exact, scalars


def caustic_variables(position: stats.Estimate, exact_position, p, critical: float) -> dict:
    """Scalars of the caustics check of one heavy-ball point (docs/physics.md 3.5): the sign
    changes (``caustic_count``), max |z| of the mean position against exact over the records
    with an error (inf, a failure, if none has one), the critical value, and whether the
    noiseless map is underdamped, (1 + beta - eta a)^2 < 4 beta (complex eigenvalues)."""
    counts = caustic_count(position.value, position.stderr, exact_position, critical)
    ok = position.stderr > 0  # a fixed start has no error
    z = np.abs(position.value - exact_position)[ok] / position.stderr[ok]
    beta, a = float(p["momentum"]), float(p["hessian_eigenvalues"][0])
    under = (1 + beta - float(p["learning_rate"]) * a) ** 2 < 4 * beta
    names = ("mean_sign_changes", "mean_sign_changes_exact", "mean_sign_mismatches")
    return {
        **{name: np.int32(count) for name, count in zip(names, counts, strict=True)},
        "mean_position_max_z": float(z.max()) if z.size else np.inf,
        "mean_position_zcrit": critical,
        "mean_underdamped": np.int8(under),
    }


def caustic_count(mean, stderr, exact_mean, critical: float) -> tuple[int, int, int]:
    """(measured sign changes, exact sign changes, sign mismatches) of the mean position over
    the records where the *exact* mean differs from 0 by more than ``critical`` standard errors
    of the measured one (the same records for both); a mismatch is such a record where the
    measured mean has another sign.  (-1, -1, -1) when no record is resolved (fails closed)."""
    mean, exact_mean = np.asarray(mean, dtype=np.float64), np.asarray(exact_mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        resolved = np.abs(exact_mean / np.asarray(stderr)) > critical
    if not resolved.any():
        return -1, -1, -1
    mismatches = int(np.sum(np.sign(mean[resolved]) != np.sign(exact_mean[resolved])))
    return sign_changes(mean, resolved), sign_changes(exact_mean, resolved), mismatches


CLAIMS_META = {
    "hbar2": ("effective hbar^2 of the Madelung form, twice the slope of dS/dt + |grad S|^2 / 2 "
              "on lap(sqrt p) / sqrt p over the records (Gaussian fits, unit mass, time = "
              "step * eta)", "1"),
    "hbar2_se": ("jackknife standard error of hbar2", "1"),
    "hbar2_exact": ("the same fit of the exact chain moments at the run's eta and records", "1"),
    "hbar2_continuum": ("continuous-time value -4 T^2", "1"),
    "quench_return": ("(s(t) - s_inf) / (s(0) - s_inf) of the variance s along the slowest "
                      "Hessian eigenvector whose half-period pi / omega the run covers", "1"),
    "quench_return_se": ("jackknife standard error of quench_return", "1"),
    "quench_return_exact": ("exact quench_return of the chain", "1"),
    "quench_breathing": ("quench_return of a real-hbar packet (hbar = 2 T, unit mass) in the "
                         "trap: undamped, back to 1 at pi / omega", "1"),
    "quench_omega": ("angular frequency sqrt(a) of the quench mode", "1"),
    "quench_half_period_step": ("recorded step nearest pi / omega (time = step * eta)", "1"),
    "entropic_ratio": ("R = E|T grad ln p|^2 / E|grad U|^2 (Gaussian fit of p)", "1"),
    "entropic_ratio_se": ("jackknife standard error of entropic_ratio", "1"),
    "entropic_ratio_exact": ("exact R of the chain", "1"),
    "curl": ("curl of the continuum velocity -A q - D grad ln p = Omega q at the last record, "
             "D = noise covariance / (2 eta): Omega_10 - Omega_01 in two dimensions, "
             "|Omega - Omega^T|_F / sqrt 2 otherwise", "1"),
    "curl_se": ("jackknife standard error of curl", "1"),
    "curl_exact": ("curl of the chain's exact covariance at the last record", "1"),
    "curl_continuum": ("curl of the continuous-time stationary law", "1"),
    "curl_production": ("eta tr(Omega^T D^-1 Omega Sigma): entropy production per step of "
                        "the velocity field at the last record", "nats"),
    "curl_production_se": ("jackknife standard error of curl_production", "nats"),
    "curl_production_exact": ("curl_production of the chain's exact covariance", "nats"),
    "curl_production_continuum": ("curl_production of the continuous-time stationary law",
                                  "nats"),
    "noise_commutator": ("|A D - D A|_F / (|A|_F |D|_F): 0 where the noise commutes with the "
                         "Hessian (no stationary curl)", "1"),
    "production_stationary_exact": ("exact entropy production per step of the chain's "
                                    "stationary state (points without a temperature)", "nats"),
    "mean_position": ("ensemble mean of the position q (momentum points)", "1"),
    "mean_position_se": ("jackknife standard error of mean_position", "1"),
    "mean_position_exact": ("exact mean position (grid chain)", "1"),
    "mean_position_zcrit": ("critical |z| (Bonferroni t over the records): of the comparison "
                            "with the exact mean, and the exact mean's resolution", "1"),
    "mean_position_max_z": ("max |z| of mean_position against the exact mean over the records",
                            "1"),
    "mean_sign_changes": ("sign changes of mean_position over the records where the exact mean "
                          "is resolved, |exact| > zcrit se (-1: none resolved)", "1"),
    "mean_sign_changes_exact": ("sign changes of the exact mean over the same records", "1"),
    "mean_underdamped": ("1 if the noiseless heavy-ball map on the trap is underdamped, "
                         "(1 + beta - eta a)^2 < 4 beta (complex eigenvalues)", "1"),
    "mean_sign_mismatches": ("resolved records where the measured mean has the other sign",
                             "1"),
}  # fmt: skip
"""long_name and units of the claims' variables in the learning study dataset."""
