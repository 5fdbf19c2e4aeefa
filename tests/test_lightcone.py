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
    return spacetime_exact(step.transition, step.stationary_covariance, lags)[:, 0, :]  # 1 ring


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
    """From the exact C: speed and spread at the wavenumber q of lightcone.wavenumber equal
    -arg(lambda(q)) / q and sqrt(-2 L ln |lambda(q)|) / q, lambda(q) = (1 - e) e^(-iq) + e, to
    rounding (C^(q, tau + 1) = a lambda(q) C^(q, tau) for a circulant kernel), and tend to 1 - e
    and sqrt(e (1 - e) L) as q -> 0: within 0.03 at q = pi / 4, 0.003 at q = pi / 16."""
    for e, a, lags in ((0.3, 0.8, 8), (0.5, 0.7, 12), (0.1, 0.6, 6)):
        for r, slack in ((32, 3e-2), (16, 3e-2), (8, 3e-2)):
            s = lightcone.summaries(exact_cone("lazy_cycle", r, a, lags, laziness=e))
            _, q = lightcone.wavenumber(r)
            lam = (1 - e) * np.exp(-1j * q) + e
            assert abs(float(s["cone_speed"]) + np.angle(lam) / q) < 1e-9
            assert abs(float(s["cone_spread"]) - np.sqrt(-2 * lags * np.log(abs(lam))) / q) < 1e-9
            assert abs(float(s["cone_speed"]) - (1 - e)) < slack
            assert abs(float(s["cone_spread"]) - np.sqrt(e * (1 - e) * lags)) < slack
        q = np.pi / 16  # the O(q^2) correction shrinks with q
        lam = (1 - e) * np.exp(-1j * q) + e
        assert abs(-np.angle(lam) / q - (1 - e)) < 3e-3
        assert abs(np.sqrt(-2 * lags * np.log(abs(lam))) / q - np.sqrt(e * (1 - e) * lags)) < 3e-3


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
    """Linear f: every entry of C against the exact C (the three linear points; errors paired
    network by network, which for Ginibre W removes the spread between networks); the cycle's
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
    # Ginibre: each network's C differs; pairing with its own exact C removes that spread
    g = names.index("ginibre")
    ratio = ds["spacetime_paired_se"].values[g] / ds["spacetime_se"].values[g]
    assert np.nanmedian(ratio) < 0.5, np.nanmedian(ratio)
    i = names.index("cycle")
    n = params[i]["neurons"]  # the dataset pads sites to the widest ring (the lazy one's 32)
    c, se = ds["spacetime"].values[i, :, 0, :n], ds["spacetime_se"].values[i, :, 0, :n]
    exact = ds["spacetime_exact"].values[i, :, 0, :n]
    ok = se > 0
    wrong = np.roll(exact, 1, axis=-1)  # a light line one site off
    crit = float(ds["cone_ref_zcrit"].values[i])
    assert np.max(np.abs(c[ok] - wrong[ok]) / se[ok]) > 10 * crit


def test_controls_leave_the_light_line(cones):
    """The lazy shift's cone speed and spread against the exact ones, which are within 0.01
    (the finite wavenumber q = pi / 4) of 1 - e and sqrt(e (1 - e) L), and its light-line share
    well below 1; Ginibre W has (almost) no light line."""
    ds, params = cones
    names = [p["ensemble"] for p in params]
    crit = stats.bonferroni_t(stats.DEFAULT_SIGNIFICANCE, 2, 9)
    i = names.index("lazy")
    for name, truncation in (("cone_speed", 1e-2), ("cone_spread", 1e-2)):
        value, exact = ds[name].values[i, 0], ds[f"{name}_exact"].values[i, 0]
        z = (value - exact) / ds[f"{name}_se"].values[i, 0]
        assert abs(z) < crit, (name, z)
        # the finite wavenumber's correction: the exact value against the formula
        assert abs(exact - ds[f"{name}_formula"].values[i, 0]) < truncation
    forms = lightcone.closed_forms(params[i])  # the exact C's values are these, to rounding
    assert abs(ds["cone_speed_formula"].values[i, 0] - forms["cone_speed"][0]) < 1e-12
    assert abs(ds["cone_speed_exact"].values[i, 0] - forms["cone_speed"][0]) < 1e-9
    assert abs(ds["cone_spread_exact"].values[i, 0] - forms["cone_spread"][0]) < 1e-9
    for name in ("lazy", "ginibre"):
        j = names.index(name)
        f, se = ds["lightline_fraction"].values[j, 0], ds["lightline_fraction_se"].values[j, 0]
        assert f + 10 * se < 0.6, (name, f, se)
    assert ds["lightline_fraction"].values[names.index("cycle"), 0] > 0.999
    text = ds.attrs["claim_lightcone_verdict"]
    assert text.startswith("holds: on the n-cycle C(k, tau) vanishes off the light line")
    assert "f = linear and tanh" in text and "lazy shift e = 0.3" in text
    assert "ginibre (ginibre) has no light line" in text


RINGS = {"neurons": 64, "subsystems": 2, "contractions": [0.7], "noises": [1.0],
         "light_cone": 8, "coupling_matrix": "symmetric"}  # fmt: skip


@pytest.mark.parametrize(("kind", "eps"), [("rings", 0.15), ("rings_product", 0.2)])
def test_exact_mode_speeds_of_coupled_rings(kind, eps):
    """The modes of C = [[0, 1], [1, 0]] (c = -1, +1): for W = I (x) a P + eps C (x) I each mode
    sees a P + eps c and its cone moves at 1 / (1 + eps c / a), two different speeds; for
    W = a (I + eps C) (x) P each sees a (1 + eps c) P and stays on the light line (speed 1, all
    of C^2 on it).  Exact C on 32-site rings: the phase speed at the measured q (pi / 4) equals
    the kernel symbol's -arg(e^(-iq) + eps c / a) / q to rounding, and is within 0.05 of the
    q -> 0 formula."""
    p = {"weights": kind, "subsystems": 2, "coupling_matrix": "symmetric", "coupling": eps,
         "contraction": 0.7}  # fmt: skip
    modes, c = lightcone.cone_modes(p)
    assert np.allclose(c, [-1.0, 1.0]) and np.allclose(modes @ modes.T, np.eye(2))
    (w,) = WeightEnsemble(kind, 64, 2, 0.7, coupling=eps).sample(None, 1)
    step = hidden_step(w, 1.0, 1.0)
    exact = spacetime_exact(step.transition, step.stationary_covariance, 8, modes)
    got = lightcone._per_mode(exact)
    p |= {"neurons": 64, "light_cone": 8}
    forms = lightcone.closed_forms(p)
    assert np.max(np.abs(got["cone_speed"] - forms["cone_speed"])) < 1e-9
    formula = np.ones(2) if kind == "rings_product" else 1 / (1 + eps * c / 0.7)
    _, q = lightcone.wavenumber(32)
    symbol = (np.exp(-1j * q) + eps * c / 0.7 if kind == "rings"
              else (1 + eps * c) * np.exp(-1j * q))  # fmt: skip
    assert np.max(np.abs(got["cone_speed"] + np.angle(symbol) / q)) < 1e-9
    assert np.max(np.abs(got["cone_speed"] - formula)) < 5e-2, (got["cone_speed"], formula)
    if kind == "rings":
        assert abs(formula[1] - formula[0]) > 0.3  # the modes travel at different speeds
    else:
        assert np.allclose(formula, 1.0)
        assert np.all(np.abs(got["lightline_fraction"] - 1) <= 64 * EPS)


def test_measured_mode_speeds_of_coupled_rings():
    """Monte Carlo: each mode's cone speed against the exact one (z-test, Bonferroni over the
    modes and points); W = a (I + eps C) (x) P keeps every mode on the light line (off-line
    entries against 0), W = I (x) a P + eps C (x) I does not."""
    ds, params = run_study(
        [{"name": "sum", "weights": "rings", "couplings": [0.15], **RINGS},
         {"name": "product", "weights": "rings_product", "couplings": [0.2], **RINGS}],
        networks=200, block_size=20, steps=1000, burn_in=50,
    )  # fmt: skip
    crit = stats.bonferroni_t(stats.DEFAULT_SIGNIFICANCE, 4, 9)
    z = (ds["cone_speed"].values - ds["cone_speed_exact"].values) / ds["cone_speed_se"].values
    assert np.all(np.abs(z) < crit), z
    names = [p["ensemble"] for p in params]
    i, j = names.index("product"), names.index("sum")
    assert ds["offline_z_max"].values[i] < ds["offline_zcrit"].values[i]
    assert ds["offline_z_max"].values[j] > 10 * ds["offline_zcrit"].values[j]
    speeds = ds["cone_speed"].values[j]
    assert abs(speeds[1] - speeds[0]) > 10 * np.hypot(*ds["cone_speed_se"].values[j])
    text = ds.attrs["claim_lightcone_verdict"]
    assert ("product: W = a (I + eps C) (x) P, eps = 0.2: every mode on the light line"
            in text), text  # fmt: skip
    assert "sum: W = I (x) a P + eps C (x) I, eps = 0.15: the modes leave the light line" in text
    assert "modes at different speeds" in text and "WARNING" not in text


def test_every_clause_of_the_verdict_can_fail():
    """Synthetic summaries: a cycle off its light line, a wrong on-line value, a lazy cone away
    from its exact speed and a Ginibre point on a light line are each named (FAILS/WARNING)."""
    base = {"networks": 200, "block_size": 20, "light_cone": 4, "activation": "linear"}
    params = [{**base, "ensemble": "c", "weights": "cycle"},
              {**base, "ensemble": "z", "weights": "lazy_cycle", "laziness": 0.3, "neurons": 16},
              {**base, "ensemble": "g", "weights": "ginibre"}]  # fmt: skip
    one = lambda *v: ("point", list(v))  # noqa: E731
    mode = lambda *v: (("point", "mode"), [[x] for x in v])  # noqa: E731
    ds = xr.Dataset({
        "offline_z_max": one(12.0, 1.0, 1.0), "offline_zcrit": one(9.0, 9.0, 9.0),
        "cone_ref_z_max": one(11.0, 1.0, 1.0), "cone_ref_zcrit": one(9.0, 9.0, 9.0),
        "cone_speed": mode(1.0, 0.8, np.nan), "cone_speed_se": mode(0.01, 0.01, np.nan),
        "cone_speed_exact": mode(1.0, 0.7, np.nan),
        "cone_spread": mode(np.nan, 1.3, np.nan), "cone_spread_se": mode(np.nan, 0.05, np.nan),
        "cone_spread_exact": mode(np.nan, 1.3, np.nan),
        "lightline_fraction": mode(1.0, 0.5, 0.95),
        "lightline_fraction_se": mode(0.001, 0.001, 0.001),
    })  # fmt: skip
    text = lightcone.verdict(ds, params)
    assert text.startswith("FAILS: on the n-cycle"), text
    assert "FAILS: on it C = (g a)^tau" in text
    assert "WARNING: |z| 10.0 against the exact cone" in text
    assert "g (ginibre) WARNING: keeps a light line" in text
    assert lightcone.verdict(ds, [{**p, "light_cone": 0} for p in params]) == ""


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
