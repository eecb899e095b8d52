"""What ``--dry-run`` and ``--print-config`` print: the resolved config, how the runs are
cut into batched programs, their memory estimate and, when ``identlab bench`` has
written its numbers, the expected training time. Nothing is trained or written."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

__all__ = ["config_yaml", "memory_lines", "read_bench", "time_line", "gib_text"]

BENCH_FILES = (Path("reports") / "bench.json", Path("reports") / "bench.md")
_MD_ROW = re.compile(r"^\|\s*`([A-Za-z0-9_]+)`\s*\|\s*([^|]+?)\s*\|\s*$")

# bench row families: (key prefix, member counts timed, what the bench config is)
_FAMILIES = {
    "sweep": ("sweep", (1, 16, 64), "MLP hidden 64, depth 4, batch 256"),
    "spiral": ("spiral", (1, 16, 64), "MLP hidden 256, depth 4, batch 256"),
    "pixels": ("pixels_cnn_auto", (1, 4), "32-px CNN, batch 64"),
}
_BENCH_BATCH = {"sweep": 256, "spiral": 256, "pixels": 64}


def config_yaml(cfg) -> str:
    """A run config, every default filled in, as YAML."""
    import yaml

    from identlab.core.schema import to_dict

    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None,
                          width=88).rstrip()


def gib_text(n: float) -> str:
    """A byte count in B, KiB, MiB or GiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def memory_lines(cfg, members: int) -> list[str]:
    """The training step of ``members`` batched copies of ``cfg`` and the largest other
    working set (evaluation, frames, ...), from the size estimates."""
    from identlab.sizes import bytes_per_member, size_estimates

    per = bytes_per_member(cfg)
    others = [(f, b) for f, b in size_estimates(cfg) if f != "train.batch" and b > 0]
    lines = [f"memory: about {gib_text(per * members)} for training {members} member(s) "
             f"({gib_text(per)} each)"]
    if others:
        field, need = max(others, key=lambda fb: fb[1])
        lines.append(f"        largest other working set: {field}, about {gib_text(need)}")
    return lines


# ------------------------------------------------------------------ bench numbers
def read_bench(root: Path | None = None) -> tuple[dict, Path] | None:
    """The numbers ``identlab bench`` wrote (``reports/bench.json``, else the table of
    ``reports/bench.md``), or None."""
    for rel in BENCH_FILES:
        path = (root or Path()) / rel
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        if path.suffix == ".json":
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if isinstance(data, dict):
                return data, path
            continue
        data = {}
        for line in text.splitlines():
            m = _MD_ROW.match(line)
            if m:
                try:
                    data[m.group(1)] = float(m.group(2))
                except ValueError:
                    pass
        if data:
            return data, path
    return None


def _family(cfg) -> str:
    from identlab.core.registry import MIXERS

    if MIXERS.get(cfg.world.mixer.kind).rendered:
        return "pixels"
    return "spiral" if getattr(cfg.learner.encoder, "hidden", 0) > 128 else "sweep"


def _ms_per_step(points: list[tuple[int, float]], k: int) -> float:
    """ms per step of ``k`` batched members, interpolated between the timed member
    counts (linear in the members beyond the largest)."""
    points = sorted(points)
    if k <= points[0][0]:
        return points[0][1] * k / points[0][0]
    for (k0, m0), (k1, m1) in zip(points, points[1:]):
        if k <= k1:
            return m0 + (m1 - m0) * (k - k0) / (k1 - k0)
    k_last, m_last = points[-1]
    return m_last * k / k_last


def time_line(groups: list[tuple[object, int]], parallel: int = 1) -> str:
    """``expected time: ...`` for batched groups ``(config, members)``, trained one after
    another (or ``parallel`` at a time)."""
    found = read_bench()
    if found is None:
        return "expected time: unknown (run make bench)"
    bench, path = found
    total, used = 0.0, set()
    for cfg, members in groups:
        fam = _family(cfg)
        prefix, counts, _ = _FAMILIES[fam]
        points = [(k, bench.get(f"{prefix}_k{k}_ms")) for k in counts]
        points = [(k, float(v)) for k, v in points
                  if isinstance(v, (int, float)) and math.isfinite(v) and v > 0]
        if not points:
            return f"expected time: unknown ({path} has no {prefix}_k*_ms; run make bench)"
        scale = cfg.train.batch / _BENCH_BATCH[fam]
        total += _ms_per_step(points, members) * scale * cfg.train.steps / 1000
        used.add(fam)
    total /= max(1, min(parallel, len(groups)))
    basis = "; ".join(f"{_FAMILIES[f][0]}_k*_ms ({_FAMILIES[f][2]})" for f in sorted(used))
    device = ""
    prov = bench.get("provenance")
    if isinstance(prov, dict) and prov.get("device"):
        device = f" on {prov['device']}"
    return (f"expected time: about {_duration(total)} of training (rough: scaled from "
            f"{path}{device}, {basis}; evaluation not included)")


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s" if s >= 1 else f"{s:.1f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
