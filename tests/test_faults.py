"""Runs cut short and wrong inputs (issue 22, points 3, 4 and 7): outputs appear complete or not
at all, paths are checked before the work, user mistakes are one red line with a non-zero exit."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import tabular_suite

ENV = {**os.environ, "TABULAR_SUITE_NUM_THREADS": "1", "COLUMNS": "200"}


def cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "tabular_suite.cli.app", *map(str, args)], capture_output=True, text=True, env=ENV, **kw
    )


@pytest.fixture(scope="module")
def model_and_rows(tmp_path_factory):
    """A small regressor and a 300,000-row CSV that takes it seconds to predict in 5,000-row chunks."""
    folder = tmp_path_factory.mktemp("faults")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(2_000, 5)), columns=list("abcde"))
    est = tabular_suite.MLPRegressor(max_epochs=5, num_threads=1, random_state=0).fit(X, X["a"] + X["b"])
    est.save(folder / "m.tsm")
    big = pd.DataFrame(rng.normal(size=(300_000, 5)).round(4), columns=list("abcde"))
    big.assign(y=big["a"] + big["b"]).to_csv(folder / "rows.csv", index=False)  # the file also holds the target
    return folder, est, big


def _start_predict(folder, out):
    return subprocess.Popen(
        [sys.executable, "-m", "tabular_suite.cli.app", "predict", folder / "m.tsm", folder / "rows.csv",
         "-o", out, "--force", "--chunk-rows", "5000", "--quiet"],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_temporary(folder, name, proc, timeout=120):
    """Wait until the output's temporary file has grown (the run is mid-way), then return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tmp = [p for p in folder.iterdir() if p.name.startswith(f".{name}.") and p.stat().st_size > 20_000]
        if tmp:
            return tmp[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the prediction never started writing")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_predict_cut_short_leaves_the_old_output_whole(model_and_rows, sig):
    folder, _, _ = model_and_rows
    out = folder / f"pred_{sig.name}.csv"
    out.write_text("prediction\nold\n")
    proc = _start_predict(folder, out)
    tmp = _wait_for_temporary(folder, out.name, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert out.read_text() == "prediction\nold\n"  # the earlier file, untouched
    if sig == signal.SIGKILL:
        assert proc.returncode == -9 and tmp.exists()  # only a temporary beside it, never a partial target
    else:
        assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
        assert not tmp.exists()


def test_predict_streams_in_chunks_into_a_new_folder(model_and_rows):
    folder, est, big = model_and_rows
    out = folder / "new" / "deeper" / "pred.parquet"
    r = cli("predict", folder / "m.tsm", folder / "rows.csv", "-o", out, "--chunk-rows", "70000", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "wrote 300,000 predictions" in r.stdout
    written = pd.read_parquet(out)["prediction"].to_numpy()
    np.testing.assert_allclose(written[:1000], est.predict(big.head(1000)), rtol=1e-5)
    assert sorted(p.name for p in out.parent.iterdir()) == ["pred.parquet"]
    metrics, rows = tabular_suite.evaluate_file(est, folder / "rows.csv", "y", chunk_rows=50_000)
    assert rows == 300_000 and metrics["r2"] > 0.5


def test_user_mistakes_are_one_red_line(model_and_rows, tmp_path):
    """In this process (typer's runner) for speed; test_cli checks real processes' exit codes."""
    from typer.testing import CliRunner

    from tabular_suite.cli import app as cli_app

    folder, _, _ = model_and_rows
    data = tmp_path / "d.csv"
    log = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3] * 5, "item_id": [1, 2, 3, 1, 2, 3] * 5})
    log.to_csv(data, index=False)
    rec = tmp_path / "rec.tsm"
    tabular_suite.SASRecRecommender(max_epochs=1, num_threads=1).fit(log).save(rec)
    (tmp_path / "folder").mkdir()
    cases = [
        (("predict", rec, folder / "rows.csv", "-o", tmp_path / "new" / "p.csv"), "not a tabular model"),
        (("evaluate", rec, folder / "rows.csv", "-t", "a"), "not a tabular model"),
        (("train", data, "-t", "item_id", "-o", tmp_path / "folder", "--force"), "is a folder"),
        (("predict", folder / "m.tsm", folder / "rows.csv", "-o", tmp_path / "folder"), "is a folder"),
        (("train", data, "-t", "item_id", "-o", tmp_path / "m.tsm", "-p", "max_epoch=3"), "did you mean 'max_epochs'"),
        (("predict", folder / "m.tsm", tmp_path / "missing.csv", "-o", tmp_path / "p2.csv"), "not found"),
    ]
    runner = CliRunner()
    for args, message in cases:
        r = runner.invoke(cli_app.app, [str(a) for a in args], env={"TABULAR_SUITE_NUM_THREADS": "1"})
        assert r.exit_code == 1, (args, r.output)
        assert message in r.stderr and "Traceback" not in r.output, (args, r.output)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "new").exists() and not (tmp_path / "p2.csv").exists()  # (no empty folder left)


