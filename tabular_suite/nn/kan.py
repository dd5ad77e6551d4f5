"""Kolmogorov-Arnold network with Gaussian radial basis functions: FastKAN ("Kolmogorov-Arnold
Networks are Radial Basis Function Networks", Li, arXiv 2405.06721; the ``fastkan`` code), an
efficient form of the KAN of Liu et al. (2024).

Every edge ``i -> o`` of a layer carries a learnable univariate function
``phi_oi(u) = sum_g c_oig exp(-((u - t_g) / h)^2)`` on a fixed grid of ``n_grid`` centres ``t_g``
spread over ``[-grid_range, grid_range]`` (``h`` is their spacing), plus the base branch
``Linear(SiLU(x))``; the layer's output sums its edges. Each layer normalises its input with a
LayerNorm first, so it stays on the grid; the first layer can skip it (``first_layer_norm=False``,
the default here: a row-wise LayerNorm across unrelated columns mixes their scales, and the
standardised inputs already lie on the grid).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..core.params import param
from .embeddings import FlatInput
from .num_embeddings import FlatNumEmbeddingConfig, make_flat_num_embeddings

__all__ = ["KAN", "KANConfig", "KANLayer"]


@dataclass(kw_only=True, eq=False)
class KANConfig(FlatNumEmbeddingConfig):
    """The KAN's hyperparameters, with FastKAN's defaults (two hidden layers of 64)."""

    n_blocks: int = param(2, "Number of hidden KAN layers.")
    d_block: int = param(64, "Width of every hidden layer.")
    n_grid: int = param(8, "Radial basis functions per edge.")
    grid_range: float = param(2.0, "The basis centres span ``[-grid_range, grid_range]``.")
    first_layer_norm: bool = param(
        False, "LayerNorm the input of the first layer too (FastKAN does; off here, see the module)."
    )
    cat_embedding_dim: int = param(8, "Size of the learned embedding of each categorical column.")


class KANLayer(nn.Module):
    """One FastKAN layer: (n, d_in) -> (n, d_out).

    Examples
    --------
    >>> layer = KANLayer(3, 2, n_grid=8)
    >>> layer(torch.randn(4, 3)).shape, layer.spline_weight.shape
    (torch.Size([4, 2]), torch.Size([2, 24]))
    """

    def __init__(self, d_in: int, d_out: int, n_grid: int = 8, grid_range: float = 2.0, norm: bool = True):
        super().__init__()
        if n_grid < 2:
            raise ValueError(f"n_grid must be at least 2, got {n_grid!r}.")
        self.norm = nn.LayerNorm(d_in) if norm else None
        self.register_buffer("grid", torch.linspace(-grid_range, grid_range, n_grid))
        self.inv_denominator = (n_grid - 1) / (2 * grid_range)
        self.spline_weight = nn.Parameter(nn.init.trunc_normal_(torch.empty(d_out, d_in * n_grid), std=0.1))
        self.base = nn.Linear(d_in, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x if self.norm is None else self.norm(x)
        basis = torch.exp(-(((u.unsqueeze(-1) - self.grid) * self.inv_denominator) ** 2))
        return basis.flatten(1) @ self.spline_weight.T + self.base(nn.functional.silu(x))


class KAN(nn.Module):
    """``n_blocks`` hidden :class:`KANLayer` of width ``d_block``, then a KAN layer to the output.

    ``**config``: the fields of :class:`KANConfig` (kept as the dict :attr:`config`).

    Examples
    --------
    >>> m = KAN(n_num=3, cardinalities=[4], d_out=2, d_block=8)
    >>> m(torch.zeros(5, 3), torch.zeros(5, 1, dtype=torch.long)).shape
    torch.Size([5, 2])
    """

    config_class = KANConfig  # the dataclass of the ``**config`` hyperparameters

    def __init__(self, n_num: int, cardinalities: list[int], d_out: int, **config):
        super().__init__()
        cfg = KANConfig(**config)
        self.config = asdict(cfg)
        self.input = FlatInput(n_num, cardinalities, cfg.cat_embedding_dim, make_flat_num_embeddings(cfg, n_num))
        widths = [self.input.d_out] + [cfg.d_block] * cfg.n_blocks + [d_out]
        self.layers = nn.Sequential(
            *[
                KANLayer(d_in, d_next, cfg.n_grid, cfg.grid_range, norm=(i > 0 or cfg.first_layer_norm))
                for i, (d_in, d_next) in enumerate(zip(widths[:-1], widths[1:]))
            ]
        )

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.layers(self.input(x_num, x_cat))
