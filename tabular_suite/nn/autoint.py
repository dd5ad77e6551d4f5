"""AutoInt and AutoInt+ (Song et al., CIKM'19), as in FuxiCTR's reference implementation.

Field embeddings go through stacked multi-head self-attention "interacting layers": per head
``softmax(Q K^T [/ sqrt(d_head)]) V``, heads concatenated, plus a residual projection of the
layer input, then ReLU (optionally LayerNorm before the ReLU). The flattened output feeds a
linear logit; AutoInt+ adds a parallel MLP over the flattened embeddings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import attention
from .embeddings import FieldEmbedding

__all__ = ["AutoInt", "InteractingLayer", "ctr_mlp", "xavier_linears"]


def xavier_linears(module: nn.Module) -> nn.Module:
    """FuxiCTR's default initialisation: every ``nn.Linear`` Xavier-normal, biases zero.

    AutoInt's fused query/key/value projection is initialised as the three separate
    matrices FuxiCTR has (each third with its own fan-out). Returns ``module``.

    Examples
    --------
    >>> layer = xavier_linears(nn.Linear(400, 400))
    >>> round(float(layer.weight.detach().std()), 2), float(layer.bias.detach().abs().max())
    (0.05, 0.0)
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            parts = 3 if getattr(m, "_fused_qkv", False) else 1
            for part in m.weight.data.chunk(parts, dim=0):
                nn.init.xavier_normal_(part)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def ctr_mlp(d_in: int, hidden: tuple[int, ...], dropout: float = 0.0, d_out: int | None = None,
            batch_norm: bool = False) -> nn.Sequential:
    """FuxiCTR's MLP block: [Linear -> (BatchNorm) -> ReLU -> (Dropout)] per hidden layer, optional output Linear.

    Examples
    --------
    >>> ctr_mlp(8, (16, 16), d_out=1)(torch.zeros(2, 8)).shape
    torch.Size([2, 1])
    """
    layers, d = [], d_in
    for width in hidden:
        layers.append(nn.Linear(d, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        if dropout:
            layers.append(nn.Dropout(dropout))
        d = width
    if d_out is not None:
        layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


class InteractingLayer(nn.Module):
    """One AutoInt interacting layer over (n, fields, d_in) -> (n, fields, d_attention).

    Examples
    --------
    >>> InteractingLayer(10, 8, n_heads=2)(torch.zeros(3, 5, 10)).shape
    torch.Size([3, 5, 8])
    """

    def __init__(self, d_in: int, d_attention: int, n_heads: int = 1, dropout: float = 0.0,
                 use_residual: bool = True, use_scale: bool = False, layer_norm: bool = False):
        super().__init__()
        if d_attention % n_heads:
            raise ValueError(f"attention_dim={d_attention} must be divisible by n_heads={n_heads}.")
        self.n_heads, self.dropout, self.use_scale = n_heads, dropout, use_scale
        self.W_qkv = nn.Linear(d_in, 3 * d_attention, bias=False)
        self.W_qkv._fused_qkv = True  # xavier_linears initialises W_q, W_k, W_v separately
        self.W_res = nn.Linear(d_in, d_attention, bias=False) if use_residual and d_in != d_attention else None
        self.use_residual = use_residual
        self.norm = nn.LayerNorm(d_attention) if layer_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, f, _ = x.shape
        qkv = self.W_qkv(x).view(n, f, 3, self.n_heads, -1)
        # FuxiCTR scales scores by 1/sqrt(d_head) only with use_scale (None = that default).
        scale = None if self.use_scale else 1.0
        out = attention(qkv, dropout_p=self.dropout if self.training else 0.0, scale=scale).reshape(n, f, -1)
        if self.use_residual:
            out = out + (x if self.W_res is None else self.W_res(x))
        if self.norm is not None:
            out = self.norm(out)
        return F.relu(out)


class AutoInt(nn.Module):
    """AutoInt over field embeddings; ``dnn_hidden`` non-empty makes it AutoInt+.

    Defaults follow the paper (embedding 16, 3 interacting layers, 2 heads, attention dim 32,
    residual connections, unscaled dot products); AutoInt+'s MLP is 3 x 400 as in FuxiCTR's
    tuned configurations.

    Examples
    --------
    >>> m = AutoInt(n_num=2, cardinalities=[100, 5], d_out=1, dnn_hidden=(32,))
    >>> m(torch.zeros(4, 2), torch.zeros(4, 2, dtype=torch.long)).shape
    torch.Size([4, 1])
    """

    def __init__(self, n_num: int, cardinalities: list[int], d_out: int, embedding_dim: int = 16,
                 attention_layers: int = 3, n_heads: int = 2, attention_dim: int = 32, use_residual: bool = True,
                 use_scale: bool = False, layer_norm: bool = False, attention_dropout: float = 0.0,
                 dnn_hidden: tuple[int, ...] = (), dnn_dropout: float = 0.0, batch_norm: bool = False):
        super().__init__()
        self.embedding = FieldEmbedding(n_num, cardinalities, embedding_dim)
        n_fields = self.embedding.n_fields
        self.interacting = nn.Sequential(*[
            InteractingLayer(embedding_dim if i == 0 else attention_dim, attention_dim, n_heads, attention_dropout,
                             use_residual, use_scale, layer_norm)
            for i in range(attention_layers)
        ])
        d_last = attention_dim if attention_layers else embedding_dim
        self.head = nn.Linear(n_fields * d_last, d_out)
        self.dnn = ctr_mlp(n_fields * embedding_dim, tuple(dnn_hidden), dnn_dropout, d_out, batch_norm) if dnn_hidden else None
        xavier_linears(self)  # as FuxiCTR's reset_parameters

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(x_num, x_cat)
        out = self.head(self.interacting(emb).flatten(1))
        if self.dnn is not None:
            out = out + self.dnn(emb.flatten(1))
        return out
