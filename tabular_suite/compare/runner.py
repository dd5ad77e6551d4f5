"""``compare()``: cross-validate many models on one table, rank them, ensemble, refit."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from ..core.sklearn_glue import resolve_num_threads
from ..data.features import decide_types, describe_types
from ..data.io import as_1d_array, as_dataframe, number_format, text_columns
from ..data.schema import Schema, infer_task
from ..data.validation import row_weights
from ..tabular.base import holdout_split
from ..training.device import resolve_device
from .calibration import check_settings, fit_postprocessing
from .candidates import BASELINES, GBDT_LIBRARIES, BuildContext, model_step, resolve_candidates, with_params
from .ensemble import BaggedModel, EnsembleModel, cheapest_selection
from .folds import BATCH_ROWS, Deadline, FoldPlan, FoldResult, OutOfBag, fit_within, run_folds_locally
from .importance import permutation_importance
from .metrics import Metric, get_metric
from .stacking import STACKERS, StackedModel, stack_columns, stack_frame, stackers

__all__ = ["compare", "ComparisonResult"]

ENSEMBLE = "ensemble"


@dataclass
class ComparisonResult:
    """What :func:`compare` returns.

    Attributes
    ----------
    leaderboard : DataFrame
        One row per model (and the ensemble), best first; see :func:`compare`.
    best_model_ : EnsembleModel or None
        The best row (an ensemble of one for a single model): its models' fold models
        (:class:`~tabular_suite.compare.ensemble.BaggedModel`, k-fold bagging) or, with
        ``refit=True``, its models refitted on all rows; None with ``bag=False`` and no refit,
        when no model has a score, or when no time was left for the refit (see ``refit_status``).
    mlflow_run_id, mlflow_model_uri : str or None
        With tracking: the parent run, and ``best_model_`` logged in it as an MLflow pyfunc model
        ("best_model"; ``mlflow.pyfunc.load_model(uri)``, probabilities with
        ``params={"predict_method": "predict_proba"}``).
    registered_model_version : str or None
        Its version in the model registry (``registered_model_name``).
    refit_status : str or None
        With ``refit=True``: "ok"; "timeout": the time limit cut the refit short (a member has
        fewer trees or epochs than in cross-validation, or members were left out:
        ``best_model_`` averages those refitted); "skipped": no time was left, nothing was
        refitted. None otherwise.
    refit_error : str or None
        What cut the refit short or stopped it, and what to do about it.
    settings : dict
        The call's settings, the library versions (``settings["versions"]``) and, from the
        command line, the command (``settings["command"]``).
    hyperparameters : dict
        Each candidate's estimator parameters (a baseline's model, not its preprocessing); with
        ``tune``, those its folds ran.
    tuning : dict
        With ``tune``: per tuned model, its trials (one row each: trial number, the searched
        parameters, the hold-out score (higher is better), state complete / pruned / fail,
        seconds).
    column_profile : DataFrame
        One row per column: kind, missing share, distinct values, warnings.
    postprocessing : dict
        What was fitted on the best row's out-of-fold predictions and applied by
        ``best_model_`` (see ``calibrate`` and ``decision_threshold`` of :func:`compare`):
        ``"calibration"`` (method, whether applied, log loss and reliability-diagram data
        before and after, cross-fitted), ``"threshold"`` (binary), ``"intervals"``
        (regression: the 90% interval's width and its cross-fitted coverage).
    oof_predictions : dict
        Out-of-fold predictions per model (probabilities over ``classes`` or values).
    oof_target : ndarray
        The target they predict: class codes (indices into ``classes``) or values.
    fold_models : dict
        With bagging: each model whose folds all finished -> its fitted fold models, in fold
        order (trained on class codes), then those of its further splits (``bag_sets``); level-2
        rows hold each fold's level-2 model over the same fold's level-1 models. A random forest
        or extra trees model is fitted once on all rows (its out-of-fold predictions are its
        out-of-bag ones): the same model at every fold. What :meth:`get_model` and
        :meth:`feature_importance` use.
    histories : dict
        Per model, the training history of each fold (deep models).
    ensemble_weights : dict
        Caruana weights over the models.
    """

    leaderboard: pd.DataFrame
    task: str
    metric: Metric
    classes: np.ndarray | None
    oof_predictions: dict
    histories: dict
    ensemble_weights: dict
    data_summary: dict
    wall_seconds: float
    fold_scores: dict = field(default_factory=dict)
    best_model_: EnsembleModel | None = None
    mlflow_run_id: str | None = None
    mlflow_model_uri: str | None = None
    registered_model_version: str | None = None
    refit_status: str | None = None
    refit_error: str | None = None
    postprocessing: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    hyperparameters: dict = field(default_factory=dict)
    tuning: dict = field(default_factory=dict)
    column_profile: pd.DataFrame | None = None
    oof_target: np.ndarray | None = None
    # For out-of-fold feature importance (bagging): each model's fold models, and the data and folds.
    fold_models: dict = field(default_factory=dict, repr=False)
    _data: tuple | None = field(default=None, repr=False)
    _stacked: dict = field(default_factory=dict, repr=False)  # level-2 name -> (level-1 names, columns)
    _calibrator: object = field(default=None, repr=False)  # the best row's, also without a kept model

    def predict(self, X):
        """Predictions of :attr:`best_model_`."""
        return self._best().predict(X)

    def predict_proba(self, X):
        """Class probabilities of :attr:`best_model_` (calibrated when ``calibrate`` applied)."""
        return self._best().predict_proba(X)

    def get_model(self, name: str) -> EnsembleModel:
        """The leaderboard row ``name`` (a model, or "ensemble") as a predictor of its own: each
        model the mean of its fold models (needs ``bag=True``). Unlike :attr:`best_model_` it
        has no calibration, threshold or intervals fitted.

        Examples
        --------
        >>> import numpy as np, tabular_suite
        >>> X = np.random.default_rng(0).normal(size=(100, 2)); y = (X[:, 0] > 0).astype(int)
        >>> result = tabular_suite.compare(X, y, models=["linear", "random_forest"], cv=2, num_threads=1,
        ...                                tracking=False)
        >>> result.get_model("random_forest").predict(X[:3]).tolist() == (X[:3, 0] > 0).astype(int).tolist()
        True
        """
        chosen = self.ensemble_weights if name == ENSEMBLE else {name: 1.0}
        missing = [m for m in chosen if m not in self.fold_models]
        if not chosen or missing or self._data is None:
            scored = ", ".join(m for m in self.fold_models)
            raise ValueError(
                f"No fold models kept for {name!r} (bag=True keeps them for models whose folds all finished: {scored})."
            )
        return _bagged_row(chosen, self.fold_models, self._stacked, self.task, self._data, self.classes)

    def predict_quantiles(self, X, quantiles):
        """Regression: the target's ``quantiles`` per row (see :meth:`EnsembleModel.predict_quantiles`)."""
        return self._best().predict_quantiles(X, quantiles)

    def predict_interval(self, X, coverage: float = 0.9):
        """Regression: ``(lower, upper)`` per row for ``coverage`` (see :meth:`EnsembleModel.predict_interval`).

        Examples
        --------
        >>> import numpy as np, tabular_suite
        >>> X = np.random.default_rng(0).normal(size=(200, 2)); y = X[:, 0] + np.random.default_rng(1).normal(size=200)
        >>> result = tabular_suite.compare(X, y, models=["linear"], cv=2, num_threads=1, tracking=False)
        >>> lower, upper = result.predict_interval(X, coverage=0.8)
        >>> bool(0.7 < ((y >= lower) & (y <= upper)).mean() < 0.9)
        True
        """
        return self._best().predict_interval(X, coverage)

    def save(self, path) -> None:
        """Save :attr:`best_model_` (load with ``tabular_suite.load``; see EnsembleModel)."""
        self._best().save(path)

    def _best(self) -> EnsembleModel:
        if self.best_model_ is None:
            if self.refit_error:
                raise ValueError(f"No model was refitted: {self.refit_error}")
            raise ValueError("No model was kept: compare was called with bag=False and refit=False; leave bag=True.")
        return self.best_model_

    def feature_importance(
        self, X=None, y=None, *, model: str | None = None, n_repeats: int = 3, max_rows: int = 2000, random_state=0
    ) -> pd.DataFrame:
        """Permutation feature importance of ``model`` (None: the best row; a model's name;
        "ensemble"): the drop in the comparison's metric when a column is shuffled (see
        :func:`~tabular_suite.compare.importance.permutation_importance`).

        Without ``X, y``: on out-of-fold rows, each fold's validation rows predicted by the
        models that did not train on them (needs the fold models: ``bag=True``, the default).
        With ``X, y`` (e.g. a test set): by ``best_model_`` for the best row, else by the
        model's fold models together. At most ``max_rows`` rows are used (a random sample).

        Examples
        --------
        >>> import numpy as np, tabular_suite
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(200, 3)); y = (X[:, 1] > 0).astype(int)
        >>> result = tabular_suite.compare(X, y, models=["linear"], cv=2, num_threads=1, tracking=False)
        >>> int(result.feature_importance().index[0])  # the column the target depends on
        1
        """
        name = self._importance_target(model)
        weights = self.ensemble_weights if name == ENSEMBLE else {name: 1.0}
        rng = np.random.default_rng(random_state)
        method = "predict_proba" if self.task == "classification" else "predict"
        codes = None if self.classes is None else np.arange(len(self.classes))
        if X is None:
            if y is not None:
                raise ValueError("Pass X with y (or neither, for out-of-fold importance).")
            missing = [m for m in weights if m not in self.fold_models]
            if self._data is None or missing:
                raise ValueError(
                    "Out-of-fold importance needs every fold model, kept only with bag=True (the default) "
                    f"and complete folds{' (' + ', '.join(missing) + ')' if missing else ''}; pass X, y instead."
                )
            df, target, folds = self._data[:3]
            per_fold = max(1, max_rows // len(folds))
            parts = []
            for k, (_, valid) in enumerate(folds):
                rows = np.sort(rng.choice(valid, min(per_fold, len(valid)), replace=False))
                members = {m: self._out_of_fold(m, k, rows) for m in weights}
                # fold models are trained on the class codes
                fold_ensemble = EnsembleModel(members, weights, task=self.task, classes=codes)
                parts.append((getattr(fold_ensemble, method), df.iloc[rows], target[rows]))
        else:
            df, y_raw = as_dataframe(X), as_1d_array(y)
            if len(df) != len(y_raw):
                raise ValueError(f"X has {len(df)} rows but y has {len(y_raw)}: they must match.")
            target = self._encode(y_raw)
            rows = np.sort(rng.choice(len(df), min(max_rows, len(df)), replace=False))
            best = self.leaderboard[self.leaderboard["score"].notna()]["model"].iloc[0]
            if name == best and self.best_model_ is not None:
                predictor = getattr(self.best_model_, method)
            else:
                if any(m not in self.fold_models for m in weights):
                    raise ValueError(f"{name}'s fitted models were not kept (bag=True keeps them).")
                members = {m: BaggedModel(self.fold_models[m], task=self.task, classes=self.classes) for m in weights}
                predictor = getattr(EnsembleModel(members, weights, task=self.task, classes=self.classes), method)
            parts = [(predictor, df.iloc[rows], target[rows])]
        out = permutation_importance(parts, self.metric, n_repeats=n_repeats, random_state=random_state)
        out.attrs["model"] = name
        return out

    def _out_of_fold(self, name: str, k: int, rows: np.ndarray):
        """Model ``name`` as it predicts ``rows`` of fold ``k``'s validation rows out of fold: its
        fold-``k`` model, or for a forest fitted once its out-of-bag view of those rows (and so
        for a level-2 model's level-1 models)."""
        model = self.fold_models[name][k]
        if name in self._stacked:
            level1, columns = self._stacked[name]
            base = {n: self._out_of_fold(n, k, rows) for n in level1}
            return StackedModel(base, columns, model.model, task=self.task, n_classes=model.n_classes)
        if _shared_by_folds(self.fold_models[name]):
            fitted = np.sort(np.concatenate([valid for _, valid in self._data[2]]))
            return OutOfBag(model, len(fitted), np.searchsorted(fitted, rows))
        return model

    def _importance_target(self, model: str | None) -> str:
        scored = self.leaderboard[self.leaderboard["score"].notna()]["model"].tolist()
        if not scored:
            raise ValueError("No model has a score; there is nothing to explain.")
        if model is None:
            return scored[0]
        if model not in scored:
            raise ValueError(f"model must be one of the scored rows ({', '.join(scored)}), got {model!r}.")
        return model

    def _encode(self, y_raw: np.ndarray) -> np.ndarray:
        if self.task == "regression":
            return y_raw.astype(np.float64)
        index = {c: i for i, c in enumerate(self.classes.tolist())}
        unknown = sorted({v for v in y_raw.tolist() if v not in index}, key=str)
        if unknown:
            raise ValueError(f"y holds labels the comparison never saw: {unknown[:5]}.")
        return np.array([index[v] for v in y_raw.tolist()])

    def report(self, path, importance: pd.DataFrame | None = None) -> Path:  # noqa: F821
        """Write the self-contained HTML report to ``path``; returns the path (see
        :func:`~tabular_suite.compare.report.write_report`)."""
        from .report import write_report

        return write_report(self, path, importance=importance)


def _resolve_task(y: np.ndarray, task: str) -> str:
    if task in ("classification", "regression"):
        return task
    if task != "auto":
        raise ValueError(f"task must be 'auto', 'classification' or 'regression', got {task!r}.")
    return infer_task(y)


def _check_target(y: np.ndarray, task: str) -> None:
    if task == "classification" and len(np.unique(y)) < 2:
        raise ValueError(f"The target has a single class ({np.unique(y)[0]!r}); classification needs at least two.")
    if task == "regression":
        if not np.issubdtype(np.asarray(y).dtype, np.number):
            raise ValueError("A regression target must be numeric.")
        if not np.isfinite(y.astype(np.float64)).all():
            raise ValueError("The regression target contains inf values.")


def _folds(y_enc: np.ndarray, task: str, cv: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    if not isinstance(cv, (int, np.integer)) or cv < 2:
        raise ValueError(f"cv must be an integer >= 2, got {cv!r}.")
    if len(y_enc) < cv:
        raise ValueError(f"cv={cv} folds need at least {cv} rows; the table has {len(y_enc)}.")
    if task == "classification" and np.bincount(y_enc).min() >= cv:
        splitter = StratifiedKFold(cv, shuffle=True, random_state=seed)
    else:
        splitter = KFold(cv, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y_enc)), y_enc))


