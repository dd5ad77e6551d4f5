"""MLflow tracking against real stores: a local SQLite file and an `mlflow server` on loopback."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import tabular_suite
from tabular_suite import MLPClassifier, MLPRegressor, tracking

FIT = dict(max_epochs=4, num_threads=1, random_state=0)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {"age": rng.integers(18, 80, 150), "x": rng.normal(size=150), "city": rng.choice(["a", "b", "c"], 150)}
    )
    y = np.where(X["x"] + (X["city"] == "a") > 0.2, "yes", "no")
    return X, y


@pytest.fixture
def sqlite_uri(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    yield uri
    tracking.autolog(disable=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def _stop(proc: subprocess.Popen) -> None:
    # The server starts helper processes (job consumers): end the whole process group. A test
    # server's store is thrown away: its graceful shutdown (about 10 s) is not waited for.
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=2)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def _check_run(uri: str, run_id: str, X, est) -> None:
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["max_epochs"] == "4" and run.data.params["lr"] == "0.001"
    tags = run.data.tags
    assert tags["system.device"] == "cpu" and tags["system.num_threads"] == "1"
    assert tags["tabular_suite.estimator"] == type(est).__name__ and "system.torch" in tags
    history = client.get_metric_history(run_id, "val_loss")
    assert [m.step for m in history] == [1, 2, 3, 4]
    assert [m.value for m in history] == pytest.approx([h["val_loss"] for h in est.history_])
    for name in ("best_epoch", "fit_seconds", "n_params", "best_val_loss"):
        assert name in run.data.metrics
    with tracking._use_tracking_uri(uri):
        model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    np.testing.assert_array_equal(model.predict(X), est.predict(X))
    proba = model.predict(X, params={"predict_method": "predict_proba"})
    assert list(proba.columns) == [str(c) for c in est.classes_]
    np.testing.assert_allclose(proba.to_numpy(), est.predict_proba(X), rtol=1e-6)
    with pytest.raises(Exception, match="predict_method 'decision_function' is not available"):
        model.predict(X, params={"predict_method": "decision_function"})
    inputs = {c["name"]: c["type"] for c in json.loads(model.metadata.signature.inputs.to_json())}
    assert inputs == {"age": "long", "x": "double", "city": "string"}


def test_tracking_argument_logs_to_sqlite(data, sqlite_uri):
    X, y = data
    tracking.autolog(tracking_uri=sqlite_uri, experiment_name="tests")
    est = MLPClassifier(**FIT).fit(X, y)
    # The fit leaves MLflow's global URI (and the environment it writes to) as it found them.
    assert "MLFLOW_TRACKING_URI" not in os.environ
    _check_run(sqlite_uri, est.mlflow_run_id_, X, est)
    exp = MlflowClient(tracking_uri=sqlite_uri).get_experiment_by_name("tests")
    assert MlflowClient(tracking_uri=sqlite_uri).get_run(est.mlflow_run_id_).info.experiment_id == exp.experiment_id


def test_streamed_fits_are_tracked(data, sqlite_uri, tmp_path):
    """fit_parquet and `train --stream --track`: one run each, as a fit of the table in memory
    (params, tags, per-epoch metrics, the pyfunc model with the file's signature)."""
    from typer.testing import CliRunner

    from tabular_suite.cli import app as cli_app

    X, y = data
    path = tmp_path / "t.parquet"
    X.assign(label=y).to_parquet(path, row_group_size=50)
    tracking.autolog(tracking_uri=sqlite_uri, experiment_name="tests")
    est = MLPClassifier(**FIT).fit_parquet(path, "label", batch_rows=64)
    _check_run(sqlite_uri, est.mlflow_run_id_, X, est)
    tracking.autolog(disable=True)
    r = CliRunner().invoke(cli_app.app, ["train", str(path), "-t", "label", "-o", str(tmp_path / "m.tsm"), "--stream",
                                         "-p", "max_epochs=4", "-p", "num_threads=1", "--quiet",
                                         "--track", "--tracking-uri", sqlite_uri])  # fmt: skip
    assert r.exit_code == 0 and "streamed 150 rows" in r.stdout and "MLflow run" in r.stdout, r.output
    run_id = r.stdout.split("MLflow run ")[1].split()[0]
    _check_run(sqlite_uri, run_id, X, tabular_suite.load(tmp_path / "m.tsm"))


def test_tracking_false_overrides_autolog_and_default_is_off(data, sqlite_uri):
    X, y = data
    assert not hasattr(MLPClassifier(**FIT).fit(X, y), "mlflow_run_id_")
    tracking.autolog(tracking_uri=sqlite_uri)
    assert not hasattr(MLPClassifier(**FIT, tracking=False).fit(X, y), "mlflow_run_id_")


def test_env_var_store_and_active_run_is_reused(data, tmp_path, monkeypatch):
    X, y = data
    uri = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert tracking.resolve_tracking_uri() == uri
    with tracking._use_tracking_uri(uri), mlflow.start_run() as parent:
        est = MLPRegressor(**FIT, tracking=True).fit(X[["age", "x"]], X["x"] * 2)
    assert est.mlflow_run_id_ == parent.info.run_id


def test_a_run_is_never_left_running(data, sqlite_uri, monkeypatch):
    """A store call that fails during a fit, Ctrl-C while the model is logged, Ctrl-C as a
    comparison's run starts: the run ends (FINISHED, KILLED), and no run stays active to take
    the next fit's logs."""

    X, y = data
    tracking.autolog(tracking_uri=sqlite_uri, experiment_name="tests")
    client = MlflowClient(tracking_uri=sqlite_uri)

    def statuses():
        exp = client.get_experiment_by_name("tests")
        return sorted(r.info.status for r in client.search_runs([exp.experiment_id]))

    real_log_params = mlflow.log_params
    monkeypatch.setattr(mlflow, "log_params", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("store down")))
    with pytest.warns(RuntimeWarning, match="store down"):
        MLPClassifier(**FIT).fit(X, y)
    monkeypatch.setattr(mlflow, "log_params", real_log_params)
    assert statuses() == ["FINISHED"] and mlflow.active_run() is None

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tracking, "_log_results", interrupted)
    with pytest.raises(KeyboardInterrupt):
        MLPClassifier(**FIT).fit(X, y)
    assert statuses() == ["FINISHED", "KILLED"] and mlflow.active_run() is None

    monkeypatch.setattr(tracking.ComparisonRun, "log_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tabular_suite.compare(X, y, models=["linear"], cv=2, num_threads=1, tracking=True, tracking_uri=sqlite_uri,
                              experiment="tests")  # fmt: skip
    assert statuses() == ["FINISHED", "KILLED", "KILLED"]


