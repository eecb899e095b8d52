"""CUDA readiness, checked without a GPU.

A tensor that identlab creates without naming its device lands on torch's *default*
device. On a CPU-only machine that is the CPU, like everything else, so the bug stays
hidden; on a GPU it is a CPU tensor meeting a CUDA tensor. Here the default device is
``meta`` (tensors without data) while the program's device is given explicitly as the
CPU: any such tensor then fails the run, at the site that created it. The runs below
go through a fit, evaluation, attribution, the trajectory probe, a supervised warm
start, planning, the Python API and the ``run`` and ``sweep`` commands, over worlds and
learners that take different code paths.

Also checked: ``--device cuda`` without CUDA is one line naming ``--device`` and exit 2
(see also ``test_cli.py::test_bad_device_exit_2`` for ``run --device cuda:0`` and
``test_bad_inputs.py`` for a bogus name); pinned memory and non-blocking copies only
under a CUDA check; no ``.cuda()`` call anywhere in identlab (source scans).

Configs are built *before* the default device changes: only the program runs under it.
"""

from __future__ import annotations

import ast
import contextlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tiny_config import TINY_SPIRAL

import identlab as il
from identlab.cli import main
from identlab.config import load_run
from identlab.run.program import run_group
from identlab.sigreg import epps_pulley

PACKAGE = Path(il.__file__).parent
HOST = torch.device("cpu")

TINY = ["world.mixer={kind: spiral}", "learner.encoder.hidden=8", "learner.encoder.depth=1",
        "learner.objective.slices=8", "train.steps=6", "train.batch=32", "train.data_chunk=3",
        "eval.n=200", "eval.knn=5", "eval.sigreg_slices=8", "eval.plan.enabled=true",
        "eval.plan.pairs=5", "eval.plan.transitions=200", "eval.at_steps=[0,6]"]


@contextlib.contextmanager
def default_device(device):
    """``torch.set_default_device(device)`` for the block, the previous default after."""
    prev = torch.get_default_device()
    torch.set_default_device(device)
    try:
        yield
    finally:
        # the CPU is the default of a process that never set one: leave no context behind
        torch.set_default_device(None if prev.type == "cpu" else prev)


def test_knot_weights_default_is_the_host():
    """``knot_weights`` without a device builds its knots on the host (``gaussian_expectation``
    and ``_knot_values`` call it so, then read the values back as floats)."""
    with default_device("meta"):
        t, phi, w = epps_pulley.knot_weights()
        assert {t.device.type, phi.device.type, w.device.type} == {"cpu"}
        assert math.isfinite(epps_pulley.gaussian_expectation())


def test_the_guard_catches_an_unnamed_device():
    """The premise: under the guard a tensor without a device has no data, so using it
    with the program's tensors fails."""
    x = torch.ones(3, device=HOST)
    with default_device("meta"):
        stray = torch.ones(3)
        assert stray.is_meta and not torch.ones(3, device=HOST).is_meta
        with pytest.raises((NotImplementedError, RuntimeError)):
            (x + stray).tolist()
    assert not torch.ones(1).is_meta  # restored


# ------------------------------------------------------------------ runs under the guard
# (overrides on top of TINY, whether the record has a verdict, its theorem target)
RUNS = {
    "spiral": ([], True, "z"),
    "warm_start": (["learner.init.kind=supervised", "learner.init.steps=5",
                    "learner.init.pool=500"], True, "z"),
    "mlp_dim4_direct": (["world.dim=4", "world.mixer={kind: mlp}",
                         "learner.objective.impl=direct"], True, "z"),
    "coupling_matched": (["world.dim=4", "world.mixer={kind: coupling}",
                          "learner.encoder={kind: matched}"], True, "z"),
    "linear_predictor_per_view": (["world.mixer={kind: sinusoid}", "learner.predictor.kind=linear",
                                   "learner.objective.views=per_view"], True, "z"),
    "copula_ou": (["world.latent={kind: uniform}", "world.dynamics={kind: copula_ou}"],
                  True, "u"),
    "laplace_ar": (["world.latent.kind=laplace", "world.dynamics.kind=laplace_ar"], True, None),
    "drift": (["world.dynamics={kind: drift}"], True, None),
    "whiten": (["learner.objective={kind: whiten}"], False, "z"),
    "infonce": (["learner.objective={kind: infonce}"], False, "z"),
}