#: Under a ``time_limit``, ``holdout="auto"`` splits a table of at least this many rows per
#: second of the limit once (a hold-out) instead of into ``cv`` folds. Measured at 60 s
#: (benchmarks/RESULTS.md, "A hold-out for large tables under a time limit"): a hold-out was
#: much better at 1,000 and 1,360 rows/s (covertype_75k, diabetes130us: every fold of every
#: model was cut short), about even at 600-650 (adult, bank_marketing) and worse at 70-275
#: (five tables of 4,300 to 16,500 rows), where a model's 5 fold models average out its errors.
HOLDOUT_ROWS_PER_SECOND = 800


def holdout_fraction(holdout, n_rows: int, time_limit: float | None) -> float | None:
    """The share of the rows ``compare`` holds out, or None for ``cv``-fold cross-validation.

    ``holdout``: None or False (cross-validate); a fraction in (0, 1); True (AutoGluon's default
    for the rows: 10-20% below 5,000 rows, else 2,500 rows within 1-10%); "auto": True when a
    ``time_limit`` gives less than a second per :data:`HOLDOUT_ROWS_PER_SECOND` rows, where
    ``cv`` fits of every model would each get too little of it (measured in benchmarks/RESULTS.md,
    "A hold-out for large tables under a time limit"), else None.

    >>> holdout_fraction("auto", 60_000, 60.0), holdout_fraction("auto", 20_000, 60.0)
    (0.0416..., None)
    >>> holdout_fraction(True, 75_000, None), holdout_fraction(0.25, 100, None)
    (0.0333..., 0.25)
    """
    if holdout is None or holdout is False:
        return None
    if isinstance(holdout, str):
        if holdout != "auto":
            raise ValueError(f"holdout must be 'auto', a fraction in (0, 1), True or None, got {holdout!r}.")
        if time_limit is None or n_rows < HOLDOUT_ROWS_PER_SECOND * time_limit:
            return None
        holdout = True
    if holdout is True:
        if n_rows < 5000:
            return float(max(0.1, min(0.2, 500.0 / n_rows)))
        return float(max(0.01, min(0.1, 2500.0 / n_rows)))
    if not isinstance(holdout, (float, np.floating)) or not 0 < holdout < 1:
        raise ValueError(f"holdout must be 'auto', a fraction in (0, 1), True or None, got {holdout!r}.")
    return float(holdout)


def _evaluation_rows(folds, n_rows: int):
    """``(rows, folds)``: the rows with out-of-fold predictions (every row under cross-validation,
    the held-out ones after a hold-out), ascending, and ``folds`` with each validation part as
    positions among them.

    >>> rows, folds = _evaluation_rows([(np.array([0, 2, 3]), np.array([4, 1]))], 5)
    >>> rows.tolist(), folds[0][1].tolist()
    ([1, 4], [1, 0])
    """
    rows = np.sort(np.concatenate([valid for _, valid in folds]))
    position = np.full(n_rows, -1)
    position[rows] = np.arange(len(rows))
    return rows, [(train, position[valid]) for train, valid in folds]


def _postprocessing_folds(folds, target, task: str, seed: int):
    """The folds calibration and the decision threshold are cross-fitted over: the comparison's,
    or after a hold-out (one fold) 5 folds of the held-out rows."""
    if len(folds) > 1:
        return folds
    codes = target.astype(int) if task == "classification" else np.zeros(len(target), dtype=int)
    return _folds(codes, task, min(5, len(target)), seed)


