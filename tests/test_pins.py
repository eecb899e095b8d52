"""The pin comparison of tests/pins.py: last-bit differences pass, real changes fail."""

import copy
import json
import math
import re
from pathlib import Path

import pytest
from pins import ABS, REL, SAMPLE_ABS, assert_matches_pin, assert_record_matches_pin

PIN = Path(__file__).parent / "data" / "pin_spiral.json"


@pytest.fixture
def pin() -> dict:
    return json.loads(PIN.read_text())


def _map_floats(x, f):
    """A copy of ``x`` with every float (not ints, not bools) replaced by ``f(float)``."""
    if isinstance(x, dict):
        return {k: _map_floats(v, f) for k, v in x.items()}
    if isinstance(x, list):
        return [_map_floats(v, f) for v in x]
    return f(x) if isinstance(x, float) else x


def _n_floats(x) -> int:
    n = [0]

    def count(v):
        n[0] += 1
        return v

    _map_floats(x, count)
    return n[0]


def test_the_pin_has_floats_everywhere_it_matters(pin):
    assert _n_floats(pin["metrics"]) > 20 and _n_floats(pin["sample"]) == 1600
    assert _n_floats(pin["train"]["history"]) == 2 and isinstance(pin["hash"], str)


def test_one_ulp_everywhere_passes(pin):
    up = _map_floats(pin, lambda v: math.nextafter(v, math.inf))
    assert up != pin  # every float moved
    assert_matches_pin(up, pin)
    assert_record_matches_pin(up, pin)


def test_the_measured_cross_cpu_differences_pass(pin):
    """Differences as measured between CPU kernels (tests/pins.py): within tolerance."""
    other = copy.deepcopy(pin)
    other["metrics"]["sigreg_stat"] = 191.42958558357233
    other["metrics"]["r2_hz_dims"][1] = 0.002209001253187459
    other["metrics"]["epsilon"] = 0.9162412563569319
    other["train"]["history"][1] = 0.11819013506174088
    other["sample"]["h"][109][1] = -0.9066
    assert_record_matches_pin(other, pin)


@pytest.mark.parametrize("part", [None, "metrics", "train", "config"])
def test_a_relative_change_everywhere_fails(pin, part):
    """Every float (of one part, or of the whole record) off by 100x the tolerance."""
    scale = 1 + 100 * REL
    changed = copy.deepcopy(pin)
    if part is None:
        changed = _map_floats(pin, lambda v: v * scale + 100 * ABS)
    else:
        changed[part] = _map_floats(pin[part], lambda v: v * scale + 100 * ABS)
    with pytest.raises(AssertionError):
        assert_matches_pin(changed, pin)
    with pytest.raises(AssertionError):
        assert_record_matches_pin(changed, pin)


def test_a_relative_1e6_everywhere_fails(pin):
    """The issue's bound: 1 ulp passes (above), a relative 1e-6 on every float fails, and
    so does 1e-6 on one O(1) metric alone."""
    off = _map_floats(pin, lambda v: v * (1 + 1e-6))
    with pytest.raises(AssertionError):
        assert_matches_pin(off["metrics"], pin["metrics"])
    with pytest.raises(AssertionError):
        assert_record_matches_pin(off, pin)
    one = copy.deepcopy(pin)
    one["metrics"]["epsilon"] *= 1 + 1e-6
    with pytest.raises(AssertionError, match=r"metrics\.epsilon"):
        assert_matches_pin(one, pin)


@pytest.mark.parametrize("key", ["r2_hz", "epsilon", "sigreg_stat", "procrustes_se"])
def test_one_metric_off_fails_and_names_its_path(pin, key):
    changed = copy.deepcopy(pin)
    changed["metrics"][key] *= 1 + 100 * REL
    with pytest.raises(AssertionError, match=rf"metrics\.{key}: .* != pinned "):
        assert_matches_pin(changed, pin)
    with pytest.raises(AssertionError, match=rf"metrics\.{key}"):
        assert_record_matches_pin(changed, pin)


