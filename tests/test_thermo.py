"""Exact linear-Gaussian thermodynamics (nnfield.theory.thermo) against independent derivations:
ODE integration, finite differences, the closed forms of docs/physics.md sections 3-4, and a Monte
Carlo of the per-sample medium entropy (z-test on its own standard error)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg
from scipy.integrate import solve_ivp

from nnfield import stats
from nnfield.theory.thermo import (
    LinearGaussianStep,
    OrnsteinUhlenbeck,
    gaussian_entropy,
)

A = np.array([[2.0, 0.4, 0.0], [0.4, 1.0, 0.3], [0.0, 0.3, 0.5]])
SIGMA0 = np.diag([0.2, 3.0, 1.0])
MU0 = np.array([1.0, -0.5, 2.0])


def test_ou_covariance_matches_ode_integration():
    ou = OrnsteinUhlenbeck.langevin(A, temperature=0.7)

    def rhs(_, y):
        s = y.reshape(3, 3)
        b, d = ou.drift, ou.diffusion
        return (-b @ s - s @ b.T + 2 * d).ravel()

    sol = solve_ivp(rhs, (0, 1.3), SIGMA0.ravel(), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(ou.covariance(1.3, SIGMA0), sol.y[:, -1].reshape(3, 3), atol=1e-8)
    np.testing.assert_allclose(ou.stationary_covariance, 0.7 * np.linalg.inv(A), rtol=1e-12)


def test_ou_entropy_rate_is_the_derivative_of_the_entropy():
    ou = OrnsteinUhlenbeck.langevin(A, temperature=0.7)
    t, h = 0.4, 1e-5
    numeric = (gaussian_entropy(ou.covariance(t + h, SIGMA0))
               - gaussian_entropy(ou.covariance(t - h, SIGMA0))) / (2 * h)  # fmt: skip
    assert ou.entropy_rate(ou.covariance(t, SIGMA0)) == pytest.approx(numeric, rel=1e-8)


def test_ou_entropy_production_vanishes_only_at_equilibrium():
    ou = OrnsteinUhlenbeck.langevin(A, temperature=0.7)
    eq = ou.stationary_covariance
    assert ou.entropy_production_rate(np.zeros(3), eq) == pytest.approx(0.0, abs=1e-12)
    for t in (0.0, 0.3, 1.0, 3.0):
        pi = ou.entropy_production_rate(ou.mean(t, MU0), ou.covariance(t, SIGMA0))
        assert pi > 0
    # a rotational (non-symmetric) drift has a non-equilibrium steady state: Pi > 0
    driven = OrnsteinUhlenbeck(A + np.array([[0, 1.0, 0], [-1.0, 0, 0], [0, 0, 0]]), np.eye(3))
    assert driven.entropy_production_rate(np.zeros(3), driven.stationary_covariance) > 0.1


def test_discrete_limit_of_the_steady_state_entropy_production():
    """The exact time-dt discretisation of a driven OU process produces, per unit time, the
    continuous-time steady-state Pi (error O(dt), checked by halving dt)."""
    b = A + np.array([[0, 1.0, 0], [-1.0, 0, 0], [0, 0, 0]])
    ou = OrnsteinUhlenbeck(b, 0.5 * np.eye(3))
    sigma = ou.stationary_covariance
    want = ou.entropy_production_rate(np.zeros(3), sigma)
    errors = []
    for dt in (1e-3, 5e-4):
        m = linalg.expm(-b * dt)
        step = LinearGaussianStep(m, sigma - m @ sigma @ m.T)
        errors.append(step.stationary_entropy_production() / dt - want)
    assert abs(errors[1]) < abs(errors[0]) and abs(errors[1]) < 1e-2 * want


def test_sgld_stationary_covariance_is_not_t_over_a():
    eta, temp = 0.2, 0.5
    step = LinearGaussianStep.sgld(A, eta, temp)
    exact = temp * np.linalg.inv(A) @ np.linalg.inv(np.eye(3) - eta * A / 2)
    np.testing.assert_allclose(step.stationary_covariance, exact, rtol=1e-12)
    assert not np.allclose(step.stationary_covariance, temp * np.linalg.inv(A), rtol=1e-2)
    assert step.stationary_entropy_production() == pytest.approx(0.0, abs=1e-10)


def test_non_commuting_noise_has_positive_steady_state_production():
    noise = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 0.2]])  # does not commute
    assert not np.allclose(noise @ A, A @ noise)
    step = LinearGaussianStep.sgld(A, 0.2, 0.0, noise=noise)
    pi = step.stationary_entropy_production()
    assert pi > 1e-4
    sigma = step.stationary_covariance
    assert step.entropy_production(np.zeros(3), sigma) == pytest.approx(pi, rel=1e-9)


@pytest.mark.parametrize("n", [3, 5, 8])
def test_single_cycle_permutation_closed_form(n):
    """W = a P for one n-cycle: a^2 (n - tr P^2) / (1 - a^2) per step, independent of s
    (docs/physics.md section 4); symmetric W produces nothing."""
    a = 0.7
    perm = np.roll(np.eye(n), 1, axis=0)
    for s in (0.3, 2.0):
        step = LinearGaussianStep(a * perm, s**2 * np.eye(n))
        want = a**2 * (n - np.trace(perm @ perm)) / (1 - a**2)
        assert step.stationary_entropy_production() == pytest.approx(want, rel=1e-10)
    sym = LinearGaussianStep(0.5 * (perm + perm.T) * a, np.eye(n))
    assert sym.stationary_entropy_production() == pytest.approx(0.0, abs=1e-10)


def test_entropy_production_is_system_plus_medium_by_monte_carlo():
    """From a non-stationary Gaussian: exact production = Delta S_system + E[medium entropy],
    the latter a Monte Carlo mean of the per-sample kernel log-ratio (z-test)."""
    rng = np.random.default_rng(4)
    step = LinearGaussianStep.sgld(A, 0.1, 0.3, noise=np.diag([1.0, 0.2, 0.5]))
    _, cov1 = step.propagate(MU0, SIGMA0)
    exact = step.entropy_production(MU0, SIGMA0)
    system = gaussian_entropy(cov1) - gaussian_entropy(SIGMA0)
    q = rng.multivariate_normal(MU0, SIGMA0, size=(200, 500))
    noise = rng.multivariate_normal(np.zeros(3), step.noise, size=(200, 500))
    medium = step.medium_entropy(q, q @ step.transition.T + noise).mean(axis=1)
    counts = np.ones(200)
    est = stats.jackknife({"m": medium}, counts, lambda m: m["m"])
    z = (system + float(est.value) - exact) / float(est.stderr)
    crit = stats.bonferroni_t(1e-3, 1, stats.jackknife_dof(counts.size))
    assert abs(z) < crit, f"off by {z:.1f} s.e."
    wrong = (system + float(est.value) - 1.2 * exact) / float(est.stderr)
    assert abs(wrong) > crit
