"""Blocks shared by the architectures: attention, gated FFNs, transformer layers."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MultiheadAttention", "ReGLU", "TransformerBlock", "make_activation"]


def make_activation(name: str) -> nn.Module:
    """``"relu"``, ``"gelu"``, ``"silu"`` or ``"tanh"`` as a module."""
    table = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}
    if name not in table:
        raise ValueError(f"Unknown activation {name!r}; choose one of {sorted(table)}.")
    return table[name]()


class MultiheadAttention(nn.Module):
    """Multi-head attention over feature tokens with fused SDPA kernels.

    Initialisation follows rtdl's FT-Transformer: Xavier-uniform (gain 1/sqrt(2)) for the
    query/key/value projections, zero biases; no output projection for a single head.

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
        q, k, v = self._split(self.W_q(x_q)), self._split(self.W_k(x_kv)), self._split(self.W_v(x_kv))
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
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
    embeddings, as in the paper). ``query_tokens=k`` makes the block output only the first
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
