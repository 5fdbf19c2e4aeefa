"""Sharded vs unsharded: every study's simulate with the networks of each block split over 4
(host) devices equals the 1-device result.  The 4-device run is a subprocess, since JAX fixes
its device count at start-up (XLA_FLAGS=--xla_force_host_platform_device_count=4).

Per-network data (the hidden study's trajectories) agree bit for bit; sums over the networks of
a block are reduced across devices in another order, so they agree to float64 rounding; the
hidden study's system term is a quadratic form evaluated with another vectorisation, likewise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from nnfield import config
from nnfield.engine.sharding import batch_sharding
from nnfield.studies import load

CONFIG = {"studies": {
    "npoint": {"seed": 1, "networks": 4000, "block_size": 400, "widths": [5],
               "families": [{"name": "relu", "arch": "relu", "inputs": [0.5, 1.0]}]},
    "depth": {"seed": 2, "networks": 2000, "block_size": 200,
              "families": [{"name": "relu", "activation": "relu", "inputs": [1.0, 0.5],
                            "widths": [4], "depths": [3]}]},
    "learning": {"seed": 3, "networks": 2000, "block_size": 200, "samples": 8, "problems": [
        {"name": "q", "hessian_eigenvalues": [1.0, 0.5], "learning_rates": [0.1],
         "temperatures": [0.5], "initial": ["narrow"], "steps": 20},
        {"name": "ts", "kind": "teacher_student", "widths": [2], "optimizer": "momentum",
         "train_size": 8, "learning_rates": [0.05], "temperatures": [0.01],
         "initial": ["broad"], "steps": 20}]},
    "hidden": {"seed": 4, "networks": 80, "block_size": 8, "steps": 100, "burn_in": 20,
               "time_blocks": 4, "ensembles": [
        {"name": "g", "weights": "ginibre", "neurons": 6, "subsystems": 2, "contractions": [0.7]},
        {"name": "m", "weights": "mixture", "neurons": 6, "contractions": [0.6]},
        {"name": "t", "weights": "ginibre", "neurons": 6, "activation": "tanh",
         "contractions": [1.0], "gains": [1.5]}]},
}}  # fmt: skip
SCRIPT = """
import json, sys
import numpy as np, jax
from nnfield import config
from nnfield.engine.sharding import batch_sharding
from nnfield.studies import load
assert jax.device_count() == 4 and batch_sharding(8) is not None, jax.devices()
cfg = config.validate(json.loads(sys.argv[1]))
out = {}
for study, specs in config.expand(cfg).items():
    for spec in specs.values():
        ds = load(study).simulate(spec, 0)
        for name in ds.data_vars:
            out[f"{spec.name}|{name}"] = ds[name].values
np.savez(sys.argv[2], **out)
"""
ROUNDING = 1e-10
"""Relative tolerance for float64 sums reduced in another order (observed: <= 1e-12)."""


def test_one_device_has_no_sharding():
    assert jax.device_count() > 1 or batch_sharding(8) is None


@pytest.mark.slow
def test_four_devices_give_the_one_device_result(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu", "NNFIELD_JAX_CACHE": ""}  # fmt: skip
    path = tmp_path / "sharded.npz"
    run = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(CONFIG), str(path)],
                         capture_output=True, text=True, env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    sharded = np.load(path)
    cfg = config.validate(CONFIG)
    compared = 0
    for study, specs in config.expand(cfg).items():
        one_device, four_devices = [], []
        for spec in specs.values():
            ds = load(study).simulate(spec, 0)
            other = ds.copy(deep=True)
            for name in ds.data_vars:
                got, want = sharded[f"{spec.name}|{name}"], ds[name].values
                where = f"{study} {spec.name}: {name}"
                per_network = study == "hidden" and name != "system"
                if per_network or not np.issubdtype(want.dtype, np.floating):
                    np.testing.assert_array_equal(got, want, err_msg=where)
                else:
                    np.testing.assert_allclose(got, want, rtol=ROUNDING, atol=0, err_msg=where)
                other[name].values = got
                compared += 1
            one_device.append(ds)
            four_devices.append(other)
        _assert_same_estimates(study, cfg, one_device, four_devices)
    assert compared > 60


ESTIMATE_ROUNDING = 1e-8
"""Relative tolerance of the study estimates from sums that differ by float64 rounding
(nonlinear estimators such as connected correlators amplify it; observed: <= 1e-10)."""


def _assert_same_estimates(study: str, cfg: dict, one: list, four: list) -> None:
    """The study dataset (estimates, errors, verdicts) is the same from either device count."""
    options = cfg["studies"][study].get("analysis", {})
    want, got = load(study).analyze(one, options), load(study).analyze(four, options)
    assert set(want.data_vars) == set(got.data_vars)
    for name in want.data_vars:
        a, b = want[name].values, got[name].values
        if np.issubdtype(a.dtype, np.floating):  # atol: quantities that cancel to 0 exactly
            np.testing.assert_allclose(b, a, rtol=ESTIMATE_ROUNDING, atol=1e-12,
                                       err_msg=f"{study}: {name}")  # fmt: skip
        else:
            np.testing.assert_array_equal(b, a, err_msg=f"{study}: {name}")


def test_gpu_device_without_gpu_fails_before_simulating(tmp_path):
    """`device: gpu` on a machine where JAX sees no GPU stops the job at once, naming the key,
    and writes nothing (no silent month on CPU)."""
    if jax.default_backend() == "gpu":
        pytest.skip("a GPU is visible")
    spec = next(iter(config.expand(config.validate(CONFIG))["hidden"].values()))
    out = tmp_path / "shard.nc"
    run = subprocess.run([sys.executable, "-m", "nnfield", "simulate", "--spec", spec.to_json(),
                          "--out", str(out), "--device", "gpu"],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode != 0
    assert "config key 'device'" in run.stderr
    assert not out.exists()
