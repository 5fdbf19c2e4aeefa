"""One registry of activations: every sampler and theory module takes its maps from here.

An entry carries, for one activation phi:
- ``jax``: the elementwise JAX map (samplers; gradients where a trainer differentiates it);
- ``numpy``: the same map in NumPy (quadrature of the theory);
- ``derivative``: phi' in NumPy (the depth recursions' NTK needs it);
- ``kinks``: the preactivation values where phi is not smooth (quadrature panels must end
  there; u = 0 for ReLU);
- ``unit_m2``: E[phi(u_x) phi(u_y)] for jointly Gaussian (u_x, u_y) with variances kx, ky and
  covariance k (the single-layer GP kernel over sw1^2): a closed form where one exists, else
  (softplus) a tensor Gauss-Hermite rule;
- ``normalised``: the Gauss-net unit exp(u - K_xx), which also takes the preactivation
  variance K_xx of its input (``offset``); every other entry ignores the offset;
- ``phase_m2``: set for an activation whose single-layer prior draws the first-layer bias as a
  uniform phase, b0 ~ U(-pi, pi), instead of N(0, sb0^2) (the cos-net): E[phi(u_x) phi(u_y)]
  averaged over that phase, with (kx, ky, k) the covariance of the weight part W0 . x alone.
  ``unit_m2`` keeps the Gaussian-preactivation contract (the depth recursions use it).

Conventions follow docs/physics.md sections 1 and 2.  ``tests/test_activations.py`` checks, for
every entry, that the sampled E[phi phi] agrees with the theory (closed form and quadrature) and
that ``derivative`` is the derivative of ``numpy``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import erf as _np_erf
from scipy.special import expit as _expit

SQRT2 = np.sqrt(2.0)


@dataclass(frozen=True)
class Activation:
    """One activation; see the module docstring for the fields."""

    name: str
    jax: Callable
    numpy: Callable
    derivative: Callable
    kinks: tuple[float, ...] = ()
    unit_m2: Callable | None = None
    normalised: bool = False
    closed_form: bool = False  # unit_m2 is a closed form (cheap over many point pairs)
    phase_m2: Callable | None = None  # uniform-phase bias prior (cos-net); see module docstring

    @property
    def uniform_phase(self) -> bool:
        """The single-layer prior draws b0 ~ U(-pi, pi) (docs/physics.md section 7)."""
        return self.phase_m2 is not None

    def jax_at(self, offset=0.0) -> Callable:
        """The JAX map at a layer whose preactivation variance is ``offset`` (Gauss-net only)."""
        if self.normalised:
            import jax.numpy as jnp

            return lambda u: jnp.exp(u - offset)
        return self.jax

    def numpy_at(self, offset=0.0) -> tuple[Callable, Callable]:
        """(phi, phi') in NumPy at preactivation variance ``offset`` (Gauss-net only)."""
        if self.normalised:
            return (lambda u: np.exp(u - offset)), (lambda u: np.exp(u - offset))
        return self.numpy, self.derivative


def _jax_relu(u):
    import jax

    return jax.nn.relu(u)


def _jax_tanh(u):
    import jax.numpy as jnp

    return jnp.tanh(u)


def _jax_erf(u):
    import jax.scipy.special

    return jax.scipy.special.erf(u)


def _jax_gelu(u):
    import jax

    return jax.nn.gelu(u, approximate=False)


def _jax_softplus(u):
    import jax

    return jax.nn.softplus(u)


def _jax_cos(u):
    import jax.numpy as jnp

    return jnp.cos(u)


def _cos_m2(k, kx, ky):
    """Gaussian (u_x, u_y): E[cos u_x cos u_y] = exp(-(kx + ky)/2) cosh(k)."""
    return np.exp(-0.5 * _pairwise(np.add, kx, ky)) * np.cosh(k)


def _cos_phase_m2(k, kx, ky):
    """Uniform phase b: E[cos(u_x + b) cos(u_y + b)] = exp(-(kx + ky - 2 k)/2) / 2, a function
    of the weights' increment variance only (translation invariant for W0 . x)."""
    return 0.5 * np.exp(-0.5 * _pairwise(np.add, kx, ky) + k)


def _softplus(u):
    return np.logaddexp(0.0, u)


def _jax_gauss(u):
    import jax.numpy as jnp

    return jnp.exp(u)


def _pairwise(op: np.ufunc, kx, ky):
    """``op`` of every (kx, ky) pair: the outer table for point sets kx (n,), ky (m,), as the
    closed forms are called by ``theory.kernels``; elementwise for scalars."""
    return op.outer(kx, ky) if np.ndim(kx) else op(kx, ky)


def _relu_m2(k, kx, ky):
    """Arc-cosine kernel of degree 1: sqrt(kx ky) (sin t + (pi - t) cos t) / (2 pi)."""
    norm = np.sqrt(_pairwise(np.multiply, kx, ky))
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norm > 0, k / norm, 1.0)
    theta = np.arccos(np.clip(cos, -1.0, 1.0))
    return norm * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)


