"""Config validation: every error names the offending key; expansion into points."""

from __future__ import annotations

import copy

import pytest

from nnfield import config

BASE = {
    "studies": {
        "npoint": {
            "seed": 1,
            "networks": 20000,
            "block_size": 1000,
            "widths": [2, 10],
            "families": [{"name": "relu", "arch": "relu", "inputs": [0.5, 1.0]}],
        }
    }
}


def broken(edit):
    cfg = copy.deepcopy(BASE)
    edit(cfg)
    return cfg


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c["studies"]["npoint"]["families"][0].update(arch="tanh"),
         "studies.npoint.families[0].arch"),
        (lambda c: c["studies"]["npoint"]["widths"].__setitem__(1, -4), "studies.npoint.widths[1]"),
        (lambda c: c["studies"]["npoint"].pop("seed"), "studies.npoint.seed"),
        (lambda c: c["studies"]["npoint"]["families"][0].pop("inputs"),
         "studies.npoint.families[0].inputs"),
        (lambda c: c["studies"]["npoint"].update(netwroks=5), "studies.npoint.netwroks"),
        (lambda c: c["studies"]["npoint"].update(networks=20500), "studies.npoint.networks"),
        (lambda c: c["studies"]["npoint"]["families"][0].update(inputs=[[1.0, 2.0]]),
         "studies.npoint.families[0].inputs[0]"),
        (lambda c: c["studies"]["npoint"].update(dtype="float16"), "studies.npoint.dtype"),
        (lambda c: c.update(studies={}), "studies"),
    ],
)  # fmt: skip
def test_bad_config_names_the_key(edit, key):
    with pytest.raises(config.ConfigError) as info:
        config.validate(broken(edit))
    assert f"'{key}" in str(info.value), str(info.value)


def test_unknown_key_suggests_the_known_one():
    with pytest.raises(config.ConfigError, match=r"'studies.npoint.netwroks': unknown key; "
                       r"did you mean 'networks'\?"):  # fmt: skip
        config.validate(broken(lambda c: c["studies"]["npoint"].update(netwroks=5)))


def test_every_problem_is_listed():
    def two(c):
        c["studies"]["npoint"]["seed"] = -1
        c["studies"]["npoint"]["families"][0]["arch"] = "tanh"

    with pytest.raises(config.ConfigError, match=r"'studies.npoint.seed'.*also: "
                       r"'studies.npoint.families\[0\].arch'"):  # fmt: skip
        config.validate(broken(two))


def test_defaults_are_filled_and_points_named():
    cfg = config.validate(BASE)
    assert cfg["studies"]["npoint"]["shards"] == 1
    fam = cfg["studies"]["npoint"]["families"][0]
    assert fam["sigma_w0"] == 1.0 and fam["input_dim"] == 1
    points = config.expand(cfg)["npoint"]
    assert list(points) == ["family~relu/width~2", "family~relu/width~10"]
    spec = points["family~relu/width~10"]
    assert config.PointSpec.from_json(spec.to_json()) == spec
    assert spec.params["inputs"] == [[0.5], [1.0]]


def test_default_config_is_valid():
    cfg = config.load()
    assert len(config.expand(cfg)["npoint"]) > 10


def test_unreadable_config_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("studies: [unclosed")
    with pytest.raises(config.ConfigError, match=str(path)):
        config.load(path)