def _check(rec: dict, verdict: bool, target: str | None, plan: bool = True,
           trajectory: bool = True) -> None:
    m = rec["metrics"]
    assert rec["status"] == "ok", rec["status"]
    assert rec["provenance"]["device"] == "cpu"
    assert math.isfinite(m["r2_hz"]) and math.isfinite(m["sigreg_stat"])
    assert (m.get("verdict") is not None) is verdict, m.get("verdict")
    assert m.get("theorem_target") == target
    assert ("plan_regret" in m) is plan and ("traj_steps" in m) is trajectory
    if trajectory:
        assert m["traj_steps"] == [0, 6]


@pytest.mark.parametrize("name", list(RUNS))
def test_run_names_every_device(name):
    extra, verdict, target = RUNS[name]
    cfg = load_run("configs/first.yaml", TINY + extra)
    with default_device("meta"):
        rec = run_group([cfg], device=HOST, progress=False)[0]
    _check(rec, verdict, target)


def test_rendered_world_names_every_device(gl, tmp_path, monkeypatch):
    """Frames (FramePairStream), the CNN encoder and planning on rendered observations."""
    monkeypatch.setenv("IDENTLAB_FRAME_CACHE", str(tmp_path / "frames"))
    monkeypatch.setenv("IDENTLAB_RENDER_WORKERS", "1")
    cfg = load_run("configs/first.yaml", TINY + [
        "world.mixer={kind: reacher, pairs: 8}", "learner.encoder={kind: cnn}", "eval.n=64",
        "eval.plan.rendered_transitions=64", "eval.plan.rendered_pairs=3", "eval.at_steps=[]"])
    with default_device("meta"):
        rec = run_group([cfg], device=HOST, progress=False)[0]
    _check(rec, True, "z", trajectory=False)


def test_python_api_names_every_device():
    cfgs = [load_run("configs/first.yaml", TINY).with_seed(s) for s in (0, 1)]
    rng = np.random.default_rng(0)
    h_t, h_t1, z_t, z_t1 = (rng.standard_normal((200, 2)) for _ in range(4))
    with default_device("meta"):
        fitted = il.fit(cfgs, device=HOST, progress=False)
        scores = [fitted.score(k) for k in range(2)]
        h = fitted.embed(np.zeros((3, 2)), member=1)
        h_t_from_tensor = fitted.embed(torch.zeros(3, 2, device=HOST), member=1)
        records = fitted.records()
        direct = il.evaluate(h_t, h_t1, z_t, z_t1, rho=0.95)
    assert [s["verdict"] for s in scores] == [r.metrics["verdict"] for r in records]
    assert h.shape == (3, 2) and np.isfinite(h).all() and np.array_equal(h, h_t_from_tensor)
    assert math.isfinite(direct["r2_hz"]) and math.isfinite(direct["sigreg_stat"])


def test_cli_run_and_sweep_name_every_device(tmp_path, capsys):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_SPIRAL))
    spec = {"name": "tiny", "base": TINY_SPIRAL, "grid": {"world.dynamics.rho": [0.5, 0.9]},
            "seeds": [0]}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    with default_device("meta"):
        assert main(["run", str(tmp_path / "tiny.yaml"), "--device", "cpu",
                     "--out", str(tmp_path / "run")]) == 0
        assert main(["sweep", str(tmp_path / "spec.yaml"), "--device", "cpu",
                     "--executor", "local", "--out", str(tmp_path / "sweep")]) == 0
    capsys.readouterr()
    assert (tmp_path / "run" / "record.json").exists()
    assert len(list((tmp_path / "sweep" / "records").rglob("*.json"))) == 2


