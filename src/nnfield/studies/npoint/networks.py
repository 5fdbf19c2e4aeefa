"""Single-hidden-layer architectures in JAX: parameter sampling and forward pass.

Conventions (docs/physics.md section 1):
f(x) = b1 + sum_i W1_i h_i(x), h_i(x) = phi(W0_i . x + b0_i),
W0 ~ N(0, sw0^2/d), b0 ~ N(0, sb0^2), W1 ~ N(0, sw1^2/N), b1 ~ N(0, sb1^2).
Gauss-net: h_i(x) = exp(W0_i . x + b0_i - k(x, x)) with k(x, x) = sb0^2 + sw0^2 |x|^2/d, i.e. the
exponential divided by sqrt(exp(2 k(x, x))).

Every network draws its parameters from its own key, as one standard-normal vector of length
N (d + 2) + 1 laid out [W0 (N x d, row-major) | b0 (N) | W1 (N) | b1 (1)].

Two priors beyond that (docs/physics.md sections 7 and 8):
- cos-net (an activation with a uniform phase, nnfield.activations): b0 = pi (2 Phi(z) - 1) from
  the same standard normal z, so b0 ~ U(-pi, pi) exactly and the key layout is unchanged;
- shared readout scale (``scale_shape`` a): W1_i = s g_i with s^2 ~ Gamma(a, scale 1/a) drawn
  once per network from fold_in(network key, 1), the same draw for both estimators.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import jax.scipy.special

from nnfield import activations
from nnfield.engine.precision import require_x64

ACTIVATIONS = activations.SINGLE_LAYER


@dataclass(frozen=True)
class SingleLayer:
    """Shape and prior of a single-hidden-layer network; inputs have shape (n_inputs, d)."""

    arch: str
    width: int
    input_dim: int
    sw0: float = 1.0
    sb0: float = 1.0
    sw1: float = 1.0
    sb1: float = 1.0
    dtype: str = "float32"
    scale_shape: float | None = None  # shared readout scale s^2 ~ Gamma(a, 1/a); None: s = 1

    def __post_init__(self):
        require_x64("a single-layer network ensemble")
        if self.arch not in ACTIVATIONS:
            raise ValueError(f"unknown architecture {self.arch!r}; known: {', '.join(ACTIVATIONS)}")

    @property
    def n_params(self) -> int:
        return self.width * (self.input_dim + 2) + 1

    def outputs(self, key: jax.Array, inputs: jax.Array) -> jax.Array:
        """f(x) for one network drawn from ``key`` at every input: shape (n_inputs,)."""
        n, d = self.width, self.input_dim
        dtype = jnp.dtype(self.dtype)
        z = jax.random.normal(key, (self.n_params,), dtype=dtype)
        w0 = z[: n * d].reshape(n, d) * (self.sw0 / d**0.5)
        b0 = self._bias(z[n * d : n * d + n])
        w1 = z[n * d + n : n * d + 2 * n] * (self.sw1 / n**0.5)
        if self.scale_shape is not None:
            w1 = w1 * jnp.sqrt(self._scale_squared(key, dtype))
        b1 = z[-1] * self.sb1
        x = inputs.astype(dtype)
        pre = w0 @ x.T + b0[:, None]  # (N, n_inputs)
        h = self.hidden(pre, x)
        return w1 @ h + b1

    def conditional_covariance(self, key: jax.Array, inputs: jax.Array) -> jax.Array:
        """Covariance of f given the hidden layer, S_ab = sb1^2 + (sw1^2/N) sum_i h_i(a) h_i(b).

        Conditional on the first layer, f is exactly a zero-mean Gaussian with covariance S, so
        E[f_a f_b f_c f_e | h] = S_ab S_ce + S_ac S_be + S_ae S_bc (the conditional estimator,
        docs/physics.md section 1).  Only the first layer is drawn: one standard-normal vector of
        length N (d + 1) laid out [W0 (N x d, row-major) | b0 (N)].  Shape (n_inputs, n_inputs),
        float64.
        """
        n, d = self.width, self.input_dim
        dtype = jnp.dtype(self.dtype)
        z = jax.random.normal(key, (n * (d + 1),), dtype=dtype)
        w0 = z[: n * d].reshape(n, d) * (self.sw0 / d**0.5)
        b0 = self._bias(z[n * d :])
        x = inputs.astype(dtype)
        h = self.hidden(w0 @ x.T + b0[:, None], x)  # (N, n_inputs)
        gram = jnp.matmul(h.T, h, preferred_element_type=jnp.float64)
        if self.scale_shape is not None:
            gram = gram * self._scale_squared(key, dtype).astype(jnp.float64)
        return self.sb1**2 + (self.sw1**2 / n) * gram

    def _bias(self, z: jax.Array) -> jax.Array:
        """First-layer biases from standard normals z: sb0 z, or the cos-net's uniform phase
        pi (2 Phi(z) - 1)."""
        if activations.REGISTRY[self.arch].uniform_phase:
            return jnp.pi * (2 * jax.scipy.special.ndtr(z) - 1)
        return z * self.sb0

    def _scale_squared(self, key: jax.Array, dtype) -> jax.Array:
        """The network's shared readout scale s^2 ~ Gamma(a, scale 1/a), from fold_in(key, 1)."""
        a = self.scale_shape
        return jax.random.gamma(jax.random.fold_in(key, 1), a, dtype=dtype) / a

    def hidden(self, pre: jax.Array, x: jax.Array) -> jax.Array:
        """Hidden-unit values from preactivations (N, n_inputs) at inputs x (n_inputs, d)."""
        act = activations.REGISTRY[self.arch]
        if not act.normalised:
            return act.jax(pre)
        k_xx = self.sb0**2 + self.sw0**2 * jnp.sum(x * x, axis=1) / self.input_dim
        return act.jax_at(k_xx[None, :])(pre)
