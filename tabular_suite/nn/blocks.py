"""Blocks shared by the architectures: attention, gated FFNs, transformer layers."""

from __future__ import annotations

import ctypes
import math

import torch
import torch.nn.functional as F
from torch import nn

from . import native

__all__ = [
    "Dropout",
    "MultiheadAttention",
    "ReGLU",
    "TransformerBlock",
    "causal_attention",
    "full_softmax_cross_entropy",
    "make_activation",
    "tanh32",
]


def make_activation(name: str) -> nn.Module:
    """``"relu"``, ``"gelu"``, ``"silu"``, ``"tanh"`` or ``"sigmoid"`` as a module.

    Examples
    --------
    >>> make_activation("sigmoid")
    Sigmoid()
    """
    table = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    if name not in table:
        raise ValueError(f"Unknown activation {name!r}; choose one of {sorted(table)}.")
    return table[name]()


# The CPU kernel below works through the (batch x heads) rows in chunks of about this many
# score elements, so each chunk's scores, probabilities and masks stay in the L2 cache
# instead of streaming tens of MB (through freshly mmap'd pages) several times per layer.
_CPU_CHUNK_ELEMENTS = 2**18
# Up to this many score elements in all (64 MB of fp32), the forward pass keeps the probabilities
# for the backward pass; above it they are recomputed chunk by chunk.
_CPU_KEEP_PROBS_ELEMENTS = 2**24


_LOG2_E = math.log2(math.e)


def _softmax_rows(scores: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Softmax of ``scale * scores`` over the last axis (``scores`` is overwritten).

    Computed as ``2^(log2(e) scale s) / sum``: PyTorch's CPU ``exp2`` is faster than its
    ``exp``, and ``torch.softmax``'s kernel does not vectorise rows under 16 floats (figures in
    benchmarks/RESULTS.md and the commit history). The max-subtraction pass is
    skipped whenever every row's sum of exponentials stays well inside the float range (the
    usual case: attention scores of a few units); otherwise the max-shifted formula is used.
    Both give the same probabilities up to rounding.
    """
    scores.mul_(scale * _LOG2_E)
    probs = torch.exp2(scores)
    sums = probs.sum(-1, keepdim=True)
    low, high = torch.aminmax(sums)
    if not (low.item() > 1e-30 and high.item() < 1e30):  # overflow, underflow or NaN: shift by the row max
        probs = scores.sub_(scores.amax(-1, keepdim=True)).exp2_()
        sums = probs.sum(-1, keepdim=True)
    return probs.div_(sums)


def _softmax_rows_backward(grad: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Gradient of the scores from ``grad`` = d loss / d ``probs``: ``probs * (grad - sum(probs * grad))``.
    PyTorch's fused kernel from rows of 16 (faster there; slower on shorter rows)."""
    if probs.shape[-1] >= 16:
        return torch._softmax_backward_data(grad, probs, -1, probs.dtype)
    weighted = probs * grad
    return torch.addcmul(weighted, probs, weighted.sum(-1, keepdim=True), value=-1)


class _Tanh32(torch.autograd.Function):
    """fp32 ``tanh`` computed as ``2 sigmoid(2x) - 1`` (absolute error ~1e-7)."""

    @staticmethod
    def forward(ctx, x):
        y = torch.empty(x.shape, dtype=torch.float32, device=x.device)
        torch.mul(x, 2.0, out=y)
        y = torch.sigmoid_(y).mul_(2.0).sub_(1.0)
        ctx.save_for_backward(y)
        ctx.dtype = x.dtype
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y).to(ctx.dtype)


def tanh32(x: torch.Tensor) -> torch.Tensor:
    """``tanh(x)`` in fp32 (fp64 stays fp64), for gates such as ExcelFormer's ``a * tanh(b)``.

    On CPU PyTorch's fp32 ``tanh`` costs about 3 ns per element (and its bf16 one more);
    ``2 sigmoid(2x) - 1`` in place costs a third of that. Elsewhere ``torch.tanh``.

    Examples
    --------
    >>> x = torch.linspace(-20, 20, 101, dtype=torch.bfloat16)
    >>> bool((tanh32(x) - torch.tanh(x.float())).abs().max() < 1e-6), tanh32(x).dtype
    (True, torch.float32)
    """
    if x.device.type != "cpu" or x.dtype == torch.float64:
        return torch.tanh(x.to(torch.promote_types(x.dtype, torch.float32)))
    with torch.autocast("cpu", enabled=False):
        return _Tanh32.apply(x)


