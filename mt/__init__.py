"""mt: a small, fast, readable English→Japanese neural machine translation suite."""

__version__ = "0.1.0"
