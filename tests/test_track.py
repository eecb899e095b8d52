"""Tracking: the callback interface, the TensorBoard tracker (read back from its event
files) with the local and the process executor, and the error without the extra."""

import copy
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from tiny_config import TINY_RUN

from identlab.cli import main
from identlab.core.schema import ConfigError
from identlab.sweep.run import run_sweep
from identlab.sweep.spec import load_spec
from identlab.sweep.store import Store
from identlab.track import Tracker, check_specs, register

STEPS = 110  # log_every 50: the history holds the losses at steps 50, 100 and 110


def track_spec(name="track"):
    base = copy.deepcopy(TINY_RUN)
    base["train"]["steps"] = STEPS
    return load_spec({"name": name, "description": "tracking test", "base": base,
                      "grid": {"train.lr": [0.001, 0.003]}, "seeds": [0]})


def logged_steps(rec):
    every, n = rec["train"]["log_every"], len(rec["train"]["history"])
    return [min((i + 1) * every, STEPS) for i in range(n)]


def read_run(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def text(acc, tag):
    return acc.Tensors(f"{tag}/text_summary")[0].tensor_proto.string_val[0].decode()


def json_text(acc, tag):  # a four-space indented JSON block
    return json.loads("\n".join(line[4:] for line in text(acc, tag).splitlines()))


def close32(a, b):
    return math.isclose(a, float(np.float32(b)), rel_tol=1e-6, abs_tol=1e-30)


def check_event_files(out, tb):
    recs = Store(out).records()
    assert len(recs) == 2
    assert sorted(p.name for p in tb.iterdir()) == sorted(r["hash"] for r in recs)
    for rec in recs:
        acc = read_run(tb / rec["hash"])
        loss = acc.Scalars("train/loss")
        assert [e.step for e in loss] == logged_steps(rec)
        assert all(close32(e.value, h) for e, h in zip(loss, rec["train"]["history"]))
        scalars = {k: v for k, v in rec["metrics"].items()
                   if isinstance(v, (int, float)) and math.isfinite(v)}
        assert scalars and set(acc.Tags()["scalars"]) == \
            {"train/loss"} | {f"metrics/{k}" for k in scalars}
        for key, value in scalars.items():
            (event,) = acc.Scalars(f"metrics/{key}")
            assert event.step == STEPS and close32(event.value, value), key
        assert json_text(acc, "config") == rec["config"]
        assert json_text(acc, "sweep") == rec["sweep"]
        assert text(acc, "status") == "ok"


@pytest.mark.parametrize("executor", ["local", "process", "slurm"])
def test_tensorboard_event_files_match_the_records(tmp_path, executor):
    out, tb = tmp_path / "out", tmp_path / "tb"
    options = {"local": {}, "process": {"workers": 2, "max_members": 1},
               "slurm": {"max_members": 1, "slurm": {"cluster": "local", "time_min": 5}}}
    if executor == "slurm":
        pytest.importorskip("submitit")
    options = options[executor]
    summary = run_sweep(track_spec(), out, executor=executor, progress=False,
                        trackers=[{"kind": "tensorboard", "dir": str(tb)}], **options)
    assert summary["trained"] == 2
    check_event_files(out, tb)


class MemoryTracker(Tracker):
    events: list = []

    def __init__(self, tag):
        self.tag = tag

    def on_start(self, member, name, config, meta):
        self.events.append(("start", self.tag, member, name, config, meta))

    def on_step(self, member, step, loss):
        self.events.append(("step", self.tag, member, step, loss))

    def on_record(self, record):
        self.events.append(("record", self.tag, record))

    def close(self):
        self.events.append(("close", self.tag))


register("memory")(MemoryTracker)


def test_custom_tracker_sees_every_logged_step_and_record(tmp_path):
    MemoryTracker.events.clear()
    run_sweep(track_spec(), tmp_path, progress=False, trackers={"kind": "memory", "tag": "a"})
    ev = MemoryTracker.events
    recs = {r["hash"]: r for r in Store(tmp_path).records()}
    assert {e[0] for e in ev} == {"start", "step", "record", "close"}
    assert all(e[1] == "a" for e in ev) and ev[-1][0] == "close"
    starts = {e[2]: e for e in ev if e[0] == "start"}  # one chunk of two members
    assert sorted(starts) == [0, 1] and {e[3] for e in starts.values()} == set(recs)
    for member, (_, _, _, name, config, meta) in starts.items():
        rec = recs[name]
        assert config == rec["config"] and meta == rec["sweep"]
        steps = [(e[3], e[4]) for e in ev if e[0] == "step" and e[2] == member]
        assert steps == list(zip(logged_steps(rec), rec["train"]["history"]))
    records = [e[2] for e in ev if e[0] == "record"]
    assert sorted(r["hash"] for r in records) == sorted(recs)
    assert all(r["sweep"] == recs[r["hash"]]["sweep"] for r in records)
    # a resumed sweep trains nothing and builds no tracker
    MemoryTracker.events.clear()
    run_sweep(track_spec(), tmp_path, progress=False, trackers=[{"kind": "memory", "tag": "b"}])
    assert MemoryTracker.events == []


def test_bad_tracker_specs_are_refused():
    with pytest.raises(ConfigError, match="kind = 'nope': one of .*tensorboard"):
        check_specs([{"kind": "nope"}])
    with pytest.raises(ConfigError, match="'kind'"):
        check_specs(["tensorboard"])
    with pytest.raises(ConfigError, match="--track.*'dir'"):
        check_specs([{"kind": "tensorboard"}])
    with pytest.raises(ConfigError, match="unknown option 'logdir'"):
        check_specs([{"kind": "tensorboard", "dir": "x", "logdir": "y"}])
    assert check_specs(None) == []


def test_missing_extra_is_one_config_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as err:
        run_sweep(track_spec(), out, progress=False,
                  trackers=[{"kind": "tensorboard", "dir": str(tmp_path / "tb")}])
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("--track")
    assert "pip install 'identlab[track]'" in msg
    assert not out.exists() and not (tmp_path / "tb").exists()  # refused before writing
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"name": "t", "description": "d",
                                "base": TINY_RUN, "grid": {"train.lr": [0.001]},
                                "seeds": [0]}))
    assert main(["sweep", str(spec), "--out", str(out), "--track", str(tmp_path / "tb"),
                 "--no-progress"]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and "identlab[track]" in err_lines[0]
    assert not out.exists()


def test_importing_identlab_does_not_import_tensorboard():
    code = ("import sys, identlab, identlab.track, identlab.sweep.run, identlab.sweep.executors;"
            "print(any(m == 'tensorboard' or m.startswith(('tensorboard.', "
            "'torch.utils.tensorboard')) for m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert res.stdout.strip() == "False"
