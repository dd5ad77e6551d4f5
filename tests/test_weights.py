"""sample_weight and class_weight: every estimator takes them, they change what is learned, and bad
weights are clear errors."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import tabular_suite
from tabular_suite.training.engine import weighted_mean

# Tiny settings per model: each fit here only has to show that the weights reach the loss.
_TINY = {
    "mlp": dict(d_block=16, n_blocks=1),
    "resnet": dict(d_block=16, n_blocks=1),
    "ft_transformer": dict(d_token=8, n_heads=2, n_blocks=1),
    "excelformer": dict(d_token=8, n_heads=2, n_blocks=1, warmup_epochs=0),
    "tabm": dict(k=4, d_block=16, n_blocks=1),
    "autoint": dict(embedding_dim=4, attention_layers=1, attention_dim=4),
    "finalmlp": dict(embedding_dim=4, mlp1_hidden=(8,), mlp2_hidden=(8,), gate_hidden=(8,), n_heads=2),
    "activator": dict(d_token=8, d_hidden=16, n_blocks=1),
    "hourglass_mlp": dict(d_wide=16, d_narrow=8, n_blocks=1),
    "kan": dict(d_block=8, n_blocks=1),
}


def _flipped(seed=0, n=300):
    """Two tables in one: clean rows (label = sign of x0) and as many corrupted rows (label
    flipped); a fit that ignores the corrupted rows' weight 0 learns the clean rule."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2 * n, 2))
    clean = (X[:, 0] > 0).astype(int)
    y = np.concatenate([clean[:n], 1 - clean[n:]])
    weight = np.concatenate([np.ones(n), np.zeros(n)])
    return X, y, clean, weight


def test_weighted_mean_is_the_plain_mean_without_weights():
    values = torch.tensor([1.0, 2.0, 6.0])
    assert float(weighted_mean(values, None)) == 3.0
    assert float(weighted_mean(values, torch.tensor([0.0, 1.5, 1.5]))) == pytest.approx(4.0)


@pytest.mark.parametrize("name", ["mlp", "excelformer", "tabm", "finalmlp"])
def test_zero_weight_rows_are_not_learned(name):
    """Half the rows have flipped labels: with weight 0 on them the model learns the clean rule,
    without weights it cannot (the two halves cancel). Covers the plain loss and the batch
    strategies that compute their own losses (ExcelFormer's mixing, TabM's members, CTR's L2)."""
    X, y, clean, weight = _flipped()
    params = dict(max_epochs=30, patience=None, batch_size=32, num_threads=1, random_state=0, **_TINY[name])
    if name == "finalmlp":
        params["embedding_l2"] = 1e-6
    weighted = tabular_suite.make_estimator(name, "classification", **params).fit(X, y, sample_weight=weight)
    plain = tabular_suite.make_estimator(name, "classification", **params).fit(X, y)
    assert (weighted.predict(X) == clean).mean() > 0.85
    assert (plain.predict(X) == clean).mean() < 0.8


def test_class_weight_balanced_raises_the_minority_recall():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 3))
    y = (X[:, 0] + rng.normal(0, 1.0, 600) > 1.6).astype(int)  # about 8% positives, noisy
    params = dict(max_epochs=40, num_threads=1, random_state=0, d_block=32, n_blocks=1)
    plain = tabular_suite.MLPClassifier(**params).fit(X, y)
    balanced = tabular_suite.MLPClassifier(class_weight="balanced", **params).fit(X, y)
    recall = [(m.predict(X)[y == 1] == 1).mean() for m in (plain, balanced)]
    assert recall[1] > recall[0] + 0.2
    # {class: weight} means the same as "balanced" when it gives the balanced weights
    counts = np.bincount(y)
    as_dict = tabular_suite.MLPClassifier(class_weight={0: len(y) / (2 * counts[0]), 1: len(y) / (2 * counts[1])})
    as_dict.set_params(**params).fit(X, y)
    np.testing.assert_allclose(as_dict.predict_proba(X), balanced.predict_proba(X), atol=1e-5)


def test_uniform_weights_give_the_unweighted_model_exactly():
    X, y, _, _ = _flipped(n=100)
    params = dict(max_epochs=3, num_threads=1, random_state=0)
    plain = tabular_suite.ResNetRegressor(**params).fit(X, X[:, 0])
    same = tabular_suite.ResNetRegressor(**params).fit(X, X[:, 0], sample_weight=np.full(len(X), 4.0))
    np.testing.assert_array_equal(plain.predict(X), same.predict(X))


def test_regressor_weights_pull_the_fit_toward_heavy_rows():
    """A constant-feature regression learns the weighted mean of the target."""
    X = np.zeros((400, 1))
    y = np.r_[np.zeros(200), np.ones(200)]
    w = np.r_[np.ones(200), np.full(200, 3.0)]
    reg = tabular_suite.MLPRegressor(max_epochs=60, patience=None, num_threads=1, random_state=0, lr=3e-3)
    pred = reg.fit(X, y, sample_weight=w).predict(X[:1])[0]
    assert pred == pytest.approx(0.75, abs=0.08)  # unweighted: 0.5


def test_validation_loss_and_eval_set_are_weighted():
    X, y, clean, weight = _flipped(n=150)
    clf = tabular_suite.MLPClassifier(max_epochs=2, num_threads=1, random_state=0)
    clf.fit(X, y, eval_set=(X, y, weight))
    unweighted_val = tabular_suite.MLPClassifier(max_epochs=2, num_threads=1, random_state=0).fit(X, y, eval_set=(X, y))
    assert clf.history_[0]["val_loss"] != unweighted_val.history_[0]["val_loss"]


