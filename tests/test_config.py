"""Run-config validation, overrides, hashing and round-trips (design §2).

Every bad input must raise ``ConfigError`` whose ``field`` is the dotted path and whose
message names that path and the offending value or what is allowed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from identlab.config import RunConfig, apply_overrides, config_hash, load_run
from identlab.core.schema import ConfigError, build, to_dict

ROOT = Path(__file__).resolve().parents[1]

# (id, overrides, field, substrings the message must contain)
BAD_OVERRIDES = [
    ("unknown_latent_kind", ["world.latent.kind=cauchy"], "world.latent.kind",
     ["'cauchy'", "gaussian", "gennorm"]),
    ("unknown_dynamics_kind", ["world.dynamics.kind=brownian"], "world.dynamics.kind",
     ["'brownian'", "ou"]),
    ("unknown_mixer_kind", ["world.mixer.kind=swirl"], "world.mixer.kind",
     ["'swirl'", "spiral"]),
    ("unknown_key_latent", ["world.latent.beta=1"], "world.latent.beta",
     ["unknown key", "alpha"]),
    ("unknown_key_world", ["world.dims=3"], "world.dims", ["unknown key", "dim"]),
    ("unknown_key_top", ["seeds=3"], "seeds", ["unknown key", "seed"]),
    ("unknown_key_mixer", ["world.mixer.layers=3"], "world.mixer.layers",
     ["unknown key", "depth"]),
    ("rho_0", ["world.dynamics.rho=0"], "world.dynamics.rho", ["= 0", "(0, 1)"]),
    ("rho_1", ["world.dynamics.rho=1"], "world.dynamics.rho", ["= 1", "(0, 1)"]),
    ("rho_1.5", ["world.dynamics.rho=1.5"], "world.dynamics.rho", ["1.5", "(0, 1)"]),
    ("rho_neg", ["world.dynamics.rho=-0.1"], "world.dynamics.rho", ["-0.1", "(0, 1)"]),
    ("rho_list_entry", ["world.dynamics.rho=[0.5, 1.0]"], "world.dynamics.rho",
     ["1.0", "(0, 1)"]),
    ("rho_nan", ["world.dynamics.rho=.nan"], "world.dynamics.rho", ["nan", "(0, 1)"]),
    ("rho_drift", ["world.dynamics.kind=drift", "world.dynamics.rho=1.5"],
     "world.dynamics.rho", ["1.5", "(0, 1)"]),
    ("alpha_0", ["world.latent.alpha=0"], "world.latent.alpha", ["= 0", "(0"]),
    ("alpha_neg", ["world.latent.alpha=-2"], "world.latent.alpha", ["-2", "(0"]),
    ("nu_2", ["world.latent.kind=student_t", "world.latent.nu=2"], "world.latent.nu",
     ["= 2", "(2"]),
    ("nu_1", ["world.latent.kind=student_t", "world.latent.nu=1.5"], "world.latent.nu",
     ["1.5", "(2"]),
    ("coupling_odd_dim", ["world.dim=3", "world.mixer.kind=coupling"], "world.mixer.kind",
     ["'coupling'", "even", "3"]),
    ("spiral_dim_3", ["world.dim=3", "world.mixer.kind=spiral"], "world.mixer.kind",
     ["'spiral'", "world.dim = 2", "3"]),
    ("banana_dim_4", ["world.dim=4", "world.mixer.kind=banana"], "world.mixer.kind",
     ["'banana'", "world.dim = 2", "4"]),
    ("sinusoid_dim_1", ["world.dim=1", "world.mixer.kind=sinusoid"], "world.mixer.kind",
     ["'sinusoid'", "world.dim = 2", "1"]),
    ("rho_list_too_short", ["world.dim=3", "world.dynamics.rho=[0.5, 0.6]"],
     "world.dynamics.rho", ["[0.5, 0.6]", "3 entries"]),
    ("rho_list_too_long", ["world.dynamics.rho=[0.5, 0.6, 0.7]"], "world.dynamics.rho",
     ["[0.5, 0.6, 0.7]", "2 entries"]),
    ("variances_length", ["world.latent.kind=gaussian", "world.latent.variances=[1.0]"],
     "world.latent.variances", ["1 entries", "world.dim = 2"]),
    ("variances_zero", ["world.latent.kind=gaussian", "world.latent.variances=[1.0, 0]"],
     "world.latent.variances", ["[1.0, 0]", "(0"]),
    ("alpha_abc", ["world.latent.alpha=abc"], "world.latent.alpha", ["'abc'", "number"]),
    ("rho_abc", ["world.dynamics.rho=abc"], "world.dynamics.rho", ["'abc'", "number"]),
    ("dim_abc", ["world.dim=abc"], "world.dim", ["'abc'", "integer"]),
    ("dim_float", ["world.dim=2.5"], "world.dim", ["2.5", "integer"]),
    ("depth_abc", ["world.mixer.depth=abc"], "world.mixer.depth", ["'abc'", "integer"]),
    ("rho_bool", ["world.dynamics.rho=true"], "world.dynamics.rho", ["True", "number"]),
    ("dim_0", ["world.dim=0"], "world.dim", ["= 0", "[1"]),
    ("seed_neg", ["seed=-1"], "seed", ["-1", "[0"]),
    ("laplace_ar_needs_laplace", ["world.latent.kind=uniform",
                                  "world.dynamics.kind=laplace_ar"],
     "world.dynamics.kind", ["'laplace_ar'", "laplace", "uniform"]),
    ("drift_target", ["world.dynamics.kind=drift", "world.dynamics.target=speed"],
     "world.dynamics.target", ["'speed'", "'mean'", "'scale'", "'rho'"]),
    ("section_not_mapping", ["world.latent=[1, 2]"], "world.latent", ["[1, 2]", "kind"]),
]


@pytest.mark.parametrize("cid,overrides,field,needles", BAD_OVERRIDES,
                         ids=[c[0] for c in BAD_OVERRIDES])
def test_bad_override_names_field_and_value(cid, overrides, field, needles):
    """load_run(overrides=...) raises ConfigError naming the dotted field and the value
    or what is allowed, on one line."""
    with pytest.raises(ConfigError) as info:
        load_run(None, overrides)
    msg = str(info.value)
    assert info.value.field == field
    assert msg.startswith(field)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)


# YAML files: (id, text, field, substrings)
BAD_FILES = [
    ("unknown_kind", "world:\n  latent: {kind: cauchy}\n", "world.latent.kind",
     ["'cauchy'", "gaussian"]),
    ("unknown_key", "world:\n  dynamics: {kind: ou, rho: 0.5, sigma: 1}\n",
     "world.dynamics.sigma", ["unknown key", "rho"]),
    ("bad_rho", "world:\n  dynamics: {kind: ou, rho: 1.5}\n", "world.dynamics.rho",
     ["1.5", "(0, 1)"]),
    ("rho_list", "world:\n  dim: 3\n  dynamics: {kind: ou, rho: [0.9, 0.8]}\n",
     "world.dynamics.rho", ["[0.9, 0.8]", "3 entries"]),
    ("bad_alpha", "world:\n  latent: {kind: gennorm, alpha: -1}\n", "world.latent.alpha",
     ["-1", "(0"]),
    ("bad_nu", "world:\n  latent: {kind: student_t, nu: 2}\n", "world.latent.nu",
     ["2", "(2"]),
    ("odd_coupling", "world:\n  dim: 5\n  mixer: {kind: coupling}\n", "world.mixer.kind",
     ["'coupling'", "even"]),
    ("spiral_dim", "world:\n  dim: 4\n  mixer: {kind: spiral}\n", "world.mixer.kind",
     ["'spiral'", "world.dim = 2"]),
    ("non_numeric", "world:\n  latent: {kind: gennorm, alpha: abc}\n", "world.latent.alpha",
     ["'abc'", "number"]),
    ("top_level_key", "sead: 1\n", "sead", ["unknown key", "seed"]),
    ("world_not_mapping", "world: 3\n", "world", ["3", "mapping"]),
    ("unparsable", "world: {dim: 2\n  latent: [\n", "config", ["not valid YAML"]),
    ("tabs", "world:\n\tdim: 2\n", "config", ["not valid YAML"]),
    ("top_level_list", "- seed: 1\n- world: {}\n", "config", ["top level", "mapping"]),
    ("top_level_scalar", "42\n", "config", ["top level", "mapping"]),
]


@pytest.mark.parametrize("cid,text,field,needles", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_yaml_file(tmp_path, cid, text, field, needles):
    """A bad YAML file raises ConfigError naming the field (or 'config' and the path for
    file-level problems) and the value or what is allowed."""
    path = tmp_path / f"{cid}.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_run(path)
    msg = str(info.value)
    assert info.value.field == field
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    if field == "config":
        assert str(path) in msg


def test_missing_file(tmp_path):
    """A missing config file raises ConfigError naming the path."""
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_run(path)
    assert info.value.field == "config"
    assert str(path) in str(info.value) and "no such file" in str(info.value)


def test_empty_file_gives_defaults(tmp_path):
    """An empty YAML file is the default config."""
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    assert load_run(path) == load_run()


def test_malformed_override():
    """An override without '=' raises ConfigError naming it."""
    with pytest.raises(ConfigError, match="world.dim"):
        load_run(None, ["world.dim"])


# ---------------------------------------------------------------- property checks
@given(rho=st.floats(-2.0, 3.0, allow_nan=False))
def test_rho_accepted_iff_in_open_unit_interval(rho):
    """world.dynamics.rho is accepted exactly when 0 < ρ < 1, and kept as given."""
    if 0 < rho < 1:
        assert load_run(None, [("world.dynamics.rho", rho)]).world.dynamics.rho == rho
    else:
        with pytest.raises(ConfigError, match=r"world\.dynamics\.rho"):
            load_run(None, [("world.dynamics.rho", rho)])


@given(alpha=st.floats(-5.0, 50.0, allow_nan=False), nu=st.floats(-5.0, 50.0, allow_nan=False))
def test_alpha_and_nu_ranges(alpha, nu):
    """gennorm α is accepted iff α > 0; student_t ν iff ν > 2."""
    if alpha > 0:
        assert load_run(None, [("world.latent.alpha", alpha)]).world.latent.alpha == alpha
    else:
        with pytest.raises(ConfigError, match=r"world\.latent\.alpha"):
            load_run(None, [("world.latent.alpha", alpha)])
    over = [("world.latent.kind", "student_t"), ("world.latent.nu", nu)]
    if nu > 2:
        assert load_run(None, over).world.latent.nu == nu
    else:
        with pytest.raises(ConfigError, match=r"world\.latent\.nu"):
            load_run(None, over)


@given(dim=st.integers(1, 12))
def test_dimension_rules(dim):
    """coupling needs an even dim; spiral/banana/sinusoid need dim 2; mlp takes any."""
    for kind, ok in (("coupling", dim % 2 == 0), ("spiral", dim == 2), ("banana", dim == 2),
                     ("sinusoid", dim == 2), ("mlp", True), ("identity", True)):
        over = [f"world.dim={dim}", f"world.mixer.kind={kind}"]
        if ok:
            assert load_run(None, over).world.mixer.kind == kind
        else:
            with pytest.raises(ConfigError, match=r"world\.mixer\.kind"):
                load_run(None, over)


# ---------------------------------------------------------------- overrides
def test_override_changing_kind_keeps_shared_keys_and_names_lost_ones():
    """Changing a section's kind by override keeps the fields both kinds have, drops the
    old kind's fields left at its defaults, and refuses (naming them) fields whose
    setting would be lost; the whole section given as a mapping replaces it."""
    src = {"world": {"dim": 4, "latent": {"kind": "gennorm", "alpha": 0.5},
                     "mixer": {"kind": "mlp", "depth": 5, "slope": 0.1}},
           "learner": {"objective": {"kind": "lejepa", "lam": 0.05, "slices": 64,
                                     "knots": 17}}}
    with pytest.raises(ConfigError) as e:
        load_run(src, ["world.latent.kind=laplace"])
    assert e.value.field == "world.latent.kind" and "alpha" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_run(src, ["learner.objective.kind=vicreg"])
    assert e.value.field == "learner.objective.kind"
    assert "lam, slices" in str(e.value) and "knots" not in str(e.value)  # 17: default
    shared = {**src, "learner": {"objective": {"kind": "lejepa", "slices": 64}}}
    cfg = load_run(shared, ["learner.objective.kind=sigreg_only",
                            "world.latent={kind: laplace}", "world.mixer={kind: coupling}"])
    assert cfg.learner.objective.slices == 64  # a field both kinds have carries over
    assert to_dict(cfg.world.latent) == {"kind": "laplace"}
    assert cfg.world.mixer == load_run(None, ["world.dim=4", "world.mixer.kind=coupling"]
                                       ).world.mixer
    cfg = load_run({"world": {"latent": {"kind": "gennorm", "alpha": 2.0}}},
                   ["world.latent.nu=7", "world.latent.kind=student_t"])
    assert to_dict(cfg.world.latent) == {"kind": "student_t", "nu": 7.0}  # α 2: default


def test_override_changing_kind_exits_2_naming_the_fields(tmp_path, capsys):
    from identlab.cli import main

    out = tmp_path / "o"
    assert main(["run", "configs/first.yaml", "learner.objective.kind=vicreg",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "learner.objective.kind" in err and "slices" in err and err.count("\n") == 1
    assert not out.exists()


def test_override_same_kind_keeps_keys():
    """Restating the current kind keeps that section's other keys."""
    src = {"world": {"latent": {"kind": "gennorm", "alpha": 0.5}}}
    assert load_run(src, ["world.latent.kind=gennorm"]).world.latent.alpha == 0.5


