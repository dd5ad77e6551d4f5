"""MLP of "Revisiting Deep Learning Models for Tabular Data" (Gorishniy et al., 2021)."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import make_activation
from .embeddings import FlatInput

__all__ = ["MLP"]


class MLP(nn.Module):
    """``(Linear -> ReLU -> Dropout) x n_blocks -> Linear``.

    Categorical columns enter as learned embeddings of size ``cat_embedding_dim``,
    concatenated with the numeric features.

    Examples
    --------
    >>> m = MLP(n_num=3, cardinalities=[4], d_out=2, n_blocks=2, d_block=16)
    >>> m(torch.zeros(5, 3), torch.zeros(5, 1, dtype=torch.long)).shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        n_num: int,
        cardinalities: list[int],
        d_out: int,
        n_blocks: int = 3,
        d_block: int = 256,
        dropout: float = 0.1,
        activation: str = "relu",
        cat_embedding_dim: int = 8,
    ):
        super().__init__()
        self.input = FlatInput(n_num, cardinalities, cat_embedding_dim)
        layers, d_in = [], self.input.d_out
        for _ in range(n_blocks):
            layers += [nn.Linear(d_in, d_block), make_activation(activation), nn.Dropout(dropout)]
            d_in = d_block
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(d_in, d_out)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.input(x_num, x_cat)))
