"""Speed benchmark (``make bench``): ms/step of the trainer, batching gains, SIGReg
implementations and peak memory, written to ``reports/bench.md`` and ``bench.json``.

All figures of one report come from one process run, so ratios are comparable even on a
noisy shared machine; absolute numbers are not.
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import time
from pathlib import Path

import torch

from identlab.config import RunConfig, load_run
from identlab.core.provenance import provenance
from identlab.learn.train import Hyper, _compiler_problem, resolve_device, train
from identlab.run.program import build_program

__all__ = ["matmul_peak_gflops", "time_steps", "run_bench", "planning_bench",
           "attribution_bench", "SECTIONS"]

# the sections rerunnable alone with `identlab bench --only`
SECTIONS = ("pixels", "planning", "attribution", "step")

SPIRAL = ["world.mixer.kind=spiral", "world.latent.kind=gaussian",
          "learner.encoder.hidden=256", "learner.encoder.depth=4",
          "learner.objective.slices=256", "train.batch=256"]
SWEEP = ["world.mixer.kind=spiral", "world.latent.kind=gaussian",
         "learner.encoder.hidden=64", "learner.encoder.depth=4",
         "learner.objective.slices=64", "train.batch=256"]


def matmul_peak_gflops(dev: torch.device, n: int = 1024, repeats: int = 20) -> float:
    """Best-of float32 square matmul throughput: the machine's practical peak."""
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    best = float("inf")
    for _ in range(repeats):
        _sync(dev)
        t = time.perf_counter()
        a @ b
        _sync(dev)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _cfgs(overrides: list[str], k: int, impl: str = "auto") -> list[RunConfig]:
    base = load_run(None, overrides + [f"learner.objective.impl={impl}"])
    return [base.with_seed(s) for s in range(k)]


def time_steps(cfgs: list[RunConfig], dev: torch.device, steps: int = 30,
               warmup: int = 5, compiled: bool = False, extra: dict | None = None) -> float:
    """Median ms per training step of the batched program of ``cfgs`` (data included);
    ``compiled``: through torch.compile (its first step, compilation included, goes to
    ``extra["compile_s"]``)."""
    prog = build_program(cfgs, dev)
    times: list[float] = []

    def batches(step):
        _sync(dev)
        times.append(time.perf_counter())
        return prog.stream(step)

    h = prog.hyper
    hyper = Hyper(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, steps + warmup + 1)
    res = train(prog.params, prog.loss_fn, batches, hyper, progress=False, compiled=compiled)
    if extra is not None:
        extra.update(res.extra)
    deltas = [b - a for a, b in zip(times[warmup:], times[warmup + 1:])]
    return 1000 * statistics.median(deltas)


