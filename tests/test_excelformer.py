"""ExcelFormer follows the paper / official code: SPA mask, embeddings, blocks, init, mixing."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import FAST
from tabular_suite import ExcelFormerClassifier, ExcelFormerRegressor
from tabular_suite.nn.excelformer import ExcelFormer, _SemiPermeableAttention, feat_mix, hidden_mix

SMALL = dict(d_token=16, n_heads=4, n_blocks=2)


def test_semi_permeable_attention_matches_the_masked_formula():
    torch.manual_seed(0)
    attn = _SemiPermeableAttention(8, 2, 0.0, init_scale=1.0).eval()
    x = torch.randn(3, 5, 8)
    q, k, v = attn.W_qkv(x).chunk(3, dim=-1)
    allowed = torch.arange(5)[None, :] <= torch.arange(5)[:, None]  # token i sees j <= i
    heads = []
    for h in range(2):
        s = slice(4 * h, 4 * h + 4)
        scores = q[..., s] @ k[..., s].transpose(1, 2) / 2.0
        heads.append(torch.softmax(scores.masked_fill(~allowed, -math.inf), -1) @ v[..., s])
    torch.testing.assert_close(attn(x), attn.W_out(torch.cat(heads, -1)), rtol=1e-5, atol=1e-6)


def test_less_informative_features_cannot_influence_more_informative_ones():
    torch.manual_seed(0)
    m = ExcelFormer(n_num=6, cardinalities=[], d_out=1, init_scale=1.0, **SMALL).eval()
    m.set_feature_order([0.1, 0.9, 0.5, 0.0, 0.3, 0.2])  # order: 1, 2, 4, 5, 0, 3
    x = torch.randn(4, 6)
    x2 = x.clone()
    x2[:, 3] += 5.0  # the least informative feature
    tokens, tokens2 = m.embed(x, torch.zeros(4, 0, dtype=torch.long)), m.embed(x2, torch.zeros(4, 0, dtype=torch.long))
    h, h2 = m.blocks(tokens), m.blocks(tokens2)
    torch.testing.assert_close(h[:, :-1], h2[:, :-1])  # all but the last (least informative) token
    assert not torch.allclose(h[:, -1], h2[:, -1])


def test_embedding_block_and_head_structure():
    m = ExcelFormer(n_num=3, cardinalities=[4], d_out=2, **SMALL)
    x = torch.randn(2, 3)
    t = m.tokenizer.numeric
    expected = (x[..., None] * t.weight1 + t.bias1) * torch.tanh(x[..., None] * t.weight2 + t.bias2)
    torch.testing.assert_close(t(x), expected)
    assert m.blocks[0].attention_norm is None and isinstance(m.blocks[1].attention_norm, nn.LayerNorm)
    assert m.blocks[0].ffn.in_features == 16 and m.blocks[0].ffn.out_features == 32
    assert m.token_head.in_features == 4 and m.token_head.out_features == 1
    assert isinstance(m.head_norm, nn.LayerNorm) and isinstance(m.head_activation, nn.PReLU)
    block = m.blocks[0].eval()
    h = torch.randn(2, 4, 16)
    a, b = block.ffn(block.ffn_norm(h + block.attention(h))).chunk(2, -1)
    torch.testing.assert_close(block(h), h + block.attention(h) + a * torch.tanh(b))


def test_interaction_attenuated_initialisation():
    torch.manual_seed(0)
    m = ExcelFormer(n_num=4, cardinalities=[], d_out=1, d_token=64, n_heads=8, n_blocks=1, init_scale=0.01)
    kaiming_bound = 1 / math.sqrt(64)  # kaiming_uniform(a=sqrt(5)) bound = 1/sqrt(fan_in)
    for w in (m.blocks[0].attention.W_qkv.weight, m.blocks[0].ffn.weight):
        assert w.abs().max() <= 0.01 * kaiming_bound + 1e-9
        assert w.abs().max() > 0.005 * kaiming_bound


def test_features_are_ordered_by_mutual_information():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 4)), columns=list("abcd"))
    X["cat"] = rng.choice(["u", "v"], 400)
    y = (X["c"] > 0).astype(int) ^ (rng.random(400) < 0.05)
    est = ExcelFormerClassifier(**SMALL, **FAST).fit(X, y)
    assert est.module_.feature_order[0].item() == 2  # column "c" is the informative one
    assert est.mutual_information_.index[0] == "c" and set(est.mutual_information_.index) == set(X.columns)
    mi = est.module_.feature_mi
    assert torch.all(mi[:-1] >= mi[1:]) and abs(mi.sum().item() - 1) < 1e-5


def test_feat_mix_swaps_whole_features_and_weights_labels_by_mi():
    torch.manual_seed(0)
    tokens = torch.randn(64, 5, 3)
    mi = torch.tensor([0.4, 0.3, 0.2, 0.1, 0.0])
    mixed, lam, perm = feat_mix(tokens, 0.5, mi)
    moved = perm != torch.arange(64)  # a sample paired with itself mixes nothing
    own = (mixed == tokens).all(-1)[moved]
    partner = (mixed == tokens[perm]).all(-1)[moved]
    assert torch.all(own ^ partner)  # each feature token is its own or the partner's, whole
    torch.testing.assert_close(lam[moved], (own.float() * mi).sum(1))
    assert 0.1 < own.float().mean() < 0.9  # rates from Beta(0.5, 0.5) mix a real share


def test_hidden_mix_swaps_embedding_dimensions_with_the_beta_rate_as_weight():
    torch.manual_seed(0)
    tokens = torch.randn(256, 4, 32)
    mixed, lam, perm = hidden_mix(tokens, 0.5)
    own = (mixed == tokens).all(1)  # (b, d): same dims for all tokens
    assert torch.all(own | (mixed == tokens[perm]).all(1))
    # The share of kept dimensions tracks the Beta draw used as the label weight.
    assert torch.corrcoef(torch.stack([own.float().mean(1), lam]))[0, 1] > 0.9


@pytest.mark.parametrize("mix_type", ["feature", "hidden"])
def test_mixed_losses_are_the_papers(mix_type):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 4))
    clf = ExcelFormerClassifier(**SMALL, **FAST, mix_type=mix_type).fit(X, (X[:, 0] > 0).astype(int))
    reg = ExcelFormerRegressor(**SMALL, **FAST, mix_type=mix_type).fit(X, X[:, 0] * 3)
    inputs = [torch.from_numpy(X.astype(np.float32)), torch.zeros(100, 0, dtype=torch.long)]
    for est, y in (
        (clf, torch.from_numpy((X[:, 0] > 0).astype(np.float32))),
        (reg, torch.from_numpy(X[:, 0].astype(np.float32))),
    ):
        module = est.module_.eval()
        torch.manual_seed(1)
        loss = est._train_loss()(module, inputs, y)
        torch.manual_seed(1)  # replay the same draws by hand
        tokens = module.embed(*inputs)
        mix = feat_mix(tokens, 0.5, module.feature_mi) if mix_type == "feature" else hidden_mix(tokens, 0.5)
        mixed, lam, perm = mix
        out = module.forward_tokens(mixed)[:, 0]
        if est is clf:
            losses = [F.binary_cross_entropy_with_logits(out, target, reduction="none") for target in (y, y[perm])]
            expected = (lam * losses[0] + (1 - lam) * losses[1]).mean()
        else:
            expected = ((out - (lam * y + (1 - lam) * y[perm])) ** 2).mean()
        torch.testing.assert_close(loss, expected)


def test_categorical_missing_and_unseen_values(mixed_frame):
    df, y, y_reg = mixed_frame
    est = ExcelFormerClassifier(**SMALL, max_epochs=30, lr=1e-3, num_threads=1, random_state=0).fit(df, y)
    assert est.score(df, y) > 0.8
    new = df.head(4).assign(color=["purple", None, "red", "teal"])
    assert est.predict_proba(new).shape == (4, 2)
    reg = ExcelFormerRegressor(**SMALL, **FAST, mix_type="feature").fit(df, y_reg)
    assert 500 < reg.predict(df).mean() < 1500


def test_defaults_and_batch_size_rule():
    est = ExcelFormerClassifier()
    assert (est.n_blocks, est.d_token, est.n_heads, est.attention_dropout) == (3, 256, 32, 0.3)
    assert (est.lr, est.weight_decay, est.scheduler, est.warmup_epochs, est.patience) == (1e-4, 0.0, "cosine", 10.0, 32)
    assert (est.max_epochs, est.mix_type, est.beta, est.init_scale) == (500, "none", 0.5, 0.01)
    est.n_features_in_ = 8
    assert est._batch_size(100_000) == 512 and est._batch_size(1000) == 64 and est._batch_size(50) == 16
    est.n_features_in_ = 50
    assert est._batch_size(100_000) == 128
    with pytest.raises(ValueError, match="mix_type"):
        ExcelFormerClassifier(mix_type="cutmix").fit(np.zeros((4, 2)), [0, 1, 0, 1])
