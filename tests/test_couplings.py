"""Tree-level integrals and coupling fits (nnfield.studies.npoint.coupling_theory) against exact
results.

Integrals are checked against closed forms (docs/physics.md section 1: ReLU homogeneity, Gaussian
integrals of the Gauss-net kernel); Monte Carlo integrals and Monte Carlo couplings with z-scores
built from their own error bars.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import make_spec
from scipy import special
from scipy import stats as sps

from nnfield import stats
from nnfield import tuples as tup
from nnfield.config import ConfigError, validate
from nnfield.studies.npoint import analyze as npoint
from nnfield.studies.npoint import coupling_theory as cp
from nnfield.studies.npoint import sample as npoint_sample
from nnfield.studies.npoint.couplings import family_integrals, point_couplings
from nnfield.theory.finite_width import SingleLayerExact

ALPHA = 1e-3
RELU_X = np.array([0.2, 0.4, 0.6, 0.8, 1.0, 1.2])[:, None]
GAUSS_X = 0.01 * np.array([-1.0, -0.6, -0.2, 0.2, 0.6, 1.0])[:, None]


def gauss_integral_1d(xs, cutoff, sw0=1.0, sw1=1.0, sb1=1.0):
    """Closed form of integral_{-L}^{L} prod_i K(x_i, y) dy for the d = 1 Gauss-net kernel
    K = sb1^2 + sw1^2 exp(-sw0^2 (x - y)^2 / 2): expand the product over subsets S of the
    factors, each a Gaussian in y integrated with erf."""
    a = sw0**2
    total = 0.0
    n = len(xs)
    for k in range(n + 1):
        for subset in itertools.combinations(range(n), k):
            if k == 0:
                value = 2 * cutoff
            else:
                x = np.array([xs[i] for i in subset])
                m = x.mean()
                c = np.sqrt(a * k / 2)
                value = np.exp(-a / 2 * (np.sum(x**2) - k * m * m)) * np.sqrt(np.pi) / (2 * c)
                value *= special.erf(c * (cutoff - m)) + special.erf(c * (cutoff + m))
            total += sb1 ** (2 * (n - k)) * sw1 ** (2 * k) * value
    return total


def test_relu_integrals_and_lambda_are_homogeneous():
    """sb = 0, d = 1, positive inputs: K(x, y) = x y / 2 for y > 0, so int K^4 = prod x L^5 / 80,
    and with the exact G4_conn = 3.75 prod x / N the coupling is lambda = -300 / (N L^5), i.e.
    the original code's lambda_m = -lambda / 24 = 12.5 / (N L^5) (docs/physics.md section 1)."""
    prior = cp.Prior("relu", 1.0, 0.0, 1.0, 0.0)
    exact = SingleLayerExact("relu", RELU_X, 1.0, 0.0, 1.0, 0.0)
    t4, t6 = tup.sorted_tuples(6, 4), tup.sorted_tuples(6, 6)
    for cutoff in (2.0, 10.0, 1000.0):
        ti = cp.tree_integrals(prior, RELU_X, cutoff)
        np.testing.assert_allclose(
            ti.quartic[0, :, 0], np.prod(RELU_X[t4, 0], axis=1) * cutoff**5 / 80, rtol=1e-12
        )
        np.testing.assert_allclose(
            ti.sextic[0], np.prod(RELU_X[t6, 0], axis=1) * cutoff**7 / (64 * 7), rtol=1e-12
        )
        # each of the 10 exchange splits: prod x / 128 (L^5 / 5)^2
        np.testing.assert_allclose(
            ti.exchange[0], np.prod(RELU_X[t6, 0], axis=1) * 10 / 128 * cutoff**10 / 25,
            rtol=1e-12,
        )  # fmt: skip
        for width in (2, 20, 1000):
            g4 = exact.at_width(width).G4_conn
            fit = cp.LinearFit.build(-ti.quartic[0, :, :1], np.diag(g4**2), 100, "relu")
            lam = fit.coefficients(g4)[0]
            assert lam == pytest.approx(-300 / (width * cutoff**5), rel=1e-10)
            assert -lam / 24 == pytest.approx(12.5 / (width * cutoff**5), rel=1e-10)


@pytest.mark.parametrize("cutoff", [2.0, 10.0, 300.0])
def test_gauss_integrals_match_closed_form(cutoff):
    prior = cp.Prior("gauss", 1.0, 1.0, 1.0, 1.0)
    x = 30 * GAUSS_X  # inputs at the 0.3 scale make the tuples distinguishable
    ti = cp.tree_integrals(prior, x, cutoff)
    for order, got in ((4, ti.quartic[0, :, 0]), (6, ti.sextic[0])):
        want = [gauss_integral_1d(x[row, 0], cutoff) for row in tup.sorted_tuples(6, order)]
        np.testing.assert_allclose(got, want, rtol=1e-11)
    assert ti.accuracy < 1e-10


