"""``identlab teach``: the teaching walkthrough (make teach)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from identlab.cli.teach import write_teaching


def cmd_teach(args) -> int:
    from identlab.core.io import UsageError, ensure_writable_dir
    from identlab.learn.train import resolve_device

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(args.out)!r} is a file, not a directory")
    try:
        device = resolve_device(args.device)
    except (ValueError, RuntimeError) as e:
        raise UsageError(f"--device {args.device!r}: {e}") from None
    if args.threads < 1:
        raise UsageError(f"--threads {args.threads}: must be at least 1")
    ensure_writable_dir(out)
    progress = not args.no_progress and sys.stderr.isatty()
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    try:
        path = write_teaching(out, quick=args.quick, device=device, progress=progress)
    finally:
        torch.set_num_threads(before)
    print(f"walkthrough written to {path}")
    return 0


def register_cli(sub) -> None:
    t = sub.add_parser("teach", help="a walkthrough of the theorem from real small runs")
    t.add_argument("--out", default="reports/teaching", help="output directory")
    t.add_argument("--quick", action="store_true",
                   help="tiny budgets (seconds; for tests): the README says so")
    t.add_argument("--device", default="auto", help="auto (CUDA if available) | cpu | cuda")
    t.add_argument("--threads", type=int, default=1,
                   help="CPU threads while training (default 1: the batched programs are "
                        "small, and extra threads mostly spin on a shared machine)")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.set_defaults(fn=cmd_teach)
