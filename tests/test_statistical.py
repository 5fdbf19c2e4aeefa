"""Monte Carlo correlators against the exact finite-width results (docs/physics.md section 1).

Each test is a max-|z| test with a Bonferroni Student-t critical value (blocks - 1 degrees of
freedom) at family-wise significance ALPHA = 1e-3 over all tuples; z uses the jackknife standard
error of the estimate itself.  A connected correlator is compared with theory only where the test
has power (some tuple's exact value at least POWER_MARGIN standard errors beyond the critical
value), since elsewhere it would pass a vanishing correlator too.  The "can fail" tests show
that the same data reject a wrongly normalised prediction.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from conftest import make_spec

from nnfield import stats
from nnfield.studies import load
from nnfield.studies.npoint import analyze as npoint
from nnfield.theory.finite_width import SingleLayerExact
from nnfield.tuples import sorted_tuples, wick6

ALPHA = 1e-3
POWER_MARGIN = 2.0
"""A connected correlator is tested only where some tuple's |exact| / se exceeds the critical
value by this much: then a vanishing correlator is rejected with probability >= 97.7%."""
NETWORKS = {2: 100_000, 10: 100_000, 100: 60_000}
# Gauss-net with small preactivation variance: lognormal units with all moments converging fast.
# (The paper's sb0 = sw0 = 1 setting is heavy-tailed: see test_heavy_tail_is_flagged.)
SIGMAS = {
    "relu": {"sigma_b0": 0.5, "sigma_b1": 0.3},
    "erf": {"sigma_w0": 2.0, "sigma_b0": 0.5},
    "gauss": {"sigma_w0": 0.5, "sigma_b0": 0.3},
    "softplus": {"sigma_w0": 1.5, "sigma_b0": 0.5},  # a registry entry with no closed form
    "cos": {"sigma_w0": 1.5, "sigma_b0": 0.0, "sigma_b1": 0.3},  # uniform phase b0 (cos-net)
}
ARCHS = list(SIGMAS)


def exact_for(spec):
    p = spec.params
    inputs = tuple(tuple(x) for x in p["inputs"])
    sigmas = tuple(p[k] for k in ("sigma_w0", "sigma_b0", "sigma_w1", "sigma_b1"))
    return _exact(p["arch"], inputs, sigmas)


@functools.cache
def _exact(arch: str, inputs: tuple, sigmas: tuple) -> SingleLayerExact:
    """Width-independent exact theory, computed once per prior and inputs (erf's certified
    quadrature takes seconds)."""
    return SingleLayerExact(arch, np.asarray(inputs), *sigmas)


def analyse(spec, merged):
    exact = exact_for(spec)
    return npoint.analyze_point(merged, exact, {}), exact.at_width(spec.params["width"])


def dof(spec) -> int:
    """Degrees of freedom of the jackknife errors of ``spec``'s analysis (blocks - 1)."""
    return stats.jackknife_dof(spec.params["networks"] // spec.params["block_size"])


def power(out, name: str, exact: np.ndarray) -> float:
    """max over tuples of |exact| / se: how many standard errors separate theory from 0."""
    return float(np.max(np.abs(exact) / out[f"{name}_se"].values))


@pytest.mark.parametrize("estimator", ["brute", "conditional"])
@pytest.mark.parametrize("width", [2, 10, 100])
@pytest.mark.parametrize("arch", ARCHS)
def test_correlators_match_exact_finite_width(arch, width, estimator, point_runner):
    spec = make_spec(arch, width, NETWORKS[width], estimator=estimator, **SIGMAS[arch])
    out, th = analyse(spec, point_runner(spec))
    # conditional Gauss-net at N = 2: the error bar is so small that the largest single network
    # (two lognormal units) moves mean f^4 by ~0.6 s.e., and the influence check rightly says so
    if not (estimator == "conditional" and arch == "gauss" and width == 2):
        assert int(out["heavy_tail4"]) == 0, "this setting should not be flagged heavy-tailed"
    g2 = stats.max_z_test(out["G2"].values, out["G2_se"].values, th.K, ALPHA, dof(spec))
    assert g2.consistent, f"G2 vs GP kernel: {g2}"
    for name, exact, what in (("G4_conn", th.G4_conn, "1/N"), ("G6_conn", th.G6_conn, "1/N^2")):
        need = stats.bonferroni_t(ALPHA, exact.size, dof(spec)) + POWER_MARGIN
        if estimator == "conditional":  # the conditional estimator must resolve both at all N
            assert power(out, name, exact) > need, f"{name}: no power"
        if power(out, name, exact) > need:  # brute force: only where it has power
            z = stats.max_z_test(out[name].values, out[f"{name}_se"].values, exact, ALPHA,
                                 dof(spec))  # fmt: skip
            assert z.consistent, f"{name} vs exact {what} value: {z}"
    z = (float(out["dev4"]) - float(out["dev4_exact"])) / float(out["dev4_se"])
    crit = stats.bonferroni_t(ALPHA, 1, dof(spec))
    assert abs(z) < crit, f"tuple-averaged dev4 off by {z:.1f} s.e."


@pytest.mark.parametrize("arch", ARCHS)
def test_wrong_g6_is_rejected(arch, point_runner):
    """The G6 test can fail: at N = 10 the conditional estimator's G6_conn rejects a vanishing
    G6_conn and (erf, gauss) the cumulant with its + 2 sum_15 m2 m2 m2 term dropped, while the
    exact value passes (with brute force at N >= 10 neither would be rejected).  For ReLU with
    these inputs the dropped term is only ~2 standard errors (measured), so it is not used."""
    spec = make_spec(arch, 10, NETWORKS[10], estimator="conditional", **SIGMAS[arch])
    out, th = analyse(spec, point_runner(spec))
    exact = exact_for(spec)
    n = exact.n_inputs
    p = spec.params
    m2 = (exact.K - p["sigma_b1"] ** 2) / p["sigma_w1"] ** 2
    dropped = (exact.kappa6_unit - 2 * p["sigma_w1"] ** 6 * wick6(m2, n)) / 10**2
    value, se = out["G6_conn"].values, out["G6_conn_se"].values
    ok = stats.max_z_test(value, se, th.G6_conn, ALPHA, dof(spec))
    assert ok.consistent, f"exact G6_conn must pass first: {ok}"
    wrongs = [(np.zeros_like(value), "G6_conn = 0")]
    if arch != "relu":
        wrongs.append((dropped, "no 2 m2 m2 m2 term"))
    for wrong, what in wrongs:
        bad = stats.max_z_test(value, se, wrong, ALPHA, dof(spec))
        assert not bad.consistent, f"{what} passed: {bad}"


@pytest.mark.parametrize("arch", ["relu", "erf", "gauss"])
def test_conditional_estimator_is_more_precise(arch, point_runner):
    """Same networks' first layers, same expectation: at N = 100 the conditional estimator's
    error on G4_conn must be far below brute force's (a factor ~N, here > 10 on every tuple)."""
    errors = {}
    for estimator in ("brute", "conditional"):
        spec = make_spec(arch, 100, NETWORKS[100], estimator=estimator, **SIGMAS[arch])
        out, _ = analyse(spec, point_runner(spec))
        errors[estimator] = out["G4_conn_se"].values
    assert np.all(errors["brute"] > 10 * errors["conditional"])


@pytest.mark.parametrize(
    ("arch", "estimator", "networks"),
    [("relu", "brute", 400_000), ("erf", "brute", 400_000), ("gauss", "brute", 400_000),
     ("relu", "conditional", 40_000), ("erf", "conditional", 40_000),
     ("gauss", "conditional", 40_000), ("cos", "conditional", 40_000)],
)  # fmt: skip
def test_wrong_width_normalisation_is_detected(arch, estimator, networks, point_runner):
    """Replacing 1/N by 1/(N+1) in G4_conn (a 33% error at N = 2) must be rejected.

    400k networks give every architecture a tuple with signal/noise > 20 (erf: 22) by brute
    force; the conditional estimator needs a tenth of that.
    """
    spec = make_spec(arch, 2, networks, block_size=networks // 100, estimator=estimator,
                     **SIGMAS[arch])  # fmt: skip
    out, th = analyse(spec, point_runner(spec))
    wrong = th.G4_conn * 2 / 3
    result = stats.max_z_test(out["G4_conn"].values, out["G4_conn_se"].values, wrong, ALPHA,
                              dof(spec))  # fmt: skip
    assert not result.consistent, f"a wrong 1/(N+1) law passed: {result}"


def test_wrong_input_normalisation_is_detected(point_runner):
    """A kernel with W0 variance sigma_w0^2 instead of sigma_w0^2/d (d = 2) must be rejected."""
    inputs = [[0.3, 0.9], [1.0, -0.2], [0.6, 0.5]]
    spec = make_spec("erf", 10, 60_000, inputs=inputs, sigma_w0=1.5, sigma_b0=0.5)
    out, th = analyse(spec, point_runner(spec))
    ok = stats.max_z_test(out["G2"].values, out["G2_se"].values, th.K, ALPHA, dof(spec))
    assert ok.consistent, f"the correct d = 2 kernel must pass first: {ok}"
    wrong = SingleLayerExact("erf", np.asarray(inputs) * np.sqrt(2), 1.5, 0.5, 1.0, 1.0)
    bad = stats.max_z_test(out["G2"].values, out["G2_se"].values, wrong.K, ALPHA, dof(spec))
    assert not bad.consistent, f"a kernel missing the 1/d passed: {bad}"


def test_relu_two_dimensional_inputs(point_runner):
    """Non-degenerate ReLU with d = 2, sb = 0 (rank-2 exact quadrature)."""
    inputs = [[1.0, 0.0], [0.6, 0.8], [-0.5, 0.7], [0.1, -1.0]]
    spec = make_spec("relu", 3, 100_000, inputs=inputs, sigma_b0=0.0, sigma_b1=0.0)
    out, th = analyse(spec, point_runner(spec))
    g4 = stats.max_z_test(out["G4_conn"].values, out["G4_conn_se"].values, th.G4_conn, ALPHA,
                          dof(spec))  # fmt: skip
    assert g4.consistent, str(g4)
    # degenerate-free: the connected 4-point function differs across tuples
    assert np.ptp(th.G4_conn / th.G4_gp) > 0.5


def test_heavy_tail_is_flagged(point_runner):
    """Gauss-net with large sigma has lognormal units: analyze must flag its error bars."""
    spec = make_spec("gauss", 10, 20_000, sigma_w0=1.5, sigma_b0=1.5, family="gauss_wide")
    out, _ = analyse(spec, point_runner(spec))
    assert int(out["heavy_tail4"]) == 1 and int(out["heavy_tail6"]) == 1


def test_light_tail_is_not_flagged(point_runner):
    spec = make_spec("erf", 10, NETWORKS[10], **SIGMAS["erf"])
    out, _ = analyse(spec, point_runner(spec))
    assert int(out["heavy_tail4"]) == 0 and int(out["heavy_tail6"]) == 0


def test_a_heavy_tail_check_that_cannot_be_computed_flags(point_runner, monkeypatch):
    """Fail closed: the light-tailed point above, with an exact standard error that overflowed
    (NaN), is flagged; so is a NaN largest network (influence not computable)."""
    spec = make_spec("erf", 10, NETWORKS[10], **SIGMAS["erf"])
    merged = point_runner(spec)
    monkeypatch.setattr(npoint, "_exact_standard_errors", lambda *a: (np.nan, np.nan))
    out, _ = analyse(spec, merged)
    assert np.isnan(float(out["error_ratio4"]))
    assert int(out["heavy_tail4"]) == 1 and int(out["heavy_tail6"]) == 1
    monkeypatch.undo()
    poisoned = merged.copy(deep=True)
    poisoned["max_f6"][0] = np.nan
    out, _ = analyse(spec, poisoned)
    assert int(out["heavy_tail4"]) == 0 and int(out["heavy_tail6"]) == 1


def test_shard_count_does_not_change_results(point_runner):
    """1 shard vs 3 shards: identical block sums (keys derive from the block index only)."""
    one = point_runner(make_spec("relu", 7, 12_000, shards=1))
    three = point_runner(make_spec("relu", 7, 12_000, shards=3))
    for name in load("npoint").raw_variables():
        np.testing.assert_array_equal(one[name].values, three[name].values, err_msg=name)
    a = npoint.analyze([one], {})
    b = npoint.analyze([three], {})
    np.testing.assert_allclose(a["G4_conn"].values, b["G4_conn"].values, rtol=1e-12, atol=0)


def test_tuples_cover_all_inputs():
    assert [len(sorted_tuples(6, k)) for k in (2, 4, 6)] == [21, 126, 462]


def test_unsampled_lognormal_tail_is_flagged(point_runner):
    """Paper-protocol Gauss-net (sb = sw = 1) at N = 100: block skewness and single-network
    influence look harmless, but the jackknife error of mean f^4 is far below the exact standard
    error, so the estimate (which falls several s.e. low) is flagged."""
    inputs = [-0.01, -0.006, -0.002, 0.002, 0.006, 0.01]
    spec = make_spec("gauss", 100, 40_000, inputs=inputs, family="gauss_paper")
    out, _ = analyse(spec, point_runner(spec))
    assert float(out["error_ratio4"]) < 0.5
    assert int(out["heavy_tail4"]) == 1
