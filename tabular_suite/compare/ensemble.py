"""Greedy ensemble selection (Caruana et al., 2004) and the model a comparison returns."""

from __future__ import annotations

import io
import pickle
import time
from contextvars import ContextVar
from pathlib import Path

import numpy as np
import torch

from ..core.model_file import FORMAT_VERSION, read_model_file, rebuild, register_reader, write_model_file
from ..data.io import as_dataframe
from ..data.preprocess import predicting_together
from .calibration import Calibrator
from .metrics import Metric

__all__ = ["caruana_selection", "cheapest_selection", "BaggedModel", "EnsembleModel"]


def caruana_selection(
    predictions: dict[str, np.ndarray],
    y: np.ndarray,
    metric: Metric,
    n_iterations: int = 25,
    *,
    cost=None,
    limit: float | None = None,
) -> dict[str, float]:
    """Weights of a greedy forward selection with replacement over out-of-fold predictions.

    Starts from the best single model and repeatedly adds (again, possibly) the model whose
    addition to the running average scores best; returns the weights (selection counts /
    ensemble size) of the best-scoring ensemble seen, so it never scores below the best
    single model on these predictions. Ties go to the model listed first.

    ``cost(names)`` (the prediction seconds per row of a set of models) with ``limit``: only
    models that keep the ensemble's cost within ``limit`` are added (none fits: the cheapest
    model alone).

    Examples
    --------
    >>> from tabular_suite.compare.metrics import get_metric
    >>> y = np.array([0.0, 1.0, 2.0, 3.0])
    >>> preds = {"low": y - 0.5, "high": y + 0.5, "bad": np.zeros(4)}
    >>> caruana_selection(preds, y, get_metric("rmse", "regression"), n_iterations=4)
    {'low': 0.5, 'high': 0.5}
    >>> seconds = {"low": 2e-3, "high": 1e-3, "bad": 1e-4}  # a model's prediction cost per row
    >>> caruana_selection(preds, y, get_metric("rmse", "regression"), n_iterations=4,
    ...                   cost=lambda names: sum(seconds[n] for n in names), limit=1.5e-3)  # "low" too slow
    {'high': 0.75, 'bad': 0.25}
    """
    names = list(predictions)
    if not names:
        raise ValueError("caruana_selection needs at least one model's predictions.")
    if limit is not None:
        if not any(cost({n}) <= limit for n in names):
            return {min(names, key=lambda n: cost({n})): 1.0}
    counts = dict.fromkeys(names, 0)
    total, best, best_score = None, None, -np.inf
    for size in range(1, n_iterations + 1):
        step_name, step_score = None, -np.inf
        members = {n for n, c in counts.items() if c}
        for name in names:
            if limit is not None and cost(members | {name}) > limit:
                continue
            candidate = predictions[name] if total is None else total + (predictions[name] - total) / size
            score = metric.score(y, candidate)
            if score > step_score:
                step_name, step_score = name, score
        counts[step_name] += 1
        total = predictions[step_name] if total is None else total + (predictions[step_name] - total) / size
        if step_score > best_score:
            best_score, best = step_score, {n: c / size for n, c in counts.items() if c}
    return best


#: How much worse (relative to its loss: 1%) than the greedy ensemble a cheaper ensemble may
#: score on the out-of-fold rows and be preferred (:func:`cheapest_selection`): for ROC AUC 0.85,
#: 0.0015, well inside the out-of-fold noise. Re-selected on 14 kept fits (benchmarks/
#: ensemble_tolerance.py), 1% against 0.1%: test better on 3, worse on 3, the same on 8;
#: prediction cost 1.4-21x lower on 6 (credit_approval 1,981 -> 95 ms per 1,000 rows).
COST_TOLERANCE = 1e-2
_LEVELS = 16  # the grid of cost limits cheapest_selection bisects


