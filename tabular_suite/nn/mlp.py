"""MLP of "Revisiting Deep Learning Models for Tabular Data" (Gorishniy et al., 2021)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..core.params import param
from .blocks import make_activation
from .embeddings import FlatInput
from .num_embeddings import FlatNumEmbeddingConfig, default_d_embedding, make_num_embeddings

__all__ = ["MLP", "MLPConfig"]


@dataclass(kw_only=True, eq=False)
class MLPConfig(FlatNumEmbeddingConfig):
    """The MLP's hyperparameters, with the paper's defaults (no numeric embeddings)."""

    n_blocks: int = param(3, "Number of ``Linear -> activation -> Dropout`` blocks.")
    d_block: int = param(256, "Width of every hidden layer.")
    dropout: float = param(0.1, "Dropout after every hidden layer.")
    activation: str = param("relu", "Activation of the hidden layers.", type='{"relu", "gelu", "silu", "tanh"}')
    cat_embedding_dim: int = param(8, "Size of the learned embedding of each categorical column.")


class MLP(nn.Module):
    """``(Linear -> ReLU -> Dropout) x n_blocks -> Linear``.

    Categorical columns enter as learned embeddings of size ``cat_embedding_dim``,
    concatenated with the numeric features (or their embeddings, ``num_embeddings``).
    ``**config``: the fields of :class:`MLPConfig` (kept, with the defaults filled in, as the dict
    :attr:`config`).

    Examples
    --------
    >>> m = MLP(n_num=3, cardinalities=[4], d_out=2, n_blocks=2, d_block=16)
    >>> m(torch.zeros(5, 3), torch.zeros(5, 1, dtype=torch.long)).shape
    torch.Size([5, 2])
    >>> m.config["dropout"]
    0.1
    """

    config_class = MLPConfig  # the dataclass of the ``**config`` hyperparameters

    def __init__(self, n_num: int, cardinalities: list[int], d_out: int, **config):
        super().__init__()
        cfg = MLPConfig(**config)
        self.config = asdict(cfg)
        d_num = cfg.d_embedding or default_d_embedding(cfg.num_embeddings)
        self.input = FlatInput(n_num, cardinalities, cfg.cat_embedding_dim, make_num_embeddings(cfg, n_num, d_num))
        layers, d_in = [], self.input.d_out
        for _ in range(cfg.n_blocks):
            layers += [nn.Linear(d_in, cfg.d_block), make_activation(cfg.activation), nn.Dropout(cfg.dropout)]
            d_in = cfg.d_block
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(d_in, d_out)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.input(x_num, x_cat)))