def _profile(df: pd.DataFrame, kinds: dict, coerced) -> pd.DataFrame:
    """Per column: kind, missing share, distinct values and what looks wrong."""
    rows = []
    for name in df.columns:
        col = df[name]
        missing = float(col.isna().mean())
        distinct = int(col.nunique(dropna=True))
        kind = kinds[name]
        warnings = []
        if distinct <= 1:
            warnings.append("constant: carries no information")
        if missing > 0.5:
            warnings.append(f"{missing:.0%} missing")
        if kind.startswith(("categorical", "text")) and distinct > 0.9 * len(df) and distinct > 50:
            warnings.append("nearly every value distinct: an identifier? drop it")
        elif kind.startswith("categorical") and distinct > 255:
            warnings.append("over 255 categories: rare ones carry little")
        if name in set(coerced):
            warnings.append("values that are not numbers read as missing")
        rows.append({"column": str(name), "kind": kind, "missing": missing, "distinct": distinct,
                     "warnings": "; ".join(warnings)})  # fmt: skip
    return pd.DataFrame(rows)


def _versions() -> dict:
    """Versions of Python and the libraries a comparison's models come from."""
    import importlib.metadata
    import platform

    from .._version import __version__

    out = {"tabular_suite": __version__, "python": platform.python_version()}
    for package in ("numpy", "pandas", "scikit-learn", "torch", "lightgbm", "xgboost", "catboost"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _summarise(df: pd.DataFrame, y: np.ndarray, task: str, kinds: dict) -> dict:
    summary = {
        "rows": int(df.shape[0]),
        "columns": int(df.shape[1]),
        "column_types": describe_types(kinds),
        "missing_cells_pct": round(100 * float(df.isna().to_numpy().mean()), 2),
        "task": task,
    }
    if task == "classification":
        values, counts = np.unique(y, return_counts=True)
        summary["classes"] = {str(v): int(c) for v, c in zip(values, counts)}
    else:
        summary["target_mean"], summary["target_std"] = float(np.mean(y)), float(np.std(y))
    return summary


def compare(
    X,
    y,
    *,
    models=None,
    model_params: dict | None = None,
    task: str = "auto",
    sample_weight=None,
    class_weight=None,
    categorical_features=None,
    feature_types: dict | None = None,
    coerce_numeric=None,
    cv: int = 5,
    holdout="auto",
    metric: str | None = None,
    preset: str = "fast",
    time_limit: float | None = None,
    model_time_limit: float | None = None,
    ensemble: bool = True,
    stack: bool = True,
    calibrate: str | None = "auto",
    decision_threshold="auto",
    bag: bool = True,
    bag_sets: int = 1,
    refit: bool = False,
    tune: bool | int = False,
    portfolio: bool = True,
    infer_limit: float | None = None,
    random_state: int = 0,
    device: str = "auto",
    num_threads: int | None = None,
    tracking: bool | None = None,
    experiment: str | None = None,
    tracking_uri: str | None = None,
    registered_model_name: str | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    gpus_per_task: float | None = None,
    verbose: int = 0,
    progress=None,
) -> ComparisonResult:
    """Cross-validate models on ``X, y`` and rank them: a leaderboard, an ensemble, a refit.

    Parameters
    ----------
    X : DataFrame (pandas/polars), pyarrow Table or array-like
    y : array-like
    models : list of str or None
        Registered deep models (``list_models()``), the pre-trained in-context model
        (``tabpfn``) and baselines (``hist_gradient_boosting``, ``random_forest``,
        ``extra_trees``, ``linear``, ``lightgbm``, ``xgboost``, ``catboost``). None = the
        preset's candidates.
    model_params : dict or None
        Settings that replace a candidate's: ``{"mlp": {"max_epochs": 50}, "lightgbm":
        {"num_leaves": 63}}`` (for a baseline, parameters of its model, not of its
        preprocessing). A name that is not a candidate, or a parameter the model does not
        have, is an error before anything is fitted.
    task : {"auto", "classification", "regression"}
        "auto": see :func:`tabular_suite.data.infer_task` (numbers with more than 20
        distinct or non-integral values are a regression target).
    sample_weight : array-like, str or None
        A weight >= 0 per row, or the name of a column of ``X`` that holds them (the column is
        then not a feature, as AutoGluon's ``sample_weight``). Every model trains with the
        weights of its training rows (the deep models as in ``fit(sample_weight=...)``, the
        tree and linear models through their own ``sample_weight``). Scores, the ensemble and
        the leaderboard count every row once (AutoGluon's default); choose a ``metric`` that
        matches what the weights are for (e.g. balanced_accuracy for class balance).
    class_weight : "balanced", dict or None
        Classification: weights of the classes (scikit-learn's meaning), multiplying
        ``sample_weight``.
    categorical_features, feature_types, coerce_numeric :
        How columns are read (see :class:`~tabular_suite.data.features.DataParams`): the kinds
        are decided once on the whole table (``result.data_summary["column_types"]``) and
        passed to every model.
    cv : int, default=5
        Folds (stratified for classification when every class has ``cv`` rows).
    holdout : "auto", float, True or None
        Instead of ``cv`` folds, fit each model once on the other rows and score it on this share
        of them, held out at random (stratified for classification), as AutoGluon's
        ``medium_quality`` does: the leaderboard, the ensemble, calibration and the decision
        threshold then work on the held-out rows, ``best_model_`` is each member's one model,
        and there is no stacking layer. True: AutoGluon's share for the table's size;
        "auto" (default): a hold-out only under a ``time_limit`` too short for ``cv`` fits of
        every model on a large table (see :func:`holdout_fraction`); None: always ``cv`` folds.
    metric : str or None
        accuracy, balanced_accuracy, roc_auc, log_loss, f1_macro (classification; default
        accuracy) or rmse, mae, r2 (regression; default rmse).
    preset : {"fast", "best"}
        "fast": small deep models, at most 40 epochs; "best": paper defaults.
    time_limit, model_time_limit : float or None
        Seconds for the whole comparison, refit included, and for each model (all its folds;
        each refit too). Bagging trains nothing after the folds. With ``refit``, ``time_limit / cv``
        is kept for the refit: enough to
        refit every model on all rows at the pace of its folds. The folds share the rest
        (unless ``model_time_limit`` is given) as it goes: the gradient-boosting models and the
        linear model run first, then the random forests, the deep models and the in-context
        model, and each model starts with its share of the time still left, so what a fast
        model does not use goes to the ones after it (see :func:`budget_shares`). The deep
        models' shares weigh 1 + log10(rows / 1,000) (1 to 3) against 1 for the forests, the
        linear model and the in-context model, and the gradient-boosting models' three times that:
        on larger tables they need more of the time, and the boosting models use it best. A
        deep model that its first fold's budget stops before ``MIN_EPOCHS`` (5) epochs skips its
        other folds (scored on the one fold, it would not be chosen; their time goes to the
        models after it), as does a model whose first fold is stopped before its predictions
        are scored (the in-context model on many validation rows). (The Ray backend
        starts every task at once: there each model gets an equal share.) A fold or refit that reaches its
        budget stops and keeps what it has learned (status "timeout", still scored): deep
        models at the first batch past it; random forests and gradient boosting
        (HistGradientBoosting, LightGBM, XGBoost, CatBoost) after the chunk of trees or the
        round in progress; logistic regression at a solver iteration cap sized to the time
        left. The in-context model predicts a fold's validation rows in chunks (its smallest
        step: the context and ``batch_rows`` rows); a fold not done in time is not scored.
        Folds not started in time are "skipped" and the model is marked "timeout". The
        refit gets what is left of ``time_limit``, an ensemble's members sharing it, the
        heaviest first; with nothing left, nothing is refitted (see
        ``ComparisonResult.refit_status``). A deep model on the CPU has the native kernels
        built (once per machine) before the folds start: that counts toward ``time_limit``
        but never toward a fold. The call returns within ``time_limit`` plus a grace: the
        work that cannot be cut (the batch, chunk of trees or round in progress, a fold's
        preprocessing and validation predictions, ranking the results), small next to the
        fits themselves. MLflow logging (``tracking``): each model's run as it finishes (counted, small), the results
        after the limit.
        Without ``time_limit`` and ``model_time_limit`` every model is fitted in one call,
        as it would be on its own.
    ensemble : bool
        Add a greedy (Caruana) ensemble of the models' out-of-fold predictions; of the
        ensembles within 1% of its loss, a cheaper one to predict with is preferred
        (:func:`tabular_suite.compare.ensemble.cheapest_selection`).
    stack : bool
        With bagging (``bag=True``, no ``refit``) and at least two models with complete
        out-of-fold predictions: one stacking layer, LightGBM and the linear model (rows
        ``lightgbm_l2``, ``linear_l2``; each only when it is among the compared models)
        trained on the predictions of the models a level-1 greedy ensemble selects (so they
        cost what that ensemble costs to predict), on the same folds; they join the
        leaderboard and the ensemble. (Not on the original features too: that leaks the validation rows' labels,
        see :mod:`tabular_suite.compare.stacking`.) Under a ``time_limit`` a fifth of it is kept for
        them until LightGBM and the linear model have run at level 1 (they run first); from then
        on 1.5 times what they took there (at least 5% of the limit). (Not with the Ray backend.)
    calibrate : {"auto", "temperature", "isotonic"} or None
        Classification: calibrate ``best_model_``'s probabilities on the best row's out-of-fold
        predictions: temperature scaling (one scalar; never changes the predicted class) or
        isotonic (per class; needs hundreds of rows). "auto": temperature scaling when it
        lowers the log loss cross-fitted over the folds (each fold's rows calibrated by the
        other folds). The leaderboard scores the uncalibrated predictions;
        ``result.postprocessing["calibration"]`` has the before/after figures.
    decision_threshold : "auto", float or None
        Binary classification: the probability of the second class (``classes[1]``) from
        which ``best_model_`` predicts it. "auto": tuned on the (calibrated) out-of-fold
        predictions for a metric that scores decisions (accuracy, balanced_accuracy,
        f1_macro), and kept only when thresholds tuned on some folds beat 0.5 on the others;
        None: the most probable class. Regression models get prediction intervals from the
        out-of-fold residuals instead (``result.predict_interval``).
    bag : bool
        Keep each fold's fitted model: ``result.best_model_`` is the best row (model or
        ensemble) with each model predicting as the mean of its ``cv`` fold models (k-fold
        bagging, as AutoGluon's; nothing is trained after the folds, and the whole
        ``time_limit`` goes to them; the in-context model, whose fit only stores its rows, is
        fitted once on all rows instead: one context to run). The random forest and extra trees
        (forests of bootstrap samples) are fitted once on all rows, their out-of-bag predictions
        standing in for the folds' (as AutoGluon bags them; local backend): one fit and one
        model to predict with instead of ``cv``. False keeps no models (less memory).
    bag_sets : int, default=1
        With bagging, ``cv`` folds and a ``time_limit`` (local backend): at most this many
        k-fold splits per model (AutoGluon's ``num_bag_sets``). The time the candidates and the
        portfolio leave (less what stacking is expected to need) fits each model again on a
        further split, drawn with the next seed, the best-scoring models first, while it fits
        one at the pace of its first split (a model whose first split finished every fold
        ``ok``; not the in-context model, fitted once on all rows). A model's out-of-fold
        predictions are then the mean over its splits, and it predicts as the mean of all its
        fold models; a split cut short is left out. Leaderboard column ``bag_sets``; per-fold
        scores stay the first split's. Each further split multiplies a model's fold models and
        so its prediction cost, and at 300 s it bought no better mean rank against AutoGluon
        (benchmarks/RESULTS.md, "Repeated bagging with the time left"): hence the default of
        one split (AutoGluon 1.6's default too).
    refit : bool
        Instead of bagging, refit the best row on all rows: ``result.best_model_`` (see
        ``refit_status`` when a time limit cuts it short).
    tune : bool or int
        Search the hyperparameters of LightGBM, XGBoost, CatBoost and the deep models before
        their folds (see :mod:`tabular_suite.compare.tuning`): an Optuna TPE study on a hold-out
        of the first fold's training rows that starts from a portfolio of strong configurations
        (the model's own first), prunes deep trials on their per-epoch validation criterion and
        early-stops GBDT trials; the best configuration is then cross-validated and bagged as usual.
        True: as many trials as half of each model's time allows (20 without a time limit); an
        int: at most that many per model. ``result.tuning`` holds the trials; the chosen parameters are in
        ``result.hyperparameters``, MLflow and the report. (Local backend only.)
    portfolio : bool
        With a ``time_limit``, bagging and no ``tune`` (local backend): the time the candidates
        leave goes to further configurations of the GBDTs and deep models, each bagged like the
        first and joining the ensemble and level 2's inputs (rows ``lightgbm_2``, ``mlp_2``, ...; see
        :func:`tabular_suite.compare.tuning.portfolio_candidates`; AutoGluon's portfolio of
        configurations). A configuration starts only when the time left (less what stacking is
        expected to need) fits it at the pace of its model's first configuration, and only
        for a model whose first configuration finished every fold within its share.
    infer_limit : float or None
        Seconds per row that ``result.best_model_`` may take to predict (AutoGluon's
        ``infer_limit``): the ensemble only takes models that keep it within the limit, and
        the best row within it becomes ``best_model_`` (none is: the fastest). A row's cost
        (leaderboard column ``predict_seconds_per_row``) is that of a warm batch of 1,000 rows
        (one fold model's, timed on its validation rows: ``predict_rows_per_s``) times its
        fold models (one for the in-context model and a refit), plus its level-1 models' for a
        level-2 row, each model counted once in an ensemble.
    random_state : int
        Seeds the folds and every model.
    device, num_threads :
        Passed to the deep models (``num_threads`` also to the baselines); None threads =
        all cores but one, or ``TABULAR_SUITE_NUM_THREADS``.
    tracking : bool or None
        One MLflow parent run with a nested run per model (None follows ``autolog``), in
        ``experiment`` at ``tracking_uri`` (default: as for estimators, sqlite:///mlflow.db); the
        final predictor is logged as the parent run's MLflow model "best_model".
    registered_model_name : str or None
        With tracking: also register that model in the MLflow model registry under this name.
    backend : {"local", "ray"}
        "ray" runs each (model, fold) as a Ray task (``pip install tabular-suite[ray]``),
        on a local Ray or the cluster at ``ray_address``; ``gpus_per_task`` overrides the
        GPU request (default: one per deep-model task when the cluster has GPUs).
    verbose : int
        1 prints a line as each model finishes (its score, the best so far, the time left);
        2 also a line per fold.
    progress : callable or None
        Called with a dict at each event, for a live display (the CLI's): ``{"event":
        "fold_start" | "fold_end" | "trial_end" | "model_end", "model", "model_index", "n_models", "fold",
        "n_folds", "status", "score" (the metric on the fold, or the model's as the leaderboard ranks it), "best_model",
        "best_score" (so far), "elapsed", "time_left" (None without time_limit)}``. With the
        Ray backend, fold_start is not reported.
    Returns
    -------
    ComparisonResult
        ``leaderboard`` columns: model, status, error, metric, direction, score (higher is
        better: the metric on the model's out-of-fold predictions of every row, which the
        ensemble is selected on, as AutoGluon's ``score_val`` of a bagged model; for a model
        cut short before its last fold, the mean over its scored folds, and it ranks after the
        models with every fold, whose scores are on all the rows), mean, std (of the
        metric over folds), folds, fit_seconds, predict_seconds
        (means per fold; predicting the validation rows), predict_rows_per_s (one fold model
        predicting a warm batch of 1,000 rows; the ensemble's: one of each member's),
        predict_seconds_per_row (as ``best_model_`` would predict with it: see
        ``infer_limit``), best_epoch, n_params, device, seed,
        ensemble_weight (the model's Caruana weight), mlflow_run_id.

    Examples
    --------
    >>> import numpy as np, tabular_suite
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(120, 3)); y = (X[:, 0] > 0).astype(int)
    >>> result = tabular_suite.compare(X, y, models=["linear", "mlp"], cv=2, num_threads=1, tracking=False)
    >>> sorted(result.leaderboard["model"])
    ['ensemble', 'linear', 'linear_l2', 'mlp']
    """
    started = time.perf_counter()
    df = as_dataframe(X)
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise ValueError(f"X is empty (shape {df.shape}).")
    y_raw = as_1d_array(y)
    if len(y_raw) != len(df):
        raise ValueError(f"X has {len(df)} rows but y has {len(y_raw)}: they must match.")
    if pd.isna(y_raw).any():
        raise ValueError(f"The target has {int(pd.isna(y_raw).sum())} missing values; drop those rows first.")
    if isinstance(sample_weight, str):
        if sample_weight not in df.columns:
            raise ValueError(f"sample_weight names {sample_weight!r}, which is not a column of X.")
        df, sample_weight = df.drop(columns=sample_weight), df[sample_weight].to_numpy()
        if df.shape[1] == 0:
            raise ValueError("X has no feature left once the sample_weight column is taken out.")
    task = _resolve_task(y_raw, task)
    _check_target(y_raw, task)
    if class_weight is not None and task != "classification":
        raise ValueError("class_weight is for classification; weight a regression's rows with sample_weight.")
    row_weight = row_weights(None, y_raw, sample_weight, class_weight)
    metric_obj = get_metric(metric, task)
    if backend not in ("local", "ray"):
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}.")
    limits = (("time_limit", time_limit), ("model_time_limit", model_time_limit), ("infer_limit", infer_limit))
    for name, value in limits:
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}.")
    candidates = resolve_candidates(models, preset, task)
    check_settings(calibrate, decision_threshold)
    if not isinstance(tune, (bool, int, np.integer)) or (not isinstance(tune, bool) and tune < 1):
        raise ValueError(f"tune must be True, False or a number of trials >= 1, got {tune!r}.")
    if not isinstance(bag_sets, (int, np.integer)) or isinstance(bag_sets, bool) or bag_sets < 1:
        raise ValueError(f"bag_sets must be an integer >= 1, got {bag_sets!r}.")
    if tune is not False and backend == "ray":
        raise ValueError("tune runs on the local backend only; drop tune or use backend='local'.")

    classes = None
    if task == "classification":
        classes, y_enc = np.unique(y_raw, return_inverse=True)
        target = y_enc
    else:
        y_enc, target = None, y_raw.astype(np.float64)
    frac = holdout_fraction(holdout, len(df), time_limit)
    if frac is None:
        folds = _folds(y_enc if y_enc is not None else np.zeros(len(df), dtype=int), task, cv, random_state)
    else:
        folds = [holdout_split(target, frac, random_state, stratify=task == "classification")]
        if len(folds[0][1]) < 2:
            raise ValueError(
                f"holdout={holdout!r} holds out {len(folds[0][1])} of the {len(df)} rows; the ensemble and calibration "
                "need at least 2: hold out a larger share, or use cv folds (holdout=None)."
            )
    # The rows with out-of-fold predictions (all of them, or the hold-out's), in their order: the
    # space the leaderboard, the ensemble and calibration work in.
    scored_rows, eval_folds = _evaluation_rows(folds, len(df))
    eval_target = target[scored_rows]
    kinds, coerced = decide_types(df, categorical_features, feature_types, coerce_numeric)
    schema = Schema.from_types(kinds)
    n_unique = {c: int(df[c].nunique(dropna=True)) for c in schema.categorical}
    threads = resolve_num_threads(num_threads)
    ctx = BuildContext(task, schema, n_unique, kinds, tuple(coerced), random_state, threads, device)
    candidates = with_params(candidates, model_params, ctx)
    # Kept for the refit: refitting on all rows costs about cv / (cv - 1) folds of a model,
    # i.e. as much time as the model's cv folds of an equal share of (cv - 1) / cv of the limit.
    # (A hold-out's one fit takes its model's whole share: refitting needs as much again.)
    reserved = time_limit / (2 if frac else cv) if (refit and time_limit is not None) else 0.0
    # The level-2 models are those of STACKERS the user also compares (models=["mlp", "tabm"]: none).
    stacker_names = [n for n in STACKERS if n in {c.name for c in candidates}]
    stacking = (
        stack
        and bag
        and not refit
        and frac is None
        and backend == "local"
        and len(candidates) >= 2
        and bool(stacker_names)
    )
    stack_reserve = 0.2 * time_limit if (stacking and time_limit is not None) else 0.0
    refit_time_limit = model_time_limit  # as given: a refit may use all that is left of time_limit
    shares = None
    if model_time_limit is None and time_limit is not None:
        if backend == "ray":
            model_time_limit = (time_limit - reserved) / len(candidates)
        else:
            shares = budget_shares(candidates, len(df))
    n_classes = 0 if classes is None else len(classes)
    _build_native_kernels(candidates, device)

    from ..tracking import ComparisonRun, tracking_enabled_for

    run = None
    if registered_model_name is not None and not (tracking_enabled_for(tracking) and (bag or refit)):
        raise ValueError(
            "registered_model_name registers the comparison's MLflow model: it needs tracking=True (or autolog) "
            "and a kept model (bag=True or refit=True)."
        )
    if tracking_enabled_for(tracking):
        settings = {"models": ",".join(c.name for c in candidates), "cv": cv, "holdout": frac, "bag_sets": bag_sets,
                    "metric": metric_obj.name, "preset": preset, "task": task, "seed": random_state, "rows": len(df),
                    "columns": df.shape[1], "column_types": describe_types(kinds), "weighted": row_weight is not None,
                    "class_weight": None if class_weight is None else str(class_weight)}  # fmt: skip
        run = ComparisonRun(
            settings, experiment=experiment, tracking_uri=tracking_uri, registered_model_name=registered_model_name
        )
    try:  # (from here on an error or Ctrl-C ends the MLflow run: FAILED or KILLED)
        if run is not None:
            run.log_dataset(df, y_raw)
        by_name = {c.name: c for c in candidates}

        hyperparameters = {c.name: _hyperparameters(c, ctx) for c in candidates}  # (MLflow and the report)
        run_order = list(shares) if shares else [c.name for c in candidates]
        watch = _Progress(progress, verbose, metric_obj, started, time_limit, run_order, len(folds))
        tuner = None
        if tune is not False:
            from .tuning import Tuner

            tuner = Tuner(metric_obj, None if tune is True else int(tune), random_state, on_trial=watch.trial)

        def on_fold(name: str, fold: int, result: FoldResult | None) -> None:
            score = None
            if result is not None and result.pred is not None:
                score = metric_obj.value(target[folds[fold][1]], result.pred)
            watch.fold(name, fold, result, score)

        level1_cost = {}  # stacker -> seconds its level-1 folds took

        def stacking_keep() -> float:
            """Seconds kept for level 2 once its models ran at level 1: 1.5 times what they took
            there (at least 5% of the limit, at most ``stack_reserve``)."""
            return min(stack_reserve, max(0.05 * time_limit, 1.5 * sum(level1_cost.values())))

        def on_model_done(name: str, results: list[FoldResult]) -> None:
            """Log a model as soon as its folds are done (a long comparison can be watched live)."""
            if stacking and time_limit is not None and name in stacker_names and name not in level1_cost:
                level1_cost[name] = float(np.nansum([r.fit_seconds + r.predict_seconds for r in results]))
                if len(level1_cost) == len(stacker_names):  # what level 2 will need is known now
                    plan.reserved = reserved + stacking_keep()
            if tuner is not None and name in tuner.tuned:  # the configuration its folds ran
                by_name[name] = tuner.tuned[name]
                hyperparameters[name] = _hyperparameters(by_name[name], ctx)
            cand = by_name[name]
            row, _, scores = _aggregate(cand, results, eval_folds, eval_target, metric_obj, n_classes, ctx)
            watch.model(name, row)
            if run is not None:
                histories = [r.history for r in results if r.status in ("ok", "timeout")]
                run.log_model(row, scores, histories, hyperparameters[name], cand.kind)

        plan = FoldPlan(
            candidates, ctx, df, target, folds, n_classes, model_time_limit, time_limit, started,
            reserved + stack_reserve, on_model_done, keep_models=bag and not refit, weights=row_weight,
            on_fold=on_fold, shares=shares, tuner=tuner,
        )  # fmt: skip
        if backend == "ray":
            from .ray_backend import run_folds_on_ray

            fold_results = run_folds_on_ray(plan, ray_address, gpus_per_task)
        else:
            fold_results = run_folds_locally(plan)
        if tuner is not None:  # the refit, if any, fits what the folds ran
            candidates = [tuner.tuned.get(c.name, c) for c in candidates]
        elif portfolio and plan.keep_models and backend == "local" and time_limit is not None:
            from .tuning import portfolio_candidates

            def starting(cand) -> None:
                by_name[cand.name] = cand
                hyperparameters[cand.name] = _hyperparameters(cand, ctx)
                watch.names.append(cand.name)

            score = {c.name: _aggregate(c, fold_results[c.name], eval_folds, eval_target, metric_obj,
                                        n_classes, ctx)[0]["score"] for c in candidates}  # fmt: skip
            ranked = sorted(score, key=lambda n: -np.nan_to_num(score[n], nan=-np.inf))
            keep = stacking_keep() if stacking else 0.05 * time_limit
            more = portfolio_candidates(candidates, ctx, ranked)
            candidates = candidates + _run_portfolio(plan, more, fold_results, keep, starting)

        more_splits = {}  # name -> [(folds, results)] of each further complete k-fold split
        if bag_sets > 1 and plan.keep_models and frac is None and backend == "local" and time_limit is not None:
            score = {c.name: _aggregate(c, fold_results[c.name], eval_folds, eval_target, metric_obj,
                                        n_classes, ctx)[0]["score"] for c in candidates}  # fmt: skip
            ranked = sorted(score, key=lambda n: -np.nan_to_num(score[n], nan=-np.inf))
            codes = y_enc if y_enc is not None else np.zeros(len(df), dtype=int)

            def split(number: int) -> list:
                return _folds(codes, task, cv, random_state + number)

            def on_split_fold(name: str, fold: int, result, folds_used) -> None:
                value = None
                if result is not None and result.pred is not None:
                    value = metric_obj.value(target[folds_used[fold][1]], result.pred)
                watch.fold(name, fold, result, value)

            keep = stacking_keep() if stacking else 0.05 * time_limit
            more_splits = _run_bag_sets(plan, [by_name[n] for n in ranked], fold_results, bag_sets, split, keep,
                                        on_split_fold)  # fmt: skip

        rows, oof, histories, fold_scores = [], {}, {}, {}
        for cand in candidates:
            results = fold_results[cand.name]
            row, pred, scores = _aggregate(cand, results, eval_folds, eval_target, metric_obj, n_classes, ctx)
            if pred is not None and cand.name in more_splits:  # the mean over its splits
                preds = [_aggregate(cand, rs, fs, eval_target, metric_obj, n_classes, ctx)[1]
                         for fs, rs in more_splits[cand.name]]  # fmt: skip
                pred = np.mean([pred, *preds], axis=0)
                row["score"] = metric_obj.score(eval_target, pred)
                row["bag_sets"] = 1 + len(preds)
            rows.append(row)
            histories[cand.name] = [r.history for r in results if r.status in ("ok", "timeout")]
            fold_scores[cand.name] = scores
            if pred is not None:
                oof[cand.name] = pred

        stacked = {}  # level-2 name -> (level-1 names, feature columns)
        # Level 2 stacks the models a level-1 greedy ensemble selects (at least two: the best-
        # scoring others make up the number): it then costs what that ensemble costs to predict,
        # not what every model and configuration costs together.
        deadline = None if time_limit is None else started + time_limit
        level1 = []
        if stacking and len(oof) >= 2:
            cost1 = _prediction_cost(rows, fold_results, {}, len(folds), refit)
            chosen = set(cheapest_selection(oof, eval_target, metric_obj, cost1, limit=infer_limit, deadline=deadline))
            ranked = sorted(rows, key=lambda r: -np.nan_to_num(r["score"], nan=-np.inf))
            others = [r["model"] for r in ranked if r["model"] in oof and r["model"] not in chosen]
            chosen |= set(others[: max(0, 2 - len(chosen))])
            level1 = [c.name for c in candidates if c.name in chosen]
        if stacking and len(level1) >= 2 and (time_limit is None or time.perf_counter() - started < time_limit):
            columns = stack_columns(level1, n_classes)
            level2, ctx2 = stackers(ctx, columns, stacker_names)
            by_name.update({c.name: c for c in level2})
            hyperparameters.update({c.name: _hyperparameters(c, ctx2) for c in level2})
            watch.names += [c.name for c in level2]
            plan2 = FoldPlan(
                level2, ctx2, stack_frame({n: oof[n] for n in level1}, columns), target, folds, n_classes,
                model_time_limit, time_limit, started, reserved, on_model_done, keep_models=True,
                weights=row_weight, on_fold=on_fold,
                shares=budget_shares(level2, len(df)) if model_time_limit is None and time_limit else None,
            )  # fmt: skip
            level2_results = run_folds_locally(plan2)
            for cand in level2:
                results = level2_results[cand.name]
                row, pred, scores = _aggregate(cand, results, eval_folds, eval_target, metric_obj, n_classes, ctx)
                rows.append(row)
                histories[cand.name], fold_scores[cand.name] = [], scores
                if pred is not None:
                    oof[cand.name] = pred
                    stacked[cand.name] = (level1, columns)
            fold_results.update(level2_results)

        cost = _prediction_cost(rows, fold_results, stacked, len(folds), refit)
        weights = {}
        if ensemble and len(oof) >= 1:
            weights = cheapest_selection(oof, eval_target, metric_obj, cost, limit=infer_limit, deadline=deadline)
            pred = sum(w * oof[n] for n, w in weights.items())
            scores = [metric_obj.value(eval_target[v], pred[v]) for _, v in eval_folds]
            row = _row(ENSEMBLE, "ok", None, metric_obj, scores, ctx)
            row["score"] = metric_obj.score(eval_target, pred)
            row["fit_seconds"] = sum(r["fit_seconds"] for r in rows if r["model"] in weights)
            row["predict_seconds"] = sum(r["predict_seconds"] for r in rows if r["model"] in weights)
            # (one fold model of each member, as a model row's is one fold model's)
            row["predict_rows_per_s"] = 1.0 / sum(1.0 / r["predict_rows_per_s"] for r in rows if r["model"] in weights)
            row["n_params"] = np.nansum([r["n_params"] for r in rows if r["model"] in weights]) or np.nan
            for r in rows:
                r["ensemble_weight"] = weights.get(r["model"], 0.0)
            rows.insert(0, row)  # (first of equal scores: the ensemble of one model is that model)
            oof[ENSEMBLE], fold_scores[ENSEMBLE] = pred, scores

        for r in rows:
            r["predict_seconds_per_row"] = cost(set(weights) if r["model"] == ENSEMBLE else {r["model"]})
        board = _ranked(rows, set(oof))
        # The rows best_model_ may be (within infer_limit; none is: the fastest scored row).
        choice = board
        if infer_limit is not None:
            scored = board[board["score"].notna()]
            choice = scored[scored["predict_seconds_per_row"] <= infer_limit]
            if choice.empty and not scored.empty:
                choice = scored.sort_values("predict_seconds_per_row", kind="stable").head(1)
        result = ComparisonResult(
            leaderboard=board,
            task=task,
            metric=metric_obj,
            classes=classes,
            oof_predictions=oof,
            histories=histories,
            ensemble_weights=weights,
            data_summary=_summarise(df, y_raw, task, kinds),
            wall_seconds=float("nan"),
            fold_scores=fold_scores,
            column_profile=_profile(df, kinds, coerced),
            oof_target=eval_target,
        )
        result.settings = {
            "models": [c.name for c in candidates], "task": task, "metric": metric_obj.name, "cv": cv, "holdout": frac,
            "preset": preset, "time_limit": time_limit, "model_time_limit": model_time_limit, "ensemble": ensemble,
            "bag": bag, "bag_sets": bag_sets, "refit": refit, "tune": tune, "portfolio": portfolio,
            "infer_limit": infer_limit, "calibrate": calibrate, "decision_threshold": decision_threshold,
            "weighted": row_weight is not None, "class_weight": class_weight, "model_params": model_params,
            "random_state": random_state, "num_threads": threads, "device": device, "backend": backend,
            "versions": _versions(),
        }  # fmt: skip
        result.hyperparameters = hyperparameters
        result.tuning = {} if tuner is None else dict(tuner.trials)
        if plan.keep_models:
            # Each model's scored fold models (a model cut short by the time limit keeps those it has).
            # (a model fitted on further splits: the first split's fold models, then the others')
            kept = {n: [r.estimator for r in rs if r.estimator is not None] for n, rs in fold_results.items()}
            for n, splits in more_splits.items():
                kept[n] += [r.estimator for _, rs in splits for r in rs]
            kept = {n: models for n, models in kept.items() if models}
            for name, (level1, columns) in stacked.items():  # each fold: its level-1 models under its level 2
                kept[name] = [
                    StackedModel({n: kept[n][k] for n in level1}, columns, model, task=task, n_classes=n_classes)
                    for k, model in enumerate(kept[name])
                ]
            data = (df, target, folds, row_weight)
            result.best_model_ = _bagged(choice, weights, kept, stacked, task, data, classes)
            # Models with every fold (out-of-fold importance, get_model).
            result.fold_models = {n: models for n, models in kept.items() if len(models) >= len(folds)}
            result._stacked = stacked
            result._data = data
        elif refit:
            result.best_model_, result.refit_status, result.refit_error = _refit(
                choice,
                weights,
                candidates,
                ctx,
                df,
                target,
                classes,
                started=started,
                time_limit=time_limit,
                model_time_limit=refit_time_limit,
                sample_weight=row_weight,
            )
        best = choice[choice["score"].notna()].iloc[0]["model"] if choice["score"].notna().any() else None
        if best in oof:  # complete out-of-fold predictions to fit on
            parts = _postprocessing_folds(eval_folds, eval_target, task, random_state)
            post = fit_postprocessing(task, metric_obj, oof[best], eval_target, parts, calibrate, decision_threshold)
            result.postprocessing, result._calibrator = post["summary"], post["calibrator"]
            if result.best_model_ is not None:
                result.best_model_.calibrator = post["calibrator"]
                result.best_model_.threshold = post["threshold"]
                result.best_model_.residual_quantiles = post["residual_quantiles"]
        if result.best_model_ is not None:  # (a CSV's marks: the files it predicts are read alike)
            result.best_model_.number_format = number_format(df)
            result.best_model_.text_columns = text_columns(df)
        result.wall_seconds = time.perf_counter() - started

        if run is not None:
            run.finish(result, {c.name: c.kind for c in candidates})

    except KeyboardInterrupt:
        if run is not None:
            run.end("KILLED")
        raise
    except BaseException:
        if run is not None:
            run.end("FAILED")
        raise
    return result


