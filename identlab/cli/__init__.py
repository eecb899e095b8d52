"""Command line: ``identlab world|run|sweep|report|teach|bench``.

Bad input ends with one line on stderr and exit code 2, never a traceback. Building the
parser imports no torch (``identlab --help`` is instant); a command imports what it
needs when it runs.
"""

from __future__ import annotations

import argparse
import collections
import errno
import json
import math
import os
import sys

from identlab.core.fmt import cell_value, fixed
from identlab.core.io import UsageError, ensure_writable_dir, write_json_atomic
from identlab.core.schema import ConfigError, one_line, short

EXIT_USAGE = 2


def _fail(msg: str) -> int:
    """One line on stderr (control characters escaped, the middle of a very long message
    elided) and exit code 2."""
    from identlab.core.limits import MAX_MESSAGE

    print(f"identlab: error: {one_line(msg, MAX_MESSAGE)}", file=sys.stderr)
    return EXIT_USAGE


def _is_stdout_error(e: OSError) -> bool:
    """An error raised by writing to standard output (not by a file the command wrote)."""
    return e.filename is None and e.errno in (errno.ENOSPC, errno.EIO, errno.EPIPE,
                                              errno.EBADF)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line; ``key=value`` overrides may also follow the flags
    (``identlab run cfg.yaml --out d train.steps=5``)."""
    parser = build_parser()
    _autocomplete(parser)
    args, extra = parser.parse_known_args(argv)
    if extra:
        takes = hasattr(args, "overrides")
        stray = [a for a in extra if not (takes and "=" in a and not a.startswith("-"))]
        if stray:
            parser.error(f"unrecognized arguments: {one_line(' '.join(stray), 200)}")
        args.overrides.extend(extra)
    if getattr(args, "overrides_only", False):  # sweep, reproduce: a word is not an override
        stray = [a for a in args.overrides if "=" not in a or a.startswith("-")]
        if stray:
            parser.error(f"unrecognized arguments: {one_line(' '.join(stray), 200)}")
    return args


def _load_plugins(args) -> None:
    """Import the installed entry-point plugins and every ``--plugin`` module before the
    command runs (commands that build configs also write them into the configs)."""
    from identlab.core import plugins

    args.plugin = list(dict.fromkeys(getattr(args, "plugin", None) or []))
    plugins.load_entry_points()
    plugins.load(args.plugin, "--plugin", source="--plugin")


def _autocomplete(parser) -> None:
    """Shell completion when argcomplete is installed (``pip install identlab[completion]``)
    and the shell asks for it (argcomplete sets ``_ARGCOMPLETE``); otherwise nothing."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


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
            raise ConfigError("seeds", f"= {short(val)}: expected a list of integers >= 0, "
                              "e.g. seeds=[0,1,2]")
        dup = sorted(s for s, n in collections.Counter(val).items() if n > 1)
        if dup:
            raise ConfigError("seeds", f"= {short(val)}: seed {dup[0]} appears twice (each seed "
                              "is one member and one record)")
        seeds = val
    return rest, seeds


