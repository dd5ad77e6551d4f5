"""What :func:`~tabular_suite.compare` fits on the best row's out-of-fold predictions after the
models: probability calibration, the decision threshold of a binary task, and the residual
quantiles that give a regression its intervals. Each is fitted on predictions the models made
for rows they did not train on, so none needs data of its own."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression

from .metrics import Metric, get_metric

__all__ = [
    "Calibrator",
    "fit_calibrator",
    "cross_fitted",
    "tune_threshold",
    "reliability",
    "residual_quantiles",
    "CALIBRATION_METHODS",
    "check_settings",
    "fit_postprocessing",
]

CALIBRATION_METHODS = ("temperature", "isotonic")
_EPS = 1e-12
# Metrics whose value depends on the predicted class, not on the probabilities: a binary
# decision threshold can be tuned for them.
DECISION_METRICS = ("accuracy", "balanced_accuracy", "f1_macro")


class Calibrator:
    """A fitted map from predicted class probabilities to calibrated ones.

    ``"temperature"``: one scalar T, ``softmax(log p / T)`` (Guo et al., 2017), fitted by
    log loss; keeps the ranking of the classes in every row, so accuracy and ROC AUC are
    unchanged. ``"isotonic"``: a monotone map per class (one-vs-rest), rows renormalised
    (scikit-learn's ``CalibratedClassifierCV(method="isotonic")``); more flexible, needs more
    rows (hundreds per class).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p1 = rng.uniform(0.05, 0.95, 2000); y = (rng.uniform(size=2000) < p1).astype(int)
    >>> overconfident = np.column_stack([1 - p1 ** 0.3, p1 ** 0.3])
    >>> cal = fit_calibrator("temperature", overconfident, y)
    >>> cal.temperature > 1  # softens the probabilities
    True
    """

    def __init__(self, method: str, temperature: float | None = None, points: list | None = None):
        self.method, self.temperature, self.points = method, temperature, points

    def transform(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (rows sum to 1)."""
        proba = np.asarray(proba, dtype=np.float64)
        if self.method == "temperature":
            logits = np.log(np.clip(proba, _EPS, 1.0)) / self.temperature
            logits -= logits.max(axis=1, keepdims=True)
            out = np.exp(logits)
        else:
            out = np.column_stack([np.interp(proba[:, k], xs, ys) for k, (xs, ys) in enumerate(self.points)])
            out = np.clip(out, _EPS, None)
        return out / out.sum(axis=1, keepdims=True)

    def get_state(self) -> dict:
        """JSON-able state (see :meth:`from_state`)."""
        return {"method": self.method, "temperature": self.temperature, "points": self.points}

    @classmethod
    def from_state(cls, state: dict) -> Calibrator:
        return cls(state["method"], state.get("temperature"), state.get("points"))

    def __repr__(self) -> str:
        detail = f"T={self.temperature:.3g}" if self.method == "temperature" else f"{len(self.points)} classes"
        return f"Calibrator({self.method}, {detail})"


def check_settings(calibrate, threshold) -> None:
    """A clear error for a ``calibrate`` or ``decision_threshold`` that compare cannot use."""
    if calibrate is not None and calibrate != "auto" and calibrate not in CALIBRATION_METHODS:
        raise ValueError(f"calibrate must be None, 'auto', 'temperature' or 'isotonic', got {calibrate!r}.")
    if threshold is None or threshold == "auto":
        return
    if isinstance(threshold, bool) or not (isinstance(threshold, (int, float)) and 0 < threshold < 1):
        raise ValueError(f"decision_threshold must be None, 'auto' or a number in (0, 1), got {threshold!r}.")


def fit_calibrator(method: str, proba: np.ndarray, y: np.ndarray) -> Calibrator:
    """Fit ``method`` ("temperature" or "isotonic") on probabilities ``proba`` (rows, classes)
    and the class codes ``y``."""
    check_settings(method, None)
    proba = np.asarray(proba, dtype=np.float64)
    if method == "temperature":
        log_p = np.log(np.clip(proba, _EPS, 1.0))
        rows = np.arange(len(y))

        def loss(log_t: float) -> float:
            z = log_p / np.exp(log_t)
            z -= z.max(axis=1, keepdims=True)
            return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[rows, y]))

        fitted = minimize_scalar(loss, bounds=(-4.0, 4.0), method="bounded")
        return Calibrator("temperature", temperature=float(np.exp(fitted.x)))
    points = []
    for k in range(proba.shape[1]):
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(proba[:, k], (y == k).astype(float))
        points.append([iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist()])
    return Calibrator("isotonic", points=points)


