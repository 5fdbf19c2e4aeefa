"""The depth study's finite-width reference and heavy-tail flags (nnfield.studies.depth.theory,
nnfield.studies.depth.analyze): the next-to-leading-order mean metric E[G] = K + K1/N against exact
derivatives of closed-form kernels (an identity, to a rounding bound) and against Monte Carlo
(z-tests with Student-t critical values, where the leading order is rejected by the same data),
and the heavy-tail flag where the exact law of G says the tail was or was not sampled."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnfield import stats
from nnfield.config import PointSpec
from nnfield.studies import load
from nnfield.studies.depth import analyze as study
from nnfield.studies.depth.theory import critical_point, deep_theory, metric_moments

TWO_INPUTS = np.array([[1.0, 0.0], [0.6, 0.8]])


def erf_pair(k: jax.Array) -> jax.Array:
    """E[erf(u_0) erf(u_1)], u ~ N(0, k) for a 2 x 2 covariance k (closed form)."""
    return 2 / jnp.pi * jnp.arcsin(2 * k[0, 1] / jnp.sqrt((1 + 2 * k[0, 0]) * (1 + 2 * k[1, 1])))


def relu_pair(k: jax.Array) -> jax.Array:
    """E[relu(u_0) relu(u_1)] (the arc-cosine kernel of degree 1)."""
    norm = jnp.sqrt(k[0, 0] * k[1, 1])
    cos = k[0, 1] / norm
    theta = jnp.arccos(cos)
    return norm * (jnp.sin(theta) + (jnp.pi - theta) * cos) / (2 * jnp.pi)


CLOSED_FORMS = {  # (E[phi(u_0) phi(u_1)] of a 2 x 2 covariance, E[phi(u)^2] of a variance)
    "erf": (erf_pair, lambda s: 2 / jnp.pi * jnp.arcsin(2 * s / (1 + 2 * s))),
    "relu": (relu_pair, lambda s: s / 2),
}


def second_moment_matrix(activation: str):
    """k -> the 2 x 2 matrix E[phi(u_a) phi(u_b)] in closed form."""
    pair, square = CLOSED_FORMS[activation]

    def moments(k):
        off = pair(k)
        return jnp.array([[square(k[0, 0]), off], [off, square(k[1, 1])]])

    return moments


def nlo_step_from_derivatives(activation, k, k1, v, cw):
    """C_W [1/2 sum K1_cd E[d^2 phi phi] + 1/8 sum V_(cd)(ef) E[d^4 phi phi]] written through the
    heat equation d E_K[O] / dK_cd = E[d^2 O / du_c du_d] / 2: the first term is the derivative of
    E_K[phi phi] along K1, the second (V diagonalised on symmetric matrices, V = sum_i lambda_i
    M_i (x) M_i) is sum_i lambda_i (1/2) d^2/dt^2 E_{K + t M_i}[phi phi]."""
    moments = second_moment_matrix(activation)
    shift = jax.jvp(moments, (k,), (k1,))[1]
    basis = [np.array([[1.0, 0], [0, 0]]), np.array([[0, 0], [0, 1.0]]),
             np.array([[0, 1.0], [1.0, 0]]) / np.sqrt(2)]  # fmt: skip
    pair_space = np.array([[np.einsum("cd,cdef,ef->", b, v, c) for c in basis] for b in basis])
    lam, vecs = np.linalg.eigh(pair_space)
    fluct = 0.0
    for i in range(3):
        m = sum(vecs[j, i] * basis[j] for j in range(3))
        curvature = jax.jacfwd(jax.jacfwd(lambda t, m=m: moments(k + t * m)))(0.0)
        fluct = fluct + lam[i] * 0.5 * curvature
    return cw * np.asarray(shift + fluct)


@pytest.mark.parametrize(("activation", "cw", "cb"),
                         [("erf", np.pi / 4, 0.0), ("erf", 1.3, 0.2), ("relu", 2.0, 0.0),
                          ("relu", 1.7, 0.3)])  # fmt: skip
def test_nlo_recursion_is_the_derivative_of_the_closed_form_kernel(activation, cw, cb):
    """An identity: the Hermite-polynomial integrals of the K1 recursion equal exact (automatic)
    derivatives of the closed-form erf and arc-cosine kernels, at two inputs and every layer.
    Bound: the Gaussian rule's ~1e-13 accuracy, amplified by up to four factors of K^-1 in the
    fourth Hermite polynomial (cond(K)^2 for a 2 x 2 kernel normalised by its scale)."""
    th = deep_theory(activation, TWO_INPUTS, 6, cw, cb)
    for layer in range(1, 5):  # index: K1^(l + 1) from layer l
        k = jnp.asarray(th.K[layer])
        want = nlo_step_from_derivatives(activation, k, jnp.asarray(th.K1[layer]), th.V[layer], cw)
        bound = 1e-12 * np.linalg.cond(th.K[layer]) ** 2 * np.max(np.abs(want))
        np.testing.assert_allclose(th.K1[layer + 1], want, rtol=0, atol=bound)
    assert np.max(np.abs(th.K1[2:])) > 0.01  # the correction is not trivially zero


def test_nlo_vanishes_where_the_mean_metric_is_exact():
    """Identities: linear units give E[G] = K at every width (K1 = 0); ReLU with C_b = 0 keeps
    E[G_aa] = K_aa (E relu(z)^2 = E z^2 / 2 for any symmetric law) while K1_12 != 0; the first
    two layers have K1 = 0 for every activation."""
    lin = deep_theory("linear", TWO_INPUTS, 6, 1.0, 0.0)
    np.testing.assert_allclose(lin.K1, 0.0, atol=1e-13 * np.abs(lin.K).max())
    relu = deep_theory("relu", TWO_INPUTS, 6, 2.0, 0.0)
    diag = np.diagonal(relu.K1, axis1=1, axis2=2)
    np.testing.assert_allclose(diag, 0.0, atol=1e-13 * np.abs(relu.K).max())
    assert np.all(relu.K1[3:, 0, 1] < -0.05)  # the correlation itself is corrected (lowered)
    for activation, cw, cb in (("tanh", 1.0, 0.0), ("gelu", 1.5, 0.1), ("gauss", 1.0, 0.0)):
        th = deep_theory(activation, TWO_INPUTS, 4, cw, cb)
        np.testing.assert_array_equal(th.K1[:2], 0.0)
        assert np.abs(th.K1[2:]).min() > 0


def test_one_input_nlo_is_the_books_recursion():
    """For one input the recursion is K1^(l+1) = chi K1^(l) + (C_W/8) <phi^2 He4> V / K^4 with
    He4 = u^4 - 6 K u^2 + 3 K^2 (Roberts-Yaida-Hanin ch. 4), here with Gauss-Hermite (tanh is
    smooth: 200 nodes are exact to rounding)."""
    cb, cw = critical_point("tanh")
    th = deep_theory("tanh", np.array([[1.0]]), 8, cw, cb)
    nodes, weights = np.polynomial.hermite_e.hermegauss(200)
    weights = weights / weights.sum()
    k1 = 0.0
    for layer in range(1, 7):
        kk, v = th.K[layer, 0, 0], th.V_diag[layer, 0]
        u = np.sqrt(kk) * nodes
        p2 = np.tanh(u) ** 2
        chi = cw * weights @ (p2 * (u**2 - kk)) / (2 * kk**2)
        k1 = chi * k1 + cw / 8 * (weights @ (p2 * (u**4 - 6 * kk * u**2 + 3 * kk**2))) * v / kk**4
        assert th.K1[layer + 1, 0, 0] == pytest.approx(k1, rel=1e-11, abs=1e-14)


def simulate_point(activation, width, depth, networks, inputs, cw=None, cb=None, seed=11):
    if cw is None:
        cb, cw = critical_point(activation)
    params = {"family": activation, "activation": activation, "cw": cw, "cb": cb,
              "width": width, "depth": depth, "input_dim": len(inputs[0]), "inputs": inputs,
              "networks": networks, "block_size": 500, "shards": 1, "dtype": "float32"}  # fmt: skip
    spec = PointSpec("depth", f"family~{activation}/width~{width}/depth~{depth}", seed, params)
    return study.analyze_point(load("depth").simulate(spec, 0), {})


@pytest.mark.parametrize("width", [8, 16])
@pytest.mark.parametrize("activation", ["tanh", "erf", "relu"])
def test_nlo_mean_metric_matches_monte_carlo(activation, width):
    """Two inputs, depth 6, 2 x 10^4 networks: the study's K test (layers chosen by its stated
    truncation criterion, Student-t Bonferroni critical value) passes against K + K1/N at
    N = 8 and 16.  The same values reject the infinite-width K and K + 2 K1/N (tanh, erf: the
    leading order's z is 7 to 13).  For critical ReLU the 1/N correction of K_12 (about 3% at
    l = 4, N = 8) is within 3 standard errors of these ensembles, so only the NLO pass is
    asserted here; test_layer_three_remainder resolves ReLU's K1."""
    out = simulate_point(activation, width, 6, 20_000, TWO_INPUTS.tolist())
    tested = out["K_tested"].values == 1
    assert tested.sum() >= 2, tested
    assert float(out["K_maxz"]) < float(out["K_zcrit"]), (float(out["K_maxz"]), tested)
    if activation != "relu":
        assert float(out["K_lo_maxz"]) > float(out["K_zcrit"]), float(out["K_lo_maxz"])
        value, err = out["K"].values[tested], out["K_se"].values[tested]
        doubled = 2 * out["K_nlo"].values[tested] - out["K_theory"].values[tested]
        wrong = stats.max_z_test(value, err, doubled, 1e-3, stats.jackknife_dof(40))
        assert not wrong.consistent, f"K + 2 K1/N passed: {wrong}"