# ------------------------------------------------------------------ --device cuda, no CUDA
@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_one_line_and_exit_2(command, device, tmp_path, capsys,
                                                  monkeypatch):
    """Also on a machine with CUDA: the check asks ``torch.cuda.is_available``."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_SPIRAL))
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(
        {"name": "tiny", "base": TINY_SPIRAL, "grid": {"world.dynamics.rho": [0.9]},
         "seeds": [0]}))
    src = tmp_path / ("tiny.yaml" if command == "run" else "spec.yaml")
    out = tmp_path / "out"
    assert main([command, str(src), "--device", device, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--device" in err and "CUDA" in err and len(err.splitlines()) == 1
    assert not out.exists()


# ------------------------------------------------------------------ source scans
def _sources() -> list[tuple[Path, str]]:
    return [(p, p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))]


def cuda_calls(source: str) -> list[int]:
    """Lines of ``<expr>.cuda(...)`` calls (``torch.cuda.<fn>(...)`` is not one)."""
    return [n.lineno for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr == "cuda"]


def _mentions_cuda(node: ast.AST) -> bool:
    return "cuda" in ast.unparse(node)


def unguarded_host_copies(source: str) -> list[int]:
    """Lines of pinned-memory or non-blocking copies (``.pin_memory()``, a ``pin_memory=``
    or ``non_blocking=`` argument) that no CUDA check guards: neither an enclosing
    ``if``/conditional expression whose test mentions ``cuda`` nor an argument value that
    does (``non_blocking=dev.type == "cuda"``)."""
    tree = ast.parse(source)
    parent = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}

    def guarded(node: ast.AST) -> bool:
        child, node = node, parent.get(node)
        while node is not None:
            if isinstance(node, (ast.If, ast.IfExp)) and child is not node.test \
                    and _mentions_cuda(node.test):
                return True
            child, node = node, parent.get(node)
        return False

    found = []
    for n in ast.walk(tree):
        if not isinstance(n, ast.Call):
            continue
        if isinstance(n.func, ast.Attribute) and n.func.attr == "pin_memory" \
                and not guarded(n):
            found.append(n.lineno)
        for kw in n.keywords:
            if kw.arg in ("pin_memory", "non_blocking") and not (
                    (isinstance(kw.value, ast.Constant) and not kw.value.value)
                    or _mentions_cuda(kw.value) or guarded(n)):
                found.append(n.lineno)
    return sorted(set(found))


def test_cuda_call_scanner_finds_a_planted_call():
    planted = ('"""x.cuda() in a docstring is no call."""\n'
               "import torch\n"
               "ok = torch.cuda.is_available()  # x.cuda() in a comment\n"
               "y = x.cuda()\n"
               "z = model.to(dev).cuda(0)\n")
    assert cuda_calls(planted) == [4, 5]
    assert cuda_calls("ok = torch.cuda.is_available() and torch.cuda.device_count()\n") == []


def test_no_cuda_calls_in_identlab():
    found = [f"{p.relative_to(PACKAGE.parent)}:{line}" for p, src in _sources()
             for line in cuda_calls(src)]
    assert not found, f".cuda() pins a tensor to one GPU; use .to(device): {found}"


def test_host_copy_scanner_on_planted_snippets():
    planted = ("a = x.pin_memory()\n"
               "b = x.to(dev, non_blocking=True)\n"
               "c = torch.empty(3, pin_memory=True)\n"
               "if dev.type == 'cuda':\n"
               "    d = x.pin_memory().to(dev, non_blocking=True)\n"
               "e = x.to(dev, non_blocking=dev.type == 'cuda')\n"
               "f = x.pin_memory() if torch.cuda.is_available() else x\n"
               "g = x.to(dev, non_blocking=False)\n"
               "if x.pin_memory().is_cuda:\n"
               "    pass\n")
    assert unguarded_host_copies(planted) == [1, 2, 3, 9]


def test_pinned_and_non_blocking_copies_only_under_a_cuda_check():
    found = [f"{p.relative_to(PACKAGE.parent)}:{line}" for p, src in _sources()
             for line in unguarded_host_copies(src)]
    assert not found, f"pinned memory / non_blocking without a CUDA check: {found}"
