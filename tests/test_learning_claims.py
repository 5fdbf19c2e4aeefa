"""The Madelung, Hamilton-Jacobi and caustics readings of noisy learning
(nnfield.studies.learning.claims; docs/physics.md section 3.5): the formulas against continuous-time
theory (identities and convergence orders, no sampling), the Monte Carlo measurements against
the exact chain (z-tests with the jackknife error over blocks, Student t with B - 1 dof), the
controls against the values the claims would need, and the verdicts failing closed."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from nnfield import stats
from nnfield.studies.learning import claims
from nnfield.studies.learning.claims_verdicts import claim_verdicts
from nnfield.theory.thermo import LinearGaussianStep, OrnsteinUhlenbeck

ALPHA = 1e-3
T = 0.5
ROT = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
A = ROT @ np.diag([1.0, 2.0]) @ ROT.T


def _continuum(dt: float, t_end: float = 2.0, mean0=(1.0, -0.5), var0=0.05):
    """Exact continuous-time Langevin moments (OU) at times 0, dt, ..., t_end."""
    ou = OrnsteinUhlenbeck.langevin(A, T)
    times = np.arange(0.0, t_end + dt / 2, dt)
    cov0 = var0 * np.eye(2)
    means = np.array([ou.mean(t, np.asarray(mean0)) for t in times])
    covs = np.array([ou.covariance(t, cov0) for t in times])
    return times, means, covs


def _relative(residual, e):
    """Largest residual of a record relative to the size of that record's E."""
    return float(np.max(np.linalg.norm(residual, axis=-1) / np.linalg.norm(e, axis=-1)))


def test_the_madelung_form_of_langevin_has_hbar2_minus_4t2_and_the_derived_potential():
    """On exact continuous-time moments (mean and covariance moving) every record satisfies
    E + V = (hbar^2 / 2) K with hbar^2 = -4 T^2 and V = T tr A - |A q|^2 / 2, up to the
    central difference's O(dt^2): the residual falls fourfold when dt halves."""
    v = claims._polynomial(-0.5 * A @ A, np.zeros(2), np.array(T * np.trace(A)))
    errors = []
    for dt in (0.01, 0.005):
        times, means, covs = _continuum(dt)
        e, k = claims.madelung_terms(means, covs, times, A, T)
        residual = e + v - 0.5 * claims.hbar2_continuum(T) * k
        errors.append(_relative(residual, e))
        fit = claims.madelung_fit(means, covs, times, A, T)
        assert fit == pytest.approx(-4 * T**2, rel=10 * errors[-1])
    assert errors[0] < 1e-3
    assert errors[0] / errors[1] == pytest.approx(4, rel=0.1)


def test_a_wrong_madelung_potential_or_hbar_leaves_a_residual():
    """The check above can fail: with hbar^2 = +4 T^2 (real quantum mechanics) or V without its
    T tr A no record balances."""
    times, means, covs = _continuum(0.005)
    e, k = claims.madelung_terms(means, covs, times, A, T)
    v = claims._polynomial(-0.5 * A @ A, np.zeros(2), np.array(T * np.trace(A)))
    for hbar2, shift in ((4 * T**2, 0.0), (-4 * T**2, -T * np.trace(A))):
        residual = e + v + shift * np.eye(v.size)[-1] - 0.5 * hbar2 * k
        assert _relative(residual, e) > 0.05


def test_the_chain_fit_tends_to_the_continuum_hbar2_at_first_order_in_eta():
    """The fit of the exact discrete-chain moments (what the Monte Carlo estimates) differs from
    -4 T^2 by O(eta): the bias halves with eta."""
    biases = []
    for eta in (0.01, 0.005, 0.0025):  # records 2 eta apart: central differences O(eta^2)
        times, means, covs = _chain_moments(eta)
        biases.append(claims.madelung_fit(means, covs, times, A, T) + 4 * T**2)
    assert biases[0] / biases[1] == pytest.approx(2, rel=0.05)
    assert biases[1] / biases[2] == pytest.approx(2, rel=0.05)