class _Progress:
    """Progress events for ``compare(progress=...)`` and the lines ``verbose`` prints."""

    def __init__(self, callback, verbose: int, metric: Metric, started: float, time_limit, names: list, n_folds: int):
        self.callback, self.verbose, self.metric = callback, verbose, metric
        self.started, self.time_limit, self.names, self.n_folds = started, time_limit, names, n_folds
        self.best_model, self.best_score = None, None

    def _emit(self, event: dict) -> dict:
        elapsed = time.perf_counter() - self.started
        event.update(
            model_index=self.names.index(event["model"]), n_models=len(self.names), n_folds=self.n_folds,
            best_model=self.best_model, best_score=self.best_score, elapsed=elapsed,
            time_left=None if self.time_limit is None else max(0.0, self.time_limit - elapsed),
        )  # fmt: skip
        if self.callback is not None:
            self.callback(event)
        return event

    def _tail(self, e: dict) -> str:
        best = f"best so far: {e['best_model']} {e['best_score']:.4g}" if e["best_model"] else "no score yet"
        left = f"; {e['time_left']:.0f} s left" if e["time_left"] is not None else ""
        return f"{best}{left}"

    def fold(self, name: str, fold: int, result, score) -> None:
        if result is None:
            self._emit({"event": "fold_start", "model": name, "fold": fold, "status": None, "score": None})
            return
        e = self._emit({"event": "fold_end", "model": name, "fold": fold, "status": result.status, "score": score})
        if self.verbose >= 2:
            shown = f"{self.metric.name} {score:.4g}" if score is not None else "not scored"
            print(f"[{e['elapsed']:6.0f} s] {name} fold {fold + 1}/{self.n_folds}: {result.status}, {shown} "
                  f"({result.fit_seconds:.1f} s fit)", flush=True)  # fmt: skip

    def trial(self, name: str, number: int, value, state: str) -> None:
        e = self._emit({"event": "trial_end", "model": name, "fold": None, "trial": number, "status": state,
                        "score": value})  # fmt: skip
        if self.verbose >= 2:
            shown = f"{self.metric.name} score {value:.4g}" if value is not None else state
            print(f"[{e['elapsed']:6.0f} s] {name} trial {number + 1}: {shown}", flush=True)

    def model(self, name: str, row: dict) -> None:
        score = self.metric.signed(row["score"])  # the value the leaderboard ranks by
        if not np.isnan(score) and (self.best_score is None or row["score"] > self.metric.signed(self.best_score)):
            self.best_model, self.best_score = name, score
        e = self._emit({"event": "model_end", "model": name, "fold": None, "status": row["status"],
                        "score": None if np.isnan(score) else score})  # fmt: skip
        if self.verbose >= 1:
            shown = f"{self.metric.name} {score:.4g} ± {row['std']:.2g}" if e["score"] is not None else "no score"
            print(f"[{e['elapsed']:6.0f} s] {name} ({e['model_index'] + 1}/{e['n_models']}): {row['status']}, "
                  f"{shown}; {self._tail(e)}", flush=True)  # fmt: skip


