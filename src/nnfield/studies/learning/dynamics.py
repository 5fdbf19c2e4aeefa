"""Ensembles trained by noisy gradient descent on a quadratic loss, in JAX
(docs/physics.md section 3).

Dynamics (one step, every network of the ensemble independently):
    q' = q - eta A q + xi,   xi ~ N(0, Xi),
with Xi = 2 eta T I (SGLD at temperature T) or Xi = eta^2 C (SGD-like anisotropic noise).  The
loss is U = q^T A q / 2, so grad U = A q and the Laplacian is tr A.

Streaming observables, recorded every ``record_every`` steps (sums over the networks of a block,
float64), from which analysis forms means, covariances and entropies:
    q1 (p,), qq (p, p)   sums of q and q q^T (the ensemble covariance and Gaussian entropy)
    loss, loss2          sums of U and U^2
    grad2                sum of |grad U|^2 (configurational temperature <|grad U|^2> / <lap U>)
    medium, medium2      sums of the medium entropy accumulated since step 0 and its square,
                         from the exact transition-kernel log-ratio of every step (nats)
and, unsummed, q and the accumulated medium entropy of the first ``samples`` networks of each
block (per-sample total entropy production and its fluctuation theorem).
Network j of block b draws step n from fold_in(fold_in(fold_in(key, b), j), n).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from nnfield.engine.nonfinite import nonfinite_rows
from nnfield.engine.precision import require_x64
from nnfield.engine.sharding import constrain_batch


@dataclass(frozen=True)
class NoisyQuadratic:
    """q' = (I - eta A) q + xi with xi ~ N(0, Xi) on U = q^T A q / 2."""

    hessian: np.ndarray  # A (p, p), symmetric positive definite
    learning_rate: float
    noise: np.ndarray  # Xi (p, p)

    @classmethod
    def sgld(cls, hessian, learning_rate: float, temperature: float) -> NoisyQuadratic:
        a = np.atleast_2d(np.asarray(hessian, dtype=np.float64))
        return cls(a, learning_rate, 2 * learning_rate * temperature * np.eye(a.shape[0]))

    @classmethod
    def sgd(cls, hessian, learning_rate: float, noise_covariance) -> NoisyQuadratic:
        a = np.atleast_2d(np.asarray(hessian, dtype=np.float64))
        return cls(a, learning_rate, learning_rate**2 * np.atleast_2d(noise_covariance))

    @property
    def dim(self) -> int:
        return self.hessian.shape[0]

    @property
    def transition(self) -> np.ndarray:
        return np.eye(self.dim) - self.learning_rate * self.hessian


@dataclass(frozen=True)
class Recorded:
    """Per-block sums at each recorded step: arrays with leading (block, record) axes."""

    steps: np.ndarray  # (R,) step index of each record (0 = initial ensemble)
    count: np.ndarray  # (B,)
    q1: np.ndarray  # (B, R, p)
    qq: np.ndarray  # (B, R, p, p)
    loss: np.ndarray  # (B, R)
    loss2: np.ndarray
    grad2: np.ndarray
    medium: np.ndarray
    medium2: np.ndarray
    sample_state: np.ndarray  # (B, R, S, p) q of the first S networks of each block
    sample_medium: np.ndarray  # (B, R, S) their accumulated medium entropy
    nonfinite: np.ndarray  # (B,) networks whose state or medium entropy became NaN/inf
    c1: np.ndarray | None = None  # (B, R, p) sums of each network's minimum q* (disorder)
    cc: np.ndarray | None = None  # (B, R, p, p) sums of q* q*^T
    qc: np.ndarray | None = None  # (B, R, p, p) sums of q q*^T
    sample_center: np.ndarray | None = None  # (B, R, S, p) q* of the sampled networks


def _kernels(dyn):
    """(energy, gradient, step, noise numbers per step) of the dynamics as JAX functions of a
    batch of states (M, p); step(q, noise) -> (q', medium entropy of the step)."""
    if hasattr(
        dyn, "step"
    ):  # phase-space dynamics (nnfield.studies.learning.potential.HeavyBallPotential)
        return (
            lambda q: dyn.energy(q, jnp),
            lambda q: dyn.gradient(q, jnp),
            lambda q, noise: dyn.step(q, noise, jnp),
            dyn.noise_dim,
        )
    xi_root = jnp.asarray(np.linalg.cholesky(dyn.noise))
    if not isinstance(dyn, NoisyQuadratic):
        drift = lambda q: dyn.drift(q, jnp)  # noqa: E731

        def step(q, noise):
            q_next = drift(q) + noise @ xi_root.T
            return q_next, dyn.log_ratio(q, q_next, jnp)

        return lambda q: dyn.energy(q, jnp), lambda q: dyn.gradient(q, jnp), step, dyn.dim
    a = jnp.asarray(dyn.hessian)
    m = jnp.asarray(dyn.transition)
    xi_inv = jnp.asarray(np.linalg.inv(dyn.noise))

    def log_ratio(q, q_next):
        fwd = q_next - q @ m.T
        bwd = q - q_next @ m.T
        quad = lambda d: jnp.einsum("mi,ij,mj->m", d, xi_inv, d)  # noqa: E731
        return 0.5 * (quad(bwd) - quad(fwd))

    def linear_step(q, noise):
        q_next = q @ m.T + noise @ xi_root.T
        return q_next, log_ratio(q, q_next)

    return lambda q: 0.5 * jnp.einsum("mi,ij,mj->m", q, a, q), lambda q: q @ a, linear_step, dyn.dim


