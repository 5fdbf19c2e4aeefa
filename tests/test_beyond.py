"""Beyond the paper: the cos-net and the shared readout scale (docs/physics.md sections 7 and 8).

cos-net (section 7): h = cos(W0 . x + b0) with a uniform phase b0 ~ U(-pi, pi).  Its one-unit
moments are checked against an independent quadrature (Gauss-Hermite in the weights, the periodic
trapezoid rule in the phase, certified by refinement), its exact theory is translation invariant
to rounding (with controls that the same shift changes), and one Monte Carlo ensemble at inputs
x and x + c measures equal correlators on both sets, where ReLU with a bias (all correlators) and
Gauss-net (G4_conn: only its kernel is invariant) are rejected by the same procedure.

Shared readout scale (section 8): W1_i = s g_i with s^2 ~ Gamma(a, scale 1/a) once per network.
Monte Carlo against the exact G2, G4_conn and G6_conn at N = 2, 10 and 1000, and the same data
reject the independent-weights theory, a plateau built on the full kernel K instead of
K_g = K - sb1^2, and the 1/N term without its E[s^4].

Conventions as tests/test_statistical.py: max-|z| tests with jackknife errors against a Bonferroni
Student-t critical value (blocks - 1 degrees of freedom) at family-wise ALPHA; identities that hold
exactly (closed forms, algebra) are compared to a rounding bound, never by a z-test.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import pytest
from conftest import INPUTS, make_spec

from nnfield import config, stats
from nnfield import tuples as tup
from nnfield.studies.npoint import analyze as npoint
from nnfield.theory import kernels
from nnfield.theory.finite_width import (
    SingleLayerExact,
    diagonal_output_moments,
    scale_moments,
)
from nnfield.theory.unit_moments import UnitMoments

ALPHA = 1e-3
POWER_MARGIN = 2.0
"""As tests/test_statistical.py: a correlator is compared with theory only where some tuple's
|exact| / se exceeds the critical value by this much."""
ROUNDING = 1e-12
"""Relative bound (to the largest entry of the compared array) for identities that hold exactly:
the closed forms and Wick sums lose a few hundred ulps at most."""
QUADRATURE_ATOL = 1e-13
"""Absolute bound for the cos-net quadrature: |prod cos| <= 1, so the moments are O(1) and the
rounding of either sum is a few eps in absolute terms."""


def close(a, b, rtol: float = ROUNDING) -> bool:
    """|a - b| below rtol times the larger array's largest entry (an identity to rounding)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), np.finfo(float).tiny)
    return float(np.max(np.abs(a - b))) <= rtol * scale


def relative_change(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b))))


