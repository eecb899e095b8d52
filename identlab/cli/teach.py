"""``identlab teach``: command-line glue for the walkthrough in
:mod:`identlab.studies.teach` (its runs are the sweep specs under ``sweeps/teach/``)."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["register_cli", "cmd_teach"]


DEFAULT_RUNS = "runs/teaching"  # identlab.studies.teach.walkthrough.DEFAULT_RUNS


def cmd_teach(args) -> int:
    """``identlab teach``: train the walkthrough's runs (resumable) and write it."""
    import torch

    from identlab.core.io import UsageError, ensure_writable_dir
    from identlab.learn.train import resolve_device
    from identlab.studies.teach.walkthrough import write_teaching

    for flag, path in (("--out", Path(args.out)), ("--runs", Path(args.runs))):
        if path.exists() and not path.is_dir():
            raise UsageError(f"{flag} {str(path)!r} is a file, not a directory")
    try:
        device = resolve_device(args.device)
    except (ValueError, RuntimeError) as e:
        raise UsageError(f"--device {args.device!r}: {e}") from None
    if args.threads < 1:
        raise UsageError(f"--threads {args.threads}: must be at least 1")
    out = ensure_writable_dir(Path(args.out))
    try:
        runs = ensure_writable_dir(Path(args.runs))
    except UsageError as e:
        raise UsageError(str(e).replace("--out", "--runs", 1)) from None
    progress = not args.no_progress and sys.stderr.isatty()
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    try:
        path = write_teaching(out, quick=args.quick, device=device, runs_dir=runs,
                              progress=progress)
    finally:
        torch.set_num_threads(before)
    print(f"walkthrough written to {path} (records in {runs})")
    return 0


def register_cli(sub) -> None:
    """Add ``identlab teach`` to the subcommands."""
    t = sub.add_parser("teach", help="a walkthrough of the theorem from real small runs")
    t.add_argument("--out", default="reports/teaching", help="output directory")
    t.add_argument("--runs", default=DEFAULT_RUNS,
                   help="record store of the walkthrough's runs (resumable; default "
                        f"{DEFAULT_RUNS})")
    t.add_argument("--quick", action="store_true",
                   help="tiny budgets (seconds; for tests): the README says so")
    t.add_argument("--device", default="auto", help="auto (CUDA if available) | cpu | cuda")
    t.add_argument("--threads", type=int, default=1,
                   help="CPU threads while training (default 1: the batched programs are "
                        "small, and extra threads mostly spin on a shared machine)")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.set_defaults(fn=cmd_teach)