def make_block_function(
    dyn: NoisyQuadratic,
    mean0,
    cov0,
    block_size: int,
    n_records: int,
    record_every: int,
    samples: int = 0,
    center_cov=None,
):
    """A jitted ``(key, block) -> sums`` running ``n_records - 1`` records of ``record_every``
    steps from q0 ~ N(mean0, cov0); ``dyn`` a NoisyQuadratic, a dynamics with the interface
    of nnfield.studies.learning.potential.NoisyPotential (drift, energy, gradient, log_ratio), or
    one with its
    own ``step(q, noise)`` and ``noise_dim``
    (nnfield.studies.learning.potential.HeavyBallPotential).

    ``center_cov`` (quenched data disorder): every network has its own minimum
    q* ~ N(0, center_cov), drawn from fold_in(fold_in(network key, 0), 1), and is trained on
    U(q - q*).  The kernel is translation-equivariant, so the chain runs on r = q - q* (the
    same kernel log-ratio) and the records hold q = r + q*, plus sums of q*, q* q*^T and
    q q*^T."""
    require_x64("the learning block kernel")
    root0 = jnp.asarray(np.linalg.cholesky(np.atleast_2d(cov0)))
    mu0 = jnp.asarray(np.asarray(mean0, dtype=np.float64))
    p = dyn.dim
    energy, gradient, step, noise_dim = _kernels(dyn)

    disorder = center_cov is not None
    center_root = jnp.asarray(np.linalg.cholesky(np.atleast_2d(center_cov))) if disorder else None

    def stats(r, medium, center):
        u = energy(r)
        g = gradient(r)
        q = r + center if disorder else r
        out = (q.sum(0), q.T @ q, u.sum(), (u * u).sum(), (g * g).sum(), medium.sum(),
               (medium * medium).sum(), q[:samples], medium[:samples])  # fmt: skip
        if disorder:
            out += (center.sum(0), center.T @ center, q.T @ center, center[:samples])
        return out

    @jax.jit
    def block_sums(key, block):
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(
            jax.random.fold_in(key, block), constrain_batch(jnp.arange(block_size))
        )
        q = (
            mu0
            + jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 0), (p,)))(keys) @ root0.T
        )
        medium = jnp.zeros(block_size)
        if disorder:
            draw = jax.vmap(
                lambda k: jax.random.normal(jax.random.fold_in(jax.random.fold_in(k, 0), 1), (p,))
            )
            center = draw(keys) @ center_root.T
            q = q - center  # the chain runs on r = q - q*
        else:
            center = jnp.zeros((block_size, p))

        def one_step(n, carry):
            q, medium = carry
            noise = jax.vmap(
                lambda k: jax.random.normal(jax.random.fold_in(k, n + 1), (noise_dim,))
            )(keys)  # fmt: skip
            q_next, produced = step(q, noise)
            return q_next, medium + produced

        def record(carry, r):
            *carry, bad = carry
            start = 1 + r * record_every
            carry = jax.lax.fori_loop(start - 1, start - 1 + record_every, one_step, tuple(carry))
            return (*carry, bad | nonfinite_rows(*carry)), stats(*carry, center)

        first = stats(q, medium, center)
        init = (q, medium, nonfinite_rows(q, medium))
        (*_, bad), rest = jax.lax.scan(record, init, jnp.arange(n_records - 1))
        sums = tuple(jnp.concatenate([f[None], r]) for f, r in zip(first, rest, strict=True))
        return (*sums, jnp.sum(bad, dtype=jnp.int64))

    return block_sums


def run_blocks(
    dyn,
    mean0,
    cov0,
    key,
    blocks,
    block_size,
    n_records,
    record_every,
    progress=None,
    label="",
    samples: int = 0,
    center_cov=None,
) -> Recorded:
    """Per-block recorded sums for ``blocks``; progress lines as in nnfield.engine.progress."""
    from nnfield.engine.progress import run_with_progress

    fn = make_block_function(dyn, mean0, cov0, block_size, n_records, record_every, samples,
                             center_cov)  # fmt: skip
    out = run_with_progress(lambda b: fn(key, b), list(blocks), block_size, progress, label)
    return stack_records(out, block_size, n_records, record_every, center_cov)


def stack_records(out: list[tuple], block_size: int, n_records: int, record_every: int,
                  center_cov=None) -> Recorded:  # fmt: skip
    """The :class:`Recorded` sums of the per-block outputs of ``make_block_function``."""
    cols = [np.stack([np.asarray(o[k]) for o in out]) for k in range(len(out[0]))]
    *main, nonfinite = cols[:10] if center_cov is None else cols[:9] + cols[-1:]
    extra = cols[9:13] if center_cov is not None else []
    steps = np.arange(n_records) * record_every
    return Recorded(steps, np.full(len(out), block_size, dtype=np.int64), *main, nonfinite, *extra)