def test_gauss_exchange_matches_dense_double_quadrature():
    """The banded ridge rule for the exchange diagram against a brute dense product rule."""
    prior = cp.Prior("gauss", 1.3, 1.0, 0.8, 0.7)
    x = np.array([-0.5, 0.1, 0.7])[:, None]
    cutoff = 4.0
    ti = cp.tree_integrals(prior, x, cutoff)
    t, w = np.polynomial.legendre.leggauss(40)
    edges = np.linspace(-cutoff, cutoff, 41)
    y = (edges[:-1, None] + np.diff(edges)[:, None] * (t + 1) / 2).ravel()
    wy = (np.diff(edges)[:, None] / 2 * w).ravel()
    kxy = prior.kernel(x, y[:, None])
    kyy = prior.kernel(y[:, None], y[:, None])
    for row, value in zip(tup.sorted_tuples(3, 6), ti.exchange[0], strict=True):
        want = 0.0
        for half in ([0, *rest] for rest in itertools.combinations(range(1, 6), 2)):
            other = [i for i in range(6) if i not in half]
            a = np.prod(kxy[row[half]], axis=0) * wy
            b = np.prod(kxy[row[other]], axis=0) * wy
            want += a @ kyy @ b
        assert value == pytest.approx(want, rel=1e-9)


def test_polar_rule_d2_matches_radial_closed_form():
    """Inputs at the origin: K(0, y) = sb1^2 + exp(-|y|^2 / 4) for d = 2 (sw0 = 1), so
    int_{|y|<L} K^4 = sum_k C(4, k) sb1^(2(4-k)) pi (4 / k) (1 - exp(-k L^2 / 4))."""
    prior = cp.Prior("gauss", 1.0, 1.0, 1.0, 0.5)
    x = np.zeros((2, 2))
    cutoff = 3.0
    ti = cp.tree_integrals(prior, x, cutoff)
    want = 0.25**4 * np.pi * cutoff**2 + sum(
        special.comb(4, k) * 0.25 ** (4 - k) * np.pi * 4 / k * (1 - np.exp(-k * cutoff**2 / 4))
        for k in range(1, 5)
    )
    np.testing.assert_allclose(ti.quartic[0, :, 0], want, rtol=1e-10)
    relu = cp.Prior("relu", 1.0, 0.0, 1.0, 0.0)
    xr = np.array([[0.3, 0.9], [1.0, -0.2], [0.6, 0.5]])
    ratio = cp.tree_integrals(relu, xr, 6.0).quartic / cp.tree_integrals(relu, xr, 3.0).quartic
    np.testing.assert_allclose(ratio, 2.0 ** (2 + 4), rtol=1e-8)  # lambda ~ L^-(d+4)


def test_monte_carlo_integrals_d3_agree_within_their_errors():
    """d = 3: randomised QMC replicas against the radial closed form, t-test on the replicas
    (their standard error is estimated from 16 replicas: Student t with 15 dof)."""
    prior = cp.Prior("gauss", 1.0, 1.0, 1.0, 0.0)  # K(0, y) = exp(-|y|^2 / 6)
    x = np.zeros((1, 3))
    cutoff = 2.5
    ti = cp.tree_integrals(prior, x, cutoff, mc_points=2048, mc_replicas=16, seed=7)
    reps = ti.quartic[:, 0, 0]
    c = 4 / 6  # exp(-c |y|^2) with c = 4 / (2 d)
    r = cutoff
    want = (
        4
        * np.pi
        * (
            np.sqrt(np.pi) / (4 * c**1.5) * special.erf(np.sqrt(c) * r)
            - r * np.exp(-c * r * r) / (2 * c)
        )
    )
    z = (reps.mean() - want) / (reps.std(ddof=1) / np.sqrt(reps.size))
    assert abs(z) < stats.bonferroni_t(ALPHA, 1, reps.size - 1), f"QMC off by {z:.1f} s.e."
    assert reps.std() > 0  # replicas differ: the error bar is real


def test_gauss_lambda_from_exact_g4_matches_analytic_integrals():
    """Acceptance: lambda fitted to the exact finite-N G4_conn of Gauss-net with the quadrature
    integrals equals the fit with the closed-form integrals (to the quadrature accuracy), lies
    within the per-tuple analytic ratios -G4_conn / int K^4, and N lambda is the same at every N."""
    exact = SingleLayerExact("gauss", GAUSS_X, 1.0, 1.0, 1.0, 1.0)
    prior = cp.Prior("gauss", 1.0, 1.0, 1.0, 1.0)
    t4 = tup.sorted_tuples(6, 4)
    cutoff = 10.0
    quad = cp.tree_integrals(prior, GAUSS_X, cutoff).quartic[0, :, :1]
    closed = np.array([[gauss_integral_1d(GAUSS_X[row, 0], cutoff)] for row in t4])
    scaled = []
    for width in (2, 100, 1000):
        g4 = exact.at_width(width).G4_conn
        cov = np.diag((0.01 * g4) ** 2)
        lam_quad = cp.LinearFit.build(-quad, cov, 100, "quad").coefficients(g4)[0]
        lam_closed = cp.LinearFit.build(-closed, cov, 100, "closed").coefficients(g4)[0]
        assert lam_quad == pytest.approx(lam_closed, rel=1e-10)
        ratios = -g4 / closed[:, 0]
        assert ratios.min() <= lam_closed <= ratios.max()
        scaled.append(width * lam_quad)
    np.testing.assert_allclose(scaled, scaled[0], rtol=1e-12)


