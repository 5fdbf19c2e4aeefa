"""Strings and light cones (issue 23, part 2; nnfield.studies.hidden.lightcone, docs/hidden.md
"Light cones"): the space-time correlation C(k, tau) of the hidden dynamics on a ring.

Exact identities are checked against rounding bounds; Monte Carlo runs through the study's own
simulate and analyze are z-tested on their jackknife errors (Bonferroni over the entries), with
power checks: a reference moved by one site, and the controls' light-line share.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from test_hidden import run_study

from nnfield import config, stats
from nnfield.studies import load
from nnfield.studies.hidden import lightcone
from nnfield.studies.hidden.sample import spacetime_exact
from nnfield.studies.hidden.weights import WeightEnsemble
from nnfield.theory.thermo import hidden_step

EPS = np.finfo(float).eps


def exact_cone(kind: str, n: int, a: float, lags: int, noise: float = 1.0, **kw) -> np.ndarray:
    (w,) = WeightEnsemble(kind, n, 1, a, **kw).sample(np.random.default_rng(0), 1)
    step = hidden_step(w, noise, 1.0)
    return spacetime_exact(step.transition, step.stationary_covariance, lags)


@pytest.mark.parametrize(("n", "a", "noise"), [(6, 0.5, 1.0), (16, 0.8, 0.3), (5, 0.95, 2.0)])
def test_cycle_correlation_lives_on_the_light_line(n, a, noise):
    """C(k, tau) = a^tau s^2 / (1 - a^2) at k = tau mod n and 0 elsewhere, past one turn of the
    ring too (lags up to 2n): an identity, to rounding."""
    lags = 2 * n
    c = exact_cone("cycle", n, a, lags, noise)
    expected = np.zeros_like(c)
    tau = np.arange(lags + 1)
    expected[tau, tau % n] = a**tau * noise**2 / (1 - a**2)
    assert np.max(np.abs(c - expected)) <= 64 * EPS * noise**2 / (1 - a**2)
    s = lightcone.summaries(c)
    assert abs(float(s["lightline_fraction"]) - 1) <= 64 * EPS


def test_lazy_shift_cone_moves_at_one_minus_e_and_spreads_diffusively():
    """Centre speed 1 - e and width growth sqrt(e (1 - e) L) of the exact C on a ring wide
    enough that the cone does not wrap (n = 64), to 1e-9; on a 16-ring at a = 0.9 the
    wrap-around bends them (so the default run uses 32 neurons)."""
    for e, a, lags in ((0.3, 0.8, 8), (0.5, 0.7, 12), (0.1, 0.6, 6)):
        s = lightcone.summaries(exact_cone("lazy_cycle", 64, a, lags, laziness=e))
        assert abs(float(s["cone_speed"]) - (1 - e)) < 1e-9
        assert abs(float(s["cone_spread"]) - np.sqrt(e * (1 - e) * lags)) < 1e-9
    narrow = lightcone.summaries(exact_cone("lazy_cycle", 16, 0.9, 8, laziness=0.3))
    assert abs(float(narrow["cone_speed"]) - 0.7) > 0.05


CONE = {"neurons": 16, "noises": [1.0], "light_cone": 8}
ENSEMBLES = [
    {"name": "cycle", "weights": "cycle", "contractions": [0.8], **CONE},
    {"name": "tanh", "weights": "cycle", "contractions": [0.8], "activation": "tanh",
     "gains": [1.5], **CONE},
    {"name": "lazy", "weights": "lazy_cycle", "contractions": [0.8], "laziness": [0.3],
     **CONE, "neurons": 32},
    {"name": "ginibre", "weights": "ginibre", "contractions": [0.8], **CONE},
]  # fmt: skip


@pytest.fixture(scope="module")
def cones():
    return run_study(ENSEMBLES, networks=200, block_size=20, steps=1000, burn_in=50)


def test_measured_cones_match_the_exact_ones(cones):
    """Linear f: every entry of C against the exact C (the three linear points); the cycle's
    off-line entries against 0 for linear and tanh f; a reference moved by one site is
    rejected."""
    ds, params = cones
    names = [p["ensemble"] for p in params]
    for i, name in enumerate(names):
        if name != "tanh":
            assert ds["cone_ref_z_max"].values[i] < ds["cone_ref_zcrit"].values[i], name
    for name in ("cycle", "tanh"):
        i = names.index(name)
        assert ds["offline_z_max"].values[i] < ds["offline_zcrit"].values[i], name
    i = names.index("cycle")
    n = params[i]["neurons"]  # the dataset pads sites to the widest ring (the lazy one's 32)
    c, se = ds["spacetime"].values[i, :, :n], ds["spacetime_se"].values[i, :, :n]
    exact = ds["spacetime_exact"].values[i, :, :n]
    ok = se > 0
    wrong = np.roll(exact, 1, axis=-1)  # a light line one site off
    crit = float(ds["cone_ref_zcrit"].values[i])
    assert np.max(np.abs(c[ok] - wrong[ok]) / se[ok]) > 10 * crit


def test_controls_leave_the_light_line(cones):
    """The lazy shift's cone speed and spread against the exact ones (the same window of
    lightcone.WINDOW sites on the exact C), which are within their truncation of 1 - e and
    sqrt(e (1 - e) L), and its light-line share well below 1; Ginibre W has (almost) no light
    line."""
    ds, params = cones
    names = [p["ensemble"] for p in params]
    crit = stats.bonferroni_t(stats.DEFAULT_SIGNIFICANCE, 2, 9)
    i = names.index("lazy")
    for name, truncation in (("cone_speed", 1e-3), ("cone_spread", 0.03)):
        z = (ds[name].values[i] - ds[f"{name}_exact"].values[i]) / ds[f"{name}_se"].values[i]
        assert abs(z) < crit, (name, z)
        # the window's truncation: the exact windowed value against the formula
        assert abs(ds[f"{name}_exact"].values[i] - ds[f"{name}_formula"].values[i]) < truncation
    assert abs(float(ds["cone_speed_formula"].values[i]) - 0.7) < 1e-12
    assert abs(float(ds["cone_spread_formula"].values[i]) - np.sqrt(0.21 * 8)) < 1e-12
    for name in ("lazy", "ginibre"):
        j = names.index(name)
        f, se = ds["lightline_fraction"].values[j], ds["lightline_fraction_se"].values[j]
        assert f + 10 * se < 0.6, (name, f, se)
    assert ds["lightline_fraction"].values[names.index("cycle")] > 0.999
    text = ds.attrs["claim_lightcone_verdict"]
    assert text.startswith("holds: on the n-cycle C(k, tau) vanishes off the light line")
    assert "f = linear and tanh" in text and "lazy shift e = 0.3" in text
    assert "ginibre (ginibre) has no light line" in text


def test_verdict_says_fails_when_the_data_leave_the_line():
    ds = xr.Dataset({"offline_z_max": ("point", [12.0]), "offline_zcrit": ("point", [9.0])})
    params = [{"ensemble": "c", "weights": "cycle", "activation": "tanh", "light_cone": 4}]
    assert lightcone.verdict(ds, params).startswith("FAILS: on the n-cycle")
    assert lightcone.verdict(ds, [{**params[0], "light_cone": 0}]) == ""


def test_the_figure_draws_the_cones(cones):
    ds, _ = cones
    fig = load("hidden").draw("seed_claims", ds)
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("(c) cycle") for t in titles), titles
    assert any("lazy" in t for t in titles) and any("ginibre" in t for t in titles)


@pytest.mark.parametrize(
    ("edit", "key"),
    [({"bias": 0.1}, "light_cone': the space-time correlation is the raw second moment"),
     ({"light_cone": 80}, "light_cone': 80 lags need burn_in >= 80"),
     ({"laziness": [0.2]}, "laziness': only for weights lazy_cycle")],
)  # fmt: skip
def test_light_cone_config_errors_name_the_key(edit, key):
    ens = {"name": "c", "weights": "cycle", "neurons": 8, "contractions": [0.5],
           "light_cone": 4, **edit}  # fmt: skip
    cfg = {"studies": {"hidden": {"seed": 1, "networks": 20, "block_size": 2, "burn_in": 50,
                                  "ensembles": [ens]}}}  # fmt: skip
    with pytest.raises(config.ConfigError, match=key.replace("(", r"\(").replace(")", r"\)")):
        config.validate(cfg)
