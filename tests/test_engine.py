"""The engine and the study registry: the Study protocol every registered study meets, the
schema composed from the studies' fragments, the simulate skeleton's guards, and float64
switched on at the entry points only (no import-time side effects)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nnfield import config, stats
from nnfield.config import ConfigError, PointSpec
from nnfield.engine.simulate import ShardResult, Variable, raw_dataset
from nnfield.studies import REGISTRY, figure_study, load
from nnfield.studies.base import PackageStudy, Study


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_registered_study_is_a_study_of_its_name(name):
    study = load(name)
    assert isinstance(study, Study) and study.name == name
    fragment = study.schema()
    assert name in fragment and fragment[name]["type"] == "object"
    assert set(study.raw_variables) >= {"count"}
    cfg = config.load()["studies"].get(name)
    if cfg is not None:  # the default sweep's points are the study's own, named by it
        specs = study.expand(cfg)
        assert specs and all(spec.study == name for spec in specs)
        assert all(study.cost(spec).units > 0 for spec in specs)
        assert set(study.figures_for(cfg)) <= set(study.figures)


def test_figures_have_one_study_each_and_a_caption_and_unknown_studies_are_named():
    drawn_by = figure_study()
    assert sorted(drawn_by) == sorted(f for name in REGISTRY for f in load(name).figures)
    for figure, name in drawn_by.items():  # each study's captions/<figure>.rst, not the fallback
        caption = load(name).caption(figure)
        assert caption.startswith(f"**{figure}**: ") and len(caption) > 200, caption
    with pytest.raises(ValueError, match="unknown study 'nope'; known: npoint, depth"):
        load("nope")
    with pytest.raises(ConfigError, match="unknown study 'nope'"):
        config.check_spec(PointSpec("nope", "x~1", 0, {}))


def test_schema_is_the_base_plus_every_study_fragment():
    schema = config.load_schema()
    studies = schema["properties"]["studies"]["properties"]
    assert list(studies) == list(REGISTRY)
    for name in REGISTRY:
        assert studies[name] == {"$ref": f"#/$defs/{name}"}
        for key, value in load(name).schema().items():
            assert schema["$defs"][key] == value
    assert "sigma" in schema["$defs"]  # shared definitions stay in config/schema.yaml


def test_a_fragment_redefining_a_definition_is_refused(monkeypatch):
    original = PackageStudy.schema

    def clashing(self):
        out = original(self)
        return {**out, "sigma": {"type": "number"}} if self.name == "depth" else out

    monkeypatch.setattr(PackageStudy, "schema", clashing)
    with pytest.raises(ConfigError, match="config schema of study depth: defines sigma again"):
        config.load_schema()


def test_every_significance_default_is_the_one_constant():
    """The schemas' `significance` defaults and stats.DEFAULT_SIGNIFICANCE are one number."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "significance" in node.get("properties", {}):
                found.append(node["properties"]["significance"].get("default"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config.load_schema())
    assert found and all(value == stats.DEFAULT_SIGNIFICANCE for value in found), found


SPEC = PointSpec("toy", "p~1", 0, {"networks": 4, "block_size": 2, "shards": 1})
TABLE = {"count": Variable(("block",), "networks in block"),
         "block": Variable(("block",), "block index")}  # fmt: skip


def _result(**change) -> ShardResult:
    fields = {"data": {"count": np.array([2, 2])}, "nonfinite": np.zeros(2, dtype=np.int64),
              "nonfinite_what": "outputs", "attrs": {"n_blocks": np.int64(2)}}  # fmt: skip
    return ShardResult(**{**fields, **change})


def test_the_skeleton_lays_out_a_raw_dataset_from_the_table():
    ds = raw_dataset(SPEC, range(2), _result(), TABLE)
    assert list(ds["block"].values) == [0, 1] and ds["block"].dtype == np.int64
    assert ds["count"].dims == ("block",) and ds["count"].attrs["long_name"] == "networks in block"
    assert list(ds.attrs)[:6] == ["Conventions", "nnfield_version", "schema_version", "study",
                                  "point", "config_sha256"]  # provenance first  # fmt: skip
    assert ds.attrs["n_blocks"] == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": {"sums": np.zeros(2)}}, "variable 'sums' is not in its table"),
        ({"data": {"count": np.zeros((2, 3))}}, "'count' has 2 dimensions, its table says 1"),
        ({"attrs": {}}, "lack n_blocks"),
    ],
)
def test_the_skeleton_refuses_what_its_table_does_not_declare(change, message):
    with pytest.raises(ValueError, match=message):
        raw_dataset(SPEC, range(2), _result(**change), TABLE)


@pytest.mark.slow
def test_float64_is_switched_on_by_the_entry_points_not_by_imports():
    """In a fresh interpreter: importing every module leaves JAX in float32; a sampler built
    directly refuses to run; a study's simulate (an entry point) switches float64 on."""
    code = textwrap.dedent(
        """
        import importlib, pkgutil
        import jax
        import nnfield
        for mod in pkgutil.walk_packages(nnfield.__path__, "nnfield."):
            if not mod.name.endswith("__main__"):
                importlib.import_module(mod.name)
        assert not jax.config.jax_enable_x64, "an import switched float64 on"
        from nnfield.studies.npoint.networks import SingleLayer
        try:
            SingleLayer("erf", 4, 1)
        except RuntimeError as err:
            assert "nnfield.enable_x64()" in str(err), err
        else:
            raise AssertionError("a sampler ran in float32")
        from nnfield.config import PointSpec
        from nnfield.studies import load
        params = {"family": "erf", "arch": "erf", "width": 4, "input_dim": 1,
                  "inputs": [[0.5], [1.0]], "sigma_w0": 1.0, "sigma_b0": 1.0, "sigma_w1": 1.0,
                  "sigma_b1": 1.0, "networks": 20, "block_size": 10, "shards": 1,
                  "dtype": "float32", "estimator": "brute"}
        ds = load("npoint").simulate(PointSpec("npoint", "family~erf/width~4", 1, params))
        assert jax.config.jax_enable_x64 and ds["sum_f2"].dtype == "float64"
        print("ok")
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr
