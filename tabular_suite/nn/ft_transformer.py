"""FT-Transformer of "Revisiting Deep Learning Models for Tabular Data" (Gorishniy et al., 2021)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .blocks import TransformerBlock
from .embeddings import FeatureTokenizer

__all__ = ["FTTransformer"]


class FTTransformer(nn.Module):
    """Feature tokenizer + [CLS] + pre-norm transformer (ReGLU FFN) + ``LN -> ReLU -> Linear``.

    Defaults are the paper's default configuration: 3 blocks, d_token 192, 8 heads,
    attention dropout 0.2, FFN size 4/3 d_token, FFN dropout 0.1, residual dropout 0.
    The last block attends from the [CLS] token only, since only its output reaches the head.

    Examples
    --------
    >>> m = FTTransformer(n_num=2, cardinalities=[3], d_out=1, n_blocks=1, d_token=8, n_heads=2)
    >>> m(torch.zeros(4, 2), torch.zeros(4, 1, dtype=torch.long)).shape
    torch.Size([4, 1])
    """

    def __init__(
        self,
        n_num: int,
        cardinalities: list[int],
        d_out: int,
        n_blocks: int = 3,
        d_token: int = 192,
        n_heads: int = 8,
        attention_dropout: float = 0.2,
        ffn_d_hidden_multiplier: float = 4 / 3,
        ffn_dropout: float = 0.1,
        residual_dropout: float = 0.0,
    ):
        super().__init__()
        self.tokenizer = FeatureTokenizer(n_num, cardinalities, d_token)
        self.cls = nn.Parameter(torch.empty(1, 1, d_token))
        nn.init.uniform_(self.cls, -1 / math.sqrt(d_token), 1 / math.sqrt(d_token))
        ffn_d_hidden = int(d_token * ffn_d_hidden_multiplier)
        self.blocks = nn.Sequential(
            *[
                TransformerBlock(
                    d_token, n_heads, attention_dropout, ffn_d_hidden, ffn_dropout, residual_dropout,
                    first=(i == 0), query_tokens=1 if i == n_blocks - 1 else None,
                )
                for i in range(n_blocks)
            ]
        )
        self.head = nn.Sequential(nn.LayerNorm(d_token), nn.ReLU(), nn.Linear(d_token, d_out))

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        tokens = self.tokenizer(x_num, x_cat)
        x = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return self.head(self.blocks(x)[:, 0])
