"""The seed papers' backbones: Activator, Hourglass MLP, KAN, and bidirectional learning for MLPs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import make_classification

import tabular_suite
from tabular_suite.nn.activator import Activator
from tabular_suite.nn.hourglass import HourglassMLP
from tabular_suite.nn.kan import KAN, KANLayer
from tabular_suite.nn.mlp import MLP


def test_activator_block_is_the_authors_glu_with_one_shared_hidden_norm():
    torch.manual_seed(0)
    m = Activator(n_num=3, cardinalities=[], d_out=1, n_blocks=1, d_token=8, d_hidden=16).eval()
    block = m.blocks[0]
    with torch.no_grad():  # non-trivial norm parameters, so sharing them matters
        block.hidden_norm.weight.normal_()
        block.hidden_norm.bias.normal_()
    x = torch.randn(5, 3, 8)
    y = block.norm(x)
    w1, w2 = block.linear12.weight.split(16)
    b1, b2 = block.linear12.bias.split(16)
    ln = block.hidden_norm
    u = ln(F.gelu(y @ w1.T + b1))
    v = ln(y @ w2.T + b2)
    torch.testing.assert_close(block(x), x + block.linear3(u * v))
    assert sum(isinstance(mod, torch.nn.LayerNorm) for mod in block.modules()) == 2


def test_activator_is_additive_over_features():
    """Tokens meet only in the mean pool: changing one feature shifts the output by the same
    amount whatever the other features are (the authors' code mixes no tokens)."""
    torch.manual_seed(0)
    m = Activator(n_num=4, cardinalities=[3], d_out=2, n_blocks=2, d_token=8, d_hidden=16).eval()
    x_num, x_cat = torch.randn(6, 4), torch.randint(0, 3, (6, 1))
    changed = x_num.clone()
    changed[:, 0] = 1.5  # the same new value of feature 0 in every row
    with torch.no_grad():
        delta = m(changed, x_cat) - m(x_num.clone().index_fill_(1, torch.tensor([0]), 0.0), x_cat)
    torch.testing.assert_close(delta, delta[:1].expand_as(delta), atol=1e-5, rtol=0)
    assert delta.abs().max() > 1e-3


def test_hourglass_keeps_its_random_lift_and_skip_stream_wide():
    torch.manual_seed(0)
    m = HourglassMLP(n_num=3, cardinalities=[4], d_out=1, n_blocks=2, d_wide=32, d_narrow=4)
    assert not any(n.endswith("bias") for n, _ in m.named_parameters())  # no biases anywhere
    assert all(not b.norm.affine for b in m.blocks)
    assert (m.blocks[0].down.weight.shape, m.blocks[0].up.weight.shape) == ((4, 32), (32, 4))
    lift = m.lift.weight.detach().clone()
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=0.1)
    m(torch.randn(8, 3), torch.randint(0, 4, (8, 1))).square().mean().backward()
    opt.step()
    assert torch.equal(m.lift.weight, lift)
    trained = HourglassMLP(n_num=3, cardinalities=[], d_out=1, d_wide=32, d_narrow=4, train_input_projection=True)
    assert trained.lift.weight.requires_grad
    with pytest.raises(ValueError, match="d_narrow < d_wide"):
        HourglassMLP(n_num=3, cardinalities=[], d_out=1, d_wide=32, d_narrow=32)


def test_hourglass_estimator_decays_the_learning_rate_linearly_to_zero():
    X, y = make_classification(200, 6, random_state=0)
    clf = tabular_suite.HourglassMLPClassifier(
        max_epochs=4, patience=None, d_wide=16, d_narrow=4, n_blocks=1, random_state=0, num_threads=1
    ).fit(X, y)
    lrs = [h["lr"] for h in clf.history_]
    assert lrs[0] < 1e-3 and lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(np.diff(lrs), np.diff(lrs)[0], rtol=1e-6)  # linear


def test_kan_layer_sums_rbf_edge_functions_and_a_silu_base():
    torch.manual_seed(0)
    layer = KANLayer(2, 3, n_grid=5, grid_range=2.0, norm=False)
    x = torch.randn(4, 2)
    centres, h = torch.linspace(-2, 2, 5), 1.0  # spacing 4 / (5 - 1)
    c = layer.spline_weight.view(3, 2, 5)
    expected = torch.zeros(4, 3)
    for o in range(3):
        for i in range(2):
            expected[:, o] += (c[o, i] * torch.exp(-(((x[:, i : i + 1] - centres) / h) ** 2))).sum(1)
    expected += layer.base(F.silu(x))
    torch.testing.assert_close(layer(x), expected)


