"""Noisy gradient descent ensembles on a quadratic loss against exact discrete-time theory
(nnfield.theory.thermo), every comparison a z-test on the jackknife error over blocks."""

from __future__ import annotations

from itertools import pairwise

import jax
import numpy as np
import pytest

from nnfield import stats
from nnfield.entropy import entropy_from_covariance, sample_covariance
from nnfield.fluctuation import converged
from nnfield.studies import load
from nnfield.studies.learning.dynamics import NoisyQuadratic, run_blocks
from nnfield.theory.thermo import LinearGaussianStep, gaussian_entropy

ALPHA = 1e-3
DOF40 = stats.jackknife_dof(40)
"""Degrees of freedom of the jackknife errors of ``run`` (40 blocks by default)."""
A = np.array([[2.0, 0.4, 0.0], [0.4, 1.0, 0.3], [0.0, 0.3, 0.5]])


def covariance(m):
    """Unbiased ensemble covariance of every jackknife replicate from its means of q and q q^T."""
    return sample_covariance(m["q1"], m["qq"], m[stats.REPLICATE_COUNT])


def entropy(m):
    """Bias-corrected Gaussian entropy (the nnfield.entropy estimator) of every replicate, each
    corrected for its own count."""
    return entropy_from_covariance(covariance(m), m[stats.REPLICATE_COUNT])


def run(dyn, mean0, cov0, n_records, every, blocks=40, size=500, seed=0):
    """Recorded sums as a dict for stats.jackknife, the counts and the ensemble size."""
    rec = run_blocks(dyn, mean0, cov0, jax.random.key(seed), range(blocks), size, n_records, every)
    sums = {"q1": rec.q1, "qq": rec.qq, "loss": rec.loss, "grad2": rec.grad2,
            "medium": rec.medium}  # fmt: skip
    return rec, sums, float(rec.count.sum())


def test_sgld_covariance_entropy_and_heat_follow_exact_theory():
    """From a narrow initial ensemble: the ensemble covariance Sigma_n, the system entropy S_n
    and the accumulated medium entropy match the exact propagation at every recorded step."""
    dyn = NoisyQuadratic.sgld(A, 0.05, 0.4)
    step = LinearGaussianStep(dyn.transition, dyn.noise)
    mean0, cov0 = np.array([1.0, -1.0, 0.5]), 0.01 * np.eye(3)
    n_records, every = 6, 10
    rec, sums, _ = run(dyn, mean0, cov0, n_records, every)
    cov_est = stats.jackknife(sums, rec.count, covariance)
    s_est = stats.jackknife(sums, rec.count, entropy)
    med_est = stats.jackknife(sums, rec.count, lambda m: m["medium"])
    mean, cov = mean0, cov0
    want_cov, want_s, want_med, produced = [], [], [], 0.0
    for n in range(rec.steps[-1] + 1):
        if n % every == 0:
            want_cov.append(cov)
            want_s.append(gaussian_entropy(cov))
            want_med.append(produced - (gaussian_entropy(cov) - gaussian_entropy(cov0)))
        produced += step.entropy_production(mean, cov)
        mean, cov = step.propagate(mean, cov)
    tests = [
        (cov_est.value[1:], cov_est.stderr[1:], np.array(want_cov)[1:]),
        (s_est.value[1:], s_est.stderr[1:], np.array(want_s)[1:]),
        (med_est.value[1:], med_est.stderr[1:], np.array(want_med)[1:]),
    ]
    n_tests = sum(t[0].size for t in tests)
    for value, err, want in tests:
        z = np.abs(value - want) / err
        assert z.max() < stats.bonferroni_t(ALPHA, n_tests, DOF40), z
    # the data reject the naive stationary covariance T A^-1 at the last record
    naive = 0.4 * np.linalg.inv(A)
    z_naive = np.abs(cov_est.value[-1] - naive) / cov_est.stderr[-1]
    assert np.nanmax(z_naive) > stats.bonferroni_t(ALPHA, 9, DOF40)