def _chain_moments(eta, hessian=A, start="narrow", t_end=3.2, every=2):
    step = LinearGaussianStep.sgld(hessian, eta, T)
    mean, cov = (
        (np.ones(2), 1e-4 * np.eye(2)) if start == "narrow" else (np.zeros(2), 9 * np.eye(2))
    )
    means, covs = [], []
    for n in range(round(t_end / eta) + 1):
        if n % every == 0:
            means.append(mean)
            covs.append(cov)
        mean, cov = step.propagate(mean, cov)
    return np.arange(len(means)) * every * eta, np.array(means), np.array(covs)


def test_the_fitted_potential_tends_to_t_lap_u_minus_half_grad_u_squared():
    """The intercept of the fit of exact chain moments is V = T tr A - q^T A^2 q / 2 up to
    O(eta): its distance halves with eta."""
    want = claims.potential_continuum(A, T)
    gaps = []
    for eta in (0.01, 0.005):
        times, means, covs = _chain_moments(eta)
        gaps.append(np.abs(claims.madelung_potential(means, covs, times, A, T) - want).max())
    assert gaps[0] / gaps[1] == pytest.approx(2, rel=0.15)
    assert gaps[1] < 0.05 * np.abs(want).max()


@pytest.mark.parametrize("start", ["narrow", "broad"])
def test_the_fit_sees_a_wrong_loss_from_either_start(start):
    """Analysed with a Hessian 10% off, the fit of exact moments moves away from -4 T^2 by
    several per cent from both starts (the weights keep a narrow start's first records from
    dominating)."""
    times, means, covs = _chain_moments(0.0025, start=start, every=8)
    right = claims.madelung_fit(means, covs, times, A, T)
    wrong = claims.madelung_fit(means, covs, times, 1.1 * A, T)
    assert abs(right / (-4 * T**2) - 1) < 0.01
    assert abs(wrong / (-4 * T**2) - 1) > 0.03


def test_breathing_is_the_real_hbar_packet_width():
    """The closed form of a real-hbar packet's variance solves the Ermakov equation
    w'' + omega^2 w = hbar^2 / (4 w^3) for its width w = sqrt(s) (to the solver's tolerance)."""
    from scipy.integrate import solve_ivp

    omega, hbar, s0 = 1.3, 2 * T, 0.3
    times = np.linspace(0, 2 * np.pi / omega, 50)

    def ermakov(t, y):
        return [y[1], -(omega**2) * y[0] + hbar**2 / (4 * y[0] ** 3)]

    sol = solve_ivp(ermakov, (0, times[-1]), [np.sqrt(s0), 0.0], t_eval=times, rtol=1e-11,
                    atol=1e-12)  # fmt: skip
    s_inf = 0.1
    want = (sol.y[0] ** 2 - s_inf) / (s0 - s_inf)
    got = claims.breathing_return(times, s0, s_inf, omega, hbar)
    np.testing.assert_allclose(got, want, atol=1e-8)
    assert claims.breathing_return(np.pi / omega, s0, s_inf, omega, hbar) == pytest.approx(1)