def _run_portfolio(plan: FoldPlan, more: list, fold_results: dict, keep: float, starting) -> list:
    """Bag each candidate of ``more`` (:func:`~tabular_suite.compare.tuning.portfolio_candidates`,
    in order) while the time left fits it (:func:`_run_if_time_fits`, at the pace of its model's
    first configuration). ``starting(cand)`` is called before its folds; their results join
    ``fold_results``. Returns the candidates that ran."""
    ran = []
    for cand in more:
        results = _run_if_time_fits(plan, cand, fold_results.get(cand.name.rsplit("_", 1)[0], []), keep, starting)
        if results is not None:
            fold_results[cand.name] = results
            ran.append(cand)
    return ran


def _run_bag_sets(plan: FoldPlan, ranked: list, fold_results: dict, bag_sets: int, split, keep: float, on_fold):
    """Fit the candidates ``ranked`` (best first) on further k-fold splits (``split(number)``,
    number 1 to ``bag_sets - 1``; AutoGluon's repeated bagging) while the time left fits them
    (:func:`_run_if_time_fits`, at the pace of their first split), every candidate once per
    split before the next split; the in-context model and the forests are not (their bagged form
    is one fit on all rows: :func:`_one_model`). ``on_fold(name, fold, result, folds)`` as the
    plan's. Returns ``{name: [(folds, results)]}`` of the splits a model finished with every fold
    "ok"."""
    out: dict = {}
    eligible = [c for c in ranked if not _one_model(fold_results.get(c.name, []))]
    for number in range(1, bag_sets):
        folds, ran = split(number), False
        for cand in eligible:
            one = replace(plan, folds=folds, on_model_done=None, tuner=None,
                          on_fold=lambda name, fold, result, fs=folds: on_fold(name, fold, result, fs))  # fmt: skip
            results = _run_if_time_fits(one, cand, fold_results.get(cand.name, []), keep)
            if results is None:
                continue
            ran = True
            if all(r.status == "ok" for r in results):
                out.setdefault(cand.name, []).append((folds, results))
        if not ran:
            break
    return out


