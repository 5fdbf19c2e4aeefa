"""The quadratic problems of the learning study: dynamics, Hessian, initial ensemble and
stationary law of a point's parameters (shared by sample and analyze)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

INITIAL = {"narrow": (1.0, 0.01**2), "broad": (0.0, 9.0)}
"""Initial ensembles: (mean of every coordinate, variance of every coordinate); ``gibbs`` is
N(0, T A^-1), the continuous-time equilibrium (``initial_ensemble``)."""


def problem(p: Mapping):
    """(NoisyQuadratic dynamics, Hessian A, temperature or NaN) of a point's parameters."""
    from nnfield.studies.learning.dynamics import NoisyQuadratic

    eig = np.asarray(p["hessian_eigenvalues"], dtype=np.float64)
    dim = eig.size
    rot = np.eye(dim)
    if dim >= 2:
        c, s = np.cos(p["rotation"]), np.sin(p["rotation"])
        rot[:2, :2] = [[c, -s], [s, c]]
    hessian = rot @ np.diag(eig) @ rot.T
    if p["optimizer"] == "sgld":
        dyn = NoisyQuadratic.sgld(hessian, p["learning_rate"], p["temperature"])
        return dyn, hessian, float(p["temperature"])
    dyn = NoisyQuadratic.sgd(hessian, p["learning_rate"], np.diag(p["noise_eigenvalues"]))
    return dyn, hessian, float("nan")


def initial_ensemble(p: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the initial ensemble of a quadratic point."""
    dim = len(p["hessian_eigenvalues"])
    if p["initial"] == "gibbs":
        _, hessian, temp = problem(p)
        return np.zeros(dim), temp * np.linalg.inv(hessian)
    mean, var = INITIAL[p["initial"]]
    return np.full(dim, mean), var * np.eye(dim)


def center_covariance(p: Mapping) -> np.ndarray | None:
    """Covariance C* = data_disorder A^-1 of each network's own minimum q* (None: no disorder).

    This is the linear student U = |X theta - y|^2 / (2n) with fixed inputs (X^T X / n = A) and
    labels drawn per network, y = X w + noise of variance sigma^2: its minimum
    theta* = A^-1 X^T y / n scatters with covariance (sigma^2 / n) A^-1 around w, so
    data_disorder = sigma^2 / n, and q measures theta from the teacher w (w = 0 here: a common
    shift changes no entropy or information).  U depends on y only through theta*, so
    y -> q* -> q_t is a Markov chain and I(q_t; y) = I(q_t; q*)."""
    if not p.get("data_disorder"):
        return None
    _, hessian, _ = problem(p)
    return float(p["data_disorder"]) * np.linalg.inv(hessian)


def stationary_covariance(p: Mapping) -> np.ndarray:
    """Covariance of the discrete chain's own stationary law (mean 0): the solution of
    Sigma = M Sigma M^T + Xi; for SGLD T A^-1 (I - eta A/2)^-1."""
    from nnfield.theory.thermo import LinearGaussianStep

    dyn, _, _ = problem(p)
    return LinearGaussianStep(dyn.transition, dyn.noise).stationary_covariance
