"""The fold unit of a comparison: fit one candidate on one fold's training rows within a time
budget and predict its validation rows. Both backends (local, :mod:`.ray_backend`) run folds
through :func:`run_fold` and size their budgets with :func:`fold_budget` (the local one fits a
forest of bootstrap samples once instead, scored out of bag: :func:`run_out_of_bag`); the refit
uses the same :class:`Deadline` and :func:`fit_within`.

How each kind of model keeps to a deadline (none of them is killed: a process fork or signal is
unsafe next to the OpenMP pools of torch and scikit-learn, so each one stops itself and keeps
what it has, as AutoGluon does):

- deep models (the training engine): at the first batch that ends past the deadline;
- random forests: grown with ``warm_start`` in chunks of trees sized to what is left;
- HistGradientBoosting: grown with ``warm_start`` in chunks of boosting iterations, likewise;
- logistic regression: a short probe fit times the solver, then one fit with ``max_iter``
  capped to what is left;
- LightGBM, XGBoost, CatBoost: a training callback that stops at the first round past it (and,
  with or without a deadline, early stopping on a tenth of the rows held out: :func:`fit_gbdt`);
- the in-context model: its fit only stores the context; the validation rows are predicted in
  chunks and a fold that runs out of time before all are predicted is not scored.

Growing in chunks gives the same trees as one fit (``warm_start`` draws the same seeds), so a
deadline that is not reached changes nothing; without a deadline every model is fitted in one
call, exactly as before.
"""

from __future__ import annotations

import inspect
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import effective_n_jobs
from sklearn.base import is_classifier
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from ..data.preprocess import DataDriftWarning
from ..tabular.base import MIN_ROWS_FOR_VALIDATION, holdout_split
from ..training.callbacks import Callback
from ..training.device import resolve_device
from .candidates import EARLY_STOP_FRACTION, FALLBACK_ROUNDS, BuildContext, model_step
from .ensemble import _align_proba

__all__ = [
    "Deadline",
    "FoldPlan",
    "FoldResult",
    "fit_gbdt",
    "fit_within",
    "fold_budget",
    "gbdt_library",
    "rounds_grown",
    "run_fold",
    "run_folds_locally",
    "run_out_of_bag",
    "bags_out_of_bag",
    "OutOfBag",
]