def test_a_failed_write_removes_only_the_folders_it_created(tmp_path):
    from tabular_suite.core.files import atomic_path, check_output_path

    (tmp_path / "kept").mkdir()
    target = tmp_path / "kept" / "a" / "b" / "out.csv"
    assert check_output_path(target) == target and not (tmp_path / "kept" / "a").exists()  # checks, creates nothing
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept"]
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole"
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="Cannot create the folder for .*: .*file is a file"):
        check_output_path(tmp_path / "file" / "sub" / "out.csv")


def test_drift_at_predict_is_one_warning_line_naming_the_column(model_and_rows, tmp_path):
    folder, _, big = model_and_rows
    big.head(500).assign(c=np.nan).to_csv(tmp_path / "drift.csv", index=False)
    r = cli("predict", folder / "m.tsm", tmp_path / "drift.csv", "-o", tmp_path / "p.csv", "--quiet")
    assert r.returncode == 0, r.stderr
    warning_lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(warning_lines) == 1 and "warning:" in warning_lines[0] and "all values missing: 'c'" in r.stderr


def test_compare_with_no_successful_model_exits_non_zero(tmp_path):
    data = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    # An empty column: every deep model refuses it (the baselines would drop it).
    pd.DataFrame({"a": rng.normal(size=60), "e": np.nan, "y": rng.integers(0, 2, 60)}).to_csv(data, index=False)
    r = cli("compare", data, "-t", "y", "--models", "mlp,resnet", "--cv", "2")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "no model" in r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------------------------ tracking
def _runs(uri):
    from mlflow.tracking import MlflowClient

    from tabular_suite.tracking import _store_lock

    with _store_lock(uri):  # a store being created by a CLI process must not be read half-made
        client = MlflowClient(tracking_uri=uri)
        return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


@pytest.mark.slow  # (make test-all: kept out of `make test`'s 10 minutes)
def test_parallel_tracked_fits_on_a_new_sqlite_store_are_all_recorded(tmp_path):
    data = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=80), "y": rng.integers(0, 2, 80)}).to_csv(data, index=False)
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tabular_suite.cli.app",
                "train",
                data,
                "-t",
                "y",
                "-o",
                tmp_path / f"m{i}.tsm",
                "-p",
                "max_epochs=2",
                "--quiet",
                "--holdout",
                "0.2",
                "--track",
                "--tracking-uri",
                uri,
            ],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    outcomes = [p.communicate(timeout=240) + (p.returncode,) for p in procs]
    assert all(code == 0 for _, _, code in outcomes), outcomes
    runs = _runs(uri)
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    # Each names its run, which holds the parameters and the held-out scores; MLflow's own
    # logging stays out of the user's terminal.
    printed = {out.split("MLflow run ")[1].split()[0] for out, _, _ in outcomes}
    assert printed == {r.info.run_id for r in runs}
    assert all("test_accuracy" in r.data.metrics and r.data.params["max_epochs"] == "2" for r in runs)
    assert all("Traceback" not in err and "INFO" not in err for _, err, _ in outcomes)


