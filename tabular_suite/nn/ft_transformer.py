"""FT-Transformer of "Revisiting Deep Learning Models for Tabular Data" (Gorishniy et al., 2021)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..core.params import param
from .blocks import TransformerBlock
from .embeddings import FeatureTokenizer, NumericTokenizer
from .num_embeddings import NumEmbeddingConfig, make_num_embeddings

__all__ = ["FTTransformer", "FTTransformerConfig"]


@dataclass(kw_only=True, eq=False)
class FTTransformerConfig(NumEmbeddingConfig):
    """The FT-Transformer's hyperparameters: the paper's default configuration (numeric embeddings, of
    size ``d_token``, replace the linear numeric tokens when set)."""

    n_blocks: int = param(3, "Number of transformer blocks.")
    d_token: int = param(192, "Size of every feature token.")
    n_heads: int = param(8, "Attention heads; must divide ``d_token``.")
    attention_dropout: float = param(0.2, "Dropout on the attention probabilities.")
    ffn_d_hidden_multiplier: float = param(4 / 3, "ReGLU FFN hidden size relative to ``d_token`` (4/3).")
    ffn_dropout: float = param(0.1, "Dropout inside the FFN.")
    residual_dropout: float = param(0.0, "Dropout on each sub-block's output before the residual addition.")


class FTTransformer(nn.Module):
    """Feature tokenizer + [CLS] + pre-norm transformer (ReGLU FFN) + ``LN -> ReLU -> Linear``.

    ``**config``: the fields of :class:`FTTransformerConfig`, whose defaults are the paper's
    default configuration (kept as the dict :attr:`config`). The last block attends from the
    [CLS] token only, since only its output reaches the head.

    Examples
    --------
    >>> m = FTTransformer(n_num=2, cardinalities=[3], d_out=1, n_blocks=1, d_token=8, n_heads=2)
    >>> m(torch.zeros(4, 2), torch.zeros(4, 1, dtype=torch.long)).shape
    torch.Size([4, 1])
    """

    config_class = FTTransformerConfig  # the dataclass of the ``**config`` hyperparameters

    def __init__(self, n_num: int, cardinalities: list[int], d_out: int, **config):
        super().__init__()
        cfg = FTTransformerConfig(**config)
        self.config = asdict(cfg)
        d_token, n_blocks = cfg.d_token, cfg.n_blocks
        self.tokenizer = FeatureTokenizer(
            n_num, cardinalities, d_token, numeric=lambda n, d: make_num_embeddings(cfg, n, d) or NumericTokenizer(n, d)
        )
        self.cls = nn.Parameter(torch.empty(1, 1, d_token))
        nn.init.uniform_(self.cls, -1 / math.sqrt(d_token), 1 / math.sqrt(d_token))
        ffn_d_hidden = int(d_token * cfg.ffn_d_hidden_multiplier)
        self.blocks = nn.Sequential(
            *[
                TransformerBlock(
                    d_token,
                    cfg.n_heads,
                    cfg.attention_dropout,
                    ffn_d_hidden,
                    cfg.ffn_dropout,
                    cfg.residual_dropout,
                    first=(i == 0),
                    query_tokens=1 if i == n_blocks - 1 else None,
                )
                for i in range(n_blocks)
            ]
        )
        self.head = nn.Sequential(nn.LayerNorm(d_token), nn.ReLU(), nn.Linear(d_token, d_out))

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        tokens = self.tokenizer(x_num, x_cat)
        x = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return self.head(self.blocks(x)[:, 0])