class Deadline(Callback):
    """A point in time ``seconds`` from now that a fit must keep to.

    As a training callback it stops a deep model at the first batch (or epoch end) past that
    point, its best weights kept; :func:`fit_within` checks it between the chunks of the other
    models. ``hit`` tells whether it stopped something.

    Examples
    --------
    >>> deadline = Deadline(60.0)
    >>> deadline.passed(), 59 < deadline.left() <= 60
    (False, True)
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.until = time.perf_counter() + seconds
        self.hit = False

    def left(self) -> float:
        """Seconds until the deadline (negative once it has passed)."""
        return self.until - time.perf_counter()

    def passed(self) -> bool:
        """Whether the deadline has passed."""
        return time.perf_counter() >= self.until

    def on_batch_end(self, state) -> bool:
        self.hit = self.hit or self.passed()
        return self.hit

    def on_epoch_end(self, state, logs: dict) -> bool:
        self.hit = self.hit or self.passed()
        return self.hit


#: Rows of the warm batch whose prediction time is a model's cost per row (see run_fold).
BATCH_ROWS = 1000


@dataclass
class FoldResult:
    """One (model, fold) fit: status, out-of-fold predictions and costs."""

    model: str
    fold: int
    status: str  # ok | timeout | failed | oom | skipped
    error: str | None = None
    pred: np.ndarray | None = None
    fit_seconds: float = float("nan")
    predict_seconds: float = float("nan")
    batch_seconds: float = float("nan")  # a warm prediction of BATCH_ROWS rows (fold 0; see run_fold)
    best_epoch: float = float("nan")
    n_params: float = float("nan")
    history: list = field(default_factory=list)
    device: str = "cpu"
    estimator: object = field(default=None, repr=False)  # the fitted fold model, when the plan keeps them


def run_fold(
    candidate,
    ctx: BuildContext,
    X: pd.DataFrame,
    y: np.ndarray,
    train_idx,
    valid_idx,
    fold: int,
    budget: float | None,
    n_classes: int,
    keep_model: bool = False,
    weights: np.ndarray | None = None,
) -> FoldResult:
    """Fit ``candidate`` on the training rows and predict the validation rows (never raises).

    ``budget`` (seconds, None: no limit) bounds the fit and the prediction together, counted
    from this call; a fold that reaches it keeps what it has learned and is "timeout".
    ``keep_model``: the result holds the fitted model (``estimator``) when its predictions were scored.
    ``weights``: every row's weight (the training rows' are the fit's ``sample_weight``), or None.

    Fold 0 also times a second, warm prediction of :data:`BATCH_ROWS` validation rows (cycled
    when fewer; ``batch_seconds``), also after a fit the budget cut short: the model's
    prediction cost per row in use. The first call's time on about ``len(X) / cv`` rows is
    mostly fixed overhead on a small table (the in-context model's context pass, the
    preprocessing): 2-8x the cost per row of a warm 1,000-row batch on 500-2,000-row tables.
    """
    # OpenMP / BLAS pools too (HistGradientBoosting has no n_jobs): a pool wider than num_threads
    # slows the fits down badly when another process is busy.
    with threadpool_limits(limits=ctx.num_threads):
        return _fit_fold(candidate, ctx, X, y, train_idx, valid_idx, fold, budget, n_classes, keep_model, weights)


_FORESTS = (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor)


def bags_out_of_bag(est) -> bool:
    """Whether ``est`` (or a pipeline's model) is a forest of bootstrap samples, whose out-of-bag
    predictions stand in for k folds' (:func:`run_out_of_bag`).

    >>> bags_out_of_bag(RandomForestClassifier()), bags_out_of_bag(ExtraTreesClassifier())
    (True, False)
    """
    model = model_step(est)
    return isinstance(model, _FORESTS) and bool(model.bootstrap)


def run_out_of_bag(
    candidate, ctx: BuildContext, X, y, folds: list, budget: float | None, n_classes: int,
    keep_model: bool = False, weights: np.ndarray | None = None,
) -> list[FoldResult]:  # fmt: skip
    """A forest of bootstrap samples (:func:`bags_out_of_bag`) fitted once on the rows of every
    fold, as AutoGluon bags its random forest and extra trees: each row's prediction by the
    trees whose bootstrap sample left it out (:class:`OutOfBag`) is its out-of-fold prediction.
    One fit instead of ``len(folds)``, each tree on all the rows, and one model to predict with.

    Returns one :class:`FoldResult` per fold (its validation rows' out-of-bag predictions; the
    fit's and the out-of-bag pass's seconds shared equally; fold 0 with the warm-batch time, as
    :func:`run_fold`), each holding the one model with ``keep_model``. ``budget`` bounds the fit
    (the out-of-bag pass, about a prediction of each tree on a third of the rows, comes after).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from sklearn.model_selection import KFold
    >>> from tabular_suite.compare.candidates import Candidate
    >>> X = pd.DataFrame({"a": np.arange(100.0)})
    >>> y = X["a"].to_numpy() % 10
    >>> forest = Candidate("forest", "baseline", lambda ctx: RandomForestRegressor(50, random_state=0))
    >>> folds = list(KFold(4).split(X))
    >>> ctx = SimpleNamespace(num_threads=1)
    >>> results = run_out_of_bag(forest, ctx, X, y, folds, None, 0, keep_model=True)
    >>> [r.status for r in results], len({id(r.estimator) for r in results}), results[0].pred.shape
    (['ok', 'ok', 'ok', 'ok'], 1, (25,))
    """
    with threadpool_limits(limits=ctx.num_threads):
        return _run_out_of_bag(candidate, ctx, X, y, folds, budget, n_classes, keep_model, weights)


def _run_out_of_bag(candidate, ctx, X, y, folds, budget, n_classes, keep_model, weights) -> list[FoldResult]:
    results = [FoldResult(candidate.name, fold, "ok") for fold in range(len(folds))]

    def every(**values):
        for r in results:
            for k, v in values.items():
                setattr(r, k, v)

    rows = np.sort(np.concatenate([valid for _, valid in folds]))
    try:
        est = candidate.make(ctx)
        X_rows = X.iloc[rows]
        start = time.perf_counter()
        cut_short = fit_within(
            est, X_rows, y[rows], None if budget is None else Deadline(budget),
            sample_weight=None if weights is None else weights[rows],
        )  # fmt: skip
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        view = OutOfBag(est, len(rows), np.arange(len(rows)))
        classification = is_classifier(model_step(est))
        method = "predict_proba" if classification else "predict"
        pred = getattr(view, method)(X_rows)
        every(fit_seconds=fit_seconds / len(folds), predict_seconds=(time.perf_counter() - start) / len(folds))
        if classification:
            pred = _align_proba(pred, est.classes_, np.arange(n_classes))
        batch = X_rows.iloc[np.arange(BATCH_ROWS) % len(X_rows)]
        getattr(est, method)(batch.iloc[:1])  # (the first call's fixed costs are not the cost per row)
        start = time.perf_counter()
        getattr(est, method)(batch)
        results[0].batch_seconds = time.perf_counter() - start
        position = np.full(len(X), -1)
        position[rows] = np.arange(len(rows))
        for r, (_, valid) in zip(results, folds):
            r.pred = pred[position[valid]]
            r.estimator = est if keep_model else None
        if cut_short:
            every(status="timeout", error=f"stopped after {_seconds(budget)} (the model's budget): {cut_short}")
    except MemoryError as exc:
        every(status="oom", error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - one failing model never stops the others
        every(status="failed", error=f"{type(exc).__name__}: {exc}".strip())
        every(history=[{"traceback": traceback.format_exc(limit=5)}])
    return results


class OutOfBag:
    """A forest of bootstrap samples fitted on ``n_rows`` rows (``forest``: the forest or a
    pipeline ending in it), predicting the fitted rows at ``positions`` (in that order), each
    by the trees whose bootstrap sample left it out: the forest's out-of-bag predictions, its
    out-of-fold form when it was fitted once instead of on k folds (:func:`run_out_of_bag`).
    It predicts those rows, or copies of them one after another (as permutation importance
    predicts them with a column shuffled in each copy).
    ``covered``: which rows at least one tree left out; a row in every tree's sample (about a
    share ``0.632 ** trees`` of them, as a bootstrap sample holds about 63.2% of the rows: a
    forest the time limit stopped after a few trees) gets the mean of the trees' root nodes,
    the class shares or mean target of their samples.

    Examples
    --------
    >>> X = pd.DataFrame({"a": np.arange(60.0)})
    >>> forest = RandomForestRegressor(40, random_state=0).fit(X, X["a"])
    >>> view = OutOfBag(forest, 60, np.array([10, 11]))
    >>> bool(view.covered.all()), bool(np.abs(view.predict(X.iloc[[10, 11]]) - [10, 11]).max() < 3)
    (True, True)
    """

    def __init__(self, forest, n_rows: int, positions: np.ndarray):
        self.forest, self.positions = forest, np.asarray(positions)
        self.classes_ = getattr(forest, "classes_", None)
        self._model = model_step(forest)
        self._left_out = []
        for in_bag in self._model.estimators_samples_:  # (regenerated from each tree's seed)
            seen = np.zeros(n_rows, dtype=bool)
            seen[in_bag] = True
            self._left_out.append(~seen[self.positions])
        self.covered = np.logical_or.reduce(self._left_out) if self._left_out else np.zeros(len(positions), bool)
        root = np.mean([np.ravel(tree.tree_.value[0]) for tree in self._model.estimators_], axis=0)
        self._prior = root / root.sum() if is_classifier(self._model) else root

    def _mean(self, X, output, width: int) -> np.ndarray:
        copies, extra = divmod(len(X), len(self.positions))
        if extra or not copies:
            raise ValueError(
                f"OutOfBag predicts the {len(self.positions)} rows it was made for (or copies of them one "
                f"after another), got {len(X)} rows."
            )
        Xt = self.forest[:-1].transform(X) if isinstance(self.forest, Pipeline) else X
        Xt = np.asarray(Xt, dtype=np.float32)
        total, count = np.zeros((len(X), width)), np.zeros(len(X))
        for tree, left_out in zip(self._model.estimators_, self._left_out):
            rows = np.tile(left_out, copies)
            if rows.any():
                total[rows] += np.asarray(output(tree, Xt[rows]), dtype=np.float64).reshape(int(rows.sum()), width)
                count[rows] += 1
        out = total / np.maximum(count, 1)[:, None]
        out[count == 0] = self._prior
        return out

    def predict_proba(self, X) -> np.ndarray:
        """Mean class probabilities (columns: ``classes_``) of the trees that left each row out."""
        return self._mean(X, lambda tree, x: tree.predict_proba(x), len(self._model.classes_))

    def predict(self, X) -> np.ndarray:
        """The most probable class, or the mean value, of the trees that left each row out."""
        if is_classifier(self._model):
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return self._mean(X, lambda tree, x: tree.predict(x), 1)[:, 0]


def _seconds(value: float) -> str:
    return f"{value:.3g} s"


def _fit_fold(candidate, ctx, X, y, train_idx, valid_idx, fold, budget, n_classes, keep_model, weights) -> FoldResult:
    import torch

    deadline = None if budget is None else Deadline(budget)
    result = FoldResult(candidate.name, fold, "ok")
    try:
        est = candidate.make(ctx)
        X_train, X_valid = X.iloc[train_idx], X.iloc[valid_idx]
        start = time.perf_counter()
        sample_weight = None if weights is None else weights[train_idx]
        cut_short = fit_within(
            est, X_train, y[train_idx], deadline, deep=candidate.kind == "deep", sample_weight=sample_weight
        )
        result.fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        method = "predict_proba" if ctx.task == "classification" else "predict"
        with warnings.catch_warnings():  # rows of the user's own table: no news (see DataDriftWarning)
            warnings.simplefilter("ignore", DataDriftWarning)
            pred, unpredicted = _predict_within(est, X_valid, method, deadline)
            result.predict_seconds = time.perf_counter() - start
            if pred is not None and not unpredicted and fold == 0:  # (a fit cut short too: it is kept)
                batch = X_valid.iloc[np.arange(BATCH_ROWS) % len(X_valid)]
                start = time.perf_counter()
                getattr(est, method)(batch)
                result.batch_seconds = time.perf_counter() - start
        if pred is not None:
            if ctx.task == "classification":
                result.pred = _align_proba(pred, est.classes_, np.arange(n_classes))
            else:
                result.pred = np.asarray(pred, dtype=np.float64)
            if keep_model:
                result.estimator = est
        if candidate.kind == "deep":
            result.best_epoch, result.n_params = float(est.best_epoch_), float(est.n_params_)
            result.history = est.history_
            result.device = str(resolve_device(ctx.device))
        if unpredicted:
            result.status = "timeout"
            result.error = (
                f"stopped after {_seconds(budget)} (per-fold budget) with {unpredicted} of "
                f"{len(X_valid)} validation rows unpredicted: not scored"
            )
        elif cut_short:
            result.status, result.error = "timeout", f"stopped after {_seconds(budget)} (per-fold budget): {cut_short}"
    except (torch.OutOfMemoryError, MemoryError) as exc:
        result.status, result.error = "oom", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - one failing model never stops the others
        result.status = "failed"
        result.error = f"{type(exc).__name__}: {exc}".strip()
        result.history = [{"traceback": traceback.format_exc(limit=5)}]
    return result


# ------------------------------------------------------------------------------ bounded fits
def fit_within(est, X, y, deadline: Deadline | None, *, deep: bool = False, sample_weight=None) -> str | None:
    """Fit ``est`` on ``X, y`` so that it stops at ``deadline``; returns what it got to when
    the deadline cut it short (e.g. "57 of 300 trees"), else None.

    ``deep``: ``est`` is trained by the engine (takes ``callbacks``). Other estimators, or a
    :class:`~sklearn.pipeline.Pipeline` ending in one, are bounded by their kind (see the
    module docstring); kinds without a bound (e.g. Ridge, a closed-form solve) are fitted
    as they are. Without a deadline this is ``est.fit(X, y)`` (a GBDT that early-stops on rows
    it holds out: :func:`fit_gbdt`). ``sample_weight`` goes to the model's fit (a pipeline's last step).

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> X, y = np.arange(40.0).reshape(-1, 1), np.arange(40.0)
    >>> forest = RandomForestRegressor(n_estimators=20, random_state=0)
    >>> fit_within(forest, X, y, Deadline(600.0)) is None, len(forest.estimators_)
    (True, 20)
    """
    weighted = {} if sample_weight is None else {"sample_weight": sample_weight}
    if deadline is None and not _holds_out_rows(est):
        if weighted and isinstance(est, Pipeline):
            weighted = {f"{est.steps[-1][0]}__sample_weight": sample_weight}
        est.fit(X, y, **weighted)
        return None
    if deep:  # (with a deadline)
        callbacks = est.get_params()["callbacks"]
        est.set_params(callbacks=[*(callbacks or ()), deadline])
        try:
            est.fit(X, y, **weighted)
        finally:
            est.set_params(callbacks=callbacks)  # the fitted model keeps no reference to the deadline
        epochs = len(est.history_)
        return f"{epochs} epoch{'s' if epochs != 1 else ''}" if deadline.hit else None
    model, Xt = est, X
    if isinstance(est, Pipeline):  # transformers once, then the model in chunks on their output
        model, Xt = est._final_estimator, est[:-1].fit_transform(X, y)
        if model == "passthrough":
            return None
    for kind, fit in _BOUNDED_FITS:
        if _is_instance(model, kind):
            return fit(model, Xt, y, deadline, weighted)
    model.fit(Xt, y, **weighted)
    return None


def _holds_out_rows(est) -> bool:
    """Whether ``est`` (or a pipeline's model) is a GBDT that early-stops on rows its fit holds out."""
    model = est._final_estimator if isinstance(est, Pipeline) else est
    library = gbdt_library(model)
    return library is not None and bool(model.get_params().get(_rounds_params(library)[1]))


def _is_instance(model, kind) -> bool:
    """``kind``: classes, or ``"module.Class"`` of an optional package, checked only when that
    package is imported already (a model of it would have imported it)."""
    if isinstance(kind, str):
        module_name, class_name = kind.rsplit(".", 1)
        cls = getattr(sys.modules.get(module_name), class_name, None)
        return cls is not None and isinstance(model, cls)
    return isinstance(model, kind)


def _grow(step, total: int, first: int, deadline: Deadline, *, doubling: bool = True) -> tuple[int, bool]:
    """Grow a model to ``total`` units (trees, iterations) in chunks that fit in what is left
    of ``deadline``: ``(units grown, whether the deadline stopped it)``.

    ``step(done, target)`` grows the model from ``done`` to ``target`` units and returns True
    when it stopped by itself (early stopping). The first chunk of ``first`` units always
    runs; each later one is what the latest chunk's pace says fits before the deadline and,
    with ``doubling``, at most twice the previous one (so a slowdown of the machine overruns
    by about one chunk); without, it is the rest when that fits (each call has a fixed cost).
    """
    done, size = 0, min(first, total)
    while True:
        target = min(total, done + size)
        started = time.perf_counter()
        finished = step(done, target)
        per_unit = max(time.perf_counter() - started, 1e-9) / (target - done)
        done = target
        if finished or done >= total:
            return done, False
        affordable = int(deadline.left() / per_unit)
        if affordable < 1:
            return done, True
        size = min(2 * size, affordable) if doubling else affordable


def _fit_forest(model, X, y, deadline: Deadline, weighted: dict) -> str | None:
    """A random forest grown with ``warm_start``: the same trees as one fit (the seeds of
    the trees are drawn in the same order)."""
    total = model.n_estimators
    per_chunk = max(1, effective_n_jobs(model.n_jobs))

    def step(done, target):
        model.set_params(n_estimators=target)
        model.fit(X, y, **weighted)
        return False

    model.set_params(warm_start=True)
    grown, hit = 0, False
    try:
        grown, hit = _grow(step, total, per_chunk, deadline)
    finally:
        model.set_params(warm_start=False, n_estimators=grown if hit else total)
    return f"{grown} of {total} trees" if hit else None


def _boosting_stopped(model) -> bool:
    """Whether HistGradientBoosting's early stopping fires after its latest iteration (when
    that is the last of a chunk, n_iter_ does not show it)."""
    try:
        if not model.do_early_stopping_:
            return False
        scores = model.validation_score_ if model._use_validation_data else model.train_score_
        return bool(model._should_stop(list(scores)))
    except AttributeError:  # private helpers of another scikit-learn version: keep growing
        return False


def _fit_hist_boosting(model, X, y, deadline: Deadline, weighted: dict) -> str | None:
    """HistGradientBoosting grown with ``warm_start`` (same bins, split and trees as one fit)."""
    total = model.max_iter

    def step(done, target):
        model.set_params(max_iter=target)
        model.fit(X, y, **weighted)
        return model.n_iter_ < target or _boosting_stopped(model)

    model.set_params(warm_start=True)
    grown, hit = 0, False
    try:
        grown, hit = _grow(step, total, 4, deadline)
    finally:
        model.set_params(warm_start=False, max_iter=grown if hit else total)
    return f"{grown} of {total} boosting iterations" if hit else None


def _fit_logistic(model, X, y, deadline: Deadline, weighted: dict) -> str | None:
    """A probe fit of a few solver iterations times the solver; then, unless the probe has
    converged already, one fit from scratch with ``max_iter`` capped to what is left. A fit
    that converges within its cap is the one fit without a deadline would give (the solver
    takes the same steps whatever ``max_iter``); restarting from the probe would not be."""
    total = model.max_iter
    probe = min(total, 5)
    model.set_params(max_iter=probe)
    try:
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y, **weighted)
        per_iteration = max(time.perf_counter() - started, 1e-9) / probe
        if probe == total or np.max(model.n_iter_) < probe:
            return None
        iterations = min(total, int(deadline.left() / per_iteration))
        if iterations <= probe:
            return f"{probe} of {total} solver iterations"
        model.set_params(max_iter=iterations)
        with warnings.catch_warnings():
            if iterations < total:  # stopped by the deadline, not by max_iter: say so as a timeout
                warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y, **weighted)
        if iterations < total and np.max(model.n_iter_) >= iterations:
            return f"{iterations} of {total} solver iterations"
        return None
    finally:
        model.set_params(max_iter=total)


