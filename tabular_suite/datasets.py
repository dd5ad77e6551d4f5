"""Bundled datasets: ``list_datasets()``, ``dataset_info(name)`` and ``load_dataset(name)``.

The files ship inside the package (``tabular_suite.bundled``) with their source and licence
in ``manifest.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .core.files import atomic_path

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "Dataset",
    "list_datasets",
    "dataset_info",
    "dataset_path",
    "load_dataset",
    "CTRData",
    "make_ctr",
    "iter_ctr",
    "expected_auc",
    "fetch_movielens",
    "fetch_bars",
    "data_home",
]


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
    y: np.ndarray
    probability: np.ndarray

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
        _CTRField("user", n_users, 1.05),
        _CTRField("item", n_items, 1.15),
        _CTRField("category", 200, 1.0),
        _CTRField("hour", 24, 0.3),
        _CTRField("weekday", 7, 0.1),
        _CTRField("device", 5, 1.5),
        _CTRField("site", 5_000, 1.1),
        _CTRField("position", 10, 1.2),
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
        X = pd.DataFrame(
            {
                f.name: pd.Categorical.from_codes(codes[f.name].astype(np.int32), categories=range(f.cardinality))
                for f in self.fields
            }
        )
        return X, y, probability


def make_ctr(
    n_rows: int = 100_000, *, n_users: int = 100_000, n_items: int = 50_000, embedding_dim: int = 8, seed: int = 0
) -> CTRData:
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
    return next(
        iter_ctr(n_rows, chunk_rows=n_rows, n_users=n_users, n_items=n_items, embedding_dim=embedding_dim, seed=seed)
    )


def iter_ctr(
    n_rows: int,
    *,
    chunk_rows: int = 1_000_000,
    n_users: int = 100_000,
    n_items: int = 50_000,
    embedding_dim: int = 8,
    seed: int = 0,
):
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


# --------------------------------------------------------------------------------------------
# MovieLens (downloaded on demand, verified, cached; never shipped)
# --------------------------------------------------------------------------------------------

MOVIELENS_URL = "https://files.grouplens.org/datasets/movielens/"
#: variant -> (archive name, member holding the ratings, its format, MD5 published by GroupLens)
_MOVIELENS = {
    "100k": ("ml-100k.zip", "ml-100k/u.data", "tab", "0e33842e24a9c977be4e0107933c0723"),
    "1m": ("ml-1m.zip", "ml-1m/ratings.dat", "colons", "c4d9eecfca2ab87c1945afe126590906"),
    "25m": ("ml-25m.zip", "ml-25m/ratings.csv", "csv", "6b51fb2759a8657d3bfcbfc42b592ada"),
}


def data_home(path=None) -> Path:
    """Where downloaded data is cached: ``path``, else ``$TABULAR_SUITE_DATA``, else
    ``~/.cache/tabular_suite``."""
    import os

    return Path(path or os.environ.get("TABULAR_SUITE_DATA") or Path.home() / ".cache" / "tabular_suite")


def _md5(path: Path) -> str:
    import hashlib

    digest = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, target: Path, checksum: str | None, timeout: float) -> None:
    """Download to a temporary file beside ``target``, verify the MD5 (if given), then rename."""
    import urllib.error
    import urllib.request

    try:
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
            actual = _md5(tmp)
            if checksum is not None and actual != checksum:
                raise ValueError(f"Download of {url} is corrupted: MD5 {actual}, expected {checksum}. Try again.")
    except urllib.error.URLError as exc:
        raise ValueError(f"Could not download {url}: {getattr(exc, 'reason', exc)}.") from None


def fetch_movielens(
    variant: str = "1m",
    *,
    data_home_path=None,
    base_url: str = MOVIELENS_URL,
    checksum: str | None = None,
    timeout: float = 60.0,
) -> pd.DataFrame:
    """MovieLens ratings as a DataFrame with columns user, item, rating, timestamp.

    The archive is downloaded from GroupLens on first use, verified against its published
    MD5 and cached (see :func:`data_home`); later calls read the cached archive (its checksum
    is checked again, and a damaged file is downloaded anew). MovieLens may not be
    redistributed, so it never ships with the package. ``base_url`` and ``checksum`` point
    elsewhere (a mirror, or the test suite's local server).

    Examples
    --------
    Needs the network on first use (the test suite serves a synthetic archive locally):

    .. code-block:: python

        ratings = fetch_movielens("1m")   # 1,000,209 rows: user, item, rating, timestamp
        ratings.groupby("user").size().describe()
    """
    if variant not in _MOVIELENS:
        raise ValueError(f"Unknown MovieLens variant {variant!r}; choose one of {', '.join(_MOVIELENS)}.")
    import io
    import zipfile

    archive, member, fmt, published = _MOVIELENS[variant]
    checksum = checksum or published
    path = data_home(data_home_path) / "movielens" / archive
    if not (path.exists() and _md5(path) == checksum):
        _download(base_url.rstrip("/") + "/" + archive, path, checksum, timeout)
    with zipfile.ZipFile(path) as z:
        raw = z.read(member)
    names = ["user", "item", "rating", "timestamp"]
    if fmt == "tab":
        df = pd.read_csv(io.BytesIO(raw), sep="\t", names=names)
    elif fmt == "colons":  # "::" separators; as tabs the fast C parser reads them
        df = pd.read_csv(io.BytesIO(raw.replace(b"::", b"\t")), sep="\t", names=names)
    else:
        df = pd.read_csv(io.BytesIO(raw), header=0, names=names)
    return df


# --------------------------------------------------------------------------------------------
# BARS CTR benchmarks (Frappe_x1, Criteo_x1): downloaded on demand, never shipped
# --------------------------------------------------------------------------------------------

#: Where reczoo (BARS) publishes its fixed splits; pass ``base_url`` to use a mirror.
BARS_URL = "https://huggingface.co/datasets/reczoo/{name}/resolve/main/"
#: our name -> reczoo's dataset name
_BARS = {"frappe_x1": "Frappe_x1", "criteo_x1": "Criteo_x1"}
BARS_SPLITS = ("train", "valid", "test")


def fetch_bars(
    name: str = "frappe_x1",
    *,
    data_home_path=None,
    base_url: str | None = None,
    checksums: dict | None = None,
    timeout: float = 600.0,
) -> dict[str, Path]:
    """Download a BARS CTR benchmark's fixed split and return ``{"train"|"valid"|"test": Parquet path}``.

    BARS (reczoo) publishes Frappe_x1 and Criteo_x1 as ``train.csv``, ``valid.csv`` and
    ``test.csv`` (column ``label`` plus the fields). Each file is downloaded once, verified,
    converted to Parquet in bounded memory (for :meth:`fit_parquet`) and cached under
    :func:`data_home`. Neither dataset may be redistributed: they never ship with the package.
    ``checksums`` maps split -> MD5 of the CSV; without it the MD5 of the first download is
    recorded and checked on later uses (reczoo publishes none to check against).

    Examples
    --------
    Needs the network (Criteo_x1 is about 10 GB):

    .. code-block:: python

        paths = fetch_bars("frappe_x1")
        clf = AutoIntClassifier(embedding_dim=10).fit_parquet(paths["train"], "label")
    """
    if name not in _BARS:
        raise ValueError(f"Unknown BARS dataset {name!r}; choose one of {', '.join(_BARS)}.")
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    base = (base_url or BARS_URL.format(name=_BARS[name])).rstrip("/") + "/"
    folder = data_home(data_home_path) / "bars" / name
    out = {}
    for split in BARS_SPLITS:
        csv_path, parquet_path, recorded = (
            folder / f"{split}.csv",
            folder / f"{split}.parquet",
            folder / f"{split}.csv.md5",
        )
        expected = (checksums or {}).get(split) or (recorded.read_text().strip() if recorded.exists() else None)
        if not (csv_path.exists() and (expected is None or _md5(csv_path) == expected)):
            parquet_path.unlink(missing_ok=True)
            _download(base + f"{split}.csv", csv_path, expected, timeout)
        if not recorded.exists():
            with atomic_path(recorded) as tmp:
                tmp.write_text(_md5(csv_path))
        if not parquet_path.exists():
            tmp = parquet_path.with_name(f".{parquet_path.name}.part")
            try:
                reader = pacsv.open_csv(csv_path)  # streams record batches: bounded memory
                with pq.ParquetWriter(tmp, reader.schema) as writer:
                    for batch in reader:
                        writer.write_batch(batch, row_group_size=262_144)
                tmp.replace(parquet_path)
            finally:
                tmp.unlink(missing_ok=True)
        out[split] = parquet_path
    return out