def test_one_nested_float_off_names_its_path(pin):
    changed = copy.deepcopy(pin)
    changed["metrics"]["cca_corrs"][1] *= 1 + 100 * REL
    with pytest.raises(AssertionError, match=r"metrics\.cca_corrs\[1\]"):
        assert_matches_pin(changed, pin)
    changed = copy.deepcopy(pin)
    changed["sample"]["h"][7][0] += 2 * SAMPLE_ABS
    with pytest.raises(AssertionError, match=r"sample\.h\[7\]\[0\]"):
        assert_record_matches_pin(changed, pin)


def _set(d: dict, path: str, value) -> dict:
    d = copy.deepcopy(d)
    *head, last = path.split(".")
    node = d
    for k in head:
        node = node[k]
    node[last] = value
    return d


@pytest.mark.parametrize("path,value", [
    ("hash", "cd39bc66775fd6ef"),                 # the config hash
    ("status", "diverged"),                       # a string
    ("config.learner.objective.views", "split"),  # a nested string
    ("config.train.steps", 61),                   # an int
    ("seed", 1),
    ("train.log_every", 49),
    ("metrics.bound_holds", False),               # a bool
    ("theorem_applies", 1),                       # a bool is not a number
    ("diverged_at", 0),                           # None is exact
    ("config.world.latent.variances", [1.0, 1.0]),
    ("reasons", ["x"]),                           # a list's length
])
def test_exact_fields_fail_on_any_change(pin, path, value):
    with pytest.raises(AssertionError, match=re.escape(path)):
        assert_matches_pin(_set(pin, path, value), pin)
    with pytest.raises(AssertionError):
        assert_record_matches_pin(_set(pin, path, value), pin)


@pytest.mark.parametrize("path", ["hash", "metrics.epsilon", "config.train.betas",
                                  "sample", "train.history"])
def test_a_missing_key_fails_and_names_it(pin, path):
    changed = copy.deepcopy(pin)
    *head, last = path.split(".")
    node = changed
    for k in head:
        node = node[k]
    del node[last]
    with pytest.raises(AssertionError, match=f"missing key {re.escape(path)}"):
        assert_matches_pin(changed, pin)
    with pytest.raises(AssertionError):
        assert_record_matches_pin(changed, pin)


@pytest.mark.parametrize("path", ["future", "config.train.clip", "train.extra"])
def test_an_extra_key_fails_and_names_it(pin, path):
    with pytest.raises(AssertionError, match=f"extra key {re.escape(path)}"):
        assert_matches_pin(_set(pin, path, 1.0), pin)


def test_new_metric_keys_are_the_callers_check(pin):
    """assert_record_matches_pin compares the pinned metrics only; the tests that use it
    check exactly which metric keys are new."""
    more = _set(pin, "metrics.r2_hz_bulk", 0.5)
    assert_record_matches_pin(more, pin)
    with pytest.raises(AssertionError, match=r"extra key metrics\.r2_hz_bulk"):
        assert_matches_pin(more, pin)


def test_numbers_nan_and_kinds():
    assert_matches_pin({"a": float("nan"), "b": [1, 2.0]}, {"a": float("nan"), "b": [1.0, 2]})
    assert_matches_pin(0.0, 1e-13)  # the absolute floor
    for actual, pinned in [(float("nan"), 1.0), (1.0, float("nan")), (True, 1), (1, True),
                           (None, 0.0), (0.0, None), ("1.0", 1.0), ([1.0], 1.0),
                           ({"a": 1.0}, [1.0]), (math.inf, 1e308), (2, 3)]:
        with pytest.raises(AssertionError):
            assert_matches_pin(actual, pinned)
    assert_matches_pin(math.inf, math.inf)
    with pytest.raises(AssertionError, match=r"<root>: 1\.5 != pinned 1\.0"):
        assert_matches_pin(1.5, 1.0)
