"""Hidden-state dynamics (studies.hidden) against the exact results of PHYSICS.md section 4.

Monte Carlo runs go through the study's own simulate / merge / analyze.  Every comparison is a
z-test on the estimator's own error (Bonferroni over the points of a test), with a power check
where the expected value is zero or a near-miss would otherwise pass unnoticed.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from nnfield import config, stats
from nnfield.hidden_weights import WeightEnsemble, shift
from nnfield.studies import hidden
from nnfield.theory import thermo

ALPHA = 1e-3


def run_study(ensembles: list[dict], **study) -> tuple:
    """(study dataset, params) of a small hidden study run in-process."""
    cfg = {"seed": 11, "networks": 400, "block_size": 20, "steps": 1000, "burn_in": 200,
           "ensembles": ensembles, **study}  # fmt: skip
    cfg = config.validate({"studies": {"hidden": cfg}})["studies"]["hidden"]
    specs = config.expand_hidden(cfg)
    points = []
    for spec in specs:
        shards = [hidden.simulate(spec, k) for k in range(spec.params["shards"])]
        points.append(hidden.merge(shards))
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


def test_symmetric_weights_produce_no_entropy():
    """Symmetric W (GOE, and Ginibre at k = 0) satisfies detailed balance: zero production;
    the medium part alone fluctuates around zero too."""
    ds, _ = run_study([
        {"name": "s", "weights": "symmetric", "neurons": 8, "contractions": [0.5, 0.9]},
        {"name": "g", "weights": "ginibre", "neurons": 8, "contractions": [0.8],
         "antisymmetric_fractions": [0.0], "bias": 0.5},
    ], dtype="float64")  # fmt: skip
    assert np.allclose(ds["ep_exact"].values, 0.0, atol=1e-12)
    # the biased networks' average state, against the exact (I - W)^-1 b averaged likewise
    biased = ds.sel(point=ds["ensemble"] == "g")
    assert_z(biased["subsystem_mean"], biased["subsystem_mean_exact"],
             biased["subsystem_mean_se"], 1, "subsystem mean")  # fmt: skip
    assert_z(ds["ep_medium"], 0.0, ds["ep_medium_se"], 3, "symmetric medium entropy")
    assert_z(ds["ep"], 0.0, ds["ep_se"], 3, "symmetric production")


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
    """Each member of the P/P^T mixture produces n a^2 / (1 - a^2); the annealed process (W not
    conditioned on) produces nothing: its pair law is symmetric sample by sample, and its
    medium part fluctuates around zero."""
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


def test_coupled_rings_quadratic_form_is_even_in_eps():
    """Two rings coupled by eps C: the fitted ep = c0 + c1 eps + c2 eps^2 has c1 = 0 (even in
    eps) and c2 equal to the same fit of the exact values, with c2 resolved; the ring averages'
    correlation and current match their exact values."""
    rings = {"weights": "rings", "neurons": 12, "subsystems": 2, "contractions": [0.6],
             "couplings": [-0.15, -0.075, 0.0, 0.075, 0.15]}  # fmt: skip
    ds, _ = run_study([{"name": "sym", "coupling_matrix": "symmetric", **rings},
                       {"name": "anti", "coupling_matrix": "antisymmetric", **rings}])  # fmt: skip
    assert ds.sizes["ring_fit"] == 2
    c, se, exact = (ds[f"ring_fit_{k}"].values for k in ("value", "se", "exact"))
    assert_z(ds["ring_fit_symmetry_z"], 0.0, 1.0, 2, "linear coefficient c1")
    assert np.allclose(exact[:, 1], 0.0, atol=1e-9)
    assert_z(c[:, 2], exact[:, 2], se[:, 2], 2, "quadratic coefficient c2")
    assert np.all(c[:, 2] / se[:, 2] > 5)
    assert_z(ds["ep_z"], 0.0, 1.0, ds.sizes["point"], "rings production vs exact")
    for var in ("subsystem_corr", "subsystem_current"):
        pair = {"subsystem": 0, "subsystem2": 1}
        assert_z(ds[var].isel(pair), ds[f"{var}_exact"].isel(pair), ds[f"{var}_se"].isel(pair),
                 ds.sizes["point"], var)  # fmt: skip
    # the current flows only with the antisymmetric coupling, and is resolved there
    anti = ds["coupling_matrix"].values == "antisymmetric"
    current = ds["subsystem_current"].isel(subsystem=0, subsystem2=1).values
    current_se = ds["subsystem_current_se"].isel(subsystem=0, subsystem2=1).values
    strong = anti & (np.abs(ds["coupling"].values) == 0.15)
    assert np.all(np.abs(current[strong]) / current_se[strong] > 5)


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
            rng = hidden._block_rng(spec, b)
            weights.append(hidden.weight_ensemble(p).sample(rng, p["block_size"]))
        step = [thermo.hidden_step(w, p["noise"], p["gain"]).stationary_entropy_production()
                for w in np.concatenate(weights)]  # fmt: skip
        linear.append(np.mean(step) / p["neurons"])
    linear = np.asarray(linear)
    small = ds["gain"].values < 0.6
    assert_z(ds["ep"].values[small], linear[small], ds["ep_se"].values[small], 2, "g -> 0")
    z_sat = (ds["ep"].values[~small] - linear[~small]) / ds["ep_se"].values[~small]
    assert np.all(np.abs(z_sat) > 5), z_sat


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
        spec = config.expand_hidden(c["studies"]["hidden"])[0]
        merged.append(hidden.merge([hidden.simulate(spec, k) for k in range(shards)]))
    for name in (*hidden.RAW_VARIABLES, "ep_exact_network"):
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
    from nnfield.store import read_dataset, write_dataset

    ens = [{"name": "r", "weights": "rings", "neurons": 6, "subsystems": 2,
            "contractions": [0.5], "couplings": [-0.1, 0.0, 0.1]},
           {"name": "m", "weights": "mixture", "neurons": 4, "contractions": [0.5]}]  # fmt: skip
    cfg = {"seed": 2, "networks": 40, "block_size": 4, "steps": 40, "burn_in": 10,
           "time_blocks": 4, "ensembles": ens}  # fmt: skip
    cfg = config.validate({"studies": {"hidden": cfg}})["studies"]["hidden"]
    paths = []
    for i, spec in enumerate(config.expand_hidden(cfg)):
        paths.append(write_dataset(hidden.simulate(spec, 0), tmp_path / f"p{i}.nc"))
    monkeypatch.setattr(hidden, "MIN_PARALLEL", 0)
    parallel = hidden.analyze_files(paths, workers=2)
    serial = hidden.analyze([read_dataset(p, study="hidden") for p in paths])
    xr.testing.assert_identical(parallel, serial)