class _FullSoftmaxCE(torch.autograd.Function):
    """Summed softmax cross-entropy of ``hidden @ weight.T``; the gradients are formed in the
    forward pass, a chunk of rows at a time, so the (rows x classes) logits never exist whole."""

    @staticmethod
    def forward(ctx, hidden, weight, target, dtype, chunk):
        h, w = hidden.to(dtype), weight.to(dtype)
        acc = torch.promote_types(dtype, torch.float32)  # softmax and weight gradient: fp32 at least
        d_hidden = torch.empty(h.shape, dtype=dtype, device=h.device)
        d_weight = torch.zeros(w.shape, dtype=acc, device=w.device)
        total = torch.zeros((), dtype=torch.float64, device=h.device)
        rows = torch.arange(chunk, device=h.device)
        for start in range(0, h.shape[0], chunk):
            hc, tc = h[start : start + chunk], target[start : start + chunk]
            picked = rows[: len(tc)], tc
            logits = (hc @ w.T).to(acc)
            lse = torch.logsumexp(logits, 1)
            total += (lse - logits[picked]).sum(dtype=torch.float64)
            probs = logits.sub_(lse.unsqueeze(1)).exp_()
            probs[picked] -= 1.0  # d(loss)/d(logits) = softmax - one-hot
            grad = probs.to(dtype)
            torch.mm(grad, w, out=d_hidden[start : start + chunk])
            if dtype == acc:
                d_weight.addmm_(grad.T, hc)
            else:
                d_weight += grad.T @ hc
        ctx.save_for_backward(d_hidden, d_weight)
        ctx.dtypes = hidden.dtype, weight.dtype
        return total.to(acc)

    @staticmethod
    def backward(ctx, grad):
        d_hidden, d_weight = ctx.saved_tensors
        return (d_hidden * grad).to(ctx.dtypes[0]), (d_weight * grad).to(ctx.dtypes[1]), None, None, None


def full_softmax_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor, chunk: int = 64
) -> torch.Tensor:
    """``F.cross_entropy(hidden @ weight.T, target, reduction="sum")`` over many classes, faster.

    ``hidden`` is ``(rows, d)``, ``weight`` ``(classes, d)`` (e.g. an item embedding table),
    ``target`` class ids. Rows are processed ``chunk`` at a time: the logits of a chunk are
    turned into the gradients of ``hidden`` and ``weight`` at once (softmax minus one-hot), so
    no (rows x classes) tensor is ever stored and the logits are read back only from cache;
    under autocast the matrix products run in its dtype, the softmax in fp32; faster than the
    plain expression for large catalogues (SASRec's full softmax). The gradients are computed
    even when ``backward`` is not called.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> h, w, t = torch.randn(5, 4), torch.randn(30, 4), torch.tensor([1, 2, 3, 4, 5])
    >>> a = full_softmax_cross_entropy(h, w, t, chunk=2)
    >>> b = F.cross_entropy(h @ w.T, t, reduction="sum")
    >>> bool(torch.allclose(a, b))
    True
    """
    device = hidden.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
    with torch.autocast(device, enabled=False):
        return _FullSoftmaxCE.apply(hidden, weight, target, dtype, chunk)


def _dropout_threshold(p: float) -> tuple[int, float]:
    """A random byte ``< threshold`` drops an entry: the rate is ``threshold / 256`` (0.3 -> 0.3008)."""
    threshold = min(255, round(p * 256))
    return threshold, 256.0 / (256 - threshold)