def test_the_curl_vanishes_identically_for_isotropic_noise_and_sets_the_production():
    """D = T I: Omega = -A + T Sigma^-1 is symmetric for any Sigma, so the curl is 0 to rounding
    (an identity); anisotropic D: a curl, and the continuum production per unit time
    tr(Omega^T D^-1 Omega Sigma) equals the OU entropy production rate (an independent formula,
    nnfield.theory.thermo) in the stationary state, where it is > 0 iff the curl is."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3, 3))
    sigmas = x @ np.swapaxes(x, -1, -2) + 0.1 * np.eye(3)
    a = np.diag([1.0, 0.5, 0.2])
    assert np.abs(claims.curl(sigmas, a, 0.7 * np.eye(3))).max() < 1e-12
    for d, positive in ((np.diag([1.0, 0.1, 0.4]), True), (T * np.eye(3), False)):
        a_rot = np.linalg.qr(rng.normal(size=(3, 3)))[0] @ a @ np.linalg.qr(
            rng.normal(size=(3, 3)))[0].T  # fmt: skip
        a_sym = 0.5 * (a_rot + a_rot.T) + np.eye(3)
        sigma = claims.continuum_stationary_covariance(a_sym, d)
        production = claims.curl_production(sigma, a_sym, d, 1.0)
        curl = claims.curl(sigma, a_sym, d)
        rate = OrnsteinUhlenbeck(a_sym, d).entropy_production_rate(np.zeros(3), sigma)
        assert production == pytest.approx(rate, rel=1e-9, abs=1e-12)
        assert (production > 1e-6) == positive
        assert (curl > 1e-6) == positive


def test_the_chain_production_tends_to_the_curl_production_as_eta_goes_to_zero():
    """The discrete chain's exact stationary production per step over eta tends to the
    continuum curl production (first order in eta), for SGD noise eta^2 C not commuting with A."""
    a = ROT @ np.diag([1.0, 0.5]) @ ROT.T
    c = np.diag([1.0, 0.1])
    gaps = []
    for eta in (0.02, 0.01, 0.005):
        step = LinearGaussianStep.sgld(a, eta, 0.0, noise=c)
        d = eta * c / 2
        want = claims.curl_production(claims.continuum_stationary_covariance(a, d), a, d, eta)
        gaps.append(step.stationary_entropy_production() / want - 1)
    assert gaps[0] / gaps[1] == pytest.approx(2, rel=0.1)
    assert abs(gaps[2]) < 0.01


def test_caustic_count_uses_the_records_the_exact_mean_resolves_and_fails_closed():
    exact = np.array([1.0, 0.5, -0.4, 0.01, 0.3, -0.02, -0.2])
    se = np.full(7, 0.05)
    assert claims.caustic_count(exact + 0.01, se, exact, 3.0) == (3, 3, 0)
    assert claims.caustic_count(np.zeros(7), se, exact, 3.0) == (0, 3, 5)  # no trajectory
    assert claims.caustic_count(np.abs(exact), se, exact, 3.0) == (0, 3, 2)
    assert claims.caustic_count(exact, se, 0.01 * exact, 3.0) == (-1, -1, -1)


@pytest.fixture(scope="module")
def study() -> xr.Dataset:
    """The claims' points of config/config.yaml at 6000 networks in 20 blocks."""
    from nnfield.config import expand, validate
    from nnfield.studies import load
    from nnfield.studies.learning import analyze as learning

    cfg = validate({"studies": {"learning": {"seed": 7, "networks": 6000, "block_size": 300,
                                             "samples": 20, "problems": PROBLEMS}}})  # fmt: skip
    specs = expand(cfg)["learning"]
    return learning.analyze([load("learning").simulate(s) for s in specs.values()], {})


PROBLEMS = [
    {"name": "madelung", "hessian_eigenvalues": [1.0, 2.0], "rotation": 0.3,
     "learning_rates": [0.0025], "temperatures": [T], "initial": ["narrow", "broad"],
     "steps": 1280, "record_every": 8},
    {"name": "curl", "hessian_eigenvalues": [1.0, 0.5], "rotation": 0.5, "optimizer": "sgd",
     "noise_eigenvalues": [1.0, 0.1], "learning_rates": [0.02], "initial": ["broad"],
     "steps": 600, "record_every": 20},
    {"name": "caustics", "kind": "barrier", "hessian_eigenvalues": [1.0], "barrier": 0.0,
     "barrier_width": 1.0, "optimizer": "momentum", "momentum": 0.9, "learning_rates": [0.2],
     "temperatures": [T], "initial": ["narrow"], "steps": 100, "record_every": 2},
    {"name": "control", "kind": "barrier", "hessian_eigenvalues": [1.0], "barrier": 0.0,
     "barrier_width": 1.0, "optimizer": "momentum", "momentum": 0.1, "learning_rates": [0.2],
     "temperatures": [T], "initial": ["narrow"], "steps": 100, "record_every": 2},
]  # fmt: skip


def _pt(ds, problem, initial=None):
    names = [str(p) for p in ds.point.values if f"problem~{problem}/" in str(p)
             and (initial is None or str(p).endswith(f"initial~{initial}"))]  # fmt: skip
    (name,) = names
    return ds.sel(point=name)


