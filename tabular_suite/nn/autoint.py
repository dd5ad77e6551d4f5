"""AutoInt and AutoInt+ (Song et al., CIKM'19), as in FuxiCTR's reference implementation.

Field embeddings go through stacked multi-head self-attention "interacting layers": per head
``softmax(Q K^T [/ sqrt(d_head)]) V``, heads concatenated, plus a residual projection of the
layer input, then ReLU (optionally LayerNorm before the ReLU). The flattened output feeds a
linear logit; AutoInt+ adds a parallel MLP over the flattened embeddings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.params import param
from .blocks import attention
from .embeddings import FieldEmbedding

__all__ = ["AutoInt", "AutoIntConfig", "InteractingLayer", "ctr_mlp", "xavier_linears"]


@dataclass(kw_only=True, eq=False)
class AutoIntConfig:
    """AutoInt's hyperparameters, with the paper's defaults; ``dnn_hidden`` non-empty makes it AutoInt+."""

    embedding_dim: int = param(16, "Size of every field embedding.")
    attention_layers: int = param(3, "Number of interacting (self-attention) layers.")
    n_heads: int = param(2, "Attention heads per interacting layer; must divide ``attention_dim``.")
    attention_dim: int = param(32, "Output width of each interacting layer (all heads together).")
    use_residual: bool = param(True, "Add a residual projection of each interacting layer's input.")
    use_scale: bool = param(False, "Scale attention scores by 1/sqrt(head dim) (the paper does not).")
    layer_norm: bool = param(False, "LayerNorm before each interacting layer's ReLU.")
    attention_dropout: float = param(0.0, "Dropout on the attention probabilities.")
    dnn_hidden: tuple = param(
        (),
        "Widths of AutoInt+'s parallel MLP over the flattened embeddings; empty = plain AutoInt.",
        type="tuple of int",
    )
    dnn_dropout: float = param(0.0, "Dropout after each hidden layer of AutoInt+'s MLP.")
    batch_norm: bool = param(False, "BatchNorm after each hidden Linear of AutoInt+'s MLP.")


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


def ctr_mlp(
    d_in: int, hidden: tuple[int, ...], dropout: float = 0.0, d_out: int | None = None, batch_norm: bool = False
) -> nn.Sequential:
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

    def __init__(
        self,
        d_in: int,
        d_attention: int,
        n_heads: int = 1,
        dropout: float = 0.0,
        use_residual: bool = True,
        use_scale: bool = False,
        layer_norm: bool = False,
    ):
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

    ``**config``: the fields of :class:`AutoIntConfig`, whose defaults follow the paper
    (kept as the dict :attr:`config`).

    Examples
    --------
    >>> m = AutoInt(n_num=2, cardinalities=[100, 5], d_out=1, dnn_hidden=(32,))
    >>> m(torch.zeros(4, 2), torch.zeros(4, 2, dtype=torch.long)).shape
    torch.Size([4, 1])
    """

    config_class = AutoIntConfig  # the dataclass of the ``**config`` hyperparameters

    def __init__(self, n_num: int, cardinalities: list[int], d_out: int, **config):
        super().__init__()
        cfg = AutoIntConfig(**config)
        self.config = asdict(cfg)
        d_embedding, d_attention = cfg.embedding_dim, cfg.attention_dim
        self.embedding = FieldEmbedding(n_num, cardinalities, d_embedding)
        n_fields = self.embedding.n_fields
        self.interacting = nn.Sequential(
            *[
                InteractingLayer(
                    d_embedding if i == 0 else d_attention,
                    d_attention,
                    cfg.n_heads,
                    cfg.attention_dropout,
                    cfg.use_residual,
                    cfg.use_scale,
                    cfg.layer_norm,
                )
                for i in range(cfg.attention_layers)
            ]
        )
        d_last = d_attention if cfg.attention_layers else d_embedding
        self.head = nn.Linear(n_fields * d_last, d_out)
        self.dnn = None
        if cfg.dnn_hidden:
            self.dnn = ctr_mlp(n_fields * d_embedding, tuple(cfg.dnn_hidden), cfg.dnn_dropout, d_out, cfg.batch_norm)
        xavier_linears(self)  # as FuxiCTR's reset_parameters

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(x_num, x_cat)
        out = self.head(self.interacting(emb).flatten(1))
        if self.dnn is not None:
            out = out + self.dnn(emb.flatten(1))
        return out
