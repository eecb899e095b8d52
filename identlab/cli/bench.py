"""``identlab bench``: the speed benchmark (make bench)."""

from __future__ import annotations

from pathlib import Path

SECTIONS = ("pixels", "planning", "attribution", "step")  # identlab.studies.bench.SECTIONS


def register_cli(sub) -> None:
    """Add ``identlab bench`` to the subcommands."""
    b = sub.add_parser("bench", help="speed benchmark -> reports/bench.md")
    b.add_argument("--out", default="reports/bench.md", help="markdown output path")
    b.add_argument("--device", default="auto")
    b.add_argument("--quick", action="store_true", help="few steps (smoke test)")
    b.add_argument("--only", choices=list(SECTIONS),
                   help="rerun one section and merge it into the existing report")
    b.add_argument("--compiled", action="store_true",
                   help="also time the torch.compile SIGReg (compiles for a minute or more)")
    b.set_defaults(fn=cmd_bench)


def cmd_bench(args) -> int:
    """``identlab bench``: time the trainer and write ``reports/bench.md`` and its JSON."""
    from identlab.core.io import ensure_writable_dir, write_json_atomic
    from identlab.studies.bench import run_bench, to_markdown

    out = Path(args.out)
    ensure_writable_dir(out.parent)
    res = run_bench(args.device, quick=args.quick, compiled=args.compiled, only=args.only)
    if args.only:
        from identlab.core.io import read_json

        old = read_json(out.with_suffix(".json"))
        if isinstance(old, dict):
            keep = {k: v for k, v in old.items() if not k.startswith(f"{args.only}_")}
            # the section's rows come from this run: its provenance goes with them (the
            # report's own provenance stays the one of the run that wrote the others)
            res[f"{args.only}_provenance"] = res["provenance"]
            res = {**{k: v for k, v in res.items() if k == "provenance"}, **keep,
                   **{k: v for k, v in res.items() if k not in keep}}
    out.write_text(to_markdown(res))
    write_json_atomic(out.with_suffix(".json"), res)
    print(to_markdown(res))
    return 0
