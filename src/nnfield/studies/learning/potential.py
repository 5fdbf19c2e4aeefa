"""A non-quadratic loss with an exact reference: the harmonic trap with a Gaussian barrier.

    U(q) = q^T A q / 2 + h exp(-q_0^2 / (2 w^2)),
    grad U = A q - (h q_0 / w^2) exp(-q_0^2 / (2 w^2)) e_0,

in one or two dimensions (A symmetric positive definite, h = ``barrier`` >= 0 the height of the
bump, w = ``barrier_width`` its width, acting on the first coordinate).  With h / w^2 > A_00 the
first coordinate has two wells; with A not diagonal the two coordinates are coupled, so the
two-dimensional density does not factorise.  U grows quadratically, so SGLD is stable for
eta * max curvature < 2 from any start (unlike a quartic double well).

SGLD, one step:  q' = m(q) + sqrt(2 eta T) xi,  m(q) = q - eta grad U(q),  xi ~ N(0, I).  Its
medium entropy per step is the exact kernel log-ratio
    ln K(q -> q') - ln K(q' -> q) = (|q - m(q')|^2 - |q' - m(q)|^2) / (4 eta T)   (nats),
which for a non-quadratic U is not a function of q and q' through U alone: the chain breaks
detailed balance even in one dimension, and its stationary law is not exp(-U / T).
nnfield.studies.learning.grid_chain propagates the density of this chain exactly on a grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnfield.engine.precision import require_x64


@dataclass(frozen=True)
class BarrierPotential:
    """U(q) = q^T A q / 2 + h exp(-q_0^2 / (2 w^2)) on q of dimension 1 or 2."""

    hessian: np.ndarray  # A (d, d), symmetric positive definite
    barrier: float  # h
    barrier_width: float  # w

    def __post_init__(self):
        require_x64("a barrier potential")
        if self.hessian.shape[0] not in (1, 2):
            raise ValueError("the barrier potential is for one or two dimensions")

    @property
    def dim(self) -> int:
        return self.hessian.shape[0]

    def energy(self, q, xp=np):
        """U at points q (..., d)."""
        quad = 0.5 * xp.einsum("...i,ij,...j->...", q, xp.asarray(self.hessian), q)
        return quad + self.barrier * xp.exp(-(q[..., 0] ** 2) / (2 * self.barrier_width**2))

    def gradient(self, q, xp=np):
        """grad U at points q (..., d)."""
        bump = self.barrier * xp.exp(-(q[..., 0] ** 2) / (2 * self.barrier_width**2))
        g = q @ xp.asarray(self.hessian)  # A symmetric
        extra = -bump * q[..., 0] / self.barrier_width**2
        if xp is np:
            g = g.copy()
            g[..., 0] += extra
            return g
        return g.at[..., 0].add(extra)

    def laplacian(self, q, xp=np):
        """The Laplacian of U at points q (..., d)."""
        w2 = self.barrier_width**2
        bump = self.barrier * xp.exp(-(q[..., 0] ** 2) / (2 * w2))
        return float(np.trace(self.hessian)) + bump * (q[..., 0] ** 2 / w2 - 1) / w2

    def max_curvature(self) -> float:
        """An upper bound on the largest eigenvalue of the Hessian of U (stability: eta times it
        below 2): max eig A + h / w^2 * max_u (u^2 - 1) e^{-u^2/2} = 2 e^{-3/2} h / w^2."""
        return float(np.linalg.eigvalsh(self.hessian)[-1]) + 2 * np.exp(-1.5) * (
            self.barrier / self.barrier_width**2
        )


@dataclass(frozen=True)
class NoisyPotential:
    """SGLD q' = q - eta grad U(q) + sqrt(2 eta T) xi on a BarrierPotential (the interface of
    nnfield.studies.learning.dynamics.NoisyQuadratic: drift, energy, gradient, kernel log-ratio)."""

    potential: BarrierPotential
    learning_rate: float
    temperature: float

    @property
    def dim(self) -> int:
        return self.potential.dim

    @property
    def noise(self) -> np.ndarray:
        return 2 * self.learning_rate * self.temperature * np.eye(self.dim)

    def drift(self, q, xp=np):
        """m(q) = q - eta grad U(q) at points q (..., d)."""
        return q - self.learning_rate * self.potential.gradient(q, xp)

    def energy(self, q, xp=np):
        return self.potential.energy(q, xp)

    def gradient(self, q, xp=np):
        return self.potential.gradient(q, xp)

    def laplacian(self, q, xp=np):
        return self.potential.laplacian(q, xp)

    def log_ratio(self, q, q_next, xp=np):
        """Medium entropy of the steps q -> q_next (..., d): the exact kernel log-ratio."""
        fwd = q_next - self.drift(q, xp)
        bwd = q - self.drift(q_next, xp)
        scale = 4 * self.learning_rate * self.temperature
        return (xp.sum(bwd * bwd, axis=-1) - xp.sum(fwd * fwd, axis=-1)) / scale


@dataclass(frozen=True)
class HeavyBallPotential:
    """Momentum training with thermal noise on a one-dimensional BarrierPotential: BAOAB in the
    heavy-ball parametrisation of nnfield.studies.learning.teacher_student (learning rate eta,
    momentum beta).

    The state is the phase-space point z = (q, p) (last axis); one step, h = sqrt(2 eta / (1 +
    beta)):
        B  p <- p - (h/2) U'(q);   A  q <- q + (h/2) p;
        O  p <- beta p + sqrt((1 - beta^2) T) xi;   A;   B,
    whose noiseless position update is q' = q - eta U'(q) + beta (q - q_prev).  B and A are
    volume-preserving and reversible under the momentum flip, so the medium entropy of a step
    is that of the O step alone, (|p_before|^2 - |p_after|^2) / (2T) (nats).  The energy is
    H = U(q) + p^2 / 2; its stationary law is not exp(-H / T) for a non-quadratic U (the
    splitting's shadow work), and nnfield.studies.learning.grid_chain.PhaseSpaceChain propagates its
    density exactly on a (q, p) grid."""

    potential: BarrierPotential
    learning_rate: float
    temperature: float
    momentum: float

    noise_dim = 1
    """Gaussian numbers drawn per step (the O step's xi)."""

    def __post_init__(self):
        require_x64("the heavy-ball dynamics")
        if self.potential.dim != 1:
            raise ValueError("momentum on a barrier potential is one-dimensional (a 2-D phase "
                             "space grid)")  # fmt: skip
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum beta = {self.momentum} must be in [0, 1)")

    @property
    def dim(self) -> int:
        return 2

    @property
    def step_size(self) -> float:
        """h = sqrt(2 eta / (1 + beta))."""
        return float(np.sqrt(2 * self.learning_rate / (1 + self.momentum)))

    @property
    def kick_std(self) -> float:
        """Standard deviation sqrt((1 - beta^2) T) of the O step's noise."""
        return float(np.sqrt((1 - self.momentum**2) * self.temperature))

    def energy(self, z, xp=np):
        """H = U(q) + p^2 / 2 at points z (..., 2)."""
        return self.potential.energy(z[..., :1], xp) + 0.5 * z[..., 1] ** 2

    def gradient(self, z, xp=np):
        """grad H = (U'(q), p) at points z (..., 2)."""
        return xp.concatenate([self.potential.gradient(z[..., :1], xp), z[..., 1:]], axis=-1)

    def laplacian(self, z, xp=np):
        """The Laplacian of H, U''(q) + 1."""
        return self.potential.laplacian(z[..., :1], xp) + 1.0

    def step(self, z, xi, xp=np):
        """One BAOAB step of points z (..., 2) with O-step numbers xi (..., 1): (z', medium
        entropy of the step in nats)."""
        h, grad = self.step_size, self.potential.gradient
        q, p = z[..., :1], z[..., 1:]
        p = p - 0.5 * h * grad(q, xp)
        q = q + 0.5 * h * p
        before = p
        p = self.momentum * p + self.kick_std * xi
        medium = (before[..., 0] ** 2 - p[..., 0] ** 2) / (2 * self.temperature)
        q = q + 0.5 * h * p
        p = p - 0.5 * h * grad(q, xp)
        return xp.concatenate([q, p], axis=-1), medium
