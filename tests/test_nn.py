"""Architectures follow the block definitions of Gorishniy et al. (2021)."""

import torch
from torch import nn

from tabular_suite.nn import MLP, FTTransformer, ResNet
from tabular_suite.nn.blocks import MultiheadAttention, ReGLU, TransformerBlock, full_softmax_cross_entropy


def test_mlp_blocks():
    m = MLP(n_num=4, cardinalities=[5], d_out=3, n_blocks=2, d_block=16, dropout=0.2, cat_embedding_dim=2)
    kinds = [type(layer) for layer in m.blocks]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout] * 2
    assert m.blocks[0].in_features == 4 + 2  # numeric + one 2-d categorical embedding
    assert m.head.out_features == 3


def test_resnet_block_structure():
    m = ResNet(n_num=4, cardinalities=[], d_out=1, n_blocks=2, d_block=8, d_hidden_multiplier=2.0)
    body = [type(layer) for layer in m.blocks[0].body]
    assert body == [nn.BatchNorm1d, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.Dropout]
    assert m.blocks[0].body[1].out_features == 16
    assert [type(layer) for layer in m.head] == [nn.BatchNorm1d, nn.ReLU, nn.Linear]
    # Residual: with the block body zeroed, a block is the identity.
    block = m.blocks[0].eval()
    nn.init.zeros_(block.body[4].weight)
    nn.init.zeros_(block.body[4].bias)
    x = torch.randn(3, 8)
    assert torch.equal(block(x), x)


def test_ft_transformer_structure_and_defaults():
    m = FTTransformer(n_num=3, cardinalities=[4, 6], d_out=1)
    assert len(m.blocks) == 3
    assert m.blocks[0].attention_norm is None  # no LayerNorm before the first block
    assert all(isinstance(b.attention_norm, nn.LayerNorm) for b in m.blocks[1:])
    ffn = m.blocks[0].ffn
    assert ffn[0].out_features == 2 * 256 and isinstance(ffn[1], ReGLU) and ffn[3].in_features == 256
    assert m.blocks[0].attention.n_heads == 8 and m.blocks[0].attention.dropout == 0.2
    assert [type(layer) for layer in m.head] == [nn.LayerNorm, nn.ReLU, nn.Linear]
    assert m.tokenizer.n_tokens == 5


def test_last_block_computes_only_the_cls_token_exactly():
    torch.manual_seed(0)
    block = TransformerBlock(16, 4, 0.0, 20, 0.0, 0.0, query_tokens=1).eval()
    x = torch.randn(5, 7, 16)
    fast = block(x)
    block.query_tokens = None
    full = block(x)
    assert fast.shape == (5, 1, 16)
    torch.testing.assert_close(fast[:, 0], full[:, 0], rtol=1e-5, atol=1e-6)


def test_attention_matches_reference_formula():
    torch.manual_seed(0)
    attn = MultiheadAttention(8, 2).eval()
    x = torch.randn(3, 5, 8)
    q, k, v = attn.W_q(x), attn.W_k(x), attn.W_v(x)
    heads = []
    for h in range(2):
        s = slice(4 * h, 4 * h + 4)
        w = torch.softmax(q[..., s] @ k[..., s].transpose(1, 2) / 2.0, dim=-1)
        heads.append(w @ v[..., s])
    expected = attn.W_out(torch.cat(heads, dim=-1))
    torch.testing.assert_close(attn(x, x), expected, rtol=1e-5, atol=1e-6)


def test_models_handle_only_numeric_or_only_categorical():
    for cls in (MLP, ResNet, FTTransformer):
        kw = dict(n_blocks=1) if cls is not FTTransformer else dict(n_blocks=1, d_token=8, n_heads=2)
        only_num = cls(n_num=3, cardinalities=[], d_out=2, **kw).eval()
        assert only_num(torch.randn(4, 3), torch.zeros(4, 0, dtype=torch.long)).shape == (4, 2)
        only_cat = cls(n_num=0, cardinalities=[3, 4], d_out=2, **kw).eval()
        assert only_cat(torch.zeros(4, 0), torch.ones(4, 2, dtype=torch.long)).shape == (4, 2)


# --- causal attention kernel (CPU) ------------------------------------------------------------

import pytest  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tabular_suite.nn import blocks  # noqa: E402
from tabular_suite.nn.blocks import causal_attention  # noqa: E402


