"""Permutation feature importance (Breiman, 2001; scikit-learn's ``permutation_importance``): how
much a model's score drops when one column's values are shuffled among the rows, which breaks
the column's link to the target and keeps its distribution.

The comparison scores it on out-of-fold rows (each fold's validation rows, by the models that
did not train on them), or on a table the user gives. Every shuffled copy of a fold's rows is
predicted in one call per model, since some models (the in-context one) pay a large fixed cost
per call."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .metrics import Metric

__all__ = ["permutation_importance"]

# Rows predicted per call: all shuffled copies of a part, in chunks of about this many rows.
_CHUNK_ROWS = 100_000


def permutation_importance(
    parts: Sequence[tuple[Callable[[pd.DataFrame], np.ndarray], pd.DataFrame, np.ndarray]],
    metric: Metric,
    *,
    n_repeats: int = 3,
    random_state: int = 0,
) -> pd.DataFrame:
    """Importance of each column: the metric's score on ``parts`` minus its score with the
    column shuffled (within each part), mean and standard deviation over ``n_repeats``
    shuffles. Higher = the model relies more on the column; about 0 = unused; below 0 = the
    column hurts (or noise).

    ``parts``: ``(predict, X, y)`` triples whose predictions are pooled into one score, e.g. the
    folds of a cross-validation, each with the model that did not train on its rows
    (``predict`` returns class probabilities over codes ``0..C-1`` or values; ``y`` holds codes
    or values).

    Returns a DataFrame indexed by column: ``importance``, ``stddev``, ``n_repeats``, sorted by
    importance, and the unshuffled score in ``attrs["score"]``.

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> from tabular_suite.compare.metrics import get_metric
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"signal": rng.normal(size=300), "noise": rng.normal(size=300)})
    >>> y = 3 * X["signal"].to_numpy()
    >>> model = LinearRegression().fit(X, y)
    >>> imp = permutation_importance([(model.predict, X, y)], get_metric("rmse", "regression"))
    >>> imp.index.tolist(), bool(imp.loc["noise", "importance"] < 1e-6 < imp.loc["signal", "importance"])
    (['signal', 'noise'], True)
    """
    if not isinstance(n_repeats, (int, np.integer)) or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive integer, got {n_repeats!r}.")
    rng = np.random.default_rng(random_state)
    columns = list(parts[0][1].columns)
    base_preds = [np.asarray(predict(X)) for predict, X, _ in parts]
    y_all = np.concatenate([np.asarray(y) for _, _, y in parts])
    base = metric.score(y_all, np.concatenate(base_preds))
    # drops[column][repeat]: pooled predictions of every part with that column shuffled
    shuffled_preds = {c: [[] for _ in range(n_repeats)] for c in columns}
    for predict, X, _ in parts:
        copies = [(c, r) for c in columns for r in range(n_repeats)]
        per_chunk = max(1, _CHUNK_ROWS // max(len(X), 1))
        for start in range(0, len(copies), per_chunk):
            batch = copies[start : start + per_chunk]
            frames = []
            for c, _ in batch:
                frame = X.copy()
                frame[c] = X[c].to_numpy()[rng.permutation(len(X))]
                frames.append(frame)
            pred = np.asarray(predict(pd.concat(frames, ignore_index=True)))
            for i, (c, r) in enumerate(batch):
                shuffled_preds[c][r].append(pred[i * len(X) : (i + 1) * len(X)])
    rows = {}
    for c in columns:
        drops = [base - metric.score(y_all, np.concatenate(shuffled_preds[c][r])) for r in range(n_repeats)]
        rows[c] = {"importance": float(np.mean(drops)), "stddev": float(np.std(drops)), "n_repeats": n_repeats}
    out = pd.DataFrame.from_dict(rows, orient="index").sort_values("importance", ascending=False, kind="stable")
    out.index.name = "feature"
    out.attrs["score"] = base
    return out
