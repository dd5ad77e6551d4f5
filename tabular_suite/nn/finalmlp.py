"""FinalMLP (Mao et al., AAAI'23), as in FuxiCTR's reference implementation.

Two MLP streams read the flattened field embeddings, each through its own feature gate
(``2 * sigmoid(MLP(context))`` multiplied element-wise into the embeddings; the context is a
learned bias vector, or the embeddings of chosen fields such as the user), and their outputs
are fused by multi-head bilinear aggregation ``w1.o1 + w2.o2 + sum_h o1_h^T W_h o2_h``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..core.params import param
from .autoint import ctr_mlp, xavier_linears
from .embeddings import FieldEmbedding

__all__ = ["FinalMLP", "FinalMLPConfig", "FeatureGate", "BilinearFusion"]


@dataclass(kw_only=True, eq=False)
class FinalMLPConfig:
    """FinalMLP's hyperparameters, with the defaults of FuxiCTR's tuned FinalMLP configurations."""

    embedding_dim: int = param(10, "Size of every field embedding.")
    mlp1_hidden: tuple = param(
        (400, 400, 400), "Widths of the first stream's MLP (the fusion reads its last layer).", type="tuple of int"
    )
    mlp2_hidden: tuple = param(
        (800,), "Widths of the second stream's MLP (the fusion reads its last layer).", type="tuple of int"
    )
    mlp1_dropout: float = param(0.0, "Dropout after each hidden layer of the first stream.")
    mlp2_dropout: float = param(0.0, "Dropout after each hidden layer of the second stream.")
    batch_norm: bool = param(False, "BatchNorm after each hidden Linear of both streams.")
    use_gates: bool = param(True, "Feature gating of each stream's input: ``2 * sigmoid(MLP(context))``.")
    gate_hidden: tuple = param((800,), "Hidden widths of each gate's MLP.", type="tuple of int")
    n_heads: int = param(50, "Heads of the bilinear fusion; must divide both streams' last widths.")


class FeatureGate(nn.Module):
    """``embeddings * 2 * sigmoid(MLP(context))`` with context = chosen fields or a learned bias.

    Examples
    --------
    >>> gate = FeatureGate(n_fields=3, d=4, hidden=(8,), context_fields=[0])
    >>> gate(torch.ones(2, 3, 4)).shape
    torch.Size([2, 12])
    """

    def __init__(self, n_fields: int, d: int, hidden: tuple[int, ...], context_fields: list[int] | None = None):
        super().__init__()
        self.context_fields = list(context_fields or [])
        self.bias = None if self.context_fields else nn.Parameter(torch.zeros(1, d))
        d_context = d * max(1, len(self.context_fields))
        self.mlp = nn.Sequential(ctr_mlp(d_context, tuple(hidden), d_out=n_fields * d), nn.Sigmoid())

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        if self.context_fields:
            gate = self.mlp(emb[:, self.context_fields].flatten(1))
        else:
            # A bias context is the same for every row: its gate is computed once and broadcast
            # (FuxiCTR repeats the bias per row; values and gradients are the same).
            gate = self.mlp(self.bias)
        return emb.flatten(1) * (2 * gate)


class BilinearFusion(nn.Module):
    """Multi-head bilinear fusion of two stream outputs x (n, dx), y (n, dy) -> (n, d_out).

    Examples
    --------
    >>> BilinearFusion(8, 4, d_out=1, n_heads=2)(torch.ones(3, 8), torch.ones(3, 4)).shape
    torch.Size([3, 1])
    """

    def __init__(self, d_x: int, d_y: int, d_out: int = 1, n_heads: int = 1):
        super().__init__()
        if d_x % n_heads or d_y % n_heads:
            raise ValueError(f"n_heads={n_heads} must divide both stream widths ({d_x}, {d_y}).")
        self.n_heads, self.d_out = n_heads, d_out
        self.w_x, self.w_y = nn.Linear(d_x, d_out), nn.Linear(d_y, d_out)
        self.w_xy = nn.Parameter(torch.empty(n_heads, d_x // n_heads, d_y // n_heads, d_out))
        nn.init.xavier_normal_(self.w_xy.view(n_heads * (d_x // n_heads) * (d_y // n_heads), d_out))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n, h = x.shape[0], self.n_heads
        hx = x.view(n, h, -1).transpose(0, 1)  # (h, n, dx_h)
        # sum_h hx_h^T W_h hy_h: one matrix product per head gives hx_h^T W_h for every row,
        # laid back out as (n, h * dy_h, out) and dotted with y row by row (no per-row matrix
        # products: FuxiCTR's and einsum's cost 2-3x more on a CPU core).
        xw = torch.bmm(hx, self.w_xy.flatten(2).to(hx.dtype))  # (h, n, dy_h * out)
        xw = xw.view(h, n, -1, self.d_out).transpose(0, 1).reshape(n, -1, self.d_out)
        if self.d_out == 1:
            bilinear = (xw.view(n, -1) * y).sum(1, keepdim=True)
        else:
            bilinear = (xw * y.unsqueeze(-1)).sum(1)
        return self.w_x(x) + self.w_y(y) + bilinear


class FinalMLP(nn.Module):
    """FinalMLP over field embeddings with feature gating and bilinear fusion.

    ``gate_fields_1`` / ``gate_fields_2``: field positions whose embeddings drive each
    stream's gate (None or empty = a learned bias, FuxiCTR's default); they depend on the
    data's columns, as ``n_num`` and ``cardinalities`` do, so they are not hyperparameters.
    ``**config``: the fields of :class:`FinalMLPConfig` (kept as the dict :attr:`config`).

    Examples
    --------
    >>> m = FinalMLP(n_num=1, cardinalities=[10, 10], d_out=1, mlp1_hidden=(8,), mlp2_hidden=(4,), n_heads=2,
    ...              gate_hidden=(8,), gate_fields_1=[1])
    >>> m(torch.zeros(5, 1), torch.zeros(5, 2, dtype=torch.long)).shape
    torch.Size([5, 1])
    """

    config_class = FinalMLPConfig  # the dataclass of the ``**config`` hyperparameters

    def __init__(
        self,
        n_num: int,
        cardinalities: list[int],
        d_out: int,
        *,
        gate_fields_1: list[int] | None = None,
        gate_fields_2: list[int] | None = None,
        **config,
    ):
        super().__init__()
        cfg = FinalMLPConfig(**config)
        self.config = asdict(cfg)
        d_embedding = cfg.embedding_dim
        self.embedding = FieldEmbedding(n_num, cardinalities, d_embedding)
        n_fields = self.embedding.n_fields
        d_flat = n_fields * d_embedding
        self.gates = None
        if cfg.use_gates:
            self.gates = nn.ModuleList(
                [
                    FeatureGate(n_fields, d_embedding, cfg.gate_hidden, gate_fields_1),
                    FeatureGate(n_fields, d_embedding, cfg.gate_hidden, gate_fields_2),
                ]
            )
        self.mlp1 = ctr_mlp(d_flat, tuple(cfg.mlp1_hidden), cfg.mlp1_dropout, batch_norm=cfg.batch_norm)
        self.mlp2 = ctr_mlp(d_flat, tuple(cfg.mlp2_hidden), cfg.mlp2_dropout, batch_norm=cfg.batch_norm)
        self.fusion = BilinearFusion(cfg.mlp1_hidden[-1], cfg.mlp2_hidden[-1], d_out, cfg.n_heads)
        xavier_linears(self)  # as FuxiCTR's reset_parameters (w_xy: Xavier above)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(x_num, x_cat)
        if self.gates is None:
            x1 = x2 = emb.flatten(1)
        else:
            x1, x2 = self.gates[0](emb), self.gates[1](emb)
        return self.fusion(self.mlp1(x1), self.mlp2(x2))
