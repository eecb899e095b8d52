"""Pixel worlds: real dm_control Reacher frames, the frame cache, the CNN encoder and a
tiny end-to-end run. The rendering tests skip only when no GL backend exists and ``CI``
is unset; under CI a missing backend fails them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from identlab.cli import main
from identlab.config import load_run
from identlab.core import seeding
from identlab.core.schema import ConfigError
from identlab.learn.encoders import CNNEncoder, stack_params
from identlab.world import pixels
from identlab.world.mixers import Reacher

PIXEL = ["world.mixer.kind=reacher", "learner.encoder.kind=cnn"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IDENTLAB_FRAME_CACHE", str(tmp_path / "frames"))
    return tmp_path / "frames"


def _world_cfg(**mixer):
    return load_run(None, PIXEL + [f"world.mixer.{k}={v}" for k, v in mixer.items()]).world


# ------------------------------------------------------------------ config errors
@pytest.mark.parametrize("override,field", [
    ("world.mixer.size=48", "world.mixer.size"),
    ("world.mixer.size=0", "world.mixer.size"),
    ("world.dim=3", "world.mixer.kind"),
    ("world.mixer.scale=0", "world.mixer.scale"),
    ("world.mixer.target=[0.1]", "world.mixer.target"),
    ("world.mixer.target=[0.5, 0.0]", "world.mixer.target"),
    ("world.mixer.pairs=1", "world.mixer.pairs"),
    ("learner.encoder.kind=mlp", "learner.encoder.kind"),
    ("learner.encoder.groups=3", "learner.encoder.groups"),
    ("eval.grid=10", "eval.grid"),
])
def test_bad_pixel_config_names_the_field(override, field):
    with pytest.raises(ConfigError) as e:
        load_run(None, PIXEL + [override])
    assert e.value.field == field
    assert "\n" not in str(e.value)


def test_cnn_on_a_vector_world_is_refused():
    with pytest.raises(ConfigError, match="learner.encoder.kind"):
        load_run(None, ["learner.encoder.kind=cnn"])


def test_bad_size_exit_2_one_line(capsys):
    rc = main(["world", *PIXEL, "world.mixer.size=48"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "world.mixer.size" in err
    assert "32, 64" in err


def test_wrap_fraction():
    m = Reacher(Reacher.Params(scale=1.0), 2, np.random.default_rng(0))
    z = np.array([[0.0, 0.0], [3.2, 0.0], [0.0, -3.2], [3.1, -3.1]])
    assert m.wrap_fraction(z) == 0.5
    zs = np.random.default_rng(1).standard_normal((400000, 2))
    assert m.wrap_fraction(zs) == pytest.approx(m.gaussian_wrap_fraction(), abs=4e-4)
    t = m.eval_targets(z)["angles"]
    np.testing.assert_allclose(t[1], [np.sin(3.2), 0.0, np.cos(3.2), 1.0])


# ------------------------------------------------------------------ rendering + cache
def test_real_frames_differ_and_cache_roundtrips(gl, cache):
    """Real frames: uint8 (n, 3, 32, 32); different angles give different frames, equal
    angles equal frames; the cache returns exactly the rendered bytes and a second call
    renders nothing."""
    wc = _world_cfg()
    theta = np.array([[0.0, 0.0], [0.5, 0.0], [0.0, 0.5], [0.0, 0.0], [-2.0, 1.0]])
    direct = pixels.render_frames(wc.mixer, theta)
    assert direct.shape == (5, 3, 32, 32) and direct.dtype == np.uint8
    assert np.array_equal(direct[0], direct[3])
    for i, j in [(0, 1), (0, 2), (1, 2), (0, 4)]:
        assert np.abs(direct[i].astype(int) - direct[j]).sum() > 100
    fs = pixels.FrameSet(wc, 0, "train", theta, cache)
    info = pixels.ensure_frames([fs], workers=1, progress=False)
    assert info["rendered"] == 5
    loaded = fs.load()
    assert loaded.tobytes() == direct.tobytes()
    before = fs.path(0).read_bytes()
    assert pixels.ensure_frames([fs], workers=1, progress=False)["rendered"] == 0
    assert fs.path(0).read_bytes() == before
    again = pixels.FrameSet(wc, 0, "train", theta, cache)  # same key from a fresh object
    assert again.key == fs.key and again.load().tobytes() == direct.tobytes()


# ------------------------------------------------------------------ the fast render mode
ARM_GEOMS = ("root", "arm", "hand", "finger")
ARM_DIFF = 40        # a pixel is the arm's when some channel moves this much with the arm
ARM_IOU_MIN = 0.75   # every frame: fast and full agree on where the arm is...
ARM_IOU_MEDIAN = 0.85
ARM_COLOUR_MAX = 20  # ...and on its colour, mean |Δ| of 255 on shared arm pixels (lighting)


def _render(mode, theta, size, hide_arm=False):
    r = pixels._Renderer(mode)
    try:
        if hide_arm:
            for g in ARM_GEOMS:
                r.physics.named.model.geom_rgba[g, 3] = 0.0
        return r.render(theta, size, (0.1, 0.1)).astype(int)
    finally:
        r.close()


def test_fast_frames_are_deterministic_and_not_blank(gl):
    """A fast frame is the same for a pose, from the same renderer and from a fresh one,
    and it is neither blank nor constant nor the empty arena."""
    p = Reacher.Params(render="fast")
    theta = np.array([[0.4, -0.9], [-1.2, 2.0], [0.4, -0.9]])
    a, b = pixels.render_frames(p, theta), pixels.render_frames(p, theta)
    assert a.tobytes() == b.tobytes() and np.array_equal(a[0], a[2])
    assert a.std() > pixels.PROBE_MIN_STD and len(np.unique(a)) > 10
    empty = _render("fast", theta[:1], 32, hide_arm=True)
    assert np.abs(a[0].astype(int) - empty[0]).max() > ARM_DIFF


def test_fast_frames_of_distinct_poses_are_distinct(gl):
    """Distinct poses inside (−π, π)² give distinct frames on a sample (g injective
    where the theorem needs it)."""
    theta = np.random.default_rng(3).uniform(-2.8, 2.8, size=(40, 2))
    f = pixels.render_frames(Reacher.Params(render="fast"), theta).reshape(40, -1)
    d = np.abs(f[:, None].astype(np.int16) - f[None].astype(np.int16)).sum(-1)
    assert d[~np.eye(40, dtype=bool)].min() > 0


@pytest.mark.parametrize("size", [32, 64])
def test_fast_matches_full_on_the_arm(gl, size):
    """Where the arm is (pixels that change when the arm's geoms are hidden), the fast
    frame agrees with the full one: intersection over union of the two arm masks, and
    the colour on shared arm pixels, within the stated tolerances."""
    theta = np.random.default_rng(1).uniform(-2.5, 2.5, size=(12, 2))
    masks, frames = {}, {}
    for mode in ("fast", "full"):
        frames[mode] = _render(mode, theta, size)
        masks[mode] = np.abs(frames[mode] - _render(mode, theta, size, True)).max(1) > ARM_DIFF
    inter = (masks["fast"] & masks["full"]).sum((1, 2))
    iou = inter / (masks["fast"] | masks["full"]).sum((1, 2))
    assert iou.min() >= ARM_IOU_MIN and np.median(iou) >= ARM_IOU_MEDIAN, iou
    shared = (masks["fast"] & masks["full"])[:, None].repeat(3, 1)
    colour = np.abs(frames["fast"] - frames["full"])[shared].mean()
    assert colour <= ARM_COLOUR_MAX


def test_render_mode_is_in_the_cache_key(cache):
    theta = np.zeros((3, 2))
    keys = {pixels.FrameSet(_world_cfg(render=m), 0, "train", theta, cache).key
            for m in ("fast", "full")}
    assert len(keys) == 2


def test_unknown_render_mode_exit_2(capsys):
    rc = main(["world", *PIXEL, "world.mixer.render=quick"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "world.mixer.render" in err


def test_pixel_bytes_count_the_trajectory_frames():
    """The memory estimate counts distinct uint8 frames: pairs + runs from runs of T
    transitions, two per pair for independent pairs."""
    one = 3 * 32 * 32
    assert Reacher.data_bytes(Reacher.Params(pairs=640, trajectory=64), 2, 0, 0) == \
        (640 + 10) * one
    assert Reacher.data_bytes(Reacher.Params(pairs=641, trajectory=64), 2, 0, 0) == \
        (641 + 11) * one
    assert Reacher.data_bytes(Reacher.Params(pairs=640, trajectory=1), 2, 0, 0) == \
        1280 * one


def test_64_pixel_frames(gl):
    f = pixels.render_frames(Reacher.Params(size=64), np.array([[0.3, -0.2]]))
    assert f.shape == (1, 3, 64, 64) and f.std() > 0


def test_cache_keys_split_seed_and_world(cache):
    wc = _world_cfg()
    theta = np.zeros((3, 2))
    keys = {pixels.FrameSet(w, s, sp, theta, cache).key
            for w, s, sp in [(wc, 0, "train"), (wc, 1, "train"), (wc, 0, "eval"),
                             (_world_cfg(scale=0.5), 0, "train")]}
    assert len(keys) == 4
    # the training-set size is not part of a frame set's identity (n is)
    assert pixels.FrameSet(_world_cfg(pairs=10), 0, "eval", theta, cache).key == \
        pixels.FrameSet(_world_cfg(pairs=20), 0, "eval", theta, cache).key


@pytest.mark.parametrize("damage", ["flip", "truncate", "wrong_shape", "wrong_angles"])
def test_corrupt_shard_is_rerendered(gl, cache, monkeypatch, damage):
    """A damaged shard (bad bytes, cut short, frames of the wrong shape or of other
    angles under a valid checksum) is never used: it is rendered again, and only it."""
    monkeypatch.setattr(pixels, "SHARD", 2)
    wc = _world_cfg()
    theta = np.array([[0.0, 0.1], [0.2, 0.3], [0.4, 0.5], [0.6, 0.7], [0.8, 0.9]])
    fs = pixels.FrameSet(wc, 0, "eval", theta, cache)
    pixels.ensure_frames([fs], workers=1, progress=False)
    good = fs.load()
    path = fs.path(1)
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))
    elif damage == "truncate":
        path.write_bytes(bytes(raw[: len(raw) // 3]))
    elif damage == "wrong_shape":
        pixels.write_shard(path, good[2:4, :, :16, :16].copy(), theta[2:4])
    else:
        pixels.write_shard(path, good[2:4], theta[2:4] + 1.0)
    assert fs.load_shard(1) is None and fs.missing() == [1]
    with pytest.raises(RuntimeError, match="corrupt"):
        fs.load()
    assert pixels.ensure_frames([fs], workers=1, progress=False)["rendered"] == 2
    assert fs.load().tobytes() == good.tobytes()


def test_workers_render_in_parallel_and_resume(gl, cache, monkeypatch):
    """Two worker processes give the same bytes as one process; a deleted shard (an
    interrupted job) is the only one rendered again."""
    monkeypatch.setattr(pixels, "SHARD", 3)  # the spawned workers only write the tasks
    wc = _world_cfg()
    theta = np.random.default_rng(0).uniform(-2, 2, size=(7, 2))
    fs = pixels.FrameSet(wc, 3, "train", theta, cache)
    info = pixels.ensure_frames([fs], workers=2, progress=False)
    assert info["rendered"] == 7 and info["workers"] == 2
    assert fs.load().tobytes() == pixels.render_frames(wc.mixer, theta).tobytes()
    fs.path(2).unlink()
    assert pixels.ensure_frames([fs], workers=2, progress=False)["rendered"] == 1


# ------------------------------------------------------------------ no GL backend
NO_OSMESA = """
import sys
sys.modules["OpenGL.osmesa"] = None  # as if libOSMesa were not installed
from identlab.cli import main
raise SystemExit(main(["run", "{cfg}", "--no-progress"]))
"""


@pytest.mark.parametrize("env,code", [
    ({"MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "osmesa"}, NO_OSMESA),
    ({"MUJOCO_GL": "no-such-backend"}, None),
])
def test_no_gl_backend_one_line_exit_2(tmp_path, env, code):
    cfg = tmp_path / "px.yaml"
    cfg.write_text(json.dumps({"world": {"mixer": {"kind": "reacher", "pairs": 8}},
                               "learner": {"encoder": {"kind": "cnn"}},
                               "train": {"steps": 2, "batch": 4}, "eval": {"n": 42}}))
    full = {k: v for k, v in os.environ.items() if k != "PYOPENGL_PLATFORM"}
    full.update(env, IDENTLAB_FRAME_CACHE=str(tmp_path / "frames"),
                IDENTLAB_RENDER_WORKERS="1")  # render in the process that lacks OSMesa
    argv = [sys.executable, "-c", code.format(cfg=cfg)] if code else \
        [sys.executable, "-m", "identlab", "run", str(cfg), "--no-progress"]
    p = subprocess.run(argv, capture_output=True, text=True, env=full, timeout=120)
    err = p.stderr.strip()
    assert p.returncode == 2, err
    assert err.count("\n") == 0 and err.startswith("identlab: error: world.mixer.kind")
    assert "libosmesa6" in err and env["MUJOCO_GL"] in err
    assert not list((tmp_path / "frames").rglob("shard-*"))  # nothing half-written


# ------------------------------------------------------------------ CNN encoder
def _cnn(size=32, channels=(8, 16), groups=4):
    return CNNEncoder(CNNEncoder.Params(channels=channels, groups=groups), 3 * size * size, 2)


def test_cnn_shapes_and_input_types():
    enc = _cnn()
    p = stack_params([enc.init(seeding.torch_generator(s, "init")) for s in (0, 1)])
    x = torch.randint(0, 256, (2, 5, 3, 32, 32), dtype=torch.uint8)
    h = CNNEncoder.apply(p, x)
    assert h.shape == (2, 5, 2) and h.dtype == torch.float32
    torch.testing.assert_close(CNNEncoder.apply(p, x.float() / 255), h)


@pytest.mark.parametrize("grouped", [True, False])
def test_cnn_members_do_not_interact(grouped, monkeypatch):
    """Member k's output from a stacked K=3 program equals its output alone (grouped
    convolution and GroupNorm never mix members, nor does the per-member loop);
    gradients stay in their member."""
    monkeypatch.setattr(CNNEncoder, "grouped", grouped)
    enc = _cnn(channels=(8, 8, 8))
    members = [enc.init(seeding.torch_generator(s, "init")) for s in range(3)]
    p = {k: v.requires_grad_(True) for k, v in stack_params(members).items()}
    x = torch.randint(0, 256, (3, 4, 3, 32, 32), dtype=torch.uint8)
    h = CNNEncoder.apply(p, x)
    for k in range(3):
        alone = CNNEncoder.apply(stack_params([members[k]]), x[k:k + 1])
        torch.testing.assert_close(h[k:k + 1], alone, rtol=1e-5, atol=1e-5)
    h[1].sum().backward()
    for v in p.values():
        assert v.grad[0].abs().max() == 0 and v.grad[2].abs().max() == 0
        assert v.grad[1].abs().max() > 0


def test_cnn_needs_divisible_frames():
    with pytest.raises(ConfigError, match="divisible"):
        _cnn(channels=(8,) * 6)
    with pytest.raises(ConfigError, match="learner.encoder.kind"):
        CNNEncoder(CNNEncoder.Params(), 2, 2)


# ------------------------------------------------------------------ end to end (tiny)
def test_tiny_pixel_run(gl, cache, capsys, tmp_path):
    """A few steps on a handful of real frames through the CLI: a record with the usual
    metrics, the angle metrics and the wrap fraction; the eval frames are cached in
    their own split."""
    out = tmp_path / "run"
    rc = main(["run", str(_write_cfg(tmp_path)), "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    rec = json.loads((out / "record.json").read_text())
    m = rec["metrics"]
    assert rec["status"] == "ok"
    for key in ("r2_hz", "cca_min", "r2_hz_angles", "nl_r2_hz_angles", "r2_xz"):
        assert m[key] is None or np.isfinite(m[key])
    assert len(m["r2_hz_angles_dims"]) == 4
    assert 0.0 <= m["wrap_fraction"] <= 1.0
    splits = sorted(json.loads(p.read_text())["split"] for p in cache.rglob("meta.json"))
    assert splits == ["eval", "train"]


def test_tiny_pixel_run_trains_scores_and_plans(gl, cache, capsys, tmp_path):
    """A few hundred trajectory pairs (fast frames) train, score and plan through the
    CLI: the record names its distinct training frames and carries the success keys,
    with planning on z reaching every goal of the plain integrator."""
    cfg = tmp_path / "tiny_plan.yaml"
    cfg.write_text(json.dumps({
        "world": {"mixer": {"kind": "reacher", "pairs": 300, "trajectory": 50}},
        "learner": {"encoder": {"kind": "cnn", "channels": [8, 8], "groups": 4},
                    "objective": {"kind": "lejepa", "slices": 8}},
        "train": {"steps": 6, "batch": 16, "data_chunk": 3},
        "eval": {"n": 60, "sigreg_slices": 8, "attribution": {"enabled": False},
                 "plan": {"enabled": True, "rendered_transitions": 40,
                          "rendered_pairs": 4, "horizon": 4}}}))
    out = tmp_path / "run"
    rc = main(["run", str(cfg), "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    rec = json.loads((out / "record.json").read_text())
    m = rec["metrics"]
    assert rec["status"] == "ok" and m["train_frames"] == 300 + 6
    assert rec["mixer"]["train_frames"] == 306 and rec["mixer"]["render"] == "fast"
    for key in ("plan_success", "plan_success_cem", "plan_success_z", "plan_success_z_cem",
                "plan_success_random"):
        assert 0.0 <= m[key] <= 1.0
    assert m["plan_success_z"] == 1.0 and m["plan_reach_radius"] > 0


def _write_cfg(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(json.dumps({
        "world": {"mixer": {"kind": "reacher", "pairs": 12}},
        "learner": {"encoder": {"kind": "cnn", "channels": [8, 8], "groups": 4},
                    "objective": {"kind": "lejepa", "slices": 8}},
        "train": {"steps": 4, "batch": 8, "data_chunk": 2},
        "eval": {"n": 42, "sigreg_slices": 8}}))
    return cfg


# ------------------------------------------------------------------ report figure
def test_frames_figure_and_vector_world_message():
    from identlab.show import plots, report

    imgs = np.random.default_rng(0).integers(0, 256, (2, 3, 3, 8, 8), dtype=np.uint8)
    fig = plots.frames(imgs, np.zeros((2, 3, 2)), title="t")
    assert len(fig.axes) == 6
    fig, para, _ = report._example_frames({"kind": "frames"}, {"world": {"mixer": "spiral"}})
    assert "vectors, not images" in para


def test_example_frames_of_the_reacher_world(gl, cache):
    from identlab.show import report

    base = {"world": {"mixer": {"kind": "reacher"}}, "learner": {"encoder": {"kind": "cnn"}}}
    fig, para, _ = report._example_frames({"kind": "frames"}, base)
    assert len(fig.axes) == 2 * report.EXAMPLE_PAIRS and "reacher" in para
