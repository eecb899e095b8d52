"""SIGReg and the Gaussianity terms: the statistics both training (identlab.learn) and
measurement (identlab.measure) use, below both of them.

:mod:`identlab.sigreg.epps_pulley` holds the sliced Epps–Pulley statistic (design §4)
and its implementations (the ``SIGREG_IMPLS`` registry); :mod:`identlab.sigreg.terms`
holds the family of Gaussianity terms an objective may put beside its alignment term
(the ``GAUSSIANITY`` registry), of which Epps–Pulley is one.
"""

from identlab.sigreg.epps_pulley import *  # noqa: F401,F403
from identlab.sigreg.epps_pulley import __all__ as _ep_all
from identlab.sigreg.terms import EppsPulley, GaussianityTerm

__all__ = [*_ep_all, "GaussianityTerm", "EppsPulley"]