def gbdt_deadline_callback(library: str, deadline: Deadline):
    """A training callback of ``library`` ("lightgbm", "xgboost" or "catboost") that stops the
    boosting at the first round past ``deadline`` and sets ``deadline.hit`` (LightGBM: unless
    that round is the last anyway). Bounded fits and the tuner's trials use it.

    >>> stop = gbdt_deadline_callback("catboost", Deadline(0.0))  # a deadline already passed
    >>> stop.after_iteration(None)  # False: CatBoost stops
    False
    """
    if library == "lightgbm":
        import lightgbm

        def stop_at_deadline(env):
            if env.iteration + 1 < env.end_iteration and deadline.passed():
                deadline.hit = True
                raise lightgbm.callback.EarlyStopException(env.iteration, env.evaluation_result_list or [])

        return stop_at_deadline
    if library == "xgboost":
        import xgboost

        class StopAtDeadline(xgboost.callback.TrainingCallback):
            def after_iteration(self, booster, epoch, evals_log) -> bool:
                deadline.hit = deadline.hit or deadline.passed()
                return deadline.hit

        return StopAtDeadline()
    if library == "catboost":

        class StopCatBoostAtDeadline:
            def after_iteration(self, info) -> bool:  # False stops training
                deadline.hit = deadline.hit or deadline.passed()
                return not deadline.hit

        return StopCatBoostAtDeadline()
    raise ValueError(f"No deadline callback for {library!r}.")