def _check_world_sizes(n: int, k: int, dim: int) -> None:
    """``-n`` samples (>= 2: a variance, a correlation) and ``-k`` steps ahead (>= 1),
    each within the memory bound: the checks hold n·dim float64 values per step up to
    z_t+k and a few copies for the statistics."""
    from identlab.core.limits import MAX_BYTES, MAX_INT, gib

    if n < 2:
        raise ConfigError("-n", f"= {n}: the checks need at least 2 samples")
    if k < 1:
        raise ConfigError("-k", f"= {k}: the horizon z_t+k needs k >= 1")
    for flag, v in (("-n", n), ("-k", k)):
        if v > MAX_INT:
            raise ConfigError(flag, f"= {v:.3g}: integers are limited to 2**53")
    need = 8 * n * dim * (k + 1 + 16)  # the (k+1, n, dim) trajectory and the statistics
    if need > MAX_BYTES:
        flag, v = ("-k", k) if k + 1 > 16 else ("-n", n)
        raise ConfigError(flag, f"= {v:,}: the checks need about {gib(need)} for -n {n:,} "
                          f"and -k {k:,} (limit {gib(MAX_BYTES)}); use a smaller {flag}")


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
    """``identlab world``: a world's assumption flags and empirical checks."""
    from identlab.config import load_run
    from identlab.world.world import World

    cfg = load_run(args.config, args.overrides, plugins=args.plugin)
    _check_world_sizes(args.n, args.k, cfg.world.dim)
    world = World(cfg.world, cfg.seed)
    diag = _finite_or_none(world.diagnostics(n=args.n, k=args.k))
    out = {"world": _world_desc(cfg), "flags": world.flags.as_dict(),
           "theorem_applies": world.theorem_applies,
           "theorem_target": world.theorem_target, "target_note": world.target_note(),
           "reasons": world.reasons(), "checks": diag}
    if args.json:
        print(json.dumps(out, indent=1, allow_nan=False))
        return 0
    print(f"world   {out['world']}")
    f = out["flags"]
    print("flags   " + "  ".join(f"{k}={'yes' if v else 'no'}" for k, v in f.items())
          + "  (of z itself)")
    if world.theorem_target == "z":
        print("verdict theorem applies to z: Gaussian latents, stationary additive-noise "
              "dynamics")
    elif world.theorem_target == "u":
        print("verdict theorem applies to u = Φ⁻¹(F(z)): the world is Gaussian OU in u, seen "
              "through the invertible mixer g∘F⁻¹∘Φ; LeJEPA should recover u up to a "
              "rotation, not z")
    else:
        print("verdict theorem does not apply (no componentwise reparametrization of z is "
              "Gaussian OU; the world tests the converse) because:")
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
    """``identlab run``: train one config (``seeds=[...]``: one batched program), print
    the table or JSON; ``--dry-run`` and ``--print-config`` train and write nothing."""
    from identlab.config import load_run
    from identlab.learn.train import resolve_compile, resolve_device
    from identlab.run.program import run_group
    from identlab.sizes import check_group_size
    from identlab.world.pixels import check_frame_cache

    overrides, seeds = _split_overrides(args.overrides)
    base = load_run(args.config, overrides, plugins=args.plugin)
    if args.print_config:
        return _print_run_config(base, seeds)
    check_group_size(base, len(seeds or [base.seed]), "seeds")
    cfgs = [base.with_seed(s) for s in (seeds or [base.seed])]
    # a bad --device, or train.compile=on where it cannot run, is refused before --out
    # is created
    dev = resolve_device(args.device)
    resolve_compile(base.train.compile, dev, say=lambda _: None)
    if args.dry_run:
        return _dry_run(base, cfgs, dev)
    check_frame_cache(cfgs)
    # --out must take a record before training starts, not after
    out_dir = ensure_writable_dir(args.out) if args.out is not None else None
    records = run_group(cfgs, device=args.device, progress=not args.no_progress)
    if out_dir is not None:
        names = (["record.json"] if len(records) == 1
                 else [f"record-seed{r['seed']}.json" for r in records])
        for i, (name, r) in enumerate(zip(names, records)):
            try:
                write_json_atomic(out_dir / name, r)
            except OSError as e:
                raise UsageError(f"--out {short(str(out_dir))}: cannot write {name} "
                                 f"({e.strerror or e}); {i} of {len(records)} records "
                                 "written, each whole") from None
    if args.json:
        print(json.dumps(records[0] if len(records) == 1 else records, indent=1))
    else:
        from identlab.record import Record

        print(format_records([Record.from_json(r) for r in records]))
        if out_dir is not None:
            print(f"records written to {out_dir}")
    return 0


def _print_run_config(base, seeds: list[int] | None) -> int:
    from identlab.cli.plan import config_yaml

    if seeds:
        print(f"# seeds: [{', '.join(map(str, seeds))}] (one member each; seed below is "
              "the first)")
        base = base.with_seed(seeds[0])
    print(config_yaml(base))
    return 0


def _dry_run(base, cfgs, device) -> int:
    """``run --dry-run``: the resolved config (its sizes were checked when it was built),
    the members, the memory estimate and the expected time."""
    from identlab.cli.plan import config_yaml, memory_lines, time_line

    print("# resolved run config")
    print(config_yaml(cfgs[0]))
    print("")
    print(f"members: {len(cfgs)} (seeds {', '.join(str(c.seed) for c in cfgs)}), one "
          f"batched program of {base.train.steps} steps on {device}")
    for line in memory_lines(base, len(cfgs)):
        print(line)
    print(time_line([(base, len(cfgs))]))
    print("dry run: nothing trained, nothing written")
    return 0


def _verdict_text(v) -> str:
    """A record's verdict (``recovered``, ``optimizer_gap``, ...; None where attribution
    did not run) for the run table."""
    return "n/a" if v is None else one_line(str(v), 40)


