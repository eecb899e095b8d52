"""Command line: ``identlab world|run|sweep|report|teach|bench``.

Bad input ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from identlab.core.fmt import cell_value, fixed
from identlab.core.io import UsageError, ensure_writable_dir, write_json_atomic
from identlab.core.schema import ConfigError
from identlab.measure.stats import SUMMARY_KEYS
from identlab.record import Record

EXIT_USAGE = 2


def _fail(msg: str) -> int:
    print(f"identlab: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        print(f"identlab: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _split_overrides(items: list[str]) -> tuple[list[str], list[int] | None]:
    """Pull ``seeds=[...]`` out of the overrides (parsed like every override, so a value
    that is not YAML is reported, not raised): a list of distinct integers >= 0."""
    from identlab.config import parse_overrides

    rest, seeds = [], None
    for it in items:
        if not it.startswith("seeds="):
            rest.append(it)
            continue
        [(_, val)] = parse_overrides([it])
        if isinstance(val, int) and not isinstance(val, bool):
            val = [val]
        if not (isinstance(val, list) and val
                and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                        for s in val)):
            raise ConfigError("seeds", f"= {val!r}: expected a list of integers >= 0, "
                              "e.g. seeds=[0,1,2]")
        dup = sorted({s for s in val if val.count(s) > 1})
        if dup:
            raise ConfigError("seeds", f"= {val!r}: seed {dup[0]} appears twice (each seed "
                              "is one member and one record)")
        seeds = val
    return rest, seeds


def _check_world_sizes(n: int, k: int) -> None:
    """``-n`` samples (>= 2: a variance, a correlation) and ``-k`` steps ahead (>= 1)."""
    if n < 2:
        raise ConfigError("-n", f"= {n}: the checks need at least 2 samples")
    if k < 1:
        raise ConfigError("-k", f"= {k}: the horizon z_t+k needs k >= 1")


def _finite_or_none(obj):
    """Plain data with every non-finite float (an undefined statistic) as None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


# ------------------------------------------------------------------ world
def cmd_world(args) -> int:
    from identlab.config import load_run
    from identlab.world.world import World

    _check_world_sizes(args.n, args.k)
    cfg = load_run(args.config, args.overrides)
    world = World(cfg.world, cfg.seed)
    diag = _finite_or_none(world.diagnostics(n=args.n, k=args.k))
    out = {"world": _world_desc(cfg), "flags": world.flags.as_dict(),
           "theorem_applies": world.theorem_applies, "reasons": world.reasons(),
           "checks": diag}
    if args.json:
        print(json.dumps(out, indent=1, allow_nan=False))
        return 0
    print(f"world   {out['world']}")
    f = out["flags"]
    print("flags   " + "  ".join(f"{k}={'yes' if v else 'no'}" for k, v in f.items()))
    if world.theorem_applies:
        print("verdict theorem applies: Gaussian latents, stationary additive-noise dynamics")
    else:
        print("verdict theorem does not apply because:")
        for r in world.reasons():
            print(f"        - {r}")
    print(f"mixer   {diag['mixer']}")
    print(f"checks  (n={diag['n']}, k={diag['k']})")
    rows = [("mean z_t", "mean_t"), ("var z_t", "var_t"), ("var z_t+k", "var_tk"),
            ("mean z_t+k", "mean_tk"), ("ex.kurt z_t", "kurtosis_t"),
            ("ex.kurt z_t+1", "kurtosis_t1"), ("ex.kurt z_t+k", "kurtosis_tk"),
            ("corr(z_t,z_t+1)", "one_step_corr"), ("rho", "rho"),
            ("KS p z_t vs z_t+k", "ks_pvalue_t_vs_tk")]
    for label, key in rows:
        print(f"  {label:<18}" + "  ".join(fixed(v) for v in diag[key]))
    print(f"  {'law ex.kurtosis':<18}{fixed(diag['kurtosis_law'])}")
    rt = diag["roundtrip_err"]
    print(f"  {'inverse roundtrip':<18}" + ("n/a" if rt is None else f"{rt:.2e}"))
    return 0