def test_too_few_tuples_is_a_clear_error():
    with pytest.raises(cp.CouplingFitError, match=r"1 tuple.*cannot determine 1 coefficient"):
        cp.LinearFit.build(np.ones((1, 1)), np.eye(1), 100, "lambda")
    with pytest.raises(cp.CouplingFitError, match="not distinguishable"):
        design = np.outer(np.arange(1.0, 6.0), [1.0, 2.0])  # two proportional basis functions
        cp.LinearFit.build(design, np.eye(5), 100, "lambda(y)")
    config = {
        "studies": {
            "npoint": {
                "seed": 1, "networks": 10000, "widths": [2],
                "families": [{"name": "one", "arch": "erf", "inputs": [0.5]}],
            }
        }
    }  # fmt: skip
    with pytest.raises(ConfigError, match=r"families\[0\]\.inputs.*1 input.*1 sorted 4-tuple"):
        validate(config)
    config["studies"]["npoint"]["families"][0]["inputs"] = [0.5, 3.0]
    with pytest.raises(ConfigError, match=r"couplings\.cutoffs.*does not contain the inputs"):
        validate(config)


def test_chi2_is_calibrated_and_detects_a_wrong_model():
    """Synthetic blocks g_b = A c + correlated noise, T = 35 > (B - 1) / 2: the correct model's
    chi^2 follows chi^2(dof) (two-sided test at ALPHA); a model missing a basis function fails."""
    rng = np.random.default_rng(3)
    n_blocks, n_tuples = 200, 35
    t = np.linspace(-1, 1, n_tuples)
    design = np.stack([np.ones_like(t), t**2], axis=1)
    root = np.exp(-np.abs(t[:, None] - t[None, :]) / 0.3) * 0.05
    blocks = design @ [1.0, 0.4] + rng.standard_normal((n_blocks, n_tuples)) @ root
    counts = np.ones(n_blocks)
    reps = stats.jackknife_replicates({"g": blocks}, counts, lambda m: m["g"])
    cov = cp.jackknife_covariance(reps[1:])
    good = cp.LinearFit.build(design, cov, n_blocks, "good")
    chi2 = float(good.chi2(reps[0]))
    lo, hi = sps.chi2.ppf([ALPHA / 2, 1 - ALPHA / 2], good.dof)
    assert lo < chi2 < hi, f"chi2 {chi2:.1f} for {good.dof} dof"
    coef = stats.from_replicates(good.coefficients(reps))
    z = (coef.value - [1.0, 0.4]) / coef.stderr
    assert np.all(np.abs(z) < stats.bonferroni_t(ALPHA, 2, n_blocks - 1)), z
    bad = cp.LinearFit.build(design[:, :1], cov, n_blocks, "bad")
    assert float(bad.chi2(reps[0])) > sps.chi2.ppf(1 - 1e-9, bad.dof)


def test_monte_carlo_couplings_scale_as_one_over_n(point_runner):
    """Acceptance: lambda and kappa from simulated ensembles (conditional estimator) agree with
    the exact couplings at every width (Bonferroni max-|z| over widths and cutoffs, Student t
    with blocks - 1 dof), and
    N lambda is constant across widths (chi^2 test against its weighted mean)."""
    inputs = [-1.0, -0.4, 0.3, 1.0]
    options = {"cutoffs": [3.0, 10.0, 30.0], "reference_cutoff": 10.0, "basis": 2,
               "profile_points": 5, "mc_points": 256, "mc_replicas": 2}  # fmt: skip
    widths = (3, 30, 300)
    z_lambda, z_kappa, scaled, scaled_se = [], [], [], []
    for width in widths:
        spec = make_spec("erf", width, 40_000, inputs=inputs, estimator="conditional",
                         sigma_w0=2.0, sigma_b0=0.5)  # fmt: skip
        merged = point_runner(spec)
        dof = int(merged.attrs["n_blocks"]) - 1  # jackknife errors over the blocks
        exact = npoint._theory(merged.attrs, merged["x"].values)
        fam = family_integrals(merged.attrs, merged["x"].values, options, seed=1, label="erf")
        out = npoint.analyze_point(merged, exact, {}, fam)
        z_lambda.extend((out["lambda"] - out["lambda_exact"]) / out["lambda_se"])
        if width == 3:  # the same data reject a 1/(N+1) law (lambda 25% too small)
            wrong = out["lambda_exact"] * width / (width + 1)
            z_wrong = np.abs((out["lambda"] - wrong) / out["lambda_se"])
            assert float(z_wrong.max()) > stats.bonferroni_t(ALPHA, 18, dof)
        z_kappa.extend((out["kappa"] - out["kappa_exact"]) / out["kappa_se"])
        assert np.all(np.isfinite(out["lambda_chi2dof"])), "fits report chi^2/dof"
        ref = out.sel(cutoff=10.0)
        scaled.append(width * float(ref["lambda"]))
        scaled_se.append(width * float(ref["lambda_se"]))
    crit = stats.bonferroni_t(ALPHA, len(z_lambda) + len(z_kappa), dof)
    assert np.max(np.abs(z_lambda)) < crit, f"lambda vs exact: z = {np.round(z_lambda, 2)}"
    assert np.max(np.abs(z_kappa)) < crit, f"kappa vs exact: z = {np.round(z_kappa, 2)}"
    scaled, scaled_se = np.array(scaled), np.array(scaled_se)
    mean = np.average(scaled, weights=scaled_se**-2)
    chi2 = float(np.sum(((scaled - mean) / scaled_se) ** 2))
    assert chi2 < sps.chi2.ppf(1 - ALPHA, len(widths) - 1), f"N lambda = {scaled} +- {scaled_se}"
    assert np.all(np.abs(scaled) > 5 * scaled_se), "the test must resolve lambda at every width"


