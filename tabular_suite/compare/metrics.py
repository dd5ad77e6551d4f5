"""Metrics for comparisons: one convention, "higher is better" scores for ranking.

Classification predictions are probability matrices (rows, n_classes) over encoded labels
``0..n_classes-1``; regression predictions are 1-d arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn import metrics as skm

__all__ = ["Metric", "get_metric", "METRICS"]


@dataclass(frozen=True)
class Metric:
    """A named metric: ``value(y, pred)`` and its direction.

    Examples
    --------
    >>> m = get_metric("rmse", "regression")
    >>> m.value(np.array([0.0, 1.0]), np.array([0.0, 0.0])), m.score(np.array([0.0, 1.0]), np.array([0.0, 0.0]))
    (0.7071067811865476, -0.7071067811865476)
    """

    name: str
    task: str
    greater_is_better: bool
    _fn: Callable[[np.ndarray, np.ndarray], float]

    def value(self, y: np.ndarray, pred: np.ndarray) -> float:
        return float(self._fn(y, pred))

    def score(self, y: np.ndarray, pred: np.ndarray) -> float:
        """The value, negated when lower is better, so that higher always ranks first."""
        return self.signed(self.value(y, pred))

    def signed(self, x: float) -> float:
        """A value as a higher-is-better score, or such a score back as the value (negated when
        lower is better; its own inverse).

        >>> get_metric("rmse", "regression").signed(-0.5), get_metric("accuracy", "classification").signed(0.9)
        (0.5, 0.9)
        """
        return x if self.greater_is_better else -x


def _labels(proba: np.ndarray) -> np.ndarray:
    return np.argmax(proba, axis=1)


def _roc_auc(y, proba):
    if proba.shape[1] == 2:
        return _binary_roc_auc(y, proba[:, 1])
    proba = np.clip(proba, 1e-12, None)
    return skm.roc_auc_score(
        y, proba / proba.sum(1, keepdims=True), multi_class="ovo", labels=np.arange(proba.shape[1])
    )


def _binary_roc_auc(y, score) -> float:
    """scikit-learn's binary ROC AUC (class code 1 positive) from the score's ranks (ties
    averaged), 2.5x faster on 48k rows: the greedy ensemble evaluates it thousands of times."""
    positive = np.asarray(y) == 1
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return skm.roc_auc_score(y, score)  # (one class: undefined, its warning and NaN)
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _log_loss(y, proba):
    """scikit-learn's log loss of probabilities clipped to [1e-15, 1] (no renormalisation; it
    clips at the float eps too) without its input checks, 50x faster on 48k rows x 7 classes."""
    picked = np.clip(proba[np.arange(len(proba)), np.asarray(y, dtype=np.intp)], 1e-15, 1)
    eps = np.finfo(picked.dtype).eps
    return float(-np.mean(np.log(np.clip(picked, eps, 1 - eps))))


_CLASSIFICATION = {
    "accuracy": (True, lambda y, p: skm.accuracy_score(y, _labels(p))),
    "balanced_accuracy": (True, lambda y, p: skm.balanced_accuracy_score(y, _labels(p))),
    "roc_auc": (True, _roc_auc),
    "log_loss": (False, _log_loss),
    "f1_macro": (True, lambda y, p: skm.f1_score(y, _labels(p), average="macro")),
}
_REGRESSION = {
    "rmse": (False, lambda y, p: np.sqrt(skm.mean_squared_error(y, p))),
    "mae": (False, skm.mean_absolute_error),
    "r2": (True, skm.r2_score),
}
METRICS = {"classification": _CLASSIFICATION, "regression": _REGRESSION}
DEFAULT_METRIC = {"classification": "accuracy", "regression": "rmse"}


def get_metric(name: str | None, task: str) -> Metric:
    """The metric ``name`` for ``task`` (None = accuracy / rmse)."""
    name = DEFAULT_METRIC[task] if name is None else str(name).lower()
    table = METRICS[task]
    if name not in table:
        raise ValueError(f"Unknown metric {name!r} for {task}; choose one of {', '.join(table)}.")
    greater, fn = table[name]
    return Metric(name, task, greater, fn)
