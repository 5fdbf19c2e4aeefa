"""Noisy hidden-state dynamics of many networks in parallel, in JAX (docs/hidden.md).

One step of network j (weights W_j, bias b_j quenched):
    x' = f(W x + b) + s xi,  xi ~ N(0, I_n),  f(u) = g u (linear) or tanh(g u),
so the kernel is Gaussian around f(W x + b) and the medium entropy of a step is the bulk-loss
difference [H(x | x') - H(x' | x)] / s^2 with H(y | x) = |y - f(W x + b)|^2 / 2 (nats).
A block of networks runs ``burn_in`` unrecorded steps from its initial states (x = 0 unless
given), then ``time_blocks`` blocks of
``block_steps`` measured steps.  Per network, returned to the host (sums in float64):
    medium (T_b,)          medium entropy summed over each time block
    system (T_b,)          ln p(x at its start) - ln p(x at its end), the system term of the
                           stochastic entropy production, with p the network's stationary
                           density: exact for linear f (given by the caller), otherwise the
                           Gaussian fitted to the network's own measured states x_0 .. x_T.
                           Its time average is 0 in the stationary state, so it does not bias
                           the production; it removes the telescoping part of the medium term
                           (for symmetric W, the whole of it)
    annealed_total (T_b,), annealed_medium (T_b,)   (only with mixture components) the same
                           for the annealed process, whose one-step kernel mixes the components
                           (W not conditioned on): per step ln p(x, x') / p(x', x) with
                           p(x, x') = sum_c p_c(x) K_c(x -> x') / C, p_c exact stationary
                           Gaussians, and its part without ln p_mix(x) - ln p_mix(x')
    xbar1 (D,), xbar2 (D, D), xbar_lag (D, D)   time sums of the subsystem averages
                           x̄_t = A x_t, of x̄_t x̄_t^T and of x̄_t x̄_{t+1}^T
    current_sq (D, D)      time sum of j_t^2, j_t = x̄^mu_t x̄^nu_{t+1} - x̄^nu_t x̄^mu_{t+1} the
                           one-step current of subsystems mu, nu
    finite                 whether every recorded number of the network is finite
    spacetime (L+1, R, r)  (only with lags L > 0) C_j(k, tau) = sum over measured steps t and
                           sites i of y_{j,i}(t - tau) y_{j,i+k mod r}(t), / (steps r): the
                           space-time correlation of mode j, y_j = sum_mu V_{j mu} x_mu, x_mu
                           the r = n / R neurons of ring mu (R = 1: the whole state is one
                           ring, V = [[1]]), accumulated as cross spectra of the FFTs of the
                           last L + 1 states (kept from the burn-in on, so every measured step
                           has all its lags; burn_in >= L)
    kick (4,)              (only with kick K > 0) over the kicks: their count, the sums of
                           d and d^2 with d = ln |v| - c, and the shift c (the network's first
                           ln |v|, so that the spread is summed without cancellation); v =
                           J_{t+K-1} ... J_t e_0 the response K steps after a unit kick of
                           neuron 0 at step t (a new kick every K measured steps), J =
                           d f(g (W x + b)) / dx the tangent map along the network's own
                           trajectory (for linear f, g W whatever the state); v is renormalised
                           every step and ln |v| accumulated (no underflow)
Memory is O(networks x n^2) per block, whatever the trajectory length.  Step t of a block draws
its noise from fold_in(fold_in(key, block), t) for the whole block at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from nnfield import activations
from nnfield.engine.precision import require_x64

ACTIVATIONS = ("linear", "tanh")


@dataclass(frozen=True)
class Trajectories:
    """Per-network results of a set of blocks, arrays with leading (block, member) axes."""

    medium: np.ndarray  # (B, M, T_b)
    system: np.ndarray  # (B, M, T_b)
    annealed_total: np.ndarray | None  # (B, M, T_b)
    annealed_medium: np.ndarray | None
    xbar1: np.ndarray  # (B, M, D)
    xbar2: np.ndarray  # (B, M, D, D)
    xbar_lag: np.ndarray  # (B, M, D, D)
    current_sq: np.ndarray  # (B, M, D, D)
    finite: np.ndarray  # (B, M) bool


def _gaussian_log_density(x, mean, prec, logdet):
    """ln N(x; mean, Sigma) for x (..., n) with Sigma^-1 = prec and ln det Sigma = logdet."""
    d = x - mean
    n = x.shape[-1]
    return -0.5 * (
        jnp.einsum("...i,...ij,...j->...", d, prec, d) + logdet + n * jnp.log(2 * jnp.pi)
    )


@lru_cache(maxsize=16)
def make_block_function(
    neurons: int,
    subsystems: int,
    block_size: int,
    time_blocks: int,
    block_steps: int,
    burn_in: int,
    activation: str,
    components: int = 0,
    dtype=jnp.float32,
    lags: int = 0,
    cone_rings: int = 1,
    kick: int = 0,
):
    """A jitted ``(key, block, weights, bias, gain, noise_std, averaging, density, comp,
    initial, modes) -> tuple``.

    weights (M, n, n), bias (M, n), averaging (D, n), initial (M, n) the states x_0 before the
    burn-in; ``density`` = (mean (M, n), precision
    (M, n, n), logdet (M,)) of each network's exact stationary Gaussian, or None to fit one to
    the trajectory; ``comp`` = (W_c (C, n, n), mean_c (C, n), precision_c (C, n, n), logdet_c
    (C,)) of the mixture components (ignored when ``components`` is 0).  Gain and noise are
    traced, so one compilation serves every point of the same shapes.  With ``lags`` L > 0
    the tuple ends with the space-time correlation (M, L + 1, R, n / R) after ``finite``, R =
    ``cone_rings`` and ``modes`` the (R, R) matrix V whose rows are the modes; with ``kick``
    K > 0 it ends with the kick sums (M, 4).
    """
    require_x64("the hidden block kernel")
    phi = activations.get(activation, ACTIVATIONS).jax  # f(u) = phi(g u)
    n, m = neurons, block_size
    steps = time_blocks * block_steps

    def drift(w, b, x, gain):
        u = jnp.einsum("mij,mj->mi", w, x) + b
        return phi(gain * u)

    @jax.jit
    def run(key, block, weights, bias, gain, noise_std, averaging, density, comp, initial, modes):
        w = weights.astype(dtype)
        b = bias.astype(dtype)
        gain = jnp.asarray(gain, dtype)
        s = jnp.asarray(noise_std, dtype)
        key = jax.random.fold_in(key, block)
        inv2s2 = 1.0 / (2.0 * jnp.asarray(noise_std, jnp.float64) ** 2)
        comp_w, comp_mean, comp_prec, comp_logdet = comp

        def comp_drift(x):  # (C, M, n): f(W_c x + b) for every component, in float64 so
            # that the annealed pair law's symmetry holds to float64 rounding at any dtype
            u = jnp.einsum("cij,mj->cmi", comp_w, x.astype(jnp.float64)) + bias[None]
            g64 = gain.astype(jnp.float64)
            return phi(g64 * u)

        def comp_logp(x):  # (C, M)
            return _gaussian_log_density(
                x[None].astype(jnp.float64), comp_mean[:, None], comp_prec[:, None],
                comp_logdet[:, None],
            )  # fmt: skip

        def advance(t, x, u):
            xi = jax.random.normal(jax.random.fold_in(key, t), (m, n), dtype)
            x1 = u + s * xi
            return x1, drift(w, b, x1, gain)

        def push(hist, x):  # FFTs of the modes of the last L + 1 states, newest first
            rings = x.astype(jnp.float64).reshape(m, cone_rings, n // cone_rings)
            y = jnp.einsum("jd,mdr->mjr", modes.astype(jnp.float64), rings)
            new = jnp.fft.fft(y, axis=-1)[:, None]
            return jnp.concatenate([new, hist[:, :-1]], axis=1)

        def burn(t, carry):
            x, u, hist = carry
            x1, u1 = advance(t, x, u)
            return x1, u1, push(hist, x1) if lags else hist

        x0 = initial.astype(dtype)
        shape = (m, lags + 1, cone_rings, n // cone_rings)
        hist0 = (push(jnp.zeros(shape, jnp.complex128), x0) if lags
                 else jnp.zeros((), jnp.complex128))  # fmt: skip
        x, u, hist = jax.lax.fori_loop(0, burn_in, burn, (x0, drift(w, b, x0, gain), hist0))
        kick0 = jnp.zeros((m, n), dtype).at[:, 0].set(1.0)  # a unit kick of neuron 0
        # (history, cross spectra, tangent direction, ln |v| since the kick, kick sums)
        cone = (hist, jnp.zeros_like(hist), kick0, jnp.zeros(m, jnp.float64),
                jnp.zeros((m, 4), jnp.float64))  # fmt: skip
        uc = comp_drift(x) if components else None
        d = averaging.shape[0]
        zeros_d = jnp.zeros((m, d), jnp.float64)
        fit = density is None
        x64 = x.astype(jnp.float64)
        moments = (x64, x64[:, :, None] * x64[:, None, :]) if fit else ()
        xbar = (zeros_d, jnp.zeros((m, d, d)), jnp.zeros((m, d, d)), jnp.zeros((m, d, d)))

        def measured(t, carry):
            x, u, uc, sums, moments, xbar, cone = carry
            x1, u1 = advance(t, x, u)
            if lags:  # cross[tau] += conj(X(t + 1 - tau)) X(t + 1), in Fourier space
                hist = push(cone[0], x1)
                cone = (hist, cone[1] + jnp.conj(hist) * hist[:, :1], *cone[2:])
            if kick:  # record the response K steps after the last kick, then kick again
                v, lnv, acc = cone[2:]
                due = (t - burn_in) % kick == 0
                record = due & (t > burn_in)
                shift = jnp.where(record & (acc[:, 0] == 0), lnv, acc[:, 3])
                d = lnv - shift
                row = jnp.stack([jnp.ones_like(d), d, d * d], -1)
                acc = jnp.concatenate([acc[:, :3] + jnp.where(record, row, 0.0), shift[:, None]],
                                      -1)  # fmt: skip
                v = jnp.where(due, kick0, v)
                lnv = jnp.where(due, 0.0, lnv)
                _, v = jax.jvp(lambda y: drift(w, b, y, gain), (x,), (v,))
                norm = jnp.sqrt(jnp.sum(v.astype(jnp.float64) ** 2, -1))
                v = v / norm[:, None].astype(v.dtype)
                cone = (*cone[:2], v, lnv + jnp.log(norm), acc)
            x64, x164 = x.astype(jnp.float64), x1.astype(jnp.float64)
            fwd = jnp.sum((x164 - u.astype(jnp.float64)) ** 2, -1)
            bwd = jnp.sum((x64 - u1.astype(jnp.float64)) ** 2, -1)
            med, ann_t, ann_m = sums
            med = med + (bwd - fwd) * inv2s2
            if components:
                uc1 = comp_drift(x1)
                lp0, lp1 = comp_logp(x), comp_logp(x1)
                f_c = lp0 - jnp.sum((x164[None] - uc.astype(jnp.float64)) ** 2, -1) * inv2s2
                b_c = lp1 - jnp.sum((x64[None] - uc1.astype(jnp.float64)) ** 2, -1) * inv2s2
                lse = jax.scipy.special.logsumexp
                total = lse(f_c, axis=0) - lse(b_c, axis=0)
                ann_t = ann_t + total
                ann_m = ann_m + total - (lse(lp0, axis=0) - lse(lp1, axis=0))
            else:
                uc1 = uc
            if fit:  # states x_1 .. x_T (x_0 is in the initial value)
                m1, m2 = moments
                moments = (m1 + x164, m2 + x164[:, :, None] * x164[:, None, :])
            xb0, xb1 = x64 @ averaging.T, x164 @ averaging.T
            s1, s2, lag, jsq = xbar
            pair = xb0[:, :, None] * xb1[:, None, :]
            xbar = (s1 + xb1, s2 + xb1[:, :, None] * xb1[:, None, :], lag + pair,
                    jsq + (pair - jnp.swapaxes(pair, 1, 2)) ** 2)  # fmt: skip
            return x1, u1, uc1, (med, ann_t, ann_m), moments, xbar, cone

        def time_block(carry, r):
            x, u, uc, moments, xbar, cone = carry
            zero = jnp.zeros(m, jnp.float64)
            start = burn_in + r * block_steps
            x1, u1, uc1, sums, moments, xbar, cone = jax.lax.fori_loop(
                start, start + block_steps, measured,
                (x, u, uc, (zero, zero, zero), moments, xbar, cone),
            )  # fmt: skip
            return (x1, u1, uc1, moments, xbar, cone), (*sums, x1)

        (_, _, _, moments, xbar, cone), (med, ann_t, ann_m, ends) = jax.lax.scan(
            time_block, (x, u, uc, moments, xbar, cone), jnp.arange(time_blocks)
        )
        if fit:  # Gaussian fitted to the network's measured states x_0 .. x_T
            mean = moments[0] / (steps + 1)
            cov = moments[1] / (steps + 1) - mean[:, :, None] * mean[:, None, :]
            chol = jnp.linalg.cholesky(cov)
            eye = jnp.broadcast_to(jnp.eye(n), cov.shape)
            prec = jax.scipy.linalg.cho_solve((chol, True), eye)
            logdet = 2 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), -1)
        else:
            mean, prec, logdet = density
        states = jnp.concatenate([x[None], ends]).astype(jnp.float64)  # (T_b + 1, M, n)
        logp = _gaussian_log_density(states, mean[None], prec[None], logdet[None])
        system = logp[:-1] - logp[1:]
        out = (med.T, system.T, ann_t.T, ann_m.T, *xbar)
        finite = jnp.all(jnp.isfinite(med), 0) & jnp.all(jnp.isfinite(system), 0)
        extra = ()
        if lags:
            spacetime = jnp.real(jnp.fft.ifft(cone[1], axis=-1)) / (steps * (n // cone_rings))
            finite = finite & jnp.all(jnp.isfinite(spacetime), (1, 2, 3))
            extra += (spacetime,)
        if kick:
            finite = finite & jnp.all(jnp.isfinite(cone[4]), -1)
            extra += (cone[4],)
        return (*out, finite, *extra)

    return run


def component_densities(components: np.ndarray, gain: float, noise_std: float):
    """(W_c, mean_c, precision_c, logdet_c) of the exact stationary Gaussians of linear
    dynamics x' = g W_c x + s xi (zero bias), for the annealed estimator."""
    from nnfield.theory.thermo import hidden_step

    comps = np.asarray(components, dtype=np.float64)
    covs = np.stack([hidden_step(w, noise_std, gain).stationary_covariance for w in comps])
    precs = np.linalg.inv(covs)
    logdets = np.linalg.slogdet(covs)[1]
    return comps, np.zeros(comps.shape[:2]), precs, logdets


def no_components(neurons: int):
    """Placeholder component arrays (one dummy component) when no annealed value is wanted."""
    n = neurons
    return np.zeros((1, n, n)), np.zeros((1, n)), np.eye(n)[None], np.zeros(1)
