"""Exact per-network variance of the brute and conditional G4_conn estimators (single layer).

Conventions (docs/physics.md section 1, nnfield.studies.npoint.sampler,
nnfield.studies.npoint.analyze).
For a colex-sorted
4-tuple t = (a, b, c, e) with the pairings P = (ab|ce), (ac|be), (ae|bc), a study forms
G4_conn = mean(P4) - sum_P mean(P2_x) mean(P2_y) over M networks, where per network
  brute:        P2_ab = f_a f_b,   P4 = f_a f_b f_c f_e,
  conditional:  P2_ab = S_ab,      P4 = sum_P S_x S_y,
with S_ab = sb1^2 + (sw1^2/N) sum_i h_i(a) h_i(b) the covariance of f given the hidden layer.
For large M its variance is Var(psi)/M with the delta-method influence function
  psi = P4 - sum_P (K_y P2_x + K_x P2_y),   K = exact G2 (the GP kernel, at every N).

Write S = K + w D with w = sw1^2 and D_p = (1/N) sum_i Y_i,p, Y_i,p = h_i(p1) h_i(p2) - E[...],
iid over units.  Then
  psi_cond = -sum_P K_x K_y + w^2 sum_P D_x D_y,  so  Var_cond = w^4 Var(sum_P D_x D_y) = O(1/N^2),
  Var_brute = Var_cond + E[Var(psi_brute | S)]  (law of total variance, f | S ~ N(0, S)),
and Var(. | S) is the Wick sum over the pairings of both copies' positions that connect them.
Joint moments of D: E[prod_{r in R} D_pr] = sum over set partitions pi of R without singletons of
(N)_|pi| / N^|R| prod_{B in pi} E[prod_{r in B} Y_pr], (N)_k the falling factorial, and
E[prod Y] expands into one-unit moments of the concatenated inputs (nnfield.theory.unit_moments),
up to order 8 (for erf, to the accuracy of its quadrature rule, UnitMoments.accuracy).  No 1/N
expansion is made: the values are exact at every width.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from nnfield import tuples as tup
from nnfield.theory.unit_moments import UnitMoments

PAIRINGS4 = ((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))
# the 6 linear terms of psi: (positions of P2, positions of its coefficient K)
LINEAR = tuple(term for x, y in PAIRINGS4 for term in ((x, y), (y, x)))


def _set_partitions(items: Sequence[int]) -> Iterator[list[tuple[int, ...]]]:
    """All set partitions of ``items`` (Bell(n) of them), blocks as tuples."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest):
        yield [(first,), *part]
        for i, block in enumerate(part):
            yield [*part[:i], (first, *block), *part[i + 1 :]]


@cache
def _pair_partitions(k: int) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """Set partitions of range(k) without singleton blocks (E[Y] = 0 kills the others)."""
    return tuple(tuple(p) for p in _set_partitions(tuple(range(k))) if all(len(b) > 1 for b in p))


@cache
def _cross_pairings(n_left: int, n_right: int) -> np.ndarray:
    """Perfect matchings of n_left + n_right positions with at least one pair joining the two
    groups, shape (n_matchings, (n_left + n_right) / 2, 2)."""
    out = [
        m
        for m in tup.pairings(tuple(range(n_left + n_right)))
        if any((i < n_left) != (j < n_left) for i, j in m)
    ]
    return np.array(out, dtype=np.int64)


def _falling_ratio(width: float, n_blocks: int, n_factors: int) -> float:
    """(N)_n_blocks / N^n_factors; at N = inf only the empty product survives."""
    if np.isinf(width):
        return 1.0 if n_blocks == n_factors else 0.0
    return float(np.prod([(width - j) / width for j in range(n_blocks)])) / width ** (
        n_factors - n_blocks
    )