def _crit(n, ds):
    return stats.bonferroni_t(ALPHA, n, stats.jackknife_dof(20))


@pytest.mark.parametrize("initial", ["narrow", "broad"])
def test_measured_hbar2_matches_the_chain_and_is_negative(study, initial):
    one = _pt(study, "madelung", initial)
    value, se = float(one.hbar2), float(one.hbar2_se)
    crit = _crit(1, study)
    assert abs(value - float(one.hbar2_exact)) / se < crit
    assert value / se < -crit  # the sign: no real hbar
    assert abs(value - 4 * T**2) / se > crit  # a real-hbar reference is rejected


@pytest.mark.parametrize("initial", ["narrow", "broad"])
def test_quench_and_entropic_ratio_match_the_chain_and_reject_breathing(study, initial):
    one = _pt(study, "madelung", initial)
    for name in ("quench_return", "entropic_ratio"):
        sub = one.dropna("step", subset=[name])
        z = np.abs(sub[name] - sub[f"{name}_exact"]) / sub[f"{name}_se"]
        # quench_return is 1 - 1 at step 0 (se 0): only the later records are tested
        z = z.values[1:] if name == "quench_return" else z.values
        assert np.nanmax(z) < _crit(z.size, study), name
    half = one.sel(step=float(one.quench_half_period_step))
    assert abs(float(half.quench_return - half.quench_breathing)) / float(
        half.quench_return_se) > _crit(1, study)  # fmt: skip


def test_curl_and_its_production_match_the_chain(study):
    one = _pt(study, "curl")
    crit = _crit(3, study)
    for name in ("curl", "curl_production"):
        assert abs(float(one[name] - one[f"{name}_exact"])) / float(one[f"{name}_se"]) < crit
    assert abs(float(one.curl)) / float(one.curl_se) > crit
    for initial in ("narrow", "broad"):  # isotropic noise: an identity
        assert abs(float(_pt(study, "madelung", initial).curl)) < 1e-10


def test_caustics_count_as_exact_and_the_control_has_none(study):
    under, over = _pt(study, "caustics"), _pt(study, "control")
    assert int(under.mean_sign_changes) == int(under.mean_sign_changes_exact) > 3
    assert int(over.mean_sign_changes) == int(over.mean_sign_changes_exact) == 0
    for one in (under, over):
        assert int(one.mean_sign_mismatches) == 0
        assert float(one.mean_position_max_z) < float(one.mean_position_zcrit)
    for one, other in ((under, over), (over, under)):
        sub = one.dropna("step", subset=["mean_position"])
        z = np.abs(sub.mean_position - sub.mean_position_exact) / sub.mean_position_se
        assert float(z.max()) < _crit(sub.sizes["step"], study)
        wrong = other.dropna("step", subset=["mean_position"]).mean_position_exact.values
        assert float((np.abs(sub.mean_position - wrong) / sub.mean_position_se).max()) > 10


