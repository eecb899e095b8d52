"""``identlab reproduce``: the paper's experiments side by side (make reproduce)."""

from __future__ import annotations

import sys
from pathlib import Path

# identlab.studies.reproduce.PAPER_SWEEPS (the parser is built without importing torch)
PAPER_SWEEPS = ("paper_scaling", "paper_gennorm", "paper_gennorm_stationary", "paper_grid")


def register_cli(sub) -> None:
    """Add ``identlab reproduce`` to the subcommands."""
    r = sub.add_parser("reproduce", help="the paper's experiments side by side "
                       "(make reproduce)")
    r.add_argument("overrides", nargs="*",
                   help="key=value overrides of every paper sweep's base run config (a "
                        "grid axis of the same key still wins)")
    r.add_argument("--out", help="root of the sweep directories (default runs/paper, "
                   "runs/paper-<preset> with a preset)")
    r.add_argument("--reports", default="reports", help="reports root (page: <reports>/paper)")
    r.add_argument("--preset", help="preset of the paper sweeps (paper: a GPU's budget; "
                   "spot: the paper's size at the cells where the CPU size disagrees, "
                   "shown on the default page)")
    r.add_argument("--workers", type=int, default=1,
                   help="local processes, one per core (default 1: in this process)")
    r.add_argument("--device", default="auto")
    r.add_argument("--only", nargs="*", help=f"a subset of {', '.join(PAPER_SWEEPS)}")
    r.add_argument("--no-progress", action="store_true")
    r.set_defaults(fn=_cmd, overrides_only=True)


def _note(line: str) -> None:
    print(line, file=sys.stderr)


def _cmd(args) -> int:
    from identlab.studies.reproduce import page_name, reproduce

    if args.only:  # --only a b train.steps=5: the overrides are not sweep names
        args.overrides += [a for a in args.only if "=" in a]
        args.only = [a for a in args.only if "=" not in a]
    out = args.out or Path("runs") / page_name(args.preset)
    page = reproduce(out, args.reports, preset=args.preset, device=args.device,
                     progress=not args.no_progress, only=args.only, workers=args.workers,
                     overrides=args.overrides, note=_note)
    print(f"report: {page}")
    return 0
