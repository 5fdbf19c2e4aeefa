"""The O(1/N) action reconstructed from the correlators (docs/physics.md section 9).

Identities (Mercer basis, symmetric design, amputation, Edgeworth bin integrals) are tested with
rounding or quadrature bounds.  The density histogram is tested against the exact bin
probabilities of a cos-net at N = 2, a two-dimensional periodic integral.  The held-out and
density tests run on Monte Carlo ensembles: the reconstruction must pass where the local
actions (and the Gaussian density) are rejected by the same data, and the exact truncation
bias and O(1/N^2) terms must be small in units of the test's errors, so that a pass means
something.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from conftest import make_spec
from scipy import integrate, special

from nnfield import config
from nnfield import tuples as tup
from nnfield.studies.npoint import action
from nnfield.studies.npoint import analyze as npoint
from nnfield.studies.npoint import coupling_theory as cp
from nnfield.studies.npoint.sampler import DENSITY_EDGES
from nnfield.theory.finite_width import SingleLayerExact

ALPHA = 1e-3
INPUTS12 = {
    "cos": [round(-1.1 + 0.2 * i, 10) for i in range(12)],
    "relu": [round(-1.1 + 0.2 * i, 10) for i in range(12)],
}
HELD_OUT = [1, 5, 9]
SIGMAS = {
    "cos": {"sigma_w0": 1.0, "sigma_b0": 0.0, "sigma_w1": 1.0, "sigma_b1": 0.0},
    "relu": {"sigma_w0": 1.0, "sigma_b0": 1.0, "sigma_w1": 1.0, "sigma_b1": 1.0},
    "erf": {"sigma_w0": 1.0, "sigma_b0": 1.0, "sigma_w1": 1.0, "sigma_b1": 1.0},
}
MODES = {"cos": 7, "relu": 7}


def prior(arch: str) -> cp.Prior:
    s = SIGMAS[arch]
    return cp.Prior(arch, s["sigma_w0"], s["sigma_b0"], s["sigma_w1"], s["sigma_b1"])


def test_mercer_modes_are_orthonormal_eigenfunctions():
    """int e_k e_l = delta_kl on the Nystrom rule, the Nystrom extension agrees with the node
    values, and sum_k mu_k e_k(x) e_k(y) -> K(x, y) off the nodes (all to rounding/quadrature)."""
    basis = action.mercer_basis(prior("erf"), -1.1, 1.1, 12)  # mu_11 / mu_0 ~ 3e-9
    gram = basis.node_values.T @ (basis.weights[:, None] * basis.node_values)
    assert np.max(np.abs(gram - np.eye(12))) < 1e-10
    at_nodes = basis(basis.nodes[:, None])
    assert np.max(np.abs(at_nodes - basis.node_values)) < 1e-6 * np.abs(basis.node_values).max()
    x = np.array([[-0.77], [0.05], [0.93]])
    rebuilt = (basis(x) * basis.eigenvalues) @ basis(x).T
    assert np.max(np.abs(rebuilt - prior("erf").kernel(x, x))) < 1e-6  # the tail mu_12.. ~ 1e-9
    # a kernel of the wrong prior is not reproduced: the bound has teeth
    other = cp.Prior("erf", 1.5, 1.0, 1.0, 1.0).kernel(x, x)
    assert np.max(np.abs(rebuilt - other)) > 1e-3
    with pytest.raises(ValueError, match="rounding noise"):  # cos-net's mu_11 / mu_0 ~ 6e-14
        action.mercer_basis(prior("cos"), -1.1, 1.1, 12)


def test_design_and_vertex_are_the_symmetric_expansion():
    """design @ c equals sum_klmn C_klmn e_k e_l e_m e_n for a symmetric C built from c, and
    amputating then re-attaching the propagators gives back C (identities)."""
    rng = np.random.default_rng(1)
    r, n = 4, 5
    values = rng.standard_normal((n, r))
    index = action.quartic_index(r)
    c = rng.standard_normal(index.shape[0])
    full = np.zeros((r,) * 4)
    for p, modes in enumerate(index):
        for order in set(itertools.permutations(modes.tolist())):
            full[order] = c[p]
    tuples = tup.sorted_tuples(n, 4)
    direct = np.einsum("klmn,tk,tl,tm,tn->t", full, *(values[tuples[:, s]] for s in range(4)))
    design = action.quartic_design(values, tuples, index)
    assert np.max(np.abs(design @ c - direct)) < 1e-12 * np.abs(direct).max()
    basis = action.mercer_basis(prior("cos"), -1.0, 1.0, r)
    fit = action.NonlocalAction(basis, index, design, np.zeros((len(tuples), len(c))), 1.0)
    lam = fit.vertex(c)
    back = -lam * np.prod(basis.eigenvalues[index], axis=1)
    assert np.max(np.abs(back - c)) < 1e-12 * np.abs(c).max()
    counter = fit.counterterm(lam)
    assert np.allclose(counter, counter.T, rtol=0, atol=1e-12 * np.abs(counter).max())


def _two_mode_covariance(mu, lam_full, counter):
    """<phi_k phi_l> under exp(-S), S = sum phi^2/(2 mu) + (1/4!) lambda phi^4 + 1/2 phi B phi,
    by a 2-d Gauss-Hermite rule in t_k = phi_k / sqrt(mu_k)."""
    t, w = np.polynomial.hermite_e.hermegauss(60)
    t1, t2 = np.meshgrid(t, t, indexing="ij")
    phi = np.stack([np.sqrt(mu[0]) * t1, np.sqrt(mu[1]) * t2])  # (2, Q, Q)
    quartic = np.einsum("klmn,kab,lab,mab,nab->ab", lam_full, phi, phi, phi, phi) / 24
    quadratic = 0.5 * np.einsum("kl,kab,lab->ab", counter, phi, phi)
    weight = np.outer(w, w) * np.exp(-(quartic + quadratic))
    return np.einsum("kab,lab,ab->kl", phi, phi, weight) / weight.sum()


def test_counterterm_keeps_g2_equal_to_k():
    """With the counterterm B_kl = -1/2 sum_m lambda_klmm mu_m, <phi_k phi_l> - mu_k delta_kl is
    O(lambda^2) (it falls 4x when lambda halves); without it, or with the factor 1 instead of
    1/2, it is O(lambda) (falls 2x).  Exact two-mode integrals by quadrature."""
    basis = action.mercer_basis(prior("cos"), -1.0, 1.0, 2)
    mu = basis.eigenvalues
    index = action.quartic_index(2)
    fit = action.NonlocalAction(basis, index, np.zeros((1, len(index))), np.zeros((1, 1)), 1.0)
    rng = np.random.default_rng(3)
    base = rng.uniform(0.5, 1.0, len(index)) / mu[index].prod(axis=1) ** 0.5

    def deviation(scale: float, factor: float) -> float:
        lam = scale * base
        full = np.zeros((2,) * 4)
        for p, modes in enumerate(index):
            for order in set(itertools.permutations(modes.tolist())):
                full[order] = lam[p]
        cov = _two_mode_covariance(mu, full, factor * fit.counterterm(lam))
        return float(np.max(np.abs(cov - np.diag(mu)) / mu.max()))

    eps = 2e-3
    with_b = deviation(eps, 1.0) / deviation(eps / 2, 1.0)
    without_b = deviation(eps, 0.0) / deviation(eps / 2, 0.0)
    doubled = deviation(eps, 2.0) / deviation(eps / 2, 2.0)
    assert 3.8 < with_b < 4.2, with_b  # O(lambda^2): ratio 4 up to O(lambda) corrections
    assert 1.9 < without_b < 2.1 and 1.9 < doubled < 2.1, (without_b, doubled)
    assert deviation(eps, 1.0) < 0.05 * deviation(eps, 0.0)


def test_edgeworth_bins_integrate_the_edgeworth_density():
    """Bin integrals of phi (1 + c4/24 He4) and of the O(1/N^2) terms against adaptive
    quadrature; the bins of any density sum to 1 (identities)."""
    c4, c6 = -0.3, 0.2
    he = np.polynomial.hermite_e.hermeval
    phi = special.ndtr
    got = action.edgeworth_bins(DENSITY_EDGES, np.array(c4))
    nxt = action.edgeworth_next_order(DENSITY_EDGES, c4, c6)
    z = np.concatenate([[-np.inf], DENSITY_EDGES, [np.inf]])
    for i in range(z.size - 1):

        def dens(t):
            return np.exp(-0.5 * t * t) / np.sqrt(2 * np.pi) * (1 + c4 / 24 * he(t, [0] * 4 + [1]))

        def nxt_dens(t):
            terms = c6 / 720 * he(t, [0] * 6 + [1]) + c4**2 / 1152 * he(t, [0] * 8 + [1])
            return np.exp(-0.5 * t * t) / np.sqrt(2 * np.pi) * terms

        assert abs(integrate.quad(dens, z[i], z[i + 1], epsabs=1e-13)[0] - got[i]) < 1e-11
        assert abs(integrate.quad(nxt_dens, z[i], z[i + 1], epsabs=1e-13)[0] - nxt[i]) < 1e-11
    assert abs(got.sum() - 1) < 1e-14 and abs(nxt.sum()) < 1e-14
    assert np.allclose(action.edgeworth_bins(DENSITY_EDGES, np.array(0.0)), np.diff(phi(z)))


def cos_density_exact(width: int, sw1: float, sb1: float, sd: float, nodes: int) -> np.ndarray:
    """Exact bin probabilities of a width-2 cos-net at one input: given the phases theta_i
    (uniform, whatever the input: b0 is a uniform phase), f ~ N(0, S) with
    S = sb1^2 + (sw1^2 / N) sum_i cos^2 theta_i; a periodic trapezoid rule over the phases."""
    assert width == 2
    theta = 2 * np.pi * np.arange(nodes) / nodes
    c2 = np.cos(theta) ** 2
    s = sb1**2 + sw1**2 / width * (c2[:, None] + c2[None, :])
    z = np.concatenate([[-np.inf], DENSITY_EDGES, [np.inf]])
    cdf = special.ndtr(z[None, None, :] * sd / np.sqrt(s)[..., None])
    return np.diff(cdf, axis=-1).mean(axis=(0, 1))


@pytest.mark.parametrize("estimator", ["brute", "conditional"])
def test_density_histogram_matches_exact_cos_net(estimator, point_runner):
    """The stored histogram of a width-2 cos-net against its exact bin probabilities (max-|z|
    over inputs and bins, jackknife errors, B - 1 dof); the same data reject the Gaussian."""
    from nnfield import stats

    sw1, sb1 = 1.0, 0.3
    spec = make_spec("cos", 2, 40_000, block_size=400, estimator=estimator,
                     sigma_w0=1.5, sigma_b0=0.0, sigma_w1=sw1, sigma_b1=sb1)  # fmt: skip
    ds = point_runner(spec)
    sd = float(ds["density_scale"].values[0])
    assert np.allclose(ds["density_scale"].values, np.sqrt(sb1**2 + sw1**2 / 2), rtol=1e-14)
    exact = cos_density_exact(2, sw1, sb1, sd, 256)
    assert np.max(np.abs(exact - cos_density_exact(2, sw1, sb1, sd, 512))) < 1e-13
    counts = ds["count"].values
    sums = {"p": ds["sum_density"].values.reshape(counts.size, -1)}
    est = stats.jackknife(sums, counts, lambda m: m["p"])
    target = np.tile(exact, ds.sizes["input"])
    ok = est.stderr > 0
    dof = stats.jackknife_dof(counts.size)
    test = stats.max_z_test(est.value[ok], est.stderr[ok], target[ok], ALPHA, dof)
    assert test.consistent, str(test)
    gauss = np.tile(action.edgeworth_bins(DENSITY_EDGES, np.array(0.0)), ds.sizes["input"])
    wrong = stats.max_z_test(est.value[ok], est.stderr[ok], gauss[ok], ALPHA, dof)
    assert not wrong.consistent, str(wrong)
    if estimator == "conditional":  # bin probabilities of every network sum to 1 (identity)
        total = ds["sum_density"].values.sum(-1)
        assert np.max(np.abs(total - counts[:, None])) < 1e-9 * counts.max()


def run_action(arch: str, width: int, networks: int, point_runner, estimator="conditional"):
    spec = make_spec(arch, width, networks, block_size=networks // 100, inputs=INPUTS12[arch],
                     estimator=estimator, **SIGMAS[arch])  # fmt: skip
    ds = point_runner(spec)
    s = SIGMAS[arch]
    x = np.asarray(INPUTS12[arch])[:, None]
    exact = SingleLayerExact(arch, x, s["sigma_w0"], s["sigma_b0"], s["sigma_w1"], s["sigma_b1"])
    settings = {"family": arch, "held_out": HELD_OUT, "modes": MODES[arch]}
    integrals = npoint._family_integrals(ds.attrs, arch, ds["x"].values, {}, {})
    return npoint._action(ds, exact, settings, integrals, {}), exact


@pytest.mark.parametrize("arch", ["cos", "relu"])
def test_reconstruction_predicts_heldout_g4_where_local_actions_fail(arch, point_runner):
    """Fitted on 9 of 12 inputs (even blocks), the non-local action predicts G4_conn on every
    tuple with a held-out input (odd blocks) within errors; the constant and radial lambda
    actions fitted on the same tuples are rejected.  The exact truncation bias of the mode
    expansion is below half a standard error (else a pass would hide it), and the held-out
    G4_conn is far from zero (the test has power)."""
    out, _ = run_action(arch, 4, 20_000, point_runner)
    maxz = out["action_maxz"].to_series()
    crit = float(out["action_zcrit"])
    assert float(out["action_truncation"]) < 0.5
    assert maxz["nonlocal"] <= crit, f"{maxz.to_dict()} crit {crit}"
    assert maxz["local"] > crit and maxz["radial"] > crit, f"{maxz.to_dict()} crit {crit}"
    power = np.max(np.abs(out["action_heldout"] / out["action_heldout_se"]).values)
    assert power > crit + 2


def test_brute_histograms_with_empty_tail_bins_are_tested_without_them(point_runner):
    """With the brute estimator and few networks some tail bins of the test half stay empty (no
    error bar): they are left out of the density test and counted, never divided by."""
    out, _ = run_action("cos", 100, 4_000, point_runner, estimator="brute")
    bins = out.sizes["heldout_input"] * out.sizes["density_bin"]
    assert 0 < int(out["density_bins_tested"]) < bins
    assert np.all(np.isfinite(out["density_maxz"].values))
    assert np.all(np.isfinite(out["action_maxz"].values))


def test_too_few_modes_are_rejected_by_the_same_test(point_runner):
    """Three modes cannot represent cos-net's G4_conn: its exact truncation bias is many
    standard errors and the held-out test rejects it, so the test sees truncation."""
    spec = make_spec("cos", 4, 20_000, block_size=200, inputs=INPUTS12["cos"],
                     estimator="conditional", **SIGMAS["cos"])  # fmt: skip
    ds = point_runner(spec)
    exact = SingleLayerExact("cos", np.asarray(INPUTS12["cos"])[:, None], 1.0, 0.0, 1.0, 0.0)
    out = npoint._action(ds, exact, {"held_out": HELD_OUT, "modes": 3}, None, {})
    assert float(out["action_truncation"]) > float(out["action_zcrit"])
    assert float(out["action_maxz"].sel(action_model="nonlocal")) > float(out["action_zcrit"])


def test_edgeworth_density_at_small_width(point_runner):
    """At N = 100 (where the exact O(1/N^2) Edgeworth terms are below half a standard error) the
    O(1/N) density with the reconstruction's kappa4 matches the held-out histogram; the GP
    Gaussian and the local action's density are rejected by the same data."""
    out, _ = run_action("cos", 100, 100_000, point_runner)
    assert float(out["density_next_order"]) < 0.5
    maxz = out["density_maxz"].to_series()
    crit = float(out["density_zcrit"])
    assert maxz["nonlocal"] <= crit, f"{maxz.to_dict()} crit {crit}"
    assert maxz["gaussian"] > crit and maxz["local"] > crit, f"{maxz.to_dict()} crit {crit}"