class _UnitTable:
    """One-unit moments E[prod_j h(x_{row_j})], looked up by unsorted index rows and computed
    lazily: only the multisets a computation asks for (quadrature of all 8-fold moments of many
    inputs would take minutes), each once."""

    def __init__(self, units: UnitMoments, n_inputs: int):
        if n_inputs**8 >= 2**63:
            raise ValueError(f"{n_inputs} inputs overflow the int64 code of an 8-fold tuple")
        self.units, self.n = units, n_inputs
        self.keys: dict[int, np.ndarray] = {}  # per order: sorted codes of the known multisets
        self.values: dict[int, np.ndarray] = {}

    def _encode(self, rows: np.ndarray) -> np.ndarray:
        return rows @ (self.n ** np.arange(rows.shape[-1], dtype=np.int64))

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """E[prod_j h(x_rows[..., j])], shape rows.shape[:-1]."""
        k = rows.shape[-1]
        if k == 0:
            return np.ones(rows.shape[:-1])
        flat = np.sort(rows.reshape(-1, k), axis=1)
        code = self._encode(flat)
        keys = self.keys.get(k, np.empty(0, dtype=np.int64))
        pos = np.minimum(np.searchsorted(keys, code), max(keys.size - 1, 0))
        missing = keys[pos] != code if keys.size else np.ones(code.shape, dtype=bool)
        if missing.any():
            new, first = np.unique(code[missing], return_index=True)
            values = self.units.moments(flat[missing][first])
            keys = np.concatenate([keys, new])
            order = np.argsort(keys)
            self.keys[k] = keys[order]
            self.values[k] = np.concatenate([self.values.get(k, np.empty(0)), values])[order]
            pos = np.searchsorted(self.keys[k], code)
        return self.values[k][pos].reshape(rows.shape[:-1])


@dataclass(frozen=True)
class EstimatorVariance:
    """Exact per-network Var(psi) on every colex 4-tuple, shape (T4,) each; the variance of
    G4_conn from M networks is Var(psi) / M for large M."""

    width: float
    brute: np.ndarray
    conditional: np.ndarray

    @property
    def ratio(self) -> np.ndarray:
        """Var_brute / Var_conditional: how many more networks brute force needs."""
        return self.brute / self.conditional


class G4ConnEstimatorVariance:
    """Width-independent ingredients (one-unit moments up to order 8) for one prior and inputs
    (n_inputs, d); ``at_width`` evaluates the exact variances at any width (np.inf: the GP)."""

    def __init__(
        self,
        arch: str,
        inputs: np.ndarray,
        sw0: float,
        sb0: float,
        sw1: float,
        sb1: float,
    ):
        units = UnitMoments(arch, inputs, sw0, sb0)
        self.n_inputs = units.inputs.shape[0]
        self.table = _UnitTable(units, self.n_inputs)
        self.s, self.w = sb1**2, sw1**2
        self.tuples = tup.sorted_tuples(self.n_inputs, 4)

    def _kernel(self, pairs: np.ndarray) -> np.ndarray:
        return self.s + self.w * self.table(pairs)

    def _centered(self, pairs: np.ndarray) -> np.ndarray:
        """E[prod_r Y_{pairs[..., r, :]}] for one unit, pairs (..., b, 2)."""
        b = pairs.shape[-2]
        minus_m = -self.table(pairs)  # (..., b)
        out = np.zeros(pairs.shape[:-2])
        for size in range(b + 1):
            for keep in itertools.combinations(range(b), size):
                rest = [r for r in range(b) if r not in keep]
                rows = pairs[..., list(keep), :].reshape(*pairs.shape[:-2], 2 * size)
                out += self.table(rows) * np.prod(minus_m[..., rest], axis=-1)
        return out

    def _d_moment(self, pairs: np.ndarray, width: float) -> np.ndarray:
        """E[prod_r D_{pairs[..., r, :]}], pairs (..., k, 2)."""
        k = pairs.shape[-2]
        out = np.zeros(pairs.shape[:-2])
        for partition in _pair_partitions(k):
            coef = _falling_ratio(width, len(partition), k)
            if coef == 0.0:
                continue
            term = np.full(pairs.shape[:-2], coef)
            for block in partition:
                term = term * self._centered(pairs[..., list(block), :])
            out += term
        return out

    def _s_moment(self, pairs: np.ndarray, width: float) -> np.ndarray:
        """E[prod_r S_{pairs[..., r, :]}] with S = K + w D, pairs (..., k, 2)."""
        k = pairs.shape[-2]
        kern = self._kernel(pairs)  # (..., k)
        out = np.zeros(pairs.shape[:-2])
        for size in range(k + 1):
            if size == 1:  # E[D] = 0
                continue
            for fluct in itertools.combinations(range(k), size):
                rest = [r for r in range(k) if r not in fluct]
                d = self._d_moment(pairs[..., list(fluct), :], width) if size else 1.0
                out += self.w**size * d * np.prod(kern[..., rest], axis=-1)
        return out

    def _conditional_cov(self, left: np.ndarray, right: np.ndarray, width: float) -> np.ndarray:
        """E over S of Cov(prod f_left, prod f_right | S) for f | S ~ N(0, S): the Wick sum over
        the matchings joining the two groups.  left (..., n_l), right (..., n_r) input indices."""
        lead = np.broadcast_shapes(left.shape[:-1], right.shape[:-1])
        idx = np.concatenate(
            [
                np.broadcast_to(left, lead + left.shape[-1:]),
                np.broadcast_to(right, lead + right.shape[-1:]),
            ],
            axis=-1,
        )
        match = _cross_pairings(left.shape[-1], right.shape[-1])  # (n_m, k, 2)
        pairs = idx[..., match]  # (..., n_m, k, 2)
        return self._s_moment(pairs, width).sum(axis=-1)

    def at_width(self, width: float) -> EstimatorVariance:
        """Exact Var(psi) of both estimators at hidden width ``width`` (float('inf') allowed)."""
        t = self.tuples
        # conditional: w^4 Var(Q), Q = sum_P D_x D_y
        quad = t[:, np.array(PAIRINGS4)]  # (T, 3, 2, 2): the two pairs of every pairing
        q_mean = self._d_moment(quad, width).sum(axis=1)
        both = np.concatenate([np.repeat(quad, 3, axis=1), np.tile(quad, (1, 3, 1, 1))], axis=2)
        q_sq = self._d_moment(both, width).sum(axis=1)  # both: (T, 9, 4, 2), every (P, P')
        conditional = self.w**4 * (q_sq - q_mean**2)
        # brute: add E[Var(psi_brute | S)], psi_brute = F4 - sum_j c_j F2_j
        f2 = t[:, np.array([p for p, _ in LINEAR])]  # (T, 6, 2) inputs of each P2
        coef = self._kernel(t[:, np.array([c for _, c in LINEAR])])  # (T, 6)
        gap = self._conditional_cov(t, t, width)
        gap = gap - 2 * np.sum(coef * self._conditional_cov(t[:, None, :], f2, width), axis=1)
        cross = self._conditional_cov(f2[:, :, None, :], f2[:, None, :, :], width)  # (T, 6, 6)
        gap = gap + np.einsum("tj,tl,tjl->t", coef, coef, cross)
        return EstimatorVariance(width, conditional + gap, conditional)


def g4_conn_estimator_variance(
    arch: str,
    inputs: np.ndarray,
    width: float,
    sw0: float = 1.0,
    sb0: float = 1.0,
    sw1: float = 1.0,
    sb1: float = 1.0,
) -> EstimatorVariance:
    """Exact per-network Var(psi) of the brute and conditional G4_conn estimators on every colex
    4-tuple of ``inputs`` (n_inputs, d) at hidden width ``width``."""
    return G4ConnEstimatorVariance(arch, inputs, sw0, sb0, sw1, sb1).at_width(width)
