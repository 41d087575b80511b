"""The package version (a core module: the exporters record it)."""

__version__ = "0.1.0.dev0"
