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

__all__ = ["Dataset", "list_datasets", "dataset_info", "dataset_path", "load_dataset", "CTRData", "make_ctr",
           "iter_ctr", "expected_auc"]


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


# --------------------------------------------------------------------------------------------
# Synthetic CTR data with a known ground truth
# --------------------------------------------------------------------------------------------

@dataclass
class CTRData:
    """A synthetic click log: features ``X``, clicks ``y``, and the true click probability.

    ``bayes_auc`` is the expected ROC AUC of the Bayes-optimal scorer (the true probability)
    on these rows, with the label noise integrated out: no model can beat it on average.
    """

    X: pd.DataFrame
    y: "np.ndarray"
    probability: "np.ndarray"

    @property
    def bayes_auc(self) -> float:
        return expected_auc(self.probability)


def expected_auc(probability) -> float:
    """Expected ROC AUC of scoring rows by ``probability`` when labels ~ Bernoulli(probability).

    Over ordered pairs of distinct rows ``i != j``: ``sum p_i (1 - p_j) s_ij / sum p_i (1 - p_j)``
    with ``s_ij`` = 1 if ``p_i > p_j``, 1/2 on ties (the ratio of expected counts), in
    O(n log n).

    Examples
    --------
    >>> expected_auc([0.0, 1.0]), expected_auc([0.5, 0.5])
    (1.0, 0.5)
    """
    import numpy as np

    p = np.sort(np.asarray(probability, dtype=np.float64))
    values, starts, counts = np.unique(p, return_index=True, return_counts=True)
    pos = np.add.reduceat(p, starts)  # expected positives per distinct score
    neg = counts - pos
    neg_below = np.cumsum(neg) - neg  # expected negatives with a strictly lower score
    self_pairs = float(np.sum(p * (1 - p)))  # a row is never paired with itself
    numerator = float(np.sum(pos * neg_below) + 0.5 * (np.sum(pos * neg) - self_pairs))
    denominator = float(p.sum() * (len(p) - p.sum())) - self_pairs
    return numerator / denominator if denominator > 0 else float("nan")


@dataclass(frozen=True)
class _CTRField:
    name: str
    cardinality: int
    zipf: float  # frequency of the k-th most common value ~ 1 / k**zipf


def _ctr_fields(n_users: int, n_items: int) -> tuple:
    return (
        _CTRField("user", n_users, 1.05), _CTRField("item", n_items, 1.15),
        _CTRField("category", 200, 1.0), _CTRField("hour", 24, 0.3), _CTRField("weekday", 7, 0.1),
        _CTRField("device", 5, 1.5), _CTRField("site", 5_000, 1.1), _CTRField("position", 10, 1.2),
    )


# (field, field) pairs whose latent vectors interact, and one three-way interaction.
_CTR_PAIRS = (("user", "item"), ("user", "category"), ("item", "hour"), ("site", "position"), ("device", "item"))
_CTR_TRIPLE = ("user", "item", "site")


class _CTRModel:
    """The generator's ground truth: per-value frequencies, weights and latent vectors."""

    def __init__(self, n_users: int, n_items: int, dim: int, seed: int):
        import numpy as np

        rng = np.random.default_rng([seed, 0])
        self.fields = _ctr_fields(n_users, n_items)
        self.frequency, self.weight, self.latent = {}, {}, {}
        for f in self.fields:
            ranks = rng.permutation(f.cardinality) + 1  # popular ids are not simply the small ones
            freq = 1.0 / ranks.astype(np.float64) ** f.zipf
            self.frequency[f.name] = np.cumsum(freq / freq.sum())
            self.weight[f.name] = rng.normal(0, 0.3, f.cardinality).astype(np.float32)
            self.latent[f.name] = rng.normal(0, 1 / np.sqrt(dim), (f.cardinality, dim)).astype(np.float32)
        self.bias = -2.2  # about a 10% click rate

    def sample(self, n: int, rng) -> tuple:
        import numpy as np

        codes = {}
        for f in self.fields:
            idx = np.searchsorted(self.frequency[f.name], rng.random(n), side="right")
            codes[f.name] = np.minimum(idx, f.cardinality - 1)
        logit = np.full(n, self.bias, dtype=np.float64)
        for f in self.fields:
            logit += self.weight[f.name][codes[f.name]]
        for a, b in _CTR_PAIRS:
            logit += 1.5 * np.einsum("nd,nd->n", self.latent[a][codes[a]], self.latent[b][codes[b]])
        a, b, c = (self.latent[f][codes[f]] for f in _CTR_TRIPLE)
        logit += 4.0 * np.einsum("nd,nd,nd->n", a, b, c)
        probability = 1.0 / (1.0 + np.exp(-logit))
        y = (rng.random(n) < probability).astype(np.int8)
        X = pd.DataFrame({
            f.name: pd.Categorical.from_codes(codes[f.name].astype(np.int32), categories=range(f.cardinality))
            for f in self.fields
        })
        return X, y, probability


def make_ctr(n_rows: int = 100_000, *, n_users: int = 100_000, n_items: int = 50_000, embedding_dim: int = 8,
             seed: int = 0) -> CTRData:
    """A synthetic click log whose true click probability (and Bayes-optimal AUC) is known.

    Eight categorical fields (user, item, category, hour, weekday, device, site, position)
    with power-law value frequencies; the click logit is a bias + a weight per value + five
    pairwise latent-factor interactions (user x item, user x category, item x hour, site x
    position, device x item) + one three-way term (user x item x site). Columns are pandas
    categoricals of integer ids. The same ``seed`` gives the same ground truth, so
    :func:`iter_ctr` chunks and ``make_ctr`` rows come from one model.

    Examples
    --------
    >>> data = make_ctr(2_000, n_users=500, n_items=300, seed=0)
    >>> data.X.shape, list(data.X.columns[:3]), round(float(data.y.mean()), 2)
    ((2000, 8), ['user', 'item', 'category'], 0.17)
    >>> 0.5 < data.bayes_auc < 1.0
    True
    """
    return next(iter_ctr(n_rows, chunk_rows=n_rows, n_users=n_users, n_items=n_items,
                         embedding_dim=embedding_dim, seed=seed))


def iter_ctr(n_rows: int, *, chunk_rows: int = 1_000_000, n_users: int = 100_000, n_items: int = 50_000,
             embedding_dim: int = 8, seed: int = 0):
    """Yield :class:`CTRData` chunks of ``chunk_rows`` (the last may be shorter) from one model.

    Memory stays at one chunk: suitable for writing tens of millions of rows to Parquet.
    Chunk ``i`` has its own random stream: the rows are reproducible for a given ``seed``
    and ``chunk_rows``.
    """
    import numpy as np

    if n_rows < 1 or chunk_rows < 1:
        raise ValueError(f"n_rows and chunk_rows must be positive, got {n_rows} and {chunk_rows}.")
    model = _CTRModel(n_users, n_items, embedding_dim, seed)
    for i, start in enumerate(range(0, n_rows, chunk_rows)):
        rng = np.random.default_rng([seed, 1, i])
        X, y, p = model.sample(min(chunk_rows, n_rows - start), rng)
        yield CTRData(X, y, p)