def test_kind_shorthand():
    """A section may be given as just its kind string."""
    assert load_run({"world": {"latent": "laplace"}}).world.latent.kind == "laplace"
    assert load_run(None, ["world.latent=uniform"]).world.latent.kind == "uniform"


def test_override_kind_of_a_partial_section_names_its_keys():
    """A partial section (default kind implied) is checked the same way when an override
    changes the kind."""
    with pytest.raises(ConfigError, match="alpha"):
        load_run({"world": {"latent": {"alpha": 0.5}}}, ["world.latent.kind=laplace"])
    cfg = load_run({"world": {"latent": {"alpha": 2.0}}}, ["world.latent.kind=laplace"])
    assert cfg.world.latent.kind == "laplace"


def test_partial_section_keeps_default_kind(tmp_path):
    """A section given without kind keeps the default kind (and its other defaults)."""
    default = load_run()
    cfg = load_run(None, ["world.latent.alpha=1.0", "world.dynamics.rho=0.5",
                          "world.mixer.depth=5"])
    assert cfg.world.latent.kind == default.world.latent.kind == "gennorm"
    assert cfg.world.latent.alpha == 1.0
    assert cfg.world.dynamics.kind == default.world.dynamics.kind
    assert cfg.world.dynamics.rho == 0.5
    assert cfg.world.mixer.kind == default.world.mixer.kind
    assert cfg.world.mixer.depth == 5
    assert cfg.world.mixer.slope == default.world.mixer.slope
    path = tmp_path / "partial.yaml"
    path.write_text("world:\n  dynamics: {rho: 0.5}\n  mixer: {depth: 5}\n")
    from_file = load_run(path)
    assert from_file.world.dynamics == cfg.world.dynamics
    assert from_file.world.mixer == cfg.world.mixer


