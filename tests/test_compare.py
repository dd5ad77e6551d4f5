"""compare(): leaderboard contract, failures and time limits, ensemble, refit, report, MLflow, Ray, CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

import tabular_suite
from tabular_suite.compare import caruana_selection, cheapest_selection, get_metric
from tabular_suite.compare.ensemble import BaggedModel
from tabular_suite.core import registry
from tabular_suite.tabular.models import MLPClassifier

COLUMNS = [
    "model",
    "status",
    "error",
    "metric",
    "direction",
    "score",
    "mean",
    "std",
    "folds",
    "bag_sets",
    "fit_seconds",
    "predict_seconds",
    "predict_rows_per_s",
    "predict_seconds_per_row",
    "best_epoch",
    "n_params",
    "device",
    "seed",
    "ensemble_weight",
    "mlflow_run_id",
]
FAST = {"num_threads": 1, "tracking": False}


def _table(n=240, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n)})
    logit = 2 * df["a"] + (df["c"] == "x") - 0.5
    y = np.where(logit + rng.logistic(size=n) * 0.3 > 0, "yes", "no")
    df.loc[::13, "b"] = np.nan
    return df, y


@pytest.fixture(scope="module")
def classification_result():
    X, y = _table()
    return (
        X,
        y,
        tabular_suite.compare(
            X, y, models=["linear", "mlp", "hist_gradient_boosting"], cv=3, metric="roc_auc", stack=False, **FAST
        ),
    )


def test_leaderboard_contract(classification_result):
    X, y, result = classification_result
    board = result.leaderboard
    assert list(board.columns) == COLUMNS
    assert set(board["model"]) == {"linear", "mlp", "hist_gradient_boosting", "ensemble"}
    assert (board["status"] == "ok").all() and (board["folds"] == 3).all()
    assert board["score"].is_monotonic_decreasing
    assert (board["metric"] == "roc_auc").all() and (board["direction"] == "higher is better").all()
    assert (board["mean"] > 0.8).all()
    # score: ROC AUC of every row's out-of-fold prediction (what the ensemble is selected on,
    # AutoGluon's score_val), not the mean of the folds' AUCs next to it.
    y_enc = np.unique(y, return_inverse=True)[1]
    for model, row in board.set_index("model").iterrows():
        pooled = roc_auc_score(y_enc, result.oof_predictions[model][:, 1])
        assert row["score"] == pytest.approx(pooled, abs=1e-12) and row["score"] != pytest.approx(row["mean"])
    # the greedy ensemble starts from the best single model on that score: never ranked below it
    assert board.iloc[0]["model"] == "ensemble"
    mlp = board.set_index("model").loc["mlp"]
    # best epoch: the mean over folds of each fold's early-stopping epoch (the argmin of its val_loss)
    fold_best = [int(np.argmin([h["val_loss"] for h in history])) + 1 for history in result.histories["mlp"]]
    assert len(fold_best) == 3 and mlp["best_epoch"] == pytest.approx(np.mean(fold_best))
    assert mlp["n_params"] > 1000 and mlp["device"] == "cpu"
    assert mlp["predict_rows_per_s"] > 0 and mlp["fit_seconds"] > 0
    # mean and std are over folds of the metric on each validation fold's out-of-fold predictions
    for name in ("linear", "mlp", "hist_gradient_boosting"):
        folds = result.fold_scores[name]
        assert len(folds) == 3
        assert board.set_index("model").loc[name, ["mean", "std"]].tolist() == pytest.approx(
            [np.mean(folds), np.std(folds)]
        )


def test_ensemble_selection_never_worse_than_best_single(classification_result):
    X, y, result = classification_result
    codes = np.unique(y, return_inverse=True)[1]
    metric = get_metric("roc_auc", "classification")
    single = max(metric.value(codes, p) for name, p in result.oof_predictions.items() if name != "ensemble")
    assert metric.value(codes, result.oof_predictions["ensemble"]) >= single
    weights = result.ensemble_weights
    assert sum(weights.values()) == pytest.approx(1.0)
    board = result.leaderboard.set_index("model")
    for name in ("linear", "mlp", "hist_gradient_boosting"):
        assert board.loc[name, "ensemble_weight"] == pytest.approx(weights.get(name, 0.0))


def test_caruana_weights_follow_the_greedy_rule():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    preds = {"good": y + 0.1, "other": y - 0.3, "bad": y * 0}
    rmse = get_metric("rmse", "regression")
    weights = caruana_selection(preds, y, rmse, n_iterations=10)
    blended = sum(w * preds[n] for n, w in weights.items())
    assert rmse.value(y, blended) <= rmse.value(y, preds["good"])
    assert "bad" not in weights


def test_cheapest_selection_trades_at_most_its_tolerance_for_a_cheaper_ensemble():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    signals = [y * 0.3 + rng.random(400) * 0.7 for _ in range(4)]
    # Each signal twice: a slow model (1 s a row) and a fast near-copy (1 ms), as good.
    noisy = {f"slow{i}": s + rng.normal(0, 0.01, 400) for i, s in enumerate(signals)}
    noisy |= {f"fast{i}": s + rng.normal(0, 0.01, 400) for i, s in enumerate(signals)}
    preds = {n: np.c_[1 - p, p] for n, p in noisy.items()}
    seconds = {n: 1.0 if n.startswith("slow") else 1e-3 for n in preds}
    cost = lambda names: sum(seconds[n] for n in names)  # noqa: E731
    auc = get_metric("roc_auc", "classification")
    loss = lambda w: 1 - auc.value(y, sum(v * preds[n] for n, v in w.items()))  # noqa: E731
    greedy = caruana_selection(preds, y, auc)
    for tolerance in (0.0, 0.01, 0.05):
        cheap = cheapest_selection(preds, y, auc, cost, tolerance=tolerance)
        assert loss(cheap) <= loss(greedy) * (1 + tolerance) + 1e-12
        assert cost(cheap) <= cost(greedy)
    assert cost(cheapest_selection(preds, y, auc, cost, tolerance=0.05)) < cost(greedy)
    # No time left: the greedy ensemble as it is; a limit holds as in caruana_selection.
    assert cheapest_selection(preds, y, auc, cost, tolerance=0.05, deadline=0.0) == greedy
    assert cost(cheapest_selection(preds, y, auc, cost, limit=0.05)) <= 0.05


def test_fast_metrics_equal_scikit_learns():
    from sklearn import metrics as skm

    rng = np.random.default_rng(0)
    for n, k in [(60, 2), (500, 5)]:
        y = rng.integers(0, k, n)
        proba = rng.random((n, k))
        proba[:5] = 0.0
        proba[:5, 0] = 1.0  # probabilities of 0 and 1: clipped as scikit-learn clips them
        proba /= proba.sum(1, keepdims=True)
        ours = get_metric("log_loss", "classification").value(y, proba)
        assert ours == pytest.approx(skm.log_loss(y, np.clip(proba, 1e-15, 1), labels=np.arange(k)), rel=1e-12)
    y = rng.integers(0, 2, 300)
    score = np.round(rng.random(300), 1)  # many ties
    proba = np.c_[1 - score, score]
    assert get_metric("roc_auc", "classification").value(y, proba) == pytest.approx(skm.roc_auc_score(y, score))
    with pytest.warns(UserWarning, match="one class"):  # undefined, as scikit-learn says
        assert np.isnan(get_metric("roc_auc", "classification").value(np.ones(10, int), proba[:10]))


def test_refit_predicts_and_saves(classification_result, tmp_path):
    X, y, result = classification_result
    model = result.best_model_
    assert set(model.weights) <= {"linear", "mlp", "hist_gradient_boosting"}
    proba = result.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1)
    assert set(result.predict(X)) <= {"yes", "no"}
    path = tmp_path / "best.tsm"
    result.save(path)
    if any(name != "mlp" for name in model.weights):
        with pytest.raises(ValueError, match="pickle"):
            tabular_suite.load(path)
    loaded = tabular_suite.load(path, trusted=True)
    np.testing.assert_allclose(loaded.predict_proba(X), proba)
    assert list(loaded.feature_names_in_) == ["a", "b", "c"]


def test_xgboost_takes_any_labels_and_folds_without_a_rare_class(tmp_path):
    """XGBoost's classifier takes only the labels 0 .. n-1, each present: the folds give it the
    class codes (a class missing from a fold's training rows gets a row of weight 0), and so does
    the refit, whose member maps them back to the labels."""
    X, y = _table(120)
    y = np.where(y == "yes", "up", "down").astype(object)
    y[7] = "rare"  # one row: a fold's training rows lack it ("rare" sorts between the others)
    result = tabular_suite.compare(X, y, models=["xgboost"], cv=2, refit=True, calibrate=None, **FAST)
    board = result.leaderboard.set_index("model")
    assert board.loc["xgboost", "status"] == "ok" and result.refit_status == "ok"
    proba = result.predict_proba(X)
    assert proba.shape == (120, 3) and set(result.predict(X)) <= {"down", "rare", "up"}
    assert np.isfinite(board.loc["xgboost", "score"])
    result.save(tmp_path / "m.tsm")
    np.testing.assert_allclose(tabular_suite.load(tmp_path / "m.tsm", trusted=True).predict_proba(X), proba)


def test_deep_only_regression_refit_loads_without_trust(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 3))
    y = X[:, 0] * 2 + rng.normal(scale=0.1, size=150)
    result = tabular_suite.compare(X, y, models=["mlp", "resnet"], cv=2, **FAST)
    board = result.leaderboard
    assert result.task == "regression" and (board["metric"] == "rmse").all()
    assert (board["direction"] == "lower is better").all()
    for model, row in board.set_index("model").iterrows():  # the RMSE of the out-of-fold predictions
        assert row["score"] == pytest.approx(-np.sqrt(np.mean((result.oof_predictions[model] - y) ** 2)))
        assert row["score"] <= -row["mean"]  # (at least the mean of the folds' RMSEs)
    result.save(tmp_path / "m.tsm")
    loaded = tabular_suite.load(tmp_path / "m.tsm")  # our weights only: no trust needed
    np.testing.assert_allclose(loaded.predict(X), result.predict(X))


@dataclass(kw_only=True, repr=False, eq=False)
class _BrokenClassifier(MLPClassifier):
    def fit(self, X, y, eval_set=None):
        raise RuntimeError("this model always breaks")


def test_one_failing_model_never_stops_the_others(monkeypatch):
    monkeypatch.setitem(
        registry._REGISTRY, "broken", registry.ModelSpec("broken", "fails", _BrokenClassifier, presets=("best",))
    )
    X, y = _table(120)
    result = tabular_suite.compare(X, y, models=["broken", "linear"], cv=2, **FAST)
    board = result.leaderboard.set_index("model")
    assert board.loc["broken", "status"] == "failed"
    assert "RuntimeError: this model always breaks" in board.loc["broken", "error"]
    assert np.isnan(board.loc["broken", "score"])
    assert board.loc["linear", "status"] == "ok"
    assert result.leaderboard["model"].iloc[-1] == "broken"  # failed rows sort last
    assert set(result.best_model_.weights) == {"linear"}


def test_scikit_learn_models_keep_to_num_threads(monkeypatch):
    """HistGradientBoosting has no n_jobs: its OpenMP pool is capped to num_threads during fits and refits."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_info

    seen = []
    original = HistGradientBoostingClassifier.fit

    def fit(self, X, y, **kw):
        seen.append([p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"])
        return original(self, X, y, **kw)

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", fit)
    X, y = _table(120)
    tabular_suite.compare(X, y, models=["hist_gradient_boosting"], cv=2, refit=True, **FAST)
    assert len(seen) == 3 and all(pools and set(pools) == {1} for pools in seen)  # 2 folds + the refit


@pytest.fixture
def epoch_clock(monkeypatch):
    """A clock for compare()'s budgets that only moves at the end of a deep model's epoch, by
    0.03 s: the limits then act at the same epochs on any machine, however loaded."""
    from types import SimpleNamespace

    from tabular_suite.compare import folds, runner

    now = [1000.0]
    clock = SimpleNamespace(perf_counter=lambda: now[0])
    monkeypatch.setattr(folds, "time", clock)
    monkeypatch.setattr(runner, "time", clock)
    on_epoch_end = folds.Deadline.on_epoch_end

    def tick(self, state, logs):
        now[0] += 0.03
        return on_epoch_end(self, state, logs)

    monkeypatch.setattr(folds.Deadline, "on_epoch_end", tick)


def test_time_limits_mark_models_instead_of_dropping_them(epoch_clock):
    X, y = _table(200)
    # Per model: the MLP is stopped at the end of the epoch that crosses its fold budget: fold 0
    # gets 0.4 / 2 = 0.2 s (7 epochs of 0.03 s), fold 1 what is left, 0.19 s (7 epochs).
    result = tabular_suite.compare(
        X, y, models=["mlp"], cv=2, model_time_limit=0.4, ensemble=False, refit=False, **FAST
    )
    row = result.leaderboard.iloc[0]
    assert row["status"] == "timeout" and "budget" in row["error"]
    assert row["folds"] == 2 and np.isfinite(row["mean"])  # still scored on what it learned
    assert [len(h) for h in result.histories["mlp"]] == [7, 7]
    # Fold 0 gets 0.1 s (4 epochs): fewer than 5, so fold 1 is skipped, and the row says why.
    result = tabular_suite.compare(
        X, y, models=["mlp"], cv=2, model_time_limit=0.2, ensemble=False, refit=False, **FAST
    )
    row = result.leaderboard.iloc[0]
    assert row["status"] == "timeout" and row["folds"] == 1 and "other folds skipped" in row["error"]
    assert [len(h) for h in result.histories["mlp"]] == [4]
    # Total: once the limit has passed, no later fold starts; the model stays on the board. The
    # MLP's first fold gets the 0.05 s left (2 epochs); then nothing starts.
    result = tabular_suite.compare(
        X,
        y,
        models=["mlp", "linear"],
        cv=2,
        time_limit=0.05,
        model_time_limit=10,
        ensemble=False,
        refit=False,
        stack=False,
        **FAST,
    )
    assert [len(h) for h in result.histories["mlp"]] == [2]
    board = result.leaderboard.set_index("model")
    assert board.loc["mlp", "status"] == "timeout" and board.loc["mlp", "folds"] == 1
    assert board.loc["linear", "status"] == "timeout" and board.loc["linear", "folds"] == 0
    assert "total time limit" in board.loc["linear", "error"]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"models": ["nope"]}, "Unknown model 'nope'"),
        ({"cv": 1}, "cv must be an integer >= 2"),
        ({"metric": "rmse"}, "Unknown metric 'rmse' for classification"),
        ({"preset": "huge"}, "Unknown preset"),
        ({"backend": "spark"}, "backend must be"),
        ({"time_limit": -1}, "time_limit must be a positive"),
        ({"models": []}, "models is empty"),
        ({"holdout": 1.5}, "holdout must be 'auto', a fraction in (0, 1)"),
        ({"holdout": "half"}, "holdout must be 'auto', a fraction in (0, 1)"),
        ({"holdout": 0.01}, "holdout=0.01 holds out 1 of the 60 rows; the ensemble and calibration need at least 2"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    X, y = _table(60)
    with pytest.raises(ValueError, match=re.escape(message)):
        tabular_suite.compare(X, y, **{"models": ["linear"], **kwargs, **FAST})


def test_bad_targets_are_named():
    X, y = _table(60)
    with pytest.raises(ValueError, match="single class"):
        tabular_suite.compare(X, np.array(["a"] * 60), models=["linear"], **FAST)
    with pytest.raises(ValueError, match="missing values"):
        tabular_suite.compare(X, np.r_[np.nan, np.ones(59)], models=["linear"], **FAST)
    with pytest.raises(ValueError, match="rows but y has"):
        tabular_suite.compare(X, y[:10], models=["linear"], **FAST)


def test_report_is_self_contained(classification_result, tmp_path):
    _, _, result = classification_result
    page = result.report(tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 7  # models x 3, ROC, PR, reliability, importance (test_report.py)
    assert "<table>" in page and "hist_gradient_boosting" in page and "rows" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_mlflow_parent_run_with_nested_runs(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    X, y = _table(120)
    result = tabular_suite.compare(
        X,
        y,
        models=["linear", "mlp"],
        cv=2,
        num_threads=1,
        tracking=True,
        tracking_uri=uri,
        experiment="cmp",
        stack=False,
    )
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("cmp")
    runs = {r.info.run_id: r for r in client.search_runs([experiment.experiment_id])}
    parent = runs[result.mlflow_run_id]
    children = [r for r in runs.values() if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["ensemble", "linear", "mlp"]
    board = result.leaderboard.set_index("model")
    for child in children:
        assert board.loc[child.info.run_name, "mlflow_run_id"] == child.info.run_id
        assert child.data.tags["status"] == "ok"
    mlp = next(r for r in children if r.info.run_name == "mlp")
    folds = client.get_metric_history(mlp.info.run_id, "fold_accuracy")
    assert sorted(m.step for m in folds) == [0, 1]
    assert [m.value for m in sorted(folds, key=lambda m: m.step)] == pytest.approx(result.fold_scores["mlp"])
    assert len(client.get_metric_history(mlp.info.run_id, "fold0_val_loss")) >= 1
    assert mlp.data.metrics["accuracy"] == pytest.approx(board.loc["mlp", "score"])  # the leaderboard's ranking value
    assert parent.data.metrics["best_accuracy"] == pytest.approx(result.leaderboard["score"][0])
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"leaderboard.csv", "report.html"} <= artifacts
    assert parent.data.params["cv"] == "2" and parent.data.tags["best_model"] == result.leaderboard["model"][0]
    [data_input] = client.get_run(parent.info.run_id).inputs.dataset_inputs
    assert {t.key: t.value for t in data_input.tags} == {"mlflow.data.context": "training"}
    schema = [c["name"] for c in json.loads(data_input.dataset.schema)["mlflow_colspec"]]
    assert schema == ["a", "b", "c", "target"] and json.loads(data_input.dataset.profile)["num_rows"] == 120


@pytest.mark.slow  # a local Ray cluster starts (~40 s on two loaded cores; make test-all)
def test_ray_backend_matches_local_results():
    import ray  # installed by the test extra

    X, y = _table(120)
    kwargs = dict(models=["linear", "mlp"], cv=2, refit=False, **FAST)
    local = tabular_suite.compare(X, y, stack=False, **kwargs)  # (the Ray backend does not stack)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = tabular_suite.compare(X, y, backend="ray", **kwargs)
        assert ray.is_initialized()
    finally:
        ray.shutdown()
    a = local.leaderboard.set_index("model")
    b = on_ray.leaderboard.set_index("model").loc[a.index]
    assert (b["status"] == "ok").all()
    np.testing.assert_allclose(b["mean"], a["mean"])  # seeded folds and models: the same numbers
    # Without a running Ray, compare starts a local one and shuts it down again.
    started_here = tabular_suite.compare(X, y, backend="ray", **{**kwargs, "models": ["linear"]})
    assert not ray.is_initialized()
    np.testing.assert_allclose(
        started_here.leaderboard.set_index("model").loc["linear", "mean"], a.loc["linear", "mean"]
    )


def test_cli_compare_prints_leaderboard_and_writes_files(tmp_path):
    from typer.testing import CliRunner

    from tabular_suite.cli.app import app
    from tabular_suite.core.model_file import read_model_file

    X, y = _table(150)
    data = tmp_path / "data.csv"
    X.assign(label=y).to_csv(data, index=False)
    out, report = tmp_path / "best.tsm", tmp_path / "report.html"
    args = [
        "compare",
        str(data),
        "--target",
        "label",
        "--models",
        "linear,mlp",
        "--cv",
        "2",
        "--num-threads",
        "1",
        "--out",
        str(out),
        "--report",
        str(report),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "accuracy ± std" in res.output and "ensemble" in res.output and "mlp" in res.output
    assert out.exists() and report.exists()
    pickled = [n for n, m in read_model_file(out)[0]["members"].items() if m["kind"] == "pickle"]
    if pickled:  # (linear, a scikit-learn model, in the ensemble)
        assert f"({', '.join(pickled)} stored with pickle: predict/evaluate load it with --trust" in " ".join(
            res.output.split()
        )
    else:
        assert "stored with pickle" not in res.output
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1 and "already exists" in res.output
    preds = tmp_path / "p.csv"
    res = CliRunner().invoke(app, ["predict", str(out), str(data), "--out", str(preds), "--trust"])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(preds)) == 150
    res = CliRunner().invoke(app, ["compare", str(data), "--models", "linear"])
    assert res.exit_code == 1 and "--target is required" in res.output
    held = [*args[:6], "--holdout", "0.2", "--num-threads", "1", "--out", str(tmp_path / "held.tsm")]
    res = CliRunner().invoke(app, held)
    assert res.exit_code == 0, res.output
    assert "saved the once-fitted (each member: one model, 20.0% of rows held out)" in " ".join(res.output.split())
    res = CliRunner().invoke(app, [*held[:-2], "--holdout", "1"])
    assert res.exit_code == 1 and "--holdout must be auto, none or a fraction in (0, 1), got '1'" in res.output
    # --bag-sets: the time left fits the linear model on a second split (2 x 2 fold models saved).
    bagged = [*args[:4], "--models", "linear", "--cv", "2", "--num-threads", "1", "--time-limit", "30",
              "--bag-sets", "2", "--out", str(tmp_path / "sets.tsm")]  # fmt: skip
    res = CliRunner().invoke(app, bagged)
    assert res.exit_code == 0, res.output
    [member] = tabular_suite.load(tmp_path / "sets.tsm", trusted=True).members.values()
    assert len(member.models) == 4
    res = CliRunner().invoke(app, [*bagged[:-2], "--bag-sets", "0"])
    assert res.exit_code == 1 and "bag_sets must be an integer >= 1, got 0" in res.output
    # A forest is one model fitted on all rows (scored out of bag), and the CLI says so.
    forest = [*args[:4], "--models", "random_forest", "--cv", "2", "--num-threads", "1", "--out", str(tmp_path / "f")]
    res = CliRunner().invoke(app, forest)
    assert res.exit_code == 0, res.output
    assert "(each member: 2 fold models; random_forest: one fit on all rows)" in " ".join(res.output.split())


def test_bagging_keeps_the_fold_models_and_averages_them(tmp_path):
    """The default best model is the best row's fold models (k-fold bagging): their mean, no refit."""
    X, y = make_classification(n_samples=160, n_features=5, random_state=0)
    result = tabular_suite.compare(X, y, models=["linear", "mlp"], cv=3, ensemble=False, calibrate=None, **FAST)
    best = result.leaderboard.iloc[0]["model"]
    bagged = result.best_model_.members[best]
    assert isinstance(bagged, BaggedModel) and len(bagged.models) == 3 and result.refit_status is None
    mean = np.mean([m.predict_proba(X) for m in bagged.models], axis=0)
    np.testing.assert_allclose(result.predict_proba(X), mean, rtol=1e-6)
    # Each fold model predicts its own validation rows as in the out-of-fold predictions.
    oof = result.oof_predictions[best]
    folds = StratifiedKFold(3, shuffle=True, random_state=0).split(X, y)
    for model, (_, valid) in zip(bagged.models, folds):
        np.testing.assert_allclose(model.predict_proba(X[valid]), oof[valid], rtol=1e-5, atol=1e-6)
    path = tmp_path / "bagged.tsm"
    result.save(path)
    loaded = tabular_suite.load(path, trusted=True)
    np.testing.assert_allclose(loaded.predict_proba(X), result.predict_proba(X), rtol=1e-6)


def test_fold_models_and_members_warn_once_about_drifted_rows():
    """Every fold model checks the rows against its own training rows: one warning per call, not
    one per fold model and member."""
    import warnings

    from tabular_suite.compare.ensemble import EnsembleModel
    from tabular_suite.data.preprocess import DataDriftWarning

    X, y = _table(90)
    classes, codes = np.unique(y, return_inverse=True)  # (fold models are fitted on class codes)
    folds = [MLPClassifier(max_epochs=1, num_threads=1).fit(X.iloc[i::3], codes[i::3]) for i in range(3)]
    bagged = BaggedModel(folds, task="classification", classes=classes)
    ensemble = EnsembleModel({"a": bagged, "b": BaggedModel(folds[:2], task="classification", classes=classes)},
                             {"a": 0.5, "b": 0.5}, task="classification", classes=classes)  # fmt: skip
    far = X.assign(a=X["a"] * 1e4)
    for model in (bagged, ensemble):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.predict_proba(far)
        drift = [w for w in caught if issubclass(w.category, DataDriftWarning)]
        assert len(drift) == 1 and "far outside the training range: 'a'" in str(drift[0].message)
        with warnings.catch_warnings(record=True) as caught:  # rows like the training rows: silent
            warnings.simplefilter("always")
            model.predict_proba(X)
        assert not [w for w in caught if issubclass(w.category, DataDriftWarning)]


def test_fold_models_parse_the_same_rows_once_when_they_read_them_alike(monkeypatch):
    """Fold models and members predicting the same rows together parse their numbers and read
    their category keys once when their preprocessors read the columns alike (compare's fold
    models: our deep models' preprocessors and the FeatureFrame of the tree and linear
    pipelines), with the very predictions of each model alone; preprocessors that differ (a
    text column's features fitted on other rows) each parse their own."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from tabular_suite.compare.ensemble import EnsembleModel
    from tabular_suite.data import preprocess
    from tabular_suite.data.preprocess import FeatureFrame, TablePreprocessor

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=90), "when": pd.date_range("2024-01-01", periods=90).astype(str),
                      "c": rng.choice(["x", "y", "z"], 90)})  # fmt: skip
    y = (X["a"] > 0).astype(int).to_numpy()
    folds = [MLPClassifier(max_epochs=1, num_threads=1).fit(X.iloc[i::3], y[i::3]) for i in range(3)]
    classes = np.array([0, 1])
    bagged = BaggedModel(folds, task="classification", classes=classes)
    ensemble = EnsembleModel({"a": bagged, "b": BaggedModel(folds[:2], task="classification", classes=classes)},
                             {"a": 0.5, "b": 0.5}, task="classification", classes=classes)  # fmt: skip
    expected = np.mean([m.predict_proba(X) for m in folds], axis=0)
    blocks, keys = [], []
    block, category_keys = TablePreprocessor._numeric_block, preprocess._category_keys
    monkeypatch.setattr(TablePreprocessor, "_numeric_block", lambda self, df: blocks.append(1) or block(self, df))
    monkeypatch.setattr(preprocess, "_category_keys", lambda *a, **k: keys.append(1) or category_keys(*a, **k))
    np.testing.assert_array_equal(bagged.predict_proba(X), expected)
    assert (len(blocks), len(keys)) == (1, 1)
    blocks.clear(), keys.clear()
    ensemble.predict_proba(X)
    assert (len(blocks), len(keys)) == (1, 1)
    blocks.clear(), keys.clear()
    [m.predict_proba(X) for m in folds]  # (one by one: each its own)
    assert (len(blocks), len(keys)) == (3, 3)
    texts = pd.DataFrame({"t": [f"w{i % 7} w{i % 5}" for i in range(90)]})
    text_folds = [make_pipeline(FeatureFrame(feature_types={"t": "text"}), SimpleImputer(), LogisticRegression())
                  .fit(texts.iloc[i::3], y[i::3]) for i in range(2)]  # fmt: skip
    blocks.clear()
    BaggedModel(text_folds, task="classification", classes=classes).predict_proba(texts)
    assert len(blocks) == 2


def test_cross_validation_does_not_warn_about_the_tables_own_rows():
    """A fold's validation rows may lie outside its training rows' range (here the fold holding
    the 1e9 row): they are the user's own table, not drift, and compare says nothing."""
    import warnings

    from tabular_suite.data.preprocess import DataDriftWarning

    X, y = _table(150)
    X.loc[[10, 60, 110], "a"] = [1e3, 1e6, 1e9]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tabular_suite.compare(X, y, models=["mlp"], cv=3, stack=False, **FAST)
    assert not [w for w in caught if issubclass(w.category, DataDriftWarning)]


def test_a_holdout_fits_each_model_once_and_works_on_the_held_out_rows(tmp_path):
    """holdout=0.25: one fit per model on 75% of the rows; scores, ensemble and calibration on
    the other 25%; the kept models are those fits (no stacking layer)."""
    from tabular_suite.data.io import as_dataframe
    from tabular_suite.tabular.base import holdout_split

    X, y = make_classification(n_samples=400, n_features=5, random_state=0)
    result = tabular_suite.compare(X, y, models=["linear", "lightgbm", "mlp"], holdout=0.25, metric="log_loss", **FAST)
    kept, held = holdout_split(y, 0.25, 0, stratify=True)  # the split compare makes (seed: random_state)
    board = result.leaderboard.set_index("model")
    assert set(board.index) == {"ensemble", "linear", "lightgbm", "mlp"}  # no level-2 rows
    assert (board["folds"] == 1).all() and (board["status"] == "ok").all()
    assert result.settings["holdout"] == 0.25 and len(result.oof_target) == len(held) == 100
    np.testing.assert_array_equal(result.oof_target, y[np.sort(held)])
    for name in ("linear", "lightgbm", "mlp"):  # each row's score: its one model on the held-out rows
        model = result.fold_models[name][0]
        proba = model.predict_proba(as_dataframe(X).iloc[np.sort(held)])  # (fold models take compare's frame)
        np.testing.assert_allclose(result.oof_predictions[name], proba, rtol=1e-5, atol=1e-6)
        expected = -result.metric.value(y[np.sort(held)], proba)
        assert board.loc[name, "score"] == pytest.approx(expected, rel=1e-6)
    members = result.best_model_.members if hasattr(result.best_model_, "members") else {}
    assert members and all(len(m.models) == 1 for m in members.values())
    assert "calibration" in result.postprocessing  # cross-fitted over 5 parts of the held-out rows
    assert result.predict_proba(X).shape == (400, 2)
    assert "hold-out of 25.0% of the rows" in result.report(tmp_path / "report.html").read_text()
    assert result.feature_importance().shape[0] == 5  # out of fold: on the held-out rows


def test_holdout_auto_splits_once_only_under_a_short_time_limit_on_a_large_table():
    """Under a time limit of less than a second per HOLDOUT_ROWS_PER_SECOND rows, "auto" holds out
    AutoGluon's share for the table's size; otherwise, and without a limit, cv folds."""
    from tabular_suite.compare.runner import HOLDOUT_ROWS_PER_SECOND

    X, y = make_classification(n_samples=1500, n_features=5, random_state=0)
    short = 1500 / HOLDOUT_ROWS_PER_SECOND  # seconds
    cut = tabular_suite.compare(X, y, models=["linear"], time_limit=short, **FAST)
    assert cut.settings["holdout"] == 0.2 and len(cut.oof_target) == 300  # max(0.1, min(0.2, 500 / rows))
    assert (cut.leaderboard["folds"] == 1).all()
    for kwargs in ({"time_limit": 2 * short}, {}, {"time_limit": short, "holdout": None}):
        full = tabular_suite.compare(X, y, models=["linear"], cv=3, **kwargs, **FAST)
        assert full.settings["holdout"] is None and len(full.oof_target) == 1500
        assert (full.leaderboard["folds"] == 3).all()


def test_bagged_deep_models_load_without_trust(tmp_path):
    X, y = make_classification(n_samples=120, n_features=4, random_state=1)
    labels = np.array(["no", "yes"])[y]
    result = tabular_suite.compare(X, labels, models=["mlp"], cv=2, ensemble=False, **FAST)
    path = tmp_path / "mlp.tsm"
    result.save(path)
    loaded = tabular_suite.load(path)  # our models are stored as weights: no pickle, no trust needed
    assert list(loaded.classes_) == ["no", "yes"]
    np.testing.assert_array_equal(loaded.predict(X), result.predict(X))
    assert set(loaded.predict(X)) <= {"no", "yes"}


def test_no_bag_and_no_refit_keeps_no_model():
    X, y = make_classification(n_samples=80, n_features=4, random_state=2)
    result = tabular_suite.compare(X, y, models=["linear"], cv=2, bag=False, **FAST)
    assert result.best_model_ is None
    with pytest.raises(ValueError, match="bag=False and refit=False"):
        result.predict(X)


def test_gbdt_libraries_are_default_candidates_and_their_models_save(tmp_path):
    """LightGBM, XGBoost and CatBoost come with the library: in every preset, fitted, bagged, saved."""
    from tabular_suite.compare.candidates import resolve_candidates

    for preset in ("fast", "best"):
        names = [c.name for c in resolve_candidates(None, preset, "classification")]
        assert {"lightgbm", "xgboost", "catboost"} <= set(names)
    X, y = _table(150)
    result = tabular_suite.compare(X, y, models=["lightgbm", "xgboost", "catboost"], cv=2, **FAST)
    board = result.leaderboard.set_index("model")
    assert (board["status"] == "ok").all() and (board["mean"] > 0.6).all()
    path = tmp_path / "gbdt.tsm"
    result.save(path)
    np.testing.assert_allclose(tabular_suite.load(path, trusted=True).predict_proba(X), result.predict_proba(X))


def test_model_params_replace_a_candidates_settings():
    X, y = _table(120)
    params = {"mlp": {"max_epochs": 2, "patience": None}, "linear": {"C": 0.01}}
    result = tabular_suite.compare(X, y, models=["mlp", "linear"], model_params=params, cv=2, **FAST)
    assert all(len(h) == 2 for h in result.histories["mlp"])  # 2 epochs, not the preset's 40
    linear = result.best_model_.members.get("linear") or next(iter(result.best_model_.members.values()))
    assert isinstance(linear, BaggedModel)
    plain = tabular_suite.compare(X, y, models=["linear"], cv=2, **FAST)
    strong_l2 = tabular_suite.compare(X, y, models=["linear"], model_params={"linear": {"C": 0.01}}, cv=2, **FAST)
    assert not np.allclose(plain.oof_predictions["linear"], strong_l2.oof_predictions["linear"])


def test_model_params_errors_name_the_problem_before_any_fit():
    X, y = _table(60)
    with pytest.raises(ValueError, match="'resnet', not a candidate; candidates: mlp"):
        tabular_suite.compare(X, y, models=["mlp"], model_params={"resnet": {"max_epochs": 2}}, cv=2, **FAST)
    with pytest.raises(ValueError, match="mlp has no parameter 'max_epoch'"):
        tabular_suite.compare(X, y, models=["mlp"], model_params={"mlp": {"max_epoch": 2}}, cv=2, **FAST)


def test_cli_param_overrides_and_bad_param_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from tabular_suite.cli.app import app

    X, y = _table(100)
    data = tmp_path / "t.csv"
    X.assign(label=y).to_csv(data, index=False)
    base = ["compare", str(data), "--target", "label", "--models", "mlp", "--cv", "2", "--num-threads", "1"]
    res = CliRunner().invoke(app, [*base, "--param", "mlp.max_epochs=2", "--param", "mlp.activation=gelu"])
    assert res.exit_code == 0, res.output
    assert re.search(r"mlp\s.*ok", res.output)
    res = CliRunner().invoke(app, [*base, "--param", "mlp=2"])
    assert res.exit_code == 1 and "write model.key=value" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, [*base, "--param", "mlp.nope=2"])
    assert res.exit_code == 1 and "mlp has no parameter 'nope'" in res.output


def test_progress_events_and_verbose_lines(capsys):
    X, y = _table(120)
    events = []
    result = tabular_suite.compare(
        X, y, models=["linear", "mlp", "random_forest"], cv=2, verbose=2, progress=events.append, stack=False, **FAST
    )
    kinds = [(e["event"], e["model"], e["fold"]) for e in events]
    assert kinds == [
        ("fold_start", "linear", 0), ("fold_end", "linear", 0), ("fold_start", "linear", 1), ("fold_end", "linear", 1),
        ("model_end", "linear", None),
        ("fold_start", "mlp", 0), ("fold_end", "mlp", 0), ("fold_start", "mlp", 1), ("fold_end", "mlp", 1),
        ("model_end", "mlp", None),
        # (one fit, scored out of bag: each fold's start and end as it is reported)
        ("fold_start", "random_forest", 0), ("fold_end", "random_forest", 0),
        ("fold_start", "random_forest", 1), ("fold_end", "random_forest", 1),
        ("model_end", "random_forest", None),
    ]  # fmt: skip
    ends = [e for e in events if e["event"] == "model_end"]
    assert ends[0]["best_model"] == "linear"
    assert ends[0]["score"] == pytest.approx(np.mean(result.fold_scores["linear"]))
    best = max(("linear", "mlp"), key=lambda m: np.mean(result.fold_scores[m]))
    assert ends[1]["best_model"] == best and all(e["time_left"] is None and e["n_models"] == 3 for e in events)
    out = capsys.readouterr().out
    assert "linear fold 1/2: ok, accuracy" in out and f"best so far: {best}" in out


def test_cli_compare_shows_live_progress_on_a_terminal(tmp_path):
    """On a terminal the status line names the model and fold being fitted; a line per model stays."""
    import pty

    X, y = _table(100)
    data = tmp_path / "d.csv"
    X.assign(target=y).to_csv(data, index=False)
    main, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tabular_suite.cli.app", "compare", str(data), "-t", "target", "--models",
         "linear,mlp", "--cv", "2", "--num-threads", "1", "--time-limit", "300"],
        stdin=secondary, stdout=secondary, stderr=secondary, env={**os.environ, "COLUMNS": "150"},
    )  # fmt: skip
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=300) == 0
    os.close(main)
    shown = b"".join(chunks).decode(errors="replace")
    assert "mlp (2/2) fold 1/2" in shown  # the live status line while mlp's first fold ran
    assert re.search(r"linear \(1/2\): ok, [0-9.]+ · best so far linear [0-9.]+ · [0-9]+ s left", shown)


