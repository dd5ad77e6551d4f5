"""What compare fits on the out-of-fold predictions: calibration, the decision threshold and
prediction intervals; and that the saved model keeps them."""

import re

import numpy as np
import pandas as pd
import pytest

import tabular_suite
from tabular_suite.compare.calibration import fit_calibrator, reliability, tune_threshold
from tabular_suite.compare.metrics import get_metric


def _overconfident(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    p1 = rng.uniform(0.02, 0.98, n)
    y = (rng.uniform(size=n) < p1).astype(int)
    sharp = p1**3 / (p1**3 + (1 - p1) ** 3)  # the same ranking, pushed toward 0 and 1
    return np.column_stack([1 - sharp, sharp]), y


@pytest.mark.parametrize("method", ["temperature", "isotonic"])
def test_calibrators_lower_the_log_loss_and_the_ece_of_overconfident_probabilities(method):
    proba, y = _overconfident()
    log_loss = get_metric("log_loss", "classification")
    cal = fit_calibrator(method, proba[:1500], y[:1500])
    test, after = proba[1500:], cal.transform(proba[1500:])
    assert log_loss.value(y[1500:], after) < log_loss.value(y[1500:], test) - 0.02
    assert reliability(after, y[1500:])["ece"] < reliability(test, y[1500:])["ece"] / 2
    np.testing.assert_allclose(after.sum(axis=1), 1.0)
    if method == "temperature":
        assert cal.temperature > 2  # about 3: the cube above
        assert (after.argmax(1) == test.argmax(1)).all()


def test_threshold_tuning_finds_the_balanced_accuracy_optimum():
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=4000) < 0.1).astype(int)
    p1 = np.clip(0.1 + 0.25 * y + rng.normal(0, 0.1, 4000), 0.001, 0.999)  # positives rarely pass 0.5
    metric = get_metric("balanced_accuracy", "classification")
    t, at_t, at_half = tune_threshold(np.column_stack([1 - p1, p1]), y, metric)
    assert 0.15 < t < 0.35  # halfway between the class means 0.1 and 0.35
    assert at_t > at_half + 0.2


def _imbalanced(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + rng.normal(0, 1.0, n) > 1.5).astype(int)
    return X, y


def test_compare_tunes_the_threshold_for_balanced_accuracy_and_the_model_uses_it(tmp_path):
    X, y = _imbalanced()
    result = tabular_suite.compare(
        X, y, models=["linear"], metric="balanced_accuracy", cv=3, num_threads=1, tracking=False, ensemble=False
    )
    info = result.postprocessing["threshold"]
    assert info["applied"] and info["threshold"] < 0.4
    assert info["cross_fitted_score"] > info["cross_fitted_score_at_0.5"]
    model = result.best_model_
    proba = model.predict_proba(X)
    np.testing.assert_array_equal(model.predict(X), (proba[:, 1] >= model.threshold).astype(int))
    # `evaluate`'s metrics score the model's own decisions (the threshold), not the most probable class.
    from tabular_suite.batch import metrics_of

    assert metrics_of(model, y, proba)["accuracy"] == np.mean(model.predict(X) == y)
    assert np.mean(model.predict(X) == y) != np.mean(proba.argmax(1) == y)
    with pytest.warns(UserWarning, match=r"1 row\(s\) have labels the model was not trained on \(7\)"):
        assert "log_loss" not in metrics_of(model, np.where(np.arange(len(y)) == 0, 7, y), proba)
    model.save(tmp_path / "m.tsm")
    loaded = tabular_suite.load(tmp_path / "m.tsm", trusted=True)
    assert loaded.threshold == model.threshold and repr(loaded.calibrator) == repr(model.calibrator)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # decision_threshold=None keeps the most probable class
    plain = tabular_suite.compare(
        X, y, models=["linear"], metric="balanced_accuracy", cv=3, num_threads=1, tracking=False, ensemble=False,
        decision_threshold=None,
    )  # fmt: skip
    assert plain.best_model_.threshold is None and "threshold" not in plain.postprocessing


def test_the_reports_confusion_matrix_decides_as_the_model_does():
    """Calibrated, then cut at the tuned threshold (both fitted on the out-of-fold predictions):
    the report's confusion matrix counts the decisions the saved model makes, not a cut of the
    uncalibrated probabilities."""
    from sklearn.metrics import confusion_matrix

    from tabular_suite.compare.report import _classification_diagnostics

    X, y = _imbalanced()
    result = tabular_suite.compare(
        X, y, models=["linear"], metric="balanced_accuracy", calibrate="isotonic", cv=3, num_threads=1,
        tracking=False, ensemble=False,
    )  # fmt: skip
    model, raw = result.best_model_, result.oof_predictions["linear"]
    assert result.postprocessing["threshold"]["applied"] and model.calibrator is not None
    decided = (model.calibrator.transform(raw)[:, 1] >= model.threshold).astype(int)
    assert (decided != (raw[:, 1] >= model.threshold)).any()  # (the two cuts differ on this table)
    html = _classification_diagnostics(result, "linear")
    matrix = html[html.index("class='matrix'") : html.index("</table>")]
    shown = [int(v) for v in re.findall(r"<td>(\d+)</td>", matrix)]
    assert shown == confusion_matrix(result.oof_target, decided).ravel().tolist()