def test_override_values_parse_as_yaml():
    """Override values are YAML: numbers, lists, strings; per-dim rho from a list."""
    cfg = load_run(None, ["world.dim=3", "world.dynamics.rho=[0.5, 0.7, 0.9]", "seed=12"])
    assert cfg.world.dynamics.rho == (0.5, 0.7, 0.9)
    assert cfg.seed == 12
    assert load_run(None, ["world.dynamics.rho=0.5"]).world.dynamics.rho == 0.5


# ---------------------------------------------------------------- hashing, round-trips
def reorder(obj):
    """The same mapping with keys inserted in reverse order, at every level."""
    if isinstance(obj, dict):
        return {k: reorder(obj[k]) for k in reversed(list(obj))}
    return obj


NON_DEFAULT = [
    [],
    ["world.dim=3", "world.latent.kind=student_t", "world.latent.nu=7",
     "world.dynamics.rho=[0.5, 0.6, 0.7]"],
    ["world.latent.kind=gaussian", "world.latent.variances=[0.5, 2.0]",
     "world.dynamics.kind=drift", "world.dynamics.target=scale", "world.mixer.kind=spiral"],
    ["world.latent.kind=laplace", "world.dynamics.kind=laplace_ar",
     "world.mixer.kind=coupling", "seed=4"],
    ["world.latent.kind=mixture", "world.dynamics.kind=copula_ou",
     "world.mixer.kind=linear", "world.mixer.mode=conditioned"],
]


