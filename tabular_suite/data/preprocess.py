"""Fitted transforms from a DataFrame to model tensors, and target encoders.

All state is plain numbers, strings and numpy arrays, so it can be saved as JSON + tensors
without pickle (see :mod:`tabular_suite.core.model_file`).
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from scipy.special import ndtri
from sklearn.base import BaseEstimator, TransformerMixin

from .features import (
    DateFeatures,
    TextFeatures,
    decide_types,
    is_id_like,
    parse_numbers,
    stray_numbers_error,
    warn_id_like,
)
from .io import number_format, text_columns
from .schema import Schema

__all__ = [
    "TablePreprocessor",
    "PreparedTable",
    "LabelEncoder",
    "TargetScaler",
    "DataDriftWarning",
    "FeatureFrame",
    "OrdinalCategories",
    "MISSING_ID",
    "UNKNOWN_ID",
    "table_state",
    "restore_table_state",
]

MISSING_ID = 0  #: categorical code for a missing value
UNKNOWN_ID = 1  #: categorical code for a category not seen at fit time
_N_RESERVED = 2
_QUANTILE_BOUND = 1e-7  # as sklearn's QuantileTransformer: outputs stay within about +-5.2


def _empirical_cdf(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    refs = np.linspace(0.0, 1.0, quantiles.size)
    # Average of forward and backward interpolation handles repeated quantiles (as sklearn).
    return 0.5 * (np.interp(values, quantiles, refs) - np.interp(-values, -quantiles[::-1], -refs[::-1]))


def quantile_normal(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Map ``values`` through the empirical CDF given by increasing ``quantiles`` (evenly
    spaced probabilities from 0 to 1) to a standard normal, as scikit-learn's
    ``QuantileTransformer(output_distribution="normal")``; NaN stays NaN. Values ``(n, c)``
    with quantiles ``(q, c)`` map each column with its own quantiles.

    >>> quantile_normal(np.array([0.0, 5.0, 10.0]), np.array([0.0, 5.0, 10.0])).round(2)
    array([-5.2,  0. ,  5.2])
    """
    if values.ndim == 2:
        u = np.stack([_empirical_cdf(values[:, j], quantiles[:, j]) for j in range(values.shape[1])], axis=1)
    else:
        u = _empirical_cdf(values, quantiles)
    return ndtri(np.clip(u, _QUANTILE_BOUND, 1 - _QUANTILE_BOUND))


@dataclass
class PreparedTable:
    """Model-ready arrays: ``x_num`` float32 (n, n_num) and ``x_cat`` int64 (n, n_cat)."""

    x_num: np.ndarray
    x_cat: np.ndarray

    def __len__(self) -> int:
        return self.x_num.shape[0]


class DataDriftWarning(UserWarning):
    """Rows to predict differ from the training table: a column all missing, mostly unseen
    categories, or values far outside the training range."""


@dataclass
class _Together:
    """What models predicting the same rows together share (see :func:`predicting_together`)."""

    said: set  # the DataDriftWarning messages given
    computed: dict  # (what, state, id(rows)) -> (rows, value): work done once on the same rows


_TOGETHER: ContextVar[_Together | None] = ContextVar("tabular_suite_predicting_together", default=None)


@contextmanager
def predicting_together() -> Iterator[None]:
    """Inside it, the models that predict the same rows together (a bagged model's fold models,
    an ensemble's members, each with its own preprocessor) do once what each would do again:
    each distinct :class:`DataDriftWarning` is given once, and the numbers parsed and the
    category keys of the same DataFrame object are computed once by preprocessors that read
    them alike (the fold models of a comparison parse the same columns the same way). Nested
    uses share the outermost's.

    >>> import warnings
    >>> pre = TablePreprocessor().fit(pd.DataFrame({"a": np.arange(20.0)}))
    >>> far = pd.DataFrame({"a": np.full(20, 1e6)})
    >>> with warnings.catch_warnings(record=True) as caught, predicting_together():
    ...     warnings.simplefilter("always")
    ...     _ = [pre.transform(far) for _ in range(3)]
    >>> len(caught)
    1
    """
    token = _TOGETHER.set(_Together(set(), {})) if _TOGETHER.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _TOGETHER.reset(token)


def computed_once(what: str, state: str, rows, compute):
    """``compute()``, or inside :func:`predicting_together` the value it gave for the same
    ``what``, ``state`` and ``rows`` object (kept with it, so its id is not reused meanwhile).

    >>> rows = pd.DataFrame({"a": [1.0]})
    >>> with predicting_together():
    ...     first = computed_once("copy", "", rows, rows.copy)
    ...     first is computed_once("copy", "", rows, rows.copy)
    True
    """
    together = _TOGETHER.get()
    if together is None:
        return compute()
    key = (what, state, id(rows))
    hit = together.computed.get(key)
    if hit is None or hit[0] is not rows:
        hit = together.computed[key] = (rows, compute())
    return hit[1]


def _numeric_values(col: pd.Series, name, coerce: bool = False) -> np.ndarray:
    """Column as float64 with NaN for missing; strings that are not numbers raise unless ``coerce``."""
    if ptypes.is_numeric_dtype(col.dtype) and not isinstance(col.dtype, pd.CategoricalDtype):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)  # the common case, without a Series
    parsed = parse_numbers(col)
    if not coerce and parsed.isna().sum() > col.isna().sum():
        raise stray_numbers_error(name, col, parsed)
    return parsed.to_numpy(dtype=np.float64)


