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


@pytest.fixture(scope="module")
def kicks():
    return run_study(
        [{"name": "linear", "weights": "cycle", **KICK},
         {"name": "ginibre", "weights": "ginibre", **KICK},
         {"name": "tanh", "weights": "cycle", "activation": "tanh", "gains": [0.1, 1.5], **KICK}],
        networks=200, block_size=20, steps=1000, burn_in=50,
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


def test_tanh_response_depends_on_the_background(kicks):
    """Curved at g = 1.5 (z far above critical); at g = 0.1, nearly linear, the spread is small
    but still above linear f's rounding bound, so a flat verdict for tanh could not pass."""
    ds, params = kicks
    crit = stats.bonferroni_t(stats.DEFAULT_SIGNIFICANCE, 2, 9)
    for gain in (0.1, 1.5):
        i = _index(params, "tanh", gain)
        sd, se = ds["kick_log_sd"].values[i], ds["kick_log_sd_se"].values[i]
        assert sd > 10 * crit * se, (gain, sd, se)
    weak = ds["kick_log_sd"].values[_index(params, "tanh", 0.1)]
    assert weak > 10 * ds["kick_rounding_bound"].values[_index(params, "linear")]
    text = ds.attrs["claim_curvature_verdict"]
    assert "linear (linear f): flat" in text and "ginibre (linear f): flat" in text
    assert "tanh (tanh f, g = 1.5): curved" in text and "NOT FLAT" not in text


def test_kick_response_below_steps():
    ens = {"name": "c", "weights": "cycle", "neurons": 8, "contractions": [0.5],
           "kick_response": 100}  # fmt: skip
    cfg = {"studies": {"hidden": {"seed": 1, "networks": 20, "block_size": 2, "steps": 100,
                                  "ensembles": [ens]}}}  # fmt: skip
    with pytest.raises(config.ConfigError, match=r"kick_response': 100 must be below steps"):
        config.validate(cfg)