def format_records(records) -> str:
    """The run table: one column per record (status, verdict, summary metrics), then
    the world's flags and the timing."""
    from identlab.measure.stats import SUMMARY_KEYS

    verdicts = [_verdict_text(r.metric("verdict")) for r in records]
    w = max(12, *(len(v) + 2 for v in verdicts))  # optimizer_gap+nonrotation fits
    keys = [k for k in SUMMARY_KEYS if any(r.metric(k) is not None for r in records)]
    lw = max(14, *(len(k) + 2 for k in keys)) if keys else 14
    head = f"{'metric':<{lw}}" + "".join(f"{'seed ' + str(r.seed):>{w}}" for r in records)
    lines = [head, "-" * len(head)]
    lines.append(f"{'status':<{lw}}" + "".join(f"{r.status:>{w}}" for r in records))
    lines.append(f"{'verdict':<{lw}}" + "".join(f"{v:>{w}}" for v in verdicts))
    for key in keys:
        vals = [r.metric(key) for r in records]
        lines.append(f"{key:<{lw}}" + "".join(f"{cell_value(v):>{w}}" for v in vals))
    r0 = records[0]
    lines.append("")
    flags = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in r0.flags.items())
    target = r0.metric("theorem_target")
    applies = "no" if not r0.theorem_applies else (f"yes, to {target}" if target else "yes")
    lines.append(f"flags: {flags}; theorem applies: {applies}")
    p = r0.provenance
    lines.append(f"device {p['device']}, {p['steps_per_s']:.1f} steps/s, "
                 f"wall {p['wall_s']:.1f} s for {len(records)} member(s)")
    return "\n".join(lines)


# ------------------------------------------------------------------ main
EPILOG = """shell completion (needs pip install 'identlab[completion]'): add
  eval "$(register-python-argcomplete identlab)"
to ~/.bashrc or ~/.zshrc."""


def _version() -> str:
    """The installed package's version (the source tree's when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("identlab")
    except PackageNotFoundError:
        import identlab

        return identlab.__version__


class _Version(argparse.Action):
    """``--version``: the version is looked up only when asked for."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="print the version and exit"):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"identlab {_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The ``identlab`` parser; building it imports no torch."""
    p = _Parser(prog="identlab", description=__doc__.splitlines()[0], epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action=_Version)
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
    r.add_argument("--dry-run", action="store_true",
                   help="print the resolved config, members, memory and expected time; "
                        "train and write nothing")
    r.add_argument("--print-config", action="store_true",
                   help="print the resolved run config as YAML and exit")
    r.set_defaults(fn=cmd_run)

    _extra_commands(sub)
    _plugin_option(p, default=[])
    for cmd in sub.choices.values():
        _plugin_option(cmd, default=argparse.SUPPRESS)  # keeps one given before the command
    return p


def _plugin_option(parser, default) -> None:
    parser.add_argument("--plugin", action="append", default=default, metavar="MODULE",
                        help="import MODULE first (it registers its own kinds); repeatable")


def _extra_commands(sub) -> None:
    """Commands that live in their own modules of this package."""
    from identlab.cli import bench, reproduce, sweep, teach

    for module in (sweep, bench, teach, reproduce):
        module.register_cli(sub)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run one command; return its exit code (2 for bad input, 130 for
    Ctrl-C, 143 for SIGTERM)."""
    from identlab.sweep.executors import EXIT_TERMINATED, Terminated, sigterm_raises

    try:
        args = _parse(argv)
    except SystemExit as e:  # --help (0) or a usage error, already printed (2)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    if args.cmd == "world" and args.config and "=" in args.config:
        args.overrides.insert(0, args.config)
        args.config = None
    # SIGTERM (preemption, kill) ends a run like Ctrl-C; a repeated one is ignored
    with sigterm_raises():
        try:
            _load_plugins(args)
            rc = args.fn(args)
            sys.stdout.flush()  # a full or closed stdout fails here, not at exit
            return rc
        except ConfigError as e:
            return _fail(str(e))
        except UsageError as e:
            return _fail(str(e))
        except BrokenPipeError:  # output piped into `head` etc.
            _silence_stdout()
            sys.stderr.close()
            return 0
        except OSError as e:  # a write that failed (full disk, stdout on /dev/full, ...)
            if _is_stdout_error(e):
                _silence_stdout()
                return _fail(f"cannot write to standard output ({e.strerror or e})")
            where = f"{e.filename}: " if e.filename else ""
            return _fail(f"{where}{e.strerror or e}")
        except Terminated:
            print("identlab: terminated", file=sys.stderr)
            return EXIT_TERMINATED
        except KeyboardInterrupt:
            print("identlab: interrupted", file=sys.stderr)
            return 130