def test_non_commuting_noise_steady_state_produces_entropy():
    """SGD-like noise C that does not commute with A: started in the stationary state, the
    system entropy stays put and the medium entropy grows at the exact positive rate."""
    noise = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 0.2]])
    dyn = NoisyQuadratic.sgd(A, 0.2, noise)
    step = LinearGaussianStep(dyn.transition, dyn.noise)
    rate = step.stationary_entropy_production()
    n_records, every = 3, 20
    rec, sums, _ = run(dyn, np.zeros(3), step.stationary_covariance, n_records, every, seed=3)
    per_step = stats.jackknife(sums, rec.count, lambda m: m["medium"][..., -1] / rec.steps[-1])
    z = (float(per_step.value) - rate) / float(per_step.stderr)
    assert abs(z) < stats.bonferroni_t(ALPHA, 1, DOF40), f"steady-state Pi off by {z:.1f} s.e."
    assert rate / float(per_step.stderr) > 5, "the test must resolve Pi > 0"


def test_configurational_temperature_at_equilibrium():
    """<|grad U|^2> / <Laplacian U> = tr(A^2 Sigma) / tr A: equal to T at equilibrium in the
    small-step limit (eta = 0.002 here: the O(eta) bias is below the error)."""
    temp = 0.4
    dyn = NoisyQuadratic.sgld(A, 0.002, temp)
    sigma = LinearGaussianStep(dyn.transition, dyn.noise).stationary_covariance
    rec, sums, _ = run(dyn, np.zeros(3), sigma, 2, 50, seed=5)
    t_conf = stats.jackknife(sums, rec.count, lambda m: m["grad2"] / np.trace(A))
    z = (t_conf.value - temp) / t_conf.stderr
    assert np.all(np.abs(z) < stats.bonferroni_t(ALPHA, 2, DOF40)), z
    exact = np.trace(A @ A @ sigma) / np.trace(A)  # includes the O(eta) bias of discrete SGLD
    assert abs(exact - temp) < float(t_conf.stderr[-1]), "eta must be small enough for T_conf = T"
    z_exact = (t_conf.value - exact) / t_conf.stderr
    assert np.all(np.abs(z_exact) < stats.bonferroni_t(ALPHA, 2, DOF40)), z_exact


def test_learning_study_matches_exact_theory_and_the_second_law():
    """simulate -> merge -> analyze for SGLD from a broad ensemble (entropy decreasing) and
    SGD-like noise: every observable within errors of exact theory (shadow work, dF and the KL
    to the chain's stationary law included); the second laws Pi >= 0 and dKL <= 0 hold
    (violations counted as 0); dF = -T Pi steps + shadow work to rounding (an identity of the
    estimates); bad configs name their keys."""
    from nnfield.config import ConfigError, expand, validate
    from nnfield.studies.learning import analyze as learning

    cfg = {"studies": {"learning": {"seed": 3, "networks": 4000, "block_size": 200,
                                    "samples": 200, "problems": [
        {"name": "q", "hessian_eigenvalues": [1.5, 0.4], "rotation": 0.3,
         "learning_rates": [0.1], "temperatures": [0.3], "initial": ["broad"], "steps": 40,
         "record_every": 5},
        {"name": "s", "hessian_eigenvalues": [1.5, 0.4], "rotation": 0.3, "optimizer": "sgd",
         "noise_eigenvalues": [1.0, 0.1], "learning_rates": [0.2], "initial": ["narrow"],
         "steps": 40}]}}}  # fmt: skip
    points = expand(validate(cfg))["learning"]
    merged = [
        load("learning").merge([load("learning").simulate(spec, 0)]) for spec in points.values()
    ]
    out = learning.analyze(merged, {})
    names = ("loss", "entropy", "medium", "pi", "free_energy", "tconf_ratio", "shadow_work",
             "free_energy_change", "kl_to_stationary")  # fmt: skip
    z = [np.abs((out[v] - out[f"{v}_exact"]) / out[f"{v}_se"]).values for v in names]
    z = np.concatenate([x[np.isfinite(x)] for x in z])
    assert z.max() < stats.bonferroni_t(ALPHA, z.size, 19), z.max()  # 20 blocks
    assert out["pi_violation"].values.tolist() == [0, 0]
    assert out["kl_violation"].values.tolist() == [0, 0]
    assert out["free_energy_violation"].values.tolist() == [0, -1]  # measured; sgd: no T
    q = out.isel(point=0)  # the point's own records and intervals (the study pads to a union)
    steps = q["step"].values[np.isfinite(q["loss"].values)]
    mine = np.isfinite(q["pi"].values)
    decomposition = -0.3 * q["pi"].values[mine] * np.diff(steps) + q["shadow_work"].values[mine]
    np.testing.assert_allclose(q["free_energy_change"].values[mine], decomposition, rtol=0,
                               atol=1e-12 * np.nanmax(np.abs(q["free_energy"].values)))  # fmt: skip
    trusted = converged(out["ift_ess"].values, int(out["ift_samples"].values[0]))
    z_ift = np.abs(out["ift"] - 1).values[trusted] / out["ift_se"].values[trusted]
    # the IFT error is a bootstrap over all 4000 samples: normal quantiles
    assert trusted.sum() >= 4 and z_ift.max() < stats.bonferroni_z(ALPHA, trusted.sum())
    broad = out.isel(point=0)
    assert float(broad["entropy"][-1]) < float(broad["entropy"][0])  # dS/dt < 0 while Pi > 0
    cfg["studies"]["learning"]["problems"][0]["learning_rates"] = [1.5]
    with pytest.raises(ConfigError, match=r"problems\[0\]\.learning_rates\[0\].*diverges"):
        validate(cfg)


def test_continuous_time_limit_through_the_study():
    """At eta = 0.002 the study's entropy and Pi per unit time follow the Ornstein-Uhlenbeck
    results S(t) and Pi(t) = mu^T B^T D^-1 B mu + tr(B^T D^-1 B Sigma) - 2 tr B + tr(Sigma^-1 D)
    with t = n eta (the O(eta) discretisation error is below the statistical one)."""
    from scipy import integrate

    from nnfield.config import expand, validate
    from nnfield.studies.learning import analyze as learning
    from nnfield.theory.thermo import OrnsteinUhlenbeck

    eta, temp = 0.002, 0.3
    cfg = {"studies": {"learning": {"seed": 4, "networks": 8000, "block_size": 400, "problems": [
        {"name": "ou", "hessian_eigenvalues": [1.5, 0.5], "rotation": 0.4,
         "learning_rates": [eta], "temperatures": [temp], "initial": ["broad"], "steps": 500,
         "record_every": 50}]}}}  # fmt: skip
    (spec,) = expand(validate(cfg))["learning"].values()
    out = learning.analyze([load("learning").simulate(spec)], {}).isel(point=0)
    _, hessian, _ = learning.problem(spec.params)
    mean0, cov0 = learning.initial_ensemble(spec.params)
    ou = OrnsteinUhlenbeck.langevin(hessian, temp)
    times = out["step"].values * eta
    s_ou = np.array([gaussian_entropy(ou.covariance(t, cov0)) for t in times])

    def rate(t):
        return ou.entropy_production_rate(ou.mean(t, mean0), ou.covariance(t, cov0))

    pi_ou = np.array([integrate.quad(rate, a, b)[0] / (b - a) for a, b in pairwise(times)])
    z_s = (out["entropy"].values - s_ou) / out["entropy_se"].values
    z_pi = (out["pi"].values / eta - pi_ou) / (out["pi_se"].values / eta)
    z = np.concatenate([z_s[1:], z_pi])
    assert np.abs(z).max() < stats.bonferroni_t(ALPHA, z.size, 19), np.abs(z).max()  # 20 blocks
    assert np.all(pi_ou / (out["pi_se"].values / eta) > 3), "the test must resolve Pi > 0"


def shadow_potential(q: np.ndarray, hessian: np.ndarray, eta: float) -> np.ndarray:
    """U~ = U - eta |grad U|^2 / 4 for U = q^T A q / 2, for arrays (..., p)."""
    grad = q @ hessian
    return 0.5 * np.sum(q * grad, axis=-1) - eta / 4 * np.sum(grad * grad, axis=-1)


