"""Hourglass MLP of "Rethinking the shape convention of an MLP" (Chen et al., arXiv 2510.01796; the
authors' ``hourglass_mlp/utils/model.py``).

The input is lifted once to a wide dimension by a linear projection that stays at its random
initialisation (``train_input_projection=False``, the paper's proposal); each residual block
runs its computation through a narrow bottleneck while the skip connection stays wide:
``z + W2 ReLU(W1 BN(z))``, with a BatchNorm without affine parameters, no biases anywhere and no
normalisation of the skip stream, then a linear head.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..core.params import param
from .embeddings import FlatInput
from .num_embeddings import FlatNumEmbeddingConfig, make_flat_num_embeddings

__all__ = ["HourglassMLP", "HourglassMLPConfig"]


@dataclass(kw_only=True, eq=False)
class HourglassMLPConfig(FlatNumEmbeddingConfig):
    """The Hourglass MLP's hyperparameters (wide 512 / narrow 64, the paper's ratio of about 8)."""

    n_blocks: int = param(6, "Number of wide-narrow-wide residual blocks.")
    d_wide: int = param(512, "Width of the skip stream (the lifted input).")
    d_narrow: int = param(64, "Width of each block's bottleneck; must be below ``d_wide``.")
    train_input_projection: bool = param(
        False, "Train the input lift; False keeps it at its random initialisation (the paper's proposal)."
    )
    cat_embedding_dim: int = param(8, "Size of the learned embedding of each categorical column.")


class _HourglassBlock(nn.Module):
    def __init__(self, d_wide: int, d_narrow: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(d_wide, affine=False)
        self.down = nn.Linear(d_wide, d_narrow, bias=False)
        self.up = nn.Linear(d_narrow, d_wide, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.up(torch.relu(self.down(self.norm(z))))


class HourglassMLP(nn.Module):
    """``z = x W_in`` (fixed random lift); ``n_blocks x [z + W2 ReLU(W1 BN(z))]``; ``Linear``.

    ``**config``: the fields of :class:`HourglassMLPConfig` (kept as the dict :attr:`config`).

    Examples
    --------
    >>> m = HourglassMLP(n_num=3, cardinalities=[4], d_out=1, n_blocks=2, d_wide=32, d_narrow=4)
    >>> m(torch.zeros(5, 3), torch.zeros(5, 1, dtype=torch.long)).shape
    torch.Size([5, 1])
    >>> m.lift.weight.requires_grad
    False
    """

    config_class = HourglassMLPConfig  # the dataclass of the ``**config`` hyperparameters

    def __init__(self, n_num: int, cardinalities: list[int], d_out: int, **config):
        super().__init__()
        cfg = HourglassMLPConfig(**config)
        self.config = asdict(cfg)
        if not 0 < cfg.d_narrow < cfg.d_wide:
            raise ValueError(
                f"An hourglass block needs 0 < d_narrow < d_wide, got d_narrow={cfg.d_narrow!r}, "
                f"d_wide={cfg.d_wide!r}; raise d_wide or lower d_narrow."
            )
        self.input = FlatInput(n_num, cardinalities, cfg.cat_embedding_dim, make_flat_num_embeddings(cfg, n_num))
        self.lift = nn.Linear(self.input.d_out, cfg.d_wide, bias=False)  # nn.Linear's default init, as the code
        self.lift.weight.requires_grad_(cfg.train_input_projection)
        self.blocks = nn.Sequential(*[_HourglassBlock(cfg.d_wide, cfg.d_narrow) for _ in range(cfg.n_blocks)])
        self.head = nn.Linear(cfg.d_wide, d_out, bias=False)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.lift(self.input(x_num, x_cat))))