def test_point_couplings_without_theory_has_no_exact_columns():
    rng = np.random.default_rng(0)
    prior_attrs = {"arch": "erf", "sigma_w0": 1.0, "sigma_b0": 1.0, "sigma_w1": 1.0,
                   "sigma_b1": 1.0}  # fmt: skip
    x = np.array([-1.0, -0.2, 0.5, 1.0])[:, None]
    options = {"cutoffs": [2.0, 5.0], "reference_cutoff": 2.0, "basis": 1, "profile_points": 3,
               "mc_points": 64, "mc_replicas": 2}  # fmt: skip
    fam = family_integrals(prior_attrs, x, options, seed=0)
    reps4 = 1e-3 + 1e-4 * rng.standard_normal((21, 35))
    reps6 = 1e-4 + 1e-5 * rng.standard_normal((21, 84))
    out = point_couplings(reps4, reps6, None, None, fam)
    assert np.isnan(out["lambda_exact"]).all() and np.isfinite(out["lambda"]).all()


def test_relu_d2_exchange_and_sextic_are_homogeneous():
    """sb = 0: K is homogeneous of degree 1 in y, so in d = 2 int K^6 ~ L^(6+2) and the exchange
    double integral ~ L^(2 (4 + 2)); the coarser exchange rule must keep that to 1e-6."""
    relu = cp.Prior("relu", 1.0, 0.0, 1.0, 0.0)
    x = np.array([[0.3, 0.9], [1.0, -0.2], [0.6, 0.5]])
    small, large = cp.tree_integrals(relu, x, 3.0), cp.tree_integrals(relu, x, 6.0)
    np.testing.assert_allclose(large.sextic / small.sextic, 2.0**8, rtol=1e-8)
    np.testing.assert_allclose(large.exchange / small.exchange, 2.0**12, rtol=1e-6)
    assert small.accuracy < 1e-6


def test_monte_carlo_integration_error_reaches_the_couplings():
    """d = 3 families: the spread over integration replicas is part of lambda's error bar."""
    rng = np.random.default_rng(1)
    attrs = {"arch": "erf", "sigma_w0": 1.0, "sigma_b0": 1.0, "sigma_w1": 1.0, "sigma_b1": 1.0}
    x = np.array([[0.5, 0.1, -0.3], [-0.2, 0.4, 0.6], [0.3, -0.5, 0.2]])
    options = {"cutoffs": [2.0], "reference_cutoff": 2.0, "basis": 1, "profile_points": 3,
               "mc_points": 256, "mc_replicas": 4}  # fmt: skip
    fam = family_integrals(attrs, x, options, seed=3)
    assert fam.integrals[0].replicas == 4 and np.isnan(fam.accuracy)
    reps4 = 1e-3 * (1 + 0.01 * rng.standard_normal((41, 15)))
    reps6 = 1e-4 * (1 + 0.01 * rng.standard_normal((41, 28)))
    out = point_couplings(reps4, reps6, None, None, fam)
    assert float(out["lambda_integration_se"][0]) > 0
    assert float(out["lambda_se"][0]) >= float(out["lambda_integration_se"][0])


def test_tuples_with_vanishing_integrals_do_not_set_the_coupling():
    """ReLU with sb = 0 and inputs of both signs: K(x, y) = 0 when x y < 0, so mixed-sign tuples
    have int K^4 = 0.  They get no weight; the same-sign tuples still give -300 / (N L^5)."""
    x = np.array([-1.0, -0.5, 0.5, 1.0])[:, None]
    exact = SingleLayerExact("relu", x, 1.0, 0.0, 1.0, 0.0).at_width(10)
    ti = cp.tree_integrals(cp.Prior("relu", 1.0, 0.0, 1.0, 0.0), x, 5.0)
    assert np.sum(ti.quartic[0, :, 0] < 1e-12 * ti.quartic.max()) > 0  # zero up to rounding
    fit = cp.LinearFit.build(-ti.quartic[0, :, :1], np.diag(exact.G4_conn**2 + 1e-6), 100, "relu")
    assert fit.coefficients(exact.G4_conn)[0] == pytest.approx(-300 / (10 * 5.0**5), rel=1e-10)
    with pytest.raises(cp.CouplingFitError, match="non-zero tree-level integral"):
        cp.LinearFit.build(np.zeros((5, 1)), np.eye(5), 100, "lambda")


