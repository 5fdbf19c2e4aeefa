"""Thermodynamics seen by subsystems: Gaussian lag-1 pair laws of a stationary process
(docs: the hidden study's subsystem section).

A stationary process z_t in D dimensions with mean m, equal-time covariance C0 = Cov(z_t, z_t)
and lag-1 covariance C1 = Cov(z_t, z_{t+1}) (so E[z_t z_{t+1}^T] = C1 + m m^T) has the Gaussian
pair law N((m, m), G) of (z_t, z_{t+1}) with G = [[C0, C1], [C1^T, C0]]; its time reverse
(z_{t+1}, z_t) has G_r = [[C0, C1^T], [C1, C0]].  For a Gaussian process these are exact;
otherwise they are the Gaussian estimates.  Every function takes arrays with any leading batch
axes (..., D, D); results are in nats per step.

- pair_law_production: KL(forward pair law || reverse pair law) = 1/2 tr(G_r^-1 G) - D
  (det G = det G_r).  For a Markov z it is z's entropy production per step; for a coarse-grained
  z (not Markov) it is a lower bound on the production of the process that generates it.
- information_flow: l_mu = I(z^mu_{t+1}; z^rest_t) - I(z^mu_t; z^rest_t), how much subsystem
  mu's own update changes its mutual information with the others (Horowitz and Esposito, PRX 4,
  031015, 2014, whose flow is the continuous-time limit dt -> 0 of this difference per dt).  In
  discrete time all subsystems update at once, so sum_mu l_mu need not vanish.
- current_moments: mean and variance of the one-step current
  j = z^mu_t z^nu_{t+1} - z^nu_t z^mu_{t+1} (antisymmetric under time reversal of the pair).
- Uncertainty relation: for any current odd under time reversal of the pair, the fluctuation
  theorem of the pair law gives Var(j) / <j>^2 >= 2 / (exp(sigma) - 1), sigma the pair-law KL of
  the variables j depends on, or of any set containing them (a larger set has a larger KL, a
  weaker bound).  This is the discrete-time form of Proesmans and Van den Broeck (EPL 119,
  20001, 2017) and of Hasegawa and Van Vu (PRL 123, 110602, 2019); the tight form is
  csch^2(h(sigma / 2)), h the inverse of x tanh x (Timpanaro et al., PRL 123, 090604, 2019).
  The continuous-time form 2 / sigma is not a bound in discrete time.
"""

from __future__ import annotations

import numpy as np


def pair_covariances(c0: np.ndarray, c1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(G, G_r): covariances (..., 2D, 2D) of (z_t, z_{t+1}) and of (z_{t+1}, z_t)."""
    c1t = np.swapaxes(c1, -1, -2)
    forward = np.concatenate([np.concatenate([c0, c1], -1), np.concatenate([c1t, c0], -1)], -2)
    reverse = np.concatenate([np.concatenate([c0, c1t], -1), np.concatenate([c1, c0], -1)], -2)
    return forward, reverse


def pair_law_production(c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """KL of the Gaussian pair law from its time reverse, 1/2 tr(G_r^-1 G) - D (nats/step)."""
    g, g_r = pair_covariances(np.asarray(c0, np.float64), np.asarray(c1, np.float64))
    d = np.shape(c0)[-1]
    return 0.5 * np.trace(np.linalg.solve(g_r, g), axis1=-2, axis2=-1) - d


def gaussian_mutual_information(cov: np.ndarray, first: np.ndarray) -> np.ndarray:
    """I(u; v) = 1/2 ln(det C_uu det C_vv / det C) of a Gaussian vector (u, v) with covariance
    ``cov`` (..., K, K); ``first`` is a boolean (K,) mask of the u components."""
    first = np.asarray(first, dtype=bool)
    logdet = lambda a: np.linalg.slogdet(a)[1]  # noqa: E731
    cu = cov[..., first, :][..., :, first]
    cv = cov[..., ~first, :][..., :, ~first]
    return 0.5 * (logdet(cu) + logdet(cv) - logdet(cov))


def information_flow(c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """(..., D) information flows l_mu (nats per step) of every subsystem (see the module
    docstring), Gaussian."""
    g, _ = pair_covariances(np.asarray(c0, np.float64), np.asarray(c1, np.float64))
    d = np.shape(c0)[-1]
    flows = []
    for mu in range(d):
        rest = [k for k in range(d) if k != mu]
        mask = np.zeros(d, dtype=bool)
        mask[mu] = True
        # (z^mu_{t+1}, z^rest_t): rows D + mu and rest of G; (z^mu_t, z^rest_t): of C0
        idx = [d + mu, *rest]
        later = g[..., idx, :][..., :, idx]
        now = np.asarray(c0, np.float64)
        flows.append(gaussian_mutual_information(later, np.r_[True, np.zeros(d - 1, bool)])
                     - gaussian_mutual_information(now, mask))  # fmt: skip
    return np.stack(flows, -1)


def current_form(d: int, mu: int, nu: int) -> np.ndarray:
    """Symmetric Q (2D, 2D) with j = z^T Q z for z = (z_t, z_{t+1}) and
    j = z^mu_t z^nu_{t+1} - z^nu_t z^mu_{t+1}."""
    q = np.zeros((2 * d, 2 * d))
    q[mu, d + nu] = q[d + nu, mu] = 0.5
    q[nu, d + mu] = q[d + mu, nu] = -0.5
    return q


def current_moments(c0: np.ndarray, c1: np.ndarray, mu: int, nu: int):
    """(mean, variance) of the one-step current j of the pair (mu, nu) for a stationary Gaussian
    process with zero mean (Isserlis: E j = tr(Q G), Var j = 2 tr(Q G Q G))."""
    g, _ = pair_covariances(np.asarray(c0, np.float64), np.asarray(c1, np.float64))
    q = current_form(np.shape(c0)[-1], mu, nu)
    qg = q @ g
    return np.trace(qg, axis1=-2, axis2=-1), 2 * np.trace(qg @ qg, axis1=-2, axis2=-1)


def uncertainty_product(variance, mean, production) -> np.ndarray:
    """Var(j) / <j>^2 x (exp(sigma) - 1) / 2: at least 1 by the discrete-time uncertainty
    relation (sigma the mean production of the pair law j depends on, or any larger one)."""
    return np.asarray(variance) / np.asarray(mean) ** 2 * np.expm1(production) / 2
