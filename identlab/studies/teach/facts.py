"""The facts list: every symbolic and numeric check of :mod:`identlab.theory`."""

from __future__ import annotations

from identlab.measure import theory
from identlab.studies.teach.text import md_table

__all__ = ["facts_section"]


def facts_section() -> str:
    """A Markdown section tabulating every checked theory fact."""
    facts = theory.all_facts()
    rows = [[f.name, f.holds, f.headline] for f in facts]
    n_ok = sum(f.holds for f in facts)
    return "\n".join(["## Facts checked", "",
                      f"{n_ok} of {len(facts)} symbolic and numeric facts from "
                      "`identlab.theory.all_facts()` hold.", "",
                      md_table(["fact", "holds", "headline"], rows), ""])
