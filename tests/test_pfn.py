"""The in-context model: prior, transformer, pre-training and the TabPFN-style estimators."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

import tabular_suite
from tabular_suite.core.model_file import write_model_file
from tabular_suite.incontext.estimator import TabPFNClassifier, TabPFNRegressor, _code_books
from tabular_suite.incontext.evaluation import real_data_callback
from tabular_suite.incontext.pretrain import PretrainConfig, export_weights, pretrain
from tabular_suite.incontext.prior import IGNORE_LABEL, SyntheticPrior
from tabular_suite.incontext.transforms import TRANSFORMS, QuantileNormal, Rotation, YeoJohnson
from tabular_suite.incontext.weights import load_weights, save_weights
from tabular_suite.nn.pfn import PFNTransformer, _row_attention, bar_mean, bar_quantile, default_bin_borders

TINY = dict(max_features=8, max_classes=4, d_model=16, n_heads=2, n_layers=2, d_ffn=32, n_bins=16)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """Random weights of a tiny model: the estimators' mechanics do not need a trained one."""
    torch.manual_seed(0)
    return str(save_weights(PFNTransformer(**TINY), tmp_path_factory.mktemp("w") / "tiny.tsm"))


# ----------------------------------------------------------------------------------- prior
def test_prior_is_seeded_by_step_and_shaped():
    prior = SyntheticPrior(max_features=30, max_classes=10, seed=3)
    a, b = prior.sample(5, 6, 128, 90), prior.sample(5, 6, 128, 90)
    assert torch.equal(torch.nan_to_num(a.x, 7.0), torch.nan_to_num(b.x, 7.0)) and torch.equal(a.y, b.y)
    c = prior.sample(6, 6, 128, 90)
    assert not torch.equal(torch.nan_to_num(a.x), torch.nan_to_num(c.x))
    assert a.x.shape == (6, 128, 30) and a.y.shape == (6, 128)
    for i in range(6):
        f, k = int(a.n_features[i]), int(a.n_classes[i])
        assert 1 <= f <= 30 and 1 <= k <= 10
        assert torch.all(a.x[i, :, f:] == 0)  # unused feature slots are zero
        train, test = a.y[i, :90], a.y[i, 90:]
        assert set(train.unique().long().tolist()) == set(range(k))  # ids 0..k-1, all in context
        assert set(test.unique().long().tolist()) <= set(range(k)) | {IGNORE_LABEL}


def test_prior_draws_varied_datasets():
    # (Its speed, once a bound here, is measured by benchmarks/suite_timings.py.)
    prior = SyntheticPrior(seed=0)
    batches = [prior.sample(s, 8, 256, 128) for s in range(20)]
    feats = torch.cat([b.n_features for b in batches])
    classes = torch.cat([b.n_classes for b in batches])
    assert feats.min() <= 3 and feats.max() >= 30  # skewed small, wide ones too
    assert (classes == 2).any() and (classes > 4).any()
    assert any(torch.isnan(b.x).any() for b in batches)  # some datasets have missing values
    # Some features are discretised into a few codes (categorical-like columns).
    few_values = sum(
        int(len(torch.unique(b.x[i, :, j])) <= 10)
        for b in batches
        for i in range(8)
        for j in range(int(b.n_features[i]))
    )
    assert few_values > 0


def test_discrete_rule_tables_hold_interactions_a_linear_model_misses():
    # A discrete_fraction of 1 draws only rule tables: codes of 2-5 levels (plus, sometimes,
    # continuous noise columns) and a target a forest finds but a linear model mostly does not.
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    prior = SyntheticPrior(max_features=12, max_classes=2, discrete_fraction=1.0, seed=1)
    forest, linear = [], []
    for step in range(12):
        batch = prior.sample(step, 1, 600, 300)
        f = int(batch.n_features[0])
        x, y = batch.x[0, :, :f].numpy(), batch.y[0].numpy()
        assert any(len(np.unique(x[:, j])) <= 5 for j in range(f))
        if (y < 0).any() or len(np.unique(y[:300])) < 2 or len(np.unique(y[300:])) < 2:
            continue
        rf = RandomForestClassifier(100, random_state=0).fit(x[:300], y[:300])
        lr = LogisticRegression(max_iter=1000).fit(x[:300], y[:300])
        forest.append(roc_auc_score(y[300:], rf.predict_proba(x[300:])[:, 1]))
        linear.append(roc_auc_score(y[300:], lr.predict_proba(x[300:])[:, 1]))
    assert len(forest) >= 6 and np.mean(forest) > np.mean(linear) + 0.03


