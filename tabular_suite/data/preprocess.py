"""Fitted transforms from a DataFrame to model tensors, and target encoders.

All state is plain numbers, strings and numpy arrays, so it can be saved as JSON + tensors
without pickle (see :mod:`tabular_suite.core.model_file`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from scipy.special import ndtri

from .schema import Schema, infer_schema

__all__ = ["TablePreprocessor", "PreparedTable", "LabelEncoder", "TargetScaler", "MISSING_ID", "UNKNOWN_ID"]

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


def _numeric_values(col: pd.Series, name) -> np.ndarray:
    """Column as float64 with NaN for missing; strings that are not numbers raise."""
    if ptypes.is_bool_dtype(col.dtype):
        return col.to_numpy(dtype=np.float64)
    if ptypes.is_numeric_dtype(col.dtype) and not isinstance(col.dtype, pd.CategoricalDtype):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    converted = pd.to_numeric(col, errors="coerce")
    bad = converted.isna() & col.notna()
    if bad.any():
        example = col[bad].iloc[0]
        raise ValueError(
            f"Numeric column {name!r} contains non-numeric values such as {example!r} "
            f"({int(bad.sum())} row(s)). Clean the column, or declare it categorical with "
            "categorical_features=[...] when fitting."
        )
    return converted.to_numpy(dtype=np.float64, na_value=np.nan)


def _category_keys(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """String keys for category values and the missing mask (None/NaN/NA are missing)."""
    missing = col.isna().to_numpy()
    keys = col.astype(object).where(~missing, "").astype(str).to_numpy()
    return keys, missing


class TablePreprocessor:
    """Fitted on the training table only; maps any later table to :class:`PreparedTable`.

    Numeric columns: infinite values raise; quantile-normal (default) or standard scaling;
    missing values become 0 (the median / mean) plus a 0/1 missing-indicator feature for
    each column that had missing values at fit time. Categorical columns: integer codes
    ``>= 2`` for categories seen at fit, ``0`` for missing, ``1`` for unseen categories.

    Parameters
    ----------
    categorical_features : list of names or positions, boolean mask, or None
        Columns forced to be categorical; others are inferred from their dtype.
    numeric_scaling : {"quantile", "standard", "none"}
    random_state : int
        Seeds the tiny noise that breaks ties before fitting quantiles (as in rtdl).

    Examples
    --------
    >>> import pandas as pd
    >>> pre = TablePreprocessor().fit(pd.DataFrame({"a": [1.0, None, 3.0], "b": ["x", "y", "x"]}))
    >>> out = pre.transform(pd.DataFrame({"a": [2.0], "b": ["new"]}))
    >>> out.x_num.shape, out.x_cat.tolist()
    ((1, 2), [[1]])
    """

    def __init__(self, categorical_features=None, numeric_scaling: str = "quantile", random_state: int = 0):
        if numeric_scaling not in ("quantile", "standard", "none"):
            raise ValueError(f"numeric_scaling must be 'quantile', 'standard' or 'none', got {numeric_scaling!r}.")
        self.categorical_features = categorical_features
        self.numeric_scaling = numeric_scaling
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(self, df: pd.DataFrame, *, from_numpy: bool = False) -> TablePreprocessor:
        self.__dict__.pop("_indexes", None)
        self.schema = infer_schema(df, self.categorical_features, from_numpy=from_numpy)
        rng = np.random.default_rng(self.random_state)
        self.num_params: list[np.ndarray] = []
        self.num_has_missing: list[bool] = []
        for name in self.schema.numeric:
            values = _numeric_values(df[name], name)
            self._check_finite(values, name)
            observed = values[~np.isnan(values)]
            if observed.size == 0:
                raise ValueError(f"Column {name!r} is entirely empty (all values missing): drop it before fitting.")
            self.num_params.append(self._fit_scaler(observed, rng))
            self.num_has_missing.append(bool(observed.size < values.size))
        self.categories: list[list[str]] = []
        for name in self.schema.categorical:
            keys, missing = _category_keys(df[name])
            if missing.all():
                raise ValueError(f"Column {name!r} is entirely empty (all values missing): drop it before fitting.")
            self.categories.append(sorted(set(keys[~missing].tolist())))
        return self

    def fit_batches(self, batches, *, sample_rows: int = 200_000) -> TablePreprocessor:
        """Fit on a stream of DataFrames that need not fit in memory together.

        Categories are the union over all batches; numeric scalers are fitted on a uniform
        random sample of ``sample_rows`` rows of the whole stream (quantiles from 200k rows
        are accurate to well under 1%); missing-value indicators cover every batch.
        Memory: one batch, the sample and the category sets.
        """
        rng = np.random.default_rng(self.random_state)
        self.__dict__.pop("_indexes", None)
        sample_keys, sample_values, has_missing, seen = None, None, None, None
        for df in batches:
            if sample_keys is None:
                self.schema = infer_schema(df, self.categorical_features)
                n_num = len(self.schema.numeric)
                sample_keys, sample_values = np.zeros(0), np.zeros((0, n_num))
                has_missing = np.zeros(n_num, dtype=bool)
                seen = [set() for _ in self.schema.categorical]
            values = (
                np.column_stack([_numeric_values(df[c], c) for c in self.schema.numeric])
                if self.schema.numeric
                else np.zeros((len(df), 0))
            )
            for j, name in enumerate(self.schema.numeric):
                self._check_finite(values[:, j], name)
            has_missing |= np.isnan(values).any(axis=0)
            # Reservoir by random keys: the sample_rows smallest keys over the stream are uniform.
            keys = np.concatenate([sample_keys, rng.random(len(df))])
            values = np.concatenate([sample_values, values])
            if len(keys) > sample_rows:
                keep = np.argpartition(keys, sample_rows)[:sample_rows]
                keys, values = keys[keep], values[keep]
            sample_keys, sample_values = keys, values
            for j, name in enumerate(self.schema.categorical):
                col_keys, missing = _category_keys(df[name])
                seen[j].update(pd.unique(col_keys[~missing]).tolist())
        if sample_keys is None:
            raise ValueError("The data stream is empty: no rows to fit on.")
        self.num_params, self.num_has_missing = [], []
        for j, name in enumerate(self.schema.numeric):
            observed = sample_values[:, j][~np.isnan(sample_values[:, j])]
            if observed.size == 0:
                raise ValueError(f"Column {name!r} is entirely empty (all values missing): drop it before fitting.")
            self.num_params.append(self._fit_scaler(observed, rng))
            self.num_has_missing.append(bool(has_missing[j]))
        for j, name in enumerate(self.schema.categorical):
            if not seen[j]:
                raise ValueError(f"Column {name!r} is entirely empty (all values missing): drop it before fitting.")
        self.categories = [sorted(c) for c in seen]
        return self

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
        return len(self.schema.numeric) + sum(self.num_has_missing)

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table sizes per categorical column (categories + missing + unknown)."""
        return [len(c) + _N_RESERVED for c in self.categories]

    @property
    def output_feature_names(self) -> list[str]:
        names = [str(n) for n in self.schema.numeric]
        names += [f"{n}__missing" for n, m in zip(self.schema.numeric, self.num_has_missing) if m]
        return names + [str(n) for n in self.schema.categorical]

    def _scale(self, values: np.ndarray, params: np.ndarray) -> np.ndarray:
        if self.numeric_scaling == "quantile":
            return quantile_normal(values, params)
        return (values - params[0]) / params[1]

    def transform(self, df: pd.DataFrame) -> PreparedTable:
        n = df.shape[0]
        num_cols, indicators = [], []
        for name, params, has_missing in zip(self.schema.numeric, self.num_params, self.num_has_missing):
            values = _numeric_values(df[name], name)
            self._check_finite(values, name)
            missing = np.isnan(values)
            scaled = self._scale(values, params)
            scaled[missing] = 0.0
            num_cols.append(scaled)
            if has_missing:
                indicators.append(missing.astype(np.float64))
        x_num = np.stack(num_cols + indicators, axis=1).astype(np.float32) if num_cols else np.zeros((n, 0), np.float32)
        return PreparedTable(x_num, self.category_codes(df))

    def category_codes(self, df: pd.DataFrame) -> np.ndarray:
        """The categorical columns as int64 codes (n, n_cat): ``>= 2`` seen, 0 missing, 1 unseen."""
        cat_cols = []
        if self.__dict__.get("_indexes") is None or len(self._indexes) != len(self.categories):
            # Hash tables over the categories, built once (10^6-id fields take a second).
            self._indexes = [pd.Index(cats, dtype=object) for cats in self.categories]
        for name, index in zip(self.schema.categorical, self._indexes):
            keys, missing = _category_keys(df[name])
            codes = index.get_indexer(keys).astype(np.int64) + _N_RESERVED
            codes[codes == _N_RESERVED - 1] = UNKNOWN_ID
            codes[missing] = MISSING_ID
            cat_cols.append(codes)
        return np.stack(cat_cols, axis=1) if cat_cols else np.zeros((df.shape[0], 0), np.int64)

    def fit_transform(self, df: pd.DataFrame, *, from_numpy: bool = False) -> PreparedTable:
        return self.fit(df, from_numpy=from_numpy).transform(df)

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
            "num_has_missing": self.num_has_missing,
            "categories": self.categories,
        }
        arrays = {f"num_params_{i}": p for i, p in enumerate(self.num_params)}
        return config, arrays

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> TablePreprocessor:
        self = cls(numeric_scaling=config["numeric_scaling"])
        self.schema = Schema(
            tuple(config["numeric"]),
            tuple(config["categorical"]),
        )
        self.num_has_missing = [bool(m) for m in config["num_has_missing"]]
        self.categories = [list(map(str, c)) for c in config["categories"]]
        self.num_params = [
            np.asarray(arrays[f"num_params_{i}"], dtype=np.float64) for i in range(len(self.schema.numeric))
        ]
        return self


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
