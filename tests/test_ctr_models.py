"""AutoInt(+) and FinalMLP modules compute the formulas of the papers / FuxiCTR's reference code."""

import pytest
import torch

from tabular_suite.nn.autoint import AutoInt, InteractingLayer
from tabular_suite.nn.embeddings import FieldEmbedding
from tabular_suite.nn.finalmlp import BilinearFusion, FeatureGate, FinalMLP


def test_field_embedding_tables_numeric_vectors_and_init():
    torch.manual_seed(0)
    emb = FieldEmbedding(n_num=2, cardinalities=[1_000_000, 5], d=8)
    assert emb.categorical.embedding.weight.std().item() == pytest.approx(1e-4, rel=0.05)
    x_num = torch.tensor([[0.0, 2.0]])
    x_cat = torch.tensor([[123_456, 3]])
    out = emb(x_num, x_cat)
    assert torch.equal(out[0, 0], torch.zeros(8))  # value x vector, no bias
    torch.testing.assert_close(out[0, 1], 2.0 * emb.numeric[1])
    torch.testing.assert_close(out[0, 2], emb.categorical.embedding.weight[123_456])
    torch.testing.assert_close(out[0, 3], emb.categorical.embedding.weight[1_000_000 + 3])  # its own table
    out.sum().backward()
    touched = emb.categorical.embedding.weight.grad.abs().sum(1).nonzero().flatten().tolist()
    assert touched == [123_456, 1_000_003]


@pytest.mark.parametrize("use_scale,layer_norm,d_in", [(False, False, 6), (True, True, 8)])
def test_interacting_layer_matches_reference(use_scale, layer_norm, d_in):
    torch.manual_seed(0)
    layer = InteractingLayer(d_in, 8, n_heads=2, use_scale=use_scale, layer_norm=layer_norm).eval()
    x = torch.randn(3, 5, d_in)
    q, k, v = layer.W_qkv(x).split(8, dim=-1)
    heads = []
    for h in range(2):
        s = slice(4 * h, 4 * h + 4)
        scores = q[..., s] @ k[..., s].transpose(1, 2)
        if use_scale:
            scores = scores / 2.0
        heads.append(torch.softmax(scores, -1) @ v[..., s])
    out = torch.cat(heads, -1) + (layer.W_res(x) if layer.W_res is not None else x)
    if layer_norm:
        out = layer.norm(out)
    torch.testing.assert_close(layer(x), torch.relu(out), rtol=1e-5, atol=1e-6)
    assert (layer.W_res is None) == (d_in == 8)


def test_autoint_plus_adds_the_parallel_mlp():
    torch.manual_seed(0)
    m = AutoInt(n_num=1, cardinalities=[7, 3], d_out=1, embedding_dim=4, attention_layers=2, n_heads=2,
                attention_dim=8, dnn_hidden=(16,)).eval()
    x_num, x_cat = torch.randn(6, 1), torch.randint(0, 3, (6, 2))
    emb = m.embedding(x_num, x_cat)
    expected = m.head(m.interacting(emb).flatten(1)) + m.dnn(emb.flatten(1))
    torch.testing.assert_close(m(x_num, x_cat), expected)
    assert AutoInt(n_num=1, cardinalities=[7], d_out=1).dnn is None  # plain AutoInt


def test_feature_gates_use_context_fields_or_a_bias():
    torch.manual_seed(0)
    emb = torch.randn(4, 3, 2)
    gate = FeatureGate(n_fields=3, d=2, hidden=(5,), context_fields=[2])
    torch.testing.assert_close(gate(emb), emb.flatten(1) * 2 * gate.mlp(emb[:, 2]))
    biased = FeatureGate(n_fields=3, d=2, hidden=(5,))
    torch.testing.assert_close(biased(emb), emb.flatten(1) * 2 * biased.mlp(biased.bias.expand(4, -1)))
    # At initialisation the bias gate is a learned constant: every row is scaled alike.
    scale = biased(emb) / emb.flatten(1)
    torch.testing.assert_close(scale, scale[:1].expand_as(scale))


def test_bilinear_fusion_matches_fuxictr_formula():
    torch.manual_seed(0)
    fusion = BilinearFusion(6, 4, d_out=2, n_heads=2)
    x, y = torch.randn(5, 6), torch.randn(5, 4)
    # FuxiCTR: matmul(matmul(head_x.unsqueeze(2), w_xy.view(h, dx, -1)).view(-1, h, out, dy), head_y.unsqueeze(-1))
    w = fusion.w_xy.permute(0, 1, 3, 2).reshape(2, 3, 2 * 2)  # (h, dx_h, out*dy_h) as FuxiCTR stores it
    hx, hy = x.view(5, 2, 3), y.view(5, 2, 2)
    xy = torch.matmul(torch.matmul(hx.unsqueeze(2), w).view(5, 2, 2, 2), hy.unsqueeze(-1)).squeeze(-1).sum(1)
    torch.testing.assert_close(fusion(x, y), fusion.w_x(x) + fusion.w_y(y) + xy)


def test_finalmlp_streams_and_fusion():
    torch.manual_seed(0)
    m = FinalMLP(n_num=0, cardinalities=[20, 5, 9], d_out=1, embedding_dim=4, mlp1_hidden=(8, 8), mlp2_hidden=(6,),
                 gate_hidden=(10,), gate_fields_1=[0], n_heads=2).eval()
    x_num, x_cat = torch.zeros(3, 0), torch.randint(0, 5, (3, 3))
    emb = m.embedding(x_num, x_cat)
    expected = m.fusion(m.mlp1(m.gates[0](emb)), m.mlp2(m.gates[1](emb)))
    torch.testing.assert_close(m(x_num, x_cat), expected)
    assert m.gates[0].context_fields == [0] and m.gates[1].bias is not None
    plain = FinalMLP(n_num=1, cardinalities=[3], d_out=1, use_gates=False, mlp1_hidden=(4,), mlp2_hidden=(4,), n_heads=1)
    assert plain.gates is None and plain(torch.zeros(2, 1), torch.zeros(2, 1, dtype=torch.long)).shape == (2, 1)
    with pytest.raises(ValueError, match="must divide both stream widths"):
        BilinearFusion(6, 4, n_heads=4)
