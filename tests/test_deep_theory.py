"""Deep-network recursions (nnfield.studies.depth.theory) against docs/physics.md section 5 and
exact
results."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nnfield.studies.depth.theory import critical_point, deep_theory, preserving_weight_variance
from nnfield.theory.finite_width import SingleLayerExact
from nnfield.tuples import sorted_tuples

CRITICAL_RELU_INPUTS = np.array([[1.0, 0.0], [0.6, 0.8]])  # K^(1)_12 = 0.6 at C_W = 2, d = 2


def test_critical_relu_reference_numbers():
    th = deep_theory("relu", CRITICAL_RELU_INPUTS, 5, 2.0, 0.0)
    np.testing.assert_allclose(
        th.K[1:, 0, 1], [0.677547567767, 0.733433785826, 0.775312434844, 0.807647825196],
        atol=1e-11,
    )  # fmt: skip
    np.testing.assert_allclose(
        th.Theta[1:, 0, 1], [1.100447226586, 1.544416300677, 1.952286685185, 2.335131760565],
        atol=1e-11,
    )  # fmt: skip
    np.testing.assert_allclose(th.V[:, 0, 0, 0, 0] / th.K[:, 0, 0] ** 2, [0, 5, 10, 15, 20],
                               atol=1e-10)  # fmt: skip
    np.testing.assert_allclose(th.chi[:-1], 1.0, atol=1e-12)  # critical: chi = 1


def test_critical_tanh_reference_numbers():
    cb, cw = critical_point("tanh")
    th = deep_theory("tanh", np.array([[1.0]]), 50, cw, cb)
    np.testing.assert_allclose(
        th.K[:5, 0, 0], [1, 0.3942944904, 0.2364504105, 0.1666563538, 0.1279047353], atol=1e-10
    )
    ratio = th.V_diag[:, 0] / th.K[:, 0, 0] ** 2
    np.testing.assert_allclose(ratio[:5], [0, 0.62729, 1.21282, 1.80550, 2.40827], atol=5e-6)
    assert ratio[4] / 5 == pytest.approx(0.48, abs=0.005)
    assert ratio[49] / 50 == pytest.approx(0.63, abs=0.005)
    np.testing.assert_allclose(th.V[:, 0, 0, 0, 0], th.V_diag[:, 0], rtol=1e-10)


def test_deep_linear_network_vertex_is_exact():
    """Linear activation: E phi^4 - (E phi^2)^2 = 2 K^2 and chi = C_W, so with C_W = 1 the
    vertex is V/K^2 = 2 (l - 1), the leading term of the exact 3 ((1 + 2/N)^(l-1) - 1) N / 3."""
    th = deep_theory("linear", np.array([[0.7], [-1.3]]), 8, 1.0, 0.0)
    k = th.K[:, 0, 0]
    np.testing.assert_allclose(k, 0.49)
    np.testing.assert_allclose(th.V_diag[:, 0] / k**2, 2 * np.arange(8), rtol=1e-12)


@pytest.mark.parametrize(
    ("arch", "cw", "cb"), [("relu", 2.0, 0.3), ("erf", 1.7, 0.4), ("gauss", 1.0, 0.4)]
)
def test_second_layer_vertex_equals_exact_single_layer_cumulant(arch, cw, cb):
    """The 1-hidden-layer case: N E[z z z z]_conn at l = 2 is the exact one-unit cumulant of the
    npoint study (SingleLayerExact.kappa4_unit), on every sorted 4-tuple of two inputs."""
    x = np.array([[0.9], [-0.4]])
    th = deep_theory(arch, x, 2, cw, cb)
    s = np.sqrt(cw), np.sqrt(cb)
    exact = SingleLayerExact(arch, x, s[0], s[1], s[0], s[1])
    v = th.V[1]
    for row, want in zip(sorted_tuples(2, 4), exact.kappa4_unit, strict=True):
        a, b, c, e = row
        got = v[a, b, c, e] + v[a, c, b, e] + v[a, e, b, c]
        assert got == pytest.approx(want, rel=1e-9)


def test_vertex_is_symmetric_under_pair_exchange():
    th = deep_theory("tanh", np.array([[0.5], [1.2]]), 6, 1.5, 0.2)
    for a, b, c, e in itertools.product(range(2), repeat=4):
        assert th.V[-1, a, b, c, e] == pytest.approx(th.V[-1, c, e, a, b], rel=1e-9)
        assert th.V[-1, a, b, c, e] == pytest.approx(th.V[-1, b, a, c, e], rel=1e-9)


def test_preserving_weight_variance_keeps_the_kernel_fixed():
    for activation in ("tanh", "gelu", "erf"):
        cw = preserving_weight_variance(activation, 0.8, cb=0.1)
        th = deep_theory(activation, np.array([[np.sqrt(0.7 / cw)]]), 6, cw, 0.1)
        np.testing.assert_allclose(th.K[:, 0, 0], 0.8, rtol=1e-10)


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_kernels_match_neural_tangents(activation):
    """Optional cross-check with neural_tangents.stax (NNGP of the same MLP).  neural-tangents
    0.6.5 does not import with current JAX (docs/physics.md section 5), so this usually skips; the
    docs/physics.md reference numbers tested above are the oracle."""
    try:
        from neural_tangents import stax
    except Exception as err:  # ImportError, or AttributeError from an incompatible JAX
        pytest.skip(f"neural-tangents unavailable with this JAX: {err}")
    cw, cb, depth = 1.7, 0.2, 4
    x = np.array([[1.0, 0.0], [0.6, 0.8], [-0.3, 0.5]])
    act = stax.Relu() if activation == "relu" else stax.Erf()
    layers = [stax.Dense(512, W_std=np.sqrt(cw), b_std=np.sqrt(cb))]
    for _ in range(depth - 1):
        layers += [act, stax.Dense(512, W_std=np.sqrt(cw), b_std=np.sqrt(cb))]
    _, _, kernel_fn = stax.serial(*layers)
    nt_k = np.asarray(kernel_fn(x, x, "nngp"))
    ours = deep_theory(activation, x, depth, cw, cb).K[-1]
    np.testing.assert_allclose(ours, nt_k, rtol=1e-6)