def test_point_hash_changes_with_parameters():
    a = config.expand(config.validate(BASE))["npoint"]["family~relu/width~2"]
    other = broken(lambda c: c["studies"]["npoint"]["families"][0].update(sigma_w0=2.0))
    b = config.expand(config.validate(other))["npoint"]["family~relu/width~2"]
    assert a.sha256 != b.sha256


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("studies", "npoint", "families", 0, "inputs", 1), float("nan")),
        (("studies", "npoint", "analysis", "significance"), float("nan")),
        (("studies", "learning", "problems", 0, "temperatures", 0), float("inf")),
        (("studies", "hidden", "ensembles", 0, "gains", 0), float("nan")),
        (("studies", "hidden", "analysis", "max_block_correlation"), float("-inf")),
    ],
)  # fmt: skip
def test_every_non_finite_number_is_refused_naming_its_key(path, value):
    """YAML's .nan and .inf pass a JSON schema's number checks; each is refused by key, wherever
    it stands (the default config with one number replaced)."""
    cfg = config.load(config.DEFAULT_CONFIG_PATH)
    target = cfg
    for part in path[:-1]:
        target = target.setdefault(part, {}) if isinstance(part, str) else target[part]
    target[path[-1]] = value
    with pytest.raises(config.ConfigError, match="is not a finite number") as info:
        config.validate(cfg)
    where = config._key_path(path)
    assert f"'{where}'" in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("study", "edit", "named"),
    [
        ("hidden", lambda s: s["ensembles"][0].update(contractions=[0.3, 0.3000001]),
         "contraction = 0.3 and 0.3000001"),
        ("learning", lambda s: s["problems"][0].update(learning_rates=[0.05, 0.0500000001]),
         "learning_rate = 0.05 and 0.0500000001"),
        ("hidden", lambda s: s["ensembles"][0].update(noises=[0.1, 0.1]), "listed twice"),
    ],
)  # fmt: skip
def test_points_whose_names_collide_are_refused_naming_both_values(study, edit, named):
    """Names print numbers to 6 significant digits and the sweep is keyed by name: two values
    closer than that would collapse into one point, holding the last value."""
    cfg = config.load(config.DEFAULT_CONFIG_PATH)
    edit(cfg["studies"][study])
    with pytest.raises(config.ConfigError, match=f"'studies.{study}'") as info:
        config.validate(cfg)
    assert "both named" in str(info.value) and named in str(info.value), str(info.value)


@pytest.mark.parametrize("activation", ["gelu", "softplus"])
def test_depth_activation_without_a_critical_point_needs_cw_and_cb(activation):
    depth = {"seed": 2, "networks": 2000, "block_size": 200,
             "families": [{"name": "f", "activation": activation, "inputs": [1.0],
                           "widths": [4], "depths": [3]}]}  # fmt: skip
    with pytest.raises(config.ConfigError, match=r"'studies.depth.families\[0\].cw'.*give cw"):
        config.validate({"studies": {"depth": copy.deepcopy(depth)}})
    depth["families"][0].update(cw=1.0, cb=0.1)
    points = config.expand(config.validate({"studies": {"depth": depth}}))["depth"]
    assert [s.params["activation"] for s in points.values()] == [activation]


def test_softplus_needs_its_couplings_switched_off():
    """softplus (a registry entry without a closed-form kernel) runs in npoint with exact
    correlators; its coupling integrals are refused by key rather than left to run for hours."""
    cfg = copy.deepcopy(BASE)
    cfg["studies"]["npoint"]["families"][0].update(arch="softplus", name="soft")
    with pytest.raises(config.ConfigError, match=r"'studies.npoint.analysis.couplings.enabled'"):
        config.validate(copy.deepcopy(cfg))
    cfg["studies"]["npoint"]["analysis"] = {"couplings": {"enabled": False}}
    points = config.expand(config.validate(cfg))["npoint"]
    assert {s.params["arch"] for s in points.values()} == {"softplus"}


def test_coupling_figures_are_made_only_where_couplings_are_computed():
    from nnfield.studies import figure_study, figures

    default = config.load(config.DEFAULT_CONFIG_PATH)
    assert figures(default) == list(figure_study())
    default["studies"]["npoint"]["analysis"]["couplings"]["enabled"] = False
    assert figures(default) == [f for f in figure_study() if not f.startswith("coupling_")]
    assert figures({"studies": {"hidden": {}}}) == ["hidden_entropy", "seed_claims"]
