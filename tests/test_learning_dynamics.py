"""Noisy gradient descent ensembles on a quadratic loss against exact discrete-time theory
(nnfield.theory.thermo), every comparison a z-test on the jackknife error over blocks."""

from __future__ import annotations

from itertools import pairwise

import jax
import numpy as np
import pytest

from nnfield import stats
from nnfield.entropy import entropy_from_covariance
from nnfield.fluctuation import converged
from nnfield.learning_dynamics import NoisyQuadratic, run_blocks
from nnfield.theory.thermo import LinearGaussianStep, gaussian_entropy

ALPHA = 1e-3
DOF40 = stats.jackknife_dof(40)
"""Degrees of freedom of the jackknife errors of ``run`` (40 blocks by default)."""
A = np.array([[2.0, 0.4, 0.0], [0.4, 1.0, 0.3], [0.0, 0.3, 0.5]])


def covariance(m, total: float):
    """Unbiased ensemble covariance from the means of q and q q^T (leading axes kept)."""
    mean = m["q1"]
    return (m["qq"] - mean[..., :, None] * mean[..., None, :]) * total / (total - 1)


def entropy(m, total: float):
    """Bias-corrected Gaussian entropy (the nnfield.entropy estimator) from the means."""
    return entropy_from_covariance(covariance(m, total), total)


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
    rec, sums, total = run(dyn, mean0, cov0, n_records, every)
    cov_est = stats.jackknife(sums, rec.count, lambda m: covariance(m, total))
    s_est = stats.jackknife(sums, rec.count, lambda m: entropy(m, total))
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
    SGD-like noise: every observable within errors of exact theory, Pi >= 0 and dF/dt <= 0
    asserted (violations counted as 0); bad configs name their keys."""
    from nnfield.config import ConfigError, expand, validate
    from nnfield.studies import learning

    cfg = {"studies": {"learning": {"seed": 3, "networks": 4000, "block_size": 200,
                                    "samples": 200, "problems": [
        {"name": "q", "hessian_eigenvalues": [1.5, 0.4], "rotation": 0.3,
         "learning_rates": [0.1], "temperatures": [0.3], "initial": ["broad"], "steps": 40,
         "record_every": 5},
        {"name": "s", "hessian_eigenvalues": [1.5, 0.4], "rotation": 0.3, "optimizer": "sgd",
         "noise_eigenvalues": [1.0, 0.1], "learning_rates": [0.2], "initial": ["narrow"],
         "steps": 40}]}}}  # fmt: skip
    points = expand(validate(cfg))["learning"]
    merged = [learning.merge([learning.simulate(spec, 0)]) for spec in points.values()]
    out = learning.analyze(merged, {})
    names = ("loss", "entropy", "medium", "pi", "free_energy", "tconf_ratio")
    z = [np.abs((out[v] - out[f"{v}_exact"]) / out[f"{v}_se"]).values for v in names]
    z = np.concatenate([x[np.isfinite(x)] for x in z])
    assert z.max() < stats.bonferroni_t(ALPHA, z.size, 19), z.max()  # 20 blocks
    assert out["pi_violation"].values.tolist() == [0, 0]
    assert out["free_energy_violation"].values.tolist() == [0, -1]  # not asserted for sgd noise
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
    from nnfield.studies import learning
    from nnfield.theory.thermo import OrnsteinUhlenbeck

    eta, temp = 0.002, 0.3
    cfg = {"studies": {"learning": {"seed": 4, "networks": 8000, "block_size": 400, "problems": [
        {"name": "ou", "hessian_eigenvalues": [1.5, 0.5], "rotation": 0.4,
         "learning_rates": [eta], "temperatures": [temp], "initial": ["broad"], "steps": 500,
         "record_every": 50}]}}}  # fmt: skip
    (spec,) = expand(validate(cfg))["learning"].values()
    out = learning.analyze([learning.simulate(spec)], {}).isel(point=0)
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