def test_prior_without_discrete_tables_draws_the_earlier_batches():
    # discrete_fraction=0 makes no extra random draw: the shipped cycles' prior is reproducible.
    a = SyntheticPrior(seed=4).sample(3, 8, 128, 64)
    b = SyntheticPrior(seed=4, discrete_fraction=0.0).sample(3, 8, 128, 64)
    c = SyntheticPrior(seed=4, discrete_fraction=0.5).sample(3, 8, 128, 64)
    assert torch.equal(torch.nan_to_num(a.x, 7.0), torch.nan_to_num(b.x, 7.0)) and torch.equal(a.y, b.y)
    assert not torch.equal(torch.nan_to_num(a.x, 7.0), torch.nan_to_num(c.x, 7.0))


def test_prior_regression_target_is_standardised_on_training_rows():
    batch = SyntheticPrior(seed=1).sample(0, 16, 200, 150, task="regression")
    train = batch.y[:, :150]
    assert torch.allclose(train.mean(1), torch.zeros(16), atol=1e-4)
    assert torch.allclose(train.std(1, unbiased=False), torch.ones(16), atol=1e-3)
    assert batch.task == "regression"


def test_prior_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_train"):
        SyntheticPrior().sample(0, 2, 10, 10)
    with pytest.raises(ValueError, match="task"):
        SyntheticPrior().sample(0, 2, 10, 5, task="ranking")


# ----------------------------------------------------------------------------------- model
def _model():
    torch.manual_seed(0)
    return PFNTransformer(**TINY).eval()


def test_test_rows_only_see_training_rows():
    model = _model()
    x = torch.randn(2, 30, 5)
    y = torch.randint(0, 3, (2, 20)).float()
    n_classes = torch.tensor([3, 3])
    with torch.no_grad():
        full = model(x, y, n_classes)
        ctx = model.context(x[:, :20], y)
        one_by_one = torch.cat([model.predict(x[:, i : i + 1], ctx, n_classes) for i in range(20, 30)], dim=1)
        # Changing other test rows never changes a test row's prediction.
        x2 = x.clone()
        x2[:, 21:] = torch.randn(2, 9, 5) * 100
        changed = model(x2, y, n_classes)
        # Shuffling the training rows does not either (no positional information on rows).
        perm = torch.randperm(20)
        shuffled = model(torch.cat([x[:, perm], x[:, 20:]], 1), y[:, perm], n_classes)
    torch.testing.assert_close(full, one_by_one, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(full[:, 0], changed[:, 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(full, shuffled, rtol=1e-4, atol=1e-4)
    assert torch.isinf(full[..., 3:]).all() and torch.isfinite(full[..., :3]).all()


def test_padding_and_missing_values():
    model = _model()
    x = torch.randn(1, 25, 3)
    y = torch.randint(0, 2, (1, 15)).float()
    with torch.no_grad():
        padded = model(torch.nn.functional.pad(x, (0, 5)), y)
        plain = model(x, y)
        x_nan = x.clone()
        x_nan[0, ::3, 1] = float("nan")
        with_nan = model(x_nan, y)
    torch.testing.assert_close(padded, plain)
    assert torch.isfinite(with_nan[..., :2]).all()
    with pytest.raises(ValueError, match="at most 8 features"):
        model(torch.randn(1, 25, 9), y)


@pytest.mark.parametrize("kv_rows", [7, 300])
def test_cpu_bf16_inference_attention_matches_sdpa(kv_rows, monkeypatch):
    """The chunked bf16 path (chunks forced small) against fp64 SDPA, as close as the fused kernel."""
    import tabular_suite.nn.pfn as pfn

    monkeypatch.setattr(pfn, "_CPU_SCORE_CHUNK", 2 * 4 * kv_rows + 1)  # 2 query rows per chunk
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 4, n, 16, generator=g) * 1.5 for n in (41, kv_rows, kv_rows))
    exact = torch.nn.functional.scaled_dot_product_attention(q.double(), k.double(), v.double()).float()
    with torch.inference_mode():
        ours = _row_attention(q.bfloat16(), k.bfloat16(), v.bfloat16()).float()
        fused = torch.nn.functional.scaled_dot_product_attention(q.bfloat16(), k.bfloat16(), v.bfloat16()).float()
    assert ours.shape == exact.shape
    fused_error = (fused - exact).abs().mean()
    assert (ours - exact).abs().mean() < 3 * fused_error
    assert (ours - exact).abs().max() < 0.08


def test_quantile_and_power_views_match_scikit_learn():
    """The ensemble's own transforms (vectorised for speed) against scikit-learn's."""
    import warnings

    from sklearn.preprocessing import PowerTransformer, QuantileTransformer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    x[:, 1] = np.round(x[:, 1] * 2)  # ties
    x[:, 2] = np.exp(2 * x[:, 2])  # skewed
    x[:, 3] = rng.integers(0, 3, 400)  # ties at both ends
    x[rng.random(400) < 0.2, 4] = np.nan
    test = rng.normal(size=(50, 5)) * 3
    test[:3, 4] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = QuantileTransformer(output_distribution="normal", n_quantiles=200).fit(x)
    ours = QuantileNormal().fit(x)
    for data in (x, test):
        np.testing.assert_allclose(ours.transform(data), reference.transform(data), atol=1e-8)
    power = YeoJohnson().fit(x[:, :4])
    lambdas = PowerTransformer(method="yeo-johnson").fit(x[:, :4]).lambdas_
    np.testing.assert_allclose(power.lambdas_, lambdas, atol=0.02)  # a grid of step 0.025
    z = power.transform(x[:, :4])
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-9)
    assert np.isnan(YeoJohnson().fit(x).transform(test)[:3, 4]).all()