def test_sgld_medium_entropy_is_the_shadow_potential_drop():
    """An identity, per network: on a quadratic loss the SGLD kernel log-ratio is exactly
    -(U~(q') - U~(q)) / T with U~ = U - eta |grad U|^2 / 4, so the medium entropy the kernel
    accumulates between two records telescopes to the drop of U~ / T (to float64 rounding of
    the per-step terms; their size, |q|^2 / (eta T), bounds it).  The loss itself does not:
    its drop misses the heat by O(eta)."""
    eta, temp = 0.2, 0.5
    dyn = NoisyQuadratic.sgld(A, eta, temp)
    rec = run_blocks(dyn, np.ones(3), 0.5 * np.eye(3), jax.random.key(7), range(4), 50, 5, 4,
                     samples=50)  # fmt: skip
    states = rec.sample_state  # (B, R, S, p)
    heat = np.diff(rec.sample_medium, axis=1)
    drop = -np.diff(shadow_potential(states, A, eta), axis=1) / temp
    scale = np.max(np.sum(states**2, axis=-1)) / (eta * temp) * 4  # 4 steps per record
    np.testing.assert_allclose(heat, drop, rtol=0, atol=1e-13 * scale)
    naive = -np.diff(0.5 * np.einsum("...i,ij,...j->...", states, A, states), axis=1) / temp
    assert np.abs(heat - naive).max() > 1e3 * 1e-13 * scale


def test_gibbs_start_free_energy_rises_while_entropy_is_produced():
    """Quadratic SGLD at eta = 0.2 started at the continuous-time Gibbs state N(0, T A^-1),
    which is not the chain's stationary law N(0, T A^-1 (I - eta A/2)^-1): exactly, F rises
    while Pi > 0 and the KL to the stationary law falls; the ensemble shows F rising beyond
    its errors (free_energy_violation >= 1: dF <= 0 is no theorem at finite step size) with
    no violation of the laws that hold (Pi >= 0, dKL <= 0)."""
    from nnfield.config import expand, validate
    from nnfield.studies.learning import analyze as learning

    problem = {"name": "gibbs", "hessian_eigenvalues": [2.0, 1.0, 0.5, 0.2], "rotation": 0.5,
               "learning_rates": [0.2], "temperatures": [0.5], "initial": ["gibbs"],
               "steps": 20, "record_every": 5}  # fmt: skip
    cfg = {"studies": {"learning": {"seed": 9, "networks": 8000, "block_size": 400,
                                    "samples": 20, "problems": [problem]}}}  # fmt: skip
    (spec,) = expand(validate(cfg))["learning"].values()
    out = learning.analyze([load("learning").simulate(spec)], {}).isel(point=0)
    assert np.all(out["free_energy_change_exact"].values > 0)
    assert np.all(out["pi_exact"].values > 0)
    assert np.all(np.diff(out["kl_to_stationary_exact"].values) < 0)
    assert int(out["free_energy_violation"]) >= 1
    assert int(out["pi_violation"]) == 0 and int(out["kl_violation"]) == 0
    z = (out["free_energy_change"] - out["free_energy_change_exact"]) / out["free_energy_change_se"]
    assert np.abs(z.values).max() < stats.bonferroni_t(ALPHA, z.size, 19)
    bad = dict(problem, optimizer="sgd", noise_eigenvalues=[1.0, 1.0, 1.0, 1.0])
    cfg["studies"]["learning"]["problems"] = [bad]
    from nnfield.config import ConfigError

    with pytest.raises(ConfigError, match=r"problems\[0\]\.initial.*gibbs"):
        validate(cfg)


