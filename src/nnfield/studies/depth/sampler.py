"""Streaming per-layer sums of deep MLP ensembles (conventions of nnfield.studies.depth.theory).

Sampling.  Given layer l - 1, the preactivations of layer l are exactly independent across
neurons and Gaussian with the "stochastic metric" as covariance,
    G^(l)_ab = C_b + (C_W / N) sum_j phi(z^(l-1)_j;a) phi(z^(l-1)_j;b),   G^(1) = K^(1),
because the rows of W^(l) are independent Gaussians.  So z^(l) = xi R with xi ~ N(0, I) of shape
(N, n_inputs) and R R = G: N n normals per layer instead of the N^2 of the weight matrix, with the
same joint law of all layers.  Memory is O(chunk * N * n_inputs) at any depth.

Network j of block b draws layer l from fold_in(fold_in(fold_in(point_key, b), j), l).

Per block and layer l = 1 .. L (float64 sums over the networks of the block):
    g2 (L, T2)  sum of G^(l) over sorted input pairs         (E = K^(l) + O(1/N))
    g4 (L, T4)  sum of the Wick sums of G^(l), i.e. of E[z_a z_b z_c z_e | layer l - 1]:
                the conditional estimator of the 4-point function of one neuron
    z2, z4      the same from the sampled preactivations themselves, averaged over the N neurons
    logg, logg2 (L, n) sums of log G^(l)_aa and its square (heavy tails at depth ~ width),
                over networks with G_aa > 0; dead (L, n) counts the networks with G_aa = 0
    max_gg      (L, n) the largest single-network (G^(l)_aa)^2 in the block: the influence of
                one network on the kurtosis estimator (heavy-tail diagnostic; a maximum, not a sum)
    nonfinite   networks of the block with a NaN/inf statistic at some layer (float32 overflow);
                they stay in the sums, so the analysis drops the whole block and reports it
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from nnfield import activations
from nnfield import tuples as tup
from nnfield.engine.chunks import divisor_chunk
from nnfield.engine.nonfinite import nonfinite_rows
from nnfield.engine.precision import require_x64
from nnfield.engine.progress import run_with_progress
from nnfield.engine.sharding import constrain_batch

DEPTH_ACTIVATIONS = ("relu", "tanh", "erf", "gelu", "linear", "softplus", "gauss")
"""Activations of the depth study (nnfield.activations; the Gauss-net unit exp(u_a - K_aa) takes
the infinite-width kernel diagonal of its layer, studies.depth.theory)."""


MAX_FIELD = 7
"""Position of max_gg among the per-chunk statistics: combined by maximum, not by sum."""


@dataclass(frozen=True)
class DeepMLP:
    """Depth L (weight matrices), width N, activation and (C_W, C_b); inputs (n, d)."""

    activation: str
    width: int
    depth: int
    cw: float
    cb: float
    dtype: str = "float32"

    def __post_init__(self):
        require_x64("a deep MLP ensemble")
        activations.get(self.activation, DEPTH_ACTIVATIONS)  # ValueError naming the known ones
        if self.depth < 1 or self.width < 1:
            raise ValueError(f"depth and width must be >= 1, got {self.depth}, {self.width}")


@dataclass(frozen=True)
class LayerSums:
    """Per-block sums, each array with a leading block axis."""

    count: np.ndarray  # (B,)
    g2: np.ndarray  # (B, L, T2)
    g4: np.ndarray  # (B, L, T4)
    z2: np.ndarray  # (B, L, T2)
    z4: np.ndarray  # (B, L, T4)
    logg: np.ndarray  # (B, L, n)
    logg2: np.ndarray  # (B, L, n)
    dead: np.ndarray  # (B, L, n) networks with G_aa = 0 (no log; every later layer is 0 too)
    max_gg: np.ndarray  # (B, L, n) largest single-network G_aa^2 in the block
    nonfinite: np.ndarray  # (B,) networks with a NaN/inf statistic at some layer (sums include
    # them: the analysis drops such blocks, since earlier layers were summed before it showed)


def _sqrt_psd(g: jax.Array) -> jax.Array:
    """Symmetric square root of a batch of PSD matrices (..., n, n)."""
    vals, vecs = jnp.linalg.eigh(g)
    return (vecs * jnp.sqrt(jnp.clip(vals, 0))[..., None, :]) @ jnp.swapaxes(vecs, -1, -2)


def make_block_function(mlp: DeepMLP, inputs: np.ndarray, block_size: int):
    """A jitted ``(point_key, block_index) -> per-layer sums`` for one block of networks."""
    require_x64("the depth block kernel")
    x = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
    n = x.shape[0]
    plan = tup.product_plan(n)
    wick = tup.wick_plan(n)
    k1 = mlp.cb + mlp.cw * (x @ x.T) / x.shape[1]
    root1 = jnp.asarray(_sqrt_psd(jnp.asarray(k1)), dtype=mlp.dtype)
    act = activations.get(mlp.activation)

    def phi(u, c):  # c: the layer's kernel diagonal, used only by the Gauss-net unit
        return act.jax_at(c)(u)

    offsets = jnp.zeros((mlp.depth, n))
    if mlp.activation == "gauss":
        from nnfield.studies.depth.theory import deep_theory

        th = deep_theory("gauss", x, mlp.depth, mlp.cw, mlp.cb)
        offsets = jnp.asarray(np.diagonal(th.K, axis1=1, axis2=2))
    dtype = jnp.dtype(mlp.dtype)
    width, depth = mlp.width, mlp.depth
    chunk = divisor_chunk(block_size, 4 * width * n)
    n_chunks = block_size // chunk
    a2, b2 = jnp.asarray(plan["a2"]), jnp.asarray(plan["b2"])
    a4, b4 = jnp.asarray(plan["a4"]), jnp.asarray(plan["b4"])
    pair4 = jnp.asarray(wick["pair4"])

    def layer_stats(g, z):
        """Sums over the chunk of the layer statistics: g (M, n, n) float64, z (M, N, n)."""
        s2 = g[:, a2, b2]  # (M, T2)
        w4 = jnp.sum(s2[:, pair4[..., 0]] * s2[:, pair4[..., 1]], axis=-1)  # (M, T4)
        zz = z[:, :, a2] * z[:, :, b2]  # (M, N, T2)
        z4 = jnp.mean(zz[:, :, a4] * zz[:, :, b4], axis=1, dtype=jnp.float64)
        gdiag = jnp.diagonal(g, axis1=1, axis2=2)
        dead = gdiag <= 0  # every unit of the previous layer off (ReLU, C_b = 0): G = 0 on
        diag = jnp.where(dead, 0.0, jnp.log(jnp.where(dead, 1.0, gdiag)))
        z2 = jnp.mean(zz, axis=1, dtype=jnp.float64)
        dead_count = dead.sum(0, dtype=jnp.float64)
        sq = gdiag.astype(jnp.float64) ** 2
        sums = (s2.sum(0), w4.sum(0), z2.sum(0), z4.sum(0), diag.sum(0), (diag * diag).sum(0),
                dead_count, jnp.max(jnp.where(jnp.isfinite(sq), sq, 0.0), axis=0))  # fmt: skip
        return sums, nonfinite_rows(s2, w4, z2, z4, diag)

    def chunk_sums(keys):
        def draw(k, layer):
            return jax.random.normal(jax.random.fold_in(k, layer), (width, n), dtype=dtype)

        z = jax.vmap(lambda k: draw(k, 1))(keys) @ root1  # (M, N, n)
        g = jnp.broadcast_to(jnp.asarray(k1), (keys.shape[0], n, n))
        first, bad = layer_stats(g, z)

        def step(carry, layer):
            z, bad = carry
            h = phi(z, offsets[layer - 2].astype(z.dtype))  # z is layer - 1
            gram = jnp.einsum("mia,mib->mab", h, h, preferred_element_type=jnp.float64)
            g = mlp.cb + (mlp.cw / width) * gram
            xi = jax.vmap(draw, in_axes=(0, None))(keys, layer)
            z_next = jnp.einsum("mia,mab->mib", xi, _sqrt_psd(g).astype(dtype))
            sums, bad_here = layer_stats(g, z_next)
            return (z_next, bad | bad_here), sums

        (_, bad), rest = jax.lax.scan(step, (z, bad), jnp.arange(2, depth + 1))
        layers = tuple(
            jnp.concatenate([f[None], r], axis=0) for f, r in zip(first, rest, strict=True)
        )
        return (*layers, jnp.sum(bad, dtype=jnp.float64))

    @jax.jit
    def block_sums(point_key, block_index):
        block_key = jax.random.fold_in(point_key, block_index)

        def body(c, acc):
            index = constrain_batch(c * chunk + jnp.arange(chunk))
            keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(block_key, index)
            new = chunk_sums(keys)
            combined = [a + s for a, s in zip(acc, new, strict=True)]
            combined[MAX_FIELD] = jnp.maximum(acc[MAX_FIELD], new[MAX_FIELD])
            return tuple(combined)

        t2, t4 = len(plan["a2"]), len(plan["a4"])
        shapes = [(depth, t2), (depth, t4), (depth, t2), (depth, t4), (depth, n), (depth, n),
                  (depth, n), (depth, n), ()]  # fmt: skip
        init = tuple(jnp.zeros(s) for s in shapes)
        return jax.lax.fori_loop(0, n_chunks, body, init)

    return block_sums


def run_blocks(
    mlp: DeepMLP,
    inputs: np.ndarray,
    point_key: jax.Array,
    blocks: Iterable[int],
    block_size: int,
    progress: Callable[[str], None] | None = None,
    label: str = "",
) -> LayerSums:
    """Per-layer sums for each block in ``blocks``; a progress line about every 10 seconds."""
    blocks = list(blocks)
    fn = make_block_function(mlp, inputs, block_size)
    out = run_with_progress(lambda b: fn(point_key, b), blocks, block_size, progress, label)
    return stack_layer_sums(out, block_size)


def stack_layer_sums(out: list[tuple], block_size: int) -> LayerSums:
    """The :class:`LayerSums` of the per-block outputs of ``make_block_function``, in order."""
    cols = [np.stack([np.asarray(r[k]) for r in out]) for k in range(9)]
    count = np.full(len(out), block_size, dtype=np.int64)
    return LayerSums(count, *cols[:8], cols[8].astype(np.int64))