@pytest.mark.parametrize("rows", [200, 6])
def test_rotation_view_decorrelates_the_context(rows):
    rng = np.random.default_rng(0)
    level = rng.normal(size=(rows, 1)) * 100
    x = level + rng.normal(size=(rows, 10))  # 10 columns sharing one strong factor
    x[0, 3] = np.nan
    rotation = Rotation().fit(x)
    assert rotation.components_.shape == (10, 10)
    np.testing.assert_allclose(rotation.components_ @ rotation.components_.T, np.eye(10), atol=1e-8)
    z = rotation.transform(x)
    assert np.isfinite(z).all()
    cov = np.cov(z, rowvar=False)
    np.testing.assert_allclose(cov - np.diag(np.diag(cov)), 0, atol=1e-8)  # uncorrelated on the context
    assert np.all(np.diff(np.diag(cov)) <= 1e-8)  # the strongest direction first


def test_bar_distribution_statistics():
    borders = torch.tensor([0.0, 1.0, 2.0, 4.0])
    probs = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    assert torch.allclose(bar_mean(probs, borders), torch.tensor([1.0, 3.0]))
    assert torch.allclose(bar_quantile(probs, borders, 0.5), torch.tensor([1.0, 3.0]))
    assert torch.allclose(bar_quantile(probs, borders, 0.25), torch.tensor([0.5, 2.5]))
    b = default_bin_borders(96)
    assert len(b) == 97 and torch.all(b[1:] > b[:-1])


# ------------------------------------------------------------------------------ pretraining
def _cfg(steps, **kw):
    base = dict(
        steps=steps,
        max_features=8,
        d_model=16,
        n_heads=2,
        n_layers=1,
        d_ffn=32,
        n_bins=16,
        tokens_per_step=256,
        min_rows=64,
        max_rows=96,
        warmup_steps=2,
        eval_every=2,
        eval_batches=1,
        checkpoint_every=1,
        device="cpu",
        num_threads=1,
    )
    base.update(kw)
    return PretrainConfig(**base)


