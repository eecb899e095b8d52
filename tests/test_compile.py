"""train.compile: the compiled step agrees with the eager one, `on` without a compiler is
refused by name, `auto` never compiles where it would not pay (CPU) or cannot run."""

from __future__ import annotations

import math

import pytest
import torch

from identlab.cli import main
from identlab.config import load_run
from identlab.core.schema import ConfigError, to_dict
from identlab.learn import train as train_mod
from identlab.learn.train import resolve_compile
from identlab.run.program import run_group

TINY = ["world.mixer={kind: spiral}", "learner.encoder.hidden=8", "learner.encoder.depth=1",
        "learner.objective.slices=8", "train.steps=8", "train.batch=32", "train.data_chunk=4",
        "eval.n=200", "eval.knn=5", "eval.sigreg_slices=8"]
CPU = torch.device("cpu")


def test_default_configs_do_not_name_the_option():
    cfg = load_run("configs/first.yaml")
    assert cfg.train.compile == "auto" and "compile" not in to_dict(cfg)["train"]


def test_auto_is_eager_on_cpu_and_falls_back_on_cuda_without_triton(monkeypatch):
    big = train_mod.AUTO_COMPILE_MEMBER_STEPS
    assert resolve_compile("auto", CPU) == "eager"  # a small group stays eager
    assert resolve_compile("off", CPU, big) == "eager"
    if train_mod._compiler_problem(CPU) is None:
        assert resolve_compile("auto", CPU, big) == "kernels"
        assert resolve_compile("on", CPU) == "step"
    monkeypatch.setattr(train_mod.importlib.util, "find_spec", lambda name: None)
    said = []
    assert resolve_compile("auto", torch.device("cuda"), big, say=said.append) == "eager"
    assert len(said) == 1 and "triton" in said[0] and "\n" not in said[0]
    monkeypatch.setattr(train_mod.shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    said.clear()
    assert resolve_compile("auto", CPU, big, say=said.append) == "eager"  # no compiler
    assert len(said) == 1 and "compiler" in said[0]
    assert resolve_compile("auto", CPU, 1, say=said.append) == "eager" and len(said) == 1


def test_compiled_kernels_leave_the_config_and_the_loss_alone():
    """The kernels plan swaps the objective of the loss closure only: the learners, the
    configs (so the record hash) and the objective's loss formula stay the same."""
    from identlab.core.registry import SIGREG_IMPLS
    from identlab.run.program import build_program

    cfg = load_run("configs/first.yaml", TINY)
    prog = build_program([cfg], CPU, compiled_kernels=True)
    obj = prog.learners[0].objective
    assert obj.params.impl == "auto" and cfg.learner.objective.impl == "auto"
    swapped = obj.with_compiled_kernels()
    assert swapped.params.impl == ("compiled" if "compiled" in SIGREG_IMPLS else "auto")
    named = load_run("configs/first.yaml", [*TINY, "learner.objective.impl=direct"])
    direct = build_program([named], CPU).learners[0].objective
    assert direct.with_compiled_kernels().params.impl == "direct"  # named impls stay


def test_on_without_a_compiler_names_the_field(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(train_mod.shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(ConfigError) as e:
        resolve_compile("on", CPU)
    assert e.value.field == "train.compile" and "compiler" in str(e.value)
    out = tmp_path / "o"
    assert main(["run", "configs/first.yaml", *TINY, "train.compile=on", "--device", "cpu",
                 "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "train.compile" in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.skipif(train_mod._compiler_problem(CPU) is not None,
                    reason="torch.compile cannot run here")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside dynamo's tracing
def test_compiled_and_eager_steps_agree():
    """The same two members, eager and compiled: the same losses and metrics within float32
    tolerance (inductor reorders reductions), and the compile time in the provenance."""
    eager = run_group([load_run("configs/first.yaml", [*TINY, "train.compile=off", f"seed={s}"])
                       for s in (0, 1)], device=CPU, progress=False)
    comp = run_group([load_run("configs/first.yaml", [*TINY, "train.compile=on", f"seed={s}"])
                      for s in (0, 1)], device=CPU, progress=False)
    for a, b in zip(eager, comp):
        assert a["status"] == b["status"] == "ok"
        for x, y in zip(a["train"]["history"], b["train"]["history"]):
            assert math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-6)
        for key in ("r2_hz", "cca_min", "sigreg_stat"):
            assert math.isclose(a["metrics"][key], b["metrics"][key], rel_tol=1e-3,
                                abs_tol=1e-4), key
        assert b["provenance"]["compile_s"] > 0 and "compile_s" not in a["provenance"]
