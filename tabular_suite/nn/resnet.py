"""ResNet of "Revisiting Deep Learning Models for Tabular Data" (Gorishniy et al., 2021)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..core.params import param
from .embeddings import FlatInput
from .num_embeddings import FlatNumEmbeddingConfig, make_flat_num_embeddings

__all__ = ["ResNet", "ResNetConfig"]


@dataclass(kw_only=True, eq=False)
class ResNetConfig(FlatNumEmbeddingConfig):
    """The ResNet's hyperparameters, with the paper's defaults (no numeric embeddings)."""

    n_blocks: int = param(3, "Number of residual blocks.")
    d_block: int = param(192, "Width of the residual stream.")
    d_hidden_multiplier: float = param(2.0, "Hidden width of each residual block relative to ``d_block``.")
    dropout1: float = param(0.15, "Dropout inside each residual block (after the ReLU).")
    dropout2: float = param(0.0, "Dropout on each residual block's output.")
    cat_embedding_dim: int = param(8, "Size of the learned embedding of each categorical column.")


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

    ``**config``: the fields of :class:`ResNetConfig` (kept as the dict :attr:`config`).

    Examples
    --------
    >>> m = ResNet(n_num=3, cardinalities=[], d_out=1, n_blocks=1, d_block=8).eval()
    >>> m(torch.zeros(2, 3), torch.zeros(2, 0, dtype=torch.long)).shape
    torch.Size([2, 1])
    """

    config_class = ResNetConfig  # the dataclass of the ``**config`` hyperparameters

    def __init__(self, n_num: int, cardinalities: list[int], d_out: int, **config):
        super().__init__()
        cfg = ResNetConfig(**config)
        self.config = asdict(cfg)
        d_block = cfg.d_block
        self.input = FlatInput(n_num, cardinalities, cfg.cat_embedding_dim, make_flat_num_embeddings(cfg, n_num))
        self.first = nn.Linear(self.input.d_out, d_block)
        d_hidden = int(d_block * cfg.d_hidden_multiplier)
        self.blocks = nn.Sequential(
            *[_ResidualBlock(d_block, d_hidden, cfg.dropout1, cfg.dropout2) for _ in range(cfg.n_blocks)]
        )
        self.head = nn.Sequential(nn.BatchNorm1d(d_block), nn.ReLU(), nn.Linear(d_block, d_out))

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.first(self.input(x_num, x_cat))))
