"""Column roles: which features are numeric, categorical, dates and text, and the task of a target."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from .features import TEXT_DIM, DateFeatures, infer_feature_types

__all__ = ["Schema", "infer_schema", "infer_task"]


@dataclass(frozen=True)
class Schema:
    """Names (column labels) of the features by role, in table order. Boolean columns are
    categorical (two levels and missing); datetime and text columns become numeric features."""

    numeric: tuple
    categorical: tuple
    datetime: tuple = ()
    text: tuple = ()

    @property
    def columns(self) -> tuple:
        return self.numeric + self.categorical + self.datetime + self.text

    @property
    def numeric_features(self) -> tuple:
        """Names of the numeric block: numeric columns, then each date's and each text's features."""
        dates = tuple(f"{c}__{n}" for c in self.datetime for n in DateFeatures.NAMES)
        texts = tuple(f"{c}__text{i}" for c in self.text for i in range(TEXT_DIM))
        return tuple(str(c) for c in self.numeric) + dates + texts

    @classmethod
    def from_types(cls, kinds: dict) -> Schema:
        """The schema of ``{column: kind}`` (see :func:`~tabular_suite.data.features.infer_feature_types`)."""
        by_kind = {"numeric": [], "categorical": [], "datetime": [], "text": []}
        for name, kind in kinds.items():
            base = kind.split(":", 1)[0]
            by_kind["categorical" if base == "boolean" else base].append(name)
        return cls(*(tuple(by_kind[k]) for k in ("numeric", "categorical", "datetime", "text")))


def infer_schema(
    df: pd.DataFrame, categorical_features=None, *, feature_types=None, coerce_numeric=None, from_numpy=False
) -> Schema:
    """Assign each column of ``df`` a role (see :func:`~tabular_suite.data.features.infer_feature_types`).

    Examples
    --------
    >>> import pandas as pd
    >>> infer_schema(pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}))
    Schema(numeric=('a',), categorical=('b',), datetime=(), text=())
    """
    kinds = infer_feature_types(df, categorical_features, feature_types, coerce_numeric, from_numpy=from_numpy)
    return Schema.from_types(kinds)


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