def cross_fitted(method: str, proba: np.ndarray, y: np.ndarray, folds) -> np.ndarray:
    """Calibrated probabilities of each fold's rows by a calibrator fitted on the other folds: an
    honest view of what calibration does to rows it has not seen (the report's reliability
    plot and scores), where one calibrator fitted on all rows would flatter itself."""
    out = np.empty_like(np.asarray(proba, dtype=np.float64))
    for train_idx, valid_idx in folds:
        out[valid_idx] = fit_calibrator(method, proba[train_idx], y[train_idx]).transform(proba[valid_idx])
    return out


def tune_threshold(proba: np.ndarray, y: np.ndarray, metric: Metric) -> tuple[float, float, float]:
    """The decision threshold on the positive class's probability that scores best on ``metric``
    (binary): ``(threshold, score at it, score at 0.5)``. Candidates: 0.5 and the midpoints
    of up to 200 quantiles of the probabilities; ties go to the threshold nearest 0.5."""
    p1 = np.asarray(proba, dtype=np.float64)[:, 1]
    grid = np.unique(np.quantile(p1, np.linspace(0.0, 1.0, 201)))
    candidates = np.unique(np.r_[0.5, (grid[1:] + grid[:-1]) / 2])
    base = metric.value(y, np.column_stack([1 - p1, p1]))
    best_t, best = 0.5, base
    for t in candidates[np.argsort(np.abs(candidates - 0.5), kind="stable")]:
        value = metric.value(y, _decided(p1, t))
        if (value > best) if metric.greater_is_better else (value < best):
            best_t, best = float(t), value
    return best_t, float(best), float(base)


def _decided(p1: np.ndarray, threshold: float) -> np.ndarray:
    """Two-column "probabilities" whose argmax is the decision at ``threshold``."""
    positive = (p1 >= threshold).astype(np.float64)
    return np.column_stack([1 - positive, positive])