def test_partial_fit_takes_weights():
    X, y, clean, weight = _flipped()
    clf = tabular_suite.MLPClassifier(num_threads=1, random_state=0, d_block=16, n_blocks=1, batch_size=32)
    for _ in range(25):
        clf.partial_fit(X, y, classes=[0, 1], sample_weight=weight)
    assert (clf.predict(X) == clean).mean() > 0.85


@pytest.mark.parametrize(
    ("name", "task"), [(n, t) for n in sorted(_TINY) for t in tabular_suite.get_model(n).tasks]
)  # every registered estimator (tests/test_sklearn_checks.py keeps _TINY's list complete by the same names)
def test_every_tabular_estimator_takes_sample_weight(name, task):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=80), "b": rng.choice(["x", "y"], 80)})
    y = (X["a"] > 0).astype(int) if task == "classification" else X["a"].to_numpy()
    est = tabular_suite.make_estimator(name, task, max_epochs=2, num_threads=1, random_state=0, **_TINY[name])
    est.fit(X, y, sample_weight=rng.uniform(0.5, 2.0, 80))
    assert np.isfinite(est.history_[-1]["train_loss"])


def test_in_context_contexts_are_drawn_by_weight_and_survive_save(tmp_path):
    X, y, clean, weight = _flipped(n=200)
    clf = tabular_suite.TabPFNClassifier(num_threads=1, random_state=0, precision="fp32", n_estimators=4)
    clf.fit(X, y, sample_weight=weight)
    assert all((view.rows < 200).all() for view in clf._views)  # only the weighted rows are drawn
    assert (clf.predict(X) == clean).mean() > 0.9
    clf.save(tmp_path / "pfn.tsm")
    np.testing.assert_array_equal(tabular_suite.load(tmp_path / "pfn.tsm").predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(sample_weight=-np.ones(50)), ">= 0"),
        (dict(sample_weight=np.r_[np.ones(49), np.nan]), "finite"),
        (dict(sample_weight=np.ones(10)), "10 values but y has 50"),
        (dict(sample_weight=np.zeros(50)), "weight zero"),
    ],
)
def test_bad_sample_weights_are_clear_errors(kwargs, message):
    X, y = np.random.default_rng(0).normal(size=(50, 2)), np.arange(50) % 2
    for est in (tabular_suite.MLPClassifier(max_epochs=1), tabular_suite.TabPFNClassifier()):
        with pytest.raises(ValueError, match=message):
            est.fit(X, y, **kwargs)


def test_bad_class_weights_are_clear_errors():
    X, y = np.random.default_rng(0).normal(size=(50, 2)), np.arange(50) % 2
    # A key that is no class of y (a typo, or a class a cross-validation fold lacks): left out, said
    # (scikit-learn leaves it out silently); partial_fit's chunks judge it by the classes given.
    with pytest.warns(UserWarning, match=r"class_weight names \[7\], not a class of y"):
        tabular_suite.MLPClassifier(max_epochs=1, class_weight={7: 2.0}).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for weights in ({0: 1.0, 1: 1.0, 2: 5.0}, {2: 5.0}):  # (class 2: not in this chunk)
            tabular_suite.MLPClassifier(max_epochs=1, class_weight=weights).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="'balanced', a dict"):
        tabular_suite.MLPClassifier(max_epochs=1, class_weight="auto").fit(X, y)
    with pytest.raises(ValueError, match="class_weight is for classifiers"):
        tabular_suite.MLPRegressor(max_epochs=1, class_weight="balanced").fit(X, y * 1.0)
    with pytest.raises(ValueError, match="class_weight is for classifiers"):
        tabular_suite.TabPFNRegressor(class_weight="balanced").fit(X, y * 1.0)


@pytest.mark.parametrize("time_limit", [None, 600.0])  # one fit, or the bounded fits (chunks, callbacks)
def test_compare_trains_every_model_with_the_weights(time_limit):
    """Zero weight on the corrupted half: every model's out-of-fold predictions follow the clean
    rule, through each kind of fit (deep, pipelines of scikit-learn and GBDT models); the
    weight column named by sample_weight is not a feature."""
    X, y, clean, weight = _flipped(n=150)
    df = pd.DataFrame(X, columns=["a", "b"]).assign(w=weight)
    models = ["mlp", "linear", "random_forest", "hist_gradient_boosting", "lightgbm", "xgboost", "catboost"]
    result = tabular_suite.compare(
        df, y, models=models, sample_weight="w", cv=2, num_threads=1, tracking=False, time_limit=time_limit,
        model_params={"mlp": {"batch_size": 32}}, portfolio=False, bag_sets=1,  # first configurations: one fit each
    )  # fmt: skip
    assert result.data_summary["columns"] == 2
    board = result.leaderboard.set_index("model")
    assert (board.loc[models, "status"] == "ok").all(), board[["status", "error"]]
    follows_clean = {m: (result.oof_predictions[m].argmax(1) == clean).mean() for m in models}
    assert min(follows_clean.values()) > 0.85, follows_clean
    assert (result.predict(df.drop(columns="w")) == clean).mean() > 0.85


def test_compare_weights_are_checked():
    X, y, _, weight = _flipped(n=30)
    with pytest.raises(ValueError, match="not a column of X"):
        tabular_suite.compare(pd.DataFrame(X), y, sample_weight="w", models=["linear"], tracking=False)
    with pytest.raises(ValueError, match=">= 0"):
        tabular_suite.compare(X, y, sample_weight=-weight, models=["linear"], tracking=False)
    with pytest.raises(ValueError, match="class_weight is for classification"):
        tabular_suite.compare(X, X[:, 0], class_weight="balanced", models=["linear"], tracking=False)