def _run_if_time_fits(plan: FoldPlan, cand, first: list, keep: float, starting=None) -> list | None:
    """``cand``'s fold results on ``plan.folds``, or None when it does not start: unless what is
    left of ``plan.time_limit``, less the ``keep`` seconds, fits 1.2 times what ``first`` (a
    configuration of its model, every fold "ok": a model cut short by its share is not tried
    again) took. It gets at most three times that (at least 5% of the limit; never more than
    ``plan.model_time_limit``). ``starting(cand)`` is called before its folds."""
    if not first or any(r.status != "ok" for r in first):
        return None
    expected = sum(r.fit_seconds + r.predict_seconds for r in first)
    left = plan.time_limit - keep - (time.perf_counter() - plan.started)
    if 1.2 * expected > left:
        return None
    if starting is not None:
        starting(cand)
    limit = min(left, max(3 * expected, 0.05 * plan.time_limit), plan.model_time_limit or np.inf)
    one = replace(plan, candidates=[cand], shares=None, model_time_limit=limit, reserved=keep)
    return run_folds_locally(one)[cand.name]


def _fits_once(estimator) -> bool:
    """Whether a fold model's bagged form is one fit on all rows (the in-context model: its fit
    only stores the rows)."""
    from ..incontext import TabPFNClassifier, TabPFNRegressor

    return isinstance(estimator, (TabPFNClassifier, TabPFNRegressor))


