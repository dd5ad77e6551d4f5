"""Checks a table against an estimator before fit and predict (sklearn's ``validate_data`` for
raw tables): shapes, column names, and the columns a fitted estimator expects."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.utils.validation import validate_data

from .io import as_1d_array, as_dataframe
from .preprocess import computed_once

__all__ = ["prepare_fit", "prepare_frame", "row_weights"]


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
        # columns are matched by position once names and counts are validated (one renamed frame
        # for the models predicting the same rows together: they then share what they compute of it).
        given, columns = df, estimator._fit_columns
        df = computed_once("renamed", repr(list(columns)), given, lambda: given.set_axis(columns, axis=1))
    return df, from_numpy


def row_weights(estimator, y: np.ndarray, sample_weight=None, class_weight=None, classes=None) -> np.ndarray | None:
    """The weight of each training row: ``sample_weight`` times the weight of the row's class
    (``class_weight``: ``"balanced"`` or ``{class: weight}``, scikit-learn's meaning), scaled to
    mean 1; None when every row weighs the same (a fit without weights, exactly). ``classes``:
    the model's classes, when ``y`` may lack some (``partial_fit``'s chunks); a key of
    ``class_weight`` that is no class of them is left out with a warning (a typo, or a class a
    cross-validation fold lacks), as scikit-learn leaves it out.

    Examples
    --------
    >>> row_weights(None, np.array([0, 0, 0, 1]), class_weight="balanced").round(2).tolist()
    [0.67, 0.67, 0.67, 2.0]
    >>> row_weights(None, np.array([0, 1]), sample_weight=[3, 3]) is None
    True
    """
    from sklearn.utils.class_weight import compute_sample_weight

    name = type(estimator).__name__ if estimator is not None else "the model"
    weights = np.ones(len(y))
    if sample_weight is not None:
        weights = np.asarray(as_1d_array(sample_weight, name="sample_weight"), dtype=np.float64)
        if weights.shape != (len(y),):
            raise ValueError(f"sample_weight has {weights.shape[0]} values but y has {len(y)} rows: they must match.")
        if not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError("sample_weight must hold finite numbers >= 0 (no NaN, inf or negative weights).")
    if class_weight is not None:
        if class_weight != "balanced" and not isinstance(class_weight, dict):
            raise ValueError(f"class_weight must be 'balanced', a dict {{class: weight}} or None: {class_weight!r}.")
        if isinstance(class_weight, dict):  # (a class absent from this y, a chunk's, simply weighs no row)
            by_class = _by_class(class_weight, np.unique(y).tolist() if classes is None else list(classes))
            weights = weights * pd.Series(np.asarray(y)).map(by_class).fillna(1.0).to_numpy(dtype=np.float64)
        else:
            weights = weights * compute_sample_weight(class_weight, y)
    total = weights.sum()
    if not total > 0:
        raise ValueError(f"Every row has weight zero: {name} has nothing to learn from; give rows a positive weight.")
    if np.all(weights == weights[0]):
        return None
    return weights * (len(weights) / total)


def _by_class(class_weight: dict, classes: list) -> dict:
    """``class_weight`` keyed by the classes of y; a key may also be a class's text (``"1"`` for
    the class 1, as JSON and the command line give them)."""
    by_text = {str(c): c for c in classes}
    known = set(classes)
    out, unknown = {}, []
    for key, value in class_weight.items():
        if key in known:
            out[key] = value
        elif str(key) in by_text:
            out[by_text[str(key)]] = value
        else:
            unknown.append(key)
    if unknown:
        warnings.warn(
            f"class_weight names {unknown!r}, not a class of y (classes: {classes[:20]}): left out.",
            UserWarning,
            stacklevel=4,
        )
    return out