def cheapest_selection(
    predictions: dict[str, np.ndarray],
    y: np.ndarray,
    metric: Metric,
    cost,
    *,
    limit: float | None = None,
    tolerance: float = COST_TOLERANCE,
    deadline: float | None = None,
) -> dict[str, float]:
    """The weights of :func:`caruana_selection`, or of a greedy ensemble held to a lower
    prediction cost that scores within ``tolerance`` of it: its loss (the metric, or one minus
    it when higher is better) at most ``(1 + tolerance)`` times the unrestricted ensemble's,
    and no more than the best single model's (so it never ranks below a single model).

    The greedy selection adds whatever scores best at each step, so it often holds members that
    add little but cost much (a model selected once in 25 steps predicts like any other). The
    cost limits tried lie on a geometric grid from the cheapest model's cost to the ensemble's,
    bisected (4 selections) for the lowest whose ensemble is within the tolerance; ``deadline``
    (a ``time.perf_counter()`` value) ends the search early.

    Examples
    --------
    >>> from tabular_suite.compare.metrics import get_metric
    >>> y = np.array([0.0, 1.0, 2.0, 3.0])
    >>> preds = {"slow": y - 0.49, "slow_2": y + 0.49, "a": y - 0.5, "b": y + 0.5}
    >>> seconds = {"slow": 1e-2, "slow_2": 1e-2, "a": 1e-4, "b": 1e-4}  # per row
    >>> cost = lambda names: sum(seconds[n] for n in names)
    >>> rmse = get_metric("rmse", "regression")
    >>> caruana_selection(preds, y, rmse)  # the slow pair: as good as the fast one, 100x the cost
    {'slow': 0.5, 'slow_2': 0.5}
    >>> cheapest_selection(preds, y, rmse, cost)
    {'a': 0.5, 'b': 0.5}
    """
    weights = caruana_selection(predictions, y, metric, cost=cost, limit=limit)
    best_single = min(_loss(metric, y, p) for p in predictions.values())
    allowed = min(_loss(metric, y, _blend(predictions, weights)) * (1 + tolerance), best_single)
    full = cost(set(weights))
    cheapest = min((c for c in (cost({n}) for n in predictions) if c > 0), default=full)  # (0: not measured)
    levels = list(np.geomspace(cheapest, full, _LEVELS)[:-1]) if cheapest < full else []
    lo, hi = 0, len(levels)  # levels[hi] (the ensemble itself when hi == len) is within the tolerance
    while lo < hi and (deadline is None or time.perf_counter() < deadline):
        mid = (lo + hi) // 2
        held = caruana_selection(predictions, y, metric, cost=cost, limit=levels[mid])
        if _loss(metric, y, _blend(predictions, held)) <= allowed:
            weights, hi = held, mid
        else:
            lo = mid + 1
    return weights


def _blend(predictions: dict, weights: dict) -> np.ndarray:
    return sum(w * predictions[n] for n, w in weights.items())


def _loss(metric: Metric, y, pred) -> float:
    value = metric.value(y, pred)
    return 1.0 - value if metric.greater_is_better else value