def paper_step(dev: torch.device, *, dim: int = 2, hidden: int = 256, depth: int = 4,
               batch: int = 256, slices: int = 256, knots: int = 17, t_max: float = 3.0,
               lam: float = 1e-3, lr: float = 3e-3, seed: int = 0):
    """The paper code's training step re-expressed in plain eager PyTorch from the design
    doc's formulas (§4): an ``nn.Sequential`` MLP (Linear–GELU × depth, a linear head),
    ``torch.optim.AdamW``, the alignment term and SIGReg evaluated knot by knot (one
    cos/sin pair of the (2B, S) projections per knot). Returns ``step()``, which runs one
    update on fresh N(0, I) views (drawn before the clock starts)."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    layers: list[torch.nn.Module] = []
    width = dim
    for _ in range(depth):
        layers += [torch.nn.Linear(width, hidden), torch.nn.GELU()]
        width = hidden
    net = torch.nn.Sequential(*layers, torch.nn.Linear(width, dim)).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    t = torch.linspace(0.0, t_max, knots, dtype=torch.float32, device=dev)
    trap = torch.full((knots,), 2 * t_max / (knots - 1), device=dev)
    trap[0] = trap[-1] = t_max / (knots - 1)
    phi = torch.exp(-0.5 * t**2)
    weights = trap * phi
    views = [torch.randn(2, batch, dim, generator=g).to(dev) for _ in range(8)]
    dirs = [torch.nn.functional.normalize(torch.randn(dim, slices, generator=g), dim=0).to(dev)
            for _ in range(8)]
    calls = [0]

    def step() -> None:
        i = calls[0] % len(views)
        calls[0] += 1
        h = net(views[i].reshape(2 * batch, dim))
        a, b = h[:batch], h[batch:]
        mean = 0.5 * (a + b)
        align = 0.5 * (((mean - a) ** 2).mean() + ((mean - b) ** 2).mean())
        proj = h @ dirs[i]  # (2B, S)
        sig = torch.zeros((), device=dev)
        for j in range(knots):  # the paper code's loop over knots
            tp = t[j] * proj
            err = (torch.cos(tp).mean(0) - phi[j]) ** 2 + torch.sin(tp).mean(0) ** 2
            sig = sig + weights[j] * err.mean()
        loss = (1 - lam) * align + lam * h.shape[0] * sig
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _median_ms(fn, dev: torch.device, steps: int, warmup: int = 3) -> float:
    out = []
    for i in range(steps + warmup):
        _sync(dev)
        t0 = time.perf_counter()
        fn()
        _sync(dev)
        if i >= warmup:
            out.append(time.perf_counter() - t0)
    return 1000 * statistics.median(out)


def profile_top(cfgs: list[RunConfig], dev: torch.device, steps: int = 5,
                top: int = 8) -> dict[str, float]:
    """The ``top`` operators by self time over ``steps`` training steps of the batched
    program of ``cfgs`` (torch.profiler), as shares of the profiled self time."""
    from torch.profiler import ProfilerActivity, profile

    prog = build_program(cfgs, dev)
    h = prog.hyper
    hyper = Hyper(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, steps + 2)
    train(prog.params, prog.loss_fn, prog.stream, hyper, progress=False)  # warm
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        train(prog.params, prog.loss_fn, prog.stream, hyper, progress=False)
    rows = [(e.key, e.self_cpu_time_total) for e in prof.key_averages()]
    total = sum(t for _, t in rows) or 1.0
    rows.sort(key=lambda r: -r[1])
    return {name: round(t / total, 3) for name, t in rows[:top]}


def step_bench(dev: torch.device, quick: bool = False, compiled: bool = False) -> dict:
    """What the training step is judged by, from one run: the spiral step beside the
    paper code's step (:func:`paper_step`, measured before and after it: the median of
    both), the sweep-size step per member, eager against compiled (with the compile
    seconds), the profile's top operators at K = 64, and ``make sweep``'s wall time from
    the last run that trained (reports/index.json)."""
    steps = 8 if quick else 30
    out: dict = {}
    spiral = _cfgs(SPIRAL, 1)[0]
    paper = paper_step(dev)
    paper_ms = [_median_ms(paper, dev, steps)]
    ours = time_steps([spiral], dev, steps)
    paper_ms.append(_median_ms(paper, dev, steps))
    out["step_spiral_k1_ms"] = round(ours, 2)
    out["step_paper_code_ms"] = round(statistics.median(paper_ms), 2)
    out["step_spiral_vs_paper_ratio"] = round(out["step_paper_code_ms"] / ours, 2)
    k = 4 if quick else 64
    eager = time_steps(_cfgs(SWEEP, k), dev, steps)
    out[f"step_sweep_k{k}_ms"] = round(eager, 2)
    out[f"step_sweep_k{k}_member_ms"] = round(eager / k, 3)
    problem = "quick run" if quick else _compiler_problem(dev)
    if problem is None:
        extra: dict = {}
        comp = time_steps(_cfgs(SWEEP, k), dev, steps, compiled=True, extra=extra)
        out[f"step_sweep_k{k}_compiled_ms"] = round(comp, 2)
        out[f"step_sweep_k{k}_compiled_member_ms"] = round(comp / k, 3)
        out[f"step_sweep_k{k}_compile_s"] = extra.get("compile_s")
        out[f"step_sweep_k{k}_compiled_vs_eager"] = round(comp / eager, 3)
        extra = {}
        comp1 = time_steps([spiral], dev, steps, compiled=True, extra=extra)
        out["step_spiral_k1_compiled_ms"] = round(comp1, 2)
        out["step_spiral_k1_compile_s"] = extra.get("compile_s")
    else:
        out["step_compiled_skipped"] = problem
    if compiled and problem is None:  # the SIGReg kernels alone through torch.compile
        t0 = time.perf_counter()
        first = time_steps(_cfgs(SWEEP, k, "compiled"), dev, 2, warmup=0)
        out[f"step_sweep_k{k}_sigreg_compiled_first_s"] = round(time.perf_counter() - t0, 1)
        del first
        ms = time_steps(_cfgs(SWEEP, k, "compiled"), dev, steps)
        out[f"step_sweep_k{k}_sigreg_compiled_ms"] = round(ms, 2)
        out[f"step_sweep_k{k}_sigreg_compiled_vs_eager"] = round(ms / eager, 3)
    out[f"step_profile_sweep_k{k}"] = profile_top(_cfgs(SWEEP, k), dev, steps=3 if quick else 5)
    index = Path(__file__).resolve().parents[2] / "reports" / "index.json"
    try:
        out["step_make_sweep_wall_s"] = json.loads(index.read_text()).get("total_wall_s")
    except (OSError, ValueError):
        out["step_make_sweep_wall_s"] = None
    return out


def mlp_ms(cfg: RunConfig, dev: torch.device, k: int = 1, repeats: int = 20) -> float:
    """ms of the encoder's forward + backward alone on one step's input (2B samples)."""
    prog = build_program([cfg.with_seed(s) for s in range(k)], dev)
    enc = type(prog.learners[0].encoder)
    params = {n: v.clone().requires_grad_(True) for n, v in prog.params.items()}
    x = torch.randn(k, 2 * cfg.train.batch, cfg.world.dim, device=dev)
    out = []
    for i in range(repeats + 3):
        _sync(dev)
        t = time.perf_counter()
        enc.apply(params, x).square().sum().backward()
        _sync(dev)
        if i >= 3:
            out.append(time.perf_counter() - t)
    return 1000 * statistics.median(out)


def mlp_flops(cfg: RunConfig) -> float:
    """Forward + backward FLOPs of the MLP encoder for one step (≈ 3 × forward)."""
    enc = cfg.learner.encoder
    dims = [cfg.world.dim] + [enc.hidden] * enc.depth + [cfg.world.dim]
    macs = sum(a * b for a, b in zip(dims[:-1], dims[1:]))
    return 3 * 2 * macs * 2 * cfg.train.batch


PIXELS = ["world.mixer.kind=reacher", "world.mixer.pairs=128", "learner.encoder.kind=cnn",
          "learner.encoder.channels=[16, 32, 64]", "learner.objective.slices=64",
          "train.batch=64", "eval.n=50", "eval.sigreg_slices=16"]


def pixel_bench(dev: torch.device, quick: bool = False) -> dict:
    """Rendering throughput (frames/s of one process, 32 and 64 px) and ms/step of the
    CNN encoder's batched program for K = 1 and 4 members, with members stacked as one
    grouped convolution and as a loop over members (the CPU default). The K members
    share one seed so that they share frames (timing does not depend on the data)."""
    import os
    import tempfile

    from identlab.learn.encoders import CNNEncoder
    from identlab.world import pixels

    out: dict = {}
    n = 40 if quick else 300
    for size in (32, 64):
        for mode in ("fast", "full"):  # world.mixer.render, in the same run
            r = pixels.render_throughput(n if mode == "fast" else max(20, n // 3), size,
                                         mode=mode)
            out[f"pixels_render_fps_{mode}_{size}px"] = round(r["fps"], 1)
            out[f"pixels_env_load_s_{mode}"] = round(r["load_s"], 2)
        out[f"pixels_render_fast_over_full_{size}px"] = round(
            out[f"pixels_render_fps_fast_{size}px"] / out[f"pixels_render_fps_full_{size}px"], 2)
    steps = 6 if quick else 20
    old_root = os.environ.get("IDENTLAB_FRAME_CACHE")
    old_mode = CNNEncoder.grouped
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["IDENTLAB_FRAME_CACHE"] = tmp
        try:
            base = load_run(None, PIXELS)
            for mode, name in ((None, "auto"), (True, "grouped")):
                CNNEncoder.grouped = mode
                k1 = time_steps([base], dev, steps)
                k4 = time_steps([base] * 4, dev, steps)
                out[f"pixels_cnn_{name}_k1_ms"] = round(k1, 2)
                out[f"pixels_cnn_{name}_k4_ms"] = round(k4, 2)
                out[f"pixels_cnn_{name}_k4_per_member_ratio"] = round(k4 / 4 / k1, 3)
        finally:
            CNNEncoder.grouped = old_mode
            if old_root is None:
                os.environ.pop("IDENTLAB_FRAME_CACHE", None)
            else:
                os.environ["IDENTLAB_FRAME_CACHE"] = old_root
    return out


def planning_bench(dev: torch.device, quick: bool = False) -> dict:
    """Seconds of one vector-world planning evaluation (design §8) at the default
    ``eval.plan`` budget (200 pairs, 20 000 transitions, horizon 15): the sweep-sized MLP
    encoder on the spiral world (timing does not depend on training), median of a few
    repeats, and the same evaluation with the exact inverse of the mixer as the encoder
    (the numerics alone: model fit, Riccati pass, closed loop, kNN decoding)."""
    from identlab.run.program import member_embedding
    from identlab.run.score import plan_scores

    cfg = load_run(None, SWEEP + ["eval.plan.enabled=true"])
    prog = build_program([cfg], dev)
    world = prog.worlds[0]
    embed = member_embedding(prog.learners[0], prog.params, 0, dev)
    repeats = 1 if quick else 5
    out = {"planning_pairs": cfg.eval.plan.pairs,
           "planning_transitions": cfg.eval.plan.transitions,
           "planning_horizon": cfg.eval.plan.horizon}
    for name, fn in (("mlp", embed), ("inverse", world.mixer.inverse)):
        times = [plan_scores(cfg, world, fn)["plan_s"] for _ in range(repeats)]
        out[f"planning_eval_s_{name}"] = round(statistics.median(times), 3)
    return out


ATTRIBUTION_GROUP = 15  # members of one constraint-sweep group (5 worlds x 3 seeds)


def _score_seconds(cfg: RunConfig, dev: torch.device, repeats: int) -> float:
    """Median seconds of one member's whole evaluation (score_member) under ``cfg``."""
    from identlab.run.program import member_embedding
    from identlab.run.score import score_member

    prog = build_program([cfg], dev)
    embed = member_embedding(prog.learners[0], prog.params, 0, dev)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        score_member(cfg, prog.worlds[0], embed)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def attribution_bench(dev: torch.device, quick: bool = False) -> dict:
    """The share of one default-sweep group's wall time the attribution diagnostics
    (design §7) add. A group of K = ATTRIBUTION_GROUP members of sweeps/base_cpu.yaml
    trains for steps × (median ms/step of the K-member program); each member is then
    scored. ``attribution_member_s_<law>`` = score_member's median seconds with minus
    without ``eval.attribution`` (an untrained encoder: the oracle fits do not depend on
    h), for the Gaussian latent and for gennorm α 0.5 (whose CDF is the slowest);

        share = K·Δ / (steps·ms/step + K·(score without attribution + Δ)).
    """
    from identlab.sweep.run import sweeps_dir

    base = load_run(sweeps_dir() / "base_cpu.yaml")
    k, repeats = ATTRIBUTION_GROUP, 1 if quick else 3
    step_ms = time_steps([base.with_seed(s) for s in range(k)], dev, 8 if quick else 30)
    train_s = step_ms / 1000 * base.train.steps
    out = {"attribution_group_members": k, "attribution_group_train_s": round(train_s, 1)}
    gennorm = ["world.latent={kind: gennorm, alpha: 0.5}",
               "world.dynamics={kind: copula_ou, rho: 0.95}"]
    for law, extra in (("gaussian", []), ("gennorm", gennorm)):
        cfg = load_run(sweeps_dir() / "base_cpu.yaml", extra)
        off = load_run(sweeps_dir() / "base_cpu.yaml", extra + ["eval.attribution.enabled=false"])
        t_off = _score_seconds(off, dev, repeats)
        delta = max(_score_seconds(cfg, dev, repeats) - t_off, 0.0)
        out[f"attribution_member_s_{law}"] = round(delta, 3)
        out[f"attribution_score_s_{law}"] = round(t_off, 3)
        out[f"attribution_share_{law}"] = round(k * delta / (train_s + k * (t_off + delta)), 4)
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cli_help_seconds(repeats: int = 3) -> float:
    """Wall time of ``python -m identlab --help`` in a fresh interpreter, best of
    ``repeats`` (the command line loads its subcommands lazily, without torch)."""
    import subprocess
    import sys

    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "identlab", "--help"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
    return best


