"""Momentum-space propagator and quartic vertex of the cos-net (docs/physics.md section 7):
inverse-transformed back to position space they give the exact kernel and G4_conn of
nnfield.theory.finite_width.  Identities are checked against rounding bounds and quadrature
results against the change under refinement (n -> 2n nodes per dimension), never by z-tests."""

from __future__ import annotations

import numpy as np
import pytest

from nnfield import tuples as tup
from nnfield.theory import cosnet
from nnfield.theory.finite_width import SingleLayerExact

EPS = np.finfo(np.float64).eps
SW0, SW1, SB1, WIDTH = 1.5, 0.9, 0.3, 7
CASES = {  # d: (inputs, nodes per dimension n; the check compares n with 2n)
    1: (np.array([-0.9, -0.3, 0.2, 0.8])[:, None], 32),
    2: (np.array([[0.0, 0.0], [0.7, -0.2], [-0.4, 0.5], [0.3, 0.9], [-0.8, -0.6]]), 20),
}


def exact(d: int):
    """Closed-form theory; sb1 != 0, so the zero mode's decoupling is part of the check."""
    return SingleLayerExact("cos", CASES[d][0], SW0, 0.0, SW1, SB1).at_width(WIDTH)


def rounding_floor(inputs: np.ndarray, nodes_per_dim: int, terms: float) -> float:
    """Worst-case rounding of a rule with M = n^d nodes: M eps per sum of |terms| <= ``terms``,
    plus the phases' error eps |w| |sum e x| d (|w| <= largest node, |sum e x| <= 2 diameter)."""
    n, d = nodes_per_dim, inputs.shape[1]
    w_max = SW0 * np.abs(np.polynomial.hermite_e.hermegauss(n)[0]).max()  # sqrt(d) s z_max
    diameter = np.ptp(inputs, axis=0).max() * np.sqrt(d)
    return 4 * EPS * terms * (n**d + d * w_max * 2 * diameter + 10)


def refined(fn, nodes_per_dim: int):
    """fn at n and 2n nodes per dimension: the finer value and its refinement bound."""
    coarse, fine = fn(nodes_per_dim), fn(2 * nodes_per_dim)
    return fine, float(np.max(np.abs(fine - coarse)))


# |G4_conn| terms: 3 x 6 x 2^-4 (one mode) and 3 x (1/2)^2 (pairs), times sw1^4 / N
G4_TERMS = SW1**4 / WIDTH * (3 * 6 / 16 + 3 / 4)


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("amputated", [False, True], ids=["amplitudes", "vertex_x_propagators"])
def test_momentum_representation_reproduces_exact_g4_conn(d, amputated):
    """G4_conn from the one-mode and pair terms (or from -lambda~ prod K~, the tree level of the
    action) equals SingleLayerExact's closed form on every sorted 4-tuple, within the
    refinement bound plus rounding; G4_conn does not depend on sb1 (the zero mode)."""
    x, n = CASES[d]
    g4, bound = refined(
        lambda m: cosnet.g4_conn_from_momentum(x, SW0, SW1, WIDTH, m, amputated=amputated), n
    )
    bound += rounding_floor(x, 2 * n, G4_TERMS)
    target = exact(d).G4_conn
    assert g4.shape == target.shape == (tup.sorted_tuples(x.shape[0], 4).shape[0],)
    err = float(np.max(np.abs(g4 - target)))
    assert bound < 1e-10 * np.abs(target).max()  # the rule is converged: the bound is tight
    assert err <= bound, (err, bound)


@pytest.mark.parametrize("d", [1, 2])
def test_dropping_or_miscounting_a_term_is_rejected(d):
    """The check has teeth: without the pair term, or with the one-mode term counted once per
    pairing instead of once per sign pattern (a factor 2), the error exceeds the bound by more
    than 10^8."""
    x, n = CASES[d]
    one_mode, pair = cosnet.g4_conn_parts_from_momentum(x, SW0, SW1, WIDTH, 2 * n)
    coarse = sum(cosnet.g4_conn_parts_from_momentum(x, SW0, SW1, WIDTH, n))
    bound = float(np.max(np.abs(one_mode + pair - coarse))) + rounding_floor(x, 2 * n, G4_TERMS)
    target = exact(d).G4_conn
    for wrong in (one_mode, one_mode / 2 + pair, one_mode + 2 * pair):
        assert np.max(np.abs(wrong - target)) > 1e8 * bound