def test_information_bound_of_learning_with_quenched_data():
    """The linear student with labels drawn per network (each network its own minimum q*):
    the mutual information I(q_t; q*), the marginal and conditional entropies, the medium
    entropy, Pi, F and the KL of (q, q*) against the exact joint linear-Gaussian propagation
    (Student-t, Bonferroni over all tests), from a narrow and a broad start; the Goldt-Seifert
    bound I <= Delta S + Delta S_medium holds exactly (with room: it is no identity) and in the
    ensemble (information_violation = 0), and the efficiency lies in (0, 1)."""
    from nnfield.config import ConfigError, expand, validate
    from nnfield.studies.learning import analyze as learning

    problem = {"name": "gs", "hessian_eigenvalues": [2.0, 0.5], "rotation": 0.3,
               "data_disorder": 0.1, "learning_rates": [0.1], "temperatures": [0.05],
               "initial": ["narrow", "broad"], "steps": 60, "record_every": 10}  # fmt: skip
    cfg = {"studies": {"learning": {"seed": 11, "networks": 6000, "block_size": 300,
                                    "samples": 100, "problems": [problem]}}}  # fmt: skip
    points = expand(validate(cfg))["learning"]
    out = learning.analyze([load("learning").simulate(spec) for spec in points.values()], {})
    names = ("loss", "entropy", "entropy_marginal", "medium", "pi", "kl_to_stationary",
             "free_energy", "shadow_work", "information", "information_bound",
             "learning_efficiency")  # fmt: skip
    z = [((out[v] - out[f"{v}_exact"]) / out[f"{v}_se"]).values for v in names]
    z = np.concatenate([x[np.isfinite(x)] for x in z])
    assert z.size > 120
    assert np.abs(z).max() < stats.bonferroni_t(ALPHA, z.size, 19), np.abs(z).max()  # 20 blocks
    info, bound = out["information_exact"].values, out["information_bound_exact"].values
    assert np.all(info[:, 1:] > 0.1) and np.all(bound[:, 1:] - info[:, 1:] > 0.01)
    eff = out["learning_efficiency_exact"].values[:, 1:]
    assert np.all((eff > 0) & (eff < 1))
    assert out["information_violation"].values.tolist() == [0, 0]
    # the fluctuation theorem with each network's exact conditional density p_t(q | q*)
    trusted = converged(out["ift_ess"].values, int(out["ift_samples"].values[0]))
    z_ift = np.abs(out["ift"] - 1).values[trusted] / out["ift_se"].values[trusted]
    assert trusted.sum() >= 4 and z_ift.max() < stats.bonferroni_z(ALPHA, trusted.sum())
    assert out["pi_violation"].values.tolist() == [0, 0]
    assert out["kl_violation"].values.tolist() == [0, 0]
    cfg["studies"]["learning"]["problems"] = [
        dict(problem, optimizer="sgd", noise_eigenvalues=[1.0, 1.0])
    ]
    with pytest.raises(ConfigError, match=r"problems\[0\]\.data_disorder"):
        validate(cfg)


def test_joint_moments_assemble_the_covariance_of_q_and_its_minimum():
    """An identity: the (q, q*) covariance the disorder analysis builds from the streamed sums
    of q, q q^T, q*, q* q*^T and q q*^T is np.cov of the stacked samples (to rounding), with
    non-commuting, non-symmetric cross moments (a transposed q q*^T fails)."""
    from nnfield.entropy import sample_covariance
    from nnfield.studies.learning.analyze import _joint_moments

    rng = np.random.default_rng(2)
    q = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 3))
    c = q[:, :2] @ rng.normal(size=(2, 2)) + rng.normal(size=(500, 2))
    m = {"q1": q.mean(0), "qq": q.T @ q / 500, "c1": c.mean(0), "cc": c.T @ c / 500,
         "qc": q.T @ c / 500}  # fmt: skip
    first, second = _joint_moments(m)
    want = np.cov(np.hstack([q, c]), rowvar=False)
    np.testing.assert_allclose(sample_covariance(first, second, 500), want, rtol=0, atol=1e-12)


def test_a_second_law_check_that_cannot_be_computed_counts_as_a_violation():
    """Fail closed: a NaN rate or error is counted with the violations, not passed."""
    from nnfield.studies.learning.analyze import _violations

    value, bound = np.array([0.5, 2.0, np.nan, 0.1]), np.array([1.0, 1.0, 1.0, np.nan])
    assert _violations(value, bound, 1) == 3  # above the bound, and the two NaNs
    assert _violations(-value, -bound, -1) == 3
    assert _violations(np.array([0.5]), np.array([1.0]), 1) == 0