def early_stopping_patience(n_rows: int, best_round: int = 0) -> int:
    """AutoGluon's early-stopping patience for its LightGBM, XGBoost and CatBoost models
    (``early_stop="adaptive"``, autogluon.core 1.6): at least 300 rounds up to 10,000 training
    rows, ``300 x 10,000 / n_rows`` (at least 20) above, and ``0.3 x best round + 20`` when that is
    longer: a model still improving late waits longer.

    >>> early_stopping_patience(5_000), early_stopping_patience(100_000), early_stopping_patience(100_000, 2_000)
    (300, 30, 620)
    """
    floor = max(20, round(300 * min(1.0, 10_000 / max(n_rows, 1))))
    return max(floor, round(0.3 * best_round + 20))


class _AdaptiveStop:
    """Stops a GBDT by :func:`early_stopping_patience` on its first validation metric."""

    def __init__(self, n_rows: int):
        self.n_rows, self.best, self.best_round = n_rows, None, 0

    def update(self, round_: int, value: float, higher_is_better: bool = False) -> bool:
        """Record round ``round_``'s validation score; True when the patience has run out."""
        if self.best is None or (value > self.best if higher_is_better else value < self.best):
            self.best, self.best_round = value, round_
        return round_ - self.best_round >= early_stopping_patience(self.n_rows, self.best_round)


