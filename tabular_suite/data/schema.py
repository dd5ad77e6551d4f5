"""Column roles: which features are numeric and which are categorical."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

__all__ = ["Schema", "infer_schema", "infer_task"]


@dataclass(frozen=True)
class Schema:
    """Names (column labels) of the numeric and categorical features, in table order."""

    numeric: tuple
    categorical: tuple

    @property
    def columns(self) -> tuple:
        return self.numeric + self.categorical


def _numpy_object_column_is_numeric(col: pd.Series) -> bool:
    """For object arrays built from numpy input: numeric if every value is a number or None."""
    return all(v is None or isinstance(v, (int, float, np.number, np.bool_)) for v in col.to_numpy())


def _resolve_categorical(df: pd.DataFrame, categorical_features) -> set:
    if categorical_features is None or (isinstance(categorical_features, str) and categorical_features == "from_dtype"):
        return set()
    if isinstance(categorical_features, str):
        categorical_features = [categorical_features]
    spec = list(categorical_features)
    if spec and all(isinstance(s, (bool, np.bool_)) for s in spec):
        if len(spec) != df.shape[1]:
            raise ValueError(
                f"categorical_features is a boolean mask of length {len(spec)}, but X has {df.shape[1]} columns."
            )
        return {c for c, flag in zip(df.columns, spec) if flag}
    resolved = set()
    for s in spec:
        if s in df.columns:
            resolved.add(s)
        elif isinstance(s, (int, np.integer)) and 0 <= s < df.shape[1]:
            resolved.add(df.columns[s])
        else:
            raise ValueError(
                f"categorical_features names {s!r}, which is not a column of X (columns: {list(df.columns)[:20]})."
            )
    return resolved


def infer_schema(df: pd.DataFrame, categorical_features=None, *, from_numpy: bool = False) -> Schema:
    """Assign each column of ``df`` a role.

    Columns with dtype object, string, category or bool are categorical; integer and float
    columns are numeric. ``categorical_features`` (names, integer positions or a boolean mask)
    forces columns to be categorical. For numpy input (``from_numpy=True``) an object column is
    numeric when all its values are numbers.

    Examples
    --------
    >>> import pandas as pd
    >>> infer_schema(pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}))
    Schema(numeric=('a',), categorical=('b',))
    """
    forced = _resolve_categorical(df, categorical_features)
    numeric, categorical = [], []
    for name in df.columns:
        col = df[name]
        dtype = col.dtype
        if name in forced:
            categorical.append(name)
        elif ptypes.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
            categorical.append(name)
        elif ptypes.is_complex_dtype(dtype):
            raise ValueError(f"Complex data not supported (column {name!r}).")
        elif ptypes.is_numeric_dtype(dtype):
            numeric.append(name)
        elif ptypes.is_datetime64_any_dtype(dtype) or ptypes.is_timedelta64_dtype(dtype):
            raise TypeError(
                f"Column {name!r} has dtype {dtype}; convert dates/durations to numbers "
                "(e.g. timestamps or day counts) before fitting."
            )
        elif from_numpy and dtype.kind == "O" and _numpy_object_column_is_numeric(col):
            numeric.append(name)
        else:
            categorical.append(name)
    return Schema(tuple(numeric), tuple(categorical))


#: Numeric targets with at most this many distinct (integral) values are class labels.
MAX_CLASSES_FOR_NUMERIC_TARGET = 20


def infer_task(y) -> str:
    """``"classification"`` or ``"regression"`` from a target's values.

    Strings, booleans and categories are classes; numbers are a regression target unless
    they are integral with at most 20 distinct values (e.g. 0/1 or 1..7 labels). Pass the
    task explicitly where this guess is wrong (e.g. counts with few values).

    Examples
    --------
    >>> infer_task(["a", "b"]), infer_task([0.0, 1.0, 1.0]), infer_task([1, 2, 3, 2])
    ('classification', 'classification', 'classification')
    >>> infer_task(list(range(100))), infer_task([0.5, 1.5])
    ('regression', 'regression')
    """
    s = pd.Series(np.asarray(y).ravel()) if not isinstance(y, pd.Series) else y
    if not (ptypes.is_numeric_dtype(s.dtype) and not ptypes.is_bool_dtype(s.dtype)):
        return "classification"
    values = s.dropna().to_numpy(dtype=np.float64)
    integral = np.all(np.isfinite(values)) and np.all(values == np.round(values))
    return "classification" if integral and len(np.unique(values)) <= MAX_CLASSES_FOR_NUMERIC_TARGET else "regression"
