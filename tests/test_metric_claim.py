"""Is entropy production a function of the metric g = I + eps C?  (issue 23, part 3;
nnfield.studies.hidden.metric, docs/hidden.md "Production and the metric").

Exact results: explicit coupling matrices, normality of W, equal production for orthogonally
similar couplings (an identity, checked against a rounding bound), unequal production for a
non-normal coupling with the same det(I + eps C).  Monte Carlo: the measured pair differences
against the exact ones (z-tests on their own errors, Bonferroni over the pairs) and against the
claim's 0, through the study's own simulate and analyze; a wrong reference is caught.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from test_hidden import run_study

from nnfield import config
from nnfield.studies import load
from nnfield.studies.hidden import metric
from nnfield.studies.hidden.theory import curves, ring_fits
from nnfield.studies.hidden.weights import (
    WeightEnsemble,
    chain_coupling,
    coupling_label,
    is_normal,
)
from nnfield.theory.thermo import hidden_step

SIGMA_X = [[0.0, 1.0], [1.0, 0.0]]  # the symmetric chain of two rings
DIAGONAL = [[1.0, 0.0], [0.0, -1.0]]  # a rotation of SIGMA_X: same spectrum, normal
NONNORMAL = [[0.0, 2.0], [0.5, 0.0]]  # eigenvalues +-1 too, so det(I + eps C) = 1 - eps^2
EPS = np.finfo(float).eps


def rings(c, eps: float, a: float = 0.6, ring: int = 8) -> np.ndarray:
    return WeightEnsemble("rings", 2 * ring, 2, a, coupling=eps, coupling_matrix=c).ring_weights()


def production(c, eps: float) -> float:
    return hidden_step(rings(c, eps), 1.0).stationary_entropy_production()


def test_explicit_couplings_and_normality():
    """An explicit C is taken as given (and must be D x D); W is normal exactly when C is:
    W W^T - W^T W = eps^2 [C, C^T] (x) I, an identity to rounding."""
    assert np.array_equal(chain_coupling(2, NONNORMAL), np.array(NONNORMAL))
    assert np.array_equal(chain_coupling(2, SIGMA_X), chain_coupling(2, "symmetric"))
    with pytest.raises(ValueError, match="must be 2 x 2"):
        chain_coupling(2, [[0.0, 1.0, 0.0]])
    assert coupling_label(NONNORMAL) == "[[0.0,2.0],[0.5,0.0]]"
    assert coupling_label("antisymmetric") == "antisymmetric"
    assert is_normal(np.array(SIGMA_X)) and is_normal(np.array(DIAGONAL))
    assert not is_normal(np.array(NONNORMAL))
    for c in (SIGMA_X, DIAGONAL, NONNORMAL):
        w = rings(c, 0.2)
        comm = np.array(c) @ np.array(c).T - np.array(c).T @ np.array(c)
        gap = w @ w.T - w.T @ w - 0.04 * np.kron(comm, np.eye(8))
        assert np.max(np.abs(gap)) <= 64 * EPS
    ens = WeightEnsemble("rings", 16, 2, 0.6, coupling=0.2, coupling_matrix=NONNORMAL)
    assert ens.closed_form_production() is None  # the eigenvalue form needs a normal W
    assert ens.spectral_radius() == pytest.approx(np.max(np.abs(np.linalg.eigvals(rings(
        NONNORMAL, 0.2)))), rel=1e-12)  # fmt: skip


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.2, 0.3])
def test_equal_det_pairs_exactly(eps):
    """det(I + eps C) is 1 - eps^2 for all three couplings; the rotated pair produces the same
    entropy to rounding (orthogonal similarity), the non-normal one measurably more (at least
    10% of the eps^2 change at these eps), so production is not a function of det g."""
    dets = [np.linalg.det(np.eye(2) + eps * np.array(c)) for c in (SIGMA_X, DIAGONAL, NONNORMAL)]
    assert np.max(np.abs(np.array(dets) - (1 - eps**2))) <= 8 * EPS
    sym, diag, skew = (production(c, eps) for c in (SIGMA_X, DIAGONAL, NONNORMAL))
    assert abs(sym - diag) <= 64 * EPS * sym
    assert skew - sym > 0.1 * (sym - production(SIGMA_X, 0.0))
    # the closed form agrees with the Lyapunov result wherever it applies
    ens = WeightEnsemble("rings", 16, 2, 0.6, coupling=eps, coupling_matrix=DIAGONAL)
    assert ens.closed_form_production() == pytest.approx(diag, rel=1e-10)


def test_a_symmetric_coupling_with_another_spectrum_and_equal_det_differs():
    """C' = diag(0.5, c) with det(I + 0.2 C') = 0.96 = det(I + 0.2 sigma_x) (to rounding) is
    symmetric, hence normal, yet produces less entropy than the symmetric chain: the claim
    fails without any non-normal coupling (an independent referee's counterexample)."""
    c = (0.96 / 1.1 - 1) / 0.2
    other = [[0.5, 0.0], [0.0, c]]
    det = np.linalg.det(np.eye(2) + 0.2 * np.array(other))
    assert abs(det - 0.96) <= 8 * EPS and is_normal(np.array(other))
    sym, diag = production(SIGMA_X, 0.2), production(other, 0.2)
    assert sym - diag > 0.5  # per network of 16 neurons: 0.028 nats per step and neuron
    ens = WeightEnsemble("rings", 16, 2, 0.6, coupling=0.2, coupling_matrix=other)
    assert ens.closed_form_production() == pytest.approx(diag, rel=1e-10)


def test_exact_curves_of_a_nonnormal_coupling_are_its_lyapunov_production():
    """The study's exact curve along eps for an explicit non-normal C is the Lyapunov
    production of its one W (no Ginibre draws), and the ring fit leaves it out."""
    base = {"ensemble": "skew", "weights": "rings", "neurons": 16, "subsystems": 2,
            "contraction": 0.6, "antisymmetric_fraction": 0.5, "coupling_matrix": NONNORMAL,
            "activation": "linear", "gain": 1.0, "noise": 1.0, "bias": 0.0}  # fmt: skip
    params = [{**base, "coupling": e} for e in (0.1, 0.2, 0.3)]
    ds = curves(params)
    c = int(np.flatnonzero(ds["curve_axis"].values == "coupling")[0])
    assert int(ds["curve_draws"].values[c]) == 0
    x, y = ds["curve_x"].values[c], ds["curve_ep"].values[c]
    expected = [production(NONNORMAL, e) / 16 for e in x]
    assert np.max(np.abs(y - expected)) <= 64 * EPS * np.max(expected)
    study = ds.assign(ep=("point", [1.0] * 3), ep_se=("point", [1.0] * 3),
                      ep_closed_form=("point", [np.nan] * 3))  # fmt: skip
    assert not ring_fits(study, params).data_vars


def _synthetic(ep_exact: list[float], ep: list[float], se: float = 0.001):
    import xarray as xr

    base = {"weights": "rings", "neurons": 16, "subsystems": 2, "contraction": 0.6,
            "activation": "linear", "gain": 1.0, "noise": 1.0, "bias": 0.0, "networks": 400,
            "block_size": 20}  # fmt: skip
    params = [
        {**base, "ensemble": "sym", "coupling_matrix": "symmetric", "coupling": 0.2},
        {**base, "ensemble": "diag", "coupling_matrix": DIAGONAL, "coupling": 0.2},
        {**base, "ensemble": "skew", "coupling_matrix": NONNORMAL, "coupling": 0.2},
        {**base, "ensemble": "anti", "coupling_matrix": "antisymmetric", "coupling": 0.2},
        {**base, "ensemble": "skew", "coupling_matrix": NONNORMAL, "coupling": 0.1},
        {**base, "ensemble": "skew0", "coupling_matrix": NONNORMAL, "coupling": 0.0},
        {**base, "ensemble": "sym0", "coupling_matrix": "symmetric", "coupling": 0.0},
        {
            **base,
            "ensemble": "prod",
            "weights": "rings_product",
            "coupling_matrix": DIAGONAL,
            "coupling": 0.2,
        },
    ]
    n = len(params)
    study = xr.Dataset({"ep": ("point", ep + [0.5] * (n - len(ep))),
                        "ep_se": ("point", [se] * n),
                        "ep_exact": ("point", ep_exact + [0.5] * (n - len(ep_exact)))})  # fmt: skip
    return study, params


def test_pairs_are_the_equal_det_points_with_different_couplings():
    """Only points of one ring kind at the same eps with equal det(I + eps C) and different C
    pair up: the antisymmetric chain (det 1 + eps^2), another eps, eps = 0 (C plays no part)
    and the other ring kind (rings_product) do not."""
    study, params = _synthetic([0.6, 0.6, 0.7], [0.6, 0.6, 0.7])
    pairs = metric.metric_pairs(study, params)
    got = list(zip(pairs["metric_ensemble_a"].values, pairs["metric_ensemble_b"].values,
                   strict=True))  # fmt: skip
    assert got == [("sym", "diag"), ("sym", "skew"), ("diag", "skew")]
    assert np.all(pairs["metric_det_gap"].values <= 8 * EPS)
    assert pairs["metric_claim_rejected"].values.tolist() == [0, 1, 1]
    assert pairs["metric_zcrit"].values[0] == pytest.approx(
        metric.stats.bonferroni_t(metric.stats.DEFAULT_SIGNIFICANCE, 3, 19)
    )
    text = metric.verdict(pairs)
    assert text.startswith("rejected: entropy production is not a function of det(I + eps C) "
                           "alone")  # fmt: skip
    assert "2 of 3 differ exactly, 1 agrees exactly" in text and "WARNING" not in text


def test_a_wrong_reference_or_no_difference_is_reported():
    """A measured difference that disagrees with the exact one is named in the verdict; equal
    productions everywhere give 'consistent'; an exact difference too small to measure is not
    called a confirmation."""
    study, params = _synthetic([0.6, 0.6, 0.7], [0.6, 0.6, 0.75])
    assert "WARNING: a measured difference disagrees" in metric.verdict(
        metric.metric_pairs(study, params)
    )
    study, params = _synthetic([0.6, 0.6, 0.6], [0.6, 0.6, 0.6])
    assert metric.verdict(metric.metric_pairs(study, params)).startswith("consistent: all 3")
    study, params = _synthetic([0.6, 0.6, 0.6001], [0.6, 0.6, 0.6001], se=0.01)
    assert metric.verdict(metric.metric_pairs(study, params)).startswith(
        "not rejected by the measurement, but 2 of 3 equal-det pairs differ exactly"
    )


def test_measured_pair_differences_match_the_exact_ones():
    """Monte Carlo through the study (400 networks, 20 blocks, 1000 steps): every pair's
    measured difference agrees with the exact difference (|z| below the Bonferroni critical
    value), the rotated pair is consistent with the claim's 0, and the non-normal pairs reject
    it; the verdict says so and the figure draws."""
    ensembles = [
        {"name": "sym", "weights": "rings", "neurons": 16, "subsystems": 2,
         "contractions": [0.6], "couplings": [0.2], "coupling_matrix": "symmetric"},
        {"name": "diag", "weights": "rings", "neurons": 16, "subsystems": 2,
         "contractions": [0.6], "couplings": [0.2], "coupling_matrix": DIAGONAL},
        {"name": "skew", "weights": "rings", "neurons": 16, "subsystems": 2,
         "contractions": [0.6], "couplings": [0.2], "coupling_matrix": NONNORMAL},
    ]  # fmt: skip
    ds, _ = run_study(ensembles)
    assert ds.sizes["metric_pair"] == 3
    z, crit = ds["metric_z"].values, float(ds["metric_zcrit"].values[0])
    assert np.all(np.abs(z) < crit), (z, crit)
    assert ds["metric_claim_rejected"].values.tolist() == [0, 1, 1]
    assert np.all(np.abs(ds["metric_claim_z"].values[1:]) > 10 * crit)  # power: far beyond
    assert ds.attrs["claim_metric_verdict"].startswith("rejected")
    assert ds["coupling_matrix"].values.tolist() == ["symmetric", coupling_label(DIAGONAL),
                                                     coupling_label(NONNORMAL)]  # fmt: skip
    fig = load("hidden").draw("seed_claims", ds)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("(a) equal det(I + eps C): 0.96 at eps = 0.2"), titles
    assert "rejected" in fig._suptitle.get_text()


def test_without_pairs_the_figure_says_so():
    ds, _ = run_study([{"name": "c", "weights": "cycle", "neurons": 8, "contractions": [0.5]}],
                      networks=40, block_size=4, steps=100, burn_in=10)  # fmt: skip
    assert "metric_pair" not in ds.dims and "claim_metric_verdict" not in ds.attrs
    fig = load("hidden").draw("seed_claims", ds)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("no coupled rings with equal det" in t for t in texts)


def test_an_explicit_coupling_must_be_square_in_the_rings():
    cfg = {"studies": {"hidden": {"seed": 1, "networks": 20, "block_size": 10, "ensembles": [
        {"name": "r", "weights": "rings", "neurons": 8, "subsystems": 2, "contractions": [0.5],
         "couplings": [0.1], "coupling_matrix": [[0, 1, 0], [1, 0, 0]]}]}}}  # fmt: skip
    with pytest.raises(config.ConfigError, match=r"ensembles\[0\]\.coupling_matrix': an explicit"):
        config.validate(cfg)
    bad = copy.deepcopy(cfg)
    bad["studies"]["hidden"]["ensembles"][0]["coupling_matrix"] = "chain"
    with pytest.raises(config.ConfigError, match=r"ensembles\[0\]\.coupling_matrix'"):
        config.validate(bad)