_XGBOOST_MAXIMISED = ("auc", "aucpr", "map", "ndcg", "pre")  # (as xgboost's EarlyStopping reads its metrics)


def gbdt_patience_callback(library: str, stop: _AdaptiveStop, deadline: Deadline | None = None):
    """A training callback of ``library`` that stops at ``stop``'s patience and leaves the model
    predicting with its best round (LightGBM's and XGBoost's best iteration; CatBoost keeps its
    best rounds by itself with a validation set, ``use_best_model``). CatBoost's validation
    metric must be a loss (its default). LightGBM's also stops at ``deadline`` (as
    :func:`gbdt_deadline_callback`), with its best round too."""
    if library == "lightgbm":
        import lightgbm

        def adaptive_stop(env):
            _, _, value, higher = next(r for r in env.evaluation_result_list if r[0] != "training")[:4]
            last = env.iteration + 1 == env.end_iteration
            if deadline is not None and not last and deadline.passed():
                deadline.hit = True
            if stop.update(env.iteration, value, higher) or last or (deadline is not None and deadline.hit):
                raise lightgbm.callback.EarlyStopException(stop.best_round, env.evaluation_result_list)

        adaptive_stop.order = 30  # (where LightGBM's own early stopping runs)
        return adaptive_stop
    if library == "xgboost":
        import xgboost

        class AdaptiveStop(xgboost.callback.TrainingCallback):
            def after_iteration(self, model, epoch, evals_log) -> bool:
                name, values = list(list(evals_log.values())[-1].items())[-1]
                return stop.update(epoch, float(np.ravel(values[-1])[0]), name.startswith(_XGBOOST_MAXIMISED))

            def after_training(self, model):
                model.set_attr(best_iteration=str(stop.best_round), best_score=str(stop.best))
                return model

        return AdaptiveStop()
    if library == "catboost":

        class AdaptiveStopCatBoost:
            def after_iteration(self, info) -> bool:  # False stops training
                return not stop.update(info.iteration, next(iter(info.metrics["validation"].values()))[-1])

        return AdaptiveStopCatBoost()
    raise ValueError(f"No patience callback for {library!r}.")


_GBDTS = (("lightgbm", "lightgbm.LGBMModel"), ("xgboost", "xgboost.XGBModel"), ("catboost", "catboost.CatBoost"))


def gbdt_library(model) -> str | None:
    """ "lightgbm", "xgboost" or "catboost" for a model of that library, else None."""
    return next((library for library, kind in _GBDTS if _is_instance(model, kind)), None)


def _rounds_params(library: str) -> tuple[str, str]:
    """The names of a library's number of rounds and of its early-stopping patience."""
    if library == "catboost":
        return "iterations", "early_stopping_rounds"
    return "n_estimators", "early_stopping_round" if library == "lightgbm" else "early_stopping_rounds"


def rounds_grown(model) -> int:
    """The rounds a fitted GBDT predicts with: its best round when it stopped early, else all."""
    library = gbdt_library(model)
    if library == "lightgbm":
        return int(model.best_iteration_ or model.booster_.current_iteration())
    if library == "xgboost":
        booster = model.get_booster()
        best = booster.attributes().get("best_iteration")
        return int(best) + 1 if best is not None else booster.num_boosted_rounds()
    return int(model.tree_count_)  # CatBoost keeps its best rounds only (use_best_model)