# ------------------------------------------------------------------- quadratic counterterm (mu)


def _site_rule(sites: int, cutoff: float) -> cp.BallRule:
    """The ``sites``-node Gauss-Legendre rule on the d = 1 ball |y| < cutoff (1 site: y = 0)."""
    t, w = np.polynomial.legendre.leggauss(sites)
    return cp.BallRule(cutoff * t[:, None], cutoff * w)


def _gauss_hermite(kernel: np.ndarray, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor Gauss-Hermite rule for the Gaussian with covariance ``kernel``: fields (Q, n) and
    weights (Q,) summing to 1; exact for polynomials of degree < 2 nodes in every direction."""
    z, wz = np.polynomial.hermite_e.hermegauss(nodes)
    n = kernel.shape[0]
    grid = np.stack(np.meshgrid(*([z] * n), indexing="ij"), axis=-1).reshape(-1, n)
    weights = np.prod(np.stack(np.meshgrid(*([wz] * n), indexing="ij"), -1).reshape(-1, n), 1)
    return grid @ np.linalg.cholesky(kernel).T, weights / weights.sum()


def _vertex(fields: np.ndarray, weights: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """U with S = S_GP + lambda U: U = sum_i w_i [m_i f_i^2 / 2 + f_i^4 / 4!], mu = lambda m."""
    return (fields**2 * (weights * mass / 2) + fields**4 * (weights / 24)).sum(axis=1)


def _g2_exact(kernel, site_w, mass, lam, nodes):
    """<f_i f_j> under exp(-S), S = f K^-1 f / 2 + lambda U (Gauss-Hermite quadrature)."""
    f, p = _gauss_hermite(kernel, nodes)
    p = p * np.exp(-lam * _vertex(f, site_w, mass))
    return np.einsum("q,qi,qj->ij", p, f, f) / p.sum()


def _g2_expansion(kernel, site_w, mass):
    """Exact Taylor coefficients a_1, a_2, a_3 of G2(lambda) = K + sum_n a_n lambda^n.

    d^n <O> / d lambda^n at 0 is (-1)^n times the joint cumulant of O = f_i f_j with n copies of
    U, here moments of polynomials of degree <= 14 under the Gaussian: exact with 12 Gauss-Hermite
    nodes.  Also returns the rounding scale sum_q p_q |O_q| |U_q| of the first-order sum.
    """
    f, p = _gauss_hermite(kernel, 12)
    u = _vertex(f, site_w, mass)
    o = np.einsum("qi,qj->qij", f, f)
    scale = np.einsum("q,qij,q->ij", p, np.abs(o), np.abs(u)) * p.size
    u = u - p @ u
    o = o - np.einsum("q,qij->ij", p, o)
    k2 = np.einsum("q,qij,q->ij", p, o, u)
    k3 = np.einsum("q,qij,q->ij", p, o, u * u)
    k4 = np.einsum("q,qij,q->ij", p, o, u**3) - 3 * k2 * (p @ (u * u))
    return -k2, k3 / 2, -k4 / 6, scale


COUNTERTERM_CASES = {
    "zero-dim erf": (cp.Prior("erf", 1.0, 1.0, 1.0, 1.0), 1, 1.0, 96),
    "erf, 3 sites": (cp.Prior("erf", 1.0, 1.0, 1.0, 1.0), 3, 1.0, 48),
    "relu with bias, 2 sites": (cp.Prior("relu", 1.0, 0.5, 1.0, 0.3), 2, 1.5, 64),
}


@pytest.mark.parametrize("case", list(COUNTERTERM_CASES))
def test_counterterm_keeps_g2_equal_to_the_kernel(case):
    """Exact <f_i f_j> under exp(-S) on a few sites y_i of a ball rule (weights w_i), with
    S = f K^-1 f / 2 + sum_i w_i [mu_i f_i^2 / 2 + lambda f_i^4 / 4!] (lambda > 0: normalisable).

    Expansion: G2 = K + a_1 lambda + a_2 lambda^2 + a_3 lambda^3 + O(lambda^4), coefficients
    from Wick's theorem (_g2_expansion).  With lambda alone a_1 is the tadpole
    T = -(1/2) sum_k w_k K_ik K_kk K_kj; with mu = cp.counterterm (= -lambda K_kk / 2) a_1 = 0.
    At lambda <= |a_2| / (10 |a_3|) the first omitted term is at most a tenth of the last kept
    one, so the remainder after a_n lambda^n is bounded by twice the next term, 2 |a_(n+1)|
    lambda^(n+1) (the series alternates here: the remainder is 0.6-0.9 of the next term).
    Then |D(lambda)| = |G2 - K| lies in a_2 lambda^2 (1 -+ rho), rho = 2 |a_3| lambda / |a_2|,
    and halving lambda divides it by 4 (1 +- rho) / (1 -+ rho / 2).  Lambda alone (D ~ T lambda,
    ratio ~ 2) must fail both, which is asserted too.  |.| is the max norm over (i, j).
    """
    prior, sites, cutoff, nodes = COUNTERTERM_CASES[case]
    rule = _site_rule(sites, cutoff)
    kernel = prior.kernel(rule.nodes, rule.nodes)
    unit = cp.counterterm(prior, rule.nodes, 1.0)  # mu per unit lambda
    np.testing.assert_array_equal(unit, -np.diag(kernel) / 2)
    tadpole = -0.5 * np.einsum("ik,k,k,kj->ij", kernel, rule.weights, np.diag(kernel), kernel)
    bare = _g2_expansion(kernel, rule.weights, np.zeros(sites))
    ct = _g2_expansion(kernel, rule.weights, unit)
    eps = np.finfo(float).eps
    # first order, exactly (rounding of the quadrature sums: Q eps sum |terms|)
    assert np.all(np.abs(bare[0] - tadpole) <= 4 * eps * bare[3]), "tadpole coefficient"
    assert np.all(np.abs(ct[0]) <= 4 * eps * ct[3]), "the counterterm cancels the tadpole"
    assert np.abs(tadpole).max() > 1e6 * (4 * eps * ct[3]).max()  # ... which is not zero

    def norm(a):
        return float(np.abs(a).max())

    lam0 = min(norm(ct[1]) / (10 * norm(ct[2])), norm(bare[0]) / (10 * norm(bare[1])))
    quad = np.abs(_g2_exact(kernel, rule.weights, unit, lam0, nodes + 16)
                  - _g2_exact(kernel, rule.weights, unit, lam0, nodes))  # fmt: skip
    assert quad.max() < 1e-3 * norm(ct[2]) * lam0**3, "Gauss-Hermite is converged"
    d_bare, d_ct = {}, {}
    for lam in (lam0, lam0 / 2):
        d_bare[lam] = _g2_exact(kernel, rule.weights, np.zeros(sites), lam, nodes) - kernel
        d_ct[lam] = _g2_exact(kernel, rule.weights, unit, lam, nodes) - kernel
        # lambda alone: G2 moves at O(lambda), by the tadpole
        assert norm(d_bare[lam] / lam - tadpole) <= 2 * norm(bare[1]) * lam
        # with the counterterm: only O(lambda^2) is left, and it is a_2 lambda^2
        bound = 2 * norm(ct[2]) * lam**3
        assert norm(d_ct[lam] - ct[1] * lam**2) <= bound
        assert norm(d_bare[lam] - ct[1] * lam**2) > bound  # can-fail companion
    rho = 2 * norm(ct[2]) * lam0 / norm(ct[1])
    lo, hi = 4 * (1 - rho) / (1 + rho / 2), 4 * (1 + rho) / (1 - rho / 2)
    ratio_ct = norm(d_ct[lam0]) / norm(d_ct[lam0 / 2])
    ratio_bare = norm(d_bare[lam0]) / norm(d_bare[lam0 / 2])
    assert lo <= ratio_ct <= hi, f"halving lambda divides |G2 - K| by {ratio_ct:.2f}"
    assert not lo <= ratio_bare <= hi, f"lambda alone: ratio {ratio_bare:.2f} (expected ~2)"


def test_counterterm_is_radial_and_takes_a_profile():
    """K(y, y) depends on |y| only (so a radial grid stores mu completely); the counterterm of
    a lambda(y) profile and of a stack of replicates is -lambda K(y, y) / 2 pointwise."""
    prior = cp.Prior("relu", 1.3, 0.4, 0.9, 0.2)
    rng = np.random.default_rng(5)
    y = rng.standard_normal((600, 2))  # more than one diagonal block of Prior.diagonal
    k_diag = prior.diagonal(y)
    # d = 2 dot products round differently in a block (BLAS) and one at a time: a few ulps
    # (ReLU's K(y, y) is well conditioned in them: the angle term is flat at theta = 0)
    rtol = 8 * np.finfo(float).eps
    one_by_one = [prior.kernel(p[None], p[None])[0, 0] for p in y]
    np.testing.assert_allclose(k_diag, one_by_one, rtol=rtol, atol=0)
    on_axis = prior.diagonal(cp.radial_nodes(np.linalg.norm(y, axis=1), 2))
    np.testing.assert_allclose(on_axis, k_diag, rtol=rtol, atol=0)
    radius = np.linspace(0.0, 3.0, 7)
    nodes = cp.radial_nodes(radius, 2)
    coef = np.array([[-0.2, 0.05, 0.01], [-0.3, 0.0, 0.02]])  # two replicates of lambda(y)
    lam_y = cp.profile(coef, radius, 3.0)  # (2, 7)
    mu = cp.counterterm(prior, nodes, lam_y)
    assert mu.shape == (2, 7)
    np.testing.assert_array_equal(mu, -0.5 * lam_y * prior.diagonal(nodes))
    assert cp.counterterm(prior, nodes, np.ones((4, 1))).shape == (4, 7)


SYNTHETIC_FAMILIES = {  # family: (arch, inputs, first-layer bias sigma_b0)
    "erf": ("erf", [-1.0, -0.4, 0.3, 1.0], 1.0),
    "relu_bias": ("relu", [0.2, 0.5, 0.8, 1.1], 0.5),
}
SYNTHETIC_OPTIONS = {"couplings": {"cutoffs": [2.0, 5.0], "reference_cutoff": 2.0, "basis": 1,
                                   "profile_points": 4}}  # fmt: skip
SYNTHETIC_BLOCKS = 20


def _synthetic_point(family: str, width: int, seed: int, block_size: int = 200):
    """A merged raw npoint dataset without simulating networks: f = sqrt(s) g with g ~ GP(0, K)
    and s = exp(z / 2 - 1/8), z ~ N(0, 1) (a Gaussian scale mixture: G2 = K, G4_conn > 0)."""
    from types import SimpleNamespace

    from nnfield.theory.kernels import gp_kernel

    arch, inputs, sb0 = SYNTHETIC_FAMILIES[family]
    n_blocks = SYNTHETIC_BLOCKS
    spec = make_spec(arch, width, n_blocks * block_size, block_size=block_size, inputs=inputs,
                     family=family, sigma_b0=sb0)  # fmt: skip
    x = np.asarray(inputs, dtype=np.float64)[:, None]
    kernel = gp_kernel(arch, x, 1.0, sb0, 1.0, 1.0)
    rng = np.random.default_rng(seed)
    m = n_blocks * block_size
    scale = np.exp(0.5 * rng.standard_normal(m) - 0.125)
    f = np.sqrt(scale)[:, None] * (
        rng.standard_normal((m, x.shape[0])) @ np.linalg.cholesky(kernel).T
    )
    plan = tup.product_plan(x.shape[0])
    p2 = f[:, plan["a2"]] * f[:, plan["b2"]]
    p4 = p2[:, plan["a4"]] * p2[:, plan["b4"]]
    p6 = p4[:, plan["a6"]] * p2[:, plan["b6"]]

    def per_block(a):
        return a.reshape(n_blocks, block_size, -1).sum(axis=1)

    sums = SimpleNamespace(
        count=np.full(n_blocks, block_size), nonfinite=np.zeros(n_blocks, dtype=np.int64),
        f1=per_block(f), f2=per_block(p2), f4=per_block(p4), f6=per_block(p6),
        max4=(f**4).mean(1).reshape(n_blocks, block_size).max(1),
        max6=(f**6).mean(1).reshape(n_blocks, block_size).max(1),
        hist=_bin_counts(f / np.sqrt(np.diag(kernel)), n_blocks, block_size),
    )  # fmt: skip
    return npoint_sample.raw_dataset(spec, range(n_blocks), x, sums)


def _bin_counts(z: np.ndarray, n_blocks: int, block_size: int) -> np.ndarray:
    """Networks per density bin (npoint.sampler.DENSITY_EDGES), per block and input."""
    from nnfield.studies.npoint.sampler import DENSITY_BINS, DENSITY_EDGES

    index = np.searchsorted(DENSITY_EDGES, z, side="right")
    hits = index[..., None] == np.arange(DENSITY_BINS)
    return hits.reshape(n_blocks, block_size, *hits.shape[1:]).sum(axis=1).astype(np.float64)


@pytest.fixture(scope="module")
def synthetic_study():
    """npoint.analyze on two families x two widths of synthetic points (no simulation)."""
    points = [
        _synthetic_point(fam, width, seed=10 * i + j)
        for i, fam in enumerate(SYNTHETIC_FAMILIES)
        for j, width in enumerate((3, 30))
    ]
    return npoint.analyze(points, SYNTHETIC_OPTIONS)


def test_stored_counterterm_is_minus_lambda_k_over_two(synthetic_study):
    """mu(|y|) = -lambda K(y, y) / 2 at the stored radii |y| = mu_fraction * cutoff, for every
    family, width and cutoff of a study dataset (an identity).  The test evaluates K(y, y) one
    point at a time; stored mu is one rounded product, like -lambda K / 2 (halving is exact),
    so they agree to 2 eps (an ulp of K, an ulp of the product).  mu_se is the jackknife spread
    of the replicates' counterterms, |K| / 2 lambda_se up to rounding of the B deviations:
    relative 4 (B + 2) sqrt(B) eps (|lambda| + 3 lambda_se) / lambda_se (replicates within
    3 lambda_se of lambda)."""
    ds = synthetic_study
    assert ds["mu"].dims == ("family", "width", "cutoff", "mu_fraction")
    np.testing.assert_array_equal(ds["mu_fraction"].values, np.linspace(0, 1, 4))
    np.testing.assert_array_equal(
        ds["mu_radius"].values, np.outer(ds["cutoff"].values, ds["mu_fraction"].values)
    )
    assert ds["mu"].attrs["long_name"].startswith("quadratic counterterm")
    eps = np.finfo(float).eps
    n_blocks = SYNTHETIC_BLOCKS
    for family in ds["family"].values:
        fam = ds.sel(family=family)
        arch, _, sb0 = SYNTHETIC_FAMILIES[str(family)]
        prior = cp.Prior(arch, 1.0, sb0, 1.0, 1.0)
        for cutoff in fam["cutoff"].values:
            radii = fam["mu_radius"].sel(cutoff=cutoff).values
            k_diag = np.array([prior.kernel(np.array([[r]]), np.array([[r]]))[0, 0] for r in radii])
            for width in fam["width"].values:
                row = fam.sel(cutoff=cutoff, width=width)
                lam, lam_se = float(row["lambda"]), float(row["lambda_se"])
                assert lam < 0 and np.all(row["mu"].values > 0)  # heavy tails: lambda < 0
                np.testing.assert_allclose(row["mu"].values, -lam * k_diag / 2, rtol=2 * eps)
                np.testing.assert_allclose(
                    row["mu_exact"].values, -float(row["lambda_exact"]) * k_diag / 2,
                    rtol=2 * eps, atol=0,
                )  # fmt: skip
                rtol = 4 * (n_blocks + 2) * np.sqrt(n_blocks) * eps * (abs(lam) + 3 * lam_se)
                np.testing.assert_allclose(
                    row["mu_se"].values, k_diag / 2 * lam_se, rtol=rtol / lam_se, atol=0
                )


def test_coupling_fit_attribute_is_generated_from_the_code(synthetic_study):
    """The stored method text is fit_method()'s, which quotes LinearFit's constants."""
    assert synthetic_study.attrs["coupling_fit"] == cp.fit_method()
    assert synthetic_study.attrs["coupling_convention"] == cp.LAMBDA_CONVENTION
    text = cp.fit_method()
    assert "OAS" not in text and "generalised" not in text
    for value in (cp.BLOCKS_PER_MODE, cp.EIGENVALUE_CUT, cp.INFORMATIVE_CUT, cp.RANK_CUT):
        assert f"{value:g}" in text
    modes = synthetic_study["lambda_modes"].values  # 35 tuples, 20 blocks: (20 - 1) // 2 = 9
    assert np.all(modes == min(35, (SYNTHETIC_BLOCKS - 1) // cp.BLOCKS_PER_MODE))


def test_fit_method_and_linear_fit_follow_the_same_constants(monkeypatch):
    """Changing a constant changes both the description and what LinearFit does."""
    n_blocks, n_tuples = 41, 30
    evals = 0.7 ** np.arange(n_tuples)  # covariance eigenvalues 1, 0.7, 0.49, ...
    cov = np.diag(evals)
    design = np.linspace(1.0, 2.0, n_tuples)[:, None]
    before = cp.fit_method()
    assert cp.LinearFit.build(design, cov, n_blocks, "x").modes == (n_blocks - 1) // 2 == 20
    assert cp.LinearFit.build(design, cov, n_blocks, "x").hartlap == (41 - 20 - 2) / 40

    monkeypatch.setattr(cp, "BLOCKS_PER_MODE", 4)
    assert cp.fit_method() != before and "(B - 1) // 4" in cp.fit_method()
    assert cp.LinearFit.build(design, cov, n_blocks, "x").modes == (n_blocks - 1) // 4 == 10

    monkeypatch.setattr(cp, "EIGENVALUE_CUT", 0.3)
    assert "above 0.3 of the largest" in cp.fit_method()
    kept = int(np.sum(evals[:10] > 0.3))  # 1, 0.7, 0.49, 0.343
    assert cp.LinearFit.build(design, cov, n_blocks, "x").modes == kept == 4

    monkeypatch.setattr(cp, "INFORMATIVE_CUT", 0.6)  # tuples with design < 0.6 * 2 get weight 0
    assert "below 0.6 of the largest" in cp.fit_method()
    fit = cp.LinearFit.build(design, cov, n_blocks, "x")
    np.testing.assert_array_equal(fit.weights > 0, design[:, 0] > 0.6 * design[:, 0].max())

    # the study's stored mode count follows as well (synthetic replicates, no simulation)
    rng = np.random.default_rng(2)
    attrs = {"arch": "erf", "sigma_w0": 1.0, "sigma_b0": 1.0, "sigma_w1": 1.0, "sigma_b1": 1.0}
    x = np.array([-1.0, -0.2, 0.5, 1.0])[:, None]
    options = {"cutoffs": [2.0], "reference_cutoff": 2.0, "basis": 1, "profile_points": 3,
               "mc_points": 64, "mc_replicas": 2}  # fmt: skip
    monkeypatch.setattr(cp, "EIGENVALUE_CUT", 1e-12)
    fam = family_integrals(attrs, x, options, seed=0)
    reps4 = 1e-3 + 1e-4 * rng.standard_normal((n_blocks + 1, 35))
    reps6 = 1e-4 + 1e-5 * rng.standard_normal((n_blocks + 1, 84))
    out = point_couplings(reps4, reps6, None, None, fam)
    assert int(out["lambda_modes"][0]) == (n_blocks - 1) // 4
