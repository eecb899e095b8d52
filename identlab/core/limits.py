"""The bounds on user input, in one place: every size the tools accept is checked against
these before any work starts, so a typo (``eval.n=2e8``) is refused with an estimate
instead of growing to many GiB.
"""

from __future__ import annotations

__all__ = ["MAX_BYTES", "MAX_RUNS", "MAX_INT", "MAX_YAML_DEPTH", "MAX_CONFIG_BYTES",
           "MAX_CONFIG_NODES", "MAX_ECHO", "MAX_MESSAGE", "gib"]

# Any one estimated working set (a mixer's weights, a member's training step, an
# evaluation set, a batch of rendered frames): refused above this, with the estimate.
MAX_BYTES = 8 * 2**30

# Planned runs (cells x seeds) of one sweep, counted before the grid is expanded.
MAX_RUNS = 20_000

# Integers in configs and specs: exact in float64 and JSON readers (2**53).
MAX_INT = 2**53

# Nesting of mappings and lists in a YAML config, spec or override.
MAX_YAML_DEPTH = 32

# A config or spec file larger than this is refused, and so is one with more values than
# MAX_CONFIG_NODES once YAML aliases are expanded (an alias bomb).
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_NODES = 100_000

# Characters of user input quoted back in an error, and of a whole error line.
MAX_ECHO = 60
MAX_MESSAGE = 400


def gib(n_bytes: float) -> str:
    """``n_bytes`` as GiB for a message: ``12 GiB``, ``0.3 GiB``."""
    g = n_bytes / 2**30
    return f"{g:,.0f} GiB" if g >= 10 else f"{g:.2g} GiB"