def _npoint_config(settings):
    cfg = config.read_yaml(config.DEFAULT_CONFIG_PATH)
    cfg["studies"] = {"npoint": cfg["studies"]["npoint"]}
    (cos,) = (f for f in cfg["studies"]["npoint"]["families"] if f["name"] == "cos")
    cos["action"] = settings
    return cfg


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"held_out": [12], "modes": 3}, "families[4].action.held_out"),
        ({"held_out": [1, 5, 9], "modes": 9}, "families[4].action.modes"),
        ({"held_out": [1], "modes": 3, "interval": [1, 0]}, "families[4].action.interval"),
        ({"held_out": [1]}, "families[4].action"),
    ],
)
def test_bad_action_settings_name_the_key(settings, key):
    with pytest.raises(config.ConfigError, match=re.escape(key)):
        config.validate(_npoint_config(settings))


def test_action_settings_are_analysis_options_not_point_parameters():
    """The action settings reach the analysis (and the plan) with the family's name, and no
    point spec holds them: changing them reruns the analysis, not the simulation."""
    from nnfield.studies import load

    cfg = config.validate(_npoint_config({"held_out": [1, 5, 9], "modes": 7}))["studies"]
    study = load("npoint")
    options = study.analysis_options(cfg["npoint"])
    assert options["action"] == [{"family": "cos", "held_out": [1, 5, 9], "modes": 7}]
    other = config.validate(_npoint_config({"held_out": [2], "modes": 4}))["studies"]
    assert [s.sha256 for s in study.expand(cfg["npoint"])] == [
        s.sha256 for s in study.expand(other["npoint"])
    ]