def test_compare_logs_the_predictor_as_an_mlflow_model_and_registers_it(tmp_path):
    """The final predictor (here an ensemble with a pickled scikit-learn member) is the parent run's
    pyfunc model, with probabilities, and a registered model version."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    X, y = _table(120)
    result = tabular_suite.compare(
        X, y, models=["linear", "mlp"], cv=2, num_threads=1, tracking=True, tracking_uri=uri,
        registered_model_name="churn",
    )  # fmt: skip
    assert result.mlflow_model_uri and result.registered_model_version == 1
    mlflow.set_tracking_uri(uri)
    try:
        for model_uri in (result.mlflow_model_uri, "models:/churn/1"):
            model = mlflow.pyfunc.load_model(model_uri)
            np.testing.assert_array_equal(model.predict(X), result.predict(X))
            proba = model.predict(X, params={"predict_method": "predict_proba"})
            np.testing.assert_allclose(proba.to_numpy(), result.predict_proba(X))
            assert list(proba.columns) == [str(c) for c in result.classes]
    finally:
        mlflow.set_tracking_uri(None)
    with pytest.raises(ValueError, match="needs tracking"):
        tabular_suite.compare(X, y, models=["linear"], tracking=False, registered_model_name="x", **{"cv": 2})


def test_stacking_layer_on_out_of_fold_predictions(tmp_path):
    """Level-2 models train on the features plus the level-1 out-of-fold predictions, on the same
    folds: each fold's level-2 model, fed by the same fold's level-1 models, reproduces its
    out-of-fold predictions; a stacked member predicts and saves like any other."""
    X, y = _table(240)
    result = tabular_suite.compare(X, y, models=["linear", "random_forest", "mlp", "lightgbm"], cv=3, metric="log_loss",
                                   **FAST)  # fmt: skip
    board = result.leaderboard.set_index("model")
    assert {"lightgbm_l2", "linear_l2"} <= set(board.index) and board.loc["linear_l2", "status"] == "ok"
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    for name in ("linear_l2", "lightgbm_l2"):  # (the forest among their inputs: its out-of-bag view)
        for k, (_, valid) in enumerate(folds):
            model = result._out_of_fold(name, k, valid)
            np.testing.assert_allclose(model.predict_proba(X.iloc[valid]), result.oof_predictions[name][valid],
                                       rtol=1e-5, atol=1e-6)  # fmt: skip
    importance = result.feature_importance(model="linear_l2")  # through the level-1 fold models
    assert sorted(importance.index) == ["a", "b", "c"] and importance.loc["a", "importance"] > 0.05
    model = result.get_model("linear_l2")
    assert repr(model.members["linear_l2"]).startswith("StackedModel(")
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1)
    model.save(tmp_path / "s.tsm")
    np.testing.assert_allclose(tabular_suite.load(tmp_path / "s.tsm", trusted=True).predict_proba(X), proba)
    plain = tabular_suite.compare(X, y, models=["linear", "mlp"], cv=3, stack=False, **FAST)
    assert not any(m.endswith("_l2") for m in plain.leaderboard["model"])
    # A model that is a member and the level-2 model's input too predicts the rows once a call.
    from tabular_suite.compare.runner import _bagged_row

    level1 = result._stacked["linear_l2"][0][0]  # one of linear_l2's inputs
    both = _bagged_row({level1: 0.5, "linear_l2": 0.5}, result.fold_models, result._stacked, "classification",
                       result._data, result.classes)  # fmt: skip
    calls = []
    for fold_model in both.members[level1].models:
        fold_model.predict_proba = (lambda f: lambda rows: calls.append(1) or f(rows))(fold_model.predict_proba)
    proba = both.predict_proba(X)
    assert len(calls) == 3  # the 3 fold models once, not once more under linear_l2
    apart = 0.5 * both.members[level1].predict_proba(X) + 0.5 * both.members["linear_l2"].predict_proba(X)
    np.testing.assert_allclose(proba, apart, rtol=0, atol=1e-12)
    assert len(calls) == 9  # (outside an ensemble's call nothing is kept: twice more)


def test_stacking_does_not_learn_shuffled_labels():
    """No signal at all: the level-2 models must score like chance out of fold. (Level 2 over the
    original features too scored ROC AUC 0.74 on credit_g with shuffled labels: see
    tabular_suite.compare.stacking.)"""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 20)), columns=[f"x{i}" for i in range(20)])
    y = rng.integers(0, 2, 600)
    result = tabular_suite.compare(
        X, y, models=["linear", "hist_gradient_boosting", "lightgbm"], cv=5, metric="log_loss", calibrate=None, **FAST
    )
    assert len(result._stacked["linear_l2"][0]) >= 2  # (the greedy ensemble's members, at least two)
    for name in ("linear_l2", "lightgbm_l2"):
        assert roc_auc_score(y, result.oof_predictions[name][:, 1]) < 0.6


def test_the_in_context_model_is_kept_as_one_model_on_all_rows():
    """Its fit only stores the rows: one context on all rows predicts (one forward pass per view
    instead of one per fold); its out-of-fold scores still come from the fold models."""
    X, y = _table(150)
    result = tabular_suite.compare(X, y, models=["tabpfn"], cv=3, ensemble=False, stack=False, **FAST)
    [member] = result.best_model_.members.values()
    assert len(member.models) == 1 and len(member.models[0]._context_y) == 150
    assert len(result.fold_models["tabpfn"]) == 3


def test_forests_are_fitted_once_and_scored_out_of_bag():
    """The random forest and extra trees are fitted once on all rows, as AutoGluon bags them: their
    out-of-fold predictions are scikit-learn's own out-of-bag ones, the predictor holds one forest
    (one model's cost), and out-of-fold importance reads each row from the trees that left it out."""
    from sklearn.base import clone

    X, y = _table(240)
    result = tabular_suite.compare(X, y, models=["linear", "random_forest", "extra_trees"], cv=3, **FAST)
    board = result.leaderboard.set_index("model")
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    for name in ("random_forest", "extra_trees"):
        models = result.fold_models[name]
        assert len(models) == 3 and all(m is models[0] for m in models) and board.loc[name, "status"] == "ok"
        pipeline = models[0]
        forest = clone(pipeline[-1]).set_params(oob_score=True).fit(pipeline[:-1].transform(X), result.oof_target)
        np.testing.assert_allclose(result.oof_predictions[name], forest.oob_decision_function_, rtol=1e-6, atol=1e-9)
        for k, (_, valid) in enumerate(folds):  # out of fold: the trees that left those rows out
            view = result._out_of_fold(name, k, valid)
            np.testing.assert_allclose(view.predict_proba(X.iloc[valid]), result.oof_predictions[name][valid])
        assert len(result.get_model(name).members[name].models) == 1
        cost = board.loc[name, ["predict_seconds_per_row", "predict_rows_per_s"]]
        np.testing.assert_allclose(cost.iloc[0], 1 / cost.iloc[1])  # one model's cost, not three
        importance = result.feature_importance(model=name)
        assert importance.index[0] == "a" and importance.loc["a", "importance"] > 0.05
    # Not with repeated bagging: the forest is not fitted again on further splits.
    again = tabular_suite.compare(X, y, models=["random_forest"], cv=3, bag_sets=3, time_limit=60, stack=False, **FAST)
    assert again.leaderboard.set_index("model").loc["random_forest", "bag_sets"] == 1


def test_weighted_forests_are_bagged_over_their_folds():
    """With unequal row weights scikit-learn draws each bootstrap sample in proportion to them, so
    a heavy row is left out by few trees or none: the forest is then bagged over its k folds,
    every row predicted by a fold model that did not train on it. Equal weights change nothing."""
    X, y = _table(240)
    for sample_weight, fits in ((np.where(y == "yes", 10.0, 1.0), 3), (np.full(len(y), 2.0), 1)):
        result = tabular_suite.compare(X, y, models=["random_forest"], cv=3, sample_weight=sample_weight, **FAST)
        models = result.fold_models["random_forest"]
        assert len(models) == 3 and len({id(m) for m in models}) == fits
        if fits == 3:  # each row predicted by the fold model that did not train on it
            folds = StratifiedKFold(3, shuffle=True, random_state=0).split(X, y)
            oof = result.oof_predictions["random_forest"]
            for model, (_, valid) in zip(models, folds):
                np.testing.assert_allclose(model.predict_proba(X.iloc[valid]), oof[valid])


def test_infer_limit_keeps_the_predictor_within_its_cost():
    X, y = _table(300)
    models = ["linear", "random_forest", "mlp", "hist_gradient_boosting"]
    free = tabular_suite.compare(X, y, models=models, cv=3, metric="roc_auc", **FAST)
    board = free.leaderboard.set_index("model")
    # A row's cost: its fold models' seconds per row in a warm 1,000-row batch; a level-2 row
    # adds its level-1 models', an ensemble each of its members' once.
    single = board.loc[models, "predict_seconds_per_row"]
    assert (single > 0).all()
    copies = [1 if m == "random_forest" else 3 for m in models]  # (the forest: one model, out of bag)
    np.testing.assert_allclose(single, copies / board.loc[models, "predict_rows_per_s"])
    # Warm and 1,000 rows at a time, not the first call on a fold's 100 validation rows
    # (whose fixed costs, the tables' preprocessing, it would spread over 100 rows).
    first_call = board.loc[models, "predict_seconds"] / (300 / 3)
    assert (board.loc[models, "predict_seconds_per_row"] / 3 < first_call).all()
    level2 = board.loc["linear_l2", "predict_seconds_per_row"]
    assert level2 > single[list(free._stacked["linear_l2"][0])].sum()  # (its level-1 models')
    members = [n for n, w in free.ensemble_weights.items() if w > 0]
    needed = set(models) if "linear_l2" in members or "lightgbm_l2" in members else set(members)
    assert (
        board.loc["ensemble", "predict_seconds_per_row"] >= board.loc[sorted(needed), "predict_seconds_per_row"].max()
    )

    # A limit no model meets: the fastest scored row predicts alone.
    tight = tabular_suite.compare(X, y, models=models, cv=3, metric="roc_auc", infer_limit=1e-12, **FAST)
    tboard = tight.leaderboard.set_index("model")
    fastest = tboard["predict_seconds_per_row"].drop("ensemble").idxmin()
    assert list(tight.best_model_.members) == [fastest] and list(tight.ensemble_weights) == [fastest]
    assert tight.settings["infer_limit"] == 1e-12

    # A limit between: every member fits, the predictor's cost is within it.
    limit = float(single.sort_values().iloc[:2].sum()) * 1.5
    mid = tabular_suite.compare(X, y, models=models, cv=3, metric="roc_auc", infer_limit=limit, **FAST)
    mboard = mid.leaderboard.set_index("model")
    chosen = set(mid.best_model_.members)
    cost = (
        mboard.loc["ensemble", "predict_seconds_per_row"]
        if len(chosen) > 1
        else mboard.loc[next(iter(chosen)), "predict_seconds_per_row"]
    )
    assert cost <= limit
    assert not {"linear_l2", "lightgbm_l2"} & chosen or mboard.loc["linear_l2", "predict_seconds_per_row"] <= limit
    with pytest.raises(ValueError, match="infer_limit"):
        tabular_suite.compare(X, y, models=["linear"], infer_limit=0, **FAST)
