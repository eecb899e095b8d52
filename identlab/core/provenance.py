"""Provenance of a record: versions, git sha, device, plugins."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch

from identlab import __version__
from identlab.core import plugins

__all__ = ["git_sha", "provenance"]

def git_sha() -> str | None:
    """The short commit of the checkout identlab runs from, or None outside git (cached)."""
    if "sha" not in _PROV_CACHE:
        try:
            sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True, cwd=Path(__file__).resolve().parent, timeout=5)
            _PROV_CACHE["sha"] = sha.stdout.strip() or None if sha.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            _PROV_CACHE["sha"] = None
    return _PROV_CACHE["sha"]


def provenance(dev: torch.device) -> dict:
    """The record's provenance: versions, device, device name and torch threads."""
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor()
    out = {"identlab": __version__, "git_sha": git_sha(), "torch": torch.__version__,
           "python": platform.python_version(), "device": str(dev),
           "device_name": name or platform.machine(), "threads": torch.get_num_threads()}
    used = plugins.loaded()
    if used:  # the plugin modules imported in this process: "module==version, ..."
        out["plugins"] = ", ".join(p["module"] + (f"=={p['version']}" if p["version"] else "")
                                   for p in used)
    return out


_PROV_CACHE: dict[str, str | None] = {}
