"""compare(time_limit=...): every kind of model and the refit keep to the limit.

The timed tests use tables on which one unbounded fit takes far longer than the limit plus
``GRACE``, so they fail clearly (not by a hair) when a model or the refit ignores the limit,
and pass with a wide margin on a loaded machine when it is kept. ``GRACE`` is the slack that
``compare`` documents: the batch, tree chunk or boosting round in progress, a fold's
preprocessing and validation predictions, ranking the results.

Only the public ``tabular_suite.compare`` API is used at module level, so the file also runs
against older versions of the package (where these tests fail).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

import tabular_suite
from tabular_suite.compare import BASELINES

GRACE = 5.0  # seconds past time_limit that a whole compare() call may take
# holdout=None: these tests are about the cv folds, on tables made large for short limits (which
# holdout="auto" would hold out instead; tests/test_compare.py tests that).
QUIET = {"num_threads": 1, "tracking": False, "holdout": None, "bag_sets": 1}  # (one k-fold split)


def _numeric_table(n: int, n_features: int, n_classes: int = 2, seed: int = 0):
    """A learnable, noisy classification table of ``n`` rows: fits keep improving for many
    trees / iterations / epochs, so nothing stops early by itself."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, n_features)), columns=[f"f{i}" for i in range(n_features)])
    signal = X.iloc[:, :5].sum(axis=1).to_numpy() + X["f0"].to_numpy() * X["f1"].to_numpy()
    noisy = signal + rng.normal(scale=1.5, size=n)
    y = np.digitize(noisy, np.quantile(noisy, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, y


def _timed_compare(X, y, **kwargs):
    started = time.perf_counter()
    result = tabular_suite.compare(X, y, **{**QUIET, **kwargs})
    return result, time.perf_counter() - started


def test_random_forest_and_its_refit_keep_to_the_time_limit():
    # One 300-tree forest on a fold of this table takes far longer than time_limit + GRACE
    # (and the refit on all rows about twice that).
    X, y = _numeric_table(30_000, 20)
    result, seconds = _timed_compare(X, y, models=["random_forest"], cv=2, time_limit=4, refit=True)
    assert seconds < 4 + GRACE
    row = result.leaderboard.set_index("model").loc["random_forest"]
    assert row["status"] == "timeout" and "trees" in row["error"]
    assert row["folds"] == 2 and row["mean"] > 0.6  # scored on the trees it grew
    # The refit got what was left: a smaller forest, and the result says so.
    assert result.refit_status == "timeout" and "random_forest" in result.refit_error
    forest = result.best_model_.members["random_forest"].models[0][-1]  # (the refit forest, a BaggedModel of one)
    assert 1 <= len(forest.estimators_) < 300
    assert result.predict(X.iloc[:5]).shape == (5,)


@pytest.mark.parametrize("forest", ["random_forest", "extra_trees"])
def test_bagging_gives_the_folds_the_whole_time_limit_and_trains_nothing_after(forest):
    from tabular_suite.compare.candidates import resolve_candidates

    assert forest in [c.name for c in resolve_candidates(None, "fast", "regression")]  # a default candidate
    X, y = _numeric_table(30_000, 20)
    result, seconds = _timed_compare(X, y, models=[forest], cv=2, time_limit=4)
    assert seconds < 4 + GRACE
    bagged = result.best_model_.members[forest]
    assert len(bagged.models) == 1 and result.refit_status is None  # one forest, scored out of bag
    row = result.leaderboard.set_index("model").loc[forest]
    assert row["status"] == "timeout" and "trees" in row["error"] and row["mean"] > 0.6  # scored on what grew
    # Nothing was kept back for a refit: the one fit had about the whole limit (a fold's share is
    # half of it).
    assert row["fit_seconds"] * 2 > 4 * 0.75


def test_hist_gradient_boosting_keeps_to_the_time_limit():
    # Ten classes: each boosting iteration grows ten trees; 100 iterations take far longer
    # than the limit, and validation keeps improving (no early stop).
    X, y = _numeric_table(30_000, 30, n_classes=10)
    result, seconds = _timed_compare(X, y, models=["hist_gradient_boosting"], cv=2, time_limit=4, refit=True)
    assert seconds < 4 + GRACE
    row = result.leaderboard.set_index("model").loc["hist_gradient_boosting"]
    assert row["status"] == "timeout" and "boosting iterations" in row["error"]
    assert row["folds"] == 2 and np.isfinite(row["mean"])
    assert result.refit_status in ("ok", "timeout") and result.best_model_ is not None


def test_deep_model_stops_within_a_long_epoch():
    # One FT-Transformer epoch over a fold of this table takes far longer than the limit:
    # the deadline is checked between batches, not only at the end of an epoch.
    X, y = _numeric_table(30_000, 8)
    result, seconds = _timed_compare(X, y, models=["ft_transformer"], cv=2, time_limit=4, refit=False)
    assert seconds < 4 + GRACE
    row = result.leaderboard.set_index("model").loc["ft_transformer"]
    assert row["status"] == "timeout" and row["folds"] >= 1 and np.isfinite(row["mean"])


_SLOW_FIT_SECONDS = 4.0


class _SlowStartClassifier(ClassifierMixin, BaseEstimator):
    """A logistic regression whose fit first spends a fixed time that no deadline can cut (as
    a slow preprocessing step would): its first fold uses the whole time limit."""

    def fit(self, X, y):
        time.sleep(_SLOW_FIT_SECONDS)
        self.model_ = LogisticRegression().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)

    def predict(self, X):
        return self.model_.predict(X)


@pytest.fixture
def slow_start_model(monkeypatch):
    monkeypatch.setitem(BASELINES, "slow_start", (lambda ctx: _SlowStartClassifier(), None))
    return "slow_start"


def _small_table(n=120):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    return X, np.where(X["a"] + 0.3 * rng.normal(size=n) > 0, "yes", "no")


def test_no_time_left_for_the_refit_refits_nothing_and_says_why(slow_start_model, tmp_path):
    X, y = _small_table()
    result, seconds = _timed_compare(X, y, models=[slow_start_model], cv=2, time_limit=1, refit=True)
    assert seconds < 1 + GRACE  # an unbounded refit would sleep again
    board = result.leaderboard.set_index("model")
    assert board.loc[slow_start_model, "status"] == "timeout" and board.loc[slow_start_model, "folds"] == 1
    assert result.best_model_ is None and result.refit_status == "skipped"
    assert "time_limit" in result.refit_error
    with pytest.raises(ValueError, match="No model was refitted: no time was left"):
        result.predict(X)
    with pytest.raises(ValueError, match="No model was refitted"):
        result.save(tmp_path / "best.tsm")
    assert result.report(tmp_path / "report.html").exists()  # the report needs no refitted model


def test_cli_says_in_one_line_that_nothing_was_refitted(slow_start_model, tmp_path):
    from typer.testing import CliRunner

    from tabular_suite.cli.app import app

    X, y = _small_table()
    data = tmp_path / "data.csv"
    X.assign(label=y).to_csv(data, index=False)
    out = tmp_path / "best.tsm"
    args = [
        "compare",
        str(data),
        "--target",
        "label",
        "--models",
        slow_start_model,
        "--cv",
        "2",
        "--num-threads",
        "1",
        "--time-limit",
        "1",
        "--out",
        str(out),
        "--refit",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)  # a red line, not a traceback
    assert "No model was refitted" in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_ensemble_members_share_what_is_left_for_the_refit():
    X, y = _numeric_table(30_000, 20)
    result, seconds = _timed_compare(X, y, models=["linear", "random_forest"], cv=2, time_limit=6, refit=True)
    assert seconds < 6 + GRACE
    assert result.refit_status in ("ok", "timeout") and result.best_model_ is not None
    assert set(result.best_model_.weights) <= {"linear", "random_forest"}


def test_forest_is_the_same_as_one_plain_fit_when_the_limit_is_not_reached():
    """Without a limit the forest is fitted in one call; with a limit it is grown in chunks
    (warm_start), which must give the very same trees."""
    from sklearn.ensemble import RandomForestClassifier

    X, y = _numeric_table(200, 6)
    proba = {}
    for time_limit in (None, 10_000):
        result = tabular_suite.compare(
            X,
            y,
            models=["random_forest"],
            cv=2,
            time_limit=time_limit,
            ensemble=False,
            refit=True,
            calibrate=None,
            **QUIET,
        )
        assert result.leaderboard["status"].iloc[0] == "ok"
        proba[time_limit] = result.predict_proba(X)
    plain = RandomForestClassifier(n_estimators=300, n_jobs=1, random_state=0).fit(X.to_numpy(), y)
    np.testing.assert_array_equal(proba[None], plain.predict_proba(X.to_numpy()))
    np.testing.assert_array_equal(proba[10_000], proba[None])


@pytest.mark.parametrize("kind", ["RandomForest", "ExtraTrees"])
def test_forests_predicting_in_a_loop_give_the_forests_own_numbers(kind):
    """compare's forests sum their trees in a plain loop on one job (no joblib dispatch per
    tree): the very numbers of scikit-learn's own prediction, missing values, several
    classes and regression included; on two jobs the forest's own method runs."""
    from sklearn import ensemble

    from tabular_suite.compare import candidates

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    X[rng.random(X.shape) < 0.1] = np.nan
    y3 = rng.integers(0, 3, 300)
    for task, y in (("Classifier", y3), ("Classifier", y3 % 2), ("Regressor", rng.normal(size=300))):
        ours_cls = getattr(candidates, f"_{kind}{task}")
        base = getattr(ensemble, f"{kind}{task}")
        method = "predict_proba" if task == "Classifier" else "predict"
        model = ours_cls(n_estimators=25, random_state=0, n_jobs=1).fit(X, y)
        np.testing.assert_array_equal(getattr(model, method)(X), getattr(base, method)(model, X))
        np.testing.assert_array_equal(model.predict(X), base.predict(model, X))
        model.set_params(n_jobs=2)  # (threads add the trees in the order they finish: equal to rounding)
        assert not model._looped()
        np.testing.assert_allclose(getattr(model, method)(X), getattr(base, method)(model, X), rtol=1e-12)


def test_boosting_and_linear_are_the_same_as_one_plain_fit_when_the_limit_is_not_reached():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.preprocessing import StandardScaler

    X, y = _numeric_table(600, 6)
    proba = {}
    for name in ("hist_gradient_boosting", "linear"):
        for time_limit in (None, 10_000):
            result = tabular_suite.compare(
                X, y, models=[name], cv=2, time_limit=time_limit, ensemble=False, refit=True, calibrate=None, **QUIET
            )
            assert result.leaderboard["status"].iloc[0] == "ok"
            proba[name, time_limit] = result.predict_proba(X)
        np.testing.assert_array_equal(proba[name, None], proba[name, 10_000])
    hgb = HistGradientBoostingClassifier(random_state=0).fit(X.to_numpy(), y)
    np.testing.assert_array_equal(proba["hist_gradient_boosting", None], hgb.predict_proba(X.to_numpy()))
    scaled = StandardScaler().fit_transform(X.to_numpy())  # (the pipeline's imputer and scaler round differently)
    linear = LogisticRegression(max_iter=2000).fit(scaled, y)
    np.testing.assert_allclose(proba["linear", None], linear.predict_proba(scaled), rtol=0, atol=1e-12)


def test_chunked_boosting_stops_early_where_one_fit_does():
    """With early stopping on (more than 10,000 rows), a chunk that ends on the iteration
    where one fit would stop must not grow further."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from tabular_suite.compare.folds import Deadline, _boosting_stopped, fit_within

    rng = np.random.default_rng(0)
    X = rng.normal(size=(12_000, 4))
    y = X[:, 0] + rng.normal(scale=2.0, size=len(X))  # mostly noise: early stopping fires soon
    plain = HistGradientBoostingRegressor(random_state=0).fit(X, y)
    stop = plain.n_iter_
    assert stop < 100
    # A chunk ending on the stopping iteration shows no early stop in n_iter_; the check does.
    assert _boosting_stopped(HistGradientBoostingRegressor(random_state=0, max_iter=stop).fit(X, y))
    assert not _boosting_stopped(HistGradientBoostingRegressor(random_state=0, max_iter=stop - 1).fit(X, y))
    grown = HistGradientBoostingRegressor(random_state=0)
    assert fit_within(grown, X, y, Deadline(10_000)) is None
    assert grown.n_iter_ == stop and grown.max_iter == 100 and not grown.warm_start
    np.testing.assert_array_equal(grown.predict(X), plain.predict(X))


def test_in_context_predictions_in_chunks_are_the_same_and_stop_at_the_deadline():
    from tabular_suite.compare.folds import Deadline, _predict_within
    from tabular_suite.incontext import TabPFNClassifier

    X, y = _small_table(200)
    est = TabPFNClassifier(n_estimators=2, batch_rows=32, precision="fp32", num_threads=1, random_state=0)
    est.fit(X.iloc[:100], y[:100])
    whole = est.predict_proba(X.iloc[100:])
    chunked, unpredicted = _predict_within(est, X.iloc[100:], "predict_proba", Deadline(10_000))
    assert unpredicted == 0
    np.testing.assert_array_equal(chunked, whole)
    assert _predict_within(est, X.iloc[100:], "predict_proba", Deadline(-1.0)) == (None, 100)


def test_native_kernel_is_built_before_the_timed_folds(monkeypatch):
    """A first build of the attention kernel (simulated: a slow first load) happens before
    the folds start, so it is not part of AutoInt's first epoch or fit_seconds."""
    from tabular_suite.nn import native

    real_load, calls, build_seconds = native.load, [], 2.0

    def slow_first_load():
        if not calls:
            time.sleep(build_seconds)
        calls.append(time.perf_counter())
        return real_load()

    monkeypatch.setattr(native, "load", slow_first_load)
    X, y = _small_table(60)
    result = tabular_suite.compare(
        X, y, models=["autoint"], cv=2, device="cpu", time_limit=build_seconds + 2, ensemble=False, refit=False, **QUIET
    )
    assert calls, "compare did not build the native kernel for a deep model on the CPU"
    first_epochs = [history[0]["seconds"] for history in result.histories["autoint"]]
    assert first_epochs and max(first_epochs) < build_seconds


def test_gbdt_libraries_keep_to_the_time_limit():
    # Ten classes, 500 rounds of 10 trees each on 30,000 rows: far longer than 2 s per model.
    X, y = _numeric_table(30_000, 30, n_classes=10)
    models = ["lightgbm", "xgboost", "catboost"]
    result, seconds = _timed_compare(X, y, models=models, cv=2, time_limit=6, ensemble=False)
    assert seconds < 6 + GRACE
    board = result.leaderboard.set_index("model")
    for name in models:
        assert board.loc[name, "status"] == "timeout" and "boosting rounds" in board.loc[name, "error"], name
        assert board.loc[name, "folds"] >= 1 and np.isfinite(board.loc[name, "mean"]), name


def test_time_a_fast_model_leaves_goes_to_the_models_after_it():
    """Cheap models run first and a model starts with its share of the time still left: the
    linear model's unused share goes to the MLP (an equal split would give it half)."""
    X, y = _numeric_table(600, 6)
    events = []
    limit = 12.0
    result = tabular_suite.compare(
        X, y, models=["mlp", "linear"], cv=2, time_limit=limit, ensemble=False, progress=events.append,
        model_params={"mlp": {"max_epochs": 100_000, "patience": None}}, stack=False, **QUIET,
    )  # fmt: skip
    assert [e["model"] for e in events if e["event"] == "model_end"] == ["linear", "mlp"]
    board = result.leaderboard.set_index("model")
    assert board.loc["mlp", "status"] == "timeout"
    assert 2 * board.loc["mlp", "fit_seconds"] > 0.75 * limit  # about all of the time linear left
    assert "mlp_2" not in board.index  # a model its share cut short gets no further configuration
    assert result.wall_seconds < limit + 3


def test_a_deep_model_stopped_within_its_first_epochs_skips_its_other_folds():
    """Fewer than MIN_EPOCHS epochs in its first fold's time: the model's other folds are skipped
    (their time goes to the models after it), and its row says why."""
    from tabular_suite.compare.folds import MIN_EPOCHS

    X, y = _numeric_table(30_000, 8)
    result, _ = _timed_compare(X, y, models=["ft_transformer"], cv=3, time_limit=6, refit=False)
    row = result.leaderboard.set_index("model").loc["ft_transformer"]
    assert row["status"] == "timeout" and row["folds"] == 1
    assert f"other folds skipped (fewer than {MIN_EPOCHS} epochs" in row["error"]
    assert len(result.histories["ft_transformer"]) == 1 and len(result.histories["ft_transformer"][0]) < MIN_EPOCHS


def test_an_in_context_model_whose_first_fold_is_not_scored_in_time_skips_its_other_folds():
    """A fold that its budget stops before its validation rows are predicted is not scored; the
    other folds get as much time, so they are skipped and their time goes to what runs after."""
    X, y = _numeric_table(20_000, 8)
    result, seconds = _timed_compare(X, y, models=["tabpfn"], cv=2, time_limit=3, ensemble=False)
    row = result.leaderboard.set_index("model").loc["tabpfn"]
    assert row["status"] == "timeout" and row["folds"] == 0
    assert "other folds skipped (its first fold not scored in its time" in row["error"]
    assert seconds < 3 + GRACE


def test_stacking_keeps_what_its_models_took_at_level_1_once_they_ran():
    """A fifth of the limit is kept for level 2 only until LightGBM and the linear model, which
    run first, have shown what they cost: then 1.5 times that (at least 5% of the limit), and
    the models after them get the rest. (Whether level 2 then runs depends on how far the MLP's
    last batch overran its budget: on a loaded machine it may find no time left.)"""
    X, y = _numeric_table(600, 6)
    limit = 12.0
    result = tabular_suite.compare(
        X, y, models=["mlp", "linear", "lightgbm"], cv=2, time_limit=limit, ensemble=False,
        model_params={"mlp": {"max_epochs": 100_000, "patience": None}}, **QUIET,
    )  # fmt: skip
    board = result.leaderboard.set_index("model")
    assert board.loc["mlp", "status"] == "timeout"
    level1 = 2 * (board.loc["linear", "fit_seconds"] + board.loc["lightgbm", "fit_seconds"])
    # With a fifth kept to the end, the MLP's two folds would get at most 0.8 * limit - level1.
    assert 2 * board.loc["mlp", "fit_seconds"] > 0.87 * limit - level1
    assert result.wall_seconds < limit + 3