def test_a_failed_store_ends_the_command_with_an_error(tmp_path):
    data = tmp_path / "d.csv"
    pd.DataFrame({"a": np.arange(40.0), "y": np.arange(40) % 2}).to_csv(data, index=False)
    r = cli("train", data, "-t", "y", "-o", tmp_path / "m.tsm", "-p", "max_epochs=1", "--quiet", "--track",
            "--tracking-uri", "http://127.0.0.1:9")  # fmt: skip
    assert r.returncode == 1 and "the run was not recorded" in r.stderr, (r.stdout, r.stderr)
    assert (tmp_path / "m.tsm").exists()  # the model itself was saved


@pytest.mark.parametrize("sig", [signal.SIGINT])  # SIGTERM takes the same path (the predict and train tests)
def test_interrupted_compare_keeps_finished_models_in_mlflow(tmp_path, sig):
    data = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3_000, 8))
    pd.DataFrame(X, columns=[f"x{i}" for i in range(8)]).assign(y=(X[:, 0] > 0).astype(int)).to_csv(data, index=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tabular_suite.cli.app", "compare", data, "-t", "y", "--models",
         "linear,random_forest,ft_transformer", "--preset", "best", "--cv", "3", "--track", "--tracking-uri", uri],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # wait until two models are logged: ft_transformer is then training
        time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()
        if (tmp_path / "mlflow.db").exists() and len([r for r in _runs(uri) if r.info.run_name != "compare"]) >= 2:
            break
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    # 130, or (rarely, by where the signal lands) death by SIGINT: $? is 130 for a shell either way.
    assert proc.returncode in (130, -signal.SIGINT) and "Traceback" not in stderr, stderr
    assert "interrupted" in stderr
    runs = {r.info.run_name: r for r in _runs(uri)}
    assert set(runs) == {"compare", "linear", "random_forest"}
    assert runs["compare"].info.status == "KILLED"
    assert runs["linear"].info.status == "FINISHED" and "accuracy_mean" in runs["linear"].data.metrics
    assert runs["random_forest"].data.params["n_estimators"] == "300"  # hyperparameters as params
    assert runs["linear"].data.tags["mlflow.parentRunId"] == runs["compare"].info.run_id


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_train_cut_short_leaves_no_model_and_a_killed_run(tmp_path, sig):
    data = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 10))
    pd.DataFrame(X).add_prefix("x").assign(y=X[:, 0] > 0).to_csv(data, index=False)
    out, uri = tmp_path / "m.tsm", f"sqlite:///{tmp_path / 'mlflow.db'}"
    out.write_bytes(b"the earlier model")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tabular_suite.cli.app", "train", data, "-t", "y", "-o", out, "--force", "--quiet",
         "-p", "max_epochs=500", "-p", "patience=null", "--track", "--tracking-uri", uri],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait for the run's first epochs in MLflow
        time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()
        if (tmp_path / "mlflow.db").exists():
            runs = _runs(uri)
            if runs and runs[0].data.metrics:
                break
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert out.read_bytes() == b"the earlier model"
    (run,) = _runs(uri)
    if sig == signal.SIGKILL:
        assert proc.returncode == -9 and run.info.status == "RUNNING"  # nothing can close it: the epochs stay
    else:
        assert proc.returncode in (130, -signal.SIGINT) and "interrupted" in stderr and "Traceback" not in stderr
        assert run.info.status == "KILLED"
    assert "train_loss" in run.data.metrics


def test_a_misspelt_recommender_parameter_is_one_red_line(tmp_path):
    from typer.testing import CliRunner

    from tabular_suite.cli import app as cli_app

    pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [1, 2, 2, 1]}).to_csv(tmp_path / "log.csv", index=False)
    r = CliRunner().invoke(
        cli_app.app, ["recommend", "fit", str(tmp_path / "log.csv"), "-o", str(tmp_path / "r.tsm"), "-p", "max_epoch=1"]
    )
    assert r.exit_code == 1 and "did you mean 'max_epochs'" in r.stderr, r.output