def test_pretraining_resumes_exactly(tmp_path):
    straight = tmp_path / "straight.pt"
    history = pretrain(_cfg(4), straight, log=lambda m: None)
    assert [s[0] for s in history["steps"]] == [1, 2, 3, 4]
    assert {"eval_classification_loss", "eval_regression_loss", "eval_accuracy"} <= set(history["evals"][-1])
    split = tmp_path / "split.pt"
    pretrain(_cfg(4), split, log=lambda m: None, time_limit=0.0)  # stops after its first step
    assert torch.load(split, weights_only=True)["step"] == 1
    messages = []
    resumed = pretrain(_cfg(4), split, log=messages.append)
    assert any("resumed" in m for m in messages)
    a = torch.load(straight, weights_only=True)["model"]
    b = torch.load(split, weights_only=True)["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
    assert [s[3] for s in resumed["steps"]] == [s[3] for s in history["steps"]]


def test_pretraining_refuses_a_different_model(tmp_path):
    ckpt = tmp_path / "run.pt"
    pretrain(_cfg(1), ckpt, log=lambda m: None)
    with pytest.raises(ValueError, match="different model"):
        pretrain(_cfg(2, d_model=32), ckpt, log=lambda m: None)


def test_pretraining_starts_from_given_weights(tmp_path):
    first = tmp_path / "first.pt"
    pretrain(_cfg(2), first, log=lambda m: None)
    weights = export_weights(first, tmp_path / "w.tsm")
    init_model, _ = load_weights(weights)
    second = tmp_path / "second.pt"
    history = pretrain(_cfg(1, lr=0.0), second, log=lambda m: None, init_weights=weights)
    assert history["init_weights"]["step"] == 2 and history["evals"][0]["step"] == 0
    trained = torch.load(second, weights_only=True)["model"]
    for name, t in init_model.state_dict().items():  # lr 0: still exactly the initial weights
        torch.testing.assert_close(trained[name], t, rtol=0, atol=0)
    with pytest.raises(ValueError, match="different model"):
        pretrain(_cfg(1, d_model=32), tmp_path / "third.pt", log=lambda m: None, init_weights=weights)


def test_export_averages_several_checkpoints(tmp_path):
    first, second, other = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "c.pt"
    pretrain(_cfg(2), first, log=lambda m: None)
    pretrain(_cfg(2, seed=1), second, log=lambda m: None)
    model, config = load_weights(export_weights([first, second], tmp_path / "soup.tsm"))
    assert config["step"] == [2, 2]
    a, b = (torch.load(c, weights_only=True)["model"] for c in (first, second))
    for name, t in model.state_dict().items():
        mean = (a[name] + b[name]) / 2
        if t.is_floating_point():  # int8 storage: within a row's quantisation step
            assert not torch.equal(a[name], b[name]) or name.endswith("bin_borders")
            torch.testing.assert_close(t, mean, rtol=0, atol=float(mean.abs().max()) / 100 + 1e-7)
    pretrain(_cfg(1, d_model=32), other, log=lambda m: None)
    with pytest.raises(ValueError, match="same model"):
        export_weights([first, other], tmp_path / "bad.tsm")
    with pytest.raises(ValueError, match="at least one"):
        export_weights([], tmp_path / "none.tsm")


def test_export_and_real_data_callback(tmp_path, mixed_frame):
    ckpt = tmp_path / "run.pt"
    df, y_cls, _ = mixed_frame
    callback = real_data_callback([("mixed", df, y_cls)], max_train_rows=60)
    history = pretrain(_cfg(2), ckpt, log=lambda m: None, callbacks=(callback,))
    figures = history["evals"][-1]
    # The figures are the ROC AUC of the model as it stands at that step, on the callback's split
    # (stratified halves, 60 context rows), recomputed here from the checkpoint written at step 2.
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from tabular_suite.incontext.weights import build_model

    state = torch.load(ckpt, weights_only=True)
    model = build_model(_cfg(2).model_config()).eval()
    model.load_state_dict(state["model"])
    X_tr, X_te, y_tr, y_te = train_test_split(df, y_cls, test_size=0.5, stratify=y_cls, random_state=0)
    X_tr, _, y_tr, _ = train_test_split(X_tr, y_tr, train_size=60, stratify=y_tr, random_state=0)
    clf = TabPFNClassifier(weights=model, n_estimators=1, random_state=0, device="cpu").fit(X_tr, y_tr)
    expected = roc_auc_score(y_te, clf.predict_proba(X_te)[:, 1])
    assert figures["step"] == state["step"] == 2
    assert (
        figures["auc_mixed"] == pytest.approx(expected, abs=1e-6) and figures["real_auc_mean"] == figures["auc_mixed"]
    )
    path = export_weights(ckpt, tmp_path / "w.tsm")
    model, config = load_weights(path)
    assert config["step"] == 2 and model.config["d_model"] == 16
    assert next(model.parameters()).dtype == torch.float32
    write_model_file(tmp_path / "other.tsm", {"estimator": "MLPRegressor"}, {})
    with pytest.raises(ValueError, match="not a PFN weights file"):
        load_weights(tmp_path / "other.tsm")


# ------------------------------------------------------------------------------- estimators
def test_classifier_on_mixed_table(tiny_weights, mixed_frame):
    df, y, _ = mixed_frame
    clf = TabPFNClassifier(weights=tiny_weights, num_threads=1, random_state=0).fit(df[:160], y[:160])
    proba = clf.predict_proba(df[160:])
    assert proba.shape == (80, 2) and np.allclose(proba.sum(1), 1)
    np.testing.assert_array_equal(clf.predict(df[160:]), clf.classes_[proba.argmax(1)])
    unseen = df[160:].assign(color="purple")  # unseen categories count as missing
    np.testing.assert_array_equal(clf.predict_proba(unseen), clf.predict_proba(df[160:].assign(color=None)))
    assert not np.allclose(clf.predict_proba(unseen), proba)
    # Chunking test rows changes nothing.
    small = clone(clf).set_params(batch_rows=7).fit(df[:160], y[:160])
    np.testing.assert_allclose(small.predict_proba(df[160:]), proba, rtol=1e-5, atol=1e-6)


def _context_must_not_run(*args, **kwargs):
    raise AssertionError("the context ran again")


def test_predict_runs_the_context_once(tiny_weights, mixed_frame, monkeypatch):
    df, y, y_reg = mixed_frame
    for est, target in ((TabPFNClassifier, y), (TabPFNRegressor, y_reg)):
        model = est(weights=tiny_weights, num_threads=1, random_state=0).fit(df[:160], target[:160])
        first = model.predict(df[160:])
        pfn_model, _ = model._pfn()
        monkeypatch.setattr(pfn_model, "context", _context_must_not_run)
        np.testing.assert_array_equal(model.predict(df[160:]), first)  # from the kept context, the same
        monkeypatch.undo()
        # A new fit (other rows) runs its own context; a pickle does not carry the kept one.
        refit = model.fit(df[:100], target[:100])
        assert not np.array_equal(refit.predict(df[160:]), first)
        assert refit._context_memo and not pickle.loads(pickle.dumps(refit))._context_memo


def test_classifier_views_subsample_large_contexts(tiny_weights):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(900, 4))
    y = np.where(X[:, 0] > 1.5, "rare", "common")
    clf = TabPFNClassifier(
        weights=tiny_weights, max_context_rows=100, n_estimators=3, num_threads=1, random_state=0
    ).fit(X, y)
    rows = [v.rows for v in clf._views]
    assert all(len(r) == 100 for r in rows)
    assert all((y[r] == "rare").any() for r in rows)  # stratified: the rare class is kept
    assert len({tuple(r) for r in rows}) == 3  # each view its own subsample
    assert clf.predict_proba(X[:10]).shape == (10, 2)