#: How category values become keys (a model file says which): 0, files written before
#: 2026-12-07: ``str(value)``; 1: a whole number held as a float keyed as the integer
#: (``1001.0`` -> ``"1001"``: pandas holds an integer column as floats as soon as one value is
#: missing) and text without surrounding spaces (``" a"`` from ``a, b`` is ``"a"``), so that
#: a file, or a chunk of it, with a gap or padding gives the same categories.
KEY_RULE = 1


def _value_counts(col: pd.Series, rule: int = KEY_RULE, lower: bool = False) -> pd.Series:
    """How often each category key (the text :func:`_category_keys` gives it) occurs, missing
    values left out; columnar: a pandas categorical (as Parquet dictionary columns read) is
    counted on its integer codes, and only its distinct categories are turned into text.

    >>> _value_counts(pd.Series(["b", "a", None, "b"], dtype="category")).to_dict()
    {'a': 1, 'b': 2}
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        counts = np.bincount(codes[codes >= 0], minlength=len(col.cat.categories))
        seen = np.flatnonzero(counts)
        keys = _keys_of(col.cat.categories[seen], rule, lower)
        counted = pd.Series(counts[seen], index=pd.Index(keys, dtype=object), dtype=np.int64)
        return counted if counted.index.is_unique else counted.groupby(level=0, sort=False).sum()  # ("a", "a ")
    keys, missing = _category_keys(col, rule, lower)
    return pd.Series(keys[~missing], dtype=object).value_counts().astype(np.int64)


def _merge_counts(parts: list[pd.Series]) -> pd.Series:
    """The sum of several :func:`_value_counts` (vectorised: one group-by over their keys)."""
    if len(parts) == 1:
        return parts[0]
    return pd.concat(parts).groupby(level=0, sort=False).sum()


def _key_text(value, rule: int) -> str:
    """One category value's key (see :data:`KEY_RULE`) before :func:`_tidy`."""
    if rule >= 1 and isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def _keys_of(values, rule: int = KEY_RULE, lower: bool = False) -> np.ndarray:
    """The text keys of a few category values that are not missing (a categorical's categories;
    see :data:`KEY_RULE`), as an object array; ``lower``: case folded too (a boolean column:
    ``Yes`` is ``yes``).

    >>> _keys_of(np.array([1001.0, 2.5, -3.0])).tolist(), _keys_of(np.array([" a", "b "])).tolist()
    (['1001', '2.5', '-3'], ['a', 'b'])
    """
    objects = (values if isinstance(values, pd.Index) else pd.Index(np.asarray(values))).astype(object)
    return _tidy(np.array([_key_text(v, rule) for v in objects], dtype=object), rule, lower)


def _tidy(keys: np.ndarray, rule: int, lower: bool) -> np.ndarray:
    """Text keys stripped of surrounding spaces (rule 1) and case folded (``lower``)."""
    if rule < 1 and not lower:
        return keys
    codes, uniques = pd.factorize(keys)  # (the distinct values only: a column repeats them)
    text = pd.Series(uniques, dtype=object)
    if rule >= 1:
        text = text.str.strip()
    if lower:
        text = text.str.lower()
    if (text.to_numpy(dtype=object) == uniques).all():
        return keys
    return text.to_numpy(dtype=object)[codes]


def _category_keys(
    col: pd.Series, rule: int = KEY_RULE, lower: bool = False, tidy: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """String keys for category values (:func:`_key_text`, then :func:`_tidy` unless ``tidy`` is
    False; missing: ``""``) as an object array, and the missing mask (None/NaN/NA are missing).
    Text is taken as it is; other values are turned into text once per distinct value."""
    missing = col.isna().to_numpy()
    if isinstance(col.dtype, pd.CategoricalDtype):
        texts = _keys_of(col.cat.categories, rule, lower)
        codes = col.cat.codes.to_numpy()
        keys = np.full(len(col), "", dtype=object)
        keys[codes >= 0] = texts[codes[codes >= 0]]
        return keys, missing
    if isinstance(col.dtype, pd.StringDtype):
        keys = col.to_numpy(dtype=object, na_value="")
    elif rule >= 1 and col.dtype.kind == "f":
        values = col.to_numpy()
        keys = values.astype(object).astype(str).astype(object)
        integral = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**53)
        keys[integral] = values[integral].astype(np.int64).astype(str)
        keys[missing] = ""
    else:  # objects (text, numbers held as objects, mixed), integers, booleans, dates
        codes, uniques = pd.factorize(col)
        texts = np.array([_key_text(v, rule) for v in pd.Index(uniques).astype(object)] + [""], dtype=object)
        keys = texts[codes]  # (code -1, a missing value: the last entry, "")
    return (_tidy(keys, rule, lower) if tidy else keys), missing


