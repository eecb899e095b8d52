"""The teaching walkthrough (``identlab teach``), one module per README section.

* :mod:`.runs` — the walkthrough's sweep specs (``sweeps/teach/``), planned, trained and
  stored by the sweep engine (resumable), and the per-run results frame;
* :mod:`.text` — number and table formatting, sections and figure files;
* :mod:`.compare` — the reference-vs-violation comparison the condition sections share;
* :mod:`.worlds` — the worlds the pictures and diagnostics use;
* :mod:`.world`, :mod:`.unmix`, :mod:`.spectrum`, :mod:`.gaussianity`,
  :mod:`.stationarity`, :mod:`.additive`, :mod:`.timescales`, :mod:`.bound`,
  :mod:`.planning`, :mod:`.facts` — sections 1–9 and the facts list;
* :mod:`.walkthrough` — :func:`~.walkthrough.write_teaching`, which puts them together.
"""
