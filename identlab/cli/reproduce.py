"""``identlab reproduce``: the paper's experiments side by side (make reproduce)."""

from __future__ import annotations

from pathlib import Path

from identlab.studies.reproduce import PAPER_SWEEPS, page_name, reproduce


def register_cli(sub) -> None:
    r = sub.add_parser("reproduce", help="the paper's experiments side by side "
                       "(make reproduce)")
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
    r.set_defaults(fn=_cmd)


def _cmd(args) -> int:
    out = args.out or Path("runs") / page_name(args.preset)
    page = reproduce(out, args.reports, preset=args.preset, device=args.device,
                     progress=not args.no_progress, only=args.only,
                     workers=args.workers)
    print(f"report: {page}")
    return 0