def run_bench(device: str = "auto", quick: bool = False, compiled: bool = False,
              only: str | None = None) -> dict:
    """Time training, SIGReg and evaluation on ``device``; the results as a dict."""
    dev = resolve_device(device)
    if only is not None:
        section = {"pixels": pixel_bench, "planning": planning_bench,
                   "attribution": attribution_bench, "step": step_bench}[only]
        kw = {"compiled": compiled} if only == "step" else {}
        return {"provenance": provenance(dev), "threads": torch.get_num_threads(),
                **section(dev, quick, **kw)}
    steps = 8 if quick else 30
    res: dict = {"provenance": provenance(dev), "machine": platform.machine(),
                 "threads": torch.get_num_threads()}
    res["matmul_gflops"] = round(matmul_peak_gflops(dev), 1)
    res["cli_help_s"] = round(cli_help_seconds(), 3)
    spiral = _cfgs(SPIRAL, 1)[0]
    res["spiral_k1_ms"] = round(time_steps([spiral], dev, steps), 2)
    for impl in ("direct", "recurrence"):
        try:
            res[f"spiral_k1_ms_{impl}"] = round(time_steps(_cfgs(SPIRAL, 1, impl), dev, steps), 2)
        except KeyError:
            res[f"spiral_k1_ms_{impl}"] = None
    res["spiral_mlp_ms"] = round(mlp_ms(spiral, dev), 2)
    gflop = mlp_flops(spiral) / 1e9
    res["spiral_mlp_fraction_of_peak"] = round(
        gflop / (res["spiral_mlp_ms"] / 1000) / res["matmul_gflops"], 3)
    ks = [1, 4] if quick else [1, 16, 64]
    for k in ks:
        if k == 1:
            continue
        ms = time_steps(_cfgs(SPIRAL, k), dev, steps)
        res[f"spiral_k{k}_ms"] = round(ms, 2)
        res[f"spiral_k{k}_per_member_ratio"] = round(ms / k / res["spiral_k1_ms"], 3)
    sweep1 = time_steps(_cfgs(SWEEP, 1), dev, steps)
    res["sweep_k1_ms"] = round(sweep1, 2)
    for k in ([4] if quick else [16, 64]):
        ms = time_steps(_cfgs(SWEEP, k), dev, steps)
        res[f"sweep_k{k}_ms"] = round(ms, 2)
        res[f"sweep_k{k}_per_member_ratio"] = round(ms / k / sweep1, 3)
    try:
        from identlab.sigreg import benchmark as sigreg_benchmark

        impls = ("direct", "recurrence") + (("compiled",) if compiled else ())
        res["sigreg_spiral"] = _rounded(sigreg_benchmark(1, 512, 2, 256, impls=impls,
                                                         repeats=5 if quick else 20))
        res["sigreg_sweep_k64"] = _rounded(sigreg_benchmark(64, 512, 2, 64, impls=impls,
                                                            repeats=3 if quick else 10))
    except ImportError:
        pass
    res.update(step_bench(dev, quick, compiled))
    res.update(planning_bench(dev, quick))
    res.update(attribution_bench(dev, quick))
    res.update(_pixels_or_reason(dev, quick))
    if dev.type == "cuda":
        res["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    res["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return res


def _pixels_or_reason(dev: torch.device, quick: bool) -> dict:
    from identlab.core.schema import ConfigError

    try:
        return pixel_bench(dev, quick)
    except ConfigError as e:  # no dm_control or no GL backend: say so in the report
        return {"pixels_skipped": str(e)}


def _rounded(d: dict) -> dict:
    return {k: round(v, 3) for k, v in d.items()}


def to_markdown(res: dict) -> str:
    p = res["provenance"]
    lines = ["# identlab benchmark", "",
             f"Device `{p['device']}` ({p['device_name']}), torch {p['torch']}, "
             f"{res['threads']} threads, identlab {p['identlab']} ({p['git_sha']}). "
             "All numbers below come from one run; compare ratios, not absolute times "
             "across machines.", "",
             "| quantity | value |", "|---|---|"]
    for key in [k for k in res if k.endswith("_provenance")]:  # sections rerun alone
        q = res[key]
        lines[4:4] = [f"Rows `{key.removesuffix('_provenance')}_*` come from a later run "
                      f"(`identlab bench --only`): identlab {q['identlab']} "
                      f"({q['git_sha']}), torch {q['torch']}, device `{q['device']}`.", ""]
    for k, v in res.items():
        if isinstance(v, (int, float)) or v is None:
            lines.append(f"| `{k}` | {v} |")
    for key in ("sigreg_spiral", "sigreg_sweep_k64"):
        if key in res:
            lines += ["", f"SIGReg forward+backward, `{key}` (ms per call; `recurrence` is "
                      "the fused autograd function, `direct` the reference formula):", "",
                      "| implementation | ms |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in res[key].items()]
    for key in [k for k in res if k.startswith("step_profile_")]:
        lines += ["", f"Top operators by self time, `{key}` (share of the profiled "
                  "self time over a few training steps):", "", "| operator | share |",
                  "|---|---|"]
        lines += [f"| `{k}` | {v} |" for k, v in res[key].items()]
    lines += ["", "Definitions: `*_ms` median ms per training step (data, forward, backward, "
              "AdamW); `*_per_member_ratio` = (ms/step of K members / K) / (ms/step of one "
              "member), below 1 means batching pays; `spiral_mlp_fraction_of_peak` = the "
              "encoder's forward+backward FLOP rate over the measured matmul peak; "
              "`peak_rss_mb` / `peak_gpu_mb` peak memory of the benchmark process; "
              "`pixels_render_fps_{fast,full}_*` frames rendered per second by one process "
              "in each `world.mixer.render` mode (fast: kinematics and one reused "
              "mujoco.Renderer without shadows, reflections or skybox; full: dm_control's "
              "physics.render), after `pixels_env_load_s_*` to load the scene, and "
              "`pixels_render_fast_over_full_*` their ratio in the same run; "
              "`pixels_cnn_{auto,grouped}_k*_ms` ms/step of the 32-px CNN program (batch "
              "64 pairs, channels 16-32-64) with members looped on CPU (`auto`) or stacked "
              "as one grouped convolution (`grouped`); `planning_eval_s_{mlp,inverse}` seconds "
              "of one vector-world planning evaluation (latent-LQR regret and interpolation "
              "test at the default `eval.plan` budget) with the sweep-sized MLP encoder or "
              "the mixer's exact inverse; `attribution_*` the cost of the attribution "
              "diagnostics (design §7) in one default-sweep group of "
              "`attribution_group_members` members (sweeps/base_cpu.yaml): its training "
              "seconds, each member's evaluation seconds without attribution "
              "(`attribution_score_s_*`) and the seconds attribution adds "
              "(`attribution_member_s_*`, Gaussian latent and gennorm α 0.5), and "
              "`attribution_share_*` = the share of the group's wall time they add; "
              "`step_*` the training step as the speed issue judges it: the spiral step "
              "(MLP 4×256, batch 256×2, 256 slices) beside the paper code's step "
              "re-expressed in plain eager PyTorch (per-knot SIGReg, torch.optim.AdamW) "
              "and their ratio, the sweep-size step (MLP 4×64, 64 slices) per member, "
              "eager against torch.compile with its compile seconds (first step), with "
              "`--compiled` the SIGReg kernels alone compiled (`impl: compiled`; "
              "`_first_s`: the seconds of its first two steps, compilation included, "
              "from torch's on-disk cache when it holds the shape), and "
              "`step_make_sweep_wall_s` the wall time of the last `make sweep` that trained "
              "(reports/index.json). "
              "`identlab bench --only pixels` (or `planning`, `attribution`, `step`) reruns just "
              "those rows and keeps the others.", ""]
    return "\n".join(lines)


