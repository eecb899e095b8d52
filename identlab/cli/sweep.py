"""``identlab sweep``, ``identlab report`` and ``identlab sweep-all``."""

from __future__ import annotations

import time
from pathlib import Path

from identlab.core.schema import ConfigError
from identlab.sweep.run import DEFAULT_SWEEPS, check_options, run_sweep, sweeps_dir
from identlab.sweep.spec import load_spec


# ------------------------------------------------------------------ CLI
def register_cli(sub) -> None:
    s = sub.add_parser("sweep", help="run a sweep spec (resumable)")
    s.add_argument("spec", help="sweep spec YAML (e.g. sweeps/gaussianity.yaml)")
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
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(fn=cmd_sweep)

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


def cmd_sweep(args) -> int:
    from identlab.core.io import UsageError, check_writable_target

    spec = load_spec(args.spec, args.preset)
    check_options(executor=args.executor, device=args.device,
                  max_members=args.max_members, workers=args.workers)
    if args.report:
        check_writable_target(args.reports, "--reports")
    # run_sweep checks the folder, the frame cache and the disk before it writes
    if args.out == "":
        raise UsageError("--out '': an empty path; name a folder")
    out = Path(Path("runs") / spec.name if args.out is None else args.out)
    slurm = {"partition": args.partition, "time_min": args.time_min, "gpus": args.gpus}
    summary = run_sweep(spec, out, executor=args.executor, resume=args.resume,
                        device=args.device, progress=not args.no_progress,
                        max_members=args.max_members, workers=args.workers, slurm=slurm)
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
    from identlab.show.report import write_report

    if not (Path(args.dir) / "spec.json").is_file():
        raise ConfigError("dir", f"{args.dir!r} is not a sweep directory (no spec.json)")
    print(f"report: {write_report(args.dir, args.reports)}")
    return 0


def cmd_sweep_all(args) -> int:
    from identlab.show.report import write_index, write_report

    names = args.only or list(DEFAULT_SWEEPS)
    root = sweeps_dir()
    t0 = time.perf_counter()
    timings = {}
    for name in names:
        path = root / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError("--only", f"= {name!r}: no sweep spec {path}")
        spec = load_spec(path, args.preset)
        out = Path(args.out) / spec.name
        # resume: a changed default spec reuses the records it still plans, and the
        # report keeps to the current plan
        summary = run_sweep(spec, out, device=args.device, progress=not args.no_progress,
                            resume=True)
        rep = write_report(out, args.reports)
        timings[spec.report_name] = summary
        for line in store_notes(summary, out):
            print(line)
        print(f"{name}: {summary['trained']} trained, {summary['skipped']} reused, "
              f"{summary['wall_s']} s -> {rep}", flush=True)
    total = round(time.perf_counter() - t0, 1)
    write_index(args.reports, timings, total)
    print(f"all sweeps: {total} s; index: {Path(args.reports) / 'README.md'}")
    return 0