def _keep_bytes(numel: int, p: float, device) -> tuple[torch.Tensor, float]:
    """A flat 0/1 uint8 keep mask at rate ``round(256 p) / 256`` (one random byte per entry, from
    64-bit draws) and the inverted-dropout scale."""
    threshold, scale = _dropout_threshold(p)
    draws = torch.randint(-(2**63), 2**63 - 1, ((numel + 7) // 8,), dtype=torch.int64, device=device)
    return (draws.view(torch.uint8)[:numel] >= threshold).view(torch.uint8), scale


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout; on CPU from random bytes (cheaper than ``bernoulli_``), at rate
    ``round(256 p) / 256``.

    Examples
    --------
    >>> y = dropout(torch.ones(1000), 0.5)
    >>> bool(((y == 0) | (y == 2)).all())
    True
    """
    if not training or p == 0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    keep, scale = _keep_bytes(x.numel(), p, x.device)
    return x * keep.view(x.shape).to(x.dtype).mul_(scale)


class Dropout(nn.Module):
    """:func:`dropout` as a module (``nn.Dropout``'s contract; cheaper masks on CPU)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _wide(x: torch.Tensor) -> torch.Tensor:
    """``x`` viewed with the widest element type (up to 16 bytes) its last axis and strides allow.

    A permuting copy moves whole elements: moving a head's ``dim`` values as one or two
    16-byte elements instead of ``dim`` 2- or 4-byte ones makes the head<->token reordering of
    attention several times faster. Bits are copied unchanged; view the result back with ``dtype``.
    """
    if x.stride(-1) != 1 and x.shape[-1] > 1:
        return x
    nbytes = x.element_size()
    for wide in (torch.complex128, torch.int64, torch.int32):
        w = wide.itemsize
        if (
            w > nbytes
            and x.shape[-1] * nbytes % w == 0
            and x.storage_offset() * nbytes % w == 0
            and all(s * nbytes % w == 0 for size, s in zip(x.shape[:-1], x.stride()[:-1]) if size > 1)
        ):
            return x.view(wide)
    return x


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _to_heads(x: torch.Tensor, dtype: torch.dtype, transpose: bool = False) -> torch.Tensor:
    """Token-major ``(n, t, h, d)`` (any strides) as contiguous head rows ``(h * n, t, d)`` of
    ``dtype`` (heads outermost), or ``(h * n, d, t)`` with ``transpose``."""
    n, t, h, d = x.shape
    rows = _wide(x).permute(2, 0, 1, 3).contiguous().view(x.dtype).view(h * n, t, d)
    if transpose:
        return torch.empty((n * h, d, t), dtype=dtype, device=x.device).copy_(rows.transpose(1, 2))
    return rows.to(dtype)


def _to_tokens(
    rows: torch.Tensor, dtype: torch.dtype, n: int, h: int, transposed: bool = False, parts: int = 1
) -> torch.Tensor:
    """Head rows ``(h * n, t, d)`` (``(h * n, d, t)`` if ``transposed``) back to a contiguous
    token-major ``(n, t, h, d)`` of ``dtype``; with ``parts`` > 1, ``parts`` such blocks one
    after the other (e.g. the query/key/value gradients) to one ``(n, t, parts, h, d)``."""
    if transposed:
        rows = torch.empty((rows.shape[0], rows.shape[2], rows.shape[1]), dtype=dtype, device=rows.device).copy_(
            rows.transpose(1, 2)
        )
    _, t, d = rows.shape
    rows = rows.to(dtype).view(parts, h, n, t, d)
    out = _wide(rows).permute(2, 3, 0, 1, 4).contiguous().view(dtype)
    return out if parts > 1 else out.view(n, t, h, d)


def _unfuse(ctx, q: torch.Tensor, k: torch.Tensor | None, v: torch.Tensor | None):
    """``(q, k, v)``; with ``k`` None, ``q`` is a fused ``(n, t, 3, h, d)`` projection, split
    into views (``ctx.fused`` then tells backward to return one gradient for it, not three stacked)."""
    ctx.fused = k is None
    return q.unbind(2) if ctx.fused else (q, k, v)


class _AttentionCPU(torch.autograd.Function):
    """(Causal) attention with dropout on the probabilities, in chunks of rows: products in fp32
    (``fp32_products``) or in the inputs' dtype, softmax and its gradient always in fp32.

    SDPA on CPU falls back to its unfused math path whenever dropout is on (a
    ``bernoulli_`` per probability and full-size temporaries) and is slow for short rows.
    Here each chunk stays in cache, dropout uses one random byte per probability taken
    from 64-bit draws, and large problems recompute probabilities in the backward pass.
    """

    @staticmethod
    def forward(ctx, q, k, v, dropout_p: float, causal: bool, scale: float, fp32_products: bool):
        q, k, v = _unfuse(ctx, q, k, v)
        n, t, h, dh = q.shape
        dtype = q.dtype
        # Products in fp32 (MKL), or in the inputs' dtype (bf16: oneDNN, much faster for tiny
        # matrices); probabilities always in fp32.
        compute = torch.promote_types(dtype, torch.float32) if fp32_products else dtype
        # With rows much longer than the head, fp32 q/k/v/out are held as (rows, head_dim, tokens):
        # MKL's batched GEMM of tiny matrices is faster with the tokens as the output width.
        flip = t >= 2 * dh and compute != torch.bfloat16
        q, k, v = (_to_heads(x, compute, flip) for x in (q, k, v))
        keep, drop_scale = None, 1.0
        if dropout_p > 0:  # a 0/1 byte per probability (multiplying by bytes is cheaper than masked_fill)
            keep, drop_scale = _keep_bytes(n * h * t * t, dropout_p, q.device)
            keep = keep.view(n, h, t, t)  # sample-major, whatever order the chunks take
        ctx.step = max(1, _CPU_CHUNK_ELEMENTS // (t * t))
        keep_probs = any(ctx.needs_input_grad) and n * h * t * t <= _CPU_KEEP_PROBS_ELEMENTS
        ctx.kept_probs = [] if keep_probs else None
        # bf16 products (oneDNN; then compute == dtype) go straight into the token-major output
        # through a strided view per head (rows of h * d), which costs its GEMM nothing (a
        # separate head -> token copy took ~20% of AutoInt's attention; the backward pass's
        # 3 h d-wide rows do cost, see there); MKL's fp32 GEMM is slower into strided views,
        # so fp32 fills head rows.
        direct = compute == torch.bfloat16
        out = torch.empty((n, t, h, v.shape[-1]), dtype=compute, device=q.device) if direct else torch.empty_like(v)
        for rows, samples, head in _AttentionCPU._chunks(n, h, ctx.step):
            probs = _AttentionCPU._probs(q[rows], k[rows], flip, causal, scale)
            kept = probs if keep is None else probs * keep[samples, head]
            kept = kept.to(compute)
            if ctx.kept_probs is not None:  # the backward pass needs both (the same tensor in fp32 without dropout)
                ctx.kept_probs.append((probs, kept))
            target = out[samples, :, head] if direct else out[rows]
            if flip:
                torch.bmm(v[rows], kept.transpose(1, 2), out=target)
            else:
                torch.bmm(kept, v[rows], out=target)
        if keep is not None:
            out.mul_(drop_scale)
        ctx.save_for_backward(q, k, v, keep)
        ctx.config = (n, h, t, dtype, drop_scale, flip, causal, scale)
        return out if direct else _to_tokens(out, dtype, n, h, flip)

    @staticmethod
    def _chunks(n: int, h: int, step: int):
        """(rows of the head-major layout, samples, head) per chunk: heads outermost, so a
        chunk is one head of a run of samples."""
        for head in range(h):
            for i in range(0, n, step):
                j = min(n, i + step)
                yield slice(head * n + i, head * n + j), slice(i, j), head

    @staticmethod
    def _probs(q: torch.Tensor, k: torch.Tensor, flip: bool, causal: bool, scale: float) -> torch.Tensor:
        q, k = (q.transpose(1, 2), k) if flip else (q, k.transpose(1, 2))
        t = q.shape[1]
        if causal:
            bias = torch.full((t, t), float("-inf"), dtype=q.dtype, device=q.device).triu_(1)
            return _softmax_rows(_at_least_fp32(torch.baddbmm(bias, q, k, alpha=scale)))
        scores = _at_least_fp32(torch.bmm(q, k))  # (softmax(bf16, dtype=float32) is slower here)
        return _softmax_rows(scores, scale)

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, keep = ctx.saved_tensors
        n, h, t, dtype, drop_scale, flip, causal, scale = ctx.config
        grad_out = _to_heads(grad_out, q.dtype, flip)
        if keep is not None:
            grad_out = grad_out * drop_scale
        # Head rows, converted to token-major once at the end: oneDNN's GEMMs run slower
        # into the strided per-head views of a (n, t, 3, h, d) gradient than into contiguous rows.
        if v.shape == q.shape:
            grads = torch.empty((3, *q.shape), dtype=q.dtype, device=q.device)
            dq, dk, dv = grads.unbind(0)
        else:  # values of another width (never fused)
            dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        for chunk, (rows, samples, head) in enumerate(_AttentionCPU._chunks(n, h, ctx.step)):
            if ctx.kept_probs is not None:
                probs, kept = ctx.kept_probs[chunk]
            else:
                probs = _AttentionCPU._probs(q[rows], k[rows], flip, causal, scale)
                kept = (probs if keep is None else probs * keep[samples, head]).to(q.dtype)
            g = grad_out[rows]
            dq_, dk_, dv_ = dq[rows], dk[rows], dv[rows]
            if flip:  # the same products on transposed operands: dv^T = g^T kept, dq^T = k^T dS^T, dk^T = q^T dS
                torch.bmm(g, kept, out=dv_)
                d_kept = torch.bmm(g.transpose(1, 2), v[rows])
            else:
                torch.bmm(kept.transpose(1, 2), g, out=dv_)
                d_kept = torch.bmm(g, v[rows].transpose(1, 2))
            d_probs = _at_least_fp32(d_kept)  # d loss / d probs: through the dropout mask
            if keep is not None:
                d_probs.mul_(keep[samples, head])
            d_scores = _softmax_rows_backward(d_probs, probs)
            if scale != 1.0:
                d_scores.mul_(scale)
            d_scores = d_scores.to(q.dtype)
            if flip:
                torch.bmm(k[rows], d_scores.transpose(1, 2), out=dq_)
                torch.bmm(q[rows], d_scores, out=dk_)
            else:
                torch.bmm(d_scores, k[rows], out=dq_)
                torch.bmm(d_scores.transpose(1, 2), q[rows], out=dk_)
        ctx.kept_probs = None
        if ctx.fused:
            return _to_tokens(grads.flatten(0, 1), dtype, n, h, flip, parts=3), None, None, None, None, None, None
        return *(_to_tokens(g, dtype, n, h, flip) for g in (dq, dk, dv)), None, None, None, None


def _block_diagonal(x: torch.Tensor) -> torch.Tensor:
    """Token-major ``(n, t, h, d)`` (any strides) as block-diagonal ``(n, h * t, h * d)``
    matrices: head ``i``'s ``(t, d)`` block at rows ``i t``, columns ``i d``, zeros elsewhere."""
    n, t, h, d = x.shape
    out = x.new_zeros(n, h * t, h * d)
    # All diagonal blocks as one strided view: block i starts i (t h d + d) elements in.
    out.as_strided((n, h, t, d), (h * t * h * d, t * h * d + d, h * d, 1)).copy_(x.permute(0, 2, 1, 3))
    return out


def _block_transpose(p: torch.Tensor, h: int) -> torch.Tensor:
    """``(n, t, h t)`` = ``[P_1 | .. | P_h]`` -> ``[P_1^T | .. | P_h^T]`` (contiguous)."""
    n, t, _ = p.shape
    return p.view(n, t, h, t).permute(0, 3, 2, 1).reshape(n, t, h * t)


class _BlockDiagonalAttention(torch.autograd.Function):
    """Attention of few tokens and heads (bf16, no dropout) as one batched GEMM per product.

    With token-major ``Q = [Q_1 | Q_2]`` (a projection's output as it is), ``Q @ diag(K_1,
    K_2)^T = [S_1 | S_2]`` gives every head's scores at once and ``[P_1 | P_2] @ diag(V_1,
    V_2)`` the token-major output; the backward pass uses the same trick (``dK_i = dS_i^T
    Q_i`` from ``[dS_1^T | dS_2^T] @ diag(Q_1, Q_2)``). The zero blocks double the
    arithmetic, but oneDNN's cost for tiny matrices is per matrix, so it pays off for AutoInt
    layers of few fields (from 16 tokens on, the per-head kernel is as fast or faster).
    """

    @staticmethod
    def forward(ctx, q, k, v, scale: float):
        q, k, v = _unfuse(ctx, q, k, v)
        n, t, h, d = q.shape
        bk, bv = _block_diagonal(k), _block_diagonal(v)
        scores = _at_least_fp32(torch.bmm(q.reshape(n, t, h * d), bk.transpose(1, 2)))
        probs = _softmax_rows(scores.view(n, t, h, t), scale).view(n, t, h * t)
        probs_low = probs.to(q.dtype)
        out = torch.bmm(probs_low, bv).view(n, t, h, d)
        ctx.save_for_backward(q, bk, bv, probs, probs_low)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, bk, bv, probs, probs_low = ctx.saved_tensors
        n, t, h, d = q.shape
        grads = torch.empty((n, t, 3, h, d), dtype=q.dtype, device=q.device)
        dq, dk, dv = (g.view(n, t, h * d) for g in grads.unbind(2))  # written in place by the GEMMs
        d_probs = _at_least_fp32(torch.bmm(grad_out.reshape(n, t, h * d), bv.transpose(1, 2)))
        d_scores = _softmax_rows_backward(d_probs.view(n, t, h, t), probs.view(n, t, h, t))
        if ctx.scale != 1.0:
            d_scores.mul_(ctx.scale)
        d_scores = d_scores.to(q.dtype).view(n, t, h * t)
        torch.bmm(d_scores, bk, out=dq)
        torch.bmm(_block_transpose(d_scores, h), _block_diagonal(q), out=dk)
        torch.bmm(_block_transpose(probs_low, h), _block_diagonal(grad_out), out=dv)
        if ctx.fused:
            return grads, None, None, None
        return *grads.unbind(2), None


def _strides(x: torch.Tensor):
    return (ctypes.c_int64 * 3)(*x.stride()[:3])


class _NativeAttention(torch.autograd.Function):
    """Attention (optionally causal, with dropout on the probabilities) through the compiled
    kernel of :mod:`.native`: each (sample, head)'s scores, softmax and products in fp32
    registers, read from and written to the token-major layout (any strides) in one pass; bf16
    or fp32 inputs, at most 64 tokens and head dims. The dropout mask is a hash of a seed drawn
    from torch's generator (so ``torch.manual_seed`` repeats it) and each probability's
    position, computed again in the backward pass instead of stored. Faster than the
    batched-GEMM path on AutoInt's layers (benchmarks/RESULTS.md, AutoInt+ vs FuxiCTR) and on
    FT-Transformer's and ExcelFormer's (benchmarks/attention_paths.py), and more exact than it
    (probabilities and their gradients are never rounded to bf16)."""

    @staticmethod
    def forward(ctx, q, k, v, scale: float, causal: bool = False, dropout_p: float = 0.0):
        q, k, v = _unfuse(ctx, q, k, v)
        n, t, h, d = q.shape
        lib = native.load()
        seed = int(torch.randint(0, 2**62, (), dtype=torch.int64)) if dropout_p > 0 else 0
        out = torch.empty((n, t, h, d), dtype=q.dtype, device=q.device)
        needs = any(ctx.needs_input_grad)
        # P^T per (sample, head), query lanes padded to whole 16-float vectors (the kernel's layout)
        probs = torch.empty((n, h, t, -(-t // 16) * 16), dtype=torch.float32, device=q.device) if needs else None
        threads = torch.get_num_threads()
        err = lib.ts_attention_forward(
            q.dtype == torch.bfloat16,
            q.data_ptr(),
            _strides(q),
            k.data_ptr(),
            _strides(k),
            v.data_ptr(),
            _strides(v),
            out.data_ptr(),
            _strides(out),
            None if probs is None else probs.data_ptr(),
            n,
            h,
            t,
            d,
            scale,
            causal,
            dropout_p,
            seed,
            threads,
        )
        if err:
            raise RuntimeError(f"native attention failed on shape {tuple(q.shape)}")
        if needs:
            ctx.save_for_backward(q, k, v, probs)
            ctx.scale, ctx.dropout_p, ctx.seed = scale, dropout_p, seed
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, probs = ctx.saved_tensors
        n, t, h, d = q.shape
        grad_out = grad_out.to(q.dtype)
        if grad_out.stride(-1) != 1:
            grad_out = grad_out.contiguous()
        if ctx.fused:  # one (n, t, 3, h, d) gradient, as the fused projection's output
            grads = torch.empty((n, t, 3, h, d), dtype=q.dtype, device=q.device)
            dq, dk, dv = grads.unbind(2)
        else:
            dq, dk, dv = (torch.empty((n, t, h, d), dtype=q.dtype, device=q.device) for _ in range(3))
        err = native.load().ts_attention_backward(
            q.dtype == torch.bfloat16,
            q.data_ptr(),
            _strides(q),
            k.data_ptr(),
            _strides(k),
            v.data_ptr(),
            _strides(v),
            grad_out.data_ptr(),
            _strides(grad_out),
            probs.data_ptr(),
            dq.data_ptr(),
            _strides(dq),
            dk.data_ptr(),
            _strides(dk),
            dv.data_ptr(),
            _strides(dv),
            n,
            h,
            t,
            d,
            ctx.scale,
            ctx.dropout_p,
            ctx.seed,
            torch.get_num_threads(),
        )
        if err:
            raise RuntimeError(f"native attention failed on shape {tuple(q.shape)}")
        if ctx.fused:
            return grads, None, None, None, None, None
        return dq, dk, dv, None, None, None


def _use_native(q: torch.Tensor, k: torch.Tensor | None, v: torch.Tensor | None) -> bool:
    """Whether :class:`_NativeAttention` takes these inputs (CPU fp32/bf16, <= 64 tokens and
    head dims, contiguous last axes) and the kernels are built (multi-threaded only with OpenMP)."""
    xs = q.unbind(2) if k is None else (q, k, v)
    if not (
        q.dtype in (torch.float32, torch.bfloat16)
        and all(x.dtype == q.dtype and x.shape == xs[0].shape and x.stride(-1) == 1 for x in xs)
    ):
        return False
    if not (1 <= xs[0].shape[1] <= 64 and 1 <= xs[0].shape[-1] <= 64 and xs[0].numel()):
        return False
    lib = native.load()
    return lib is not None and (lib.openmp or torch.get_num_threads() == 1)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float = 0.0) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d) + causal mask)``, dropout on the probabilities, times ``v``.

    Token-major shapes ``(batch, tokens, heads, head_dim)`` in and out: a projection's output
    viewed per head, any strides (e.g. slices of one fused QKV projection), and the output
    reshapes to ``(batch, tokens, heads * head_dim)`` for free. On CPU, at most 64 tokens and
    head dims go through the compiled kernel of :mod:`.native` when it is built; otherwise a
    chunked fp32 kernel (faster than SDPA on CPU once dropout is on or rows are short; its
    dropout rate is ``p`` rounded to 1/256); elsewhere PyTorch's fused SDPA.

    Examples
    --------
    >>> q = torch.randn(2, 3, 1, 4, generator=torch.Generator().manual_seed(0))
    >>> ref = F.scaled_dot_product_attention(*(x.transpose(1, 2) for x in (q, q, q)), is_causal=True)
    >>> torch.allclose(causal_attention(q, q, q), ref.transpose(1, 2), atol=1e-5)
    True
    """
    if q.device.type != "cpu":
        q, k, v = (x.transpose(1, 2) for x in (q, k, v))
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True).transpose(1, 2)
    with torch.autocast("cpu", enabled=False):
        if dropout_p < 1 and _use_native(q, k, v):
            return _NativeAttention.apply(q, k, v, q.shape[-1] ** -0.5, True, dropout_p)
        return _AttentionCPU.apply(q, k, v, dropout_p, True, q.shape[-1] ** -0.5, True)


def attention(
    q: torch.Tensor,
    k: torch.Tensor | None = None,
    v: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> torch.Tensor:
    """``softmax(scale q k^T) v`` with dropout on the probabilities (every token sees every token).

    Token-major shapes ``(batch, tokens, heads, dim)`` in and out, as :func:`causal_attention`.
    On CPU, fp32/bf16 inputs of at most 64 tokens and head dims go through the compiled kernel
    of :mod:`.native` when it is built (:class:`_NativeAttention`, dropout included). Otherwise
    the CPU kernel of :func:`causal_attention` without the mask, except that bf16 inputs keep
    bf16 products, as autocast's matmuls (oneDNN's batched bf16 GEMM is several times faster
    than fp32 for the tiny per-head matrices of AutoInt; the softmax stays fp32; with at most
    2 heads, heads x tokens <= 28, bf16 and no dropout, all heads go through one GEMM per
    product with block-diagonal operands, see :class:`_BlockDiagonalAttention`); ``scale`` defaults to
    ``1/sqrt(dim)``. Elsewhere PyTorch's fused SDPA. With ``k`` and ``v`` left out, ``q`` is
    one fused ``(batch, tokens, 3, heads, dim)`` query/key/value projection (its gradient is
    then written in place of three that autograd would stack).

    Examples
    --------
    >>> q = torch.randn(2, 5, 3, 4, generator=torch.Generator().manual_seed(0))
    >>> ref = F.scaled_dot_product_attention(*(x.transpose(1, 2) for x in (q, q, q))).transpose(1, 2)
    >>> torch.allclose(attention(q, q, q), ref, atol=1e-5)
    True
    >>> torch.allclose(attention(torch.stack((q, q, q), 2)), ref, atol=1e-6)
    True
    """
    if (k is None) != (v is None):
        raise ValueError("Pass both k and v, or neither (q then holds the fused query/key/value).")
    if scale is None:
        scale = q.shape[-1] ** -0.5
    if q.device.type != "cpu":
        qkv = q.unbind(2) if k is None else (q, k, v)
        q, k, v = (x.transpose(1, 2) for x in qkv)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=scale).transpose(1, 2)
    n_tokens, n_heads = q.shape[1], q.shape[-2]
    with torch.autocast("cpu", enabled=False):
        if scale > 0 and dropout_p < 1 and _use_native(q, k, v):  # (the kernel shifts by the unscaled max)
            return _NativeAttention.apply(q, k, v, scale, False, dropout_p)
        if q.dtype == torch.bfloat16 and dropout_p == 0 and n_heads <= 2 and n_heads * n_tokens <= 28:
            return _BlockDiagonalAttention.apply(q, k, v, scale)
        return _AttentionCPU.apply(q, k, v, dropout_p, False, scale, False)


class MultiheadAttention(nn.Module):
    """Multi-head attention over feature tokens: self-attention on CPU through :func:`attention`
    (one fused query/key/value projection; the compiled kernel, dropout included), else PyTorch's SDPA.

    Initialisation follows rtdl's FT-Transformer: Xavier-uniform (gain 1/sqrt(2)) for the
    query/key/value projections, zero biases; no outut projection for a single head.

    Examples
    --------
    >>> attn = MultiheadAttention(d=8, n_heads=2)
    >>> attn(torch.zeros(3, 5, 8), torch.zeros(3, 5, 8)).shape
    torch.Size([3, 5, 8])
    """

    def __init__(self, d: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d % n_heads:
            raise ValueError(f"d_token={d} must be divisible by n_heads={n_heads}.")
        self.n_heads = n_heads
        self.dropout = dropout
        self.W_q = nn.Linear(d, d, bias)
        self.W_k = nn.Linear(d, d, bias)
        self.W_v = nn.Linear(d, d, bias)
        self.W_out = nn.Linear(d, d, bias) if n_heads > 1 else None
        for m in (self.W_q, self.W_k, self.W_v):
            if m is not self.W_v or self.W_out is not None:
                nn.init.xavier_uniform_(m.weight, gain=1 / math.sqrt(2))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        if self.W_out is not None and self.W_out.bias is not None:
            nn.init.zeros_(self.W_out.bias)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        return x.view(n, t, self.n_heads, d // self.n_heads).transpose(1, 2)

    def forward(self, x_q: torch.Tensor, x_kv: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        dropout = self.dropout if self.training else 0.0
        if x_q is x_kv and attn_mask is None and x_q.device.type == "cpu":
            # Self-attention on CPU: one fused projection, and :func:`attention` on the token-major
            # layout (no per-head copies): the compiled kernel for few tokens, dropout included
            # (SDPA's CPU path with dropout is unfused).
            n, t, d = x_q.shape
            w = torch.cat((self.W_q.weight, self.W_k.weight, self.W_v.weight))
            b = None if self.W_q.bias is None else torch.cat((self.W_q.bias, self.W_k.bias, self.W_v.bias))
            qkv = F.linear(x_q, w, b).view(n, t, 3, self.n_heads, d // self.n_heads)
            out = attention(qkv, dropout_p=dropout).flatten(2)
            return out if self.W_out is None else self.W_out(out)
        q, k, v = self._split(self.W_q(x_q)), self._split(self.W_k(x_kv)), self._split(self.W_v(x_kv))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout)
        out = out.transpose(1, 2).flatten(2)
        return out if self.W_out is None else self.W_out(out)


class ReGLU(nn.Module):
    """``a * relu(b)`` where ``a, b`` are the two halves of the last dimension."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=-1)
        return a * F.relu(b)


class TransformerBlock(nn.Module):
    """Pre-norm transformer layer with a ReGLU FFN (FT-Transformer).

    ``first=True`` drops the attention LayerNorm (the input tokens are already normalised
    embeddings, as in the paper). ``query_tokens=k`` makes the block outut only the first
    ``k`` tokens, used in the last layer where only the [CLS] token feeds the head.
    """

    def __init__(
        self,
        d: int,
        n_heads: int,
        attention_dropout: float,
        ffn_d_hidden: int,
        ffn_dropout: float,
        residual_dropout: float,
        first: bool = False,
        query_tokens: int | None = None,
    ):
        super().__init__()
        self.attention_norm = None if first else nn.LayerNorm(d)
        self.attention = MultiheadAttention(d, n_heads, attention_dropout)
        self.ffn_norm = nn.LayerNorm(d)
        self.ffn = nn.Sequential(
            nn.Linear(d, 2 * ffn_d_hidden), ReGLU(), nn.Dropout(ffn_dropout), nn.Linear(ffn_d_hidden, d)
        )
        self.residual_dropout = nn.Dropout(residual_dropout)
        self.query_tokens = query_tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.attention_norm is None else self.attention_norm(x)
        if self.query_tokens is not None:
            x, h_q = x[:, : self.query_tokens], h[:, : self.query_tokens]
        else:
            h_q = h
        x = x + self.residual_dropout(self.attention(h_q, h))
        return x + self.residual_dropout(self.ffn(self.ffn_norm(x)))