def test_compare_calibration_settings():
    X, y = _imbalanced(n=400)
    kw = dict(models=["random_forest"], cv=3, num_threads=1, tracking=False, ensemble=False)
    iso = tabular_suite.compare(X, y, calibrate="isotonic", **kw)
    cal = iso.postprocessing["calibration"]
    assert cal["method"] == "isotonic" and cal["applied"] and iso.best_model_.calibrator.method == "isotonic"
    assert len(cal["before"]["rows"]) == 10 and sum(cal["after"]["rows"]) == len(y)
    none = tabular_suite.compare(X, y, calibrate=None, **kw)
    assert none.best_model_.calibrator is None and "method" not in none.postprocessing["calibration"]
    auto = tabular_suite.compare(X, y, **kw)  # "auto": applied exactly when it helped on held-out folds
    cal = auto.postprocessing["calibration"]
    assert cal["applied"] == (cal["log_loss_after"] < cal["log_loss_before"])
    with pytest.raises(ValueError, match="calibrate must be"):
        tabular_suite.compare(X, y, calibrate="platt", **kw)
    with pytest.raises(ValueError, match="decision_threshold must be"):
        tabular_suite.compare(X, y, decision_threshold=1.5, **kw)


def test_compare_regression_intervals_cover_new_rows(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 3))
    y = 2 * X[:, 0] + rng.normal(0, 1.0, 1500)
    result = tabular_suite.compare(X[:1000], y[:1000], models=["linear"], cv=5, num_threads=1, tracking=False)
    lower, upper = result.predict_interval(X[1000:], coverage=0.9)
    covered = ((y[1000:] >= lower) & (y[1000:] <= upper)).mean()
    assert 0.85 < covered < 0.95
    assert result.postprocessing["intervals"]["width"] == pytest.approx(2 * 1.645, rel=0.15)
    q = result.predict_quantiles(X[1000:], [0.1, 0.5, 0.9])
    assert (np.diff(q, axis=1) > 0).all()
    result.save(tmp_path / "r.tsm")
    loaded = tabular_suite.load(tmp_path / "r.tsm", trusted=True)
    np.testing.assert_allclose(loaded.predict_interval(X[1000:], 0.9)[1], upper)
    with pytest.raises(ValueError, match="coverage"):
        result.predict_interval(X, coverage=90)


def _signal_table(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "noise": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n)})
    y = np.where(X["a"] + 1.5 * (X["c"] == "x") + rng.normal(0, 0.3, n) > 0.5, "p", "n")
    return X, y


def test_feature_importance_ranks_the_signal_out_of_fold_and_on_given_rows():
    X, y = _signal_table()
    result = tabular_suite.compare(X, y, models=["linear", "random_forest"], cv=3, num_threads=1, tracking=False)
    oof = result.feature_importance()
    assert oof.index.tolist()[-1] == "noise" and oof.loc["a", "importance"] > 0.1
    assert abs(oof.loc["noise", "importance"]) < 0.03 and oof.attrs["model"] == result.leaderboard["model"].iloc[0]
    for model in ("linear", "random_forest", "ensemble"):
        given = result.feature_importance(X, y, model=model, n_repeats=2)
        assert given.index[-1] == "noise" and (given["n_repeats"] == 2).all()
    # out-of-fold importance is on rows the models did not train on: the forest's own training
    # rows flatter it (it fits them almost perfectly), so its out-of-fold drop is the honest one
    assert result.feature_importance(model="random_forest").attrs["score"] < 0.99
    with pytest.raises(ValueError, match="scored rows"):
        result.feature_importance(model="xgboost")
    with pytest.raises(ValueError, match="never saw"):
        result.feature_importance(X, np.where(y == "p", "P", "n"))


def test_feature_importance_needs_the_fold_models_or_data():
    X, y = _signal_table(n=120)
    result = tabular_suite.compare(X, y, models=["linear"], cv=2, refit=True, num_threads=1, tracking=False)
    with pytest.raises(ValueError, match="bag=True"):
        result.feature_importance()
    assert result.feature_importance(X, y).index[-1] == "noise"