@pytest.mark.parametrize(
    "rows, max_context_rows, views",
    [(60, 1000, 16), (250, 1000, 16), (500, 1000, 8), (1000, 1000, 4), (3000, 1000, 4), (3000, 200, 16)],
)
def test_auto_ensemble_spends_a_budget_of_context_rows(tiny_weights, rows, max_context_rows, views):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 3))
    clf = TabPFNClassifier(weights=tiny_weights, max_context_rows=max_context_rows, num_threads=1).fit(X, X[:, 0] > 0)
    assert clf.n_views_ == views


def test_auto_views_share_out_the_transforms_scored_on_the_table(tiny_weights):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=300) > 0
    est = TabPFNClassifier(weights=tiny_weights, num_threads=1, random_state=0).fit(X, y)
    weights = est.transform_weights_
    assert list(weights) == list(TRANSFORMS) and np.isclose(sum(weights.values()), 1, atol=1e-5)
    assert len(est.view_transforms_) == est.n_views_ == 13
    assert [v.transform for v in est._views] == list(est.view_transforms_)
    for name, w in weights.items():  # about w x n_views views each
        assert abs(est.view_transforms_.count(name) - w * est.n_views_) <= 1
    # Its own random stream: the views' permutations and subsamples are those of a cycling ensemble.
    cycled = TabPFNClassifier(weights=tiny_weights, n_estimators=13, num_threads=1, random_state=0).fit(X, y)
    assert cycled.transform_weights_ is None and cycled.view_transforms_ == tuple(TRANSFORMS * 4)[:13]
    assert all((a.columns == b.columns).all() for a, b in zip(est._views, cycled._views))


