"""monitord: a synthetic-monitoring daemon."""

__version__ = "0.1.0"