def test_kan_normalises_hidden_layers_only_by_default():
    m = KAN(n_num=3, cardinalities=[], d_out=1)
    assert [layer.norm is not None for layer in m.layers] == [False, True, True]
    assert [layer.spline_weight.shape[1] for layer in m.layers] == [3 * 8, 64 * 8, 64 * 8]
    assert KAN(n_num=3, cardinalities=[], d_out=1, first_layer_norm=True).layers[0].norm is not None


def test_kan_fits_a_univariate_nonlinearity_a_linear_model_cannot():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(600, 1))
    y = np.sin(3 * X[:, 0])
    reg = tabular_suite.KANRegressor(
        n_blocks=1, d_block=8, max_epochs=60, lr=1e-2, random_state=0, num_threads=1, validation_fraction=0.0
    ).fit(X, y)
    assert reg.score(X, y) > 0.9  # a linear fit of sin(3x) on [-2, 2] scores about 0.1


def test_bidirectional_generator_runs_the_transposed_layers_with_its_own_biases():
    torch.manual_seed(0)
    m = MLP(n_num=2, cardinalities=[3], d_out=3, n_blocks=1, d_block=4, cat_embedding_dim=2, bidirectional=True)
    with torch.no_grad():
        for b in m.generator_bias:
            b.normal_()
    code = torch.eye(3)
    first, head = m.blocks[0], m.head
    expected = F.relu(code @ head.weight + m.generator_bias[1]) @ first.weight + m.generator_bias[0]
    torch.testing.assert_close(m.generate(code), expected)
    assert m.generate(code).shape == (3, 2 + 2)
    # The categorical slot is read through its embedding table: the code whose embedding it is wins.
    table = m.input.categorical.embedding.weight.detach()
    x_hat = torch.cat([torch.zeros(3, 2), table[:3] * 10], dim=1)
    low = m.reconstruction_loss(x_hat, torch.zeros(3, 2), torch.tensor([[0], [1], [2]]))
    high = m.reconstruction_loss(x_hat, torch.zeros(3, 2), torch.tensor([[1], [2], [0]]))
    assert low < high


def test_bidirectional_training_teaches_the_generator_and_changes_the_classifier():
    X, y = make_classification(400, 5, n_informative=3, n_classes=3, n_clusters_per_class=1, random_state=0)
    kw = dict(n_blocks=1, d_block=32, max_epochs=40, patience=None, random_state=0, num_threads=1)
    plain = tabular_suite.MLPClassifier(**kw).fit(X, y)
    bidi = tabular_suite.MLPClassifier(bidirectional=True, **kw).fit(X, y)
    assert bidi.score(X, y) > 0.75
    m = bidi.module_
    assert all(b.abs().sum() > 0 for b in m.generator_bias)  # trained from zero
    x_num, x_cat = bidi._tensors(bidi.preprocessor_.transform(bidi._prepare_frame(X, reset=False)[0]))
    code = F.one_hot(torch.as_tensor(y), 3).float()
    with torch.no_grad():
        trained = m.reconstruction_loss(m.generate(code), x_num, x_cat)
        fresh = MLP(n_num=5, cardinalities=[], d_out=3, n_blocks=1, d_block=32, bidirectional=True)
        before = fresh.reconstruction_loss(fresh.generate(code), x_num, x_cat)
    assert trained < 0.9 * before
    assert not torch.equal(plain.module_.head.weight, m.head.weight)


def test_bidirectional_rejects_regression_and_numeric_embeddings():
    X, y = make_classification(60, 4, random_state=0)
    with pytest.raises(ValueError, match="use MLPClassifier"):
        tabular_suite.MLPRegressor(bidirectional=True, max_epochs=1, num_threads=1).fit(X, y.astype(float))
    with pytest.raises(ValueError, match="num_embeddings='none'"):
        tabular_suite.MLPClassifier(bidirectional=True, num_embeddings="periodic", max_epochs=1, num_threads=1).fit(
            X, y
        )
