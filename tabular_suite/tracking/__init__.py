"""MLflow tracking: ``autolog()``, the ``tracking=`` estimator argument and the CLI's ``--track``.

A tracked fit logs the estimator's parameters, system info (device, threads, versions) as
tags, every epoch's metrics with their step, the final metrics, and the fitted model as an
MLflow pyfunc model (our model file as an artifact, with signature and input example).

The store is ``tracking_uri`` if given, else ``MLFLOW_TRACKING_URI``, else a URI set with
``mlflow.set_tracking_uri``, else ``sqlite:///mlflow.db``. If the store cannot be reached,
training still finishes and one warning says why nothing was logged; :func:`failures` lists
such failures (the CLI ends with an error when one happened). Processes that start on a new
SQLite store together take turns creating it (a file lock), and a busy SQLite store is retried.
A comparison logs each model's nested run as soon as the model finishes
(:class:`ComparisonRun`); an interrupted fit or comparison ends its open runs as KILLED.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import tempfile
import threading
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..training import distributed
from ..training.callbacks import Callback

__all__ = [
    "autolog",
    "autolog_settings",
    "resolve_tracking_uri",
    "tracking_enabled",
    "tracking_enabled_for",
    "tracked_fit",
    "log_model",
    "log_test_metrics",
    "ComparisonRun",
    "failures",
]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


@dataclass
class _Settings:
    enabled: bool = False
    log_models: bool = True
    tracking_uri: str | None = None
    experiment_name: str | None = None


_SETTINGS = _Settings()


def autolog(
    disable: bool = False,
    *,
    log_models: bool = True,
    tracking_uri: str | None = None,
    experiment_name: str | None = None,
) -> None:
    """Track every following ``fit`` of a tabular_suite estimator in MLflow.

    Estimators with ``tracking=False`` are left out; ``tracking=True`` tracks one estimator
    without autolog.

    Examples
    --------
    >>> import tabular_suite.tracking as tracking
    >>> tracking.autolog(tracking_uri="sqlite:///mlflow.db", experiment_name="demo")
    >>> tracking.autolog_settings().enabled
    True
    >>> tracking.autolog(disable=True)
    """
    _SETTINGS.enabled = not disable
    _SETTINGS.log_models = log_models
    _SETTINGS.tracking_uri = tracking_uri
    _SETTINGS.experiment_name = experiment_name


def autolog_settings() -> _Settings:
    """The current :func:`autolog` settings (a copy)."""
    return _Settings(**vars(_SETTINGS))


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """The store a tracked fit writes to (see the module docstring for the order).

    Examples
    --------
    >>> import os
    >>> os.environ.pop("MLFLOW_TRACKING_URI", None) and None
    >>> resolve_tracking_uri()
    'sqlite:///mlflow.db'
    """
    if tracking_uri:
        return tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    try:
        from mlflow.tracking._tracking_service.utils import get_tracking_uri, is_tracking_uri_set

        if is_tracking_uri_set():
            return get_tracking_uri()
    except ImportError:  # older MLflow
        pass
    return DEFAULT_TRACKING_URI


def portable_settings() -> dict:
    """The :func:`autolog` settings as keyword arguments for another process (a Ray worker,
    whose working folder differs): the store resolved here, a local one as an absolute path.

    >>> import os
    >>> autolog(tracking_uri="sqlite:///runs/mlflow.db", experiment_name="demo")
    >>> portable_settings()["tracking_uri"] == f"sqlite:///{os.path.abspath('runs/mlflow.db')}"
    True
    >>> autolog(disable=True)
    """
    from urllib.parse import urlparse

    uri = resolve_tracking_uri(_SETTINGS.tracking_uri)
    path = _sqlite_path(uri)
    if path is not None:
        uri = f"sqlite:///{path.absolute()}"
    elif not urlparse(uri).scheme:  # a plain folder: MLflow's file store
        uri = str(Path(uri).absolute())
    settings = autolog_settings()
    experiment = settings.experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    return {"disable": not settings.enabled, "log_models": settings.log_models, "tracking_uri": uri,
            "experiment_name": experiment}  # fmt: skip


def _ray_worker_setup():
    """What a Ray worker of :func:`~tabular_suite.training.distributed.fit_on_ray` runs first:
    :func:`autolog` with this process's settings."""
    import functools

    return functools.partial(autolog, **portable_settings())


distributed.WORKER_SETUP.append(_ray_worker_setup)

_FAILURES: list[str] = []


