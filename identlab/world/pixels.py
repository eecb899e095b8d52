"""Rendered observations: dm_control's Reacher frames, rendered once and cached on disk.

Rendering cannot run inside a batched training step, so a pixel world renders a finite
set of frames ahead of training. A frame set is identified by the world config, the
run seed, the split (``train`` / ``eval``) and its size; its frames are stored in
shards of ``SHARD`` frames under ``cache_root()/<key>/``. Each shard file holds a SHA-256
digest followed by an ``.npz`` (``frames`` uint8 (n, 3, H, W), ``theta`` float64 (n, 2));
it is written atomically (temp + fsync + rename), and it is used only if the digest, the
shapes and the joint angles all match what is asked for — anything else is re-rendered.
Missing shards are rendered by worker processes (each loads the environment once), so a
killed job resumes where it stopped.

The GL backend is chosen before dm_control is imported: the user's ``MUJOCO_GL`` if set,
else ``egl`` when a CUDA GPU is present and ``osmesa`` otherwise (``PYOPENGL_PLATFORM``
follows unless set). A missing backend or package is a one-line :class:`ConfigError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing as mp
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from identlab.core.io import UsageError, ensure_writable_dir, write_bytes_atomic, write_json_atomic
from identlab.core.progress import tqdm
from identlab.core.registry import MIXERS
from identlab.core.schema import ConfigError, short, to_dict

__all__ = ["SHARD", "configure_gl", "cache_root", "FrameSet", "render_frames",
           "ensure_frames", "default_workers", "LiveRenderer"]

SHARD = 256          # frames per cache file
CACHE_VERSION = 1    # bump when the shard format or the scene set-up changes
INSTALL_HINT = ("install OSMesa (Debian/Ubuntu: apt-get install libosmesa6) for CPU "
                "rendering, or use MUJOCO_GL=egl on a machine with a GPU and libEGL")
FIELD = "world.mixer.kind"


# ------------------------------------------------------------------ backend
def configure_gl() -> str:
    """Set ``MUJOCO_GL`` (and ``PYOPENGL_PLATFORM``) unless the user has; returns the
    backend. Must run before dm_control or mujoco is imported."""
    backend = os.environ.get("MUJOCO_GL")
    if not backend:
        import torch

        backend = "egl" if torch.cuda.is_available() else "osmesa"
        os.environ["MUJOCO_GL"] = backend
    if backend in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:160]}"


def _backend_error(backend: str, exc: BaseException) -> ConfigError:
    return ConfigError(FIELD, f"= 'reacher': cannot render with MUJOCO_GL={backend} "
                       f"({_one_line(exc)}); {INSTALL_HINT}")


# the scene's lighting effects that the fast mode turns off (mjtRndFlag names)
FAST_OFF_FLAGS = ("mjRND_SHADOW", "mjRND_REFLECTION", "mjRND_SKYBOX")
# a probe frame whose pixel std is below this is blank, constant or garbage: the fast
# renderer refuses to start on it (frames are checked, not trusted)
PROBE_MIN_STD = 5.0
PROBE_POSE = (0.7, -1.1)  # shoulder, wrist (radians) of the probe frame


class _Renderer:
    """One process's Reacher scene; renders frames of given joint angles in one of the
    ``render`` modes (``world.mixer.render``, :class:`identlab.world.mixers.Reacher`):

    - ``full``: dm_control's ``physics.render`` after ``reset_context`` (full forward
      dynamics), with every lighting effect of the scene;
    - ``fast``: the pose set by ``mj_kinematics`` alone (zero velocities: position
      kinematics is all a still frame needs) and rendered through one reused
      ``mujoco.Renderer`` per frame size, with shadows, reflections and the skybox off
      (:data:`FAST_OFF_FLAGS`). The arm, the target and the arena are the same geoms
      seen by the same camera; only the lighting effects go.

    The fast mode probes its first frame of every size and refuses one that is constant
    (pixel std below :data:`PROBE_MIN_STD`)."""

    def __init__(self, mode: str = "full") -> None:
        backend = configure_gl()
        self.mode = mode
        try:
            from dm_control import suite
        except ImportError as e:
            if (e.name or "").split(".")[0] in ("dm_control", "mujoco"):
                raise ConfigError(FIELD, "= 'reacher': needs dm-control and mujoco; "
                                  "pip install 'identlab[pixels]'") from None
            raise _backend_error(backend, e) from None
        except Exception as e:  # dm_control refuses an unknown or broken MUJOCO_GL
            raise _backend_error(backend, e) from None
        self._fast: dict[int, object] = {}  # frame side -> its one mujoco.Renderer
        try:
            import mujoco

            self._mj = mujoco
            self.physics = suite.load("reacher", "hard", task_kwargs={"random": 0}).physics
            named = self.physics.named.model
            self._qpos = (int(named.jnt_qposadr["shoulder"]), int(named.jnt_qposadr["wrist"]))
            if mode == "full":
                self.physics.render(8, 8, camera_id=0)  # probe the GL context now
            else:
                self._fast_renderer(32)
        except ConfigError:
            raise
        except Exception as e:
            raise _backend_error(backend, e) from None

    # ---- fast mode (and positions) ------------------------------------------
    def _fast_renderer(self, size: int):
        r = self._fast.get(size)
        if r is None:
            r = self._mj.Renderer(self.physics.model.ptr, size, size)
            self._fast[size] = r
            probe = self._fast_frame(r, *PROBE_POSE)
            if float(probe.std()) < PROBE_MIN_STD:
                raise ConfigError(FIELD, f"= 'reacher': the fast renderer returned a "
                                  f"constant {size}-px frame (pixel std {probe.std():.2f}); "
                                  "use world.mixer.render=full")
        return r

    def _pose(self, shoulder: float, wrist: float) -> None:
        """Set the joint angles with zero velocities and recompute position kinematics
        (body, geom and camera poses) only."""
        mj, m, d = self._mj, self.physics.model.ptr, self.physics.data.ptr
        d.qpos[self._qpos[0]] = shoulder
        d.qpos[self._qpos[1]] = wrist
        d.qvel[:] = 0.0
        mj.mj_kinematics(m, d)
        mj.mj_camlight(m, d)

    def _fast_frame(self, r, shoulder: float, wrist: float) -> np.ndarray:
        self._pose(shoulder, wrist)
        r.update_scene(self.physics.data.ptr, camera=0)
        for name in FAST_OFF_FLAGS:
            r.scene.flags[getattr(self._mj.mjtRndFlag, name)] = 0
        return r.render()  # (size, size, 3) uint8, a fresh array

    # ---- both modes -----------------------------------------------------------
    def _set_target(self, target) -> None:
        p = self.physics
        p.named.model.geom_pos["target", "x"] = float(target[0])
        p.named.model.geom_pos["target", "y"] = float(target[1])

    def render(self, theta: np.ndarray, size: int, target) -> np.ndarray:
        """theta (n, 2) radians -> uint8 (n, 3, size, size)."""
        p = self.physics
        self._set_target(target)
        out = np.empty((len(theta), 3, size, size), dtype=np.uint8)
        if self.mode == "fast":
            r = self._fast_renderer(size)
            for i, (shoulder, wrist) in enumerate(theta):
                out[i] = self._fast_frame(r, shoulder, wrist).transpose(2, 0, 1)
            return out
        for i, (shoulder, wrist) in enumerate(theta):
            with p.reset_context():  # sets the pose, zero velocities, recomputes kinematics
                p.data.qvel[:] = 0.0
                p.named.data.qpos["shoulder"] = shoulder
                p.named.data.qpos["wrist"] = wrist
            out[i] = p.render(size, size, camera_id=0).transpose(2, 0, 1)
        return out

    def positions(self, theta: np.ndarray, bodies=("hand", "finger")) -> dict:
        """World x–y positions (metres) of ``bodies`` at joint angles theta (n, 2), by
        position kinematics alone (nothing is rendered): {body: (n, 2)}."""
        xpos = self.physics.named.data.xpos
        out = {b: np.empty((len(theta), 2)) for b in bodies}
        for i, (shoulder, wrist) in enumerate(np.asarray(theta, dtype=np.float64)):
            self._pose(shoulder, wrist)
            for b in bodies:
                out[b][i] = xpos[b][:2]
        return out

    def close(self) -> None:
        for r in self._fast.values():
            r.close()
        self._fast.clear()
        self.physics.free()  # release the GL context before interpreter shutdown


def render_throughput(n: int, size: int, seed: int = 0, mode: str = "full") -> dict:
    """Frames per second of one process rendering n frames of random poses in ``mode``
    (the environment load, and the fast mode's renderer set-up, are timed apart)."""
    import time

    t0 = time.perf_counter()
    r = _Renderer(mode)
    if mode == "fast":
        r._fast_renderer(size)
    load = time.perf_counter() - t0
    theta = np.random.default_rng(seed).uniform(-np.pi, np.pi, size=(n, 2))
    try:
        t0 = time.perf_counter()
        r.render(theta, size, (0.1, 0.1))
        return {"fps": n / (time.perf_counter() - t0), "load_s": load}
    finally:
        r.close()


def render_frames(params, theta: np.ndarray) -> np.ndarray:
    """Render frames of joint angles ``theta`` (n, 2) in this process, uncached."""
    r = _Renderer(params.render)
    try:
        return r.render(np.asarray(theta, dtype=np.float64).reshape(-1, 2), params.size,
                        params.target)
    finally:
        r.close()


class LiveRenderer:
    """Frames rendered on demand in this process, the environment loaded once: for
    closed-loop episodes, whose poses are not known ahead. ``pose()`` reads back the
    joint angles (radians) and the positions (metres, x–y plane) of the hand (wrist
    joint) and fingertip of the last frame from the physics."""

    def __init__(self, params) -> None:
        self.size = int(params.size)
        self.target = tuple(params.target)
        self._r = _Renderer(params.render)

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        """theta (n, 2) radians -> uint8 (n, 3, size, size)."""
        theta = np.asarray(theta, dtype=np.float64).reshape(-1, 2)
        return self._r.render(theta, self.size, self.target)

    def pose(self) -> dict[str, np.ndarray]:
        named = self._r.physics.named.data
        return {"theta": np.array([named.qpos["shoulder"], named.qpos["wrist"]]).ravel(),
                "hand": np.array(named.xpos["hand"][:2]),
                "finger": np.array(named.xpos["finger"][:2])}

    def fingertip(self, theta: np.ndarray) -> np.ndarray:
        """Fingertip positions (n, 2), metres in the x–y plane, at joint angles theta
        (n, 2) radians, by kinematics (nothing is rendered)."""
        theta = np.asarray(theta, dtype=np.float64).reshape(-1, 2)
        return self._r.positions(theta, ("finger",))["finger"]

    @property
    def reach_radius(self) -> float:
        """The distance under which dm_control's Reacher counts a reach: the target
        geom's radius plus the finger geom's, as this scene renders them (metres)."""
        size = self._r.physics.named.model.geom_size
        return float(size["target", 0] + size["finger", 0])

    def close(self) -> None:
        self._r.close()


# ------------------------------------------------------------------ cache
def cache_root() -> Path:
    """``$IDENTLAB_FRAME_CACHE``, else ``$XDG_CACHE_HOME/identlab/frames`` (~/.cache)."""
    env = os.environ.get("IDENTLAB_FRAME_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "identlab" / "frames"


CACHE_OPTION = "IDENTLAB_FRAME_CACHE"


def check_frame_cache(cfgs) -> None:
    """Prove the frame cache takes data when any of ``cfgs`` (run configs) renders its
    observations, before any output folder exists or any training starts: a read-only
    cache, or a file where the cache folder should be, is one line naming
    ``IDENTLAB_FRAME_CACHE``."""
    if not any(MIXERS.get(c.world.mixer.kind).rendered for c in cfgs):
        return
    root = cache_root()
    try:
        ensure_writable_dir(root, f"the frame cache (${CACHE_OPTION})")
    except UsageError as e:
        raise ConfigError(CACHE_OPTION, f"{e}; set {CACHE_OPTION} to a writable "
                          "folder") from None


def _cache_error(path, e: OSError) -> ConfigError:
    return ConfigError(CACHE_OPTION, f"cannot write {short(str(path), 120)} "
                       f"({e.strerror or e}); free space, remove it, or set {CACHE_OPTION} "
                       "to a writable folder")


def _renderer_version() -> str:
    out = []
    for pkg in ("mujoco", "dm-control"):
        try:
            out.append(f"{pkg}={metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            out.append(f"{pkg}=none")
    return ",".join(out)


@dataclass
class FrameSet:
    """The frames of one (world config, seed, split, n) in ``root/<key>/``."""

    world: object          # WorldConfig
    seed: int
    split: str
    theta: np.ndarray      # (n, 2) joint angles, row i -> frame i
    root: Path

    def __post_init__(self) -> None:
        self.theta = np.ascontiguousarray(self.theta, dtype=np.float64)
        self.size = int(self.world.mixer.size)
        self.target = tuple(self.world.mixer.target)
        self.mode = self.world.mixer.render
        world = to_dict(self.world)
        world["mixer"].pop("pairs", None)  # n is in the key; the eval set ignores pairs
        if self.split != "train":  # and it is drawn as independent pairs
            world["mixer"].pop("trajectory", None)
        blob = json.dumps({"version": CACHE_VERSION, "world": world,
                           "seed": self.seed, "split": self.split, "n": len(self.theta),
                           "renderer": _renderer_version()}, sort_keys=True)
        self.key = hashlib.sha256(blob.encode()).hexdigest()[:20]
        self.dir = Path(self.root) / self.key
        self.meta = json.loads(blob)

    @property
    def n(self) -> int:
        return len(self.theta)

    @property
    def n_shards(self) -> int:
        return -(-self.n // SHARD)

    def rows(self, i: int) -> slice:
        return slice(i * SHARD, min((i + 1) * SHARD, self.n))

    def path(self, i: int) -> Path:
        return self.dir / f"shard-{i:05d}.bin"

    def load_shard(self, i: int) -> np.ndarray | None:
        """Frames of shard i, or None when missing or not trustworthy."""
        try:
            raw = self.path(i).read_bytes()
        except OSError:
            return None
        digest, payload = raw[:32], raw[32:]
        if len(raw) < 32 or hashlib.sha256(payload).digest() != digest:
            return None
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as z:
                frames, theta = z["frames"], z["theta"]
        except (OSError, ValueError, KeyError, EOFError):
            return None
        want = self.theta[self.rows(i)]
        if (frames.dtype != np.uint8 or frames.shape != (len(want), 3, self.size, self.size)
                or theta.shape != want.shape or not np.array_equal(theta, want)):
            return None
        return frames

    def missing(self) -> list[int]:
        return [i for i in range(self.n_shards) if self.load_shard(i) is None]

    def load(self) -> np.ndarray:
        """All frames, uint8 (n, 3, size, size); every shard must be present and valid."""
        out = np.empty((self.n, 3, self.size, self.size), dtype=np.uint8)
        for i in range(self.n_shards):
            f = self.load_shard(i)
            if f is None:
                raise RuntimeError(f"frame cache shard {self.path(i)} is missing or corrupt")
            out[self.rows(i)] = f
        return out


def write_shard(path: Path, frames: np.ndarray, theta: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, frames=frames, theta=theta)
    payload = buf.getvalue()
    write_bytes_atomic(path, hashlib.sha256(payload).digest() + payload)


# ------------------------------------------------------------------ workers
_WORKERS: dict[str, _Renderer] = {}  # this worker process's renderer per mode, loaded once


def _worker_renderer(mode: str) -> _Renderer:
    from multiprocessing import util

    r = _WORKERS.get(mode)
    if r is None:
        r = _WORKERS[mode] = _Renderer(mode)
        # free the GL context while the worker shuts down, before the thread pools that
        # dm_control's own atexit hook needs are gone
        util.Finalize(r, r.close, exitpriority=10)
    return r


def _render_task(task) -> tuple[int, str | None]:
    path, theta, size, target, mode = task
    try:
        r = _worker_renderer(mode)
    except ConfigError as e:  # reported per task as text: ConfigError does not pickle
        return 0, str(e)
    write_shard(Path(path), r.render(theta, size, target), theta)
    return len(theta), None


def default_workers() -> int:
    """``$IDENTLAB_RENDER_WORKERS``, else the number of CPU cores (at most 8)."""
    env = os.environ.get("IDENTLAB_RENDER_WORKERS")
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError("IDENTLAB_RENDER_WORKERS", f"= {env!r}: must be an integer >= 1")
        return n
    return max(1, min(8, os.cpu_count() or 1))


def ensure_frames(sets: list[FrameSet], *, workers: int | None = None,
                  progress: bool = True) -> dict:
    """Render every missing or corrupt shard of ``sets`` (in ``workers`` processes, each
    loading the environment once), then return timing facts. Shards already valid are
    kept, so an interrupted call resumes."""
    import time

    tasks = []
    unique = {s.key: s for s in sets}  # members that share a world and seed share frames
    for s in unique.values():
        try:
            s.dir.mkdir(parents=True, exist_ok=True)
            if not (s.dir / "meta.json").is_file():
                write_json_atomic(s.dir / "meta.json", s.meta)
        except OSError as e:
            raise _cache_error(s.dir, e) from None
        for i in s.missing():
            if s.path(i).is_dir():  # a folder where a shard goes: never delete it
                raise _cache_error(s.path(i), IsADirectoryError(21, "Is a directory"))
            tasks.append((str(s.path(i)), s.theta[s.rows(i)], s.size, s.target,
                          s.mode))
    total = sum(len(t[1]) for t in tasks)
    if not tasks:
        return {"rendered": 0, "render_s": 0.0}
    workers = min(default_workers() if workers is None else workers, len(tasks))
    configure_gl()  # the workers inherit the choice
    bar = tqdm(total=total, desc="render frames", unit="frame", disable=not progress,
               leave=False, dynamic_ncols=True, mininterval=0.5)
    t0 = time.perf_counter()
    try:
        _render_tasks(tasks, workers, bar)
    except OSError as e:
        raise _cache_error(getattr(e, "filename", None) or cache_root(), e) from None
    finally:
        bar.close()
    return {"rendered": total, "render_s": time.perf_counter() - t0, "workers": workers}


def _render_tasks(tasks: list, workers: int, bar) -> None:
    """Render and write every task's shard, in this process or ``workers`` processes."""
    if workers <= 1:
        local: dict[str, _Renderer] = {}
        try:
            for path, theta, size, target, mode in tasks:
                r = local.get(mode) or local.setdefault(mode, _Renderer(mode))
                write_shard(Path(path), r.render(theta, size, target), theta)
                bar.update(len(theta))
        finally:
            for r in local.values():
                r.close()
    else:
        ctx = mp.get_context("spawn")  # no GL or torch state crosses a fork
        pool = ctx.Pool(workers)
        try:
            for n, err in pool.imap_unordered(_render_task, tasks):
                if err is not None:
                    raise ConfigError("", err)
                bar.update(n)
            pool.close()
        finally:
            pool.terminate()
            pool.join()
