"""Curvature only from nonlinearity (issue 23, part 2; nnfield.studies.hidden.kick,
docs/hidden.md "Kick response"): the response ln |v| to a kick of neuron 0, K steps later,
across background states.

For linear f the tangent map is g W on every background, so the spread is 0 and the mean is the
exact ln |(g W)^K e_0|: identities, checked against a rounding bound.  For tanh the spread is
z-tested against 0 on its jackknife error; a nearly linear tanh (small gain) is already told
from linear by the bound (its power)."""

from __future__ import annotations

import numpy as np
import pytest
from test_hidden import run_study

from nnfield import config, stats

KICK = {"neurons": 16, "contractions": [0.8], "noises": [1.0], "kick_response": 8}


RINGS = {"name": "rings", "weights": "rings", "neurons": 16, "subsystems": 2,
         "contractions": [0.6], "couplings": [0.3], "coupling_matrix": [[0, 2], [0.5, 0]],
         "gains": [0.9], "kick_response": 8}  # fmt: skip
"""A shared non-normal W with g != 1: ln |(g W)^K e_0| differs for W^T or another neuron."""


@pytest.fixture(scope="module", params=["float32", "float64"])
def kicks(request):
    return run_study(
        [{"name": "linear", "weights": "cycle", **KICK},
         {"name": "ginibre", "weights": "ginibre", **KICK},
         RINGS,
         {"name": "tanh", "weights": "cycle", "activation": "tanh", "gains": [0.1, 1.5], **KICK}],
        networks=200, block_size=20, steps=1000, burn_in=50, dtype=request.param,
    )  # fmt: skip


def _index(params, name, gain=None):
    return next(i for i, p in enumerate(params)
                if p["ensemble"] == name and (gain is None or p["gain"] == gain))  # fmt: skip


def test_linear_response_is_the_same_on_every_background(kicks):
    ds, params = kicks
    for name in ("linear", "ginibre"):
        i = _index(params, name)
        assert ds["kick_log_sd"].values[i] <= ds["kick_rounding_bound"].values[i], name
    i = _index(params, "linear")
    exact = 8 * np.log(0.8)  # |(a P)^8 e_0| = a^8
    assert abs(ds["kick_log_exact"].values[i] - exact) < 1e-12
    assert abs(ds["kick_log_mean"].values[i] - exact) <= ds["kick_rounding_bound"].values[i]


def test_the_mean_response_tells_w_from_its_transpose_and_neuron_0_from_others(kicks):
    """On the non-normal rings with g = 0.9 the mean ln |v| equals ln |(g W)^K e_0| within the
    bound, while (g W^T)^K e_0 and (g W)^K e_{n-1} are far outside it: the check has power
    against a wrong tangent map."""
    from nnfield.studies.hidden.sample import weight_ensemble

    ds, params = kicks
    i = _index(params, "rings")
    p = params[i]
    bound = ds["kick_rounding_bound"].values[i]
    mean, exact = ds["kick_log_mean"].values[i], ds["kick_log_exact"].values[i]
    assert ds["kick_log_sd"].values[i] <= bound
    assert abs(mean - exact) <= bound
    (w,) = weight_ensemble(p).sample(np.random.default_rng(0), 1)
    gw = p["gain"] * np.asarray(w, dtype=np.float64)
    for m, e in ((gw.T, 0), (gw, p["neurons"] - 1)):
        v = np.eye(p["neurons"])[e]
        for _ in range(8):
            v = m @ v
        assert abs(np.log(np.linalg.norm(v)) - exact) > 100 * bound


def test_tanh_response_depends_on_the_background(kicks):
    """Curved at g = 1.5 (z far above critical); at g = 0.1, nearly linear, the spread is small
    but still above linear f's rounding bound, so a flat verdict for tanh could not pass."""
    ds, params = kicks
    crit = stats.bonferroni_t(stats.DEFAULT_SIGNIFICANCE, 2, 9)
    for gain in (0.1, 1.5):
        i = _index(params, "tanh", gain)
        sd, se = ds["kick_log_sd"].values[i], ds["kick_log_sd_se"].values[i]
        assert sd > ds["kick_rounding_bound"].values[i] + 10 * crit * se, (gain, sd, se)
    weak = ds["kick_log_sd"].values[_index(params, "tanh", 0.1)]
    assert weak > 10 * ds["kick_rounding_bound"].values[_index(params, "linear")]
    text = ds.attrs["claim_curvature_verdict"]
    for name in ("linear", "ginibre", "rings"):
        assert f"{name} (linear f): flat" in text, text
    assert "tanh (tanh f, g = 1.5): curved" in text and "NOT FLAT" not in text


def test_kick_response_below_steps():
    ens = {"name": "c", "weights": "cycle", "neurons": 8, "contractions": [0.5],
           "kick_response": 100}  # fmt: skip
    cfg = {"studies": {"hidden": {"seed": 1, "networks": 20, "block_size": 2, "steps": 100,
                                  "ensembles": [ens]}}}  # fmt: skip
    with pytest.raises(config.ConfigError, match=r"kick_response': 100 must be below steps"):
        config.validate(cfg)


def test_a_response_below_the_dtype_range_is_still_measured():
    """(g a)^K = 0.08^50 ~ 1e-55 underflows float32; the kernel renormalises v every step and
    accumulates ln |v|, so the mean is still the exact 50 ln 0.08 and no network is lost."""
    small = {"name": "small", "weights": "cycle", "neurons": 8, "contractions": [0.8],
             "gains": [0.1], "kick_response": 50}  # fmt: skip
    ds, _ = run_study([small], networks=40, block_size=4, steps=400, burn_in=50)
    assert int(ds["nonfinite"].values[0]) == 0
    bound = ds["kick_rounding_bound"].values[0]
    assert abs(ds["kick_log_mean"].values[0] - 50 * np.log(0.08)) <= bound


def test_every_clause_of_the_verdict_can_fail(kicks):
    """Altered data: a spread or a mean beyond the bound reads NOT FLAT, a tanh spread within
    its critical value of the bound reads not resolved."""
    from nnfield.studies.hidden.kick import verdict

    ds, params = kicks
    cases = (("linear", None, "kick_log_sd", lambda v, b: 2 * b),
             ("rings", None, "kick_log_mean", lambda v, b: v + 2 * b),
             ("tanh", 1.5, "kick_log_sd_se", lambda v, b: 1.0))  # fmt: skip
    for name, gain, variable, alter in cases:
        wrong = ds.copy(deep=True)
        i = _index(params, name, gain)
        bound = float(ds["kick_rounding_bound"].values[i])
        wrong[variable].values[i] = alter(float(ds[variable].values[i]), bound)
        text = verdict(wrong, params)
        want = "curvature not resolved" if name == "tanh" else f"{name} (linear f): NOT FLAT"
        assert want in text, (name, text)