def _shared_by_folds(models: list) -> bool:
    """Whether a model's fold models are one model: a forest fitted once, its out-of-bag
    predictions standing in for the folds' (``run_out_of_bag``)."""
    return len(models) > 1 and len({id(m) for m in models}) == 1


def _one_model(results: list) -> bool:
    """Whether a model's bagged form is one model: the in-context model (:func:`_fits_once`) or a
    forest fitted once (:func:`_shared_by_folds`); neither is fitted again on further splits
    (``bag_sets``)."""
    fitted = [r.estimator for r in results if r.estimator is not None]
    return bool(fitted) and (_fits_once(fitted[0]) or _shared_by_folds(fitted))


#: How much more of the time left a gradient-boosting model (LightGBM, XGBoost, CatBoost,
#: HistGradientBoosting) starts with than a deep model: they run first and are the strongest
#: models per second on the larger tables, where an even split cut every model short
#: (benchmarks/RESULTS.md, "compare()'s budget on large tables").
GBDT_PRIORITY = 3.0
_BOOSTING = (*GBDT_LIBRARIES, "hist_gradient_boosting")


def budget_shares(candidates, n_rows: int) -> dict:
    """``{name: weight}`` in the order the local backend runs the candidates: the linear model and
    the gradient-boosting models (the level-2 models are among them: what stacking needs is known
    early), the other baselines, the deep models, then the models not trained by the engine (the
    in-context model); a model starts with weight / (sum of the weights still to run) of the time
    left, so what one does not use goes to those after it. The deep models, whose cost grows
    with the rows, weigh 1 + log10(rows / 1000), clipped to [1, 3]; the gradient-boosting models
    :data:`GBDT_PRIORITY` times that; the other models 1.

    >>> from tabular_suite.compare.candidates import resolve_candidates
    >>> budget_shares(resolve_candidates(["mlp", "tabpfn", "random_forest", "lightgbm", "linear"], "fast",
    ...                                  "classification"), 10_000)
    {'lightgbm': 6.0, 'linear': 1.0, 'random_forest': 1.0, 'mlp': 2.0, 'tabpfn': 1.0}
    """
    grows = float(np.clip(1 + np.log10(max(n_rows, 1) / 1000), 1, 3))

    def group(c) -> int:
        if c.name in _BOOSTING or c.name in STACKERS:
            return 0
        return 1 if c.name in BASELINES else (2 if c.kind == "deep" else 3)

    def weight(c) -> float:
        return GBDT_PRIORITY * grows if c.name in _BOOSTING else (grows if c.kind == "deep" else 1.0)

    return {c.name: weight(c) for c in sorted(candidates, key=group)}  # stable: the preset's order within a group


def _ranked(rows: list[dict], complete: set) -> pd.DataFrame:
    """The leaderboard: the rows of ``complete`` (every fold's out-of-fold predictions: scores
    on all the rows) first, then the models the time limit cut short (scored over the folds
    they finished: not comparable), each by score; the first of equal scores stays first.

    >>> rows = [{"model": "failed", "score": None}, {"model": "cut_short", "score": 0.9},
    ...         {"model": "a", "score": 0.7}, {"model": "b", "score": 0.8}]
    >>> _ranked(rows, {"a", "b"})["model"].tolist()
    ['b', 'a', 'cut_short', 'failed']
    """
    board = pd.DataFrame(rows).assign(_complete=[r["model"] in complete for r in rows])
    board = board.sort_values(["_complete", "score"], ascending=False, na_position="last", kind="stable")
    return board.drop(columns="_complete").reset_index(drop=True)


def _row(name: str, status: str, error, metric: Metric, scores: list[float], ctx: BuildContext) -> dict[str, Any]:
    mean = float(np.mean(scores)) if scores else np.nan
    return {
        "model": name,
        "status": status,
        "error": error,
        "metric": metric.name,
        "direction": "higher is better" if metric.greater_is_better else "lower is better",
        "score": metric.signed(mean),
        "mean": mean,
        "std": float(np.std(scores)) if scores else np.nan,
        "folds": len(scores),
        "bag_sets": 1,
        "fit_seconds": np.nan,
        "predict_seconds": np.nan,
        "predict_rows_per_s": np.nan,
        "predict_seconds_per_row": np.nan,
        "best_epoch": np.nan,
        "n_params": np.nan,
        "device": "cpu",
        "seed": ctx.seed,
        "ensemble_weight": np.nan,
        "mlflow_run_id": None,
    }