def _codes_of(
    index: pd.Index, rows: pd.DataFrame, name, rule: int, lower: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each value of column ``name`` of ``rows``: its position among the fitted keys ``index``
    (-1: not there), the missing mask and the keys. The keys are looked up as they are first;
    only those not found are tidied (:func:`_tidy`) and looked up again: the fitted keys are
    tidy, and most values are too. The keys of the values are computed once for the same
    ``rows`` inside :func:`predicting_together` (read only)."""

    def keys_of():
        keys, missing = _category_keys(rows[name], rule, lower, tidy=lower)
        # (an object Index: an array would be inferred as text again, 4x the lookup's time)
        return keys, missing, pd.Index(keys, dtype=object)

    keys, missing, lookup = computed_once("category keys", repr((name, rule, lower)), rows, keys_of)
    codes = index.get_indexer(lookup).astype(np.int64)
    miss = (codes < 0) & ~missing
    if rule >= 1 and not lower and miss.any():
        tidied = _tidy(keys[miss], rule, False)
        keys = keys.copy()
        keys[miss] = tidied
        codes[miss] = index.get_indexer(pd.Index(tidied, dtype=object))
    return codes, missing, keys


class TablePreprocessor:
    """Fitted on the training table only; maps any later table to :class:`PreparedTable`.

    Each column gets a kind (:func:`~tabular_suite.data.features.infer_feature_types`, in
    ``feature_types_``). Numeric block: numeric columns, each datetime column's
    :class:`~tabular_suite.data.features.DateFeatures` and each text column's
    :class:`~tabular_suite.data.features.TextFeatures`; infinite values raise; quantile-normal
    (default) or standard scaling; missing values become 0 (the median / mean) plus a 0/1
    missing-indicator feature for each feature that had missing values at fit time.
    Categorical and boolean columns: integer codes ``>= 2`` for categories kept at fit, ``0``
    for missing, ``1`` for unseen (or rare) categories. ``transform`` warns
    (:class:`DataDriftWarning`) when rows differ from the training table.

    Parameters
    ----------
    categorical_features, feature_types, coerce_numeric, min_frequency
        See :class:`~tabular_suite.data.features.DataParams`.
    numeric_scaling : {"quantile", "standard", "none"}
    random_state : int
        Seeds the tiny noise that breaks ties before fitting quantiles (as in rtdl) and the
        text projections.

    Examples
    --------
    >>> import pandas as pd
    >>> pre = TablePreprocessor().fit(pd.DataFrame({"a": [1.0, None, 3.0], "b": ["x", "y", "x"]}))
    >>> out = pre.transform(pd.DataFrame({"a": [2.0], "b": ["new"]}))
    >>> out.x_num.shape, out.x_cat.tolist(), pre.feature_types_
    ((1, 2), [[1]], {'a': 'numeric', 'b': 'categorical'})
    """

    def __init__(
        self,
        categorical_features=None,
        numeric_scaling: str = "quantile",
        random_state: int = 0,
        *,
        feature_types=None,
        coerce_numeric=None,
        min_frequency: int | None = None,
        hash_buckets: int | None = None,
    ):
        if numeric_scaling not in ("quantile", "standard", "none"):
            raise ValueError(f"numeric_scaling must be 'quantile', 'standard' or 'none', got {numeric_scaling!r}.")
        if min_frequency is not None and not (isinstance(min_frequency, (int, np.integer)) and min_frequency >= 1):
            raise ValueError(f"min_frequency must be a positive integer or None, got {min_frequency!r}.")
        if hash_buckets is not None and not (isinstance(hash_buckets, (int, np.integer)) and hash_buckets >= 1):
            raise ValueError(f"hash_buckets must be a positive integer or None, got {hash_buckets!r}.")
        self.categorical_features = categorical_features
        self.numeric_scaling = numeric_scaling
        self.random_state = random_state
        self.feature_types = feature_types
        self.coerce_numeric = coerce_numeric
        self.min_frequency = min_frequency
        self.hash_buckets = hash_buckets

    @classmethod
    def from_params(cls, params, numeric_scaling: str, random_state: int) -> TablePreprocessor:
        """A preprocessor configured by an estimator's :class:`~tabular_suite.data.features.DataParams`."""
        return cls(
            params.categorical_features,
            numeric_scaling,
            random_state,
            feature_types=params.feature_types,
            coerce_numeric=params.coerce_numeric,
            min_frequency=params.min_frequency,
            hash_buckets=getattr(params, "hash_buckets", None),
        )

    # ------------------------------------------------------------------ fit
    def _set_types(self, df: pd.DataFrame, from_numpy: bool) -> None:
        self.__dict__.pop("_indexes", None)
        kinds, coerced = decide_types(
            df, self.categorical_features, self.feature_types, self.coerce_numeric, from_numpy=from_numpy
        )
        self.coerced = list(coerced)
        self.feature_types_ = kinds
        self.schema = Schema.from_types(kinds)
        self.date_formats = [_date_format_of(kinds[c]) for c in self.schema.datetime]
        self.text_features: list[TextFeatures] = []
        self.key_rule = KEY_RULE
        # A CSV's marks and text columns: the files it predicts are read alike.
        self.number_format = number_format(df)
        self.text_columns = text_columns(df[list(self.schema.columns)])

    def _fit_text(self, df: pd.DataFrame) -> None:
        self.text_features = [TextFeatures(random_state=self.random_state).fit(df[name]) for name in self.schema.text]
        self._digest = None  # (the last state _numeric_block reads is set: see _block_digest)

    def fit(self, df: pd.DataFrame, *, from_numpy: bool = False) -> TablePreprocessor:
        self._fit(df, from_numpy)
        return self

    def _fit(self, df: pd.DataFrame, from_numpy: bool) -> np.ndarray:
        """Fit on ``df``; returns its numeric block (fit_transform scales it without recomputing it)."""
        self._set_types(df, from_numpy)
        self._fit_text(df)
        rng = np.random.default_rng(self.random_state)
        block = self.numeric_block(df)
        self._fit_numeric(block, np.isnan(block).any(axis=0), rng)
        counts = []
        for name in self.schema.categorical:
            counts.append(_value_counts(df[name], KEY_RULE, self._boolean(name)))
            if counts[-1].empty:
                raise ValueError(f"Column {name!r} is entirely empty (all values missing): drop it before fitting.")
        self._keep_categories(counts, len(df))
        return block

    def fit_batches(self, batches, *, sample_rows: int = 200_000) -> TablePreprocessor:
        """Fit on a stream of DataFrames that need not fit in memory together.

        Column kinds are inferred on the first batch; text projections are fitted on it too.
        Categories are the union over all batches; numeric scalers are fitted on a uniform
        random sample of ``sample_rows`` rows of the whole stream (quantiles from 200k rows
        are accurate to well under 1%); missing-value indicators cover every batch.
        Memory: one batch, the sample and the category counts.
        """
        rng = np.random.default_rng(self.random_state)
        sample_keys, sample_values, has_missing, counts, n_rows = None, None, None, None, 0
        for df in batches:
            if sample_keys is None:
                self._set_types(df, False)
                self._fit_text(df)
                n_num = len(self.schema.numeric_features)
                sample_keys, sample_values = np.zeros(0), np.zeros((0, n_num))
                has_missing = np.zeros(n_num, dtype=bool)
                counts = [[] for _ in self.schema.categorical]  # per column: value counts to merge
            values = self.numeric_block(df)
            # The kinds come from the first batch: a later one's dates must fit the format read there
            # (a format the user gave reads what it cannot parse as missing, as fit does).
            declared = set(self.feature_types or {})
            unparsed = [c for c in self._unparsed_dates(df, values) if c not in declared]
            if unparsed:
                kinds = ", ".join(f"{c!r} ({self.feature_types_[c]})" for c in unparsed)
                raise ValueError(
                    f"Rows {n_rows:,} on of the stream hold values that are not dates in the format read from its "
                    f"first rows: {kinds}. Give the format: feature_types={{column: 'datetime:<strptime format>'}}."
                )
            has_missing |= np.isnan(values).any(axis=0)
            # Reservoir by random keys: the sample_rows smallest keys over the stream are uniform.
            keys = np.concatenate([sample_keys, rng.random(len(df))])
            values = np.concatenate([sample_values, values])
            if len(keys) > sample_rows:
                keep = np.argpartition(keys, sample_rows)[:sample_rows]
                keys, values = keys[keep], values[keep]
            sample_keys, sample_values = keys, values
            for j, name in enumerate(self.schema.categorical):
                counts[j].append(_value_counts(df[name], KEY_RULE, self._boolean(name)))
                if len(counts[j]) >= 8:  # merged now and then: memory stays at about one vocabulary
                    counts[j] = [_merge_counts(counts[j])]
            n_rows += len(df)
        if sample_keys is None:
            raise ValueError("The data stream is empty: no rows to fit on.")
        self._fit_numeric(sample_values, has_missing, rng)
        counts = [_merge_counts(parts) for parts in counts]
        for j, name in enumerate(self.schema.categorical):
            if counts[j].empty:
                raise ValueError(f"Column {name!r} is entirely empty (all values missing): drop it before fitting.")
        self._keep_categories(counts, n_rows)
        return self

    def _fit_numeric(self, block: np.ndarray, has_missing: np.ndarray, rng) -> None:
        self.num_params: list[np.ndarray] = []
        self.num_has_missing: list[bool] = []
        self.num_range = np.zeros((block.shape[1], 2))
        for j, name in enumerate(self.schema.numeric_features):
            observed = block[:, j][~np.isnan(block[:, j])]
            if observed.size == 0:
                raise ValueError(f"Column {name!r} is entirely empty (all values missing): drop it before fitting.")
            self.num_params.append(self._fit_scaler(observed, rng))
            self.num_has_missing.append(bool(has_missing[j]))
            self.num_range[j] = observed.min(), observed.max()

    def _keep_categories(self, counts: list[pd.Series], n_rows: int) -> None:
        """Categories seen at least ``min_frequency`` times (auto: 2 in ID-like columns, else 1);
        ``counts``: per column, the count of each category key."""
        self.categories: list[list[str]] = []
        id_like = []
        for name, count in zip(self.schema.categorical, counts):
            threshold = self.min_frequency
            total = int(count.sum())
            if threshold is None:
                threshold = 1
                if is_id_like(len(count), total):
                    threshold = 2
                    id_like.append((name, len(count), total))
            self.categories.append(sorted(count.index[count.to_numpy() >= threshold].tolist()))
        warn_id_like(id_like)

    def _fit_scaler(self, observed: np.ndarray, rng) -> np.ndarray:
        if self.numeric_scaling == "quantile":
            # Noise breaks ties of discrete values so they spread over the normal (rtdl recipe).
            std = observed.std()
            noisy = observed + (1e-3 / max(std, 1e-3)) * std * rng.standard_normal(observed.size)
            n_quantiles = max(min(observed.size // 30, 1000), 10)
            return np.quantile(noisy, np.linspace(0.0, 1.0, n_quantiles))
        if self.numeric_scaling == "standard":
            std = observed.std()
            return np.array([observed.mean(), std if std > 0 else 1.0])
        return np.array([0.0, 1.0])

    @staticmethod
    def _check_finite(values: np.ndarray, name) -> None:
        if np.isinf(values).any():
            raise ValueError(
                f"Column {name!r} contains infinite values; replace them (for example with NaN, "
                "which is treated as missing) before fitting or predicting."
            )

    # ------------------------------------------------------------ transform
    @property
    def n_numeric_out(self) -> int:
        return len(self.num_params) + sum(self.num_has_missing)

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table sizes per categorical column (categories + missing + unknown, and the
        hash buckets of the categories not kept)."""
        return [len(c) + _N_RESERVED + self._buckets for c in self.categories]

    @property
    def _buckets(self) -> int:
        return self.__dict__.get("hash_buckets") or 0

    def _unkept(self, keys, j: int) -> np.ndarray:
        """Codes of categories not kept at fit: ``UNKNOWN_ID``, or with ``hash_buckets`` the bucket
        of each key (a stable hash of its text: the same on every run and machine)."""
        if not self._buckets:
            return np.full(len(keys), UNKNOWN_ID, dtype=np.int64)
        hashed = pd.util.hash_array(np.asarray(keys, dtype=object)) % np.uint64(self._buckets)
        return hashed.astype(np.int64) + (len(self.categories[j]) + _N_RESERVED)

    def is_unkept(self, codes: np.ndarray, j: int) -> np.ndarray:
        """Which codes of categorical column ``j`` stand for categories not kept at fit."""
        return (codes == UNKNOWN_ID) | (codes >= len(self.categories[j]) + _N_RESERVED)

    @property
    def output_feature_names(self) -> list[str]:
        block = list(self.schema.numeric_features)
        names = block + [f"{n}__missing" for n, m in zip(block, self.num_has_missing) if m]
        return names + [str(n) for n in self.schema.categorical]

    def numeric_block(self, df: pd.DataFrame) -> np.ndarray:
        """The numeric features before scaling, float64 (n, k) with NaN for missing: numeric
        columns, then date features, then text features (``schema.numeric_features``);
        computed once for the same ``df`` by preprocessors that read it alike inside
        :func:`predicting_together`."""
        if _TOGETHER.get() is None:
            return self._numeric_block(df)
        # (a copy of the shared block: a caller may write to its own)
        return computed_once("numeric block", self._block_digest(), df, lambda: self._numeric_block(df)).copy()

    def _numeric_block(self, df: pd.DataFrame) -> np.ndarray:
        coerced = set(getattr(self, "coerced", ()))
        cols = []
        for name in self.schema.numeric:
            values = _numeric_values(df[name], name, coerce=name in coerced)
            self._check_finite(values, name)
            cols.append(values[:, None])
        for name, fmt in zip(self.schema.datetime, self.date_formats):
            cols.append(DateFeatures(fmt).transform(df[name]))
        for name, text in zip(self.schema.text, self.text_features):
            cols.append(text.transform(df[name]))
        return np.concatenate(cols, axis=1) if cols else np.zeros((df.shape[0], 0))

    def _block_digest(self) -> str:
        """A digest of what :meth:`_numeric_block` reads of the fitted state (kept until the next fit)."""
        digest = self.__dict__.get("_digest")
        if digest is None:
            state = (self.schema.numeric, self.schema.datetime, self.schema.text, list(getattr(self, "coerced", ())),
                     list(self.date_formats), self.text_features)  # fmt: skip
            digest = self._digest = hashlib.sha1(pickle.dumps(state, protocol=4)).hexdigest()
        return digest

    def _scale(self, values: np.ndarray, params: np.ndarray) -> np.ndarray:
        if self.numeric_scaling == "quantile":
            return quantile_normal(values, params)
        return (values - params[0]) / params[1]

    def transform(self, df: pd.DataFrame) -> PreparedTable:
        """``df`` as model inputs; warns when it differs from the training data (:meth:`check_drift`)."""
        return self._prepare(df, self.numeric_block(df), check=True)

    def _prepare(self, df: pd.DataFrame, block: np.ndarray, check: bool) -> PreparedTable:
        n = df.shape[0]
        num_cols, indicators = [], []
        for j, (params, has_missing) in enumerate(zip(self.num_params, self.num_has_missing)):
            values = block[:, j]
            missing = np.isnan(values)
            scaled = self._scale(values, params)
            scaled[missing] = 0.0
            num_cols.append(scaled)
            if has_missing:
                indicators.append(missing.astype(np.float64))
        x_num = np.stack(num_cols + indicators, axis=1).astype(np.float32) if num_cols else np.zeros((n, 0), np.float32)
        codes = self.category_codes(df)
        if check:
            self.check_drift(df, block, codes)
        return PreparedTable(x_num, codes)

    def _unparsed_dates(self, df: pd.DataFrame, block: np.ndarray) -> list:
        """The date columns of ``df`` with values (not missing) that the fitted format cannot read
        (``block``: :meth:`numeric_block` of ``df``, each date column's year NaN there)."""
        first = len(self.schema.numeric)  # each date column's first feature (the year) in the block
        return [
            name
            for j, name in enumerate(self.schema.datetime)
            if (df[name].notna().to_numpy() & np.isnan(block[:, first + j * len(DateFeatures.NAMES)])).any()
        ]

    def check_drift(self, df: pd.DataFrame, block: np.ndarray, codes: np.ndarray, min_rows: int = 10) -> None:
        """Warn once (:class:`DataDriftWarning`) naming the columns of ``df`` that are all
        missing, whose categories are mostly unseen, or whose values lie far outside the
        training range (beyond it by more than its width, for at least 1% of the rows); and,
        in batches of any size, the date columns with values that are not dates in the format
        fitted (read as missing: ``13/02/2020`` after a fit on ``%m/%d/%Y``). Other checks
        skip batches under ``min_rows`` rows."""
        unparsed = self._unparsed_dates(df, block)
        judged = len(df) >= min_rows
        if not judged and not unparsed:
            return
        empty, unseen, far = [], [], []
        if judged:
            all_missing = df[list(self.schema.columns)].isna().all(axis=0).to_numpy()
            empty = [name for name, gone in zip(self.schema.columns, all_missing) if gone]
            for j, name in enumerate(self.schema.categorical):
                observed = codes[:, j] != MISSING_ID
                if name not in empty and observed.any() and self.is_unkept(codes[observed, j], j).mean() > 0.5:
                    unseen.append(name)
            num_range = self.__dict__.get("num_range")
            for j, name in enumerate(self.schema.numeric if num_range is not None else ()):
                lo, hi = num_range[j]
                width = max(hi - lo, abs(hi), abs(lo), 1e-12)
                values = block[:, j]
                outside = (values < lo - width) | (values > hi + width)
                if name not in empty and outside.mean() >= 0.01:
                    far.append(name)
        parts = [
            f"{what}: {', '.join(map(repr, names[:8]))}{', ...' if len(names) > 8 else ''}"
            for what, names in (
                ("all values missing", empty),
                ("mostly categories not seen at fit", unseen),
                ("values far outside the training range", far),
                ("values that are not dates in the format fitted, read as missing", unparsed),
            )
            if names
        ]
        if not parts:
            return
        message = "The rows differ from the training data (" + "; ".join(parts) + "): predictions there are unreliable."
        together = _TOGETHER.get()
        if together is not None:
            if message in together.said:
                return
            together.said.add(message)
        warnings.warn(message, DataDriftWarning, stacklevel=3)

    def _boolean(self, name) -> bool:
        """Whether ``name`` is a boolean column (its keys case folded: ``Yes`` is ``yes``; rule 1)."""
        return self.__dict__.get("key_rule", 0) >= 1 and self.feature_types_.get(name) == "boolean"

    def category_codes(self, df: pd.DataFrame) -> np.ndarray:
        """The categorical columns as int64 codes (n, n_cat): ``>= 2`` seen, 0 missing, 1 unseen."""
        cat_cols = []
        if self.__dict__.get("_indexes") is None or len(self._indexes) != len(self.categories):
            # Hash tables over the categories, built once (10^6-id fields take a second).
            self._indexes = [pd.Index(cats, dtype=object) for cats in self.categories]
        rule = self.__dict__.get("key_rule", 0)  # (0: fitted before KEY_RULE 1)
        for j, (name, index) in enumerate(zip(self.schema.categorical, self._indexes)):
            col = df[name]
            if isinstance(col.dtype, pd.CategoricalDtype):  # columnar: look up the distinct categories only
                keys = pd.Index(_keys_of(col.cat.categories, rule, self._boolean(name)), dtype=object)
                lookup = index.get_indexer(keys).astype(np.int64) + _N_RESERVED
                unkept = lookup < _N_RESERVED
                lookup[unkept] = self._unkept(keys[unkept], j)
                raw = col.cat.codes.to_numpy()
                if len(lookup) == 0:  # no categories at all: every value is missing
                    cat_cols.append(np.full(len(raw), MISSING_ID, dtype=np.int64))
                    continue
                cat_cols.append(np.where(raw >= 0, lookup[np.maximum(raw, 0)], MISSING_ID).astype(np.int64))
                continue
            codes, missing, keys = _codes_of(index, df, name, rule, self._boolean(name))
            codes = codes + _N_RESERVED
            unkept = (codes < _N_RESERVED) & ~missing
            codes[unkept] = self._unkept(keys[unkept], j)
            codes[missing] = MISSING_ID
            cat_cols.append(codes)
        return np.stack(cat_cols, axis=1) if cat_cols else np.zeros((df.shape[0], 0), np.int64)

    def fit_transform(self, df: pd.DataFrame, *, from_numpy: bool = False) -> PreparedTable:
        """:meth:`fit` then :meth:`transform`, computing dates and text features once (no drift check
        of the training table against itself)."""
        return self._prepare(df, self._fit(df, from_numpy), check=False)

    # ---------------------------------------------------------- persistence
    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_indexes", None)  # a cache, rebuilt on the first transform
        return state

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-able config and named arrays that fully describe the fitted transform."""
        config = {
            "numeric_scaling": self.numeric_scaling,
            "numeric": [_label_to_json(c) for c in self.schema.numeric],
            "categorical": [_label_to_json(c) for c in self.schema.categorical],
            "datetime": [_label_to_json(c) for c in self.schema.datetime],
            "text": [_label_to_json(c) for c in self.schema.text],
            "feature_types": [[_label_to_json(c), k] for c, k in self.feature_types_.items()],
            "coerced": [_label_to_json(c) for c in self.coerced],
            "hash_buckets": self._buckets or None,
            "num_has_missing": self.num_has_missing,
            "categories": self.categories,
            "key_rule": self.__dict__.get("key_rule", 0),
            "number_format": self.__dict__.get("number_format"),
            "text_columns": self.__dict__.get("text_columns"),
        }
        arrays = {f"num_params_{i}": p for i, p in enumerate(self.num_params)}
        arrays["num_range"] = self.num_range
        for i, text in enumerate(self.text_features):
            arrays.update({f"text_{i}_{k}": v for k, v in text.get_state().items()})
        return config, arrays

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> TablePreprocessor:
        """The fitted transform from :meth:`get_state`'s output (files written before 0.2 lack
        dates, text, coercion and training ranges: their columns were numeric or categorical)."""
        self = cls(numeric_scaling=config["numeric_scaling"], hash_buckets=config.get("hash_buckets"))
        self.schema = Schema(
            tuple(config["numeric"]),
            tuple(config["categorical"]),
            tuple(config.get("datetime", ())),
            tuple(config.get("text", ())),
        )
        kinds = config.get("feature_types")
        self.feature_types_ = (
            {c: k for c, k in kinds}
            if kinds is not None
            else {c: "numeric" if c in self.schema.numeric else "categorical" for c in self.schema.columns}
        )
        self.coerced = list(config.get("coerced", ()))
        self.date_formats = [_date_format_of(self.feature_types_[c]) for c in self.schema.datetime]
        self.text_features = [
            TextFeatures.from_state({k: arrays[f"text_{i}_{k}"] for k in ("idf", "components")})
            for i in range(len(self.schema.text))
        ]
        self.num_has_missing = [bool(m) for m in config["num_has_missing"]]
        self.categories = [list(map(str, c)) for c in config["categories"]]
        self.key_rule = int(config.get("key_rule", 0))  # (see KEY_RULE)
        self.number_format = config.get("number_format")
        self.text_columns = config.get("text_columns")
        self.num_params = [
            np.asarray(arrays[f"num_params_{i}"], dtype=np.float64) for i in range(len(self.num_has_missing))
        ]
        if "num_range" in arrays:
            self.num_range = np.asarray(arrays["num_range"], dtype=np.float64)
        return self


def table_state(estimator) -> tuple[dict, dict]:
    """What every fitted table estimator's model file holds of its input: (JSON-able entries of
    its config's ``fitted`` part, ``pre.``-prefixed arrays): the columns it was fitted on, its
    :class:`TablePreprocessor` and its target's encoding (``estimator._target_state()``).
    :func:`restore_table_state` reads them back.

    Examples
    --------
    >>> import numpy as np, tabular_suite
    >>> X = np.random.default_rng(0).normal(size=(50, 3))
    >>> est = tabular_suite.MLPRegressor(max_epochs=1, num_threads=1).fit(X, X[:, 0])
    >>> fitted, arrays = table_state(est)
    >>> fitted["n_features_in"], sorted(fitted)[:2], all(k.startswith("pre.") for k in arrays)
    (3, ['feature_names_in', 'fit_columns'], True)
    """
    pre_config, pre_arrays = estimator.preprocessor_.get_state()
    names = getattr(estimator, "feature_names_in_", None)
    fitted = {
        "n_features_in": int(estimator.n_features_in_),
        "feature_names_in": None if names is None else [str(c) for c in names],
        "fit_columns": [c if isinstance(c, str) else int(c) for c in estimator._fit_columns],
        "preprocessor": pre_config,
        "target": estimator._target_state(),
    }
    return fitted, {f"pre.{k}": v for k, v in pre_arrays.items()}


def restore_table_state(estimator, fitted: dict, tensors: dict) -> None:
    """Set on ``estimator`` what :func:`table_state` saved (``tensors``: the model file's, torch).

    Examples
    --------
    >>> import numpy as np, tabular_suite
    >>> X = np.random.default_rng(0).normal(size=(50, 3))
    >>> est = tabular_suite.MLPRegressor(max_epochs=1, num_threads=1).fit(X, X[:, 0])
    >>> fitted, arrays = table_state(est)
    >>> import torch
    >>> copy = tabular_suite.MLPRegressor()
    >>> restore_table_state(copy, fitted, {k: torch.from_numpy(v) for k, v in arrays.items()})
    >>> copy.n_features_in_, table_state(copy)[0] == fitted
    (3, True)
    """
    estimator.n_features_in_ = fitted["n_features_in"]
    if fitted["feature_names_in"] is not None:
        estimator.feature_names_in_ = np.array(fitted["feature_names_in"], dtype=object)
    estimator._fit_columns = fitted["fit_columns"]
    pre_arrays = {k[4:]: v.numpy() for k, v in tensors.items() if k.startswith("pre.")}
    estimator.preprocessor_ = TablePreprocessor.from_state(fitted["preprocessor"], pre_arrays)
    estimator._restore_target(fitted["target"])


def _date_format_of(kind: str) -> str | None:
    """The strptime format carried by a ``"datetime:<format>"`` kind (None: datetime64 values)."""
    return kind.split(":", 1)[1] if ":" in kind else None


def _label_to_json(label):
    # Column labels are str (named tables) or int (numpy input).
    return int(label) if isinstance(label, (int, np.integer)) else str(label)


class LabelEncoder:
    """Classification labels of any dtype <-> integer codes ``0..n_classes-1``.

    Examples
    --------
    >>> enc = LabelEncoder().fit(np.array(["b", "a", "b"]))
    >>> enc.classes_.tolist(), enc.transform(np.array(["a", "b"])).tolist()
    (['a', 'b'], [0, 1])
    """

    def fit(self, y: np.ndarray) -> LabelEncoder:
        from sklearn.utils.multiclass import check_classification_targets

        if (ptypes.is_float_dtype(y.dtype) and np.isnan(y).any()) or (y.dtype == object and pd.isna(y).any()):
            raise ValueError("The target y contains missing values (NaN/None): drop those rows.")
        if ptypes.is_float_dtype(y.dtype) and np.isinf(y).any():
            raise ValueError("The target y contains infinite values: drop or fix those rows.")
        check_classification_targets(y)
        try:
            self.classes_ = np.unique(y)
        except TypeError:
            raise ValueError(
                "The target y mixes types (e.g. numbers and strings): use one type for all labels."
            ) from None
        if self.classes_.size < 2:
            raise ValueError(
                f"The target y has only one class ({self.classes_[0]!r}); a classifier needs at least two classes."
            )
        return self

    def transform(self, y: np.ndarray) -> np.ndarray:
        codes = np.searchsorted(self.classes_, y)
        codes = np.clip(codes, 0, self.classes_.size - 1)
        unknown = self.classes_[codes] != y
        if np.any(unknown):
            raise ValueError(f"y contains labels not seen at fit time: {np.unique(y[unknown])[:5]!r}.")
        return codes.astype(np.int64)

    def get_state(self) -> dict:
        return {"classes": self.classes_.tolist(), "dtype": self.classes_.dtype.str}

    @classmethod
    def from_state(cls, state: dict) -> LabelEncoder:
        self = cls()
        dtype = np.dtype(state["dtype"])
        self.classes_ = np.array(state["classes"], dtype=object if dtype.kind == "O" else dtype)
        return self


class TargetScaler:
    """Standardizes a regression target; predictions are mapped back to original units.

    Examples
    --------
    >>> s = TargetScaler().fit(np.array([1.0, 3.0]))
    >>> s.transform(np.array([3.0])).tolist(), s.inverse_transform(np.array([0.0])).tolist()
    ([1.0], [2.0])
    """

    def fit(self, y: np.ndarray) -> TargetScaler:
        y = self._as_float(y)
        if not np.isfinite(y).all():
            raise ValueError("The target y contains NaN or infinite values: drop or fix those rows.")
        self.mean_ = float(y.mean())
        std = float(y.std())
        self.scale_ = std if std > 0 else 1.0
        return self

    @staticmethod
    def _as_float(y: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                "A regressor needs a numeric target y; got non-numeric values. "
                "Use a classifier for categorical targets."
            ) from None

    def transform(self, y: np.ndarray) -> np.ndarray:
        return (self._as_float(y) - self.mean_) / self.scale_

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float64) * self.scale_ + self.mean_

    def get_state(self) -> dict:
        return {"mean": self.mean_, "scale": self.scale_}

    @classmethod
    def from_state(cls, state: dict) -> TargetScaler:
        self = cls()
        self.mean_, self.scale_ = float(state["mean"]), float(state["scale"])
        return self


class FeatureFrame(TransformerMixin, BaseEstimator):
    """A scikit-learn transformer: the table with numbers parsed, each datetime and text column
    replaced by its numeric features (NaN kept, no scaling) and categorical columns unchanged,
    for pipelines of trees or linear models. Columns (as strings): ``schema.numeric_features``,
    then ``schema.categorical``.

    Examples
    --------
    >>> df = pd.DataFrame({"when": ["2024-01-02", "2024-06-30"], "n": ["1", "2"], "c": ["a", "b"]})
    >>> FeatureFrame().fit(df).transform(df).columns[:3].tolist()
    ['n', 'when__year', 'when__month']
    """

    def __init__(self, feature_types=None, coerce_numeric=None, random_state: int = 0):
        self.feature_types = feature_types
        self.coerce_numeric = coerce_numeric
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y=None) -> FeatureFrame:
        self.preprocessor_ = TablePreprocessor(
            numeric_scaling="none",
            random_state=self.random_state,
            feature_types=self.feature_types,
            coerce_numeric=self.coerce_numeric,
            min_frequency=1,
        ).fit(X)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        pre = self.preprocessor_
        block = pd.DataFrame(pre.numeric_block(X), columns=list(pre.schema.numeric_features), index=X.index)
        categorical = X[list(pre.schema.categorical)].set_axis([str(c) for c in pre.schema.categorical], axis=1)
        return pd.concat([block, categorical], axis=1)


def _text_keys(col: pd.Series, rule: int = KEY_RULE) -> np.ndarray:
    """:func:`_category_keys` with the missing values as the category ``"__missing__"``."""
    keys, missing = _category_keys(col, rule)
    keys[missing] = "__missing__"
    return keys


class OrdinalCategories(TransformerMixin, BaseEstimator):
    """A scikit-learn transformer: categorical columns as ordinal codes (float64), the codes of
    ``OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)`` over the values'
    text (the keys of :data:`KEY_RULE`, a missing value the category ``"__missing__"``): the i-th category in
    sorted order is i, a category not seen at fit NaN. Text columns are looked up as they are
    and a pandas categorical's categories turned into text once: 3x faster than OrdinalEncoder
    over the text (benchmarks/category_encoding.py: fit on 81,000 rows of diabetes130us' 36
    categorical columns and transform the other 20,000, 0.81 -> 0.26 s), which a comparison's
    fold models each do.

    Examples
    --------
    >>> codes = OrdinalCategories().fit(pd.DataFrame({"c": ["b", "a", None, "b"]}))
    >>> codes.categories_[0].tolist()
    ['__missing__', 'a', 'b']
    >>> codes.transform(pd.DataFrame({"c": ["a", "z", None]}))
    array([[ 1.],
           [nan],
           [ 0.]])
    """

    def fit(self, X: pd.DataFrame, y=None) -> OrdinalCategories:
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = X.shape[1]
        self.categories_ = [np.array(sorted(set(_text_keys(X[c]))), dtype=object) for c in X.columns]
        self.key_rule_ = KEY_RULE
        self._indexes = None  # (built on the first transform)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        if self.__dict__.get("_indexes") is None:  # hash tables over the categories, built once
            self._indexes = [pd.Index(cats, dtype=object) for cats in self.categories_]
        out = np.empty(X.shape, dtype=np.float64)
        rule = self.__dict__.get("key_rule_", 0)
        for j, (name, index) in enumerate(zip(X.columns, self._indexes)):
            codes, missing, _ = _codes_of(index, X, name, rule)
            codes[missing] = index.get_indexer(pd.Index(["__missing__"], dtype=object))[0]
            codes = codes.astype(np.float64)
            codes[codes < 0] = np.nan
            out[:, j] = codes
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return self.feature_names_in_.copy()