def test_transforms_cycle_where_not_scored(tiny_weights):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(900, 3))
    big = TabPFNClassifier(weights=tiny_weights, num_threads=1).fit(X, X[:, 0] > 0)  # > 800 rows: 4 views
    assert big.transform_weights_ is None and big.view_transforms_ == TRANSFORMS
    codes = pd.DataFrame({"a": rng.choice(list("xyz"), 90), "b": rng.choice(list("pq"), 90)})
    only_categorical = TabPFNClassifier(weights=tiny_weights, num_threads=1).fit(codes, np.arange(90) % 2)
    assert only_categorical.transform_weights_ is None  # transforms act on numeric columns only
    tiny = TabPFNClassifier(weights=tiny_weights, num_threads=1).fit(X[:20], np.arange(20) % 2)
    assert tiny.transform_weights_ is None  # too few rows to hold a third out
    regressor = TabPFNRegressor(weights=tiny_weights, num_threads=1).fit(X[:300], X[:300, 0])
    assert regressor.transform_weights_ is None and regressor.view_transforms_ == tuple(TRANSFORMS * 4)[:13]


def test_classifier_views_cover_wide_tables(tiny_weights):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 20))
    y = (X[:, 19] > 0).astype(int)
    clf = TabPFNClassifier(weights=tiny_weights, n_estimators=2, num_threads=1, random_state=0).fit(X, y)
    assert clf.n_views_ >= 3  # 20 columns over 8 slots
    assert all(len(v.columns) == 8 for v in clf._views)
    assert set(np.concatenate([v.columns for v in clf._views])) == set(range(20))
    assert clf.predict_proba(X).shape == (60, 2)


def test_classifier_with_more_classes_than_the_model(tiny_weights):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(180, 3))
    y = np.repeat(np.arange(9), 20)
    clf = TabPFNClassifier(weights=tiny_weights, num_threads=1, random_state=0).fit(X, y)
    books = np.stack([v.label_map for v in clf._views])
    assert books.max() < 4
    separated = (books[:, :, None] != books[:, None, :]).any(0)
    assert separated[~np.eye(9, dtype=bool)].all()  # every pair of classes told apart
    proba = clf.predict_proba(X[:5])
    assert proba.shape == (5, 9) and np.allclose(proba.sum(1), 1)


def test_code_books_are_balanced():
    books = _code_books(np.random.default_rng(0), 25, 10, 4)
    assert len(books) >= 4
    for book in books:
        assert np.bincount(book, minlength=10).max() - np.bincount(book, minlength=10).min() <= 1


def test_classifier_errors(tiny_weights):
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="only one class"):
        TabPFNClassifier(weights=tiny_weights).fit(X, np.zeros(20))
    with pytest.raises(ValueError, match="rows"):
        TabPFNClassifier(weights=tiny_weights).fit(X, np.arange(19) % 2)
    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        TabPFNClassifier(weights=tiny_weights).fit(X_inf, np.arange(20) % 2)
    with pytest.raises(ValueError, match="does not exist"):
        TabPFNClassifier(weights="/nonexistent/w.tsm").fit(X, np.arange(20) % 2)
    for bad in (0, "many", 2.0):
        with pytest.raises(ValueError, match="n_estimators must be a positive integer or 'auto'"):
            TabPFNClassifier(weights=tiny_weights, n_estimators=bad).fit(X, np.arange(20) % 2)
    clf = TabPFNClassifier(weights=tiny_weights, num_threads=1).fit(X, np.arange(20) % 2)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :2])


