"""Deep-ensemble sampler (nnfield.studies.depth.sampler) against exact results, with z-scores."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from nnfield import stats
from nnfield.studies import load
from nnfield.studies.depth.sampler import DeepMLP, run_blocks
from nnfield.studies.depth.theory import critical_point, deep_theory

ALPHA = 1e-3
DOF40 = stats.jackknife_dof(40)
"""Degrees of freedom of the jackknife errors of the 40-block runs."""


def kurtosis(sums, second: str, fourth: str):
    """Jackknife estimate of E[z^4] / E[z^2]^2 - 3 per layer from per-block sums (input 0)."""
    data = {"m2": getattr(sums, second)[:, :, 0], "m4": getattr(sums, fourth)[:, :, 0]}
    return stats.jackknife(data, sums.count, lambda m: m["m4"] / m["m2"] ** 2 - 3)


@pytest.mark.parametrize("estimator", [("g2", "g4"), ("z2", "z4")])
def test_critical_relu_kurtosis_matches_exact_product_formula(estimator):
    """ReLU, C_b = 0, one input: excess kurtosis 3 ((1 + 5/N)^(l-1) - 1) exactly
    (docs/physics.md section 5),
    for the conditional (stochastic-metric) and the per-neuron estimator; and the same data
    reject the leading-order 15 (l - 1) / N at depth 10 (l / N = 0.2)."""
    width, depth = 50, 10
    mlp = DeepMLP("relu", width, depth, 2.0, 0.0)
    sums = run_blocks(mlp, np.array([[1.0]]), jax.random.key(3), range(40), 1000)
    est = kurtosis(sums, *estimator)
    layers = np.arange(1, depth + 1)
    exact = 3 * ((1 + 5 / width) ** (layers - 1) - 1)
    result = stats.max_z_test(est.value[1:], est.stderr[1:], exact[1:], ALPHA, DOF40)
    assert result.consistent, result
    if estimator[0] == "g2":  # the conditional estimator resolves the O(l^2/N^2) correction
        leading = 15 * (layers - 1) / width
        wrong = stats.max_z_test(est.value[1:], est.stderr[1:], leading[1:], ALPHA, DOF40)
        assert not wrong.consistent, wrong


def test_kernels_follow_the_recursion_at_large_width():
    """tanh at criticality, two inputs, N = 512: the measured E[G^(l)] match the NLO mean metric
    K + K1/N at every layer (K1/N, about K/N here, is itself below these errors)."""
    cb, cw = critical_point("tanh")
    x = np.array([[1.0], [-0.4]])
    mlp = DeepMLP("tanh", 512, 6, cw, cb)
    sums = run_blocks(mlp, x, jax.random.key(5), range(20), 200)
    est = stats.jackknife({"g": sums.g2}, sums.count, lambda m: m["g"])
    th = deep_theory("tanh", x, 6, cw, cb)
    nlo = th.mean_metric(512)
    want = np.stack([nlo[:, 0, 0], nlo[:, 0, 1], nlo[:, 1, 1]], axis=1)  # colex pairs
    np.testing.assert_allclose(est.value[0], want[0], rtol=1e-12)  # layer 1: G = K^(1)
    result = stats.max_z_test(est.value[1:], est.stderr[1:], want[1:], ALPHA, 19)  # 20 blocks
    assert result.consistent, result


def test_softplus_follows_the_recursion():
    """A new registry entry runs through the depth sampler and the recursions with no other
    change: softplus (no critical point; C_W = 1, C_b = 0.1), two inputs, N = 256, six layers:
    the measured E[G^(l)] match the NLO mean metric K + K1/N at every layer, and the same data
    reject the infinite-width kernel of the tanh network with the same (C_W, C_b)."""
    cb, cw = 0.1, 1.0
    x = np.array([[1.0], [-0.4]])
    mlp = DeepMLP("softplus", 256, 6, cw, cb)
    sums = run_blocks(mlp, x, jax.random.key(7), range(20), 200)
    est = stats.jackknife({"g": sums.g2}, sums.count, lambda m: m["g"])

    def pairs(k):
        return np.stack([k[:, 0, 0], k[:, 0, 1], k[:, 1, 1]], axis=1)  # colex pairs

    want = pairs(deep_theory("softplus", x, 6, cw, cb).mean_metric(256))
    np.testing.assert_allclose(est.value[0], want[0], rtol=1e-12)  # layer 1: G = K^(1)
    result = stats.max_z_test(est.value[1:], est.stderr[1:], want[1:], ALPHA, 19)  # 20 blocks
    assert result.consistent, result
    other = pairs(deep_theory("tanh", x, 6, cw, cb).K)
    assert not stats.max_z_test(est.value[1:], est.stderr[1:], other[1:], ALPHA, 19).consistent


@pytest.mark.parametrize(("activation", "width"), [("tanh", 64), ("relu", 512)])
def test_vertex_matches_one_over_width_prediction(activation, width):
    """Criticality, one input, small l/N: the excess kurtosis is 3 V^(l) / (N K^2) within errors
    (ReLU needs l/N < 0.01 for the O(l^2/N^2) terms to hide below the errors)."""
    cb, cw = critical_point(activation)
    depth = 5
    mlp = DeepMLP(activation, width, depth, cw, cb)
    sums = run_blocks(mlp, np.array([[1.0]]), jax.random.key(11), range(40), 1000)
    est = kurtosis(sums, "g2", "g4")
    th = deep_theory(activation, np.array([[1.0]]), depth, cw, cb)
    pred = th.excess_kurtosis(width)[:, 0]
    result = stats.max_z_test(est.value[1:], est.stderr[1:], pred[1:], ALPHA, DOF40)
    assert result.consistent, result


def test_blocks_do_not_depend_on_how_they_are_grouped():
    mlp = DeepMLP("gelu", 16, 4, 1.3, 0.1)
    x = np.array([[0.5], [1.0]])
    key = jax.random.key(2)
    together = run_blocks(mlp, x, key, range(4), 100)
    apart = [run_blocks(mlp, x, key, [b], 100) for b in range(4)]
    for name in ("g2", "g4", "z2", "z4", "logg", "max_gg"):
        np.testing.assert_array_equal(
            getattr(together, name), np.concatenate([getattr(a, name) for a in apart])
        )


def test_depth_study_analysis_and_config(tmp_path):
    """analyze_point on a small simulated point: K at layer 1 is K^(1), the ReLU exact column is
    present; config errors name their keys."""
    from nnfield.config import ConfigError, PointSpec, validate
    from nnfield.studies.depth import analyze as study

    params = {"family": "relu", "activation": "relu", "cw": 2.0, "cb": 0.0, "width": 32,
              "depth": 4, "input_dim": 1, "inputs": [[1.0], [0.3]], "networks": 4000,
              "block_size": 200, "shards": 2, "dtype": "float32"}  # fmt: skip
    spec = PointSpec("depth", "family~relu/width~32/depth~4", 7, params)
    merged = load("depth").merge([load("depth").simulate(spec, k) for k in range(2)])
    out = study.analyze_point(merged, {})
    np.testing.assert_allclose(out["K"].isel(layer=0), out["K_theory"].isel(layer=0))
    z = (out["kurtosis"] - out["kurtosis_exact"]) / out["kurtosis_se"]
    crit = stats.bonferroni_t(ALPHA, 6, stats.jackknife_dof(20))  # 4000 networks in 20 blocks
    assert float(np.abs(z.isel(layer=slice(1, None))).max()) < crit
    base = {"seed": 1, "networks": 1000, "block_size": 100,
            "families": [{"name": "g", "activation": "gelu", "inputs": [1.0], "widths": [8],
                          "depths": [3]}]}  # fmt: skip
    with pytest.raises(ConfigError, match=r"studies\.depth\.families\[0\]\.cw"):
        validate({"studies": {"depth": base}})
    base["families"][0].update(activation="tanh", depths=[65])
    with pytest.raises(ConfigError, match=r"studies\.depth\.families\[0\]\.depths\[0\]"):
        validate({"studies": {"depth": base}})


@pytest.mark.parametrize("activation", ["gauss", "relu"])
def test_one_hidden_layer_matches_the_exact_single_layer_result(activation):
    """Layer 2 of the deep sampler is the npoint study's single-layer network (with equal
    sigmas in both layers): its kernel and the conditional 4-point function match the exact
    single-layer values (SingleLayerExact) within their errors, for the Gauss-net unit too."""
    from nnfield.theory.finite_width import SingleLayerExact
    from nnfield.tuples import connected4

    cw, cb, width = 1.0 if activation == "gauss" else 2.0, 0.4, 16
    x = np.array([[0.3], [-0.2]])
    sums = run_blocks(DeepMLP(activation, width, 2, cw, cb), x, jax.random.key(9), range(20), 500)
    exact = SingleLayerExact(activation, x, np.sqrt(cw), np.sqrt(cb), np.sqrt(cw), np.sqrt(cb))
    data = {"g2": sums.g2[:, 1], "g4": sums.g4[:, 1]}
    k = stats.jackknife(data, sums.count, lambda m: m["g2"])
    g4c = stats.jackknife(data, sums.count, lambda m: connected4(m["g4"], m["g2"], 2))
    want = np.concatenate([exact.K, exact.at_width(width).G4_conn])
    value, err = np.concatenate([k.value, g4c.value]), np.concatenate([k.stderr, g4c.stderr])
    both = stats.max_z_test(value, err, want, ALPHA, stats.jackknife_dof(20))
    assert both.consistent, both
