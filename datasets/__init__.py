"""Bundled data files (installed as ``tabular_suite.bundled``); see README.md and manifest.json."""