def reliability(proba: np.ndarray, y: np.ndarray, n_bins: int = 10) -> dict:
    """Reliability-diagram data: the confidence of the predicted class in ``n_bins`` equal-width
    bins against how often that class was right; and the expected calibration error (ECE,
    the rows-weighted mean gap).

    Examples
    --------
    >>> r = reliability(np.array([[0.2, 0.8], [0.3, 0.7], [0.9, 0.1]]), np.array([1, 0, 0]), n_bins=5)
    >>> r["rows"], round(r["ece"], 3)
    ([0, 0, 0, 1, 2], 0.333)
    """
    proba = np.asarray(proba, dtype=np.float64)
    confidence, predicted = proba.max(axis=1), proba.argmax(axis=1)
    correct = (predicted == y).astype(float)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    rows = np.bincount(bins, minlength=n_bins)
    conf_sum = np.bincount(bins, confidence, minlength=n_bins)
    hit_sum = np.bincount(bins, correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf, accuracy = conf_sum / rows, hit_sum / rows
    ece = float(np.sum(np.abs(hit_sum - conf_sum)) / len(y))
    return {
        "rows": rows.tolist(),
        "confidence": [None if np.isnan(v) else float(v) for v in mean_conf],
        "accuracy": [None if np.isnan(v) else float(v) for v in accuracy],
        "ece": ece,
    }


def residual_quantiles(y: np.ndarray, pred: np.ndarray, n_levels: int = 1001) -> np.ndarray:
    """Quantiles at ``n_levels`` evenly spaced levels (0 to 1) of the out-of-fold residuals
    ``y - pred``: adding the residuals' q-quantile to a prediction estimates the target's
    q-quantile (split-conformal style: marginal coverage, one width for every row)."""
    return np.quantile(np.asarray(y, np.float64) - np.asarray(pred, np.float64), np.linspace(0.0, 1.0, n_levels))


def fit_postprocessing(task: str, metric: Metric, pred: np.ndarray, y: np.ndarray, folds, calibrate, threshold) -> dict:
    """Everything fitted on the best row's out-of-fold predictions ``pred`` (``y``: class codes
    or values; ``folds``: the comparison's folds), with a summary for the report.

    ``calibrate``: None, "temperature", "isotonic" or "auto" (temperature scaling when it lowers
    the cross-fitted log loss). ``threshold`` (binary only): None (argmax), a number, or "auto"
    (tuned for ``metric`` when the metric scores decisions, kept when the threshold tuned on the
    other folds beats 0.5 on each fold's rows, summed over folds). Returns ``{"calibrator",
    "threshold", "residual_quantiles", "summary"}``.
    """
    out = {"calibrator": None, "threshold": None, "residual_quantiles": None, "summary": {}}
    if task == "regression":
        out["residual_quantiles"] = residual_quantiles(y, pred)
        honest = np.empty(len(y), dtype=bool)  # coverage of the 90% interval, each fold by the others' residuals
        for train_idx, valid_idx in folds:
            lo, hi = np.quantile(y[train_idx] - pred[train_idx], [0.05, 0.95])
            residual = y[valid_idx] - pred[valid_idx]
            honest[valid_idx] = (residual >= lo) & (residual <= hi)
        lo, hi = np.quantile(y - pred, [0.05, 0.95])
        width, coverage = float(hi - lo), float(honest.mean())
        out["summary"]["intervals"] = {"coverage": 0.9, "width": width, "cross_fitted_coverage": coverage}
        return out
    log_loss = get_metric("log_loss", "classification")
    summary = {"before": reliability(pred, y), "log_loss_before": log_loss.value(y, pred)}
    calibrated = pred
    if calibrate is not None:
        method = "temperature" if calibrate == "auto" else calibrate
        trial = cross_fitted(method, pred, y, folds)
        after = log_loss.value(y, trial)
        summary.update(method=method, after=reliability(trial, y), log_loss_after=after)
        if calibrate != "auto" or after < summary["log_loss_before"]:
            out["calibrator"] = fit_calibrator(method, pred, y)
            calibrated = out["calibrator"].transform(pred)
        summary["applied"] = out["calibrator"] is not None
    out["summary"]["calibration"] = summary
    if pred.shape[1] != 2 or threshold is None:
        return out
    if threshold != "auto":
        out["threshold"] = float(threshold)
        out["summary"]["threshold"] = {"threshold": float(threshold), "tuned": False}
        return out
    if metric.name not in DECISION_METRICS:
        return out
    # The fold-tuned threshold and 0.5 on each fold's own rows, calibrated (when it is) by the
    # calibrators fitted without those rows (``trial``), not by the one fitted on every row.
    honest = calibrated if out["calibrator"] is None else trial
    tuned, base = 0.0, 0.0
    for train_idx, valid_idx in folds:
        t, _, _ = tune_threshold(honest[train_idx], y[train_idx], metric)
        tuned += metric.value(y[valid_idx], _decided(honest[valid_idx, 1], t)) * len(valid_idx)
        base += metric.value(y[valid_idx], _decided(honest[valid_idx, 1], 0.5)) * len(valid_idx)
    t, at_t, at_half = tune_threshold(calibrated, y, metric)
    better = (tuned > base) if metric.greater_is_better else (tuned < base)
    out["threshold"] = t if better else None
    out["summary"]["threshold"] = {
        "threshold": t, "tuned": True, "applied": bool(better), "score_at_threshold": at_t, "score_at_0.5": at_half,
        "cross_fitted_score": tuned / len(y), "cross_fitted_score_at_0.5": base / len(y),
    }  # fmt: skip
    return out