def fit_gbdt(model, X, y, deadline: Deadline | None = None, weighted: dict | None = None, valid=None) -> str | None:
    """Fit a LightGBM, XGBoost or CatBoost model, stopped at ``deadline`` (when given); returns what
    it got to when the deadline cut it short (e.g. "57 of 10000 boosting rounds"), else None.

    A model with its library's early-stopping patience set (``early_stopping_round`` in LightGBM,
    ``early_stopping_rounds`` in XGBoost and CatBoost: the comparison's candidates) stops that many
    rounds after its loss on ``valid = (X, y, sample_weight or None)`` last improved and predicts
    with its best round; ``"auto"``: :func:`early_stopping_patience` of the rows it trains on.
    Without ``valid``, a tenth of the rows are held out for it (stratified for classifiers,
    seeded by the model's seed), and with fewer than 20 rows it grows ``FALLBACK_ROUNDS`` rounds on
    all of them, its patience unset. ``weighted``: ``{"sample_weight": w}``.

    >>> import lightgbm
    >>> X, y = np.random.default_rng(0).normal(size=(400, 3)), np.arange(400.0) % 7
    >>> model = lightgbm.LGBMRegressor(n_estimators=10_000, early_stopping_round=20, verbose=-1)
    >>> fit_gbdt(model, X, y) is None, rounds_grown(model) < 200  # noise: it stops at once
    (True, True)
    """
    library = gbdt_library(model)
    rounds, patience_name = _rounds_params(library)
    params = model.get_params()
    total = params[rounds] or 100  # (XGBoost: None is its default of 100)
    weights = (weighted or {}).get("sample_weight")
    if params.get(patience_name) and valid is None:
        if len(y) < MIN_ROWS_FOR_VALIDATION:
            model.set_params(**{rounds: min(total, FALLBACK_ROUNDS), patience_name: None})
            total = min(total, FALLBACK_ROUNDS)
        else:
            seed = params.get("random_state", params.get("random_seed")) or 0
            kept, held = holdout_split(y, EARLY_STOP_FRACTION, seed, stratify=is_classifier(model))
            valid = (_take(X, held), np.asarray(y)[held], None if weights is None else weights[held])
            X, y = _take(X, kept), np.asarray(y)[kept]
            weights = None if weights is None else weights[kept]
    weighted = {} if weights is None else {"sample_weight": weights}
    adaptive = _AdaptiveStop(len(y)) if model.get_params()[patience_name] == "auto" else None
    own_deadline = deadline is not None and not (adaptive and library == "lightgbm")  # (else the patience's)
    stops = [gbdt_deadline_callback(library, deadline)] if own_deadline else []
    if adaptive is not None:  # (its callback stops the model)
        stops.append(gbdt_patience_callback(library, adaptive, deadline))
        model.set_params(**{patience_name: None})
    try:
        grown = _fit_gbdt_rounds(library, model, X, y, valid, weighted, stops)
    except BaseException:
        if adaptive is not None:
            model.set_params(**{patience_name: "auto"})
        raise
    if adaptive is not None and library != "catboost":  # (a fitted CatBoost model's params are fixed: None)
        # The fitted model says the patience it stopped with (LightGBM predicts with its params: not "auto").
        model.set_params(**{patience_name: early_stopping_patience(adaptive.n_rows, adaptive.best_round)})
    cut_short = deadline is not None and deadline.hit and grown < total
    return f"{grown} of {total} boosting rounds" if cut_short else None


def _every_class(X, y, valid, weighted: dict) -> tuple:
    """``(X, y, weighted)`` with one row of weight 0 (the first row's features) for each class
    code below the highest (of ``y`` and the validation rows') that ``y`` lacks: XGBoost's
    classifier takes the labels 0 .. n-1, each present, and a fold's training rows can lack a
    rare class. The codes stay the comparison's; the class gets its probability column (near 0).

    >>> X, y, w = _every_class(np.ones((3, 1)), np.array([0, 2, 2]), None, {})
    >>> y.tolist(), w["sample_weight"].tolist()
    ([0, 2, 2, 1], [1.0, 1.0, 1.0, 0.0])
    """
    y = np.asarray(y)
    top = int(max(y.max(), -1 if valid is None else np.max(valid[1])))
    absent = np.setdiff1d(np.arange(top + 1), y).astype(y.dtype)
    if not absent.size:
        return X, y, weighted
    weights = np.asarray(weighted.get("sample_weight", np.ones(len(y))), dtype=np.float64)
    pad = _take(X, np.zeros(len(absent), dtype=int))
    X = pd.concat([X, pad], ignore_index=True) if isinstance(X, pd.DataFrame) else np.concatenate([X, pad])
    return X, np.concatenate([y, absent]), {"sample_weight": np.concatenate([weights, np.zeros(len(absent))])}


def _fit_gbdt_rounds(library, model, X, y, valid, weighted, stops) -> int:
    """One library's fit with ``stops`` as callbacks (after XGBoost's own); returns the rounds grown."""
    if library == "lightgbm":
        rows = {}
        if valid is not None:  # (LightGBM 4.7 names the validation rows eval_X / eval_y; eval_set is deprecated there)
            new_names = "eval_X" in inspect.signature(model.fit).parameters
            rows = {"eval_X": (valid[0],), "eval_y": (valid[1],)} if new_names else {"eval_set": [valid[:2]]}
            rows.update({} if valid[2] is None else {"eval_sample_weight": [valid[2]]})
        model.fit(X, y, callbacks=stops, **rows, **weighted)
        # (LightGBM also stops by itself when no split gains anything: that is not a timeout.)
        grown = model.booster_.current_iteration()
    elif library == "xgboost":
        if is_classifier(model):
            X, y, weighted = _every_class(X, y, valid, weighted)
        rows = {} if valid is None else {"eval_set": [valid[:2]], "verbose": False}
        rows.update({} if valid is None or valid[2] is None else {"sample_weight_eval_set": [valid[2]]})
        callbacks = model.get_params()["callbacks"]
        model.set_params(callbacks=[*(callbacks or ()), *stops] or None)
        try:
            model.fit(X, y, **rows, **weighted)
        finally:
            model.set_params(callbacks=callbacks)
        grown = model.get_booster().num_boosted_rounds()
    else:
        eval_set = None
        if valid is not None:
            from catboost import Pool

            cats = model.get_params().get("cat_features")
            eval_set = valid[:2] if valid[2] is None else Pool(*valid[:2], weight=valid[2], cat_features=cats)
        model.fit(X, y, eval_set=eval_set, callbacks=stops or None, **weighted)
        grown = model.tree_count_
    return grown


