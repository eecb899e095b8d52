"""identlab: where LeJEPA's linear-identifiability theorem holds, and where it breaks."""

__version__ = "0.1.0"