def test_the_verdicts_are_generated_and_fail_closed(study):
    verdicts = claim_verdicts(study, ALPHA)
    assert verdicts["claim_madelung_verdict"].startswith("hbar^2 < 0 at every point")
    assert "relaxes (no real-hbar breathing" in verdicts["claim_quench_verdict"]
    for key in ("claim_caustics_verdict", "claim_curl_verdict", "claim_hamilton_jacobi_verdict",
                "claim_madelung_verdict", "claim_quench_verdict"):  # fmt: skip
        assert "INCONSISTENT" not in verdicts[key] and "consistent" in verdicts[key], key
    assert study.attrs["claim_madelung_verdict"] == verdicts["claim_madelung_verdict"]
    broken = study.copy(deep=True)
    name = _pt(study, "madelung", "broad").point.item()
    broken["hbar2"].loc[{"point": name}] = 4 * T**2
    verdict = claim_verdicts(broken, ALPHA)["claim_madelung_verdict"]
    assert "not resolved below 0" in verdict and "INCONSISTENT with the fit" in verdict
    name = _pt(study, "caustics").point.item()
    for variable in ("mean_sign_changes", "mean_sign_mismatches"):
        wrong = study.copy(deep=True)
        wrong[variable].loc[{"point": name}] += 1
        assert "INCONSISTENT" in claim_verdicts(wrong, ALPHA)["claim_caustics_verdict"]
    wrong = study.copy(deep=True)
    wrong["mean_position_max_z"].loc[{"point": name}] = 100.0
    assert "INCONSISTENT" in claim_verdicts(wrong, ALPHA)["claim_caustics_verdict"]
    for variable in ("curl", "curl_production"):
        wrong = study.copy(deep=True)
        name = _pt(study, "curl").point.item()
        wrong[variable].loc[{"point": name}] *= 1.5
        assert "INCONSISTENT" in claim_verdicts(wrong, ALPHA)["claim_curl_verdict"]
    wrong = study.copy(deep=True)
    wrong["curl"].loc[{"point": _pt(study, "madelung", "broad").point.item()}] = 1e-6
    assert "curl NONZERO" in claim_verdicts(wrong, ALPHA)["claim_curl_verdict"]
    wrong = study.copy(deep=True)
    wrong["entropic_ratio"].loc[{"point": _pt(study, "madelung", "broad").point.item()}] *= 1.2
    assert "INCONSISTENT" in claim_verdicts(wrong, ALPHA)["claim_hamilton_jacobi_verdict"]
    name = _pt(study, "madelung", "broad").point.item()
    half = float(study["quench_half_period_step"].sel(point=name))
    broken["quench_return"].loc[{"point": name, "step": half}] = 1.0
    assert "NOT resolved" in claim_verdicts(broken, ALPHA)["claim_quench_verdict"]


def test_the_figure_draws_from_the_study_and_from_a_study_without_claims(study):
    import matplotlib.pyplot as plt

    from nnfield.studies.learning.claims_figures import seed_claims_learning

    plt.close(seed_claims_learning(study))
    bare = study.drop_vars([v for v in study.data_vars if v.startswith(("hbar2", "quench",
                            "entropic", "curl", "mean_"))])  # fmt: skip
    bare.attrs = {}
    plt.close(seed_claims_learning(bare))


def test_the_remaining_verdict_branches_fail_closed(study):
    """The quench against its exact relaxation, an unresolved curl, the R(0) counts, and a
    NaN measurement (kept in the verdict by its exact value)."""
    broad = _pt(study, "madelung", "broad").point.item()
    half = float(study["quench_half_period_step"].sel(point=broad))
    wrong = study.copy(deep=True)
    value = float(study["quench_return"].sel(point=broad, step=half))
    se = float(study["quench_return_se"].sel(point=broad, step=half))
    wrong["quench_return"].loc[{"point": broad, "step": half}] = value + 10 * se
    text = claim_verdicts(wrong, ALPHA)["claim_quench_verdict"]
    assert "INCONSISTENT with the exact relaxation" in text
    wrong = study.copy(deep=True)
    wrong["curl"].loc[{"point": _pt(study, "curl").point.item()}] = 0.0
    text = claim_verdicts(wrong, ALPHA)["claim_curl_verdict"]
    assert text.startswith("curl not resolved") and "INCONSISTENT" in text
    first = float(study["entropic_ratio"].sel(point=broad).dropna("step")[0])
    assert "R(0) < 0.1 at 1 and > 10 at 1 of 2" in claim_verdicts(study, ALPHA)[
        "claim_hamilton_jacobi_verdict"]  # fmt: skip
    wrong = study.copy(deep=True)
    step0 = float(study["step"][0])
    wrong["entropic_ratio"].loc[{"point": broad, "step": step0}] = first * 1000
    text = claim_verdicts(wrong, ALPHA)["claim_hamilton_jacobi_verdict"]
    assert "R INCONSISTENT with exact, R(0) < 0.1 at 0" in text
    for variable, key in (("hbar2", "claim_madelung_verdict"),
                          ("curl_production", "claim_curl_verdict")):  # fmt: skip
        wrong = study.copy(deep=True)
        point = _pt(study, "curl" if variable == "curl_production" else "madelung", "broad")
        wrong[variable].loc[{"point": point.point.item()}] = np.nan
        assert "INCONSISTENT" in claim_verdicts(wrong, ALPHA)[key], variable