def test_save_load_and_pickle(tiny_weights, mixed_frame, tmp_path):
    df, y, y_reg = mixed_frame
    clf = TabPFNClassifier(weights=tiny_weights, num_threads=1, random_state=0).fit(df, y)
    path = tmp_path / "clf.tsm"
    clf.save(path)
    loaded = tabular_suite.load(path)
    assert isinstance(loaded, TabPFNClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(df), clf.predict_proba(df))
    assert loaded.view_transforms_ == clf.view_transforms_ and loaded.transform_weights_ == clf.transform_weights_
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(df), clf.predict_proba(df))
    reg = TabPFNRegressor(weights=tiny_weights, num_threads=1, random_state=0).fit(df, y_reg)
    reg.save(tmp_path / "reg.tsm")
    np.testing.assert_array_equal(tabular_suite.load(tmp_path / "reg.tsm").predict(df), reg.predict(df))


def test_regressor_quantiles(tiny_weights, mixed_frame):
    df, _, y = mixed_frame
    reg = TabPFNRegressor(weights=tiny_weights, num_threads=1, random_state=0).fit(df[:160], y[:160])
    q = reg.predict_quantiles(df[160:], [0.1, 0.5, 0.9])
    assert q.shape == (80, 3) and np.all(np.diff(q, axis=1) >= 0)
    mean = reg.predict(df[160:])
    assert mean.shape == (80,) and np.isfinite(mean).all()
    # The target is standardised inside: a target in other units gives the same predictions in those units.
    rescaled = TabPFNRegressor(weights=tiny_weights, num_threads=1, random_state=0).fit(df[:160], 0.01 * y[:160] - 7)
    np.testing.assert_allclose(rescaled.predict(df[160:]), 0.01 * mean - 7, rtol=1e-4, atol=1e-4 * y.std() * 0.01)
    np.testing.assert_allclose(
        rescaled.predict_quantiles(df[160:], [0.1, 0.5, 0.9]), 0.01 * q - 7, rtol=1e-4, atol=1e-4 * y.std() * 0.01
    )
    with pytest.raises(ValueError, match="quantiles"):
        reg.predict_quantiles(df[:2], [0.5, 1.0])


# ---------------------------------------------------------------------- the shipped weights
def test_shipped_weights_classify_a_real_table():
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import roc_auc_score

    X, y = load_breast_cancer(return_X_y=True)
    clf = TabPFNClassifier(num_threads=1, random_state=0).fit(X[::2], y[::2])
    assert roc_auc_score(y[1::2], clf.predict_proba(X[1::2])[:, 1]) > 0.97


def test_shipped_weights_on_a_wide_table():
    """1,000 x 100 table, 1,000 test rows, default ensemble, one thread: 4 views of every column,
    the transforms in turn. (Its fit + predict time is measured in benchmarks/pfn.py.)"""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 100)).astype(np.float32)
    y = (X[:, :5].sum(1) > 0).astype(int)
    clf = TabPFNClassifier(num_threads=1, random_state=0).fit(X[:1000], y[:1000])
    assert clf.n_views_ == 4 and clf.view_transforms_ == TRANSFORMS
    assert all(len(v.columns) == 100 for v in clf._views)
    assert roc_auc_score(y[1000:], clf.predict_proba(X[1000:])[:, 1]) > 0.85  # 0.88 measured; chance is 0.5


def test_compact_weights_are_a_byte_per_parameter_and_close():
    from tabular_suite.incontext.weights import compact_tensors, model_from_tensors

    torch.manual_seed(0)
    model = PFNTransformer(max_features=16, d_model=64, n_heads=4, n_layers=2, d_ffn=128).eval()
    tensors = compact_tensors(model)
    n_bytes = sum(t.numel() * t.element_size() for t in tensors.values())
    n_params = sum(p.numel() for p in model.parameters())
    assert n_bytes < 1.2 * n_params
    restored = model_from_tensors(model.config, tensors)
    x, y = torch.randn(2, 50, 16), torch.randint(0, 3, (2, 40)).float()
    with torch.no_grad():
        torch.testing.assert_close(
            restored(x, y, torch.tensor([3, 3])), model(x, y, torch.tensor([3, 3])), rtol=0.05, atol=0.05
        )
    # Compacting already-compact weights changes nothing (saved estimators reload exactly).
    again = compact_tensors(restored)
    assert all(torch.equal(again[k], tensors[k]) for k in tensors)