@pytest.mark.parametrize("overrides", NON_DEFAULT, ids=range(len(NON_DEFAULT)))
def test_round_trip(tmp_path, overrides):
    """build(RunConfig, to_dict(cfg)) == cfg; to_dict is JSON-able; a YAML dump of it
    loads back to the same config with the same hash."""
    cfg = load_run(None, overrides)
    data = to_dict(cfg)
    json.dumps(data)
    assert build(RunConfig, data) == cfg
    assert load_run(data) == cfg
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_run(path) == cfg
    assert config_hash(load_run(path)) == config_hash(cfg)


@pytest.mark.parametrize("overrides", NON_DEFAULT, ids=range(len(NON_DEFAULT)))
def test_hash_ignores_key_order(overrides):
    """config_hash is a function of the values only, not of key order."""
    data = to_dict(load_run(None, overrides))
    assert list(reorder(data)) != list(data)
    assert config_hash(load_run(reorder(data))) == config_hash(load_run(data))


def leaves(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaves(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix, obj


def perturb(value):
    """A nearby value of the same type (None if there is none to try)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 2
    if isinstance(value, float):
        return value * 1.01 if value else 0.01
    if isinstance(value, list) and value and isinstance(value[0], float):
        return [value[0] * 0.99] + value[1:]
    return None


def test_hash_changes_with_every_value():
    """Changing any single leaf value of the default config (where the change is valid)
    changes config_hash, and distinct changes give distinct hashes."""
    data = to_dict(load_run())
    base = config_hash(load_run())
    hashes = {base}
    tried = 0
    for path, value in leaves(data):
        new = perturb(value)
        if new is None:
            continue
        try:
            cfg = load_run(None, [(path, new)])
        except ConfigError:
            continue
        tried += 1
        h = config_hash(cfg)
        assert h not in hashes, path
        hashes.add(h)
    assert tried >= 20
    assert config_hash(load_run(None, ["world.latent.kind=laplace"])) not in hashes


def test_hash_includes_seed_and_is_stable():
    """The seed is part of the hash; the hash is deterministic 16-hex."""
    a = load_run()
    assert config_hash(a) == config_hash(load_run())
    assert config_hash(a) != config_hash(a.with_seed(1))
    assert len(config_hash(a)) == 16 and int(config_hash(a), 16) >= 0


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_configs_load(path):
    """Every shipped example config validates and round-trips."""
    cfg = load_run(path)
    assert build(RunConfig, to_dict(cfg)) == cfg


def test_defaults_are_finite():
    """Every numeric default is a finite number."""
    for path, value in leaves(to_dict(load_run())):
        if isinstance(value, float):
            assert math.isfinite(value), path


def test_overrides_never_edit_the_values_passed_in():
    """A mapping given as an override value (a sweep's grid entry) is copied, so a later
    dotted override into the same section leaves the caller's mapping untouched."""
    dyn = {"kind": "drift", "target": "mean", "strength": 1.0}
    out = apply_overrides({}, [("world.dynamics", dyn), ("world.dynamics.rho", 0.7)])
    assert out["world"]["dynamics"]["rho"] == 0.7
    assert dyn == {"kind": "drift", "target": "mean", "strength": 1.0}
