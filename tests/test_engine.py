"""The engine and the study registry: the Study protocol every registered study meets, the
schema composed from the studies' fragments, the simulate skeleton's guards, and float64
switched on at the entry points only (no import-time side effects)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nnfield import config, stats
from nnfield.config import ConfigError, PointSpec
from nnfield.engine.simulate import BlockKernel, ShardResult, Variable, raw_dataset, simulate_shard
from nnfield.studies import REGISTRY, figure_study, load
from nnfield.studies.base import PackageStudy, Study


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_registered_study_is_a_study_of_its_name(name):
    study = load(name)
    assert isinstance(study, Study) and study.name == name
    fragment = study.schema()
    assert name in fragment and fragment[name]["type"] == "object"
    figures = importlib.import_module(f"{REGISTRY[name]}.figures").FIGURES
    assert sorted(figures) == sorted(study.figures)
    # every required raw variable is described by one of the study's tables or the engine's
    sample = importlib.import_module(f"{REGISTRY[name]}.sample")
    tables = [
        v
        for v in vars(sample).values()
        if isinstance(v, dict) and v and all(isinstance(x, Variable) for x in v.values())
    ]
    described = {"block", "nonfinite"}.union(*tables)
    assert tables and set(study.raw_variables()) <= described, study.raw_variables()
    assert set(config.COUNT_PARAMETERS).isdisjoint(study.count_parameters())
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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda out: {**out, "sigma": {"type": "number"}}, "study depth: defines sigma again"),
        (lambda out: {k: v for k, v in out.items() if k != "depth"},
         "study depth: has no definition 'depth'"),
    ],
)  # fmt: skip
def test_a_fragment_that_clashes_or_lacks_its_block_is_refused(monkeypatch, change, message):
    original = PackageStudy.schema

    def changed(self):
        out = original(self)
        return change(out) if self.name == "depth" else out

    monkeypatch.setattr(PackageStudy, "schema", changed)
    with pytest.raises(ConfigError, match=message):
        config.load_schema()


def test_count_parameters_are_each_study_s_own():
    """A hand-written spec is checked with its own study's counts: a teacher-student student of
    depth 0 (the linear model) is valid, a depth-study network of depth 0 is not."""
    learning = {"kind": "teacher_student", "depth": 0, "width": 4, "steps": 10,
                "record_every": 5, "networks": 20, "block_size": 10, "shards": 1}  # fmt: skip
    config.check_spec(PointSpec("learning", "problem~t", 0, learning))
    depth = {"depth": 0, "width": 4, "input_dim": 1, "networks": 20, "block_size": 10,
             "shards": 1}  # fmt: skip
    with pytest.raises(ConfigError, match="parameter depth = 0 must be a positive integer"):
        config.check_spec(PointSpec("depth", "family~relu", 0, depth))


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
    ds = raw_dataset(SPEC, range(2), _result(nonfinite=np.array([0, 1])), TABLE)
    assert list(ds["block"].values) == [0, 1] and ds["block"].dtype == np.int64
    assert ds["count"].dims == ("block",) and ds["count"].attrs["long_name"] == "networks in block"
    assert list(ds.attrs)[:6] == ["Conventions", "nnfield_version", "schema_version", "study",
                                  "point", "config_sha256"]  # provenance first  # fmt: skip
    assert ds.attrs["n_blocks"] == 2  # the engine's, as the kernel gave none
    assert ds["nonfinite"].values.tolist() == [0, 1]  # stored by the engine
    assert ds["nonfinite"].attrs["long_name"] == "networks in block with a non-finite number"
    kept = raw_dataset(SPEC, range(2), _result(store_nonfinite=False), TABLE)
    assert "nonfinite" not in kept


def test_the_skeleton_owns_the_block_loop_and_keys(monkeypatch):
    """simulate_shard hands the kernel the shard's blocks in order, once each, with the point's
    key; the result does not depend on the shard split."""
    seen = []

    def prepare(task):
        assert task.key is not None and list(task.blocks) in ([0, 1], [2, 3], [0, 1, 2, 3])

        def block(b):
            seen.append(b)
            return b

        def finish(outputs):
            return ShardResult(data={"count": np.asarray(outputs) + 10},
                               nonfinite=np.zeros(len(outputs), dtype=np.int64),
                               nonfinite_what="outputs", attrs={})  # fmt: skip

        return BlockKernel(block, finish)

    spec = PointSpec("toy", "p~1", 0, {"networks": 8, "block_size": 2, "shards": 2})
    halves = [simulate_shard(spec, k, None, prepare, TABLE) for k in (0, 1)]
    assert seen == [0, 1, 2, 3]
    whole = PointSpec("toy", "p~1", 0, {"networks": 8, "block_size": 2, "shards": 1})
    one = simulate_shard(whole, 0, None, prepare, TABLE)
    assert np.concatenate([h["count"].values for h in halves]).tolist() == [10, 11, 12, 13]
    assert one["count"].values.tolist() == [10, 11, 12, 13]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": {"sums": np.zeros(2)}}, "variable 'sums' is not in its table"),
        ({"data": {"count": np.zeros((2, 3))}}, "'count' has 2 dimensions, its table says 1"),
        ({"coords": {"width": np.zeros(2)}}, "variable 'width' is not in its table"),
        ({"optional": {"c1": np.zeros(2)}}, "variable 'c1' is not in its table"),
        ({"attrs": {"n_blocks": np.int64(3)}}, "n_blocks 3 is not networks // block_size = 2"),
        ({"nonfinite": np.zeros(3)}, r"\(3,\) non-finite counts for 2 blocks"),
        (
            {"data": {"count": np.ones(2), "nonfinite": np.ones(2)}},
            "its variable nonfinite differs from the non-finite counts",
        ),
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


def test_the_skeleton_refuses_wrong_counts_and_empty_shards_by_name():
    """Wrong non-finite counts are refused as such even when some are non-zero (before they
    are reported), and a shard without blocks is refused naming the keys that make it."""

    def prepare(task):
        def finish(outputs):
            return ShardResult(data={"count": np.asarray(outputs)},
                               nonfinite=np.ones(len(outputs) + 1, dtype=np.int64),
                               nonfinite_what="outputs", attrs={})  # fmt: skip

        return BlockKernel(lambda b: b, finish)

    spec = PointSpec("toy", "p~1", 0, {"networks": 4, "block_size": 2, "shards": 1})
    with pytest.raises(ValueError, match=r"\(3,\) non-finite counts for 2 blocks"):
        simulate_shard(spec, 0, None, prepare, TABLE)
    empty = PointSpec("toy", "p~1", 0, {"networks": 2, "block_size": 2, "shards": 2})
    with pytest.raises(ConfigError, match=r"shard 0 of 2 has no blocks \(networks 2 // block_size"):
        simulate_shard(empty, 0, None, prepare, TABLE)
