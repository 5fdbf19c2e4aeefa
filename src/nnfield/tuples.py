"""Sorted input-index tuples for symmetric correlators.

A k-point function G_k(x_{i1}, ..., x_{ik}) of a symmetric ensemble depends only on the multiset
{i1, ..., ik}, so it is stored once per non-decreasing tuple i1 <= ... <= ik.  Tuples are
enumerated in *colex* order (compare the largest index first), which has one useful property: the
tuples over inputs {0..n-1} are exactly the first C(n+k-1, k) tuples over any larger input set,
so datasets with different numbers of inputs share one tuple coordinate.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np


@cache
def sorted_tuples(n_inputs: int, order: int) -> np.ndarray:
    """All non-decreasing index tuples of length ``order`` over ``range(n_inputs)``, colex order.

    Returns an int array of shape (n_tuples, order); rows are sorted ascending.
    """
    rows = list(itertools.combinations_with_replacement(range(n_inputs), order))
    rows.sort(key=lambda t: t[::-1])
    out = np.array(rows, dtype=np.int64).reshape(len(rows), order)
    out.flags.writeable = False
    return out


def tuple_position(order: int, tuples: np.ndarray) -> dict[tuple[int, ...], int]:
    """Map each tuple (as a Python tuple) to its row index."""
    return {tuple(int(i) for i in row): r for r, row in enumerate(tuples)}


@cache
def product_plan(n_inputs: int) -> dict[str, np.ndarray]:
    """Index arrays to build all 2-, 4- and 6-fold monomials from cheaper ones.

    With f of shape (..., n_inputs):
      P2 = f[..., a2] * f[..., b2]
      P4 = P2[..., a4] * P2[..., b4]     (first two and last two indices of each 4-tuple)
      P6 = P4[..., a6] * P2[..., b6]     (first four and last two indices of each 6-tuple)
    """
    t2, t4, t6 = (sorted_tuples(n_inputs, k) for k in (2, 4, 6))
    pos2 = tuple_position(2, t2)
    pos4 = tuple_position(4, t4)
    return {
        "a2": t2[:, 0].copy(),
        "b2": t2[:, 1].copy(),
        "a4": np.array([pos2[(r[0], r[1])] for r in t4.tolist()], dtype=np.int64),
        "b4": np.array([pos2[(r[2], r[3])] for r in t4.tolist()], dtype=np.int64),
        "a6": np.array([pos4[tuple(r[:4])] for r in t6.tolist()], dtype=np.int64),
        "b6": np.array([pos2[(r[4], r[5])] for r in t6.tolist()], dtype=np.int64),
    }


def pairings(items: tuple[int, ...]) -> list[list[tuple[int, int]]]:
    """All perfect matchings of ``items`` (by position): 3 for 4 items, 15 for 6."""
    if not items:
        return [[]]
    first, rest = items[0], items[1:]
    out = []
    for j, partner in enumerate(rest):
        remaining = rest[:j] + rest[j + 1 :]
        for tail in pairings(remaining):
            out.append([(first, partner), *tail])
    return out


def four_two_splits(items: tuple[int, ...]) -> list[tuple[tuple[int, ...], tuple[int, int]]]:
    """The 15 ways to split 6 positions into a group of 4 and a pair."""
    out = []
    for pair in itertools.combinations(items, 2):
        quad = tuple(i for i in items if i not in pair)
        out.append((quad, pair))
    return out


@cache
def wick_plan(n_inputs: int) -> dict[str, np.ndarray]:
    """Index arrays (into the colex tuple lists) for Wick sums over 4- and 6-tuples.

    pair4   (T4, 3, 2): the 2-tuples of each of the 3 pairings of every 4-tuple
    pair6   (T6, 15, 3): the 2-tuples of each of the 15 pairings of every 6-tuple
    quad6   (T6, 15):   the 4-tuple of each (4|2) split of every 6-tuple
    rest6   (T6, 15):   the 2-tuple of each (4|2) split
    """
    t2, t4, t6 = (sorted_tuples(n_inputs, k) for k in (2, 4, 6))
    pos2 = tuple_position(2, t2)
    pos4 = tuple_position(4, t4)

    def p2(a: int, b: int) -> int:
        return pos2[(min(a, b), max(a, b))]

    pair4 = np.array(
        [[[p2(r[i], r[j]) for i, j in m] for m in pairings((0, 1, 2, 3))] for r in t4.tolist()],
        dtype=np.int64,
    ).reshape(len(t4), 3, 2)
    six = (0, 1, 2, 3, 4, 5)
    pair6 = np.array(
        [[[p2(r[i], r[j]) for i, j in m] for m in pairings(six)] for r in t6.tolist()],
        dtype=np.int64,
    ).reshape(len(t6), 15, 3)
    splits = four_two_splits(six)
    quad6 = np.array(
        [[pos4[tuple(sorted(r[i] for i in q))] for q, _ in splits] for r in t6.tolist()],
        dtype=np.int64,
    ).reshape(len(t6), 15)
    rest6 = np.array(
        [[p2(r[p[0]], r[p[1]]) for _, p in splits] for r in t6.tolist()], dtype=np.int64
    ).reshape(len(t6), 15)
    return {"pair4": pair4, "pair6": pair6, "quad6": quad6, "rest6": rest6}


def wick4(g2: np.ndarray, n_inputs: int) -> np.ndarray:
    """Sum over the 3 pairings of G2 G2 for every 4-tuple; g2 has the tuple axis last."""
    p = wick_plan(n_inputs)["pair4"]
    return (g2[..., p[..., 0]] * g2[..., p[..., 1]]).sum(axis=-1)


def wick6(g2: np.ndarray, n_inputs: int) -> np.ndarray:
    """Sum over the 15 pairings of G2 G2 G2 for every 6-tuple."""
    p = wick_plan(n_inputs)["pair6"]
    return (g2[..., p[..., 0]] * g2[..., p[..., 1]] * g2[..., p[..., 2]]).sum(axis=-1)


def split42(g4: np.ndarray, g2: np.ndarray, n_inputs: int) -> np.ndarray:
    """Sum over the 15 (4|2) splits of G4 G2 for every 6-tuple."""
    p = wick_plan(n_inputs)
    return (g4[..., p["quad6"]] * g2[..., p["rest6"]]).sum(axis=-1)


def connected4(g4: np.ndarray, g2: np.ndarray, n_inputs: int) -> np.ndarray:
    """Connected 4-point function of a zero-mean field: G4 - sum_3 G2 G2."""
    return g4 - wick4(g2, n_inputs)


def connected6(g6: np.ndarray, g4: np.ndarray, g2: np.ndarray, n_inputs: int) -> np.ndarray:
    """Connected 6-point function of a zero-mean field: G6 - sum_15 G4 G2 + 2 sum_15 G2 G2 G2."""
    return g6 - split42(g4, g2, n_inputs) + 2.0 * wick6(g2, n_inputs)