def dof(spec) -> int:
    return stats.jackknife_dof(spec.params["networks"] // spec.params["block_size"])


def need(n_tests: int, spec) -> float:
    """|exact| / se a tuple must reach for a correlator to be tested (power against 0)."""
    return stats.bonferroni_t(ALPHA, n_tests, dof(spec)) + POWER_MARGIN


# ------------------------------------------------------------ cos-net one-unit moments (exact)


def cos_quadrature(x: np.ndarray, tuples: np.ndarray, sw0: float, n_w: int, n_b: int):
    """E[prod_k cos(w . x_(a_k) + b)] with w ~ N(0, sw0^2/d I) and b ~ U(-pi, pi): tensor
    Gauss-Hermite (n_w nodes per component) in w times the n_b-point periodic trapezoid rule in b
    (exact for trigonometric polynomials of degree below n_b; the integrand's degree in b is k)."""
    x = np.asarray(x, dtype=np.float64)
    d = x.shape[1]
    t, wt = np.polynomial.hermite.hermgauss(n_w)
    nodes = np.sqrt(2.0) * sw0 / np.sqrt(d) * t
    grid = np.stack([g.ravel() for g in np.meshgrid(*[nodes] * d, indexing="ij")], axis=1)
    weight = np.prod(np.meshgrid(*[wt / np.sqrt(np.pi)] * d, indexing="ij"), axis=0).ravel()
    b = -np.pi + 2.0 * np.pi * np.arange(n_b) / n_b
    u = grid @ x.T  # (nodes, n_inputs)
    out = np.empty(len(tuples))
    for r, row in enumerate(np.asarray(tuples)):
        prod = np.ones((len(grid), n_b))
        for a in row:
            prod *= np.cos(u[:, a, None] + b[None, :])
        out[r] = weight @ prod.mean(axis=1)
    return out


def no_phase_moments(k: np.ndarray, tuples: np.ndarray) -> np.ndarray:
    """A wrong cos moment: the phase average dropped (b0 = 0), i.e. the sum over *all* sign
    vectors, 2^-k sum_e exp(-e^T k e / 2), not only the balanced ones."""
    order = tuples.shape[1]
    signs = np.array(np.meshgrid(*[[1.0, -1.0]] * order, indexing="ij")).reshape(order, -1).T
    sub = k[tuples[:, :, None], tuples[:, None, :]]
    return np.exp(-0.5 * np.einsum("ei,tij,ej->te", signs, sub, signs)).sum(1) / 2.0**order


COS_INPUTS = {
    1: np.array([[-1.1], [-0.4], [0.0], [0.3], [0.9], [1.2]]),
    2: np.array([[0.3, 0.9], [1.0, -0.2], [-0.6, 0.5], [0.0, 0.0]]),
}
COS_NODES = {1: 96, 2: 40}  # Gauss-Hermite nodes per weight component (doubled to certify)
COS_SW0 = 1.5


@pytest.mark.parametrize("d", [1, 2])
def test_cos_unit_moments_match_quadrature(d):
    """UnitMoments("cos") (2^-k sum over balanced signs of exp(-e^T k e / 2)) equals an
    independent quadrature over w and the uniform phase b for k = 2, 3, 4, 6 on every sorted
    tuple (repeated inputs included), with sb0 = 0 and sb0 = 0.7 (the phase average removes it).
    The quadrature is certified by doubling both node counts.  Teeth: dropping the phase average
    (all sign vectors, b0 = 0) misses by far more than the bound."""
    x = COS_INPUTS[d]
    for order in (2, 3, 4, 6):
        rows = tup.sorted_tuples(len(x), order)
        coarse = cos_quadrature(x, rows, COS_SW0, COS_NODES[d], 16)
        fine = cos_quadrature(x, rows, COS_SW0, 2 * COS_NODES[d], 32)
        refine = float(np.max(np.abs(fine - coarse)))
        assert refine < QUADRATURE_ATOL, f"k = {order}: quadrature not converged ({refine:.1e})"
        for sb0 in (0.0, 0.7):
            units = UnitMoments("cos", x, COS_SW0, sb0)
            lib = units.moments(rows)
            err = float(np.max(np.abs(lib - fine)))
            assert err < QUADRATURE_ATOL, f"k = {order}, sb0 = {sb0}: off by {err:.1e}"
            assert units.accuracy == 0.0  # a closed form
        if order % 2 == 0:
            wrong = no_phase_moments(UnitMoments("cos", x, COS_SW0, 0.0).k, rows)
            assert np.max(np.abs(wrong - fine)) > 1e-3, "the quadrature cannot see the phase"
        else:
            assert np.all(UnitMoments("cos", x, COS_SW0, 0.0).moments(rows) == 0.0)


def test_cos_diagonal_moments_are_pure_phase_averages():
    """E[cos(u + b)^(2r)] = C(2r, r) / 4^r for b ~ U(-pi, pi), whatever u: the diagonal unit
    moments are the same at every input and every sw0."""
    expected = np.array([math.comb(2 * r, r) / 4.0**r for r in range(4)])
    for sw0 in (0.3, 1.5, 4.0):
        exact = SingleLayerExact("cos", COS_INPUTS[1], sw0, 0.0, 1.0, 0.0)
        mu = exact.unit_diagonal_moments(3)
        assert close(mu, np.repeat(expected[:, None], mu.shape[1], axis=1))


@pytest.mark.parametrize("d", [1, 2])
def test_cos_kernel_closed_form(d):
    """kernels.unit_m2 = the quadrature's E[h h]; gp_kernel = sb1^2 + (sw1^2/2)
    exp(-sw0^2 |x - y|^2 / (2 d)) whatever sb0; SingleLayerExact's K is the same kernel on the
    colex pairs.  Teeth: the Gaussian-bias cos kernel (REGISTRY unit_m2, b0 ~ N(0, sb0^2))
    differs."""
    from nnfield.activations import REGISTRY

    x = COS_INPUTS[d]
    sw1, sb1 = 1.3, 0.4
    rows = tup.sorted_tuples(len(x), 2)
    quad = cos_quadrature(x, rows, COS_SW0, 2 * COS_NODES[d], 32)
    m2 = kernels.unit_m2("cos", x, COS_SW0, 0.0)
    assert float(np.max(np.abs(m2[rows[:, 0], rows[:, 1]] - quad))) < QUADRATURE_ATOL
    dist2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    closed = sb1**2 + 0.5 * sw1**2 * np.exp(-(COS_SW0**2) * dist2 / (2 * d))
    for sb0 in (0.0, 0.7):
        assert close(kernels.gp_kernel("cos", x, COS_SW0, sb0, sw1, sb1), closed)
    exact = SingleLayerExact("cos", x, COS_SW0, 0.0, sw1, sb1)
    assert close(exact.K, closed[rows[:, 0], rows[:, 1]])
    k = kernels.preactivation_cov(x, COS_SW0, 0.7)
    kd = np.diag(k)
    gaussian_bias = REGISTRY["cos"].unit_m2(k, kd, kd)
    assert relative_change(gaussian_bias, m2) > 1e-2


# ------------------------------------------------- translation invariance of the exact theory

SHIFTS = {1: np.array([0.7]), 2: np.array([0.4, -0.7])}
TRANSLATION_INPUTS = {1: np.array([[-0.9], [-0.3], [0.2], [0.8]]), 2: COS_INPUTS[2][:3]}


def exact_parts(exact: SingleLayerExact, width: float) -> dict[str, np.ndarray]:
    th = exact.at_width(width)
    return {"K": th.K, "G4_conn": th.G4_conn, "G6_conn": th.G6_conn}


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("scale_shape", [None, 4.0])
def test_exact_cos_theory_is_translation_invariant(d, scale_shape):
    """K, G4_conn and G6_conn of the cos-net at inputs x and x + c agree to rounding (at N = 3,
    and N = infinity with a shared readout scale, where G4_conn and G6_conn do not vanish)."""
    x = TRANSLATION_INPUTS[d]
    a = SingleLayerExact("cos", x, COS_SW0, 0.0, 1.0, 0.3, scale_shape)
    b = SingleLayerExact("cos", x + SHIFTS[d], COS_SW0, 0.0, 1.0, 0.3, scale_shape)
    widths = (3,) if scale_shape is None else (3, math.inf)
    for width in widths:
        pa, pb = exact_parts(a, width), exact_parts(b, width)
        for name in pa:
            assert np.max(np.abs(pa[name])) > 1e-4, f"{name} is ~0: nothing compared"
            assert close(pa[name], pb[name]), (
                f"{name} at N = {width} moved by {relative_change(pa[name], pb[name]):.1e}"
            )


@pytest.mark.parametrize(
    ("arch", "d", "sigmas", "kernel_invariant"),
    [
        ("relu", 1, {"sw0": 1.0, "sb0": 0.5}, False),
        ("erf", 1, {"sw0": 1.0, "sb0": 0.5}, False),
        ("gauss", 1, {"sw0": 0.5, "sb0": 0.3}, True),
        ("relu", 2, {"sw0": 1.0, "sb0": 0.0}, False),
        ("gauss", 2, {"sw0": 0.5, "sb0": 0.3}, True),
    ],
)  # fmt: skip
def test_translation_identity_has_teeth(arch, d, sigmas, kernel_invariant):
    """The same shift changes the exact theory of other priors far beyond the rounding bound:
    every correlator of ReLU and erf, and G4_conn, G6_conn of Gauss-net (whose *kernel* alone is
    translation invariant, docs/physics.md section 1.2, and passes the identity)."""
    x = TRANSLATION_INPUTS[d][:3]  # erf's certified quadrature is cheap for three inputs
    a = SingleLayerExact(arch, x, sigmas["sw0"], sigmas["sb0"], 1.0, 0.3)
    b = SingleLayerExact(arch, x + SHIFTS[d], sigmas["sw0"], sigmas["sb0"], 1.0, 0.3)
    assert a.units.accuracy < 1e-10 and b.units.accuracy < 1e-10
    pa, pb = exact_parts(a, 3), exact_parts(b, 3)
    for name in pa:
        if name == "K" and kernel_invariant:
            assert close(pa[name], pb[name])
        else:
            change = relative_change(pa[name], pb[name])
            assert change > 1e6 * ROUNDING, f"{arch}: {name} changed by only {change:.1e}"


# ------------------------------------------- translation invariance measured in one ensemble

SHIFT = 0.5
SHIFT_PRIORS = {
    "cos": {"sigma_w0": 1.5, "sigma_b0": 0.0, "sigma_b1": 0.3},
    "relu": {"sigma_b0": 0.5, "sigma_b1": 0.3},
    "gauss": {"sigma_w0": 0.4, "sigma_b0": 0.3},
}
INVARIANT = {
    "cos": {"G2": True, "G4_conn": True, "G6_conn": True},
    "relu": {"G2": False, "G4_conn": False, "G6_conn": False},
    "gauss": {"G2": True, "G4_conn": False, "G6_conn": False},
}
"""Which correlators are translation invariant (exactly): the verdict the test must reach."""
SHIFT_WIDTH, SHIFT_NETWORKS = 2, 20_000


def shifted_spec(arch: str):
    base = INPUTS["cos"]
    inputs = [*base, *(v + SHIFT for v in base)]  # inputs 0-3: x; inputs 4-7: x + c
    return make_spec(arch, SHIFT_WIDTH, SHIFT_NETWORKS, block_size=SHIFT_NETWORKS // 100,
                     inputs=inputs, estimator="conditional", family=f"{arch}_shift",
                     **SHIFT_PRIORS[arch])  # fmt: skip


@functools.cache
def shifted_rows(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the 8-input colex tuples over inputs 0-3 (a prefix) and of the same tuples with
    every index moved to the shifted copy (+4)."""
    pos = tup.tuple_position(order, tup.sorted_tuples(8, order))
    first = tup.sorted_tuples(4, order)
    second = [pos[tuple(int(i) + 4 for i in row)] for row in first.tolist()]
    return np.arange(len(first)), np.asarray(second)


CORRELATORS = {
    "G2": (2, lambda m, n: m["f2"]),
    "G4_conn": (4, lambda m, n: tup.connected4(m["f4"], m["f2"], n)),
    "G6_conn": (6, lambda m, n: tup.connected6(m["f6"], m["f4"], m["f2"], n)),
}


@pytest.mark.parametrize("arch", list(SHIFT_PRIORS))
def test_measured_translation_invariance(arch, point_runner):
    """One ensemble (conditional estimator, N = 2) at x and x + c: per tuple the difference
    G(x + c) - G(x), jackknifed as one estimator, max-|z| against 0.  cos-net: consistent for G2,
    G4_conn and G6_conn, each of which is resolved far from 0 on both sets (so it is not passing
    by measuring nothing).  The same procedure and sample size reject ReLU with a bias on every
    correlator and Gauss-net on G4_conn (its kernel passes).  For every prior the measured
    differences agree with the exact ones, so a rejection is physics, not a broken error bar.
    Only error bars not flagged heavy-tailed (npoint.analyze_point) are used: Gauss-net's
    lognormal sixth moments at the shifted inputs are flagged (error ratio ~0.1), so its G6_conn
    is left out; cos and ReLU must be trusted on all three."""
    spec = shifted_spec(arch)
    merged = point_runner(spec)
    assert "readout_scale_shape" not in merged.attrs  # independent readout: no new attribute
    bias = "b0 ~ U(-pi, pi)" if arch == "cos" else "b0 ~ N(0, sigma_b0^2)"
    assert bias in merged.attrs["weights_convention"], merged.attrs["weights_convention"]
    counts = merged["count"].values
    sums = {k: merged[f"sum_{k}"].values for k in ("f2", "f4", "f6")}
    p = spec.params
    theory = SingleLayerExact(arch, np.asarray(p["inputs"]), p["sigma_w0"], p["sigma_b0"],
                              p["sigma_w1"], p["sigma_b1"])  # fmt: skip
    flags = npoint.analyze_point(merged, theory, {})
    trusted = [name for name, (order, _) in CORRELATORS.items()
               if order == 2 or int(flags[f"heavy_tail{order}"]) == 0]  # fmt: skip
    required = ["G2", "G4_conn"] if arch == "gauss" else list(CORRELATORS)
    assert set(required) <= set(trusted), f"{arch}: error bars flagged, trusted only {trusted}"
    exact = theory.at_width(SHIFT_WIDTH)
    exact_of = {"G2": exact.K, "G4_conn": exact.G4_conn, "G6_conn": exact.G6_conn}
    for name in trusted:
        order, correlator = CORRELATORS[name]
        first, second = shifted_rows(order)

        def diff(m, correlator=correlator, first=first, second=second):
            c = correlator(m, 8)
            return c[..., second] - c[..., first]

        est = stats.jackknife(sums, counts, diff)
        level = stats.jackknife(sums, counts, lambda m, c=correlator: c(m, 8))
        exact_diff = exact_of[name][second] - exact_of[name][first]
        null = stats.max_z_test(est.value, est.stderr, np.zeros_like(est.value), ALPHA, dof(spec))
        truth = stats.max_z_test(est.value, est.stderr, exact_diff, ALPHA, dof(spec))
        assert truth.consistent, f"{arch} {name}: differences off the exact ones: {truth}"
        if INVARIANT[arch][name]:
            assert np.max(np.abs(exact_diff)) <= ROUNDING * np.max(np.abs(exact_of[name]))
            assert null.consistent, f"{arch} {name}: translation invariance rejected: {null}"
            for rows in (first, second):
                resolved = float(np.max(np.abs(level.value[rows]) / level.stderr[rows]))
                assert resolved > need(len(rows), spec), f"{arch} {name}: not resolved from 0"
        else:
            assert not null.consistent, f"{arch} {name}: a non-invariant prior passed: {null}"


# ------------------------------------------------------------ shared readout scale: Monte Carlo

SCALE_SHAPE = 4.0
SHARED = {"sigma_b0": 0.5, "sigma_b1": 1.0, "readout_scale_shape": SCALE_SHAPE}
SHARED_RUNS = [(2, "conditional", 100_000), (10, "conditional", 20_000),
               (1000, "conditional", 20_000), (10, "brute", 100_000)]  # fmt: skip


def shared_spec(width: int, estimator: str, networks: int):
    return make_spec("relu", width, networks, block_size=networks // 100, estimator=estimator,
                     family="relu_shared", **SHARED)  # fmt: skip


@functools.cache
def shared_exact(scale_shape: float | None = SCALE_SHAPE) -> SingleLayerExact:
    x = np.asarray(INPUTS["relu"], dtype=np.float64)[:, None]
    return SingleLayerExact("relu", x, 1.0, SHARED["sigma_b0"], 1.0, SHARED["sigma_b1"],
                            scale_shape)  # fmt: skip


def shared_analysis(width: int, estimator: str, networks: int, point_runner):
    spec = shared_spec(width, estimator, networks)
    merged = point_runner(spec)
    assert float(merged.attrs["readout_scale_shape"]) == SCALE_SHAPE  # the prior is recorded
    out = npoint.analyze_point(merged, shared_exact(), {})
    return spec, out


@pytest.mark.parametrize(("width", "estimator", "networks"), SHARED_RUNS)
def test_shared_scale_matches_exact(width, estimator, networks, point_runner):
    """ReLU (sb0 0.5, sb1 1) with s^2 ~ Gamma(4, 1/4): G2 = K, and G4_conn and G6_conn equal the
    exact shared-scale values (Var(s^2) sum_3 K_g K_g + E[s^4] kappa4/N for G4_conn) where the
    test has power: G4_conn always, G6_conn by the conditional estimator at every N (brute force
    at N = 10 lacks the power)."""
    spec, out = shared_analysis(width, estimator, networks, point_runner)
    th = shared_exact().at_width(width)
    assert int(out["heavy_tail4"]) == 0, "this setting should not be flagged heavy-tailed"
    g2 = stats.max_z_test(out["G2"].values, out["G2_se"].values, th.K, ALPHA, dof(spec))
    assert g2.consistent, f"G2 vs kernel: {g2}"
    for name, exact in (("G4_conn", th.G4_conn), ("G6_conn", th.G6_conn)):
        power = float(np.max(np.abs(exact) / out[f"{name}_se"].values))
        has_power = power > need(exact.size, spec) and int(out[f"heavy_tail{name[1]}"]) == 0
        if estimator == "conditional" or name == "G4_conn":
            assert has_power, f"{name}: no power ({power:.1f} s.e.)"
        if has_power:
            z = stats.max_z_test(out[name].values, out[f"{name}_se"].values, exact, ALPHA,
                                 dof(spec))  # fmt: skip
            assert z.consistent, f"{name} vs exact shared-scale value: {z}"


def test_shared_scale_rejects_wrong_predictions(point_runner):
    """The same data reject plausible wrong theories.  N = 1000: (a) independent readout weights
    (SingleLayerExact without scale_shape: G4_conn ~ 1/N, G6_conn ~ 1/N^2, both ~0) and (b) a
    plateau built on the full kernel, Var(s^2) sum_3 K K, instead of K_g = K - sb1^2.  N = 2:
    (c) the 1/N term without its E[s^4], Var(s^2) sum_3 K_g K_g + kappa4/N."""
    n, a = shared_exact().n_inputs, SCALE_SHAPE
    kg = shared_exact().K - SHARED["sigma_b1"] ** 2
    spec, out = shared_analysis(1000, "conditional", 20_000, point_runner)
    exact = shared_exact().at_width(1000)
    independent = shared_exact(None).at_width(1000)
    wrong = {
        "(a) independent G4_conn": ("G4_conn", independent.G4_conn),
        "(a) independent G6_conn": ("G6_conn", independent.G6_conn),
        "(b) plateau of K": ("G4_conn", tup.wick4(shared_exact().K, n) / a
                             + (1 + 1 / a) * shared_exact().kappa4_unit / 1000),
    }  # fmt: skip
    for what, (name, value) in wrong.items():
        right = exact.G4_conn if name == "G4_conn" else exact.G6_conn
        ok = stats.max_z_test(out[name].values, out[f"{name}_se"].values, right, ALPHA, dof(spec))
        assert ok.consistent, f"exact {name} must pass first: {ok}"
        bad = stats.max_z_test(out[name].values, out[f"{name}_se"].values, value, ALPHA, dof(spec))
        assert not bad.consistent, f"{what} passed: {bad}"
    spec, out = shared_analysis(2, "conditional", 100_000, point_runner)
    no_e4 = tup.wick4(kg, n) / a + shared_exact().kappa4_unit / 2
    bad = stats.max_z_test(out["G4_conn"].values, out["G4_conn_se"].values, no_e4, ALPHA, dof(spec))
    assert not bad.consistent, f"(c) kappa4/N without E[s^4] passed: {bad}"


# ------------------------------------------------------ shared readout scale: exact identities


def test_shared_scale_moments_and_plateaus():
    """scale_moments are the Gamma(a, 1/a) moments Gamma(a + j) / (Gamma(a) a^j).  At
    N = infinity f - b1 is a Gaussian scale mixture, so G4_conn = kappa_2(s^2) sum_3 K_g K_g =
    (1/a) wick4(K_g) and G6_conn = kappa_3(s^2) sum_15 K_g K_g K_g = (2/a^2) wick6(K_g); an
    independent family has none; a -> infinity (s = 1) gives back the independent theory."""
    from scipy.special import gammaln

    for a in (0.5, 4.0, 37.0):
        expected = np.exp([gammaln(a + j) - gammaln(a) - j * np.log(a) for j in range(7)])
        assert close(scale_moments(a, 7), expected)
    assert np.all(scale_moments(None, 7) == 1.0)
    exact = shared_exact()
    n, a = exact.n_inputs, SCALE_SHAPE
    kg = exact.K - SHARED["sigma_b1"] ** 2
    limit = exact.at_width(math.inf)
    assert close(limit.G4_conn, tup.wick4(kg, n) / a)
    assert close(limit.G6_conn, 2.0 / a**2 * tup.wick6(kg, n))
    assert close(limit.K, exact.K)
    independent = shared_exact(None).at_width(math.inf)
    assert np.all(independent.G4_conn == 0.0) and np.all(independent.G6_conn == 0.0)
    huge = shared_exact(1e15)  # Var(s^2) = 1e-15
    for width in (2, 10, 1000):
        s, i = huge.at_width(width), shared_exact(None).at_width(width)
        assert close(s.G4_conn, i.G4_conn, 1e-9) and close(s.G6_conn, i.G6_conn, 1e-9)


DIAGONAL_PRIORS = {
    "relu": ("relu", np.asarray(INPUTS["relu"])[:, None], 1.0, 0.5, 1.0, 1.0),
    "cos": ("cos", TRANSLATION_INPUTS[1], COS_SW0, 0.0, 1.0, 0.3),
}


@pytest.mark.parametrize("scale_shape", [None, SCALE_SHAPE])
@pytest.mark.parametrize("prior", list(DIAGONAL_PRIORS))
def test_diagonal_moments_are_the_correlator_diagonals(prior, scale_shape):
    """diagonal_output_moments (E f^(2k) = (2k - 1)!! E[S^k], conditional on the hidden layer and
    s) agrees with the diagonal entries of K, G4 = G4_conn + sum_3 K K and
    G6 = G6_conn + sum_(4|2) G4 K - 2 sum_15 K K K of at_width, at N = 1, 3, 1000 and infinity:
    two derivations, one identity."""
    arch, x, *sigmas = DIAGONAL_PRIORS[prior]
    exact = SingleLayerExact(arch, x, *sigmas, scale_shape)
    n = exact.n_inputs
    diag = {k: np.array([tup.tuple_position(k, tup.sorted_tuples(n, k))[(a,) * k]
                         for a in range(n)]) for k in (2, 4, 6)}  # fmt: skip
    for width in (1, 3, 1000, math.inf):
        th = exact.at_width(width)
        g6 = th.G6_conn + tup.split42(th.G4, th.K, n) - 2.0 * tup.wick6(th.K, n)
        mom = diagonal_output_moments(exact, width, 6)
        assert np.all(mom[0] == 1.0)
        for k, full in ((1, th.K[diag[2]]), (2, th.G4[diag[4]]), (3, g6[diag[6]])):
            assert close(mom[k], full), f"E f^{2 * k} at N = {width}"
    if scale_shape is not None:  # teeth: the shared scale changes the diagonal moments
        plain = diagonal_output_moments(SingleLayerExact(arch, x, *sigmas), math.inf, 6)
        assert relative_change(plain[2], diagonal_output_moments(exact, math.inf, 6)[2]) > 1e-2


# ---------------------------------------------------------------------------- configuration

BASE = {
    "studies": {
        "npoint": {
            "seed": 1,
            "networks": 20000,
            "block_size": 1000,
            "widths": [2, 10],
            "families": [{"name": "relu", "arch": "relu", "inputs": [0.5, 1.0]}],
        }
    }
}
OLD_HASH = "0f27c411da4c3f8bd145bf7ed6b4c749f034f329a0c4be803428c0dc32fdb8b9"
"""sha256 of BASE's family~relu/width~2 spec as expanded before the two priors were added (commit
459c33e, the parent of 2197ea8): a family without readout_scale must keep it."""


def with_family(**family):
    cfg = copy.deepcopy(BASE)
    cfg["studies"]["npoint"]["families"].append({"name": "extra", "inputs": [0.5, 1.0], **family})
    return cfg


@pytest.mark.parametrize("sigma_b0", [0.3, None])  # None: the schema default 1.0
def test_cos_with_nonzero_sigma_b0_is_refused(sigma_b0):
    family = {"arch": "cos"} if sigma_b0 is None else {"arch": "cos", "sigma_b0": sigma_b0}
    with pytest.raises(config.ConfigError) as info:
        config.validate(with_family(**family))
    assert "'studies.npoint.families[1].sigma_b0'" in str(info.value), str(info.value)
    points = config.expand(config.validate(with_family(arch="cos", sigma_b0=0.0)))["npoint"]
    assert {s.params["arch"] for s in points.values()} == {"relu", "cos"}


def test_readout_scale_is_carried_only_where_given():
    cfg = with_family(arch="relu", readout_scale={"distribution": "gamma", "shape": 4})
    points = config.expand(config.validate(cfg))["npoint"]
    shared = [s for s in points.values() if s.params["family"] == "extra"]
    plain = [s for s in points.values() if s.params["family"] == "relu"]
    assert len(shared) == len(plain) == 2
    for spec in shared:
        shape = spec.params["readout_scale_shape"]
        assert shape == 4.0 and isinstance(shape, float)
    assert all("readout_scale_shape" not in s.params for s in plain)
    assert points["family~relu/width~2"].sha256 == OLD_HASH
    alone = config.expand(config.validate(BASE))["npoint"]["family~relu/width~2"]
    assert alone.sha256 == OLD_HASH


@pytest.mark.parametrize(
    ("scale", "key"),
    [({"distribution": "gamma", "shape": 0}, "readout_scale.shape"),
     ({"distribution": "gamma"}, "readout_scale.shape"),
     ({"distribution": "lognormal", "shape": 2}, "readout_scale.distribution")],
)  # fmt: skip
def test_bad_readout_scale_names_the_key(scale, key):
    with pytest.raises(config.ConfigError) as info:
        config.validate(with_family(arch="relu", readout_scale=scale))
    assert f"'studies.npoint.families[1].{key}'" in str(info.value), str(info.value)
