"""TabM (Gorishniy et al. 2025) and the numeric feature embeddings (Gorishniy et al. 2022)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss

import tabular_suite
from conftest import FAST
from tabular_suite import TabMClassifier, TabMRegressor, load
from tabular_suite.nn.num_embeddings import (
    PeriodicEmbeddings,
    PiecewiseLinearEmbeddings,
    compute_bins,
)
from tabular_suite.nn.tabm import TabM, ensemble_logits
from tabular_suite.training.engine import _param_groups, predict_module

TINY = dict(k=4, d_block=16, **FAST)


def _inputs(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g), torch.randint(0, 2, (n, 1), generator=g)


def test_tabm_members_are_batch_ensemble_mlps():
    """Member i computes relu(((h * r_i) W^T) * s_i + b_i) per block, then its own head."""
    torch.manual_seed(0)
    m = TabM(n_num=3, cardinalities=[2], d_out=2, k=4, d_block=8, n_blocks=2, dropout=0.0).eval()
    with torch.no_grad():  # move every adapter away from its initial value
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x_num, x_cat = _inputs()
    out = m(x_num, x_cat)
    assert out.shape == (5, 4, 2)
    x = torch.cat([x_num, F.one_hot(x_cat[:, 0], 2).float()], dim=1)
    for i in range(4):
        h = x
        for layer in (m.blocks[0], m.blocks[3]):
            h = torch.relu((h * layer.r[i]) @ layer.weight.T * layer.s[i] + layer.bias[i])
        expected = h @ m.head.weight[i] + m.head.bias[i]
        torch.testing.assert_close(out[:, i], expected, rtol=1e-5, atol=1e-5)


def test_tabm_initialisation_follows_the_official_code():
    torch.manual_seed(0)
    m = TabM(n_num=3, cardinalities=[2], d_out=1, k=6, d_block=8)
    first, second = m.blocks[0], m.blocks[3]
    # First input scaling: random signs, one draw per feature (the categorical's two one-hot entries agree).
    assert set(first.r.unique().tolist()) == {-1.0, 1.0}
    torch.testing.assert_close(first.r[:, 3], first.r[:, 4])
    assert not torch.equal(first.r[:, 0], first.r[:, 1]) or not torch.equal(first.r[:, 1], first.r[:, 2])
    assert torch.equal(first.s, torch.ones_like(first.s)) and torch.equal(second.r, torch.ones_like(second.r))
    assert torch.equal(first.bias, first.bias[:1].expand_as(first.bias))  # one draw shared by the members
    emb = TabM(n_num=3, cardinalities=[], d_out=1, k=6, d_block=8, num_embeddings="periodic")
    assert len(emb.blocks) == 6  # n_blocks "auto": 2 with embeddings (TabM.make)
    assert not set(emb.blocks[0].r.unique().tolist()) <= {-1.0, 1.0}  # normal draws with embeddings


def test_tabm_mini_and_packed():
    x_num, x_cat = _inputs()
    mini = TabM(n_num=3, cardinalities=[2], d_out=1, k=4, d_block=8, arch_type="tabm-mini").eval()
    assert isinstance(mini.blocks[0], torch.nn.Linear) and mini.input_scaling.shape == (4, 5)
    packed = TabM(n_num=3, cardinalities=[2], d_out=1, k=4, d_block=8, arch_type="tabm-packed").eval()
    before = packed(x_num, x_cat)
    with torch.no_grad():
        packed.blocks[0].weight[2] += 1.0  # member 2's first layer only
    after = packed(x_num, x_cat)
    changed = (after - before).abs().amax(dim=(0, 2)) > 1e-6
    assert changed.tolist() == [False, False, True, False]
    with pytest.raises(ValueError, match="arch_type must be one of"):
        TabM(n_num=3, cardinalities=[], d_out=1, arch_type="tabm-huge")


def test_ensemble_logits_are_the_mean_probability():
    out = torch.randn(7, 5, 3) * 4
    torch.testing.assert_close(torch.softmax(ensemble_logits(out, "multiclass"), -1), torch.softmax(out, -1).mean(1))
    torch.testing.assert_close(
        torch.sigmoid(ensemble_logits(out[..., :1], "binary")), torch.sigmoid(out[..., :1]).mean(1)
    )
    torch.testing.assert_close(ensemble_logits(out, "regression"), out.mean(1))


def test_tabm_estimators_predict_the_members_mean(mixed_frame):
    df, y_cls, y_reg = mixed_frame
    clf = TabMClassifier(**TINY).fit(df, y_cls)
    members = predict_module(clf.module_, clf._tensors(clf.preprocessor_.transform(df)), num_threads=1)
    assert members.shape == (len(df), 4, 1)
    np.testing.assert_allclose(clf.predict_proba(df)[:, 1], torch.sigmoid(members).mean(1)[:, 0], rtol=1e-5)
    reg = TabMRegressor(**TINY).fit(df, y_reg)
    members = predict_module(reg.module_, reg._tensors(reg.preprocessor_.transform(df)), num_threads=1)
    expected = reg._target_scaler.inverse_transform(members.mean(1)[:, 0].numpy().astype(np.float64))
    np.testing.assert_allclose(reg.predict(df), expected, rtol=1e-5)
    three = np.array(["a", "b", "c"])[np.arange(len(df)) % 3]
    multi = TabMClassifier(**TINY).fit(df, three)
    members = predict_module(multi.module_, multi._tensors(multi.preprocessor_.transform(df)), num_threads=1)
    np.testing.assert_allclose(multi.predict_proba(df), torch.softmax(members, -1).mean(1), rtol=1e-5, atol=1e-7)


def test_tabm_trains_members_on_their_mean_loss_and_stops_on_the_ensemble(mixed_frame):
    df, y, _ = mixed_frame
    clf = TabMClassifier(**{**TINY, "max_epochs": 6}).fit(df[:160], y[:160], eval_set=(df[160:], y[160:]))
    # Validation (early stopping) scores the ensemble: the restored best epoch's loss is its log loss.
    best = next(h for h in clf.history_ if h["epoch"] == clf.best_epoch_)
    assert best["val_loss"] == pytest.approx(log_loss(y[160:], clf.predict_proba(df[160:])), rel=1e-4)
    # Training: the mean of the members' own losses, not the loss of their mean.
    objective = clf._training_objective()
    *inputs, target = clf._tensors(clf.preprocessor_.transform(df[:32]), clf._encode_target(y[:32]))
    clf.module_.eval()  # no dropout: both sides see the same outputs
    loss = objective.train_loss(clf.module_, inputs, target)
    members = clf.module_(*inputs)[..., 0]
    expected = torch.stack([F.binary_cross_entropy_with_logits(members[:, i], target) for i in range(4)]).mean()
    torch.testing.assert_close(loss, expected)
    assert not torch.isclose(loss, objective.loss(clf.module_(*inputs), target))


def test_tabm_with_monitor_score_keeps_the_epoch_of_the_best_validation_score_as_the_official_code(mixed_frame):
    """bin/model.py keeps the first epoch of the highest validation accuracy (RMSE for regression)
    of the members' mean prediction and stops 16 epochs later: monitor="score". The default
    follows the loss (measured better on small tables: benchmarks/RESULTS.md)."""
    df, y, _ = mixed_frame
    clf = TabMClassifier(**{**TINY, "max_epochs": 12, "patience": 3, "lr": 2e-2, "monitor": "score"})
    clf.fit(df[:160], y[:160], eval_set=(df[160:], y[160:]))
    accuracies = [h["val_accuracy"] for h in clf.history_]
    assert clf.best_epoch_ == int(np.argmax(accuracies)) + 1
    assert clf.score(df[160:], y[160:]) == pytest.approx(max(accuracies))
    assert clf.best_epoch_ != int(np.argmin([h["val_loss"] for h in clf.history_])) + 1  # (the loss disagrees)
    assert TabMClassifier().monitor == TabMRegressor().monitor == "loss"


def test_tabm_clips_gradients_to_norm_1_as_the_official_recipe(mixed_frame, monkeypatch):
    """The official example and every paper config clip the gradient norm to 1 (other models: off)."""
    from tabular_suite.training import engine

    df, y, _ = mixed_frame
    clipped = []
    real = engine.clip_grad_norm
    monkeypatch.setattr(engine, "clip_grad_norm", lambda p, max_norm: clipped.append(max_norm) or real(p, max_norm))
    TabMClassifier(**{**TINY, "max_epochs": 1}).fit(df[:64], y[:64])
    assert clipped and set(clipped) == {1.0}
    clipped.clear()
    tabular_suite.MLPClassifier(**{**FAST, "max_epochs": 1}).fit(df[:64], y[:64])
    assert not clipped


def test_tabm_weight_decay_spares_biases_and_embeddings():
    m = TabM(n_num=3, cardinalities=[], d_out=1, k=4, d_block=8, num_embeddings="periodic")
    decayed, spared = _param_groups(m, 1e-3)
    names = {id(p): n for n, p in m.named_parameters()}
    spared_names = {names[id(p)] for p in spared["params"]}
    assert "blocks.0.bias" in spared_names and "head.bias" in spared_names
    assert "num_encoder.frequencies" in spared_names
    assert {names[id(p)] for p in decayed["params"]} >= {"blocks.0.weight", "blocks.0.r", "num_encoder.linear.weight"}


# ------------------------------------------------------------------ numeric embeddings
def test_piecewise_linear_encoding_matches_its_definition():
    rng = np.random.default_rng(0)
    bins = [np.sort(rng.normal(size=m + 1)) for m in (1, 2, 5)]
    m = PiecewiseLinearEmbeddings(3, 4, n_bins=5)
    m.fit_bins(bins)
    x = torch.tensor(rng.normal(scale=2, size=(50, 3)), dtype=torch.float32)
    enc = m.encode(x).numpy()
    for j, edges in enumerate(bins):
        n = len(edges) - 1
        for row in range(50):
            v = float(x[row, j])
            ple = np.clip((v - edges[:-1]) / np.diff(edges), 0, 1)
            if n > 1:  # the first and last bins extrapolate
                ple[0] = min((v - edges[0]) / (edges[1] - edges[0]), 1)
                ple[-1] = max((v - edges[-2]) / (edges[-1] - edges[-2]), 0)
            else:
                ple[0] = (v - edges[0]) / (edges[1] - edges[0])
            expected = np.concatenate([ple[:-1], np.zeros(5 - n), ple[-1:]])
            np.testing.assert_allclose(enc[row, j], expected, rtol=1e-4, atol=1e-5)


def test_compute_bins_quantiles_and_trees():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=2000), np.ones(2000), rng.integers(0, 3, 2000)])
    quantile = compute_bins(x, 8)
    np.testing.assert_allclose(quantile[0], np.quantile(x[:, 0], np.linspace(0, 1, 9)))
    assert len(quantile[1]) == 2 and quantile[2].tolist() == [0.0, 1.0, 2.0]  # constant and discrete columns
    y = (x[:, 0] > 0.5).astype(int)
    tree = compute_bins(x, 8, y=y)
    assert len(tree[0]) == 3 and abs(tree[0][1] - 0.5) < 0.05  # the one informative split
    with pytest.raises(ValueError, match="n_bins must be >= 2"):
        compute_bins(x, 1)


def test_periodic_embeddings_and_lite():
    full, lite = PeriodicEmbeddings(3, 8), PeriodicEmbeddings(3, 8, lite=True)
    assert full(torch.randn(4, 3)).shape == lite(torch.randn(4, 3)).shape == (4, 3, 8)
    assert full.linear.weight.shape == (3, 96, 8) and lite.linear.weight.shape == (8, 96)
    assert float(full.frequencies.detach().abs().max()) <= 0.03 + 1e-7  # N(0, 0.01) truncated at 3 sigma


@pytest.mark.parametrize("kind", ["periodic", "periodic-lite", "piecewise-linear", "piecewise-linear-tree"])
@pytest.mark.parametrize("name", ["mlp", "resnet", "ft_transformer", "tabm"])
def test_every_backbone_takes_every_embedding(name, kind, mixed_frame, tmp_path):
    df, _, y = mixed_frame
    small = {"ft_transformer": dict(d_token=16, n_heads=2, n_blocks=1), "tabm": dict(k=4, d_block=16)}
    est = tabular_suite.make_estimator(name, "regression", num_embeddings=kind, **small.get(name, {}), **FAST)
    est.set_params(max_epochs=2, validation_fraction=0).fit(df, y)  # every row is a training row
    encoders = [m for m in est.module_.modules() if isinstance(m, (PeriodicEmbeddings, PiecewiseLinearEmbeddings))]
    assert len(encoders) == 1
    if kind.startswith("piecewise"):  # bins fitted on the training rows, kept in the model file
        x, target = est.preprocessor_.transform(df).x_num, est._encode_target(y)
        reference = PiecewiseLinearEmbeddings(x.shape[1], 4)
        reference.fit_bins(compute_bins(x, 48, y=target if kind.endswith("tree") else None, regression=True))
        torch.testing.assert_close(encoders[0].encoding_weight, reference.encoding_weight)
    est.save(tmp_path / "m.tsm")
    np.testing.assert_array_equal(load(tmp_path / "m.tsm").predict(df), est.predict(df))


def test_unknown_embedding_is_a_clear_error(mixed_frame):
    df, _, y = mixed_frame
    with pytest.raises(ValueError, match="num_embeddings must be one of"):
        tabular_suite.MLPRegressor(num_embeddings="fourier", **FAST).fit(df, y)
