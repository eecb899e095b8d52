"""``identlab sweep``, ``identlab report`` and ``identlab sweep-all``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from identlab.core.schema import ConfigError

# The parser is built without importing torch (``identlab --help`` stays fast): each
# command imports what it needs when it runs.


# ------------------------------------------------------------------ CLI
def register_cli(sub) -> None:
    """Add ``identlab sweep``, ``report`` and ``sweep-all`` to the subcommands."""
    s = sub.add_parser("sweep", help="run a sweep spec (resumable)")
    s.add_argument("spec", help="sweep spec YAML (e.g. sweeps/gaussianity.yaml)")
    s.add_argument("overrides", nargs="*",
                   help="key=value overrides of the spec's base run config (a grid axis "
                        "of the same key still wins)")
    s.add_argument("--out", help="output directory (default runs/<name>)")
    s.add_argument("--executor", default="local", help="local | process | slurm")
    s.add_argument("--resume", action="store_true",
                   help="allow adding to a directory that holds another spec's records")
    s.add_argument("--preset", help="a preset of the spec, e.g. paper")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda")
    s.add_argument("--max-members", type=int, help="cap on members per batched program")
    s.add_argument("--workers", type=int, default=2, help="process executor: workers")
    s.add_argument("--partition", help="slurm: partition")
    s.add_argument("--time-min", type=int, default=60, help="slurm: minutes per job")
    s.add_argument("--gpus", type=int, default=0, help="slurm: GPUs per job")
    s.add_argument("--report", action="store_true", help="write the report afterwards")
    s.add_argument("--reports", default="reports", help="reports root for --report")
    s.add_argument("--track", metavar="DIR",
                   help="write TensorBoard event files under DIR, one run per record "
                        "(needs the track extra: pip install 'identlab[track]')")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--dry-run", action="store_true",
                   help="print the plan (cells, seeds, batched groups, memory, expected "
                        "time); train and write nothing")
    s.add_argument("--print-config", action="store_true",
                   help="print the resolved base run config as YAML and exit")
    s.set_defaults(fn=cmd_sweep, overrides_only=True)

    r = sub.add_parser("report", help="tables, figures and README for a sweep directory")
    r.add_argument("dir", help="a sweep output directory")
    r.add_argument("--reports", default="reports", help="reports root")
    r.set_defaults(fn=cmd_report)

    a = sub.add_parser("sweep-all", help="the default sweeps and their reports (make sweep)")
    a.add_argument("--out", default="runs/sweeps", help="root of the sweep directories")
    a.add_argument("--reports", default="reports", help="reports root")
    a.add_argument("--preset", help="preset for every sweep (e.g. paper)")
    a.add_argument("--device", default="auto")
    a.add_argument("--only", nargs="*", help="names of default sweeps to run")
    a.add_argument("--no-progress", action="store_true")
    a.set_defaults(fn=cmd_sweep_all)


def note(line: str) -> None:
    """A note line (an override the grid overrules) on stderr."""
    print(line, file=sys.stderr)


def cmd_sweep(args) -> int:
    """``identlab sweep``: run (or resume) a spec, with ``key=value`` overrides of its
    base; ``--dry-run`` and ``--print-config`` train and write nothing."""
    from identlab.core.io import check_writable_target
    from identlab.sweep.run import check_options, run_sweep
    from identlab.sweep.spec import grid_clashes, load_spec

    spec = load_spec(args.spec, args.preset, overrides=args.overrides, plugins=args.plugin)
    for line in grid_clashes(spec, args.overrides):
        note(line)
    if args.print_config:
        return print_sweep_config(spec)
    check_options(executor=args.executor, device=args.device,
                  max_members=args.max_members, workers=args.workers)
    if args.dry_run:
        return dry_run_sweep(spec, args)
    if args.report:
        check_writable_target(args.reports, "--reports")
    # run_sweep checks the folder (an empty path too), the frame cache and the disk
    # before it writes
    out = Path("runs") / spec.name if args.out is None else args.out
    slurm = {"partition": args.partition, "time_min": args.time_min, "gpus": args.gpus}
    trackers = [] if args.track is None else [{"kind": "tensorboard", "dir": args.track}]
    summary = run_sweep(spec, out, executor=args.executor, resume=args.resume,
                        device=args.device, progress=not args.no_progress,
                        max_members=args.max_members, workers=args.workers, slurm=slurm,
                        trackers=trackers)
    for line in store_notes(summary, out):
        print(line)
    print(f"sweep {summary['name']}: {summary['planned']} runs planned, "
          f"{summary['skipped']} already done, {summary['trained']} trained, "
          f"{summary['diverged']} diverged, {summary['wall_s']} s -> {out}")
    if args.report:
        from identlab.show.report import write_report

        path = write_report(out, args.reports)
        print(f"report: {path}")
    return 0


def print_sweep_config(spec) -> int:
    """``--print-config``: the base run config after the overrides, as YAML, and the
    number of cells and runs."""
    from identlab.cli.plan import config_yaml
    from identlab.config import load_run
    from identlab.sweep.spec import run_count

    runs = run_count(spec.grid, spec.zip, len(spec.seeds))
    print(f"# sweep {spec.name}: base run config (overrides applied); "
          f"{runs // len(spec.seeds)} cell(s) x {len(spec.seeds)} seed(s) = {runs} runs")
    if spec.grid:
        print(f"# grid axes (set per cell on top of this): {', '.join(spec.grid)}")
    print(config_yaml(load_run(spec.base)))
    return 0


def dry_run_sweep(spec, args) -> int:
    """``--dry-run``: cells, seeds, members, the batched groups as the executor cuts
    them, the memory of the largest group and the expected time."""
    from identlab.cli.plan import memory_lines, time_line
    from identlab.learn.train import resolve_device
    from identlab.sweep.executors import chunks
    from identlab.sweep.spec import plan

    todo = plan(spec)  # every config's sizes were checked when the spec loaded
    groups = chunks(todo, args.device, args.max_members)
    print(f"sweep {spec.name}{'' if spec.preset is None else f' (preset {spec.preset})'}: "
          f"{len(todo) // len(spec.seeds)} cell(s) x {len(spec.seeds)} seed(s) = "
          f"{len(todo)} members")
    print(f"axes: {', '.join(f'{k} ({len(v)})' for k, v in spec.grid.items()) or 'none'}")
    print(f"seeds: {', '.join(map(str, spec.seeds))}")
    print(f"batched groups: {len(groups)} (executor {args.executor}, device "
          f"{resolve_device(args.device)}"
          f"{'' if args.max_members is None else f', --max-members {args.max_members}'})")
    shown = 10
    for i, g in enumerate(groups[:shown]):
        cfg = g[0][0]
        n_cells = len({m["cell_index"] for _, m in g})
        print(f"  group {i + 1}: {len(g)} member(s) from {n_cells} cell(s), "
              f"{cfg.train.steps} steps")
    if len(groups) > shown:
        print(f"  ... and {len(groups) - shown} more group(s)")
    biggest = max(groups, key=len)
    for line in memory_lines(biggest[0][0], len(biggest)):
        print(line.replace("memory:", "memory (largest group):", 1))
    parallel = args.workers if args.executor == "process" else 1
    print(time_line([(g[0][0], len(g)) for g in groups], parallel=parallel))
    print("dry run: nothing trained, nothing written")
    return 0


MAX_NOTED = 5  # quarantined records listed one per line; beyond that, a count


def store_notes(summary: dict, out: Path) -> list[str]:
    """Lines about the store itself: records set aside as untrusted (one line each, or a
    count and the quarantine folder), and a directory that vanished mid-run."""
    lines = []
    moved = summary.get("quarantined") or []
    if 0 < len(moved) <= MAX_NOTED:
        lines += [f"quarantined {path}: {why}; retrained" for path, why in moved]
    elif moved:
        lines.append(f"quarantined {len(moved)} untrusted records (truncated, corrupt or "
                     f"foreign) into {out / 'records' / 'quarantine'}; retrained")
    if summary.get("recreated"):
        lines.append(f"{out} vanished during the run and was recreated with spec.json: "
                     f"{summary['written']} written by this run, {summary['on_disk']} of "
                     f"{summary['planned']} planned records on disk (rerun to redo the "
                     "lost ones)")
    return lines


def cmd_report(args) -> int:
    """``identlab report``: tables, figures and README for a sweep directory."""
    from identlab.show.report import write_report

    if not (Path(args.dir) / "spec.json").is_file():
        raise ConfigError("dir", f"{args.dir!r} is not a sweep directory (no spec.json)")
    print(f"report: {write_report(args.dir, args.reports)}")
    return 0


def cmd_sweep_all(args) -> int:
    """``identlab sweep-all``: the default sweeps, their reports and the index."""
    from identlab.show.findings import sweep_findings
    from identlab.show.report import load_records, write_index, write_report
    from identlab.sweep.run import DEFAULT_SWEEPS, run_sweep, sweeps_dir
    from identlab.sweep.spec import load_spec

    names = args.only or list(DEFAULT_SWEEPS)
    root = sweeps_dir()
    t0 = time.perf_counter()
    timings, findings = {}, {}
    for name in names:
        path = root / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError("--only", f"= {name!r}: no sweep spec {path}")
        spec = load_spec(path, args.preset, plugins=args.plugin)
        out = Path(args.out) / spec.name
        # resume: a changed default spec reuses the records it still plans, and the
        # report keeps to the current plan
        summary = run_sweep(spec, out, device=args.device, progress=not args.no_progress,
                            resume=True)
        rep = write_report(out, args.reports)
        timings[spec.report_name] = summary
        findings[spec.report_name] = sweep_findings(
            spec.report_name, load_records(out), f"{spec.report_name}/README.md")
        for line in store_notes(summary, out):
            print(line)
        print(f"{name}: {summary['trained']} trained, {summary['skipped']} reused, "
              f"{summary['wall_s']} s -> {rep}", flush=True)
    total = round(time.perf_counter() - t0, 1)
    write_index(args.reports, timings, total, findings)
    print(f"all sweeps: {total} s; index: {Path(args.reports) / 'README.md'}")
    return 0