_STATUS_ORDER = ("oom", "failed", "timeout", "skipped", "ok")


def _aggregate(cand, results: list[FoldResult], folds, target, metric, n_classes, ctx):
    """A model's leaderboard row, its out-of-fold predictions (None unless every fold is scored)
    and its per-fold scores; ``folds`` and ``target`` in the evaluation rows' space (see
    :func:`_evaluation_rows`)."""
    scored = [(r, folds[r.fold][1]) for r in results if r.pred is not None]
    scores = [metric.value(target[v], r.pred) for r, v in scored]
    worst = min((r.status for r in results), key=_STATUS_ORDER.index)
    status = "timeout" if worst == "skipped" else worst
    errors = [r.error for r in results if r.error]
    row = _row(cand.name, status, errors[0] if errors else None, metric, scores, ctx)
    done = [r for r, _ in scored]
    if done:
        row["fit_seconds"] = float(np.mean([r.fit_seconds for r in done]))
        row["predict_seconds"] = float(np.mean([r.predict_seconds for r in done]))
        # Rows per second of one fold model: its warm batch (fold 0), else its validation rows.
        warm = [r.batch_seconds for r in done if np.isfinite(r.batch_seconds) and r.batch_seconds > 0]
        if warm:
            row["predict_rows_per_s"] = BATCH_ROWS / float(np.mean(warm))
        elif row["predict_seconds"] > 0:
            row["predict_rows_per_s"] = np.mean([len(v) for _, v in scored]) / row["predict_seconds"]
        row["best_epoch"] = float(np.mean([r.best_epoch for r in done]))
        row["n_params"] = float(done[0].n_params)
        row["device"] = done[0].device
    pred = None
    if len(scored) == len(folds):  # complete out-of-fold predictions: eligible for the ensemble
        pred = np.zeros((len(target), n_classes)) if n_classes else np.zeros(len(target))
        for r, v in scored:
            pred[v] = r.pred
        row["score"] = metric.score(target, pred)  # what the ensemble selection sees
    return row, pred, scores


def _hyperparameters(cand, ctx) -> dict:
    """The candidate's estimator parameters as MLflow params (one level; objects by their repr)."""
    try:
        estimator = cand.make(ctx)
    except Exception:  # noqa: BLE001 - a model that cannot be built has its error in the leaderboard
        return {}
    params = model_step(estimator).get_params(deep=False)  # a baseline's pipeline: its model's parameters
    return {k: v if isinstance(v, (int, float, str, bool, type(None))) else repr(v) for k, v in params.items()}


def _build_native_kernels(candidates, device) -> None:
    """Build (or load from the cache) the native CPU kernels before any fold is timed, when a
    deep model will train on the CPU: a compile's one-off cost then counts toward the time
    limit but is never billed to a fold's ``fit_seconds`` or budget. Respects
    ``TABULAR_SUITE_NATIVE`` and the CPU (:func:`tabular_suite.nn.native.load`); a failed build
    leaves the models on the PyTorch path."""
    if not any(c.kind == "deep" for c in candidates):
        return
    try:
        on_cpu = resolve_device(device).type == "cpu"
    except ValueError:  # a bad device fails each deep model's folds, with the message
        return
    if on_cpu:
        from ..nn import native

        native.load()


def _prediction_cost(rows: list, fold_results: dict, stacked: dict, n_folds: int, refit: bool):
    """``cost(names)``: the seconds per row that predicting with the models ``names`` costs in
    ``best_model_`` (each model once, a level-2 model with its level-1 models), from each
    row's ``predict_rows_per_s`` (one fold model's warm batch: see ``run_fold``) times the
    models that predict: its fold models (of each of its ``bag_sets`` splits), or one (the
    in-context model, a refit)."""
    per_row = {}
    for r in rows:
        if np.isfinite(r["predict_rows_per_s"]) and r["predict_rows_per_s"] > 0:
            copies = 1 if refit or _one_model(fold_results.get(r["model"], [])) else n_folds * r["bag_sets"]
            per_row[r["model"]] = copies / r["predict_rows_per_s"]

    def cost(names) -> float:
        needed = set()
        for name in names:
            needed |= {name, *stacked.get(name, ((), None))[0]}
        return float(sum(per_row.get(n, 0.0) for n in needed))

    return cost


def _bagged(board: pd.DataFrame, weights: dict, fold_models: dict, stacked: dict, task, data: tuple, classes):
    """The best row with each model as its fold models (a level-2 model over its level-1 models'
    fold models); None when no model has a score."""
    usable = board[board["score"].notna()]
    if usable.empty:
        return None
    best = usable.iloc[0]["model"]
    chosen = weights if best == ENSEMBLE else {best: 1.0}
    return _bagged_row(chosen, fold_models, stacked, task, data, classes)


def _bagged_row(chosen: dict, fold_models: dict, stacked: dict, task, data: tuple, classes) -> EnsembleModel:
    """The models of ``chosen`` (name -> weight) as one predictor, each the mean of its fold
    models. The in-context model is the exception: its fit only stores the rows it predicts
    from, so it is fitted once on all the rows (``data``: the table, target codes or values and
    row weights) instead: one context to run, not one per fold."""
    df, target, weights = data[0], data[1], data[3]
    n_classes = 0 if classes is None else len(classes)
    all_rows: dict = {}
    made: dict = {}  # one object per model: a member that is also a level-2 input predicts once

    def bagged(name):
        if name not in made:
            made[name] = _bagged_one(name)
        return made[name]

    def _bagged_one(name):
        models = fold_models[name]
        if name not in stacked:
            if _fits_once(models[0]):
                if name not in all_rows:
                    weighted = {} if weights is None else {"sample_weight": weights}
                    all_rows[name] = [clone(models[0]).fit(df, target, **weighted)]
                models = all_rows[name]
            return BaggedModel(models, task=task, classes=classes)
        level1, features = stacked[name]
        level2 = BaggedModel([m.model for m in models], task=task, classes=classes)
        return StackedModel({n: bagged(n) for n in level1}, features, level2, task=task, n_classes=n_classes)

    members = {name: bagged(name) for name in chosen}
    columns = list(df.columns)
    names = columns if all(isinstance(c, str) for c in columns) else None
    return EnsembleModel(members, chosen, task=task, classes=classes, feature_names=names)


def _refit(
    board: pd.DataFrame,
    weights: dict,
    candidates,
    ctx,
    df,
    target,
    classes,
    *,
    started: float,
    time_limit: float | None,
    model_time_limit: float | None,
    sample_weight: np.ndarray | None = None,
) -> tuple[EnsembleModel | None, str | None, str | None]:
    """Refit the best row on all rows within what is left of ``time_limit`` (each member also
    within ``model_time_limit``): ``(model or None, refit_status, refit_error)``. ``target``: the
    class codes, as the fold models were fitted (XGBoost takes no other labels), or the values;
    a classifier's member maps them back to ``classes`` (a :class:`BaggedModel` of one)."""
    usable = board[board["score"].notna()]
    if usable.empty:
        return (
            None,
            None,
            ("no model has a score to refit (every model failed or was skipped); see the leaderboard's error column."),
        )
    best = usable.iloc[0]["model"]
    chosen = weights if best == ENSEMBLE else {best: 1.0}
    by_name = {c.name: c for c in candidates}
    limited = time_limit is not None or model_time_limit is not None
    # Under a time limit the heaviest members go first: a member left without time weighs least.
    order = sorted(chosen, key=chosen.get, reverse=True) if limited else list(chosen)
    members, notes = {}, []
    with threadpool_limits(limits=ctx.num_threads):
        for i, name in enumerate(order):
            budget = model_time_limit
            if time_limit is not None:
                share = (time_limit - (time.perf_counter() - started)) / (len(order) - i)
                budget = share if budget is None else min(budget, share)
            if budget is not None and budget <= 0:
                notes.append(f"{name} not refitted (no time left)")
                continue
            est = by_name[name].make(ctx)
            deadline = None if budget is None else Deadline(budget)
            deep = by_name[name].kind == "deep"
            cut_short = fit_within(est, df, target, deadline, deep=deep, sample_weight=sample_weight)
            if cut_short:
                notes.append(f"{name} stopped after {budget:.3g} s: {cut_short}")
            members[name] = est if classes is None else BaggedModel([est], task=ctx.task, classes=classes)
    if not members:
        return (
            None,
            "skipped",
            (
                f"no time was left for the refit: the cross-validation used the whole time_limit of "
                f"{time_limit:g} s. Raise time_limit, or fit the best model yourself."
            ),
        )
    kept = {name: weight for name, weight in chosen.items() if name in members}
    names = list(df.columns) if all(isinstance(c, str) for c in df.columns) else None
    model = EnsembleModel(members, kept, task=ctx.task, classes=classes, feature_names=names)
    if not notes:
        return model, "ok", None
    return (
        model,
        "timeout",
        ("the time limit cut the refit short: " + "; ".join(notes) + ". Raise time_limit for a full refit."),
    )