def _take(X, rows: np.ndarray):
    """Rows of an array or a DataFrame, by position."""
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]


#: (model classes, or "module.Class" of an optional package) -> its bounded fit.
_BOUNDED_FITS = (
    ((RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor), _fit_forest),
    ((HistGradientBoostingClassifier, HistGradientBoostingRegressor), _fit_hist_boosting),
    (LogisticRegression, _fit_logistic),
    *((kind, fit_gbdt) for _, kind in _GBDTS),
)


def _predict_within(est, X: pd.DataFrame, method: str, deadline: Deadline | None) -> tuple[np.ndarray | None, int]:
    """``est.<method>(X)``, and the number of rows left unpredicted at the deadline (then the
    predictions are None). Only the in-context model, whose prediction is its real cost,
    predicts in chunks against the deadline: chunks of whole ``batch_rows`` blocks, which it
    predicts one by one anyway, so the predictions are the same as in one call. Its smallest
    unit of work is one chunk: the context's forward pass and ``batch_rows`` rows."""
    from ..incontext import TabPFNClassifier, TabPFNRegressor

    if deadline is None or not isinstance(est, (TabPFNClassifier, TabPFNRegressor)) or len(X) == 0:
        return getattr(est, method)(X), 0
    if deadline.passed():
        return None, len(X)
    block = est.batch_rows
    n_blocks = -(-len(X) // block)
    parts = []

    def step(done, target):
        parts.append(getattr(est, method)(X.iloc[done * block : target * block]))
        return False

    predicted, hit = _grow(step, n_blocks, 1, deadline, doubling=False)  # each call recomputes the context
    if hit:
        return None, len(X) - predicted * block
    return np.concatenate(parts), 0


# ------------------------------------------------------------------------------ budgets
def fold_budget(
    *,
    started: float,
    time_limit: float | None,
    model_started: float,
    model_time_limit: float | None,
    folds_left: int,
    reserved: float = 0.0,
) -> tuple[float | None, str | None]:
    """Seconds the next fold of a model may take (None: no limit), or the reason to skip it.

    A fold gets an equal share of what is left of its model's budget (``model_time_limit``
    since ``model_started``) over the ``folds_left`` folds still to run, and never more than
    what is left of the comparison's ``time_limit`` since ``started``, less the ``reserved``
    seconds of it kept for after the folds (the refit).

    Examples
    --------
    >>> now = time.perf_counter()
    >>> budget, reason = fold_budget(started=now, time_limit=None, model_started=now, model_time_limit=100.0,
    ...                              folds_left=4)
    >>> round(budget), reason
    (25, None)
    >>> budget, reason = fold_budget(started=now, time_limit=60.0, model_started=now, model_time_limit=None,
    ...                              folds_left=4, reserved=20.0)
    >>> round(budget), reason
    (40, None)
    """
    now = time.perf_counter()
    if time_limit is not None and now - started > time_limit - reserved:
        return None, f"{total_limit_reached(time_limit, reserved)} before this fold"
    if model_time_limit is not None and now - model_started > model_time_limit:
        return None, f"model time limit of {model_time_limit:.0f} s reached before this fold"
    budget = None
    if model_time_limit is not None:
        budget = (model_time_limit - (now - model_started)) / folds_left
    if time_limit is not None:
        remaining_total = time_limit - reserved - (now - started)
        budget = remaining_total if budget is None else min(budget, remaining_total)
    return budget, None


def total_limit_reached(time_limit: float, reserved: float) -> str:
    """Why a fold did not run or was cancelled: the folds' share of ``time_limit`` is used up."""
    kept = f" ({reserved:.0f} s of it kept for stacking or the refit)" if reserved else ""
    return f"total time limit of {time_limit:.0f} s{kept} reached"


@dataclass
class FoldPlan:
    """What a fold backend runs (the local one and Ray's take the same plan): every candidate on
    every fold of ``df``/``target`` within the budgets (``started`` is the comparison's
    ``perf_counter`` start, ``reserved`` the seconds kept for stacking or the refit: the local
    backend reads it at each model and fold, so ``on_model_done`` may change it), calling
    ``on_model_done(name, results)`` as each candidate's folds are all done."""

    candidates: list
    ctx: BuildContext
    df: pd.DataFrame
    target: np.ndarray
    folds: list
    n_classes: int
    model_time_limit: float | None
    time_limit: float | None
    started: float
    reserved: float = 0.0
    on_model_done: Callable | None = None
    keep_models: bool = False  # the fold results hold their fitted models (k-fold bagging)
    weights: np.ndarray | None = None  # every row's training weight (sample_weight x class_weight)
    # on_fold(name, fold, result): before a fold starts (result None; local backend) and when it ends.
    on_fold: Callable | None = None
    # {name: weight} in run order: each model's time is weight / (remaining weights) of the time left
    # (local backend, time_limit without model_time_limit); None: the candidates' order, model_time_limit.
    shares: dict | None = None
    # A tabular_suite.compare.tuning.Tuner: each model it applies to is tuned in the first fold (out
    # of the model's own time) before its folds run (local backend).
    tuner: object | None = None


def _tuned(plan: FoldPlan, cand, model_start: float, model_time_limit: float | None):
    """``cand`` with the parameters ``plan.tuner`` chose in the first fold's training rows, within the
    model's time."""

    def time_left() -> float | None:
        budget, reason = fold_budget(
            started=plan.started, time_limit=plan.time_limit, model_started=model_start,
            model_time_limit=model_time_limit, folds_left=1, reserved=plan.reserved,
        )  # fmt: skip
        return 0.0 if reason else budget

    # The hold-out: a fifth of the first fold's training rows (its validation rows stay unseen, so
    # its out-of-fold predictions are as honest as any fold's).
    rows = np.random.default_rng(plan.ctx.seed).permutation(plan.folds[0][0])
    cut = max(1, len(rows) // 5)
    hold_out = (np.sort(rows[cut:]), np.sort(rows[:cut]))
    with threadpool_limits(limits=plan.ctx.num_threads):
        return plan.tuner.tune(
            cand, plan.ctx, plan.df, plan.target, hold_out, len(plan.folds), plan.n_classes, plan.weights, time_left,
        )  # fmt: skip


#: A deep model whose first fold the time limit stops before this many epochs skips its other
#: folds (what they would take goes to the models after it): a model so short of training
#: scores far below the others and is left out of the ensemble anyway.
MIN_EPOCHS = 5


def _cut_too_short(cand, result: FoldResult) -> str | None:
    """Why a model's other folds are skipped after its first ``result`` (None: they run): a deep
    model stopped before :data:`MIN_EPOCHS` epochs, or a fold stopped before its predictions
    were scored (the in-context model on too many validation rows); the other folds get as much
    time and would not do better."""
    if result.status != "timeout":
        return None
    if cand.kind == "deep" and len(result.history) < MIN_EPOCHS:
        return f"fewer than {MIN_EPOCHS} epochs"
    return "its first fold not scored in its time" if result.pred is None else None


def _out_of_bag(cand, ctx: BuildContext, weights: np.ndarray | None) -> bool:
    """Whether ``cand`` is bagged by its out-of-bag predictions (:func:`run_out_of_bag`): a forest
    of bootstrap samples on rows of equal weight. With row weights (``sample_weight``,
    ``class_weight``) scikit-learn (1.9) draws each bootstrap sample in proportion to them, so
    that a heavy row is left out by few trees or none (with "balanced" weights, most rows of a
    5% class by none of 300): its k fold models then."""
    unweighted = weights is None or bool(np.all(weights == weights[0]))
    return unweighted and cand.kind != "deep" and bags_out_of_bag(cand.make(ctx))


def run_folds_locally(plan: FoldPlan):
    """Run every (candidate, fold) of ``plan`` in turn in this process: ``{name: [FoldResult per fold]}``.
    A forest of bootstrap samples is fitted once instead, when the plan keeps the fold models
    (k-fold bagging): its out-of-bag predictions stand in for the folds' (:func:`run_out_of_bag`)."""
    candidates, started, time_limit = plan.candidates, plan.started, plan.time_limit
    out = {}
    if plan.shares is not None:
        by_name = {c.name: c for c in candidates}
        candidates = [by_name[name] for name in plan.shares]
    for i, cand in enumerate(candidates):
        model_start, model_time_limit = time.perf_counter(), plan.model_time_limit
        if plan.shares is not None:  # this model's share of the time left
            left = time_limit - plan.reserved - (model_start - started)
            weights = [plan.shares[c.name] for c in candidates[i:]]
            model_time_limit = max(0.0, left) * weights[0] / sum(weights)
        if plan.tuner is not None and plan.tuner.applies(cand):
            cand = _tuned(plan, cand, model_start, model_time_limit)
        if len(plan.folds) > 1 and plan.keep_models and _out_of_bag(cand, plan.ctx, plan.weights):
            out[cand.name] = _run_out_of_bag_locally(plan, cand, model_start, model_time_limit)
        else:
            out[cand.name] = _run_model_folds(plan, cand, model_start, model_time_limit)
        if plan.on_model_done is not None:
            plan.on_model_done(cand.name, out[cand.name])
    return out


def _budget(plan: FoldPlan, model_start: float, model_time_limit: float | None, folds_left: int):
    return fold_budget(
        started=plan.started, time_limit=plan.time_limit, model_started=model_start,
        model_time_limit=model_time_limit, folds_left=folds_left, reserved=plan.reserved,
    )  # fmt: skip


def _run_model_folds(plan: FoldPlan, cand, model_start: float, model_time_limit: float | None) -> list:
    folds, results = plan.folds, []
    for fold, (train_idx, valid_idx) in enumerate(folds):
        budget, reason = _budget(plan, model_start, model_time_limit, len(folds) - fold)
        if reason:
            results.append(FoldResult(cand.name, fold, "skipped", reason))
            continue
        if plan.on_fold is not None:
            plan.on_fold(cand.name, fold, None)
        results.append(
            run_fold(
                cand,
                plan.ctx,
                plan.df,
                plan.target,
                train_idx,
                valid_idx,
                fold,
                budget,
                plan.n_classes,
                plan.keep_models,
                plan.weights,
            )  # fmt: skip
        )
        if plan.on_fold is not None:
            plan.on_fold(cand.name, fold, results[-1])
        why = _cut_too_short(cand, results[0]) if len(results) == 1 and len(folds) > 1 else None
        if why:
            reason = f"its other folds skipped ({why}: give a longer time_limit)"
            results[0].error = "; ".join(filter(None, (results[0].error, reason)))
            results += [FoldResult(cand.name, f, "skipped", reason) for f in range(1, len(folds))]
            break
    return results


def _run_out_of_bag_locally(plan: FoldPlan, cand, model_start: float, model_time_limit: float | None) -> list:
    budget, reason = _budget(plan, model_start, model_time_limit, 1)
    if reason:
        return [FoldResult(cand.name, fold, "skipped", reason) for fold in range(len(plan.folds))]
    if plan.on_fold is not None:
        plan.on_fold(cand.name, 0, None)
    results = run_out_of_bag(
        cand, plan.ctx, plan.df, plan.target, plan.folds, budget, plan.n_classes, True, plan.weights
    )
    for result in results if plan.on_fold is not None else ():  # each fold's start, then its end
        if result.fold:
            plan.on_fold(cand.name, result.fold, None)
        plan.on_fold(cand.name, result.fold, result)
    return results
