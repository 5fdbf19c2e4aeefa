"""Exact stochastic thermodynamics of linear-Gaussian dynamics (docs/physics.md sections 3 and 4).

Continuous time (Ornstein-Uhlenbeck, e.g. Langevin dynamics on U = q^T A q / 2):
    dq = -B q dt + sqrt(2 D) dW,   B = A / gamma, D = T / gamma for friction gamma.
    mu(t) = e^{-Bt} mu0,  Sigma(t) = e^{-Bt} (Sigma0 - Sigma_eq) e^{-B^T t} + Sigma_eq,
    B Sigma_eq + Sigma_eq B^T = 2 D,
    system entropy S = 1/2 log det(2 pi e Sigma) (nats),  dS/dt = -tr B + tr(Sigma^-1 D),
    total entropy production rate
    Pi = mu^T B^T D^-1 B mu + tr(B^T D^-1 B Sigma) - 2 tr B + tr(Sigma^-1 D)  >= 0.
Discrete time (SGLD on a quadratic, hidden-state dynamics with linear f):
    q' = M q + xi,  xi ~ N(0, Xi);  for SGLD M = I - eta A, Xi = 2 eta T I (or a general noise
    covariance C, SGD-like).  Sigma' = M Sigma M^T + Xi; the stationary Sigma solves the discrete
    Lyapunov equation (for SGLD: T A^-1 (I - eta A / 2)^-1, not T A^-1).
    The entropy production of one step from a Gaussian p_t is the Kullback-Leibler divergence of
    the forward pair law p_t(q) K(q -> q') from the time-reversed one p_{t+1}(q') K(q' -> q);
    in the stationary state it is 1/2 tr(G_r^-1 G) - n with G the covariance of (q, q') and G_r
    that of (q', q) (docs/hidden.md).
Hidden-state dynamics x' = g W x + s xi (docs/hidden.md, linear f with gain g, noise
Xi = s^2 I) are the case M = g W; their stationary production does not depend on s, and for a
normal M (eigenvalues lambda_k) it is sum_k 2 (Im lambda_k)^2 / (1 - |lambda_k|^2), which gives
a^2 (n - tr O^2) / (1 - a^2) for M = a O with O orthogonal or a permutation.
All entropies are in nats; rates are per unit time (continuous) or per step (discrete).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg


def _as_matrix(a, n: int | None = None) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        if n is None:
            raise ValueError("a scalar needs the dimension")
        return a * np.eye(n)
    return np.atleast_2d(a)


def gaussian_entropy(cov: np.ndarray) -> float:
    """Differential entropy 1/2 log det(2 pi e Sigma) of N(., Sigma), in nats."""
    cov = np.atleast_2d(cov)
    sign, logdet = np.linalg.slogdet(2 * np.pi * np.e * cov)
    if sign <= 0:
        raise ValueError("the covariance is not positive definite")
    return 0.5 * float(logdet)


def gaussian_kl(mean0, cov0, mean1, cov1) -> float:
    """KL(N(mean0, cov0) || N(mean1, cov1)) in nats."""
    cov0, cov1 = np.atleast_2d(cov0), np.atleast_2d(cov1)
    diff = np.asarray(mean1, dtype=np.float64) - np.asarray(mean0, dtype=np.float64)
    n = cov0.shape[0]
    solve = np.linalg.solve(cov1, np.column_stack([cov0, diff]))
    _, logdet0 = np.linalg.slogdet(cov0)
    _, logdet1 = np.linalg.slogdet(cov1)
    return 0.5 * float(np.trace(solve[:, :n]) + diff @ solve[:, n] - n + logdet1 - logdet0)


@dataclass(frozen=True)
class OrnsteinUhlenbeck:
    """dq = -B q dt + sqrt(2 D) dW in n dimensions (B need not be symmetric; D positive)."""

    drift: np.ndarray  # B (n, n)
    diffusion: np.ndarray  # D (n, n)

    @classmethod
    def langevin(cls, hessian, temperature: float, friction: float = 1.0) -> OrnsteinUhlenbeck:
        """Overdamped Langevin dynamics on U = q^T A q / 2 at temperature T."""
        a = np.atleast_2d(np.asarray(hessian, dtype=np.float64))
        return cls(a / friction, temperature / friction * np.eye(a.shape[0]))

    @property
    def stationary_covariance(self) -> np.ndarray:
        return linalg.solve_continuous_lyapunov(self.drift, 2 * self.diffusion)

    def mean(self, t: float, mean0) -> np.ndarray:
        return linalg.expm(-self.drift * t) @ np.asarray(mean0, dtype=np.float64)

    def covariance(self, t: float, cov0) -> np.ndarray:
        prop = linalg.expm(-self.drift * t)
        eq = self.stationary_covariance
        return prop @ (_as_matrix(cov0, eq.shape[0]) - eq) @ prop.T + eq

    def entropy_rate(self, cov: np.ndarray) -> float:
        """dS/dt = -tr B + tr(Sigma^-1 D) of the system entropy at covariance Sigma."""
        return float(-np.trace(self.drift) + np.trace(np.linalg.solve(cov, self.diffusion)))

    def entropy_production_rate(self, mean, cov) -> float:
        """Total entropy production rate Pi = dS/dt + dS_medium/dt >= 0."""
        mu = np.asarray(mean, dtype=np.float64)
        b, d = self.drift, self.diffusion
        bdb = b.T @ np.linalg.solve(d, b)
        return float(mu @ bdb @ mu + np.trace(bdb @ cov) - 2 * np.trace(b)
                     + np.trace(np.linalg.solve(cov, d)))  # fmt: skip


@dataclass(frozen=True)
class LinearGaussianStep:
    """q' = M q + xi, xi ~ N(0, Xi): one step of discrete linear-Gaussian dynamics."""

    transition: np.ndarray  # M (n, n)
    noise: np.ndarray  # Xi (n, n)

    @classmethod
    def sgld(cls, hessian, learning_rate: float, temperature: float, noise=None):
        """SGLD on U = q^T A q / 2: M = I - eta A, Xi = 2 eta T I, or Xi = eta^2 C for a given
        minibatch-like noise covariance C (SGD-like, possibly not commuting with A)."""
        a = np.atleast_2d(np.asarray(hessian, dtype=np.float64))
        n = a.shape[0]
        xi = 2 * learning_rate * temperature * np.eye(n) if noise is None else (
            learning_rate**2 * _as_matrix(noise, n))  # fmt: skip
        return cls(np.eye(n) - learning_rate * a, xi)

    @property
    def dim(self) -> int:
        return self.transition.shape[0]

    @property
    def stationary_covariance(self) -> np.ndarray:
        return linalg.solve_discrete_lyapunov(self.transition, self.noise)

    def propagate(self, mean, cov) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance after one step."""
        m = self.transition
        return m @ np.asarray(mean, dtype=np.float64), m @ cov @ m.T + self.noise

    def entropy_production(self, mean, cov) -> float:
        """Total entropy production of one step from N(mean, cov): the KL divergence between
        the forward pair law of (q, q') and the law of the time-reversed pair."""
        m, xi, n = self.transition, self.noise, self.dim
        mean = np.asarray(mean, dtype=np.float64)
        mean1, cov1 = self.propagate(mean, cov)
        forward = np.block([[cov, cov @ m.T], [m @ cov, cov1]])
        backward = np.block([[m @ cov1 @ m.T + xi, m @ cov1], [cov1 @ m.T, cov1]])
        mean_f = np.concatenate([mean, mean1])
        mean_b = np.concatenate([m @ mean1, mean1])
        if not np.all(np.isfinite(forward)):
            raise ValueError(f"non-finite covariance after one step (dimension {n})")
        return gaussian_kl(mean_f, forward, mean_b, backward)

    def stationary_entropy_production(self) -> float:
        """Entropy production per step in the stationary state, 1/2 tr(G_r^-1 G) - n."""
        sigma = self.stationary_covariance
        m = self.transition
        g = np.block([[sigma, sigma @ m.T], [m @ sigma, sigma]])
        g_r = np.block([[sigma, m @ sigma], [sigma @ m.T, sigma]])
        return 0.5 * float(np.trace(np.linalg.solve(g_r, g))) - self.dim

    def medium_entropy(self, q, q_next) -> np.ndarray:
        """Per-sample medium entropy ln K(q -> q') / K(q' -> q) for arrays (..., n): the exact
        transition-kernel log-ratio (docs/physics.md section 3), which needs no loss function."""
        q, q_next = np.asarray(q, dtype=np.float64), np.asarray(q_next, dtype=np.float64)
        m = self.transition
        fwd = q_next - q @ m.T
        bwd = q - q_next @ m.T
        solve_f = np.linalg.solve(self.noise, fwd[..., None])[..., 0]
        solve_b = np.linalg.solve(self.noise, bwd[..., None])[..., 0]
        return 0.5 * (np.sum(bwd * solve_b, axis=-1) - np.sum(fwd * solve_f, axis=-1))


def hidden_step(weights, noise_std: float, gain: float = 1.0) -> LinearGaussianStep:
    """Linear hidden-state dynamics x' = g W x + s xi with xi ~ N(0, I) (bias only shifts the
    mean and changes no entropy production)."""
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    return LinearGaussianStep(gain * w, noise_std**2 * np.eye(w.shape[0]))


def normal_entropy_production(eigenvalues) -> float:
    """Stationary production per step of x' = M x + s xi for a normal M with these eigenvalues
    (any s): sum_k 2 (Im lambda_k)^2 / (1 - |lambda_k|^2).  Zero for symmetric M."""
    lam = np.asarray(eigenvalues, dtype=np.complex128)
    if np.any(np.abs(lam) >= 1):
        raise ValueError("the dynamics is unstable (an eigenvalue has |lambda| >= 1)")
    return float(np.sum(2 * lam.imag**2 / (1 - np.abs(lam) ** 2)))


def orthogonal_entropy_production(contraction: float, trace_square: float, n: int) -> float:
    """W = a O with O orthogonal (a permutation, say) and tr O^2 given: a^2 (n - tr O^2) /
    (1 - a^2) per step; n a^2 / (1 - a^2) for a single n-cycle with n > 2."""
    a2 = contraction**2
    return a2 * (n - trace_square) / (1 - a2)


def ring_eigenvalues(
    ring_size: int, rings: int, contraction: float, coupling: float, coupling_matrix: np.ndarray
) -> np.ndarray:
    """Eigenvalues of W = I_D (x) a P + eps C (x) I_n (P the n-cycle shift, C a normal D x D
    matrix): a omega^j + eps c_m for every pair, since the two terms commute."""  # fmt: skip
    omega = np.exp(2j * np.pi * np.arange(ring_size) / ring_size)
    c = np.linalg.eigvals(np.atleast_2d(np.asarray(coupling_matrix, dtype=np.float64)))
    return (contraction * omega[None, :] + coupling * c[:, None]).ravel()


ENSEMBLE_TRACE_SQUARE = {"orthogonal": 1.0, "permutation": 2.0}
"""E tr O^2 over Haar-random orthogonal O (n >= 2) and over uniformly random permutations
(fixed points of P^2: E[fixed points] + 2 E[2-cycles] = 1 + 1), so the ensemble-mean production
is a^2 (n - E tr O^2) / (1 - a^2)."""


def ring_production_taylor(
    ring_size: int, rings: int, contraction: float, coupling_matrix, gain: float = 1.0
) -> tuple[float, float, float]:
    """(ep, d ep / d eps, 1/2 d^2 ep / d eps^2) at eps = 0 of the coupled rings' stationary
    production per step, W = I_D (x) a P + eps C (x) I_m, M = g W (any noise s), differentiated
    exactly (not fitted) from the normal-matrix form sum_k 2 (Im lambda_k)^2 / (1 - |lambda_k|^2)
    with lambda_k = g (a omega_j + eps c_k): so ep = c0 + c1 eps + c2 eps^2 + O(eps^3).

    Per eigenvalue pair, with A = g a, s = sin(theta_j), c_k = x + i y, u = cos(theta_j) x + s y,
    numerator N(e) = 2 (A s + e y)^2 and denominator Q(e) = 1 - A^2 - 2 A u e - |c_k|^2 e^2 in
    e = g eps: f = N / Q, f'(0) = N1 / Q0 - N0 Q1 / Q0^2 and
    f''(0) = N2 / Q0 - 2 N1 Q1 / Q0^2 - N0 Q2 / Q0^2 + 2 N0 Q1^2 / Q0^3 (Nk, Qk the k-th
    derivatives at 0).  c1 vanishes for chain couplings (their spectrum is symmetric, c -> -c).
    """
    theta = 2 * np.pi * np.arange(ring_size) / ring_size
    c = np.linalg.eigvals(np.atleast_2d(np.asarray(coupling_matrix, dtype=np.float64)))
    big_a = gain * contraction
    if not big_a < 1:
        raise ValueError("the uncoupled rings are unstable (g a >= 1)")
    s, cos = np.sin(theta)[None, :], np.cos(theta)[None, :]
    x, y = c.real[:, None], c.imag[:, None]
    u = cos * x + s * y
    n0, n1, n2 = 2 * big_a**2 * s**2, 4 * big_a * s * y, 4 * y**2
    q0, q1, q2 = 1 - big_a**2, -2 * big_a * u, -2 * (x**2 + y**2)
    f0 = n0 / q0
    f1 = n1 / q0 - n0 * q1 / q0**2
    f2 = n2 / q0 - 2 * n1 * q1 / q0**2 - n0 * q2 / q0**2 + 2 * n0 * q1**2 / q0**3
    f0, f1, f2 = (np.broadcast_to(f, u.shape).sum() for f in (f0, f1, f2))
    return float(f0), float(gain * f1), float(0.5 * gain**2 * f2)


def production_taylor(m0, m1, noise) -> tuple[float, float, float]:
    """(c0, c1, c2) of the stationary production per step of x' = (M0 + eps M1) x + xi,
    xi ~ N(0, Xi), as ep = c0 + c1 eps + c2 eps^2 + O(eps^3), by exact perturbation theory of
    the discrete Lyapunov equation (any M0, M1; no normality assumed):
        Sigma = Sigma0 + eps Sigma1 + eps^2 Sigma2,  Sigma_k = M0 Sigma_k M0^T + R_k,
        R0 = Xi, R1 = M1 S0 M0^T + M0 S0 M1^T, R2 = M1 S1 M0^T + M0 S1 M1^T + M1 S0 M1^T,
    then G = G0 + eps G1 + eps^2 G2 (and G_r likewise) and the Neumann series of G_r^-1 in
    ep = 1/2 tr(G_r^-1 G) - n."""
    from nnfield.theory.subsystems import pair_covariances

    m0 = np.atleast_2d(np.asarray(m0, dtype=np.float64))
    m1 = np.atleast_2d(np.asarray(m1, dtype=np.float64))
    xi = _as_matrix(noise, m0.shape[0])
    n = m0.shape[0]
    s0 = linalg.solve_discrete_lyapunov(m0, xi)
    s1 = linalg.solve_discrete_lyapunov(m0, m1 @ s0 @ m0.T + m0 @ s0 @ m1.T)
    s2 = linalg.solve_discrete_lyapunov(m0, m1 @ s1 @ m0.T + m0 @ s1 @ m1.T + m1 @ s0 @ m1.T)
    sig, mats = (s0, s1, s2), (m0, m1, np.zeros_like(m0))

    def lag(k):  # eps^k coefficient of Sigma M^T
        return sum(sig[i] @ mats[k - i].T for i in range(k + 1))

    g, g_r = zip(*(pair_covariances(sig[k], lag(k)) for k in range(3)), strict=True)
    inv = np.linalg.inv(g_r[0])
    a1, a2 = inv @ g_r[1], inv @ g_r[2]
    t0 = np.trace(inv @ g[0])
    t1 = np.trace(inv @ g[1]) - np.trace(a1 @ inv @ g[0])
    t2 = (np.trace(inv @ g[2]) - np.trace(a1 @ inv @ g[1])
          + np.trace((a1 @ a1 - a2) @ inv @ g[0]))  # fmt: skip
    return 0.5 * float(t0) - n, 0.5 * float(t1), 0.5 * float(t2)
