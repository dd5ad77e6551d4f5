"""Activator of "Activator: GLU Activation Function as the Core Component of a Vision Transformer"
(Abdullah & Aydin, arXiv 2405.15953; the authors' ``activator_only_GEGLU.py``), over feature tokens.

Each block replaces both attention and the second, non-gated MLP of a transformer block by one
GLU-activated MLP: ``x + W3 (LN_h(act(W1 LN(x))) * LN_h(W2 LN(x)))``, the one ``LN_h`` normalising
both branches. As in the authors' code every linear layer acts on the channels of a token, and
tokens meet only in the final mean pool: the model is additive over features (a neural additive
model with a deep per-feature network), with no feature interactions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..core.params import param
from .blocks import make_activation
from .embeddings import FeatureTokenizer, NumericTokenizer
from .num_embeddings import NumEmbeddingConfig, make_num_embeddings

__all__ = ["Activator", "ActivatorConfig"]


@dataclass(kw_only=True, eq=False)
class ActivatorConfig(NumEmbeddingConfig):
    """Activator's hyperparameters, with the defaults of the authors' code (numeric embeddings, of size
    ``d_token``, replace the linear numeric tokens when set)."""

    n_blocks: int = param(4, "Number of GLU blocks.")
    d_token: int = param(256, "Size of every feature token.")
    d_hidden: int = param(512, "Hidden width of each block's GLU.")
    activation: str = param(
        "gelu",
        'Activation of the gated branch: "gelu" (GEGLU, the default), "silu" (SwiGLU) or "relu" (ReGLU).',
        type='{"gelu", "silu", "relu"}',
    )


class _GLUBlock(nn.Module):
    def __init__(self, d: int, d_hidden: int, activation: str):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.linear12 = nn.Linear(d, 2 * d_hidden)  # W1 and W2 as one GEMM
        self.activation = make_activation(activation)
        self.hidden_norm = nn.LayerNorm(d_hidden)  # shared by both branches, as in the authors' code
        self.linear3 = nn.Linear(d_hidden, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v = self.linear12(self.norm(x)).chunk(2, dim=-1)
        return x + self.linear3(self.hidden_norm(self.activation(u)) * self.hidden_norm(v))


class Activator(nn.Module):
    """Feature tokens -> ``n_blocks`` GLU blocks -> mean over tokens -> ``Linear``.

    ``**config``: the fields of :class:`ActivatorConfig` (kept as the dict :attr:`config`).

    Examples
    --------
    >>> m = Activator(n_num=3, cardinalities=[4], d_out=2, n_blocks=2, d_token=8, d_hidden=16)
    >>> m(torch.zeros(5, 3), torch.zeros(5, 1, dtype=torch.long)).shape
    torch.Size([5, 2])
    """

    config_class = ActivatorConfig  # the dataclass of the ``**config`` hyperparameters

    def __init__(self, n_num: int, cardinalities: list[int], d_out: int, **config):
        super().__init__()
        cfg = ActivatorConfig(**config)
        self.config = asdict(cfg)
        self.tokenizer = FeatureTokenizer(
            n_num,
            cardinalities,
            cfg.d_token,
            numeric=lambda n, d: make_num_embeddings(cfg, n, d) or NumericTokenizer(n, d),
        )
        self.blocks = nn.Sequential(
            *[_GLUBlock(cfg.d_token, cfg.d_hidden, cfg.activation) for _ in range(cfg.n_blocks)]
        )
        self.head = nn.Linear(cfg.d_token, d_out)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.tokenizer(x_num, x_cat)).mean(dim=1))