def _world_desc(cfg) -> str:
    from identlab.core.schema import to_dict

    w = to_dict(cfg.world)

    def sec(d):
        extra = ", ".join(f"{k}={v}" for k, v in d.items() if k != "kind")
        return f"{d['kind']}({extra})" if extra else d["kind"]

    return (f"dim={w['dim']}  latent={sec(w['latent'])}  dynamics={sec(w['dynamics'])}  "
            f"mixer={sec(w['mixer'])}")


# ------------------------------------------------------------------ run
def cmd_run(args) -> int:
    from identlab.config import load_run
    from identlab.learn.program import run_group
    from identlab.learn.train import resolve_device

    overrides, seeds = _split_overrides(args.overrides)
    base = load_run(args.config, overrides)
    resolve_device(args.device)  # a bad --device is refused before --out is created
    out_dir = ensure_writable_dir(args.out) if args.out else None
    cfgs = [base.with_seed(s) for s in (seeds or [base.seed])]
    records = run_group(cfgs, device=args.device, progress=not args.no_progress)
    if out_dir is not None:
        if len(records) == 1:
            write_json_atomic(out_dir / "record.json", records[0])
        else:
            for r in records:
                write_json_atomic(out_dir / f"record-seed{r['seed']}.json", r)
    if args.json:
        print(json.dumps(records[0] if len(records) == 1 else records, indent=1))
    else:
        print(format_records([Record.from_json(r) for r in records]))
        if out_dir is not None:
            print(f"records written to {out_dir}")
    return 0


def format_records(records: list[Record]) -> str:
    head = f"{'metric':<14}" + "".join(f"{'seed ' + str(r.seed):>12}" for r in records)
    lines = [head, "-" * len(head)]
    lines.append(f"{'status':<14}" + "".join(f"{r.status:>12}" for r in records))
    for key in SUMMARY_KEYS:
        vals = [r.metric(key) for r in records]
        if all(v is None for v in vals):
            continue
        lines.append(f"{key:<14}" + "".join(f"{cell_value(v):>12}" for v in vals))
    r0 = records[0]
    lines.append("")
    flags = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in r0.flags.items())
    lines.append(f"flags: {flags}; theorem applies: {'yes' if r0.theorem_applies else 'no'}")
    p = r0.provenance
    lines.append(f"device {p['device']}, {p['steps_per_s']:.1f} steps/s, "
                 f"wall {p['wall_s']:.1f} s for {len(records)} member(s)")
    return "\n".join(lines)


# ------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="identlab", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    w = sub.add_parser("world", help="a world's assumption flags and empirical checks")
    w.add_argument("config", nargs="?", help="run config YAML (default: built-in defaults)")
    w.add_argument("overrides", nargs="*", help="key=value overrides")
    w.add_argument("--json", action="store_true", help="print JSON")
    w.add_argument("-n", type=int, default=20000, help="samples for the checks")
    w.add_argument("-k", type=int, default=10, help="horizon for z_{t+k}")
    w.set_defaults(fn=cmd_world)

    r = sub.add_parser("run", help="train one model (or seeds=[...] as one batch)")
    r.add_argument("config", help="run config YAML")
    r.add_argument("overrides", nargs="*", help="key=value overrides; seeds=[0,1,2]")
    r.add_argument("--out", help="directory for record.json")
    r.add_argument("--json", action="store_true", help="print the record(s) as JSON")
    r.add_argument("--device", default="auto", help="auto (CUDA if available) | cpu | cuda")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(fn=cmd_run)

    _extra_commands(sub)
    return p


def _extra_commands(sub) -> None:
    """Commands that live in their own modules of this package."""
    from identlab.cli import bench, reproduce, sweep, teach

    for module in (sweep, bench, teach, reproduce):
        module.register_cli(sub)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "world" and args.config and "=" in args.config:
        args.overrides.insert(0, args.config)
        args.config = None
    try:
        return args.fn(args)
    except ConfigError as e:
        return _fail(str(e))
    except UsageError as e:
        return _fail(str(e))
    except BrokenPipeError:  # output piped into `head` etc.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("identlab: interrupted", file=sys.stderr)
        return 130