def _relu_pair(g00, g01, g11):
    """E[relu(u_0) relu(u_1)] for many 2 x 2 covariances (arc-cosine kernel), numpy."""
    norm = np.sqrt(g00 * g11)
    safe = np.where(norm > 0, norm, 1.0)
    cos = np.clip(g01 / safe, -1.0, 1.0)
    theta = np.arccos(cos)
    return np.where(norm > 0, norm * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi), 0.0)


def layer_three_mean(activation: str, width: int, samples: int, seed: int):
    """E[G^(3)_ab] at finite width with a Monte Carlo error, a: the pair of largest K1.

    Conditional on layer 2, E[G^(3)_ab | G^(2)] = C_b + C_W E_{G^(2)}[phi_a phi_b] exactly (the
    arc-cosine kernel for ReLU with inputs (1,0), (0.6,0.8); 60-node Gauss-Hermite for tanh
    with one input), so only G^(2), a mean over N iid first-layer units, is sampled: the
    estimate resolves O(1/N^2) remainders."""
    rng = np.random.default_rng(seed)
    x = TWO_INPUTS if activation == "relu" else np.array([[1.0]])
    cb, cw = critical_point(activation)
    root = np.linalg.cholesky(cb + cw * x @ x.T / x.shape[1])
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)  # 1e-10 for G^(2) <= 1
    weights = weights / weights.sum()
    values = []
    for _ in range(samples // 50_000):
        h = np.maximum(z := rng.standard_normal((50_000, width, len(x))) @ root.T, 0.0)
        if activation == "relu":
            g = [cb + cw / width * np.einsum("mi,mi->m", h[..., a], h[..., b])
                 for a, b in ((0, 0), (0, 1), (1, 1))]  # fmt: skip
            values.append(cb + cw * _relu_pair(*g))
        else:
            g2 = cb + cw / width * np.sum(np.tanh(z[..., 0]) ** 2, axis=1)
            values.append(cb + cw * np.tanh(np.sqrt(g2)[:, None] * nodes) ** 2 @ weights)
    v = np.concatenate(values)
    return v.mean(), v.std(ddof=1) / np.sqrt(v.size), v.size


@pytest.mark.parametrize(("activation", "widths"), [("relu", (4, 8, 16)), ("tanh", (4, 8))])
def test_layer_three_remainder(activation, widths):
    """Exact conditional means at layer 3 (about 8 x 10^6 / N samples of layer 2 each):
    E[G^(3)] is within its error of K + K1/N up to the estimated remainder (the truncation
    estimate the K test's range uses), the infinite-width K is rejected, and so is the plain
    squared-correction estimate r^2 for ReLU at N = 4, whose off-diagonal remainder is about 20
    times r^2: the estimate is what the test checks, and the test can fail."""
    x = TWO_INPUTS if activation == "relu" else np.array([[1.0]])
    cb, cw = critical_point(activation)
    th = deep_theory(activation, x, 3, cw, cb)
    a, b = (0, 1) if activation == "relu" else (0, 0)
    crit = stats.bonferroni_t(1e-3, 2 * len(widths), 1e5)  # iid samples: ~normal
    for width in widths:
        mean, se, _ = layer_three_mean(activation, width, 8_000_000 // width, seed=width)
        nlo, lo = th.mean_metric(width)[2, a, b], th.K[2, a, b]
        estimate = th.truncation_estimate(width)[2, a, b]
        assert abs(mean - nlo) < estimate + crit * se, (width, mean - nlo, estimate, se)
        assert abs(mean - lo) > crit * se, (width, mean - lo, se)
        if activation == "relu" and width == 4:
            squared = (th.K1[2, a, b] / width) ** 2 / np.sqrt(th.K[2, a, a] * th.K[2, b, b])
            assert abs(mean - nlo) > squared + crit * se, (mean - nlo, squared, se)


def test_heavy_tail_flag_fires_where_the_tail_was_not_sampled():
    """Critical ReLU, one input, 10^4 networks: at N = 8, l = 32 the exact excess kurtosis is
    ~1e7 and the kurtosis estimate's error is far below its exact standard error (flagged,
    also from l = 8 on); at N = 128, l <= 8 the law of G is sampled (not flagged)."""
    narrow = simulate_point("relu", 8, 32, 10_000, [[1.0]])
    assert float(narrow["kurtosis_exact"].sel(layer=32).max()) > 1e6
    flags = narrow["kurtosis_heavy_tail"].values
    assert flags[7:].all(), flags
    assert float(narrow["kurtosis_error_ratio"].sel(layer=32).max()) < 0.01
    assert np.isnan(narrow["K_maxz"].values) or narrow["K_tested"].values[7:].sum() == 0
    wide = simulate_point("relu", 128, 8, 10_000, [[1.0]])
    assert not wide["kurtosis_heavy_tail"].values.any(), wide["kurtosis_heavy_tail"].values
    assert float(wide["K_maxz"]) < float(wide["K_zcrit"])


def test_exact_metric_moments_give_the_product_formula():
    """Identity: 3 E[G^2]/E[G]^2 - 3 from metric_moments is 3[(1 + 5/N)^(l-1) - 1] for ReLU and
    3[(1 + 2/N)^(l-1) - 1] for linear units (C_b = 0, any C_W), to rounding."""
    layers = np.arange(1, 11)
    for activation, per_layer in (("relu", 5), ("linear", 2)):
        for cw in (1.0, 2.0, 3.0):
            mom = metric_moments(activation, np.array([[0.7]]), 10, 12, cw, 0.0)
            kurt = 3 * mom[2, :, 0] / mom[1, :, 0] ** 2 - 3
            want = 3 * ((1 + per_layer / 12) ** (layers - 1) - 1)
            np.testing.assert_allclose(kurt, want, rtol=1e-12, atol=1e-14)
    assert metric_moments("tanh", np.array([[1.0]]), 3, 8, 1.0, 0.0) is None
    assert metric_moments("relu", np.array([[1.0]]), 3, 8, 2.0, 0.1) is None


def test_method_attributes_come_from_the_constants_that_ran(monkeypatch):
    """The stored K_test_range and critical_values attributes are written from the constants
    the analysis uses: changing a constant changes both the text and the tested layers."""
    from nnfield.studies.depth import theory as deep

    params = {"family": "tanh", "activation": "tanh", "cw": 1.0, "cb": 0.0, "width": 8,
              "depth": 6, "input_dim": 1, "inputs": [[1.0]], "networks": 4000,
              "block_size": 200, "shards": 1, "dtype": "float32"}  # fmt: skip
    spec = PointSpec("depth", "family~tanh/width~8/depth~6", 3, params)
    raw = load("depth").simulate(spec, 0)
    out = study.analyze([raw], {})
    assert out.attrs["K_test_range"] == study.k_test_range()
    assert out.attrs["critical_values"] == stats.CRITICAL_VALUE_METHOD
    assert f"at most {study.NLO_TRUNCATION_SHARE:g} of" in out.attrs["K_test_range"]
    tested = int(out["K_tested"].sum())
    monkeypatch.setattr(study, "NLO_TRUNCATION_SHARE", 1e-6)
    monkeypatch.setattr(study, "TRUNCATION_FACTOR", 0.5)
    monkeypatch.setattr(deep, "TRUNCATION_FACTOR", 0.5)
    strict = study.analyze([raw], {})
    assert "at most 1e-06 of" in strict.attrs["K_test_range"]
    assert "r eps / 0.5" in strict.attrs["K_test_range"]
    assert int(strict["K_tested"].sum()) < tested  # only the exact layer 2 is left


def test_a_heavy_tail_check_that_cannot_be_computed_flags():
    """Fail closed: exact moments that overflowed (NaN) flag every fluctuating layer that the
    finite moments leave unflagged, and so does a NaN in the sampled sums; layer 1 (no
    fluctuation) never."""
    cb, cw = critical_point("relu")
    params = {"family": "relu", "activation": "relu", "cw": cw, "cb": cb, "width": 128,
              "depth": 4, "input_dim": 1, "inputs": [[1.0]], "networks": 4000,
              "block_size": 200, "shards": 1, "dtype": "float32"}  # fmt: skip
    raw = load("depth").simulate(PointSpec("depth", "family~relu/width~128/depth~4", 3, params), 0)
    counts = raw["count"].values
    settings = {"heavy_tail_skewness": 0.5, "max_influence": 0.5, "min_error_ratio": 0.5}
    moments = metric_moments("relu", np.array([[1.0]]), 4, 128, cw, cb)
    fine = study.heavy_tail_diagnostics(raw, counts, moments, settings)["kurtosis_heavy_tail"]
    assert not fine.any(), fine
    overflowed = np.where(np.arange(5)[:, None, None] >= 2, np.nan, moments)
    flags = study.heavy_tail_diagnostics(raw, counts, overflowed, settings)
    assert flags["kurtosis_heavy_tail"].tolist() == [0, 1, 1, 1]
    assert np.isnan(flags["kurtosis_error_ratio"][1:]).all()
    poisoned = raw.copy(deep=True)
    poisoned["g4"][0, 2] = np.nan
    flags = study.heavy_tail_diagnostics(poisoned, counts, None, settings)
    assert flags["kurtosis_heavy_tail"].tolist() == [0, 0, 1, 0]
