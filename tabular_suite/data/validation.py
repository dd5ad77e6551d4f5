"""Checks a table against an estimator before fit and predict (sklearn's ``validate_data`` for
raw tables): shapes, column names, and the columns a fitted estimator expects."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils.validation import validate_data

from .io import as_1d_array, as_dataframe

__all__ = ["prepare_fit", "prepare_frame"]


def prepare_fit(estimator, X, y) -> tuple[pd.DataFrame, bool, np.ndarray]:
    """:func:`prepare_frame` for fit, plus ``y`` as a 1-d array with as many rows (at least 2)."""
    if y is None:
        raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the target y is None.")
    df, from_numpy = prepare_frame(estimator, X, reset=True)
    y = as_1d_array(y)
    if y.shape[0] != df.shape[0]:
        raise ValueError(f"X has {df.shape[0]} rows but y has {y.shape[0]}: they must match.")
    if df.shape[0] < 2:
        raise ValueError(f"Found n_samples=1 while at least 2 samples are required to fit {type(estimator).__name__}.")
    return df, from_numpy, y


def prepare_frame(estimator, X, *, reset: bool) -> tuple[pd.DataFrame, bool]:
    """``X`` as a DataFrame validated against (``reset=False``) or recorded as (``reset=True``)
    the estimator's features (``n_features_in_``, ``feature_names_in_``); also whether ``X``
    came without column names. Predict-time columns are renamed to the fitted ones."""
    from_numpy = not hasattr(X, "columns") and not hasattr(X, "column_names")
    df = as_dataframe(X)
    if df.shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={df.shape}) while a minimum of 1 is required.")
    if df.shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={df.shape}) while a minimum of 1 is required: the table is empty."
        )
    if not all(isinstance(c, str) for c in df.columns) and not all(
        isinstance(c, (int, np.integer)) for c in df.columns
    ):
        raise ValueError("Column names must be all strings (or all integers for arrays); got a mix.")
    try:
        validate_data(estimator, df, skip_check_array=True, reset=reset)
    except ValueError as exc:
        if "feature names" in str(exc):
            raise ValueError(
                f"{exc}\nPass the same columns, in the same order, as during fit "
                "(for a DataFrame: X[est.feature_names_in_])."
            ) from None
        raise
    if not reset:
        # Predict-time tables may come with or without names (sklearn warns on a mix);
        # columns are matched by position once names and counts are validated.
        df = df.set_axis(estimator._fit_columns, axis=1)
    return df, from_numpy
