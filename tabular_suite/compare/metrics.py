"""Metrics for comparisons: one convention, "higher is better" scores for ranking.

Classification predictions are probability matrices (rows, n_classes) over encoded labels
``0..n_classes-1``; regression predictions are 1-d arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
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
        v = self.value(y, pred)
        return v if self.greater_is_better else -v


def _labels(proba: np.ndarray) -> np.ndarray:
    return np.argmax(proba, axis=1)


def _roc_auc(y, proba):
    if proba.shape[1] == 2:
        return skm.roc_auc_score(y, proba[:, 1])
    proba = np.clip(proba, 1e-12, None)
    return skm.roc_auc_score(
        y, proba / proba.sum(1, keepdims=True), multi_class="ovo", labels=np.arange(proba.shape[1])
    )


def _log_loss(y, proba):
    return skm.log_loss(y, np.clip(proba, 1e-15, 1), labels=np.arange(proba.shape[1]))


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