def test_action_figure_only_with_an_action():
    from nnfield.studies.npoint.sweep import figures_for

    figures = ("npoint_scaling", "action_nonlocal")
    with_action = {"families": [{"name": "a", "action": {}}, {"name": "b"}]}
    assert figures_for(with_action, figures) == list(figures)
    assert figures_for({"families": [{"name": "b"}]}, figures) == ["npoint_scaling"]


def test_action_figure_draws_cleanly_from_the_study_dataset(point_runner):
    """analyze() with a family's action gives the action variables and the method attribute;
    the figure draws from them with no overlapping or clipped text and no 'nan'."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnfield.figures import textcheck
    from nnfield.studies.npoint.figures import FIGURES

    points = [
        point_runner(make_spec("cos", width, 20_000, block_size=200, inputs=INPUTS12["cos"],
                               estimator="conditional", **SIGMAS["cos"]))
        for width in (4, 100)
    ]  # fmt: skip
    options = {
        "action": [{"family": "cos", "held_out": HELD_OUT, "modes": 7}],
        "couplings": {"cutoffs": [10], "reference_cutoff": 10},
    }
    ds = npoint.analyze(points, options)
    assert "Nystrom" in ds.attrs["action_method"]
    assert ds["action_maxz"].sizes == {"family": 1, "width": 2, "action_model": 3}
    fig = FIGURES["action_nonlocal"](ds)
    try:
        assert textcheck.problems(fig, "action_nonlocal") == []
    finally:
        plt.close(fig)
