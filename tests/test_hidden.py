"""Hidden-state dynamics (studies.hidden) against the exact results of docs/hidden.md.

Monte Carlo runs go through the study's own simulate / merge / analyze.  Every comparison is a
z-test on the estimator's own error (Bonferroni over the points of a test), with a power check
where the expected value is zero or a near-miss would otherwise pass unnoticed.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from nnfield import config, stats
from nnfield.studies import load
from nnfield.studies.hidden import analyze as hidden
from nnfield.studies.hidden import sample as hidden_sample
from nnfield.studies.hidden.weights import WeightEnsemble, chain_coupling, shift
from nnfield.theory import thermo

ALPHA = 1e-3


def run_study(ensembles: list[dict], **study) -> tuple:
    """(study dataset, params) of a small hidden study run in-process."""
    cfg = {"seed": 11, "networks": 400, "block_size": 20, "steps": 1000, "burn_in": 200,
           "ensembles": ensembles, **study}  # fmt: skip
    cfg = config.validate({"studies": {"hidden": cfg}})["studies"]["hidden"]
    specs = load("hidden").expand(cfg)
    points = []
    for spec in specs:
        shards = [load("hidden").simulate(spec, k) for k in range(spec.params["shards"])]
        points.append(load("hidden").merge(shards))
    return hidden.analyze(points), [s.params for s in specs]


BLOCKS = 20
"""Network blocks of run_study: jackknife errors have BLOCKS - 1 degrees of freedom."""


def critical(n_tests: int, dof: int = BLOCKS - 1) -> float:
    """Bonferroni critical |t| for ``n_tests`` comparisons, each with a jackknife error of
    ``dof`` degrees of freedom (Student t, not normal: the error is itself estimated)."""
    return stats.bonferroni_t(ALPHA, n_tests, dof)


def assert_z(value, expected, se, n_tests: int, what: str, dof: int = BLOCKS - 1) -> None:
    z = (np.asarray(value) - np.asarray(expected)) / np.asarray(se)
    crit = critical(n_tests, dof)
    assert np.all(np.abs(z) < crit), f"{what}: z = {np.round(z, 2)} (critical {crit:.2f})"


# ---------------------------------------------------------------- exact theory


@pytest.mark.parametrize("kind", ["orthogonal", "rings_sym", "rings_anti", "cycle"])
def test_normal_closed_form_equals_the_lyapunov_result(kind):
    """sum_k 2 (Im lambda)^2 / (1 - |lambda|^2) for normal W equals 1/2 tr(G_r^-1 G) - n, at
    any noise; a^2 (n - tr O^2) / (1 - a^2) for W = a O."""
    rng = np.random.default_rng(0)
    if kind.startswith("rings"):
        coupling = "symmetric" if kind == "rings_sym" else "antisymmetric"
        ens = WeightEnsemble("rings", 15, 3, 0.6, coupling=0.12, coupling_matrix=coupling)
        w = ens.ring_weights()
    elif kind == "cycle":
        ens = WeightEnsemble("cycle", 7, 1, 0.8)
        w = ens.sample(rng, 1)[0]
    else:
        ens = WeightEnsemble("orthogonal", 9, 1, 0.7)
        w = ens.sample(rng, 1)[0]
    for noise in (0.1, 2.0):
        lyapunov = thermo.hidden_step(w, noise, gain=0.9).stationary_entropy_production()
        normal = thermo.normal_entropy_production(np.linalg.eigvals(0.9 * w))
        np.testing.assert_allclose(normal, lyapunov, rtol=1e-9)
    if kind in ("orthogonal", "cycle"):
        o = w / ens.contraction
        closed = thermo.orthogonal_entropy_production(0.9 * ens.contraction, np.trace(o @ o), 9 if
                                                      kind == "orthogonal" else 7)  # fmt: skip
        np.testing.assert_allclose(closed, lyapunov, rtol=1e-9)
    if kind != "orthogonal":
        np.testing.assert_allclose(ens.closed_form_production(gain=0.9), lyapunov, rtol=1e-9)


@pytest.mark.parametrize("kind", ["orthogonal", "permutation"])
def test_ensemble_mean_trace_square(kind):
    """E tr O^2 = 1 (Haar) and E tr P^2 = 2 (uniform permutations), by a z-test over draws."""
    ens = WeightEnsemble(kind, 10, 1, 1.0)
    w = ens.sample(np.random.default_rng(1), 20000)
    tr2 = np.einsum("mij,mji->m", w, w)
    expected = thermo.ENSEMBLE_TRACE_SQUARE[kind]
    assert_z(tr2.mean(), expected, tr2.std(ddof=1) / np.sqrt(tr2.size), 1, f"E tr W^2, {kind}",
             dof=tr2.size - 1)  # fmt: skip


def test_weight_ensembles_have_the_stated_spectral_radius_and_symmetry():
    rng = np.random.default_rng(2)
    for kind in ("symmetric", "ginibre", "orthogonal", "permutation", "cycle", "mixture"):
        w = WeightEnsemble(kind, 12, 3, 0.7, antisymmetric_fraction=0.3).sample(rng, 5)
        np.testing.assert_allclose(np.abs(np.linalg.eigvals(w)).max(-1), 0.7, rtol=1e-9)
    sym = WeightEnsemble("ginibre", 12, 1, 0.7, antisymmetric_fraction=0.0).sample(rng, 3)
    np.testing.assert_allclose(sym, np.swapaxes(sym, 1, 2), atol=1e-12)
    anti = WeightEnsemble("ginibre", 12, 1, 0.7, antisymmetric_fraction=1.0).sample(rng, 3)
    np.testing.assert_allclose(anti, -np.swapaxes(anti, 1, 2), atol=1e-12)
    mix = WeightEnsemble("mixture", 6, 1, 0.5).sample(rng, 4, first_index=3)
    np.testing.assert_allclose(mix[0], 0.5 * shift(6).T)  # odd index: P^T
    np.testing.assert_allclose(mix[1], 0.5 * shift(6))


# ---------------------------------------------------------------- Monte Carlo vs exact


def test_single_cycle_production_is_n_a2_over_1_minus_a2_at_any_noise():
    """W = a P (one n-cycle): n a^2 / (1 - a^2) per step, independent of s; the exact value at a
    contraction 0.01 away is rejected (power)."""
    ds, _ = run_study([{"name": "c", "weights": "cycle", "neurons": 8, "subsystems": 2,
                             "contractions": [0.3, 0.6, 0.85], "noises": [0.05, 1.5]}])  # fmt: skip
    a = ds["contraction"].values
    closed = a**2 / (1 - a**2)  # per neuron
    np.testing.assert_allclose(ds["ep_closed_form"].values, closed, rtol=1e-12)
    np.testing.assert_allclose(ds["ep_exact"].values, closed, rtol=1e-9)
    assert_z(ds["ep"], closed, ds["ep_se"], a.size, "cycle production")
    assert_z(ds["ep_medium"], closed, ds["ep_medium_se"], a.size, "cycle medium entropy")
    near = (a + 0.01) ** 2 / (1 - (a + 0.01) ** 2)
    z_near = np.abs(ds["ep"].values - near) / ds["ep_se"].values
    assert np.all(z_near > critical(a.size)), z_near
    # the time-blocking error of one network agrees with the spread across identical networks
    ratio = ds["ep_time_se"].values / ds["ep_network_sd"].values
    assert np.all((ratio > 0.7) & (ratio < 1.4)), ratio


def test_symmetric_weights_produce_no_entropy_by_an_identity():
    """Symmetric W (GOE, and Ginibre at k = 0) with isotropic noise: the medium entropy of every
    step is ln p(x') - ln p(x), so ep = 0 sample by sample; tested against its rounding bound
    (float32 and float64 runs), not by a z-test.  A nearly symmetric W (k = 0.02) breaks it by
    far more than the bound (the check can fail).  The medium part alone averages to zero only
    in the stationary state: that is a measurement, z-tested."""
    ens = [{"name": "s", "weights": "symmetric", "neurons": 8, "contractions": [0.5, 0.9]},
           {"name": "g", "weights": "ginibre", "neurons": 8, "contractions": [0.8],
            "antisymmetric_fractions": [0.0, 0.02], "bias": 0.5}]  # fmt: skip
    ds, _ = run_study(ens, networks=200, block_size=10)
    ds64, _ = run_study(ens[:1], networks=200, block_size=10, dtype="float64")
    identity = ds["ep_identity"].values.astype(bool)
    assert identity.sum() == 3 and not identity[-1]
    for one, sel in ((ds, identity), (ds64, slice(None))):
        assert np.all(np.abs(one["ep"].values[sel]) < one["ep_rounding_bound"].values[sel])
        assert np.all(np.isnan(one["ep_z"].values[sel]))  # no z-test of an identity
    assert np.all(ds64["ep_rounding_bound"].values < 1e-13)
    broken = ds.isel(point=int(np.flatnonzero(~identity)[0]))
    assert abs(float(broken["ep"])) > 1e3 * rounding_bound_of(broken)
    assert abs(float(broken["ep"] / broken["ep_se"])) > 5
    assert np.allclose(ds["ep_exact"].values[identity], 0.0, atol=1e-12)
    # the biased networks' average state, against the exact (I - W)^-1 b averaged likewise
    biased = ds.sel(point=ds["ensemble"] == "g")
    assert_z(biased["subsystem_mean"], biased["subsystem_mean_exact"],
             biased["subsystem_mean_se"], 2, "subsystem mean")  # fmt: skip
    assert_z(ds["ep_medium"][identity], 0.0, ds["ep_medium_se"][identity], 3,
             "symmetric medium entropy")  # fmt: skip


def rounding_bound_of(point: xr.Dataset) -> float:
    """The identity's rounding bound at a point's parameters (float32 runs)."""
    p = {"gain": float(point["gain"]), "contraction": float(point["contraction"]),
         "dtype": "float32"}  # fmt: skip
    return hidden.rounding_bound(p)


def test_random_weights_match_exact_production_at_several_k():
    """Ginibre W with antisymmetric fraction k, and random permutations and orthogonal W:
    every network's Monte Carlo production against its own exact 1/2 tr(G_r^-1 G) - n (paired
    z), and the mean over networks against the ensemble closed forms."""
    ds, _ = run_study([
        {"name": "g", "weights": "ginibre", "neurons": 8, "contractions": [0.8],
         "antisymmetric_fractions": [0.25, 0.5, 0.75, 1.0]},
        {"name": "p", "weights": "permutation", "neurons": 8, "contractions": [0.7]},
        {"name": "o", "weights": "orthogonal", "neurons": 8, "contractions": [0.7]},
    ])  # fmt: skip
    n_points = ds.sizes["point"]
    assert_z(ds["ep_z"], 0.0, 1.0, n_points, "paired production vs exact")
    assert np.all(ds["ep"].values / ds["ep_se"].values > 5)  # resolved: not a test of zero
    closed = ds["ep_closed_form"].values
    has = np.isfinite(closed)
    assert has.sum() == 2
    assert_z(ds["ep"].values[has], closed[has], ds["ep_se"].values[has], 2, "ensemble mean")


def test_pp_transpose_mixture_is_reversible_annealed_but_not_quenched():
    """Each member of the P/P^T mixture produces n a^2 / (1 - a^2) (z-test); the annealed
    one-step pair-law KL (W not conditioned on) is 0 by an identity, one member's forward term
    being the other's backward term, tested against a rounding bound; its medium part averages
    to zero only in the stationary state (a measurement: z-test)."""
    ds, _ = run_study([{"name": "m", "weights": "mixture", "neurons": 8,
                        "contractions": [0.5, 0.8]}])  # fmt: skip
    a = ds["contraction"].values
    assert_z(ds["ep"], a**2 / (1 - a**2), ds["ep_se"], 2, "quenched mixture")
    assert np.all(ds["ep"].values / ds["ep_se"].values > 50)
    assert_z(ds["annealed_medium"], 0.0, ds["annealed_medium_se"], 2, "annealed medium part")
    # the annealed total vanishes per sample up to float64 rounding of O(n / (1 - a^2)) terms
    scale = 8 / (1 - a**2)
    assert np.all(np.abs(ds["annealed"].values) < 1e3 * np.finfo(np.float64).eps * scale)
    assert np.all(ds["annealed_exact"].values == 0.0)


@pytest.mark.parametrize("coupling", ["symmetric", "antisymmetric"])
def test_exact_onsager_coefficient_is_the_derivative_of_the_lyapunov_production(coupling):
    """ring_production_taylor (closed-form derivatives of the normal-matrix formula) against
    thermo.production_taylor (perturbation theory of the general discrete Lyapunov equation, no
    normality used): two separate exact calculations, equal to rounding (relative
    16 n^2 eps / (1 - (g a)^2)^2, about 10^-12 here); and a central second difference of the
    exact production, whose O(h^2 c4) truncation is bounded by its own change with h."""
    for rings, size, a, gain in ((2, 6, 0.6, 1.0), (3, 4, 0.5, 0.8)):
        ens = WeightEnsemble("rings", rings * size, rings, a, coupling_matrix=coupling)
        w1 = WeightEnsemble("rings", rings * size, rings, 0.0, coupling=1.0,
                            coupling_matrix=coupling).ring_weights()  # fmt: skip
        c0, c1, c2 = thermo.ring_production_taylor(size, rings, a, chain_coupling(rings, coupling),
                                                   gain)  # fmt: skip
        l0, l1, l2 = thermo.production_taylor(gain * ens.ring_weights(), gain * w1, 1.0)
        # rounding of Lyapunov-based quantities: n^2 eps times the Lyapunov operator's
        # condition number <= 1 / (1 - (g a)^2)^2, with a factor 16 for the products after it
        n = rings * size
        rounding = 16 * n**2 * np.finfo(float).eps / (1 - (gain * a) ** 2) ** 2
        np.testing.assert_allclose([c0, c2], [l0, l2], rtol=rounding)
        # c1 = 0 is an identity (even spectrum of C): zero to rounding, in both calculations
        assert abs(c1) < rounding * (c0 + c2) and abs(l1) < rounding * (c0 + c2)

        def ep(eps, a=a, gain=gain, rings=rings, size=size):
            ens = WeightEnsemble("rings", rings * size, rings, a, coupling=eps,
                                 coupling_matrix=coupling)  # fmt: skip
            return ens.closed_form_production(gain)

        second = [(ep(h) - 2 * ep(0.0) + ep(-h)) / (2 * h**2) for h in (2e-3, 1e-3)]
        rounding = 8 * np.finfo(float).eps * ep(0.0) / (2 * 1e-3**2)
        assert abs(second[1] - c2) < 2 * abs(second[0] - second[1]) + rounding


@pytest.mark.parametrize("coupling", ["symmetric", "antisymmetric"])
def test_ring_production_is_even_in_eps_sample_by_sample(coupling):
    """W(-eps) = S W(eps) S with S = diag(+1 on ring 1, -1 on ring 2, ...): an identity, so the
    medium entropy of every step of a trajectory x under W(eps) equals that of S x under
    W(-eps) to rounding, and the exact productions agree to rounding."""
    size, rings = 5, 3

    def make(eps):
        return WeightEnsemble("rings", size * rings, rings, 0.6, coupling=eps,
                              coupling_matrix=coupling).ring_weights()  # fmt: skip

    sign = np.kron(np.array([1.0, -1.0, 1.0]), np.ones(size))
    w_plus, w_minus = make(0.13), make(-0.13)
    np.testing.assert_array_equal(w_minus, sign[:, None] * w_plus * sign[None, :])
    plus, minus = thermo.hidden_step(w_plus, 0.3), thermo.hidden_step(w_minus, 0.3)
    rng = np.random.default_rng(4)
    x = [np.zeros(size * rings)]
    for _ in range(300):
        x.append(w_plus @ x[-1] + 0.3 * rng.standard_normal(size * rings))
    x = np.asarray(x)
    medium_plus = plus.medium_entropy(x[:-1], x[1:])
    medium_minus = minus.medium_entropy(x[:-1] * sign, x[1:] * sign)
    # two quadratic forms of n terms per step, each rounded to n eps of its magnitude
    n = size * rings
    scale = (np.sum(x[:-1] ** 2, 1) + np.sum(x[1:] ** 2, 1)) / 0.3**2
    assert np.all(np.abs(medium_plus - medium_minus) < 4 * n * np.finfo(float).eps * scale)
    # the exact productions: Lyapunov-based, rounding 16 n^2 eps / (1 - rho^2)^2 (rho < 0.8)
    rounding = 16 * n**2 * np.finfo(float).eps / (1 - 0.8**2) ** 2
    np.testing.assert_allclose(plus.stationary_entropy_production(),
                               minus.stationary_entropy_production(), rtol=rounding)  # fmt: skip


def test_onsager_coefficient_and_what_the_ring_averages_see():
    """Two rings coupled by eps C.  (1) The Monte Carlo c2 of the even quartic fit against the
    exact 1/2 d^2 ep / d eps^2 (the design's own truncation bias is exactly known and must be
    far below the error); the quadratic-only fit, which absorbs the eps^4 term, is rejected
    wherever its exact bias exceeds (critical value + 3) of its errors (power).  (2) The ring
    averages: correlation and current, coarse-grained production, information flow and the
    one-step current's uncertainty product against exact values; the coarse chain
    xbar' = (a I + eps C) xbar + (s / sqrt m) xi reproduces the exact coarse production, the
    flow for antisymmetric C is -1/2 ln(1 - eps^2) (identities), and the uncertainty product is
    >= 1 (theorem)."""
    rings = {"weights": "rings", "neurons": 12, "subsystems": 2, "contractions": [0.6],
             "couplings": [-0.12, -0.06, 0.0, 0.06, 0.12]}  # fmt: skip
    ds, _ = run_study(
        [
            {"name": "sym", "coupling_matrix": "symmetric", **rings},
            {"name": "anti", "coupling_matrix": "antisymmetric", **rings},
        ]
    )
    assert ds.sizes["ring_fit"] == 2
    c2, se2 = ds["ring_fit_value"].values[:, 1], ds["ring_fit_se"].values[:, 1]
    exact = ds["ring_c2_exact"].values
    assert np.all(np.abs(ds["ring_c2_design_bias"].values) < 0.1 * se2)
    assert_z(c2, exact, se2, 2, "Onsager coefficient c2 (quartic fit)")
    anti_fit = ds["ring_fit_coupling_matrix"].values == "antisymmetric"
    assert np.all(c2[anti_fit] / se2[anti_fit] > 5)  # resolved (symmetric C: c2 ~ 3 se only)
    assert np.all(np.abs(ds["ring_c1_exact"].values) < 1e-12 * exact)
    # the quadratic-only fit: its exact bias, where the data can resolve it, must be rejected
    quad_se = ds["ring_c2_quadratic_se"].values
    eps = np.array(rings["couplings"])
    quad_map = np.linalg.pinv(np.stack([np.ones_like(eps), eps**2], 1))[1]
    closed = ds["ep_closed_form"].values
    quad_bias = np.array([quad_map @ closed[ds["ensemble"].values == name]
                          for name in ds["ring_fit_ensemble"].values]) - exact  # fmt: skip
    resolvable = np.abs(quad_bias) / quad_se > critical(2) + 3
    assert resolvable.any(), quad_bias / quad_se
    assert np.all(np.abs(ds["ring_c2_quadratic_z"].values[resolvable]) > critical(2))
    assert_z(ds["ep_z"], 0.0, 1.0, ds.sizes["point"], "rings production vs exact")
    pair = {"subsystem": 0, "subsystem2": 1}
    for var in ("subsystem_corr", "subsystem_current"):
        assert_z(ds[var].isel(pair), ds[f"{var}_exact"].isel(pair), ds[f"{var}_se"].isel(pair),
                 ds.sizes["point"], var)  # fmt: skip
    anti = ds["coupling_matrix"].values == "antisymmetric"
    current = ds["subsystem_current"].isel(pair).values
    current_se = ds["subsystem_current_se"].isel(pair).values
    strong = anti & (np.abs(ds["coupling"].values) == 0.12)
    assert np.all(np.abs(current[strong]) / current_se[strong] > 5)
    # coarse level: only the antisymmetric coupling makes the averages produce
    flowing = anti & (ds["coupling"].values != 0)
    for var in ("ep_coarse", "coarse_fraction"):
        assert_z(ds[var].values[flowing], ds[f"{var}_exact"].values[flowing],
                 ds[f"{var}_se"].values[flowing], flowing.sum(), var)  # fmt: skip
    assert np.all(ds["ep_coarse_exact"].values[~flowing] < 1e-12)
    assert np.all(ds["ep_coarse"].values[flowing] / ds["ep_coarse_se"].values[flowing] > 5)
    for i in np.flatnonzero(anti):
        eps = float(ds["coupling"].values[i])
        chain = 0.6 * np.eye(2) + eps * chain_coupling(2, "antisymmetric")
        closed = thermo.normal_entropy_production(np.linalg.eigvals(chain)) / 12
        np.testing.assert_allclose(ds["ep_coarse_exact"].values[i], closed, rtol=1e-9,
                                   atol=1e-15)  # fmt: skip
        np.testing.assert_allclose(
            ds["information_flow_exact"].values[i],
            -0.5 * np.log1p(-(eps**2)),
            rtol=1e-9,
            atol=1e-15,
        )
    moving = ds["coupling"].values != 0
    flow = ds["information_flow"].values[moving]
    assert_z(
        flow,
        ds["information_flow_exact"].values[moving],
        ds["information_flow_se"].values[moving],
        flow.size,
        "information flow",
    )
    tur = ds["tur_product"].isel(pair).values
    defined = np.isfinite(tur)
    assert np.array_equal(defined, flowing)  # no mean current, no precision
    assert_z(
        tur[defined],
        ds["tur_product_exact"].isel(pair).values[defined],
        ds["tur_product_se"].isel(pair).values[defined],
        defined.sum(),
        "TUR product",
    )
    assert np.all(ds["tur_product_exact"].isel(pair).values[defined] >= 1.0)


def test_discrete_time_uncertainty_relation_holds_and_is_nearly_tight():
    """Var(j) / <j>^2 >= 2 / (exp(sigma) - 1) for the one-step current of a stationary
    Gaussian chain (theorem), over a grid of rotations and contractions; the Isserlis variance
    against a long direct simulation (z-test); near equilibrium the product tends to 1, so the
    check can fail by a formula error of a few percent."""
    from nnfield.theory import subsystems

    products = []
    for a in (0.0, 0.3, 0.6, 0.9):
        for eps in (0.01, 0.1, 0.3):
            if a**2 + eps**2 >= 1:
                continue
            m = np.array([[a, eps], [-eps, a]])
            step = thermo.LinearGaussianStep(m, np.diag([1.0, 0.5]))
            c0 = step.stationary_covariance
            mean, var = subsystems.current_moments(c0, c0 @ m.T, 0, 1)
            sigma = subsystems.pair_law_production(c0, c0 @ m.T)
            np.testing.assert_allclose(sigma, step.stationary_entropy_production(), rtol=1e-9)
            products.append(subsystems.uncertainty_product(var, mean, sigma))
    products = np.asarray(products)
    assert np.all(products >= 1.0) and products.min() < 1.01, products
    m = np.array([[0.5, 0.4], [-0.4, 0.5]])
    step = thermo.LinearGaussianStep(m, np.eye(2))
    c0 = step.stationary_covariance
    rng = np.random.default_rng(3)
    x = rng.multivariate_normal(np.zeros(2), c0, size=200000)
    y = x @ m.T + rng.standard_normal(x.shape)
    j = x[:, 0] * y[:, 1] - x[:, 1] * y[:, 0]
    mean, var = subsystems.current_moments(c0, c0 @ m.T, 0, 1)
    se_var = np.sqrt(np.var((j - j.mean()) ** 2, ddof=1) / j.size)
    assert_z(j.var(ddof=1), var, se_var, 2, "Var j", dof=j.size - 1)
    assert_z(j.mean(), mean, j.std(ddof=1) / np.sqrt(j.size), 2, "<j>", dof=j.size - 1)


def test_tanh_reduces_to_linear_as_the_gain_vanishes():
    """tanh(g u) = g u + O(g^3 u^3): at small g and s the production equals the linear exact
    value within errors (the cubic correction, ~ g^2 s^2 / (1 - g^2) relative, is far below the
    error), while at g = 0.9, s = 1 the saturation shows (power of the comparison)."""
    ds, params = run_study([
        {"name": "t", "weights": "ginibre", "neurons": 8, "activation": "tanh",
         "contractions": [1.0], "gains": [0.2, 0.5], "noises": [0.05]},
        {"name": "sat", "weights": "ginibre", "neurons": 8, "activation": "tanh",
         "contractions": [1.0], "gains": [0.9], "noises": [1.0]},
    ], networks=800, block_size=40)  # fmt: skip
    linear = []
    for p in params:
        weights = []
        for b in range(p["networks"] // p["block_size"]):
            spec = config.PointSpec("hidden", _name(ds, p), 11, p)
            rng = hidden_sample._block_rng(spec, b)
            weights.append(hidden_sample.weight_ensemble(p).sample(rng, p["block_size"]))
        step = [thermo.hidden_step(w, p["noise"], p["gain"]).stationary_entropy_production()
                for w in np.concatenate(weights)]  # fmt: skip
        linear.append(np.mean(step) / p["neurons"])
    linear = np.asarray(linear)
    small = ds["gain"].values < 0.6
    assert_z(ds["ep"].values[small], linear[small], ds["ep_se"].values[small], 2, "g -> 0")
    z_sat = (ds["ep"].values[~small] - linear[~small]) / ds["ep_se"].values[~small]
    assert np.all(np.abs(z_sat) > 5), z_sat


def test_ergodicity_flags_multistable_tanh_and_passes_linear_dynamics():
    """Replicas of one W from different initial states: linear dynamics (one stationary law)
    passes the replica and drift diagnostics; tanh with symmetric W at gain 3 and small noise
    (several stable fixed points, rare switching) is flagged, its replicas disagreeing by far
    more than their time noise.  Replicas share W: their exact productions agree."""
    ds, _ = run_study([
        {"name": "lin", "weights": "ginibre", "neurons": 8, "contractions": [0.8],
         "initial_states": 2},
        {"name": "cyc", "weights": "cycle", "neurons": 8, "contractions": [0.9],
         "initial_states": 4},
        {"name": "multi", "weights": "symmetric", "neurons": 8, "activation": "tanh",
         "contractions": [1.0], "gains": [3.0], "noises": [0.05], "initial_states": 2},
    ], networks=200, block_size=20, steps=1000, burn_in=100)  # fmt: skip
    one_sided = stats.bonferroni_z(2 * ALPHA, ds.sizes["point"])
    linear = ds["activation"].values == "linear"
    assert np.all(ds["replica_z"].values[linear] < one_sided), ds["replica_z"].values
    blocks = 200 // 20  # this run's network blocks
    assert_z(ds["drift_z"].values[linear], 0.0, 1.0, linear.sum(), "burn-in drift",
             dof=blocks - 1)  # fmt: skip
    assert np.all(ds["ergodic"].values[linear] == 1)
    assert float(ds["replica_z"].values[~linear][0]) > one_sided
    assert np.all(ds["ergodic"].values[~linear] == 0)
    # the system term telescopes: zero mean for the exact stationary density (linear f)
    assert_z(ds["ep_system"].values[linear], 0.0, ds["ep_system_se"].values[linear],
             linear.sum(), "system term", dof=blocks - 1)  # fmt: skip
    spec = load("hidden").expand(config.validate({"studies": {"hidden": {
        "seed": 1, "networks": 40, "block_size": 4, "steps": 20, "burn_in": 5, "time_blocks": 2,
        "ensembles": [{"name": "lin", "weights": "ginibre", "neurons": 4, "contractions": [0.8],
                       "initial_states": 2}]}}})["studies"]["hidden"])[0]  # fmt: skip
    exact = load("hidden").simulate(spec, 0)["ep_exact_network"].values.reshape(-1, 2)
    np.testing.assert_array_equal(exact[:, 0], exact[:, 1])
    assert len(np.unique(exact[:, 0])) == exact.shape[0]


def _name(ds, p) -> str:
    """The point name of params ``p`` in the study dataset."""
    for i, name in enumerate(ds["point"].values):
        if ds["gain"].values[i] == p["gain"] and ds["ensemble"].values[i] == p["ensemble"]:
            return str(name)
    raise KeyError(p)


def test_shards_give_identical_networks_and_results():
    """Blocks carry their own keys: a point split over 3 shards equals one shard bit for bit."""
    ens = [{"name": "g", "weights": "ginibre", "neurons": 6, "contractions": [0.7]}]
    cfg = {"seed": 5, "networks": 300, "block_size": 30, "steps": 200, "burn_in": 50,
           "ensembles": ens}  # fmt: skip
    merged = []
    for shards in (1, 3):
        c = config.validate({"studies": {"hidden": {**cfg, "shards": shards}}})
        spec = load("hidden").expand(c["studies"]["hidden"])[0]
        merged.append(
            load("hidden").merge([load("hidden").simulate(spec, k) for k in range(shards)])
        )
    for name in (*load("hidden").raw_variables(), "ep_exact_network"):
        np.testing.assert_array_equal(merged[0][name].values, merged[1][name].values, name)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        ({"subsystems": 3}, "studies.hidden.ensembles[0].subsystems"),
        ({"couplings": [0.1]}, "studies.hidden.ensembles[0].couplings"),
        ({"gains": [1.0, 2.0]}, "studies.hidden.ensembles[0].gains[1]"),
        ({"weights": "mixture", "activation": "tanh"}, "studies.hidden.ensembles[0].activation"),
        ({"weights": "rings", "couplings": [0.5], "contractions": [0.6]},
         "studies.hidden.ensembles[0].gains[0]"),
        ({"contractions": [-0.5]}, "studies.hidden.ensembles[0].contractions[0]"),
        ({"initial_states": 3}, "studies.hidden.ensembles[0].initial_states"),
        ({"weights": "mixture", "initial_states": 2}, "studies.hidden.ensembles[0].initial_states"),
    ],
)  # fmt: skip
def test_bad_hidden_config_names_the_key(edit, key):
    ens = {"name": "e", "weights": "ginibre", "neurons": 8, "subsystems": 2,
           "contractions": [0.9], **edit}  # fmt: skip
    if ens["weights"] != "ginibre":
        ens.pop("antisymmetric_fractions", None)
    cfg = {"studies": {"hidden": {"seed": 1, "networks": 100, "block_size": 10,
                                  "ensembles": [ens]}}}  # fmt: skip
    with pytest.raises(config.ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        config.validate(cfg)


def test_time_blocks_must_divide_steps():
    cfg = {"studies": {"hidden": {"seed": 1, "networks": 100, "block_size": 10, "steps": 1001,
                                  "ensembles": [{"name": "e", "weights": "cycle", "neurons": 4,
                                                 "contractions": [0.5]}]}}}  # fmt: skip
    with pytest.raises(config.ConfigError, match=r"studies\.hidden\.time_blocks"):
        config.validate(cfg)


def test_parallel_file_analysis_equals_analyze(tmp_path, monkeypatch):
    """analyze_files (netCDF4 reads in 2 worker processes, for 10^4-point sweeps) gives exactly
    the dataset of analyze on xarray-read points."""
    from nnfield.engine.store import read_dataset, write_dataset

    ens = [{"name": "r", "weights": "rings", "neurons": 6, "subsystems": 2,
            "contractions": [0.5], "couplings": [-0.1, 0.0, 0.1]},
           {"name": "m", "weights": "mixture", "neurons": 4, "contractions": [0.5]}]  # fmt: skip
    cfg = {"seed": 2, "networks": 40, "block_size": 4, "steps": 40, "burn_in": 10,
           "time_blocks": 4, "ensembles": ens}  # fmt: skip
    cfg = config.validate({"studies": {"hidden": cfg}})["studies"]["hidden"]
    paths = []
    for i, spec in enumerate(load("hidden").expand(cfg)):
        paths.append(write_dataset(load("hidden").simulate(spec, 0), tmp_path / f"p{i}.nc"))
    monkeypatch.setattr(hidden, "MIN_PARALLEL", 0)
    parallel = hidden.analyze_files(paths, workers=2)
    serial = hidden.analyze([read_dataset(p, study="hidden") for p in paths])
    xr.testing.assert_identical(parallel, serial)


@pytest.mark.parametrize("statistic", ["replica_statistic", "block_correlation"])
def test_an_ergodicity_statistic_that_cannot_be_computed_fails_the_point(statistic, monkeypatch):
    """Fail closed: linear dynamics with two replicas passes; the same point with a NaN replica
    or block statistic (where it applies) is not called ergodic."""
    ensembles = [{"name": "lin", "weights": "ginibre", "neurons": 4, "contractions": [0.5],
                  "initial_states": 2}]  # fmt: skip
    small = {"networks": 40, "block_size": 4, "steps": 200, "burn_in": 20}
    ds, _ = run_study(ensembles, **small)
    assert int(ds["ergodic"].values[0]) == 1
    monkeypatch.setattr(hidden, statistic, lambda *args, **kw: np.nan)
    ds, _ = run_study(ensembles, **small)
    assert int(ds["ergodic"].values[0]) == 0
