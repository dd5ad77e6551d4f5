"""ResNet of "Revisiting Deep Learning Models for Tabular Data" (Gorishniy et al., 2021)."""

from __future__ import annotations

import torch
from torch import nn

from .embeddings import FlatInput

__all__ = ["ResNet"]


class _ResidualBlock(nn.Module):
    def __init__(self, d: int, d_hidden: int, dropout1: float, dropout2: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm1d(d),
            nn.Linear(d, d_hidden),
            nn.ReLU(),
            nn.Dropout(dropout1),
            nn.Linear(d_hidden, d),
            nn.Dropout(dropout2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet(nn.Module):
    """``Linear; n x [x + Dropout(Linear(Dropout(ReLU(Linear(BN(x))))))]; BN -> ReLU -> Linear``.

    Examples
    --------
    >>> m = ResNet(n_num=3, cardinalities=[], d_out=1, n_blocks=1, d_block=8).eval()
    >>> m(torch.zeros(2, 3), torch.zeros(2, 0, dtype=torch.long)).shape
    torch.Size([2, 1])
    """

    def __init__(
        self,
        n_num: int,
        cardinalities: list[int],
        d_out: int,
        n_blocks: int = 3,
        d_block: int = 192,
        d_hidden_multiplier: float = 2.0,
        dropout1: float = 0.15,
        dropout2: float = 0.0,
        cat_embedding_dim: int = 8,
    ):
        super().__init__()
        self.input = FlatInput(n_num, cardinalities, cat_embedding_dim)
        self.first = nn.Linear(self.input.d_out, d_block)
        d_hidden = int(d_block * d_hidden_multiplier)
        self.blocks = nn.Sequential(*[_ResidualBlock(d_block, d_hidden, dropout1, dropout2) for _ in range(n_blocks)])
        self.head = nn.Sequential(nn.BatchNorm1d(d_block), nn.ReLU(), nn.Linear(d_block, d_out))

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.first(self.input(x_num, x_cat))))
