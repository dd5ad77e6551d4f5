"""The package version (its own module, so nothing below the package root imports the root)."""

__version__ = "0.1.0"