def test_unreachable_server_warns_once_and_training_finishes(data, monkeypatch):
    X, y = data
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking.autolog(tracking_uri=f"http://127.0.0.1:{_free_port()}")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = MLPClassifier(**FIT).fit(X, y)
    finally:
        tracking.autolog(disable=True)
    ours = [w for w in caught if "MLflow tracking" in str(w.message)]
    assert len(ours) == 1 and "training continues" in str(ours[0].message)
    assert est.predict(X).shape == (len(X),) and not hasattr(est, "mlflow_run_id_")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("server")
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{d / 'server.db'}",
            "--artifacts-destination",
            str(d / "artifacts"),
            "--workers",  # one process (the default four start in turn on a loaded two-core machine)
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/health")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


@pytest.mark.slow  # (make test-all: kept out of `make test`'s 10 minutes)
def test_real_mlflow_server(data, mlflow_server, monkeypatch):
    X, y = data
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking.autolog(tracking_uri=mlflow_server, experiment_name="server-tests")
    try:
        est = MLPClassifier(**FIT).fit(X, y)
    finally:
        tracking.autolog(disable=True)
    _check_run(mlflow_server, est.mlflow_run_id_, X, est)


@pytest.mark.slow  # `mlflow models serve` starts a scoring server (~25 s on two loaded cores)
def test_mlflow_models_serve_answers_invocations(data, sqlite_uri, tmp_path):
    X, y = data
    tracking.autolog(tracking_uri=sqlite_uri)
    est = MLPClassifier(**FIT).fit(X, y)
    port = _free_port()
    # MLflow starts `uvicorn` by name: the environment's bin folder must be on PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "MLFLOW_TRACKING_URI": sqlite_uri, "PATH": path}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            f"runs:/{est.mlflow_run_id_}/model",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/ping", timeout=180)
        body = json.dumps({"dataframe_split": json.loads(X.to_json(orient="split", index=False))}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = json.loads(response.read())["predictions"]
    finally:
        _stop(proc)
    assert predictions == est.predict(X).tolist()
