"""The package version, sent in every request's User-Agent."""

__version__ = "0.1.0"