def _reference_attention(q, k, v, drop=None, scale=1.0):
    """Token-major (batch, tokens, heads, dim) in and out, as causal_attention."""
    q, k, v = (x.transpose(1, 2) for x in (q, k, v))
    t = q.shape[-2]
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    probs = torch.softmax(scores, -1)
    if drop is not None:
        probs = probs.masked_fill(drop, 0) * scale
    return (probs @ v).transpose(1, 2)


# short rows (explicit softmax), long rows (PyTorch's kernel; one sequence keeps gradcheck short),
# several chunks, recomputed probs
KERNEL_SETTINGS = [(3, 5, 2**18, 2**22), (1, 20, 2**18, 2**22), (3, 7, 2 * 49, 2**22), (2, 12, 2 * 144, 0)]


@pytest.mark.parametrize("batch,tokens,chunk,keep", KERNEL_SETTINGS)
def test_causal_attention_matches_formula_and_gradients(monkeypatch, batch, tokens, chunk, keep):
    monkeypatch.setattr(blocks, "_CPU_CHUNK_ELEMENTS", chunk)
    monkeypatch.setattr(blocks, "_CPU_KEEP_PROBS_ELEMENTS", keep)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(batch, tokens, 2, 4, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    torch.testing.assert_close(causal_attention(q, k, v), _reference_attention(q, k, v))
    assert torch.autograd.gradcheck(causal_attention, (q, k, v))

    def with_dropout(q, k, v):
        torch.manual_seed(1)  # the same dropout mask for every evaluation
        return causal_attention(q, k, v, 0.3)

    assert torch.autograd.gradcheck(with_dropout, (q, k, v))
    torch.manual_seed(1)
    assert torch.autograd.gradcheck(
        lambda q, k, v: (torch.manual_seed(1), blocks.attention(q, k, v, 0.3, 0.7))[1], (q, k, v)
    )
    # The dropout mask is the one the threshold rule defines: a byte below 77 drops.
    torch.manual_seed(1)
    rows = batch * 2 * tokens * tokens
    draws = torch.randint(-(2**63), 2**63 - 1, ((rows + 7) // 8,), dtype=torch.int64)
    drop = (draws.view(torch.uint8)[:rows] < 77).view(batch, 2, tokens, tokens)
    torch.testing.assert_close(with_dropout(q, k, v), _reference_attention(q, k, v, drop, 256 / 179))


def test_causal_attention_takes_slices_of_a_fused_projection():
    """Strided q/k/v views of one (n, t, 3, h, d) tensor, in bf16 and fp32 (the wide-element reordering)."""
    torch.manual_seed(0)
    for dtype, dim in ((torch.bfloat16, 8), (torch.float32, 8), (torch.float32, 3), (torch.bfloat16, 5)):
        qkv = torch.randn(4, 6, 3, 2, dim).to(dtype).requires_grad_()
        q, k, v = qkv.unbind(2)
        out = causal_attention(q, k, v)
        assert out.dtype == dtype and out.shape == (4, 6, 2, dim) and out.is_contiguous()
        ref = _reference_attention(*(x.double() for x in (q, k, v)))
        torch.testing.assert_close(out.double(), ref, atol=0.02 if dtype == torch.bfloat16 else 1e-5, rtol=0.02)
        out.double().pow(2).sum().backward()
        ref_qkv = qkv.detach().double().requires_grad_()
        _reference_attention(*ref_qkv.unbind(2)).pow(2).sum().backward()
        torch.testing.assert_close(
            qkv.grad.double(), ref_qkv.grad, atol=0.05 if dtype == torch.bfloat16 else 1e-4, rtol=0.05
        )


def test_softmax_rows_survives_large_and_tiny_scores():
    for scores in (
        torch.tensor([[1000.0, 999.0, float("-inf")]]),
        torch.tensor([[-1000.0, -1001.0, -1002.0]]),
        torch.randn(50, 7),
    ):
        torch.testing.assert_close(blocks._softmax_rows(scores.clone()), torch.softmax(scores, -1))


def test_causal_attention_dropout_rate_and_expectation():
    threshold, scale = blocks._dropout_threshold(0.3)
    assert threshold / 256 == pytest.approx(0.3, abs=1 / 512) and scale == 256 / (256 - threshold)
    torch.manual_seed(0)
    q, k = torch.randn(1, 6, 1, 6), torch.randn(1, 6, 1, 6)
    eye = torch.eye(6).view(1, 6, 1, 6)
    exact = causal_attention(q, k, eye)  # v = I: the output is the probabilities
    batch = [x.expand(20000, 6, 1, 6) for x in (q, k, eye)]
    probs = causal_attention(*batch, 0.3)[:, :, 0]
    lower = torch.ones(6, 6).tril().bool()
    assert (probs[..., ~lower] == 0).all()
    assert (probs[..., lower] == 0).float().mean().item() == pytest.approx(threshold / 256, abs=0.005)
    torch.testing.assert_close(probs.mean(0), exact[0, :, 0], atol=0.01, rtol=0)


def test_causal_attention_keeps_dtype_and_matches_fp32_under_bf16():
    torch.manual_seed(0)
    q, k, v = (torch.randn(4, 9, 2, 8) for _ in range(3))
    out = causal_attention(*(x.bfloat16() for x in (q, k, v)))
    assert out.dtype == torch.bfloat16
    ref = F.scaled_dot_product_attention(*(x.transpose(1, 2) for x in (q, k, v)), is_causal=True).transpose(1, 2)
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0.02)
    narrow_v = v[..., :3].contiguous().double().requires_grad_()
    q64, k64 = q.double().requires_grad_(), k.double().requires_grad_()
    assert torch.autograd.gradcheck(lambda q, k, v: causal_attention(q, k, v, 0.0), (q64[:1], k64[:1], narrow_v[:1]))


@pytest.mark.parametrize("scale", [0.5, 1.0])
@pytest.mark.parametrize("chunk", [2**18, 200])
def test_attention_with_bf16_products_matches_fp32(monkeypatch, chunk, scale):
    """bf16 inputs (autocast): bf16 products, fp32 softmax; output and gradients close to fp32
    (in one chunk, and over chunks of one or a few samples)."""
    from tabular_suite.nn.blocks import attention

    monkeypatch.setenv("TABULAR_SUITE_NATIVE", "0")  # the PyTorch path (test_native.py tests the kernel)
    monkeypatch.setattr(blocks, "_CPU_CHUNK_ELEMENTS", chunk)
    torch.manual_seed(0)
    for tokens in (7, 40):  # short rows (explicit softmax) and long rows
        q, k, v = (torch.randn(6, tokens, 2, 16) for _ in range(3))
        q = q * (0.5 / scale)  # the same scores for both scales (scale 1 skips the scaling pass)
        ref_in = [x.clone().requires_grad_() for x in (q, k, v)]
        low_in = [x.bfloat16().requires_grad_() for x in (q, k, v)]
        ref, low = attention(*ref_in, scale=scale), attention(*low_in, scale=scale)
        assert low.dtype == torch.bfloat16
        torch.testing.assert_close(low.float(), ref, atol=0.05, rtol=0.05)
        ref.pow(2).sum().backward()
        low.float().pow(2).sum().backward()
        for a, b in zip(low_in, ref_in):  # bf16 rounding: within 3% of the largest gradient
            assert (a.grad.float() - b.grad).abs().max() < 0.03 * b.grad.abs().max()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_fused_qkv_attention_matches_separate_inputs(monkeypatch, dtype, dropout):
    """A fused (n, t, 3, h, d) projection gives the output and gradient of its three slices,
    over several chunks (bf16: products straight into the token-major output; both: the
    gradient's head rows to token-major in one copy)."""
    from tabular_suite.nn.blocks import attention

    monkeypatch.setenv("TABULAR_SUITE_NATIVE", "0")  # the PyTorch path (test_native.py tests the kernel)
    monkeypatch.setattr(blocks, "_CPU_CHUNK_ELEMENTS", 3 * 9 * 9)  # 3 samples per chunk
    torch.manual_seed(0)
    qkv = torch.randn(8, 9, 3, 2, 4, dtype=dtype, requires_grad=True)
    grad = torch.randn(8, 9, 2, 4, dtype=dtype)
    torch.manual_seed(1)
    fused = attention(qkv, dropout_p=dropout, scale=0.7)
    (g_fused,) = torch.autograd.grad(fused, qkv, grad)
    torch.manual_seed(1)
    separate = attention(*qkv.unbind(2), dropout_p=dropout, scale=0.7)
    (g_separate,) = torch.autograd.grad(separate, qkv, grad)
    assert fused.dtype == g_fused.dtype == dtype and g_fused.shape == qkv.shape
    assert torch.equal(fused, separate) and torch.equal(g_fused, g_separate)
    with pytest.raises(ValueError, match="both k and v"):
        attention(qkv, qkv)


def test_attention_gradients_with_values_of_another_width():
    from tabular_suite.nn.blocks import attention

    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(3, 5, 2, 4, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
    v = torch.randn(3, 5, 2, 6, generator=g, dtype=torch.float64, requires_grad=True)
    ref = F.scaled_dot_product_attention(*(x.transpose(1, 2) for x in (q, k, v)), scale=0.7).transpose(1, 2)
    torch.testing.assert_close(attention(q, k, v, scale=0.7), ref)
    assert torch.autograd.gradcheck(lambda q, k, v: attention(q, k, v, scale=0.7), (q, k, v))


@pytest.mark.parametrize("heads", [1, 2])
def test_block_diagonal_attention_matches_the_per_head_kernel(heads):
    """Few tokens: all heads in one GEMM per product; exact in fp64 (gradcheck), and in bf16
    as the per-head kernel, for a fused projection and for separate inputs."""
    from tabular_suite.nn.blocks import _AttentionCPU, _BlockDiagonalAttention

    torch.manual_seed(0)
    q, k, v = (torch.randn(4, 5, heads, 3, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda q, k, v: _BlockDiagonalAttention.apply(q, k, v, 0.7), (q, k, v))
    qkv = torch.randn(64, 8, 3, heads, 16).bfloat16().requires_grad_()
    grad = torch.randn(64, 8, heads, 16).bfloat16()
    ours = _BlockDiagonalAttention.apply(qkv, None, None, 0.5)
    per_head = _AttentionCPU.apply(qkv, None, None, 0.0, False, 0.5, False)
    torch.testing.assert_close(ours, per_head, atol=0.02, rtol=0.02)
    (g_ours,), (g_per_head,) = (torch.autograd.grad(o, qkv, grad) for o in (ours, per_head))
    assert g_ours.shape == qkv.shape
    assert (g_ours.float() - g_per_head.float()).abs().max() < 0.02 * g_per_head.float().abs().max()
    separate = _BlockDiagonalAttention.apply(*qkv.unbind(2), 0.5)
    (g_separate,) = torch.autograd.grad(separate, qkv, grad)
    assert torch.equal(separate, ours) and torch.equal(g_separate, g_ours)


def test_tanh32_matches_tanh_with_gradients():
    x = torch.linspace(-12, 12, 2001, requires_grad=True)
    y = blocks.tanh32(x)
    torch.testing.assert_close(y, torch.tanh(x.detach()), atol=2e-7, rtol=0)
    y.sum().backward()
    torch.testing.assert_close(x.grad, 1 - torch.tanh(x.detach()) ** 2, atol=5e-7, rtol=0)
    xb = x.detach().bfloat16().requires_grad_()
    yb = blocks.tanh32(xb)
    assert yb.dtype == torch.float32
    yb.sum().backward()
    assert xb.grad.dtype == torch.bfloat16
    x64 = torch.randn(20, dtype=torch.float64, requires_grad=True)
    assert blocks.tanh32(x64).dtype == torch.float64 and torch.autograd.gradcheck(blocks.tanh32, (x64,))


@pytest.mark.parametrize("tokens", [5, 16, 40])
def test_cpu_attention_matches_sdpa_with_gradients(tokens):
    from tabular_suite.nn.blocks import attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(3, tokens, 2, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    for scale in (None, 1.0):
        ours = attention(q, k, v, scale=scale)
        ref = F.scaled_dot_product_attention(*(x.transpose(1, 2) for x in (q, k, v)), scale=scale).transpose(1, 2)
        assert torch.allclose(ours, ref, atol=1e-10)
        g_ours = torch.autograd.grad(ours.sum(), (q, k, v))
        g_ref = torch.autograd.grad(ref.sum(), (q, k, v))
        for a, b in zip(g_ours, g_ref):
            assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_full_softmax_cross_entropy_matches_the_plain_loss(dtype, chunk):
    torch.manual_seed(0)
    h = torch.randn(50, 16, dtype=dtype, requires_grad=True)
    w = torch.randn(300, 16, dtype=dtype, requires_grad=True)
    t = torch.randint(0, 300, (50,))
    ours = full_softmax_cross_entropy(h, w, t, chunk=chunk)
    (ours * 3.0).backward()  # the upstream gradient scales the stored ones
    gh, gw = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    plain = F.cross_entropy(h @ w.T, t, reduction="sum")
    (plain * 3.0).backward()
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert ours.dtype == dtype
    torch.testing.assert_close(ours, plain, rtol=tol, atol=tol)
    torch.testing.assert_close(gh, h.grad, rtol=tol, atol=tol)
    torch.testing.assert_close(gw, w.grad, rtol=tol, atol=tol)


def test_full_softmax_cross_entropy_under_bf16_autocast_is_close_to_fp32():
    torch.manual_seed(1)
    h = torch.randn(200, 32, requires_grad=True)
    w = (0.3 * torch.randn(5000, 32)).requires_grad_()
    t = torch.randint(0, 5000, (200,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = full_softmax_cross_entropy(h, w, t)
    ours.backward()
    assert ours.dtype == torch.float32 and h.grad.dtype == torch.float32 and w.grad.dtype == torch.float32
    gh, gw = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    F.cross_entropy(h @ w.T, t, reduction="sum").backward()
    exact = F.cross_entropy(h.detach() @ w.detach().T, t, reduction="sum")
    assert abs(float((ours - exact).detach())) / float(exact) < 2e-3
    assert float((gh - h.grad).norm() / h.grad.norm()) < 2e-2
    assert float((gw - w.grad).norm() / w.grad.norm()) < 2e-2


# --- one config dataclass per architecture -----------------------------------------------------

import dataclasses  # noqa: E402
import inspect  # noqa: E402

from tabular_suite.nn.autoint import AutoInt  # noqa: E402
from tabular_suite.nn.excelformer import ExcelFormer  # noqa: E402
from tabular_suite.nn.finalmlp import FinalMLP  # noqa: E402
from tabular_suite.nn.pfn import PFNConfig, PFNTransformer  # noqa: E402
from tabular_suite.nn.sasrec import SASRec  # noqa: E402

_TABULAR_MODULES = [MLP, ResNet, FTTransformer, ExcelFormer, AutoInt, FinalMLP]
#: Constructor arguments that describe the data, not hyperparameters (no config field).
_DATA_ARGUMENTS = {"self", "n_num", "cardinalities", "d_out", "n_items", "gate_fields_1", "gate_fields_2", "config"}


def _build(cls, **config):
    if cls is SASRec:
        return cls(20, **config)
    if cls is PFNTransformer:
        return cls(**config)
    return cls(n_num=2, cardinalities=[3], d_out=1, **config)


@pytest.mark.parametrize("cls", _TABULAR_MODULES + [SASRec, PFNTransformer], ids=lambda c: c.__name__)
def test_every_module_takes_its_hyperparameters_from_its_config(cls):
    config = cls.config_class
    # The defaults live in the config only: the constructor declares none of its own.
    hyper = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name not in _DATA_ARGUMENTS]
    assert hyper == [], f"{cls.__name__} declares hyperparameters outside {config.__name__}: {hyper}"
    assert all(f.metadata.get("doc") for f in dataclasses.fields(config))
    small = {ExcelFormer: {"d_token": 16, "n_heads": 2}, PFNTransformer: {"d_model": 16, "d_ffn": 16}}.get(cls, {})
    module = _build(cls, **small)
    assert module.config == dataclasses.asdict(config(**small))
    with pytest.raises(TypeError, match="no_such_field"):
        _build(cls, no_such_field=1)


def test_pfn_config_dict_is_the_one_weights_files_store():
    model = PFNTransformer(max_features=4, d_model=8, n_heads=2, n_layers=1, d_ffn=16)
    assert model.config == {
        "max_features": 4,
        "max_classes": 10,
        "d_model": 8,
        "n_heads": 2,
        "n_layers": 1,
        "d_ffn": 16,
        "n_bins": 96,
    }
    assert list(model.config) == [f.name for f in dataclasses.fields(PFNConfig)]
