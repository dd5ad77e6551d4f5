"""Bundled datasets: ``list_datasets()``, ``dataset_info(name)`` and ``load_dataset(name)``.

The files ship inside the package (``tabular_suite.bundled``) with their source and licence
in ``manifest.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

__all__ = ["Dataset", "list_datasets", "dataset_info", "dataset_path", "load_dataset"]


def _manifest() -> dict[str, dict]:
    text = resources.files("tabular_suite.bundled").joinpath("manifest.json").read_text()
    return {entry["name"]: entry for entry in json.loads(text)}


def list_datasets() -> list[str]:
    """Names of the bundled datasets.

    Examples
    --------
    >>> list_datasets()
    ['adult', 'california_housing', 'credit_g']
    """
    return sorted(_manifest())


def dataset_info(name: str) -> dict:
    """Target, task, size, description, source and licence of a bundled dataset.

    Examples
    --------
    >>> dataset_info("adult")["target"]
    'class'
    """
    entries = _manifest()
    if name not in entries:
        raise ValueError(f"Unknown dataset {name!r}; bundled datasets: {', '.join(sorted(entries))}.")
    return dict(entries[name])


def dataset_path(name: str) -> Path:
    """Path of the bundled file (CSV, gzipped)."""
    return Path(str(resources.files("tabular_suite.bundled").joinpath(dataset_info(name)["file"])))


@dataclass
class Dataset:
    """A loaded dataset: the whole ``frame`` plus its ``target`` column and ``task``."""

    name: str
    frame: pd.DataFrame
    target: str
    task: str

    @property
    def X(self) -> pd.DataFrame:
        return self.frame.drop(columns=[self.target])

    @property
    def y(self) -> pd.Series:
        return self.frame[self.target]


def load_dataset(name: str) -> Dataset:
    """Load a bundled dataset.

    Examples
    --------
    >>> ds = load_dataset("california_housing")
    >>> ds.task, ds.X.shape
    ('regression', (20640, 9))
    """
    from .data.io import read_table

    info = dataset_info(name)
    return Dataset(name, read_table(dataset_path(name)), info["target"], info["task"])
