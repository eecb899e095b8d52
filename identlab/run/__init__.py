"""The run layer: from run configs to scored records, above learn and measure.

It builds each member's world, learner and data streams (:mod:`~identlab.run.data`),
trains a group of members as one batched program (:mod:`~identlab.run.program`), scores
each member on its held-out pairs (:mod:`~identlab.run.score`, with trajectories and
warm starts in :mod:`~identlab.run.trajectory` and :mod:`~identlab.run.warmstart`) and
returns typed records. learn and measure never import it, nor each other.
"""