class EnsembleModel:
    """Weighted average of fitted models' probabilities (classification) or values (regression).

    What :func:`tabular_suite.compare` refits and returns: a single best model is an
    ensemble of one. ``save``/``tabular_suite.load`` use the library's model file; our deep
    models are stored as weights, scikit-learn / GBDT members as a pickle, so such a file
    loads only with ``trusted=True`` (CLI: ``--trust``).

    What compare fits on the out-of-fold predictions travels with it: ``calibrator`` (a
    :class:`~tabular_suite.compare.calibration.Calibrator` applied by ``predict_proba``),
    ``threshold`` (binary: ``predict`` says the second class when its probability is at
    least this) and ``residual_quantiles`` (regression: :meth:`predict_quantiles`,
    :meth:`predict_interval`).

    Examples
    --------
    >>> from sklearn.linear_model import Ridge
    >>> X = np.arange(10.0).reshape(-1, 1)
    >>> model = EnsembleModel({"ridge": Ridge().fit(X, 2 * X[:, 0])}, {"ridge": 1.0}, task="regression")
    >>> model.predict(X[:2]).round(2)
    array([0.11, 2.08])
    """

    def __init__(self, members: dict, weights: dict[str, float], *, task: str, classes=None, feature_names=None):
        if set(weights) - set(members):
            raise ValueError(f"Weights name models without a fitted member: {sorted(set(weights) - set(members))}.")
        self.members = members
        self.weights = {n: float(w) for n, w in weights.items() if w > 0}
        self.task = task
        self.classes_ = None if classes is None else np.asarray(classes)
        if feature_names is not None:
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        self.calibrator = None
        self.number_format: dict | None = None  # the marks of the CSV file it was fitted on
        self.text_columns: list | None = None  # its columns held as text (read so in predicted files)
        self.threshold: float | None = None
        self.residual_quantiles: np.ndarray | None = None

    def _average(self, X, method: str) -> np.ndarray:
        X = as_dataframe(X)  # as compare gave the members (an array's columns named 0, 1, ...)
        # A model that is a member and a level-2 model's input too predicts these rows once, and
        # the members' warnings about the rows (data drift) are given once.
        token = _PREDICTED.set({})
        try:
            with predicting_together():
                total = None
                for name, weight in self.weights.items():
                    member = self.members[name]
                    out = np.asarray(getattr(member, method)(X), dtype=np.float64)
                    if method == "predict_proba":
                        out = _align_proba(out, member.classes_, self.classes_)
                    total = weight * out if total is None else total + weight * out
        finally:
            _PREDICTED.reset(token)
        return total / sum(self.weights.values())

    def predict_proba(self, X) -> np.ndarray:
        """Weighted mean of the members' class probabilities, columns ordered as ``classes_``."""
        if self.task != "classification":
            raise AttributeError("predict_proba is only available for classification.")
        proba = self._average(X, "predict_proba")
        return proba if self.calibrator is None else self.calibrator.transform(proba)

    def predict(self, X) -> np.ndarray:
        """Most probable class, or with ``threshold`` (binary) the second class when its
        probability reaches it (classification); weighted mean prediction (regression)."""
        if self.task == "classification":
            proba = self.predict_proba(X)
            if self.threshold is not None:
                return self.classes_[(proba[:, 1] >= self.threshold).astype(int)]
            return self.classes_[np.argmax(proba, axis=1)]
        return self._average(X, "predict")

    def predict_quantiles(self, X, quantiles) -> np.ndarray:
        """Regression: estimates of the target's ``quantiles`` (rows, len(quantiles)): the
        prediction plus the quantiles of the out-of-fold residuals (one spread for every row;
        its coverage holds on average over rows like the training rows, not row by row)."""
        if self.task != "regression" or self.residual_quantiles is None:
            raise AttributeError(
                "predict_quantiles needs a regression model from compare() (it keeps the out-of-fold residuals)."
            )
        q = np.atleast_1d(np.asarray(quantiles, dtype=np.float64))
        if q.ndim != 1 or not ((q >= 0) & (q <= 1)).all():
            raise ValueError(f"quantiles must be numbers in [0, 1], got {quantiles!r}.")
        levels = np.linspace(0.0, 1.0, len(self.residual_quantiles))
        return self.predict(X)[:, None] + np.interp(q, levels, self.residual_quantiles)[None, :]

    def predict_interval(self, X, coverage: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Regression: ``(lower, upper)`` bounds meant to hold the target for ``coverage`` of the
        rows: the ``(1 - coverage) / 2`` and ``(1 + coverage) / 2`` quantiles (see
        :meth:`predict_quantiles`)."""
        if not 0 < coverage < 1:
            raise ValueError(f"coverage must be between 0 and 1 (e.g. 0.9), got {coverage!r}.")
        bounds = self.predict_quantiles(X, [(1 - coverage) / 2, (1 + coverage) / 2])
        return bounds[:, 0], bounds[:, 1]

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={w:.2f}" for n, w in self.weights.items())
        return f"EnsembleModel({parts})"

    # ----------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Write the ensemble to one model file (see the class docstring on pickled members)."""
        config = {
            "estimator": "EnsembleModel",
            "format_version": FORMAT_VERSION,
            "task": self.task,
            "weights": self.weights,
            "members": {},
        }
        tensors = {}
        if self.classes_ is not None:
            config["classes"] = self.classes_.tolist()
        if hasattr(self, "feature_names_in_"):
            config["feature_names"] = [str(c) for c in self.feature_names_in_]
        if self.calibrator is not None:
            config["calibrator"] = self.calibrator.get_state()
        if self.threshold is not None:
            config["threshold"] = self.threshold
        if self.number_format is not None:
            config["number_format"] = self.number_format
        if self.text_columns is not None:
            config["text_columns"] = self.text_columns
        if self.residual_quantiles is not None:
            tensors["residual_quantiles"] = np.asarray(self.residual_quantiles, dtype=np.float64)
        for name in self.weights:
            member = self.members[name]
            state = member._to_state() if hasattr(member, "_to_state") else None
            if state is not None:
                member_config, member_tensors = state
                config["members"][name] = {"kind": "tabular_suite", "config": member_config}
                tensors.update({f"member.{name}.{k}": v for k, v in member_tensors.items()})
            else:
                config["members"][name] = {"kind": "pickle", "class": type(member).__name__}
                tensors[f"member.{name}.pickle"] = _pickle_bytes(member)
        write_model_file(path, config, tensors)

    @classmethod
    def _from_state(cls, config: dict, tensors: dict, *, trusted: bool, source) -> EnsembleModel:
        pickled = [n for n, m in config["members"].items() if m["kind"] == "pickle"]
        if pickled and not trusted:
            raise ValueError(
                f"{source} holds scikit-learn/GBDT models stored with pickle ({', '.join(pickled)}), "
                "which can run code when loaded. Load it only if you created it: "
                "tabular_suite.load(path, trusted=True), or --trust on the command line."
            )
        members = {}
        for name, spec in config["members"].items():
            if spec["kind"] == "pickle":
                members[name] = _unpickle(tensors[f"member.{name}.pickle"])
            else:
                prefix = f"member.{name}."
                member_tensors = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
                members[name] = rebuild(spec["config"], member_tensors, source=source)
        model = cls(
            members,
            config["weights"],
            task=config["task"],
            classes=config.get("classes"),
            feature_names=config.get("feature_names"),
        )
        if config.get("calibrator") is not None:
            model.calibrator = Calibrator.from_state(config["calibrator"])
        model.threshold = config.get("threshold")
        model.number_format = config.get("number_format")
        model.text_columns = config.get("text_columns")
        if "residual_quantiles" in tensors:
            model.residual_quantiles = tensors["residual_quantiles"].numpy()
        return model

    @classmethod
    def load(cls, path, *, trusted: bool = False) -> EnsembleModel:
        """Load a saved ensemble (see :func:`tabular_suite.load`)."""
        config, tensors = read_model_file(path)
        if config.get("estimator") != "EnsembleModel":
            raise ValueError(f"{path} holds a {config.get('estimator')}, not an EnsembleModel.")
        return cls._from_state(config, tensors, trusted=trusted, source=Path(path))


#: While an EnsembleModel predicts (in this thread or task): (bagged model, method) -> (the rows,
#: its output for them), so that a model that is both a member and a level-2 model's input
#: predicts once.
_PREDICTED: ContextVar[dict | None] = ContextVar("tabular_suite_predicted", default=None)


class BaggedModel:
    """The models of a k-fold cross-validation predicting together (k-fold bagging): the mean of
    their class probabilities (classification) or values (regression).

    What :func:`tabular_suite.compare` keeps of each model instead of refitting it on all rows:
    every row was seen by k - 1 of the k models, and nothing is trained after the folds. The
    fold models were trained on class codes ``0 .. len(classes) - 1``; ``classes_`` holds the
    original labels (a fold missing a class gives it probability 0).

    Examples
    --------
    >>> from sklearn.linear_model import Ridge
    >>> X = np.arange(10.0).reshape(-1, 1)
    >>> folds = [Ridge().fit(X[i::2], 2 * X[i::2, 0]) for i in range(2)]
    >>> BaggedModel(folds, task="regression").predict(X[:2]).round(2)
    array([0.22, 2.17])
    """

    def __init__(self, models: list, *, task: str, classes=None):
        if not models:
            raise ValueError("BaggedModel needs at least one fitted model.")
        self.models, self.task = list({id(m): m for m in models}.values()), task  # each model once
        self.classes_ = None if classes is None else np.asarray(classes)

    def predict_proba(self, X) -> np.ndarray:
        """Mean of the fold models' class probabilities, columns ordered as ``classes_``."""
        if self.task != "classification":
            raise AttributeError("predict_proba is only available for classification.")
        codes = np.arange(len(self.classes_))
        return self._mean(
            X, "predict_proba", lambda m: _align_proba(np.asarray(m.predict_proba(X), np.float64), m.classes_, codes)
        )

    def predict(self, X) -> np.ndarray:
        """Most probable class (classification) or the mean of the fold models' values."""
        if self.task == "classification":
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return self._mean(X, "predict", lambda m: m.predict(X))

    def _mean(self, X, method: str, output) -> np.ndarray:
        """The mean of ``output(fold model)`` over the fold models, once per ``method`` and rows
        while an EnsembleModel predicts (see ``_PREDICTED``)."""
        memo, key = _PREDICTED.get(), (id(self), method)
        if memo is not None and key in memo and memo[key][0] is X:
            return memo[key][1].copy()
        with predicting_together():  # (the fold models predict the same rows)
            out = sum(np.asarray(output(m), np.float64) for m in self.models) / len(self.models)
        if memo is not None:
            memo[key] = (X, out.copy())  # (the rows kept too: their id is not reused while kept)
        return out

    def __repr__(self) -> str:
        return f"BaggedModel({len(self.models)} x {type(self.models[0]).__name__})"

    def _to_state(self):
        """``(config, tensors)`` when every fold model is one of ours (stored as weights), else None
        (the ensemble then stores this model pickled, loaded only when trusted)."""
        if not all(hasattr(m, "_to_state") for m in self.models):
            return None
        config = {"estimator": "BaggedModel", "format_version": FORMAT_VERSION, "task": self.task, "folds": []}
        if self.classes_ is not None:
            config["classes"] = self.classes_.tolist()
        tensors = {}
        for i, model in enumerate(self.models):
            fold_config, fold_tensors = model._to_state()
            config["folds"].append(fold_config)
            tensors.update({f"fold.{i}.{k}": v for k, v in fold_tensors.items()})
        return config, tensors

    @classmethod
    def _from_state(cls, config: dict, tensors: dict, *, trusted: bool = False, source="the model") -> BaggedModel:
        models = []
        for i, fold_config in enumerate(config["folds"]):
            prefix = f"fold.{i}."
            fold_tensors = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            models.append(rebuild(fold_config, fold_tensors, trusted=trusted, source=source))
        return cls(models, task=config["task"], classes=config.get("classes"))


def _align_proba(proba: np.ndarray, member_classes, classes) -> np.ndarray:
    """Put a member's probability columns in the ensemble's class order (absent classes: 0)."""
    member_classes = np.asarray(member_classes)
    if len(member_classes) == len(classes) and np.array_equal(member_classes, classes):
        return proba
    out = np.zeros((proba.shape[0], len(classes)))
    index = {c: i for i, c in enumerate(classes.tolist())}
    for j, c in enumerate(member_classes.tolist()):
        out[:, index[c]] = proba[:, j]
    return out


def _pickle_bytes(obj) -> torch.Tensor:
    return torch.frombuffer(bytearray(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)), dtype=torch.uint8)


def _unpickle(tensor: torch.Tensor):
    return pickle.load(io.BytesIO(tensor.numpy().tobytes()))


register_reader("EnsembleModel", EnsembleModel._from_state)
register_reader("BaggedModel", BaggedModel._from_state)