@pytest.mark.parametrize("d", [1, 2])
def test_propagator_transforms_to_the_exact_kernel(d):
    """int d^dp/(2 pi)^d e^{i p.(x - y)} K~(p) = K(x, y) - sb1^2 on every sorted pair."""
    x, n = CASES[d]
    k, bound = refined(lambda m: cosnet.kernel_from_momentum(x, SW0, SW1, m), n)
    bound += rounding_floor(x, 2 * n, SW1**2 / 2)
    err = float(np.max(np.abs(k - (exact(d).K - SB1**2))))
    assert err <= bound, (err, bound)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_amputated_vertices_times_propagators_are_the_amplitudes(d):
    """-lambda1(w) K~(w)^4 = A1(w) and -lambda2(p, q) K~(p)^2 K~(q)^2 = A2(p, q) to rounding
    (relative error within eps times the exponents involved), with lambda1 < 0 < lambda2; the
    coefficient is sw1^4/N, so a factor 2 anywhere is far outside the bound."""
    rng = np.random.default_rng(11)
    s = SW0 / np.sqrt(d)
    w, q = rng.normal(scale=2 * s, size=(2, 50, d))  # up to ~4 s per component
    prop = cosnet.propagator
    lam1 = cosnet.one_mode_vertex(w, SW0, SW1, d, WIDTH)
    lam2 = cosnet.pair_vertex(w, q, SW0, SW1, d, WIDTH)
    assert (lam1 < 0).all() and (lam2 > 0).all()
    lhs1 = -lam1 * prop(w, SW0, SW1, d) ** 4
    lhs2 = -lam2 * prop(w, SW0, SW1, d) ** 2 * prop(q, SW0, SW1, d) ** 2
    a1 = cosnet.one_mode_amplitude(w, SW0, SW1, d, WIDTH)
    a2 = cosnet.pair_amplitude(w, q, SW0, SW1, d, WIDTH)
    # 6 exponentials with |argument| <= 4 (|w|^2 + |q|^2) / s^2 in all, each with relative
    # error <= eps (1 + |argument|), and ~20 products
    tol = 4 * EPS * (30 + 4 * ((w**2).sum(1) + (q**2).sum(1)) / s**2)
    assert (np.abs(lhs1 / a1 - 1) <= tol).all()
    assert (np.abs(lhs2 / a2 - 1) <= tol).all()


def test_ultraviolet_growth_of_the_one_mode_vertex():
    """lambda1(w) / lambda1(0) = exp(3 |w|^2 / (2 s^2)) and lambda2 grows like
    exp((|p|^2 + |q|^2) / (2 s^2)): Gaussian growth, no power law."""
    d, s2 = 2, SW0**2 / 2
    w = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 1.0], [3.0, -2.0]])
    lam1 = cosnet.one_mode_vertex(w, SW0, SW1, d, WIDTH)
    np.testing.assert_allclose(lam1 / lam1[0], np.exp(1.5 * (w**2).sum(1) / s2), rtol=1e-13)
    lam2 = cosnet.pair_vertex(w, w[::-1], SW0, SW1, d, WIDTH)
    grow = np.exp(0.5 * ((w**2).sum(1) + (w[::-1] ** 2).sum(1)) / s2)
    np.testing.assert_allclose(lam2 / lam2[0] * grow[0], grow, rtol=1e-13)


def test_balanced_sign_vectors():
    """6 balanced sign vectors of length 4 and 20 of length 6, as the unit moments use."""
    from nnfield.theory.unit_moments import _balanced_signs

    for order, count in ((2, 2), (4, 6), (6, 20)):
        signs = cosnet.balanced_signs(order)
        assert signs.shape == (count, order) and (signs.sum(1) == 0).all()
        np.testing.assert_array_equal(signs, _balanced_signs(order))


def test_one_point_cumulants_of_the_cos_net():
    """At one input f = b1 + sum_i W1_i cos(phi_i) with phi_i uniform: kappa4 = (3/8) sw1^4 / N
    and kappa6 = 0 at every N (the characteristic function of W cos(phi), W ~ N(0, 1), is
    exp(-t^2/4) I0(t^2/4), and ln I0 is even), to rounding."""
    x = np.array([[0.3, -1.1], [2.0, 0.4]])
    theory = SingleLayerExact("cos", x, SW0, 0.0, SW1, SB1)
    t4, t6 = tup.sorted_tuples(2, 4), tup.sorted_tuples(2, 6)
    diag4 = (t4 == t4[:, :1]).all(axis=1)
    diag6 = (t6 == t6[:, :1]).all(axis=1)
    for width in (1, 3, 50):
        th = theory.at_width(width)
        np.testing.assert_allclose(th.G4_conn[diag4], 3 / 8 * SW1**4 / width, rtol=8 * EPS)
        assert np.abs(th.G6_conn[diag6]).max() <= 64 * EPS * SW1**6 / width**2
        assert np.abs(th.G6_conn[~diag6]).max() > 1e-3 * SW1**6 / width**2  # not zero elsewhere