def _erf_m2(k, kx, ky):
    """(2/pi) arcsin(2 k / sqrt((1 + 2 kx)(1 + 2 ky)))."""
    arg = 2 * k / np.sqrt(_pairwise(np.multiply, 1 + 2 * kx, 1 + 2 * ky))
    return (2 / np.pi) * np.arcsin(np.clip(arg, -1.0, 1.0))


def _gauss_m2(k, kx, ky):
    """Gauss-net unit exp(u - K_xx): E = exp(k - (kx + ky)/2)."""
    return np.exp(k - 0.5 * _pairwise(np.add, kx, ky))


def _linear_m2(k, kx, ky):
    return np.asarray(k, dtype=np.float64)


def _hermite_m2(phi: Callable, nodes: int = 64, chunk: int = 2048) -> Callable:
    """E[phi(u_x) phi(u_y)] by a tensor Gauss-Hermite rule (``nodes`` per dimension), for
    smooth activations without a closed form: u_x = sqrt(kx) z1,
    u_y = sqrt(ky) (rho z1 + sqrt(1 - rho^2) z2), rho = k / sqrt(kx ky).  Broadcasts like the
    closed forms (kx (n,), ky (m,) give (n, m)); about 1e-12 for softplus at kx, ky <= 4."""
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / np.sqrt(2 * np.pi)
    z1, z2 = (g.ravel() for g in np.meshgrid(z, z, indexing="ij"))
    weights = np.outer(w, w).ravel()

    def m2(k, kx, ky):
        k = np.asarray(k, dtype=np.float64)
        sx, sy = np.sqrt(kx), np.sqrt(ky)
        sxy = _pairwise(np.multiply, sx, sy)
        if np.ndim(kx):  # per pair, as sxy
            sx, sy = np.broadcast_arrays(sx[:, None], sy[None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.clip(np.where(sxy > 0, k / sxy, 0.0), -1.0, 1.0)
        flat = [np.ravel(np.broadcast_to(a, k.shape)) for a in (sx, sy, rho)]
        out = np.empty(k.size)
        for start in range(0, k.size, chunk):
            sxc, syc, rc = (a[start : start + chunk, None] for a in flat)
            ux = sxc * z1
            uy = syc * (rc * z1 + np.sqrt(1 - rc * rc) * z2)
            out[start : start + chunk] = (phi(ux) * phi(uy)) @ weights
        return out.reshape(k.shape)

    return m2


def _gelu(u):
    return 0.5 * u * (1 + _np_erf(u / SQRT2))


def _gelu_prime(u):
    return 0.5 * (1 + _np_erf(u / SQRT2)) + u * np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi)


REGISTRY: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation(
            "relu",
            _jax_relu,
            lambda u: np.maximum(u, 0.0),
            lambda u: (u > 0).astype(float),
            kinks=(0.0,),
            unit_m2=_relu_m2,
            closed_form=True,
        ),
        Activation("tanh", _jax_tanh, np.tanh, lambda u: 1 - np.tanh(u) ** 2),
        Activation(
            "erf",
            _jax_erf,
            _np_erf,
            lambda u: 2 / np.sqrt(np.pi) * np.exp(-u * u),
            unit_m2=_erf_m2,
            closed_form=True,
        ),
        Activation("gelu", _jax_gelu, _gelu, _gelu_prime),
        Activation(
            "linear", lambda u: u, lambda u: u, np.ones_like, unit_m2=_linear_m2, closed_form=True
        ),
        Activation(
            "cos",
            _jax_cos,
            np.cos,
            lambda u: -np.sin(u),
            unit_m2=_cos_m2,
            closed_form=True,
            phase_m2=_cos_phase_m2,
        ),
        Activation("softplus", _jax_softplus, _softplus, _expit, unit_m2=_hermite_m2(_softplus)),
        Activation(
            "gauss",
            _jax_gauss,
            np.exp,
            np.exp,
            unit_m2=_gauss_m2,
            normalised=True,
            closed_form=True,
        ),
    )
}
"""Every activation nnfield knows, by name."""

SINGLE_LAYER = ("relu", "erf", "gauss", "softplus", "cos")
"""The npoint study's activations (the schema's enum of ``arch``): those whose finite-width
correlators are tested against Monte Carlo (tests/test_statistical.py).  Any entry with a
``unit_m2`` has the exact theory: a new one needs its name here, in the schema, and its test."""


def zero_at_origin(name: str) -> bool:
    """phi(0) = 0 (relu, erf): a unit whose preactivation variance is 0 is then 0 itself."""
    act = REGISTRY[name]
    return not act.normalised and float(act.numpy(np.float64(0.0))) == 0.0


def get(name: str, allowed: tuple[str, ...] | None = None) -> Activation:
    """The registry entry ``name``; ValueError naming the known ones (or ``allowed``) if not."""
    known = allowed if allowed is not None else tuple(REGISTRY)
    if name not in known or name not in REGISTRY:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(known)}")
    return REGISTRY[name]