def failures() -> list[str]:
    """Messages of the tracking failures in this process so far (each also warned once)."""
    return list(_FAILURES)


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


@contextlib.contextmanager
def _store_lock(uri: str):
    """For a SQLite store, an exclusive lock on ``<db>.lock`` (creating, migrating the schema and
    creating an experiment are not safe to run in two processes at once); a no-op otherwise."""
    path = _sqlite_path(uri)
    if path is None:
        yield
        return
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _check_reachable(uri: str) -> None:
    """Fail fast for HTTP stores (MLflow's own client retries for minutes)."""
    if uri.startswith(("http://", "https://")):
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=3) as response:
            if response.status != 200:
                raise ConnectionError(f"{uri} answered {response.status}")


def _system_tags(estimator, num_threads: int) -> dict:
    import sklearn
    import torch

    from .._version import __version__
    from ..training.device import resolve_device

    return {
        "tabular_suite.version": __version__,
        "tabular_suite.estimator": type(estimator).__name__,
        "system.device": str(resolve_device(estimator.device)),
        "system.num_threads": str(num_threads),
        "system.python": platform.python_version(),
        "system.platform": platform.platform(),
        "system.torch": torch.__version__,
        "system.sklearn": sklearn.__version__,
        "system.cuda": str(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else "none",
    }


def _metric_name(key: str) -> str:
    """MLflow metric names allow no '@': HR@10 -> HR_at_10."""
    return key.replace("@", "_at_")


class TrackingCallback(Callback):
    """Logs each epoch's metrics (with ``step=epoch``) to an MLflow run."""

    def __init__(self, tracker: _Tracker):
        self.tracker = tracker

    def on_epoch_end(self, state, logs: dict) -> None:
        metrics = {_metric_name(k): float(v) for k, v in logs.items() if k != "epoch"}
        self.tracker.call("log_metrics", metrics, step=int(logs["epoch"]))


class _Tracker:
    """Wraps MLflow calls so a failing store degrades to one warning, never a failed fit."""

    def __init__(self, uri: str):
        self.uri = uri
        self.failed = False

    def warn(self, exc: Exception) -> None:
        if not self.failed:
            _FAILURES.append(f"MLflow tracking to {self.uri} failed ({type(exc).__name__}: {exc})")
            warnings.warn(
                f"MLflow tracking to {self.uri} failed ({type(exc).__name__}: {exc}); "
                "training continues without tracking.",
                RuntimeWarning,
                stacklevel=4,
            )
        self.failed = True

    def call(self, name: str, *args, **kwargs):
        if self.failed:
            return None
        import mlflow

        return self.retrying(lambda: getattr(mlflow, name)(*args, **kwargs))

    def retrying(self, fn, attempts: int = 6):
        """``fn()``, retried while a SQLite store is busy (another process writing); other errors warn.
        Each call is written whole: an interrupt waits for its end (:func:`_interrupts_deferred`)."""
        for attempt in range(attempts):
            try:
                with _interrupts_deferred():
                    return fn()
            except Exception as exc:  # noqa: BLE001 - any store error must not stop training
                if "database is locked" in str(exc) and attempt < attempts - 1:
                    time.sleep(0.1 * 2**attempt)
                    continue
                self.warn(exc)
                return None


def _connect(uri: str) -> _Tracker:
    """A tracker for ``uri``, already marked failed (with its one warning) if the store is unreachable."""
    tracker = _Tracker(uri)
    try:
        _check_reachable(uri)
        from mlflow.tracking import MlflowClient

        with _store_lock(uri):  # the first process creates and migrates a new store, the others wait
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001
        tracker.warn(exc)
    return tracker


@contextlib.contextmanager
def _interrupts_deferred():
    """Deliver a SIGINT or SIGTERM that arrives in the block after it (main thread only;
    elsewhere the block runs as it is): what the block writes to the store is written whole.
    Interrupted inside a database call, MLflow's store leaves a half-logged run and its driver
    prints a traceback of its own.

    >>> import signal
    >>> try:
    ...     with _interrupts_deferred():
    ...         signal.raise_signal(signal.SIGINT)
    ...         print("the block ends")
    ... except KeyboardInterrupt:
    ...     print("then the interrupt")
    the block ends
    then the interrupt
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught, previous = [], {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


@contextlib.contextmanager
def _use_tracking_uri(uri: str):
    """Point MLflow's fluent API at ``uri`` for the block, then restore the caller's setting.

    ``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into the environment, so
    both the module-level URI and the environment variable are restored.
    """
    import mlflow
    from mlflow.tracking._tracking_service import utils

    old_uri, old_env = getattr(utils, "_tracking_uri", None), os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(old_uri)  # None unsets the environment variable
        if old_env is not None:
            os.environ["MLFLOW_TRACKING_URI"] = old_env


def _experiment_id(tracker: _Tracker, name: str | None, uri: str) -> str | None:
    if not name or tracker.failed:
        return None
    from mlflow.tracking import MlflowClient

    def get_or_create():
        client = MlflowClient(tracking_uri=uri)
        with _store_lock(uri):  # two processes must not both create the experiment
            experiment = client.get_experiment_by_name(name)
            return experiment.experiment_id if experiment else client.create_experiment(name)

    return tracker.retrying(get_or_create)


def tracking_enabled(estimator) -> bool:
    """Whether ``estimator.fit`` should be tracked (its ``tracking`` argument, else autolog)."""
    return tracking_enabled_for(getattr(estimator, "tracking", None))


def tracking_enabled_for(choice: bool | None) -> bool:
    """An explicit True/False wins; None follows :func:`autolog`. In data-parallel training
    only rank 0 logs (one run, as in one process)."""
    from ..core.ranks import is_main_process

    return (_SETTINGS.enabled if choice is None else bool(choice)) and is_main_process()


class ComparisonRun:
    """A :func:`~tabular_suite.compare` in MLflow, logged as it goes: a parent run opened with the
    settings, one nested run per model as soon as the model's folds finish (:meth:`log_model`),
    and the results at the end (:meth:`finish`). :meth:`end` closes the parent early (KILLED
    when the comparison is interrupted, FAILED on an error): what finished stays logged.

    Child runs hold the model's hyperparameters (params), status (and error), the metric per
    fold (``step`` = fold), mean/std, costs, and each fold's per-epoch history
    (``fold<k>_<name>``, ``step`` = epoch). The parent holds the settings, the best score,
    ``leaderboard.csv``, the HTML report and the best model file. Uses MLflow's client API
    (no process-wide active run). A store that fails degrades to one warning (:func:`failures`).
    """

    def __init__(
        self,
        settings: dict,
        *,
        experiment: str | None = None,
        tracking_uri: str | None = None,
        registered_model_name: str | None = None,
    ):
        self.tracker = _connect(resolve_tracking_uri(tracking_uri or _SETTINGS.tracking_uri))
        self.run_id, self.child_ids, self._open = None, {}, False
        self.registered_model_name, self._sample = registered_model_name, None
        if self.tracker.failed:
            return
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=self.tracker.uri)
        self.experiment_id = _experiment_id(self.tracker, experiment or _SETTINGS.experiment_name, self.tracker.uri)
        self.experiment_id = self.experiment_id or "0"
        created = []  # (an interrupt waits for the store call, then is raised: the run exists by then)
        try:
            start = lambda: created.append(self.client.create_run(self.experiment_id, run_name="compare"))  # noqa: E731
            self.tracker.retrying(start)
            if not created:
                return
            self.run_id, self._open = created[0].info.run_id, True
            self._log(self.run_id, params=settings)
        except BaseException as exc:  # never a run left RUNNING by a start that did not return
            if created:
                self.run_id, self._open = created[0].info.run_id, True
            self.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise

    def _log(self, run_id: str, metrics=(), params=None, tags=None) -> None:
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        entities = [Metric(_metric_name(k), float(v), now, step) for k, v, step in metrics]
        params = [Param(str(k), str(v)[:6000]) for k, v in (params or {}).items()]
        tags = [RunTag(str(k), str(v)[:5000]) for k, v in (tags or {}).items()]
        for start in range(0, max(len(entities), 1), 1000):
            batch = entities[start : start + 1000]
            first = start == 0
            self.tracker.retrying(
                lambda batch=batch, first=first: self.client.log_batch(
                    run_id, metrics=batch, params=params if first else [], tags=tags if first else []
                )
            )

    def log_dataset(self, df: pd.DataFrame, target, target_name: str = "target") -> None:
        """The training table (features and target) as the parent run's MLflow dataset input
        (context "training": its schema, row count and digest; the rows are not uploaded)."""
        if not self._open or self.tracker.failed:
            return
        import mlflow.data
        import numpy as np
        from mlflow.entities import DatasetInput, InputTag

        self._sample = df.head(5)  # the logged model's signature and input example
        name = target_name if target_name not in df.columns else f"{target_name}_"
        try:
            dataset = mlflow.data.from_pandas(df.assign(**{name: np.asarray(target)}), targets=name, name="training")
        except Exception as exc:  # noqa: BLE001 - a table MLflow cannot describe must not stop the comparison
            warnings.warn(
                f"MLflow could not describe the training table ({exc}); its dataset input is not logged.", stacklevel=3
            )
            return
        entity = DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", "training")])
        self.tracker.retrying(lambda: self.client.log_inputs(self.run_id, datasets=[entity]))

    def log_model(self, row: dict, fold_scores: list, histories: list, params: dict, kind: str) -> str | None:
        """One finished model (a leaderboard row) as a nested run, written whole (an interrupt
        waits for its end: :func:`_interrupts_deferred`); returns its run id."""
        if not self._open or self.tracker.failed:
            return None
        with _interrupts_deferred():
            return self._log_model(row, fold_scores, histories, params, kind)

    def _log_model(self, row: dict, fold_scores: list, histories: list, params: dict, kind: str) -> str | None:
        name = row["model"]
        child = self.tracker.retrying(
            lambda: self.client.create_run(self.experiment_id, run_name=name, tags={"mlflow.parentRunId": self.run_id})
        )
        if child is None:
            return None
        metric = row["metric"]
        sign = 1 if row["direction"] == "higher is better" else -1
        numbers = {metric: sign * row["score"], f"{metric}_mean": row["mean"], f"{metric}_std": row["std"]}
        numbers.update(
            {k: row.get(k) for k in ("fit_seconds", "predict_seconds", "predict_rows_per_s", "best_epoch", "n_params")}
        )
        batch = [(k, v, 0) for k, v in numbers.items() if v is not None and pd.notna(v)]
        batch += [(f"fold_{metric}", v, fold) for fold, v in enumerate(fold_scores)]
        for fold, history in enumerate(histories):
            batch += [
                (f"fold{fold}_{k}", v, int(epoch.get("epoch", 0)))
                for epoch in history
                for k, v in epoch.items()
                if k != "epoch" and isinstance(v, (int, float))
            ]
        tags = {"model": name, "status": row["status"], "kind": kind}
        if row.get("error"):
            tags["error"] = row["error"]
        self._log(child.info.run_id, batch, params, tags)
        self.tracker.retrying(lambda: self.client.set_terminated(child.info.run_id, "FINISHED"))
        self.child_ids[name] = child.info.run_id
        return child.info.run_id

    def finish(self, result, kinds: dict) -> str | None:
        """Log the results (ensemble run, best score, leaderboard, report, best model), close
        the parent run and fill ``mlflow_run_id`` in ``result``; returns the parent run id.
        ``kinds``: model name -> "deep" or "baseline" (the candidates')."""
        if not self._open:
            return None
        board = result.leaderboard
        for _, row in board.iterrows():
            if row["model"] not in self.child_ids:  # the ensemble, known only at the end (or a model never run)
                kind = kinds.get(row["model"], "ensemble")
                self.log_model(row.to_dict(), result.fold_scores.get(row["model"], []), [], {}, kind)
        board["mlflow_run_id"] = [self.child_ids.get(m) for m in board["model"]]
        best, metric = board.iloc[0], result.metric.name
        numbers = [("wall_seconds", result.wall_seconds, 0)]
        if pd.notna(best["score"]):
            numbers.append((f"best_{metric}", result.metric.signed(best["score"]), 0))
        self._log(self.run_id, numbers, tags={"best_model": best["model"], "metric": metric})
        with tempfile.TemporaryDirectory() as tmp:
            board.to_csv(Path(tmp) / "leaderboard.csv", index=False)
            result.report(Path(tmp) / "report.html")
            files = [Path(tmp) / "leaderboard.csv", Path(tmp) / "report.html"]
            for f in files:
                self.tracker.retrying(lambda f=f: self.client.log_artifact(self.run_id, str(f)))
        if result.best_model_ is not None and self._sample is not None:
            import mlflow

            # The predictor as an MLflow model of the parent run ("best_model"), registered when asked.
            # It may hold scikit-learn/GBDT members stored with pickle, as MLflow's own scikit-learn
            # flavour does: loading the MLflow model trusts them (model_config "trusted").
            info = None
            try:
                with _use_tracking_uri(self.tracker.uri), mlflow.start_run(run_id=self.run_id, nested=True):
                    info = log_model(
                        result.best_model_, self._sample, self.tracker, name="best_model", trusted=True,
                        registered_model_name=self.registered_model_name,
                    )  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - a store failing now must not lose the comparison
                self.tracker.warn(exc)
            result.mlflow_model_uri = None if info is None else info.model_uri
            if info is not None and self.registered_model_name:
                result.registered_model_version = getattr(info, "registered_model_version", None)
        self.end("FINISHED")
        result.mlflow_run_id = self.run_id
        return self.run_id

    def end(self, status: str) -> None:
        """Close the parent run with ``status`` (FINISHED, KILLED or FAILED) if it is open."""
        if self._open:
            self._open = False
            self.tracker.retrying(lambda: self.client.set_terminated(self.run_id, status))


def log_recommender(
    recommender, evaluations: list[dict] = (), *, experiment: str | None = None, tracking_uri: str | None = None
) -> str | None:
    """Log a fitted :class:`~tabular_suite.SASRecRecommender` as one MLflow run.

    Parameters, per-epoch history (``step`` = epoch), best epoch, each evaluation's metrics
    (named ``<protocol>_HR_at_10`` etc., the protocol's description as a tag) and the model
    file as an artifact. Returns the run id (None if the store failed).

    Examples
    --------
    .. code-block:: python

        rec = SASRecRecommender().fit(train)
        tracking.log_recommender(rec, [rec.evaluate(test, protocol="full")])
    """
    tracker = _connect(resolve_tracking_uri(tracking_uri or _SETTINGS.tracking_uri))
    if tracker.failed:
        return None
    uri = tracker.uri
    import mlflow

    with _use_tracking_uri(uri):
        experiment_id = _experiment_id(tracker, experiment or _SETTINGS.experiment_name, uri)
        before, status = mlflow.active_run(), "FAILED"
        try:
            run = tracker.call("start_run", run_name=type(recommender).__name__, experiment_id=experiment_id)
            if run is None:
                return None
            tracker.call(
                "log_params",
                {
                    k: v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)
                    for k, v in recommender.get_params(deep=False).items()
                },
            )
            tracker.call(
                "set_tags",
                {
                    "estimator": type(recommender).__name__,
                    "users": len(recommender.users_),
                    "items": len(recommender.items_),
                },
            )
            batch = [(k, float(v), int(h["epoch"])) for h in recommender.history_ for k, v in h.items() if k != "epoch"]
            batch += [("best_epoch", float(recommender.best_epoch_), 0), ("n_params", float(recommender.n_params_), 0)]
            for result in evaluations:
                name = "full" if result["protocol"].startswith("full") else "sampled"
                tracker.call("set_tag", f"protocol_{name}", result["protocol"])
                batch += [(f"{name}_{k}", float(v), 0) for k, v in result.items() if k.startswith(("HR@", "NDCG@"))]
            _log_batch(tracker, run.info.run_id, batch)
            with tempfile.TemporaryDirectory() as tmp:
                recommender.save(Path(tmp) / "model.tsm")
                tracker.call("log_artifact", str(Path(tmp) / "model.tsm"))
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            if before is None:  # the run this call started (even after a failed call)
                _end_active_run(tracker, status)
    return run.info.run_id


@contextlib.contextmanager
def tracked_fit(estimator, X_sample, num_threads: int):
    """Context for one tracked ``fit``: yields the epoch callback, then logs results and model.

    Logs into the active MLflow run if there is one, else into a new run that ends with the
    fit. The estimator must be fitted when the block exits normally.
    """
    tracker = _connect(resolve_tracking_uri(_SETTINGS.tracking_uri))
    if tracker.failed:
        yield None
        return
    import mlflow

    uri = tracker.uri

    with _use_tracking_uri(uri):
        own_run = mlflow.active_run() is None
        started = time.perf_counter()
        status = "FAILED"
        try:
            if own_run:
                # The experiment is passed explicitly: mlflow.set_experiment would leave a global
                # experiment id behind that is invalid for other stores.
                experiment_id = _experiment_id(tracker, _SETTINGS.experiment_name, uri)
                run = tracker.call("start_run", run_name=type(estimator).__name__, experiment_id=experiment_id)
            else:
                run = mlflow.active_run()
            if run is not None:
                params = {
                    k: v if isinstance(v, (int, float, str, bool, type(None))) else repr(v)
                    for k, v in estimator.get_params(deep=False).items()
                }
                tracker.call("log_params", params)
                tracker.call("set_tags", _system_tags(estimator, num_threads))
            yield TrackingCallback(tracker) if run is not None else None
            if run is not None:
                _log_results(tracker, estimator, X_sample, time.perf_counter() - started)
                estimator.mlflow_run_id_ = run.info.run_id
            status = "FINISHED"
        except KeyboardInterrupt:  # (also while the run starts or the model is logged)
            status = "KILLED"
            raise
        finally:
            # The run this fit started, ended even after a failed store call or an interrupt
            # that came as it started: a run left RUNNING would take the next fit's logs.
            if own_run:
                _end_active_run(tracker, status)


def _end_active_run(tracker: _Tracker, status: str) -> None:
    """End MLflow's active run, if any, with ``status``; the status is written through the client
    first (retried while a SQLite store is busy: ``mlflow.end_run`` forgets the run before it
    writes, so a retry of it would leave the run RUNNING), then the run is closed."""
    import mlflow
    from mlflow.tracking import MlflowClient

    active = mlflow.active_run()
    if active is None:
        return
    run_id = active.info.run_id
    tracker.retrying(lambda: MlflowClient().set_terminated(run_id, status))
    tracker.retrying(lambda: mlflow.end_run(status=status))


def _log_batch(tracker: _Tracker, run_id: str, metrics: list[tuple[str, float, int]]) -> None:
    """Log (key, value, step) triples in batches (one store round trip per 1000)."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    now = int(time.time() * 1000)
    entities = [Metric(_metric_name(key), value, now, step) for key, value, step in metrics]
    try:
        client = MlflowClient()
        for start in range(0, len(entities), 1000):
            client.log_batch(run_id, metrics=entities[start : start + 1000])
    except Exception as exc:  # noqa: BLE001
        tracker.warn(exc)


def log_test_metrics(run_id: str, metrics: dict, tracking_uri: str | None = None) -> None:
    """Add held-out metrics (as ``test_<name>``) to a finished run."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=resolve_tracking_uri(tracking_uri))
    for name, value in metrics.items():
        client.log_metric(run_id, f"test_{name}", float(value))


def _log_results(tracker: _Tracker, estimator, X_sample, fit_seconds: float) -> None:
    final = {
        "fit_seconds": fit_seconds,
        "best_epoch": float(estimator.best_epoch_),
        "n_params": float(estimator.n_params_),
        "epochs": float(len(estimator.history_)),
    }
    best = next((h for h in estimator.history_ if h["epoch"] == estimator.best_epoch_), None)
    if best:
        final.update({f"best_{k}": float(v) for k, v in best.items() if k.startswith("val_") and k != "val_seconds"})
    tracker.call("log_metrics", final)
    if _SETTINGS.log_models or getattr(estimator, "tracking", None):
        log_model(estimator, X_sample, tracker)


def log_model(
    estimator,
    X_sample,
    tracker: _Tracker | None = None,
    name: str = "model",
    *,
    trusted: bool = False,
    registered_model_name: str | None = None,
):
    """Log a fitted estimator to the active MLflow run as a pyfunc model; returns ModelInfo.

    The pyfunc is defined in code (``pyfunc_model.py``), the weights travel as our
    checksummed model file, and the signature and input example come from ``X_sample``.
    ``pyfunc.predict(X, params={"predict_method": "predict_proba"})`` gives a classifier's
    probabilities, one column per class. ``trusted``: the pyfunc loads the model file with
    ``trusted=True`` (a compare ensemble with pickled members). ``registered_model_name``:
    also register it in the model registry under that name (a new version).
    """
    import mlflow
    from mlflow.models import infer_signature

    from .._version import __version__

    tracker = tracker or _Tracker(mlflow.get_tracking_uri())
    example = X_sample.head(5) if hasattr(X_sample, "head") else X_sample[:5]
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # The signature comes from the training data (integer columns there had no missing
        # values, or pandas would hold them as floats), so MLflow's advisory hints do not apply.
        warnings.filterwarnings("ignore", message=".*([Tt]ype hint|integer column)", category=UserWarning)
        path = Path(tmp) / "model.tsm"
        estimator.save(path)
        try:
            return mlflow.pyfunc.log_model(
                name=name,
                python_model=str(Path(__file__).with_name("pyfunc_model.py")),
                artifacts={"model_file": str(path)},
                # params: the pyfunc's predict_method ("predict", or "predict_proba" for classifiers)
                signature=infer_signature(example, estimator.predict(example), params={"predict_method": "predict"}),
                input_example=example,
                pip_requirements=[f"tabular-suite=={__version__}"],
                model_config={"trusted": bool(trusted)},
                registered_model_name=registered_model_name,
            )
        except Exception as exc:  # noqa: BLE001 - a failed upload must not fail the fit
            tracker.warn(exc)
            return None
